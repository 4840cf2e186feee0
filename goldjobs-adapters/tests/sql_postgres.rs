//! The SQL store tests on PostgreSQL (`GOLDJOBS_TEST_DATABASE_URL`). Each test runs in its own
//! fresh schema, dropped at the end. Unset URL: skipped with a printed reason, unless
//! `GOLDJOBS_REQUIRE_SERVICES=1`, which makes it a failure.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod sql_shared;

use futures::FutureExt;
use goldjobs_adapters::sql::PgStore;
use rand::Rng;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Executor;
use std::future::Future;
use std::panic::AssertUnwindSafe;

fn required() -> bool {
    std::env::var("GOLDJOBS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A store in a fresh schema; `None` (after printing why) when PostgreSQL is not configured.
async fn fresh_schema(max_connections: u32) -> Option<(PgStore, PgPool, String)> {
    let url = match std::env::var("GOLDJOBS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !required(),
                "GOLDJOBS_TEST_DATABASE_URL is unset but GOLDJOBS_REQUIRE_SERVICES=1"
            );
            eprintln!("skipping PostgreSQL test: GOLDJOBS_TEST_DATABASE_URL is unset");
            return None;
        }
    };
    let admin = match PgPoolOptions::new().max_connections(1).connect(&url).await {
        Ok(pool) => pool,
        Err(e) => {
            assert!(!required(), "PostgreSQL unreachable: {e}");
            eprintln!("skipping PostgreSQL test: unreachable: {e}");
            return None;
        }
    };
    let schema = format!("t_{:016x}", rand::thread_rng().gen::<u64>());
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let search_path = schema.clone();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(move |conn, _meta| {
            let sql = format!("SET search_path TO {search_path}");
            Box::pin(async move {
                conn.execute(sql.as_str()).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .unwrap();
    let store = PgStore::new(pool);
    store.migrate().await.unwrap();
    // migrating twice is a no-op
    store.migrate().await.unwrap();
    Some((store, admin, schema))
}

/// Runs `body` on a store in a fresh schema and drops the schema afterwards, also on panic.
async fn with_store<F, Fut>(max_connections: u32, body: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((store, admin, schema)) = fresh_schema(max_connections).await else {
        return;
    };
    let pool = store.pool().clone();
    let outcome = AssertUnwindSafe(body(store)).catch_unwind().await;
    pool.close().await;
    admin
        .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

macro_rules! pg_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                with_store(4, |store| async move { sql_shared::$name(&store).await }).await;
            }
        )*
    };
}

pg_tests!(
    migration_seeds_default_symbols,
    outbox_fanout_pages,
    outbox_fanout_small_predictions_fill_claims,
    outbox_retention,
);

#[tokio::test]
async fn crash_leaves_nothing() {
    with_store(4, |store| async move {
        let pool = store.pool().clone();
        let pool2 = pool.clone();
        sql_shared::crash_leaves_nothing(
            &store,
            async move {
                pool.execute(
                    "CREATE FUNCTION outbox_boom() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'boom'; END $$; \
                     CREATE TRIGGER outbox_boom BEFORE INSERT ON outbox \
                     FOR EACH ROW EXECUTE FUNCTION outbox_boom()",
                )
                .await
                .unwrap();
            },
            async move {
                pool2
                    .execute("DROP TRIGGER outbox_boom ON outbox")
                    .await
                    .unwrap();
            },
        )
        .await;
    })
    .await;
}

/// A connection that dies in the middle of the transaction (terminated by the server) leaves
/// no partial verification either, and the error is temporary.
#[tokio::test]
async fn dropped_connection_leaves_nothing() {
    with_store(4, |store| async move {
        use goldjobs_core::PredictionRepository;
        let records = sql_shared::seed_random(&store, "k", 0, 5, 4, 11).await;
        // the stats step waits for this lock; meanwhile we kill the recorder's backend
        let mut locker = store.pool().begin().await.unwrap();
        let locker_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *locker)
            .await
            .unwrap();
        sqlx::query("LOCK TABLE user_prediction_stats IN EXCLUSIVE MODE")
            .execute(&mut *locker)
            .await
            .unwrap();
        let recorder = {
            let store = store.clone();
            let records = records.clone();
            tokio::spawn(async move { store.record_verifications(&records).await })
        };
        // find the recorder's backend once it waits on our lock, then terminate it
        let killer = store.pool().clone();
        let mut killed = false;
        for _ in 0..200 {
            // only the backend our own lock blocks: never anyone else's session
            let n: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) LIMIT 1",
            )
            .bind(locker_pid)
            .fetch_optional(&killer)
            .await
            .unwrap();
            if let Some(pid) = n {
                sqlx::query("SELECT pg_terminate_backend($1)")
                    .bind(pid)
                    .execute(&killer)
                    .await
                    .unwrap();
                killed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(killed, "recorder never blocked on the stats lock");
        let err = recorder.await.unwrap().unwrap_err();
        assert!(err.is_temporary(), "{err:?}");
        locker.rollback().await.unwrap();
        for r in &records {
            let p = store
                .get_prediction(&r.prediction_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(p.status, goldjobs_core::PredictionStatus::Active);
        }
        assert!(sql_shared::stored_stats(&store, 4).await.is_empty());
        use goldjobs_core::OutboxRepository;
        assert!(store.outbox_rows().await.unwrap().is_empty());
        // and it all goes through on retry
        let summary = store.record_verifications(&records).await.unwrap();
        assert_eq!(summary.verified.len(), 5);
    })
    .await;
}

/// Two recorders racing on identical batches, round after round: each prediction is verified
/// exactly once, and the stats (streaks included) equal a recomputation from the votes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_recorders_same_batches() {
    with_store(6, |store| async move {
        use goldjobs_core::{OutboxPayload, OutboxRepository, PredictionRepository};
        let mut all = Vec::new();
        for round in 0..8i64 {
            let records = sql_shared::seed_random(
                &store,
                &format!("r{round}_"),
                round * 100,
                12,
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
            assert_eq!(sa.verified.len() + sb.verified.len(), 12);
            assert!(sa.verified.is_empty() || sb.verified.is_empty());
            all.extend(records);
        }
        assert_eq!(
            sql_shared::stored_stats(&store, 6).await,
            sql_shared::expected_stats(&store, &all).await
        );
        let rows = store.outbox_rows().await.unwrap();
        let broadcasts = rows
            .iter()
            .filter(|r| matches!(r.payload, OutboxPayload::PredictionVerified(_)))
            .count();
        assert_eq!(broadcasts, all.len());
    })
    .await;
}

/// Two verifier-style loops claiming (claims that expire at once, so they overlap) and
/// recording concurrently: each prediction is verified exactly once, one broadcast each, one
/// notification per vote, and the counts in the stats equal a recomputation from the votes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claimers_verify_once() {
    with_store(6, |store| async move {
        use goldjobs_core::{OutboxPayload, OutboxRepository, PredictionRepository};
        use std::collections::{HashMap, HashSet};
        let records = sql_shared::seed_random(&store, "c", 0, 60, 8, 42).await;
        let by_id: HashMap<String, goldjobs_core::VerificationRecord> = records
            .iter()
            .map(|r| (r.prediction_id.clone(), r.clone()))
            .collect();
        let by_id = std::sync::Arc::new(by_id);
        let worker =
            |store: PgStore,
             by_id: std::sync::Arc<HashMap<_, goldjobs_core::VerificationRecord>>| async move {
                let mut verified = Vec::new();
                let mut skipped = 0usize;
                loop {
                    let claimed = store
                        .claim_due(sql_shared::t(10_000), 7, std::time::Duration::ZERO)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    let batch: Vec<_> = claimed.iter().map(|p| by_id[&p.id].clone()).collect();
                    match store.record_verifications(&batch).await {
                        Ok(summary) => {
                            skipped += summary.skipped.len();
                            verified.extend(summary.verified)
                        }
                        Err(e) if e.is_temporary() => continue,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                // overlapping claims end as skipped records: the guard, not luck, kept it once
                eprintln!("racer: {} verified, {skipped} skipped", verified.len());
                verified
            };
        let (va, vb) = tokio::join!(
            tokio::spawn(worker(store.clone(), by_id.clone())),
            tokio::spawn(worker(store.clone(), by_id.clone())),
        );
        let (va, vb) = (va.unwrap(), vb.unwrap());
        let mut seen = HashSet::new();
        for id in va.iter().chain(vb.iter()) {
            assert!(seen.insert(id.clone()), "{id} verified twice");
        }
        assert_eq!(seen.len(), 60);

        let rows = store.outbox_rows().await.unwrap();
        let mut votes = 0;
        for r in &records {
            votes += store.votes_for(&r.prediction_id).await.unwrap().len();
        }
        let broadcasts = rows
            .iter()
            .filter(|r| matches!(r.payload, OutboxPayload::PredictionVerified(_)))
            .count();
        assert_eq!(broadcasts, 60);
        // one notification per vote: the fan-out rows expand into exactly one per voter
        let mut notices = HashSet::new();
        loop {
            let batch = store
                .claim_outbox(
                    sql_shared::t(10_000),
                    100,
                    std::time::Duration::from_secs(600),
                )
                .await
                .unwrap();
            if batch.is_empty() {
                break;
            }
            for m in batch {
                if let OutboxPayload::Notify(n) = m.payload {
                    assert!(
                        notices.insert((n.prediction_id.clone(), n.user_id.clone())),
                        "{n:?} twice"
                    );
                }
            }
        }
        assert_eq!(notices.len(), votes);

        // counts and accuracy are order-free; streaks depend on which racer committed first
        let stored = sql_shared::stored_stats(&store, 8).await;
        let expected = sql_shared::expected_stats(&store, &records).await;
        assert_eq!(stored.len(), expected.len());
        for (user, e) in &expected {
            let s = &stored[user];
            assert_eq!((s.0, s.1, s.2), (e.0, e.1, e.2), "{user}");
        }
    })
    .await;
}

/// The conformance suites of goldjobs-core, each in a fresh schema.
mod conformance {
    use super::with_store;
    use goldjobs_core::conformance as suite;

    #[tokio::test]
    async fn symbols() {
        with_store(4, |s| async move { suite::symbols::run_all(&s).await }).await;
    }

    #[tokio::test]
    async fn ticks() {
        with_store(4, |s| async move { suite::ticks::run_all(&s).await }).await;
    }

    #[tokio::test]
    async fn news() {
        with_store(4, |s| async move { suite::news::run_all(&s).await }).await;
    }

    #[tokio::test]
    async fn device_tokens() {
        with_store(
            4,
            |s| async move { suite::device_tokens::run_all(&s).await },
        )
        .await;
    }

    #[tokio::test]
    async fn jobs() {
        // prune_runs acts on the whole store: a schema of its own
        with_store(4, |s| async move { suite::jobs::run_all(&s).await }).await;
    }

    #[tokio::test]
    async fn lease() {
        with_store(4, |s| async move {
            suite::lease::run_all(&s, &suite::tokio_sleep).await
        })
        .await;
    }

    #[tokio::test]
    async fn predictions() {
        with_store(
            4,
            |s| async move { suite::predictions::run_all(&s, &s).await },
        )
        .await;
    }

    #[tokio::test]
    async fn outbox() {
        with_store(4, |s| async move { suite::outbox::run_all(&s, &s).await }).await;
    }
}

/// Two dispatchers draining at the same time: the fan-out rows (locked with SKIP LOCKED while
/// one of them expands them) turn into exactly one notification per voter between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_dispatchers_expand_once() {
    with_store(6, |store| async move {
        use goldjobs_core::{OutboxPayload, OutboxRepository, PredictionRepository};
        use std::collections::HashSet;
        let mut records = Vec::new();
        for i in 0..40 {
            let id = format!("f{i:02}");
            store
                .insert_prediction(&sql_shared::prediction(&id, 10 + i))
                .await
                .unwrap();
            let votes: Vec<_> = (0..30)
                .map(|u| sql_shared::vote(&id, &format!("user{u:02}"), "A"))
                .collect();
            store.insert_votes(&votes).await.unwrap();
            records.push(sql_shared::verified(&id, "A", 10 + i));
        }
        store.record_verifications(&records).await.unwrap();
        let drain = |store: PgStore| async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .claim_outbox(
                        sql_shared::t(10_000),
                        25,
                        std::time::Duration::from_secs(600),
                    )
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return got;
                }
                for m in batch {
                    match m.payload {
                        OutboxPayload::Notify(n) => got.push((n.prediction_id, n.user_id)),
                        OutboxPayload::PredictionVerified(_) => {}
                        other => panic!("claim_outbox handed out {other:?}"),
                    }
                }
            }
        };
        let (a, b) = tokio::join!(
            tokio::spawn(drain(store.clone())),
            tokio::spawn(drain(store.clone())),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        eprintln!("dispatchers: {} and {} notices", a.len(), b.len());
        let mut seen = HashSet::new();
        for n in a.iter().chain(b.iter()) {
            assert!(seen.insert(n.clone()), "{n:?} twice");
        }
        assert_eq!(seen.len(), 40 * 30);
    })
    .await;
}

/// The voter count kept on a fan-out row only sizes the work: a wrong count (here zero, as a
/// foreign writer might leave it) costs extra passes, never a voter.
#[tokio::test]
async fn fanout_with_a_wrong_count_loses_no_voter() {
    with_store(4, |store| async move {
        use goldjobs_core::{OutboxPayload, OutboxRepository, PredictionRepository};
        store
            .insert_prediction(&sql_shared::prediction("w", 10))
            .await
            .unwrap();
        let votes: Vec<_> = (0..5)
            .map(|u| sql_shared::vote("w", &format!("v{u}"), "A"))
            .collect();
        store.insert_votes(&votes).await.unwrap();
        store
            .record_verifications(&[sql_shared::verified("w", "A", 10)])
            .await
            .unwrap();
        sqlx::query("UPDATE outbox SET fanout_remaining = 0 WHERE kind = 'notify_voters'")
            .execute(store.pool())
            .await
            .unwrap();
        let mut users = Vec::new();
        for _ in 0..20 {
            let batch = store
                .claim_outbox(
                    sql_shared::t(1000),
                    100,
                    std::time::Duration::from_secs(600),
                )
                .await
                .unwrap();
            for m in batch {
                if let OutboxPayload::Notify(n) = m.payload {
                    users.push(n.user_id);
                }
            }
        }
        assert_eq!(users, ["v0", "v1", "v2", "v3", "v4"]);
    })
    .await;
}

/// During a rolling deploy, instances of the previous release claim with their own query (no
/// `kind` filter): fan-out rows are written claimed until the end of time, so such a claimer
/// passes over them instead of failing them as undecodable, and the voters still get theirs.
#[tokio::test]
async fn a_previous_release_claimer_passes_over_fanout_rows() {
    with_store(4, |store| async move {
        use goldjobs_core::{OutboxPayload, OutboxRepository, PredictionRepository};
        store
            .insert_prediction(&sql_shared::prediction("old", 10))
            .await
            .unwrap();
        store
            .insert_votes(&[sql_shared::vote("old", "x", "A")])
            .await
            .unwrap();
        store
            .record_verifications(&[sql_shared::verified("old", "A", 10)])
            .await
            .unwrap();
        // the claim statement of the release before fan-out rows
        let kinds: Vec<String> = sqlx::query_scalar(
            "WITH claimed AS ( \
                 UPDATE outbox SET claimed_until = $2 WHERE id IN ( \
                     SELECT id FROM outbox \
                     WHERE state = 'pending' AND next_attempt_at <= $1 \
                       AND (claimed_until IS NULL OR claimed_until <= $1) \
                     ORDER BY id LIMIT 100 \
                     FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind) \
             SELECT kind FROM claimed ORDER BY id",
        )
        .bind(sql_shared::t(1000))
        .bind(sql_shared::t(1000))
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(kinds, ["prediction_verified"]);
        let batch = store
            .claim_outbox(sql_shared::t(2000), 100, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let users: Vec<String> = batch
            .into_iter()
            .filter_map(|m| match m.payload {
                OutboxPayload::Notify(n) => Some(n.user_id),
                _ => None,
            })
            .collect();
        assert_eq!(users, ["x"]);
    })
    .await;
}

#[tokio::test]
async fn job_runtime_state_survives_a_restart() {
    with_store(4, |store| async move {
        sql_shared::job_runtime_state_survives_a_restart(std::sync::Arc::new(store)).await
    })
    .await;
}

#[tokio::test]
async fn retention_job_end_to_end() {
    with_store(4, |store| async move {
        sql_shared::retention_job_end_to_end(std::sync::Arc::new(store)).await
    })
    .await;
}

#[tokio::test]
async fn verifier_job_end_to_end() {
    with_store(4, |store| async move {
        sql_shared::verifier_job_end_to_end(std::sync::Arc::new(store)).await
    })
    .await;
}

/// An unreachable server is a temporary error (the runtime retries it); needs no PostgreSQL.
#[tokio::test]
async fn unreachable_server_is_temporary() {
    let pool = PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nowhere")
        .unwrap();
    let store = PgStore::new(pool);
    let err = store.ping().await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    use goldjobs_core::SymbolRepository;
    let err = store.active_symbols().await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(!err.to_string().contains("SELECT"), "{err}");
}

/// Bad values are input errors, duplicates conflicts, and no message carries SQL text.
#[tokio::test]
async fn errors_by_meaning() {
    with_store(2, |store| async move {
        use goldjobs_core::{Error, PredictionRepository};
        let mut p = sql_shared::prediction("bad", 10);
        p.auto_verify_conditions = Some("{not json".into());
        let err = store.insert_prediction(&p).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(!err.to_string().contains("INSERT"), "{err}");
        // a vote on a prediction that does not exist
        let err = store
            .insert_votes(&[sql_shared::vote("missing", "u1", "A")])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn random_histories_of_corrections_and_voids() {
    with_store(4, |store| async move {
        sql_shared::random_histories(&store, 12).await;
    })
    .await;
}

/// Statistics imported without their votes are listed (as without votes) and replaced by zeros.
#[tokio::test]
async fn stats_without_votes_are_named_and_reset() {
    with_store(2, |store| async move {
        use goldjobs_core::{PredictionRepository, RecomputeMode};
        store
            .pool()
            .execute(
                "INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
                 accuracy_rate, current_streak, max_streak, updated_at) \
                 VALUES ('imported', 7, 5, 71.43, 2, 4, now()), ('zero', 0, 0, 0, 0, 0, now())",
            )
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
    })
    .await;
}

/// Corrections and voids of older predictions race the verifier recording newer ones for the
/// same users (two connections at once, several rounds): the statistics always end equal to a
/// plain recomputation from the votes, and `recompute_stats` (what `recompute-stats --check`
/// runs) finds nothing to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_racing_the_verifier_leave_exact_stats() {
    with_store(6, |store| async move {
        use goldjobs_core::{
            Correction, PredictionRepository, PredictionStatus, RecomputeMode, VoidRecord,
        };
        use std::collections::BTreeMap;
        const USERS: usize = 12;
        for round in 0..8i64 {
            let base = round * 10_000;
            // 8 predictions verified before the race (older verify_time), 24 due ones
            let old = sql_shared::seed_random(
                &store,
                &format!("o{round}_"),
                base,
                8,
                USERS,
                round as u64,
            )
            .await;
            store.record_verifications(&old).await.unwrap();
            let due = sql_shared::seed_random(
                &store,
                &format!("n{round}_"),
                base + 1_000,
                24,
                USERS,
                100 + round as u64,
            )
            .await;
            let (verifier, admin) = (store.clone(), store.clone());
            let batches: Vec<Vec<_>> = due.chunks(3).map(<[_]>::to_vec).collect();
            let verify = tokio::spawn(async move {
                for b in batches {
                    verifier.record_verifications(&b).await.unwrap();
                }
            });
            let old_ids: Vec<String> = old.iter().map(|r| r.prediction_id.clone()).collect();
            let revise = tokio::spawn(async move {
                for (i, id) in old_ids.iter().enumerate() {
                    let at = sql_shared::t(base + 5_000 + i as i64);
                    if i == 3 {
                        admin
                            .record_void(&VoidRecord {
                                prediction_id: id.clone(),
                                reason: "race".into(),
                                voided_at: at,
                            })
                            .await
                            .unwrap();
                        continue;
                    }
                    for option in ["A", "B"] {
                        match admin
                            .record_correction(&Correction {
                                prediction_id: id.clone(),
                                correct_option: option.into(),
                                price: None,
                                corrected_at: at,
                            })
                            .await
                        {
                            Ok(_) | Err(goldjobs_core::Error::Conflict(_)) => {}
                            Err(e) => panic!("correction failed: {e}"),
                        }
                    }
                }
            });
            verify.await.unwrap();
            revise.await.unwrap();

            // A plain recomputation: every ended prediction of every round, in verify_time
            // order, its votes as marked now.
            let mut results: BTreeMap<String, Vec<bool>> = BTreeMap::new();
            for r in 0..=round {
                for (prefix, n, at) in [("o", 8, r * 10_000), ("n", 24, r * 10_000 + 1_000)] {
                    for i in 0..n {
                        let id = format!("{prefix}{r}_{i:04}");
                        let p = store.get_prediction(&id).await.unwrap().unwrap();
                        assert_eq!(p.verify_time, sql_shared::t(at + i as i64));
                        if p.status != PredictionStatus::Ended {
                            continue;
                        }
                        let correct = p.correct_option.unwrap();
                        for v in store.votes_for(&id).await.unwrap() {
                            assert_eq!(v.is_correct, Some(v.selected_option == correct));
                            results
                                .entry(v.user_id)
                                .or_default()
                                .push(v.selected_option == correct);
                        }
                    }
                }
            }
            let users: Vec<String> = results.keys().cloned().collect();
            let stored = store.user_stats(&users).await.unwrap();
            assert_eq!(stored.len(), users.len());
            for s in stored {
                let r = &results[&s.user_id];
                let mut run = 0i64;
                let mut best = 0i64;
                for ok in r {
                    run = if *ok { run + 1 } else { 0 };
                    best = best.max(run);
                }
                let correct = r.iter().filter(|ok| **ok).count() as i64;
                assert_eq!(
                    (
                        s.total_participations,
                        s.correct_count,
                        s.current_streak,
                        s.max_streak
                    ),
                    (r.len() as i64, correct, run, best),
                    "round {round}, {}",
                    s.user_id
                );
            }
            let diffs = store
                .recompute_stats(RecomputeMode::Check, sql_shared::t(base + 9_000))
                .await
                .unwrap();
            assert!(diffs.is_empty(), "round {round}: {diffs:?}");
        }
    })
    .await;
}
