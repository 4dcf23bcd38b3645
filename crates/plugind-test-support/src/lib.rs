//! Test helpers for plugind (never published):
//!
//! * [`fixtures`] — the echo fixture plugin in two SDK variants, assembling and packing it, and
//!   well-known paths ([`upstream_fixture`], [`test_cache_dir`]);
//! * [`signing`] — [`TestSigner`]: a key generated in the test, packages signed with it and the
//!   daemon settings that trust it;
//! * [`fake_dify`] — [`FakeDify`], a recording stand-in for Dify's inner API;
//! * [`daemon`] — [`Daemon`], the `plugind` binary run as a child process with a temporary state
//!   directory, plus [`create_pg_database`];
//! * [`client`] — [`Client`], HTTP calls shaped like the ones Dify's API server makes;
//! * [`flows`] — steps many tests share (install and wait, echo invoke bodies, answer texts);
//! * [`services`] — servers started on loopback for state-backend tests ([`S3Server`] on moto,
//!   [`RedisServer`]).

pub mod client;
pub mod daemon;
pub mod fake_dify;
pub mod fixtures;
pub mod flows;
pub mod services;
pub mod signing;

pub use client::{envelope_data, parse_sse_body, Client};
pub use daemon::{
    create_pg_database, daemon_bin, daemon_env, drop_pg_database, Daemon, DaemonOptions, DbChoice,
};
pub use fake_dify::{FakeAnswer, FakeDify, RecordedRequest};
pub use fixtures::{
    assemble_fixture, fixture_root, latest_manifest_as, pack_fixture, repo_root, test_cache_dir,
    upstream_fixture, Variant, BACKWARDS_TOOL, ECHO_BLOB_SIZE, ECHO_PLUGIN_ID, ECHO_PROVIDER,
    ECHO_TOOL, PROBE_TOOL,
};
pub use flows::{echo_invoke_body, tool_texts, INSTALL_TIMEOUT};
pub use services::{free_port, require_shared_redis, RedisServer, S3Server};
pub use signing::{pack_fixture_with, TestSigner};
