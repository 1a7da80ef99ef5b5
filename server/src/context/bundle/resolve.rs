//! Names brought in by `use` declarations, and the files their module paths lead to, so that a
//! name the selection uses resolves to the definition it was imported from rather than to any
//! item of the same name.
//!
//! A path resolves the way the compiler reads it: `crate::…`, `self::…`, `super::…`, a module of
//! the current one (2018 paths), or a dependency by the name the code writes for it (renamed
//! dependencies included) — a workspace crate when the manifests say so, otherwise an outside
//! crate (`std`, `axum`), which [`module_files`] reports as such rather than as "not found".

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tree_sitter::{Node, Tree};

use crate::context::index::{CrateTarget, WorkspaceIndex};
use crate::context::tags::{Definition, FileTags, SymbolKind};

/// One imported name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Import {
    /// The module path it was imported from, as written (`crate::a::c`).
    pub module: Vec<String>,
    /// Its name in that module (differs from the local name for `use … as …`).
    pub name: String,
    /// The inline modules (`mod tests { … }`) around the `use`, outermost first: `self` and
    /// `super` start from there.
    pub inline: Vec<String>,
}

impl Import {
    /// `crate::a::c::D`.
    pub fn path(&self) -> String {
        let mut path = self.module.join("::");
        if !path.is_empty() {
            path.push_str("::");
        }
        path.push_str(&self.name);
        path
    }
}

/// What a set of `use` declarations brings into scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct UseScope {
    /// Single names, by local name.
    pub names: HashMap<String, Import>,
    /// Glob imports (`use a::b::*;`): the module in `module`, `name` is `*`.
    pub globs: Vec<Import>,
}

impl UseScope {
    fn add(&mut self, other: UseScope) {
        self.names.extend(other.names);
        self.globs.extend(other.globs);
    }
}

/// The names the `use` declarations at `ranges` (byte ranges of `use_declaration` nodes)
/// import.
pub(super) fn imported_names(
    tree: &Tree,
    text: &str,
    ranges: &[&std::ops::Range<usize>],
) -> UseScope {
    let mut scope = UseScope::default();
    for range in ranges {
        let Some(node) = tree
            .root_node()
            .descendant_for_byte_range(range.start, range.end)
        else {
            continue;
        };
        if node.kind() != "use_declaration" {
            continue;
        }
        if let Some(argument) = node.child_by_field_name("argument") {
            collect(argument, text, &[], &mut scope);
        }
    }
    scope
}

/// The `use` declarations at the top level of an indexed file (what it re-exports with
/// `pub use` and what its items see), given where they are (`FileTags::uses`): only those
/// declarations are parsed, not the whole file, which made most of a bundle's resolution time.
pub(super) fn file_uses(text: &str, ranges: &[std::ops::Range<usize>]) -> UseScope {
    let mut only_uses = String::new();
    for range in ranges {
        if let Some(declaration) = text.get(range.clone()) {
            only_uses.push_str(declaration);
            only_uses.push('\n');
        }
    }
    if only_uses.is_empty() {
        return UseScope::default();
    }
    match crate::syntax::Language::by_name("rust").and_then(|r| r.parse(&only_uses)) {
        Some(tree) => tree_uses(&tree, &only_uses),
        None => UseScope::default(),
    }
}

/// Like [`file_uses`], from a syntax tree of `text` the caller already has.
pub(super) fn tree_uses(tree: &Tree, text: &str) -> UseScope {
    let mut scope = UseScope::default();
    let root = tree.root_node();
    let mut walker = root.walk();
    for node in root.named_children(&mut walker) {
        if node.kind() == "use_declaration"
            && let Some(argument) = node.child_by_field_name("argument")
        {
            let mut one = UseScope::default();
            collect(argument, text, &[], &mut one);
            scope.add(one);
        }
    }
    scope
}

/// `use` lists nested deeper than this are not followed (hostile or generated input).
const MAX_USE_DEPTH: usize = 64;

fn collect(node: Node<'_>, text: &str, prefix: &[String], out: &mut UseScope) {
    collect_within(node, text, prefix, out, 0);
}

fn collect_within(node: Node<'_>, text: &str, prefix: &[String], out: &mut UseScope, depth: usize) {
    if depth > MAX_USE_DEPTH {
        return;
    }
    match node.kind() {
        "scoped_use_list" => {
            let mut prefix = prefix.to_vec();
            if let Some(path) = node.child_by_field_name("path") {
                prefix.extend(segments(path, text));
            }
            if let Some(list) = node.child_by_field_name("list") {
                collect_within(list, text, &prefix, out, depth + 1);
            }
        }
        "use_list" => {
            let mut walker = node.walk();
            for child in node.named_children(&mut walker) {
                collect_within(child, text, prefix, out, depth + 1);
            }
        }
        "use_as_clause" => {
            let (Some(path), Some(alias)) = (
                node.child_by_field_name("path"),
                node.child_by_field_name("alias"),
            ) else {
                return;
            };
            let mut full = prefix.to_vec();
            full.extend(segments(path, text));
            insert(full, node_text(alias, text), &mut out.names);
        }
        "scoped_identifier" | "identifier" => {
            let mut full = prefix.to_vec();
            full.extend(segments(node, text));
            let local = full.last().cloned().unwrap_or_default();
            insert(full, local, &mut out.names);
        }
        "use_wildcard" => {
            let mut module = prefix.to_vec();
            let mut walker = node.walk();
            if let Some(path) = node.named_children(&mut walker).next() {
                module.extend(segments(path, text));
            }
            out.globs.push(Import {
                module,
                name: "*".into(),
                inline: Vec::new(),
            });
        }
        // `use a::b::{self, …}` imports the module `b` itself.
        "self" if !prefix.is_empty() => {
            let local = prefix.last().cloned().unwrap_or_default();
            insert(prefix.to_vec(), local, &mut out.names);
        }
        // Anything else names no single item.
        _ => {}
    }
}

fn insert(mut full: Vec<String>, local: String, out: &mut HashMap<String, Import>) {
    let Some(name) = full.pop() else { return };
    if local.is_empty() || local == "_" || matches!(name.as_str(), "self" | "super" | "crate") {
        return;
    }
    out.insert(
        local,
        Import {
            module: full,
            name,
            inline: Vec::new(),
        },
    );
}

/// `a::b::c` as `["a", "b", "c"]`. A loop down the `path` fields, not a recursion: a path can
/// have any number of segments.
fn segments(node: Node<'_>, text: &str) -> Vec<String> {
    let mut reversed = Vec::new();
    let mut current = Some(node);
    while let Some(n) = current {
        if n.kind() != "scoped_identifier" {
            reversed.push(node_text(n, text));
            break;
        }
        if let Some(name) = n.child_by_field_name("name") {
            reversed.push(node_text(name, text));
        }
        current = n.child_by_field_name("path");
    }
    reversed.reverse();
    reversed
}

fn node_text(node: Node<'_>, text: &str) -> String {
    text.get(node.byte_range()).unwrap_or("").to_string()
}

/// Where a module path leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ModulePath {
    /// Into the workspace: the files (relative to the root) that may hold the module's items,
    /// each with the inline modules inside it that lead to them (empty for the module's own
    /// file).
    Local(Vec<(PathBuf, Vec<String>)>),
    /// Into a crate outside the workspace (`std`, a registry dependency): its package.
    External(String),
    /// Nowhere we can tell (no crate facts, or a path that is none of the above).
    Unknown,
}

/// Where `module` leads, as seen from the file `rel`, whose own module path inside its crate is
/// worked out from its place under `src/`; `inline` are the names of the inline modules around
/// the `use`.
pub(super) fn module_files(
    index: &WorkspaceIndex,
    rel: &Path,
    inline: &[String],
    module: &[String],
) -> ModulePath {
    let krate = index.crate_index(rel);
    let first = module.first().map(String::as_str);
    // A dependency (or the standard library) by the name the code writes for it comes first:
    // `tui::…` for `tui = { package = "helix-tui" }` leads into helix-tui's folder.
    let dependency = first
        .filter(|f| !matches!(*f, "crate" | "self" | "super"))
        .and_then(|f| index.crate_named(krate, f));
    let other_root = match dependency {
        Some(CrateTarget::External { package }) => return ModulePath::External(package),
        Some(CrateTarget::Local(j)) => index.crates().get(j).map(|c| c.dir.join("src")),
        None => None,
    };
    let Some(facts) = krate.and_then(|k| index.crates().get(k)) else {
        return ModulePath::Unknown;
    };
    // A target outside `src/` (`[[bin]] path = "crates/core/main.rs"`) has its modules next to
    // its root file.
    let src = facts
        .roots
        .iter()
        .filter_map(|root| root.parent())
        .find(|folder| rel.starts_with(folder))
        .map_or_else(|| facts.dir.join("src"), Path::to_path_buf);
    let Some(mut here) = file_module(rel, &src) else {
        return match other_root {
            Some(root) => ModulePath::Local(walk_up(index, &root, module[1..].to_vec())),
            None => ModulePath::Unknown,
        };
    };
    here.extend(inline.iter().cloned());
    let (root, path): (PathBuf, Vec<String>) = match first {
        Some("crate") => (src, module[1..].to_vec()),
        Some("self") => (src, here.into_iter().chain(module[1..].to_vec()).collect()),
        Some("super") => {
            let mut path = here;
            let mut rest = module;
            while rest.first().is_some_and(|s| s == "super") {
                if path.pop().is_none() {
                    return ModulePath::Unknown;
                }
                rest = &rest[1..];
            }
            path.extend(rest.iter().cloned());
            (src, path)
        }
        Some(_) => match other_root {
            Some(root) => (root, module[1..].to_vec()),
            // A module of the current one (2018 paths are relative).
            None => (src, here.into_iter().chain(module.to_vec()).collect()),
        },
        None => return ModulePath::Unknown,
    };
    ModulePath::Local(walk_up(index, &root, path))
}

/// The module's own file; then, for a module declared inline (`mod c { … }`), the file of the
/// module that declares it, and so on up. Only a parent that does declare the child inline
/// counts, so that a re-export (`pub use inner::B;`) never falls through to an unrelated `B`
/// higher up.
fn walk_up(
    index: &WorkspaceIndex,
    root: &Path,
    mut path: Vec<String>,
) -> Vec<(PathBuf, Vec<String>)> {
    let mut files = Vec::new();
    let mut inline_path: Vec<String> = Vec::new();
    loop {
        let own = own_files(root, &path);
        files.extend(own.iter().map(|f| (f.clone(), inline_path.clone())));
        let Some(child) = path.pop() else { break };
        inline_path.insert(0, child.clone());
        let parent = own_files(root, &path);
        if !parent
            .iter()
            .any(|file| declares_inline(index, file, &child))
        {
            break;
        }
    }
    files
}

/// The files a module's items can live in: `a/b.rs` or `a/b/mod.rs`; `lib.rs` or `main.rs` for
/// the crate root.
fn own_files(root: &Path, path: &[String]) -> Vec<PathBuf> {
    if path.is_empty() {
        return vec![root.join("lib.rs"), root.join("main.rs")];
    }
    let dir: PathBuf = path.iter().collect();
    vec![
        root.join(&dir).with_extension("rs"),
        root.join(dir).join("mod.rs"),
    ]
}

/// Whether the indexed `file` declares `mod name { … }` with a body.
fn declares_inline(index: &WorkspaceIndex, file: &Path, name: &str) -> bool {
    index
        .file_id(file)
        .and_then(|id| index.file(id))
        .is_some_and(|f| {
            f.tags
                .definitions
                .iter()
                .any(|d| d.kind == SymbolKind::Module && d.name == name && d.body_start.is_some())
        })
}

/// The module path of a file under a crate's `src/`: `src/a/b.rs` and `src/a/b/mod.rs` are
/// `a::b`, `src/lib.rs` and `src/main.rs` the crate root.
fn file_module(rel: &Path, src: &Path) -> Option<Vec<String>> {
    let inside = rel.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = inside
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    if !(matches!(stem, "mod") || (parts.is_empty() && matches!(stem, "lib" | "main"))) {
        parts.push(stem.to_string());
    }
    Some(parts)
}

/// The names of the inline modules of `tags` around `def`, outermost first.
pub(super) fn inline_modules_around(tags: &FileTags, def: &Definition) -> Vec<String> {
    tags.definitions
        .iter()
        .filter(|m| {
            m.kind == SymbolKind::Module
                && m.body_start.is_some()
                && m.range.start < def.range.start
                && def.range.end <= m.range.end
        })
        .map(|m| m.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::Language;

    #[test]
    fn use_lists_renames_and_nested_groups_are_read() {
        let text = "use crate::a::{B, c::D as E, self};\nuse super::f;\nuse std::{io::*, fmt};\n";
        let tree = Language::by_name("rust")
            .expect("rust")
            .parse(text)
            .expect("tree");
        let ranges: Vec<std::ops::Range<usize>> = {
            let mut out = Vec::new();
            let mut start = 0;
            for line in text.split_inclusive('\n') {
                out.push(start..start + line.trim_end().len());
                start += line.len();
            }
            out
        };
        let refs: Vec<&std::ops::Range<usize>> = ranges.iter().collect();
        let scope = imported_names(&tree, text, &refs);
        let globs: Vec<String> = scope.globs.iter().map(Import::path).collect();
        assert_eq!(globs, ["std::io::*"]);
        let mut paths: Vec<(String, String)> = scope
            .names
            .iter()
            .map(|(local, import)| (local.clone(), import.path()))
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                ("B".to_string(), "crate::a::B".to_string()),
                ("E".to_string(), "crate::a::c::D".to_string()),
                ("a".to_string(), "crate::a".to_string()),
                ("f".to_string(), "super::f".to_string()),
                ("fmt".to_string(), "std::fmt".to_string()),
            ]
        );
    }

    #[test]
    fn a_file_is_the_module_its_place_under_src_says() {
        let src = Path::new("app/src");
        for (file, module) in [
            ("app/src/lib.rs", vec![]),
            ("app/src/a.rs", vec!["a"]),
            ("app/src/a/mod.rs", vec!["a"]),
            ("app/src/a/b.rs", vec!["a", "b"]),
            ("app/src/bin/tool.rs", vec!["bin", "tool"]),
        ] {
            assert_eq!(
                file_module(Path::new(file), src),
                Some(module.iter().map(|s| s.to_string()).collect()),
                "{file}"
            );
        }
        assert_eq!(file_module(Path::new("app/tests/t.rs"), src), None);
    }
}
