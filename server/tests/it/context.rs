//! The context engine through the protocol: indexing progress, file watching, the "Show
//! context" code action and command, and the index following the editor's edits.

use serde_json::{Value, json};

use crate::support::{Options, TestServer, lsp_position};

const SHOP: &str = r#"
//- /Cargo.toml
[package]
name = "shop"
edition = "2021"
//- /src/lib.rs
pub mod cart;
pub mod price;
//- /src/price.rs
/// An amount of money in cents.
pub struct Price {
    pub cents: u64,
}

/// A price from a number of cents.
pub fn from_cents(cents: u64) -> Price {
    Price { cents }
}
//- /src/cart.rs
use crate::price::{from_cents, Price};

/// The sum of the prices.
pub fn total(items: &[Price]) -> Price {
    $0let sum = items.iter().map(|p| p.cents).sum();
    from_cents(sum)$0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up() {
        assert_eq!(total(&[from_cents(2)]).cents, 2);
    }
}
//- /.env
API_KEY=do-not-send
"#;

async fn indexed(options: Options) -> TestServer {
    let server = TestServer::start(options).await;
    server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "end")
        .await;
    server
}

/// A server on the `SHOP` workspace, once indexing is done.
async fn indexed_shop() -> TestServer {
    indexed(Options {
        fixture: SHOP,
        ..Options::default()
    })
    .await
}

fn selection(server: &TestServer, path: &str) -> Value {
    let file = server.fixture.file_at(path);
    json!({
        "start": lsp_position(&file.text, file.markers[0], &server.encoding),
        "end": lsp_position(&file.text, file.markers[1], &server.encoding),
    })
}

async fn show_context(server: &TestServer, argument: Value) -> Result<(Value, String), Value> {
    let result = server
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.showContext", "arguments": [argument]}),
        )
        .await?;
    let path = result["path"].as_str().expect("a path").to_string();
    let markdown = std::fs::read_to_string(&path).expect("the bundle was written");
    Ok((result, markdown))
}

#[tokio::test]
async fn indexing_reports_progress_and_registers_file_watching() {
    let server = indexed_shop().await;
    let begin = server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "begin")
        .await;
    assert_eq!(begin["params"]["value"]["title"], "Conductor: indexing");
    let end = server
        .wait_notification("$/progress", |n| n["params"]["value"]["kind"] == "end")
        .await;
    assert!(
        end["params"]["value"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("indexed 3 files")),
        "{end:#}"
    );
    assert_eq!(
        server
            .server_requests("window/workDoneProgress/create")
            .len(),
        1
    );
    let registrations = server.server_requests("client/registerCapability");
    assert!(
        registrations.iter().any(|r| r["params"]["registrations"][0]["method"]
            == "workspace/didChangeWatchedFiles"),
        "{registrations:#?}"
    );
    let caps = &server.capabilities["capabilities"];
    let commands = caps["executeCommandProvider"]["commands"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        commands.contains(&json!("conductor.showContext")),
        "{commands:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_code_action_shows_a_bundle_with_cross_file_definitions_and_tests() {
    let server = indexed_shop().await;
    let uri = server.open("src/cart.rs").await;
    let range = selection(&server, "src/cart.rs");
    let actions = server
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": range, "context": {"diagnostics": []}}),
        )
        .await
        .expect("code actions");
    let action = actions
        .as_array()
        .and_then(|a| a.iter().find(|a| a["title"] == "Conductor: Show context"))
        .expect("the Show context action")
        .clone();
    assert_eq!(action["command"]["command"], "conductor.showContext");
    let (result, markdown) = show_context(&server, action["command"]["arguments"][0].clone())
        .await
        .expect("the command succeeds");
    assert!(result["totalTokens"].as_u64().expect("tokens") <= 6000);
    assert!(
        result["path"]
            .as_str()
            .expect("path")
            .contains("/.conductor/context/src_cart.rs-L"),
        "{result:#}"
    );
    for expected in [
        "| 1 | selection | src/cart.rs:5-6 | total |",
        "| definition | src/price.rs:1-4 | Price |",
        "| definition | src/price.rs:6-9 | from_cents |",
        "| test | src/cart.rs:13-16 | totals_add_up |",
        "`from_cents` is used by the selection",
        "`Price` is in the signature of `total`",
    ] {
        assert!(markdown.contains(expected), "{expected} not in\n{markdown}");
    }
    assert!(!markdown.contains("do-not-send"));
    let shown = server.server_requests("window/showDocument");
    assert_eq!(shown.len(), 1);
    assert!(
        shown[0]["params"]["uri"]
            .as_str()
            .is_some_and(|u| u.ends_with(".md")),
        "{shown:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_index_follows_edits_watched_files_and_closes() {
    let server = indexed_shop().await;
    // An unsaved edit in price.rs adds `discount`; a function in cart.rs calls it.
    let price = server.open("src/price.rs").await;
    server
        .change(
            &price,
            vec![json!({"text": "pub struct Price { pub cents: u64 }\n/// Takes a share off.\npub fn discount(p: Price) -> Price { p }\n"})],
        )
        .await;
    let cart = server
        .open_text(
            "src/cart.rs",
            "use crate::price::*;\npub fn sale(p: Price) -> Price { discount(quadruple(p)) }\n",
        )
        .await;
    let cursor =
        json!({"start": {"line": 1, "character": 35}, "end": {"line": 1, "character": 35}});
    let (_, markdown) = show_context(&server, json!({"uri": cart, "range": cursor}))
        .await
        .expect("bundle");
    assert!(
        markdown.contains("| definition | src/price.rs:2-3 | discount |"),
        "{markdown}"
    );
    assert!(!markdown.contains("quadruple |"), "{markdown}");

    // A file created by another tool, announced by the watcher.
    let extra = server.root.join("src/extra.rs");
    std::fs::write(&extra, "pub fn quadruple(p: Price) -> Price { p }\n").expect("write");
    server
        .notify(
            "workspace/didChangeWatchedFiles",
            json!({"changes": [{"uri": server.uri("src/extra.rs"), "type": 1}]}),
        )
        .await;
    let (_, markdown) = show_context(&server, json!({"uri": cart, "range": cursor}))
        .await
        .expect("bundle");
    assert!(
        markdown.contains("| definition | src/extra.rs:1-1 | quadruple |"),
        "{markdown}"
    );

    // Closing price.rs drops its unsaved edit: the disk has no `discount`.
    server.close(&price).await;
    std::fs::remove_file(&extra).expect("rm");
    server
        .notify(
            "workspace/didChangeWatchedFiles",
            json!({"changes": [{"uri": server.uri("src/extra.rs"), "type": 3}]}),
        )
        .await;
    let (_, markdown) = show_context(&server, json!({"uri": cart, "range": cursor}))
        .await
        .expect("bundle");
    assert!(!markdown.contains("discount |"), "{markdown}");
    assert!(!markdown.contains("quadruple |"), "{markdown}");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_arguments_secrets_and_unknown_commands_are_clear_errors() {
    let server = indexed_shop().await;
    let err = show_context(&server, json!({"uri": server.uri(".env")}))
        .await
        .expect_err("a secret");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("looks like a secret")),
        "{err:#}"
    );
    let err = show_context(&server, json!({"range": 3}))
        .await
        .expect_err("bad argument");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("bad argument")),
        "{err:#}"
    );
    let err = server
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.nope", "arguments": []}),
        )
        .await
        .expect_err("unknown");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("conductor.nope")),
        "{err:#}"
    );
    server.shutdown().await;
}

/// Runs the real binary's `conductor context` on a fixture written to a temporary folder.
fn cli(fixture: &str, args: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = cli_in(dir.path(), fixture, args);
    (output, dir)
}

/// Writes `fixture` under `root` and runs `conductor` there with `args`.
fn cli_in(root: &std::path::Path, fixture: &str, args: &[&str]) -> std::process::Output {
    for file in crate::support::Fixture::parse(fixture).files {
        let path = root.join(&file.path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &file.text).expect("write");
    }
    std::process::Command::new(env!("CARGO_BIN_EXE_conductor"))
        .current_dir(root)
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn a_workspace_in_a_folder_named_like_a_secret_still_gives_bundles() {
    // `*credentials*` is a file-name pattern: the folders the workspace sits in never count.
    let parent = tempfile::tempdir().expect("temp dir");
    let root = parent.path().join("aws-credentials-demo");
    let out = cli_in(
        &root,
        SHOP,
        &["context", "src/cart.rs:5", "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let items = bundle["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|i| i["symbol"] == "from_cents" && i["file"] == "src/price.rs"),
        "{bundle:#}"
    );
    // What does look like a secret there is still refused.
    let out = cli_in(&root, SHOP, &["context", ".env:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("looks like a secret"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_cli_prints_the_bundle_as_json_with_one_based_lines() {
    let (out, _dir) = cli(
        SHOP,
        &[
            "context",
            "src/cart.rs:5:5",
            "--end",
            "6:20",
            "--format",
            "json",
            "--budget",
            "4000",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(bundle["budget"], 4000);
    let items = bundle["items"].as_array().expect("items");
    let total: u64 = items
        .iter()
        .map(|i| i["tokens"].as_u64().expect("tokens"))
        .sum();
    // The total counts the whole prompt: the items and its opening line.
    let whole = bundle["total_tokens"].as_u64().expect("total_tokens");
    assert!(total < whole && whole <= 4000, "{total} of {whole}");
    let first = &items[0];
    assert_eq!(
        (
            &first["kind"],
            &first["file"],
            &first["start_line"],
            &first["end_line"],
            &first["symbol"]
        ),
        (
            &json!("selection"),
            &json!("src/cart.rs"),
            &json!(5),
            &json!(6),
            &json!("total")
        )
    );
    for item in items {
        for key in [
            "kind",
            "file",
            "start_line",
            "end_line",
            "symbol",
            "reason",
            "score",
            "tokens",
        ] {
            assert!(item.get(key).is_some(), "{key} missing in {item:#}");
        }
    }
    assert!(
        items
            .iter()
            .any(|i| i["symbol"] == "from_cents" && i["file"] == "src/price.rs")
    );
}

#[test]
fn the_cli_explains_bad_positions_and_missing_files() {
    let (out, _dir) = cli(SHOP, &["context", "src/cart.rs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FILE:LINE"));
    let (out, _dir) = cli(SHOP, &["context", "src/missing.rs:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading src/missing.rs"));
    let (out, _dir) = cli(SHOP, &["context", "src/cart.rs:3", "--format", "prompt"]);
    assert!(out.status.success());
    let prompt = String::from_utf8_lossy(&out.stdout);
    assert!(prompt.starts_with("Context from the workspace"), "{prompt}");
    assert!(prompt.contains("src/price.rs:"), "{prompt}");
}

#[tokio::test]
async fn changed_context_settings_rebuild_the_index() {
    let server = indexed_shop().await;
    let uri = server.open("src/cart.rs").await;
    let range = selection(&server, "src/cart.rs");
    let (_, before) = show_context(&server, json!({"uri": uri, "range": range}))
        .await
        .expect("bundle");
    assert!(before.contains("src/price.rs"), "{before}");
    server.set_settings(json!({"context": {"exclude": ["src/price.rs"]}}));
    server
        .notify(
            "workspace/didChangeConfiguration",
            json!({"settings": null}),
        )
        .await;
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while server
        .notifications("$/progress")
        .iter()
        .filter(|n| n["params"]["value"]["kind"] == "end")
        .count()
        < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "no second indexing");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, after) = show_context(&server, json!({"uri": uri, "range": range}))
        .await
        .expect("bundle");
    assert!(!after.contains("src/price.rs"), "{after}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_cursor_at_the_very_top_of_a_file_gives_a_bundle() {
    // An insertion at the top of a file is a cursor at 0:0, in an open and in a closed file.
    let server = indexed_shop().await;
    let uri = server.open("src/cart.rs").await;
    let top = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}});
    for uri in [uri, server.uri("src/price.rs")] {
        let (result, markdown) = show_context(&server, json!({"uri": uri, "range": top}))
            .await
            .unwrap_or_else(|err| panic!("{uri}: {err:#}"));
        assert!(
            result["items"].as_u64().is_some_and(|n| n >= 2),
            "{result:#}"
        );
        assert!(
            markdown.contains("| 1 | selection | src/") && markdown.contains(":1-"),
            "{markdown}"
        );
    }
    server.shutdown().await;
    let (out, _dir) = cli(SHOP, &["context", "src/cart.rs:1", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (
            &bundle["items"][0]["kind"],
            &bundle["items"][0]["start_line"]
        ),
        (&json!("selection"), &json!(1)),
        "{bundle:#}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn show_context_on_a_fifo_named_rs_answers_promptly_and_the_session_goes_on() {
    // A FIFO used to block the whole server until a writer closed it.
    let server = indexed_shop().await;
    let fifo = server.root.join("src/pipe.rs");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let cursor = json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}});
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        server.request(
            "workspace/executeCommand",
            json!({"command": "conductor.showContext", "arguments": [{"uri": server.uri("src/pipe.rs"), "range": cursor}]}),
        ),
    )
    .await
    .expect("showContext on a FIFO answers instead of blocking");
    let error = answered.expect_err("a FIFO has no context");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a regular file")),
        "{error}"
    );
    // The session still serves requests.
    let hover = server
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": server.uri("src/cart.rs")}, "position": {"line": 0, "character": 0}}),
        )
        .await;
    assert!(hover.is_ok(), "{hover:?}");
}
