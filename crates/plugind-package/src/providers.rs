//! Loading the provider declarations a manifest lists under `plugins.*` (PSC §1.3): read and
//! parse each file, resolve nested file references, normalise map-form schemas, expand model
//! `predefined` globs. A later file of a category overwrites an earlier one.

use plugind_entities::PluginDeclaration;
use serde_json::{Map, Value};

use crate::archive::Archive;
use crate::error::PackageError;
use crate::glob::glob_regex;
use crate::yaml;

/// Model types whose `models.<type>` block is understood.
const MODEL_TYPES: [&str; 6] = [
    "llm",
    "text_embedding",
    "tts",
    "speech2text",
    "moderation",
    "rerank",
];

/// Loads every `plugins.*` file into the declaration and normalises inline declarations.
pub(crate) fn load_providers(
    decl: &mut PluginDeclaration,
    archive: &mut Archive<'_>,
) -> Result<(), PackageError> {
    let lists = decl.plugins.clone();
    for path in lists.tools.iter().flatten() {
        decl.tool = Some(read_provider(archive, path, "tool")?);
    }
    for path in lists.models.iter().flatten() {
        decl.model = Some(read_provider(archive, path, "model")?);
    }
    for path in lists.endpoints.iter().flatten() {
        decl.endpoint = Some(read_provider(archive, path, "endpoint")?);
    }
    for path in lists.agent_strategies.iter().flatten() {
        decl.agent_strategy = Some(read_provider(archive, path, "agent strategy")?);
    }
    for path in lists.datasources.iter().flatten() {
        decl.datasource = Some(read_provider(archive, path, "datasource")?);
    }
    for path in lists.triggers.iter().flatten() {
        decl.trigger = Some(read_provider(archive, path, "trigger")?);
    }

    if let Some(Value::Object(p)) = decl.tool.take() {
        decl.tool = Some(tool_provider(archive, p)?);
    }
    if let Some(Value::Object(mut p)) = decl.model.take() {
        expand_models(archive, &mut p)?;
        decl.model = Some(Value::Object(p));
    }
    if let Some(Value::Object(mut p)) = decl.endpoint.take() {
        resolve_files(archive, &mut p, "endpoints", "endpoint", true)?;
        decl.endpoint = Some(Value::Object(p));
    }
    if let Some(Value::Object(mut p)) = decl.agent_strategy.take() {
        resolve_files(archive, &mut p, "strategies", "agent strategy", false)?;
        decl.agent_strategy = Some(Value::Object(p));
    }
    if let Some(Value::Object(mut p)) = decl.datasource.take() {
        list_form(&mut p, "credentials_schema");
        resolve_files(archive, &mut p, "datasources", "datasource", false)?;
        decl.datasource = Some(Value::Object(p));
    }
    if let Some(Value::Object(mut p)) = decl.trigger.take() {
        list_form(&mut p, "subscription_schema");
        if let Some(Value::Object(c)) = p.get_mut("subscription_constructor") {
            list_form(c, "credentials_schema");
        }
        resolve_files(archive, &mut p, "events", "event", false)?;
        decl.trigger = Some(Value::Object(p));
    }
    Ok(())
}

/// Reads `path` and parses it as YAML; the provider files must be mappings.
fn read_provider(
    archive: &mut Archive<'_>,
    path: &str,
    kind: &'static str,
) -> Result<Value, PackageError> {
    let value = read_yaml(archive, path, kind)?;
    if !value.is_object() {
        return Err(PackageError::UnmarshalPluginFile(path.to_owned()));
    }
    Ok(value)
}

fn read_yaml(
    archive: &mut Archive<'_>,
    path: &str,
    kind: &'static str,
) -> Result<Value, PackageError> {
    let bytes =
        archive
            .read_name(path)
            .ok()
            .flatten()
            .ok_or_else(|| PackageError::ReadPluginFile {
                kind,
                path: path.to_owned(),
            })?;
    yaml::to_json(&bytes).map_err(|_| PackageError::UnmarshalPluginFile(path.to_owned()))
}

/// Replaces the list under `key`: strings are files parsed as declarations, mappings are inline.
fn resolve_files(
    archive: &mut Archive<'_>,
    provider: &mut Map<String, Value>,
    key: &str,
    kind: &'static str,
    lenient_inline: bool,
) -> Result<(), PackageError> {
    let items = match provider.remove(key) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(path) => out.push(read_provider(archive, &path, kind)?),
            Value::Object(_) => out.push(item),
            _ if lenient_inline => break,
            _ => {
                return Err(PackageError::UnmarshalPluginFile(format!(
                    "{key}[{}]",
                    out.len()
                )))
            }
        }
    }
    provider.insert(key.to_owned(), Value::Array(out));
    Ok(())
}

/// Map form `{name: {...}}` → list form `[{name, ...}]`, order kept; absent/null → `[]`.
fn list_form(provider: &mut Map<String, Value>, key: &str) {
    let list = match provider.remove(key) {
        Some(Value::Array(items)) => items,
        Some(Value::Object(map)) => map
            .into_iter()
            .filter_map(|(name, v)| {
                let Value::Object(fields) = v else {
                    return None;
                };
                let mut entry = Map::new();
                entry.insert("name".to_owned(), Value::String(name));
                entry.extend(fields.into_iter().filter(|(k, _)| k != "name"));
                Some(Value::Object(entry))
            })
            .collect(),
        _ => Vec::new(),
    };
    provider.insert(key.to_owned(), Value::Array(list));
}

/// Tool provider in its JSON shape: identity, credentials_schema (falling back to
/// `credentials_for_provider`), oauth_schema, tools.
fn tool_provider(
    archive: &mut Archive<'_>,
    mut p: Map<String, Value>,
) -> Result<Value, PackageError> {
    list_form(&mut p, "credentials_schema");
    list_form(&mut p, "credentials_for_provider");
    let empty = p
        .get("credentials_schema")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if empty {
        if let Some(fallback) = p.remove("credentials_for_provider") {
            p.insert("credentials_schema".to_owned(), fallback);
        }
    }
    resolve_files(archive, &mut p, "tools", "tool", false)?;
    let mut out = Map::new();
    for key in ["identity", "credentials_schema", "oauth_schema", "tools"] {
        if let Some(v) = p.remove(key) {
            if !(key == "oauth_schema" && v.is_null()) {
                out.insert(key.to_owned(), v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Model provider: `models` as a list (inline, or expanded from `predefined` globs per model
/// type), `position.<type>` from position files, `model_declarations` appended.
fn expand_models(
    archive: &mut Archive<'_>,
    p: &mut Map<String, Value>,
) -> Result<(), PackageError> {
    let mut models = Vec::new();
    let mut position = Map::new();
    match p.remove("models") {
        Some(Value::Array(items)) => models.extend(items),
        Some(Value::Object(by_type)) => {
            let names = archive.names();
            for (model_type, block) in by_type {
                if !MODEL_TYPES.contains(&model_type.as_str()) {
                    continue;
                }
                if let Some(file) = block.get("position").and_then(Value::as_str) {
                    position.insert(model_type.clone(), read_yaml(archive, file, "model")?);
                }
                let globs = block
                    .get("predefined")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for glob in globs.iter().filter_map(Value::as_str) {
                    let Some(re) = glob_regex(glob, false) else {
                        continue;
                    };
                    for name in names
                        .iter()
                        .filter(|n| re.is_match(n) && !n.ends_with("_position.yaml"))
                    {
                        models.push(read_yaml(archive, name, "model")?);
                    }
                }
            }
        }
        _ => {}
    }
    if let Some(Value::Array(inline)) = p.remove("model_declarations") {
        models.extend(inline);
    }
    if !position.is_empty() {
        p.insert("position".to_owned(), Value::Object(position));
    }
    p.insert("models".to_owned(), Value::Array(models));
    Ok(())
}

/// PSC §1.7 defaults: tool/trigger identity description and tags, model description.
pub(crate) fn fill_defaults(decl: &mut PluginDeclaration) {
    let description = serde_json::to_value(&decl.description).unwrap_or(Value::Null);
    let tags = Value::from(decl.tags.clone());
    for provider in [decl.tool.as_mut(), decl.trigger.as_mut()]
        .into_iter()
        .flatten()
    {
        let Some(identity) = provider.get_mut("identity").and_then(Value::as_object_mut) else {
            continue;
        };
        let en_empty = identity
            .get("description")
            .and_then(|d| d.get("en_US"))
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if en_empty {
            identity.insert("description".to_owned(), description.clone());
        }
        let tags_empty = identity
            .get("tags")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if tags_empty {
            identity.insert("tags".to_owned(), tags.clone());
        }
    }
    if let Some(Value::Object(model)) = decl.model.as_mut() {
        if model.get("description").is_none_or(Value::is_null) {
            model.insert("description".to_owned(), description);
        }
    }
}
