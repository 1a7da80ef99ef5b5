//! The editor integrations agree with the server: every setting the VS Code extension declares
//! for the server is a real server setting, of the right type, with the server's default; and
//! the extension's command palette offers exactly the commands the server announces.

use std::path::PathBuf;

use conductor::config::{Config, ConfigSources};
use serde_json::{Map, Value};

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

#[tokio::test]
async fn the_vscode_palette_offers_exactly_the_commands_the_server_announces() {
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

    let manifest = vscode_manifest();
    let contributed: Vec<&str> = manifest["contributes"]["commands"]
        .as_array()
        .expect("contributes.commands is an array")
        .iter()
        .filter_map(|c| c["command"].as_str())
        .filter(|c| !CLIENT_COMMANDS.contains(c))
        .collect();
    let hidden: Vec<&str> = manifest["contributes"]["menus"]["commandPalette"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["when"] == "false")
                .filter_map(|e| e["command"].as_str())
                .collect()
        })
        .unwrap_or_default();

    for command in &announced {
        assert!(
            contributed.contains(&command.as_str()),
            "the server announces {command}, which editors/vscode/package.json does not contribute"
        );
    }
    for command in &contributed {
        let implemented = announced.iter().any(|a| a == command);
        let visible = !hidden.contains(command);
        assert_eq!(
            visible, implemented,
            "{command}: shown in the palette = {visible}, announced by the server = {implemented}; \
             adjust `when` in contributes.menus.commandPalette of editors/vscode/package.json"
        );
    }
}
