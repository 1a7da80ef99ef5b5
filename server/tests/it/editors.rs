//! The editor integrations agree with the server: every setting the VS Code extension declares
//! for the server is a real server setting, of the right type, with the server's default; and
//! the extension's command palette offers exactly the commands the server announces.

use std::path::PathBuf;

use conductor::config::{Config, ConfigSources};
use serde_json::{Map, Value, json};

use crate::support::{Options, TestServer};

/// Commands the extension itself implements; every other `conductor.*` command is the server's.
const CLIENT_COMMANDS: &[&str] = &["conductor.restartServer", "conductor.showOutput"];

/// Settings under `conductor.` that only the extension reads; never sent to the server.
const CLIENT_ONLY: &[&str] = &["server.", "trace."];

fn vscode_manifest() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../editors/vscode/package.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("parsing {}: {err}", path.display()))
}

/// The server-side settings the extension declares: key without `conductor.` → schema.
fn server_settings(manifest: &Value) -> Vec<(String, Value)> {
    let properties = manifest["contributes"]["configuration"]["properties"]
        .as_object()
        .expect("contributes.configuration.properties is an object");
    properties
        .iter()
        .map(|(key, schema)| {
            let key = key
                .strip_prefix("conductor.")
                .unwrap_or_else(|| panic!("setting {key} is not under conductor."));
            (key.to_string(), schema.clone())
        })
        .filter(|(key, _)| !CLIENT_ONLY.iter().any(|prefix| key.starts_with(prefix)))
        .collect()
}

/// `{"a.b": v}` → `{"a": {"b": v}}`, the shape VS Code sends for a section.
fn nested(key: &str, value: Value) -> Value {
    let mut object = Map::new();
    match key.split_once('.') {
        Some((head, rest)) => object.insert(head.to_string(), nested(rest, value)),
        None => object.insert(key.to_string(), value),
    };
    Value::Object(object)
}

fn resolve(settings: Value) -> (Config, Vec<String>) {
    let mut sources = ConfigSources::default();
    sources.push("vscode", settings);
    let (config, problems) = sources.resolve();
    (config, problems.iter().map(ToString::to_string).collect())
}

#[test]
fn every_vscode_setting_default_is_the_server_default() {
    let settings = server_settings(&vscode_manifest());
    assert!(
        settings.iter().any(|(key, _)| key == "log.level"),
        "the extension declares no conductor.log.level"
    );
    for (key, schema) in settings {
        let default = schema
            .get("default")
            .cloned()
            .unwrap_or_else(|| panic!("conductor.{key} has no default"));
        let (config, problems) = resolve(nested(&key, default.clone()));
        assert!(
            problems.is_empty(),
            "conductor.{key} = {default} is rejected by the server: {problems:?}"
        );
        assert_eq!(
            config,
            Config::default(),
            "conductor.{key} = {default} is not the server's default"
        );
    }
}

#[test]
fn every_vscode_enum_value_is_accepted_by_the_server() {
    for (key, schema) in server_settings(&vscode_manifest()) {
        let Some(values) = schema.get("enum").and_then(Value::as_array) else {
            continue;
        };
        for value in values {
            let (_, problems) = resolve(nested(&key, value.clone()));
            assert!(
                problems.is_empty(),
                "conductor.{key} = {value} is rejected by the server: {problems:?}"
            );
        }
        // And the check can fail: a value outside the enum is rejected.
        let (_, problems) = resolve(nested(&key, Value::String("no-such-value".into())));
        assert!(
            !problems.is_empty(),
            "conductor.{key} accepted a value outside its enum"
        );
    }
}

/// The `conductor.*` command ids quoted in a client's source file under `editors/`.
fn commands_quoted_in(relative: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../editors")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    let mut found: Vec<String> = Vec::new();
    for quote in ['\'', '"'] {
        let opening = format!("{quote}conductor.");
        for (at, _) in text.match_indices(&opening) {
            let rest = &text[at + 1..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                .unwrap_or(rest.len());
            let id = &rest[..end];
            let closed = rest[end..].starts_with(quote);
            if closed && id.len() > "conductor.".len() && !found.iter().any(|f| f == id) {
                found.push(id.to_string());
            }
        }
    }
    found
}

/// The context key that enables a server command in the extension's menus while the running
/// server announces it (`editors/vscode/src/commands.ts`, `contextKey`).
fn announced_key(command: &str) -> String {
    format!(
        "conductor.announced.{}",
        command.strip_prefix("conductor.").unwrap_or(command)
    )
}

/// Whether a `when` clause requires `key` as one of its `&&` terms.
fn requires(when: &str, key: &str) -> bool {
    !when.contains("||") && when.split("&&").any(|term| term.trim() == key)
}

#[tokio::test]
async fn the_vscode_extension_enables_exactly_the_commands_the_server_announces() {
    let server = TestServer::start(Options::default()).await;
    let announced: Vec<String> =
        server.capabilities["capabilities"]["executeCommandProvider"]["commands"]
            .as_array()
            .map(|commands| {
                commands
                    .iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
    server.shutdown().await;
    assert_eq!(
        announced,
        conductor::lsp::server::command_names(),
        "initialize announces command_names()"
    );

    let manifest = vscode_manifest();
    let contributed: Vec<&Value> = manifest["contributes"]["commands"]
        .as_array()
        .expect("contributes.commands is an array")
        .iter()
        .filter(|c| {
            c["command"]
                .as_str()
                .is_some_and(|id| !CLIENT_COMMANDS.contains(&id))
        })
        .collect();
    let contributed_ids: Vec<&str> = contributed
        .iter()
        .filter_map(|c| c["command"].as_str())
        .collect();
    let table = commands_quoted_in("vscode/src/commands.ts");

    for command in &announced {
        assert!(
            contributed_ids.contains(&command.as_str()),
            "the server announces {command}, which editors/vscode/package.json does not contribute"
        );
        assert!(
            table.contains(command),
            "the server announces {command}, which SERVER_COMMANDS in editors/vscode/src/commands.ts lacks"
        );
    }
    let entries = |menu: &str| -> Vec<(String, String)> {
        manifest["contributes"]["menus"][menu]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["command"].as_str().unwrap_or_default().to_string(),
                            e["when"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let palette = entries("commandPalette");
    let context_menu = entries("editor/context");
    for command in &contributed {
        let id = command["command"].as_str().unwrap_or_default();
        assert_eq!(
            command["category"], "Conductor",
            "{id}: contributes.commands gives it another category"
        );
        assert!(
            table.iter().any(|t| t == id),
            "{id} is contributed but SERVER_COMMANDS in editors/vscode/src/commands.ts lacks it"
        );
        // An unannounced command must be unreachable: every menu entry requires the context
        // key the extension sets from the announced list, so the palette can never offer a
        // command the running server does not implement.
        let key = announced_key(id);
        let in_palette: Vec<&String> = palette
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, w)| w)
            .collect();
        assert_eq!(
            in_palette.len(),
            1,
            "{id}: expected one contributes.menus.commandPalette entry"
        );
        for (_, when) in palette.iter().chain(&context_menu).filter(|(c, _)| c == id) {
            assert!(
                requires(when, &key),
                "{id}: the menu entry `when: {when}` does not require `{key}`"
            );
        }
    }
}

#[test]
fn every_documented_setting_is_declared_by_the_vscode_extension() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    // `## [section]` opens a section; a paragraph opening with `` `[section.sub]` `` a sub-table;
    // every table row whose first cell is a `key` documents `section.key`.
    let mut section: Option<String> = None;
    let mut documented = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("## ") {
            section = rest
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .map(String::from);
        } else if let Some(rest) = line.strip_prefix("`[") {
            if let Some((table, _)) = rest.split_once("]`") {
                section = Some(table.to_string());
            }
        } else if let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) {
            if let Some((key, _)) = row.split_once("` |") {
                documented.push(format!("{section}.{key}"));
            }
        }
    }
    assert!(
        documented.iter().any(|k| k == "security.min_severity")
            && documented.iter().any(|k| k == "run.improve_rounds"),
        "docs/configuration.md was not read as expected: {documented:?}"
    );
    let declared: Vec<String> = server_settings(&vscode_manifest())
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let missing: Vec<&String> = documented
        .iter()
        .filter(|key| !declared.contains(key))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md documents settings that editors/vscode/package.json does not declare: {missing:?}"
    );
}

#[test]
fn every_server_command_has_a_neovim_user_command() {
    let quoted = commands_quoted_in("neovim/lua/conductor/init.lua");
    for command in conductor::lsp::server::command_names() {
        assert!(
            quoted.contains(&command),
            "the server announces {command}, for which editors/neovim/lua/conductor/init.lua has no user command"
        );
    }
}

/// How an editor goes away.
#[derive(Debug, Clone, Copy)]
enum Departure {
    /// It dies: the server's input just ends.
    InputCloses,
    /// It says goodbye properly (`shutdown`, then `exit`) but keeps the pipe open.
    ShutdownThenExit,
}

/// Starts the real binary as an editor would, lets it ask `workspace/configuration`, never
/// answers, then leaves as `departure` says. Returns whether the process ended within 5 s.
fn server_exits_with_a_request_unanswered(departure: Departure) -> bool {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    fn frame(message: &Value) -> Vec<u8> {
        let body = message.to_string();
        format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    }

    let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .arg("lsp")
        .env("CONDUCTOR_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn conductor");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (messages, inbox) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut length = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(value) = line.strip_prefix("Content-Length:") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
            let mut body = vec![0; length.unwrap_or(0)];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            if let Ok(message) = serde_json::from_slice(&body)
                && messages.send(message).is_err()
            {
                return;
            }
        }
    });
    let wait_for = |accept: &dyn Fn(&Value) -> bool| loop {
        let message = inbox
            .recv_timeout(Duration::from_secs(10))
            .expect("the server went quiet");
        if accept(&message) {
            return message;
        }
    };

    let capabilities = json!({"workspace": {"configuration": true}});
    stdin
        .write_all(&frame(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"processId": null, "rootUri": null, "capabilities": capabilities}}),
        ))
        .expect("write initialize");
    wait_for(&|m| m["id"] == 1 && m.get("method").is_none());
    stdin
        .write_all(&frame(
            &json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
        ))
        .expect("write initialized");
    wait_for(&|m| m["method"] == "workspace/configuration");
    match departure {
        Departure::InputCloses => drop(stdin),
        Departure::ShutdownThenExit => {
            stdin
                .write_all(&frame(
                    &json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}),
                ))
                .expect("write shutdown");
            wait_for(&|m| m["id"] == 2 && m.get("method").is_none());
            stdin
                .write_all(&frame(&json!({"jsonrpc": "2.0", "method": "exit"})))
                .expect("write exit");
            // Editors keep the pipe open after `exit`; leak it on purpose until the end.
            std::mem::forget(stdin);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn the_server_exits_when_its_editor_dies_during_a_configuration_pull() {
    assert!(
        server_exits_with_a_request_unanswered(Departure::InputCloses),
        "the server kept running after its input closed while it awaited workspace/configuration"
    );
}

#[test]
fn the_server_exits_on_exit_while_a_configuration_pull_is_unanswered() {
    assert!(
        server_exits_with_a_request_unanswered(Departure::ShutdownThenExit),
        "the server kept running after shutdown and exit while it awaited workspace/configuration"
    );
}
