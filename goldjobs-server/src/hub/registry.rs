//! Who is connected and subscribed to what, and delivery of a published message to them.

use super::outlet::{Offer, Outlet};
use super::protocol::{encode, text_frame, Reply};
use super::*;
use bytes::Bytes;
use goldjobs::{Broadcast, Topic};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

/// Why a client is asked to leave.
pub(super) struct Kick {
    pub(super) token: CancellationToken,
    pub(super) code: AtomicU16,
}

impl Kick {
    pub(super) fn new() -> Self {
        Kick {
            token: CancellationToken::new(),
            code: AtomicU16::new(1000),
        }
    }

    pub(super) fn fire(&self, code: u16) {
        if !self.token.is_cancelled() {
            self.code.store(code, Ordering::SeqCst);
            self.token.cancel();
        }
    }
}

pub(super) struct Client {
    pub(super) outlet: Arc<Outlet>,
    pub(super) kick: Arc<Kick>,
    pub(super) symbols: HashSet<String>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) known: HashSet<String>,
    pub(super) clients: HashMap<u64, Client>,
    pub(super) subs: HashMap<String, HashSet<u64>>,
    pub(super) last: HashMap<String, Snapshot>,
    /// When each symbol's price update last went out, for [`HubConfig::push_interval`].
    pub(super) pace: HashMap<String, Pace>,
}

/// The push pace of one symbol.
pub(super) struct Pace {
    sent_at: Instant,
    /// A newer value waits in `last` for the end of the interval (a flush is scheduled).
    deferred: bool,
}

/// The last `price_update` of a symbol: its text (for `last_seq`, `last_quotes`) and its frame
/// (for the snapshot after a subscribe).
#[derive(Clone)]
pub(super) struct Snapshot {
    pub(super) symbol: Arc<str>,
    pub(super) text: Utf8Bytes,
    pub(super) frame: Bytes,
}

impl State {
    /// Remove a client and its subscriptions.
    pub(super) fn remove(&mut self, id: u64) -> Option<Client> {
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

impl Hub {
    /// Fan messages out to their subscribers (synchronous; never waits for a client). Each
    /// message is framed once; the frame's bytes are written to every subscribed socket that
    /// takes them at once, and kept (price updates conflated per symbol) for the others.
    pub fn publish_now(&self, messages: &[Broadcast]) {
        let mut st = self.lock();
        let mut slow: Vec<u64> = Vec::new();
        let mut delivered = 0u64;
        for b in messages {
            let text = match Utf8Bytes::try_from(b.payload.clone()) {
                Ok(t) => t,
                Err(_) => {
                    tracing::warn!("dropping a broadcast that is not UTF-8");
                    continue;
                }
            };
            let frame = text_frame(b.payload.clone());
            let State {
                clients,
                subs,
                last,
                pace,
                ..
            } = &mut *st;
            match &b.topic {
                Topic::Symbol(code) => {
                    let symbol = match last.get(code) {
                        Some(s) => s.symbol.clone(),
                        None => Arc::from(code.as_str()),
                    };
                    let now = Instant::now();
                    let interval = self.inner.cfg.push_interval;
                    let deferred = match pace.get_mut(code) {
                        Some(p) if !interval.is_zero() && now < p.sent_at + interval => {
                            // Too soon after the last push of this symbol: the newest value
                            // goes out when the interval is over (conflation, guide: *Configuration
                            // reference* GOLDJOBS_PUSH_INTERVAL).
                            p.deferred =
                                p.deferred || self.schedule_flush(code, p.sent_at + interval);
                            p.deferred
                        }
                        _ => false,
                    };
                    if !deferred {
                        pace.insert(
                            code.clone(),
                            Pace {
                                sent_at: now,
                                deferred: false,
                            },
                        );
                        delivered += fan_out(
                            clients,
                            subs,
                            code,
                            &symbol,
                            &frame,
                            &mut slow,
                            &self.inner.metrics,
                        );
                    }
                    last.insert(
                        code.clone(),
                        Snapshot {
                            symbol,
                            text,
                            frame,
                        },
                    );
                }
                Topic::All => {
                    for (id, c) in clients.iter() {
                        match c.outlet.offer_frame(frame.clone()) {
                            Offer::Sent | Offer::Pending | Offer::Replaced => delivered += 1,
                            Offer::Overflow | Offer::Closed => slow.push(*id),
                        }
                    }
                }
            }
            self.disconnect_slow(&mut st, slow.drain(..));
        }
        self.inner.metrics.ws_messages_sent.inc_by(delivered);
    }

    /// Push the newest value of `code` at `at` (when its push interval is over); `false` when
    /// there is no runtime to wait on (the value is then pushed at once).
    fn schedule_flush(&self, code: &str, at: Instant) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let hub = self.clone();
        let code = code.to_owned();
        runtime.spawn(async move {
            tokio::time::sleep_until(at).await;
            hub.flush_deferred(&code);
        });
        true
    }

    /// Push the value of `code` that waited for the end of its interval.
    fn flush_deferred(&self, code: &str) {
        let mut st = self.lock();
        let mut slow = Vec::new();
        let State {
            clients,
            subs,
            last,
            pace,
            ..
        } = &mut *st;
        let Some(p) = pace.get_mut(code) else {
            return;
        };
        if !p.deferred {
            return;
        }
        p.deferred = false;
        p.sent_at = Instant::now();
        let Some(snapshot) = last.get(code) else {
            return;
        };
        let delivered = fan_out(
            clients,
            subs,
            code,
            &snapshot.symbol,
            &snapshot.frame,
            &mut slow,
            &self.inner.metrics,
        );
        self.inner.metrics.ws_messages_sent.inc_by(delivered);
        self.disconnect_slow(&mut st, slow);
    }

    /// Disconnect these clients with 1013 (too slow): out of the registry, what waits dropped.
    fn disconnect_slow(&self, st: &mut State, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            if let Some(c) = st.remove(id) {
                c.outlet.discard();
                c.kick.fire(1013);
                self.inner.metrics.ws_slow_disconnects.inc();
            }
        }
    }

    /// Send one reply to one client; a client whose backlog is full is disconnected (1013).
    pub(super) fn send_to(&self, st: &mut State, id: u64, text: Utf8Bytes) -> Handled {
        let offer = match st.clients.get(&id) {
            Some(c) => c.outlet.offer_frame(text_frame(text)),
            None => return Handled::Kicked,
        };
        self.after_offer(st, id, offer)
    }

    fn after_offer(&self, st: &mut State, id: u64, offer: Offer) -> Handled {
        if let Offer::Sent | Offer::Pending | Offer::Replaced = offer {
            self.inner.metrics.ws_messages_sent.inc();
            Handled::Ok
        } else {
            self.disconnect_slow(st, [id]);
            Handled::Kicked
        }
    }

    pub(super) fn register(&self, outlet: Arc<Outlet>) -> (u64, Arc<Kick>) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let kick = Arc::new(Kick::new());
        self.lock().clients.insert(
            id,
            Client {
                outlet,
                kick: kick.clone(),
                symbols: HashSet::new(),
            },
        );
        self.inner.metrics.ws_connections.inc();
        (id, kick)
    }

    pub(super) fn unregister(&self, id: u64) {
        self.lock().remove(id);
        self.inner.metrics.ws_connections.dec();
    }

    pub(super) fn subscribe(&self, id: u64, requested: Vec<String>) -> Handled {
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
            let Some(last) = st.last.get(s).cloned() else {
                continue;
            };
            let offer = match st.clients.get(&id) {
                Some(c) => c.outlet.offer_price(&last.symbol, &last.frame),
                None => return Handled::Kicked,
            };
            if let Handled::Kicked = self.after_offer(&mut st, id, offer) {
                return Handled::Kicked;
            }
        }
        Handled::Ok
    }

    pub(super) fn unsubscribe(&self, id: u64, requested: Vec<String>) -> Handled {
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
}

/// Offer the price frame of `code` to each of its subscribers; returns how many took it and
/// adds the ones to disconnect to `slow`.
fn fan_out(
    clients: &HashMap<u64, Client>,
    subs: &HashMap<String, HashSet<u64>>,
    code: &str,
    symbol: &Arc<str>,
    frame: &Bytes,
    slow: &mut Vec<u64>,
    metrics: &crate::metrics::Metrics,
) -> u64 {
    let mut delivered = 0;
    let mut replaced = 0;
    if let Some(ids) = subs.get(code) {
        for id in ids {
            if let Some(c) = clients.get(id) {
                match c.outlet.offer_price(symbol, frame) {
                    Offer::Sent | Offer::Pending => delivered += 1,
                    Offer::Replaced => {
                        delivered += 1;
                        replaced += 1;
                    }
                    Offer::Overflow | Offer::Closed => slow.push(*id),
                }
            }
        }
    }
    if replaced > 0 {
        metrics.ws_messages_dropped.inc_by(replaced);
    }
    delivered
}
