//! Webhook notifier: POSTs each notification as JSON to a URL, signed with HMAC-SHA256
//! (guide: *Configuration reference*).
//!
//! The request body is the JSON of [`Notification`] (`user_id`, `title`, `body`, `data`). Headers:
//! - `X-Goldjobs-Timestamp`: Unix seconds when the request was signed;
//! - `X-Goldjobs-Delivery`: an id of the delivery that stays the same across its retries (the
//!   outbox row), so a receiver can drop repeats;
//! - `X-Goldjobs-Signature: sha256=<hex>`: the HMAC-SHA256, keyed with the shared secret, of
//!   `"{timestamp}.{body}"` over the exact body bytes.
//!
//! A receiver recomputes the signature over the timestamp and the raw body, compares in constant
//! time and refuses timestamps too far from its clock, so a captured request cannot be replayed
//! later ([`verify_request`]). Redirects are never followed (a redirect would re-send the body
//! and its signature elsewhere); the URL, which may carry a token, is redacted in `Debug`, logs
//! and errors.
//!
//! 2xx → delivered; 5xx, 429 and network errors/timeouts → temporary (the outbox retries);
//! other 4xx and 3xx → permanent.

use super::NotifyError;
use async_trait::async_trait;
use goldjobs_core::{Error, Notification, Notifier, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

const BACKEND: &str = "webhook";

/// The signature header name.
pub const SIGNATURE_HEADER: &str = "X-Goldjobs-Signature";
/// The timestamp header name (Unix seconds, signed with the body).
pub const TIMESTAMP_HEADER: &str = "X-Goldjobs-Timestamp";
/// The delivery id header name (the same across retries of one delivery).
pub const DELIVERY_HEADER: &str = "X-Goldjobs-Delivery";

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
            .field("url", &redacted_url(&self.url))
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

/// The URL without what may be a secret: user info, path, query and fragment
/// (`https://hooks.example.com/…`).
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// Sends notifications to a webhook.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    config: WebhookConfig,
}

impl WebhookNotifier {
    /// A notifier with its own HTTP client, which follows no redirect. The URL must be
    /// http(s).
    pub fn new(config: WebhookConfig) -> Result<Self> {
        let url = url::Url::parse(&config.url)
            .map_err(|e| NotifyError::WebhookUrl(redacted_url(&config.url), e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NotifyError::WebhookScheme(redacted_url(&config.url)).into());
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::backend(BACKEND, "cannot build HTTP client", Some(e.into())))?;
        if config.secret.is_empty() {
            return Err(NotifyError::NoSecret.into());
        }
        Ok(WebhookNotifier { client, config })
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" keyed with secret>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Check a received signature header against the timestamp header's value and the raw body, in
/// constant time.
pub fn verify_signature(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&sig).is_ok()
}

/// What a receiver does with a request: the timestamp header must parse and lie within
/// `tolerance` of `now` (Unix seconds), and the signature must match. `false` for a replay of a
/// captured request after the tolerance, a tampered body or timestamp, or a wrong secret.
pub fn verify_request(
    secret: &[u8],
    timestamp_header: &str,
    body: &[u8],
    signature_header: &str,
    now: i64,
    tolerance: Duration,
) -> bool {
    let Ok(timestamp) = timestamp_header.trim().parse::<i64>() else {
        return false;
    };
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    now.checked_sub(timestamp)
        .is_some_and(|age| age.checked_abs().is_some_and(|a| a <= tolerance))
        && verify_signature(secret, timestamp, body, signature_header)
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        let body = serde_json::to_vec(notification).map_err(NotifyError::Body)?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(self.config.secret.as_bytes(), timestamp, &body);
        // Without an outbox row (a direct call), the body's digest names the delivery.
        let delivery = notification.delivery_id.clone().unwrap_or_else(|| {
            use sha2::Digest;
            format!("sha256-{}", &hex::encode(Sha256::digest(&body))[..32])
        });
        let response = self
            .client
            .post(&self.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(DELIVERY_HEADER, delivery)
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
        let retry_after = crate::headers::retry_after(response.headers());
        let message = format!(
            "webhook {} answered HTTP {}",
            redacted_url(&self.config.url),
            status.as_u16()
        );
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
        let sig = sign(b"secret", 1_700_000_000, b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert!(verify_signature(
            b"secret",
            1_700_000_000,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            b"secret",
            1_700_000_000,
            b"{\"a\":2}",
            &sig
        ));
        assert!(!verify_signature(
            b"secret",
            1_700_000_001,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            b"other",
            1_700_000_000,
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            b"secret",
            1_700_000_000,
            b"{\"a\":1}",
            "sha1=00"
        ));
        assert!(!verify_signature(
            b"secret",
            1_700_000_000,
            b"{\"a\":1}",
            "sha256=zz"
        ));
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2, with the message split as "{timestamp}.{body}".
        let sig = sign(b"Jefe", 0, b"what do ya want for nothing?");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        assert_eq!(
            sig,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
    }

    #[test]
    fn replays_outside_the_tolerance_are_refused() {
        let body = b"{}";
        let sig = sign(b"k", 1_000, body);
        let five_min = Duration::from_secs(300);
        assert!(verify_request(b"k", "1000", body, &sig, 1_100, five_min));
        assert!(
            !verify_request(b"k", "1000", body, &sig, 1_301, five_min),
            "replayed later"
        );
        assert!(
            !verify_request(b"k", "1001", body, &sig, 1_000, five_min),
            "timestamp changed"
        );
        assert!(!verify_request(b"k", "x", body, &sig, 1_000, five_min));
        assert!(!verify_request(
            b"k",
            "-9223372036854775808",
            body,
            &sig,
            i64::MAX,
            five_min
        ));
    }

    #[test]
    fn config_validation_and_redaction() {
        assert!(WebhookNotifier::new(WebhookConfig::new("ftp://x", "s")).is_err());
        assert!(WebhookNotifier::new(WebhookConfig::new("not a url", "s")).is_err());
        assert!(WebhookNotifier::new(WebhookConfig::new("http://127.0.0.1:1/", "")).is_err());
        let c = WebhookConfig::new("http://127.0.0.1:1/hook?token=t0ken", "topsecret");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("t0ken"),
            "{shown}"
        );
        assert_eq!(
            redacted_url("https://u:p@hooks.example.com:8443/a/b?c=d"),
            "https://hooks.example.com:8443/…"
        );
    }
}
