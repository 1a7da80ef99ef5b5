//! HTTP handlers for products, greetings, downloads and diagnostics.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use sqlx::PgPool;

#[derive(Deserialize)]
pub struct Search {
    pub name: String,
    pub limit: Option<usize>,
}

/// Product search, the right way: the SQL is constant and the value is bound.
pub async fn search_products(State(pool): State<PgPool>, Query(q): Query<Search>) -> String {
    let limit = q.limit.unwrap_or(20).min(100) as i64;
    let rows = sqlx::query("SELECT id, name FROM products WHERE name ILIKE $1 LIMIT $2")
        .bind(format!("%{}%", q.name))
        .bind(limit)
        .fetch_all(&pool)
        .await;
    format!("{} products", rows.map(|r| r.len()).unwrap_or(0))
}

/// Product lookup by exact name, built with `format!`: injectable.
pub async fn product_by_name(State(pool): State<PgPool>, Query(q): Query<Search>) -> String {
    let sql = format!("SELECT id, name FROM products WHERE name = '{}'", q.name);
    let rows = sqlx::query(&sql).fetch_all(&pool).await;
    format!("{} products", rows.map(|r| r.len()).unwrap_or(0))
}

#[derive(Deserialize)]
pub struct Greeting {
    pub who: String,
}

/// Echoes the visitor's name into HTML without escaping it.
pub async fn greet(Query(g): Query<Greeting>) -> Html<String> {
    Html(format!("<h1>Welcome back, {}!</h1>", g.who))
}

/// Serves files from the download folder, confined to it.
pub async fn download(Path(name): Path<String>) -> Vec<u8> {
    let Ok(base) = std::path::Path::new("/srv/shop/files").canonicalize() else {
        return Vec::new();
    };
    let Ok(full) = base.join(&name).canonicalize() else {
        return Vec::new();
    };
    if !full.starts_with(&base) {
        return Vec::new();
    }
    std::fs::read(&full).unwrap_or_default()
}

#[derive(Deserialize)]
pub struct Diagnostics {
    pub check: String,
}

/// Runs a diagnostics command named by the request: the command line goes through a shell.
pub async fn diagnostics(Query(d): Query<Diagnostics>) -> String {
    let script = format!("/opt/shop/bin/{} --quiet", d.check);
    let output = std::process::Command::new("sh").arg("-c").arg(&script).output();
    match output {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(err) => format!("failed: {err}"),
    }
}
