//! Prediction verification (CONTRACT.md §6): the verifier job, statistics, the outbox dispatcher.

pub mod stats;

pub use stats::{accuracy_rate, apply_result, price_change_percent};
