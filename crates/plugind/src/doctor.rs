//! `plugind doctor`: the start-up checks plus every configured service, one line each
//! (`ok`, `FAIL` or `-` for "not configured"), exit code 1 when anything failed. Reads only:
//! it creates no database, migrates nothing and downloads nothing.

use std::process::ExitCode;
use std::time::Duration;

use plugind_coord::Coord;
use plugind_runtime::toolchain::{find_python, find_uv, PLUGIN_PYTHON};
use plugind_store::{Blobs, Db, DbConfig};

use crate::config::Config;

enum Outcome {
    Ok(String),
    Fail(String),
    Skipped(String),
}

fn line(what: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok(text) => format!("ok    {what}: {text}"),
        Outcome::Fail(text) => format!("FAIL  {what}: {text}"),
        Outcome::Skipped(text) => format!("-     {what}: {text}"),
    }
}

pub async fn run(config: &Config) -> ExitCode {
    let mut results: Vec<(&str, Outcome)> = Vec::new();
    for missing in config.missing_required() {
        results.push(("settings", Outcome::Fail(missing.to_owned())));
    }
    let (uv, python) = toolchain(config).await;
    results.push(("uv", uv));
    results.push(("python", python));
    results.push(("database", database(config).await));
    results.push(("redis", redis(config).await));
    results.push(("object storage", storage(config).await));
    results.push(("dify inner api", inner_api(config).await));
    let mut failed = false;
    for (what, outcome) in &results {
        failed |= matches!(outcome, Outcome::Fail(_));
        println!("{}", line(what, outcome));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn toolchain(config: &Config) -> (Outcome, Outcome) {
    let working_path = config.working_path();
    let uv_cache_dir = config
        .uv_cache_dir
        .clone()
        .unwrap_or_else(|| working_path.join(".uv-cache"));
    let runtime = crate::runtime_config(config, working_path, uv_cache_dir);
    let provisioned = crate::toolchain::provisioned_uv(&config.data_dir);
    let uv = match find_uv(&runtime).await {
        Ok(uv) => uv,
        Err(_) if provisioned.is_file() => provisioned,
        Err(err) => {
            return (
                Outcome::Fail(format!(
                    "{err}; fix: `pip install uv`, set UV_PATH, or start plugind once (it installs uv into {})",
                    provisioned.display()
                )),
                Outcome::Skipped("needs uv to look for it".into()),
            )
        }
    };
    let version = tokio::process::Command::new(&uv)
        .arg("--version")
        .output()
        .await
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let uv_line = Outcome::Ok(format!("{} ({version})", uv.display()));
    let python = match find_python(&runtime, &uv, PLUGIN_PYTHON).await {
        Ok(found) => Outcome::Ok(found),
        Err(err) => Outcome::Fail(format!(
            "{err}; fix: `{} python install {PLUGIN_PYTHON}` or set PYTHON_INTERPRETER_PATH",
            uv.display()
        )),
    };
    (uv_line, python)
}

async fn database(config: &Config) -> Outcome {
    let cfg = match config.db_settings().resolve() {
        Ok(cfg) => cfg,
        Err(err) => return Outcome::Fail(err.to_string()),
    };
    if let DbConfig::Sqlite { path } = &cfg {
        if !path.exists() {
            return Outcome::Ok(format!(
                "{} (embedded; created at first start)",
                cfg.describe()
            ));
        }
    }
    let version_sql = match &cfg {
        DbConfig::Sqlite { .. } => "SELECT sqlite_version()",
        DbConfig::Postgres { .. } => "SHOW server_version",
        DbConfig::MySql { .. } => "SELECT VERSION()",
    };
    let db = match Db::connect(&cfg).await {
        Ok(db) => db,
        Err(err) => return Outcome::Fail(err.to_string()),
    };
    match db.scalar_text(version_sql).await {
        Ok(version) => Outcome::Ok(format!(
            "{} (server {})",
            cfg.describe(),
            version.unwrap_or_default()
        )),
        Err(err) => Outcome::Fail(format!("{}: {err}", cfg.describe())),
    }
}

async fn redis(config: &Config) -> Outcome {
    let settings = config.redis_settings();
    match settings.resolve() {
        Ok(None) => Outcome::Skipped("not configured (caches and locks in-process)".into()),
        Ok(Some(cfg)) => match Coord::connect(&cfg).await {
            Ok(coord) => Outcome::Ok(format!("{} answers PING", coord.describe())),
            Err(err) => Outcome::Fail(err.to_string()),
        },
        Err(err) => Outcome::Fail(err.to_string()),
    }
}

async fn storage(config: &Config) -> Outcome {
    let settings = config.storage_settings();
    if config.local_storage() {
        let root = config.storage_root();
        return if root.is_dir() || !root.exists() {
            Outcome::Ok(format!("local {}", root.display()))
        } else {
            Outcome::Fail(format!("{} is not a directory", root.display()))
        };
    }
    match Blobs::from_settings(&settings) {
        Ok(blobs) => match blobs.check().await {
            Ok(()) => Outcome::Ok(format!("{} answers", blobs.describe())),
            Err(err) => Outcome::Fail(err.to_string()),
        },
        Err(err) => Outcome::Fail(err.to_string()),
    }
}

async fn inner_api(config: &Config) -> Outcome {
    let Some(url) = config
        .dify_inner_api_url
        .as_deref()
        .filter(|u| !u.is_empty())
    else {
        return Outcome::Fail("DIFY_INNER_API_URL is not set".into());
    };
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(err) => return Outcome::Fail(err.to_string()),
    };
    // Any HTTP answer means Dify's API server is reachable; the key is checked per call.
    let health = format!("{}/health", url.trim_end_matches('/'));
    match client.get(&health).send().await {
        Ok(resp) => Outcome::Ok(format!("{url} answered HTTP {}", resp.status().as_u16())),
        Err(err) => Outcome::Fail(format!("{url} is unreachable: {err}")),
    }
}
