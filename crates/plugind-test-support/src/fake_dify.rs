//! A stand-in for Dify's inner API (`/inner/api/...`), the target of backwards invocations.
//!
//! It records every request and answers the way Dify does (plugin-protocol.md §4.4):
//! * a wrong or missing `X-Inner-Api-Key` gets HTTP 404;
//! * the streaming paths (`invoke/tool`, `invoke/llm`, `invoke/llm/structured-output`,
//!   `invoke/tts`, `invoke/app`) get length-prefixed frames (magic `0x0F`, 14-byte header),
//!   each frame carrying one `{"data":…,"error":""}` payload;
//! * everything else gets one JSON body `{"data":…,"error":""}` with HTTP 200.
//!
//! Defaults: `invoke/encrypt` returns the request's `data` unchanged (identity "encryption"),
//! `invoke/tool` streams one text message, others return `{"data":{},"error":""}`. Tests can
//! replace the answer for a path with [`FakeDify::set_json`] / [`FakeDify::set_stream`].

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
}

#[derive(Default)]
struct Shared {
    key: String,
    requests: Mutex<Vec<RecordedRequest>>,
    answers: Mutex<HashMap<String, FakeAnswer>>,
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
        let shared = Arc::new(Shared {
            key: key.clone(),
            ..Shared::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("FakeDify bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("FakeDify local_addr: {e}"));
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

    let key_ok = rec.header(INNER_API_KEY_HEADER) == Some(shared.key.as_str());
    let Some(inner) = rec.path.strip_prefix("/inner/api/") else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if !key_ok {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let inner = inner.trim_end_matches('/').to_owned();
    let answer = lock(&shared.answers)
        .get(&inner)
        .cloned()
        .unwrap_or_else(|| default_answer(&inner, &rec.json()));
    render(answer)
}

fn default_answer(inner: &str, req: &Value) -> FakeAnswer {
    match inner {
        "invoke/encrypt" => FakeAnswer::Json(
            200,
            json!({"data": {"data": req.get("data").cloned().unwrap_or_else(|| json!({}))}, "error": ""}),
        ),
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
            json!({"data": {"url": "http://127.0.0.1:9/files/upload"}, "error": ""}),
        ),
        p if STREAM_PATHS.contains(&p) => {
            FakeAnswer::Stream(vec![json!({"data": {}, "error": ""})])
        }
        _ => FakeAnswer::Json(200, json!({"data": {}, "error": ""})),
    }
}

fn render(answer: FakeAnswer) -> Response {
    match answer {
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
            .json(&json!({}))
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
            .json(&json!({}))
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
    async fn encrypt_is_identity() {
        let dify = FakeDify::start().await;
        let v: Value = http()
            .post(format!("{}/inner/api/invoke/encrypt", dify.url))
            .header(INNER_API_KEY_HEADER, &dify.key)
            .json(&json!({"opt": "encrypt", "namespace": "endpoint", "data": {"k": "v"}}))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(v, json!({"data": {"data": {"k": "v"}}, "error": ""}));
    }

    #[tokio::test]
    async fn stream_paths_use_length_prefixed_frames() {
        let dify = FakeDify::start().await;
        dify.set_stream("invoke/llm", vec![json!({"a": 1}), json!({"b": 2})]);
        let body = http()
            .post(format!("{}/inner/api/invoke/llm", dify.url))
            .header(INNER_API_KEY_HEADER, &dify.key)
            .json(&json!({}))
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
