//! YAML → JSON: provider files are decoded straight into `serde_json::Value` (map order kept via
//! `preserve_order`; non-string scalar keys become their text).

use serde_json::Value;

/// Parses YAML text into a JSON value; `None` input (empty document) becomes `null`.
pub(crate) fn to_json(bytes: &[u8]) -> Result<Value, serde_norway::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_norway::from_slice::<Value>(bytes)
}
