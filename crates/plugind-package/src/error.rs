//! The error type of the package crate. Texts follow upstream's wording where the reference
//! gives it, because they end up verbatim in API responses.

use plugind_entities::UidError;

/// Everything that can go wrong while reading, validating, extracting or packing a package.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The archive cannot be opened or an entry cannot be read; Go's text with `zip` → `difypkg`.
    #[error("{0}")]
    Archive(String),
    /// An entry name that is not a valid relative path (leading `/`, `.`/`..`, empty elements).
    #[error("open {0}: invalid argument")]
    InvalidEntryName(String),
    #[error("failed to read manifest.yaml: manifest.yaml not found")]
    ManifestNotFound,
    #[error("failed to unmarshal manifest.yaml: {0}")]
    ManifestParse(String),
    #[error("failed to parse created_at: {0}")]
    CreatedAt(String),
    /// A provider (or nested tool/strategy/model/...) file listed by the manifest is missing.
    #[error("failed to read {kind} file: {}", short(path))]
    ReadPluginFile { kind: &'static str, path: String },
    #[error("failed to unmarshal plugin file: {}", short(.0))]
    UnmarshalPluginFile(String),
    /// A nested file (tool, endpoint, agent strategy, datasource, event, model) does not parse.
    #[error("failed to unmarshal {kind} file: {}", short(path))]
    UnmarshalFile { kind: &'static str, path: String },
    /// A pricing value that is not a decimal or too long written out
    /// ([`crate::MAX_DECIMAL_DIGITS`]); `detail` is the YAML decoder's message.
    #[error("failed to unmarshal {kind} file: {}: {detail}", short(path))]
    BadPricing {
        kind: &'static str,
        path: String,
        detail: String,
    },
    /// A model position file named by a provider is missing.
    #[error("failed to read {kind} position file: {}", short(path))]
    ReadPositionFile { kind: &'static str, path: String },
    #[error("failed to unmarshal {kind} position file: {}", short(path))]
    UnmarshalPositionFile { kind: &'static str, path: String },
    /// `README.md` is missing (only when readmes are asked for).
    #[error("en_US readme not found")]
    ReadmeNotFound,
    #[error("author must be alphanumeric and less than 64 characters: ^[a-z0-9_-]{{1,64}}$")]
    InvalidAuthor,
    #[error(
        "plugin name must be alphanumeric and less than 128 characters: ^[a-z0-9_-]{{1,128}}$"
    )]
    InvalidName,
    #[error("cannot set author to an UUID")]
    AuthorIsUuid,
    /// Category exclusivity (PSC §1.6), joined like Go's `errors.Join`.
    #[error("{0}\nillegal plugin manifest")]
    IllegalManifest(String),
    #[error("plugin package size is too large, please ensure the uncompressed size is less than {0} bytes (raise MAX_PLUGIN_PACKAGE_SIZE to allow larger packages)")]
    TooLarge(u64),
    #[error(transparent)]
    InvalidUid(#[from] UidError),
    #[error("file not found: {0}")]
    FileNotFound(String),
    #[error("illegal file path in plugin package: {0:?}")]
    IllegalPath(String),
    #[error("failed to decode PEM block containing public key")]
    PublicKeyPem,
    #[error("extra data included in the PEM block")]
    PublicKeyExtraData,
    #[error("failed to parse public key: {0}")]
    PublicKey(String),
    // --- signing, keys and bundles (sign.rs, keys.rs, bundle.rs) ---
    #[error("failed to decode PEM block containing private key")]
    PrivateKeyPem,
    #[error("failed to parse private key: {0}")]
    PrivateKey(String),
    #[error("failed to generate key pair: {0}")]
    GenerateKey(String),
    #[error("failed to encode key: {0}")]
    EncodeKey(String),
    #[error("failed to sign plugin: {0}")]
    Sign(String),
    /// Go's `errors.Join(err, "failed to decode bundle")`.
    #[error("{0}\nfailed to decode bundle")]
    DecodeBundle(String),
    #[error("{0}\nfailed to load bundle manifest")]
    BundleManifest(String),
    #[error("invalid github repo pattern: {0:?}")]
    InvalidGithubPattern(String),
    #[error("invalid marketplace pattern: {0:?}")]
    InvalidMarketplacePattern(String),
    #[error("invalid version: {0:?}")]
    InvalidVersion(String),
    #[error("dependency index {index} out of bounds ({len} dependencies)")]
    DependencyIndex { index: usize, len: usize },
    #[error("{0}\nplease provide a valid difypkg file")]
    InvalidPackage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl PackageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<zip::result::ZipError> for PackageError {
    fn from(e: zip::result::ZipError) -> Self {
        use zip::result::ZipError;
        let text = match e {
            // Go: `zip: not a valid zip file`.
            ZipError::InvalidArchive(_) => "zip: not a valid zip file".to_owned(),
            ZipError::UnsupportedArchive(_) => "zip: unsupported compression algorithm".to_owned(),
            ZipError::FileNotFound => "file does not exist".to_owned(),
            ZipError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                "zip: not a valid zip file".to_owned()
            }
            other => format!("zip: {other}"),
        };
        Self::Archive(text.replace("zip", "difypkg").replace("Zip", "difypkg"))
    }
}

/// A path taken from package YAML, cut to 256 bytes for error texts (a package can name an
/// arbitrarily long path; the error must stay readable).
fn short(path: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 256;
    if path.len() <= MAX {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut end = MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}... ({} bytes)", &path[..end], path.len()))
}
