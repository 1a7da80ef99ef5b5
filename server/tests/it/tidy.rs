//! Keeping the house in order: every query compiles, every query file on disk is embedded, and
//! every source file says what it owns.

use std::path::{Path, PathBuf};

use conductor::syntax::{Language, compile_query};

fn files_with_extension(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files_with_extension(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the repository")
        .to_path_buf()
}

#[test]
fn every_query_compiles_against_its_grammar() {
    let mut compiled = 0;
    for language in Language::all() {
        for (name, source) in language.query_sources() {
            if let Err(err) = compile_query(language, source) {
                panic!("queries/{}/{name}: {err}", language.name);
            }
            compiled += 1;
        }
    }
    assert!(compiled > 0, "no queries are embedded");
}

#[test]
fn every_query_file_on_disk_is_embedded() {
    let root = repo().join("queries");
    let mut on_disk = Vec::new();
    files_with_extension(&root, "scm", &mut on_disk);
    for path in &on_disk {
        let relative = path.strip_prefix(&root).expect("under queries/");
        let mut parts = relative.components();
        let language_name = parts
            .next()
            .expect("a language folder")
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let name = parts.as_path().to_string_lossy().replace('\\', "/");
        let language = Language::by_name(&language_name)
            .unwrap_or_else(|| panic!("{}: no language `{language_name}`", path.display()));
        let embedded = language
            .query_source(&name)
            .unwrap_or_else(|| panic!("{} is not embedded (rebuild?)", path.display()));
        let text = std::fs::read_to_string(path).expect("readable query");
        assert_eq!(
            embedded,
            text,
            "{} differs from the embedded copy",
            path.display()
        );
    }
    assert!(!on_disk.is_empty());
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let mut sources = Vec::new();
    for dir in ["server/src", "server/tests", "server/benches"] {
        files_with_extension(&repo().join(dir), "rs", &mut sources);
    }
    let missing: Vec<String> = sources
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line: {missing:#?}"
    );
}
