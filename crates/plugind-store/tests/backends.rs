//! Store scenarios, each written once and run against SQLite (temp dir), PostgreSQL
//! (127.0.0.1:5432, user postgres) and MySQL/MariaDB (127.0.0.1:3306, root). A fresh uniquely
//! named database is created per run and dropped afterwards. A server that does not answer fails
//! the test with instructions instead of skipping it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use plugind_entities::{
    InstallTask, InstallTaskEntry, InstallTaskStatus, PluginDeclaration, PluginUniqueIdentifier,
    ProviderKind,
};
use plugind_store::{
    new_id, Blobs, Db, DbConfig, EndpointRow, InstallOutcome, NewEndpoint, PoolSettings,
    StoreError, UninstallOutcome, UpgradeOutcome,
};
use serde_json::json;
use sqlx::Connection;

const PG_HINT: &str =
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
const MYSQL_HINT: &str =
    "start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd";

// ---------------------------------------------------------------- fixtures

fn tenant() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn uid(name: &str, version: &str) -> PluginUniqueIdentifier {
    let sum = format!("{:064x}", name.len() as u128 * 7919 + version.len() as u128);
    PluginUniqueIdentifier::parse(&format!("langgenius/{name}:{version}@{sum}")).unwrap()
}

fn decl(name: &str) -> PluginDeclaration {
    PluginDeclaration {
        version: "0.0.1".into(),
        kind: "plugin".into(),
        author: "langgenius".into(),
        name: name.into(),
        tool: Some(json!({"identity": {"name": format!("{name}_tool"), "author": "langgenius"}})),
        model: Some(json!({"provider": format!("{name}_model")})),
        ..Default::default()
    }
}

fn entry(uid: &PluginUniqueIdentifier, status: InstallTaskStatus) -> InstallTaskEntry {
    InstallTaskEntry {
        plugin_unique_identifier: uid.to_string(),
        labels: Default::default(),
        icon: "icon.svg".into(),
        icon_dark: String::new(),
        plugin_id: uid.plugin_id().into(),
        status,
        message: String::new(),
        source: "marketplace".into(),
    }
}

fn task(tenant: &str, entries: Vec<InstallTaskEntry>) -> InstallTask {
    let at = Utc::now();
    let at = at - chrono::Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos() % 1_000_000));
    InstallTask {
        id: new_id(),
        created_at: at,
        updated_at: at,
        status: InstallTaskStatus::Running,
        tenant_id: tenant.into(),
        total_plugins: entries.len() as i64,
        completed_plugins: 0,
        plugins: entries,
    }
}

// ---------------------------------------------------------------- scenarios

async fn scenario_install(db: &Db) {
    let t1 = tenant();
    let t2 = tenant();
    let u = uid("wikipedia", "0.0.8");
    let d = decl("wikipedia");

    assert!(db
        .insert_declaration_if_absent(u.as_str(), u.plugin_id(), &d)
        .await
        .unwrap());
    assert!(!db
        .insert_declaration_if_absent(u.as_str(), u.plugin_id(), &d)
        .await
        .unwrap());
    assert_eq!(
        db.get_declaration(u.as_str()).await.unwrap(),
        Some(d.clone())
    );
    assert_eq!(
        db.get_declaration("nobody/none:1.0.0@0123456789abcdef0123456789abcdef")
            .await
            .unwrap(),
        None
    );

    let meta = json!({"plugin_unique_identifier": u.as_str()});
    let first = match db
        .install_plugin(&t1, &u, "local", "marketplace", &meta, &d)
        .await
        .unwrap()
    {
        InstallOutcome::Installed(i) => i,
        other => panic!("expected Installed, got {other:?}"),
    };
    assert_eq!(first.tenant_id, t1);
    assert_eq!(first.plugin_id, "langgenius/wikipedia");
    assert_eq!(first.meta, meta);
    assert_eq!(db.plugin_refers(u.as_str()).await.unwrap(), Some(1));
    assert!(db.plugin_exists(u.as_str()).await.unwrap());
    assert!(db
        .installed_plugins()
        .await
        .unwrap()
        .contains(&(u.to_string(), "local".to_string())));

    let got = db
        .get_installation(&t1, u.plugin_id())
        .await
        .unwrap()
        .expect("installation");
    assert_eq!(got, first, "row read back equals the row written");
    let (list, total) = db.list_installations(&t1, 1, 10).await.unwrap();
    assert_eq!((list.len(), total), (1, 1));
    assert_eq!(list[0], first);
    assert_eq!(
        db.list_installations(&t1, 2, 10).await.unwrap(),
        (vec![], 1)
    );

    let tools = db
        .list_providers(ProviderKind::Tool, &t1, 1, 10)
        .await
        .unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].provider, "wikipedia_tool");
    assert_eq!(tools[0].plugin_unique_identifier, u.as_str());
    let tool = db
        .get_provider(ProviderKind::Tool, &t1, u.plugin_id(), "wikipedia_tool")
        .await
        .unwrap();
    assert_eq!(tool.as_ref(), tools.first());
    assert!(db
        .get_provider(ProviderKind::Tool, &t2, u.plugin_id(), "wikipedia_tool")
        .await
        .unwrap()
        .is_none());

    // Same plugin_id, other version: already installed, nothing changes.
    let u2 = uid("wikipedia", "0.0.9");
    match db
        .install_plugin(&t1, &u2, "local", "marketplace", &meta, &d)
        .await
        .unwrap()
    {
        InstallOutcome::AlreadyInstalled(i) => assert_eq!(i.id, first.id),
        other => panic!("expected AlreadyInstalled, got {other:?}"),
    }
    assert!(!db.plugin_exists(u2.as_str()).await.unwrap());

    // A second tenant shares the plugins row.
    let second = db
        .install_plugin(&t2, &u, "local", "package", &json!({}), &d)
        .await
        .unwrap();
    assert!(matches!(second, InstallOutcome::Installed(_)));
    assert_eq!(db.plugin_refers(u.as_str()).await.unwrap(), Some(2));

    assert_eq!(
        db.uninstall_plugin(&t2, &first.id).await.unwrap(),
        UninstallOutcome::NotFound
    );
    assert_eq!(
        db.uninstall_plugin(&t1, &new_id()).await.unwrap(),
        UninstallOutcome::NotFound
    );

    let removed = db.uninstall_plugin(&t1, &first.id).await.unwrap();
    assert_eq!(
        removed,
        UninstallOutcome::Removed {
            uid: u.to_string(),
            plugin_id: u.plugin_id().into(),
            plugin_deleted: false
        }
    );
    assert_eq!(db.plugin_refers(u.as_str()).await.unwrap(), Some(1));
    assert!(db
        .get_installation(&t1, u.plugin_id())
        .await
        .unwrap()
        .is_none());
    assert!(db
        .list_providers(ProviderKind::Tool, &t1, 1, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(db.get_declaration(u.as_str()).await.unwrap().is_some());

    let id2 = second.installation().id.clone();
    let removed = db.uninstall_plugin(&t2, &id2).await.unwrap();
    assert_eq!(
        removed,
        UninstallOutcome::Removed {
            uid: u.to_string(),
            plugin_id: u.plugin_id().into(),
            plugin_deleted: true
        }
    );
    assert!(!db.plugin_exists(u.as_str()).await.unwrap());
    assert_eq!(
        db.get_declaration(u.as_str()).await.unwrap(),
        None,
        "declaration goes with the last tenant"
    );
    assert!(db
        .list_providers(ProviderKind::Tool, &t2, 1, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.uninstall_plugin(&t2, &id2).await.unwrap(),
        UninstallOutcome::NotFound
    );
}

/// Every projection kind is readable, and model bindings follow the tenant's current
/// installation only.
async fn scenario_projections(db: &Db) {
    let t1 = tenant();
    let t2 = tenant();
    let u = uid("everything", "0.1.0");
    let d = PluginDeclaration {
        agent_strategy: Some(json!({"identity": {"name": "everything_agent"}})),
        datasource: Some(json!({"identity": {"name": "everything_datasource"}})),
        trigger: Some(json!({"identity": {"name": "everything_trigger"}})),
        ..decl("everything")
    };
    db.install_plugin(&t1, &u, "local", "package", &json!({}), &d)
        .await
        .unwrap();
    let kinds = [
        (ProviderKind::Tool, "everything_tool"),
        (ProviderKind::Model, "everything_model"),
        (ProviderKind::AgentStrategy, "everything_agent"),
        (ProviderKind::Datasource, "everything_datasource"),
        (ProviderKind::Trigger, "everything_trigger"),
    ];
    for (kind, provider) in kinds {
        let rows = db.list_providers(kind, &t1, 1, 10).await.unwrap();
        assert_eq!(rows.len(), 1, "{kind:?}");
        assert_eq!(rows[0].provider, provider);
        assert_eq!(rows[0].plugin_unique_identifier, u.as_str());
        assert!(db
            .list_providers(kind, &t1, 2, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(db
            .list_providers(kind, &t2, 1, 10)
            .await
            .unwrap()
            .is_empty());
        let one = db
            .get_provider(kind, &t1, u.plugin_id(), provider)
            .await
            .unwrap();
        assert_eq!(one.as_ref(), rows.first(), "{kind:?}");
        assert!(db
            .get_provider(kind, &t1, u.plugin_id(), "other")
            .await
            .unwrap()
            .is_none());
    }

    // A second model plugin, installed later: bindings are newest first.
    let later = uid("later", "0.2.0");
    // Timestamps have millisecond precision: keep the order unambiguous.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let installed = db
        .install_plugin(&t1, &later, "local", "package", &json!({}), &decl("later"))
        .await
        .unwrap();
    let bindings = db.model_bindings(&t1).await.unwrap();
    let names: Vec<&str> = bindings.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["later_model", "everything_model"]);
    assert_eq!(&bindings[0].1, installed.installation());
    assert!(db.model_bindings(&t2).await.unwrap().is_empty());
}

/// Upgrade (PSC §4.11): the installation row keeps its id and takes the new uid; `refers` moves
/// from the original to the new uid; the original's rows go with its last reference.
async fn scenario_upgrade(db: &Db) {
    let (t1, t2) = (tenant(), tenant());
    let old = uid("upgrader", "0.0.1");
    let new = uid("upgrader", "0.0.2");
    let d = decl("upgrader");
    let mut d2 = decl("upgrader");
    d2.model = None;
    for u in [&old, &new] {
        db.insert_declaration_if_absent(u.as_str(), u.plugin_id(), &d)
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for t in [&t1, &t2] {
        let outcome = db
            .install_plugin(t, &old, "local", "package", &json!({}), &d)
            .await
            .unwrap();
        ids.push(outcome.installation().id.clone());
    }
    assert_eq!(db.plugin_refers(old.as_str()).await.unwrap(), Some(2));

    // Wrong source or tenant: nothing moves.
    for (t, source) in [(&t1, "marketplace"), (&tenant(), "package")] {
        assert_eq!(
            db.upgrade_plugin(t, &old, &new, "local", source, &json!({}), &d2)
                .await
                .unwrap(),
            UpgradeOutcome::NotFound
        );
    }
    assert!(!db.plugin_exists(new.as_str()).await.unwrap());

    let meta = json!({"k": "v"});
    assert_eq!(
        db.upgrade_plugin(&t1, &old, &new, "local", "package", &meta, &d2)
            .await
            .unwrap(),
        UpgradeOutcome::Upgraded {
            installation_id: ids[0].clone(),
            original_deleted: false
        }
    );
    let moved = db
        .get_installation(&t1, old.plugin_id())
        .await
        .unwrap()
        .expect("installation");
    assert_eq!(
        (
            moved.id.as_str(),
            moved.plugin_unique_identifier.as_str(),
            &moved.meta
        ),
        (ids[0].as_str(), new.as_str(), &meta)
    );
    assert_eq!(db.plugin_refers(old.as_str()).await.unwrap(), Some(1));
    assert_eq!(db.plugin_refers(new.as_str()).await.unwrap(), Some(1));
    let tools = db
        .list_providers(ProviderKind::Tool, &t1, 1, 10)
        .await
        .unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].plugin_unique_identifier, new.as_str());
    assert!(db.get_declaration(old.as_str()).await.unwrap().is_some());

    // The second tenant's upgrade takes the last reference of the original.
    assert_eq!(
        db.upgrade_plugin(&t2, &old, &new, "local", "package", &json!({}), &d2)
            .await
            .unwrap(),
        UpgradeOutcome::Upgraded {
            installation_id: ids[1].clone(),
            original_deleted: true
        }
    );
    assert!(!db.plugin_exists(old.as_str()).await.unwrap());
    assert_eq!(db.get_declaration(old.as_str()).await.unwrap(), None);
    assert_eq!(db.plugin_refers(new.as_str()).await.unwrap(), Some(2));
    assert_eq!(
        db.upgrade_plugin(&t2, &old, &new, "local", "package", &json!({}), &d2)
            .await
            .unwrap(),
        UpgradeOutcome::NotFound
    );

    for (t, id) in [(&t1, &ids[0]), (&t2, &ids[1])] {
        assert!(matches!(
            db.uninstall_plugin(t, id).await.unwrap(),
            UninstallOutcome::Removed { .. }
        ));
    }
    assert!(!db.plugin_exists(new.as_str()).await.unwrap());
}

async fn scenario_concurrent(db: &Db) {
    let u = uid("concurrent", "1.0.0");
    let d = decl("concurrent");
    let t = tenant();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (db, u, d, t) = (db.clone(), u.clone(), d.clone(), t.clone());
        handles.push(tokio::spawn(async move {
            db.install_plugin(&t, &u, "local", "marketplace", &json!({}), &d)
                .await
        }));
    }
    let mut installed = 0;
    for h in handles {
        match h.await.unwrap().unwrap() {
            InstallOutcome::Installed(_) => installed += 1,
            InstallOutcome::AlreadyInstalled(_) => {}
        }
    }
    assert_eq!(installed, 1, "exactly one concurrent install wins");
    assert_eq!(db.plugin_refers(u.as_str()).await.unwrap(), Some(1));
    assert_eq!(db.list_installations(&t, 1, 100).await.unwrap().1, 1);

    // Eight tenants at once: eight installations, one plugins row with refers 8.
    let u = uid("fanout", "1.0.0");
    let d = decl("fanout");
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (db, u, d) = (db.clone(), u.clone(), d.clone());
        handles.push(tokio::spawn(async move {
            db.install_plugin(&tenant(), &u, "local", "marketplace", &json!({}), &d)
                .await
        }));
    }
    for h in handles {
        assert!(matches!(
            h.await.unwrap().unwrap(),
            InstallOutcome::Installed(_)
        ));
    }
    assert_eq!(db.plugin_refers(u.as_str()).await.unwrap(), Some(8));
    let rows: Vec<_> = db
        .installed_plugins()
        .await
        .unwrap()
        .into_iter()
        .filter(|(x, _)| x == u.as_str())
        .collect();
    assert_eq!(rows.len(), 1);
}

async fn scenario_tasks(db: &Db) {
    let t = tenant();
    let (a, b, c) = (
        uid("task-a", "1.0.0"),
        uid("task-b", "1.0.0"),
        uid("task-c", "1.0.0"),
    );
    let mut task1 = task(
        &t,
        vec![
            entry(&a, InstallTaskStatus::Pending),
            entry(&b, InstallTaskStatus::Pending),
        ],
    );
    db.create_task(&task1).await.unwrap();
    assert_eq!(
        db.get_task(&t, &task1.id).await.unwrap(),
        Some(task1.clone())
    );
    assert_eq!(db.get_task(&tenant(), &task1.id).await.unwrap(), None);

    let s = |x: Option<InstallTask>| x.expect("task");
    let got = s(db
        .update_task_entry(
            &task1.id,
            a.as_str(),
            InstallTaskStatus::Running,
            "starting",
        )
        .await
        .unwrap());
    assert_eq!(
        (got.status, got.completed_plugins),
        (InstallTaskStatus::Running, 0)
    );
    assert_eq!(got.plugins[0].message, "starting");
    let got = s(db
        .update_task_entry(
            &task1.id,
            a.as_str(),
            InstallTaskStatus::Success,
            "installed",
        )
        .await
        .unwrap());
    assert_eq!(
        (got.status, got.completed_plugins),
        (InstallTaskStatus::Running, 1)
    );
    let got = s(db
        .update_task_entry(
            &task1.id,
            a.as_str(),
            InstallTaskStatus::Success,
            "installed",
        )
        .await
        .unwrap());
    assert_eq!(got.completed_plugins, 1, "success twice counts once");
    let got = s(db
        .update_task_entry(&task1.id, b.as_str(), InstallTaskStatus::Failed, "boom")
        .await
        .unwrap());
    assert_eq!(
        (got.status, got.completed_plugins),
        (InstallTaskStatus::Failed, 1)
    );
    let got = s(db
        .update_task_entry(
            &task1.id,
            b.as_str(),
            InstallTaskStatus::Success,
            "installed",
        )
        .await
        .unwrap());
    assert_eq!(
        (got.status, got.completed_plugins),
        (InstallTaskStatus::Success, 2),
        "all success -> success"
    );
    let stored = db.get_task(&t, &task1.id).await.unwrap().unwrap();
    assert_eq!(stored.plugins, got.plugins);
    assert_eq!(stored.status, InstallTaskStatus::Success);
    let long = "x".repeat(3000);
    let got = s(db
        .update_task_entry(
            &task1.id,
            "nobody/none:1.0.0@0123456789abcdef0123456789abcdef",
            InstallTaskStatus::Failed,
            &long,
        )
        .await
        .unwrap());
    assert_eq!(
        got.status,
        InstallTaskStatus::Success,
        "unknown entry is ignored"
    );
    assert_eq!(
        db.update_task_entry(&new_id(), a.as_str(), InstallTaskStatus::Success, "")
            .await
            .unwrap(),
        None
    );
    task1 = stored;

    // Newest first.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let task2 = task(
        &t,
        vec![
            entry(&a, InstallTaskStatus::Success),
            entry(&c, InstallTaskStatus::Pending),
        ],
    );
    db.create_task(&task2).await.unwrap();
    let listed = db.list_tasks(&t, 1, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        vec![task2.id.as_str(), task1.id.as_str()]
    );
    assert_eq!(db.list_tasks(&t, 2, 1).await.unwrap()[0].id, task1.id);

    // Safety net: unfinished tasks fail, finished entries are kept.
    let n = db
        .fail_unfinished_tasks("An unexpected daemon shutdown occurred")
        .await
        .unwrap();
    assert!(n >= 1);
    let failed = db.get_task(&t, &task2.id).await.unwrap().unwrap();
    assert_eq!(failed.status, InstallTaskStatus::Failed);
    assert_eq!(failed.plugins[0].status, InstallTaskStatus::Success);
    assert_eq!(failed.plugins[1].status, InstallTaskStatus::Failed);
    assert_eq!(
        failed.plugins[1].message,
        "An unexpected daemon shutdown occurred"
    );
    assert_eq!(
        db.get_task(&t, &task1.id).await.unwrap().unwrap().status,
        InstallTaskStatus::Success
    );
    assert_eq!(db.fail_unfinished_tasks("again").await.unwrap(), 0);

    // Deleting the failed entry leaves only successes: the task goes.
    db.delete_task_entry(&t, &task2.id, c.as_str())
        .await
        .unwrap();
    assert_eq!(db.get_task(&t, &task2.id).await.unwrap(), None);
    // Deleting an entry while a non-success one remains keeps the task.
    let task3 = task(
        &t,
        vec![
            entry(&a, InstallTaskStatus::Success),
            entry(&b, InstallTaskStatus::Pending),
            entry(&c, InstallTaskStatus::Failed),
        ],
    );
    db.create_task(&task3).await.unwrap();
    db.delete_task_entry(&t, &task3.id, a.as_str())
        .await
        .unwrap();
    let kept = db.get_task(&t, &task3.id).await.unwrap().unwrap();
    assert_eq!(kept.plugins.len(), 2);
    db.delete_task_entry(&t, &new_id(), a.as_str())
        .await
        .unwrap();

    db.delete_task(&tenant(), &task1.id).await.unwrap();
    assert!(
        db.get_task(&t, &task1.id).await.unwrap().is_some(),
        "other tenant cannot delete"
    );
    db.delete_task(&t, &task1.id).await.unwrap();
    assert!(db.get_task(&t, &task1.id).await.unwrap().is_none());
    db.delete_all_tasks(&t).await.unwrap();
    assert!(db.list_tasks(&t, 1, 10).await.unwrap().is_empty());

    let bad = InstallTask {
        id: "not-a-uuid".into(),
        ..task(&t, vec![])
    };
    assert!(matches!(
        db.create_task(&bad).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Migrations run again (recorded, then forgotten so every CREATE … IF NOT EXISTS re-executes
/// over the existing tables) keep the data.
async fn scenario_migrations_twice(cfg: &DbConfig, db: &Db) {
    let t = tenant();
    let u = uid("survivor", "1.0.0");
    db.install_plugin(
        &t,
        &u,
        "local",
        "marketplace",
        &json!({}),
        &decl("survivor"),
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let again = Db::connect_and_migrate(cfg).await.unwrap();
    forget_migrations(cfg).await;
    let third = Db::connect_and_migrate(cfg)
        .await
        .expect("migrations over an existing schema");
    assert!(third
        .get_installation(&t, u.plugin_id())
        .await
        .unwrap()
        .is_some());
    third.ping().await.unwrap();
    again.close().await;
    third.close().await;
}

async fn forget_migrations(cfg: &DbConfig) {
    let sql = "DROP TABLE _sqlx_migrations";
    match cfg {
        DbConfig::Sqlite { path } => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        DbConfig::Postgres { database, .. } => {
            let mut c = sqlx::PgConnection::connect(&format!(
                "postgres://postgres@127.0.0.1:5432/{database}"
            ))
            .await
            .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        DbConfig::MySql { database, .. } => {
            let mut c =
                sqlx::MySqlConnection::connect(&format!("mysql://root@127.0.0.1:3306/{database}"))
                    .await
                    .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

/// `tenant_storages` accounting: a change over the limit is refused and leaves usage as it
/// was; usage never goes below zero; (tenant, plugin) pairs are separate.
async fn scenario_storage_usage(db: &Db) {
    let t = tenant();
    let other = tenant();
    assert_eq!(db.storage_size(&t, "a/p").await.unwrap(), 0);
    assert!(db
        .adjust_storage_size(&t, "a/p", 3000, Some(4096))
        .await
        .unwrap());
    assert!(!db
        .adjust_storage_size(&t, "a/p", 2000, Some(4096))
        .await
        .unwrap());
    assert_eq!(db.storage_size(&t, "a/p").await.unwrap(), 3000);
    assert!(db
        .adjust_storage_size(&t, "a/p", -1000, Some(4096))
        .await
        .unwrap());
    assert_eq!(db.storage_size(&t, "a/p").await.unwrap(), 2000);
    assert!(db
        .adjust_storage_size(&t, "a/p", -5000, None)
        .await
        .unwrap());
    assert_eq!(db.storage_size(&t, "a/p").await.unwrap(), 0);
    assert!(db
        .adjust_storage_size(&other, "a/p", 10, None)
        .await
        .unwrap());
    assert!(db
        .adjust_storage_size(&t, "a/q", 20, Some(20))
        .await
        .unwrap());
    assert!(!db
        .adjust_storage_size(&t, "a/q", 1, Some(20))
        .await
        .unwrap());
    assert_eq!(db.storage_size(&other, "a/p").await.unwrap(), 10);
    assert_eq!(db.storage_size(&t, "a/q").await.unwrap(), 20);
    assert_eq!(db.storage_size(&t, "a/p").await.unwrap(), 0);
}

async fn scenario_endpoints(db: &Db) {
    let t = tenant();
    let other = tenant();
    let u = uid("endpointer", "0.0.1");
    let d = decl("endpointer");
    db.insert_declaration_if_absent(u.as_str(), u.plugin_id(), &d)
        .await
        .unwrap();
    db.install_plugin(&t, &u, "local", "marketplace", &json!({}), &d)
        .await
        .unwrap();
    let counters = || async {
        let i = db
            .get_installation(&t, u.plugin_id())
            .await
            .unwrap()
            .unwrap();
        (i.endpoints_setups, i.endpoints_active)
    };
    assert_eq!(counters().await, (0, 0));

    let settings: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(json!({"api_key": "enc:secret", "n": 1})).unwrap();
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let id = new_id();
        let row = db
            .create_endpoint(NewEndpoint {
                id: &id,
                tenant_id: &t,
                user_id: "u1",
                plugin_id: u.plugin_id(),
                name,
                settings: &settings,
            })
            .await
            .unwrap();
        assert_eq!(row.id, id);
        assert_eq!(row.hook_id.len(), 16);
        assert!(row.enabled);
        assert_eq!(db.get_endpoint(&t, &id).await.unwrap(), Some(row));
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(counters().await, (3, 3));
    assert_eq!(db.get_endpoint(&other, &ids[0]).await.unwrap(), None);
    assert_eq!(db.get_endpoint(&t, "not-a-uuid").await.unwrap(), None);

    let names = |rows: Vec<EndpointRow>| rows.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(db.list_endpoints(&t, None, 1, 2).await.unwrap()),
        ["c", "b"]
    );
    assert_eq!(
        names(db.list_endpoints(&t, None, 2, 2).await.unwrap()),
        ["a"]
    );
    assert_eq!(
        names(
            db.list_endpoints(&t, Some(u.plugin_id()), 1, 10)
                .await
                .unwrap()
        ),
        ["c", "b", "a"]
    );
    assert!(db
        .list_endpoints(&t, Some("x/y"), 1, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(db
        .list_endpoints(&other, None, 1, 10)
        .await
        .unwrap()
        .is_empty());

    let changed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(json!({"api_key": "enc:other"})).unwrap();
    assert!(db
        .update_endpoint(&t, &ids[0], "renamed", &changed)
        .await
        .unwrap());
    assert!(!db
        .update_endpoint(&other, &ids[0], "x", &changed)
        .await
        .unwrap());
    let row = db.get_endpoint(&t, &ids[0]).await.unwrap().unwrap();
    assert_eq!((row.name.as_str(), &row.settings), ("renamed", &changed));

    for _ in 0..2 {
        let row = db
            .set_endpoint_enabled(&t, &ids[0], false)
            .await
            .unwrap()
            .unwrap();
        assert!(!row.enabled);
    }
    assert_eq!(counters().await, (3, 2));
    assert!(db
        .set_endpoint_enabled(&other, &ids[0], true)
        .await
        .unwrap()
        .is_none());
    db.set_endpoint_enabled(&t, &ids[0], true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counters().await, (3, 3));

    assert!(db.delete_endpoint(&t, &ids[1]).await.unwrap().is_some());
    assert!(db.delete_endpoint(&t, &ids[1]).await.unwrap().is_none());
    assert_eq!(counters().await, (2, 2));
    assert_eq!(
        names(db.list_endpoints(&t, None, 1, 10).await.unwrap()),
        ["c", "renamed"]
    );
}

async fn all_scenarios(cfg: DbConfig, backend: &'static str) {
    let db = Db::connect_and_migrate(&cfg)
        .await
        .unwrap_or_else(|e| panic!("connect {backend}: {e}"));
    assert_eq!(db.backend(), backend);
    db.ping().await.unwrap();
    scenario_install(&db).await;
    scenario_projections(&db).await;
    scenario_upgrade(&db).await;
    scenario_concurrent(&db).await;
    scenario_tasks(&db).await;
    scenario_storage_usage(&db).await;
    scenario_endpoints(&db).await;
    scenario_migrations_twice(&cfg, &db).await;
    db.close().await;
}

/// Runs the scenarios in a task so a failing assertion still lets `cleanup` drop the database.
async fn run_then_cleanup<F: std::future::Future<Output = ()>>(
    cfg: DbConfig,
    backend: &'static str,
    cleanup: F,
) {
    let outcome = tokio::spawn(all_scenarios(cfg, backend)).await;
    cleanup.await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn unique_db_name() -> String {
    format!("plugind_test_{}", uuid::Uuid::new_v4().simple())
}

// ---------------------------------------------------------------- per backend

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backend() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DbConfig::Sqlite {
        path: dir.path().join("state").join("plugind.db"),
    };
    run_then_cleanup(cfg, "sqlite", async {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend() {
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    match tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(admin)).await {
        Ok(Ok(c)) => drop(c.close().await),
        Ok(Err(e)) => panic!("PostgreSQL is not answering at 127.0.0.1:5432 ({e}); {PG_HINT}"),
        Err(_) => panic!("PostgreSQL did not answer at 127.0.0.1:5432 within 5s; {PG_HINT}"),
    }
    let name = unique_db_name();
    let cfg = DbConfig::Postgres {
        host: "127.0.0.1".into(),
        port: 5432,
        user: "postgres".into(),
        password: String::new(),
        database: name.clone(),
        sslmode: "disable".into(),
        extras: String::new(),
        pool: PoolSettings::default(),
    };
    run_then_cleanup(cfg, "postgresql", async move {
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut c)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_backend() {
    let admin = "mysql://root@127.0.0.1:3306/mysql";
    match tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::MySqlConnection::connect(admin),
    )
    .await
    {
        Ok(Ok(c)) => drop(c.close().await),
        Ok(Err(e)) => {
            panic!("MySQL/MariaDB is not answering at 127.0.0.1:3306 ({e}); {MYSQL_HINT}")
        }
        Err(_) => panic!("MySQL/MariaDB did not answer at 127.0.0.1:3306 within 5s; {MYSQL_HINT}"),
    }
    let name = unique_db_name();
    let cfg = DbConfig::MySql {
        host: "127.0.0.1".into(),
        port: 3306,
        user: "root".into(),
        password: String::new(),
        database: name.clone(),
        sslmode: "disable".into(),
        pool: PoolSettings::default(),
    };
    run_then_cleanup(cfg, "mysql", async move {
        let mut c = sqlx::MySqlConnection::connect(admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
            .execute(&mut c)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn connect_failure_names_host_and_port() {
    let started = std::time::Instant::now();
    let pg = DbConfig::Postgres {
        host: "127.0.0.1".into(),
        port: 1,
        user: "postgres".into(),
        password: String::new(),
        database: "dify_plugin".into(),
        sslmode: "disable".into(),
        extras: String::new(),
        pool: PoolSettings::default(),
    };
    let err = Db::connect(&pg)
        .await
        .expect_err("nothing listens on port 1")
        .to_string();
    assert!(
        err.starts_with("cannot connect to PostgreSQL at 127.0.0.1:1 (database dify_plugin): "),
        "{err}"
    );
    let my = DbConfig::MySql {
        host: "127.0.0.1".into(),
        port: 1,
        user: "root".into(),
        password: String::new(),
        database: "dify_plugin".into(),
        sslmode: "disable".into(),
        pool: PoolSettings::default(),
    };
    let err = Db::connect(&my)
        .await
        .expect_err("nothing listens on port 1")
        .to_string();
    assert!(
        err.starts_with("cannot connect to MySQL at 127.0.0.1:1 (database dify_plugin): "),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "gives up quickly"
    );
}

/// Connecting alone leaves the schema as it is (`dify plugin cleanup --db` only reads); the
/// daemon and `dify migrate` migrate explicitly.
#[tokio::test]
async fn connect_alone_does_not_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugind.db");
    let cfg = DbConfig::Sqlite { path: path.clone() };
    let tables = || async {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let names: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&mut c)
                .await
                .unwrap();
        names.into_iter().map(|(n,)| n).collect::<Vec<_>>()
    };
    let db = Db::connect(&cfg).await.unwrap();
    db.ping().await.unwrap();
    db.close().await;
    assert_eq!(
        tables().await,
        Vec::<String>::new(),
        "connect created tables"
    );

    let db = Db::connect_and_migrate(&cfg).await.unwrap();
    db.close().await;
    let after = tables().await;
    assert!(
        after.contains(&"plugins".to_owned()) && after.contains(&"_sqlx_migrations".to_owned()),
        "{after:?}"
    );
    let u = uid("reader", "1.0.0");
    let db = Db::connect(&cfg).await.unwrap();
    assert!(!db.plugin_exists(u.as_str()).await.unwrap());
    db.close().await;
}

#[tokio::test]
async fn blobs_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::local(&dir.path().join("storage")).unwrap();
    let key = "plugin_packages/langgenius/wikipedia:0.0.8@f7df0123456789abcdef0123456789ab";
    assert_eq!(blobs.load(key).await.unwrap(), None);
    assert!(!blobs.exists(key).await.unwrap());
    blobs.save(key, b"first".to_vec()).await.unwrap();
    blobs.save(key, b"package bytes".to_vec()).await.unwrap();
    assert!(blobs.exists(key).await.unwrap());
    assert_eq!(
        blobs.load(key).await.unwrap().as_deref(),
        Some(&b"package bytes"[..])
    );
    blobs
        .save("plugin_packages/other/x:1.0.0@aa", vec![1])
        .await
        .unwrap();
    blobs.save("assets/icon.svg", vec![2]).await.unwrap();
    assert_eq!(
        blobs.list("plugin_packages").await.unwrap(),
        vec![
            "langgenius/wikipedia:0.0.8@f7df0123456789abcdef0123456789ab".to_string(),
            "other/x:1.0.0@aa".to_string()
        ]
    );
    assert_eq!(blobs.list("").await.unwrap().len(), 3);
    assert!(blobs.list("nothing/here").await.unwrap().is_empty());
    assert!(dir
        .path()
        .join("storage/plugin_packages/langgenius/wikipedia:0.0.8@f7df0123456789abcdef0123456789ab")
        .is_file());
    blobs.delete(key).await.unwrap();
    blobs.delete(key).await.unwrap();
    assert_eq!(blobs.load(key).await.unwrap(), None);
    blobs.delete("plugin_packages").await.unwrap();
    assert_eq!(
        blobs.list("").await.unwrap(),
        vec!["assets/icon.svg".to_string()]
    );
    assert!(blobs.save("../escape", vec![]).await.is_err());
}

/// `DB_MAX_OPEN_CONNS` bounds the pool (more callers wait for a connection instead of opening
/// more), `DB_MAX_IDLE_CONNS` bounds what stays open when the burst is over, `DB_EXTRAS` reaches
/// the server as run-time parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_bounds_and_extras() {
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    match tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(admin)).await {
        Ok(Ok(c)) => drop(c.close().await),
        Ok(Err(e)) => panic!("PostgreSQL is not answering at 127.0.0.1:5432 ({e}); {PG_HINT}"),
        Err(_) => panic!("PostgreSQL did not answer at 127.0.0.1:5432 within 5s; {PG_HINT}"),
    }
    let name = unique_db_name();
    let cfg = DbConfig::Postgres {
        host: "127.0.0.1".into(),
        port: 5432,
        user: "postgres".into(),
        password: String::new(),
        database: name.clone(),
        sslmode: "disable".into(),
        extras: "options=-c statement_timeout=4321 -c lock_timeout=1234".into(),
        pool: PoolSettings {
            max_open: 3,
            max_idle: 1,
            max_lifetime: Some(Duration::from_secs(60)),
        },
    };
    let db = Db::connect(&cfg).await.expect("connect");
    let stats = db.pool_stats();
    assert_eq!(stats.max_open, 3);
    // Ten callers at once, each holding a connection for a moment: never more than three open.
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut calls = Vec::new();
    for _ in 0..10 {
        let db = db.clone();
        let peak = peak.clone();
        calls.push(tokio::spawn(async move {
            db.scalar_text("SELECT pg_sleep(0.05)::text")
                .await
                .expect("query");
            peak.fetch_max(db.pool_stats().open, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    for c in calls {
        c.await.expect("join");
    }
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=3).contains(&peak), "peak {peak}");
    // Connections beyond the idle bound are closed as they come back (the close itself runs
    // in the background, so the count settles a moment later).
    let mut after = db.pool_stats();
    for _ in 0..100 {
        if after.open <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = db.pool_stats();
    }
    assert!(after.idle <= 1 && after.open <= 1, "{after:?}");
    assert_eq!(
        db.scalar_text("SHOW statement_timeout")
            .await
            .expect("show")
            .unwrap_or_default(),
        "4321ms"
    );
    assert_eq!(
        db.scalar_text("SHOW lock_timeout")
            .await
            .expect("show")
            .unwrap_or_default(),
        "1234ms"
    );
    drop(db);
    let mut c = sqlx::PgConnection::connect(admin).await.expect("admin");
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut c)
        .await
        .expect("drop");
}
