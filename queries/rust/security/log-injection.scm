;; id = "rust/log-injection"
;; title = "Untrusted input written to a log verbatim"
;; cwe = ["CWE-117"]
;; severity = "low"
;; precision = "medium"
;; anchors = [["info!", "info !", "warn!", "warn !", "error!", "error !", "debug!", "debug !", "trace!", "trace !"]]
;; message = "Untrusted input is logged with `{}`, so a value containing a newline can forge log entries; log it with `{:?}` (which escapes) or strip control characters."
;; explanation = """
;; A log line is trusted by whoever reads it. If a request value containing `\n` is logged with
;; `{}`, the attacker writes a second, fake log entry ("admin login succeeded"), or injects
;; terminal escape sequences into an operator's console.
;;
;; **Fix:** log untrusted values with `{:?}` (Debug formatting escapes newlines and quotes), use
;; structured logging fields (`tracing::info!(user = ?name, "login")`), or remove control
;; characters before logging.
;;
;; **Trade-off:** Debug formatting adds quotes around strings in the log.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/117.html"]
;; [taint]
;; text = true
;; [examples]
;; vulnerable = [
;; '''
;; async fn login(axum::extract::Form(f): axum::extract::Form<Login>) -> &'static str {
;;     log::info!("login attempt for {}", f.user); // finding
;;     "ok"
;; }
;; ''',
;; '''
;; async fn lookup(axum::extract::Path(name): axum::extract::Path<String>) {
;;     tracing::warn!("unknown command {name}"); // finding
;; }
;; ''',
;; '''
;; #[actix_web::get("/items/{id}")]
;; async fn item(id: actix_web::web::Path<String>) -> String {
;;     let id = id.into_inner();
;;     log::error!(target: "items", "item {} not found", id); // finding
;;     String::new()
;; }
;; ''',
;; '''
;; async fn banner(axum::extract::Form(f): axum::extract::Form<Login>) {
;;     log::info!("{:─^24} {}", " login ", f.user); // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; async fn login(axum::extract::Form(f): axum::extract::Form<Login>) -> &'static str {
;;     log::info!("login attempt for {:?}", f.user);
;;     "ok"
;; }
;; ''',
;; '''
;; fn report(count: usize) {
;;     log::info!("processed {} items", count);
;; }
;; ''',
;; '''
;; async fn login(axum::extract::Form(f): axum::extract::Form<Login>) -> &'static str {
;;     log::info!("login attempt ({} bytes)", f.user.len());
;;     "ok"
;; }
;; ''',
;; '''
;; async fn banner(axum::extract::Form(f): axum::extract::Form<Login>) {
;;     log::info!("{:─^24} {:?}", " login ", f.user);
;; }
;; ''',
;; ]

(macro_invocation
  macro: [(identifier) (scoped_identifier)] @macro
  (token_tree) @sink
  (#match? @macro "^((log|tracing)::)?(info|warn|error|debug|trace)$")) @finding
