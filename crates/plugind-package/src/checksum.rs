//! The package checksum (PSC §1.10): sha256 over the sorted `(sha256(path) ‖ sha256(content))`
//! pairs of every file entry.

use sha2::{Digest, Sha256};

use crate::archive::{is_dir_entry, valid_path, Archive};
use crate::error::PackageError;

/// Checksum of a `.difypkg`: 64 lowercase hex characters.
pub fn checksum(bytes: &[u8]) -> Result<String, PackageError> {
    let mut archive = Archive::open(bytes)?;
    checksum_of(&mut archive)
}

pub(crate) fn checksum_of(archive: &mut Archive<'_>) -> Result<String, PackageError> {
    let mut pairs = Vec::new();
    for (i, name) in archive.names().into_iter().enumerate() {
        if is_dir_entry(&name) {
            continue;
        }
        if !valid_path(&name) {
            return Err(PackageError::InvalidEntryName(name));
        }
        let content = archive.read_index(i)?;
        pairs.push((name, Sha256::digest(&content)));
    }
    Ok(checksum_pairs(pairs))
}

/// Combines `(path, sha256(content))` pairs into the checksum.
pub(crate) fn checksum_pairs(mut pairs: Vec<(String, impl AsRef<[u8]>)>) -> String {
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut data = Vec::with_capacity(pairs.len() * 64);
    for (path, content_hash) in &pairs {
        data.extend_from_slice(&Sha256::digest(path.as_bytes()));
        data.extend_from_slice(content_hash.as_ref());
    }
    hex::encode(Sha256::digest(&data))
}
