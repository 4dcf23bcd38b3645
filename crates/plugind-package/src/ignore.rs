//! A small `.difyignore`/`.gitignore` matcher (PSC §1.8): `name`, `dir/`, `*.ext`, `/anchored`,
//! `a/b` (anchored), `**`. The first excluding pattern wins; `!` negations cannot re-include, so
//! they are no-ops.

use std::path::Path;

use regex::Regex;

use crate::glob::glob_regex;

struct Pattern {
    re: Regex,
    /// Matched against the entry's base name instead of its whole relative path.
    basename: bool,
    dir_only: bool,
}

/// The parsed ignore file of a plugin directory.
pub(crate) struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Reads `<root>/.difyignore`, falling back to `<root>/.gitignore`; none → nothing ignored.
    pub(crate) fn load(root: &Path) -> Self {
        let text = std::fs::read_to_string(root.join(".difyignore"))
            .or_else(|_| std::fs::read_to_string(root.join(".gitignore")))
            .unwrap_or_default();
        Self::parse(&text)
    }

    pub(crate) fn parse(text: &str) -> Self {
        let patterns = text.lines().filter_map(parse_line).collect();
        Self { patterns }
    }

    /// Whether the `/`-separated relative path is excluded.
    pub(crate) fn excluded(&self, rel: &str, is_dir: bool) -> bool {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        self.patterns
            .iter()
            .any(|p| (!p.dir_only || is_dir) && p.re.is_match(if p.basename { base } else { rel }))
    }
}

fn parse_line(line: &str) -> Option<Pattern> {
    let line = line.trim_end_matches([' ', '\t', '\r']);
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
        return None;
    }
    let line = line.strip_prefix('\\').unwrap_or(line);
    let (body, dir_only) = match line.strip_suffix('/') {
        Some(b) => (b, true),
        None => (line, false),
    };
    let anchored = body.starts_with('/');
    let body = body.trim_start_matches('/');
    if body.is_empty() {
        return None;
    }
    let basename = !anchored && !body.contains('/');
    let re = glob_regex(body, true)?;
    Some(Pattern {
        re,
        basename,
        dir_only,
    })
}

#[cfg(test)]
mod tests {
    use super::Ignore;

    #[test]
    fn gitignore_subset() {
        let ig =
            Ignore::parse("# c\n.venv/\n__pycache__\n*.pyc\n/build\ndocs/**/*.md\n!keep.pyc\n");
        assert!(ig.excluded(".venv", true));
        assert!(!ig.excluded(".venv", false));
        assert!(ig.excluded("a/__pycache__", true));
        assert!(ig.excluded("x/y.pyc", false));
        assert!(ig.excluded("keep.pyc", false));
        assert!(ig.excluded("build", true));
        assert!(!ig.excluded("src/build", true));
        assert!(ig.excluded("docs/a/b/c.md", false));
        assert!(ig.excluded("docs/c.md", false));
        assert!(!ig.excluded("main.py", false));
    }
}
