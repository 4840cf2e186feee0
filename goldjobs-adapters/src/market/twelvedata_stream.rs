//! Twelve Data's live price stream (<https://twelvedata.com/docs#real-time-price-websocket>):
//! one WebSocket to `wss://ws.twelvedata.com/v1/quotes/price`, subscribed to every symbol the
//! price job polls.
//!
//! * **Key**: sent in the `X-TD-APIKEY` request header, one of the two ways Twelve Data documents
//!   for the stream, so it is never part of a URL and never in a log or an error.
//! * **Subscription**: `{"action":"subscribe","params":{"symbols":"XAU/USD,EUR/USD"}}` with the
//!   symbols' provider symbols. Every `subscribe-status` is read for its `success` and `fails`
//!   lists whatever its `status` says, and becomes one [`StreamEvent::Subscribed`]; failed
//!   symbols stay with polling. A `fails` entry may be an object with a `symbol` or a bare
//!   string; symbols are matched back to our codes without regard to case.
//! * **Prices**: `{"event":"price","symbol":"XAU/USD","timestamp":1647950462,"price":1925.18,…}`.
//!   The price is read from the frame's text (a JSON number or a string) straight into a
//!   `Decimal`, never through a float; the timestamp is unix seconds (a float is accepted and its
//!   fraction kept to the millisecond). A price event for a symbol not subscribed, or without a
//!   readable price or timestamp, is skipped. Twelve Data's events carry no previous close: the
//!   change is measured against the last polled quote's (see
//!   [`StreamPrice::reference`](goldjobs_core::StreamPrice)).
//! * **Keep-alive**: `{"action":"heartbeat"}` every 10 s, as Twelve Data asks; no frame at all for
//!   30 s ends the connection (its heartbeat answers alone arrive every 10 s).
//! * **Limits**: Twelve Data allows 3 connections per key; the price streamer opens one, on the
//!   price leader only. Each subscribed symbol costs one WebSocket credit for as long as it is
//!   subscribed, instead of one REST credit per symbol per poll.
//!
//! Unknown events, and frames that are not JSON, are skipped (see the shared plumbing); an event
//! `{"status":"error",…}` that is not a `subscribe-status` is logged and skipped too.

use super::ws::{self, raw_decimal, Protocol, Session};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use goldjobs_core::{
    Error, MarketStream, PriceEvents, Result, StreamEvent, StreamPrice, Symbol, SymbolFailure,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

const BACKEND: &str = "twelvedata";

/// Default stream URL.
pub const DEFAULT_WS_URL: &str = "wss://ws.twelvedata.com/v1/quotes/price";

/// Configuration of the Twelve Data stream. `Debug` never shows the API key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TwelveDataStreamConfig {
    /// The API key (the same as the REST API's).
    pub api_key: String,
    /// Stream URL, default [`DEFAULT_WS_URL`] (tests point it at a local server).
    pub url: String,
    /// How long the handshake may take, default 10 s.
    pub connect_timeout: Duration,
    /// How often `{"action":"heartbeat"}` is sent, default 10 s.
    pub heartbeat: Duration,
    /// No frame for this long ends the connection, default 30 s.
    pub idle_timeout: Duration,
}

impl TwelveDataStreamConfig {
    /// Defaults with this API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        TwelveDataStreamConfig {
            api_key: api_key.into(),
            url: DEFAULT_WS_URL.to_owned(),
            connect_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }

    /// Set the stream URL.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Set the handshake timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Set the heartbeat period.
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// Set the silence after which the connection is given up.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

impl fmt::Debug for TwelveDataStreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwelveDataStreamConfig")
            .field("api_key", &"<redacted>")
            .field("url", &ws::safe_url(&self.url))
            .field("connect_timeout", &self.connect_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// Twelve Data's price stream, a [`MarketStream`].
#[derive(Debug, Clone)]
pub struct TwelveDataStream {
    config: TwelveDataStreamConfig,
}

impl TwelveDataStream {
    /// A stream client. Errors: an empty key or one that cannot be sent in a header; a URL
    /// that is not `ws://` or `wss://`.
    pub fn new(config: TwelveDataStreamConfig) -> Result<Self> {
        if config.api_key.trim().is_empty() {
            return Err(super::MarketError::NoApiKey.into());
        }
        if config.api_key.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
            return Err(super::MarketError::ApiKeyChars.into());
        }
        if !(config.url.starts_with("ws://") || config.url.starts_with("wss://")) {
            return Err(Error::invalid(format!(
                "TWELVEDATA_WS_URL: {:?} is not a ws:// or wss:// URL",
                ws::safe_url(&config.url)
            )));
        }
        Ok(TwelveDataStream { config })
    }
}

#[async_trait]
impl MarketStream for TwelveDataStream {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn connect(&self, symbols: &[Symbol]) -> Result<PriceEvents> {
        let mut codes: HashMap<String, String> = HashMap::new();
        let mut refused = Vec::new();
        let mut asked = Vec::new();
        for s in symbols {
            let provider = s.provider_symbol.trim();
            if provider.is_empty() || provider.contains(',') {
                refused.push(SymbolFailure {
                    symbol_code: s.code.clone(),
                    error: Error::invalid(format!(
                        "{}: provider symbol {:?} cannot be subscribed",
                        s.code, s.provider_symbol
                    )),
                });
                continue;
            }
            if codes
                .insert(provider.to_ascii_uppercase(), s.code.clone())
                .is_none()
            {
                asked.push(provider.to_owned());
            }
        }
        let subscribe = serde_json::json!({
            "action": "subscribe",
            "params": { "symbols": asked.join(",") },
        })
        .to_string();
        let socket = ws::connect(
            BACKEND,
            &self.config.url,
            &[("x-td-apikey", self.config.api_key.clone())],
            self.config.connect_timeout,
        )
        .await?;
        let protocol = TwelveDataProtocol {
            codes,
            refused: Some(refused),
            streamed: BTreeSet::new(),
        };
        let session = Session {
            backend: BACKEND,
            idle_timeout: self.config.idle_timeout,
            heartbeat: Some((
                self.config.heartbeat,
                r#"{"action":"heartbeat"}"#.to_owned(),
            )),
            max_age: None,
        };
        ws::start(socket, vec![subscribe], protocol, session).await
    }
}

/// Reads Twelve Data's frames.
struct TwelveDataProtocol {
    /// Provider symbol (upper case) → our code.
    codes: HashMap<String, String>,
    /// Symbols refused before subscribing, reported with the first `subscribe-status`.
    refused: Option<Vec<SymbolFailure>>,
    /// Codes confirmed so far.
    streamed: BTreeSet<String>,
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    symbol: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(default)]
    success: Option<Vec<Entry>>,
    #[serde(default)]
    fails: Option<Vec<Entry>>,
    #[serde(default)]
    messages: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

/// An entry of `success` or `fails`: an object with a `symbol`, or a bare string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Object {
        symbol: String,
        #[serde(default)]
        message: Option<serde_json::Value>,
    },
    Text(String),
    Other(serde::de::IgnoredAny),
}

impl Entry {
    fn symbol(&self) -> Option<&str> {
        match self {
            Entry::Object { symbol, .. } | Entry::Text(symbol) => Some(symbol.trim()),
            Entry::Other(_) => None,
        }
    }
}

impl TwelveDataProtocol {
    fn code(&self, provider: &str) -> Option<&String> {
        self.codes.get(&provider.trim().to_ascii_uppercase())
    }

    fn subscribe_status(&mut self, frame: Frame<'_>, out: &mut Vec<Result<StreamEvent>>) {
        let mut symbols = Vec::new();
        let mut failures = self.refused.take().unwrap_or_default();
        for entry in frame.success.iter().flatten() {
            if let Some(code) = entry.symbol().and_then(|p| self.code(p)).cloned() {
                if self.streamed.insert(code.clone()) {
                    symbols.push(code);
                }
            }
        }
        for entry in frame.fails.iter().flatten() {
            let Some(provider) = entry.symbol() else {
                continue;
            };
            let Some(code) = self.code(provider).cloned() else {
                continue;
            };
            self.streamed.remove(&code);
            let why = match entry {
                Entry::Object {
                    message: Some(serde_json::Value::String(m)),
                    ..
                } => format!(": {}", super::http::snippet(m.as_bytes())),
                _ => String::new(),
            };
            failures.push(SymbolFailure {
                symbol_code: code,
                error: Error::backend(BACKEND, format!("stream refused {provider}{why}"), None),
            });
        }
        out.push(Ok(StreamEvent::Subscribed { symbols, failures }));
    }

    fn price(&self, frame: &Frame<'_>) -> std::result::Result<StreamPrice, String> {
        let provider = frame
            .symbol
            .as_deref()
            .ok_or("price event without a symbol")?;
        let code = self
            .code(provider)
            .ok_or_else(|| format!("price event for {provider:?}, which was not subscribed"))?;
        let price = frame
            .price
            .and_then(raw_decimal)
            .ok_or_else(|| format!("price event for {provider}: no readable price"))?;
        let timestamp = frame
            .timestamp
            .and_then(unix_seconds)
            .ok_or_else(|| format!("price event for {provider}: no readable timestamp"))?;
        Ok(StreamPrice {
            symbol_code: code.clone(),
            price,
            timestamp,
            reference: None,
        })
    }
}

/// Unix seconds (an integer, or a decimal kept to the millisecond) as an instant.
fn unix_seconds(raw: &RawValue) -> Option<DateTime<Utc>> {
    let seconds = raw_decimal(raw)?;
    let millis = seconds
        .checked_mul(rust_decimal::Decimal::ONE_THOUSAND)?
        .trunc();
    let millis: i64 = millis.try_into().ok()?;
    Utc.timestamp_millis_opt(millis).single()
}

impl Protocol for TwelveDataProtocol {
    fn on_text(&mut self, text: &str, out: &mut Vec<Result<StreamEvent>>) -> Result<(), String> {
        let frame: Frame<'_> =
            serde_json::from_str(text).map_err(|e| format!("not a Twelve Data event: {e}"))?;
        match frame.event.as_deref() {
            Some("price") => {
                out.push(Ok(StreamEvent::Price(self.price(&frame)?)));
                Ok(())
            }
            Some("subscribe-status") => {
                self.subscribe_status(frame, out);
                Ok(())
            }
            Some("heartbeat") => Ok(()),
            _ if frame.status.as_deref() == Some("error") => {
                let said = frame
                    .messages
                    .or(frame.message)
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                Err(format!(
                    "error event: {}",
                    super::http::snippet(said.as_bytes())
                ))
            }
            Some(other) => Err(format!("unknown event {other:?}")),
            None => Err("a frame without an event".to_owned()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn protocol() -> TwelveDataProtocol {
        TwelveDataProtocol {
            codes: [("XAU/USD", "XAUUSD"), ("EUR/USD", "EURUSD")]
                .into_iter()
                .map(|(p, c)| (p.to_owned(), c.to_owned()))
                .collect(),
            refused: Some(Vec::new()),
            streamed: BTreeSet::new(),
        }
    }

    fn read(p: &mut TwelveDataProtocol, text: &str) -> Result<Vec<StreamEvent>, String> {
        let mut out = Vec::new();
        p.on_text(text, &mut out)?;
        Ok(out.into_iter().map(|e| e.unwrap()).collect())
    }

    #[test]
    fn prices_are_read_exactly_from_numbers_and_strings() {
        let mut p = protocol();
        let events = read(
            &mut p,
            r#"{"event":"price","symbol":"XAU/USD","currency_base":"Gold Spot","timestamp":1647950462,"price":1925.123456789012345678,"bid":1925.1,"ask":1925.2}"#,
        )
        .unwrap();
        let [StreamEvent::Price(price)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(price.symbol_code, "XAUUSD");
        assert_eq!(
            price.price,
            Decimal::from_str("1925.123456789012345678").unwrap()
        );
        assert_eq!(price.timestamp.timestamp(), 1_647_950_462);
        assert_eq!(price.reference, None);

        let events = read(
            &mut p,
            r#"{"event":"price","symbol":"eur/usd","timestamp":"1647950462.250","price":"1.08512"}"#,
        )
        .unwrap();
        let [StreamEvent::Price(price)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(price.symbol_code, "EURUSD");
        assert_eq!(price.price, Decimal::from_str("1.08512").unwrap());
        assert_eq!(price.timestamp.timestamp_millis(), 1_647_950_462_250);
    }

    #[test]
    fn every_subscribe_status_is_read_whatever_its_status() {
        let mut p = protocol();
        p.refused = Some(vec![SymbolFailure {
            symbol_code: "BAD".into(),
            error: Error::invalid("no provider symbol"),
        }]);
        let events = read(
            &mut p,
            r#"{"event":"subscribe-status","status":"error","success":[{"symbol":"XAU/USD","exchange":"PHYSICAL CURRENCY","type":"Physical Currency"}],"fails":[{"symbol":"EUR/USD","message":"not in your plan"}]}"#,
        )
        .unwrap();
        let [StreamEvent::Subscribed { symbols, failures }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(symbols, &["XAUUSD"]);
        let failed: Vec<_> = failures.iter().map(|f| f.symbol_code.as_str()).collect();
        assert_eq!(failed, ["BAD", "EURUSD"]);
        assert!(failures[1].error.to_string().contains("not in your plan"));

        // A later status with null lists, and bare strings.
        let events = read(
            &mut p,
            r#"{"event":"subscribe-status","status":"ok","success":["EUR/USD"],"fails":null}"#,
        )
        .unwrap();
        let [StreamEvent::Subscribed { symbols, failures }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(symbols, &["EURUSD"]);
        assert!(failures.is_empty());
    }

    #[test]
    fn garbage_and_unknown_events_are_refused_without_events() {
        let mut p = protocol();
        for text in [
            "not json",
            "[1,2]",
            r#"{"event":"price","symbol":"XAU/USD","timestamp":1647950462,"price":"abc"}"#,
            r#"{"event":"price","symbol":"XAU/USD","timestamp":1647950462,"price":1e400}"#,
            r#"{"event":"price","symbol":"XAU/USD","price":1925.1}"#,
            r#"{"event":"price","symbol":"BTC/USD","timestamp":1647950462,"price":1}"#,
            r#"{"event":"price","symbol":"XAU/USD","timestamp":99999999999999999999,"price":1}"#,
            r#"{"status":"error","messages":["bad"]}"#,
            r#"{"event":"surprise"}"#,
        ] {
            assert!(read(&mut p, text).is_err(), "{text}");
        }
        assert!(read(&mut p, r#"{"event":"heartbeat","status":"ok"}"#)
            .unwrap()
            .is_empty());
    }
}
