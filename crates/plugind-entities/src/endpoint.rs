//! Endpoints (http-api §4.6): the entity the endpoint list routes answer, and what a setup
//! carries.

use serde::Serialize;
use serde_json::{Map, Value};

/// An endpoint as the list routes answer it; field order is upstream's.
#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub name: String,
    pub hook_id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub plugin_id: String,
    pub expired_at: chrono::DateTime<chrono::Utc>,
    pub enabled: bool,
    /// Decrypted, with `secret-input` values masked.
    pub settings: Map<String, Value>,
    /// The plugin's endpoint group declaration.
    pub declaration: Value,
}

/// What `POST …/endpoint/setup` carries.
#[derive(Debug)]
pub struct EndpointSetup<'a> {
    pub plugin_unique_identifier: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub settings: Map<String, Value>,
}
