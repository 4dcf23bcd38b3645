//! Lenient request decoding (http-api §1.5): JSON bodies and query strings both become a JSON
//! object whose fields the services read with `plugind_service::binding`.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Map, Value};

use crate::reply;

/// Parses a JSON body. An empty body is `{}`; anything that is not JSON is a clear 400.
pub fn json_body(bytes: &Bytes) -> Result<Value, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(bytes)
        .map_err(|err| reply::bad_request(format!("request body is not valid JSON: {err}")))
}

/// Query parameters as a JSON object of strings (the last value of a repeated key wins).
pub fn query_object(query: Option<&str>) -> Value {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let v = query_object(Some(
            "page=1&page_size=256&plugin_unique_identifier=a%2Fb%3A1.0.0%40ab&x=a+b",
        ));
        assert_eq!(v["page"], "1");
        assert_eq!(v["plugin_unique_identifier"], "a/b:1.0.0@ab");
        assert_eq!(v["x"], "a b");
    }
}
