//! Rule tidiness and every rule's own examples, run as tests.

use std::collections::BTreeSet;

use super::engine::KNOWN_PREDICATES;
use super::*;

fn rust() -> &'static Language {
    Language::by_name("rust").expect("rust registered")
}

fn scan_text(text: &str) -> Vec<Finding> {
    let tree = rust().parse(text).expect("a tree");
    scan(rust(), text, &tree, &SecuritySettings::default())
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
    let settings = SecuritySettings::default();
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
