;; id = "rust/ssrf"
;; title = "Server-side request to an untrusted URL"
;; cwe = ["CWE-918"]
;; severity = "high"
;; precision = "high"
;; anchors = [["client", "http", "reqwest", "ureq", "agent", "surf::", "isahc::"], ["get", "post", "put", "patch", "delete", "head", "request"]]
;; message = "The server sends a request to a URL taken from untrusted input, so an attacker can reach internal services (metadata endpoints, admin ports) through it."
;; explanation = """
;; A server that fetches a URL chosen by the client can be pointed at addresses only the server can
;; reach: cloud metadata (`169.254.169.254`), `localhost` admin ports, internal APIs. The response,
;; or its timing, leaks to the attacker.
;;
;; **Fix:** do not take whole URLs from requests. Take an identifier and build the URL from a
;; fixed base, or parse the URL and check its scheme and host against an allow-list
;; (`if !ALLOWED_HOSTS.contains(&url.host_str().unwrap_or_default()) { return Err(..) }`); also
;; resolve and reject private addresses if the allow-list contains wildcard domains.
;;
;; **Trade-off:** features such as webhooks or link previews need a maintained allow-list or an
;; egress proxy that enforces it.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/918.html"]
;; [taint]
;; text = true
;; [examples]
;; vulnerable = [
;; '''
;; use axum::extract::Query;
;; struct Preview { url: String }
;; async fn preview(Query(p): Query<Preview>) -> String {
;;     let body = reqwest::get(&p.url).await; // finding
;;     format!("{body:?}")
;; }
;; ''',
;; '''
;; struct Hook { target: String }
;; async fn deliver(client: reqwest::Client, hook: axum::Json<Hook>) {
;;     let url = hook.target.clone();
;;     let _ = client.post(url).body("ping").send().await; // finding
;; }
;; ''',
;; '''
;; #[actix_web::post("/callback")]
;; async fn callback(endpoint: String) {
;;     let http = reqwest::blocking::Client::new();
;;     let _ = http.get(format!("{endpoint}/status")).send(); // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use axum::extract::Query;
;; struct Preview { id: String }
;; async fn preview(Query(p): Query<Preview>) -> String {
;;     let body = reqwest::get("https://cdn.example.org/previews/latest").await;
;;     format!("{body:?} {}", p.id.len())
;; }
;; ''',
;; '''
;; const ALLOWED_HOSTS: &[&str] = &["api.example.org"];
;; struct Hook { target: String }
;; async fn deliver(client: reqwest::Client, hook: axum::Json<Hook>) {
;;     let Ok(url) = reqwest::Url::parse(&hook.target) else { return };
;;     if !ALLOWED_HOSTS.contains(&url.host_str().unwrap_or_default()) {
;;         return;
;;     }
;;     let _ = client.post(url).body("ping").send().await;
;; }
;; ''',
;; '''
;; fn lookup(map: &std::collections::HashMap<String, String>) -> Option<&String> {
;;     let key = std::env::var("KEY").unwrap_or_default();
;;     map.get(&key)
;; }
;; ''',
;; ]

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  arguments: (arguments . (_) @sink)
  (#match? @function "^(reqwest::get|reqwest::blocking::get|ureq::get|ureq::post|ureq::put|ureq::delete|ureq::request|surf::get|surf::post|isahc::get)$")) @finding

(call_expression
  function: (field_expression value: (_) @client field: (field_identifier) @method)
  arguments: (arguments . (_) @sink)
  (#any-of? @method "get" "post" "put" "patch" "delete" "head")
  (#match? @client "(?i)(client|http|reqwest|ureq|agent)")) @finding

(call_expression
  function: (field_expression value: (_) @client field: (field_identifier) @method)
  arguments: (arguments (_) . (_) @sink)
  (#eq? @method "request")
  (#match? @client "(?i)(client|http)")) @finding
