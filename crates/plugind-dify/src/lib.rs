//! The client of Dify's inner API (`<DIFY_INNER_API_URL>/inner/api/...`), plugin-protocol §4.4.
//!
//! # Layout
//! - [`client`]: [`InnerApi`], one shared HTTP client with the key, upstream's timeouts, and the
//!   two answer shapes (plain JSON, length-prefixed stream).
//! - [`frame`]: the length-prefixed frame decoder of Dify's streaming routes.
//! - [`route`]: which invoke type goes to which inner-API path, streamed or not.
//! - [`error`]: [`DifyError`], every way a call can fail.
//!
//! **Architecture invariant:** this crate knows Dify's wire, not plugins: it never sees a session
//! or a manifest; the service decides what may be called and fills in tenant and user.

pub mod client;
pub mod error;
pub mod frame;
pub mod route;

pub use client::{DifyStream, EncryptRequest, InnerApi, InnerApiConfig};
pub use error::DifyError;
pub use route::{InvokeType, Mode};
