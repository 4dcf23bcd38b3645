//! `endpoints`: a tenant's endpoint instances of installed plugins (http-api §4.6), and the
//! `endpoints_setups` / `endpoints_active` counters they keep on the tenant's installation row
//! (PSC Part 5), adjusted in the same transaction as the endpoint row.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::{col, dispatch, now, Backend, BeginWrite, Db};
use crate::StoreError;

const ENDPOINT_COLUMNS: &str = "id::text AS id, created_at, updated_at, name, hook_id, tenant_id, \
     user_id, plugin_id, expired_at, enabled, settings";

/// One `endpoints` row, settings as stored (encrypted values stay encrypted).
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointRow {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    pub hook_id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub plugin_id: String,
    pub expired_at: DateTime<Utc>,
    pub enabled: bool,
    /// The stored JSON object (`{}` when the column is empty).
    pub settings: serde_json::Map<String, Value>,
}

/// What a new endpoint row holds besides the generated hook id.
#[derive(Clone, Debug)]
pub struct NewEndpoint<'a> {
    /// The row id, chosen by the caller (encrypted settings are bound to it).
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub plugin_id: &'a str,
    pub name: &'a str,
    pub settings: &'a serde_json::Map<String, Value>,
}

fn parse_settings(text: &str) -> Result<serde_json::Map<String, Value>, StoreError> {
    if text.trim().is_empty() {
        return Ok(Default::default());
    }
    serde_json::from_str(text).map_err(StoreError::json("endpoints.settings"))
}

macro_rules! endpoint_from_row {
    ($row:expr) => {{
        let row = $row;
        let settings: String = col!(row, "settings", String);
        EndpointRow {
            id: col!(row, "id", String),
            created_at: col!(row, "created_at", DateTime<Utc>),
            updated_at: col!(row, "updated_at", DateTime<Utc>),
            name: col!(row, "name", String),
            hook_id: col!(row, "hook_id", String),
            tenant_id: col!(row, "tenant_id", String),
            user_id: col!(row, "user_id", String),
            plugin_id: col!(row, "plugin_id", String),
            expired_at: col!(row, "expired_at", DateTime<Utc>),
            enabled: col!(row, "enabled", bool),
            settings: parse_settings(&settings)?,
        }
    }};
}

/// A fresh 16-character hook id over `[a-z0-9]`, from the OS random source (via UUIDv4).
pub fn new_hook_id() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Upstream's fixed expiry for every endpoint: 2050-01-01T00:00:00Z.
fn expiry() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2050, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn encode(settings: &serde_json::Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(settings).map_err(StoreError::json("endpoints.settings"))
}

/// `$n` spelled for the installation's `tenant_id` column (uuid on PostgreSQL).
const COUNTERS: &str = "UPDATE plugin_installations SET \
     endpoints_setups = COALESCE(endpoints_setups, 0) + $1, \
     endpoints_active = COALESCE(endpoints_active, 0) + $2 \
     WHERE tenant_id = $3::uuid AND plugin_id = $4";

impl Db {
    /// Creates an enabled endpoint with a fresh hook id and counts it on the installation
    /// (`setups +1`, `active +1`), in one transaction.
    pub async fn create_endpoint(&self, new: NewEndpoint<'_>) -> Result<EndpointRow, StoreError> {
        self.require_uuid("tenant_id", new.tenant_id)?;
        self.require_uuid("endpoint id", new.id)?;
        let at = now();
        let row = EndpointRow {
            id: new.id.to_owned(),
            created_at: at,
            updated_at: at,
            name: new.name.to_owned(),
            hook_id: new_hook_id(),
            tenant_id: new.tenant_id.to_owned(),
            user_id: new.user_id.to_owned(),
            plugin_id: new.plugin_id.to_owned(),
            expired_at: expiry(),
            enabled: true,
            settings: new.settings.clone(),
        };
        let settings = encode(&row.settings)?;
        let insert = self.sql(
            "INSERT INTO endpoints (id, created_at, updated_at, name, hook_id, tenant_id, user_id, \
             plugin_id, expired_at, enabled, settings) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        );
        let counters = self.sql(COUNTERS);
        let mysql = self.kind() == Backend::MySql;
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let query = sqlx::query(&insert)
                .bind(&row.id)
                .bind(row.created_at)
                .bind(row.updated_at)
                .bind(&row.name)
                .bind(&row.hook_id)
                .bind(&row.tenant_id)
                .bind(&row.user_id)
                .bind(&row.plugin_id);
            // sqlx sends a `DateTime<Utc>` to MySQL as a TIMESTAMP, which MariaDB zeroes past
            // 2038; the column is a DATETIME, so send the plain UTC date-time there.
            let query = if mysql {
                query.bind(row.expired_at.naive_utc())
            } else {
                query.bind(row.expired_at)
            };
            query
                .bind(row.enabled)
                .bind(&settings)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&counters)
                .bind(1_i64)
                .bind(1_i64)
                .bind(&row.tenant_id)
                .bind(&row.plugin_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(row)
    }

    /// The tenant's endpoint `id`.
    pub async fn get_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<EndpointRow>, StoreError> {
        if !self.uuid_ok(id) {
            return Ok(None);
        }
        let sql = self.sql(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1::uuid AND tenant_id = $2"
        ));
        dispatch!(self, pool => {
            match sqlx::query(&sql).bind(id).bind(tenant_id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(endpoint_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The endpoint whose public hook is `hook_id` (`/e/{hook_id}`, http-api §5.2), any tenant.
    pub async fn get_endpoint_by_hook_id(
        &self,
        hook_id: &str,
    ) -> Result<Option<EndpointRow>, StoreError> {
        let sql = self.sql(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE hook_id = $1"
        ));
        dispatch!(self, pool => {
            match sqlx::query(&sql).bind(hook_id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(endpoint_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// One page (1-based) of the tenant's endpoints, newest first; only those of `plugin_id`
    /// when given.
    pub async fn list_endpoints(
        &self,
        tenant_id: &str,
        plugin_id: Option<&str>,
        page: i64,
        page_size: i64,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        let size = page_size.max(1);
        let offset = (page.max(1) - 1).saturating_mul(size);
        let sql = match plugin_id {
            None => self.sql(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE tenant_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            )),
            Some(_) => self.sql(&format!(
                "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE tenant_id = $1 AND plugin_id = $2 \
                 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
            )),
        };
        dispatch!(self, pool => {
            let mut query = sqlx::query(&sql).bind(tenant_id);
            if let Some(plugin_id) = plugin_id {
                query = query.bind(plugin_id);
            }
            let rows = query.bind(size).bind(offset).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(endpoint_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Replaces name and settings of the tenant's endpoint `id`; false when there is none.
    pub async fn update_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
        name: &str,
        settings: &serde_json::Map<String, Value>,
    ) -> Result<bool, StoreError> {
        if !self.uuid_ok(id) {
            return Ok(false);
        }
        let settings = encode(settings)?;
        let sql = self.sql(
            "UPDATE endpoints SET name = $1, settings = $2, updated_at = $3 \
             WHERE id = $4::uuid AND tenant_id = $5",
        );
        let done = dispatch!(self, pool => {
            sqlx::query(&sql).bind(name).bind(&settings).bind(now()).bind(id).bind(tenant_id)
                .execute(pool).await?.rows_affected()
        });
        Ok(done > 0)
    }

    /// Sets `enabled` of the tenant's endpoint `id` and moves the installation's `active`
    /// counter when the flag changes. None when there is no such endpoint.
    pub async fn set_endpoint_enabled(
        &self,
        tenant_id: &str,
        id: &str,
        enabled: bool,
    ) -> Result<Option<EndpointRow>, StoreError> {
        if !self.uuid_ok(id) {
            return Ok(None);
        }
        let select = self.sql(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1::uuid AND tenant_id = $2 FOR UPDATE"
        ));
        let update =
            self.sql("UPDATE endpoints SET enabled = $1, updated_at = $2 WHERE id = $3::uuid");
        let counters = self.sql(COUNTERS);
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(&select).bind(id).bind(tenant_id).fetch_optional(&mut *tx).await? else {
                return Ok(None);
            };
            let mut row = endpoint_from_row!(row);
            if row.enabled != enabled {
                let at = now();
                sqlx::query(&update).bind(enabled).bind(at).bind(id).execute(&mut *tx).await?;
                sqlx::query(&counters)
                    .bind(0_i64)
                    .bind(if enabled { 1_i64 } else { -1_i64 })
                    .bind(&row.tenant_id)
                    .bind(&row.plugin_id)
                    .execute(&mut *tx)
                    .await?;
                row.enabled = enabled;
                row.updated_at = at;
            }
            tx.commit().await?;
            Ok(Some(row))
        })
    }

    /// Deletes the tenant's endpoint `id` and uncounts it (`setups -1`, `active -1`, as upstream
    /// even for a disabled endpoint). None when there is no such endpoint.
    pub async fn delete_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<EndpointRow>, StoreError> {
        if !self.uuid_ok(id) {
            return Ok(None);
        }
        let select = self.sql(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1::uuid AND tenant_id = $2 FOR UPDATE"
        ));
        let delete = self.sql("DELETE FROM endpoints WHERE id = $1::uuid");
        let counters = self.sql(COUNTERS);
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(&select).bind(id).bind(tenant_id).fetch_optional(&mut *tx).await? else {
                return Ok(None);
            };
            let row = endpoint_from_row!(row);
            sqlx::query(&delete).bind(id).execute(&mut *tx).await?;
            sqlx::query(&counters)
                .bind(-1_i64)
                .bind(-1_i64)
                .bind(&row.tenant_id)
                .bind(&row.plugin_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(row))
        })
    }
}
