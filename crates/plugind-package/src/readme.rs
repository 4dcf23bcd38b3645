//! README and translated readmes (PSC §1.12).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::archive::Archive;
use crate::error::PackageError;

#[allow(clippy::expect_used)]
static README_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^README_([a-z]{2}_[A-Za-z]{2,})\.md$").expect("static regex"));

/// The readmes of a package by language: `README.md` is `en_US` (required: `en_US readme not
/// found`), every `readme/README_<lang>.md` directly in `readme/` is `<lang>`. Contents are read
/// as UTF-8 (invalid sequences replaced).
pub fn readmes(bytes: &[u8]) -> Result<BTreeMap<String, String>, PackageError> {
    let mut archive = Archive::open(bytes)?;
    let en = archive
        .read_name("README.md")
        .ok()
        .flatten()
        .ok_or(PackageError::ReadmeNotFound)?;
    let mut out = BTreeMap::new();
    out.insert(
        "en_US".to_owned(),
        String::from_utf8_lossy(&en).into_owned(),
    );
    for name in archive.names() {
        let Some(file) = name.strip_prefix("readme/") else {
            continue;
        };
        let Some(language) = README_RE.captures(file).and_then(|c| c.get(1)) else {
            continue;
        };
        let language = language.as_str().to_owned();
        let content = archive.read_name(&name)?.unwrap_or_default();
        out.insert(language, String::from_utf8_lossy(&content).into_owned());
    }
    Ok(out)
}
