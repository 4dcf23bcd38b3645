//! End-to-end: the `plugind` binary as a real process, driven over HTTP the way Dify's API server
//! drives it, running the fixture plugin on the real `dify_plugin` SDK in real Python
//! subprocesses — on the embedded default (SQLite) and on PostgreSQL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugind_test_support::{
    create_pg_database, echo_invoke_body, pack_fixture, Client, Daemon, DaemonOptions, DbChoice,
    FakeDify, Variant, ECHO_PLUGIN_ID, ECHO_PROVIDER,
};
use serde_json::{json, Value};

const TENANT: &str = "6f1d3e2a-8f5b-4c1a-9d7e-2b3c4d5e6f70";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

async fn start(
    dir: &Path,
    db: DbChoice,
    dify: &FakeDify,
    extra_env: Vec<(String, String)>,
) -> (Daemon, Client) {
    let daemon = Daemon::start(
        &bin(),
        DaemonOptions {
            data_dir: dir.to_path_buf(),
            db,
            extra_env,
        },
        dify,
    )
    .await
    .expect("daemon starts");
    let client = Client::new(&daemon.base_url, &daemon.server_key);
    (daemon, client)
}

fn data(envelope: &Value) -> &Value {
    assert_eq!(envelope["code"], 0, "expected success, got {envelope}");
    &envelope["data"]
}

/// The inner error object of an error envelope.
fn error_of(envelope: &Value) -> Value {
    let message = envelope["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {envelope}"));
    serde_json::from_str(message)
        .unwrap_or_else(|e| panic!("message is not JSON ({e}): {envelope}"))
}

async fn upload_and_install(client: &Client, package: Vec<u8>) -> String {
    let (status, resp) = client
        .upload_package(TENANT, package, false)
        .await
        .expect("upload");
    assert_eq!(status, 200, "{resp}");
    let uid = data(&resp)["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    let task = client
        .install_and_wait(TENANT, &uid, INSTALL_TIMEOUT)
        .await
        .expect("install");
    assert_eq!(task["status"], "success", "install task: {task}");
    let entry = &task["plugins"][0];
    assert_eq!(entry["status"], "success");
    assert!(
        entry["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("installed"),
        "{entry}"
    );
    uid
}

async fn invoke(client: &Client, text: &str, mode: &str) -> (u16, Vec<Value>) {
    client
        .dispatch(
            TENANT,
            ECHO_PLUGIN_ID,
            "tool/invoke",
            echo_invoke_body(text, mode),
        )
        .await
        .expect("dispatch")
}

/// Pids of `python -m main` processes whose working directory is inside `dir` (the plugins).
fn plugin_pids(dir: &Path) -> Vec<i32> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let python_main = args.windows(2).any(|w| w[0] == b"-m" && w[1] == b"main");
            if cwd.starts_with(&dir) && python_main {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The whole life of a plugin, as Dify sees it.
async fn full_flow(db: DbChoice, variant: Variant) {
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = vec![
        ("DB_PASSWORD".to_owned(), "db-secret-value".to_owned()),
        ("PLUGIND_TEST_MARKER".to_owned(), "1".to_owned()),
    ];
    let (mut daemon, client) = start(dir.path(), db, &dify, secrets).await;

    let uid = upload_and_install(&client, pack_fixture(variant)).await;

    // Listings Dify reads.
    let (_, list) = client
        .get(&format!(
            "/plugin/{TENANT}/management/list?page=1&page_size=256"
        ))
        .await
        .expect("list");
    let list = data(&list);
    assert_eq!(list["total"], 1);
    let entity = &list["list"][0];
    assert_eq!(entity["plugin_id"], ECHO_PLUGIN_ID);
    assert_eq!(entity["plugin_unique_identifier"], uid.as_str());
    assert_eq!(entity["id"], entity["installation_id"]);
    assert_eq!(entity["runtime_type"], "local");
    assert_eq!(
        entity["declaration"]["tool"]["identity"]["name"],
        ECHO_PROVIDER
    );
    let installation_id = entity["id"].as_str().expect("id").to_owned();

    let (_, tools) = client
        .get(&format!(
            "/plugin/{TENANT}/management/tools?page=1&page_size=256"
        ))
        .await
        .expect("tools");
    let tools = data(&tools).as_array().expect("array").clone();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["provider"], ECHO_PROVIDER);
    assert_eq!(tools[0]["declaration"]["identity"]["name"], ECHO_PROVIDER);
    let (_, tool) = client
        .get(&format!(
            "/plugin/{TENANT}/management/tool?plugin_id={ECHO_PLUGIN_ID}&provider={ECHO_PROVIDER}"
        ))
        .await
        .expect("tool");
    assert_eq!(data(&tool)["plugin_id"], ECHO_PLUGIN_ID);

    // Newer consumers: plugin ids per category, and the filtered per-category list.
    let (_, ids) = client
        .get(&format!(
            "/plugin/{TENANT}/management/installation/ids?category=tool"
        ))
        .await
        .expect("ids");
    assert_eq!(data(&ids), &json!({"plugin_ids": [ECHO_PLUGIN_ID]}));
    let (_, ids) = client
        .get(&format!(
            "/plugin/{TENANT}/management/installation/ids?category=model"
        ))
        .await
        .expect("ids");
    assert_eq!(data(&ids), &json!({"plugin_ids": []}));
    for (path, expected) in [
        ("tool/list?page=1&page_size=10&query=ECHO", 1),
        ("tool/list?page=1&page_size=10&query=zzz", 0),
        ("model/list?page=1&page_size=10", 0),
    ] {
        let (_, list) = client
            .get(&format!("/plugin/{TENANT}/management/{path}"))
            .await
            .expect("category list");
        assert_eq!(
            data(&list)["list"].as_array().map(Vec::len),
            Some(expected),
            "{path}: {list}"
        );
        assert_eq!(data(&list)["has_more"], false);
    }

    // Installations by plugin id, and missing dependencies, as Dify asks for them.
    let (_, batch) = client
        .post_json(
            &format!("/plugin/{TENANT}/management/installation/fetch/batch"),
            json!({"plugin_ids": [ECHO_PLUGIN_ID, "nobody/nothing"]}),
        )
        .await
        .expect("batch");
    let batch = data(&batch).as_array().expect("array").clone();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0]["plugin_unique_identifier"], uid.as_str());
    assert_eq!(batch[0]["version"], "0.0.1");
    assert_eq!(
        batch[0]["checksum"],
        uid.rsplit_once('@').map(|(_, c)| c).unwrap_or("")
    );
    let other_version = uid.replace(":0.0.1@", ":0.0.2@");
    let (_, missing) = client
        .post_json(
            &format!("/plugin/{TENANT}/management/installation/missing"),
            json!({"plugin_unique_identifiers": [uid, other_version]}),
        )
        .await
        .expect("missing");
    assert_eq!(
        data(&missing),
        &json!([{"plugin_unique_identifier": other_version, "current_identifier": uid}])
    );

    // Invoke: text, json and blob chunks in one stream, in order.
    let (status, events) = invoke(&client, "hello <&>", "all").await;
    assert_eq!(status, 200);
    let chunks: Vec<&Value> = events.iter().map(data).collect();
    assert_eq!(chunks[0]["type"], "text");
    assert_eq!(chunks[0]["message"]["text"], "hello <&>");
    assert_eq!(chunks[1]["type"], "json");
    assert_eq!(chunks[1]["message"]["json_object"]["echo"], "hello <&>");
    let blob: Vec<&&Value> = chunks
        .iter()
        .filter(|c| c["type"] == "blob_chunk")
        .collect();
    assert!(blob.len() >= 2, "blob arrives as chunks: {chunks:?}");
    assert_eq!(
        blob.last().map(|c| c["message"]["end"].clone()),
        Some(json!(true))
    );

    // The plugin's own error comes back as PluginInvokeError with the plugin's type inside.
    let (_, events) = invoke(&client, "x", "error").await;
    let outer = error_of(events.last().expect("one event"));
    assert_eq!(outer["error_type"], "PluginInvokeError");
    let inner: Value =
        serde_json::from_str(outer["message"].as_str().expect("inner")).expect("inner json");
    assert_eq!(inner["error_type"], "RuntimeError");
    assert_eq!(inner["message"], "boom: x");

    // Credentials validation, both ways.
    let validate = |fail: bool| json!({"user_id": "u-1", "data": {"provider": ECHO_PROVIDER, "credentials": {"fail": fail}}});
    let (_, ok) = client
        .dispatch(
            TENANT,
            ECHO_PLUGIN_ID,
            "tool/validate_credentials",
            validate(false),
        )
        .await
        .expect("validate");
    assert_eq!(data(&ok[0])["result"], true);
    let (_, bad) = client
        .dispatch(
            TENANT,
            ECHO_PLUGIN_ID,
            "tool/validate_credentials",
            validate(true),
        )
        .await
        .expect("validate");
    assert_eq!(error_of(&bad[0])["error_type"], "PluginInvokeError");

    // A stray print() does not break the stream, and the plugin sees no daemon secrets.
    let (_, events) = invoke(&client, "after print", "print").await;
    assert_eq!(
        data(events.last().expect("event"))["message"]["text"],
        "after print"
    );
    let (_, events) = invoke(&client, "", "env").await;
    let keys: Vec<String> =
        serde_json::from_value(data(&events[0])["message"]["json_object"]["keys"].clone())
            .expect("keys");
    for secret in [
        "DB_PASSWORD",
        "SERVER_KEY",
        "DIFY_INNER_API_KEY",
        "PLUGIND_TEST_MARKER",
    ] {
        assert!(
            !keys.iter().any(|k| k == secret),
            "plugin saw {secret}: {keys:?}"
        );
    }
    assert!(keys.iter().any(|k| k == "INSTALL_METHOD"), "{keys:?}");

    // Restart: the plugin comes back by itself, without reinstalling.
    daemon.restart().await.expect("restart");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, events) = invoke(&client, "again", "text").await;
        if status == 200 && events.first().is_some_and(|e| e["code"] == 0) {
            assert_eq!(data(&events[0])["message"]["text"], "again");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "plugin not back after restart: {status} {events:?}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // kill -9 the plugin in the middle of an invocation: the caller hears about it at once.
    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = invoke(&client, "30", "sleep").await;
            (started.elapsed(), result)
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pids = plugin_pids(&daemon.data_dir);
    assert!(
        !pids.is_empty(),
        "no plugin process found under {}",
        daemon.data_dir.display()
    );
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status();
    }
    let (elapsed, (status, events)) = slow.await.expect("join");
    assert!(
        elapsed < Duration::from_secs(15),
        "in-flight call took {elapsed:?} to fail"
    );
    assert_eq!(status, 200);
    let err = error_of(events.last().expect("error event"));
    assert_eq!(
        err["error_type"], "PluginDaemonInternalServerError",
        "{err}"
    );
    // ...and the runtime restarts it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, events) = invoke(&client, "revived", "text").await;
        if events.first().is_some_and(|e| e["code"] == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "plugin not restarted after kill: {events:?}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Uninstall: gone from the lists, dispatch says not found, process stopped.
    let (_, resp) = client
        .post_json(
            &format!("/plugin/{TENANT}/management/uninstall"),
            json!({"plugin_installation_id": installation_id}),
        )
        .await
        .expect("uninstall");
    assert_eq!(data(&resp), &json!(true));
    let (status, events) = invoke(&client, "x", "text").await;
    assert_eq!(status, 404);
    assert_eq!(error_of(&events[0])["error_type"], "PluginNotFoundError");
    let (_, list) = client
        .get(&format!(
            "/plugin/{TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("list");
    assert_eq!(data(&list)["total"], 0);
    assert!(
        plugin_pids(&daemon.data_dir).is_empty(),
        "plugin still running after uninstall"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn full_flow_sqlite_latest_sdk_with_uv_lock() {
    full_flow(DbChoice::Sqlite, Variant::Latest).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn full_flow_postgres_sdk_07_with_requirements_txt() {
    let database = create_pg_database().expect("PostgreSQL on 127.0.0.1:5432");
    full_flow(DbChoice::Postgres { database }, Variant::Sdk07).await;
}
