//! Predictions, votes, verdicts, statistics and admin revisions (guide: *Verification rules*).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// How a prediction is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyRule {
    /// By `auto_verify_conditions` (guide: *The condition object*).
    Auto,
    /// By an admin through `POST /admin/predictions/{id}/resolve`.
    Manual,
}

impl VerifyRule {
    /// The database/wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyRule::Auto => "auto",
            VerifyRule::Manual => "manual",
        }
    }
}

impl std::str::FromStr for VerifyRule {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(VerifyRule::Auto),
            "manual" => Ok(VerifyRule::Manual),
            other => Err(crate::Error::invalid(format!(
                "verify_rule {other:?}: expected auto or manual"
            ))),
        }
    }
}

/// Lifecycle of a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionStatus {
    /// Open for verification.
    Active,
    /// Verified.
    Ended,
    /// Could not be verified automatically; an admin must resolve it.
    NeedsReview,
    /// Voided by an admin (guide: *Corrections and voids*): counts for nobody. Final.
    Void,
}

impl PredictionStatus {
    /// The database/wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PredictionStatus::Active => "active",
            PredictionStatus::Ended => "ended",
            PredictionStatus::NeedsReview => "needs_review",
            PredictionStatus::Void => "void",
        }
    }
}

impl std::str::FromStr for PredictionStatus {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(PredictionStatus::Active),
            "ended" => Ok(PredictionStatus::Ended),
            "needs_review" => Ok(PredictionStatus::NeedsReview),
            "void" => Ok(PredictionStatus::Void),
            other => Err(crate::Error::invalid(format!(
                "status {other:?}: expected active, ended, needs_review or void"
            ))),
        }
    }
}

/// Where `price_at_verify` came from (guide: *What a verdict records*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    /// The first recorded tick at or after `verify_time`.
    Tick,
    /// The provider's historical price at `verify_time` (after downtime).
    ProviderHistory,
    /// Resolved by an admin.
    Manual,
}

impl PriceSource {
    /// The database/wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::Tick => "tick",
            PriceSource::ProviderHistory => "provider_history",
            PriceSource::Manual => "manual",
        }
    }
}

impl std::str::FromStr for PriceSource {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tick" => Ok(PriceSource::Tick),
            "provider_history" => Ok(PriceSource::ProviderHistory),
            "manual" => Ok(PriceSource::Manual),
            other => Err(crate::Error::invalid(format!(
                "price_source {other:?}: expected tick, provider_history or manual"
            ))),
        }
    }
}

/// A price prediction that users vote on (`predictions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prediction {
    /// Id (text).
    pub id: String,
    /// Symbol code.
    pub symbol_code: String,
    /// The question shown to users.
    pub question: String,
    /// Price when the prediction was created.
    pub price_at_create: Decimal,
    /// Price at verification, once verified.
    pub price_at_verify: Option<Decimal>,
    /// Rounded change in percent (§6.3), once verified.
    pub price_change_percent: Option<Decimal>,
    /// When to verify.
    pub verify_time: DateTime<Utc>,
    /// Auto or manual.
    pub verify_rule: VerifyRule,
    /// The raw JSON object, kept as text because the key order matters (§6.4): the platform's
    /// shape `{"A": {"condition": "price_change_percent >= 1.0"}, ...}` or plain strings
    /// `{"A": "price_change_percent >= 1.0"}`. Parse with `ConditionSet::from_json`.
    pub auto_verify_conditions: Option<String>,
    /// The winning option, once verified.
    pub correct_option: Option<String>,
    /// Lifecycle status.
    pub status: PredictionStatus,
    /// Why it needs review.
    pub review_reason: Option<String>,
    /// Where `price_at_verify` came from.
    pub price_source: Option<PriceSource>,
    /// The market data provider of `price_at_verify` (`twelvedata`, `binance`, `demo`), when
    /// known: the tick's `source` or the provider whose history answered.
    #[serde(default)]
    pub price_provider: Option<String>,
    /// The instant of `price_at_verify`.
    pub price_at_verify_ts: Option<DateTime<Utc>>,
    /// When it was verified.
    pub verified_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Prediction {
    /// A new active prediction with nothing verified yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new_active(
        id: impl Into<String>,
        symbol_code: impl Into<String>,
        question: impl Into<String>,
        price_at_create: Decimal,
        verify_time: DateTime<Utc>,
        verify_rule: VerifyRule,
        auto_verify_conditions: Option<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Prediction {
            id: id.into(),
            symbol_code: symbol_code.into(),
            question: question.into(),
            price_at_create,
            price_at_verify: None,
            price_change_percent: None,
            verify_time,
            verify_rule,
            auto_verify_conditions,
            correct_option: None,
            status: PredictionStatus::Active,
            review_reason: None,
            price_source: None,
            price_provider: None,
            price_at_verify_ts: None,
            verified_at: None,
            created_at,
        }
    }
}

/// Which predictions [`list_predictions`](crate::PredictionRepository::list_predictions)
/// answers (`GET /predictions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PredictionQuery {
    /// Only this status.
    pub status: Option<PredictionStatus>,
    /// Only this symbol code.
    pub symbol_code: Option<String>,
    /// At most this many (callers keep it within 1–100).
    pub limit: u32,
}

impl Default for PredictionQuery {
    fn default() -> Self {
        PredictionQuery {
            status: None,
            symbol_code: None,
            limit: 20,
        }
    }
}

impl PredictionQuery {
    /// Only predictions of this status.
    pub fn with_status(mut self, status: PredictionStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// Only predictions of this symbol.
    pub fn with_symbol(mut self, symbol_code: impl Into<String>) -> Self {
        self.symbol_code = Some(symbol_code.into());
        self
    }
    /// At most `limit` predictions.
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// The earliest deadline of one symbol's active `auto` predictions, as
/// [`next_due`](crate::PredictionRepository::next_due) answers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DueSymbol {
    /// The symbol.
    pub symbol_code: String,
    /// The earliest `verify_time` of its active `auto` predictions (past or future).
    pub verify_time: DateTime<Utc>,
}

impl DueSymbol {
    /// `symbol_code`'s earliest deadline is `verify_time`.
    pub fn new(symbol_code: impl Into<String>, verify_time: DateTime<Utc>) -> Self {
        DueSymbol {
            symbol_code: symbol_code.into(),
            verify_time,
        }
    }
}

/// How many votes one option of a prediction got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionVotes {
    /// The option, e.g. `A`.
    pub option: String,
    /// Votes for it.
    pub votes: u64,
}

/// A user's vote on a prediction (`prediction_votes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The prediction.
    pub prediction_id: String,
    /// The voter.
    pub user_id: String,
    /// The option chosen, e.g. `A`.
    pub selected_option: String,
    /// Set on verification.
    pub is_correct: Option<bool>,
    /// When the vote was cast.
    pub created_at: DateTime<Utc>,
}

/// A user's running prediction statistics (`user_prediction_stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStats {
    /// The user.
    pub user_id: String,
    /// Verified predictions voted on.
    pub total_participations: i64,
    /// Of which correct.
    pub correct_count: i64,
    /// `correct_count / total_participations × 100`, 2 places, half away from zero.
    pub accuracy_rate: Decimal,
    /// Correct in a row, up to now.
    pub current_streak: i64,
    /// Longest run of correct predictions.
    pub max_streak: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl UserStats {
    /// Stats of a user who has not participated yet.
    pub fn empty(user_id: impl Into<String>, now: DateTime<Utc>) -> Self {
        UserStats {
            user_id: user_id.into(),
            total_participations: 0,
            correct_count: 0,
            accuracy_rate: crate::verify::accuracy_rate(0, 0),
            current_streak: 0,
            max_streak: 0,
            updated_at: now,
        }
    }
}

/// The decision for a prediction that was verified (guide: *What a verdict records*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The winning option.
    pub correct_option: String,
    /// The price used.
    pub price_at_verify: Decimal,
    /// `(verify − create) / create × 100`, 2 places, half to even; `None` when it is
    /// undefined (`price_at_create <= 0`, only possible for an admin's resolution of a
    /// `needs_review` prediction): stored as `NULL`, never a made-up number.
    pub price_change_percent: Option<Decimal>,
    /// Where the price came from.
    pub price_source: PriceSource,
    /// The provider of that price, when known (`predictions.price_provider`).
    #[serde(default)]
    pub price_provider: Option<String>,
    /// The instant of that price.
    pub price_at_verify_ts: DateTime<Utc>,
}

/// What the verifier decided about one claimed prediction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerificationOutcome {
    /// Verified: mark it ended, mark votes, update stats, queue broadcast and notifications.
    Verified(Verdict),
    /// Could not be decided automatically; `status = 'needs_review'` with the reason.
    NeedsReview {
        /// Why, in words an admin understands.
        reason: String,
    },
}

/// One verification to record atomically through `PredictionRepository::record_verifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// The prediction.
    pub prediction_id: String,
    /// The decision.
    pub outcome: VerificationOutcome,
    /// When it was decided.
    pub verified_at: DateTime<Utc>,
    /// An admin's manual resolution: may also resolve `needs_review` predictions.
    pub manual: bool,
}

/// What `record_verifications` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    /// Ids now `ended`.
    pub verified: Vec<String>,
    /// Ids now `needs_review`.
    pub needs_review: Vec<String>,
    /// Ids not touched because they were no longer eligible (e.g. verified by another instance).
    pub skipped: Vec<String>,
    /// Votes marked.
    pub votes_marked: u64,
}

/// A price an admin gives for a prediction (a correction's or a resolution's
/// `price_at_verify`), recorded with `price_source = 'manual'`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualPrice {
    /// The price.
    pub price_at_verify: Decimal,
    /// The change it gives against `price_at_create` (§6.3); `None` when undefined.
    pub price_change_percent: Option<Decimal>,
    /// The instant the price stands for (the prediction's `verify_time`).
    pub price_at_verify_ts: DateTime<Utc>,
}

/// An admin's correction of an `ended` prediction (guide: *Corrections and voids*), recorded
/// through `PredictionRepository::record_correction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// The prediction.
    pub prediction_id: String,
    /// The winning option from now on.
    pub correct_option: String,
    /// A new price; `None` keeps the recorded price, change and source.
    pub price: Option<ManualPrice>,
    /// When it was corrected (the recomputed statistics' `updated_at`).
    pub corrected_at: DateTime<Utc>,
}

/// An admin's void of a prediction (guide: *Corrections and voids*), recorded through
/// `PredictionRepository::record_void`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoidRecord {
    /// The prediction.
    pub prediction_id: String,
    /// Why (becomes `review_reason`).
    pub reason: String,
    /// When it was voided.
    pub voided_at: DateTime<Utc>,
}

/// What a correction or a void did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The status before (a correction: always `ended`).
    pub previous_status: PredictionStatus,
    /// The winning option before, if it had one.
    pub previous_option: Option<String>,
    /// Votes re-marked (a void: set to `NULL`).
    pub votes_marked: u64,
    /// Users whose statistics were recomputed from their votes.
    pub users_recomputed: u64,
}

/// Whether [`recompute_stats`](crate::PredictionRepository::recompute_stats) writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecomputeMode {
    /// Compare only; write nothing.
    Check,
    /// Replace every differing user's statistics, in one transaction.
    Fix,
}

/// A user whose stored statistics differ from the recomputation from the verified votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsDiff {
    /// The user.
    pub user_id: String,
    /// The stored statistics, `None` when the user has none.
    pub stored: Option<UserStats>,
    /// What the verified votes give (its `updated_at` is the recomputation's instant).
    pub recomputed: UserStats,
}

impl StatsDiff {
    /// Stored statistics with no verified vote behind them (imported without their votes):
    /// the recomputation replaces them with zeros.
    pub fn without_votes(&self) -> bool {
        // A diff with stored statistics and no vote: the stored numbers are not all zero.
        self.recomputed.total_participations == 0 && self.stored.is_some()
    }
}

impl UserStats {
    /// Whether the numbers (not `updated_at`) are the same.
    pub fn same_numbers(&self, other: &UserStats) -> bool {
        self.total_participations == other.total_participations
            && self.correct_count == other.correct_count
            && self.accuracy_rate == other.accuracy_rate
            && self.current_streak == other.current_streak
            && self.max_streak == other.max_streak
    }
}
