//! `plugin init`: a new Python plugin project in `./<name>/` (PSC §9.4), from plugind's own
//! templates. There is no interactive TUI: the profile comes from flags (`--quick` is accepted
//! for compatibility and changes nothing). Files are written into a hidden sibling directory
//! that is renamed to `./<name>` at the end, so a failure leaves nothing behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use plugind_entities::naming;
use serde_json::Value;

use super::templates::{self as t, render};

pub const CATEGORIES: [&str; 11] = [
    "tool",
    "llm",
    "text-embedding",
    "speech2text",
    "moderation",
    "rerank",
    "tts",
    "extension",
    "agent-strategy",
    "datasource",
    "trigger",
];

/// Create a plugin project. This build has no interactive mode: --name, --author and
/// --description are required with or without --quick.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  dify plugin init --quick --name my_tool --author me --description \"Does things\" --category tool"
)]
pub struct InitArgs {
    /// Accepted for compatibility; this build is always non-interactive.
    #[arg(long)]
    pub quick: bool,
    /// Plugin name (^[a-z0-9_-]{1,128}$); also the directory created.
    #[arg(long)]
    pub name: Option<String>,
    /// Author (^[a-z0-9_-]{1,64}$).
    #[arg(long)]
    pub author: Option<String>,
    /// One-line description.
    #[arg(long)]
    pub description: Option<String>,
    /// Plugin category.
    #[arg(long, default_value = "tool", value_parser = clap::builder::PossibleValuesParser::new(CATEGORIES))]
    pub category: String,
    /// Source repository URL written to the manifest.
    #[arg(long)]
    pub repo: Option<String>,
    /// Only python is supported.
    #[arg(long, default_value = "python")]
    pub language: String,
    /// Minimum Dify version (meta.minimum_dify_version), e.g. 1.9.0.
    #[arg(long)]
    pub min_dify_version: Option<String>,
    /// Permission: register endpoints (always on for the extension category).
    #[arg(long)]
    pub allow_endpoint: bool,
    /// Permission: invoke tools.
    #[arg(long)]
    pub allow_tool: bool,
    /// Permission: invoke models (any type).
    #[arg(long)]
    pub allow_model: bool,
    /// Permission: invoke LLMs.
    #[arg(long)]
    pub allow_llm: bool,
    /// Permission: invoke text-embedding models.
    #[arg(long)]
    pub allow_text_embedding: bool,
    /// Permission: invoke rerank models.
    #[arg(long)]
    pub allow_rerank: bool,
    /// Permission: invoke TTS models.
    #[arg(long)]
    pub allow_tts: bool,
    /// Permission: invoke speech-to-text models.
    #[arg(long)]
    pub allow_speech2text: bool,
    /// Permission: invoke moderation models.
    #[arg(long)]
    pub allow_moderation: bool,
    /// Permission: invoke workflow nodes.
    #[arg(long)]
    pub allow_node: bool,
    /// Permission: invoke apps.
    #[arg(long)]
    pub allow_app: bool,
    /// Permission: persistent key-value storage.
    #[arg(long)]
    pub allow_storage: bool,
    /// Storage quota in bytes (implies --allow-storage).
    #[arg(long)]
    pub storage_size: Option<u64>,
}

fn q(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['_', '-']).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'P');
    }
    out
}

fn label_of(name: &str) -> String {
    name.split(['_', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Profile {
    name: String,
    author: String,
    description: String,
}

fn profile(args: &InitArgs) -> anyhow::Result<Profile> {
    let need = |v: &Option<String>, flag: &str| -> anyhow::Result<String> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => bail!("{flag} is required (this build has no interactive mode)"),
        }
    };
    let name = need(&args.name, "--name")?;
    let author = need(&args.author, "--author")?;
    let description = need(&args.description, "--description")?;
    if !naming::is_manifest_name(&name) {
        bail!("plugin name must match ^[a-z0-9_-]{{1,128}}$: {name:?}");
    }
    if !naming::is_author(&author) {
        bail!("author must match ^[a-z0-9_-]{{1,64}}$: {author:?}");
    }
    if !args.language.eq_ignore_ascii_case("python") {
        bail!("unsupported language {:?}: only python", args.language);
    }
    if let Some(v) = &args.min_dify_version {
        if !naming::is_id_version(v) {
            bail!("--min-dify-version must look like 1.9.0: {v:?}");
        }
    }
    Ok(Profile {
        name,
        author,
        description,
    })
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let p = profile(&args)?;
    let target = PathBuf::from(&p.name);
    if std::fs::symlink_metadata(&target).is_ok() {
        bail!("{} already exists", target.display());
    }
    let staging = PathBuf::from(format!(".{}.init-{}", p.name, std::process::id()));
    let result = write_project(&args, &p, &staging).and_then(|files| {
        std::fs::rename(&staging, &target)
            .with_context(|| format!("cannot create {}", target.display()))?;
        Ok(files)
    });
    match result {
        Ok(files) => {
            for f in &files {
                eprintln!("  created {}/{f}", p.name);
            }
            eprintln!(
                "plugin {} ({}) created in ./{}; next: dify plugin package ./{}",
                p.name, args.category, p.name, p.name
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

fn write_project(args: &InitArgs, p: &Profile, root: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir(root).with_context(|| format!("cannot create {}", root.display()))?;
    let module = p.name.replace('-', "_");
    let label = label_of(&p.name);
    let category = args.category.as_str();
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    vars.insert("name", p.name.clone());
    vars.insert("name_q", q(&p.name));
    vars.insert("module", module.clone());
    vars.insert("class", camel(&p.name));
    vars.insert("author", p.author.clone());
    vars.insert("author_q", q(&p.author));
    vars.insert("description", p.description.clone());
    vars.insert("description_q", q(&p.description));
    vars.insert("label", label.clone());
    vars.insert("label_q", q(&label));
    vars.insert("category", category.to_owned());

    let mut files: Vec<(String, String)> = Vec::new();
    let mut add = |path: String, template: &str| files.push((path, render(template, &vars)));

    add("main.py".into(), t::MAIN_PY);
    add("requirements.txt".into(), t::REQUIREMENTS);
    add("pyproject.toml".into(), t::PYPROJECT);
    add("README.md".into(), t::README);
    add("PRIVACY.md".into(), t::PRIVACY);
    add("GUIDE.md".into(), t::GUIDE);
    add(".env.example".into(), t::ENV_EXAMPLE);
    add(".difyignore".into(), t::DIFYIGNORE);
    add(".gitignore".into(), t::GITIGNORE);

    let provider_yaml = format!("provider/{module}.yaml");
    let (plugins_key, plugins_file) = match category {
        "tool" => {
            add(provider_yaml.clone(), t::TOOL_PROVIDER_YAML);
            add(format!("provider/{module}.py"), t::TOOL_PROVIDER_PY);
            add(format!("tools/{module}.yaml"), t::TOOL_YAML);
            add(format!("tools/{module}.py"), t::TOOL_PY);
            ("tools", provider_yaml)
        }
        "extension" => {
            add(format!("group/{module}.yaml"), t::ENDPOINT_GROUP_YAML);
            add(format!("endpoints/{module}.yaml"), t::ENDPOINT_YAML);
            add(format!("endpoints/{module}.py"), t::ENDPOINT_PY);
            ("endpoints", format!("group/{module}.yaml"))
        }
        "agent-strategy" => {
            add(provider_yaml.clone(), t::AGENT_PROVIDER_YAML);
            add(format!("strategies/{module}.yaml"), t::AGENT_STRATEGY_YAML);
            add(format!("strategies/{module}.py"), t::AGENT_STRATEGY_PY);
            ("agent_strategies", provider_yaml)
        }
        "datasource" => {
            add(provider_yaml.clone(), t::DATASOURCE_PROVIDER_YAML);
            add(format!("provider/{module}.py"), t::DATASOURCE_PROVIDER_PY);
            add(format!("datasources/{module}.yaml"), t::DATASOURCE_YAML);
            add(format!("datasources/{module}.py"), t::DATASOURCE_PY);
            ("datasources", provider_yaml)
        }
        "trigger" => {
            add(provider_yaml.clone(), t::TRIGGER_PROVIDER_YAML);
            add(format!("provider/{module}.py"), t::TRIGGER_PROVIDER_PY);
            add(format!("events/{module}_event.yaml"), t::TRIGGER_EVENT_YAML);
            add(format!("events/{module}_event.py"), t::TRIGGER_EVENT_PY);
            ("triggers", provider_yaml)
        }
        other => {
            let kind = t::model_kind(other)
                .ok_or_else(|| anyhow::anyhow!("unknown category {other:?}"))?;
            let dir = format!("models/{}", kind.key);
            add(format!("{dir}/{}.yaml", kind.key), kind.yaml);
            add(format!("{dir}/{}.py", kind.key), kind.py);
            add(format!("provider/{module}.py"), t::MODEL_PROVIDER_PY);
            files.push((
                provider_yaml.clone(),
                model_provider_yaml(&p.name, &module, &label, &p.description, &kind),
            ));
            ("models", provider_yaml)
        }
    };
    files.push((
        "manifest.yaml".into(),
        manifest(args, p, &label, plugins_key, &plugins_file),
    ));
    let initial = p.name.chars().next().unwrap_or('p').to_ascii_uppercase();
    let color = category_color(category);
    files.push((
        "_assets/icon.svg".into(),
        t::icon_svg(initial, color, false),
    ));
    files.push((
        "_assets/icon-dark.svg".into(),
        t::icon_svg(initial, color, true),
    ));

    let mut written = Vec::with_capacity(files.len());
    for (rel, content) in files {
        let path = root.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("cannot write {rel}"))?;
        written.push(rel);
    }
    written.sort();
    Ok(written)
}

fn category_color(category: &str) -> &'static str {
    match category {
        "tool" => "#2563EB",
        "extension" => "#0891B2",
        "agent-strategy" => "#7C3AED",
        "datasource" => "#059669",
        "trigger" => "#D97706",
        _ => "#DB2777",
    }
}

fn model_provider_yaml(
    name: &str,
    module: &str,
    label: &str,
    description: &str,
    kind: &t::ModelKind,
) -> String {
    format!(
        "provider: {name_q}
label:
  en_US: {label_q}
description:
  en_US: {description_q}
icon_small:
  en_US: icon.svg
icon_large:
  en_US: icon.svg
icon_small_dark:
  en_US: icon-dark.svg
icon_large_dark:
  en_US: icon-dark.svg
background: \"#F3F4F6\"
help:
  title:
    en_US: Get your API key
  url:
    en_US: https://example.com/api-keys
supported_model_types:
  - {model_type}
configurate_methods:
  - predefined-model
provider_credential_schema:
  credential_form_schemas:
    - variable: api_key
      label:
        en_US: API Key
      type: secret-input
      required: true
      placeholder:
        en_US: Enter your API key
models:
  {key}:
    predefined:
      - \"models/{key}/*.yaml\"
extra:
  python:
    provider_source: provider/{module}.py
    model_sources:
      - models/{key}/{key}.py
",
        name_q = q(name),
        label_q = q(label),
        description_q = q(description),
        model_type = kind.model_type,
        key = kind.key,
    )
}

fn manifest(args: &InitArgs, p: &Profile, label: &str, plugins_key: &str, file: &str) -> String {
    let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let storage = args.allow_storage || args.storage_size.is_some();
    let model_any = args.allow_llm
        || args.allow_text_embedding
        || args.allow_rerank
        || args.allow_tts
        || args.allow_speech2text
        || args.allow_moderation;
    let endpoint = args.allow_endpoint || args.category == "extension";
    let mut perm = String::new();
    if args.allow_tool {
        perm.push_str("    tool:\n      enabled: true\n");
    }
    if args.allow_model || model_any {
        perm.push_str("    model:\n      enabled: true\n");
        for (flag, key) in [
            (args.allow_llm, "llm"),
            (args.allow_text_embedding, "text_embedding"),
            (args.allow_rerank, "rerank"),
            (args.allow_tts, "tts"),
            (args.allow_speech2text, "speech2text"),
            (args.allow_moderation, "moderation"),
        ] {
            perm.push_str(&format!("      {key}: {flag}\n"));
        }
    }
    if args.allow_node {
        perm.push_str("    node:\n      enabled: true\n");
    }
    if endpoint {
        perm.push_str("    endpoint:\n      enabled: true\n");
    }
    if args.allow_app {
        perm.push_str("    app:\n      enabled: true\n");
    }
    if storage {
        let size = args.storage_size.unwrap_or(1_048_576);
        perm.push_str(&format!(
            "    storage:\n      enabled: true\n      size: {size}\n"
        ));
    }
    let permission = if perm.is_empty() {
        "  permission: {}\n".to_owned()
    } else {
        format!("  permission:\n{perm}")
    };
    let repo = args
        .repo
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .map(|r| format!("repo: {}\n", q(r)))
        .unwrap_or_default();
    let min_version = args
        .min_dify_version
        .as_deref()
        .map(|v| format!("  minimum_dify_version: {}\n", q(v)))
        .unwrap_or_default();
    format!(
        "version: 0.0.1
type: plugin
author: {author}
name: {name}
label:
  en_US: {label}
  zh_Hans: {label}
  ja_JP: {label}
  pt_BR: {label}
description:
  en_US: {desc}
  zh_Hans: {desc}
  ja_JP: {desc}
  pt_BR: {desc}
icon: icon.svg
icon_dark: icon-dark.svg
created_at: {created_at}
resource:
  memory: 268435456
{permission}plugins:
  {plugins_key}:
    - {file}
meta:
  version: 0.0.1
  arch:
    - amd64
    - arm64
  runner:
    language: python
    version: \"3.12\"
    entrypoint: main
{min_version}privacy: PRIVACY.md
{repo}",
        author = q(&p.author),
        name = q(&p.name),
        label = q(label),
        desc = q(&p.description),
        created_at = q(&created_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(camel("my-cool_tool"), "MyCoolTool");
        assert_eq!(camel("3d"), "P3d");
        assert_eq!(label_of("my_tool"), "My Tool");
    }
}
