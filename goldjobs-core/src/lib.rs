//! # goldjobs-core
//!
//! The domain, ports (traits), job runtime, the three jobs, the condition language and an
//! in-memory adapter for every port. No I/O backend lives here; see `goldjobs-adapters`.

pub mod backoff;
mod clock;
pub mod condition;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
mod error;
pub mod jobs;
mod market;
pub mod memory;
mod model;
pub mod news;
mod ports;
pub mod runtime;
pub mod verify;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use error::{chain_message, BoxError, Error, Result};
pub use market::{
    validate_price, validate_price_point, validate_quote, HISTORY_WINDOW, MAX_QUOTE_AGE,
    MAX_QUOTE_LEAD,
};
pub use model::*;
pub use ports::*;
