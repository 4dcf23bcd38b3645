//! The tenant's providers by kind (http-api §4.5 "Provider projections"): rows of the
//! per-kind projection tables joined with the plugin's declaration of that kind, for
//! `GET …/tools|tool`, `models`, `agent_strategies|agent_strategy`, `datasources|datasource`,
//! `triggers|trigger`, plus `models/bindings` and `tools/check_existence`.

use plugind_entities::management::{ModelBinding, ProviderEntity};
use plugind_entities::{
    DaemonError, ErrorType, PluginDeclaration, PluginUniqueIdentifier, ProviderInstallation,
    ProviderKind,
};
use serde_json::Value;

use crate::state::internal;
use crate::Services;

/// The declaration part listed for `kind`.
fn declaration_of(kind: ProviderKind, declaration: &PluginDeclaration) -> Option<&Value> {
    match kind {
        ProviderKind::Tool => declaration.tool.as_ref(),
        ProviderKind::Model => declaration.model.as_ref(),
        ProviderKind::AgentStrategy => declaration.agent_strategy.as_ref(),
        ProviderKind::Datasource => declaration.datasource.as_ref(),
        ProviderKind::Trigger => declaration.trigger.as_ref(),
    }
}

impl Services {
    /// One page of the tenant's providers of `kind`, newest first.
    pub async fn list_providers(
        &self,
        kind: ProviderKind,
        tenant_id: &str,
        page: i64,
        page_size: i64,
    ) -> Result<Vec<ProviderEntity>, DaemonError> {
        let rows = self
            .inner
            .db
            .list_providers(kind, tenant_id, page, page_size)
            .await
            .map_err(internal)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.provider_entity(kind, row).await?);
        }
        Ok(out)
    }

    /// The tenant's provider `provider` of `plugin_id`. Not installed: `-404 plugin not found`,
    /// except datasources, where upstream answers `-500 record not found`.
    pub async fn get_provider(
        &self,
        kind: ProviderKind,
        tenant_id: &str,
        plugin_id: &str,
        provider: &str,
    ) -> Result<ProviderEntity, DaemonError> {
        let row = self
            .inner
            .db
            .get_provider(kind, tenant_id, plugin_id, provider)
            .await
            .map_err(internal)?
            .ok_or_else(|| match kind {
                ProviderKind::Datasource => DaemonError::internal("record not found"),
                _ => DaemonError::plugin_not_found("plugin not found"),
            })?;
        self.provider_entity(kind, row).await
    }

    async fn provider_entity(
        &self,
        kind: ProviderKind,
        row: ProviderInstallation,
    ) -> Result<ProviderEntity, DaemonError> {
        let uid = &row.plugin_unique_identifier;
        let declaration = self
            .inner
            .db
            .get_declaration(uid)
            .await
            .map_err(internal)?
            .ok_or_else(|| DaemonError::internal(format!("declaration of {uid} not found")))?;
        let meta = match kind {
            ProviderKind::AgentStrategy => {
                Some(serde_json::to_value(&declaration.meta).map_err(internal)?)
            }
            _ => None,
        };
        Ok(ProviderEntity {
            kind,
            declaration: declaration_of(kind, &declaration)
                .cloned()
                .unwrap_or(Value::Null),
            row,
            meta,
        })
    }

    /// `POST …/tools/check_existence`: for each (plugin_id, provider), in order, whether the
    /// tenant has that tool provider.
    pub async fn tools_exist(
        &self,
        tenant_id: &str,
        providers: &[(String, String)],
    ) -> Result<Vec<bool>, DaemonError> {
        let mut out = Vec::with_capacity(providers.len());
        for (plugin_id, provider) in providers {
            let found = self
                .inner
                .db
                .get_provider(ProviderKind::Tool, tenant_id, plugin_id, provider)
                .await
                .map_err(internal)?;
            out.push(found.is_some());
        }
        Ok(out)
    }

    /// `GET …/models/bindings`: model providers of the tenant's current installations, newest
    /// installation first, one per (plugin_id, provider).
    pub async fn model_bindings(&self, tenant_id: &str) -> Result<Vec<ModelBinding>, DaemonError> {
        let rows = self
            .inner
            .db
            .model_bindings(tenant_id)
            .await
            .map_err(internal)?;
        let mut out: Vec<ModelBinding> = Vec::with_capacity(rows.len());
        for (provider, installation) in rows {
            if out
                .iter()
                .any(|b| b.plugin_id == installation.plugin_id && b.provider == provider)
            {
                continue;
            }
            let uid = PluginUniqueIdentifier::parse(&installation.plugin_unique_identifier)
                .map_err(|e| DaemonError::new(ErrorType::UniqueIdentifier, e.to_string()))?;
            let verified = self
                .inner
                .db
                .get_declaration(uid.as_str())
                .await
                .map_err(internal)?
                .is_some_and(|d| d.verified);
            out.push(ModelBinding {
                provider,
                installation_id: installation.id,
                plugin_id: installation.plugin_id,
                version: uid.version().to_owned(),
                plugin_unique_identifier: installation.plugin_unique_identifier,
                runtime_type: installation.runtime_type,
                source: installation.source,
                verified,
            });
        }
        Ok(out)
    }
}
