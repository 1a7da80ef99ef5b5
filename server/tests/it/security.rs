//! The security scan end to end: the `examples/` demo, `conductor scan` output formats, exit
//! codes, configuration, ignore files and bad input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use conductor::security::{SecuritySettings, scan_paths};
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ has a parent")
        .to_path_buf()
}

/// A scratch folder under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "conductor-security-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(path, contents).expect("write scratch file");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn conductor(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run conductor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const VULNERABLE: &str = "fn client() -> reqwest::Client {\n    reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap()\n}\n";

#[test]
fn the_examples_demo_finds_exactly_its_known_problems() {
    let root = repo_root();
    let report =
        scan_paths(&[root.join("examples")], &SecuritySettings::default()).expect("scan examples");
    assert_eq!(report.files_scanned(), 6);
    let found: BTreeSet<(String, &str, usize)> = report
        .findings()
        .map(|(file, f)| {
            let name = file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let line = file.text[..f.range.start].matches('\n').count() + 1;
            (name, f.rule_id, line)
        })
        .collect();
    let expected: BTreeSet<(String, &str, usize)> = [
        ("auth.rs", "rust/weak-password-hash", 20),
        ("auth.rs", "rust/insecure-cookie", 58),
        ("handlers.rs", "rust/sql-injection", 28),
        ("handlers.rs", "rust/xss", 39),
        ("handlers.rs", "rust/command-injection", 64),
        ("partner.rs", "rust/tls-verification-disabled", 9),
        ("partner.rs", "rust/cleartext-transmission", 24),
    ]
    .into_iter()
    .map(|(f, r, l)| (f.to_string(), r, l))
    .collect();
    // The missing `// SAFETY:` comment in storage.rs is a lint: reported only when asked.
    assert_eq!(found, expected);
    let with_lints = SecuritySettings {
        lints: true,
        ..SecuritySettings::default()
    };
    let linted = scan_paths(&[root.join("examples")], &with_lints).expect("scan examples");
    let lints: Vec<(String, &str)> = linted
        .findings()
        .filter(|(_, f)| f.category == conductor::security::Category::Lint)
        .map(|(file, f)| (file.path.to_string_lossy().into_owned(), f.rule_id))
        .collect();
    assert_eq!(lints.len(), 1, "{lints:?}");
    assert!(lints[0].0.ends_with("storage.rs"), "{lints:?}");
    assert_eq!(lints[0].1, "rust/unsafe-without-safety-comment");
    // Data-flow findings carry their source as related information, source first.
    let (file, sql) = report
        .findings()
        .find(|(_, f)| f.rule_id == "rust/sql-injection")
        .expect("the SQL finding");
    let source = &sql.related[0];
    assert!(
        file.text[source.range.clone()].starts_with("Query(q)")
            || file.text[source.range.clone()] == *"q",
        "{:?}",
        &file.text[source.range.clone()]
    );
}

#[test]
fn lints_are_left_out_of_scan_and_sarif_unless_included() {
    let scratch = Scratch::new();
    scratch.write(
        "src/lib.rs",
        "pub fn first(v: &[u8]) -> u8 {\n    unsafe { *v.get_unchecked(0) }\n}\n",
    );
    let (code, stdout, stderr) = conductor(&scratch.0, &["scan", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(json["findings"], serde_json::json!([]));
    let (_, stdout, _) = conductor(&scratch.0, &["scan", "--format", "sarif"]);
    let sarif: Value = serde_json::from_str(&stdout).expect("SARIF output");
    assert_eq!(sarif["runs"][0]["results"], serde_json::json!([]));
    let listed = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    assert!(
        listed
            .iter()
            .all(|r| r["id"] != "rust/unsafe-without-safety-comment")
    );
    let (code, stdout, _) = conductor(
        &scratch.0,
        &[
            "scan",
            "--format",
            "json",
            "--include-lints",
            "--fail-on",
            "info",
        ],
    );
    assert_eq!(code, 1);
    let json: Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(
        json["findings"][0]["rule_id"],
        "rust/unsafe-without-safety-comment"
    );
    assert_eq!(json["findings"][0]["category"], "lint");
    // The configuration key does the same.
    scratch.write("conductor.toml", "[security]\nlints = true\n");
    let (_, stdout, _) = conductor(&scratch.0, &["scan", "--format", "sarif"]);
    let sarif: Value = serde_json::from_str(&stdout).expect("SARIF output");
    assert_eq!(
        sarif["runs"][0]["results"][0]["ruleId"],
        "rust/unsafe-without-safety-comment"
    );
}

#[test]
fn json_output_has_the_documented_shape_and_exit_codes_follow_fail_on() {
    let scratch = Scratch::new();
    scratch.write("src/lib.rs", VULNERABLE);
    let (code, stdout, stderr) = conductor(&scratch.0, &["scan", "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(json["files_scanned"], 1);
    assert!(json["duration_ms"].is_u64());
    let finding = &json["findings"][0];
    assert_eq!(finding["rule_id"], "rust/tls-verification-disabled");
    assert_eq!(finding["cwe"], serde_json::json!(["CWE-295"]));
    assert_eq!(finding["severity"], "high");
    assert_eq!(finding["file"], "src/lib.rs");
    assert_eq!(finding["line"], 2);
    assert_eq!(finding["end_line"], 2);
    assert_eq!(finding["column"], 32);
    assert_eq!(finding["end_column"], 65);
    assert!(finding["message"].as_str().is_some_and(|m| !m.is_empty()));

    assert_eq!(
        conductor(&scratch.0, &["scan", "--fail-on", "critical"]).0,
        0
    );
    assert_eq!(conductor(&scratch.0, &["scan", "--fail-on", "high"]).0, 1);
    assert_eq!(conductor(&scratch.0, &["scan", "--fail-on", "never"]).0, 0);
    assert_eq!(conductor(&scratch.0, &["scan", "--format", "xml"]).0, 2);

    let (code, stdout, _) = conductor(&scratch.0, &["scan", "src/lib.rs"]);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("src/lib.rs:2:32: high rust/tls-verification-disabled: "),
        "{stdout}"
    );
}

#[test]
fn configuration_errors_exit_with_2() {
    let scratch = Scratch::new();
    scratch.write("src/lib.rs", VULNERABLE);
    scratch.write("conductor.toml", "[security]\nmin_severity = \"severe\"\n");
    let (code, _, stderr) = conductor(&scratch.0, &["scan"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("security.min_severity"), "{stderr}");
}

#[test]
fn gitignore_excludes_and_settings_are_respected() {
    let scratch = Scratch::new();
    scratch.write(".gitignore", "vendor/\n");
    scratch.write("vendor/dep.rs", VULNERABLE);
    scratch.write("generated/out.rs", VULNERABLE);
    scratch.write("src/lib.rs", VULNERABLE);
    scratch.write("conductor.toml", "[security]\nexclude = [\"generated/\"]\n");
    let (code, stdout, stderr) = conductor(&scratch.0, &["scan", "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(json["files_scanned"], 1, "{json}");
    assert_eq!(json["findings"][0]["file"], "src/lib.rs");

    scratch.write(
        "conductor.toml",
        "[security]\nexclude = [\"generated/\"]\ndisabled_rules = [\"rust/tls-verification-disabled\"]\n",
    );
    assert_eq!(conductor(&scratch.0, &["scan"]).0, 0);
}

#[test]
fn a_scan_of_another_folder_reads_that_workspace_s_configuration() {
    let scratch = Scratch::new();
    // The current folder's configuration would disable the rule; the scanned workspace's
    // excludes `generated/`. Only the second may apply.
    scratch.write(
        "conductor.toml",
        "[security]\ndisabled_rules = [\"rust/tls-verification-disabled\"]\n",
    );
    scratch.write(
        "other/ws/Cargo.toml",
        "[package]\nname = \"ws\"\nedition = \"2021\"\n",
    );
    scratch.write(
        "other/ws/conductor.toml",
        "[security]\nexclude = [\"/generated/\"]\n",
    );
    scratch.write("other/ws/src/lib.rs", VULNERABLE);
    scratch.write("other/ws/generated/out.rs", VULNERABLE);
    let (code, stdout, stderr) = conductor(&scratch.0, &["scan", "other/ws", "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(json["files_scanned"], 1, "{json}");
    assert_eq!(json["findings"][0]["file"], "other/ws/src/lib.rs", "{json}");
    // A folder below the workspace root is scanned with the root's configuration.
    let (code, stdout, stderr) = conductor(
        &scratch.0,
        &[
            "scan",
            "other/ws/generated",
            "other/ws/src",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(json["files_scanned"], 1, "{json}");
    assert!(stderr.contains("not part of the workspace"), "{stderr}");
}

#[test]
fn binary_non_utf8_and_huge_files_are_skipped_with_a_note() {
    let scratch = Scratch::new();
    scratch.write("src/binary.rs", [0u8, 159, 146, 150, 0, 1, 2]);
    scratch.write("src/latin1.rs", b"// caf\xe9\nfn main() {}\n");
    scratch.write("src/huge.rs", "// padding\n".repeat(2000));
    scratch.write("src/broken.rs", format!("fn half( {{\n{VULNERABLE}"));
    scratch.write("conductor.toml", "[security]\nmax_file_bytes = 10000\n");
    let (code, stdout, stderr) = conductor(&scratch.0, &["scan", "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("binary.rs: skipped: binary file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("latin1.rs: skipped: not valid UTF-8"),
        "{stderr}"
    );
    assert!(stderr.contains("huge.rs: skipped: 22000 bytes"), "{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("JSON output");
    // The broken file is scanned and its intact part still reports.
    assert_eq!(json["files_scanned"], 1);
    assert_eq!(
        json["findings"][0]["rule_id"],
        "rust/tls-verification-disabled"
    );
}

#[test]
fn sarif_output_has_the_structure_the_schema_requires() {
    let scratch = Scratch::new();
    let out = scratch.0.join("out.sarif");
    let examples = repo_root().join("examples");
    let (code, _, stderr) = conductor(
        &repo_root(),
        &[
            "scan",
            &examples.to_string_lossy(),
            "--format",
            "sarif",
            "--output",
            &out.to_string_lossy(),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("SARIF written")).expect("JSON");
    // The properties SARIF 2.1.0 marks as required, at every level we emit.
    assert_eq!(sarif["version"], "2.1.0");
    let runs = sarif["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "conductor");
    let rules = driver["rules"].as_array().expect("rules");
    assert!(rules.len() >= 25);
    for rule in rules {
        assert!(rule["id"].is_string());
        assert!(rule["help"]["text"].as_str().is_some_and(|t| t.len() > 50));
        let tags = rule["properties"]["tags"].as_array().expect("tags");
        assert!(tags.iter().any(|t| {
            t.as_str()
                .is_some_and(|t| t.starts_with("external/cwe/cwe-"))
        }));
        assert!(
            ["none", "note", "warning", "error"]
                .contains(&rule["defaultConfiguration"]["level"].as_str().unwrap_or(""))
        );
    }
    let results = runs[0]["results"].as_array().expect("results");
    // The examples' eight problems less the missing `// SAFETY:` comment, a lint left out.
    assert_eq!(results.len(), 7);
    let mut flows = 0;
    for result in results {
        assert!(result["message"]["text"].is_string());
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let location = &result["locations"][0]["physicalLocation"];
        assert!(
            location["artifactLocation"]["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("file://"))
        );
        let region = &location["region"];
        assert!(region["startLine"].as_u64().is_some_and(|l| l >= 1));
        assert!(region["startColumn"].as_u64().is_some_and(|c| c >= 1));
        if let Some(code_flows) = result["codeFlows"].as_array() {
            flows += 1;
            let steps = code_flows[0]["threadFlows"][0]["locations"]
                .as_array()
                .expect("steps");
            assert!(steps.len() >= 2);
            for step in steps {
                assert!(step["location"]["physicalLocation"]["region"]["startLine"].is_u64());
            }
        }
    }
    assert_eq!(flows, 3, "the three data-flow findings carry code flows");
}

mod live {
    //! The security scan through the language server: live diagnostics, hover and quick
    //! fixes, driven by the in-process harness (the workspace scan is in `security_workspace`).

    use serde_json::{Value, json};

    use crate::support::{Options, TestServer, lsp_position};

    const HANDLER: &str = r#"use axum::extract::Query;
struct Params { tool: String }
async fn run(Query(p): Query<Params>) {
    let tool = p.tool.clone();
    let _ = std::process::Command::new(tool).status();
}
"#;

    const TLS: &str = "fn client() -> reqwest::Client {\n    reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap()\n}\n";

    fn settings() -> Value {
        json!({"security": {"debounce_ms": 20}})
    }

    /// Opens `text` at `path` and waits for its diagnostics, which must be exactly one finding of
    /// rule `code`; returns the server, the uri and that diagnostic.
    async fn one_finding(path: &str, text: &str, code: &str) -> (TestServer, String, Value) {
        let (server, uri) = open(path, text).await;
        let diagnostics = server.wait_diagnostics(&uri, |d| !d.is_empty()).await;
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        assert_eq!(diagnostics[0]["code"], code);
        let d = diagnostics[0].clone();
        (server, uri, d)
    }

    /// Checks that a data-flow diagnostic's first related location is its source: in `uri`, on
    /// `line`, described with `what`. Returns the related locations.
    fn assert_source<'d>(d: &'d Value, uri: &str, line: u64, what: &str) -> &'d Vec<Value> {
        let related = d["relatedInformation"]
            .as_array()
            .expect("related information");
        assert_eq!(related[0]["location"]["uri"], uri);
        assert_eq!(related[0]["location"]["range"]["start"]["line"], line);
        assert!(
            related[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains(what)),
            "{related:#?}"
        );
        related
    }

    /// A server with a short debounce and `text` open at `path`; returns both and the uri.
    async fn open(path: &str, text: &str) -> (TestServer, String) {
        let server = TestServer::start(Options {
            settings: settings(),
            ..Options::default()
        })
        .await;
        let uri = server.open_text(path, text).await;
        (server, uri)
    }

    #[tokio::test]
    async fn diagnostics_carry_rule_cwe_and_data_flow() {
        let (server, uri, d) =
            one_finding("src/handler.rs", HANDLER, "rust/command-injection").await;
        assert_eq!(d["source"], "conductor");
        assert_eq!(d["severity"], 1);
        assert_eq!(
            d["codeDescription"]["href"],
            "https://cwe.mitre.org/data/definitions/78.html"
        );
        assert_eq!(d["range"]["start"]["line"], 4);
        assert_source(&d, &uri, 2, "request data");
        let published = server.notifications("textDocument/publishDiagnostics");
        assert_eq!(published.last().expect("published")["params"]["version"], 1);
        server.shutdown().await;
    }

    /// The source is read inside a helper; the command runs in its caller.
    const HELPER: &str = r#"fn peer_command() -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect("127.0.0.1:7000").unwrap();
    let mut line = String::new();
    stream.read_to_string(&mut line).ok();
    line
}
fn run() {
    let cmd = peer_command();
    let _ = std::process::Command::new(cmd).status();
}
"#;

    #[tokio::test]
    async fn data_flow_through_a_helper_points_into_the_helper() {
        let (server, uri, d) = one_finding("src/peer.rs", HELPER, "rust/command-injection").await;
        assert_eq!(d["range"]["start"]["line"], 9);
        // The source is the connection opened inside `peer_command` (lines 0-6).
        let related = assert_source(&d, &uri, 2, "network socket");
        let returned = related
            .iter()
            .find(|r| r["message"] == "returned by `peer_command`")
            .expect("the step at the call");
        assert_eq!(returned["location"]["range"]["start"]["line"], 8);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn only_the_latest_version_is_published_and_close_clears() {
        let (server, uri) = open("src/lib.rs", TLS).await;
        // Three quick edits inside the debounce window; the last one fixes the code.
        let at = TLS.find("true").expect("literal");
        let start = lsp_position(TLS, at, &server.encoding);
        let end = lsp_position(TLS, at + 4, &server.encoding);
        server
            .change(
                &uri,
                vec![json!({"range": {"start": start, "end": end}, "text": "tru"})],
            )
            .await;
        let mid = lsp_position(TLS, at + 3, &server.encoding);
        server
            .change(
                &uri,
                vec![json!({"range": {"start": start, "end": mid}, "text": "fals"})],
            )
            .await;
        let version = server
            .change(
                &uri,
                vec![json!({"range": {"start": end, "end": end}, "text": "e"})],
            )
            .await;
        let text = server.debug_document(&uri).await.expect("doc")["text"].clone();
        assert!(
            text.as_str()
                .is_some_and(|t| t.contains("danger_accept_invalid_certs(false)")),
            "{text}"
        );
        let last = server
            .wait_notification("textDocument/publishDiagnostics", |n| {
                n["params"]["uri"] == uri.as_str() && n["params"]["version"] == version
            })
            .await;
        assert_eq!(last["params"]["diagnostics"], json!([]));
        // Nothing was published for an older version after the newest one.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let versions: Vec<Value> = server
            .notifications("textDocument/publishDiagnostics")
            .iter()
            .filter(|n| n["params"]["uri"] == uri.as_str())
            .map(|n| n["params"]["version"].clone())
            .collect();
        assert_eq!(versions.last(), Some(&json!(version)), "{versions:?}");
        assert!(
            versions.iter().all(|v| v
                .as_i64()
                .is_some_and(|v| v == 1 || v == i64::from(version))),
            "{versions:?}"
        );

        // Reopen the vulnerable text, then close: the diagnostics are cleared.
        server.close(&uri).await;
        let uri = server.open_text("src/other.rs", TLS).await;
        server.wait_diagnostics(&uri, |d| !d.is_empty()).await;
        server.close(&uri).await;
        let cleared = server
            .wait_notification("textDocument/publishDiagnostics", |n| {
                n["params"]["uri"] == uri.as_str() && n["params"]["version"].is_null()
            })
            .await;
        assert_eq!(cleared["params"]["diagnostics"], json!([]));
        server.shutdown().await;
    }

    /// C6 of the core review: a close that lands while the document's scan is running (or
    /// between its check and its publication) must leave the document with no diagnostics. Forty
    /// closes bracket the moment the scan publishes.
    #[tokio::test]
    async fn a_document_closed_while_its_scan_runs_is_left_without_diagnostics() {
        let server = TestServer::start(Options {
            settings: json!({"security": {"debounce_ms": 0}}),
            ..Options::default()
        })
        .await;
        // Reference scans (the second one warm): how long an open takes to be published here,
        // so the closes can bracket the moment of publication.
        let mut scan = std::time::Duration::ZERO;
        for probe in ["src/probe0.rs", "src/probe1.rs"] {
            let probe = server.open_text(probe, TLS).await;
            let started = std::time::Instant::now();
            server.wait_diagnostics(&probe, |d| !d.is_empty()).await;
            scan = started.elapsed().max(std::time::Duration::from_millis(1));
            server.close(&probe).await;
        }
        // From half the reference time to one and a half times it, in steps of a fortieth.
        let mut uris = Vec::new();
        for i in 0..40u32 {
            let uri = server.open_text(&format!("src/race{i}.rs"), TLS).await;
            tokio::time::sleep(scan * (20 + i) / 40).await;
            server.close(&uri).await;
            uris.push(uri);
        }
        // Wait until the server has been quiet for a while: every scan has ended.
        let mut seen = 0;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(300) + scan * 2).await;
            let now = server
                .notifications("textDocument/publishDiagnostics")
                .len();
            if now == seen {
                break;
            }
            seen = now;
        }
        let published = server.notifications("textDocument/publishDiagnostics");
        for uri in &uris {
            let last = published
                .iter()
                .rev()
                .find(|n| n["params"]["uri"] == uri.as_str())
                .expect("a close clears the document's diagnostics");
            assert_eq!(
                last["params"]["diagnostics"],
                json!([]),
                "{uri} was left with diagnostics after its close"
            );
        }
        server.shutdown().await;
    }

    /// C16 of the core review: the live scan's per-document maps give an entry back when its
    /// document closes (they used to keep one per URI ever opened).
    #[tokio::test]
    async fn closing_documents_gives_back_their_per_document_state() {
        let (server, _) = open("src/lib.rs", TLS).await;
        let mut uris = vec![server.uri("src/lib.rs")];
        for i in 0..10 {
            uris.push(server.open_text(&format!("src/m{i}.rs"), TLS).await);
        }
        for uri in &uris {
            server.wait_diagnostics(uri, |d| !d.is_empty()).await;
        }
        let open = server
            .request("conductor/status", json!(null))
            .await
            .expect("status");
        assert_eq!(open["documents"], 11, "{open}");
        assert_eq!(open["security"]["generations"], 11, "{open}");
        for uri in &uris {
            server.close(uri).await;
        }
        for uri in &uris {
            server
                .wait_notification("textDocument/publishDiagnostics", |n| {
                    n["params"]["uri"] == uri.as_str() && n["params"]["version"].is_null()
                })
                .await;
        }
        let closed = server
            .request("conductor/status", json!(null))
            .await
            .expect("status");
        assert_eq!(closed["documents"], 0, "{closed}");
        for map in ["generations", "caches", "published", "live", "pinned"] {
            assert_eq!(
                closed["security"][map], 0,
                "{map} kept closed documents: {closed}"
            );
        }
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_configuration_change_rescans_open_documents() {
        let (server, uri) = open("src/lib.rs", TLS).await;
        server.wait_diagnostics(&uri, |d| !d.is_empty()).await;
        let before = server
            .notifications("textDocument/publishDiagnostics")
            .len();
        server.set_settings(json!({"security": {
            "debounce_ms": 20,
            "disabled_rules": ["rust/tls-verification-disabled"]
        }}));
        server
            .notify("workspace/didChangeConfiguration", json!({"settings": {}}))
            .await;
        let after = server
            .wait_notification("textDocument/publishDiagnostics", |n| {
                n["params"]["uri"] == uri.as_str() && n["params"]["diagnostics"] == json!([])
            })
            .await;
        assert_eq!(after["params"]["version"], 1);
        assert!(
            server
                .notifications("textDocument/publishDiagnostics")
                .len()
                > before
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn hover_explains_the_finding_and_its_data_flow() {
        let (server, uri) = open("src/handler.rs", HANDLER).await;
        server.wait_diagnostics(&uri, |d| !d.is_empty()).await;
        let at = HANDLER.find("Command::new").expect("sink");
        let hover = server.hover(&uri, HANDLER, at + 3).await.expect("hover");
        let value = hover["contents"]["value"].as_str().expect("markdown");
        assert_eq!(hover["contents"]["kind"], "markdown");
        assert!(value.contains("rust/command-injection"), "{value}");
        assert!(
            value.contains("[CWE-78](https://cwe.mitre.org/data/definitions/78.html)"),
            "{value}"
        );
        assert!(value.contains("Data flow:"), "{value}");
        assert!(value.contains("**Fix:**"), "{value}");
        // Away from the finding there is nothing to say.
        let none = server.hover(&uri, HANDLER, 2).await.expect("hover");
        assert!(none.is_null(), "{none}");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn quick_fix_removes_the_problem_and_keeps_code_that_parses() {
        let (server, uri) = open("src/lib.rs", TLS).await;
        let diagnostics = server.wait_diagnostics(&uri, |d| !d.is_empty()).await;
        let range = diagnostics[0]["range"].clone();
        let actions = server
            .request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": uri}, "range": range, "context": {"diagnostics": diagnostics}}),
            )
            .await
            .expect("code actions");
        let actions = actions.as_array().expect("a list");
        let titles: Vec<&str> = actions.iter().filter_map(|a| a["title"].as_str()).collect();
        assert!(
            titles.contains(&"Remove the call that disables verification"),
            "{titles:?}"
        );
        assert!(
            titles
                .iter()
                .any(|t| t.starts_with("Suppress rust/tls-verification-disabled")),
            "{titles:?}"
        );
        let fix = actions
            .iter()
            .find(|a| a["title"] == "Remove the call that disables verification")
            .expect("the fix");
        assert_eq!(fix["kind"], "quickfix");
        let change = &fix["edit"]["documentChanges"][0];
        assert_eq!(change["textDocument"]["version"], 1);
        let edit = &change["edits"][0];
        // Apply the edit as the client would, then let the server see it.
        let version = server
            .change(
                &uri,
                vec![json!({"range": edit["range"], "text": edit["newText"]})],
            )
            .await;
        let text = server.debug_document(&uri).await.expect("doc")["text"]
            .as_str()
            .expect("text")
            .to_string();
        assert_eq!(
            text,
            "fn client() -> reqwest::Client {\n    reqwest::Client::builder().build().unwrap()\n}\n"
        );
        let after = server
            .wait_notification("textDocument/publishDiagnostics", |n| {
                n["params"]["uri"] == uri.as_str() && n["params"]["version"] == version
            })
            .await;
        assert_eq!(after["params"]["diagnostics"], json!([]));
        server.shutdown().await;
    }
}
