//! A correction touching many voters on PostgreSQL: `record_correction` (one set-based
//! recomputation of every voter's statistics from all of the voter's verified votes) against
//! recomputing the same users one at a time (one statement per user), in the same process.
//!
//! ```text
//! GOLDJOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p goldjobs-adapters --no-default-features --features postgres,sqlite \
//!   --example revision_sql_bench
//! ```
//!
//! Seeds `BENCH_USERS` (10,000) users who each voted on every one of `BENCH_HISTORY` (100)
//! ended predictions (1,000,000 verified votes) with SQL `generate_series`, builds their
//! statistics with `recompute_stats` (timed: a full recompute), then corrects the last
//! prediction `BENCH_REPS` (3) times (flipping its answer; every correction touches all users),
//! and runs the baseline as often: the same correction's prediction and vote updates, then per
//! user one `UPDATE … FROM (that user's recomputation)` in one transaction. Prints the time per
//! correction and the users recomputed per second. Runs in a schema of its own, dropped at the
//! end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use goldjobs_adapters::sql::PgStore;
use goldjobs_core::{Correction, PredictionRepository, RecomputeMode};
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The baseline's statement: one user's statistics recomputed from the user's verified votes
/// (the same rules; the window runs over one user's 100 votes).
const ONE_USER: &str = "WITH ordered AS ( \
        SELECT v.is_correct AS ok, p.verify_time, p.id, \
               row_number() OVER (ORDER BY p.verify_time, p.id) AS rn \
        FROM prediction_votes AS v JOIN predictions AS p ON p.id = v.prediction_id \
        WHERE v.user_id = $1 AND v.is_correct IS NOT NULL AND p.status = 'ended'), \
    gaps AS (SELECT ok, rn, COALESCE(max(CASE WHEN NOT ok THEN rn END) OVER (ORDER BY \
                 verify_time, id ROWS UNBOUNDED PRECEDING), 0) AS last_miss FROM ordered), \
    agg AS (SELECT COALESCE(max(rn), 0)::bigint AS total, \
                   count(*) FILTER (WHERE ok)::bigint AS correct, \
                   COALESCE(max(rn - last_miss) FILTER (WHERE ok), 0)::bigint AS best, \
                   COALESCE(max(rn) - max(last_miss), 0)::bigint AS cur FROM gaps) \
    UPDATE user_prediction_stats AS s SET total_participations = a.total, \
        correct_count = a.correct, \
        accuracy_rate = CASE WHEN a.total = 0 THEN 0 \
                             ELSE ROUND(a.correct::numeric * 100 / a.total, 2) END, \
        current_streak = a.cur, max_streak = a.best, updated_at = $2 \
    FROM agg AS a WHERE s.user_id = $1";

#[tokio::main]
async fn main() {
    let users = env_usize("BENCH_USERS", 10_000);
    let history = env_usize("BENCH_HISTORY", 100);
    let reps = env_usize("BENCH_REPS", 3);
    let Ok(url) = std::env::var("GOLDJOBS_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("GOLDJOBS_TEST_DATABASE_URL"))
    else {
        eprintln!("set GOLDJOBS_TEST_DATABASE_URL (or GOLDJOBS_BENCH_DATABASE_URL)");
        return;
    };
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("PostgreSQL");
    let schema = format!("bench_{:016x}", rand::random::<u64>());
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let path = schema.clone();
    let pool = PgPoolOptions::new()
        .max_connections(2)
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

    let t = Instant::now();
    sqlx::query(
        "INSERT INTO predictions (id, symbol_code, question, price_at_create, price_at_verify, \
         price_change_percent, verify_time, verify_rule, correct_option, status, price_source, \
         price_at_verify_ts, verified_at, created_at) \
         SELECT 'bp' || lpad(i::text, 4, '0'), 'XAUUSD', 'Gold up?', 2650, 2660, 0.38, \
                $1::timestamptz + i * interval '1 minute', 'manual', \
                CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END, 'ended', 'manual', \
                $1::timestamptz + i * interval '1 minute', $1::timestamptz, $1::timestamptz \
         FROM generate_series(0, $2 - 1) AS i",
    )
    .bind(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
    .bind(history as i64)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO prediction_votes (prediction_id, user_id, selected_option, is_correct, \
                                       created_at) \
         SELECT 'bp' || lpad(p::text, 4, '0'), 'bu' || lpad(u::text, 6, '0'), \
                CASE WHEN (p * 7 + u * 13) % 3 = 0 THEN 'B' ELSE 'A' END, \
                (CASE WHEN (p * 7 + u * 13) % 3 = 0 THEN 'B' ELSE 'A' END) \
                    = (CASE WHEN p % 2 = 0 THEN 'A' ELSE 'B' END), now() \
         FROM generate_series(0, $1 - 1) AS p, generate_series(0, $2 - 1) AS u",
    )
    .bind(history as i64)
    .bind(users as i64)
    .execute(&pool)
    .await
    .unwrap();
    pool.execute("ANALYZE").await.unwrap();
    println!(
        "seeded {users} users × {history} verified votes ({} votes) in {:.1} s",
        users * history,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let fixed = store
        .recompute_stats(RecomputeMode::Fix, Utc::now())
        .await
        .unwrap();
    let full = t.elapsed();
    assert_eq!(fixed.len(), users);
    println!(
        "recompute_stats (fix, every user from nothing): {:.2} s, {:.0} users/s",
        full.as_secs_f64(),
        users as f64 / full.as_secs_f64()
    );
    let t = Instant::now();
    let diffs = store
        .recompute_stats(RecomputeMode::Check, Utc::now())
        .await
        .unwrap();
    assert!(diffs.is_empty());
    println!(
        "recompute_stats (check, clean): {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let target = format!("bp{:04}", history - 1);
    let mut option = if (history - 1).is_multiple_of(2) {
        "A"
    } else {
        "B"
    };
    let flip = |o: &str| if o == "A" { "B" } else { "A" };
    let mut set_based = Vec::new();
    let mut baseline = Vec::new();
    for rep in 0..reps {
        // A/B alternation: set-based, then baseline, so load changes hit both
        option = flip(option);
        let t = Instant::now();
        let rev = store
            .record_correction(&Correction {
                prediction_id: target.clone(),
                correct_option: option.into(),
                price: None,
                corrected_at: Utc::now(),
            })
            .await
            .unwrap();
        set_based.push(t.elapsed());
        assert_eq!(rev.users_recomputed as usize, users, "rep {rep}");

        option = flip(option);
        let t = Instant::now();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("UPDATE predictions SET correct_option = $2 WHERE id = $1")
            .bind(&target)
            .bind(option)
            .execute(&mut *tx)
            .await
            .unwrap();
        let voters: Vec<String> = sqlx::query_scalar(
            "UPDATE prediction_votes SET is_correct = (selected_option = $2) \
             WHERE prediction_id = $1 RETURNING user_id",
        )
        .bind(&target)
        .bind(option)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        let now = Utc::now();
        let mut voters = voters;
        voters.sort();
        for user in &voters {
            sqlx::query(ONE_USER)
                .bind(user)
                .bind(now)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        baseline.push(t.elapsed());
    }
    // Both ways leave the same statistics.
    let diffs = store
        .recompute_stats(RecomputeMode::Check, Utc::now())
        .await
        .unwrap();
    assert!(diffs.is_empty(), "{} users differ", diffs.len());

    let show = |name: &str, times: &[Duration]| {
        let secs: Vec<String> = times
            .iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect();
        let best = times.iter().min().copied().unwrap_or_default();
        println!(
            "{name}: {} s per correction (best {:.2} s, {:.0} users/s)",
            secs.join(" / "),
            best.as_secs_f64(),
            users as f64 / best.as_secs_f64()
        );
        best
    };
    let a = show("record_correction (set-based)", &set_based);
    let b = show("per-user loop (baseline)", &baseline);
    println!("ratio: {:.1}×", b.as_secs_f64() / a.as_secs_f64());

    pool.close().await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
}
