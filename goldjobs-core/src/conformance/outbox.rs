//! Conformance suite of [`OutboxRepository`]: the lifecycle of the rows that
//! `PredictionRepository::record_verifications` writes.
//!
//! ```ignore
//! let repo = InMemoryPredictions::new();
//! goldjobs_core::conformance::outbox::run_all(&repo, &repo).await;
//! ```
//!
//! Rows are created through `record_verifications` with fresh random ids, and the checks look
//! only at their own rows, so the suite tolerates other rows in a shared outbox (it may lease
//! some of them for a while; the outbox delivers at least once, so that is harmless).
//!
//! What the suite fixes beyond the trait docs: claims go by row id; `claim_outbox` never hands
//! out a `NotifyVoters` fan-out row (it expands it into `Notify` rows first); a claimed row is hidden from
//! other claimers until its lease runs out; `reschedule` and `mark_failed` count an attempt and
//! keep the error; `reschedule` makes the row due at `next_attempt_at` (not before);
//! delivered and failed rows are never claimed again; `mark_delivered` is idempotent.

use super::predictions::{auto_prediction, payload_prediction_id, secs, unique, verified, vote};
use crate::model::*;
use crate::ports::{OutboxRepository, PredictionRepository};
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::BTreeSet;
use std::time::Duration;

/// Run every check of this suite.
pub async fn run_all(repo: &dyn PredictionRepository, outbox: &dyn OutboxRepository) {
    lifecycle(repo, outbox).await;
}

/// Claim until `want` messages matching `keep` have been seen (or nothing more comes); returns
/// the claimed messages that match.
async fn claim_matching(
    outbox: &dyn OutboxRepository,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u32,
    want: usize,
    keep: impl Fn(&OutboxMessage) -> bool,
) -> Vec<OutboxMessage> {
    let mut got = Vec::new();
    // Claimed rows are hidden by the lease, so every round makes progress; an empty claim ends.
    for _ in 0..10_000 {
        let batch = outbox
            .claim_outbox(now, limit, lease)
            .await
            .expect("claim_outbox");
        assert!(
            batch.len() <= limit as usize,
            "claim_outbox exceeded limit {limit}: {batch:?}"
        );
        let empty = batch.is_empty();
        got.extend(batch.into_iter().filter(|m| keep(m)));
        if empty || got.len() >= want {
            break;
        }
    }
    got
}

/// Claim until every row of `wanted` has been seen (or nothing more comes); returns the
/// claimed messages of `wanted`.
async fn claim_wanted(
    outbox: &dyn OutboxRepository,
    now: DateTime<Utc>,
    lease: Duration,
    wanted: &BTreeSet<i64>,
) -> Vec<OutboxMessage> {
    claim_matching(outbox, now, lease, 500, wanted.len(), |m| {
        wanted.contains(&m.id)
    })
    .await
}

/// Create three rows (a broadcast and two notices), then walk them through claim, lease,
/// delivery, rescheduling with backoff and failure.
pub async fn lifecycle(repo: &dyn PredictionRepository, outbox: &dyn OutboxRepository) {
    let u = unique();
    // Real "now" (whole seconds): an adapter may stamp new rows with its own clock.
    let now = Utc::now().trunc_subsecs(0);
    let created_at = now - secs(3600);
    let id = format!("cf-outbox-{u}");
    let (u1, u2) = (format!("cf-ou1-{u}"), format!("cf-ou2-{u}"));
    let vt = now - secs(120);
    repo.insert_prediction(&auto_prediction(&id, "XAUUSD", vt, created_at))
        .await
        .expect("insert");
    repo.insert_votes(&[
        vote(&id, &u1, "A", created_at),
        vote(&id, &u2, "B", created_at),
    ])
    .await
    .expect("votes");
    repo.record_verifications(&[verified(&id, "A", "2680.00", "1.13", vt, now - secs(1))])
        .await
        .expect("record");

    // Claim: the broadcast and two notices (expanded from a fan-out row where the store wrote
    // one), pending, no attempts yet, in id order.
    let t = now + secs(1);
    let lease = Duration::from_secs(60);
    // A small limit: the rows come over several claims (with a fan-out store, a broadcast and
    // one notice, then the other notice), still in id order.
    let claimed = claim_matching(outbox, t, lease, 2, 3, |m| {
        payload_prediction_id(&m.payload) == id
    })
    .await;
    assert_eq!(claimed.len(), 3, "{claimed:?}");
    let ids: Vec<i64> = claimed.iter().map(|m| m.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "claimed by id");
    let wanted: BTreeSet<i64> = ids.iter().copied().collect();
    assert!(claimed
        .iter()
        .all(|m| m.attempts == 0 && m.last_error.is_none()));
    assert!(matches!(
        claimed[0].payload,
        OutboxPayload::PredictionVerified(_)
    ));
    assert!(claimed[1..]
        .iter()
        .all(|m| matches!(m.payload, OutboxPayload::Notify(_))));
    let rows: Vec<OutboxRow> = outbox
        .outbox_rows()
        .await
        .expect("outbox_rows")
        .into_iter()
        .filter(|r| payload_prediction_id(&r.payload) == id)
        .collect();
    let listed: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    assert_eq!(listed, listed_sorted, "outbox_rows lists rows by id");
    assert!(wanted.iter().all(|i| listed.contains(i)));

    // Leased: hidden from a second claimer until the lease runs out.
    let hidden = claim_wanted(outbox, t + secs(30), lease, &wanted).await;
    assert!(
        hidden.is_empty(),
        "leased rows were claimed again: {hidden:?}"
    );
    let after_lease = claim_wanted(outbox, t + secs(61), lease, &wanted).await;
    assert_eq!(after_lease.len(), 3, "an expired lease frees the rows");
    let t = t + secs(61);

    // Delivered (twice: idempotent).
    outbox.mark_delivered(&ids[..1]).await.expect("delivered");
    outbox
        .mark_delivered(&ids[..1])
        .await
        .expect("delivered again");

    // Rescheduled: one attempt counted, error kept, due only at next_attempt_at.
    let next = t + secs(600);
    outbox
        .reschedule(ids[1], next, "fcm unavailable: 503")
        .await
        .expect("reschedule");

    // Failed: attempt counted, error kept.
    outbox
        .mark_failed(ids[2], "fcm error: UNREGISTERED")
        .await
        .expect("mark_failed");

    let rows: Vec<OutboxRow> = outbox
        .outbox_rows()
        .await
        .expect("outbox_rows")
        .into_iter()
        .filter(|r| wanted.contains(&r.id))
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].state, OutboxState::Delivered);
    assert_eq!(rows[1].state, OutboxState::Pending);
    assert_eq!(rows[1].attempts, 1);
    assert_eq!(rows[1].last_error.as_deref(), Some("fcm unavailable: 503"));
    assert_eq!(rows[1].next_attempt_at, next);
    assert_eq!(rows[2].state, OutboxState::Failed);
    assert_eq!(rows[2].attempts, 1);
    assert_eq!(
        rows[2].last_error.as_deref(),
        Some("fcm error: UNREGISTERED")
    );

    // Before next_attempt_at nothing of ours is due (the lease was given back by reschedule,
    // but the backoff holds it).
    let early = claim_wanted(outbox, next - secs(1), lease, &wanted).await;
    assert!(
        early.is_empty(),
        "claimed before next_attempt_at: {early:?}"
    );
    // At next_attempt_at the rescheduled row comes back with its attempts and error.
    let again = claim_wanted(outbox, next, lease, &wanted).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, ids[1]);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("fcm unavailable: 503"));
    // A second failure counts again.
    outbox
        .reschedule(ids[1], next + secs(1200), "fcm unavailable: 503 again")
        .await
        .expect("reschedule 2");
    let later = claim_wanted(outbox, next + secs(1200), lease, &wanted).await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].attempts, 2);
    outbox.mark_delivered(&ids[1..2]).await.expect("delivered");

    // Delivered and failed rows never come back.
    let never = claim_wanted(outbox, next + secs(100_000), lease, &wanted).await;
    assert!(never.is_empty(), "finished rows claimed: {never:?}");
    let rows: Vec<OutboxRow> = outbox
        .outbox_rows()
        .await
        .expect("outbox_rows")
        .into_iter()
        .filter(|r| wanted.contains(&r.id))
        .collect();
    assert_eq!(rows[1].state, OutboxState::Delivered);
    assert_eq!(rows[1].attempts, 2);
}
