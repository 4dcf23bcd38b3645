//! First run: uv and a Python for plugins. When uv cannot be found it is provisioned into
//! `<PLUGIND_DATA_DIR>/bin/uv` from PyPI (the `uv` wheel, as `pip install uv` would fetch it,
//! checked against PyPI's SHA-256), and the daemon says so in one line. A missing Python is one
//! line naming the command that fixes it; the daemon still starts (plugins that find their
//! interpreter another way keep working).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use plugind_runtime::toolchain::{find_python, find_uv, PLUGIN_PYTHON};
use plugind_runtime::RuntimeConfig;
use sha2::{Digest, Sha256};

/// PyPI's JSON description of the `uv` project.
const UV_JSON: &str = "https://pypi.org/pypi/uv/json";

/// Where a provisioned uv lives.
pub fn provisioned_uv(data_dir: &Path) -> PathBuf {
    data_dir.join("bin").join("uv")
}

/// The machine's wheel platform tag fragment (`x86_64`, `aarch64`).
fn wheel_arch() -> &'static str {
    std::env::consts::ARCH
}

/// Picks the manylinux wheel for this machine from PyPI's `urls` list: (file name, url, sha256).
fn pick_wheel(release: &serde_json::Value) -> Option<(String, String, String)> {
    let arch = wheel_arch();
    release["urls"]
        .as_array()?
        .iter()
        .filter_map(|f| {
            let name = f["filename"].as_str()?;
            let url = f["url"].as_str()?;
            let sha = f["digests"]["sha256"].as_str()?;
            (name.ends_with(".whl")
                && name.contains("manylinux")
                && name.contains(arch)
                && !name.contains("musllinux"))
            .then(|| (name.to_owned(), url.to_owned(), sha.to_owned()))
        })
        .next()
}

/// Downloads the uv wheel and writes its `uv` binary to `target` (via a temporary file in the
/// same directory, renamed in when complete).
pub async fn provision_uv(target: &Path) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())?;
    let release: serde_json::Value = client
        .get(UV_JSON)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("cannot read {UV_JSON}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("cannot read {UV_JSON}: {e}"))?;
    let version = release["info"]["version"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    let (name, url, sha) = pick_wheel(&release).ok_or_else(|| {
        format!(
            "PyPI has no manylinux {} wheel of uv {version}",
            wheel_arch()
        )
    })?;
    let wheel = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("cannot download {name}: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("cannot download {name}: {e}"))?;
    let got = hex::encode(Sha256::digest(&wheel));
    if !got.eq_ignore_ascii_case(&sha) {
        return Err(format!("{name}: SHA-256 {got} is not PyPI's {sha}"));
    }
    let target = target.to_path_buf();
    tokio::task::spawn_blocking(move || install_from_wheel(&wheel, &target))
        .await
        .map_err(|e| e.to_string())??;
    Ok(version)
}

fn install_from_wheel(wheel: &[u8], target: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(wheel)).map_err(|e| e.to_string())?;
    let index = (0..archive.len())
        .find(|&i| {
            archive
                .by_index(i)
                .is_ok_and(|f| f.name().ends_with(".data/scripts/uv"))
        })
        .ok_or("the wheel has no uv binary")?;
    let mut binary = Vec::new();
    archive
        .by_index(index)
        .map_err(|e| e.to_string())?
        .read_to_end(&mut binary)
        .map_err(|e| e.to_string())?;
    let dir = target.parent().ok_or("bad target")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".uv.{}", std::process::id()));
    std::fs::write(&tmp, &binary).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, target).map_err(|e| format!("{}: {e}", target.display()))
}

/// Start-up: the uv to use (found, earlier provisioned, or provisioned now), logging one line
/// about what was done or what is missing. `None` when no uv could be had: installs will fail
/// with the reason, the daemon still serves everything else.
pub async fn ensure(cfg: &RuntimeConfig, data_dir: &Path) -> Option<PathBuf> {
    let uv = match find_uv(cfg).await {
        Ok(uv) => uv,
        Err(not_found) => {
            let target = provisioned_uv(data_dir);
            if target.is_file() {
                tracing::info!(uv = %target.display(), "using the uv provisioned earlier");
                target
            } else {
                match provision_uv(&target).await {
                    Ok(version) => {
                        tracing::warn!(
                            "uv was not found ({not_found}); installed uv {version} from PyPI into {}",
                            target.display()
                        );
                        target
                    }
                    Err(err) => {
                        tracing::error!(
                            "uv is missing and could not be installed from PyPI ({err}); plugins cannot be installed until it exists: run `pip install uv` or set UV_PATH"
                        );
                        return None;
                    }
                }
            }
        }
    };
    let with_uv = RuntimeConfig {
        uv_path: Some(uv.clone()),
        ..cfg.clone()
    };
    if let Err(err) = find_python(&with_uv, &uv, PLUGIN_PYTHON).await {
        tracing::error!(
            "plugins need Python {PLUGIN_PYTHON} and none was found ({err}); fix: `{} python install {PLUGIN_PYTHON}` or set PYTHON_INTERPRETER_PATH",
            uv.display()
        );
    }
    Some(uv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_this_machines_manylinux_wheel() {
        let arch = wheel_arch();
        let release = serde_json::json!({"urls": [
            {"filename": "uv-0.9.0.tar.gz", "url": "u0", "digests": {"sha256": "a"}},
            {"filename": format!("uv-0.9.0-py3-none-musllinux_1_1_{arch}.whl"), "url": "u1", "digests": {"sha256": "b"}},
            {"filename": "uv-0.9.0-py3-none-manylinux_2_17_s390x.manylinux2014_s390x.whl", "url": "u2", "digests": {"sha256": "c"}},
            {"filename": format!("uv-0.9.0-py3-none-manylinux_2_17_{arch}.manylinux2014_{arch}.whl"), "url": "u3", "digests": {"sha256": "d"}},
        ]});
        let (_, url, sha) = pick_wheel(&release).expect("wheel");
        assert_eq!((url.as_str(), sha.as_str()), ("u3", "d"));
        assert!(pick_wheel(&serde_json::json!({"urls": []})).is_none());
    }
}
