;; id = "rust/hardcoded-secret"
;; title = "Hard-coded secret"
;; cwe = ["CWE-798", "CWE-259", "CWE-321"]
;; severity = "high"
;; precision = "medium"
;; anchors = [["pass", "pwd", "secret", "key", "token", "bearer", "credential", "nonce::", "iv::", "hmac", "aes", "chacha"], ["\""]]
;; message = "A password, key or token is written into the source; anyone with the code (or the binary) has it, and it cannot be rotated without a release."
;; explanation = """
;; Secrets in source code end up in version control, in every clone and fork, in CI logs and in
;; the compiled binary (`strings` finds them). They cannot be rotated without a release, and they
;; are usually the same in every environment.
;;
;; **Fix:** read the secret at run time from the environment or a secret manager
;; (`std::env::var("DATABASE_PASSWORD")`, a mounted file, Vault, a cloud KMS); for keys, generate
;; them with a CSPRNG and store them outside the repository. Then rotate the leaked value: it is
;; in the history.
;;
;; **Trade-off:** deployment must now provide the secret, and a missing secret must fail closed
;; with a clear error. Test fixtures may keep fake values; this rule ignores test code.
;; """
;; skip_tests = true
;; references = ["https://cwe.mitre.org/data/definitions/798.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn connect() -> String {
;;     let password = "s3cr3t-Passw0rd"; // finding
;;     format!("postgres://app:{password}@db/app")
;; }
;; ''',
;; '''
;; const API_KEY: &str = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"; // finding
;; ''',
;; '''
;; use hmac::{Hmac, Mac};
;; fn signer() -> Hmac<sha2::Sha256> {
;;     Hmac::<sha2::Sha256>::new_from_slice(b"my-signing-key-1234").unwrap() // finding
;; }
;; ''',
;; '''
;; struct DbConfig { user: String, password: String }
;; fn config() -> DbConfig {
;;     DbConfig { user: "app".into(), password: "hunter2hunter2".into() } // finding
;; }
;; fn jwt() -> jsonwebtoken::EncodingKey {
;;     jsonwebtoken::EncodingKey::from_secret(b"jwt-secret-value") // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn connect() -> String {
;;     let password = std::env::var("DATABASE_PASSWORD").unwrap_or_default();
;;     format!("postgres://app:{password}@db/app")
;; }
;; ''',
;; '''
;; const PASSWORD_ENV: &str = "APP_PASSWORD";
;; const TOKEN_HEADER: &str = "x-auth-token";
;; ''',
;; '''
;; fn form() -> Vec<(&'static str, &'static str)> {
;;     let password = "";
;;     vec![("password", password)]
;; }
;; ''',
;; '''
;; #[cfg(test)]
;; mod tests {
;;     #[test]
;;     fn login() {
;;         let password = "correct-horse-battery";
;;         assert!(!password.is_empty());
;;     }
;; }
;; ''',
;; ]

(let_declaration
  pattern: (identifier) @name
  value: [(string_literal) (raw_string_literal)] @value
  (#secret-name? @name)
  (#secret-literal? @value)) @finding

(const_item
  name: (identifier) @name
  value: [(string_literal) (raw_string_literal) (reference_expression)] @value
  (#secret-name? @name)
  (#secret-literal? @value)) @finding

(static_item
  name: (identifier) @name
  value: [(string_literal) (raw_string_literal) (reference_expression)] @value
  (#secret-name? @name)
  (#secret-literal? @value)) @finding

(field_initializer
  field: (field_identifier) @name
  value: [
    (string_literal) @value
    (raw_string_literal) @value
    (call_expression
      function: (field_expression
        value: [(string_literal) (raw_string_literal)] @value
        field: (field_identifier) @conversion)
      (#any-of? @conversion "into" "to_string" "to_owned"))
  ]
  (#secret-name? @name)
  (#secret-literal? @value)) @finding

(call_expression
  function: (field_expression field: (field_identifier) @name)
  arguments: (arguments [(string_literal) (raw_string_literal)] @value)
  (#match? @name "^(password|set_password|bearer_auth|api_key|token|auth_token|secret)$")
  (#secret-literal? @value)) @finding

(call_expression
  function: (_) @ctor
  arguments: (arguments . [(string_literal) (raw_string_literal) (reference_expression)] @value)
  (#match? @ctor "(^|::)(Key|Nonce|Iv|Hmac|HmacSha\\w*|Aes\\w*|ChaCha\\w*|XChaCha\\w*|EncodingKey|DecodingKey|SigningKey|UnboundKey|LessSafeKey)(::<[^>]*>)?::(new_from_slice|new_from_slices|from_slice|from_secret|from_base64_secret|new)$")
  (#match? @value "^&?b?r?#*\"")
  (#secret-literal? @value)) @finding
