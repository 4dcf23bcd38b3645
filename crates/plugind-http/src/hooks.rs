//! Public endpoint hooks `HEAD/GET/POST/PUT/DELETE/OPTIONS /e/{hook_id}/*path` (http-api §5):
//! no API key. The incoming request is written out as one HTTP/1.1 message the way upstream
//! does (§5.3), handed to the plugin through [`Services::invoke_hook`], and the plugin's head and
//! body pieces become the response (§5.4): status and headers held back until the first body
//! piece, then the body streamed as it arrives.
//!
//! Deliberate deviations from upstream: an empty `POST`/`PUT` body is framed as
//! `Content-Length: 0` instead of a chunked `0\r\n\r\n` the SDK does not de-chunk; a plugin that
//! sends no status answers 200 (upstream: 100); `Connection`/`Transfer-Encoding` from the plugin
//! are left to the server, which frames the body itself.
//!
//! [`Services::invoke_hook`]: plugind_service::Services::invoke_hook

use std::collections::HashMap;
use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{HeaderName, HeaderValue};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use plugind_entities::DaemonError;
use plugind_service::hooks::HookResponse;

use crate::reply;
use crate::AppState;

/// At most this much of a request body reaches the plugin; the rest is dropped (upstream).
pub const MAX_HOOK_BODY: usize = 10 * 1024 * 1024;

/// Upstream's `User-Agent` when the client sent none (Go's default client name).
const DEFAULT_USER_AGENT: &str = "Go-http-client/1.1";

/// Headers never passed to the plugin: written by the serialiser itself, or dropped by upstream.
const DROPPED: [&str; 13] = [
    "host",
    "user-agent",
    "content-length",
    "transfer-encoding",
    "trailer",
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded",
    "x-original-forwarded-for",
    "x-original-url",
    "x-original-host",
    "dify-hook-id",
    "dify-hook-url",
];

/// `/e/{hook_id}/` and `/e/{hook_id}/{*path}`.
pub async fn hook(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    params: Result<Path<HashMap<String, String>>, axum::extract::rejection::PathRejection>,
    body: Body,
) -> Response {
    let Ok(Path(params)) = params else {
        return reply::bad_request("invalid path");
    };
    let hook_id = params.get("hook_id").map(String::as_str).unwrap_or("");
    let path = format!(
        "/{}",
        params
            .get("path")
            .map(String::as_str)
            .unwrap_or("")
            .trim_start_matches('/')
    );
    let services = &state.services;
    let hook = match services.resolve_hook(hook_id).await {
        Ok(hook) => hook,
        Err((status, err)) => return early_error(status, &err),
    };
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(err) => {
            return reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &DaemonError::internal(err),
            )
        }
    };
    let raw = raw_request(&Incoming {
        method: &method,
        path: &path,
        query: uri.query(),
        headers: &headers,
        hook_id: hook.hook_id(),
        body: &body,
    });
    match services.invoke_hook(hook, &raw).await {
        Ok(answer) => respond(answer),
        Err((status, err)) => early_error(status, &err),
    }
}

/// `/e/{hook_id}` without the trailing part: upstream's router redirects to `/e/{hook_id}/`
/// (GET 301, other methods 307, query kept; http-api §1.2).
pub async fn add_slash(method: Method, uri: Uri) -> Response {
    let status = if method == Method::GET {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    let location = match uri.query() {
        Some(q) => format!("{}/?{q}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => (status, [(axum::http::header::LOCATION, value)]).into_response(),
        Err(_) => reply::route_not_found(),
    }
}

fn early_error(status: u16, err: &DaemonError) -> Response {
    reply::error(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        err,
    )
}

/// The body up to [`MAX_HOOK_BODY`]; what follows is not read.
async fn read_body(body: Body) -> Result<Vec<u8>, String> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("failed to read request body: {e}"))?;
        let room = MAX_HOOK_BODY - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_HOOK_BODY {
            break;
        }
    }
    Ok(out)
}

/// The parts of an incoming request the plugin sees.
struct Incoming<'a> {
    method: &'a Method,
    /// The `*path` value, decoded, with its leading `/`.
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    hook_id: &'a str,
    body: &'a [u8],
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

/// The request as one HTTP/1.1 message (http-api §5.3): request line with the path re-escaped
/// and the query re-encoded (keys sorted); `Host` (the original host), `User-Agent`, the body
/// framing, then every other header sorted by canonical name (forwarding headers dropped,
/// `Dify-Hook-Id`/`Dify-Hook-Url` added); an empty line; the body.
fn raw_request(r: &Incoming<'_>) -> Vec<u8> {
    let host = header(r.headers, "x-original-host")
        .filter(|h| !h.is_empty())
        .or_else(|| header(r.headers, "host"))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(r.body.len() + 512);
    out.extend_from_slice(r.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(escape_path(r.path).as_bytes());
    let query = encode_query(r.query.unwrap_or(""));
    if !query.is_empty() {
        out.push(b'?');
        out.extend_from_slice(query.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut line = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    line(b"Host", host);
    match header(r.headers, "user-agent") {
        Some([]) => {}
        Some(agent) => line(b"User-Agent", agent),
        None => line(b"User-Agent", DEFAULT_USER_AGENT.as_bytes()),
    }
    if !r.body.is_empty() || matches!(*r.method, Method::POST | Method::PUT) {
        line(b"Content-Length", r.body.len().to_string().as_bytes());
    }

    let mut rest: Vec<(String, Vec<u8>)> = r
        .headers
        .iter()
        .filter(|(name, _)| !DROPPED.contains(&name.as_str()))
        .map(|(name, value)| (canonical(name.as_str()), value.as_bytes().to_vec()))
        .collect();
    rest.push(("Dify-Hook-Id".to_owned(), r.hook_id.as_bytes().to_vec()));
    let hook_url = match header(r.headers, "dify-hook-url").filter(|u| !u.is_empty()) {
        Some(url) => url.to_vec(),
        None => {
            let https = header(r.headers, "x-forwarded-proto") == Some(b"https".as_slice());
            let scheme = if https { "https" } else { "http" };
            let mut url = format!("{scheme}://").into_bytes();
            url.extend_from_slice(host);
            url.extend_from_slice(format!("/e/{}{}", r.hook_id, r.path).as_bytes());
            url
        }
    };
    rest.push(("Dify-Hook-Url".to_owned(), hook_url));
    // Stable: the values of one name keep their order.
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in &rest {
        line(name.as_bytes(), value);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(r.body);
    out
}

/// Go's canonical header key: the first letter and each letter after `-` upper case, the rest
/// lower case (`x-foo-bar` → `X-Foo-Bar`).
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Go's path escaping (`url.URL.EscapedPath` without a raw path): unreserved characters and
/// `$&+,/:;=@` stay, every other byte becomes `%XX`.
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query re-encoded from its parsed parameters: keys sorted, each key's values in their
/// order, form escaping (space → `+`), a bare `flag` as `flag=`.
fn encode_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

/// The plugin's answer as the response: its status, the first value of each header, the body
/// streamed piece by piece.
fn respond(answer: HookResponse) -> Response {
    let status = match StatusCode::from_u16(answer.status) {
        Ok(status) if !status.is_informational() => status,
        _ => {
            return reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &DaemonError::internal(format!(
                    "plugin answered an invalid HTTP status {}",
                    answer.status
                )),
            )
        }
    };
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        let framing =
            name == axum::http::header::CONNECTION || name == axum::http::header::TRANSFER_ENCODING;
        if !framing && !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
    let pieces = futures::stream::iter([answer.first])
        .chain(answer.rest)
        .filter(|piece| futures::future::ready(!piece.is_empty()))
        .map(Ok::<_, Infallible>);
    let mut response = Response::new(Body::from_stream(pieces));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: Vec<u8>) -> String {
        String::from_utf8(raw).expect("utf-8")
    }

    #[test]
    fn serialises_like_upstream_s_example() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("localhost:8080"));
        let raw = raw_request(&Incoming {
            method: &Method::GET,
            path: "/test",
            query: Some("test=123"),
            headers: &headers,
            hook_id: "123",
            body: b"test",
        });
        assert_eq!(
            text(raw),
            "GET /test?test=123 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Go-http-client/1.1\r\n\
             Content-Length: 4\r\nDify-Hook-Id: 123\r\nDify-Hook-Url: http://localhost:8080/e/123/test\r\n\
             \r\ntest"
        );
    }

    #[test]
    fn drops_forwarding_headers_sorts_the_rest_and_keeps_the_original_host() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("daemon:5002"));
        headers.insert("x-original-host", HeaderValue::from_static("dify.example"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        headers.insert("x-real-ip", HeaderValue::from_static("1.2.3.4"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert("user-agent", HeaderValue::from_static(""));
        headers.append("x-b", HeaderValue::from_static("2"));
        headers.append("x-b", HeaderValue::from_static("1"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        headers.insert("dify-hook-id", HeaderValue::from_static("forged"));
        let raw = raw_request(&Incoming {
            method: &Method::POST,
            path: "/a b/ü",
            query: Some("z=1&flag&a=x+y&z=0"),
            headers: &headers,
            hook_id: "h1",
            body: b"",
        });
        assert_eq!(
            text(raw),
            "POST /a%20b/%C3%BC?a=x+y&flag=&z=1&z=0 HTTP/1.1\r\nHost: dify.example\r\n\
             Content-Length: 0\r\nAccept: */*\r\nDify-Hook-Id: h1\r\n\
             Dify-Hook-Url: https://dify.example/e/h1/a b/ü\r\nX-B: 2\r\nX-B: 1\r\n\
             X-Forwarded-Proto: https\r\n\r\n"
        );
    }

    #[test]
    fn empty_bodies_of_get_like_methods_have_no_framing() {
        let headers = HeaderMap::new();
        for method in [Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS] {
            let raw = text(raw_request(&Incoming {
                method: &method,
                path: "/",
                query: None,
                headers: &headers,
                hook_id: "h",
                body: b"",
            }));
            assert!(!raw.contains("Content-Length"), "{raw}");
            assert!(
                raw.starts_with(&format!("{method} / HTTP/1.1\r\n")),
                "{raw}"
            );
        }
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical("x-foo-bar"), "X-Foo-Bar");
        assert_eq!(canonical("CONTENT-TYPE"), "Content-Type");
    }
}
