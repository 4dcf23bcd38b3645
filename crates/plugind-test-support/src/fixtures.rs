//! Fixture plugins and well-known paths.
//!
//! The echo tool plugin lives in `fixtures/echo/` (shared Python sources) and two overlays,
//! `fixtures/variant-sdk07/` (runner 3.11, `requirements.txt` pinning `dify_plugin==0.7.4`) and
//! `fixtures/variant-latest/` (runner 3.12, `pyproject.toml` + `uv.lock` with a 0.9/0.10 SDK).
//! [`assemble_fixture`] copies the shared part and then the overlay into a plain directory;
//! [`pack_fixture`] turns that directory into `.difypkg` bytes.
//!
//! One fixture plugin per other kind lives in `fixtures/<kind>/` (`model`, `tool`, `agent`,
//! `datasource`, `trigger`): its manifest and sources only. [`pack_kind_fixture`] puts them on top
//! of the latest variant's runtime files (entry point, icon, `pyproject.toml` + `uv.lock`).

use std::fs;
use std::path::{Path, PathBuf};

/// Which overlay of the echo fixture to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `dify_plugin==0.7.4` on Python 3.11, dependencies from `requirements.txt`.
    Sdk07,
    /// `dify_plugin>=0.9,<0.11` on Python 3.12, dependencies from `pyproject.toml` + `uv.lock`.
    Latest,
}

impl Variant {
    /// Both variants, for tests that run against each.
    pub const ALL: [Variant; 2] = [Variant::Sdk07, Variant::Latest];

    /// Name of the overlay directory under [`fixture_root`].
    pub fn dir_name(self) -> &'static str {
        match self {
            Variant::Sdk07 => "variant-sdk07",
            Variant::Latest => "variant-latest",
        }
    }

    /// The Python version the manifest's `meta.runner.version` declares.
    pub fn python_version(self) -> &'static str {
        match self {
            Variant::Sdk07 => "3.11",
            Variant::Latest => "3.12",
        }
    }
}

/// Plugin id of the echo fixture (`author/name`).
pub const ECHO_PLUGIN_ID: &str = "plugind/echo";
/// Tool provider name declared by the echo fixture.
pub const ECHO_PROVIDER: &str = "echo";
/// Tool name declared by the echo fixture.
pub const ECHO_TOOL: &str = "echo";
/// The probe tool of the echo fixture: tries to read the paths in its `paths` parameter (a JSON
/// list) and to write in its working directory, `HOME` and `TMPDIR`, and reports each outcome.
pub const PROBE_TOOL: &str = "probe";
/// The backwards tool of the echo fixture: calls back into Dify through the daemon (LLM,
/// embedding, tool, app, parameter extractor, storage, file upload) as its `mode` says, and
/// returns one text message holding `{"mode", "result"|"error"}` as JSON.
pub const BACKWARDS_TOOL: &str = "backwards";
/// Size of the blob the `blob`/`all` modes yield.
pub const ECHO_BLOB_SIZE: usize = 20000;

/// Plugin id of `fixtures/model/`: provider `allmodels` with one predefined model per type
/// (`echo-llm`, `echo-embedding`, `echo-rerank`, `echo-tts`, `echo-s2t`, `echo-moderation`).
pub const MODEL_PLUGIN_ID: &str = "plugind/allmodels";
/// Plugin id of `fixtures/tool/`: provider `oauthtool` with OAuth and the `pick` tool, whose
/// `channel` parameter is a dynamic select.
pub const OAUTH_TOOL_PLUGIN_ID: &str = "plugind/oauthtool";
/// Plugin id of `fixtures/agent/`: provider `blobagent`, strategy `chunky`.
pub const AGENT_PLUGIN_ID: &str = "plugind/blobagent";
/// Plugin id of `fixtures/trigger/`: provider `webhooks`, event `ping`.
pub const TRIGGER_PLUGIN_ID: &str = "plugind/webhooks";
/// The providers of `fixtures/datasource/` (`website_crawl`, `online_document`, `online_drive`).
/// A plugin declares one datasource provider, so each is its own plugin `plugind/<provider>`
/// ([`pack_datasource_fixture`]).
pub const DATASOURCE_PROVIDERS: [&str; 3] = ["website", "document", "drive"];

/// `.../crates/plugind-test-support/fixtures`.
pub fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Root of the git checkout (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate_dir.to_path_buf())
}

/// Copies `fixtures/echo/` and then the variant overlay into `dst` (created if missing).
///
/// Panics on I/O errors: this is test setup.
pub fn assemble_fixture(v: Variant, dst: &Path) {
    let root = fixture_root();
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("create {}: {e}", dst.display()));
    copy_tree(&root.join("echo"), dst)
        .unwrap_or_else(|e| panic!("copy echo fixture to {}: {e}", dst.display()));
    copy_tree(&root.join(v.dir_name()), dst)
        .unwrap_or_else(|e| panic!("copy {} overlay to {}: {e}", v.dir_name(), dst.display()));
}

/// Assembles the variant in a temporary directory and packs it into `.difypkg` bytes with
/// `plugind_package::pack_dir` (honours `.difyignore`).
///
/// The bytes are deterministic (sorted entries, fixed timestamps), so the package checksum and
/// therefore the unique identifier are stable across runs.
pub fn pack_fixture(v: Variant) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    assemble_fixture(v, tmp.path());
    plugind_package::pack_dir(tmp.path()).unwrap_or_else(|e| panic!("pack {}: {e}", v.dir_name()))
}

/// `fixtures/<kind>/` on top of the latest variant's runtime files (`main.py`, `.difyignore`,
/// `_assets/`, `pyproject.toml`, `uv.lock`), packed. Deterministic like [`pack_fixture`].
///
/// Panics on I/O errors: this is test setup.
pub fn pack_kind_fixture(kind: &str) -> Vec<u8> {
    pack_kind_with(kind, None)
}

/// The datasource fixture as the plugin `plugind/<provider>` declaring only that provider
/// (one of [`DATASOURCE_PROVIDERS`]), packed.
pub fn pack_datasource_fixture(provider: &str) -> Vec<u8> {
    let path = fixture_root().join("datasource/manifest.yaml");
    let manifest =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let edited = manifest
        .replace("name: website\n", &format!("name: {provider}\n"))
        .replace(
            "provider/website.yaml",
            &format!("provider/{provider}.yaml"),
        );
    assert!(
        edited.contains(&format!("provider/{provider}.yaml")),
        "unexpected datasource manifest: {manifest}"
    );
    pack_kind_with("datasource", Some(&edited))
}

fn pack_kind_with(kind: &str, manifest: Option<&str>) -> Vec<u8> {
    let root = fixture_root();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dst = tmp.path();
    let copy = |from: &Path, to: &Path| {
        fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    };
    fs::create_dir_all(dst.join("_assets")).unwrap_or_else(|e| panic!("mkdir: {e}"));
    for file in ["main.py", ".difyignore", "_assets/icon.svg"] {
        copy(&root.join("echo").join(file), &dst.join(file));
    }
    for file in ["pyproject.toml", "uv.lock"] {
        copy(&root.join("variant-latest").join(file), &dst.join(file));
    }
    copy_tree(&root.join(kind), dst).unwrap_or_else(|e| panic!("copy {kind} fixture: {e}"));
    if let Some(manifest) = manifest {
        fs::write(dst.join("manifest.yaml"), manifest).unwrap_or_else(|e| panic!("write: {e}"));
    }
    plugind_package::pack_dir(dst).unwrap_or_else(|e| panic!("pack {kind}: {e}"))
}

/// `<repo>/../shared/fixtures/upstream/<name>`: upstream's own packages, beside the repository on
/// the project's machines only. Only test targets behind the `upstream-fixtures` feature read it.
pub fn upstream_fixture(name: &str) -> PathBuf {
    repo_root()
        .join("..")
        .join("shared")
        .join("fixtures")
        .join("upstream")
        .join(name)
}

/// `~/.cache/plugind-test` (created if missing); the shared uv cache is its `uv/` subdirectory.
pub fn test_cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = home.join(".cache").join("plugind-test");
    let _ = fs::create_dir_all(dir.join("uv"));
    dir
}

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let ty = entry.file_type()?;
        if ty.is_dir() {
            let name = entry.file_name();
            if name == "__pycache__" || name == ".venv" {
                continue;
            }
            fs::create_dir_all(&to)?;
            copy_tree(&from, &to)?;
        } else if ty.is_file() {
            fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// The latest-SDK fixture manifest turned into another plugin: named `name`, with its echo tool
/// provider replaced by `plugins` (a whole `plugins:` section, e.g.
/// `"plugins:\n  models:\n    - provider/x.yaml\n"`). Pack it with `pack_fixture_with`.
///
/// Panics when the manifest does not have the expected shape: this is test setup.
pub fn latest_manifest_as(name: &str, plugins: &str) -> String {
    let path = fixture_root().join("variant-latest/manifest.yaml");
    let manifest =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let edited = manifest
        .replace("name: echo\n", &format!("name: {name}\n"))
        .replace("plugins:\n  tools:\n    - provider/echo.yaml\n", plugins);
    assert!(
        edited.contains(&format!("name: {name}\n")) && edited.contains(plugins),
        "unexpected fixture manifest: {manifest}"
    );
    edited
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read};

    #[test]
    fn assemble_has_shared_and_overlay_files() {
        for v in Variant::ALL {
            let tmp = tempfile::tempdir().expect("tempdir");
            assemble_fixture(v, tmp.path());
            for f in [
                "main.py",
                "manifest.yaml",
                "provider/echo.yaml",
                "provider/echo.py",
                "tools/echo.yaml",
                "tools/echo.py",
                "_assets/icon.svg",
                ".difyignore",
            ] {
                assert!(tmp.path().join(f).is_file(), "{v:?}: missing {f}");
            }
            let manifest = fs::read_to_string(tmp.path().join("manifest.yaml")).expect("manifest");
            assert!(manifest.contains(&format!("version: \"{}\"", v.python_version())));
            match v {
                Variant::Sdk07 => {
                    assert!(tmp.path().join("requirements.txt").is_file());
                    assert!(!tmp.path().join("pyproject.toml").exists());
                }
                Variant::Latest => {
                    assert!(tmp.path().join("pyproject.toml").is_file());
                    assert!(tmp.path().join("uv.lock").is_file());
                    assert!(!tmp.path().join("requirements.txt").exists());
                }
            }
        }
    }

    #[test]
    fn pack_fixture_is_a_deterministic_zip_with_manifest() {
        for v in Variant::ALL {
            let a = pack_fixture(v);
            let b = pack_fixture(v);
            assert_eq!(a, b, "{v:?}: packing is not deterministic");
            let mut zip = zip::ZipArchive::new(Cursor::new(a)).expect("zip");
            let mut manifest = String::new();
            zip.by_name("manifest.yaml")
                .expect("manifest.yaml in package")
                .read_to_string(&mut manifest)
                .expect("read manifest");
            assert!(manifest.contains("author: plugind"));
            assert!(manifest.contains("name: echo"));
            let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
            assert!(names.iter().any(|n| n == "tools/echo.py"), "{names:?}");
            assert!(names.iter().any(|n| n == "_assets/icon.svg"), "{names:?}");
            assert!(
                !names.iter().any(|n| n.ends_with('/')),
                "dir entries: {names:?}"
            );
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted);
        }
    }

    #[test]
    fn packed_fixtures_decode_with_the_package_crate() {
        for v in Variant::ALL {
            let bytes = pack_fixture(v);
            let pkg = plugind_package::decode(&bytes, &plugind_package::DecodeOptions::default())
                .unwrap_or_else(|e| panic!("{v:?}: decode failed: {e}"));
            assert_eq!(pkg.uid.plugin_id(), ECHO_PLUGIN_ID);
            assert_eq!(pkg.uid.version(), "0.0.1");
            assert!(!pkg.verified, "fixtures are unsigned");
        }
        assert_ne!(
            pack_fixture(Variant::Sdk07),
            pack_fixture(Variant::Latest),
            "variants must have different checksums"
        );
    }

    #[test]
    fn kind_fixtures_decode_as_their_kind() {
        let decode = |bytes: Vec<u8>| {
            plugind_package::decode(&bytes, &plugind_package::DecodeOptions::default())
                .unwrap_or_else(|e| panic!("decode failed: {e}"))
        };
        for (kind, id) in [
            ("model", MODEL_PLUGIN_ID),
            ("tool", OAUTH_TOOL_PLUGIN_ID),
            ("agent", AGENT_PLUGIN_ID),
            ("trigger", TRIGGER_PLUGIN_ID),
        ] {
            assert_eq!(
                decode(pack_kind_fixture(kind)).uid.plugin_id(),
                id,
                "{kind}"
            );
        }
        for provider in DATASOURCE_PROVIDERS {
            let pkg = decode(pack_datasource_fixture(provider));
            assert_eq!(pkg.uid.plugin_id(), format!("plugind/{provider}"));
        }
        assert_eq!(pack_kind_fixture("model"), pack_kind_fixture("model"));
    }

    #[test]
    fn paths_point_to_existing_things() {
        assert!(fixture_root().join("echo").join("main.py").is_file());
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(upstream_fixture("x.difypkg").ends_with("shared/fixtures/upstream/x.difypkg"));
        assert!(test_cache_dir().join("uv").is_dir());
    }
}
