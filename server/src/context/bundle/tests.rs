//! Bundles built from multi-file fixtures: what goes in, why, and what the budget keeps.

use super::*;
use std::path::{Path, PathBuf};

use crate::context::ContextSettings;

/// Builds an in-memory workspace from a multi-file fixture (`//- /path` headers) and a
/// request for the `$0` cursor (one marker) or `$0…$0` selection (two markers).
fn fixture(text: &str, settings: &ContextSettings) -> (WorkspaceIndex, BundleRequest) {
    let mut files = Vec::new();
    let mut manifests = Vec::new();
    let mut request = BundleRequest::default();
    for chunk in text.split("//- /").skip(1) {
        let (path, body) = chunk.split_once('\n').expect("a header line");
        let path = PathBuf::from(path.trim());
        let mut body = body.to_string();
        let markers: Vec<usize> = body.match_indices("$0").map(|(i, _)| i).collect();
        if !markers.is_empty() {
            body = body.replace("$0", "");
            let start = markers[0];
            let end = markers.get(1).map_or(start, |e| e - 2);
            request.file = path.clone();
            request.range = start..end;
        }
        if path.file_name().is_some_and(|n| n == "Cargo.toml") {
            manifests.push((path, body));
        } else {
            files.push((path, body));
        }
    }
    let index =
        WorkspaceIndex::from_texts(Path::new("/ws"), settings, files, &manifests).expect("index");
    (index, request)
}

fn summary(bundle: &ContextBundle) -> Vec<String> {
    bundle
        .items
        .iter()
        .map(|i| {
            format!(
                "{} {}:{} {}",
                i.kind.label(),
                i.file,
                i.start_line,
                i.symbol.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

const SHOP: &str = r#"
//- /Cargo.toml
[package]
name = "shop"
edition = "2021"
[dependencies]
serde = "1"
//- /src/lib.rs
pub mod cart;
pub mod price;
//- /src/price.rs
/// An amount of money in cents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub cents: u64,
}

impl Price {
    /// A price from a number of cents.
    pub fn from_cents(cents: u64) -> Price {
        Price { cents }
    }
}

/// The largest basket we accept.
pub const MAX_ITEMS: usize = 100;
//- /src/unrelated.rs
pub struct Weather { pub celsius: f64 }
pub fn forecast() -> Weather { Weather { celsius: 20.0 } }
//- /src/cart.rs
use crate::price::{Price, MAX_ITEMS};

/// The sum of the prices.
pub fn total(items: &[Price]) -> Price {
    assert!(items.len() <= MAX_ITEMS);
    let sum = items.iter().map(|p| p.cents).$0sum();
    Price::from_cents(sum)
}

pub fn checkout(items: &[Price]) -> String {
    format!("{:?}", total(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up() {
        assert_eq!(total(&[Price::from_cents(2)]).cents, 2);
    }
}
//- /tests/shop.rs
#[test]
fn checkout_prints_the_total() {
    assert!(shop::cart::total(&[]).cents == 0);
}
"#;

#[test]
fn a_function_bundle_has_its_definitions_callers_tests_and_reasons() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(SHOP, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let summary = summary(&bundle);
    for expected in [
        "selection src/cart.rs:3 total",
        "definition src/price.rs:1 Price",
        "definition src/price.rs:8 from_cents",
        "definition src/price.rs:14 MAX_ITEMS",
        "caller src/cart.rs:10 checkout",
        "test src/cart.rs:18 totals_add_up",
        "test tests/shop.rs:1 checkout_prints_the_total",
        "imports src/cart.rs:1 -",
        "crate Cargo.toml:1 shop",
    ] {
        assert!(
            summary.contains(&expected.to_string()),
            "{expected} missing from {summary:#?}"
        );
    }
    assert!(
        !summary.iter().any(|s| s.contains("unrelated.rs")),
        "{summary:#?}"
    );
    let imports = bundle
        .items
        .iter()
        .find(|i| i.kind == ItemKind::Imports)
        .expect("imports");
    // The test module's `use super::*` is not in scope of `total`.
    assert_eq!(
        (imports.start_line, imports.end_line, imports.text.as_str()),
        (1, 1, "use crate::price::{Price, MAX_ITEMS};\n")
    );
    assert!(bundle.total_tokens <= bundle.budget);
    // The total is the whole prompt: the items and the prompt's opening line.
    let items_only = bundle.items.iter().map(|i| i.tokens).sum::<usize>();
    assert!(
        items_only < bundle.total_tokens && bundle.total_tokens <= items_only + 25,
        "{items_only} of {}",
        bundle.total_tokens
    );
    for item in &bundle.items {
        assert!(!item.reason.is_empty() && item.tokens > 0, "{item:?}");
    }
    let price = bundle
        .items
        .iter()
        .find(|i| i.symbol.as_deref() == Some("Price"))
        .expect("Price");
    assert_eq!(
        price.reason,
        "`Price` is used by the selection (imported from `crate::price`)"
    );
    assert!(
        price.text.starts_with("/// An amount of money"),
        "{}",
        price.text
    );
    // The selection comes first, and everything is ordered by score.
    assert_eq!(bundle.items[0].kind, ItemKind::Selection);
    assert!(bundle.items.windows(2).all(|w| w[0].score >= w[1].score));
    let prompt = bundle.to_prompt();
    assert!(
        prompt.find("src/price.rs").expect("price")
            < prompt.find("src/cart.rs:3").expect("selection")
    );
    assert!(
        bundle
            .to_markdown()
            .contains("| 1 | selection | src/cart.rs:3-8 | total |")
    );
}

#[test]
fn a_small_budget_keeps_the_best_items_and_falls_back_to_signatures() {
    let mut settings = ContextSettings::default();
    let (index, mut request) = fixture(SHOP, &settings);
    let full = build_bundle(&index, &request).expect("bundle");
    request.budget = Some(full.total_tokens / 2);
    let half = build_bundle(&index, &request).expect("bundle");
    assert!(half.total_tokens <= half.budget, "{}", half.to_text());
    assert!(half.items.len() < full.items.len());
    assert!(!half.omitted.is_empty());
    assert_eq!(half.items[0].kind, ItemKind::Selection);
    // A budget below the selection cuts it and says so.
    request.budget = Some(60);
    let tiny = build_bundle(&index, &request).expect("bundle");
    assert!(tiny.total_tokens <= 60, "{}", tiny.to_text());
    assert!(
        tiny.notes.iter().any(|n| n.contains("selection was cut")),
        "{:?}",
        tiny.notes
    );
    // Long bodies are elided to their signatures.
    settings.max_body_lines = 1;
    let (index, request) = fixture(SHOP, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let from_cents = bundle
        .items
        .iter()
        .find(|i| i.symbol.as_deref() == Some("from_cents"))
        .expect("from_cents");
    assert!(
        from_cents
            .text
            .ends_with("pub fn from_cents(cents: u64) -> Price { … }"),
        "{}",
        from_cents.text
    );
}

#[test]
fn the_index_follows_edits_and_removals() {
    let settings = ContextSettings::default();
    let (mut index, mut request) = fixture(SHOP, &settings);
    // A new helper in another file, then a selection that calls it.
    let price = index
        .file(index.file_id(Path::new("src/price.rs")).expect("indexed"))
        .expect("file")
        .text
        .to_string();
    index
        .update_file(
            Path::new("src/price.rs"),
            &format!(
                "{price}\n/// Takes a share off.\npub fn discount(p: Price) -> Price {{ p }}\n"
            ),
        )
        .expect("update");
    assert_eq!(index.definitions_of("discount").len(), 1);
    let cart = "use crate::price::*;\npub fn sale(p: Price) -> Price { discount(p) }\n";
    request.text = Some(cart.to_string());
    request.range = 40..40;
    let bundle = build_bundle(&index, &request).expect("bundle");
    assert!(
        summary(&bundle).contains(&"definition src/price.rs:17 discount".to_string()),
        "{:#?}",
        summary(&bundle)
    );
    // Once the file is gone, so is its definition.
    index
        .remove_file(Path::new("src/price.rs"))
        .expect("remove");
    assert!(index.definitions_of("discount").is_empty());
    assert!(index.definitions_of("Price").is_empty());
    let bundle = build_bundle(&index, &request).expect("bundle");
    assert!(!summary(&bundle).iter().any(|s| s.contains("price.rs")));
}

#[test]
fn the_repository_map_fills_the_rest_with_signatures_from_related_files_only() {
    let settings = ContextSettings::default();
    let shop = SHOP.replace(
        "/// The largest basket we accept.",
        "/// Half off.\npub fn halve(p: Price) -> Price {\n    Price { cents: p.cents / 2 }\n}\n\n/// The largest basket we accept.",
    );
    let (index, request) = fixture(&shop, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let map: Vec<&ContextItem> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Map)
        .collect();
    assert_eq!(map.len(), 1, "{}", bundle.to_text());
    assert_eq!(
        (
            map[0].file.as_str(),
            map[0].symbol.as_deref(),
            map[0].text.as_str()
        ),
        (
            "src/price.rs",
            Some("halve"),
            "pub fn halve(p: Price) -> Price"
        )
    );
    assert!(map[0].reason.starts_with("signature from a file"));
    let lowest_other = bundle
        .items
        .iter()
        .filter(|i| i.kind != ItemKind::Map)
        .map(|i| i.score)
        .fold(f64::MAX, f64::min);
    assert!(map[0].score < lowest_other);
}

#[test]
fn the_goal_pulls_in_what_it_names() {
    let settings = ContextSettings::default();
    let (index, mut request) = fixture(SHOP, &settings);
    request.goal = Some("show the forecast next to the total".into());
    let bundle = build_bundle(&index, &request).expect("bundle");
    let forecast = bundle
        .items
        .iter()
        .find(|i| i.symbol.as_deref() == Some("forecast"))
        .expect("forecast");
    // A word of the goal is no path the compiler would follow: it is matched by name, and the
    // item says so, and that it came after the certain items.
    assert_eq!(
        forecast.reason,
        "`forecast` is named in the goal (neither imported nor defined in this file; matched by name); \
         uncertain, so taken only with the budget the certain items left"
    );
    assert_eq!(forecast.certain, Some(false));
    assert!(
        bundle
            .to_prompt()
            .ends_with("Goal: show the forecast next to the total\n")
    );
}

#[test]
fn secrets_are_refused_and_outside_files_are_noted() {
    let settings = ContextSettings::default();
    let (index, mut request) = fixture(SHOP, &settings);
    request.file = PathBuf::from("config/.env");
    request.text = Some("API_KEY=abc".into());
    let err = build_bundle(&index, &request).expect_err("a secret");
    assert!(err.to_string().contains("looks like a secret"), "{err}");
    request.file = PathBuf::from("/elsewhere/tool.rs");
    request.text = Some("fn tool() { forecast(); }".into());
    request.range = 0..0;
    let bundle = build_bundle(&index, &request).expect("bundle");
    assert!(
        bundle.notes[0].contains("outside the workspace"),
        "{:?}",
        bundle.notes
    );
    assert!(summary(&bundle).contains(&"definition src/unrelated.rs:2 forecast".to_string()));
}

#[test]
fn a_cursor_outside_any_item_and_broken_code_still_give_a_bundle() {
    let settings = ContextSettings::default();
    let (index, mut request) = fixture(SHOP, &settings);
    request.text =
        Some("use crate::price::Price;\n\nfn broken( { let x = Price::from_cents(;\n".into());
    request.range = 1000..2000;
    let bundle = build_bundle(&index, &request).expect("bundle");
    assert_eq!(bundle.items[0].kind, ItemKind::Selection);
    assert!(summary(&bundle).iter().any(|s| s.starts_with("imports")));
}

#[test]
fn the_whole_prompt_fits_the_budget_with_its_opening_and_goal_lines() {
    let settings = ContextSettings::default();
    let (index, mut request) = fixture(SHOP, &settings);
    let tokenizer = crate::context::tokens::Tokenizer::from_name(&settings.tokenizer)
        .expect("the default tokenizer");
    let full = build_bundle(&index, &request).expect("bundle");
    let full_prompt = tokenizer.count(&full.to_prompt());
    for goal in [
        None,
        Some("make the total saturate instead of overflowing when a basket holds huge prices"),
    ] {
        request.goal = goal.map(str::to_string);
        for budget in (60..full_prompt + 80).step_by(9) {
            request.budget = Some(budget);
            let bundle = build_bundle(&index, &request).expect("bundle");
            let prompt = tokenizer.count(&bundle.to_prompt());
            assert!(
                prompt <= budget,
                "budget {budget}, goal {goal:?}: the prompt costs {prompt}\n{}",
                bundle.to_text()
            );
            assert_eq!(bundle.total_tokens, prompt, "budget {budget}");
        }
    }
}

#[test]
fn names_imported_by_a_use_list_resolve_to_the_imported_definitions() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(
        r#"
//- /Cargo.toml
[package]
name = "app"
edition = "2021"
//- /src/lib.rs
pub mod a;
pub mod other;
pub mod run;
//- /src/a.rs
pub mod c;
/// The B of `a`.
pub struct B;
//- /src/a/c.rs
/// The D of `a::c`.
pub struct D { pub size: u32 }
//- /src/other.rs
pub struct B { pub wrong: bool }
pub struct D;
pub struct E;
pub struct F;
pub struct G;
pub mod inner {
    /// The F of `other::inner`.
    pub struct F;
}
//- /src/re.rs
pub use crate::other::G;
//- /src/run.rs
use crate::a::{B, c::D as E};
use crate::other::inner::F;
use crate::re::G;

pub fn run(b: B, f: F, g: G) -> u32 {
    let e: E = E { size: 1 };$0
    e.size
}
"#,
        &settings,
    );
    let bundle = build_bundle(&index, &request).expect("bundle");
    let mut definitions: Vec<(&str, u32, &str, &str)> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition)
        .map(|i| {
            (
                i.file.as_str(),
                i.start_line,
                i.symbol.as_deref().unwrap_or(""),
                i.reason.as_str(),
            )
        })
        .collect();
    definitions.sort();
    assert_eq!(
        definitions,
        [
            (
                "src/a.rs",
                2,
                "B",
                "`B` is used by the selection (imported from `crate::a`)"
            ),
            (
                "src/a/c.rs",
                1,
                "D",
                "`E` is used by the selection (imported as `crate::a::c::D`)"
            ),
            // The re-export `pub use crate::other::G;` in `re.rs` is followed to `other`.
            (
                "src/other.rs",
                5,
                "G",
                "`G` is used by the selection (imported from `crate::re`)"
            ),
            // `other::inner::F`, not the `F` of `other` in the same file.
            (
                "src/other.rs",
                7,
                "F",
                "`F` is used by the selection (imported from `crate::other::inner`)"
            ),
        ],
        "{}",
        bundle.to_text()
    );
}

/// This repository's layout: an outer workspace holding `server/` that excludes `examples/`,
/// which has an empty `[workspace]` of its own and uses axum and sqlx.
const TWO_WORKSPACES: &str = r#"
//- /Cargo.toml
[workspace]
members = ["server"]
exclude = ["examples"]
//- /server/Cargo.toml
[package]
name = "conductor"
edition = "2024"
//- /server/src/lib.rs
pub mod document;
pub mod lsp;
//- /server/src/document.rs
pub struct Document { text: String }
impl Document {
    /// The length of the text.
    pub fn len(&self) -> usize { self.text.len() }
}
/// Runs a query.
pub fn query(q: &str) -> usize { q.len() }
//- /server/src/lsp.rs
/// The server's state.
pub struct State { pub open: bool }
//- /examples/Cargo.toml
[package]
name = "shop"
edition = "2021"
[workspace]
[dependencies]
axum = "0.7"
sqlx = { version = "0.8", features = ["postgres"] }
//- /examples/src/handlers.rs
use axum::extract::{Query, State};
use sqlx::PgPool;

pub struct Search { pub name: String }

pub async fn product_by_name(State(pool): State<PgPool>, Query(q): Query<Search>) -> String {
    let rows = sqlx::query(&q.name).fetch_all(&pool).await;$0
    format!("{} products", rows.map(|r| r.len()).unwrap_or(0))
}
"#;

#[test]
fn a_package_with_a_workspace_of_its_own_gets_nothing_from_the_outer_workspace() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(TWO_WORKSPACES, &settings);
    let shop = index
        .crate_index(Path::new("examples/src/handlers.rs"))
        .expect("shop crate");
    let server = index
        .crate_index(Path::new("server/src/lsp.rs"))
        .expect("server crate");
    assert_eq!(index.workspace_of(shop), Some(Path::new("examples")));
    assert_eq!(index.workspace_of(server), Some(Path::new("")));
    let bundle = build_bundle(&index, &request).expect("bundle");
    let text = bundle.to_text();
    assert!(
        bundle.items.iter().all(|i| !i.file.starts_with("server/")),
        "{text}"
    );
    // `State` and `query` are axum's and sqlx's, and the bundle says so.
    let external = bundle
        .items
        .iter()
        .find(|i| i.kind == ItemKind::External)
        .expect("an external item");
    for line in [
        "`State`: `axum::extract::State` (dependency `axum`)",
        "`Query`: `axum::extract::Query` (dependency `axum`)",
        "`PgPool`: `sqlx::PgPool` (dependency `sqlx`)",
        "`query`: `sqlx::query` (dependency `sqlx`)",
    ] {
        assert!(external.text.contains(line), "{line}\n{}", external.text);
    }
    let definitions: Vec<&str> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition)
        .filter_map(|i| i.symbol.as_deref())
        .collect();
    assert_eq!(definitions, ["Search"], "{text}");
}

#[test]
fn renamed_dependencies_lead_into_their_crate_and_unreachable_crates_never_count() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(
        r#"
//- /Cargo.toml
[workspace]
members = ["crates/*"]
[workspace.dependencies]
helix-core = { path = "crates/core" }
//- /crates/tui/Cargo.toml
[package]
name = "helix-tui"
//- /crates/tui/src/lib.rs
pub mod widgets;
pub use widgets::Widget;
//- /crates/tui/src/widgets.rs
/// A thing drawn on screen.
pub trait Widget { fn draw(&self); }
//- /crates/core/Cargo.toml
[package]
name = "helix-core"
//- /crates/core/src/lib.rs
/// A position in a document.
pub struct Position { pub line: usize }
//- /crates/other/Cargo.toml
[package]
name = "other"
//- /crates/other/src/lib.rs
pub trait Widget { fn wrong(&self); }
pub struct Position { pub wrong: bool }
pub fn render() {}
//- /crates/term/Cargo.toml
[package]
name = "helix-term"
[dependencies]
tui = { package = "helix-tui", path = "../tui" }
helix-core = { workspace = true }
//- /crates/term/src/lib.rs
use tui::Widget;

pub fn paint(w: &dyn Widget, at: helix_core::Position) {
    w.draw();$0
    render();
}
"#,
        &settings,
    );
    let bundle = build_bundle(&index, &request).expect("bundle");
    let text = bundle.to_text();
    let mut definitions: Vec<(&str, &str, Option<bool>)> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition)
        .map(|i| {
            (
                i.file.as_str(),
                i.symbol.as_deref().unwrap_or(""),
                i.certain,
            )
        })
        .collect();
    definitions.sort();
    // `Widget` through the renamed `tui` and its `pub use`; `Position` through the inherited
    // workspace dependency; `render` is only defined in a crate `helix-term` cannot reach.
    assert_eq!(
        definitions,
        [
            ("crates/core/src/lib.rs", "Position", Some(true)),
            ("crates/tui/src/widgets.rs", "Widget", Some(true)),
        ],
        "{text}"
    );
    assert!(
        !bundle
            .items
            .iter()
            .any(|i| i.file.starts_with("crates/other")),
        "{text}"
    );
}

#[test]
fn methods_resolve_through_a_known_receiver_type_and_are_left_out_otherwise() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(
        r#"
//- /Cargo.toml
[package]
name = "app"
//- /src/lib.rs
pub mod store;
pub mod text;
pub mod run;
//- /src/store.rs
pub struct Store { items: Vec<u32> }
impl Store {
    /// Opens a store.
    pub fn open() -> Store { Store { items: Vec::new() } }
    /// The item at `i`.
    pub fn get(&self, i: usize) -> u32 { self.items[i] }
    /// Adds one.
    pub fn push(&mut self, x: u32) { self.items.push(x) }
}
//- /src/text.rs
pub struct Text;
impl Text {
    /// Not the `len` of anything the selection has.
    pub fn len(&self) -> usize { 0 }
    /// Not the `get` of a store.
    pub fn get(&self) -> usize { 0 }
}
//- /src/run.rs
use crate::store::Store;

pub struct Runner { store: Store, names: Vec<String> }

impl Runner {
    pub fn run(&mut self, other: &[u8]) -> usize {
        let fresh = Store::open();
        let first = fresh.get(0);
        self.names.push(String::new());
        self.store.push(first);$0
        other.len()
    }
}
"#,
        &settings,
    );
    let bundle = build_bundle(&index, &request).expect("bundle");
    let text = bundle.to_text();
    let mut definitions: Vec<(&str, u32, &str)> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition)
        .map(|i| {
            (
                i.file.as_str(),
                i.start_line,
                i.symbol.as_deref().unwrap_or(""),
            )
        })
        .collect();
    definitions.sort();
    // `Store::open`, `fresh.get` (a `let` from a constructor) and `self.store.push` (a field
    // of a struct in this file) are `Store`'s; `self.names.push` is `Vec`'s and `other.len`
    // has no known type: neither is matched to a same-named method.
    assert_eq!(
        definitions,
        [
            ("src/store.rs", 1, "Store"),
            ("src/store.rs", 3, "open"),
            ("src/store.rs", 5, "get"),
            ("src/store.rs", 7, "push"),
        ],
        "{text}"
    );
    assert!(
        !bundle
            .items
            .iter()
            .any(|i| i.kind == ItemKind::Definition && i.file == "src/text.rs"),
        "{text}"
    );
    assert!(
        !bundle.items.iter().any(|i| i.kind == ItemKind::External),
        "the standard library's `push` and `new` go without saying: {text}"
    );
}

#[test]
fn glob_imports_resolve_and_names_used_elsewhere_in_the_function_rank_below_the_selection() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(
        r#"
//- /Cargo.toml
[package]
name = "app"
//- /src/lib.rs
pub mod prelude;
pub mod run;
//- /src/prelude.rs
/// The limit.
pub const LIMIT: u32 = 3;
/// Checks.
pub fn check(x: u32) -> bool { x < LIMIT }
//- /src/run.rs
use crate::prelude::*;

pub fn run(x: u32) -> bool {
    let y = x + 1;
    $0let ok = check(y);$0
    ok && y < LIMIT
}
"#,
        &settings,
    );
    let bundle = build_bundle(&index, &request).expect("bundle");
    let text = bundle.to_text();
    let check = bundle
        .items
        .iter()
        .find(|i| i.symbol.as_deref() == Some("check"))
        .expect("check");
    let limit = bundle
        .items
        .iter()
        .find(|i| i.symbol.as_deref() == Some("LIMIT"))
        .expect("LIMIT, used outside the selection");
    assert_eq!(
        check.reason,
        "`check` is used by the selection (through `use crate::prelude::*`)"
    );
    assert_eq!(
        limit.reason,
        "`LIMIT` is used elsewhere in `run` (through `use crate::prelude::*`)"
    );
    assert!(limit.score < check.score, "{text}");
}

#[test]
fn a_cursor_in_a_large_impl_selects_the_nearest_method_and_the_impl_header() {
    let settings = ContextSettings::default();
    let filler: String = (0..130)
        .map(|i| format!("    pub fn filler{i}(&self) -> u32 {{ {i} }}\n"))
        .collect();
    let source = format!(
        "//- /Cargo.toml\n[package]\nname = \"app\"\n//- /src/lib.rs\npub struct Big;\n\nimpl Big {{\n{filler}\n$0\n    /// The one near the cursor.\n    pub fn near(&self) -> u32 {{ self.filler3() }}\n}}\n"
    );
    let (index, request) = fixture(&source, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let text = bundle.to_text();
    let selection = &bundle.items[0];
    assert_eq!(selection.kind, ItemKind::Selection);
    assert_eq!(selection.symbol.as_deref(), Some("near"), "{text}");
    assert!(selection.text.contains("pub fn near"), "{text}");
    assert!(!selection.text.contains("filler10"), "{text}");
    assert!(
        selection
            .reason
            .starts_with("the function nearest the cursor in the"),
        "{}",
        selection.reason
    );
    assert!(
        bundle
            .items
            .iter()
            .any(|i| i.kind == ItemKind::Enclosing && i.text.starts_with("impl Big")),
        "{text}"
    );
    // The method it calls on `self` is `Big`'s.
    assert!(
        bundle
            .items
            .iter()
            .any(|i| i.kind == ItemKind::Definition && i.symbol.as_deref() == Some("filler3")),
        "{text}"
    );
}

#[test]
fn a_target_outside_src_and_imported_modules_resolve_like_the_compiler_sees_them() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(
        r#"
//- /Cargo.toml
[package]
name = "rg"
[[bin]]
name = "rg"
path = "crates/core/main.rs"
//- /crates/core/main.rs
mod flags;
mod search;
//- /crates/core/flags.rs
/// The parsed flags.
pub struct Flags { pub quiet: bool }
//- /crates/core/search.rs
use crate::flags::{self, Flags};

fn run(f: Flags) -> bool {
    flags::parse();$0
    f.quiet
}
//- /crates/other.rs
pub struct Flags;
"#,
        &settings,
    );
    let bundle = build_bundle(&index, &request).expect("bundle");
    let text = bundle.to_text();
    let mut definitions: Vec<(&str, &str, Option<bool>)> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition)
        .map(|i| {
            (
                i.file.as_str(),
                i.symbol.as_deref().unwrap_or(""),
                i.certain,
            )
        })
        .collect();
    definitions.sort();
    // `Flags` from the binary's `flags` module next to its root file, not `crates/other.rs`;
    // the module `flags` by its declaration in the root file.
    assert_eq!(
        definitions,
        [
            ("crates/core/flags.rs", "Flags", Some(true)),
            ("crates/core/main.rs", "flags", Some(true)),
        ],
        "{text}"
    );
}

/// A crate whose selection calls methods on values whose types only the signatures of the
/// functions that made them tell: a chain, a `let` bound to a call behind `?`, an `unwrap`.
const CHAINS: &str = r#"
//- /Cargo.toml
[package]
name = "store"
edition = "2021"
//- /src/lib.rs
pub mod db;
pub mod other;
use crate::db::{open, Db};

pub fn run(path: &str) -> Result<(), String> {
    let db = open(path)?;
    db.table().flush();
    let same = Db::connect().unwrap();
    same.close();$0
    Ok(())
}
//- /src/db.rs
pub struct Db;
pub struct Table;
pub fn open(path: &str) -> Result<Db, String> { Ok(Db) }
impl Db {
    pub fn connect() -> Option<Self> { Some(Db) }
    pub fn table(&self) -> &Table { &Table }
    pub fn close(self) {}
}
impl Table {
    pub fn flush(&self) {}
}
//- /src/other.rs
pub struct Other;
impl Other {
    pub fn flush(&self) {}
    pub fn close(self) {}
}
"#;

#[test]
fn a_receiver_typed_by_the_signature_of_the_call_that_made_it_resolves_its_methods() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(CHAINS, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let methods: Vec<(String, u32, Option<bool>)> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition)
        .filter(|i| matches!(i.symbol.as_deref(), Some("flush" | "close" | "table")))
        .map(|i| {
            (
                format!("{}:{}", i.file, i.symbol.as_deref().unwrap_or("")),
                i.start_line,
                i.certain,
            )
        })
        .collect();
    // `db` is what `open` returns inside its `Result`, `db.table()` a `Table`, `same` what
    // `Db::connect()` returns (`Self`) inside its `Option`: each method is that type's, never
    // `Other`'s of the same name.
    let mut names: Vec<&str> = methods.iter().map(|(n, _, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["src/db.rs:close", "src/db.rs:flush", "src/db.rs:table"],
        "{methods:?}"
    );
    assert!(methods.iter().all(|(_, _, certain)| *certain == Some(true)));
    let flush = methods
        .iter()
        .find(|(n, _, _)| n.ends_with("flush"))
        .map(|(_, l, _)| *l);
    assert_eq!(flush, Some(10), "Table's flush, not Db's or Other's");
}

#[test]
fn a_definition_matched_by_name_never_displaces_a_certain_one() {
    let settings = ContextSettings::default();
    let (index, mut request) = fixture(SHOP, &settings);
    // The goal names `forecast`, which only a match by name finds, and it would score above
    // the certain definitions of the selection; with room for one of them, the certain wins.
    request.goal = Some("show the forecast next to the total".into());
    let full = build_bundle(&index, &request).expect("bundle");
    let forecast = full
        .items
        .iter()
        .find(|i| i.symbol.as_deref() == Some("forecast"))
        .expect("forecast fits a large budget");
    let certain: Vec<&ContextItem> = full
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition && i.certain == Some(true))
        .collect();
    assert!(!certain.is_empty());
    // Room for everything but `forecast` and the map (which comes after it).
    let map: usize = full
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Map)
        .map(|i| i.tokens)
        .sum();
    request.budget = Some(full.total_tokens - forecast.tokens - map);
    let tight = build_bundle(&index, &request).expect("bundle");
    assert!(
        tight
            .items
            .iter()
            .all(|i| i.symbol.as_deref() != Some("forecast")),
        "{}",
        tight.to_text()
    );
    for item in certain {
        assert!(
            tight
                .items
                .iter()
                .any(|i| i.symbol == item.symbol && i.file == item.file),
            "{:?} left out: {}",
            item.symbol,
            tight.to_text()
        );
    }
}

#[test]
fn closure_parameters_struct_patterns_generic_bounds_and_provided_methods_type_receivers() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(
        r#"
//- /Cargo.toml
[package]
name = "app"
//- /src/lib.rs
pub mod db;
pub mod run;
//- /src/db.rs
pub struct Tx;
impl Tx {
    /// Writes one row.
    pub fn put(&self, row: u32) {}
    /// Flushes.
    pub fn flush(&self) {}
    /// Closes.
    pub fn close(&self) {}
}
pub struct Config { pub tx: Tx }
pub struct Db;
impl Db {
    /// Runs `f` in a transaction.
    pub fn with<F>(&self, name: &str, f: F) where F: FnOnce(&mut Tx) {}
    /// Runs `f` on every row.
    pub fn each(&self, f: impl FnMut(u32, &Config)) {}
}
/// What can be searched.
pub trait Search {
    /// Finds the first match.
    fn find(&self) -> usize;
    /// Whether anything matches: provided.
    fn any(&self) -> bool { self.find() > 0 }
}
impl Search for Db {
    fn find(&self) -> usize { 0 }
}
//- /src/other.rs
pub struct Other;
impl Other {
    /// Not the `put`, `flush`, `close`, `find` or `any` of anything the selection has.
    pub fn put(&self) {}
    pub fn flush(&self) {}
    pub fn close(&self) {}
    pub fn find(&self) {}
    pub fn any(&self) {}
}
//- /src/run.rs
use crate::db::{Config, Db, Search};

pub fn run<S: Search>(db: &Db, config: Config, searcher: &S) {
    db.with("a", |tx| tx.put(1));$0
    db.each(|row, seen| seen.tx.flush());
    let Config { tx } = config;
    tx.close();
    searcher.find();
    db.any();
}
"#,
        &settings,
    );
    let bundle = build_bundle(&index, &request).expect("bundle");
    let text = bundle.to_text();
    let definitions: Vec<(&str, u32, &str, Option<bool>)> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition)
        .map(|i| {
            (
                i.file.as_str(),
                i.start_line,
                i.symbol.as_deref().unwrap_or(""),
                i.certain,
            )
        })
        .collect();
    // `tx` in the first closure is what `with`'s `F: FnOnce(&mut Tx)` gives it, `seen` in
    // the second what `each`'s `impl FnMut(u32, &Config)` does (and its `tx` field a `Tx`);
    // the pattern binds `tx` to `Config`'s field, `searcher` has its bound's methods and `Db`
    // has `any` from its `impl Search`.
    for (line, name) in [
        (3, "put"),
        (5, "flush"),
        (7, "close"),
        (20, "find"),
        (22, "any"),
    ] {
        assert!(
            definitions
                .iter()
                .any(|d| d.0 == "src/db.rs" && d.1 == line && d.2 == name && d.3 == Some(true)),
            "{name} at line {line}: {definitions:?}\n{text}"
        );
    }
    assert!(
        !definitions.iter().any(|d| d.0 == "src/other.rs"),
        "{definitions:?}"
    );
}

#[test]
fn the_editors_tree_gives_the_same_bundle_and_a_tree_of_other_text_is_not_used() {
    let settings = ContextSettings::default();
    let (index, mut request) = fixture(SHOP, &settings);
    let text = index
        .file_id(&request.file)
        .and_then(|id| index.file(id))
        .map(|f| f.text.to_string())
        .expect("the fixture's file is indexed");
    // An edited copy, so that no bundle before this one left its tree in the cache.
    let text = format!("{text}\n// edited {}\n", line!());
    let rust = crate::syntax::Language::by_name("rust").expect("rust");
    // Given first, so that the tree is the one used (a text bundled before has its own in the
    // cache); then the same text with one more blank line at the end, parsed.
    request.text = Some(text.clone());
    request.tree = rust.parse(&text);
    let given = build_bundle(&index, &request).expect("bundle with the tree");
    request.text = Some(format!("{text}\n"));
    request.tree = None;
    let parsed = build_bundle(&index, &request).expect("bundle");
    assert_eq!(summary(&given), summary(&parsed));
    assert_eq!(given.total_tokens, parsed.total_tokens);
    // A tree of another revision (here: of an empty file) does not span the text: ignored.
    let other = format!("{text}\n// edited again {}\n", line!());
    request.text = Some(other);
    request.tree = rust.parse("");
    let stale = build_bundle(&index, &request).expect("bundle with a stale tree");
    assert_eq!(summary(&stale), summary(&parsed));
}

#[test]
fn a_large_file_parsed_in_part_gives_the_bundle_its_whole_tree_gives() {
    let settings = ContextSettings::default();
    // 600 other items, so that the file is far above the size parsed whole; the cursor's
    // method resolves `self`, a `use`d type and a receiver through its impl, and the test
    // module at the end is shown as where unit tests go.
    let filler: String = (0..600)
        .map(|i| format!("/// Filler {i}.\npub fn filler_{i}(x: u32) -> u32 {{ x + {i} }}\n"))
        .collect();
    let source = format!(
        r#"//- /Cargo.toml
[package]
name = "app"
//- /src/lib.rs
pub mod price;
pub mod big;
//- /src/price.rs
pub struct Price {{ pub cents: u64 }}
impl Price {{
    pub fn from_cents(cents: u64) -> Price {{ Price {{ cents }} }}
}}
//- /src/big.rs
use crate::price::Price;

{filler}
pub struct Till {{ pub open: bool }}

impl Till {{
    pub fn ring(&self, cents: u64) -> Price {{
        let price = Price::from_cents(cents$0);
        if self.open {{ self.check(&price) }}
        price
    }}

    fn check(&self, _p: &Price) {{}}
}}

{filler}
#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn rings() {{}}
}}
"#
    );
    let (index, request) = fixture(&source, &settings);
    let text = index
        .file(index.file_id(Path::new("src/big.rs")).expect("indexed"))
        .expect("file")
        .text
        .to_string();
    let rust = crate::syntax::Language::by_name("rust").expect("rust");
    let lines = structure::LineIndex::new(&text);
    assert!(
        partial::parse_needed(rust, &text, &lines, &request.range).is_some(),
        "this file is parsed in part"
    );
    // The plain request first: the editor's request after it leaves the whole tree in the
    // cache of seeds, which the plain one would then take.
    let partial = build_bundle(&index, &request).expect("bundle from a partial tree");
    let editor = BundleRequest {
        tree: rust.parse(&text),
        text: Some(text),
        ..request
    };
    let whole = build_bundle(&index, &editor).expect("bundle from the whole tree");
    assert_eq!(summary(&partial), summary(&whole));
    assert_eq!(partial.items, whole.items);
    assert!(
        summary(&partial)
            .iter()
            .any(|s| s.starts_with("definition src/price.rs") && s.ends_with("from_cents")),
        "{:?}",
        summary(&partial)
    );
    assert!(
        partial
            .items
            .iter()
            .any(|i| i.kind == ItemKind::Test && i.text.contains("use super::*;")),
        "{:?}",
        summary(&partial)
    );
}

#[test]
fn a_use_local_to_another_function_is_not_in_scope_of_the_selection() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(
        r#"//- /Cargo.toml
[package]
name = "app"
//- /src/lib.rs
pub mod a;
pub mod b;
pub mod shop;
//- /src/a.rs
pub struct Widget;
//- /src/b.rs
pub struct Widget;
//- /src/shop.rs
use std::fmt;

fn elsewhere() {
    use crate::a::Widget;
    let _ = Widget;
}

fn here() -> fmt::Result {
    use crate::b::Widget;
    let _ = Widget$0;
    Ok(())
}
"#,
        &settings,
    );
    let bundle = build_bundle(&index, &request).expect("bundle");
    let imports = bundle
        .items
        .iter()
        .find(|i| i.kind == ItemKind::Imports)
        .expect("an imports item");
    assert!(imports.text.contains("use std::fmt;"), "{}", imports.text);
    assert!(
        imports.text.contains("use crate::b::Widget;"),
        "{}",
        imports.text
    );
    assert!(
        !imports.text.contains("crate::a::Widget"),
        "{}",
        imports.text
    );
}

const IN_MACROS: &str = r#"
//- /Cargo.toml
[package]
name = "table"
//- /src/lib.rs
pub mod pos;
pub mod other;
use crate::pos::Pos;

pub fn reset(n: usize) -> Vec<Pos> {
    assert!(pos::valid(n), "{}", crate::other::describe(n));
    vec![Pos::none(); n]$0
}
//- /src/pos.rs
#[derive(Clone)]
pub struct Pos(u16);
impl Pos {
    pub fn none() -> Pos { Pos(u16::MAX) }
}
pub fn valid(n: usize) -> bool { n < 1 << 15 }
//- /src/other.rs
pub struct Other;
impl Other {
    pub fn none() -> Other { Other }
}
pub fn valid(n: usize) -> bool { n > 0 }
pub fn describe(n: usize) -> String { n.to_string() }
"#;

#[test]
fn paths_inside_macro_arguments_resolve_like_paths_outside_them() {
    let settings = ContextSettings::default();
    let (index, request) = fixture(IN_MACROS, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let mut definitions: Vec<(String, Option<bool>)> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition)
        .filter(|i| matches!(i.symbol.as_deref(), Some("none" | "valid" | "describe")))
        .map(|i| {
            (
                format!("{}:{}", i.file, i.symbol.as_deref().unwrap_or("")),
                i.certain,
            )
        })
        .collect();
    definitions.sort();
    // `Pos::none()` in `vec![…]` is `Pos`'s, `pos::valid` the one of the module it names and
    // `crate::other::describe` followed from the crate root: never `Other::none` or
    // `other::valid`, and each for certain.
    assert_eq!(
        definitions,
        [
            ("src/other.rs:describe".to_string(), Some(true)),
            ("src/pos.rs:none".to_string(), Some(true)),
            ("src/pos.rs:valid".to_string(), Some(true)),
        ],
        "{}",
        bundle.to_text()
    );
}

#[test]
fn a_long_doc_comment_is_cut_to_its_summary_and_attributes_are_kept() {
    let examples: String = (0..40)
        .map(|i| format!("/// let step{i} = Prefilter::new({i});\n"))
        .collect();
    let fixture_text = format!(
        "//- /Cargo.toml\n[package]\nname = \"scan\"\n//- /src/lib.rs\npub mod pre;\nuse crate::pre::Prefilter;\n\npub fn run(p: &Prefilter) -> usize {{\n    p.0$0\n}}\n\
         //- /src/pre.rs\n/// A literal prefilter: finds where a match may start,\n/// so the engine can skip ahead.\n///\n/// # Example\n///\n/// ```\n{examples}/// ```\n#[derive(Clone, Debug)]\npub struct Prefilter(pub usize);\n"
    );
    let settings = ContextSettings::default();
    let (index, request) = fixture(&fixture_text, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let item = bundle
        .items
        .iter()
        .find(|i| i.symbol.as_deref() == Some("Prefilter") && i.kind == ItemKind::Definition)
        .expect("Prefilter's definition");
    assert_eq!(
        item.text,
        "/// A literal prefilter: finds where a match may start,\n/// so the engine can skip ahead.\n/// …\n#[derive(Clone, Debug)]\npub struct Prefilter(pub usize);",
        "{}",
        bundle.to_text()
    );
    // The item still says where the whole doc is.
    assert_eq!(item.start_line, 1);
}

#[test]
fn an_associated_type_named_through_self_is_the_traits_own() {
    let text = "//- /Cargo.toml\n[package]\nname = \"feed\"\n//- /src/lib.rs\npub mod other;\n\
                pub trait Source {\n    /// What it yields.\n    type Item;\n    fn next(&mut self) -> Option<Self::Item>;\n    \
                fn skip(&mut self) -> Option<Self::Item> {\n        let _first: Option<Self::Item> = self.next();$0\n        self.next()\n    }\n}\n\
                //- /src/other.rs\npub struct Item;\n";
    let settings = ContextSettings::default();
    let (index, request) = fixture(text, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let items: Vec<(String, u32, Option<bool>)> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Definition && i.symbol.as_deref() == Some("Item"))
        .map(|i| (i.file.clone(), i.start_line, i.certain))
        .collect();
    // `Self::Item` is the trait's `type Item;` (with its doc), not the struct of that name.
    assert_eq!(
        items,
        [("src/lib.rs".to_string(), 3, Some(true))],
        "{}",
        bundle.to_text()
    );
}

#[test]
fn each_further_caller_of_the_same_standing_scores_less() {
    let callers: String = (0..5)
        .map(|i| format!("pub fn caller{i}() -> u32 {{ target() + {i} }}\n"))
        .collect();
    let text = format!(
        "//- /Cargo.toml\n[package]\nname = \"calls\"\n//- /src/lib.rs\npub fn target() -> u32 {{\n    7$0\n}}\n{callers}"
    );
    let settings = ContextSettings::default();
    let (index, request) = fixture(&text, &settings);
    let bundle = build_bundle(&index, &request).expect("bundle");
    let scores: Vec<f64> = bundle
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Caller)
        .map(|i| i.score)
        .collect();
    // Five callers of the same file and rank: the first keeps its score, each one after it
    // shows less that is new and scores less, so definitions can come before the fifth.
    assert_eq!(scores.len(), 5, "{}", bundle.to_text());
    assert!((scores[0] - 0.8).abs() < 1e-9, "{scores:?}");
    assert!(scores.windows(2).all(|w| w[1] < w[0]), "{scores:?}");
    assert!(scores[4] < 0.5, "{scores:?}");
}
