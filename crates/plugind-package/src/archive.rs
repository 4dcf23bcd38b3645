//! A read-only view of a `.difypkg` zip: entries in zip order, lookup by exact name (first match
//! wins, like Go's zip filesystem view) and size-capped reads.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use crate::error::PackageError;

/// One opened package.
pub(crate) struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
}

impl<'a> Archive<'a> {
    pub(crate) fn open(bytes: &'a [u8]) -> Result<Self, PackageError> {
        Ok(Self { zip: ZipArchive::new(Cursor::new(bytes))? })
    }

    /// Entry names in zip order (including directory entries).
    pub(crate) fn names(&self) -> Vec<String> {
        (0..self.zip.len()).filter_map(|i| self.zip.name_for_index(i).map(str::to_owned)).collect()
    }

    /// The raw zip comment.
    pub(crate) fn comment(&self) -> &[u8] {
        self.zip.comment()
    }

    /// Sum of the declared uncompressed sizes of all entries.
    pub(crate) fn total_uncompressed(&mut self) -> Result<u64, PackageError> {
        let mut total: u64 = 0;
        for i in 0..self.zip.len() {
            let f = self.zip.by_index_raw(i)?;
            total = total.saturating_add(f.size());
        }
        Ok(total)
    }

    /// Reads entry `i`; the content may not exceed its declared size.
    pub(crate) fn read_index(&mut self, i: usize) -> Result<Vec<u8>, PackageError> {
        let file = self.zip.by_index(i)?;
        let declared = file.size();
        let name = file.name().to_owned();
        let mut buf = Vec::with_capacity(usize::try_from(declared.min(1 << 24)).unwrap_or(0));
        file.take(declared.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| PackageError::Archive(format!("difypkg: failed to read {name}: {e}")))?;
        if buf.len() as u64 > declared {
            return Err(PackageError::Archive(format!("difypkg: {name}: uncompressed size mismatch")));
        }
        Ok(buf)
    }

    /// Index of the first file entry named exactly `name`.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        if !valid_path(name) {
            return None;
        }
        (0..self.zip.len()).find(|&i| self.zip.name_for_index(i) == Some(name))
    }

    /// Reads the first entry named `name`, `None` when absent.
    pub(crate) fn read_name(&mut self, name: &str) -> Result<Option<Vec<u8>>, PackageError> {
        match self.index_of(name) {
            Some(i) => self.read_index(i).map(Some),
            None => Ok(None),
        }
    }
}

/// Go's `fs.ValidPath`: unrooted, `/`-separated, no empty, `.` or `..` elements.
pub(crate) fn valid_path(name: &str) -> bool {
    if name == "." {
        return true;
    }
    !name.is_empty() && name.split('/').all(|el| !el.is_empty() && el != "." && el != "..")
}

/// True for explicit directory entries (`foo/`).
pub(crate) fn is_dir_entry(name: &str) -> bool {
    name.ends_with('/')
}
