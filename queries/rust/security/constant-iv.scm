;; id = "rust/constant-iv"
;; title = "Constant IV, nonce or key given to a cipher"
;; cwe = ["CWE-329", "CWE-1204", "CWE-321"]
;; severity = "high"
;; precision = "high"
;; anchors = [["Encryptor", "Decryptor", "Cbc", "Ctr", "Cfb", "Ofb", "Cipher", "Nonce", "Iv"]]
;; message = "The cipher gets an IV, nonce or key that is fixed in the code (a byte string, an array of constants, `[0u8; 16]`), so every message is encrypted the same way: equal plaintexts give equal ciphertexts, and with a stream or AEAD mode a reused nonce reveals the plaintext."
;; explanation = """
;; An IV or nonce must be unpredictable (CBC) or at least never repeat under one key (CTR, GCM,
;; ChaCha20-Poly1305). A constant one repeats on every message: CBC leaks which messages share a
;; prefix, and a repeated nonce in CTR/GCM/ChaCha lets anyone XOR two ciphertexts into the XOR of
;; the plaintexts (and in GCM forge tags). A constant key is a hard-coded secret.
;;
;; The value is followed through `&`, `.into()`, `GenericArray::from_slice`, a `let` bound once
;; and never filled afterwards, and a `const`/`static` of the file. A local filled by
;; `getrandom(&mut iv)`, `rng.fill_bytes(&mut iv)` or `iv.fill(..)` is random and not reported.
;;
;; **Fix:** draw a fresh IV or nonce per message from a CSPRNG (`getrandom`, `OsRng`,
;; `Aes256Gcm::generate_nonce(&mut OsRng)`) and send it with the ciphertext; read keys at run
;; time from a secret store.
;;
;; **Trade-off:** the IV or nonce has to travel with the message (it is not secret). Test code is
;; not reported: known-answer tests use fixed vectors on purpose.
;; """
;; skip_tests = true
;; references = ["https://cwe.mitre.org/data/definitions/329.html", "https://cwe.mitre.org/data/definitions/1204.html"]
;; [examples]
;; vulnerable = [
;; '''
;; fn cbc_const_iv(key: &[u8; 16], buf: &mut [u8]) {
;;     let iv = [0u8; 16];
;;     let enc = cbc::Encryptor::<aes::Aes128>::new(key.into(), &iv.into()); // finding
;;     let _ = (enc, buf);
;; }
;; ''',
;; '''
;; const IV: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
;; fn cbc_static_iv(key: &[u8]) {
;;     let enc = Aes128CbcEnc::new_from_slices(key, &IV); // finding
;;     let _ = enc;
;; }
;; ''',
;; '''
;; fn gcm_fixed_nonce(cipher: &aes_gcm::Aes256Gcm, msg: &[u8]) {
;;     let nonce = aes_gcm::Nonce::from_slice(b"unique nonce"); // finding
;;     let _ = cipher.encrypt(nonce, msg);
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; fn cbc_random_iv(key: &[u8; 16], buf: &mut [u8]) {
;;     let mut iv = [0u8; 16];
;;     getrandom::getrandom(&mut iv).expect("entropy");
;;     let enc = cbc::Encryptor::<aes::Aes128>::new(key.into(), &iv.into());
;;     let _ = (enc, buf);
;; }
;; ''',
;; '''
;; fn gcm_random_nonce(cipher: &aes_gcm::Aes256Gcm, msg: &[u8]) {
;;     let nonce = aes_gcm::Aes256Gcm::generate_nonce(&mut rand::rngs::OsRng);
;;     let _ = cipher.encrypt(&nonce, msg);
;; }
;; ''',
;; '''
;; fn cbc_iv_from_header(key: &[u8], header: &[u8]) {
;;     let enc = Aes128CbcEnc::new_from_slices(key, &header[..16]);
;;     let _ = enc;
;; }
;; ''',
;; ]

(call_expression
  function: (_) @ctor
  arguments: (arguments (_) . (_) @iv .)
  (#match? @ctor "(^|::)(Encryptor|Decryptor|\\w*Cbc\\w*|\\w*Ctr\\w*|\\w*Cfb\\w*|\\w*Ofb\\w*|Cipher|StreamCipher\\w*)(::<.*>)?::(new|new_from_slices)$")
  (#constant-bytes? @iv)) @finding

(call_expression
  function: (_) @ctor
  arguments: (arguments . (_) @iv .)
  (#match? @ctor "(^|::)(Nonce|Iv|XNonce)(::<.*>)?::(from_slice|from|clone_from_slice)$")
  (#constant-bytes? @iv)) @finding
