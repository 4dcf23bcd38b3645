//! Object storage (PSC §6.1–6.2) over opendal: the local file system (keys such as
//! `plugin_packages/author/name:1.0.0@<sum>` map to sub-directories of the root) or any backend
//! of [`crate::StorageSettings`] (S3 and S3-compatible, Azure Blob, Aliyun OSS, Tencent COS, GCS,
//! Huawei OBS, Volcengine TOS, Baidu BOS).
//!
//! opendal's fs service writes in place unless it is given an `atomic_write_dir`; we give it one
//! (`.plugind-tmp` inside the root, same filesystem) so a save is write-temp-then-rename and a
//! concurrent reader sees either the old or the new object, never a partial one.

use std::path::Path;

use opendal::{services, EntryMode, ErrorKind, Operator};

use crate::StoreError;

/// Directory under the root holding in-flight writes; never listed.
const TMP_DIR: &str = ".plugind-tmp";

/// Object storage handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Blobs {
    op: Operator,
    /// `local <root>` or `<backend> bucket <name>`, for errors and logs.
    describe: std::sync::Arc<str>,
}

/// Rejects keys that could escape the root or address the temp directory.
fn check_key(key: &str) -> Result<&str, StoreError> {
    let key = key.trim_start_matches('/');
    if key.is_empty()
        || key.ends_with('/')
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == ".." || seg == TMP_DIR)
    {
        return Err(StoreError::Invalid(format!("invalid object key {key:?}")));
    }
    Ok(key)
}

impl Blobs {
    /// Local-filesystem storage rooted at `root` (created if missing).
    pub fn local(root: &Path) -> Result<Blobs, StoreError> {
        std::fs::create_dir_all(root).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot create storage root {}: {e}",
                root.display()
            ))
        })?;
        let root_s = root.to_string_lossy();
        let tmp = root.join(TMP_DIR);
        let builder = services::Fs::default()
            .root(&root_s)
            .atomic_write_dir(&tmp.to_string_lossy());
        let op = Operator::new(builder)?.finish();
        Ok(Blobs {
            op,
            describe: format!("local storage {}", root.display()).into(),
        })
    }

    /// The storage the settings select (the local root is created if missing).
    pub fn from_settings(settings: &crate::StorageSettings) -> Result<Blobs, StoreError> {
        if settings.kind()? == crate::StorageKind::Local {
            return Blobs::local(&settings.local_root);
        }
        // Transient failures (throttling, a dropped connection) are retried a few times with
        // back-off; anything else reaches the caller as an error naming the storage.
        let op = settings
            .operator()?
            .layer(opendal::layers::RetryLayer::new().with_max_times(3));
        Ok(Blobs {
            op,
            describe: settings.describe().into(),
        })
    }

    /// `local storage <root>` or `<backend> bucket <name>` (no credentials).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Checks the storage answers and the bucket exists (a listing of the root); the error
    /// names the storage and the cause.
    pub async fn check(&self) -> Result<(), StoreError> {
        let probe = async {
            let mut lister = self.op.lister_with("/").limit(1).await?;
            use futures::TryStreamExt;
            lister.try_next().await?;
            Ok::<(), opendal::Error>(())
        };
        match tokio::time::timeout(std::time::Duration::from_secs(10), probe).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unreachable {
                what: self.describe.to_string(),
                cause: e.to_string(),
            }),
            Err(_) => Err(StoreError::Unreachable {
                what: self.describe.to_string(),
                cause: "no answer within 10s".into(),
            }),
        }
    }

    /// Writes `bytes` under `key`, replacing any previous object atomically.
    pub async fn save(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let key = check_key(key)?;
        self.op.write(key, bytes).await?;
        Ok(())
    }

    /// The object's bytes, or `None` when there is no such object.
    pub async fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = check_key(key)?;
        match self.op.read(key).await {
            Ok(buf) => Ok(Some(buf.to_vec())),
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::IsADirectory => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object (file) exists under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let key = check_key(key)?;
        match self.op.stat(key).await {
            Ok(meta) => Ok(meta.mode() == EntryMode::FILE),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the object under `key` and, as upstream's local backend does, everything below
    /// `key/` when it names a directory. Missing keys are not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = check_key(key)?;
        let dir = format!("{key}/");
        match self.op.stat(&dir).await {
            Ok(meta) if meta.mode() == EntryMode::DIR => {
                return Ok(self.op.remove_all(&dir).await?)
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
            Err(e) => return Err(e.into()),
        }
        match self.op.delete(key).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object below `prefix` (recursively), as paths relative to `prefix`, sorted.
    /// Directories are not listed; an empty prefix lists the whole store.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.trim_matches('/');
        let dir = if prefix.is_empty() {
            String::from("/")
        } else {
            format!("{prefix}/")
        };
        if !prefix.is_empty() {
            check_key(prefix)?;
        }
        let entries = match self.op.list_with(&dir).recursive(true).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let strip = if prefix.is_empty() {
            String::new()
        } else {
            dir.clone()
        };
        let mut out: Vec<String> = entries
            .into_iter()
            .filter(|e| e.metadata().mode() == EntryMode::FILE)
            .filter_map(|e| e.path().strip_prefix(strip.as_str()).map(str::to_owned))
            .filter(|p| !p.is_empty() && !p.starts_with(TMP_DIR))
            .collect();
        out.sort();
        Ok(out)
    }
}
