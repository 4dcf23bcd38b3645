//! The local runtime's tools, for start-up checks and `plugind doctor`: uv and a Python for
//! plugins, found exactly the way a launch finds them.

use std::path::{Path, PathBuf};

use crate::RuntimeConfig;

/// The Python version plugins are built with when their manifest names none (upstream builds
/// every venv with 3.12).
pub const PLUGIN_PYTHON: &str = "3.12";

/// uv as a launch would find it: `UV_PATH`, `uv` on `PATH`, or the interpreter's uv package.
pub async fn find_uv(cfg: &RuntimeConfig) -> Result<PathBuf, String> {
    crate::local::env::find_uv(cfg).await
}

/// The interpreter a launch would pick for `want` (e.g. `3.12`), described as `Python <version>
/// at <path> (from <source>)`.
pub async fn find_python(cfg: &RuntimeConfig, uv: &Path, want: &str) -> Result<String, String> {
    crate::local::env::find_python(cfg, uv, want)
        .await
        .map(|choice| choice.describe())
}
