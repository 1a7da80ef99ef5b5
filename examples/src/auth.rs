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
    session_cookie(new_session_token()).to_string()
}

/// The session cookie: readable by the server only.
pub fn session_cookie(token: String) -> Cookie<'static> {
    Cookie::build(("session", token))
        .http_only(true)
        .path("/")
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_digest_is_the_md5_hex_of_the_password() {
        assert_eq!(legacy_digest("password"), "5f4dcc3b5aa765d61d8327deb882cf99");
    }

    #[test]
    fn session_tokens_are_32_alphanumeric_characters_and_differ() {
        let (a, b) = (new_session_token(), new_session_token());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_session_cookie_is_http_only_for_the_whole_site() {
        let cookie = session_cookie("t0k3n".into());
        assert_eq!((cookie.name(), cookie.value()), ("session", "t0k3n"));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.path(), Some("/"));
    }

    #[test]
    fn a_stored_value_that_is_not_a_password_hash_never_verifies() {
        assert!(!verify("password", "5f4dcc3b5aa765d61d8327deb882cf99"));
    }
}
