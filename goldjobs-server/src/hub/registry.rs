//! Who is connected and subscribed to what, and delivery of a published message to them.

use super::protocol::{encode, Reply};
use super::*;
use goldjobs::{Broadcast, Topic};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
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
    pub(super) tx: mpsc::Sender<Utf8Bytes>,
    pub(super) kick: Arc<Kick>,
    pub(super) symbols: HashSet<String>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) known: HashSet<String>,
    pub(super) clients: HashMap<u64, Client>,
    pub(super) subs: HashMap<String, HashSet<u64>>,
    pub(super) last: HashMap<String, Utf8Bytes>,
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
    pub(super) fn offer(&self, c: &Client, text: Utf8Bytes) -> bool {
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
    pub(super) fn send_to(&self, st: &mut State, id: u64, text: Utf8Bytes) -> Handled {
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

    pub(super) fn register(&self) -> (u64, mpsc::Receiver<Utf8Bytes>, Arc<Kick>) {
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
            if let Some(last) = st.last.get(s).cloned() {
                if let Handled::Kicked = self.send_to(&mut st, id, last) {
                    return Handled::Kicked;
                }
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
