//! `dify signature verify` on upstream's own signed marketplace package, which lives beside the
//! repository in `../shared/fixtures/upstream/` on the project's machines only. Built only with
//! the feature `upstream-fixtures` (`.ci/run` enables it when the fixture is there).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/upstream/langgenius-agent_0.0.14.difypkg")
}

fn dify(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dify"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .expect("run dify")
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The official package verifies with the embedded official key, and not with another key.
#[test]
fn official_package_verifies_with_the_official_key_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::copy(fixture_path(), dir.join("official.difypkg"))
        .unwrap_or_else(|e| panic!("{}: {e}", fixture_path().display()));
    let out = dify(dir, &["signature", "verify", "official.difypkg"]);
    assert!(out.status.success(), "{}", show(&out));

    let out = dify(dir, &["signature", "generate", "-f", "test_key"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = dify(
        dir,
        &[
            "signature",
            "verify",
            "official.difypkg",
            "-p",
            "test_key.public.pem",
        ],
    );
    assert!(!out.status.success(), "{}", show(&out));
    assert!(!out.stderr.is_empty(), "failed silently");
}
