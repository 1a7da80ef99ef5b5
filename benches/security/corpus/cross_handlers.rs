// Handlers whose untrusted input reaches sinks defined in another file of the crate
// (`cross_store.rs`): taint passed to a parameter across files, a source returned from
// another file, and a pass-through helper of another file. Safe look-alikes pass constants.
use axum::extract::{Json, Query};

struct Upload { name: String, tool: String, user: String, size: String, page: String }

async fn xf_upload(Query(u): Query<Upload>) {
    cross_store::xf_open_upload(&u.name);
}

async fn xf_run(Json(u): Json<Upload>) {
    xf_run_tool(&u.tool);
}

async fn xf_account(State(pool): State<sqlx::PgPool>, Query(u): Query<Upload>) -> usize {
    let sql = xf_account_sql(&u.user);
    sqlx::query(&sql).fetch_all(&pool).await.map(|v| v.len()).unwrap_or(0) // VULN: CWE-89
}

async fn xf_reserve_for(Query(u): Query<Upload>) -> usize {
    let n: usize = u.size.parse().unwrap_or(0);
    xf_reserve(n)
}

fn xf_mirror() -> Vec<u8> {
    let name = xf_peer_name();
    std::fs::read(&name).unwrap_or_default() // VULN: CWE-22
}

fn xf_mirror_fixed() -> Vec<u8> {
    let name = xf_page_path("index.html");
    std::fs::read(&name).unwrap_or_default() // SAFE: CWE-22
}

async fn xf_page(Query(u): Query<Upload>) -> Vec<u8> {
    let name = xf_page_path(&u.page);
    std::fs::read(&name).unwrap_or_default() // VULN: CWE-22
}

fn xf_housekeeping(conn: &rusqlite::Connection) {
    xf_run_tool("logrotate");
    cross_store::xf_open_upload("motd.txt");
    let sql = xf_account_sql("system");
    let _ = conn.execute(&sql, []); // SAFE: CWE-89
    let _ = xf_count_rows(conn, "sessions");
    xf_archive("nightly");
}

async fn xf_count(Query(u): Query<Upload>, conn: rusqlite::Connection) -> usize {
    xf_count_rows(&conn, &u.user)
}

async fn xf_listing_for(Query(u): Query<Upload>) -> usize {
    xf_listing(64).len() + u.page.len()
}
