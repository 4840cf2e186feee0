//! In-memory adapters of every port: for tests and the embedded default.

mod predictions;
pub use predictions::{InMemoryPredictions, DEFAULT_OUTBOX_RETENTION};
