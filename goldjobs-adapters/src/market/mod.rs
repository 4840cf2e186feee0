//! Market data providers: Twelve Data, Binance, the demo feed and the fallback composite.
