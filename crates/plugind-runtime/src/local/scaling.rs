//! When a local plugin gets another instance or loses one: a pure decision over samples of its
//! load, so the policy is tested without processes.
//!
//! * **Up** when the sessions in flight stay above `scale_up_sessions` per instance for
//!   `scale_up_after`, below the maximum.
//! * **Down** (one instance) when the load would fit in one instance fewer at half the
//!   threshold for `scale_down_after`, above the minimum (and above one).
//! * **To zero** when the minimum is 0 and nothing was in flight for `scale_to_zero_after`.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{ReplicaBounds, ScalingConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Hold,
    Up,
    Down,
    ToZero,
}

/// Since when the load has been continuously high or low.
#[derive(Debug, Default)]
pub(crate) struct LoadWindow {
    high_since: Option<Instant>,
    low_since: Option<Instant>,
}

/// One sample: `replicas` instances wanted (retiring ones not counted), `sessions` in flight,
/// the plugin unused for `idle_for`.
pub(crate) fn decide(
    cfg: &ScalingConfig,
    bounds: ReplicaBounds,
    replicas: usize,
    sessions: usize,
    idle_for: Duration,
    window: &mut LoadWindow,
    now: Instant,
) -> Decision {
    if replicas == 0 {
        *window = LoadWindow::default();
        return Decision::Hold;
    }
    let threshold = cfg.scale_up_sessions.max(1);
    let high = sessions > replicas * threshold;
    let low = sessions * 2 <= (replicas - 1) * threshold;
    window.high_since = high.then(|| window.high_since.unwrap_or(now));
    window.low_since = low.then(|| window.low_since.unwrap_or(now));
    let lasted = |since: Option<Instant>, long: Duration| {
        since.is_some_and(|since| now.duration_since(since) >= long)
    };
    if replicas < bounds.max && lasted(window.high_since, cfg.scale_up_after) {
        // The next step up needs its own stretch of high load.
        window.high_since = Some(now);
        return Decision::Up;
    }
    if bounds.min == 0 && sessions == 0 && idle_for >= cfg.scale_to_zero_after {
        *window = LoadWindow::default();
        return Decision::ToZero;
    }
    if replicas > bounds.min.max(1) && lasted(window.low_since, cfg.scale_down_after) {
        window.low_since = Some(now);
        return Decision::Down;
    }
    Decision::Hold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ScalingConfig {
        ScalingConfig {
            scale_up_sessions: 2,
            scale_up_after: Duration::from_secs(2),
            scale_down_after: Duration::from_secs(5),
            scale_to_zero_after: Duration::from_secs(10),
            ..ScalingConfig::default()
        }
    }

    fn bounds(min: usize, max: usize) -> ReplicaBounds {
        ReplicaBounds { min, max }
    }

    #[test]
    fn sustained_load_scales_up_to_the_maximum() {
        let cfg = cfg();
        let mut w = LoadWindow::default();
        let t0 = Instant::now();
        let s = |n, at: u64, w: &mut LoadWindow| {
            decide(
                &cfg,
                bounds(1, 3),
                n,
                9,
                Duration::ZERO,
                w,
                t0 + Duration::from_secs(at),
            )
        };
        assert_eq!(s(1, 0, &mut w), Decision::Hold);
        assert_eq!(s(1, 1, &mut w), Decision::Hold);
        assert_eq!(s(1, 2, &mut w), Decision::Up);
        assert_eq!(
            s(2, 3, &mut w),
            Decision::Hold,
            "each step waits its own stretch"
        );
        assert_eq!(s(2, 4, &mut w), Decision::Up);
        assert_eq!(s(3, 9, &mut w), Decision::Hold, "at the maximum");
    }

    #[test]
    fn a_dip_restarts_the_window() {
        let cfg = cfg();
        let mut w = LoadWindow::default();
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let b = bounds(1, 3);
        assert_eq!(
            decide(&cfg, b, 1, 5, Duration::ZERO, &mut w, at(0)),
            Decision::Hold
        );
        assert_eq!(
            decide(&cfg, b, 1, 1, Duration::ZERO, &mut w, at(1)),
            Decision::Hold
        );
        assert_eq!(
            decide(&cfg, b, 1, 5, Duration::ZERO, &mut w, at(2)),
            Decision::Hold
        );
        assert_eq!(
            decide(&cfg, b, 1, 5, Duration::ZERO, &mut w, at(4)),
            Decision::Up
        );
    }

    #[test]
    fn low_load_scales_down_to_the_minimum_not_to_zero() {
        let cfg = cfg();
        let mut w = LoadWindow::default();
        let t0 = Instant::now();
        let idle = Duration::from_secs(60);
        let b = bounds(1, 3);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(decide(&cfg, b, 3, 2, idle, &mut w, at(0)), Decision::Hold);
        assert_eq!(decide(&cfg, b, 3, 2, idle, &mut w, at(5)), Decision::Down);
        assert_eq!(decide(&cfg, b, 2, 0, idle, &mut w, at(10)), Decision::Down);
        assert_eq!(decide(&cfg, b, 1, 0, idle, &mut w, at(30)), Decision::Hold);
        // Two sessions on two instances at threshold 2 do not fit in one at half load.
        let mut w = LoadWindow::default();
        assert_eq!(decide(&cfg, b, 2, 2, idle, &mut w, at(0)), Decision::Hold);
        assert_eq!(decide(&cfg, b, 2, 2, idle, &mut w, at(50)), Decision::Hold);
    }

    #[test]
    fn an_idle_plugin_with_minimum_zero_scales_to_zero() {
        let cfg = cfg();
        let mut w = LoadWindow::default();
        let now = Instant::now();
        let b = bounds(0, 2);
        let idle = |s| Duration::from_secs(s);
        assert_eq!(decide(&cfg, b, 1, 0, idle(9), &mut w, now), Decision::Hold);
        assert_eq!(decide(&cfg, b, 1, 1, idle(20), &mut w, now), Decision::Hold);
        assert_eq!(
            decide(&cfg, b, 1, 0, idle(10), &mut w, now),
            Decision::ToZero
        );
        assert_eq!(
            decide(&cfg, b, 2, 0, idle(10), &mut w, now),
            Decision::ToZero
        );
        assert_eq!(decide(&cfg, b, 0, 0, idle(99), &mut w, now), Decision::Hold);
        let fixed = bounds(1, 1);
        assert_eq!(
            decide(&cfg, fixed, 1, 0, idle(99), &mut w, now),
            Decision::Hold
        );
    }
}
