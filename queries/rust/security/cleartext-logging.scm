;; id = "rust/cleartext-logging"
;; title = "Secret written to a log or file in clear text"
;; cwe = ["CWE-312", "CWE-532"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["pass", "pwd", "secret", "key", "token", "bearer", "credential"], ["info!", "info !", "warn!", "warn !", "error!", "error !", "debug!", "debug !", "trace!", "trace !", "print!", "print !", "println!", "println !", "fs::write", "panic!", "panic !", "assert_eq!", "assert_ne!", "todo!", "unreachable!", "unimplemented!", "expect("]]
;; message = "A password, token or key is printed or logged; logs are copied, shipped and kept far longer than secrets should be."
;; explanation = """
;; Logs and console output are collected by log shippers, stored in third-party services, attached
;; to bug reports and readable by many more people than the secret's owner. A secret written there
;; must be considered leaked. Panic messages (`panic!`, `assert_eq!`/`assert_ne!` (which print both values), `todo!`,
;; `unreachable!`, `.expect(&format!(..))`) count too: they go to standard error and into crash
;; reports.
;;
;; **Fix:** do not log the value; log that it was present, its length, or a short fingerprint.
;; Wrap secrets in a type whose `Debug`/`Display` prints `[redacted]` (for example
;; `secrecy::SecretString`), so that they cannot be printed by accident. Store secrets only in a
;; secret store, never in plain files.
;;
;; **Trade-off:** debugging authentication problems needs other signals (key ids, fingerprints).
;; """
;; skip_tests = true
;; references = ["https://cwe.mitre.org/data/definitions/532.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn check(api_key: &str) -> u32 {
;;     assert_ne!(api_key, "", "bad api key {api_key}"); // finding
;;     api_key.parse().expect(&format!("api key {} is not a number", api_key)) // finding
;; }
;; ''',
;; '''
;; fn connect(user: &str, password: &str) {
;;     log::debug!("connecting as {} with {}", user, password); // finding
;; }
;; ''',
;; '''
;; struct Config { api_token: String }
;; fn start(config: &Config) {
;;     println!("using token {:?}", config.api_token); // finding
;; }
;; ''',
;; '''
;; fn save(api_key: &str) -> std::io::Result<()> {
;;     std::fs::write("/var/lib/app/key.txt", api_key) // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn check(api_key: &str) -> u32 {
;;     assert!(is_valid(api_key), "the api key must have 32 characters");
;;     assert_eq!(api_key.len(), 32);
;;     api_key.parse().expect("the api key is a number")
;; }
;; ''',
;; '''
;; fn connect(user: &str, password: &str) {
;;     log::debug!("connecting as {} (password of {} bytes)", user, password.len());
;; }
;; ''',
;; '''
;; fn connect(user: &str, password_env: &str) {
;;     log::info!("reading the password from {password_env} for {user}");
;; }
;; ''',
;; '''
;; #[test]
;; fn prints_token() {
;;     let token = "abc";
;;     println!("{token}");
;; }
;; ''',
;; ]

(macro_invocation
  macro: [(identifier) (scoped_identifier)] @macro
  (token_tree) @arguments
  (#match? @macro "^((log|tracing)::)?(info|warn|error|debug|trace|println|eprintln|print|eprint)$|^((std|core)::)?(panic|assert_eq|assert_ne|debug_assert_eq|debug_assert_ne|todo|unreachable|unimplemented)$")
  (#formats-secret? @arguments)) @finding

(call_expression
  function: (scoped_identifier) @function
  arguments: (arguments (_) (_) @data .)
  (#match? @function "(^|::)fs::write$")
  (#secret-name? @data)) @finding

(call_expression
  function: (field_expression field: (field_identifier) @method)
  arguments: (arguments . [
    (macro_invocation macro: (identifier) @format (token_tree) @arguments)
    (reference_expression value: (macro_invocation macro: (identifier) @format (token_tree) @arguments))
  ])
  (#any-of? @method "expect" "expect_err")
  (#eq? @format "format")
  (#formats-secret? @arguments)) @finding
