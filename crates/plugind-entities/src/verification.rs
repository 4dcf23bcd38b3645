//! The content of a package's `.verification.dify.json` (PSC Part 2): who authorised it.

use serde::{Deserialize, Serialize};

/// The content of `.verification.dify.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub authorized_category: String,
}

impl Verification {
    /// What a verified package without a verification file (legacy) reports.
    pub fn langgenius() -> Self {
        Self {
            authorized_category: "langgenius".to_owned(),
        }
    }
}
