//! OAuth, datasource and trigger answers (http-api §4.3.4).

use serde::{Deserialize, Serialize};

use super::wire::{or_zero, required, Map, Str};
use super::Check;

/// `{"authorization_url": string}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AuthorizationUrl<'a> {
    #[serde(default, borrow)]
    pub authorization_url: Str<'a>,
}

impl Check for AuthorizationUrl<'_> {}

/// `{"metadata"?, "credentials", "expires_at"}`: `metadata` omitted when empty.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct OAuthCredentials<'a> {
    #[serde(default, borrow, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<'a>,
    #[serde(default, borrow)]
    pub credentials: Map<'a>,
    #[serde(default, deserialize_with = "or_zero")]
    pub expires_at: i64,
}

impl Check for OAuthCredentials<'_> {}

/// `{"credentials", "expires_at"}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RefreshedCredentials<'a> {
    #[serde(default, borrow)]
    pub credentials: Map<'a>,
    #[serde(default, deserialize_with = "or_zero")]
    pub expires_at: i64,
}

impl Check for RefreshedCredentials<'_> {}

/// Website crawl: `{"result": object}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ObjectResult<'a> {
    #[serde(default, borrow)]
    pub result: Map<'a>,
}

impl Check for ObjectResult<'_> {}

/// Online document pages: `{"result": [object]}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ObjectListResult<'a> {
    #[serde(default, borrow)]
    pub result: Option<Vec<Map<'a>>>,
}

impl Check for ObjectListResult<'_> {}

/// Online drive browse: `{"result": [FileBucket]}` (required; elements decoded, not validated).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DriveBrowseResult<'a> {
    #[serde(default, borrow)]
    pub result: Option<Vec<FileBucket<'a>>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FileBucket<'a> {
    #[serde(default, borrow)]
    pub bucket: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub files: Option<Vec<DriveFile<'a>>>,
    #[serde(default, deserialize_with = "or_zero")]
    pub is_truncated: bool,
    #[serde(default, borrow)]
    pub next_page_parameters: Map<'a>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DriveFile<'a> {
    #[serde(default, borrow)]
    pub id: Str<'a>,
    #[serde(default, borrow)]
    pub name: Str<'a>,
    #[serde(default, deserialize_with = "or_zero")]
    pub size: i64,
    #[serde(rename = "type", default, borrow)]
    pub kind: Str<'a>,
}

impl Check for DriveBrowseResult<'_> {
    fn check(&self) -> Result<(), String> {
        required(
            self.result.is_none(),
            "GetOnlineDriveBrowseFilesResponse.Result",
        )
    }
}

/// Trigger event: `{"variables": object, "cancelled": bool}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct TriggerEvent<'a> {
    #[serde(default, borrow)]
    pub variables: Map<'a>,
    #[serde(default, deserialize_with = "or_zero")]
    pub cancelled: bool,
}

impl Check for TriggerEvent<'_> {}

/// Trigger dispatch: `{"user_id","events","payload"?,"response"}`, `payload` omitted when empty.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct TriggerDispatch<'a> {
    #[serde(default, borrow)]
    pub user_id: Str<'a>,
    #[serde(default, borrow)]
    pub events: Option<Vec<Str<'a>>>,
    #[serde(default, borrow, skip_serializing_if = "Map::is_empty")]
    pub payload: Map<'a>,
    #[serde(default, borrow)]
    pub response: Str<'a>,
}

impl Check for TriggerDispatch<'_> {}

/// Trigger subscribe/unsubscribe/refresh: `{"subscription": object}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Subscription<'a> {
    #[serde(default, borrow)]
    pub subscription: Map<'a>,
}

impl Check for Subscription<'_> {}

/// Endpoint answer (`invoke_endpoint`, http-api §5.4): `{"status"?, "headers"?, "result"?}`, the
/// body piece hex-encoded in `result`; absent fields stay absent.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct EndpointChunk<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, Str<'a>>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub result: Option<Str<'a>>,
}

impl Check for EndpointChunk<'_> {}
