//! Plugins cannot reach the daemon's secrets (issue 9, item 4): checked from inside a real SDK
//! plugin installed in the real daemon, with the fixture's probe tool, which tries to read the
//! paths it is given and to write in its own directories.
//!
//! Run as root (as CI does), the daemon runs each plugin under its own uid: the plugin cannot
//! read `/proc/<daemon>/environ`, the SQLite database or another plugin's working directory,
//! and can write in its own. Run as another user, only the not-dumpable daemon protects its
//! environment; that part is checked either way.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugind_test_support::{
    assemble_fixture, pack_fixture, Client, Daemon, DaemonOptions, FakeDify, Variant,
    ECHO_PLUGIN_ID, ECHO_PROVIDER, PROBE_TOOL,
};
use serde_json::{json, Value};

const TENANT: &str = "0b7c6f2e-5d41-4e1a-8c3b-9a2f1e0d4c55";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
const OTHER_PLUGIN_ID: &str = "plugind/echo_other";
const SECRET: &str = "db-secret-for-the-sandbox-test";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .expect("stat /proc/self")
        .uid()
        == 0
}

/// The echo fixture under another plugin id (`plugind/echo_other`), so that it gets its own uid.
fn pack_other_plugin() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("tempdir");
    assemble_fixture(Variant::Latest, tmp.path());
    let manifest = tmp.path().join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(text.contains("\nname: echo\n"), "{text}");
    std::fs::write(
        &manifest,
        text.replace("\nname: echo\n", "\nname: echo_other\n"),
    )
    .expect("write manifest");
    plugind_package::pack_dir(tmp.path()).expect("pack")
}

async fn start(data_dir: &Path, dify: &FakeDify, extra_env: Vec<(String, String)>) -> Daemon {
    Daemon::start(
        &bin(),
        DaemonOptions {
            extra_env,
            ..DaemonOptions::new(data_dir)
        },
        dify,
    )
    .await
    .expect("daemon starts")
}

/// Uploads and installs `package`; the finished install task.
async fn install(client: &Client, package: Vec<u8>) -> Value {
    let (status, resp) = client
        .upload_package(TENANT, package, false)
        .await
        .expect("upload");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["code"], 0, "{resp}");
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    client
        .install_and_wait(TENANT, &uid, INSTALL_TIMEOUT)
        .await
        .expect("install task")
}

async fn install_ok(client: &Client, package: Vec<u8>) {
    let task = install(client, package).await;
    assert_eq!(task["status"], "success", "install task: {task}");
}

/// What the probe tool of `plugin_id` reports for `paths`. Retries while the plugin is not
/// running yet (after a daemon restart).
async fn probe(client: &Client, plugin_id: &str, paths: &[&Path]) -> Value {
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let body = json!({
        "user_id": "u-1", "conversation_id": null, "app_id": "app-1", "message_id": null,
        "data": {"provider": ECHO_PROVIDER, "tool": PROBE_TOOL, "credentials": {},
                 "credential_type": "api-key",
                 "tool_parameters": {"paths": serde_json::to_string(&paths).expect("json")}}
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, events) = client
            .dispatch(TENANT, plugin_id, "tool/invoke", body.clone())
            .await
            .expect("dispatch");
        if let Some(report) = events
            .first()
            .filter(|e| e["code"] == 0)
            .map(|e| e["data"]["message"]["json_object"].clone())
        {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "probe of {plugin_id} failed: HTTP {status} {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The working directory of `plugin_id` (`<data>/cwd/<author>/<name>-<version>@<checksum>`).
fn working_dir(data_dir: &Path, plugin_id: &str) -> PathBuf {
    let (author, name) = plugin_id.split_once('/').expect("author/name");
    let parent = data_dir.join("cwd").join(author);
    std::fs::read_dir(&parent)
        .expect("author dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}-")))
        })
        .unwrap_or_else(|| panic!("no working dir of {plugin_id} in {}", parent.display()))
}

fn denied(report: &Value, path: &Path) {
    let outcome = &report["read"][path.display().to_string()];
    assert_eq!(
        outcome["ok"],
        false,
        "the plugin could read {}: {report}",
        path.display()
    );
    assert_eq!(
        outcome["error"],
        "PermissionError",
        "{}: {outcome}",
        path.display()
    );
}

fn allowed(report: &Value, path: &Path) {
    let outcome = &report["read"][path.display().to_string()];
    assert_eq!(outcome["ok"], true, "{}: {report}", path.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_cannot_read_the_daemons_secrets_or_another_plugins_files() {
    let dify = FakeDify::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = tmp.path().join("data");
    let secrets = vec![("DB_PASSWORD".to_owned(), SECRET.to_owned())];
    let mut daemon = start(&data_dir, &dify, secrets).await;
    let client = daemon.client();
    install_ok(&client, pack_fixture(Variant::Latest)).await;
    install_ok(&client, pack_other_plugin()).await;

    let data_dir = data_dir.canonicalize().expect("canonical");
    let daemon_pid = daemon.pid().expect("daemon pid");
    let environ = PathBuf::from(format!("/proc/{daemon_pid}/environ"));
    let database = data_dir.join("plugind.db");
    let storage = data_dir.join("storage");
    let own_dir = working_dir(&data_dir, ECHO_PLUGIN_ID);
    let other_dir = working_dir(&data_dir, OTHER_PLUGIN_ID);
    let other_main = other_dir.join("main.py");
    let own_main = own_dir.join("main.py");
    // The daemon itself can read all of them: what fails below is the plugin's access.
    let environ_text = std::fs::read(&environ).expect("environ as the test");
    assert!(String::from_utf8_lossy(&environ_text).contains(SECRET));
    for path in [&database, &other_main, &own_main] {
        assert!(path.is_file(), "{}", path.display());
    }

    let paths = [
        environ.as_path(),
        &database,
        &storage,
        &other_dir,
        &other_main,
        &own_dir,
        &own_main,
    ];
    let report = probe(&client, ECHO_PLUGIN_ID, &paths).await;
    assert_eq!(
        report["ppid"], daemon_pid,
        "the plugin is the daemon's child: {report}"
    );
    denied(&report, &environ);
    allowed(&report, &own_dir);
    allowed(&report, &own_main);

    if !is_root() {
        // No uid separation without root: the plugin is the daemon's uid, and only the
        // not-dumpable daemon keeps /proc/<pid>/environ closed (docs/SECURITY.md).
        assert_eq!(
            report["uid"],
            std::fs::metadata("/proc/self").expect("stat").uid()
        );
        return;
    }

    denied(&report, &database);
    denied(&report, &storage);
    denied(&report, &other_dir);
    denied(&report, &other_main);
    let uid = report["uid"].as_u64().expect("uid");
    assert_ne!(uid, 0, "the plugin runs as root: {report}");
    assert_eq!(report["gid"], uid, "{report}");
    assert!(
        report["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .all(|g| g.as_u64() == Some(uid)),
        "supplementary groups kept: {report}"
    );
    for place in ["cwd", "home", "tmp"] {
        assert_eq!(report["write"][place]["ok"], true, "{place}: {report}");
    }
    let cwd = PathBuf::from(report["cwd"].as_str().expect("cwd"));
    assert_eq!(cwd.canonicalize().expect("cwd"), own_dir);
    for place in ["home", "tmp"] {
        let dir = PathBuf::from(report[place].as_str().expect("dir"));
        assert!(
            dir.starts_with(&own_dir),
            "{place} is not private: {report}"
        );
    }

    // The other plugin has its own uid, and cannot read the first one's directory either.
    let other = probe(
        &client,
        OTHER_PLUGIN_ID,
        &[&own_dir, &own_main, &other_main],
    )
    .await;
    let other_uid = other["uid"].as_u64().expect("uid");
    assert_ne!(other_uid, 0);
    assert_ne!(other_uid, uid, "two plugins share a uid");
    denied(&other, &own_dir);
    denied(&other, &own_main);
    allowed(&other, &other_main);

    // A restarted daemon gives each plugin the same uid again (its files stay its own).
    daemon.restart().await.expect("restart");
    let again = probe(&client, ECHO_PLUGIN_ID, &[&own_main]).await;
    assert_eq!(again["uid"], uid, "{again}");
    let other_again = probe(&client, OTHER_PLUGIN_ID, &[&other_main]).await;
    assert_eq!(other_again["uid"], other_uid, "{other_again}");
    assert_eq!(again["write"]["cwd"]["ok"], true, "{again}");
}

/// An interpreter the plugin's uid cannot reach fails the launch with one clear message; the
/// plugin is never run as root instead.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_interpreter_fails_the_install_with_the_fix() {
    if !is_root() {
        // Without root there is no uid to switch to, so nothing can be unreachable for it; the
        // start-up refusal of PLUGIN_UID_SEPARATION=true is what applies.
        let dify = FakeDify::start().await;
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = match Daemon::start(
            &bin(),
            DaemonOptions {
                extra_env: vec![("PLUGIN_UID_SEPARATION".into(), "true".into())],
                ..DaemonOptions::new(tmp.path().join("data"))
            },
            &dify,
        )
        .await
        {
            Ok(_) => panic!("PLUGIN_UID_SEPARATION=true started without root"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("needs plugind to run as root"), "{err}");
        return;
    }
    let python = pyenv_python("3.12");
    let tmp = tempfile::tempdir().expect("tempdir");
    let private = tmp.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    std::os::unix::fs::symlink(&python, private.join("python3.12")).expect("symlink");
    set_mode(&private, 0o700);

    let dify = FakeDify::start().await;
    let data_dir = tmp.path().join("data");
    let env = vec![(
        "PYTHON_INTERPRETER_PATH".to_owned(),
        private.join("python3.12").display().to_string(),
    )];
    let daemon = start(&data_dir, &dify, env).await;
    let task = install(&daemon.client(), pack_fixture(Variant::Latest)).await;
    assert_eq!(task["status"], "failed", "{task}");
    let message = task["plugins"][0]["message"].as_str().expect("message");
    for part in [
        "cannot be reached by the plugin's uid",
        &format!(
            "{} (mode 0700, owner uid 0) is not searchable",
            private.display()
        ),
        &format!("chmod o+x {}", private.display()),
        "PLUGIN_UID_SEPARATION=false",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    assert!(
        !daemon.log().contains("plugin process started"),
        "a process was started anyway:\n{}",
        daemon.log_tail(40)
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The newest pyenv interpreter of `version` (`$PYENV_ROOT` or `~/.pyenv`).
fn pyenv_python(version: &str) -> PathBuf {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))
        .expect("PYENV_ROOT or HOME");
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .expect("pyenv versions")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{version}.")))
        })
        .collect();
    found.sort();
    let dir = found.pop().expect("a pyenv interpreter");
    dir.join("bin").join(format!("python{version}"))
}
