// Patterns adapted from advisories and CVE write-ups of Rust web services and tools, reduced to
// the faulty lines.

// Search endpoints that splice the term into a LIKE clause (SQL injection CVEs in Rust CMSs).
async fn search_posts(State(pool): State<sqlx::SqlitePool>, Query(p): Query<SearchParams>) -> usize {
    let sql = format!("SELECT * FROM posts WHERE title LIKE '%{}%' ORDER BY id", p.q);
    sqlx::query(&sql).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // VULN: CWE-89
}

async fn search_posts_fixed(State(pool): State<sqlx::SqlitePool>, Query(p): Query<SearchParams>) -> usize {
    let pattern = format!("%{}%", p.q);
    sqlx::query("SELECT * FROM posts WHERE title LIKE ? ORDER BY id").bind(pattern).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // SAFE: CWE-89
}

// Sorting columns taken from the query string (several ORM-bypass reports).
async fn list_users(State(pool): State<sqlx::PgPool>, Query(p): Query<ListParams>) -> usize {
    let sql = format!("SELECT * FROM users ORDER BY {} {}", p.column, p.direction);
    sqlx::query(&sql).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // VULN: CWE-89
}

async fn list_users_fixed(State(pool): State<sqlx::PgPool>, Query(p): Query<ListParams>) -> usize {
    let column = match p.column.as_str() { "name" => "name", "email" => "email", _ => "id" };
    let direction = if p.direction == "desc" { "DESC" } else { "ASC" };
    let sql = format!("SELECT * FROM users ORDER BY {column} {direction}");
    sqlx::query(&sql).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // SAFE: CWE-89
}

// Image-conversion endpoints that shell out (command injection CVEs in media services).
async fn thumbnail(Query(p): Query<ImageParams>) {
    let _ = std::process::Command::new("sh").arg("-c").arg(format!("convert {} -resize 100x100 /tmp/thumb.png", p.file)).status(); // VULN: CWE-78
    let _ = std::process::Command::new("convert").args([&p.file, "-resize", "100x100", "out.png"]).status(); // SAFE: CWE-78
}

// Git hosting tools that pass a ref name to git (argument injection, CWE-88, reported as 78).
async fn show_ref(Path(name): Path<String>) {
    let _ = std::process::Command::new(name).arg("log").status(); // VULN: CWE-78
}

// Archive extraction without checking `..` (zip-slip advisories).
fn extract_entry(archive_root: &std::path::Path, entry: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(archive_root.join(entry), data) // VULN: CWE-22
}

async fn upload_zip(Path(entry): Path<String>, body: Bytes) -> std::io::Result<()> {
    extract_entry(std::path::Path::new("/srv/unzipped"), &entry, &body)
}

fn extract_entry_fixed(archive_root: &std::path::Path, entry: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let Some(name) = entry.file_name() else { return Ok(()) };
    std::fs::write(archive_root.join(name), data) // SAFE: CWE-22
}

// Markdown previews that return HTML built from the request (XSS reports).
async fn preview(Json(p): Json<PreviewReq>) -> Html<String> {
    let mut html = String::new();
    html.push_str("<div class=\"preview\">");
    html.push_str(&p.text);
    html.push_str("</div>");
    Html(html) // VULN: CWE-79
}

async fn preview_fixed(Json(p): Json<PreviewReq>) -> Html<String> {
    Html(format!("<div class=\"preview\">{}</div>", ammonia::clean(&p.text))) // SAFE: CWE-79
}

// Link-unfurling bots that fetch any URL in a message (SSRF reports).
async fn unfurl(client: reqwest::Client, Json(m): Json<Message>) -> bool {
    let url = m.text.split_whitespace().find(|w| w.starts_with("http")).unwrap_or("").to_string();
    client.get(&url).send().await.is_ok() // VULN: CWE-918
}

// Regex search endpoints (ReDoS reports).
async fn grep(Query(p): Query<SearchParams>) -> bool {
    regex::Regex::new(&format!("(?i){}", p.q)).is_ok() // VULN: CWE-1333
}

// Allocation from a request header (DoS reports in proxies).
async fn preallocate(headers: HeaderMap) -> usize {
    let n: usize = headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let buf: Vec<u8> = Vec::with_capacity(n); // VULN: CWE-789
    buf.capacity()
}

// Secrets in debug output of configuration structs (cleartext logging reports).
fn start(config: &Config) {
    log::info!("starting with database_url={}", config.database_url); // SAFE: CWE-532
    log::info!("starting with db_password={}", config.db_password); // VULN: CWE-532
}
