//! The language registry: a language is a tree-sitter grammar plus a folder of queries.
//!
//! Query files live in `queries/<language>/` at the repository root and are embedded at build
//! time (see `build.rs`), so adding a rule or a context query is a data change. Compiled queries
//! are cached for the life of the process; everything here is plain data, free of LSP types.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use anyhow::{Context as _, anyhow};
use tree_sitter::{Parser, Query, Tree};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/queries.rs"));
}

/// A language Conductor understands: a grammar, the file extensions that select it, and the
/// queries embedded for it.
pub struct Language {
    /// The short name, also the folder name under `queries/` and the LSP `languageId`.
    pub name: &'static str,
    /// File extensions (without the dot) that select this language.
    pub extensions: &'static [&'static str],
    grammar: fn() -> tree_sitter::Language,
}

impl std::fmt::Debug for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Language")
            .field("name", &self.name)
            .finish()
    }
}

fn rust_grammar() -> tree_sitter::Language {
    tree_sitter_rust::LANGUAGE.into()
}

static LANGUAGES: &[Language] = &[Language {
    name: "rust",
    extensions: &["rs"],
    grammar: rust_grammar,
}];

impl Language {
    /// Every registered language.
    pub fn all() -> &'static [Language] {
        LANGUAGES
    }

    /// The language with this name (the LSP `languageId`), if registered.
    pub fn by_name(name: &str) -> Option<&'static Language> {
        LANGUAGES.iter().find(|l| l.name == name)
    }

    /// The language a file belongs to, judged by its extension.
    pub fn for_path(path: &Path) -> Option<&'static Language> {
        let ext = path.extension()?.to_str()?;
        LANGUAGES.iter().find(|l| l.extensions.contains(&ext))
    }

    /// The tree-sitter grammar.
    pub fn grammar(&self) -> tree_sitter::Language {
        (self.grammar)()
    }

    /// A parser set to this language.
    pub fn parser(&self) -> Parser {
        let mut parser = Parser::new();
        // The grammar is linked into the binary at a supported ABI version, so this only fails
        // if the build itself is broken; say so rather than panic.
        if let Err(err) = parser.set_language(&self.grammar()) {
            tracing::error!(
                language = self.name,
                "grammar rejected by tree-sitter: {err}"
            );
        }
        parser
    }

    /// Parses `text` from scratch. Broken code still yields a tree with error nodes.
    pub fn parse(&self, text: &str) -> Option<Tree> {
        self.parser().parse(text, None)
    }

    /// The names (paths relative to `queries/<language>/`, such as `tags.scm` or
    /// `security/tls.scm`) and sources of the embedded queries for this language.
    pub fn query_sources(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        embedded::EMBEDDED_QUERIES
            .iter()
            .filter(move |(lang, _, _)| *lang == self.name)
            .map(|(_, name, source)| (*name, *source))
    }

    /// The source of one embedded query, by its name relative to `queries/<language>/`.
    pub fn query_source(&self, name: &str) -> Option<&'static str> {
        self.query_sources()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }

    /// The compiled query `name`, compiled once per process and shared.
    pub fn query(&'static self, name: &str) -> anyhow::Result<Arc<Query>> {
        type Cache = Mutex<HashMap<(&'static str, String), Arc<Query>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = (self.name, name.to_string());
        if let Some(q) = cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(q.clone());
        }
        let source = self
            .query_source(name)
            .ok_or_else(|| anyhow!("no query `{name}` for language `{}`", self.name))?;
        let query = Arc::new(
            compile_query(self, source)
                .with_context(|| format!("compiling queries/{}/{name}", self.name))?,
        );
        cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, query.clone());
        Ok(query)
    }
}

/// Compiles a query against a language's grammar, with the error located in the source.
pub fn compile_query(language: &Language, source: &str) -> anyhow::Result<Query> {
    Query::new(&language.grammar(), source).map_err(|e| {
        anyhow!(
            "line {}, column {}: {:?} error: {}",
            e.row + 1,
            e.column + 1,
            e.kind,
            e.message
        )
    })
}

/// Trees nested deeper than this are refused by the features that walk syntax (see
/// [`depth_exceeds`]). Hand-written Rust stays below a few hundred levels; deeper trees are
/// generated or hostile input, and walking them cost seconds per request (a type nested
/// 100,000 deep blocked requests for a minute, and matching the context queries grows with the
/// square of the depth).
pub const MAX_TREE_DEPTH: usize = 2_000;

/// Whether the tree nests deeper than `limit` levels. Walks with a cursor (no recursion),
/// stops at the first node past the limit, and skips every subtree too small to reach past it:
/// a subtree of `n` nodes nests at most `n - 1` levels below its root, and tree-sitter stores
/// each node's count. An ordinary file's walk so visits the root's children and little else,
/// where a full walk of every node cost about a tenth of a whole-workspace scan.
pub fn depth_exceeds(tree: &Tree, limit: usize) -> bool {
    // Whether a node at `depth` has enough nodes below it to nest past the limit.
    let reaches = |node: tree_sitter::Node, depth: usize| depth + node.descendant_count() > limit;
    let mut cursor = tree.walk();
    if !reaches(cursor.node(), 0) {
        return false;
    }
    let mut depth = 0usize;
    loop {
        // The cursor's node reaches: go down to its first child that does.
        if cursor.goto_first_child() {
            depth += 1;
            if depth > limit {
                return true;
            }
            let mut found = reaches(cursor.node(), depth);
            while !found && cursor.goto_next_sibling() {
                found = reaches(cursor.node(), depth);
            }
            if found {
                continue;
            }
            cursor.goto_parent();
            depth -= 1;
        }
        // Done with the cursor's node: on to the next node that reaches, going up as needed.
        loop {
            if cursor.goto_next_sibling() {
                if reaches(cursor.node(), depth) {
                    break;
                }
                continue;
            }
            if !cursor.goto_parent() {
                return false;
            }
            depth -= 1;
        }
    }
}

/// The longest dump [`dump_tree`] produces; the rest is cut with a note.
pub const MAX_DUMP_BYTES: usize = 16 * 1024 * 1024;

/// Indentation stops growing at this depth, so a line never exceeds a few hundred bytes
/// (the depth is printed instead).
const MAX_DUMP_INDENT: usize = 128;

/// A textual dump of every node (named and anonymous) with its byte range, one per line,
/// indented by depth. Two trees with equal dumps have the same structure and the same ranges;
/// used to check incremental parsing against a fresh parse. The dump is bounded: past
/// [`MAX_DUMP_BYTES`] it ends with a line saying how many nodes were left out, and lines deeper
/// than 128 levels carry their depth instead of more indentation.
pub fn dump_tree(tree: &Tree) -> String {
    dump_tree_within(tree, MAX_DUMP_BYTES)
}

/// [`dump_tree`] with its size bound given.
pub fn dump_tree_within(tree: &Tree, max_bytes: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut cursor = tree.walk();
    let mut depth = 0usize;
    let mut left_out = 0usize;
    loop {
        let node = cursor.node();
        if out.len() < max_bytes {
            let indent = depth.min(MAX_DUMP_INDENT);
            let _ = write!(out, "{:width$}", "", width = indent * 2);
            if depth > MAX_DUMP_INDENT {
                let _ = write!(out, "[depth {depth}] ");
            }
            let _ = writeln!(
                out,
                "{}{}{} {}..{}",
                if node.is_named() { "" } else { "'" },
                node.kind(),
                if node.is_missing() {
                    " MISSING"
                } else if node.is_error() {
                    " ERROR"
                } else {
                    ""
                },
                node.start_byte(),
                node.end_byte(),
            );
        } else {
            left_out += 1;
        }
        if cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                if left_out > 0 {
                    let _ = writeln!(
                        out,
                        "… {left_out} more nodes left out: the dump is limited to {max_bytes} bytes"
                    );
                }
                return out;
            }
            depth -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_is_found_by_name_and_by_path() {
        assert_eq!(Language::by_name("rust").map(|l| l.name), Some("rust"));
        assert_eq!(
            Language::for_path(Path::new("src/main.rs")).map(|l| l.name),
            Some("rust")
        );
        assert!(Language::for_path(Path::new("README.md")).is_none());
        assert!(Language::by_name("cobol").is_none());
    }

    #[test]
    fn broken_code_still_parses_to_a_tree_with_errors() {
        let rust = Language::by_name("rust").expect("rust registered");
        let tree = rust.parse("fn main( { let x = ;").expect("a tree");
        assert!(tree.root_node().has_error());
    }

    fn nested_type(levels: usize) -> String {
        format!(
            "type T = {}u8{};",
            "Vec<".repeat(levels),
            ">".repeat(levels)
        )
    }

    #[test]
    fn the_dump_of_a_deep_tree_is_bounded_and_says_what_it_left_out() {
        // 40,000 levels: the indentation used to exceed the formatter's width limit (a panic)
        // after building a string of gigabytes.
        let rust = Language::by_name("rust").expect("rust registered");
        let tree = rust.parse(&nested_type(40_000)).expect("a tree");
        let dump = dump_tree_within(&tree, 1024 * 1024);
        assert!(dump.len() < 1024 * 1024 + 1024, "{} bytes", dump.len());
        assert!(dump.lines().all(|l| l.len() < 400));
        assert!(dump.contains("[depth 129] "), "deep lines name their depth");
        let last = dump.lines().last().unwrap_or("");
        assert!(last.contains("more nodes left out"), "{last}");
        // A small tree is dumped whole, with no note.
        let small = rust.parse("fn f() {}").expect("a tree");
        assert!(!dump_tree(&small).contains("left out"));
        assert!(dump_tree(&small).starts_with("source_file 0..9\n  function_item 0..9"));
    }

    #[test]
    fn depth_is_checked_without_recursion_and_stops_at_the_limit() {
        let rust = Language::by_name("rust").expect("rust registered");
        let deep = rust.parse(&nested_type(3_000)).expect("a tree");
        assert!(depth_exceeds(&deep, 3_000));
        assert!(!depth_exceeds(&deep, 10_000));
        let flat = rust.parse("fn f() { g(1); }").expect("a tree");
        assert!(!depth_exceeds(&flat, 20));
        assert!(depth_exceeds(&flat, 2));
    }

    /// The depth a full walk of every node finds (the reference the pruned walk must agree with).
    fn max_depth(tree: &Tree) -> usize {
        let mut cursor = tree.walk();
        let (mut depth, mut deepest) = (0usize, 0usize);
        loop {
            if cursor.goto_first_child() {
                depth += 1;
                deepest = deepest.max(depth);
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    return deepest;
                }
                depth -= 1;
            }
        }
    }

    #[test]
    fn the_pruned_depth_check_agrees_with_a_full_walk_at_every_limit() {
        let rust = Language::by_name("rust").expect("rust registered");
        let texts = [
            String::new(),
            "fn f() {}".to_string(),
            nested_type(40),
            format!(
                "fn a() {{}}\n{}\nfn b() {{ let x = (((1))); }}\n",
                nested_type(25)
            ),
            format!("fn f() {{ {} }}", "g(".repeat(30) + &")".repeat(30)),
            "fn f() { if a { if b { if c { x } } } }\nstruct S { a: u8 }\n".repeat(5),
            "fn broken( { let = ;".to_string(),
        ];
        for text in &texts {
            let tree = rust.parse(text).expect("a tree");
            let deepest = max_depth(&tree);
            for limit in 0..deepest + 3 {
                assert_eq!(
                    depth_exceeds(&tree, limit),
                    deepest > limit,
                    "limit {limit}, deepest {deepest}, text {text:?}"
                );
            }
        }
    }

    #[test]
    fn a_bad_query_reports_where_it_is_wrong() {
        let rust = Language::by_name("rust").expect("rust registered");
        let err = compile_query(rust, "(function_item name: (nonexistent_node))")
            .expect_err("invalid node type");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
