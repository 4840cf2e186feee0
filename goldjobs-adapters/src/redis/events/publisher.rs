//! [`RedisEventBus`]: delivers to the local hub, then `PUBLISH`es one pipeline per batch.

use crate::redis::RedisConfigError;
use std::sync::Arc;

use super::subscriber::Subscriber;
use super::*;
use async_trait::async_trait;
use goldjobs_core::{Broadcast, Broadcaster, Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ProtocolVersion};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(super) struct Inner {
    pub(super) config: RedisEventBusConfig,
    pub(super) local: Arc<dyn Broadcaster>,
    pub(super) publisher: ConnectionManager,
    pub(super) counters: Counters,
}

/// A [`Broadcaster`] delivering to the local hub at once and to every other instance through
/// Redis pub/sub. See the [module docs](super). Cheap to clone.
#[derive(Clone)]
pub struct RedisEventBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventBus")
            .field("instance_id", &self.inner.config.instance_id)
            .field("channel", &self.inner.config.channel)
            .field("stats", &self.inner.counters.snapshot())
            .finish_non_exhaustive()
    }
}

/// Owns the subscriber task of a [`RedisEventBus`]. Dropping it stops the task (no more
/// relaying); [`RedisEventBusHandle::shutdown`] stops it and waits for it.
#[derive(Debug)]
pub struct RedisEventBusHandle {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RedisEventBusHandle {
    /// Stop the subscriber task and wait until it has finished.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "event bus subscriber task ended abnormally");
            }
        }
    }

    /// The token that stops the subscriber task (e.g. to tie it to the server's shutdown).
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

impl Drop for RedisEventBusHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn redis_err(message: &str, e: redis::RedisError) -> Error {
    Error::unavailable(BACKEND, format!("{message}: {e}"), Some(Box::new(e) as _))
}

impl RedisEventBus {
    /// Connect with [`RedisEventBusConfig::new`]`(instance_id)` on `channel`.
    ///
    /// Returns once the publisher is connected and the subscriber is subscribed, so that
    /// messages published by others from then on are relayed.
    pub async fn start(
        client: Client,
        instance_id: impl Into<String>,
        local: Arc<dyn Broadcaster>,
        channel: impl Into<String>,
    ) -> Result<(Self, RedisEventBusHandle)> {
        let config = RedisEventBusConfig::new(instance_id).with_channel(channel);
        Self::start_with_config(client, config, local).await
    }

    /// As [`RedisEventBus::start`], from a `redis://` URL.
    pub async fn connect(
        redis_url: &str,
        instance_id: impl Into<String>,
        local: Arc<dyn Broadcaster>,
        channel: impl Into<String>,
    ) -> Result<(Self, RedisEventBusHandle)> {
        // The URL may hold a password: name only the kind of problem.
        let client = Client::open(redis_url).map_err(|e| RedisConfigError::Url(e.kind()))?;
        Self::start(client, instance_id, local, channel).await
    }

    /// Connect with full settings. Fails (temporary) when Redis cannot be reached now; after
    /// start, Redis outages are survived (see the module docs).
    pub async fn start_with_config(
        client: Client,
        config: RedisEventBusConfig,
        local: Arc<dyn Broadcaster>,
    ) -> Result<(Self, RedisEventBusHandle)> {
        config.validate()?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.publish_timeout))
            .set_response_timeout(Some(config.publish_timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.reconnect_max);
        let publisher = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(|e| redis_err("event bus publisher connect", e))?;

        let inner = Arc::new(Inner {
            config,
            local,
            publisher,
            counters: Counters::default(),
        });
        let sub_client = resp3_client(&client)?;
        let (tx, rx) = mpsc::channel(inner.config.queue_capacity.max(1));
        let first = Subscriber::connect(&sub_client, &inner, tx.clone())
            .await
            .map_err(|e| redis_err("event bus subscribe", e))?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(
            Subscriber {
                client: sub_client,
                inner: Arc::clone(&inner),
                tx,
                rx,
                cancel: cancel.clone(),
            }
            .run(first),
        );
        Ok((
            Self { inner },
            RedisEventBusHandle {
                cancel,
                task: Some(task),
            },
        ))
    }

    /// The counters so far.
    pub fn stats(&self) -> EventBusStats {
        self.inner.counters.snapshot()
    }

    /// The settings in use.
    pub fn config(&self) -> &RedisEventBusConfig {
        &self.inner.config
    }

    /// PUBLISH every message in one pipeline; returns how many were published, or the error.
    async fn publish_remote(&self, messages: &[Broadcast]) -> Result<()> {
        let c = &self.inner.counters;
        let cfg = &self.inner.config;
        let mut pipe = redis::pipe();
        let mut queued = 0usize;
        for m in messages {
            match encode_envelope(&cfg.instance_id, m) {
                Ok(frame) => {
                    pipe.cmd("PUBLISH")
                        .arg(&cfg.channel)
                        .arg(frame.as_ref())
                        .ignore();
                    queued += 1;
                }
                Err(e) => {
                    add(&c.publish_errors, 1);
                    tracing::warn!(error = %e, topic = ?m.topic, "event not sent to other instances");
                }
            }
        }
        if queued == 0 {
            return Ok(());
        }
        let mut con = self.inner.publisher.clone();
        let outcome =
            tokio::time::timeout(cfg.publish_timeout, pipe.query_async::<()>(&mut con)).await;
        match outcome {
            Ok(Ok(())) => {
                add(&c.published, queued);
                Ok(())
            }
            Ok(Err(e)) => {
                add(&c.publish_errors, queued);
                Err(redis_err("event bus publish", e))
            }
            Err(_) => {
                add(&c.publish_errors, queued);
                Err(Error::Timeout(cfg.publish_timeout))
            }
        }
    }
}

#[async_trait]
impl Broadcaster for RedisEventBus {
    /// Local delivery first, then one `PUBLISH` pipeline. A Redis failure alone is logged and
    /// counted (`publish_errors`) and the call succeeds; if the local delivery fails too, a
    /// temporary error is returned; a local failure alone is returned as it is.
    async fn publish(&self, messages: &[Broadcast]) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let local = self.inner.local.publish(messages).await;
        let remote = self.publish_remote(messages).await;
        match (local, remote) {
            (Ok(()), Ok(())) => Ok(()),
            (Ok(()), Err(e)) => {
                tracing::warn!(error = %e, count = messages.len(), "events delivered locally only: redis publish failed");
                Ok(())
            }
            (Err(local), Ok(())) => Err(local),
            (Err(local), Err(remote)) => Err(Error::unavailable(
                "event-bus",
                format!("local delivery failed ({local}) and redis publish failed ({remote})"),
                Some(Box::new(remote) as _),
            )),
        }
    }
}

/// The same server and credentials, speaking RESP3 (needed to subscribe on a multiplexed
/// connection and to run `PING`/`CLIENT` commands on it).
fn resp3_client(client: &Client) -> Result<Client> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(settings))
        .map_err(|e| RedisConfigError::ConnectionInfo(e.kind()).into())
}
