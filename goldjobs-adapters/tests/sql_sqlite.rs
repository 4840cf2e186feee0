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
    migration_seeds_default_symbols,
    outbox_fanout_pages,
    outbox_fanout_small_predictions_fill_claims,
    outbox_retention,
);

#[tokio::test]
async fn in_memory_url_works() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    goldjobs_core::conformance::ticks::run_all(&store).await;
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
    async fn jobs() {
        let (s, _dir) = store().await;
        suite::jobs::run_all(&s).await;
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
async fn job_runtime_state_survives_a_restart() {
    let (store, _dir) = store().await;
    sql_shared::job_runtime_state_survives_a_restart(std::sync::Arc::new(store)).await;
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

/// A database of the previous release upgrades in place: the `predictions` rebuild of
/// `20261201000001` keeps every prediction and vote (dropping the old table must not cascade
/// into the votes), its indexes and format triggers, and allows `void`.
#[tokio::test]
async fn upgrade_from_0_1_keeps_predictions_and_votes() {
    use goldjobs_core::{PredictionRepository, PredictionStatus};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let old = SqliteStore::connect(&url).await.unwrap();
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    let before: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 20261201000001)
        .cloned()
        .collect();
    assert!(before.len() < migrator.migrations.len());
    migrator.migrations = before.into();
    migrator.run(old.pool()).await.unwrap();
    for sql in [
        "INSERT INTO predictions (id, symbol_code, question, price_at_create, verify_time, \
         verify_rule, auto_verify_conditions, status, created_at) VALUES ('old-1', 'XAUUSD', 'q', \
         '2650.00', '2026-03-01T12:00:00.000000Z', 'auto', \
         '{\"B\": {\"condition\": \"price_change_percent < 0\"}, \"A\": {\"condition\": \"1 = 1\"}}', \
         'active', '2026-03-01T00:00:00.000000Z')",
        "INSERT INTO prediction_votes (prediction_id, user_id, selected_option, created_at) \
         VALUES ('old-1', 'u1', 'A', '2026-03-01T01:00:00.000000Z'), \
                ('old-1', 'u2', 'B', '2026-03-01T01:00:00.000000Z')",
        "INSERT INTO price_ticks (symbol_code, price, ts) \
         VALUES ('XAUUSD', '2651', '2026-03-01T12:00:01.000000Z')",
    ] {
        sqlx::query(sql).execute(old.pool()).await.unwrap();
    }
    old.pool().close().await;

    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let p = store.get_prediction("old-1").await.unwrap().unwrap();
    assert_eq!(p.status, PredictionStatus::Active);
    assert_eq!(
        p.auto_verify_conditions.as_deref(),
        Some(r#"{"B": {"condition": "price_change_percent < 0"}, "A": {"condition": "1 = 1"}}"#)
    );
    assert_eq!(p.price_provider, None);
    let votes = store.votes_for("old-1").await.unwrap();
    assert_eq!(votes.len(), 2, "the rebuild kept the votes");
    let pool = store.pool();
    // Foreign keys still point at the new table and still cascade.
    let orphan = sqlx::query(
        "INSERT INTO prediction_votes (prediction_id, user_id, selected_option, created_at) \
         VALUES ('missing', 'u3', 'A', '2026-03-01T01:00:00.000000Z')",
    )
    .execute(pool)
    .await;
    assert!(
        orphan.is_err(),
        "a vote for a missing prediction is refused"
    );
    // The format triggers came back with the table, and 'void' is allowed now.
    let bad = sqlx::query(
        "INSERT INTO predictions (id, symbol_code, question, price_at_create, verify_time, \
         verify_rule, created_at) VALUES ('bad', 'XAUUSD', 'q', '1', '2026-03-01 12:00:00', \
         'manual', '2026-03-01T00:00:00.000000Z')",
    )
    .execute(pool)
    .await;
    assert!(bad.is_err());
    sqlx::query("UPDATE predictions SET status = 'void' WHERE id = 'old-1'")
        .execute(pool)
        .await
        .unwrap();
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN \
         ('predictions_due_idx', 'predictions_verified_idx', 'prediction_votes_user_idx') ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(indexes.len(), 3, "{indexes:?}");
    let tick: (Option<String>,) = sqlx::query_as("SELECT source FROM price_ticks")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        tick.0, None,
        "old ticks keep a NULL source (a real provider)"
    );
    sqlx::query("DELETE FROM predictions WHERE id = 'old-1'")
        .execute(pool)
        .await
        .unwrap();
    assert!(
        store.votes_for("old-1").await.unwrap().is_empty(),
        "cascade"
    );
}

#[tokio::test]
async fn random_histories_of_corrections_and_voids() {
    let (store, _dir) = store().await;
    sql_shared::random_histories(&store, 24).await;
}

/// Statistics imported without their votes are listed (as without votes) and replaced by zeros.
#[tokio::test]
async fn stats_without_votes_are_named_and_reset() {
    use goldjobs_core::{PredictionRepository, RecomputeMode};
    let (store, _dir) = store().await;
    sqlx::query(
        "INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
         accuracy_rate, current_streak, max_streak, updated_at) \
         VALUES ('imported', 7, 5, '71.43', 2, 4, '2026-01-01T00:00:00.000000Z'), \
                ('zero', 0, 0, '0', 0, 0, '2026-01-01T00:00:00.000000Z')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let now = sql_shared::t(100);
    let check = store
        .recompute_stats(RecomputeMode::Check, now)
        .await
        .unwrap();
    assert_eq!(check.len(), 1, "{check:?}");
    assert_eq!(check[0].user_id, "imported");
    assert!(check[0].without_votes());
    assert_eq!(check[0].recomputed.total_participations, 0);
    let fixed = store
        .recompute_stats(RecomputeMode::Fix, now)
        .await
        .unwrap();
    assert_eq!(fixed.len(), 1);
    let s = store.user_stats(&["imported".into()]).await.unwrap();
    assert_eq!(
        (s[0].total_participations, s[0].max_streak, s[0].updated_at),
        (0, 0, now)
    );
    assert!(store
        .recompute_stats(RecomputeMode::Check, now)
        .await
        .unwrap()
        .is_empty());
}
