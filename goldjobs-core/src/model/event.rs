//! Server → client events and broadcasts (guide: *WebSocket protocol*).

use super::*;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Payload of the `prediction_verified` WebSocket message (guide: *WebSocket protocol*).
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

/// Payload of the `prediction_corrected` WebSocket message (guide: *WebSocket protocol*;
/// *Corrections and voids*): the fields of [`PredictionVerified`] after the correction, and the
/// option that was correct before.
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

/// Payload of the `prediction_voided` WebSocket message (guide: *WebSocket protocol*; *Corrections
/// and voids*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionVoided {
    /// The prediction.
    pub prediction_id: String,
    /// Its symbol.
    pub symbol_code: String,
    /// Why it was voided (the admin's words).
    pub reason: String,
}

/// Payload of the `price_update` WebSocket message (guide: *WebSocket protocol*).
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
