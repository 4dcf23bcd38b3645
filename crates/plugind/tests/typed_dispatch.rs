//! End-to-end: dispatch checks what it relays (http-api §4.3.2–4.3.4). A plugin chunk is decoded
//! as the action's response type and re-encoded (unknown fields dropped); a chunk of the wrong
//! shape ends the stream with upstream's `unmarshal_error`; a request whose `model_type` does not
//! fit the action is refused with HTTP 400 before any plugin is involved.

use std::path::PathBuf;

use plugind_entities::DaemonError;
use plugind_test_support::{
    echo_invoke_body, pack_fixture, Client, Daemon, DaemonOptions, FakeDify, Variant,
    ECHO_PLUGIN_ID,
};
use serde_json::json;

const TENANT: &str = "5c0a7d2e-3b4f-4a1c-8e9d-0f1a2b3c4d5e";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

/// The raw body of a dispatch, exactly as it goes over the wire.
async fn dispatch_text(
    daemon: &Daemon,
    path: &str,
    body: serde_json::Value,
) -> (u16, Option<String>, String) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/plugin/{TENANT}/dispatch/{path}",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key)
        .header("X-Plugin-ID", ECHO_PLUGIN_ID)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("dispatch");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, content_type, resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatch_relays_typed_chunks_and_refuses_wrong_shapes() {
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&bin(), DaemonOptions::new(dir.path()), &dify)
        .await
        .expect("daemon starts");
    let client = Client::new(&daemon.base_url, &daemon.server_key);
    client
        .install_package(TENANT, pack_fixture(Variant::Latest))
        .await
        .expect("echo installs");

    // What the SDK sends passes through re-encoded unchanged.
    let (status, _, body) =
        dispatch_text(&daemon, "tool/invoke", echo_invoke_body("hi <&>", "json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        "data: {\"code\":0,\"message\":\"success\",\"data\":{\"type\":\"json\",\
         \"message\":{\"json_object\":{\"echo\":\"hi <&>\"}},\"meta\":null}}\n\n"
    );

    // A plugin writing its own chunks: unknown fields are dropped, then a message of an unknown
    // type ends the stream with `unmarshal_error` (the tool's later text never arrives).
    let chunks = json!([
        {"type": "text", "message": {"text": "kept"}, "meta": null, "extra": 1, "debug": {"a": 1}},
        {"type": "nonsense", "message": {"text": "dropped"}}
    ]);
    let (status, content_type, body) = dispatch_text(
        &daemon,
        "tool/invoke",
        echo_invoke_body(&chunks.to_string(), "raw"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("text/event-stream"));
    let unmarshal = json!({
        "error_type": "unmarshal_error",
        "message": "unmarshal json failed: Key: 'ToolResponseChunk.Type' Error:Field validation \
                    for 'Type' failed on the 'is_valid_tool_response_chunk_type' tag",
    });
    let expected = format!(
        "data: {}\n\ndata: {}\n\n",
        json!({"code": 0, "message": "success",
               "data": {"type": "text", "message": {"text": "kept"}, "meta": null}}),
        DaemonError::invoke(unmarshal.to_string()).envelope_json(),
    );
    assert_eq!(body, expected);

    // A chunk whose `message` is not an object is refused the same way.
    let chunks = json!([{"type": "text", "message": "flat"}]);
    let (_, _, body) = dispatch_text(
        &daemon,
        "tool/invoke",
        echo_invoke_body(&chunks.to_string(), "raw"),
    )
    .await;
    let envelopes = plugind_test_support::parse_sse_body(&body).expect("sse");
    assert_eq!(envelopes.len(), 1, "{body}");
    assert_eq!(envelopes[0]["code"], -500);
    let outer: serde_json::Value =
        serde_json::from_str(envelopes[0]["message"].as_str().expect("message")).expect("json");
    assert_eq!(outer["error_type"], "PluginInvokeError");
    let inner: serde_json::Value =
        serde_json::from_str(outer["message"].as_str().expect("inner")).expect("json");
    assert_eq!(inner["error_type"], "unmarshal_error");
    assert!(
        inner["message"]
            .as_str()
            .is_some_and(|m| m.contains("expected an object")),
        "{inner}"
    );

    // A request whose model_type does not fit the action: HTTP 400 in upstream's shape.
    let llm = json!({"user_id": "u-1", "data": {"provider": "openai", "model": "gpt",
        "model_type": "tts", "credentials": {}, "prompt_messages": [], "model_parameters": {},
        "tools": null, "stop": null, "stream": true}});
    let (status, content_type, body) = dispatch_text(&daemon, "llm/invoke", llm).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "{content_type:?}"
    );
    assert_eq!(
        body,
        DaemonError::bad_request(
            "Key: 'invoke_llm.Data.model_type' Error:Field validation for 'model_type' failed \
             on the 'eq' tag"
        )
        .envelope_json()
    );
    // Not a model type at all fails on upstream's `model_type` rule first.
    let schema = json!({"data": {"provider": "openai", "model": "gpt", "model_type": "chat",
        "credentials": {}}});
    let (status, _, body) = dispatch_text(&daemon, "model/schema", schema).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("failed on the 'model_type' tag"), "{body}");
}
