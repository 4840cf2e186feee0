//! Conformance suite of [`Lease`].

use super::{ok, unique, Sleep};
use crate::{Lease, LeaseState};
use std::time::Duration;

/// Run every behaviour of this suite; `sleep` lets about 4 s pass in all (an in-memory lease
/// passes a closure advancing its clock).
pub async fn run_all(lease: &dyn Lease, sleep: &Sleep) {
    acquire_renew_refuse(lease).await;
    taken_over_after_expiry(lease, sleep).await;
    a_new_holding_is_a_new_term(lease, sleep).await;
    renewal_extends(lease, sleep).await;
    release_frees(lease).await;
    one_leader_among_racers(lease).await;
}

const TTL: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(60);

async fn acquire(lease: &dyn Lease, name: &str, holder: &str, ttl: Duration) -> LeaseState {
    ok(lease.acquire(name, holder, ttl).await, "acquire")
}

/// The first caller becomes leader (term >= 1); it renews with the same term; another caller
/// is refused while the holding is valid and told who holds it.
pub async fn acquire_renew_refuse(lease: &dyn Lease) {
    let name = unique("lease");
    let (a, b) = (unique("holder"), unique("holder"));
    let first = acquire(lease, &name, &a, LONG).await;
    assert!(first.is_leader, "a free lease is granted: {first:?}");
    assert_eq!(first.holder.as_deref(), Some(a.as_str()));
    assert!(first.term >= 1, "terms start at 1: {first:?}");
    assert!(
        first.expires_at.is_some(),
        "a holding has an expiry: {first:?}"
    );
    let renewed = acquire(lease, &name, &a, LONG).await;
    assert!(renewed.is_leader, "the holder renews: {renewed:?}");
    assert_eq!(renewed.term, first.term, "renewal keeps the term");
    let refused = acquire(lease, &name, &b, LONG).await;
    assert!(!refused.is_leader, "another holder is refused: {refused:?}");
    assert_eq!(
        refused.holder.as_deref(),
        Some(a.as_str()),
        "and told who holds it"
    );
    assert_eq!(refused.term, first.term);
    let other = acquire(lease, &unique("lease"), &b, LONG).await;
    assert!(other.is_leader, "leases of other names are independent");
    ok(lease.release(&name, &a).await, "release");
}

/// Taking a lease back after its holding expired or was released is a new term, also for
/// the same holder: the term names one continuous holding (the fencing token of its writes).
pub async fn a_new_holding_is_a_new_term(lease: &dyn Lease, sleep: &Sleep) {
    let name = unique("lease");
    let a = unique("holder");
    let first = acquire(lease, &name, &a, TTL).await;
    assert!(first.is_leader);
    sleep(TTL + Duration::from_millis(300)).await;
    let again = acquire(lease, &name, &a, LONG).await;
    assert!(
        again.is_leader,
        "the holder takes its expired lease back: {again:?}"
    );
    assert!(
        again.term > first.term,
        "as a new term: {first:?} then {again:?}"
    );
    ok(lease.release(&name, &a).await, "release");
    let after_release = acquire(lease, &name, &a, LONG).await;
    assert!(
        after_release.term > again.term,
        "a release ends the term: {after_release:?}"
    );
    ok(lease.release(&name, &a).await, "release");
}

/// After the holding expires another caller takes over, with a greater term, and the old holder
/// is then refused.
pub async fn taken_over_after_expiry(lease: &dyn Lease, sleep: &Sleep) {
    let name = unique("lease");
    let (a, b) = (unique("holder"), unique("holder"));
    let first = acquire(lease, &name, &a, TTL).await;
    assert!(first.is_leader);
    assert!(
        !acquire(lease, &name, &b, TTL).await.is_leader,
        "still valid"
    );
    sleep(Duration::from_millis(1_500)).await;
    let taken = acquire(lease, &name, &b, LONG).await;
    assert!(taken.is_leader, "expired holding taken over: {taken:?}");
    assert_eq!(taken.holder.as_deref(), Some(b.as_str()));
    assert!(
        taken.term == first.term + 1,
        "new holder, term + 1: {taken:?} after {first:?}"
    );
    let old = acquire(lease, &name, &a, LONG).await;
    assert!(!old.is_leader, "the old holder is refused now: {old:?}");
    assert_eq!(old.holder.as_deref(), Some(b.as_str()));
    ok(lease.release(&name, &b).await, "release");
}

/// A renewal counts `ttl` from the renewal: renewed 0.6 s into a 1 s holding, it is still held
/// 1.2 s after the first acquire.
pub async fn renewal_extends(lease: &dyn Lease, sleep: &Sleep) {
    let name = unique("lease");
    let (a, b) = (unique("holder"), unique("holder"));
    let first = acquire(lease, &name, &a, TTL).await;
    assert!(first.is_leader);
    sleep(Duration::from_millis(600)).await;
    let renewed = acquire(lease, &name, &a, TTL).await;
    assert!(
        renewed.is_leader && renewed.term == first.term,
        "{renewed:?}"
    );
    sleep(Duration::from_millis(600)).await;
    let refused = acquire(lease, &name, &b, TTL).await;
    assert!(
        !refused.is_leader,
        "the renewed holding is still valid: {refused:?}"
    );
    ok(lease.release(&name, &a).await, "release");
}

/// `release` by someone else changes nothing; by the holder it frees the lease at once, and the
/// next holder gets a greater term.
pub async fn release_frees(lease: &dyn Lease) {
    let name = unique("lease");
    let (a, b) = (unique("holder"), unique("holder"));
    let first = acquire(lease, &name, &a, LONG).await;
    assert!(first.is_leader);
    ok(lease.release(&name, &b).await, "release by a non-holder");
    assert!(
        !acquire(lease, &name, &b, LONG).await.is_leader,
        "a non-holder cannot release"
    );
    ok(lease.release(&name, &a).await, "release");
    let next = acquire(lease, &name, &b, LONG).await;
    assert!(next.is_leader, "released lease is free: {next:?}");
    assert_eq!(next.term, first.term + 1, "new holder, term + 1: {next:?}");
    ok(lease.release(&name, &b).await, "release");
    ok(
        lease.release(&unique("lease"), &a).await,
        "release of an unknown lease",
    );
}

/// Eight callers racing for a free lease: exactly one wins, and all agree on who.
pub async fn one_leader_among_racers(lease: &dyn Lease) {
    let name = unique("lease");
    let holders: Vec<String> = (0..8).map(|_| unique("holder")).collect();
    let states = futures::future::join_all(holders.iter().map(|h| lease.acquire(&name, h, LONG)))
        .await
        .into_iter()
        .map(|r| ok(r, "acquire"))
        .collect::<Vec<_>>();
    let winners: Vec<&LeaseState> = states.iter().filter(|s| s.is_leader).collect();
    assert_eq!(winners.len(), 1, "exactly one leader: {states:?}");
    let winner = winners[0].holder.clone();
    assert!(
        states.iter().all(|s| s.holder == winner),
        "everyone is told the same holder: {states:?}"
    );
    if let Some(w) = winner {
        ok(lease.release(&name, &w).await, "release");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::memory::{InMemoryLease, SoleLeader};
    use crate::{Lease, ManualClock};
    use chrono::TimeZone;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn in_memory_lease_conforms() {
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        let lease = InMemoryLease::new(Arc::new(clock.clone()));
        super::run_all(&lease, &*crate::conformance::advancing(clock)).await;
    }

    #[tokio::test]
    async fn in_memory_lease_refuses_zero_ttl_and_counts_terms() {
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        let lease = InMemoryLease::new(Arc::new(clock.clone()));
        assert!(lease.acquire("l", "a", Duration::ZERO).await.is_err());
        let ttl = Duration::from_secs(10);
        assert_eq!(lease.acquire("l", "a", ttl).await.unwrap().term, 1);
        clock.advance(chrono::Duration::seconds(10));
        // Expired at exactly `ttl`; the same holder taking it back starts a new term.
        let again = lease.acquire("l", "a", ttl).await.unwrap();
        assert!(again.is_leader);
        assert_eq!(again.term, 2);
        lease.release("l", "a").await.unwrap();
        let st = lease.acquire("l", "b", ttl).await.unwrap();
        assert_eq!((st.is_leader, st.term), (true, 3));
    }

    #[tokio::test]
    async fn sole_leader_always_leads() {
        let s = SoleLeader::new();
        for h in ["a", "b"] {
            let st = s.acquire("x", h, Duration::from_secs(5)).await.unwrap();
            assert!(st.is_leader);
            assert_eq!(st.holder.as_deref(), Some(h));
            assert_eq!(st.term, 1);
        }
        s.release("x", "a").await.unwrap();
    }
}
