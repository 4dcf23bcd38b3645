//! The manifest checks of the upload path (PSC §1.2.3 level 1): author and name regexes and
//! category exclusivity (§1.6). Nothing field-level beyond that.

use plugind_entities::{naming, PluginDeclaration};

use crate::error::PackageError;

/// Author and name rules.
pub(crate) fn check_identity(decl: &PluginDeclaration) -> Result<(), PackageError> {
    if !naming::is_author(&decl.author) {
        return Err(PackageError::InvalidAuthor);
    }
    if !naming::is_manifest_name(&decl.name) {
        return Err(PackageError::InvalidName);
    }
    Ok(())
}

/// Category exclusivity; only tool + endpoint may be combined.
pub(crate) fn check_categories(decl: &PluginDeclaration) -> Result<(), PackageError> {
    let (tool, model, endpoint) = (decl.has_tool(), decl.has_model(), decl.has_endpoint());
    let (agent, datasource, trigger) = (
        decl.has_agent_strategy(),
        decl.has_datasource(),
        decl.has_trigger(),
    );
    let count = [tool, model, endpoint, agent, datasource, trigger]
        .iter()
        .filter(|b| **b)
        .count();
    let message = if count == 0 {
        "at least one of endpoint, model, tool, agent_strategy, trigger, or datasource must be provided"
    } else if model && count > 1 {
        "model and datasource, tool, endpoint, trigger, or agent_strategy cannot be provided at the same time"
    } else if agent && count > 1 {
        "agent_strategy and tool, model, endpoint, trigger, or datasource cannot be provided at the same time"
    } else if datasource && count > 1 {
        "datasource and tool, model, endpoint, trigger, or agent_strategy cannot be provided at the same time"
    } else if trigger && count > 1 {
        "trigger and tool, model, endpoint, or agent_strategy cannot be provided at the same time"
    } else {
        return Ok(());
    };
    Err(PackageError::IllegalManifest(message.to_owned()))
}
