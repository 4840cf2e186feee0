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
