;; id = "rust/cleartext-logging"
;; title = "Secret written to a log or file in clear text"
;; cwe = ["CWE-312", "CWE-532"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["pass", "pwd", "secret", "key", "token", "bearer", "credential"], ["info!", "info !", "warn!", "warn !", "error!", "error !", "debug!", "debug !", "trace!", "trace !", "print!", "print !", "println!", "println !", "fs::write"]]
;; message = "A password, token or key is printed or logged; logs are copied, shipped and kept far longer than secrets should be."
;; explanation = """
;; Logs and console output are collected by log shippers, stored in third-party services, attached
;; to bug reports and readable by many more people than the secret's owner. A secret written there
;; must be considered leaked.
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
  (#match? @macro "^((log|tracing)::)?(info|warn|error|debug|trace|println|eprintln|print|eprint)$")
  (#formats-secret? @arguments)) @finding

(call_expression
  function: (scoped_identifier) @function
  arguments: (arguments (_) (_) @data .)
  (#match? @function "(^|::)fs::write$")
  (#secret-name? @data)) @finding
