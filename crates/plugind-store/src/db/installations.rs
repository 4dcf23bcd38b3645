//! Installing and uninstalling plugins for tenants: `plugins` (reference-counted per uid),
//! `plugin_installations` (one per tenant and plugin_id) and the per-category projection tables
//! (PSC §4.11). Each install/uninstall is one transaction serialised by a row lock on the
//! `plugins` row of the uid.

use plugind_entities::{
    PluginDeclaration, PluginInstallation, PluginUniqueIdentifier, ProviderInstallation,
    ProviderKind,
};
use serde_json::Value;

use super::{col, dispatch, new_id, now, retry, BeginWrite, Db};
use crate::StoreError;

/// Projection tables, each holding one row per (tenant, plugin, provider).
pub(crate) const PROJECTION_TABLES: [&str; 5] = [
    "tool_installations",
    "ai_model_installations",
    "agent_strategy_installations",
    "datasource_installations",
    "trigger_installations",
];

const INSTALLATION_COLUMNS: &str =
    "id::text AS id, created_at, updated_at, tenant_id::text AS tenant_id, plugin_id, \
     plugin_unique_identifier, runtime_type, endpoints_setups, endpoints_active, source, meta";

const PROVIDER_COLUMNS: &str =
    "id::text AS id, created_at, updated_at, tenant_id::text AS tenant_id, provider, \
     plugin_unique_identifier, plugin_id";

/// Result of [`Db::install_plugin`].
#[derive(Clone, Debug, PartialEq)]
pub enum InstallOutcome {
    /// A new installation row was written (and `refers` of the uid incremented).
    Installed(PluginInstallation),
    /// The tenant already has this plugin_id (any version); nothing changed.
    AlreadyInstalled(PluginInstallation),
}

impl InstallOutcome {
    pub fn installation(&self) -> &PluginInstallation {
        match self {
            InstallOutcome::Installed(i) | InstallOutcome::AlreadyInstalled(i) => i,
        }
    }
}

/// Result of [`Db::uninstall_plugin`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UninstallOutcome {
    /// No installation with that id for that tenant (upstream treats this as success).
    NotFound,
    Removed {
        uid: String,
        plugin_id: String,
        /// The last tenant left the uid: its `plugins` and `plugin_declarations` rows are gone
        /// (also true when no `plugins` row existed).
        plugin_deleted: bool,
    },
}

/// Result of [`Db::upgrade_plugin`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// The tenant has no installation of the original uid with that source; nothing changed.
    NotFound,
    Upgraded {
        /// The installation row, now pointing at the new uid (id and `created_at` kept).
        installation_id: String,
        /// The last tenant left the original uid: its `plugins` and `plugin_declarations` rows
        /// are gone.
        original_deleted: bool,
    },
}

fn parse_meta(meta: &str) -> Result<Value, StoreError> {
    if meta.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(meta).map_err(StoreError::json("plugin_installations.meta"))
}

/// Builds a [`PluginInstallation`] from a row selected with [`INSTALLATION_COLUMNS`].
macro_rules! installation_from_row {
    ($row:expr) => {{
        let row = $row;
        let meta: String = col!(row, "meta", String);
        PluginInstallation {
            id: col!(row, "id", String),
            created_at: col!(row, "created_at", chrono::DateTime<chrono::Utc>),
            updated_at: col!(row, "updated_at", chrono::DateTime<chrono::Utc>),
            tenant_id: col!(row, "tenant_id", String),
            plugin_id: col!(row, "plugin_id", String),
            plugin_unique_identifier: col!(row, "plugin_unique_identifier", String),
            runtime_type: col!(row, "runtime_type", String),
            endpoints_setups: col!(row, "endpoints_setups", i64),
            endpoints_active: col!(row, "endpoints_active", i64),
            source: col!(row, "source", String),
            meta: parse_meta(&meta)?,
        }
    }};
}

/// Builds a [`ProviderInstallation`] from a row selected with [`PROVIDER_COLUMNS`].
macro_rules! provider_from_row {
    ($row:expr) => {{
        let row = $row;
        ProviderInstallation {
            id: col!(row, "id", String),
            created_at: col!(row, "created_at", chrono::DateTime<chrono::Utc>),
            updated_at: col!(row, "updated_at", chrono::DateTime<chrono::Utc>),
            tenant_id: col!(row, "tenant_id", String),
            provider: col!(row, "provider", String),
            plugin_unique_identifier: col!(row, "plugin_unique_identifier", String),
            plugin_id: col!(row, "plugin_id", String),
        }
    }};
}

/// (table, provider name) for every provider declaration present in `decl`.
fn projections(decl: &PluginDeclaration) -> Vec<(&'static str, String)> {
    let name = |v: &Value| {
        PluginDeclaration::provider_name(v)
            .unwrap_or_default()
            .to_owned()
    };
    let mut out = Vec::new();
    if let Some(v) = &decl.tool {
        out.push(("tool_installations", name(v)));
    }
    if let Some(v) = &decl.agent_strategy {
        out.push(("agent_strategy_installations", name(v)));
    }
    if let Some(v) = &decl.model {
        out.push(("ai_model_installations", name(v)));
    }
    if let Some(v) = &decl.datasource {
        out.push(("datasource_installations", name(v)));
    }
    if let Some(v) = &decl.trigger {
        out.push(("trigger_installations", name(v)));
    }
    out
}

/// The projection table holding providers of `kind`.
fn projection_table(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Tool => "tool_installations",
        ProviderKind::Model => "ai_model_installations",
        ProviderKind::AgentStrategy => "agent_strategy_installations",
        ProviderKind::Datasource => "datasource_installations",
        ProviderKind::Trigger => "trigger_installations",
    }
}

/// 1-based page and page size → (limit, offset).
fn page_window(page: i64, page_size: i64) -> (i64, i64) {
    let size = page_size.max(1);
    (size, (page.max(1) - 1).saturating_mul(size))
}

impl Db {
    /// Installs `uid` for `tenant_id` (PSC §4.11). When the tenant already has the uid's
    /// plugin_id (any version) nothing changes and the existing installation is returned.
    pub async fn install_plugin(
        &self,
        tenant_id: &str,
        uid: &PluginUniqueIdentifier,
        runtime_type: &str,
        source: &str,
        meta: &Value,
        decl: &PluginDeclaration,
    ) -> Result<InstallOutcome, StoreError> {
        self.require_uuid("tenant_id", tenant_id)?;
        let uid_s = uid.as_str();
        let plugin_id = uid.plugin_id();
        if let Some(existing) = self.get_installation(tenant_id, plugin_id).await? {
            return Ok(InstallOutcome::AlreadyInstalled(existing));
        }

        let meta_json = serde_json::to_string(meta).map_err(StoreError::json("meta"))?;
        let remote_declaration = if runtime_type == "remote" {
            serde_json::to_string(decl)
        } else {
            serde_json::to_string(&PluginDeclaration::default())
        }
        .map_err(StoreError::json("remote_declaration"))?;
        let projection_sql: Vec<(String, String)> = projections(decl)
            .into_iter()
            .map(|(table, provider)| {
                let sql = self.sql(&format!(
                    "INSERT INTO {table} (id, created_at, updated_at, tenant_id, provider, plugin_unique_identifier, plugin_id) \
                     VALUES ($1::uuid, $2, $3, $4::uuid, $5, $6, $7)"
                ));
                (sql, provider)
            })
            .collect();
        let insert_plugin = self.sql(
            "INSERT INTO plugins (id, created_at, updated_at, plugin_unique_identifier, plugin_id, refers, install_type, \
             manifest_type, remote_declaration, source) VALUES ($1::uuid, $2, $3, $4, $5, 0, $6, '', $7, $8) \
             ON CONFLICT (plugin_unique_identifier) DO NOTHING",
        );
        let lock_plugin = self.sql(
            "SELECT id::text AS id FROM plugins WHERE plugin_unique_identifier = $1 FOR UPDATE",
        );
        let find = self.sql(&format!(
            "SELECT {INSTALLATION_COLUMNS} FROM plugin_installations WHERE tenant_id = $1::uuid AND plugin_id = $2"
        ));
        let increment =
            self.sql("UPDATE plugins SET refers = refers + 1, updated_at = $1 WHERE id = $2::uuid");
        let insert_installation = self.sql(
            "INSERT INTO plugin_installations (id, created_at, updated_at, tenant_id, plugin_id, plugin_unique_identifier, \
             runtime_type, endpoints_setups, endpoints_active, source, meta) \
             VALUES ($1::uuid, $2, $3, $4::uuid, $5, $6, $7, 0, 0, $8, $9)",
        );
        let (
            insert_plugin,
            lock_plugin,
            find,
            increment,
            insert_installation,
            projection_sql,
            meta_json,
            remote_declaration,
        ) = (
            &insert_plugin,
            &lock_plugin,
            &find,
            &increment,
            &insert_installation,
            &projection_sql,
            &meta_json,
            &remote_declaration,
        );

        let result = dispatch!(self, pool => retry(move || async move {
            let at = now();
            let mut tx = pool.begin_write().await?;
            sqlx::query(insert_plugin)
                .bind(new_id())
                .bind(at)
                .bind(at)
                .bind(uid_s)
                .bind(plugin_id)
                .bind(runtime_type)
                .bind(remote_declaration)
                .bind(source)
                .execute(&mut *tx)
                .await?;
            let Some(row) = sqlx::query(lock_plugin).bind(uid_s).fetch_optional(&mut *tx).await? else {
                return Err(StoreError::Invalid(format!("plugins row of {uid_s} vanished during install")));
            };
            let plugin_row_id: String = col!(row, "id", String);
            if let Some(row) = sqlx::query(find).bind(tenant_id).bind(plugin_id).fetch_optional(&mut *tx).await? {
                let existing = installation_from_row!(row);
                tx.rollback().await?;
                return Ok(InstallOutcome::AlreadyInstalled(existing));
            }
            sqlx::query(increment).bind(at).bind(&plugin_row_id).execute(&mut *tx).await?;
            let installation = PluginInstallation {
                id: new_id(),
                created_at: at,
                updated_at: at,
                tenant_id: tenant_id.to_owned(),
                plugin_id: plugin_id.to_owned(),
                plugin_unique_identifier: uid_s.to_owned(),
                runtime_type: runtime_type.to_owned(),
                endpoints_setups: 0,
                endpoints_active: 0,
                source: source.to_owned(),
                meta: meta.clone(),
            };
            sqlx::query(insert_installation)
                .bind(&installation.id)
                .bind(at)
                .bind(at)
                .bind(tenant_id)
                .bind(plugin_id)
                .bind(uid_s)
                .bind(runtime_type)
                .bind(source)
                .bind(meta_json)
                .execute(&mut *tx)
                .await?;
            for (sql, provider) in projection_sql {
                sqlx::query(sql)
                    .bind(new_id())
                    .bind(at)
                    .bind(at)
                    .bind(tenant_id)
                    .bind(provider)
                    .bind(uid_s)
                    .bind(plugin_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(InstallOutcome::Installed(installation))
        }).await);

        match result {
            // Another uid of the same plugin_id won the (tenant_id, plugin_id) unique index.
            Err(e) if e.is_unique_violation() => {
                match self.get_installation(tenant_id, plugin_id).await? {
                    Some(existing) => Ok(InstallOutcome::AlreadyInstalled(existing)),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// Removes a tenant's installation (PSC §4.11): `refers − 1`, projections of (plugin_id,
    /// tenant) deleted, and when the last tenant left, the `plugins` and `plugin_declarations`
    /// rows (and a serverless runtime row) too.
    pub async fn uninstall_plugin(
        &self,
        tenant_id: &str,
        installation_id: &str,
    ) -> Result<UninstallOutcome, StoreError> {
        if !self.uuid_ok(tenant_id) || !self.uuid_ok(installation_id) {
            return Ok(UninstallOutcome::NotFound);
        }
        let lock_installation = self.sql(
            "SELECT plugin_id, plugin_unique_identifier FROM plugin_installations \
             WHERE id = $1::uuid AND tenant_id = $2::uuid FOR UPDATE",
        );
        let lock_plugin = self.sql(
            "SELECT id::text AS id, refers, install_type FROM plugins WHERE plugin_unique_identifier = $1 FOR UPDATE",
        );
        let decrement =
            self.sql("UPDATE plugins SET refers = refers - 1, updated_at = $1 WHERE id = $2::uuid");
        let delete_installation = self.sql("DELETE FROM plugin_installations WHERE id = $1::uuid");
        let delete_projections: Vec<String> = PROJECTION_TABLES
            .iter()
            .map(|t| {
                self.sql(&format!(
                    "DELETE FROM {t} WHERE tenant_id = $1::uuid AND plugin_id = $2"
                ))
            })
            .collect();
        let delete_plugin = self.sql("DELETE FROM plugins WHERE id = $1::uuid");
        let delete_declaration =
            self.sql("DELETE FROM plugin_declarations WHERE plugin_unique_identifier = $1");
        let delete_serverless =
            self.sql("DELETE FROM serverless_runtimes WHERE plugin_unique_identifier = $1");
        let (lock_installation, lock_plugin, decrement, delete_installation, delete_projections) = (
            &lock_installation,
            &lock_plugin,
            &decrement,
            &delete_installation,
            &delete_projections,
        );
        let (delete_plugin, delete_declaration, delete_serverless) =
            (&delete_plugin, &delete_declaration, &delete_serverless);

        dispatch!(self, pool => retry(move || async move {
            let at = now();
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(lock_installation)
                .bind(installation_id)
                .bind(tenant_id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(UninstallOutcome::NotFound);
            };
            let plugin_id: String = col!(row, "plugin_id", String);
            let uid: String = col!(row, "plugin_unique_identifier", String);
            let plugin_row = match sqlx::query(lock_plugin).bind(&uid).fetch_optional(&mut *tx).await? {
                Some(row) => Some((
                    col!(row, "id", String),
                    col!(row, "refers", i64),
                    col!(row, "install_type", String),
                )),
                None => None,
            };
            if let Some((id, _, _)) = &plugin_row {
                sqlx::query(decrement).bind(at).bind(id).execute(&mut *tx).await?;
            }
            sqlx::query(delete_installation).bind(installation_id).execute(&mut *tx).await?;
            for sql in delete_projections {
                sqlx::query(sql).bind(tenant_id).bind(&plugin_id).execute(&mut *tx).await?;
            }
            let plugin_deleted = match &plugin_row {
                None => true,
                Some((id, refers, install_type)) if *refers - 1 <= 0 => {
                    sqlx::query(delete_plugin).bind(id).execute(&mut *tx).await?;
                    sqlx::query(delete_declaration).bind(&uid).execute(&mut *tx).await?;
                    if install_type == "serverless" {
                        sqlx::query(delete_serverless).bind(&uid).execute(&mut *tx).await?;
                    }
                    true
                }
                Some(_) => false,
            };
            tx.commit().await?;
            Ok(UninstallOutcome::Removed { uid, plugin_id, plugin_deleted })
        }).await)
    }

    /// Moves a tenant's installation of `original` to `new` (PSC §4.11, one transaction): the
    /// installation row keeps its id and counters and takes the new uid, source and meta; the
    /// new uid's `plugins` row is created if missing and gains a reference; the original loses
    /// one, and when none is left its `plugins` and `plugin_declarations` rows are deleted;
    /// projections of the original declaration are replaced by those of the new one.
    #[allow(clippy::too_many_arguments)]
    pub async fn upgrade_plugin(
        &self,
        tenant_id: &str,
        original: &PluginUniqueIdentifier,
        new: &PluginUniqueIdentifier,
        runtime_type: &str,
        source: &str,
        meta: &Value,
        new_decl: &PluginDeclaration,
    ) -> Result<UpgradeOutcome, StoreError> {
        if !self.uuid_ok(tenant_id) {
            return Ok(UpgradeOutcome::NotFound);
        }
        let (original_s, new_s) = (original.as_str(), new.as_str());
        let plugin_id = new.plugin_id();
        let meta_json = serde_json::to_string(meta).map_err(StoreError::json("meta"))?;
        let remote_declaration = serde_json::to_string(&PluginDeclaration::default())
            .map_err(StoreError::json("remote_declaration"))?;
        let lock_installation = self.sql(
            "SELECT id::text AS id FROM plugin_installations \
             WHERE tenant_id = $1::uuid AND plugin_unique_identifier = $2 AND source = $3 FOR UPDATE",
        );
        let insert_plugin = self.sql(
            "INSERT INTO plugins (id, created_at, updated_at, plugin_unique_identifier, plugin_id, refers, install_type, \
             manifest_type, remote_declaration, source) VALUES ($1::uuid, $2, $3, $4, $5, 0, $6, 'plugin', $7, $8) \
             ON CONFLICT (plugin_unique_identifier) DO NOTHING",
        );
        let lock_plugin = self.sql(
            "SELECT id::text AS id, refers, install_type FROM plugins WHERE plugin_unique_identifier = $1 FOR UPDATE",
        );
        let move_installation = self.sql(
            "UPDATE plugin_installations SET plugin_unique_identifier = $1, source = $2, meta = $3, updated_at = $4 \
             WHERE id = $5::uuid",
        );
        let add_refers = self
            .sql("UPDATE plugins SET refers = refers + $1, updated_at = $2 WHERE id = $3::uuid");
        let delete_plugin = self.sql("DELETE FROM plugins WHERE id = $1::uuid");
        let delete_declaration =
            self.sql("DELETE FROM plugin_declarations WHERE plugin_unique_identifier = $1");
        let delete_serverless =
            self.sql("DELETE FROM serverless_runtimes WHERE plugin_unique_identifier = $1");
        let delete_projections: Vec<String> = PROJECTION_TABLES
            .iter()
            .map(|t| {
                self.sql(&format!(
                    "DELETE FROM {t} WHERE tenant_id = $1::uuid AND plugin_id = $2"
                ))
            })
            .collect();
        let insert_projections: Vec<(String, String)> = projections(new_decl)
            .into_iter()
            .map(|(table, provider)| {
                let sql = self.sql(&format!(
                    "INSERT INTO {table} (id, created_at, updated_at, tenant_id, provider, plugin_unique_identifier, plugin_id) \
                     VALUES ($1::uuid, $2, $3, $4::uuid, $5, $6, $7)"
                ));
                (sql, provider)
            })
            .collect();
        let statements = (
            &lock_installation,
            &insert_plugin,
            &lock_plugin,
            &move_installation,
            &add_refers,
            &delete_plugin,
            &delete_declaration,
            &delete_serverless,
        );
        let (delete_projections, insert_projections, meta_json, remote_declaration) = (
            &delete_projections,
            &insert_projections,
            &meta_json,
            &remote_declaration,
        );

        dispatch!(self, pool => retry(move || async move {
            let (
                lock_installation,
                insert_plugin,
                lock_plugin,
                move_installation,
                add_refers,
                delete_plugin,
                delete_declaration,
                delete_serverless,
            ) = statements;
            let at = now();
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(lock_installation)
                .bind(tenant_id)
                .bind(original_s)
                .bind(source)
                .fetch_optional(&mut *tx)
                .await?
            else {
                tx.rollback().await?;
                return Ok(UpgradeOutcome::NotFound);
            };
            let installation_id: String = col!(row, "id", String);
            sqlx::query(insert_plugin)
                .bind(new_id())
                .bind(at)
                .bind(at)
                .bind(new_s)
                .bind(plugin_id)
                .bind(runtime_type)
                .bind(remote_declaration)
                .bind(source)
                .execute(&mut *tx)
                .await?;
            // Two upgrades in opposite directions lock the same two rows in opposite orders; the
            // database breaks such a deadlock and `retry` runs the loser again.
            let original_row = match sqlx::query(lock_plugin).bind(original_s).fetch_optional(&mut *tx).await? {
                Some(row) => Some((col!(row, "id", String), col!(row, "refers", i64), col!(row, "install_type", String))),
                None => None,
            };
            let Some(new_row) = sqlx::query(lock_plugin).bind(new_s).fetch_optional(&mut *tx).await? else {
                return Err(StoreError::Invalid(format!("plugins row of {new_s} vanished during upgrade")));
            };
            let new_row_id: String = col!(new_row, "id", String);
            sqlx::query(move_installation)
                .bind(new_s)
                .bind(source)
                .bind(meta_json)
                .bind(at)
                .bind(&installation_id)
                .execute(&mut *tx)
                .await?;
            let original_deleted = match &original_row {
                None => true,
                Some((id, refers, install_type)) => {
                    if *refers - 1 <= 0 {
                        sqlx::query(delete_plugin).bind(id).execute(&mut *tx).await?;
                        sqlx::query(delete_declaration).bind(original_s).execute(&mut *tx).await?;
                        if install_type == "serverless" {
                            sqlx::query(delete_serverless).bind(original_s).execute(&mut *tx).await?;
                        }
                        true
                    } else {
                        sqlx::query(add_refers).bind(-1_i64).bind(at).bind(id).execute(&mut *tx).await?;
                        false
                    }
                }
            };
            sqlx::query(add_refers).bind(1_i64).bind(at).bind(&new_row_id).execute(&mut *tx).await?;
            for sql in delete_projections {
                sqlx::query(sql).bind(tenant_id).bind(plugin_id).execute(&mut *tx).await?;
            }
            for (sql, provider) in insert_projections {
                sqlx::query(sql)
                    .bind(new_id())
                    .bind(at)
                    .bind(at)
                    .bind(tenant_id)
                    .bind(provider)
                    .bind(new_s)
                    .bind(plugin_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(UpgradeOutcome::Upgraded { installation_id, original_deleted })
        }).await)
    }

    /// The tenant's installation of `plugin_id` (any version).
    pub async fn get_installation(
        &self,
        tenant_id: &str,
        plugin_id: &str,
    ) -> Result<Option<PluginInstallation>, StoreError> {
        if !self.uuid_ok(tenant_id) {
            return Ok(None);
        }
        let sql = self.sql(&format!(
            "SELECT {INSTALLATION_COLUMNS} FROM plugin_installations WHERE tenant_id = $1::uuid AND plugin_id = $2"
        ));
        dispatch!(self, pool => {
            match sqlx::query(&sql).bind(tenant_id).bind(plugin_id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(installation_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// One page (1-based) of the tenant's installations, newest first, and the total count.
    pub async fn list_installations(
        &self,
        tenant_id: &str,
        page: i64,
        page_size: i64,
    ) -> Result<(Vec<PluginInstallation>, i64), StoreError> {
        if !self.uuid_ok(tenant_id) {
            return Ok((Vec::new(), 0));
        }
        let (limit, offset) = page_window(page, page_size);
        let count =
            self.sql("SELECT COUNT(*) AS n FROM plugin_installations WHERE tenant_id = $1::uuid");
        let list = self.sql(&format!(
            "SELECT {INSTALLATION_COLUMNS} FROM plugin_installations WHERE tenant_id = $1::uuid \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ));
        dispatch!(self, pool => {
            let row = sqlx::query(&count).bind(tenant_id).fetch_one(pool).await?;
            let total: i64 = col!(row, "n", i64);
            let rows = sqlx::query(&list).bind(tenant_id).bind(limit).bind(offset).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(installation_from_row!(row));
            }
            Ok((out, total))
        })
    }

    /// One page (1-based) of the tenant's providers of `kind` (its projection table), newest
    /// first.
    pub async fn list_providers(
        &self,
        kind: ProviderKind,
        tenant_id: &str,
        page: i64,
        page_size: i64,
    ) -> Result<Vec<ProviderInstallation>, StoreError> {
        if !self.uuid_ok(tenant_id) {
            return Ok(Vec::new());
        }
        let (limit, offset) = page_window(page, page_size);
        let table = projection_table(kind);
        let sql = self.sql(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM {table} WHERE tenant_id = $1::uuid \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ));
        dispatch!(self, pool => {
            let rows = sqlx::query(&sql).bind(tenant_id).bind(limit).bind(offset).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(provider_from_row!(row));
            }
            Ok(out)
        })
    }

    /// The tenant's provider `provider` of `kind` in `plugin_id`.
    pub async fn get_provider(
        &self,
        kind: ProviderKind,
        tenant_id: &str,
        plugin_id: &str,
        provider: &str,
    ) -> Result<Option<ProviderInstallation>, StoreError> {
        if !self.uuid_ok(tenant_id) {
            return Ok(None);
        }
        let table = projection_table(kind);
        let sql = self.sql(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM {table} WHERE tenant_id = $1::uuid AND plugin_id = $2 AND provider = $3"
        ));
        dispatch!(self, pool => {
            match sqlx::query(&sql).bind(tenant_id).bind(plugin_id).bind(provider).fetch_optional(pool).await? {
                Some(row) => Ok(Some(provider_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The tenant's model providers whose projection row belongs to the tenant's current
    /// installation of the plugin (same uid), as (provider, installation), newest installation
    /// first. Duplicates are left to the caller.
    pub async fn model_bindings(
        &self,
        tenant_id: &str,
    ) -> Result<Vec<(String, PluginInstallation)>, StoreError> {
        if !self.uuid_ok(tenant_id) {
            return Ok(Vec::new());
        }
        let sql = self.sql(
            "SELECT m.provider AS provider, i.id::text AS id, i.created_at AS created_at, \
             i.updated_at AS updated_at, i.tenant_id::text AS tenant_id, i.plugin_id AS plugin_id, \
             i.plugin_unique_identifier AS plugin_unique_identifier, i.runtime_type AS runtime_type, \
             i.endpoints_setups AS endpoints_setups, i.endpoints_active AS endpoints_active, \
             i.source AS source, i.meta AS meta \
             FROM ai_model_installations m JOIN plugin_installations i \
             ON i.tenant_id = m.tenant_id AND i.plugin_id = m.plugin_id \
             AND i.plugin_unique_identifier = m.plugin_unique_identifier \
             WHERE m.tenant_id = $1::uuid ORDER BY i.created_at DESC, i.id DESC, m.provider",
        );
        dispatch!(self, pool => {
            let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let provider: String = col!(row, "provider", String);
                out.push((provider, installation_from_row!(row)));
            }
            Ok(out)
        })
    }

    /// Every `plugins` row as (uid, install_type): what start-up has to bring back.
    pub async fn installed_plugins(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = self.sql(
            "SELECT plugin_unique_identifier, install_type FROM plugins ORDER BY created_at, id",
        );
        dispatch!(self, pool => {
            let rows = sqlx::query(&sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((col!(row, "plugin_unique_identifier", String), col!(row, "install_type", String)));
            }
            Ok(out)
        })
    }

    /// Every tenant's installation of exactly `uid`.
    pub async fn installations_of(&self, uid: &str) -> Result<Vec<PluginInstallation>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {INSTALLATION_COLUMNS} FROM plugin_installations WHERE plugin_unique_identifier = $1 \
             ORDER BY created_at, id"
        ));
        dispatch!(self, pool => {
            let rows = sqlx::query(&sql).bind(uid).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(installation_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Whether `uid` is installed in at least one tenant (a `plugins` row exists).
    pub async fn plugin_exists(&self, uid: &str) -> Result<bool, StoreError> {
        Ok(self.plugin_refers(uid).await?.is_some())
    }

    /// `refers` of the `plugins` row of `uid` (number of tenant installations), if the row exists.
    pub async fn plugin_refers(&self, uid: &str) -> Result<Option<i64>, StoreError> {
        let sql = self.sql("SELECT refers FROM plugins WHERE plugin_unique_identifier = $1");
        dispatch!(self, pool => {
            match sqlx::query(&sql).bind(uid).fetch_optional(pool).await? {
                Some(row) => Ok(Some(col!(row, "refers", i64))),
                None => Ok(None),
            }
        })
    }
}
