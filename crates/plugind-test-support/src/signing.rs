//! Signed packages for tests that need *a* signed package: a key generated in the test, the
//! fixture plugin packed and signed with it, and the daemon settings that trust the key.

use std::path::{Path, PathBuf};

use plugind_package::Verification;
use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::fixtures::{assemble_fixture, Variant};

/// A freshly generated 2048-bit RSA key pair, its public key written as PEM into a temporary
/// directory that lives as long as the signer.
pub struct TestSigner {
    pub private: RsaPrivateKey,
    pub public: RsaPublicKey,
    public_pem: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestSigner {
    /// Generates the key pair (about a second in a debug build) and writes the public PEM.
    ///
    /// Panics on failure: this is test setup.
    pub fn generate() -> TestSigner {
        let (private, public) =
            plugind_package::generate_key_pair(2048).unwrap_or_else(|e| panic!("keys: {e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let public_pem = dir.path().join("test.public.pem");
        let pem = plugind_package::public_key_to_pem(&public).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&public_pem, pem).unwrap_or_else(|e| panic!("write key: {e}"));
        TestSigner {
            private,
            public,
            public_pem,
            _dir: dir,
        }
    }

    /// Path of the public key in PEM form.
    pub fn public_pem(&self) -> &Path {
        &self.public_pem
    }

    /// Daemon environment that trusts this key (`THIRD_PARTY_SIGNATURE_VERIFICATION_*`).
    pub fn daemon_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED".into(),
                "true".into(),
            ),
            (
                "THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS".into(),
                self.public_pem.display().to_string(),
            ),
        ]
    }

    /// Signs `package` with this key, with an optional verification category.
    pub fn sign(&self, package: &[u8], verification: Option<&Verification>) -> Vec<u8> {
        plugind_package::sign(package, &self.private, verification, 1_735_689_600)
            .unwrap_or_else(|e| panic!("sign: {e}"))
    }
}

/// The fixture plugin with `extra` files added (e.g. a `README.md`), packed.
pub fn pack_fixture_with(v: Variant, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    assemble_fixture(v, tmp.path());
    for (name, content) in extra {
        let path = tmp.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
    plugind_package::pack_dir(tmp.path()).unwrap_or_else(|e| panic!("pack: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_fixture_verifies_with_the_signer_key_only() {
        let signer = TestSigner::generate();
        let bytes = signer.sign(
            &pack_fixture_with(Variant::Latest, &[("README.md", b"# Echo\n")]),
            Some(&Verification::langgenius()),
        );
        let trusted = plugind_package::DecodeOptions {
            public_keys: vec![plugind_package::parse_public_key_pem(
                &std::fs::read_to_string(signer.public_pem()).expect("pem"),
            )
            .expect("parse")],
            ..Default::default()
        };
        let pkg = plugind_package::decode(&bytes, &trusted).expect("decode");
        assert!(pkg.verified);
        assert_eq!(
            plugind_package::read_file(&bytes, "README.md").expect("readme"),
            b"# Echo\n"
        );
        let pkg = plugind_package::decode(&bytes, &Default::default()).expect("decode");
        assert!(!pkg.verified);
    }
}
