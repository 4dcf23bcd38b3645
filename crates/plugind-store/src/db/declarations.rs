//! `plugin_declarations`: one declaration per uploaded unique identifier (PSC §5.2).

use plugind_entities::PluginDeclaration;

use super::{col, dispatch, new_id, now, Db};
use crate::StoreError;

impl Db {
    /// The stored declaration of `uid`, if it was uploaded (and not yet removed by the last
    /// uninstall).
    pub async fn get_declaration(
        &self,
        uid: &str,
    ) -> Result<Option<PluginDeclaration>, StoreError> {
        let sql = self
            .sql("SELECT declaration FROM plugin_declarations WHERE plugin_unique_identifier = $1");
        let json: Option<String> = dispatch!(self, pool => {
            match sqlx::query(&sql).bind(uid).fetch_optional(pool).await? {
                Some(row) => Some(col!(row, "declaration", String)),
                None => None,
            }
        });
        json.map(|j| {
            serde_json::from_str(&j).map_err(StoreError::json("plugin_declarations.declaration"))
        })
        .transpose()
    }

    /// Stores the declaration of `uid` unless one is already there; returns whether this call
    /// inserted it. A concurrent insert of the same uid is not an error (the row is kept).
    pub async fn insert_declaration_if_absent(
        &self,
        uid: &str,
        plugin_id: &str,
        decl: &PluginDeclaration,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(decl).map_err(StoreError::json("declaration"))?;
        let sql = self.sql(
            "INSERT INTO plugin_declarations (id, created_at, updated_at, plugin_unique_identifier, plugin_id, declaration) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6) ON CONFLICT (plugin_unique_identifier) DO NOTHING",
        );
        let at = now();
        let result = dispatch!(self, pool => {
            sqlx::query(&sql)
                .bind(new_id())
                .bind(at)
                .bind(at)
                .bind(uid)
                .bind(plugin_id)
                .bind(&json)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        match result {
            Ok(n) => Ok(n > 0),
            Err(e) => {
                let e = StoreError::from(e);
                if e.is_unique_violation() {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}

impl Db {
    /// Removes the declaration row of `uid` (upload rollback).
    pub async fn delete_declaration(&self, uid: &str) -> Result<(), StoreError> {
        let sql = self.sql("DELETE FROM plugin_declarations WHERE plugin_unique_identifier = $1");
        dispatch!(self, pool => {
            sqlx::query(&sql).bind(uid).execute(pool).await?;
        });
        Ok(())
    }
}
