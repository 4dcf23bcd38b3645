//! Upstream's object-storage settings (`PLUGIN_STORAGE_TYPE` and each backend's variables,
//! PSC §6.1, §8.2) turned into an opendal operator. The binaries parse the environment and hand
//! the plain values here.
//!
//! Backends opendal has no service for are reached through their S3-compatible API:
//! Volcengine TOS (`tos-<region>.…` endpoints become `tos-s3-<region>.…`) and Baidu BOS
//! (`s3.<region>.bcebos.com`). A bucket must exist: unlike upstream's S3 driver, nothing creates
//! it (start-up says which bucket is missing).

use std::path::PathBuf;

use opendal::{services, Operator};

use crate::StoreError;

/// Every storage variable as given (empty = unset).
#[derive(Clone, Default)]
pub struct StorageSettings {
    /// `PLUGIN_STORAGE_TYPE` (default `local`).
    pub storage_type: String,
    /// `PLUGIN_STORAGE_LOCAL_ROOT` resolved (the caller applies the data-dir default).
    pub local_root: PathBuf,
    /// `PLUGIN_STORAGE_OSS_BUCKET`.
    pub bucket: String,
    pub s3_use_aws: bool,
    pub s3_use_aws_managed_iam: bool,
    pub s3_endpoint: String,
    pub s3_use_path_style: bool,
    pub aws_access_key: String,
    pub aws_secret_key: String,
    pub aws_region: String,
    pub azure_container_name: String,
    pub azure_connection_string: String,
    pub azure_use_managed_identity: bool,
    pub azure_account_url: String,
    pub aliyun_region: String,
    pub aliyun_endpoint: String,
    pub aliyun_access_key_id: String,
    pub aliyun_access_key_secret: String,
    pub aliyun_auth_version: String,
    pub aliyun_path: String,
    pub tencent_secret_id: String,
    pub tencent_secret_key: String,
    pub tencent_region: String,
    pub tencent_endpoint: String,
    /// `GCS_CREDENTIALS`: base64 service-account JSON; empty = application default credentials.
    pub gcs_credentials: String,
    pub huawei_access_key: String,
    pub huawei_secret_key: String,
    pub huawei_server: String,
    pub huawei_path_style: bool,
    pub volcengine_endpoint: String,
    pub volcengine_access_key: String,
    pub volcengine_secret_key: String,
    pub volcengine_region: String,
    pub baidu_endpoint: String,
    pub baidu_access_key: String,
    pub baidu_secret_key: String,
    pub baidu_region: String,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("storage_type", &self.storage_type)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// The backend a `PLUGIN_STORAGE_TYPE` names (upstream's accepted spellings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    Local,
    S3,
    Azure,
    Aliyun,
    Tencent,
    Gcs,
    Huawei,
    Volcengine,
    Baidu,
}

impl StorageKind {
    pub fn parse(name: &str) -> Result<StorageKind, StoreError> {
        Ok(match name.trim() {
            "" | "local" | "local_file" => StorageKind::Local,
            "s3" | "aws_s3" | "aws-s3" => StorageKind::S3,
            "azure" | "azure_blob" | "azure-blob" => StorageKind::Azure,
            "aliyun" | "aliyun_oss" | "aliyun-oss" => StorageKind::Aliyun,
            "tencent" | "tencent_cos" | "tencent-cos" => StorageKind::Tencent,
            "gcs" | "google-storage" | "google_storage" => StorageKind::Gcs,
            "huawei" | "huawei_obs" | "huawei-obs" => StorageKind::Huawei,
            "volcengine" | "volcengine_tos" | "volcengine-tos" => StorageKind::Volcengine,
            "baidu_bos" => StorageKind::Baidu,
            other => {
                return Err(StoreError::Invalid(format!(
                    "PLUGIN_STORAGE_TYPE: [ {other} ] is not in the provider list (local, s3, azure_blob, aliyun_oss, tencent_cos, gcs, huawei_obs, volcengine_tos, baidu_bos)"
                )))
            }
        })
    }
}

fn set(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty()).then_some(v)
}

fn required<'a>(value: &'a str, name: &str, kind: &str) -> Result<&'a str, StoreError> {
    set(value)
        .ok_or_else(|| StoreError::Invalid(format!("PLUGIN_STORAGE_TYPE={kind} needs {name}")))
}

fn with_scheme(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("https://{endpoint}")
    }
}

/// Volcengine's S3-compatible endpoint for a TOS endpoint or region.
fn tos_s3_endpoint(endpoint: &str, region: &str) -> Option<String> {
    match (set(endpoint), set(region)) {
        (Some(e), _) => {
            let e = with_scheme(e);
            Some(if e.contains("://tos-s3-") {
                e
            } else {
                e.replacen("://tos-", "://tos-s3-", 1)
            })
        }
        (None, Some(r)) => Some(format!("https://tos-s3-{r}.volces.com")),
        (None, None) => None,
    }
}

/// Baidu's S3-compatible endpoint for a BOS endpoint or region.
fn bos_s3_endpoint(endpoint: &str, region: &str) -> Option<String> {
    match (set(region), set(endpoint)) {
        (Some(r), _) => Some(format!("https://s3.{r}.bcebos.com")),
        (None, Some(e)) => {
            let e = with_scheme(e);
            Some(if e.contains("://s3.") {
                e
            } else {
                e.replacen("://", "://s3.", 1)
            })
        }
        (None, None) => None,
    }
}

/// Region for signing, read off a BOS endpoint (`s3.bj.bcebos.com` → `bj`).
fn bos_region(endpoint: &str) -> String {
    endpoint
        .split("://")
        .last()
        .unwrap_or_default()
        .trim_start_matches("s3.")
        .split('.')
        .next()
        .unwrap_or("bj")
        .to_owned()
}

impl StorageSettings {
    pub fn kind(&self) -> Result<StorageKind, StoreError> {
        StorageKind::parse(&self.storage_type)
    }

    /// `local <root>` or `<backend> bucket <name>` (no credentials), for logs and `doctor`.
    pub fn describe(&self) -> String {
        match self.kind() {
            Ok(StorageKind::Local) => format!("local {}", self.local_root.display()),
            Ok(StorageKind::Azure) => {
                format!("azure_blob container {}", self.azure_container_name.trim())
            }
            Ok(kind) => format!("{kind:?} bucket {}", self.bucket.trim()).to_ascii_lowercase(),
            Err(_) => format!("unknown storage {}", self.storage_type),
        }
    }

    /// The operator for these settings (no network: credentials are checked on first use).
    pub fn operator(&self) -> Result<Operator, StoreError> {
        let kind = self.kind()?;
        let name = self.storage_type.trim();
        let bucket = || required(&self.bucket, "PLUGIN_STORAGE_OSS_BUCKET", name);
        let op = match kind {
            StorageKind::Local => {
                return Err(StoreError::Invalid(
                    "the local backend is built by Blobs::local".into(),
                ))
            }
            StorageKind::S3 => {
                let mut b = services::S3::default().bucket(bucket()?).region(required(
                    &self.aws_region,
                    "AWS_REGION",
                    name,
                )?);
                if let Some(e) = set(&self.s3_endpoint) {
                    b = b.endpoint(&with_scheme(e));
                }
                if !self.s3_use_path_style {
                    b = b.enable_virtual_host_style();
                }
                let keys = set(&self.aws_access_key).zip(set(&self.aws_secret_key));
                match keys {
                    Some((ak, sk)) if !self.s3_use_aws_managed_iam => {
                        // Static keys only: never pick up ~/.aws or instance metadata.
                        b = b
                            .access_key_id(ak)
                            .secret_access_key(sk)
                            .disable_config_load()
                            .disable_ec2_metadata();
                    }
                    _ if !self.s3_use_aws => {
                        return Err(StoreError::Invalid(format!(
                            "PLUGIN_STORAGE_TYPE={name} with S3_USE_AWS=false needs AWS_ACCESS_KEY and AWS_SECRET_KEY"
                        )))
                    }
                    // The AWS default credential chain (environment, profile, instance role).
                    _ => {}
                }
                Operator::new(b)?.finish()
            }
            StorageKind::Azure => {
                let container = required(
                    &self.azure_container_name,
                    "AZURE_BLOB_STORAGE_CONTAINER_NAME",
                    name,
                )?;
                let b = if let Some(conn) = set(&self.azure_connection_string) {
                    services::Azblob::from_connection_string(conn)?.container(container)
                } else if self.azure_use_managed_identity {
                    services::Azblob::default()
                        .container(container)
                        .endpoint(required(
                            &self.azure_account_url,
                            "AZURE_BLOB_STORAGE_ACCOUNT_URL",
                            name,
                        )?)
                } else {
                    return Err(StoreError::Invalid(format!(
                        "PLUGIN_STORAGE_TYPE={name} needs AZURE_BLOB_STORAGE_CONNECTION_STRING, or AZURE_BLOB_STORAGE_USE_MANAGED_IDENTITY=true with AZURE_BLOB_STORAGE_ACCOUNT_URL"
                    )));
                };
                Operator::new(b)?.finish()
            }
            StorageKind::Aliyun => {
                let mut b = services::Oss::default()
                    .bucket(bucket()?)
                    .endpoint(&with_scheme(required(
                        &self.aliyun_endpoint,
                        "ALIYUN_OSS_ENDPOINT",
                        name,
                    )?))
                    .access_key_id(required(
                        &self.aliyun_access_key_id,
                        "ALIYUN_OSS_ACCESS_KEY_ID",
                        name,
                    )?)
                    .access_key_secret(required(
                        &self.aliyun_access_key_secret,
                        "ALIYUN_OSS_ACCESS_KEY_SECRET",
                        name,
                    )?);
                if let Some(path) = set(&self.aliyun_path) {
                    b = b.root(&format!("/{}", path.trim_matches('/')));
                }
                Operator::new(b)?.finish()
            }
            StorageKind::Tencent => {
                let region = required(&self.tencent_region, "TENCENT_COS_REGION", name)?;
                let endpoint = set(&self.tencent_endpoint)
                    .map(with_scheme)
                    .unwrap_or_else(|| format!("https://cos.{region}.myqcloud.com"));
                let b = services::Cos::default()
                    .bucket(bucket()?)
                    .endpoint(&endpoint)
                    .secret_id(required(
                        &self.tencent_secret_id,
                        "TENCENT_COS_SECRET_ID",
                        name,
                    )?)
                    .secret_key(required(
                        &self.tencent_secret_key,
                        "TENCENT_COS_SECRET_KEY",
                        name,
                    )?)
                    .disable_config_load();
                Operator::new(b)?.finish()
            }
            StorageKind::Gcs => {
                let mut b = services::Gcs::default().bucket(bucket()?);
                if let Some(cred) = set(&self.gcs_credentials) {
                    b = b.credential(cred);
                }
                Operator::new(b)?.finish()
            }
            StorageKind::Huawei => {
                let b = services::Obs::default()
                    .bucket(bucket()?)
                    .endpoint(&with_scheme(required(
                        &self.huawei_server,
                        "HUAWEI_OBS_SERVER",
                        name,
                    )?))
                    .access_key_id(required(
                        &self.huawei_access_key,
                        "HUAWEI_OBS_ACCESS_KEY",
                        name,
                    )?)
                    .secret_access_key(required(
                        &self.huawei_secret_key,
                        "HUAWEI_OBS_SECRET_KEY",
                        name,
                    )?);
                Operator::new(b)?.finish()
            }
            StorageKind::Volcengine => {
                let endpoint = tos_s3_endpoint(&self.volcengine_endpoint, &self.volcengine_region)
                    .ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "PLUGIN_STORAGE_TYPE={name} needs VOLCENGINE_TOS_ENDPOINT"
                        ))
                    })?;
                let region = set(&self.volcengine_region).unwrap_or("cn-beijing");
                let b = services::S3::default()
                    .bucket(bucket()?)
                    .endpoint(&endpoint)
                    .region(region)
                    .enable_virtual_host_style()
                    .access_key_id(required(
                        &self.volcengine_access_key,
                        "VOLCENGINE_TOS_ACCESS_KEY",
                        name,
                    )?)
                    .secret_access_key(required(
                        &self.volcengine_secret_key,
                        "VOLCENGINE_TOS_SECRET_KEY",
                        name,
                    )?)
                    .disable_config_load()
                    .disable_ec2_metadata();
                Operator::new(b)?.finish()
            }
            StorageKind::Baidu => {
                let endpoint = bos_s3_endpoint(&self.baidu_endpoint, &self.baidu_region)
                    .ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "PLUGIN_STORAGE_TYPE={name} needs BAIDU_BOS_ENDPOINT or BAIDU_BOS_REGION"
                        ))
                    })?;
                let region = set(&self.baidu_region)
                    .map(str::to_owned)
                    .unwrap_or_else(|| bos_region(&endpoint));
                let b = services::S3::default()
                    .bucket(bucket()?)
                    .endpoint(&endpoint)
                    .region(&region)
                    .enable_virtual_host_style()
                    .access_key_id(required(
                        &self.baidu_access_key,
                        "BAIDU_BOS_ACCESS_KEY",
                        name,
                    )?)
                    .secret_access_key(required(
                        &self.baidu_secret_key,
                        "BAIDU_BOS_SECRET_KEY",
                        name,
                    )?)
                    .disable_config_load()
                    .disable_ec2_metadata();
                Operator::new(b)?.finish()
            }
        };
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opendal::Scheme;

    fn with(kind: &str, f: impl FnOnce(&mut StorageSettings)) -> StorageSettings {
        let mut s = StorageSettings {
            storage_type: kind.into(),
            bucket: "plugins".into(),
            s3_use_aws: true,
            s3_use_path_style: true,
            ..StorageSettings::default()
        };
        f(&mut s);
        s
    }

    fn info(s: &StorageSettings) -> (Scheme, String, String) {
        let op = s
            .operator()
            .unwrap_or_else(|e| panic!("{}: {e}", s.storage_type));
        let info = op.info();
        (
            info.scheme(),
            info.name().to_owned(),
            info.root().to_owned(),
        )
    }

    #[test]
    fn every_upstream_spelling_names_a_backend() {
        for (names, kind) in [
            (&["local", "local_file", ""][..], StorageKind::Local),
            (&["s3", "aws_s3", "aws-s3"][..], StorageKind::S3),
            (
                &["azure", "azure_blob", "azure-blob"][..],
                StorageKind::Azure,
            ),
            (
                &["aliyun", "aliyun_oss", "aliyun-oss"][..],
                StorageKind::Aliyun,
            ),
            (
                &["tencent", "tencent_cos", "tencent-cos"][..],
                StorageKind::Tencent,
            ),
            (
                &["gcs", "google-storage", "google_storage"][..],
                StorageKind::Gcs,
            ),
            (
                &["huawei", "huawei_obs", "huawei-obs"][..],
                StorageKind::Huawei,
            ),
            (
                &["volcengine", "volcengine_tos", "volcengine-tos"][..],
                StorageKind::Volcengine,
            ),
            (&["baidu_bos"][..], StorageKind::Baidu),
        ] {
            for n in names {
                assert_eq!(StorageKind::parse(n).expect(n), kind);
            }
        }
        let err = StorageKind::parse("ftp").expect_err("ftp").to_string();
        assert!(err.contains("[ ftp ] is not in the provider list"), "{err}");
    }

    #[test]
    fn s3_static_keys_and_endpoint() {
        let s = with("s3", |s| {
            s.s3_use_aws = false;
            s.s3_endpoint = "http://127.0.0.1:9000".into();
            s.aws_access_key = "ak".into();
            s.aws_secret_key = "sk".into();
            s.aws_region = "us-east-1".into();
        });
        assert_eq!(info(&s).0, Scheme::S3);
        assert_eq!(info(&s).1, "plugins");
        let no_region = with("s3", |s| s.aws_region.clear());
        assert!(no_region
            .operator()
            .expect_err("region")
            .to_string()
            .contains("AWS_REGION"));
        let no_keys = with("s3", |s| {
            s.s3_use_aws = false;
            s.aws_region = "r".into();
        });
        assert!(no_keys
            .operator()
            .expect_err("keys")
            .to_string()
            .contains("AWS_ACCESS_KEY"));
        let no_bucket = with("s3", |s| {
            s.bucket.clear();
            s.aws_region = "r".into();
        });
        assert!(no_bucket
            .operator()
            .expect_err("bucket")
            .to_string()
            .contains("PLUGIN_STORAGE_OSS_BUCKET"));
    }

    #[test]
    fn azure_by_connection_string_or_managed_identity() {
        let s = with("azure_blob", |s| {
            s.azure_container_name = "c1".into();
            s.azure_connection_string = "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=a2V5;EndpointSuffix=core.windows.net".into();
        });
        assert_eq!(info(&s).0, Scheme::Azblob);
        assert_eq!(info(&s).1, "c1");
        let mi = with("azure", |s| {
            s.azure_container_name = "c2".into();
            s.azure_use_managed_identity = true;
            s.azure_account_url = "https://acc.blob.core.windows.net".into();
        });
        assert_eq!(info(&mi).0, Scheme::Azblob);
        let neither = with("azure", |s| s.azure_container_name = "c".into());
        assert!(neither.operator().is_err());
    }

    #[test]
    fn aliyun_tencent_gcs_huawei() {
        let oss = with("aliyun_oss", |s| {
            s.aliyun_endpoint = "oss-cn-hangzhou.aliyuncs.com".into();
            s.aliyun_access_key_id = "id".into();
            s.aliyun_access_key_secret = "secret".into();
            s.aliyun_path = "dify/".into();
        });
        let (scheme, name, root) = info(&oss);
        assert_eq!((scheme, name.as_str()), (Scheme::Oss, "plugins"));
        assert_eq!(root, "/dify/");
        let cos = with("tencent_cos", |s| {
            s.tencent_region = "ap-guangzhou".into();
            s.tencent_secret_id = "id".into();
            s.tencent_secret_key = "key".into();
        });
        assert_eq!(info(&cos).0, Scheme::Cos);
        let gcs = with("google-storage", |_| {});
        assert_eq!(info(&gcs).0, Scheme::Gcs);
        let obs = with("huawei_obs", |s| {
            s.huawei_server = "obs.cn-north-4.myhuaweicloud.com".into();
            s.huawei_access_key = "ak".into();
            s.huawei_secret_key = "sk".into();
        });
        assert_eq!(info(&obs).0, Scheme::Obs);
        let obs_missing = with("huawei_obs", |s| s.huawei_server = "x".into());
        assert!(obs_missing
            .operator()
            .expect_err("keys")
            .to_string()
            .contains("HUAWEI_OBS_ACCESS_KEY"));
    }

    #[test]
    fn volcengine_and_baidu_go_through_their_s3_endpoints() {
        assert_eq!(
            tos_s3_endpoint("https://tos-cn-beijing.volces.com", "").as_deref(),
            Some("https://tos-s3-cn-beijing.volces.com")
        );
        assert_eq!(
            tos_s3_endpoint("", "cn-shanghai").as_deref(),
            Some("https://tos-s3-cn-shanghai.volces.com")
        );
        assert_eq!(
            bos_s3_endpoint("bj.bcebos.com", "").as_deref(),
            Some("https://s3.bj.bcebos.com")
        );
        assert_eq!(
            bos_s3_endpoint("", "gz").as_deref(),
            Some("https://s3.gz.bcebos.com")
        );
        assert_eq!(bos_region("https://s3.su.bcebos.com"), "su");
        let tos = with("volcengine_tos", |s| {
            s.volcengine_endpoint = "tos-cn-beijing.volces.com".into();
            s.volcengine_access_key = "ak".into();
            s.volcengine_secret_key = "sk".into();
        });
        assert_eq!(info(&tos).0, Scheme::S3);
        let bos = with("baidu_bos", |s| {
            s.baidu_endpoint = "bj.bcebos.com".into();
            s.baidu_access_key = "ak".into();
            s.baidu_secret_key = "sk".into();
        });
        assert_eq!(info(&bos).0, Scheme::S3);
        let bos_nothing = with("baidu_bos", |s| {
            s.baidu_access_key = "ak".into();
            s.baidu_secret_key = "sk".into();
        });
        assert!(bos_nothing.operator().is_err());
    }
}
