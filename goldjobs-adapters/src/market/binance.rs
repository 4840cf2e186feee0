//! Binance spot market data (crypto only): `/api/v3/ticker/24hr` for quotes (one request for all
//! symbols), `/api/v3/klines` for a historical 1-minute price.
//!
//! History follows the tick rule (CONTRACT.md §6.2): `price_at(symbol, at)` asks
//! `interval=1m&startTime=at&endTime=at+1min&limit=2` (unix milliseconds) and answers the **open**
//! of the first kline whose open time lies in `[at, at + 1 min]`, stamped with that open time; no
//! such kline → `Ok(None)`. Klines that start before `at` are never taken (their open is older
//! than `at`, their close up to a minute later than their stamp).
//!
//! Our `XXXUSD` codes map to Binance's `XXXUSDT` markets (`BTCUSD` ↔ `BTCUSDT`); codes of metals and
//! fiat currencies (`XAUUSD`, `EURUSD`, …) and anything not quoted in USD cannot be served and go
//! to the batch's failures. Quote fields: `price` = `lastPrice` (it must pass
//! [`goldjobs_core::validate_price`], > 0, else that symbol fails), `change` = `priceChange`,
//! `change_percent` = `priceChangePercent` (both against the price 24 hours ago, which is what
//! Binance offers), `timestamp` = `closeTime` (unix milliseconds). No arithmetic is done on
//! Binance's numbers; one that does not fit a `Decimal` (`"1e400"`) fails that symbol.
//!
//! Errors: HTTP 429 and 418 (IP ban) → [`Error::RateLimited`] honouring `Retry-After` seconds;
//! 5xx → [`Error::Unavailable`]; other statuses → [`Error::Backend`] with Binance's `msg`;
//! malformed bodies → [`Error::Backend`].

use super::http::{self, decimal_field, i64_field};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use goldjobs_core::{
    validate_price, Error, MarketData, PricePoint, Quote, QuoteBatch, Result, Symbol,
    SymbolFailure, HISTORY_WINDOW,
};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

const BACKEND: &str = "binance";

/// Default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.binance.com";

/// Bases that are not crypto assets (metals, fiat): Binance has no market for them.
const NOT_CRYPTO: &[&str] = &[
    "XAU", "XAG", "XPT", "XPD", "USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "CNY",
    "HKD", "SGD", "SEK", "NOK", "DKK", "MXN", "ZAR", "TRY", "INR", "KRW",
];

/// Configuration of the Binance client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinanceConfig {
    /// Base URL (`BINANCE_BASE_URL`), default [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// Timeout of each HTTP request, default 10 s.
    pub timeout: Duration,
}

impl Default for BinanceConfig {
    fn default() -> Self {
        BinanceConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl BinanceConfig {
    /// Set the base URL.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Set the request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The Binance client (public market data, no key).
pub struct BinanceMarketData {
    config: BinanceConfig,
    client: reqwest::Client,
}

impl fmt::Debug for BinanceMarketData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BinanceMarketData")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The Binance market of one of our codes: `BTCUSD` → `BTCUSDT`; `None` when Binance cannot serve it.
pub fn binance_symbol(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    let base = code
        .strip_suffix("USDT")
        .or_else(|| code.strip_suffix("USD"))?;
    if base.is_empty()
        || base.len() > 20
        || !base.bytes().all(|b| b.is_ascii_alphanumeric())
        || NOT_CRYPTO.contains(&base)
    {
        return None;
    }
    Some(format!("{base}USDT"))
}

impl BinanceMarketData {
    /// A client for this configuration.
    pub fn new(config: BinanceConfig) -> Result<Self> {
        let client = http::build_client(BACKEND, config.timeout)?;
        Ok(BinanceMarketData { config, client })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.base_url.trim_end_matches('/'), path)
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let timeout = self.config.timeout;
        let resp = self
            .client
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .map_err(|e| http::transport_error(BACKEND, e, timeout))?;
        let status = resp.status();
        let retry_after = http::retry_after(resp.headers());
        let body = http::read_body(BACKEND, resp, timeout).await?;
        if !status.is_success() {
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            let code = parsed
                .as_ref()
                .and_then(|v| v.get("code"))
                .and_then(Value::as_i64);
            let msg = parsed
                .as_ref()
                .and_then(|v| v.get("msg"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| http::snippet(&body));
            let message = match code {
                Some(c) => format!("HTTP {}: {msg} (code {c})", status.as_u16()),
                None => format!("HTTP {}: {msg}", status.as_u16()),
            };
            return Err(match status.as_u16() {
                429 | 418 => Error::RateLimited {
                    backend: BACKEND,
                    message,
                    retry_after,
                },
                500..=599 => Error::unavailable(BACKEND, message, None),
                _ => Error::backend(BACKEND, message, None),
            });
        }
        serde_json::from_slice::<Value>(&body).map_err(|e| {
            Error::backend(
                BACKEND,
                format!("malformed JSON from {path}: {e}"),
                Some(Box::new(e) as _),
            )
        })
    }
}

fn parse_ticker(code: &str, entry: &Value, fetched_at: DateTime<Utc>) -> Result<Quote> {
    let bad = |m: String| Error::backend(BACKEND, format!("{code}: {m}"), None);
    if !entry.is_object() {
        return Err(bad(format!(
            "ticker is {}, expected an object",
            http::json_type(entry)
        )));
    }
    let price = decimal_field(entry, "lastPrice")
        .map_err(bad)?
        .ok_or_else(|| bad("no lastPrice".to_owned()))?;
    validate_price(code, price)?;
    let change = decimal_field(entry, "priceChange")
        .map_err(bad)?
        .unwrap_or_default();
    let change_percent = decimal_field(entry, "priceChangePercent")
        .map_err(bad)?
        .unwrap_or_default();
    let timestamp = match i64_field(entry, "closeTime").map_err(bad)? {
        Some(ms) => Utc
            .timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| bad(format!("closeTime {ms} out of range")))?,
        None => fetched_at,
    };
    Ok(Quote {
        symbol_code: code.to_owned(),
        price,
        change,
        change_percent,
        timestamp,
        source: Some(BACKEND.to_owned()),
    })
}

#[async_trait]
impl MarketData for BinanceMarketData {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        let mut batch = QuoteBatch::default();
        let mut markets: Vec<String> = Vec::new();
        let mut codes_of: HashMap<String, Vec<&str>> = HashMap::new();
        for s in symbols {
            match binance_symbol(&s.code) {
                Some(m) => {
                    let codes = codes_of.entry(m.clone()).or_default();
                    if codes.is_empty() {
                        markets.push(m);
                    }
                    codes.push(&s.code);
                }
                None => batch.failures.push(SymbolFailure {
                    symbol_code: s.code.clone(),
                    error: Error::backend(
                        BACKEND,
                        format!("no Binance market for {} (crypto against USD only)", s.code),
                        None,
                    ),
                }),
            }
        }
        if markets.is_empty() {
            return Ok(batch);
        }
        let list = serde_json::to_string(&markets)
            .map_err(|e| Error::invalid(format!("symbols not serializable: {e}")))?;
        tracing::debug!(symbols = markets.len(), "binance: GET /api/v3/ticker/24hr");
        let fetched_at = Utc::now();
        let body = self
            .get_json("/api/v3/ticker/24hr", &[("symbols", &list)])
            .await?;
        let entries: Vec<&Value> = match &body {
            Value::Array(items) => items.iter().collect(),
            // Some gateways answer a single ticker as an object.
            Value::Object(_) => vec![&body],
            other => {
                return Err(Error::backend(
                    BACKEND,
                    format!(
                        "ticker answered {}, expected an array",
                        http::json_type(other)
                    ),
                    None,
                ))
            }
        };
        let mut by_market: HashMap<&str, &Value> = HashMap::new();
        for e in entries {
            if let Some(m) = e.get("symbol").and_then(Value::as_str) {
                by_market.insert(m, e);
            }
        }
        for m in &markets {
            for code in &codes_of[m] {
                let result = match by_market.get(m.as_str()) {
                    Some(entry) => parse_ticker(code, entry, fetched_at),
                    None => Err(Error::backend(
                        BACKEND,
                        format!("{m} missing from the ticker answer"),
                        None,
                    )),
                };
                match result {
                    Ok(q) => batch.quotes.push(q),
                    Err(error) => batch.failures.push(SymbolFailure {
                        symbol_code: (*code).to_owned(),
                        error,
                    }),
                }
            }
        }
        Ok(batch)
    }

    async fn price_at(&self, symbol: &Symbol, at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        let Some(market) = binance_symbol(&symbol.code) else {
            return Ok(None);
        };
        let Some(latest) = at.checked_add_signed(HISTORY_WINDOW) else {
            return Ok(None);
        };
        let start = at.timestamp_millis().to_string();
        let end = latest.timestamp_millis().to_string();
        tracing::debug!(symbol = %symbol.code, %start, "binance: GET /api/v3/klines");
        let body = match self
            .get_json(
                "/api/v3/klines",
                &[
                    ("symbol", market.as_str()),
                    ("interval", "1m"),
                    ("startTime", start.as_str()),
                    ("endTime", end.as_str()),
                    ("limit", HISTORY_LIMIT),
                ],
            )
            .await
        {
            Ok(b) => b,
            // Unknown market (-1121): no history to offer.
            Err(Error::Backend { message, .. }) if message.contains("code -1121") => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        first_kline_at_or_after(&symbol.code, at, &body)
    }
}

/// `limit` of a history request: the kline starting at or after `startTime` and the next one,
/// in case a server also answers the kline that contains `startTime`.
const HISTORY_LIMIT: &str = "2";

/// The open of the first 1-minute kline that starts in `[at, at + HISTORY_WINDOW]`, stamped with
/// its open time (CONTRACT.md §6.2); `None` when none starts there. A row that is not
/// `[openTime, "open", …]`, or a chosen kline without a positive open, makes the answer
/// malformed.
fn first_kline_at_or_after(
    code: &str,
    at: DateTime<Utc>,
    body: &Value,
) -> Result<Option<PricePoint>> {
    let bad = |m: String| Error::backend(BACKEND, format!("{code}: klines: {m}"), None);
    let Value::Array(rows) = body else {
        return Err(bad(format!(
            "answered {}, expected an array",
            http::json_type(body)
        )));
    };
    let latest = at.checked_add_signed(HISTORY_WINDOW);
    let mut first: Option<(DateTime<Utc>, &Value)> = None;
    for row in rows {
        // [openTime, open, high, low, close, volume, closeTime, ...]
        let Value::Array(cols) = row else {
            return Err(bad("a kline is not an array".to_owned()));
        };
        let open_time = cols
            .first()
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("a kline has no open time".to_owned()))?;
        let start = Utc
            .timestamp_millis_opt(open_time)
            .single()
            .ok_or_else(|| bad(format!("open time {open_time} out of range")))?;
        let in_window = start >= at && latest.is_none_or(|l| start <= l);
        if in_window && first.is_none_or(|(t, _)| start < t) {
            first = Some((start, row));
        }
    }
    let Some((ts, row)) = first else {
        return Ok(None);
    };
    let price = match row.get(1) {
        Some(Value::String(s)) => http::parse_decimal(s)
            .ok_or_else(|| bad(format!("open price {s:?} is not a decimal number")))?,
        _ => return Err(bad("the kline has no open price".to_owned())),
    };
    validate_price(code, price)?;
    Ok(Some(PricePoint {
        price,
        ts,
        source: Some(BACKEND.to_owned()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_mapping() {
        assert_eq!(binance_symbol("BTCUSD").as_deref(), Some("BTCUSDT"));
        assert_eq!(binance_symbol("ethusd").as_deref(), Some("ETHUSDT"));
        assert_eq!(binance_symbol("BTCUSDT").as_deref(), Some("BTCUSDT"));
        assert_eq!(binance_symbol("XAUUSD"), None);
        assert_eq!(binance_symbol("EURUSD"), None);
        assert_eq!(binance_symbol("USDJPY"), None);
        assert_eq!(binance_symbol("USD"), None);
        assert_eq!(binance_symbol("B-TCUSD"), None);
    }
}
