//! A small shop back end: configuration, routes and start-up.

mod auth;
mod config;
mod handlers;
mod partner;
mod storage;

use axum::routing::{get, post};
use axum::Router;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = config::Config::from_env()?;
    let pool = sqlx::PgPool::connect(&config.database_url).await?;
    let app = Router::new()
        .route("/products", get(handlers::search_products))
        .route("/products/by-name", get(handlers::product_by_name))
        .route("/greet", get(handlers::greet))
        .route("/files/:name", get(handlers::download))
        .route("/admin/diagnostics", get(handlers::diagnostics))
        .route("/login", post(auth::login))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    tracing::info!("listening on {}", config.listen);
    axum::serve(listener, app).await?;
    Ok(())
}
