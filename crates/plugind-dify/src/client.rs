//! [`InnerApi`]: the one client of Dify's inner API.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::frame::Decoder;
use crate::DifyError;

/// Header Dify authenticates the daemon with.
pub const KEY_HEADER: &str = "X-Inner-Api-Key";

/// Settings of the client.
#[derive(Clone)]
pub struct InnerApiConfig {
    /// `DIFY_INNER_API_URL`, e.g. `http://api:5001` (a trailing slash is harmless).
    pub url: String,
    /// `DIFY_INNER_API_KEY`.
    pub key: String,
    /// `DIFY_BACKWARDS_INVOCATION_READ_TIMEOUT`: total time for one answer, from sending the
    /// request to its last byte (upstream: 240 s, counted from the headers).
    pub read_timeout: Duration,
}

impl InnerApiConfig {
    pub fn new(url: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key: key.into(),
            read_timeout: Duration::from_secs(240),
        }
    }
}

/// Cheap to clone (the connection pool is shared). `Debug` leaves the key out.
#[derive(Clone)]
pub struct InnerApi {
    base: String,
    key: String,
    read_timeout: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for InnerApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InnerApi")
            .field("base", &self.base)
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

/// Body of `invoke/encrypt` (the endpoint-settings encryption, plugin-protocol §4.8).
#[derive(Clone, Debug, Serialize)]
pub struct EncryptRequest {
    pub tenant_id: String,
    pub user_id: String,
    /// `encrypt`, `decrypt` or `clear`.
    pub opt: String,
    /// `endpoint`.
    pub namespace: String,
    /// The endpoint id.
    pub identity: String,
    pub data: Value,
    /// The settings schema.
    pub config: Value,
}

impl InnerApi {
    pub fn new(cfg: InnerApiConfig) -> Result<InnerApi, DifyError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_keepalive(Duration::from_secs(120))
            .pool_idle_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| DifyError::Unreachable(e.to_string()))?;
        Ok(InnerApi {
            base: cfg.url.trim_end_matches('/').to_owned(),
            key: cfg.key,
            read_timeout: cfg.read_timeout,
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/inner/api/{}", self.base, path.trim_start_matches('/'))
    }

    async fn send(
        &self,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<reqwest::Response, DifyError> {
        let request = self
            .http
            .post(self.url(path))
            .header(KEY_HEADER, &self.key)
            .json(body)
            .send();
        match tokio::time::timeout_at(deadline, request).await {
            Err(_) => Err(DifyError::Timeout(self.read_timeout)),
            Ok(Err(e)) if e.is_timeout() => Err(DifyError::Timeout(self.read_timeout)),
            Ok(Err(e)) => Err(DifyError::Unreachable(error_chain(&e))),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// A plain-JSON route: `{"data": …, "error": ""}`, decoded whatever the HTTP status (as
    /// upstream does); returns `data`.
    pub async fn call_json(&self, path: &str, body: &Value) -> Result<Value, DifyError> {
        let deadline = Instant::now() + self.read_timeout;
        let resp = self.send(path, body, deadline).await?;
        let bytes = match tokio::time::timeout_at(deadline, resp.bytes()).await {
            Err(_) => return Err(DifyError::Timeout(self.read_timeout)),
            Ok(Err(e)) => return Err(DifyError::Unreachable(error_chain(&e))),
            Ok(Ok(bytes)) => bytes,
        };
        answer_data(&bytes)
    }

    /// A streaming route: the answer is read frame by frame from the returned stream.
    pub async fn call_stream(&self, path: &str, body: &Value) -> Result<DifyStream, DifyError> {
        let deadline = Instant::now() + self.read_timeout;
        let resp = self.send(path, body, deadline).await?;
        let status = resp.status().as_u16();
        if status != 200 {
            let text = tokio::time::timeout_at(deadline, resp.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(DifyError::Status { status, body: text });
        }
        Ok(DifyStream {
            resp,
            decoder: Decoder::default(),
            deadline,
            read_timeout: self.read_timeout,
            done: false,
        })
    }

    /// `invoke/encrypt`: returns the inner `data` object of Dify's `{"data":{"data":{…}}}`.
    pub async fn encrypt(&self, request: &EncryptRequest) -> Result<Value, DifyError> {
        let body = serde_json::to_value(request).map_err(|e| DifyError::Decode(e.to_string()))?;
        let data = self.call_json("invoke/encrypt", &body).await?;
        match data.get("data") {
            Some(inner) if !inner.is_null() => Ok(inner.clone()),
            _ => Err(DifyError::NoData),
        }
    }
}

/// The answer of a streaming route.
pub struct DifyStream {
    resp: reqwest::Response,
    decoder: Decoder,
    deadline: Instant,
    read_timeout: Duration,
    done: bool,
}

impl DifyStream {
    /// The `data` of the next frame; `None` at a clean end. After an error, `None`.
    pub async fn next(&mut self) -> Option<Result<Value, DifyError>> {
        if self.done {
            return None;
        }
        let out = self.next_inner().await;
        if !matches!(out, Some(Ok(_))) {
            self.done = true;
        }
        out
    }

    async fn next_inner(&mut self) -> Option<Result<Value, DifyError>> {
        loop {
            match self.decoder.next_payload() {
                Err(e) => return Some(Err(e.into())),
                Ok(Some(payload)) => return Some(answer_data(&payload)),
                Ok(None) => {}
            }
            let chunk = match tokio::time::timeout_at(self.deadline, self.resp.chunk()).await {
                Err(_) => return Some(Err(DifyError::Timeout(self.read_timeout))),
                Ok(Err(e)) => return Some(Err(DifyError::Unreachable(error_chain(&e)))),
                Ok(Ok(chunk)) => chunk,
            };
            match chunk {
                Some(bytes) => self.decoder.push(&bytes),
                None => return self.decoder.finish().err().map(|e| Err(e.into())),
            }
        }
    }
}

/// Decodes one `{"data","error"}` answer.
fn answer_data(bytes: &[u8]) -> Result<Value, DifyError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        data: Value,
        #[serde(default)]
        error: String,
    }
    let answer: Answer =
        serde_json::from_slice(bytes).map_err(|e| DifyError::Decode(e.to_string()))?;
    if !answer.error.is_empty() {
        return Err(DifyError::Dify(answer.error));
    }
    if answer.data.is_null() {
        return Err(DifyError::NoData);
    }
    Ok(answer.data)
}

/// reqwest's error with its sources (the top level alone says only "error sending request").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_the_key_out() {
        let api =
            InnerApi::new(InnerApiConfig::new("http://dify:5001/", "very-secret")).expect("client");
        let shown = format!("{api:?}");
        assert!(shown.contains("http://dify:5001"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn answers_decode_like_upstream() {
        assert_eq!(
            answer_data(br#"{"data":{"a":1},"error":""}"#).expect("ok"),
            serde_json::json!({"a": 1})
        );
        assert!(matches!(
            answer_data(br#"{"data":null,"error":"boom"}"#),
            Err(DifyError::Dify(e)) if e == "boom"
        ));
        // Dify's generic error JSON has neither key.
        assert!(matches!(
            answer_data(br#"{"message":"x","code":"bad"}"#),
            Err(DifyError::NoData)
        ));
        assert!(matches!(answer_data(b"<html>"), Err(DifyError::Decode(_))));
    }
}
