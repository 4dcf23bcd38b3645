//! `manifest.yaml` → [`PluginDeclaration`] (PSC §1.2): lenient decoding (unknown keys ignored,
//! scalars kept as their YAML text), permission block in upstream's JSON shape, and `created_at`
//! re-emitted the way Go marshals a `time.Time`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Timelike};
use plugind_entities::declaration::{PluginExtensions, PluginMeta, PluginResource, PluginRunner};
use plugind_entities::{I18nObject, PluginDeclaration};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::declarations::{
    AgentStrategyProviderDeclaration, DatasourceProviderDeclaration, EndpointProviderDeclaration,
    ModelProviderDeclaration, Providers, ToolProviderDeclaration, TriggerProviderDeclaration,
};
use crate::error::PackageError;

#[derive(Default, Deserialize)]
struct I18nYaml {
    #[serde(rename = "en_US")]
    en_us: Option<String>,
    #[serde(rename = "zh_Hans")]
    zh_hans: Option<String>,
    #[serde(rename = "ja_JP")]
    ja_jp: Option<String>,
    #[serde(rename = "pt_BR")]
    pt_br: Option<String>,
}

impl From<I18nYaml> for I18nObject {
    fn from(y: I18nYaml) -> Self {
        I18nObject {
            en_us: y.en_us.unwrap_or_default(),
            zh_hans: y.zh_hans.unwrap_or_default(),
            ja_jp: y.ja_jp.unwrap_or_default(),
            pt_br: y.pt_br.unwrap_or_default(),
        }
    }
}

#[derive(Default, Deserialize)]
struct ResourceYaml {
    memory: Option<i64>,
    permission: Option<Value>,
}

#[derive(Default, Deserialize)]
struct PluginsYaml {
    tools: Option<Vec<String>>,
    models: Option<Vec<String>>,
    endpoints: Option<Vec<String>>,
    agent_strategies: Option<Vec<String>>,
    datasources: Option<Vec<String>>,
    triggers: Option<Vec<String>>,
}

#[derive(Default, Deserialize)]
struct RunnerYaml {
    language: Option<String>,
    version: Option<String>,
    entrypoint: Option<String>,
}

#[derive(Default, Deserialize)]
struct MetaYaml {
    version: Option<String>,
    arch: Option<Vec<String>>,
    runner: Option<RunnerYaml>,
    minimum_dify_version: Option<String>,
}

#[derive(Default, Deserialize)]
struct ManifestYaml {
    version: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    author: Option<String>,
    name: Option<String>,
    label: Option<I18nYaml>,
    description: Option<I18nYaml>,
    icon: Option<String>,
    icon_dark: Option<String>,
    resource: Option<ResourceYaml>,
    plugins: Option<PluginsYaml>,
    meta: Option<MetaYaml>,
    tags: Option<Vec<String>>,
    created_at: Option<String>,
    privacy: Option<String>,
    repo: Option<String>,
    tool: Option<ToolProviderDeclaration>,
    model: Option<ModelProviderDeclaration>,
    endpoint: Option<EndpointProviderDeclaration>,
    agent_strategy: Option<AgentStrategyProviderDeclaration>,
    datasource: Option<DatasourceProviderDeclaration>,
    trigger: Option<TriggerProviderDeclaration>,
}

/// Parses `manifest.yaml`, inline provider declarations stored in their JSON form (no nested
/// files loaded, no defaults filled).
#[cfg(test)]
pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<PluginDeclaration, PackageError> {
    let (mut decl, inline) = parse_manifest_typed(bytes)?;
    inline.store_into(&mut decl);
    Ok(decl)
}

/// Parses `manifest.yaml`; provider declarations given inline are returned typed (the
/// `plugins.*` files are loaded afterwards by the provider loader).
pub(crate) fn parse_manifest_typed(
    bytes: &[u8],
) -> Result<(PluginDeclaration, Providers), PackageError> {
    let y: ManifestYaml = if bytes.iter().all(u8::is_ascii_whitespace) {
        ManifestYaml::default()
    } else {
        crate::yaml::check_aliasing(bytes)
            .and_then(|()| serde_norway::from_slice(bytes))
            .map_err(|e| PackageError::ManifestParse(crate::yaml::short(e.to_string())))?
    };
    from_manifest(y)
}

/// The manifest object a plugin sends in remote-debugging mode (the SDK's own dump,
/// plugin-protocol §5.4), read with the same rules as `manifest.yaml`; unknown keys are ignored.
pub(crate) fn parse_manifest_json(value: &Value) -> Result<PluginDeclaration, PackageError> {
    let y = ManifestYaml::deserialize(value)
        .map_err(|e| PackageError::ManifestParse(crate::yaml::short(e.to_string())))?;
    let (mut decl, inline) = from_manifest(y)?;
    inline.store_into(&mut decl);
    Ok(decl)
}

fn from_manifest(y: ManifestYaml) -> Result<(PluginDeclaration, Providers), PackageError> {
    let created_at = match y.created_at.as_deref().map(str::trim) {
        None | Some("") => GO_ZERO_TIME.to_owned(),
        Some(s) => {
            format_go_time(&parse_time(s).ok_or_else(|| PackageError::CreatedAt(s.to_owned()))?)
        }
    };
    let resource = y.resource.unwrap_or_default();
    let plugins = y.plugins.unwrap_or_default();
    let meta = y.meta.unwrap_or_default();
    let runner = meta.runner.unwrap_or_default();
    let inline = Providers {
        endpoint: y.endpoint,
        model: y.model,
        tool: y.tool,
        agent_strategy: y.agent_strategy,
        datasource: y.datasource,
        trigger: y.trigger,
    };
    let decl = PluginDeclaration {
        version: y.version.unwrap_or_default(),
        kind: y.kind.unwrap_or_default(),
        author: y.author.unwrap_or_default(),
        name: y.name.unwrap_or_default(),
        label: y.label.unwrap_or_default().into(),
        description: y.description.unwrap_or_default().into(),
        icon: y.icon.unwrap_or_default(),
        icon_dark: y.icon_dark.unwrap_or_default(),
        resource: PluginResource {
            memory: resource.memory.unwrap_or_default(),
            permission: resource.permission.as_ref().and_then(normalize_permission),
        },
        plugins: PluginExtensions {
            tools: plugins.tools,
            models: plugins.models,
            endpoints: plugins.endpoints,
            agent_strategies: plugins.agent_strategies,
            datasources: plugins.datasources,
            triggers: plugins.triggers,
        },
        meta: PluginMeta {
            version: meta.version.unwrap_or_default(),
            arch: meta.arch.unwrap_or_default(),
            runner: PluginRunner {
                language: runner.language.unwrap_or_default(),
                version: runner.version.unwrap_or_default(),
                entrypoint: runner.entrypoint.unwrap_or_default(),
            },
            minimum_dify_version: meta.minimum_dify_version,
        },
        tags: y.tags.unwrap_or_default(),
        created_at,
        privacy: y.privacy,
        repo: y.repo,
        verified: false,
        ..Default::default()
    };
    Ok((decl, inline))
}

/// Go's zero `time.Time` as JSON.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Parses the timestamp forms a YAML decoder accepts (RFC 3339 first).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    let utc = FixedOffset::east_opt(0)?;
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return t.and_local_timezone(utc).single();
        }
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    date.and_hms_opt(0, 0, 0)?.and_local_timezone(utc).single()
}

/// Formats like Go's `time.Time.MarshalJSON` (RFC 3339 with trailing zero fractions dropped, `Z`
/// for a zero offset).
pub(crate) fn format_go_time(t: &DateTime<FixedOffset>) -> String {
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let offset = t.offset().local_minus_utc();
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
    }
    out
}

/// Rebuilds the permission block in upstream's JSON shape: known sub-blocks only, in struct
/// order, every field of a present block written.
fn normalize_permission(p: &Value) -> Option<Value> {
    let p = p.as_object()?;
    let flag = |block: &Map<String, Value>, key: &str| {
        Value::Bool(block.get(key).and_then(Value::as_bool).unwrap_or(false))
    };
    let mut out = Map::new();
    let simple: [(&str, &[&str]); 6] = [
        ("tool", &["enabled"]),
        (
            "model",
            &[
                "enabled",
                "llm",
                "text_embedding",
                "rerank",
                "tts",
                "speech2text",
                "moderation",
            ],
        ),
        ("node", &["enabled"]),
        ("endpoint", &["enabled"]),
        ("app", &["enabled"]),
        ("storage", &["enabled"]),
    ];
    for (name, fields) in simple {
        let Some(block) = p.get(name).and_then(Value::as_object) else {
            continue;
        };
        let mut b = Map::new();
        for f in fields {
            b.insert((*f).to_owned(), flag(block, f));
        }
        if name == "storage" {
            let size = block.get("size").and_then(Value::as_i64).unwrap_or(0);
            b.insert("size".to_owned(), Value::from(size));
        }
        out.insert(name.to_owned(), Value::Object(b));
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_is_reemitted_like_go() {
        let t = parse_time("2025-01-08T15:22:00.000000000Z").expect("time");
        assert_eq!(format_go_time(&t), "2025-01-08T15:22:00Z");
        let t = parse_time("2025-01-08T15:22:00.120+08:00").expect("time");
        assert_eq!(format_go_time(&t), "2025-01-08T15:22:00.12+08:00");
    }

    #[test]
    fn scalars_keep_their_yaml_text() {
        let d = parse_manifest(
            b"version: 1.10\nauthor: a\nname: b\nmeta:\n  runner:\n    version: 3.10\n",
        )
        .expect("manifest");
        assert_eq!(d.version, "1.10");
        assert_eq!(d.meta.runner.version, "3.10");
        assert_eq!(d.created_at, GO_ZERO_TIME);
        assert!(d.tags.is_empty());
    }
}
