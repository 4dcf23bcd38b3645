//! The files `plugin init` writes (PSC §9.4), written for plugind. Templates live in
//! `crates/plugind-cli/templates/` and use `{{key}}` placeholders; `*_q` keys are JSON-quoted
//! strings (valid YAML and TOML scalars).

use std::collections::BTreeMap;

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $path))
    };
}

pub const MAIN_PY: &str = template!("common/main.py");
pub const REQUIREMENTS: &str = template!("common/requirements.txt");
pub const PYPROJECT: &str = template!("common/pyproject.toml");
pub const README: &str = template!("common/README.md");
pub const PRIVACY: &str = template!("common/PRIVACY.md");
pub const ENV_EXAMPLE: &str = template!("common/env.example");
pub const DIFYIGNORE: &str = template!("common/difyignore");
pub const GITIGNORE: &str = template!("common/gitignore");
pub const GUIDE: &str = template!("common/GUIDE.md");

pub const TOOL_PROVIDER_YAML: &str = template!("tool/provider.yaml");
pub const TOOL_PROVIDER_PY: &str = template!("tool/provider.py");
pub const TOOL_YAML: &str = template!("tool/tool.yaml");
pub const TOOL_PY: &str = template!("tool/tool.py");

pub const MODEL_PROVIDER_PY: &str = template!("model/provider.py");

pub const ENDPOINT_GROUP_YAML: &str = template!("extension/group.yaml");
pub const ENDPOINT_YAML: &str = template!("extension/endpoint.yaml");
pub const ENDPOINT_PY: &str = template!("extension/endpoint.py");

pub const AGENT_PROVIDER_YAML: &str = template!("agent/provider.yaml");
pub const AGENT_STRATEGY_YAML: &str = template!("agent/strategy.yaml");
pub const AGENT_STRATEGY_PY: &str = template!("agent/strategy.py");

pub const DATASOURCE_PROVIDER_YAML: &str = template!("datasource/provider.yaml");
pub const DATASOURCE_PROVIDER_PY: &str = template!("datasource/provider.py");
pub const DATASOURCE_YAML: &str = template!("datasource/datasource.yaml");
pub const DATASOURCE_PY: &str = template!("datasource/datasource.py");

pub const TRIGGER_PROVIDER_YAML: &str = template!("trigger/provider.yaml");
pub const TRIGGER_PROVIDER_PY: &str = template!("trigger/provider.py");
pub const TRIGGER_EVENT_YAML: &str = template!("trigger/event.yaml");
pub const TRIGGER_EVENT_PY: &str = template!("trigger/event.py");

/// A model type: the `supported_model_types` value, the `models.<key>` / directory name, and
/// its model declaration and class templates.
pub struct ModelKind {
    pub model_type: &'static str,
    pub key: &'static str,
    pub yaml: &'static str,
    pub py: &'static str,
}

pub fn model_kind(category: &str) -> Option<ModelKind> {
    let (model_type, key, yaml, py) = match category {
        "llm" => (
            "llm",
            "llm",
            template!("model/llm.yaml"),
            template!("model/llm.py"),
        ),
        "text-embedding" => (
            "text-embedding",
            "text_embedding",
            template!("model/text_embedding.yaml"),
            template!("model/text_embedding.py"),
        ),
        "rerank" => (
            "rerank",
            "rerank",
            template!("model/rerank.yaml"),
            template!("model/rerank.py"),
        ),
        "tts" => (
            "tts",
            "tts",
            template!("model/tts.yaml"),
            template!("model/tts.py"),
        ),
        "speech2text" => (
            "speech2text",
            "speech2text",
            template!("model/speech2text.yaml"),
            template!("model/speech2text.py"),
        ),
        "moderation" => (
            "moderation",
            "moderation",
            template!("model/moderation.yaml"),
            template!("model/moderation.py"),
        ),
        _ => return None,
    };
    Some(ModelKind {
        model_type,
        key,
        yaml,
        py,
    })
}

/// Replaces every `{{key}}`; unknown placeholders are left as they are.
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if vars.contains_key(&after[..end]) => {
                out.push_str(&vars[&after[..end]]);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A simple square icon with the plugin's initial, light or dark.
pub fn icon_svg(initial: char, color: &str, dark: bool) -> String {
    let (bg, fg) = if dark {
        ("#1F2937", color)
    } else {
        (color, "#FFFFFF")
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\" viewBox=\"0 0 64 64\">\
         <rect width=\"64\" height=\"64\" rx=\"14\" fill=\"{bg}\"/>\
         <text x=\"32\" y=\"43\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"30\" \
         font-weight=\"700\" text-anchor=\"middle\" fill=\"{fg}\">{initial}</text></svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_replaces_known_keys_only() {
        let mut v = BTreeMap::new();
        v.insert("a", "1".to_owned());
        assert_eq!(render("x{{a}}y{{b}}z{{", &v), "x1y{{b}}z{{");
    }
}
