//! Rule tidiness and every rule's own examples, run as tests.

use std::collections::BTreeSet;

use super::engine::KNOWN_PREDICATES;
use super::*;

fn rust() -> &'static Language {
    Language::by_name("rust").expect("rust registered")
}

/// The default settings with lint rules on, so that every rule's examples are checked.
fn with_lints() -> SecuritySettings {
    SecuritySettings {
        lints: true,
        ..SecuritySettings::default()
    }
}

fn scan_text(text: &str) -> Vec<Finding> {
    let tree = rust().parse(text).expect("a tree");
    scan(rust(), text, &tree, &with_lints())
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte].matches('\n').count() + 1
}

/// Prints a snippet's syntax tree; handy when writing a rule (`cargo test sexp -- --nocapture`).
#[test]
fn sexp() {
    if let Ok(code) = std::env::var("CONDUCTOR_SEXP") {
        let tree = rust().parse(&code).expect("a tree");
        println!("{}", tree.root_node().to_sexp());
    }
}

#[test]
fn every_rule_loads_and_is_complete() {
    assert_eq!(rule_problems(), &[] as &[String]);
    assert!(rules().len() >= 20, "only {} rules", rules().len());
    let mut ids = BTreeSet::new();
    for rule in rules() {
        assert!(ids.insert(rule.id.clone()), "duplicate id {}", rule.id);
        let vulnerable = rule.examples.iter().filter(|e| e.vulnerable).count();
        let safe = rule.examples.len() - vulnerable;
        assert!(
            vulnerable >= 3 && safe >= 3,
            "{}: {vulnerable} vulnerable, {safe} safe examples",
            rule.id
        );
        assert!(!rule.cwe.is_empty(), "{}: no CWE", rule.id);
        assert!(
            rule.explanation.len() > 80,
            "{}: explanation too short",
            rule.id
        );
        assert!(
            rule.cwe.iter().all(|c| cwe_url(c).is_some()),
            "{}: bad CWE id",
            rule.id
        );
    }
}

#[test]
fn rules_use_only_known_predicates() {
    let grammar = rust();
    for rule in rules() {
        let query = crate::syntax::compile_query(grammar, rule.source).expect("compiles");
        for i in 0..query.pattern_count() {
            for p in query.general_predicates(i) {
                assert!(
                    KNOWN_PREDICATES.contains(&&*p.operator),
                    "{}: unknown predicate #{}",
                    rule.id,
                    p.operator
                );
            }
        }
    }
}

/// The 1-based lines an example marks: `// finding` at the end of a line marks that line,
/// `// finding: next line` on a line of its own marks the line below.
fn marked_lines(code: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        if line.trim() == "// finding: next line" {
            out.push(i + 2);
        } else if line.trim_end().ends_with("// finding") {
            out.push(i + 1);
        }
    }
    out
}

#[test]
fn every_rule_example_behaves() {
    let mut failures = Vec::new();
    for rule in rules() {
        for example in &rule.examples {
            let found: BTreeSet<(String, usize)> = scan_text(&example.code)
                .iter()
                .map(|f| (f.rule_id.to_string(), line_of(&example.code, f.range.start)))
                .collect();
            let expected: BTreeSet<(String, usize)> = if example.vulnerable {
                marked_lines(&example.code)
                    .into_iter()
                    .map(|line| (rule.id.clone(), line))
                    .collect()
            } else {
                BTreeSet::new()
            };
            if example.vulnerable && expected.is_empty() {
                failures.push(format!(
                    "{}: vulnerable example without a `// finding` marker",
                    rule.id
                ));
            }
            if found != expected {
                failures.push(format!(
                    "{} ({}):\n{}\nexpected {expected:?}\nfound    {found:?}",
                    rule.id,
                    if example.vulnerable {
                        "vulnerable"
                    } else {
                        "safe"
                    },
                    example.code
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Findings as comparable keys: rule, span and the related locations of the data-flow path.
fn keys(findings: &[Finding]) -> Vec<(String, usize, usize, Vec<usize>)> {
    findings
        .iter()
        .map(|f| {
            let related = f.related.iter().map(|r| r.range.start).collect();
            (f.rule_id.to_string(), f.range.start, f.range.end, related)
        })
        .collect()
}

#[test]
fn every_rule_with_patterns_has_anchors_its_vulnerable_examples_contain() {
    let compiled = super::rules::compiled(rust()).expect("rules compile");
    assert!(
        compiled.gate.is_some(),
        "a rule with patterns has no anchors, so every item of every file is matched"
    );
    for rule in rules()
        .iter()
        .filter(|r| r.source.lines().any(|l| l.starts_with('(')))
    {
        assert!(!rule.anchors.is_empty(), "{}: no anchors", rule.id);
        for example in rule.examples.iter().filter(|e| e.vulnerable) {
            let lower = example.code.to_ascii_lowercase();
            for group in &rule.anchors {
                assert!(
                    group.iter().any(|w| lower.contains(w.as_str())),
                    "{}: vulnerable example has no anchor of {group:?}:\n{}",
                    rule.id,
                    example.code
                );
            }
        }
    }
}

#[test]
fn anchors_lose_no_finding_against_an_exhaustive_scan() {
    // Every rule example, the bundled example workspace, and all examples in one file (so
    // items with and without anchors sit side by side).
    let mut texts: Vec<String> = rules()
        .iter()
        .flat_map(|r| r.examples.iter().map(|e| e.code.clone()))
        .collect();
    texts.push(texts.join("\n"));
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/src");
    for entry in std::fs::read_dir(&workspace).expect("examples/src") {
        texts.push(std::fs::read_to_string(entry.expect("entry").path()).expect("readable"));
    }
    let gated = with_lints();
    let exhaustive = SecuritySettings {
        exhaustive: true,
        ..with_lints()
    };
    let mut total = 0;
    for text in &texts {
        let tree = rust().parse(text).expect("a tree");
        let expected = keys(&scan(rust(), text, &tree, &exhaustive));
        total += expected.len();
        assert_eq!(keys(&scan(rust(), text, &tree, &gated)), expected, "{text}");
        // A workspace scan does not even parse a file it judges not worth scanning.
        if !expected.is_empty() {
            assert!(
                super::engine::worth_scanning(rust(), text, &gated),
                "{text}"
            );
        }
    }
    assert!(total > 100, "only {total} findings compared");
}

#[test]
fn files_without_any_anchor_are_not_worth_scanning() {
    use super::engine::worth_scanning;
    let settings = SecuritySettings::default();
    let plain = "fn add(a: u32, b: u32) -> u32 { a + b }\n";
    assert!(!worth_scanning(rust(), plain, &settings));
    assert!(worth_scanning(rust(), "static mut X: u8 = 0;\n", &settings));
    // A reason-less suppression is a finding of its own.
    assert!(worth_scanning(
        rust(),
        "// conductor: allow(rust/static-mut)\nfn f() {}\n",
        &settings
    ));
    let exhaustive = SecuritySettings {
        exhaustive: true,
        ..SecuritySettings::default()
    };
    assert!(worth_scanning(rust(), plain, &exhaustive));
    // Disabled rules do not count.
    let no_static_mut = SecuritySettings {
        disabled_rules: vec!["rust/static-mut".into()],
        ..SecuritySettings::default()
    };
    assert!(!worth_scanning(
        rust(),
        "static mut X: u8 = 0;\n",
        &no_static_mut
    ));
}

#[test]
fn the_gate_keeps_only_items_holding_every_anchor_group_of_a_rule() {
    let compiled = super::rules::compiled(rust()).expect("rules compile");
    let gate = compiled.gate.as_ref().expect("anchors");
    let text = "fn a() { let n = 1; }\n\
                fn b() { std::process::COMMAND::NEW(x); }\n\
                static X: u8 = 0; fn c() { let mut y = 0; }\n\
                fn d() { Command:: }\nfn e() { new(); }\n";
    let tree = rust().parse(text).expect("a tree");
    let root = tree.root_node();
    let mut cursor = root.walk();
    let items: Vec<std::ops::Range<usize>> =
        root.children(&mut cursor).map(|n| n.byte_range()).collect();
    assert_eq!(items.len(), 6, "{}", root.to_sexp());
    let anchors = gate.find(text, 0..text.len());
    let active = |wanted: &dyn Fn(usize) -> bool| -> Vec<bool> {
        items
            .iter()
            .map(|r| gate.active(&anchors, r.clone(), wanted))
            .collect()
    };
    // b: `command::new` in any case; the `static`+`mut` of static-mut are in different items.
    assert_eq!(
        active(&|_| true),
        vec![false, true, false, false, false, false]
    );
    // The words must lie wholly inside the range.
    assert!(!gate.active(&anchors, items[1].start..items[1].end - 20, |_| true));
    // A rule that is not reported does not open any item.
    let command = rules()
        .iter()
        .position(|r| r.id == "rust/command-injection")
        .expect("rule");
    assert_eq!(active(&|r| r != command), vec![false; 6]);
}

fn apply(text: &str, fix: &Fix) -> String {
    let mut edits = fix.edits.clone();
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = text.to_string();
    for (range, replacement) in edits {
        out.replace_range(range, &replacement);
    }
    out
}

#[test]
fn fixes_leave_code_that_parses_and_remove_the_finding() {
    let mut failures = Vec::new();
    for rule in rules() {
        for example in rule.examples.iter().filter(|e| e.vulnerable) {
            let had_errors = rust()
                .parse(&example.code)
                .is_some_and(|t| t.root_node().has_error());
            for finding in scan_text(&example.code)
                .iter()
                .filter(|f| f.rule_id == rule.id)
            {
                for fix in &finding.fixes {
                    let fixed = apply(&example.code, fix);
                    let tree = rust().parse(&fixed).expect("a tree");
                    if tree.root_node().has_error() && !had_errors {
                        failures.push(format!(
                            "{}: `{}` breaks the code:\n{fixed}",
                            rule.id, fix.title
                        ));
                    }
                    let line = line_of(&example.code, finding.range.start);
                    let shift =
                        fixed.lines().count() as isize - example.code.lines().count() as isize;
                    // This rule's own fix inserts a `<reason>` placeholder for the developer
                    // to replace, which on purpose still counts as no reason.
                    if rule.id == SUPPRESSION_WITHOUT_REASON {
                        continue;
                    }
                    let still = scan_text(&fixed).iter().any(|f| {
                        f.rule_id == rule.id
                            && (line_of(&fixed, f.range.start) as isize - shift) == line as isize
                    });
                    if still {
                        failures.push(format!(
                            "{}: `{}` leaves the finding:\n{fixed}",
                            rule.id, fix.title
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_suppression_needs_a_reason() {
    let code = "fn f() {\n    // conductor: allow(rust/static-mut)\n    static mut X: u8 = 0;\n}\n";
    let ids: Vec<&str> = scan_text(code).iter().map(|f| f.rule_id).collect();
    assert_eq!(ids, vec![SUPPRESSION_WITHOUT_REASON]);
    let code = "// conductor: allow(rust/static-mut) only written before threads start\nstatic mut X: u8 = 0;\n";
    assert!(scan_text(code).is_empty());
    let code = "static mut X: u8 = 0; // conductor: allow(rust/other-rule) unrelated\n";
    let ids: Vec<&str> = scan_text(code).iter().map(|f| f.rule_id).collect();
    assert_eq!(ids, vec!["rust/static-mut"]);
}

#[test]
fn broken_and_hostile_input_never_crashes() {
    let deep = format!(
        "fn f() {{ let x = {}1{}; }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    scan_text(&deep);
    let half = "fn h(q: Query<P>) { let s = format!(\"SELECT {}\", q.name); sqlx::query(&s)";
    scan_text(half);
    let broken =
        "fn a( { \n fn b() { reqwest::Client::builder().danger_accept_invalid_certs(true); }";
    let ids: Vec<&str> = scan_text(broken).iter().map(|f| f.rule_id).collect();
    assert!(ids.contains(&"rust/tls-verification-disabled"), "{ids:?}");
    let long_chain = format!("fn f() {{ x{} }}", ".a()".repeat(20000));
    scan_text(&long_chain);
    // Findings outside a pathological part of a file survive it.
    let mixed = format!("{long_chain}\nstatic mut X: u8 = 0;\n");
    let ids: Vec<&str> = scan_text(&mixed).iter().map(|f| f.rule_id).collect();
    assert_eq!(ids, vec!["rust/static-mut"]);
}

#[test]
fn settings_filter_rules_and_severities() {
    let code = "static mut X: u8 = 0;\n";
    let tree = rust().parse(code).expect("a tree");
    let mut settings = SecuritySettings::default();
    assert_eq!(scan(rust(), code, &tree, &settings).len(), 1);
    settings.disabled_rules = vec!["rust/static-mut".into()];
    assert!(scan(rust(), code, &tree, &settings).is_empty());
    settings.disabled_rules.clear();
    settings.min_severity = Severity::Critical;
    assert!(scan(rust(), code, &tree, &settings).is_empty());
}

#[test]
fn lint_rules_report_only_when_lints_are_asked_for() {
    let code = "fn get(v: &[u8]) -> u8 {\n    unsafe { *v.get_unchecked(0) }\n}\n";
    let tree = rust().parse(code).expect("a tree");
    let rule = rule("rust/unsafe-without-safety-comment").expect("rule");
    assert_eq!(rule.category, Category::Lint);
    assert!(scan(rust(), code, &tree, &SecuritySettings::default()).is_empty());
    assert!(!super::engine::worth_scanning(
        rust(),
        code,
        &SecuritySettings::default()
    ));
    let found = scan(rust(), code, &tree, &with_lints());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule_id, "rust/unsafe-without-safety-comment");
    assert_eq!(found[0].category, Category::Lint);
    // Vulnerability rules stay in the default category.
    assert!(
        rules()
            .iter()
            .filter(|r| r.id != "rust/unsafe-without-safety-comment")
            .all(|r| r.category == Category::Security)
    );
}

#[test]
fn local_sources_count_only_when_enabled() {
    let code = "fn main() {\n    let tool = std::env::args().nth(1).unwrap_or_default();\n    let _ = std::process::Command::new(tool).status();\n}\n";
    let tree = rust().parse(code).expect("a tree");
    assert!(scan(rust(), code, &tree, &SecuritySettings::default()).is_empty());
    let settings = SecuritySettings {
        local_sources: true,
        ..SecuritySettings::default()
    };
    let findings = scan(rust(), code, &tree, &settings);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule_id, "rust/command-injection");
    assert_eq!(findings[0].related[0].message, "command-line arguments");
}

#[test]
fn the_scan_cache_gives_the_same_findings_as_a_full_scan_through_edits() {
    // Every rule's examples in one file, edited in several places, one edit at a time.
    let mut text: String = rules()
        .iter()
        .flat_map(|r| r.examples.iter().map(|e| e.code.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    let settings = with_lints();
    let mut cache = ScanCache::default();
    let mut parser = rust().parser();
    for step in 0..40usize {
        let tree = parser.parse(&text, None).expect("a tree");
        let full = scan(rust(), &text, &tree, &settings);
        let cached = cache.scan(rust(), &text, &tree, &settings);
        assert_eq!(cached, full, "step {step}");
        // Insert a line somewhere, or break and later repair a function.
        let at = text
            .char_indices()
            .map(|(i, _)| i)
            .nth((step * 7919) % text.chars().count())
            .unwrap_or(0);
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let insert = if step % 3 == 0 {
            "let _pad = 1;\n"
        } else {
            "// note\n"
        };
        text.insert_str(line_start, insert);
    }
}

// Data flow through helper functions defined in the same file.

fn scan_local(code: &str) -> Vec<Finding> {
    let tree = rust().parse(code).expect("a tree");
    let settings = SecuritySettings {
        local_sources: true,
        ..SecuritySettings::default()
    };
    scan(rust(), code, &tree, &settings)
}

/// `(rule id, 1-based line)` of every finding.
fn found_lines(code: &str) -> Vec<(&'static str, usize)> {
    scan_local(code)
        .iter()
        .map(|f| (f.rule_id, line_of(code, f.range.start)))
        .collect()
}

/// The byte range of the first function called `name` (from `fn name` to its closing brace
/// at the start of a line).
fn function_range(code: &str, name: &str) -> std::ops::Range<usize> {
    let start = code.find(&format!("fn {name}(")).expect("function present");
    let end = start + code[start..].find("\n}").expect("function end") + 2;
    start..end
}

#[test]
fn a_source_returned_by_a_helper_reaches_the_sink_with_its_trace_in_the_helper() {
    let code = "\
fn user_path() -> String {
    std::env::args().nth(1).unwrap()
}
fn main() {
    let p = user_path();
    let _ = std::fs::read_to_string(p);
}
";
    let findings = scan_local(code);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.rule_id, "rust/path-traversal");
    assert_eq!(line_of(code, f.range.start), 6);
    let helper = function_range(code, "user_path");
    let source = &f.related[0];
    assert!(helper.contains(&source.range.start), "{:#?}", f.related);
    assert_eq!(source.message, "command-line arguments");
    let call = code.find("user_path()").expect("call") + code[..].rfind("let p").map_or(0, |_| 0);
    let returned = f
        .related
        .iter()
        .find(|r| r.message == "returned by `user_path`")
        .expect("a step at the call");
    assert_eq!(
        &code[returned.range.clone()],
        "user_path()",
        "{:#?}",
        f.related
    );
    assert!(returned.range.start > helper.end && call < returned.range.start);
    assert!(f.related.len() <= 8);
}

#[test]
fn a_pass_through_helper_carries_its_argument_taint_and_only_that() {
    let code = "\
fn build_query(name: &str) -> String {
    format!(\"SELECT * FROM t WHERE n = '{name}'\")
}
fn tainted(conn: &rusqlite::Connection) {
    let name = std::env::var(\"NAME\").unwrap_or_default();
    conn.execute(&build_query(&name), []).ok();
}
fn literal(conn: &rusqlite::Connection) {
    conn.execute(&build_query(\"bob\"), []).ok();
}
";
    assert_eq!(found_lines(code), vec![("rust/sql-injection", 6)]);
    let f = &scan_local(code)[0];
    assert!(f.related[0].message.starts_with("environment variable"));
    assert!(
        f.related
            .iter()
            .any(|r| r.message == "returned by `build_query`")
    );
}

#[test]
fn a_helper_that_parses_a_number_is_a_barrier_for_text_sinks() {
    let code = "\
fn safe_id(raw: &str) -> u32 {
    raw.parse().unwrap_or(0)
}
fn raw_id(raw: &str) -> String {
    raw.trim().to_string()
}
fn numeric() {
    let raw = std::env::var(\"ID\").unwrap_or_default();
    let id = safe_id(&raw);
    let _ = std::fs::read_to_string(format!(\"/data/{id}.txt\"));
}
fn text() {
    let raw = std::env::var(\"ID\").unwrap_or_default();
    let id = raw_id(&raw);
    let _ = std::fs::read_to_string(format!(\"/data/{id}.txt\"));
}
";
    assert_eq!(found_lines(code), vec![("rust/path-traversal", 15)]);
}

#[test]
fn a_block_whose_tail_is_an_if_or_match_carries_its_branches_taint() {
    let code = "\
fn main() {
    let user = std::env::var(\"TOOL\").unwrap_or_default();
    let flag = user.len() > 3;
    let tool = { if flag { user.clone() } else { String::from(\"ls\") } };
    let _ = std::process::Command::new(tool).status();
    let picked = { match flag { true => \"ls\", false => \"pwd\" } };
    let _ = std::process::Command::new(picked).status();
}
";
    assert_eq!(found_lines(code), vec![("rust/command-injection", 5)]);
}

#[test]
fn helpers_inside_the_callers_own_checks_and_barriers_stay_barriers() {
    // An allow-list that returns early, canonicalize + starts_with, and a sanitiser's name.
    let code = "\
const ALLOWED: &[&str] = &[\"a.txt\", \"b.txt\"];
fn allowed(name: String) -> Result<String, String> {
    if !ALLOWED.contains(&name.as_str()) {
        return Err(format!(\"not allowed: {name}\"));
    }
    Ok(name)
}
fn confined(name: &str) -> Option<std::path::PathBuf> {
    let base = std::path::Path::new(\"/srv\").canonicalize().ok()?;
    let full = base.join(name).canonicalize().ok()?;
    if !full.starts_with(&base) {
        return None;
    }
    Some(full)
}
fn sanitize_path(name: &str) -> String {
    name.replace(\"..\", \"\")
}
fn unchecked(name: &str) -> std::path::PathBuf {
    std::path::Path::new(\"/srv\").join(name)
}
fn main() {
    let name = std::env::var(\"F\").unwrap_or_default();
    let _ = std::fs::read(allowed(name.clone()).unwrap());
    let _ = std::fs::read(confined(&name).unwrap());
    let _ = std::fs::read(sanitize_path(&name));
    let _ = std::fs::read(unchecked(&name));
}
";
    assert_eq!(found_lines(code), vec![("rust/path-traversal", 27)]);
}

#[test]
fn methods_are_followed_through_self_and_type_paths() {
    let code = "\
struct Store { root: String }
impl Store {
    fn requested(&self) -> String {
        std::env::var(\"FILE\").unwrap_or_default()
    }
    fn from_env() -> String {
        std::env::var(\"FILE\").unwrap_or_default()
    }
    fn under_root(&self, name: &str) -> String {
        format!(\"{}/{name}\", self.root)
    }
    fn by_method(&self) {
        let _ = std::fs::read(self.requested());
    }
    fn by_self_path() {
        let _ = std::fs::read(Self::from_env());
    }
    fn through(&self) {
        let name = std::env::var(\"N\").unwrap_or_default();
        let _ = std::fs::read(self.under_root(&name));
        let _ = std::fs::read(self.under_root(\"fixed\"));
    }
}
fn by_type_path() {
    let _ = std::fs::read(Store::from_env());
}
";
    assert_eq!(
        found_lines(code),
        vec![
            ("rust/path-traversal", 13),
            ("rust/path-traversal", 16),
            ("rust/path-traversal", 20),
            ("rust/path-traversal", 25),
        ]
    );
}

#[test]
fn recursive_helpers_terminate_and_a_pure_cycle_carries_nothing() {
    let code = "\
fn a(x: String) -> String {
    if x.is_empty() { b(x) } else { x }
}
fn b(x: String) -> String {
    a(x)
}
fn c(x: String) -> String {
    d(x)
}
fn d(x: String) -> String {
    c(x)
}
fn main() {
    let v = std::env::var(\"V\").unwrap_or_default();
    let _ = std::fs::read(a(v.clone()));
    let _ = std::fs::read(c(v));
}
";
    assert_eq!(found_lines(code), vec![("rust/path-traversal", 15)]);
}

#[test]
fn an_ambiguous_helper_name_is_not_followed() {
    let code = "\
mod one {
    pub fn value() -> String {
        std::env::var(\"A\").unwrap_or_default()
    }
}
mod two {
    pub fn value() -> String {
        std::env::var(\"B\").unwrap_or_default()
    }
}
use one::*;
fn unqualified() {
    let _ = std::fs::read(value());
}
fn qualified() {
    let _ = std::fs::read(one::value());
}
fn var(_: &str) -> Result<String, ()> {
    Ok(String::new())
}
fn library_path() {
    let _ = std::fs::read(std::env::var(\"C\").unwrap_or_default());
}
";
    // `value()` could be either function: no summary. `one::value()` names one. The local
    // `var` is not `std::env::var`, which stays a source.
    assert_eq!(
        found_lines(code),
        vec![("rust/path-traversal", 16), ("rust/path-traversal", 22)]
    );
}

#[test]
fn helpers_of_helpers_are_followed_three_levels_deep() {
    let code = "\
fn raw() -> String {
    std::env::var(\"P\").unwrap_or_default()
}
fn trimmed() -> String {
    raw().trim().to_string()
}
fn level3() -> String {
    trimmed()
}
fn level4() -> String {
    level3()
}
fn two_levels() {
    let _ = std::fs::read(trimmed());
}
fn three_levels() {
    let _ = std::fs::read(level3());
}
fn four_levels() {
    let _ = std::fs::read(level4());
}
";
    assert_eq!(
        found_lines(code),
        vec![("rust/path-traversal", 14), ("rust/path-traversal", 17)]
    );
    let f = &scan_local(code)[0];
    let raw = function_range(code, "raw");
    assert!(raw.contains(&f.related[0].range.start), "{:#?}", f.related);
    let messages: Vec<&str> = f.related.iter().map(|r| r.message.as_str()).collect();
    assert!(messages.contains(&"returned by `raw`"), "{messages:?}");
    assert!(messages.contains(&"returned by `trimmed`"), "{messages:?}");
}

/// Scans each text in turn through one [`ScanCache`] (with the file's own functions as
/// sources) and checks it against a full scan; the number of findings per text.
fn cached_scan_counts(texts: &[String]) -> Vec<usize> {
    let settings = SecuritySettings {
        local_sources: true,
        ..SecuritySettings::default()
    };
    let mut cache = ScanCache::default();
    let mut parser = rust().parser();
    let mut counts = Vec::new();
    for (step, text) in texts.iter().enumerate() {
        let tree = parser.parse(text, None).expect("a tree");
        let full = scan(rust(), text, &tree, &settings);
        let cached = cache.scan(rust(), text, &tree, &settings);
        assert_eq!(cached, full, "step {step}:\n{text}");
        counts.push(full.len());
    }
    counts
}

#[test]
fn the_scan_cache_follows_edits_to_a_helper_in_another_item() {
    let safe_helper = "fn user_path() -> String {\n    String::from(\"fixed.txt\")\n}\n";
    let source_helper =
        "fn user_path() -> String {\n    std::env::var(\"P\").unwrap_or_default()\n}\n";
    let caller = "fn main() {\n    let _ = std::fs::read(user_path());\n}\n";
    // The caller never changes; the helper (above, then below it) does.
    let texts = [
        format!("{safe_helper}{caller}"),
        format!("{source_helper}{caller}"),
        format!("// moved\n\n{source_helper}{caller}"),
        format!("{caller}{source_helper}"),
        format!("{caller}\n{source_helper}"),
        format!("{caller}{safe_helper}"),
        caller.to_string(),
    ];
    let expected: Vec<usize> = texts
        .iter()
        .map(|t| usize::from(t.contains("env::var")))
        .collect();
    assert_eq!(cached_scan_counts(&texts), expected);
}

#[test]
fn the_scan_cache_follows_a_helper_whose_mod_or_impl_changes_around_it() {
    // The helper's own text never changes; the `mod` or `impl` around it does, and with it
    // whether `paths::user_path()` and `Paths::user_path()` resolve to it.
    let body =
        "fn user_path() -> String {\n        std::env::var(\"P\").unwrap_or_default()\n    }";
    let caller = "fn main() {\n    let _ = std::fs::read(paths::user_path());\n    let _ = std::fs::read(Paths::user_path());\n}\n";
    let texts = [
        format!("mod paths {{\n    pub {body}\n}}\n{caller}"),
        format!("mod other {{\n    pub {body}\n}}\n{caller}"),
        format!("impl Paths {{\n    pub {body}\n}}\n{caller}"),
        format!("impl Other {{\n    pub {body}\n}}\n{caller}"),
        format!("{caller}mod paths {{\n    pub {body}\n}}\n"),
        format!("{caller}mod paths {{\n    mod inner {{\n    pub {body}\n}}\n}}\n"),
        format!("{caller}mod paths {{\n    pub {body}\n}}\nimpl Paths {{\n    pub {body}\n}}\n"),
    ];
    // One finding when the `mod paths` or `impl Paths` is there, two with both, none without.
    assert_eq!(cached_scan_counts(&texts), vec![1, 0, 1, 0, 1, 0, 2]);
}

#[test]
fn the_scan_cache_follows_an_alias_that_changes_in_another_item() {
    // The function never changes; the `use` above it renames a broken cipher, a sound one, or
    // nothing, and with it whether `Legacy::new_from_slice` is a finding.
    let function =
        "fn cipher(key: &[u8]) -> Legacy {\n    Legacy::new_from_slice(key).unwrap()\n}\n";
    let texts = [
        format!("use des::Des as Legacy;\n{function}"),
        format!("use aes::Aes128 as Legacy;\n{function}"),
        format!("use des::Des as Legacy;\n{function}"),
        function.to_string(),
        format!("use cipher::{{block::{{Rc2 as Legacy}}}};\n{function}"),
    ];
    assert_eq!(cached_scan_counts(&texts), vec![1, 0, 1, 0, 1]);
}

#[test]
fn the_common_prefix_and_suffix_agree_with_a_byte_by_byte_count() {
    let naive_prefix = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let naive_suffix = |a: &[u8], b: &[u8], most: usize| {
        a.iter()
            .rev()
            .zip(b.iter().rev())
            .take(most)
            .take_while(|(x, y)| x == y)
            .count()
    };
    let base: Vec<u8> = (0..300u32).map(|i| b'a' + (i * 7 % 26) as u8).collect();
    for len in [0, 1, 63, 64, 65, 127, 128, 129, 300] {
        for at in [0, 1, 31, 63, 64, 65, 128, 200, 299] {
            let a = &base[..len];
            let mut b = a.to_vec();
            if at < b.len() {
                b[at] = b'#';
            }
            let mut longer = a.to_vec();
            longer.insert(at.min(len), b'#');
            for other in [&b, &longer, &a[..len / 2].to_vec()] {
                let p = super::common_prefix(a, other);
                assert_eq!(p, naive_prefix(a, other), "prefix, len {len}, at {at}");
                let most = a.len().min(other.len()) - p;
                let s = super::common_suffix(a, other, most);
                assert_eq!(
                    s,
                    naive_suffix(a, other, most),
                    "suffix, len {len}, at {at}"
                );
            }
        }
    }
}

// Taint passed into a function by its callers in the same file.

#[test]
fn arguments_taint_the_callee_s_parameters_and_the_trace_names_the_call_site() {
    let code = "\
fn spawn(cmd: &str) {
    let _ = std::process::Command::new(cmd).status();
}
fn from_user() {
    let tool = std::env::var(\"TOOL\").unwrap_or_default();
    spawn(&tool);
}
fn fixed() {
    spawn(\"uptime\");
}
";
    let findings = scan_local(code);
    assert_eq!(found_lines(code), vec![("rust/command-injection", 2)]);
    let steps: Vec<&str> = findings[0]
        .related
        .iter()
        .map(|r| r.message.as_str())
        .collect();
    assert!(steps[0].starts_with("environment variable"), "{steps:?}");
    let call = findings[0]
        .related
        .iter()
        .find(|r| r.message == "passed to `spawn`")
        .expect("a step at the call site");
    assert_eq!(&code[call.range.clone()], "spawn(&tool)");
    assert_eq!(steps.last(), Some(&"parameter `cmd`"));
    // With only the literal caller, nothing is reported.
    let literal_only = code.replace("spawn(&tool)", "spawn(\"ls\")");
    assert!(scan_local(&literal_only).is_empty());
}

#[test]
fn caller_taint_follows_callers_of_callers_and_methods_and_ends_on_cycles() {
    let code = "\
struct Runner;
impl Runner {
    fn run(&self, cmd: &str) {
        let _ = std::process::Command::new(cmd).status();
    }
    fn go(&self, cmd: &str) {
        self.run(cmd);
    }
}
fn middle(r: &Runner, c: &str) {
    r.go(c);
    ping(c);
}
fn ping(c: &str) {
    pong(c);
}
fn pong(c: &str) {
    ping(c);
    let _ = std::fs::read(c);
}
fn top(r: Runner) {
    let c = std::env::var(\"C\").unwrap_or_default();
    middle(&r, &c);
}
";
    // `r.go(c)` is not a call through `self`, so `go` and `run` are not followed from it;
    // `ping`/`pong` call each other and still get `top`'s taint through `middle`.
    assert_eq!(found_lines(code), vec![("rust/path-traversal", 19)]);
}

#[test]
fn the_scan_cache_follows_edits_to_a_caller_in_another_item() {
    let callee =
        "fn spawn(cmd: &str) {\n    let _ = std::process::Command::new(cmd).status();\n}\n";
    let tainted =
        "fn main() {\n    let t = std::env::var(\"T\").unwrap_or_default();\n    spawn(&t);\n}\n";
    let literal = "fn main() {\n    spawn(\"ls\");\n}\n";
    let settings = SecuritySettings {
        local_sources: true,
        ..SecuritySettings::default()
    };
    let mut cache = ScanCache::default();
    let mut parser = rust().parser();
    // The callee never changes; its caller does, and moves.
    for (step, text) in [
        format!("{callee}{literal}"),
        format!("{callee}{tainted}"),
        format!("{callee}// moved\n\n{tainted}"),
        format!("{tainted}{callee}"),
        format!("{literal}{callee}"),
        callee.to_string(),
        format!("{callee}{tainted}"),
    ]
    .iter()
    .enumerate()
    {
        let tree = parser.parse(text, None).expect("a tree");
        let full = scan(rust(), text, &tree, &settings);
        let cached = cache.scan(rust(), text, &tree, &settings);
        assert_eq!(cached, full, "step {step}:\n{text}");
        let expected = usize::from(text.contains("env::var"));
        assert_eq!(full.len(), expected, "step {step}:\n{text}");
    }
}

/// `format!("{}", …)` nested `levels` deep around `x`, feeding a SQL sink, then (when `tls`)
/// a pattern finding in the same function.
fn deep_sql_handler(levels: usize, tls: bool) -> String {
    format!(
        "fn handler(x: String) {{\n    let q = {}x{};\n    conn.execute(&q, []);\n{}}}\n",
        "format!(\"SELECT * FROM t WHERE a = {}\", ".repeat(levels),
        ")".repeat(levels),
        if tls {
            "    let c = reqwest::Client::builder().danger_accept_invalid_certs(true);\n"
        } else {
            ""
        }
    )
}

#[test]
fn an_item_whose_analysis_was_cut_short_says_so_on_its_findings_or_in_a_note() {
    let shallow = "fn other(y: String) { let c = reqwest::Client::builder().danger_accept_invalid_certs(true); }\n";
    // 300 levels: under the parser's depth bound, over the data flow's: the sink's taint is
    // not followed to the parameter, and the item's other finding says the analysis there
    // was cut short; the shallow item's finding does not.
    let text = format!("{}{shallow}", deep_sql_handler(300, true));
    let findings = scan_text(&text);
    let tls: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule_id == "rust/tls-verification-disabled")
        .collect();
    assert_eq!(tls.len(), 2, "{findings:?}");
    let why = tls[0].incomplete.as_deref().unwrap_or("");
    assert!(why.contains("nested more than 200 levels"), "{why}");
    assert_eq!(
        tls[1].incomplete, None,
        "the shallow item was analysed whole"
    );
    assert!(
        !findings.iter().any(|f| f.rule_id == ANALYSIS_INCOMPLETE),
        "an item with a finding gets no separate note: {findings:?}"
    );

    // With no finding in the deep item, one note on its first line says the analysis there
    // was incomplete.
    let text = format!("{}{shallow}", deep_sql_handler(300, false));
    let findings = scan_text(&text);
    let notes: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule_id == ANALYSIS_INCOMPLETE)
        .collect();
    assert_eq!(notes.len(), 1, "{findings:?}");
    assert_eq!(notes[0].range.start, 0);
    assert_eq!(line_of(&text, notes[0].range.end), 1);
    assert!(
        notes[0].message.contains("incomplete"),
        "{}",
        notes[0].message
    );
    assert_eq!(notes[0].severity, Severity::Info);

    // The same text nested 20 levels deep is analysed whole: a finding, no note.
    let findings = scan_text(&deep_sql_handler(20, false));
    assert!(
        findings.iter().all(|f| f.incomplete.is_none()),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| f.rule_id == "rust/sql-injection"),
        "{findings:?}"
    );
}

#[test]
fn the_reports_show_where_the_analysis_was_cut_short() {
    let text = deep_sql_handler(300, true);
    let tree = rust().parse(&text).expect("a tree");
    let findings = scan(rust(), &text, &tree, &SecuritySettings::default());
    let report = ScanReport {
        files: vec![FileReport {
            path: "src/deep.rs".into(),
            text: text.clone(),
            findings,
        }],
        ..ScanReport::default()
    };
    let shown = report::to_text(&report);
    assert!(
        shown.contains("note: analysis cut short here: the data flow stopped"),
        "{shown}"
    );
    let json = report::to_json(&report);
    assert!(
        json["findings"][0]["incomplete"]
            .as_str()
            .is_some_and(|w| w.contains("200 levels")),
        "{json}"
    );
    let sarif = report::to_sarif(&report);
    let result = &sarif["runs"][0]["results"][0];
    assert!(
        result["properties"]["analysisIncomplete"].is_string(),
        "{result}"
    );
    assert!(
        result["message"]["text"]
            .as_str()
            .is_some_and(|m| m.contains("analysis cut short here")),
        "{result}"
    );
}

/// Rules that skip test code skip it wherever the test attribute sits (on the function, on an
/// enclosing module, with comments or other attributes in between), also when everything is on
/// one line; the check descends from the top-level item instead of walking up from each hit.
#[test]
fn test_code_is_recognised_from_the_top_level_item_down() {
    let call = "reqwest::Client::builder().danger_accept_invalid_certs(true).build()";
    let reported = |code: &str| {
        scan_text(code)
            .iter()
            .filter(|f| f.rule_id == "rust/tls-verification-disabled")
            .count()
    };
    let cases = [
        (format!("fn live() {{ let c = {call}; }}"), 1),
        (format!("#[test]\nfn t() {{ let c = {call}; }}"), 0),
        (
            format!("#[test]\n// why\n#[ignore]\nfn t() {{ let c = {call}; }}"),
            0,
        ),
        (
            format!("#[cfg(test)]\nmod tests {{\n    fn helper() {{ let c = {call}; }}\n}}"),
            0,
        ),
        (
            format!(
                "mod outer {{ #[tokio::test] async fn t() {{ let c = {call}; }} fn live() {{ let c = {call}; }} }}"
            ),
            1,
        ),
        (
            format!(
                "#[test] fn t() {{ let c = {call}; }} fn live() {{ let c = {call}; }} #[cfg(test)] mod m {{ fn h() {{ let c = {call}; }} }}"
            ),
            1,
        ),
        (
            format!("#[derive(Debug)]\nstruct S;\nfn live() {{ let c = {call}; }}"),
            1,
        ),
    ];
    for (code, expected) in cases {
        assert_eq!(reported(&code), expected, "{code}");
    }
}

/// The suppression fix of a finding on a line shared with other code goes above that line, at
/// its indentation; found from the node's column, not by searching back through the line.
#[test]
fn the_suppression_comment_goes_above_the_findings_line() {
    let code = "fn a() {}\n    fn live() { let c = reqwest::Client::builder().danger_accept_invalid_certs(true).build(); }\n";
    let findings = scan_text(code);
    let finding = findings
        .iter()
        .find(|f| f.rule_id == "rust/tls-verification-disabled")
        .expect("a finding");
    let fix = finding.fixes.last().expect("the suppression fix");
    let (range, inserted) = &fix.edits[0];
    assert_eq!(range.clone(), 10..10, "{fix:?}");
    assert!(
        inserted.starts_with("    // conductor: allow("),
        "{inserted}"
    );
}
