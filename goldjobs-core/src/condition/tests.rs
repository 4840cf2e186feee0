#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn pcp(s: &str) -> Vars {
    Vars {
        price_change_percent: d(s),
        ..Vars::default()
    }
}

const SEED: &str = r#"{"A": "price_change_percent >= 1.0",
 "B": "price_change_percent > 0 AND price_change_percent < 1.0",
 "C": "price_change_percent >= -0.5 AND price_change_percent <= 0",
 "D": "price_change_percent < -0.5"}"#;

#[test]
fn seed_set_chooses_in_key_order() {
    let set = ConditionSet::from_json(SEED).unwrap();
    let names: Vec<&str> = set.options().map(|(o, _)| o).collect();
    assert_eq!(names, ["A", "B", "C", "D"]);
    assert_eq!(set.choose(&pcp("1.13")), Some("A"));
    assert_eq!(set.choose(&pcp("1.00")), Some("A"));
    assert_eq!(set.choose(&pcp("0.99")), Some("B"));
    assert_eq!(set.choose(&pcp("0.00")), Some("C"));
    assert_eq!(set.choose(&pcp("-0.50")), Some("C"));
    assert_eq!(set.choose(&pcp("-0.51")), Some("D"));
}

#[test]
fn seed_set_validates_ok() {
    let report = validate(SEED);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.to_string(), "ok");
}
