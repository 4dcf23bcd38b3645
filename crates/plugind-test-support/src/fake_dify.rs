//! A stand-in for Dify's inner API (`/inner/api/...`), the target of backwards invocations.
//!
//! It records every request and answers the way Dify does (plugin-protocol.md §4.4):
//! * a wrong or missing `X-Inner-Api-Key` gets HTTP 404;
//! * the streaming paths (`invoke/tool`, `invoke/llm`, `invoke/llm/structured-output`,
//!   `invoke/tts`, `invoke/app`) get length-prefixed frames (magic `0x0F`, 14-byte header),
//!   each frame carrying one `{"data":…,"error":""}` payload;
//! * everything else gets one JSON body `{"data":…,"error":""}` with HTTP 200.
//!
//! * a body without a non-empty `tenant_id` gets Dify's generic error JSON with HTTP 400.
//!
//! Defaults: `invoke/encrypt` "encrypts" by prefixing each `secret-input` value named in the
//! request's `config` with [`ENCRYPTED_PREFIX`] and decrypts by removing it (other values pass
//! unchanged), so a test can tell stored from decrypted settings,
//! `invoke/tool` streams one text message, `invoke/llm` streams two chunks that echo the last
//! prompt message (so concurrent callers can tell their answers apart), `invoke/text-embedding`
//! returns one 3-float vector per text, `invoke/app` streams two app events,
//! `upload/file/request` returns a signed URL on the fake itself, where a multipart POST gets
//! HTTP 201 and a file description; others return `{"data":{},"error":""}`. Tests can replace
//! the answer for a path with [`FakeDify::set_json`] / [`FakeDify::set_stream`] /
//! [`FakeDify::set_error`] / [`FakeDify::set_answer`] (hangs, broken frames, delays).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Header Dify authenticates the daemon with.
pub const INNER_API_KEY_HEADER: &str = "X-Inner-Api-Key";

/// Paths (relative to `/inner/api/`) that Dify answers with length-prefixed frames.
pub const STREAM_PATHS: [&str; 5] = [
    "invoke/tool",
    "invoke/llm",
    "invoke/llm/structured-output",
    "invoke/tts",
    "invoke/app",
];

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Full path, e.g. `/inner/api/invoke/tool`.
    pub path: String,
    /// Query string without `?` (empty if none).
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A canned answer for one inner-API path.
#[derive(Debug, Clone)]
pub enum FakeAnswer {
    /// One JSON body with this HTTP status.
    Json(u16, Value),
    /// Length-prefixed frames, one per payload (each payload is the whole `{"data","error"}`).
    Stream(Vec<Value>),
    /// Raw bytes with this status (for malformed-answer tests).
    Raw(u16, Vec<u8>),
    /// HTTP 200 headers, then a body that never ends (for read-timeout tests).
    Hang,
    /// The inner answer after a pause.
    Delayed(std::time::Duration, Box<FakeAnswer>),
}

#[derive(Default)]
struct Shared {
    key: String,
    url: String,
    requests: Mutex<Vec<RecordedRequest>>,
    answers: Mutex<HashMap<String, FakeAnswer>>,
    delays: Mutex<HashMap<String, std::time::Duration>>,
}

/// The running fake; the server stops when this is dropped.
pub struct FakeDify {
    /// Base URL to give the daemon as `DIFY_INNER_API_URL`, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The key the daemon must send as `X-Inner-Api-Key` (`DIFY_INNER_API_KEY`).
    pub key: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDify {
    /// Binds 127.0.0.1:0 and serves in a background task of the current Tokio runtime.
    pub async fn start() -> FakeDify {
        let key = format!("inner-{}", uuid::Uuid::new_v4().simple());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("FakeDify bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("FakeDify local_addr: {e}"));
        let shared = Arc::new(Shared {
            key: key.clone(),
            url: format!("http://{addr}"),
            ..Shared::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDify {
            url: format!("http://{addr}"),
            key,
            shared,
            task,
        }
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Requests whose path is `/inner/api/<inner_path>` (e.g. `"invoke/tool"`).
    pub fn requests_to(&self, inner_path: &str) -> Vec<RecordedRequest> {
        let want = format!("/inner/api/{}", inner_path.trim_start_matches('/'));
        self.requests()
            .into_iter()
            .filter(|r| r.path == want)
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Answers `inner_path` with `{"data": data, "error": ""}` (HTTP 200, plain JSON).
    pub fn set_json(&self, inner_path: &str, data: Value) {
        self.set_answer(
            inner_path,
            FakeAnswer::Json(200, json!({"data": data, "error": ""})),
        );
    }

    /// Answers `inner_path` with one length-prefixed frame per item, each `{"data": item, "error": ""}`.
    pub fn set_stream(&self, inner_path: &str, items: Vec<Value>) {
        let frames = items
            .into_iter()
            .map(|d| json!({"data": d, "error": ""}))
            .collect();
        self.set_answer(inner_path, FakeAnswer::Stream(frames));
    }

    /// Answers `inner_path` the way Dify reports a failure: `{"data":null,"error":message}` as
    /// plain JSON (HTTP 200), or as one frame on streaming paths.
    pub fn set_error(&self, inner_path: &str, message: &str) {
        let payload = json!({"data": null, "error": message});
        let answer = if STREAM_PATHS.contains(&inner_path.trim_start_matches('/')) {
            FakeAnswer::Stream(vec![payload])
        } else {
            FakeAnswer::Json(200, payload)
        };
        self.set_answer(inner_path, answer);
    }

    /// Makes every answer on `inner_path` (canned or default) wait `pause` first; zero removes
    /// the delay.
    pub fn set_delay(&self, inner_path: &str, pause: std::time::Duration) {
        let path = inner_path.trim_start_matches('/').to_owned();
        let mut delays = lock(&self.shared.delays);
        if pause.is_zero() {
            delays.remove(&path);
        } else {
            delays.insert(path, pause);
        }
    }

    /// Forgets the canned answer for `inner_path` (back to the default).
    pub fn clear_answer(&self, inner_path: &str) {
        lock(&self.shared.answers).remove(inner_path.trim_start_matches('/'));
    }

    /// Requests to `/inner/api/<inner_path>` whose JSON body has `key == value`.
    pub fn requests_with(&self, inner_path: &str, key: &str, value: &Value) -> Vec<Value> {
        self.requests_to(inner_path)
            .into_iter()
            .map(|r| r.json())
            .filter(|b| b.get(key) == Some(value))
            .collect()
    }

    /// Installs any canned answer for `inner_path`.
    pub fn set_answer(&self, inner_path: &str, answer: FakeAnswer) {
        lock(&self.shared.answers).insert(inner_path.trim_start_matches('/').to_owned(), answer);
    }
}

impl Drop for FakeDify {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Encodes one payload in Dify's length-prefixed framing (magic 0x0F, header length 10).
pub fn length_prefixed_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + payload.len());
    out.push(0x0F);
    out.push(0x00);
    out.extend_from_slice(&10u16.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 6]);
    out.extend_from_slice(payload);
    out
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rec = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    lock(&shared.requests).push(rec.clone());

    if rec.path == UPLOAD_PATH {
        return uploaded_file(&rec);
    }
    let key_ok = rec.header(INNER_API_KEY_HEADER) == Some(shared.key.as_str());
    let Some(inner) = rec.path.strip_prefix("/inner/api/") else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if !key_ok {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let req = rec.json();
    if req
        .get("tenant_id")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Response::builder()
            .status(400)
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"code": "bad_request", "message": "tenant_id is required", "status": 400})
                    .to_string(),
            ))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let inner = inner.trim_end_matches('/').to_owned();
    let answer = lock(&shared.answers)
        .get(&inner)
        .cloned()
        .unwrap_or_else(|| default_answer(&shared, &inner, &req));
    let delay = lock(&shared.delays).get(&inner).copied();
    if let Some(pause) = delay {
        tokio::time::sleep(pause).await;
    }
    render(answer).await
}

/// Where the signed upload URL of `upload/file/request` points (on the fake itself).
pub const UPLOAD_PATH: &str = "/files/upload/for-plugin";

/// The file upload a plugin makes to the signed URL: HTTP 201 and a file description whose
/// `size` is the multipart body's length.
fn uploaded_file(rec: &RecordedRequest) -> Response {
    let signed = rec.query.contains("sign=");
    if rec.method != "POST" || !signed {
        return (StatusCode::FORBIDDEN, "invalid signature").into_response();
    }
    let body = json!({
        "id": "fake-file-1",
        "name": "upload",
        "size": rec.body.len(),
        "extension": "txt",
        "mime_type": "text/plain",
        "type": "document",
        "preview_url": null,
    });
    Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The text of the last prompt message of an LLM request ("" when there is none).
fn last_prompt(req: &Value) -> String {
    let content = req
        .get("prompt_messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("content"));
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn llm_chunk(model: &Value, index: u64, text: &str, finish: Option<&str>) -> Value {
    json!({
        "data": {
            "model": model,
            "prompt_messages": [],
            "system_fingerprint": null,
            "delta": {
                "index": index,
                "message": {"role": "assistant", "content": text, "tool_calls": []},
                "usage": null,
                "finish_reason": finish,
            },
        },
        "error": "",
    })
}

fn default_answer(shared: &Shared, inner: &str, req: &Value) -> FakeAnswer {
    match inner {
        "invoke/llm" => {
            let model = req.get("model").cloned().unwrap_or(Value::Null);
            let prompt = last_prompt(req);
            FakeAnswer::Stream(vec![
                llm_chunk(&model, 0, "echo: ", None),
                llm_chunk(&model, 1, &prompt, Some("stop")),
            ])
        }
        "invoke/text-embedding" => {
            let n = req
                .get("texts")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let embeddings: Vec<Value> = (0..n).map(|i| json!([i as f64, 0.5, 1.0])).collect();
            FakeAnswer::Json(
                200,
                json!({"data": {
                    "model": req.get("model").cloned().unwrap_or(Value::Null),
                    "embeddings": embeddings,
                    "usage": {"tokens": n, "total_tokens": n, "unit_price": "0", "price_unit": "0",
                              "total_price": "0", "currency": "USD", "latency": 0.01},
                }, "error": ""}),
            )
        }
        "invoke/parameter-extractor" | "invoke/question-classifier" => FakeAnswer::Json(
            200,
            json!({"data": {"process_data": {}, "inputs": {"query": req.get("query").cloned().unwrap_or(Value::Null)},
                            "outputs": {"city": "Paris"}}, "error": ""}),
        ),
        "invoke/app" => FakeAnswer::Stream(vec![
            json!({"data": {"event": "message", "answer": "hello "}, "error": ""}),
            json!({"data": {"event": "message_end", "answer": "from app"}, "error": ""}),
        ]),
        "invoke/encrypt" => {
            FakeAnswer::Json(200, json!({"data": {"data": crypt(req)}, "error": ""}))
        }
        "invoke/tool" => FakeAnswer::Stream(vec![json!({
            "data": {"type": "text", "message": {"text": "from fake dify"}, "meta": null},
            "error": ""
        })]),
        "invoke/summary" => FakeAnswer::Json(
            200,
            json!({"data": {"summary": req.get("text").cloned().unwrap_or(Value::Null)}, "error": ""}),
        ),
        "upload/file/request" => FakeAnswer::Json(
            200,
            json!({"data": {"url": format!("{}{UPLOAD_PATH}?timestamp=1&nonce=n&sign=s", shared.url)}, "error": ""}),
        ),
        p if STREAM_PATHS.contains(&p) => {
            FakeAnswer::Stream(vec![json!({"data": {}, "error": ""})])
        }
        _ => FakeAnswer::Json(200, json!({"data": {}, "error": ""})),
    }
}

/// What the fake's `invoke/encrypt` prefixes `secret-input` values with.
pub const ENCRYPTED_PREFIX: &str = "enc:";

/// `data` with the `secret-input` values of `config` prefixed (`opt` `encrypt`) or unprefixed
/// (any other `opt`).
fn crypt(req: &Value) -> Value {
    let mut data = req.get("data").cloned().unwrap_or_else(|| json!({}));
    let encrypt = req.get("opt").and_then(Value::as_str) == Some("encrypt");
    let secrets = req
        .get("config")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("secret-input"))
        .filter_map(|item| item.get("name").and_then(Value::as_str));
    for name in secrets {
        let Some(Value::String(value)) = data.get_mut(name) else {
            continue;
        };
        if encrypt {
            value.insert_str(0, ENCRYPTED_PREFIX);
        } else if let Some(plain) = value.strip_prefix(ENCRYPTED_PREFIX) {
            *value = plain.to_owned();
        }
    }
    data
}

async fn render(answer: FakeAnswer) -> Response {
    let answer = match answer {
        FakeAnswer::Delayed(pause, inner) => {
            tokio::time::sleep(pause).await;
            *inner
        }
        other => other,
    };
    match answer {
        FakeAnswer::Hang => Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .body(Body::from_stream(futures::stream::pending::<
                Result<Bytes, std::io::Error>,
            >()))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        FakeAnswer::Delayed(_, inner) => Box::pin(render(*inner)).await,
        FakeAnswer::Json(status, v) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        FakeAnswer::Stream(frames) => {
            let mut body = Vec::new();
            for f in frames {
                body.extend_from_slice(&length_prefixed_frame(f.to_string().as_bytes()));
            }
            Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .body(Body::from(body))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        FakeAnswer::Raw(status, bytes) => Response::builder()
            .status(status)
            .body(Body::from(bytes))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> reqwest::Client {
        reqwest::Client::new()
    }

    #[tokio::test]
    async fn records_and_answers_struct_paths() {
        let dify = FakeDify::start().await;
        let resp = http()
            .post(format!("{}/inner/api/invoke/summary", dify.url))
            .header(INNER_API_KEY_HEADER, &dify.key)
            .json(&json!({"tenant_id": "t", "text": "abc"}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v, json!({"data": {"summary": "abc"}, "error": ""}));

        dify.set_json("invoke/rerank", json!({"docs": []}));
        let v: Value = http()
            .post(format!("{}/inner/api/invoke/rerank", dify.url))
            .header(INNER_API_KEY_HEADER, &dify.key)
            .json(&json!({"tenant_id": "t"}))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(v["data"], json!({"docs": []}));

        let reqs = dify.requests_to("invoke/summary");
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(reqs[0].json()["text"], "abc");
        assert_eq!(reqs[0].header("x-inner-api-key"), Some(dify.key.as_str()));
        assert_eq!(dify.requests().len(), 2);
    }

    #[tokio::test]
    async fn wrong_key_is_404() {
        let dify = FakeDify::start().await;
        let resp = http()
            .post(format!("{}/inner/api/invoke/encrypt", dify.url))
            .header(INNER_API_KEY_HEADER, "nope")
            .json(&json!({"tenant_id": "t"}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 404);
        let resp = http()
            .post(format!("{}/inner/api/invoke/encrypt", dify.url))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 404);
        assert_eq!(
            dify.requests().len(),
            2,
            "rejected requests are recorded too"
        );
    }

    #[tokio::test]
    async fn encrypt_prefixes_secret_inputs_and_decrypt_removes_the_prefix() {
        let dify = FakeDify::start().await;
        let config =
            json!([{"name": "k", "type": "secret-input"}, {"name": "m", "type": "select"}]);
        let call = |opt: &str, data: Value| {
            http()
                .post(format!("{}/inner/api/invoke/encrypt", dify.url))
                .header(INNER_API_KEY_HEADER, &dify.key)
                .json(
                    &json!({"tenant_id": "t", "opt": opt, "namespace": "endpoint",
                              "data": data, "config": config}),
                )
                .send()
        };
        let v: Value = call("encrypt", json!({"k": "v", "m": "a"}))
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(
            v,
            json!({"data": {"data": {"k": "enc:v", "m": "a"}}, "error": ""})
        );
        let v: Value = call("decrypt", json!({"k": "enc:v", "m": "a"}))
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(
            v,
            json!({"data": {"data": {"k": "v", "m": "a"}}, "error": ""})
        );
    }

    #[tokio::test]
    async fn stream_paths_use_length_prefixed_frames() {
        let dify = FakeDify::start().await;
        dify.set_stream("invoke/llm", vec![json!({"a": 1}), json!({"b": 2})]);
        let body = http()
            .post(format!("{}/inner/api/invoke/llm", dify.url))
            .header(INNER_API_KEY_HEADER, &dify.key)
            .json(&json!({"tenant_id": "t"}))
            .send()
            .await
            .expect("send")
            .bytes()
            .await
            .expect("body");
        let mut rest = &body[..];
        let mut payloads = Vec::new();
        while !rest.is_empty() {
            assert_eq!(rest[0], 0x0F);
            assert_eq!(u16::from_le_bytes([rest[2], rest[3]]), 10);
            let n = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
            let v: Value = serde_json::from_slice(&rest[14..14 + n]).expect("payload");
            payloads.push(v);
            rest = &rest[14 + n..];
        }
        assert_eq!(
            payloads,
            vec![
                json!({"data": {"a": 1}, "error": ""}),
                json!({"data": {"b": 2}, "error": ""})
            ]
        );
    }

    #[tokio::test]
    async fn tenant_id_is_required() {
        let dify = FakeDify::start().await;
        let resp = http()
            .post(format!("{}/inner/api/invoke/llm", dify.url))
            .header(INNER_API_KEY_HEADER, &dify.key)
            .json(&json!({"user_id": "u"}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["message"], "tenant_id is required");
    }

    #[test]
    fn frame_layout_matches_reference_example() {
        let f = length_prefixed_frame(br#"{"data":{},"error":""}"#);
        assert_eq!(
            &f[..14],
            &[0x0F, 0, 0x0A, 0, 0x16, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(f.len(), 14 + 22);
    }
}
