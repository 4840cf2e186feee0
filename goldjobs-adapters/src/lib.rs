//! # goldjobs-adapters
//!
//! Real backends for the ports of `goldjobs-core`, one module per backend, each behind a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(
    feature = "twelvedata",
    feature = "binance",
    feature = "rss",
    feature = "fcm",
    feature = "webhook"
))]
mod headers;
pub mod market;
#[cfg(feature = "rss")]
pub mod news;
pub mod notify;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub mod sql;
