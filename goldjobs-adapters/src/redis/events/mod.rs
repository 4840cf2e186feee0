//! [`RedisEventBus`]: cross-instance fan-out of [`Broadcast`](goldjobs_core::Broadcast)s over Redis pub/sub
//! (guide: *Redis keys*, channel [`DEFAULT_CHANNEL`] = `goldjobs:events`).
//!
//! # How it works
//!
//! - [`RedisEventBus::publish`](goldjobs_core::Broadcaster::publish) first hands the messages to the **local** hub (this instance's
//!   WebSocket clients never wait for Redis and keep getting updates while Redis is down), then
//!   `PUBLISH`es every message on the channel in **one pipeline** (one round trip), each wrapped
//!   in an [envelope](#envelope) naming the origin instance.
//! - A subscriber task owns a dedicated RESP3 connection subscribed to the channel. It relays
//!   every message of **another** instance into the local hub (its own messages are skipped, so
//!   no instance delivers a message twice), drops malformed frames with a counter, and after a
//!   lost connection reconnects with capped exponential backoff and subscribes again by itself.
//! - Memory is bounded: received messages pass through a bounded queue
//!   ([`RedisEventBusConfig::queue_capacity`]); when the relay falls that far behind, new
//!   messages are dropped and counted (`dropped_overflow`) instead of piling up. Frames larger
//!   than [`MAX_FRAME_BYTES`] are dropped as malformed.
//!
//! Redis pub/sub is at-most-once: a message published while an instance is disconnected from
//! Redis does not reach that instance (its clients catch up with the next price update, whose
//! `seq` shows the gap). The subscriber needs RESP3 (Redis ≥ 6); the client's URL may say either
//! protocol, the subscriber connection always speaks RESP3.
//!
//! # Wiring
//!
//! ```no_run
//! # async fn wire() -> goldjobs_core::Result<()> {
//! use std::sync::Arc;
//! use goldjobs_adapters::redis::events::{RedisEventBus, DEFAULT_CHANNEL};
//! use goldjobs_core::memory::LocalBroadcaster;
//!
//! let hub = LocalBroadcaster::new(); // the WebSocket hub subscribes here
//! let (bus, handle) = RedisEventBus::connect(
//!     "redis://127.0.0.1:6379",
//!     "web-1",
//!     Arc::new(hub.clone()),
//!     DEFAULT_CHANNEL,
//! )
//! .await?;
//! // give `bus` (as `Arc<dyn Broadcaster>`) to the jobs and the outbox;
//! // on shutdown:
//! handle.shutdown().await;
//! # drop(bus);
//! # Ok(())
//! # }
//! ```
//!
//! # Envelope
//!
//! A compact binary frame (no JSON escaping of the payload, which is already serialized JSON):
//!
//! ```text
//! "GJE1"                      4 bytes, magic and version
//! origin_len: u8              1..=255
//! origin: [u8; origin_len]    UTF-8 instance id
//! topic_tag: u8               0 = Topic::All, 1 = Topic::Symbol
//! (tag 1 only) sym_len: u8, symbol: [u8; sym_len]   UTF-8 symbol code, 1..=255 bytes
//! payload: the rest           the Broadcast payload, unchanged
//! ```
//!
//! Anything else (wrong magic, truncated, bad UTF-8, unknown tag, empty id, over
//! [`MAX_FRAME_BYTES`]) is malformed: dropped and counted in `dropped_malformed`, never a panic.

use crate::redis::RedisConfigError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use goldjobs_core::backoff::{Backoff, Jitter};
use goldjobs_core::Result;

mod codec;
mod publisher;
mod subscriber;

pub use codec::{decode_envelope, encode_envelope, Envelope, FrameError};
pub use publisher::{RedisEventBus, RedisEventBusHandle};

/// The pub/sub channel of the guide's *Redis keys*.
pub const DEFAULT_CHANNEL: &str = "goldjobs:events";

/// The largest envelope accepted from the channel (and produced by [`encode_envelope`]).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

const BACKEND: &str = "redis";

/// Settings of a [`RedisEventBus`]; every field has a documented default.
#[derive(Debug, Clone)]
pub struct RedisEventBusConfig {
    /// This instance's id (1..=255 bytes of UTF-8); messages carrying it are not relayed.
    /// Must differ between instances (e.g. hostname + pid), or they ignore each other.
    pub instance_id: String,
    /// The pub/sub channel. Default [`DEFAULT_CHANNEL`].
    pub channel: String,
    /// First reconnect delay after the subscriber lost Redis. Default 100 ms.
    pub reconnect_min: Duration,
    /// Largest reconnect delay (the delay doubles up to this). Default 5 s.
    pub reconnect_max: Duration,
    /// How long one publish pipeline may take before it counts as failed. Default 1 s.
    pub publish_timeout: Duration,
    /// Received messages buffered between the connection and the relay. Default 4096.
    pub queue_capacity: usize,
    /// How often the subscriber connection is checked with `PING` (at least 100 ms).
    /// Default 15 s.
    pub health_check_interval: Duration,
}

impl RedisEventBusConfig {
    /// Defaults for instance `instance_id` on [`DEFAULT_CHANNEL`].
    pub fn new(instance_id: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            channel: DEFAULT_CHANNEL.to_owned(),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(1),
            queue_capacity: 4096,
            health_check_interval: Duration::from_secs(15),
        }
    }

    /// Use another channel.
    pub fn with_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// Reconnect backoff bounds.
    pub fn with_reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max;
        self
    }

    /// The subscriber's reconnect backoff: `reconnect_min` (at least 1 ms, so a reconnect
    /// loop never spins), doubling up to `reconnect_max`, with equal jitter so that many
    /// instances losing Redis together do not reconnect in lockstep.
    pub fn reconnect_backoff(&self) -> Backoff {
        let min = self.reconnect_min.max(Duration::from_millis(1));
        Backoff::new(min, self.reconnect_max.max(min)).with_jitter(Jitter::Equal)
    }

    /// Publish timeout.
    pub fn with_publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// Receive queue capacity (at least 1).
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Health-check interval of the subscriber connection.
    pub fn with_health_check_interval(mut self, interval: Duration) -> Self {
        self.health_check_interval = interval;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.instance_id.is_empty() || self.instance_id.len() > 255 {
            return Err(RedisConfigError::InstanceId(self.instance_id.len()).into());
        }
        if self.channel.is_empty() {
            return Err(RedisConfigError::NoChannel.into());
        }
        Ok(())
    }

    /// The `CLIENT SETNAME` of the subscriber connection: `goldjobs-events:` + the instance id
    /// with every character outside `[A-Za-z0-9_.:-]` replaced by `_` (names cannot hold spaces).
    pub fn subscriber_client_name(&self) -> String {
        let id: String = self
            .instance_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("goldjobs-events:{id}")
    }
}

/// Counters of a [`RedisEventBus`] (monotonic since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventBusStats {
    /// Messages `PUBLISH`ed on the channel.
    pub published: u64,
    /// Messages that could not be published on the channel (Redis down, timeout, unencodable).
    pub publish_errors: u64,
    /// Messages of other instances delivered to the local hub.
    pub relayed: u64,
    /// Frames on the channel that were not valid envelopes.
    pub dropped_malformed: u64,
    /// Messages dropped because the receive queue was full.
    pub dropped_overflow: u64,
    /// Own messages seen on the channel and skipped.
    pub skipped_own: u64,
    /// Relayed messages the local hub refused.
    pub relay_errors: u64,
    /// Successful subscriptions (1 after start, +1 after each reconnect).
    pub subscriptions: u64,
    /// Failed connection or subscription attempts of the subscriber.
    pub connect_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    publish_errors: AtomicU64,
    relayed: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_overflow: AtomicU64,
    skipped_own: AtomicU64,
    relay_errors: AtomicU64,
    subscriptions: AtomicU64,
    connect_failures: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> EventBusStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EventBusStats {
            published: g(&self.published),
            publish_errors: g(&self.publish_errors),
            relayed: g(&self.relayed),
            dropped_malformed: g(&self.dropped_malformed),
            dropped_overflow: g(&self.dropped_overflow),
            skipped_own: g(&self.skipped_own),
            relay_errors: g(&self.relay_errors),
            subscriptions: g(&self.subscriptions),
            connect_failures: g(&self.connect_failures),
        }
    }
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use goldjobs_core::{Broadcast, Topic};

    fn msg(topic: Topic, payload: &'static str) -> Broadcast {
        Broadcast {
            topic,
            payload: Bytes::from_static(payload.as_bytes()),
        }
    }

    /// Corrections and voids (guide: *WebSocket protocol*; *Corrections and voids*) go to every
    /// client of every instance.
    #[test]
    fn corrections_and_voids_travel_to_all() {
        use goldjobs_core::{Event, PredictionCorrected, PredictionVoided, PriceSource};
        let corrected = Event::PredictionCorrected(PredictionCorrected {
            prediction_id: "p1".into(),
            symbol_code: "XAUUSD".into(),
            correct_option: "A".into(),
            price_at_verify: rust_decimal::Decimal::new(268_000, 2),
            price_change_percent: Some(rust_decimal::Decimal::new(113, 2)),
            price_source: PriceSource::Manual,
            price_at_verify_ts: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            previous_option: "B".into(),
        });
        let voided = Event::PredictionVoided(PredictionVoided {
            prediction_id: "p2".into(),
            symbol_code: "XAGUSD".into(),
            reason: "bad feed".into(),
        });
        for (event, kind) in [
            (corrected, "prediction_corrected"),
            (voided, "prediction_voided"),
        ] {
            let b = event.to_broadcast().unwrap();
            assert_eq!(b.topic, Topic::All);
            let env = decode_envelope(&encode_envelope("web-1", &b).unwrap()).unwrap();
            assert_eq!(env.message.topic, Topic::All);
            let v: serde_json::Value = serde_json::from_slice(&env.message.payload).unwrap();
            assert_eq!(v["type"], kind);
            let back: Event = serde_json::from_value(v).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn envelope_round_trips() {
        for m in [
            msg(Topic::All, r#"{"type":"prediction_verified"}"#),
            msg(Topic::Symbol("XAUUSD".into()), r#"{"type":"price_update"}"#),
            msg(Topic::All, ""),
        ] {
            let frame = encode_envelope("node-1", &m).unwrap();
            let env = decode_envelope(&frame).unwrap();
            assert_eq!(env.origin, "node-1");
            assert_eq!(env.message, m);
        }
    }

    #[test]
    fn envelope_layout_is_as_documented() {
        let frame = encode_envelope("ab", &msg(Topic::Symbol("X".into()), "{}")).unwrap();
        assert_eq!(&frame[..], b"GJE1\x02ab\x01\x01X{}");
        let frame = encode_envelope("ab", &msg(Topic::All, "{}")).unwrap();
        assert_eq!(&frame[..], b"GJE1\x02ab\x00{}");
    }

    #[test]
    fn unencodable_messages_are_errors() {
        assert_eq!(
            encode_envelope("", &msg(Topic::All, "")),
            Err(FrameError::BadField("origin"))
        );
        let long = "x".repeat(256);
        assert_eq!(
            encode_envelope(&long, &msg(Topic::All, "")),
            Err(FrameError::BadField("origin"))
        );
        assert_eq!(
            encode_envelope("a", &msg(Topic::Symbol(long), "")),
            Err(FrameError::BadField("symbol"))
        );
        let big = Broadcast {
            topic: Topic::All,
            payload: Bytes::from(vec![b' '; MAX_FRAME_BYTES]),
        };
        assert!(matches!(
            encode_envelope("a", &big),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        let cases: &[(&[u8], FrameError)] = &[
            (b"", FrameError::BadMagic),
            (b"GJE2\x01a\x00", FrameError::BadMagic),
            (b"GJE1", FrameError::Truncated),
            (b"GJE1\x05ab", FrameError::Truncated),
            (b"GJE1\x00\x00", FrameError::BadField("origin")),
            (b"GJE1\x01\xff\x00", FrameError::BadField("origin")),
            (b"GJE1\x01a", FrameError::Truncated),
            (b"GJE1\x01a\x07{}", FrameError::UnknownTopic(7)),
            (b"GJE1\x01a\x01", FrameError::Truncated),
            (b"GJE1\x01a\x01\x03XA", FrameError::Truncated),
            (b"GJE1\x01a\x01\x00{}", FrameError::BadField("symbol")),
        ];
        for (frame, want) in cases {
            assert_eq!(decode_envelope(frame).unwrap_err(), *want, "{frame:?}");
        }
        let huge = vec![0u8; MAX_FRAME_BYTES + 1];
        assert!(matches!(
            decode_envelope(&huge),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn every_prefix_of_a_frame_decodes_or_errs() {
        let frame = encode_envelope("inst", &msg(Topic::Symbol("XAGUSD".into()), "{}")).unwrap();
        for n in 0..frame.len() {
            let _ = decode_envelope(&frame[..n]);
        }
    }

    #[test]
    fn reconnect_backoff_doubles_up_to_the_cap_and_never_spins() {
        let ms = Duration::from_millis;
        let b = RedisEventBusConfig::new("a").reconnect_backoff();
        assert_eq!((b.ceiling(0), b.ceiling(6)), (ms(100), ms(5000)));
        // Degenerate settings still make progress and never exceed the cap.
        let b = RedisEventBusConfig::new("a")
            .with_reconnect_backoff(Duration::ZERO, Duration::ZERO)
            .reconnect_backoff();
        assert_eq!((b.ceiling(0), b.ceiling(5)), (ms(1), ms(1)));
    }

    #[test]
    fn config_defaults_and_client_name() {
        let c = RedisEventBusConfig::new("host a/1");
        assert_eq!(c.channel, DEFAULT_CHANNEL);
        assert_eq!(c.reconnect_min, Duration::from_millis(100));
        assert_eq!(c.reconnect_max, Duration::from_secs(5));
        assert_eq!(c.subscriber_client_name(), "goldjobs-events:host_a_1");
        assert!(c.validate().is_ok());
        assert!(RedisEventBusConfig::new("").validate().is_err());
        assert!(RedisEventBusConfig::new("a")
            .with_channel("")
            .validate()
            .is_err());
    }
}
