//! Starting and killing child processes: the plugin itself and the uv commands that build its
//! environment.
//!
//! Every child runs in its own process group so that one `killpg` also reaches anything it
//! spawned, and every child gets an allow-listed environment: the daemon's own secrets
//! (`SERVER_KEY`, `DB_*`, `REDIS_*`, storage credentials, ...) never reach plugin code or uv.
//! Plugin processes may also run under their own uid (see `sandbox`); uv runs as the daemon.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::sandbox::PluginUser;

/// Variables passed to both plugins and uv when the daemon has them.
const COMMON_ALLOWED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
];

/// SDK settings an operator may set on the daemon for all plugins.
const PLUGIN_SDK_SETTINGS: &[&str] = &["MAX_REQUEST_TIMEOUT", "MAX_WORKER", "HEARTBEAT_INTERVAL"];

/// uv settings worth forwarding: index credentials and TLS knobs, never the daemon's secrets.
const UV_ALLOWED: &[&str] = &[
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_INSECURE_HOST",
    "UV_NATIVE_TLS",
    "UV_HTTP_TIMEOUT",
    "PYENV_ROOT",
];

fn is_common(name: &str) -> bool {
    COMMON_ALLOWED.contains(&name) || name.starts_with("LC_")
}

/// The environment of a plugin process, built from the daemon's variables: the allow-list, the
/// operator's extra `passthrough` names, then `INSTALL_METHOD=local` and `PYTHONUNBUFFERED=1`.
pub(crate) fn plugin_env(
    daemon_env: impl IntoIterator<Item = (OsString, OsString)>,
    passthrough: &[String],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = daemon_env
        .into_iter()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|k| {
                is_common(k)
                    || PLUGIN_SDK_SETTINGS.contains(&k)
                    || passthrough.iter().any(|p| p == k)
            })
        })
        .collect();
    env.retain(|(k, _)| k != "INSTALL_METHOD" && k != "PYTHONUNBUFFERED");
    env.push(("INSTALL_METHOD".into(), "local".into()));
    env.push(("PYTHONUNBUFFERED".into(), "1".into()));
    env
}

/// The environment of a uv command: the allow-list plus `UV_INDEX_*` credentials, then the
/// shared cache, no interpreter downloads, and the venv being built.
pub(crate) fn uv_env(
    daemon_env: impl IntoIterator<Item = (OsString, OsString)>,
    cache_dir: &Path,
    venv: Option<&Path>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = daemon_env
        .into_iter()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|k| {
                is_common(k) || UV_ALLOWED.contains(&k) || k.starts_with("UV_INDEX_")
            })
        })
        .collect();
    env.push(("UV_CACHE_DIR".into(), cache_dir.into()));
    env.push(("UV_PYTHON_DOWNLOADS".into(), "never".into()));
    env.push(("UV_NO_PROGRESS".into(), "1".into()));
    if let Some(venv) = venv {
        env.push(("VIRTUAL_ENV".into(), venv.into()));
    }
    env
}

/// A child with all three pipes taken out.
pub(crate) struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// Spawns `program args…` in `cwd` with exactly `env`, in a new process group, all pipes piped.
pub(crate) fn spawn_in_group(
    program: &Path,
    args: &[&OsStr],
    cwd: &Path,
    env: &[(OsString, OsString)],
) -> io::Result<Spawned> {
    spawn_in_group_as(program, args, cwd, env, None)
}

/// [`spawn_in_group`] under `user`'s uid and gid when given (the daemon must be root; std then
/// also drops the supplementary groups).
pub(crate) fn spawn_in_group_as(
    program: &Path,
    args: &[&OsStr],
    cwd: &Path,
    env: &[(OsString, OsString)],
    user: Option<PluginUser>,
) -> io::Result<Spawned> {
    let mut cmd = Command::new(program);
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("child exited before its pid was read"))?;
    let missing = || io::Error::other("child pipe missing");
    let stdin = child.stdin.take().ok_or_else(missing)?;
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stderr = child.stderr.take().ok_or_else(missing)?;
    Ok(Spawned {
        child,
        pid,
        stdin,
        stdout,
        stderr,
    })
}

/// SIGKILLs the whole process group led by `pid`. A group that is already gone is fine.
pub(crate) fn kill_group(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if raw <= 1 {
        return;
    }
    match killpg(Pid::from_raw(raw), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid, error = %e, "failed to kill process group"),
    }
}

/// `exit code N` / `signal N` for messages.
pub(crate) fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn names(env: &[(OsString, OsString)]) -> Vec<String> {
        env.iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn plugin_env_is_allow_listed() {
        let daemon = vars(&[
            ("PATH", "/bin"),
            ("HOME", "/root"),
            ("LC_ALL", "C.UTF-8"),
            ("https_proxy", "http://p"),
            ("SERVER_KEY", "secret"),
            ("DB_PASSWORD", "secret"),
            ("REDIS_PASSWORD", "secret"),
            ("DIFY_INNER_API_KEY", "secret"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("MAX_WORKER", "10"),
            ("TIKTOKEN_CACHE_DIR", "/t"),
            ("INSTALL_METHOD", "remote"),
        ]);
        let env = plugin_env(daemon.clone(), &[]);
        assert_eq!(
            names(&env),
            [
                "PATH",
                "HOME",
                "LC_ALL",
                "https_proxy",
                "MAX_WORKER",
                "INSTALL_METHOD",
                "PYTHONUNBUFFERED"
            ]
        );
        assert!(env.contains(&("INSTALL_METHOD".into(), "local".into())));
        let env = plugin_env(daemon, &["TIKTOKEN_CACHE_DIR".to_owned()]);
        assert!(names(&env).contains(&"TIKTOKEN_CACHE_DIR".to_owned()));
    }

    #[test]
    fn uv_env_keeps_index_credentials_only() {
        let daemon = vars(&[
            ("PATH", "/bin"),
            ("UV_INDEX_NEXUS_USERNAME", "u"),
            ("UV_INDEX_NEXUS_PASSWORD", "p"),
            ("SERVER_KEY", "secret"),
            ("S3_SECRET_KEY", "secret"),
        ]);
        let env = uv_env(daemon, Path::new("/cache"), Some(Path::new("/wd/.venv")));
        assert_eq!(
            names(&env),
            [
                "PATH",
                "UV_INDEX_NEXUS_USERNAME",
                "UV_INDEX_NEXUS_PASSWORD",
                "UV_CACHE_DIR",
                "UV_PYTHON_DOWNLOADS",
                "UV_NO_PROGRESS",
                "VIRTUAL_ENV"
            ]
        );
    }
}
