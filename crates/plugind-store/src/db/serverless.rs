//! `serverless_runtimes`: where each serverless plugin's function lives (PSC §4.5, table in
//! Part 5): one row per uid, written by an upsert so concurrent installs converge.

use super::{col, dispatch, new_id, now, Backend, Db};
use crate::StoreError;

/// One `serverless_runtimes` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerlessRuntimeRow {
    pub plugin_unique_identifier: String,
    pub function_url: String,
    pub function_name: String,
    pub checksum: String,
}

impl Db {
    /// Inserts the row of `row.plugin_unique_identifier`, or updates its function URL, name and
    /// checksum (`type` is always `serverless`).
    pub async fn upsert_serverless_runtime(
        &self,
        row: &ServerlessRuntimeRow,
    ) -> Result<(), StoreError> {
        let insert = "INSERT INTO serverless_runtimes \
             (id, created_at, updated_at, plugin_unique_identifier, function_url, function_name, type, checksum) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6, 'serverless', $7)";
        let sql = match self.kind() {
            Backend::MySql => format!(
                "{} ON DUPLICATE KEY UPDATE updated_at = VALUES(updated_at), \
                 function_url = VALUES(function_url), function_name = VALUES(function_name), \
                 type = VALUES(type), checksum = VALUES(checksum)",
                self.sql(insert)
            ),
            _ => format!(
                "{} ON CONFLICT (plugin_unique_identifier) DO UPDATE SET updated_at = excluded.updated_at, \
                 function_url = excluded.function_url, function_name = excluded.function_name, \
                 type = excluded.type, checksum = excluded.checksum",
                self.sql(insert)
            ),
        };
        let at = now();
        dispatch!(self, pool => {
            sqlx::query(&sql)
                .bind(new_id())
                .bind(at)
                .bind(at)
                .bind(&row.plugin_unique_identifier)
                .bind(&row.function_url)
                .bind(&row.function_name)
                .bind(&row.checksum)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The row of `uid`, if any.
    pub async fn get_serverless_runtime(
        &self,
        uid: &str,
    ) -> Result<Option<ServerlessRuntimeRow>, StoreError> {
        let sql = self.sql(
            "SELECT plugin_unique_identifier, function_url, function_name, checksum \
             FROM serverless_runtimes WHERE plugin_unique_identifier = $1",
        );
        let row = dispatch!(self, pool => {
            match sqlx::query(&sql).bind(uid).fetch_optional(pool).await? {
                Some(row) => Some(ServerlessRuntimeRow {
                    plugin_unique_identifier: col!(row, "plugin_unique_identifier", String),
                    function_url: col!(row, "function_url", String),
                    function_name: col!(row, "function_name", String),
                    checksum: col!(row, "checksum", String),
                }),
                None => None,
            }
        });
        Ok(row)
    }
}
