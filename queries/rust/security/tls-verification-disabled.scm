;; id = "rust/tls-verification-disabled"
;; title = "TLS certificate verification disabled"
;; cwe = ["CWE-295"]
;; severity = "high"
;; precision = "high"
;; anchors = [["danger_accept_invalid", "sslverifymode", "certificate_verifier"]]
;; message = "TLS certificate or host name verification is turned off, so anyone on the network path can impersonate the server."
;; explanation = """
;; Turning off certificate or host name verification (`danger_accept_invalid_certs(true)`,
;; `danger_accept_invalid_hostnames(true)`, OpenSSL's `SslVerifyMode::NONE`, or a rustls verifier
;; that accepts everything) makes the connection encrypted but unauthenticated: an attacker on the
;; network path presents their own certificate and reads or changes all traffic.
;;
;; **Fix:** remove the call. For a private CA, add its certificate to the trust store
;; (`add_root_certificate`, `RootCertStore::add`) instead of disabling checks; for tests, use a
;; test CA rather than a flag that can leak into production.
;;
;; **Trade-off:** you must distribute the CA certificate to clients, which is the point.
;; """
;; skip_tests = true
;; references = ["https://cwe.mitre.org/data/definitions/295.html", "https://docs.rs/reqwest/latest/reqwest/struct.ClientBuilder.html#method.danger_accept_invalid_certs"]
;; [[fix]]
;; title = "Remove the call that disables verification"
;; replace = "{{receiver}}"
;; [[fix]]
;; title = "Verify the peer (SslVerifyMode::PEER)"
;; target = "ssl_none"
;; replace = "SslVerifyMode::PEER"
;; [examples]
;; vulnerable = [
;; '''
;; fn client() -> reqwest::Result<reqwest::Client> {
;;     reqwest::Client::builder()
;;         .danger_accept_invalid_certs(true) // finding
;;         .build()
;; }
;; ''',
;; '''
;; fn connector() -> native_tls::Result<native_tls::TlsConnector> {
;;     native_tls::TlsConnector::builder().danger_accept_invalid_hostnames(true).build() // finding
;; }
;; ''',
;; '''
;; use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
;; fn connector() -> SslConnector {
;;     let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
;;     builder.set_verify(SslVerifyMode::NONE); // finding
;;     builder.build()
;; }
;; ''',
;; '''
;; fn config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
;;     rustls::ClientConfig::builder()
;;         .dangerous()
;;         .with_custom_certificate_verifier(std::sync::Arc::new(NoVerifier)) // finding
;;         .with_no_client_auth()
;; }
;; ''',
;; '''
;; struct Settings { verify_tls: bool }
;; fn client(settings: &Settings) -> reqwest::Result<reqwest::Client> {
;;     let insecure = true;
;;     let _ = reqwest::Client::builder().danger_accept_invalid_certs(insecure).build(); // finding
;;     reqwest::Client::builder().danger_accept_invalid_certs(!settings.verify_tls).build() // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn client() -> reqwest::Result<reqwest::Client> {
;;     reqwest::Client::builder().danger_accept_invalid_certs(false).build()
;; }
;; ''',
;; '''
;; use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
;; fn connector() -> SslConnector {
;;     let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
;;     builder.set_verify(SslVerifyMode::PEER);
;;     builder.build()
;; }
;; ''',
;; '''
;; fn client(ca: reqwest::Certificate) -> reqwest::Result<reqwest::Client> {
;;     reqwest::Client::builder().add_root_certificate(ca).build()
;; }
;; ''',
;; '''
;; fn config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
;;     rustls::ClientConfig::builder()
;;         .dangerous()
;;         .with_custom_certificate_verifier(std::sync::Arc::new(PinnedCertVerifier::new(roots)))
;;         .with_no_client_auth()
;; }
;; ''',
;; '''
;; const ALLOW_INVALID: bool = false;
;; fn client() -> reqwest::Result<reqwest::Client> {
;;     let strict = false;
;;     let _ = reqwest::Client::builder().danger_accept_invalid_certs(strict).build();
;;     reqwest::Client::builder().danger_accept_invalid_certs(ALLOW_INVALID).build()
;; }
;; ''',
;; ]

(call_expression
  function: (field_expression
    value: (_) @receiver
    field: (field_identifier) @method)
  arguments: (arguments . (boolean_literal) @value .)
  (#any-of? @method "danger_accept_invalid_certs" "danger_accept_invalid_hostnames")
  (#eq? @value "true")) @finding

(call_expression
  function: (field_expression
    value: (_) @receiver
    field: (field_identifier) @method)
  arguments: (arguments . [(identifier) (scoped_identifier) (unary_expression) (field_expression) (call_expression) (parenthesized_expression)] @value .)
  (#any-of? @method "danger_accept_invalid_certs" "danger_accept_invalid_hostnames")
  (#may-be-true? @value)) @finding

((scoped_identifier
  path: (_) @type
  name: (identifier) @name) @finding @ssl_none
  (#match? @type "(^|::)SslVerifyMode$")
  (#eq? @name "NONE"))

(call_expression
  function: (field_expression field: (field_identifier) @method)
  arguments: (arguments (_) @verifier)
  (#any-of? @method "set_certificate_verifier" "with_custom_certificate_verifier")
  (#match? @verifier "(?i)(no_?verif|noop|insecure|accept_?(all|any)|danger|skip|dummy|no_?cert|null|trust_?all|permissive)")) @finding
