//! End-to-end: model polling (`dispatch/model/polling/start|check`, http-api §4.3.6) against a
//! polling LLM on the real SDK: plain-JSON answers, upstream's failures.

use std::path::PathBuf;

use plugind_test_support::{
    latest_manifest_as, pack_fixture_with, Daemon, DaemonOptions, FakeDify, Variant,
};
use serde_json::{json, Value};

const TENANT: &str = "3b241101-e2bb-4255-8caf-4136c566a962";
const PLUGIN_ID: &str = "plugind/pollingllm";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

fn polling_package() -> Vec<u8> {
    let manifest = latest_manifest_as(
        "pollingllm",
        "plugins:\n  models:\n    - provider/pollingllm.yaml\n",
    );
    let provider = r#"provider: pollingllm
label:
  en_US: Polling LLM
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
    provider_source: provider/pollingllm.py
    model_sources:
      - models/llm/llm.py
"#;
    let model = r#"model: slow-1
label:
  en_US: Slow 1
model_type: llm
features:
  - polling
model_properties:
  mode: chat
  context_size: 4096
parameter_rules: []
"#;
    let provider_code = r#"from dify_plugin import ModelProvider


class PollingProvider(ModelProvider):
    def validate_provider_credentials(self, credentials):
        pass
"#;
    let model_code = r#"from dify_plugin import LargeLanguageModel
from dify_plugin.entities.model.llm import LLMPollingResult


class PollingLLM(LargeLanguageModel):
    def _invoke(self, model, credentials, prompt_messages, model_parameters, tools=None, stop=None, stream=True, user=None):
        raise NotImplementedError

    def _start_polling(self, model, credentials, prompt_messages, model_parameters, tools=None, stop=None, stream=False, user=None, *, json_schema=None):
        return LLMPollingResult(status="running", plugin_state={"task_id": "t-1"}, next_check_after_seconds=5)

    def _check_polling(self, model, credentials, plugin_state, user=None):
        return LLMPollingResult(status="failed", error="task " + str(plugin_state.get("task_id")) + " ran out of quota")

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
            ("provider/pollingllm.yaml", provider.as_bytes()),
            ("provider/pollingllm.py", provider_code.as_bytes()),
            ("models/llm/slow.yaml", model.as_bytes()),
            ("models/llm/llm.py", model_code.as_bytes()),
        ],
    )
}

fn base(extra: Value) -> Value {
    let mut data = json!({"provider": "pollingllm", "model": "slow-1", "model_type": "llm",
        "credentials": {}, "model_parameters": {}, "prompt_messages": [{"role": "user", "content": "hi"}],
        "tools": [], "stop": [], "stream": false});
    if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    json!({"user_id": "u-1", "data": data})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_polling_answers_plain_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = Daemon::start(&bin(), DaemonOptions::new(dir.path()), &dify)
        .await
        .expect("daemon starts");
    let client = daemon.client();
    client
        .install_package(TENANT, polling_package())
        .await
        .expect("install");
    let http = reqwest::Client::new();
    let post = |action: &str, body: Value| {
        let request = http
            .post(format!(
                "{}/plugin/{TENANT}/dispatch/{action}",
                daemon.base_url
            ))
            .header("X-Api-Key", &daemon.server_key)
            .header("X-Plugin-ID", PLUGIN_ID)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        async move {
            let resp = request.send().await.expect("dispatch");
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body: Value = resp.json().await.expect("plain JSON, not SSE");
            (status, content_type, body)
        }
    };

    let (status, content_type, body) = post("model/polling/start", base(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(
        body,
        json!({"code": 0, "message": "success", "data": {"status": "running",
            "plugin_state": {"task_id": "t-1"}, "next_check_after_seconds": 5}})
    );

    let (status, _, body) = post(
        "model/polling/check",
        base(json!({"plugin_state": {"task_id": "t-1"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"status": "failed", "error": "task t-1 ran out of quota"})
    );

    // plugin_state must carry at least one key.
    let (status, _, body) = post("model/polling/check", base(json!({"plugin_state": {}}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], -400);

    // The polling routes exist only under the tenant's dispatch group.
    let resp = http
        .post(format!(
            "{}/v2/invoke/dispatch/model/polling/start",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key)
        .body("{}")
        .send()
        .await
        .expect("v2");
    assert_eq!(resp.status(), 404);
}
