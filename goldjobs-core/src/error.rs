//! The one error type of goldjobs-core.

use std::time::Duration;

/// A boxed error from a backend, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used by every port and job.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in goldjobs, grouped by meaning.
///
/// Ask [`Error::is_temporary`] whether retrying the same call later can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The input (from a user, an API, a feed, a config) is not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The operation conflicts with the current state (e.g. already verified).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A backend (database, cache, provider) is unreachable or failed for a reason that may pass.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// Which backend, e.g. `postgres`, `redis`, `twelvedata`.
        backend: &'static str,
        /// What happened, safe to log (no secrets).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// A backend asked us to slow down.
    #[error("{backend} rate limited: {message}")]
    RateLimited {
        /// Which backend.
        backend: &'static str,
        /// The provider's message.
        message: String,
        /// How long the provider asked us to wait, when it said so.
        retry_after: Option<Duration>,
    },
    /// A backend rejected the request for a reason that will not pass by retrying
    /// (bad credentials, unknown symbol, malformed response).
    #[error("{backend} error: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The backend's message, kept.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The operation did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The operation was cancelled (shutdown).
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Whether retrying later may succeed (network trouble, rate limits, timeouts).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::RateLimited { .. } | Error::Timeout(_)
        )
    }

    /// How long the backend asked to wait before the next attempt, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A temporary backend error.
    pub fn unavailable(
        backend: &'static str,
        message: impl Into<String>,
        source: impl Into<Option<BoxError>>,
    ) -> Self {
        Error::Unavailable {
            backend,
            message: message.into(),
            source: source.into(),
        }
    }

    /// A permanent backend error.
    pub fn backend(
        backend: &'static str,
        message: impl Into<String>,
        source: impl Into<Option<BoxError>>,
    ) -> Self {
        Error::Backend {
            backend,
            message: message.into(),
            source: source.into(),
        }
    }

    /// An invalid-input error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// An invalid-input error from an adapter's own error: its message followed by every
    /// `source` in its chain (`feed url "x": relative URL without a base`), so nothing of the
    /// cause is lost at the top.
    pub fn invalid_from(err: &(dyn std::error::Error + 'static)) -> Self {
        Error::InvalidInput(chain_message(err))
    }
}

/// `err`'s message and the messages of its sources, joined with `: ` (a source whose message
/// is already part of the one above is not repeated).
pub fn chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let m = e.to_string();
        if !out.ends_with(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("feed url {0:?}")]
        Url(String, #[source] Inner),
    }
    #[derive(Debug, thiserror::Error)]
    #[error("relative URL without a base")]
    struct Inner;

    #[test]
    fn invalid_from_keeps_the_whole_chain() {
        let e = Error::invalid_from(&Outer::Url("x".into(), Inner));
        assert_eq!(
            e.to_string(),
            "invalid input: feed url \"x\": relative URL without a base"
        );
        assert!(!e.is_temporary());
    }

    #[test]
    fn temporary_classification() {
        assert!(Error::unavailable("redis", "down", None).is_temporary());
        assert!(Error::Timeout(Duration::from_secs(1)).is_temporary());
        assert!(Error::RateLimited {
            backend: "x",
            message: "slow".into(),
            retry_after: Some(Duration::from_secs(3))
        }
        .is_temporary());
        assert!(!Error::backend("twelvedata", "bad key", None).is_temporary());
        assert!(!Error::NotFound("x".into()).is_temporary());
        assert!(!Error::invalid("x").is_temporary());
        assert_eq!(
            Error::RateLimited {
                backend: "x",
                message: String::new(),
                retry_after: Some(Duration::from_secs(3))
            }
            .retry_after(),
            Some(Duration::from_secs(3))
        );
    }
}
