//! Binance spot market data (crypto only): `/api/v3/ticker/24hr` for quotes (one request for all
//! symbols), `/api/v3/klines` for a historical 1-minute price.
//!
//! History follows the tick rule (guide: *How the price at verify time is chosen*):
//! `price_at(symbol, at)` asks `interval=1m&startTime=at&endTime=at+1min&limit=2` (unix
//! milliseconds) and answers the **open** of the first kline whose open time lies in `[at, at + 1
//! min]`, stamped with that open time; no such kline → `Ok(None)`. Klines that start before `at`
//! are never taken (their open is older than `at`, their close up to a minute later than their
//! stamp).
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
//!
//! After a 429 or 418 the client keeps a circuit open until `Retry-After` has passed (60 s, or
//! 5 min after a 418, when Binance says nothing), across calls: every request in that time is
//! answered locally with [`Error::RateLimited`] and the remaining wait, never sent — Binance
//! escalates ignored limits to IP bans.
//!
//! An unknown market (error `-1121`) fails the whole batched ticker request; the client then asks
//! each market alone, so only the unknown one fails, and remembers it for an hour so later
//! batches leave it out.

use super::http::{self, decimal_field, i64_field};
use super::MarketError;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use goldjobs_core::{
    validate_price, Error, MarketData, PricePoint, Quote, QuoteBatch, Result, Symbol,
    SymbolFailure, HISTORY_WINDOW,
};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const BACKEND: &str = "binance";
/// The circuit after a 429 without `Retry-After`.
const DEFAULT_BACKOFF_429: Duration = Duration::from_secs(60);
/// The circuit after a 418 (IP ban) without `Retry-After`.
const DEFAULT_BACKOFF_418: Duration = Duration::from_secs(300);
/// How long a market Binance called unknown (`-1121`) is left out of batches.
const UNKNOWN_MARKET_TTL: Duration = Duration::from_secs(3600);
/// Binance's error code of an unknown market.
const INVALID_SYMBOL: i64 = -1121;

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
    /// No request before this instant (after a 429/418).
    blocked_until: Mutex<Option<Instant>>,
    /// Markets Binance called unknown, until when they are left out.
    unknown: Mutex<HashMap<String, Instant>>,
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
        Ok(BinanceMarketData {
            config,
            client,
            blocked_until: Mutex::new(None),
            unknown: Mutex::new(HashMap::new()),
        })
    }

    /// `Some(wait)` while the circuit is open.
    fn blocked(&self) -> Option<Duration> {
        let guard = self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
        guard.and_then(|until| {
            let now = Instant::now();
            (now < until).then(|| until - now)
        })
    }

    fn open_circuit(&self, wait: Duration) {
        let until = Instant::now().checked_add(wait);
        let mut guard = self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
        *guard = match (*guard, until) {
            (Some(old), Some(new)) => Some(old.max(new)),
            (_, new) => new.or(*guard),
        };
    }

    fn is_unknown(&self, market: &str) -> bool {
        let mut unknown = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        unknown.retain(|_, until| *until > now);
        unknown.contains_key(market)
    }

    fn remember_unknown(&self, market: &str) {
        if let Some(until) = Instant::now().checked_add(UNKNOWN_MARKET_TTL) {
            self.unknown
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(market.to_owned(), until);
        }
    }

    /// The 24 h tickers of `markets`, by market: one batched request; when Binance refuses the
    /// batch for an unknown market, one request per market, so only that one fails.
    async fn tickers(&self, markets: &[String]) -> Result<HashMap<String, Result<Value>>> {
        let list = serde_json::to_string(markets).map_err(MarketError::SymbolList)?;
        tracing::debug!(symbols = markets.len(), "binance: GET /api/v3/ticker/24hr");
        match self
            .get_json("/api/v3/ticker/24hr", &[("symbols", &list)])
            .await
        {
            Ok(body) => {
                let entries: Vec<Value> = match body {
                    Value::Array(items) => items,
                    // Some gateways answer a single ticker as an object.
                    obj @ Value::Object(_) => vec![obj],
                    other => {
                        return Err(Error::backend(
                            BACKEND,
                            format!(
                                "ticker answered {}, expected an array",
                                http::json_type(&other)
                            ),
                            None,
                        ))
                    }
                };
                let mut by_market = HashMap::new();
                for e in entries {
                    if let Some(m) = e.get("symbol").and_then(Value::as_str) {
                        by_market.insert(m.to_owned(), Ok(e.clone()));
                    }
                }
                Ok(by_market)
            }
            Err(e) if is_invalid_symbol(&e) && markets.len() == 1 => {
                self.remember_unknown(&markets[0]);
                Ok(HashMap::from([(markets[0].clone(), Err(e))]))
            }
            Err(e) if is_invalid_symbol(&e) => {
                let mut by_market = HashMap::new();
                for m in markets {
                    let one = self
                        .get_json("/api/v3/ticker/24hr", &[("symbol", m.as_str())])
                        .await;
                    match one {
                        Err(e) if is_invalid_symbol(&e) => {
                            tracing::warn!(market = %m, "binance does not know this market; left out for an hour");
                            self.remember_unknown(m);
                            by_market.insert(m.clone(), Err(e));
                        }
                        // A limit or an outage stops the round: the rest would fare the same.
                        Err(e) if e.is_temporary() => return Err(e),
                        other => {
                            by_market.insert(m.clone(), other);
                        }
                    }
                }
                Ok(by_market)
            }
            Err(e) => Err(e),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.base_url.trim_end_matches('/'), path)
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        if let Some(wait) = self.blocked() {
            return Err(Error::RateLimited {
                backend: BACKEND,
                message: "rate limited by Binance earlier; not asking again yet".to_owned(),
                retry_after: Some(wait),
            });
        }
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
                s @ (429 | 418) => {
                    let default = if s == 418 {
                        DEFAULT_BACKOFF_418
                    } else {
                        DEFAULT_BACKOFF_429
                    };
                    let wait = retry_after.unwrap_or(default);
                    self.open_circuit(wait);
                    Error::RateLimited {
                        backend: BACKEND,
                        message,
                        retry_after: Some(wait),
                    }
                }
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
        // Markets Binance said it does not know are left out for a while.
        markets.retain(|m| {
            if !self.is_unknown(m) {
                return true;
            }
            for code in &codes_of[m] {
                batch.failures.push(SymbolFailure {
                    symbol_code: (*code).to_owned(),
                    error: Error::backend(
                        BACKEND,
                        format!("Binance does not know the market {m} (code {INVALID_SYMBOL})"),
                        None,
                    ),
                });
            }
            false
        });
        if markets.is_empty() {
            return Ok(batch);
        }
        let fetched_at = Utc::now();
        let by_market = self.tickers(&markets).await?;
        for m in &markets {
            for code in &codes_of[m] {
                let result = match by_market.get(m.as_str()) {
                    Some(Ok(entry)) => parse_ticker(code, entry, fetched_at),
                    Some(Err(e)) => Err(Error::backend(BACKEND, e.to_string(), None)),
                    None => Err(Error::backend(
                        BACKEND,
                        format!("{m} missing from the ticker answer"),
                        None,
                    )),
                };
                batch.record(code, result);
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
/// its open time (guide: *How the price at verify time is chosen*); `None` when none starts there.
/// A row that is not `[openTime, "open", …]`, or a chosen kline without a positive open, makes the
/// answer malformed.
/// Whether Binance refused the request for an unknown market (`-1121`).
fn is_invalid_symbol(e: &Error) -> bool {
    matches!(e, Error::Backend { message, .. } if message.contains(&format!("(code {INVALID_SYMBOL})")))
}

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
