//! Start-up contract: required settings are named in one line each, and an explicitly
//! configured database that does not answer is a loud error, never a silent SQLite fallback.

use std::process::Command;

fn plugind() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plugind"));
    for var in [
        "SERVER_KEY",
        "DIFY_INNER_API_URL",
        "DIFY_INNER_API_KEY",
        "DB_TYPE",
        "DB_HOST",
        "DB_PORT",
        "REDIS_HOST",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn missing_required_settings_are_named_one_line_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = plugind()
        .env("PLUGIND_DATA_DIR", dir.path())
        .output()
        .expect("run plugind");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in [
        "SERVER_KEY is required",
        "DIFY_INNER_API_URL is required",
        "DIFY_INNER_API_KEY is required",
    ] {
        assert_eq!(
            stderr.lines().filter(|l| l.contains(name)).count(),
            1,
            "{name} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unreachable_postgres_fails_loudly_without_falling_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = plugind()
        .env("PLUGIND_DATA_DIR", dir.path())
        .env("SERVER_KEY", "k")
        .env("DIFY_INNER_API_URL", "http://127.0.0.1:1")
        .env("DIFY_INNER_API_KEY", "k")
        .env("SERVER_PORT", "0")
        .env("DB_TYPE", "postgresql")
        .env("DB_HOST", "127.0.0.1")
        .env("DB_PORT", "1")
        .output()
        .expect("run plugind");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PostgreSQL") && stderr.contains("127.0.0.1:1"),
        "names host and port:\n{stderr}"
    );
    assert!(
        !dir.path().join("plugind.db").exists(),
        "fell back to SQLite"
    );
}
