//! # goldjobs
//!
//! Background jobs for a precious-metals social platform: live prices, news, and fair,
//! explained verdicts on price predictions, on a job runtime that keeps its rhythm.
//!
//! The standard service, on its defaults (in-memory storage, in-process cache and hub, the demo
//! market feed), in a few lines:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use goldjobs::prelude::*;
//! use std::time::Duration;
//!
//! let service = Service::builder(ServiceConfig::default()).start().await?;
//! println!("{}", service.description());
//! service.shutdown(Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```
//!
//! This facade is what an embedder depends on:
//!
//! - [`service`]: the standard service in a few lines — [`Service::builder`] opens the stores
//!   ([`ServiceConfig::database_url`]: PostgreSQL, SQLite or in memory), the caches and event
//!   bus (Redis or in-process), the market data chain, the feeds and the notifiers, registers
//!   the standard jobs and hands back the [`JobManager`](runtime::JobManager), the event stream
//!   and the read services;
//! - the domain, ports and jobs of [`goldjobs_core`], re-exported here (types at the crate root,
//!   jobs in [`jobs`], the runtime in [`runtime`], the condition language in [`condition`]);
//! - [`adapters`] (features `postgres`, `sqlite`, `redis`, `twelvedata`, `binance`, `demo`,
//!   `rss`, `fcm`, `webhook`, or `full`): the real backends.
//!
//! `use goldjobs::prelude::*;` brings the names most programs use.
//!
//! The user guide, `docs/` in the repository (built with `mdbook build docs`), explains the
//! configuration, the HTTP API, the WebSocket protocol, the Redis keys and tables, the
//! verification rules and operations; rustdoc comments name its chapters as *guide: Chapter*.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use goldjobs_core::*;

/// Adapters to real backends (enable features `postgres`, `sqlite`, `redis`, `twelvedata`, ...).
#[cfg(feature = "adapters")]
pub use goldjobs_adapters as adapters;

pub mod service;

pub use service::{Service, ServiceBuilder, ServiceConfig, ServiceError};

/// The names most programs use: the service and its config, the job runtime, the ports and
/// the domain types they speak.
pub mod prelude {
    pub use crate::service::{
        MarketDataSource, Service, ServiceBuilder, ServiceConfig, ServiceError,
    };
    pub use goldjobs_core::runtime::{Job, JobContext, JobManager, RunReport, Schedule};
    pub use goldjobs_core::{
        Broadcast, Broadcaster, Clock, Error, MarketData, NewsSource, Notification, Notifier,
        Ports, PricePoint, Quote, QuoteBatch, Result, Symbol, SystemClock,
    };
}
