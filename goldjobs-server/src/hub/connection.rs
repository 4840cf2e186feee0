//! One WebSocket connection: admission, the upgrade, the read/write loop, pings and close.

use super::protocol::{encode, Reply};
use super::*;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// How a bounded write ended.
pub(super) enum Write {
    Done,
    /// A kick or shutdown came first; the loop closes the connection.
    Interrupted,
    /// It failed or timed out: the connection is dead or stuck.
    Failed,
}

impl Hub {
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
    pub(super) async fn write<F, E>(&self, kick: &Kick, write: F) -> Write
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
}
