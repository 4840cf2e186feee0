//! # goldjobs-core
//!
//! The domain, ports (traits), job runtime, the jobs, the condition language and an in-memory
//! adapter for every port. No I/O backend lives here; see `goldjobs-adapters`, and the `goldjobs`
//! facade for the whole service in a few lines.
//!
//! One prediction in the platform's shape, verified on the in-memory backend: a voter for the
//! option that came true gets the point.
//!
//! ```
//! use chrono::{Duration, Utc};
//! use goldjobs_core::jobs::PredictionVerifierJob;
//! use goldjobs_core::memory::InMemoryBackend;
//! use goldjobs_core::runtime::{Job, JobContext};
//! use goldjobs_core::*;
//! use rust_decimal::Decimal;
//! use std::sync::Arc;
//!
//! /// A market without history: the verifier takes the recorded tick.
//! struct Ticks;
//! #[async_trait::async_trait]
//! impl MarketData for Ticks {
//!     fn name(&self) -> &'static str {
//!         "ticks"
//!     }
//!     async fn quotes(&self, _: &[Symbol]) -> Result<QuoteBatch> {
//!         Ok(QuoteBatch::default())
//!     }
//!     async fn price_at(&self, _: &Symbol, _: chrono::DateTime<Utc>) -> Result<Option<PricePoint>> {
//!         Ok(None)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! let ports = InMemoryBackend::new().ports();
//! let deadline = Utc::now() - Duration::seconds(10);
//! let conditions = r#"{"A": {"condition": "price_change_percent >= 1.0"},
//!                      "B": {"condition": "price_change_percent < 1.0"}}"#;
//! let prediction = Prediction::new_active(
//!     "p1", "XAUUSD", "Gold up 1 % by Friday?", Decimal::new(265_000, 2), deadline,
//!     VerifyRule::Auto, Some(conditions.into()), deadline - Duration::days(3),
//! );
//! ports.predictions.insert_prediction(&prediction).await?;
//! let vote = |user: &str, option: &str| Vote {
//!     prediction_id: "p1".into(),
//!     user_id: user.into(),
//!     selected_option: option.into(),
//!     is_correct: None,
//!     created_at: deadline - Duration::days(1),
//! };
//! ports.predictions.insert_votes(&[vote("ana", "A"), vote("ben", "B")]).await?;
//! // The first tick at or after the deadline is the price at verify time: +1.13 %.
//! let tick = PriceTick::new("XAUUSD", Decimal::new(268_000, 2), deadline, Some("twelvedata"));
//! ports.ticks.insert_ticks(&[tick]).await?;
//!
//! let verifier = PredictionVerifierJob::new(&ports, Arc::new(Ticks));
//! let ctx = JobContext {
//!     cancel: Default::default(),
//!     clock: Arc::new(SystemClock),
//!     attempt: 1,
//! };
//! let report = verifier.run(&ctx).await?;
//! assert!(report.summary.contains("1 verified"), "{}", report.summary);
//!
//! let p = ports.predictions.get_prediction("p1").await?.expect("stored");
//! assert_eq!(p.status, PredictionStatus::Ended);
//! assert_eq!(p.correct_option.as_deref(), Some("A"));
//! assert_eq!(p.price_change_percent, Some(Decimal::new(113, 2)));
//! let stats = ports.predictions.user_stats(&["ana".into(), "ben".into()]).await?;
//! let ana = stats.iter().find(|s| s.user_id == "ana").expect("ana voted");
//! assert_eq!((ana.correct_count, ana.current_streak), (1, 1));
//! # Ok(())
//! # }
//! ```
//!
//! The rules these types implement (how the price is chosen, the condition language, rounding,
//! corrections and voids) are explained in the user guide, `docs/` in the repository (built with
//! `mdbook build docs`); rustdoc comments name its chapters as *guide: Chapter*.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backoff;
mod clock;
pub mod condition;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
mod error;
pub mod jobs;
mod market;
pub mod memory;
mod model;
pub mod news;
mod ports;
pub mod runtime;
pub mod verify;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use error::{chain_message, BoxError, Error, Result};
pub use market::{
    validate_price, validate_price_point, validate_quote, HISTORY_WINDOW, MAX_QUOTE_AGE,
    MAX_QUOTE_LEAD,
};
pub use model::*;
pub use ports::*;
