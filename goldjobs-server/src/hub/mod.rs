//! The WebSocket hub (guide: *WebSocket protocol*).
//!
//! **Library choice: `tokio-tungstenite`** for the protocol: hyper 1 does the HTTP/1.1 upgrade
//! itself (`hyper::upgrade::on`), and `WebSocketStream::from_raw_socket` runs the WebSocket
//! protocol (frame parsing, limits, ping/pong and close handshakes) over the upgraded stream,
//! with a 256-byte initial read buffer and hard frame/message limits. The same crate is the
//! client of the end-to-end tests and the most used WebSocket crate of the tokio ecosystem.
//!
//! Design (fan-out near the machine's limit, issue #16):
//! - every message arrives serialized once ([`Broadcast`]) and is **framed once**: server frames
//!   are unmasked, so the same bytes go to every receiver;
//! - the publisher **writes from its own side**: one pass over the subscribers, a non-blocking
//!   `try_write` of the shared frame on each plain-TCP socket (see `outlet`); no connection
//!   task wakes on this fast path. Only a socket that would block gets the frame kept in its
//!   outlet and its task woken to finish when the socket is writable;
//! - a client that falls behind holds **one pending price update per symbol** (conflation: the
//!   newest replaces the older, `seq` jumps); other frames wait in order up to
//!   [`HubConfig::max_backlog_bytes`], beyond which the client is disconnected with 1013; a
//!   client whose socket takes nothing for two ping intervals is disconnected with 1013;
//! - per-symbol subscriber sets; the last `price_update` of every symbol is kept for snapshots;
//! - the server pings every [`HubConfig::ping_interval`] and drops clients that stay silent for a
//!   further interval;
//! - limits on message size, symbols per client and messages per second answer with
//!   `{"type":"error","message":...}`.

use crate::metrics::Metrics;
use async_trait::async_trait;
use goldjobs::{Broadcast, Broadcaster, Event, Quote};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod connection;
mod outlet;
mod protocol;
mod registry;

use protocol::Handled;
pub use registry::Slot;
use registry::{Kick, State};

/// Limits and timings of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Bytes of frames that are not price updates (replies, prediction events) one client may
    /// have waiting before it counts as too slow and is disconnected with 1013 (256 KiB). Price
    /// updates never count: a client that falls behind holds only the newest one per symbol.
    pub max_backlog_bytes: usize,
    /// Largest accepted client message in bytes (4 KiB); larger ones get an error message.
    pub max_message_bytes: usize,
    /// Hard limit of a frame/message (64 KiB); larger ones close the connection with 1009.
    pub hard_max_message_bytes: usize,
    /// Symbols one client may subscribe to (50).
    pub max_symbols: usize,
    /// Client messages per second (20); more get one error and are ignored.
    pub max_messages_per_second: u32,
    /// How often the server pings (25 s); a client silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// How long to try to deliver a close frame (2 s).
    pub close_timeout: Duration,
    /// At most one `price_update` per symbol in this period (`GOLDJOBS_PUSH_INTERVAL`, 250 ms;
    /// zero pushes every update): a newer value within the period replaces the waiting one and
    /// goes out when the period is over.
    pub push_interval: Duration,
    /// Connected clients at most (10 000); further upgrades get 503.
    pub max_clients: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_backlog_bytes: 256 * 1024,
            max_message_bytes: 4 * 1024,
            hard_max_message_bytes: 64 * 1024,
            max_symbols: 50,
            max_messages_per_second: 20,
            ping_interval: Duration::from_secs(25),
            close_timeout: Duration::from_secs(2),
            push_interval: Duration::from_millis(250),
            max_clients: 10_000,
        }
    }
}

impl HubConfig {
    /// The tungstenite config: small buffers, hard limits.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(256)
            .write_buffer_size(0)
            .max_write_buffer_size(self.hard_max_message_bytes.max(256 * 1024))
            .max_message_size(Some(self.hard_max_message_bytes))
            .max_frame_size(Some(self.hard_max_message_bytes))
    }
}

struct Inner {
    cfg: HubConfig,
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    next_id: AtomicU64,
    /// Connections admitted: upgrades answered `101` and not yet ended (see [`Slot`]).
    slots: AtomicUsize,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// The WebSocket hub; cheap to clone. Implements [`Broadcaster`]: jobs publish straight into it.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("clients", &self.client_count())
            .finish()
    }
}

impl Hub {
    /// A hub with these limits, reporting into `metrics`.
    pub fn new(cfg: HubConfig, metrics: Arc<Metrics>) -> Self {
        Hub {
            inner: Arc::new(Inner {
                cfg,
                state: Mutex::new(State::default()),
                metrics,
                next_id: AtomicU64::new(1),
                slots: AtomicUsize::new(0),
                tracker: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The limits.
    pub fn config(&self) -> &HubConfig {
        &self.inner.cfg
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Set the known (active) symbol codes; subscriptions to others are answered as `unknown`.
    pub fn set_known_symbols<I, S>(&self, codes: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let known: HashSet<String> = codes.into_iter().map(Into::into).collect();
        self.lock().known = known;
    }

    /// The known symbol codes, sorted.
    pub fn known_symbols(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().known.iter().cloned().collect();
        v.sort();
        v
    }

    /// Connected clients.
    pub fn client_count(&self) -> usize {
        self.lock().clients.len()
    }

    /// Whether the hub is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// The `seq` of the last `price_update` of `code` this hub saw (published here or relayed
    /// from another instance); 0 when none. A new price leader continues after it.
    pub fn last_seq(&self, code: &str) -> u64 {
        let text = self.lock().last.get(code).map(|s| s.text.clone());
        text.and_then(|t| match serde_json::from_str::<Event>(t.as_str()) {
            Ok(Event::PriceUpdate(p)) => Some(p.seq),
            _ => None,
        })
        .unwrap_or(0)
    }

    /// The last published quotes of these codes (from the kept `price_update` messages), in the
    /// given order; for `GET /quotes` when the cache is down.
    pub fn last_quotes(&self, codes: &[String]) -> Vec<Quote> {
        let texts: Vec<Utf8Bytes> = {
            let st = self.lock();
            codes
                .iter()
                .filter_map(|c| st.last.get(c).map(|s| s.text.clone()))
                .collect()
        };
        texts
            .iter()
            .filter_map(|t| match serde_json::from_str::<Event>(t.as_str()) {
                Ok(Event::PriceUpdate(p)) => Some(Quote {
                    symbol_code: p.symbol_code,
                    price: p.price,
                    change: p.change,
                    change_percent: p.change_percent,
                    timestamp: p.timestamp,
                    source: None,
                }),
                _ => None,
            })
            .collect()
    }

    /// Close every connection with 1001 (going away) and wait up to `grace` for them to finish.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        let kicks: Vec<Arc<Kick>> = self
            .lock()
            .clients
            .values()
            .map(|c| c.kick.clone())
            .collect();
        for k in kicks {
            k.fire(1001);
        }
        self.inner.tracker.close();
        let _ = tokio::time::timeout(grace, self.inner.tracker.wait()).await;
    }
}

#[async_trait]
impl Broadcaster for Hub {
    async fn publish(&self, messages: &[Broadcast]) -> goldjobs::Result<()> {
        self.publish_now(messages);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::SinkExt;
    use goldjobs::Topic;
    use std::sync::atomic::Ordering;

    use chrono::Utc;
    use goldjobs::PriceUpdate;
    use rust_decimal::Decimal;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    fn update(code: &str, seq: u64) -> Broadcast {
        Event::PriceUpdate(PriceUpdate {
            symbol_code: code.into(),
            price: Decimal::new(265850, 2),
            change: Decimal::new(2830, 2),
            change_percent: Decimal::new(108, 2),
            timestamp: Utc::now(),
            seq,
        })
        .to_broadcast()
        .unwrap()
    }

    fn hub() -> Hub {
        let h = Hub::new(
            HubConfig {
                ..HubConfig::default()
            },
            Arc::new(Metrics::new()),
        );
        h.set_known_symbols(["XAUUSD", "XAGUSD"]);
        h
    }

    fn register(h: &Hub) -> (u64, Arc<outlet::Outlet>, Arc<Kick>) {
        let o = Arc::new(outlet::Outlet::new(None, h.inner.cfg.max_backlog_bytes));
        let (id, kick) = h.register(o.clone());
        (id, o, kick)
    }

    /// The payload of a server text frame (FIN, text, unmasked).
    fn payload(frame: &[u8]) -> &[u8] {
        assert_eq!(frame[0], 0x81, "a final text frame");
        match frame[1] {
            126 => &frame[4..],
            127 => &frame[10..],
            n => {
                assert_eq!(usize::from(n), frame.len() - 2);
                &frame[2..]
            }
        }
    }

    fn drain(o: &outlet::Outlet) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Some(f) = o.take_next() {
            out.push(serde_json::from_slice(payload(&f)).unwrap());
        }
        out
    }

    #[test]
    fn subscribe_answers_then_snapshots() {
        let h = hub();
        h.publish_now(&[update("XAUUSD", 7)]);
        let (id, rx, _k) = register(&h);
        h.handle_text(
            id,
            r#"{"action":"subscribe","symbols":["xauusd","XAGUSD","NOPE"]}"#,
        );
        let got = drain(&rx);
        assert_eq!(got[0]["type"], "subscribed");
        assert_eq!(got[0]["symbols"], serde_json::json!(["XAUUSD", "XAGUSD"]));
        assert_eq!(got[0]["unknown"], serde_json::json!(["NOPE"]));
        assert_eq!(got[1]["type"], "price_update");
        assert_eq!(got[1]["payload"]["seq"], 7);
        assert_eq!(got.len(), 2);

        h.publish_now(&[update("XAGUSD", 1), update("EURUSD", 1)]);
        let got = drain(&rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["payload"]["symbol_code"], "XAGUSD");

        h.handle_text(id, r#"{"action":"unsubscribe","symbols":["XAGUSD"]}"#);
        h.publish_now(&[update("XAGUSD", 2)]);
        let got = drain(&rx);
        assert_eq!(got[0]["type"], "unsubscribed");
        assert_eq!(got.len(), 1);
        assert_eq!(h.last_quotes(&["XAGUSD".into()])[0].symbol_code, "XAGUSD");
    }

    #[test]
    fn bad_messages_get_errors() {
        let h = hub();
        let (id, rx, _k) = register(&h);
        h.handle_text(id, "{not json");
        h.handle_text(id, r#"{"action":"dance"}"#);
        h.handle_text(id, r#"{"action":"subscribe","symbols":"XAUUSD"}"#);
        let got = drain(&rx);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|m| m["type"] == "error"));
        assert!(got[0]["message"].as_str().unwrap().contains("bad JSON"));
        assert!(got[1]["message"]
            .as_str()
            .unwrap()
            .contains("unknown action"));
        h.handle_text(id, r#"{"action":"ping"}"#);
        assert_eq!(drain(&rx)[0]["type"], "pong");
        let big = format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(5000));
        h.handle_text(id, &big);
        assert!(drain(&rx)[0]["message"]
            .as_str()
            .unwrap()
            .contains("too large"));
    }

    #[test]
    fn too_many_symbols() {
        let h = hub();
        let many: Vec<String> = (0..60).map(|i| format!("S{i}")).collect();
        h.set_known_symbols(many.clone());
        let (id, rx, _k) = register(&h);
        let msg = serde_json::json!({"action":"subscribe","symbols":many}).to_string();
        h.handle_text(id, &msg);
        let got = drain(&rx);
        assert_eq!(got[0]["type"], "error");
        assert!(got[0]["message"]
            .as_str()
            .unwrap()
            .contains("too many symbols"));
    }

    #[test]
    fn a_slow_client_gets_the_latest_price_and_is_kicked_only_when_events_pile_up() {
        let h = hub();
        let (slow, slow_o, slow_kick) = register(&h);
        let (fast, fast_o, fast_kick) = register(&h);
        h.handle_text(slow, r#"{"action":"subscribe","symbols":["XAUUSD"]}"#);
        h.handle_text(fast, r#"{"action":"subscribe","symbols":["XAUUSD"]}"#);
        drain(&fast_o);
        for seq in 1..=10 {
            h.publish_now(&[update("XAUUSD", seq)]);
            assert_eq!(drain(&fast_o)[0]["payload"]["seq"], seq);
        }
        // Conflation: the slow client holds one value per symbol, the newest.
        assert!(!slow_kick.token.is_cancelled());
        let got = drain(&slow_o);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0]["type"], "subscribed");
        assert_eq!(got[1]["payload"]["seq"], 10);
        // Events to everyone are not conflated: a client that lets them pile up goes (1013).
        let pad = "x".repeat(16 * 1024);
        let pv = Broadcast {
            topic: Topic::All,
            payload: Bytes::from(format!(
                r#"{{"type":"prediction_verified","payload":{{"pad":"{pad}"}}}}"#
            )),
        };
        for _ in 0..64 {
            h.publish_now(std::slice::from_ref(&pv));
            assert_eq!(drain(&fast_o)[0]["type"], "prediction_verified");
        }
        assert!(slow_kick.token.is_cancelled());
        assert_eq!(slow_kick.code.load(Ordering::SeqCst), 1013);
        assert!(!fast_kick.token.is_cancelled());
        assert_eq!(h.client_count(), 1);
        assert!(
            slow_o.is_idle(),
            "what waited for the kicked client is dropped"
        );
    }

    /// GOLDJOBS_PUSH_INTERVAL: at most one update per symbol and period, the newest wins and
    /// goes out when the period is over; other symbols are not held back.
    #[tokio::test(start_paused = true)]
    async fn updates_within_the_push_interval_are_conflated_to_the_newest() {
        let h = hub();
        assert_eq!(h.config().push_interval, Duration::from_millis(250));
        let (id, o, _k) = register(&h);
        h.handle_text(
            id,
            r#"{"action":"subscribe","symbols":["XAUUSD","XAGUSD"]}"#,
        );
        drain(&o);
        h.publish_now(&[update("XAUUSD", 1)]);
        h.publish_now(&[update("XAUUSD", 2)]);
        h.publish_now(&[update("XAUUSD", 3), update("XAGUSD", 1)]);
        let got = drain(&o);
        let seqs: Vec<_> = got
            .iter()
            .map(|m| {
                (
                    m["payload"]["symbol_code"].clone(),
                    m["payload"]["seq"].clone(),
                )
            })
            .collect();
        assert_eq!(
            seqs,
            [("XAUUSD", 1), ("XAGUSD", 1)]
                .map(|(s, n)| (serde_json::json!(s), serde_json::json!(n)))
        );
        assert_eq!(
            h.last_seq("XAUUSD"),
            3,
            "the snapshot is always the newest value"
        );
        tokio::time::sleep(Duration::from_millis(260)).await;
        let got = drain(&o);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["payload"]["seq"], 3);
        // After a quiet period an update goes out at once again.
        tokio::time::sleep(Duration::from_secs(1)).await;
        h.publish_now(&[update("XAUUSD", 4)]);
        assert_eq!(drain(&o)[0]["payload"]["seq"], 4);
    }

    /// A zero push interval sends every update.
    #[tokio::test(start_paused = true)]
    async fn a_zero_push_interval_sends_every_update() {
        let h = Hub::new(
            HubConfig {
                push_interval: Duration::ZERO,
                ..HubConfig::default()
            },
            Arc::new(Metrics::new()),
        );
        h.set_known_symbols(["XAUUSD"]);
        let (id, o, _k) = register(&h);
        h.handle_text(id, r#"{"action":"subscribe","symbols":["XAUUSD"]}"#);
        drain(&o);
        for seq in 1..=3 {
            h.publish_now(&[update("XAUUSD", seq)]);
            assert_eq!(drain(&o)[0]["payload"]["seq"], seq);
        }
    }

    /// A client over an in-memory pipe of 1 KiB that the test controls; the hub serves the
    /// other end.
    async fn piped_client(h: &Hub) -> WebSocketStream<tokio::io::DuplexStream> {
        let (server_io, client_io) = tokio::io::duplex(1024);
        h.spawn_connection(server_io);
        WebSocketStream::from_raw_socket(client_io, Role::Client, None).await
    }

    /// Wait (on paused time) until the hub has let go of every connection.
    async fn all_released(h: &Hub) -> bool {
        for _ in 0..600 {
            if h.admitted() == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_is_dropped_after_the_ping_timeout() {
        let h = Hub::new(
            HubConfig {
                ping_interval: Duration::from_millis(500),
                ..HubConfig::default()
            },
            Arc::new(Metrics::new()),
        );
        h.set_known_symbols(["XAUUSD"]);
        let mut client = piped_client(&h).await;
        client
            .send(Message::text(
                r#"{"action":"subscribe","symbols":["XAUUSD"]}"#,
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(h.client_count(), 1);
        // Far more than the pipe holds, and the client reads nothing: a write blocks.
        for seq in 0..200 {
            h.publish_now(&[update("XAUUSD", seq)]);
        }
        assert!(all_released(&h).await, "the stuck client keeps its slot");
        assert_eq!(h.client_count(), 0);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ping_flood_counts_against_the_rate_and_cannot_pin_the_task() {
        let h = hub();
        let mut client = piped_client(&h).await;
        // Pings as fast as possible, never reading the pongs (they fill the pipe).
        for _ in 0..200 {
            if client
                .feed(Message::Ping(Bytes::from_static(&[7; 100])))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), client.flush()).await;
        assert!(all_released(&h).await, "a ping flood pinned the connection");
        drop(client);
    }
}
