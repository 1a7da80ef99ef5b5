//! Unit tests of planning: line endings, redaction, order and the refusals that need no corpus.

use super::*;

struct Memory(Vec<(PathBuf, Vec<u8>)>);

impl TextSource for Memory {
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self
            .0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b.clone()))
    }
}

fn block(path: &str, search: &str, replace: &str) -> EditBlock {
    EditBlock {
        path: path.into(),
        search: search.into(),
        replace: replace.into(),
    }
}

fn setup(files: &[(&str, &str)]) -> (tempfile::TempDir, Workspace, Memory) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = Workspace::new(dir.path()).expect("root");
    let mem = Memory(
        files
            .iter()
            .map(|(p, t)| (ws.root().join(p), t.as_bytes().to_vec()))
            .collect(),
    );
    (dir, ws, mem)
}

#[test]
fn a_crlf_file_stays_crlf_and_the_base_hash_is_recorded() {
    let original = "fn a() {\r\n    1\r\n}\r\n";
    let (_d, ws, mem) = setup(&[("a.rs", original)]);
    let plan = plan_blocks(
        &ws,
        &[block("a.rs", "    1\n", "    2\n    3\n")],
        &mem,
        &Redactor::new(),
    );
    assert_eq!(plan.files[0].after, "fn a() {\r\n    2\r\n    3\r\n}\r\n");
    assert_eq!(
        plan.files[0].base_hash.as_deref(),
        Some(hash(original.as_bytes()).as_str())
    );
    assert_eq!(plan.blocks[0].base_hash, plan.files[0].base_hash);
    assert!(matches!(
        plan.blocks[0].status,
        BlockStatus::Applied {
            stage: Stage::Exact,
            before: LineSpan { first: 2, last: 2 },
            after: LineSpan { first: 2, last: 3 }
        }
    ));
}

#[test]
fn a_later_block_sees_what_an_earlier_one_wrote_and_a_refusal_stops_nothing() {
    let (_d, ws, mem) = setup(&[("a.rs", "let x = 1;\n")]);
    let plan = plan_blocks(
        &ws,
        &[
            block("a.rs", "let x = 1;\n", "let x = 2;\n"),
            block("a.rs", "missing\n", "x\n"),
            block("a.rs", "let x = 2;\n", "let x = 3;\n"),
        ],
        &mem,
        &Redactor::new(),
    );
    assert_eq!(plan.files[0].after, "let x = 3;\n");
    assert_eq!(
        plan.blocks[1].status,
        BlockStatus::Refused(Refusal::NotFound(None))
    );
    assert!(!plan.all_applied());
}

#[test]
fn known_placeholders_are_restored_and_unknown_ones_refuse_the_reply() {
    let secret = "AKIAIOSFODNN7EXAMPLE";
    let original = format!("const KEY: &str = \"{secret}\";\n");
    let (_d, ws, mem) = setup(&[("k.rs", &original)]);
    let redactor = Redactor::new();
    let redacted = redactor.redact(&original).text;
    assert_ne!(redacted, original, "the key is redacted");
    let replace = redacted.replace("const KEY", "pub const KEY");
    let plan = plan_blocks(&ws, &[block("k.rs", &redacted, &replace)], &mem, &redactor);
    assert_eq!(
        plan.files[0].after,
        format!("pub const KEY: &str = \"{secret}\";\n")
    );
    let invented = block(
        "k.rs",
        &redacted,
        "const KEY: &str = \"<redacted:aws-key:7>\";\n",
    );
    let plan = plan_blocks(
        &ws,
        &[block("k.rs", &redacted, &replace), invented],
        &mem,
        &redactor,
    );
    assert!(plan.files.is_empty(), "nothing of the reply applies");
    assert!(plan.blocks.iter().all(|b| matches!(&b.status, BlockStatus::Refused(Refusal::UnknownPlaceholder(p)) if p == &vec!["<redacted:aws-key:7>".to_string()])));
}

#[test]
fn a_replacement_that_elides_code_is_refused() {
    let (_d, ws, mem) = setup(&[("a.rs", "fn a() {\n    one();\n    two();\n}\n")]);
    let plan = plan_blocks(
        &ws,
        &[block(
            "a.rs",
            "fn a() {\n    one();\n    two();\n}\n",
            "fn a() {\n    // ... existing code ...\n    three();\n}\n",
        )],
        &mem,
        &Redactor::new(),
    );
    assert!(matches!(
        plan.blocks[0].status,
        BlockStatus::Refused(Refusal::ElidedReplacement { line: 2, .. })
    ));
    assert!(plan.files.is_empty());
}
