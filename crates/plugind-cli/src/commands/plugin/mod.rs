//! `dify plugin …`: init, package, checksum, module list, readme list, run, cleanup.

mod cleanup;
mod init;
mod inspect;
mod package;
mod run;
mod source;
mod templates;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use cleanup::CleanupArgs;
pub use init::InitArgs;
pub use package::PackageArgs;
pub use run::RunArgs;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a new plugin project in ./<name> (non-interactive: pass the profile as flags).
    Init(InitArgs),
    /// Validate a plugin directory and pack it into <dir name>.difypkg.
    Package(PackageArgs),
    /// Print the checksum of a plugin directory or .difypkg.
    Checksum {
        /// Plugin directory or .difypkg file.
        path: PathBuf,
    },
    /// Inspect the modules of a plugin.
    Module {
        #[command(subcommand)]
        command: ModuleCommand,
    },
    /// Inspect the readmes of a plugin.
    Readme {
        #[command(subcommand)]
        command: ReadmeCommand,
    },
    /// Run a .difypkg locally and invoke it with JSON lines on stdin or over TCP.
    Run(RunArgs),
    /// Delete every plugin working directory but the newest version of each plugin.
    Cleanup(CleanupArgs),
}

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// List the tools, agent strategies, models and endpoints of a plugin.
    List(PathArg),
}

#[derive(Debug, Subcommand)]
pub enum ReadmeCommand {
    /// List the readme languages a plugin ships.
    List(PathArg),
}

#[derive(Debug, Args)]
pub struct PathArg {
    /// Plugin directory or .difypkg file.
    pub path: PathBuf,
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::Init(args) => init::run(args),
        PluginCommand::Package(args) => package::run(args),
        PluginCommand::Checksum { path } => inspect::checksum(&path),
        PluginCommand::Module {
            command: ModuleCommand::List(p),
        } => inspect::module_list(&p.path),
        PluginCommand::Readme {
            command: ReadmeCommand::List(p),
        } => inspect::readme_list(&p.path),
        PluginCommand::Run(args) => run::run(args),
        PluginCommand::Cleanup(args) => cleanup::run(args),
    }
}
