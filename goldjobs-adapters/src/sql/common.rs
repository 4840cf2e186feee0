//! The repository operations whose statements are the same on both databases, written once
//! over [`Dialect`]. Each store's port implementation calls these; what stays in `postgres.rs`
//! and `sqlite.rs` is what the databases really do differently (batch encoding, row locks with
//! `SKIP LOCKED`, set-based verification, leases on the database clock).

use super::dialect::{Arg, Dialect};
use super::row::{self, Cells};
use super::{corrected_payload, correction_option, void_reason, voided_payload};
use chrono::{DateTime, Utc};
use goldjobs_core::news::FeedHealth;
use goldjobs_core::runtime::{JobControl, JobRun};
use goldjobs_core::{
    Candle, CandleQuery, Correction, DeviceToken, DueSymbol, Error, NewsArticle, NoticeKind,
    OptionVotes, OutboxRow, Prediction, PredictionQuery, PredictionStatus, PredictionVoided,
    PriceTick, Result, Revision, Story, Symbol, UserStats, VoidRecord, Vote,
};
use std::collections::{HashMap, HashSet};

/// The active symbols in code order.
pub(crate) async fn active_symbols<D: Dialect>(d: &D) -> Result<Vec<Symbol>> {
    let rows = d
        .fetch_all(
            "SELECT code, name, provider_symbol, active FROM symbols WHERE active ORDER BY code",
            &[],
        )
        .await?;
    rows.iter().map(row::symbol).collect()
}

/// The newest tick of a symbol.
pub(crate) async fn latest_tick<D: Dialect>(d: &D, symbol_code: &str) -> Result<Option<PriceTick>> {
    let row = d
        .fetch_optional(
            "SELECT symbol_code, price, ts, source FROM price_ticks WHERE symbol_code = $1 \
             ORDER BY ts DESC LIMIT 1",
            &[Arg::Text(symbol_code)],
        )
        .await?;
    row.as_ref().map(row::tick).transpose()
}

/// The candles of `q` by the dialect's set-based query.
pub(crate) async fn candles<D: Dialect>(d: &D, q: &CandleQuery) -> Result<Vec<Candle>> {
    let rows = d
        .fetch_all(
            D::CANDLES,
            &[
                Arg::Text(&q.symbol_code),
                Arg::Instant(q.from),
                Arg::Instant(q.to),
                Arg::Int(q.interval.seconds()),
            ],
        )
        .await?;
    rows.iter().map(row::candle).collect()
}

/// Columns of a prediction as [`row::prediction`] reads them on `D`.
pub(crate) fn prediction_columns<D: Dialect>() -> String {
    row::prediction_columns(D::CONDITIONS_AS_TEXT)
}

/// Insert one prediction.
pub(crate) async fn insert_prediction<D: Dialect>(d: &D, p: &Prediction) -> Result<()> {
    let sql = format!(
        "INSERT INTO predictions ({}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {}, $10, $11, $12, $13, $14, $15, $16, $17)",
        row::prediction_columns("auto_verify_conditions"),
        D::conditions_param(9)
    );
    d.execute(
        &sql,
        &[
            Arg::Text(&p.id),
            Arg::Text(&p.symbol_code),
            Arg::Text(&p.question),
            Arg::Decimal(p.price_at_create),
            Arg::OptDecimal(p.price_at_verify),
            Arg::OptDecimal(p.price_change_percent),
            Arg::Instant(p.verify_time),
            Arg::Text(p.verify_rule.as_str()),
            Arg::OptText(p.auto_verify_conditions.as_deref()),
            Arg::OptText(p.correct_option.as_deref()),
            Arg::Text(p.status.as_str()),
            Arg::OptText(p.review_reason.as_deref()),
            Arg::OptText(p.price_source.map(|s| s.as_str())),
            Arg::OptInstant(p.price_at_verify_ts),
            Arg::OptInstant(p.verified_at),
            Arg::Instant(p.created_at),
            Arg::OptText(p.price_provider.as_deref()),
        ],
    )
    .await?;
    Ok(())
}

/// One prediction by id.
pub(crate) async fn get_prediction<D: Dialect>(d: &D, id: &str) -> Result<Option<Prediction>> {
    let sql = format!(
        "SELECT {} FROM predictions WHERE id = $1",
        prediction_columns::<D>()
    );
    let row = d.fetch_optional(&sql, &[Arg::Text(id)]).await?;
    row.as_ref().map(row::prediction).transpose()
}

/// Predictions by status and symbol, verified newest first.
pub(crate) async fn list_predictions<D: Dialect>(
    d: &D,
    query: &PredictionQuery,
) -> Result<Vec<Prediction>> {
    let sql = format!(
        "SELECT {} FROM predictions \
         WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR symbol_code = $2) \
         ORDER BY verified_at DESC NULLS LAST, verify_time DESC, id LIMIT $3",
        prediction_columns::<D>()
    );
    let rows = d
        .fetch_all(
            &sql,
            &[
                Arg::OptText(query.status.map(|s| s.as_str())),
                Arg::OptText(query.symbol_code.as_deref()),
                Arg::Int(i64::from(query.limit)),
            ],
        )
        .await?;
    rows.iter().map(row::prediction).collect()
}

/// The newest verified predictions.
pub(crate) async fn recent_verified<D: Dialect>(d: &D, limit: u32) -> Result<Vec<Prediction>> {
    let sql = format!(
        "SELECT {} FROM predictions WHERE status = 'ended' AND verified_at IS NOT NULL \
         ORDER BY verified_at DESC, id LIMIT $1",
        prediction_columns::<D>()
    );
    let rows = d.fetch_all(&sql, &[Arg::Int(i64::from(limit))]).await?;
    rows.iter().map(row::prediction).collect()
}

/// Votes per option of a prediction, in option order.
pub(crate) async fn vote_counts<D: Dialect>(
    d: &D,
    prediction_id: &str,
) -> Result<Vec<OptionVotes>> {
    let rows = d
        .fetch_all(
            "SELECT selected_option, COUNT(*) AS votes FROM prediction_votes \
             WHERE prediction_id = $1 GROUP BY selected_option ORDER BY selected_option",
            &[Arg::Text(prediction_id)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OptionVotes {
                option: r.text("selected_option")?,
                votes: u64::try_from(r.int("votes")?).unwrap_or(0),
            })
        })
        .collect()
}

/// The votes of a prediction in the order they were cast.
pub(crate) async fn votes_for<D: Dialect>(d: &D, prediction_id: &str) -> Result<Vec<Vote>> {
    let rows = d
        .fetch_all(
            "SELECT prediction_id, user_id, selected_option, is_correct, created_at \
             FROM prediction_votes WHERE prediction_id = $1 ORDER BY created_at, user_id",
            &[Arg::Text(prediction_id)],
        )
        .await?;
    rows.iter().map(row::vote).collect()
}

/// The stored statistics of `user_ids` (those that have a row), in user order.
pub(crate) async fn user_stats<D: Dialect>(d: &D, user_ids: &[String]) -> Result<Vec<UserStats>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {} FROM user_prediction_stats WHERE {} ORDER BY user_id",
        row::STATS_COLUMNS,
        D::member("user_id", 1)
    );
    let rows = d.fetch_all(&sql, &[Arg::Texts(user_ids)]).await?;
    rows.iter().map(row::user_stats).collect()
}

/// The earliest `verify_time` of each symbol's active auto predictions, earliest first.
///
/// A loose index scan over `predictions_next_due_idx` (`(symbol_code, verify_time)` of the
/// active auto rows): the recursive part steps from one symbol code to the next, and each
/// symbol's earliest deadline is the first entry of its range, so the cost grows with the
/// number of symbols, not with the number of active predictions (a plain `GROUP BY` would
/// read every one of them, every second).
pub(crate) async fn next_due<D: Dialect>(d: &D, limit: u32) -> Result<Vec<DueSymbol>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = d
        .fetch_all(
            "WITH RECURSIVE s(code) AS ( \
                 SELECT (SELECT symbol_code FROM predictions \
                         WHERE status = 'active' AND verify_rule = 'auto' \
                         ORDER BY symbol_code LIMIT 1) \
                 UNION ALL \
                 SELECT (SELECT p.symbol_code FROM predictions p \
                         WHERE p.status = 'active' AND p.verify_rule = 'auto' \
                           AND p.symbol_code > s.code \
                         ORDER BY p.symbol_code LIMIT 1) \
                 FROM s WHERE s.code IS NOT NULL) \
             SELECT symbol_code, verify_time FROM ( \
                 SELECT s.code AS symbol_code, \
                        (SELECT p.verify_time FROM predictions p \
                         WHERE p.status = 'active' AND p.verify_rule = 'auto' \
                           AND p.symbol_code = s.code \
                         ORDER BY p.verify_time LIMIT 1) AS verify_time \
                 FROM s WHERE s.code IS NOT NULL) AS earliest \
             WHERE verify_time IS NOT NULL \
             ORDER BY verify_time, symbol_code LIMIT $1",
            &[Arg::Int(i64::from(limit))],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DueSymbol::new(
                r.text("symbol_code")?,
                r.instant("verify_time")?,
            ))
        })
        .collect()
}

/// Give up the verification claims on `ids`.
pub(crate) async fn release_claims<D: Dialect>(d: &D, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE predictions SET claimed_until = NULL WHERE {}",
        D::member("id", 1)
    );
    d.execute(&sql, &[Arg::Texts(ids)]).await?;
    Ok(())
}

/// A locked prediction of a revision, or not found.
async fn lock_prediction<D: Dialect>(tx: &mut D::Tx, columns: &str, id: &str) -> Result<D::Row> {
    let sql = format!(
        "SELECT {columns} FROM predictions WHERE id = $1{}",
        D::LOCK_ROWS
    );
    D::tx_fetch_optional(tx, &sql, &[Arg::Text(id)])
        .await?
        .ok_or_else(|| Error::NotFound(format!("prediction {id}")))
}

/// Record a correction (guide: *Corrections and voids*) in one transaction: lock the prediction,
/// write the new answer (and price), re-mark every vote, recompute the voters' statistics from all
/// of their verified votes, and queue the broadcast and one notice per voter.
pub(crate) async fn record_correction<D: Dialect>(d: &D, c: &Correction) -> Result<Revision> {
    let id = c.prediction_id.as_str();
    let option = correction_option(c)?;
    let mut tx = d.begin_write().await?;
    // 1. the prediction, locked: concurrent revisions and verifications of it wait
    let locked =
        lock_prediction::<D>(&mut tx, "status, correct_option, price_at_verify", id).await?;
    let previous = row::correctable(&locked, c, option)?;
    // 2. the new answer (and price)
    let price = c.price.as_ref();
    let updated = D::tx_fetch_optional(
        &mut tx,
        "UPDATE predictions SET correct_option = $2, \
             price_at_verify = CASE WHEN $3 THEN $4 ELSE price_at_verify END, \
             price_change_percent = CASE WHEN $3 THEN $5 ELSE price_change_percent END, \
             price_at_verify_ts = CASE WHEN $3 THEN $6 ELSE price_at_verify_ts END, \
             price_source = CASE WHEN $3 THEN 'manual' ELSE price_source END, \
             price_provider = CASE WHEN $3 THEN NULL ELSE price_provider END \
         WHERE id = $1 \
         RETURNING symbol_code, price_at_verify, price_change_percent, price_source, \
                   price_at_verify_ts",
        &[
            Arg::Text(id),
            Arg::Text(option),
            Arg::Flag(price.is_some()),
            Arg::OptDecimal(price.map(|m| m.price_at_verify)),
            Arg::OptDecimal(price.and_then(|m| m.price_change_percent)),
            Arg::OptInstant(price.map(|m| m.price_at_verify_ts)),
        ],
    )
    .await?
    .ok_or_else(|| Error::NotFound(format!("prediction {id}")))?;
    // 3. every vote re-marked
    let voters = D::tx_fetch_all(
        &mut tx,
        "UPDATE prediction_votes SET is_correct = (selected_option = $2) \
         WHERE prediction_id = $1 RETURNING user_id",
        &[Arg::Text(id), Arg::Text(option)],
    )
    .await?;
    let users = row::sorted_users(&voters, "user_id")?;
    // 4. the voters' statistics, recomputed from all of their verified votes
    let recomputed = D::recompute_users(&mut tx, &users, c.corrected_at).await?;
    // 5. the broadcast and one notice per voter
    let event = row::corrected_event(&updated, c, option, previous.as_deref())?;
    D::insert_revision_outbox(
        &mut tx,
        "prediction_corrected",
        corrected_payload(event)?,
        id,
        NoticeKind::Corrected,
        users.len() as u64,
        c.corrected_at,
    )
    .await?;
    D::commit(tx).await?;
    Ok(Revision {
        previous_status: PredictionStatus::Ended,
        previous_option: previous,
        votes_marked: users.len() as u64,
        users_recomputed: recomputed,
    })
}

/// Record a void (guide: *Corrections and voids*) in one transaction: lock the prediction (a
/// verifier recording it waits, then finds it not eligible), mark it void, unmark its votes,
/// recompute the voters' statistics when it had ended, and queue the broadcast and the notices.
pub(crate) async fn record_void<D: Dialect>(d: &D, v: &VoidRecord) -> Result<Revision> {
    let id = v.prediction_id.as_str();
    let reason = void_reason(v)?;
    let mut tx = d.begin_write().await?;
    let locked = lock_prediction::<D>(&mut tx, "status, symbol_code, correct_option", id).await?;
    let previous_status = row::voidable(&locked, id)?;
    D::tx_execute(
        &mut tx,
        "UPDATE predictions SET status = 'void', review_reason = $2, claimed_until = NULL \
         WHERE id = $1",
        &[Arg::Text(id), Arg::Text(reason)],
    )
    .await?;
    let voters = D::tx_fetch_all(
        &mut tx,
        "UPDATE prediction_votes SET is_correct = NULL WHERE prediction_id = $1 \
         RETURNING user_id",
        &[Arg::Text(id)],
    )
    .await?;
    let users = row::sorted_users(&voters, "user_id")?;
    let recomputed = if previous_status == PredictionStatus::Ended {
        D::recompute_users(&mut tx, &users, v.voided_at).await?
    } else {
        0
    };
    let event = PredictionVoided {
        prediction_id: id.to_owned(),
        symbol_code: locked.text("symbol_code")?,
        reason: reason.to_owned(),
    };
    D::insert_revision_outbox(
        &mut tx,
        "prediction_voided",
        voided_payload(event)?,
        id,
        NoticeKind::Voided,
        users.len() as u64,
        v.voided_at,
    )
    .await?;
    D::commit(tx).await?;
    Ok(Revision {
        previous_status,
        previous_option: locked.opt_text("correct_option")?,
        votes_marked: users.len() as u64,
        users_recomputed: recomputed,
    })
}

/// Mark claimed outbox rows failed for good because their payload cannot be decoded.
pub(crate) async fn mark_undecodable<D: Dialect>(d: &D, ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, \
         last_error = 'undecodable payload', claimed_until = NULL WHERE {}",
        D::member("id", 1)
    );
    d.execute(&sql, &[Arg::Ints(ids)]).await?;
    Ok(())
}

/// Mark outbox rows delivered.
pub(crate) async fn mark_delivered<D: Dialect>(d: &D, ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE outbox SET state = 'delivered', claimed_until = NULL WHERE {}",
        D::member("id", 1)
    );
    d.execute(&sql, &[Arg::Ints(ids)]).await?;
    Ok(())
}

/// Count a failed attempt of a pending outbox row and retry it at `next_attempt_at`.
pub(crate) async fn reschedule<D: Dialect>(
    d: &D,
    id: i64,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<()> {
    d.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3, \
         claimed_until = NULL WHERE id = $1 AND state = 'pending'",
        &[
            Arg::Int(id),
            Arg::Text(error),
            Arg::Instant(next_attempt_at),
        ],
    )
    .await?;
    Ok(())
}

/// Count a failed attempt of a pending outbox row and give it up.
pub(crate) async fn mark_failed<D: Dialect>(d: &D, id: i64, error: &str) -> Result<()> {
    d.execute(
        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $2, \
         claimed_until = NULL WHERE id = $1 AND state = 'pending'",
        &[Arg::Int(id), Arg::Text(error)],
    )
    .await?;
    Ok(())
}

/// Every outbox row in id order (`payload` is the select expression of the payload as text).
pub(crate) async fn outbox_rows<D: Dialect>(d: &D, payload: &str) -> Result<Vec<OutboxRow>> {
    let sql = format!(
        "SELECT {} FROM outbox ORDER BY id",
        row::outbox_columns(payload)
    );
    let rows = d.fetch_all(&sql, &[]).await?;
    rows.iter().map(row::outbox_row).collect()
}

/// The newest articles, of one category or of all.
pub(crate) async fn latest_articles<D: Dialect>(
    d: &D,
    category: Option<&str>,
    limit: u32,
) -> Result<Vec<NewsArticle>> {
    // two statements rather than `$1 IS NULL OR category = $1`, so each has a plan that walks
    // its index
    let columns = row::ARTICLE_COLUMNS;
    let limit = Arg::Int(i64::from(limit));
    let rows = match category {
        Some(category) => {
            let sql = format!(
                "SELECT {columns} FROM news_articles WHERE category = $2 \
                 ORDER BY published_at DESC, id LIMIT $1"
            );
            d.fetch_all(&sql, &[limit, Arg::Text(category)]).await?
        }
        None => {
            let sql = format!(
                "SELECT {columns} FROM news_articles ORDER BY published_at DESC, id LIMIT $1"
            );
            d.fetch_all(&sql, &[limit]).await?
        }
    };
    rows.iter().map(row::article).collect()
}

/// The first article of each canonical URL in `articles` that is not stored yet, after
/// updating the text of those stored whose title, summary, content or thumbnail changed; and
/// how many were updated. The caller inserts the returned ones.
pub(crate) async fn refresh_articles<'a, D: Dialect>(
    d: &D,
    articles: &'a [NewsArticle],
) -> Result<(Vec<NewsArticle>, u64)> {
    let mut seen = HashSet::new();
    let unique: Vec<&'a NewsArticle> = articles
        .iter()
        .filter(|a| seen.insert(a.canonical_url.as_str()))
        .collect();
    if unique.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let urls: Vec<String> = unique.iter().map(|a| a.canonical_url.clone()).collect();
    let sql = format!(
        "SELECT {} FROM news_articles WHERE {}",
        row::ARTICLE_COLUMNS,
        D::member("canonical_url", 1)
    );
    let stored: HashMap<String, NewsArticle> = d
        .fetch_all(&sql, &[Arg::Texts(&urls)])
        .await?
        .iter()
        .map(|r| row::article(r).map(|a| (a.canonical_url.clone(), a)))
        .collect::<Result<_>>()?;
    let mut fresh = Vec::new();
    let mut updated = 0;
    for a in unique {
        let Some(old) = stored.get(&a.canonical_url) else {
            fresh.push(a.clone());
            continue;
        };
        if old.title == a.title
            && old.summary == a.summary
            && old.content == a.content
            && old.thumbnail_url == a.thumbnail_url
        {
            continue;
        }
        updated += d
            .execute(
                "UPDATE news_articles SET title = $1, summary = $2, content = $3, \
                 thumbnail_url = $4 WHERE canonical_url = $5",
                &[
                    Arg::Text(&a.title),
                    Arg::Text(&a.summary),
                    Arg::OptText(a.content.as_deref()),
                    Arg::OptText(a.thumbnail_url.as_deref()),
                    Arg::Text(&a.canonical_url),
                ],
            )
            .await?;
    }
    Ok((fresh, updated))
}

/// Articles scanned per story asked for by [`latest_stories`] (stories are found among the
/// newest `limit × STORY_SCAN + 100` articles of the category).
const STORY_SCAN: i64 = 10;

/// One entry per story among the newest articles (of one category or of all), with the
/// story's other articles.
pub(crate) async fn latest_stories<D: Dialect>(
    d: &D,
    category: Option<&str>,
    limit: u32,
    max_sources: u32,
) -> Result<Vec<Story>> {
    let columns = row::ARTICLE_COLUMNS;
    let scan = Arg::Int(
        i64::from(limit)
            .saturating_mul(STORY_SCAN)
            .saturating_add(100),
    );
    let ranked = |filter: &str| {
        format!(
            "SELECT {columns} FROM ( \
                 SELECT {columns}, ROW_NUMBER() OVER ( \
                     PARTITION BY COALESCE(story_id, id) ORDER BY published_at DESC, id) AS rn \
                 FROM (SELECT {columns} FROM news_articles {filter} \
                       ORDER BY published_at DESC, id LIMIT $2) AS recent \
             ) AS ranked WHERE rn = 1 ORDER BY published_at DESC, id LIMIT $1"
        )
    };
    let limit_arg = Arg::Int(i64::from(limit));
    let leads = match category {
        Some(c) => {
            d.fetch_all(
                &ranked("WHERE category = $3"),
                &[limit_arg, scan, Arg::Text(c)],
            )
            .await?
        }
        None => d.fetch_all(&ranked(""), &[limit_arg, scan]).await?,
    };
    let leads: Vec<NewsArticle> = leads.iter().map(row::article).collect::<Result<_>>()?;
    if leads.is_empty() {
        return Ok(Vec::new());
    }
    let stories: Vec<String> = leads.iter().map(|a| a.story().to_owned()).collect();
    let sql = format!(
        "SELECT {columns} FROM ( \
             SELECT {columns}, ROW_NUMBER() OVER ( \
                 PARTITION BY COALESCE(story_id, id) ORDER BY published_at DESC, id) AS rn \
             FROM news_articles WHERE {} OR {} \
         ) AS ranked WHERE rn <= $2 ORDER BY published_at DESC, id",
        D::member("story_id", 1),
        D::member("id", 1)
    );
    let members = d
        .fetch_all(
            &sql,
            &[
                Arg::Texts(&stories),
                Arg::Int(i64::from(max_sources).saturating_add(1)),
            ],
        )
        .await?;
    let mut by_story: HashMap<String, Vec<NewsArticle>> = HashMap::new();
    for r in &members {
        let a = row::article(r)?;
        by_story.entry(a.story().to_owned()).or_default().push(a);
    }
    Ok(leads
        .into_iter()
        .map(|lead| {
            let others = by_story
                .get(lead.story())
                .map(|all| {
                    all.iter()
                        .filter(|a| a.id != lead.id)
                        .take(max_sources as usize)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            Story { lead, others }
        })
        .collect())
}

/// The stored health of every feed.
pub(crate) async fn feed_states<D: Dialect>(d: &D) -> Result<Vec<(String, FeedHealth)>> {
    let sql = format!(
        "SELECT {} FROM news_feeds ORDER BY feed_key",
        row::FEED_COLUMNS
    );
    d.fetch_all(&sql, &[])
        .await?
        .iter()
        .map(row::feed_health)
        .collect()
}

/// Store the health of these feeds, replacing what each key had.
pub(crate) async fn save_feed_states<D: Dialect>(
    d: &D,
    states: &[(String, FeedHealth)],
    now: DateTime<Utc>,
) -> Result<()> {
    for (key, h) in states {
        let status = h.last_status.map(|s| s.as_str());
        d.execute(
            "INSERT INTO news_feeds (feed_key, name, category, url, last_fetch_at, last_status, \
                 consecutive_failures, next_fetch_at, articles_total, last_error, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (feed_key) DO UPDATE SET name = excluded.name, \
                 category = excluded.category, url = excluded.url, \
                 last_fetch_at = excluded.last_fetch_at, last_status = excluded.last_status, \
                 consecutive_failures = excluded.consecutive_failures, \
                 next_fetch_at = excluded.next_fetch_at, \
                 articles_total = excluded.articles_total, last_error = excluded.last_error, \
                 updated_at = excluded.updated_at",
            &[
                Arg::Text(key),
                Arg::Text(&h.name),
                Arg::Text(&h.category),
                Arg::Text(&h.url),
                Arg::OptInstant(h.last_fetch_at),
                Arg::OptText(status),
                Arg::Int(i64::from(h.consecutive_failures)),
                Arg::OptInstant(h.next_fetch_at),
                Arg::Int(i64::try_from(h.articles_total).unwrap_or(i64::MAX)),
                Arg::OptText(h.last_error.as_deref()),
                Arg::Instant(now),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Register (or move to another user) a device token.
pub(crate) async fn register_token<D: Dialect>(d: &D, token: &DeviceToken) -> Result<()> {
    d.execute(
        "INSERT INTO device_tokens (user_id, token, platform, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (token) DO UPDATE SET user_id = excluded.user_id, \
         platform = excluded.platform",
        &[
            Arg::Text(&token.user_id),
            Arg::Text(&token.token),
            Arg::Text(&token.platform),
            Arg::Instant(Utc::now()),
        ],
    )
    .await?;
    Ok(())
}

/// The device tokens of `user_ids`, in user then token order.
pub(crate) async fn tokens_for_users<D: Dialect>(
    d: &D,
    user_ids: &[String],
) -> Result<Vec<DeviceToken>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT user_id, token, platform FROM device_tokens WHERE {} ORDER BY user_id, token",
        D::member("user_id", 1)
    );
    let rows = d.fetch_all(&sql, &[Arg::Texts(user_ids)]).await?;
    rows.iter().map(row::device_token).collect()
}

/// Delete device tokens; how many there were.
pub(crate) async fn delete_tokens<D: Dialect>(d: &D, tokens: &[String]) -> Result<u64> {
    if tokens.is_empty() {
        return Ok(0);
    }
    let sql = format!("DELETE FROM device_tokens WHERE {}", D::member("token", 1));
    d.execute(&sql, &[Arg::Texts(tokens)]).await
}

/// Every stored job control.
pub(crate) async fn job_controls<D: Dialect>(d: &D) -> Result<Vec<JobControl>> {
    let sql = format!(
        "SELECT {} FROM job_controls ORDER BY job",
        row::JOB_CONTROL_COLUMNS
    );
    let rows = d.fetch_all(&sql, &[]).await?;
    rows.iter().map(row::job_control).collect()
}

/// Pause or resume a job; `changed_at` moves only when the flag changes.
pub(crate) async fn set_paused<D: Dialect>(
    d: &D,
    job: &str,
    paused: bool,
    at: DateTime<Utc>,
) -> Result<JobControl> {
    let sql = format!(
        "INSERT INTO job_controls AS c (job, paused, changed_at, term) VALUES ($1, $2, $3, 0) \
         ON CONFLICT (job) DO UPDATE SET paused = excluded.paused, \
             changed_at = CASE WHEN c.paused = excluded.paused AND c.changed_at IS NOT NULL \
                          THEN c.changed_at ELSE excluded.changed_at END \
         RETURNING {}",
        row::JOB_CONTROL_COLUMNS
    );
    let row = d
        .fetch_optional(&sql, &[Arg::Text(job), Arg::Flag(paused), Arg::Instant(at)])
        .await?
        .ok_or_else(|| Error::NotFound(format!("job_controls row of {job}")))?;
    row::job_control(&row)
}

/// The fenced write of a job's last scheduled instant (see `JobStore::set_last_scheduled`).
pub(crate) async fn set_last_scheduled<D: Dialect>(
    d: &D,
    job: &str,
    at: DateTime<Utc>,
    term: u64,
) -> Result<bool> {
    let term = i64::try_from(term).unwrap_or(i64::MAX);
    let written = d
        .execute(
            "INSERT INTO job_controls AS c (job, paused, last_scheduled_at, term) \
             VALUES ($1, FALSE, $2, $3) \
             ON CONFLICT (job) DO UPDATE SET \
                 last_scheduled_at = CASE WHEN c.last_scheduled_at IS NULL \
                     OR c.last_scheduled_at < excluded.last_scheduled_at \
                     THEN excluded.last_scheduled_at ELSE c.last_scheduled_at END, \
                 term = excluded.term \
             WHERE c.term <= excluded.term",
            &[Arg::Text(job), Arg::Instant(at), Arg::Int(term)],
        )
        .await?;
    Ok(written > 0)
}

/// Append a run and keep the newest `keep` of its job.
pub(crate) async fn record_run<D: Dialect>(d: &D, run: &JobRun, keep: u32) -> Result<()> {
    let run = run.clone().clipped();
    d.execute(
        "INSERT INTO job_runs (job, instance, started_at, duration_ms, status, error, summary) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            Arg::Text(&run.job),
            Arg::Text(&run.instance),
            Arg::Instant(run.started_at),
            Arg::Int(i64::try_from(run.duration_ms).unwrap_or(i64::MAX)),
            Arg::Text(run.status.as_str()),
            Arg::OptText(run.error.as_deref()),
            Arg::OptText(run.summary.as_deref()),
        ],
    )
    .await?;
    // walks the (job, id) index: the id of the newest run beyond `keep`, then the older ones
    d.execute(
        "DELETE FROM job_runs WHERE job = $1 AND id <= \
         (SELECT id FROM job_runs WHERE job = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        &[Arg::Text(&run.job), Arg::Int(i64::from(keep))],
    )
    .await?;
    Ok(())
}

/// The newest runs of a job.
pub(crate) async fn recent_runs<D: Dialect>(d: &D, job: &str, limit: u32) -> Result<Vec<JobRun>> {
    let sql = format!(
        "SELECT {} FROM job_runs WHERE job = $1 ORDER BY started_at DESC, id DESC LIMIT $2",
        row::JOB_RUN_COLUMNS
    );
    let rows = d
        .fetch_all(&sql, &[Arg::Text(job), Arg::Int(i64::from(limit))])
        .await?;
    rows.iter().map(row::job_run).collect()
}

/// Keep the newest `keep` runs of every job.
pub(crate) async fn prune_runs<D: Dialect>(d: &D, keep: u32) -> Result<u64> {
    d.execute(
        "DELETE FROM job_runs WHERE id IN (SELECT id FROM \
             (SELECT id, row_number() OVER (PARTITION BY job ORDER BY id DESC) AS rn \
              FROM job_runs) AS r \
         WHERE rn > $1)",
        &[Arg::Int(i64::from(keep))],
    )
    .await
}
