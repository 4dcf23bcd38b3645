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

/// Rewrites a zip entry by entry (zip order, comment kept), letting `edit` change contents.
pub fn rezip(bytes: &[u8], edit: impl Fn(&str, &mut Vec<u8>)) -> Vec<u8> {
    use std::io::{Cursor, Read, Write};
    let mut src = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    out.set_raw_comment(src.comment().to_vec().into_boxed_slice());
    for i in 0..src.len() {
        let mut f = src.by_index(i).expect("entry");
        let name = f.name().to_owned();
        let mut content = Vec::new();
        f.read_to_end(&mut content).expect("read");
        edit(&name, &mut content);
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("start");
        out.write_all(&content).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

/// A signed package still verifies after a re-zip (the signature covers contents, not zip
/// layout), and one changed byte of `main.py` makes it unverified with another checksum.
pub fn assert_signature_survives_rezip_not_a_changed_byte(
    signed: &[u8],
    opts: &DecodeOptions,
    signed_checksum: &str,
) {
    let same = rezip(signed, |_, _| {});
    assert!(
        plugind_package::decode(&same, opts)
            .expect("decode")
            .verified
    );
    let tampered = rezip(signed, |name, content| {
        if name == "main.py" {
            content[0] ^= 0x01;
        }
    });
    let pkg = plugind_package::decode(&tampered, opts).expect("decode");
    assert!(!pkg.verified && !pkg.declaration.verified);
    assert!(pkg.verification.is_none());
    assert_ne!(pkg.checksum, signed_checksum);
}
