//! The `{tenant_id}` path segment of `/plugin/{tenant_id}/…`, checked once for the whole group.
//!
//! Dify's tenant ids are UUIDs (its `tenants.id`), and upstream stores them in `uuid` columns, so
//! anything else could never name a tenant: it is refused with HTTP 400 before any handler runs,
//! and nothing is stored for it (a task row for tenant `../../evil` was possible before).

use axum::extract::{RawPathParams, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::reply;

/// Middleware for the `/plugin/{tenant_id}` group: HTTP 400 `-400 PluginDaemonBadRequestError`
/// unless the segment is a hyphenated UUID.
pub async fn require_valid_tenant(params: RawPathParams, request: Request, next: Next) -> Response {
    let tenant = params
        .iter()
        .find_map(|(key, value)| (key == "tenant_id").then_some(value));
    match tenant {
        Some(tenant) if is_tenant_id(tenant) => next.run(request).await,
        _ => reply::bad_request("tenant_id is not valid: it must be a UUID"),
    }
}

/// A hyphenated UUID (`8-4-4-4-12` hex digits, any case), the form Dify sends.
pub fn is_tenant_id(value: &str) -> bool {
    value.len() == 36 && uuid::Uuid::try_parse(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::is_tenant_id;

    #[test]
    fn only_hyphenated_uuids_are_tenant_ids() {
        assert!(is_tenant_id("0f6a4c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"));
        assert!(is_tenant_id("7A7A7A7A-1111-4222-8333-944455556666"));
        for bad in [
            "",
            "../../evil",
            "tenant",
            "0f6a4c1e2b3d4e5f8a9b0c1d2e3f4a5b",
            "{0f6a4c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b}",
            "urn:uuid:0f6a4c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
            "0f6a4c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5g",
            "0f6a4c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b-",
        ] {
            assert!(!is_tenant_id(bad), "{bad:?}");
        }
    }
}
