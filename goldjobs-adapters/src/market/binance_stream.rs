//! Binance's live market streams (<https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams>):
//! one combined-stream connection, `{base}/stream?streams=btcusdt@miniTicker/ethusdt@miniTicker`,
//! on `wss://data-stream.binance.vision` (the market-data-only endpoint) by default.
//!
//! * **Symbols**: our `XXXUSD` codes map to `XXXUSDT` markets as for the REST client
//!   ([`binance_symbol`](super::binance_symbol)); metals and fiat are not served and are reported
//!   as failures of the first [`StreamEvent::Subscribed`], which comes as soon as the connection
//!   is open (the subscription is the URL). A market Binance does not know simply never sends:
//!   the price streamer hands a silent symbol back to polling after one price period.
//! * **Events**: each frame is `{"stream":"btcusdt@miniTicker","data":{…}}`; the mini ticker's
//!   `c` (last price) is the price, `o` (the open 24 hours ago) the change's reference, `E` (event
//!   time, unix milliseconds) the instant. Numbers are Binance's strings, parsed into `Decimal`
//!   without a float. Frames of another shape, or for a market not asked, are skipped.
//! * **Keep-alive**: Binance pings every 20 seconds and the WebSocket layer answers each with a
//!   pong; no frame at all for 60 s ends the connection. We send nothing else, far below
//!   Binance's limit of 5 incoming messages per second.
//! * **24 h cut**: Binance closes every connection after 24 hours; this client ends its
//!   connection after 23 h 50 min so the streamer reconnects at a moment of its choosing.
//! * **Limits**: at most 1,024 streams per connection: more symbols than that are refused with a
//!   failure each (they stay with polling).

use super::ws::{self, raw_decimal, Protocol, Session};
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use futures::StreamExt;
use goldjobs_core::{
    Error, MarketStream, PriceEvents, Result, StreamEvent, StreamPrice, Symbol, SymbolFailure,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::time::Duration;

const BACKEND: &str = "binance";
/// Binance's limit of streams per connection.
const MAX_STREAMS: usize = 1024;

/// Default stream base URL.
pub const DEFAULT_WS_URL: &str = "wss://data-stream.binance.vision";

/// Configuration of the Binance stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BinanceStreamConfig {
    /// Stream base URL (without `/stream`), default [`DEFAULT_WS_URL`].
    pub url: String,
    /// How long the handshake may take, default 10 s.
    pub connect_timeout: Duration,
    /// No frame for this long ends the connection, default 60 s.
    pub idle_timeout: Duration,
    /// A connection is ended (and reopened by the streamer) after this long, default 23 h 50 min,
    /// before Binance's own cut at 24 h.
    pub max_age: Duration,
}

impl Default for BinanceStreamConfig {
    fn default() -> Self {
        BinanceStreamConfig {
            url: DEFAULT_WS_URL.to_owned(),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_age: Duration::from_secs(23 * 3600 + 50 * 60),
        }
    }
}

impl BinanceStreamConfig {
    /// Set the stream base URL.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Set the handshake timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Set the silence after which the connection is given up.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Set the age at which a connection is replaced.
    pub fn with_max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }
}

/// Binance's combined market streams, a [`MarketStream`].
#[derive(Debug, Clone)]
pub struct BinanceStream {
    config: BinanceStreamConfig,
}

impl BinanceStream {
    /// A stream client. Errors: a URL that is not `ws://` or `wss://`.
    pub fn new(config: BinanceStreamConfig) -> Result<Self> {
        if !(config.url.starts_with("ws://") || config.url.starts_with("wss://"))
            || config.url.contains(['?', '#'])
        {
            return Err(Error::invalid(format!(
                "BINANCE_WS_URL: {:?} is not a ws:// or wss:// base URL without query",
                config.url
            )));
        }
        Ok(BinanceStream { config })
    }
}

#[async_trait]
impl MarketStream for BinanceStream {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn connect(&self, symbols: &[Symbol]) -> Result<PriceEvents> {
        let plan = self.plan(symbols);
        if plan.codes.is_empty() {
            return Err(Error::backend(
                BACKEND,
                "none of the active symbols is a Binance market",
                None,
            ));
        }
        let socket = ws::connect(BACKEND, &plan.url, &[], self.config.connect_timeout).await?;
        let session = Session {
            backend: BACKEND,
            idle_timeout: self.config.idle_timeout,
            heartbeat: None,
            max_age: Some(self.config.max_age),
        };
        let protocol = BinanceProtocol {
            markets: plan.markets,
        };
        let events = ws::start(socket, Vec::new(), protocol, session).await?;
        let subscribed = StreamEvent::Subscribed {
            symbols: plan.codes,
            failures: plan.failures,
        };
        Ok(futures::stream::iter([Ok(subscribed)])
            .chain(events)
            .boxed())
    }
}

/// What one connection subscribes to.
struct Plan {
    url: String,
    /// Market (lower case) → our code.
    markets: HashMap<String, String>,
    codes: Vec<String>,
    failures: Vec<SymbolFailure>,
}

impl BinanceStream {
    /// The combined-stream URL this client opens for `symbols` (metals, fiat and symbols past
    /// Binance's limit of streams left out).
    pub fn subscription_url(&self, symbols: &[Symbol]) -> String {
        self.plan(symbols).url
    }

    fn plan(&self, symbols: &[Symbol]) -> Plan {
        let mut markets: HashMap<String, String> = HashMap::new();
        let mut failures = Vec::new();
        let mut streams = Vec::new();
        let mut codes = Vec::new();
        for s in symbols {
            let why = match super::binance_symbol(&s.code) {
                Some(market) if streams.len() < MAX_STREAMS => {
                    let market = market.to_ascii_lowercase();
                    if let std::collections::hash_map::Entry::Vacant(e) = markets.entry(market) {
                        streams.push(format!("{}@miniTicker", e.key()));
                        e.insert(s.code.clone());
                        codes.push(s.code.clone());
                    }
                    continue;
                }
                Some(_) => format!("more than {MAX_STREAMS} streams on one connection"),
                None => format!("{}: Binance has no USDT market for this symbol", s.code),
            };
            failures.push(SymbolFailure {
                symbol_code: s.code.clone(),
                error: Error::backend(BACKEND, why, None),
            });
        }
        let url = format!(
            "{}/stream?streams={}",
            self.config.url.trim_end_matches('/'),
            streams.join("/")
        );
        Plan {
            url,
            markets,
            codes,
            failures,
        }
    }
}

/// Reads Binance's combined-stream frames.
struct BinanceProtocol {
    /// Market (lower case) → our code.
    markets: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Combined<'a> {
    #[serde(borrow)]
    data: MiniTicker<'a>,
}

#[derive(Deserialize)]
struct MiniTicker<'a> {
    #[serde(rename = "e", borrow, default)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "E")]
    time: i64,
    #[serde(rename = "s", borrow)]
    symbol: std::borrow::Cow<'a, str>,
    #[serde(rename = "c", borrow)]
    close: &'a RawValue,
    #[serde(rename = "o", borrow, default)]
    open: Option<&'a RawValue>,
}

impl Protocol for BinanceProtocol {
    fn on_text(&mut self, text: &str, out: &mut Vec<Result<StreamEvent>>) -> Result<(), String> {
        let frame: Combined<'_> =
            serde_json::from_str(text).map_err(|e| format!("not a mini ticker frame: {e}"))?;
        let t = frame.data;
        if t.event.as_deref().is_some_and(|e| e != "24hrMiniTicker") {
            return Err(format!("unexpected event {:?}", t.event));
        }
        let code = self
            .markets
            .get(&t.symbol.to_ascii_lowercase())
            .ok_or_else(|| format!("a frame for {:?}, which was not asked", t.symbol))?;
        let price =
            raw_decimal(t.close).ok_or_else(|| format!("{}: no readable price", t.symbol))?;
        let timestamp = Utc
            .timestamp_millis_opt(t.time)
            .single()
            .ok_or_else(|| format!("{}: event time {} out of range", t.symbol, t.time))?;
        let reference = t
            .open
            .and_then(raw_decimal)
            .filter(|o| o.is_sign_positive() && !o.is_zero());
        out.push(Ok(StreamEvent::Price(StreamPrice {
            symbol_code: code.clone(),
            price,
            timestamp,
            reference,
        })));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn protocol() -> BinanceProtocol {
        BinanceProtocol {
            markets: [("btcusdt".to_owned(), "BTCUSD".to_owned())].into(),
        }
    }

    #[test]
    fn mini_tickers_become_prices_with_the_open_as_reference() {
        let mut p = protocol();
        let mut out = Vec::new();
        p.on_text(
            r#"{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1672515782136,"s":"BTCUSDT","c":"16541.23000000","o":"16400.01000000","h":"16600","l":"16300","v":"1000","q":"16500000"}}"#,
            &mut out,
        )
        .unwrap();
        let events: Vec<_> = out.into_iter().map(|e| e.unwrap()).collect();
        let [StreamEvent::Price(price)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(price.symbol_code, "BTCUSD");
        assert_eq!(price.price, Decimal::from_str("16541.23000000").unwrap());
        assert_eq!(
            price.reference,
            Some(Decimal::from_str("16400.01").unwrap())
        );
        assert_eq!(price.timestamp.timestamp_millis(), 1_672_515_782_136);
    }

    #[test]
    fn other_shapes_are_refused() {
        let mut p = protocol();
        let mut out = Vec::new();
        for text in [
            "{",
            r#"{"result":null,"id":1}"#,
            r#"{"stream":"x","data":{"e":"24hrMiniTicker","E":1,"s":"ETHUSDT","c":"1","o":"1"}}"#,
            r#"{"stream":"x","data":{"e":"trade","E":1,"s":"BTCUSDT","c":"1","o":"1"}}"#,
            r#"{"stream":"x","data":{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"x","o":"1"}}"#,
            r#"{"stream":"x","data":{"e":"24hrMiniTicker","E":9223372036854775807,"s":"BTCUSDT","c":"1","o":"1"}}"#,
        ] {
            assert!(p.on_text(text, &mut out).is_err(), "{text}");
        }
        assert!(out.is_empty());
    }

    #[test]
    fn metals_and_fiat_are_refused_in_the_url() {
        let s = BinanceStream::new(BinanceStreamConfig::default()).unwrap();
        let url = s.subscription_url(&[
            Symbol::new("BTCUSD", "Bitcoin", "BTC/USD"),
            Symbol::new("XAUUSD", "Gold", "XAU/USD"),
            Symbol::new("ETHUSD", "Ether", "ETH/USD"),
        ]);
        assert_eq!(
            url,
            "wss://data-stream.binance.vision/stream?streams=btcusdt@miniTicker/ethusdt@miniTicker"
        );
        assert!(BinanceStream::new(BinanceStreamConfig::default().with_url("https://x")).is_err());
    }
}
