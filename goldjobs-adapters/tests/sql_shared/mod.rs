//! Direct tests of the SQL stores, shared by `sql_sqlite.rs` and `sql_postgres.rs`. Each takes
//! a freshly migrated store (through its ports) and checks real behaviour.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use chrono::{DateTime, TimeZone, Utc};
use goldjobs_core::{
    DeviceTokenRepository, Lease, NewsRepository, OutboxPayload, OutboxRepository, OutboxState,
    Prediction, PredictionRepository, PredictionStatus, PriceSource, PriceTick,
    PriceTickRepository, Symbol, SymbolRepository, Verdict, VerificationOutcome,
    VerificationRecord, VerifyRule, Vote,
};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Every port one store implements.
pub trait Store:
    SymbolRepository
    + PriceTickRepository
    + PredictionRepository
    + OutboxRepository
    + NewsRepository
    + DeviceTokenRepository
    + Lease
    + goldjobs_core::JobStore
{
}
impl<T> Store for T where
    T: SymbolRepository
        + PriceTickRepository
        + PredictionRepository
        + OutboxRepository
        + NewsRepository
        + DeviceTokenRepository
        + Lease
        + goldjobs_core::JobStore
{
}

pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// The platform's shape (guide: *The condition object*), keys not in sorted order.
pub const CONDITIONS: &str = r#"{"B": {"condition": "price_change_percent < 0"}, "A": {"condition": "price_change_percent >= 0"}}"#;

pub fn prediction(id: &str, verify_at: i64) -> Prediction {
    Prediction::new_active(
        id,
        "XAUUSD",
        format!("Will gold rise? ({id})"),
        d("2650.00"),
        t(verify_at),
        VerifyRule::Auto,
        Some(CONDITIONS.to_owned()),
        t(0),
    )
}

pub fn vote(pid: &str, uid: &str, option: &str) -> Vote {
    Vote {
        prediction_id: pid.into(),
        user_id: uid.into(),
        selected_option: option.into(),
        is_correct: None,
        created_at: t(1),
    }
}

pub fn verified(pid: &str, correct: &str, at: i64) -> VerificationRecord {
    VerificationRecord {
        prediction_id: pid.into(),
        outcome: VerificationOutcome::Verified(Verdict {
            correct_option: correct.into(),
            price_at_verify: d("2680.00"),
            price_change_percent: Some(d("1.13")),
            price_source: PriceSource::Tick,
            price_at_verify_ts: t(at),
            price_provider: None,
        }),
        verified_at: t(at + 5),
        manual: false,
    }
}

/// The migrations seed the default symbols (what every backend must do is tested by
/// `goldjobs_core::conformance`, run on both stores).
pub async fn migration_seeds_default_symbols(s: &dyn Store) {
    let seeded = s.active_symbols().await.unwrap();
    let mut defaults = Symbol::defaults();
    defaults.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(seeded, defaults);
}

/// A prediction with more voters than one claim takes: its fan-out row expands a page per
/// claim, in user order, each voter exactly once, with hostile text decoded intact; a vote
/// inserted after the verification (never marked) gets no notification; a prediction without
/// voters gets no fan-out row.
pub async fn outbox_fanout_pages(s: &dyn Store) {
    let mut p = prediction("big", 10);
    p.question = "He said \"gold\" \\ 金 ↑\n\t<b>&amp;</b> 💰".into();
    s.insert_prediction(&p).await.unwrap();
    s.insert_prediction(&prediction("lonely", 10))
        .await
        .unwrap();
    let voters: Vec<String> = (0..250).map(|i| format!("u{i:03}\"'\\")).collect();
    let votes: Vec<Vote> = voters
        .iter()
        .enumerate()
        .map(|(i, u)| vote("big", u, if i % 3 == 0 { "B" } else { "A" }))
        .collect();
    s.insert_votes(&votes).await.unwrap();
    let summary = s
        .record_verifications(&[verified("big", "A", 10), verified("lonely", "A", 10)])
        .await
        .unwrap();
    assert_eq!(summary.verified.len(), 2);
    assert_eq!(summary.votes_marked, 250);
    s.insert_votes(&[vote("big", "late-voter", "A")])
        .await
        .unwrap();
    let rows = s.outbox_rows().await.unwrap();
    let kinds: Vec<&str> = rows
        .iter()
        .map(|r| match &r.payload {
            OutboxPayload::PredictionVerified(_)
            | OutboxPayload::PredictionCorrected(_)
            | OutboxPayload::PredictionVoided(_) => "broadcast",
            OutboxPayload::Notify(_) => "notify",
            OutboxPayload::NotifyVoters(_) => "fanout",
        })
        .collect();
    assert_eq!(kinds, ["broadcast", "fanout", "broadcast"]);

    let mut notices = Vec::new();
    let mut claims = 0;
    let mut broadcasts = 0;
    loop {
        let batch = s
            .claim_outbox(t(1000), 100, Duration::from_secs(30))
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        claims += 1;
        assert!(batch.len() <= 100);
        let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        for m in batch {
            match m.payload {
                OutboxPayload::Notify(n) => notices.push(n),
                OutboxPayload::PredictionVerified(_) => broadcasts += 1,
                other => panic!("claim_outbox handed out {other:?}"),
            }
        }
        s.mark_delivered(&ids).await.unwrap();
        assert!(claims < 20, "the outbox does not drain");
    }
    assert_eq!(broadcasts, 2);
    assert!(claims >= 3, "250 notices came in {claims} claims of 100");
    let users: Vec<&str> = notices.iter().map(|n| n.user_id.as_str()).collect();
    let expected: Vec<&str> = voters.iter().map(String::as_str).collect();
    assert_eq!(users, expected, "each voter once, in user order");
    for (i, n) in notices.iter().enumerate() {
        assert_eq!(n.prediction_id, "big");
        assert_eq!(n.question, p.question);
        assert_eq!(n.selected_option, if i % 3 == 0 { "B" } else { "A" });
        assert_eq!(n.is_correct, i % 3 != 0);
    }
    let rows = s.outbox_rows().await.unwrap();
    assert!(rows.iter().all(|r| r.state == OutboxState::Delivered));
    assert_eq!(rows.len(), 3 + 250);
}

/// Many predictions with one voter each: every claim is full until the outbox runs dry (a
/// short claim ends a dispatcher's run, so expanding too little per claim would throttle
/// delivery to one claim per tick).
pub async fn outbox_fanout_small_predictions_fill_claims(s: &dyn Store) {
    let mut records = Vec::new();
    for i in 0..150 {
        let id = format!("small{i:03}");
        s.insert_prediction(&prediction(&id, 10)).await.unwrap();
        s.insert_votes(&[vote(&id, "solo", "A")]).await.unwrap();
        records.push(verified(&id, "A", 10));
    }
    s.record_verifications(&records).await.unwrap();
    let mut sizes = Vec::new();
    let mut notices = std::collections::HashSet::new();
    loop {
        let batch = s
            .claim_outbox(t(1000), 100, Duration::from_secs(30))
            .await
            .unwrap();
        sizes.push(batch.len());
        if batch.is_empty() {
            break;
        }
        for m in batch {
            if let OutboxPayload::Notify(n) = m.payload {
                assert!(notices.insert(n.prediction_id));
            }
        }
        assert!(sizes.len() < 10, "the outbox does not drain: {sizes:?}");
    }
    assert_eq!(notices.len(), 150);
    assert_eq!(sizes, [100, 100, 100, 0], "150 broadcasts + 150 notices");
}

/// Finished rows go by age, oldest first, at most `limit` per call; pending rows (fan-out rows
/// included) stay whatever their age.
pub async fn outbox_retention(s: &dyn Store) {
    s.insert_prediction(&prediction("ret", 10)).await.unwrap();
    s.insert_votes(&[vote("ret", "a", "A"), vote("ret", "b", "B")])
        .await
        .unwrap();
    s.record_verifications(&[verified("ret", "A", 10)])
        .await
        .unwrap();
    // broadcast and fan-out created at t(15); the two notices at the claim, t(100)
    let claimed = s
        .claim_outbox(t(100), 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    s.mark_delivered(&[claimed[0].id, claimed[1].id])
        .await
        .unwrap();
    s.mark_failed(claimed[2].id, "invalid token").await.unwrap();
    s.insert_prediction(&prediction("ret2", 20)).await.unwrap();
    s.insert_votes(&[vote("ret2", "c", "A")]).await.unwrap();
    s.record_verifications(&[verified("ret2", "A", 20)])
        .await
        .unwrap();
    assert_eq!(s.outbox_rows().await.unwrap().len(), 6);

    assert_eq!(s.delete_finished_before(t(1000), 0).await.unwrap(), 0);
    // before t(50): the delivered broadcast and the expanded fan-out row of "ret"
    assert_eq!(s.delete_finished_before(t(50), 10).await.unwrap(), 2);
    assert_eq!(s.delete_finished_before(t(50), 10).await.unwrap(), 0);
    // later: the delivered and the failed notice, one per call with limit 1
    assert_eq!(s.delete_finished_before(t(1000), 1).await.unwrap(), 1);
    assert_eq!(s.delete_finished_before(t(1000), 10).await.unwrap(), 1);
    assert_eq!(s.delete_finished_before(t(100_000), 10).await.unwrap(), 0);
    let left = s.outbox_rows().await.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|r| r.state == OutboxState::Pending));
}

/// Seeds `n` due predictions (verify_time = base + i) with random votes of `users` users;
/// returns the verification records in verify_time order.
pub async fn seed_random(
    s: &dyn Store,
    prefix: &str,
    base: i64,
    n: usize,
    users: usize,
    seed: u64,
) -> Vec<VerificationRecord> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut records = Vec::with_capacity(n);
    let mut votes = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}{i:04}");
        s.insert_prediction(&prediction(&id, base + i as i64))
            .await
            .unwrap();
        for u in 0..users {
            if rng.gen_bool(0.8) {
                let opt = if rng.gen_bool(0.5) { "A" } else { "B" };
                votes.push(vote(&id, &format!("user{u}"), opt));
            }
        }
        let correct = if rng.gen_bool(0.6) { "A" } else { "B" };
        records.push(verified(&id, correct, base + i as i64));
    }
    s.insert_votes(&votes).await.unwrap();
    records
}

/// The stats that the guide's *What a verdict records* gives when `records` (already recorded)
/// apply one by one in verify_time order, recomputed from the stored votes.
pub async fn expected_stats(
    s: &dyn Store,
    records: &[VerificationRecord],
) -> HashMap<String, (i64, i64, Decimal, i64, i64)> {
    let mut ordered: Vec<&VerificationRecord> = records.iter().collect();
    ordered.sort_by_key(|r| match &r.outcome {
        VerificationOutcome::Verified(v) => v.price_at_verify_ts,
        VerificationOutcome::NeedsReview { .. } => r.verified_at,
    });
    let mut stats: HashMap<String, (i64, i64, Decimal, i64, i64)> = HashMap::new();
    for r in ordered {
        let VerificationOutcome::Verified(v) = &r.outcome else {
            continue;
        };
        for vote in s.votes_for(&r.prediction_id).await.unwrap() {
            let e = stats
                .entry(vote.user_id.clone())
                .or_insert((0, 0, Decimal::ZERO, 0, 0));
            let ok = vote.selected_option == v.correct_option;
            assert_eq!(vote.is_correct, Some(ok));
            e.0 += 1;
            if ok {
                e.1 += 1;
                e.3 += 1;
                e.4 = e.4.max(e.3);
            } else {
                e.3 = 0;
            }
            e.2 = (Decimal::from(e.1) * Decimal::ONE_HUNDRED / Decimal::from(e.0))
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        }
    }
    stats
}

/// Stored stats in the shape of [`expected_stats`].
pub async fn stored_stats(
    s: &dyn Store,
    users: usize,
) -> HashMap<String, (i64, i64, Decimal, i64, i64)> {
    let ids: Vec<String> = (0..users).map(|u| format!("user{u}")).collect();
    s.user_stats(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.user_id,
                (
                    s.total_participations,
                    s.correct_count,
                    s.accuracy_rate,
                    s.current_streak,
                    s.max_streak,
                ),
            )
        })
        .collect()
}

/// A failure in the middle of `record_verifications` leaves no partial verification.
/// `break_outbox` makes inserts into `outbox` fail; `fix_outbox` undoes it.
pub async fn crash_leaves_nothing<B, F>(s: &dyn Store, break_outbox: B, fix_outbox: F)
where
    B: std::future::Future<Output = ()>,
    F: std::future::Future<Output = ()>,
{
    let records = seed_random(s, "x", 0, 5, 4, 7).await;
    break_outbox.await;
    let err = s.record_verifications(&records).await.unwrap_err();
    assert!(
        !err.to_string().to_lowercase().contains("insert into"),
        "{err}"
    );
    for r in &records {
        let p = s.get_prediction(&r.prediction_id).await.unwrap().unwrap();
        assert_eq!(p.status, PredictionStatus::Active);
        assert_eq!(p.correct_option, None);
        assert!(s
            .votes_for(&r.prediction_id)
            .await
            .unwrap()
            .iter()
            .all(|v| v.is_correct.is_none()));
    }
    assert!(stored_stats(s, 4).await.is_empty());
    assert!(s.outbox_rows().await.unwrap().is_empty());

    fix_outbox.await;
    let summary = s.record_verifications(&records).await.unwrap();
    assert_eq!(summary.verified.len(), 5);
    assert_eq!(stored_stats(s, 4).await, expected_stats(s, &records).await);
}

/// A market data provider without history (the verifier here only needs ticks).
struct NoHistory;

#[async_trait::async_trait]
impl goldjobs_core::MarketData for NoHistory {
    fn name(&self) -> &'static str {
        "none"
    }
    async fn quotes(
        &self,
        _symbols: &[Symbol],
    ) -> goldjobs_core::Result<goldjobs_core::QuoteBatch> {
        Ok(goldjobs_core::QuoteBatch::default())
    }
    async fn price_at(
        &self,
        _symbol: &Symbol,
        _at: DateTime<Utc>,
    ) -> goldjobs_core::Result<Option<goldjobs_core::PricePoint>> {
        Ok(None)
    }
}

/// The real `PredictionVerifierJob` of goldjobs-core on this store: a due prediction with a
/// tick is verified from it (votes, stats, outbox), one without a tick yet stays active and
/// claimable.
pub async fn verifier_job_end_to_end<S: Store + 'static>(s: std::sync::Arc<S>) {
    use goldjobs_core::jobs::PredictionVerifierJob;
    use goldjobs_core::runtime::{Job, JobContext};
    use goldjobs_core::ManualClock;
    // The platform's shape, with an extra key the verifier ignores.
    let conditions = r#"{"UP": {"condition": "price_change_percent > 0", "label": "up"}, "DOWN": {"condition": "price_change_percent <= 0"}}"#;
    let mut p1 = prediction("e1", 100);
    p1.auto_verify_conditions = Some(conditions.into());
    let mut p2 = prediction("e2", 120);
    p2.auto_verify_conditions = Some(conditions.into());
    s.insert_prediction(&p1).await.unwrap();
    s.insert_prediction(&p2).await.unwrap();
    s.insert_votes(&[vote("e1", "u1", "UP"), vote("e1", "u2", "DOWN")])
        .await
        .unwrap();
    s.insert_ticks(&[
        PriceTick {
            symbol_code: "XAUUSD".into(),
            price: d("2640.00"),
            ts: t(99),
            source: None,
        },
        PriceTick {
            symbol_code: "XAUUSD".into(),
            price: d("2680.00"),
            ts: t(110),
            source: None,
        },
    ])
    .await
    .unwrap();

    let job = PredictionVerifierJob::new(
        &goldjobs_core::Ports::of(s.clone()),
        std::sync::Arc::new(NoHistory),
    );
    let ctx = JobContext {
        cancel: tokio_util::sync::CancellationToken::new(),
        clock: std::sync::Arc::new(ManualClock::new(t(160))),
        attempt: 1,
    };
    job.run(&ctx).await.unwrap();

    let e1 = s.get_prediction("e1").await.unwrap().unwrap();
    assert_eq!(e1.status, PredictionStatus::Ended);
    assert_eq!(e1.correct_option.as_deref(), Some("UP"));
    assert_eq!(e1.price_at_verify, Some(d("2680.00")));
    // (2680 − 2650) / 2650 × 100 = 1.1320.. → 1.13
    assert_eq!(e1.price_change_percent, Some(d("1.13")));
    assert_eq!(e1.price_source, Some(PriceSource::Tick));
    assert_eq!(e1.price_at_verify_ts, Some(t(110)));
    let stats = s.user_stats(&["u1".into(), "u2".into()]).await.unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!((stats[0].correct_count, stats[0].current_streak), (1, 1));
    assert_eq!((stats[1].correct_count, stats[1].current_streak), (0, 0));
    // e1's broadcast and the fan-out row of its two voters
    assert_eq!(s.outbox_rows().await.unwrap().len(), 2);

    // no tick at or after e2's verify_time yet: still active, and its claim was given back
    let e2 = s.get_prediction("e2").await.unwrap().unwrap();
    assert_eq!(e2.status, PredictionStatus::Active);
    let again = s
        .claim_due(t(161), 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, "e2");
}

/// `RetentionJob` on a real store: old ticks and old finished outbox rows go, in batches;
/// recent ticks, the latest tick of every symbol that has recent ones, and pending rows stay.
pub async fn retention_job_end_to_end<S: Store + 'static>(s: std::sync::Arc<S>) {
    use goldjobs_core::jobs::{RetentionConfig, RetentionJob};
    use goldjobs_core::runtime::{Job, JobContext};
    use goldjobs_core::ManualClock;
    // 25 old ticks (t(0)..t(24)) and 3 recent ones (days later)
    let day = 24 * 3600;
    let mut ticks: Vec<PriceTick> = (0..25)
        .map(|i| PriceTick {
            symbol_code: "XAUUSD".into(),
            price: d("2650.00"),
            ts: t(i),
            source: None,
        })
        .collect();
    ticks.extend((0..3).map(|i| PriceTick {
        symbol_code: "XAUUSD".into(),
        price: d("2700.00"),
        ts: t(10 * day + i),
        source: None,
    }));
    s.insert_ticks(&ticks).await.unwrap();
    // a delivered broadcast created at t(15), and a pending one created at t(25)
    s.insert_prediction(&prediction("delivered-old", 10))
        .await
        .unwrap();
    s.insert_prediction(&prediction("still-pending", 20))
        .await
        .unwrap();
    s.record_verifications(&[verified("delivered-old", "A", 10)])
        .await
        .unwrap();
    let first = s
        .claim_outbox(t(16), 10, Duration::from_secs(30))
        .await
        .unwrap();
    s.mark_delivered(&[first[0].id]).await.unwrap();
    s.record_verifications(&[verified("still-pending", "A", 20)])
        .await
        .unwrap();

    let job = RetentionJob::new(&goldjobs_core::Ports::of(s.clone())).with_config(
        RetentionConfig::default()
            .with_tick_retention(Some(Duration::from_secs(5 * day as u64)))
            .with_outbox_retention(Some(Duration::from_secs(day as u64)))
            .with_batch(10),
    );
    let ctx = JobContext {
        cancel: tokio_util::sync::CancellationToken::new(),
        clock: std::sync::Arc::new(ManualClock::new(t(10 * day + 100))),
        attempt: 1,
    };
    let report = job.run(&ctx).await.unwrap();
    assert_eq!(
        report.summary,
        "25 ticks, 1 finished outbox rows and 0 old job runs deleted"
    );
    let latest = s.latest_tick("XAUUSD").await.unwrap().unwrap();
    assert_eq!(latest.ts, t(10 * day + 2));
    assert_eq!(
        s.delete_ticks_before(t(10 * day), 100).await.unwrap(),
        0,
        "nothing old is left"
    );
    let rows = s.outbox_rows().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, OutboxState::Pending);
    // a second run finds nothing more
    let again = job.run(&ctx).await.unwrap();
    assert_eq!(
        again.summary,
        "0 ticks, 0 finished outbox rows and 0 old job runs deleted"
    );
}

/// A random step of a verification history (see `conformance::predictions::random_history`).
fn step() -> impl proptest::strategy::Strategy<Value = goldjobs_core::conformance::predictions::Step>
{
    use goldjobs_core::conformance::predictions::Step;
    use proptest::prelude::*;
    prop_oneof![
        3 => any::<u8>().prop_map(|option| Step::Verify { option }),
        2 => (any::<u8>(), any::<u8>())
            .prop_map(|(which, option)| Step::VerifyAny { which, option }),
        2 => (any::<u8>(), any::<u8>(), proptest::option::of(0u8..3)).prop_map(
            |(prediction, option, price)| Step::Correct { prediction, option, price }
        ),
        1 => any::<u8>().prop_map(|prediction| Step::Void { prediction }),
    ]
}

/// `cases` random histories of verifications, corrections and voids over a few users and
/// predictions (proptest strategies, run without shrinking: the test is async); after every
/// step the stored statistics equal a plain recomputation from the votes.
pub async fn random_histories(s: &dyn Store, cases: u32) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};
    let strategy = (
        1usize..5,
        1usize..7,
        proptest::collection::vec((0u8..5, 0u8..7, 0u8..3), 0..30),
        proptest::collection::vec(step(), 0..30),
    );
    let mut runner = TestRunner::new(Config::with_cases(cases));
    for case in 0..cases {
        let (users, predictions, votes, steps) = strategy.new_tree(&mut runner).unwrap().current();
        let input = format!("case {case}: {users} users, {predictions} predictions, votes {votes:?}, steps {steps:?}");
        let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
            goldjobs_core::conformance::predictions::random_history(
                s,
                s,
                users,
                predictions,
                &votes,
                &steps,
            ),
        ))
        .await;
        if let Err(panic) = outcome {
            eprintln!("failing input: {input}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// A job that counts its runs.
struct Counting {
    schedule: goldjobs_core::runtime::Schedule,
    runs: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl goldjobs_core::runtime::Job for Counting {
    fn name(&self) -> &str {
        "SqlCatchUpJob"
    }

    fn schedule(&self) -> goldjobs_core::runtime::Schedule {
        self.schedule.clone()
    }

    async fn run(
        &self,
        _ctx: &goldjobs_core::runtime::JobContext,
    ) -> goldjobs_core::Result<goldjobs_core::runtime::RunReport> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(goldjobs_core::runtime::RunReport::ok("counted"))
    }
}

/// The schedule state, pause flag and run history of the job runtime live in the database:
/// every instance is stopped across three instants of a 2 s job with the `once` policy, and the
/// next start runs exactly one catch-up at once (then waits for the next instant); a pause
/// written by one manager stops the scheduled runs of the next one; the history lists the runs
/// of both managers.
pub async fn job_runtime_state_survives_a_restart<S: Store + 'static>(s: std::sync::Arc<S>) {
    use goldjobs_core::runtime::{JobManager, MissedTickPolicy, Schedule};
    use std::sync::atomic::Ordering;
    let ports = goldjobs_core::Ports::of(s.clone());
    let manager = |id: &str| {
        JobManager::new(
            std::sync::Arc::new(goldjobs_core::SystemClock),
            ports.lease.clone(),
            id,
        )
        .with_store(ports.jobs.clone())
        // a takeover takes up to 0.4 s: an instant later than that is missed
        .with_lease_ttl(Duration::from_millis(300))
    };
    let job = std::sync::Arc::new(Counting {
        schedule: Schedule::every(Duration::from_secs(2)).with_missed(MissedTickPolicy::Once),
        runs: Default::default(),
    });
    let a = manager("sql-a");
    a.register(job.clone()).unwrap();
    a.start_all();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(a.stop_all(Duration::from_secs(5)).await.all_stopped());
    assert_eq!(
        job.runs.load(Ordering::SeqCst),
        1,
        "a ran its first instant"
    );

    // down across the instants at 2, 4 and 6 s; up again at 7 s
    tokio::time::sleep(Duration::from_millis(6_800)).await;
    let b = manager("sql-b");
    b.register(job.clone()).unwrap();
    b.start_all();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        job.runs.load(Ordering::SeqCst),
        2,
        "exactly one catch-up at the start, nothing else before the next instant"
    );
    let status = b.job_status("SqlCatchUpJob").unwrap();
    assert_eq!(status.missed_ticks, 2, "{status:?}");
    b.pause("SqlCatchUpJob").await.unwrap();
    assert!(b.stop_all(Duration::from_secs(5)).await.all_stopped());

    let c = manager("sql-c");
    c.register(job.clone()).unwrap();
    c.start_all();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        c.job_status("SqlCatchUpJob").unwrap().paused,
        "the pause is kept"
    );
    assert_eq!(
        job.runs.load(Ordering::SeqCst),
        2,
        "a paused job does not run"
    );
    let runs = c.runs("SqlCatchUpJob", 10).await.unwrap();
    let instances: Vec<&str> = runs.iter().map(|r| r.instance.as_str()).collect();
    assert_eq!(instances, vec!["sql-b", "sql-a"], "newest first: {runs:?}");
    assert!(runs.iter().all(|r| r.summary.as_deref() == Some("counted")));
    c.resume("SqlCatchUpJob").await.unwrap();
    assert!(c.stop_all(Duration::from_secs(5)).await.all_stopped());
}
