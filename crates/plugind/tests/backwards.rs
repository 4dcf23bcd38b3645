//! Backwards invocation end to end: the fixture plugin's `backwards` tool, on the real SDK,
//! calls back into Dify through the daemon; the fake Dify inner API records what it received.
//! Covers the relay of every kind the fixture exercises, tenant/user injection, manifest
//! permissions, plugin storage and its quota, Dify failures, and concurrency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugind_test_support::{
    create_pg_database, fixture_root, latest_manifest_as, pack_fixture, pack_fixture_with, Client,
    Daemon, DaemonOptions, DbChoice, FakeAnswer, FakeDify, Variant, BACKWARDS_TOOL, ECHO_PLUGIN_ID,
    ECHO_PROVIDER, ECHO_TOOL,
};
use serde_json::{json, Value};

const TENANT: &str = "7a1d3e2a-8f5b-4c1a-9d7e-2b3c4d5e6f71";
/// A second tenant, for the package with a permission removed.
const OTHER_TENANT: &str = "8b2e4f3b-9a6c-4d2b-8e8f-3c4d5e6f7a82";
/// A third tenant, for the agent-strategy plugin.
const AGENT_TENANT: &str = "9c3f5a4c-0b7d-4e3c-9f9a-4d5e6f7a8b93";
/// A fourth tenant, for the model plugin.
const MODEL_TENANT: &str = "0d4a6b5d-1c8e-4f4d-8a0b-5e6f7a8b9ca4";
const USER: &str = "user-42";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Total read limit the daemon gets for Dify's answers in these tests.
const READ_TIMEOUT_MS: u64 = 2_000;
/// `PERSISTENCE_STORAGE_MAX_SIZE` in these tests.
const STORAGE_MAX: u64 = 4_096;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

fn env() -> Vec<(String, String)> {
    vec![
        (
            "DIFY_BACKWARDS_INVOCATION_READ_TIMEOUT".into(),
            READ_TIMEOUT_MS.to_string(),
        ),
        (
            "PERSISTENCE_STORAGE_MAX_SIZE".into(),
            STORAGE_MAX.to_string(),
        ),
    ]
}

async fn start(dir: &Path, db: DbChoice, dify: &FakeDify, extra: Vec<(String, String)>) -> Daemon {
    Daemon::start(
        &bin(),
        DaemonOptions {
            data_dir: dir.to_path_buf(),
            db,
            extra_env: extra,
        },
        dify,
    )
    .await
    .expect("daemon starts")
}

async fn install(client: &Client, tenant: &str, package: Vec<u8>) {
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
}

/// Runs the backwards tool in `mode` and returns its report (`{"mode","result"|"error"}`).
/// Retries while the plugin is still starting.
async fn call(client: &Client, tenant: &str, mode: &str, text: &str) -> Value {
    let body = json!({
        "user_id": USER, "conversation_id": null, "app_id": null, "message_id": null,
        "data": {"provider": ECHO_PROVIDER, "tool": BACKWARDS_TOOL, "credentials": {},
                 "tool_parameters": {"mode": mode, "text": text}}
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, events) = client
            .dispatch(tenant, ECHO_PLUGIN_ID, "tool/invoke", body.clone())
            .await
            .expect("dispatch");
        let text = events
            .first()
            .filter(|e| e["code"] == 0)
            .and_then(|e| e["data"]["message"]["text"].as_str());
        if let Some(text) = text {
            assert_eq!(events.len(), 1, "one message: {events:?}");
            return serde_json::from_str(text).expect("report is JSON");
        }
        assert!(
            Instant::now() < deadline,
            "backwards {mode} failed: HTTP {status} {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn result(report: &Value) -> &Value {
    assert!(report.get("error").is_none(), "unexpected error: {report}");
    &report["result"]
}

fn error(report: &Value) -> &str {
    report["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {report}"))
}

/// The single request the fake received at `path` whose body has `key == value`.
fn received(dify: &FakeDify, path: &str, key: &str, value: Value) -> Value {
    let mut found = dify.requests_with(path, key, &value);
    assert_eq!(
        found.len(),
        1,
        "requests to {path} with {key}={value}: {found:?}"
    );
    found.remove(0)
}

fn keys(body: &Value) -> Vec<&str> {
    body.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// Every kind the fixture calls: what the plugin got and what Dify received.
async fn happy_path(client: &Client, dify: &FakeDify, tenant: &str) {
    // Streamed LLM.
    let report = call(client, tenant, "llm", "hello-llm").await;
    assert_eq!(result(&report)["text"], "echo: hello-llm");
    let body = received(dify, "invoke/llm", "tenant_id", json!(tenant));
    assert_eq!(keys(&body)[..3], ["tenant_id", "user_id", "type"]);
    assert_eq!(body["user_id"], USER);
    assert_eq!(body["type"], "llm");
    assert_eq!(body["provider"], "fake/openai");
    assert_eq!(body["model"], "gpt-fake");
    assert_eq!(body["mode"], "chat");
    assert_eq!(body["stream"], true);
    assert_eq!(body["completion_params"], json!({"temperature": 0}));
    assert_eq!(body["prompt_messages"][0]["content"], "hello-llm");
    assert_eq!(body["prompt_messages"][0]["role"], "user");
    let rec = &dify.requests_to("invoke/llm")[0];
    assert_eq!(rec.header("x-inner-api-key"), Some(dify.key.as_str()));
    assert_eq!(rec.method, "POST");

    // Text embedding (plain JSON route).
    let report = call(client, tenant, "embedding", "emb").await;
    assert_eq!(result(&report)["model"], "embed-fake");
    assert_eq!(
        result(&report)["embeddings"],
        json!([[0.0, 0.5, 1.0], [1.0, 0.5, 1.0]])
    );
    let body = received(dify, "invoke/text-embedding", "tenant_id", json!(tenant));
    assert_eq!(body["user_id"], USER);
    assert_eq!(body["type"], "text_embedding");
    assert_eq!(body["texts"], json!(["emb", "emb!"]));

    // Tool (streamed), without the SDK's app_id.
    let report = call(client, tenant, "tool", "what time").await;
    assert_eq!(result(&report)["messages"], json!(["from fake dify"]));
    let body = received(dify, "invoke/tool", "tenant_id", json!(tenant));
    assert_eq!(
        (
            &body["type"],
            &body["tool_type"],
            &body["provider"],
            &body["tool"]
        ),
        (
            &json!("tool"),
            &json!("builtin"),
            &json!("time"),
            &json!("current_time")
        )
    );
    assert_eq!(body["tool_parameters"], json!({"q": "what time"}));
    assert_eq!(body["user_id"], USER);
    assert!(body.get("app_id").is_none(), "{body}");

    // Chat app (streamed events).
    let report = call(client, tenant, "app", "hi app").await;
    assert_eq!(
        result(&report)["events"],
        json!([{"event": "message", "answer": "hello "}, {"event": "message_end", "answer": "from app"}])
    );
    let body = received(dify, "invoke/app", "tenant_id", json!(tenant));
    assert_eq!(body["app_id"], "app-1");
    assert_eq!(body["query"], "hi app");
    assert_eq!(body["inputs"], json!({"k": "v"}));
    assert_eq!(body["response_mode"], "streaming");
    assert_eq!(body["type"], "app");

    // Workflow node: parameter extractor.
    let report = call(client, tenant, "extractor", "I live in Paris").await;
    assert_eq!(result(&report)["outputs"], json!({"city": "Paris"}));
    let body = received(
        dify,
        "invoke/parameter-extractor",
        "tenant_id",
        json!(tenant),
    );
    assert_eq!(body["type"], "node_parameter_extractor");
    assert_eq!(body["query"], "I live in Paris");
    assert_eq!(body["model"]["name"], "gpt-fake");
    assert_eq!(body["parameters"][0]["name"], "city");

    // A request that claims another tenant and user is sent as the session's.
    let report = call(client, tenant, "spoof", "short text").await;
    assert_eq!(
        result(&report)["answers"],
        json!([{"summary": "short text"}])
    );
    let body = received(dify, "invoke/summary", "tenant_id", json!(tenant));
    assert_eq!(body["user_id"], USER);
    assert_eq!(body["type"], "system_summary");
    assert!(dify
        .requests_with("invoke/summary", "tenant_id", &json!("evil-tenant"))
        .is_empty());

    // Storage, handled by the daemon: set/get/exist/delete.
    let report = call(client, tenant, "storage", "v1").await;
    assert_eq!(
        result(&report),
        &json!({"got": "v1", "exists": true, "after_delete": false})
    );

    // File upload: the daemon relays the signed URL, the plugin posts the bytes there.
    let report = call(client, tenant, "upload", "file body").await;
    assert_eq!(result(&report)["id"], "fake-file-1");
    assert_eq!(result(&report)["mime_type"], "text/plain");
    let body = received(dify, "upload/file/request", "tenant_id", json!(tenant));
    assert_eq!(
        (&body["filename"], &body["mimetype"], &body["type"]),
        (
            &json!("hello.txt"),
            &json!("text/plain"),
            &json!("upload_file")
        )
    );
    let uploads: Vec<_> = dify
        .requests()
        .into_iter()
        .filter(|r| r.path == plugind_test_support::fake_dify::UPLOAD_PATH)
        .collect();
    assert_eq!(uploads.len(), 1);
    assert!(String::from_utf8_lossy(&uploads[0].body).contains("file body"));
}

/// Requests the daemon refuses: an unknown type, a request missing a required key, and a
/// payload without a request id (which fails the whole dispatch, as upstream).
async fn refused(client: &Client, dify: &FakeDify, tenant: &str) {
    let before = dify.requests().len();
    let report = call(
        client,
        tenant,
        "raw",
        &json!({"type": "encrypt", "request": {"opt": "decrypt"}}).to_string(),
    )
    .await;
    assert_eq!(error(&report), "unsupported invoke type: encrypt");
    let report = call(
        client,
        tenant,
        "raw",
        &json!({"type": "tool", "request": {"provider": "time", "tool": "t"}}).to_string(),
    )
    .await;
    assert_eq!(
        error(&report),
        "unmarshal backwards invoke request failed: tool_type is required"
    );
    assert_eq!(dify.requests().len(), before, "nothing reached Dify");

    let body = json!({
        "user_id": USER,
        "data": {"provider": ECHO_PROVIDER, "tool": BACKWARDS_TOOL, "credentials": {},
                 "tool_parameters": {"mode": "malformed", "text": ""}}
    });
    let (status, events) = client
        .dispatch(tenant, ECHO_PLUGIN_ID, "tool/invoke", body)
        .await
        .expect("dispatch");
    assert_eq!(status, 200);
    let last = events.last().expect("an event");
    assert_eq!(last["code"], -500, "{events:?}");
    let outer: Value =
        serde_json::from_str(last["message"].as_str().expect("message")).expect("outer error JSON");
    assert_eq!(outer["error_type"], "PluginInvokeError");
    let inner: Value =
        serde_json::from_str(outer["message"].as_str().expect("inner")).expect("inner JSON");
    assert_eq!(
        inner,
        json!({"error_type": "invoke_dify_error",
               "message": "invoke dify failed: invoke request missing backwards_request_id"})
    );
}

/// A write over the quota is refused and the stored value stays as it was.
async fn quota(client: &Client, tenant: &str) {
    let ok = call(client, tenant, "storage_set", "big=3000").await;
    assert_eq!(result(&ok), &json!({"ok": true}));
    // 3000 + 2000 > 4096: refused before anything is written.
    let refused = call(client, tenant, "storage_set", "other=2000").await;
    assert_eq!(
        error(&refused),
        "save data failed: allocated size is greater than max storage size"
    );
    // Replacing the value with a bigger one over the quota is refused too; the old one stays.
    let refused = call(client, tenant, "storage_set", "big=5000").await;
    assert_eq!(
        error(&refused),
        "save data failed: allocated size is greater than max storage size"
    );
    let kept = call(client, tenant, "storage_get", "big").await;
    assert_eq!(result(&kept), &json!({"len": 3000}));
    // Shrinking it is fine, and frees room for the other key.
    let ok = call(client, tenant, "storage_set", "big=1000").await;
    assert_eq!(result(&ok), &json!({"ok": true}));
    let ok = call(client, tenant, "storage_set", "other=2000").await;
    assert_eq!(result(&ok), &json!({"ok": true}));
}

/// Dify answering an error, hanging, or sending a broken frame: the plugin gets an error it
/// handles, and the daemon keeps serving.
async fn dify_failures(client: &Client, dify: &FakeDify, tenant: &str) {
    dify.set_error("invoke/llm", "model quota exceeded");
    let report = call(client, tenant, "llm", "x").await;
    assert_eq!(
        error(&report),
        "read llm model failed: request failed: model quota exceeded"
    );
    dify.set_error("invoke/text-embedding", "no such model");
    let report = call(client, tenant, "embedding", "x").await;
    assert_eq!(
        error(&report),
        "invoke text-embedding model failed: request failed: no such model"
    );

    let mut broken =
        plugind_test_support::fake_dify::length_prefixed_frame(br#"{"data":{},"error":""}"#);
    broken[0] = 0x0E;
    dify.set_answer("invoke/llm", FakeAnswer::Raw(200, broken));
    let report = call(client, tenant, "llm", "x").await;
    assert_eq!(
        error(&report),
        "read llm model failed: magic number mismatch: 14"
    );

    let mut cut =
        plugind_test_support::fake_dify::length_prefixed_frame(br#"{"data":{},"error":""}"#);
    cut.truncate(20);
    dify.set_answer("invoke/llm", FakeAnswer::Raw(200, cut));
    let report = call(client, tenant, "llm", "x").await;
    assert!(
        error(&report).starts_with("read llm model failed: stream ended inside a frame"),
        "{report}"
    );

    dify.set_answer("invoke/llm", FakeAnswer::Hang);
    let started = Instant::now();
    let report = call(client, tenant, "llm", "x").await;
    assert!(
        error(&report).starts_with("read llm model failed: read dify response timed out"),
        "{report}"
    );
    assert!(started.elapsed() >= Duration::from_millis(READ_TIMEOUT_MS));
    dify.set_answer("invoke/text-embedding", FakeAnswer::Hang);
    let report = call(client, tenant, "embedding", "x").await;
    assert!(
        error(&report)
            .starts_with("invoke text-embedding model failed: read dify response timed out"),
        "{report}"
    );

    dify.clear_answer("invoke/llm");
    dify.clear_answer("invoke/text-embedding");
    let report = call(client, tenant, "llm", "after failures").await;
    assert_eq!(result(&report)["text"], "echo: after failures");
}

/// 50 concurrent tool invokes, each making a streamed LLM call: every one gets its own answer.
async fn concurrency(client: &Client, dify: &FakeDify, tenant: &str) {
    // Each answer takes 300 ms: one after the other they would take 15 s.
    dify.set_delay("invoke/llm", Duration::from_millis(300));
    dify.clear_requests();
    let calls = (0..50).map(|i| {
        let client = client.clone();
        let tenant = tenant.to_owned();
        async move {
            (
                i,
                call(&client, &tenant, "llm", &format!("prompt-{i}")).await,
            )
        }
    });
    let started = Instant::now();
    let reports = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    for (i, report) in reports {
        assert_eq!(result(&report)["text"], format!("echo: prompt-{i}"));
    }
    assert_eq!(dify.requests_to("invoke/llm").len(), 50);
    eprintln!("50 concurrent tool invokes with a streamed LLM backwards call: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    // A slow backwards call does not hold up another session of the same plugin.
    dify.set_delay("invoke/llm", Duration::from_millis(1_500));
    let slow = {
        let client = client.clone();
        let tenant = tenant.to_owned();
        tokio::spawn(async move { call(&client, &tenant, "llm", "slow").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    echo_works(client, tenant).await;
    let echo = started.elapsed();
    assert!(echo < Duration::from_millis(1_000), "echo took {echo:?}");
    let report = slow.await.expect("join");
    assert_eq!(result(&report)["text"], "echo: slow");
    dify.set_delay("invoke/llm", Duration::ZERO);
}

/// The package with `app` removed from its permissions: app calls are denied, others work.
fn package_without_app_permission() -> Vec<u8> {
    let manifest = std::fs::read_to_string(fixture_root().join("variant-latest/manifest.yaml"))
        .expect("manifest");
    let edited = manifest.replace("    app:\n      enabled: true\n", "");
    assert_ne!(
        edited, manifest,
        "the app permission block is in the manifest"
    );
    pack_fixture_with(Variant::Latest, &[("manifest.yaml", edited.as_bytes())])
}

async fn denied(client: &Client, dify: &FakeDify) {
    install(client, OTHER_TENANT, package_without_app_permission()).await;
    let report = call(client, OTHER_TENANT, "app", "hi").await;
    assert_eq!(
        error(&report),
        "permission denied, you need to enable app access in plugin manifest"
    );
    assert!(dify
        .requests_with("invoke/app", "tenant_id", &json!(OTHER_TENANT))
        .is_empty());
    let report = call(client, OTHER_TENANT, "llm", "still allowed").await;
    assert_eq!(result(&report)["text"], "echo: still allowed");
}

/// An agent-strategy plugin (built from the echo fixture's runtime files) whose strategy asks
/// the LLM and then a tool, `rounds` times, feeding each answer into the next call: the shape of
/// Dify's ReAct strategy.
fn agent_package() -> Vec<u8> {
    let manifest = latest_manifest_as(
        "agent",
        "plugins:
  agent_strategies:
    - provider/agent.yaml
",
    );
    let provider = r#"identity:
  author: plugind
  name: agent
  label:
    en_US: Agent
  description:
    en_US: Agent strategies used by plugind tests
  icon: icon.svg
strategies:
  - strategies/loop.yaml
"#;
    let strategy = r#"identity:
  name: loop
  author: plugind
  label:
    en_US: Loop
description:
  en_US: Ask the LLM, call a tool, repeat
parameters:
  - name: query
    type: string
    required: true
    label:
      en_US: Query
  - name: rounds
    type: number
    required: false
    label:
      en_US: Rounds
extra:
  python:
    source: strategies/loop.py
"#;
    let code = r#"import json

from dify_plugin.entities.model.llm import LLMModelConfig
from dify_plugin.entities.model.message import UserPromptMessage
from dify_plugin.entities.tool import ToolInvokeMessage, ToolProviderType
from dify_plugin.interfaces.agent import AgentStrategy


class LoopStrategy(AgentStrategy):
    def _invoke(self, parameters):
        observation = parameters["query"]
        transcript = []
        for _ in range(int(parameters.get("rounds") or 2)):
            chunks = self.session.model.llm.invoke(
                model_config=LLMModelConfig(provider="fake/openai", model="gpt-fake", mode="chat"),
                prompt_messages=[UserPromptMessage(content=observation)],
                stream=True,
            )
            thought = "".join(str(c.delta.message.content) for c in chunks)
            messages = self.session.tool.invoke(ToolProviderType.BUILT_IN, "time", "current_time", {"q": thought})
            observation = " ".join(
                m.message.text for m in messages if m.type == ToolInvokeMessage.MessageType.TEXT
            )
            transcript.append({"thought": thought, "observation": observation})
        yield self.create_text_message(json.dumps(transcript))
"#;
    pack_fixture_with(
        Variant::Latest,
        &[
            ("manifest.yaml", manifest.as_bytes()),
            ("provider/agent.yaml", provider.as_bytes()),
            ("strategies/loop.yaml", strategy.as_bytes()),
            ("strategies/loop.py", code.as_bytes()),
        ],
    )
}

/// The agent strategy loops LLM → tool through `dispatch/agent_strategy/invoke`.
async fn agent_strategy(client: &Client, dify: &FakeDify) {
    install(client, AGENT_TENANT, agent_package()).await;
    // The tool answers with what it was asked, so each round's observation feeds the next.
    dify.set_stream(
        "invoke/tool",
        vec![json!({"type": "text", "message": {"text": "observed"}, "meta": null})],
    );
    let body = json!({
        "user_id": USER,
        "data": {"agent_strategy_provider": "agent", "agent_strategy": "loop",
                 "agent_strategy_params": {"query": "q0", "rounds": 2}}
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        let (status, events) = client
            .dispatch(
                AGENT_TENANT,
                "plugind/agent",
                "agent_strategy/invoke",
                body.clone(),
            )
            .await
            .expect("dispatch");
        if let Some(text) = events
            .first()
            .filter(|e| e["code"] == 0)
            .and_then(|e| e["data"]["message"]["text"].as_str())
        {
            break text.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "agent strategy: HTTP {status} {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let transcript: Value = serde_json::from_str(&text).expect("transcript");
    assert_eq!(
        transcript,
        json!([{"thought": "echo: q0", "observation": "observed"},
               {"thought": "echo: observed", "observation": "observed"}])
    );
    let llm = dify.requests_with("invoke/llm", "tenant_id", &json!(AGENT_TENANT));
    let tool = dify.requests_with("invoke/tool", "tenant_id", &json!(AGENT_TENANT));
    assert_eq!((llm.len(), tool.len()), (2, 2));
    assert_eq!(tool[1]["tool_parameters"], json!({"q": "echo: observed"}));
    assert!(llm.iter().chain(&tool).all(|b| b["user_id"] == USER));
    dify.clear_answer("invoke/tool");
}

/// A model plugin whose LLM tries a storage call while serving `llm/invoke` and answers with
/// what happened.
fn model_package() -> Vec<u8> {
    let manifest = latest_manifest_as(
        "fakellm",
        "plugins:
  models:
    - provider/fakellm.yaml
",
    );
    let provider = r#"provider: fakellm
label:
  en_US: Fake LLM
icon_small:
  en_US: icon.svg
supported_model_types:
  - llm
configurate_methods:
  - predefined-model
models:
  llm:
    predefined:
      - "models/llm/*.yaml"
extra:
  python:
    provider_source: provider/fakellm.py
    model_sources:
      - models/llm/llm.py
"#;
    let model = r#"model: fake-1
label:
  en_US: Fake 1
model_type: llm
model_properties:
  mode: chat
  context_size: 4096
parameter_rules: []
"#;
    let provider_code = r#"from dify_plugin import ModelProvider


class FakeProvider(ModelProvider):
    def validate_provider_credentials(self, credentials):
        pass
"#;
    let model_code = r#"from dify_plugin import LargeLanguageModel
from dify_plugin.core.session_context import get_current_session
from dify_plugin.entities.model.llm import LLMResultChunk, LLMResultChunkDelta
from dify_plugin.entities.model.message import AssistantPromptMessage


class FakeLLM(LargeLanguageModel):
    def _invoke(self, model, credentials, prompt_messages, model_parameters, tools=None, stop=None, stream=True, user=None):
        try:
            get_current_session().storage.set("k", b"v")
            text = "stored"
        except Exception as e:
            text = str(e)
        yield LLMResultChunk(model=model, delta=LLMResultChunkDelta(index=0, message=AssistantPromptMessage(content=text)))

    def get_num_tokens(self, model, credentials, prompt_messages, tools=None):
        return 0

    def validate_credentials(self, model, credentials):
        pass

    @property
    def _invoke_error_mapping(self):
        return {}
"#;
    pack_fixture_with(
        Variant::Latest,
        &[
            ("manifest.yaml", manifest.as_bytes()),
            ("provider/fakellm.yaml", provider.as_bytes()),
            ("provider/fakellm.py", provider_code.as_bytes()),
            ("models/llm/fake.yaml", model.as_bytes()),
            ("models/llm/llm.py", model_code.as_bytes()),
        ],
    )
}

/// A model session may not call back at all, not even storage (its manifest allows it).
async fn model_refused(client: &Client) {
    install(client, MODEL_TENANT, model_package()).await;
    let body = json!({
        "user_id": USER,
        "data": {"provider": "fakellm", "model": "fake-1", "model_type": "llm", "credentials": {},
                 "prompt_messages": [{"role": "user", "content": "hi"}], "model_parameters": {},
                 "stop": [], "tools": [], "stream": true}
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        let (status, events) = client
            .dispatch(MODEL_TENANT, "plugind/fakellm", "llm/invoke", body.clone())
            .await
            .expect("dispatch");
        if let Some(text) = events
            .first()
            .filter(|e| e["code"] == 0)
            .and_then(|e| e["data"]["delta"]["message"]["content"].as_str())
        {
            break text.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "llm/invoke: HTTP {status} {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(text, "you can not invoke dify from model");
}

async fn echo_works(client: &Client, tenant: &str) {
    let body = json!({
        "user_id": USER,
        "data": {"provider": ECHO_PROVIDER, "tool": ECHO_TOOL, "credentials": {},
                 "tool_parameters": {"text": "alive", "mode": "text"}}
    });
    let (status, events) = client
        .dispatch(tenant, ECHO_PLUGIN_ID, "tool/invoke", body)
        .await
        .expect("dispatch");
    assert_eq!(status, 200);
    assert_eq!(events[0]["code"], 0, "{events:?}");
}

/// Every stage against one daemon, whatever its database.
async fn all_stages(client: &Client, dify: &FakeDify) {
    install(client, TENANT, pack_fixture(Variant::Latest)).await;
    happy_path(client, dify, TENANT).await;
    refused(client, dify, TENANT).await;
    quota(client, TENANT).await;
    dify_failures(client, dify, TENANT).await;
    concurrency(client, dify, TENANT).await;
    denied(client, dify).await;
    agent_strategy(client, dify).await;
    model_refused(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backwards_invocation_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let mut daemon = start(dir.path(), DbChoice::Sqlite, &dify, env()).await;
    let client = daemon.client();
    all_stages(&client, &dify).await;

    // Dify unreachable: the same data directory, the daemon pointed at a closed port.
    daemon.stop().await.expect("stop");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let mut extra = env();
    extra.push(("DIFY_INNER_API_URL".into(), dead_url));
    let daemon = start(dir.path(), DbChoice::Sqlite, &dify, extra).await;
    let client = daemon.client();
    let report = call(&client, TENANT, "llm", "x").await;
    assert!(
        error(&report).starts_with("read llm model failed: dify inner api unreachable")
            || error(&report).starts_with("invoke llm model failed: dify inner api unreachable"),
        "{report}"
    );
    // Storage needs no Dify, and the daemon still serves.
    let report = call(&client, TENANT, "storage_get", "big").await;
    assert_eq!(result(&report), &json!({"len": 1000}));
    echo_works(&client, TENANT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backwards_invocation_on_postgres() {
    let database = create_pg_database().expect("create database");
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = start(
        dir.path(),
        DbChoice::Postgres {
            database: database.clone(),
        },
        &dify,
        env(),
    )
    .await;
    let client = daemon.client();
    all_stages(&client, &dify).await;
    drop(daemon);
    let _ = plugind_test_support::drop_pg_database(&database);
}
