//! Market data providers: Twelve Data, Binance, the demo feed and the fallback composite, and
//! the live price streams of Twelve Data and Binance ([`goldjobs_core::MarketStream`]).
//!
//! Every provider implements [`goldjobs_core::MarketData`]; compose real providers with
//! [`FallbackMarketData`] (primary first, then fallbacks for the symbols it failed for). The demo
//! feed only ever runs alone: a chain that mixes it with a real provider is refused.
//!
//! What every provider answers is held to the rules of [`goldjobs_core::validate_quote`]: prices > 0,
//! fresh quote timestamps (checked by the price job), and a historical price that is the open of
//! the first 1-minute candle starting at or after the instant asked, at most a minute later.

#[cfg(feature = "binance")]
pub mod binance;
#[cfg(feature = "binance-stream")]
pub mod binance_stream;
#[cfg(feature = "demo")]
pub mod demo;
pub mod fallback;
#[cfg(any(feature = "twelvedata", feature = "binance"))]
mod http;
#[cfg(feature = "twelvedata")]
pub mod twelvedata;
#[cfg(feature = "twelvedata-stream")]
pub mod twelvedata_stream;
#[cfg(feature = "ws")]
mod ws;

#[cfg(feature = "binance")]
pub use binance::{binance_symbol, BinanceConfig, BinanceMarketData};
#[cfg(feature = "binance-stream")]
pub use binance_stream::{BinanceStream, BinanceStreamConfig};
#[cfg(feature = "demo")]
pub use demo::DemoMarketData;
pub use fallback::FallbackMarketData;
#[cfg(feature = "twelvedata")]
pub use twelvedata::{
    check_budget, TwelveDataConfig, TwelveDataMarketData, DEFAULT_HISTORY_RESERVE,
};
#[cfg(feature = "twelvedata-stream")]
pub use twelvedata_stream::{TwelveDataStream, TwelveDataStreamConfig};

/// What the market data adapters refuse; becomes [`Error::InvalidInput`](goldjobs_core::Error)
/// with its whole chain.
#[derive(Debug, thiserror::Error)]
#[allow(dead_code)] // each variant is used by one feature's provider
enum MarketError {
    #[error("TWELVEDATA_API_KEY: the API key is empty")]
    NoApiKey,
    #[error("TWELVEDATA_API_KEY: the API key contains characters not allowed in a header")]
    ApiKeyChars,
    #[error("{code}: provider symbol {provider_symbol:?} contains a comma")]
    CommaInSymbol {
        code: String,
        provider_symbol: String,
    },
    #[error("GOLDJOBS_MARKET_DATA: at least one market data provider is needed")]
    NoProvider,
    #[error(
        "GOLDJOBS_MARKET_DATA: {0:?} mixes the demo feed with a real provider; demo is allowed only alone"
    )]
    DemoMixed(String),
    #[error("symbols not serializable")]
    SymbolList(#[source] serde_json::Error),
}

impl From<MarketError> for goldjobs_core::Error {
    fn from(e: MarketError) -> Self {
        goldjobs_core::Error::invalid_from(&e)
    }
}
