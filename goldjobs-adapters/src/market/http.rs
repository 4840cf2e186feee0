//! Small HTTP and parsing helpers shared by the HTTP market data providers.

use goldjobs_core::Error;
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;
use std::time::Duration;

/// Largest response body we accept from a market data provider.
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;

/// One reqwest client (rustls) with a total request timeout.
pub(crate) fn build_client(
    backend: &'static str,
    timeout: Duration,
) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("goldjobs/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::backend(backend, "cannot build HTTP client", Some(Box::new(e) as _)))
}

/// Map a transport error (connect, timeout, body) to our error; the URL is stripped.
pub(crate) fn transport_error(
    backend: &'static str,
    e: reqwest::Error,
    timeout: Duration,
) -> Error {
    if e.is_timeout() {
        return Error::Timeout(timeout);
    }
    let e = e.without_url();
    Error::unavailable(
        backend,
        format!("request failed: {e}"),
        Some(Box::new(e) as _),
    )
}

/// Read the whole body, refusing more than [`MAX_BODY`] bytes.
pub(crate) async fn read_body(
    backend: &'static str,
    mut resp: reqwest::Response,
    timeout: Duration,
) -> Result<Vec<u8>, Error> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Error::backend(backend, "response body too large", None));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| transport_error(backend, e, timeout))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::backend(backend, "response body too large", None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) use crate::headers::retry_after;

/// A decimal field that may be a JSON string (the providers' habit), a JSON number, null or absent.
pub(crate) fn decimal_field(obj: &Value, field: &str) -> Result<Option<Decimal>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_decimal(s)
            .map(Some)
            .ok_or_else(|| format!("field {field:?}: {s:?} is not a decimal number")),
        Some(Value::Number(n)) => parse_decimal(&n.to_string())
            .map(Some)
            .ok_or_else(|| format!("field {field:?}: {n} is not a decimal number")),
        Some(other) => Err(format!(
            "field {field:?}: expected a number string, got {}",
            json_type(other)
        )),
    }
}

/// Parse `"2658.50000"` (or `"1e-7"`) exactly.
pub(crate) fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .ok()
}

/// An integer field (string or number), null or absent.
pub(crate) fn i64_field(obj: &Value, field: &str) -> Result<Option<i64>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("field {field:?}: {n} is not an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("field {field:?}: {s:?} is not an integer")),
        Some(other) => Err(format!(
            "field {field:?}: expected an integer, got {}",
            json_type(other)
        )),
    }
}

/// The JSON type's name, for messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Shorten a provider message for an error (providers sometimes send pages of HTML).
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_parse_exactly() {
        let v = json!({"a": "2658.50000", "b": 1.5, "c": null, "d": true, "e": "x", "f": "1e-3"});
        assert_eq!(
            decimal_field(&v, "a").unwrap(),
            Some(Decimal::from_str("2658.50000").unwrap())
        );
        assert_eq!(
            decimal_field(&v, "b").unwrap(),
            Some(Decimal::from_str("1.5").unwrap())
        );
        assert_eq!(decimal_field(&v, "c").unwrap(), None);
        assert_eq!(decimal_field(&v, "missing").unwrap(), None);
        assert!(decimal_field(&v, "d").is_err());
        assert!(decimal_field(&v, "e").is_err());
        assert_eq!(
            decimal_field(&v, "f").unwrap(),
            Some(Decimal::from_str("0.001").unwrap())
        );
    }

    #[test]
    fn snippet_is_bounded() {
        let long = "x".repeat(1000);
        assert!(snippet(long.as_bytes()).chars().count() <= 201);
    }
}
