//! Benchmark of the document core: opening (full parse) a 10,000-line Rust file, a
//! single-character edit applied and incrementally reparsed, and the language server's idle
//! memory with that file open, on an empty workspace and on two indexed ones (this repository's
//! `server/src` and the generated 1,500-file workspace). Prints the figures recorded in
//! docs/performance.md.
//!
//! Run: `cargo bench --bench documents`. `CONDUCTOR_BENCH_PARTS=memory` (or `open`, `edits`,
//! comma-separated) runs only those parts.

#[path = "support/workspace.rs"]
mod workspace;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conductor::document::{Document, LineCol, PositionEncoding, TextChange};
use conductor::syntax::Language;
use serde_json::{Value, json};

/// A realistic 10,000-line Rust file: modules, structs, impls, functions, tests, comments.
fn ten_thousand_lines() -> String {
    let mut out = String::new();
    let mut i = 0usize;
    while out.lines().count() < 10_000 {
        out.push_str(&format!(
            r#"/// A record of kind {i}, with a doc comment that explains it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record{i} {{
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
}}

impl Record{i} {{
    /// Builds a record, validating its name.
    pub fn new(id: u64, name: &str) -> Result<Self, String> {{
        if name.is_empty() {{
            return Err(format!("record {{id}} has an empty name"));
        }}
        let tags = name.split('-').map(|s| s.to_string()).collect();
        Ok(Self {{ id, name: name.to_string(), tags }})
    }}

    pub fn score(&self) -> u64 {{
        let mut total = self.id;
        for (n, tag) in self.tags.iter().enumerate() {{
            total = total.wrapping_mul(31).wrapping_add(tag.len() as u64 * n as u64);
        }}
        match total % 3 {{
            0 => total / 2,
            1 => total * 3 + 1,
            _ => total,
        }}
    }}
}}

#[cfg(test)]
mod tests_{i} {{
    use super::*;

    #[test]
    fn builds_{i}() {{
        assert!(Record{i}::new(1, "a-b").is_ok());
    }}
}}

"#
        ));
        i += 1;
    }
    let lines: Vec<&str> = out.lines().take(10_000).collect();
    lines.join("\n") + "\n"
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "derive", "cfg", "test",
];

/// The byte offset just past the first identifier of `line` that is not a keyword (nor inside
/// a comment or a string), if there is one.
fn identifier_end(line: &str) -> Option<usize> {
    let code = line.split("//").next().unwrap_or("");
    let bytes = code.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if !in_string && (c.is_ascii_alphabetic() || c == b'_') {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if !KEYWORDS.contains(&&code[start..i]) {
                return Some(i);
            }
            continue;
        }
        i += 1;
    }
    None
}

fn bench_open(text: &str) {
    let rust = Language::by_name("rust");
    let mut times = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let mut doc = Document::new(text, 1, rust);
        assert!(doc.tree().is_some());
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "open (rope + full parse), {} lines, {} bytes: median {}, max {}",
        text.lines().count(),
        text.len(),
        ms(percentile(&times, 0.5)),
        ms(*times.last().expect("times"))
    );
}

fn bench_edits(text: &str, in_word: bool) {
    let rust = Language::by_name("rust");
    let mut doc = Document::new(text, 1, rust);
    let lines = text.lines().count() as u32;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut times = Vec::new();
    let mut reparses = Vec::new();
    let mut version = 1;
    let mut place = (0u32, 0u32);
    for n in 0..4_000 {
        // Alternate inserting a character at a random place and deleting it again, so the file
        // stays valid code, as when someone types a character and corrects it.
        let change = if n % 2 == 0 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut line = (seed % u64::from(lines)) as u32;
            let column = if in_word {
                // Right after the first identifier of the line that is not a keyword (the next
                // line that has one): typing inside a name, which keeps the code valid.
                loop {
                    let text = doc.text().line(line as usize).to_string();
                    if let Some(end) = identifier_end(&text) {
                        break end;
                    }
                    line = (line + 1) % lines;
                }
            } else {
                ((seed >> 32) % 8) as usize
            };
            place = (line, column as u32);
            TextChange {
                range: Some((
                    LineCol::new(place.0, place.1),
                    LineCol::new(place.0, place.1),
                )),
                text: "x".into(),
            }
        } else {
            TextChange {
                range: Some((
                    LineCol::new(place.0, place.1),
                    LineCol::new(place.0, place.1 + 1),
                )),
                text: String::new(),
            }
        };
        version += 1;
        let start = Instant::now();
        doc.apply_changes(
            std::slice::from_ref(&change),
            version,
            PositionEncoding::Utf16,
        );
        times.push(start.elapsed());
        // The reparse the keystroke left pending, as a feature's background thread does it.
        let start = Instant::now();
        assert!(doc.tree().is_some());
        reparses.push(start.elapsed());
    }
    times.sort();
    reparses.sort();
    println!(
        "single-character edit {} on the keystroke path (rope + tree edit, no reparse; {} edits): median {}, p99 {}, max {}",
        if in_word {
            "at the end of an identifier"
        } else {
            "at a random column 0-7"
        },
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("times"))
    );
    println!(
        "  its deferred incremental reparse (off the keystroke path): median {}, p99 {}, max {}",
        ms(percentile(&reparses, 0.5)),
        ms(percentile(&reparses, 0.99)),
        ms(*reparses.last().expect("times"))
    );
}

fn frame(message: &Value) -> Vec<u8> {
    let body = message.to_string();
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// How long the memory benchmark waits for the server to answer or to finish indexing.
const SERVER_LIMIT: Duration = Duration::from_secs(120);

/// A `conductor lsp` child process and a client that answers its requests as an editor would.
struct Child {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    messages: mpsc::Receiver<Value>,
}

impl Child {
    fn start() -> Child {
        let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
            .arg("lsp")
            .env("CONDUCTOR_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn conductor");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            while let Some(message) = read_message(&mut stdout) {
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        Child {
            child,
            stdin,
            messages,
        }
    }

    fn send(&mut self, message: &Value) {
        self.stdin
            .write_all(&frame(message))
            .expect("write to conductor");
    }

    /// Reads messages until one satisfies `done`, answering the server's requests meanwhile
    /// (progress creation, registrations, configuration). Panics after `SERVER_LIMIT`.
    fn until(&mut self, what: &str, done: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + SERVER_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.messages.recv_timeout(left) {
                Ok(message) => message,
                Err(_) => panic!("conductor did not get to {what} within {SERVER_LIMIT:?}"),
            };
            if let (Some(method), Some(id)) = (message["method"].as_str(), message.get("id")) {
                let result = match method {
                    "workspace/configuration" => {
                        let items = message["params"]["items"].as_array().map_or(0, Vec::len);
                        Value::Array(vec![Value::Null; items])
                    }
                    _ => Value::Null,
                };
                let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
                self.send(&answer);
            }
            if done(&message) {
                return;
            }
        }
    }

    fn stop(mut self) {
        self.send(&json!({"jsonrpc": "2.0", "id": 99, "method": "shutdown"}));
        self.send(&json!({"jsonrpc": "2.0", "method": "exit"}));
        let _ = self.child.wait();
    }
}

/// What the server indexes while its memory is measured.
enum Workspace {
    Empty,
    /// This repository's `server/src`, copied.
    ServerSources,
    /// The 1,500-file workspace of `support/workspace.rs`.
    Generated,
}

/// Fills `root` with the workspace; returns its label, file count and size for the table.
fn fill(root: &Path, workspace: &Workspace) -> String {
    fn copy_dir(from: &Path, to: &Path, files: &mut (usize, u64)) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read server/src") {
            let entry = entry.expect("dir entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("file type").is_dir() {
                copy_dir(&entry.path(), &target, files);
            } else {
                files.0 += 1;
                files.1 += std::fs::copy(entry.path(), &target).expect("copy a source file");
            }
        }
    }
    match workspace {
        Workspace::Empty => "empty workspace".into(),
        Workspace::ServerSources => {
            let mut files = (0, 0);
            let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
            copy_dir(&from, &root.join("src"), &mut files);
            format!(
                "this repository's server/src ({} files, {:.1} MB)",
                files.0,
                files.1 as f64 / 1e6
            )
        }
        Workspace::Generated => {
            let bytes = workspace::write(root, 0).expect("write the generated workspace");
            format!(
                "generated workspace ({} files, {:.1} MB)",
                workspace::FILES,
                bytes as f64 / 1e6
            )
        }
    }
}

fn bench_idle_memory(text: &str, workspace: &Workspace) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root_path = dir.path().canonicalize().expect("canonical temp dir");
    let label = fill(&root_path, workspace);
    let mut server = Child::start();
    let pid = server.child.id();
    let root = format!("file://{}", root_path.display());
    server.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"processId": null, "rootUri": root,
            "workspaceFolders": [{"uri": root, "name": "bench"}],
            "capabilities": {"window": {"workDoneProgress": true}}}}));
    server.until("answer initialize", |m| {
        m["id"] == 1 && m.get("method").is_none()
    });
    let before = rss_kib(pid).unwrap_or(0);
    server.send(&json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    // The index is built in the background; its progress ends when it is installed.
    server.until("finish indexing", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end"
    });
    std::thread::sleep(Duration::from_millis(1_000));
    let indexed = rss_kib(pid).unwrap_or(0);
    server.send(&json!({"jsonrpc": "2.0", "method": "textDocument/didOpen",
        "params": {"textDocument": {"uri": format!("{root}/big.rs"), "languageId": "rust",
            "version": 1, "text": text}}}));
    // A request answered after the open proves the open was processed (document changes are
    // applied in arrival order). It is a cheap one, so its answer does not inflate the RSS.
    server.send(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover",
        "params": {"textDocument": {"uri": format!("{root}/big.rs")},
            "position": {"line": 0, "character": 0}}}),
    );
    server.until("answer a hover after the open", |m| {
        m["id"] == 2 && m.get("method").is_none()
    });
    std::thread::sleep(Duration::from_millis(1_000));
    let idle = rss_kib(pid).unwrap_or(0);
    // The server hands freed memory back once it has been quiet for two seconds
    // (`util::release_freed_memory_soon`); 5 s after the open it has.
    std::thread::sleep(Duration::from_millis(4_000));
    let quiet = rss_kib(pid).unwrap_or(0);
    server.stop();
    println!(
        "server RSS, {label}: {:.1} MB after initialize, {:.1} MB indexed and idle, \
         {:.1} MB 1 s after opening the 10,000-line file, {:.1} MB 5 s after (quiet)",
        before as f64 / 1024.0,
        indexed as f64 / 1024.0,
        idle as f64 / 1024.0,
        quiet as f64 / 1024.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it quickly as a smoke test.
    let text = ten_thousand_lines();
    let parts = std::env::var("CONDUCTOR_BENCH_PARTS").ok();
    let wanted = |part: &str| {
        parts
            .as_deref()
            .is_none_or(|parts| parts.split(',').any(|p| p.trim() == part))
    };
    if wanted("open") {
        bench_open(&text);
    }
    if wanted("edits") {
        bench_edits(&text, true);
        bench_edits(&text, false);
    }
    if !wanted("memory") {
        return;
    }
    for workspace in [
        Workspace::Empty,
        Workspace::ServerSources,
        Workspace::Generated,
    ] {
        bench_idle_memory(&text, &workspace);
    }
}
