//! Conformance suites, one per port, written against `&dyn Port`; real adapters run them too.
//!
//! Each module has one `pub async fn` per behaviour and a `run_all` entry that runs them in
//! turn. A failed expectation panics with a message naming the behaviour, like any test
//! assertion. The in-memory adapters of [`crate::memory`] run every suite in this crate's
//! tests; a real adapter's integration test calls the same `run_all` on a real backend.
//!
//! **Sharing a backend.** Every call uses fresh random ids, keys, symbol codes, categories and
//! lease names, so suites can run in parallel against one shared database or Redis. Two
//! behaviours act on the whole store and need a store of their own (their own PostgreSQL schema,
//! their own Redis key prefix): [`ticks::delete_is_bounded`] (deletes ticks older than 1971-01-02,
//! whoever wrote them) and [`news_cache::invalidate_misses_every_list`] (invalidates every
//! list of the cache it is given).
//!
//! **Time.** Suites about expiry (quote cache, news cache, lease) take a [`Sleep`]: a real
//! backend passes [`tokio_sleep`] (these suites then sleep for about two seconds); in-memory
//! caches pass it too under paused tokio time, and an in-memory lease passes [`advancing`] its
//! `ManualClock`.

pub mod device_tokens;
pub mod jobs;
pub mod lease;
pub mod news;
pub mod news_cache;
pub mod outbox;
pub mod predictions;
pub mod quote_cache;
pub mod symbols;
pub mod ticks;

use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use rand::Rng;
use std::time::Duration;

/// Lets time pass for a suite: sleeps, or advances a test clock.
pub type Sleep = dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync;

/// A [`Sleep`] on the tokio clock (real time, or paused time in tests).
pub fn tokio_sleep(d: Duration) -> BoxFuture<'static, ()> {
    Box::pin(tokio::time::sleep(d))
}

/// A [`Sleep`] that advances a [`ManualClock`](crate::ManualClock) at once instead of waiting
/// (for adapters timed by an injected clock, like `InMemoryLease`).
pub fn advancing(clock: crate::ManualClock) -> Box<Sleep> {
    Box::new(move |d: Duration| {
        clock.advance(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
        Box::pin(std::future::ready(()))
    })
}

/// A unique id like `prefix-3f2a9c1b7d4e8f60`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::thread_rng().gen::<u64>())
}

/// A unique symbol code: `T` and 9 random upper-case letters, e.g. `TQWERTYUIO`.
pub fn unique_code() -> String {
    let mut rng = rand::thread_rng();
    std::iter::once('T')
        .chain((0..9).map(|_| char::from(rng.gen_range(b'A'..=b'Z'))))
        .collect()
}

/// A UTC instant from calendar fields (whole seconds, which every backend keeps exactly).
///
/// # Panics
/// On an impossible date; the suites only pass literal, valid dates.
#[track_caller]
pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    match Utc.with_ymd_and_hms(y, mo, d, h, mi, s) {
        chrono::LocalResult::Single(t) => t,
        _ => panic!("invalid date {y}-{mo}-{d} {h}:{mi}:{s}"),
    }
}

/// The value of `r`, or a panic naming `what` and the error.
#[track_caller]
pub fn ok<T>(r: crate::Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e}"),
    }
}
