//! Static checks of an `auto_verify_conditions` object for `check-conditions`.
//!
//! For conditions over `price_change_percent` alone (or over no variable), the analysis is
//! exact: the values that really occur are multiples of 0.01 at or above −100.00 (a price can
//! fall to 0 but not below), and the truth of every comparison `price_change_percent op c` is
//! constant on the grid values below `c`, at `c`, and above `c`. Evaluating every condition at
//! the grid points next to every constant (floored and ceiled to 0.01, and one step beyond) and
//! at −100.00 therefore visits every region where the truth of the conditions can differ; the
//! region above the largest constant is covered by the point after it.

use std::collections::HashSet;
use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};

use super::ast::{Condition, Operand, Var};
use super::parse::ConditionError;
use super::set::{raw_entries, ConditionSetError, RawValue};
use super::vars::Vars;

/// One problem found by [`validate`]. `Display` prints one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum Problem {
    /// The JSON itself is unusable: invalid, not an object, empty, a non-string value or a
    /// duplicate option.
    Invalid(ConditionSetError),
    /// An option's condition does not parse.
    Parse {
        /// The option.
        option: String,
        /// The error, with its byte position.
        error: ConditionError,
    },
    /// Two options are true at the same value. First-true-wins resolves it at run time (the
    /// earlier option wins), but it is usually a mistake in the conditions.
    Overlap {
        /// The earlier option (the one that wins).
        first: String,
        /// The later option.
        second: String,
        /// The smallest `price_change_percent` at which both are true.
        witness: Decimal,
    },
    /// No option is true at this value (and at the values next to it up to the next region
    /// where some option is true); such a prediction would need review.
    Gap {
        /// The smallest `price_change_percent` of the gap.
        witness: Decimal,
    },
    /// The condition reads other variables than `price_change_percent`, so it cannot be checked
    /// statically.
    Unchecked {
        /// The option.
        option: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Invalid(e) => write!(f, "{e}"),
            Problem::Parse { option, error } => write!(f, "option {option:?}: {error}"),
            Problem::Overlap {
                first,
                second,
                witness,
            } => write!(
                f,
                "overlap: options {first:?} and {second:?} are both true at \
                 price_change_percent = {witness} (the first, {first:?}, wins)"
            ),
            Problem::Gap { witness } => write!(
                f,
                "gap at price_change_percent = {witness}: no option is true"
            ),
            Problem::Unchecked { option, reason } => {
                write!(f, "option {option:?} not checked: {reason}")
            }
        }
    }
}

/// The result of [`validate`].
#[derive(Debug, Default)]
pub struct ValidationReport {
    /// Every problem found: JSON and parse problems first, then unchecked options, overlaps in
    /// option order, gaps from the lowest value up.
    pub problems: Vec<Problem>,
}

impl ValidationReport {
    /// `true` when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for ValidationReport {
    /// `ok`, or one line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            return f.write_str("ok");
        }
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Checks an `auto_verify_conditions` JSON object and lists every problem: JSON problems, each
/// condition that does not parse, conditions that cannot be checked, overlaps of two options
/// and gaps where no option is true (see the module docs for why this is exact).
///
/// Overlaps and gaps are only looked for when every option parses. Overlaps are reported
/// between options over `price_change_percent` alone even if other options are unchecked; gaps
/// only when every option can be checked.
pub fn validate(json: &str) -> ValidationReport {
    let mut problems = Vec::new();
    let entries = match raw_entries(json) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::Invalid(e));
            return ValidationReport { problems };
        }
    };

    let mut seen = HashSet::new();
    let mut options: Vec<(String, Condition)> = Vec::new();
    let mut broken = false;
    for (option, value) in entries {
        if option.trim().is_empty() {
            problems.push(Problem::Invalid(ConditionSetError::BlankOption {
                option: option.clone(),
            }));
            broken = true;
            continue;
        }
        if !seen.insert(option.clone()) {
            problems.push(Problem::Invalid(ConditionSetError::DuplicateOption {
                option: option.clone(),
            }));
            broken = true;
            continue;
        }
        match value {
            RawValue::Other(found) => {
                problems.push(Problem::Invalid(ConditionSetError::NotAString {
                    option,
                    found,
                }));
                broken = true;
            }
            RawValue::Str(text) => match Condition::parse(&text) {
                Ok(condition) => options.push((option, condition)),
                Err(error) => {
                    problems.push(Problem::Parse { option, error });
                    broken = true;
                }
            },
        }
    }
    if broken {
        return ValidationReport { problems };
    }

    let mut checked: Vec<(&str, &Condition)> = Vec::new();
    for (option, condition) in &options {
        let others: Vec<&str> = condition
            .variables()
            .filter(|v| *v != Var::PriceChangePercent)
            .map(Var::name)
            .collect();
        if others.is_empty() {
            checked.push((option, condition));
        } else {
            problems.push(Problem::Unchecked {
                option: option.clone(),
                reason: format!(
                    "it uses {}; only conditions over price_change_percent alone can be checked",
                    others.join(", ")
                ),
            });
        }
    }
    let all_checked = checked.len() == options.len();

    let points = sample_points(checked.iter().map(|(_, c)| *c));
    // truth[i][k]: option i at point k.
    let truth: Vec<Vec<bool>> = checked
        .iter()
        .map(|(_, c)| {
            points
                .iter()
                .map(|p| {
                    c.eval(&Vars {
                        price_change_percent: *p,
                        ..Vars::default()
                    })
                })
                .collect()
        })
        .collect();

    for i in 0..checked.len() {
        for j in i + 1..checked.len() {
            if let Some(k) = (0..points.len()).find(|&k| truth[i][k] && truth[j][k]) {
                problems.push(Problem::Overlap {
                    first: checked[i].0.to_owned(),
                    second: checked[j].0.to_owned(),
                    witness: points[k],
                });
            }
        }
    }

    if all_checked {
        let mut in_gap = false;
        for (k, p) in points.iter().enumerate() {
            let covered = truth.iter().any(|t| t[k]);
            if !covered && !in_gap {
                problems.push(Problem::Gap { witness: *p });
            }
            in_gap = !covered;
        }
    }

    ValidationReport { problems }
}

/// The lowest `price_change_percent` that can occur: the price fell to 0.
fn domain_min() -> Decimal {
    Decimal::new(-10_000, 2)
}

/// Sorted, distinct grid points (multiples of 0.01, at or above −100.00, scale 2) that visit
/// every region of constant truth of the given conditions.
fn sample_points<'a>(conditions: impl Iterator<Item = &'a Condition>) -> Vec<Decimal> {
    let cent = Decimal::new(1, 2);
    let min = domain_min();
    let mut points = vec![min, Decimal::new(0, 2)];
    for c in conditions {
        c.expr().for_each_comparison(&mut |lhs, _, rhs| {
            for operand in [lhs, rhs] {
                let Operand::Number(n) = operand else {
                    continue;
                };
                let floor = n.round_dp_with_strategy(2, RoundingStrategy::ToNegativeInfinity);
                let ceil = n.round_dp_with_strategy(2, RoundingStrategy::ToPositiveInfinity);
                let candidates = [
                    floor.checked_sub(cent),
                    Some(floor),
                    Some(ceil),
                    ceil.checked_add(cent),
                ];
                points.extend(candidates.into_iter().flatten());
            }
        });
    }
    for p in &mut points {
        p.rescale(2);
    }
    points.retain(|p| *p >= min);
    points.sort();
    points.dedup();
    points
}
