//! Signing keys (PSC §2.4): RSA key pairs and their PKCS#1 PEM form, as written by
//! `dify signature generate` (`RSA PRIVATE KEY` / `RSA PUBLIC KEY` blocks).
//!
//! Parsing is as strict as upstream's: exactly one block of the expected type; only the END
//! line's own line break (LF or CRLF) may follow it.

use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use rsa::rand_core::OsRng;
use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::error::PackageError;

/// Key size `dify signature generate` uses.
pub const DEFAULT_KEY_BITS: usize = 4096;

/// A fresh RSA key pair of `bits` bits (upstream uses 4096) from the operating system's RNG.
pub fn generate_key_pair(bits: usize) -> Result<(RsaPrivateKey, RsaPublicKey), PackageError> {
    let private = RsaPrivateKey::new(&mut OsRng, bits)
        .map_err(|e| PackageError::GenerateKey(e.to_string()))?;
    let public = RsaPublicKey::from(&private);
    Ok((private, public))
}

/// Parses a PKCS#1 `RSA PRIVATE KEY` PEM block. A trailing newline (LF or CRLF) is fine; any
/// other block type or anything after the block is rejected.
pub fn parse_private_key_pem(pem: &str) -> Result<RsaPrivateKey, PackageError> {
    const BEGIN: &str = "-----BEGIN RSA PRIVATE KEY-----";
    const END: &str = "-----END RSA PRIVATE KEY-----";
    let normalized = pem.replace("\r\n", "\n");
    let text = normalized.trim_start();
    if !text.starts_with(BEGIN) {
        return Err(PackageError::PrivateKeyPem);
    }
    let end = text.find(END).ok_or(PackageError::PrivateKeyPem)?;
    let rest = &text[end + END.len()..];
    if !(rest.is_empty() || rest == "\n") {
        return Err(PackageError::PublicKeyExtraData);
    }
    let block = format!("{}\n", &text[..end + END.len()]);
    RsaPrivateKey::from_pkcs1_pem(&block).map_err(|e| PackageError::PrivateKey(e.to_string()))
}

/// PKCS#1 PEM of a public key (`-----BEGIN RSA PUBLIC KEY-----`, LF line endings, final newline).
pub fn public_key_to_pem(key: &RsaPublicKey) -> Result<String, PackageError> {
    key.to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| PackageError::EncodeKey(e.to_string()))
}

/// PKCS#1 PEM of a private key (`-----BEGIN RSA PRIVATE KEY-----`, LF line endings, final
/// newline). The caller owns the secret; write it with care.
pub fn private_key_to_pem(key: &RsaPrivateKey) -> Result<String, PackageError> {
    key.to_pkcs1_pem(LineEnding::LF)
        .map(|pem| pem.as_str().to_owned())
        .map_err(|e| PackageError::EncodeKey(e.to_string()))
}
