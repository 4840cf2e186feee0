//! # goldjobs-core
//!
//! The domain, ports (traits), job runtime, the three jobs, the condition language and an
//! in-memory adapter for every port. No I/O backend lives here; see `goldjobs-adapters`.

pub mod clock;
pub mod condition;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod error;
pub mod jobs;
pub mod memory;
pub mod model;
pub mod news;
pub mod ports;
pub mod runtime;
pub mod verify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BoxError, Error, Result};
pub use model::*;
pub use ports::*;
pub use runtime::{Job, JobContext, MissedTickPolicy, RetryPolicy, RunReport, Schedule};
