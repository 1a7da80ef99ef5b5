//! The generated workspace the language-server benchmarks index: a crate of 1,500 Rust files
//! (about 6 MB) of ordinary application code, each file with a doc comment, `use` lines that
//! reach into other files, a struct, an enum, impls, free functions and a test module.
//!
//! Shared by `keystroke.rs` and `documents.rs` through `#[path]`, so both measure the same
//! workspace. A file's text depends on a revision number: rewriting the workspace at another
//! revision changes every file (what a `git checkout` does), and the revision is visible in the
//! struct's doc comment, so a benchmark can check that the server's index picked it up.

// Each benchmark uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Folders under `src/`.
pub const FOLDERS: usize = 30;
/// Files per folder.
pub const FILES_PER_FOLDER: usize = 50;
/// Files of code in the workspace (`lib.rs` and `Cargo.toml` come on top).
pub const FILES: usize = FOLDERS * FILES_PER_FOLDER;

/// The path of file number `n` (0-based), relative to the workspace root.
pub fn relative_path(n: usize) -> PathBuf {
    let (folder, file) = (n / FILES_PER_FOLDER, n % FILES_PER_FOLDER);
    PathBuf::from(format!("src/m{folder:02}/f{file:02}.rs"))
}

/// The file another file borrows from: a fixed, spread-out pattern so that the reference graph
/// links folders to each other rather than forming one chain.
fn neighbour(n: usize, step: usize) -> usize {
    (n * 7 + step * 131 + 17) % FILES
}

fn names(n: usize) -> (String, usize, usize) {
    let (folder, file) = (n / FILES_PER_FOLDER, n % FILES_PER_FOLDER);
    (format!("{folder}_{file}"), folder, file)
}

/// The text of file `n` at `revision`: about 4 KB of code.
pub fn file_text(n: usize, revision: u32) -> String {
    let (me, folder, file) = names(n);
    let (a, a_folder, a_file) = names(neighbour(n, 1));
    let (b, b_folder, b_file) = names(neighbour(n, 2));
    let limit = 1_000 + u64::from(revision) * 7 + n as u64;
    format!(
        r#"//! Ledger shard {folder}/{file}: entries, their validation and pricing.

use std::collections::HashMap;
use std::fmt;

use crate::m{a_folder:02}::f{a_file:02}::{{Entry{a}, price_{a}}};
use crate::m{b_folder:02}::f{b_file:02}::{{Level{b}, summarize_{b}}};

/// The largest amount an entry of shard {folder}/{file} may carry.
pub const LIMIT_{me}: u64 = {limit};

/// An entry of shard {folder}/{file} (revision {revision}).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry{me} {{
    pub id: u64,
    pub name: String,
    pub amounts: Vec<u64>,
    pub level: Level{me},
    pub parent: Option<Box<Entry{a}>>,
}}

/// How urgent an entry of shard {folder}/{file} is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level{me} {{
    Low,
    Medium,
    High,
}}

impl Level{me} {{
    /// The level of an amount, against the shard's limit.
    pub fn of(amount: u64) -> Self {{
        if amount > LIMIT_{me} / 2 {{
            Level{me}::High
        }} else if amount > LIMIT_{me} / 8 {{
            Level{me}::Medium
        }} else {{
            Level{me}::Low
        }}
    }}
}}

impl Entry{me} {{
    /// Builds an entry, refusing an empty name or an amount over the limit.
    pub fn new(id: u64, name: &str, amounts: Vec<u64>) -> Result<Self, String> {{
        if name.trim().is_empty() {{
            return Err(format!("entry {{id}} of shard {folder}/{file} has an empty name"));
        }}
        if let Some(too_big) = amounts.iter().find(|amount| **amount > LIMIT_{me}) {{
            return Err(format!("entry {{id}}: amount {{too_big}} is over {{}}", LIMIT_{me}));
        }}
        let total: u64 = amounts.iter().sum();
        Ok(Self {{
            id,
            name: name.to_string(),
            amounts,
            level: Level{me}::of(total),
            parent: None,
        }})
    }}

    /// The sum of the entry's amounts, saturating.
    pub fn total(&self) -> u64 {{
        self.amounts
            .iter()
            .fold(0u64, |sum, amount| sum.saturating_add(*amount))
    }}

    /// Whether the entry and its parent are within their limits.
    pub fn is_valid(&self) -> bool {{
        let own = self.total() <= LIMIT_{me} * self.amounts.len().max(1) as u64;
        let parent = self.parent.as_ref().is_none_or(|p| !p.name.is_empty());
        own && parent
    }}

    /// Merges another entry's amounts into this one.
    pub fn merge(&mut self, other: &Entry{me}) {{
        for (slot, amount) in self.amounts.iter_mut().zip(other.amounts.iter()) {{
            *slot = slot.saturating_add(*amount);
        }}
        if other.amounts.len() > self.amounts.len() {{
            let rest = other.amounts[self.amounts.len()..].to_vec();
            self.amounts.extend(rest);
        }}
        self.level = Level{me}::of(self.total());
    }}
}}

impl fmt::Display for Entry{me} {{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{
        write!(f, "{{}} #{{}} ({{:?}}, total {{}})", self.name, self.id, self.level, self.total())
    }}
}}

/// The price of an entry: its total, weighted by the table, plus its parent's price.
pub fn price_{me}(entry: &Entry{me}, table: &HashMap<String, u64>) -> u64 {{
    let weight = table.get(&entry.name).copied().unwrap_or(1);
    let own = entry.total().saturating_mul(weight);
    let parent = entry
        .parent
        .as_ref()
        .map_or(0, |parent| price_{a}(parent, table));
    own.saturating_add(parent)
}}

/// A one-line summary of entries, highest level first.
pub fn summarize_{me}(entries: &[Entry{me}]) -> String {{
    let mut sorted: Vec<&Entry{me}> = entries.iter().collect();
    sorted.sort_by_key(|entry| std::cmp::Reverse(entry.total()));
    let parts: Vec<String> = sorted.iter().take(5).map(|entry| entry.to_string()).collect();
    format!("{{}} entries: {{}}", entries.len(), parts.join("; "))
}}

/// The report line of the shard, with the neighbouring shard's summary.
pub fn report_{me}(entries: &[Entry{me}], neighbours: &[crate::m{b_folder:02}::f{b_file:02}::Entry{b}]) -> String {{
    let high = entries.iter().filter(|entry| entry.level == Level{me}::High).count();
    let _urgent = Level{b}::High;
    format!("shard {folder}/{file}: {{high}} high; next door: {{}}", summarize_{b}(neighbours))
}}

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn an_empty_name_is_refused() {{
        assert!(Entry{me}::new(1, " ", vec![1]).is_err());
    }}
}}
"#
    )
}

/// `src/lib.rs`: one inline module per folder, declaring its files.
fn lib_text() -> String {
    let mut text = String::from("//! A generated ledger crate for benchmarks.\n\n");
    for folder in 0..FOLDERS {
        text.push_str(&format!("pub mod m{folder:02} {{\n"));
        for file in 0..FILES_PER_FOLDER {
            text.push_str(&format!("    pub mod f{file:02};\n"));
        }
        text.push_str("}\n");
    }
    text
}

/// Writes the workspace at `revision` under `root`; returns the total bytes of the code files.
pub fn write(root: &Path, revision: u32) -> std::io::Result<u64> {
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"ledger\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )?;
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::write(root.join("src/lib.rs"), lib_text())?;
    rewrite(root, revision, None)
}

/// Rewrites every code file at `revision`, except `keep` (a file open in the editor, whose
/// unsaved buffer the benchmark types into); returns the total bytes written.
pub fn rewrite(root: &Path, revision: u32, keep: Option<usize>) -> std::io::Result<u64> {
    let mut bytes = 0u64;
    for n in 0..FILES {
        if Some(n) == keep {
            continue;
        }
        let path = root.join(relative_path(n));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = file_text(n, revision);
        bytes += text.len() as u64;
        std::fs::write(&path, text)?;
    }
    Ok(bytes)
}

/// The doc-comment line that says which revision of file `n` is indexed.
pub fn revision_marker(n: usize, revision: u32) -> String {
    let (_, folder, file) = names(n);
    format!("An entry of shard {folder}/{file} (revision {revision})")
}

/// The file whose struct file `n` uses as its entries' parent type.
pub fn parent_file(n: usize) -> usize {
    neighbour(n, 1)
}
