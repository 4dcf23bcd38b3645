//! Placeholder for `dify signature …`; replaced by the real implementation.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SignatureCommand {
    /// Not implemented in this build yet.
    Placeholder,
}

pub fn run(cmd: SignatureCommand) -> anyhow::Result<()> {
    match cmd {
        SignatureCommand::Placeholder => {
            anyhow::bail!("`dify signature` is not implemented in this build yet")
        }
    }
}
