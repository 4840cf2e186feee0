//! Redis adapters: quote cache, news-list cache, cross-instance events.

pub mod events;
pub mod news_cache;
pub mod quote_cache;

pub use news_cache::RedisNewsCache;
pub use quote_cache::RedisQuoteCache;

use goldjobs_core::{Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Connect to `url` (`redis://…`) with a [`ConnectionManager`] that reconnects by itself.
///
/// Connection and response timeouts are 5 s. The URL (it may hold a password) is never part of
/// the error.
pub async fn connect(url: &str) -> Result<ConnectionManager> {
    let client = redis::Client::open(url).map_err(|e| RedisConfigError::Url(e.kind()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(3);
    client
        .get_connection_manager_with_config(config)
        .await
        .map_err(|e| unavailable("cannot connect", e))
}

/// A Redis failure as a temporary [`Error::Unavailable`].
/// What the Redis adapters refuse; becomes [`Error::InvalidInput`]. A Redis URL may hold a
/// password, so the client's error is kept by its kind only, never by its text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisConfigError {
    #[error("REDIS_URL is not a valid Redis URL ({0:?})")]
    Url(redis::ErrorKind),
    #[error("bad Redis connection info ({0:?})")]
    ConnectionInfo(redis::ErrorKind),
    #[error("event bus instance id must be 1..=255 bytes, got {0}")]
    InstanceId(usize),
    #[error("event bus channel must not be empty")]
    NoChannel,
}

impl From<RedisConfigError> for Error {
    fn from(e: RedisConfigError) -> Self {
        Error::invalid_from(&e)
    }
}

pub(crate) fn unavailable(what: &str, e: redis::RedisError) -> Error {
    Error::unavailable("redis", format!("{what}: {e}"), Some(Box::new(e) as _))
}
