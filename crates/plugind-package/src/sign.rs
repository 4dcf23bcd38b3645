//! Signing a package (PSC §2.2) and verifying it against an explicit key set (§2.3).
//!
//! The signed data is every entry's SHA-256 in zip order, then (when given) the SHA-256 of the
//! compact `.verification.dify.json` written as the last entry, then the decimal unix time; the
//! RSA PKCS#1 v1.5 / SHA-256 signature and the time go into the zip comment.

use std::io::{Cursor, Write};

use base64::Engine as _;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::archive::{is_dir_entry, valid_path, Archive};
use crate::error::PackageError;
use crate::signature::{self, Verification, VERIFICATION_FILE};

/// DER prefix of a PKCS#1 v1.5 `DigestInfo` for SHA-256.
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// Signs `package` with `key` at unix time `time` (upstream: the current time).
///
/// Entries are copied in zip order, recompressed with Deflate. With a `verification`, a compact
/// `.verification.dify.json` is appended as the last entry; an existing one in the input is
/// dropped first, so re-signing replaces the category instead of producing the duplicate entry
/// upstream's signer writes (which never verifies). Without one, entries are copied unchanged,
/// including an existing verification file.
pub fn sign(
    package: &[u8],
    key: &RsaPrivateKey,
    verification: Option<&Verification>,
    time: i64,
) -> Result<Vec<u8>, PackageError> {
    let mut archive = Archive::open(package)?;
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut signed = Vec::new();

    for (i, name) in archive.names().into_iter().enumerate() {
        if verification.is_some() && name == VERIFICATION_FILE {
            continue;
        }
        if is_dir_entry(&name) {
            // The verifier hashes every entry, directories included (empty content).
            signed.extend_from_slice(&Sha256::digest([]));
            writer
                .add_directory(name.as_str(), options.unix_permissions(0o755))
                .map_err(PackageError::from)?;
            continue;
        }
        if !valid_path(&name) {
            return Err(PackageError::InvalidEntryName(name));
        }
        let content = archive.read_index(i)?;
        signed.extend_from_slice(&Sha256::digest(&content));
        writer
            .start_file(name.as_str(), options)
            .map_err(PackageError::from)?;
        writer
            .write_all(&content)
            .map_err(|e| PackageError::io(name.clone(), e))?;
    }

    if let Some(verification) = verification {
        let json =
            serde_json::to_vec(verification).map_err(|e| PackageError::Sign(e.to_string()))?;
        signed.extend_from_slice(&Sha256::digest(&json));
        writer
            .start_file(VERIFICATION_FILE, options)
            .map_err(PackageError::from)?;
        writer
            .write_all(&json)
            .map_err(|e| PackageError::io(VERIFICATION_FILE, e))?;
    }

    signed.extend_from_slice(time.to_string().as_bytes());
    let hashed = Sha256::digest(&signed);
    let signature = key
        .sign(scheme(), &hashed)
        .map_err(|e| PackageError::Sign(e.to_string()))?;
    let comment = serde_json::json!({
        "signature": base64::engine::general_purpose::STANDARD.encode(signature),
        "time": time,
    });
    writer.set_comment(comment.to_string());
    let cursor = writer.finish().map_err(PackageError::from)?;
    Ok(cursor.into_inner())
}

/// True when `package`'s signature verifies against any of `keys` (and only those: the official
/// key is not added). Errors only when the bytes are not a readable zip.
pub fn verify_with(package: &[u8], keys: &[RsaPublicKey]) -> Result<bool, PackageError> {
    let mut archive = Archive::open(package)?;
    Ok(signature::verify(&mut archive, keys))
}

/// The verification object of a package that verifies against `keys`: the content of
/// `.verification.dify.json`, `{"authorized_category":"langgenius"}` for a legacy package without
/// one, `None` when not verified.
pub fn verification_with(
    package: &[u8],
    keys: &[RsaPublicKey],
) -> Result<Option<Verification>, PackageError> {
    let mut archive = Archive::open(package)?;
    if !signature::verify(&mut archive, keys) {
        return Ok(None);
    }
    Ok(Some(
        signature::read_verification(&mut archive).unwrap_or_else(Verification::langgenius),
    ))
}

fn scheme() -> Pkcs1v15Sign {
    Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: Box::new(SHA256_DIGEST_INFO_PREFIX),
    }
}

/// The categories `dify signature sign -c` accepts.
pub const AUTHORIZED_CATEGORIES: [&str; 3] = ["langgenius", "partner", "community"];

/// The verification object for a category given on the command line: one of
/// [`AUTHORIZED_CATEGORIES`], case-insensitive, stored lower-cased (upstream stores the text as
/// typed, which the daemon's exact `langgenius` comparison then rejects).
pub fn authorized_verification(category: &str) -> Option<Verification> {
    let lower = category.to_ascii_lowercase();
    let known = AUTHORIZED_CATEGORIES.contains(&lower.as_str());
    known.then_some(Verification {
        authorized_category: lower,
    })
}
