;; id = "rust/insecure-cookie"
;; title = "Cookie without Secure or HttpOnly"
;; cwe = ["CWE-614", "CWE-1004"]
;; severity = "medium"
;; precision = "medium"
;; anchors = [["secure", "http_only", "cookie"]]
;; message = "This cookie can travel over plain HTTP or be read by page scripts; set `secure(true)` (and keep `http_only` on for session cookies)."
;; explanation = """
;; A cookie without the `Secure` attribute is sent over plain HTTP too, where anyone on the network
;; reads it; a cookie without `HttpOnly` can be read by JavaScript, so a single XSS bug leaks the
;; session. Reported: `.secure(false)`/`.http_only(false)` (also through a `let` or `const`
;; bound to `false`), `Cookie::build(..)` chains without `.secure(..)`, and a cookie made with
;; `Cookie::new`/`Cookie::parse` handed straight to a jar or response (`jar.add(Cookie::new(..))`)
;; with no chance to set its flags.
;;
;; **Fix:** build cookies with `.secure(true)` and `.http_only(true)` (and `SameSite=Lax` or
;; `Strict` for session cookies).
;;
;; **Trade-off:** a `Secure` cookie is not sent to `http://localhost` by older browsers; use HTTPS
;; in development or make the flag depend on the deployment, not on a default of `false`. A cookie
;; that scripts must read (for example a CSRF token for the double-submit pattern) may leave
;; `HttpOnly` off; suppress the finding with that reason.
;; """
;; skip_tests = true
;; references = ["https://cwe.mitre.org/data/definitions/614.html", "https://cwe.mitre.org/data/definitions/1004.html"]
;; [[fix]]
;; title = "Set the flag to true"
;; target = "flag"
;; replace = "true"
;; [[fix]]
;; title = "Add .secure(true)"
;; target = "builder"
;; replace = "{{builder}}.secure(true)"
;; [examples]
;; vulnerable = [
;; '''
;; use cookie::Cookie;
;; fn session(id: String) -> Cookie<'static> {
;;     Cookie::build(("session", id)).secure(false).http_only(true).build() // finding
;; }
;; ''',
;; '''
;; fn session(id: String) -> actix_web::cookie::Cookie<'static> {
;;     let mut c = actix_web::cookie::Cookie::new("session", id);
;;     c.set_secure(true);
;;     c.set_http_only(false); // finding
;;     c
;; }
;; ''',
;; '''
;; use cookie::Cookie;
;; fn session(id: String) -> Cookie<'static> {
;;     Cookie::build(("session", id)) // finding
;;         .http_only(true)
;;         .path("/")
;;         .build()
;; }
;; ''',
;; '''
;; fn session(id: String) -> cookie::Cookie<'static> {
;;     let secure = false;
;;     cookie::Cookie::build(("session", id)).secure(secure).http_only(true).build() // finding
;; }
;; ''',
;; '''
;; async fn login(cookies: tower_cookies::Cookies, id: String) {
;;     cookies.add(tower_cookies::Cookie::new("session", id)); // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use cookie::Cookie;
;; fn session(id: String) -> Cookie<'static> {
;;     Cookie::build(("session", id)).secure(true).http_only(true).build()
;; }
;; ''',
;; '''
;; use cookie::Cookie;
;; fn session(id: String) -> Cookie<'static> {
;;     let builder = Cookie::build(("session", id)).path("/");
;;     builder.secure(true).build()
;; }
;; ''',
;; '''
;; fn client() -> reqwest::Client {
;;     reqwest::Client::builder().https_only(true).build().unwrap()
;; }
;; ''',
;; '''
;; #[cfg(test)]
;; mod tests {
;;     #[test]
;;     fn cookie_roundtrip() {
;;         let c = cookie::Cookie::build(("a", "b")).secure(false).build();
;;         assert_eq!(c.value(), "b");
;;     }
;; }
;; ''',
;; '''
;; fn session(id: String, on_https: bool) -> cookie::Cookie<'static> {
;;     let secure = true;
;;     let _ = cookie::Cookie::build(("a", "1")).secure(secure).http_only(true).build();
;;     cookie::Cookie::build(("session", id)).secure(on_https).http_only(true).build()
;; }
;; ''',
;; '''
;; async fn login(cookies: tower_cookies::Cookies, id: String) {
;;     let mut c = tower_cookies::Cookie::new("session", id);
;;     c.set_secure(true);
;;     c.set_http_only(true);
;;     cookies.add(c);
;; }
;; ''',
;; ]

(call_expression
  function: (field_expression field: (field_identifier) @method)
  arguments: (arguments . (boolean_literal) @flag .)
  (#any-of? @method "secure" "http_only" "set_secure" "set_http_only")
  (#eq? @flag "false")) @finding

(call_expression
  function: (field_expression field: (field_identifier) @method)
  arguments: (arguments . [(identifier) (scoped_identifier) (unary_expression)] @flag .)
  (#any-of? @method "secure" "http_only" "set_secure" "set_http_only")
  (#provably-false? @flag)) @finding

((call_expression
  function: (scoped_identifier path: (_) @type name: (identifier) @ctor)) @finding @builder
  (#match? @type "(^|::)Cookie$")
  (#eq? @ctor "build")
  (#chain-lacks-method? @builder "secure"))

(call_expression
  function: (field_expression field: (field_identifier) @method)
  arguments: (arguments . (call_expression
    function: (scoped_identifier path: (_) @type name: (identifier) @ctor)))
  (#any-of? @method "add" "add_cookie" "cookie" "add_private" "add_signed")
  (#match? @type "(^|::)Cookie$")
  (#any-of? @ctor "new" "parse" "parse_encoded")) @finding
