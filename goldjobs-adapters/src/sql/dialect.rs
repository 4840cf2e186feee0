//! What differs between the two databases, behind one trait, so that every statement the two
//! stores share is written once ([`super::common`]).
//!
//! Shared statements use `$N` parameters (SQLite accepts them as well as PostgreSQL) and bind
//! [`Arg`]s, which each store encodes in its own column types: PostgreSQL binds `NUMERIC`,
//! `TIMESTAMPTZ` and arrays natively; SQLite binds exact decimal text, RFC 3339 text and JSON
//! arrays. The few phrases that differ (list membership, row locks, JSON casts) come from the
//! dialect too.

use super::row::Cells;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use goldjobs_core::{NoticeKind, Result};
use rust_decimal::Decimal;

/// One statement parameter, encoded by each store in its own column type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// Text.
    Text(&'a str),
    /// Nullable text.
    OptText(Option<&'a str>),
    /// A 64-bit integer.
    Int(i64),
    /// A boolean.
    Flag(bool),
    /// An instant.
    Instant(DateTime<Utc>),
    /// A nullable instant.
    OptInstant(Option<DateTime<Utc>>),
    /// An exact decimal.
    Decimal(Decimal),
    /// A nullable exact decimal.
    OptDecimal(Option<Decimal>),
    /// A list of strings, for [`Dialect::member`].
    Texts(&'a [String]),
    /// A list of integers, for [`Dialect::member`].
    Ints(&'a [i64]),
}

/// A database's own way of running the shared statements.
#[async_trait]
pub(crate) trait Dialect: Send + Sync {
    /// A result row.
    type Row: Cells + Send + Sync;
    /// An open transaction.
    type Tx: Send;

    /// `col` is one of the list bound as parameter `$n` ([`Arg::Texts`] or [`Arg::Ints`]).
    fn member(col: &str, n: u8) -> String;
    /// What follows a `SELECT` of the rows a revision changes so that concurrent writers of
    /// them wait (PostgreSQL: `FOR UPDATE`; SQLite: nothing, its write transaction holds the
    /// database).
    const LOCK_ROWS: &'static str;
    /// The select expression of `auto_verify_conditions` as text.
    const CONDITIONS_AS_TEXT: &'static str;
    /// Parameter `$n` as the type of `auto_verify_conditions`.
    fn conditions_param(n: u8) -> String;
    /// The set-based candles query: parameters `$1` symbol code, `$2` from (inclusive), `$3` to
    /// (exclusive), `$4` interval in seconds; columns `b` (interval start, Unix seconds),
    /// `open`, `high`, `low`, `close`, `n` (ticks), ordered by `b`. It reads the
    /// `(symbol_code, ts)` index.
    const CANDLES: &'static str;

    /// Every row `sql` returns.
    async fn fetch_all(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Self::Row>>;
    /// The row `sql` returns, if any.
    async fn fetch_optional(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Self::Row>>;
    /// Run `sql`; how many rows it changed.
    async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64>;

    /// A transaction that writes (SQLite: `BEGIN IMMEDIATE`, so it holds the write lock from
    /// its first statement).
    async fn begin_write(&self) -> Result<Self::Tx>;
    /// Commit `tx`.
    async fn commit(tx: Self::Tx) -> Result<()>;
    /// Every row `sql` returns, inside `tx`.
    async fn tx_fetch_all(tx: &mut Self::Tx, sql: &str, args: &[Arg<'_>])
        -> Result<Vec<Self::Row>>;
    /// The row `sql` returns inside `tx`, if any.
    async fn tx_fetch_optional(
        tx: &mut Self::Tx,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<Self::Row>>;
    /// Run `sql` inside `tx`; how many rows it changed.
    async fn tx_execute(tx: &mut Self::Tx, sql: &str, args: &[Arg<'_>]) -> Result<u64>;

    /// Replace the statistics of `users` (sorted) with their recomputation from every verified
    /// vote, `updated_at = now`; how many users were written.
    async fn recompute_users(
        tx: &mut Self::Tx,
        users: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64>;

    /// The outbox rows of a revision: the broadcast (`broadcast_kind`, payload `broadcast`)
    /// and, when the prediction has `voters`, one fan-out row that notifies each of them.
    #[allow(clippy::too_many_arguments)]
    async fn insert_revision_outbox(
        tx: &mut Self::Tx,
        broadcast_kind: &str,
        broadcast: String,
        prediction_id: &str,
        kind: NoticeKind,
        voters: u64,
        at: DateTime<Utc>,
    ) -> Result<()>;
}

/// `impl Dialect for $store` from the store's own items (`member`, the constants,
/// `begin_write`) and the statement-running methods, which are the same calls on every
/// database: the store has a `pool` field, a `bound` function that binds [`Arg`]s in its
/// types, a `db` error mapper, and `recompute_users` / `insert_revision_outbox` functions.
macro_rules! dialect_impl {
    ($store:ty, $row:ty, $db:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl Dialect for $store {
        type Row = $row;
        type Tx = sqlx::Transaction<'static, $db>;
        $($own)*
        async fn fetch_all(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<$row>> {
            bound(sql, args).fetch_all(&self.pool).await.map_err(db)
        }
        async fn fetch_optional(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<$row>> {
            bound(sql, args)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)
        }
        async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
            let done = bound(sql, args).execute(&self.pool).await.map_err(db)?;
            Ok(done.rows_affected())
        }
        async fn commit(tx: Self::Tx) -> Result<()> {
            tx.commit().await.map_err(db)
        }
        async fn tx_fetch_all(tx: &mut Self::Tx, sql: &str, args: &[Arg<'_>]) -> Result<Vec<$row>> {
            bound(sql, args).fetch_all(&mut **tx).await.map_err(db)
        }
        async fn tx_fetch_optional(
            tx: &mut Self::Tx,
            sql: &str,
            args: &[Arg<'_>],
        ) -> Result<Option<$row>> {
            bound(sql, args).fetch_optional(&mut **tx).await.map_err(db)
        }
        async fn tx_execute(tx: &mut Self::Tx, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
            let done = bound(sql, args).execute(&mut **tx).await.map_err(db)?;
            Ok(done.rows_affected())
        }
        async fn recompute_users(
            tx: &mut Self::Tx,
            users: &[String],
            now: DateTime<Utc>,
        ) -> Result<u64> {
            recompute_users(tx, users, now).await
        }
        async fn insert_revision_outbox(
            tx: &mut Self::Tx,
            broadcast_kind: &str,
            broadcast: String,
            prediction_id: &str,
            kind: NoticeKind,
            voters: u64,
            at: DateTime<Utc>,
        ) -> Result<()> {
            insert_revision_outbox(
                tx,
                broadcast_kind,
                broadcast,
                prediction_id,
                kind,
                voters,
                at,
            )
            .await
        }
        }
    };
}
pub(crate) use dialect_impl;
