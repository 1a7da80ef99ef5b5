// Adapted from the affected code of published advisories (RustSec and CVE write-ups), reduced
// to the faulty lines; each block names the advisory class it follows.

// Uninitialised memory exposed to a reader (the `Read` on uninitialised buffer pattern of
// several RustSec advisories, e.g. in stream and codec crates).
fn read_frame<R: std::io::Read>(r: &mut R, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    unsafe { buf.set_len(len) }; // VULN: CWE-908
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_frame_fixed<R: std::io::Read>(r: &mut R, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len]; // SAFE: CWE-789
    r.read_exact(&mut buf)?;
    Ok(buf)
}

// A network length prefix trusted for an allocation (denial of service advisories in decoders).
fn decode(mut stream: std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    let n = u64::from_le_bytes(len) as usize;
    let mut body = Vec::with_capacity(n); // VULN: CWE-789
    stream.read_to_end(&mut body)?;
    Ok(body)
}

fn decode_limited(mut stream: std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    let n = u64::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut body = Vec::with_capacity(n); // SAFE: CWE-789
    stream.read_to_end(&mut body)?;
    Ok(body)
}

// Send/Sync implemented for any T (the unbounded `unsafe impl Send` advisories in container
// and channel crates).
pub struct Slot<T> { value: std::cell::UnsafeCell<Option<T>> }
unsafe impl<T> Sync for Slot<T> {} // VULN: CWE-362
unsafe impl<T> Send for Slot<T> {} // VULN: CWE-362
pub struct Fixed<T> { value: std::cell::UnsafeCell<Option<T>> }
// SAFETY: T: Send is required and every access goes through the lock in `Fixed::with`.
unsafe impl<T: Send> Send for Fixed<T> {} // SAFE: CWE-362

// Use after free through a raw pointer kept past `Box::from_raw` (linked-list and LRU
// advisories).
fn pop_front(head: *mut Node) -> u32 {
    unsafe {
        let node = Box::from_raw(head);
        drop(node);
        (*head).value // VULN: CWE-416
    }
}

fn pop_front_fixed(head: *mut Node) -> u32 {
    unsafe {
        let node = Box::from_raw(head);
        node.value // SAFE: CWE-416
    }
}

// Transmute between types of different validity (lifetime-extension advisories).
fn extend<'a>(s: &'a str) -> &'static str {
    unsafe { std::mem::transmute::<&'a str, &'static str>(s) } // VULN: CWE-843
}

// A slice length read from the wire (out-of-bounds read advisories in parsers).
fn field(packet: &[u8]) -> &[u8] {
    let len = packet[0] as usize;
    unsafe { std::slice::from_raw_parts(packet.as_ptr().add(1), len) } // VULN: CWE-125
}

fn field_checked(packet: &[u8]) -> &[u8] {
    let len = (packet[0] as usize).min(packet.len() - 1);
    &packet[1..1 + len] // SAFE: CWE-125
}

// Server-side request forgery in webhook/preview features (CVE write-ups of Rust services).
async fn preview(Query(p): Query<Preview>) -> String {
    let page = reqwest::get(&p.url).await; // VULN: CWE-918
    let body = page.map(|r| r.status().to_string()).unwrap_or_default();
    body
}

async fn webhook(client: reqwest::Client, Json(hook): Json<Hook>) {
    let _ = client.post(&hook.target).json(&hook.payload).send().await; // VULN: CWE-918
}

// Path traversal in static-file and archive handlers (several advisories of file servers).
async fn serve(Path(file): Path<String>) -> Vec<u8> {
    tokio::fs::read(format!("./public/{file}")).await.unwrap_or_default() // VULN: CWE-22
}

fn unpack(entry_name: &str, dest: &std::path::Path) -> std::io::Result<()> {
    let out = dest.join(entry_name);
    std::fs::create_dir_all(&out) // VULN: CWE-22
}

async fn upload_handler(Path(file): Path<String>) -> std::io::Result<()> {
    unpack(&file, std::path::Path::new("/srv/unpacked"))
}

// Command injection through a shell in an admin endpoint (CVE write-ups).
async fn backup(Query(p): Query<Backup>) {
    let _ = std::process::Command::new("sh").arg("-c").arg(format!("pg_dump {} > /backups/db.sql", p.db)).status(); // VULN: CWE-78
    let _ = std::process::Command::new("pg_dump").arg("--dbname").arg(&p.db).status(); // SAFE: CWE-78
}

// Log forging through a user-agent header (log injection reports).
async fn access_log(headers: HeaderMap) {
    let agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("-");
    log::info!("request from agent {}", agent); // VULN: CWE-117
    log::info!("request from agent {:?}", agent); // SAFE: CWE-117
}

// A secret printed while debugging (cleartext logging reports in CLI tools).
fn connect_db(database_password: &str) {
    println!("connecting with password {}", database_password); // VULN: CWE-532
    eprintln!("connecting to the database"); // SAFE: CWE-532
}

// A credential committed in source (secret-scanning reports).
fn mailer() -> Mailer {
    let smtp_password = "hunter2-Prod-Mail-2023"; // VULN: CWE-798
    Mailer::new("smtp.example.com", smtp_password)
}

// Cookies without Secure/HttpOnly in session middleware (web framework reports).
fn session_cookie(id: String) -> Cookie<'static> {
    Cookie::build(("sid", id)).path("/").finish() // VULN: CWE-614
}

fn session_cookie_fixed(id: String) -> Cookie<'static> {
    Cookie::build(("sid", id)).path("/").secure(true).http_only(true).finish() // SAFE: CWE-614
}

// ECB mode through the `ecb` crate (crypto misuse reports).
type Aes128Ecb = ecb::Encryptor<aes::Aes128>; // VULN: CWE-327
type Aes128Cbc = cbc::Encryptor<aes::Aes128>; // SAFE: CWE-327

// libxml2 bindings with entity substitution on (XXE reports).
fn parse_config(doc: &str) {
    let parser = libxml::parser::Parser::default();
    let _ = parser.parse_string_with_options(doc, ParserOptions { substitute_entities: true, ..Default::default() }); // VULN: CWE-611
}

// Deserialising untrusted bytes with bincode without a limit (DoS reports).
async fn restore(body: Bytes) -> usize {
    let state: State = bincode::deserialize(&body[..]).unwrap_or_default(); // VULN: CWE-502
    state.len()
}

// A mutable static used as a counter from several threads (data race reports).
static mut REQUESTS: u64 = 0; // VULN: CWE-362
