//! The goldjobs reference server as a library, so that tests can start it in-process.
//!
//! - [`config`]: the typed configuration (guide: *Configuration reference*).
//! - [`hub`]: the WebSocket hub (guide: *WebSocket protocol*), also the in-process
//!   [`goldjobs::Broadcaster`].
//! - [`http`]: the hyper 1 HTTP routes (guide: *HTTP API*).
//! - [`metrics`]: Prometheus metrics.
//! - [`openapi`]: the OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`).
//! - [`memo`]: values refreshed at most once a second for anonymous reads.
//! - [`app`]: the server around the library's [`goldjobs::service`]: config → service → HTTP and WebSocket.

pub mod app;
pub mod cli;
pub mod config;
pub mod http;
pub mod hub;
pub mod memo;
pub mod metrics;
pub mod openapi;
