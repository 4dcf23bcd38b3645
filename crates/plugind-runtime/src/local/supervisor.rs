//! Keeps one instance of a plugin running: when it exits, start another after an exponential
//! back-off (0.5 s, 1 s, 2 s, … capped at 30 s; reset once an instance ran for 60 s). The
//! supervisor owns the running instance: aborting it kills the process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::instance::InstanceOwner;
use super::LocalRuntime;
use crate::config::RuntimeTuning;

/// The restart delay sequence.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(tuning: &RuntimeTuning) -> Self {
        Backoff {
            initial: tuning.restart_backoff_initial,
            max: tuning.restart_backoff_max,
            next: tuning.restart_backoff_initial,
        }
    }

    /// The delay to wait now; the following one doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

fn set_last_exit(plugin: &LocalRuntime, reason: String) {
    *plugin.last_exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
}

/// Runs until the plugin is stopped, starting from the already-ready `first` instance.
pub(crate) async fn supervise(plugin: Arc<LocalRuntime>, first: InstanceOwner) {
    let mut backoff = Backoff::new(&plugin.tuning);
    let mut instance = Some(first);
    loop {
        if let Some(running) = instance.take() {
            plugin.current.send_replace(Some(running.shared()));
            let started = Instant::now();
            let reason = tokio::select! {
                reason = running.wait_exit() => reason,
                _ = plugin.cancel.cancelled() => {
                    plugin.current.send_replace(None);
                    running.kill_and_wait("plugin stopped").await;
                    return;
                }
            };
            plugin.current.send_replace(None);
            if started.elapsed() >= plugin.tuning.healthy_after {
                backoff.reset();
            }
            tracing::warn!(plugin = %plugin.uid, reason = %reason, "plugin instance exited; restarting");
            set_last_exit(&plugin, reason);
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = plugin.cancel.cancelled() => return,
        }
        match plugin.start_instance().await {
            Ok(started) => instance = Some(started),
            Err(message) => {
                if plugin.cancel.is_cancelled() {
                    return;
                }
                set_last_exit(&plugin, message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut backoff = Backoff::new(&RuntimeTuning::default());
        let delays: Vec<f64> = (0..9).map(|_| backoff.next_delay().as_secs_f64()).collect();
        assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }
}
