//! Bad input gets a clear error in upstream's shape, and nothing is half-written.

use std::io::Write;
use std::path::{Path, PathBuf};

use plugind_test_support::{
    pack_fixture, Client, Daemon, DaemonOptions, DbChoice, FakeDify, TestSigner, Variant,
};
use serde_json::{json, Value};

const TENANT: &str = "0b9a7c1e-1111-4222-8333-944455556666";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

/// Builds a zip in memory from (name, content) pairs.
fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut cursor);
        for (name, content) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("entry");
            zip.write_all(content.as_bytes()).expect("write");
        }
        zip.finish().expect("finish");
    }
    cursor.into_inner()
}

fn inner_error(envelope: &Value) -> Value {
    assert!(
        envelope["code"].as_i64().unwrap_or(0) < 0,
        "expected an error: {envelope}"
    );
    serde_json::from_str(envelope["message"].as_str().expect("message")).expect("message is JSON")
}

/// Files under the storage's package prefix (there must be none after failed uploads).
fn stored_packages(data_dir: &Path) -> Vec<PathBuf> {
    let root = data_dir.join("storage").join("plugin_packages");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_cleanly() {
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = TestSigner::generate();
    let mut extra_env = signer.daemon_env();
    extra_env.push(("MAX_PLUGIN_PACKAGE_SIZE".into(), "1000000".into()));
    let mut daemon = Daemon::start(
        &bin(),
        DaemonOptions {
            data_dir: dir.path().to_path_buf(),
            db: DbChoice::Sqlite,
            extra_env,
        },
        &dify,
    )
    .await
    .expect("daemon");
    let client = Client::new(&daemon.base_url, &daemon.server_key);

    let manifest_missing_author = "version: 0.0.1\ntype: plugin\nname: x\nlabel: {en_US: X}\ndescription: {en_US: X}\nicon: icon.svg\nresource: {memory: 1}\nplugins: {tools: [provider/x.yaml]}\nmeta: {version: 0.0.1, arch: [amd64], runner: {language: python, version: '3.12', entrypoint: main}}\ncreated_at: 2024-01-01T00:00:00Z\n";
    let manifest_models = manifest_missing_author
        .replace("name: x\n", "author: tester\nname: x\n")
        .replace("{tools: [provider/x.yaml]}", "{models: [provider/m.yaml]}");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not a zip", b"this is not a zip file".to_vec(), "difypkg"),
        (
            "no manifest",
            zip_of(&[("main.py", "print(1)")]),
            "manifest",
        ),
        (
            "manifest missing author",
            zip_of(&[
                ("manifest.yaml", manifest_missing_author),
                ("provider/x.yaml", "identity: {name: x}"),
            ]),
            "author",
        ),
        (
            // Written out, this price is 10^11 digits: it used to abort the daemon (100 GB).
            "pricing exponent bomb",
            zip_of(&[
                ("manifest.yaml", &manifest_models),
                ("provider/m.yaml", "provider: m\nmodels:\n  llm:\n    predefined: ['models/*.yaml']\n"),
                ("models/a.yaml", "model: a\nmodel_type: llm\npricing: {input: '1e100000000000', unit: '0.001', currency: USD}\n"),
            ]),
            "more than 400 digits",
        ),
        (
            "over MAX_PLUGIN_PACKAGE_SIZE",
            vec![b'x'; 1_500_000],
            "file size exceeds the maximum limit",
        ),
    ];
    for (what, bytes, needle) in cases {
        let (status, resp) = client
            .upload_package(TENANT, bytes, false)
            .await
            .expect("upload");
        assert_eq!(
            status, 200,
            "{what}: management errors stay HTTP 200: {resp}"
        );
        let err = inner_error(&resp);
        assert_eq!(resp["code"], -400, "{what}: {resp}");
        assert_eq!(err["error_type"], "PluginDaemonBadRequestError", "{what}");
        let message = err["message"].as_str().unwrap_or("");
        assert!(
            message.contains(needle),
            "{what}: {message:?} should mention {needle:?}"
        );
    }

    // The daemon survived the pricing bomb.
    assert!(daemon.is_running(), "{}", daemon.log_tail(40));
    let (status, health) = client.get("/health/check").await.expect("health");
    assert_eq!((status, &health["status"]), (200, &json!("ok")), "{health}");

    // A signed package with one byte changed fails verification when verification is asked for,
    // even though the daemon trusts the key it was signed with.
    let original = signer.sign(
        &pack_fixture(Variant::Latest),
        Some(&plugind_package::Verification::langgenius()),
    );
    let trusted = plugind_package::DecodeOptions {
        public_keys: vec![signer.public.clone()],
        ..Default::default()
    };
    assert!(
        plugind_package::decode(&original, &trusted)
            .expect("decode")
            .verified,
        "the untampered package verifies"
    );
    let tampered;
    {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&original)).expect("zip");
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        out.set_raw_comment(archive.comment().to_vec().into());
        for i in 0..archive.len() {
            let mut file = archive.by_index(i).expect("entry");
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut content).expect("read");
            if file.name() == "main.py" {
                content.push(b'!');
            }
            out.start_file(
                file.name().to_owned(),
                zip::write::SimpleFileOptions::default(),
            )
            .expect("entry");
            out.write_all(&content).expect("write");
        }
        tampered = out.finish().expect("finish").into_inner();
    }
    let (_, resp) = client
        .upload_package(TENANT, tampered, true)
        .await
        .expect("upload");
    assert!(
        inner_error(&resp)["message"]
            .as_str()
            .unwrap_or("")
            .contains("bad signature"),
        "{resp}"
    );

    assert!(
        stored_packages(dir.path()).is_empty(),
        "failed uploads left packages: {:?}",
        stored_packages(dir.path())
    );

    // Wrong X-Api-Key: HTTP 401 in upstream's exact shape.
    let wrong = Client::new(&daemon.base_url, "not-the-key");
    let (status, resp) = wrong
        .get(&format!(
            "/plugin/{TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("get");
    assert_eq!(status, 401);
    assert_eq!(
        resp,
        json!({"code": -401, "message": "{\"message\":\"unauthorized\",\"error_type\":\"PluginDaemonUnauthorizedError\",\"args\":null}", "data": null})
    );

    // Dispatch to a plugin the tenant does not have: HTTP 404 PluginNotFoundError, plain JSON.
    let body = json!({"user_id": "u", "data": {"provider": "p", "tool": "t", "credentials": {}, "tool_parameters": {}}});
    let (status, events) = client
        .dispatch(TENANT, "nobody/nothing", "tool/invoke", body.clone())
        .await
        .expect("dispatch");
    assert_eq!(status, 404);
    assert_eq!(inner_error(&events[0])["error_type"], "PluginNotFoundError");
    // ...and without X-Plugin-ID: HTTP 400.
    let (status, events) = client
        .dispatch(TENANT, "", "tool/invoke", body)
        .await
        .expect("dispatch");
    assert_eq!(status, 400);
    assert_eq!(inner_error(&events[0])["message"], "plugin_id is required");

    // A body that is not JSON: HTTP 400 with a clear message.
    let (status, resp) = client
        .post_raw(
            &format!("/plugin/{TENANT}/management/install/identifiers"),
            "{not json",
        )
        .await
        .expect("post");
    assert_eq!(status, 400);
    assert!(
        inner_error(&resp)["message"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON"),
        "{resp}"
    );

    // Paging out of bounds: validation, HTTP 400.
    for query in ["page=0&page_size=10", "page=1&page_size=257", ""] {
        let (status, resp) = client
            .get(&format!("/plugin/{TENANT}/management/list?{query}"))
            .await
            .expect("get");
        assert_eq!(status, 400, "{query}: {resp}");
        assert_eq!(
            inner_error(&resp)["error_type"],
            "PluginDaemonBadRequestError"
        );
    }

    // Unknown route: upstream's string-coded 404.
    let (status, resp) = client.get("/no/such/route").await.expect("get");
    assert_eq!(status, 404);
    assert_eq!(
        resp,
        json!({"code": "not_found", "message": "route not found"})
    );

    // Prometheus metrics, labelled by route pattern (not by raw path, which would explode).
    let metrics = reqwest::get(format!("{}/metrics/", daemon.base_url))
        .await
        .expect("metrics");
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains("plugin_http_requests_total")
            && text.contains(r#"endpoint="/plugin/{tenant_id}/management/list""#)
            && text.contains(r#"status="401""#),
        "{text}"
    );

    // Installing an identifier that was never uploaded is refused and creates no task.
    let never = plugind_package_uid(&pack_fixture(Variant::Latest));
    let (_, resp) = client
        .post_json(
            &format!("/plugin/{TENANT}/management/install/identifiers"),
            json!({"plugin_unique_identifiers": [never], "source": "package", "metas": [{}]}),
        )
        .await
        .expect("install");
    assert_eq!(resp["code"], -500, "{resp}");
    let (_, tasks) = client
        .get(&format!(
            "/plugin/{TENANT}/management/install/tasks?page=1&page_size=10"
        ))
        .await
        .expect("tasks");
    assert_eq!(tasks["data"], json!([]));
}

fn plugind_package_uid(bytes: &[u8]) -> String {
    plugind_package::decode(bytes, &plugind_package::DecodeOptions::default())
        .expect("decode")
        .uid
        .to_string()
}
