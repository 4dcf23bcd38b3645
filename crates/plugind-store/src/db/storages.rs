//! `tenant_storages`: bytes of plugin key–value storage in use per (tenant, plugin id)
//! (PSC §5, §6.4).

use super::{col, dispatch, new_id, now, BeginWrite, Db};
use crate::StoreError;

impl Db {
    /// Bytes in use by `plugin_id` for `tenant_id` (0 without a row).
    pub async fn storage_size(&self, tenant_id: &str, plugin_id: &str) -> Result<i64, StoreError> {
        let sql =
            self.sql("SELECT size FROM tenant_storages WHERE tenant_id = $1 AND plugin_id = $2");
        let size = dispatch!(self, pool => {
            match sqlx::query(&sql).bind(tenant_id).bind(plugin_id).fetch_optional(pool).await? {
                Some(row) => col!(row, "size", i64),
                None => 0,
            }
        });
        Ok(size)
    }

    /// Adds `diff` bytes (may be negative) to the usage of (`tenant_id`, `plugin_id`) in one
    /// transaction, unless the new usage would exceed `limit`: then nothing changes and the
    /// answer is `false`. Usage never goes below 0. `limit: None` always applies the change.
    pub async fn adjust_storage_size(
        &self,
        tenant_id: &str,
        plugin_id: &str,
        diff: i64,
        limit: Option<i64>,
    ) -> Result<bool, StoreError> {
        let select = self.sql(
            "SELECT id::text AS id, size FROM tenant_storages WHERE tenant_id = $1 AND plugin_id = $2 FOR UPDATE",
        );
        let update =
            self.sql("UPDATE tenant_storages SET size = $1, updated_at = $2 WHERE id = $3::uuid");
        let insert = self.sql(
            "INSERT INTO tenant_storages (id, created_at, updated_at, tenant_id, plugin_id, size) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6)",
        );
        let at = now();
        let applied = dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(&select).bind(tenant_id).bind(plugin_id).fetch_optional(&mut *tx).await?;
            let (id, size) = match row {
                Some(row) => (Some(col!(row, "id", String)), col!(row, "size", i64)),
                None => (None, 0),
            };
            let new_size = size.saturating_add(diff).max(0);
            if diff > 0 && limit.is_some_and(|l| new_size > l) {
                tx.rollback().await?;
                false
            } else {
                match id {
                    Some(id) => {
                        sqlx::query(&update).bind(new_size).bind(at).bind(id).execute(&mut *tx).await?;
                    }
                    None => {
                        sqlx::query(&insert)
                            .bind(new_id())
                            .bind(at)
                            .bind(at)
                            .bind(tenant_id)
                            .bind(plugin_id)
                            .bind(new_size)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                true
            }
        });
        Ok(applied)
    }
}
