//! An HTTP client that talks to the daemon the way Dify's API server does (http-api.md §7).
//!
//! * every call carries `X-Api-Key`; JSON bodies go out with `Content-Type: application/json`;
//! * dispatch calls add `X-Plugin-ID` and read the body as Dify does (§7.4): split on line
//!   breaks, skip blank lines, strip an optional `data:` prefix, parse each line as one JSON
//!   envelope — the HTTP status is returned but not interpreted;
//! * package upload is multipart with a `dify_pkg` file part and a `verify_signature` field.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

/// Thin Dify-like client bound to one daemon.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    key: String,
}

impl Client {
    /// `base_url` like `http://127.0.0.1:5002` (a trailing `/` is fine); `key` is `SERVER_KEY`.
    pub fn new(base_url: &str, key: &str) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .unwrap_or_else(|e| panic!("reqwest client: {e}"));
        Client {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        }
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url` + `path` (a leading `/` on `path` is optional).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }

    /// GET with `X-Api-Key`; `path` may carry a query string. Non-JSON bodies come back as a
    /// JSON string value.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .get(self.url(path))
            .header("X-Api-Key", &self.key)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        read_json(resp).await
    }

    /// POST a JSON body with `X-Api-Key` and `Content-Type: application/json`.
    pub async fn post_json(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.post_raw(path, body.to_string()).await
    }

    /// POST any text as a body labelled `application/json` (to test malformed bodies).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<String>,
    ) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .http
            .post(self.url(path))
            .header("X-Api-Key", &self.key)
            .header("Content-Type", "application/json")
            .body(body.into())
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        read_json(resp).await
    }

    /// `POST /plugin/{tenant}/management/install/upload/package` (multipart `dify_pkg` +
    /// `verify_signature`).
    pub async fn upload_package(
        &self,
        tenant: &str,
        bytes: Vec<u8>,
        verify_signature: bool,
    ) -> anyhow::Result<(u16, Value)> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name("plugin.difypkg")
            .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("dify_pkg", part).text(
            "verify_signature",
            if verify_signature { "true" } else { "false" },
        );
        let path = format!("plugin/{tenant}/management/install/upload/package");
        let resp = self
            .http
            .post(self.url(&path))
            .header("X-Api-Key", &self.key)
            .multipart(form)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        read_json(resp).await
    }

    /// Installs one uploaded package and waits for its task to finish.
    ///
    /// Posts `install/identifiers` with `source: "package"` and one empty meta, then polls
    /// `install/tasks/{id}` until the task status is `success` or `failed` and returns that task
    /// (the envelope's `data`). When the daemon reports `all_installed` with no task, the install
    /// response's `data` is returned instead. Errors on a non-zero envelope code or the timeout.
    pub async fn install_and_wait(
        &self,
        tenant: &str,
        uid: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        let (status, body) = self
            .post_json(
                &format!("plugin/{tenant}/management/install/identifiers"),
                json!({"plugin_unique_identifiers": [uid], "source": "package", "metas": [{}]}),
            )
            .await?;
        let data = envelope_data(status, &body).context("install/identifiers")?;
        let task_id = data
            .get("task_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if task_id.is_empty() {
            if data.get("all_installed").and_then(Value::as_bool) == Some(true) {
                return Ok(data);
            }
            bail!("install/identifiers returned no task id: {body}");
        }
        let mut last: Value;
        loop {
            let (status, body) = self
                .get(&format!(
                    "plugin/{tenant}/management/install/tasks/{task_id}"
                ))
                .await?;
            if let Ok(task) = envelope_data(status, &body) {
                match task.get("status").and_then(Value::as_str) {
                    Some("success") | Some("failed") => return Ok(task),
                    _ => last = task,
                }
            } else {
                last = body;
            }
            if Instant::now() >= deadline {
                bail!(
                    "install task {task_id} did not finish within {timeout:?}; last seen: {last}"
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `POST /plugin/{tenant}/dispatch/{action_path}` with `X-Plugin-ID: plugin_id`; returns the
    /// HTTP status and every envelope of the (SSE) body, parsed like Dify does.
    pub async fn dispatch(
        &self,
        tenant: &str,
        plugin_id: &str,
        action_path: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Vec<Value>)> {
        let path = format!(
            "plugin/{tenant}/dispatch/{}",
            action_path.trim_start_matches('/')
        );
        let resp = self
            .http
            .post(self.url(&path))
            .header("X-Api-Key", &self.key)
            .header("X-Plugin-ID", plugin_id)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .with_context(|| format!("reading body of POST {path}"))?;
        Ok((status, parse_sse_body(&text)?))
    }
}

impl Client {
    /// `POST /v2/invoke/dispatch/{action_path}` (http-api §4.4): the plugin named by its unique
    /// identifier (`X-Plugin-Unique-Identifier`), the tenant given in the body; returns the HTTP
    /// status and every envelope of the (SSE) body.
    pub async fn dispatch_direct(
        &self,
        tenant: &str,
        uid: &str,
        action_path: &str,
        mut body: Value,
    ) -> anyhow::Result<(u16, Vec<Value>)> {
        let path = format!("v2/invoke/dispatch/{}", action_path.trim_start_matches('/'));
        if let Some(fields) = body.as_object_mut() {
            fields.insert("tenant_id".into(), Value::String(tenant.to_owned()));
        }
        let resp = self
            .http
            .post(self.url(&path))
            .header("X-Api-Key", &self.key)
            .header("X-Plugin-Unique-Identifier", uid)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .with_context(|| format!("reading body of POST {path}"))?;
        Ok((status, parse_sse_body(&text)?))
    }
}

/// Extracts `data` from a success envelope (`code == 0`), or errors with the whole body.
pub fn envelope_data(status: u16, body: &Value) -> anyhow::Result<Value> {
    if body.get("code").and_then(Value::as_i64) == Some(0) {
        Ok(body.get("data").cloned().unwrap_or(Value::Null))
    } else {
        Err(anyhow!("HTTP {status}, envelope {body}"))
    }
}

/// Splits a dispatch body into envelopes exactly as Dify's streaming client does: any of `\n`,
/// `\r\n`; blank lines skipped; each line trimmed; a leading `data:` (with or without a space)
/// removed; the rest must be JSON. An unparsable line is an error naming the line.
pub fn parse_sse_body(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let payload = line.strip_prefix("data:").map(str::trim).unwrap_or(line);
        if payload.is_empty() {
            // Upstream writes `data: ` for unencodable values; Dify skips them after stripping.
            continue;
        }
        let v: Value = serde_json::from_str(payload)
            .map_err(|e| anyhow!("unparsable stream line ({e}): {line}"))?;
        out.push(v);
    }
    Ok(out)
}

async fn read_json(resp: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = resp.status().as_u16();
    let text = resp.text().await.context("reading response body")?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Multipart;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use std::sync::{Arc, Mutex};

    #[test]
    fn sse_parsing_follows_dify() {
        let body = "data: {\"code\":0,\"message\":\"success\",\"data\":{\"a\":1}}\n\n\
                    data:{\"code\":0,\"message\":\"success\",\"data\":{\"a\":2}}\r\n\r\n\
                    {\"code\":-500,\"message\":\"x\",\"data\":null}\n\
                    data: \n";
        let v = parse_sse_body(body).expect("parse");
        assert_eq!(v.len(), 3);
        assert_eq!(v[0]["data"]["a"], 1);
        assert_eq!(v[1]["data"]["a"], 2);
        assert_eq!(v[2]["code"], -500);
        assert!(parse_sse_body(": ping\n").is_err());
        assert!(parse_sse_body("").expect("empty").is_empty());
    }

    type Seen = Arc<Mutex<Vec<(String, String)>>>;

    async fn serve(app: axum::Router) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        format!("http://{addr}")
    }

    fn hdr(h: &HeaderMap, n: &str) -> String {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }

    #[tokio::test]
    async fn dispatch_reads_an_sse_stream() {
        let seen: Seen = Arc::default();
        let s2 = seen.clone();
        let app = axum::Router::new().route(
            "/plugin/{tenant}/dispatch/tool/invoke",
            post(move |h: HeaderMap, body: String| {
                let seen = s2.clone();
                async move {
                    seen.lock().expect("lock").extend([
                        ("key".into(), hdr(&h, "x-api-key")),
                        ("plugin".into(), hdr(&h, "x-plugin-id")),
                        ("ct".into(), hdr(&h, "content-type")),
                        ("body".into(), body),
                    ]);
                    let chunks = futures::stream::iter(
                        [
                            "data: {\"code\":0,\"message\":\"success\",\"data\":{\"type\":\"text\",\"message\":{\"text\":\"hi\"},\"meta\":null}}\n\n",
                            "data: {\"code\":0,\"message\":\"success\",\"data\":{\"type\":\"json\",\"message\":{\"json_object\":{}},\"meta\":null}}\n\n",
                        ]
                        .map(|s| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(s))),
                    );
                    (
                        [("content-type", "text/event-stream")],
                        axum::body::Body::from_stream(chunks),
                    )
                        .into_response()
                }
            }),
        );
        let url = serve(app).await;
        let c = Client::new(&url, "k1");
        let (status, events) = c
            .dispatch(
                "t1",
                "plugind/echo",
                "tool/invoke",
                json!({"user_id": "u", "data": {"provider": "echo"}}),
            )
            .await
            .expect("dispatch");
        assert_eq!(status, 200);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["data"]["message"]["text"], "hi");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen[0].1, "k1");
        assert_eq!(seen[1].1, "plugind/echo");
        assert_eq!(seen[2].1, "application/json");
        let body: Value = serde_json::from_str(&seen[3].1).expect("json body");
        assert_eq!(body["data"]["provider"], "echo");
    }

    #[tokio::test]
    async fn upload_and_install_flow_against_a_stub() {
        let polls = Arc::new(Mutex::new(0u32));
        let p2 = polls.clone();
        let app = axum::Router::new()
            .route(
                "/plugin/{tenant}/management/install/upload/package",
                post(|h: HeaderMap, mut mp: Multipart| async move {
                    let mut file_len = 0usize;
                    let mut verify = String::new();
                    let mut file_name = String::new();
                    while let Ok(Some(field)) = mp.next_field().await {
                        match field.name().unwrap_or("") {
                            "dify_pkg" => {
                                file_name = field.file_name().unwrap_or("").to_owned();
                                file_len = field.bytes().await.map(|b| b.len()).unwrap_or(0);
                            }
                            "verify_signature" => verify = field.text().await.unwrap_or_default(),
                            _ => {}
                        }
                    }
                    axum::Json(json!({"code": 0, "message": "success", "data": {
                        "unique_identifier": "plugind/echo:0.0.1@abc",
                        "len": file_len, "verify": verify, "file_name": file_name,
                        "key": hdr(&h, "x-api-key")}}))
                }),
            )
            .route(
                "/plugin/{tenant}/management/install/identifiers",
                post(|body: axum::Json<Value>| async move {
                    assert_eq!(body["source"], "package");
                    assert_eq!(body["metas"], json!([{}]));
                    axum::Json(json!({"code": 0, "message": "success",
                        "data": {"all_installed": false, "task_id": "task-1"}}))
                }),
            )
            .route(
                "/plugin/{tenant}/management/install/tasks/{id}",
                get(move || {
                    let polls = p2.clone();
                    async move {
                        let n = {
                            let mut g = polls.lock().expect("lock");
                            *g += 1;
                            *g
                        };
                        let status = if n < 3 { "running" } else { "success" };
                        axum::Json(json!({"code": 0, "message": "success",
                            "data": {"id": "task-1", "status": status}}))
                    }
                }),
            );
        let url = serve(app).await;
        let c = Client::new(&url, "k2");
        let (status, v) = c
            .upload_package("t1", vec![1, 2, 3, 4], false)
            .await
            .expect("upload");
        assert_eq!(status, 200);
        assert_eq!(v["data"]["len"], 4);
        assert_eq!(v["data"]["verify"], "false");
        assert_eq!(v["data"]["file_name"], "plugin.difypkg");
        assert_eq!(v["data"]["key"], "k2");
        let task = c
            .install_and_wait("t1", "plugind/echo:0.0.1@abc", Duration::from_secs(10))
            .await
            .expect("install");
        assert_eq!(task["status"], "success");
        assert_eq!(*polls.lock().expect("lock"), 3);

        let (status, v) = c.get("nope").await.expect("get");
        assert_eq!(status, 404);
        assert!(v.is_string());
    }
}
