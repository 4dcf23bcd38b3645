//! The command tree. One module per command group; `run` dispatches.

pub mod bundle;
pub mod migrate;
pub mod plugin;
pub mod signature;
pub mod version;

use clap::{Parser, Subcommand};

/// Dify plugin developer CLI (plugind edition).
#[derive(Debug, Parser)]
#[command(name = "dify", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Default log filter: `plugin run -l` shows the runtime's logs, everything else only
    /// warnings (progress is printed directly on stderr).
    pub fn log_level(&self) -> &'static str {
        match &self.command {
            Command::Plugin {
                command: plugin::PluginCommand::Run(args),
            } if args.enable_logs => "info",
            _ => "warn",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, package, inspect, run and clean up plugins.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Create and edit plugin bundles.
    Bundle {
        #[command(subcommand)]
        command: bundle::BundleCommand,
    },
    /// Generate keys, sign and verify plugin packages.
    Signature {
        #[command(subcommand)]
        command: signature::SignatureCommand,
    },
    /// Print the version.
    Version,
    /// Connect to the daemon's database (same DB_* / PLUGIND_DATA_DIR settings) and run the
    /// migrations.
    Migrate(migrate::MigrateArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Plugin { command } => plugin::run(command),
        Command::Bundle { command } => bundle::run(command),
        Command::Signature { command } => signature::run(command),
        Command::Version => version::run(),
        Command::Migrate(args) => migrate::run(args),
    }
}
