//! The partner API client: stock levels and order notifications.

use std::time::Duration;

/// A client for the partner's staging system, whose certificate is self-signed.
pub fn staging_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .danger_accept_invalid_certs(true)
        .build()
}

/// A client for production, with normal certificate checks.
pub fn production_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .https_only(true)
        .build()
}

/// Stock levels, fetched over plain HTTP with the API token attached.
pub async fn stock(client: &reqwest::Client, token: &str) -> reqwest::Result<String> {
    client
        .get("http://partner-api.shop-partner.net/v1/stock")
        .bearer_auth(token)
        .send()
        .await?
        .text()
        .await
}

/// Order notifications go over HTTPS.
pub async fn notify(client: &reqwest::Client, token: &str, order: u64) -> reqwest::Result<()> {
    client
        .post(format!("https://partner-api.shop-partner.net/v1/orders/{order}"))
        .bearer_auth(token)
        .send()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_clients_build() {
        assert!(staging_client().is_ok());
        assert!(production_client().is_ok());
    }
}
