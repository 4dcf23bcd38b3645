//! `decode`: the upload-path reading of a package (PSC §1.2.3 level 1) — open, size check,
//! manifest + providers, unique identifier, manifest checks, signature, assets.

use std::collections::BTreeMap;

use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use rsa::RsaPublicKey;

use crate::archive::Archive;
use crate::checksum::checksum_of;
use crate::error::PackageError;
use crate::signature::{self, official_public_key, Verification};
use crate::{assets, manifest, providers, validate};

/// Default `MAX_PLUGIN_PACKAGE_SIZE` (50 MiB).
pub const DEFAULT_MAX_UNCOMPRESSED_SIZE: u64 = 52_428_800;

/// Options of [`decode`].
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Limit on the sum of the entries' declared uncompressed sizes.
    pub max_uncompressed_size: u64,
    /// Extra third-party keys; the official key is always included.
    pub public_keys: Vec<RsaPublicKey>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_uncompressed_size: DEFAULT_MAX_UNCOMPRESSED_SIZE,
            public_keys: Vec::new(),
        }
    }
}

/// A decoded, validated package.
#[derive(Clone, Debug)]
pub struct Package {
    pub uid: PluginUniqueIdentifier,
    pub checksum: String,
    /// Manifest + provider declarations, defaults filled, `verified` set. Icons not remapped.
    pub declaration: PluginDeclaration,
    pub verified: bool,
    /// Verification file content; `{"authorized_category":"langgenius"}` for verified legacy
    /// packages; `None` when not verified.
    pub verification: Option<Verification>,
    /// `_assets/` entries, name without the prefix → bytes.
    pub assets: BTreeMap<String, Vec<u8>>,
}

/// Decodes and validates a `.difypkg`.
pub fn decode(bytes: &[u8], opts: &DecodeOptions) -> Result<Package, PackageError> {
    let mut archive = Archive::open(bytes)?;
    if archive.total_uncompressed()? > opts.max_uncompressed_size {
        return Err(PackageError::TooLarge(opts.max_uncompressed_size));
    }
    let mut declaration = read_declaration(&mut archive)?;

    let checksum = checksum_of(&mut archive)?;
    let uid = PluginUniqueIdentifier::build(
        &declaration.author,
        &declaration.name,
        &declaration.version,
        &checksum,
    )?;
    if uid.is_remote_like() {
        return Err(PackageError::AuthorIsUuid);
    }
    validate::check_identity(&declaration)?;
    validate::check_categories(&declaration)?;

    let mut keys = Vec::with_capacity(opts.public_keys.len() + 1);
    keys.push(official_public_key());
    keys.extend(opts.public_keys.iter().cloned());
    let verified = signature::verify(&mut archive, &keys);
    let verification = if verified {
        Some(signature::read_verification(&mut archive).unwrap_or_else(Verification::langgenius))
    } else {
        None
    };
    declaration.verified = verified;

    let assets = assets::collect_assets(&mut archive)?;
    Ok(Package {
        uid,
        checksum,
        declaration,
        verified,
        verification,
        assets,
    })
}

/// Manifest + providers + defaults, without any validation.
pub(crate) fn read_declaration(
    archive: &mut Archive<'_>,
) -> Result<PluginDeclaration, PackageError> {
    let manifest = archive
        .read_name("manifest.yaml")?
        .ok_or(PackageError::ManifestNotFound)?;
    let (mut declaration, inline) = manifest::parse_manifest_typed(&manifest)?;
    let mut typed = providers::load_providers(&declaration, inline, archive)?;
    typed.fill_defaults(&declaration);
    typed.store_into(&mut declaration);
    Ok(declaration)
}

/// Reads one file entry by exact name (first match), e.g. `README.md`.
pub fn read_file(bytes: &[u8], name: &str) -> Result<Vec<u8>, PackageError> {
    let mut archive = Archive::open(bytes)?;
    archive
        .read_name(name)?
        .ok_or_else(|| PackageError::FileNotFound(name.to_owned()))
}
