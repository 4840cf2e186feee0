//! Prediction verification (CONTRACT.md §6): the verifier job, statistics, the outbox dispatcher.
//!
//! - [`stats`]: the rounding rules of §6.3 and the statistics of §6.6, as pure functions.
//! - [`PredictionVerifierJob`]: claims due predictions, decides them and records the batch.
//! - [`ManualResolver`]: `POST /admin/predictions/{id}/resolve` (also corrections) and
//!   `/void` (§6.7).
//! - [`OutboxDispatcherJob`]: delivers the broadcasts and notifications recorded in the outbox.
//! - [`templates`]: notification texts (`zh-CN`, `en`).
//! - [`evidence`]: why an option won, for `GET /predictions/{id}` ([`PredictionReader`]).

pub mod evidence;
mod job;
pub mod outbox;
pub mod stats;
pub mod templates;
#[cfg(test)]
mod tests;

pub use evidence::{OptionEvidence, PredictionEvidence, PredictionReader, PredictionSummary};
pub use job::{ManualResolver, PredictionVerifierJob, VerifierConfig, MAX_REASON_CHARS};
pub use outbox::{OutboxConfig, OutboxDispatcherJob};
pub use stats::{accuracy_rate, apply_result, price_change_percent, stats_from_results};
pub use templates::{render_notice, Locale};
