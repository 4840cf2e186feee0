//! The WebSocket hub (CONTRACT.md §4).
//!
//! **Library choice: `tokio-tungstenite`.** hyper 1 does the HTTP/1.1 upgrade itself
//! (`hyper::upgrade::on`), so all we need is a WebSocket codec over the upgraded byte stream:
//! `WebSocketStream::from_raw_socket` does exactly that, with `tungstenite::WebSocketConfig` to set
//! small per-connection buffers (4 KiB read buffer instead of 128 KiB, eager writes instead of a
//! 128 KiB write buffer) and hard frame/message limits. The same crate is the client of the
//! end-to-end tests, it shares `Bytes`-backed text frames (`Utf8Bytes`) so one serialized message
//! is sent to every client without copying, and it is the most used WebSocket crate of the tokio
//! ecosystem. `hyper-tungstenite` would only add a thin wrapper over the same two calls, and
//! `tokio-websockets` would add a second WebSocket stack for the tests.
//!
//! Design:
//! - every message arrives serialized once ([`Broadcast`]) and its bytes are shared by all
//!   receivers;
//! - per-symbol subscriber sets; the last `price_update` of every symbol is kept for snapshots;
//! - each client has a bounded queue ([`HubConfig::queue_capacity`]); a client whose queue is full
//!   is disconnected with close code 1013 (try again later), the others are not affected;
//! - the server pings every [`HubConfig::ping_interval`] and drops clients that stay silent for a
//!   further interval;
//! - limits on message size, symbols per client and messages per second answer with
//!   `{"type":"error","message":...}`.

use crate::metrics::Metrics;
use async_trait::async_trait;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use goldjobs::{Broadcast, Broadcaster, Event, Quote, Topic};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits and timings of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Messages queued per client before it counts as too slow (256).
    pub queue_capacity: usize,
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
    /// How long one write (a message, a pong, a ping) may take before the client counts as
    /// stuck and is dropped (10 s). Every write is also interrupted by a kick or shutdown.
    pub write_timeout: Duration,
    /// Connected clients at most (10 000); further upgrades get 503.
    pub max_clients: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_capacity: 256,
            max_message_bytes: 4 * 1024,
            hard_max_message_bytes: 64 * 1024,
            max_symbols: 50,
            max_messages_per_second: 20,
            ping_interval: Duration::from_secs(25),
            close_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(10),
            max_clients: 10_000,
        }
    }
}

impl HubConfig {
    /// The tungstenite config: small buffers, hard limits.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_write_buffer_size(self.hard_max_message_bytes.max(256 * 1024))
            .max_message_size(Some(self.hard_max_message_bytes))
            .max_frame_size(Some(self.hard_max_message_bytes))
    }
}

/// How a bounded write ended.
enum Write {
    Done,
    /// A kick or shutdown came first; the loop closes the connection.
    Interrupted,
    /// It failed or timed out: the connection is dead or stuck.
    Failed,
}

/// Why a client is asked to leave.
struct Kick {
    token: CancellationToken,
    code: AtomicU16,
}

impl Kick {
    fn new() -> Self {
        Kick {
            token: CancellationToken::new(),
            code: AtomicU16::new(1000),
        }
    }

    fn fire(&self, code: u16) {
        if !self.token.is_cancelled() {
            self.code.store(code, Ordering::SeqCst);
            self.token.cancel();
        }
    }
}

struct Client {
    tx: mpsc::Sender<Utf8Bytes>,
    kick: Arc<Kick>,
    symbols: HashSet<String>,
}

#[derive(Default)]
struct State {
    known: HashSet<String>,
    clients: HashMap<u64, Client>,
    subs: HashMap<String, HashSet<u64>>,
    last: HashMap<String, Utf8Bytes>,
}

impl State {
    /// Remove a client and its subscriptions.
    fn remove(&mut self, id: u64) -> Option<Client> {
        let client = self.clients.remove(&id)?;
        for s in &client.symbols {
            if let Some(set) = self.subs.get_mut(s) {
                set.remove(&id);
                if set.is_empty() {
                    self.subs.remove(s);
                }
            }
        }
        Some(client)
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

/// One admitted connection's place under [`HubConfig::max_clients`]; given back on drop.
#[derive(Debug)]
pub struct Slot {
    hub: Hub,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.inner.slots.fetch_sub(1, Ordering::AcqRel);
    }
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

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Reply<'a> {
    Subscribed {
        symbols: &'a [String],
        unknown: &'a [String],
    },
    Unsubscribed {
        symbols: &'a [String],
    },
    Pong,
    Error {
        message: &'a str,
    },
}

fn encode(reply: &Reply<'_>) -> Utf8Bytes {
    match serde_json::to_string(reply) {
        Ok(s) => Utf8Bytes::from(s),
        Err(_) => Utf8Bytes::from_static(r#"{"type":"error","message":"internal error"}"#),
    }
}

/// Outcome of handling one client text message.
enum Handled {
    Ok,
    /// The client's queue is full: it has been kicked.
    Kicked,
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
        let text = self.lock().last.get(code).cloned();
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
                .filter_map(|c| st.last.get(c).cloned())
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

    /// Fan messages out to their subscribers (synchronous; never waits for a client).
    pub fn publish_now(&self, messages: &[Broadcast]) {
        let mut st = self.lock();
        let mut slow: Vec<u64> = Vec::new();
        for b in messages {
            let text = match Utf8Bytes::try_from(b.payload.clone()) {
                Ok(t) => t,
                Err(_) => {
                    tracing::warn!("dropping a broadcast that is not UTF-8");
                    continue;
                }
            };
            let State {
                clients,
                subs,
                last,
                ..
            } = &mut *st;
            match &b.topic {
                Topic::Symbol(code) => {
                    last.insert(code.clone(), text.clone());
                    if let Some(ids) = subs.get(code) {
                        for id in ids {
                            if let Some(c) = clients.get(id) {
                                if !self.offer(c, text.clone()) {
                                    slow.push(*id);
                                }
                            }
                        }
                    }
                }
                Topic::All => {
                    for (id, c) in clients.iter() {
                        if !self.offer(c, text.clone()) {
                            slow.push(*id);
                        }
                    }
                }
            }
            if !slow.is_empty() {
                for id in slow.drain(..) {
                    if let Some(c) = st.remove(id) {
                        c.kick.fire(1013);
                        self.inner.metrics.ws_slow_disconnects.inc();
                    }
                }
            }
        }
    }

    /// Queue a message for a client; `false` when its queue is full (or it is gone).
    fn offer(&self, c: &Client, text: Utf8Bytes) -> bool {
        match c.tx.try_send(text) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.inner.metrics.ws_messages_dropped.inc();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queue `text` for client `id`; kicks it (1013) when its queue is full.
    fn send_to(&self, st: &mut State, id: u64, text: Utf8Bytes) -> Handled {
        let ok = match st.clients.get(&id) {
            Some(c) => self.offer(c, text),
            None => return Handled::Kicked,
        };
        if ok {
            Handled::Ok
        } else {
            if let Some(c) = st.remove(id) {
                c.kick.fire(1013);
                self.inner.metrics.ws_slow_disconnects.inc();
            }
            Handled::Kicked
        }
    }

    fn register(&self) -> (u64, mpsc::Receiver<Utf8Bytes>, Arc<Kick>) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.inner.cfg.queue_capacity.max(1));
        let kick = Arc::new(Kick::new());
        self.lock().clients.insert(
            id,
            Client {
                tx,
                kick: kick.clone(),
                symbols: HashSet::new(),
            },
        );
        self.inner.metrics.ws_connections.inc();
        (id, rx, kick)
    }

    fn unregister(&self, id: u64) {
        self.lock().remove(id);
        self.inner.metrics.ws_connections.dec();
    }

    fn reply(&self, id: u64, reply: &Reply<'_>) -> Handled {
        let text = encode(reply);
        let mut st = self.lock();
        self.send_to(&mut st, id, text)
    }

    fn error(&self, id: u64, message: &str) -> Handled {
        self.reply(id, &Reply::Error { message })
    }

    fn subscribe(&self, id: u64, requested: Vec<String>) -> Handled {
        let max = self.inner.cfg.max_symbols;
        let too_many = format!("too many symbols: at most {max} per connection");
        if requested.len() > max {
            return self.error(id, &too_many);
        }
        let mut st = self.lock();
        let mut symbols = Vec::new();
        let mut unknown = Vec::new();
        for s in requested {
            if symbols.contains(&s) || unknown.contains(&s) {
                continue;
            }
            if st.known.contains(&s) {
                symbols.push(s);
            } else {
                unknown.push(s);
            }
        }
        let Some(client) = st.clients.get(&id) else {
            return Handled::Kicked;
        };
        let new: Vec<String> = symbols
            .iter()
            .filter(|s| !client.symbols.contains(*s))
            .cloned()
            .collect();
        if client.symbols.len() + new.len() > max {
            let text = encode(&Reply::Error { message: &too_many });
            return self.send_to(&mut st, id, text);
        }
        if let Some(client) = st.clients.get_mut(&id) {
            client.symbols.extend(new.iter().cloned());
        }
        for s in &new {
            st.subs.entry(s.clone()).or_default().insert(id);
        }
        let text = encode(&Reply::Subscribed {
            symbols: &symbols,
            unknown: &unknown,
        });
        if let Handled::Kicked = self.send_to(&mut st, id, text) {
            return Handled::Kicked;
        }
        for s in &new {
            if let Some(last) = st.last.get(s).cloned() {
                if let Handled::Kicked = self.send_to(&mut st, id, last) {
                    return Handled::Kicked;
                }
            }
        }
        Handled::Ok
    }

    fn unsubscribe(&self, id: u64, requested: Vec<String>) -> Handled {
        let mut st = self.lock();
        let mut removed = Vec::new();
        if let Some(client) = st.clients.get_mut(&id) {
            for s in requested {
                if client.symbols.remove(&s) {
                    removed.push(s);
                }
            }
        }
        for s in &removed {
            if let Some(set) = st.subs.get_mut(s) {
                set.remove(&id);
                if set.is_empty() {
                    st.subs.remove(s);
                }
            }
        }
        let text = encode(&Reply::Unsubscribed { symbols: &removed });
        self.send_to(&mut st, id, text)
    }

    /// Handle one client text message.
    fn handle_text(&self, id: u64, text: &str) -> Handled {
        if text.len() > self.inner.cfg.max_message_bytes {
            let message = format!(
                "message too large: at most {} bytes",
                self.inner.cfg.max_message_bytes
            );
            return self.error(id, &message);
        }
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return self.error(id, &format!("bad JSON: {e}")),
        };
        let Some(action) = value.get("action").and_then(|a| a.as_str()) else {
            return self.error(id, "expected an object with a string \"action\"");
        };
        match action {
            "ping" => self.reply(id, &Reply::Pong),
            "subscribe" | "unsubscribe" => {
                let Some(list) = value.get("symbols").and_then(|s| s.as_array()) else {
                    return self.error(id, "expected \"symbols\": an array of symbol codes");
                };
                let mut symbols = Vec::with_capacity(list.len());
                for item in list {
                    match item.as_str() {
                        Some(s) if !s.trim().is_empty() && s.len() <= 32 => {
                            symbols.push(s.trim().to_ascii_uppercase())
                        }
                        _ => {
                            return self.error(
                                id,
                                "expected \"symbols\": an array of symbol codes (strings of 1 to 32 characters)",
                            )
                        }
                    }
                }
                if action == "subscribe" {
                    self.subscribe(id, symbols)
                } else {
                    self.unsubscribe(id, symbols)
                }
            }
            other => {
                let shown: String = other.chars().take(32).collect();
                self.error(
                    id,
                    &format!("unknown action {shown:?}: expected subscribe, unsubscribe or ping"),
                )
            }
        }
    }

    /// Admit one more connection, if fewer than [`HubConfig::max_clients`] are admitted: the
    /// count is taken when the upgrade is answered, so concurrent upgrades cannot overshoot the
    /// limit between the check and the connection's start. The slot is given back when the
    /// [`Slot`] is dropped (the connection ended, or it never started).
    pub fn try_admit(&self) -> Option<Slot> {
        let max = self.inner.cfg.max_clients;
        self.inner
            .slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot { hub: self.clone() })
    }

    /// Connections admitted now (upgrades answered and not ended).
    pub fn admitted(&self) -> usize {
        self.inner.slots.load(Ordering::Acquire)
    }

    /// Take over a connection once hyper has upgraded it (after the `101` answer), holding
    /// `slot` until it ends.
    pub fn accept(&self, on_upgrade: hyper::upgrade::OnUpgrade, slot: Slot) {
        let hub = self.clone();
        self.inner.tracker.spawn(async move {
            let _slot = slot;
            match on_upgrade.await {
                Ok(upgraded) => {
                    let ws = WebSocketStream::from_raw_socket(
                        hyper_util::rt::TokioIo::new(upgraded),
                        Role::Server,
                        Some(hub.inner.cfg.websocket_config()),
                    )
                    .await;
                    hub.serve(ws).await;
                }
                Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
            }
        });
    }

    /// Serve one upgraded connection until it closes (runs in the hub's task tracker). Beyond
    /// [`HubConfig::max_clients`] the stream is dropped (closed) at once.
    pub fn spawn_connection<S>(&self, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(slot) = self.try_admit() else {
            tracing::warn!("too many WebSocket clients; connection closed");
            return;
        };
        let hub = self.clone();
        self.inner.tracker.spawn(async move {
            let _slot = slot;
            let ws = WebSocketStream::from_raw_socket(
                io,
                Role::Server,
                Some(hub.inner.cfg.websocket_config()),
            )
            .await;
            hub.serve(ws).await;
        });
    }

    /// Serve one WebSocket connection until it closes.
    pub async fn serve<S>(&self, ws: WebSocketStream<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (id, mut rx, kick) = self.register();
        if self.inner.shutdown.is_cancelled() {
            kick.fire(1001);
        }
        let cfg = &self.inner.cfg;
        let (mut sink, mut stream) = ws.split();
        let mut ping =
            tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard_since_ping = true;
        let mut window_start = Instant::now();
        let mut in_window: u32 = 0;
        let mut warned_in_window = false;
        let close_code: Option<u16>;

        loop {
            tokio::select! {
                biased;
                _ = kick.token.cancelled() => {
                    close_code = Some(kick.code.load(Ordering::SeqCst));
                    break;
                }
                _ = self.inner.shutdown.cancelled() => {
                    close_code = Some(1001);
                    break;
                }
                msg = rx.recv() => {
                    let Some(text) = msg else { close_code = Some(1011); break };
                    match self.write(&kick, sink.send(Message::Text(text))).await {
                        Write::Done => {
                            self.inner.metrics.ws_messages_sent.inc();
                        }
                        // The kick or shutdown is picked up at the top of the loop.
                        Write::Interrupted => {}
                        Write::Failed => { close_code = None; break; }
                    }
                }
                frame = stream.next() => {
                    heard_since_ping = true;
                    match frame {
                        None => { close_code = None; break; }
                        Some(Err(e)) => {
                            use tokio_tungstenite::tungstenite::Error as WsError;
                            match e {
                                WsError::Capacity(_) => {
                                    let message = format!(
                                        "message too large: at most {} bytes",
                                        cfg.max_message_bytes
                                    );
                                    let _ = tokio::time::timeout(
                                        cfg.close_timeout,
                                        sink.send(Message::Text(encode(&Reply::Error { message: &message }))),
                                    )
                                    .await;
                                    close_code = Some(1009);
                                }
                                // A text frame that is not UTF-8: "invalid frame payload
                                // data" (RFC 6455 §7.4.1).
                                WsError::Utf8(_) => close_code = Some(1007),
                                _ => close_code = None,
                            }
                            break;
                        }
                        Some(Ok(Message::Close(_))) => {
                            // tungstenite answers the close; flush it and stop.
                            let _ = tokio::time::timeout(cfg.close_timeout, sink.flush()).await;
                            close_code = None;
                            break;
                        }
                        Some(Ok(frame)) => {
                            // Rate limit over every frame, control frames included (a Ping
                            // flood costs a pong each): fixed one-second windows.
                            let now = Instant::now();
                            if now.duration_since(window_start) >= Duration::from_secs(1) {
                                window_start = now;
                                in_window = 0;
                                warned_in_window = false;
                            }
                            in_window = in_window.saturating_add(1);
                            if in_window > cfg.max_messages_per_second {
                                if in_window > cfg.max_messages_per_second.saturating_mul(5) {
                                    close_code = Some(1008);
                                    break;
                                }
                                if !warned_in_window {
                                    warned_in_window = true;
                                    let message = format!(
                                        "too many messages: at most {} per second",
                                        cfg.max_messages_per_second
                                    );
                                    let _ = self.error(id, &message);
                                }
                                continue;
                            }
                            // A kick is picked up by the select at the top of the loop.
                            match frame {
                                Message::Text(t) => {
                                    let _ = self.handle_text(id, t.as_str());
                                }
                                Message::Binary(_) => {
                                    let _ = self.error(
                                        id,
                                        "binary frames are not supported; send JSON text",
                                    );
                                }
                                Message::Ping(_) => {
                                    // tungstenite queued the pong; push it out, bounded.
                                    if let Write::Failed = self.write(&kick, sink.flush()).await {
                                        close_code = None;
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ = ping.tick() => {
                    if !heard_since_ping {
                        tracing::debug!(client = id, "no pong: dropping WebSocket client");
                        close_code = Some(1001);
                        break;
                    }
                    heard_since_ping = false;
                    if let Write::Failed =
                        self.write(&kick, sink.send(Message::Ping(Bytes::new()))).await
                    {
                        close_code = None;
                        break;
                    }
                }
            }
        }

        self.unregister(id);
        drop(rx);
        if let Some(code) = close_code {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from_static(""),
            };
            let closing = async {
                if sink.send(Message::Close(Some(frame))).await.is_ok() {
                    // Wait for the client's close reply (or EOF).
                    while let Some(Ok(m)) = stream.next().await {
                        if let Message::Close(_) = m {
                            break;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(cfg.close_timeout, closing).await;
        }
    }

    /// One write to a client, bounded by [`HubConfig::write_timeout`] and interrupted by a kick
    /// or shutdown: a client that never reads cannot pin its task or keep its slot.
    async fn write<F, E>(&self, kick: &Kick, write: F) -> Write
    where
        F: std::future::Future<Output = Result<(), E>>,
    {
        tokio::select! {
            r = tokio::time::timeout(self.inner.cfg.write_timeout, write) => match r {
                Ok(Ok(())) => Write::Done,
                Ok(Err(_)) => Write::Failed,
                Err(_) => {
                    tracing::debug!("WebSocket write timed out: dropping the client");
                    Write::Failed
                }
            },
            _ = kick.token.cancelled() => Write::Interrupted,
            _ = self.inner.shutdown.cancelled() => Write::Interrupted,
        }
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
    use chrono::Utc;
    use goldjobs::PriceUpdate;
    use rust_decimal::Decimal;

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
                queue_capacity: 4,
                ..HubConfig::default()
            },
            Arc::new(Metrics::new()),
        );
        h.set_known_symbols(["XAUUSD", "XAGUSD"]);
        h
    }

    fn drain(rx: &mut mpsc::Receiver<Utf8Bytes>) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Ok(t) = rx.try_recv() {
            out.push(serde_json::from_str(t.as_str()).unwrap());
        }
        out
    }

    #[test]
    fn subscribe_answers_then_snapshots() {
        let h = hub();
        h.publish_now(&[update("XAUUSD", 7)]);
        let (id, mut rx, _k) = h.register();
        h.handle_text(
            id,
            r#"{"action":"subscribe","symbols":["xauusd","XAGUSD","NOPE"]}"#,
        );
        let got = drain(&mut rx);
        assert_eq!(got[0]["type"], "subscribed");
        assert_eq!(got[0]["symbols"], serde_json::json!(["XAUUSD", "XAGUSD"]));
        assert_eq!(got[0]["unknown"], serde_json::json!(["NOPE"]));
        assert_eq!(got[1]["type"], "price_update");
        assert_eq!(got[1]["payload"]["seq"], 7);
        assert_eq!(got.len(), 2);

        h.publish_now(&[update("XAGUSD", 1), update("EURUSD", 1)]);
        let got = drain(&mut rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["payload"]["symbol_code"], "XAGUSD");

        h.handle_text(id, r#"{"action":"unsubscribe","symbols":["XAGUSD"]}"#);
        h.publish_now(&[update("XAGUSD", 2)]);
        let got = drain(&mut rx);
        assert_eq!(got[0]["type"], "unsubscribed");
        assert_eq!(got.len(), 1);
        assert_eq!(h.last_quotes(&["XAGUSD".into()])[0].symbol_code, "XAGUSD");
    }

    #[test]
    fn bad_messages_get_errors() {
        let h = hub();
        let (id, mut rx, _k) = h.register();
        h.handle_text(id, "{not json");
        h.handle_text(id, r#"{"action":"dance"}"#);
        h.handle_text(id, r#"{"action":"subscribe","symbols":"XAUUSD"}"#);
        let got = drain(&mut rx);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|m| m["type"] == "error"));
        assert!(got[0]["message"].as_str().unwrap().contains("bad JSON"));
        assert!(got[1]["message"]
            .as_str()
            .unwrap()
            .contains("unknown action"));
        h.handle_text(id, r#"{"action":"ping"}"#);
        assert_eq!(drain(&mut rx)[0]["type"], "pong");
        let big = format!(r#"{{"action":"ping","pad":"{}"}}"#, "x".repeat(5000));
        h.handle_text(id, &big);
        assert!(drain(&mut rx)[0]["message"]
            .as_str()
            .unwrap()
            .contains("too large"));
    }

    #[test]
    fn too_many_symbols() {
        let h = hub();
        let many: Vec<String> = (0..60).map(|i| format!("S{i}")).collect();
        h.set_known_symbols(many.clone());
        let (id, mut rx, _k) = h.register();
        let msg = serde_json::json!({"action":"subscribe","symbols":many}).to_string();
        h.handle_text(id, &msg);
        let got = drain(&mut rx);
        assert_eq!(got[0]["type"], "error");
        assert!(got[0]["message"]
            .as_str()
            .unwrap()
            .contains("too many symbols"));
    }

    #[test]
    fn a_full_queue_kicks_only_that_client() {
        let h = hub();
        let (slow, _slow_rx, slow_kick) = h.register();
        let (fast, mut fast_rx, fast_kick) = h.register();
        h.handle_text(slow, r#"{"action":"subscribe","symbols":["XAUUSD"]}"#);
        h.handle_text(fast, r#"{"action":"subscribe","symbols":["XAUUSD"]}"#);
        drain(&mut fast_rx);
        for seq in 1..=10 {
            h.publish_now(&[update("XAUUSD", seq)]);
            drain(&mut fast_rx);
        }
        assert!(slow_kick.token.is_cancelled());
        assert_eq!(slow_kick.code.load(Ordering::SeqCst), 1013);
        assert!(!fast_kick.token.is_cancelled());
        assert_eq!(h.client_count(), 1);
        // Prediction messages go to everyone still connected.
        let pv = Broadcast {
            topic: Topic::All,
            payload: Bytes::from_static(br#"{"type":"prediction_verified","payload":{}}"#),
        };
        h.publish_now(&[pv]);
        assert_eq!(drain(&mut fast_rx)[0]["type"], "prediction_verified");
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
    async fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
        let h = Hub::new(
            HubConfig {
                queue_capacity: 100_000,
                write_timeout: Duration::from_millis(500),
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
