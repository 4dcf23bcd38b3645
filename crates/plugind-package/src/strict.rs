//! Strict validation of a whole declaration (PSC §1.2.3 levels 2/3): every declared rule of the
//! manifest and of the provider declarations, as upstream's struct validation runs it for the CLI
//! packager and for JSON declarations. Never run on the upload path.
//!
//! Messages have the shape of upstream's validator errors, one per failing field:
//! `Key: 'PluginDeclaration.Tool.Identity.Name' Error:Field validation for 'Name' failed on the
//! 'tool_provider_identity_name' tag`. Like upstream, a field reports only its first failing rule,
//! and the model declarations inside a model provider are not validated (upstream does not dive
//! into that list).

use std::sync::LazyLock;

use plugind_entities::{naming, I18nObject, PluginDeclaration};
use regex::Regex;
use serde_json::Value;

use crate::declarations::{
    AgentStrategyProviderDeclaration, CredentialFormSchema, DatasourceProviderDeclaration,
    EndpointProviderDeclaration, EventParameter, ModelProviderDeclaration, OAuthSchema,
    ParameterAutoGenerate, ParameterOption, ProviderConfig, Providers, ToolProviderDeclaration,
    ToolProviderIdentity, TriggerProviderDeclaration, AGENT_STRATEGY_PARAMETER_TYPES,
    CONFIGURATE_METHODS, DATASOURCE_PARAMETER_TYPES, DATASOURCE_PROVIDER_TYPES, ENDPOINT_METHODS,
    EVENT_PARAMETER_TYPES, MODEL_FORM_TYPES, MODEL_TYPES, PLUGIN_TAGS, TOOL_PARAMETER_FORMS,
    TOOL_PARAMETER_TYPES,
};

#[allow(clippy::expect_used)]
static IDENTITY_NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_-]+$").expect("static regex"));
#[allow(clippy::expect_used)]
static URL_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$").expect("static regex"));

/// `ProviderConfig.type` values (`credential_type`); `any` exists upstream but is not accepted.
const CONFIG_TYPES: [&str; 7] = [
    "secret-input",
    "text-input",
    "select",
    "boolean",
    "app-selector",
    "model-selector",
    "array[tools]",
];
const APP_SCOPES: [&str; 4] = ["all", "chat", "workflow", "completion"];
const MODEL_SCOPES: [&str; 9] = [
    "llm",
    "text-embedding",
    "rerank",
    "tts",
    "speech2text",
    "moderation",
    "vision",
    "document",
    "tool-call",
];
const ANY_SCOPES: [&str; 7] = [
    "string",
    "number",
    "object",
    "array[number]",
    "array[string]",
    "array[object]",
    "array[file]",
];
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Validates the manifest fields and every provider declaration against upstream's declared
/// rules. `Err` lists every failing field.
pub fn validate_declaration(decl: &PluginDeclaration) -> Result<(), Vec<String>> {
    let mut v = Validator::default();
    v.manifest(decl);
    let (providers, errors) = Providers::from_declaration(decl);
    v.errors.extend(errors);
    v.providers(&providers);
    if v.errors.is_empty() {
        Ok(())
    } else {
        Err(v.errors)
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn in_list(list: &[&str], s: &str) -> bool {
    list.contains(&s)
}

/// Upstream's `is_scope`: `&`-separated, trimmed, valid when any item is allowed for the type.
fn scope_ok(allowed: Option<&[&str]>, scope: &str) -> bool {
    let Some(allowed) = allowed else {
        return false;
    };
    scope
        .split('&')
        .map(str::trim)
        .any(|s| allowed.contains(&s))
}

fn scopes_for(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "app-selector" => Some(&APP_SCOPES),
        "model-selector" => Some(&MODEL_SCOPES),
        "any" => Some(&ANY_SCOPES),
        _ => None,
    }
}

fn is_basic(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

#[derive(Default)]
struct Validator {
    errors: Vec<String>,
}

impl Validator {
    fn fail(&mut self, ns: &str, tag: &str) {
        let field = ns.rsplit('.').next().unwrap_or(ns);
        self.errors.push(format!(
            "Key: '{ns}' Error:Field validation for '{field}' failed on the '{tag}' tag"
        ));
    }

    /// `required` + optional extra checks; stops at the first failing rule.
    fn required(&mut self, ns: &str, s: &str) -> bool {
        if s.is_empty() {
            self.fail(ns, "required");
            return false;
        }
        true
    }

    fn lt(&mut self, ns: &str, s: &str, n: usize) -> bool {
        if chars(s) >= n {
            self.fail(ns, "lt");
            return false;
        }
        true
    }

    fn max(&mut self, ns: &str, s: &str, n: usize) -> bool {
        if chars(s) > n {
            self.fail(ns, "max");
            return false;
        }
        true
    }

    fn one_of(&mut self, ns: &str, s: &str, list: &[&str], tag: &str) {
        if !in_list(list, s) {
            self.fail(ns, tag);
        }
    }

    fn required_one_of(&mut self, ns: &str, s: &str, list: &[&str], tag: &str) {
        if self.required(ns, s) {
            self.one_of(ns, s, list, tag);
        }
    }

    fn i18n(&mut self, ns: &str, o: &I18nObject) {
        let en = format!("{ns}.EnUS");
        if self.required(&en, &o.en_us) {
            self.lt(&en, &o.en_us, 1024);
        }
        self.lt(&format!("{ns}.JaJp"), &o.ja_jp, 1024);
        self.lt(&format!("{ns}.ZhHans"), &o.zh_hans, 1024);
        self.lt(&format!("{ns}.PtBr"), &o.pt_br, 1024);
    }

    fn opt_i18n(&mut self, ns: &str, o: &Option<I18nObject>) {
        if let Some(o) = o {
            self.i18n(ns, o);
        }
    }

    fn tags(&mut self, ns: &str, tags: &[String]) {
        for (i, t) in tags.iter().enumerate() {
            self.one_of(&format!("{ns}[{i}]"), t, &PLUGIN_TAGS, "plugin_tag");
        }
    }

    fn manifest(&mut self, d: &PluginDeclaration) {
        let ns = "PluginDeclaration.PluginDeclarationWithoutAdvancedFields";
        let f = |name: &str| format!("{ns}.{name}");
        if self.required(&f("Version"), &d.version) && !naming::is_manifest_version(&d.version) {
            self.fail(&f("Version"), "version");
        }
        if self.required(&f("Type"), &d.kind) && d.kind != "plugin" {
            self.fail(&f("Type"), "eq");
        }
        self.max(&f("Author"), &d.author, 64);
        if self.required(&f("Name"), &d.name) {
            self.max(&f("Name"), &d.name, 128);
        }
        self.i18n(&f("Label"), &d.label);
        self.i18n(&f("Description"), &d.description);
        if self.required(&f("Icon"), &d.icon) {
            self.max(&f("Icon"), &d.icon, 128);
        }
        self.max(&f("IconDark"), &d.icon_dark, 128);
        if d.resource.memory == 0 {
            self.fail(&f("Resource.Memory"), "required");
        }
        if let Some(size) = d
            .resource
            .permission
            .as_ref()
            .and_then(|p| p.get("storage"))
            .map(|s| s.get("size").and_then(Value::as_u64).unwrap_or(0))
        {
            let ns = f("Resource.Permission.Storage.Size");
            if size < 1024 {
                self.fail(&ns, "min");
            } else if size > 1_073_741_824 {
                self.fail(&ns, "max");
            }
        }
        let p = &d.plugins;
        for (name, list) in [
            ("Tools", &p.tools),
            ("Models", &p.models),
            ("Endpoints", &p.endpoints),
            ("AgentStrategies", &p.agent_strategies),
            ("Datasources", &p.datasources),
            ("Triggers", &p.triggers),
        ] {
            for (i, path) in list.iter().flatten().enumerate() {
                self.max(&f(&format!("Plugins.{name}[{i}]")), path, 128);
            }
        }
        let m = &d.meta;
        if self.required(&f("Meta.Version"), &m.version) && !naming::is_manifest_version(&m.version)
        {
            self.fail(&f("Meta.Version"), "version");
        }
        if m.arch.is_empty() {
            self.fail(&f("Meta.Arch"), "required");
        }
        for (i, a) in m.arch.iter().enumerate() {
            self.one_of(
                &f(&format!("Meta.Arch[{i}]")),
                a,
                &["amd64", "arm64"],
                "is_available_arch",
            );
        }
        let r = &m.runner;
        self.required_one_of(
            &f("Meta.Runner.Language"),
            &r.language,
            &["python"],
            "is_available_language",
        );
        if self.required(&f("Meta.Runner.Version"), &r.version) {
            self.max(&f("Meta.Runner.Version"), &r.version, 128);
        }
        if self.required(&f("Meta.Runner.Entrypoint"), &r.entrypoint) {
            self.max(&f("Meta.Runner.Entrypoint"), &r.entrypoint, 256);
        }
        for (i, t) in d.tags.iter().enumerate() {
            let ns = f(&format!("Tags[{i}]"));
            if !in_list(&PLUGIN_TAGS, t) {
                self.fail(&ns, "plugin_tag");
            } else {
                self.max(&ns, t, 128);
            }
        }
        if d.created_at.is_empty() || d.created_at == GO_ZERO_TIME {
            self.fail(&f("CreatedAt"), "required");
        }
        if let Some(repo) = &d.repo {
            if !URL_RE.is_match(repo) {
                self.fail(&f("Repo"), "url");
            }
        }
    }

    fn providers(&mut self, p: &Providers) {
        if let Some(e) = &p.endpoint {
            self.endpoint("PluginDeclaration.Endpoint", e);
        }
        if let Some(m) = &p.model {
            self.model("PluginDeclaration.Model", m);
        }
        if let Some(t) = &p.tool {
            self.tool("PluginDeclaration.Tool", t);
        }
        if let Some(a) = &p.agent_strategy {
            self.agent("PluginDeclaration.AgentStrategy", a);
        }
        if let Some(d) = &p.datasource {
            self.datasource("PluginDeclaration.Datasource", d);
        }
        if let Some(t) = &p.trigger {
            self.trigger("PluginDeclaration.Trigger", t);
        }
    }

    fn config(&mut self, ns: &str, c: &ProviderConfig) {
        if !c.name.is_empty() {
            self.lt(&format!("{ns}.Name"), &c.name, 1024);
        }
        self.required_one_of(
            &format!("{ns}.Type"),
            &c.kind,
            &CONFIG_TYPES,
            "credential_type",
        );
        if let Some(scope) = &c.scope {
            if !scope_ok(scopes_for(&c.kind), scope) {
                self.fail(&format!("{ns}.Scope"), "is_scope");
            }
        }
        if c.default.as_ref().is_some_and(|d| !is_basic(d)) {
            self.fail(&format!("{ns}.Default"), "is_basic_type");
        }
        if let Some(options) = &c.options {
            if options.len() >= 128 {
                self.fail(&format!("{ns}.Options"), "lt");
            } else {
                for (i, o) in options.iter().enumerate() {
                    let ons = format!("{ns}.Options[{i}]");
                    if self.required(&format!("{ons}.Value"), &o.value) {
                        self.lt(&format!("{ons}.Value"), &o.value, 128);
                    }
                    self.i18n(&format!("{ons}.Label"), &o.label);
                }
            }
        }
        self.i18n(&format!("{ns}.Label"), &c.label);
        self.opt_i18n(&format!("{ns}.Help"), &c.help);
        self.opt_i18n(&format!("{ns}.Placeholder"), &c.placeholder);
    }

    fn configs(&mut self, ns: &str, list: &[ProviderConfig]) {
        for (i, c) in list.iter().enumerate() {
            self.config(&format!("{ns}[{i}]"), c);
        }
    }

    fn oauth(&mut self, ns: &str, o: &Option<OAuthSchema>) {
        if let Some(o) = o {
            self.configs(
                &format!("{ns}.ClientSchema"),
                o.client_schema.as_deref().unwrap_or_default(),
            );
            self.configs(
                &format!("{ns}.CredentialsSchema"),
                o.credentials_schema.as_deref().unwrap_or_default(),
            );
        }
    }

    fn auto_generate(&mut self, ns: &str, a: &Option<ParameterAutoGenerate>) {
        if let Some(a) = a {
            self.required_one_of(
                &format!("{ns}.Type"),
                &a.kind,
                &["prompt_instruction"],
                "parameter_auto_generate_type",
            );
        }
    }

    fn options(&mut self, ns: &str, options: &Option<Vec<ParameterOption>>) {
        for (i, o) in options.iter().flatten().enumerate() {
            self.required(&format!("{ns}[{i}].Value"), &o.value);
            self.i18n(&format!("{ns}[{i}].Label"), &o.label);
        }
    }

    fn scope(&mut self, ns: &str, scope: &Option<String>, allowed: Option<&[&str]>) {
        if let Some(s) = scope {
            let ns = format!("{ns}.Scope");
            if self.max(&ns, s, 1024) && !scope_ok(allowed, s) {
                self.fail(&ns, "is_scope");
            }
        }
    }

    fn default_value(&mut self, ns: &str, d: &Option<Value>) {
        if d.as_ref().is_some_and(|d| !is_basic(d)) {
            self.fail(&format!("{ns}.Default"), "is_basic_type");
        }
    }

    fn name_1023(&mut self, ns: &str, name: &str) {
        let ns = format!("{ns}.Name");
        if self.required(&ns, name) {
            self.lt(&ns, name, 1024);
        }
    }

    fn provider_identity(&mut self, ns: &str, i: &ToolProviderIdentity, name_tag: &str) {
        self.required(&format!("{ns}.Author"), &i.author);
        let name = format!("{ns}.Name");
        if self.required(&name, &i.name) && !IDENTITY_NAME_RE.is_match(&i.name) {
            self.fail(&name, name_tag);
        }
        self.i18n(&format!("{ns}.Description"), &i.description);
        self.required(&format!("{ns}.Icon"), &i.icon);
        self.i18n(&format!("{ns}.Label"), &i.label);
        self.tags(&format!("{ns}.Tags"), &i.tags);
    }

    fn small_identity(
        &mut self,
        ns: &str,
        author: &str,
        name: &str,
        label: &I18nObject,
        name_tag: Option<&str>,
    ) {
        self.required(&format!("{ns}.Author"), author);
        let nns = format!("{ns}.Name");
        if self.required(&nns, name) {
            if let Some(tag) = name_tag {
                if !IDENTITY_NAME_RE.is_match(name) {
                    self.fail(&nns, tag);
                }
            }
        }
        self.i18n(&format!("{ns}.Label"), label);
    }

    fn tool(&mut self, ns: &str, t: &ToolProviderDeclaration) {
        self.provider_identity(
            &format!("{ns}.Identity"),
            &t.identity,
            "tool_provider_identity_name",
        );
        self.configs(&format!("{ns}.CredentialsSchema"), &t.credentials_schema);
        self.oauth(&format!("{ns}.OAuthSchema"), &t.oauth_schema);
        for (i, tool) in t.tools.iter().enumerate() {
            let tns = format!("{ns}.Tools[{i}]");
            let id = &tool.identity;
            self.small_identity(
                &format!("{tns}.Identity"),
                &id.author,
                &id.name,
                &id.label,
                Some("tool_identity_name"),
            );
            self.i18n(&format!("{tns}.Description.Human"), &tool.description.human);
            self.required(&format!("{tns}.Description.LLM"), &tool.description.llm);
            for (j, p) in tool.parameters.iter().flatten().enumerate() {
                let pns = format!("{tns}.Parameters[{j}]");
                self.name_1023(&pns, &p.name);
                self.i18n(&format!("{pns}.Label"), &p.label);
                self.i18n(&format!("{pns}.HumanDescription"), &p.human_description);
                self.required_one_of(
                    &format!("{pns}.Type"),
                    &p.kind,
                    &TOOL_PARAMETER_TYPES,
                    "tool_parameter_type",
                );
                self.scope(&pns, &p.scope, scopes_for(&p.kind));
                self.required_one_of(
                    &format!("{pns}.Form"),
                    &p.form,
                    &TOOL_PARAMETER_FORMS,
                    "tool_parameter_form",
                );
                self.auto_generate(&format!("{pns}.AutoGenerate"), &p.auto_generate);
                self.options(&format!("{pns}.Options"), &p.options);
            }
        }
    }

    fn form_schema(&mut self, ns: &str, s: &CredentialFormSchema) {
        let var = format!("{ns}.Variable");
        if self.required(&var, &s.variable) {
            self.lt(&var, &s.variable, 256);
        }
        self.i18n(&format!("{ns}.Label"), &s.label);
        self.required_one_of(
            &format!("{ns}.Type"),
            &s.kind,
            &MODEL_FORM_TYPES,
            "model_provider_form_type",
        );
        if let Some(d) = &s.default {
            self.lt(&format!("{ns}.Default"), d, 256);
        }
        if s.options.len() > 128 {
            self.fail(&format!("{ns}.Options"), "lte");
        } else {
            for (i, o) in s.options.iter().enumerate() {
                let ons = format!("{ns}.Options[{i}]");
                self.i18n(&format!("{ons}.Label"), &o.label);
                if self.required(&format!("{ons}.Value"), &o.value) {
                    self.lt(&format!("{ons}.Value"), &o.value, 256);
                }
                self.show_on(&format!("{ons}.ShowOn"), &o.show_on);
            }
        }
        self.opt_i18n(&format!("{ns}.Help"), &s.help);
        self.opt_i18n(&format!("{ns}.Placeholder"), &s.placeholder);
        self.show_on(&format!("{ns}.ShowOn"), &s.show_on);
    }

    fn show_on(&mut self, ns: &str, list: &[crate::declarations::ShowOn]) {
        if list.len() > 16 {
            self.fail(ns, "lte");
            return;
        }
        for (i, s) in list.iter().enumerate() {
            for (field, value) in [("Variable", &s.variable), ("Value", &s.value)] {
                let fns = format!("{ns}[{i}].{field}");
                if self.required(&fns, value) {
                    self.lt(&fns, value, 256);
                }
            }
        }
    }

    fn form_schemas(&mut self, ns: &str, list: &[CredentialFormSchema]) {
        if list.len() > 32 {
            self.fail(ns, "lte");
            return;
        }
        for (i, s) in list.iter().enumerate() {
            self.form_schema(&format!("{ns}[{i}]"), s);
        }
    }

    fn model(&mut self, ns: &str, m: &ModelProviderDeclaration) {
        let pns = format!("{ns}.Provider");
        if self.required(&pns, &m.provider) {
            self.lt(&pns, &m.provider, 256);
        }
        self.i18n(&format!("{ns}.Label"), &m.label);
        self.opt_i18n(&format!("{ns}.Description"), &m.description);
        self.opt_i18n(&format!("{ns}.IconSmall"), &m.icon_small);
        self.opt_i18n(&format!("{ns}.IconLarge"), &m.icon_large);
        self.opt_i18n(&format!("{ns}.IconSmallDark"), &m.icon_small_dark);
        self.opt_i18n(&format!("{ns}.IconLargeDark"), &m.icon_large_dark);
        if let Some(h) = &m.help {
            self.i18n(&format!("{ns}.Help.Title"), &h.title);
            self.i18n(&format!("{ns}.Help.URL"), &h.url);
        }
        for (field, list, allowed, tag) in [
            (
                "SupportedModelTypes",
                &m.supported_model_types,
                &MODEL_TYPES[..],
                "model_type",
            ),
            (
                "ConfigurateMethods",
                &m.configurate_methods,
                &CONFIGURATE_METHODS[..],
                "model_provider_configurate_method",
            ),
        ] {
            let fns = format!("{ns}.{field}");
            match list {
                None => self.fail(&fns, "required"),
                Some(l) if l.len() > 16 => self.fail(&fns, "lte"),
                Some(l) => {
                    for (i, t) in l.iter().enumerate() {
                        self.one_of(&format!("{fns}[{i}]"), t, allowed, tag);
                    }
                }
            }
        }
        if let Some(s) = &m.provider_credential_schema {
            self.form_schemas(
                &format!("{ns}.ProviderCredentialSchema.CredentialFormSchemas"),
                &s.credential_form_schemas,
            );
        }
        if let Some(s) = &m.model_credential_schema {
            self.i18n(
                &format!("{ns}.ModelCredentialSchema.Model.Label"),
                &s.model.label,
            );
            self.opt_i18n(
                &format!("{ns}.ModelCredentialSchema.Model.Placeholder"),
                &s.model.placeholder,
            );
            self.form_schemas(
                &format!("{ns}.ModelCredentialSchema.CredentialFormSchemas"),
                &s.credential_form_schemas,
            );
        }
    }

    fn endpoint(&mut self, ns: &str, e: &EndpointProviderDeclaration) {
        self.configs(
            &format!("{ns}.Settings"),
            e.settings.as_deref().unwrap_or_default(),
        );
        for (i, ep) in e.endpoints.iter().flatten().enumerate() {
            let ens = format!("{ns}.Endpoints[{i}]");
            self.required(&format!("{ens}.Path"), &ep.path);
            self.required_one_of(
                &format!("{ens}.Method"),
                &ep.method,
                &ENDPOINT_METHODS,
                "is_available_endpoint_method",
            );
        }
    }

    fn agent(&mut self, ns: &str, a: &AgentStrategyProviderDeclaration) {
        self.provider_identity(
            &format!("{ns}.Identity.ToolProviderIdentity"),
            &a.identity,
            "tool_provider_identity_name",
        );
        for (i, s) in a.strategies.iter().enumerate() {
            let sns = format!("{ns}.Strategies[{i}]");
            let id = &s.identity;
            self.small_identity(
                &format!("{sns}.Identity.ToolIdentity"),
                &id.author,
                &id.name,
                &id.label,
                Some("tool_identity_name"),
            );
            self.i18n(&format!("{sns}.Description"), &s.description);
            for (j, p) in s.parameters.iter().flatten().enumerate() {
                let pns = format!("{sns}.Parameters[{j}]");
                self.name_1023(&pns, &p.name);
                self.i18n(&format!("{pns}.Label"), &p.label);
                if p.help != I18nObject::default() {
                    self.i18n(&format!("{pns}.Help"), &p.help);
                }
                self.required_one_of(
                    &format!("{pns}.Type"),
                    &p.kind,
                    &AGENT_STRATEGY_PARAMETER_TYPES,
                    "agent_strategy_parameter_type",
                );
                self.auto_generate(&format!("{pns}.AutoGenerate"), &p.auto_generate);
                self.scope(&pns, &p.scope, scopes_for(&p.kind));
                self.default_value(&pns, &p.default);
                self.options(&format!("{pns}.Options"), &p.options);
            }
            for (k, feature) in s.features.iter().enumerate() {
                self.lt(&format!("{sns}.Features[{k}]"), feature, 256);
            }
        }
    }

    fn datasource(&mut self, ns: &str, d: &DatasourceProviderDeclaration) {
        let ins = format!("{ns}.Identity");
        let id = &d.identity;
        self.required(&format!("{ins}.Author"), &id.author);
        self.required(&format!("{ins}.Name"), &id.name);
        self.i18n(&format!("{ins}.Description"), &id.description);
        self.required(&format!("{ins}.Icon"), &id.icon);
        self.i18n(&format!("{ins}.Label"), &id.label);
        self.tags(&format!("{ins}.Tags"), &id.tags);
        self.configs(&format!("{ns}.CredentialsSchema"), &d.credentials_schema);
        self.oauth(&format!("{ns}.OAuthSchema"), &d.oauth_schema);
        self.required_one_of(
            &format!("{ns}.ProviderType"),
            &d.provider_type,
            &DATASOURCE_PROVIDER_TYPES,
            "datasource_provider_type",
        );
        for (i, ds) in d.datasources.iter().enumerate() {
            let dns = format!("{ns}.Datasources[{i}]");
            let id = &ds.identity;
            self.small_identity(
                &format!("{dns}.Identity"),
                &id.author,
                &id.name,
                &id.label,
                None,
            );
            match &ds.parameters {
                None => self.fail(&format!("{dns}.Parameters"), "required"),
                Some(params) => {
                    for (j, p) in params.iter().enumerate() {
                        let pns = format!("{dns}.Parameters[{j}]");
                        self.name_1023(&pns, &p.name);
                        self.i18n(&format!("{pns}.Label"), &p.label);
                        self.required_one_of(
                            &format!("{pns}.Type"),
                            &p.kind,
                            &DATASOURCE_PARAMETER_TYPES,
                            "datasource_parameter_type",
                        );
                        // Upstream's scope rule knows no datasource parameter: any scope fails.
                        self.scope(&pns, &p.scope, None);
                        self.auto_generate(&format!("{pns}.AutoGenerate"), &p.auto_generate);
                        self.default_value(&pns, &p.default);
                        self.options(&format!("{pns}.Options"), &p.options);
                        self.i18n(&format!("{pns}.Description"), &p.description);
                    }
                }
            }
            self.i18n(&format!("{dns}.Description"), &ds.description);
        }
    }

    fn event_parameters(&mut self, ns: &str, params: &[EventParameter]) {
        for (j, p) in params.iter().enumerate() {
            let pns = format!("{ns}[{j}]");
            self.required(&format!("{pns}.Name"), &p.name);
            self.i18n(&format!("{pns}.Label"), &p.label);
            self.required_one_of(
                &format!("{pns}.Type"),
                &p.kind,
                &EVENT_PARAMETER_TYPES,
                "event_parameter_type",
            );
            self.auto_generate(&format!("{pns}.AutoGenerate"), &p.auto_generate);
            for (k, o) in p.options.iter().flatten().enumerate() {
                let ons = format!("{pns}.Options[{k}]");
                self.i18n(&format!("{ons}.Label"), &o.label);
                if o.value.is_none() {
                    self.fail(&format!("{ons}.Value"), "required");
                }
            }
            self.opt_i18n(&format!("{pns}.Description"), &p.description);
        }
    }

    fn trigger(&mut self, ns: &str, t: &TriggerProviderDeclaration) {
        self.provider_identity(
            &format!("{ns}.Identity"),
            &t.identity,
            "tool_provider_identity_name",
        );
        if let Some(c) = &t.subscription_constructor {
            let cns = format!("{ns}.SubscriptionConstructor");
            self.event_parameters(&format!("{cns}.Parameters"), &c.parameters);
            self.configs(&format!("{cns}.CredentialsSchema"), &c.credentials_schema);
            self.oauth(&format!("{cns}.OAuthSchema"), &c.oauth_schema);
        }
        for (i, e) in t.events.iter().enumerate() {
            let ens = format!("{ns}.Events[{i}]");
            let id = &e.identity;
            self.small_identity(
                &format!("{ens}.Identity"),
                &id.author,
                &id.name,
                &id.label,
                Some("event_identity_name"),
            );
            self.event_parameters(
                &format!("{ens}.Parameters"),
                e.parameters.as_deref().unwrap_or_default(),
            );
            self.i18n(&format!("{ens}.Description"), &e.description);
        }
    }
}
