//! Market data providers: Twelve Data, Binance, the demo feed and the fallback composite.
//!
//! Every provider implements [`goldjobs_core::MarketData`]; compose them with
//! [`FallbackMarketData`] (primary first, then fallbacks for the symbols it failed for).

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
