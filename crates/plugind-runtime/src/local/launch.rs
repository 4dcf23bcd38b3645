//! The local launch pipeline: extract → interpreter → venv → dependencies → first instance, each
//! step timed, the venv published only when complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use tokio_util::sync::CancellationToken;

use super::env::{self, PythonChoice};
use super::instance::InstanceOwner;
use super::{extract_if_needed, LocalRuntime};
use crate::config::{RuntimeConfig, RuntimeTuning};
use crate::lifecycle::{Lifecycle, LifecycleKind, RuntimeKind};
use crate::steps::{format_steps, LaunchError, LaunchReport, Step, StepTimer};

/// uv and the interpreter found for each runner version, so discovery (1–1.6 s of probing)
/// runs once per version per daemon, not once per install. An entry whose files are gone is
/// found again.
#[derive(Default)]
pub(crate) struct Interpreters {
    found: Mutex<HashMap<String, (PathBuf, PythonChoice)>>,
}

impl Interpreters {
    async fn find(
        &self,
        cfg: &RuntimeConfig,
        want: &str,
    ) -> Result<(PathBuf, PythonChoice), String> {
        let cached = self
            .found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(want)
            .cloned();
        if let Some((uv, python)) = cached {
            if uv.is_file() && python.path.is_file() {
                return Ok((uv, python));
            }
        }
        let uv = env::find_uv(cfg).await?;
        let python = env::find_python(cfg, &uv, want).await?;
        self.found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(want.to_owned(), (uv.clone(), python.clone()));
        Ok((uv, python))
    }
}

/// What a launch needs from the registry.
pub(crate) struct LaunchContext<'a> {
    pub cfg: &'a Arc<RuntimeConfig>,
    pub interpreters: &'a Interpreters,
    pub tuning: &'a Arc<RuntimeTuning>,
    pub lifecycle: &'a Lifecycle,
    pub progress: &'a (dyn Fn(String) + Send + Sync),
}

/// A launched plugin with its first, ready instance (owned: dropping it kills the process);
/// none when it was restored idle.
pub(crate) struct Launched {
    pub runtime: Arc<LocalRuntime>,
    pub first: Option<InstanceOwner>,
    pub report: LaunchReport,
}

fn entrypoint(decl: &PluginDeclaration) -> String {
    match decl.meta.runner.entrypoint.trim() {
        "" => "main".to_owned(),
        e => e.to_owned(),
    }
}

/// Extracts the package into `wd` if absent, builds the venv unless a valid one is there, starts
/// `python -m <entrypoint>` and resolves at its first heartbeat. When `restoring` a plugin that
/// may scale to zero with a venv already there, no process starts: it is idle until a request.
pub(crate) async fn launch(
    ctx: &LaunchContext<'_>,
    uid: &PluginUniqueIdentifier,
    wd: PathBuf,
    package: &[u8],
    decl: &PluginDeclaration,
    restoring: bool,
) -> Result<Launched, LaunchError> {
    let progress = ctx.progress;
    let mut timer = StepTimer::default();
    progress(format!("preparing {}", wd.display()));
    let extracted = timer
        .run(Step::Extract, extract_if_needed(package, &wd))
        .await?;
    if extracted {
        progress("package extracted".into());
    }
    let language = decl.meta.runner.language.trim();
    if !language.is_empty() && !language.eq_ignore_ascii_case("python") {
        return Err(timer.fail(
            Step::Interpreter,
            format!("unsupported language: {language}"),
        ));
    }

    let reused = env::venv_is_valid(&wd);
    let interpreter = if reused {
        let venv = wd.join(env::VENV_DIR);
        let version = env::venv_version(&venv).unwrap_or_else(|| "?".into());
        let described = format!("Python {version} from the existing venv {}", venv.display());
        tracing::info!(plugin = %uid, "reusing {described}");
        progress(format!("reusing {described}"));
        described
    } else {
        build_environment(
            ctx.cfg,
            ctx.interpreters,
            uid,
            &wd,
            decl,
            &mut timer,
            progress,
        )
        .await?
    };

    let runtime = Arc::new(LocalRuntime {
        uid: uid.clone(),
        wd,
        entrypoint: entrypoint(decl),
        cfg: ctx.cfg.clone(),
        tuning: ctx.tuning.clone(),
        lifecycle: ctx.lifecycle.clone(),
        bounds: ctx.tuning.scaling.bounds(uid.plugin_id()),
        replicas: Default::default(),
        cancel: CancellationToken::new(),
        last_exit: Mutex::new(None),
    });
    if restoring && reused && runtime.bounds.min == 0 {
        tracing::info!(plugin = %uid, "restored idle (scaled to zero): the first request starts it");
        ctx.lifecycle.emit(
            uid,
            RuntimeKind::Local,
            LifecycleKind::ScaleDown { replicas: 0 },
        );
        return Ok(Launched {
            runtime,
            first: None,
            report: LaunchReport {
                steps: timer.done,
                interpreter,
            },
        });
    }
    progress("starting the plugin process".into());
    let first = timer.run(Step::Launch, runtime.start_instance()).await?;
    tracing::info!(plugin = %uid, pid = first.pid(), steps = %format_steps(&timer.done), "plugin launched");
    progress(format!("plugin ready (pid {})", first.pid()));
    // Serving from now on, as replica slot 0, before the supervisor task first runs; the
    // supervisor starts the other initial replicas beside it.
    runtime.replicas.add(0);
    runtime.replicas.set_instance(0, Some(first.shared()));
    ctx.lifecycle.emit(
        uid,
        RuntimeKind::Local,
        LifecycleKind::ScaleUp {
            replicas: runtime.bounds.initial(),
        },
    );
    Ok(Launched {
        runtime,
        first: Some(first),
        report: LaunchReport {
            steps: timer.done,
            interpreter,
        },
    })
}

/// Interpreter → venv → dependencies, publishing `.venv` only on success.
pub(crate) async fn build_environment(
    cfg: &RuntimeConfig,
    interpreters: &Interpreters,
    uid: &PluginUniqueIdentifier,
    wd: &Path,
    decl: &PluginDeclaration,
    timer: &mut StepTimer,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<String, LaunchError> {
    let want = match decl.meta.runner.version.trim() {
        "" => env::DEFAULT_PYTHON_VERSION.to_owned(),
        v => v.to_owned(),
    };
    let (uv, python): (PathBuf, PythonChoice) = timer
        .run(Step::Interpreter, interpreters.find(cfg, &want))
        .await?;
    let described = python.describe();
    tracing::info!(plugin = %uid, uv = %uv.display(), "building the venv with {described}");
    progress(format!("using {described}"));
    let building = timer
        .run(Step::Venv, env::create_venv(cfg, &uv, wd, &python.path))
        .await?;
    let installed = timer
        .run(Step::Dependencies, async {
            env::install_dependencies(cfg, &uv, wd, &building, progress).await?;
            env::publish_venv(wd, &building).await
        })
        .await;
    if installed.is_err() {
        env::discard(&building).await;
    }
    installed?;
    Ok(described)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Discovery runs once per runner version; a cached interpreter that disappeared is found
    /// again.
    #[tokio::test]
    async fn interpreters_are_found_once_per_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let probes = dir.path().join("probes");
        let python = dir.path().join("python");
        std::fs::write(
            &python,
            format!(
                "#!/bin/sh\necho probe >> '{}'\necho 3.99.1\n",
                probes.display()
            ),
        )
        .expect("write");
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let uv = dir.path().join("uv");
        std::fs::write(&uv, "").expect("write");
        let mut cfg = RuntimeConfig::new(dir.path());
        cfg.uv_path = Some(uv);
        cfg.python_interpreter_path = Some(python.clone());
        let interpreters = Interpreters::default();
        let count = || std::fs::read_to_string(&probes).map_or(0, |s| s.lines().count());
        for _ in 0..3 {
            let (_, found) = interpreters.find(&cfg, "3.99").await.expect("found");
            assert_eq!(found.version, "3.99.1");
        }
        assert_eq!(count(), 1, "probed once for three launches");
        std::fs::rename(&python, dir.path().join("python-moved")).expect("move");
        assert!(interpreters.find(&cfg, "3.99").await.is_err());
    }
}
