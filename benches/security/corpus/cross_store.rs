// The other half of `cross_handlers.rs`: functions whose parameters take the taint their
// callers in that file pass, a source read here and returned there, and helpers that build
// values from their arguments.
use std::io::Read;
use std::process::Command;

pub fn xf_open_upload(name: &str) -> std::io::Result<std::fs::File> {
    std::fs::File::open(format!("/srv/uploads/{name}")) // VULN: CWE-22
}

pub fn xf_run_tool(tool: &str) {
    let _ = Command::new(tool).status(); // VULN: CWE-78
}

pub fn xf_reserve(n: usize) -> usize {
    Vec::<u8>::with_capacity(n).capacity() // VULN: CWE-789
}

pub fn xf_account_sql(user: &str) -> String {
    format!("SELECT * FROM accounts WHERE owner = '{user}'")
}

pub fn xf_peer_name() -> String {
    let mut s = std::net::TcpStream::connect("10.0.0.7:9000").expect("peer");
    let mut name = String::new();
    s.read_to_string(&mut name).ok();
    name
}

pub fn xf_page_path(page: &str) -> String {
    format!("/srv/pages/{page}")
}

pub fn xf_count_rows(conn: &rusqlite::Connection, owner: &str) -> usize {
    let sql = "SELECT count(*) FROM sessions WHERE owner = ?1";
    conn.query_row(sql, [owner], |r| r.get(0)).unwrap_or(0) // SAFE: CWE-89
}

pub fn xf_archive(label: &str) {
    let _ = Command::new("tar").arg(format!("/srv/archive/{label}.tar")).status(); // SAFE: CWE-78
}

pub fn xf_listing(n: usize) -> Vec<u8> {
    Vec::with_capacity(n) // SAFE: CWE-789
}
