//! End-to-end: `install/upgrade` and the clean-up of versions nothing references any more
//! (issue 11), on the real daemon binary running two versions of the fixture plugin on the real
//! SDK.
//!
//! * upgrade 0.0.1 → 0.0.2 while a 0.0.1 stream runs: the stream completes, new requests reach
//!   0.0.2, and afterwards no 0.0.1 process, working directory or package object is left;
//! * two tenants: uninstall or upgrade by one keeps everything the other still uses; the last
//!   reference gone, nothing of the version is left on disk;
//! * `install/identifiers` of another version of an installed plugin_id is a no-op success, as
//!   upstream (use `install/upgrade` to change versions);
//! * upgrade's validation errors in upstream's shape.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugind_test_support::{
    create_pg_database, drop_pg_database, envelope_data, tool_texts, Client, Daemon, DaemonOptions,
    DbChoice, FakeDify, Variant, ECHO_PLUGIN_ID, INSTALL_TIMEOUT,
};
use serde_json::{json, Value};

const TENANT_A: &str = "0b6f7c1e-3a2d-4e5f-8a9b-1c2d3e4f5a6b";
const TENANT_B: &str = "7d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

async fn start(dir: &Path, dify: &FakeDify, db: DbChoice) -> Daemon {
    Daemon::start(
        &bin(),
        DaemonOptions {
            data_dir: dir.to_path_buf(),
            db,
            extra_env: Vec::new(),
        },
        dify,
    )
    .await
    .expect("daemon starts")
}

/// The echo fixture packed with its manifest's `version` set to `version`.
fn pack_version(version: &str) -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("tempdir");
    plugind_test_support::assemble_fixture(Variant::Sdk07, tmp.path());
    let manifest = tmp.path().join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("read manifest");
    assert!(text.contains("\nversion: 0.0.1\n") || text.starts_with("version: 0.0.1\n"));
    let text = text.replacen("version: 0.0.1", &format!("version: {version}"), 1);
    std::fs::write(&manifest, text).expect("write manifest");
    plugind_package::pack_dir(tmp.path()).expect("pack")
}

async fn upload(client: &Client, tenant: &str, package: Vec<u8>) -> String {
    let (status, body) = client
        .upload_package(tenant, package, false)
        .await
        .expect("upload");
    let data = envelope_data(status, &body).expect("upload answer");
    data["unique_identifier"]
        .as_str()
        .expect("unique_identifier")
        .to_owned()
}

/// The tenant's installation of the echo plugin, if any.
async fn installation(client: &Client, tenant: &str) -> Option<Value> {
    let (status, body) = client
        .get(&format!(
            "plugin/{tenant}/management/list?page=1&page_size=256"
        ))
        .await
        .expect("list");
    let data = envelope_data(status, &body).expect("list answer");
    data["list"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["plugin_id"] == ECHO_PLUGIN_ID).cloned())
}

async fn installed_uid(client: &Client, tenant: &str) -> String {
    let installation = installation(client, tenant).await.expect("installed");
    installation["plugin_unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned()
}

async fn uninstall(client: &Client, tenant: &str) {
    let id = installation(client, tenant).await.expect("installed")["installation_id"]
        .as_str()
        .expect("installation_id")
        .to_owned();
    let (status, body) = client
        .post_json(
            &format!("plugin/{tenant}/management/uninstall"),
            json!({"plugin_installation_id": id}),
        )
        .await
        .expect("uninstall");
    assert_eq!(
        envelope_data(status, &body).expect("uninstall answer"),
        true
    );
}

async fn post_upgrade(client: &Client, tenant: &str, body: Value) -> (u16, Value) {
    client
        .post_json(&format!("plugin/{tenant}/management/install/upgrade"), body)
        .await
        .expect("upgrade")
}

/// Upgrades the tenant's echo plugin and waits for its task (if one was created); the task, or
/// the answer when the switch happened at once.
async fn upgrade(client: &Client, tenant: &str, from: &str, to: &str) -> Value {
    let (status, body) = post_upgrade(
        client,
        tenant,
        json!({"original_plugin_unique_identifier": from, "new_plugin_unique_identifier": to,
               "source": "package", "meta": {}}),
    )
    .await;
    let data = envelope_data(status, &body).expect("upgrade answer");
    let task_id = data["task_id"].as_str().expect("task_id").to_owned();
    if task_id.is_empty() {
        assert_eq!(data["all_installed"], true, "{data}");
        return data;
    }
    assert_eq!(data["all_installed"], false, "{data}");
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    loop {
        let (status, body) = client
            .get(&format!(
                "plugin/{tenant}/management/install/tasks/{task_id}"
            ))
            .await
            .expect("task");
        let task = envelope_data(status, &body).expect("task answer");
        if task["status"] == "success" || task["status"] == "failed" {
            return task;
        }
        assert!(
            Instant::now() < deadline,
            "upgrade task did not finish: {task}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Uids the runtime status route lists for the echo plugin.
async fn running_uids(client: &Client, tenant: &str) -> Vec<String> {
    let (status, body) = client
        .get(&format!(
            "plugin/{tenant}/management/runtime/status?plugin_id={ECHO_PLUGIN_ID}"
        ))
        .await
        .expect("status route");
    let data = envelope_data(status, &body).expect("status answer");
    let mut uids: Vec<String> = data
        .as_array()
        .expect("status list")
        .iter()
        .filter_map(|s| s["plugin_unique_identifier"].as_str().map(str::to_owned))
        .collect();
    uids.sort();
    uids
}

/// What of version `uid` is on this machine: its working directory, its installed and uploaded
/// package objects, and processes whose current directory lies in its working directory.
fn remains(data_dir: &Path, uid: &str) -> Vec<String> {
    let mut found = Vec::new();
    let working_dir = data_dir.join("cwd").join(uid.replacen(':', "-", 1));
    if working_dir.exists() {
        found.push(format!("working directory {}", working_dir.display()));
    }
    for prefix in ["plugin_packages", "plugin"] {
        let object = data_dir.join("storage").join(prefix).join(uid);
        if object.exists() {
            found.push(format!("object {}", object.display()));
        }
    }
    let procs = std::fs::read_dir("/proc").expect("read /proc");
    for entry in procs.flatten() {
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if cwd.starts_with(&working_dir) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!(
                "process {} ({cmdline})",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// Waits until nothing of `uid` is left (a retirement after an upgrade runs in the background).
async fn wait_gone(data_dir: &Path, uid: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = remains(data_dir, uid);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{uid} left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts every part of a running, installed version is there (working directory, both
/// package objects, a process): the positive control for [`remains`].
fn assert_present(data_dir: &Path, uid: &str) {
    let found = remains(data_dir, uid);
    assert!(
        found.iter().any(|f| f.starts_with("working directory"))
            && found.iter().filter(|f| f.starts_with("object")).count() == 2
            && found.iter().any(|f| f.starts_with("process")),
        "{uid} should be complete, found {found:?}"
    );
}

async fn upgrade_while_streaming(db: DbChoice) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = start(tmp.path(), &dify, db).await;
    let client = daemon.client();
    let data_dir = daemon.data_dir.clone();

    let old = client
        .install_package(TENANT_A, pack_version("0.0.1"))
        .await
        .expect("install 0.0.1");
    let new = upload(&client, TENANT_A, pack_version("0.0.2")).await;
    assert_ne!(old, new);
    assert_present(&data_dir, &old);

    // A 0.0.1 stream that outlives the upgrade: it is held open until the test creates `release`
    // (in a directory the plugin's own uid can look into).
    let gate = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(gate.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let release = gate.path().join("release");
    let stream = {
        let client = client.clone();
        let path = release.display().to_string();
        tokio::spawn(async move { client.invoke_echo(TENANT_A, &path, "wait").await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    let task = upgrade(&client, TENANT_A, &old, &new).await;
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(task["plugins"][0]["message"], "upgraded", "{task}");
    assert!(
        !stream.is_finished(),
        "the 0.0.1 stream is held open until the test releases it"
    );
    assert_eq!(installed_uid(&client, TENANT_A).await, new);
    // Both run side by side while the old one drains.
    assert_eq!(running_uids(&client, TENANT_A).await, {
        let mut both = vec![old.clone(), new.clone()];
        both.sort();
        both
    });
    assert_present(&data_dir, &old);

    let (status, envelopes) = client
        .invoke_echo(TENANT_A, "after", "text")
        .await
        .expect("invoke after upgrade");
    assert_eq!(status, 200, "{envelopes:?}");
    assert_eq!(tool_texts(&envelopes), ["after"]);

    std::fs::write(&release, b"").expect("release the 0.0.1 stream");
    let (status, envelopes) = stream.await.expect("join").expect("stream");
    assert_eq!(status, 200, "{envelopes:?}");
    assert_eq!(tool_texts(&envelopes), ["released"], "{envelopes:?}");

    wait_gone(&data_dir, &old).await;
    assert_eq!(running_uids(&client, TENANT_A).await, [new.as_str()]);
    assert_present(&data_dir, &new);
    let (status, body) = client
        .get(&format!(
            "plugin/{TENANT_A}/management/fetch/identifier?plugin_unique_identifier={old}"
        ))
        .await
        .expect("fetch identifier");
    assert_eq!(envelope_data(status, &body).expect("answer"), false);

    uninstall(&client, TENANT_A).await;
    // Uninstall answers once the runtime is stopped and its files are gone.
    assert_eq!(remains(&data_dir, &new), Vec::<String>::new());
    assert_eq!(running_uids(&client, TENANT_A).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_while_a_stream_runs_then_nothing_of_the_old_version_is_left() {
    upgrade_while_streaming(DbChoice::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_while_a_stream_runs_on_postgres() {
    let database = create_pg_database().expect("create database");
    upgrade_while_streaming(DbChoice::Postgres {
        database: database.clone(),
    })
    .await;
    drop_pg_database(&database).expect("drop database");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tenants_keep_what_the_other_uses_and_the_last_one_out_cleans_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = start(tmp.path(), &dify, DbChoice::Sqlite).await;
    let client = daemon.client();
    let data_dir = daemon.data_dir.clone();

    let old = client
        .install_package(TENANT_A, pack_version("0.0.1"))
        .await
        .expect("install 0.0.1 for A");
    client
        .install_package(TENANT_B, pack_version("0.0.1"))
        .await
        .expect("install 0.0.1 for B");
    let new = upload(&client, TENANT_A, pack_version("0.0.2")).await;

    // Upstream: installing another version of an installed plugin_id through
    // `install/identifiers` changes nothing and reports everything installed.
    let (status, body) = client
        .post_json(
            &format!("plugin/{TENANT_A}/management/install/identifiers"),
            json!({"plugin_unique_identifiers": [new], "source": "package", "metas": [{}]}),
        )
        .await
        .expect("install/identifiers");
    assert_eq!(
        envelope_data(status, &body).expect("answer"),
        json!({"all_installed": true, "task_id": ""})
    );
    assert_eq!(installed_uid(&client, TENANT_A).await, old);
    assert_eq!(running_uids(&client, TENANT_A).await, [old.as_str()]);

    // Validation, in upstream's shape.
    let (status, body) = post_upgrade(
        &client,
        TENANT_A,
        json!({"original_plugin_unique_identifier": old, "new_plugin_unique_identifier": old, "source": "package"}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (200, json!(-400)), "{body}");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("original and new plugin unique identifier are the same")));
    let other = new.replacen("plugind/echo", "plugind/other", 1);
    let (status, body) = post_upgrade(
        &client,
        TENANT_A,
        json!({"original_plugin_unique_identifier": old, "new_plugin_unique_identifier": other, "source": "package"}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (200, json!(-400)), "{body}");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("original and new plugin id are different")));
    let (status, body) = post_upgrade(
        &client,
        TENANT_A,
        json!({"original_plugin_unique_identifier": new, "new_plugin_unique_identifier": old, "source": "package"}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (200, json!(-404)), "{body}");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("plugin installation not found for this tenant")));
    let (status, body) = post_upgrade(
        &client,
        TENANT_A,
        json!({"original_plugin_unique_identifier": old, "new_plugin_unique_identifier": new}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(-400)), "{body}");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("Source")));
    assert_eq!(installed_uid(&client, TENANT_A).await, old);

    // A moves to 0.0.2 (a task launches it); B still uses 0.0.1, so 0.0.1 stays whole.
    let task = upgrade(&client, TENANT_A, &old, &new).await;
    assert_eq!(task["status"], "success", "{task}");
    assert_eq!(installed_uid(&client, TENANT_A).await, new);
    assert_eq!(installed_uid(&client, TENANT_B).await, old);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_present(&data_dir, &old);
    let (status, envelopes) = client
        .invoke_echo(TENANT_B, "b", "text")
        .await
        .expect("invoke for B");
    assert_eq!(
        (status, tool_texts(&envelopes)),
        (200, vec!["b".to_owned()])
    );

    // B follows: 0.0.2 already runs, so the switch happens at once; then 0.0.1 is retired.
    let answer = upgrade(&client, TENANT_B, &old, &new).await;
    assert_eq!(answer, json!({"all_installed": true, "task_id": ""}));
    assert_eq!(installed_uid(&client, TENANT_B).await, new);
    wait_gone(&data_dir, &old).await;

    // Uninstall by A keeps everything B uses; B's uninstall leaves nothing.
    uninstall(&client, TENANT_A).await;
    assert_present(&data_dir, &new);
    let (status, envelopes) = client
        .invoke_echo(TENANT_B, "still", "text")
        .await
        .expect("invoke for B");
    assert_eq!(
        (status, tool_texts(&envelopes)),
        (200, vec!["still".to_owned()])
    );
    uninstall(&client, TENANT_B).await;
    assert_eq!(remains(&data_dir, &new), Vec::<String>::new());
    assert_eq!(running_uids(&client, TENANT_B).await, Vec::<String>::new());
}
