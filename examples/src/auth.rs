//! Log-in: password checks, session tokens and the session cookie.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use axum::extract::{Form, State};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Deserialize;
use sqlx::PgPool;
use tower_cookies::Cookie;

#[derive(Deserialize)]
pub struct Login {
    pub user: String,
    pub password: String,
}

/// The legacy digest still stored for old accounts: MD5 of the password, unsalted.
pub fn legacy_digest(password: &str) -> String {
    format!("{:x}", md5::compute(password.as_bytes()))
}

/// Verifies a password against an Argon2 hash.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
        .unwrap_or(false)
}

/// A session token from the thread-local CSPRNG.
pub fn new_session_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

pub async fn login(State(pool): State<PgPool>, Form(form): Form<Login>) -> String {
    tracing::info!("login attempt for {:?}", form.user);
    let stored: Option<(String,)> = sqlx::query_as("SELECT hash FROM users WHERE name = $1")
        .bind(&form.user)
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten();
    let Some((hash,)) = stored else {
        return "unknown user".into();
    };
    if !verify(&form.password, &hash) {
        return "wrong password".into();
    }
    let cookie = Cookie::build(("session", new_session_token()))
        .http_only(true)
        .path("/")
        .build();
    cookie.to_string()
}
