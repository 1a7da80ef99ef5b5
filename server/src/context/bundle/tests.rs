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
    assert_eq!(forecast.reason, "`forecast` is named in the goal");
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
            // A re-export is not followed: `G` is looked up by name, as before.
            ("src/other.rs", 5, "G", "`G` is used by the selection"),
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
