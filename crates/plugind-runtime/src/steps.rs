//! The steps of a launch, their timings, and how a launch ends: a report or an error.

use std::fmt;
use std::time::{Duration, Instant};

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

/// What a successful launch did and how long each step took.
#[derive(Clone, Debug)]
pub struct LaunchReport {
    /// Steps actually run; an already running plugin reports none, a reused venv has no
    /// interpreter/venv/dependencies entries.
    pub steps: Vec<(Step, Duration)>,
    /// Which Python runs the plugin and how it was chosen.
    pub interpreter: String,
}

/// Times steps and turns a failing one into a [`LaunchError`].
#[derive(Default)]
pub(crate) struct StepTimer {
    pub(crate) done: Vec<(Step, Duration)>,
}

impl StepTimer {
    pub(crate) async fn run<T>(
        &mut self,
        step: Step,
        fut: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, LaunchError> {
        let started = Instant::now();
        let result = fut.await;
        self.done.push((step, started.elapsed()));
        result.map_err(|message| LaunchError {
            step,
            message,
            steps: self.done.clone(),
        })
    }

    /// A step that fails before doing anything.
    pub(crate) fn fail(&mut self, step: Step, message: String) -> LaunchError {
        self.done.push((step, Duration::ZERO));
        LaunchError {
            step,
            message,
            steps: self.done.clone(),
        }
    }
}
