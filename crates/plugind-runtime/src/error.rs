//! Errors of the runtime: launch failures (which step, how long each step took) and invoke
//! failures (what a caller of a session sees).

use std::fmt;
use std::time::Duration;

/// The steps of a launch, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Extract,
    Interpreter,
    Venv,
    Dependencies,
    Launch,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Extract => "extract",
            Step::Interpreter => "interpreter",
            Step::Venv => "venv",
            Step::Dependencies => "dependencies",
            Step::Launch => "launch",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats step timings as `extract 0.01s, venv 1.20s`.
pub fn format_steps(steps: &[(Step, Duration)]) -> String {
    steps
        .iter()
        .map(|(s, d)| format!("{s} {:.2}s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A launch that failed at `step`; `steps` are the timings of every step attempted, the failed
/// one included.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{step} failed: {message} ({})", format_steps(.steps))]
pub struct LaunchError {
    pub step: Step,
    pub message: String,
    pub steps: Vec<(Step, Duration)>,
}

/// Why a session could not be opened or written to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The plugin is not running (stopped, never launched, or still restarting after the wait).
    #[error("plugin runtime not found")]
    NotFound,
    /// Writing to the plugin's stdin failed; holds the IO error text.
    #[error("{0}\nfailed to write request")]
    Write(String),
    /// The session id is already listening on this plugin.
    #[error("session {0} already exists")]
    DuplicateSession(String),
    #[error("failed to encode request: {0}")]
    Encode(String),
}

#[cfg(test)]
mod tests {
    use super::*;

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
