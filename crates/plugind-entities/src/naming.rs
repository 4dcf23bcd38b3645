//! The author, name, version and checksum patterns of plugins (PSC §1.2, §1.10), written once.
//!
//! Ranges differ on purpose: a manifest names its plugin in at most 128 characters, while an
//! identifier (`author/name`, a unique identifier, a working directory) accepts 255; a manifest
//! version has three numbers, an identifier's two to four. The patterns follow Go's regexp:
//! `\d` and `\w` are ASCII only, spelled out here as `[0-9]` and `[0-9A-Za-z_]`.

use std::sync::LazyLock;

use regex::Regex;

/// `author` of a manifest or identifier.
pub const AUTHOR: &str = "[a-z0-9_-]{1,64}";
/// `name` of a manifest (and of a bundle).
pub const MANIFEST_NAME: &str = "[a-z0-9_-]{1,128}";
/// `name` inside an identifier (`author/name`, unique identifier).
pub const ID_NAME: &str = "[a-z0-9_-]{1,255}";
/// `version` of a manifest: three numbers and an optional suffix (`0.0.1`, `1.2.3-beta`).
pub const MANIFEST_VERSION: &str = r"[0-9]{1,4}(\.[0-9]{1,4}){2}(-[0-9A-Za-z_]{1,16})?";
/// `version` inside an identifier (and Dify's minimum version): two to four numbers.
pub const ID_VERSION: &str = r"[0-9]{1,4}(\.[0-9]{1,4}){1,3}(-[0-9A-Za-z_]{1,16})?";
/// A package checksum (hex SHA-256; shorter legacy forms are accepted).
pub const CHECKSUM: &str = "[a-f0-9]{32,64}";

#[allow(clippy::expect_used)]
fn whole(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("static regex")
}

static AUTHOR_RE: LazyLock<Regex> = LazyLock::new(|| whole(AUTHOR));
static MANIFEST_NAME_RE: LazyLock<Regex> = LazyLock::new(|| whole(MANIFEST_NAME));
static ID_NAME_RE: LazyLock<Regex> = LazyLock::new(|| whole(ID_NAME));
static MANIFEST_VERSION_RE: LazyLock<Regex> = LazyLock::new(|| whole(MANIFEST_VERSION));
static ID_VERSION_RE: LazyLock<Regex> = LazyLock::new(|| whole(ID_VERSION));
static CHECKSUM_RE: LazyLock<Regex> = LazyLock::new(|| whole(CHECKSUM));
static PLUGIN_ID_RE: LazyLock<Regex> = LazyLock::new(|| whole(&format!("{AUTHOR}/{ID_NAME}")));
static UNIQUE_IDENTIFIER_RE: LazyLock<Regex> =
    LazyLock::new(|| whole(&format!("(?:{AUTHOR}/)?{ID_NAME}:{ID_VERSION}@{CHECKSUM}")));

/// [`AUTHOR`], the whole string.
pub fn is_author(s: &str) -> bool {
    AUTHOR_RE.is_match(s)
}

/// [`MANIFEST_NAME`], the whole string.
pub fn is_manifest_name(s: &str) -> bool {
    MANIFEST_NAME_RE.is_match(s)
}

/// [`ID_NAME`], the whole string.
pub fn is_id_name(s: &str) -> bool {
    ID_NAME_RE.is_match(s)
}

/// [`MANIFEST_VERSION`], the whole string.
pub fn is_manifest_version(s: &str) -> bool {
    MANIFEST_VERSION_RE.is_match(s)
}

/// [`ID_VERSION`], the whole string.
pub fn is_id_version(s: &str) -> bool {
    ID_VERSION_RE.is_match(s)
}

/// [`CHECKSUM`], the whole string.
pub fn is_checksum(s: &str) -> bool {
    CHECKSUM_RE.is_match(s)
}

/// `author/name` (a plugin id).
pub fn is_plugin_id(s: &str) -> bool {
    PLUGIN_ID_RE.is_match(s)
}

/// `[author/]name:version@checksum` (a plugin unique identifier).
pub fn is_unique_identifier(s: &str) -> bool {
    UNIQUE_IDENTIFIER_RE.is_match(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_that_differ_on_purpose() {
        let n128 = "n".repeat(128);
        let n129 = "n".repeat(129);
        let n255 = "n".repeat(255);
        assert!(is_manifest_name(&n128) && !is_manifest_name(&n129));
        assert!(is_id_name(&n255) && !is_id_name(&"n".repeat(256)));
        assert!(is_author(&"a".repeat(64)) && !is_author(&"a".repeat(65)));
        assert!(!is_author("") && !is_manifest_name("") && !is_id_name(""));
        assert!(!is_author("Upper") && !is_manifest_name("has space") && !is_id_name("a/b"));

        assert!(is_manifest_version("0.0.1") && is_manifest_version("1.2.3-beta_2"));
        assert!(!is_manifest_version("1.2") && !is_manifest_version("1.2.3.4"));
        assert!(is_id_version("1.2") && is_id_version("1.2.3.4") && !is_id_version("1"));
        assert!(!is_id_version("1.2.3.4.5") && !is_manifest_version("1.2.3-"));
        assert!(!is_manifest_version(&format!("1.2.3-{}", "x".repeat(17))));
        // Go's `\d`/`\w` are ASCII: other scripts' digits and letters are no version.
        assert!(!is_manifest_version("١.٢.٣") && !is_id_version("1.2-é"));

        let sum = "a".repeat(64);
        assert!(is_checksum(&sum) && is_checksum(&"0".repeat(32)));
        assert!(!is_checksum(&"a".repeat(31)) && !is_checksum(&"A".repeat(64)));

        assert!(is_plugin_id(&format!("a/{n255}")) && !is_plugin_id("a/"));
        assert!(!is_plugin_id("name") && !is_plugin_id("a/b/c"));
        assert!(is_unique_identifier(&format!("a/b:0.0.1@{sum}")));
        assert!(is_unique_identifier(&format!("b:1.2@{sum}")));
        assert!(!is_unique_identifier(&format!("a/b:0.0.1@{sum}x")));
        assert!(!is_unique_identifier(&format!("a/b:0.0.1{sum}")));
    }
}
