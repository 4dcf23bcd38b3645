//! Agent-strategy blob merging (http-api §4.3.5): `blob_chunk` messages are collected per file
//! id and sent on as one `blob` message when the final chunk arrives. Only agent strategies get
//! this; tool blob chunks go to Dify as they are (Dify merges them itself).

use std::collections::HashMap;

use base64::Engine;
use plugind_entities::dispatch::wire::{Map, Str};
use plugind_entities::dispatch::{encode, BlobChunk, MessageChunk};
use plugind_entities::DaemonError;
use serde::Serialize;
use serde_json::value::RawValue;

/// A file's buffer may hold at most this much before another chunk is refused.
pub const MAX_FILE_BYTES: usize = 15 * 1024 * 1024;
/// The most decoded bytes one chunk may carry.
pub const MAX_CHUNK_BYTES: usize = 8192;

/// The files of one agent-strategy stream being put together.
#[derive(Default)]
pub struct BlobMerger {
    files: HashMap<String, Vec<u8>>,
}

impl BlobMerger {
    /// What a validated agent message becomes: itself (anything but `blob_chunk`), nothing (a
    /// chunk taken in, or one with mistyped fields, dropped as upstream does), or the merged
    /// `blob` at the final chunk. Errors carry upstream's plain texts.
    pub fn take(&mut self, chunk: MessageChunk<'_>) -> Result<Option<Box<RawValue>>, DaemonError> {
        if chunk.kind.as_str() != "blob_chunk" {
            return encode(&chunk).map(Some).map_err(DaemonError::internal);
        }
        let Some(piece) = BlobChunk::piece(&chunk.message) else {
            return Ok(None);
        };
        let id = piece.id.as_str();
        if piece.end {
            let whole = self.files.remove(id).unwrap_or_default();
            let merged = Merged {
                kind: "blob",
                message: BlobMessage {
                    blob: base64::engine::general_purpose::STANDARD.encode(whole),
                },
                meta: chunk.meta,
            };
            return encode(&merged).map(Some).map_err(DaemonError::internal);
        }
        let buffer = self.files.entry(id.to_owned()).or_insert_with(|| {
            // Never trust the announced length beyond what may be held.
            let announced = piece.total_length.max(0.0) as usize;
            Vec::with_capacity(announced.min(MAX_FILE_BYTES))
        });
        if buffer.len() > MAX_FILE_BYTES {
            self.files.remove(id);
            return Err(DaemonError::invoke("file is too large"));
        }
        let decoded = decode(&piece.blob).map_err(DaemonError::invoke)?;
        if decoded.len() > MAX_CHUNK_BYTES {
            return Err(DaemonError::invoke("single file chunk is too large"));
        }
        buffer.extend_from_slice(&decoded);
        Ok(None)
    }
}

/// Standard base64 with Go's error text.
fn decode(blob: &Str<'_>) -> Result<Vec<u8>, String> {
    use base64::DecodeError as E;
    base64::engine::general_purpose::STANDARD
        .decode(blob.as_str())
        .map_err(|e| {
            let at = match e {
                E::InvalidByte(at, _) | E::InvalidLastSymbol(at, _) => at,
                E::InvalidLength(len) => len,
                E::InvalidPadding => blob.as_str().len(),
            };
            format!("illegal base64 data at input byte {at}")
        })
}

#[derive(Serialize)]
struct Merged<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: BlobMessage,
    meta: Map<'a>,
}

#[derive(Serialize)]
struct BlobMessage {
    blob: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugind_entities::dispatch::ResponseKind;
    use plugind_entities::ErrorType;

    fn feed(merger: &mut BlobMerger, chunk: &str) -> Result<Option<String>, DaemonError> {
        let message = ResponseKind::AgentMessages
            .message_chunk(chunk)
            .expect("valid chunk");
        merger
            .take(message)
            .map(|out| out.map(|raw| raw.get().to_owned()))
    }

    fn piece(id: &str, blob: &str, end: bool) -> String {
        format!(
            r#"{{"type":"blob_chunk","message":{{"id":"{id}","sequence":0,"total_length":6,"blob":"{blob}","end":{end}}},"meta":{{"mime_type":"text/plain"}}}}"#
        )
    }

    #[test]
    fn chunks_are_merged_into_one_blob_with_the_final_meta() {
        let mut merger = BlobMerger::default();
        assert_eq!(
            feed(&mut merger, &piece("f", "aGVs", false)).expect("ok"),
            None
        );
        assert_eq!(
            feed(&mut merger, &piece("f", "bG8h", false)).expect("ok"),
            None
        );
        assert_eq!(
            feed(&mut merger, &piece("f", "", true))
                .expect("ok")
                .as_deref(),
            Some(
                r#"{"type":"blob","message":{"blob":"aGVsbG8h"},"meta":{"mime_type":"text/plain"}}"#
            )
        );
        // Other messages pass; a chunk with a mistyped field is dropped.
        assert_eq!(
            feed(&mut merger, r#"{"type":"text","message":{"text":"x"}}"#)
                .expect("ok")
                .as_deref(),
            Some(r#"{"type":"text","message":{"text":"x"},"meta":null}"#)
        );
        let mistyped =
            r#"{"type":"blob_chunk","message":{"id":1,"total_length":1,"blob":"","end":false}}"#;
        assert_eq!(feed(&mut merger, mistyped).expect("ok"), None);
    }

    #[test]
    fn limits_and_bad_base64_fail_with_upstreams_plain_texts() {
        let mut merger = BlobMerger::default();
        let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; MAX_CHUNK_BYTES + 1]);
        let err = feed(&mut merger, &piece("a", &big, false)).expect_err("too big");
        assert_eq!(err.error_type, ErrorType::PluginInvoke);
        assert_eq!(err.message, "single file chunk is too large");
        let err = feed(&mut merger, &piece("b", "!!!!", false)).expect_err("bad");
        assert_eq!(err.message, "illegal base64 data at input byte 0");
        let full = base64::engine::general_purpose::STANDARD.encode(vec![1u8; MAX_CHUNK_BYTES]);
        let mut merger = BlobMerger::default();
        for _ in 0..=(MAX_FILE_BYTES / MAX_CHUNK_BYTES) {
            assert_eq!(
                feed(&mut merger, &piece("c", &full, false)).expect("fits"),
                None
            );
        }
        let err = feed(&mut merger, &piece("c", &full, false)).expect_err("too large");
        assert_eq!(err.message, "file is too large");
    }
}
