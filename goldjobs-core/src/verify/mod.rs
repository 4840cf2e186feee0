//! The rules of prediction verification (guide: *Verification rules*): how the price is found,
//! statistics, notification texts, evidence, and manual resolution. The jobs that apply them are
//! [`PredictionVerifierJob`](crate::jobs::PredictionVerifierJob) and
//! [`OutboxDispatcherJob`](crate::jobs::OutboxDispatcherJob).
//!
//! - [`stats`]: the rounding rules of §6.3 and the statistics of §6.6, as pure functions.
//! - [`ManualResolver`]: `POST /admin/predictions/{id}/resolve` (also corrections) and
//!   `/void` (§6.7).
//! - [`templates`]: notification texts (`zh-CN`, `en`).
//! - [`evidence`]: why an option won, for `GET /predictions/{id}` ([`PredictionReader`]).

pub mod evidence;
pub(crate) mod pricing;
mod resolve;
pub mod stats;
pub mod templates;
#[cfg(test)]
mod tests;

pub use evidence::{OptionEvidence, PredictionEvidence, PredictionReader, PredictionSummary};
pub use resolve::{ManualResolver, MAX_REASON_CHARS};
pub use stats::{accuracy_rate, apply_result, price_change_percent, stats_from_results};
pub use templates::{render_notice, Locale};
