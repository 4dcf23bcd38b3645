//! Configuration from upstream's environment variables (PSC Part 8), parsed with clap.
//!
//! Embedded default: with no `DB_*`, `REDIS_*` or storage settings the daemon keeps its state in
//! one SQLite file and plain files under `PLUGIND_DATA_DIR`. Any explicit setting is used as
//! given and must work: there is no silent fallback.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use plugind_coord::RedisSettings;
use plugind_runtime::{ReplicaBounds, ScalingConfig};
use plugind_store::{DbSettings, StorageSettings};

/// Go-style booleans: `1/0/t/f/true/false` in any case.
fn go_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        other => Err(format!("invalid boolean {other:?}")),
    }
}

/// A setting that is `auto` or a Go-style boolean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoBool {
    Auto,
    Set(bool),
}

fn auto_bool(s: &str) -> Result<AutoBool, String> {
    if s.eq_ignore_ascii_case("auto") {
        Ok(AutoBool::Auto)
    } else {
        go_bool(s).map(AutoBool::Set)
    }
}

/// What to run instead of the daemon.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Check uv, Python and every configured service (database, Redis, object storage, Dify's
    /// inner API); one line each, non-zero exit when any fails.
    Doctor,
}

#[derive(Parser, Debug, Clone)]
#[command(name = "plugind", version, about = "Dify plugin daemon, in Rust")]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[arg(long, env = "SERVER_HOST", default_value = "0.0.0.0")]
    pub server_host: String,
    #[arg(long, env = "SERVER_PORT", default_value_t = 5002)]
    pub server_port: u16,
    /// Required: the key Dify sends as `X-Api-Key` (Dify's `PLUGIN_DAEMON_KEY`).
    #[arg(long, env = "SERVER_KEY", hide_env_values = true)]
    pub server_key: Option<String>,
    /// Required: base URL of Dify's inner API, for backwards invocation.
    #[arg(long, env = "DIFY_INNER_API_URL")]
    pub dify_inner_api_url: Option<String>,
    /// Required: key for Dify's inner API (Dify's `INNER_API_KEY_FOR_PLUGIN`).
    #[arg(long, env = "DIFY_INNER_API_KEY", hide_env_values = true)]
    pub dify_inner_api_key: Option<String>,
    /// Milliseconds one answer of Dify's inner API may take in total (upstream: counted from the
    /// response headers; here from sending the request).
    #[arg(
        long,
        env = "DIFY_BACKWARDS_INVOCATION_READ_TIMEOUT",
        default_value_t = 240_000
    )]
    pub dify_backwards_invocation_read_timeout: u64,
    /// Accepted for compatibility; has no effect (as upstream).
    #[arg(
        long,
        env = "DIFY_BACKWARDS_INVOCATION_WRITE_TIMEOUT",
        default_value_t = 5_000
    )]
    pub dify_backwards_invocation_write_timeout: u64,
    /// Object-storage prefix of the plugins' key–value storage.
    #[arg(long, env = "PERSISTENCE_STORAGE_PATH", default_value = "persistence")]
    pub persistence_storage_path: String,
    /// Bytes one plugin may keep in its key–value storage per tenant.
    #[arg(
        long,
        env = "PERSISTENCE_STORAGE_MAX_SIZE",
        default_value_t = 104_857_600
    )]
    pub persistence_storage_max_size: u64,
    /// `local` (plugins run as processes here) or `serverless` (functions behind a connector).
    #[arg(long, env = "PLATFORM", default_value = "local")]
    pub platform: String,
    /// Required when `PLATFORM=serverless`: base URL of the serverless connector.
    #[arg(long, env = "DIFY_PLUGIN_SERVERLESS_CONNECTOR_URL")]
    pub serverless_connector_url: Option<String>,
    /// Required when `PLATFORM=serverless`: sent verbatim as `Authorization` to the connector.
    #[arg(
        long,
        env = "DIFY_PLUGIN_SERVERLESS_CONNECTOR_API_KEY",
        hide_env_values = true
    )]
    pub serverless_connector_api_key: Option<String>,
    /// Seconds a serverless launch may take.
    #[arg(
        long,
        env = "DIFY_PLUGIN_SERVERLESS_CONNECTOR_LAUNCH_TIMEOUT",
        default_value_t = 240
    )]
    pub serverless_connector_launch_timeout: u64,
    /// Attempts of one serverless invocation in total (after transport errors and HTTP 502).
    #[arg(
        long,
        env = "MAX_SERVERLESS_RETRY_TIMES",
        default_value_t = 3,
        allow_hyphen_values = true
    )]
    pub max_serverless_retry_times: i64,
    /// Largest request body sent to a serverless function (> 0).
    #[arg(
        long,
        env = "MAX_SERVERLESS_REQUEST_BYTES",
        default_value_t = 5_242_880,
        allow_hyphen_values = true
    )]
    pub max_serverless_request_bytes: i64,
    /// Seconds one `/backwards-invocation/transaction` request may last.
    #[arg(
        long,
        env = "MAX_SERVERLESS_TRANSACTION_TIMEOUT",
        default_value_t = 300
    )]
    pub max_serverless_transaction_timeout: u64,
    /// Mounts `/admin/*` (serverless reinstall and endpoint switch).
    #[arg(long, env = "ADMIN_API_ENABLED", default_value = "false", value_parser = go_bool)]
    pub admin_api_enabled: bool,
    /// The `X-Admin-Api-Key` value; at least 10 characters when the admin API is enabled.
    #[arg(long, env = "ADMIN_API_KEY", hide_env_values = true)]
    pub admin_api_key: Option<String>,
    /// Connections served at once (more wait in the listen backlog); also reported by
    /// `/health/check` as `pool_status.total`.
    #[arg(long, env = "ROUTINE_POOL_SIZE", default_value_t = 10000)]
    pub routine_pool_size: i64,
    /// Largest request body of dispatch and the JSON routes, in bytes (uploads use
    /// `MAX_PLUGIN_PACKAGE_SIZE`/`MAX_BUNDLE_PACKAGE_SIZE`). Upstream has no limit; 256 MiB
    /// carries a base64 video or hex-encoded audio at Dify's largest upload sizes.
    #[arg(long, env = "MAX_REQUEST_BODY_SIZE", default_value_t = 268_435_456)]
    pub max_request_body_size: usize,
    /// Seconds a client has to send a whole request head (also the idle limit between requests
    /// of a keep-alive connection).
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT", default_value_t = 30)]
    pub http_header_read_timeout: u64,
    /// Seconds a request body may pause between bytes before the request is answered 408.
    #[arg(long, env = "HTTP_BODY_READ_TIMEOUT", default_value_t = 60)]
    pub http_body_read_timeout: u64,
    /// Seconds SIGTERM/SIGINT lets in-flight requests and install jobs finish; then open
    /// streams end with an error event, unfinished tasks are failed and plugins stopped.
    #[arg(long, env = "SHUTDOWN_DRAIN_TIMEOUT", default_value_t = 10)]
    pub shutdown_drain_timeout: u64,

    /// Where the embedded default keeps its SQLite file, storage and working directories.
    #[arg(long, env = "PLUGIND_DATA_DIR", default_value = "plugind-data")]
    pub data_dir: PathBuf,

    #[arg(long, env = "DB_TYPE")]
    pub db_type: Option<String>,
    #[arg(long, env = "DB_HOST")]
    pub db_host: Option<String>,
    #[arg(long, env = "DB_PORT")]
    pub db_port: Option<u16>,
    #[arg(long, env = "DB_USERNAME", default_value = "postgres")]
    pub db_username: String,
    #[arg(long, env = "DB_PASSWORD", default_value = "", hide_env_values = true)]
    pub db_password: String,
    #[arg(long, env = "DB_DATABASE", default_value = "dify_plugin")]
    pub db_database: String,
    #[arg(long, env = "DB_SSL_MODE", default_value = "disable")]
    pub db_ssl_mode: String,
    #[arg(long, env = "DB_MAX_OPEN_CONNS", default_value_t = 30)]
    pub db_max_open_conns: u32,
    #[arg(long, env = "DB_MAX_IDLE_CONNS", default_value_t = 10)]
    pub db_max_idle_conns: u32,
    /// Seconds; 0 = never recycle a connection for age.
    #[arg(long, env = "DB_CONN_MAX_LIFETIME", default_value_t = 3600)]
    pub db_conn_max_lifetime: u64,
    /// PostgreSQL run-time parameters (`-c name=value …`), ignored for MySQL as upstream.
    #[arg(long, env = "DB_EXTRAS", default_value = "")]
    pub db_extras: String,

    #[arg(long, env = "REDIS_HOST")]
    pub redis_host: Option<String>,
    #[arg(long, env = "REDIS_PORT", default_value_t = 6379)]
    pub redis_port: u16,
    #[arg(long, env = "REDIS_USERNAME", default_value = "")]
    pub redis_username: String,
    #[arg(
        long,
        env = "REDIS_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub redis_password: String,
    #[arg(long, env = "REDIS_DB", default_value_t = 0)]
    pub redis_db: i64,
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "plugin_daemon")]
    pub redis_key_prefix: String,
    /// Seconds between two comparisons of installations with the plugins running on this node
    /// (cluster only).
    #[arg(long, env = "PLUGIND_RECONCILE_INTERVAL", default_value_t = 30)]
    pub plugind_reconcile_interval: u64,
    #[arg(long, env = "REDIS_USE_SSL", default_value = "false", value_parser = go_bool)]
    pub redis_use_ssl: bool,
    #[arg(long, env = "REDIS_SSL_CERT_REQS", default_value = "")]
    pub redis_ssl_cert_reqs: String,
    #[arg(long, env = "REDIS_SSL_CA_CERTS")]
    pub redis_ssl_ca_certs: Option<PathBuf>,
    #[arg(long, env = "REDIS_USE_SENTINEL", default_value = "false", value_parser = go_bool)]
    pub redis_use_sentinel: bool,
    #[arg(long, env = "REDIS_SENTINELS", default_value = "")]
    pub redis_sentinels: String,
    #[arg(long, env = "REDIS_SENTINEL_SERVICE_NAME", default_value = "")]
    pub redis_sentinel_service_name: String,
    #[arg(long, env = "REDIS_SENTINEL_USERNAME", default_value = "")]
    pub redis_sentinel_username: String,
    #[arg(
        long,
        env = "REDIS_SENTINEL_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub redis_sentinel_password: String,
    /// Seconds (float); the dial timeout towards the sentinels when > 0.
    #[arg(long, env = "REDIS_SENTINEL_SOCKET_TIMEOUT", default_value_t = 0.0)]
    pub redis_sentinel_socket_timeout: f64,
    /// Dify's names for Redis Cluster mode (upstream's daemon has none).
    #[arg(long, env = "REDIS_USE_CLUSTERS", default_value = "false", value_parser = go_bool)]
    pub redis_use_clusters: bool,
    #[arg(long, env = "REDIS_CLUSTERS", default_value = "")]
    pub redis_clusters: String,
    #[arg(
        long,
        env = "REDIS_CLUSTERS_PASSWORD",
        default_value = "",
        hide_env_values = true
    )]
    pub redis_clusters_password: String,

    #[arg(long, env = "PLUGIN_STORAGE_TYPE", default_value = "local")]
    pub plugin_storage_type: String,
    #[arg(long, env = "PLUGIN_STORAGE_LOCAL_ROOT")]
    pub plugin_storage_local_root: Option<PathBuf>,
    #[arg(long, env = "PLUGIN_STORAGE_OSS_BUCKET", default_value = "")]
    pub plugin_storage_oss_bucket: String,
    #[arg(long, env = "S3_USE_AWS", default_value = "true", value_parser = go_bool)]
    pub s3_use_aws: bool,
    #[arg(long, env = "S3_USE_AWS_MANAGED_IAM", default_value = "false", value_parser = go_bool)]
    pub s3_use_aws_managed_iam: bool,
    #[arg(long, env = "S3_ENDPOINT", default_value = "")]
    pub s3_endpoint: String,
    #[arg(long, env = "S3_USE_PATH_STYLE", default_value = "true", value_parser = go_bool)]
    pub s3_use_path_style: bool,
    #[arg(
        long,
        env = "AWS_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub aws_access_key: String,
    #[arg(
        long,
        env = "AWS_SECRET_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub aws_secret_key: String,
    #[arg(long, env = "AWS_REGION", default_value = "")]
    pub aws_region: String,
    #[arg(long, env = "AZURE_BLOB_STORAGE_CONTAINER_NAME", default_value = "")]
    pub azure_blob_storage_container_name: String,
    #[arg(
        long,
        env = "AZURE_BLOB_STORAGE_CONNECTION_STRING",
        default_value = "",
        hide_env_values = true
    )]
    pub azure_blob_storage_connection_string: String,
    #[arg(long, env = "AZURE_BLOB_STORAGE_USE_MANAGED_IDENTITY", default_value = "false", value_parser = go_bool)]
    pub azure_blob_storage_use_managed_identity: bool,
    #[arg(long, env = "AZURE_BLOB_STORAGE_ACCOUNT_URL", default_value = "")]
    pub azure_blob_storage_account_url: String,
    #[arg(long, env = "ALIYUN_OSS_REGION", default_value = "")]
    pub aliyun_oss_region: String,
    #[arg(long, env = "ALIYUN_OSS_ENDPOINT", default_value = "")]
    pub aliyun_oss_endpoint: String,
    #[arg(
        long,
        env = "ALIYUN_OSS_ACCESS_KEY_ID",
        default_value = "",
        hide_env_values = true
    )]
    pub aliyun_oss_access_key_id: String,
    #[arg(
        long,
        env = "ALIYUN_OSS_ACCESS_KEY_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub aliyun_oss_access_key_secret: String,
    #[arg(long, env = "ALIYUN_OSS_AUTH_VERSION", default_value = "v4")]
    pub aliyun_oss_auth_version: String,
    #[arg(long, env = "ALIYUN_OSS_PATH", default_value = "")]
    pub aliyun_oss_path: String,
    #[arg(
        long,
        env = "TENCENT_COS_SECRET_ID",
        default_value = "",
        hide_env_values = true
    )]
    pub tencent_cos_secret_id: String,
    #[arg(
        long,
        env = "TENCENT_COS_SECRET_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub tencent_cos_secret_key: String,
    #[arg(long, env = "TENCENT_COS_REGION", default_value = "")]
    pub tencent_cos_region: String,
    #[arg(long, env = "TENCENT_COS_ENDPOINT", default_value = "")]
    pub tencent_cos_endpoint: String,
    #[arg(
        long,
        env = "GCS_CREDENTIALS",
        default_value = "",
        hide_env_values = true
    )]
    pub gcs_credentials: String,
    #[arg(
        long,
        env = "HUAWEI_OBS_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub huawei_obs_access_key: String,
    #[arg(
        long,
        env = "HUAWEI_OBS_SECRET_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub huawei_obs_secret_key: String,
    #[arg(long, env = "HUAWEI_OBS_SERVER", default_value = "")]
    pub huawei_obs_server: String,
    #[arg(long, env = "HUAWEI_OBS_PATH_STYLE", default_value = "false", value_parser = go_bool)]
    pub huawei_obs_path_style: bool,
    #[arg(long, env = "VOLCENGINE_TOS_ENDPOINT", default_value = "")]
    pub volcengine_tos_endpoint: String,
    #[arg(
        long,
        env = "VOLCENGINE_TOS_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub volcengine_tos_access_key: String,
    #[arg(
        long,
        env = "VOLCENGINE_TOS_SECRET_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub volcengine_tos_secret_key: String,
    #[arg(long, env = "VOLCENGINE_TOS_REGION", default_value = "")]
    pub volcengine_tos_region: String,
    #[arg(long, env = "BAIDU_BOS_ENDPOINT", default_value = "")]
    pub baidu_bos_endpoint: String,
    #[arg(
        long,
        env = "BAIDU_BOS_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub baidu_bos_access_key: String,
    #[arg(
        long,
        env = "BAIDU_BOS_SECRET_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub baidu_bos_secret_key: String,
    #[arg(long, env = "BAIDU_BOS_REGION", default_value = "")]
    pub baidu_bos_region: String,
    #[arg(long, env = "PLUGIN_WORKING_PATH")]
    pub plugin_working_path: Option<PathBuf>,
    #[arg(
        long,
        env = "PLUGIN_PACKAGE_CACHE_PATH",
        default_value = "plugin_packages"
    )]
    pub plugin_package_cache_path: String,
    #[arg(long, env = "PLUGIN_INSTALLED_PATH", default_value = "plugin")]
    pub plugin_installed_path: String,
    #[arg(long, env = "PLUGIN_MEDIA_CACHE_PATH", default_value = "assets")]
    pub plugin_media_cache_path: String,

    #[arg(long, env = "MAX_PLUGIN_PACKAGE_SIZE", default_value_t = 52_428_800)]
    pub max_plugin_package_size: u64,
    #[arg(long, env = "MAX_BUNDLE_PACKAGE_SIZE", default_value_t = 629_145_600)]
    pub max_bundle_package_size: u64,
    #[arg(long, env = "ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES", default_value = "true", value_parser = go_bool)]
    pub enforce_langgenius_plugin_signatures: bool,
    #[arg(long, env = "FORCE_VERIFYING_SIGNATURE", default_value = "true", value_parser = go_bool)]
    pub force_verifying_signature: bool,
    #[arg(long, env = "THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED", default_value = "false", value_parser = go_bool)]
    pub third_party_signature_verification_enabled: bool,
    #[arg(
        long,
        env = "THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS",
        default_value = ""
    )]
    pub third_party_signature_verification_public_keys: String,
    /// Comma-separated `author/name` or `author/name@<checksum>`: plugins accepted without a
    /// valid signature even when verification is enforced.
    #[arg(long, env = "PLUGIN_ALLOW_UNSIGNED", default_value = "")]
    pub plugin_allow_unsigned: String,
    /// Seconds.
    #[arg(long, env = "PLUGIN_MAX_EXECUTION_TIMEOUT", default_value_t = 600)]
    pub plugin_max_execution_timeout: u64,
    /// Minutes.
    #[arg(long, env = "PLUGIN_INSTALL_TIMEOUT", default_value_t = 15)]
    pub plugin_install_timeout: u64,

    #[arg(long, env = "PYTHON_INTERPRETER_PATH")]
    pub python_interpreter_path: Option<PathBuf>,
    #[arg(long, env = "UV_PATH")]
    pub uv_path: Option<PathBuf>,
    /// Shared uv cache; defaults to `<PLUGIN_WORKING_PATH>/.uv-cache`.
    #[arg(long, env = "UV_CACHE_DIR")]
    pub uv_cache_dir: Option<PathBuf>,
    /// Seconds of silence after which a dependency install is killed.
    #[arg(long, env = "PYTHON_ENV_INIT_TIMEOUT", default_value_t = 120)]
    pub python_env_init_timeout: u64,
    #[arg(long, env = "PIP_MIRROR_URL")]
    pub pip_mirror_url: Option<String>,
    #[arg(long, env = "PIP_VERBOSE", default_value = "true", value_parser = go_bool)]
    pub pip_verbose: bool,
    #[arg(long, env = "PIP_EXTRA_ARGS", default_value = "")]
    pub pip_extra_args: String,
    #[arg(long, env = "PLUGIN_IGNORE_UV_LOCK", default_value = "false", value_parser = go_bool)]
    pub plugin_ignore_uv_lock: bool,
    /// Largest line a plugin may write. Upstream's 5 MiB default cut off large results, so an
    /// unset value, 0, or exactly upstream's default (copied from its `.env`) means 256 MiB.
    #[arg(long, env = "PLUGIN_RUNTIME_MAX_BUFFER_SIZE")]
    pub plugin_runtime_max_buffer_size: Option<usize>,
    /// Ours: bytes of a plugin's answer that may wait for a slow caller before that session is
    /// ended with an error (other sessions of the plugin keep flowing). Default 8 MiB.
    #[arg(long, env = "PLUGIN_SESSION_BUFFER_SIZE", default_value_t = plugind_runtime::config::DEFAULT_SESSION_BUFFER_BYTES)]
    pub plugin_session_buffer_size: usize,
    /// Ours: sessions one plugin process serves at once; further requests queue.
    #[arg(long, env = "PLUGIN_MAX_SESSIONS_IN_FLIGHT", default_value_t = plugind_runtime::config::DEFAULT_SESSIONS_IN_FLIGHT)]
    pub plugin_max_sessions_in_flight: usize,
    /// Ours: requests that may wait for a session slot of one plugin process; beyond that they
    /// are answered "plugin is busy" at once.
    #[arg(long, env = "PLUGIN_MAX_SESSIONS_QUEUED", default_value_t = plugind_runtime::config::DEFAULT_SESSIONS_QUEUED)]
    pub plugin_max_sessions_queued: usize,
    /// Comma-separated extra variables handed to plugins on top of the built-in allow-list.
    #[arg(long, env = "PLUGIN_ENV_PASSTHROUGH", default_value = "")]
    pub plugin_env_passthrough: String,
    #[arg(long, env = "PLUGIN_LOCAL_LAUNCHING_CONCURRENT", default_value_t = 2)]
    pub plugin_local_launching_concurrent: usize,
    /// Ours: instances of each local plugin: `N`, or `MIN-MAX` to scale between them with the
    /// load; a minimum of 0 (`0` or `0-MAX`) lets an idle plugin scale to zero.
    #[arg(long, env = "PLUGIN_REPLICAS", default_value = "1", value_parser = ReplicaBounds::parse)]
    pub plugin_replicas: ReplicaBounds,
    /// Ours: per-plugin replicas, comma-separated `author/name=N` or `author/name=MIN-MAX`.
    #[arg(long, env = "PLUGIN_REPLICAS_OVERRIDES", default_value = "")]
    pub plugin_replicas_overrides: String,
    /// Ours: sessions in flight per instance above which a plugin gets another instance.
    #[arg(long, env = "PLUGIN_SCALE_UP_SESSIONS", default_value_t = 16)]
    pub plugin_scale_up_sessions: usize,
    /// Ours: seconds the load must stay above the threshold before a scale-up.
    #[arg(long, env = "PLUGIN_SCALE_UP_AFTER", default_value_t = 10)]
    pub plugin_scale_up_after: u64,
    /// Ours: seconds the load must stay low before an instance is removed.
    #[arg(long, env = "PLUGIN_SCALE_DOWN_AFTER", default_value_t = 120)]
    pub plugin_scale_down_after: u64,
    /// Ours: seconds without a session after which a plugin with a minimum of 0 replicas stops
    /// its last instance.
    #[arg(long, env = "PLUGIN_SCALE_TO_ZERO_AFTER", default_value_t = 600)]
    pub plugin_scale_to_zero_after: u64,
    /// `auto` (default: on when the daemon runs as root), `true` (root required) or `false`:
    /// run each plugin process under its own unprivileged uid (docs/SECURITY.md).
    #[arg(long, env = "PLUGIN_UID_SEPARATION", default_value = "auto", value_parser = auto_bool)]
    pub plugin_uid_separation: AutoBool,
    /// First uid (and gid) of the range plugins run under.
    #[arg(long, env = "PLUGIN_UID_BASE", default_value_t = plugind_runtime::DEFAULT_FIRST_UID)]
    pub plugin_uid_base: u32,
    /// Number of uids in the range; each plugin id gets one of them.
    #[arg(long, env = "PLUGIN_UID_COUNT", default_value_t = plugind_runtime::DEFAULT_UID_COUNT)]
    pub plugin_uid_count: u32,

    /// Start the remote-debugging TCP listener and the `debugging/key` route.
    #[arg(long, env = "PLUGIN_REMOTE_INSTALLING_ENABLED", default_value = "true", value_parser = go_bool)]
    pub plugin_remote_installing_enabled: bool,
    /// Bind address of the remote-debugging listener (a `tcp://` prefix is accepted).
    #[arg(long, env = "PLUGIN_REMOTE_INSTALLING_HOST", default_value = "0.0.0.0")]
    pub plugin_remote_installing_host: String,
    #[arg(long, env = "PLUGIN_REMOTE_INSTALLING_PORT", default_value_t = 5003)]
    pub plugin_remote_installing_port: u16,
    /// Registered debugging plugins connected at once; more are refused as busy.
    #[arg(long, env = "PLUGIN_REMOTE_INSTALLING_MAX_CONN", default_value_t = 256)]
    pub plugin_remote_installing_max_conn: usize,
    /// Ours: seconds without a heartbeat after which a debugging plugin is disconnected
    /// (upstream: 60).
    #[arg(
        long,
        env = "PLUGIN_REMOTE_INSTALLING_HEARTBEAT_TIMEOUT",
        default_value_t = 60
    )]
    pub plugin_remote_installing_heartbeat_timeout: u64,

    #[arg(long, env = "PROMETHEUS_ENABLED", default_value = "true", value_parser = go_bool)]
    pub prometheus_enabled: bool,

    /// Serves the public endpoint hooks `/e/{hook_id}/…` (http-api §5.1).
    #[arg(long, env = "PLUGIN_ENDPOINT_ENABLED", default_value = "true", value_parser = go_bool)]
    pub plugin_endpoint_enabled: bool,

    #[arg(long, env = "LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,
}

/// Whether plugins run under their own uids, given the setting and whether the daemon is root.
#[derive(Debug, PartialEq, Eq)]
pub enum UidSeparation {
    /// Each plugin under its own uid from the range.
    On { base: u32, count: u32 },
    /// Plugins run as the daemon's uid; the text says why, for the log.
    Off(&'static str),
}

impl Config {
    /// The values upstream requires; each missing one is one readable line.
    pub fn missing_required(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        let empty = |v: &Option<String>| v.as_deref().map_or(true, str::is_empty);
        if empty(&self.server_key) {
            missing.push("SERVER_KEY is required: the key Dify sends as X-Api-Key (Dify's PLUGIN_DAEMON_KEY)");
        }
        if empty(&self.dify_inner_api_url) {
            missing.push("DIFY_INNER_API_URL is required: the base URL of Dify's API server, e.g. http://localhost:5001");
        }
        if empty(&self.dify_inner_api_key) {
            missing.push("DIFY_INNER_API_KEY is required: the key of Dify's inner API (Dify's INNER_API_KEY_FOR_PLUGIN)");
        }
        missing
    }

    /// Settings that contradict each other or the platform (upstream panics on these at start);
    /// each is one readable line.
    pub fn platform_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let empty = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
        match self.platform.as_str() {
            "local" => {}
            "serverless" => {
                if empty(&self.serverless_connector_url) {
                    errors.push("PLATFORM=serverless needs DIFY_PLUGIN_SERVERLESS_CONNECTOR_URL: the base URL of the serverless connector".to_owned());
                }
                if empty(&self.serverless_connector_api_key) {
                    errors.push("PLATFORM=serverless needs DIFY_PLUGIN_SERVERLESS_CONNECTOR_API_KEY: the key the connector expects as Authorization".to_owned());
                }
                if self.max_serverless_transaction_timeout == 0 {
                    errors.push(
                        "MAX_SERVERLESS_TRANSACTION_TIMEOUT must be more than 0 seconds".to_owned(),
                    );
                }
            }
            other => errors.push(format!(
                "invalid platform {other:?}: PLATFORM must be `local` or `serverless`"
            )),
        }
        if self.max_serverless_request_bytes <= 0 {
            errors.push("MAX_SERVERLESS_REQUEST_BYTES must be more than 0".to_owned());
        }
        if self.admin_api_enabled && self.admin_api_key.as_deref().map_or(0, str::len) < 10 {
            errors.push(
                "ADMIN_API_ENABLED=true needs ADMIN_API_KEY of at least 10 characters".to_owned(),
            );
        }
        errors
    }

    /// The `DB_*` settings, resolved by `plugind_store::DbSettings::resolve`.
    pub fn db_settings(&self) -> DbSettings {
        DbSettings {
            db_type: self.db_type.clone(),
            host: self.db_host.clone(),
            port: self.db_port,
            username: self.db_username.clone(),
            password: self.db_password.clone(),
            database: self.db_database.clone(),
            ssl_mode: self.db_ssl_mode.clone(),
            max_open_conns: self.db_max_open_conns,
            max_idle_conns: self.db_max_idle_conns,
            conn_max_lifetime: self.db_conn_max_lifetime,
            extras: self.db_extras.clone(),
            data_dir: self.data_dir.clone(),
        }
    }

    /// The `REDIS_*` settings, resolved by `plugind_coord::RedisSettings::resolve`.
    pub fn redis_settings(&self) -> RedisSettings {
        RedisSettings {
            host: self.redis_host.clone(),
            port: self.redis_port,
            username: self.redis_username.clone(),
            password: self.redis_password.clone(),
            db: self.redis_db,
            key_prefix: self.redis_key_prefix.clone(),
            use_ssl: self.redis_use_ssl,
            ssl_cert_reqs: self.redis_ssl_cert_reqs.clone(),
            ssl_ca_certs: self.redis_ssl_ca_certs.clone(),
            use_sentinel: self.redis_use_sentinel,
            sentinels: self.redis_sentinels.clone(),
            sentinel_service_name: self.redis_sentinel_service_name.clone(),
            sentinel_username: self.redis_sentinel_username.clone(),
            sentinel_password: self.redis_sentinel_password.clone(),
            sentinel_socket_timeout: self.redis_sentinel_socket_timeout,
            use_clusters: self.redis_use_clusters,
            clusters: self.redis_clusters.clone(),
            clusters_password: self.redis_clusters_password.clone(),
        }
    }

    /// The object-storage settings (`PLUGIN_STORAGE_TYPE` and each backend's variables).
    pub fn storage_settings(&self) -> StorageSettings {
        StorageSettings {
            storage_type: self.plugin_storage_type.clone(),
            local_root: self.storage_root(),
            bucket: self.plugin_storage_oss_bucket.clone(),
            s3_use_aws: self.s3_use_aws,
            s3_use_aws_managed_iam: self.s3_use_aws_managed_iam,
            s3_endpoint: self.s3_endpoint.clone(),
            s3_use_path_style: self.s3_use_path_style,
            aws_access_key: self.aws_access_key.clone(),
            aws_secret_key: self.aws_secret_key.clone(),
            aws_region: self.aws_region.clone(),
            azure_container_name: self.azure_blob_storage_container_name.clone(),
            azure_connection_string: self.azure_blob_storage_connection_string.clone(),
            azure_use_managed_identity: self.azure_blob_storage_use_managed_identity,
            azure_account_url: self.azure_blob_storage_account_url.clone(),
            aliyun_region: self.aliyun_oss_region.clone(),
            aliyun_endpoint: self.aliyun_oss_endpoint.clone(),
            aliyun_access_key_id: self.aliyun_oss_access_key_id.clone(),
            aliyun_access_key_secret: self.aliyun_oss_access_key_secret.clone(),
            aliyun_auth_version: self.aliyun_oss_auth_version.clone(),
            aliyun_path: self.aliyun_oss_path.clone(),
            tencent_secret_id: self.tencent_cos_secret_id.clone(),
            tencent_secret_key: self.tencent_cos_secret_key.clone(),
            tencent_region: self.tencent_cos_region.clone(),
            tencent_endpoint: self.tencent_cos_endpoint.clone(),
            gcs_credentials: self.gcs_credentials.clone(),
            huawei_access_key: self.huawei_obs_access_key.clone(),
            huawei_secret_key: self.huawei_obs_secret_key.clone(),
            huawei_server: self.huawei_obs_server.clone(),
            huawei_path_style: self.huawei_obs_path_style,
            volcengine_endpoint: self.volcengine_tos_endpoint.clone(),
            volcengine_access_key: self.volcengine_tos_access_key.clone(),
            volcengine_secret_key: self.volcengine_tos_secret_key.clone(),
            volcengine_region: self.volcengine_tos_region.clone(),
            baidu_endpoint: self.baidu_bos_endpoint.clone(),
            baidu_access_key: self.baidu_bos_access_key.clone(),
            baidu_secret_key: self.baidu_bos_secret_key.clone(),
            baidu_region: self.baidu_bos_region.clone(),
        }
    }

    /// Whether objects live on the local file system.
    pub fn local_storage(&self) -> bool {
        matches!(self.plugin_storage_type.trim(), "" | "local" | "local_file")
    }

    pub fn storage_root(&self) -> PathBuf {
        self.plugin_storage_local_root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("storage"))
    }

    pub fn working_path(&self) -> PathBuf {
        self.plugin_working_path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cwd"))
    }

    /// `PLUGIN_REMOTE_INSTALLING_HOST:PLUGIN_REMOTE_INSTALLING_PORT`, without a `tcp://` prefix.
    pub fn remote_installing_addr(&self) -> String {
        let host = self.plugin_remote_installing_host.trim();
        let host = host.strip_prefix("tcp://").unwrap_or(host);
        format!("{host}:{}", self.plugin_remote_installing_port)
    }

    pub fn max_line_bytes(&self) -> usize {
        const UPSTREAM_DEFAULT: usize = 5_242_880;
        match self.plugin_runtime_max_buffer_size {
            None | Some(0) | Some(UPSTREAM_DEFAULT) => 256 << 20,
            Some(n) => n,
        }
    }

    /// `PLUGIN_UID_SEPARATION` resolved against the daemon's privileges. `true` without root is
    /// an error rather than a silent fallback.
    pub fn uid_separation(&self, is_root: bool) -> Result<UidSeparation, String> {
        match (self.plugin_uid_separation, is_root) {
            (AutoBool::Set(false), true) => Ok(UidSeparation::Off(
                "PLUGIN_UID_SEPARATION=false: plugins run as root and can read the daemon's secrets",
            )),
            (AutoBool::Set(false), false) => Ok(UidSeparation::Off("PLUGIN_UID_SEPARATION=false")),
            (AutoBool::Auto, false) => Ok(UidSeparation::Off(
                "plugind is not root, so plugins run under its own uid (docs/SECURITY.md says what still protects the daemon)",
            )),
            (AutoBool::Set(true), false) => Err(
                "PLUGIN_UID_SEPARATION=true needs plugind to run as root (it switches each plugin to its own uid); run as root or set PLUGIN_UID_SEPARATION=auto"
                    .into(),
            ),
            (AutoBool::Set(true) | AutoBool::Auto, true) => Ok(UidSeparation::On {
                base: self.plugin_uid_base,
                count: self.plugin_uid_count,
            }),
        }
    }

    /// `PLUGIN_REPLICAS*` and `PLUGIN_SCALE_*`; a malformed override is an error.
    pub fn scaling(&self) -> Result<ScalingConfig, String> {
        Ok(ScalingConfig {
            default: self.plugin_replicas,
            overrides: ScalingConfig::parse_overrides(&self.plugin_replicas_overrides)
                .map_err(|e| format!("PLUGIN_REPLICAS_OVERRIDES: {e}"))?,
            scale_up_sessions: self.plugin_scale_up_sessions.max(1),
            scale_up_after: Duration::from_secs(self.plugin_scale_up_after),
            scale_down_after: Duration::from_secs(self.plugin_scale_down_after),
            scale_to_zero_after: Duration::from_secs(self.plugin_scale_to_zero_after),
        })
    }

    pub fn max_execution_timeout(&self) -> Duration {
        Duration::from_secs(self.plugin_max_execution_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(env: &[&str]) -> Config {
        let mut args = vec!["plugind"];
        args.extend_from_slice(env);
        Config::try_parse_from(args).expect("parse")
    }

    #[test]
    fn platform_settings_are_checked_together() {
        assert!(parse(&[]).platform_errors().is_empty());
        let errors = parse(&["--platform", "serverless"]).platform_errors();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("DIFY_PLUGIN_SERVERLESS_CONNECTOR_URL"));
        let ok = parse(&[
            "--platform",
            "serverless",
            "--serverless-connector-url",
            "http://c",
            "--serverless-connector-api-key",
            "k",
        ]);
        assert!(ok.platform_errors().is_empty());
        assert!(parse(&["--platform", "cloud"]).platform_errors()[0].contains("invalid platform"));
        let admin = parse(&["--admin-api-enabled", "--admin-api-key", "short"]);
        assert!(admin.platform_errors()[0].contains("ADMIN_API_KEY"));
        let bytes = parse(&["--max-serverless-request-bytes", "0"]);
        assert!(bytes.platform_errors()[0].contains("MAX_SERVERLESS_REQUEST_BYTES"));
    }

    #[test]
    fn uid_separation_follows_root_unless_told() {
        let auto = parse(&[]);
        assert_eq!(auto.plugin_uid_separation, AutoBool::Auto);
        assert_eq!(
            auto.uid_separation(true),
            Ok(UidSeparation::On {
                base: 40_000,
                count: 20_000
            })
        );
        assert!(matches!(
            auto.uid_separation(false),
            Ok(UidSeparation::Off(_))
        ));

        let on = parse(&[
            "--plugin-uid-separation",
            "TRUE",
            "--plugin-uid-base",
            "70000",
            "--plugin-uid-count",
            "5",
        ]);
        assert_eq!(
            on.uid_separation(true),
            Ok(UidSeparation::On {
                base: 70_000,
                count: 5
            })
        );
        let err = on.uid_separation(false).expect_err("true without root");
        assert!(err.contains("needs plugind to run as root"), "{err}");

        let off = parse(&["--plugin-uid-separation", "0"]);
        assert!(
            matches!(off.uid_separation(true), Ok(UidSeparation::Off(why)) if why.contains("run as root"))
        );
        assert!(Config::try_parse_from(["plugind", "--plugin-uid-separation", "maybe"]).is_err());
    }

    #[test]
    fn replicas_default_to_one_and_take_overrides() {
        let scaling = parse(&[]).scaling().expect("scaling");
        assert_eq!(scaling.bounds("a/b"), ReplicaBounds { min: 1, max: 1 });
        let scaling = parse(&[
            "--plugin-replicas",
            "1-4",
            "--plugin-replicas-overrides",
            "a/b=3,c/d=0",
        ])
        .scaling()
        .expect("scaling");
        assert_eq!(scaling.bounds("x/y"), ReplicaBounds { min: 1, max: 4 });
        assert_eq!(scaling.bounds("a/b"), ReplicaBounds { min: 3, max: 3 });
        assert_eq!(scaling.bounds("c/d"), ReplicaBounds { min: 0, max: 1 });
        assert!(Config::try_parse_from(["plugind", "--plugin-replicas", "3-1"]).is_err());
        let bad = parse(&["--plugin-replicas-overrides", "a/b"]).scaling();
        assert!(bad.is_err_and(|e| e.starts_with("PLUGIN_REPLICAS_OVERRIDES")));
    }
}
