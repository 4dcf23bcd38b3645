//! Leaf crate: the `.difypkg` package format (PSC Part 1 and 2).
//!
//! Decoding and validating packages the way upstream's upload path does, the checksum and unique
//! identifier, RSA signature verification, asset ids and icon remapping, safe extraction into a
//! working directory, packing a plugin source directory, and the declarations a remote-debugging
//! plugin registers ([`remote`]). Synchronous, `std::io` only; no
//! input can make it panic.

mod archive;
mod assets;
mod bundle;
mod checksum;
pub mod declarations;
mod decode;
mod error;
mod extract;
mod glob;
mod ignore;
mod keys;
mod manifest;
mod pack;
mod providers;
mod readme;
pub mod remote;
mod sign;
mod signature;
mod strict;
mod validate;
mod yaml;

pub use assets::{asset_id, remap_icons};
pub use bundle::{
    decode_bundle, encode_bundle, is_valid_version, load_bundle_dir, save_bundle_dir,
    validate_github_pattern, validate_marketplace_pattern, Bundle, BundleManifest, Dependency,
    GithubDependency, GithubParts, MarketplaceDependency, MarketplaceParts, PackageDependency,
    BUNDLE_ASSETS_DIR, BUNDLE_MANIFEST_FILE,
};
pub use checksum::checksum;
pub use declarations::{Providers, MAX_DECIMAL_DIGITS, PLUGIN_TAGS};
pub use decode::{decode, read_file, DecodeOptions, Package, DEFAULT_MAX_UNCOMPRESSED_SIZE};
pub use error::PackageError;
pub use extract::extract_to;
pub use keys::{
    generate_key_pair, parse_private_key_pem, private_key_to_pem, public_key_to_pem,
    DEFAULT_KEY_BITS,
};
pub use pack::pack_dir;
pub use readme::readmes;
pub use sign::{
    authorized_verification, sign, verification_with, verify_with, AUTHORIZED_CATEGORIES,
};
pub use signature::{official_public_key, parse_public_key_pem, Verification, VERIFICATION_FILE};
pub use strict::validate_declaration;
