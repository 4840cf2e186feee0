//! The SQL store tests on SQLite (always run; a temporary database file per test).
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod sql_shared;

use goldjobs_adapters::sql::SqliteStore;

/// A migrated store on a fresh temporary file; keep the directory alive while testing.
async fn store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("goldjobs.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // migrating twice is a no-op
    store.migrate().await.unwrap();
    (store, dir)
}

macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _dir) = store().await;
                sql_shared::$name(&store).await;
            }
        )*
    };
}

sqlite_tests!(
    symbols,
    ticks,
    prediction_round_trip,
    claim_due,
    record_verifications,
    streaks_across_batches,
    outbox,
    outbox_fanout_pages,
    outbox_fanout_small_predictions_fill_claims,
    outbox_retention,
    news,
    device_tokens,
    lease,
);

#[tokio::test]
async fn in_memory_url_works() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    sql_shared::ticks(&store).await;
}

#[tokio::test]
async fn crash_leaves_nothing() {
    let (store, _dir) = store().await;
    let pool = store.pool().clone();
    let pool2 = pool.clone();
    sql_shared::crash_leaves_nothing(
        &store,
        async move {
            sqlx::query(
                "CREATE TRIGGER outbox_boom BEFORE INSERT ON outbox \
                 BEGIN SELECT RAISE(ABORT, 'boom'); END",
            )
            .execute(&pool)
            .await
            .unwrap();
        },
        async move {
            sqlx::query("DROP TRIGGER outbox_boom")
                .execute(&pool2)
                .await
                .unwrap();
        },
    )
    .await;
}

/// Two recorders racing on the same batches (SQLite serializes writers): each prediction is
/// verified once and the stats equal a recomputation from the votes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_recorders_verify_once() {
    use goldjobs_core::PredictionRepository;
    let (store, _dir) = store().await;
    let mut all = Vec::new();
    for round in 0..5 {
        let records = sql_shared::seed_random(
            &store,
            &format!("r{round}_"),
            round * 100,
            10,
            6,
            round as u64,
        )
        .await;
        let (a, b) = (store.clone(), store.clone());
        let (ra, rb) = (records.clone(), records.clone());
        let (sa, sb) = tokio::join!(
            tokio::spawn(async move { a.record_verifications(&ra).await.unwrap() }),
            tokio::spawn(async move { b.record_verifications(&rb).await.unwrap() }),
        );
        let (sa, sb) = (sa.unwrap(), sb.unwrap());
        assert_eq!(sa.verified.len() + sb.verified.len(), 10);
        assert!(sa.verified.is_empty() || sb.verified.is_empty());
        all.extend(records);
    }
    assert_eq!(
        sql_shared::stored_stats(&store, 6).await,
        sql_shared::expected_stats(&store, &all).await
    );
}

/// The conformance suites of goldjobs-core, each on a fresh database.
mod conformance {
    use super::store;
    use goldjobs_core::conformance as suite;

    #[tokio::test]
    async fn symbols() {
        let (s, _dir) = store().await;
        suite::symbols::run_all(&s).await;
    }

    #[tokio::test]
    async fn ticks() {
        let (s, _dir) = store().await;
        suite::ticks::run_all(&s).await;
    }

    #[tokio::test]
    async fn news() {
        let (s, _dir) = store().await;
        suite::news::run_all(&s).await;
    }

    #[tokio::test]
    async fn device_tokens() {
        let (s, _dir) = store().await;
        suite::device_tokens::run_all(&s).await;
    }

    #[tokio::test]
    async fn lease() {
        let (s, _dir) = store().await;
        suite::lease::run_all(&s, &suite::tokio_sleep).await;
    }

    #[tokio::test]
    async fn predictions() {
        let (s, _dir) = store().await;
        suite::predictions::run_all(&s, &s).await;
    }

    #[tokio::test]
    async fn outbox() {
        let (s, _dir) = store().await;
        suite::outbox::run_all(&s, &s).await;
    }
}

#[tokio::test]
async fn retention_job_end_to_end() {
    let (store, _dir) = store().await;
    sql_shared::retention_job_end_to_end(std::sync::Arc::new(store)).await;
}

#[tokio::test]
async fn verifier_job_end_to_end() {
    let (store, _dir) = store().await;
    sql_shared::verifier_job_end_to_end(std::sync::Arc::new(store)).await;
}

#[tokio::test]
async fn unopenable_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // a directory where the database file should be
    let url = format!("sqlite://{}", dir.path().display());
    assert!(SqliteStore::connect(&url).await.is_err());
    assert!(SqliteStore::connect("mysql://nope").await.is_err());
}

/// Other programs writing instants in another spelling are refused: text order must stay time
/// order (`2026-03-01 23:00:00Z` would otherwise sort before `2026-03-01T12:00:00.000000Z` and be
/// claimed 11 hours early).
#[tokio::test]
async fn foreign_instant_formats_are_refused() {
    use goldjobs_core::{PredictionRepository, TickQuery};
    let (store, _dir) = store().await;
    let pool = store.pool().clone();
    let bad_prediction = sqlx::query(
        "INSERT INTO predictions (id, symbol_code, question, price_at_create, verify_time, \
         verify_rule, auto_verify_conditions, created_at) \
         VALUES ('foreign', 'XAUUSD', 'q', '2650', '2026-03-01 23:00:00Z', 'auto', \
         '{\"A\":\"1 = 1\"}', '2026-03-01T00:00:00.000000Z')",
    )
    .execute(&pool)
    .await;
    let e = bad_prediction.unwrap_err().to_string();
    assert!(e.contains("six fractional digits"), "{e}");
    let bad_tick = sqlx::query(
        "INSERT INTO price_ticks (symbol_code, price, ts) VALUES ('XAUUSD', '2650', '2026-03-01T12:00:00Z')",
    )
    .execute(&pool)
    .await;
    assert!(bad_tick.is_err());
    // The canonical spelling is accepted, and nothing foreign got in.
    sqlx::query(
        "INSERT INTO price_ticks (symbol_code, price, ts) VALUES ('XAUUSD', '2650', '2026-03-01T12:00:00.000000Z')",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(store.get_prediction("foreign").await.unwrap().is_none());
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let first = goldjobs_core::PriceTickRepository::first_ticks_at_or_after(
        &store,
        &[TickQuery {
            symbol_code: "XAUUSD".into(),
            at,
            allow_demo: false,
        }],
    )
    .await
    .unwrap();
    assert_eq!(first[0].as_ref().unwrap().price.to_string(), "2650");
}
