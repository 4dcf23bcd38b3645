//! Placeholder for `dify bundle …`; replaced by the real implementation.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Not implemented in this build yet.
    Placeholder,
}

pub fn run(cmd: BundleCommand) -> anyhow::Result<()> {
    match cmd {
        BundleCommand::Placeholder => {
            anyhow::bail!("`dify bundle` is not implemented in this build yet")
        }
    }
}
