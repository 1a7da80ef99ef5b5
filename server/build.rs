//! Embeds every tree-sitter query under `queries/<language>/` into the binary.
//!
//! The generated file lists `(language, relative path, source)` triples, so adding a query
//! file needs no code change: the language registry finds it by path.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "scm") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest.join("..").join("queries");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    let mut code = String::from("pub(crate) static EMBEDDED_QUERIES: &[(&str, &str, &str)] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file.strip_prefix(&root).expect("under queries/");
        let mut parts = rel.components();
        let language = parts
            .next()
            .expect("language folder")
            .as_os_str()
            .to_string_lossy();
        let name = parts.as_path().to_string_lossy().replace('\\', "/");
        let _ = writeln!(
            code,
            "    ({language:?}, {name:?}, include_str!({path:?})),",
            path = file.display().to_string()
        );
    }
    // Folders are watched too, so that a new query file triggers a rebuild.
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.filter_map(Result::ok) {
                if e.path().is_dir() {
                    println!("cargo:rerun-if-changed={}", e.path().display());
                    dirs.push(e.path());
                }
            }
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets this")).join("queries.rs");
    std::fs::write(out, code).expect("write generated queries.rs");
}
