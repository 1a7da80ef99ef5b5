// Weak hashes and ciphers (CWE-327/328), password hashing (CWE-916), hard-coded secrets and
// constant keys/IVs (CWE-798/321/329), insecure randomness (CWE-338), TLS (CWE-295) and
// cleartext transport (CWE-319).
use aes::cipher::{KeyIvInit, BlockEncryptMut};

fn checksum(data: &[u8]) -> String {
    format!("{:x}", md5::compute(data)) // VULN: CWE-328
}

fn fingerprint(data: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    let mut h = sha1::Sha1::new(); // VULN: CWE-328
    h.update(data);
    h.finalize().to_vec()
}

fn strong_fingerprint(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new(); // SAFE: CWE-328
    h.update(data);
    h.finalize().to_vec()
}

fn store_password(password: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(password.as_bytes()); // VULN: CWE-916
    hex::encode(digest)
}

fn store_password_argon(password: &str) -> String {
    use argon2::PasswordHasher;
    let salt = argon2::password_hash::SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default() // SAFE: CWE-916
}

fn legacy_encrypt(key: &[u8; 8], block: &mut [u8]) {
    use des::cipher::{BlockEncrypt, KeyInit};
    let cipher = des::Des::new_from_slice(key).expect("key length"); // VULN: CWE-327
    cipher.encrypt_block(block.into());
}

fn openssl_ecb(key: &[u8], data: &[u8]) -> Vec<u8> {
    openssl::symm::encrypt(openssl::symm::Cipher::aes_128_ecb(), key, None, data).unwrap_or_default() // VULN: CWE-327
}

fn openssl_gcm(key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
    openssl::symm::encrypt(openssl::symm::Cipher::aes_256_cbc(), key, Some(iv), data).unwrap_or_default() // SAFE: CWE-327
}

const API_TOKEN: &str = "sk_live_51HxQz8CkT2pL9mNvQw7RtYb"; // VULN: CWE-798
const API_TOKEN_ENV: &str = "API_TOKEN"; // SAFE: CWE-798

fn client_with_secret() -> reqwest::Client {
    let password = "Winter2024!Prod#"; // VULN: CWE-798
    let _ = password;
    let password_hint = ""; // SAFE: CWE-798
    let _ = password_hint;
    reqwest::Client::new()
}

fn encrypt_with_const_key(data: &mut [u8]) {
    let key = aes_gcm::Key::<aes_gcm::Aes256Gcm>::from_slice(b"0123456789abcdef0123456789abcdef"); // VULN: CWE-321
    let _ = (key, data);
}

fn cbc_const_iv(key: &[u8; 16], buf: &mut [u8]) {
    let iv = [0u8; 16];
    let enc = cbc::Encryptor::<aes::Aes128>::new(key.into(), &iv.into()); // VULN: CWE-329
    let _ = (enc, buf);
}

fn cbc_random_iv(key: &[u8; 16], buf: &mut [u8]) {
    let mut iv = [0u8; 16];
    getrandom::getrandom(&mut iv).expect("entropy");
    let enc = cbc::Encryptor::<aes::Aes128>::new(key.into(), &iv.into()); // SAFE: CWE-329
    let _ = (enc, buf);
}

fn session_token() -> u64 {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
    let session_id = rng.gen::<u64>();
    let token = fastrand::u64(..); // VULN: CWE-338
    session_id ^ token
}

fn generate_token() -> String {
    let mut rng = rand::rngs::SmallRng::from_entropy(); // VULN: CWE-338
    format!("{:x}", rng.gen::<u128>())
}

fn shuffle_colors(colors: &mut [u8]) {
    let jitter = fastrand::u8(..); // SAFE: CWE-338
    colors.iter_mut().for_each(|c| *c ^= jitter);
}

fn secure_token() -> String {
    let token: [u8; 32] = rand::random(); // SAFE: CWE-338
    hex::encode(token)
}

fn insecure_client() -> reqwest::Client {
    reqwest::Client::builder().danger_accept_invalid_certs(true).build().expect("client") // VULN: CWE-295
}

fn configured_client(allow_self_signed: bool) -> reqwest::Client {
    reqwest::Client::builder().danger_accept_invalid_certs(allow_self_signed).build().expect("client") // VULN: CWE-295
}

fn strict_client() -> reqwest::Client {
    reqwest::Client::builder().danger_accept_invalid_certs(false).build().expect("client") // SAFE: CWE-295
}

fn openssl_no_verify(builder: &mut openssl::ssl::SslConnectorBuilder) {
    builder.set_verify(openssl::ssl::SslVerifyMode::NONE); // VULN: CWE-295
    builder.set_verify(openssl::ssl::SslVerifyMode::PEER); // SAFE: CWE-295
}

async fn telemetry(client: &reqwest::Client) {
    let _ = client.post("http://telemetry.example.com/v1/events").send().await; // VULN: CWE-319
    let _ = client.post("https://telemetry.example.com/v1/events").send().await; // SAFE: CWE-319
    let _ = client.get("http://localhost:8080/health").send().await; // SAFE: CWE-319
    let _ = reqwest::get("http://127.0.0.1:9000/metrics").await; // SAFE: CWE-319
}

async fn telemetry_url(client: &reqwest::Client) {
    let endpoint = "http://collector.example.net/ingest";
    let _ = client.post(endpoint).send().await; // VULN: CWE-319
}

// Constant IVs and nonces of other shapes (value tracking: a `const` of the file, a repeat
// array behind `&`), and a nonce filled from an RNG.
const FIXED_IV: [u8; 16] = [7; 16];

fn cbc_const_item_iv(key: &[u8]) {
    let enc = Aes128CbcEnc::new_from_slices(key, &FIXED_IV); // VULN: CWE-329
    let _ = enc;
}

fn gcm_zero_nonce(cipher: &aes_gcm::Aes256Gcm, msg: &[u8]) {
    let nonce = aes_gcm::Nonce::from_slice(&[0u8; 12]); // VULN: CWE-329
    let _ = cipher.encrypt(nonce, msg);
}

fn gcm_nonce_from_rng(cipher: &aes_gcm::Aes256Gcm, msg: &[u8]) {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    let nonce = aes_gcm::Nonce::from_slice(&bytes); // SAFE: CWE-329
    let _ = cipher.encrypt(nonce, msg);
}

// Plain-HTTP URLs built with `format!` and passed by value.
async fn report_to(client: &reqwest::Client, host: &str) {
    let url = format!("http://{host}:8080/ingest");
    let _ = client.post(url).send().await; // VULN: CWE-319
    let local = format!("http://127.0.0.1:{}/ingest", 8080);
    let _ = client.post(local).send().await; // SAFE: CWE-319
}
