//! The envelope of a message on the channel (see the [module docs](super#envelope)).

use super::MAX_FRAME_BYTES;
use bytes::{BufMut, Bytes, BytesMut};
use goldjobs_core::{Broadcast, Topic};

const MAGIC: &[u8; 4] = b"GJE1";
const TAG_ALL: u8 = 0;
const TAG_SYMBOL: u8 = 1;

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
