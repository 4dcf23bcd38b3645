//! End-to-end tests of the package crate against packages built and signed at run time
//! (upstream's own signed package: `upstream_package.rs`).

use std::io::{Cursor, Write};
use std::path::Path;

use plugind_entities::PluginCategory;
use plugind_package::*;
use zip::write::SimpleFileOptions;

mod support;

fn fixture() -> Vec<u8> {
    support::signed_package().to_vec()
}

fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        out.start_file(*name, SimpleFileOptions::default())
            .expect("start");
        out.write_all(content).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

const TOOL_MANIFEST: &str = "version: 0.1.0\ntype: plugin\nauthor: tester\nname: echo\nicon: icon.svg\n\
label: {en_US: Echo}\ndescription: {en_US: Echoes text}\ntags: [utilities]\ncreated_at: 2025-01-08T15:22:00.5Z\n\
resource: {memory: 1048576, permission: {tool: {enabled: true}}}\nplugins: {tools: [provider/x.yaml]}\n\
meta: {version: 0.0.1, arch: [amd64], runner: {language: python, version: '3.12', entrypoint: main}}\n";

fn write_tool_plugin(dir: &Path) {
    let files: [(&str, &str); 8] = [
        ("manifest.yaml", TOOL_MANIFEST),
        (
            "provider/x.yaml",
            "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\n\
             credentials_for_provider:\n  api_key: {type: secret-input, required: true, label: {en_US: Key}}\n\
             tools: [tools/x.yaml]\nextra: {python: {source: provider/x.py}}\n",
        ),
        ("tools/x.yaml", "identity: {author: tester, name: x, label: {en_US: X}}\ndescription: {human: {en_US: h}, llm: l}\nparameters: []\n"),
        ("_assets/icon.svg", "<svg/>"),
        ("main.py", "print('hi')\n"),
        (".difyignore", "__pycache__/\n.venv/\n*.pyc\n"),
        ("__pycache__/main.cpython-312.pyc", "x"),
        ("tools/stale.pyc", "x"),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
}

#[test]
fn signed_package_decodes_and_verifies_with_its_key_only() {
    let pkg = decode(&fixture(), &support::with_key()).expect("decode");
    let sum = support::signed_checksum();
    assert_eq!(pkg.uid.as_str(), format!("tester/agent:0.0.14@{sum}"));
    assert_eq!(pkg.checksum, sum);
    assert_eq!(pkg.declaration.category(), PluginCategory::AgentStrategy);
    assert!(pkg.verified && pkg.declaration.verified);
    let verification = serde_json::to_string(&pkg.verification).expect("json");
    assert_eq!(verification, r#"{"authorized_category":"langgenius"}"#);
    // Without the key (the official key alone) it is not verified.
    let pkg = decode(&fixture(), &DecodeOptions::default()).expect("decode");
    assert!(!pkg.verified && pkg.verification.is_none());
}

#[test]
fn rezipped_copy_verifies_but_one_changed_byte_does_not() {
    support::assert_signature_survives_rezip_not_a_changed_byte(
        &fixture(),
        &support::with_key(),
        &support::signed_checksum(),
    );
}

#[test]
fn read_file_and_public_keys() {
    let main = read_file(&fixture(), "main.py").expect("main.py");
    assert_eq!(
        main,
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agent/main.py"))
            .expect("fixture main.py")
    );
    assert_eq!(
        read_file(&fixture(), "nope.md")
            .expect_err("missing")
            .to_string(),
        "file not found: nope.md"
    );

    let pem = public_key_to_pem(&support::key().1).expect("pem");
    assert_eq!(
        parse_public_key_pem(&pem.replace('\n', "\r\n")).expect("crlf"),
        support::key().1
    );
    assert!(parse_public_key_pem(&format!("{pem}\n\n")).is_err());
    assert!(parse_public_key_pem("garbage").is_err());
}

#[test]
fn malformed_packages_are_errors() {
    let err = decode(b"definitely not a zip", &DecodeOptions::default()).expect_err("not zip");
    assert_eq!(err.to_string(), "difypkg: not a valid difypkg file");

    let err = decode(&make_zip(&[("main.py", b"x")]), &DecodeOptions::default())
        .expect_err("no manifest");
    assert!(err.to_string().contains("manifest.yaml"), "{err}");

    let no_author = TOOL_MANIFEST.replace("author: tester\n", "");
    let zip = make_zip(&[
        ("manifest.yaml", no_author.as_bytes()),
        ("provider/x.yaml", b"identity: {name: x}\n"),
    ]);
    let err = decode(&zip, &DecodeOptions::default()).expect_err("no author");
    assert_eq!(
        err.to_string(),
        "author must be alphanumeric and less than 64 characters: ^[a-z0-9_-]{1,64}$"
    );

    let no_name = TOOL_MANIFEST.replace("name: echo\n", "");
    let zip = make_zip(&[
        ("manifest.yaml", no_name.as_bytes()),
        ("provider/x.yaml", b"identity: {name: x}\n"),
    ]);
    let err = decode(&zip, &DecodeOptions::default()).expect_err("no name");
    assert!(
        err.to_string()
            .starts_with("plugin_unique_identifier is not valid: tester/:0.1.0@"),
        "{err}"
    );

    let zip = make_zip(&[("manifest.yaml", TOOL_MANIFEST.as_bytes())]);
    let err = decode(&zip, &DecodeOptions::default()).expect_err("missing provider file");
    assert_eq!(err.to_string(), "failed to read tool file: provider/x.yaml");

    let zip = make_zip(&[
        ("manifest.yaml", TOOL_MANIFEST.as_bytes()),
        ("provider/x.yaml", b"identity: [unclosed\n"),
    ]);
    let err = decode(&zip, &DecodeOptions::default()).expect_err("bad provider yaml");
    assert_eq!(
        err.to_string(),
        "failed to unmarshal plugin file: provider/x.yaml"
    );

    let no_plugins = TOOL_MANIFEST.replace("plugins: {tools: [provider/x.yaml]}\n", "");
    let err = decode(
        &make_zip(&[("manifest.yaml", no_plugins.as_bytes())]),
        &DecodeOptions::default(),
    )
    .expect_err("none");
    assert!(
        err.to_string()
            .ends_with("must be provided\nillegal plugin manifest"),
        "{err}"
    );

    let both = TOOL_MANIFEST.replace(
        "{tools: [provider/x.yaml]}",
        "{tools: [provider/x.yaml], models: [provider/m.yaml]}",
    );
    let zip = make_zip(&[
        ("manifest.yaml", both.as_bytes()),
        ("provider/x.yaml", b"identity: {name: x}\n"),
        ("provider/m.yaml", b"provider: m\n"),
    ]);
    let err = decode(&zip, &DecodeOptions::default()).expect_err("exclusive");
    assert!(
        err.to_string()
            .starts_with("model and datasource, tool, endpoint"),
        "{err}"
    );

    let dup = make_zip(&[
        ("manifest.yaml", TOOL_MANIFEST.as_bytes()),
        ("manifest.yamx", b"other"),
    ]);
    let mut dup = dup;
    for i in 0..dup.len().saturating_sub(12) {
        if &dup[i..i + 13] == b"manifest.yamx" {
            dup[i + 12] = b'l';
        }
    }
    assert!(
        zip::ZipArchive::new(Cursor::new(&dup)).is_ok(),
        "still a readable zip"
    );
    let err = decode(&dup, &DecodeOptions::default()).expect_err("duplicate names");
    assert_eq!(err.to_string(), "difypkg: duplicate file names in package");

    let uuid = TOOL_MANIFEST.replace("author: tester", "author: 0123456789abcdef0123456789abcdef");
    let zip = make_zip(&[
        ("manifest.yaml", uuid.as_bytes()),
        ("provider/x.yaml", b"identity: {name: x}\n"),
    ]);
    assert_eq!(
        decode(&zip, &DecodeOptions::default())
            .expect_err("uuid")
            .to_string(),
        "cannot set author to an UUID"
    );
}

#[test]
fn uncompressed_size_limit() {
    let opts = DecodeOptions {
        max_uncompressed_size: 1000,
        ..DecodeOptions::default()
    };
    let err = decode(&fixture(), &opts).expect_err("too large");
    assert_eq!(
        err.to_string(),
        "plugin package size is too large, please ensure the uncompressed size is less than 1000 \
         bytes (raise MAX_PLUGIN_PACKAGE_SIZE to allow larger packages)"
    );
}

#[test]
fn extract_refuses_escaping_entries_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = tmp.path().join("work");
    for bad in ["../evil.txt", "a/../../evil.txt", "/tmp/plugind-evil.txt"] {
        let zip = make_zip(&[("ok.txt", b"fine"), (bad, b"evil")]);
        let dst = base.join("plugin");
        let err = extract_to(&zip, &dst).expect_err("escape");
        assert!(
            err.to_string()
                .starts_with("illegal file path in plugin package:"),
            "{err}"
        );
        assert!(!dst.exists());
        assert!(!tmp.path().join("evil.txt").exists() && !base.join("evil.txt").exists());
        assert!(
            std::fs::read_dir(&base)
                .map(|mut d| d.next().is_none())
                .unwrap_or(true),
            "no leftovers"
        );
    }

    let dst = base.join("agent");
    extract_to(&fixture(), &dst).expect("extract");
    assert!(dst.join("manifest.yaml").is_file() && dst.join("_assets/icon.svg").is_file());
    assert!(
        extract_to(&fixture(), &dst).is_err(),
        "non-empty destination is refused"
    );
    assert_eq!(
        std::fs::read_dir(&base).expect("ls").count(),
        1,
        "no temp dirs left"
    );
}

#[test]
fn pack_dir_round_trip_and_icon_remap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_tool_plugin(tmp.path());
    let bytes = pack_dir(tmp.path()).expect("pack");

    let archive = zip::ZipArchive::new(Cursor::new(&bytes)).expect("zip");
    let names: Vec<&str> = archive.file_names().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries sorted by path");
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| !n.contains("pycache") && !n.ends_with(".pyc")),
        "{names:?}"
    );

    let pkg = decode(&bytes, &DecodeOptions::default()).expect("decode");
    assert_eq!(
        pkg.uid.as_str(),
        format!("tester/echo:0.1.0@{}", checksum(&bytes).expect("checksum"))
    );
    assert_eq!(pkg.declaration.category(), PluginCategory::Tool);
    assert_eq!(pkg.declaration.created_at, "2025-01-08T15:22:00.5Z");
    assert!(!pkg.verified && pkg.verification.is_none());
    let tool = pkg.declaration.tool.clone().expect("tool");
    assert_eq!(tool["tools"][0]["identity"]["name"], "x");
    assert_eq!(tool["credentials_schema"][0]["name"], "api_key");
    assert_eq!(tool["credentials_schema"][0]["type"], "secret-input");
    assert_eq!(tool["identity"]["description"]["en_US"], "Echoes text");
    assert_eq!(tool["identity"]["tags"][0], "utilities");
    assert!(tool.get("extra").is_none());

    let mut decl = pkg.declaration.clone();
    let uploaded = remap_icons(&mut decl, &pkg.assets).expect("remap");
    let id = asset_id("icon.svg", b"<svg/>");
    assert_eq!(id.len(), 64 + 4);
    assert!(id.ends_with(".svg"));
    assert_eq!(decl.icon, id);
    assert_eq!(
        decl.tool.as_ref().map(|t| t["identity"]["icon"].clone()),
        Some(id.clone().into())
    );
    assert_eq!(uploaded, vec![(id, b"<svg/>".to_vec())]);

    let mut missing = pkg.declaration.clone();
    missing.icon_dark = "dark.svg".into();
    assert_eq!(
        remap_icons(&mut missing, &pkg.assets)
            .expect_err("missing")
            .to_string(),
        "file not found: dark.svg"
    );
}

#[test]
fn model_provider_expands_predefined_globs() {
    let manifest =
        TOOL_MANIFEST.replace("{tools: [provider/x.yaml]}", "{models: [provider/m.yaml]}");
    let zip = make_zip(&[
        ("manifest.yaml", manifest.as_bytes()),
        (
            "provider/m.yaml",
            b"provider: m\nmodels:\n  llm:\n    position: models/llm/_position.yaml\n    predefined: ['models/llm/*.yaml']\n  unknown:\n    predefined: ['*']\n",
        ),
        ("models/llm/_position.yaml", b"- gpt\n"),
        ("models/llm/gpt.yaml", b"model: gpt\nmodel_type: llm\nmodel_properties: {1: one}\n"),
        ("models/llm/sub/nested.yaml", b"model: nested\n"),
    ]);
    let pkg = decode(&zip, &DecodeOptions::default()).expect("decode");
    assert_eq!(pkg.declaration.category(), PluginCategory::Model);
    let model = pkg.declaration.model.expect("model");
    assert_eq!(model["models"].as_array().map(Vec::len), Some(1));
    assert_eq!(model["models"][0]["model_properties"]["1"], "one");
    assert_eq!(model["position"]["llm"][0], "gpt");
    assert_eq!(model["description"]["en_US"], "Echoes text");
}
