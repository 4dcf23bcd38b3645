//! `dify`: the plugin developer CLI (PSC Part 9). Parses the command line, sets up logging on
//! stderr and hands over to `commands`; every failure ends with a message and exit code 1.

mod commands;

use clap::Parser;

fn main() {
    let cli = commands::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.log_level()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    if let Err(e) = commands::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
