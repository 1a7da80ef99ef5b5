//! Secret redaction on the way out, and restoration on the way back.
//!
//! A [`Redactor`] belongs to one run. It replaces each secret it finds with a placeholder such
//! as `<redacted:aws-key:1>`; the same secret always gets the same placeholder within the run,
//! so a model can refer to it and [`Redactor::restore`] can put the original back into the
//! edits it proposes. Only counts are logged, never values.
//!
//! What counts as a secret: private keys (PEM blocks, also inside JSON strings), AWS access key
//! ids and secret keys, GCP service-account key ids and API keys, GitHub, GitLab, Slack, Stripe,
//! npm, OpenAI and Anthropic tokens, JWTs, passwords in connection strings, bearer tokens, and
//! high-entropy string literals assigned to names like `password`, `secret`, `token`, `api_key`.
//! Look-alikes (UUIDs, git hashes, lock-file checksums, base64 test data) are left alone: the
//! token patterns need their provider's prefix, and bare high-entropy strings are only taken
//! when a secret-like name is assigned them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use regex::Regex;

/// A pattern and which part of its match is the secret (0: all of it).
struct Pattern {
    kind: &'static str,
    regex: Regex,
    group: usize,
    /// Extra check on the secret itself.
    accept: fn(&str) -> bool,
}

fn always(_: &str) -> bool {
    true
}

fn pattern(kind: &'static str, regex: &str, group: usize, accept: fn(&str) -> bool) -> Pattern {
    Pattern {
        kind,
        // The patterns are constants checked by the tests; a typo fails every test at once.
        regex: Regex::new(regex).unwrap_or_else(|err| panic!("redaction pattern {kind}: {err}")),
        group,
        accept,
    }
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

/// Whether a value assigned to a secret-like name looks like a real secret rather than a
/// placeholder, a variable name, a URL or a word.
fn looks_secret(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if value.len() < 8
        || value.contains("://")
        || value.contains("<redacted:")
        || value.starts_with("${")
        || value.starts_with("{{")
        || value.starts_with('$')
        || value.contains('(')
        || lower.contains("example")
        || lower.contains("changeme")
        || lower.contains("placeholder")
        || lower.contains("your")
        || value.chars().all(|c| c == 'x' || c == 'X' || c == '*' || c == '.')
        // An environment variable's name (`api_key_env = "OPENAI_API_KEY"`), not a value.
        || value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    entropy(value) >= 3.0
}

fn password_in_url(value: &str) -> bool {
    !(value.starts_with('$')
        || value.starts_with('{')
        || value.starts_with('<')
        || value.starts_with('%')
        || value.eq_ignore_ascii_case("password")
        || value.eq_ignore_ascii_case("pass"))
}

/// The name part of a secret-like assignment: a keyword, possibly inside a longer name, but
/// not followed by more letters (`tokenizer` is not a token).
const SECRET_NAME: &str = r"(?:[A-Za-z0-9_.-]*[_.-])?(?i:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret|credentials?)(?:[_.-][A-Za-z0-9_.-]*)?";

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    vec![
        pattern(
            "private-key",
            r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            0,
            always,
        ),
        pattern(
            "aws-key",
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z0-9]{16}\b",
            0,
            always,
        ),
        pattern(
            "aws-secret",
            r#"(?i:aws)[A-Za-z0-9_.-]{0,20}(?i:secret)[A-Za-z0-9_.-]{0,20}["']?\s*(?:=|:|:=|=>)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            1,
            always,
        ),
        pattern(
            "gcp-key",
            r#""private_key_id"\s*:\s*"([a-f0-9]{40})""#,
            1,
            always,
        ),
        pattern("gcp-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b", 0, always),
        pattern(
            "github-token",
            r"\b(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
            0,
            always,
        ),
        pattern("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}", 0, always),
        pattern(
            "slack-token",
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}",
            0,
            always,
        ),
        pattern(
            "stripe-key",
            r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
            0,
            always,
        ),
        pattern("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b", 0, always),
        pattern("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", 0, always),
        pattern(
            "openai-key",
            r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
            0,
            always,
        ),
        pattern(
            "jwt",
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            0,
            always,
        ),
        pattern(
            "password",
            r#"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@'"<>]{1,100}:([^\s@/'"<>]{1,200})@"#,
            1,
            password_in_url,
        ),
        pattern(
            "bearer-token",
            r"(?i:bearer)\s+([A-Za-z0-9._~+/-]{20,}=*)",
            1,
            looks_secret,
        ),
        pattern(
            "secret",
            &format!(
                r#"{SECRET_NAME}["']?\s*(?:=|:|:=|=>)\s*(?:[A-Za-z]+::new\()?["']([^"'\s]{{8,300}})["']"#
            ),
            1,
            looks_secret,
        ),
        pattern(
            "secret",
            r#"(?m)^[ \t]*(?:export[ \t]+)?[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY)[A-Z0-9_]*=([^"'\s]{8,300})[ \t]*$"#,
            1,
            looks_secret,
        ),
    ]
});

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<redacted:[a-z0-9-]+:[0-9]+>")
        .unwrap_or_else(|err| panic!("placeholder pattern: {err}"))
});

/// The result of redacting one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// The text with every secret replaced by its placeholder.
    pub text: String,
    /// How many secrets were replaced in this text (occurrences, not distinct values).
    pub count: usize,
}

#[derive(Debug, Default)]
struct Table {
    by_secret: HashMap<String, String>,
    by_placeholder: HashMap<String, String>,
    per_kind: BTreeMap<&'static str, usize>,
}

/// One run's redaction table. Cheap to clone; clones share the table, so placeholders stay
/// stable across every request of the run.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    table: Arc<Mutex<Table>>,
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // Every update is a pair of inserts; a poisoned table is still consistent enough to use.
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Redactor {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces every secret in `text` with its placeholder.
    pub fn redact(&self, text: &str) -> Redaction {
        let mut found: Vec<(usize, usize, &'static str)> = Vec::new();
        for p in PATTERNS.iter() {
            for caps in p.regex.captures_iter(text) {
                let Some(m) = caps.get(p.group) else {
                    continue;
                };
                if (p.accept)(m.as_str()) {
                    found.push((m.start(), m.end(), p.kind));
                }
            }
        }
        if found.is_empty() {
            return Redaction {
                text: text.to_string(),
                count: 0,
            };
        }
        // Earliest first, longest first among equal starts; overlapping later matches are
        // already inside a redacted span.
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut table = lock(&self.table);
        let mut out = String::with_capacity(text.len());
        let mut cursor = 0;
        let mut count = 0;
        for (start, end, kind) in found {
            if start < cursor {
                continue;
            }
            let secret = &text[start..end];
            let placeholder = match table.by_secret.get(secret) {
                Some(p) => p.clone(),
                None => {
                    let n = table.per_kind.entry(kind).or_default();
                    *n += 1;
                    let p = format!("<redacted:{kind}:{n}>");
                    table.by_secret.insert(secret.to_string(), p.clone());
                    table.by_placeholder.insert(p.clone(), secret.to_string());
                    p
                }
            };
            out.push_str(&text[cursor..start]);
            out.push_str(&placeholder);
            cursor = end;
            count += 1;
        }
        out.push_str(&text[cursor..]);
        Redaction { text: out, count }
    }

    /// Puts the originals back for every placeholder this run made. Placeholders it did not
    /// make are left as they are (see [`Redactor::unknown_placeholders`]).
    pub fn restore(&self, text: &str) -> String {
        let table = lock(&self.table);
        if table.by_placeholder.is_empty() {
            return text.to_string();
        }
        PLACEHOLDER
            .replace_all(text, |caps: &regex::Captures<'_>| {
                let p = &caps[0];
                table
                    .by_placeholder
                    .get(p)
                    .cloned()
                    .unwrap_or_else(|| p.to_string())
            })
            .into_owned()
    }

    /// Placeholders in `text` that this run never made: a model that invents one would
    /// otherwise write it into code, so callers refuse such edits.
    pub fn unknown_placeholders(&self, text: &str) -> Vec<String> {
        let table = lock(&self.table);
        PLACEHOLDER
            .find_iter(text)
            .map(|m| m.as_str())
            .filter(|p| !table.by_placeholder.contains_key(*p))
            .map(str::to_string)
            .collect()
    }

    /// How many distinct secrets were redacted so far, per kind.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        lock(&self.table).per_kind.clone()
    }

    /// How many distinct secrets were redacted so far.
    pub fn total(&self) -> usize {
        lock(&self.table).by_secret.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_secret_gets_the_same_placeholder_and_is_restored() {
        let r = Redactor::new();
        let key = "AKIAIOSFODNN7EXAMPLQ";
        let first = r.redact(&format!("let a = \"{key}\";"));
        assert_eq!(first.text, "let a = \"<redacted:aws-key:1>\";");
        let second = r.redact(&format!("again {key} and AKIAJ7Q2Z3X4C5V6B7N8"));
        assert_eq!(
            second.text,
            "again <redacted:aws-key:1> and <redacted:aws-key:2>"
        );
        assert_eq!(second.count, 2);
        assert_eq!(
            r.restore(&second.text),
            format!("again {key} and AKIAJ7Q2Z3X4C5V6B7N8")
        );
        assert_eq!(r.total(), 2);
    }

    #[test]
    fn invented_placeholders_are_reported_and_left_alone() {
        let r = Redactor::new();
        r.redact("ghp_0123456789abcdefghijABCDEFGHIJ012345");
        let reply = "<redacted:github-token:1> <redacted:aws-key:9>";
        assert_eq!(r.unknown_placeholders(reply), vec!["<redacted:aws-key:9>"]);
        assert!(r.restore(reply).ends_with("<redacted:aws-key:9>"));
    }

    #[test]
    fn entropy_separates_words_from_secrets() {
        assert!(entropy("password") < 3.0);
        assert!(entropy("q8Zr!2mX#pL9vT4w") > 3.5);
        assert!(!looks_secret("OPENAI_API_KEY"));
        assert!(looks_secret("q8Zr!2mX#pL9vT4w"));
    }
}
