//! Packing a plugin source directory like upstream's packager: file entries only, sorted by path
//! in byte order, Deflate, honouring `.difyignore` (or `.gitignore`). Symlinks are skipped.

use std::fs;
use std::io::{Cursor, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::error::PackageError;
use crate::ignore::Ignore;

/// Packs `dir` into `.difypkg` bytes.
pub fn pack_dir(dir: &Path) -> Result<Vec<u8>, PackageError> {
    let ignore = Ignore::load(dir);
    let mut files = Vec::new();
    walk(dir, "", &ignore, &mut files)?;
    files.sort();

    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for rel in &files {
        let path = dir.join(rel);
        let content =
            fs::read(&path).map_err(|e| PackageError::io(path.display().to_string(), e))?;
        writer
            .start_file(rel.as_str(), options)
            .map_err(PackageError::from)?;
        writer
            .write_all(&content)
            .map_err(|e| PackageError::io(rel.clone(), e))?;
    }
    let cursor = writer.finish().map_err(PackageError::from)?;
    Ok(cursor.into_inner())
}

/// Collects the `/`-separated relative paths of the regular files under `dir/prefix`.
fn walk(
    root: &Path,
    prefix: &str,
    ignore: &Ignore,
    out: &mut Vec<String>,
) -> Result<(), PackageError> {
    let here = if prefix.is_empty() {
        root.to_path_buf()
    } else {
        root.join(prefix)
    };
    let entries =
        fs::read_dir(&here).map_err(|e| PackageError::io(here.display().to_string(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PackageError::io(here.display().to_string(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry
            .file_type()
            .map_err(|e| PackageError::io(rel.clone(), e))?;
        if kind.is_symlink() {
            continue;
        }
        if ignore.excluded(&rel, kind.is_dir()) {
            continue;
        }
        if kind.is_dir() {
            walk(root, &rel, ignore, out)?;
        } else if kind.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}
