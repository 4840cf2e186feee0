//! A connection's write side, shared by the publisher and the connection's own task.
//!
//! The publisher writes a frame (encoded once, the same bytes for every client: server frames
//! are unmasked) straight to the socket with a non-blocking `try_write`. Only when the socket
//! would block, or something is already waiting, is the frame kept here and the connection task
//! woken to finish the job when the socket is writable again. What waits is bounded:
//!
//! - price updates are **conflated**: at most one pending frame per symbol, a newer value
//!   replaces the older one (the client sees `seq` jump), so a slow client costs O(symbols);
//! - other frames (replies, pongs, prediction events to everyone) queue in order, up to
//!   [`HubConfig::max_backlog_bytes`](super::HubConfig::max_backlog_bytes); a client that lets more pile up is disconnected with 1013;
//! - a client whose socket takes nothing at all for the stall limit is disconnected with 1013.

use bytes::Bytes;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What became of an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offer {
    /// Written to the socket in full.
    Sent,
    /// Kept for the connection task (the socket would block, or others wait before it).
    Pending,
    /// A price kept for the connection task in place of the symbol's older pending value,
    /// which the client will never get (conflation).
    Replaced,
    /// The client's backlog is over its limit: it must be disconnected (1013).
    Overflow,
    /// The socket failed or the connection is closing: nothing more is written.
    Closed,
}

#[derive(Default)]
struct Backlog {
    /// The frame being written and how many of its bytes went already.
    partial: Option<(Bytes, usize)>,
    /// Frames that are not conflated, in order.
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    /// The latest pending price frame of each symbol.
    latest: Vec<(Arc<str>, Bytes)>,
    /// Since when bytes wait without the socket taking any.
    stalled_since: Option<Instant>,
    /// Set once the socket failed or the connection ended.
    closed: bool,
}

impl Backlog {
    fn is_empty(&self) -> bool {
        self.partial.is_none() && self.queue.is_empty() && self.latest.is_empty()
    }

    /// The next bytes to write: the rest of the partial frame, else the queue, else the
    /// conflated values (taken into `partial`).
    fn next(&mut self) -> Option<(Bytes, usize)> {
        if let Some(p) = self.partial.take() {
            return Some(p);
        }
        if let Some(f) = self.queue.pop_front() {
            self.queued_bytes -= f.len();
            return Some((f, 0));
        }
        if self.latest.is_empty() {
            None
        } else {
            let (_, f) = self.latest.remove(0);
            Some((f, 0))
        }
    }
}

/// The shared write side of one connection.
pub(super) struct Outlet {
    /// The socket, for connections the publisher may write to directly (plain TCP).
    raw: Option<Arc<OwnedWriteHalf>>,
    backlog: Mutex<Backlog>,
    /// Non-conflatable bytes that may wait.
    max_queued_bytes: usize,
    /// Wakes the connection task when something waits.
    pub(super) wake: Notify,
}

impl Outlet {
    /// An outlet writing straight to `raw` when given (else only the connection task writes).
    pub(super) fn new(raw: Option<Arc<OwnedWriteHalf>>, max_queued_bytes: usize) -> Self {
        Outlet {
            raw,
            backlog: Mutex::new(Backlog::default()),
            max_queued_bytes,
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Try to write `frame` at once; `Err(())` when the socket failed.
    fn try_now(&self, b: &mut Backlog, frame: &Bytes) -> Result<bool, ()> {
        let Some(raw) = &self.raw else {
            return Ok(false);
        };
        match raw.try_write(frame) {
            Ok(n) if n == frame.len() => Ok(true),
            Ok(n) => {
                b.partial = Some((frame.clone(), n));
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(_) => {
                b.closed = true;
                Err(())
            }
        }
    }

    /// Offer the price frame of `symbol`: written now, or kept as the symbol's latest value
    /// (replacing an older pending one).
    pub(super) fn offer_price(&self, symbol: &Arc<str>, frame: &Bytes) -> Offer {
        let mut b = self.lock();
        if b.closed {
            return Offer::Closed;
        }
        let mut offer = Offer::Pending;
        if b.is_empty() {
            match self.try_now(&mut b, frame) {
                Ok(true) => return Offer::Sent,
                Ok(false) if b.partial.is_some() => {}
                Ok(false) => {
                    b.latest.push((symbol.clone(), frame.clone()));
                }
                Err(()) => return Offer::Closed,
            }
        } else if let Some(slot) = b.latest.iter_mut().find(|(s, _)| s == symbol) {
            slot.1 = frame.clone();
            offer = Offer::Replaced;
        } else {
            b.latest.push((symbol.clone(), frame.clone()));
        }
        b.stalled_since.get_or_insert_with(Instant::now);
        drop(b);
        self.wake.notify_one();
        offer
    }

    /// Offer a frame that must not be dropped or reordered (a reply, an event to everyone,
    /// a control frame).
    pub(super) fn offer_frame(&self, frame: Bytes) -> Offer {
        let mut b = self.lock();
        if b.closed {
            return Offer::Closed;
        }
        if b.is_empty() {
            match self.try_now(&mut b, &frame) {
                Ok(true) => return Offer::Sent,
                Ok(false) if b.partial.is_some() => {}
                Ok(false) => {
                    b.queued_bytes += frame.len();
                    b.queue.push_back(frame);
                }
                Err(()) => return Offer::Closed,
            }
        } else {
            if b.queued_bytes + frame.len() > self.max_queued_bytes {
                return Offer::Overflow;
            }
            b.queued_bytes += frame.len();
            b.queue.push_back(frame);
        }
        b.stalled_since.get_or_insert_with(Instant::now);
        drop(b);
        self.wake.notify_one();
        Offer::Pending
    }

    /// Since when waiting bytes have not moved (`None` when nothing waits).
    pub(super) fn stalled_since(&self) -> Option<Instant> {
        self.lock().stalled_since
    }

    /// Drop what waits except the rest of a frame being written (so that a close frame offered
    /// next still goes out in a valid stream): for a client being disconnected.
    pub(super) fn discard(&self) {
        let mut b = self.lock();
        b.queue.clear();
        b.queued_bytes = 0;
        b.latest.clear();
    }

    /// Nothing more is written; what waits is dropped.
    pub(super) fn close(&self) {
        let mut b = self.lock();
        b.closed = true;
        b.partial = None;
        b.queue.clear();
        b.queued_bytes = 0;
        b.latest.clear();
    }

    /// Write what waits, for a connection whose socket the publisher writes to ([`Outlet::raw`]):
    /// returns when nothing waits any more; an error when the socket failed.
    pub(super) async fn drain_raw(&self) -> io::Result<()> {
        let Some(raw) = &self.raw else {
            return Ok(());
        };
        loop {
            {
                let mut b = self.lock();
                if b.closed {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                loop {
                    let Some((frame, done)) = b.next() else {
                        b.stalled_since = None;
                        return Ok(());
                    };
                    match raw.try_write(&frame[done..]) {
                        Ok(n) if done + n == frame.len() => {
                            b.stalled_since = Some(Instant::now());
                        }
                        Ok(n) => {
                            b.partial = Some((frame, done + n));
                            b.stalled_since = Some(Instant::now());
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            b.partial = Some((frame, done));
                            break;
                        }
                        Err(e) => {
                            b.closed = true;
                            return Err(e);
                        }
                    }
                }
            }
            raw.writable().await?;
        }
    }

    /// Take the next waiting bytes, for a connection whose task writes them itself (any
    /// stream); `None` when nothing waits. Taken bytes are the caller's to write in full.
    pub(super) fn take_next(&self) -> Option<Bytes> {
        let mut b = self.lock();
        match b.next() {
            Some((frame, done)) => Some(frame.slice(done..)),
            None => {
                b.stalled_since = None;
                None
            }
        }
    }

    /// Bytes taken with [`take_next`](Self::take_next) still wait to be written (`true`), or
    /// some went (`false`): keeps the stall clock right for a task-written stream.
    pub(super) fn mark(&self, waiting: bool) {
        let mut b = self.lock();
        if waiting {
            b.stalled_since.get_or_insert_with(Instant::now);
        } else {
            b.stalled_since = Some(Instant::now());
        }
    }

    /// Whether nothing waits.
    pub(super) fn is_idle(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn without_a_socket_prices_conflate_and_frames_queue_in_order() {
        let o = Outlet::new(None, 256 * 1024);
        let gold = sym("XAUUSD");
        assert_eq!(
            o.offer_price(&gold, &Bytes::from_static(b"g1")),
            Offer::Pending
        );
        assert_eq!(o.offer_frame(Bytes::from_static(b"reply")), Offer::Pending);
        assert_eq!(
            o.offer_price(&gold, &Bytes::from_static(b"g2")),
            Offer::Replaced
        );
        assert_eq!(
            o.offer_price(&sym("XAGUSD"), &Bytes::from_static(b"s1")),
            Offer::Pending
        );
        let mut got = Vec::new();
        while let Some(b) = o.take_next() {
            got.push(b);
        }
        assert_eq!(
            got,
            ["reply", "g2", "s1"].map(|s| Bytes::from_static(s.as_bytes()))
        );
        assert!(o.is_idle());
        assert!(o.stalled_since().is_none());
    }

    #[test]
    fn queued_bytes_are_bounded_and_closed_outlets_take_nothing() {
        let o = Outlet::new(None, 256 * 1024);
        let big = Bytes::from(vec![b'x'; 64 * 1024]);
        // The first is kept as well (nothing waited before it).
        for _ in 0..4 {
            assert_eq!(o.offer_frame(big.clone()), Offer::Pending);
        }
        assert_eq!(o.offer_frame(big.clone()), Offer::Overflow);
        // Prices still conflate: one slot, never an overflow.
        assert_eq!(o.offer_price(&sym("XAUUSD"), &big), Offer::Pending);
        for _ in 0..1000 {
            assert_eq!(o.offer_price(&sym("XAUUSD"), &big), Offer::Replaced);
        }
        o.close();
        assert_eq!(o.offer_frame(Bytes::from_static(b"x")), Offer::Closed);
        assert!(o.take_next().is_none());
    }

    #[tokio::test]
    async fn a_tcp_socket_is_written_at_once_and_a_full_one_is_drained_later() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let mut client = client.unwrap();
        let (_read, write) = server.unwrap().0.into_split();
        let o = Outlet::new(Some(Arc::new(write)), 256 * 1024);
        assert_eq!(o.offer_frame(Bytes::from_static(b"hello")), Offer::Sent);
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        // Fill the socket: the client reads nothing, so writes start to wait.
        let chunk = Bytes::from(vec![b'p'; 64 * 1024]);
        let gold = sym("XAUUSD");
        let mut pending = false;
        for _ in 0..10_000 {
            if o.offer_price(&gold, &chunk) == Offer::Pending {
                pending = true;
                break;
            }
        }
        assert!(pending, "a socket that is not read fills up");
        // Newer values replace the waiting one: a slow client costs one slot per symbol.
        for _ in 0..100 {
            assert_eq!(o.offer_price(&gold, &chunk), Offer::Replaced);
        }
        let reader = tokio::spawn(async move {
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = client.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        });
        o.drain_raw().await.unwrap();
        assert!(o.is_idle());
        drop(o);
        let total = reader.await.unwrap();
        assert!(total > 0);
        assert_eq!(
            total % (64 * 1024),
            0,
            "whole frames only, never a torn one"
        );
    }
}
