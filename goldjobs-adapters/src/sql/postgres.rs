//! PostgreSQL store.

use super::common;
use super::dialect::{dialect_impl, Arg, Dialect};
use super::row;
use super::{
    add_duration, chrono_duration, dedupe_articles, expand_in_pages, fanout_kind_column,
    fanout_payload, fold_votes, kind_fanout_payload, late_users, map_sqlx, prepare_records,
    record_columns, summarize, verified_payload, votes_per_prediction, SqlError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use goldjobs_core::news::FeedHealth;
use goldjobs_core::runtime::{JobControl, JobRun};
use goldjobs_core::JobStore;
use goldjobs_core::{ArticleWrites, Candle, CandleQuery, DueSymbol, Story};
use goldjobs_core::{
    BoxError, Correction, DeviceToken, DeviceTokenRepository, Error, Lease, LeaseState,
    NewsArticle, NewsRepository, NoticeKind, OptionVotes, OutboxMessage, OutboxRepository,
    OutboxRow, Prediction, PredictionQuery, PredictionRepository, PriceTick, PriceTickRepository,
    RecomputeMode, RecordSummary, Result, Revision, StatsDiff, Symbol, SymbolRepository, TickQuery,
    UserStats, VerificationRecord, VoidRecord, Vote,
};
use rust_decimal::Decimal;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::Row;
use std::collections::HashMap;
use std::time::Duration;

const BACKEND: &str = "postgres";

fn db(err: sqlx::Error) -> Error {
    map_sqlx(BACKEND, err)
}

/// Every repository port and the lease on PostgreSQL.
///
/// Open it with [`PgStore::connect`] (or build it from a pool the caller owns with
/// [`PgStore::new`]), run [`PgStore::migrate`] once at start, then share it as `Arc<dyn Port>`
/// for each port (`goldjobs_core::Ports::of`).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect to `url` (`postgres://…`; `sslmode=require`/`verify-full` with `sslrootcert`
    /// for TLS) with a pool of 10 connections and a 5 s acquire timeout. No migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| {
                Error::unavailable(
                    BACKEND,
                    "cannot connect to the database",
                    Some(Box::new(e) as BoxError),
                )
            })?;
        Ok(PgStore::new(pool))
    }

    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        PgStore { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Apply the embedded migrations (`migrations/postgres`) not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, "migration failed", Some(Box::new(e) as BoxError)))
    }

    /// Expand due `notify_voters` outbox rows into per-voter `notify` rows, up to `budget`
    /// voters in all, due at `now`, in pages of at most [`MAX_FANOUT_PAGE`](super::MAX_FANOUT_PAGE) voters, each page
    /// one statement (so atomic): lock the due fan-out rows in id order (`SKIP LOCKED`:
    /// concurrent dispatchers take different ones), keep those whose remaining voters are
    /// needed to fill the budget, take the next voters after each row's cursor (marked votes
    /// only, in `user_id` order) until the budget is used, insert their rows in that order, and
    /// move each cursor past what it gave, marking the rows with no voter left delivered. A
    /// crash repeats nothing and loses nothing.
    async fn expand_fanouts(&self, now: DateTime<Utc>, budget: u32) -> Result<()> {
        expand_in_pages(budget, |size| self.expand_fanout_page(now, size)).await
    }

    /// One page of [`expand_fanouts`](Self::expand_fanouts): up to `budget` voters; returns
    /// how many `notify` rows it wrote.
    async fn expand_fanout_page(&self, now: DateTime<Utc>, budget: i64) -> Result<i64> {
        // Every outbox and predictions access is by index whatever the statistics say (`=
        // ANY(ARRAY(..))`, no joins: a join let the planner scan the whole outbox on every
        // claim). The due fan-out rows are locked first (`SKIP LOCKED`: rows another dispatcher
        // is expanding are passed over, not counted), then the prefix whose voters fill the
        // budget is taken. `fanout_remaining` (the marked votes not expanded yet) only sizes the
        // work; whether a row is done is decided by looking one voter past it, so a wrong count
        // costs extra passes, never a voter. The notice text is what serde writes for
        // OutboxPayload::Notify, spelled out with to_json escaping (the adapter tests decode
        // it). A fan-out row without a prediction id expands to nothing and is marked delivered.
        let row = sqlx::query(
            r#"WITH due AS (
                   SELECT id, fanout_cursor AS cur, fanout_prediction_id AS pid, fanout_remaining AS n,
                          fanout_kind AS fk
                   FROM outbox
                   WHERE state = 'pending' AND kind = 'notify_voters' AND next_attempt_at <= $1
                   ORDER BY id LIMIT $2
                   FOR UPDATE SKIP LOCKED),
               f AS (
                   SELECT id, cur, pid, fk, GREATEST(n, 0) AS rem FROM (
                       SELECT id, cur, pid, n, fk,
                              sum(GREATEST(n, 1)) OVER (ORDER BY id) - GREATEST(n, 1) AS before
                       FROM due) sized
                   WHERE before < $2),
               q AS (
                   SELECT id, to_json(id)::text AS id_json, to_json(question)::text AS question_json,
                          COALESCE(to_json(review_reason)::text, 'null') AS reason_json
                   FROM predictions WHERE id = ANY (ARRAY(SELECT pid FROM f))),
               page AS (
                   SELECT f.id AS fid, f.pid, f.fk, v.user_id, v.selected_option, v.is_correct,
                          row_number() OVER (ORDER BY f.id, v.user_id) AS rn
                   FROM f CROSS JOIN LATERAL (
                       -- a void unmarks the votes: its fan-out notifies every voter
                       SELECT user_id, selected_option, is_correct FROM prediction_votes
                       WHERE prediction_id = f.pid AND (f.fk = 'voided' OR is_correct IS NOT NULL)
                         AND (f.cur IS NULL OR user_id > f.cur)
                       ORDER BY user_id LIMIT LEAST(f.rem, $2) + 1) v),
               take AS (SELECT * FROM page WHERE rn <= $2),
               ins AS (
                   INSERT INTO outbox (kind, payload, state, attempts, next_attempt_at, created_at)
                   SELECT 'notify',
                          '{"kind":"notify","data":{"user_id":' || to_json(t.user_id)::text
                          || ',"prediction_id":' || q.id_json
                          || ',"question":' || q.question_json
                          || ',"selected_option":' || to_json(t.selected_option)::text
                          || ',"is_correct":' || CASE WHEN t.is_correct THEN 'true' ELSE 'false' END
                          || ',"kind":' || to_json(COALESCE(t.fk, 'verified'))::text
                          || ',"reason":' || CASE WHEN t.fk = 'voided' THEN q.reason_json ELSE 'null' END
                          || '}}',
                          'pending', 0, $1, $1
                   FROM take t JOIN q ON q.id = t.pid
                   ORDER BY t.rn
                   RETURNING 1),
               agg AS (
                   SELECT fid, max(user_id) FILTER (WHERE rn <= $2) AS last,
                          count(*) FILTER (WHERE rn <= $2) AS given, count(*) AS seen
                   FROM page GROUP BY fid),
               progress AS (
                   SELECT f.id, f.rem, a.last, COALESCE(a.given, 0) AS given,
                          -- voters left: one was seen and not given, or the row gave as many
                          -- as it was asked for (its count may be short)
                          (COALESCE(a.seen, 0) > COALESCE(a.given, 0)
                           OR COALESCE(a.seen, 0) = LEAST(f.rem, $2) + 1) AS more
                   FROM f LEFT JOIN agg a ON a.fid = f.id),
               upd AS (
                   UPDATE outbox o SET
                       fanout_cursor = COALESCE(pr.last, o.fanout_cursor),
                       fanout_remaining = CASE WHEN pr.more
                                               THEN GREATEST(pr.rem - pr.given, pr.given, 1)
                                               ELSE 0 END,
                       state = CASE WHEN pr.more THEN 'pending' ELSE 'delivered' END
                   FROM progress pr
                   WHERE o.id = ANY (ARRAY(SELECT id FROM f)) AND o.id = pr.id
                   RETURNING 1)
               SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM upd) AS moved"#,
        )
        .bind(now)
        .bind(budget)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        row.try_get("inserted").map_err(db)
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db)
    }
}

/// The statistics recomputation (guide: *Corrections and voids*), the one PostgreSQL definition
/// behind corrections, voids and `recompute-stats`: a CTE list ending in `r(user_id, total,
/// correct, cur, best, acc)` with one row per user of `users` (a `SELECT` of `user_id`s), rebuilt
/// from the user's verified votes (marked, on `ended` predictions) in `verify_time`, then id,
/// order, for all users in one statement.
///
/// Gaps and islands over one sort: `rn` numbers each user's results in order; `last_miss` is
/// the `rn` of the latest wrong result so far (a second window over the same ordering, so no
/// second sort), so `rn - last_miss` is the length of the island of correct results a row ends:
/// its maximum is the best streak, and `total - last_miss` at the end the current one. `acc`
/// is SQL `ROUND` (half away from zero), as the verifier's statement computes it. (A version
/// that grouped every island first, and one window per count, took about 20 % longer on
/// 1,000,000 votes.)
fn recompute_cte(users: &str) -> String {
    format!(
        "u AS ({users}), \
         ordered AS ( \
             SELECT v.user_id, v.is_correct AS ok, p.verify_time, p.id, \
                    row_number() OVER (PARTITION BY v.user_id ORDER BY p.verify_time, p.id) AS rn, \
                    count(*) OVER (PARTITION BY v.user_id) AS n \
             FROM prediction_votes AS v JOIN predictions AS p ON p.id = v.prediction_id \
             WHERE v.user_id IN (SELECT user_id FROM u) AND v.is_correct IS NOT NULL \
               AND p.status = 'ended'), \
         gaps AS ( \
             SELECT user_id, ok, rn, n, verify_time, id, \
                    COALESCE(max(CASE WHEN NOT ok THEN rn END) OVER (PARTITION BY user_id \
                        ORDER BY verify_time, id ROWS UNBOUNDED PRECEDING), 0) AS last_miss \
             FROM ordered), \
         agg AS ( \
             SELECT user_id, max(rn) AS total, count(*) FILTER (WHERE ok) AS correct, \
                    COALESCE(max(rn - last_miss) FILTER (WHERE ok), 0) AS best, \
                    max(rn) - max(last_miss) AS cur, \
                    max(verify_time) FILTER (WHERE rn = n) AS last_vt, \
                    max(id) FILTER (WHERE rn = n) AS last_id \
             FROM gaps GROUP BY user_id), \
         r AS ( \
             SELECT u.user_id, COALESCE(a.total, 0)::bigint AS total, \
                    COALESCE(a.correct, 0)::bigint AS correct, COALESCE(a.cur, 0)::bigint AS cur, \
                    COALESCE(a.best, 0)::bigint AS best, \
                    CASE WHEN COALESCE(a.total, 0) = 0 THEN 0::numeric \
                         ELSE ROUND(a.correct::numeric * 100 / a.total, 2) END AS acc, \
                    a.last_vt, a.last_id \
             FROM (SELECT DISTINCT user_id FROM u) AS u LEFT JOIN agg AS a ON a.user_id = u.user_id)"
    )
}

/// Give the recomputation's sort memory, for the transaction `tx` only: the window sorts
/// every affected user's votes (100 votes × 10,000 users is a 1 M-row sort), which at the
/// default 4 MB spills to disk.
async fn recompute_work_mem(tx: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SET LOCAL work_mem = '128MB'")
        .execute(tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Every user with stored statistics or a verified vote.
const ALL_USERS: &str = "SELECT user_id FROM prediction_votes WHERE is_correct IS NOT NULL \
    UNION SELECT user_id FROM user_prediction_stats";

/// Replace the statistics of `users` (sorted) with the recomputation, `updated_at = now`, in
/// `tx`; returns how many users it wrote.
///
/// Concurrency (READ COMMITTED): the rows are created if missing and locked in user order
/// **before** the votes are read — the verifier locks the same rows in the same order
/// (`record_verifications`), so whichever comes second waits; the recomputation is a later
/// statement, so it sees every verification committed before the locks were granted, and a
/// verification that waits applies its delta to the recomputed row afterwards. Either way the
/// statistics equal a recomputation.
async fn recompute_users(
    tx: &mut sqlx::PgConnection,
    users: &[String],
    now: DateTime<Utc>,
) -> Result<u64> {
    if users.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
         accuracy_rate, current_streak, max_streak, updated_at) \
         SELECT u, 0, 0, 0, 0, 0, $2 FROM UNNEST($1::text[]) AS u ORDER BY u \
         ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(users)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    sqlx::query(
        "SELECT count(*) FROM (SELECT 1 FROM user_prediction_stats WHERE user_id = ANY($1) \
         ORDER BY user_id FOR UPDATE) AS locked",
    )
    .bind(users)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    recompute_work_mem(tx).await?;
    let cte = recompute_cte("SELECT unnest($1::text[]) AS user_id");
    let done = sqlx::query(&format!(
        "WITH {cte} \
         UPDATE user_prediction_stats AS s SET total_participations = r.total, \
             correct_count = r.correct, accuracy_rate = r.acc, current_streak = r.cur, \
             max_streak = r.best, updated_at = $2, last_verify_time = r.last_vt, \
             last_prediction_id = r.last_id \
         FROM r WHERE s.user_id = r.user_id"
    ))
    .bind(users)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

/// Insert a broadcast row and, when `voters > 0`, the fan-out row of `kind` for `prediction_id`.
async fn insert_revision_outbox(
    tx: &mut sqlx::PgConnection,
    broadcast_kind: &str,
    broadcast: String,
    prediction_id: &str,
    kind: NoticeKind,
    voters: u64,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (kind, payload, state, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, 'pending', 0, $3, $3)",
    )
    .bind(broadcast_kind)
    .bind(broadcast)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if voters > 0 {
        // hidden from the previous release's claimers, as record_verifications does
        sqlx::query(
            "INSERT INTO outbox (kind, payload, fanout_prediction_id, fanout_remaining, \
                                 fanout_kind, claimed_until, state, attempts, next_attempt_at, \
                                 created_at) \
             VALUES ('notify_voters', $1, $2, $3, $4, 'infinity', 'pending', 0, $5, $5)",
        )
        .bind(kind_fanout_payload(prediction_id, kind)?)
        .bind(prediction_id)
        .bind(i64::try_from(voters).unwrap_or(i64::MAX))
        .bind(fanout_kind_column(kind))
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl SymbolRepository for PgStore {
    async fn active_symbols(&self) -> Result<Vec<Symbol>> {
        common::active_symbols(self).await
    }

    async fn upsert_symbols(&self, symbols: &[Symbol]) -> Result<()> {
        if symbols.is_empty() {
            return Ok(());
        }
        // last one wins within the batch, as a sequence of upserts would
        let mut by_code: HashMap<&str, &Symbol> = HashMap::new();
        for s in symbols {
            by_code.insert(s.code.as_str(), s);
        }
        let codes: Vec<String> = by_code.values().map(|s| s.code.clone()).collect();
        let names: Vec<String> = by_code.values().map(|s| s.name.clone()).collect();
        let providers: Vec<String> = by_code
            .values()
            .map(|s| s.provider_symbol.clone())
            .collect();
        let active: Vec<bool> = by_code.values().map(|s| s.active).collect();
        sqlx::query(
            "INSERT INTO symbols (code, name, provider_symbol, active) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[]) \
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, \
             provider_symbol = EXCLUDED.provider_symbol, active = EXCLUDED.active",
        )
        .bind(codes)
        .bind(names)
        .bind(providers)
        .bind(active)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl PriceTickRepository for PgStore {
    async fn insert_ticks(&self, ticks: &[PriceTick]) -> Result<()> {
        if ticks.is_empty() {
            return Ok(());
        }
        let codes: Vec<String> = ticks.iter().map(|t| t.symbol_code.clone()).collect();
        let prices: Vec<Decimal> = ticks.iter().map(|t| t.price).collect();
        let ts: Vec<DateTime<Utc>> = ticks.iter().map(|t| t.ts).collect();
        let sources: Vec<Option<&str>> = ticks.iter().map(|t| t.source.as_deref()).collect();
        sqlx::query(
            "INSERT INTO price_ticks (symbol_code, price, ts, source) \
             SELECT * FROM UNNEST($1::text[], $2::numeric[], $3::timestamptz[], $4::text[])",
        )
        .bind(codes)
        .bind(prices)
        .bind(ts)
        .bind(sources)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn first_ticks_at_or_after(
        &self,
        queries: &[TickQuery],
    ) -> Result<Vec<Option<PriceTick>>> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let codes: Vec<String> = queries.iter().map(|q| q.symbol_code.clone()).collect();
        let ats: Vec<DateTime<Utc>> = queries.iter().map(|q| q.at).collect();
        let demo: Vec<bool> = queries.iter().map(|q| q.allow_demo).collect();
        // A demo tick answers only a query that allows it (NULL sources are real providers).
        let rows = sqlx::query(
            "SELECT q.i, t.symbol_code, t.price, t.ts, t.source \
             FROM UNNEST($1::text[], $2::timestamptz[], $3::bool[]) \
                  WITH ORDINALITY AS q(code, at_ts, allow_demo, i) \
             LEFT JOIN LATERAL ( \
                 SELECT symbol_code, price, ts, source FROM price_ticks \
                 WHERE symbol_code = q.code AND ts >= q.at_ts \
                   AND (q.allow_demo OR source IS DISTINCT FROM 'demo') \
                 ORDER BY ts LIMIT 1 \
             ) t ON true \
             ORDER BY q.i",
        )
        .bind(codes)
        .bind(ats)
        .bind(demo)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(row::joined_tick).collect()
    }

    async fn latest_tick(&self, symbol_code: &str) -> Result<Option<PriceTick>> {
        common::latest_tick(self, symbol_code).await
    }

    async fn candles(&self, query: &CandleQuery) -> Result<Vec<Candle>> {
        common::candles(self, query).await
    }

    async fn delete_ticks_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        self.execute(
            "DELETE FROM price_ticks WHERE ctid IN \
             (SELECT ctid FROM price_ticks WHERE ts < $1 LIMIT $2)",
            &[Arg::Instant(before), Arg::Int(i64::from(limit))],
        )
        .await
    }
}

#[async_trait]
impl PredictionRepository for PgStore {
    async fn insert_prediction(&self, p: &Prediction) -> Result<()> {
        common::insert_prediction(self, p).await
    }

    async fn insert_votes(&self, votes: &[Vote]) -> Result<()> {
        if votes.is_empty() {
            return Ok(());
        }
        let pids: Vec<String> = votes.iter().map(|v| v.prediction_id.clone()).collect();
        let uids: Vec<String> = votes.iter().map(|v| v.user_id.clone()).collect();
        let opts: Vec<String> = votes.iter().map(|v| v.selected_option.clone()).collect();
        let correct: Vec<Option<bool>> = votes.iter().map(|v| v.is_correct).collect();
        let created: Vec<DateTime<Utc>> = votes.iter().map(|v| v.created_at).collect();
        sqlx::query(
            "INSERT INTO prediction_votes (prediction_id, user_id, selected_option, is_correct, created_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[])",
        )
        .bind(pids)
        .bind(uids)
        .bind(opts)
        .bind(correct)
        .bind(created)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_prediction(&self, id: &str) -> Result<Option<Prediction>> {
        common::get_prediction(self, id).await
    }

    async fn list_predictions(&self, query: &PredictionQuery) -> Result<Vec<Prediction>> {
        common::list_predictions(self, query).await
    }

    async fn vote_counts(&self, prediction_id: &str) -> Result<Vec<OptionVotes>> {
        common::vote_counts(self, prediction_id).await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim_for: Duration,
    ) -> Result<Vec<Prediction>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = add_duration(now, claim_for)?;
        let rows = sqlx::query(&format!(
            "WITH claimed AS ( \
                 UPDATE predictions SET claimed_until = $2 WHERE id IN ( \
                     SELECT id FROM predictions \
                     WHERE status = 'active' AND verify_rule = 'auto' AND verify_time <= $1 \
                       AND (claimed_until IS NULL OR claimed_until <= $1) \
                     ORDER BY verify_time, id LIMIT $3 \
                     FOR UPDATE SKIP LOCKED) \
                 RETURNING *) \
             SELECT {cols} FROM claimed ORDER BY verify_time, id",
            cols = common::prediction_columns::<PgStore>()
        ))
        .bind(now)
        .bind(until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(row::prediction).collect()
    }

    async fn release_claims(&self, ids: &[String]) -> Result<()> {
        common::release_claims(self, ids).await
    }

    async fn next_due(&self, limit: u32) -> Result<Vec<DueSymbol>> {
        common::next_due(self, limit).await
    }

    async fn record_verifications(&self, records: &[VerificationRecord]) -> Result<RecordSummary> {
        let prepared = prepare_records(records);
        if prepared.records.is_empty() {
            return Ok(summarize(&prepared, &HashMap::new(), 0));
        }
        let n = prepared.records.len();
        let mut ids = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut prices: Vec<Option<Decimal>> = Vec::with_capacity(n);
        let mut corrects: Vec<Option<String>> = Vec::with_capacity(n);
        let mut pcts: Vec<Option<Decimal>> = Vec::with_capacity(n);
        let mut sources: Vec<Option<String>> = Vec::with_capacity(n);
        let mut price_ts: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut providers: Vec<Option<String>> = Vec::with_capacity(n);
        let mut verified_at = Vec::with_capacity(n);
        let mut reasons: Vec<Option<String>> = Vec::with_capacity(n);
        let mut manual = Vec::with_capacity(n);
        for r in &prepared.records {
            let c = record_columns(r);
            ids.push(r.prediction_id.clone());
            statuses.push(c.status.to_owned());
            prices.push(c.verdict.map(|v| v.price_at_verify));
            corrects.push(c.verdict.map(|v| v.correct_option.clone()));
            pcts.push(c.verdict.and_then(|v| v.price_change_percent));
            sources.push(c.verdict.map(|v| v.price_source.as_str().to_owned()));
            price_ts.push(c.verdict.map(|v| v.price_at_verify_ts));
            providers.push(c.verdict.and_then(|v| v.price_provider.clone()));
            verified_at.push(r.verified_at);
            reasons.push(c.reason.map(str::to_owned));
            manual.push(r.manual);
        }

        let mut tx = self.pool.begin().await.map_err(db)?;

        // 1. lock the batch's predictions in id order (concurrent recorders never deadlock here)
        let mut sorted_ids = ids.clone();
        sorted_ids.sort();
        sqlx::query("SELECT id FROM predictions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&sorted_ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;

        // 2. update the still-eligible predictions; RETURNING tells which ones
        let rows = sqlx::query(
            "UPDATE predictions AS p SET \
                 status = d.status, \
                 price_at_verify = CASE WHEN d.status = 'ended' THEN d.price ELSE p.price_at_verify END, \
                 correct_option = CASE WHEN d.status = 'ended' THEN d.correct ELSE p.correct_option END, \
                 price_change_percent = CASE WHEN d.status = 'ended' THEN d.pct ELSE p.price_change_percent END, \
                 price_source = CASE WHEN d.status = 'ended' THEN d.source ELSE p.price_source END, \
                 price_at_verify_ts = CASE WHEN d.status = 'ended' THEN d.price_ts ELSE p.price_at_verify_ts END, \
                 verified_at = CASE WHEN d.status = 'ended' THEN d.verified_at ELSE p.verified_at END, \
                 price_provider = CASE WHEN d.status = 'ended' THEN d.provider ELSE p.price_provider END, \
                 review_reason = CASE WHEN d.status = 'needs_review' THEN d.reason ELSE p.review_reason END, \
                 claimed_until = NULL \
             FROM UNNEST($1::text[], $2::text[], $3::numeric[], $4::text[], $5::numeric[], $6::text[], \
                         $7::timestamptz[], $8::timestamptz[], $9::text[], $10::bool[], $11::text[]) \
                  AS d(id, status, price, correct, pct, source, price_ts, verified_at, reason, manual, \
                       provider) \
             WHERE p.id = d.id \
               AND (p.status = 'active' OR (d.manual AND p.status = 'needs_review')) \
             RETURNING p.id, p.status, p.symbol_code, p.verify_time",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&prices)
        .bind(&corrects)
        .bind(&pcts)
        .bind(&sources)
        .bind(&price_ts)
        .bind(&verified_at)
        .bind(&reasons)
        .bind(&manual)
        .bind(&providers)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut updated: HashMap<String, String> = HashMap::with_capacity(rows.len());
        let mut symbol_of: HashMap<String, String> = HashMap::with_capacity(rows.len());
        let mut verify_time_of: HashMap<String, DateTime<Utc>> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id").map_err(db)?;
            let status: String = row.try_get("status").map_err(db)?;
            let symbol: String = row.try_get("symbol_code").map_err(db)?;
            verify_time_of.insert(id.clone(), row.try_get("verify_time").map_err(db)?);
            symbol_of.insert(id.clone(), symbol);
            updated.insert(id, status);
        }

        let verified: Vec<&VerificationRecord> = prepared
            .records
            .iter()
            .copied()
            .filter(|r| updated.get(&r.prediction_id).map(String::as_str) == Some("ended"))
            .collect();

        let mut votes_marked = 0u64;
        if !verified.is_empty() {
            let mut v_ids = Vec::with_capacity(verified.len());
            let mut v_correct = Vec::with_capacity(verified.len());
            let mut v_at = Vec::with_capacity(verified.len());
            let mut payloads = Vec::with_capacity(verified.len());
            for r in &verified {
                let c = record_columns(r);
                let Some(verdict) = c.verdict else { continue };
                let symbol = symbol_of
                    .get(&r.prediction_id)
                    .map(String::as_str)
                    .unwrap_or_default();
                payloads.push(verified_payload(&r.prediction_id, symbol, verdict)?);
                v_ids.push(r.prediction_id.clone());
                v_correct.push(verdict.correct_option.clone());
                v_at.push(r.verified_at);
            }

            // 3. mark every vote of the verified predictions; RETURNING feeds the stats fold
            let vote_rows = sqlx::query(
                "UPDATE prediction_votes AS v SET is_correct = (v.selected_option = d.correct) \
                 FROM UNNEST($1::text[], $2::text[]) AS d(id, correct) \
                 WHERE v.prediction_id = d.id \
                 RETURNING v.prediction_id, v.user_id, v.is_correct",
            )
            .bind(&v_ids)
            .bind(&v_correct)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            votes_marked = vote_rows.len() as u64;
            let mut votes = Vec::with_capacity(vote_rows.len());
            for row in &vote_rows {
                votes.push((
                    row.try_get::<String, _>(0).map_err(db)?,
                    row.try_get::<String, _>(1).map_err(db)?,
                    row.try_get::<bool, _>(2).map_err(db)?,
                ));
            }
            // marked votes per prediction: the size of its fan-out
            let with_votes = votes_per_prediction(&votes);
            let deltas = fold_votes(&verified, votes, &verify_time_of);

            if !deltas.is_empty() {
                let users: Vec<String> = deltas.iter().map(|d| d.user_id.clone()).collect();
                let first_at = deltas
                    .iter()
                    .map(|d| d.updated_at)
                    .min()
                    .unwrap_or_else(Utc::now);
                // 4. create missing stats rows (sorted: concurrent inserts wait in one order)
                sqlx::query(
                    "INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
                     accuracy_rate, current_streak, max_streak, updated_at) \
                     SELECT u, 0, 0, 0, 0, 0, $2 FROM UNNEST($1::text[]) AS u ORDER BY u \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(&users)
                .bind(first_at)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                // 5. lock the stats rows in user order; what each already includes
                let locked = sqlx::query(
                    "SELECT user_id, last_verify_time, last_prediction_id \
                     FROM user_prediction_stats WHERE user_id = ANY($1) \
                     ORDER BY user_id FOR UPDATE",
                )
                .bind(&users)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                let mut stored_last: HashMap<String, (DateTime<Utc>, String)> = HashMap::new();
                for row in &locked {
                    let user: String = row.try_get("user_id").map_err(db)?;
                    let t: Option<DateTime<Utc>> = row.try_get("last_verify_time").map_err(db)?;
                    let id: Option<String> = row.try_get("last_prediction_id").map_err(db)?;
                    if let (Some(t), Some(id)) = (t, id) {
                        stored_last.insert(user, (t, id));
                    }
                }
                // Users this batch reaches out of verify_time order are recomputed (below).
                let late = late_users(&deltas, &stored_last);
                // 6. apply the folded deltas; streaks depend on the stored current streak
                let n: Vec<i64> = deltas.iter().map(|d| d.participations).collect();
                let c: Vec<i64> = deltas.iter().map(|d| d.correct).collect();
                let leading: Vec<i64> = deltas.iter().map(|d| d.leading).collect();
                let trailing: Vec<i64> = deltas.iter().map(|d| d.trailing).collect();
                let best: Vec<i64> = deltas.iter().map(|d| d.best).collect();
                let all: Vec<bool> = deltas.iter().map(|d| d.all_correct).collect();
                let at: Vec<DateTime<Utc>> = deltas.iter().map(|d| d.updated_at).collect();
                let last_t: Vec<DateTime<Utc>> = deltas.iter().map(|d| d.last.0).collect();
                let last_id: Vec<&str> = deltas.iter().map(|d| d.last.1.as_str()).collect();
                sqlx::query(
                    "UPDATE user_prediction_stats AS s SET \
                         total_participations = s.total_participations + d.n, \
                         correct_count = s.correct_count + d.c, \
                         accuracy_rate = ROUND((s.correct_count + d.c)::numeric * 100 \
                                               / (s.total_participations + d.n), 2), \
                         current_streak = CASE WHEN d.all_correct THEN s.current_streak + d.n \
                                               ELSE d.trail_n END, \
                         max_streak = GREATEST(s.max_streak, s.current_streak + d.lead_n, d.best), \
                         updated_at = d.vat, \
                         last_verify_time = CASE WHEN s.last_verify_time IS NULL \
                             OR (d.lt, d.lid) > (s.last_verify_time, s.last_prediction_id) \
                             THEN d.lt ELSE s.last_verify_time END, \
                         last_prediction_id = CASE WHEN s.last_verify_time IS NULL \
                             OR (d.lt, d.lid) > (s.last_verify_time, s.last_prediction_id) \
                             THEN d.lid ELSE s.last_prediction_id END \
                     FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
                                 $6::bigint[], $7::bool[], $8::timestamptz[], $9::timestamptz[], \
                                 $10::text[]) \
                          AS d(user_id, n, c, lead_n, trail_n, best, all_correct, vat, lt, lid) \
                     WHERE s.user_id = d.user_id",
                )
                .bind(&users)
                .bind(&n)
                .bind(&c)
                .bind(&leading)
                .bind(&trailing)
                .bind(&best)
                .bind(&all)
                .bind(&at)
                .bind(&last_t)
                .bind(&last_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                // 6b. the late ones from all their verified votes (the rows are locked)
                if !late.is_empty() {
                    let latest = at.iter().copied().max().unwrap_or(first_at);
                    recompute_users(&mut tx, &late, latest).await?;
                }
            }

            // 7. the outbox: per prediction its broadcast, then (if it has voters) one
            //    `notify_voters` row standing for one notification per voter. With the votes
            //    marked above it is the durable record of every voter's notification;
            //    claim_outbox expands it a page at a time. One row per voter here cost
            //    about 8 µs per vote, most of this transaction, on the verifier's critical path.
            let mut kinds: Vec<&'static str> = Vec::with_capacity(2 * v_ids.len());
            let mut texts: Vec<String> = Vec::with_capacity(2 * v_ids.len());
            let mut ats: Vec<DateTime<Utc>> = Vec::with_capacity(2 * v_ids.len());
            let mut fanouts: Vec<Option<&str>> = Vec::with_capacity(2 * v_ids.len());
            let mut sizes: Vec<Option<i64>> = Vec::with_capacity(2 * v_ids.len());
            for ((id, payload), at) in v_ids.iter().zip(payloads).zip(&v_at) {
                kinds.push("prediction_verified");
                texts.push(payload);
                fanouts.push(None);
                sizes.push(None);
                ats.push(*at);
                if let Some(&n) = with_votes.get(id.as_str()) {
                    kinds.push("notify_voters");
                    texts.push(fanout_payload(id)?);
                    fanouts.push(Some(id.as_str()));
                    sizes.push(Some(n));
                    ats.push(*at);
                }
            }
            sqlx::query(
                "INSERT INTO outbox (kind, payload, fanout_prediction_id, fanout_remaining, \
                                     claimed_until, state, attempts, next_attempt_at, created_at) \
                 SELECT kind, payload, fanout, remaining, \
                        CASE WHEN kind = 'notify_voters' THEN 'infinity'::timestamptz END, \
                        'pending', 0, vat, vat \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[]) \
                      WITH ORDINALITY AS x(kind, payload, fanout, remaining, vat, i) \
                 ORDER BY i",
            )
            .bind(&kinds)
            .bind(&texts)
            .bind(&fanouts)
            .bind(&sizes)
            .bind(&ats)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }

        tx.commit().await.map_err(db)?;
        Ok(summarize(&prepared, &updated, votes_marked))
    }

    async fn votes_for(&self, prediction_id: &str) -> Result<Vec<Vote>> {
        common::votes_for(self, prediction_id).await
    }

    async fn user_stats(&self, user_ids: &[String]) -> Result<Vec<UserStats>> {
        common::user_stats(self, user_ids).await
    }

    async fn recent_verified(&self, limit: u32) -> Result<Vec<Prediction>> {
        common::recent_verified(self, limit).await
    }

    async fn record_correction(&self, c: &Correction) -> Result<Revision> {
        common::record_correction(self, c).await
    }

    async fn record_void(&self, v: &VoidRecord) -> Result<Revision> {
        common::record_void(self, v).await
    }

    async fn recompute_stats(
        &self,
        mode: RecomputeMode,
        now: DateTime<Utc>,
    ) -> Result<Vec<StatsDiff>> {
        let cte = recompute_cte(ALL_USERS);
        let diff = format!(
            "SELECT r.user_id, r.total, r.correct, r.acc, r.cur, r.best, r.last_vt, r.last_id, \
                    {} \
             FROM r LEFT JOIN user_prediction_stats AS s ON s.user_id = r.user_id \
             WHERE CASE WHEN s.user_id IS NULL THEN r.total > 0 \
                        ELSE (s.total_participations, s.correct_count, s.accuracy_rate, \
                              s.current_streak, s.max_streak) \
                             <> (r.total, r.correct, r.acc, r.cur, r.best) END",
            row::STORED_STATS_COLUMNS
        );
        let rows = match mode {
            RecomputeMode::Check => {
                let mut tx = self.pool.begin().await.map_err(db)?;
                recompute_work_mem(&mut tx).await?;
                let rows = sqlx::query(&format!(
                    "WITH {cte}, d AS ({diff}) SELECT * FROM d ORDER BY user_id"
                ))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
                rows
            }
            RecomputeMode::Fix => {
                let mut tx = self.pool.begin().await.map_err(db)?;
                // As in recompute_users: every row that will be written exists and is locked,
                // in user order, before the votes are read.
                sqlx::query(
                    "INSERT INTO user_prediction_stats (user_id, total_participations, \
                     correct_count, accuracy_rate, current_streak, max_streak, updated_at) \
                     SELECT user_id, 0, 0, 0, 0, 0, $1::timestamptz FROM ( \
                         SELECT DISTINCT user_id FROM prediction_votes \
                         WHERE is_correct IS NOT NULL) AS voters \
                     ORDER BY user_id \
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query(
                    "SELECT count(*) FROM (SELECT 1 FROM user_prediction_stats \
                     ORDER BY user_id FOR UPDATE) AS locked",
                )
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                recompute_work_mem(&mut tx).await?;
                let rows = sqlx::query(&format!(
                    "WITH {cte}, d AS ({diff}), \
                     up AS (UPDATE user_prediction_stats AS s SET \
                                total_participations = d.total, correct_count = d.correct, \
                                accuracy_rate = d.acc, current_streak = d.cur, \
                                max_streak = d.best, updated_at = $1, \
                                last_verify_time = d.last_vt, last_prediction_id = d.last_id \
                            FROM d WHERE s.user_id = d.user_id RETURNING 1) \
                     SELECT * FROM d ORDER BY user_id"
                ))
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
                rows
            }
        };
        rows.iter().map(|r| row::stats_diff(r, now)).collect()
    }
}

#[async_trait]
impl OutboxRepository for PgStore {
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = add_duration(now, lease)?;
        self.expand_fanouts(now, limit).await?;
        let rows = sqlx::query(
            "WITH claimed AS ( \
                 UPDATE outbox SET claimed_until = $2 WHERE id IN ( \
                     SELECT id FROM outbox \
                     WHERE state = 'pending' AND kind <> 'notify_voters' \
                       AND next_attempt_at <= $1 \
                       AND (claimed_until IS NULL OR claimed_until <= $1) \
                     ORDER BY id LIMIT $3 \
                     FOR UPDATE SKIP LOCKED) \
                 RETURNING id, payload, attempts, last_error) \
             SELECT id, payload, attempts, last_error FROM claimed ORDER BY id",
        )
        .bind(now)
        .bind(until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let (out, poisoned) = row::claimed_messages(&rows)?;
        common::mark_undecodable(self, &poisoned).await?;
        Ok(out)
    }

    async fn mark_delivered(&self, ids: &[i64]) -> Result<()> {
        common::mark_delivered(self, ids).await
    }

    async fn reschedule(&self, id: i64, next_attempt_at: DateTime<Utc>, error: &str) -> Result<()> {
        common::reschedule(self, id, next_attempt_at, error).await
    }

    async fn mark_failed(&self, id: i64, error: &str) -> Result<()> {
        common::mark_failed(self, id, error).await
    }

    async fn outbox_rows(&self) -> Result<Vec<OutboxRow>> {
        common::outbox_rows(self, "payload").await
    }

    async fn delete_finished_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        self.execute(
            "DELETE FROM outbox WHERE id = ANY (ARRAY( \
                 SELECT id FROM outbox WHERE state <> 'pending' AND created_at < $1 \
                 ORDER BY created_at LIMIT $2))",
            &[Arg::Instant(before), Arg::Int(i64::from(limit))],
        )
        .await
    }
}

#[async_trait]
impl NewsRepository for PgStore {
    async fn insert_articles(&self, articles: &[NewsArticle]) -> Result<u64> {
        let articles = dedupe_articles(articles);
        if articles.is_empty() {
            return Ok(0);
        }
        let col = |f: fn(&NewsArticle) -> String| -> Vec<String> {
            articles.iter().map(|a| f(a)).collect()
        };
        let ids = col(|a| a.id.clone());
        let titles = col(|a| a.title.clone());
        let summaries = col(|a| a.summary.clone());
        let urls = col(|a| a.url.clone());
        let canon = col(|a| a.canonical_url.clone());
        let sources = col(|a| a.source.clone());
        let categories = col(|a| a.category.clone());
        let contents: Vec<Option<String>> = articles.iter().map(|a| a.content.clone()).collect();
        let thumbs: Vec<Option<String>> =
            articles.iter().map(|a| a.thumbnail_url.clone()).collect();
        let published: Vec<DateTime<Utc>> = articles.iter().map(|a| a.published_at).collect();
        let created: Vec<DateTime<Utc>> = articles.iter().map(|a| a.created_at).collect();
        let stories: Vec<Option<String>> = articles.iter().map(|a| a.story_id.clone()).collect();
        // TEXT[][] would need rectangular arrays: ship the symbol lists as JSON and unpack them
        let related: Vec<String> = articles
            .iter()
            .map(|a| serde_json::to_string(&a.related_symbols).unwrap_or_else(|_| "[]".into()))
            .collect();
        let done = sqlx::query(
            "INSERT INTO news_articles (id, title, summary, content, url, canonical_url, source, \
             category, thumbnail_url, published_at, related_symbols, created_at, story_id) \
             SELECT a.id, a.title, a.summary, a.content, a.url, a.canonical_url, a.source, \
                    a.category, a.thumb, a.published_at, \
                    ARRAY(SELECT json_array_elements_text(a.related::json)), a.created_at, \
                    a.story_id \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                         $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[], \
                         $12::timestamptz[], $13::text[]) \
                  AS a(id, title, summary, content, url, canonical_url, source, category, thumb, \
                       published_at, related, created_at, story_id) \
             ON CONFLICT DO NOTHING",
        )
        .bind(ids)
        .bind(titles)
        .bind(summaries)
        .bind(contents)
        .bind(urls)
        .bind(canon)
        .bind(sources)
        .bind(categories)
        .bind(thumbs)
        .bind(published)
        .bind(related)
        .bind(created)
        .bind(stories)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn upsert_articles(&self, articles: &[NewsArticle]) -> Result<ArticleWrites> {
        let (fresh, updated) = common::refresh_articles(self, articles).await?;
        let inserted = self.insert_articles(&fresh).await?;
        Ok(ArticleWrites { inserted, updated })
    }

    async fn latest_stories<'a>(
        &self,
        category: Option<&'a str>,
        limit: u32,
        max_sources: u32,
    ) -> Result<Vec<Story>> {
        common::latest_stories(self, category, limit, max_sources).await
    }

    async fn feed_states(&self) -> Result<Vec<(String, FeedHealth)>> {
        common::feed_states(self).await
    }

    async fn save_feed_states(&self, states: &[(String, FeedHealth)]) -> Result<()> {
        common::save_feed_states(self, states, Utc::now()).await
    }

    async fn latest_articles<'a>(
        &self,
        category: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<NewsArticle>> {
        common::latest_articles(self, category, limit).await
    }
}

#[async_trait]
impl DeviceTokenRepository for PgStore {
    async fn register_token(&self, token: &DeviceToken) -> Result<()> {
        common::register_token(self, token).await
    }

    async fn tokens_for_users(&self, user_ids: &[String]) -> Result<Vec<DeviceToken>> {
        common::tokens_for_users(self, user_ids).await
    }

    async fn delete_tokens(&self, tokens: &[String]) -> Result<u64> {
        common::delete_tokens(self, tokens).await
    }
}

#[async_trait]
impl Lease for PgStore {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<LeaseState> {
        let ttl_us = chrono_duration(ttl)?
            .num_microseconds()
            .ok_or(SqlError::LeaseTtl(ttl))?;
        // database time: instances with skewed clocks agree on expiry
        let row = sqlx::query(
            "INSERT INTO leases AS l (name, holder, term, expires_at) \
             VALUES ($1, $2, 1, now() + $3 * interval '1 microsecond') \
             ON CONFLICT (name) DO UPDATE SET \
                 holder = EXCLUDED.holder, \
                 term = CASE WHEN l.holder IS NOT DISTINCT FROM EXCLUDED.holder \
                                  AND l.expires_at > now() THEN l.term \
                             ELSE l.term + 1 END, \
                 expires_at = EXCLUDED.expires_at \
             WHERE l.holder = EXCLUDED.holder OR l.holder IS NULL OR l.expires_at <= now() \
             RETURNING holder, term, expires_at",
        )
        .bind(name)
        .bind(holder)
        .bind(ttl_us)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let row = match row {
            Some(row) => row,
            None => sqlx::query("SELECT holder, term, expires_at FROM leases WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?,
        };
        row::lease_state(&row, holder)
    }

    async fn release(&self, name: &str, holder: &str) -> Result<()> {
        self.execute(
            "UPDATE leases SET holder = NULL, expires_at = now() WHERE name = $1 AND holder = $2",
            &[Arg::Text(name), Arg::Text(holder)],
        )
        .await?;
        Ok(())
    }
}

/// `sql` with `args` bound in PostgreSQL's native types.
fn bound<'q>(
    sql: &'q str,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    args.iter().fold(sqlx::query(sql), |q, arg| match *arg {
        Arg::Text(v) => q.bind(v),
        Arg::OptText(v) => q.bind(v),
        Arg::Int(v) => q.bind(v),
        Arg::Flag(v) => q.bind(v),
        Arg::Instant(v) => q.bind(v),
        Arg::OptInstant(v) => q.bind(v),
        Arg::Decimal(v) => q.bind(v),
        Arg::OptDecimal(v) => q.bind(v),
        Arg::Texts(v) => q.bind(v),
        Arg::Ints(v) => q.bind(v),
    })
}

dialect_impl!(PgStore, PgRow, sqlx::Postgres, {
    fn member(col: &str, n: u8) -> String {
        format!("{col} = ANY(${n})")
    }
    const LOCK_ROWS: &'static str = " FOR UPDATE";
    // Exact NUMERIC max/min; open and close are the first and last by `ts`.
    const CANDLES: &'static str =
        "SELECT floor(extract(epoch FROM ts) / $4::bigint)::bigint * $4::bigint AS b, \
         (array_agg(price ORDER BY ts))[1] AS open, max(price) AS high, min(price) AS low, \
         (array_agg(price ORDER BY ts DESC))[1] AS close, count(*) AS n \
         FROM price_ticks WHERE symbol_code = $1 AND ts >= $2 AND ts < $3 \
         GROUP BY 1 ORDER BY 1";
    const CONDITIONS_AS_TEXT: &'static str =
        "auto_verify_conditions::text AS auto_verify_conditions";
    fn conditions_param(n: u8) -> String {
        format!("${n}::json")
    }

    async fn begin_write(&self) -> Result<Self::Tx> {
        self.pool.begin().await.map_err(db)
    }
});

#[async_trait]
impl JobStore for PgStore {
    async fn job_controls(&self) -> Result<Vec<JobControl>> {
        common::job_controls(self).await
    }

    async fn set_paused(&self, job: &str, paused: bool, at: DateTime<Utc>) -> Result<JobControl> {
        common::set_paused(self, job, paused, at).await
    }

    async fn set_last_scheduled(&self, job: &str, at: DateTime<Utc>, term: u64) -> Result<bool> {
        common::set_last_scheduled(self, job, at, term).await
    }

    async fn record_run(&self, run: &JobRun, keep: u32) -> Result<()> {
        common::record_run(self, run, keep).await
    }

    async fn recent_runs(&self, job: &str, limit: u32) -> Result<Vec<JobRun>> {
        common::recent_runs(self, job, limit).await
    }

    async fn prune_runs(&self, keep: u32) -> Result<u64> {
        common::prune_runs(self, keep).await
    }
}
