//! Set-based `record_verifications` against a row-at-a-time baseline, on PostgreSQL and SQLite,
//! in the same process.
//!
//! ```text
//! GOLDJOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p goldjobs-adapters --example verify_sql_bench
//! ```
//!
//! Seeds `BENCH_PREDICTIONS` (10000) due predictions with `BENCH_VOTES` (100) votes each from
//! `BENCH_USERS` (1000) users, records them with `record_verifications` in batches of
//! `BENCH_BATCH` (1000) predictions, and compares with the loop the first version of the
//! platform ran (per prediction one transaction: update it, read its votes, one UPDATE per
//! vote, one SELECT + upsert per voter, one outbox INSERT per row) on `BENCH_BASELINE`
//! (300) further predictions. Prints votes per second. Then drains the outbox the set-based
//! run wrote (claim and mark delivered, as a dispatcher with a no-op notifier would; on the SQL
//! stores this expands the per-prediction `notify_voters` rows into per-voter rows) and prints
//! voter notices per second, so the work moved out of the verification is measured too.
//! PostgreSQL runs in a schema of its own, dropped at the end; SQLite in a temporary file. Without a PostgreSQL URL only SQLite runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use goldjobs_adapters::sql::{PgStore, SqliteStore};
use goldjobs_core::verify::apply_result;
use goldjobs_core::{
    OutboxPayload, OutboxRepository, Prediction, PredictionRepository, PredictionVerified,
    PriceSource, UserStats, Verdict, VerificationOutcome, VerificationRecord, VerifyRule, Vote,
    VoterNotice,
};
use rust_decimal::Decimal;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, Row};
use std::time::Instant;

struct Params {
    predictions: usize,
    votes: usize,
    users: usize,
    batch: usize,
    baseline: usize,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn correct_of(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "A"
    } else {
        "B"
    }
}

/// Predictions `prefix0..prefixN` with their votes and verification records.
async fn seed(
    store: &dyn PredictionRepository,
    prefix: &str,
    n: usize,
    p: &Params,
) -> Vec<VerificationRecord> {
    let t0 = base_time();
    let mut records = Vec::with_capacity(n);
    let mut votes: Vec<Vote> = Vec::with_capacity(50_000);
    for i in 0..n {
        let id = format!("{prefix}{i:06}");
        let verify_time = t0 + ChronoDuration::seconds(i as i64);
        store
            .insert_prediction(&Prediction::new_active(
                id.clone(),
                "XAUUSD",
                "Will gold close above 2700?",
                Decimal::new(265000, 2),
                verify_time,
                VerifyRule::Auto,
                Some(
                    r#"{"A": {"condition": "price_change_percent >= 0"}, "B": {"condition": "price_change_percent < 0"}}"#.into(),
                ),
                t0,
            ))
            .await
            .unwrap();
        for j in 0..p.votes {
            votes.push(Vote {
                prediction_id: id.clone(),
                user_id: format!("{prefix}user{}", (i * 37 + j) % p.users),
                selected_option: if (i + j) % 3 == 0 { "B" } else { "A" }.into(),
                is_correct: None,
                created_at: t0,
            });
        }
        if votes.len() >= 50_000 {
            store.insert_votes(&votes).await.unwrap();
            votes.clear();
        }
        records.push(VerificationRecord {
            prediction_id: id,
            outcome: VerificationOutcome::Verified(Verdict {
                correct_option: correct_of(i).into(),
                price_at_verify: Decimal::new(268000, 2),
                price_change_percent: Some(Decimal::new(113, 2)),
                price_source: PriceSource::Tick,
                price_at_verify_ts: verify_time,
                price_provider: None,
            }),
            verified_at: verify_time + ChronoDuration::seconds(5),
            manual: false,
        });
    }
    store.insert_votes(&votes).await.unwrap();
    records
}

async fn set_based(
    store: &dyn PredictionRepository,
    records: &[VerificationRecord],
    batch: usize,
) -> u64 {
    let mut votes = 0;
    for chunk in records.chunks(batch.max(1)) {
        votes += store
            .record_verifications(chunk)
            .await
            .unwrap()
            .votes_marked;
    }
    votes
}

/// Deliver (claim and mark delivered, as a dispatcher with a no-op notifier would) every
/// pending outbox row; returns how many voter notices came out. On the SQL stores this includes
/// expanding the `notify_voters` rows the verification wrote into per-voter rows.
async fn drain(outbox: &dyn OutboxRepository) -> u64 {
    let now = Utc::now();
    let mut notices = 0;
    loop {
        let batch = outbox
            .claim_outbox(now, 500, std::time::Duration::from_secs(600))
            .await
            .unwrap();
        if batch.is_empty() {
            return notices;
        }
        notices += batch
            .iter()
            .filter(|m| matches!(m.payload, OutboxPayload::Notify(_)))
            .count() as u64;
        let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        outbox.mark_delivered(&ids).await.unwrap();
    }
}

fn verified_json(id: &str, v: &Verdict) -> String {
    serde_json::to_string(&OutboxPayload::PredictionVerified(PredictionVerified {
        prediction_id: id.into(),
        symbol_code: "XAUUSD".into(),
        correct_option: v.correct_option.clone(),
        price_at_verify: v.price_at_verify,
        price_change_percent: v.price_change_percent,
        price_source: v.price_source,
        price_at_verify_ts: v.price_at_verify_ts,
    }))
    .unwrap()
}

fn notice_json(uid: &str, pid: &str, option: &str, ok: bool) -> String {
    serde_json::to_string(&OutboxPayload::Notify(VoterNotice::verified(
        uid,
        pid,
        "Will gold close above 2700?",
        option,
        ok,
    )))
    .unwrap()
}

/// The row-at-a-time loop on PostgreSQL.
async fn baseline_pg(pool: &sqlx::PgPool, records: &[VerificationRecord]) -> u64 {
    let mut marked = 0;
    for r in records {
        let VerificationOutcome::Verified(v) = &r.outcome else {
            continue;
        };
        let mut tx = pool.begin().await.unwrap();
        let done = sqlx::query(
            "UPDATE predictions SET status = 'ended', price_at_verify = $2, correct_option = $3, \
             price_change_percent = $4, price_source = $5, price_at_verify_ts = $6, verified_at = $7 \
             WHERE id = $1 AND status = 'active'",
        )
        .bind(&r.prediction_id)
        .bind(v.price_at_verify)
        .bind(&v.correct_option)
        .bind(v.price_change_percent)
        .bind(v.price_source.as_str())
        .bind(v.price_at_verify_ts)
        .bind(r.verified_at)
        .execute(&mut *tx)
        .await
        .unwrap();
        if done.rows_affected() == 0 {
            continue;
        }
        let votes = sqlx::query(
            "SELECT user_id, selected_option FROM prediction_votes WHERE prediction_id = $1",
        )
        .bind(&r.prediction_id)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO outbox (kind, payload, next_attempt_at) VALUES ('prediction_verified', $1, $2)",
        )
        .bind(verified_json(&r.prediction_id, v))
        .bind(r.verified_at)
        .execute(&mut *tx)
        .await
        .unwrap();
        for row in votes {
            let uid: String = row.get(0);
            let option: String = row.get(1);
            let ok = option == v.correct_option;
            sqlx::query(
                "UPDATE prediction_votes SET is_correct = $3 WHERE prediction_id = $1 AND user_id = $2",
            )
            .bind(&r.prediction_id)
            .bind(&uid)
            .bind(ok)
            .execute(&mut *tx)
            .await
            .unwrap();
            marked += 1;
            let old = sqlx::query(
                "SELECT total_participations, correct_count, current_streak, max_streak \
                 FROM user_prediction_stats WHERE user_id = $1 FOR UPDATE",
            )
            .bind(&uid)
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
            let mut s = UserStats::empty(uid.clone(), r.verified_at);
            if let Some(old) = old {
                s.total_participations = old.get(0);
                s.correct_count = old.get(1);
                s.current_streak = old.get(2);
                s.max_streak = old.get(3);
            }
            apply_result(&mut s, ok, r.verified_at);
            sqlx::query(
                "INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
                 accuracy_rate, current_streak, max_streak, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (user_id) DO UPDATE SET total_participations = EXCLUDED.total_participations, \
                 correct_count = EXCLUDED.correct_count, accuracy_rate = EXCLUDED.accuracy_rate, \
                 current_streak = EXCLUDED.current_streak, max_streak = EXCLUDED.max_streak, \
                 updated_at = EXCLUDED.updated_at",
            )
            .bind(&s.user_id)
            .bind(s.total_participations)
            .bind(s.correct_count)
            .bind(s.accuracy_rate)
            .bind(s.current_streak)
            .bind(s.max_streak)
            .bind(s.updated_at)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO outbox (kind, payload, next_attempt_at) VALUES ('notify', $1, $2)",
            )
            .bind(notice_json(&uid, &r.prediction_id, &option, ok))
            .bind(r.verified_at)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    marked
}

fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The row-at-a-time loop on SQLite.
async fn baseline_sqlite(pool: &sqlx::SqlitePool, records: &[VerificationRecord]) -> u64 {
    let mut marked = 0;
    for r in records {
        let VerificationOutcome::Verified(v) = &r.outcome else {
            continue;
        };
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let done = sqlx::query(
            "UPDATE predictions SET status = 'ended', price_at_verify = ?2, correct_option = ?3, \
             price_change_percent = ?4, price_source = ?5, price_at_verify_ts = ?6, verified_at = ?7 \
             WHERE id = ?1 AND status = 'active'",
        )
        .bind(&r.prediction_id)
        .bind(v.price_at_verify.to_string())
        .bind(&v.correct_option)
        .bind(v.price_change_percent.map(|p| p.to_string()))
        .bind(v.price_source.as_str())
        .bind(ts(v.price_at_verify_ts))
        .bind(ts(r.verified_at))
        .execute(&mut *tx)
        .await
        .unwrap();
        if done.rows_affected() == 0 {
            continue;
        }
        let votes = sqlx::query(
            "SELECT user_id, selected_option FROM prediction_votes WHERE prediction_id = ?1",
        )
        .bind(&r.prediction_id)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO outbox (kind, payload, next_attempt_at, created_at) \
             VALUES ('prediction_verified', ?1, ?2, ?2)",
        )
        .bind(verified_json(&r.prediction_id, v))
        .bind(ts(r.verified_at))
        .execute(&mut *tx)
        .await
        .unwrap();
        for row in votes {
            let uid: String = row.get(0);
            let option: String = row.get(1);
            let ok = option == v.correct_option;
            sqlx::query(
                "UPDATE prediction_votes SET is_correct = ?3 WHERE prediction_id = ?1 AND user_id = ?2",
            )
            .bind(&r.prediction_id)
            .bind(&uid)
            .bind(ok)
            .execute(&mut *tx)
            .await
            .unwrap();
            marked += 1;
            let old = sqlx::query(
                "SELECT total_participations, correct_count, current_streak, max_streak \
                 FROM user_prediction_stats WHERE user_id = ?1",
            )
            .bind(&uid)
            .fetch_optional(&mut *tx)
            .await
            .unwrap();
            let mut s = UserStats::empty(uid.clone(), r.verified_at);
            if let Some(old) = old {
                s.total_participations = old.get(0);
                s.correct_count = old.get(1);
                s.current_streak = old.get(2);
                s.max_streak = old.get(3);
            }
            apply_result(&mut s, ok, r.verified_at);
            sqlx::query(
                "INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
                 accuracy_rate, current_streak, max_streak, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (user_id) DO UPDATE SET total_participations = excluded.total_participations, \
                 correct_count = excluded.correct_count, accuracy_rate = excluded.accuracy_rate, \
                 current_streak = excluded.current_streak, max_streak = excluded.max_streak, \
                 updated_at = excluded.updated_at",
            )
            .bind(&s.user_id)
            .bind(s.total_participations)
            .bind(s.correct_count)
            .bind(s.accuracy_rate.to_string())
            .bind(s.current_streak)
            .bind(s.max_streak)
            .bind(ts(s.updated_at))
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO outbox (kind, payload, next_attempt_at, created_at) \
                 VALUES ('notify', ?1, ?2, ?2)",
            )
            .bind(notice_json(&uid, &r.prediction_id, &option, ok))
            .bind(ts(r.verified_at))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    marked
}

fn report(backend: &str, method: &str, predictions: usize, votes: u64, started: Instant) -> f64 {
    let secs = started.elapsed().as_secs_f64();
    let rate = votes as f64 / secs;
    println!("{backend:<9} {method:<14} {predictions:>11} {votes:>9} {secs:>9.2} {rate:>12.0}");
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let p = Params {
        predictions: env_usize("BENCH_PREDICTIONS", 10_000),
        votes: env_usize("BENCH_VOTES", 100),
        users: env_usize("BENCH_USERS", 1000),
        batch: env_usize("BENCH_BATCH", 1000),
        baseline: env_usize("BENCH_BASELINE", 300),
    };
    assert!(p.users >= p.votes, "BENCH_USERS must be >= BENCH_VOTES");
    println!(
        "{} predictions x {} votes ({} users), batches of {}; baseline on {} predictions",
        p.predictions, p.votes, p.users, p.batch, p.baseline
    );
    println!(
        "{:<9} {:<14} {:>11} {:>9} {:>9} {:>12}",
        "backend", "method", "predictions", "votes", "seconds", "votes/s"
    );

    // SQLite, temporary file
    {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let records = seed(&store, "s", p.predictions, &p).await;
        let base = seed(&store, "b", p.baseline, &p).await;
        let started = Instant::now();
        let votes = set_based(&store, &records, p.batch).await;
        let fast = report("sqlite", "set-based", p.predictions, votes, started);
        let started = Instant::now();
        let notices = drain(&store).await;
        report("sqlite", "outbox drain", p.predictions, notices, started);
        let started = Instant::now();
        let votes = baseline_sqlite(store.pool(), &base).await;
        let slow = report("sqlite", "row-at-a-time", p.baseline, votes, started);
        println!("sqlite: set-based is {:.1}x the baseline", fast / slow);
    }

    // PostgreSQL, schema of its own
    let url = std::env::var("GOLDJOBS_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("GOLDJOBS_TEST_DATABASE_URL"));
    let Ok(url) = url else {
        println!("postgres: skipped (set GOLDJOBS_TEST_DATABASE_URL)");
        return;
    };
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let schema = format!("bench_{:016x}", rand::random::<u64>());
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let path = schema.clone();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .after_connect(move |conn, _| {
            let sql = format!("SET search_path TO {path}");
            Box::pin(async move {
                conn.execute(sql.as_str()).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    let store = PgStore::new(pool.clone());
    store.migrate().await.unwrap();
    let records = seed(&store, "s", p.predictions, &p).await;
    let base = seed(&store, "b", p.baseline, &p).await;
    let started = Instant::now();
    let votes = set_based(&store, &records, p.batch).await;
    let fast = report("postgres", "set-based", p.predictions, votes, started);
    let started = Instant::now();
    let notices = drain(&store).await;
    report("postgres", "outbox drain", p.predictions, notices, started);
    let started = Instant::now();
    let votes = baseline_pg(&pool, &base).await;
    let slow = report("postgres", "row-at-a-time", p.baseline, votes, started);
    println!("postgres: set-based is {:.1}x the baseline", fast / slow);
    pool.close().await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
}
