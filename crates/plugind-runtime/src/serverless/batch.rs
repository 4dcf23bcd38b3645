//! Text-embedding batching (plugin-protocol §6.5): `invoke_text_embedding` and
//! `get_text_embedding_num_tokens` requests too large for one serverless request are split into
//! batches of texts that fit, sent one after the other with the same session id, and their
//! results merged into the one chunk the caller expects. Pure functions; the exchange is in
//! `invoke`.

use serde_json::{Map, Value};

/// Actions that may be split.
pub(crate) fn splittable(action: &str) -> bool {
    matches!(
        action,
        "invoke_text_embedding" | "get_text_embedding_num_tokens"
    )
}

fn too_large(action: &str, bytes: usize, max: usize, item: Option<usize>) -> String {
    let mut text = format!(
        "ServerlessPayloadTooLarge: action={action} payload_bytes={bytes} max_request_bytes={max}"
    );
    if let Some(i) = item {
        text.push_str(&format!(" item_index={i}"));
    }
    text
}

/// The request body as sent (compact JSON, no trailing newline).
pub(crate) fn body(message: &Value) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_default()
}

/// Splits `message` (the whole in-stream message) into bodies of at most `max` bytes, each with
/// a run of the texts in order; also returns how many texts each holds. A request that fits is
/// one batch.
pub(crate) fn split(
    message: &Value,
    action: &str,
    max: usize,
) -> Result<Vec<(Vec<u8>, usize)>, String> {
    let whole = body(message);
    let texts = match message.pointer("/data/texts") {
        Some(Value::Array(texts)) if whole.len() > max && splittable(action) => texts.clone(),
        _ if whole.len() > max => return Err(too_large(action, whole.len(), max, None)),
        _ => return Ok(vec![(whole, 0)]),
    };
    let mut envelope = message.clone();
    envelope["data"]["texts"] = Value::Array(Vec::new());
    let base = body(&envelope).len();
    if base > max {
        return Err(too_large(action, base, max, None));
    }
    let with = |batch: &[Value]| {
        let mut m = envelope.clone();
        m["data"]["texts"] = Value::Array(batch.to_vec());
        body(&m)
    };
    let mut batches = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut size = base;
    for (i, text) in texts.into_iter().enumerate() {
        let len = serde_json::to_vec(&text).map_or(0, |b| b.len());
        let alone = base + len;
        if alone > max {
            return Err(too_large(action, alone, max, Some(i)));
        }
        let grown = size + len + usize::from(!current.is_empty());
        if grown > max {
            batches.push((with(&current), current.len()));
            current.clear();
            size = base + len;
        } else {
            size = grown;
        }
        current.push(text);
    }
    if !current.is_empty() || batches.is_empty() {
        batches.push((with(&current), current.len()));
    }
    Ok(batches)
}

/// Why merging failed.
fn mismatch(
    action: &str,
    batch: usize,
    expected: usize,
    actual: usize,
    responses: usize,
    reason: Option<&str>,
) -> String {
    let mut text = format!(
        "ServerlessBatchResultMismatch: action={action} batch_index={batch} expected_items={expected} actual_items={actual} response_count={responses}"
    );
    if let Some(r) = reason {
        text.push_str(&format!(" reason={r}"));
    }
    text
}

/// Sums two JSON numbers (or decimal strings, as Dify sends prices), keeping the kind.
fn add(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Value::from(x.saturating_add(y)),
            _ => Value::from(x.as_f64().unwrap_or(0.0) + y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) => {
            let sum = x.parse::<f64>().unwrap_or(0.0) + y.parse::<f64>().unwrap_or(0.0);
            Value::String(sum.to_string())
        }
        (Value::Null, other) | (other, Value::Null) => other.clone(),
        (x, _) => x.clone(),
    }
}

/// Merges the chunks of every batch (`results[i]` = the chunks of batch `i`, which held
/// `counts[i]` texts) into one chunk.
pub(crate) fn merge(
    action: &str,
    counts: &[usize],
    results: &[Vec<Value>],
) -> Result<Value, String> {
    let embedding = action == "invoke_text_embedding";
    let key = if embedding {
        "embeddings"
    } else {
        "num_tokens"
    };
    let mut merged: Option<Map<String, Value>> = None;
    let mut items = Vec::new();
    for (i, (chunks, &expected)) in results.iter().zip(counts).enumerate() {
        let [chunk] = chunks.as_slice() else {
            return Err(mismatch(
                action,
                i,
                expected,
                0,
                chunks.len(),
                Some("response_count"),
            ));
        };
        let got = chunk
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if got.len() != expected {
            let reason = if embedding {
                "embedding_count"
            } else {
                "token_count"
            };
            return Err(mismatch(action, i, expected, got.len(), 1, Some(reason)));
        }
        items.extend(got);
        let Some(obj) = chunk.as_object() else {
            return Err(mismatch(
                action,
                i,
                expected,
                expected,
                1,
                Some("response_count"),
            ));
        };
        let Some(acc) = merged.as_mut() else {
            if embedding && !obj.get("usage").is_some_and(Value::is_object) {
                return Err(mismatch(
                    action,
                    i,
                    expected,
                    expected,
                    1,
                    Some("missing_usage_field"),
                ));
            }
            merged = Some(obj.clone());
            continue;
        };
        if !embedding {
            continue;
        }
        if acc.get("model") != obj.get("model") {
            return Err(mismatch(action, i, expected, expected, 1, Some("model")));
        }
        let (Some(Value::Object(total)), Some(Value::Object(usage))) =
            (acc.get_mut("usage"), obj.get("usage"))
        else {
            return Err(mismatch(
                action,
                i,
                expected,
                expected,
                1,
                Some("missing_usage_field"),
            ));
        };
        for same in ["unit_price", "price_unit", "currency"] {
            if total.get(same) != usage.get(same) {
                return Err(mismatch(action, i, expected, expected, 1, Some(same)));
            }
        }
        for summed in ["tokens", "total_tokens", "latency", "total_price"] {
            let sum = add(
                total.get(summed).unwrap_or(&Value::Null),
                usage.get(summed).unwrap_or(&Value::Null),
            );
            total.insert(summed.to_owned(), sum);
        }
    }
    let expected: usize = counts.iter().sum();
    if items.len() != expected {
        let reason = if embedding {
            "final_embedding_count"
        } else {
            "final_token_count"
        };
        return Err(mismatch(
            action,
            counts.len(),
            expected,
            items.len(),
            results.len(),
            Some(reason),
        ));
    }
    let mut out = merged.unwrap_or_default();
    out.insert(key.to_owned(), Value::Array(items));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(texts: &[&str]) -> Value {
        json!({"session_id":"s","event":"request","data":{"type":"model","action":"invoke_text_embedding","texts":texts}})
    }

    #[test]
    fn small_requests_are_not_split() {
        let m = message(&["a", "b"]);
        let batches = split(&m, "invoke_text_embedding", 10_000).expect("fits");
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].0, body(&m));
    }

    #[test]
    fn texts_are_packed_in_order_into_batches_that_fit() {
        let texts: Vec<String> = (0..10)
            .map(|i| format!("text-{i}-{}", "x".repeat(20)))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let m = message(&refs);
        let base = {
            let mut e = m.clone();
            e["data"]["texts"] = json!([]);
            body(&e).len()
        };
        let max = base + 3 * 31 + 2; // room for three texts of 29 bytes + quotes, two commas
        let batches = split(&m, "invoke_text_embedding", max).expect("split");
        let counts: Vec<usize> = batches.iter().map(|b| b.1).collect();
        assert_eq!(counts, [3, 3, 3, 1]);
        let mut seen = Vec::new();
        for (bytes, _) in &batches {
            assert!(bytes.len() <= max, "{} > {max}", bytes.len());
            let v: Value = serde_json::from_slice(bytes).expect("json");
            assert_eq!(v["session_id"], json!("s"));
            seen.extend(v["data"]["texts"].as_array().expect("texts").clone());
        }
        assert_eq!(seen, texts.iter().map(|t| json!(t)).collect::<Vec<_>>());
    }

    #[test]
    fn a_text_that_cannot_fit_alone_is_named() {
        let m = message(&["short", &"y".repeat(500)]);
        let err = split(&m, "invoke_text_embedding", 300).expect_err("too large");
        assert!(
            err.starts_with(
                "ServerlessPayloadTooLarge: action=invoke_text_embedding payload_bytes="
            ),
            "{err}"
        );
        assert!(err.ends_with("max_request_bytes=300 item_index=1"), "{err}");
        let err = split(&m, "invoke_tool", 300).expect_err("not splittable");
        assert!(!err.contains("item_index"), "{err}");
    }

    #[test]
    fn embedding_results_are_merged_and_checked() {
        let usage = |tokens: i64| json!({"tokens":tokens,"total_tokens":tokens,"unit_price":"0.1","price_unit":"0.001","total_price":"0.5","currency":"USD","latency":0.5});
        let r1 = vec![json!({"model":"m","embeddings":[[0.1],[0.2]],"usage":usage(3)})];
        let r2 = vec![json!({"model":"m","embeddings":[[0.3]],"usage":usage(4)})];
        let merged = merge("invoke_text_embedding", &[2, 1], &[r1.clone(), r2]).expect("merge");
        assert_eq!(merged["embeddings"], json!([[0.1], [0.2], [0.3]]));
        assert_eq!(merged["usage"]["tokens"], json!(7));
        assert_eq!(merged["usage"]["total_price"], json!("1"));
        assert_eq!(merged["usage"]["latency"], json!(1.0));
        let other_model = vec![json!({"model":"n","embeddings":[[0.3]],"usage":usage(4)})];
        let err =
            merge("invoke_text_embedding", &[2, 1], &[r1.clone(), other_model]).expect_err("model");
        assert_eq!(err, "ServerlessBatchResultMismatch: action=invoke_text_embedding batch_index=1 expected_items=1 actual_items=1 response_count=1 reason=model");
        let err = merge("invoke_text_embedding", &[3], &[r1]).expect_err("count");
        assert!(
            err.ends_with(
                "expected_items=3 actual_items=2 response_count=1 reason=embedding_count"
            ),
            "{err}"
        );
        let err = merge("invoke_text_embedding", &[1], &[vec![]]).expect_err("none");
        assert!(err.ends_with("reason=response_count"), "{err}");
    }

    #[test]
    fn token_counts_are_concatenated() {
        let merged = merge(
            "get_text_embedding_num_tokens",
            &[2, 1],
            &[
                vec![json!({"num_tokens":[1,2]})],
                vec![json!({"num_tokens":[3]})],
            ],
        )
        .expect("merge");
        assert_eq!(merged, json!({"num_tokens":[1,2,3]}));
        let err = merge(
            "get_text_embedding_num_tokens",
            &[2],
            &[vec![json!({"num_tokens":[1]})]],
        )
        .expect_err("count");
        assert!(err.ends_with("reason=token_count"), "{err}");
    }
}
