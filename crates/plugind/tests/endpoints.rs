//! Endpoint management end to end (http-api §4.6): the echo fixture packed with an endpoint
//! group (one `secret-input` and one `select` setting), installed on a real daemon; setup,
//! listing with masking, update keeping a masked secret, disable/enable, remove, the
//! installation's counters, the encrypt calls the fake Dify inner API received, and bad input
//! per route. Runs on SQLite and on PostgreSQL.
//!
//! The public hooks `/e/{hook_id}/…` (http-api §5) on the same endpoint: every method reaches the
//! plugin's `Endpoint` with the request as upstream serialises it and the settings decrypted
//! through the fake inner API; status, headers and body come back, a streamed body in pieces; a
//! disabled endpoint, an unknown hook id, an uninstalled plugin, a failed decryption and PATCH get
//! upstream's errors.

use std::path::PathBuf;
use std::time::Duration;

use plugind_test_support::{
    create_pg_database, fixture_root, pack_fixture_with, Client, Daemon, DaemonOptions, DbChoice,
    FakeDify, Variant, ECHO_PLUGIN_ID, ENCRYPTED_PREFIX,
};
use serde_json::{json, Value};

const TENANT: &str = "3e5f7a9b-1c2d-4e3f-8a4b-5c6d7e8f9a01";
const USER: &str = "user-7";
const SECRET: &str = "sk-abcdef123456";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

const GROUP: &str = "\
settings:
  - name: api_key
    type: secret-input
    required: true
    label:
      en_US: API key
  - name: mode
    type: select
    required: false
    label:
      en_US: Mode
    options:
      - value: fast
        label:
          en_US: Fast
      - value: slow
        label:
          en_US: Slow
endpoints:
  - endpoints/ping.yaml
  - endpoints/echo_get.yaml
  - endpoints/echo_post.yaml
  - endpoints/echo_put.yaml
  - endpoints/echo_delete.yaml
  - endpoints/echo_options.yaml
  - endpoints/stream.yaml
";

const ENDPOINT: &str = "\
path: /ping
method: GET
extra:
  python:
    source: endpoints/ping.py
";

const ENDPOINT_PY: &str = "\
from typing import Mapping

from werkzeug import Request, Response
from dify_plugin import Endpoint


class Ping(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        return Response(\"pong\", status=200, content_type=\"text/plain\")
";

/// One `/echo` endpoint per method (HEAD comes with GET), all answered by `endpoints/echo.py`.
const ECHO_METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "OPTIONS"];

fn echo_endpoint(method: &str) -> String {
    format!("path: /echo\nmethod: {method}\nextra:\n  python:\n    source: endpoints/echo.py\n")
}

/// Answers 201 with a JSON description of the request it got and the settings.
const ECHO_PY: &str = "\
import json
from typing import Mapping

from werkzeug import Request, Response
from dify_plugin import Endpoint


class Echo(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        answer = {
            \"method\": r.method,
            \"path\": r.path,
            \"args\": r.args.to_dict(flat=False),
            \"headers\": {k.lower(): v for k, v in r.headers.items()},
            \"body\": r.get_data(as_text=True),
            \"settings\": dict(settings),
        }
        return Response(json.dumps(answer), status=201, headers={\"X-Plugin\": \"echo\"},
                        content_type=\"application/json\")
";

const STREAM_ENDPOINT: &str = "\
path: /stream
method: GET
extra:
  python:
    source: endpoints/stream.py
";

/// A streamed body in three pieces; `?fail=1` raises after them.
const STREAM_PY: &str = "\
from typing import Mapping

from werkzeug import Request, Response
from dify_plugin import Endpoint


class Stream(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        fail = r.args.get(\"fail\")

        def pieces():
            for i in range(3):
                yield f\"part{i};\"
            if fail:
                raise RuntimeError(\"stream broke\")

        return Response(pieces(), status=202, headers={\"X-Stream\": \"yes\"},
                        content_type=\"text/plain\")
";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

/// The echo fixture with an endpoint group added; `permission` false leaves the manifest's
/// endpoint permission out.
fn endpoint_package(permission: bool) -> Vec<u8> {
    let manifest = std::fs::read_to_string(fixture_root().join("variant-latest/manifest.yaml"))
        .expect("manifest");
    let mut edited = manifest.replace(
        "plugins:\n  tools:\n    - provider/echo.yaml\n",
        "plugins:\n  tools:\n    - provider/echo.yaml\n  endpoints:\n    - group/ping.yaml\n",
    );
    if permission {
        edited = edited.replace(
            "  permission:\n",
            "  permission:\n    endpoint:\n      enabled: true\n",
        );
    }
    assert_ne!(edited, manifest, "the manifest lists the endpoint group");
    let echo: Vec<(String, String)> = ECHO_METHODS
        .iter()
        .map(|m| {
            (
                format!("endpoints/echo_{}.yaml", m.to_lowercase()),
                echo_endpoint(m),
            )
        })
        .collect();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("manifest.yaml", edited.as_bytes()),
        ("group/ping.yaml", GROUP.as_bytes()),
        ("endpoints/ping.yaml", ENDPOINT.as_bytes()),
        ("endpoints/ping.py", ENDPOINT_PY.as_bytes()),
        ("endpoints/echo.py", ECHO_PY.as_bytes()),
        ("endpoints/stream.yaml", STREAM_ENDPOINT.as_bytes()),
        ("endpoints/stream.py", STREAM_PY.as_bytes()),
    ];
    files.extend(echo.iter().map(|(p, c)| (p.as_str(), c.as_bytes())));
    pack_fixture_with(Variant::Latest, &files)
}

async fn install(client: &Client, tenant: &str, package: Vec<u8>) -> String {
    let (status, resp) = client
        .upload_package(tenant, package, false)
        .await
        .expect("upload");
    assert_eq!(status, 200, "{resp}");
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .unwrap_or_else(|| panic!("no unique identifier in {resp}"))
        .to_owned();
    let task = client
        .install_and_wait(tenant, &uid, INSTALL_TIMEOUT)
        .await
        .expect("install");
    assert_eq!(task["status"], "success", "install task: {task}");
    uid
}

fn path(tenant: &str, rest: &str) -> String {
    format!("/plugin/{tenant}/endpoint/{rest}")
}

/// POSTs `body` and returns the HTTP status and envelope.
async fn post(client: &Client, rest: &str, body: Value) -> (u16, Value) {
    client
        .post_json(&path(TENANT, rest), body)
        .await
        .expect("post")
}

/// A successful envelope's `data`.
fn ok(status: u16, resp: &Value) -> Value {
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["code"], 0, "{resp}");
    resp["data"].clone()
}

/// The error's (HTTP status, code, error_type, message).
fn err(status: u16, resp: &Value) -> (u16, i64, String, String) {
    let code = resp["code"].as_i64().unwrap_or_else(|| panic!("{resp}"));
    let inner: Value =
        serde_json::from_str(resp["message"].as_str().expect("message")).expect("message is JSON");
    assert!(resp["data"].is_null(), "{resp}");
    (
        status,
        code,
        inner["error_type"].as_str().unwrap_or("").to_owned(),
        inner["message"].as_str().unwrap_or("").to_owned(),
    )
}

async fn list(client: &Client) -> Vec<Value> {
    let (status, resp) = client
        .get(&path(TENANT, "list?page=1&page_size=10&user_id=u"))
        .await
        .expect("list");
    ok(status, &resp).as_array().expect("array").clone()
}

/// (endpoints_setups, endpoints_active) of the tenant's echo installation.
async fn counters(client: &Client) -> (i64, i64) {
    let (status, resp) = client
        .get(&format!(
            "/plugin/{TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("plugins");
    let data = ok(status, &resp);
    let plugin = data["list"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["plugin_id"] == ECHO_PLUGIN_ID))
        .unwrap_or_else(|| panic!("echo installed: {data}"))
        .clone();
    (
        plugin["endpoints_setups"].as_i64().expect("setups"),
        plugin["endpoints_active"].as_i64().expect("active"),
    )
}

async fn scenario(db: DbChoice) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = Daemon::start(
        &bin(),
        DaemonOptions {
            data_dir: dir.path().to_path_buf(),
            db,
            extra_env: Vec::new(),
        },
        &dify,
    )
    .await
    .expect("daemon starts");
    let client = daemon.client();
    let uid = install(&client, TENANT, endpoint_package(true)).await;

    // Setup with a secret: the fake Dify is asked to encrypt it for this tenant.
    let (status, resp) = post(
        &client,
        "setup",
        json!({"plugin_unique_identifier": uid, "user_id": USER, "name": "first",
               "settings": {"api_key": SECRET, "mode": "fast"}}),
    )
    .await;
    assert_eq!(ok(status, &resp), json!(true));
    let encrypts: Vec<Value> = dify
        .requests_to("invoke/encrypt")
        .iter()
        .map(|r| r.json())
        .collect();
    assert_eq!(encrypts.len(), 1, "{encrypts:?}");
    let call = &encrypts[0];
    assert_eq!(call["tenant_id"], TENANT);
    assert_eq!(call["opt"], "encrypt");
    assert_eq!(call["namespace"], "endpoint");
    assert_eq!(call["data"], json!({"api_key": SECRET, "mode": "fast"}));
    assert_eq!(call["config"][0]["name"], "api_key");
    assert_eq!(counters(&client).await, (1, 1));

    // Listed with the secret masked and the group declaration.
    let endpoints = list(&client).await;
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    let e = &endpoints[0];
    let id = e["id"].as_str().expect("id").to_owned();
    assert_eq!(call["identity"], id.as_str(), "encrypted for this endpoint");
    assert_eq!(e["name"], "first");
    assert_eq!(e["enabled"], true);
    assert_eq!(e["plugin_id"], ECHO_PLUGIN_ID);
    assert_eq!(e["tenant_id"], TENANT);
    assert_eq!(e["user_id"], USER);
    let masked = "sk***********56";
    assert_eq!(e["settings"], json!({"api_key": masked, "mode": "fast"}));
    assert_eq!(e["declaration"]["endpoints"][0]["path"], "/ping");
    let hook = e["hook_id"].as_str().expect("hook id");
    assert_eq!(hook.len(), 16);
    assert!(hook
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    assert!(e["expired_at"]
        .as_str()
        .expect("expiry")
        .starts_with("2050-01-01T00:00:00"));
    let by_plugin = client
        .get(&path(
            TENANT,
            &format!("list/plugin?plugin_id={ECHO_PLUGIN_ID}&page=1&page_size=10"),
        ))
        .await
        .expect("list by plugin");
    assert_eq!(
        ok(by_plugin.0, &by_plugin.1),
        Value::Array(endpoints.clone())
    );

    hooks(&client, &dify, hook, &id).await;

    // Update sending the masked secret back: the stored secret is kept.
    dify.clear_requests();
    let (status, resp) = post(
        &client,
        "update",
        json!({"endpoint_id": id, "user_id": USER, "name": "renamed",
               "settings": {"api_key": masked, "mode": "slow"}}),
    )
    .await;
    assert_eq!(ok(status, &resp), json!(true));
    let encrypted: Vec<Value> = dify
        .requests_with("invoke/encrypt", "opt", &json!("encrypt"))
        .into_iter()
        .collect();
    assert_eq!(encrypted.len(), 1, "{encrypted:?}");
    assert_eq!(
        encrypted[0]["data"],
        json!({"api_key": SECRET, "mode": "slow"}),
        "the masked value was replaced by the stored secret"
    );
    let e = &list(&client).await[0];
    assert_eq!(e["name"], "renamed");
    assert_eq!(e["settings"], json!({"api_key": masked, "mode": "slow"}));

    // A new secret replaces the stored one.
    let (status, resp) = post(
        &client,
        "update",
        json!({"endpoint_id": id, "user_id": USER, "name": "renamed",
               "settings": {"api_key": "new-secret-value"}}),
    )
    .await;
    assert_eq!(ok(status, &resp), json!(true));
    assert_eq!(
        list(&client).await[0]["settings"],
        json!({"api_key": "ne************ue"})
    );

    // Disable / enable, each idempotent, with the active counter following.
    for _ in 0..2 {
        let (status, resp) = post(&client, "disable", json!({"endpoint_id": id})).await;
        assert_eq!(ok(status, &resp), json!(true));
    }
    assert_eq!(list(&client).await[0]["enabled"], false);
    assert_eq!(counters(&client).await, (1, 0));
    let (status, body) = hook_call(&client, reqwest::Method::GET, hook, "/ping").await;
    assert_eq!(
        hook_error(status, &body),
        (
            404,
            -404,
            "PluginDaemonNotFoundError".to_owned(),
            "endpoint not found".to_owned()
        ),
        "a disabled endpoint"
    );
    for _ in 0..2 {
        let (status, resp) = post(&client, "enable", json!({"endpoint_id": id})).await;
        assert_eq!(ok(status, &resp), json!(true));
    }
    assert_eq!(list(&client).await[0]["enabled"], true);
    assert_eq!(counters(&client).await, (1, 1));
    let (status, body) = hook_call(&client, reqwest::Method::GET, hook, "/ping").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "pong"),
        "enabled again: the plugin answers"
    );

    bad_input(&client, &uid, &id).await;
    encrypt_failure(&client, &dify, &uid, &id).await;

    // Remove: gone from the list, counters back to zero, a second remove is upstream's -500.
    let (status, resp) = post(
        &client,
        "remove",
        json!({"endpoint_id": id, "user_id": USER}),
    )
    .await;
    assert_eq!(ok(status, &resp), json!(true));
    assert!(list(&client).await.is_empty());
    assert_eq!(counters(&client).await, (0, 0));
    let (status, resp) = post(&client, "remove", json!({"endpoint_id": id})).await;
    assert_eq!(
        err(status, &resp),
        (
            200,
            -500,
            "PluginDaemonInternalServerError".to_owned(),
            "failed to remove endpoint: record not found".to_owned()
        )
    );

    orphaned(&client, &uid).await;
}

/// A client with no API key that does not follow redirects: what reaches `/e/` from outside.
fn public_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

/// `method /e/{hook}{rest}` with no API key; (status, body text).
async fn hook_call(
    client: &Client,
    method: reqwest::Method,
    hook: &str,
    rest: &str,
) -> (u16, String) {
    let resp = public_http()
        .request(method, client.url(&format!("/e/{hook}{rest}")))
        .send()
        .await
        .expect("hook request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// An `/e/` error: (HTTP status, code, error_type, message).
fn hook_error(status: u16, body: &str) -> (u16, i64, String, String) {
    let resp: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{status} {body:?}: {e}"));
    err(status, &resp)
}

/// The public hooks of the endpoint `id` (`hook`), set up with {api_key: SECRET, mode: fast}.
async fn hooks(client: &Client, dify: &FakeDify, hook: &str, id: &str) {
    let http = public_http();
    let url = |rest: &str| client.url(&format!("/e/{hook}{rest}"));
    let host = client.base_url().trim_start_matches("http://").to_owned();

    // Every method reaches the plugin's endpoint with the request upstream would send.
    dify.clear_requests();
    for method in ECHO_METHODS {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let with_body = matches!(method, reqwest::Method::POST | reqwest::Method::PUT);
        let mut request = http
            .request(method.clone(), url("/echo?b=2&a=1&a=x+y&flag"))
            .header("X-Custom", "v1")
            .header("X-Forwarded-For", "10.0.0.1")
            .header("X-Real-IP", "10.0.0.1");
        if with_body {
            request = request
                .header("Content-Type", "text/plain")
                .body(format!("body of {method}"));
        }
        let resp = request.send().await.expect("hook request");
        assert_eq!(resp.status(), 201, "{method}");
        assert_eq!(resp.headers()["x-plugin"], "echo", "{method}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "{method}"
        );
        let seen: Value = resp.json().await.expect("echo JSON");
        assert_eq!(seen["method"], method.as_str());
        assert_eq!(seen["path"], "/echo");
        assert_eq!(
            seen["args"],
            json!({"a": ["1", "x y"], "b": ["2"], "flag": [""]}),
            "{method}"
        );
        let headers = &seen["headers"];
        assert_eq!(headers["x-custom"], "v1", "{seen}");
        assert_eq!(headers["host"], host.as_str(), "{seen}");
        assert_eq!(headers["dify-hook-id"], hook, "{seen}");
        assert_eq!(
            headers["dify-hook-url"],
            format!("http://{host}/e/{hook}/echo"),
            "{seen}"
        );
        assert!(headers.get("x-forwarded-for").is_none(), "{seen}");
        assert!(headers.get("x-real-ip").is_none(), "{seen}");
        let body = if with_body {
            format!("body of {method}")
        } else {
            String::new()
        };
        assert_eq!(seen["body"], body.as_str(), "{method}");
        assert_eq!(
            seen["settings"],
            json!({"api_key": SECRET, "mode": "fast"}),
            "the plugin gets the settings decrypted"
        );
    }
    // Each invocation decrypted the stored (encrypted) settings for this endpoint.
    let decrypts = dify.requests_with("invoke/encrypt", "opt", &json!("decrypt"));
    assert_eq!(decrypts.len(), ECHO_METHODS.len(), "{decrypts:?}");
    for call in &decrypts {
        assert_eq!(call["identity"], id);
        assert_eq!(call["namespace"], "endpoint");
        assert_eq!(call["user_id"], "");
        assert_eq!(call["tenant_id"], TENANT);
        assert_eq!(
            call["data"]["api_key"],
            format!("{ENCRYPTED_PREFIX}{SECRET}"),
            "stored encrypted"
        );
    }

    // HEAD: the GET endpoint's head, no body.
    let resp = http.head(url("/echo")).send().await.expect("HEAD");
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-plugin"], "echo");
    assert!(resp.bytes().await.expect("body").is_empty());

    // The original host (set by a proxy) is the one the plugin sees.
    let resp = http
        .get(url("/echo"))
        .header("X-Original-Host", "dify.example")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .expect("hook");
    let seen: Value = resp.json().await.expect("echo JSON");
    assert_eq!(seen["headers"]["host"], "dify.example");
    assert_eq!(
        seen["headers"]["dify-hook-url"],
        format!("https://dify.example/e/{hook}/echo")
    );
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert!(seen["headers"].get("x-original-host").is_none(), "{seen}");

    // A streamed body: the head first, then the pieces, no Content-Length.
    let resp = http.get(url("/stream")).send().await.expect("stream");
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["x-stream"], "yes");
    assert!(resp.headers().get("content-length").is_none());
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    assert_eq!(resp.text().await.expect("body"), "part0;part1;part2;");
    // A plugin failure after the head: its error is appended to the body (upstream).
    let (status, body) = hook_call(client, reqwest::Method::GET, hook, "/stream?fail=1").await;
    assert_eq!(status, 202);
    let tail = body
        .strip_prefix("part0;part1;part2;")
        .unwrap_or_else(|| panic!("{body}"));
    let error: Value = serde_json::from_str(tail).unwrap_or_else(|e| panic!("{tail}: {e}"));
    assert_eq!(error["error_type"], "RuntimeError", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("stream broke"),
        "{error}"
    );

    // A path the plugin does not serve: the SDK's own 404 comes through.
    let (status, body) = hook_call(client, reqwest::Method::GET, hook, "/nowhere").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("Failed to dispatch endpoint request"),
        "{body}"
    );

    // Router behaviour: PATCH is not a hook method; `/e/{hook}` redirects to `/e/{hook}/`.
    let (status, body) = hook_call(client, reqwest::Method::PATCH, hook, "/echo").await;
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"code":"not_found","message":"route not found"}"#)
    );
    for (method, code) in [(reqwest::Method::GET, 301), (reqwest::Method::POST, 307)] {
        let resp = http
            .request(method, url("?q=1"))
            .send()
            .await
            .expect("redirect");
        assert_eq!(resp.status(), code);
        assert_eq!(resp.headers()["location"], format!("/e/{hook}/?q=1"));
    }

    // Dify failing to decrypt the settings: HTTP 500 with its error, the plugin is not called.
    dify.set_error("invoke/encrypt", "vault sealed");
    let (status, body) = hook_call(client, reqwest::Method::GET, hook, "/echo").await;
    let (s, code, kind, message) = hook_error(status, &body);
    assert_eq!(
        (s, code, kind.as_str()),
        (500, -500, "PluginDaemonInternalServerError")
    );
    assert!(message.contains("vault sealed"), "{message}");
    dify.clear_answer("invoke/encrypt");

    // An unknown hook id.
    let (status, body) = hook_call(client, reqwest::Method::GET, "nosuchhook000000", "/ping").await;
    assert_eq!(
        hook_error(status, &body),
        (
            404,
            -400,
            "PluginDaemonBadRequestError".to_owned(),
            "endpoint not found".to_owned()
        )
    );
}

/// An endpoint whose plugin was uninstalled is still listed, with empty settings and an empty
/// declaration (upstream's shape), and can still be removed.
async fn orphaned(client: &Client, uid: &str) {
    let (status, resp) = post(
        client,
        "setup",
        json!({"plugin_unique_identifier": uid, "user_id": USER, "name": "orphan",
               "settings": {"api_key": SECRET}}),
    )
    .await;
    assert_eq!(ok(status, &resp), json!(true));
    let (status, resp) = client
        .get(&format!(
            "/plugin/{TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("plugins");
    let installation_id = ok(status, &resp)["list"][0]["installation_id"]
        .as_str()
        .expect("installation id")
        .to_owned();
    let (status, resp) = client
        .post_json(
            &format!("/plugin/{TENANT}/management/uninstall"),
            json!({"plugin_installation_id": installation_id}),
        )
        .await
        .expect("uninstall");
    ok(status, &resp);
    let endpoints = list(client).await;
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    let hook = endpoints[0]["hook_id"].as_str().expect("hook id");
    let (status, body) = hook_call(client, reqwest::Method::GET, hook, "/ping").await;
    assert_eq!(
        hook_error(status, &body),
        (
            404,
            -400,
            "PluginDaemonBadRequestError".to_owned(),
            "plugin installation not found".to_owned()
        )
    );
    assert_eq!(endpoints[0]["settings"], json!({}));
    assert_eq!(
        endpoints[0]["declaration"],
        json!({"settings": [], "endpoints": []})
    );
    let (status, resp) = post(client, "remove", json!({"endpoint_id": endpoints[0]["id"]})).await;
    assert_eq!(ok(status, &resp), json!(true));
    assert!(list(client).await.is_empty());
}

async fn bad_input(client: &Client, uid: &str, id: &str) {
    let bad_request = |status: u16, resp: &Value| {
        let (s, code, kind, _) = err(status, resp);
        assert_eq!(
            (s, code, kind.as_str()),
            (400, -400, "PluginDaemonBadRequestError"),
            "{resp}"
        );
    };
    // Missing required fields, per route.
    for route in ["setup", "update", "remove", "enable", "disable"] {
        let (status, resp) = post(client, route, json!({})).await;
        bad_request(status, &resp);
    }
    let (status, resp) = post(
        client,
        "setup",
        json!({"plugin_unique_identifier": uid, "user_id": USER, "settings": {}}),
    )
    .await;
    bad_request(status, &resp);
    for query in [
        "list",
        "list?page=1&page_size=101",
        "list/plugin?page=1&page_size=10",
    ] {
        let (status, resp) = client.get(&path(TENANT, query)).await.expect("get");
        bad_request(status, &resp);
    }

    // Settings that fail the schema: nothing is stored.
    let (status, resp) = post(
        client,
        "setup",
        json!({"plugin_unique_identifier": uid, "user_id": USER, "name": "x",
               "settings": {"mode": "fast"}}),
    )
    .await;
    assert_eq!(
        err(status, &resp),
        (
            200,
            -400,
            "PluginDaemonBadRequestError".to_owned(),
            "failed to validate settings: missing required setting: api_key".to_owned()
        )
    );
    let (status, resp) = post(
        client,
        "update",
        json!({"endpoint_id": id, "user_id": USER, "name": "x",
               "settings": {"api_key": "k", "mode": "medium"}}),
    )
    .await;
    assert_eq!(err(status, &resp).1, -400, "{resp}");
    assert_eq!(list(client).await.len(), 1);

    // Unknown plugin or endpoint: upstream's errors.
    let other = uid.replace("0.0.1", "9.9.9");
    let (status, resp) = post(
        client,
        "setup",
        json!({"plugin_unique_identifier": other, "user_id": USER, "name": "x", "settings": {}}),
    )
    .await;
    assert_eq!(
        err(status, &resp),
        (
            200,
            -404,
            "PluginNotFoundError".to_owned(),
            "plugin not found".to_owned()
        )
    );
    let unknown = "0191b3a4-0000-7000-8000-000000000000";
    let (status, resp) = post(
        client,
        "update",
        json!({"endpoint_id": unknown, "user_id": USER, "name": "x", "settings": {}}),
    )
    .await;
    assert_eq!(err(status, &resp).1, -404, "{resp}");
    for route in ["enable", "disable"] {
        let (status, resp) = post(client, route, json!({"endpoint_id": unknown})).await;
        assert_eq!(
            err(status, &resp),
            (
                200,
                -404,
                "PluginDaemonNotFoundError".to_owned(),
                "endpoint not found".to_owned()
            )
        );
    }
    assert_eq!(
        counters(client).await,
        (1, 1),
        "failed calls change no counter"
    );
}

/// Dify failing to encrypt: setup and update answer -500 and nothing stored changes.
async fn encrypt_failure(client: &Client, dify: &FakeDify, uid: &str, id: &str) {
    let before = list(client).await;
    dify.set_error("invoke/encrypt", "vault sealed");
    let (status, resp) = post(
        client,
        "setup",
        json!({"plugin_unique_identifier": uid, "user_id": USER, "name": "second",
               "settings": {"api_key": SECRET}}),
    )
    .await;
    let (s, code, kind, message) = err(status, &resp);
    assert_eq!(
        (s, code, kind.as_str()),
        (200, -500, "PluginDaemonInternalServerError")
    );
    assert!(message.contains("vault sealed"), "{message}");
    let (status, resp) = post(
        client,
        "update",
        json!({"endpoint_id": id, "user_id": USER, "name": "changed",
               "settings": {"api_key": "another-secret"}}),
    )
    .await;
    assert_eq!(err(status, &resp).1, -500, "{resp}");
    dify.clear_answer("invoke/encrypt");
    assert_eq!(list(client).await, before, "nothing stored changed");
    assert_eq!(counters(client).await, (1, 1));
}

/// A plugin whose manifest does not grant endpoint access cannot set one up.
async fn permission_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = Daemon::start(&bin(), DaemonOptions::new(dir.path()), &dify)
        .await
        .expect("daemon starts");
    let client = daemon.client();
    let uid = install(&client, TENANT, endpoint_package(false)).await;
    let (status, resp) = post(
        &client,
        "setup",
        json!({"plugin_unique_identifier": uid, "user_id": USER, "name": "x",
               "settings": {"api_key": SECRET}}),
    )
    .await;
    assert_eq!(
        err(status, &resp),
        (
            200,
            -403,
            "PluginPermissionDeniedError".to_owned(),
            "permission denied, you need to enable endpoint access in plugin manifest".to_owned()
        )
    );
    assert!(dify.requests_to("invoke/encrypt").is_empty());
    assert!(list(&client).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_management_on_sqlite() {
    scenario(DbChoice::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_management_on_postgres() {
    let database = create_pg_database().expect("create database");
    scenario(DbChoice::Postgres { database }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_setup_needs_the_manifest_permission() {
    permission_denied().await;
}

/// `PLUGIN_ENDPOINT_ENABLED=false`: the hooks are not served at all (upstream's 404), while
/// endpoint management still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_can_be_switched_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let mut options = DaemonOptions::new(dir.path());
    options
        .extra_env
        .push(("PLUGIN_ENDPOINT_ENABLED".to_owned(), "false".to_owned()));
    let daemon = Daemon::start(&bin(), options, &dify)
        .await
        .expect("daemon starts");
    let client = daemon.client();
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let (status, body) = hook_call(&client, method, "somehook", "/ping").await;
        assert_eq!(
            (status, body.as_str()),
            (404, r#"{"code":"not_found","message":"route not found"}"#)
        );
    }
    assert!(list(&client).await.is_empty());
}
