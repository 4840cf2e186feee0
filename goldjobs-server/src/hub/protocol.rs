//! The client → server messages (`subscribe`, `unsubscribe`, `ping`) and the replies.

use super::*;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Reply<'a> {
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

/// A server text frame with this payload: FIN, opcode text, unmasked (server frames are
/// never masked, so the same bytes serve every client).
pub(super) fn text_frame(payload: impl Into<bytes::Bytes>) -> bytes::Bytes {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let frame = Frame::message(payload, OpCode::Data(Data::Text), true);
    let mut out = Vec::with_capacity(frame.len());
    match frame.format(&mut out) {
        Ok(()) => bytes::Bytes::from(out),
        // Writing into a Vec cannot fail.
        Err(_) => bytes::Bytes::new(),
    }
}

pub(super) fn encode(reply: &Reply<'_>) -> Utf8Bytes {
    match serde_json::to_string(reply) {
        Ok(s) => Utf8Bytes::from(s),
        Err(_) => Utf8Bytes::from_static(r#"{"type":"error","message":"internal error"}"#),
    }
}

/// Outcome of handling one client text message.
pub(super) enum Handled {
    Ok,
    /// The client's queue is full: it has been kicked.
    Kicked,
}

impl Hub {
    pub(super) fn reply(&self, id: u64, reply: &Reply<'_>) -> Handled {
        let text = encode(reply);
        let mut st = self.lock();
        self.send_to(&mut st, id, text)
    }

    pub(super) fn error(&self, id: u64, message: &str) -> Handled {
        self.reply(id, &Reply::Error { message })
    }

    /// Handle one client text message.
    pub(super) fn handle_text(&self, id: u64, text: &str) -> Handled {
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
}
