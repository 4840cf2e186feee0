//! The subscriber task: one dedicated RESP3 connection, relaying other instances' messages
//! into the local hub, reconnecting with the runtime's backoff.

use std::sync::Arc;
use std::time::Duration;

use super::publisher::Inner;
use super::*;
use bytes::Bytes;
use goldjobs_core::backoff::thread_random;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One live subscription: the connection and a token cancelled when it is lost.
pub(super) struct Live {
    con: MultiplexedConnection,
    lost: CancellationToken,
}

pub(super) struct Subscriber {
    pub(super) client: Client,
    pub(super) inner: Arc<Inner>,
    pub(super) tx: mpsc::Sender<Bytes>,
    pub(super) rx: mpsc::Receiver<Bytes>,
    pub(super) cancel: CancellationToken,
}

impl Subscriber {
    /// Open the dedicated connection, name it, subscribe.
    pub(super) async fn connect(
        client: &Client,
        inner: &Arc<Inner>,
        tx: mpsc::Sender<Bytes>,
    ) -> redis::RedisResult<Live> {
        let lost = CancellationToken::new();
        let lost_signal = lost.clone();
        let sink_inner = Arc::clone(inner);
        // Runs on the connection's driver: must never block.
        let push = move |info: PushInfo| -> std::result::Result<(), ()> {
            match info.kind {
                PushKind::Disconnection => lost_signal.cancel(),
                PushKind::Message => match info.data.into_iter().nth(1) {
                    Some(Value::BulkString(bytes)) => {
                        if let Err(mpsc::error::TrySendError::Full(_)) =
                            tx.try_send(Bytes::from(bytes))
                        {
                            add(&sink_inner.counters.dropped_overflow, 1);
                        }
                    }
                    _ => add(&sink_inner.counters.dropped_malformed, 1),
                },
                _ => {}
            }
            Ok(())
        };
        let timeout = inner.config.publish_timeout.max(Duration::from_secs(1));
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_push_sender(push);
        let mut con = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(inner.config.subscriber_client_name())
            .query_async::<()>(&mut con)
            .await?;
        con.subscribe(&inner.config.channel).await?;
        add(&inner.counters.subscriptions, 1);
        Ok(Live { con, lost })
    }

    pub(super) async fn run(mut self, first: Live) {
        let mut live = Some(first);
        let mut backoff = self.inner.config.reconnect_backoff().state(thread_random());
        loop {
            let current = match live.take() {
                Some(l) => l,
                None => match Self::connect(&self.client, &self.inner, self.tx.clone()).await {
                    Ok(l) => {
                        tracing::info!(channel = %self.inner.config.channel, "event bus resubscribed");
                        backoff.reset();
                        l
                    }
                    Err(e) => {
                        add(&self.inner.counters.connect_failures, 1);
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in = ?delay, "event bus subscriber cannot reach redis");
                        tokio::select! {
                            _ = self.cancel.cancelled() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        continue;
                    }
                },
            };
            if !self.serve(current).await {
                return;
            }
            // Relay what arrived before the connection was lost, then reconnect.
            while let Ok(frame) = self.rx.try_recv() {
                self.relay(frame).await;
            }
            tracing::warn!("event bus subscriber lost its redis connection; reconnecting");
        }
    }

    /// Relay until the connection is lost (`true`) or the bus is shut down (`false`).
    async fn serve(&mut self, mut live: Live) -> bool {
        // `interval` panics on a zero period.
        let period = self
            .inner
            .config
            .health_check_interval
            .max(Duration::from_millis(100));
        let mut health = tokio::time::interval(period);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        health.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return false,
                frame = self.rx.recv() => match frame {
                    Some(frame) => self.relay(frame).await,
                    // Unreachable: `self.tx` keeps the channel open.
                    None => return false,
                },
                _ = live.lost.cancelled() => return true,
                _ = health.tick() => {
                    let ping = redis::cmd("PING").query_async::<Value>(&mut live.con).await;
                    if let Err(e) = ping {
                        tracing::warn!(error = %e, "event bus subscriber health check failed");
                        return true;
                    }
                }
            }
        }
    }

    async fn relay(&self, frame: Bytes) {
        let c = &self.inner.counters;
        match decode_envelope(&frame) {
            Ok(env) if env.origin == self.inner.config.instance_id => add(&c.skipped_own, 1),
            Ok(env) => match self
                .inner
                .local
                .publish(std::slice::from_ref(&env.message))
                .await
            {
                Ok(()) => add(&c.relayed, 1),
                Err(e) => {
                    add(&c.relay_errors, 1);
                    tracing::warn!(error = %e, "local hub refused a relayed event");
                }
            },
            Err(e) => {
                add(&c.dropped_malformed, 1);
                tracing::debug!(error = %e, len = frame.len(), "malformed event frame dropped");
            }
        }
    }
}
