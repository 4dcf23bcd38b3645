//! Shell-glob to regex translation shared by the model `predefined` globs and the ignore file:
//! `*` and `?` never cross `/`, `[...]` classes pass through, and (for ignore patterns) `**`
//! spans directories.

use regex::Regex;

/// Translates a glob into an anchored regex. With `double_star`, `**` matches across `/`.
pub(crate) fn glob_regex(glob: &str, double_star: bool) -> Option<Regex> {
    let chars: Vec<char> = glob.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if double_star && chars.get(i + 1) == Some(&'*') => {
                let at_start = i == 0 || chars[i - 1] == '/';
                if at_start && chars.get(i + 2) == Some(&'/') {
                    re.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| p + i + 1);
                match close {
                    Some(end) if end > i + 1 => {
                        re.push('[');
                        for (k, &cc) in chars[i + 1..end].iter().enumerate() {
                            if k == 0 && (cc == '!' || cc == '^') {
                                re.push('^');
                            } else if cc == '\\' || cc == '[' {
                                re.push('\\');
                                re.push(cc);
                            } else {
                                re.push(cc);
                            }
                        }
                        re.push(']');
                        i = end + 1;
                        continue;
                    }
                    _ => re.push_str(r"\["),
                }
            }
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    re.push_str(&regex::escape(&next.to_string()));
                    i += 2;
                    continue;
                }
                re.push_str(r"\\");
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).ok()
}

#[cfg(test)]
mod tests {
    use super::glob_regex;

    #[test]
    fn star_does_not_cross_slash() {
        let re = glob_regex("models/llm/*.yaml", false).expect("glob");
        assert!(re.is_match("models/llm/gpt.yaml"));
        assert!(!re.is_match("models/llm/sub/gpt.yaml"));
        let re = glob_regex("**/x/*.py", true).expect("glob");
        assert!(re.is_match("x/a.py") && re.is_match("a/b/x/c.py"));
    }
}
