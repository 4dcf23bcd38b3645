//! Bundles (PSC Part 3): a zip (`.difybndl`) or a directory holding `manifest.yaml`, `_assets/…`
//! (the icon and the embedded `.difypkg` files of `package` dependencies) and root `README*`
//! files.
//!
//! The manifest is read leniently, like upstream's daemon: no field validation, missing fields
//! empty, unknown dependency types kept as [`Dependency::Unknown`] (with a null value) so that
//! indices and saving match upstream; consumers skip them. Patterns are validated only when a
//! dependency is appended.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use plugind_entities::{naming, I18nObject};
use regex::Regex;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::archive::{is_dir_entry, valid_path, Archive};
use crate::decode::{decode, DecodeOptions};
use crate::error::PackageError;

/// The bundle manifest's file name, at the root.
pub const BUNDLE_MANIFEST_FILE: &str = "manifest.yaml";
/// The folder (zip prefix) of the bundle's assets.
pub const BUNDLE_ASSETS_DIR: &str = "_assets";

/// `VERSION` of PSC §3.1: a manifest version.
const VERSION: &str = naming::MANIFEST_VERSION;
/// `X` of PSC §3.1.
const VERSION_X: &str = r"([0-9]{1,4}|[xX])";

#[allow(clippy::expect_used)]
static GITHUB_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        "^{}/{}:{}/[^/]+$",
        naming::AUTHOR,
        naming::MANIFEST_NAME,
        version_spec()
    ))
    .expect("static regex")
});
#[allow(clippy::expect_used)]
static MARKETPLACE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        "^{}/{}:{}$",
        naming::AUTHOR,
        naming::MANIFEST_NAME,
        version_spec()
    ))
    .expect("static regex")
});

/// `[~^]?VERSION | X(\.X){2} | VERSION-VERSION`.
fn version_spec() -> String {
    format!(r"([~^]?{VERSION}|{VERSION_X}(\.{VERSION_X}){{2}}|{VERSION}-{VERSION})")
}

/// True when `version` fits the manifest version regex `^\d{1,4}(\.\d{1,4}){2}(-\w{1,16})?$`.
pub fn is_valid_version(version: &str) -> bool {
    naming::is_manifest_version(version)
}

/// Checks a github dependency pattern (`owner/repo:<version spec>/<asset>`).
pub fn validate_github_pattern(pattern: &str) -> Result<(), PackageError> {
    if GITHUB_RE.is_match(pattern) {
        Ok(())
    } else {
        Err(PackageError::InvalidGithubPattern(pattern.to_owned()))
    }
}

/// Checks a marketplace dependency pattern (`organization/plugin:<version spec>`).
pub fn validate_marketplace_pattern(pattern: &str) -> Result<(), PackageError> {
    if MARKETPLACE_RE.is_match(pattern) {
        Ok(())
    } else {
        Err(PackageError::InvalidMarketplacePattern(pattern.to_owned()))
    }
}

/// Upstream's split of a pattern: on `:`, then each piece on `/`.
fn split_pattern(pattern: &str) -> Vec<&str> {
    pattern.split(':').flat_map(|s| s.split('/')).collect()
}

/// `type: github` — `value: {repo_pattern: owner/repo:1.0.0/plugin.difypkg}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubDependency {
    #[serde(default, deserialize_with = "scalar_string")]
    pub repo_pattern: String,
}

/// The parsed parts of a github pattern, in the shape the bundle upload answers with. Parts are
/// empty when the pattern has too few pieces (patterns are not validated on read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GithubParts {
    /// `https://github.com/<owner>/<repo>`.
    pub repo_address: String,
    /// `<owner>/<repo>`.
    pub repo: String,
    /// The version spec.
    pub release: String,
    /// The release asset name.
    pub packages: String,
}

impl GithubDependency {
    pub fn parts(&self) -> GithubParts {
        let split = split_pattern(&self.repo_pattern);
        if split.len() < 3 {
            return GithubParts::default();
        }
        GithubParts {
            repo_address: format!("https://github.com/{}/{}", split[0], split[1]),
            repo: format!("{}/{}", split[0], split[1]),
            release: split[2].to_owned(),
            packages: split.get(3).copied().unwrap_or_default().to_owned(),
        }
    }
}

/// `type: marketplace` — `value: {marketplace_pattern: langgenius/openai:^1.0.0}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketplaceDependency {
    #[serde(default, deserialize_with = "scalar_string")]
    pub marketplace_pattern: String,
}

/// The parsed parts of a marketplace pattern, in the shape the bundle upload answers with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MarketplaceParts {
    pub organization: String,
    pub plugin: String,
    pub version: String,
}

impl MarketplaceDependency {
    pub fn parts(&self) -> MarketplaceParts {
        let split = split_pattern(&self.marketplace_pattern);
        let part = |i: usize| split.get(i).copied().unwrap_or_default().to_owned();
        MarketplaceParts {
            organization: part(0),
            plugin: part(1),
            version: part(2),
        }
    }
}

/// `type: package` — `value: {path: <checksum>}`, the name of a file under `_assets/`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageDependency {
    #[serde(default, deserialize_with = "scalar_string")]
    pub path: String,
}

/// One entry of `dependencies`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dependency {
    Github(GithubDependency),
    Marketplace(MarketplaceDependency),
    Package(PackageDependency),
    /// A type upstream does not know; its value is dropped (written back as `null`).
    Unknown(String),
}

impl Dependency {
    /// The `type` text.
    pub fn kind(&self) -> &str {
        match self {
            Self::Github(_) => "github",
            Self::Marketplace(_) => "marketplace",
            Self::Package(_) => "package",
            Self::Unknown(kind) => kind,
        }
    }
}

impl Serialize for Dependency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", self.kind())?;
        match self {
            Self::Github(v) => map.serialize_entry("value", v)?,
            Self::Marketplace(v) => map.serialize_entry("value", v)?,
            Self::Package(v) => map.serialize_entry("value", v)?,
            Self::Unknown(_) => map.serialize_entry("value", &())?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type", default, deserialize_with = "scalar_string")]
            kind: String,
            #[serde(default)]
            value: serde_norway::Value,
        }
        fn value<T: Default + serde::de::DeserializeOwned, E: serde::de::Error>(
            v: serde_norway::Value,
        ) -> Result<T, E> {
            if v.is_null() {
                return Ok(T::default());
            }
            serde_norway::from_value(v).map_err(E::custom)
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(match raw.kind.as_str() {
            "github" => Self::Github(value(raw.value)?),
            "marketplace" => Self::Marketplace(value(raw.value)?),
            "package" => Self::Package(value(raw.value)?),
            _ => Self::Unknown(raw.kind),
        })
    }
}

/// The bundle's `manifest.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    #[serde(default, deserialize_with = "scalar_string")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: I18nObject,
    #[serde(default, deserialize_with = "nullable")]
    pub description: I18nObject,
    #[serde(default, deserialize_with = "scalar_string")]
    pub icon: String,
    #[serde(default, deserialize_with = "scalar_string")]
    pub version: String,
    #[serde(default, deserialize_with = "scalar_string")]
    pub author: String,
    #[serde(rename = "type", default, deserialize_with = "scalar_string")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dependencies: Vec<Dependency>,
    /// `[]` when absent.
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
}

impl BundleManifest {
    /// What `dify bundle init` writes: version `0.0.1`, icon `icon.svg`, labels and description in
    /// all four languages, no dependencies. `name` and `author` follow the plugin name/author
    /// regexes (the name becomes a directory).
    pub fn new(name: &str, author: &str, description: &str) -> Result<Self, PackageError> {
        if !naming::is_manifest_name(name) {
            return Err(PackageError::InvalidName);
        }
        if !naming::is_author(author) {
            return Err(PackageError::InvalidAuthor);
        }
        let all = |text: &str| I18nObject {
            en_us: text.to_owned(),
            zh_hans: text.to_owned(),
            ja_jp: text.to_owned(),
            pt_br: text.to_owned(),
        };
        Ok(Self {
            name: name.to_owned(),
            labels: all(name),
            description: all(description),
            icon: "icon.svg".to_owned(),
            version: "0.0.1".to_owned(),
            author: author.to_owned(),
            kind: "bundle".to_owned(),
            dependencies: Vec::new(),
            tags: Vec::new(),
        })
    }

    /// Parses `manifest.yaml` text leniently.
    pub fn from_yaml(bytes: &[u8]) -> Result<Self, PackageError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_norway::from_slice(bytes).map_err(|e| PackageError::BundleManifest(e.to_string()))
    }

    /// The YAML text written to `manifest.yaml`.
    pub fn to_yaml(&self) -> Result<String, PackageError> {
        serde_norway::to_string(self).map_err(|e| PackageError::BundleManifest(e.to_string()))
    }
}

/// A bundle in memory: its manifest, its assets (name under `_assets/` → bytes) and its extra
/// root files (the `README*` files, name → bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    pub manifest: BundleManifest,
    pub assets: BTreeMap<String, Vec<u8>>,
    pub extra_files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    pub fn new(manifest: BundleManifest) -> Self {
        Self {
            manifest,
            ..Self::default()
        }
    }

    /// Appends a github dependency after validating the pattern.
    pub fn append_github(&mut self, repo_pattern: &str) -> Result<(), PackageError> {
        validate_github_pattern(repo_pattern)?;
        self.manifest
            .dependencies
            .push(Dependency::Github(GithubDependency {
                repo_pattern: repo_pattern.to_owned(),
            }));
        Ok(())
    }

    /// Appends a marketplace dependency after validating the pattern.
    pub fn append_marketplace(&mut self, marketplace_pattern: &str) -> Result<(), PackageError> {
        validate_marketplace_pattern(marketplace_pattern)?;
        self.manifest
            .dependencies
            .push(Dependency::Marketplace(MarketplaceDependency {
                marketplace_pattern: marketplace_pattern.to_owned(),
            }));
        Ok(())
    }

    /// Appends a package dependency: the `.difypkg` must decode; it is stored as the asset
    /// `<checksum>` and recorded as `{path: <checksum>}`. Returns the checksum.
    pub fn append_package(&mut self, package: Vec<u8>) -> Result<String, PackageError> {
        let opts = DecodeOptions {
            max_uncompressed_size: u64::MAX,
            public_keys: Vec::new(),
        };
        let decoded =
            decode(&package, &opts).map_err(|e| PackageError::InvalidPackage(e.to_string()))?;
        let checksum = decoded.checksum;
        self.assets.insert(checksum.clone(), package);
        self.manifest
            .dependencies
            .push(Dependency::Package(PackageDependency {
                path: checksum.clone(),
            }));
        Ok(checksum)
    }

    /// Removes dependency `index` (0-based); a package dependency's asset goes with it.
    pub fn remove(&mut self, index: usize) -> Result<Dependency, PackageError> {
        let len = self.manifest.dependencies.len();
        if index >= len {
            return Err(PackageError::DependencyIndex { index, len });
        }
        let removed = self.manifest.dependencies.remove(index);
        if let Dependency::Package(dep) = &removed {
            self.assets.remove(&dep.path);
        }
        Ok(removed)
    }

    /// Sets the bundle version (must fit the version regex).
    pub fn bump_version(&mut self, version: &str) -> Result<(), PackageError> {
        if !is_valid_version(version) {
            return Err(PackageError::InvalidVersion(version.to_owned()));
        }
        self.manifest.version = version.to_owned();
        Ok(())
    }

    /// The asset at `path` (relative to `_assets/`).
    pub fn asset(&self, path: &str) -> Option<&[u8]> {
        self.assets.get(path).map(Vec::as_slice)
    }
}

/// Reads a bundle zip: `manifest.yaml`, every `_assets/` file, every root entry whose name starts
/// with `README`.
pub fn decode_bundle(bytes: &[u8]) -> Result<Bundle, PackageError> {
    let mut archive =
        Archive::open(bytes).map_err(|e| PackageError::DecodeBundle(e.to_string()))?;
    let manifest = archive
        .read_name(BUNDLE_MANIFEST_FILE)
        .map_err(|e| PackageError::DecodeBundle(e.to_string()))?
        .ok_or_else(|| {
            PackageError::DecodeBundle(format!("open {BUNDLE_MANIFEST_FILE}: file does not exist"))
        })?;
    let mut bundle = Bundle::new(BundleManifest::from_yaml(&manifest)?);
    let prefix = format!("{BUNDLE_ASSETS_DIR}/");
    for (i, name) in archive.names().into_iter().enumerate() {
        if is_dir_entry(&name) {
            continue;
        }
        let asset = name.strip_prefix(&prefix);
        let extra = name.starts_with("README");
        if asset.is_none() && !extra {
            continue;
        }
        if !valid_path(&name) {
            return Err(PackageError::DecodeBundle(format!(
                "open {name}: invalid argument"
            )));
        }
        let content = archive
            .read_index(i)
            .map_err(|e| PackageError::DecodeBundle(e.to_string()))?;
        match asset {
            Some(asset) => {
                bundle.assets.insert(asset.to_owned(), content);
            }
            None => {
                bundle.extra_files.insert(name, content);
            }
        }
    }
    Ok(bundle)
}

/// Writes a bundle zip: `manifest.yaml`, then `_assets/<name>` for every asset (name order), then
/// the extra files. Deflate.
pub fn encode_bundle(bundle: &Bundle) -> Result<Vec<u8>, PackageError> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut put = |name: &str, content: &[u8]| -> Result<(), PackageError> {
        if !valid_path(name) {
            return Err(PackageError::InvalidEntryName(name.to_owned()));
        }
        writer
            .start_file(name, options)
            .map_err(PackageError::from)?;
        writer
            .write_all(content)
            .map_err(|e| PackageError::io(name.to_owned(), e))
    };
    put(BUNDLE_MANIFEST_FILE, bundle.manifest.to_yaml()?.as_bytes())?;
    for (name, content) in &bundle.assets {
        put(&format!("{BUNDLE_ASSETS_DIR}/{name}"), content)?;
    }
    for (name, content) in &bundle.extra_files {
        put(name, content)?;
    }
    let cursor = writer.finish().map_err(PackageError::from)?;
    Ok(cursor.into_inner())
}

/// Reads a bundle directory: `manifest.yaml`, the files under `_assets/` (recursively; symlinks
/// skipped; a missing folder means no assets) and the root `README*` files.
pub fn load_bundle_dir(dir: &Path) -> Result<Bundle, PackageError> {
    let manifest_path = dir.join(BUNDLE_MANIFEST_FILE);
    let manifest = fs::read(&manifest_path).map_err(|e| {
        PackageError::DecodeBundle(format!("open {}: {e}", manifest_path.display()))
    })?;
    let mut bundle = Bundle::new(BundleManifest::from_yaml(&manifest)?);

    let entries = fs::read_dir(dir).map_err(|e| PackageError::io(dir.display().to_string(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PackageError::io(dir.display().to_string(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && name.starts_with("README") {
            let content = fs::read(entry.path())
                .map_err(|e| PackageError::io(entry.path().display().to_string(), e))?;
            bundle.extra_files.insert(name, content);
        }
    }

    let assets_dir = dir.join(BUNDLE_ASSETS_DIR);
    if assets_dir.is_dir() {
        let mut files = Vec::new();
        walk_files(&assets_dir, "", &mut files)?;
        for rel in files {
            let path = assets_dir.join(&rel);
            let content =
                fs::read(&path).map_err(|e| PackageError::io(path.display().to_string(), e))?;
            bundle.assets.insert(rel, content);
        }
    }
    Ok(bundle)
}

/// Writes a bundle into `dir` (created when missing): every asset under `_assets/`, files under
/// `_assets/` that are no longer assets removed (a removed package dependency), the extra files,
/// and `manifest.yaml` last (written beside and renamed in).
pub fn save_bundle_dir(bundle: &Bundle, dir: &Path) -> Result<(), PackageError> {
    let assets_dir = dir.join(BUNDLE_ASSETS_DIR);
    fs::create_dir_all(&assets_dir)
        .map_err(|e| PackageError::io(assets_dir.display().to_string(), e))?;
    for (name, content) in &bundle.assets {
        if !valid_path(name) {
            return Err(PackageError::InvalidEntryName(name.clone()));
        }
        let path = assets_dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| PackageError::io(parent.display().to_string(), e))?;
        }
        fs::write(&path, content).map_err(|e| PackageError::io(path.display().to_string(), e))?;
    }
    let mut existing = Vec::new();
    walk_files(&assets_dir, "", &mut existing)?;
    for rel in existing {
        if !bundle.assets.contains_key(&rel) {
            let path = assets_dir.join(&rel);
            fs::remove_file(&path).map_err(|e| PackageError::io(path.display().to_string(), e))?;
        }
    }
    for (name, content) in &bundle.extra_files {
        if !valid_path(name) || name.contains('/') {
            return Err(PackageError::InvalidEntryName(name.clone()));
        }
        let path = dir.join(name);
        fs::write(&path, content).map_err(|e| PackageError::io(path.display().to_string(), e))?;
    }
    let manifest = dir.join(BUNDLE_MANIFEST_FILE);
    let temp = dir.join(format!(".{BUNDLE_MANIFEST_FILE}.tmp"));
    fs::write(&temp, bundle.manifest.to_yaml()?)
        .map_err(|e| PackageError::io(temp.display().to_string(), e))?;
    fs::rename(&temp, &manifest).map_err(|e| PackageError::io(manifest.display().to_string(), e))
}

/// `/`-separated relative paths of the regular files under `root/prefix`, sorted.
fn walk_files(root: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), PackageError> {
    let here: PathBuf = if prefix.is_empty() {
        root.to_path_buf()
    } else {
        root.join(prefix)
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(&here).map_err(|e| PackageError::io(here.display().to_string(), e))? {
        let entry = entry.map_err(|e| PackageError::io(here.display().to_string(), e))?;
        entries.push(entry);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry
            .file_type()
            .map_err(|e| PackageError::io(rel.clone(), e))?;
        if kind.is_dir() {
            walk_files(root, &rel, out)?;
        } else if kind.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// Deserializes a string field from any YAML scalar (Go reads `version: 1.0` as `"1.0"`); null →
/// empty.
fn scalar_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_norway::Value::deserialize(deserializer)? {
        serde_norway::Value::Null => Ok(String::new()),
        serde_norway::Value::String(s) => Ok(s),
        serde_norway::Value::Bool(b) => Ok(b.to_string()),
        serde_norway::Value::Number(n) => Ok(n.to_string()),
        other => Err(D::Error::custom(format!(
            "expected a string, found {}",
            kind_of(&other)
        ))),
    }
}

fn kind_of(value: &serde_norway::Value) -> &'static str {
    match value {
        serde_norway::Value::Sequence(_) => "a sequence",
        serde_norway::Value::Mapping(_) => "a mapping",
        serde_norway::Value::Tagged(_) => "a tagged value",
        _ => "a scalar",
    }
}

/// `null` → the default value.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
