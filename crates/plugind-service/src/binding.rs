//! Lenient access to JSON request bodies (http-api §1.5): `null`, absence and a wrong type all
//! read as the zero value; only the explicit required-rules reject a request.

use serde_json::Value;

/// A string field, or `""`.
pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An optional string field (`None` for absent, `null` or non-string).
pub fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// An integer field, or 0. Numbers given as strings (query parameters) are accepted.
pub fn int_field(v: &Value, key: &str) -> i64 {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// Paging as upstream validates it: `page >= 1`, `1 <= page_size <= max`.
pub fn paging(v: &Value, max: i64) -> Result<(i64, i64), String> {
    let page = int_field(v, "page");
    let page_size = int_field(v, "page_size");
    let mut errors = Vec::new();
    if page < 1 {
        errors.push("Key: 'Page' Error:Field validation for 'Page' failed on the 'required' tag");
    }
    if page_size < 1 || page_size > max {
        errors
            .push("Key: 'PageSize' Error:Field validation for 'PageSize' failed on the 'max' tag");
    }
    if errors.is_empty() {
        Ok((page, page_size))
    } else {
        Err(errors.join("\n"))
    }
}

/// Upstream's validator text for a failed `required` rule.
pub fn required_error(field: &str) -> String {
    format!("Key: '{field}' Error:Field validation for '{field}' failed on the 'required' tag")
}
