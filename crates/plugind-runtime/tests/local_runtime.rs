//! The local runtime against the real `dify_plugin` SDK (0.7.4 on CPython 3.11): environment
//! build and reuse, sessions, stray prints, huge lines, the environment allow-list, crashes and
//! restarts, a failing dependency, a plugin that dies at start, and upstream's marketplace
//! package (SDK 0.0.1b75 on 3.12).
//!
//! Needs `uv` (on PATH or as a Python package) and pyenv's 3.11/3.12, plus access to PyPI or a
//! warm uv cache at `~/.cache/plugind-test/uv`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugind_entities::declaration::{PluginMeta, PluginRunner};
use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use plugind_runtime::{
    PluginHandle, RuntimeConfig, RuntimeTuning, Runtimes, SessionEvent, SessionRequest, Step,
};
use serde_json::json;

const MANIFEST: &str = r#"version: 0.0.1
type: plugin
author: rusttest
name: echo
label:
  en_US: Echo
description:
  en_US: Echo test plugin
icon: icon.svg
created_at: "2024-01-01T00:00:00Z"
resource:
  memory: 268435456
  permission:
    tool:
      enabled: true
plugins:
  tools:
    - provider/echo.yaml
meta:
  version: 0.0.1
  arch: [amd64, arm64]
  runner:
    language: python
    version: "3.11"
    entrypoint: main
"#;

const PROVIDER_YAML: &str = r#"identity:
  author: rusttest
  name: echo
  label: {en_US: Echo}
  description: {en_US: Echo provider}
  icon: icon.svg
tools:
  - tools/echo.yaml
extra:
  python:
    source: provider/echo.py
"#;

const PROVIDER_PY: &str = r#"from typing import Any

from dify_plugin import ToolProvider


class EchoProvider(ToolProvider):
    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        if credentials.get("fail"):
            raise ValueError("bad credentials")
"#;

const TOOL_YAML: &str = r#"identity:
  name: echo
  author: rusttest
  label: {en_US: Echo}
description:
  human: {en_US: Echo the input}
  llm: Echo the input
parameters:
  - name: text
    type: string
    required: false
    form: llm
    label: {en_US: Text}
    human_description: {en_US: Text to echo}
    llm_description: Text to echo
  - name: mode
    type: string
    required: false
    form: llm
    label: {en_US: Mode}
    human_description: {en_US: "text | blob | error | crash | sleep | print | big | env"}
    llm_description: Mode
extra:
  python:
    source: tools/echo.py
"#;

const TOOL_PY: &str = r#"import os
import time
from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage


class EchoTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        text = str(tool_parameters.get("text") or "")
        mode = tool_parameters.get("mode") or "text"
        if mode == "error":
            raise RuntimeError("boom: " + text)
        if mode == "blob":
            yield self.create_blob_message(b"x" * 20000, meta={"mime_type": "application/octet-stream"})
        elif mode == "crash":
            os._exit(1)
        elif mode == "sleep":
            time.sleep(float(text or "30"))
            yield self.create_text_message("slept")
        elif mode == "print":
            print("a stray print from plugin code", flush=True)
            yield self.create_text_message(text)
        elif mode == "big":
            yield self.create_text_message("b" * (6 * 1024 * 1024 + 17))
        elif mode == "env":
            yield self.create_text_message(",".join(sorted(os.environ)))
        else:
            yield self.create_text_message(text)
"#;

const MAIN_PY: &str = r#"from dify_plugin import DifyPluginEnv, Plugin

plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=120))

if __name__ == "__main__":
    plugin.run()
"#;

const ICON: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16"/></svg>"#;

const BAD_PACKAGE: &str = "definitely-not-a-real-package-xyz";

fn write_plugin(dir: &Path) {
    let files = [
        ("manifest.yaml", MANIFEST),
        ("main.py", MAIN_PY),
        ("requirements.txt", "dify_plugin==0.7.4\n"),
        ("provider/echo.yaml", PROVIDER_YAML),
        ("provider/echo.py", PROVIDER_PY),
        ("tools/echo.yaml", TOOL_YAML),
        ("tools/echo.py", TOOL_PY),
        ("_assets/icon.svg", ICON),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write fixture");
    }
}

fn declaration(version: &str) -> PluginDeclaration {
    PluginDeclaration {
        version: "0.0.1".into(),
        kind: "plugin".into(),
        author: "rusttest".into(),
        name: "echo".into(),
        meta: PluginMeta {
            version: "0.0.1".into(),
            runner: PluginRunner {
                language: "python".into(),
                version: version.into(),
                entrypoint: "main".into(),
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

fn uv_cache() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/plugind-test/uv")
}

fn config(working_path: &Path) -> RuntimeConfig {
    let mut cfg = RuntimeConfig::new(working_path);
    cfg.uv_cache_dir = uv_cache();
    cfg
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

fn tool_request(mode: &str, text: &str) -> SessionRequest {
    SessionRequest {
        session_id: uuid::Uuid::new_v4().to_string(),
        data: json!({
            "user_id": "u1",
            "type": "tool",
            "action": "invoke_tool",
            "provider": "echo",
            "tool": "echo",
            "credentials": {},
            "tool_parameters": {"text": text, "mode": mode},
        }),
        ..Default::default()
    }
}

/// Runs one tool call to its end (or close) and returns every event.
async fn call(handle: &PluginHandle, mode: &str, text: &str) -> Vec<SessionEvent> {
    let mut session = handle
        .open_session(tool_request(mode, text))
        .await
        .expect("open session");
    let mut events = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), session.next())
            .await
            .expect("session answered in time");
        match next {
            Some(event) => events.push(event),
            None => return events,
        }
    }
}

fn texts(events: &[SessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Stream(chunk) => {
                let chunk = chunk.to_value().expect("chunks are JSON");
                (chunk["type"] == "text")
                    .then(|| chunk["message"]["text"].as_str().map(str::to_owned))
                    .flatten()
            }
            _ => None,
        })
        .collect()
}

fn has_step(steps: &[(Step, Duration)], step: Step) -> bool {
    steps.iter().any(|(s, _)| *s == step)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_plugin_lifecycle_against_the_real_sdk() {
    init_tracing();
    // Secrets in the daemon's environment must not reach the plugin.
    std::env::set_var("SERVER_KEY", "daemon-secret");
    std::env::set_var("DB_PASSWORD", "daemon-secret");
    std::env::set_var("MAX_WORKER", "50");

    let root = tempfile::tempdir().expect("tempdir");
    let source = root.path().join("source");
    write_plugin(&source);
    let package = plugind_package::pack_dir(&source).expect("pack");
    let working_path = root.path().join("cwd");
    let runtimes = Runtimes::new(config(&working_path));
    let uid = PluginUniqueIdentifier::parse("rusttest/echo:0.0.1@0123456789abcdef0123456789abcdef")
        .expect("uid");
    let decl = declaration("3.11");
    let wd = runtimes.working_dir(&uid);

    // Cold launch: every step runs.
    let started = Instant::now();
    let report = runtimes
        .launch(&uid, &package, &decl, &|msg| eprintln!("progress: {msg}"))
        .await
        .expect("launch");
    eprintln!(
        "cold launch {:.2}s: {:?}; {}",
        started.elapsed().as_secs_f64(),
        report.steps,
        report.interpreter
    );
    for step in [
        Step::Extract,
        Step::Interpreter,
        Step::Venv,
        Step::Dependencies,
        Step::Launch,
    ] {
        assert!(
            has_step(&report.steps, step),
            "{step} missing from {:?}",
            report.steps
        );
    }
    assert!(
        report.interpreter.contains("3.11"),
        "{}",
        report.interpreter
    );
    assert!(wd.join(".venv/dify/plugin.json").is_file());
    assert!(wd.join("manifest.yaml").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&wd)
        .expect("wd")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".venv."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(runtimes.running(), vec![uid.clone()]);

    // Idempotent.
    let again = runtimes
        .launch(&uid, &package, &decl, &|_| {})
        .await
        .expect("relaunch while running");
    assert!(again.steps.is_empty());

    let handle = runtimes.get(&uid).expect("handle");
    assert!(handle.is_ready());
    let first_pid = handle.pid().expect("pid");

    // Echo: one stream chunk, then end.
    let events = call(&handle, "text", "hi <&>").await;
    assert_eq!(texts(&events), ["hi <&>"]);
    assert_eq!(events.last(), Some(&SessionEvent::End));

    // The plugin's error, then end.
    let events = call(&handle, "error", "x").await;
    match events.first() {
        Some(SessionEvent::Error(err)) => {
            assert_eq!(err["error_type"], "RuntimeError");
            assert_eq!(err["message"], "boom: x");
        }
        other => panic!("expected an error first, got {other:?}"),
    }
    assert_eq!(events.last(), Some(&SessionEvent::End));

    // A stray print neither breaks this call nor the next one.
    let events = call(&handle, "print", "after print").await;
    assert_eq!(texts(&events), ["after print"]);
    let events = call(&handle, "text", "still fine").await;
    assert_eq!(texts(&events), ["still fine"]);

    // A line over 6 MiB gets through (upstream's 5 MiB cap would kill the plugin).
    let events = call(&handle, "big", "").await;
    let big = texts(&events);
    assert_eq!(big.len(), 1);
    assert_eq!(big[0].len(), 6 * 1024 * 1024 + 17);
    assert_eq!(handle.pid(), Some(first_pid));

    // Blobs are chunked by the SDK.
    let events = call(&handle, "blob", "").await;
    let chunks = events
        .iter()
        .filter(|e| matches!(e, SessionEvent::Stream(c) if c.to_value().expect("JSON")["type"] == "blob_chunk"))
        .count();
    assert_eq!(chunks, 4);

    // Concurrent sessions interleave: a quick call finishes while a slow one is in flight.
    let slow = handle
        .open_session(tool_request("sleep", "1"))
        .await
        .expect("slow");
    let events = call(&handle, "text", "quick").await;
    assert_eq!(texts(&events), ["quick"]);
    drop(slow);

    // The environment is allow-listed.
    let events = call(&handle, "env", "").await;
    let keys = texts(&events).join(",");
    let keys: Vec<&str> = keys.split(',').collect();
    assert!(keys.contains(&"INSTALL_METHOD"), "{keys:?}");
    assert!(keys.contains(&"PATH"), "{keys:?}");
    assert!(keys.contains(&"MAX_WORKER"), "{keys:?}");
    for secret in ["SERVER_KEY", "DB_PASSWORD"] {
        assert!(!keys.contains(&secret), "{secret} leaked: {keys:?}");
    }

    // kill -9 during a session: the session is closed at once, the plugin comes back.
    let mut in_flight = handle
        .open_session(tool_request("sleep", "30"))
        .await
        .expect("sleep session");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let closed = tokio::time::timeout(Duration::from_secs(5), in_flight.next())
        .await
        .expect("closed in time");
    let closed_after = killed_at.elapsed();
    match closed {
        Some(SessionEvent::Closed(reason)) => assert!(reason.contains("signal 9"), "{reason}"),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(
        closed_after < Duration::from_secs(1),
        "closed after {closed_after:?}"
    );
    assert!(in_flight.next().await.is_none());
    let restart_started = Instant::now();
    let events = call(&handle, "text", "back again").await;
    eprintln!(
        "closed {:.3}s after kill; served again {:.2}s later",
        closed_after.as_secs_f64(),
        restart_started.elapsed().as_secs_f64()
    );
    assert_eq!(texts(&events), ["back again"]);
    let second_pid = handle.pid().expect("new pid");
    assert_ne!(second_pid, first_pid);

    // A tool that exits the process: its session gets Closed with the exit code, and the
    // next call is served by the next instance (the back-off is 1 s now).
    let events = call(&handle, "crash", "").await;
    match events.last() {
        Some(SessionEvent::Closed(reason)) => assert!(reason.contains("exit code 1"), "{reason}"),
        other => panic!("expected Closed, got {other:?}"),
    }
    let events = call(&handle, "text", "after crash").await;
    assert_eq!(texts(&events), ["after crash"]);

    // Stop: sessions in flight are closed, the handle no longer serves, the registry forgets
    // the plugin.
    let pid_before_stop = handle.pid().expect("pid");
    let mut in_flight = handle
        .open_session(tool_request("sleep", "30"))
        .await
        .expect("sleep session");
    runtimes.stop(&uid).await;
    match tokio::time::timeout(Duration::from_secs(1), in_flight.next())
        .await
        .expect("closed at stop")
    {
        Some(SessionEvent::Closed(reason)) => {
            assert!(reason.starts_with("plugin stopped"), "{reason}")
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(runtimes.get(&uid).is_none());
    assert!(runtimes.running().is_empty());
    assert!(!handle.is_ready());
    match handle.open_session(tool_request("text", "x")).await {
        Err(err) => assert!(
            err.to_string().contains("plugin runtime not found"),
            "{err}"
        ),
        Ok(_) => panic!("a stopped plugin accepted a session"),
    }
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid_before_stop as i32), None).is_err(),
        "process still alive"
    );

    // Relaunch reuses the venv.
    let started = Instant::now();
    let report = runtimes
        .launch(&uid, &package, &decl, &|_| {})
        .await
        .expect("warm launch");
    eprintln!(
        "warm launch {:.2}s: {:?}",
        started.elapsed().as_secs_f64(),
        report.steps
    );
    assert!(
        !has_step(&report.steps, Step::Venv) && !has_step(&report.steps, Step::Dependencies),
        "{:?}",
        report.steps
    );
    assert!(
        report.interpreter.contains("existing venv"),
        "{}",
        report.interpreter
    );
    let handle = runtimes.get(&uid).expect("handle");
    assert_eq!(texts(&call(&handle, "text", "warm").await), ["warm"]);
    runtimes.stop(&uid).await;

    // A failing requirement: the dependencies step names the package, the working venv stays.
    let marker_before = std::fs::read(wd.join(".venv/dify/plugin.json")).expect("marker");
    std::fs::write(
        wd.join("requirements.txt"),
        format!("dify_plugin==0.7.4\n{BAD_PACKAGE}==1.0\n"),
    )
    .expect("write");
    let err = runtimes
        .rebuild_environment(&uid, &decl, &|_| {})
        .await
        .expect_err("bad requirement must fail");
    eprintln!("{err}");
    assert_eq!(err.step, Step::Dependencies);
    assert!(err.message.contains(BAD_PACKAGE), "{}", err.message);
    assert!(
        err.to_string().starts_with("dependencies failed: "),
        "{err}"
    );
    assert_eq!(
        std::fs::read(wd.join(".venv/dify/plugin.json")).expect("marker"),
        marker_before
    );
    assert!(wd.join(".venv/bin/python").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&wd)
        .expect("wd")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".venv."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::write(wd.join("requirements.txt"), "dify_plugin==0.7.4\n").expect("write");
    runtimes
        .launch(&uid, &package, &decl, &|_| {})
        .await
        .expect("launch after failed rebuild");
    let handle = runtimes.get(&uid).expect("handle");
    assert_eq!(texts(&call(&handle, "text", "intact").await), ["intact"]);
    runtimes.stop(&uid).await;

    // A plugin that dies at start fails the launch step at once, with its stderr.
    std::fs::write(
        wd.join("main.py"),
        "import sys\nsys.stderr.write('kaboom at start\\n')\nsys.exit(3)\n",
    )
    .expect("write");
    let started = Instant::now();
    let err = runtimes
        .launch(&uid, &package, &decl, &|_| {})
        .await
        .expect_err("must fail");
    assert_eq!(err.step, Step::Launch);
    assert!(
        err.message.contains("kaboom at start") && err.message.contains("exit code 3"),
        "{}",
        err.message
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(runtimes.get(&uid).is_none());
    runtimes.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_dependency_on_a_fresh_directory_leaves_no_venv() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let runtimes = Runtimes::new(config(root.path()));
    let uid =
        PluginUniqueIdentifier::parse("rusttest/broken:0.0.1@0123456789abcdef0123456789abcdef")
            .expect("uid");
    let wd = runtimes.working_dir(&uid);
    write_plugin(&wd);
    std::fs::write(wd.join("requirements.txt"), format!("{BAD_PACKAGE}==1.0\n")).expect("write");
    // A leftover from an interrupted build is cleaned up.
    std::fs::create_dir_all(wd.join(".venv.building-stale/bin")).expect("mkdir");
    let err = runtimes
        .launch(&uid, &[], &declaration("3.11"), &|_| {})
        .await
        .expect_err("must fail");
    eprintln!("{err}");
    assert_eq!(err.step, Step::Dependencies);
    assert!(
        err.message
            .contains(&format!("package `{BAD_PACKAGE}` was not found")),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("last "),
        "uv output tail missing: {}",
        err.message
    );
    assert!(has_step(&err.steps, Step::Venv));
    assert!(!wd.join(".venv").exists());
    let entries: Vec<String> = std::fs::read_dir(&wd)
        .expect("wd")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !entries.iter().any(|n| n.starts_with(".venv")),
        "{entries:?}"
    );
    assert!(runtimes.get(&uid).is_none());

    // An interpreter that does not exist fails the interpreter step, naming what was tried.
    let err = runtimes
        .launch(&uid, &[], &declaration("2.99"), &|_| {})
        .await
        .expect_err("no such python");
    assert_eq!(err.step, Step::Interpreter);
    assert!(
        err.message.contains("no Python 2.99 found") && err.message.contains("pyenv"),
        "{}",
        err.message
    );
    assert!(runtimes.get(&uid).is_none());
}

/// Upstream's own package lives beside the repository (`../shared/fixtures/upstream/`) on the
/// project's machines only: built with the feature `upstream-fixtures`, which `.ci/run` enables
/// when the fixture is there.
#[cfg(feature = "upstream-fixtures")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_marketplace_package_reaches_its_first_heartbeat() {
    init_tracing();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/upstream/langgenius-agent_0.0.14.difypkg");
    let package = std::fs::read(&fixture).expect("upstream fixture present");
    let root = tempfile::tempdir().expect("tempdir");
    let runtimes = Runtimes::new(config(root.path()));
    let uid = PluginUniqueIdentifier::parse(
        "langgenius/agent:0.0.14@26958a0e80a10655ce73812bdb7c35a66ce7b16f5ac346d298bda17ff85efd1e",
    )
    .expect("uid");
    let mut decl = declaration("3.12");
    decl.author = "langgenius".into();
    decl.name = "agent".into();
    let started = Instant::now();
    let report = runtimes
        .launch(&uid, &package, &decl, &|_| {})
        .await
        .expect("agent plugin launches");
    eprintln!(
        "agent launch {:.2}s: {:?}; {}",
        started.elapsed().as_secs_f64(),
        report.steps,
        report.interpreter
    );
    assert!(
        report.interpreter.contains("3.12"),
        "{}",
        report.interpreter
    );
    let handle = runtimes.get(&uid).expect("handle");
    assert!(handle.is_ready());
    // An unrouted action is answered with a bare end.
    let mut session = handle
        .open_session(SessionRequest {
            session_id: "s-agent".into(),
            data: json!({"user_id": "u", "type": "tool", "action": "get_tool_runtime_parameters"}),
            ..Default::default()
        })
        .await
        .expect("session");
    let mut last: Option<SessionEvent> = None;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), session.next())
        .await
        .expect("answer")
    {
        last = Some(event);
    }
    assert!(
        matches!(last, Some(SessionEvent::End) | Some(SessionEvent::Error(_))),
        "{last:?}"
    );
    runtimes.shutdown().await;
    assert!(runtimes.running().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_plugins_are_restarted_and_dead_ones_time_out() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(root.path());
    // Generous: on a loaded 2-core machine the SDK can take several seconds to its first heartbeat.
    cfg.first_heartbeat_timeout = Duration::from_secs(12);
    let tuning = RuntimeTuning {
        liveness_timeout: Duration::from_secs(3),
        ..RuntimeTuning::default()
    };
    let runtimes = Runtimes::with_tuning(cfg, tuning);
    let uid =
        PluginUniqueIdentifier::parse("rusttest/quiet:0.0.1@0123456789abcdef0123456789abcdef")
            .expect("uid");
    let decl = declaration("3.11");
    let wd = runtimes.working_dir(&uid);
    write_plugin(&wd);
    // The SDK reads `.env` from its working directory: one heartbeat at start, then silence.
    std::fs::write(wd.join(".env"), "HEARTBEAT_INTERVAL=3600\n").expect("write");
    runtimes
        .launch(&uid, &[], &decl, &|_| {})
        .await
        .expect("launch");
    let handle = runtimes.get(&uid).expect("handle");
    let first_pid = handle.pid().expect("pid");

    // No output and no heartbeat for longer than the liveness limit: killed and replaced.
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.pid().is_none_or(|pid| pid == first_pid) {
        assert!(
            Instant::now() < deadline,
            "silent instance was not replaced"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(texts(&call(&handle, "text", "fresh").await), ["fresh"]);

    // A plugin that cannot come back: new sessions wait ~6 s, then `plugin runtime not found`.
    std::fs::write(wd.join("main.py"), "import sys\nsys.exit(4)\n").expect("write");
    let pid = handle.pid().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    // (A request written before the exit is noticed would be accepted, then closed.)
    while handle.is_ready() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let asked = Instant::now();
    let err = handle
        .open_session(tool_request("text", "x"))
        .await
        .err()
        .expect("no instance to serve");
    let waited = asked.elapsed();
    assert_eq!(err.to_string(), "plugin runtime not found");
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(9),
        "waited {waited:?}"
    );
    runtimes.stop(&uid).await;

    // No heartbeat at all: the launch fails after the first-heartbeat timeout, with stderr.
    std::fs::write(
        wd.join("main.py"),
        "import sys, time\nsys.stderr.write('thinking\\n')\nsys.stderr.flush()\ntime.sleep(600)\n",
    )
    .expect("write");
    let started = Instant::now();
    let err = runtimes
        .launch(&uid, &[], &decl, &|_| {})
        .await
        .expect_err("no heartbeat");
    assert_eq!(err.step, Step::Launch);
    assert!(
        err.message.contains("no heartbeat within 12 s") && err.message.contains("thinking"),
        "{}",
        err.message
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(runtimes.get(&uid).is_none());
}

/// True while `pid` exists and is not a zombie.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_gone(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "{what}: plugin process {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No code path leaves a plugin process running outside the registry: a launch dropped while
/// waiting for the first heartbeat kills its process, and so does dropping the registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_launches_and_registries_leave_no_process() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let runtimes = Runtimes::new(config(root.path()));
    let uid =
        PluginUniqueIdentifier::parse("rusttest/dropped:0.0.1@0123456789abcdef0123456789abcdef")
            .expect("uid");
    let decl = declaration("3.11");
    let wd = runtimes.working_dir(&uid);
    write_plugin(&wd);
    // A plugin that starts, says who it is, and never sends a heartbeat.
    std::fs::write(
        wd.join("main.py"),
        "import os, time\nopen('started.pid', 'w').write(str(os.getpid()))\ntime.sleep(600)\n",
    )
    .expect("write");
    let pid_file = wd.join("started.pid");
    {
        let launch = runtimes.launch(&uid, &[], &decl, &|_| {});
        // The file appears before its content: wait for a whole pid.
        let started = async {
            while std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .is_none()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            result = launch => panic!("the launch ended: {:?}", result.err()),
            () = started => {}
        }
        // Leaving this block drops the launch future mid-way.
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    wait_gone(pid, "after dropping the launch").await;
    assert!(
        runtimes
            .failure(&uid)
            .is_some_and(|r| r.contains("abandoned")),
        "the registry says why: {:?}",
        runtimes.failure(&uid)
    );
    assert!(runtimes.readiness().ready);

    // A running plugin dies with the registry that owns it.
    std::fs::write(wd.join("main.py"), MAIN_PY).expect("write");
    runtimes
        .launch(&uid, &[], &decl, &|_| {})
        .await
        .expect("launch");
    let pid = runtimes
        .get(&uid)
        .and_then(|h| h.pid())
        .expect("running pid") as i32;
    assert!(process_alive(pid));
    drop(runtimes);
    wait_gone(pid, "after dropping the registry").await;
}

/// stderr is capped per line and rate-limited: a 100 kB line arrives cut (the cut said), and a
/// flood of 1,000 lines becomes a few dozen lifecycle events, not 1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_lines_are_capped_and_floods_rate_limited() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let runtimes = Runtimes::new(config(root.path()));
    let mut events = runtimes.lifecycle().subscribe();
    let uid =
        PluginUniqueIdentifier::parse("rusttest/noisy:0.0.1@0123456789abcdef0123456789abcdef")
            .expect("uid");
    let decl = declaration("3.11");
    let wd = runtimes.working_dir(&uid);
    write_plugin(&wd);
    std::fs::write(
        wd.join("main.py"),
        format!(
            "import sys\nsys.stderr.write('x' * 100000 + '\\n')\nfor i in range(1000):\n    sys.stderr.write(f'line {{i}}\\n')\nsys.stderr.flush()\n{MAIN_PY}"
        ),
    )
    .expect("write");
    runtimes
        .launch(&uid, &[], &decl, &|_| {})
        .await
        .expect("launch");
    let mut stderr_lines = Vec::new();
    while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await
    {
        if let plugind_runtime::LifecycleKind::Stderr { line, .. } = &event.kind {
            stderr_lines.push(line.clone());
        }
    }
    let first = stderr_lines.first().expect("stderr reported");
    assert!(
        first.contains("[stderr line of 100000 bytes cut to 1024 bytes]") && first.len() < 2000,
        "{first}"
    );
    assert!(
        stderr_lines.len() <= 102,
        "{} stderr events for a flood of 1,001 lines",
        stderr_lines.len()
    );
    // The rolling tail and the status board keep recent lines without growing.
    let status = runtimes.status(&uid).expect("status");
    assert!(status.logs.len() <= 50);
    runtimes.shutdown().await;
}
