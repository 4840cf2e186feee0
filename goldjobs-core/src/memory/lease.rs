//! [`SoleLeader`] and [`InMemoryLease`]: [`Lease`]s for one process.

use super::lock;
use crate::{Clock, Error, Lease, LeaseState, Result, SystemClock};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `now + ttl` in wall-clock time; a TTL too large to represent is capped at about 30 years.
fn until(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    let ttl = chrono::Duration::from_std(ttl)
        .unwrap_or_else(|_| chrono::Duration::days(30 * 365))
        .min(chrono::Duration::days(30 * 365));
    now.checked_add_signed(ttl).unwrap_or(now)
}

/// A [`Lease`] that always makes the caller the leader: for a single instance, where there is
/// nobody to elect against. Used by tests and the embedded default.
///
/// Every acquire answers `is_leader = true`, `holder = caller`, term 1, and `expires_at = now +
/// ttl` (by its clock). Release does nothing.
#[derive(Debug, Clone)]
pub struct SoleLeader {
    clock: Arc<dyn Clock>,
}

impl Default for SoleLeader {
    fn default() -> Self {
        Self::new()
    }
}

impl SoleLeader {
    /// A sole leader on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A sole leader stamping `expires_at` with this clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

#[async_trait]
impl Lease for SoleLeader {
    async fn acquire(&self, _name: &str, holder: &str, ttl: Duration) -> Result<LeaseState> {
        Ok(LeaseState {
            is_leader: true,
            holder: Some(holder.to_owned()),
            term: 1,
            expires_at: Some(until(self.clock.now(), ttl)),
        })
    }

    async fn release(&self, _name: &str, _holder: &str) -> Result<()> {
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Held {
    holder: Option<String>,
    term: u64,
    expires_at: Option<DateTime<Utc>>,
}

impl Held {
    fn valid_holder(&self, now: DateTime<Utc>) -> Option<&str> {
        match (&self.holder, self.expires_at) {
            (Some(h), Some(exp)) if exp > now => Some(h.as_str()),
            _ => None,
        }
    }

    fn state(&self, is_leader: bool, now: DateTime<Utc>) -> LeaseState {
        let valid = self.valid_holder(now).is_some();
        LeaseState {
            is_leader,
            holder: if valid { self.holder.clone() } else { None },
            term: self.term,
            expires_at: if valid { self.expires_at } else { None },
        }
    }
}

/// Real lease semantics in memory, for tests that run several managers in one process.
///
/// - A lease is free when nobody holds it, its holder released it, or its holding expired
///   (`expires_at <= now`, by the injected [`Clock`]).
/// - `acquire` by the current holder renews it for `ttl` (same term); by anyone else while it
///   is held it is refused (`is_leader = false`, the holder, term and expiry are reported).
/// - `acquire` of a free lease grants it and increments the term (starting at 1), also when the
///   same holder takes it back after expiry or release: the term identifies one continuous
///   holding, so work fenced by an old term is recognisably stale.
/// - `release` by anyone but the holder does nothing.
/// - A zero `ttl` is invalid input (Redis refuses `PX 0` too).
#[derive(Debug)]
pub struct InMemoryLease {
    clock: Arc<dyn Clock>,
    leases: Mutex<HashMap<String, Held>>,
}

impl InMemoryLease {
    /// Leases timed by `clock` (a `ManualClock` in tests).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            leases: Mutex::default(),
        }
    }
}

#[async_trait]
impl Lease for InMemoryLease {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<LeaseState> {
        if ttl.is_zero() {
            return Err(Error::invalid(format!(
                "lease {name:?}: ttl must be positive"
            )));
        }
        let now = self.clock.now();
        let mut leases = lock(&self.leases);
        let held = leases.entry(name.to_owned()).or_default();
        match held.valid_holder(now) {
            Some(h) if h == holder => {
                held.expires_at = Some(until(now, ttl));
                Ok(held.state(true, now))
            }
            Some(_) => Ok(held.state(false, now)),
            None => {
                held.holder = Some(holder.to_owned());
                held.term += 1;
                held.expires_at = Some(until(now, ttl));
                Ok(held.state(true, now))
            }
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<()> {
        let mut leases = lock(&self.leases);
        if let Some(held) = leases.get_mut(name) {
            if held.holder.as_deref() == Some(holder) {
                held.holder = None;
                held.expires_at = None;
            }
        }
        Ok(())
    }
}
