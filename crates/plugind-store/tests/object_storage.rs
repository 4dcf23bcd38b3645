//! Object storage against a real S3-compatible server (moto, started by the test on loopback):
//! the same operations the local backend offers, keys with `/`, `:` and `@` as uids have, and a
//! missing bucket or a dead server named at the start-up check.

use plugind_store::{Blobs, StorageSettings};
use plugind_test_support::S3Server;

fn s3_settings(endpoint: &str, bucket: &str) -> StorageSettings {
    StorageSettings {
        storage_type: "s3".into(),
        bucket: bucket.into(),
        s3_use_aws: false,
        s3_use_path_style: true,
        s3_endpoint: endpoint.into(),
        aws_access_key: "test-access".into(),
        aws_secret_key: "test-secret".into(),
        aws_region: "us-east-1".into(),
        ..StorageSettings::default()
    }
}

#[tokio::test]
async fn s3_saves_loads_lists_and_deletes_like_the_local_backend() {
    let server = S3Server::start("plugind").await.expect("S3 server");
    let blobs = Blobs::from_settings(&s3_settings(&server.endpoint, "plugind")).expect("blobs");
    assert_eq!(blobs.describe(), "s3 bucket plugind");
    blobs.check().await.expect("bucket answers");

    let uid = "plugin_packages/langgenius/echo:0.0.1@0123abcd";
    assert_eq!(blobs.load(uid).await.expect("load"), None);
    assert!(!blobs.exists(uid).await.expect("exists"));
    blobs
        .save(uid, b"package bytes".to_vec())
        .await
        .expect("save");
    blobs
        .save(uid, b"package bytes v2".to_vec())
        .await
        .expect("overwrite");
    assert_eq!(
        blobs.load(uid).await.expect("load").as_deref(),
        Some(&b"package bytes v2"[..])
    );
    assert!(blobs.exists(uid).await.expect("exists"));
    blobs
        .save("persistence/t1/a/b/k1", b"1".to_vec())
        .await
        .expect("save");
    blobs
        .save("persistence/t1/a/b/dir/k2", b"2".to_vec())
        .await
        .expect("save");
    assert_eq!(
        blobs.list("persistence/t1").await.expect("list"),
        vec!["a/b/dir/k2".to_owned(), "a/b/k1".to_owned()]
    );
    // Deleting a "directory" removes everything below it, as upstream's local backend does.
    blobs
        .delete("persistence/t1/a/b/dir")
        .await
        .expect("delete dir");
    assert_eq!(
        blobs.list("persistence/t1").await.expect("list"),
        vec!["a/b/k1".to_owned()]
    );
    blobs.delete(uid).await.expect("delete");
    blobs.delete(uid).await.expect("delete again is fine");
    assert!(!blobs.exists(uid).await.expect("exists"));
    assert!(blobs.save("../escape", b"x".to_vec()).await.is_err());
}

#[tokio::test]
async fn a_missing_bucket_or_a_dead_server_is_named_by_the_check() {
    let server = S3Server::start("present").await.expect("S3 server");
    let missing = Blobs::from_settings(&s3_settings(&server.endpoint, "absent")).expect("blobs");
    let err = missing
        .check()
        .await
        .expect_err("no such bucket")
        .to_string();
    assert!(
        err.starts_with("s3 bucket absent is unreachable: "),
        "{err}"
    );

    let endpoint = server.endpoint.clone();
    drop(server);
    let gone = Blobs::from_settings(&s3_settings(&endpoint, "present")).expect("blobs");
    let err = gone.check().await.expect_err("server gone").to_string();
    assert!(
        err.starts_with("s3 bucket present is unreachable: "),
        "{err}"
    );
    // Operations fail with an error, they do not hang.
    assert!(gone.load("plugin/x").await.is_err());
}
