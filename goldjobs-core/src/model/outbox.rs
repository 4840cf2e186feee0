//! Outbox rows (delivery after commit) and lease state.

use super::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// [`claim_outbox`](crate::OutboxRepository::claim_outbox) expands it into
    /// per-voter rows a page at a time, each page in one transaction with the progress it
    /// makes, and never hands the fan-out row itself to a dispatcher. It shows up in
    /// [`outbox_rows`](crate::OutboxRepository::outbox_rows): `pending` until fully
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
