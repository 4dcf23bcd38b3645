//! A daemon killed in the middle of an install comes back with that task failed (with a reason,
//! never "running" forever), and the install can be retried.

use std::path::PathBuf;
use std::time::Duration;

use plugind_test_support::{
    pack_fixture, Client, Daemon, DaemonOptions, DbChoice, FakeDify, Variant,
};
use serde_json::json;

const TENANT: &str = "7a7a7a7a-1111-4222-8333-944455556666";

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_install_marks_task_failed_and_retry_works() {
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DaemonOptions {
        data_dir: dir.path().to_path_buf(),
        db: DbChoice::Sqlite,
        extra_env: vec![],
    };
    let mut daemon = Daemon::start(&PathBuf::from(env!("CARGO_BIN_EXE_plugind")), opts, &dify)
        .await
        .expect("daemon");
    let client = Client::new(&daemon.base_url, &daemon.server_key);

    let (_, resp) = client
        .upload_package(TENANT, pack_fixture(Variant::Latest), false)
        .await
        .expect("upload");
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    let (_, resp) = client
        .post_json(
            &format!("/plugin/{TENANT}/management/install/identifiers"),
            json!({"plugin_unique_identifiers": [uid], "source": "package", "metas": [{}]}),
        )
        .await
        .expect("install");
    let task_id = resp["data"]["task_id"]
        .as_str()
        .expect("task id")
        .to_owned();
    assert!(!task_id.is_empty(), "{resp}");
    daemon.kill9();

    daemon.restart().await.expect("restart");
    let client = Client::new(&daemon.base_url, &daemon.server_key);
    let (_, task) = client
        .get(&format!(
            "/plugin/{TENANT}/management/install/tasks/{task_id}"
        ))
        .await
        .expect("task");
    let task = &task["data"];
    assert_eq!(task["status"], "failed", "{task}");
    let message = task["plugins"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("daemon stopped"),
        "reason is given: {message:?}"
    );

    let retried = client
        .install_and_wait(TENANT, &uid, Duration::from_secs(600))
        .await
        .expect("retry");
    assert_eq!(retried["status"], "success", "{retried}");
}

/// A dependency that cannot be installed fails the task at the dependency step, naming the
/// package, and leaves nothing installed.
#[tokio::test(flavor = "multi_thread")]
async fn failing_dependency_install_names_step_and_package() {
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DaemonOptions {
        data_dir: dir.path().to_path_buf(),
        db: DbChoice::Sqlite,
        extra_env: vec![],
    };
    let daemon = Daemon::start(&PathBuf::from(env!("CARGO_BIN_EXE_plugind")), opts, &dify)
        .await
        .expect("daemon");
    let client = Client::new(&daemon.base_url, &daemon.server_key);

    let src = tempfile::tempdir().expect("tempdir");
    plugind_test_support::assemble_fixture(Variant::Sdk07, src.path());
    std::fs::write(
        src.path().join("requirements.txt"),
        "dify_plugin==0.7.4\nplugind-no-such-package-xyz==1.0\n",
    )
    .expect("write");
    let package = plugind_package::pack_dir(src.path()).expect("pack");

    let (_, resp) = client
        .upload_package(TENANT, package, false)
        .await
        .expect("upload");
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    let task = client
        .install_and_wait(TENANT, &uid, Duration::from_secs(600))
        .await
        .expect("install");
    assert_eq!(task["status"], "failed", "{task}");
    let message = task["plugins"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("dependencies"),
        "names the step: {message}"
    );
    assert!(
        message.contains("plugind-no-such-package-xyz"),
        "names the package: {message}"
    );
    let (_, list) = client
        .get(&format!(
            "/plugin/{TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("list");
    assert_eq!(list["data"]["total"], 0);
}
