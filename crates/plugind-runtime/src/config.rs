//! Settings of the local runtime. The binary fills them from the environment; this crate reads
//! no environment variables of its own.

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
