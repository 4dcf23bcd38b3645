//! `install_tasks`: progress of asynchronous installs, with the `plugins` column holding the
//! JSON array of entries (PSC §4.3). Updates run under a row lock and apply
//! [`InstallTask::set_entry_status`].

use plugind_entities::task::clip_message;
use plugind_entities::{InstallTask, InstallTaskEntry, InstallTaskStatus};

use super::{col, dispatch, now, retry, BeginWrite, Db};
use crate::StoreError;

const TASK_COLUMNS: &str =
    "id::text AS id, created_at, updated_at, status, tenant_id::text AS tenant_id, \
     total_plugins, completed_plugins, plugins";

fn parse_status(s: &str) -> Result<InstallTaskStatus, StoreError> {
    InstallTaskStatus::parse(s).ok_or_else(|| {
        StoreError::Invalid(format!(
            "unknown install task status {s:?} in install_tasks"
        ))
    })
}

fn parse_entries(json: &str) -> Result<Vec<InstallTaskEntry>, StoreError> {
    if json.trim().is_empty() || json.trim() == "null" {
        return Ok(Vec::new());
    }
    serde_json::from_str(json).map_err(StoreError::json("install_tasks.plugins"))
}

fn entries_json(entries: &[InstallTaskEntry]) -> Result<String, StoreError> {
    serde_json::to_string(entries).map_err(StoreError::json("install task entries"))
}

/// Builds an [`InstallTask`] from a row selected with [`TASK_COLUMNS`].
macro_rules! task_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = col!(row, "status", String);
        let plugins: String = col!(row, "plugins", String);
        InstallTask {
            id: col!(row, "id", String),
            created_at: col!(row, "created_at", chrono::DateTime<chrono::Utc>),
            updated_at: col!(row, "updated_at", chrono::DateTime<chrono::Utc>),
            status: parse_status(&status)?,
            tenant_id: col!(row, "tenant_id", String),
            total_plugins: col!(row, "total_plugins", i64),
            completed_plugins: col!(row, "completed_plugins", i64),
            plugins: parse_entries(&plugins)?,
        }
    }};
}

impl Db {
    /// Stores a new task. `task.id` must be a UUID (generate it with [`crate::new_id`]);
    /// `created_at`/`updated_at` are stored as given.
    pub async fn create_task(&self, task: &InstallTask) -> Result<(), StoreError> {
        if uuid::Uuid::parse_str(&task.id).is_err() {
            return Err(StoreError::Invalid(format!(
                "install task id must be a UUID, got {:?}",
                task.id
            )));
        }
        self.require_uuid("tenant_id", &task.tenant_id)?;
        let plugins = entries_json(&task.plugins)?;
        let sql = self.sql(
            "INSERT INTO install_tasks (id, created_at, updated_at, status, tenant_id, total_plugins, completed_plugins, plugins) \
             VALUES ($1::uuid, $2, $3, $4, $5::uuid, $6, $7, $8)",
        );
        dispatch!(self, pool => {
            sqlx::query(&sql)
                .bind(&task.id)
                .bind(task.created_at)
                .bind(task.updated_at)
                .bind(task.status.as_str())
                .bind(&task.tenant_id)
                .bind(task.total_plugins)
                .bind(task.completed_plugins)
                .bind(&plugins)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The tenant's task `id`.
    pub async fn get_task(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<InstallTask>, StoreError> {
        if !self.uuid_ok(tenant_id) || !self.uuid_ok(id) {
            return Ok(None);
        }
        let sql = self.sql(&format!(
            "SELECT {TASK_COLUMNS} FROM install_tasks WHERE id = $1::uuid AND tenant_id = $2::uuid"
        ));
        dispatch!(self, pool => {
            match sqlx::query(&sql).bind(id).bind(tenant_id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(task_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// One page (1-based) of the tenant's tasks, newest first.
    pub async fn list_tasks(
        &self,
        tenant_id: &str,
        page: i64,
        page_size: i64,
    ) -> Result<Vec<InstallTask>, StoreError> {
        if !self.uuid_ok(tenant_id) {
            return Ok(Vec::new());
        }
        let size = page_size.max(1);
        let offset = (page.max(1) - 1).saturating_mul(size);
        let sql = self.sql(&format!(
            "SELECT {TASK_COLUMNS} FROM install_tasks WHERE tenant_id = $1::uuid \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ));
        dispatch!(self, pool => {
            let rows = sqlx::query(&sql).bind(tenant_id).bind(size).bind(offset).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(task_from_row!(row));
            }
            Ok(out)
        })
    }

    /// Sets the status and message of entry `uid` of task `task_id` under a row lock, applying
    /// upstream's counting rules. A missing task gives `None`; a missing entry leaves the task
    /// unchanged (it is returned as stored).
    pub async fn update_task_entry(
        &self,
        task_id: &str,
        uid: &str,
        status: InstallTaskStatus,
        message: &str,
    ) -> Result<Option<InstallTask>, StoreError> {
        if !self.uuid_ok(task_id) {
            return Ok(None);
        }
        let lock = self.sql(&format!(
            "SELECT {TASK_COLUMNS} FROM install_tasks WHERE id = $1::uuid FOR UPDATE"
        ));
        let update = self.sql(
            "UPDATE install_tasks SET updated_at = $1, status = $2, completed_plugins = $3, plugins = $4 WHERE id = $5::uuid",
        );
        let (lock, update) = (&lock, &update);
        dispatch!(self, pool => retry(move || async move {
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(lock).bind(task_id).fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let mut task = task_from_row!(row);
            if !task.set_entry_status(uid, status, message) {
                tx.rollback().await?;
                return Ok(Some(task));
            }
            task.updated_at = now();
            sqlx::query(update)
                .bind(task.updated_at)
                .bind(task.status.as_str())
                .bind(task.completed_plugins)
                .bind(entries_json(&task.plugins)?)
                .bind(task_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(task))
        }).await)
    }

    /// Start-up/shutdown safety net: every `pending`/`running` task becomes `failed`, and so does
    /// each of its entries that had not finished, with `message`. Returns the number of tasks.
    pub async fn fail_unfinished_tasks(&self, message: &str) -> Result<u64, StoreError> {
        let lock = self.sql(&format!(
            "SELECT {TASK_COLUMNS} FROM install_tasks WHERE status = $1 OR status = $2 FOR UPDATE"
        ));
        let update = self.sql("UPDATE install_tasks SET updated_at = $1, status = $2, plugins = $3 WHERE id = $4::uuid");
        let (lock, update) = (&lock, &update);
        let message = clip_message(message);
        let message = &message;
        dispatch!(self, pool => retry(move || async move {
            let at = now();
            let mut tx = pool.begin_write().await?;
            let rows = sqlx::query(lock)
                .bind(InstallTaskStatus::Pending.as_str())
                .bind(InstallTaskStatus::Running.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let mut tasks = Vec::with_capacity(rows.len());
            for row in rows {
                tasks.push(task_from_row!(row));
            }
            for task in &mut tasks {
                for entry in task.plugins.iter_mut().filter(|e| !e.status.is_finished()) {
                    entry.status = InstallTaskStatus::Failed;
                    entry.message = message.clone();
                }
                sqlx::query(update)
                    .bind(at)
                    .bind(InstallTaskStatus::Failed.as_str())
                    .bind(entries_json(&task.plugins)?)
                    .bind(&task.id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(tasks.len() as u64)
        }).await)
    }

    /// Ids of every task still `pending`/`running` (any tenant).
    pub async fn unfinished_task_ids(&self) -> Result<Vec<String>, StoreError> {
        let sql =
            self.sql("SELECT id::text AS id FROM install_tasks WHERE status = $1 OR status = $2");
        dispatch!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(InstallTaskStatus::Pending.as_str())
                .bind(InstallTaskStatus::Running.as_str())
                .fetch_all(pool)
                .await?;
            let mut ids = Vec::with_capacity(rows.len());
            for row in rows {
                ids.push(col!(row, "id", String));
            }
            Ok(ids)
        })
    }

    /// Fails task `id` and each of its unfinished entries with `message`, if it is still
    /// `pending`/`running` (a cluster node taking over the tasks of a node that died). Whether
    /// it was unfinished.
    pub async fn fail_unfinished_task(&self, id: &str, message: &str) -> Result<bool, StoreError> {
        if !self.uuid_ok(id) {
            return Ok(false);
        }
        let lock = self.sql(&format!(
            "SELECT {TASK_COLUMNS} FROM install_tasks WHERE id = $1::uuid AND (status = $2 OR status = $3) FOR UPDATE"
        ));
        let update = self.sql("UPDATE install_tasks SET updated_at = $1, status = $2, plugins = $3 WHERE id = $4::uuid");
        let (lock, update) = (&lock, &update);
        let message = clip_message(message);
        let message = &message;
        dispatch!(self, pool => retry(move || async move {
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(lock)
                .bind(id)
                .bind(InstallTaskStatus::Pending.as_str())
                .bind(InstallTaskStatus::Running.as_str())
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(false);
            };
            let mut task = task_from_row!(row);
            for entry in task.plugins.iter_mut().filter(|e| !e.status.is_finished()) {
                entry.status = InstallTaskStatus::Failed;
                entry.message = message.clone();
            }
            sqlx::query(update)
                .bind(now())
                .bind(InstallTaskStatus::Failed.as_str())
                .bind(entries_json(&task.plugins)?)
                .bind(&task.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }).await)
    }

    /// Deletes the tenant's task `id` (no error when it does not exist).
    pub async fn delete_task(&self, tenant_id: &str, id: &str) -> Result<(), StoreError> {
        if !self.uuid_ok(tenant_id) || !self.uuid_ok(id) {
            return Ok(());
        }
        let sql =
            self.sql("DELETE FROM install_tasks WHERE id = $1::uuid AND tenant_id = $2::uuid");
        dispatch!(self, pool => {
            sqlx::query(&sql).bind(id).bind(tenant_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Deletes every task of the tenant.
    pub async fn delete_all_tasks(&self, tenant_id: &str) -> Result<(), StoreError> {
        if !self.uuid_ok(tenant_id) {
            return Ok(());
        }
        let sql = self.sql("DELETE FROM install_tasks WHERE tenant_id = $1::uuid");
        dispatch!(self, pool => {
            sqlx::query(&sql).bind(tenant_id).execute(pool).await?;
        });
        Ok(())
    }

    /// Removes entry `uid` from the tenant's task `id` under a row lock; when every remaining
    /// entry is `success` (or none remain) the whole task is deleted. Counters are left as they
    /// are, as upstream does. A missing task is not an error.
    pub async fn delete_task_entry(
        &self,
        tenant_id: &str,
        id: &str,
        uid: &str,
    ) -> Result<(), StoreError> {
        if !self.uuid_ok(tenant_id) || !self.uuid_ok(id) {
            return Ok(());
        }
        let lock = self.sql(&format!(
            "SELECT {TASK_COLUMNS} FROM install_tasks WHERE id = $1::uuid AND tenant_id = $2::uuid FOR UPDATE"
        ));
        let delete = self.sql("DELETE FROM install_tasks WHERE id = $1::uuid");
        let update =
            self.sql("UPDATE install_tasks SET updated_at = $1, plugins = $2 WHERE id = $3::uuid");
        let (lock, delete, update) = (&lock, &delete, &update);
        dispatch!(self, pool => retry(move || async move {
            let mut tx = pool.begin_write().await?;
            let Some(row) = sqlx::query(lock).bind(id).bind(tenant_id).fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(());
            };
            let mut task = task_from_row!(row);
            task.plugins.retain(|e| e.plugin_unique_identifier != uid);
            if task.plugins.iter().all(|e| e.status == InstallTaskStatus::Success) {
                sqlx::query(delete).bind(id).execute(&mut *tx).await?;
            } else {
                sqlx::query(update)
                    .bind(now())
                    .bind(entries_json(&task.plugins)?)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }).await)
    }
}
