//! The workspace scan through the language server: diagnostics for closed files with
//! cancellable progress, a new scan replacing a running one, and closed files' diagnostics
//! kept current with the disk (`workspace/didChangeWatchedFiles`) once a scan asked for them.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Options, TestServer};

const TLS: &str = "fn client() -> reqwest::Client {\n    reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap()\n}\n";
const CLEAN: &str = "pub fn ok() -> u8 {\n    1\n}\n";
const STATIC_MUT: &str = "static mut COUNTER: u8 = 0;\n";
const SCAN_TOKEN: &str = "conductor/scanWorkspace/";
const DIAGNOSTICS: &str = "textDocument/publishDiagnostics";

fn settings() -> Value {
    json!({"security": {"debounce_ms": 20, "exclude": ["target/", "generated/"]}})
}

/// Options with the settings given at `initialize` too: the client's answer to
/// `workspace/configuration` may arrive after the first command.
fn options(fixture: &'static str) -> Options {
    Options {
        settings: settings(),
        init_options: Some(settings()),
        fixture,
        ..Options::default()
    }
}

/// Starts `conductor.scanWorkspace` and returns the command's answer.
async fn scan(server: &TestServer) -> Value {
    server
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.scanWorkspace", "arguments": []}),
        )
        .await
        .expect("command accepted")
}

/// Waits for the `end` of the progress `token`; returns its message.
async fn scan_end(server: &TestServer, token: &Value) -> String {
    let end = server
        .wait_notification("$/progress", |n| {
            n["params"]["token"] == *token && n["params"]["value"]["kind"] == "end"
        })
        .await;
    end["params"]["value"]["message"]
        .as_str()
        .expect("an end message")
        .to_string()
}

/// Index in the list of `$/progress` notifications of the one of `token` with `kind`.
fn progress_index(server: &TestServer, token: &Value, kind: &str) -> usize {
    server
        .notifications("$/progress")
        .iter()
        .position(|n| n["params"]["token"] == *token && n["params"]["value"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} for {token}"))
}

/// Every diagnostics notification for `uri`, in order.
fn published_for(server: &TestServer, uri: &str) -> Vec<Value> {
    server
        .notifications(DIAGNOSTICS)
        .into_iter()
        .filter(|n| n["params"]["uri"] == uri)
        .collect()
}

/// The URIs with diagnostics published under `dir` (each counted once).
fn published_under(server: &TestServer, dir: &str) -> std::collections::BTreeSet<String> {
    let prefix = server.uri(dir);
    server
        .notifications(DIAGNOSTICS)
        .iter()
        .filter_map(|n| n["params"]["uri"].as_str())
        .filter(|u| u.starts_with(&prefix))
        .map(String::from)
        .collect()
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Writes `count` files with a TLS finding each under `dir`.
fn write_many(root: &Path, dir: &str, count: usize) {
    for i in 0..count {
        write(root, &format!("{dir}/f{i:05}.rs"), TLS);
    }
}

/// Sends `workspace/didChangeWatchedFiles` (1 created, 2 changed, 3 deleted).
async fn watched(server: &TestServer, changes: &[(&str, u8)]) {
    let changes: Vec<Value> = changes
        .iter()
        .map(|(path, typ)| json!({"uri": server.uri(path), "type": typ}))
        .collect();
    server
        .notify(
            "workspace/didChangeWatchedFiles",
            json!({"changes": changes}),
        )
        .await;
}

/// Waits for diagnostics for `path` published after the first `seen` diagnostics
/// notifications, that satisfy `accept`.
async fn diagnostics_after(
    server: &TestServer,
    seen: usize,
    path: &str,
    accept: impl Fn(&[Value]) -> bool,
) -> Value {
    let uri = server.uri(path);
    server
        .wait_notification_after(DIAGNOSTICS, seen, |n| {
            n["params"]["uri"] == uri.as_str()
                && n["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|d| accept(d))
        })
        .await
}

#[tokio::test]
async fn workspace_scan_publishes_for_files_on_disk_with_progress() {
    let server = TestServer::start(options(
        r#"
//- /src/lib.rs
pub fn ok() {}
//- /src/net.rs
fn client() -> reqwest::Client {
    reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap()
}
//- /target/debug/build/gen.rs
static mut GENERATED: u8 = 0;
//- /generated/x.rs
static mut EXCLUDED: u8 = 0;
//- /.gitignore
ignored/
//- /ignored/x.rs
static mut IGNORED: u8 = 0;
"#,
    ))
    .await;
    let answer = scan(&server).await;
    assert_eq!(answer["started"], true);
    assert_eq!(answer["replacedRunningScan"], false);
    let token = answer["token"].clone();
    assert!(
        token.as_str().is_some_and(|t| t.starts_with(SCAN_TOKEN)),
        "{answer}"
    );
    let net = server.uri("src/net.rs");
    let diagnostics = server.wait_diagnostics(&net, |d| !d.is_empty()).await;
    assert_eq!(diagnostics[0]["code"], "rust/tls-verification-disabled");
    assert_eq!(scan_end(&server, &token).await, "1 finding in 2 files");
    let begin = &server.notifications("$/progress")[progress_index(&server, &token, "begin")];
    assert_eq!(begin["params"]["value"]["cancellable"], true, "{begin}");
    let report = &server.notifications("$/progress")[progress_index(&server, &token, "report")];
    assert_eq!(report["params"]["value"]["cancellable"], true, "{report}");
    let published: Vec<String> = server
        .notifications(DIAGNOSTICS)
        .iter()
        .filter_map(|n| n["params"]["uri"].as_str().map(String::from))
        .collect();
    assert!(published.contains(&server.uri("src/lib.rs")));
    assert!(
        !published.iter().any(|u| u.contains("/target/")
            || u.contains("/ignored/")
            || u.contains("/generated/")),
        "{published:?}"
    );
    let unknown = server
        .request(
            "workspace/executeCommand",
            json!({"command": "conductor.nope"}),
        )
        .await;
    assert!(unknown.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn cancelling_the_progress_stops_the_scan_and_keeps_what_was_published() {
    const FILES: usize = 1000;
    let server = TestServer::start(options("")).await;
    write_many(&server.root, "src/gen", FILES);
    // The client cancels on the first report (sent after 1% of the files); the server checks
    // before every file, so the scan stops long before its 1,000th file (a full scan of these
    // files takes seconds in a debug build, the cancel a few milliseconds).
    server.cancel_progress_on(SCAN_TOKEN, "report");
    let answer = scan(&server).await;
    let token = answer["token"].clone();
    let message = scan_end(&server, &token).await;
    let scanned: usize = message
        .strip_prefix("cancelled after ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the end says the scan was cancelled: {message}"));
    assert!(message.contains(&format!("of {FILES} files")), "{message}");
    assert!((FILES / 100..FILES).contains(&scanned), "{message}");
    // Every file scanned before the cancel had its diagnostics published, and they stay: no
    // file got a second, clearing notification.
    let published = published_under(&server, "src/gen");
    assert_eq!(published.len(), scanned, "{message}");
    let cleared = server
        .notifications(DIAGNOSTICS)
        .iter()
        .filter(|n| n["params"]["diagnostics"] == json!([]))
        .count();
    assert_eq!(cleared, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_new_scan_cancels_the_running_one_and_starts_over() {
    const FILES: usize = 40;
    let server = TestServer::start(options("")).await;
    write_many(&server.root, "src/gen", FILES);
    // The first scan waits for the client to accept its progress token; meanwhile the user
    // runs the command again.
    server.hold_progress_create(SCAN_TOKEN);
    let first = scan(&server).await;
    let second = scan(&server).await;
    assert_eq!(first["replacedRunningScan"], false);
    assert_eq!(second["replacedRunningScan"], true);
    assert_ne!(first["token"], second["token"]);
    server.release_progress_create();
    let second_end = scan_end(&server, &second["token"]).await;
    assert_eq!(
        second_end,
        format!("{FILES} findings in {FILES} files"),
        "the new scan runs to the end"
    );
    let first_end = scan_end(&server, &first["token"]).await;
    assert_eq!(
        first_end,
        format!("cancelled by a new scan after 0 of {FILES} files (0 findings published)")
    );
    // The old scan ended before the new one began.
    assert!(
        progress_index(&server, &first["token"], "end")
            < progress_index(&server, &second["token"], "begin")
    );
    assert_eq!(published_under(&server, "src/gen").len(), FILES);
    server.shutdown().await;
}

#[tokio::test]
async fn without_work_done_progress_the_scan_still_runs() {
    let server = TestServer::start(Options {
        work_done_progress: false,
        fixture: r#"
//- /src/net.rs
fn client() -> reqwest::Client {
    reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap()
}
"#,
        ..options("")
    })
    .await;
    let answer = scan(&server).await;
    assert_eq!(answer["started"], true);
    assert!(answer["token"].is_null(), "{answer}");
    let net = server.uri("src/net.rs");
    server.wait_diagnostics(&net, |d| !d.is_empty()).await;
    // No token was created, so there is no progress to show or to cancel.
    assert!(
        server
            .server_requests("window/workDoneProgress/create")
            .is_empty()
    );
    assert!(server.notifications("$/progress").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn closed_files_follow_the_disk_after_a_workspace_scan() {
    let server = TestServer::start(options(
        r#"
//- /src/lib.rs
pub fn ok() {}
//- /src/net.rs
fn client() -> reqwest::Client {
    reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap()
}
//- /.gitignore
ignored/
"#,
    ))
    .await;
    let root = server.root.clone();
    let lib = server.uri("src/lib.rs");

    // Before any workspace scan the client has not asked for closed files' diagnostics. The
    // first scan is held at its progress token while a change is reported; the refresh of a
    // later change is the barrier: changes are processed in order, so had the earlier one been
    // acted on, its diagnostics would come first.
    watched(&server, &[("src/lib.rs", 2)]).await;
    server.hold_progress_create(SCAN_TOKEN);
    let token = scan(&server).await["token"].clone();
    write(&root, "src/early.rs", TLS);
    watched(&server, &[("src/early.rs", 1)]).await;
    diagnostics_after(&server, 0, "src/early.rs", |d| d.len() == 1).await;
    assert!(published_for(&server, &lib).is_empty());
    server.release_progress_create();
    assert_eq!(scan_end(&server, &token).await, "1 finding in 3 files");
    assert_eq!(
        published_for(&server, &lib).last().expect("scanned")["params"]["diagnostics"],
        json!([])
    );

    // A finding appears in a closed file.
    let seen = server.notifications(DIAGNOSTICS).len();
    write(&root, "src/lib.rs", TLS);
    watched(&server, &[("src/lib.rs", 2)]).await;
    let now = diagnostics_after(&server, seen, "src/lib.rs", |d| !d.is_empty()).await;
    assert_eq!(
        now["params"]["diagnostics"][0]["code"],
        "rust/tls-verification-disabled"
    );
    assert_eq!(now["params"]["diagnostics"][0]["range"]["start"]["line"], 1);
    assert!(now["params"]["version"].is_null());

    // A finding disappears.
    let seen = server.notifications(DIAGNOSTICS).len();
    write(&root, "src/net.rs", CLEAN);
    watched(&server, &[("src/net.rs", 2)]).await;
    diagnostics_after(&server, seen, "src/net.rs", <[Value]>::is_empty).await;

    // A deleted file's diagnostics are cleared.
    let seen = server.notifications(DIAGNOSTICS).len();
    std::fs::remove_file(root.join("src/lib.rs")).expect("delete");
    watched(&server, &[("src/lib.rs", 3)]).await;
    diagnostics_after(&server, seen, "src/lib.rs", <[Value]>::is_empty).await;

    // A new file is scanned.
    let seen = server.notifications(DIAGNOSTICS).len();
    write(&root, "src/new.rs", STATIC_MUT);
    watched(&server, &[("src/new.rs", 1)]).await;
    let new = diagnostics_after(&server, seen, "src/new.rs", |d| !d.is_empty()).await;
    assert_eq!(new["params"]["diagnostics"][0]["code"], "rust/static-mut");

    // Excluded, ignored and non-Rust files stay unreported; the last file of the same batch
    // is the barrier (a batch is published in order).
    let seen = server.notifications(DIAGNOSTICS).len();
    for path in [
        "generated/x.rs",
        "ignored/y.rs",
        "target/debug/z.rs",
        "src/notes.txt",
    ] {
        write(&root, path, STATIC_MUT);
    }
    write(&root, "src/late.rs", STATIC_MUT);
    watched(
        &server,
        &[
            ("generated/x.rs", 1),
            ("ignored/y.rs", 1),
            ("target/debug/z.rs", 1),
            ("src/notes.txt", 1),
            ("src/late.rs", 1),
        ],
    )
    .await;
    diagnostics_after(&server, seen, "src/late.rs", |d| !d.is_empty()).await;
    let after: Vec<Value> = server
        .notifications(DIAGNOSTICS)
        .into_iter()
        .skip(seen)
        .map(|n| n["params"]["uri"].clone())
        .collect();
    assert_eq!(after, vec![json!(server.uri("src/late.rs"))]);

    // The file watcher covers Rust files.
    let registrations = server.server_requests("client/registerCapability");
    assert!(
        registrations.iter().any(|r| {
            r["params"]["registrations"][0]["registerOptions"]["watchers"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w["globPattern"] == "**/*.rs"))
        }),
        "{registrations:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_open_document_keeps_its_live_diagnostics_over_the_disk() {
    let server = TestServer::start(options(
        r#"
//- /src/lib.rs
pub fn ok() {}
//- /src/other.rs
pub fn other() {}
"#,
    ))
    .await;
    let root = server.root.clone();
    let uri = server.open_text("src/lib.rs", TLS).await;
    server.wait_diagnostics(&uri, |d| !d.is_empty()).await;
    let token = scan(&server).await["token"].clone();
    assert_eq!(scan_end(&server, &token).await, "0 findings in 2 files");

    // The disk changes under the open buffer; the other file's refresh is the barrier.
    write(&root, "src/lib.rs", STATIC_MUT);
    let seen = server.notifications(DIAGNOSTICS).len();
    watched(&server, &[("src/lib.rs", 2), ("src/other.rs", 2)]).await;
    diagnostics_after(&server, seen, "src/other.rs", |_| true).await;
    let live = published_for(&server, &uri);
    assert!(
        live.iter().all(|n| n["params"]["version"] == 1),
        "only live diagnostics for the open document: {live:#?}"
    );
    assert_eq!(
        live.last().expect("live")["params"]["diagnostics"][0]["code"],
        "rust/tls-verification-disabled"
    );

    // Closed, the file is what the disk says again.
    let seen = server.notifications(DIAGNOSTICS).len();
    server.close(&uri).await;
    let disk = diagnostics_after(&server, seen, "src/lib.rs", |d| !d.is_empty()).await;
    assert_eq!(disk["params"]["diagnostics"][0]["code"], "rust/static-mut");
    assert!(disk["params"]["version"].is_null());
    server.shutdown().await;
}

#[tokio::test]
async fn a_security_settings_change_scans_the_workspace_again() {
    let server = TestServer::start(options(
        r#"
//- /src/net.rs
fn client() -> reqwest::Client {
    reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap()
}
"#,
    ))
    .await;
    let token = scan(&server).await["token"].clone();
    assert_eq!(scan_end(&server, &token).await, "1 finding in 1 file");

    // A configuration change that leaves `[security]` as it was does not scan again: the server
    // has pulled and applied it once the client has answered.
    let pulls = server.server_requests("workspace/configuration").len();
    server
        .notify("workspace/didChangeConfiguration", json!({"settings": {}}))
        .await;
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while server.server_requests("workspace/configuration").len() == pulls {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no configuration pull"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Disabling the rule scans again, and the closed file's finding goes away.
    let seen = server.notifications(DIAGNOSTICS).len();
    server.set_settings(json!({"security": {
        "debounce_ms": 20,
        "exclude": ["target/", "generated/"],
        "disabled_rules": ["rust/tls-verification-disabled"]
    }}));
    server
        .notify("workspace/didChangeConfiguration", json!({"settings": {}}))
        .await;
    diagnostics_after(&server, seen, "src/net.rs", <[Value]>::is_empty).await;
    let again = json!(format!("{SCAN_TOKEN}2"));
    assert_eq!(scan_end(&server, &again).await, "0 findings in 1 file");
    let scans: Vec<Value> = server
        .server_requests("window/workDoneProgress/create")
        .iter()
        .map(|r| r["params"]["token"].clone())
        .filter(|t| t.as_str().is_some_and(|t| t.starts_with(SCAN_TOKEN)))
        .collect();
    assert_eq!(scans, vec![token, again], "one scan per settings change");
    server.shutdown().await;
}

/// A crate whose handler file passes nothing untrusted to the store file on disk.
const API_ON_DISK: &str = "use axum::extract::Query;\n\
    async fn housekeeping() {\n\
    \x20   store::open_upload(\"motd.txt\");\n\
    }\n";
/// The same file as edited in the editor: a request parameter now reaches the store.
const API_EDITED: &str = "use axum::extract::Query;\n\
    async fn housekeeping() {\n\
    \x20   store::open_upload(\"motd.txt\");\n\
    }\n\
    async fn upload(Query(u): Query<Upload>) {\n\
    \x20   store::open_upload(&u.name);\n\
    }\n";
const STORE: &str = "pub fn open_upload(name: &str) -> std::io::Result<std::fs::File> {\n\
    \x20   std::fs::File::open(format!(\"/srv/uploads/{name}\"))\n\
    }\n";

#[tokio::test]
async fn an_edit_in_one_open_file_reaches_the_sink_in_another_open_file_of_the_crate() {
    let server = TestServer::start(options(
        r#"
//- /Cargo.toml
[package]
name = "shop"
//- /src/api.rs
pub fn placeholder() {}
//- /src/store.rs
pub fn placeholder2() {}
"#,
    ))
    .await;
    let root = server.root.clone();
    write(&root, "src/api.rs", API_ON_DISK);
    write(&root, "src/store.rs", STORE);
    let token = scan(&server).await["token"].clone();
    assert_eq!(scan_end(&server, &token).await, "0 findings in 2 files");

    // Both open; the sink's file has nothing to report while no caller passes it taint.
    let store = server.open_text("src/store.rs", STORE).await;
    server.wait_diagnostics(&store, |d| d.is_empty()).await;
    let api = server.open_text("src/api.rs", API_ON_DISK).await;
    server.wait_diagnostics(&api, |d| d.is_empty()).await;

    // The source arrives by typing in the other file: its summary is recomputed and the
    // store's live scan, run again as a dependent, follows the call across files.
    server.change(&api, vec![json!({"text": API_EDITED})]).await;
    let found = server
        .wait_diagnostics(&store, |d| {
            d.iter().any(|x| x["code"] == "rust/path-traversal")
        })
        .await;
    let finding = found
        .iter()
        .find(|x| x["code"] == "rust/path-traversal")
        .expect("the path-traversal finding");
    let trace = finding["relatedInformation"].to_string();
    assert!(
        trace.contains("passed to `open_upload` at api.rs:6"),
        "the call site in the edited file is in the trace: {trace}"
    );
    server.shutdown().await;
}
