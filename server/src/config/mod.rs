//! Typed configuration, merged from every source a user can set it in.
//!
//! Sources, later ones overriding earlier ones key by key: built-in defaults, `conductor.toml`
//! at the workspace root, the client's `initializationOptions`, then the `conductor` section of
//! `workspace/configuration` (refreshed on `workspace/didChangeConfiguration`). A key that is
//! unknown or of the wrong type is reported with its path and dropped; everything else keeps
//! working, so a bad setting never takes the server down.
//!
//! Each capability owns the settings type of its section; this module only mounts it.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The name of the configuration file at the workspace root.
pub const CONFIG_FILE: &str = "conductor.toml";

/// Every setting Conductor reads. Documented key by key in `docs/configuration.md`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Logging.
    pub log: LogSettings,
    /// The workspace index and context bundles.
    pub context: crate::context::ContextSettings,
    /// The static security scan.
    pub security: crate::security::SecuritySettings,
    /// `[model]`: providers per agent, budgets, redaction (see `docs/providers.md`).
    pub model: crate::llm::ModelSettings,
    /// `[run]` (or `[runs]`): the bounds of every run and how its change is presented.
    #[serde(alias = "runs")]
    pub run: crate::orchestrator::RunSettings,
    /// `[tester]`: the test command, its sandbox and limits.
    pub tester: crate::tester::TesterSettings,
    /// `[review]`: the model review's threshold.
    pub review: crate::orchestrator::review::ReviewSettings,
    /// `[decisions]`: decision hovers and code lenses in the editor.
    pub decisions: crate::decisions::DecisionSettings,
    /// `[journal]`: how long run journals are kept.
    pub journal: crate::journal::retention::JournalSettings,
}

/// `[log]`: where diagnostics about Conductor itself go.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogSettings {
    /// The level for Conductor's own log on stderr: `error`, `warn`, `info`, `debug` or `trace`.
    /// `CONDUCTOR_LOG` in the environment wins over this.
    pub level: LogLevel,
    /// A file to append the log to, besides stderr.
    pub file: Option<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
            file: None,
        }
    }
}

/// A log level.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    #[default]
    Info,
    /// Verbose.
    Debug,
    /// Everything, including message bodies (redacted).
    Trace,
}

impl LogLevel {
    /// The level as a `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// A problem found in one configuration source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where the setting came from (`conductor.toml`, `initializationOptions`, …).
    pub source: String,
    /// The key's path, such as `security.debounce_ms`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: `{}`: {}", self.source, self.key, self.message)
    }
}

/// Configuration values from several sources, merged in order.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    layers: Vec<(String, Value)>,
}

impl ConfigSources {
    /// Sets a source's layer. Precedence is fixed by the kind of source, whatever the order of
    /// arrival: defaults < `conductor.toml` < `initializationOptions` < the client's settings
    /// (`workspace/configuration`, or a `workspace/didChangeConfiguration` payload: one layer,
    /// the latest replacing the other). A value that is not a JSON object (or `null`) is reported
    /// as a problem when resolved.
    pub fn push(&mut self, source: impl Into<String>, value: Value) {
        let source = source.into();
        let rank = precedence(&source);
        self.layers.retain(|(s, _)| precedence(s) != rank);
        let at = self
            .layers
            .iter()
            .position(|(s, _)| precedence(s) > rank)
            .unwrap_or(self.layers.len());
        self.layers.insert(at, (source, value));
    }

    /// Reads `conductor.toml` from `root`, if present (and forgets what an earlier read found
    /// when it is gone). A file that is not valid TOML is a problem, reported with the parser's
    /// message, and contributes nothing.
    pub fn push_file(&mut self, root: &Path) -> Option<ConfigProblem> {
        let path = root.join(CONFIG_FILE);
        let text = match crate::util::read_regular_text(&path, crate::util::MAX_READ_BYTES) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.layers.retain(|(s, _)| s != CONFIG_FILE);
                return None;
            }
            Err(err) => {
                return Some(ConfigProblem {
                    source: CONFIG_FILE.into(),
                    key: String::new(),
                    message: format!("cannot read {}: {err}", path.display()),
                });
            }
        };
        match toml::from_str::<toml::Value>(&text).map(serde_json::to_value) {
            Ok(Ok(value)) => {
                self.push(CONFIG_FILE, value);
                None
            }
            Ok(Err(err)) => Some(ConfigProblem {
                source: CONFIG_FILE.into(),
                key: String::new(),
                message: err.to_string(),
            }),
            Err(err) => Some(ConfigProblem {
                source: CONFIG_FILE.into(),
                key: String::new(),
                message: format!("not valid TOML: {}", err.message()),
            }),
        }
    }

    /// Resolves the layers into a typed configuration and the problems found on the way.
    /// Each layer is validated on its own, so a problem names the source it came from, and an
    /// offending key is dropped from its layer while the rest of the layer applies.
    pub fn resolve(&self) -> (Config, Vec<ConfigProblem>) {
        let mut problems = Vec::new();
        let mut merged = Value::Object(Map::new());
        for (source, value) in &self.layers {
            let mut value = match value {
                Value::Null => continue,
                // Some clients encode an empty table as an empty array (Lua's `{}`).
                Value::Array(items) if items.is_empty() => continue,
                Value::Object(_) => value.clone(),
                other => {
                    problems.push(ConfigProblem {
                        source: source.clone(),
                        key: String::new(),
                        message: format!("expected a table of settings, found {}", kind(other)),
                    });
                    continue;
                }
            };
            let (_, layer_problems) = validate(&mut value, source);
            problems.extend(layer_problems);
            merge(&mut merged, value);
        }
        let (config, rest) = validate(&mut merged, "configuration");
        problems.extend(rest);
        (config, problems)
    }
}

/// Where a source stands: higher wins. Unknown names rank with the client's settings.
fn precedence(source: &str) -> u8 {
    match source {
        CONFIG_FILE => 1,
        "initializationOptions" => 2,
        _ => 3,
    }
}

/// The configuration of the workspace at `root` as the command line sees it: the built-in
/// defaults with `conductor.toml` of that root (when there is one) on top, and every problem
/// found on the way (a file that cannot be read or parsed, unknown or ill-typed keys). Each
/// caller chooses its policy: fail, warn and go on, or report.
pub fn load_workspace(root: &Path) -> (Config, Vec<ConfigProblem>) {
    let mut sources = ConfigSources::default();
    let file_problem = sources.push_file(root);
    let (config, mut problems) = sources.resolve();
    if let Some(problem) = file_problem {
        problems.insert(0, problem);
    }
    (config, problems)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

/// Deserializes `value` into a [`Config`], removing every unknown or ill-typed key from it.
fn validate(value: &mut Value, source: &str) -> (Config, Vec<ConfigProblem>) {
    let mut problems = Vec::new();
    // Each pass removes one offending key, so the number of passes is bounded by the keys.
    for _ in 0..256 {
        let mut unknown: Vec<String> = Vec::new();
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let de = serde_ignored::Deserializer::new(&*value, &mut record);
        match serde_path_to_error::deserialize::<_, Config>(de) {
            Ok(config) => {
                for key in unknown {
                    remove_path(value, &key);
                    problems.push(ConfigProblem {
                        source: source.to_string(),
                        key,
                        message: "unknown setting; it is ignored".into(),
                    });
                }
                return (config, problems);
            }
            Err(err) => {
                let key = err.path().to_string();
                let message = format!("{}; the default is used", err.inner());
                if key.is_empty() || key == "." || !remove_path(value, &key) {
                    problems.push(ConfigProblem {
                        source: source.to_string(),
                        key,
                        message: format!("{}; all defaults are used", err.inner()),
                    });
                    *value = Value::Object(Map::new());
                    return (Config::default(), problems);
                }
                problems.push(ConfigProblem {
                    source: source.to_string(),
                    key,
                    message,
                });
            }
        }
    }
    (Config::default(), problems)
}

/// Removes the key at a dotted path (as `serde_path_to_error` and `serde_ignored` print it,
/// with `[i]` for array indexes) from `value`; returns whether something was removed.
fn remove_path(value: &mut Value, path: &str) -> bool {
    let mut segments: Vec<String> = Vec::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((name, rest)) => {
                if !name.is_empty() {
                    segments.push(name.to_string());
                }
                for index in rest.split('[') {
                    segments.push(format!("[{}", index.trim_end_matches(']')));
                }
            }
            None => segments.push(part.to_string()),
        }
    }
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = value;
    for seg in parents {
        node = match (seg.strip_prefix('['), node) {
            (Some(i), Value::Array(items)) => {
                match i.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(n) => n,
                    None => return false,
                }
            }
            (None, Value::Object(map)) => match map.get_mut(seg) {
                Some(n) => n,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last.strip_prefix('['), node) {
        (Some(i), Value::Array(items)) => match i.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        (None, Value::Object(map)) => map.remove(last).is_some(),
        _ => false,
    }
}

/// Deep-merges `overlay` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_sources_override_earlier_ones_key_by_key() {
        let mut sources = ConfigSources::default();
        sources.push(
            "conductor.toml",
            json!({"log": {"level": "debug", "file": "/tmp/c.log"}}),
        );
        sources.push("initializationOptions", json!({"log": {"level": "warn"}}));
        let (config, problems) = sources.resolve();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(config.log.level, LogLevel::Warn);
        assert_eq!(config.log.file.as_deref(), Some("/tmp/c.log"));
    }

    #[test]
    fn precedence_is_by_kind_of_source_not_by_order_of_arrival() {
        let mut sources = ConfigSources::default();
        sources.push("workspace/configuration", json!({"log": {"level": "warn"}}));
        sources.push("initializationOptions", json!({"log": {"level": "error"}}));
        // Re-read after an edit, the file still ranks below the editor's settings.
        sources.push(
            CONFIG_FILE,
            json!({"log": {"level": "debug", "file": "f.log"}}),
        );
        let (config, _) = sources.resolve();
        assert_eq!(config.log.level, LogLevel::Warn);
        assert_eq!(config.log.file.as_deref(), Some("f.log"));
        // A pushed payload replaces the pulled settings rather than stacking on them.
        sources.push("workspace/didChangeConfiguration", json!({}));
        assert_eq!(sources.resolve().0.log.level, LogLevel::Error);
    }

    #[test]
    fn unknown_and_ill_typed_keys_are_reported_by_path_and_dropped() {
        let mut sources = ConfigSources::default();
        sources.push("conductor.toml", json!({"log": {"level": "debug"}}));
        sources.push(
            "workspace/configuration",
            json!({"log": {"level": "loud", "colour": true}, "nonsense": 1}),
        );
        let (config, problems) = sources.resolve();
        // The bad level is dropped, so the earlier layer's valid value stands.
        assert_eq!(config.log.level, LogLevel::Debug);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"log.level"), "{problems:?}");
        assert!(keys.contains(&"log.colour"), "{problems:?}");
        assert!(keys.contains(&"nonsense"), "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| p.source == "workspace/configuration")
        );
    }

    #[test]
    fn a_source_that_is_not_a_table_is_reported() {
        let mut sources = ConfigSources::default();
        sources.push("workspace/configuration", json!([]));
        assert!(
            sources.resolve().1.is_empty(),
            "an empty array is an empty table"
        );
        sources.push("initializationOptions", json!([1, 2]));
        let (config, problems) = sources.resolve();
        assert_eq!(config, Config::default());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("an array"));
    }

    #[test]
    fn the_workspace_loader_reads_the_file_of_the_root_it_is_given() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).expect("mkdir");
        std::fs::write(
            ws.join(CONFIG_FILE),
            "[log]\nlevel = \"debug\"\n[security]\nexclude = [\"vendor/\"]\ncolour = 1\n",
        )
        .expect("write");
        let (config, problems) = load_workspace(&ws);
        assert_eq!(config.log.level, LogLevel::Debug);
        assert_eq!(config.security.exclude, ["vendor/"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "security.colour");
        // No file: the defaults, no problem.
        assert_eq!(load_workspace(dir.path()), (Config::default(), Vec::new()));
        // A broken file: the defaults and the parser's problem.
        std::fs::write(ws.join(CONFIG_FILE), "[log\n").expect("write");
        let (config, problems) = load_workspace(&ws);
        assert_eq!(config, Config::default());
        assert!(problems[0].message.contains("TOML"), "{problems:?}");
    }

    #[test]
    fn a_broken_toml_file_is_reported_and_ignored() {
        let dir = std::env::temp_dir().join(format!("conductor-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join(CONFIG_FILE), "[log\nlevel = ").expect("write");
        let mut sources = ConfigSources::default();
        let problem = sources.push_file(&dir).expect("a problem");
        assert!(problem.message.contains("TOML"), "{problem}");
        std::fs::write(dir.join(CONFIG_FILE), "[log]\nlevel = \"trace\"\n").expect("write");
        assert!(sources.push_file(&dir).is_none());
        assert_eq!(sources.resolve().0.log.level, LogLevel::Trace);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
