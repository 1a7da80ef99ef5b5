;; id = "rust/insecure-random"
;; title = "Predictable random number generator for a secret"
;; cwe = ["CWE-338"]
;; severity = "high"
;; precision = "high"
;; anchors = [["smallrng", "fastrand::", "xorshift", "pcg32", "pcg64", "oorandom", "seed_from_u64", "wyrand", "nanorand", "rand32", "rand64"]]
;; message = "A token, key, salt or nonce comes from a non-cryptographic random number generator; its output can be predicted from a few observed values."
;; explanation = """
;; Fast generators such as `SmallRng`, `fastrand`, xorshift and PCG, and anything seeded with a
;; constant or the clock, are predictable: after seeing a few outputs (or guessing the seed) an
;; attacker computes the next session token, password-reset code or nonce.
;;
;; **Fix:** use a cryptographically secure generator: `rand::rngs::OsRng`, `rand::thread_rng()`
;; (ChaCha-based, reseeded from the OS), `getrandom`, or `ring::rand::SystemRandom`.
;;
;; **Trade-off:** a CSPRNG is a little slower per byte, which does not matter for secrets.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/338.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn issue() -> u64 {
;;     let token = fastrand::u64(..); // finding
;;     token
;; }
;; ''',
;; '''
;; use rand::{Rng, SeedableRng, rngs::SmallRng};
;; fn generate_token() -> String { // finding
;;     let mut rng = SmallRng::from_entropy();
;;     (0..32).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect()
;; }
;; ''',
;; '''
;; use rand::{Rng, SeedableRng};
;; fn salt() -> [u8; 16] {
;;     let salt: [u8; 16] = rand::rngs::StdRng::seed_from_u64(42).r#gen(); // finding
;;     salt
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use rand::Rng;
;; fn generate_token() -> String {
;;     let mut rng = rand::thread_rng();
;;     (0..32).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect()
;; }
;; ''',
;; '''
;; fn jitter() -> u64 {
;;     let delay = fastrand::u64(0..100);
;;     delay
;; }
;; ''',
;; '''
;; use rand::RngCore;
;; fn key() -> [u8; 32] {
;;     let mut key = [0u8; 32];
;;     rand::rngs::OsRng.fill_bytes(&mut key);
;;     key
;; }
;; ''',
;; ]

(let_declaration
  pattern: (identifier) @name
  value: (_) @value
  (#match? @name "(?i)(^|_)(token|secret|password|passwd|key|nonce|salt|session(_id)?|otp|csrf|iv|reset_code|api_key)($|_)")
  (#match? @value "(SmallRng|fastrand::|XorShift|Xorshift|Pcg32|Pcg64|oorandom|seed_from_u64|WyRand|nanorand|Rand32|Rand64)")) @finding

(function_item
  name: (identifier) @finding
  body: (block) @body
  (#match? @finding "(?i)(generate|new|make|create|random|gen)_?(token|secret|password|key|nonce|salt|session(_id)?|otp|csrf|api_key)")
  (#match? @body "(SmallRng|fastrand::|XorShift|Xorshift|Pcg32|Pcg64|oorandom|seed_from_u64|WyRand|nanorand)"))
