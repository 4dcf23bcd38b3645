//! The local launch pipeline: extract → interpreter → venv → dependencies → first instance, each
//! step timed, the venv published only when complete.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::env::{self, PythonChoice};
use super::instance::InstanceOwner;
use super::{extract_if_needed, LocalRuntime};
use crate::config::{RuntimeConfig, RuntimeTuning};
use crate::lifecycle::Lifecycle;
use crate::steps::{format_steps, LaunchError, LaunchReport, Step, StepTimer};

/// What a launch needs from the registry.
pub(crate) struct LaunchContext<'a> {
    pub cfg: &'a Arc<RuntimeConfig>,
    pub tuning: &'a Arc<RuntimeTuning>,
    pub lifecycle: &'a Lifecycle,
    pub progress: &'a (dyn Fn(String) + Send + Sync),
}

/// A launched plugin with its first, ready instance (owned: dropping it kills the process).
pub(crate) struct Launched {
    pub runtime: Arc<LocalRuntime>,
    pub first: InstanceOwner,
    pub report: LaunchReport,
}

fn entrypoint(decl: &PluginDeclaration) -> String {
    match decl.meta.runner.entrypoint.trim() {
        "" => "main".to_owned(),
        e => e.to_owned(),
    }
}

/// Extracts the package into `wd` if absent, builds the venv unless a valid one is there, starts
/// `python -m <entrypoint>` and resolves at its first heartbeat.
pub(crate) async fn launch(
    ctx: &LaunchContext<'_>,
    uid: &PluginUniqueIdentifier,
    wd: PathBuf,
    package: &[u8],
    decl: &PluginDeclaration,
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

    let interpreter = if env::venv_is_valid(&wd) {
        let venv = wd.join(env::VENV_DIR);
        let version = env::venv_version(&venv).unwrap_or_else(|| "?".into());
        let described = format!("Python {version} from the existing venv {}", venv.display());
        tracing::info!(plugin = %uid, "reusing {described}");
        progress(format!("reusing {described}"));
        described
    } else {
        build_environment(ctx.cfg, uid, &wd, decl, &mut timer, progress).await?
    };

    progress("starting the plugin process".into());
    let runtime = Arc::new(LocalRuntime {
        uid: uid.clone(),
        wd,
        entrypoint: entrypoint(decl),
        cfg: ctx.cfg.clone(),
        tuning: ctx.tuning.clone(),
        lifecycle: ctx.lifecycle.clone(),
        current: watch::channel(None).0,
        cancel: CancellationToken::new(),
        last_exit: Mutex::new(None),
    });
    let first = timer.run(Step::Launch, runtime.start_instance()).await?;
    tracing::info!(plugin = %uid, pid = first.pid(), steps = %format_steps(&timer.done), "plugin launched");
    progress(format!("plugin ready (pid {})", first.pid()));
    // Serving from now on, before the supervisor task first runs.
    runtime.current.send_replace(Some(first.shared()));
    Ok(Launched {
        runtime,
        first,
        report: LaunchReport {
            steps: timer.done,
            interpreter,
        },
    })
}

/// Interpreter → venv → dependencies, publishing `.venv` only on success.
pub(crate) async fn build_environment(
    cfg: &RuntimeConfig,
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
        .run(Step::Interpreter, async {
            let uv = env::find_uv(cfg).await?;
            let python = env::find_python(cfg, &uv, &want).await?;
            Ok((uv, python))
        })
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
