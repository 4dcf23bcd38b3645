//! End-to-end: one fixture plugin per kind on the real SDK (`plugind-test-support/fixtures/<kind>/`),
//! installed over HTTP and driven through every dispatch action of its kind the way Dify's API
//! server calls it. Each event's `data` is compared whole with what upstream sends for it
//! (http-api §4.3.4 with its normalisations, §7.4–7.7; plugin-protocol §3.2), and the management
//! listings Dify reads show the provider.
//!
//! One daemon and one install per fixture: each test owns its daemon, so a fixture's venv is
//! built once per run of this binary.

use std::path::PathBuf;

use base64::Engine as _;
use plugind_test_support::{
    pack_datasource_fixture, pack_kind_fixture, Client, Daemon, DaemonOptions, FakeDify,
    AGENT_PLUGIN_ID, DATASOURCE_PROVIDERS, MODEL_PLUGIN_ID, OAUTH_TOOL_PLUGIN_ID,
    TRIGGER_PLUGIN_ID,
};
use serde_json::{json, Value};

const TENANT: &str = "5a7c9e1b-3d4f-4a6b-8c0d-e1f2a3b4c5d6";

struct Kit {
    daemon: Daemon,
    client: Client,
    /// The installed unique identifiers (for the direct `/v2/invoke/dispatch/*` routes).
    uids: Vec<String>,
    _dify: FakeDify,
    _dir: tempfile::TempDir,
}

/// A daemon with `packages` installed for [`TENANT`] (concurrently).
async fn start_with(packages: Vec<Vec<u8>>) -> Kit {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = Daemon::start(
        &PathBuf::from(env!("CARGO_BIN_EXE_plugind")),
        DaemonOptions::new(dir.path()),
        &dify,
    )
    .await
    .expect("daemon starts");
    let client = daemon.client();
    let installs = packages
        .into_iter()
        .map(|package| client.install_package(TENANT, package));
    let mut uids = Vec::new();
    for result in futures::future::join_all(installs).await {
        uids.push(result.unwrap_or_else(|e| panic!("install: {e:#}\n{}", daemon.log_tail(60))));
    }
    Kit {
        daemon,
        client,
        uids,
        _dify: dify,
        _dir: dir,
    }
}

/// The dispatch body Dify sends: the ids of the call around `data`.
fn body(data: Value) -> Value {
    json!({"user_id": "u-1", "conversation_id": null, "app_id": "app-1", "message_id": null,
           "data": data})
}

/// Mismatches between the daemon's answers and upstream's form, reported together at the end so
/// one run shows every difference.
#[derive(Default)]
struct Diffs(Vec<String>);

impl Diffs {
    /// Records a difference unless `got` and `want` are the same JSON. Numbers compare by value
    /// (`1` and `1.0` are the same JSON number; Dify's parser does not tell them apart).
    fn check(&mut self, what: &str, got: &[Value], want: &[Value]) {
        let (got, want) = (Value::from(got.to_vec()), Value::from(want.to_vec()));
        if numbers_as_f64(got.clone()) != numbers_as_f64(want.clone()) {
            self.0.push(format!(
                "{what}:\n    got:  {}\n    want: {}",
                shortened(got),
                shortened(want)
            ));
        }
    }

    fn finish(self, kit: &Kit) {
        assert!(
            self.0.is_empty(),
            "{} answer(s) differ from upstream's form:\n{}\n--- daemon log ---\n{}",
            self.0.len(),
            self.0.join("\n"),
            kit.daemon.log_tail(40)
        );
    }
}

impl Kit {
    /// `data` of every event of a dispatch, after checking what Dify's stream parser relies on
    /// (§7.4): HTTP 200, each event a success envelope with non-null `data`.
    async fn events(&self, plugin_id: &str, action: &str, body: Value) -> Vec<Value> {
        let (status, envelopes) = self
            .client
            .dispatch(TENANT, plugin_id, action, body)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e:#}"));
        assert_eq!(status, 200, "{action}: {envelopes:?}");
        envelopes
            .into_iter()
            .map(|envelope| {
                assert_eq!(
                    (&envelope["code"], &envelope["message"]),
                    (&json!(0), &json!("success")),
                    "{action}: {envelope}\n{}",
                    self.daemon.log_tail(20)
                );
                assert!(!envelope["data"].is_null(), "{action}: {envelope}");
                envelope["data"].clone()
            })
            .collect()
    }

    /// Dispatches and compares the events' `data` with `want`.
    async fn expect(
        &self,
        diffs: &mut Diffs,
        plugin_id: &str,
        action: &str,
        data: Value,
        want: Vec<Value>,
    ) {
        let got = self.events(plugin_id, action, body(data.clone())).await;
        diffs.check(action, &got, &want);
        // The same action through the direct route (http-api §4.4) answers the same events.
        let uid = self
            .uids
            .iter()
            .find(|uid| uid.starts_with(&format!("{plugin_id}:")))
            .unwrap_or_else(|| panic!("no uid installed for {plugin_id}"));
        let (status, envelopes) = self
            .client
            .dispatch_direct(TENANT, uid, action, body(data))
            .await
            .unwrap_or_else(|e| panic!("v2 {action}: {e:#}"));
        assert_eq!(status, 200, "v2 {action}: {envelopes:?}");
        let direct: Vec<Value> = envelopes.iter().map(|e| e["data"].clone()).collect();
        diffs.check(&format!("/v2/invoke/dispatch/{action}"), &direct, &want);
    }

    /// The plugin's own error of a dispatch: one `-500 PluginInvokeError` event whose message
    /// is the plugin's error as JSON (§7.5); answers that inner object.
    async fn plugin_error(&self, plugin_id: &str, action: &str, data: Value) -> Value {
        let (status, envelopes) = self
            .client
            .dispatch(TENANT, plugin_id, action, body(data))
            .await
            .unwrap_or_else(|e| panic!("{action}: {e:#}"));
        assert_eq!(
            (status, envelopes.len()),
            (200, 1),
            "{action}: {envelopes:?}"
        );
        let envelope = &envelopes[0];
        assert_eq!(envelope["code"], -500, "{action}: {envelope}");
        assert_eq!(envelope["data"], Value::Null, "{action}: {envelope}");
        let outer: Value = serde_json::from_str(envelope["message"].as_str().expect("message"))
            .expect("message is JSON");
        assert_eq!(
            outer["error_type"], "PluginInvokeError",
            "{action}: {outer}"
        );
        serde_json::from_str(outer["message"].as_str().expect("inner message"))
            .expect("inner message is JSON")
    }

    /// `data` of a management GET answered with HTTP 200 and code 0.
    async fn management(&self, path: &str) -> Value {
        let (status, body) = self
            .client
            .get(&format!("plugin/{TENANT}/management/{path}"))
            .await
            .expect("GET");
        assert_eq!((status, &body["code"]), (200, &json!(0)), "{path}: {body}");
        body["data"].clone()
    }

    /// The single provider `plugin_id`/`provider` in the list route and the single route; both
    /// answer the same entry, which is returned.
    async fn listed(&self, list: &str, single: &str, plugin_id: &str, provider: &str) -> Value {
        let items = self
            .management(&format!("{list}?page=1&page_size=256"))
            .await;
        let entry = items
            .as_array()
            .expect("a list")
            .iter()
            .find(|e| e["plugin_id"] == plugin_id && e["provider"] == provider)
            .unwrap_or_else(|| panic!("{list}: no {plugin_id}/{provider} in {items}"))
            .clone();
        assert_eq!(entry["tenant_id"], TENANT);
        let one = self
            .management(&format!(
                "{single}?plugin_id={plugin_id}&provider={provider}"
            ))
            .await;
        assert_eq!(one, entry, "{single}");
        entry
    }
}

fn numbers_as_f64(v: Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Number(n), Value::from),
        Value::Array(items) => items.into_iter().map(numbers_as_f64).collect(),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_f64(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `v` with long strings (base64 blobs) cut, for failure messages.
fn shortened(v: Value) -> Value {
    match v {
        Value::String(s) if s.len() > 80 => Value::String(format!(
            "{}…({} chars)",
            s.chars().take(40).collect::<String>(),
            s.len()
        )),
        Value::Array(items) => items.into_iter().map(shortened).collect(),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, shortened(v))).collect())
        }
        other => other,
    }
}

/// Every localised text in `v` with the four languages upstream knows, the missing ones taken
/// from `en_US`: the SDK fills them so when it serialises its declarations.
fn four_languages(v: Value) -> Value {
    match v {
        Value::Object(mut map) => {
            if let Some(en) = map.get("en_US").cloned() {
                for lang in ["ja_JP", "zh_Hans", "pt_BR"] {
                    map.entry(lang).or_insert_with(|| en.clone());
                }
                return Value::Object(map);
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, four_languages(v)))
                    .collect(),
            )
        }
        Value::Array(items) => items.into_iter().map(four_languages).collect(),
        other => other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// An assistant message of an LLM chunk as upstream re-encodes it (§4.3.4): every field of its
/// `PromptMessage`, `tool_call_id` included; the SDK's `"opaque_body": null` survives (upstream
/// keeps it as raw JSON, and only an absent one is omitted).
fn assistant(content: &str) -> Value {
    json!({"role": "assistant", "content": content, "name": "", "tool_calls": [],
           "tool_call_id": "", "opaque_body": null})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_provider_answers_every_model_action() {
    let kit = start_with(vec![pack_kind_fixture("model")]).await;
    let mut diffs = Diffs::default();
    let id = MODEL_PLUGIN_ID;
    let base = |model: &str, model_type: &str, extra: Value| {
        let mut data = json!({"provider": "allmodels", "model": model, "model_type": model_type,
                              "credentials": {"api_key": "good-key"}});
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        data
    };
    let prompt = json!([{"role": "system", "content": "be brief"},
                        {"role": "user", "content": "say hello world"}]);

    // LLM: streamed word by word; the last chunk carries the usage (prices as decimal strings).
    let usage = json!({"prompt_tokens": 3, "prompt_unit_price": "0.001",
        "prompt_price_unit": "0.001", "prompt_price": "0.000003", "completion_tokens": 3,
        "completion_unit_price": "0.002", "completion_price_unit": "0.001",
        "completion_price": "0.000006", "total_tokens": 6, "total_price": "0.000009",
        "currency": "USD", "latency": 0.5});
    let chunk = |index: usize, content: &str, usage: Value, finish: Value| {
        json!({"model": "echo-llm", "system_fingerprint": "fp-1", "prompt_messages": [],
               "delta": {"index": index, "message": assistant(content), "usage": usage,
                         "finish_reason": finish}})
    };
    kit.expect(
        &mut diffs,
        id,
        "llm/invoke",
        base(
            "echo-llm",
            "llm",
            json!({"model_parameters": {"temperature": 0.2}, "prompt_messages": prompt,
                   "tools": [], "stop": [], "stream": true}),
        ),
        vec![
            chunk(0, "say", Value::Null, Value::Null),
            chunk(1, " hello", Value::Null, Value::Null),
            chunk(2, " world", usage, json!("stop")),
        ],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "llm/num_tokens",
        base(
            "echo-llm",
            "llm",
            json!({"prompt_messages": prompt,
                   "tools": [{"name": "lookup", "description": "d", "parameters": {}}]}),
        ),
        vec![json!({"num_tokens": 6})],
    )
    .await;

    // Embeddings, text and multimodal.
    let embedding_usage = |tokens: u64| {
        json!({"tokens": tokens, "total_tokens": tokens, "unit_price": "0.0001",
               "price_unit": "0.001", "total_price": "0.000003", "currency": "USD",
               "latency": 0.25})
    };
    kit.expect(
        &mut diffs,
        id,
        "text_embedding/invoke",
        base(
            "echo-embedding",
            "text-embedding",
            json!({"texts": ["a b", "ccc"], "input_type": "query"}),
        ),
        vec![
            json!({"model": "echo-embedding", "embeddings": [[-3.0, 0.0], [-3.0, 1.0]],
                    "usage": embedding_usage(3)}),
        ],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "multimodal_embedding/invoke",
        base(
            "echo-embedding",
            "text-embedding",
            json!({"documents": [{"content": "abc", "content_type": "text"},
                                 {"content": "aGk=", "content_type": "image"}],
                   "input_type": "document"}),
        ),
        vec![
            json!({"model": "echo-embedding", "embeddings": [[3.0, 0.0], [4.0, 1.0]],
                    "usage": embedding_usage(2)}),
        ],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "text_embedding/num_tokens",
        base(
            "echo-embedding",
            "text-embedding",
            json!({"texts": ["a b", "ccc"]}),
        ),
        vec![json!({"num_tokens": [2, 1]})],
    )
    .await;

    // Rerank, text and multimodal.
    let ranked = json!({"model": "echo-rerank", "docs": [
        {"index": 1, "text": "a b", "score": 1.0}, {"index": 0, "text": "a x", "score": 0.5}]});
    kit.expect(
        &mut diffs,
        id,
        "rerank/invoke",
        base(
            "echo-rerank",
            "rerank",
            json!({"query": "a b", "docs": ["a x", "a b", "z"], "score_threshold": 0.1,
                   "top_n": 2}),
        ),
        vec![ranked.clone()],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "multimodal_rerank/invoke",
        base(
            "echo-rerank",
            "rerank",
            json!({"query": {"content": "a b", "content_type": "text"},
                   "docs": [{"content": "a x", "content_type": "text"},
                            {"content": "a b", "content_type": "text"},
                            {"content": "z", "content_type": "text"}],
                   "score_threshold": 0.1, "top_n": null}),
        ),
        vec![ranked],
    )
    .await;

    // TTS: one chunk per audio piece, hex, with the model's MIME type; voices by language.
    kit.expect(
        &mut diffs,
        id,
        "tts/invoke",
        base(
            "echo-tts",
            "tts",
            json!({"content_text": "hi there", "voice": "alto", "tenant_id": TENANT}),
        ),
        vec![
            json!({"result": hex(b"alto:hi"), "mime_type": "audio/wav"}),
            json!({"result": hex(b"alto:there"), "mime_type": "audio/wav"}),
        ],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "tts/model/voices",
        base("echo-tts", "tts", json!({"language": "de-DE"})),
        vec![json!({"voices": [{"name": "Bass", "value": "bass"}]})],
    )
    .await;

    // Speech to text (the audio as hex) and moderation.
    kit.expect(
        &mut diffs,
        id,
        "speech2text/invoke",
        base(
            "echo-s2t",
            "speech2text",
            json!({"file": hex(b"hello from audio")}),
        ),
        vec![json!({"result": "hello from audio"})],
    )
    .await;
    for (text, flagged) in [("a forbidden word", true), ("a kind word", false)] {
        kit.expect(
            &mut diffs,
            id,
            "moderation/invoke",
            base("echo-moderation", "moderation", json!({"text": text})),
            vec![json!({"result": flagged})],
        )
        .await;
    }

    // Credentials: the plugin answers them back (Dify merges them); a refusal is the plugin's
    // typed error inside PluginInvokeError.
    let credentials = json!({"api_key": "good-key"});
    kit.expect(
        &mut diffs,
        id,
        "model/validate_provider_credentials",
        json!({"provider": "allmodels", "credentials": credentials}),
        vec![json!({"result": true, "credentials": credentials})],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "model/validate_model_credentials",
        base("echo-embedding", "text-embedding", json!({})),
        vec![json!({"result": true, "credentials": credentials})],
    )
    .await;
    for (action, data) in [
        (
            "model/validate_provider_credentials",
            json!({"provider": "allmodels", "credentials": {"api_key": "bad"}}),
        ),
        (
            "model/validate_model_credentials",
            json!({"provider": "allmodels", "model": "echo-llm", "model_type": "llm",
                   "credentials": {"api_key": "bad"}}),
        ),
    ] {
        let inner = kit.plugin_error(id, action, data).await;
        assert_eq!(
            inner["error_type"], "CredentialsValidateFailedError",
            "{action}"
        );
        assert_eq!(inner["message"], "api_key must be good-key", "{action}");
    }

    // The model provider listing Dify's model page reads, with every model type and model.
    let entry = kit.management("models?page=1&page_size=256").await;
    let entry = entry
        .as_array()
        .and_then(|items| items.iter().find(|e| e["plugin_id"] == id))
        .unwrap_or_else(|| panic!("models: {entry}"))
        .clone();
    assert_eq!(entry["provider"], "allmodels");
    assert_eq!(entry["tenant_id"], TENANT);
    let declaration = &entry["declaration"];
    assert_eq!(
        declaration["supported_model_types"],
        json!([
            "llm",
            "text-embedding",
            "rerank",
            "tts",
            "speech2text",
            "moderation"
        ])
    );
    assert_eq!(
        declaration["provider_credential_schema"]["credential_form_schemas"][0]["variable"],
        "api_key"
    );
    assert!(
        declaration["model_credential_schema"].is_object(),
        "{declaration}"
    );
    let models = declaration["models"].as_array().expect("models");
    let mut names: Vec<&str> = models.iter().filter_map(|m| m["model"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "echo-embedding",
            "echo-llm",
            "echo-moderation",
            "echo-rerank",
            "echo-s2t",
            "echo-tts"
        ]
    );

    // A model's schema is re-encoded as a model declaration: the same JSON as that model in the
    // provider's declaration, with the languages the SDK fills in.
    for (model, model_type) in [("echo-llm", "llm"), ("echo-tts", "tts")] {
        let declared = models
            .iter()
            .find(|m| m["model"] == model)
            .expect("declared model")
            .clone();
        kit.expect(
            &mut diffs,
            id,
            "model/schema",
            base(model, model_type, json!({})),
            vec![json!({"model_schema": four_languages(declared)})],
        )
        .await;
    }
    diffs.finish(&kit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_with_oauth_and_dynamic_select() {
    let kit = start_with(vec![pack_kind_fixture("tool")]).await;
    let mut diffs = Diffs::default();
    let id = OAUTH_TOOL_PLUGIN_ID;
    let redirect = "https://dify.example/oauth/callback";
    let system = json!({"client_id": "cid", "client_secret": "secret"});

    // OAuth: authorization URL, then the callback request (hex of the raw HTTP request) turned
    // into credentials, then a refresh. Upstream omits the empty `metadata` of tool providers.
    kit.expect(
        &mut diffs,
        id,
        "oauth/get_authorization_url",
        json!({"provider": "oauthtool", "redirect_uri": redirect, "system_credentials": system}),
        vec![json!({"authorization_url":
            "https://auth.example/authorize?client_id=cid&redirect_uri=https%3A%2F%2Fdify.example%2Foauth%2Fcallback"})],
    )
    .await;
    let callback = b"GET /oauth/callback?code=abc&state=s-1 HTTP/1.1\r\nHost: dify.example\r\n\r\n";
    kit.expect(
        &mut diffs,
        id,
        "oauth/get_credentials",
        json!({"provider": "oauthtool", "redirect_uri": redirect, "system_credentials": system,
               "raw_http_request": hex(callback)}),
        vec![json!({"credentials": {"access_token": "tok-abc"}, "expires_at": 1767225600})],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "oauth/refresh_credentials",
        json!({"provider": "oauthtool", "redirect_uri": redirect, "system_credentials": system,
               "credentials": {"access_token": "tok-abc"}}),
        vec![json!({"credentials": {"access_token": "tok-abc-r"}, "expires_at": 1767229200})],
    )
    .await;
    let inner = kit
        .plugin_error(
            id,
            "oauth/get_credentials",
            json!({"provider": "oauthtool", "redirect_uri": redirect,
                   "system_credentials": system,
                   "raw_http_request": hex(b"GET /oauth/callback HTTP/1.1\r\nHost: x\r\n\r\n")}),
        )
        .await;
    assert_eq!(inner["error_type"], "ToolProviderOAuthError");
    assert_eq!(inner["message"], "no code in the callback");

    // The dynamic select's options depend on the (OAuth) credentials.
    let option = |value: &str, label: Value| json!({"value": value, "label": label, "icon": ""});
    kit.expect(
        &mut diffs,
        id,
        "dynamic_select/fetch_parameter_options",
        json!({"provider": "oauthtool", "provider_action": "pick", "parameter": "channel",
               "credentials": {"access_token": "tok-abc"}, "credential_type": "oauth2"}),
        vec![json!({"options": [
            option("tok-abc/general", json!({"en_US": "General", "zh_Hans": "General",
                                             "pt_BR": "General", "ja_JP": "General"})),
            option("tok-abc/random", json!({"en_US": "Random", "zh_Hans": "随机",
                                            "pt_BR": "Random", "ja_JP": "Random"})),
        ]})],
    )
    .await;

    // The tool runs with OAuth credentials.
    kit.expect(
        &mut diffs,
        id,
        "tool/invoke",
        json!({"provider": "oauthtool", "tool": "pick", "credentials": {"access_token": "tok-abc"},
               "credential_type": "oauth2", "tool_parameters": {"channel": "tok-abc/general"}}),
        vec![
            json!({"type": "text", "message": {"text": "picked tok-abc/general with oauth2"},
                    "meta": null}),
        ],
    )
    .await;

    // API-key credentials, both ways.
    kit.expect(
        &mut diffs,
        id,
        "tool/validate_credentials",
        json!({"provider": "oauthtool", "credentials": {"api_key": "good-key"}}),
        vec![json!({"result": true})],
    )
    .await;
    let inner = kit
        .plugin_error(
            id,
            "tool/validate_credentials",
            json!({"provider": "oauthtool", "credentials": {"api_key": "bad"}}),
        )
        .await;
    assert_eq!(inner["error_type"], "ToolProviderCredentialValidationError");

    // No released SDK routes `get_tool_runtime_parameters` (plugin-protocol §3.2 row 3): the
    // plugin only ends the session, and Dify sees an empty stream.
    kit.expect(
        &mut diffs,
        id,
        "tool/get_runtime_parameters",
        json!({"provider": "oauthtool", "tool": "pick", "credentials": {}}),
        vec![],
    )
    .await;

    // Dify's tool listings show the provider with its OAuth schema and the dynamic select.
    let entry = kit.listed("tools", "tool", id, "oauthtool").await;
    let declaration = &entry["declaration"];
    assert_eq!(
        declaration["oauth_schema"]["client_schema"][0]["name"],
        "client_id"
    );
    assert_eq!(
        declaration["tools"][0]["parameters"][0]["type"],
        "dynamic-select"
    );
    diffs.finish(&kit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_strategy_streams_text_and_merged_blobs() {
    let kit = start_with(vec![pack_kind_fixture("agent")]).await;
    let mut diffs = Diffs::default();
    let size = 20000usize;
    let file: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    // The strategy sends the file as blob chunks; upstream merges them into one `blob` carrying
    // the final chunk's meta (§4.3.5). Other messages pass unchanged.
    let meta = json!({"mime_type": "application/octet-stream", "file_name": "data.bin"});
    kit.expect(
        &mut diffs,
        AGENT_PLUGIN_ID,
        "agent_strategy/invoke",
        json!({"agent_strategy_provider": "blobagent", "agent_strategy": "chunky",
               "agent_strategy_params": {"query": "hi", "size": size}}),
        vec![
            json!({"type": "text", "message": {"text": "query: hi"}, "meta": null}),
            json!({"type": "blob", "message": {"blob": b64(&file)}, "meta": meta}),
            json!({"type": "blob", "message": {"blob": b64(b"tiny")},
                   "meta": {"mime_type": "text/plain"}}),
            json!({"type": "text", "message": {"text": "done"}, "meta": null}),
        ],
    )
    .await;

    let entry = kit
        .listed(
            "agent_strategies",
            "agent_strategy",
            AGENT_PLUGIN_ID,
            "blobagent",
        )
        .await;
    assert_eq!(
        entry["declaration"]["strategies"][0]["identity"]["name"],
        "chunky"
    );
    diffs.finish(&kit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasources_answer_all_six_actions() {
    let packages = DATASOURCE_PROVIDERS
        .iter()
        .map(|p| pack_datasource_fixture(p))
        .collect();
    let kit = start_with(packages).await;
    let mut diffs = Diffs::default();
    let credentials = json!({"api_key": "good-key"});
    let plugin = |provider: &str| format!("plugind/{provider}");

    for provider in DATASOURCE_PROVIDERS {
        kit.expect(
            &mut diffs,
            &plugin(provider),
            "datasource/validate_credentials",
            json!({"provider": provider, "credentials": credentials}),
            vec![json!({"result": true})],
        )
        .await;
    }
    let inner = kit
        .plugin_error(
            &plugin("website"),
            "datasource/validate_credentials",
            json!({"provider": "website", "credentials": {"api_key": "bad"}}),
        )
        .await;
    assert_eq!(inner["message"], "api_key must be good-key");

    // Website crawl: a progress chunk, then the result.
    let url = "https://example.com/docs";
    kit.expect(
        &mut diffs,
        &plugin("website"),
        "datasource/get_website_crawl",
        json!({"provider": "website", "datasource": "crawl", "credentials": credentials,
               "datasource_parameters": {"url": url}}),
        vec![
            json!({"result": {"status": "processing", "web_info_list": [], "total": 1,
                              "completed": 0}}),
            json!({"result": {"status": "completed", "total": 1, "completed": 1,
                              "web_info_list": [{"source_url": url, "content": format!("# {url}"),
                                                 "title": format!("Title of {url}"),
                                                 "description": format!("About {url}")}]}}),
        ],
    )
    .await;

    // Online documents: the pages, then a page's content as messages.
    let page = |id: &str, name: &str, edited: &str, parent: Value| {
        json!({"page_id": id, "page_name": name, "page_icon": null, "type": "page",
               "last_edited_time": edited, "parent_id": parent})
    };
    kit.expect(
        &mut diffs,
        &plugin("document"),
        "datasource/get_online_document_pages",
        json!({"provider": "document", "datasource": "notes", "credentials": credentials,
               "datasource_parameters": {}}),
        vec![
            json!({"result": [{"workspace_id": "w-1", "workspace_name": "Workspace",
            "workspace_icon": "", "total": 2,
            "pages": [page("p-1", "One", "2025-01-01", Value::Null),
                      page("p-2", "Two", "2025-01-02", json!("p-1"))]}]}),
        ],
    )
    .await;
    kit.expect(
        &mut diffs,
        &plugin("document"),
        "datasource/get_online_document_page_content",
        json!({"provider": "document", "datasource": "notes", "credentials": credentials,
               "page": {"workspace_id": "w-1", "page_id": "p-2", "type": "page"}}),
        vec![
            json!({"type": "text", "message": {"text": "content of w-1/p-2"}, "meta": null}),
            json!({"type": "variable", "message": {"variable_name": "page_type",
                   "variable_value": "page", "stream": false}, "meta": null}),
        ],
    )
    .await;

    // Online drive: a listing, then a file's bytes as a blob message.
    kit.expect(
        &mut diffs,
        &plugin("drive"),
        "datasource/online_drive_browse_files",
        json!({"provider": "drive", "datasource": "drive", "credentials": credentials,
               "request": {"bucket": "b-1", "prefix": "docs/", "max_keys": 10,
                           "next_page_parameters": null}}),
        vec![json!({"result": [{"bucket": "b-1", "is_truncated": true,
            "next_page_parameters": {"page": 2},
            "files": [{"id": "docs/a.txt", "name": "a.txt", "size": 3, "type": "file"},
                      {"id": "docs/sub/", "name": "sub", "size": 0, "type": "folder"}]}]})],
    )
    .await;
    kit.expect(
        &mut diffs,
        &plugin("drive"),
        "datasource/online_drive_download_file",
        json!({"provider": "drive", "datasource": "drive", "credentials": credentials,
               "request": {"bucket": "b-1", "id": "docs/a.txt"}}),
        vec![json!({"type": "blob",
            "message": {"blob": base64::engine::general_purpose::STANDARD.encode("bytes of docs/a.txt")},
            "meta": {"file_name": "docs/a.txt", "mime_type": "text/plain"}})],
    )
    .await;

    // The datasource listings show each provider with its type.
    for (provider, kind) in
        DATASOURCE_PROVIDERS
            .iter()
            .zip(["website_crawl", "online_document", "online_drive"])
    {
        let entry = kit
            .listed("datasources", "datasource", &plugin(provider), provider)
            .await;
        assert_eq!(entry["declaration"]["provider_type"], kind, "{provider}");
    }
    diffs.finish(&kit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_answers_all_six_actions() {
    let kit = start_with(vec![pack_kind_fixture("trigger")]).await;
    let mut diffs = Diffs::default();
    let id = TRIGGER_PLUGIN_ID;
    let credentials = json!({"api_key": "good-key"});
    let endpoint = "https://dify.example/triggers/hook-1";
    let subscription = json!({"expires_at": 1767225600, "endpoint": endpoint,
        "parameters": {"events": "ping"}, "properties": {"external_id": "ext-1"}});
    let webhook_body = br#"{"user":"gh-7","event":"ping","message":"hello"}"#;
    let mut webhook = format!(
        "POST /triggers/hook-1 HTTP/1.1\r\nHost: dify.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        webhook_body.len()
    )
    .into_bytes();
    webhook.extend_from_slice(webhook_body);
    let common = |extra: Value| {
        let mut data = json!({"provider": "webhooks", "credentials": credentials,
                              "credential_type": "api-key"});
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        data
    };

    // Subscription life: subscribe, refresh, unsubscribe.
    kit.expect(
        &mut diffs,
        id,
        "trigger/subscribe",
        common(json!({"endpoint": endpoint, "parameters": {"events": "ping"}})),
        vec![
            json!({"subscription": {"expires_at": 1767225600, "endpoint": endpoint,
            "parameters": {"events": "ping"},
            "properties": {"external_id": "ext-1", "credential_type": "api-key"}}}),
        ],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "trigger/refresh",
        common(json!({"subscription": subscription})),
        vec![
            json!({"subscription": {"expires_at": 1767229200, "endpoint": endpoint,
            "parameters": {"events": "ping"}, "properties": {"external_id": "ext-1"}}}),
        ],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "trigger/unsubscribe",
        common(json!({"subscription": subscription})),
        vec![json!({"subscription": {"success": true, "message": "removed ext-1"}})],
    )
    .await;

    // Credentials, both ways.
    kit.expect(
        &mut diffs,
        id,
        "trigger/validate_credentials",
        json!({"provider": "webhooks", "credentials": credentials}),
        vec![json!({"result": true})],
    )
    .await;
    let inner = kit
        .plugin_error(
            id,
            "trigger/validate_credentials",
            json!({"provider": "webhooks", "credentials": {"api_key": "bad"}}),
        )
        .await;
    assert_eq!(
        inner["error_type"],
        "TriggerProviderCredentialValidationError"
    );

    // A webhook arrives: Dify sends no user id; the plugin names the user and the events and
    // answers the HTTP response for the caller (hex).
    let (status, envelopes) = kit
        .client
        .dispatch(
            TENANT,
            id,
            "trigger/dispatch_event",
            json!({"data": common(json!({"subscription": subscription,
                                          "raw_http_request": hex(&webhook)}))}),
        )
        .await
        .expect("dispatch_event");
    assert_eq!((status, envelopes.len()), (200, 1), "{envelopes:?}");
    let dispatched = &envelopes[0]["data"];
    let response = "HTTP/1.1 202 \r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"ok\": true}";
    assert_eq!(
        String::from_utf8(unhex(dispatched["response"].as_str().expect("hex"))).expect("utf-8"),
        response
    );
    diffs.check(
        "trigger/dispatch_event",
        std::slice::from_ref(dispatched),
        &[
            json!({"user_id": "gh-7", "events": ["ping"], "response": hex(response.as_bytes()),
                 "payload": {"user": "gh-7", "event": "ping", "message": "hello"}}),
        ],
    );

    // The event turns the webhook into variables; an ignored event is `cancelled`.
    let event = |parameters: Value, payload: Value| {
        common(json!({"event": "ping", "raw_http_request": hex(&webhook),
                      "subscription": subscription, "parameters": parameters,
                      "payload": payload}))
    };
    kit.expect(
        &mut diffs,
        id,
        "trigger/invoke_event",
        event(json!({"prefix": "> "}), json!({"message": "hello"})),
        vec![
            json!({"variables": {"message": "> hello", "path": "/triggers/hook-1"},
                    "cancelled": false}),
        ],
    )
    .await;
    kit.expect(
        &mut diffs,
        id,
        "trigger/invoke_event",
        event(json!({}), json!({"ignore": true})),
        vec![json!({"variables": {}, "cancelled": true})],
    )
    .await;

    let entry = kit.listed("triggers", "trigger", id, "webhooks").await;
    let declaration = &entry["declaration"];
    assert_eq!(declaration["events"][0]["identity"]["name"], "ping");
    assert!(
        declaration["subscription_constructor"].is_object(),
        "{declaration}"
    );
    diffs.finish(&kit);
}
