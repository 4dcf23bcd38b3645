//! Install tasks as stored in `install_tasks` and returned by `GET …/install/tasks/{id}` (PSC §4.3).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::I18nObject;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallTaskStatus {
    Pending,
    Running,
    Success,
    Failed,
}

impl InstallTaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "success" => Self::Success,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Success | Self::Failed)
    }
}

/// One plugin of a task. Field order is upstream's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstallTaskEntry {
    pub plugin_unique_identifier: String,
    pub labels: I18nObject,
    pub icon: String,
    pub icon_dark: String,
    pub plugin_id: String,
    pub status: InstallTaskStatus,
    pub message: String,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstallTask {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: InstallTaskStatus,
    pub tenant_id: String,
    pub total_plugins: i64,
    pub completed_plugins: i64,
    pub plugins: Vec<InstallTaskEntry>,
}

/// Upstream cuts task messages longer than 1024 bytes to the first 512 + `...` + the last 512.
pub fn clip_message(message: &str) -> String {
    if message.len() <= 1024 {
        return message.to_owned();
    }
    let mut head = 512;
    while !message.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = message.len() - 512;
    while !message.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}...{}", &message[..head], &message[tail..])
}

impl InstallTask {
    /// Applies upstream's entry-status rules (PSC §4.3) and returns whether anything changed.
    pub fn set_entry_status(
        &mut self,
        uid: &str,
        status: InstallTaskStatus,
        message: &str,
    ) -> bool {
        let Some(entry) = self
            .plugins
            .iter_mut()
            .find(|e| e.plugin_unique_identifier == uid)
        else {
            return false;
        };
        let before = entry.status;
        entry.status = status;
        entry.message = clip_message(message);
        if status == InstallTaskStatus::Success && before != InstallTaskStatus::Success {
            self.completed_plugins += 1;
        }
        if status == InstallTaskStatus::Failed {
            self.status = InstallTaskStatus::Failed;
            if before == InstallTaskStatus::Success {
                self.completed_plugins -= 1;
            }
        }
        if self
            .plugins
            .iter()
            .all(|e| e.status == InstallTaskStatus::Success)
        {
            self.status = InstallTaskStatus::Success;
        }
        true
    }
}
