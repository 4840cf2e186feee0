//! Domain types. Serde shapes follow CONTRACT.md: decimals are JSON strings, timestamps RFC 3339 UTC.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A tradable symbol, e.g. code `XAUUSD`, provider symbol `XAU/USD`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Symbol {
    /// Our code, upper case, e.g. `XAUUSD`.
    pub code: String,
    /// Human name, e.g. `Gold / US Dollar`.
    pub name: String,
    /// The market data provider's symbol, e.g. `XAU/USD`.
    pub provider_symbol: String,
    /// Whether the price job fetches it.
    pub active: bool,
}

impl Symbol {
    /// A new active symbol.
    pub fn new(code: &str, name: &str, provider_symbol: &str) -> Self {
        Self {
            code: code.to_owned(),
            name: name.to_owned(),
            provider_symbol: provider_symbol.to_owned(),
            active: true,
        }
    }

    /// The six default symbols that migrations seed.
    pub fn defaults() -> Vec<Symbol> {
        vec![
            Symbol::new("XAUUSD", "Gold / US Dollar", "XAU/USD"),
            Symbol::new("XAGUSD", "Silver / US Dollar", "XAG/USD"),
            Symbol::new("EURUSD", "Euro / US Dollar", "EUR/USD"),
            Symbol::new("GBPUSD", "British Pound / US Dollar", "GBP/USD"),
            Symbol::new("USDJPY", "US Dollar / Japanese Yen", "USD/JPY"),
            Symbol::new("BTCUSD", "Bitcoin / US Dollar", "BTC/USD"),
        ]
    }
}

/// The latest quote of a symbol, as cached in `quote:{SYMBOL}` and served by `GET /quotes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Symbol code, e.g. `XAUUSD`.
    pub symbol_code: String,
    /// Last price.
    pub price: Decimal,
    /// Change against the previous close.
    pub change: Decimal,
    /// Change in percent against the previous close.
    pub change_percent: Decimal,
    /// When the provider priced it.
    pub timestamp: DateTime<Utc>,
    /// The provider that priced it ([`MarketData::name`](crate::ports::MarketData::name), e.g.
    /// `twelvedata`), recorded as the tick's `source`. Not part of the wire shape (`/quotes`,
    /// `quote:{SYMBOL}`), so read back from a cache it is `None`.
    #[serde(skip)]
    pub source: Option<String>,
}

/// The `source` of prices made up by the demo feed (`price_ticks.source`, CONTRACT.md §7).
pub const DEMO_SOURCE: &str = "demo";

/// One recorded price of a symbol (`price_ticks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTick {
    /// Symbol code.
    pub symbol_code: String,
    /// The price.
    pub price: Decimal,
    /// The instant of the price.
    pub ts: DateTime<Utc>,
    /// The provider of the price (`price_ticks.source`: `twelvedata`, `binance`, `demo`, …);
    /// `None` for rows written by other programs or before 0.2, which count as a real provider.
    #[serde(default)]
    pub source: Option<String>,
}

impl PriceTick {
    /// A tick with its provider.
    pub fn new(
        symbol_code: impl Into<String>,
        price: Decimal,
        ts: DateTime<Utc>,
        source: Option<&str>,
    ) -> Self {
        PriceTick {
            symbol_code: symbol_code.into(),
            price,
            ts,
            source: source.map(str::to_owned),
        }
    }

    /// Whether the demo feed made this price up.
    pub fn is_demo(&self) -> bool {
        self.source.as_deref() == Some(DEMO_SOURCE)
    }
}

impl From<&Quote> for PriceTick {
    fn from(q: &Quote) -> Self {
        PriceTick {
            symbol_code: q.symbol_code.clone(),
            price: q.price,
            ts: q.timestamp,
            source: q.source.clone(),
        }
    }
}

/// A news article (`news_articles`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewsArticle {
    /// Stable id (derived from the canonical URL by the news job).
    pub id: String,
    /// Headline.
    pub title: String,
    /// Short summary (plain text).
    pub summary: String,
    /// Full content when the feed carries it.
    pub content: Option<String>,
    /// The link as the feed gave it (resolved to absolute).
    pub url: String,
    /// The canonical URL used for deduplication.
    pub canonical_url: String,
    /// The publisher, e.g. `Kitco`.
    pub source: String,
    /// Category, e.g. `gold`, `forex`, `markets`.
    pub category: String,
    /// Thumbnail image URL.
    pub thumbnail_url: Option<String>,
    /// When published (fetch time when the feed does not say).
    pub published_at: DateTime<Utc>,
    /// Symbols the article talks about, e.g. `["XAUUSD"]`.
    pub related_symbols: Vec<String>,
    /// When we stored it.
    pub created_at: DateTime<Utc>,
}

/// How a prediction is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyRule {
    /// By `auto_verify_conditions` (CONTRACT.md §6.4).
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
    /// Voided by an admin (CONTRACT.md §6.7): counts for nobody. Final.
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

/// Where `price_at_verify` came from (CONTRACT.md §6.6).
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

/// Which predictions [`list_predictions`](crate::ports::PredictionRepository::list_predictions)
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
            accuracy_rate: Decimal::ZERO,
            current_streak: 0,
            max_streak: 0,
            updated_at: now,
        }
    }
}

/// A registered device of a user (`device_tokens`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceToken {
    /// The user.
    pub user_id: String,
    /// The FCM registration token.
    pub token: String,
    /// `android`, `ios` or `web`.
    pub platform: String,
}

/// A push notification to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The recipient.
    pub user_id: String,
    /// Title line.
    pub title: String,
    /// Body text.
    pub body: String,
    /// Data payload; FCM wants string values.
    pub data: BTreeMap<String, String>,
    /// An id of this delivery that stays the same across its retries (the outbox sets it from
    /// the row), so a receiver can drop a repeat; not part of the JSON body.
    #[serde(skip)]
    pub delivery_id: Option<String>,
}

/// The decision for a prediction that was verified (CONTRACT.md §6.6).
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

/// Payload of the `prediction_verified` WebSocket message (CONTRACT.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionVerified {
    /// The prediction.
    pub prediction_id: String,
    /// Its symbol.
    pub symbol_code: String,
    /// The winning option.
    pub correct_option: String,
    /// The price used.
    pub price_at_verify: Decimal,
    /// The rounded change in percent; `null` when undefined (`price_at_create <= 0`).
    pub price_change_percent: Option<Decimal>,
    /// Where the price came from.
    pub price_source: PriceSource,
    /// The instant of that price.
    pub price_at_verify_ts: DateTime<Utc>,
}

/// Payload of the `prediction_corrected` WebSocket message (CONTRACT.md §4, §6.7): the fields
/// of [`PredictionVerified`] after the correction, and the option that was correct before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionCorrected {
    /// The prediction.
    pub prediction_id: String,
    /// Its symbol.
    pub symbol_code: String,
    /// The winning option now.
    pub correct_option: String,
    /// The price now recorded.
    pub price_at_verify: Decimal,
    /// The rounded change in percent now recorded; `null` when undefined.
    pub price_change_percent: Option<Decimal>,
    /// Where the recorded price came from (`manual` when the correction gave one).
    pub price_source: PriceSource,
    /// The instant of that price.
    pub price_at_verify_ts: DateTime<Utc>,
    /// The winning option before the correction.
    pub previous_option: String,
}

/// Payload of the `prediction_voided` WebSocket message (CONTRACT.md §4, §6.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionVoided {
    /// The prediction.
    pub prediction_id: String,
    /// Its symbol.
    pub symbol_code: String,
    /// Why it was voided (the admin's words).
    pub reason: String,
}

/// Payload of the `price_update` WebSocket message (CONTRACT.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceUpdate {
    /// Symbol code.
    pub symbol_code: String,
    /// Last price.
    pub price: Decimal,
    /// Change.
    pub change: Decimal,
    /// Change in percent.
    pub change_percent: Decimal,
    /// Instant of the quote.
    pub timestamp: DateTime<Utc>,
    /// Per-symbol sequence number, +1 per update.
    pub seq: u64,
}

/// A server → client event, serialized as `{"type": "...", "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum Event {
    /// A new price of one symbol.
    PriceUpdate(PriceUpdate),
    /// A prediction was verified.
    PredictionVerified(PredictionVerified),
    /// The result of a verified prediction was corrected by an admin (§6.7).
    PredictionCorrected(PredictionCorrected),
    /// A prediction was voided by an admin (§6.7).
    PredictionVoided(PredictionVoided),
}

impl Event {
    /// The topic subscribers receive it on.
    pub fn topic(&self) -> Topic {
        match self {
            Event::PriceUpdate(p) => Topic::Symbol(p.symbol_code.clone()),
            Event::PredictionVerified(_)
            | Event::PredictionCorrected(_)
            | Event::PredictionVoided(_) => Topic::All,
        }
    }

    /// Serialize once into shared bytes.
    pub fn to_broadcast(&self) -> crate::Result<Broadcast> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| crate::Error::invalid(format!("event not serializable: {e}")))?;
        Ok(Broadcast {
            topic: self.topic(),
            payload: bytes::Bytes::from(bytes),
        })
    }
}

/// Who receives a broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Clients subscribed to this symbol code.
    Symbol(String),
    /// Every connected client.
    All,
}

/// A serialized message and who receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// Who receives it.
    pub topic: Topic,
    /// The serialized JSON text, shared by all receivers.
    pub payload: bytes::Bytes,
}

/// What happened to a prediction that its voters are told about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// It was verified (§6.6). The default, so rows written before 0.2 decode as this.
    #[default]
    Verified,
    /// Its result was corrected (§6.7).
    Corrected,
    /// It was voided (§6.7).
    Voided,
}

impl NoticeKind {
    /// The database/wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Verified => "verified",
            NoticeKind::Corrected => "corrected",
            NoticeKind::Voided => "voided",
        }
    }

    /// Whether this is [`NoticeKind::Verified`] (serialized by omission).
    pub fn is_verified(&self) -> bool {
        *self == NoticeKind::Verified
    }
}

/// What a voter is told after a verification, correction or void; rendered into a
/// [`Notification`] at delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterNotice {
    /// The voter.
    pub user_id: String,
    /// The prediction.
    pub prediction_id: String,
    /// Its question.
    pub question: String,
    /// The voter's option.
    pub selected_option: String,
    /// Whether it was right (meaningless, and `false`, for a [`NoticeKind::Voided`] notice).
    pub is_correct: bool,
    /// What happened (absent in rows written before 0.2: verified).
    #[serde(default, skip_serializing_if = "NoticeKind::is_verified")]
    pub kind: NoticeKind,
    /// Why the prediction was voided ([`NoticeKind::Voided`] only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl VoterNotice {
    /// The notice of a verification.
    pub fn verified(
        user_id: impl Into<String>,
        prediction_id: impl Into<String>,
        question: impl Into<String>,
        selected_option: impl Into<String>,
        is_correct: bool,
    ) -> Self {
        VoterNotice {
            user_id: user_id.into(),
            prediction_id: prediction_id.into(),
            question: question.into(),
            selected_option: selected_option.into(),
            is_correct,
            kind: NoticeKind::Verified,
            reason: None,
        }
    }
}

/// The work an outbox row stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum OutboxPayload {
    /// Broadcast `prediction_verified` to every client.
    PredictionVerified(PredictionVerified),
    /// Broadcast `prediction_corrected` to every client (§6.7).
    PredictionCorrected(PredictionCorrected),
    /// Broadcast `prediction_voided` to every client (§6.7).
    PredictionVoided(PredictionVoided),
    /// Notify one voter.
    Notify(VoterNotice),
    /// Notify every voter of a verified (or corrected, or voided) prediction: one
    /// [`Notify`](Self::Notify) per vote marked in the verification's transaction (per vote of
    /// the prediction for a void, whose votes are unmarked).
    ///
    /// A store may record the per-voter notifications of a verification as one such row
    /// instead of one row per voter (the SQL stores do: it keeps the verification's
    /// transaction independent of the number of voters). The row and the marked votes, committed
    /// together, are the durable record of every voter's notification; the store's
    /// [`claim_outbox`](crate::ports::OutboxRepository::claim_outbox) expands it into
    /// per-voter rows a page at a time, each page in one transaction with the progress it
    /// makes, and never hands the fan-out row itself to a dispatcher. It shows up in
    /// [`outbox_rows`](crate::ports::OutboxRepository::outbox_rows): `pending` until fully
    /// expanded, then `delivered`.
    NotifyVoters(VotersFanout),
}

/// The prediction whose voters an [`OutboxPayload::NotifyVoters`] row notifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VotersFanout {
    /// The verified prediction.
    pub prediction_id: String,
    /// What the voters are told (absent in rows written before 0.2: verified).
    #[serde(default, skip_serializing_if = "NoticeKind::is_verified")]
    pub kind: NoticeKind,
}

impl VotersFanout {
    /// The fan-out of a verification.
    pub fn verified(prediction_id: impl Into<String>) -> Self {
        VotersFanout {
            prediction_id: prediction_id.into(),
            kind: NoticeKind::Verified,
        }
    }
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

/// An admin's correction of an `ended` prediction (CONTRACT.md §6.7), recorded through
/// `PredictionRepository::record_correction`.
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

/// An admin's void of a prediction (CONTRACT.md §6.7), recorded through
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

/// Whether [`recompute_stats`](crate::ports::PredictionRepository::recompute_stats) writes.
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

/// A claimed outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Row id.
    pub id: i64,
    /// What to deliver.
    pub payload: OutboxPayload,
    /// Delivery attempts before this one.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// State of an outbox row, for inspection and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for (re)delivery.
    Pending,
    /// Delivered.
    Delivered,
    /// Given up (permanent error or attempts exhausted).
    Failed,
}

/// An outbox row with its bookkeeping, as `OutboxRepository::outbox_rows` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// What to deliver.
    pub payload: OutboxPayload,
    /// State.
    pub state: OutboxState,
    /// Attempts so far.
    pub attempts: u32,
    /// Last failure.
    pub last_error: Option<String>,
    /// Earliest next attempt.
    pub next_attempt_at: DateTime<Utc>,
}

/// Leadership as seen by one holder after an acquire/renew attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseState {
    /// Whether the caller holds the lease now.
    pub is_leader: bool,
    /// Who holds it (the caller or someone else), if anyone.
    pub holder: Option<String>,
    /// Monotonic term, +1 on every change of holder.
    pub term: u64,
    /// When the current holding runs out.
    pub expires_at: Option<DateTime<Utc>>,
}

/// One fetched batch of quotes; symbols the provider failed for are listed with the reason.
#[derive(Debug, Default)]
pub struct QuoteBatch {
    /// Good quotes.
    pub quotes: Vec<Quote>,
    /// Symbols (codes) that failed, with why.
    pub failures: Vec<SymbolFailure>,
}

/// A symbol a provider could not price in this call.
#[derive(Debug)]
pub struct SymbolFailure {
    /// Symbol code.
    pub symbol_code: String,
    /// Why.
    pub error: crate::Error,
}

/// A price at an instant, from a provider's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricePoint {
    /// The price.
    pub price: Decimal,
    /// Its instant.
    pub ts: DateTime<Utc>,
    /// The provider that answered ([`MarketData::name`](crate::ports::MarketData::name)).
    #[serde(default)]
    pub source: Option<String>,
}

/// A "first tick of `symbol_code` at or after `at`" question.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TickQuery {
    /// Symbol code.
    pub symbol_code: String,
    /// The instant.
    pub at: DateTime<Utc>,
    /// Whether a tick of the demo feed (`source = 'demo'`) may answer. Only an instance that
    /// runs on the demo feed alone asks with `true`: made-up prices never decide a prediction
    /// of a real deployment (CONTRACT.md §6.2).
    #[serde(default)]
    pub allow_demo: bool,
}

impl TickQuery {
    /// The first real (non-demo) tick of `symbol_code` at or after `at`.
    pub fn new(symbol_code: impl Into<String>, at: DateTime<Utc>) -> Self {
        TickQuery {
            symbol_code: symbol_code.into(),
            at,
            allow_demo: false,
        }
    }

    /// Let demo ticks answer too (an instance on the demo feed alone).
    pub fn with_demo(mut self, allow: bool) -> Self {
        self.allow_demo = allow;
        self
    }

    /// Whether `tick` may answer this query.
    pub fn admits(&self, tick: &PriceTick) -> bool {
        self.allow_demo || !tick.is_demo()
    }
}

/// Articles fetched from all news sources in one run.
#[derive(Debug, Default)]
pub struct NewsBatch {
    /// Articles (not yet deduplicated).
    pub articles: Vec<NewsArticle>,
    /// Sources that failed, with why.
    pub failures: Vec<SourceFailure>,
    /// Entries skipped because they had neither a link nor an id.
    pub skipped: usize,
    /// Sources that answered "not modified".
    pub not_modified: usize,
}

/// A news source that failed in one run.
#[derive(Debug)]
pub struct SourceFailure {
    /// The source's name (or URL).
    pub source: String,
    /// Why.
    pub error: crate::Error,
}
