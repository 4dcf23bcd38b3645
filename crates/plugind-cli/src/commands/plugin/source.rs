//! A plugin given as a source directory or a `.difypkg`: both become package bytes, so every
//! inspecting command reads one format. A directory is packed the way `plugin package` packs it
//! (walk honouring `.difyignore`, sorted), without any generated file.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use anyhow::{bail, Context};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Package bytes of a directory (packed in memory) or a package file.
pub fn load(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        plugind_package::pack_dir(path).with_context(|| format!("cannot pack {}", path.display()))
    } else if meta.is_file() {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    } else {
        bail!("{} is neither a directory nor a file", path.display())
    }
}

/// `(name, uncompressed size)` of every file entry.
pub fn entries(bytes: &[u8]) -> anyhow::Result<Vec<(String, u64)>> {
    let mut zip = ZipArchive::new(Cursor::new(bytes)).context("not a valid difypkg")?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let f = zip
            .by_index_raw(i)
            .context("cannot read the package index")?;
        if !f.is_dir() {
            out.push((f.name().to_owned(), f.size()));
        }
    }
    Ok(out)
}

/// Reads one entry, `None` when absent.
pub fn read_entry(bytes: &[u8], name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let mut zip = ZipArchive::new(Cursor::new(bytes)).context("not a valid difypkg")?;
    let Ok(mut f) = zip.by_name(name) else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .with_context(|| format!("cannot read {name}"))?;
    Ok(Some(buf))
}

/// Returns a copy of the package with one more file entry, keeping the entries sorted by name
/// (other entries are copied without recompression).
pub fn insert_entry(bytes: &[u8], name: &str, content: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut zip = ZipArchive::new(Cursor::new(bytes)).context("not a valid difypkg")?;
    let mut names: Vec<(String, usize)> = (0..zip.len())
        .map(|i| zip.by_index_raw(i).map(|f| (f.name().to_owned(), i)))
        .collect::<Result<_, _>>()?;
    if names.iter().any(|(n, _)| n == name) {
        bail!("{name} is already in the package");
    }
    names.sort();
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    let mut inserted = false;
    for (n, i) in names {
        if !inserted && n.as_bytes() > name.as_bytes() {
            out.start_file(name, options)?;
            out.write_all(content)?;
            inserted = true;
        }
        let f = zip.by_index_raw(i)?;
        out.raw_copy_file(f)?;
    }
    if !inserted {
        out.start_file(name, options)?;
        out.write_all(content)?;
    }
    Ok(out.finish()?.into_inner())
}
