//! SQLite store.
//!
//! Representation (see `migrations/sqlite`): money is TEXT holding the exact decimal string;
//! instants are TEXT, RFC 3339 UTC with exactly six fractional digits and `Z`, so that text order
//! is time order; booleans are INTEGER 0/1; JSON is TEXT. Batches travel as one JSON parameter
//! unpacked with `json_each`, so every batch is one statement whatever its size (no
//! 32766-parameter limit). Writers that need several statements run in `BEGIN IMMEDIATE`
//! transactions, which SQLite serializes.

use super::common;
use super::dialect::{dialect_impl, Arg, Dialect};
use super::row::{self, Cells};
use super::{
    add_duration, dedupe_articles, expand_in_pages, fanout_kind_column, fanout_payload, fold_votes,
    kind_fanout_payload, late_users, map_sqlx, prepare_records, record_columns, summarize,
    verified_payload, votes_per_prediction, SqlError,
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
use serde_json::{json, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

const BACKEND: &str = "sqlite";

fn db(err: sqlx::Error) -> Error {
    map_sqlx(BACKEND, err)
}

/// An instant as stored: RFC 3339 UTC, six fractional digits, `Z` (sortable as text).
fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// One JSON parameter carrying a whole batch.
fn batch(values: Vec<Value>) -> String {
    Value::Array(values).to_string()
}

/// The statistics recomputation (guide: *Corrections and voids*), the one SQLite definition behind
/// corrections, voids and `recompute-stats`: a CTE list ending in `r(user_id, total, correct,
/// cur, best, acc)` with one row per user of `users` (a `SELECT` of `user_id`s), rebuilt from
/// the user's verified votes (marked, on `ended` predictions) in `verify_time`, then id, order.
///
/// Gaps and islands: `misses` counts the wrong results up to each row, so every run of correct
/// results shares one `misses`; the longest run is the best streak, the run after the last
/// wrong result (`misses = all_misses`) the current one. `acc` is exact text with two places,
/// half away from zero, by integer arithmetic (`'0.00'` without results), as goldjobs-core's
/// `accuracy_rate` writes it.
fn recompute_cte(users: &str) -> String {
    format!(
        "u AS ({users}), \
         marked AS ( \
             SELECT v.user_id AS user_id, v.is_correct AS ok, p.verify_time || p.id AS k, \
                    sum(1 - v.is_correct) OVER (PARTITION BY v.user_id \
                        ORDER BY p.verify_time, p.id ROWS UNBOUNDED PRECEDING) AS misses, \
                    sum(1 - v.is_correct) OVER (PARTITION BY v.user_id) AS all_misses \
             FROM prediction_votes AS v JOIN predictions AS p ON p.id = v.prediction_id \
             WHERE v.user_id IN (SELECT user_id FROM u) AND v.is_correct IS NOT NULL \
               AND p.status = 'ended'), \
         runs AS ( \
             SELECT user_id, misses, all_misses, sum(ok) AS run_len FROM marked \
             GROUP BY user_id, misses, all_misses), \
         agg AS ( \
             SELECT user_id, sum(run_len) + max(all_misses) AS total, sum(run_len) AS correct, \
                    max(run_len) AS best, \
                    sum(CASE WHEN misses = all_misses THEN run_len ELSE 0 END) AS cur \
             FROM runs GROUP BY user_id), \
         lastk AS (SELECT user_id, max(k) AS k FROM marked GROUP BY user_id), \
         h AS ( \
             SELECT u.user_id AS user_id, coalesce(a.total, 0) AS total, \
                    coalesce(a.correct, 0) AS correct, coalesce(a.cur, 0) AS cur, \
                    coalesce(a.best, 0) AS best, \
                    CASE WHEN coalesce(a.total, 0) = 0 THEN NULL \
                         ELSE (a.correct * 20000 + a.total) / (2 * a.total) END AS hundredths, \
                    substr(l.k, 1, 27) AS last_vt, substr(l.k, 28) AS last_id \
             FROM (SELECT DISTINCT user_id FROM u) AS u LEFT JOIN agg AS a ON a.user_id = u.user_id \
                  LEFT JOIN lastk AS l ON l.user_id = u.user_id), \
         r AS ( \
             SELECT user_id, total, correct, cur, best, last_vt, last_id, \
                    CASE WHEN hundredths IS NULL THEN '0.00' \
                         ELSE printf('%d.%02d', hundredths / 100, hundredths % 100) END AS acc \
             FROM h)"
    )
}

/// Every user with stored statistics or a verified vote.
const ALL_USERS: &str = "SELECT user_id FROM prediction_votes WHERE is_correct IS NOT NULL \
    UNION SELECT user_id FROM user_prediction_stats";

/// Replace the statistics of the users of `users` (a JSON array) with the recomputation,
/// `updated_at = now`; one statement. Returns how many users it wrote.
async fn recompute_users(
    tx: &mut sqlx::SqliteConnection,
    users: &[String],
    now: DateTime<Utc>,
) -> Result<u64> {
    if users.is_empty() {
        return Ok(0);
    }
    let cte = recompute_cte("SELECT value AS user_id FROM json_each(?1)");
    let done = sqlx::query(&format!(
        "WITH {cte} \
         INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
             accuracy_rate, current_streak, max_streak, updated_at, last_verify_time, \
             last_prediction_id) \
         SELECT user_id, total, correct, acc, cur, best, ?2, last_vt, last_id FROM r WHERE true \
         ON CONFLICT (user_id) DO UPDATE SET \
             total_participations = excluded.total_participations, \
             correct_count = excluded.correct_count, \
             accuracy_rate = excluded.accuracy_rate, \
             current_streak = excluded.current_streak, \
             max_streak = excluded.max_streak, \
             updated_at = excluded.updated_at, \
             last_verify_time = excluded.last_verify_time, \
             last_prediction_id = excluded.last_prediction_id"
    ))
    .bind(json!(users).to_string())
    .bind(ts(now))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

/// Insert a broadcast row and, when `voters > 0`, the fan-out row of `kind` for `prediction_id`.
async fn insert_revision_outbox(
    tx: &mut sqlx::SqliteConnection,
    broadcast_kind: &str,
    broadcast: String,
    prediction_id: &str,
    kind: NoticeKind,
    voters: u64,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut rows = vec![json!([broadcast_kind, broadcast, null, null, null])];
    if voters > 0 {
        rows.push(json!([
            "notify_voters",
            kind_fanout_payload(prediction_id, kind)?,
            prediction_id,
            voters,
            fanout_kind_column(kind)
        ]));
    }
    sqlx::query(
        "INSERT INTO outbox (kind, payload, fanout_prediction_id, fanout_remaining, fanout_kind, \
                             claimed_until, state, attempts, next_attempt_at, created_at) \
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                json_extract(value, '$[4]'), \
                CASE WHEN json_extract(value, '$[0]') = 'notify_voters' \
                     THEN '9999-12-31T23:59:59.999999Z' END, 'pending', 0, ?2, ?2 \
         FROM json_each(?1) ORDER BY key",
    )
    .bind(batch(rows))
    .bind(ts(at))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Every repository port and the lease on SQLite.
///
/// Build it with [`SqliteStore::connect`] (WAL, busy timeout, foreign keys, create if missing)
/// or from a pool the caller configured, run [`SqliteStore::migrate`] once at start, then share
/// it as `Arc<dyn Port>` for each port.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// A store on `pool`.
    pub fn new(pool: SqlitePool) -> Self {
        SqliteStore { pool }
    }

    /// Open (and create if missing) the database at `url` (`sqlite://path.db`,
    /// `sqlite::memory:`) with WAL journal, a 5 s busy timeout and foreign keys on.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(SqlError::SqliteUrl)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut pool = SqlitePoolOptions::new().max_connections(8);
        if in_memory {
            // an in-memory database lives as long as one of its connections
            pool = pool
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = pool.connect_with(options).await.map_err(db)?;
        Ok(SqliteStore { pool })
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Expand due `notify_voters` outbox rows into per-voter `notify` rows, up to `budget`
    /// voters in all, due at `now`, in pages of at most [`MAX_FANOUT_PAGE`](super::MAX_FANOUT_PAGE) voters, each page
    /// one `BEGIN IMMEDIATE` transaction with the cursors it moves (as the PostgreSQL store
    /// does): a crash repeats nothing and loses nothing.
    async fn expand_fanouts(&self, now: DateTime<Utc>, budget: u32) -> Result<()> {
        let now = ts(now);
        expand_in_pages(budget, |size| self.expand_fanout_page(&now, size)).await
    }

    /// One page of [`expand_fanouts`](Self::expand_fanouts); returns how many voters it gave.
    async fn expand_fanout_page(&self, now: &str, budget: i64) -> Result<i64> {
        let mut left = budget;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        // each pass gives at least one voter or finishes a row
        let passes = left + 1;
        for _ in 0..passes {
            if left <= 0 {
                break;
            }
            let Some(row) = sqlx::query(
                "SELECT id, fanout_prediction_id, fanout_cursor, fanout_kind FROM outbox \
                 WHERE state = 'pending' AND kind = 'notify_voters' AND next_attempt_at <= ?1 \
                 ORDER BY id LIMIT 1",
            )
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            else {
                break;
            };
            let id: i64 = row.try_get("id").map_err(db)?;
            // a fan-out row without a prediction id expands to nothing and is marked delivered
            let prediction_id = row.opt_text("fanout_prediction_id")?;
            let cursor = row.opt_text("fanout_cursor")?;
            // NULL: verified (rows before 0.2); 'corrected'; 'voided' (every vote: a void
            // unmarks them)
            let kind = row.opt_text("fanout_kind")?;
            // the page: the next `left` marked votes after the cursor, in user_id order
            let page = sqlx::query(
                "SELECT count(*) AS n, max(user_id) AS last FROM ( \
                     SELECT user_id FROM prediction_votes \
                     WHERE prediction_id = ?1 AND (?4 = 'voided' OR is_correct IS NOT NULL) \
                       AND (?2 IS NULL OR user_id > ?2) \
                     ORDER BY user_id LIMIT ?3)",
            )
            .bind(&prediction_id)
            .bind(&cursor)
            .bind(left)
            .bind(&kind)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            let n: i64 = page.try_get("n").map_err(db)?;
            let last = page.opt_text("last")?;
            if n > 0 {
                sqlx::query(
                    "INSERT INTO outbox (kind, payload, state, attempts, next_attempt_at, created_at) \
                     SELECT 'notify', json_object('kind', 'notify', 'data', json_object( \
                                'user_id', v.user_id, 'prediction_id', p.id, \
                                'question', p.question, 'selected_option', v.selected_option, \
                                'is_correct', json(CASE WHEN v.is_correct THEN 'true' ELSE 'false' END), \
                                'kind', coalesce(?5, 'verified'), \
                                'reason', CASE WHEN ?5 = 'voided' THEN p.review_reason END)), \
                            'pending', 0, ?4, ?4 \
                     FROM prediction_votes AS v JOIN predictions AS p ON p.id = v.prediction_id \
                     WHERE v.prediction_id = ?1 AND (?5 = 'voided' OR v.is_correct IS NOT NULL) \
                       AND (?2 IS NULL OR v.user_id > ?2) AND v.user_id <= ?3 \
                     ORDER BY v.user_id",
                )
                .bind(&prediction_id)
                .bind(&cursor)
                .bind(&last)
                .bind(now)
                .bind(&kind)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            if n < left {
                sqlx::query(
                    "UPDATE outbox SET state = 'delivered', fanout_remaining = 0, \
                     fanout_cursor = COALESCE(?2, fanout_cursor) WHERE id = ?1",
                )
                .bind(id)
                .bind(&last)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            } else {
                sqlx::query(
                    "UPDATE outbox SET fanout_cursor = ?2, \
                     fanout_remaining = max(coalesce(fanout_remaining, 0) - ?3, 1) WHERE id = ?1",
                )
                .bind(id)
                .bind(&last)
                .bind(n)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            left -= n;
        }
        tx.commit().await.map_err(db)?;
        Ok(budget - left)
    }

    /// Apply the embedded migrations (`migrations/sqlite`) not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, "migration failed", Some(Box::new(e) as BoxError)))
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

#[async_trait]
impl SymbolRepository for SqliteStore {
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
        let rows = by_code
            .values()
            .map(|s| json!([s.code, s.name, s.provider_symbol, s.active]))
            .collect();
        sqlx::query(
            "INSERT INTO symbols (code, name, provider_symbol, active) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                    json_extract(value, '$[2]'), json_extract(value, '$[3]') \
             FROM json_each(?1) WHERE true \
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, \
             provider_symbol = excluded.provider_symbol, active = excluded.active",
        )
        .bind(batch(rows))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }
}

#[async_trait]
impl PriceTickRepository for SqliteStore {
    async fn insert_ticks(&self, ticks: &[PriceTick]) -> Result<()> {
        if ticks.is_empty() {
            return Ok(());
        }
        let rows = ticks
            .iter()
            .map(|t| json!([t.symbol_code, t.price.to_string(), ts(t.ts), t.source]))
            .collect();
        sqlx::query(
            "INSERT INTO price_ticks (symbol_code, price, ts, source) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                    json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?1)",
        )
        .bind(batch(rows))
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
        let rows = queries
            .iter()
            .map(|q| json!([q.symbol_code, ts(q.at), q.allow_demo]))
            .collect();
        // A demo tick answers only a query that allows it (NULL sources are real providers).
        let rows = sqlx::query(
            "SELECT q.key AS i, t.symbol_code, t.price, t.ts, t.source FROM json_each(?1) AS q \
             LEFT JOIN price_ticks AS t ON t.rowid = ( \
                 SELECT rowid FROM price_ticks \
                 WHERE symbol_code = json_extract(q.value, '$[0]') \
                   AND ts >= json_extract(q.value, '$[1]') \
                   AND (json_extract(q.value, '$[2]') OR source IS NOT 'demo') \
                 ORDER BY ts LIMIT 1) \
             ORDER BY q.key",
        )
        .bind(batch(rows))
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
            "DELETE FROM price_ticks WHERE rowid IN \
             (SELECT rowid FROM price_ticks WHERE ts < ?1 LIMIT ?2)",
            &[Arg::Instant(before), Arg::Int(i64::from(limit))],
        )
        .await
    }
}

#[async_trait]
impl PredictionRepository for SqliteStore {
    async fn insert_prediction(&self, p: &Prediction) -> Result<()> {
        common::insert_prediction(self, p).await
    }

    async fn insert_votes(&self, votes: &[Vote]) -> Result<()> {
        if votes.is_empty() {
            return Ok(());
        }
        let rows = votes
            .iter()
            .map(|v| {
                json!([
                    v.prediction_id,
                    v.user_id,
                    v.selected_option,
                    v.is_correct,
                    ts(v.created_at)
                ])
            })
            .collect();
        sqlx::query(
            "INSERT INTO prediction_votes (prediction_id, user_id, selected_option, is_correct, created_at) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                    json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                    json_extract(value, '$[4]') FROM json_each(?1)",
        )
        .bind(batch(rows))
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
        // one statement: atomic, and SQLite runs one writer at a time
        let rows = sqlx::query(&format!(
            "UPDATE predictions SET claimed_until = ?2 WHERE id IN ( \
                 SELECT id FROM predictions \
                 WHERE status = 'active' AND verify_rule = 'auto' AND verify_time <= ?1 \
                   AND (claimed_until IS NULL OR claimed_until <= ?1) \
                 ORDER BY verify_time, id LIMIT ?3) \
             RETURNING {cols}",
            cols = common::prediction_columns::<SqliteStore>()
        ))
        .bind(ts(now))
        .bind(ts(until))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut out = rows
            .iter()
            .map(row::prediction)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| (a.verify_time, &a.id).cmp(&(b.verify_time, &b.id)));
        Ok(out)
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
        let decisions = prepared
            .records
            .iter()
            .map(|r| {
                let c = record_columns(r);
                json!([
                    r.prediction_id,
                    c.status,
                    c.verdict.map(|v| v.price_at_verify.to_string()),
                    c.verdict.map(|v| v.correct_option.clone()),
                    c.verdict
                        .and_then(|v| v.price_change_percent.map(|p| p.to_string())),
                    c.verdict.map(|v| v.price_source.as_str()),
                    c.verdict.map(|v| ts(v.price_at_verify_ts)),
                    ts(r.verified_at),
                    c.reason,
                    r.manual,
                    c.verdict.and_then(|v| v.price_provider.clone()),
                ])
            })
            .collect();

        // BEGIN IMMEDIATE takes the write lock now: no upgrade deadlock, writers serialize
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;

        // 1. the still-eligible predictions; RETURNING tells which ones. (`+status` keeps the
        //    planner on the primary key: the status index would scan every active prediction
        //    once per record.)
        let rows = sqlx::query(
            "UPDATE predictions SET \
                 status = d.r_status, \
                 price_at_verify = CASE WHEN d.r_status = 'ended' THEN d.r_price ELSE price_at_verify END, \
                 correct_option = CASE WHEN d.r_status = 'ended' THEN d.r_correct ELSE correct_option END, \
                 price_change_percent = CASE WHEN d.r_status = 'ended' THEN d.r_pct ELSE price_change_percent END, \
                 price_source = CASE WHEN d.r_status = 'ended' THEN d.r_source ELSE price_source END, \
                 price_at_verify_ts = CASE WHEN d.r_status = 'ended' THEN d.r_price_ts ELSE price_at_verify_ts END, \
                 price_provider = CASE WHEN d.r_status = 'ended' THEN d.r_provider ELSE price_provider END, \
                 verified_at = CASE WHEN d.r_status = 'ended' THEN d.r_verified_at ELSE verified_at END, \
                 review_reason = CASE WHEN d.r_status = 'needs_review' THEN d.r_reason ELSE review_reason END, \
                 claimed_until = NULL \
             FROM (SELECT json_extract(value, '$[0]') AS r_id, json_extract(value, '$[1]') AS r_status, \
                          json_extract(value, '$[2]') AS r_price, json_extract(value, '$[3]') AS r_correct, \
                          json_extract(value, '$[4]') AS r_pct, json_extract(value, '$[5]') AS r_source, \
                          json_extract(value, '$[6]') AS r_price_ts, json_extract(value, '$[7]') AS r_verified_at, \
                          json_extract(value, '$[8]') AS r_reason, json_extract(value, '$[9]') AS r_manual, \
                          json_extract(value, '$[10]') AS r_provider \
                   FROM json_each(?1)) AS d \
             WHERE predictions.id = d.r_id \
               AND (+predictions.status = 'active' \
                    OR (d.r_manual AND +predictions.status = 'needs_review')) \
             RETURNING id, status, symbol_code, verify_time",
        )
        .bind(batch(decisions))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut updated: HashMap<String, String> = HashMap::with_capacity(rows.len());
        let mut symbol_of: HashMap<String, String> = HashMap::with_capacity(rows.len());
        let mut verify_time_of: HashMap<String, DateTime<Utc>> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id = row.text("id")?;
            symbol_of.insert(id.clone(), row.text("symbol_code")?);
            verify_time_of.insert(id.clone(), row.instant("verify_time")?);
            updated.insert(id, row.text("status")?);
        }
        let verified: Vec<&VerificationRecord> = prepared
            .records
            .iter()
            .copied()
            .filter(|r| updated.get(&r.prediction_id).map(String::as_str) == Some("ended"))
            .collect();

        let mut votes_marked = 0u64;
        if !verified.is_empty() {
            let mut marks = Vec::with_capacity(verified.len());
            let mut outbox = Vec::with_capacity(verified.len());
            for r in &verified {
                let Some(verdict) = record_columns(r).verdict else {
                    continue;
                };
                let symbol = symbol_of
                    .get(&r.prediction_id)
                    .map(String::as_str)
                    .unwrap_or_default();
                marks.push(json!([r.prediction_id, verdict.correct_option]));
                outbox.push((
                    r.prediction_id.as_str(),
                    verified_payload(&r.prediction_id, symbol, verdict)?,
                    ts(r.verified_at),
                ));
            }

            // 2. mark every vote; RETURNING feeds the stats fold
            let vote_rows = sqlx::query(
                "UPDATE prediction_votes SET is_correct = (selected_option = d.r_correct) \
                 FROM (SELECT json_extract(value, '$[0]') AS r_id, \
                              json_extract(value, '$[1]') AS r_correct FROM json_each(?1)) AS d \
                 WHERE prediction_votes.prediction_id = d.r_id \
                 RETURNING prediction_id, user_id, is_correct",
            )
            .bind(batch(marks))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            votes_marked = vote_rows.len() as u64;
            let mut votes = Vec::with_capacity(vote_rows.len());
            for row in &vote_rows {
                votes.push((
                    row.text("prediction_id")?,
                    row.text("user_id")?,
                    row.try_get::<bool, _>("is_correct").map_err(db)?,
                ));
            }
            // marked votes per prediction: the size of its fan-out
            let with_votes = votes_per_prediction(&votes);
            let deltas = fold_votes(&verified, votes, &verify_time_of);

            if !deltas.is_empty() {
                // 3. the voters' current stats (we hold the write lock: nobody changes them)
                let users: Vec<&str> = deltas.iter().map(|d| d.user_id.as_str()).collect();
                let old_rows = sqlx::query(&format!(
                    "SELECT {}, last_verify_time, last_prediction_id \
                         FROM user_prediction_stats \
                         WHERE user_id IN (SELECT value FROM json_each(?1))",
                    row::STATS_COLUMNS
                ))
                .bind(json!(users).to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
                let mut old: HashMap<String, UserStats> = HashMap::with_capacity(old_rows.len());
                let mut stored_last: HashMap<String, (DateTime<Utc>, String)> = HashMap::new();
                for row in &old_rows {
                    let s = row::user_stats(row)?;
                    let t = row.opt_instant("last_verify_time")?;
                    let id: Option<String> = row.opt_text("last_prediction_id")?;
                    if let (Some(t), Some(id)) = (t, id) {
                        stored_last.insert(s.user_id.clone(), (t, id));
                    }
                    old.insert(s.user_id.clone(), s);
                }
                // Users this batch reaches out of verify_time order are recomputed (below).
                let late = late_users(&deltas, &stored_last);
                // 4. the new stats, exact decimals computed here, written in one upsert
                let new_rows = deltas
                    .iter()
                    .map(|d| {
                        let before = old
                            .remove(&d.user_id)
                            .unwrap_or_else(|| UserStats::empty(d.user_id.clone(), d.updated_at));
                        let s = d.apply(&before);
                        let last = match stored_last.get(&d.user_id) {
                            Some(stored) if *stored > d.last => stored.clone(),
                            _ => d.last.clone(),
                        };
                        json!([
                            s.user_id,
                            s.total_participations,
                            s.correct_count,
                            s.accuracy_rate.to_string(),
                            s.current_streak,
                            s.max_streak,
                            ts(s.updated_at),
                            ts(last.0),
                            last.1
                        ])
                    })
                    .collect();
                sqlx::query(
                    "INSERT INTO user_prediction_stats (user_id, total_participations, correct_count, \
                     accuracy_rate, current_streak, max_streak, updated_at, last_verify_time, \
                     last_prediction_id) \
                     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                            json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                            json_extract(value, '$[4]'), json_extract(value, '$[5]'), \
                            json_extract(value, '$[6]'), json_extract(value, '$[7]'), \
                            json_extract(value, '$[8]') FROM json_each(?1) WHERE true \
                     ON CONFLICT (user_id) DO UPDATE SET \
                         total_participations = excluded.total_participations, \
                         correct_count = excluded.correct_count, \
                         accuracy_rate = excluded.accuracy_rate, \
                         current_streak = excluded.current_streak, \
                         max_streak = excluded.max_streak, \
                         updated_at = excluded.updated_at, \
                         last_verify_time = excluded.last_verify_time, \
                         last_prediction_id = excluded.last_prediction_id",
                )
                .bind(batch(new_rows))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                // 4b. the late ones from all their verified votes
                if !late.is_empty() {
                    let latest = deltas
                        .iter()
                        .map(|d| d.updated_at)
                        .max()
                        .unwrap_or_else(Utc::now);
                    recompute_users(&mut tx, &late, latest).await?;
                }
            }

            // 5. the outbox: per prediction its broadcast, then (if it has voters) one
            //    `notify_voters` row standing for one notification per voter, expanded by
            //    claim_outbox (see the PostgreSQL store)
            let mut rows = Vec::with_capacity(2 * outbox.len());
            for (id, payload, at) in outbox {
                let fanout = with_votes.get(id).copied();
                rows.push(json!(["prediction_verified", payload, at, null, null]));
                if let Some(n) = fanout {
                    rows.push(json!(["notify_voters", fanout_payload(id)?, at, id, n]));
                }
            }
            sqlx::query(
                "INSERT INTO outbox (kind, payload, fanout_prediction_id, fanout_remaining, \
                                     claimed_until, state, attempts, next_attempt_at, created_at) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                        json_extract(value, '$[3]'), json_extract(value, '$[4]'), \
                        CASE WHEN json_extract(value, '$[0]') = 'notify_voters' \
                             THEN '9999-12-31T23:59:59.999999Z' END, 'pending', 0, \
                        json_extract(value, '$[2]'), json_extract(value, '$[2]') \
                 FROM json_each(?1) ORDER BY key",
            )
            .bind(batch(rows))
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
        // Accuracy compared by value: '0' and '0.00' are the same.
        let diff_sql = format!(
            "WITH {cte} \
             SELECT r.user_id, r.total, r.correct, r.acc, r.cur, r.best, \
                    {stored} \
             FROM r LEFT JOIN user_prediction_stats AS s ON s.user_id = r.user_id \
             WHERE (s.user_id IS NULL AND r.total > 0) \
                OR s.total_participations <> r.total OR s.correct_count <> r.correct \
                OR CAST(s.accuracy_rate AS REAL) <> CAST(r.acc AS REAL) \
                OR s.current_streak <> r.cur OR s.max_streak <> r.best \
             ORDER BY r.user_id",
            stored = row::STORED_STATS_COLUMNS
        );
        let mut tx = match mode {
            RecomputeMode::Check => self.pool.begin().await.map_err(db)?,
            RecomputeMode::Fix => self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?,
        };
        let rows = sqlx::query(&diff_sql)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let diffs = rows
            .iter()
            .map(|r| row::stats_diff(r, now))
            .collect::<Result<Vec<_>>>()?;
        if mode == RecomputeMode::Fix && !diffs.is_empty() {
            let users: Vec<String> = diffs.iter().map(|d| d.user_id.clone()).collect();
            recompute_users(&mut tx, &users, now).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(diffs)
    }
}

#[async_trait]
impl OutboxRepository for SqliteStore {
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
            "UPDATE outbox SET claimed_until = ?2 WHERE id IN ( \
                 SELECT id FROM outbox \
                 WHERE state = 'pending' AND kind <> 'notify_voters' AND next_attempt_at <= ?1 \
                   AND (claimed_until IS NULL OR claimed_until <= ?1) \
                 ORDER BY id LIMIT ?3) \
             RETURNING id, payload, attempts, last_error",
        )
        .bind(ts(now))
        .bind(ts(until))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let (mut out, poisoned) = row::claimed_messages(&rows)?;
        common::mark_undecodable(self, &poisoned).await?;
        out.sort_by_key(|m| m.id);
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
            "DELETE FROM outbox WHERE id IN ( \
                 SELECT id FROM outbox WHERE state <> 'pending' AND created_at < ?1 \
                 ORDER BY created_at LIMIT ?2)",
            &[Arg::Instant(before), Arg::Int(i64::from(limit))],
        )
        .await
    }
}

#[async_trait]
impl NewsRepository for SqliteStore {
    async fn insert_articles(&self, articles: &[NewsArticle]) -> Result<u64> {
        let articles = dedupe_articles(articles);
        if articles.is_empty() {
            return Ok(0);
        }
        let rows = articles
            .iter()
            .map(|a| {
                json!([
                    a.id,
                    a.title,
                    a.summary,
                    a.content,
                    a.url,
                    a.canonical_url,
                    a.source,
                    a.category,
                    a.thumbnail_url,
                    ts(a.published_at),
                    json!(a.related_symbols).to_string(),
                    ts(a.created_at),
                    a.story_id
                ])
            })
            .collect();
        let done = sqlx::query(
            "INSERT INTO news_articles (id, title, summary, content, url, canonical_url, source, \
             category, thumbnail_url, published_at, related_symbols, created_at, story_id) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), \
                    json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                    json_extract(value, '$[4]'), json_extract(value, '$[5]'), \
                    json_extract(value, '$[6]'), json_extract(value, '$[7]'), \
                    json_extract(value, '$[8]'), json_extract(value, '$[9]'), \
                    json_extract(value, '$[10]'), json_extract(value, '$[11]'), \
                    json_extract(value, '$[12]') \
             FROM json_each(?1) WHERE true \
             ON CONFLICT DO NOTHING",
        )
        .bind(batch(rows))
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
impl DeviceTokenRepository for SqliteStore {
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
impl Lease for SqliteStore {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<LeaseState> {
        // one database file means one machine: its clock is the only clock
        let now = Utc::now();
        let expires = add_duration(now, ttl)?;
        let row = sqlx::query(
            "INSERT INTO leases AS l (name, holder, term, expires_at) VALUES (?1, ?2, 1, ?3) \
             ON CONFLICT (name) DO UPDATE SET \
                 holder = excluded.holder, \
                 term = CASE WHEN l.holder IS excluded.holder AND l.expires_at > ?4 THEN l.term \
                             ELSE l.term + 1 END, \
                 expires_at = excluded.expires_at \
             WHERE l.holder = excluded.holder OR l.holder IS NULL OR l.expires_at <= ?4 \
             RETURNING holder, term, expires_at",
        )
        .bind(name)
        .bind(holder)
        .bind(ts(expires))
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let row = match row {
            Some(row) => row,
            None => sqlx::query("SELECT holder, term, expires_at FROM leases WHERE name = ?1")
                .bind(name)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?,
        };
        row::lease_state(&row, holder)
    }

    async fn release(&self, name: &str, holder: &str) -> Result<()> {
        self.execute(
            "UPDATE leases SET holder = NULL, expires_at = ?3 WHERE name = ?1 AND holder = ?2",
            &[Arg::Text(name), Arg::Text(holder), Arg::Instant(Utc::now())],
        )
        .await?;
        Ok(())
    }
}

/// `sql` with `args` bound in this schema's representation (decimals and instants as text,
/// lists as JSON arrays).
fn bound<'q>(
    sql: &'q str,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    args.iter().fold(sqlx::query(sql), |q, arg| match *arg {
        Arg::Text(v) => q.bind(v),
        Arg::OptText(v) => q.bind(v),
        Arg::Int(v) => q.bind(v),
        Arg::Flag(v) => q.bind(v),
        Arg::Instant(v) => q.bind(ts(v)),
        Arg::OptInstant(v) => q.bind(v.map(ts)),
        Arg::Decimal(v) => q.bind(v.to_string()),
        Arg::OptDecimal(v) => q.bind(v.map(|d| d.to_string())),
        Arg::Texts(v) => q.bind(json!(v).to_string()),
        Arg::Ints(v) => q.bind(json!(v).to_string()),
    })
}

dialect_impl!(SqliteStore, SqliteRow, sqlx::Sqlite, {
    fn member(col: &str, n: u8) -> String {
        format!("{col} IN (SELECT value FROM json_each(${n}))")
    }
    const LOCK_ROWS: &'static str = "";
    // Prices are exact decimal text: a positive decimal's order is (digits before the point,
    // then the text), so high and low are exact without a float round trip. `s` is floored to
    // the interval also before 1970; equal instants keep insertion (rowid) order.
    const CANDLES: &'static str = "WITH t AS ( \
             SELECT rowid AS r, ts, price, CAST(strftime('%s', ts) AS INTEGER) AS s, \
                    CASE WHEN instr(price, '.') > 0 THEN instr(price, '.') \
                         ELSE length(price) + 1 END AS w \
             FROM price_ticks WHERE symbol_code = $1 AND ts >= $2 AND ts < $3), \
         ranked AS ( \
             SELECT s - ((s % $4) + $4) % $4 AS b, price, \
                    ROW_NUMBER() OVER (PARTITION BY s - ((s % $4) + $4) % $4 ORDER BY ts, r) AS o, \
                    ROW_NUMBER() OVER (PARTITION BY s - ((s % $4) + $4) % $4 ORDER BY ts DESC, r DESC) AS c, \
                    ROW_NUMBER() OVER (PARTITION BY s - ((s % $4) + $4) % $4 ORDER BY w DESC, price DESC) AS h, \
                    ROW_NUMBER() OVER (PARTITION BY s - ((s % $4) + $4) % $4 ORDER BY w, price) AS l \
             FROM t) \
         SELECT b, MAX(CASE WHEN o = 1 THEN price END) AS open, \
                MAX(CASE WHEN h = 1 THEN price END) AS high, \
                MAX(CASE WHEN l = 1 THEN price END) AS low, \
                MAX(CASE WHEN c = 1 THEN price END) AS close, COUNT(*) AS n \
         FROM ranked GROUP BY b ORDER BY b";
    const CONDITIONS_AS_TEXT: &'static str = "auto_verify_conditions";
    fn conditions_param(n: u8) -> String {
        format!("${n}")
    }

    async fn begin_write(&self) -> Result<Self::Tx> {
        // IMMEDIATE: SQLite serializes writers, so the verifier and other revisions see all
        // of a revision or nothing, and nothing changes between its statements
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }
});

#[async_trait]
impl JobStore for SqliteStore {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn instants_sort_as_text() {
        let a = DateTime::parse_from_rfc3339("2026-01-01T00:00:09Z")
            .unwrap()
            .with_timezone(&Utc);
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::seconds(1);
        assert_eq!(ts(a), "2026-01-01T00:00:09.000000Z");
        assert!(ts(a) < ts(b) && ts(b) < ts(c));
        assert_eq!(super::row::parse_instant(&ts(b)).unwrap(), b);
    }
}
