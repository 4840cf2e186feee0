//! [`LocalBroadcaster`]: a [`Broadcaster`] over a bounded in-process channel.

use crate::{Broadcast, Broadcaster, Result};
use async_trait::async_trait;
use tokio::sync::broadcast;

/// Messages a [`LocalBroadcaster`] buffers per slow receiver by default.
pub const DEFAULT_BROADCAST_CAPACITY: usize = 4096;

/// The largest capacity [`LocalBroadcaster::with_capacity`] accepts; larger requests are capped.
const MAX_CAPACITY: usize = 1 << 20;

/// Publishes [`Broadcast`]s to the receivers of a bounded [`tokio::sync::broadcast`] channel
/// in this process (the WebSocket hub subscribes with [`LocalBroadcaster::subscribe`]).
///
/// Used by tests and the embedded default (no Redis).
///
/// - Publishing never waits and never fails: with no receiver the messages are dropped.
/// - Each receiver sees messages in publish order. A receiver more than `capacity` messages
///   behind loses the oldest and gets [`broadcast::error::RecvError::Lagged`] with how many it
///   missed, so memory stays bounded however slow a receiver is.
#[derive(Debug, Clone)]
pub struct LocalBroadcaster {
    tx: broadcast::Sender<Broadcast>,
    capacity: usize,
}

impl Default for LocalBroadcaster {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBroadcaster {
    /// A broadcaster with [`DEFAULT_BROADCAST_CAPACITY`].
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_BROADCAST_CAPACITY)
    }

    /// A broadcaster buffering `capacity` messages (clamped to 1 ..= 1,048,576).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let (tx, _) = broadcast::channel(capacity);
        Self { tx, capacity }
    }

    /// A new receiver of every message published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Broadcast> {
        self.tx.subscribe()
    }

    /// How many receivers exist now.
    pub fn receiver_count(&self) -> usize {
        self.tx.receiver_count()
    }

    /// The channel capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[async_trait]
impl Broadcaster for LocalBroadcaster {
    async fn publish(&self, messages: &[Broadcast]) -> Result<()> {
        for m in messages {
            // An error only means there is no receiver right now: nothing to deliver.
            let _ = self.tx.send(m.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Topic;
    use bytes::Bytes;

    fn msg(n: u8) -> Broadcast {
        Broadcast {
            topic: Topic::All,
            payload: Bytes::from(vec![n]),
        }
    }

    #[tokio::test]
    async fn publish_without_receivers_is_ok() {
        let b = LocalBroadcaster::new();
        b.publish(&[msg(1)]).await.unwrap();
        assert_eq!(b.receiver_count(), 0);
    }

    #[tokio::test]
    async fn receivers_get_messages_in_order() {
        let b = LocalBroadcaster::with_capacity(8);
        let mut r1 = b.subscribe();
        let mut r2 = b.subscribe();
        b.publish(&[msg(1), msg(2)]).await.unwrap();
        for r in [&mut r1, &mut r2] {
            assert_eq!(r.recv().await.unwrap(), msg(1));
            assert_eq!(r.recv().await.unwrap(), msg(2));
        }
    }

    #[tokio::test]
    async fn slow_receiver_lags_instead_of_growing() {
        let b = LocalBroadcaster::with_capacity(2);
        let mut r = b.subscribe();
        b.publish(&[msg(1), msg(2), msg(3), msg(4)]).await.unwrap();
        assert!(matches!(
            r.recv().await,
            Err(broadcast::error::RecvError::Lagged(2))
        ));
        assert_eq!(r.recv().await.unwrap(), msg(3));
        assert_eq!(r.recv().await.unwrap(), msg(4));
        assert_eq!(LocalBroadcaster::with_capacity(0).capacity(), 1);
    }
}
