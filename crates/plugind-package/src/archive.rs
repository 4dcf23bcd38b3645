//! A read-only view of a `.difypkg` zip: entries in zip order, lookup by exact name (first match
//! wins, like Go's zip filesystem view) and size-capped reads.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use crate::error::PackageError;

/// One opened package.
pub(crate) struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    /// Bytes `read_index` may still return; set on the first read (see [`READ_FACTOR`]).
    read_budget: Option<u64>,
}

/// One decode reads every entry a few times (checksum, signature, assets) plus the manifest and
/// the provider files it references; repeated references (`tools: [x.yaml, x.yaml, ...]`) must
/// not multiply a small package into unbounded memory. Reads are capped at this many times the
/// declared total, plus [`READ_SLACK`].
const READ_FACTOR: u64 = 8;
const READ_SLACK: u64 = 1 << 20;

impl<'a> Archive<'a> {
    pub(crate) fn open(bytes: &'a [u8]) -> Result<Self, PackageError> {
        let zip = ZipArchive::new(Cursor::new(bytes))?;
        // The zip crate folds entries with the same name into one; upstream would see (and hash)
        // both. Such packages are never produced by upstream tools, so refuse them.
        if eocd_entry_count(bytes).is_some_and(|n| n != zip.len()) {
            return Err(PackageError::Archive(
                "difypkg: duplicate file names in package".to_owned(),
            ));
        }
        Ok(Self {
            zip,
            read_budget: None,
        })
    }

    /// Entry names in zip order (including directory entries).
    pub(crate) fn names(&self) -> Vec<String> {
        (0..self.zip.len())
            .filter_map(|i| self.zip.name_for_index(i).map(str::to_owned))
            .collect()
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
        let budget = match self.read_budget {
            Some(b) => b,
            None => self
                .total_uncompressed()?
                .saturating_mul(READ_FACTOR)
                .saturating_add(READ_SLACK),
        };
        let file = self.zip.by_index(i)?;
        let declared = file.size();
        let name = file.name().to_owned();
        let mut buf = Vec::with_capacity(usize::try_from(declared.min(1 << 24)).unwrap_or(0));
        file.take(declared.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| PackageError::Archive(format!("difypkg: failed to read {name}: {e}")))?;
        if buf.len() as u64 > declared {
            return Err(PackageError::Archive(format!(
                "difypkg: {name}: uncompressed size mismatch"
            )));
        }
        let Some(left) = budget.checked_sub(buf.len() as u64) else {
            return Err(PackageError::Archive(
                "difypkg: package files are referenced too many times".to_owned(),
            ));
        };
        self.read_budget = Some(left);
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

/// Entry count of the end-of-central-directory record; `None` for zip64 or when not found.
fn eocd_entry_count(bytes: &[u8]) -> Option<usize> {
    const SIG: &[u8; 4] = b"PK\x05\x06";
    let lowest = bytes.len().saturating_sub(22 + usize::from(u16::MAX));
    let mut pos = bytes.len().checked_sub(22)?;
    loop {
        if &bytes[pos..pos + 4] == SIG {
            let comment_len = usize::from(u16::from_le_bytes([bytes[pos + 20], bytes[pos + 21]]));
            if pos + 22 + comment_len == bytes.len() {
                let total = u16::from_le_bytes([bytes[pos + 10], bytes[pos + 11]]);
                return (total != u16::MAX).then_some(usize::from(total));
            }
        }
        if pos == lowest {
            return None;
        }
        pos -= 1;
    }
}

/// Go's `fs.ValidPath`: unrooted, `/`-separated, no empty, `.` or `..` elements.
pub(crate) fn valid_path(name: &str) -> bool {
    if name == "." {
        return true;
    }
    !name.is_empty()
        && name
            .split('/')
            .all(|el| !el.is_empty() && el != "." && el != "..")
}

/// True for explicit directory entries (`foo/`).
pub(crate) fn is_dir_entry(name: &str) -> bool {
    name.ends_with('/')
}
