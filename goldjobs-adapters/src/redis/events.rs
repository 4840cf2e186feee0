//! [`RedisEventBus`]: cross-instance fan-out of [`Broadcast`]s over Redis pub/sub
//! (CONTRACT §5, channel [`DEFAULT_CHANNEL`] = `goldjobs:events`).
//!
//! # How it works
//!
//! - [`RedisEventBus::publish`] first hands the messages to the **local** hub (this instance's
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use goldjobs_core::backoff::{thread_random, Backoff, Jitter};
use goldjobs_core::{Broadcast, Broadcaster, Error, Result, Topic};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The pub/sub channel of CONTRACT §5.
pub const DEFAULT_CHANNEL: &str = "goldjobs:events";

/// The largest envelope accepted from the channel (and produced by [`encode_envelope`]).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

const MAGIC: &[u8; 4] = b"GJE1";
const TAG_ALL: u8 = 0;
const TAG_SYMBOL: u8 = 1;
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
            return Err(Error::invalid(format!(
                "event bus instance id must be 1..=255 bytes, got {}",
                self.instance_id.len()
            )));
        }
        if self.channel.is_empty() {
            return Err(Error::invalid("event bus channel must not be empty"));
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

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The instance that published it.
    pub origin: String,
    /// The message.
    pub message: Broadcast,
}

/// Why a frame is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Does not start with the magic `GJE1`.
    #[error("bad magic or version")]
    BadMagic,
    /// Ends before a length-prefixed field does.
    #[error("truncated frame")]
    Truncated,
    /// An origin or symbol that is empty, too long or not UTF-8.
    #[error("bad {0} field")]
    BadField(&'static str),
    /// A topic tag other than 0 or 1.
    #[error("unknown topic tag {0}")]
    UnknownTopic(u8),
}

fn short_str(field: &'static str, s: &str) -> std::result::Result<u8, FrameError> {
    match u8::try_from(s.len()) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(FrameError::BadField(field)),
    }
}

/// Wrap `message` from instance `origin` in the envelope described in the module docs.
pub fn encode_envelope(
    origin: &str,
    message: &Broadcast,
) -> std::result::Result<Bytes, FrameError> {
    let origin_len = short_str("origin", origin)?;
    let mut buf = BytesMut::with_capacity(4 + 2 + origin.len() + 2 + 16 + message.payload.len());
    buf.put_slice(MAGIC);
    buf.put_u8(origin_len);
    buf.put_slice(origin.as_bytes());
    match &message.topic {
        Topic::All => buf.put_u8(TAG_ALL),
        Topic::Symbol(code) => {
            let n = short_str("symbol", code)?;
            buf.put_u8(TAG_SYMBOL);
            buf.put_u8(n);
            buf.put_slice(code.as_bytes());
        }
    }
    buf.put_slice(&message.payload);
    if buf.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(buf.len()));
    }
    Ok(buf.freeze())
}

/// Take a length-prefixed UTF-8 field from the front of `rest`.
fn take_str<'a>(
    rest: &mut &'a [u8],
    field: &'static str,
) -> std::result::Result<&'a str, FrameError> {
    let (&len, tail) = rest.split_first().ok_or(FrameError::Truncated)?;
    let len = usize::from(len);
    if len == 0 {
        return Err(FrameError::BadField(field));
    }
    if tail.len() < len {
        return Err(FrameError::Truncated);
    }
    let (s, tail) = tail.split_at(len);
    *rest = tail;
    std::str::from_utf8(s).map_err(|_| FrameError::BadField(field))
}

/// Parse an envelope; never panics on any input.
pub fn decode_envelope(frame: &[u8]) -> std::result::Result<Envelope, FrameError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(frame.len()));
    }
    let mut rest = frame.strip_prefix(MAGIC).ok_or(FrameError::BadMagic)?;
    let origin = take_str(&mut rest, "origin")?.to_owned();
    let (&tag, tail) = rest.split_first().ok_or(FrameError::Truncated)?;
    rest = tail;
    let topic = match tag {
        TAG_ALL => Topic::All,
        TAG_SYMBOL => Topic::Symbol(take_str(&mut rest, "symbol")?.to_owned()),
        other => return Err(FrameError::UnknownTopic(other)),
    };
    Ok(Envelope {
        origin,
        message: Broadcast {
            topic,
            payload: Bytes::copy_from_slice(rest),
        },
    })
}

struct Inner {
    config: RedisEventBusConfig,
    local: Arc<dyn Broadcaster>,
    publisher: ConnectionManager,
    counters: Counters,
}

/// A [`Broadcaster`] delivering to the local hub at once and to every other instance through
/// Redis pub/sub. See the [module docs](self). Cheap to clone.
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
        let client = Client::open(redis_url)
            .map_err(|e| Error::invalid(format!("not a valid Redis URL ({:?})", e.kind())))?;
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
        .map_err(|e| Error::invalid(format!("bad Redis connection info ({:?})", e.kind())))
}

/// One live subscription: the connection and a token cancelled when it is lost.
struct Live {
    con: MultiplexedConnection,
    lost: CancellationToken,
}

struct Subscriber {
    client: Client,
    inner: Arc<Inner>,
    tx: mpsc::Sender<Bytes>,
    rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
}

impl Subscriber {
    /// Open the dedicated connection, name it, subscribe.
    async fn connect(
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

    async fn run(mut self, first: Live) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(topic: Topic, payload: &'static str) -> Broadcast {
        Broadcast {
            topic,
            payload: Bytes::from_static(payload.as_bytes()),
        }
    }

    /// Corrections and voids (CONTRACT §4, §6.7) go to every client of every instance.
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
