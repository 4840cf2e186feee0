//! sqlx repositories for PostgreSQL ([`PgStore`], feature `postgres`) and SQLite
//! ([`SqliteStore`], feature `sqlite`) on the schema of the guide's *Database tables and
//! migrations*.
//!
//! Both stores implement every repository port of goldjobs-core ([`SymbolRepository`],
//! [`PriceTickRepository`], [`PredictionRepository`], [`OutboxRepository`], [`NewsRepository`],
//! [`DeviceTokenRepository`]) and [`Lease`]. Migrations are embedded, one set per database, and
//! applied with `PgStore::migrate` / `SqliteStore::migrate`.
//!
//! Verification is set-based: [`PredictionRepository::record_verifications`] runs a fixed number
//! of statements per batch in one transaction, whatever the number of votes or voters:
//!
//! 1. (PostgreSQL) lock the batch's predictions in id order;
//! 2. update the still-eligible predictions (`status = 'active'`, or also `needs_review` for
//!    manual records), `RETURNING` the ones actually updated — the others are `skipped`;
//! 3. mark every vote of the verified ones, `RETURNING` `(prediction, user, is_correct)`;
//! 4. fold those results per user in record order (one user may have several predictions in a
//!    batch; streaks follow the guide's *What a verdict records* in that order) into one row per
//!    user, and apply them with one statement (PostgreSQL: create missing rows, lock rows in user
//!    order, one `UPDATE … FROM UNNEST` whose streaks depend on the stored streak; SQLite: read,
//!    compute with goldjobs-core's rules, one upsert);
//! 5. insert the outbox with one `INSERT … SELECT`: per prediction its `prediction_verified`
//!    row, then one `notify` row per voter built from the votes in SQL.
//!
//! Concurrent recorders serialize on the prediction rows (PostgreSQL) or on the write lock
//! (`BEGIN IMMEDIATE`, SQLite); a late one finds the predictions no longer eligible.
//!
//! Representation: PostgreSQL uses `NUMERIC`, `TIMESTAMPTZ`, plain `JSON` for
//! `auto_verify_conditions` (key order kept) and `TEXT[]` for `related_symbols`. SQLite keeps
//! exact decimal strings in `TEXT` (never `REAL`), instants as RFC 3339 UTC text with exactly six
//! fractional digits and `Z` (text order is time order; microseconds, like PostgreSQL), JSON as
//! text; its batches travel as one JSON parameter unpacked by `json_each`, so no statement hits
//! the 32766-parameter limit.
//!
//! [`SymbolRepository`]: goldjobs_core::SymbolRepository
//! [`PriceTickRepository`]: goldjobs_core::PriceTickRepository
//! [`PredictionRepository`]: goldjobs_core::PredictionRepository
//! [`PredictionRepository::record_verifications`]: goldjobs_core::PredictionRepository::record_verifications
//! [`OutboxRepository`]: goldjobs_core::OutboxRepository
//! [`NewsRepository`]: goldjobs_core::NewsRepository
//! [`DeviceTokenRepository`]: goldjobs_core::DeviceTokenRepository
//! [`Lease`]: goldjobs_core::Lease

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod common;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod dialect;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod row;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// A SQL store opened from a URL by [`open`]: PostgreSQL or SQLite.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SqlStore {
    /// `postgres://` or `postgresql://`.
    #[cfg(feature = "postgres")]
    Postgres(std::sync::Arc<PgStore>),
    /// `sqlite:`.
    #[cfg(feature = "sqlite")]
    Sqlite(std::sync::Arc<SqliteStore>),
}

/// Open the database at `url` — `sqlite:…` or `postgres://…` (TLS by `sslmode`, as libpq) —
/// in the spirit of `object_store::parse_url`: the URL picks the backend. No migrations are
/// run; see [`SqlStore::migrate`]. A URL of another scheme, or of a backend whose feature is
/// off, is [`Error::InvalidInput`]; an unreachable database [`Error::Unavailable`].
pub async fn open(url: &str) -> Result<SqlStore> {
    let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
    match scheme.as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(SqlStore::Sqlite(std::sync::Arc::new(
            SqliteStore::connect(url).await?,
        ))),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(SqlStore::Postgres(std::sync::Arc::new(
            PgStore::connect(url).await?,
        ))),
        _ => Err(SqlError::Scheme(scheme).into()),
    }
}

impl SqlStore {
    /// Apply the embedded migrations not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(s) => s.migrate().await,
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(s) => s.migrate().await,
        }
    }

    /// Every storage port, served by this store.
    pub fn ports(&self) -> goldjobs_core::Ports {
        match self {
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(s) => goldjobs_core::Ports::of(s.clone()),
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(s) => goldjobs_core::Ports::of(s.clone()),
        }
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        match self {
            #[cfg(feature = "postgres")]
            SqlStore::Postgres(s) => s.ping().await,
            #[cfg(feature = "sqlite")]
            SqlStore::Sqlite(s) => s.ping().await,
        }
    }
}

use chrono::{DateTime, Utc};
#[cfg(any(feature = "sqlite", test))]
use goldjobs_core::verify::accuracy_rate;
use goldjobs_core::{
    BoxError, Correction, Error, NewsArticle, NoticeKind, OutboxPayload, PredictionCorrected,
    PredictionVerified, PredictionVoided, RecordSummary, Result, UserStats, Verdict,
    VerificationOutcome, VerificationRecord, VoidRecord, VotersFanout,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// What the SQL stores refuse before touching the database; becomes [`Error::InvalidInput`]
/// with its whole chain.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SqlError {
    #[error(
        "database URL: expected sqlite: or postgres:// (with the matching feature), found {0:?}"
    )]
    Scheme(String),
    #[cfg(feature = "sqlite")]
    #[error("database URL is not a valid sqlite: URL")]
    SqliteUrl(#[source] sqlx::Error),
    #[error("duration {0:?} too large")]
    Duration(Duration),
    #[error("{at} + {d:?} out of range")]
    OutOfRange { at: DateTime<Utc>, d: Duration },
    #[error("outbox payload not serializable")]
    Payload(#[source] serde_json::Error),
    #[error("prediction {0}: empty correct_option")]
    EmptyOption(String),
    #[error("prediction {0}: a void needs a reason")]
    NoReason(String),
    #[cfg(feature = "postgres")]
    #[error("lease ttl {0:?} too large")]
    LeaseTtl(Duration),
}

impl From<SqlError> for Error {
    fn from(e: SqlError) -> Self {
        Error::invalid_from(&e)
    }
}

/// The trimmed `correct_option` of a correction, refused when empty.
fn correction_option(c: &Correction) -> Result<&str> {
    let option = c.correct_option.trim();
    if option.is_empty() {
        return Err(SqlError::EmptyOption(c.prediction_id.clone()).into());
    }
    Ok(option)
}

/// The trimmed reason of a void, refused when empty.
fn void_reason(v: &VoidRecord) -> Result<&str> {
    let reason = v.reason.trim();
    if reason.is_empty() {
        return Err(SqlError::NoReason(v.prediction_id.clone()).into());
    }
    Ok(reason)
}

/// Maps an sqlx error into the goldjobs error, by meaning. Messages name what failed, never the
/// SQL text; the sqlx error is kept as the `source` for logs.
fn map_sqlx(backend: &'static str, err: sqlx::Error) -> Error {
    use sqlx::error::ErrorKind;
    enum Class {
        Temporary(String),
        Conflict(String),
        Invalid(String),
        Permanent(String),
    }
    let class = match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Class::Temporary("database connection failed".into()),
        sqlx::Error::Database(db) => {
            let constraint = db.constraint().map(str::to_owned);
            match db.kind() {
                ErrorKind::UniqueViolation => Class::Conflict(match constraint {
                    Some(c) => format!("duplicate row ({c})"),
                    None => "duplicate row".to_owned(),
                }),
                ErrorKind::ForeignKeyViolation => Class::Invalid(match constraint {
                    Some(c) => format!("row refers to a missing row ({c})"),
                    None => "row refers to a missing row".to_owned(),
                }),
                ErrorKind::NotNullViolation | ErrorKind::CheckViolation => {
                    Class::Invalid("row violates a constraint of the schema".into())
                }
                _ => {
                    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                    if is_temporary_code(&code) {
                        Class::Temporary(format!("database busy or unavailable (code {code})"))
                    } else if code.starts_with("22") {
                        // PostgreSQL data exceptions (bad JSON, out of range, ...)
                        Class::Invalid(format!("value rejected by the database (code {code})"))
                    } else {
                        Class::Permanent(format!("database error (code {code})"))
                    }
                }
            }
        }
        sqlx::Error::Migrate(_) => Class::Permanent("migration failed".into()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => {
            Class::Permanent("could not decode a database row".into())
        }
        _ => Class::Permanent("database error".into()),
    };
    let source: BoxError = Box::new(err);
    match class {
        Class::Temporary(m) => Error::unavailable(backend, m, Some(source)),
        Class::Conflict(m) => Error::Conflict(m),
        Class::Invalid(m) => Error::InvalidInput(m),
        Class::Permanent(m) => Error::backend(backend, m, Some(source)),
    }
}

/// Error codes after which the same call may succeed later.
fn is_temporary_code(code: &str) -> bool {
    // PostgreSQL: serialization failure, deadlock, lock not available, query cancelled,
    // connection exceptions, insufficient resources, operator intervention (shutdown).
    if matches!(code, "40001" | "40P01" | "55P03" | "57014")
        || code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
    {
        return true;
    }
    // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6) with their extended codes.
    match code.parse::<i64>() {
        Ok(n) => matches!(n & 0xff, 5 | 6),
        Err(_) => false,
    }
}

/// A decode error for a value the database returned but goldjobs cannot read.
fn decode_error(backend: &'static str, what: &str, err: impl std::fmt::Display) -> Error {
    Error::backend(backend, format!("could not decode {what}: {err}"), None)
}

/// `std::time::Duration` → `chrono::Duration`, as an input error when absurdly large.
fn chrono_duration(d: Duration) -> Result<chrono::Duration> {
    chrono::Duration::from_std(d).map_err(|_| SqlError::Duration(d).into())
}

/// `at + d`, as an input error when out of range.
fn add_duration(at: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>> {
    at.checked_add_signed(chrono_duration(d)?)
        .ok_or_else(|| SqlError::OutOfRange { at, d }.into())
}

/// Articles deduplicated within a batch by `canonical_url` and by `id` (first one wins).
fn dedupe_articles(articles: &[NewsArticle]) -> Vec<&NewsArticle> {
    let mut urls = HashSet::new();
    let mut ids = HashSet::new();
    articles
        .iter()
        .filter(|a| urls.insert(a.canonical_url.as_str()) & ids.insert(a.id.as_str()))
        .collect()
}

/// Records deduplicated by prediction id (first one wins); later duplicates are skipped.
struct PreparedRecords<'a> {
    records: Vec<&'a VerificationRecord>,
    duplicates: Vec<String>,
}

fn prepare_records(records: &[VerificationRecord]) -> PreparedRecords<'_> {
    let mut seen = HashSet::new();
    let mut out = PreparedRecords {
        records: Vec::with_capacity(records.len()),
        duplicates: Vec::new(),
    };
    for r in records {
        if seen.insert(r.prediction_id.as_str()) {
            out.records.push(r);
        } else {
            out.duplicates.push(r.prediction_id.clone());
        }
    }
    out
}

/// The decision of a record flattened into columns, for binding.
struct RecordColumns<'a> {
    status: &'static str,
    verdict: Option<&'a Verdict>,
    reason: Option<&'a str>,
}

fn record_columns(r: &VerificationRecord) -> RecordColumns<'_> {
    match &r.outcome {
        VerificationOutcome::Verified(v) => RecordColumns {
            status: "ended",
            verdict: Some(v),
            reason: None,
        },
        VerificationOutcome::NeedsReview { reason } => RecordColumns {
            status: "needs_review",
            verdict: None,
            reason: Some(reason),
        },
    }
}

/// The summary of a recording, in record order: `updated` maps each updated id to its new status.
fn summarize(
    prepared: &PreparedRecords<'_>,
    updated: &HashMap<String, String>,
    votes_marked: u64,
) -> RecordSummary {
    let mut summary = RecordSummary {
        votes_marked,
        ..RecordSummary::default()
    };
    for r in &prepared.records {
        match updated.get(&r.prediction_id).map(String::as_str) {
            Some("ended") => summary.verified.push(r.prediction_id.clone()),
            Some("needs_review") => summary.needs_review.push(r.prediction_id.clone()),
            _ => summary.skipped.push(r.prediction_id.clone()),
        }
    }
    summary.skipped.extend(prepared.duplicates.iter().cloned());
    summary
}

/// The `prediction_verified` outbox payload of a verified record.
fn verified_payload(prediction_id: &str, symbol_code: &str, verdict: &Verdict) -> Result<String> {
    let payload = OutboxPayload::PredictionVerified(PredictionVerified {
        prediction_id: prediction_id.to_owned(),
        symbol_code: symbol_code.to_owned(),
        correct_option: verdict.correct_option.clone(),
        price_at_verify: verdict.price_at_verify,
        price_change_percent: verdict.price_change_percent,
        price_source: verdict.price_source,
        price_at_verify_ts: verdict.price_at_verify_ts,
    });
    serde_json::to_string(&payload).map_err(|e| SqlError::Payload(e).into())
}

/// The `notify_voters` outbox payload of a verified prediction (guide: *What a verdict records*:
/// one notification per voter, expanded by `claim_outbox`).
fn fanout_payload(prediction_id: &str) -> Result<String> {
    kind_fanout_payload(prediction_id, NoticeKind::Verified)
}

/// The `notify_voters` outbox payload telling the voters of `prediction_id` about `kind`.
fn kind_fanout_payload(prediction_id: &str, kind: NoticeKind) -> Result<String> {
    let payload = OutboxPayload::NotifyVoters(VotersFanout {
        prediction_id: prediction_id.to_owned(),
        kind,
    });
    to_text(&payload)
}

/// `outbox.fanout_kind` of a fan-out row: `NULL` for a verification (as every row before 0.2).
fn fanout_kind_column(kind: NoticeKind) -> Option<&'static str> {
    match kind {
        NoticeKind::Verified => None,
        other => Some(other.as_str()),
    }
}

fn to_text(payload: &OutboxPayload) -> Result<String> {
    serde_json::to_string(payload).map_err(|e| SqlError::Payload(e).into())
}

/// The `prediction_corrected` outbox payload (guide: *WebSocket protocol*; *Corrections and
/// voids*).
fn corrected_payload(event: PredictionCorrected) -> Result<String> {
    to_text(&OutboxPayload::PredictionCorrected(event))
}

/// The `prediction_voided` outbox payload (guide: *WebSocket protocol*; *Corrections and voids*).
fn voided_payload(event: PredictionVoided) -> Result<String> {
    to_text(&OutboxPayload::PredictionVoided(event))
}

/// Whether a correction changes nothing: the same option, and no new price or the same one.
fn correction_is_noop(
    stored_option: Option<&str>,
    stored_price: Option<rust_decimal::Decimal>,
    correction: &goldjobs_core::Correction,
) -> bool {
    stored_option == Some(correction.correct_option.trim())
        && correction
            .price
            .as_ref()
            .is_none_or(|m| stored_price == Some(m.price_at_verify))
}

/// The answer to a correction of a prediction that is not `ended`.
fn not_correctable(id: &str, status: &str) -> Error {
    Error::Conflict(format!(
        "prediction {id} is {status}; only ended predictions can be corrected"
    ))
}

/// Users' recomputed statistics against the stored ones; `stored` is `None` when the user has
/// no row.
fn stats_diff(recomputed: UserStats, stored: Option<UserStats>) -> goldjobs_core::StatsDiff {
    goldjobs_core::StatsDiff {
        user_id: recomputed.user_id.clone(),
        stored,
        recomputed,
    }
}

/// How many of `votes` (prediction id, user id, correct) each prediction has: the size of its
/// fan-out row. One key allocation per prediction, not per vote.
fn votes_per_prediction(votes: &[(String, String, bool)]) -> HashMap<String, i64> {
    let mut counts: HashMap<String, i64> = HashMap::new();
    for (pid, _, _) in votes {
        match counts.get_mut(pid) {
            Some(n) => *n += 1,
            None => {
                counts.insert(pid.clone(), 1);
            }
        }
    }
    counts
}

/// Voters one expansion statement (PostgreSQL) or transaction (SQLite) turns into `notify`
/// rows at most; a claim of `limit` rows expands up to `limit` voters, page after page.
const MAX_FANOUT_PAGE: u32 = 1_000;

/// Expand fan-out rows for up to `budget` voters with `page(size)` (one atomic page of at most
/// [`MAX_FANOUT_PAGE`] voters, returning how many it gave), page after page, until the budget
/// is covered or a page comes back short (nothing more is due).
async fn expand_in_pages<F, Fut>(budget: u32, mut page: F) -> Result<()>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<i64>>,
{
    let mut left = i64::from(budget);
    while left > 0 {
        let size = left.min(i64::from(MAX_FANOUT_PAGE));
        if page(size).await? < size {
            break;
        }
        left -= size;
    }
    Ok(())
}

/// What one batch does to one user's statistics: the user's results in record order folded into
/// numbers that can be applied to the stored row in one set-based statement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatsDelta {
    user_id: String,
    /// Results in this batch.
    participations: i64,
    /// Correct results in this batch.
    correct: i64,
    /// Correct results before the first wrong one.
    leading: i64,
    /// Correct results after the last wrong one.
    trailing: i64,
    /// Longest run of correct results.
    best: i64,
    /// No wrong result.
    all_correct: bool,
    /// `verified_at` of the user's last record in the batch.
    updated_at: DateTime<Utc>,
    /// `(verify_time, prediction id)` of the user's first and last record in the batch.
    first: (DateTime<Utc>, String),
    last: (DateTime<Utc>, String),
    /// The user's records in the batch are not in `(verify_time, id)` order.
    disordered: bool,
}

impl StatsDelta {
    /// Whether this batch cannot be applied to the stored row as a delta: its records for the
    /// user are out of order, or the first sorts before the latest prediction the stored
    /// statistics already include (`stored_last`, `None` when unknown). Such users are
    /// recomputed from all their verified votes instead (guide: *When a prediction is verified*:
    /// statistics take predictions in `verify_time` order, whenever they are verified).
    fn is_late(&self, stored_last: Option<(DateTime<Utc>, &str)>) -> bool {
        self.disordered
            || stored_last.is_some_and(|(t, id)| (t, id) > (self.first.0, self.first.1.as_str()))
    }
}

impl StatsDelta {
    fn from_results(
        user_id: String,
        results: &[bool],
        updated_at: DateTime<Utc>,
        keys: &[(DateTime<Utc>, String)],
    ) -> Self {
        let n = results.len() as i64;
        let correct = results.iter().filter(|c| **c).count() as i64;
        let leading = results.iter().take_while(|c| **c).count() as i64;
        let trailing = results.iter().rev().take_while(|c| **c).count() as i64;
        let mut best = 0i64;
        let mut run = 0i64;
        for c in results {
            run = if *c { run + 1 } else { 0 };
            best = best.max(run);
        }
        let disordered = keys.windows(2).any(|w| w[0] > w[1]);
        let epoch = (DateTime::<Utc>::MIN_UTC, String::new());
        StatsDelta {
            user_id,
            participations: n,
            correct,
            leading,
            trailing,
            best,
            all_correct: correct == n,
            updated_at,
            first: keys.first().cloned().unwrap_or_else(|| epoch.clone()),
            last: keys.iter().max().cloned().unwrap_or(epoch),
            disordered,
        }
    }

    /// The stats after this batch, from the stats before it (guide: *What a verdict records*
    /// applied result by result gives the same numbers).
    #[cfg(any(feature = "sqlite", test))]
    fn apply(&self, old: &goldjobs_core::UserStats) -> goldjobs_core::UserStats {
        let total = old.total_participations + self.participations;
        let correct = old.correct_count + self.correct;
        let (current, max) = if self.all_correct {
            let cur = old.current_streak + self.participations;
            (cur, old.max_streak.max(cur))
        } else {
            (
                self.trailing,
                old.max_streak
                    .max(old.current_streak + self.leading)
                    .max(self.best),
            )
        };
        goldjobs_core::UserStats {
            user_id: old.user_id.clone(),
            total_participations: total,
            correct_count: correct,
            accuracy_rate: accuracy_rate(correct, total),
            current_streak: current,
            max_streak: max,
            updated_at: self.updated_at,
        }
    }
}

/// The users of `deltas` whose batch cannot be applied as a delta (see [`StatsDelta::is_late`]),
/// given the latest `(verify_time, prediction id)` each stored row already includes.
fn late_users(
    deltas: &[StatsDelta],
    stored_last: &HashMap<String, (DateTime<Utc>, String)>,
) -> Vec<String> {
    deltas
        .iter()
        .filter(|d| d.is_late(stored_last.get(&d.user_id).map(|(t, id)| (*t, id.as_str()))))
        .map(|d| d.user_id.clone())
        .collect()
}

/// Folds the marked votes of the verified records into per-user deltas, sorted by user id.
///
/// `verified` are the records actually updated to `ended`, in record order; `votes` are
/// `(prediction_id, user_id, is_correct)` of their votes, in any order; `verify_time_of` gives
/// each verified prediction's `verify_time`.
fn fold_votes(
    verified: &[&VerificationRecord],
    votes: Vec<(String, String, bool)>,
    verify_time_of: &HashMap<String, DateTime<Utc>>,
) -> Vec<StatsDelta> {
    let mut by_prediction: HashMap<String, Vec<(String, bool)>> = HashMap::new();
    for (pid, uid, ok) in votes {
        by_prediction.entry(pid).or_default().push((uid, ok));
    }
    type Folded = (Vec<bool>, DateTime<Utc>, Vec<(DateTime<Utc>, String)>);
    let mut by_user: BTreeMap<String, Folded> = BTreeMap::new();
    for r in verified {
        let key = (
            verify_time_of
                .get(&r.prediction_id)
                .copied()
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            r.prediction_id.clone(),
        );
        if let Some(votes) = by_prediction.remove(&r.prediction_id) {
            for (uid, ok) in votes {
                let entry = by_user
                    .entry(uid)
                    .or_insert_with(|| (Vec::new(), r.verified_at, Vec::new()));
                entry.0.push(ok);
                entry.1 = r.verified_at;
                entry.2.push(key.clone());
            }
        }
    }
    by_user
        .into_iter()
        .map(|(uid, (results, at, keys))| StatsDelta::from_results(uid, &results, at, &keys))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use goldjobs_core::UserStats;

    fn sequential(old: &UserStats, results: &[bool], now: DateTime<Utc>) -> UserStats {
        let mut s = old.clone();
        for ok in results {
            goldjobs_core::verify::apply_result(&mut s, *ok, now);
        }
        s
    }

    #[test]
    fn fold_matches_sequential_rules_exhaustively() {
        let now = Utc::now();
        for len in 0..=7u32 {
            for bits in 0..(1u32 << len) {
                let results: Vec<bool> = (0..len).map(|i| bits & (1 << i) != 0).collect();
                for (cur, max) in [(0, 0), (2, 2), (1, 5), (3, 4)] {
                    let old = UserStats {
                        user_id: "u".into(),
                        total_participations: 9,
                        correct_count: 5,
                        accuracy_rate: accuracy_rate(5, 9),
                        current_streak: cur,
                        max_streak: max,
                        updated_at: now,
                    };
                    let delta = StatsDelta::from_results("u".into(), &results, now, &[]);
                    let expected = sequential(&old, &results, now);
                    if results.is_empty() {
                        continue;
                    }
                    assert_eq!(delta.apply(&old), expected, "{results:?} from {cur}/{max}");
                }
            }
        }
    }

    #[test]
    fn fold_applies_records_in_slice_order() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap();
        let rec = |id: &str, s: i64| VerificationRecord {
            prediction_id: id.into(),
            outcome: VerificationOutcome::NeedsReview { reason: "x".into() },
            verified_at: t(s),
            manual: false,
        };
        let (a, b, c) = (rec("a", 1), rec("b", 2), rec("c", 3));
        let votes = vec![
            ("c".to_string(), "u1".to_string(), true),
            ("a".to_string(), "u1".to_string(), false),
            ("b".to_string(), "u1".to_string(), true),
            ("b".to_string(), "u2".to_string(), false),
        ];
        let order: HashMap<String, DateTime<Utc>> = [("a", 1), ("b", 2), ("c", 3)]
            .iter()
            .map(|(id, s)| ((*id).to_owned(), t(*s)))
            .collect();
        let deltas = fold_votes(&[&a, &b, &c], votes, &order);
        assert!(!deltas[0].disordered);
        assert_eq!(deltas[0].first, (t(1), "a".to_owned()));
        assert_eq!(deltas[0].last, (t(3), "c".to_owned()));
        assert!(deltas[0].is_late(Some((t(2), "x"))));
        assert!(!deltas[0].is_late(Some((t(1), "a"))));
        assert!(!deltas[0].is_late(None));
        let backwards = fold_votes(
            &[&c, &a],
            vec![
                ("c".to_string(), "u1".to_string(), true),
                ("a".to_string(), "u1".to_string(), true),
            ],
            &order,
        );
        assert!(backwards[0].disordered && backwards[0].is_late(None));
        assert_eq!(deltas.len(), 2);
        assert_eq!(deltas[0].user_id, "u1");
        assert_eq!(
            (deltas[0].leading, deltas[0].trailing, deltas[0].best),
            (0, 2, 2)
        );
        assert_eq!(deltas[0].updated_at, t(3));
        assert_eq!(deltas[1].user_id, "u2");
        assert_eq!(deltas[1].updated_at, t(2));
    }
}
