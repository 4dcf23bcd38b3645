//! Package-facing routes over HTTP: signature policy with the unsigned allow-list, readmes,
//! assets and extract-asset.

use std::path::PathBuf;

use plugind_test_support::{
    pack_fixture, pack_fixture_with, Client, Daemon, DaemonOptions, DbChoice, FakeDify, TestSigner,
    Variant,
};
use serde_json::Value;

const TENANT: &str = "3c3c3c3c-1111-4222-8333-944455556666";

async fn daemon_with(
    dir: &std::path::Path,
    dify: &FakeDify,
    env: &[(&str, &str)],
) -> (Daemon, Client) {
    let opts = DaemonOptions {
        data_dir: dir.to_path_buf(),
        db: DbChoice::Sqlite,
        extra_env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let daemon = Daemon::start(&PathBuf::from(env!("CARGO_BIN_EXE_plugind")), opts, dify)
        .await
        .expect("daemon");
    let client = Client::new(&daemon.base_url, &daemon.server_key);
    (daemon, client)
}

fn error_message(resp: &Value) -> String {
    let inner: Value =
        serde_json::from_str(resp["message"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
    inner["message"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_allowlist_admits_only_the_named_plugin() {
    let dify = FakeDify::start().await;
    let package = pack_fixture(Variant::Latest);
    let checksum = plugind_package::checksum(&package).expect("checksum");
    let cases: Vec<(String, bool)> = vec![
        (String::new(), false),
        ("someone/else".into(), false),
        ("plugind/echo".into(), true),
        (format!("plugind/echo@{}", "0".repeat(64)), false),
        (format!("someone/else, plugind/echo@{checksum}"), true),
    ];
    for (allow, accepted) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = [
            ("FORCE_VERIFYING_SIGNATURE", "true"),
            ("PLUGIN_ALLOW_UNSIGNED", allow.as_str()),
        ];
        let (_daemon, client) = daemon_with(dir.path(), &dify, &env).await;
        let (_, resp) = client
            .upload_package(TENANT, package.clone(), false)
            .await
            .expect("upload");
        if accepted {
            assert_eq!(resp["code"], 0, "allow-list {allow:?}: {resp}");
            assert_eq!(resp["data"]["manifest"]["verified"], false);
        } else {
            assert!(
                error_message(&resp).contains("bad signature"),
                "allow-list {allow:?}: {resp}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_assets_and_extract_asset() {
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A signed package with a readme, signed with a key the daemon is told to trust.
    let signer = TestSigner::generate();
    let env = signer.daemon_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (daemon, client) = daemon_with(dir.path(), &dify, &env).await;
    let bytes = signer.sign(
        &pack_fixture_with(
            Variant::Latest,
            &[("README.md", b"# Echo\n\nRepeats its input.\n")],
        ),
        Some(&plugind_package::Verification::langgenius()),
    );
    let (_, resp) = client
        .upload_package(TENANT, bytes.clone(), false)
        .await
        .expect("upload");
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    let icon_id = resp["data"]["manifest"]["icon"]
        .as_str()
        .expect("icon")
        .to_owned();
    assert!(
        icon_id.ends_with(".svg") && icon_id.len() == 64 + 4,
        "icon remapped to an asset id: {icon_id}"
    );

    let readme_md =
        String::from_utf8(plugind_package::read_file(&bytes, "README.md").expect("readme"))
            .expect("utf8");
    for language in ["en_US", "ja_JP", ""] {
        let (_, resp) = client
            .get(&format!("/plugin/{TENANT}/management/fetch/readme?plugin_unique_identifier={uid}&language={language}"))
            .await
            .expect("readme");
        assert_eq!(resp["code"], 0, "{resp}");
        assert_eq!(resp["data"]["language"], "en_US");
        assert_eq!(resp["data"]["content"], readme_md.as_str());
    }

    // decode/from_identifier: newer Dify sends a query parameter, older Dify a JSON body on a GET.
    let (_, decoded) = client
        .get(&format!(
            "/plugin/{TENANT}/management/decode/from_identifier?plugin_unique_identifier={uid}"
        ))
        .await
        .expect("decode");
    assert_eq!(
        decoded["data"]["unique_identifier"],
        uid.as_str(),
        "{decoded}"
    );
    assert_eq!(
        decoded["data"]["verification"]["authorized_category"],
        "langgenius"
    );
    let old_style: Value = reqwest::Client::new()
        .get(format!(
            "{}/plugin/{TENANT}/management/decode/from_identifier",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key)
        .header("Content-Type", "application/json")
        .body(serde_json::json!({"plugin_unique_identifier": uid}).to_string())
        .send()
        .await
        .expect("decode")
        .json()
        .await
        .expect("json");
    assert_eq!(
        old_style["data"]["unique_identifier"],
        uid.as_str(),
        "{old_style}"
    );

    let icon = plugind_package::read_file(&bytes, "_assets/icon.svg").expect("icon");
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{}{}", daemon.base_url, path);
        let key = daemon.server_key.clone();
        async move {
            let resp = http
                .get(url)
                .header("X-Api-Key", key)
                .send()
                .await
                .expect("get");
            let status = resp.status().as_u16();
            (status, resp.bytes().await.expect("body").to_vec())
        }
    };
    assert_eq!(
        get(format!("/plugin/{TENANT}/asset/{icon_id}")).await,
        (200, icon.clone())
    );
    assert_eq!(
        get(format!("/plugin/{TENANT}/asset/{}.svg", "0".repeat(64))).await,
        (200, Vec::new())
    );
    let extract = format!(
        "/plugin/{TENANT}/extract-asset/?plugin_unique_identifier={uid}&file_path=icon.svg"
    );
    assert_eq!(get(extract).await, (200, icon));
    let missing = format!(
        "/plugin/{TENANT}/extract-asset/?plugin_unique_identifier={uid}&file_path=nope.png"
    );
    assert_eq!(get(missing).await, (200, Vec::new()));
}

/// A package signed with a third-party key: refused by default, accepted once the key is
/// configured (with its self-asserted category reported back); and inside a bundle, a package
/// claiming to be Langgenius's but signed only as `community` is refused.
#[tokio::test(flavor = "multi_thread")]
async fn third_party_signatures_and_category_claims() {
    let dify = FakeDify::start().await;
    let (private, public) = plugind_package::generate_key_pair(2048).expect("keys");
    let keys = tempfile::tempdir().expect("tempdir");
    let key_path = keys.path().join("third_party.public.pem");
    // A trailing CRLF must not matter.
    let pem = plugind_package::public_key_to_pem(&public)
        .expect("pem")
        .replace('\n', "\r\n");
    std::fs::write(&key_path, pem).expect("write key");
    let community = plugind_package::authorized_verification("community").expect("category");
    let signed = plugind_package::sign(
        &pack_fixture(Variant::Latest),
        &private,
        Some(&community),
        1_700_000_000,
    )
    .expect("sign");

    let dir = tempfile::tempdir().expect("tempdir");
    let (_daemon, client) =
        daemon_with(dir.path(), &dify, &[("FORCE_VERIFYING_SIGNATURE", "true")]).await;
    let (_, resp) = client
        .upload_package(TENANT, signed.clone(), false)
        .await
        .expect("upload");
    assert!(
        error_message(&resp).contains("bad signature"),
        "unknown key is refused: {resp}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_path.to_string_lossy().into_owned();
    let env = [
        ("FORCE_VERIFYING_SIGNATURE", "true"),
        ("THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED", "true"),
        (
            "THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS",
            key.as_str(),
        ),
    ];
    let (daemon, client) = daemon_with(dir.path(), &dify, &env).await;
    let (_, resp) = client
        .upload_package(TENANT, signed, false)
        .await
        .expect("upload");
    assert_eq!(resp["code"], 0, "{resp}");
    assert_eq!(resp["data"]["manifest"]["verified"], true);
    assert_eq!(
        resp["data"]["verification"]["authorized_category"],
        "community"
    );

    // Re-authored as langgenius, signed only as community, shipped in a bundle: refused.
    let src = tempfile::tempdir().expect("tempdir");
    plugind_test_support::assemble_fixture(Variant::Latest, src.path());
    let manifest = src.path().join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replace("author: plugind", "author: langgenius"),
    )
    .expect("write");
    let claimed = plugind_package::sign(
        &plugind_package::pack_dir(src.path()).expect("pack"),
        &private,
        Some(&community),
        1_700_000_000,
    )
    .expect("sign");
    let mut bundle = plugind_package::Bundle::new(
        plugind_package::BundleManifest::new("b", "someone", "d").expect("manifest"),
    );
    bundle.append_package(claimed).expect("append");
    let form = reqwest::multipart::Form::new()
        .part(
            "dify_bundle",
            reqwest::multipart::Part::bytes(
                plugind_package::encode_bundle(&bundle).expect("encode"),
            )
            .file_name("b.difybndl"),
        )
        .text("verify_signature", "true");
    let resp: Value = reqwest::Client::new()
        .post(format!(
            "{}/plugin/{TENANT}/management/install/upload/bundle",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key)
        .multipart(form)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    assert!(
        error_message(&resp).contains("claims to be from Langgenius"),
        "{resp}"
    );
}
