//! Reading rows the same way on both databases.
//!
//! The two schemas hold the same values in different column types (PostgreSQL: `NUMERIC`,
//! `TIMESTAMPTZ`, `TEXT[]`; SQLite: exact decimal text, RFC 3339 text, JSON text). [`Cells`]
//! reads a column as the Rust value whatever its storage, so each domain row
//! ([`prediction`], [`tick`], [`article`], …) is decoded by one function for both stores.

use super::decode_error;
use chrono::{DateTime, Utc};
use goldjobs_core::news::{FeedHealth, FeedStatus};
use goldjobs_core::runtime::{JobControl, JobRun};
use goldjobs_core::{
    Candle, DeviceToken, Error, LeaseState, NewsArticle, OutboxRow, OutboxState, Prediction,
    PriceTick, Result, Symbol, UserStats, Vote,
};
use rust_decimal::Decimal;
use std::str::FromStr;

/// A database row read column by column as goldjobs values.
pub(crate) trait Cells {
    /// The backend's name in errors (`postgres`, `sqlite`).
    fn backend(&self) -> &'static str;
    /// A `TEXT` column.
    fn text(&self, col: &str) -> Result<String>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    /// A 64-bit integer column.
    fn int(&self, col: &str) -> Result<i64>;
    /// A 32-bit counter (`attempts`) as `u32`; negative values read as 0.
    fn count(&self, col: &str) -> Result<u32>;
    /// A boolean column.
    fn flag(&self, col: &str) -> Result<bool>;
    /// A nullable boolean column.
    fn opt_flag(&self, col: &str) -> Result<Option<bool>>;
    /// An instant.
    fn instant(&self, col: &str) -> Result<DateTime<Utc>>;
    /// A nullable instant.
    fn opt_instant(&self, col: &str) -> Result<Option<DateTime<Utc>>>;
    /// An exact decimal.
    fn decimal(&self, col: &str) -> Result<Decimal>;
    /// A nullable exact decimal.
    fn opt_decimal(&self, col: &str) -> Result<Option<Decimal>>;
    /// A list of strings (`TEXT[]`, or a JSON array as text).
    fn strings(&self, col: &str) -> Result<Vec<String>>;
    /// JSON stored as text (PostgreSQL reads `json` columns cast to `text`).
    fn json_text(&self, col: &str) -> Result<Option<String>> {
        self.opt_text(col)
    }

    /// A stored enum value (`status`, `verify_rule`, …) parsed by its `FromStr`.
    fn parsed<T: FromStr<Err = Error>>(&self, col: &str) -> Result<T> {
        parse(self.backend(), &self.text(col)?)
    }

    /// A nullable stored enum value.
    fn opt_parsed<T: FromStr<Err = Error>>(&self, col: &str) -> Result<Option<T>> {
        self.opt_text(col)?
            .as_deref()
            .map(|s| parse(self.backend(), s))
            .transpose()
    }
}

/// `s` parsed as a stored enum value.
pub(crate) fn parse<T: FromStr<Err = Error>>(backend: &'static str, s: &str) -> Result<T> {
    s.parse::<T>()
        .map_err(|e| decode_error(backend, "a stored enum value", e))
}

/// Columns of a prediction as [`prediction`] reads them; `conditions` is the select expression
/// of `auto_verify_conditions` (PostgreSQL casts its `json` to `text`).
pub(crate) fn prediction_columns(conditions: &str) -> String {
    format!(
        "id, symbol_code, question, price_at_create, price_at_verify, price_change_percent, \
         verify_time, verify_rule, {conditions}, correct_option, status, review_reason, \
         price_source, price_at_verify_ts, verified_at, created_at, price_provider"
    )
}

/// A `predictions` row.
pub(crate) fn prediction(row: &impl Cells) -> Result<Prediction> {
    Ok(Prediction {
        id: row.text("id")?,
        symbol_code: row.text("symbol_code")?,
        question: row.text("question")?,
        price_at_create: row.decimal("price_at_create")?,
        price_at_verify: row.opt_decimal("price_at_verify")?,
        price_change_percent: row.opt_decimal("price_change_percent")?,
        verify_time: row.instant("verify_time")?,
        verify_rule: row.parsed("verify_rule")?,
        auto_verify_conditions: row.json_text("auto_verify_conditions")?,
        correct_option: row.opt_text("correct_option")?,
        status: row.parsed("status")?,
        review_reason: row.opt_text("review_reason")?,
        price_source: row.opt_parsed("price_source")?,
        price_provider: row.opt_text("price_provider")?,
        price_at_verify_ts: row.opt_instant("price_at_verify_ts")?,
        verified_at: row.opt_instant("verified_at")?,
        created_at: row.instant("created_at")?,
    })
}

/// A `price_ticks` row (`symbol_code, price, ts, source`).
pub(crate) fn tick(row: &impl Cells) -> Result<PriceTick> {
    Ok(PriceTick {
        symbol_code: row.text("symbol_code")?,
        price: row.decimal("price")?,
        ts: row.instant("ts")?,
        source: row.opt_text("source")?,
    })
}

/// A row of the dialect's candles query (`b`, `open`, `high`, `low`, `close`, `n`).
pub(crate) fn candle(row: &impl Cells) -> Result<Candle> {
    let b = row.int("b")?;
    let t = DateTime::from_timestamp(b, 0).ok_or_else(|| {
        Error::InvalidInput(format!("candle start {b} is not a representable instant"))
    })?;
    Ok(Candle {
        t,
        open: row.decimal("open")?,
        high: row.decimal("high")?,
        low: row.decimal("low")?,
        close: row.decimal("close")?,
        ticks: u64::try_from(row.int("n")?).unwrap_or(0),
    })
}

/// A tick from an outer join: `None` when the joined tick is missing (`price` is NULL).
pub(crate) fn joined_tick(row: &impl Cells) -> Result<Option<PriceTick>> {
    match row.opt_decimal("price")? {
        Some(_) => tick(row).map(Some),
        None => Ok(None),
    }
}

/// Columns of an article as [`article`] reads them.
pub(crate) const ARTICLE_COLUMNS: &str = "id, title, summary, content, url, canonical_url, \
    source, category, thumbnail_url, published_at, related_symbols, created_at, story_id";

/// A `news_articles` row.
pub(crate) fn article(row: &impl Cells) -> Result<NewsArticle> {
    Ok(NewsArticle {
        id: row.text("id")?,
        title: row.text("title")?,
        summary: row.text("summary")?,
        content: row.opt_text("content")?,
        url: row.text("url")?,
        canonical_url: row.text("canonical_url")?,
        source: row.text("source")?,
        category: row.text("category")?,
        thumbnail_url: row.opt_text("thumbnail_url")?,
        published_at: row.instant("published_at")?,
        related_symbols: row.strings("related_symbols")?,
        created_at: row.instant("created_at")?,
        story_id: row.opt_text("story_id")?,
    })
}

/// Columns of a feed's health as [`feed_health`] reads them.
pub(crate) const FEED_COLUMNS: &str = "feed_key, name, category, url, last_fetch_at, \
    last_status, consecutive_failures, next_fetch_at, articles_total, last_error";

/// A `news_feeds` row: its key and the health.
pub(crate) fn feed_health(row: &impl Cells) -> Result<(String, FeedHealth)> {
    let last_status = match row.opt_text("last_status")? {
        Some(s) => Some(s.parse::<FeedStatus>().map_err(|e| {
            Error::backend(row.backend(), format!("news_feeds.last_status: {e}"), None)
        })?),
        None => None,
    };
    let mut h = FeedHealth::new(row.text("name")?, row.text("category")?, row.text("url")?);
    h.last_fetch_at = row.opt_instant("last_fetch_at")?;
    h.last_status = last_status;
    h.consecutive_failures =
        u32::try_from(row.int("consecutive_failures")?.max(0)).unwrap_or(u32::MAX);
    h.next_fetch_at = row.opt_instant("next_fetch_at")?;
    h.articles_total = u64::try_from(row.int("articles_total")?.max(0)).unwrap_or(0);
    h.last_error = row.opt_text("last_error")?;
    Ok((row.text("feed_key")?, h))
}

/// A `symbols` row.
pub(crate) fn symbol(row: &impl Cells) -> Result<Symbol> {
    Ok(Symbol {
        code: row.text("code")?,
        name: row.text("name")?,
        provider_symbol: row.text("provider_symbol")?,
        active: row.flag("active")?,
    })
}

/// A `prediction_votes` row.
pub(crate) fn vote(row: &impl Cells) -> Result<Vote> {
    Ok(Vote {
        prediction_id: row.text("prediction_id")?,
        user_id: row.text("user_id")?,
        selected_option: row.text("selected_option")?,
        is_correct: row.opt_flag("is_correct")?,
        created_at: row.instant("created_at")?,
    })
}

/// A `device_tokens` row (`user_id, token, platform`).
pub(crate) fn device_token(row: &impl Cells) -> Result<DeviceToken> {
    Ok(DeviceToken {
        user_id: row.text("user_id")?,
        token: row.text("token")?,
        platform: row.text("platform")?,
    })
}

/// The `user_prediction_stats` columns under the short names [`stats`] reads.
pub(crate) const STATS_COLUMNS: &str = "user_id, total_participations AS total, \
    correct_count AS correct, accuracy_rate AS acc, current_streak AS cur, max_streak AS best, \
    updated_at";

/// Statistics from the columns `{prefix}total`, `…correct`, `…acc`, `…cur`, `…best` (and
/// `…updated_at` unless `updated_at` is given).
pub(crate) fn stats(
    row: &impl Cells,
    prefix: &str,
    user_id: String,
    updated_at: Option<DateTime<Utc>>,
) -> Result<UserStats> {
    let col = |c: &str| format!("{prefix}{c}");
    // Two places whatever the store hands back: PostgreSQL's NUMERIC(5,2) zero decodes as `0`,
    // and rows SQLite filled with the column's default hold `'0'`.
    let mut accuracy_rate = row.decimal(&col("acc"))?;
    accuracy_rate.rescale(2);
    Ok(UserStats {
        user_id,
        total_participations: row.int(&col("total"))?,
        correct_count: row.int(&col("correct"))?,
        accuracy_rate,
        current_streak: row.int(&col("cur"))?,
        max_streak: row.int(&col("best"))?,
        updated_at: match updated_at {
            Some(t) => t,
            None => row.instant(&col("updated_at"))?,
        },
    })
}

/// A row of [`STATS_COLUMNS`].
pub(crate) fn user_stats(row: &impl Cells) -> Result<UserStats> {
    stats(row, "", row.text("user_id")?, None)
}

/// A row of a statistics check: the recomputed values (`user_id`, `total` … `best`, as of
/// `now`) and the stored ones under `s_` (`s_user` NULL when the user has no stored row).
pub(crate) fn stats_diff(row: &impl Cells, now: DateTime<Utc>) -> Result<goldjobs_core::StatsDiff> {
    let recomputed = stats(row, "", row.text("user_id")?, Some(now))?;
    let stored = match row.opt_text("s_user")? {
        Some(user) => Some(stats(row, "s_", user, None)?),
        None => None,
    };
    Ok(super::stats_diff(recomputed, stored))
}

/// The stored statistics of a diff query, under the `s_` names [`stats_diff`] reads.
pub(crate) const STORED_STATS_COLUMNS: &str = "s.user_id AS s_user, \
    s.total_participations AS s_total, s.correct_count AS s_correct, s.accuracy_rate AS s_acc, \
    s.current_streak AS s_cur, s.max_streak AS s_best, s.updated_at AS s_updated_at";

/// Columns of an outbox row as [`outbox_row`] reads them (`payload` as text).
pub(crate) fn outbox_columns(payload: &str) -> String {
    format!("id, {payload}, state, attempts, last_error, next_attempt_at")
}

/// An `outbox` row as the operator sees it.
pub(crate) fn outbox_row(row: &impl Cells) -> Result<OutboxRow> {
    Ok(OutboxRow {
        id: row.int("id")?,
        payload: serde_json::from_str(&row.text("payload")?)
            .map_err(|e| decode_error(row.backend(), "an outbox payload", e))?,
        state: outbox_state(row.backend(), &row.text("state")?)?,
        attempts: row.count("attempts")?,
        last_error: row.opt_text("last_error")?,
        next_attempt_at: row.instant("next_attempt_at")?,
    })
}

/// A stored outbox state.
fn outbox_state(backend: &'static str, s: &str) -> Result<OutboxState> {
    match s {
        "pending" => Ok(OutboxState::Pending),
        "delivered" => Ok(OutboxState::Delivered),
        "failed" => Ok(OutboxState::Failed),
        other => Err(decode_error(backend, "outbox state", other)),
    }
}

/// A `leases` row (`holder, term, expires_at`) as seen by `holder`.
pub(crate) fn lease_state(row: &impl Cells, holder: &str) -> Result<LeaseState> {
    let current = row.opt_text("holder")?;
    Ok(LeaseState {
        is_leader: current.as_deref() == Some(holder),
        holder: current,
        term: u64::try_from(row.int("term")?).unwrap_or(0),
        expires_at: row.opt_instant("expires_at")?,
    })
}

/// The first column of each row as text, sorted (the `RETURNING user_id` of a re-marking).
pub(crate) fn sorted_users<R: Cells>(rows: &[R], col: &str) -> Result<Vec<String>> {
    let mut users = rows
        .iter()
        .map(|r| r.text(col))
        .collect::<Result<Vec<String>>>()?;
    users.sort();
    Ok(users)
}

/// [`Cells`] methods that decode a column as the Rust type itself, through the module's
/// `get` (the type the database stores is the one goldjobs reads).
macro_rules! native_cells {
    ($($name:ident: $t:ty),* $(,)?) => {
        $(
            fn $name(&self, col: &str) -> Result<$t> {
                get(self, col)
            }
        )*
    };
}

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use sqlx::postgres::PgRow;
    use sqlx::Row;

    fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
        row: &'r PgRow,
        col: &str,
    ) -> Result<T> {
        row.try_get(col)
            .map_err(|e| super::super::map_sqlx("postgres", e))
    }

    impl Cells for PgRow {
        fn backend(&self) -> &'static str {
            "postgres"
        }
        fn count(&self, col: &str) -> Result<u32> {
            Ok(u32::try_from(get::<i32>(self, col)?).unwrap_or(0))
        }
        native_cells!(
            text: String,
            opt_text: Option<String>,
            int: i64,
            flag: bool,
            opt_flag: Option<bool>,
            instant: DateTime<Utc>,
            opt_instant: Option<DateTime<Utc>>,
            decimal: Decimal,
            opt_decimal: Option<Decimal>,
            strings: Vec<String>,
        );
    }
}

#[cfg(feature = "sqlite")]
mod lite {
    use super::*;
    use sqlx::sqlite::SqliteRow;
    use sqlx::Row;

    const BACKEND: &str = "sqlite";

    fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
        row: &'r SqliteRow,
        col: &str,
    ) -> Result<T> {
        row.try_get(col)
            .map_err(|e| super::super::map_sqlx(BACKEND, e))
    }

    /// A stored instant: RFC 3339 text.
    pub(crate) fn parse_instant(s: &str) -> Result<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| decode_error(BACKEND, "a stored instant", e))
    }

    /// A stored decimal: exact text.
    fn parse_decimal(s: &str) -> Result<Decimal> {
        Decimal::from_str(s).map_err(|e| decode_error(BACKEND, "a stored decimal", e))
    }

    impl Cells for SqliteRow {
        fn backend(&self) -> &'static str {
            BACKEND
        }
        fn count(&self, col: &str) -> Result<u32> {
            Ok(u32::try_from(get::<i64>(self, col)?).unwrap_or(0))
        }
        fn instant(&self, col: &str) -> Result<DateTime<Utc>> {
            parse_instant(&self.text(col)?)
        }
        fn opt_instant(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
            self.opt_text(col)?
                .as_deref()
                .map(parse_instant)
                .transpose()
        }
        fn decimal(&self, col: &str) -> Result<Decimal> {
            parse_decimal(&self.text(col)?)
        }
        fn opt_decimal(&self, col: &str) -> Result<Option<Decimal>> {
            self.opt_text(col)?
                .as_deref()
                .map(parse_decimal)
                .transpose()
        }
        fn strings(&self, col: &str) -> Result<Vec<String>> {
            serde_json::from_str(&self.text(col)?).map_err(|e| decode_error(BACKEND, col, e))
        }
        native_cells!(
            text: String,
            opt_text: Option<String>,
            int: i64,
            flag: bool,
            opt_flag: Option<bool>,
        );
    }
}

#[cfg(all(feature = "sqlite", test))]
pub(crate) use lite::parse_instant;

/// Claimed outbox rows (`id, payload, attempts, last_error`) as messages, and the ids of those
/// whose payload cannot be decoded (to be marked failed, never retried).
pub(crate) fn claimed_messages<R: Cells>(
    rows: &[R],
) -> Result<(Vec<goldjobs_core::OutboxMessage>, Vec<i64>)> {
    let mut out = Vec::with_capacity(rows.len());
    let mut poisoned = Vec::new();
    for r in rows {
        let id = r.int("id")?;
        match serde_json::from_str(&r.text("payload")?) {
            Ok(payload) => out.push(goldjobs_core::OutboxMessage {
                id,
                payload,
                attempts: r.count("attempts")?,
                last_error: r.opt_text("last_error")?,
            }),
            Err(e) => {
                tracing::error!(outbox_id = id, error = %e, "undecodable outbox payload; marking failed");
                poisoned.push(id);
            }
        }
    }
    Ok((out, poisoned))
}

/// The locked prediction of a correction (`status, correct_option, price_at_verify`): its
/// previous answer when the correction may go ahead, else why not.
pub(crate) fn correctable(
    row: &impl Cells,
    c: &goldjobs_core::Correction,
    option: &str,
) -> Result<Option<String>> {
    let id = c.prediction_id.as_str();
    let status = row.text("status")?;
    if status != "ended" {
        return Err(super::not_correctable(id, &status));
    }
    let previous = row.opt_text("correct_option")?;
    let stored_price = row.opt_decimal("price_at_verify")?;
    if super::correction_is_noop(previous.as_deref(), stored_price, c) {
        return Err(Error::Conflict(format!(
            "prediction {id} already has correct_option {option}"
        )));
    }
    Ok(previous)
}

/// The broadcast of a correction from the updated prediction (`symbol_code, price_at_verify,
/// price_change_percent, price_source, price_at_verify_ts`).
pub(crate) fn corrected_event(
    updated: &impl Cells,
    c: &goldjobs_core::Correction,
    option: &str,
    previous: Option<&str>,
) -> Result<goldjobs_core::PredictionCorrected> {
    Ok(goldjobs_core::PredictionCorrected {
        prediction_id: c.prediction_id.clone(),
        symbol_code: updated.text("symbol_code")?,
        correct_option: option.to_owned(),
        price_at_verify: updated.opt_decimal("price_at_verify")?.unwrap_or_default(),
        price_change_percent: updated.opt_decimal("price_change_percent")?,
        price_source: updated
            .opt_parsed("price_source")?
            .unwrap_or(goldjobs_core::PriceSource::Manual),
        price_at_verify_ts: updated
            .opt_instant("price_at_verify_ts")?
            .unwrap_or(c.corrected_at),
        previous_option: previous.unwrap_or_default().to_owned(),
    })
}

/// The locked prediction of a void (`status`): its status when it may be voided.
pub(crate) fn voidable(row: &impl Cells, id: &str) -> Result<goldjobs_core::PredictionStatus> {
    let status: goldjobs_core::PredictionStatus = row.parsed("status")?;
    if status == goldjobs_core::PredictionStatus::Void {
        return Err(Error::Conflict(format!("prediction {id} is already void")));
    }
    Ok(status)
}

/// The `job_controls` columns [`job_control`] reads.
pub(crate) const JOB_CONTROL_COLUMNS: &str = "job, paused, changed_at, last_scheduled_at, term";

/// A `job_controls` row.
pub(crate) fn job_control(row: &impl Cells) -> Result<JobControl> {
    Ok(JobControl {
        job: row.text("job")?,
        paused: row.flag("paused")?,
        changed_at: row.opt_instant("changed_at")?,
        last_scheduled_at: row.opt_instant("last_scheduled_at")?,
        term: u64::try_from(row.int("term")?).unwrap_or(0),
    })
}

/// The `job_runs` columns [`job_run`] reads.
pub(crate) const JOB_RUN_COLUMNS: &str =
    "job, instance, started_at, duration_ms, status, error, summary";

/// A `job_runs` row.
pub(crate) fn job_run(row: &impl Cells) -> Result<JobRun> {
    Ok(JobRun {
        job: row.text("job")?,
        instance: row.text("instance")?,
        started_at: row.instant("started_at")?,
        duration_ms: u64::try_from(row.int("duration_ms")?).unwrap_or(0),
        status: row.parsed("status")?,
        error: row.opt_text("error")?,
        summary: row.opt_text("summary")?,
    })
}
