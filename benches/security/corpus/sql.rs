// SQL injection (CWE-89): request data pasted into SQL text, and constant-only look-alikes.
use axum::extract::{Form, Json, Path, Query, State};

struct Search { name: String, sort: String }

async fn by_name(State(pool): State<sqlx::PgPool>, Query(q): Query<Search>) -> usize {
    let sql = format!("SELECT id FROM users WHERE name = '{}'", q.name);
    sqlx::query(&sql).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // VULN: CWE-89
}

async fn by_name_bound(State(pool): State<sqlx::PgPool>, Query(q): Query<Search>) -> usize {
    sqlx::query("SELECT id FROM users WHERE name = $1").bind(&q.name).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // SAFE: CWE-89
}

async fn sorted(State(pool): State<sqlx::PgPool>, Query(q): Query<Search>) -> usize {
    let order = if q.sort == "desc" { "DESC" } else { "ASC" };
    let sql = format!("SELECT id FROM users ORDER BY created {order}");
    sqlx::query(&sql).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // SAFE: CWE-89
}

async fn sorted_raw(State(pool): State<sqlx::PgPool>, Query(q): Query<Search>) -> usize {
    let sql = format!("SELECT id FROM users ORDER BY {}", q.sort);
    sqlx::query(&sql).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // VULN: CWE-89
}

fn purge(conn: &rusqlite::Connection, archived: bool) -> rusqlite::Result<usize> {
    let table = if archived { "archive" } else { "sessions" };
    let sql = format!("DELETE FROM {table} WHERE expired = 1");
    conn.execute(&sql, []) // SAFE: CWE-89
}

const AUDIT: &str = "audit_log";

fn trim_audit(conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
    conn.execute(&format!("DELETE FROM {AUDIT} WHERE at < date('now', '-30 days')"), []) // SAFE: CWE-89
}

fn newest(conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
    let direction = "DESC";
    let limit = 10;
    let sql = "SELECT * FROM events ORDER BY id ".to_string() + direction;
    let sql = format!("{sql} LIMIT {limit}");
    conn.execute(&sql, []) // SAFE: CWE-89
}

fn drop_table(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<usize> {
    conn.execute(&format!("DROP TABLE {table}"), []) // VULN: CWE-89
}

async fn login(State(pool): State<sqlx::PgPool>, Form(f): Form<Search>) -> bool {
    let q = "SELECT 1 FROM users WHERE name = '".to_string() + &f.name + "'";
    sqlx::query(&q).fetch_optional(&pool).await.ok().flatten().is_some() // VULN: CWE-89
}

async fn rename(State(pool): State<sqlx::PgPool>, Json(s): Json<Search>) {
    let mut q = String::from("UPDATE users SET name = '");
    q.push_str(&s.name);
    q.push_str("' WHERE id = 1");
    let _ = sqlx::query(&q).execute(&pool).await; // VULN: CWE-89
}

async fn user_by_id(State(pool): State<sqlx::PgPool>, Path(id): Path<i64>) -> usize {
    let sql = format!("SELECT * FROM users WHERE id = {id}");
    sqlx::query(&sql).fetch_all(&pool).await.map(|r| r.len()).unwrap_or(0) // SAFE: CWE-89
}

async fn count(State(pool): State<sqlx::PgPool>, Path(id): Path<String>) -> i64 {
    let n: u32 = id.parse().unwrap_or(0);
    let sql = format!("SELECT count(*) FROM items WHERE owner = {n}");
    sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap_or(0) // SAFE: CWE-89
}

fn report(conn: &mut postgres::Client, mut stream: std::net::TcpStream) {
    use std::io::Read;
    let mut who = String::new();
    stream.read_to_string(&mut who).ok();
    let _ = conn.batch_execute(&format!("INSERT INTO seen (who) VALUES ('{who}')")); // VULN: CWE-89
    let _ = conn.execute("INSERT INTO seen (who) VALUES ($1)", &[&who]); // SAFE: CWE-89
}

fn diesel_search(conn: &mut diesel::PgConnection, Query(q): Query<Search>) {
    let _ = diesel::sql_query(format!("SELECT * FROM posts WHERE title LIKE '%{}%'", q.name)).load::<Post>(conn); // VULN: CWE-89
    let _ = diesel::sql_query("SELECT * FROM posts WHERE title LIKE $1").bind::<diesel::sql_types::Text, _>(&q.name).load::<Post>(conn); // SAFE: CWE-89
}

fn schema(conn: &rusqlite::Connection, version: u32) -> rusqlite::Result<()> {
    let columns = ["id INTEGER PRIMARY KEY", "name TEXT"];
    let sql = format!("CREATE TABLE IF NOT EXISTS v{version} ({})", columns.join(", "));
    conn.execute_batch(&sql) // SAFE: CWE-89
}

// Interprocedural: the handler passes request data to a plain function that builds the SQL.
fn find_posts(conn: &rusqlite::Connection, author: &str) -> rusqlite::Result<usize> {
    let sql = format!("SELECT * FROM posts WHERE author = '{author}'");
    conn.execute(&sql, []) // VULN: CWE-89
}

async fn posts(Query(q): Query<Search>, State(conn): State<Db>) -> usize {
    find_posts(&conn.0, &q.name).unwrap_or(0)
}

fn mysql_lookup(conn: &mut mysql::PooledConn, Query(q): Query<Search>) {
    use mysql::prelude::Queryable;
    let _ = conn.query_drop(format!("DELETE FROM carts WHERE owner = '{}'", q.name)); // VULN: CWE-89
    let _ = conn.exec_drop("DELETE FROM carts WHERE owner = ?", (&q.name,)); // SAFE: CWE-89
}
