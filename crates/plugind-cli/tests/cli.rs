//! The real `dify` binary: init for every category → package → decode; checksum; refusing an
//! invalid manifest; `plugin run` over stdio; and round trips of freshly initialised tool and
//! LLM plugins through the real daemon and the real SDK.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use plugind_package::DecodeOptions;
use plugind_test_support::{daemon_bin, test_cache_dir, Daemon, DaemonOptions, FakeDify};
use serde_json::{json, Value};

const TENANT: &str = "0f6a4c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b";
const AUTHOR: &str = "clitest";

fn dify() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dify"));
    c.env(
        "UV_CACHE_DIR",
        test_cache_dir().join("uv").to_string_lossy().into_owned(),
    );
    c.env_remove("RUST_LOG");
    c
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn init(dir: &Path, name: &str, category: &str) -> PathBuf {
    let out = dify()
        .current_dir(dir)
        .args([
            "plugin", "init", "--quick", "--name", name, "--author", AUTHOR,
        ])
        .args([
            "--description",
            &format!("A {category} plugin"),
            "--category",
            category,
        ])
        .args(["--allow-storage", "--storage-size", "2048"])
        .output()
        .expect("run dify");
    ok(out, &format!("init {category}"));
    dir.join(name)
}

fn package(dir: &Path, plugin: &Path) -> Vec<u8> {
    let out_file = dir.join(format!(
        "{}.difypkg",
        plugin.file_name().expect("name").to_string_lossy()
    ));
    let out = dify()
        .current_dir(dir)
        .args(["plugin", "package"])
        .arg(plugin)
        .arg("-o")
        .arg(&out_file)
        .output()
        .expect("run dify");
    ok(out, "package");
    std::fs::read(&out_file).expect("package written")
}

#[test]
fn init_every_category_packs_and_decodes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("tool", "tool"),
        ("llm", "model"),
        ("text-embedding", "model"),
        ("speech2text", "model"),
        ("moderation", "model"),
        ("rerank", "model"),
        ("tts", "model"),
        ("extension", "extension"),
        ("agent-strategy", "agent-strategy"),
        ("datasource", "datasource"),
        ("trigger", "trigger"),
    ];
    for (category, expected) in cases {
        let name = format!("my-{category}");
        let dir = init(tmp.path(), &name, category);
        for f in [
            "manifest.yaml",
            "main.py",
            "pyproject.toml",
            "requirements.txt",
            "_assets/icon.svg",
            "_assets/icon-dark.svg",
            "README.md",
            "PRIVACY.md",
            ".difyignore",
            ".env.example",
        ] {
            assert!(dir.join(f).is_file(), "{category}: {f} missing");
        }
        // What .difyignore keeps and drops.
        std::fs::create_dir_all(dir.join(".venv/lib")).expect("mkdir");
        std::fs::write(dir.join(".venv/lib/junk.py"), "x").expect("write");
        std::fs::write(dir.join("uv.lock"), "version = 1\n").expect("write");
        std::fs::write(dir.join("requirements.txt"), "dify_plugin>=0.9.0,<0.11.0\n")
            .expect("write");

        let bytes = package(tmp.path(), &dir);
        let pkg = plugind_package::decode(&bytes, &DecodeOptions::default())
            .unwrap_or_else(|e| panic!("{category}: decode: {e}"));
        assert_eq!(pkg.declaration.category().as_str(), expected, "{category}");
        assert_eq!(pkg.declaration.author, AUTHOR);
        assert_eq!(pkg.declaration.name, name);
        assert_eq!(pkg.declaration.meta.runner.version, "3.12");
        assert_eq!(pkg.declaration.meta.runner.entrypoint, "main");
        assert!(pkg.assets.contains_key("icon.svg"));
        plugind_package::validate_declaration(&pkg.declaration)
            .unwrap_or_else(|e| panic!("{category}: strict validation: {e:?}"));
        assert!(
            plugind_package::read_file(&bytes, "uv.lock").is_ok(),
            "{category}: uv.lock kept"
        );
        assert!(
            plugind_package::read_file(&bytes, ".venv/lib/junk.py").is_err(),
            "{category}: .venv dropped"
        );
        let storage = &pkg
            .declaration
            .resource
            .permission
            .as_ref()
            .expect("permission")["storage"];
        assert_eq!(storage["size"], 2048, "{category}");
        if category == "llm" {
            let models = pkg.declaration.model.as_ref().expect("model")["models"].clone();
            assert_eq!(models[0]["model"], "my-llm-chat");
        }
    }
    // The name is taken now: a second init fails and leaves the directory alone.
    let out = dify()
        .current_dir(tmp.path())
        .args([
            "plugin", "init", "--quick", "--name", "my-tool", "--author", AUTHOR,
        ])
        .args(["--description", "x", "--category", "tool"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    // Invalid profile → exit 1 and nothing created.
    let out = dify()
        .current_dir(tmp.path())
        .args([
            "plugin", "init", "--quick", "--name", "Bad Name", "--author", AUTHOR,
        ])
        .args(["--description", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(!tmp.path().join("Bad Name").exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".init-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging directories left: {leftovers:?}"
    );
}

#[test]
fn checksum_of_a_directory_equals_its_package() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = init(tmp.path(), "sum_me", "tool");
    let bytes = package(tmp.path(), &dir);
    let of = |p: &Path| {
        let out = ok(
            dify()
                .args(["plugin", "checksum"])
                .arg(p)
                .output()
                .expect("run"),
            "checksum",
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let from_dir = of(&dir);
    let from_pkg = of(&tmp.path().join("sum_me.difypkg"));
    assert_eq!(from_dir.len(), 64);
    assert_eq!(from_dir, from_pkg);
    assert_eq!(
        from_pkg,
        plugind_package::checksum(&bytes).expect("checksum")
    );

    let out = ok(
        dify()
            .args(["plugin", "module", "list"])
            .arg(tmp.path().join("sum_me.difypkg"))
            .output()
            .expect("run"),
        "module list",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Tools (provider sum_me)") && text.contains("- sum_me"),
        "{text}"
    );
    let out = ok(
        dify()
            .args(["plugin", "readme", "list"])
            .arg(&dir)
            .output()
            .expect("run"),
        "readme list",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("en_US"));
}

#[test]
fn package_refuses_an_invalid_manifest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = init(tmp.path(), "broken", "tool");
    let manifest = dir.join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(
        &manifest,
        text.replace("version: 0.0.1\ntype", "version: banana\ntype"),
    )
    .expect("write");
    let out = dify()
        .current_dir(tmp.path())
        .args(["plugin", "package"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!tmp.path().join("broken.difypkg").exists());

    std::fs::write(
        &manifest,
        text.replace("author: \"clitest\"", "author: \"Upper\""),
    )
    .expect("write");
    let out = dify()
        .current_dir(tmp.path())
        .args(["plugin", "package"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid") || err.contains("author"), "{err}");

    let out = dify()
        .args(["plugin", "package"])
        .arg(tmp.path().join("missing"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_in_stdio_mode_answers_a_tool_invoke() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = init(tmp.path(), "runner", "tool");
    package(tmp.path(), &dir);
    let mut child = dify()
        .current_dir(tmp.path())
        .args(["plugin", "run", "runner.difypkg", "-r", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        let req = json!({"invoke_id": "inv-1", "type": "tool", "action": "invoke_tool",
            "request": {"provider": "runner", "tool": "runner", "credentials": {},
                        "tool_parameters": {"text": "hello <run>"}}});
        writeln!(stdin, "{req}").expect("write");
        writeln!(stdin, "not json").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    let out = ok(out, "plugin run");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["type"], "plugin_ready");
    let mine: Vec<&Value> = lines.iter().filter(|l| l["invoke_id"] == "inv-1").collect();
    assert_eq!(mine[0]["type"], "plugin_response");
    assert_eq!(mine[0]["response"]["message"]["text"], "hello <run>");
    assert_eq!(mine.last().expect("end")["type"], "plugin_invoke_end");
    assert!(
        lines.iter().any(|l| l["type"] == "error"),
        "a bad line is answered with an error: {lines:?}"
    );
}

async fn daemon(dir: &Path, dify: &FakeDify) -> Daemon {
    let bin = daemon_bin();
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build -p plugind` (.ci/run builds every binary before the tests)",
        bin.display()
    );
    Daemon::start(&bin, DaemonOptions::new(dir), dify)
        .await
        .expect("daemon starts")
}

async fn upload_and_install(d: &Daemon, bytes: Vec<u8>) -> String {
    let client = d.client();
    let (status, resp) = client
        .upload_package(TENANT, bytes, false)
        .await
        .expect("upload");
    assert_eq!(resp["code"], 0, "upload: HTTP {status} {resp}");
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    let task = client
        .install_and_wait(TENANT, &uid, Duration::from_secs(600))
        .await
        .expect("install");
    assert_eq!(
        task["status"],
        "success",
        "install: {task}\n{}",
        d.log_tail(40)
    );
    uid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialised_tool_round_trips_through_the_daemon() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = init(tmp.path(), "echoer", "tool");
    let bytes = package(tmp.path(), &dir);
    let fake = FakeDify::start().await;
    let mut d = daemon(&tmp.path().join("state"), &fake).await;
    upload_and_install(&d, bytes).await;
    let (status, events) = d
        .client()
        .dispatch(
            TENANT,
            &format!("{AUTHOR}/echoer"),
            "tool/invoke",
            json!({"user_id": "u-1", "data": {"provider": "echoer", "tool": "echoer",
                   "credentials": {}, "credential_type": "api-key",
                   "tool_parameters": {"text": "round trip"}}}),
        )
        .await
        .expect("dispatch");
    assert_eq!(status, 200, "{events:?}");
    assert!(events.iter().all(|e| e["code"] == 0), "{events:?}");
    assert_eq!(events[0]["data"]["type"], "text");
    assert_eq!(events[0]["data"]["message"]["text"], "round trip");
    assert_eq!(
        events[1]["data"]["message"]["json_object"]["text"],
        "round trip"
    );
    d.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialised_llm_streams_through_the_daemon() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = init(tmp.path(), "chatty", "llm");
    let bytes = package(tmp.path(), &dir);
    let fake = FakeDify::start().await;
    let mut d = daemon(&tmp.path().join("state"), &fake).await;
    upload_and_install(&d, bytes).await;
    let (status, events) = d
        .client()
        .dispatch(
            TENANT,
            &format!("{AUTHOR}/chatty"),
            "llm/invoke",
            json!({"user_id": "u-1", "data": {
                "provider": "chatty", "model": "chatty-chat", "model_type": "llm",
                "credentials": {"api_key": "any key works"},
                "prompt_messages": [{"role": "user", "content": "Say hello"}],
                "model_parameters": {"temperature": 0.1}, "stop": null, "tools": null,
                "stream": true}}),
        )
        .await
        .expect("dispatch");
    assert_eq!(status, 200, "{events:?}");
    assert!(events.len() > 2, "streamed in several chunks: {events:?}");
    assert!(events.iter().all(|e| e["code"] == 0), "{events:?}");
    let text: String = events
        .iter()
        .map(|e| {
            assert_eq!(e["data"]["model"], "chatty-chat", "{e}");
            e["data"]["delta"]["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(text.starts_with("Hello from chatty!"), "{text}");
    let last = events.last().expect("last");
    assert_eq!(last["data"]["delta"]["finish_reason"], "stop");

    let (_, events) = d
        .client()
        .dispatch(
            TENANT,
            &format!("{AUTHOR}/chatty"),
            "model/validate_provider_credentials",
            json!({"user_id": "u-1", "data": {"provider": "chatty",
                   "credentials": {"api_key": "whatever"}}}),
        )
        .await
        .expect("dispatch");
    assert_eq!(events[0]["data"]["result"], true, "{events:?}");
    d.stop().await.expect("stop");
}

/// Every template loads in the real SDK: `plugin run` reaches `plugin_ready` (the SDK resolves
/// every declared class before its first heartbeat).
#[test]
fn every_category_starts_on_the_real_sdk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for category in [
        "text-embedding",
        "speech2text",
        "moderation",
        "rerank",
        "tts",
        "extension",
        "agent-strategy",
        "datasource",
        "trigger",
    ] {
        let name = format!("s-{category}");
        let dir = init(tmp.path(), &name, category);
        package(tmp.path(), &dir);
        let out = dify()
            .current_dir(tmp.path())
            .args(["plugin", "run", &format!("{name}.difypkg"), "-r", "json"])
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let out = ok(out, &format!("run {category}"));
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_owned)
            .unwrap_or_default();
        assert!(first.contains("plugin_ready"), "{category}: {first}");
    }
}

/// `plugin cleanup --db` only reads the database: on a database nobody migrated it says so (and
/// creates no tables); after `dify migrate` it keeps the newest version and lists the older one.
#[test]
fn cleanup_with_db_reads_without_migrating() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let cwd = tmp.path().join("cwd");
    let sum = "a".repeat(64);
    for version in ["0.0.1", "0.0.2"] {
        std::fs::create_dir_all(cwd.join("tester").join(format!("echo-{version}@{sum}")))
            .expect("mkdir");
    }
    let run = |args: &[&str]| {
        let mut c = dify();
        c.env("PLUGIND_DATA_DIR", &data);
        for var in ["DB_TYPE", "DB_HOST", "DB_PORT", "DB_DATABASE"] {
            c.env_remove(var);
        }
        c.args(args).output().expect("run dify")
    };
    let cwd_arg = cwd.to_str().expect("utf-8");
    let cleanup = ["plugin", "cleanup", "-p", cwd_arg, "--db", "--dry-run"];
    let out = run(&cleanup);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("dify migrate"),
        "an unmigrated database is not migrated by cleanup: {stderr}"
    );

    ok(run(&["migrate"]), "migrate");
    let out = ok(run(&cleanup), "cleanup --db after migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("echo-0.0.1@{sum}")) && !stdout.contains("echo-0.0.2"),
        "{stdout}"
    );
    assert!(
        cwd.join("tester")
            .join(format!("echo-0.0.1@{sum}"))
            .is_dir(),
        "dry run"
    );
}
