// Command injection (CWE-78), path traversal (CWE-22), XSS (CWE-79), SSRF (CWE-918),
// regex injection (CWE-1333) and log injection (CWE-117), with their sanitised look-alikes.
use axum::extract::{Json, Path, Query};
use axum::response::Html;
use std::process::Command;

struct Params { file: String, host: String, name: String, url: String, pattern: String }

async fn ping(Query(p): Query<Params>) -> String {
    let out = Command::new("ping").arg("-c1").arg(&p.host).output(); // SAFE: CWE-78
    let shell = Command::new("sh").arg("-c").arg(format!("ping -c1 {}", p.host)).output(); // VULN: CWE-78
    let tool = Command::new(&p.name).output(); // VULN: CWE-78
    format!("{:?}{:?}{:?}", out.is_ok(), shell.is_ok(), tool.is_ok())
}

async fn convert(Json(p): Json<Params>) -> bool {
    const TOOLS: [&str; 2] = ["convert", "identify"];
    if !TOOLS.contains(&p.name.as_str()) {
        return false;
    }
    Command::new(&p.name).arg("--version").status().is_ok() // SAFE: CWE-78
}

async fn run_script(Query(p): Query<Params>) {
    let cmd = format!("tar czf /backups/{}.tgz /data", p.file);
    let _ = Command::new("bash").args(["-c", &cmd]).status(); // VULN: CWE-78
}

async fn download(Path(name): Path<String>) -> Vec<u8> {
    std::fs::read(format!("/srv/files/{name}")).unwrap_or_default() // VULN: CWE-22
}

async fn download_checked(Path(name): Path<String>) -> Vec<u8> {
    let base = std::path::Path::new("/srv/files");
    let Ok(full) = base.join(&name).canonicalize() else { return Vec::new() };
    if !full.starts_with(base) {
        return Vec::new();
    }
    std::fs::read(&full).unwrap_or_default() // SAFE: CWE-22
}

async fn avatar(Query(p): Query<Params>) -> Vec<u8> {
    let file = std::path::Path::new(&p.file).file_name().map(|n| n.to_owned()).unwrap_or_default();
    std::fs::read(std::path::Path::new("/srv/avatars").join(file)).unwrap_or_default() // SAFE: CWE-22
}

async fn remove(Json(p): Json<Params>) {
    let path = std::path::PathBuf::from("/srv/uploads").join(&p.file);
    let _ = std::fs::remove_file(&path); // VULN: CWE-22
}

async fn save(Json(p): Json<Params>) {
    let _ = std::fs::write(format!("/srv/notes/{}.txt", p.name), b"note"); // VULN: CWE-22
    let _ = std::fs::File::create("/srv/notes/index.txt"); // SAFE: CWE-22
}

fn open_log(day: u32) -> std::io::Result<std::fs::File> {
    std::fs::File::open(format!("/var/log/app/{day}.log")) // SAFE: CWE-22
}

async fn greet(Query(p): Query<Params>) -> Html<String> {
    Html(format!("<h1>Hello, {}!</h1>", p.name)) // VULN: CWE-79
}

async fn greet_escaped(Query(p): Query<Params>) -> Html<String> {
    Html(format!("<h1>Hello, {}!</h1>", html_escape::encode_text(&p.name))) // SAFE: CWE-79
}

async fn page(Query(p): Query<Params>) -> Html<String> {
    let mut body = String::from("<ul>");
    body.push_str(&format!("<li>{}</li>", p.file));
    body.push_str("</ul>");
    Html(body) // VULN: CWE-79
}

async fn static_page() -> Html<&'static str> {
    Html("<h1>Welcome</h1>") // SAFE: CWE-79
}

async fn proxy(Query(p): Query<Params>) -> String {
    let body = reqwest::get(&p.url).await.ok(); // VULN: CWE-918
    let fixed = reqwest::get("https://status.example.com/health").await.ok(); // SAFE: CWE-918
    format!("{}{}", body.is_some(), fixed.is_some())
}

async fn fetch_avatar(client: reqwest::Client, Json(p): Json<Params>) -> bool {
    let url = format!("http://{}/avatar.png", p.host);
    client.get(&url).send().await.is_ok() // VULN: CWE-918
}

async fn fetch_allowed(client: reqwest::Client, Json(p): Json<Params>) -> bool {
    if p.host != "images.example.com" {
        return false;
    }
    client.get(format!("https://{}/a.png", p.host)).send().await.is_ok() // SAFE: CWE-918
}

async fn filter(Query(p): Query<Params>) -> bool {
    let re = regex::Regex::new(&p.pattern); // VULN: CWE-1333
    let escaped = regex::Regex::new(&regex::escape(&p.pattern)); // SAFE: CWE-1333
    let fixed = regex::Regex::new(r"^[a-z]+$"); // SAFE: CWE-1333
    re.is_ok() && escaped.is_ok() && fixed.is_ok()
}

async fn audit(Query(p): Query<Params>) {
    log::info!("user logged in: {}", p.name); // VULN: CWE-117
    log::info!("user logged in: {:?}", p.name); // SAFE: CWE-117
    tracing::warn!("bad request for {}", p.file); // VULN: CWE-117
    log::info!("request served"); // SAFE: CWE-117
}

// Interprocedural: the handler's data reaches the sink inside a helper.
fn run_tool(name: &str) -> bool {
    Command::new(name).status().is_ok() // VULN: CWE-78
}

fn read_note(file: &str) -> String {
    std::fs::read_to_string(file).unwrap_or_default() // VULN: CWE-22
}

fn render(title: &str) -> Html<String> {
    Html(format!("<title>{title}</title>")) // VULN: CWE-79
}

async fn dispatch(Query(p): Query<Params>) -> Html<String> {
    run_tool(&p.name);
    let note = read_note(&p.file);
    let _ = note;
    render(&p.host)
}

fn run_fixed_tool() -> bool {
    run_tool("uptime")
}
