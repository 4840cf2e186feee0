//! Conformance suites, one per port, written against `&dyn Port`; real adapters run them too.

pub mod outbox;
pub mod predictions;
