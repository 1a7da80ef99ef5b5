;; id = "rust/weak-password-hash"
;; title = "Password hashed with a fast hash"
;; cwe = ["CWE-916", "CWE-328"]
;; severity = "high"
;; precision = "high"
;; anchors = [["pass", "pwd"]]
;; message = "A password is hashed with a fast general-purpose hash; use a password hash such as Argon2 so that a stolen database cannot be brute-forced."
;; explanation = """
;; General-purpose hashes (MD5, SHA-1, SHA-2, SHA-3, BLAKE) are designed to be fast: a GPU tries
;; billions of candidate passwords per second against a leaked digest, and without a per-user salt
;; identical passwords share a digest.
;;
;; **Fix:** use a memory-hard password hash with a random salt: `argon2::Argon2::default()
;; .hash_password(password.as_bytes(), &salt)` (or scrypt/bcrypt), and verify with
;; `verify_password`, which compares in constant time.
;;
;; **Trade-off:** hashing takes tens of milliseconds by design; tune the cost to your login rate,
;; and rate-limit logins so the cost cannot be used for denial of service. Existing digests need a
;; migration (re-hash at next login).
;; """
;; references = ["https://cwe.mitre.org/data/definitions/916.html", "https://docs.rs/argon2"]
;; [examples]
;; vulnerable = [
;; '''
;; fn store(password: &str) -> String {
;;     format!("{:x}", md5::compute(password)) // finding
;; }
;; ''',
;; '''
;; use sha2::{Digest, Sha256};
;; fn hash_password(password: &str) -> Vec<u8> {
;;     let mut hasher = Sha256::new();
;;     hasher.update(password.as_bytes()); // finding
;;     hasher.finalize().to_vec()
;; }
;; ''',
;; '''
;; use sha2::{Digest, Sha512};
;; struct Login { user: String, password: String }
;; fn digest(login: &Login) -> Vec<u8> {
;;     Sha512::digest(login.password.as_bytes()).to_vec() // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use argon2::{password_hash::{PasswordHasher, SaltString, rand_core::OsRng}, Argon2};
;; fn hash(password: &str) -> String {
;;     let salt = SaltString::generate(&mut OsRng);
;;     Argon2::default().hash_password(password.as_bytes(), &salt).unwrap().to_string()
;; }
;; ''',
;; '''
;; use sha2::{Digest, Sha256};
;; fn etag(body: &[u8]) -> Vec<u8> {
;;     let mut hasher = Sha256::new();
;;     hasher.update(body);
;;     hasher.finalize().to_vec()
;; }
;; ''',
;; '''
;; fn check(password: &str, stored: &str) -> bool {
;;     bcrypt::verify(password, stored).unwrap_or(false)
;; }
;; ''',
;; ]

(call_expression
  function: (scoped_identifier) @fn
  arguments: (arguments (_) @arg)
  (#match? @fn "(^|::)(md5::compute|sha1_smol::Sha1::from|sha256::digest|blake3::hash|digest::digest|(Md5|Md4|Sha1|Sha224|Sha256|Sha384|Sha512|Sha3_256|Sha3_512|Blake2b512|Blake2s256|Keccak256)::(digest|new_with_prefix))$")
  (#match? @arg "(?i)(^|[^a-z])(pass(word|wd|phrase)?|pwd)")
  (#not-match? @arg "(?i)(hash|_len|len\\(|_id\\b|salt)")) @finding

(call_expression
  function: (field_expression
    value: [(identifier) (field_expression) (call_expression function: (scoped_identifier))] @hasher
    field: (field_identifier) @method)
  arguments: (arguments (_) @arg)
  (#any-of? @method "update" "chain_update" "input" "chain")
  (#match? @hasher "(?i)(hash|sha|md5|digest|blake|ctx|context)")
  (#match? @arg "(?i)(^|[^a-z])(pass(word|wd|phrase)?|pwd)")
  (#not-match? @arg "(?i)(hash|_len|len\\(|_id\\b|salt)")) @finding
