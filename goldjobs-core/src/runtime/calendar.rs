//! Calendar schedules: cron expressions evaluated in a time zone, DST-correct.
//!
//! Parsing and matching are [croner]'s; the zone rules are [chrono_tz]'s (the IANA database).
//! What this module adds is the mapping from the wall-clock times a pattern names to instants,
//! around daylight-saving transitions:
//!
//! * a wall-clock time skipped by a spring-forward transition (02:30 when clocks jump from
//!   02:00 to 03:00) runs once, at the first valid instant after the gap (03:00);
//! * a wall-clock time that happens twice at a fall-back transition runs once, at its first
//!   occurrence; so in the repeated hour a frequent pattern (`*/15 * * * *`) does not run
//!   again for the times it already ran — it waits until the wall clock passes them.

use crate::{Error, Result};
use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// How far ahead a next occurrence is looked for before the pattern counts as never matching
/// (e.g. `0 0 30 2 *`, February 30th).
const SEARCH_YEARS: i32 = 5;

/// A cron expression in a time zone.
///
/// ```
/// use goldjobs_core::runtime::CronSchedule;
/// use chrono::{TimeZone, Utc};
/// let s = CronSchedule::parse("30 2 * * *", "America/New_York").unwrap();
/// // 2026-03-08 is the spring-forward day in New York: 02:30 does not exist, the job runs at 03:00
/// let after = Utc.with_ymd_and_hms(2026, 3, 8, 5, 0, 0).unwrap(); // 00:00 EST
/// assert_eq!(s.next_after(after), Some(Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).unwrap()));
/// ```
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    zone: Tz,
    /// Shared: the parsed pattern is large and never changes.
    cron: std::sync::Arc<Cron>,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.zone == other.zone
    }
}

impl Eq for CronSchedule {}

impl CronSchedule {
    /// Parse `expression` (5 fields `minute hour day-of-month month day-of-week`, or 6 with
    /// seconds first; names like `Mon-Fri` and `Jan` allowed) to be evaluated in the IANA zone
    /// `zone` (e.g. `Europe/Zurich`, `UTC`). Errors are [`Error::InvalidInput`] naming what is
    /// wrong.
    pub fn parse(expression: &str, zone: &str) -> Result<Self> {
        let zone = parse_zone(zone)?;
        let expression = expression.trim();
        let fields = expression.split_whitespace().count();
        if !expression.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(Error::invalid(format!(
                "cron expression {expression:?} has {fields} fields; expected 5 \
                 (minute hour day month weekday) or 6 (seconds first)"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| Error::invalid(format!("cron expression {expression:?}: {e}")))?;
        let schedule = CronSchedule {
            expression: expression.to_owned(),
            zone,
            cron: std::sync::Arc::new(cron),
        };
        // A pattern that names no real date (`0 0 30 2 *`) is refused now rather than at run time.
        let probe = Utc::now();
        if schedule.next_after(probe).is_none() {
            return Err(Error::invalid(format!(
                "cron expression {expression:?} matches no time in the next {SEARCH_YEARS} years"
            )));
        }
        Ok(schedule)
    }

    /// The expression as written (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone it is evaluated in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first instant strictly after `after` at which the schedule fires, `None` when the
    /// pattern matches nothing in the next five years.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let limit = after.naive_utc().checked_add_months(chrono::Months::new(
            u32::try_from(SEARCH_YEARS * 12).unwrap_or(60),
        ))?;
        // Walk the wall-clock times the pattern names, from the wall-clock time of `after`.
        // Whole seconds: the pattern's resolution (croner would carry the fraction along).
        let mut wall = after.with_timezone(&self.zone).naive_local();
        wall = wall.with_nanosecond(0)?;
        loop {
            wall = self.next_wall(wall)?;
            if wall > limit {
                return None;
            }
            let at = match self.zone.from_local_datetime(&wall) {
                LocalResult::Single(t) => t,
                // fall-back: the first occurrence
                LocalResult::Ambiguous(first, _) => first,
                // spring-forward: the first valid instant after the gap
                LocalResult::None => self.end_of_gap(wall)?,
            };
            let at = at.with_timezone(&Utc);
            if at > after {
                return Some(at);
            }
        }
    }

    /// The next wall-clock time strictly after `wall` that the pattern names.
    fn next_wall(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        // Evaluated on naive wall-clock time: UTC has no transitions, so croner steps through
        // the wall clock itself.
        let as_utc = Utc.from_utc_datetime(&wall);
        self.cron
            .find_next_occurrence(&as_utc, false)
            .ok()
            .map(|t| t.naive_utc())
    }

    /// The first instant after the spring-forward gap that contains `wall`.
    fn end_of_gap(&self, wall: NaiveDateTime) -> Option<DateTime<Tz>> {
        // Gaps are whole minutes long (at most a few hours): step to the first minute that exists.
        let mut probe = wall.with_second(0)?.with_nanosecond(0)?;
        for _ in 0..(24 * 60) {
            probe += chrono::Duration::minutes(1);
            match self.zone.from_local_datetime(&probe) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return Some(t),
                LocalResult::None => {}
            }
        }
        None
    }
}

/// An IANA zone name (`UTC`, `Europe/Zurich`, `America/New_York`).
pub fn parse_zone(zone: &str) -> Result<Tz> {
    zone.trim().parse::<Tz>().map_err(|_| {
        Error::invalid(format!(
            "unknown time zone {zone:?}; expected an IANA name such as UTC or Europe/Zurich"
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Every firing in `[from, until)`.
    fn firings(s: &CronSchedule, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = from;
        while let Some(next) = s.next_after(t) {
            if next >= until {
                break;
            }
            out.push(next);
            t = next;
        }
        out
    }

    #[test]
    fn daily_0230_new_york_spring_forward_runs_once_at_0300() {
        // 2026-03-08: 02:00 EST → 03:00 EDT
        let s = CronSchedule::parse("30 2 * * *", "America/New_York").unwrap();
        let got = firings(&s, utc(2026, 3, 7, 0, 0), utc(2026, 3, 10, 0, 0));
        assert_eq!(
            got,
            [
                utc(2026, 3, 7, 7, 30), // 02:30 EST
                utc(2026, 3, 8, 7, 0),  // 03:00 EDT, the first valid instant
                utc(2026, 3, 9, 6, 30), // 02:30 EDT
            ]
        );
    }

    #[test]
    fn daily_0130_new_york_fall_back_runs_once() {
        // 2026-11-01: 02:00 EDT → 01:00 EST, so 01:30 happens twice
        let s = CronSchedule::parse("30 1 * * *", "America/New_York").unwrap();
        let got = firings(&s, utc(2026, 10, 31, 0, 0), utc(2026, 11, 3, 0, 0));
        assert_eq!(
            got,
            [
                utc(2026, 10, 31, 5, 30), // 01:30 EDT
                utc(2026, 11, 1, 5, 30),  // 01:30 EDT, first of the two
                utc(2026, 11, 2, 6, 30),  // 01:30 EST
            ]
        );
    }

    #[test]
    fn daily_0230_zurich_both_transitions() {
        // 2026-03-29: 02:00 CET → 03:00 CEST (02:30 skipped)
        let s = CronSchedule::parse("30 2 * * *", "Europe/Zurich").unwrap();
        let spring = firings(&s, utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 12, 0));
        assert_eq!(spring, [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]);
        // 2026-10-25: 03:00 CEST → 02:00 CET (02:30 twice)
        let fall = firings(&s, utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 12, 0));
        assert_eq!(fall, [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]);
    }

    #[test]
    fn every_quarter_hour_across_both_zurich_transitions() {
        let s = CronSchedule::parse("*/15 * * * *", "Europe/Zurich").unwrap();
        // spring: 01:45 CET, then the gap 02:00–02:59 collapses into 03:00 CEST, once
        let spring = firings(&s, utc(2026, 3, 29, 0, 40), utc(2026, 3, 29, 1, 31));
        assert_eq!(
            spring,
            [
                utc(2026, 3, 29, 0, 45), // 01:45 CET
                utc(2026, 3, 29, 1, 0),  // 03:00 CEST
                utc(2026, 3, 29, 1, 15),
                utc(2026, 3, 29, 1, 30),
            ]
        );
        // fall: the repeated hour 02:00–02:59 runs on its first pass only
        let fall = firings(&s, utc(2026, 10, 24, 23, 50), utc(2026, 10, 25, 2, 1));
        assert_eq!(
            fall,
            [
                utc(2026, 10, 25, 0, 0), // 02:00 CEST
                utc(2026, 10, 25, 0, 15),
                utc(2026, 10, 25, 0, 30),
                utc(2026, 10, 25, 0, 45),
                utc(2026, 10, 25, 2, 0), // 03:00 CET, after the repeated hour
            ]
        );
    }

    #[test]
    fn six_fields_with_seconds_and_weekday_ranges() {
        let s = CronSchedule::parse("0 */15 6-22 * * Mon-Fri", "UTC").unwrap();
        // Friday 2026-12-04 22:50 → Monday 06:00
        assert_eq!(
            s.next_after(utc(2026, 12, 4, 22, 50)),
            Some(utc(2026, 12, 7, 6, 0))
        );
        let secs = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
        let t = utc(2026, 12, 4, 0, 0);
        assert_eq!(secs.next_after(t), Some(t + chrono::Duration::seconds(10)));
        // an instant with a fraction of a second: the next instant is still whole
        let frac = t + chrono::Duration::milliseconds(203);
        assert_eq!(
            secs.next_after(frac),
            Some(t + chrono::Duration::seconds(10))
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_the_reason() {
        for (expr, zone, needle) in [
            ("* * * *", "UTC", "4 fields"),
            ("* * * * * * 2030", "UTC", "7 fields"),
            ("61 * * * *", "UTC", "cron expression"),
            ("0 0 30 2 *", "UTC", "matches no time"),
            ("* * * * *", "Mars/Olympus", "unknown time zone"),
        ] {
            let e = CronSchedule::parse(expr, zone).unwrap_err().to_string();
            assert!(e.contains(needle), "{expr} {zone}: {e}");
        }
    }
}
