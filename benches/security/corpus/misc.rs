// Look-alikes that must stay quiet, and a few more weaknesses of each class.

fn hash_names(names: &[String]) -> Vec<u64> {
    use std::hash::{Hash, Hasher};
    names.iter().map(|n| { let mut h = std::collections::hash_map::DefaultHasher::new(); n.hash(&mut h); h.finish() }).collect() // SAFE: CWE-328
}

fn password_field_len(password: &str) -> usize {
    password.len() // SAFE: CWE-916
}

fn md5_of_password(password: &str) -> String {
    format!("{:x}", md5::compute(password)) // VULN: CWE-916
}

fn sha1_hmac_legacy(data: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    sha1::Sha1::digest(data).to_vec() // VULN: CWE-328
}

fn blake_checksum(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string() // SAFE: CWE-328
}

fn rc4(key: &[u8]) {
    let _ = rc4::Rc4::new(key.into()); // VULN: CWE-327
}

fn chacha(key: &[u8; 32], nonce: &[u8; 12]) {
    let _ = chacha20poly1305::ChaCha20Poly1305::new(key.into()); // SAFE: CWE-327
    let _ = nonce;
}

fn token_field() -> Settings {
    Settings { api_token: "ghp_4fK9zQw2LmN8xR7tY6uV5sB3cD1eF0aH2jK".into(), region: "eu-west-1".into() } // VULN: CWE-798
}

fn token_placeholder() -> Settings {
    Settings { api_token: "<your token here>".into(), region: "eu-west-1".into() } // SAFE: CWE-798
}

fn bearer(client: &reqwest::Client) -> reqwest::RequestBuilder {
    client.get("https://api.example.com/v1/me").bearer_auth("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF123") // VULN: CWE-798
}

fn bearer_env(client: &reqwest::Client, token: &str) -> reqwest::RequestBuilder {
    client.get("https://api.example.com/v1/me").bearer_auth(token) // SAFE: CWE-798
}

fn otp() -> u32 {
    let otp = fastrand::u32(100_000..999_999); // VULN: CWE-338
    otp
}

fn jitter_ms() -> u64 {
    let delay = fastrand::u64(0..250); // SAFE: CWE-338
    delay
}

fn lock_file() -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).write(true).open("/tmp/app.lock") // VULN: CWE-377
}

fn runtime_dir() -> std::io::Result<std::fs::File> {
    std::fs::File::create("/run/app/app.lock") // SAFE: CWE-377
}

fn counter() -> u32 {
    static mut CALLS: u32 = 0; // VULN: CWE-362
    static NAMES: &[&str] = &["a", "b"]; // SAFE: CWE-362
    NAMES.len() as u32
}

fn forget_file(f: std::fs::File) {
    std::mem::forget(f); // SAFE: CWE-667
}

fn forget_rw(l: &std::sync::RwLock<u8>) {
    let w = l.write().expect("lock");
    std::mem::forget(w); // VULN: CWE-667
}

fn zeroed_box() -> Box<u8> {
    unsafe { std::mem::zeroed::<Box<u8>>() } // VULN: CWE-476
}

fn zeroed_stat() -> libc::stat {
    unsafe { std::mem::zeroed::<libc::stat>() } // SAFE: CWE-476
}

fn ints_to_bytes(v: [u32; 2]) -> [u8; 8] {
    unsafe { std::mem::transmute(v) } // VULN: CWE-843
}

fn ints_to_bytes_safe(v: [u32; 2]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&v[0].to_ne_bytes()); // SAFE: CWE-843
    out[4..].copy_from_slice(&v[1].to_ne_bytes());
    out
}

async fn ws_log(Query(q): Query<Chat>) {
    tracing::info!(user = %q.user, "joined"); // VULN: CWE-117
    tracing::info!(user = ?q.user, "joined"); // SAFE: CWE-117
}

async fn ws_alloc(Json(q): Json<Chat>) -> usize {
    let s = String::with_capacity(q.len); // VULN: CWE-789
    let t = String::with_capacity(q.len.clamp(0, 1024)); // SAFE: CWE-789
    s.capacity() + t.capacity()
}

async fn ws_regex(Json(q): Json<Chat>) -> bool {
    regex::RegexBuilder::new(&q.user).build().is_ok() // VULN: CWE-1333
}

async fn ws_file(Json(q): Json<Chat>) -> Vec<u8> {
    let name = q.user.replace("..", "").replace('/', "");
    std::fs::read(format!("/srv/chat/{name}")).unwrap_or_default() // SAFE: CWE-22
}

async fn ws_html(Json(q): Json<Chat>) -> Html<String> {
    Html(format!("<p>{}</p>", q.len)) // SAFE: CWE-79
}
