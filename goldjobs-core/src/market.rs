//! The rules a price from a market data provider must pass before it becomes a quote, a tick or
//! the price of a verdict — in one place, so that every provider (and every custom
//! [`MarketData`](crate::MarketData) implementation) is held to the same ones.
//!
//! * [`validate_price`]: a price is strictly positive (`0`, `-0` and negatives are refused).
//! * [`validate_quote`]: its price passes [`validate_price`] and its timestamp lies within
//!   `[now − MAX_QUOTE_AGE, now + MAX_QUOTE_LEAD]` (one day back, one minute ahead for clock
//!   skew): an older quote would be recorded as a tick far from its instant's neighbours, a
//!   later one is misdated. The [`PriceFetcherJob`](crate::jobs::PriceFetcherJob) applies it to
//!   every quote of every provider; a quote that fails goes to the run's failures (that symbol
//!   keeps its last value) and is never cached, recorded or published.
//! * [`validate_price_point`]: a historical price answering
//!   [`MarketData::price_at`](crate::MarketData::price_at)`(symbol, at)` is positive and its
//!   instant lies within `[at, at + HISTORY_WINDOW]` (guide: *How the price at verify time is
//!   chosen*: the first price at or after `at`, none within one minute → no price). The verifier
//!   treats a point that fails as no price at all.
//!
//! Each rule answers [`Error::InvalidInput`] (permanent) with one line naming the symbol, the
//! value and what is allowed.

use crate::model::{PricePoint, Quote};
use crate::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

/// How old a quote's timestamp may be: one day.
pub const MAX_QUOTE_AGE: Duration = Duration::days(1);

/// How far ahead of `now` a quote's timestamp may be (clock skew): one minute.
pub const MAX_QUOTE_LEAD: Duration = Duration::minutes(1);

/// How long after the asked instant a historical price may start (guide: *How the price at verify
/// time is chosen*): one minute.
pub const HISTORY_WINDOW: Duration = Duration::minutes(1);

/// A price of `symbol_code` is acceptable: strictly positive.
pub fn validate_price(symbol_code: &str, price: Decimal) -> Result<()> {
    if price > Decimal::ZERO {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{symbol_code}: price {price} is not positive (a price must be > 0)"
        )))
    }
}

/// A quote is acceptable at `now`: [`validate_price`], and its timestamp within
/// `[now − MAX_QUOTE_AGE, now + MAX_QUOTE_LEAD]`.
pub fn validate_quote(quote: &Quote, now: DateTime<Utc>) -> Result<()> {
    validate_price(&quote.symbol_code, quote.price)?;
    let earliest = now.checked_sub_signed(MAX_QUOTE_AGE);
    let latest = now.checked_add_signed(MAX_QUOTE_LEAD);
    let too_old = earliest.is_some_and(|e| quote.timestamp < e);
    let too_new = latest.is_some_and(|l| quote.timestamp > l);
    if too_old || too_new {
        return Err(Error::invalid(format!(
            "{}: quote timestamp {} is {} (now {now}; allowed: at most one day old and at \
             most one minute ahead)",
            quote.symbol_code,
            quote.timestamp.to_rfc3339(),
            if too_old { "too old" } else { "in the future" },
        )));
    }
    Ok(())
}

/// A historical price of `symbol_code` answering "the first price at or after `at`" is
/// acceptable: [`validate_price`], and its instant within `[at, at + HISTORY_WINDOW]`.
pub fn validate_price_point(
    symbol_code: &str,
    at: DateTime<Utc>,
    point: &PricePoint,
) -> Result<()> {
    validate_price(symbol_code, point.price)?;
    let latest = at.checked_add_signed(HISTORY_WINDOW);
    if point.ts < at || latest.is_some_and(|l| point.ts > l) {
        return Err(Error::invalid(format!(
            "{symbol_code}: historical price at {} does not answer {} (allowed: the first price \
             at or after it, at most one minute later)",
            point.ts.to_rfc3339(),
            at.to_rfc3339()
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap()
    }

    fn quote(price: &str, ts: DateTime<Utc>) -> Quote {
        Quote {
            symbol_code: "XAUUSD".into(),
            price: Decimal::from_str(price).unwrap(),
            change: Decimal::ZERO,
            change_percent: Decimal::ZERO,
            timestamp: ts,
            source: Some("mock".into()),
        }
    }

    fn point(price: &str, ts: DateTime<Utc>) -> PricePoint {
        PricePoint {
            price: Decimal::from_str(price).unwrap(),
            ts,
            source: None,
        }
    }

    #[test]
    fn a_price_must_be_positive() {
        assert!(validate_price(
            "X",
            Decimal::from_str("0.0000000000000000000000000001").unwrap()
        )
        .is_ok());
        assert!(validate_price("X", Decimal::MAX).is_ok());
        for bad in [
            "0",
            "-0",
            "0.000",
            "-0.01",
            "-79228162514264337593543950335",
        ] {
            let err = validate_price("XAUUSD", Decimal::from_str(bad).unwrap()).unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{bad}: {err:?}");
            assert!(!err.is_temporary());
            let line = err.to_string();
            assert!(line.contains("XAUUSD") && line.contains("> 0"), "{line}");
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn a_quote_is_at_most_one_day_old_and_one_minute_ahead() {
        let n = now();
        for ok in [
            n,
            n - Duration::days(1),
            n + Duration::minutes(1),
            n - Duration::hours(3),
        ] {
            assert!(validate_quote(&quote("2658.5", ok), n).is_ok(), "{ok}");
        }
        let old = validate_quote(
            &quote("2658.5", n - Duration::days(1) - Duration::seconds(1)),
            n,
        )
        .unwrap_err();
        assert!(old.to_string().contains("too old"), "{old}");
        let ahead = validate_quote(&quote("2658.5", n + Duration::seconds(61)), n).unwrap_err();
        assert!(ahead.to_string().contains("in the future"), "{ahead}");
        let epoch = validate_quote(&quote("2658.5", DateTime::<Utc>::UNIX_EPOCH), n).unwrap_err();
        assert!(matches!(epoch, Error::InvalidInput(_)));
        // The price rule first.
        let zero = validate_quote(&quote("-0", n), n).unwrap_err();
        assert!(zero.to_string().contains("not positive"), "{zero}");
        // Extreme clocks do not panic.
        assert!(validate_quote(
            &quote("1", DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC
        )
        .is_ok());
        assert!(validate_quote(
            &quote("1", DateTime::<Utc>::MIN_UTC),
            DateTime::<Utc>::MIN_UTC
        )
        .is_ok());
        assert!(validate_quote(
            &quote("1", DateTime::<Utc>::MIN_UTC),
            DateTime::<Utc>::MAX_UTC
        )
        .is_err());
    }

    #[test]
    fn a_historical_price_starts_at_or_within_one_minute_after_at() {
        let at = now() + Duration::seconds(30);
        for ok in [at, at + Duration::seconds(30), at + Duration::seconds(60)] {
            assert!(
                validate_price_point("XAUUSD", at, &point("2650", ok)).is_ok(),
                "{ok}"
            );
        }
        for bad in [at - Duration::seconds(1), at + Duration::seconds(61)] {
            let err = validate_price_point("XAUUSD", at, &point("2650", bad)).unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
            assert!(err.to_string().contains("at or after"), "{err}");
        }
        assert!(validate_price_point("XAUUSD", at, &point("0", at)).is_err());
        assert!(validate_price_point(
            "XAUUSD",
            DateTime::<Utc>::MAX_UTC,
            &point("1", DateTime::<Utc>::MAX_UTC)
        )
        .is_ok());
    }
}
