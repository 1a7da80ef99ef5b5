// More code adapted from crates in the local cargo registry cache and from advisories.

// reqwest 0.12.28 examples/simple.rs and blocking.rs: fixed URLs, https.
async fn example() -> Result<(), reqwest::Error> {
    let res = reqwest::get("https://hyper.rs").await?; // SAFE: CWE-319
    let body = res.text().await?;
    println!("Body:\n\n{body}"); // SAFE: CWE-532
    let res = reqwest::blocking::get("http://httpbin.org/get")?; // VULN: CWE-319
    let _ = res;
    Ok(())
}

// ureq-style configuration in tools: proxies given on the command line.
fn via_proxy(proxy_url: &str) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().proxy(reqwest::Proxy::all(proxy_url)?).build() // SAFE: CWE-918
}

// whoami 1.6.1 / dotenvy 0.15.7: environment values are read and printed by the user's own tool.
fn show_env() {
    let user = whoami::username();
    println!("user: {user}"); // SAFE: CWE-532
    let path = std::env::var("DOTENV_PATH").unwrap_or_else(|_| ".env".into());
    let contents = std::fs::read_to_string(&path).unwrap_or_default(); // SAFE: CWE-22
    let _ = contents;
}

// tracing-subscriber 0.3.23: formatting spans and events with user-provided fields is the
// subscriber's job and not a sink of its own.
fn on_event(event: &Event<'_>, writer: &mut dyn std::fmt::Write) {
    let _ = write!(writer, "{:?}", event.metadata().name()); // SAFE: CWE-117
}

// lock_api 0.4.14 src/mutex.rs: `MutexGuard::leak` forgets the guard on purpose.
pub fn leak<'a, R, T>(s: MutexGuard<'a, R, T>) -> &'a mut T {
    let r = unsafe { &mut *s.mutex.data.get() };
    core::mem::forget(s); // VULN: CWE-667
    r
}

// smallvec 1.16.6 src/lib.rs: lengths set after the elements are written.
fn extend_from(v: &mut SmallVec<[u8; 8]>, src: &[u8]) {
    let len = v.len();
    v.reserve(src.len()); // SAFE: CWE-789
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), v.as_mut_ptr().add(len), src.len());
        v.set_len(len + src.len()); // SAFE: CWE-908
    }
}

// smallvec advisory (insert_many, RUSTSEC-2021-0003 class): length grown before the copy.
fn insert_many(v: &mut Vec<u8>, index: usize, extra: usize) {
    v.reserve(extra); // SAFE: CWE-789
    let old = v.len();
    unsafe { v.set_len(old + extra) }; // VULN: CWE-908
    let _ = index;
}

// base64 0.22.1 / hex 0.4.3: output buffers sized from the input length.
fn encode_buf(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len() * 4 / 3 + 4); // SAFE: CWE-789
    out.push_str("x");
    out
}

// serde_json 1.0.154: from_str of a request body is bounded by the body limit of the server.
async fn json_body(body: String) -> usize {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default(); // SAFE: CWE-502
    v.as_array().map_or(0, |a| a.len())
}

// rmp-serde style decoding of a request body (decoder DoS advisories).
async fn msgpack(body: axum::body::Bytes) -> usize {
    let items: Vec<String> = rmp_serde::from_slice(&body).unwrap_or_default(); // VULN: CWE-502
    items.len()
}

// openssl 0.10.82 src/ssl/connector.rs: the default connector verifies peers.
fn connector() -> Result<SslConnector, ErrorStack> {
    let mut builder = SslConnector::builder(SslMethod::tls())?;
    builder.set_verify(SslVerifyMode::PEER); // SAFE: CWE-295
    Ok(builder.build())
}

// hyper-rustls / rustls advisories: a verifier that accepts anything.
fn dangerous_config(config: &mut ClientConfig) {
    config.dangerous().set_certificate_verifier(Arc::new(NoCertificateVerification {})); // VULN: CWE-295
}

// tokio 1.54.1 src/net: addresses come from the caller, not a request.
async fn connect_to(addr: &str) -> std::io::Result<tokio::net::TcpStream> {
    tokio::net::TcpStream::connect(addr).await // SAFE: CWE-918
}

// md-5 0.10.6 / sha1 0.10.7 README usage: digests of file contents for de-duplication.
fn dedupe_key(contents: &[u8]) -> String {
    let digest = md5::compute(contents); // VULN: CWE-328
    format!("{digest:x}")
}

// password-hash 0.5.0 / argon2 0.5.3: verifying against a stored PHC string.
fn verify(password: &str, stored: &str) -> bool {
    let parsed = password_hash::PasswordHash::new(stored);
    parsed.map(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false) // SAFE: CWE-916
}

// hmac 0.12.1 README: the key comes from configuration, not from source.
fn sign(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any size"); // SAFE: CWE-321
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

// jsonwebtoken-style secrets written inline (secret-scanning reports of Rust services).
fn jwt_keys() -> (EncodingKey, DecodingKey) {
    let enc = EncodingKey::from_secret(b"my-super-secret-jwt-key-2024"); // VULN: CWE-798
    let dec = DecodingKey::from_secret(std::env::var("JWT_SECRET").unwrap_or_default().as_bytes()); // SAFE: CWE-798
    (enc, dec)
}

// rusqlite README: parameters bound.
fn insert_person(conn: &rusqlite::Connection, name: &str) -> rusqlite::Result<usize> {
    conn.execute("INSERT INTO person (name, data) VALUES (?1, ?2)", (name, &None::<Vec<u8>>)) // SAFE: CWE-89
}

// time 0.3.55 / humantime: formatting timestamps into log lines.
fn log_time(now: u64) {
    log::info!("started at {now}"); // SAFE: CWE-117
}

// walkdir 2.5.0 README: walking a directory given on the command line.
fn list(root: &str) {
    for entry in walkdir::WalkDir::new(root).into_iter().flatten() {
        let _ = std::fs::metadata(entry.path()); // SAFE: CWE-22
    }
}

// tempfile advisories class: a predictable name in /tmp in a daemon.
fn pid_file(pid: u32) -> std::io::Result<()> {
    std::fs::write("/tmp/daemon.pid", pid.to_string()) // VULN: CWE-377
}

// axum 0.7.9 examples/jwt: the secret from the environment, printed on failure.
fn keys_from_env() -> String {
    let secret = std::env::var("JWT_SECRET").expect("JWT_SECRET must be set");
    secret
}

// cookie 0.18.2 README: a builder with the recommended attributes.
fn cookie_readme() -> Cookie<'static> {
    Cookie::build(("name", "value")).domain("www.rust-lang.org").path("/").secure(true).http_only(true).build() // SAFE: CWE-614
}

// cookie 0.18.2 Cookie::parse of a header value from a client, re-sent unchanged.
fn echo_cookie(header: &str, jar: &mut CookieJar) {
    if let Ok(c) = Cookie::parse(header.to_string()) {
        jar.add(c); // VULN: CWE-614
    }
}
