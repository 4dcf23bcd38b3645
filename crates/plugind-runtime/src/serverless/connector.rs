//! The serverless connector (SRI, plugin-protocol §6.1): where functions are launched and
//! looked up. Every call sends `Authorization: <api key>` verbatim.

use std::time::Duration;

use plugind_entities::PluginUniqueIdentifier;
use serde_json::Value;

use super::events::{field, field_str, Lines};
use super::ServerlessFunction;

/// Why a connector call failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("serverless connector at {url} is unreachable: {error}")]
    Unreachable { url: String, error: String },
    #[error("serverless connector answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("serverless connector answered something unexpected: {0}")]
    Unexpected(String),
    #[error("{0}")]
    Failed(String),
    #[error("serverless launch did not finish within {0:?} (DIFY_PLUGIN_SERVERLESS_CONNECTOR_LAUNCH_TIMEOUT)")]
    Timeout(Duration),
}

/// The connector client.
#[derive(Clone)]
pub(crate) struct Connector {
    url: String,
    key: String,
    launch_timeout: Duration,
    http: reqwest::Client,
}

/// `<author>@<name>@<version>@<checksum>.difypkg`.
pub(crate) fn package_filename(uid: &PluginUniqueIdentifier) -> String {
    format!(
        "{}@{}@{}@{}.difypkg",
        uid.author(),
        uid.name(),
        uid.version(),
        uid.checksum()
    )
}

impl Connector {
    pub(crate) fn new(
        url: &str,
        key: &str,
        launch_timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ConnectorError::Unexpected(e.to_string()))?;
        Ok(Connector {
            url: url.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            launch_timeout,
            http,
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> ConnectorError {
        ConnectorError::Unreachable {
            url: self.url.clone(),
            error: e.to_string(),
        }
    }

    async fn ok(resp: reqwest::Response) -> Result<reqwest::Response, ConnectorError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Err(ConnectorError::Status {
            status,
            body: body.chars().take(1024).collect(),
        })
    }

    /// `POST /ping`: the body must be the JSON string `"pong"`.
    pub(crate) async fn ping(&self) -> Result<(), ConnectorError> {
        let resp = self
            .http
            .post(format!("{}/ping", self.url))
            .header("Authorization", &self.key)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let body = Self::ok(resp)
            .await?
            .bytes()
            .await
            .map_err(|e| self.unreachable(e))?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::String(s)) if s == "pong" => Ok(()),
            _ => Err(ConnectorError::Unexpected(format!(
                "ping answered {:?}, expected the JSON string \"pong\"",
                String::from_utf8_lossy(&body)
            ))),
        }
    }

    /// `GET /v1/runner/instances?filename=…`: the function already launched for this package.
    pub(crate) async fn lookup(
        &self,
        uid: &PluginUniqueIdentifier,
    ) -> Result<Option<ServerlessFunction>, ConnectorError> {
        let resp = self
            .http
            .get(format!("{}/v1/runner/instances", self.url))
            .query(&[("filename", package_filename(uid))])
            .header("Authorization", &self.key)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let body: Value = Self::ok(resp)
            .await?
            .json()
            .await
            .map_err(|e| ConnectorError::Unexpected(e.to_string()))?;
        let error = field_str(&body, "error");
        if !error.is_empty() {
            return Err(ConnectorError::Failed(format!(
                "serverless connector look-up failed: {error}"
            )));
        }
        let first = field(&body, "Items")
            .and_then(Value::as_array)
            .and_then(|items| items.first());
        Ok(first.map(|item| ServerlessFunction {
            url: field_str(item, "Endpoint").to_owned(),
            name: field_str(item, "Name").to_owned(),
        }))
    }

    /// `POST /v1/launch` (multipart), following its stage stream to the end. `progress` gets
    /// upstream's install messages.
    pub(crate) async fn launch(
        &self,
        uid: &PluginUniqueIdentifier,
        package: Vec<u8>,
        verified: bool,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ServerlessFunction, ConnectorError> {
        let file = reqwest::multipart::Part::bytes(package).file_name(package_filename(uid));
        let form = reqwest::multipart::Form::new()
            .part("context", file)
            .text("verified", if verified { "true" } else { "false" })
            .text(
                "metadata",
                serde_json::json!({ "plugin_unique_identifier": uid.as_str() }).to_string(),
            );
        let exchange = async {
            let resp = self
                .http
                .post(format!("{}/v1/launch", self.url))
                .header("Authorization", &self.key)
                .multipart(form)
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            let mut resp = Self::ok(resp).await?;
            let mut lines = Lines::new(1 << 20);
            let mut stages = LaunchStages::default();
            loop {
                let chunk = resp.chunk().await.map_err(|e| self.unreachable(e))?;
                let batch = match &chunk {
                    Some(chunk) => lines.push(chunk).map_err(|e| {
                        ConnectorError::Unexpected(format!("launch line of {} bytes", e.0))
                    })?,
                    None => lines.finish().into_iter().collect(),
                };
                for line in &batch {
                    if let Some(done) = stages.line(line, progress)? {
                        return Ok(done);
                    }
                }
                if chunk.is_none() {
                    return Err(ConnectorError::Failed(
                        "the serverless launch stream ended before its end stage".into(),
                    ));
                }
            }
        };
        tokio::time::timeout(self.launch_timeout, exchange)
            .await
            .map_err(|_| ConnectorError::Timeout(self.launch_timeout))?
    }
}

/// The stages of one launch stream.
#[derive(Default)]
struct LaunchStages {
    function: Option<ServerlessFunction>,
}

impl LaunchStages {
    /// Handles one line; `Some` once the `end` stage arrived.
    fn line(
        &mut self,
        line: &[u8],
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Option<ServerlessFunction>, ConnectorError> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.starts_with("event:") {
            return Ok(None);
        }
        let text = text.strip_prefix("data:").map_or(text, str::trim_start);
        let Ok(stage) = serde_json::from_str::<Value>(text) else {
            return Ok(None);
        };
        let message = field_str(&stage, "Message");
        if field_str(&stage, "State") == "failed" {
            return Err(ConnectorError::Failed(message.to_owned()));
        }
        match field_str(&stage, "Stage") {
            "start" | "build" => progress("Building plugin...".into()),
            "run" if field_str(&stage, "State") == "success" => {
                self.function = Some(parse_run_message(message));
            }
            "run" => progress("Launching plugin...".into()),
            "end" => {
                progress("Plugin launched".into());
                return match self.function.take() {
                    Some(f) if !f.url.is_empty() && !f.name.is_empty() => Ok(Some(f)),
                    _ => Err(ConnectorError::Failed(
                        "Internal server error, failed to get lambda url or function name".into(),
                    )),
                };
            }
            _ => {}
        }
        Ok(None)
    }
}

/// `endpoint=<url>,name=<n>,id=<id>`.
fn parse_run_message(message: &str) -> ServerlessFunction {
    let mut function = ServerlessFunction::default();
    for pair in message.split(',') {
        if let Some((key, value)) = pair.split_once('=') {
            match key.trim() {
                "endpoint" => function.url = value.trim().to_owned(),
                "name" => function.name = value.trim().to_owned(),
                _ => {}
            }
        }
    }
    function
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_stages_map_to_progress_and_the_function() {
        let seen = std::sync::Mutex::new(Vec::new());
        let progress = |m: String| seen.lock().expect("lock").push(m);
        let mut stages = LaunchStages::default();
        let lines: [&[u8]; 5] = [
            b"event: message",
            br#"data: {"Stage":"build","State":"running","Obj":"","Message":"building"}"#,
            br#"{"Stage":"run","State":"running","Obj":"","Message":""}"#,
            br#"{"stage":"run","state":"success","obj":"","message":"endpoint=http://f:1,name=fn-1,id=abc"}"#,
            b"not json",
        ];
        for line in lines {
            assert!(stages.line(line, &progress).expect("ok").is_none());
        }
        let done = stages
            .line(br#"{"Stage":"end","State":"success"}"#, &progress)
            .expect("ok")
            .expect("done");
        assert_eq!(
            done,
            ServerlessFunction {
                url: "http://f:1".into(),
                name: "fn-1".into()
            }
        );
        assert_eq!(
            *seen.lock().expect("lock"),
            [
                "Building plugin...",
                "Launching plugin...",
                "Plugin launched"
            ]
        );
        let err = LaunchStages::default()
            .line(
                br#"{"Stage":"build","State":"failed","Message":"no space"}"#,
                &progress,
            )
            .expect_err("failed");
        assert_eq!(err.to_string(), "no space");
        let err = LaunchStages::default()
            .line(br#"{"Stage":"end","State":"success"}"#, &progress)
            .expect_err("no function");
        assert!(
            err.to_string().contains("failed to get lambda url"),
            "{err}"
        );
    }
}
