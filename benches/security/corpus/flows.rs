// Data that travels: through helper functions (both ways), HTTP client responses, struct
// fields, tuples and buffers, and sanitisers on the way.
use axum::extract::{Json, Query};
use std::process::Command;

struct Req { name: String, path: String, n: String, url: String }

fn build_sql(name: &str) -> String {
    format!("SELECT * FROM users WHERE name = '{name}'")
}

fn quote_ident(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

async fn search(State(pool): State<sqlx::PgPool>, Query(r): Query<Req>) -> usize {
    let sql = build_sql(&r.name);
    sqlx::query(&sql).fetch_all(&pool).await.map(|v| v.len()).unwrap_or(0) // VULN: CWE-89
}

fn cleanup(conn: &rusqlite::Connection) {
    let sql = build_sql("expired");
    let _ = conn.execute(&sql, []); // SAFE: CWE-89
}

fn user_file() -> String {
    let mut s = std::net::TcpStream::connect("10.0.0.2:9000").expect("peer");
    let mut name = String::new();
    std::io::Read::read_to_string(&mut s, &mut name).ok();
    name
}

fn open_requested() -> Vec<u8> {
    let name = user_file();
    std::fs::read(&name).unwrap_or_default() // VULN: CWE-22
}

fn delete_in(dir: &std::path::Path, name: &str) {
    let _ = std::fs::remove_file(dir.join(name)); // VULN: CWE-22
}

async fn delete(Json(r): Json<Req>) {
    delete_in(std::path::Path::new("/srv/data"), &r.path);
}

fn spawn(cmd: &str, arg: &str) {
    let _ = Command::new(cmd).arg(arg).status(); // VULN: CWE-78
}

async fn exec(Query(r): Query<Req>) {
    spawn(&r.name, "--help");
}

fn size_of_request(n: usize) -> Vec<u8> {
    Vec::with_capacity(n) // VULN: CWE-789
}

async fn alloc(Query(r): Query<Req>) -> usize {
    let n: usize = r.n.parse().unwrap_or(0);
    size_of_request(n).capacity()
}

fn page_of(title: &str) -> axum::response::Html<String> {
    axum::response::Html(format!("<p>{}</p>", html_escape::encode_text(title))) // SAFE: CWE-79
}

async fn titled(Query(r): Query<Req>) -> axum::response::Html<String> {
    page_of(&r.name)
}

// Responses of HTTP clients are data from elsewhere.
async fn mirror(client: reqwest::Client) -> std::io::Result<()> {
    let name = client.get("https://api.example.com/next").send().await.map_err(std::io::Error::other)?.text().await.map_err(std::io::Error::other)?;
    std::fs::write(format!("/srv/mirror/{name}"), b"") // VULN: CWE-22
}

async fn relay(client: reqwest::Client) {
    let next = reqwest::get("https://api.example.com/redirect").await.ok();
    let target = match next { Some(r) => r.text().await.unwrap_or_default(), None => String::new() };
    let _ = client.get(&target).send().await; // VULN: CWE-918
}

async fn status_only(client: reqwest::Client) {
    let ok = reqwest::get("https://api.example.com/health").await.map(|r| r.status().is_success()).unwrap_or(false);
    let _ = client.get(if ok { "https://a.example.com" } else { "https://b.example.com" }).send().await; // SAFE: CWE-918
}

// Struct fields and tuples carry taint per field.
struct Job { cmd: String, label: String }

async fn queue(Json(r): Json<Req>) {
    let job = Job { cmd: r.name.clone(), label: "nightly".to_string() };
    let _ = Command::new(&job.label).status(); // SAFE: CWE-78
    let _ = Command::new(&job.cmd).status(); // VULN: CWE-78
    let pair = (r.path.clone(), "fixed");
    let _ = std::fs::read(&pair.0); // VULN: CWE-22
}

async fn escaped_shell(Query(r): Query<Req>) {
    let quoted = shell_escape::escape(r.name.clone().into());
    let _ = Command::new("sh").arg("-c").arg(format!("echo {quoted}")).status(); // SAFE: CWE-78
}

async fn numeric_only(Query(r): Query<Req>) {
    let id: u64 = r.n.parse().unwrap_or(0);
    let _ = std::fs::read(format!("/srv/by-id/{id}")); // SAFE: CWE-22
    let _ = Command::new("kill").arg(id.to_string()).status(); // SAFE: CWE-78
}

async fn allow_listed(Query(r): Query<Req>) {
    let tool = match r.name.as_str() { "ls" => "ls", "df" => "df", _ => return };
    let _ = Command::new(tool).status(); // SAFE: CWE-78
}

async fn buffered(Query(r): Query<Req>) -> axum::response::Html<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = write!(out, "<b>{}</b>", r.name);
    axum::response::Html(out) // VULN: CWE-79
}

// Secrets reaching logs through other names.
struct Credentials { user: String, api_key: String }

fn log_credentials(c: &Credentials) {
    let shown = c.api_key.clone();
    log::debug!("using {}", shown); // VULN: CWE-532
    log::debug!("using account {}", c.user); // SAFE: CWE-532
    log::debug!("credentials: {:?}", c.api_key); // VULN: CWE-532
}

fn log_panics(secret: &str) {
    let parsed: u32 = secret.parse().expect(&format!("bad secret {secret}")); // VULN: CWE-532
    let _ = parsed;
    panic!("refusing token {}", secret); // VULN: CWE-532
}

// Flags and URLs held in variables.
fn client_from_flag() -> reqwest::Client {
    let insecure = true;
    reqwest::Client::builder().danger_accept_invalid_certs(insecure).build().expect("client") // VULN: CWE-295
}

fn client_from_const() -> reqwest::Client {
    const VERIFY_OFF: bool = false;
    reqwest::Client::builder().danger_accept_invalid_certs(VERIFY_OFF).build().expect("client") // SAFE: CWE-295
}

async fn post_report(client: &reqwest::Client, host: &str) {
    let url = format!("http://{host}/report");
    let _ = client.post(&url).send().await; // VULN: CWE-319
    let secure = format!("https://{host}/report");
    let _ = client.post(&secure).send().await; // SAFE: CWE-319
}

fn cookie_flag(jar: CookieJar, secure: bool) -> CookieJar {
    let flag = false;
    jar.add(Cookie::build(("id", "1")).http_only(true).secure(flag)) // VULN: CWE-614
}
