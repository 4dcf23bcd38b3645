//! `plugin_readme_records`: readmes extracted lazily from stored packages (PSC §1.12).

use super::{col, dispatch, new_id, now, BeginWrite, Db};
use crate::StoreError;

impl Db {
    /// All stored readmes of `uid` as (language, content), in insertion order.
    pub async fn readmes(&self, uid: &str) -> Result<Vec<(String, String)>, StoreError> {
        let sql = self.sql(
            "SELECT language, content FROM plugin_readme_records WHERE plugin_unique_identifier = $1 ORDER BY created_at, language",
        );
        let rows = dispatch!(self, pool => {
            let mut out = Vec::new();
            for row in sqlx::query(&sql).bind(uid).fetch_all(pool).await? {
                out.push((col!(row, "language", String), col!(row, "content", String)));
            }
            out
        });
        Ok(rows)
    }

    /// Stores the readmes of `uid` in one transaction, unless some are already stored (a
    /// concurrent first fetch) — then nothing is written.
    pub async fn insert_readmes(
        &self,
        uid: &str,
        readmes: &[(String, String)],
    ) -> Result<(), StoreError> {
        let check = self.sql(
            "SELECT COUNT(*) AS n FROM plugin_readme_records WHERE plugin_unique_identifier = $1",
        );
        let insert = self.sql(
            "INSERT INTO plugin_readme_records (id, created_at, updated_at, plugin_unique_identifier, language, content) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6)",
        );
        let at = now();
        dispatch!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let existing: i64 = sqlx::Row::try_get(&sqlx::query(&check).bind(uid).fetch_one(&mut *tx).await?, "n")?;
            if existing == 0 {
                for (language, content) in readmes {
                    sqlx::query(&insert)
                        .bind(new_id())
                        .bind(at)
                        .bind(at)
                        .bind(uid)
                        .bind(language)
                        .bind(content)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
