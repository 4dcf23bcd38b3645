//! The streaming workload: a synthetic LLM plugin on the real SDK that streams a fixed number of
//! chunks per call (optionally sleeping between them), called through the daemon's
//! `dispatch/llm/invoke` and through the direct driver.

use std::time::Instant;

use anyhow::{bail, Context};
use futures::StreamExt;
use plugind_test_support::{latest_manifest_as, pack_fixture_with, Variant};
use serde_json::{json, Value};

use crate::direct::Streamed;

pub const PLUGIN_ID: &str = "plugind/streamllm";

/// The package: one LLM whose `_invoke` yields `<chunks>` chunks, sleeping `<sleep_ms>` before
/// each, as the user message `"<chunks>:<sleep_ms>"` says.
pub fn package() -> Vec<u8> {
    let manifest = latest_manifest_as(
        "streamllm",
        "plugins:\n  models:\n    - provider/streamllm.yaml\n",
    );
    let provider = r#"provider: streamllm
label:
  en_US: Stream LLM
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
    provider_source: provider/streamllm.py
    model_sources:
      - models/llm/llm.py
"#;
    let model = r#"model: stream-1
label:
  en_US: Stream 1
model_type: llm
model_properties:
  mode: chat
  context_size: 4096
parameter_rules: []
"#;
    let provider_code = r#"from dify_plugin import ModelProvider


class StreamProvider(ModelProvider):
    def validate_provider_credentials(self, credentials):
        pass
"#;
    let model_code = r#"import time

from dify_plugin import LargeLanguageModel
from dify_plugin.entities.model.llm import LLMResultChunk, LLMResultChunkDelta
from dify_plugin.entities.model.message import AssistantPromptMessage


class StreamLLM(LargeLanguageModel):
    def _invoke(self, model, credentials, prompt_messages, model_parameters, tools=None, stop=None, stream=True, user=None):
        chunks, sleep_ms = (int(x) for x in str(prompt_messages[-1].content).split(":"))
        for i in range(chunks):
            if sleep_ms:
                time.sleep(sleep_ms / 1000)
            yield LLMResultChunk(model=model, delta=LLMResultChunkDelta(index=i, message=AssistantPromptMessage(content="token ")))

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
            ("provider/streamllm.yaml", provider.as_bytes()),
            ("provider/streamllm.py", provider_code.as_bytes()),
            ("models/llm/stream.yaml", model.as_bytes()),
            ("models/llm/llm.py", model_code.as_bytes()),
        ],
    )
}

/// Dify's `data` of an `llm/invoke` asking for `chunks` chunks `sleep_ms` apart.
pub fn dify_data(chunks: usize, sleep_ms: u64) -> Value {
    json!({"provider": "streamllm", "model": "stream-1", "model_type": "llm", "credentials": {},
        "prompt_messages": [{"role": "user", "content": format!("{chunks}:{sleep_ms}")}],
        "model_parameters": {}, "stop": [], "tools": [], "stream": true})
}

/// The same request as the daemon writes it for the plugin (`data` with user, type, action).
pub fn plugin_data(chunks: usize, sleep_ms: u64) -> Value {
    let mut data = json!({"user_id": "u", "type": "model", "action": "invoke_llm"});
    if let (Some(out), Value::Object(fields)) = (data.as_object_mut(), dify_data(chunks, sleep_ms))
    {
        out.extend(fields);
    }
    data
}

/// One streamed call through the daemon, read as a client reads it: time to the first body
/// bytes, every event checked for `"code":0`, the number of body reads.
pub struct Call {
    pub streamed: Streamed,
    pub reads: usize,
}

pub async fn through_daemon(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &str,
    expect_chunks: usize,
) -> anyhow::Result<Call> {
    let started = Instant::now();
    let resp = http
        .post(url)
        .header("X-Api-Key", key)
        .header("X-Plugin-ID", PLUGIN_ID)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .context("dispatch")?;
    if resp.status() != 200 {
        bail!("dispatch: HTTP {}", resp.status());
    }
    let mut stream = resp.bytes_stream();
    let mut first_chunk = None;
    let mut text = Vec::with_capacity(expect_chunks * 320);
    let mut reads = 0;
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.context("reading the stream")?;
        first_chunk.get_or_insert_with(|| started.elapsed());
        reads += 1;
        text.extend_from_slice(&bytes);
    }
    let events = count(&text, b"data: ");
    let ok = count(&text, br#"data: {"code":0,"#);
    if events != expect_chunks || ok != events {
        let head = String::from_utf8_lossy(&text[..text.len().min(600)]).into_owned();
        bail!("expected {expect_chunks} successful events, got {events} ({ok} ok): {head}");
    }
    Ok(Call {
        streamed: Streamed {
            first_chunk: first_chunk.unwrap_or_else(|| started.elapsed()),
            chunks: events,
        },
        reads,
    })
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
