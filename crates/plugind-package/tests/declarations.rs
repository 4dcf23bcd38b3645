//! Golden tests of the declaration JSON (PSC §1.3–§1.7): each fixture plugin under
//! `tests/fixtures/<kind>/` is packed with `pack_dir`, decoded, and its declaration compared
//! with `tests/golden/<kind>.json`. `UPDATE_EXPECT=1 cargo test -p plugind-package --test
//! declarations` rewrites the golden files; review the diff by eye, they are what Dify reads.
//!
//! Also: category exclusivity messages, the size-limit message, readmes, strict validation.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use plugind_entities::{PluginCategory, PluginDeclaration};
use plugind_package::{decode, pack_dir, readmes, validate_declaration, DecodeOptions, Package};
use zip::write::SimpleFileOptions;

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn decode_fixture(kind: &str) -> (Vec<u8>, Package) {
    let bytes = pack_dir(&tests_dir().join("fixtures").join(kind)).expect("pack");
    let pkg =
        decode(&bytes, &DecodeOptions::default()).unwrap_or_else(|e| panic!("decode {kind}: {e}"));
    (bytes, pkg)
}

/// Compares `actual` with the checked-in file, or rewrites it when `UPDATE_EXPECT=1`.
fn expect_file(path: &Path, actual: &str) {
    if std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the decoded declaration (first difference at line {}).\n\
             Expected: {:?}\nActual:   {:?}\nRun with UPDATE_EXPECT=1 to accept.\n--- actual ---\n{actual}",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first),
        );
    }
}

fn golden(kind: &str) -> PluginDeclaration {
    let (_, pkg) = decode_fixture(kind);
    let json = serde_json::to_string_pretty(&pkg.declaration).expect("json") + "\n";
    expect_file(
        &tests_dir().join("golden").join(format!("{kind}.json")),
        &json,
    );
    // The JSON form reads back into the same declaration, and is valid under the strict rules.
    let back: PluginDeclaration = serde_json::from_str(&json).expect("json back");
    assert_eq!(back, pkg.declaration);
    if let Err(errors) = validate_declaration(&pkg.declaration) {
        panic!(
            "{kind} fixture fails strict validation:\n{}",
            errors.join("\n")
        );
    }
    pkg.declaration
}

#[test]
fn golden_tool() {
    let d = golden("tool");
    assert_eq!(d.category(), PluginCategory::Tool);
    assert!(d.endpoint.is_some());
}

#[test]
fn golden_model() {
    let d = golden("model");
    assert_eq!(d.category(), PluginCategory::Model);
}

#[test]
fn golden_extension() {
    let d = golden("extension");
    assert_eq!(d.category(), PluginCategory::Extension);
}

#[test]
fn golden_agent() {
    let d = golden("agent");
    assert_eq!(d.category(), PluginCategory::AgentStrategy);
}

#[test]
fn golden_datasource() {
    let d = golden("datasource");
    assert_eq!(d.category(), PluginCategory::Datasource);
}

#[test]
fn golden_trigger() {
    let d = golden("trigger");
    assert_eq!(d.category(), PluginCategory::Trigger);
}

// ---------------------------------------------------------------------------------------------
// Packages built in memory

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        out.start_file(*name, SimpleFileOptions::default())
            .expect("start");
        out.write_all(content.as_bytes()).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

fn manifest(plugins: &str) -> String {
    format!(
        "version: 0.0.1\ntype: plugin\nauthor: tester\nname: x\nlabel: {{en_US: X}}\n\
         description: {{en_US: X}}\nicon: icon.svg\ncreated_at: 2025-01-01T00:00:00Z\n\
         resource: {{memory: 1048576}}\nplugins: {{{plugins}}}\n\
         meta: {{version: 0.0.1, arch: [amd64], runner: {{language: python, version: '3.12', entrypoint: main}}}}\n"
    )
}

const TOOL_PROVIDER: &str =
    "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\ntools: []\n";
const MODEL_PROVIDER: &str = "provider: x\nlabel: {en_US: X}\nsupported_model_types: [llm]\nconfigurate_methods: [predefined-model]\n";
const ENDPOINT_PROVIDER: &str = "endpoints: []\n";
const AGENT_PROVIDER: &str =
    "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\nstrategies: []\n";
const DATASOURCE_PROVIDER: &str = "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\nprovider_type: website_crawl\ndatasources: []\n";
const TRIGGER_PROVIDER: &str = "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\nsubscription_schema: []\nevents: []\n";

fn package_with(kinds: &[&str]) -> Vec<u8> {
    let mut lists = Vec::new();
    let mut files = Vec::new();
    for kind in kinds {
        let (key, content) = match *kind {
            "tool" => ("tools", TOOL_PROVIDER),
            "model" => ("models", MODEL_PROVIDER),
            "endpoint" => ("endpoints", ENDPOINT_PROVIDER),
            "agent" => ("agent_strategies", AGENT_PROVIDER),
            "datasource" => ("datasources", DATASOURCE_PROVIDER),
            _ => ("triggers", TRIGGER_PROVIDER),
        };
        let path = format!("provider/{kind}.yaml");
        lists.push(format!("{key}: [{path}]"));
        files.push((path, content.to_owned()));
    }
    let manifest = manifest(&lists.join(", "));
    let mut entries: Vec<(&str, &str)> =
        vec![("manifest.yaml", &manifest), ("_assets/icon.svg", "<svg/>")];
    entries.extend(files.iter().map(|(p, c)| (p.as_str(), c.as_str())));
    zip_of(&entries)
}

fn decode_err(bytes: &[u8]) -> String {
    decode(bytes, &DecodeOptions::default())
        .expect_err("must fail")
        .to_string()
}

#[test]
fn category_exclusivity_messages() {
    let cases: [(&[&str], &str); 6] = [
        (&[], "at least one of endpoint, model, tool, agent_strategy, trigger, or datasource must be provided"),
        (&["model", "tool"], "model and datasource, tool, endpoint, trigger, or agent_strategy cannot be provided at the same time"),
        (&["model", "endpoint"], "model and datasource, tool, endpoint, trigger, or agent_strategy cannot be provided at the same time"),
        (&["agent", "endpoint"], "agent_strategy and tool, model, endpoint, trigger, or datasource cannot be provided at the same time"),
        (&["datasource", "tool"], "datasource and tool, model, endpoint, trigger, or agent_strategy cannot be provided at the same time"),
        (&["trigger", "endpoint"], "trigger and tool, model, endpoint, or agent_strategy cannot be provided at the same time"),
    ];
    for (kinds, message) in cases {
        assert_eq!(
            decode_err(&package_with(kinds)),
            format!("{message}\nillegal plugin manifest"),
            "{kinds:?}"
        );
    }
    // The legal combination, and each kind alone, with its category.
    let pkg = decode(
        &package_with(&["tool", "endpoint"]),
        &DecodeOptions::default(),
    )
    .expect("tool+endpoint");
    assert_eq!(pkg.declaration.category(), PluginCategory::Tool);
    for (kind, category) in [
        ("tool", PluginCategory::Tool),
        ("model", PluginCategory::Model),
        ("endpoint", PluginCategory::Extension),
        ("agent", PluginCategory::AgentStrategy),
        ("datasource", PluginCategory::Datasource),
        ("trigger", PluginCategory::Trigger),
    ] {
        let pkg = decode(&package_with(&[kind]), &DecodeOptions::default()).expect(kind);
        assert_eq!(pkg.declaration.category(), category, "{kind}");
    }
}

#[test]
fn size_limit_message_names_limit_and_setting() {
    let (bytes, _) = decode_fixture("extension");
    let opts = DecodeOptions {
        max_uncompressed_size: 100,
        ..Default::default()
    };
    let err = decode(&bytes, &opts).expect_err("too large").to_string();
    assert_eq!(
        err,
        "plugin package size is too large, please ensure the uncompressed size is less than 100 \
         bytes (raise MAX_PLUGIN_PACKAGE_SIZE to allow larger packages)"
    );
}

#[test]
fn readmes_by_language() {
    let (bytes, _) = decode_fixture("tool");
    let r = readmes(&bytes).expect("readmes");
    assert_eq!(r.keys().collect::<Vec<_>>(), ["en_US", "zh_Hans"]);
    assert_eq!(r["en_US"], "# Web Search\n\nSearches the web.\n");
    assert_eq!(r["zh_Hans"], "# 网页搜索\n");
    // No README.md → upstream's message.
    let (bytes, _) = decode_fixture("extension");
    assert_eq!(
        readmes(&bytes).expect_err("no readme").to_string(),
        "en_US readme not found"
    );
}

#[test]
fn nested_file_errors_name_the_file() {
    let manifest = manifest("tools: [provider/tool.yaml]");
    let provider = "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\ntools: [tools/missing.yaml]\n";
    let bytes = zip_of(&[
        ("manifest.yaml", &manifest),
        ("provider/tool.yaml", provider),
    ]);
    assert_eq!(
        decode_err(&bytes),
        "failed to read tool file: tools/missing.yaml"
    );

    let provider = "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\ntools: [tools/bad.yaml]\n";
    let bytes = zip_of(&[
        ("manifest.yaml", &manifest),
        ("provider/tool.yaml", provider),
        ("tools/bad.yaml", "identity: [not, a, mapping]\n"),
    ]);
    assert_eq!(
        decode_err(&bytes),
        "failed to unmarshal tool file: tools/bad.yaml"
    );

    let manifest = manifest_models();
    let bytes = zip_of(&[
        ("manifest.yaml", &manifest),
        (
            "provider/m.yaml",
            "provider: m\nmodels:\n  llm:\n    position: models/llm/_position.yaml\n",
        ),
    ]);
    assert_eq!(
        decode_err(&bytes),
        "failed to read llm position file: models/llm/_position.yaml"
    );

    let bytes = zip_of(&[
        ("manifest.yaml", &manifest),
        (
            "provider/m.yaml",
            "provider: m\nmodels:\n  llm:\n    predefined: ['models/*.yaml']\n",
        ),
        (
            "models/a.yaml",
            "model: a\nparameter_rules:\n  - name: t\n    use_template: nope\n",
        ),
    ]);
    assert_eq!(
        decode_err(&bytes),
        "failed to unmarshal model file: models/a.yaml"
    );
}

fn manifest_models() -> String {
    manifest("models: [provider/m.yaml]")
}

#[test]
fn lenient_upload_path_accepts_what_strict_validation_rejects() {
    // Bad tag, bad parameter type, missing en_US label: all accepted on upload…
    let manifest = manifest("tools: [provider/tool.yaml]")
        .replace("label: {en_US: X}\n", "label: {zh_Hans: X}\n")
        + "tags: [search, not-a-tag]\n";
    let provider = concat!(
        "identity: {author: tester, name: x, label: {en_US: X}, icon: icon.svg}\n",
        "tools:\n",
        "  - identity: {author: tester, name: t, label: {en_US: T}}\n",
        "    description: {human: {en_US: h}, llm: l}\n",
        "    parameters:\n",
        "      - {name: p, type: date-picker, form: llm, label: {en_US: P}, human_description: {en_US: P}}\n",
    );
    let bytes = zip_of(&[
        ("manifest.yaml", &manifest),
        ("provider/tool.yaml", provider),
        ("_assets/icon.svg", "<svg/>"),
    ]);
    let pkg = decode(&bytes, &DecodeOptions::default()).expect("lenient upload path");
    // …and each reported by strict validation with upstream's validator wording.
    let errors = validate_declaration(&pkg.declaration).expect_err("strict");
    let ns = "PluginDeclaration.PluginDeclarationWithoutAdvancedFields";
    assert_eq!(
        errors,
        [
            format!("Key: '{ns}.Label.EnUS' Error:Field validation for 'EnUS' failed on the 'required' tag"),
            format!("Key: '{ns}.Tags[1]' Error:Field validation for 'Tags[1]' failed on the 'plugin_tag' tag"),
            // The provider identity inherits the plugin's tags (PSC §1.7), bad one included.
            "Key: 'PluginDeclaration.Tool.Identity.Tags[1]' Error:Field validation for 'Tags[1]' failed on the 'plugin_tag' tag".to_owned(),
            "Key: 'PluginDeclaration.Tool.Tools[0].Parameters[0].Type' Error:Field validation for 'Type' failed on the 'tool_parameter_type' tag".to_owned(),
        ]
    );
}

#[test]
fn strict_validation_of_scopes_enums_and_required_fields() {
    let (_, pkg) = decode_fixture("trigger");
    let mut d = pkg.declaration;
    d.meta.arch.push("riscv".into());
    d.meta.runner.language = "go".into();
    d.repo = Some("not a url".into());
    let trigger = d.trigger.as_mut().expect("trigger");
    trigger["identity"]["name"] = "bad name!".into();
    trigger["events"][1]["parameters"][0]["type"] = "date".into();
    let errors = validate_declaration(&d).expect_err("strict");
    let ns = "PluginDeclaration.PluginDeclarationWithoutAdvancedFields";
    assert_eq!(
        errors,
        [
            format!("Key: '{ns}.Meta.Arch[2]' Error:Field validation for 'Arch[2]' failed on the 'is_available_arch' tag"),
            format!("Key: '{ns}.Meta.Runner.Language' Error:Field validation for 'Language' failed on the 'is_available_language' tag"),
            format!("Key: '{ns}.Repo' Error:Field validation for 'Repo' failed on the 'url' tag"),
            "Key: 'PluginDeclaration.Trigger.Identity.Name' Error:Field validation for 'Name' failed on the 'tool_provider_identity_name' tag".to_owned(),
            "Key: 'PluginDeclaration.Trigger.Events[1].Parameters[0].Type' Error:Field validation for 'Type' failed on the 'event_parameter_type' tag".to_owned(),
        ]
    );

    let (_, pkg) = decode_fixture("tool");
    let mut d = pkg.declaration;
    let tool = d.tool.as_mut().expect("tool");
    // A model-selector scope with no model scope in it, a scope on a type without scopes.
    tool["tools"][1]["parameters"][3]["scope"] = "chat&workflow".into();
    tool["tools"][1]["parameters"][0]["scope"] = "llm".into();
    tool["credentials_schema"][0]["type"] = "any".into();
    let errors = validate_declaration(&d).expect_err("strict");
    assert_eq!(
        errors,
        [
            "Key: 'PluginDeclaration.Tool.CredentialsSchema[0].Type' Error:Field validation for 'Type' failed on the 'credential_type' tag",
            "Key: 'PluginDeclaration.Tool.Tools[1].Parameters[0].Scope' Error:Field validation for 'Scope' failed on the 'is_scope' tag",
            "Key: 'PluginDeclaration.Tool.Tools[1].Parameters[3].Scope' Error:Field validation for 'Scope' failed on the 'is_scope' tag",
        ]
    );

    let (_, pkg) = decode_fixture("model");
    let mut d = pkg.declaration;
    let model = d.model.as_mut().expect("model");
    model["supported_model_types"][1] = "text_embedding".into();
    model["provider_credential_schema"]["credential_form_schemas"][0]["type"] = "password".into();
    let errors = validate_declaration(&d).expect_err("strict");
    assert_eq!(
        errors,
        [
            "Key: 'PluginDeclaration.Model.SupportedModelTypes[1]' Error:Field validation for 'SupportedModelTypes[1]' failed on the 'model_type' tag",
            "Key: 'PluginDeclaration.Model.ProviderCredentialSchema.CredentialFormSchemas[0].Type' Error:Field validation for 'Type' failed on the 'model_provider_form_type' tag",
        ]
    );
}

#[test]
fn inline_endpoint_that_does_not_decode_ends_the_list() {
    let manifest = manifest("endpoints: [provider/e.yaml]");
    let provider = "endpoints:\n  - {path: /a, method: GET}\n  - {path: [1], method: GET}\n  - {path: /c, method: GET}\n";
    let bytes = zip_of(&[("manifest.yaml", &manifest), ("provider/e.yaml", provider)]);
    let pkg = decode(&bytes, &DecodeOptions::default()).expect("decode");
    let endpoints = &pkg.declaration.endpoint.expect("endpoint")["endpoints"];
    assert_eq!(endpoints.as_array().map(Vec::len), Some(1));
    assert_eq!(endpoints[0]["path"], "/a");
}

#[test]
fn inline_manifest_provider_is_overwritten_by_plugins_file() {
    let manifest = manifest("tools: [provider/tool.yaml]")
        + "tool:\n  identity: {author: inline, name: inline, label: {en_US: I}, icon: icon.svg}\n";
    let bytes = zip_of(&[
        ("manifest.yaml", &manifest),
        ("provider/tool.yaml", TOOL_PROVIDER),
        ("_assets/icon.svg", "<svg/>"),
    ]);
    let pkg = decode(&bytes, &DecodeOptions::default()).expect("decode");
    assert_eq!(pkg.declaration.tool.expect("tool")["identity"]["name"], "x");

    // Inline only: kept, with defaults filled.
    let manifest = self::manifest("")
        + "tool:\n  identity: {author: inline, name: inline, label: {en_US: I}, icon: icon.svg}\n  tools: [ignored/file.yaml]\n";
    let bytes = zip_of(&[("manifest.yaml", &manifest), ("_assets/icon.svg", "<svg/>")]);
    let pkg = decode(&bytes, &DecodeOptions::default()).expect("decode");
    let tool = pkg.declaration.tool.expect("tool");
    assert_eq!(tool["identity"]["name"], "inline");
    assert_eq!(tool["identity"]["description"]["en_US"], "X");
    assert_eq!(tool["tools"], serde_json::json!([]));
}

/// A pricing value whose written-out form would be enormous (`1e100000000000` once made the
/// decoder allocate 100 GB and abort the daemon) is refused with its reason, as is a value that
/// is no number; sane spellings still decode.
#[test]
fn pricing_values_are_bounded_decimals() {
    let model_package = |input: &str| {
        zip_of(&[
            ("manifest.yaml", &manifest_models()),
            (
                "provider/m.yaml",
                "provider: m\nmodels:\n  llm:\n    predefined: ['models/*.yaml']\n",
            ),
            (
                "models/a.yaml",
                &format!("model: a\nmodel_type: llm\npricing:\n  input: {input}\n  unit: '0.001'\n  currency: USD\n"),
            ),
        ])
    };
    for (input, reason) in [
        ("'1e100000000000'", "more than 400 digits"),
        ("'-1e-100000000000'", "more than 400 digits"),
        ("'1e401'", "more than 400 digits"),
        ("'NaN'", "can't convert to decimal"),
        ("'1e'", "can't convert to decimal"),
        ("'-'", "can't convert to decimal"),
        (".inf", "can't convert to decimal"),
    ] {
        let err = decode_err(&model_package(input));
        assert!(
            err.starts_with("failed to unmarshal model file: models/a.yaml: ")
                && err.contains("pricing value")
                && err.contains(reason),
            "{input}: {err}"
        );
    }
    let long = "9".repeat(100_000);
    let err = decode_err(&model_package(&format!("'{long}'")));
    assert!(
        err.contains("more than 400 digits") && err.len() < 400,
        "long values are cut in the message: {err}"
    );
    for (input, expected) in [
        ("'2.5e-3'", "0.0025"),
        ("'1e399'", &format!("1{}", "0".repeat(399))),
    ] {
        let pkg = decode(&model_package(input), &DecodeOptions::default()).expect("decode");
        let json = serde_json::to_value(&pkg.declaration).expect("json");
        let models = &json["model"]["models"];
        assert_eq!(models[0]["pricing"]["input"], *expected, "{input}: {json}");
    }
}
