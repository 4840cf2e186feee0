//! Market data providers: Twelve Data, Binance, the demo feed and the fallback composite.
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
#[cfg(feature = "demo")]
pub mod demo;
pub mod fallback;
#[cfg(any(feature = "twelvedata", feature = "binance"))]
mod http;
#[cfg(feature = "twelvedata")]
pub mod twelvedata;

#[cfg(feature = "binance")]
pub use binance::{binance_symbol, BinanceConfig, BinanceMarketData};
#[cfg(feature = "demo")]
pub use demo::DemoMarketData;
pub use fallback::FallbackMarketData;
#[cfg(feature = "twelvedata")]
pub use twelvedata::{
    check_budget, TwelveDataConfig, TwelveDataMarketData, DEFAULT_HISTORY_RESERVE,
};
