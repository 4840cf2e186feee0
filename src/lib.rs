//! # goldjobs
//!
//! Facade crate: re-exports [`goldjobs_core`] and, behind features, `goldjobs_adapters`.

pub use goldjobs_core::*;

/// Adapters to real backends (enable features `postgres`, `sqlite`, `redis`, `twelvedata`, ...).
#[cfg(feature = "adapters")]
pub use goldjobs_adapters as adapters;
