//! The response envelope `{code, message, data}` and upstream's error objects (http-api §2).

use serde::Serialize;

/// Upstream's error types with their envelope codes (http-api §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    InternalServerError,
    BadRequest,
    NotFound,
    Unauthorized,
    UniqueIdentifier,
    PluginNotFound,
    PermissionDenied,
    PluginInvoke,
}

impl ErrorType {
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::InternalServerError => "PluginDaemonInternalServerError",
            ErrorType::BadRequest => "PluginDaemonBadRequestError",
            ErrorType::NotFound => "PluginDaemonNotFoundError",
            ErrorType::Unauthorized => "PluginDaemonUnauthorizedError",
            ErrorType::UniqueIdentifier => "PluginUniqueIdentifierError",
            ErrorType::PluginNotFound => "PluginNotFoundError",
            ErrorType::PermissionDenied => "PluginPermissionDeniedError",
            ErrorType::PluginInvoke => "PluginInvokeError",
        }
    }

    pub fn code(self) -> i32 {
        match self {
            ErrorType::InternalServerError | ErrorType::PluginInvoke => -500,
            ErrorType::BadRequest | ErrorType::UniqueIdentifier => -400,
            ErrorType::NotFound | ErrorType::PluginNotFound => -404,
            ErrorType::Unauthorized => -401,
            ErrorType::PermissionDenied => -403,
        }
    }
}

/// An error as the daemon reports it: a type and a human text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DaemonError {
    pub error_type: ErrorType,
    pub message: String,
}

impl DaemonError {
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorType::BadRequest, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorType::InternalServerError, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorType::NotFound, message)
    }
    pub fn plugin_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorType::PluginNotFound, message)
    }
    pub fn invoke(message: impl Into<String>) -> Self {
        Self::new(ErrorType::PluginInvoke, message)
    }

    /// The JSON text that goes into the envelope's `message`: `{"message","error_type","args":null}`.
    pub fn message_json(&self) -> String {
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            error_type: &'a str,
            args: Option<()>,
        }
        serde_json::to_string(&Inner {
            message: &self.message,
            error_type: self.error_type.name(),
            args: None,
        })
        .unwrap_or_default()
    }

    /// The whole error envelope as JSON text.
    pub fn envelope_json(&self) -> String {
        #[derive(Serialize)]
        struct Env {
            code: i32,
            message: String,
            data: Option<()>,
        }
        serde_json::to_string(&Env {
            code: self.error_type.code(),
            message: self.message_json(),
            data: None,
        })
        .unwrap_or_default()
    }
}

/// The success envelope as JSON text.
pub fn success_json<T: Serialize>(data: &T) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Env<'a, T> {
        code: i32,
        message: &'static str,
        data: &'a T,
    }
    serde_json::to_string(&Env {
        code: 0,
        message: "success",
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_matches_upstream_bytes() {
        let e = DaemonError::bad_request("plugin_id is required");
        assert_eq!(
            e.envelope_json(),
            r#"{"code":-400,"message":"{\"message\":\"plugin_id is required\",\"error_type\":\"PluginDaemonBadRequestError\",\"args\":null}","data":null}"#
        );
    }

    #[test]
    fn success_envelope_field_order() {
        assert_eq!(
            success_json(&true).expect("json"),
            r#"{"code":0,"message":"success","data":true}"#
        );
    }
}
