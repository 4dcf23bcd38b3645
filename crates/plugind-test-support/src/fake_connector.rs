//! A small fake of the serverless connector (plugin-protocol §6.1, §6.6): `POST /ping`,
//! `GET /v1/runner/instances`, `POST /v1/launch`. A launch extracts the package and starts the
//! real SDK in serverless mode (`INSTALL_METHOD=serverless`, an HTTP server on a free port) with
//! the echo fixture's venv, built once per test binary by [`echo_venv_python`], then streams
//! the stage lines and the function URL.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::fixtures::{assemble_fixture, test_cache_dir, Variant};

/// The venv of the latest-SDK echo fixture, built with uv once per test binary (the shared uv
/// cache makes it quick after the first time); returns its `python`.
pub fn echo_venv_python() -> PathBuf {
    static VENV: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir for the serverless venv");
        assemble_fixture(Variant::Latest, dir.path());
        let venv = dir.path().join(".venv");
        let status = std::process::Command::new("uv")
            .args(["sync", "--no-dev", "--frozen", "--python"])
            .arg(local_python(Variant::Latest.python_version()))
            .env("UV_PYTHON_DOWNLOADS", "never")
            .current_dir(dir.path())
            .env("UV_CACHE_DIR", test_cache_dir().join("uv"))
            .env("UV_PROJECT_ENVIRONMENT", &venv)
            .status()
            .expect("run uv (pip install uv; it must be on PATH)");
        assert!(status.success(), "uv sync of the echo fixture failed");
        let python = venv.join("bin").join("python");
        (dir, python)
    })
    .1
    .clone()
}

/// An installed interpreter of `version`: pyenv's if there is one, else `python<version>` on
/// `PATH` (uv must not download one).
fn local_python(version: &str) -> PathBuf {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    let found = root.and_then(|root| {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{version}.")))
            })
            .collect();
        dirs.sort();
        dirs.pop()
            .map(|d| d.join("bin").join(format!("python{version}")))
    });
    found
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(format!("python{version}")))
}

#[derive(Clone, Debug)]
struct Function {
    url: String,
    name: String,
}

struct Inner {
    key: String,
    python: PathBuf,
    workdir: tempfile::TempDir,
    daemon_url: Mutex<String>,
    functions: Mutex<HashMap<String, Function>>,
    processes: Mutex<Vec<tokio::process::Child>>,
    launches: Mutex<Vec<String>>,
}

/// The fake connector; stops its server and every function it started when dropped.
pub struct FakeConnector {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The `Authorization` value it expects.
    pub key: String,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeConnector {
    fn drop(&mut self) {
        self.server.abort();
        self.kill_functions();
    }
}

impl FakeConnector {
    /// Listens on a free port; functions run with `python` (see [`echo_venv_python`]).
    pub async fn start(python: PathBuf) -> FakeConnector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake connector");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let key = format!("connector-key-{}", uuid::Uuid::new_v4().simple());
        let inner = Arc::new(Inner {
            key: key.clone(),
            python,
            workdir: tempfile::tempdir().expect("tempdir"),
            daemon_url: Mutex::new(String::new()),
            functions: Mutex::new(HashMap::new()),
            processes: Mutex::new(Vec::new()),
            launches: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/ping", post(ping))
            .route("/v1/runner/instances", get(instances))
            .route("/v1/launch", post(launch))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeConnector {
            url,
            key,
            inner,
            server,
        }
    }

    /// Where functions send their backwards calls (`DIFY_PLUGIN_DAEMON_URL`).
    pub fn set_daemon_url(&self, url: &str) {
        *lock(&self.inner.daemon_url) = url.to_owned();
    }

    /// The package file names launched so far.
    pub fn launches(&self) -> Vec<String> {
        lock(&self.inner.launches).clone()
    }

    /// Kills every function process (the functions go down; look-ups still name them).
    pub fn kill_functions(&self) {
        lock(&self.inner.processes).clear();
    }

    /// The environment a daemon needs to use this connector.
    pub fn daemon_env(&self) -> Vec<(String, String)> {
        vec![
            ("PLATFORM".into(), "serverless".into()),
            (
                "DIFY_PLUGIN_SERVERLESS_CONNECTOR_URL".into(),
                self.url.clone(),
            ),
            (
                "DIFY_PLUGIN_SERVERLESS_CONNECTOR_API_KEY".into(),
                self.key.clone(),
            ),
        ]
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    headers.get("Authorization").and_then(|v| v.to_str().ok()) == Some(inner.key.as_str())
}

async fn ping(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if !authorized(&inner, &headers) {
        return (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    }
    axum::Json(json!("pong")).into_response()
}

async fn instances(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&inner, &headers) {
        return (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    }
    let filename = query.get("filename").cloned().unwrap_or_default();
    let items: Vec<Value> = lock(&inner.functions)
        .get(&filename)
        .map(|f| {
            vec![
                json!({"ID": f.name, "Name": f.name, "Endpoint": f.url, "ResourceName": filename,
                        "Status": {"State": "Running"}}),
            ]
        })
        .unwrap_or_default();
    axum::Json(json!({"error": "", "Items": items})).into_response()
}

fn stage(stage: &str, state: &str, message: &str) -> Bytes {
    let line = json!({"Stage": stage, "State": state, "Obj": "", "Message": message});
    Bytes::from(format!("data: {line}\n\n"))
}

async fn launch(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    if !authorized(&inner, &headers) {
        return (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    }
    let mut package = None;
    let mut filename = String::new();
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("context") {
            filename = field.file_name().unwrap_or("").to_owned();
            package = field.bytes().await.ok();
        }
    }
    let Some(package) = package else {
        return (StatusCode::BAD_REQUEST, "no context file").into_response();
    };
    lock(&inner.launches).push(filename.clone());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let _ = tx.send(Bytes::from_static(b"event: message\n"));
        let _ = tx.send(stage("build", "running", "building"));
        let n = lock(&inner.launches).len();
        let dir = inner.workdir.path().join(format!("fn-{n}"));
        if let Err(e) = extract(&package, &dir) {
            let _ = tx.send(stage("build", "failed", &format!("extract: {e}")));
            return;
        }
        let _ = tx.send(stage("run", "running", ""));
        match start_function(&inner, &dir).await {
            Ok(url) => {
                let name = format!("fn-{n}");
                lock(&inner.functions).insert(
                    filename,
                    Function {
                        url: url.clone(),
                        name: name.clone(),
                    },
                );
                let message = format!("endpoint={url},name={name},id={n}");
                let _ = tx.send(stage("run", "success", &message));
                let _ = tx.send(stage("end", "success", ""));
            }
            Err(e) => {
                let _ = tx.send(stage("run", "failed", &e));
            }
        }
    });
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Response::new(Body::from_stream(lines))
}

fn extract(package: &[u8], dir: &Path) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(package)).map_err(|e| e.to_string())?;
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).map_err(|e| e.to_string())?;
        let Some(path) = file.enclosed_name() else {
            continue;
        };
        let to = dir.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        std::fs::write(&to, bytes).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Starts the SDK in serverless mode in `dir` and waits for `GET /health`.
async fn start_function(inner: &Inner, dir: &Path) -> Result<String, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let daemon_url = lock(&inner.daemon_url).clone();
    let child = tokio::process::Command::new(&inner.python)
        .args(["-m", "main"])
        .current_dir(dir)
        .env("INSTALL_METHOD", "serverless")
        .env("SERVERLESS_HOST", "127.0.0.1")
        .env("SERVERLESS_PORT", port.to_string())
        .env("DIFY_PLUGIN_DAEMON_URL", daemon_url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the SDK: {e}"))?;
    lock(&inner.processes).push(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let http = reqwest::Client::new();
    loop {
        if let Ok(resp) = http.get(format!("{url}/health")).send().await {
            if resp.status().is_success() {
                return Ok(url);
            }
        }
        if Instant::now() > deadline {
            return Err("the SDK's serverless server did not answer /health within 120s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
