//! Webhook notifier: POSTs each notification as JSON to a URL, signed with HMAC-SHA256.
//!
//! The request body is the JSON of [`Notification`] (`user_id`, `title`, `body`, `data`); the
//! header `X-Goldjobs-Signature: sha256=<hex>` carries the HMAC-SHA256 of the exact body bytes
//! keyed with the shared secret. A receiver recomputes it over the raw body and compares in
//! constant time (see [`verify_signature`]).
//!
//! 2xx → delivered; 5xx, 429 and network errors/timeouts → temporary (the outbox retries);
//! other 4xx → permanent.

use async_trait::async_trait;
use goldjobs_core::{Error, Notification, Notifier, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

const BACKEND: &str = "webhook";

/// The signature header name.
pub const SIGNATURE_HEADER: &str = "X-Goldjobs-Signature";

/// Settings of the webhook notifier (`GOLDJOBS_WEBHOOK_URL`, `GOLDJOBS_WEBHOOK_SECRET`).
#[derive(Clone)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// The HMAC key; never logged.
    pub secret: String,
    /// Request timeout (default 10 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookConfig {
    /// A config with the default timeout.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            secret: secret.into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Sends notifications to a webhook.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    config: WebhookConfig,
}

impl WebhookNotifier {
    /// A notifier with its own HTTP client. The URL must be http(s).
    pub fn new(config: WebhookConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::backend(BACKEND, "cannot build HTTP client", Some(e.into())))?;
        Self::with_client(client, config)
    }

    /// A notifier sharing an existing client.
    pub fn with_client(client: reqwest::Client, config: WebhookConfig) -> Result<Self> {
        let url = url::Url::parse(&config.url)
            .map_err(|e| Error::invalid(format!("GOLDJOBS_WEBHOOK_URL {:?}: {e}", config.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid(format!(
                "GOLDJOBS_WEBHOOK_URL {:?}: expected an http or https URL",
                config.url
            )));
        }
        if config.secret.is_empty() {
            return Err(Error::invalid("GOLDJOBS_WEBHOOK_SECRET is empty"));
        }
        Ok(WebhookNotifier { client, config })
    }
}

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check a received signature header against the raw body, in constant time, as a receiver does.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        let body = serde_json::to_vec(notification)
            .map_err(|e| Error::invalid(format!("notification not serializable: {e}")))?;
        let signature = sign(self.config.secret.as_bytes(), &body);
        let response = self
            .client
            .post(&self.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Error::Timeout(self.config.timeout)
                } else {
                    Error::unavailable(BACKEND, "request failed", Some(e.without_url().into()))
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = format!("webhook answered HTTP {}", status.as_u16());
        if status.as_u16() == 429 {
            Err(Error::RateLimited {
                backend: BACKEND,
                message,
                retry_after,
            })
        } else if status.is_server_error() {
            Err(Error::unavailable(BACKEND, message, None))
        } else {
            Err(Error::backend(BACKEND, message, None))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_tamper() {
        let sig = sign(b"secret", b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert!(verify_signature(b"secret", b"{\"a\":1}", &sig));
        assert!(!verify_signature(b"secret", b"{\"a\":2}", &sig));
        assert!(!verify_signature(b"other", b"{\"a\":1}", &sig));
        assert!(!verify_signature(b"secret", b"{\"a\":1}", "sha1=00"));
        assert!(!verify_signature(b"secret", b"{\"a\":1}", "sha256=zz"));
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2.
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn config_validation_and_redaction() {
        assert!(WebhookNotifier::new(WebhookConfig::new("ftp://x", "s")).is_err());
        assert!(WebhookNotifier::new(WebhookConfig::new("not a url", "s")).is_err());
        assert!(WebhookNotifier::new(WebhookConfig::new("http://127.0.0.1:1/", "")).is_err());
        let c = WebhookConfig::new("http://127.0.0.1:1/", "topsecret");
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
