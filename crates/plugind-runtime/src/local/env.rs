//! Building a plugin's Python environment: find uv and an interpreter for the manifest's runner
//! version, create a venv, install the dependencies, and publish it as `<wd>/.venv`.
//!
//! A venv is built in `<wd>/.venv.building-<random>` and renamed to `.venv` only when complete
//! and marked (`.venv/dify/plugin.json`), so a failed build never touches a working `.venv`. The
//! rename is safe: a uv venv finds its prefix from the location of `bin/python`, and only the
//! console scripts (which plugins are not started through) carry the old absolute path.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plugind_io::LineReader;
use regex::Regex;
use tokio::process::Command;
use tokio::sync::mpsc;

use super::process::{describe_status, kill_group, spawn_in_group, uv_env};
use crate::config::RuntimeConfig;

pub(crate) const VENV_DIR: &str = ".venv";
const BUILDING_PREFIX: &str = ".venv.building-";
const OLD_PREFIX: &str = ".venv.old-";
const MARKER: &str = "dify/plugin.json";
/// Python used when a manifest names no runner version (upstream's hard-coded choice).
pub(crate) const DEFAULT_PYTHON_VERSION: &str = "3.12";
/// Lines of uv output quoted in an error.
const UV_TAIL_LINES: usize = 40;
/// Timeout of the small probing commands (`--version`, `python find`, ...).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// `<venv>/bin/python`.
pub(crate) fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// A venv is valid when its python resolves and the completion marker exists.
pub(crate) fn venv_is_valid(wd: &Path) -> bool {
    let venv = wd.join(VENV_DIR);
    venv_python(&venv).metadata().is_ok_and(|m| m.is_file()) && venv.join(MARKER).is_file()
}

/// `version_info` from `pyvenv.cfg`, to describe a reused venv.
pub(crate) fn venv_version(venv: &Path) -> Option<String> {
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    cfg.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "version_info" || k.trim() == "version").then(|| v.trim().to_owned())
    })
}

fn daemon_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// True when `have` (e.g. `3.11.7`) is the requested `want` (e.g. `3.11`) or a patch of it.
pub(crate) fn version_matches(want: &str, have: &str) -> bool {
    let want: Vec<&str> = want.trim().split('.').filter(|s| !s.is_empty()).collect();
    let have: Vec<&str> = have.trim().split('.').collect();
    !want.is_empty() && want.len() <= have.len() && want.iter().zip(&have).all(|(w, h)| w == h)
}

fn version_key(v: &str) -> Vec<u64> {
    v.split('.')
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0)
        })
        .collect()
}

/// Runs a short command with a timeout; trimmed stdout on success, a description otherwise.
async fn probe(
    program: &Path,
    args: &[&str],
    env: Option<&[(OsString, OsString)]>,
) -> Result<String, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir("/")
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    if let Some(env) = env {
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    let output = tokio::time::timeout(PROBE_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("`{}` timed out", program.display()))?
        .map_err(|e| format!("`{}` could not run: {e}", program.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned();
        Err(format!(
            "`{} {}` failed ({}): {first}",
            program.display(),
            args.join(" "),
            describe_status(&output.status)
        ))
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Locates uv: `UV_PATH`, else `uv` on `PATH` (a pyenv shim is resolved to the real binary, so
/// a `.python-version` file in a plugin cannot redirect it), else the uv Python package.
pub(crate) async fn find_uv(cfg: &RuntimeConfig) -> Result<PathBuf, String> {
    let mut tried = Vec::new();
    if let Some(uv) = &cfg.uv_path {
        if uv.is_file() {
            return Ok(uv.clone());
        }
        tried.push(format!("UV_PATH={} does not exist", uv.display()));
    }
    if let Some(uv) = find_on_path("uv") {
        if let Some(real) = resolve_pyenv_shim(&uv).await {
            return Ok(real);
        }
        return Ok(uv);
    }
    tried.push("no `uv` on PATH".into());
    let python = cfg
        .python_interpreter_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("python3"));
    let code = "from uv._find_uv import find_uv_bin; print(find_uv_bin())";
    match probe(&python, &["-c", code], None).await {
        Ok(found) if !found.is_empty() => return Ok(PathBuf::from(found)),
        Ok(_) => tried.push(format!("{} printed no uv path", python.display())),
        Err(e) => tried.push(e),
    }
    Err(format!("uv not found: {}", tried.join("; ")))
}

async fn resolve_pyenv_shim(uv: &Path) -> Option<PathBuf> {
    let shims = uv.parent()?;
    if shims.file_name()? != "shims" {
        return None;
    }
    let pyenv = shims.parent()?.join("libexec").join("pyenv");
    let real = probe(&pyenv, &["which", "uv"], None).await.ok()?;
    let real = PathBuf::from(real);
    real.is_file().then_some(real)
}

/// The interpreter a venv is built from and how it was found.
#[derive(Clone, Debug)]
pub(crate) struct PythonChoice {
    pub path: PathBuf,
    pub version: String,
    pub source: &'static str,
}

impl PythonChoice {
    pub(crate) fn describe(&self) -> String {
        format!(
            "Python {} at {} (from {})",
            self.version,
            self.path.display(),
            self.source
        )
    }
}

const VERSION_CODE: &str = "import sys; print('.'.join(map(str, sys.version_info[:3])))";

/// Picks the interpreter for `want`: `PYTHON_INTERPRETER_PATH` if its version matches, else
/// `uv python find` (no downloads), else pyenv's versions directory.
pub(crate) async fn find_python(
    cfg: &RuntimeConfig,
    uv: &Path,
    want: &str,
) -> Result<PythonChoice, String> {
    let mut tried = Vec::new();
    if let Some(python) = &cfg.python_interpreter_path {
        match probe(python, &["-c", VERSION_CODE], None).await {
            Ok(version) if version_matches(want, &version) => {
                return Ok(PythonChoice {
                    path: python.clone(),
                    version,
                    source: "PYTHON_INTERPRETER_PATH",
                })
            }
            Ok(version) => tried.push(format!(
                "PYTHON_INTERPRETER_PATH={} is Python {version}",
                python.display()
            )),
            Err(e) => tried.push(format!("PYTHON_INTERPRETER_PATH: {e}")),
        }
    }
    let env = uv_env(daemon_env(), &cfg.uv_cache_dir, None);
    match probe(uv, &["python", "find", "--system", want], Some(&env)).await {
        Ok(found) if !found.is_empty() => {
            let path = PathBuf::from(found);
            match probe(&path, &["-c", VERSION_CODE], None).await {
                Ok(version) if version_matches(want, &version) => {
                    return Ok(PythonChoice {
                        path,
                        version,
                        source: "uv python find",
                    })
                }
                Ok(version) => tried.push(format!("`uv python find {want}` gave Python {version}")),
                Err(e) => tried.push(e),
            }
        }
        Ok(_) => tried.push(format!("`uv python find {want}` printed nothing")),
        Err(e) => tried.push(e),
    }
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(root) = pyenv_root {
        let versions = root.join("versions");
        let mut candidates: Vec<(Vec<u64>, String, PathBuf)> = std::fs::read_dir(&versions)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let python = entry.path().join("bin").join("python");
                (version_matches(want, &name) && python.is_file())
                    .then(|| (version_key(&name), name, python))
            })
            .collect();
        candidates.sort();
        match candidates.pop() {
            Some((_, version, path)) => {
                return Ok(PythonChoice {
                    path,
                    version,
                    source: "pyenv",
                })
            }
            None => tried.push(format!("pyenv: no {}/{want}.*", versions.display())),
        }
    } else {
        tried.push("pyenv: neither PYENV_ROOT nor HOME set".into());
    }
    Err(format!("no Python {want} found: {}", tried.join("; ")))
}

/// Deletes half-built venvs and moved-aside old ones from earlier attempts, on a blocking
/// thread (a venv holds thousands of files).
pub(crate) async fn remove_leftovers(wd: &Path) {
    let wd = wd.to_owned();
    let removed = tokio::task::spawn_blocking(move || {
        let Ok(entries) = std::fs::read_dir(&wd) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(BUILDING_PREFIX) || name.starts_with(OLD_PREFIX) {
                remove_tree(&entry.path(), "leftover venv");
            }
        }
    })
    .await;
    if let Err(e) = removed {
        tracing::warn!(error = %e, "removing leftover venvs failed");
    }
}

fn remove_tree(path: &Path, what: &str) {
    if path.symlink_metadata().is_ok() {
        if let Err(e) = std::fs::remove_dir_all(path) {
            tracing::warn!(path = %path.display(), error = %e, "failed to remove {what}");
        }
    }
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// `uv venv <wd>/.venv.building-<random> --python <python>`; returns the new directory.
pub(crate) async fn create_venv(
    cfg: &RuntimeConfig,
    uv: &Path,
    wd: &Path,
    python: &Path,
) -> Result<PathBuf, String> {
    super::sandbox::check_build_inputs(wd)?;
    remove_leftovers(wd).await;
    let building = wd.join(format!("{BUILDING_PREFIX}{}", random_suffix()));
    let args: Vec<&OsStr> = vec![
        "venv".as_ref(),
        building.as_os_str(),
        "--python".as_ref(),
        python.as_os_str(),
    ];
    let env = uv_env(daemon_env(), &cfg.uv_cache_dir, None);
    match run_uv(uv, &args, wd, &env, cfg.env_init_timeout, "uv").await {
        Ok(_) if venv_python(&building).is_file() => Ok(building),
        Ok(_) => {
            discard(&building).await;
            Err(format!(
                "uv venv succeeded but {} is missing",
                venv_python(&building).display()
            ))
        }
        Err(failure) => {
            discard(&building).await;
            Err(format!("failed to create virtual environment: {failure}"))
        }
    }
}

/// Removes a half-built or moved-aside venv, on a blocking thread.
pub(crate) async fn discard(building: &Path) {
    let path = building.to_owned();
    if let Err(e) = tokio::task::spawn_blocking(move || remove_tree(&path, "half-built venv")).await
    {
        tracing::warn!(error = %e, "removing a venv failed");
    }
}

/// Which dependency file drives the install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DependencyFile {
    Requirements,
    Pyproject,
}

/// Upstream's rule: `requirements.txt` when a mirror is set and it exists; else `pyproject.toml`;
/// else `requirements.txt`.
pub(crate) fn pick_dependency_file(wd: &Path, mirror: bool) -> Option<DependencyFile> {
    let requirements = wd.join("requirements.txt").is_file();
    let pyproject = wd.join("pyproject.toml").is_file();
    if mirror && requirements {
        Some(DependencyFile::Requirements)
    } else if pyproject {
        Some(DependencyFile::Pyproject)
    } else if requirements {
        Some(DependencyFile::Requirements)
    } else {
        None
    }
}

/// The uv argv (after the binary) that installs dependencies into `venv`.
pub(crate) fn install_args(
    cfg: &RuntimeConfig,
    file: DependencyFile,
    wd: &Path,
    venv: &Path,
) -> Vec<OsString> {
    let python = venv_python(venv).into_os_string();
    let mut args: Vec<OsString> = Vec::new();
    let mut frozen = false;
    match file {
        DependencyFile::Requirements => {
            args.extend(
                ["pip", "install", "-r", "requirements.txt", "--python"].map(OsString::from),
            );
            args.push(python);
        }
        DependencyFile::Pyproject => {
            args.extend(["sync", "--no-dev", "--python"].map(OsString::from));
            args.push(python);
            if wd.join("uv.lock").is_file() && !cfg.ignore_uv_lock {
                args.push("--frozen".into());
                frozen = true;
            }
        }
    }
    if let Some(mirror) = &cfg.pip_mirror_url {
        args.push("-i".into());
        args.push(mirror.into());
    }
    if cfg.pip_verbose {
        args.push("-v".into());
    }
    args.extend(
        cfg.pip_extra_args
            .iter()
            .filter(|a| !(frozen && *a == "--frozen"))
            .map(OsString::from),
    );
    args
}

/// Installs the dependencies into `venv` (inactivity-limited).
pub(crate) async fn install_dependencies(
    cfg: &RuntimeConfig,
    uv: &Path,
    wd: &Path,
    venv: &Path,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(), String> {
    let file = pick_dependency_file(wd, cfg.pip_mirror_url.is_some()).ok_or_else(|| {
        "failed to find dependency file: neither pyproject.toml nor requirements.txt found in plugin directory".to_owned()
    })?;
    let file_name = match file {
        DependencyFile::Requirements => "requirements.txt",
        DependencyFile::Pyproject => "pyproject.toml",
    };
    progress(format!("installing dependencies from {file_name}"));
    let args = install_args(cfg, file, wd, venv);
    let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let mut env = uv_env(daemon_env(), &cfg.uv_cache_dir, Some(venv));
    if file == DependencyFile::Pyproject {
        env.push(("UV_PROJECT_ENVIRONMENT".into(), venv.into()));
    }
    run_uv(uv, &args, wd, &env, cfg.env_init_timeout, "uv")
        .await
        .map(|_| ())
        .map_err(|failure| {
            let culprit = failure.culprit(cfg.pip_mirror_url.as_deref());
            format!("failed to install dependencies from {file_name}: {culprit}{failure}")
        })
}

/// Writes the marker, moves the finished venv to `.venv` (an older, invalid one is moved aside
/// first and deleted afterwards) and checks that the moved interpreter runs from its new place.
pub(crate) async fn publish_venv(wd: &Path, building: &Path) -> Result<(), String> {
    let marker = building.join(MARKER);
    if let Some(dir) = marker.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    std::fs::write(&marker, format!("{{\"timestamp\":{now}}}"))
        .map_err(|e| format!("failed to write {}: {e}", marker.display()))?;
    let venv = wd.join(VENV_DIR);
    let old = wd.join(format!("{OLD_PREFIX}{}", random_suffix()));
    let had_old = venv.symlink_metadata().is_ok();
    if had_old {
        std::fs::rename(&venv, &old)
            .map_err(|e| format!("failed to move the old venv aside: {e}"))?;
    }
    if let Err(e) = std::fs::rename(building, &venv) {
        if had_old {
            let _ = std::fs::rename(&old, &venv);
        }
        return Err(format!("failed to move the new venv into place: {e}"));
    }
    if had_old {
        discard(&old).await;
    }
    let python = venv_python(&venv);
    let code = "import sys; print(sys.prefix)";
    // The venv runs its dependencies' `.pth` files at start-up: never with the daemon's secrets.
    let env = super::process::plugin_env(daemon_env(), &[]);
    let prefix = probe(&python, &["-c", code], Some(&env))
        .await
        .map_err(|e| format!("the published venv does not run: {e}"))?;
    let expected = std::fs::canonicalize(&venv).unwrap_or(venv.clone());
    let actual = std::fs::canonicalize(&prefix).unwrap_or_else(|_| PathBuf::from(&prefix));
    if actual != expected {
        // Keep it from being reused: without the marker it is rebuilt at the next launch.
        let _ = std::fs::remove_file(venv.join(MARKER));
        return Err(format!(
            "the published venv reports prefix {prefix}, expected {}",
            expected.display()
        ));
    }
    Ok(())
}

/// A uv command that failed: how, plus the end of its output.
#[derive(Debug)]
pub(crate) struct UvFailure {
    pub what: String,
    pub tail: Vec<String>,
}

static NOT_FOUND_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"Because ([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])? was not found in the package registry").ok()
});
static NO_VERSION_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"Because (?:there is no version of|there are no versions of|only [^ ]+ of) ([A-Za-z0-9][A-Za-z0-9._\-\[\]]*(?:[=<>!~]=?[^\s,]+)?)").ok()
});
static FAILED_PKG_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"Failed to (?:build|download|install|prepare distributions|resolve|parse)[^`]*`([^`]+)`",
    )
    .ok()
});
static URL_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(https?://[^\s`'"()]+)"#).ok());

fn first_capture(re: &LazyLock<Option<Regex>>, lines: &[String]) -> Option<String> {
    let re = re.as_ref()?;
    lines.iter().find_map(|l| {
        re.captures(l)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_owned())
    })
}

impl UvFailure {
    /// `package `x` …; ` when the output names the failing package (and index), else empty.
    pub(crate) fn culprit(&self, mirror: Option<&str>) -> String {
        let package = first_capture(&NOT_FOUND_RE, &self.tail)
            .map(|p| format!("package `{p}` was not found"))
            .or_else(|| {
                first_capture(&NO_VERSION_RE, &self.tail)
                    .map(|p| format!("no matching version of `{p}`"))
            })
            .or_else(|| {
                first_capture(&FAILED_PKG_RE, &self.tail).map(|p| format!("package `{p}` failed"))
            });
        let index = URL_RE.as_ref().and_then(|re| {
            self.tail
                .iter()
                .filter(|l| {
                    l.contains("Failed to fetch") || l.contains("index") || l.contains("/simple")
                })
                .find_map(|l| {
                    re.captures(l)
                        .and_then(|c| c.get(1))
                        .map(|m| m.as_str().trim_end_matches(['.', ',']).to_owned())
                })
        });
        let index = index.or_else(|| mirror.map(str::to_owned));
        match (package, index) {
            (Some(p), Some(i)) => format!("{p} (index {i}); "),
            (Some(p), None) => format!("{p}; "),
            (None, Some(i)) => format!("index {i}; "),
            (None, None) => String::new(),
        }
    }
}

impl std::fmt::Display for UvFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.what)?;
        if !self.tail.is_empty() {
            write!(
                f,
                "\nlast {} lines of output:\n{}",
                self.tail.len(),
                self.tail.join("\n")
            )?;
        }
        Ok(())
    }
}

/// Runs uv in its own process group with `env`, killing it after `inactivity` without output.
/// Returns the last lines of its combined output.
pub(crate) async fn run_uv(
    uv: &Path,
    args: &[&OsStr],
    cwd: &Path,
    env: &[(OsString, OsString)],
    inactivity: Duration,
    label: &str,
) -> Result<Vec<String>, UvFailure> {
    let command_line = format!(
        "{label} {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    tracing::info!(cwd = %cwd.display(), "running {command_line}");
    let spawned = spawn_in_group(uv, args, cwd, env).map_err(|e| UvFailure {
        what: format!("failed to start `{}`: {e}", uv.display()),
        tail: Vec::new(),
    })?;
    let pid = spawned.pid;
    let mut child = spawned.child;
    drop(spawned.stdin);
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    for pipe in [
        Box::new(spawned.stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(spawned.stderr),
    ] {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut reader = LineReader::with_max_line_bytes(pipe, 1024 * 1024);
            while let Some(Ok(line)) = reader.next_line().await {
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut tail: VecDeque<String> = VecDeque::new();
    loop {
        match tokio::time::timeout(inactivity, rx.recv()).await {
            Ok(Some(line)) => {
                tracing::debug!("uv: {line}");
                if tail.len() == UV_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Ok(None) => break,
            Err(_) => {
                kill_group(pid);
                let _ = child.wait().await;
                return Err(UvFailure {
                    what: format!(
                        "`{command_line}` was killed after {} s without output",
                        inactivity.as_secs()
                    ),
                    tail: tail.into(),
                });
            }
        }
    }
    let status = child.wait().await.map_err(|e| UvFailure {
        what: format!("waiting for uv failed: {e}"),
        tail: Vec::new(),
    })?;
    if status.success() {
        Ok(tail.into())
    } else {
        Err(UvFailure {
            what: format!("`{command_line}` failed ({})", describe_status(&status)),
            tail: tail.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deleting a venv (thousands of files) must not run on the async thread: on a
    /// current-thread runtime the first poll of `discard` returns `Pending` while a blocking
    /// thread does the work.
    #[test]
    fn venv_removal_runs_off_the_async_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let venv = dir.path().join(".venv.old-test");
        for i in 0..50 {
            let sub = venv.join(format!("d{i}"));
            std::fs::create_dir_all(&sub).expect("mkdir");
            for j in 0..40 {
                std::fs::write(sub.join(format!("f{j}")), b"x").expect("write");
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut removal = std::pin::pin!(discard(&venv));
            let first = futures::poll!(removal.as_mut());
            assert!(
                first.is_pending(),
                "removal ran to completion on the async thread"
            );
            removal.await;
        });
        assert!(!venv.exists());
        rt.block_on(async {
            std::fs::create_dir_all(dir.path().join(".venv.building-x/a")).expect("mkdir");
            let mut leftovers = std::pin::pin!(remove_leftovers(dir.path()));
            assert!(futures::poll!(leftovers.as_mut()).is_pending());
            leftovers.await;
        });
        assert!(!dir.path().join(".venv.building-x").exists());
    }

    /// The check of a published venv runs its Python, and so its dependencies' `.pth` files:
    /// with the plugin allow-list, not the daemon's environment.
    #[tokio::test]
    async fn the_published_venv_is_checked_without_the_daemons_environment() {
        use std::os::unix::fs::PermissionsExt;
        let wd = tempfile::tempdir().expect("tempdir");
        let building = wd.path().join(format!("{BUILDING_PREFIX}test"));
        let bin = building.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        let seen = wd.path().join("seen-env");
        let python = venv_python(&building);
        std::fs::write(
            &python,
            format!(
                "#!/bin/sh\nenv > '{}'\ncd \"$(dirname \"$0\")/..\" && pwd -P\n",
                seen.display()
            ),
        )
        .expect("write");
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        publish_venv(wd.path(), &building).await.expect("publish");
        let seen = std::fs::read_to_string(&seen).expect("env");
        // cargo sets CARGO_MANIFEST_DIR for the test process: a stand-in for the daemon's
        // secrets, which the allow-list drops the same way.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        assert!(!seen.contains("CARGO_MANIFEST_DIR="), "{seen}");
        assert!(seen.contains("INSTALL_METHOD=local"), "{seen}");
    }

    #[test]
    fn versions_match_by_components() {
        assert!(version_matches("3.11", "3.11.7"));
        assert!(version_matches("3.11.7", "3.11.7"));
        assert!(!version_matches("3.1", "3.11.7"));
        assert!(!version_matches("3.12", "3.11.7"));
        assert!(!version_matches("", "3.11.7"));
        assert!(!version_matches("3.11.7", "3.11"));
    }

    #[test]
    fn uv_failure_names_the_package_and_index() {
        let failure = UvFailure {
            what: "failed".into(),
            tail: vec![
                "error: No solution found when resolving dependencies".into(),
                "  cause: Because definitely-not-a-real-package-xyz was not found in the package registry and you require definitely-not-a-real-package-xyz==1.0, we can conclude that your requirements are unsatisfiable.".into(),
            ],
        };
        assert_eq!(
            failure.culprit(None),
            "package `definitely-not-a-real-package-xyz` was not found; "
        );
        assert_eq!(
            failure.culprit(Some("https://mirror/simple")),
            "package `definitely-not-a-real-package-xyz` was not found (index https://mirror/simple); "
        );
        let failure = UvFailure {
            what: "failed".into(),
            tail: vec![
                "error: Request failed after 3 retries in 5.9s".into(),
                "  cause: Failed to fetch: https://example.invalid/simple/dify-plugin/".into(),
            ],
        };
        assert_eq!(
            failure.culprit(None),
            "index https://example.invalid/simple/dify-plugin/; "
        );
        let failure = UvFailure {
            what: "failed".into(),
            tail: vec!["  cause: Because there is no version of dify-plugin==99.0.0 and you require dify-plugin==99.0.0, we can conclude".into()],
        };
        assert_eq!(
            failure.culprit(None),
            "no matching version of `dify-plugin==99.0.0`; "
        );
    }

    #[test]
    fn install_args_follow_upstream() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pyproject.toml"), "").expect("write");
        std::fs::write(dir.path().join("uv.lock"), "").expect("write");
        let mut cfg = RuntimeConfig::new(dir.path());
        cfg.pip_extra_args = vec!["--frozen".into(), "--no-cache".into()];
        cfg.pip_mirror_url = Some("https://m/simple".into());
        assert_eq!(
            pick_dependency_file(dir.path(), true),
            Some(DependencyFile::Pyproject)
        );
        let venv = dir.path().join(".venv.building-x");
        let args = install_args(&cfg, DependencyFile::Pyproject, dir.path(), &venv);
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let python = venv_python(&venv).to_string_lossy().into_owned();
        assert_eq!(
            args,
            [
                "sync",
                "--no-dev",
                "--python",
                &python,
                "--frozen",
                "-i",
                "https://m/simple",
                "--no-cache"
            ]
        );
        std::fs::write(dir.path().join("requirements.txt"), "").expect("write");
        assert_eq!(
            pick_dependency_file(dir.path(), true),
            Some(DependencyFile::Requirements)
        );
        assert_eq!(
            pick_dependency_file(dir.path(), false),
            Some(DependencyFile::Pyproject)
        );
    }
}
