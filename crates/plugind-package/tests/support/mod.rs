//! Packages built at run time for the integration tests, so that they need nothing outside the
//! repository: the agent-strategy fixture of `tests/fixtures/agent` packed with `pack_dir`, and
//! that package signed with a key generated once per test binary. Only `upstream_package.rs`
//! (feature `upstream-fixtures`) reads upstream's own marketplace package.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use plugind_package::{checksum, generate_key_pair, pack_dir, sign, DecodeOptions, Verification};
use rsa::{RsaPrivateKey, RsaPublicKey};

/// Signing time of [`signed_package`].
pub const TIME: i64 = 1_735_689_600;

/// One 2048-bit pair per test binary (generation is the slow part).
pub fn key() -> &'static (RsaPrivateKey, RsaPublicKey) {
    static KEY: OnceLock<(RsaPrivateKey, RsaPublicKey)> = OnceLock::new();
    KEY.get_or_init(|| generate_key_pair(2048).expect("key generation"))
}

/// Decode options that trust [`key`] as a third-party key.
pub fn with_key() -> DecodeOptions {
    DecodeOptions {
        public_keys: vec![key().1.clone()],
        ..DecodeOptions::default()
    }
}

/// `tests/fixtures/agent` packed (deterministic bytes, no signature).
pub fn unsigned_package() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        pack_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agent"))
            .expect("pack the agent fixture")
    })
}

/// [`unsigned_package`] signed with [`key`] as a `langgenius` package at [`TIME`].
pub fn signed_package() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        sign(
            unsigned_package(),
            &key().0,
            Some(&Verification::langgenius()),
            TIME,
        )
        .expect("sign")
    })
}

/// Checksum of [`signed_package`].
pub fn signed_checksum() -> String {
    checksum(signed_package()).expect("checksum")
}
