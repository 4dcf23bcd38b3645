//! `GET …/management/fetch/readme` (PSC §1.12): readmes are extracted from the stored package on
//! first request and kept in `plugin_readme_records`.

use plugind_entities::management::Readme;
use plugind_entities::{DaemonError, PluginUniqueIdentifier};

use crate::Services;

impl Services {
    pub async fn fetch_readme(&self, uid: &str, language: &str) -> Result<Readme, DaemonError> {
        let uid = PluginUniqueIdentifier::parse(uid)
            .map_err(|e| DaemonError::bad_request(e.to_string()))?;
        let db = &self.inner.db;
        let mut readmes = db
            .readmes(uid.as_str())
            .await
            .map_err(|e| DaemonError::internal(e.to_string()))?;
        if readmes.is_empty() {
            let bytes = self
                .load_package(uid.as_str(), false)
                .await
                .map_err(DaemonError::internal)?;
            let extracted = tokio::task::spawn_blocking(move || plugind_package::readmes(&bytes))
                .await
                .map_err(|e| DaemonError::internal(e.to_string()))?
                .map_err(|e| DaemonError::internal(e.to_string()))?;
            readmes = extracted.into_iter().collect();
            if !readmes.is_empty() {
                db.insert_readmes(uid.as_str(), &readmes)
                    .await
                    .map_err(|e| DaemonError::internal(e.to_string()))?;
            }
        }
        pick(readmes, language)
            .ok_or_else(|| DaemonError::not_found("no readme content available for this plugin"))
    }
}

/// The requested language, else `en_US`, else any.
fn pick(readmes: Vec<(String, String)>, language: &str) -> Option<Readme> {
    let position = readmes
        .iter()
        .position(|(l, _)| !language.is_empty() && l == language)
        .or_else(|| readmes.iter().position(|(l, _)| l == "en_US"))
        .or(if readmes.is_empty() { None } else { Some(0) })?;
    let (language, content) = readmes.into_iter().nth(position)?;
    Some(Readme { content, language })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_fallbacks() {
        let all = vec![
            ("zh_Hans".to_owned(), "zh".to_owned()),
            ("en_US".to_owned(), "en".to_owned()),
        ];
        assert_eq!(
            pick(all.clone(), "zh_Hans").map(|r| r.content),
            Some("zh".into())
        );
        assert_eq!(
            pick(all.clone(), "ja_JP").map(|r| r.language),
            Some("en_US".into())
        );
        assert_eq!(pick(all, "").map(|r| r.language), Some("en_US".into()));
        let only = vec![("ja_JP".to_owned(), "ja".to_owned())];
        assert_eq!(
            pick(only, "pt_BR").map(|r| r.language),
            Some("ja_JP".into())
        );
        assert!(pick(Vec::new(), "en_US").is_none());
    }
}
