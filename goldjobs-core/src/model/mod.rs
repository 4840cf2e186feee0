//! Domain types, by domain. Serde shapes follow the guide (*Introduction* › *Conventions on every
//! wire*): decimals are JSON strings, timestamps RFC 3339 UTC. Every type is re-exported at the
//! crate root, its one public path (`goldjobs_core::Quote`).

mod candle;
mod event;
mod market;
mod news;
mod notify;
mod outbox;
mod prediction;

pub use candle::*;
pub use event::*;
pub use market::*;
pub use news::*;
pub use notify::*;
pub use outbox::*;
pub use prediction::*;
