//! Edit application: the corpus under `tests/edits/` (each case a workspace, a reply and the
//! expected files or refusals), a property test of staged unique matching, and `conductor apply`
//! run as a real binary on a temporary workspace.
//!
//! A case file is a list of sections, each opened by a line `=== <kind> [args]`:
//! `file PATH [crlf] [noeol] [bom] [latin1]` (a workspace file), `outside PATH` (a file next to
//! the workspace root, which nothing may change), `symlink LINK -> TARGET`, `folder PATH`,
//! `redact` (text the run redacted before the model saw it, so its placeholders are known),
//! `reply [crlf]`, `expect PATH [options]` (a file's text afterwards; files not named must be
//! unchanged), `blocks` (one line per block: `N applied STAGE`, `N noop` or `N refused KIND`),
//! `reasons` (`N: text` that block N's reason must contain) and `parse-error` (text the error of
//! a reply that does not parse must contain). Lines starting with `#` before the first section
//! describe the case; a `# missed:` line marks a case where an applier could have guessed the
//! intent and says why refusing is right.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::rng::Rng;
use conductor::edits::{
    BlockStatus, DiskText, Workspace, matcher, plan_blocks, plan_edits, write_files,
};
use conductor::llm::protocol::EditBlock;
use conductor::llm::redact::Redactor;
use serde_json::Value;

#[derive(Debug, Default)]
struct Case {
    missed: Option<String>,
    files: Vec<(String, Vec<u8>)>,
    outside: Vec<(String, Vec<u8>)>,
    symlinks: Vec<(String, String)>,
    folders: Vec<String>,
    redact: Option<String>,
    reply: String,
    expect: Vec<(String, Vec<u8>)>,
    blocks: Vec<(usize, String)>,
    reasons: Vec<(usize, String)>,
    parse_error: Option<String>,
}

/// Applies a section's options to its text.
fn encode(text: &str, options: &[&str]) -> Vec<u8> {
    let mut text = text.to_string();
    if options.contains(&"noeol") {
        text = text.strip_suffix('\n').unwrap_or(&text).to_string();
    }
    if options.contains(&"crlf") {
        text = text.replace('\n', "\r\n");
    }
    if options.contains(&"bom") {
        text.insert(0, '\u{feff}');
    }
    if options.contains(&"latin1") {
        return text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect();
    }
    text.into_bytes()
}

fn parse_case(name: &str, source: &str) -> Case {
    let mut case = Case::default();
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in source.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix("=== ") {
            sections.push((header.trim_end().to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
        } else if let Some(why) = line.strip_prefix("# missed:") {
            case.missed = Some(why.trim().to_string());
        }
    }
    for (header, body) in sections {
        let words: Vec<&str> = header.split_whitespace().collect();
        let (kind, rest) = words
            .split_first()
            .unwrap_or_else(|| panic!("{name}: empty header"));
        match *kind {
            "file" | "outside" | "expect" => {
                let (path, options) = rest
                    .split_first()
                    .unwrap_or_else(|| panic!("{name}: `{header}` needs a path"));
                let entry = (path.to_string(), encode(&body, options));
                match *kind {
                    "file" => case.files.push(entry),
                    "outside" => case.outside.push(entry),
                    _ => case.expect.push(entry),
                }
            }
            "symlink" => {
                let [link, "->", target] = rest else {
                    panic!("{name}: `{header}`: write `symlink LINK -> TARGET`");
                };
                case.symlinks.push((link.to_string(), target.to_string()));
            }
            "folder" => case.folders.push(rest.join(" ")),
            "redact" => case.redact = Some(body),
            "reply" => {
                let bytes = encode(&body, rest);
                case.reply = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            "blocks" => {
                for line in body.lines().filter(|l| !l.trim().is_empty()) {
                    let (n, expected) = line
                        .trim()
                        .split_once(' ')
                        .unwrap_or_else(|| panic!("{name}: block line {line:?}"));
                    let n = n
                        .parse()
                        .unwrap_or_else(|e| panic!("{name}: {line:?}: {e}"));
                    case.blocks.push((n, expected.trim().to_string()));
                }
            }
            "reasons" => {
                for line in body.lines().filter(|l| !l.trim().is_empty()) {
                    let (n, text) = line
                        .split_once(": ")
                        .unwrap_or_else(|| panic!("{name}: reason line {line:?}"));
                    let n = n
                        .trim()
                        .parse()
                        .unwrap_or_else(|e| panic!("{name}: {line:?}: {e}"));
                    case.reasons.push((n, text.to_string()));
                }
            }
            "parse-error" => case.parse_error = Some(body.trim().to_string()),
            other => panic!("{name}: unknown section `{other}`"),
        }
    }
    assert!(
        !case.blocks.is_empty() || case.parse_error.is_some(),
        "{name}: a case needs a `blocks` or a `parse-error` section"
    );
    case
}

/// Every regular file under `dir` (symlinks as `-> target`), by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                out.insert(rel, format!("-> {}", target.display()).into_bytes());
            } else if meta.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    CorrectApply,
    CorrectRefusal,
    Missed,
    WrongApply(String),
    Failed(String),
}

fn status_name(status: &BlockStatus) -> String {
    match status {
        BlockStatus::Applied { stage, .. } => format!("applied {}", stage.name()),
        BlockStatus::Noop => "noop".into(),
        BlockStatus::Refused(r) => format!("refused {}", r.kind()),
    }
}

fn run_case(case: &Case) -> Verdict {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ws");
    std::fs::create_dir_all(&root).expect("root");
    for folder in &case.folders {
        std::fs::create_dir_all(root.join(folder)).expect("folder");
    }
    for (path, bytes) in &case.files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("parent folder");
        std::fs::write(p, bytes).expect("file");
    }
    for (path, bytes) in &case.outside {
        std::fs::write(dir.path().join(path), bytes).expect("outside file");
    }
    for (link, target) in &case.symlinks {
        let p = root.join(link);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("parent folder");
        #[cfg(unix)]
        std::os::unix::fs::symlink(target, &p).expect("symlink");
        #[cfg(not(unix))]
        return Verdict::CorrectRefusal; // Symlink cases need a Unix file system.
    }
    let before = snapshot(dir.path());
    let mut expected = before.clone();
    for (path, bytes) in &case.expect {
        expected.insert(format!("ws/{path}"), bytes.clone());
    }
    let workspace = Workspace::new(&root).expect("workspace");
    let redactor = Redactor::new();
    if let Some(text) = &case.redact {
        redactor.redact(text);
    }
    let plan = match plan_edits(&workspace, &case.reply, &DiskText, &redactor) {
        Ok(plan) => plan,
        Err(err) => {
            return match &case.parse_error {
                Some(want) if err.0.contains(want.as_str()) => Verdict::CorrectRefusal,
                Some(want) => Verdict::Failed(format!("parse error {:?} lacks {want:?}", err.0)),
                None => Verdict::Failed(format!("the reply does not parse: {err}")),
            };
        }
    };
    if case.parse_error.is_some() {
        return Verdict::Failed("the reply parsed, but a parse error was expected".into());
    }
    for w in write_files(&workspace, &plan) {
        if let Err(err) = w.result {
            return Verdict::Failed(format!("writing failed: {err}"));
        }
    }
    let after = snapshot(dir.path());
    let got: Vec<(usize, String)> = plan
        .blocks
        .iter()
        .map(|b| (b.index, status_name(&b.status)))
        .collect();
    let applied_unexpectedly = got.iter().any(|(n, status)| {
        status.starts_with("applied")
            && !case.blocks.iter().any(|(m, want)| m == n && want == status)
    });
    if after != expected && (after != before || applied_unexpectedly) {
        let changed: Vec<&String> = after
            .iter()
            .filter(|(k, v)| expected.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        return Verdict::WrongApply(format!(
            "files differ from the expectation: {changed:?}; blocks {got:?}"
        ));
    }
    if applied_unexpectedly {
        return Verdict::WrongApply(format!("blocks {got:?}, expected {:?}", case.blocks));
    }
    if got != case.blocks {
        return Verdict::Failed(format!("blocks {got:?}, expected {:?}", case.blocks));
    }
    if after != expected {
        let missing: Vec<&String> = expected
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        return Verdict::Failed(format!("expected changes not made to {missing:?}"));
    }
    for (n, text) in &case.reasons {
        let reason = plan
            .blocks
            .iter()
            .find(|b| b.index == *n)
            .and_then(|b| b.reason())
            .unwrap_or_default();
        if !reason.contains(text.as_str()) {
            return Verdict::Failed(format!("block {n}'s reason {reason:?} lacks {text:?}"));
        }
    }
    if got.iter().any(|(_, s)| s.starts_with("applied")) {
        Verdict::CorrectApply
    } else if case.missed.is_some() {
        Verdict::Missed
    } else {
        Verdict::CorrectRefusal
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/edits")
}

#[test]
fn the_edit_corpus_has_no_wrong_apply_and_every_case_meets_its_expectation() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/edits")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    paths.sort();
    let (mut apply, mut refusal, mut missed, mut wrong) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let case = parse_case(&name, &source);
        match run_case(&case) {
            Verdict::CorrectApply => apply += 1,
            Verdict::CorrectRefusal => refusal += 1,
            Verdict::Missed => missed += 1,
            Verdict::WrongApply(why) => {
                wrong += 1;
                failures.push(format!("{name}: WRONG APPLY: {why}"));
            }
            Verdict::Failed(why) => failures.push(format!("{name}: {why}")),
        }
        if case.missed.as_deref().is_some_and(str::is_empty) {
            failures.push(format!(
                "{name}: a missed case must say why refusing is right"
            ));
        }
    }
    println!(
        "edit corpus: {} cases: {apply} correct-apply, {refusal} correct-refusal, {missed} missed, {wrong} wrong-apply",
        paths.len()
    );
    assert!(
        paths.len() >= 80,
        "the corpus has {} cases; it needs at least 80",
        paths.len()
    );
    assert_eq!(wrong, 0, "wrong applies:\n{}", failures.join("\n"));
    assert!(
        failures.is_empty(),
        "cases that do not meet their expectation:\n{}",
        failures.join("\n")
    );
}

/// A random Rust-looking file whose lines are all distinct (each carries a counter), indented
/// by four spaces per level.
fn random_file(rng: &mut Rng, lines: usize) -> Vec<String> {
    const SHAPES: &[&str] = &[
        "let value_{} = compute({});",
        "if count_{} > {} {{",
        "}} // end of {}",
        "return Err(Error::Invalid({}, {}));",
        "self.items.push(Item::new({}, {}));",
        "// step {} of {}",
        "",
    ];
    let mut depth: usize = 1;
    (0..lines)
        .map(|i| {
            let shape = SHAPES[rng.below(SHAPES.len())];
            let text = shape
                .replacen("{}", &i.to_string(), 1)
                .replacen("{}", &rng.below(1000).to_string(), 1)
                .replace("{{", "{")
                .replace("}}", "}");
            let line = if text.is_empty() {
                // Blank lines carry a counter in a comment, so that ranges stay unique.
                format!("{}// blank {i}", "    ".repeat(depth))
            } else {
                format!("{}{text}", "    ".repeat(depth))
            };
            if text.ends_with('{') {
                depth = (depth + 1).min(4);
            } else if text.starts_with('}') {
                depth = depth.saturating_sub(1).max(1);
            }
            line
        })
        .collect()
}

#[test]
fn random_unique_ranges_apply_under_every_whitespace_variant_and_duplicated_ones_never_do() {
    let mut rng = Rng(0x5eed_c0de_1234_5678);
    for round in 0..300 {
        let size = 20 + rng.below(200);
        let file = random_file(&mut rng, size);
        let start = rng.below(file.len() - 1);
        let len = 1 + rng.below((file.len() - start).min(8));
        let range: Vec<&str> = file[start..start + len]
            .iter()
            .map(String::as_str)
            .collect();
        let replacement: Vec<String> = range
            .iter()
            .map(|l| format!("{l} // changed {round}"))
            .collect();
        let mut expected = file.clone();
        expected.splice(start..start + len, replacement.clone());
        let file_refs: Vec<&str> = file.iter().map(String::as_str).collect();
        // Each variant: the SEARCH and REPLACE lines a model might send, the stage that should
        // find them, and what the file's lines become.
        let shift = |lines: &[&str], f: &dyn Fn(&str) -> String| -> Vec<String> {
            lines.iter().map(|l| f(l)).collect()
        };
        let repl_refs: Vec<&str> = replacement.iter().map(String::as_str).collect();
        let variants: Vec<(&str, Vec<String>, Vec<String>, matcher::Stage)> = vec![
            (
                "exact",
                shift(&range, &|l| l.to_string()),
                shift(&repl_refs, &|l| l.to_string()),
                matcher::Stage::Exact,
            ),
            (
                "2 spaces in",
                shift(&range, &|l| format!("  {l}")),
                shift(&repl_refs, &|l| format!("  {l}")),
                matcher::Stage::Indentation,
            ),
            (
                "4 spaces out",
                shift(&range, &|l| l.strip_prefix("    ").unwrap_or(l).to_string()),
                shift(&repl_refs, &|l| {
                    l.strip_prefix("    ").unwrap_or(l).to_string()
                }),
                matcher::Stage::Indentation,
            ),
            (
                "a tab in",
                shift(&range, &|l| format!("\t{l}")),
                shift(&repl_refs, &|l| format!("\t{l}")),
                matcher::Stage::Indentation,
            ),
            (
                "trailing spaces",
                shift(&range, &|l| format!("{l}   ")),
                shift(&repl_refs, &|l| l.to_string()),
                matcher::Stage::Whitespace,
            ),
        ];
        for (what, search, replace, stage) in variants {
            let mut search_lines: Vec<&str> = search.iter().map(String::as_str).collect();
            if what == "trailing spaces" {
                search_lines.insert(0, "");
            }
            let replace_lines: Vec<&str> = replace.iter().map(String::as_str).collect();
            let m =
                matcher::find(&file_refs, &search_lines, &replace_lines).unwrap_or_else(|miss| {
                    panic!("round {round}, {what}: lines {start}+{len} missed: {miss:?}")
                });
            assert_eq!(
                (m.stage, m.start, m.len),
                (stage, start, len),
                "round {round}, {what}"
            );
            let mut got = file.clone();
            got.splice(m.start..m.start + m.len, m.replacement);
            assert_eq!(got, expected, "round {round}, {what}: wrong text");
        }
        // The same range twice (the file with the range appended again) is always refused, at
        // whichever stage finds it.
        let mut twice = file_refs.clone();
        twice.extend(range.iter().copied());
        let shifted: Vec<String> = range
            .iter()
            .map(|l| l.strip_prefix("    ").unwrap_or(l).to_string())
            .collect();
        let trailing: Vec<String> = range.iter().map(|l| format!("{l} ")).collect();
        for search in [
            range.clone(),
            shifted.iter().map(String::as_str).collect(),
            trailing.iter().map(String::as_str).collect(),
        ] {
            let miss = matcher::find(&twice, &search, &repl_refs).expect_err("twice");
            assert!(
                matches!(miss, matcher::Miss::Ambiguous { count, .. } if count >= 2),
                "round {round}: a range that occurs twice must be ambiguous, got {miss:?}"
            );
        }
    }
}

#[test]
fn plan_blocks_never_writes_a_file_and_re_anchors_on_a_newer_text() {
    // Matching is pure: the same block planned against a newer text lands on the newer lines.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.rs"), "fn a() {\n    old();\n}\n").expect("write");
    let ws = Workspace::new(dir.path()).expect("ws");
    let block = EditBlock {
        path: "a.rs".into(),
        search: "    old();\n".into(),
        replace: "    new();\n".into(),
    };
    let first = plan_blocks(
        &ws,
        std::slice::from_ref(&block),
        &DiskText,
        &Redactor::new(),
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.rs")).expect("read"),
        "fn a() {\n    old();\n}\n"
    );
    std::fs::write(
        dir.path().join("a.rs"),
        "// header\nfn a() {\n    old();\n}\n",
    )
    .expect("write");
    let second = plan_blocks(&ws, &[block], &DiskText, &Redactor::new());
    assert_ne!(first.files[0].base_hash, second.files[0].base_hash);
    assert!(
        matches!(second.blocks[0].status, BlockStatus::Applied { before, .. } if before.first == 3)
    );
    // A plan whose file changed on disk since is not written.
    std::fs::write(dir.path().join("a.rs"), "fn a() {}\n").expect("write");
    let written = write_files(&ws, &second);
    assert!(
        written[0]
            .result
            .as_ref()
            .is_err_and(|e| e.contains("changed on disk")),
        "{written:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.rs")).expect("read"),
        "fn a() {}\n"
    );
}

fn conductor(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_conductor"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn conductor");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LIB: &str = "pub fn port() -> u16 {\n    8080\n}\n\npub fn host() -> &'static str {\n    \"localhost\"\n}\n";

const GOOD: &str = "Use the standard port.\n\nsrc/lib.rs\n```rust\n<<<<<<< SEARCH\npub fn port() -> u16 {\n    8080\n}\n=======\npub fn port() -> u16 {\n    443\n}\n>>>>>>> REPLACE\n```\n";

#[test]
fn conductor_apply_shows_a_diff_and_writes_only_with_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("src")).expect("src");
    std::fs::write(dir.path().join("src/lib.rs"), LIB).expect("lib");
    std::fs::write(dir.path().join("reply.md"), GOOD).expect("reply");
    let root = dir.path().to_string_lossy().into_owned();
    let reply = dir.path().join("reply.md").to_string_lossy().into_owned();
    let (code, out, err) = conductor(&["apply", &reply, "--root", &root], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,5 +1,5 @@\n pub fn port() -> u16 {\n-    8080\n+    443\n }\n \n pub fn host() -> &'static str {\n"), "{out}");
    assert!(
        out.contains("block 1 src/lib.rs: applied (exact match), lines 1-3 -> 1-3"),
        "{out}"
    );
    assert!(out.contains("run with --apply"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("src/lib.rs")).expect("read"),
        LIB,
        "no write without --apply"
    );
    let (code, out, err) = conductor(&["apply", "-", "--apply", "--root", &root], Some(GOOD));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 file(s) written"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("src/lib.rs")).expect("read"),
        LIB.replace("8080", "443")
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("src"))
        .expect("src")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file is left: {leftovers:?}"
    );
}

#[test]
fn conductor_apply_json_reports_each_block_and_exits_1_on_a_refusal() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("src")).expect("src");
    std::fs::write(dir.path().join("src/lib.rs"), LIB).expect("lib");
    let root = dir.path().to_string_lossy().into_owned();
    let reply = format!(
        "{GOOD}\nsrc/lib.rs\n<<<<<<< SEARCH\npub fn host() -> &'static str {{\n    \"127.0.0.1\"\n}}\n=======\npub fn host() -> &'static str {{\n    \"::1\"\n}}\n>>>>>>> REPLACE\n\n.git/config\n<<<<<<< SEARCH\n=======\n[core]\n>>>>>>> REPLACE\n"
    );
    let (code, out, err) = conductor(
        &["apply", "-", "--apply", "--format", "json", "--root", &root],
        Some(&reply),
    );
    assert_eq!(code, 1, "a refused block exits 1: {out}{err}");
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let blocks = json["blocks"].as_array().expect("blocks");
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0]["index"], 1);
    assert_eq!(blocks[0]["status"], "applied");
    assert_eq!(blocks[0]["stage"], "exact");
    assert_eq!(blocks[0]["lines"]["before"], serde_json::json!([1, 3]));
    assert_eq!(blocks[0]["lines"]["after"], serde_json::json!([1, 3]));
    assert_eq!(blocks[1]["status"], "refused");
    assert!(
        blocks[1]["reason"]
            .as_str()
            .expect("reason")
            .contains("did you mean lines 5-7? The first difference is at line 6"),
        "{out}"
    );
    assert_eq!(blocks[1]["nearest"][1]["line"], 6);
    assert_eq!(blocks[1]["nearest"][1]["text"], "    \"localhost\"");
    assert_eq!(blocks[2]["file"], ".git/config");
    assert!(
        blocks[2]["reason"]
            .as_str()
            .expect("reason")
            .contains("protected"),
        "{out}"
    );
    for key in [
        "index",
        "file",
        "status",
        "stage",
        "reason",
        "lines",
        "candidates",
        "nearest",
    ] {
        assert!(blocks[2].get(key).is_some(), "every block has `{key}`");
    }
    assert_eq!(json["files"][0]["file"], "src/lib.rs");
    assert!(
        json["files"][0]["diff"]
            .as_str()
            .expect("diff")
            .contains("+    443\n")
    );
    // The applied block was written even though another was refused; `.git` was not created.
    assert!(
        std::fs::read_to_string(dir.path().join("src/lib.rs"))
            .expect("read")
            .contains("443")
    );
    assert!(!dir.path().join(".git").exists());
}

#[test]
fn conductor_apply_exits_2_on_a_reply_it_cannot_read_or_parse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().into_owned();
    let missing = dir.path().join("nope.md").to_string_lossy().into_owned();
    let (code, _, err) = conductor(&["apply", &missing, "--root", &root], None);
    assert_eq!(code, 2);
    assert!(err.contains("reading the reply"), "{err}");
    let (code, _, err) = conductor(
        &["apply", "-", "--root", &root],
        Some("src/a.rs\n<<<<<<< SEARCH\nx\n"),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("edit block 1 (src/a.rs) is unterminated"),
        "{err}"
    );
    let (code, _, _) = conductor(&["apply", "-", "--format", "yaml"], Some(""));
    assert_eq!(code, 2, "a usage error exits 2");
}
