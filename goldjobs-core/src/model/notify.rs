//! Devices, push notifications and what a voter is told.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
