//! Pure arithmetic of verification: the price change (guide: *The change and its rounding*) and the
//! user statistics (§6.6). Every adapter and the verifier job use these, so the rounding rules live
//! in one place.

use crate::condition::Vars;
use crate::model::UserStats;
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

/// `(verify − create) / create × 100`, rounded to 2 places **half to even** (§6.3:
/// 1.125 → 1.12, 1.135 → 1.14). `None` when `price_at_create <= 0` (the prediction then needs
/// review) or when the arithmetic overflows.
pub fn price_change_percent(price_at_create: Decimal, price_at_verify: Decimal) -> Option<Decimal> {
    // One implementation of the rounding: the one the conditions are evaluated with.
    Vars::new(price_at_create, price_at_verify).map(|v| v.price_change_percent)
}

/// `correct_count / total_participations × 100`, rounded to 2 places **half away from zero**
/// (as SQL `ROUND` does: 3.125 → 3.13), with two places like `NUMERIC(5,2)` (`100.00`).
/// Zero when there are no participations.
pub fn accuracy_rate(correct_count: i64, total_participations: i64) -> Decimal {
    if total_participations <= 0 {
        return ZERO_RATE;
    }
    let correct = Decimal::from(correct_count);
    let total = Decimal::from(total_participations);
    correct
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|c| c.checked_div(total))
        .map(|r| {
            let mut r = r.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            r.rescale(2);
            r
        })
        .unwrap_or(ZERO_RATE)
}

/// 0 with two places (`"0.00"`), as every other rate is written.
const ZERO_RATE: Decimal = Decimal::from_parts(0, 0, 0, false, 2);

/// Apply one verified vote to a user's statistics (§6.6):
/// `total_participations += 1`; correct → `correct_count += 1`, `current_streak += 1`,
/// `max_streak = max(max_streak, current_streak)`; wrong → `current_streak = 0`; then
/// `accuracy_rate` is recomputed and `updated_at = now`.
pub fn apply_result(stats: &mut UserStats, correct: bool, now: DateTime<Utc>) {
    stats.total_participations = stats.total_participations.saturating_add(1);
    if correct {
        stats.correct_count = stats.correct_count.saturating_add(1);
        stats.current_streak = stats.current_streak.saturating_add(1);
        stats.max_streak = stats.max_streak.max(stats.current_streak);
    } else {
        stats.current_streak = 0;
    }
    stats.accuracy_rate = accuracy_rate(stats.correct_count, stats.total_participations);
    stats.updated_at = now;
}

/// A user's statistics rebuilt from all of the user's verified results, in `verify_time`
/// order (§6.7: corrections, voids, `recompute-stats`): [`apply_result`] for each, from zero.
/// No results → zeros.
pub fn stats_from_results(
    user_id: impl Into<String>,
    results: impl IntoIterator<Item = bool>,
    now: DateTime<Utc>,
) -> UserStats {
    let mut stats = UserStats::empty(user_id, now);
    for correct in results {
        apply_result(&mut stats, correct, now);
    }
    stats.updated_at = now;
    stats
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn percent_rounds_half_to_even() {
        // 1.125 → 1.12, 1.135 → 1.14 (the examples of §6.3).
        assert_eq!(
            price_change_percent(d("1000"), d("1011.25")),
            Some(d("1.12"))
        );
        assert_eq!(
            price_change_percent(d("1000"), d("1011.35")),
            Some(d("1.14"))
        );
        assert_eq!(
            price_change_percent(d("1000"), d("988.75")),
            Some(d("-1.12"))
        );
        assert_eq!(
            price_change_percent(d("1000"), d("988.65")),
            Some(d("-1.14"))
        );
        assert_eq!(price_change_percent(d("2650"), d("2680")), Some(d("1.13")));
        assert_eq!(
            price_change_percent(d("2650"), d("2650")).map(|p| p.to_string()),
            Some("0.00".to_owned())
        );
        // 1/3 % is not a tie: 0.333.. → 0.33
        assert_eq!(price_change_percent(d("300"), d("301")), Some(d("0.33")));
    }

    #[test]
    fn percent_needs_positive_create_price() {
        assert_eq!(price_change_percent(Decimal::ZERO, d("1")), None);
        assert_eq!(price_change_percent(d("-1"), d("1")), None);
    }

    #[test]
    fn accuracy_rounds_half_away_from_zero() {
        assert_eq!(accuracy_rate(1, 32), d("3.13")); // 3.125
        assert_eq!(accuracy_rate(1, 3), d("33.33"));
        assert_eq!(accuracy_rate(2, 3), d("66.67"));
        assert_eq!(accuracy_rate(1, 8), d("12.50")); // 12.5 exactly
        assert_eq!(accuracy_rate(3, 3).to_string(), "100.00");
        assert_eq!(accuracy_rate(1, 2).to_string(), "50.00");
        assert_eq!(accuracy_rate(0, 0), Decimal::ZERO);
        assert_eq!(accuracy_rate(0, 0).to_string(), "0.00");
        assert_eq!(accuracy_rate(0, 5).to_string(), "0.00");
        assert_eq!(accuracy_rate(5, 5).to_string(), "100.00");
        assert_eq!(accuracy_rate(0, 5), Decimal::ZERO);
    }

    #[test]
    fn stats_from_results_start_from_zero() {
        let s = stats_from_results("u", [true, true, false, true], t0());
        assert_eq!(
            (
                s.total_participations,
                s.correct_count,
                s.current_streak,
                s.max_streak
            ),
            (4, 3, 1, 2)
        );
        assert_eq!(s.accuracy_rate, d("75"));
        let z = stats_from_results("u", [], t0());
        assert_eq!((z.total_participations, z.max_streak), (0, 0));
        assert_eq!(z.accuracy_rate, Decimal::ZERO);
    }

    #[test]
    fn apply_result_follows_the_rules() {
        let mut s = UserStats::empty("u1", t0());
        let later = t0() + chrono::Duration::seconds(5);
        apply_result(&mut s, true, later);
        assert_eq!(
            (
                s.total_participations,
                s.correct_count,
                s.current_streak,
                s.max_streak
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(s.accuracy_rate, d("100"));
        assert_eq!(s.updated_at, later);
        apply_result(&mut s, true, later);
        apply_result(&mut s, false, later);
        assert_eq!(
            (
                s.total_participations,
                s.correct_count,
                s.current_streak,
                s.max_streak
            ),
            (3, 2, 0, 2)
        );
        assert_eq!(s.accuracy_rate, d("66.67"));
        apply_result(&mut s, true, later);
        assert_eq!((s.current_streak, s.max_streak), (1, 2));
        assert_eq!(s.accuracy_rate, d("75"));
    }

    proptest! {
        #[test]
        fn invariants_hold_for_any_sequence(results in proptest::collection::vec(any::<bool>(), 0..200)) {
            let mut s = UserStats::empty("u", t0());
            let mut longest = 0i64;
            let mut run = 0i64;
            for (i, &r) in results.iter().enumerate() {
                apply_result(&mut s, r, t0());
                if r { run += 1; longest = longest.max(run); } else { run = 0; }
                prop_assert!(s.correct_count <= s.total_participations);
                prop_assert!(s.current_streak <= s.max_streak);
                prop_assert_eq!(s.total_participations, i as i64 + 1);
                prop_assert!(s.accuracy_rate >= Decimal::ZERO && s.accuracy_rate <= Decimal::ONE_HUNDRED);
            }
            let correct = results.iter().filter(|&&r| r).count() as i64;
            prop_assert_eq!(s.correct_count, correct);
            prop_assert_eq!(s.current_streak, run);
            prop_assert_eq!(s.max_streak, longest);
            prop_assert_eq!(s.accuracy_rate, accuracy_rate(correct, results.len() as i64));
            // An independent recomputation: round half away from zero by hand on ten-thousandths.
            if !results.is_empty() {
                let n = results.len() as i64;
                // accuracy × 100 as an integer of hundredths, half up (values are non-negative).
                let hundredths = (correct * 10_000 * 2 + n) / (2 * n);
                prop_assert_eq!(s.accuracy_rate, Decimal::new(hundredths, 2));
            }
        }

        #[test]
        fn percent_matches_integer_recomputation(create in 1i64..10_000_000, verify in 0i64..20_000_000) {
            // Prices with two decimals: create/100, verify/100.
            let p = price_change_percent(Decimal::new(create, 2), Decimal::new(verify, 2)).unwrap();
            // (v − c) × 100 / c in hundredths, i.e. (v − c) × 10_000 / c, rounded half to even.
            let num = (verify - create) as i128 * 10_000;
            let den = create as i128;
            let q = num.div_euclid(den);
            let r = num.rem_euclid(den);
            let twice = 2 * r;
            let rounded = if twice > den || (twice == den && q % 2 != 0) { q + 1 } else { q };
            prop_assert_eq!(p, Decimal::from_i128_with_scale(rounded, 2));
        }
    }
}
