//! `plugin package <dir>`: generate `requirements.txt` from `uv.lock` if needed, pack, check
//! the size, validate the result the way the daemon's upload does plus stricter manifest checks,
//! and write `<basename>.difypkg`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;
use plugind_package::{DecodeOptions, Package};
use serde_json::Value;

use super::source;

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Plugin source directory.
    pub path: PathBuf,
    /// Output file (default: ./<directory name>.difypkg).
    #[arg(short = 'o', long = "output_path", visible_alias = "output-path")]
    pub output_path: Option<PathBuf>,
    /// Largest allowed sum of the packaged files' sizes, in MB (values <= 0 mean 50).
    #[arg(long = "max-size", default_value_t = 50, allow_negative_numbers = true)]
    pub max_size: i64,
}

pub fn run(args: PackageArgs) -> anyhow::Result<()> {
    let dir = &args.path;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let base = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "/")
        .ok_or_else(|| anyhow::anyhow!("cannot name a package after {}", dir.display()))?;
    let output = args
        .output_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{base}.difypkg")));
    let max_mb = if args.max_size <= 0 {
        50
    } else {
        args.max_size
    } as u64;
    let max_bytes = max_mb * 1024 * 1024;

    eprintln!("packing {}", dir.display());
    let mut bytes =
        plugind_package::pack_dir(dir).with_context(|| format!("cannot pack {}", dir.display()))?;
    if let Some(requirements) = generated_requirements(dir, &bytes)? {
        bytes = source::insert_entry(&bytes, "requirements.txt", &requirements)?;
    }

    check_size(&bytes, max_bytes, max_mb)?;
    let pkg = plugind_package::decode(
        &bytes,
        &DecodeOptions {
            max_uncompressed_size: max_bytes,
            ..DecodeOptions::default()
        },
    )
    .context("invalid plugin")?;
    let mut problems = strict_checks(&pkg);
    if let Err(more) = plugind_package::validate_declaration(&pkg.declaration) {
        problems.extend(more);
    }
    if !problems.is_empty() {
        bail!("invalid plugin manifest:\n  - {}", problems.join("\n  - "));
    }

    std::fs::write(&output, &bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "plugin packaged successfully: {} ({} bytes, {})",
        output.display(),
        bytes.len(),
        pkg.uid
    );
    println!("{}", output.display());
    Ok(())
}

/// `uv export` output when the runner is Python, there is no `requirements.txt` but both
/// `pyproject.toml` and `uv.lock` are packaged.
fn generated_requirements(dir: &Path, bytes: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let names: Vec<String> = source::entries(bytes)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    if has("requirements.txt") || !has("pyproject.toml") || !has("uv.lock") {
        return Ok(None);
    }
    let manifest = source::read_entry(bytes, "manifest.yaml")?.unwrap_or_default();
    let manifest: Value = serde_norway::from_slice(&manifest).unwrap_or(Value::Null);
    let language = manifest
        .pointer("/meta/runner/language")
        .and_then(Value::as_str)
        .unwrap_or("python");
    if !language.eq_ignore_ascii_case("python") {
        return Ok(None);
    }
    let uv = std::env::var_os("UV_PATH")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("uv"));
    eprintln!(
        "generating requirements.txt from uv.lock with {}",
        uv.display()
    );
    let export = |no_dev: bool| {
        let mut cmd = Command::new(&uv);
        cmd.args(["export", "--frozen", "--format", "requirements.txt"]);
        if no_dev {
            cmd.args(["--no-group", "dev"]);
        }
        cmd.args([
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
        ])
        .current_dir(dir)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (set UV_PATH or put uv on PATH)",
                uv.display()
            )
        })
    };
    let mut out = export(true)?;
    // Newer uv refuses `--no-group dev` when the project defines no `dev` group: nothing to
    // leave out then, so export again without it.
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is not defined") {
        out = export(false)?;
    }
    if !out.status.success() {
        bail!(
            "uv export failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(Some(out.stdout))
}

fn check_size(bytes: &[u8], max_bytes: u64, max_mb: u64) -> anyhow::Result<()> {
    let mut files = source::entries(bytes)?;
    let total: u64 = files.iter().map(|(_, s)| *s).sum();
    if total <= max_bytes {
        return Ok(());
    }
    files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let largest: Vec<String> = files
        .iter()
        .take(5)
        .map(|(n, s)| format!("  {n}: {:.2} MB", *s as f64 / 1_048_576.0))
        .collect();
    bail!(
        "plugin package size is too large: {:.2} MB of files, the limit is {max_mb} MB (--max-size).\n\
         The largest files:\n{}\n\
         Exclude what the plugin does not need at run time in .difyignore.",
        total as f64 / 1_048_576.0,
        largest.join("\n")
    )
}

/// Manifest checks beyond the upload path (PSC §1.2.3 level 2 subset, §1.11 asset pre-check).
fn strict_checks(pkg: &Package) -> Vec<String> {
    let d = &pkg.declaration;
    let mut problems = Vec::new();
    if !plugind_entities::naming::is_manifest_version(&d.version) {
        problems.push(format!("version {:?} is not like 0.0.1", d.version));
    }
    if d.kind != "plugin" {
        problems.push(format!("type must be \"plugin\", not {:?}", d.kind));
    }
    if d.label.en_us.trim().is_empty() {
        problems.push("label.en_US is required".into());
    }
    if d.description.en_us.trim().is_empty() {
        problems.push("description.en_US is required".into());
    }
    if d.icon.trim().is_empty() {
        problems.push("icon is required".into());
    }
    if d.resource.memory <= 0 {
        problems.push("resource.memory must be a positive number of bytes".into());
    }
    let runner = &d.meta.runner;
    if !runner.language.eq_ignore_ascii_case("python") {
        problems.push(format!(
            "meta.runner.language must be python, not {:?}",
            runner.language
        ));
    }
    if runner.version.trim().is_empty() {
        problems.push("meta.runner.version is required".into());
    }
    if runner.entrypoint.trim().is_empty() {
        problems.push("meta.runner.entrypoint is required".into());
    }
    if d.meta.version.trim().is_empty() {
        problems.push("meta.version is required".into());
    }
    if d.meta.arch.is_empty() {
        problems.push("meta.arch must list at least one architecture".into());
    }
    // The assets the SDK and Dify need.
    let asset = |name: &str| pkg.assets.contains_key(name);
    let mut need = |what: &str, name: &str| {
        if !name.is_empty() && !asset(name) {
            problems.push(format!("{what} {name} not found in _assets/"));
        }
    };
    need("plugin icon", &d.icon);
    need("plugin dark icon", &d.icon_dark);
    for (what, provider) in [
        ("tool provider icon", &d.tool),
        ("trigger provider icon", &d.trigger),
        ("datasource provider icon", &d.datasource),
    ] {
        if let Some(p) = provider {
            need(
                what,
                p.pointer("/identity/icon")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            );
        }
    }
    if let Some(m) = &d.model {
        for key in ["icon_small", "icon_large"] {
            if let Some(Value::Object(i18n)) = m.get(key) {
                for (lang, v) in i18n {
                    need(&format!("model {key} {lang}"), v.as_str().unwrap_or(""));
                }
            }
        }
    }
    problems
}
