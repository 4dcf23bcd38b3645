//! Hashes, set-if-absent and expiry (what the cluster's node table, plugin registry and master
//! election use) against both implementations: in-process and the real Redis on 127.0.0.1:6379
//! under a key prefix of this test's own.

use std::time::Duration;

use plugind_coord::{Coord, RedisSettings};

async fn both() -> Vec<Coord> {
    let prefix = format!("plugind_test_hashes_{}", uuid::Uuid::new_v4().simple());
    let redis = Coord::from_settings(&RedisSettings {
        host: Some("127.0.0.1".into()),
        port: 6379,
        key_prefix: prefix,
        ..RedisSettings::default()
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "Redis at 127.0.0.1:6379 is needed ({e}); start it with `redis-server --daemonize yes`"
        )
    });
    vec![Coord::in_process(), redis]
}

#[tokio::test]
async fn hash_fields_are_set_read_listed_and_deleted() {
    for coord in both().await {
        let what = coord.describe();
        assert_eq!(coord.hget("h", "a").await.expect("hget"), None, "{what}");
        coord.hset("h", "a", "1").await.expect("hset");
        coord.hset("h", "b", "2").await.expect("hset");
        coord.hset("h", "a", "3").await.expect("hset");
        assert_eq!(
            coord.hget("h", "a").await.expect("hget").as_deref(),
            Some("3")
        );
        let mut all = coord.hgetall("h").await.expect("hgetall");
        all.sort();
        assert_eq!(
            all,
            vec![("a".into(), "3".into()), ("b".into(), "2".into())],
            "{what}"
        );
        assert_eq!(coord.hdel("h", "a").await.expect("hdel"), 1, "{what}");
        assert_eq!(coord.hdel("h", "a").await.expect("hdel"), 0, "{what}");
        coord.hdel("h", "b").await.expect("hdel");
        assert!(
            coord.hgetall("h").await.expect("hgetall").is_empty(),
            "{what}"
        );
    }
}

#[tokio::test]
async fn set_if_absent_has_one_winner_until_the_key_expires() {
    for coord in both().await {
        let what = coord.describe();
        let ttl = Duration::from_millis(300);
        assert!(
            coord.set_nx("m", b"one", ttl).await.expect("set_nx"),
            "{what}"
        );
        assert!(
            !coord.set_nx("m", b"two", ttl).await.expect("set_nx"),
            "{what}"
        );
        assert_eq!(
            coord.get("m").await.expect("get").as_deref(),
            Some(&b"one"[..])
        );
        // Kept alive by refreshing the expiry, as the master refreshes its key.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(coord.expire("m", ttl).await.expect("expire"), "{what}");
        }
        assert!(coord.exists("m").await.expect("exists"), "{what} refreshed");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            !coord.expire("m", ttl).await.expect("expire"),
            "{what} gone"
        );
        assert!(
            coord.set_nx("m", b"two", ttl).await.expect("set_nx"),
            "{what}"
        );
    }
}
