//! Conformance suite of [`PredictionRepository`] (with the outbox rows `record_verifications`
//! writes), written against `&dyn` ports so that every adapter runs the same checks:
//!
//! ```ignore
//! let repo = InMemoryPredictions::new();
//! goldjobs_core::conformance::predictions::run_all(&repo, &repo).await;
//! ```
//!
//! Every call uses fresh random ids, symbols and users, and `verify_time`s in a random window
//! of the distant past, and it leaves none of its predictions due afterwards, so the suite can
//! run repeatedly against one shared database. Rows of other writers that happen to be due in
//! the same window are tolerated (results are filtered to the suite's own ids); a schema of its
//! own per run is still the most reliable.
//!
//! What the suite fixes beyond the trait docs:
//! - claim order is `verify_time`, then `id`;
//! - `next_due` lists each symbol with an active auto prediction once, with its earliest
//!   `verify_time`, earliest first and then by code, claimed predictions included (its check,
//!   [`next_due_per_symbol`], uses a window in 1900–1949, before every other check's, so that
//!   a shared store's other rows do not crowd its symbols out of the limit);
//! - `record_verifications` skips unknown ids and ids that are not eligible (ended; or
//!   `needs_review` unless the record is `manual`), listing them in `skipped`;
//! - a `Verified` record writes one `PredictionVerified` outbox row and one notification per
//!   voter: a `Notify` row per voter, or one `NotifyVoters` row (only if the prediction has
//!   votes) that `claim_outbox` expands into exactly those `Notify` rows; a `NeedsReview`
//!   record writes no outbox row and touches no vote and no statistics;
//! - new outbox rows are pending, with 0 attempts, due at once (no later than the record's
//!   `verified_at`);
//! - `RecordSummary` lists ids in any order;
//! - two `record_verifications` calls over the same ids at the same time (in opposite orders)
//!   both succeed, and each prediction is verified once (an SQL adapter locks rows in a fixed
//!   order, e.g. by id, or retries its transaction on a deadlock/serialization failure);
//! - two `claim_due` calls at the same time never hand out the same prediction;
//! - corrections and voids (§6.7): a correction writes one `PredictionCorrected` row and one
//!   `Corrected` notice per voter (a `Notify` row each, or one `NotifyVoters` row), a void one
//!   `PredictionVoided` row and one `Voided` notice per voter, with the reason; statistics
//!   after every step equal a plain recomputation ([`random_history`] checks this against an
//!   oracle of its own; property tests drive it with random steps);
//! - [`recompute_stats_check_and_fix`] acts on the whole store: its `Fix` rewrites every
//!   differing user, so give it a store of its own when others write statistics meanwhile.

use crate::model::*;
use crate::ports::{OutboxRepository, PredictionRepository};
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

/// Run every check of this suite.
pub async fn run_all(repo: &dyn PredictionRepository, outbox: &dyn OutboxRepository) {
    insert_and_get(repo).await;
    claim_order(repo).await;
    claim_hides_from_second_claimer(repo).await;
    release_claims(repo).await;
    next_due_per_symbol(repo).await;
    record_verified(repo, outbox).await;
    stats_apply_in_record_order(repo, outbox).await;
    accuracy_rounds_half_away_from_zero(repo, outbox).await;
    streak_continues_into_a_batch(repo, outbox).await;
    record_needs_review(repo, outbox).await;
    skip_when_not_eligible(repo, outbox).await;
    manual_resolution(repo, outbox).await;
    recent_verified_newest_first(repo, outbox).await;
    list_and_vote_counts(repo, outbox).await;
    concurrent_claims_are_disjoint(repo).await;
    concurrent_records_apply_once(repo, outbox).await;
    correction_recomputes_stats(repo, outbox).await;
    void_of_ended_recomputes_and_is_final(repo, outbox).await;
    void_of_open_predictions_leaves_stats(repo, outbox).await;
    a_history_of_corrections_and_voids(repo, outbox).await;
    recompute_stats_check_and_fix(repo, outbox).await;
}

/// A fresh random suffix for ids.
pub(crate) fn unique() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A random instant (whole seconds) in 1950–1999, start of a window the suite owns.
pub(crate) fn past_window() -> DateTime<Utc> {
    let start = Utc
        .with_ymd_and_hms(1950, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    start + ChronoDuration::seconds(rand::random::<u32>() as i64 % (50 * 365 * 86_400))
}

pub(crate) fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

/// Summaries list ids in no particular order.
fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub(crate) fn secs(n: i64) -> ChronoDuration {
    ChronoDuration::seconds(n)
}

/// An active auto prediction `{prefix}-{name}` due at `verify_time`.
pub(crate) fn auto_prediction(
    id: &str,
    symbol: &str,
    verify_time: DateTime<Utc>,
    created: DateTime<Utc>,
) -> Prediction {
    Prediction::new_active(
        id,
        symbol,
        format!("Will {symbol} rise? ({id})"),
        dec("2650.00"),
        verify_time,
        VerifyRule::Auto,
        Some(PLATFORM_CONDITIONS.into()),
        created,
    )
}

/// Conditions in the platform's shape (guide: *The condition object*), keys deliberately not in
/// sorted order and with an extra key the verifier ignores: stores must keep the text as written.
pub(crate) const PLATFORM_CONDITIONS: &str = r#"{"B": {"condition": "price_change_percent < 0", "label": "down"}, "A": {"condition": "price_change_percent >= 0"}}"#;

pub(crate) fn vote(prediction_id: &str, user: &str, option: &str, at: DateTime<Utc>) -> Vote {
    Vote {
        prediction_id: prediction_id.to_owned(),
        user_id: user.to_owned(),
        selected_option: option.to_owned(),
        is_correct: None,
        created_at: at,
    }
}

pub(crate) fn verified(
    id: &str,
    option: &str,
    price: &str,
    percent: &str,
    ts: DateTime<Utc>,
    at: DateTime<Utc>,
) -> VerificationRecord {
    VerificationRecord {
        prediction_id: id.to_owned(),
        outcome: VerificationOutcome::Verified(Verdict {
            correct_option: option.to_owned(),
            price_at_verify: dec(price),
            price_change_percent: Some(dec(percent)),
            price_source: PriceSource::Tick,
            price_at_verify_ts: ts,
            price_provider: None,
        }),
        verified_at: at,
        manual: false,
    }
}

pub(crate) fn review(id: &str, reason: &str, at: DateTime<Utc>) -> VerificationRecord {
    VerificationRecord {
        prediction_id: id.to_owned(),
        outcome: VerificationOutcome::NeedsReview {
            reason: reason.to_owned(),
        },
        verified_at: at,
        manual: false,
    }
}

async fn insert_all(repo: &dyn PredictionRepository, ps: &[Prediction]) {
    for p in ps {
        repo.insert_prediction(p).await.expect("insert_prediction");
    }
}

/// Leave none of `ids` due: flag the active ones for review.
async fn retire(repo: &dyn PredictionRepository, ids: &[String], at: DateTime<Utc>) {
    let records: Vec<_> = ids.iter().map(|id| review(id, "cleanup", at)).collect();
    repo.record_verifications(&records)
        .await
        .expect("cleanup record_verifications");
}

fn ours<'a>(claimed: &'a [Prediction], prefix: &str) -> Vec<&'a str> {
    claimed
        .iter()
        .map(|p| p.id.as_str())
        .filter(|id| id.starts_with(prefix))
        .collect()
}

/// Claim at `now` and give back at once what belongs to others; returns our ids in order.
async fn claim_ours(
    repo: &dyn PredictionRepository,
    now: DateTime<Utc>,
    limit: u32,
    claim_for: Duration,
    prefix: &str,
) -> Vec<String> {
    let claimed = repo
        .claim_due(now, limit, claim_for)
        .await
        .expect("claim_due");
    assert!(claimed.len() <= limit as usize, "claim_due exceeded limit");
    for p in &claimed {
        assert!(p.verify_time <= now, "claimed {} before it was due", p.id);
        assert_eq!(
            p.status,
            PredictionStatus::Active,
            "claimed non-active {}",
            p.id
        );
        assert_eq!(p.verify_rule, VerifyRule::Auto, "claimed manual {}", p.id);
    }
    let foreign: Vec<String> = claimed
        .iter()
        .filter(|p| !p.id.starts_with(prefix))
        .map(|p| p.id.clone())
        .collect();
    if !foreign.is_empty() {
        repo.release_claims(&foreign)
            .await
            .expect("release foreign");
    }
    ours(&claimed, prefix)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Insert, read back, duplicate ids and votes are conflicts.
pub async fn insert_and_get(repo: &dyn PredictionRepository) {
    let u = unique();
    let base = past_window();
    let id = format!("cf-ins-{u}");
    let p = auto_prediction(&id, "XAUUSD", base, base - secs(3600));
    repo.insert_prediction(&p).await.expect("insert");
    let got = repo
        .get_prediction(&id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got, p, "every field comes back as inserted");
    assert_eq!(
        got.price_at_create.to_string(),
        "2650.00",
        "decimals keep their scale"
    );
    assert_eq!(got.verify_time, p.verify_time);
    assert_eq!(got.status, PredictionStatus::Active);
    assert_eq!(got.verify_rule, VerifyRule::Auto);
    assert_eq!(
        got.auto_verify_conditions.as_deref(),
        Some(PLATFORM_CONDITIONS),
        "the conditions' text (key order, nested objects) is kept as written"
    );
    // Plain condition strings are kept as written too.
    let plain_id = format!("cf-ins-plain-{u}");
    let mut plain = auto_prediction(&plain_id, "XAUUSD", base, base - secs(3600));
    plain.auto_verify_conditions =
        Some(r#"{"Z": "price_change_percent >= 0", "A": "price_change_percent < 0"}"#.into());
    repo.insert_prediction(&plain).await.expect("insert plain");
    let got_plain = repo
        .get_prediction(&plain_id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        got_plain.auto_verify_conditions,
        plain.auto_verify_conditions
    );
    retire(repo, std::slice::from_ref(&plain_id), base).await;
    assert!(matches!(
        repo.insert_prediction(&p).await,
        Err(crate::Error::Conflict(_))
    ));
    assert!(repo
        .get_prediction(&format!("cf-missing-{u}"))
        .await
        .expect("get missing")
        .is_none());

    let v = vote(&id, &format!("cf-u1-{u}"), "A", base - secs(60));
    repo.insert_votes(std::slice::from_ref(&v))
        .await
        .expect("vote");
    assert!(matches!(
        repo.insert_votes(std::slice::from_ref(&v)).await,
        Err(crate::Error::Conflict(_))
    ));
    let fresh = vote(&id, &format!("cf-u2-{u}"), "B", base - secs(60));
    assert!(
        matches!(
            repo.insert_votes(&[fresh, v.clone()]).await,
            Err(crate::Error::Conflict(_))
        ),
        "a batch with a duplicate vote is a conflict"
    );
    let votes = repo.votes_for(&id).await.expect("votes_for");
    assert_eq!(votes.len(), 1, "a refused batch leaves nothing: {votes:?}");
    assert_eq!(votes[0].selected_option, "A");
    assert_eq!(votes[0].is_correct, None);
    retire(repo, &[id], base).await;
}

/// Due auto predictions come oldest `verify_time` first, ties by id; manual, future, ended and
/// needs_review ones are never claimed.
pub async fn claim_order(repo: &dyn PredictionRepository) {
    let u = unique();
    let prefix = format!("cf-ord-{u}-");
    let base = past_window();
    let created = base - secs(86_400);
    let id = |n: &str| format!("{prefix}{n}");
    let mut manual = auto_prediction(&id("manual"), "XAUUSD", base, created);
    manual.verify_rule = VerifyRule::Manual;
    manual.auto_verify_conditions = None;
    let mut ended = auto_prediction(&id("ended"), "XAUUSD", base, created);
    ended.status = PredictionStatus::Ended;
    ended.correct_option = Some("A".into());
    let mut review_p = auto_prediction(&id("review"), "XAUUSD", base, created);
    review_p.status = PredictionStatus::NeedsReview;
    review_p.review_reason = Some("test".into());
    let ps = vec![
        auto_prediction(&id("d"), "XAUUSD", base + secs(3), created),
        auto_prediction(&id("c"), "XAGUSD", base + secs(2), created),
        auto_prediction(&id("a"), "XAUUSD", base + secs(1), created),
        auto_prediction(&id("b"), "EURUSD", base + secs(2), created),
        auto_prediction(&id("future"), "XAUUSD", base + secs(100), created),
        manual,
        ended,
        review_p,
    ];
    insert_all(repo, &ps).await;
    let now = base + secs(10);
    let got = claim_ours(repo, now, 1000, Duration::from_secs(60), &prefix).await;
    assert_eq!(got, vec![id("a"), id("b"), id("c"), id("d")], "claim order");
    repo.release_claims(&got).await.expect("release");

    // A limit smaller than the due set returns the oldest first.
    let limited = claim_ours(repo, now, 2, Duration::from_secs(60), &prefix).await;
    let expected = [id("a"), id("b")];
    assert!(
        expected.starts_with(&limited),
        "limit 2 gave {limited:?}, expected a prefix of {expected:?}"
    );
    // `verify_time <= now` is inclusive.
    let at_d = claim_ours(repo, base + secs(3), 1000, Duration::from_secs(60), &prefix).await;
    assert!(at_d.contains(&id("d")), "due at exactly verify_time");

    let none = repo
        .claim_due(now, 0, Duration::from_secs(60))
        .await
        .expect("claim_due(limit 0)");
    assert!(none.is_empty(), "limit 0 claims nothing: {none:?}");

    let all: Vec<String> = ps.iter().map(|p| p.id.clone()).collect();
    repo.release_claims(&all).await.expect("release");
    retire(repo, &all, now).await;
}

/// A claim hides the predictions from a second claimer until `claim_for` has passed.
pub async fn claim_hides_from_second_claimer(repo: &dyn PredictionRepository) {
    let u = unique();
    let prefix = format!("cf-hide-{u}-");
    let base = past_window();
    let ids: Vec<String> = (0..3).map(|i| format!("{prefix}{i}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| auto_prediction(id, "XAUUSD", base + secs(i as i64), base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let now = base + secs(10);
    let first = claim_ours(repo, now, 1000, Duration::from_secs(60), &prefix).await;
    assert_eq!(first, ids);
    let second = claim_ours(repo, now + secs(30), 1000, Duration::from_secs(60), &prefix).await;
    assert!(second.is_empty(), "second claimer saw {second:?}");
    // After the claim ran out, a stale claim no longer hides them.
    let third = claim_ours(repo, now + secs(61), 1000, Duration::from_secs(60), &prefix).await;
    assert_eq!(third, ids, "expired claims are claimable again");
    repo.release_claims(&ids).await.expect("release");
    retire(repo, &ids, now).await;
}

/// Released claims are claimable at once; releasing unknown ids is fine.
pub async fn release_claims(repo: &dyn PredictionRepository) {
    let u = unique();
    let prefix = format!("cf-rel-{u}-");
    let base = past_window();
    let ids: Vec<String> = (0..2).map(|i| format!("{prefix}{i}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .map(|id| auto_prediction(id, "XAUUSD", base, base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let now = base + secs(5);
    let first = claim_ours(repo, now, 1000, Duration::from_secs(600), &prefix).await;
    assert_eq!(first, ids);
    repo.release_claims(&ids[..1]).await.expect("release one");
    let again = claim_ours(repo, now, 1000, Duration::from_secs(600), &prefix).await;
    assert_eq!(again, ids[..1].to_vec(), "only the released one comes back");
    repo.release_claims(&[format!("{prefix}unknown")])
        .await
        .expect("release unknown");
    repo.release_claims(&ids).await.expect("release");
    retire(repo, &ids, now).await;
}

/// A random instant (whole seconds) in 1900–1949: earlier than every other check's window, so
/// that [`next_due_per_symbol`]'s symbols come first in a shared store.
fn ancient_window() -> DateTime<Utc> {
    let start = Utc
        .with_ymd_and_hms(1900, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    start + ChronoDuration::seconds(rand::random::<u32>() as i64 % (49 * 365 * 86_400))
}

/// `next_due`: per symbol the earliest `verify_time` of its active auto predictions (claimed
/// or not, past or future), earliest first then by code, at most `limit` symbols; manual,
/// ended, in-review and void predictions do not count; a decided prediction hands its symbol
/// on to the next deadline, and a symbol with none left is gone.
pub async fn next_due_per_symbol(repo: &dyn PredictionRepository) {
    let u = unique();
    let prefix = format!("cf-nd-{u}-");
    let base = ancient_window();
    let created = base - secs(86_400);
    let id = |n: &str| format!("{prefix}{n}");
    let (a, b, c, d) = (
        crate::conformance::unique_code(),
        crate::conformance::unique_code(),
        crate::conformance::unique_code(),
        crate::conformance::unique_code(),
    );
    let mut manual = auto_prediction(&id("a-manual"), &a, base, created);
    manual.verify_rule = VerifyRule::Manual;
    manual.auto_verify_conditions = None;
    let mut only_manual = auto_prediction(&id("d-manual"), &d, base, created);
    only_manual.verify_rule = VerifyRule::Manual;
    only_manual.auto_verify_conditions = None;
    let not_active = [
        (PredictionStatus::Ended, "b-ended"),
        (PredictionStatus::NeedsReview, "b-review"),
        (PredictionStatus::Void, "b-void"),
    ]
    .map(|(status, name)| {
        let mut p = auto_prediction(&id(name), &b, base + secs(1), created);
        p.status = status;
        if status == PredictionStatus::Ended {
            p.correct_option = Some("A".into());
        } else {
            p.review_reason = Some("test".into());
        }
        p
    });
    let mut ps = vec![
        auto_prediction(&id("a-30"), &a, base + secs(30), created),
        auto_prediction(&id("a-10"), &a, base + secs(10), created),
        auto_prediction(&id("b-20"), &b, base + secs(20), created),
        auto_prediction(&id("c-20"), &c, base + secs(20), created),
        auto_prediction(&id("c-50"), &c, base + secs(50), created),
        manual,
        only_manual,
    ];
    ps.extend(not_active);
    insert_all(repo, &ps).await;
    let ours_of = |list: &[DueSymbol]| -> Vec<(String, DateTime<Utc>)> {
        list.iter()
            .filter(|e| [&a, &b, &c, &d].contains(&&e.symbol_code))
            .map(|e| (e.symbol_code.clone(), e.verify_time))
            .collect()
    };
    let check_shape = |list: &[DueSymbol], limit: usize| {
        assert!(
            list.len() <= limit,
            "next_due exceeded limit {limit}: {list:?}"
        );
        let mut codes: Vec<&str> = list.iter().map(|e| e.symbol_code.as_str()).collect();
        assert!(
            list.windows(2)
                .all(|w| (w[0].verify_time, &w[0].symbol_code)
                    < (w[1].verify_time, &w[1].symbol_code)),
            "next_due is earliest first, then by code: {list:?}"
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), list.len(), "one entry per symbol: {list:?}");
    };

    let all = repo.next_due(1000).await.expect("next_due");
    check_shape(&all, 1000);
    // b's earliest is 20 s, not its decided or void ones at 1 s; b and c tie at 20 s (by code).
    let mut expected = vec![
        (a.clone(), base + secs(10)),
        (b.clone(), base + secs(20)),
        (c.clone(), base + secs(20)),
    ];
    expected[1..].sort();
    assert_eq!(
        ours_of(&all),
        expected,
        "earliest per symbol, manual ones left out"
    );

    // A limit keeps the earliest symbols (ours, unless another writer's rows are earlier).
    let two = repo.next_due(2).await.expect("next_due(2)");
    check_shape(&two, 2);
    let foreign_first = all
        .iter()
        .take_while(|e| e.verify_time <= base + secs(20))
        .any(|e| ours_of(std::slice::from_ref(e)).is_empty());
    if !foreign_first {
        assert_eq!(ours_of(&two), expected[..2].to_vec(), "limit 2");
    }
    assert!(
        repo.next_due(0).await.expect("next_due(0)").is_empty(),
        "limit 0 lists nothing"
    );

    // Claimed predictions still count: their verifier may give them back.
    let claimed = claim_ours(
        repo,
        base + secs(60),
        1000,
        Duration::from_secs(600),
        &prefix,
    )
    .await;
    assert_eq!(claimed.len(), 5, "{claimed:?}");
    let while_claimed = repo.next_due(1000).await.expect("next_due");
    assert_eq!(
        ours_of(&while_claimed),
        expected,
        "claims do not hide deadlines"
    );
    repo.release_claims(&claimed).await.expect("release");

    // Deciding a's earliest moves a on to its next deadline; deciding c's last one removes c.
    retire(repo, &[id("a-10"), id("c-20"), id("c-50")], base + secs(60)).await;
    let after = repo.next_due(1000).await.expect("next_due");
    check_shape(&after, 1000);
    let mut moved = vec![(a.clone(), base + secs(30)), (b.clone(), base + secs(20))];
    moved.sort_by_key(|(code, t)| (*t, code.clone()));
    assert_eq!(
        ours_of(&after),
        moved,
        "decided predictions no longer count"
    );

    let ids: Vec<String> = ps.iter().map(|p| p.id.clone()).collect();
    retire(repo, &ids, base + secs(60)).await;
    let none = repo.next_due(1000).await.expect("next_due");
    assert!(ours_of(&none).is_empty(), "nothing of ours left: {none:?}");
}

/// The prediction an outbox payload is about.
pub(crate) fn payload_prediction_id(p: &OutboxPayload) -> &str {
    match p {
        OutboxPayload::PredictionVerified(e) => &e.prediction_id,
        OutboxPayload::PredictionCorrected(e) => &e.prediction_id,
        OutboxPayload::PredictionVoided(e) => &e.prediction_id,
        OutboxPayload::Notify(n) => &n.prediction_id,
        OutboxPayload::NotifyVoters(f) => &f.prediction_id,
    }
}

/// The voter notices recorded for `prediction_id`: its `Notify` rows, or, where the store wrote
/// a `NotifyVoters` row, the `Notify` messages its `claim_outbox` expands that row into
/// (claimed here with a long lease; other due rows of a shared outbox get leased too, which
/// the outbox tolerates).
pub(crate) async fn notices_of(
    outbox: &dyn OutboxRepository,
    prediction_id: &str,
) -> Vec<VoterNotice> {
    let rows = rows_of(outbox, prediction_id).await;
    let mut notices: Vec<VoterNotice> = rows
        .iter()
        .filter_map(|r| match &r.payload {
            OutboxPayload::Notify(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    let fanout = rows.iter().any(|r| {
        r.state == OutboxState::Pending && matches!(r.payload, OutboxPayload::NotifyVoters(_))
    });
    if !fanout {
        return notices;
    }
    for _ in 0..100 {
        let batch = outbox
            .claim_outbox(Utc::now(), 500, Duration::from_secs(600))
            .await
            .expect("claim_outbox");
        if batch.is_empty() {
            break;
        }
        for m in batch {
            match m.payload {
                OutboxPayload::NotifyVoters(_) => panic!("claim_outbox handed out a fan-out row"),
                OutboxPayload::Notify(n) if n.prediction_id == prediction_id => notices.push(n),
                _ => {}
            }
        }
    }
    let after = rows_of(outbox, prediction_id).await;
    assert!(
        after.iter().all(|r| !(r.state == OutboxState::Pending
            && matches!(r.payload, OutboxPayload::NotifyVoters(_)))),
        "a fully expanded fan-out row stays pending: {after:?}"
    );
    notices
}

/// Outbox rows (any state) that belong to `prediction_id`.
pub(crate) async fn rows_of(outbox: &dyn OutboxRepository, prediction_id: &str) -> Vec<OutboxRow> {
    outbox
        .outbox_rows()
        .await
        .expect("outbox_rows")
        .into_iter()
        .filter(|r| payload_prediction_id(&r.payload) == prediction_id)
        .collect()
}

/// Mark the outbox rows of these predictions delivered, so a shared outbox stays clean.
pub(crate) async fn deliver_rows_of(outbox: &dyn OutboxRepository, prediction_ids: &[String]) {
    let ids: Vec<i64> = outbox
        .outbox_rows()
        .await
        .expect("outbox_rows")
        .into_iter()
        .filter(|r| {
            prediction_ids
                .iter()
                .any(|p| *p == payload_prediction_id(&r.payload))
        })
        .map(|r| r.id)
        .collect();
    outbox.mark_delivered(&ids).await.expect("mark_delivered");
}

/// A verification sets every §6.6 field, marks every vote, updates every voter's statistics
/// (first-time voters included) and writes the outbox rows.
pub async fn record_verified(repo: &dyn PredictionRepository, outbox: &dyn OutboxRepository) {
    let u = unique();
    let base = past_window();
    let id = format!("cf-ver-{u}");
    let (u1, u2, u3) = (
        format!("cf-u1-{u}"),
        format!("cf-u2-{u}"),
        format!("cf-u3-{u}"),
    );
    let p = auto_prediction(&id, "XAUUSD", base, base - secs(3600));
    insert_all(repo, std::slice::from_ref(&p)).await;
    repo.insert_votes(&[
        vote(&id, &u1, "A", base - secs(100)),
        vote(&id, &u2, "B", base - secs(90)),
        vote(&id, &u3, "A", base - secs(80)),
    ])
    .await
    .expect("votes");
    let tick_ts = base + secs(2);
    let at = base + secs(30);
    let summary = repo
        .record_verifications(&[verified(&id, "A", "2680.00", "1.13", tick_ts, at)])
        .await
        .expect("record");
    assert_eq!(summary.verified, vec![id.clone()]);
    assert!(summary.needs_review.is_empty() && summary.skipped.is_empty());
    assert_eq!(summary.votes_marked, 3);

    let got = repo
        .get_prediction(&id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.status, PredictionStatus::Ended);
    assert_eq!(got.correct_option.as_deref(), Some("A"));
    assert_eq!(got.price_at_verify, Some(dec("2680.00")));
    assert_eq!(got.price_change_percent, Some(dec("1.13")));
    assert_eq!(got.price_source, Some(PriceSource::Tick));
    assert_eq!(got.price_at_verify_ts, Some(tick_ts));
    assert_eq!(got.verified_at, Some(at));
    assert_eq!(got.price_at_create, p.price_at_create);

    let votes: BTreeMap<String, Option<bool>> = repo
        .votes_for(&id)
        .await
        .expect("votes_for")
        .into_iter()
        .map(|v| (v.user_id, v.is_correct))
        .collect();
    assert_eq!(votes.get(&u1), Some(&Some(true)));
    assert_eq!(votes.get(&u2), Some(&Some(false)));
    assert_eq!(votes.get(&u3), Some(&Some(true)));

    let stats: BTreeMap<String, UserStats> = repo
        .user_stats(&[u1.clone(), u2.clone(), u3.clone(), format!("cf-nobody-{u}")])
        .await
        .expect("user_stats")
        .into_iter()
        .map(|s| (s.user_id.clone(), s))
        .collect();
    assert_eq!(stats.len(), 3, "users without stats are left out");
    let s1 = &stats[&u1];
    assert_eq!(
        (
            s1.total_participations,
            s1.correct_count,
            s1.current_streak,
            s1.max_streak
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(s1.accuracy_rate, dec("100"));
    let s2 = &stats[&u2];
    assert_eq!(
        (
            s2.total_participations,
            s2.correct_count,
            s2.current_streak,
            s2.max_streak
        ),
        (1, 0, 0, 0)
    );
    assert_eq!(s2.accuracy_rate, Decimal::ZERO);

    let rows = rows_of(outbox, &id).await;
    let fanouts = rows
        .iter()
        .filter(|r| matches!(r.payload, OutboxPayload::NotifyVoters(_)))
        .count();
    assert!(
        rows.len() == 4 || (rows.len() == 2 && fanouts == 1),
        "one broadcast + one notice per voter (or one fan-out row for them): {rows:?}"
    );
    for r in &rows {
        assert_eq!(r.state, OutboxState::Pending);
        assert_eq!(r.attempts, 0);
        assert!(r.last_error.is_none());
        assert!(r.next_attempt_at <= at, "new rows are due at once");
    }
    assert!(
        matches!(rows[0].payload, OutboxPayload::PredictionVerified(_)),
        "the broadcast comes first"
    );
    let events: Vec<&PredictionVerified> = rows
        .iter()
        .filter_map(|r| match &r.payload {
            OutboxPayload::PredictionVerified(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        vec![&PredictionVerified {
            prediction_id: id.clone(),
            symbol_code: "XAUUSD".into(),
            correct_option: "A".into(),
            price_at_verify: dec("2680.00"),
            price_change_percent: Some(dec("1.13")),
            price_source: PriceSource::Tick,
            price_at_verify_ts: tick_ts,
        }]
    );
    let notices_list = notices_of(outbox, &id).await;
    assert_eq!(
        notices_list.len(),
        3,
        "one notice per voter: {notices_list:?}"
    );
    let notices: BTreeMap<String, &VoterNotice> = notices_list
        .iter()
        .map(|n| (n.user_id.clone(), n))
        .collect();
    assert_eq!(notices.len(), 3);
    assert!(notices[&u1].is_correct && !notices[&u2].is_correct && notices[&u3].is_correct);
    assert_eq!(notices[&u2].selected_option, "B");
    assert_eq!(notices[&u1].question, p.question);
    assert_eq!(notices[&u1].prediction_id, id);

    let rows = rows_of(outbox, &id).await;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    outbox.mark_delivered(&ids).await.expect("mark_delivered");
}

/// Several predictions of one user in one call apply in slice (`verify_time`) order, and
/// existing statistics are continued.
pub async fn stats_apply_in_record_order(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let prefix = format!("cf-streak-{u}-");
    let base = past_window();
    let user = format!("cf-streaker-{u}");
    let ids: Vec<String> = (0..5).map(|i| format!("{prefix}{i}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| auto_prediction(id, "XAUUSD", base + secs(i as i64), base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let votes: Vec<Vote> = ids
        .iter()
        .map(|id| vote(id, &user, "A", base - secs(30)))
        .collect();
    repo.insert_votes(&votes).await.expect("votes");

    // One earlier verification: existing stats (1 total, 1 correct, streak 1).
    let at = base + secs(60);
    repo.record_verifications(&[verified(&ids[0], "A", "2660", "0.38", base, at)])
        .await
        .expect("first");
    // Then correct, wrong, correct, correct in one call: streak 2 → 0 → 1 → 2; max 2.
    // Applied in another order (wrong first) the result would differ (max 3).
    let outcome = ["A", "B", "A", "A"];
    let records: Vec<VerificationRecord> = ids[1..]
        .iter()
        .zip(outcome)
        .map(|(id, opt)| verified(id, opt, "2660", "0.38", base + secs(5), at + secs(1)))
        .collect();
    let summary = repo.record_verifications(&records).await.expect("batch");
    assert_eq!(sorted(summary.verified), ids[1..].to_vec());
    let s = repo
        .user_stats(std::slice::from_ref(&user))
        .await
        .expect("user_stats");
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(
        (
            s.total_participations,
            s.correct_count,
            s.current_streak,
            s.max_streak
        ),
        (5, 4, 2, 2),
        "stats after C | C W C C"
    );
    assert_eq!(s.accuracy_rate, dec("80"));
    assert_eq!(s.updated_at, at + secs(1));
    deliver_rows_of(outbox, &ids).await;
}

/// Accuracy rounds half away from zero at a midpoint: 1 correct of 32 is 3.125 % → `3.13`
/// (a half-to-even or truncating store would give 3.12), all applied in one call.
pub async fn accuracy_rounds_half_away_from_zero(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let prefix = format!("cf-acc-{u}-");
    let base = past_window();
    let user = format!("cf-acc-user-{u}");
    let ids: Vec<String> = (0..32).map(|i| format!("{prefix}{i:02}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| auto_prediction(id, "XAUUSD", base + secs(i as i64), base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let votes: Vec<Vote> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| vote(id, &user, if i == 0 { "A" } else { "B" }, base - secs(30)))
        .collect();
    repo.insert_votes(&votes).await.expect("votes");
    let at = base + secs(60);
    let records: Vec<VerificationRecord> = ids
        .iter()
        .map(|id| verified(id, "A", "2660", "0.38", base, at))
        .collect();
    repo.record_verifications(&records).await.expect("record");
    let s = repo
        .user_stats(std::slice::from_ref(&user))
        .await
        .expect("user_stats");
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].total_participations, s[0].correct_count),
        (32, 1),
        "counts"
    );
    assert_eq!(
        s[0].accuracy_rate,
        dec("3.13"),
        "1/32 = 3.125 % rounds to 3.13"
    );
    deliver_rows_of(outbox, &ids).await;
}

/// A batch that starts with correct results continues the stored streak before a wrong one:
/// stored C C C, then [C, W] in one call → max streak 4, current 0.
pub async fn streak_continues_into_a_batch(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let prefix = format!("cf-lead-{u}-");
    let base = past_window();
    let user = format!("cf-lead-user-{u}");
    let ids: Vec<String> = (0..5).map(|i| format!("{prefix}{i}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| auto_prediction(id, "XAUUSD", base + secs(i as i64), base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let votes: Vec<Vote> = ids
        .iter()
        .map(|id| vote(id, &user, "A", base - secs(30)))
        .collect();
    repo.insert_votes(&votes).await.expect("votes");
    let at = base + secs(60);
    let first: Vec<VerificationRecord> = ids[..3]
        .iter()
        .map(|id| verified(id, "A", "2660", "0.38", base, at))
        .collect();
    repo.record_verifications(&first).await.expect("first");
    repo.record_verifications(&[
        verified(&ids[3], "A", "2660", "0.38", base, at + secs(1)),
        verified(&ids[4], "B", "2640", "-0.38", base, at + secs(1)),
    ])
    .await
    .expect("second");
    let s = repo
        .user_stats(std::slice::from_ref(&user))
        .await
        .expect("user_stats");
    let s = &s[0];
    assert_eq!(
        (
            s.total_participations,
            s.correct_count,
            s.current_streak,
            s.max_streak
        ),
        (5, 4, 0, 4),
        "stats after C C C | C W"
    );
    assert_eq!(s.accuracy_rate, dec("80"));
    deliver_rows_of(outbox, &ids).await;
}

/// `NeedsReview` sets status and reason, and touches no vote, no statistics and no outbox.
pub async fn record_needs_review(repo: &dyn PredictionRepository, outbox: &dyn OutboxRepository) {
    let u = unique();
    let prefix = format!("cf-rev-{u}-");
    let base = past_window();
    let id = format!("{prefix}p");
    let user = format!("cf-rev-user-{u}");
    insert_all(
        repo,
        &[auto_prediction(&id, "XAUUSD", base, base - secs(60))],
    )
    .await;
    repo.insert_votes(&[vote(&id, &user, "A", base - secs(10))])
        .await
        .expect("vote");
    let summary = repo
        .record_verifications(&[review(&id, "no condition matched", base + secs(5))])
        .await
        .expect("record");
    assert_eq!(summary.needs_review, vec![id.clone()]);
    assert!(summary.verified.is_empty() && summary.skipped.is_empty());
    assert_eq!(summary.votes_marked, 0);
    let got = repo
        .get_prediction(&id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.status, PredictionStatus::NeedsReview);
    assert_eq!(got.review_reason.as_deref(), Some("no condition matched"));
    assert_eq!(got.correct_option, None);
    assert_eq!(got.price_at_verify, None);
    assert_eq!(got.verified_at, None);
    let votes = repo.votes_for(&id).await.expect("votes_for");
    assert_eq!(votes[0].is_correct, None);
    assert!(repo
        .user_stats(std::slice::from_ref(&user))
        .await
        .expect("stats")
        .is_empty());
    assert!(rows_of(outbox, &id).await.is_empty());
    // No longer due.
    let claimed = claim_ours(
        repo,
        base + secs(10),
        1000,
        Duration::from_secs(60),
        &prefix,
    )
    .await;
    assert!(claimed.is_empty());
}

/// A second record of a verified prediction does nothing (no double counting); an automatic
/// record does not touch a `needs_review` prediction; unknown ids are skipped.
pub async fn skip_when_not_eligible(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let base = past_window();
    let id = format!("cf-skip-{u}");
    let rid = format!("cf-skip-review-{u}");
    let user = format!("cf-skip-user-{u}");
    insert_all(
        repo,
        &[
            auto_prediction(&id, "XAUUSD", base, base - secs(60)),
            auto_prediction(&rid, "XAUUSD", base, base - secs(60)),
        ],
    )
    .await;
    repo.insert_votes(&[
        vote(&id, &user, "A", base - secs(10)),
        vote(&rid, &user, "A", base - secs(10)),
    ])
    .await
    .expect("votes");
    let at = base + secs(5);
    // The same id twice in one call: the second is skipped.
    let summary = repo
        .record_verifications(&[
            verified(&id, "A", "2680.00", "1.13", base, at),
            verified(&id, "B", "2600.00", "-1.89", base, at),
            review(&rid, "needs a human", at),
        ])
        .await
        .expect("record");
    assert_eq!(summary.verified, vec![id.clone()]);
    assert_eq!(summary.skipped, vec![id.clone()]);
    assert_eq!(summary.needs_review, vec![rid.clone()]);
    assert_eq!(summary.votes_marked, 1);
    // A later call (e.g. a stale verifier) changes nothing either.
    let again = repo
        .record_verifications(&[
            verified(&id, "B", "2600.00", "-1.89", base, at + secs(1)),
            verified(&rid, "A", "2680.00", "1.13", base, at + secs(1)),
            review(&id, "late", at + secs(1)),
            verified(&format!("cf-unknown-{u}"), "A", "1", "0", base, at),
        ])
        .await
        .expect("record again");
    assert!(again.verified.is_empty() && again.needs_review.is_empty());
    assert_eq!(again.skipped.len(), 4);
    assert_eq!(again.votes_marked, 0);

    let got = repo
        .get_prediction(&id)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.status, PredictionStatus::Ended);
    assert_eq!(got.correct_option.as_deref(), Some("A"));
    assert_eq!(got.verified_at, Some(at));
    assert_eq!(got.review_reason, None);
    let r = repo
        .get_prediction(&rid)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(r.status, PredictionStatus::NeedsReview);
    assert_eq!(r.review_reason.as_deref(), Some("needs a human"));
    let s = repo
        .user_stats(std::slice::from_ref(&user))
        .await
        .expect("stats");
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].total_participations, s[0].correct_count), (1, 1));
    let votes = repo.votes_for(&id).await.expect("votes_for");
    assert_eq!(votes[0].is_correct, Some(true));
    let rows = rows_of(outbox, &id).await;
    assert_eq!(rows.len(), 2, "outbox written once");
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    outbox.mark_delivered(&ids).await.expect("mark_delivered");

    let empty = repo
        .record_verifications(&[])
        .await
        .expect("record nothing");
    assert!(
        empty.verified.is_empty() && empty.needs_review.is_empty() && empty.skipped.is_empty(),
        "{empty:?}"
    );
    assert_eq!(empty.votes_marked, 0);
}

/// A manual record resolves `needs_review` and active manual predictions.
pub async fn manual_resolution(repo: &dyn PredictionRepository, outbox: &dyn OutboxRepository) {
    let u = unique();
    let base = past_window();
    let rid = format!("cf-man-review-{u}");
    let mid = format!("cf-man-manual-{u}");
    let user = format!("cf-man-user-{u}");
    let mut manual = auto_prediction(&mid, "XAGUSD", base, base - secs(60));
    manual.verify_rule = VerifyRule::Manual;
    manual.auto_verify_conditions = None;
    insert_all(
        repo,
        &[
            auto_prediction(&rid, "XAUUSD", base, base - secs(60)),
            manual,
        ],
    )
    .await;
    repo.insert_votes(&[
        vote(&rid, &user, "B", base - secs(10)),
        vote(&mid, &user, "Yes", base - secs(10)),
    ])
    .await
    .expect("votes");
    repo.record_verifications(&[review(&rid, "provider has no history", base + secs(1))])
        .await
        .expect("review");
    let at = base + secs(3600);
    let mut r1 = verified(&rid, "B", "2600.00", "-1.89", base, at);
    r1.manual = true;
    if let VerificationOutcome::Verified(v) = &mut r1.outcome {
        v.price_source = PriceSource::Manual;
    }
    let mut r2 = verified(&mid, "No", "31.20", "0.00", base, at + secs(1));
    r2.manual = true;
    if let VerificationOutcome::Verified(v) = &mut r2.outcome {
        v.price_source = PriceSource::Manual;
    }
    let summary = repo.record_verifications(&[r1, r2]).await.expect("manual");
    assert_eq!(
        sorted(summary.verified),
        sorted(vec![rid.clone(), mid.clone()])
    );
    let got = repo
        .get_prediction(&rid)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.status, PredictionStatus::Ended);
    assert_eq!(got.price_source, Some(PriceSource::Manual));
    assert_eq!(got.correct_option.as_deref(), Some("B"));
    let got = repo
        .get_prediction(&mid)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.status, PredictionStatus::Ended);
    assert_eq!(got.correct_option.as_deref(), Some("No"));
    let s = repo
        .user_stats(std::slice::from_ref(&user))
        .await
        .expect("stats");
    assert_eq!(
        (
            s[0].total_participations,
            s[0].correct_count,
            s[0].current_streak,
            s[0].max_streak
        ),
        // Both are due at the same instant, so the rules take them by id: "…-manual-…"
        // (wrong) before "…-review-…" (right), whatever order the records came in.
        (2, 1, 1, 1)
    );
    assert_eq!(s[0].accuracy_rate, dec("50"));
    deliver_rows_of(outbox, &[rid, mid]).await;
}

/// `recent_verified` lists ended predictions, newest `verified_at` first.
pub async fn recent_verified_newest_first(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    // Far in the future so they are the newest of any shared database.
    let far = Utc
        .with_ymd_and_hms(2900, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
        + secs(rand::random::<u32>() as i64 % 86_400);
    let base = past_window();
    let ids: Vec<String> = (0..3).map(|i| format!("cf-recent-{u}-{i}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .map(|id| auto_prediction(id, "XAUUSD", base, base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    repo.record_verifications(&[
        verified(&ids[0], "A", "2660", "0.38", base, far + secs(1)),
        verified(&ids[1], "A", "2660", "0.38", base, far + secs(3)),
        verified(&ids[2], "A", "2660", "0.38", base, far + secs(2)),
    ])
    .await
    .expect("record");
    let recent = repo.recent_verified(1000).await.expect("recent");
    let mine: Vec<&str> = recent
        .iter()
        .map(|p| p.id.as_str())
        .filter(|id| id.starts_with(&format!("cf-recent-{u}-")))
        .collect();
    assert_eq!(
        mine,
        vec![ids[1].as_str(), ids[2].as_str(), ids[0].as_str()]
    );
    assert!(recent.iter().all(|p| p.status == PredictionStatus::Ended));
    let one = repo.recent_verified(1).await.expect("recent 1");
    assert!(one.len() <= 1);
    deliver_rows_of(outbox, &ids).await;
}

/// `list_predictions` filters by status and symbol and answers most recently verified first,
/// never-verified ones last (latest `verify_time` first), at most `limit`; `vote_counts` counts
/// votes per option; the deciding price's provider is stored with the verdict.
pub async fn list_and_vote_counts(repo: &dyn PredictionRepository, outbox: &dyn OutboxRepository) {
    let _ = outbox;
    let u = unique();
    let base = past_window();
    // A symbol of this run only, so other rows never show up in the listing.
    let symbol = format!("L{}", &u[..8]).to_ascii_uppercase();
    let id = |n: u32| format!("cf-list-{u}-{n}");
    let ps: Vec<Prediction> = (0..4)
        .map(|n| auto_prediction(&id(n), &symbol, base + secs(i64::from(n)), base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let votes = [
        vote(&id(0), &format!("cf-lu1-{u}"), "A", base - secs(30)),
        vote(&id(0), &format!("cf-lu2-{u}"), "A", base - secs(30)),
        vote(&id(0), &format!("cf-lu3-{u}"), "B", base - secs(30)),
    ];
    repo.insert_votes(&votes).await.expect("votes");
    let mut first = verified(
        &id(0),
        "A",
        "2680.00",
        "1.13",
        base + secs(5),
        base + secs(100),
    );
    if let VerificationOutcome::Verified(v) = &mut first.outcome {
        v.price_provider = Some("twelvedata".into());
    }
    let second = verified(
        &id(1),
        "B",
        "2600.00",
        "-1.89",
        base + secs(6),
        base + secs(200),
    );
    let summary = repo
        .record_verifications(&[first, second])
        .await
        .expect("record");
    assert_eq!(summary.verified.len(), 2);
    repo.record_verifications(&[review(&id(2), "no price", base + secs(300))])
        .await
        .expect("review");

    let listed = |q: PredictionQuery| async move {
        repo.list_predictions(&q)
            .await
            .expect("list_predictions")
            .into_iter()
            .map(|p| p.id)
            .collect::<Vec<String>>()
    };
    let all = PredictionQuery::default()
        .with_symbol(&symbol)
        .with_limit(100);
    // Verified ones newest verified_at first, then the rest latest verify_time first.
    assert_eq!(listed(all.clone()).await, [id(1), id(0), id(3), id(2)]);
    assert_eq!(
        listed(all.clone().with_status(PredictionStatus::Ended)).await,
        [id(1), id(0)]
    );
    assert_eq!(
        listed(all.clone().with_status(PredictionStatus::NeedsReview)).await,
        [id(2)]
    );
    assert_eq!(listed(all.clone().with_limit(1)).await, [id(1)]);
    assert!(listed(
        PredictionQuery::default()
            .with_symbol(format!("{symbol}X"))
            .with_limit(5)
    )
    .await
    .is_empty());

    let got = repo
        .get_prediction(&id(0))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.price_provider.as_deref(), Some("twelvedata"));
    let other = repo
        .get_prediction(&id(1))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(other.price_provider, None);

    let counts = repo.vote_counts(&id(0)).await.expect("vote_counts");
    assert_eq!(
        counts,
        vec![
            OptionVotes {
                option: "A".into(),
                votes: 2
            },
            OptionVotes {
                option: "B".into(),
                votes: 1
            },
        ]
    );
    assert!(repo
        .vote_counts(&id(3))
        .await
        .expect("vote_counts")
        .is_empty());
    retire(repo, &[id(3)], base).await;
}

/// Two claimers at the same instant never get the same prediction.
pub async fn concurrent_claims_are_disjoint(repo: &dyn PredictionRepository) {
    let u = unique();
    let prefix = format!("cf-cclaim-{u}-");
    let base = past_window();
    let ids: Vec<String> = (0..40).map(|i| format!("{prefix}{i:02}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| auto_prediction(id, "XAUUSD", base + secs(i as i64), base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let now = base + secs(100);
    let claim_for = Duration::from_secs(60);
    let mut mine: Vec<String> = Vec::new();
    for _ in 0..10 {
        let (a, b) = futures::join!(
            claim_ours(repo, now, 5, claim_for, &prefix),
            claim_ours(repo, now, 5, claim_for, &prefix)
        );
        assert!(
            a.iter().all(|id| !b.contains(id)),
            "both claimers got {a:?} / {b:?}"
        );
        mine.extend(a);
        mine.extend(b);
    }
    let n = mine.len();
    mine.sort();
    mine.dedup();
    assert_eq!(mine.len(), n, "a prediction was claimed twice");
    repo.release_claims(&ids).await.expect("release");
    retire(repo, &ids, now).await;
}

/// Two verifiers recording the same decisions at the same time: each prediction is verified
/// once, every vote counted once.
pub async fn concurrent_records_apply_once(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let base = past_window();
    let user = format!("cf-crec-user-{u}");
    let ids: Vec<String> = (0..20).map(|i| format!("cf-crec-{u}-{i:02}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| auto_prediction(id, "XAUUSD", base + secs(i as i64), base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let votes: Vec<Vote> = ids.iter().map(|id| vote(id, &user, "A", base)).collect();
    repo.insert_votes(&votes).await.expect("votes");
    let at = base + secs(100);
    let records: Vec<VerificationRecord> = ids
        .iter()
        .map(|id| verified(id, "A", "2680.00", "1.13", base, at))
        .collect();
    let mut reversed = records.clone();
    reversed.reverse();
    let (a, b) = futures::join!(
        repo.record_verifications(&records),
        repo.record_verifications(&reversed)
    );
    let (a, b) = (a.expect("record a"), b.expect("record b"));
    let mut verified_ids: Vec<String> = a.verified.into_iter().chain(b.verified).collect();
    verified_ids.sort();
    assert_eq!(verified_ids, ids, "each verified exactly once");
    assert_eq!(a.skipped.len() + b.skipped.len(), ids.len());
    assert_eq!(a.votes_marked + b.votes_marked, ids.len() as u64);
    let s = repo
        .user_stats(std::slice::from_ref(&user))
        .await
        .expect("stats");
    assert_eq!(
        (
            s[0].total_participations,
            s[0].correct_count,
            s[0].current_streak
        ),
        (20, 20, 20)
    );
    let rows: Vec<OutboxRow> = outbox
        .outbox_rows()
        .await
        .expect("outbox_rows")
        .into_iter()
        .filter(|r| ids.iter().any(|id| id == payload_prediction_id(&r.payload)))
        .collect();
    assert_eq!(
        rows.len(),
        40,
        "one broadcast and one notice (or fan-out row) per prediction"
    );
    deliver_rows_of(outbox, &ids).await;
}

// ---------------------------------------------------------------------------------------------
// Corrections, voids and recomputed statistics (guide: *Corrections and voids*)
// ---------------------------------------------------------------------------------------------

/// `(total, correct, current streak, max streak, accuracy)` of `user`; zeros when the store has
/// no statistics for the user.
async fn numbers(repo: &dyn PredictionRepository, user: &str) -> (i64, i64, i64, i64, Decimal) {
    let s = repo
        .user_stats(&[user.to_owned()])
        .await
        .expect("user_stats");
    match s.first() {
        Some(s) => (
            s.total_participations,
            s.correct_count,
            s.current_streak,
            s.max_streak,
            s.accuracy_rate,
        ),
        None => (0, 0, 0, 0, Decimal::ZERO),
    }
}

/// `is_correct` of every vote of `prediction_id`, by user.
async fn marks(
    repo: &dyn PredictionRepository,
    prediction_id: &str,
) -> BTreeMap<String, Option<bool>> {
    repo.votes_for(prediction_id)
        .await
        .expect("votes_for")
        .into_iter()
        .map(|v| (v.user_id, v.is_correct))
        .collect()
}

/// `n` auto predictions `{prefix}{i}` due at `base + i` s, each voted on by every `(user,
/// option)` of `votes[i]`.
async fn predictions_with_votes(
    repo: &dyn PredictionRepository,
    prefix: &str,
    base: DateTime<Utc>,
    votes: &[&[(&str, &str)]],
) -> Vec<String> {
    let ids: Vec<String> = (0..votes.len()).map(|i| format!("{prefix}{i}")).collect();
    let ps: Vec<Prediction> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| auto_prediction(id, "XAUUSD", base + secs(i as i64), base - secs(60)))
        .collect();
    insert_all(repo, &ps).await;
    let all: Vec<Vote> = ids
        .iter()
        .zip(votes)
        .flat_map(|(id, vs)| vs.iter().map(move |(u, o)| vote(id, u, o, base - secs(30))))
        .collect();
    if !all.is_empty() {
        repo.insert_votes(&all).await.expect("votes");
    }
    ids
}

fn correction(id: &str, option: &str, price: Option<ManualPrice>, at: DateTime<Utc>) -> Correction {
    Correction {
        prediction_id: id.to_owned(),
        correct_option: option.to_owned(),
        price,
        corrected_at: at,
    }
}

fn void_record(id: &str, reason: &str, at: DateTime<Utc>) -> VoidRecord {
    VoidRecord {
        prediction_id: id.to_owned(),
        reason: reason.to_owned(),
        voided_at: at,
    }
}

/// A correction re-marks the votes and recomputes each voter's statistics from all of the
/// voter's verified votes in `verify_time` order, as if the right answer had been there from
/// the start; it keeps the recorded price without a new one and records `manual` with one; it
/// writes a `PredictionCorrected` broadcast with the previous option and one corrected notice
/// per voter.
pub async fn correction_recomputes_stats(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let prefix = format!("cf-corr-{u}-");
    let base = past_window();
    let (a, b) = (format!("cf-corr-a-{u}"), format!("cf-corr-b-{u}"));
    let ids = predictions_with_votes(
        repo,
        &prefix,
        base,
        &[
            &[(&a, "A")],
            &[(&a, "A")],
            &[(&a, "A"), (&b, "B")],
            &[(&a, "A")],
        ],
    )
    .await;
    let at = base + secs(100);
    // C C W C for a; b right on the third.
    let records: Vec<VerificationRecord> = ["A", "A", "B", "A"]
        .iter()
        .zip(&ids)
        .map(|(o, id)| verified(id, o, "2660", "0.38", base, at))
        .collect();
    repo.record_verifications(&records).await.expect("record");
    assert_eq!(numbers(repo, &a).await, (4, 3, 1, 2, dec("75")), "before");
    assert_eq!(numbers(repo, &b).await, (1, 1, 1, 1, dec("100")), "before");

    let fixed_at = at + secs(50);
    let rev = repo
        .record_correction(&correction(&ids[2], "A", None, fixed_at))
        .await
        .expect("correct");
    assert_eq!(rev.previous_status, PredictionStatus::Ended);
    assert_eq!(rev.previous_option.as_deref(), Some("B"));
    assert_eq!(rev.votes_marked, 2);
    assert_eq!(rev.users_recomputed, 2);
    // As if A had been right from the start: C C C C.
    assert_eq!(numbers(repo, &a).await, (4, 4, 4, 4, dec("100")), "after");
    assert_eq!(
        numbers(repo, &b).await,
        (1, 0, 0, 0, Decimal::ZERO),
        "after"
    );
    let s = repo
        .user_stats(std::slice::from_ref(&a))
        .await
        .expect("stats");
    assert_eq!(s[0].updated_at, fixed_at, "updated_at = corrected_at");
    let got = repo
        .get_prediction(&ids[2])
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.status, PredictionStatus::Ended);
    assert_eq!(got.correct_option.as_deref(), Some("A"));
    assert_eq!(got.price_at_verify, Some(dec("2660")), "price kept");
    assert_eq!(got.price_change_percent, Some(dec("0.38")));
    assert_eq!(got.price_source, Some(PriceSource::Tick), "source kept");
    let m = marks(repo, &ids[2]).await;
    assert_eq!((m[&a], m[&b]), (Some(true), Some(false)));

    let rows = rows_of(outbox, &ids[2]).await;
    let events: Vec<&PredictionCorrected> = rows
        .iter()
        .filter_map(|r| match &r.payload {
            OutboxPayload::PredictionCorrected(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        vec![&PredictionCorrected {
            prediction_id: ids[2].clone(),
            symbol_code: "XAUUSD".into(),
            correct_option: "A".into(),
            price_at_verify: dec("2660"),
            price_change_percent: Some(dec("0.38")),
            price_source: PriceSource::Tick,
            price_at_verify_ts: base,
            previous_option: "B".into(),
        }]
    );
    for r in rows.iter().filter(|r| {
        matches!(
            r.payload,
            OutboxPayload::PredictionCorrected(_) | OutboxPayload::NotifyVoters(_)
        ) && r.state == OutboxState::Pending
    }) {
        assert!(r.next_attempt_at <= fixed_at, "due at once: {r:?}");
    }
    let corrected: BTreeMap<String, VoterNotice> = notices_of(outbox, &ids[2])
        .await
        .into_iter()
        .filter(|n| n.kind == NoticeKind::Corrected)
        .map(|n| (n.user_id.clone(), n))
        .collect();
    assert_eq!(
        corrected.len(),
        2,
        "one corrected notice per voter: {corrected:?}"
    );
    assert!(corrected[&a].is_correct && !corrected[&b].is_correct);
    assert_eq!(corrected[&b].selected_option, "B");
    assert_eq!(corrected[&a].question, got.question);

    // With a price: manual source, the given change and instant; a's second result becomes wrong.
    let price = ManualPrice {
        price_at_verify: dec("2600.00"),
        price_change_percent: Some(dec("-1.89")),
        price_at_verify_ts: base + secs(1),
    };
    repo.record_correction(&correction(
        &ids[1],
        "B",
        Some(price.clone()),
        fixed_at + secs(1),
    ))
    .await
    .expect("correct with a price");
    let got = repo
        .get_prediction(&ids[1])
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.correct_option.as_deref(), Some("B"));
    assert_eq!(got.price_at_verify, Some(dec("2600.00")));
    assert_eq!(got.price_change_percent, Some(dec("-1.89")));
    assert_eq!(got.price_source, Some(PriceSource::Manual));
    assert_eq!(got.price_at_verify_ts, Some(base + secs(1)));
    assert_eq!(got.price_provider, None);
    // C W C C
    assert_eq!(
        numbers(repo, &a).await,
        (4, 3, 2, 2, dec("75")),
        "after the second"
    );

    // Nothing to change, or not correctable.
    for (c, what) in [
        (
            correction(&ids[1], "B", None, fixed_at),
            "same option, no price",
        ),
        (
            correction(&ids[1], "B", Some(price), fixed_at),
            "same option, same price",
        ),
    ] {
        assert!(
            matches!(
                repo.record_correction(&c).await,
                Err(crate::Error::Conflict(_))
            ),
            "{what}"
        );
    }
    assert!(matches!(
        repo.record_correction(&correction(&ids[1], " ", None, fixed_at))
            .await,
        Err(crate::Error::InvalidInput(_))
    ));
    assert!(matches!(
        repo.record_correction(&correction(&format!("{prefix}none"), "A", None, fixed_at))
            .await,
        Err(crate::Error::NotFound(_))
    ));
    let active = format!("{prefix}active");
    insert_all(repo, &[auto_prediction(&active, "XAUUSD", base, base)]).await;
    assert!(
        matches!(
            repo.record_correction(&correction(&active, "A", None, fixed_at))
                .await,
            Err(crate::Error::Conflict(_))
        ),
        "only ended predictions can be corrected"
    );
    assert_eq!(
        numbers(repo, &a).await,
        (4, 3, 2, 2, dec("75")),
        "unchanged"
    );
    retire(repo, std::slice::from_ref(&active), at).await;
    let mut all = ids;
    all.push(active);
    deliver_rows_of(outbox, &all).await;
}

/// Voiding an ended prediction takes it out of everyone's statistics (recomputed), unmarks its
/// votes, records status and reason, and is final: a second void, a correction and a
/// verification of it all fail or are skipped.
pub async fn void_of_ended_recomputes_and_is_final(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let prefix = format!("cf-void-{u}-");
    let base = past_window();
    let (a, b) = (format!("cf-void-a-{u}"), format!("cf-void-b-{u}"));
    let ids = predictions_with_votes(
        repo,
        &prefix,
        base,
        &[&[(&a, "A")], &[(&a, "A"), (&b, "B")], &[(&a, "A")]],
    )
    .await;
    let at = base + secs(100);
    let records: Vec<VerificationRecord> = ["A", "B", "A"]
        .iter()
        .zip(&ids)
        .map(|(o, id)| verified(id, o, "2660", "0.38", base, at))
        .collect();
    repo.record_verifications(&records).await.expect("record");
    assert_eq!(numbers(repo, &a).await, (3, 2, 1, 1, dec("66.67")), "C W C");

    let void_at = at + secs(10);
    let rev = repo
        .record_void(&void_record(&ids[1], "wrong price feed", void_at))
        .await
        .expect("void");
    assert_eq!(rev.previous_status, PredictionStatus::Ended);
    assert_eq!(rev.previous_option.as_deref(), Some("B"));
    assert_eq!((rev.votes_marked, rev.users_recomputed), (2, 2));
    assert_eq!(numbers(repo, &a).await, (2, 2, 2, 2, dec("100")), "C C");
    assert_eq!(
        numbers(repo, &b).await,
        (0, 0, 0, 0, Decimal::ZERO),
        "no verified vote left: zeros"
    );
    // Two places whatever the value, as every answer shows it (`"0.00"`, never `"0"`).
    let rates: Vec<String> = repo
        .user_stats(&[a.clone(), b.clone()])
        .await
        .expect("user_stats")
        .iter()
        .map(|s| format!("{}={}", s.user_id, s.accuracy_rate))
        .collect();
    assert!(
        rates.contains(&format!("{a}=100.00")) && rates.contains(&format!("{b}=0.00")),
        "accuracy_rate with two places: {rates:?}"
    );
    let got = repo
        .get_prediction(&ids[1])
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(got.status, PredictionStatus::Void);
    assert_eq!(got.review_reason.as_deref(), Some("wrong price feed"));
    assert!(marks(repo, &ids[1]).await.values().all(Option::is_none));
    let events: Vec<PredictionVoided> = rows_of(outbox, &ids[1])
        .await
        .into_iter()
        .filter_map(|r| match r.payload {
            OutboxPayload::PredictionVoided(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        vec![PredictionVoided {
            prediction_id: ids[1].clone(),
            symbol_code: "XAUUSD".into(),
            reason: "wrong price feed".into(),
        }]
    );
    let voided: BTreeMap<String, VoterNotice> = notices_of(outbox, &ids[1])
        .await
        .into_iter()
        .filter(|n| n.kind == NoticeKind::Voided)
        .map(|n| (n.user_id.clone(), n))
        .collect();
    assert_eq!(voided.len(), 2, "one void notice per voter: {voided:?}");
    assert_eq!(voided[&b].reason.as_deref(), Some("wrong price feed"));
    assert_eq!(voided[&b].selected_option, "B");

    // Final.
    assert!(matches!(
        repo.record_void(&void_record(&ids[1], "again", void_at))
            .await,
        Err(crate::Error::Conflict(_))
    ));
    assert!(matches!(
        repo.record_correction(&correction(&ids[1], "A", None, void_at))
            .await,
        Err(crate::Error::Conflict(_))
    ));
    let mut manual = verified(&ids[1], "A", "2660", "0.38", base, void_at);
    manual.manual = true;
    let s = repo
        .record_verifications(&[manual])
        .await
        .expect("record on void");
    assert_eq!(
        s.skipped,
        vec![ids[1].clone()],
        "a void prediction is never verified"
    );
    assert_eq!(
        numbers(repo, &a).await,
        (2, 2, 2, 2, dec("100")),
        "unchanged"
    );
    assert!(matches!(
        repo.record_void(&void_record(&ids[0], "  ", void_at)).await,
        Err(crate::Error::InvalidInput(_))
    ));
    assert!(matches!(
        repo.record_void(&void_record(&format!("{prefix}none"), "x", void_at))
            .await,
        Err(crate::Error::NotFound(_))
    ));
    deliver_rows_of(outbox, &ids).await;
}

/// Voiding an active or `needs_review` prediction leaves every statistic untouched, takes it
/// off the due list, and still tells its voters.
pub async fn void_of_open_predictions_leaves_stats(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let prefix = format!("cf-vopen-{u}-");
    let base = past_window();
    let a = format!("cf-vopen-a-{u}");
    let ids = predictions_with_votes(
        repo,
        &prefix,
        base,
        &[&[(&a, "A")], &[(&a, "A")], &[(&a, "B")]],
    )
    .await;
    let at = base + secs(100);
    repo.record_verifications(&[
        verified(&ids[0], "A", "2660", "0.38", base, at),
        review(&ids[1], "no tick", at),
    ])
    .await
    .expect("record");
    let before = repo
        .user_stats(std::slice::from_ref(&a))
        .await
        .expect("stats");
    for id in &ids[1..] {
        let rev = repo
            .record_void(&void_record(id, "event cancelled", at + secs(5)))
            .await
            .expect("void");
        assert_eq!(rev.users_recomputed, 0, "{id}");
        assert_eq!(rev.previous_option, None);
    }
    assert_eq!(
        repo.user_stats(std::slice::from_ref(&a))
            .await
            .expect("stats"),
        before,
        "statistics untouched, updated_at too"
    );
    let statuses: Vec<PredictionStatus> = {
        let mut v = Vec::new();
        for id in &ids[1..] {
            v.push(
                repo.get_prediction(id)
                    .await
                    .expect("get")
                    .expect("stored")
                    .status,
            );
        }
        v
    };
    assert_eq!(
        statuses,
        vec![PredictionStatus::Void, PredictionStatus::Void]
    );
    let due = claim_ours(
        repo,
        base + secs(1000),
        1000,
        Duration::from_secs(60),
        &prefix,
    )
    .await;
    assert!(due.is_empty(), "a void prediction is not due: {due:?}");
    let notices = notices_of(outbox, &ids[2]).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].kind, NoticeKind::Voided);
    assert_eq!(notices[0].user_id, a);
    deliver_rows_of(outbox, &ids).await;
}

/// Predictions verified out of `verify_time` order (an admin resolving an old prediction in
/// review after newer ones were verified, a prediction that waited long for its price): the
/// stored statistics still equal the recomputation in `verify_time` order, so `recompute_stats`
/// finds nothing of ours to check or fix. (Statistics that differ — imported without their
/// votes — are tested per store.)
///
/// Acts on the whole store (`Fix` rewrites every differing user, not only the suite's).
pub async fn recompute_stats_check_and_fix(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    let u = unique();
    let prefix = format!("cf-recomp-{u}-");
    let base = past_window();
    let (a, b) = (format!("cf-recomp-a-{u}"), format!("cf-recomp-b-{u}"));
    let ids = predictions_with_votes(
        repo,
        &prefix,
        base,
        &[
            &[(&a, "A"), (&b, "A")],
            &[(&a, "A"), (&b, "B")],
            &[(&a, "B")],
        ],
    )
    .await;
    let at = base + secs(100);
    // a in verify_time order: W C C → stored by these out-of-order calls as C C W.
    repo.record_verifications(&[verified(&ids[1], "A", "2660", "0.38", base, at)])
        .await
        .expect("record 1");
    repo.record_verifications(&[verified(&ids[2], "B", "2660", "0.38", base, at)])
        .await
        .expect("record 2");
    repo.record_verifications(&[verified(&ids[0], "B", "2660", "0.38", base, at)])
        .await
        .expect("record 0");
    // A late verification is not applied as a delta: the voter is recomputed, so the stored
    // statistics are those of W C C, in verify_time order, whatever order the calls came in.
    assert_eq!(
        numbers(repo, &a).await,
        (3, 2, 2, 2, dec("66.67")),
        "stored as the rules order them"
    );
    assert_eq!(numbers(repo, &b).await, (2, 0, 0, 0, Decimal::ZERO));

    let now = at + secs(60);
    let mine = |diffs: Vec<StatsDiff>| -> Vec<StatsDiff> {
        diffs
            .into_iter()
            .filter(|d| d.user_id == a || d.user_id == b)
            .collect()
    };
    let check = mine(
        repo.recompute_stats(RecomputeMode::Check, now)
            .await
            .expect("check"),
    );
    assert!(check.is_empty(), "nothing differs: {check:?}");
    let fixed = mine(
        repo.recompute_stats(RecomputeMode::Fix, now)
            .await
            .expect("fix"),
    );
    assert!(fixed.is_empty(), "nothing to fix: {fixed:?}");
    assert_eq!(numbers(repo, &a).await, (3, 2, 2, 2, dec("66.67")));
    deliver_rows_of(outbox, &ids).await;
}

/// One step of a [`random_history`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Verify the active prediction with the earliest `verify_time` (as the verifier would),
    /// with option `option % 3` (`A`, `B`, `C`); nothing when none is active.
    Verify {
        /// The winning option's index.
        option: u8,
    },
    /// Verify the active prediction `which % active` (by `verify_time`), not necessarily the
    /// earliest: a late verification, as when an admin resolves an old prediction in review or
    /// a prediction waited long for its price, after later ones were verified.
    VerifyAny {
        /// Which active prediction.
        which: u8,
        /// The winning option's index.
        option: u8,
    },
    /// Correct prediction `prediction % n` to option `option % 3`, with price
    /// `2600 + price` when `Some`. Expected to fail with `Conflict` when it is not ended or
    /// nothing changes.
    Correct {
        /// The prediction's index.
        prediction: u8,
        /// The new option's index.
        option: u8,
        /// The new price, above 2600.
        price: Option<u8>,
    },
    /// Void prediction `prediction % n`. Expected to fail with `Conflict` when already void.
    Void {
        /// The prediction's index.
        prediction: u8,
    },
}

const OPTIONS: [&str; 3] = ["A", "B", "C"];

/// What the history made of one prediction, kept by [`random_history`] itself.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Model {
    Active,
    Ended { option: usize, price: Decimal },
    Void,
}

/// The statistics the rules of §6.6/§6.7 give a voter, computed the plain way from the model:
/// the voter's results on ended predictions in `verify_time` (= index) order;
/// `(total, correct, current, max, accuracy)`.
fn oracle(
    model: &[Model],
    votes: &BTreeMap<(usize, usize), usize>,
    user: usize,
) -> (i64, i64, i64, i64, Decimal) {
    let results: Vec<bool> = model
        .iter()
        .enumerate()
        .filter_map(|(p, m)| match (m, votes.get(&(user, p))) {
            (Model::Ended { option, .. }, Some(chosen)) => Some(option == chosen),
            _ => None,
        })
        .collect();
    let total = results.len() as i64;
    let correct = results.iter().filter(|r| **r).count() as i64;
    // streaks: the lengths of the runs between wrong results
    let text: String = results.iter().map(|r| if *r { 'C' } else { 'W' }).collect();
    let runs: Vec<i64> = text.split('W').map(|run| run.len() as i64).collect();
    let current = runs.last().copied().unwrap_or(0);
    let max = runs.iter().copied().max().unwrap_or(0);
    // accuracy in hundredths, half up (all values are non-negative), by integer arithmetic
    let accuracy = if total == 0 {
        Decimal::ZERO
    } else {
        Decimal::new((correct * 20_000 + total) / (2 * total), 2)
    };
    (total, correct, current, max, accuracy)
}

/// Run `steps` over `predictions` fresh predictions (due one second apart) voted on as
/// `votes` says (`(user, prediction, option)` indexes, the first vote of a user on a prediction
/// counts) by `users` fresh users, and after every step check each user's stored statistics
/// against a plain recomputation from the history the function keeps itself (not from the
/// store), and the outcome of every step (`Conflict` exactly when the history says so). At the
/// end, every vote's mark and a `recompute_stats` check of these users are compared too.
pub async fn random_history(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
    users: usize,
    predictions: usize,
    votes: &[(u8, u8, u8)],
    steps: &[Step],
) {
    let users = users.max(1);
    let predictions = predictions.max(1);
    let u = unique();
    let prefix = format!("cf-hist-{u}-");
    let base = past_window();
    let user_ids: Vec<String> = (0..users).map(|i| format!("cf-hist-u{i}-{u}")).collect();
    let mut chosen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for (user, p, o) in votes {
        chosen
            .entry((*user as usize % users, *p as usize % predictions))
            .or_insert(*o as usize % 3);
    }
    let per_prediction: Vec<Vec<(&str, &str)>> = (0..predictions)
        .map(|p| {
            chosen
                .iter()
                .filter(|((_, q), _)| *q == p)
                .map(|((user, _), o)| (user_ids[*user].as_str(), OPTIONS[*o]))
                .collect()
        })
        .collect();
    let slices: Vec<&[(&str, &str)]> = per_prediction.iter().map(Vec::as_slice).collect();
    let ids = predictions_with_votes(repo, &prefix, base, &slices).await;
    let mut model = vec![Model::Active; predictions];
    let mut clock = base + secs(1000);
    for (n, step) in steps.iter().enumerate() {
        clock += secs(1);
        match *step {
            Step::Verify { .. } | Step::VerifyAny { .. } => {
                let active: Vec<usize> = model
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| **m == Model::Active)
                    .map(|(i, _)| i)
                    .collect();
                let (option, pick) = match *step {
                    Step::VerifyAny { which, option } => {
                        (option, usize::from(which) % active.len().max(1))
                    }
                    Step::Verify { option } => (option, 0),
                    _ => continue,
                };
                let Some(&p) = active.get(pick) else {
                    continue;
                };
                let o = option as usize % 3;
                let s = repo
                    .record_verifications(&[verified(
                        &ids[p], OPTIONS[o], "2660", "0.38", base, clock,
                    )])
                    .await
                    .expect("record_verifications");
                assert_eq!(s.verified, vec![ids[p].clone()], "step {n} {step:?}");
                model[p] = Model::Ended {
                    option: o,
                    price: dec("2660"),
                };
            }
            Step::Correct {
                prediction,
                option,
                price,
            } => {
                let p = prediction as usize % predictions;
                let o = option as usize % 3;
                let new_price = price.map(|x| Decimal::from(2600 + i64::from(x)));
                let c = correction(
                    &ids[p],
                    OPTIONS[o],
                    new_price.map(|x| ManualPrice {
                        price_at_verify: x,
                        price_change_percent: crate::verify::price_change_percent(
                            dec("2650.00"),
                            x,
                        ),
                        price_at_verify_ts: base,
                    }),
                    clock,
                );
                let got = repo.record_correction(&c).await;
                match &model[p] {
                    Model::Ended { option, price }
                        if *option != o || new_price.is_some_and(|x| x != *price) =>
                    {
                        let rev = got.unwrap_or_else(|e| panic!("step {n} {step:?}: {e}"));
                        assert_eq!(rev.previous_option.as_deref(), Some(OPTIONS[*option]));
                        model[p] = Model::Ended {
                            option: o,
                            price: new_price.unwrap_or(*price),
                        };
                    }
                    other => assert!(
                        matches!(got, Err(crate::Error::Conflict(_))),
                        "step {n} {step:?} on {other:?}: {got:?}"
                    ),
                }
            }
            Step::Void { prediction } => {
                let p = prediction as usize % predictions;
                let got = repo
                    .record_void(&void_record(&ids[p], "history", clock))
                    .await;
                if model[p] == Model::Void {
                    assert!(
                        matches!(got, Err(crate::Error::Conflict(_))),
                        "step {n} {step:?}: {got:?}"
                    );
                } else {
                    got.unwrap_or_else(|e| panic!("step {n} {step:?}: {e}"));
                    model[p] = Model::Void;
                }
            }
        }
        for (i, user) in user_ids.iter().enumerate() {
            assert_eq!(
                numbers(repo, user).await,
                oracle(&model, &chosen, i),
                "user {i} after step {n} {step:?}; history {model:?}"
            );
        }
    }
    for (p, m) in model.iter().enumerate() {
        let expected: BTreeMap<String, Option<bool>> = chosen
            .iter()
            .filter(|((_, q), _)| *q == p)
            .map(|((user, _), o)| {
                let mark = match m {
                    Model::Ended { option, .. } => Some(option == o),
                    Model::Active | Model::Void => None,
                };
                (user_ids[*user].clone(), mark)
            })
            .collect();
        assert_eq!(
            marks(repo, &ids[p]).await,
            expected,
            "votes of prediction {p}: {m:?}"
        );
    }
    let diffs: Vec<StatsDiff> = repo
        .recompute_stats(RecomputeMode::Check, clock)
        .await
        .expect("recompute check")
        .into_iter()
        .filter(|d| user_ids.contains(&d.user_id))
        .collect();
    assert!(
        diffs.is_empty(),
        "stored statistics differ from the recomputation: {diffs:?}"
    );
    let active: Vec<String> = model
        .iter()
        .zip(&ids)
        .filter(|(m, _)| **m == Model::Active)
        .map(|(_, id)| id.clone())
        .collect();
    retire(repo, &active, clock).await;
    deliver_rows_of(outbox, &ids).await;
}

/// A fixed [`random_history`] that passes through every kind of step.
pub async fn a_history_of_corrections_and_voids(
    repo: &dyn PredictionRepository,
    outbox: &dyn OutboxRepository,
) {
    use Step::*;
    let votes = [
        (0, 0, 0),
        (1, 0, 1),
        (0, 1, 0),
        (1, 1, 0),
        (2, 1, 2),
        (0, 2, 1),
        (2, 2, 1),
        (0, 3, 0),
        (1, 3, 0),
    ];
    let steps = [
        Verify { option: 0 },
        Verify { option: 1 },
        Correct {
            prediction: 1,
            option: 0,
            price: None,
        },
        Correct {
            prediction: 1,
            option: 0,
            price: None,
        },
        Verify { option: 1 },
        Void { prediction: 1 },
        Void { prediction: 1 },
        Correct {
            prediction: 2,
            option: 1,
            price: Some(7),
        },
        Correct {
            prediction: 2,
            option: 1,
            price: Some(7),
        },
        Correct {
            prediction: 3,
            option: 0,
            price: None,
        },
        Void { prediction: 3 },
        Verify { option: 2 },
        Correct {
            prediction: 0,
            option: 2,
            price: Some(1),
        },
    ];
    random_history(repo, outbox, 3, 4, &votes, &steps).await;
}
