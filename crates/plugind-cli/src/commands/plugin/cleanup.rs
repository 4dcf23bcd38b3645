//! `plugin cleanup -p <working path>`: keep the newest version of every `author/name` under a
//! plugin working path, delete the other working directories (only inside the path).
//!
//! With `--db`, the daemon's database (same settings as `dify migrate`) is consulted first and a
//! directory whose uid is still installed (a `plugins` row exists) is kept. Database rows are
//! never deleted: plugind-store has no API for removing a plugin's rows outside an uninstall.

use std::cmp::Ordering;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use plugind_entities::naming;
use serde_json::Value;

use crate::commands::migrate::DbArgs;

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Plugin working path (PLUGIN_WORKING_PATH), e.g. plugind-data/cwd.
    #[arg(short = 'p', long = "path")]
    pub path: PathBuf,
    /// Only list what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Keep directories whose plugin is still installed according to the daemon's database.
    #[arg(long)]
    pub db: bool,
    #[command(flatten)]
    pub db_args: DbArgs,
}

#[derive(Debug, Clone)]
struct WorkDir {
    dir: PathBuf,
    plugin_id: String,
    version: String,
    uid: String,
}

pub fn run(args: CleanupArgs) -> anyhow::Result<()> {
    let root = args
        .path
        .canonicalize()
        .with_context(|| format!("cannot open {}", args.path.display()))?;
    if !root.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let found = scan(&root)?;
    eprintln!("found {} plugin working directories", found.len());

    let mut by_plugin: std::collections::BTreeMap<String, Vec<WorkDir>> = Default::default();
    for w in found {
        by_plugin.entry(w.plugin_id.clone()).or_default().push(w);
    }
    let mut delete = Vec::new();
    for (plugin, dirs) in &by_plugin {
        let Some(top) = dirs
            .iter()
            .map(|d| d.version.as_str())
            .max_by(|a, b| compare_versions(a, b))
        else {
            continue;
        };
        eprintln!("{plugin}: keeping version {top}");
        delete.extend(
            dirs.iter()
                .filter(|d| compare_versions(&d.version, top) != Ordering::Equal)
                .cloned(),
        );
    }

    if args.db && !delete.is_empty() {
        let cfg = args.db_args.config()?;
        let rt = tokio::runtime::Runtime::new()?;
        let installed: Vec<bool> = rt.block_on(async {
            let db = plugind_store::Db::connect(&cfg)
                .await
                .with_context(|| format!("cannot connect to {}", cfg.describe()))?;
            let mut out = Vec::new();
            for w in &delete {
                out.push(db.plugin_exists(&w.uid).await.with_context(|| {
                    format!(
                        "cannot read the installed plugins from {} (has the daemon or `dify migrate` run on it?)",
                        cfg.describe()
                    )
                })?);
            }
            db.close().await;
            anyhow::Ok(out)
        })?;
        let mut kept = Vec::new();
        for (w, inst) in delete.into_iter().zip(installed) {
            if inst {
                eprintln!("keeping {} : {} is still installed", w.dir.display(), w.uid);
            } else {
                kept.push(w);
            }
        }
        delete = kept;
    }

    if delete.is_empty() {
        eprintln!("nothing to delete");
        return Ok(());
    }
    for w in &delete {
        println!("{}", w.dir.display());
    }
    if args.dry_run {
        eprintln!("dry run: {} directories would be deleted", delete.len());
        return Ok(());
    }
    if !args.yes && !confirm(delete.len())? {
        bail!("aborted");
    }
    let mut failed = 0;
    for w in &delete {
        // Never follow anything out of the working path.
        let inside =
            w.dir.starts_with(&root) && std::fs::symlink_metadata(&w.dir).is_ok_and(|m| m.is_dir());
        if !inside {
            eprintln!(
                "skipping {}: not a directory inside {}",
                w.dir.display(),
                root.display()
            );
            failed += 1;
            continue;
        }
        match std::fs::remove_dir_all(&w.dir) {
            Ok(()) => eprintln!("deleted {}", w.dir.display()),
            Err(e) => {
                eprintln!("cannot delete {}: {e}", w.dir.display());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} directories could not be deleted");
    }
    Ok(())
}

fn confirm(n: usize) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("refusing to delete {n} directories without confirmation: pass -y/--yes");
    }
    eprint!("delete these {n} directories? [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES"))
}

/// `<root>/<author>/<name>-<version>@<checksum>` (two levels, no symlinks followed).
fn scan(root: &Path) -> anyhow::Result<Vec<WorkDir>> {
    let mut out = Vec::new();
    for author in std::fs::read_dir(root)? {
        let author = author?;
        if !author.file_type()?.is_dir() {
            continue;
        }
        let author_name = author.file_name().to_string_lossy().into_owned();
        if author_name.starts_with('.') {
            continue; // .uv-cache and temporary directories
        }
        for entry in std::fs::read_dir(author.path())? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let dir_name = entry.file_name().to_string_lossy().into_owned();
            if dir_name.starts_with('.') {
                continue;
            }
            let parsed = parse_dir_name(&dir_name).or_else(|| from_manifest(&entry.path()));
            match parsed {
                Some((name, version, checksum)) => out.push(WorkDir {
                    dir: entry.path(),
                    plugin_id: format!("{author_name}/{name}"),
                    uid: format!("{author_name}/{name}:{version}@{checksum}"),
                    version,
                }),
                None => eprintln!(
                    "skipping {}: not a plugin working directory",
                    entry.path().display()
                ),
            }
        }
    }
    Ok(out)
}

/// `name-version@checksum` → parts; the version is the shortest valid tail after a `-`.
fn parse_dir_name(s: &str) -> Option<(String, String, String)> {
    let (left, checksum) = s.rsplit_once('@')?;
    if !naming::is_checksum(checksum) {
        return None;
    }
    for (i, _) in left.match_indices('-') {
        let (name, version) = (&left[..i], &left[i + 1..]);
        if naming::is_id_name(name) && naming::is_id_version(version) {
            return Some((name.to_owned(), version.to_owned(), checksum.to_owned()));
        }
    }
    None
}

/// Falls back to the directory's manifest (checksum unknown → the directory name).
fn from_manifest(dir: &Path) -> Option<(String, String, String)> {
    let text = std::fs::read(dir.join("manifest.yaml")).ok()?;
    let v: Value = serde_norway::from_slice(&text).ok()?;
    let name = v.get("name")?.as_str()?.to_owned();
    let version = match v.get("version")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let checksum = dir
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .rsplit('@')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    Some((name, version, checksum))
}

/// Numeric parts first; a version without suffix beats one with; suffixes compare as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (Vec<u64>, Option<String>) {
        let (core, suffix) = match v.split_once('-') {
            Some((c, s)) => (c.to_owned(), Some(s.to_owned())),
            None => (v.to_owned(), None),
        };
        (
            core.split('.').map(|p| p.parse().unwrap_or(0)).collect(),
            suffix,
        )
    };
    let (na, sa) = split(a);
    let (nb, sb) = split(b);
    let len = na.len().max(nb.len());
    for i in 0..len {
        let (x, y) = (
            na.get(i).copied().unwrap_or(0),
            nb.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    match (sa, sb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_and_versions() {
        let c = "a".repeat(64);
        assert_eq!(
            parse_dir_name(&format!("my-tool-1.2.3@{c}")),
            Some(("my-tool".into(), "1.2.3".into(), c.clone()))
        );
        assert_eq!(
            parse_dir_name(&format!("x-0.0.1-beta@{c}")),
            Some(("x".into(), "0.0.1-beta".into(), c.clone()))
        );
        assert!(parse_dir_name("x-0.0.1").is_none());
        assert_eq!(compare_versions("0.0.10", "0.0.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.0.0", "1.0.0-rc1"), Ordering::Greater);
        assert_eq!(compare_versions("1.0.0-b", "1.0.0-a"), Ordering::Greater);
        assert_eq!(compare_versions("1.0", "1.0.0"), Ordering::Equal);
    }
}
