;; id = "rust/weak-hash"
;; title = "Broken hash function"
;; cwe = ["CWE-327", "CWE-328"]
;; severity = "medium"
;; precision = "high"
;; anchors = [["md5", "md4", "md2", "sha1", "ripemd"]]
;; message = "MD5, MD4 and SHA-1 are broken: collisions can be computed, so they must not protect integrity or identify content an attacker can choose."
;; explanation = """
;; MD5, MD4 and SHA-1 collisions can be produced cheaply, so anything that relies on two different
;; inputs having different digests (signatures, integrity checks, content addressing, cache keys
;; an attacker can influence) can be subverted.
;;
;; **Fix:** use SHA-256 (`sha2::Sha256`) or BLAKE3. If the value is a password, use a password
;; hash (Argon2, scrypt, bcrypt) instead; see `rust/weak-password-hash`.
;;
;; **Trade-off:** the digest changes, so stored digests must be migrated or recomputed; SHA-256 is
;; slightly slower than MD5, which rarely matters. Where MD5 is required by an external protocol
;; and not used for security, suppress the finding with that reason.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/328.html"]
;; [[fix]]
;; title = "Use SHA-256 (sha2::Sha256)"
;; target = "type"
;; replace = "sha2::Sha256"
;; [[fix]]
;; title = "Use SHA-256 (sha2::Sha256::digest)"
;; replace = "sha2::Sha256::digest({{data}})"
;; [examples]
;; vulnerable = [
;; '''
;; fn etag(body: &[u8]) -> String {
;;     format!("{:x}", md5::compute(body)) // finding
;; }
;; ''',
;; '''
;; use sha1::{Digest, Sha1};
;; fn checksum(data: &[u8]) -> Vec<u8> {
;;     let mut hasher = Sha1::new(); // finding
;;     hasher.update(data);
;;     hasher.finalize().to_vec()
;; }
;; ''',
;; '''
;; fn digest(data: &[u8]) -> Vec<u8> {
;;     openssl::hash::hash(openssl::hash::MessageDigest::md5(), data).unwrap().to_vec() // finding
;; }
;; ''',
;; '''
;; fn sign(data: &[u8]) -> ring::digest::Digest {
;;     ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data) // finding
;; }
;; ''',
;; '''
;; use md5 as fingerprint;
;; fn tag(data: &[u8]) -> String {
;;     format!("{:x}", fingerprint::compute(data)) // finding
;; }
;; ''',
;; '''
;; use sha1::Sha1 as Legacy;
;; fn digest() -> Legacy {
;;     Legacy::new() // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use sha2::{Digest, Sha256};
;; fn checksum(data: &[u8]) -> Vec<u8> {
;;     Sha256::digest(data).to_vec()
;; }
;; ''',
;; '''
;; fn etag(body: &[u8]) -> String {
;;     blake3::hash(body).to_hex().to_string()
;; }
;; ''',
;; '''
;; fn digest(data: &[u8]) -> Vec<u8> {
;;     openssl::hash::hash(openssl::hash::MessageDigest::sha256(), data).unwrap().to_vec()
;; }
;; ''',
;; '''
;; /// Md5 is mentioned in docs but not used.
;; fn name() -> &'static str { "md5" }
;; ''',
;; '''
;; use sha2::Sha256 as Fingerprint;
;; fn digest() -> Fingerprint {
;;     Fingerprint::new()
;; }
;; ''',
;; ]

(call_expression
  function: (scoped_identifier path: (identifier) @crate name: (identifier) @fn)
  arguments: (arguments . (_) @data .)
  (#eq? @crate "md5")
  (#eq? @fn "compute")
  (#not-match? @data "(?i)(^|[^a-z])(pass(word|wd|phrase)?|pwd)")) @finding

(call_expression
  function: (scoped_identifier path: (_) @type name: (identifier) @fn)
  (#match? @type "(^|::)(Md5|Md4|Md2|Sha1|Ripemd128)$")
  (#any-of? @fn "new" "digest" "new_with_prefix" "default" "from")) @finding

(call_expression
  function: (scoped_identifier path: (_) @ns name: (identifier) @fn)
  (#match? @ns "(^|::)MessageDigest$")
  (#any-of? @fn "md5" "sha1")) @finding

((scoped_identifier name: (identifier) @name) @finding
  (#eq? @name "SHA1_FOR_LEGACY_USE_ONLY"))
