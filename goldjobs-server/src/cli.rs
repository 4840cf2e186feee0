//! The non-serving commands of the binary: `check-conditions`, `seed-demo` and
//! `recompute-stats` (guide: *The server's commands*).

use chrono::{Duration as ChronoDuration, Utc};
use goldjobs::condition::{validate, ConditionSet, Vars};
use goldjobs::Ports as Repos;
use goldjobs::{Prediction, RecomputeMode, StatsDiff, Symbol, UserStats, VerifyRule, Vote};
use rust_decimal::{Decimal, RoundingStrategy};
use std::str::FromStr;

/// The result of `check-conditions`: what to print and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Lines for standard output.
    pub output: String,
    /// 0 = ok (or an option was chosen); 1 = problems, `none`, or a bad `--at` value.
    pub code: i32,
}

/// `check-conditions`: validate the JSON object, or with `at` print the option chosen for
/// `price_change_percent = at` (§6: the value is rounded to 2 places, half to even), or `none`.
///
/// With `at`, the other variables are those of a price going from 100 to `100 + at`, so that
/// conditions over `price_at_create`, `price_at_verify` or `price_change` agree with it.
pub fn check_conditions(json: &str, at: Option<&str>) -> CheckOutcome {
    match at {
        None => {
            let report = validate(json);
            CheckOutcome {
                output: report.to_string(),
                code: if report.is_ok() { 0 } else { 1 },
            }
        }
        Some(raw) => {
            let value = match Decimal::from_str(raw.trim()) {
                Ok(v) => v,
                Err(_) => {
                    return CheckOutcome {
                        output: format!(
                        "invalid --at value {raw:?}: expected a decimal number like 1.25 or -0.5"
                    ),
                        code: 1,
                    }
                }
            };
            let set = match ConditionSet::from_json(json) {
                Ok(s) => s,
                Err(_) => {
                    // List every problem, as without --at.
                    return CheckOutcome {
                        output: validate(json).to_string(),
                        code: 1,
                    };
                }
            };
            let percent = value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
            let create = Decimal::ONE_HUNDRED;
            let Some(verify) = create.checked_add(value) else {
                return CheckOutcome {
                    output: format!(
                        "invalid --at value {raw:?}: too large (100 + VALUE must fit a decimal)"
                    ),
                    code: 1,
                };
            };
            let vars = Vars {
                price_change_percent: percent,
                price_at_create: create,
                price_at_verify: verify,
                price_change: value,
            };
            match set.choose(&vars) {
                Some(option) => CheckOutcome {
                    output: option.to_owned(),
                    code: 0,
                },
                None => CheckOutcome {
                    output: "none".to_owned(),
                    code: 1,
                },
            }
        }
    }
}

/// What `seed-demo` inserted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedSummary {
    /// Symbols upserted.
    pub symbols: usize,
    /// Predictions inserted.
    pub predictions: usize,
    /// Votes inserted.
    pub votes: usize,
}

/// Realistic starting prices for demo predictions when no tick is recorded yet.
fn demo_price(code: &str) -> Decimal {
    match code {
        "XAUUSD" => Decimal::new(265_850, 2),
        "XAGUSD" => Decimal::new(3_125, 2),
        "EURUSD" => Decimal::new(10_845, 4),
        "GBPUSD" => Decimal::new(12_710, 4),
        "USDJPY" => Decimal::new(15_420, 2),
        _ => Decimal::new(9_650_000, 2),
    }
}

/// `seed-demo`: the default symbols, three auto predictions (due in 2, 5 and 10 minutes), one
/// manual prediction and a few votes of demo users on each.
pub async fn seed_demo(repos: &Repos) -> goldjobs::Result<SeedSummary> {
    let symbols = Symbol::defaults();
    repos.symbols.upsert_symbols(&symbols).await?;
    let now = Utc::now();
    let stamp = now.format("%Y%m%d%H%M%S").to_string();
    // The platform's shape (guide: *The condition object*): each option an object with its
    // condition.
    let conditions = r#"{"A": {"condition": "price_change_percent >= 0.05"}, "B": {"condition": "price_change_percent > -0.05 AND price_change_percent < 0.05"}, "C": {"condition": "price_change_percent <= -0.05"}}"#;
    let plan = [
        (
            "XAUUSD",
            "Will gold rise by 0.05% or more in 2 minutes?",
            2,
            VerifyRule::Auto,
        ),
        (
            "XAGUSD",
            "Where will silver be in 5 minutes?",
            5,
            VerifyRule::Auto,
        ),
        (
            "BTCUSD",
            "Bitcoin in 10 minutes: up, flat or down?",
            10,
            VerifyRule::Auto,
        ),
        (
            "EURUSD",
            "Will the ECB surprise the market this week?",
            60,
            VerifyRule::Manual,
        ),
    ];
    let mut predictions = Vec::new();
    let mut votes = Vec::new();
    for (i, (code, question, minutes, rule)) in plan.iter().enumerate() {
        let price = match repos.ticks.latest_tick(code).await {
            Ok(Some(t)) => t.price,
            _ => demo_price(code),
        };
        let id = format!("demo-{stamp}-{}", i + 1);
        let conditions = match rule {
            VerifyRule::Auto => Some(conditions.to_owned()),
            VerifyRule::Manual => None,
        };
        predictions.push(Prediction::new_active(
            id.clone(),
            *code,
            *question,
            price,
            now + ChronoDuration::minutes(*minutes),
            *rule,
            conditions,
            now,
        ));
        for (u, option) in ["A", "B", "C", "A", "C"].iter().enumerate() {
            votes.push(Vote {
                prediction_id: id.clone(),
                user_id: format!("demo-user-{}", u + 1),
                selected_option: (*option).to_owned(),
                is_correct: None,
                created_at: now,
            });
        }
    }
    for p in &predictions {
        repos.predictions.insert_prediction(p).await?;
    }
    repos.predictions.insert_votes(&votes).await?;
    Ok(SeedSummary {
        symbols: symbols.len(),
        predictions: predictions.len(),
        votes: votes.len(),
    })
}

fn numbers(s: &UserStats) -> String {
    format!(
        "total={} correct={} accuracy={} current_streak={} max_streak={}",
        s.total_participations, s.correct_count, s.accuracy_rate, s.current_streak, s.max_streak
    )
}

/// One line about a user whose stored statistics differ from the recomputation.
pub fn diff_line(d: &StatsDiff) -> String {
    let stored = d.stored.as_ref().map_or_else(|| "none".to_owned(), numbers);
    let note = if d.without_votes() {
        " (no verified votes behind the stored statistics)"
    } else {
        ""
    };
    format!(
        "user {}: stored {stored}; recomputed {}{note}",
        d.user_id,
        numbers(&d.recomputed)
    )
}

/// `recompute-stats [--check]` (guide: *The server's commands*; *Corrections and voids*): recompute
/// every user's statistics from the verified votes in `verify_time` order.
///
/// `check`: write nothing, one line per user whose stored statistics differ, code 1 if any
/// (nothing printed and code 0 when all match). Otherwise: first name the users whose stored
/// statistics have no verified vote behind them (they are reset to zero), then fix every
/// differing user in one transaction and print how many users changed.
pub async fn recompute_stats(repos: &Repos, check: bool) -> goldjobs::Result<CheckOutcome> {
    let now = Utc::now();
    let diffs = repos
        .predictions
        .recompute_stats(RecomputeMode::Check, now)
        .await?;
    if check {
        return Ok(CheckOutcome {
            output: diffs.iter().map(diff_line).collect::<Vec<_>>().join("\n"),
            code: if diffs.is_empty() { 0 } else { 1 },
        });
    }
    let mut lines: Vec<String> = diffs
        .iter()
        .filter(|d| d.without_votes())
        .map(|d| {
            format!(
                "user {}: statistics without verified votes ({}) are reset to zero",
                d.user_id,
                d.stored.as_ref().map_or_else(String::new, numbers)
            )
        })
        .collect();
    // Name them before writing (an operator reading the log sees them either way).
    for line in &lines {
        println!("{line}");
    }
    lines.clear();
    let fixed = repos
        .predictions
        .recompute_stats(RecomputeMode::Fix, now)
        .await?;
    lines.push(format!(
        "{} user{} changed",
        fixed.len(),
        if fixed.len() == 1 { "" } else { "s" }
    ));
    Ok(CheckOutcome {
        output: lines.join("\n"),
        code: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = r#"{"A": "price_change_percent >= 1.0", "B": "price_change_percent > 0 AND price_change_percent < 1.0", "C": "price_change_percent <= 0"}"#;

    #[test]
    fn ok_and_problems() {
        assert_eq!(
            check_conditions(SET, None),
            CheckOutcome {
                output: "ok".into(),
                code: 0
            }
        );
        let bad = check_conditions(r#"{"A": "price_change_percent >> 1"}"#, None);
        assert_eq!(bad.code, 1);
        assert!(bad.output.contains("\"A\""), "{}", bad.output);
        let gap = check_conditions(
            r#"{"A": "price_change_percent > 1", "B": "price_change_percent < 0"}"#,
            None,
        );
        assert_eq!(gap.code, 1);
        assert!(gap.output.contains("gap"), "{}", gap.output);
    }

    #[test]
    fn at_value_picks_the_first_true_option() {
        assert_eq!(check_conditions(SET, Some("1.5")).output, "A");
        assert_eq!(check_conditions(SET, Some("0.5")).output, "B");
        assert_eq!(check_conditions(SET, Some("-2")).output, "C");
        // 0.995 rounds half to even to 1.00 → A; 0.985 → 0.98 → B.
        assert_eq!(check_conditions(SET, Some("0.995")).output, "A");
        assert_eq!(check_conditions(SET, Some("0.985")).output, "B");
        let none = check_conditions(r#"{"A": "price_change_percent > 5"}"#, Some("1"));
        assert_eq!((none.output.as_str(), none.code), ("none", 1));
        assert_eq!(check_conditions(SET, Some("abc")).code, 1);
    }

    /// The platform writes each option as `{"condition": "…"}` (guide: *The condition object*).
    const PLATFORM: &str = r#"{"A": {"condition": "price_change_percent >= 1.0"}, "B": {"condition": "price_change_percent > 0 AND price_change_percent < 1.0", "label": "a little"}, "C": {"condition": "price_change_percent <= 0"}}"#;

    #[test]
    fn the_platforms_shape_is_checked_and_chosen_from() {
        let ok = check_conditions(PLATFORM, None);
        assert_eq!((ok.output.as_str(), ok.code), ("ok", 0));
        assert_eq!(check_conditions(PLATFORM, Some("1.5")).output, "A");
        assert_eq!(check_conditions(PLATFORM, Some("0.5")).output, "B");
        assert_eq!(check_conditions(PLATFORM, Some("-2")).output, "C");
        let one = check_conditions(
            r#"{"A": {"condition": "price_change_percent >= 1.0"}}"#,
            None,
        );
        assert_eq!(one.code, 1, "{}", one.output);
        assert!(one.output.starts_with("gap at"), "{}", one.output);
        // Byte positions stay relative to the condition string.
        let bad = check_conditions(r#"{"A": {"condition": "price_change_percent >> 1"}}"#, None);
        assert_eq!(bad.code, 1);
        assert!(bad.output.contains("\"A\""), "{}", bad.output);
        assert!(bad.output.contains(" at 22"), "{}", bad.output);
        let missing = check_conditions(r#"{"A": {"text": "price_change_percent > 1"}}"#, None);
        assert_eq!(missing.code, 1);
        assert!(
            missing.output.contains("without a \"condition\" key"),
            "{}",
            missing.output
        );
    }

    #[test]
    fn a_huge_at_value_is_an_error_not_a_panic() {
        let out = check_conditions(PLATFORM, Some("79228162514264337593543950335"));
        assert_eq!(out.code, 1);
        assert!(out.output.contains("too large"), "{}", out.output);
    }
}
