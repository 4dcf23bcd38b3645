//! Loading the provider declarations a manifest lists under `plugins.*` (PSC §1.3): read and
//! parse each file into its typed declaration, load the nested files it references (appended
//! after its inline entries), read model position files and expand `predefined` globs. A later
//! file of a category overwrites an earlier one; a `plugins.*` file overwrites an inline
//! declaration of the manifest.

use plugind_entities::PluginDeclaration;
use serde::de::DeserializeOwned;

use crate::archive::Archive;
use crate::declarations::{
    AgentStrategyDeclaration, AgentStrategyProviderDeclaration, DatasourceDeclaration,
    DatasourceProviderDeclaration, EndpointDeclaration, EndpointProviderDeclaration,
    EventDeclaration, ModelDeclaration, ModelPosition, ModelProviderDeclaration, Providers,
    ToolDeclaration, ToolProviderDeclaration, TriggerProviderDeclaration, PRICING_ERROR,
};
use crate::error::PackageError;
use crate::glob::glob_regex;

/// Parses YAML into `T`; an empty document is `T::default()` (Go's decoder leaves the zero
/// value).
pub(crate) fn parse_yaml<T: DeserializeOwned + Default>(
    bytes: &[u8],
) -> Result<T, serde_norway::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    crate::yaml::check_aliasing(bytes)?;
    Ok(serde_norway::from_slice::<Option<T>>(bytes)?.unwrap_or_default())
}

fn read(
    archive: &mut Archive<'_>,
    path: &str,
    kind: &'static str,
) -> Result<Vec<u8>, PackageError> {
    archive
        .read_name(path)
        .ok()
        .flatten()
        .ok_or_else(|| PackageError::ReadPluginFile {
            kind,
            path: path.to_owned(),
        })
}

/// A provider file listed under `plugins.*`.
fn provider<T: DeserializeOwned + Default>(
    archive: &mut Archive<'_>,
    path: &str,
    kind: &'static str,
) -> Result<T, PackageError> {
    let bytes = read(archive, path, kind)?;
    parse_yaml(&bytes).map_err(|e| {
        bad_pricing(&e, path, "plugin")
            .unwrap_or_else(|| PackageError::UnmarshalPluginFile(path.to_owned()))
    })
}

/// A nested file (tool, endpoint, strategy, datasource, event, model).
fn nested<T: DeserializeOwned + Default>(
    archive: &mut Archive<'_>,
    path: &str,
    kind: &'static str,
) -> Result<T, PackageError> {
    let bytes = read(archive, path, kind)?;
    parse_yaml(&bytes).map_err(|e| {
        bad_pricing(&e, path, kind).unwrap_or_else(|| PackageError::UnmarshalFile {
            kind,
            path: path.to_owned(),
        })
    })
}

/// A refused pricing value keeps its reason (upstream's text for other YAML errors has none).
fn bad_pricing(err: &serde_norway::Error, path: &str, kind: &'static str) -> Option<PackageError> {
    let detail = err.to_string();
    detail
        .contains(PRICING_ERROR)
        .then(|| PackageError::BadPricing {
            kind,
            path: path.to_owned(),
            detail,
        })
}

fn nested_all<T: DeserializeOwned + Default>(
    archive: &mut Archive<'_>,
    files: &[String],
    kind: &'static str,
) -> Result<Vec<T>, PackageError> {
    files.iter().map(|f| nested(archive, f, kind)).collect()
}

/// Loads every `plugins.*` file; `inline` are the providers given in the manifest itself.
pub(crate) fn load_providers(
    decl: &PluginDeclaration,
    inline: Providers,
    archive: &mut Archive<'_>,
) -> Result<Providers, PackageError> {
    let mut out = inline;
    let lists = &decl.plugins;
    for path in lists.tools.iter().flatten() {
        let mut p: ToolProviderDeclaration = provider(archive, path, "tool")?;
        let files = std::mem::take(&mut p.tool_files);
        p.tools
            .extend(nested_all::<ToolDeclaration>(archive, &files, "tool")?);
        out.tool = Some(p);
    }
    for path in lists.endpoints.iter().flatten() {
        let mut p: EndpointProviderDeclaration = provider(archive, path, "endpoint")?;
        let files = std::mem::take(&mut p.endpoint_files);
        let loaded = nested_all::<EndpointDeclaration>(archive, &files, "endpoint")?;
        if !loaded.is_empty() {
            p.endpoints.get_or_insert_with(Vec::new).extend(loaded);
        }
        out.endpoint = Some(p);
    }
    for path in lists.models.iter().flatten() {
        let mut p: ModelProviderDeclaration = provider(archive, path, "model")?;
        load_models(archive, &mut p)?;
        out.model = Some(p);
    }
    for path in lists.agent_strategies.iter().flatten() {
        let mut p: AgentStrategyProviderDeclaration = provider(archive, path, "agent strategy")?;
        let files = std::mem::take(&mut p.strategy_files);
        p.strategies.extend(nested_all::<AgentStrategyDeclaration>(
            archive,
            &files,
            "agent strategy",
        )?);
        out.agent_strategy = Some(p);
    }
    for path in lists.datasources.iter().flatten() {
        let mut p: DatasourceProviderDeclaration = provider(archive, path, "datasource")?;
        let files = std::mem::take(&mut p.datasource_files);
        p.datasources.extend(nested_all::<DatasourceDeclaration>(
            archive,
            &files,
            "datasource",
        )?);
        out.datasource = Some(p);
    }
    for path in lists.triggers.iter().flatten() {
        let mut p: TriggerProviderDeclaration = provider(archive, path, "trigger")?;
        let files = std::mem::take(&mut p.event_files);
        p.events
            .extend(nested_all::<EventDeclaration>(archive, &files, "event")?);
        out.trigger = Some(p);
    }
    Ok(out)
}

/// Words upstream uses for a position file's model type in its messages.
fn position_words(model_type: &str) -> &'static str {
    match model_type {
        "llm" => "llm",
        "text_embedding" => "text embedding",
        "rerank" => "rerank",
        "tts" => "tts",
        "speech2text" => "speech2text",
        _ => "moderation",
    }
}

/// Model provider given as a mapping by type: position files → `position` (always present in
/// that form, `{}` when no file is named), then every package entry (zip order) matching a
/// `predefined` glob and not ending in `_position.yaml` → a model, once per matching glob.
fn load_models(
    archive: &mut Archive<'_>,
    p: &mut ModelProviderDeclaration,
) -> Result<(), PackageError> {
    let Some(positions) = p.position_files.take() else {
        return Ok(());
    };
    let mut position = ModelPosition::default();
    for (model_type, file) in positions {
        let words = position_words(&model_type);
        let bytes = archive.read_name(&file).ok().flatten().ok_or_else(|| {
            PackageError::ReadPositionFile {
                kind: words,
                path: file.clone(),
            }
        })?;
        let names: Vec<String> =
            parse_yaml(&bytes).map_err(|_| PackageError::UnmarshalPositionFile {
                kind: words,
                path: file.clone(),
            })?;
        if let Some(slot) = position.slot(&model_type) {
            *slot = Some(names);
        }
    }
    p.position = Some(position);

    let globs: Vec<_> = std::mem::take(&mut p.model_files)
        .iter()
        .filter_map(|g| glob_regex(g, false))
        .collect();
    if globs.is_empty() {
        return Ok(());
    }
    for name in archive.names() {
        if name.ends_with("_position.yaml") {
            continue;
        }
        for re in &globs {
            if re.is_match(&name) {
                let mut model: ModelDeclaration = nested(archive, &name, "model")?;
                model
                    .apply_defaults()
                    .map_err(|_| PackageError::UnmarshalFile {
                        kind: "model",
                        path: name.clone(),
                    })?;
                p.models.push(model);
            }
        }
    }
    Ok(())
}
