//! Prediction verification (CONTRACT.md §6): the verifier job, statistics, the outbox dispatcher.
