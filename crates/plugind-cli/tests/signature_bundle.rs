//! The real `dify` binary: `signature generate/sign/verify` and `bundle init/append/remove/bump/
//! package/analyze`, around the echo fixture plugin packed at run time (upstream's own signed
//! package: `upstream_package.rs`).

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::{Command, Output};

use plugind_package::{decode_bundle, DecodeOptions, Dependency};
use plugind_test_support::{pack_fixture, Variant};

/// The echo fixture plugin, packed (deterministic bytes).
fn package() -> Vec<u8> {
    pack_fixture(Variant::Latest)
}

fn package_checksum() -> String {
    plugind_package::checksum(&package()).expect("checksum")
}

fn dify(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dify"));
    c.current_dir(dir);
    c.env_remove("RUST_LOG");
    c
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = dify(dir).args(args).output().expect("run dify");
    assert!(out.status.success(), "{args:?} failed: {}", show(&out));
    out
}

fn fails(dir: &Path, args: &[&str]) -> Output {
    let out = dify(dir).args(args).output().expect("run dify");
    assert!(!out.status.success(), "{args:?} succeeded: {}", show(&out));
    assert!(!out.stderr.is_empty(), "{args:?} failed silently");
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The package without a signature.
fn unsigned_fixture() -> Vec<u8> {
    package()
}

/// Flips one byte of `main.py`'s content, keeping the zip comment (the signature).
fn tamper(bytes: &[u8]) -> Vec<u8> {
    let mut src = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    out.set_raw_comment(src.comment().to_vec().into_boxed_slice());
    let mut changed = false;
    for i in 0..src.len() {
        let mut f = src.by_index(i).expect("entry");
        let name = f.name().to_owned();
        let mut content = Vec::new();
        f.read_to_end(&mut content).expect("read");
        if name == "main.py" {
            content[0] ^= 0x20;
            changed = true;
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("start");
        out.write_all(&content).expect("write");
    }
    assert!(changed, "fixture has main.py");
    out.finish().expect("finish").into_inner()
}

#[test]
fn generate_sign_verify() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(dir, &["signature", "generate", "-f", "test_key"]);
    let private = dir.join("test_key.private.pem");
    let public = dir.join("test_key.public.pem");
    assert!(std::fs::read_to_string(&private)
        .expect("private key")
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(std::fs::read_to_string(&public)
        .expect("public key")
        .starts_with("-----BEGIN RSA PUBLIC KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
    // Never overwrites a key.
    fails(dir, &["signature", "generate", "-f", "test_key"]);

    std::fs::write(dir.join("agent.difypkg"), unsigned_fixture()).expect("write");
    // Unsigned: not verified by the new key nor the official key.
    fails(
        dir,
        &[
            "signature",
            "verify",
            "agent.difypkg",
            "-p",
            "test_key.public.pem",
        ],
    );
    fails(dir, &["signature", "verify", "agent.difypkg"]);

    let out = ok(
        dir,
        &[
            "signature",
            "sign",
            "agent.difypkg",
            "-p",
            "test_key.private.pem",
            "-c",
            "Community",
        ],
    );
    assert!(
        stderr(&out).contains("agent.signed.difypkg"),
        "{}",
        show(&out)
    );
    let signed = std::fs::read(dir.join("agent.signed.difypkg")).expect("signed package");
    let out = ok(
        dir,
        &[
            "signature",
            "verify",
            "agent.signed.difypkg",
            "-p",
            "test_key.public.pem",
        ],
    );
    assert!(stderr(&out).contains("community"), "{}", show(&out));
    // The daemon's decode sees the category with the key configured, and no signature without.
    let key = plugind_package::parse_public_key_pem(
        &std::fs::read_to_string(&public).expect("public key"),
    )
    .expect("parse");
    let pkg = plugind_package::decode(
        &signed,
        &DecodeOptions {
            public_keys: vec![key],
            ..DecodeOptions::default()
        },
    )
    .expect("decode");
    assert_eq!(
        pkg.verification.expect("verified").authorized_category,
        "community"
    );
    // The official key alone does not verify it.
    fails(dir, &["signature", "verify", "agent.signed.difypkg"]);

    // Tampered after signing.
    std::fs::write(dir.join("tampered.difypkg"), tamper(&signed)).expect("write");
    let out = fails(
        dir,
        &[
            "signature",
            "verify",
            "tampered.difypkg",
            "-p",
            "test_key.public.pem",
        ],
    );
    assert!(
        stderr(&out).contains("failed verification"),
        "{}",
        show(&out)
    );

    // Bad inputs.
    fails(
        dir,
        &[
            "signature",
            "sign",
            "agent.difypkg",
            "-p",
            "test_key.private.pem",
            "-c",
            "official",
        ],
    );
    fails(
        dir,
        &[
            "signature",
            "sign",
            "agent.difypkg",
            "-p",
            "test_key.public.pem",
        ],
    );
    fails(
        dir,
        &[
            "signature",
            "sign",
            "missing.difypkg",
            "-p",
            "test_key.private.pem",
        ],
    );
    fails(dir, &["signature", "sign", "agent.difypkg"]);
    fails(
        dir,
        &[
            "signature",
            "verify",
            "agent.signed.difypkg",
            "-p",
            "test_key.private.pem",
        ],
    );
}

#[test]
fn bundle_init_append_package_analyze() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    ok(
        dir,
        &[
            "bundle",
            "init",
            "--name",
            "my-bundle",
            "--author",
            "tester",
            "--description",
            "Test bundle",
        ],
    );
    let bundle_dir = dir.join("my-bundle");
    for file in ["manifest.yaml", "README.md", "_assets/icon.svg"] {
        assert!(bundle_dir.join(file).is_file(), "{file} missing");
    }
    fails(
        dir,
        &[
            "bundle",
            "init",
            "--name",
            "my-bundle",
            "--author",
            "tester",
        ],
    );
    fails(
        dir,
        &["bundle", "init", "--name", "Bad Name", "--author", "tester"],
    );
    assert!(!dir.join("Bad Name").exists());

    let agent = dir.join("echo.difypkg");
    std::fs::write(&agent, package()).expect("write package");
    let agent = agent.to_str().expect("utf-8 path");
    ok(
        dir,
        &["bundle", "append", "package", "my-bundle", "-p", agent],
    );
    assert!(bundle_dir
        .join("_assets")
        .join(package_checksum())
        .is_file());
    ok(
        dir,
        &[
            "bundle",
            "append",
            "github",
            "my-bundle",
            "-r",
            "owner/repo:1.0.0/plugin.difypkg",
        ],
    );
    ok(
        dir,
        &[
            "bundle",
            "append",
            "marketplace",
            "my-bundle",
            "-m",
            "langgenius/openai:^1.0.0",
        ],
    );
    fails(
        dir,
        &[
            "bundle",
            "append",
            "github",
            "my-bundle",
            "-r",
            "Owner/repo:1.0/x",
        ],
    );
    fails(
        dir,
        &["bundle", "append", "marketplace", "my-bundle", "-m", "nope"],
    );
    fails(
        dir,
        &[
            "bundle",
            "append",
            "package",
            "my-bundle",
            "-p",
            "my-bundle/README.md",
        ],
    );
    ok(dir, &["bundle", "bump", "my-bundle", "-t", "0.1.0"]);
    fails(dir, &["bundle", "bump", "my-bundle", "-t", "0.1"]);
    fails(dir, &["bundle", "remove", "my-bundle", "-i", "3"]);

    ok(dir, &["bundle", "package", "my-bundle"]);
    let bytes = std::fs::read(dir.join("my-bundle.difybndl")).expect("bundle zip");
    let bundle = decode_bundle(&bytes).expect("decode bundle");
    assert_eq!(bundle.manifest.name, "my-bundle");
    assert_eq!(bundle.manifest.version, "0.1.0");
    assert_eq!(bundle.manifest.author, "tester");
    let kinds: Vec<&str> = bundle
        .manifest
        .dependencies
        .iter()
        .map(Dependency::kind)
        .collect();
    assert_eq!(kinds, ["package", "github", "marketplace"]);
    let asset = bundle.asset(&package_checksum()).expect("package asset");
    assert_eq!(asset, package());
    assert!(bundle.extra_files.contains_key("README.md"));

    let out = ok(dir, &["bundle", "analyze", "my-bundle.difybndl"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.contains(&format!("[0] package {}", package_checksum())),
        "{listing}"
    );
    assert!(listing.contains("plugind/echo:0.0.1@"), "{listing}");
    assert!(
        listing.contains("[1] github owner/repo:1.0.0/plugin.difypkg: repo https://github.com/owner/repo, release 1.0.0, asset plugin.difypkg"),
        "{listing}"
    );
    assert!(
        listing.contains("[2] marketplace langgenius/openai:^1.0.0: organization langgenius, plugin openai, version ^1.0.0"),
        "{listing}"
    );

    // Editing the zip in place; removing the package dependency drops its asset.
    ok(dir, &["bundle", "remove", "my-bundle.difybndl", "-i", "0"]);
    let bytes = std::fs::read(dir.join("my-bundle.difybndl")).expect("bundle zip");
    let bundle = decode_bundle(&bytes).expect("decode bundle");
    assert_eq!(bundle.manifest.dependencies.len(), 2);
    assert!(bundle.asset(&package_checksum()).is_none());

    // And in the directory.
    ok(dir, &["bundle", "remove", "my-bundle", "-i", "0"]);
    assert!(!bundle_dir.join("_assets").join(package_checksum()).exists());

    // -o, and no output name from `.`.
    ok(
        dir,
        &["bundle", "package", "my-bundle", "-o", "custom.difybndl"],
    );
    let custom = decode_bundle(&std::fs::read(dir.join("custom.difybndl")).expect("custom"))
        .expect("decode");
    assert_eq!(custom.manifest.dependencies.len(), 2);
    fails(
        dir,
        &[
            "bundle",
            "package",
            "my-bundle",
            "-o",
            "no/such/dir.difybndl",
        ],
    );
    fails(&bundle_dir, &["bundle", "package", "."]);
    fails(dir, &["bundle", "analyze", "missing"]);
}
