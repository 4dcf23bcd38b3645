//! Settings of the local runtime. The binary fills them from the environment; this crate reads
//! no environment variables of its own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plugind_io::DEFAULT_MAX_LINE_BYTES;

use crate::local::sandbox::PluginUsers;

/// Default of [`SessionLimits::buffer_bytes`]: 8 MiB. A caller that keeps up never comes near
/// it (one chunk larger than the limit still passes); 20 stalled callers hold at most 160 MiB.
pub const DEFAULT_SESSION_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Default of [`SessionLimits::in_flight`].
pub const DEFAULT_SESSIONS_IN_FLIGHT: usize = 256;
/// Default of [`SessionLimits::queued`].
pub const DEFAULT_SESSIONS_QUEUED: usize = 1024;

/// What one connection to a plugin (one process) takes on at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// `PLUGIN_SESSION_BUFFER_SIZE` (ours): bytes of a plugin's answer that may wait for a slow
    /// caller before the daemon ends that session (other sessions keep flowing).
    pub buffer_bytes: usize,
    /// `PLUGIN_MAX_SESSIONS_IN_FLIGHT` (ours): sessions a connection serves at once.
    pub in_flight: usize,
    /// `PLUGIN_MAX_SESSIONS_QUEUED` (ours): further sessions that may wait for a turn; beyond
    /// that a request is refused at once as busy.
    pub queued: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            buffer_bytes: DEFAULT_SESSION_BUFFER_BYTES,
            in_flight: DEFAULT_SESSIONS_IN_FLIGHT,
            queued: DEFAULT_SESSIONS_QUEUED,
        }
    }
}

/// Everything the local runtime needs to build environments and run plugins.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// `PLUGIN_WORKING_PATH`; a plugin's working dir is `working_path/<uid.working_dir_name()>`.
    pub working_path: PathBuf,
    /// `UV_PATH`; else `uv` on `PATH`; else `<python> -c "from uv._find_uv import find_uv_bin; ..."`.
    pub uv_path: Option<PathBuf>,
    /// `PYTHON_INTERPRETER_PATH`: used for a venv when its version matches the manifest's runner
    /// version, and to locate uv.
    pub python_interpreter_path: Option<PathBuf>,
    /// One uv cache shared by all plugins.
    pub uv_cache_dir: PathBuf,
    /// `PYTHON_ENV_INIT_TIMEOUT`: uv is killed after this long without output.
    pub env_init_timeout: Duration,
    /// `PIP_MIRROR_URL`.
    pub pip_mirror_url: Option<String>,
    /// `PIP_EXTRA_ARGS`, split on whitespace.
    pub pip_extra_args: Vec<String>,
    /// `PIP_VERBOSE`: pass `-v` to uv.
    pub pip_verbose: bool,
    /// `PLUGIN_IGNORE_UV_LOCK`: never pass `--frozen` to `uv sync`.
    pub ignore_uv_lock: bool,
    /// Longest accepted stdout/stderr line of a plugin; longer lines are skipped and reported.
    pub max_line_bytes: usize,
    /// `PLUGIN_LOCAL_LAUNCHING_CONCURRENT`: environment builds and launches running at once.
    pub launch_concurrency: usize,
    /// How long a new process may take to send its first heartbeat.
    pub first_heartbeat_timeout: Duration,
    /// Per-connection session limits (buffer, in flight, queued).
    pub sessions: SessionLimits,
}

/// Less common knobs, kept apart so that [`RuntimeConfig`] stays a plain list of upstream
/// settings. [`Default`] gives the production values.
#[derive(Clone, Debug)]
pub struct RuntimeTuning {
    /// A ready instance silent (no output, no heartbeat) for this long is killed and restarted.
    pub liveness_timeout: Duration,
    /// How long `open_session` waits for a restarting plugin before `plugin runtime not found`.
    pub session_wait: Duration,
    /// First restart delay after a crash; doubles per consecutive crash.
    pub restart_backoff_initial: Duration,
    /// Upper bound of the restart delay.
    pub restart_backoff_max: Duration,
    /// An instance that ran this long resets the restart delay.
    pub healthy_after: Duration,
    /// Extra variables handed to plugins on top of the built-in allow-list (the binary fills it
    /// from `PLUGIN_ENV_PASSTHROUGH`), e.g. `TIKTOKEN_CACHE_DIR`.
    pub plugin_env_passthrough: Vec<String>,
    /// Uid separation (`docs/SECURITY.md`): `Some` runs each plugin process under its own uid
    /// from this range (the daemon must be root); `None` runs plugins as the daemon's uid.
    pub plugin_users: Option<Arc<PluginUsers>>,
    /// How many instances of each local plugin run, and when that number changes.
    pub scaling: ScalingConfig,
}

impl Default for RuntimeTuning {
    fn default() -> Self {
        RuntimeTuning {
            liveness_timeout: Duration::from_secs(120),
            session_wait: Duration::from_secs(6),
            restart_backoff_initial: Duration::from_millis(500),
            restart_backoff_max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
            plugin_env_passthrough: Vec::new(),
            plugin_users: None,
            scaling: ScalingConfig::default(),
        }
    }
}

impl RuntimeConfig {
    /// Defaults, with the uv cache at `<working_path>/.uv-cache` like upstream.
    pub fn new(working_path: impl Into<PathBuf>) -> Self {
        let working_path = working_path.into();
        RuntimeConfig {
            uv_cache_dir: working_path.join(".uv-cache"),
            working_path,
            uv_path: None,
            python_interpreter_path: None,
            env_init_timeout: Duration::from_secs(120),
            pip_mirror_url: None,
            pip_extra_args: Vec::new(),
            pip_verbose: false,
            ignore_uv_lock: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            launch_concurrency: 2,
            first_heartbeat_timeout: Duration::from_secs(120),
            sessions: SessionLimits::default(),
        }
    }
}

/// Largest number of instances one plugin may be given (a typo must not fork a thousand
/// interpreters).
pub const MAX_REPLICAS: usize = 64;

/// How many instances of one local plugin may run: `min` (0 allows scaling to zero) to `max`
/// (at least 1). `min == max` is a fixed count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaBounds {
    pub min: usize,
    pub max: usize,
}

impl Default for ReplicaBounds {
    fn default() -> Self {
        ReplicaBounds { min: 1, max: 1 }
    }
}

impl ReplicaBounds {
    /// `N` (a fixed count; `0` means scale to zero, at most one instance) or `MIN-MAX`.
    pub fn parse(text: &str) -> Result<ReplicaBounds, String> {
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{text:?} is not a replica count: use N or MIN-MAX"))
        };
        let (min, max) = match text.split_once('-') {
            Some((min, max)) => (number(min)?, number(max)?),
            None => {
                let n = number(text)?;
                (n, n.max(1))
            }
        };
        if max == 0 || min > max {
            return Err(format!("{text:?}: MIN-MAX needs MIN <= MAX and MAX >= 1"));
        }
        if max > MAX_REPLICAS {
            return Err(format!("{text:?}: at most {MAX_REPLICAS} replicas"));
        }
        Ok(ReplicaBounds { min, max })
    }

    /// How many instances a launch starts: `min`, but at least one (a launch proves the plugin
    /// starts; a plugin that may scale to zero stops after its idle time).
    pub fn initial(&self) -> usize {
        self.min.max(1)
    }
}

/// Replica counts and the scaling policy of local plugins (README: `PLUGIN_REPLICAS*`,
/// `PLUGIN_SCALE_*`).
#[derive(Clone, Debug)]
pub struct ScalingConfig {
    /// `PLUGIN_REPLICAS`: the bounds of every plugin without an override.
    pub default: ReplicaBounds,
    /// `PLUGIN_REPLICAS_OVERRIDES`: bounds per plugin id (`author/name`).
    pub overrides: HashMap<String, ReplicaBounds>,
    /// `PLUGIN_SCALE_UP_SESSIONS`: in-flight sessions per instance above which a plugin gets
    /// another instance (once the load stayed that high for `scale_up_after`). An instance is
    /// removed once the load would fit in one instance fewer at half this value, for
    /// `scale_down_after`.
    pub scale_up_sessions: usize,
    /// `PLUGIN_SCALE_UP_AFTER`.
    pub scale_up_after: Duration,
    /// `PLUGIN_SCALE_DOWN_AFTER`.
    pub scale_down_after: Duration,
    /// `PLUGIN_SCALE_TO_ZERO_AFTER`: a plugin whose minimum is 0 stops its last instance after
    /// this long without a session; the next request starts one.
    pub scale_to_zero_after: Duration,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            default: ReplicaBounds::default(),
            overrides: HashMap::new(),
            scale_up_sessions: 16,
            scale_up_after: Duration::from_secs(10),
            scale_down_after: Duration::from_secs(120),
            scale_to_zero_after: Duration::from_secs(600),
        }
    }
}

impl ScalingConfig {
    /// The bounds of `plugin_id`: its override, else the default.
    pub fn bounds(&self, plugin_id: &str) -> ReplicaBounds {
        self.overrides
            .get(plugin_id)
            .copied()
            .unwrap_or(self.default)
    }

    /// Parses `PLUGIN_REPLICAS_OVERRIDES`: comma-separated `author/name=N` or
    /// `author/name=MIN-MAX`; blanks are ignored.
    pub fn parse_overrides(text: &str) -> Result<HashMap<String, ReplicaBounds>, String> {
        let mut overrides = HashMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((plugin_id, bounds)) = item.split_once('=') else {
                return Err(format!(
                    "{item:?}: expected author/name=N or author/name=MIN-MAX"
                ));
            };
            let plugin_id = plugin_id.trim();
            if plugin_id.split('/').filter(|p| !p.is_empty()).count() != 2 {
                return Err(format!(
                    "{item:?}: {plugin_id:?} is not a plugin id (author/name)"
                ));
            }
            overrides.insert(plugin_id.to_owned(), ReplicaBounds::parse(bounds)?);
        }
        Ok(overrides)
    }

    /// How often the scaling loop samples the load.
    pub(crate) fn tick(&self) -> Duration {
        let shortest = self
            .scale_up_after
            .min(self.scale_down_after)
            .min(self.scale_to_zero_after);
        (shortest / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_bounds_parse() {
        let b = |min, max| ReplicaBounds { min, max };
        assert_eq!(ReplicaBounds::parse("3"), Ok(b(3, 3)));
        assert_eq!(ReplicaBounds::parse("0"), Ok(b(0, 1)));
        assert_eq!(ReplicaBounds::parse(" 1 - 4 "), Ok(b(1, 4)));
        assert_eq!(ReplicaBounds::parse("0-2"), Ok(b(0, 2)));
        assert_eq!(b(0, 2).initial(), 1);
        assert_eq!(b(3, 3).initial(), 3);
        for bad in ["", "x", "4-1", "0-0", "-3", "1-65", "65"] {
            assert!(ReplicaBounds::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn overrides_parse_per_plugin_id() {
        let overrides =
            ScalingConfig::parse_overrides("acme/a=3, acme/b=0-2,,").expect("overrides");
        let scaling = ScalingConfig {
            overrides,
            ..ScalingConfig::default()
        };
        assert_eq!(scaling.bounds("acme/a"), ReplicaBounds { min: 3, max: 3 });
        assert_eq!(scaling.bounds("acme/b"), ReplicaBounds { min: 0, max: 2 });
        assert_eq!(scaling.bounds("acme/c"), ReplicaBounds::default());
        for bad in ["acme/a", "acme=2", "a/b/c=1", "acme/a=x"] {
            assert!(
                ScalingConfig::parse_overrides(bad).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
