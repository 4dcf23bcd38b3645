//! Upstream's own signed marketplace package (`langgenius-agent_0.0.14.difypkg`, pinned to
//! `dify_plugin==0.0.1b75`) through the real daemon: its official signature verifies and its old
//! SDK reaches its first heartbeat. The package lives beside the repository in
//! `../shared/fixtures/upstream/` on the project's machines only, so this target is built only
//! with the feature `upstream-fixtures` (`.ci/run` enables it when the fixture is there).

use std::path::PathBuf;
use std::time::Duration;

use plugind_test_support::{upstream_fixture, Client, Daemon, DaemonOptions, DbChoice, FakeDify};

const TENANT: &str = "6f1d3e2a-8f5b-4c1a-9d7e-2b3c4d5e6f71";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The signed marketplace package verifies, installs and reaches its first heartbeat with
/// signature verification on (the default).
#[tokio::test(flavor = "multi_thread")]
async fn upstream_signed_agent_package_installs() {
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &PathBuf::from(env!("CARGO_BIN_EXE_plugind")),
        DaemonOptions {
            data_dir: dir.path().to_path_buf(),
            db: DbChoice::Sqlite,
            extra_env: vec![("FORCE_VERIFYING_SIGNATURE".into(), "true".into())],
        },
        &dify,
    )
    .await
    .expect("daemon starts");
    let client = Client::new(&daemon.base_url, &daemon.server_key);
    let path = upstream_fixture("langgenius-agent_0.0.14.difypkg");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, resp) = client
        .upload_package(TENANT, bytes, true)
        .await
        .expect("upload");
    assert_eq!(resp["code"], 0, "{resp}");
    let uploaded = &resp["data"];
    assert_eq!(
        uploaded["unique_identifier"],
        "langgenius/agent:0.0.14@26958a0e80a10655ce73812bdb7c35a66ce7b16f5ac346d298bda17ff85efd1e"
    );
    assert_eq!(uploaded["manifest"]["verified"], true);
    let uid = uploaded["unique_identifier"].as_str().expect("uid");
    let task = client
        .install_and_wait(TENANT, uid, INSTALL_TIMEOUT)
        .await
        .expect("install");
    assert_eq!(task["status"], "success", "{task}");
}
