//! The WebSocket plumbing the provider streams share: the TLS connector, the handshake with its
//! errors mapped to the core [`Error`], and one task per connection that reads frames, sends the
//! provider's keep-alive, notices silence and hands events to the consumer through a bounded
//! channel.
//!
//! What every provider stream gets from here:
//!
//! * **TLS** with rustls (the ring provider reqwest already uses) and the webpki roots; `ws://`
//!   is accepted for tests against a local server.
//! * **Handshake errors**: HTTP 401/403 → permanent [`Error::Backend`]; 429 (or 418) →
//!   [`Error::RateLimited`] with `Retry-After`; anything else (5xx, refused connection, TLS) →
//!   temporary [`Error::Unavailable`]; no answer within the connect timeout → [`Error::Timeout`].
//!   Messages never contain the URL's query or a header (where keys live).
//! * **Frames**: text frames go to the provider's parser; a frame it cannot read is skipped and
//!   counted (the first of each connection is logged), never the end of the stream. Frames larger
//!   than [`MAX_FRAME`] end the connection (a provider's price event is a few hundred bytes).
//!   Pings are answered by the WebSocket layer.
//! * **Silence**: no frame at all for the idle timeout ends the connection with
//!   [`Error::Timeout`], so the consumer reconnects instead of waiting forever.
//! * **Close**: a close frame or a dropped connection ends the stream with a temporary error
//!   saying so.
//! * **Backpressure**: at most [`CHANNEL_CAPACITY`] events wait for the consumer; when they do,
//!   the task stops reading the socket until there is room (TCP holds the rest), so memory stays
//!   bounded whatever the provider sends. Dropping the event stream closes the connection.

use futures::{SinkExt, StreamExt};
use goldjobs_core::{Error, PriceEvents, Result, StreamEvent};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Events that may wait for the consumer of one connection.
pub(crate) const CHANNEL_CAPACITY: usize = 1024;
/// The largest frame or message accepted from a provider.
pub(crate) const MAX_FRAME: usize = 1024 * 1024;

/// A connected provider socket.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How one connection behaves.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Backend name for errors and logs.
    pub(crate) backend: &'static str,
    /// No frame for this long ends the connection.
    pub(crate) idle_timeout: Duration,
    /// A text message to send every period (the provider's keep-alive), if it wants one.
    pub(crate) heartbeat: Option<(Duration, String)>,
    /// End the connection after this long (a provider that cuts connections at a fixed age).
    pub(crate) max_age: Option<Duration>,
}

/// What a provider's parser makes of one text frame.
pub(crate) trait Protocol: Send + 'static {
    /// Read one text frame and push what it says to `out`. `Err` = a frame that could not be
    /// read (skipped and counted); an `Err` pushed to `out` ends the connection.
    fn on_text(&mut self, text: &str, out: &mut Vec<Result<StreamEvent>>) -> Result<(), String>;
}

fn tls(backend: &'static str) -> Result<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::backend(backend, format!("TLS setup failed: {e}"), None))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// The URL without its query (keys may live there), for messages.
pub(crate) fn safe_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Open a WebSocket to `url` with extra request headers, within `timeout`.
pub(crate) async fn connect(
    backend: &'static str,
    url: &str,
    headers: &[(&'static str, String)],
    timeout: Duration,
) -> Result<Socket> {
    let mut request = url.into_client_request().map_err(|e| {
        Error::invalid(format!(
            "{backend} stream URL {:?} is not a WebSocket URL: {e}",
            safe_url(url)
        ))
    })?;
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|_| {
            Error::invalid(format!(
                "{backend}: the value of header {name} contains characters not allowed in a header"
            ))
        })?;
        request
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        false,
        Some(tokio_tungstenite::Connector::Rustls(tls(backend)?)),
    );
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(Error::Timeout(timeout)),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(handshake_error(backend, e)),
    }
}

fn handshake_error(backend: &'static str, e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(super::http::snippet)
                .filter(|s| !s.is_empty())
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            let message = format!("stream handshake answered HTTP {status}{body}");
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                Error::backend(backend, message, None)
            } else if status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 418 {
                Error::RateLimited {
                    backend,
                    message,
                    retry_after: crate::headers::retry_after(response.headers()),
                }
            } else {
                Error::unavailable(backend, message, None)
            }
        }
        tungstenite::Error::Url(e) => {
            Error::invalid(format!("{backend}: the stream URL is not usable: {e}"))
        }
        other => Error::unavailable(backend, format!("stream connection failed: {other}"), None),
    }
}

/// Send `first` (e.g. the subscription), then run the connection in its own task; the events it
/// reads come out of the returned stream.
pub(crate) async fn start(
    mut socket: Socket,
    first: Vec<String>,
    protocol: impl Protocol,
    session: Session,
) -> Result<PriceEvents> {
    for text in first {
        socket.send(Message::text(text)).await.map_err(|e| {
            Error::unavailable(
                session.backend,
                format!("stream subscription not sent: {e}"),
                None,
            )
        })?;
    }
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(drive(socket, protocol, session, tx));
    Ok(
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
            .boxed(),
    )
}

enum Step {
    Frame(Option<std::result::Result<Message, tungstenite::Error>>),
    Heartbeat,
    Idle,
    Old,
    Gone,
}

async fn drive(
    mut socket: Socket,
    mut protocol: impl Protocol,
    session: Session,
    tx: mpsc::Sender<Result<StreamEvent>>,
) {
    let backend = session.backend;
    let started = tokio::time::Instant::now();
    let mut heartbeat = session.heartbeat.as_ref().map(|(every, _)| {
        let mut i = tokio::time::interval_at(started + *every, *every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut last_frame = started;
    let mut skipped: u64 = 0;
    let mut out = Vec::new();
    let end: Option<Error> = loop {
        let idle_at = last_frame + session.idle_timeout;
        let step = tokio::select! {
            frame = socket.next() => Step::Frame(frame),
            _ = async {
                match heartbeat.as_mut() {
                    Some(i) => { i.tick().await; }
                    None => std::future::pending().await,
                }
            } => Step::Heartbeat,
            () = tokio::time::sleep_until(idle_at) => Step::Idle,
            () = async {
                match session.max_age {
                    Some(age) => tokio::time::sleep_until(started + age).await,
                    None => std::future::pending().await,
                }
            } => Step::Old,
            () = tx.closed() => Step::Gone,
        };
        match step {
            Step::Gone => break None,
            Step::Idle => {
                break Some(Error::unavailable(
                    backend,
                    format!("stream silent for {:?}", session.idle_timeout),
                    None,
                ))
            }
            Step::Old => {
                break Some(Error::unavailable(
                    backend,
                    "stream connection reached its maximum age; reconnecting",
                    None,
                ))
            }
            Step::Heartbeat => {
                if let Some((_, text)) = &session.heartbeat {
                    if let Err(e) = socket.send(Message::text(text.clone())).await {
                        break Some(Error::unavailable(
                            backend,
                            format!("stream heartbeat not sent: {e}"),
                            None,
                        ));
                    }
                }
            }
            Step::Frame(None) => {
                break Some(Error::unavailable(
                    backend,
                    "stream connection closed",
                    None,
                ))
            }
            Step::Frame(Some(Err(e))) => {
                break Some(Error::unavailable(
                    backend,
                    format!("stream connection failed: {e}"),
                    None,
                ))
            }
            Step::Frame(Some(Ok(message))) => {
                last_frame = tokio::time::Instant::now();
                let text = match message {
                    Message::Text(text) => text,
                    Message::Binary(bytes) => match std::str::from_utf8(&bytes) {
                        Ok(text) => text.into(),
                        Err(_) => {
                            skipped = skip(backend, skipped, "a binary frame that is not UTF-8");
                            continue;
                        }
                    },
                    Message::Close(frame) => {
                        let why = frame
                            .map(|f| format!(" ({} {})", u16::from(f.code), f.reason))
                            .unwrap_or_default();
                        break Some(Error::unavailable(
                            backend,
                            format!("stream closed by the provider{why}"),
                            None,
                        ));
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                };
                if let Err(why) = protocol.on_text(text.as_str(), &mut out) {
                    skipped = skip(backend, skipped, &why);
                }
                let mut failed = false;
                for event in out.drain(..) {
                    failed |= event.is_err();
                    if tx.send(event).await.is_err() {
                        break;
                    }
                    if failed {
                        break;
                    }
                }
                if failed || tx.is_closed() {
                    break None;
                }
            }
        }
    };
    if let Some(e) = end {
        let _ = tx.send(Err(e)).await;
    }
    let _ = socket.close(None).await;
}

/// Count a frame that could not be read; log the first one of the connection.
fn skip(backend: &'static str, skipped: u64, why: &str) -> u64 {
    if skipped == 0 {
        tracing::warn!(stream = backend, error = %why, "unreadable stream frame skipped (further ones are counted at debug level)");
    } else {
        tracing::debug!(stream = backend, error = %why, skipped = skipped + 1, "unreadable stream frame skipped");
    }
    skipped + 1
}

/// A decimal from a JSON value's raw text: a number as written (no float round trip) or a string
/// holding one.
pub(crate) fn raw_decimal(raw: &serde_json::value::RawValue) -> Option<rust_decimal::Decimal> {
    let text = raw.get().trim();
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).ok()?;
        return super::http::parse_decimal(&s);
    }
    super::http::parse_decimal(text)
}
