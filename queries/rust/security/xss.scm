;; id = "rust/xss"
;; title = "Untrusted input in an HTML response"
;; cwe = ["CWE-79"]
;; severity = "high"
;; precision = "high"
;; anchors = [["html"]]
;; message = "Untrusted input is written into an HTML response without escaping, so a value containing `<script>` runs in the visitor's browser."
;; explanation = """
;; Building HTML with `format!` and returning it as `Html(..)`, `RawHtml(..)`, `warp::reply::html`
;; or an `HttpResponse` with a `text/html` content type puts request data into the page verbatim:
;; `<script>…</script>` in a query parameter runs in every browser that opens the link, with the
;; visitor's cookies and permissions.
;;
;; **Fix:** render through a template engine that escapes by default (askama, maud, tera with
;; autoescape), or escape each value (`html_escape::encode_text(&name)`) before formatting it.
;; Return plain text (`String`, `text/plain`) when no markup is needed.
;;
;; **Trade-off:** templates are compiled in (askama) or loaded at start (tera); escaping by hand is
;; easy to forget on the next field, which is why templates are preferred.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/79.html"]
;; [taint]
;; text = true
;; [examples]
;; vulnerable = [
;; '''
;; use axum::{extract::Query, response::Html};
;; struct Hello { name: String }
;; async fn hello(Query(q): Query<Hello>) -> Html<String> {
;;     Html(format!("<h1>Hello, {}!</h1>", q.name)) // finding
;; }
;; ''',
;; '''
;; #[actix_web::get("/greet/{name}")]
;; async fn greet(name: actix_web::web::Path<String>) -> actix_web::HttpResponse {
;;     let page = format!("<p>Welcome {name}</p>");
;;     actix_web::HttpResponse::Ok()
;;         .content_type("text/html; charset=utf-8")
;;         .body(page) // finding
;; }
;; ''',
;; '''
;; #[rocket::get("/search?<term>")]
;; fn search(term: &str) -> rocket::response::content::RawHtml<String> {
;;     let mut html = String::from("<ul>");
;;     html.push_str(&format!("<li>No results for {term}</li>"));
;;     rocket::response::content::RawHtml(html) // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use axum::{extract::Query, response::Html};
;; struct Hello { name: String }
;; async fn hello(Query(q): Query<Hello>) -> Html<String> {
;;     Html(format!("<h1>Hello, {}!</h1>", html_escape::encode_text(&q.name)))
;; }
;; ''',
;; '''
;; use axum::extract::Query;
;; struct Hello { name: String }
;; async fn hello(Query(q): Query<Hello>) -> String {
;;     format!("Hello, {}!", q.name)
;; }
;; ''',
;; '''
;; use axum::response::Html;
;; async fn index() -> Html<&'static str> {
;;     Html("<h1>Welcome</h1>")
;; }
;; ''',
;; ]

(call_expression
  function: [(identifier) (scoped_identifier)] @function
  arguments: (arguments . (_) @sink)
  (#match? @function "^((axum::response::)?Html|(content::|rocket::response::content::)?RawHtml|(warp::)?reply::html|warp::reply::html)$")) @finding

(call_expression
  function: (field_expression value: (_) @chain field: (field_identifier) @method)
  arguments: (arguments . (_) @sink)
  (#eq? @method "body")
  (#match? @chain "(text/html|ContentType::html|ContentType::HTML|TEXT_HTML)")) @finding
