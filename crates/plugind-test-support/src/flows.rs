//! Steps many end-to-end tests share: install a package and wait for its task, build the echo
//! tool's invoke body, read the texts out of a dispatch answer.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::client::Client;
use crate::fixtures::{ECHO_PLUGIN_ID, ECHO_PROVIDER, ECHO_TOOL};

/// How long an install may take in a test (a cold uv cache downloads the SDK).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The body Dify sends for `tool/invoke` of the echo fixture with `text` and `mode`.
pub fn echo_invoke_body(text: &str, mode: &str) -> Value {
    json!({
        "user_id": "u-1", "conversation_id": null, "app_id": "app-1", "message_id": null,
        "data": {"provider": ECHO_PROVIDER, "tool": ECHO_TOOL, "credentials": {}, "credential_type": "api-key",
                 "tool_parameters": {"text": text, "mode": mode}}
    })
}

/// The `text` of every successful tool-message envelope, in order.
pub fn tool_texts(envelopes: &[Value]) -> Vec<String> {
    envelopes
        .iter()
        .filter(|e| e["code"] == 0)
        .filter_map(|e| e["data"]["message"]["text"].as_str().map(str::to_owned))
        .collect()
}

impl Client {
    /// Uploads `package` for `tenant`, installs it and waits for the task; the unique identifier
    /// when the install succeeded, else an error with the upload answer or the task.
    pub async fn install_package(&self, tenant: &str, package: Vec<u8>) -> anyhow::Result<String> {
        let (status, resp) = self.upload_package(tenant, package, false).await?;
        let Some(uid) = resp["data"]["unique_identifier"]
            .as_str()
            .map(str::to_owned)
        else {
            bail!("upload answered HTTP {status}: {resp}");
        };
        let task = self
            .install_and_wait(tenant, &uid, INSTALL_TIMEOUT)
            .await
            .context("install")?;
        if task["status"] != "success" {
            bail!("install task did not succeed: {task}");
        }
        Ok(uid)
    }

    /// `tool/invoke` of the echo fixture installed for `tenant`.
    pub async fn invoke_echo(
        &self,
        tenant: &str,
        text: &str,
        mode: &str,
    ) -> anyhow::Result<(u16, Vec<Value>)> {
        self.dispatch(
            tenant,
            ECHO_PLUGIN_ID,
            "tool/invoke",
            echo_invoke_body(text, mode),
        )
        .await
    }
}
