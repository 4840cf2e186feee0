//! HTTP response headers every HTTP adapter reads the same way.

use std::time::Duration;

/// `Retry-After` in seconds (the form the providers, FCM and feed servers send); `None` when
/// absent or in the HTTP-date form.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
