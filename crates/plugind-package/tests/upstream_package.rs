//! Upstream's own signed marketplace package (`langgenius-agent_0.0.14.difypkg`) and official
//! public key, which live beside the repository in `../shared/fixtures/upstream/` on the project's
//! machines only. Built only with the feature `upstream-fixtures` (`.ci/run` enables it when the
//! fixture is there); everything else about signing and decoding is tested on packages built at
//! run time.

use std::path::{Path, PathBuf};

use plugind_entities::PluginCategory;
use plugind_package::*;

mod support;

const AGENT_CHECKSUM: &str = "26958a0e80a10655ce73812bdb7c35a66ce7b16f5ac346d298bda17ff85efd1e";

fn upstream(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/upstream")
        .join(name)
}

fn fixture() -> Vec<u8> {
    let path = upstream("langgenius-agent_0.0.14.difypkg");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the feature upstream-fixtures needs upstream's package there)",
            path.display()
        )
    })
}

#[test]
fn upstream_fixture_decodes_and_verifies() {
    let pkg = decode(&fixture(), &DecodeOptions::default()).expect("decode");
    assert_eq!(
        pkg.uid.as_str(),
        format!("langgenius/agent:0.0.14@{AGENT_CHECKSUM}")
    );
    assert_eq!(pkg.checksum, AGENT_CHECKSUM);
    assert_eq!(checksum(&fixture()).expect("checksum"), AGENT_CHECKSUM);
    assert_eq!(pkg.declaration.category(), PluginCategory::AgentStrategy);
    assert!(pkg.verified && pkg.declaration.verified);
    let verification = serde_json::to_string(&pkg.verification).expect("json");
    assert_eq!(verification, r#"{"authorized_category":"langgenius"}"#);
    assert_eq!(pkg.declaration.created_at, "2025-01-08T15:22:00Z");
    let strategies = pkg
        .declaration
        .agent_strategy
        .as_ref()
        .and_then(|a| a["strategies"].as_array())
        .expect("strategies");
    assert_eq!(strategies.len(), 2);
    assert_eq!(strategies[1]["identity"]["name"], "ReAct");
    assert_eq!(pkg.assets.len(), 3);

    let json = serde_json::to_value(&pkg.declaration).expect("json");
    assert_eq!(
        json["resource"]["permission"]["model"]["text_embedding"],
        false
    );
    assert_eq!(json["plugins"]["tools"], serde_json::Value::Null);

    let mut decl = pkg.declaration.clone();
    let uploaded = remap_icons(&mut decl, &pkg.assets).expect("remap");
    let icon = "e74e644589f5d78cd6019be7b92050c2b54b2645139af705fe610649a73282cf.svg";
    assert_eq!(decl.icon, icon);
    assert_eq!(
        decl.agent_strategy
            .as_ref()
            .map(|a| a["identity"]["icon"].clone()),
        Some(icon.into())
    );
    assert_eq!(uploaded.len(), 1, "same icon uploaded once");
    assert_eq!(uploaded[0].0, icon);
}

#[test]
fn official_signature_survives_a_rezip_but_not_one_changed_byte() {
    support::assert_signature_survives_rezip_not_a_changed_byte(
        &fixture(),
        &DecodeOptions::default(),
        AGENT_CHECKSUM,
    );
}

#[test]
fn embedded_official_key_is_upstreams() {
    let pem = std::fs::read_to_string(upstream("official_public_key.pem")).expect("pem");
    assert_eq!(
        parse_public_key_pem(&pem).expect("pem"),
        official_public_key()
    );
    assert_eq!(
        parse_public_key_pem(&pem.replace('\n', "\r\n")).expect("crlf"),
        official_public_key()
    );
    // The official package is verified by the official key only, not by a generated one.
    let (_, public) = support::key();
    assert!(!verify_with(&fixture(), std::slice::from_ref(public)).expect("verify"));
    assert!(verify_with(&fixture(), &[official_public_key()]).expect("verify"));
}
