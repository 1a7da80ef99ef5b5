;; id = "rust/sql-injection"
;; title = "SQL built from untrusted or formatted text"
;; cwe = ["CWE-89"]
;; severity = "critical"
;; precision = "high"
;; anchors = [["query", "sql", "execute", "prepare", "exec_"]]
;; message = "SQL text is built from values instead of passing them as bind parameters; a value containing a quote rewrites the query."
;; explanation = """
;; When values are pasted into SQL text (`format!`, `+`, `push_str`) a value such as
;; `' OR '1'='1` or `'; DROP TABLE users; --` changes the statement itself. This rule reports SQL
;; text that reaches `sqlx::query`, diesel's `sql_query`, rusqlite's `execute`/`query_row`/
;; `prepare`, postgres' `query`/`execute`/`batch_execute` and mysql's `query_drop`/`exec`, both when
;; it carries request or environment data (with the path from the source) and when it is formatted
;; from non-constant values at all.
;;
;; **Fix:** keep the SQL constant and bind the values: `sqlx::query("SELECT * FROM users WHERE
;; name = $1").bind(&name)`, `conn.execute("... WHERE id = ?1", params![id])`. Identifiers (table
;; or column names) cannot be bound: map them through an allow-list (`match`) instead.
;;
;; **Trade-off:** none in practice; bound queries are also cached and planned once by the
;; database. Numbers interpolated from integer-typed variables are not reported, nor are
;; variables that only ever hold constants (literals, `const`s, and `let`s, `if`/`match`
;; and `format!` built from them), since every formatted value is then fixed text.
;; """
;; references = ["https://cwe.mitre.org/data/definitions/89.html", "https://docs.rs/sqlx/latest/sqlx/fn.query.html"]
;; [taint]
;; text = true
;; formatted = true
;; [examples]
;; vulnerable = [
;; '''
;; use axum::extract::{Query, State};
;; struct Search { name: String }
;; async fn search(State(pool): State<sqlx::PgPool>, Query(q): Query<Search>) -> String {
;;     let sql = format!("SELECT id FROM users WHERE name = '{}'", q.name);
;;     let rows = sqlx::query(&sql).fetch_all(&pool).await; // finding
;;     format!("{}", rows.map(|r| r.len()).unwrap_or(0))
;; }
;; ''',
;; '''
;; fn delete(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<usize> {
;;     conn.execute(&format!("DELETE FROM {table} WHERE expired = 1"), []) // finding
;; }
;; ''',
;; '''
;; fn audit(mut stream: std::net::TcpStream, client: &mut postgres::Client) {
;;     use std::io::Read;
;;     let mut who = String::new();
;;     stream.read_to_string(&mut who).ok();
;;     let mut q = String::from("SELECT * FROM audit WHERE actor = '");
;;     q.push_str(&who);
;;     q += "'";
;;     let _ = client.batch_execute(&q); // finding
;; }
;; ''',
;; '''
;; fn by_name(conn: &mut diesel::PgConnection, name: &str) {
;;     let query = "SELECT * FROM users WHERE name = '".to_string() + name + "'";
;;     let _ = diesel::sql_query(query).execute(conn); // finding
;; }
;; ''',
;; ]
;; safe = [
;; '''
;; use axum::extract::{Query, State};
;; struct Search { name: String }
;; async fn search(State(pool): State<sqlx::PgPool>, Query(q): Query<Search>) -> usize {
;;     sqlx::query("SELECT id FROM users WHERE name = $1")
;;         .bind(&q.name)
;;         .fetch_all(&pool)
;;         .await
;;         .map(|r| r.len())
;;         .unwrap_or(0)
;; }
;; ''',
;; '''
;; fn get(conn: &rusqlite::Connection, id: i64) -> rusqlite::Result<String> {
;;     conn.query_row(&format!("SELECT name FROM users WHERE id = {id}"), [], |r| r.get(0))
;; }
;; ''',
;; '''
;; const TABLE: &str = "sessions";
;; fn purge(conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
;;     conn.execute(&format!("DELETE FROM {TABLE} WHERE expired = 1"), [])
;; }
;; ''',
;; '''
;; fn purge(conn: &rusqlite::Connection, archived: bool) -> rusqlite::Result<usize> {
;;     let table = if archived { "archive" } else { "sessions" };
;;     let sql = format!("DELETE FROM {table} WHERE expired = 1");
;;     conn.execute(&sql, [])
;; }
;; ''',
;; '''
;; fn newest(conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
;;     let direction = "DESC";
;;     let sql = "SELECT * FROM events ORDER BY id ".to_string() + direction;
;;     conn.execute(&sql, [])
;; }
;; ''',
;; '''
;; async fn fetch(client: &reqwest::Client, term: &str) -> reqwest::Result<String> {
;;     client.get("https://api.example.org/search").query(&[("q", format!("name:{term}"))]).send().await?.text().await
;; }
;; ''',
;; ]

(call_expression
  function: [(scoped_identifier) (identifier)] @function
  arguments: (arguments . (_) @sink)
  (#match? @function "^((sqlx::)?(query|query_as|query_scalar|raw_sql)|(diesel::)?sql_query)$")) @finding

(call_expression
  function: (generic_function function: [(scoped_identifier) (identifier)] @function)
  arguments: (arguments . (_) @sink)
  (#match? @function "^(sqlx::)?(query_as|query_scalar)$")) @finding

(call_expression
  function: (field_expression value: (_) @receiver field: (field_identifier) @method)
  arguments: (arguments . [
    (identifier)
    (macro_invocation)
    (field_expression)
    (call_expression)
    (binary_expression)
    (reference_expression value: [(identifier) (macro_invocation) (field_expression) (call_expression)])
  ] @sink)
  (#any-of? @method "execute" "query" "query_one" "query_opt" "query_row" "query_map" "prepare" "prepare_cached" "execute_batch" "batch_execute" "simple_query" "query_drop" "query_first" "query_iter" "exec_drop" "exec_first" "exec_iter")
  (#not-match? @receiver "(?i)(request|req\\b|http|url|builder|reqwest)")
  (#not-match? @sink "(?i)req")) @finding
