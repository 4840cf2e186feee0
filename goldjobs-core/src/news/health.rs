//! Feed health: what each feed last answered, and when to ask a failing one again.
//!
//! A failing feed is asked again after a capped exponential backoff with jitter
//! ([`FEED_BACKOFF`]: about 15 min, 30 min, 1 h, … up to 6 h), or later when it said so with
//! `Retry-After`; it is never parked for good, and the first good answer puts it back on the
//! normal schedule. [`FeedHealth::record`] tells when a feed changed between healthy and
//! failing, so a log line is written per change rather than per attempt.

use crate::backoff::{Backoff, Jitter, RandomSource};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The backoff of a failing feed: ceilings 15 min, 30 min, 1 h, 2 h, 4 h, then 6 h, each wait
/// uniform in the upper half of its ceiling. A feed down for a day is asked about 8 times
/// instead of 96.
pub const FEED_BACKOFF: Backoff =
    Backoff::new(Duration::from_secs(15 * 60), Duration::from_secs(6 * 3600))
        .with_jitter(Jitter::Equal);

/// The longest `Retry-After` honoured (a longer one is cut to this): a hostile or mistaken
/// header cannot park a feed for more than a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How a feed's last fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedStatus {
    /// It answered with a feed.
    Ok,
    /// It answered `304 Not Modified`.
    NotModified,
    /// It failed (network, HTTP error, not a feed, too large, timeout).
    Failed,
    /// It answered `429` or `503` (with or without `Retry-After`).
    RateLimited,
}

impl FeedStatus {
    /// `ok`, `not_modified`, `failed` or `rate_limited` (also a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            FeedStatus::Ok => "ok",
            FeedStatus::NotModified => "not_modified",
            FeedStatus::Failed => "failed",
            FeedStatus::RateLimited => "rate_limited",
        }
    }
}

impl std::fmt::Display for FeedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FeedStatus {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        Ok(match s {
            "ok" => FeedStatus::Ok,
            "not_modified" => FeedStatus::NotModified,
            "failed" => FeedStatus::Failed,
            "rate_limited" => FeedStatus::RateLimited,
            other => {
                return Err(crate::Error::invalid(format!(
                    "unknown feed status {other:?}"
                )))
            }
        })
    }
}

/// What one fetch of a feed gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedOutcome {
    /// A feed with this many entries.
    Fetched {
        /// Entries in the answer.
        articles: u64,
    },
    /// `304 Not Modified`.
    NotModified,
    /// A failure.
    Failed {
        /// One line on why (no secrets).
        error: String,
        /// Whether the feed said to slow down (`429`/`503`).
        rate_limited: bool,
        /// Its `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
}

/// A change between healthy and failing, worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedTransition {
    /// A healthy (or never fetched) feed failed.
    Failing,
    /// A failing feed answered again.
    Recovered,
}

/// The health of one feed, as `GET /news/feeds` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedHealth {
    /// The source's name (`Kitco`).
    pub name: String,
    /// Its category (`gold`).
    pub category: String,
    /// Its URL, without credentials or query secrets.
    pub url: String,
    /// When it was last asked.
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// How that ended.
    pub last_status: Option<FeedStatus>,
    /// Failures in a row (0 = healthy).
    pub consecutive_failures: u32,
    /// When it is asked next; `null` = at the next run of the news job.
    pub next_fetch_at: Option<DateTime<Utc>>,
    /// Entries it delivered in all.
    pub articles_total: u64,
    /// The last failure, one line; `null` once it answers again.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl FeedHealth {
    /// A feed never fetched.
    pub fn new(
        name: impl Into<String>,
        category: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        FeedHealth {
            name: name.into(),
            category: category.into(),
            url: url.into(),
            last_fetch_at: None,
            last_status: None,
            consecutive_failures: 0,
            next_fetch_at: None,
            articles_total: 0,
            last_error: None,
        }
    }

    /// Whether the feed is to be asked at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.next_fetch_at.is_none_or(|next| next <= now)
    }

    /// Whether its last answer was good (or it was never asked).
    pub fn is_healthy(&self) -> bool {
        self.consecutive_failures == 0
    }

    /// Take the outcome of a fetch at `now`: a good answer clears the failures and puts the
    /// feed back on the normal schedule; a failure waits `backoff`'s next delay (jittered with
    /// `random`), or the feed's `Retry-After` when that is longer (at most
    /// [`MAX_RETRY_AFTER`]). Returns the change between healthy and failing, if any.
    pub fn record(
        &mut self,
        outcome: &FeedOutcome,
        now: DateTime<Utc>,
        backoff: &Backoff,
        random: &dyn RandomSource,
    ) -> Option<FeedTransition> {
        let was_healthy = self.is_healthy();
        self.last_fetch_at = Some(now);
        match outcome {
            FeedOutcome::Fetched { articles } => {
                self.last_status = Some(FeedStatus::Ok);
                self.articles_total = self.articles_total.saturating_add(*articles);
            }
            FeedOutcome::NotModified => self.last_status = Some(FeedStatus::NotModified),
            FeedOutcome::Failed {
                error,
                rate_limited,
                retry_after,
            } => {
                self.last_status = Some(if *rate_limited {
                    FeedStatus::RateLimited
                } else {
                    FeedStatus::Failed
                });
                let retry_after = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
                let wait = backoff.delay_honouring(self.consecutive_failures, retry_after, random);
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.next_fetch_at = chrono::Duration::from_std(wait)
                    .ok()
                    .and_then(|w| now.checked_add_signed(w));
                self.last_error = Some(error.clone());
                return was_healthy.then_some(FeedTransition::Failing);
            }
        }
        self.consecutive_failures = 0;
        self.next_fetch_at = None;
        self.last_error = None;
        (!was_healthy).then_some(FeedTransition::Recovered)
    }
}

/// The configured feeds of a [`NewsSource`](crate::NewsSource) with their stored health, as
/// `GET /news/feeds` lists them.
#[derive(Clone)]
pub struct FeedDirectory {
    source: std::sync::Arc<dyn crate::NewsSource>,
    repo: std::sync::Arc<dyn crate::NewsRepository>,
}

impl std::fmt::Debug for FeedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedDirectory").finish_non_exhaustive()
    }
}

impl FeedDirectory {
    /// The feeds of `source`, their health read from `repo`.
    pub fn new(
        source: std::sync::Arc<dyn crate::NewsSource>,
        repo: std::sync::Arc<dyn crate::NewsRepository>,
    ) -> Self {
        FeedDirectory { source, repo }
    }

    /// Every configured feed in configured order, with its stored health (a feed never
    /// fetched yet is listed with no fetch; stored states of feeds no longer configured are
    /// left out).
    pub async fn list(&self) -> crate::Result<Vec<FeedHealth>> {
        let mut stored: std::collections::HashMap<String, FeedHealth> =
            self.repo.feed_states().await?.into_iter().collect();
        Ok(self
            .source
            .feeds()
            .into_iter()
            .map(|f| {
                let mut h = stored
                    .remove(&f.key)
                    .unwrap_or_else(|| FeedHealth::new(&f.name, &f.category, &f.url));
                h.name = f.name;
                h.category = f.category;
                h.url = f.url;
                h
            })
            .collect())
    }
}

/// The JSON body of `GET /news/feeds`: `{"feeds":[…]}`.
pub fn feeds_body(feeds: &[FeedHealth]) -> crate::Result<bytes::Bytes> {
    #[derive(Serialize)]
    struct Body<'a> {
        feeds: &'a [FeedHealth],
    }
    serde_json::to_vec(&Body { feeds })
        .map(bytes::Bytes::from)
        .map_err(|e| crate::Error::invalid(format!("feed list not serializable: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backoff::SeededRandom;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap()
    }

    fn down() -> FeedOutcome {
        FeedOutcome::Failed {
            error: "connection refused".into(),
            rate_limited: false,
            retry_after: None,
        }
    }

    #[test]
    fn a_feed_down_for_a_day_is_asked_about_log2_times_and_comes_back() {
        let random = SeededRandom::new(7);
        let mut feed = FeedHealth::new("Kitco", "gold", "https://kitco.example/rss");
        let mut asked = 0;
        let mut transitions = Vec::new();
        // the news job runs every 15 minutes for a day
        for run in 0..96 {
            let now = t0() + chrono::Duration::minutes(15 * run);
            if feed.is_due(now) {
                asked += 1;
                transitions.extend(feed.record(&down(), now, &FEED_BACKOFF, &random));
            }
        }
        assert!((5..=10).contains(&asked), "asked {asked} times in a day");
        assert_eq!(
            transitions,
            vec![FeedTransition::Failing],
            "one change, not one per attempt"
        );
        assert!(
            feed.next_fetch_at.is_some(),
            "never parked: it has a next fetch"
        );
        assert_eq!(feed.consecutive_failures, asked);
        let ceiling = feed.next_fetch_at.unwrap() - feed.last_fetch_at.unwrap();
        assert!(
            ceiling <= chrono::Duration::hours(6),
            "capped at 6 h: {ceiling}"
        );

        // it answers again: back on the normal schedule at once
        let now = feed.next_fetch_at.unwrap();
        let back = feed.record(
            &FeedOutcome::Fetched { articles: 12 },
            now,
            &FEED_BACKOFF,
            &random,
        );
        assert_eq!(back, Some(FeedTransition::Recovered));
        assert!(feed.is_healthy() && feed.is_due(now));
        assert_eq!((feed.articles_total, feed.last_error.clone()), (12, None));
        assert_eq!(feed.last_status, Some(FeedStatus::Ok));
    }

    #[test]
    fn retry_after_is_honoured_and_bounded() {
        let random = SeededRandom::new(1);
        let mut feed = FeedHealth::new("Kitco", "gold", "https://kitco.example/rss");
        let limited = |secs| FeedOutcome::Failed {
            error: "429 Too Many Requests".into(),
            rate_limited: true,
            retry_after: Some(Duration::from_secs(secs)),
        };
        feed.record(&limited(3 * 3600), t0(), &FEED_BACKOFF, &random);
        assert_eq!(feed.last_status, Some(FeedStatus::RateLimited));
        assert_eq!(feed.next_fetch_at, Some(t0() + chrono::Duration::hours(3)));
        assert!(!feed.is_due(t0() + chrono::Duration::minutes(179)));
        assert!(feed.is_due(t0() + chrono::Duration::hours(3)));
        feed.record(&limited(30 * 24 * 3600), t0(), &FEED_BACKOFF, &random);
        assert_eq!(
            feed.next_fetch_at,
            Some(t0() + chrono::Duration::hours(24)),
            "at most a day"
        );
        // a short Retry-After does not undercut the backoff
        feed.record(&limited(1), t0(), &FEED_BACKOFF, &random);
        assert!(feed.next_fetch_at.unwrap() - t0() >= chrono::Duration::minutes(30));
    }

    #[test]
    fn not_modified_is_healthy_and_statuses_round_trip() {
        let random = SeededRandom::new(1);
        let mut feed = FeedHealth::new("Kitco", "gold", "https://kitco.example/rss");
        assert_eq!(
            feed.record(&FeedOutcome::NotModified, t0(), &FEED_BACKOFF, &random),
            None
        );
        assert!(feed.is_healthy());
        for s in [
            FeedStatus::Ok,
            FeedStatus::NotModified,
            FeedStatus::Failed,
            FeedStatus::RateLimited,
        ] {
            assert_eq!(s.as_str().parse::<FeedStatus>().unwrap(), s);
        }
        let json = serde_json::to_value(&feed).unwrap();
        for key in [
            "name",
            "category",
            "url",
            "last_fetch_at",
            "last_status",
            "consecutive_failures",
            "next_fetch_at",
            "articles_total",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
    }
}
