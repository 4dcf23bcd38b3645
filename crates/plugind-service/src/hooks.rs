//! Public endpoint hooks `/e/{hook_id}/…` (http-api §5): the endpoint found by its hook id, the
//! plugin's runtime, the settings decrypted through Dify's inner API, one `invoke_endpoint`
//! session carrying the raw HTTP request, and the plugin's chunks turned back into a response
//! head and a body stream.
//!
//! The HTTP edge serialises the incoming request (§5.3) and writes the answer; this module knows
//! the plugin side: hex on the wire, `{"status","headers","result"}` chunks (§5.4).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use plugind_entities::{DaemonError, ErrorType, PluginUniqueIdentifier};
use plugind_store::EndpointRow;
use serde_json::{json, Value};

use crate::dispatch::{ChunkStream, EarlyError, INVOKE_ENDPOINT, NO_AVAILABLE_NODE};
use crate::endpoints::Group;
use crate::Services;

/// An endpoint resolved from its hook id, enabled, whose plugin runs on this node.
pub struct Hook {
    endpoint: EndpointRow,
    uid: PluginUniqueIdentifier,
}

impl Hook {
    pub fn hook_id(&self) -> &str {
        &self.endpoint.hook_id
    }
}

/// The body after the head: pieces as the plugin sends them. A plugin failure after the head
/// arrives as one last piece holding the error text (upstream appends it to the body).
pub type BodyStream = Pin<Box<dyn Stream<Item = Vec<u8>> + Send>>;

/// The plugin's answer: head and body.
pub struct HookResponse {
    /// The plugin's last `status` (200 when it sent none).
    pub status: u16,
    /// Every header of every chunk before the first body piece, in arrival order (a name may
    /// repeat; upstream keeps the first value of each).
    pub headers: Vec<(String, String)>,
    /// The first body piece (empty when the plugin sent no body).
    pub first: Vec<u8>,
    pub rest: BodyStream,
}

fn hook_error(status: u16, error_type: ErrorType, message: &str) -> EarlyError {
    (status, DaemonError::new(error_type, message))
}

impl Services {
    /// Steps 2–5 of http-api §5.2: endpoint by hook id, the installation of its plugin, the
    /// runtime, `enabled` (in upstream's order: a disabled endpoint whose plugin is not running
    /// answers "no available node").
    pub async fn resolve_hook(&self, hook_id: &str) -> Result<Hook, EarlyError> {
        let endpoint = self
            .inner
            .db
            .get_endpoint_by_hook_id(hook_id)
            .await
            .map_err(|err| {
                tracing::warn!(%hook_id, error = %err, "endpoint lookup failed");
                hook_error(500, ErrorType::InternalServerError, "internal server error")
            })?
            .ok_or_else(|| hook_error(404, ErrorType::BadRequest, "endpoint not found"))?;
        let installation = self
            .inner
            .db
            .get_installation(&endpoint.tenant_id, &endpoint.plugin_id)
            .await
            .map_err(|err| (500, DaemonError::internal(err.to_string())))?
            .ok_or_else(|| {
                hook_error(404, ErrorType::BadRequest, "plugin installation not found")
            })?;
        let uid = PluginUniqueIdentifier::parse(&installation.plugin_unique_identifier).map_err(
            |_| {
                hook_error(
                    400,
                    ErrorType::UniqueIdentifier,
                    "invalid plugin unique identifier",
                )
            },
        )?;
        if self.inner.runtimes.get(&uid).is_none() {
            return Err(hook_error(
                404,
                ErrorType::InternalServerError,
                NO_AVAILABLE_NODE,
            ));
        }
        if !endpoint.enabled {
            return Err(hook_error(404, ErrorType::NotFound, "endpoint not found"));
        }
        Ok(Hook { endpoint, uid })
    }

    /// Steps 7–10 of http-api §5.2: the declaration's endpoint group, the settings decrypted
    /// (only when the schema has a `secret-input`), the `invoke_endpoint` session with
    /// `raw_http_request` (the request's bytes as lowercase hex), and the plugin's chunks up to
    /// the first body piece. One deadline (`PLUGIN_MAX_EXECUTION_TIMEOUT`) covers the whole
    /// exchange.
    pub async fn invoke_hook(
        &self,
        hook: Hook,
        raw_request: &[u8],
    ) -> Result<HookResponse, EarlyError> {
        let not_found = || hook_error(404, ErrorType::PluginNotFound, "plugin not found");
        let decl = self
            .endpoint_declaration(hook.uid.as_str())
            .await
            .map_err(|err| (500, err))?
            .ok_or_else(not_found)?;
        let group = Group::of(&decl).ok_or_else(not_found)?;
        let endpoint = hook.endpoint;
        let settings = self
            .crypt(
                "decrypt",
                &endpoint.tenant_id,
                "",
                &endpoint.id,
                &group,
                endpoint.settings,
            )
            .await
            .map_err(|err| (500, err))?;
        let body = json!({
            "user_id": "",
            "endpoint_id": endpoint.id,
            "data": {
                "raw_http_request": hex::encode(raw_request),
                "settings": settings,
            },
        });
        let chunks = self.dispatch_to(&endpoint.tenant_id, hook.uid, &INVOKE_ENDPOINT, body)?;
        response_of(chunks).await
    }
}

/// An error of the session as text: a plugin error is its inner error JSON (http-api §2.4), any
/// other failure (deadline, dead plugin) its message.
fn error_text(err: DaemonError) -> String {
    err.message
}

/// A checked endpoint chunk as a JSON value (it was re-encoded by the dispatch, so it parses).
fn as_value(chunk: &crate::dispatch::Chunk) -> Value {
    chunk.to_value().unwrap_or(Value::Null)
}

/// One `result` hex-decoded.
fn body_piece(chunk: &Value) -> Option<Result<Vec<u8>, String>> {
    let result = chunk.get("result")?;
    let text = result.as_str().unwrap_or("");
    Some(hex::decode(text).map_err(|e| format!("failed to decode endpoint response body: {e}")))
}

/// Collects the head from the chunks before the first `result` (http-api §5.4): every `status`
/// overwrites, every header is appended; then the rest of the body follows as a stream.
async fn response_of(mut chunks: ChunkStream) -> Result<HookResponse, EarlyError> {
    let mut status = None;
    let mut headers = Vec::new();
    let mut first = Vec::new();
    while let Some(item) = chunks.next().await {
        let chunk = item.map_err(|err| (500, DaemonError::internal(error_text(err))))?;
        let chunk = as_value(&chunk);
        if let Some(s) = chunk.get("status").and_then(Value::as_u64) {
            status = Some(u16::try_from(s).unwrap_or(u16::MAX));
        }
        if let Some(map) = chunk.get("headers").and_then(Value::as_object) {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                headers.push((name.clone(), value));
            }
        }
        if let Some(piece) = body_piece(&chunk) {
            first = piece.map_err(|e| (500, DaemonError::internal(e)))?;
            break;
        }
    }
    let rest = chunks
        .scan(false, |done, item| {
            if *done {
                return futures::future::ready(None);
            }
            let out = match item {
                Ok(chunk) => match body_piece(&as_value(&chunk)) {
                    Some(Ok(piece)) => Some(piece),
                    // Upstream ends the body silently at bad hex.
                    Some(Err(_)) => None,
                    None => Some(Vec::new()),
                },
                Err(err) => {
                    *done = true;
                    Some(error_text(err).into_bytes())
                }
            };
            futures::future::ready(out)
        })
        .filter(|piece| futures::future::ready(!piece.is_empty()));
    Ok(HookResponse {
        status: status.unwrap_or(200),
        headers,
        first,
        rest: Box::pin(rest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(items: Vec<Result<Value, DaemonError>>) -> ChunkStream {
        Box::pin(futures::stream::iter(
            items.into_iter().map(|item| item.map(plugind_runtime::RawJson::from)),
        ))
    }

    async fn body(resp: HookResponse) -> Vec<u8> {
        let mut out = resp.first;
        let rest: Vec<Vec<u8>> = resp.rest.collect().await;
        out.extend(rest.concat());
        out
    }

    #[tokio::test]
    async fn head_then_streamed_pieces() {
        let resp = response_of(chunks(vec![
            Ok(json!({"status": 201, "headers": {"X-A": "1", "Content-Type": "text/plain"}})),
            Ok(json!({"result": hex::encode("ab")})),
            Ok(json!({"nothing": true})),
            Ok(json!({"result": hex::encode("cd")})),
        ]))
        .await
        .unwrap_or_else(|(_, e)| panic!("{e:?}"));
        assert_eq!(resp.status, 201);
        assert_eq!(resp.headers[0], ("X-A".to_owned(), "1".to_owned()));
        assert_eq!(body(resp).await, b"abcd");
    }

    #[tokio::test]
    async fn errors_before_and_after_the_head() {
        let before = response_of(chunks(vec![Err(DaemonError::invoke("{\"x\":1}"))])).await;
        let Err((status, err)) = before else {
            panic!("an error before the body fails the request")
        };
        assert_eq!(
            (status, err.error_type),
            (500, ErrorType::InternalServerError)
        );
        assert_eq!(err.message, "{\"x\":1}");

        let bad_hex = response_of(chunks(vec![Ok(json!({"result": "zz"}))])).await;
        assert!(matches!(bad_hex, Err((500, _))));

        let after = response_of(chunks(vec![
            Ok(json!({"status": 200, "result": hex::encode("a")})),
            Err(DaemonError::invoke("boom")),
            Ok(json!({"result": hex::encode("never")})),
        ]))
        .await
        .unwrap_or_else(|(_, e)| panic!("{e:?}"));
        assert_eq!(body(after).await, b"aboom");

        let empty = response_of(chunks(vec![]))
            .await
            .unwrap_or_else(|(_, e)| panic!("{e:?}"));
        assert_eq!(empty.status, 200, "no status: 200, not upstream's 100");
        assert!(body(empty).await.is_empty());
    }
}
