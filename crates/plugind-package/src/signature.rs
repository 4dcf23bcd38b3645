//! Signature verification (PSC Part 2): the zip comment carries `{"signature","time"}`; the
//! signed data is every entry's sha256 in zip order followed by the decimal time.

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::archive::Archive;
use crate::error::PackageError;

/// Name of the entry the signer adds with the authorized category.
pub const VERIFICATION_FILE: &str = ".verification.dify.json";

const OFFICIAL_PUBLIC_KEY_PEM: &str = include_str!("../keys/official_public_key.pem");

/// DER prefix of a PKCS#1 v1.5 `DigestInfo` for SHA-256.
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The content of `.verification.dify.json` (a shared noun: upload answers carry it).
pub use plugind_entities::Verification;

/// The official Langgenius key, always part of the key set.
pub fn official_public_key() -> RsaPublicKey {
    // The embedded PEM is a fixed, known-good file; parsing it cannot fail at runtime unless the
    // file in `keys/` is replaced by garbage, which the crate's tests catch.
    #[allow(clippy::expect_used)]
    parse_public_key_pem(OFFICIAL_PUBLIC_KEY_PEM).expect("embedded official public key is valid")
}

/// Parses a PKCS#1 `RSA PUBLIC KEY` PEM block. A trailing newline (LF or CRLF) is fine; any other
/// block type or anything after the block is rejected.
pub fn parse_public_key_pem(pem: &str) -> Result<RsaPublicKey, PackageError> {
    let normalized = pem.replace("\r\n", "\n");
    let text = normalized.trim_start();
    const BEGIN: &str = "-----BEGIN RSA PUBLIC KEY-----";
    const END: &str = "-----END RSA PUBLIC KEY-----";
    if !text.starts_with(BEGIN) {
        return Err(PackageError::PublicKeyPem);
    }
    let end = text.find(END).ok_or(PackageError::PublicKeyPem)?;
    let rest = &text[end + END.len()..];
    if !(rest.is_empty() || rest == "\n") {
        return Err(PackageError::PublicKeyExtraData);
    }
    let block = format!("{}\n", &text[..end + END.len()]);
    RsaPublicKey::from_pkcs1_pem(&block).map_err(|e| PackageError::PublicKey(e.to_string()))
}

#[derive(Deserialize)]
struct Comment {
    signature: String,
    time: i64,
}

/// True when the package's signature verifies against any of `keys`.
pub(crate) fn verify(archive: &mut Archive<'_>, keys: &[RsaPublicKey]) -> bool {
    let Ok(comment) = serde_json::from_slice::<Comment>(archive.comment()) else {
        return false;
    };
    let Ok(signature) =
        base64::engine::general_purpose::STANDARD.decode(comment.signature.as_bytes())
    else {
        return false;
    };
    let mut buffer = Vec::new();
    for i in 0..archive.names().len() {
        match archive.read_index(i) {
            Ok(content) => buffer.extend_from_slice(&Sha256::digest(&content)),
            Err(_) => return false,
        }
    }
    buffer.extend_from_slice(comment.time.to_string().as_bytes());
    let hashed = Sha256::digest(&buffer);
    keys.iter().any(|key| {
        let scheme = Pkcs1v15Sign {
            hash_len: Some(32),
            prefix: Box::new(SHA256_DIGEST_INFO_PREFIX),
        };
        key.verify(scheme, &hashed, &signature).is_ok()
    })
}

/// Reads `.verification.dify.json`; `None` when absent or unreadable.
pub(crate) fn read_verification(archive: &mut Archive<'_>) -> Option<Verification> {
    let bytes = archive.read_name(VERIFICATION_FILE).ok()??;
    serde_json::from_slice(&bytes).ok()
}
