//! Name resolution for a bundle: which definitions a name the selection uses stands for, read
//! the way the compiler would — through the file's `use` declarations (lists, renames, globs,
//! `pub use` re-exports), the path written before it, the module it sits in, the receiver's type
//! for a method call, and the crate graph from the manifests.
//!
//! A name resolves to definitions in the workspace (certain when a path, an import, the file
//! itself or a known receiver type says so), to an item outside it (`axum::extract::State`,
//! `Vec::push`: labelled, never matched to a same-named local item), or to nothing (a method
//! on a receiver whose type we cannot tell, a generic parameter). Only when none of that
//! applies is a name matched by name alone, among the crates the current crate can reach, and
//! that uncertainty is said.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tree_sitter::Node;

use super::resolve::{self, ModulePath, UseScope, file_uses, tree_uses};
use super::seed::{Seed, display_path};
use crate::context::index::FileId;
use crate::context::tags::{Definition, RefKind, SymbolKind, type_name};

/// A definition a name leads to.
#[derive(Clone)]
pub(super) struct Found<'a> {
    /// Its file as items show it.
    pub shown: String,
    /// Its file in the index; `None` for the bundle's own (live) file.
    pub file: Option<FileId>,
    pub def: &'a Definition,
    /// The text of its file.
    pub source: &'a str,
}

/// What a name stands for.
pub(super) enum Resolution<'a> {
    /// Definitions in the workspace. `how` says how they were found (for the item's reason);
    /// `certain` is false when only the name matched.
    Local {
        found: Vec<Found<'a>>,
        how: String,
        certain: bool,
    },
    /// An item outside the workspace: its path as written or resolved, and the package.
    External { path: String, package: String },
    /// Nothing to show: a method whose receiver's type is unknown, a generic parameter, a
    /// module name.
    Skip,
}

/// Where a module path and a name lead.
enum PathResult<'a> {
    Found(Vec<Found<'a>>),
    External(String),
    NotFound,
    Unknown,
}

/// Types of the standard library (and primitives) whose methods are looked up there, unless
/// the file imports or defines a type of that name.
const STD_TYPES: &[&str] = &[
    "Vec",
    "String",
    "str",
    "Option",
    "Result",
    "Box",
    "Rc",
    "Arc",
    "HashMap",
    "HashSet",
    "BTreeMap",
    "BTreeSet",
    "VecDeque",
    "BinaryHeap",
    "Path",
    "PathBuf",
    "Cow",
    "Cell",
    "RefCell",
    "Mutex",
    "RwLock",
    "OsStr",
    "OsString",
    "Duration",
    "Instant",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "bool",
    "char",
];

/// How many `pub use` hops a name is followed through.
const MAX_REEXPORT_DEPTH: usize = 4;

/// Resolves names for one seed; caches the `use` declarations of the files it reads.
pub(super) struct Resolver<'s, 'a> {
    seed: &'s Seed<'a>,
    uses: RefCell<HashMap<PathBuf, Rc<UseScope>>>,
    /// The bindings of the seed's functions, by the function's start.
    bindings: RefCell<HashMap<usize, Bindings>>,
    /// How deep the type inference of the current expression is.
    depth: std::cell::Cell<usize>,
}

/// How many expressions, bindings and calls one receiver's type is followed through.
const MAX_INFERENCE_DEPTH: usize = 12;

/// Methods whose value is what is inside the `Result` or `Option` they are called on.
const UNWRAPPING: &[&str] = &[
    "unwrap",
    "expect",
    "unwrap_or_default",
    "unwrap_or",
    "unwrap_or_else",
    "unwrap_unchecked",
];

impl<'s, 'a> Resolver<'s, 'a> {
    pub fn new(seed: &'s Seed<'a>) -> Self {
        Resolver {
            seed,
            uses: RefCell::new(HashMap::new()),
            bindings: RefCell::new(HashMap::new()),
            depth: std::cell::Cell::new(0),
        }
    }

    /// What the reference to `name` of `kind` at `byte` of the seed's file stands for.
    pub fn resolve(&self, name: &str, kind: RefKind, byte: usize) -> Resolution<'s> {
        let root = self.seed.tree.root_node();
        let Some(node) = root.descendant_for_byte_range(byte, byte + name.len()) else {
            return self.plain(name, None);
        };
        let parent = node.parent();
        let field_of = |field: &str| {
            parent
                .and_then(|p| p.child_by_field_name(field))
                .is_some_and(|n| n.id() == node.id())
        };
        let parent_kind = parent.map(|p| p.kind()).unwrap_or("");
        // Inside a macro's arguments (`format!("{}", x.len())`) a method call is tokens: `.`
        // before the name makes it one, and the token before that is its receiver.
        if parent_kind == "token_tree" && node.prev_sibling().is_some_and(|p| p.kind() == ".") {
            let receiver = node.prev_sibling().and_then(|dot| dot.prev_sibling());
            return match receiver
                .filter(|r| matches!(r.kind(), "identifier" | "self"))
                .and_then(|r| self.receiver_type(r))
            {
                Some(ty) => self.owned(&ty, name),
                None => Resolution::Skip,
            };
        }
        // `Pos::none()` inside `vec![Pos::none(); n]`: a path is tokens there too, `::` and the
        // segments before it.
        if parent_kind == "token_tree" && node.prev_sibling().is_some_and(|p| p.kind() == "::") {
            return match token_path_before(node, &self.seed.text) {
                Some(path) => self.qualified(&path, name, node),
                None => Resolution::Skip,
            };
        }
        if kind == RefKind::Method || (parent_kind == "field_expression" && field_of("field")) {
            let receiver = parent.and_then(|p| p.child_by_field_name("value"));
            return match receiver.and_then(|r| self.receiver_type(r)) {
                Some(ty) => self.owned(&ty, name),
                None => Resolution::Skip,
            };
        }
        if matches!(parent_kind, "scoped_identifier" | "scoped_type_identifier") {
            if field_of("name") {
                let Some(path) = parent.and_then(|p| p.child_by_field_name("path")) else {
                    return self.plain(name, Some(node));
                };
                return self.qualified(&path_segments(path, &self.seed.text), name, node);
            }
            if field_of("path") && !starts_upper(name) {
                // The `sqlx` of `sqlx::query`, the `io` of `io::Result`: a crate or a module.
                // An imported module (`use super::flow;`) resolves like any imported name; a
                // module this file declares (`mod util;`) is shown by its declaration.
                if self.seed.imports.names.contains_key(name) {
                    return self.plain(name, Some(node));
                }
                let declared: Vec<Found<'s>> = self
                    .live_definitions(name)
                    .filter(|d| d.kind == SymbolKind::Module)
                    .map(|def| self.live_found(def))
                    .collect();
                let first = node.prev_sibling().is_none();
                if first && !declared.is_empty() && !self.seed.imports.names.contains_key(name) {
                    return Resolution::Local {
                        found: declared,
                        how: "a module of this file".into(),
                        certain: true,
                    };
                }
                return Resolution::Skip;
            }
        }
        self.plain(name, Some(node))
    }

    /// A name written alone: an import, an item of this file, a glob import, the prelude — or,
    /// failing all of them, matched by name.
    pub fn plain(&self, name: &str, node: Option<Node<'_>>) -> Resolution<'s> {
        let seed = self.seed;
        if name == "Self" || node.is_some_and(|n| is_generic_parameter(n, name, &seed.text)) {
            return Resolution::Skip;
        }
        if let Some(import) = seed.imports.names.get(name) {
            let how = if import.name == name {
                format!("imported from `{}`", import.module.join("::"))
            } else {
                format!("imported as `{}`", import.path())
            };
            return match self.path(&seed.rel, &import.inline, &import.module, &import.name, 0) {
                PathResult::Found(found) => Resolution::Local {
                    found,
                    how,
                    certain: true,
                },
                PathResult::External(package) => Resolution::External {
                    path: import.path(),
                    package,
                },
                PathResult::NotFound => self.by_name(
                    &import.name,
                    format!("{how}, which defines no such item we can see; matched by name"),
                ),
                PathResult::Unknown => self.by_name(
                    &import.name,
                    format!("{how}, a path we cannot follow; matched by name"),
                ),
            };
        }
        let here: Vec<Found<'s>> = self
            .live_definitions(name)
            .filter(|d| d.kind != SymbolKind::Method)
            .map(|def| self.live_found(def))
            .collect();
        if !here.is_empty() {
            return Resolution::Local {
                found: here,
                how: "in this file".into(),
                certain: true,
            };
        }
        let mut open_glob: Option<String> = None;
        for glob in &seed.imports.globs {
            match self.path(&seed.rel, &glob.inline, &glob.module, name, 0) {
                PathResult::Found(found) => {
                    return Resolution::Local {
                        found,
                        how: format!("through `use {}`", glob.path()),
                        certain: true,
                    };
                }
                PathResult::External(_) | PathResult::Unknown => {
                    open_glob.get_or_insert_with(|| glob.path());
                }
                PathResult::NotFound => {}
            }
        }
        if crate::context::index::is_prelude_name(name) {
            return Resolution::External {
                path: name.into(),
                package: "std".into(),
            };
        }
        match open_glob {
            Some(glob) => self.by_name(
                name,
                format!("not imported by name, perhaps through `use {glob}`; matched by name"),
            ),
            None => self.by_name(
                name,
                "neither imported nor defined in this file; matched by name".into(),
            ),
        }
    }

    /// `path::name` (`crate::a::f`, `sqlx::query`, `Store::open`, `Self::new`).
    fn qualified(&self, path: &[String], name: &str, node: Node<'_>) -> Resolution<'s> {
        let seed = self.seed;
        let Some(first) = path.first() else {
            return self.plain(name, Some(node));
        };
        if path.len() == 1 && first == "Self" {
            return match impl_type(node, &seed.text) {
                Some(ty) => self.owned(&ty, name),
                None => Resolution::Skip,
            };
        }
        if path.len() == 1 && starts_upper(first) {
            return self.owned(first, name);
        }
        // A path that starts with an imported name continues from what that name is.
        let (module, inline): (Vec<String>, Vec<String>) = match seed.imports.names.get(first) {
            Some(import) => {
                let mut module = import.module.clone();
                module.push(import.name.clone());
                module.extend(path[1..].iter().cloned());
                (module, import.inline.clone())
            }
            None => (path.to_vec(), self.inline_around(node.start_byte())),
        };
        // `a::Type::method`: the last segment is a type.
        if module.last().is_some_and(|s| starts_upper(s)) && !starts_upper(name) {
            let ty = module.last().cloned().unwrap_or_default();
            return self.owned(&ty, name);
        }
        let written = format!("{}::{name}", path.join("::"));
        match self.path(&seed.rel, &inline, &module, name, 0) {
            PathResult::Found(found) => Resolution::Local {
                found,
                how: format!("`{written}`"),
                certain: true,
            },
            PathResult::External(package) => Resolution::External {
                path: written,
                package,
            },
            PathResult::NotFound | PathResult::Unknown => self.by_name(
                name,
                format!("written `{written}`, a path we cannot follow; matched by name"),
            ),
        }
    }

    /// The methods (and associated functions) named `name` of the type `ty`.
    fn owned(&self, ty: &str, name: &str) -> Resolution<'s> {
        let seed = self.seed;
        let index = seed.index;
        // An imported type from outside the workspace has its methods there too.
        if let Some(import) = seed.imports.names.get(ty)
            && let PathResult::External(package) =
                self.path(&seed.rel, &import.inline, &import.module, &import.name, 0)
        {
            return Resolution::External {
                path: format!("{}::{name}", import.path()),
                package,
            };
        }
        let local_type = seed.imports.names.contains_key(ty)
            || self
                .live_definitions(ty)
                .any(|d| d.kind != SymbolKind::Method);
        if !local_type && STD_TYPES.contains(&ty) {
            return Resolution::External {
                path: format!("{ty}::{name}"),
                package: "std".into(),
            };
        }
        let mut found: Vec<Found<'s>> = self
            .live_definitions(name)
            .filter(|d| d.owner.as_deref() == Some(ty))
            .map(|def| self.live_found(def))
            .collect();
        for id in index.definitions_of(name) {
            if Some(id.file) == seed.current {
                continue;
            }
            let (Some(file), Some(def)) = (index.file(id.file), index.definition(*id)) else {
                continue;
            };
            if def.owner.as_deref() == Some(ty) && index.reaches_file(seed.krate, &file.path) {
                found.push(Found {
                    shown: display_path(&file.path),
                    file: Some(id.file),
                    def,
                    source: &file.text,
                });
            }
        }
        if found.is_empty() {
            return self.provided(ty, name);
        }
        let files: std::collections::HashSet<&str> =
            found.iter().map(|f| f.shown.as_str()).collect();
        Resolution::Local {
            certain: files.len() == 1,
            how: format!("a method of `{ty}`"),
            found,
        }
    }

    /// A method `ty` has from a trait of the workspace it implements without writing the
    /// method itself: the trait's provided method (`fn name(&self) { … }` in the trait body),
    /// when an `impl Trait for Ty` is in this file or a reachable one.
    fn provided(&self, ty: &str, name: &str) -> Resolution<'s> {
        let seed = self.seed;
        let index = seed.index;
        let mut found: Vec<Found<'s>> = Vec::new();
        let mut traits: Vec<String> = Vec::new();
        let candidates = seed
            .live
            .definitions
            .iter()
            .filter(|d| d.name == name)
            .map(|def| (None, def, seed.text.as_str()))
            .chain(index.definitions_of(name).iter().filter_map(|id| {
                if Some(id.file) == seed.current {
                    return None;
                }
                let file = index.file(id.file)?;
                let def = index.definition(*id)?;
                index.reaches_file(seed.krate, &file.path).then_some((
                    Some(id.file),
                    def,
                    file.text.as_ref(),
                ))
            }));
        for (file, def, source) in candidates {
            let Some(owner) = def.owner.as_deref() else {
                continue;
            };
            if def.kind != SymbolKind::Method || owner == ty || !self.is_trait(owner) {
                continue;
            }
            if !self.implements(ty, owner) {
                continue;
            }
            if !traits.iter().any(|t| t == owner) {
                traits.push(owner.to_string());
            }
            found.push(Found {
                shown: match file.and_then(|id| index.file(id)) {
                    Some(f) => display_path(&f.path),
                    None => seed.display.clone(),
                },
                file,
                def,
                source,
            });
        }
        if found.is_empty() {
            return Resolution::Skip;
        }
        Resolution::Local {
            certain: found.len() == 1,
            how: format!(
                "a method `{ty}` has from its `impl {} for {ty}`",
                traits.join("`/`")
            ),
            found,
        }
    }

    /// Whether a trait named `name` is defined in this file or a reachable one.
    fn is_trait(&self, name: &str) -> bool {
        let seed = self.seed;
        seed.live
            .definitions
            .iter()
            .any(|d| d.name == name && d.kind == SymbolKind::Trait)
            || seed.index.definitions_of(name).iter().any(|id| {
                seed.index
                    .definition(*id)
                    .is_some_and(|d| d.kind == SymbolKind::Trait)
                    && seed
                        .index
                        .file(id.file)
                        .is_some_and(|f| seed.index.reaches_file(seed.krate, &f.path))
            })
    }

    /// Whether `impl Trait for Ty` (generics and paths allowed) is written in this file or in a
    /// reachable file that references the trait.
    fn implements(&self, ty: &str, trait_name: &str) -> bool {
        let seed = self.seed;
        let index = seed.index;
        let in_text = |tags: &crate::context::tags::FileTags, text: &str| {
            tags.references.iter().any(|r| {
                r.kind == RefKind::Implementation
                    && r.name == trait_name
                    && impl_target(text, r.byte + trait_name.len()).as_deref() == Some(ty)
            })
        };
        if in_text(&seed.live, &seed.text) {
            return true;
        }
        index.files_referencing(trait_name).iter().any(|id| {
            Some(*id) != seed.current
                && index.file(*id).is_some_and(|f| {
                    index.reaches_file(seed.krate, &f.path) && in_text(&f.tags, &f.text)
                })
        })
    }

    /// Definitions of `name` (not methods) in the files the current crate can reach, matched by
    /// name alone.
    fn by_name(&self, name: &str, how: String) -> Resolution<'s> {
        let seed = self.seed;
        let index = seed.index;
        let mut found = Vec::new();
        for id in index.definitions_of(name) {
            if Some(id.file) == seed.current {
                continue;
            }
            let (Some(file), Some(def)) = (index.file(id.file), index.definition(*id)) else {
                continue;
            };
            if def.kind != SymbolKind::Method && index.reaches_file(seed.krate, &file.path) {
                found.push(Found {
                    shown: display_path(&file.path),
                    file: Some(id.file),
                    def,
                    source: &file.text,
                });
            }
        }
        if found.is_empty() {
            return Resolution::Skip;
        }
        Resolution::Local {
            found,
            how,
            certain: false,
        }
    }

    /// Where `module::name`, written in the file `from` inside the inline modules `inline`,
    /// leads; `pub use` re-exports are followed up to [`MAX_REEXPORT_DEPTH`] hops.
    fn path(
        &self,
        from: &Path,
        inline: &[String],
        module: &[String],
        name: &str,
        depth: usize,
    ) -> PathResult<'s> {
        let files = match resolve::module_files(self.seed.index, from, inline, module) {
            ModulePath::Local(files) => files,
            ModulePath::External(package) => return PathResult::External(package),
            ModulePath::Unknown => return PathResult::Unknown,
        };
        for (file, inside) in &files {
            let found = self.definitions_in(file, inside, name);
            if !found.is_empty() {
                return PathResult::Found(found);
            }
        }
        if depth >= MAX_REEXPORT_DEPTH {
            return PathResult::NotFound;
        }
        // Not defined there: perhaps re-exported (`pub use inner::Name;`, `pub use inner::*;`).
        for (file, inside) in &files {
            if !inside.is_empty() {
                continue;
            }
            let Some(uses) = self.uses_of(file, name) else {
                continue;
            };
            if let Some(import) = uses.names.get(name) {
                match self.path(file, &[], &import.module, &import.name, depth + 1) {
                    PathResult::NotFound => {}
                    other => return other,
                }
            }
            for glob in &uses.globs {
                if let PathResult::Found(found) =
                    self.path(file, &[], &glob.module, name, depth + 1)
                {
                    return PathResult::Found(found);
                }
            }
        }
        PathResult::NotFound
    }

    /// The definitions named `name` in `file` inside exactly the inline modules `inside`.
    fn definitions_in(&self, file: &Path, inside: &[String], name: &str) -> Vec<Found<'s>> {
        let seed = self.seed;
        if file == seed.rel {
            return self
                .live_definitions(name)
                .filter(|d| {
                    d.kind != SymbolKind::Method
                        && resolve::inline_modules_around(&seed.live, d) == inside
                })
                .map(|def| self.live_found(def))
                .collect();
        }
        let index = seed.index;
        let Some(id) = index.file_id(file) else {
            return Vec::new();
        };
        let Some(indexed) = index.file(id) else {
            return Vec::new();
        };
        indexed
            .tags
            .definitions
            .iter()
            .filter(|d| {
                d.name == name
                    && d.kind != SymbolKind::Method
                    && resolve::inline_modules_around(&indexed.tags, d) == inside
            })
            .map(|def| Found {
                shown: display_path(&indexed.path),
                file: Some(id),
                def,
                source: &indexed.text,
            })
            .collect()
    }

    /// The top-level `use` declarations of an indexed file (or of the seed's own file), when
    /// they can re-export `name`: a file that neither mentions it nor has a glob is not parsed.
    fn uses_of(&self, file: &Path, name: &str) -> Option<Rc<UseScope>> {
        if let Some(cached) = self.uses.borrow().get(file) {
            return Some(cached.clone());
        }
        let seed = self.seed;
        let scope = if file == seed.rel {
            Rc::new(tree_uses(&seed.tree, &seed.text))
        } else {
            let id = seed.index.file_id(file)?;
            let indexed = seed.index.file(id)?;
            let text = &indexed.text;
            if indexed.tags.uses.is_empty() || (!text.contains(name) && !text.contains("::*")) {
                return None;
            }
            Rc::new(file_uses(text, &indexed.tags.uses))
        };
        self.uses
            .borrow_mut()
            .insert(file.to_path_buf(), scope.clone());
        Some(scope)
    }

    /// The type of a method call's receiver, when the code says it: `self`, a parameter or a
    /// `let` with a type, a constructor (`Type::new(…)`, `Type { … }`) or a call whose
    /// definition's signature names its return type, a field of a known struct, a literal.
    fn receiver_type(&self, receiver: Node<'_>) -> Option<String> {
        self.expression_type(receiver, false)
    }

    /// The type of an expression (see [`receiver_type`](Self::receiver_type)); with `unwrap`,
    /// that of the value inside a `Result` or `Option` it evaluates to (behind `?`,
    /// `.unwrap()`, `.expect(…)`).
    fn expression_type(&self, receiver: Node<'_>, unwrap: bool) -> Option<String> {
        // Chains, bindings and calls lead from one expression to another: bounded, so that
        // hostile or generated code cannot recurse without end.
        if self.depth.get() >= MAX_INFERENCE_DEPTH {
            return None;
        }
        self.depth.set(self.depth.get() + 1);
        let ty = self.expression_type_within(receiver, unwrap);
        self.depth.set(self.depth.get() - 1);
        ty
    }

    fn expression_type_within(&self, receiver: Node<'_>, unwrap: bool) -> Option<String> {
        let text = self.seed.text.as_str();
        let ty = match receiver.kind() {
            "self" => impl_type(receiver, text),
            "identifier" => {
                let name = text.get(receiver.byte_range())?;
                // A closure sees its own parameters and `let`s, then those of the closures and
                // the function around it.
                let mut scope = function_around(receiver);
                let (function, binding) = loop {
                    let function = scope?;
                    let found = {
                        let mut cache = self.bindings.borrow_mut();
                        let bindings = cache
                            .entry(function.start_byte())
                            .or_insert_with(|| bindings_of(function, text));
                        // The last binding of the name before the use wins (shadowing).
                        bindings
                            .iter()
                            .rev()
                            .find(|b| b.name == name && b.visible_from < receiver.start_byte())
                            .cloned()
                    };
                    match found {
                        Some(binding) => break (function, binding),
                        None if function.kind() == "closure_expression" => {
                            scope = function_around(function);
                        }
                        None => return None,
                    }
                };
                match binding.source {
                    BindingSource::Typed(ty) => Some(ty),
                    // `let store = open_store(&path)?;`: the type its value's call returns.
                    BindingSource::Value(value) => {
                        let node = self
                            .seed
                            .tree
                            .root_node()
                            .descendant_for_byte_range(value.start, value.end)?;
                        self.expression_type(node, false)
                    }
                    // `Config { path, .. }`: the field's type in that struct.
                    BindingSource::Field { ty, field } => self.field_type(&ty, &field),
                    // `store.with(|tx| tx.put(…))`: the closure's parameter as the called
                    // function's signature types it.
                    BindingSource::ClosureParameter(position) => {
                        self.closure_parameter_type(function, position)
                    }
                    BindingSource::Unknown => None,
                }
            }
            "field_expression" => {
                let base = self.receiver_type(receiver.child_by_field_name("value")?)?;
                let field = text.get(receiver.child_by_field_name("field")?.byte_range())?;
                self.field_type(&base, field)
            }
            "try_expression" => {
                let inner = receiver.named_child(0)?;
                self.expression_type(inner, true)
                    .or_else(|| value_type(inner, text))
            }
            "reference_expression" | "parenthesized_expression" => {
                let inner = receiver
                    .child_by_field_name("value")
                    .or_else(|| receiver.named_child(0))?;
                self.expression_type(inner, unwrap)
            }
            "call_expression" => self
                .call_type(receiver, unwrap)
                .or_else(|| value_type(receiver, text)),
            _ => value_type(receiver, text),
        }?;
        if ty == "Self" {
            impl_type(receiver, text)
        } else {
            // A generic parameter (`m: &M` with `M: Matcher`) has its bound's methods.
            Some(generic_bound(receiver, &ty, text).unwrap_or(ty))
        }
    }

    /// The type of the `position`th parameter of `closure`, read from the signature of the
    /// function it is passed to, when that call resolves for certain: a parameter written
    /// `impl FnMut(&Config) -> R`, or `F` with `F: FnOnce(&mut Tx)` among its generics or in
    /// its `where` clause.
    fn closure_parameter_type(&self, closure: Node<'_>, position: usize) -> Option<String> {
        let text = self.seed.text.as_str();
        let arguments = closure.parent().filter(|p| p.kind() == "arguments")?;
        let call = arguments
            .parent()
            .filter(|p| p.kind() == "call_expression")?;
        let mut walker = arguments.walk();
        let argument = arguments
            .named_children(&mut walker)
            .filter(|n| !n.is_extra())
            .position(|n| n.id() == closure.id())?;
        let mut function = call.child_by_field_name("function")?;
        if function.kind() == "generic_function" {
            function = function.child_by_field_name("function")?;
        }
        let (name_node, kind) = match function.kind() {
            "field_expression" => (function.child_by_field_name("field")?, RefKind::Method),
            "scoped_identifier" => (function.child_by_field_name("name")?, RefKind::Call),
            "identifier" => (function, RefKind::Call),
            _ => return None,
        };
        let name = text.get(name_node.byte_range())?;
        let Resolution::Local {
            found,
            certain: true,
            ..
        } = self.resolve(name, kind, name_node.start_byte())
        else {
            return None;
        };
        let mut types = found
            .iter()
            .filter(|f| f.def.kind.is_function())
            .map(|f| closure_argument_type(f.def, f.source, argument, position));
        let first = types.next()??;
        types
            .all(|t| t.as_deref() == Some(first.as_str()))
            .then_some(first)
    }

    /// The type a call returns, read from the signature of the function it certainly calls
    /// (`a.parser().build()`, `Config::load(…)?`, `open(…)`); `unwrap` as for
    /// [`expression_type`](Self::expression_type).
    fn call_type(&self, call: Node<'_>, unwrap: bool) -> Option<String> {
        let text = self.seed.text.as_str();
        let mut function = call.child_by_field_name("function")?;
        if function.kind() == "generic_function" {
            function = function.child_by_field_name("function")?;
        }
        let (name_node, kind) = match function.kind() {
            "field_expression" => {
                let field = function.child_by_field_name("field")?;
                let method = text.get(field.byte_range())?;
                // `x.unwrap()` is what is inside `x`'s `Result` or `Option`.
                if UNWRAPPING.contains(&method) {
                    return self.expression_type(function.child_by_field_name("value")?, true);
                }
                (field, RefKind::Method)
            }
            "scoped_identifier" => (function.child_by_field_name("name")?, RefKind::Call),
            "identifier" => (function, RefKind::Call),
            _ => return None,
        };
        let name = text.get(name_node.byte_range())?;
        let Resolution::Local {
            found,
            certain: true,
            ..
        } = self.resolve(name, kind, name_node.start_byte())
        else {
            return None;
        };
        let mut types = found.iter().filter(|f| f.def.kind.is_function()).map(|f| {
            return_type(f.def, f.source, unwrap).map(|ty| match (ty.as_str(), &f.def.owner) {
                ("Self", Some(owner)) => owner.clone(),
                _ => ty,
            })
        });
        let first = types.next()??;
        // Definitions that disagree tell nothing for sure.
        types
            .all(|t| t.as_deref() == Some(first.as_str()))
            .then_some(first)
    }

    /// The type of `field` in the struct `ty` (defined in this file or a reachable one).
    fn field_type(&self, ty: &str, field: &str) -> Option<String> {
        if STD_TYPES.contains(&ty) {
            return None;
        }
        let seed = self.seed;
        let index = seed.index;
        let is_struct = |d: &&Definition| d.kind == SymbolKind::Struct && d.name == ty;
        let mut texts: Vec<&str> = seed
            .live
            .definitions
            .iter()
            .filter(is_struct)
            .filter_map(|d| seed.text.get(d.range.clone()))
            .collect();
        if texts.is_empty() {
            for id in index.definitions_of(ty) {
                let (Some(file), Some(def)) = (index.file(id.file), index.definition(*id)) else {
                    continue;
                };
                if is_struct(&def) && index.reaches_file(seed.krate, &file.path) {
                    texts.extend(file.text.get(def.range.clone()));
                }
            }
        }
        // Only one struct of that name tells the field's type for sure.
        let [text] = texts.as_slice() else {
            return None;
        };
        field_type_in(text, field)
    }

    fn live_definitions<'n>(&self, name: &'n str) -> impl Iterator<Item = &'s Definition> + 'n
    where
        's: 'n,
    {
        let selection = self.seed.selection.clone();
        self.seed.live.definitions.iter().filter(move |d| {
            d.name == name
                && !(d.range.start >= selection.start && d.range.end <= selection.end)
                && !(d.range.start <= selection.start && selection.end <= d.range.end)
        })
    }

    fn live_found(&self, def: &'s Definition) -> Found<'s> {
        Found {
            shown: self.seed.display.clone(),
            file: None,
            def,
            source: self.seed.text.as_str(),
        }
    }

    /// The inline modules of the seed's file around `byte`, outermost first.
    fn inline_around(&self, byte: usize) -> Vec<String> {
        let mut modules: Vec<&super::structure::StructureItem> = self
            .seed
            .structure
            .items
            .iter()
            .filter(|m| m.kind == "module" && m.range.start <= byte && byte < m.range.end)
            .collect();
        modules.sort_by_key(|m| m.range.start);
        modules.into_iter().filter_map(|m| m.name.clone()).collect()
    }
}

/// The type after `for` in an `impl Trait<…> for Type<…>` whose trait name ends at `after`.
fn impl_target(text: &str, after: usize) -> Option<String> {
    let mut rest = text.get(after..)?.trim_start();
    if rest.starts_with('<') {
        let mut depth = 0usize;
        let mut end = None;
        for (at, c) in rest.char_indices() {
            match c {
                '<' => depth += 1,
                '>' if rest[..at].ends_with('-') => {}
                '>' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = Some(at + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = rest.get(end?..)?.trim_start();
    }
    let rest = rest.strip_prefix("for")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    type_in_text(rest, false)
}

fn starts_upper(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
}

/// `a::b::c` (a `scoped_identifier`'s path) as `["a", "b", "c"]`; generic arguments
/// (`Vec::<u8>::new`) are left out.
fn path_segments(node: Node<'_>, text: &str) -> Vec<String> {
    match node.kind() {
        "scoped_identifier" | "scoped_type_identifier" => {
            let mut out = node
                .child_by_field_name("path")
                .map(|p| path_segments(p, text))
                .unwrap_or_default();
            if let Some(name) = node.child_by_field_name("name") {
                out.push(text.get(name.byte_range()).unwrap_or("").to_string());
            }
            out
        }
        "generic_type" => node
            .child_by_field_name("type")
            .map(|t| path_segments(t, text))
            .unwrap_or_default(),
        _ => vec![text.get(node.byte_range()).unwrap_or("").to_string()],
    }
}

/// The path written before `name` in a macro's token tree (`a::B::` before `c` in
/// `a::B::c(…)`), from its first segment; `None` when a token other than a plain segment
/// (`<T as Trait>::`, `Vec::<u8>::`) or nothing stands before a `::`.
fn token_path_before(name: Node<'_>, text: &str) -> Option<Vec<String>> {
    let mut path = Vec::new();
    let mut at = name;
    while let Some(colons) = at.prev_sibling().filter(|p| p.kind() == "::") {
        let segment = colons
            .prev_sibling()
            .filter(|s| matches!(s.kind(), "identifier" | "self" | "super" | "crate"))?;
        path.push(text.get(segment.byte_range())?.to_string());
        at = segment;
        // Only so far as hand-written paths go: a token tree of thousands of `a::` is no path.
        if path.len() > 32 {
            return None;
        }
    }
    path.reverse();
    (!path.is_empty()).then_some(path)
}

/// The type of the `impl` around `node`; in a trait's body, the trait (whose methods are what
/// `self` and `Self` offer there).
fn impl_type(node: Node<'_>, text: &str) -> Option<String> {
    let mut current = node.parent();
    while let Some(n) = current {
        match n.kind() {
            "impl_item" => return type_name(n.child_by_field_name("type")?, text),
            "trait_item" => return type_name(n.child_by_field_name("name")?, text),
            _ => {}
        }
        current = n.parent();
    }
    None
}

/// The trait that bounds the generic parameter `name` of an item around `node` (`M` in
/// `fn f<M: Matcher>` or `where M: Matcher`): the first bound with a name, `?Sized` and
/// lifetimes left out. `None` when `name` is no generic parameter there.
fn generic_bound(node: Node<'_>, name: &str, text: &str) -> Option<String> {
    let bound_of = |bounds: Node<'_>| {
        let mut walker = bounds.walk();
        bounds
            .named_children(&mut walker)
            .filter(|b| b.kind() != "lifetime")
            .filter(|b| !text.get(b.byte_range()).unwrap_or("").starts_with('?'))
            .find_map(|b| type_name(b, text))
    };
    let mut current = node.parent();
    while let Some(n) = current {
        if let Some(params) = n.child_by_field_name("type_parameters") {
            let mut walker = params.walk();
            for p in params.named_children(&mut walker) {
                let declared = p
                    .child_by_field_name("name")
                    .and_then(|i| text.get(i.byte_range()));
                if declared != Some(name) {
                    continue;
                }
                if let Some(bound) = p.child_by_field_name("bounds").and_then(bound_of) {
                    return Some(bound);
                }
                // Declared here without an inline bound: perhaps in the `where` clause.
                let mut walker = n.walk();
                let clause = n
                    .named_children(&mut walker)
                    .find(|c| c.kind() == "where_clause");
                let clause = clause?;
                let mut walker = clause.walk();
                let bound = clause
                    .named_children(&mut walker)
                    .filter(|w| {
                        w.child_by_field_name("left")
                            .and_then(|l| text.get(l.byte_range()))
                            == Some(name)
                    })
                    .find_map(|w| w.child_by_field_name("bounds").and_then(bound_of));
                return bound;
            }
        }
        current = n.parent();
    }
    None
}

/// Whether `name` is a generic parameter of an item around `node` (`T` in `fn f<T>`).
fn is_generic_parameter(node: Node<'_>, name: &str, text: &str) -> bool {
    let mut current = node.parent();
    while let Some(n) = current {
        if let Some(params) = n.child_by_field_name("type_parameters") {
            let mut walker = params.walk();
            let declared = params.named_children(&mut walker).any(|p| {
                let id = p.child_by_field_name("name").unwrap_or(p);
                let id = if id.kind() == "type_identifier" {
                    Some(id)
                } else {
                    let mut w = id.walk();
                    id.named_children(&mut w)
                        .find(|c| c.kind() == "type_identifier")
                };
                id.and_then(|i| text.get(i.byte_range())) == Some(name)
            });
            if declared {
                return true;
            }
        }
        current = n.parent();
    }
    false
}

/// One binding of a function: a parameter, a `let` of a single name or a field of a struct
/// pattern, where it becomes visible, and what tells its type.
#[derive(Clone, Debug)]
struct Binding {
    name: String,
    visible_from: usize,
    source: BindingSource,
}

/// What tells a binding's type.
#[derive(Clone, Debug)]
enum BindingSource {
    /// Written or evident (`x: Store`, `let x = Store::new()`).
    Typed(String),
    /// A `let` without a type: the value it is bound to, whose type the resolver infers.
    Value(std::ops::Range<usize>),
    /// A field of a struct pattern (`let Config { path, .. } = …`, `Config { path, .. } =>`).
    Field { ty: String, field: String },
    /// An untyped parameter of the closure whose bindings these are, by position.
    ClosureParameter(usize),
    /// Nothing we can read.
    Unknown,
}

/// The bindings of one function (see [`Binding`]), in the order they become visible.
type Bindings = Vec<Binding>;

/// The function (or closure) around `node`.
fn function_around(node: Node<'_>) -> Option<Node<'_>> {
    let mut current = node.parent();
    while let Some(f) = current {
        if matches!(f.kind(), "function_item" | "closure_expression") {
            return Some(f);
        }
        current = f.parent();
    }
    None
}

/// Reads the bindings of `function` once (see [`Bindings`]).
fn bindings_of(function: Node<'_>, text: &str) -> Bindings {
    let name_of = |pattern: Node<'_>| {
        text.get(pattern.byte_range())
            .map(|p| p.trim_start_matches("mut ").trim().to_string())
    };
    let mut out = Vec::new();
    if let Some(params) = function.child_by_field_name("parameters") {
        let mut walker = params.walk();
        for (position, param) in params.named_children(&mut walker).enumerate() {
            match param.kind() {
                "parameter" => {
                    let Some(name) = param.child_by_field_name("pattern").and_then(name_of) else {
                        continue;
                    };
                    let source = param
                        .child_by_field_name("type")
                        .and_then(|t| type_name(t, text))
                        .map_or(BindingSource::Unknown, BindingSource::Typed);
                    out.push(Binding {
                        name,
                        visible_from: function.start_byte(),
                        source,
                    });
                }
                // `|tx| …`: typed by the signature of the function the closure is given to.
                "identifier" if function.kind() == "closure_expression" => {
                    if let Some(name) = name_of(param) {
                        out.push(Binding {
                            name,
                            visible_from: function.start_byte(),
                            source: BindingSource::ClosureParameter(position),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    let mut stack = vec![function];
    while let Some(n) = stack.pop() {
        if n.kind() == "let_declaration"
            && let Some(pattern) = n.child_by_field_name("pattern")
            && matches!(pattern.kind(), "identifier" | "mut_pattern")
            && let Some(name) = name_of(pattern)
        {
            let value = n.child_by_field_name("value");
            let ty = match n.child_by_field_name("type") {
                Some(t) => type_name(t, text),
                None => value.and_then(|v| value_type(v, text)),
            };
            let source = match (ty, value) {
                (Some(ty), _) => BindingSource::Typed(ty),
                (None, Some(value)) => BindingSource::Value(value.byte_range()),
                (None, None) => BindingSource::Unknown,
            };
            // A `let` is seen after it, not in its own value (`let x = x.parse()?;`).
            out.push(Binding {
                name,
                visible_from: n.end_byte().saturating_sub(1),
                source,
            });
        }
        if n.kind() == "struct_pattern"
            && let Some(ty) = n
                .child_by_field_name("type")
                .and_then(|t| type_name(t, text))
        {
            let mut walker = n.walk();
            for field in n.named_children(&mut walker) {
                if field.kind() != "field_pattern" {
                    continue;
                }
                let Some(field_name) = field
                    .child_by_field_name("name")
                    .and_then(|f| text.get(f.byte_range()))
                else {
                    continue;
                };
                // `Config { path, .. }` binds `path`; `Config { path: p, .. }` binds `p`.
                let bound = match field.child_by_field_name("pattern") {
                    None => Some(field_name.to_string()),
                    Some(p) if p.kind() == "identifier" => name_of(p),
                    Some(_) => None,
                };
                if let Some(name) = bound {
                    out.push(Binding {
                        name,
                        visible_from: n.end_byte(),
                        source: BindingSource::Field {
                            ty: ty.clone(),
                            field: field_name.to_string(),
                        },
                    });
                }
            }
        }
        let mut walker = n.walk();
        stack.extend(n.named_children(&mut walker));
    }
    out.sort_by_key(|b| b.visible_from);
    out
}

/// The type of the `position`th parameter of a closure passed as the `argument`th argument to
/// the function `def`: its parameter's written type (`impl FnMut(&Config)`, or a generic `F`
/// bound by `F: Fn(&Config)` in its generics or `where` clause), the Fn's argument at
/// `position`. A method's `self` is not an argument.
fn closure_argument_type(
    def: &Definition,
    source: &str,
    argument: usize,
    position: usize,
) -> Option<String> {
    let end = def.body_start.unwrap_or(def.range.end);
    let signature = source.get(def.range.start..end)?;
    let open = signature.find('(')?;
    let close = open + matching_close(&signature[open..])?;
    let parameters: Vec<&str> = split_top_level(&signature[open + 1..close])
        .into_iter()
        .filter(|p| {
            let p = p.trim();
            !(p.is_empty() || p.ends_with("self") || p.starts_with("self:"))
        })
        .collect();
    let written = parameters.get(argument)?.split_once(':')?.1.trim();
    let bound = match fn_arguments(written) {
        Some(arguments) => arguments,
        None => {
            // `f: F` (or `&mut F`): `F`'s bound, inline or in the `where` clause.
            let generic = written
                .trim_start_matches(['&', ' '])
                .trim_start_matches("mut ");
            let mut found = None;
            let head = &signature[..open];
            let tail = &signature[close..];
            for place in [head, tail] {
                for (at, _) in place.match_indices(generic) {
                    let before = place[..at].chars().next_back();
                    let after = place[at + generic.len()..].trim_start();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    if let Some(rest) = after.strip_prefix(':')
                        && let Some(arguments) = fn_arguments(rest.trim_start())
                    {
                        found = Some(arguments);
                        break;
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            found?
        }
    };
    let ty = split_top_level(bound).into_iter().nth(position)?;
    type_in_text(ty, false)
}

/// The arguments inside `Fn(…)`, `FnMut(…)` or `FnOnce(…)` at the start of `bound` (after
/// `impl ` or `&dyn `).
fn fn_arguments(bound: &str) -> Option<&str> {
    let bound = bound
        .trim_start_matches(['&', ' '])
        .trim_start_matches("mut ")
        .trim_start_matches("impl ")
        .trim_start_matches("dyn ")
        .trim_start();
    let rest = ["FnOnce", "FnMut", "Fn"]
        .iter()
        .find_map(|f| bound.strip_prefix(f))?;
    if !rest.starts_with('(') {
        return None;
    }
    let close = matching_close(rest)?;
    rest.get(1..close)
}

/// The offset of the `)` that closes the `(` `text` starts with.
fn matching_close(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => {
                // `->` is no closing bracket.
                if c == '>' && text[..at].ends_with('-') {
                    continue;
                }
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (c == ')').then_some(at);
                }
            }
            _ => {}
        }
    }
    None
}

/// `a: A, b: B<C, D>` split at the commas outside brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (at, c) in text.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            '>' if text[..at].ends_with('-') => {}
            ')' | '>' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(&text[start..]);
    }
    out
}

/// The return type a function's signature names (`-> Store`, `-> Result<Self, Error>`); with
/// `unwrap`, the type inside a `Result` or `Option` it returns.
fn return_type(def: &Definition, source: &str, unwrap: bool) -> Option<String> {
    let end = def.body_start.unwrap_or(def.range.end);
    let signature = source.get(def.range.start..end)?;
    let open = signature.find('(')?;
    let mut depth = 0usize;
    let mut close = None;
    for (at, c) in signature[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    close = Some(open + at);
                    break;
                }
            }
            _ => {}
        }
    }
    let after = signature.get(close? + 1..)?.trim_start();
    let written = after.strip_prefix("->")?;
    let written = written.split(" where").next().unwrap_or(written);
    type_in_text(written, unwrap)
}

/// The type a written type names (`&'a mut crate::Store<T>` → `Store`); with `unwrap`, the
/// first argument of a `Result`, `Option` or `…Result` alias.
fn type_in_text(written: &str, unwrap: bool) -> Option<String> {
    let mut ty = written.trim();
    loop {
        let before = ty;
        ty = ty.trim_start_matches('&').trim_start();
        if ty.starts_with('\'') {
            ty = ty.find(' ').map_or("", |space| &ty[space..]).trim_start();
        }
        for word in ["mut ", "impl ", "dyn "] {
            ty = ty.strip_prefix(word).unwrap_or(ty).trim_start();
        }
        if ty == before {
            break;
        }
    }
    let end = ty
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(ty.len());
    let base = ty[..end].rsplit("::").next().unwrap_or("");
    if base.is_empty() {
        return None;
    }
    if unwrap && (base == "Option" || base.ends_with("Result")) {
        return type_in_text(ty[end..].trim_start().strip_prefix('<')?, false);
    }
    Some(base.to_string())
}

/// The type an expression evidently has: `Type::f(…)` (a constructor, by convention),
/// `Type { … }`, a string literal, `vec![…]`, `format!(…)`, and the same behind `?` or `&`.
fn value_type(value: Node<'_>, text: &str) -> Option<String> {
    match value.kind() {
        "call_expression" => {
            let function = value.child_by_field_name("function")?;
            let function = match function.kind() {
                "generic_function" => function.child_by_field_name("function")?,
                _ => function,
            };
            if function.kind() != "scoped_identifier" {
                return None;
            }
            let path = function.child_by_field_name("path")?;
            let ty = type_name(path, text)?;
            starts_upper(&ty).then_some(ty)
        }
        "struct_expression" => type_name(value.child_by_field_name("name")?, text),
        "string_literal" | "raw_string_literal" => Some("str".into()),
        "macro_invocation" => match text.get(value.child_by_field_name("macro")?.byte_range())? {
            "vec" => Some("Vec".into()),
            "format" => Some("String".into()),
            _ => None,
        },
        "try_expression" | "reference_expression" | "parenthesized_expression" => {
            let inner = value
                .child_by_field_name("value")
                .or_else(|| value.named_child(0))?;
            value_type(inner, text)
        }
        _ => None,
    }
}

/// The type name of `field` in a struct's text (`pub items: Vec<Item>,` → `Vec`), on one
/// line or many.
fn field_type_in(text: &str, field: &str) -> Option<String> {
    let body = &text[text.find('{')? + 1..];
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    for (at, _) in body.match_indices(field) {
        let before = body[..at].chars().next_back();
        let after = body[at + field.len()..].trim_start();
        if before.is_some_and(is_word)
            || after.starts_with("::")
            || !after.starts_with(':')
            || body[at + field.len()..].starts_with(is_word)
        {
            continue;
        }
        let ty = after[1..].trim_start();
        let ty = ty
            .trim_start_matches('&')
            .trim_start_matches("'static ")
            .trim_start_matches("mut ")
            .trim_start();
        let end = ty
            .find(|c: char| !(is_word(c) || c == ':'))
            .unwrap_or(ty.len());
        let path = &ty[..end];
        let base = path.rsplit("::").next().unwrap_or(path);
        return (!base.is_empty()).then(|| base.to_string());
    }
    None
}

/// An imported name as the External item lists it.
pub(super) fn external_line(name: &str, path: &str, package: &str) -> String {
    if package == "std" {
        format!("`{name}`: `{path}` (the standard library)")
    } else {
        format!("`{name}`: `{path}` (dependency `{package}`)")
    }
}
