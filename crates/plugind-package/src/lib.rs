//! Leaf crate: the `.difypkg` package format (PSC Part 1 and 2).
//!
//! Decoding and validating packages the way upstream's upload path does, the checksum and unique
//! identifier, RSA signature verification, asset ids and icon remapping, safe extraction into a
//! working directory, and packing a plugin source directory. Synchronous, `std::io` only; no
//! input can make it panic.

mod archive;
mod assets;
mod checksum;
mod decode;
mod error;
mod extract;
mod glob;
mod ignore;
mod manifest;
mod pack;
mod providers;
mod signature;
mod validate;
mod yaml;

pub use assets::{asset_id, remap_icons};
pub use checksum::checksum;
pub use decode::{decode, read_file, DecodeOptions, Package, DEFAULT_MAX_UNCOMPRESSED_SIZE};
pub use error::PackageError;
pub use extract::extract_to;
pub use pack::pack_dir;
pub use signature::{official_public_key, parse_public_key_pem, Verification, VERIFICATION_FILE};
