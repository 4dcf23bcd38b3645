//! Read-only listings: installations and install tasks (http-api §4.5); providers by kind are
//! in [`crate::providers`].

use plugind_entities::management::{
    CategoryFilter, InstallationWithDeclaration, MissingPlugin, PluginEntity, PluginList,
};
use plugind_entities::{
    DaemonError, InstallTask, PluginCategory, PluginDeclaration, PluginInstallation,
    PluginUniqueIdentifier,
};
use serde_json::Value;

use crate::state::internal;
use crate::Services;

impl Services {
    async fn declaration(&self, uid: &str) -> Result<PluginDeclaration, DaemonError> {
        self.inner
            .db
            .get_declaration(uid)
            .await
            .map_err(internal)?
            .ok_or_else(|| DaemonError::internal(format!("declaration of {uid} not found")))
    }

    pub async fn list_plugins(
        &self,
        tenant_id: &str,
        page: i64,
        page_size: i64,
    ) -> Result<PluginList, DaemonError> {
        let (installations, total) = self
            .inner
            .db
            .list_installations(tenant_id, page, page_size)
            .await
            .map_err(internal)?;
        let mut list = Vec::with_capacity(installations.len());
        for installation in installations {
            let declaration = self
                .declaration(&installation.plugin_unique_identifier)
                .await?;
            list.push(entity(installation, declaration));
        }
        Ok(PluginList { list, total })
    }

    pub async fn list_tasks(
        &self,
        tenant_id: &str,
        page: i64,
        page_size: i64,
    ) -> Result<Vec<InstallTask>, DaemonError> {
        self.inner
            .db
            .list_tasks(tenant_id, page, page_size)
            .await
            .map_err(internal)
    }

    pub async fn get_task(&self, tenant_id: &str, id: &str) -> Result<InstallTask, DaemonError> {
        self.inner
            .db
            .get_task(tenant_id, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| DaemonError::internal("record not found"))
    }

    pub async fn delete_task(&self, tenant_id: &str, id: &str) -> Result<bool, DaemonError> {
        self.inner
            .db
            .delete_task(tenant_id, id)
            .await
            .map_err(internal)?;
        Ok(true)
    }

    pub async fn delete_all_tasks(&self, tenant_id: &str) -> Result<bool, DaemonError> {
        self.inner
            .db
            .delete_all_tasks(tenant_id)
            .await
            .map_err(internal)?;
        Ok(true)
    }

    pub async fn delete_task_entry(
        &self,
        tenant_id: &str,
        id: &str,
        uid: &str,
    ) -> Result<bool, DaemonError> {
        let uid = PluginUniqueIdentifier::parse(uid)
            .map_err(|e| DaemonError::bad_request(e.to_string()))?;
        self.inner
            .db
            .delete_task_entry(tenant_id, id, uid.as_str())
            .await
            .map_err(internal)?;
        Ok(true)
    }

    /// `GET …/fetch/identifier`: is the uid installed by any tenant?
    pub async fn plugin_exists(&self, uid: &str) -> Result<bool, DaemonError> {
        let uid = PluginUniqueIdentifier::parse(uid)
            .map_err(|e| DaemonError::bad_request(e.to_string()))?;
        self.inner
            .db
            .plugin_exists(uid.as_str())
            .await
            .map_err(internal)
    }

    /// `GET …/fetch/manifest`.
    pub async fn fetch_manifest(&self, uid: &str) -> Result<PluginDeclaration, DaemonError> {
        let uid = PluginUniqueIdentifier::parse(uid)
            .map_err(|e| DaemonError::bad_request(e.to_string()))?;
        self.inner
            .db
            .get_declaration(uid.as_str())
            .await
            .map_err(internal)?
            .ok_or_else(|| DaemonError::bad_request("plugin not found"))
    }

    /// `POST …/installation/fetch/batch`: the tenant's installations of these plugin ids.
    pub async fn installations_by_plugin_ids(
        &self,
        tenant_id: &str,
        plugin_ids: &[String],
    ) -> Result<Vec<InstallationWithDeclaration>, DaemonError> {
        let mut out = Vec::new();
        for plugin_id in plugin_ids.iter().take(256) {
            let Some(i) = self
                .inner
                .db
                .get_installation(tenant_id, plugin_id)
                .await
                .map_err(internal)?
            else {
                continue;
            };
            let uid = PluginUniqueIdentifier::parse(&i.plugin_unique_identifier)
                .map_err(|e| DaemonError::bad_request(e.to_string()))?;
            let declaration = self.declaration(uid.as_str()).await?;
            out.push(InstallationWithDeclaration {
                version: uid.version().to_owned(),
                checksum: uid.checksum().to_owned(),
                id: i.id,
                created_at: i.created_at,
                updated_at: i.updated_at,
                tenant_id: i.tenant_id,
                plugin_id: i.plugin_id,
                plugin_unique_identifier: i.plugin_unique_identifier,
                runtime_type: i.runtime_type,
                endpoints_setups: i.endpoints_setups,
                endpoints_active: i.endpoints_active,
                source: i.source,
                meta: i.meta,
                declaration,
            });
        }
        Ok(out)
    }

    /// `POST …/installation/missing`: identifiers the tenant lacks, or has in another version.
    pub async fn missing_plugins(
        &self,
        tenant_id: &str,
        uids: &[String],
    ) -> Result<Vec<MissingPlugin>, DaemonError> {
        let mut out = Vec::new();
        for raw in uids {
            let uid = PluginUniqueIdentifier::parse(raw)
                .map_err(|e| DaemonError::bad_request(e.to_string()))?;
            let installed = self
                .inner
                .db
                .get_installation(tenant_id, uid.plugin_id())
                .await
                .map_err(internal)?;
            match installed {
                None => out.push(MissingPlugin {
                    plugin_unique_identifier: raw.clone(),
                    current_identifier: String::new(),
                }),
                Some(i) if i.plugin_unique_identifier != *raw => out.push(MissingPlugin {
                    plugin_unique_identifier: raw.clone(),
                    current_identifier: i.plugin_unique_identifier,
                }),
                Some(_) => {}
            }
        }
        Ok(out)
    }

    /// Every installation of the tenant with its declaration, newest first.
    async fn all_installations(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<(PluginInstallation, PluginDeclaration)>, DaemonError> {
        let (installations, _) = self
            .inner
            .db
            .list_installations(tenant_id, 1, i64::from(i32::MAX))
            .await
            .map_err(internal)?;
        let mut out = Vec::with_capacity(installations.len());
        for installation in installations {
            let declaration = self
                .declaration(&installation.plugin_unique_identifier)
                .await?;
            out.push((installation, declaration));
        }
        Ok(out)
    }

    /// `GET …/installation/ids`: plugin ids of one category, newest first, de-duplicated.
    pub async fn installed_plugin_ids(
        &self,
        tenant_id: &str,
        category: &str,
    ) -> Result<Value, DaemonError> {
        let category = PluginCategory::parse(category)
            .ok_or_else(|| DaemonError::bad_request(format!("invalid category: {category}")))?;
        let mut ids: Vec<String> = Vec::new();
        for (installation, declaration) in self.all_installations(tenant_id).await? {
            if declaration.category() == category && !ids.contains(&installation.plugin_id) {
                ids.push(installation.plugin_id);
            }
        }
        Ok(serde_json::json!({ "plugin_ids": ids }))
    }

    /// `GET …/{category}/list`: filtered by category, tags and a case-insensitive query over
    /// plugin id, name, label and description (in `language`, falling back to `en_US`).
    pub async fn list_category(
        &self,
        tenant_id: &str,
        filter: &CategoryFilter,
    ) -> Result<Value, DaemonError> {
        let category = PluginCategory::parse(&filter.category).ok_or_else(|| {
            DaemonError::bad_request(format!("invalid category: {}", filter.category))
        })?;
        let needle = filter.query.to_lowercase();
        let localized = |text: &plugind_entities::I18nObject| {
            let value = match filter.language.as_str() {
                "zh_Hans" => &text.zh_hans,
                "ja_JP" => &text.ja_jp,
                "pt_BR" => &text.pt_br,
                _ => &text.en_us,
            };
            if value.is_empty() {
                text.en_us.to_lowercase()
            } else {
                value.to_lowercase()
            }
        };
        let matches = self.all_installations(tenant_id).await?.into_iter().filter(
            |(installation, declaration)| {
                declaration.category() == category
                    && (filter.tags.is_empty()
                        || declaration.tags.iter().any(|t| filter.tags.contains(t)))
                    && (needle.is_empty()
                        || installation.plugin_id.to_lowercase().contains(&needle)
                        || declaration.name.to_lowercase().contains(&needle)
                        || localized(&declaration.label).contains(&needle)
                        || localized(&declaration.description).contains(&needle))
            },
        );
        let skip = usize::try_from((filter.page - 1) * filter.page_size).unwrap_or(0);
        let take = usize::try_from(filter.page_size).unwrap_or(0);
        let mut page: Vec<PluginEntity> = Vec::new();
        let mut has_more = false;
        for (installation, declaration) in matches.skip(skip) {
            if page.len() == take {
                has_more = true;
                break;
            }
            page.push(entity(installation, declaration));
        }
        Ok(serde_json::json!({ "list": page, "has_more": has_more }))
    }

    /// Liveness of the state the daemon depends on, for `/health/check`.
    pub async fn ping(&self) -> bool {
        self.inner.db.ping().await.is_ok()
    }
}

fn entity(installation: PluginInstallation, declaration: PluginDeclaration) -> PluginEntity {
    let checksum = installation
        .plugin_unique_identifier
        .rsplit_once('@')
        .map(|(_, c)| c.to_owned())
        .unwrap_or_default();
    PluginEntity {
        id: installation.id.clone(),
        name: declaration.name.clone(),
        plugin_id: installation.plugin_id,
        tenant_id: installation.tenant_id,
        plugin_unique_identifier: installation.plugin_unique_identifier,
        endpoints_active: installation.endpoints_active,
        endpoints_setups: installation.endpoints_setups,
        installation_id: installation.id,
        version: declaration.version.clone(),
        declaration,
        runtime_type: installation.runtime_type,
        created_at: installation.created_at,
        updated_at: installation.updated_at,
        source: installation.source,
        checksum,
        meta: installation.meta,
    }
}
