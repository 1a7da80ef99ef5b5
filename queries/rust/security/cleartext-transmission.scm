;; id = "rust/cleartext-transmission"
;; title = "Request over plain HTTP"
;; cwe = ["CWE-319"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["http://"]]
;; message = "This request goes to an `http://` URL on another host, so its contents (credentials, tokens, personal data) cross the network unencrypted and unauthenticated."
;; explanation = """
;; Plain HTTP can be read and changed by anyone on the path: Wi-Fi neighbours, proxies, ISPs.
;; Credentials, session tokens and personal data sent this way are exposed, and the response can be
;; replaced.
;;
;; **Fix:** use `https://`. For services on a private network, terminate TLS at the service or use
;; a service mesh with mutual TLS. `reqwest::ClientBuilder::https_only(true)` enforces this for a
;; whole client.
;;
;; **Trade-off:** the server needs a certificate. Requests to `localhost` and loopback addresses
;; are not reported.
;; """
;; skip_tests = true
;; references = ["https://cwe.mitre.org/data/definitions/319.html"]
;; [examples]
;; vulnerable = [
;; '''
;; async fn fetch() -> reqwest::Result<String> {
;;     reqwest::get("http://api.payments.io/v1/balance").await?.text().await // finding
;; }
;; ''',
;; '''
;; fn login(client: &reqwest::blocking::Client, token: &str) {
;;     let _ = client.post("http://auth.corp.net/login").bearer_auth(token).send(); // finding
;; }
;; ''',
;; '''
;; fn report() {
;;     let _ = ureq::post("http://10.1.2.3:8080/metrics").call(); // finding
;; }
;; ''',
;; '''
;; async fn post_report(client: &reqwest::Client, host: &str) {
;;     let url = format!("http://{host}/report");
;;     let _ = client.post(&url).send().await; // finding
;; }
;; ''',
;; '''
;; fn telemetry(client: &reqwest::blocking::Client) {
;;     let endpoint = "http://collector.corp.net/ingest";
;;     let _ = client.post(endpoint).send(); // finding
;; }
;; ''',
;; '''
;; fn fetch(host: &str) {
;;     let _ = reqwest::blocking::get(format!("http://{host}/status")); // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; async fn fetch() -> reqwest::Result<String> {
;;     reqwest::get("https://api.payments.io/v1/balance").await?.text().await
;; }
;; ''',
;; '''
;; fn health(client: &reqwest::blocking::Client) {
;;     let _ = client.get("http://127.0.0.1:8080/health").send();
;; }
;; ''',
;; '''
;; fn local(client: &reqwest::blocking::Client) {
;;     let _ = client.get("http://localhost:3000/").send();
;; }
;; ''',
;; '''
;; fn local_port(client: &reqwest::blocking::Client, port: u16) {
;;     let url = format!("http://localhost:{port}/health");
;;     let _ = client.get(&url).send();
;; }
;; ''',
;; '''
;; fn upgraded(client: &reqwest::blocking::Client, secure: bool) {
;;     let mut url = "http://api.corp.net/v1".to_string();
;;     url = upgrade(url, secure);
;;     let _ = client.get(&url).send();
;; }
;; ''',
;; ]

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  arguments: (arguments . (string_literal) @url)
  (#match? @function "^(reqwest::get|reqwest::blocking::get|ureq::get|ureq::post|ureq::put|surf::get|surf::post|isahc::get)$")
  (#non-local-http? @url)) @finding

(call_expression
  function: (field_expression value: (_) @client field: (field_identifier) @method)
  arguments: (arguments . (string_literal) @url)
  (#any-of? @method "get" "post" "put" "patch" "delete" "head")
  (#match? @client "(?i)(client|http|reqwest|ureq|agent)")
  (#non-local-http? @url)) @finding

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  arguments: (arguments . [(identifier) (reference_expression) (macro_invocation) (call_expression)] @url)
  (#match? @function "^(reqwest::get|reqwest::blocking::get|ureq::get|ureq::post|ureq::put|surf::get|surf::post|isahc::get)$")
  (#holds-non-local-http? @url)) @finding

(call_expression
  function: (field_expression value: (_) @client field: (field_identifier) @method)
  arguments: (arguments . [(identifier) (reference_expression) (macro_invocation) (call_expression)] @url)
  (#any-of? @method "get" "post" "put" "patch" "delete" "head")
  (#match? @client "(?i)(client|http|reqwest|ureq|agent)")
  (#holds-non-local-http? @url)) @finding
