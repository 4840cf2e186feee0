//! The values a condition is evaluated against.

use rust_decimal::{Decimal, RoundingStrategy};

/// The variables of the condition language (guide: *The change and its rounding*; *The condition
/// language*).
///
/// Build it with [`Vars::new`], which applies the contract's rounding; the fields are public so
/// that tests and the validator can set any values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vars {
    /// `(price_at_verify − price_at_create) / price_at_create × 100`, rounded to 2 places half
    /// to even.
    pub price_change_percent: Decimal,
    /// The price when the prediction was created.
    pub price_at_create: Decimal,
    /// The price at verification time.
    pub price_at_verify: Decimal,
    /// `price_at_verify − price_at_create` (not rounded).
    pub price_change: Decimal,
}

impl Vars {
    /// Computes the variables from the two prices: `price_change = verify − create` and
    /// `price_change_percent = (verify − create) / create × 100` rounded to 2 places, half to
    /// even (1.125 → 1.12, 1.135 → 1.14), always printed with two places (`0.00`).
    ///
    /// `None` when `price_at_create <= 0` (guide: *The change and its rounding*: the prediction
    /// needs review) or when the arithmetic overflows `Decimal` (not possible with real prices).
    /// `price_at_verify` is not checked: a price is never negative, so real changes are at
    /// least −100.00 %, which is what [`validate`](super::validate) assumes.
    pub fn new(price_at_create: Decimal, price_at_verify: Decimal) -> Option<Vars> {
        if price_at_create <= Decimal::ZERO {
            return None;
        }
        let price_change = price_at_verify.checked_sub(price_at_create)?;
        let price_change_percent = percent_half_even(price_change, price_at_create)?;
        Some(Vars {
            price_change_percent,
            price_at_create,
            price_at_verify,
            price_change,
        })
    }
}

/// `change × 100 / create` rounded to 2 places half to even, exactly.
///
/// `Decimal` division rounds to 28 significant digits, which could in theory push a quotient
/// that lies a hair off a midpoint (…5) onto it, so the midpoint case is decided by exact
/// multiplication instead: with `lo` the quotient floored to 0.01, the result is `lo` or
/// `lo + 0.01` depending on how `change × 100` compares with `(lo + 0.005) × create`.
fn percent_half_even(change: Decimal, create: Decimal) -> Option<Decimal> {
    let cent = Decimal::new(1, 2);
    let half_cent = Decimal::new(5, 3);
    let numerator = change.checked_mul(Decimal::ONE_HUNDRED)?;
    let quotient = numerator.checked_div(create)?;
    let mut lo = quotient.round_dp_with_strategy(2, RoundingStrategy::ToNegativeInfinity);
    lo.rescale(2);
    let hi = lo.checked_add(cent)?;
    let mid = lo.checked_add(half_cent)?;
    let mut rounded = match mid.checked_mul(create) {
        Some(mid_times_create) => match numerator.cmp(&mid_times_create) {
            std::cmp::Ordering::Less => lo,
            std::cmp::Ordering::Greater => hi,
            std::cmp::Ordering::Equal if lo.mantissa() % 2 == 0 => lo,
            std::cmp::Ordering::Equal => hi,
        },
        None => quotient.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven),
    };
    rounded.rescale(2);
    Some(rounded)
}
