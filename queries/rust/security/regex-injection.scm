;; id = "rust/regex-injection"
;; title = "Regular expression built from untrusted input"
;; cwe = ["CWE-20", "CWE-1333"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["regex"]]
;; message = "A regular expression is compiled from untrusted input, so the input controls what matches (and, with backtracking engines, how long matching takes)."
;; explanation = """
;; Compiling a pattern from user input lets the user change what it matches: `.*` matches
;; everything, so a filter or an access check built from it passes anything. With backtracking
;; engines (`fancy_regex`, `pcre2`) a pattern such as `(a+)+$` takes exponential time (ReDoS); the
;; `regex` crate matches in linear time but large patterns still cost memory and compile time.
;;
;; **Fix:** escape the input and embed it as a literal: `Regex::new(&format!("^{}$",
;; regex::escape(&term)))`; or avoid regexes for plain substring search (`str::contains`). If users
;; must supply patterns, use the `regex` crate with `RegexBuilder::size_limit`.
;;
;; **Trade-off:** escaped input no longer supports wildcards; offer a deliberate, limited syntax if
;; users need them.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/1333.html", "https://docs.rs/regex/latest/regex/fn.escape.html"]
;; [taint]
;; text = true
;; [examples]
;; vulnerable = [
;; '''
;; async fn search(axum::extract::Query(q): axum::extract::Query<Search>) -> bool {
;;     let re = regex::Regex::new(&q.pattern).unwrap(); // finding
;;     re.is_match("haystack")
;; }
;; ''',
;; '''
;; async fn grep(body: String) -> bool {
;;     let re = fancy_regex::Regex::new(&format!("^{body}$")); // finding
;;     re.is_ok()
;; }
;; ''',
;; '''
;; #[rocket::get("/filter?<expr>")]
;; fn filter(expr: String) -> String {
;;     let set = regex::RegexSet::new([expr.as_str()]); // finding
;;     format!("{}", set.is_ok())
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; async fn search(axum::extract::Query(q): axum::extract::Query<Search>) -> bool {
;;     let re = regex::Regex::new(&format!("^{}$", regex::escape(&q.pattern))).unwrap();
;;     re.is_match("haystack")
;; }
;; ''',
;; '''
;; fn word_boundary() -> regex::Regex {
;;     regex::Regex::new(r"\bfoo\b").unwrap()
;; }
;; ''',
;; '''
;; async fn search(axum::extract::Query(q): axum::extract::Query<Search>) -> bool {
;;     "haystack".contains(q.pattern.as_str())
;; }
;; ''',
;; ]

(call_expression
  function: (scoped_identifier) @function
  arguments: (arguments . (_) @sink)
  (#match? @function "(^|::)(Regex|RegexBuilder|RegexSet)::new$")) @finding
