//! Symbols, quotes, ticks and provider answers.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A tradable symbol, e.g. code `XAUUSD`, provider symbol `XAU/USD`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Symbol {
    /// Our code, upper case, e.g. `XAUUSD`.
    pub code: String,
    /// Human name, e.g. `Gold / US Dollar`.
    pub name: String,
    /// The market data provider's symbol, e.g. `XAU/USD`.
    pub provider_symbol: String,
    /// Whether the price job fetches it.
    pub active: bool,
}

impl Symbol {
    /// A new active symbol.
    pub fn new(code: &str, name: &str, provider_symbol: &str) -> Self {
        Self {
            code: code.to_owned(),
            name: name.to_owned(),
            provider_symbol: provider_symbol.to_owned(),
            active: true,
        }
    }

    /// The six default symbols that migrations seed.
    pub fn defaults() -> Vec<Symbol> {
        vec![
            Symbol::new("XAUUSD", "Gold / US Dollar", "XAU/USD"),
            Symbol::new("XAGUSD", "Silver / US Dollar", "XAG/USD"),
            Symbol::new("EURUSD", "Euro / US Dollar", "EUR/USD"),
            Symbol::new("GBPUSD", "British Pound / US Dollar", "GBP/USD"),
            Symbol::new("USDJPY", "US Dollar / Japanese Yen", "USD/JPY"),
            Symbol::new("BTCUSD", "Bitcoin / US Dollar", "BTC/USD"),
        ]
    }
}

/// The latest quote of a symbol, as cached in `quote:{SYMBOL}` and served by `GET /quotes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Symbol code, e.g. `XAUUSD`.
    pub symbol_code: String,
    /// Last price.
    pub price: Decimal,
    /// Change against the previous close.
    pub change: Decimal,
    /// Change in percent against the previous close.
    pub change_percent: Decimal,
    /// When the provider priced it.
    pub timestamp: DateTime<Utc>,
    /// The provider that priced it ([`MarketData::name`](crate::MarketData::name), e.g.
    /// `twelvedata`), recorded as the tick's `source`. Not part of the wire shape (`/quotes`,
    /// `quote:{SYMBOL}`), so read back from a cache it is `None`.
    #[serde(skip)]
    pub source: Option<String>,
}

/// The `source` of prices made up by the demo feed (`price_ticks.source`, guide: *Database tables
/// and migrations*).
pub const DEMO_SOURCE: &str = "demo";

/// One recorded price of a symbol (`price_ticks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTick {
    /// Symbol code.
    pub symbol_code: String,
    /// The price.
    pub price: Decimal,
    /// The instant of the price.
    pub ts: DateTime<Utc>,
    /// The provider of the price (`price_ticks.source`: `twelvedata`, `binance`, `demo`, …);
    /// `None` for rows written by other programs or before 0.2, which count as a real provider.
    #[serde(default)]
    pub source: Option<String>,
}

impl PriceTick {
    /// A tick with its provider.
    pub fn new(
        symbol_code: impl Into<String>,
        price: Decimal,
        ts: DateTime<Utc>,
        source: Option<&str>,
    ) -> Self {
        PriceTick {
            symbol_code: symbol_code.into(),
            price,
            ts,
            source: source.map(str::to_owned),
        }
    }

    /// Whether the demo feed made this price up.
    pub fn is_demo(&self) -> bool {
        self.source.as_deref() == Some(DEMO_SOURCE)
    }
}

impl From<&Quote> for PriceTick {
    fn from(q: &Quote) -> Self {
        PriceTick {
            symbol_code: q.symbol_code.clone(),
            price: q.price,
            ts: q.timestamp,
            source: q.source.clone(),
        }
    }
}

/// One fetched batch of quotes; symbols the provider failed for are listed with the reason.
#[derive(Debug, Default)]
pub struct QuoteBatch {
    /// Good quotes.
    pub quotes: Vec<Quote>,
    /// Symbols (codes) that failed, with why.
    pub failures: Vec<SymbolFailure>,
}

impl QuoteBatch {
    /// Record one symbol's answer: its quote, or why it could not be priced.
    pub fn record(&mut self, symbol_code: &str, answer: crate::Result<Quote>) {
        match answer {
            Ok(q) => self.quotes.push(q),
            Err(error) => self.failures.push(SymbolFailure {
                symbol_code: symbol_code.to_owned(),
                error,
            }),
        }
    }
}

/// A symbol a provider could not price in this call.
#[derive(Debug)]
pub struct SymbolFailure {
    /// Symbol code.
    pub symbol_code: String,
    /// Why.
    pub error: crate::Error,
}

/// A price at an instant, from a provider's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricePoint {
    /// The price.
    pub price: Decimal,
    /// Its instant.
    pub ts: DateTime<Utc>,
    /// The provider that answered ([`MarketData::name`](crate::MarketData::name)).
    #[serde(default)]
    pub source: Option<String>,
}

/// A "first tick of `symbol_code` at or after `at`" question.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TickQuery {
    /// Symbol code.
    pub symbol_code: String,
    /// The instant.
    pub at: DateTime<Utc>,
    /// Whether a tick of the demo feed (`source = 'demo'`) may answer. Only an instance that
    /// runs on the demo feed alone asks with `true`: made-up prices never decide a prediction
    /// of a real deployment (guide: *How the price at verify time is chosen*).
    #[serde(default)]
    pub allow_demo: bool,
}

impl TickQuery {
    /// The first real (non-demo) tick of `symbol_code` at or after `at`.
    pub fn new(symbol_code: impl Into<String>, at: DateTime<Utc>) -> Self {
        TickQuery {
            symbol_code: symbol_code.into(),
            at,
            allow_demo: false,
        }
    }

    /// Let demo ticks answer too (an instance on the demo feed alone).
    pub fn with_demo(mut self, allow: bool) -> Self {
        self.allow_demo = allow;
        self
    }

    /// Whether `tick` may answer this query.
    pub fn admits(&self, tick: &PriceTick) -> bool {
        self.allow_demo || !tick.is_demo()
    }
}

/// One price event of a provider's live stream ([`MarketStream`](crate::MarketStream)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPrice {
    /// Symbol code (ours, e.g. `XAUUSD`, not the provider's `XAU/USD`).
    pub symbol_code: String,
    /// The traded or quoted price, parsed exactly from the provider's text.
    pub price: Decimal,
    /// When the provider priced it.
    pub timestamp: DateTime<Utc>,
    /// The price the change is measured against, when the event carries one (Binance's
    /// mini ticker: the open 24 hours ago). `None`: the previous close of the last polled quote
    /// of the symbol is used (Twelve Data's events carry none).
    pub reference: Option<Decimal>,
}

/// What a provider's live stream says.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamEvent {
    /// The provider's answer to the subscription: the codes it streams and those it refused
    /// (refused symbols stay with polling).
    Subscribed {
        /// Codes the provider streams.
        symbols: Vec<String>,
        /// Codes it refused, with why.
        failures: Vec<SymbolFailure>,
    },
    /// A price.
    Price(StreamPrice),
}
