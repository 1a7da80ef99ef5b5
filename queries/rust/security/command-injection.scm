;; id = "rust/command-injection"
;; title = "Command built from untrusted input"
;; cwe = ["CWE-78", "CWE-88"]
;; severity = "critical"
;; precision = "high"
;; anchors = [["command::new"]]
;; message = "Untrusted input chooses the program to run or is passed to a shell, so an attacker can run arbitrary commands."
;; explanation = """
;; `Command::new(x)` with an attacker-controlled `x` runs whatever program they name, and
;; `sh -c <text>` (or `cmd /C`) interprets `;`, `|`, `$( )` and backticks in the text, so any
;; untrusted part of it becomes a command.
;;
;; **Fix:** run a fixed program and pass untrusted values as separate arguments
;; (`Command::new("convert").arg(&input)`), never through a shell. If the program itself must vary,
;; map the input onto an allow-list (`match name { "png" => "optipng", _ => return Err(..) }`).
;; Validate arguments that could be read as options (a leading `-`), or put them after `--`.
;;
;; **Trade-off:** shell features (pipes, globbing, redirection) must be done in Rust instead, which
;; is more code but has no injection surface.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/78.html", "https://doc.rust-lang.org/std/process/struct.Command.html"]
;; [taint]
;; text = true
;; [examples]
;; vulnerable = [
;; '''
;; use axum::extract::Query;
;; use std::collections::HashMap;
;; async fn run(Query(params): Query<HashMap<String, String>>) -> String {
;;     let tool = params.get("tool").cloned().unwrap_or_default();
;;     let out = std::process::Command::new(tool).output(); // finding
;;     format!("{out:?}")
;; }
;; ''',
;; '''
;; async fn open(body: String) -> String {
;;     let cmd = format!("{body} notes.txt");
;;     std::process::Command::new("sh").arg("-c").arg(&cmd).status().ok(); // finding
;;     String::new()
;; }
;; ''',
;; '''
;; fn serve(listener: std::net::TcpListener) {
;;     use std::io::BufRead;
;;     for stream in listener.incoming() {
;;         let Ok(stream) = stream else { continue };
;;         let mut line = String::new();
;;         std::io::BufReader::new(stream).read_line(&mut line).ok();
;;         let program = line.trim();
;;         let _ = std::process::Command::new(program).spawn(); // finding
;;     }
;; }
;; ''',
;; '''
;; struct Job { script: String }
;; #[actix_web::post("/jobs")]
;; async fn create(job: actix_web::web::Json<Job>) -> String {
;;     let request = job.into_inner();
;;     let mut shell = String::from("cd /srv && ");
;;     shell.push_str(&request.script);
;;     let status = std::process::Command::new("bash")
;;         .args(["-c", &shell]) // finding
;;         .status();
;;     format!("{status:?}")
;; }
;; ''',
;; '''
;; use axum::extract::Query;
;; use std::collections::HashMap;
;; fn requested_tool(params: &HashMap<String, String>) -> String {
;;     params.get("tool").cloned().unwrap_or_default()
;; }
;; async fn run(Query(params): Query<HashMap<String, String>>) {
;;     let _ = std::process::Command::new(requested_tool(&params)).status(); // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use axum::extract::Query;
;; use std::collections::HashMap;
;; fn requested_tool(params: &HashMap<String, String>) -> &'static str {
;;     match params.get("tool").map(String::as_str) {
;;         Some("gzip") => "gzip",
;;         _ => "cat",
;;     }
;; }
;; async fn run(Query(params): Query<HashMap<String, String>>) {
;;     let _ = std::process::Command::new(requested_tool(&params)).status();
;; }
;; ''',
;; '''
;; use axum::extract::Query;
;; struct Ping { host: String }
;; async fn ping(Query(p): Query<Ping>) -> String {
;;     let out = std::process::Command::new("ping").arg("-c").arg("1").arg(&p.host).output();
;;     format!("{out:?}")
;; }
;; ''',
;; '''
;; use axum::extract::Query;
;; struct Params { tool: String }
;; async fn run(Query(p): Query<Params>) {
;;     let tool = match p.tool.as_str() {
;;         "date" => "date",
;;         "uptime" => "uptime",
;;         _ => return,
;;     };
;;     let _ = std::process::Command::new(tool).status();
;; }
;; ''',
;; '''
;; pub fn run(program: &str, args: &[String]) -> std::io::Result<std::process::ExitStatus> {
;;     std::process::Command::new(program).args(args).status()
;; }
;; ''',
;; '''
;; const ALLOWED: &[&str] = &["git", "hg"];
;; fn main() {
;;     let vcs = std::env::args().nth(1).unwrap_or_default();
;;     if !ALLOWED.contains(&vcs.as_str()) {
;;         return;
;;     }
;;     let _ = std::process::Command::new(&vcs).arg("status").status();
;; }
;; ''',
;; ]

(call_expression
  function: (scoped_identifier) @function
  arguments: (arguments . (_) @sink)
  (#match? @function "(^|::)Command::new$")) @finding

(call_expression
  function: (field_expression value: (_) @chain field: (field_identifier) @method)
  arguments: (arguments . (_) @sink)
  (#any-of? @method "arg" "args")
  (#match? @chain "Command::new\\(\\s*\"(sh|bash|zsh|dash|cmd|powershell|powershell|pwsh)\"")) @finding
