//! In-memory adapters of every port: for tests and the embedded default.
