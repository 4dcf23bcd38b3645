use super::ResponseKind as K;

fn ok(kind: K, chunk: &str) -> String {
    match kind.normalise(chunk) {
        Ok(raw) => raw.get().to_owned(),
        Err(e) => panic!("{kind:?} refused {chunk}: {e}"),
    }
}

fn err(kind: K, chunk: &str) -> String {
    match kind.normalise(chunk) {
        Ok(raw) => panic!("{kind:?} accepted {chunk}: {}", raw.get()),
        Err(e) => e,
    }
}

#[test]
fn tool_messages_keep_message_and_meta_verbatim_and_drop_unknown_fields() {
    let chunk = r#"{"type":"text","message":{"text":"h\u00e9 <b>"},"meta":null,"extra":1}"#;
    assert_eq!(
        ok(K::ToolMessages, chunk),
        r#"{"type":"text","message":{"text":"h\u00e9 <b>"},"meta":null}"#
    );
    // Absent message/meta are written as null, as a nil Go map.
    assert_eq!(
        ok(K::ToolMessages, r#"{"type":"log"}"#),
        r#"{"type":"log","message":null,"meta":null}"#
    );
    assert_eq!(
        err(K::ToolMessages, r#"{"type":"nonsense","message":{}}"#),
        "Key: 'ToolResponseChunk.Type' Error:Field validation for 'Type' failed on the \
         'is_valid_tool_response_chunk_type' tag"
    );
    assert!(err(K::ToolMessages, r#"{"message":{}}"#).contains("'required' tag"));
    assert!(
        err(K::ToolMessages, r#"{"type":"text","message":"hi"}"#).contains("expected an object")
    );
    assert!(err(K::ToolMessages, r#"{"type":1}"#).contains("expected a string"));
    assert!(err(K::ToolMessages, "[1]").contains("invalid type"));
    assert!(err(K::DatasourceMessages, r#"{"type":"x"}"#)
        .contains("'is_valid_data_source_response_chunk_type' tag"));
    assert_eq!(
        ok(
            K::AgentMessages,
            r#"{"type":"json","message":{"b":1,"a":2},"meta":{}}"#
        ),
        r#"{"type":"json","message":{"b":1,"a":2},"meta":{}}"#
    );
}

#[test]
fn llm_chunks_are_re_encoded_with_empty_prompt_messages_and_decimal_prices() {
    let chunk = r#"{"model":"gpt","prompt_messages":[{"role":"user","content":"x"}],
        "structured_output":{"a":1},
        "delta":{"index":0,"message":{"role":"assistant","content":"Hel","junk":1},
        "usage":{"prompt_tokens":1,"prompt_unit_price":0.0010,"prompt_price_unit":"0.001",
                 "prompt_price":1e-6,"completion_tokens":2,"completion_unit_price":"2.50",
                 "completion_price_unit":0,"completion_price":null,"total_tokens":3,
                 "currency":"USD","latency":0.5},
        "finish_reason":"stop"}}"#;
    assert_eq!(
        ok(K::LlmChunks, chunk),
        concat!(
            r#"{"model":"gpt","system_fingerprint":"","delta":{"index":0,"#,
            r#""message":{"role":"assistant","content":"Hel","name":"","tool_calls":null,"tool_call_id":""},"#,
            r#""usage":{"prompt_tokens":1,"prompt_unit_price":"0.001","prompt_price_unit":"0.001","#,
            r#""prompt_price":"0.000001","completion_tokens":2,"completion_unit_price":"2.5","#,
            r#""completion_price_unit":"0","completion_price":"0","total_tokens":3,"total_price":"0","#,
            r#""currency":"USD","latency":0.5},"finish_reason":"stop"},"prompt_messages":[]}"#
        )
    );
    // Content parts and tool calls are written with all their fields.
    let parts = r#"{"model":"m","delta":{"index":1,"message":{"role":"assistant",
        "content":[{"type":"text","data":"hi","opaque_body":{"k":1}}],
        "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}}}"#;
    assert_eq!(
        ok(K::LlmChunks, parts),
        concat!(
            r#"{"model":"m","system_fingerprint":"","delta":{"index":1,"message":{"role":"assistant","#,
            r#""content":[{"type":"text","base64_data":"","url":"","data":"hi","encode_format":"","#,
            r#""format":"","mime_type":"","detail":"","filename":"","opaque_body":{"k":1}}],"name":"","#,
            r#""tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}],"#,
            r#""tool_call_id":""},"usage":null,"finish_reason":null},"prompt_messages":[]}"#
        )
    );
}

#[test]
fn llm_chunks_with_wrong_shapes_are_refused() {
    let with = |delta: &str| format!(r#"{{"model":"m","delta":{delta}}}"#);
    for (delta, why) in [
        (
            r#"{"message":{"role":"assistant","content":""}}"#,
            "'Index'",
        ),
        (r#"{"index":0}"#, "'Role'"),
        (
            r#"{"index":0,"message":{"role":"wrong","content":""}}"#,
            "prompt_message_role",
        ),
        (
            r#"{"index":0,"message":{"role":"user"}}"#,
            "content field is required",
        ),
        (
            r#"{"index":0,"message":{"role":"user","content":1}}"#,
            "string or an array",
        ),
        (
            r#"{"index":0,"message":{"role":"user","content":[{"type":"text","data":1}]}}"#,
            "invalid type",
        ),
        (
            r#"{"index":0,"message":{"role":"user","content":[{"type":"gif"}]}}"#,
            "prompt_message_content",
        ),
        (
            r#"{"index":1.5,"message":{"role":"user","content":""}}"#,
            "invalid type",
        ),
        (
            r#"{"index":0,"message":{"role":"user","content":""},"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":1,"currency":"USD"}}"#,
            "'Latency'",
        ),
        (
            r#"{"index":0,"message":{"role":"user","content":""},"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":1,"currency":"USD","latency":1,"prompt_price":"abc"}}"#,
            "decimal",
        ),
    ] {
        let e = err(K::LlmChunks, &with(delta));
        assert!(e.contains(why), "{delta}: {e}");
    }
    assert!(err(K::LlmChunks, r#"{"delta":{}}"#).contains("'Model'"));
    // All-zero usage is accepted.
    ok(
        K::LlmChunks,
        &with(
            r#"{"index":0,"message":{"role":"user","content":""},"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0,"currency":"","latency":0}}"#,
        ),
    );
}

#[test]
fn embeddings_are_checked_without_being_rebuilt() {
    let chunk = r#"{"model":"e","embeddings":[[0.1,-2e-3,1],[]],"usage":{"tokens":2,"total_tokens":2,
        "unit_price":"0.00010","price_unit":1,"total_price":0,"currency":"USD","latency":1.0},"x":1}"#;
    assert_eq!(
        ok(K::TextEmbedding, chunk),
        concat!(
            r#"{"model":"e","embeddings":[[0.1,-2e-3,1],[]],"usage":{"tokens":2,"total_tokens":2,"#,
            r#""unit_price":"0.0001","price_unit":"1","total_price":"0","currency":"USD","latency":1.0}}"#
        )
    );
    let flat = r#"{"model":"e","embeddings":[0.1],"usage":{"tokens":1,"total_tokens":1,"currency":"USD","latency":1}}"#;
    assert!(err(K::TextEmbedding, flat).contains("invalid type"));
    let no_latency = r#"{"model":"e","embeddings":[[0.1]],"usage":{"tokens":1,"total_tokens":1,"currency":"USD"}}"#;
    assert!(err(K::MultimodalEmbedding, no_latency)
        .contains("'MultimodalEmbeddingResult.Usage.Latency'"));
    assert!(
        err(K::TextEmbedding, r#"{"model":"e","embeddings":[["x"]]}"#).contains("invalid type")
    );
}

#[test]
fn rerank_docs_need_index_text_and_score() {
    assert_eq!(
        ok(
            K::Rerank,
            r#"{"model":"r","docs":[{"index":0,"text":"a","score":0.9,"x":1}]}"#
        ),
        r#"{"model":"r","docs":[{"index":0,"text":"a","score":0.9}]}"#
    );
    assert!(err(
        K::Rerank,
        r#"{"model":"r","docs":[{"index":0,"text":"a"}]}"#
    )
    .contains("'Score'"));
    assert!(err(
        K::MultimodalRerank,
        r#"{"model":"r","docs":[{"text":"a","score":1}]}"#
    )
    .contains("'MultimodalRerankResult.Docs[0].Index'"));
    assert!(err(K::Rerank, r#"{"model":"r"}"#).contains("'Docs'"));
}

#[test]
fn empty_optionals_are_omitted() {
    assert_eq!(
        ok(K::Tts, r#"{"result":"52494646","mime_type":"audio/wav"}"#),
        r#"{"result":"52494646","mime_type":"audio/wav"}"#
    );
    assert_eq!(
        ok(K::Tts, r#"{"result":"52494646","mime_type":""}"#),
        r#"{"result":"52494646"}"#
    );
    assert_eq!(
        ok(
            K::OAuthCredentials,
            r#"{"metadata":{},"credentials":{"t":"x"},"expires_at":5}"#
        ),
        r#"{"credentials":{"t":"x"},"expires_at":5}"#
    );
    assert_eq!(
        ok(
            K::OAuthCredentials,
            r#"{"metadata":{"u":1},"credentials":null}"#
        ),
        r#"{"metadata":{"u":1},"credentials":null,"expires_at":0}"#
    );
    assert_eq!(
        ok(
            K::TriggerDispatch,
            r#"{"user_id":"u","events":["e"],"payload":{ },"response":"48"}"#
        ),
        r#"{"user_id":"u","events":["e"],"response":"48"}"#
    );
    assert_eq!(
        ok(
            K::ModelPolling,
            r#"{"status":"running","plugin_state":{"task_id":"t-1"},"next_check_after_seconds":10,"error":"","extra":1}"#
        ),
        r#"{"status":"running","plugin_state":{"task_id":"t-1"},"next_check_after_seconds":10}"#
    );
    assert_eq!(
        ok(
            K::ModelPolling,
            r#"{"status":"succeeded","plugin_state":null,"result":{"text":"done"},"error":null,"max_attempts":null}"#
        ),
        r#"{"status":"succeeded","result":{"text":"done"}}"#
    );
}

#[test]
fn small_results_are_typed() {
    assert_eq!(
        ok(K::ToolCredentialsValid, r#"{"result":true,"x":1}"#),
        r#"{"result":true}"#
    );
    assert_eq!(
        ok(K::Moderation, r#"{"result":null}"#),
        r#"{"result":false}"#
    );
    assert!(err(K::TriggerCredentialsValid, r#"{"result":"yes"}"#).contains("invalid type"));
    assert_eq!(
        ok(K::LlmNumTokens, r#"{"num_tokens":7}"#),
        r#"{"num_tokens":7}"#
    );
    assert!(err(K::TextEmbeddingNumTokens, "{}").contains("'NumTokens'"));
    assert_eq!(
        ok(K::ModelCredentialsValid, r#"{"result":true}"#),
        r#"{"result":true,"credentials":null}"#
    );
    assert!(err(K::TriggerEvent, r#"{"variables":"x"}"#).contains("expected an object"));
    assert_eq!(
        ok(K::TriggerEvent, r#"{"variables":{"a":1}}"#),
        r#"{"variables":{"a":1},"cancelled":false}"#
    );
    assert!(err(K::TtsVoices, r#"{"voices":[{"name":"n"}]}"#).contains("'Value'"));
    assert_eq!(
        ok(
            K::DynamicSelectOptions,
            r#"{"options":[{"value":"v","label":{"en_US":"V","fr":"x"}}]}"#
        ),
        r#"{"options":[{"value":"v","label":{"en_US":"V"},"icon":""}]}"#
    );
    assert!(err(
        K::DynamicSelectOptions,
        r#"{"options":[{"value":"v","label":{}}]}"#
    )
    .contains("'EnUS'"));
    assert_eq!(
        ok(
            K::OnlineDriveFiles,
            r#"{"result":[{"files":[{"id":"1","size":3}],"is_truncated":true}]}"#
        ),
        concat!(
            r#"{"result":[{"bucket":null,"files":[{"id":"1","name":"","size":3,"type":""}],"#,
            r#""is_truncated":true,"next_page_parameters":null}]}"#
        )
    );
    assert!(err(K::OnlineDriveFiles, r#"{"result":null}"#).contains("'Result'"));
    assert!(err(K::ModelPolling, r#"{"status":"done"}"#).contains("'oneof'"));
    assert!(
        err(K::ModelPolling, r#"{"status":"succeeded","result":null}"#)
            .contains("required_for_succeeded")
    );
}
