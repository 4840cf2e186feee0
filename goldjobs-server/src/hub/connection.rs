//! One WebSocket connection: admission, the upgrade, the read loop, pings, draining what the
//! socket could not take at once, and close.
//!
//! The WebSocket protocol (frame parsing, limits, pong and close handshakes) is tungstenite's;
//! its writes, like every other write, go through the connection's [`Outlet`], so that the
//! publisher can write to the socket directly and ordering holds.

use super::outlet::{Offer, Outlet};
use super::protocol::{encode, Reply};
use super::*;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// The stream tungstenite sees: reads come from the socket (after any bytes hyper had read
/// ahead), writes go into the outlet and never wait.
struct WsIo<R> {
    read: R,
    read_ahead: Bytes,
    outlet: Arc<Outlet>,
}

impl<R: AsyncRead + Unpin> AsyncRead for WsIo<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            let head = self.read_ahead.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for WsIo<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.outlet.offer_frame(Bytes::copy_from_slice(buf)) {
            Offer::Sent | Offer::Pending | Offer::Replaced => Poll::Ready(Ok(buf.len())),
            Offer::Overflow => Poll::Ready(Err(io::Error::other("client backlog full"))),
            Offer::Closed => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Where the connection task writes what waits in the outlet: nowhere for a raw TCP outlet
/// (it writes to its socket itself), else this stream.
enum Drain<W> {
    Raw,
    /// The stream and the bytes taken from the outlet but not written yet.
    Stream(W, Bytes),
}

impl<W: AsyncWrite + Unpin> Drain<W> {
    fn stream(w: W) -> Self {
        Drain::Stream(w, Bytes::new())
    }

    /// Whether bytes taken from the outlet still wait.
    fn busy(&self) -> bool {
        matches!(self, Drain::Stream(_, b) if !b.is_empty())
    }

    /// Write everything that waits in `outlet`. Cancel-safe: bytes taken and not yet written
    /// stay in `self` for the next call.
    async fn run(&mut self, outlet: &Outlet) -> io::Result<()> {
        match self {
            Drain::Raw => outlet.drain_raw().await,
            Drain::Stream(w, inflight) => {
                loop {
                    if inflight.is_empty() {
                        match outlet.take_next() {
                            Some(b) => *inflight = b,
                            None => break,
                        }
                    }
                    outlet.mark(true);
                    let n = w.write(inflight).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    bytes::Buf::advance(inflight, n);
                    outlet.mark(false);
                }
                w.flush().await
            }
        }
    }
}

impl Hub {
    /// Take over a connection once hyper has upgraded it (after the `101` answer), holding
    /// `slot` until it ends. A plain TCP connection gets the direct-write fast path.
    pub fn accept(&self, on_upgrade: hyper::upgrade::OnUpgrade, slot: Slot) {
        let hub = self.clone();
        self.inner.tracker.spawn(async move {
            let _slot = slot;
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket upgrade failed");
                    return;
                }
            };
            type Tcp = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
            match upgraded.downcast::<Tcp>() {
                Ok(parts) => {
                    let (read, write) = parts.io.into_inner().into_split();
                    let outlet = Arc::new(Outlet::new(
                        Some(Arc::new(write)),
                        hub.inner.cfg.max_backlog_bytes,
                    ));
                    // Bytes hyper read ahead, copied: the view would keep hyper's whole read
                    // buffer alive for the life of the connection.
                    let read_ahead = Bytes::copy_from_slice(&parts.read_buf);
                    drop(parts.read_buf);
                    hub.serve_parts(read, read_ahead, Drain::<tokio::io::Sink>::Raw, outlet)
                        .await;
                }
                Err(upgraded) => {
                    let (read, write) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
                    let outlet = Arc::new(Outlet::new(None, hub.inner.cfg.max_backlog_bytes));
                    hub.serve_parts(read, Bytes::new(), Drain::stream(write), outlet)
                        .await;
                }
            }
        });
    }

    /// Serve a WebSocket over an already upgraded stream (no HTTP handshake), e.g. for tests;
    /// the connection counts against [`HubConfig::max_clients`] like any other and is closed at
    /// once when the hub is full.
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
            let (read, write) = tokio::io::split(io);
            let outlet = Arc::new(Outlet::new(None, hub.inner.cfg.max_backlog_bytes));
            hub.serve_parts(read, Bytes::new(), Drain::stream(write), outlet)
                .await;
        });
    }

    /// Run one connection until it ends.
    async fn serve_parts<R, W>(
        &self,
        read: R,
        read_ahead: Bytes,
        mut drain: Drain<W>,
        outlet: Arc<Outlet>,
    ) where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let io = WsIo {
            read,
            read_ahead,
            outlet: outlet.clone(),
        };
        let cfg = &self.inner.cfg;
        let ws =
            WebSocketStream::from_raw_socket(io, Role::Server, Some(cfg.websocket_config())).await;
        let (id, kick) = self.register(outlet.clone());
        if self.inner.shutdown.is_cancelled() {
            kick.fire(1001);
        }
        let (mut sink, mut stream) = ws.split();
        let mut ping =
            tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A socket that takes nothing for this long is a client that reads nothing (1013).
        let stall_limit = cfg.ping_interval.saturating_mul(2);
        let mut heard_since_ping = true;
        let mut window_start = Instant::now();
        let mut in_window: u32 = 0;
        let mut warned_in_window = false;
        let close_code: Option<u16>;

        loop {
            let pending = drain.busy() || !outlet.is_idle();
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
                r = drain.run(&outlet), if pending => {
                    if r.is_err() {
                        close_code = None;
                        break;
                    }
                }
                _ = outlet.wake.notified(), if !pending => {}
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
                                    let _ = sink
                                        .send(Message::Text(encode(&Reply::Error { message: &message })))
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
                            // tungstenite queued the close answer; it is drained below.
                            let _ = sink.flush().await;
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
                                // tungstenite queued the pong; hand it to the outlet.
                                Message::Ping(_) if sink.flush().await.is_err() => {
                                    close_code = Some(1013);
                                    break;
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ = ping.tick() => {
                    if outlet.stalled_since().is_some_and(|t| t.elapsed() >= stall_limit) {
                        tracing::debug!(client = id, "reads nothing: dropping WebSocket client");
                        self.inner.metrics.ws_slow_disconnects.inc();
                        close_code = Some(1013);
                        break;
                    }
                    if !heard_since_ping {
                        if outlet.stalled_since().is_some() {
                            // Silent and not reading what we send: too slow, not dead.
                            tracing::debug!(client = id, "reads nothing: dropping WebSocket client");
                            self.inner.metrics.ws_slow_disconnects.inc();
                            close_code = Some(1013);
                        } else {
                            tracing::debug!(client = id, "no pong: dropping WebSocket client");
                            close_code = Some(1001);
                        }
                        break;
                    }
                    heard_since_ping = false;
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        close_code = Some(1013);
                        break;
                    }
                }
            }
        }

        self.unregister(id);
        let closing = async {
            if let Some(code) = close_code {
                if code == 1013 {
                    // Too slow: what waits will not be read in time; the close frame goes next.
                    outlet.discard();
                }
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: Utf8Bytes::from_static(""),
                };
                if sink.send(Message::Close(Some(frame))).await.is_ok() {
                    if drain.run(&outlet).await.is_err() {
                        return;
                    }
                    // Wait for the client's close reply (or EOF).
                    while let Some(Ok(m)) = stream.next().await {
                        if let Message::Close(_) = m {
                            break;
                        }
                    }
                }
            } else {
                // The client closed (or the socket failed): deliver what waits, the close
                // answer included.
                let _ = drain.run(&outlet).await;
            }
        };
        let _ = tokio::time::timeout(cfg.close_timeout, closing).await;
        outlet.close();
    }
}
