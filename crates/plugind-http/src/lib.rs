//! HTTP edge: upstream's routes, headers, envelope and SSE framing over [`plugind_service`].
//!
//! # Layout
//! - [`router`]: builds the axum `Router` (route table, fallbacks, layers).
//! - [`reply`]: the `{code,message,data}` envelope and error responses.
//! - [`auth`]: the `X-Api-Key` check on `/plugin/*`.
//! - [`health`], [`management`], [`endpoints`], [`dispatch`], [`assets`]: one module per upstream
//!   route group.
//! - [`hooks`]: the public endpoint hooks `/e/{hook_id}/…` (no API key): the request written
//!   out for the plugin, its answer streamed back.
//! - [`runtime`]: plugind's own operator routes: runtime statuses and lifecycle events (SSE).
//! - [`debugging`]: the remote-debugging key (when remote debugging is on).
//! - [`redirect`]: forwarding a dispatch to the cluster node that serves its plugin.
//! - [`body`]: lenient request-body and query decoding.
//! - [`metrics`]: `GET /metrics/` (and the 301 from `/metrics`) and per-request Prometheus metrics.
//! - [`tenant`]: the `{tenant_id}` path check for the whole `/plugin/{tenant_id}` group.
//! - [`serve`]: the server loop (connection limit, header timeout, graceful stop).
//!
//! **API boundary:** request/response shapes live here and in `plugind-entities`; services never
//! see axum types.

pub mod assets;
pub mod auth;
pub mod body;
pub mod debugging;
pub mod dispatch;
pub mod endpoints;
pub mod health;
pub mod hooks;
pub mod management;
pub mod metrics;
pub mod redirect;
pub mod reply;
pub mod router;
pub mod runtime;
pub mod serve;
pub mod serverless;
pub mod tenant;

pub use router::{router, AppState, HttpConfig};
pub use serve::{serve, Connections, ServeConfig};
