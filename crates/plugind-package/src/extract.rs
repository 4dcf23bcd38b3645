//! Extraction into a working directory (PSC §1.13). Every entry name is checked before anything
//! is written; files go into a fresh sibling temp directory that is renamed into place at the end,
//! so a failure leaves nothing behind. No symlink is ever created or followed inside the tree.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::archive::Archive;
use crate::error::PackageError;

/// One entry to write: zip index, cleaned relative path, directory flag.
struct Planned {
    index: usize,
    rel: PathBuf,
    is_dir: bool,
}

/// Extracts `bytes` into `dst`, which must be missing or an empty directory.
pub fn extract_to(bytes: &[u8], dst: &Path) -> Result<(), PackageError> {
    let mut archive = Archive::open(bytes)?;
    let plan = plan_entries(&archive.names())?;

    if let Ok(meta) = fs::symlink_metadata(dst) {
        let empty_dir = meta.is_dir()
            && fs::read_dir(dst)
                .map_err(|e| PackageError::io(dst.display().to_string(), e))?
                .next()
                .is_none();
        if !empty_dir {
            return Err(PackageError::io(
                dst.display().to_string(),
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "destination exists and is not an empty directory",
                ),
            ));
        }
    }
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| PackageError::io(parent.display().to_string(), e))?;
    let stem = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "extract".to_owned());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = parent.join(format!(".{stem}.extracting-{}-{nanos}", std::process::id()));
    make_dir(&tmp)?;

    let result = write_entries(&mut archive, &plan, &tmp).and_then(|()| {
        if fs::symlink_metadata(dst).is_ok() {
            fs::remove_dir(dst).map_err(|e| PackageError::io(dst.display().to_string(), e))?;
        }
        fs::rename(&tmp, dst).map_err(|e| PackageError::io(dst.display().to_string(), e))
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Validates every name; duplicates keep the first entry.
fn plan_entries(names: &[String]) -> Result<Vec<Planned>, PackageError> {
    let mut seen = HashSet::new();
    let mut plan = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let rel = safe_relative(name).ok_or_else(|| PackageError::IllegalPath(name.clone()))?;
        if rel.as_os_str().is_empty() || !seen.insert(rel.clone()) {
            continue;
        }
        plan.push(Planned {
            index,
            rel,
            is_dir: name.ends_with('/'),
        });
    }
    Ok(plan)
}

/// The entry name as a relative path, or `None` when it is absolute or climbs out with `..`.
fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return None;
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return None;
    }
    let mut rel = PathBuf::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return None,
            p => rel.push(p),
        }
    }
    Some(rel)
}

fn write_entries(
    archive: &mut Archive<'_>,
    plan: &[Planned],
    root: &Path,
) -> Result<(), PackageError> {
    for entry in plan {
        let target = root.join(&entry.rel);
        if entry.is_dir {
            make_dirs(root, &entry.rel)?;
            continue;
        }
        if let Some(parent) = entry.rel.parent() {
            make_dirs(root, parent)?;
        }
        let content = archive.read_index(entry.index)?;
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o644);
        }
        let mut file = opts
            .open(&target)
            .map_err(|e| PackageError::io(target.display().to_string(), e))?;
        file.write_all(&content)
            .map_err(|e| PackageError::io(target.display().to_string(), e))?;
    }
    Ok(())
}

/// Creates `root/rel` one component at a time, refusing anything that is not a real directory.
fn make_dirs(root: &Path, rel: &Path) -> Result<(), PackageError> {
    let mut current = root.to_path_buf();
    for part in rel.components() {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(PackageError::IllegalPath(rel.display().to_string())),
            Err(_) => make_dir(&current)?,
        }
    }
    Ok(())
}

fn make_dir(path: &Path) -> Result<(), PackageError> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o755);
    }
    builder
        .create(path)
        .map_err(|e| PackageError::io(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::safe_relative;

    #[test]
    fn escaping_names_are_refused() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "\\x", "C:/x", "a/.."] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
        assert_eq!(
            safe_relative("a//./b").expect("ok"),
            std::path::PathBuf::from("a/b")
        );
    }
}
