// Cookies (CWE-614/1004), cleartext logging of secrets (CWE-312/532), temporary files
// (CWE-377), XML external entities (CWE-611), deserialisation (CWE-502) and allocation
// sizes (CWE-770/789) from untrusted input.
use axum::extract::{Json, Query};
use axum_extra::extract::cookie::{Cookie, CookieJar};

struct Login { user: String, password: String, size: usize, count: String }

async fn set_session(jar: CookieJar, value: String) -> CookieJar {
    jar.add(Cookie::build(("session", value)).path("/")) // VULN: CWE-614
}

async fn set_session_secure(jar: CookieJar, value: String) -> CookieJar {
    jar.add(Cookie::build(("session", value)).path("/").secure(true).http_only(true)) // SAFE: CWE-614
}

async fn set_flag(jar: CookieJar) -> CookieJar {
    jar.add(Cookie::build(("theme", "dark")).secure(false)) // VULN: CWE-614
}

fn login_log(login: &Login) {
    log::info!("login attempt for {} with password {}", login.user, login.password); // VULN: CWE-532
    log::info!("login attempt for {}", login.user); // SAFE: CWE-532
    println!("api_key={}", std::env::var("API_KEY").unwrap_or_default()); // VULN: CWE-532
}

fn debug_token(token: &str) {
    tracing::debug!(%token, "refreshing"); // VULN: CWE-532
    tracing::debug!(token_len = token.len(), "refreshing"); // SAFE: CWE-532
}

fn save_secret(secret_key: &str) {
    let _ = std::fs::write("/etc/app/key.txt", secret_key); // VULN: CWE-312
    let _ = std::fs::write("/etc/app/version.txt", "1.0"); // SAFE: CWE-312
}

fn scratch_file() -> std::io::Result<std::fs::File> {
    std::fs::File::create("/tmp/app-upload.bin") // VULN: CWE-377
}

fn scratch_dir() -> std::io::Result<()> {
    std::fs::create_dir_all(std::env::temp_dir().join("app-cache")) // VULN: CWE-377
}

fn scratch_safe() -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::NamedTempFile::new() // SAFE: CWE-377
}

fn parse_xml(doc: &str) {
    let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() }; // VULN: CWE-611
    let strict = roxmltree::ParsingOptions { allow_dtd: false, ..Default::default() }; // SAFE: CWE-611
    let _ = (roxmltree::Document::parse_with_options(doc, opts), strict);
}

fn libxml_parse(doc: &str) {
    let flags = libxml::parser::XmlParseOptions { recover: true, no_net: true, ..Default::default() }; // SAFE: CWE-611
    let unsafe_flags = XML_PARSE_NOENT | XML_PARSE_NONET; // VULN: CWE-611
    let _ = (doc, flags, unsafe_flags);
}

async fn upload(body: axum::body::Bytes) -> usize {
    let value: Vec<u64> = bincode::deserialize(&body).unwrap_or_default(); // VULN: CWE-502
    let json: Vec<u64> = serde_json::from_slice(&body).unwrap_or_default(); // SAFE: CWE-502
    value.len() + json.len()
}

async fn buffer(Query(l): Query<Login>) -> usize {
    let v: Vec<u8> = Vec::with_capacity(l.size); // VULN: CWE-789
    let n: usize = l.count.parse().unwrap_or(0);
    let w: Vec<u8> = vec![0; n]; // VULN: CWE-789
    let bounded: Vec<u8> = Vec::with_capacity(l.size.min(4096)); // SAFE: CWE-789
    let fixed: Vec<u8> = Vec::with_capacity(1024); // SAFE: CWE-789
    v.len() + w.len() + bounded.len() + fixed.len()
}

async fn raw_alloc(Query(l): Query<Login>) -> usize {
    let layout = std::alloc::Layout::from_size_align(l.size, 8).expect("layout");
    let p = unsafe { std::alloc::alloc(layout) }; // VULN: CWE-789
    let q = unsafe { libc::malloc(l.size) }; // VULN: CWE-789
    let r = unsafe { libc::malloc(64) }; // SAFE: CWE-789
    p as usize + q as usize + r as usize
}

async fn grow(Json(l): Json<Login>) -> usize {
    let mut v: Vec<u8> = Vec::new();
    v.reserve(l.size); // VULN: CWE-789
    if l.size > 1 << 20 {
        return 0;
    }
    v.resize(l.size, 0); // SAFE: CWE-789
    v.len()
}
