//! Configuration from the environment; no secret lives in the source.

use anyhow::Context as _;

pub struct Config {
    pub database_url: String,
    pub listen: String,
    pub partner_token: String,
}

/// The variable that holds the partner API token.
pub const PARTNER_TOKEN_ENV: &str = "SHOP_PARTNER_TOKEN";

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        let database_url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
        let listen = std::env::var("SHOP_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
        let partner_token = std::env::var(PARTNER_TOKEN_ENV).context("partner token not set")?;
        tracing::debug!("configuration loaded (token of {} bytes)", partner_token.len());
        Ok(Config {
            database_url,
            listen,
            partner_token,
        })
    }
}
