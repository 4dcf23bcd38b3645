//! `POST …/install/upload/bundle`: github and marketplace dependencies are echoed, packages are
//! stored — all of them or none.

use std::path::{Path, PathBuf};

use plugind_package::{encode_bundle, Bundle, BundleManifest};
use plugind_test_support::{
    assemble_fixture, pack_fixture, Client, Daemon, DaemonOptions, DbChoice, FakeDify, Variant,
};
use serde_json::{json, Value};

const TENANT: &str = "4d4d4d4d-1111-4222-8333-944455556666";

async fn upload_bundle(daemon: &Daemon, bytes: Vec<u8>) -> Value {
    let form = reqwest::multipart::Form::new()
        .part(
            "dify_bundle",
            reqwest::multipart::Part::bytes(bytes).file_name("b.difybndl"),
        )
        .text("verify_signature", "false");
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/plugin/{TENANT}/management/install/upload/bundle",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.expect("json")
}

/// The echo fixture re-authored as `langgenius`, unsigned.
fn fake_langgenius_package() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    assemble_fixture(Variant::Latest, dir.path());
    let manifest = dir.path().join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replace("author: plugind", "author: langgenius"),
    )
    .expect("write");
    plugind_package::pack_dir(dir.path()).expect("pack")
}

fn stored_packages(data_dir: &Path) -> usize {
    walk(&data_dir.join("storage").join("plugin_packages"))
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn bundle_upload_echoes_and_stores_all_or_nothing() {
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

    let mut bundle =
        Bundle::new(BundleManifest::new("my-bundle", "someone", "a bundle").expect("manifest"));
    bundle
        .append_github("owner/repo:1.0.0/plugin.difypkg")
        .expect("github");
    bundle
        .append_marketplace("langgenius/openai:^1.0.0")
        .expect("marketplace");
    bundle
        .append_package(pack_fixture(Variant::Latest))
        .expect("package");
    let resp = upload_bundle(&daemon, encode_bundle(&bundle).expect("encode")).await;
    assert_eq!(resp["code"], 0, "{resp}");
    let items = resp["data"].as_array().expect("array");
    assert_eq!(
        items[0],
        json!({"type": "github", "value": {"repo_address": "https://github.com/owner/repo", "repo": "owner/repo", "release": "1.0.0", "packages": "plugin.difypkg"}})
    );
    assert_eq!(
        items[1],
        json!({"type": "marketplace", "value": {"organization": "langgenius", "plugin": "openai", "version": "^1.0.0"}})
    );
    assert_eq!(items[2]["type"], "package");
    let uid = items[2]["value"]["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    assert_eq!(items[2]["value"]["manifest"]["name"], "echo");
    let (_, manifest) = client
        .get(&format!(
            "/plugin/{TENANT}/management/fetch/manifest?plugin_unique_identifier={uid}"
        ))
        .await
        .expect("manifest");
    assert_eq!(manifest["code"], 0, "stored: {manifest}");

    // A second bundle: a good package plus an unsigned one claiming to be Langgenius's.
    // The whole upload is refused and the good package is not stored either.
    let other = tempfile::tempdir().expect("tempdir");
    let opts = DaemonOptions {
        data_dir: other.path().to_path_buf(),
        db: DbChoice::Sqlite,
        extra_env: vec![],
    };
    let daemon = Daemon::start(&PathBuf::from(env!("CARGO_BIN_EXE_plugind")), opts, &dify)
        .await
        .expect("daemon");
    let mut bundle =
        Bundle::new(BundleManifest::new("bad-bundle", "someone", "a bundle").expect("manifest"));
    bundle
        .append_package(pack_fixture(Variant::Sdk07))
        .expect("package");
    bundle
        .append_package(fake_langgenius_package())
        .expect("package");
    let resp = upload_bundle(&daemon, encode_bundle(&bundle).expect("encode")).await;
    assert_eq!(resp["code"], -400, "{resp}");
    let inner: Value =
        serde_json::from_str(resp["message"].as_str().expect("message")).expect("json");
    assert!(
        inner["message"]
            .as_str()
            .unwrap_or("")
            .contains("claims to be from Langgenius"),
        "{inner}"
    );
    assert_eq!(
        stored_packages(other.path()),
        0,
        "nothing stored after a refused bundle"
    );

    // Not a bundle at all.
    let resp = upload_bundle(&daemon, b"not a zip".to_vec()).await;
    assert_eq!(resp["code"], -400, "{resp}");
}
