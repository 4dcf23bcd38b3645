//! `plugind`: parse configuration, build state, serve HTTP, shut down gracefully. No logic.
//!
//! Shutdown (SIGTERM/SIGINT): stop accepting; let in-flight requests and install jobs run until
//! `SHUTDOWN_DRAIN_TIMEOUT`; then end open streams with an error event and interrupt jobs; fail
//! unfinished tasks; stop plugins; exit.

mod config;
mod doctor;
mod lockdown;
mod toolchain;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use plugind_coord::Coord;
use plugind_runtime::{
    DebuggingServer, DebuggingSettings, PluginUsers, RuntimeConfig, RuntimeTuning, Runtimes,
};
use plugind_service::debugging::MemoryDebuggingKeys;
use plugind_service::{ServiceConfig, Services};
use plugind_store::{Blobs, Db, DbConfig};
use tokio_util::sync::CancellationToken;

use crate::config::{Command, Config, UidSeparation};

fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(&config.log_level);
    if config.command == Some(Command::Doctor) {
        return match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(doctor::run(&config)),
            Err(err) => {
                eprintln!("plugind: cannot start the async runtime: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let missing = config.missing_required();
    if !missing.is_empty() {
        for line in missing {
            eprintln!("plugind: {line}");
        }
        return ExitCode::from(2);
    }
    // Before the async runtime starts its threads: no-new-privs is per thread.
    if let Err(err) = lockdown::harden_process() {
        eprintln!("plugind: {err}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("plugind: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("plugind: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let default = match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

async fn run(config: Config) -> anyhow::Result<()> {
    let platform_errors = config.platform_errors();
    if !platform_errors.is_empty() {
        bail!("{}", platform_errors.join("\n"));
    }
    let uid_separation = config
        .uid_separation(nix::unistd::geteuid().is_root())
        .map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let db_config = config.db_settings().resolve()?;
    let sqlite_file = match &db_config {
        DbConfig::Sqlite { path } => Some(path.clone()),
        _ => None,
    };
    let db = Db::connect_and_migrate(&db_config)
        .await
        .context("database")?;
    let storage = config.storage_settings();
    let blobs = Blobs::from_settings(&storage).context("object storage")?;
    blobs.check().await.context("object storage")?;
    let coord = Coord::from_settings(&config.redis_settings())
        .await
        .context("Redis")?;
    let working_path = config.working_path();
    std::fs::create_dir_all(&working_path).with_context(|| {
        format!(
            "cannot create PLUGIN_WORKING_PATH {}",
            working_path.display()
        )
    })?;
    let working_path = working_path.canonicalize().context("PLUGIN_WORKING_PATH")?;
    let uv_cache_dir = config
        .uv_cache_dir
        .clone()
        .unwrap_or_else(|| working_path.join(".uv-cache"));
    let storage_root = config.local_storage().then(|| config.storage_root());
    protect_files(
        &config,
        sqlite_file.as_deref(),
        storage_root.as_deref(),
        &working_path,
        &uv_cache_dir,
    )?;
    tracing::info!(
        database = %db_config.describe(),
        storage = blobs.describe(),
        coordination = %coord.describe(),
        node_id = coord.node_id(),
        working_path = %working_path.display(),
        "state ready"
    );

    let tuning = RuntimeTuning {
        plugin_env_passthrough: config
            .plugin_env_passthrough
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        plugin_users: match uid_separation {
            UidSeparation::On { base, count } => {
                let users = PluginUsers::new(base, count)
                    .map_err(|e| anyhow::anyhow!("PLUGIN_UID_BASE/PLUGIN_UID_COUNT: {e}"))?;
                tracing::info!(
                    first_uid = base,
                    uids = count,
                    "plugins run under their own uids"
                );
                Some(std::sync::Arc::new(users))
            }
            UidSeparation::Off(why)
                if config.plugin_uid_separation == config::AutoBool::Set(false) =>
            {
                tracing::warn!("{why}");
                None
            }
            UidSeparation::Off(why) => {
                tracing::info!("{why}");
                None
            }
        },
        scaling: config.scaling().map_err(|e| anyhow::anyhow!("{e}"))?,
        ..RuntimeTuning::default()
    };
    let mut runtime_config = runtime_config(&config, working_path, uv_cache_dir);
    if let Some(uv) = toolchain::ensure(&runtime_config, &config.data_dir).await {
        runtime_config.uv_path = Some(uv);
    }
    let runtimes = Runtimes::with_tuning(runtime_config, tuning);

    if config.platform == "serverless" {
        let url = config.serverless_connector_url.clone().unwrap_or_default();
        runtimes
            .enable_serverless(plugind_runtime::ServerlessConfig {
                connector_url: url.clone(),
                connector_api_key: config.serverless_connector_api_key.clone().unwrap_or_default(),
                launch_timeout: Duration::from_secs(config.serverless_connector_launch_timeout),
                max_request_bytes: usize::try_from(config.max_serverless_request_bytes)
                    .unwrap_or(usize::MAX),
                max_retry_times: config.max_serverless_retry_times,
                execution_timeout: config.max_execution_timeout(),
                max_line_bytes: config.max_line_bytes(),
            })
            .await
            .with_context(|| {
                format!("PLATFORM=serverless: the connector at {url} (DIFY_PLUGIN_SERVERLESS_CONNECTOR_URL) did not answer its ping")
            })?;
        tracing::info!(connector = %url, "serverless platform: plugins run as functions behind the connector");
    }

    let third_party_keys = if config.third_party_signature_verification_enabled {
        load_public_keys(&config.third_party_signature_verification_public_keys)?
    } else {
        Vec::new()
    };
    let inner_api = plugind_dify::InnerApi::new(plugind_dify::InnerApiConfig {
        url: config.dify_inner_api_url.clone().unwrap_or_default(),
        key: config.dify_inner_api_key.clone().unwrap_or_default(),
        read_timeout: Duration::from_millis(config.dify_backwards_invocation_read_timeout),
    })
    .context("Dify inner API client")?;
    let services = Services::new(
        ServiceConfig {
            max_plugin_package_size: config.max_plugin_package_size,
            max_bundle_package_size: config.max_bundle_package_size,
            enforce_langgenius_signatures: config.enforce_langgenius_plugin_signatures,
            force_verifying_signature: config.force_verifying_signature,
            third_party_keys,
            max_execution_timeout: config.max_execution_timeout(),
            install_timeout: Duration::from_secs(config.plugin_install_timeout * 60),
            package_cache_path: config.plugin_package_cache_path.clone(),
            installed_path: config.plugin_installed_path.clone(),
            media_cache_path: config.plugin_media_cache_path.clone(),
            platform: config.platform.clone(),
            unsigned_allowlist: plugind_service::parse_unsigned_allowlist(
                &config.plugin_allow_unsigned,
            )
            .map_err(anyhow::Error::msg)?,
            inner_api: Some(inner_api),
            persistence_storage_path: config.persistence_storage_path.clone(),
            persistence_max_size: config.persistence_storage_max_size,
        },
        db,
        blobs,
        runtimes,
        coord,
    );
    let cluster = services
        .join_cluster(plugind_service::cluster::ClusterConfig {
            ips: advertised_ips(&config.server_host),
            port: config.server_port,
            reconcile_interval: Duration::from_secs(config.plugind_reconcile_interval.max(1)),
        })
        .await
        .context("joining the cluster")?;
    if cluster.is_none() {
        tracing::info!("no Redis configured: single node");
    }
    services
        .follow_installation_changes()
        .await
        .context("subscribing to installation changes")?;
    if config.plugin_remote_installing_enabled {
        services.enable_debugging(Arc::new(MemoryDebuggingKeys::default()));
        let forgotten = services
            .forget_debugging_plugins()
            .await
            .context("removing debugging plugins left by a previous run")?;
        if forgotten > 0 {
            tracing::info!(
                installations = forgotten,
                "removed debugging plugins a previous run left installed"
            );
        }
    }
    let restoring = services
        .restore_installed()
        .await
        .context("restoring installed plugins")?;
    tracing::info!(
        plugins = restoring,
        "starting installed plugins in the background"
    );

    let debugging = if config.plugin_remote_installing_enabled {
        Some(start_debugging(&config, &services).await?)
    } else {
        None
    };

    let prometheus = if config.prometheus_enabled {
        Some(
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .context("Prometheus recorder")?,
        )
    } else {
        None
    };
    let app = plugind_http::router(
        services.clone(),
        plugind_http::HttpConfig {
            server_key: config.server_key.clone().unwrap_or_default(),
            platform: config.platform.clone(),
            max_plugin_package_size: config.max_plugin_package_size,
            max_bundle_package_size: config.max_bundle_package_size,
            prometheus,
            endpoint_enabled: config.plugin_endpoint_enabled,
            routine_pool_size: config.routine_pool_size,
            max_request_body_size: config.max_request_body_size,
            body_read_timeout: seconds_or_unbounded(config.http_body_read_timeout),
            serverless_transaction_timeout: Duration::from_secs(
                config.max_serverless_transaction_timeout.min(YEAR_SECS),
            ),
            admin_api_key: config
                .admin_api_enabled
                .then(|| config.admin_api_key.clone().unwrap_or_default()),
        },
    );
    let addr: SocketAddr = format!("{}:{}", config.server_host, config.server_port)
        .parse()
        .with_context(|| {
            format!(
                "SERVER_HOST/SERVER_PORT {}:{} is not an address",
                config.server_host, config.server_port
            )
        })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, "plugind listening");
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.cancel();
        }
    });
    let serve_config = plugind_http::ServeConfig {
        max_connections: usize::try_from(config.routine_pool_size.max(1)).unwrap_or(usize::MAX),
        header_read_timeout: seconds_or_unbounded(config.http_header_read_timeout),
    };
    let connections = plugind_http::serve(listener, app, serve_config, stop).await;

    let drain = Duration::from_secs(config.shutdown_drain_timeout.min(YEAR_SECS));
    let deadline = tokio::time::Instant::now() + drain;
    tracing::info!(
        open_connections = connections.open(),
        "shutting down: letting in-flight work finish for up to {}s (SHUTDOWN_DRAIN_TIMEOUT)",
        drain.as_secs()
    );
    if tokio::time::timeout_at(deadline, connections.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            open_connections = connections.open(),
            "drain deadline reached: ending open streams"
        );
        services.interrupt();
        // Enough to write the final error event of each stream.
        if tokio::time::timeout(Duration::from_secs(2), connections.closed())
            .await
            .is_err()
        {
            tracing::warn!(
                open_connections = connections.open(),
                "closing connections that did not finish"
            );
        }
    }
    if let Some(debugging) = &debugging {
        // Debugging plugins are uninstalled while the database is still there.
        debugging.shutdown(Duration::from_secs(5)).await;
    }
    tracing::info!("shutting down: failing unfinished tasks and stopping plugins");
    services.shutdown(deadline).await;
    tracing::info!("stopped");
    Ok(())
}

/// Binds the remote-debugging listener (retried after 2 s and 4 s like upstream; then start-up
/// fails, naming the address) and starts serving it.
async fn start_debugging(config: &Config, services: &Services) -> anyhow::Result<DebuggingServer> {
    let addr = config.remote_installing_addr();
    let mut retries = [2u64, 4].into_iter();
    let listener = loop {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => break listener,
            Err(err) => match retries.next() {
                Some(wait) => {
                    tracing::warn!(%addr, error = %err, "cannot listen for debugging plugins yet; retrying in {wait}s");
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                None => {
                    return Err(err).with_context(|| {
                        format!(
                            "cannot listen for debugging plugins on {addr} \
                             (PLUGIN_REMOTE_INSTALLING_HOST/PORT; PLUGIN_REMOTE_INSTALLING_ENABLED=false turns remote debugging off)"
                        )
                    })
                }
            },
        }
    };
    let settings = DebuggingSettings {
        max_connections: config.plugin_remote_installing_max_conn,
        heartbeat_timeout: Duration::from_secs(
            config
                .plugin_remote_installing_heartbeat_timeout
                .clamp(1, YEAR_SECS),
        ),
        max_line_bytes: config.max_line_bytes(),
        sessions: services.runtimes().config().sessions,
        ..DebuggingSettings::default()
    };
    let server = DebuggingServer::start(
        listener,
        services.runtimes().clone(),
        Arc::new(services.clone()),
        settings,
    )
    .context("debugging listener")?;
    tracing::info!(addr = %server.local_addr(), "listening for debugging plugins");
    Ok(server)
}

/// The addresses other cluster nodes reach this one at: `SERVER_HOST` when it names one
/// address, else (as upstream) every non-loopback IPv4 address of the host.
fn advertised_ips(server_host: &str) -> Vec<String> {
    match server_host.parse::<std::net::IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => return vec![ip.to_string()],
        _ => {}
    }
    let mut ips: Vec<String> = nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs
                .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
                .filter(|ip| !ip.is_loopback())
                .map(|ip| ip.to_string())
                .collect()
        })
        .unwrap_or_default();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        ips.push("127.0.0.1".into());
    }
    ips
}

/// The local runtime's settings.
pub(crate) fn runtime_config(
    config: &Config,
    working_path: std::path::PathBuf,
    uv_cache_dir: std::path::PathBuf,
) -> RuntimeConfig {
    RuntimeConfig {
        uv_cache_dir,
        working_path,
        uv_path: config.uv_path.clone(),
        python_interpreter_path: config.python_interpreter_path.clone(),
        env_init_timeout: Duration::from_secs(config.python_env_init_timeout),
        pip_mirror_url: config.pip_mirror_url.clone().filter(|s| !s.is_empty()),
        pip_extra_args: config
            .pip_extra_args
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        pip_verbose: config.pip_verbose,
        ignore_uv_lock: config.plugin_ignore_uv_lock,
        max_line_bytes: config.max_line_bytes(),
        launch_concurrency: config.plugin_local_launching_concurrent.max(1),
        first_heartbeat_timeout: Duration::from_secs(120),
        sessions: plugind_runtime::SessionLimits {
            buffer_bytes: config.plugin_session_buffer_size,
            in_flight: config.plugin_max_sessions_in_flight,
            queued: config.plugin_max_sessions_queued,
        },
    }
}

/// `0` means no limit; longer than a year is a year (deadlines must not overflow `Instant`).
fn seconds_or_unbounded(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds.min(YEAR_SECS)))
}

const YEAR_SECS: u64 = 365 * 86_400;

/// Modes that keep plugins out of the daemon's state (docs/SECURITY.md): the storage root
/// private except the way to the working path (its top directories are created private first,
/// so objects written later land in them), the data directory traverse-only or private, the
/// SQLite files owner-only, the working path traverse-only, a uv cache inside it private.
fn protect_files(
    config: &Config,
    sqlite_file: Option<&std::path::Path>,
    storage_root: Option<&std::path::Path>,
    working_path: &std::path::Path,
    uv_cache_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let canonical = |dir: &std::path::Path| {
        dir.canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))
    };
    if let Some(storage_root) = storage_root {
        let storage_root = canonical(storage_root)?;
        for top in [
            &config.plugin_package_cache_path,
            &config.plugin_installed_path,
            &config.plugin_media_cache_path,
        ] {
            let dir = storage_root.join(top);
            if !working_path.starts_with(&dir) {
                lockdown::private_dir(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
        }
        lockdown::lock_down(&storage_root, &[working_path.to_path_buf()]).with_context(|| {
            format!("cannot restrict the modes under {}", storage_root.display())
        })?;
    }
    let data_dir = canonical(&config.data_dir)?;
    lockdown::open_way(&data_dir, working_path)
        .and_then(|()| lockdown::traverse_only(working_path))
        .with_context(|| format!("cannot restrict the modes of {}", data_dir.display()))?;
    if let Some(db) = sqlite_file {
        lockdown::private_database(db)
            .with_context(|| format!("cannot restrict the modes of {}", db.display()))?;
    }
    if uv_cache_dir.starts_with(working_path) {
        lockdown::private_dir(uv_cache_dir)
            .with_context(|| format!("cannot create {}", uv_cache_dir.display()))?;
    }
    Ok(())
}

fn load_public_keys(paths: &str) -> anyhow::Result<Vec<rsa::RsaPublicKey>> {
    paths
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|path| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read public key {path}"))?;
            plugind_package::parse_public_key_pem(&pem)
                .with_context(|| format!("invalid public key {path}"))
        })
        .collect()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
