//! Notifiers: FCM HTTP v1 and webhook. The log and fan-out notifiers live in
//! `goldjobs_core::memory` (`LogNotifier`, `FanoutNotifier`).

#[cfg(feature = "fcm")]
pub mod fcm;
#[cfg(feature = "webhook")]
pub mod webhook;

use goldjobs_core::Error;

/// What the notifiers refuse; becomes [`Error::InvalidInput`] with its whole chain.
#[derive(Debug, thiserror::Error)]
#[allow(dead_code)] // each variant is used by one feature's notifier
enum NotifyError {
    #[error("service account key is not valid")]
    ServiceAccountJson(#[source] serde_json::Error),
    #[error("GOOGLE_APPLICATION_CREDENTIALS {0}")]
    CredentialsFile(String, #[source] std::io::Error),
    #[error("FCM_PROJECT_ID is empty")]
    NoProject,
    #[cfg(feature = "fcm")]
    #[error("service account private_key")]
    PrivateKey(#[source] jsonwebtoken::errors::Error),
    #[error("GOLDJOBS_WEBHOOK_URL {0}")]
    WebhookUrl(String, #[source] url::ParseError),
    #[error("GOLDJOBS_WEBHOOK_URL {0}: expected an http or https URL")]
    WebhookScheme(String),
    #[error("GOLDJOBS_WEBHOOK_SECRET is empty")]
    NoSecret,
    #[error("notification not serializable")]
    Body(#[source] serde_json::Error),
}

impl From<NotifyError> for Error {
    fn from(e: NotifyError) -> Self {
        Error::invalid_from(&e)
    }
}
