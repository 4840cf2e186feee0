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
//! - two `claim_due` calls at the same time never hand out the same prediction.

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

/// Conditions in the platform's shape (CONTRACT.md §6.4), keys deliberately not in sorted order
/// and with an extra key the verifier ignores: stores must keep the text as written.
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
            price_change_percent: dec(percent),
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
    assert_eq!(got.id, p.id);
    assert_eq!(got.price_at_create, p.price_at_create);
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
    let votes = repo.votes_for(&id).await.expect("votes_for");
    assert_eq!(votes.len(), 1);
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

/// The prediction an outbox payload is about.
pub(crate) fn payload_prediction_id(p: &OutboxPayload) -> &str {
    match p {
        OutboxPayload::PredictionVerified(e) => &e.prediction_id,
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
            price_change_percent: dec("1.13"),
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
        (2, 1, 0, 1)
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
