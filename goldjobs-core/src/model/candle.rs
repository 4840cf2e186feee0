//! Candles (open, high, low, close) of recorded ticks: `GET /quotes/{symbol}/candles`
//! (guide: *HTTP API*).

use crate::{Error, Result};
use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// At most this many candles in one answer; a longer range is refused (`400`).
pub const MAX_CANDLES: i64 = 1000;
/// Candles in the default range (the last this many intervals, the current one included).
pub const DEFAULT_CANDLES: i64 = 100;

/// The width of a candle, aligned to UTC boundaries (a `1h` candle starts on the hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CandleInterval {
    /// One minute (`1m`).
    #[serde(rename = "1m")]
    OneMinute,
    /// Five minutes (`5m`).
    #[serde(rename = "5m")]
    FiveMinutes,
    /// Fifteen minutes (`15m`).
    #[serde(rename = "15m")]
    FifteenMinutes,
    /// One hour (`1h`).
    #[serde(rename = "1h")]
    OneHour,
    /// One UTC day (`1d`).
    #[serde(rename = "1d")]
    OneDay,
}

impl CandleInterval {
    /// Every interval, shortest first.
    pub const ALL: [CandleInterval; 5] = [
        CandleInterval::OneMinute,
        CandleInterval::FiveMinutes,
        CandleInterval::FifteenMinutes,
        CandleInterval::OneHour,
        CandleInterval::OneDay,
    ];

    /// The interval in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            CandleInterval::OneMinute => 60,
            CandleInterval::FiveMinutes => 300,
            CandleInterval::FifteenMinutes => 900,
            CandleInterval::OneHour => 3600,
            CandleInterval::OneDay => 86_400,
        }
    }

    /// Its wire name: `1m`, `5m`, `15m`, `1h`, `1d`.
    pub fn as_str(self) -> &'static str {
        match self {
            CandleInterval::OneMinute => "1m",
            CandleInterval::FiveMinutes => "5m",
            CandleInterval::FifteenMinutes => "15m",
            CandleInterval::OneHour => "1h",
            CandleInterval::OneDay => "1d",
        }
    }

    /// The start of the candle that holds `t` (UTC boundaries since the Unix epoch).
    pub fn align(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let secs = t.timestamp().div_euclid(self.seconds()) * self.seconds();
        DateTime::from_timestamp(secs, 0).unwrap_or(t)
    }
}

impl fmt::Display for CandleInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CandleInterval {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        CandleInterval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "unknown candle interval {s:?}: expected one of 1m, 5m, 15m, 1h, 1d"
                ))
            })
    }
}

/// Which candles to compute: the ticks of `symbol_code` with `from <= ts < to`, grouped by
/// `interval`. Built by [`CandleQuery::new`], which checks the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandleQuery {
    /// Symbol code.
    pub symbol_code: String,
    /// Candle width.
    pub interval: CandleInterval,
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Exclusive end.
    pub to: DateTime<Utc>,
}

impl CandleQuery {
    /// A checked query. Without `to` the range ends `now`; without `from` it starts
    /// [`DEFAULT_CANDLES`] − 1 intervals before the interval that holds `to` (so it covers the
    /// last [`DEFAULT_CANDLES`] intervals). `from` must be before `to`, and the range may touch
    /// at most [`MAX_CANDLES`] intervals.
    pub fn new(
        symbol_code: impl Into<String>,
        interval: CandleInterval,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let to = to.unwrap_or(now);
        let from = match from {
            Some(from) => from,
            None => interval
                .align(to)
                .checked_sub_signed(TimeDelta::seconds(
                    interval.seconds() * (DEFAULT_CANDLES - 1),
                ))
                .ok_or_else(|| Error::InvalidInput("`to` is out of range".to_owned()))?,
        };
        if from >= to {
            return Err(Error::InvalidInput(format!(
                "`from` ({}) must be before `to` ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        let query = CandleQuery {
            symbol_code: symbol_code.into(),
            interval,
            from,
            to,
        };
        let n = query.intervals();
        if n > MAX_CANDLES {
            return Err(Error::InvalidInput(format!(
                "the range spans {n} {interval} intervals; at most {MAX_CANDLES} per request"
            )));
        }
        Ok(query)
    }

    /// How many intervals the range touches (the candles it can hold at most).
    pub fn intervals(&self) -> i64 {
        let first = self.interval.align(self.from);
        let span = (self.to - first).num_seconds();
        let secs = self.interval.seconds();
        // Ceiling division; `to` may fall inside an interval (sub-second ends count it).
        let whole = span.div_euclid(secs);
        let partial = span.rem_euclid(secs) > 0 || (self.to - first) > TimeDelta::seconds(span);
        whole + i64::from(partial)
    }
}

/// One candle: the ticks of one interval, `t` its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    /// Start of the interval (UTC boundary).
    pub t: DateTime<Utc>,
    /// Price of the first tick in the interval.
    pub open: Decimal,
    /// Highest price.
    pub high: Decimal,
    /// Lowest price.
    pub low: Decimal,
    /// Price of the last tick in the interval.
    pub close: Decimal,
    /// How many ticks the interval holds.
    pub ticks: u64,
}

/// Candles of ticks given oldest first (equal instants in insertion order), as `(ts, price)`;
/// empty intervals are omitted. The reference that the SQL adapters' set-based queries match.
pub fn candles_from_ticks(
    interval: CandleInterval,
    ticks: impl IntoIterator<Item = (DateTime<Utc>, Decimal)>,
) -> Vec<Candle> {
    let mut out: Vec<Candle> = Vec::new();
    for (ts, price) in ticks {
        let t = interval.align(ts);
        match out.last_mut() {
            Some(c) if c.t == t => {
                c.high = c.high.max(price);
                c.low = c.low.min(price);
                c.close = price;
                c.ticks += 1;
            }
            _ => out.push(Candle {
                t,
                open: price,
                high: price,
                low: price,
                close: price,
                ticks: 1,
            }),
        }
    }
    debug_assert!(out.windows(2).all(|w| w[0].t < w[1].t));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn intervals_parse_and_align_to_utc_boundaries() {
        for i in CandleInterval::ALL {
            assert_eq!(i.as_str().parse::<CandleInterval>().unwrap(), i);
        }
        assert!("2m".parse::<CandleInterval>().is_err());
        let t = at("2026-12-06T10:37:42.5Z");
        assert_eq!(
            CandleInterval::FifteenMinutes.align(t),
            at("2026-12-06T10:30:00Z")
        );
        assert_eq!(CandleInterval::OneDay.align(t), at("2026-12-06T00:00:00Z"));
        // Before the epoch too.
        assert_eq!(
            CandleInterval::OneHour.align(at("1969-12-31T23:59:59Z")),
            at("1969-12-31T23:00:00Z")
        );
    }

    #[test]
    fn default_range_is_the_last_hundred_intervals() {
        let now = at("2026-12-06T10:37:42Z");
        let q = CandleQuery::new("XAUUSD", CandleInterval::OneMinute, None, None, now).unwrap();
        assert_eq!(q.to, now);
        assert_eq!(q.from, at("2026-12-06T08:58:00Z"));
        assert_eq!(q.intervals(), DEFAULT_CANDLES);
    }

    #[test]
    fn ranges_are_checked() {
        let now = at("2026-12-06T10:00:00Z");
        let m = CandleInterval::OneMinute;
        let from = at("2026-12-06T09:00:00Z");
        assert!(CandleQuery::new("X", m, Some(now), Some(from), now).is_err());
        assert!(CandleQuery::new("X", m, Some(now), Some(now), now).is_err());
        // Exactly 1,000 one-minute intervals is fine, one more second is not.
        let to = from + TimeDelta::minutes(1000);
        assert_eq!(
            CandleQuery::new("X", m, Some(from), Some(to), now)
                .unwrap()
                .intervals(),
            1000
        );
        let err = CandleQuery::new("X", m, Some(from), Some(to + TimeDelta::seconds(1)), now)
            .unwrap_err();
        assert!(err.to_string().contains("at most 1000"), "{err}");
        // A sub-second overhang counts as one more interval.
        let over = to + TimeDelta::milliseconds(1);
        assert!(CandleQuery::new("X", m, Some(from), Some(over), now).is_err());
    }

    #[test]
    fn candles_group_ticks_and_omit_empty_intervals() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let ticks = [
            (at("2026-12-06T10:00:05Z"), d("2650.10")),
            (at("2026-12-06T10:00:30Z"), d("2651.5")),
            (at("2026-12-06T10:00:30Z"), d("2649.25")),
            (at("2026-12-06T10:00:59.999Z"), d("2650.00")),
            (at("2026-12-06T10:03:00Z"), d("2660")),
        ];
        let c = candles_from_ticks(CandleInterval::OneMinute, ticks);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].t, at("2026-12-06T10:00:00Z"));
        assert_eq!(
            (c[0].open, c[0].high, c[0].low, c[0].close, c[0].ticks),
            (d("2650.10"), d("2651.5"), d("2649.25"), d("2650.00"), 4)
        );
        assert_eq!(c[1].t, at("2026-12-06T10:03:00Z"));
        assert_eq!(
            (c[1].open, c[1].close, c[1].ticks),
            (d("2660"), d("2660"), 1)
        );
    }
}
