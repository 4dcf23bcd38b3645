//! [`DifyError`]: why a call to Dify's inner API failed.

/// Every failure of one inner-API call. The `Display` texts are what upstream shows the plugin
/// after its `invoke … failed: ` prefix.
#[derive(Debug, thiserror::Error)]
pub enum DifyError {
    /// Connecting or sending failed (Dify down, wrong URL, connection reset).
    #[error("dify inner api unreachable: {0}")]
    Unreachable(String),
    /// A streaming route answered with a status other than 200.
    #[error("request failed with status code: {status} and respond with: {body}")]
    Status { status: u16, body: String },
    /// Dify reported a failure in the `error` field of its answer.
    #[error("request failed: {0}")]
    Dify(String),
    /// The answer had neither data nor error.
    #[error("data is nil")]
    NoData,
    /// The answer body was not the expected JSON.
    #[error("decode response failed: {0}")]
    Decode(String),
    /// The length-prefixed stream was malformed or cut inside a frame.
    #[error("{0}")]
    Frame(#[from] crate::frame::FrameError),
    /// The answer did not finish within the read timeout.
    #[error("read dify response timed out after {0:?}")]
    Timeout(std::time::Duration),
}
