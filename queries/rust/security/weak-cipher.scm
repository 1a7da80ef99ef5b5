;; id = "rust/weak-cipher"
;; title = "Broken cipher or ECB mode"
;; cwe = ["CWE-327"]
;; severity = "high"
;; precision = "high"
;; anchors = [["des::", "tdes", "rc4", "rc2", "blowfish", "cast5", "idea::", "ecb", "cipher::"]]
;; message = "This cipher (DES, 3DES, RC4, RC2, Blowfish) or the ECB mode does not protect confidentiality; use an authenticated cipher such as AES-GCM or ChaCha20-Poly1305."
;; explanation = """
;; DES keys are brute-forced in hours, 3DES and Blowfish have 64-bit blocks (Sweet32), RC4's key
;; stream is biased, and ECB mode encrypts equal blocks to equal ciphertext, so patterns in the
;; plaintext survive encryption (the "ECB penguin").
;;
;; **Fix:** use an AEAD: `aes_gcm::Aes256Gcm` or `chacha20poly1305::ChaCha20Poly1305`, with a
;; unique nonce per message. AEADs also detect tampering, which plain CBC/ECB do not.
;;
;; **Trade-off:** ciphertexts grow by the nonce and the tag (28 bytes), and data encrypted with the
;; old scheme needs re-encryption.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/327.html"]
;; [examples]
;; vulnerable = [
;; '''
;; use des::cipher::KeyInit;
;; fn cipher(key: &[u8]) -> des::Des {
;;     des::Des::new_from_slice(key).unwrap() // finding
;; }
;; ''',
;; '''
;; type Aes128EcbEnc = ecb::Encryptor<aes::Aes128>; // finding
;; ''',
;; '''
;; fn encrypt(key: &[u8], data: &[u8]) -> Vec<u8> {
;;     openssl::symm::encrypt(openssl::symm::Cipher::aes_128_ecb(), key, None, data).unwrap() // finding
;; }
;; ''',
;; '''
;; fn stream(key: &[u8]) -> Rc4<U16> {
;;     Rc4::new(key.into()) // finding
;; }
;; ''',
;; '''
;; fn stream(key: &[u8; 16]) {
;;     let _ = rc4::Rc4::<rc4::consts::U16>::new(key.into()); // finding
;; }
;; ''',
;; '''
;; fn legacy(key: &[u8; 8], iv: &[u8; 8]) {
;;     let _ = cbc::Encryptor::<des::Des>::new(key.into(), iv.into()); // finding
;; }
;; ''',
;; '''
;; use des::Des as Legacy;
;; fn cipher(key: &[u8]) -> Legacy {
;;     Legacy::new_from_slice(key).unwrap() // finding
;; }
;; ''',
;; '''
;; use cipher::{KeyInit, block::{Rc2 as Old}};
;; fn cipher(key: &[u8]) -> Old {
;;     Old::new_from_slice(key).unwrap() // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use aes_gcm::{Aes256Gcm, KeyInit};
;; fn cipher(key: &[u8]) -> Aes256Gcm {
;;     Aes256Gcm::new_from_slice(key).unwrap()
;; }
;; ''',
;; '''
;; fn encrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
;;     openssl::symm::encrypt(openssl::symm::Cipher::aes_256_gcm(), key, Some(iv), data).unwrap()
;; }
;; ''',
;; '''
;; type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
;; ''',
;; '''
;; struct Description { des: String }
;; ''',
;; '''
;; fn modern(key: &[u8; 16], iv: &[u8; 16]) {
;;     let _ = cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into());
;; }
;; ''',
;; '''
;; use aes::Aes128 as Block;
;; fn cipher(key: &[u8]) -> Block {
;;     Block::new_from_slice(key).unwrap()
;; }
;; ''',
;; ]

(call_expression
  function: (scoped_identifier path: (_) @type name: (identifier) @ctor)
  (#match? @type "(^|::)(Des|TdesEde2|TdesEde3|TdesEee2|TdesEee3|Rc4|Rc2|Blowfish|Cast5|Idea)(::<.*>)?$")
  (#any-of? @ctor "new" "new_from_slice" "new_from_slices")) @finding

((generic_type
  type_arguments: (type_arguments [(type_identifier) (scoped_type_identifier)] @cipher)) @finding
  (#match? @cipher "(^|::)(Des|TdesEde2|TdesEde3|TdesEee2|TdesEee3|Rc4|Rc2|Blowfish|Cast5|Idea)$"))

((scoped_type_identifier path: (identifier) @module name: (type_identifier) @name) @finding
  (#eq? @module "ecb")
  (#any-of? @name "Encryptor" "Decryptor"))

((generic_type type: (type_identifier) @name) @finding
  (#eq? @name "Ecb"))

(call_expression
  function: (scoped_identifier path: (_) @type name: (identifier) @name)
  (#match? @type "(^|::)Cipher$")
  (#match? @name "^(des_|rc4|rc2|bf_|cast5|idea|seed_|aes_(128|192|256)_ecb)")) @finding
