//! Settings of the local runtime, read from the daemon's environment or built in code.

use std::path::PathBuf;
use std::time::Duration;

use plugind_io::DEFAULT_MAX_LINE_BYTES;

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
    /// `PLUGIN_ENV_PASSTHROUGH` (comma separated): extra variables handed to plugins on top of
    /// the built-in allow-list, e.g. `TIKTOKEN_CACHE_DIR`.
    pub plugin_env_passthrough: Vec<String>,
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
        }
    }
}

impl RuntimeTuning {
    /// Defaults plus `PLUGIN_ENV_PASSTHROUGH` from the process environment.
    pub fn from_env() -> Self {
        RuntimeTuning {
            plugin_env_passthrough: std::env::var("PLUGIN_ENV_PASSTHROUGH")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            ..RuntimeTuning::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid value for {name}: {value:?}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
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
        }
    }

    /// Reads the upstream variable names from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`RuntimeConfig::from_env`] over any source of variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut cfg = RuntimeConfig::new(non_empty("PLUGIN_WORKING_PATH").unwrap_or_else(|| "./cwd".into()));
        if let Some(dir) = non_empty("UV_CACHE_DIR") {
            cfg.uv_cache_dir = dir.into();
        }
        cfg.uv_path = non_empty("UV_PATH").map(PathBuf::from);
        cfg.python_interpreter_path = non_empty("PYTHON_INTERPRETER_PATH").map(PathBuf::from);
        if let Some(v) = non_empty("PYTHON_ENV_INIT_TIMEOUT") {
            cfg.env_init_timeout = Duration::from_secs(parse_num("PYTHON_ENV_INIT_TIMEOUT", &v)?);
        }
        cfg.pip_mirror_url = non_empty("PIP_MIRROR_URL");
        cfg.pip_extra_args = get("PIP_EXTRA_ARGS").unwrap_or_default().split_whitespace().map(String::from).collect();
        if let Some(v) = non_empty("PIP_VERBOSE") {
            cfg.pip_verbose = parse_bool("PIP_VERBOSE", &v)?;
        }
        if let Some(v) = non_empty("PLUGIN_IGNORE_UV_LOCK") {
            cfg.ignore_uv_lock = parse_bool("PLUGIN_IGNORE_UV_LOCK", &v)?;
        }
        if let Some(v) = non_empty("PLUGIN_RUNTIME_MAX_BUFFER_SIZE") {
            let n = parse_num("PLUGIN_RUNTIME_MAX_BUFFER_SIZE", &v)?;
            // Upstream's default (5 MiB) is the limit that kills plugins; treat it as "unset".
            if n != 0 && n != 5_242_880 {
                cfg.max_line_bytes = usize::try_from(n).unwrap_or(usize::MAX);
            }
        }
        if let Some(v) = non_empty("PLUGIN_LOCAL_LAUNCHING_CONCURRENT") {
            let n = parse_num("PLUGIN_LOCAL_LAUNCHING_CONCURRENT", &v)?;
            cfg.launch_concurrency = usize::try_from(n).unwrap_or(usize::MAX).max(1);
        }
        Ok(cfg)
    }
}

fn parse_num(name: &'static str, value: &str) -> Result<u64, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError { name, value: value.to_owned() })
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError { name, value: value.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_upstream_names() {
        let vars: HashMap<&str, &str> = [
            ("PLUGIN_WORKING_PATH", "/srv/cwd"),
            ("PYTHON_ENV_INIT_TIMEOUT", "30"),
            ("PIP_EXTRA_ARGS", " --no-cache  --foo "),
            ("PLUGIN_IGNORE_UV_LOCK", "true"),
            ("PLUGIN_RUNTIME_MAX_BUFFER_SIZE", "5242880"),
            ("PLUGIN_LOCAL_LAUNCHING_CONCURRENT", "4"),
        ]
        .into_iter()
        .collect();
        let cfg = RuntimeConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string())).expect("config");
        assert_eq!(cfg.working_path, PathBuf::from("/srv/cwd"));
        assert_eq!(cfg.uv_cache_dir, PathBuf::from("/srv/cwd/.uv-cache"));
        assert_eq!(cfg.env_init_timeout, Duration::from_secs(30));
        assert_eq!(cfg.pip_extra_args, vec!["--no-cache", "--foo"]);
        assert!(cfg.ignore_uv_lock);
        assert_eq!(cfg.max_line_bytes, DEFAULT_MAX_LINE_BYTES);
        assert_eq!(cfg.launch_concurrency, 4);
        assert!(RuntimeConfig::from_lookup(|k| (k == "PIP_VERBOSE").then(|| "maybe".into())).is_err());
    }
}
