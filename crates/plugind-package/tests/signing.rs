//! Signing with a generated key (PSC §2.2) and verifying it (§2.3), on a package packed from
//! `tests/fixtures/agent` at run time.

use std::io::{Cursor, Read, Write};

use plugind_package::*;
use rsa::RsaPublicKey;
use zip::write::SimpleFileOptions;

mod support;

use support::{key, TIME};

fn with_key(public: &RsaPublicKey) -> DecodeOptions {
    DecodeOptions {
        public_keys: vec![public.clone()],
        ..DecodeOptions::default()
    }
}

/// The packed fixture: no comment, no verification file.
fn unsigned_fixture() -> Vec<u8> {
    support::unsigned_package().to_vec()
}

/// A signed package (signed with the generated key, `langgenius` category).
fn fixture() -> Vec<u8> {
    support::signed_package().to_vec()
}

/// Rewrites a zip keeping its comment, flipping one byte of entry `target`.
fn tamper(bytes: &[u8], target: usize) -> Vec<u8> {
    let mut src = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    out.set_raw_comment(src.comment().to_vec().into_boxed_slice());
    for i in 0..src.len() {
        let mut f = src.by_index(i).expect("entry");
        let name = f.name().to_owned();
        let mut content = Vec::new();
        f.read_to_end(&mut content).expect("read");
        if i == target {
            match content.first_mut() {
                Some(b) => *b ^= 0x01,
                None => content.push(b'x'),
            }
        }
        out.start_file(name, SimpleFileOptions::default())
            .expect("start");
        out.write_all(&content).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

fn entry_names(bytes: &[u8]) -> Vec<String> {
    let src = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    (0..src.len())
        .map(|i| src.name_for_index(i).expect("name").to_owned())
        .collect()
}

#[test]
fn signed_with_generated_key_verifies_as_third_party_key() {
    let (private, public) = key();
    let unsigned = unsigned_fixture();
    assert!(
        !decode(&unsigned, &with_key(public))
            .expect("decode")
            .verified
    );

    let verification = authorized_verification("Partner").expect("category");
    let signed = sign(&unsigned, private, Some(&verification), TIME).expect("sign");

    let pkg = decode(&signed, &with_key(public)).expect("decode signed");
    assert!(pkg.verified && pkg.declaration.verified);
    assert_eq!(
        serde_json::to_string(&pkg.verification).expect("json"),
        r#"{"authorized_category":"partner"}"#
    );
    assert!(verify_with(&signed, std::slice::from_ref(public)).expect("verify"));
    assert_eq!(
        verification_with(&signed, std::slice::from_ref(public)).expect("verification"),
        Some(verification)
    );

    // Entries in the input's order, the verification file last, Deflate, the comment's shape.
    let mut expected = entry_names(&unsigned);
    expected.push(VERIFICATION_FILE.to_owned());
    assert_eq!(entry_names(&signed), expected);
    let mut zip = zip::ZipArchive::new(Cursor::new(signed.as_slice())).expect("zip");
    let comment: serde_json::Value = serde_json::from_slice(zip.comment()).expect("comment json");
    assert_eq!(comment["time"], TIME);
    assert!(comment["signature"].is_string());
    let text = std::str::from_utf8(zip.comment()).expect("utf8");
    assert!(text.starts_with(r#"{"signature":""#), "{text}");
    let last = zip.len() - 1;
    let mut f = zip.by_index(last).expect("verification entry");
    assert_eq!(f.compression(), zip::CompressionMethod::Deflated);
    let mut content = String::new();
    f.read_to_string(&mut content).expect("read");
    assert_eq!(content, r#"{"authorized_category":"partner"}"#);
}

#[test]
fn changing_any_entry_breaks_the_signature() {
    let (private, public) = key();
    let verification = Verification::langgenius();
    let signed = sign(&unsigned_fixture(), private, Some(&verification), TIME).expect("sign");
    let count = entry_names(&signed).len();
    assert!(count > 5);
    for i in 0..count {
        let tampered = tamper(&signed, i);
        assert!(
            !verify_with(&tampered, std::slice::from_ref(public)).expect("verify"),
            "entry {i} changed but still verified"
        );
    }
    // The untampered copy (same rewrite, nothing changed) still verifies.
    let copy = tamper(&signed, usize::MAX);
    assert!(verify_with(&copy, std::slice::from_ref(public)).expect("verify"));
}

#[test]
fn generated_key_is_not_the_official_key() {
    let (private, public) = key();
    let signed = sign(
        &unsigned_fixture(),
        private,
        Some(&Verification::langgenius()),
        TIME,
    )
    .expect("sign");
    let pkg = decode(&signed, &DecodeOptions::default()).expect("decode");
    assert!(!pkg.verified && pkg.verification.is_none());
    assert!(!verify_with(&signed, &[official_public_key()]).expect("verify"));
    assert!(verify_with(&signed, &[official_public_key(), public.clone()]).expect("verify"));
}

#[test]
fn signed_checksum_counts_the_verification_file() {
    let (private, _) = key();
    let unsigned = unsigned_fixture();
    let with_file =
        sign(&unsigned, private, Some(&Verification::langgenius()), TIME).expect("sign");
    let without_file = sign(&unsigned, private, None, TIME).expect("sign");
    let base = checksum(&unsigned).expect("checksum");
    assert_ne!(checksum(&with_file).expect("checksum"), base);
    // Without a verification file only the comment and compression change: same checksum.
    assert_eq!(checksum(&without_file).expect("checksum"), base);
}

#[test]
fn resigning_replaces_the_verification_file() {
    let (private, public) = key();
    let first = sign(
        &unsigned_fixture(),
        private,
        Some(&Verification::langgenius()),
        TIME,
    )
    .expect("sign");
    let community = authorized_verification("COMMUNITY").expect("category");
    let second = sign(&first, private, Some(&community), TIME + 1).expect("re-sign");
    let names = entry_names(&second);
    assert_eq!(
        names.iter().filter(|n| *n == VERIFICATION_FILE).count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        verification_with(&second, std::slice::from_ref(public)).expect("verification"),
        Some(community)
    );
    // Re-signing a signed package with no verification keeps its file and verifies.
    let kept = sign(&fixture(), private, None, TIME).expect("sign");
    assert_eq!(entry_names(&kept), entry_names(&fixture()));
    assert_eq!(
        verification_with(&kept, std::slice::from_ref(public)).expect("verification"),
        Some(Verification::langgenius())
    );
}

#[test]
fn categories_are_case_insensitive_and_closed() {
    for (given, stored) in [
        ("langgenius", "langgenius"),
        ("LangGenius", "langgenius"),
        ("PARTNER", "partner"),
        ("community", "community"),
    ] {
        assert_eq!(
            authorized_verification(given)
                .expect("accepted")
                .authorized_category,
            stored
        );
    }
    for bad in ["", "official", "langgenius ", "partners"] {
        assert!(authorized_verification(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn key_pem_round_trip_and_tolerated_line_endings() {
    let (private, public) = key();
    let private_pem = private_key_to_pem(private).expect("private pem");
    let public_pem = public_key_to_pem(public).expect("public pem");
    assert!(private_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    assert!(private_pem.ends_with("-----END RSA PRIVATE KEY-----\n"));
    assert!(public_pem.starts_with("-----BEGIN RSA PUBLIC KEY-----\n"));
    assert!(public_pem.ends_with("-----END RSA PUBLIC KEY-----\n"));

    assert_eq!(&parse_private_key_pem(&private_pem).expect("lf"), private);
    assert_eq!(&parse_public_key_pem(&public_pem).expect("lf"), public);
    let crlf_private = private_pem.replace('\n', "\r\n");
    let crlf_public = public_pem.replace('\n', "\r\n");
    assert_eq!(
        &parse_private_key_pem(&crlf_private).expect("crlf"),
        private
    );
    assert_eq!(&parse_public_key_pem(&crlf_public).expect("crlf"), public);
    let bare_private = private_pem.trim_end();
    let bare_public = public_pem.trim_end();
    assert_eq!(
        &parse_private_key_pem(bare_private).expect("no newline"),
        private
    );
    assert_eq!(
        &parse_public_key_pem(bare_public).expect("no newline"),
        public
    );

    // A signature made with the re-parsed private key verifies with the re-parsed public key.
    let reparsed = parse_private_key_pem(&crlf_private).expect("crlf");
    let signed = sign(&unsigned_fixture(), &reparsed, None, TIME).expect("sign");
    let public_again = parse_public_key_pem(&crlf_public).expect("crlf");
    assert!(verify_with(&signed, &[public_again]).expect("verify"));
}

#[test]
fn malformed_private_keys_are_rejected() {
    let (private, public) = key();
    let private_pem = private_key_to_pem(private).expect("pem");
    let public_pem = public_key_to_pem(public).expect("pem");
    assert_eq!(
        parse_private_key_pem(&public_pem)
            .expect_err("public key")
            .to_string(),
        "failed to decode PEM block containing private key"
    );
    assert_eq!(
        parse_public_key_pem(&private_pem)
            .expect_err("private key")
            .to_string(),
        "failed to decode PEM block containing public key"
    );
    assert_eq!(
        parse_private_key_pem(&format!("{private_pem}\n"))
            .expect_err("blank line")
            .to_string(),
        "extra data included in the PEM block"
    );
    assert_eq!(
        parse_private_key_pem(&format!("{private_pem}{private_pem}"))
            .expect_err("two blocks")
            .to_string(),
        "extra data included in the PEM block"
    );
    assert!(parse_private_key_pem("").is_err());
    let broken = private_pem.replacen("MII", "MIX", 1);
    assert!(matches!(
        parse_private_key_pem(&broken),
        Err(PackageError::PrivateKey(_))
    ));
}

#[test]
fn not_a_zip_is_an_error() {
    let (private, public) = key();
    assert!(sign(b"not a zip", private, None, TIME).is_err());
    assert!(verify_with(b"not a zip", std::slice::from_ref(public)).is_err());
}
