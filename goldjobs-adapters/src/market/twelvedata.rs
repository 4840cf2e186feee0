//! Twelve Data (<https://twelvedata.com>) market data: `/quote` for the latest quotes (one batched
//! request per call), `/time_series` for a historical 1-minute price.
//!
//! # History
//!
//! `price_at(symbol, at)` follows the tick rule (guide: *How the price at verify time is chosen*):
//! the **open** of the first 1-minute candle that **starts** in `[at, at + 1 min]`, stamped with
//! that start; none → `Ok(None)`. The request is
//! `/time_series?interval=1min&timezone=UTC&order=asc` with `start_date = at − 1 min`, `end_date =
//! at + 2 min` and `outputsize=5`: one minute of margin on either side and room for every candle of
//! that range, so the answer holds the candles the rule needs whether the provider's bounds are
//! inclusive or exclusive and whichever end it truncates; the rule itself is applied here, on the
//! candles' `datetime`s, in any order. Without `timezone=UTC` those datetimes would be
//! exchange-local; with it they are UTC in the documented intraday form `YYYY-MM-DD HH:MM:SS` (a
//! candle in another form makes the answer malformed). "No data is available on the specified
//! dates" (code 400) and an empty `values` → `Ok(None)`. One credit per request.
//!
//! # Wire shapes handled
//!
//! * Numbers arrive as strings (`"2658.50000"`) and are parsed straight into `Decimal`; JSON
//!   numbers are accepted too. Any field may be null.
//! * A request for one symbol answers with the quote object itself; a request for several
//!   (comma-separated `symbol`) answers with an object keyed by the provider symbol, and each entry
//!   may be an error object of its own (that symbol goes to [`QuoteBatch::failures`]).
//! * Errors come as HTTP statuses **and** as `{"code":…,"message":…,"status":"error"}` bodies with
//!   HTTP 200. Codes 429 → [`Error::RateLimited`], 5xx → [`Error::Unavailable`] (both temporary),
//!   everything else (401, 403, 404, …) → permanent [`Error::Backend`] with the provider's message.
//!   Malformed bodies (truncated JSON, wrong types) → [`Error::Backend`], never a panic.
//!
//! # Quote fields
//!
//! * `price` = `close` (or `price`, the `/price` endpoint's field) — required, and it must pass
//!   [`goldjobs_core::validate_price`] (> 0); otherwise that symbol fails.
//! * `change` = `change`; when null, `close − previous_close`; when that is unknown too, `0`.
//! * `change_percent` = `percent_change`; when null, `(close − previous_close) / previous_close ×
//!   100` rounded to 5 places (the provider's precision); when unknown, `0`. A `previous_close`
//!   that is not positive counts as unknown.
//! * Every computation on the provider's numbers is checked: a value out of `Decimal`'s range
//!   (e.g. `close` near 7.9 × 10²⁸ against a `previous_close` of 10⁻²⁸) fails that symbol with an
//!   [`Error::Backend`], never the batch and never with a panic. Numbers that do not fit a
//!   `Decimal` at all (`"1e400"`) fail that symbol the same way.
//! * `timestamp` = `last_quote_at` (unix seconds of the last minute candle, the freshest instant the
//!   provider gives), else `timestamp` (unix seconds of the current candle — the *day's* open for a
//!   daily quote), else `datetime` (`YYYY-MM-DD[ HH:MM:SS]`, UTC), else the time of the fetch.
//!   The freshest instant is preferred because recorded ticks are matched against prediction
//!   verification times.
//!
//! # Credit budget
//!
//! Every symbol asked costs one credit, batched or not, and so does every history request. The
//! client keeps a sliding 60-second window of credits it spent (measured with
//! `tokio::time::Instant`) and **never** spends more than `credits_per_minute` in any window.
//!
//! **History reserve.** The price job asks every few seconds and would take each credit the
//! instant it frees, so a history request of the verifier (a few round trips later) would always
//! find the window full — and after a downtime, when the verifier needs history, wait forever.
//! So `quotes()` may spend at most `credits_per_minute − history_reserve` in any window
//! ([`TwelveDataConfig::history_reserve`], default [`DEFAULT_HISTORY_RESERVE`] = 2, at most
//! `credits_per_minute − 1` so that quotes always get a credit), while `price_at` may spend any
//! free credit. Whatever the price job does, `history_reserve` credits per minute stay for
//! history. At the default plan (8 credits) and the default 6 symbols that leaves 6 for quotes:
//! every symbol once a minute, and 2 history requests a minute.
//!
//! When a `quotes()` call would exceed its share, the client asks only as many symbols as still
//! fit, rotating the starting point between calls so that every symbol gets its turn; the symbols
//! left out go to `failures` as [`Error::RateLimited`] with the wait until enough credits free
//! up. When not a single credit of its share is free the whole call is an [`Error::RateLimited`]
//! with that wait (no request is made); so is a `price_at` call when no credit at all is free.
//! Credits are spent when the request is sent and not given back on failure (the provider may
//! have counted them).

use super::http::{self, decimal_field, i64_field};
use super::MarketError;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use goldjobs_core::{
    validate_price, Error, MarketData, PricePoint, Quote, QuoteBatch, Result, Symbol,
    SymbolFailure, HISTORY_WINDOW,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const BACKEND: &str = "twelvedata";
/// The length of the provider's credit window.
const WINDOW: Duration = Duration::from_secs(60);

/// Default base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.twelvedata.com";

/// Default [`TwelveDataConfig::history_reserve`]: credits per minute that quotes never take.
pub const DEFAULT_HISTORY_RESERVE: u32 = 2;

/// Configuration of the Twelve Data client.
///
/// `Debug` never shows the API key.
#[derive(Clone, PartialEq, Eq)]
pub struct TwelveDataConfig {
    /// The API key, sent as header `Authorization: apikey KEY` (never in URLs or logs).
    pub api_key: String,
    /// Base URL, default [`DEFAULT_BASE_URL`] (tests point it at a local server).
    pub base_url: String,
    /// Plan limit: credits (= symbols asked) per 60 seconds, default 8.
    pub credits_per_minute: u32,
    /// Credits of every 60-second window that `quotes()` never spends, kept for `price_at`
    /// (history for the verifier), default [`DEFAULT_HISTORY_RESERVE`]; at most
    /// `credits_per_minute − 1` takes effect (see the module docs).
    pub history_reserve: u32,
    /// Timeout of each HTTP request (connect + answer), default 10 s.
    pub timeout: Duration,
}

impl Default for TwelveDataConfig {
    fn default() -> Self {
        TwelveDataConfig {
            api_key: String::new(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            credits_per_minute: 8,
            history_reserve: DEFAULT_HISTORY_RESERVE,
            timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for TwelveDataConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwelveDataConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("credits_per_minute", &self.credits_per_minute)
            .field("history_reserve", &self.history_reserve)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TwelveDataConfig {
    /// Defaults with this API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        TwelveDataConfig {
            api_key: api_key.into(),
            ..Default::default()
        }
    }

    /// Set the base URL.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Set the credits per minute.
    pub fn with_credits_per_minute(mut self, credits: u32) -> Self {
        self.credits_per_minute = credits;
        self
    }

    /// Set the credits per minute kept for history requests (see the module docs).
    pub fn with_history_reserve(mut self, credits: u32) -> Self {
        self.history_reserve = credits;
        self
    }

    /// Set the request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The reserve that takes effect: `history_reserve`, but at most `credits_per_minute − 1`.
    pub fn effective_history_reserve(&self) -> u32 {
        self.history_reserve
            .min(self.credits_per_minute.saturating_sub(1))
    }

    /// Credits per minute that `quotes()` may spend: `credits_per_minute` minus the
    /// [effective reserve](Self::effective_history_reserve).
    pub fn quote_credits_per_minute(&self) -> u32 {
        self.credits_per_minute - self.effective_history_reserve()
    }
}

/// Whether fetching `symbols` quotes every `interval` fits the plan's `credits_per_minute` less
/// the `history_reserve` kept for history requests (what `quotes()` may spend, see the module
/// docs; the reserve is clamped as [`TwelveDataConfig::effective_history_reserve`] does).
///
/// `None` when it fits; otherwise a warning for the server to log at start, saying which interval
/// would fit (or that the plan cannot serve that many symbols in one minute at all).
pub fn check_budget(
    interval: Duration,
    symbols: usize,
    credits_per_minute: u32,
    history_reserve: u32,
) -> Option<String> {
    if symbols == 0 {
        return None;
    }
    let config = TwelveDataConfig::default()
        .with_credits_per_minute(credits_per_minute)
        .with_history_reserve(history_reserve);
    let reserve = config.effective_history_reserve();
    let quota = config.quote_credits_per_minute();
    let share = format!(
        "quotes may use {quota} ({credits_per_minute} of the plan minus {reserve} kept for \
         history requests)"
    );
    let symbols_u64 = symbols as u64;
    let interval_ms = interval.as_millis().max(1);
    // Runs that start inside one sliding 60-second window.
    let runs = 60_000u128.div_ceil(interval_ms) as u64;
    let needed = symbols_u64.saturating_mul(runs);
    let limit = u64::from(quota);
    if needed <= limit {
        return None;
    }
    let runs_allowed = limit / symbols_u64;
    if runs_allowed == 0 {
        return Some(format!(
            "Twelve Data budget: {symbols} symbols need {symbols} credits per call but {share} \
             per minute; each call will ask only {quota} symbols (rotating) and the others keep \
             their last value — raise TWELVEDATA_CREDITS_PER_MINUTE or add a fallback provider"
        ));
    }
    // One more second of slack for timing jitter between runs.
    let fit_secs = 60u64.div_ceil(runs_allowed) + 1;
    Some(format!(
        "Twelve Data budget: {symbols} symbols every {} need {needed} credits per minute but \
         {share}; calls over budget will be partial or rate limited — set \
         GOLDJOBS_PRICE_INTERVAL to at least {fit_secs}s to fit",
        humanize(interval)
    ))
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Credits spent in the last 60 seconds.
#[derive(Debug)]
pub(crate) struct CreditBudget {
    limit: u32,
    spent: VecDeque<(Instant, u32)>,
}

impl CreditBudget {
    pub(crate) fn new(limit: u32) -> Self {
        CreditBudget {
            limit,
            spent: VecDeque::new(),
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&(at, _)) = self.spent.front() {
            if now.saturating_duration_since(at) >= WINDOW {
                self.spent.pop_front();
            } else {
                break;
            }
        }
    }

    /// Credits that may be spent at `now`.
    pub(crate) fn available(&mut self, now: Instant) -> u32 {
        self.prune(now);
        let used: u32 = self.spent.iter().map(|&(_, n)| n).sum();
        self.limit.saturating_sub(used)
    }

    /// Spend `n` credits at `now` (callers check [`Self::available`] first).
    pub(crate) fn spend(&mut self, now: Instant, n: u32) {
        if n > 0 {
            self.spent.push_back((now, n));
        }
    }

    /// How long until `n` credits are available; `None` if never (`n > limit`).
    pub(crate) fn wait_for(&mut self, now: Instant, n: u32) -> Option<Duration> {
        if n > self.limit {
            return None;
        }
        let mut available = self.available(now);
        if available >= n {
            return Some(Duration::ZERO);
        }
        for &(at, credits) in &self.spent {
            available += credits;
            if available >= n {
                return Some((at + WINDOW).saturating_duration_since(now));
            }
        }
        Some(WINDOW)
    }
}

#[derive(Debug)]
struct BudgetState {
    budget: CreditBudget,
    /// Where the next partial call starts, so that every symbol gets its turn.
    cursor: usize,
}

/// The Twelve Data client. One shared `reqwest::Client`; cheap to share behind an `Arc`.
pub struct TwelveDataMarketData {
    config: TwelveDataConfig,
    client: reqwest::Client,
    auth: reqwest::header::HeaderValue,
    state: Mutex<BudgetState>,
}

impl fmt::Debug for TwelveDataMarketData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwelveDataMarketData")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a `/quote` answer was, before it is split per symbol.
enum Answer {
    /// One quote object (single-symbol form).
    Single(Value),
    /// Entries keyed by provider symbol.
    Keyed(Map<String, Value>),
}

impl TwelveDataMarketData {
    /// A client for this configuration.
    pub fn new(config: TwelveDataConfig) -> Result<Self> {
        if config.api_key.trim().is_empty() {
            return Err(MarketError::NoApiKey.into());
        }
        let mut auth =
            reqwest::header::HeaderValue::from_str(&format!("apikey {}", config.api_key))
                .map_err(|_| MarketError::ApiKeyChars)?;
        auth.set_sensitive(true);
        let client = http::build_client(BACKEND, config.timeout)?;
        let state = Mutex::new(BudgetState {
            budget: CreditBudget::new(config.credits_per_minute),
            cursor: 0,
        });
        Ok(TwelveDataMarketData {
            config,
            client,
            auth,
            state,
        })
    }

    /// The configuration (the key stays redacted in `Debug`).
    pub fn config(&self) -> &TwelveDataConfig {
        &self.config
    }

    /// Credits of the window still free now, the history reserve included (for status pages and
    /// tests): `price_at` may spend all of them, `quotes()` all but the reserve.
    pub fn credits_available(&self) -> u32 {
        self.lock().budget.available(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.config.base_url.trim_end_matches('/'), path)
    }

    /// Reserve credits of the quotes' share for `wanted` provider symbols: returns the indices
    /// to ask now and, for the others, how long until enough credits free up. The last
    /// [`TwelveDataConfig::effective_history_reserve`] credits of the window are never taken.
    fn reserve(&self, wanted: usize) -> Result<(Vec<usize>, Option<Duration>)> {
        let reserve = self.config.effective_history_reserve();
        let quota = self.config.quote_credits_per_minute();
        let mut state = self.lock();
        let now = Instant::now();
        let available = state.budget.available(now).saturating_sub(reserve) as usize;
        if available == 0 {
            let wait = state.budget.wait_for(now, reserve.saturating_add(1));
            return Err(Error::RateLimited {
                backend: BACKEND,
                message: format!(
                    "the quotes' share of the credit budget ({quota} of {} per minute, {reserve} \
                     kept for history) is spent; not asking for {wanted} symbol(s)",
                    self.config.credits_per_minute
                ),
                retry_after: wait,
            });
        }
        if available >= wanted {
            state.budget.spend(now, wanted as u32);
            return Ok(((0..wanted).collect(), None));
        }
        let start = state.cursor % wanted;
        let picked: Vec<usize> = (0..available).map(|i| (start + i) % wanted).collect();
        state.cursor = (start + available) % wanted;
        state.budget.spend(now, available as u32);
        let rest = (wanted - available).min(quota as usize) as u32;
        let wait = state
            .budget
            .wait_for(now, rest.max(1).saturating_add(reserve));
        Ok((picked, wait))
    }

    /// Reserve one credit for a history request of `code`: any free credit, the reserve
    /// included.
    fn reserve_history(&self, code: &str) -> Result<()> {
        let mut state = self.lock();
        let now = Instant::now();
        if state.budget.available(now) == 0 {
            let wait = state.budget.wait_for(now, 1);
            return Err(Error::RateLimited {
                backend: BACKEND,
                message: format!(
                    "credit budget of {} per minute spent; not asking for the history of {code}",
                    self.config.credits_per_minute
                ),
                retry_after: wait,
            });
        }
        state.budget.spend(now, 1);
        Ok(())
    }

    /// The provider says we ran out of credits (its count can differ from ours, e.g. another
    /// client shares the key): treat the window as full so the next calls wait instead of
    /// hammering it. The wait is the provider's `Retry-After` or, else, until our oldest spending
    /// leaves the window.
    fn exhaust(&self, retry_after: Option<Duration>) -> Option<Duration> {
        let mut state = self.lock();
        let now = Instant::now();
        let left = state.budget.available(now);
        state.budget.spend(now, left);
        retry_after.or_else(|| state.budget.wait_for(now, 1))
    }

    /// GET with the auth header; returns the parsed JSON body. HTTP errors and an in-body
    /// `429` also mark the credit window full (see [`Self::exhaust`]).
    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        match self.get_json_once(path, query).await {
            Err(Error::RateLimited {
                backend,
                message,
                retry_after,
            }) => Err(Error::RateLimited {
                backend,
                message,
                retry_after: self.exhaust(retry_after),
            }),
            other => other,
        }
    }

    async fn get_json_once(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let timeout = self.config.timeout;
        let resp = self
            .client
            .get(self.url(path))
            .query(query)
            .header(reqwest::header::AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| http::transport_error(BACKEND, e, timeout))?;
        let status = resp.status();
        let retry_after = http::retry_after(resp.headers());
        let body = http::read_body(BACKEND, resp, timeout).await?;
        if !status.is_success() {
            let message = provider_message(&body);
            let code = i64::from(status.as_u16());
            return Err(match classify(code, &message) {
                Error::RateLimited {
                    backend, message, ..
                } => Error::RateLimited {
                    backend,
                    message,
                    retry_after,
                },
                other => other,
            });
        }
        let value = serde_json::from_slice::<Value>(&body).map_err(|e| {
            Error::backend(
                BACKEND,
                format!("malformed JSON from /{path}: {e}"),
                Some(Box::new(e) as _),
            )
        })?;
        // `{"code":…,"message":…,"status":"error"}` with HTTP 200.
        if let Value::Object(obj) = &value {
            if let Some(err) = body_error(obj) {
                return Err(err);
            }
        }
        Ok(value)
    }

    async fn fetch_quotes(&self, asked: &[&str]) -> Result<Answer> {
        let joined = asked.join(",");
        tracing::debug!(symbols = asked.len(), "twelvedata: GET /quote");
        let body = self.get_json("quote", &[("symbol", &joined)]).await?;
        let Value::Object(obj) = body else {
            return Err(Error::backend(
                BACKEND,
                format!(
                    "/quote answered {}, expected an object",
                    http::json_type(&body)
                ),
                None,
            ));
        };
        if asked.len() == 1 {
            // The single form is the quote itself; accept the keyed form too.
            if let Some(Value::Object(entry)) = obj.get(asked[0]) {
                if !obj.contains_key("close") && !obj.contains_key("price") {
                    return Ok(Answer::Single(Value::Object(entry.clone())));
                }
            }
            return Ok(Answer::Single(Value::Object(obj)));
        }
        Ok(Answer::Keyed(obj))
    }
}

/// A symbol left out of a partial call: the quotes' share of the window is spent.
fn rate_limited_locally(wait: Option<Duration>, code: &str, quota: u32) -> Error {
    Error::RateLimited {
        backend: BACKEND,
        message: format!(
            "{code}: the quotes' share of the credit budget ({quota} per minute) is spent; \
             asked in a later call"
        ),
        retry_after: wait,
    }
}

/// `{"code":…,"message":…,"status":"error"}` at the top of a body.
fn body_error(obj: &Map<String, Value>) -> Option<Error> {
    let is_error = obj.get("status").and_then(Value::as_str) == Some("error")
        || (obj.contains_key("code") && obj.contains_key("message") && !obj.contains_key("close"));
    if !is_error {
        return None;
    }
    let code = i64_field(&Value::Object(obj.clone()), "code")
        .ok()
        .flatten()
        .unwrap_or(0);
    let message = obj
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("error without message")
        .to_owned();
    Some(classify(code, &message))
}

/// Map a provider code (HTTP status or in-body `code`) to an error.
fn classify(code: i64, message: &str) -> Error {
    let message = format!("code {code}: {message}");
    match code {
        429 => Error::RateLimited {
            backend: BACKEND,
            message,
            retry_after: None,
        },
        500..=599 => Error::unavailable(BACKEND, message, None),
        _ => Error::backend(BACKEND, message, None),
    }
}

/// The `message` of an error body, or a snippet of the body.
fn provider_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| http::snippet(body))
}

/// Whether an error means "this symbol" rather than "this call" (unknown symbol, bad request).
fn is_symbol_error(e: &Error) -> bool {
    match e {
        Error::Backend { message, .. } => {
            message.starts_with("code 400:") || message.starts_with("code 404:")
        }
        _ => false,
    }
}

/// Parse one quote entry (or its error object).
fn parse_quote(code: &str, entry: &Value, fetched_at: DateTime<Utc>) -> Result<Quote> {
    let Value::Object(obj) = entry else {
        return Err(Error::backend(
            BACKEND,
            format!(
                "{code}: quote is {}, expected an object",
                http::json_type(entry)
            ),
            None,
        ));
    };
    if let Some(err) = body_error(obj) {
        return Err(err);
    }
    let bad = |m: String| Error::backend(BACKEND, format!("{code}: {m}"), None);
    let price = match decimal_field(entry, "close").map_err(bad)? {
        Some(p) => p,
        None => decimal_field(entry, "price")
            .map_err(bad)?
            .ok_or_else(|| bad("no close or price".to_owned()))?,
    };
    validate_price(code, price)?;
    // A previous close that is not positive is no reference for a change.
    let previous_close = decimal_field(entry, "previous_close")
        .map_err(bad)?
        .filter(|p| *p > Decimal::ZERO);
    let overflow = |what: &str, p: Decimal| {
        bad(format!(
            "{what} of close {price} against previous_close {p} is out of range"
        ))
    };
    let change = match decimal_field(entry, "change").map_err(bad)? {
        Some(c) => c,
        None => match previous_close {
            Some(p) => price.checked_sub(p).ok_or_else(|| overflow("change", p))?,
            None => Decimal::ZERO,
        },
    };
    let change_percent = match decimal_field(entry, "percent_change").map_err(bad)? {
        Some(c) => c,
        None => match previous_close {
            Some(p) => percent_change(price, p).ok_or_else(|| overflow("percent change", p))?,
            None => Decimal::ZERO,
        },
    };
    let timestamp = quote_time(entry).map_err(bad)?.unwrap_or(fetched_at);
    Ok(Quote {
        symbol_code: code.to_owned(),
        price,
        change,
        change_percent,
        timestamp,
        source: Some(BACKEND.to_owned()),
    })
}

/// `(price − previous) / previous × 100` rounded to 5 places (the provider's precision); `None`
/// when any step overflows or `previous` is zero. Never panics, whatever the inputs.
fn percent_change(price: Decimal, previous: Decimal) -> Option<Decimal> {
    price
        .checked_sub(previous)?
        .checked_div(previous)?
        .checked_mul(Decimal::ONE_HUNDRED)
        .map(|p| p.round_dp(5))
}

fn quote_time(entry: &Value) -> std::result::Result<Option<DateTime<Utc>>, String> {
    for field in ["last_quote_at", "timestamp"] {
        if let Some(secs) = i64_field(entry, field)? {
            return Utc
                .timestamp_opt(secs, 0)
                .single()
                .map(Some)
                .ok_or_else(|| format!("field {field:?}: {secs} is out of range"));
        }
    }
    match entry.get("datetime") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_datetime(s)
            .map(Some)
            .ok_or_else(|| format!("field \"datetime\": {s:?} is not a date")),
        Some(other) => Err(format!(
            "field \"datetime\": expected a string, got {}",
            http::json_type(other)
        )),
    }
}

/// `2026-11-27 14:00:00` or `2026-11-27`, in UTC.
fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Some(dt.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
}

fn provider_symbol(symbol: &Symbol) -> &str {
    if symbol.provider_symbol.trim().is_empty() {
        &symbol.code
    } else {
        symbol.provider_symbol.trim()
    }
}

#[async_trait]
impl MarketData for TwelveDataMarketData {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn quotes(&self, symbols: &[Symbol]) -> Result<QuoteBatch> {
        let mut batch = QuoteBatch::default();
        // Distinct provider symbols in order; several codes may share one.
        let mut wanted: Vec<&str> = Vec::new();
        let mut codes_of: HashMap<&str, Vec<&str>> = HashMap::new();
        for s in symbols {
            let ps = provider_symbol(s);
            if ps.contains(',') {
                // It would split the batch into other symbols (and cost their credits).
                batch.failures.push(SymbolFailure {
                    symbol_code: s.code.clone(),
                    error: MarketError::CommaInSymbol {
                        code: s.code.clone(),
                        provider_symbol: ps.to_string(),
                    }
                    .into(),
                });
                continue;
            }
            let codes = codes_of.entry(ps).or_default();
            if codes.is_empty() {
                wanted.push(ps);
            }
            codes.push(&s.code);
        }
        if wanted.is_empty() {
            return Ok(batch);
        }
        let (picked, wait) = self.reserve(wanted.len())?;
        let asked: Vec<&str> = picked.iter().map(|&i| wanted[i]).collect();
        if picked.len() < wanted.len() {
            let quota = self.config.quote_credits_per_minute();
            for (i, ps) in wanted.iter().enumerate() {
                if !picked.contains(&i) {
                    for code in &codes_of[ps] {
                        batch.failures.push(SymbolFailure {
                            symbol_code: (*code).to_owned(),
                            error: rate_limited_locally(wait, code, quota),
                        });
                    }
                }
            }
        }
        let fetched_at = Utc::now();
        let answer = match self.fetch_quotes(&asked).await {
            Ok(a) => a,
            // An unknown symbol asked alone is that symbol's failure, not the call's.
            Err(e) if asked.len() == 1 && is_symbol_error(&e) => {
                for code in &codes_of[asked[0]] {
                    batch.failures.push(SymbolFailure {
                        symbol_code: (*code).to_owned(),
                        error: Error::backend(BACKEND, e.to_string(), None),
                    });
                }
                return Ok(batch);
            }
            Err(e) => return Err(e),
        };
        for ps in &asked {
            let entry = match &answer {
                Answer::Single(v) => Some(v),
                Answer::Keyed(map) => map.get(*ps),
            };
            for code in &codes_of[ps] {
                let result = match entry {
                    Some(v) => parse_quote(code, v, fetched_at),
                    None => Err(Error::backend(
                        BACKEND,
                        format!("{ps} missing from the /quote answer"),
                        None,
                    )),
                };
                batch.record(code, result);
            }
        }
        Ok(batch)
    }

    async fn price_at(&self, symbol: &Symbol, at: DateTime<Utc>) -> Result<Option<PricePoint>> {
        let Some((start_date, end_date)) = history_range(at) else {
            return Ok(None);
        };
        self.reserve_history(&symbol.code)?;
        let ps = provider_symbol(symbol);
        tracing::debug!(symbol = %symbol.code, %start_date, %end_date, "twelvedata: GET /time_series");
        let query = [
            ("symbol", ps),
            ("interval", "1min"),
            ("start_date", start_date.as_str()),
            ("end_date", end_date.as_str()),
            ("order", "asc"),
            ("outputsize", HISTORY_OUTPUTSIZE),
            ("timezone", "UTC"),
        ];
        let body = match self.get_json("time_series", &query).await {
            Ok(b) => b,
            Err(e) if is_no_data(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        first_candle_at_or_after(&symbol.code, at, &body)
    }
}

/// `outputsize` of a history request: every 1-minute candle of the asked range (at most four
/// start in it), so the answer does not depend on which end the provider truncates.
const HISTORY_OUTPUTSIZE: &str = "5";

/// `start_date` and `end_date` (UTC, `YYYY-MM-DD HH:MM:SS`) of the history request for `at`: one
/// minute either side of `[at, at + 1 min]`, so that the candles the rule needs are in the
/// answer whether the provider treats the bounds as inclusive or exclusive. `None` when `at` is
/// at the edge of the representable time.
fn history_range(at: DateTime<Utc>) -> Option<(String, String)> {
    let start = at.checked_sub_signed(chrono::Duration::minutes(1))?;
    let end = at.checked_add_signed(HISTORY_WINDOW + chrono::Duration::minutes(1))?;
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    Some((fmt(start), fmt(end)))
}

/// The open of the first 1-minute candle of a `/time_series` answer that starts in
/// `[at, at + HISTORY_WINDOW]`, stamped with its start (guide: *How the price at verify time is
/// chosen*); `None` when no candle starts there. The candles may come in any order; a candle whose
/// `datetime` is not `YYYY-MM-DD HH:MM:SS`, or a chosen candle without a positive `open`, makes the
/// answer malformed.
fn first_candle_at_or_after(
    code: &str,
    at: DateTime<Utc>,
    body: &Value,
) -> Result<Option<PricePoint>> {
    let bad = |m: String| Error::backend(BACKEND, format!("{code}: time_series: {m}"), None);
    let Value::Object(obj) = body else {
        return Err(bad(format!(
            "answered {}, expected an object",
            http::json_type(body)
        )));
    };
    if let Some(e) = body_error(obj) {
        return if is_no_data(&e) { Ok(None) } else { Err(e) };
    }
    let values = match obj.get("values") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(values)) => values,
        Some(other) => {
            return Err(bad(format!(
                "values is {}, expected an array",
                http::json_type(other)
            )))
        }
    };
    let latest = at.checked_add_signed(HISTORY_WINDOW);
    let mut first: Option<(DateTime<Utc>, &Value)> = None;
    for candle in values {
        let start = match candle.get("datetime") {
            Some(Value::String(s)) => parse_candle_start(s)
                .ok_or_else(|| bad(format!("datetime {s:?} is not YYYY-MM-DD HH:MM:SS")))?,
            Some(other) => {
                return Err(bad(format!(
                    "datetime is {}, expected a string",
                    http::json_type(other)
                )))
            }
            None => return Err(bad("a candle has no datetime".to_owned())),
        };
        let in_window = start >= at && latest.is_none_or(|l| start <= l);
        if in_window && first.is_none_or(|(t, _)| start < t) {
            first = Some((start, candle));
        }
    }
    let Some((ts, candle)) = first else {
        return Ok(None);
    };
    let price = decimal_field(candle, "open")
        .map_err(bad)?
        .ok_or_else(|| bad("the candle has no open".to_owned()))?;
    validate_price(code, price)?;
    Ok(Some(PricePoint {
        price,
        ts,
        source: Some(BACKEND.to_owned()),
    }))
}

/// A 1-minute candle's `datetime` with `timezone=UTC`: `2026-11-27 14:00:00` (the documented
/// intraday form; a date alone is the daily form and no candle start).
fn parse_candle_start(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|dt| dt.and_utc())
}

/// Twelve Data's "no data for these dates" (code 400).
fn is_no_data(e: &Error) -> bool {
    matches!(e, Error::Backend { message, .. } if message.starts_with("code 400:"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[tokio::test(start_paused = true)]
    async fn budget_slides_over_sixty_seconds() {
        let mut b = CreditBudget::new(8);
        let t0 = Instant::now();
        assert_eq!(b.available(t0), 8);
        b.spend(t0, 6);
        tokio::time::advance(Duration::from_secs(20)).await;
        let t1 = Instant::now();
        assert_eq!(b.available(t1), 2);
        b.spend(t1, 2);
        assert_eq!(b.available(t1), 0);
        // 6 credits free up 60 s after t0, i.e. in 40 s.
        assert_eq!(b.wait_for(t1, 6), Some(Duration::from_secs(40)));
        assert_eq!(b.wait_for(t1, 7), Some(Duration::from_secs(60)));
        assert_eq!(b.wait_for(t1, 9), None);
        tokio::time::advance(Duration::from_secs(39)).await;
        assert_eq!(b.available(Instant::now()), 0);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.available(Instant::now()), 6);
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(b.available(Instant::now()), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn reserve_never_exceeds_and_rotates() {
        let td = TwelveDataMarketData::new(
            TwelveDataConfig::new("k")
                .with_credits_per_minute(8)
                .with_history_reserve(0),
        )
        .unwrap();
        let (a, wait) = td.reserve(6).unwrap();
        assert_eq!(a, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(wait, None);
        tokio::time::advance(Duration::from_secs(5)).await;
        let (b, wait) = td.reserve(6).unwrap();
        assert_eq!(b, vec![0, 1]);
        assert_eq!(wait, Some(Duration::from_secs(55)));
        tokio::time::advance(Duration::from_secs(5)).await;
        let err = td.reserve(6).unwrap_err();
        assert!(
            matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(50))
        );
        tokio::time::advance(Duration::from_secs(50)).await;
        // 6 credits of t0 are back; the rotation continues where it stopped.
        let (c, _) = td.reserve(6).unwrap();
        assert_eq!(c, vec![0, 1, 2, 3, 4, 5]);
        tokio::time::advance(Duration::from_secs(5)).await;
        let (d, _) = td.reserve(6).unwrap();
        assert_eq!(d, vec![2, 3]);
        assert_eq!(td.credits_available(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn quotes_never_take_the_history_reserve() {
        let td = TwelveDataMarketData::new(TwelveDataConfig::new("k")).unwrap();
        assert_eq!(td.config().history_reserve, DEFAULT_HISTORY_RESERVE);
        assert_eq!(td.config().quote_credits_per_minute(), 6);
        let (a, wait) = td.reserve(6).unwrap();
        assert_eq!((a.len(), wait), (6, None));
        // Two credits are free, but they are history's: the quotes wait until t0's six free up.
        tokio::time::advance(Duration::from_secs(5)).await;
        let err = td.reserve(6).unwrap_err();
        assert!(
            matches!(&err, Error::RateLimited { retry_after: Some(d), message, .. }
                if *d == Duration::from_secs(55) && message.contains("2 kept for history")),
            "{err:?}"
        );
        assert_eq!(td.credits_available(), 2);
        // History may take them, and then nothing is left for anyone.
        td.reserve_history("XAUUSD").unwrap();
        td.reserve_history("XAGUSD").unwrap();
        let err = td.reserve_history("EURUSD").unwrap_err();
        assert!(
            matches!(&err, Error::RateLimited { retry_after: Some(d), message, .. }
                if *d == Duration::from_secs(55) && message.contains("history of EURUSD")),
            "{err:?}"
        );
        assert!(td.reserve(1).is_err());
        // t0's six free up: the quotes take them, the history's two are still in the window.
        tokio::time::advance(Duration::from_secs(55)).await;
        assert_eq!(td.credits_available(), 6);
        let (b, wait) = td.reserve(6).unwrap();
        assert_eq!(b.len(), 4, "8 − 2 spent by history − 2 reserved");
        assert_eq!(wait, Some(Duration::from_secs(5)));
        assert_eq!(td.credits_available(), 2);
    }

    #[test]
    fn the_reserve_leaves_quotes_at_least_one_credit() {
        let c = TwelveDataConfig::new("k").with_credits_per_minute(1);
        assert_eq!(c.effective_history_reserve(), 0);
        assert_eq!(c.quote_credits_per_minute(), 1);
        let c = TwelveDataConfig::new("k")
            .with_credits_per_minute(8)
            .with_history_reserve(100);
        assert_eq!(c.effective_history_reserve(), 7);
        assert_eq!(c.quote_credits_per_minute(), 1);
        let c = TwelveDataConfig::new("k").with_credits_per_minute(0);
        assert_eq!(c.quote_credits_per_minute(), 0);
    }

    #[test]
    fn check_budget_says_what_fits() {
        let r = DEFAULT_HISTORY_RESERVE;
        assert_eq!(check_budget(Duration::from_secs(60), 6, 8, r), None);
        assert_eq!(check_budget(Duration::from_secs(30), 4, 8, 0), None);
        // The reserve counts: 4 symbols twice a minute need 8 of the quotes' 6.
        let w = check_budget(Duration::from_secs(30), 4, 8, r).unwrap();
        assert!(w.contains("quotes may use 6 (8 of the plan minus 2 kept for history requests)"));
        assert!(w.contains("at least 61s"), "{w}");
        let w = check_budget(Duration::from_secs(5), 6, 8, r).unwrap();
        assert!(w.contains("61s"), "{w}");
        assert_eq!(check_budget(Duration::from_secs(5), 6, 800, r), None);
        let w = check_budget(Duration::from_secs(1), 6, 100, r).unwrap();
        assert!(w.contains("at least 5s"), "{w}");
        let w = check_budget(Duration::from_secs(5), 9, 8, r).unwrap();
        assert!(w.contains("only 6"), "{w}");
        assert!(!w.contains('\n'));
        assert_eq!(check_budget(Duration::from_secs(5), 0, 8, r), None);
    }

    #[test]
    fn percent_change_never_panics() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(percent_change(d("110"), d("100")), Some(d("10")));
        assert_eq!(percent_change(d("1"), Decimal::ZERO), None);
        assert_eq!(
            percent_change(Decimal::MAX, d("0.0000000000000000000000000001")),
            None
        );
        assert_eq!(percent_change(Decimal::MIN, Decimal::MAX), None);
        assert_eq!(percent_change(Decimal::ONE, Decimal::MAX), Some(d("-100")));
        assert_eq!(percent_change(Decimal::MAX, Decimal::MIN), None);
        assert_eq!(percent_change(Decimal::MAX, d("-1")), None);
    }

    #[test]
    fn debug_hides_the_key() {
        let c = TwelveDataConfig::new("super-secret-key");
        assert!(!format!("{c:?}").contains("super-secret-key"));
        let td = TwelveDataMarketData::new(c).unwrap();
        assert!(!format!("{td:?}").contains("super-secret-key"));
    }

    #[test]
    fn quote_fields_fall_back_and_compute() {
        let now = Utc::now();
        let v: Value = serde_json::json!({
            "close": "110.0", "previous_close": "100.0", "change": null, "percent_change": null,
            "datetime": "2026-11-27"
        });
        let q = parse_quote("X", &v, now).unwrap();
        assert_eq!(q.change, Decimal::from_str("10.0").unwrap());
        assert_eq!(q.change_percent, Decimal::from_str("10").unwrap());
        assert_eq!(q.timestamp, parse_datetime("2026-11-27").unwrap());
        let v: Value = serde_json::json!({"price": "5"});
        let q = parse_quote("X", &v, now).unwrap();
        assert_eq!(q.change, Decimal::ZERO);
        assert_eq!(q.change_percent, Decimal::ZERO);
        assert_eq!(q.timestamp, now);
        let v: Value = serde_json::json!({"close": {"x": 1}});
        assert!(matches!(
            parse_quote("X", &v, now),
            Err(Error::Backend { .. })
        ));
        let v: Value = serde_json::json!({"close": "1", "timestamp": "nope"});
        assert!(matches!(
            parse_quote("X", &v, now),
            Err(Error::Backend { .. })
        ));
    }
}
