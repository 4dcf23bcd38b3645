//! Invoke failures: what a caller of a session sees. Launch failures are in
//! [`steps`](crate::steps), with the steps they time.

/// Why a session could not be opened or written to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The plugin is not running (stopped, never launched, or still restarting after the wait).
    #[error("plugin runtime not found")]
    NotFound,
    /// The plugin's launch failed; holds why.
    #[error("plugin runtime not running: {0}")]
    NotRunning(String),
    /// Writing to the plugin's stdin failed; holds the IO error text.
    #[error("{0}\nfailed to write request")]
    Write(String),
    /// The plugin already serves as many sessions as it may and its queue is full.
    #[error("plugin is busy: {in_flight} requests in flight and {queued} waiting; retry later")]
    Busy { in_flight: usize, queued: usize },
    /// The session id is already listening on this plugin.
    #[error("session {0} already exists")]
    DuplicateSession(String),
    #[error("failed to encode request: {0}")]
    Encode(String),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::steps::{LaunchError, Step};

    #[test]
    fn display_texts() {
        let err = LaunchError {
            step: Step::Venv,
            message: "boom".into(),
            steps: vec![
                (Step::Extract, Duration::from_millis(10)),
                (Step::Venv, Duration::from_millis(1200)),
            ],
        };
        assert_eq!(
            err.to_string(),
            "venv failed: boom (extract 0.01s, venv 1.20s)"
        );
        assert_eq!(
            InvokeError::Write("broken pipe".into()).to_string(),
            "broken pipe\nfailed to write request"
        );
        assert_eq!(
            InvokeError::NotFound.to_string(),
            "plugin runtime not found"
        );
    }
}
