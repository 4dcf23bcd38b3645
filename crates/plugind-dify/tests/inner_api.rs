//! The inner-API client against the fake Dify: both answer shapes, Dify's errors, the key, the
//! read limit and settings encryption.

use std::time::Duration;

use plugind_dify::client::EncryptRequest;
use plugind_dify::{DifyError, InnerApi, InnerApiConfig};
use plugind_test_support::{FakeAnswer, FakeDify};
use serde_json::json;

fn client(dify: &FakeDify, key: &str) -> InnerApi {
    InnerApi::new(InnerApiConfig {
        url: format!("{}/", dify.url),
        key: key.to_owned(),
        read_timeout: Duration::from_millis(500),
    })
    .expect("client")
}

#[tokio::test]
async fn struct_and_stream_answers() {
    let dify = FakeDify::start().await;
    let api = client(&dify, &dify.key);
    let body = json!({"tenant_id": "t", "user_id": "u", "type": "system_summary", "text": "abc"});
    let data = api
        .call_json("invoke/summary", &body)
        .await
        .expect("summary");
    assert_eq!(data, json!({"summary": "abc"}));
    assert_eq!(dify.requests_to("invoke/summary")[0].json(), body);

    dify.set_stream("invoke/llm", vec![json!({"n": 1}), json!({"n": 2})]);
    let mut stream = api
        .call_stream("invoke/llm", &json!({"tenant_id": "t"}))
        .await
        .expect("stream");
    assert_eq!(
        stream.next().await.expect("1").expect("ok"),
        json!({"n": 1})
    );
    assert_eq!(
        stream.next().await.expect("2").expect("ok"),
        json!({"n": 2})
    );
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn dify_errors_become_typed_errors() {
    let dify = FakeDify::start().await;
    let api = client(&dify, &dify.key);
    let t = json!({"tenant_id": "t"});

    dify.set_error("invoke/rerank", "boom");
    let err = api.call_json("invoke/rerank", &t).await.expect_err("error");
    assert!(matches!(&err, DifyError::Dify(e) if e == "boom"), "{err}");
    assert_eq!(err.to_string(), "request failed: boom");

    // Dify's generic error JSON (missing tenant_id): neither data nor error.
    let err = api
        .call_json("invoke/rerank", &json!({}))
        .await
        .expect_err("no tenant");
    assert!(matches!(err, DifyError::NoData), "{err}");
    // On a streaming route the status is checked.
    let err = api
        .call_stream("invoke/llm", &json!({}))
        .await
        .err()
        .expect("no tenant");
    assert!(
        matches!(err, DifyError::Status { status: 400, .. }),
        "{err}"
    );

    // A wrong key is a 404 page: not JSON.
    let wrong = client(&dify, "wrong");
    let err = wrong.call_json("invoke/rerank", &t).await.expect_err("404");
    assert!(matches!(err, DifyError::Decode(_)), "{err}");

    dify.set_answer("invoke/moderation", FakeAnswer::Hang);
    let err = api
        .call_json("invoke/moderation", &t)
        .await
        .expect_err("hang");
    assert!(matches!(err, DifyError::Timeout(_)), "{err}");
    dify.set_answer("invoke/tool", FakeAnswer::Hang);
    let mut stream = api.call_stream("invoke/tool", &t).await.expect("headers");
    let err = stream.next().await.expect("item").expect_err("hang");
    assert!(matches!(err, DifyError::Timeout(_)), "{err}");
}

#[tokio::test]
async fn unreachable_dify() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let api = InnerApi::new(InnerApiConfig::new(url, "k")).expect("client");
    let err = api
        .call_json("invoke/summary", &json!({"tenant_id": "t"}))
        .await
        .expect_err("refused");
    assert!(matches!(err, DifyError::Unreachable(_)), "{err}");
}

#[tokio::test]
async fn encrypt_returns_the_inner_data() {
    let dify = FakeDify::start().await;
    let api = client(&dify, &dify.key);
    let request = EncryptRequest {
        tenant_id: "t".into(),
        user_id: String::new(),
        opt: "decrypt".into(),
        namespace: "endpoint".into(),
        identity: "endpoint-1".into(),
        data: json!({"api_key": "secret"}),
        config: json!([{"name": "api_key", "type": "secret-input"}]),
    };
    let out = api.encrypt(&request).await.expect("encrypt");
    assert_eq!(out, json!({"api_key": "secret"}));
    let sent = dify.requests_to("invoke/encrypt")[0].json();
    assert_eq!(sent["namespace"], "endpoint");
    assert_eq!(sent["identity"], "endpoint-1");
    assert_eq!(
        dify.requests_to("invoke/encrypt")[0].header("x-inner-api-key"),
        Some(dify.key.as_str())
    );
}
