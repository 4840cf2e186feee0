//! Cross-instance fan-out over Redis pub/sub (CONTRACT.md §5: channel `goldjobs:events`).
//!
//! With `REDIS_URL` set, jobs publish through [`RedisFanout`] (`PUBLISH goldjobs:events
//! <message>`, all messages of one call in one pipelined round trip) and every instance runs
//! [`run_subscriber`], which feeds what arrives on the channel into its own [`Hub`]. So a client
//! connected to any instance sees the updates of the leader that fetched them. The channel
//! carries the serialized message itself; the receiver derives the topic from it
//! (`price_update` → its `symbol_code`, everything else → all clients).
//!
//! If Redis is down when publishing, the message is delivered to this instance's clients only
//! (and a warning is logged), so local clients never miss an update because of Redis.

use crate::hub::Hub;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use goldjobs_core::{Broadcast, Broadcaster, Topic};
use redis::aio::ConnectionManager;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The pub/sub channel of CONTRACT.md §5.
pub const EVENTS_CHANNEL: &str = "goldjobs:events";

/// A [`Broadcaster`] that publishes to Redis (every instance's hub receives it).
#[derive(Clone)]
pub struct RedisFanout {
    conn: ConnectionManager,
    channel: String,
    local: Hub,
}

impl std::fmt::Debug for RedisFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFanout")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisFanout {
    /// Publish on `channel`; `local` gets the messages directly when Redis fails.
    pub fn new(conn: ConnectionManager, channel: impl Into<String>, local: Hub) -> Self {
        RedisFanout {
            conn,
            channel: channel.into(),
            local,
        }
    }
}

#[async_trait]
impl Broadcaster for RedisFanout {
    async fn publish(&self, messages: &[Broadcast]) -> goldjobs_core::Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for m in messages {
            pipe.cmd("PUBLISH")
                .arg(&self.channel)
                .arg(m.payload.as_ref())
                .ignore();
        }
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, "Redis publish failed; delivering to this instance only");
            self.local.publish_now(messages);
        }
        Ok(())
    }
}

/// The topic of a serialized event: `price_update` → its symbol, anything else → all.
pub fn topic_of(payload: &[u8]) -> Option<Topic> {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(rename = "type")]
        kind: String,
        payload: Option<PeekPayload>,
    }
    #[derive(serde::Deserialize)]
    struct PeekPayload {
        symbol_code: Option<String>,
    }
    let peek: Peek = serde_json::from_slice(payload).ok()?;
    if peek.kind == "price_update" {
        peek.payload?.symbol_code.map(Topic::Symbol)
    } else {
        Some(Topic::All)
    }
}

/// Subscribe to `channel` on `client` and feed every message into `hub` until `stop`;
/// reconnects with backoff (up to 10 s) when Redis goes away.
pub async fn run_subscriber(
    client: redis::Client,
    channel: String,
    hub: Hub,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            _ = stop.cancelled() => return,
            r = attempt => r,
        };
        match pubsub {
            Ok(mut pubsub) => {
                tracing::debug!(channel = %channel, "subscribed to Redis events");
                backoff = Duration::from_millis(200);
                let mut stream = pubsub.on_message();
                loop {
                    let msg = tokio::select! {
                        _ = stop.cancelled() => return,
                        m = stream.next() => m,
                    };
                    let Some(msg) = msg else { break };
                    let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
                    match topic_of(&payload) {
                        Some(topic) => hub.publish_now(&[Broadcast { topic, payload }]),
                        None => tracing::warn!("ignoring a malformed event on {channel}"),
                    }
                }
                tracing::warn!(channel = %channel, "Redis event subscription ended; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to Redis events; retrying");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_from_payloads() {
        assert_eq!(
            topic_of(br#"{"type":"price_update","payload":{"symbol_code":"XAUUSD","seq":1}}"#),
            Some(Topic::Symbol("XAUUSD".into()))
        );
        assert_eq!(
            topic_of(br#"{"type":"prediction_verified","payload":{"prediction_id":"p"}}"#),
            Some(Topic::All)
        );
        assert_eq!(topic_of(b"not json"), None);
        assert_eq!(topic_of(br#"{"type":"price_update","payload":{}}"#), None);
    }
}
