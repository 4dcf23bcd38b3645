//! `plugin checksum`, `plugin module list`, `plugin readme list`.

use std::path::Path;
use std::sync::LazyLock;

use anyhow::Context;
use plugind_package::DecodeOptions;
use regex::Regex;
use serde_json::Value;

use super::source;

/// PSC §1.12: translated readmes directly under `readme/`.
#[allow(clippy::expect_used)]
static README_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^README_([a-z]{2}_[A-Za-z]{2,})\.md$").expect("static regex"));

pub fn checksum(path: &Path) -> anyhow::Result<()> {
    let bytes = source::load(path)?;
    let sum = plugind_package::checksum(&bytes).context("cannot compute the checksum")?;
    println!("{sum}");
    Ok(())
}

pub fn decode_any(path: &Path) -> anyhow::Result<plugind_package::Package> {
    let bytes = source::load(path)?;
    let opts = DecodeOptions {
        max_uncompressed_size: u64::MAX,
        ..DecodeOptions::default()
    };
    plugind_package::decode(&bytes, &opts)
        .with_context(|| format!("{} is not a valid plugin", path.display()))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub fn module_list(path: &Path) -> anyhow::Result<()> {
    let pkg = decode_any(path)?;
    let d = &pkg.declaration;
    println!("{} ({}, {})", pkg.uid, d.category().as_str(), d.plugin_id());
    if let Some(tool) = &d.tool {
        println!("Tools (provider {}):", str_at(tool, "/identity/name"));
        for t in list(tool, "tools") {
            println!(
                "  - {}: {}",
                str_at(&t, "/identity/name"),
                str_at(&t, "/description/human/en_US")
            );
        }
    }
    if let Some(agent) = &d.agent_strategy {
        println!(
            "Agent strategies (provider {}):",
            str_at(agent, "/identity/name")
        );
        for s in list(agent, "strategies") {
            println!(
                "  - {}: {}",
                str_at(&s, "/identity/name"),
                str_at(&s, "/description/en_US")
            );
        }
    }
    if let Some(model) = &d.model {
        println!("Models (provider {}):", str_at(model, "/provider"));
        for m in list(model, "models") {
            println!(
                "  - {} ({})",
                str_at(&m, "/model"),
                str_at(&m, "/model_type")
            );
        }
    }
    if let Some(endpoint) = &d.endpoint {
        println!("Endpoints:");
        for e in list(endpoint, "endpoints") {
            println!("  - {} {}", str_at(&e, "/method"), str_at(&e, "/path"));
        }
    }
    if let Some(ds) = &d.datasource {
        println!("Datasources (provider {}):", str_at(ds, "/identity/name"));
        for s in list(ds, "datasources") {
            println!("  - {}", str_at(&s, "/identity/name"));
        }
    }
    if let Some(tr) = &d.trigger {
        println!(
            "Trigger events (provider {}):",
            str_at(tr, "/identity/name")
        );
        for e in list(tr, "events") {
            println!("  - {}", str_at(&e, "/identity/name"));
        }
    }
    Ok(())
}

pub fn readme_list(path: &Path) -> anyhow::Result<()> {
    let bytes = source::load(path)?;
    let mut langs = Vec::new();
    for (name, _) in source::entries(&bytes)? {
        if name == "README.md" {
            langs.push(("en_US".to_owned(), name));
        } else if let Some(rest) = name.strip_prefix("readme/") {
            if let Some(c) = README_RE.captures(rest) {
                langs.push((c[1].to_owned(), name.clone()));
            }
        }
    }
    if langs.is_empty() {
        anyhow::bail!("no readme found in {}", path.display());
    }
    println!("{:<10} FILE", "LANGUAGE");
    for (lang, file) in langs {
        println!("{lang:<10} {file}");
    }
    Ok(())
}
