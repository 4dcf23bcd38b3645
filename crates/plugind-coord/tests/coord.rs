//! The coordination interface against both implementations: in-process and the real Redis on
//! 127.0.0.1:6379 (each test under its own key prefix; nothing else on the server is touched),
//! plus an outage of a Redis server this test starts itself.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use plugind_coord::{Coord, CoordError, LockOptions, RedisSettings};

const SHARED_REDIS: &str = "127.0.0.1:6379";

fn settings(port: u16, prefix: &str) -> RedisSettings {
    RedisSettings {
        host: Some("127.0.0.1".into()),
        port,
        db: 0,
        key_prefix: prefix.into(),
        ..RedisSettings::default()
    }
}

/// The shared Redis with a prefix of this test's own, or a failure saying how to start it.
async fn shared(test: &str) -> Coord {
    let prefix = format!("plugind_test_{test}_{}", uuid::Uuid::new_v4().simple());
    Coord::from_settings(&settings(6379, &prefix))
        .await
        .unwrap_or_else(|e| {
            panic!("Redis at {SHARED_REDIS} is needed ({e}); start it with `redis-server --daemonize yes`")
        })
}

async fn both(test: &str) -> Vec<Coord> {
    vec![Coord::in_process(), shared(test).await]
}

#[tokio::test]
async fn cache_values_expire_and_delete() {
    for coord in both("cache").await {
        let what = coord.describe();
        assert_eq!(coord.get("k").await.expect("get"), None, "{what}");
        coord.set("k", b"v1", None).await.expect("set");
        assert_eq!(
            coord.get("k").await.expect("get").as_deref(),
            Some(&b"v1"[..])
        );
        coord
            .set("short", b"x", Some(Duration::from_millis(150)))
            .await
            .expect("set");
        assert!(coord.exists("short").await.expect("exists"), "{what}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            !coord.exists("short").await.expect("exists"),
            "{what} expiry"
        );
        assert_eq!(coord.del("k").await.expect("del"), 1, "{what}");
        assert_eq!(coord.del("k").await.expect("del"), 0, "{what}");
    }
}

#[tokio::test]
async fn redis_keys_carry_the_prefix() {
    let prefix = format!("plugind_test_prefix_{}", uuid::Uuid::new_v4().simple());
    let coord = Coord::from_settings(&settings(6379, &prefix))
        .await
        .expect("redis");
    coord
        .set(
            "persistence:cache:t:a/b:key",
            b"abcd",
            Some(Duration::from_secs(30)),
        )
        .await
        .expect("set");
    let out = Command::new("redis-cli")
        .args([
            "-p",
            "6379",
            "GET",
            &format!("{prefix}:persistence:cache:t:a/b:key"),
        ])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "abcd");
    coord.del("persistence:cache:t:a/b:key").await.expect("del");
}

#[tokio::test]
async fn a_lock_has_one_holder_and_frees_on_release_or_drop() {
    for coord in both("lock").await {
        let what = coord.describe();
        let opts = LockOptions {
            expire: Duration::from_secs(5),
            wait: Some(Duration::from_millis(100)),
        };
        let held = coord.lock("install:uid", opts).await.expect("first");
        let err = coord.lock("install:uid", opts).await.expect_err("second");
        assert!(matches!(err, CoordError::LockTimeout(_)), "{what}: {err}");
        // A waiter gets it once the holder lets go.
        let waiter = {
            let coord = coord.clone();
            tokio::spawn(async move {
                coord
                    .lock("install:uid", LockOptions::waiting(Duration::from_secs(5)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "{what}: waiter must wait");
        held.release().await.expect("release");
        let second = waiter.await.expect("join").expect("waiter takes it");
        drop(second);
        // Dropped guards free the lock (in the background for Redis).
        let again = coord
            .lock(
                "install:uid",
                LockOptions {
                    expire: Duration::from_secs(5),
                    wait: Some(Duration::from_secs(5)),
                },
            )
            .await
            .expect("free after drop");
        again.release().await.expect("release");
    }
}

#[tokio::test]
async fn a_held_lock_is_renewed_past_its_expiry() {
    for coord in both("renew").await {
        let what = coord.describe();
        let short = LockOptions {
            expire: Duration::from_millis(300),
            wait: Some(Duration::from_millis(50)),
        };
        let held = coord.lock("env_init_lock:x", short).await.expect("take");
        // Well past the expiry: still held, because the guard renews it.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(
            matches!(
                coord.lock("env_init_lock:x", short).await,
                Err(CoordError::LockTimeout(_))
            ),
            "{what}: renewed"
        );
        held.release().await.expect("release");
        assert!(matches!(
            coord
                .lock(
                    "other",
                    LockOptions {
                        expire: Duration::ZERO,
                        wait: None
                    }
                )
                .await,
            Err(CoordError::BadExpiry)
        ));
    }
}

#[tokio::test]
async fn a_redis_lock_of_a_dead_process_expires() {
    let coord = shared("deadholder").await;
    // Another "process" took the lock with a token we do not know and died.
    let prefix_key = "env_init_lock:dead";
    coord
        .set(
            prefix_key,
            b"someone-elses-token",
            Some(Duration::from_millis(300)),
        )
        .await
        .expect("set");
    let opts = LockOptions {
        expire: Duration::from_secs(5),
        wait: Some(Duration::from_secs(5)),
    };
    let guard = coord
        .lock(prefix_key, opts)
        .await
        .expect("taken after expiry");
    guard.release().await.expect("release");
}

#[tokio::test]
async fn published_messages_reach_every_subscriber() {
    for coord in both("pubsub").await {
        let what = coord.describe();
        let mut a = coord
            .subscribe("installation-invalidate")
            .await
            .expect("sub a");
        let mut b = coord
            .subscribe("installation-invalidate")
            .await
            .expect("sub b");
        let mut other = coord.subscribe("other").await.expect("sub other");
        coord
            .publish(
                "installation-invalidate",
                r#"{"tenant_id":"t","plugin_id":"a/b"}"#,
            )
            .await
            .expect("publish");
        for sub in [&mut a, &mut b] {
            let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .unwrap_or_else(|_| panic!("{what}: no message"));
            assert_eq!(
                msg.as_deref(),
                Some(r#"{"tenant_id":"t","plugin_id":"a/b"}"#)
            );
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(200), other.next())
                .await
                .is_err(),
            "{what}: other channel stays quiet"
        );
    }
}

#[tokio::test]
async fn two_handles_on_one_redis_share_state() {
    let prefix = format!("plugind_test_nodes_{}", uuid::Uuid::new_v4().simple());
    let node1 = Coord::from_settings(&settings(6379, &prefix))
        .await
        .expect("1");
    let node2 = Coord::from_settings(&settings(6379, &prefix))
        .await
        .expect("2");
    assert_ne!(node1.node_id(), node2.node_id());
    let mut sub = node2.subscribe("news").await.expect("sub");
    node1.publish("news", "hello").await.expect("pub");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("message"),
        Some("hello".into())
    );
    let held = node1
        .lock("uid", LockOptions::waiting(Duration::from_secs(5)))
        .await
        .expect("lock");
    assert!(node2
        .lock(
            "uid",
            LockOptions {
                expire: Duration::from_secs(5),
                wait: Some(Duration::from_millis(100))
            }
        )
        .await
        .is_err());
    held.release().await.expect("release");
}

/// A redis-server of this test's own on a free port, killed on drop.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed on PATH (apt-get install redis-server)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis { child, port }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test]
async fn an_outage_fails_calls_clearly_and_service_comes_back() {
    let port = free_port();
    let server = OwnRedis::start(port);
    let coord = Coord::from_settings(&settings(server.port, "outage"))
        .await
        .expect("connect");
    let mut sub = coord.subscribe("chan").await.expect("subscribe");
    coord.set("k", b"1", None).await.expect("set");
    drop(server);

    let err = coord.get("k").await.expect_err("down");
    let text = err.to_string();
    assert!(
        text.contains(&format!("Redis 127.0.0.1:{port}")) && text.contains("unavailable"),
        "{text}"
    );
    assert!(matches!(
        coord
            .lock("l", LockOptions::waiting(Duration::from_secs(1)))
            .await,
        Err(CoordError::Unavailable { .. })
    ));

    let _server = OwnRedis::start(port);
    // Back: the next calls reconnect (allow the manager a few attempts).
    let mut ok = false;
    for _ in 0..50 {
        if coord.set("k", b"2", None).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "commands work again after Redis is back");
    assert_eq!(
        coord.get("k").await.expect("get").as_deref(),
        Some(&b"2"[..])
    );
    // The subscription re-subscribed by itself.
    let mut delivered = false;
    for _ in 0..50 {
        coord.publish("chan", "after").await.expect("publish");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            assert_eq!(m, "after");
            delivered = true;
            break;
        }
    }
    assert!(delivered, "subscription came back");
}

#[tokio::test]
async fn an_unreachable_redis_is_named_at_connect() {
    let port = free_port();
    let err = Coord::from_settings(&settings(port, "x"))
        .await
        .expect_err("nothing listens");
    assert!(
        err.to_string()
            .contains(&format!("Redis 127.0.0.1:{port} db 0 is unavailable")),
        "{err}"
    );
}
