//! Several daemons on one PostgreSQL database, one Redis (a key prefix of each test's own;
//! nothing else on the server is touched) and one object store (a shared local storage root;
//! each node has its own working directory):
//!
//! * an install through node A runs on node B too (B builds it from the package in object
//!   storage) and answers there; node C, which cannot launch it, forwards to a node that runs
//!   it; an upgrade through B moves A to the new version; an uninstall through B stops the
//!   plugin on A;
//! * a node killed during an install: its task is failed with a reason by the master, not left
//!   running.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugind_test_support::{
    create_pg_database, drop_pg_database, envelope_data, pack_fixture, tool_texts, Client, Daemon,
    DaemonOptions, DbChoice, FakeDify, Variant, ECHO_PLUGIN_ID,
};
use serde_json::{json, Value};

const TENANT: &str = "c1c1c1c1-2222-4333-8444-955566667777";
const KEY: &str = "cluster-test-key";

struct Cluster {
    dify: FakeDify,
    database: String,
    prefix: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn new() -> Cluster {
        let database = create_pg_database().unwrap_or_else(|e| {
            panic!("PostgreSQL on 127.0.0.1:5432 is needed ({e}); start it with `service postgresql start`")
        });
        // Redis must answer, or the daemons fail to start naming it.
        std::net::TcpStream::connect("127.0.0.1:6379").unwrap_or_else(|e| {
            panic!("Redis on 127.0.0.1:6379 is needed ({e}); start it with `redis-server --daemonize yes`")
        });
        Cluster {
            dify: FakeDify::start().await,
            database,
            prefix: format!(
                "plugind_test_cluster_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("object-storage")
    }

    async fn node(&self, name: &str, extra: &[(&str, &str)]) -> Daemon {
        let mut env: Vec<(String, String)> = vec![
            ("SERVER_KEY".into(), KEY.into()),
            ("REDIS_HOST".into(), "127.0.0.1".into()),
            ("REDIS_PORT".into(), "6379".into()),
            ("REDIS_KEY_PREFIX".into(), self.prefix.clone()),
            (
                "PLUGIN_STORAGE_LOCAL_ROOT".into(),
                self.storage().to_string_lossy().into_owned(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let opts = DaemonOptions {
            data_dir: self.dir.path().join(name),
            db: DbChoice::Postgres {
                database: self.database.clone(),
            },
            extra_env: env,
        };
        Daemon::start(
            &PathBuf::from(env!("CARGO_BIN_EXE_plugind")),
            opts,
            &self.dify,
        )
        .await
        .unwrap_or_else(|e| panic!("node {name}: {e:#}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = drop_pg_database(&self.database);
    }
}

fn client(d: &Daemon) -> Client {
    Client::new(&d.base_url, KEY)
}

/// Polls `check` every 250 ms until it gives `Some`, failing after `limit` with `what` and logs.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, logs: &[&Daemon], mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = logs.iter().map(|d| d.log_tail(40)).collect();
            panic!(
                "{what} did not happen within {limit:?}; logs:\n{}",
                tails.join("\n-----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn echo(c: &Client, text: &str) -> Option<Vec<String>> {
    let (status, envelopes) = c.invoke_echo(TENANT, text, "text").await.ok()?;
    (status == 200)
        .then(|| tool_texts(&envelopes))
        .filter(|t| !t.is_empty())
}

fn working_dir_exists(node: &Daemon, uid: &str) -> bool {
    let uid = plugind_entities::PluginUniqueIdentifier::parse(uid).expect("uid");
    node.data_dir
        .join("cwd")
        .join(uid.working_dir_name())
        .exists()
}

#[tokio::test(flavor = "multi_thread")]
async fn install_on_one_node_runs_everywhere_redirects_where_needed_and_uninstall_reaches_all() {
    let cluster = Cluster::new().await;
    let a = cluster.node("a", &[]).await;
    let b = cluster.node("b", &[]).await;
    // C cannot launch any plugin: every request for one goes to a node that runs it.
    let c = cluster
        .node(
            "c",
            &[
                ("PYTHONHOME", "/nonexistent"),
                ("PLUGIN_ENV_PASSTHROUGH", "PYTHONHOME"),
            ],
        )
        .await;

    let uid = client(&a)
        .install_package(TENANT, pack_fixture(Variant::Latest))
        .await
        .expect("install through A");
    assert_eq!(
        echo(&client(&a), "on a").await,
        Some(vec!["on a".to_owned()])
    );
    let installed_at = Instant::now();

    // B learns of the install (announcement) and launches it from object storage.
    let launched_on_b = "plugin installed through another node runs here now";
    eventually(
        Duration::from_secs(300),
        "launch on B",
        &[&a, &b],
        || async { b.log().contains(launched_on_b).then_some(()) },
    )
    .await;
    assert_eq!(
        echo(&client(&b), "on b").await,
        Some(vec!["on b".to_owned()])
    );
    eprintln!(
        "installed through A → running and answering on B after {:?}",
        installed_at.elapsed()
    );

    // C tried and failed; it forwards to A or B.
    eventually(
        Duration::from_secs(120),
        "failed launch on C",
        &[&c],
        || async {
            c.log()
                .contains("plugin could not be started here")
                .then_some(())
        },
    )
    .await;
    let texts = eventually(
        Duration::from_secs(60),
        "redirected invoke through C",
        &[&c],
        || {
            let c = client(&c);
            async move { echo(&c, "via c").await }
        },
    )
    .await;
    assert_eq!(texts, vec!["via c".to_owned()]);

    // Upgrade through B: A launches the new version and stops the old one.
    let new_uid = {
        let tmp = tempfile::tempdir().expect("tempdir");
        plugind_test_support::assemble_fixture(Variant::Latest, tmp.path());
        let manifest = tmp.path().join("manifest.yaml");
        let text = std::fs::read_to_string(&manifest).expect("read manifest");
        assert!(text.contains("version: 0.0.1"), "fixture version");
        std::fs::write(
            &manifest,
            text.replacen("version: 0.0.1", "version: 0.0.2", 1),
        )
        .expect("write manifest");
        let package = plugind_package::pack_dir(tmp.path()).expect("pack");
        let (status, body) = client(&b)
            .upload_package(TENANT, package, false)
            .await
            .expect("upload 0.0.2");
        envelope_data(status, &body).expect("upload answer")["unique_identifier"]
            .as_str()
            .expect("uid")
            .to_owned()
    };
    let (status, body) = client(&b)
        .post_json(
            &format!("plugin/{TENANT}/management/install/upgrade"),
            json!({"original_plugin_unique_identifier": uid, "new_plugin_unique_identifier": new_uid,
                   "source": "package", "meta": {}}),
        )
        .await
        .expect("upgrade");
    let upgrade = envelope_data(status, &body).expect("upgrade answer");
    if let Some(task_id) = upgrade["task_id"].as_str().filter(|t| !t.is_empty()) {
        let path = format!("plugin/{TENANT}/management/install/tasks/{task_id}");
        let cb = client(&b);
        let task = eventually(Duration::from_secs(300), "upgrade task", &[&b], || {
            let (cb, path) = (cb.clone(), path.clone());
            async move {
                let (_, t) = cb.get(&path).await.ok()?;
                (t["data"]["status"] != "running" && t["data"]["status"] != "pending")
                    .then(|| t["data"].clone())
            }
        })
        .await;
        assert_eq!(task["status"], "success", "{task}");
    }
    eventually(
        Duration::from_secs(120),
        "old version stopped on A",
        &[&a],
        || async {
            a.log()
                .lines()
                .any(|l| l.contains("stopped here") && l.contains(&uid))
                .then_some(())
        },
    )
    .await;
    let texts = eventually(Duration::from_secs(120), "new version on A", &[&a], || {
        let ca = client(&a);
        async move { echo(&ca, "upgraded").await }
    })
    .await;
    assert_eq!(texts, vec!["upgraded".to_owned()]);
    assert!(
        a.log()
            .lines()
            .any(|l| l.contains("runs here now") && l.contains(&new_uid)),
        "A launched the new version itself"
    );
    assert!(
        !working_dir_exists(&a, &uid),
        "A removed the old version's working directory"
    );
    let uid = new_uid;

    // Uninstall through B: A stops its process too.
    let (status, body) = client(&b)
        .get(&format!(
            "plugin/{TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("list");
    let list = envelope_data(status, &body).expect("list answer");
    let installation: Value = list["list"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["plugin_id"] == ECHO_PLUGIN_ID).cloned())
        .expect("installed");
    let (status, body) = client(&b)
        .post_json(
            &format!("plugin/{TENANT}/management/uninstall"),
            json!({"plugin_installation_id": installation["installation_id"]}),
        )
        .await
        .expect("uninstall");
    assert_eq!(envelope_data(status, &body).expect("uninstall"), true);
    eventually(Duration::from_secs(60), "stop on A", &[&a], || async {
        a.log()
            .lines()
            .any(|l| l.contains("stopped here") && l.contains(&uid))
            .then_some(())
    })
    .await;
    let (status, _) = client(&a)
        .invoke_echo(TENANT, "gone", "text")
        .await
        .expect("invoke after uninstall");
    assert_eq!(status, 404, "the installation is gone everywhere");
    assert!(
        !working_dir_exists(&a, &uid),
        "A removed its working directory"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_during_an_install_has_its_task_failed_by_the_master() {
    let cluster = Cluster::new().await;
    // A's plugin never gets to its first heartbeat while the test runs.
    let mut a = cluster
        .node(
            "a",
            &[
                ("PLUGIND_TEST_START_DELAY", "600"),
                ("PLUGIN_ENV_PASSTHROUGH", "PLUGIND_TEST_START_DELAY"),
            ],
        )
        .await;
    let b = cluster.node("b", &[]).await;
    let ca = client(&a);
    let (_, resp) = ca
        .upload_package(TENANT, pack_fixture(Variant::Latest), false)
        .await
        .expect("upload");
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    let (_, resp) = ca
        .post_json(
            &format!("plugin/{TENANT}/management/install/identifiers"),
            json!({"plugin_unique_identifiers": [uid], "source": "package", "metas": [{}]}),
        )
        .await
        .expect("install");
    let task_id = resp["data"]["task_id"]
        .as_str()
        .expect("task id")
        .to_owned();
    let task_path = format!("plugin/{TENANT}/management/install/tasks/{task_id}");
    let cb = client(&b);
    // The task runs on A (B sees it running) ...
    eventually(Duration::from_secs(120), "task running", &[&a], || {
        let (cb, path) = (cb.clone(), task_path.clone());
        async move {
            let (_, t) = cb.get(&path).await.ok()?;
            (t["data"]["status"] == "running").then_some(())
        }
    })
    .await;
    // ... B, alive, does not touch it (it joined after A) ...
    assert_eq!(
        cb.get(&task_path).await.expect("task").1["data"]["status"],
        "running"
    );
    // ... and once A is gone, the master fails it with a reason.
    a.kill9();
    let task = eventually(
        Duration::from_secs(90),
        "task failed by the master",
        &[&b],
        || {
            let (cb, path) = (cb.clone(), task_path.clone());
            async move {
                let (_, t) = cb.get(&path).await.ok()?;
                (t["data"]["status"] == "failed").then(|| t["data"].clone())
            }
        },
    )
    .await;
    let message = task["plugins"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("daemon node running this install"),
        "{message}"
    );
    assert!(
        b.log()
            .contains("failed an install task whose node is gone"),
        "{}",
        b.log_tail(30)
    );
}
