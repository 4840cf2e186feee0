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

// ---------------------------------------------------------------------------------------------
// Parsing: structure, precedence, spelling
// ---------------------------------------------------------------------------------------------

fn parse(s: &str) -> Condition {
    Condition::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn err(s: &str) -> ConditionError {
    match Condition::parse(s) {
        Ok(c) => panic!("{s:?} should not parse, got {c}"),
        Err(e) => e,
    }
}

fn cmp(lhs: Operand, op: CmpOp, rhs: Operand) -> Expr {
    Expr::Cmp { lhs, op, rhs }
}

fn p(op: CmpOp, n: &str) -> Expr {
    cmp(
        Operand::Var(Var::PriceChangePercent),
        op,
        Operand::Number(d(n)),
    )
}

#[test]
fn parses_comparisons_with_every_operator() {
    let cases = [
        ("price_change_percent > 1", CmpOp::Gt),
        ("price_change_percent >= 1", CmpOp::Ge),
        ("price_change_percent < 1", CmpOp::Lt),
        ("price_change_percent <= 1", CmpOp::Le),
        ("price_change_percent = 1", CmpOp::Eq),
        ("price_change_percent == 1", CmpOp::Eq),
        ("price_change_percent != 1", CmpOp::Ne),
    ];
    for (text, op) in cases {
        assert_eq!(parse(text).expr(), &p(op, "1"), "{text}");
    }
}

#[test]
fn parses_numbers() {
    for (text, value) in [
        ("1", "1"),
        ("-0.5", "-0.5"),
        ("+2.25", "2.25"),
        ("1.0", "1.0"),
        ("007", "7"),
        ("-100.00", "-100"),
        (
            "0.0000000000000000000000000001",
            "0.0000000000000000000000000001",
        ),
        (
            "79228162514264337593543950335",
            "79228162514264337593543950335",
        ),
    ] {
        let c = parse(&format!("price_change_percent > {text}"));
        assert_eq!(c.expr(), &p(CmpOp::Gt, value), "{text}");
    }
    // The scale is kept for printing: 1.0 prints as 1.0 but compares equal to 1.
    assert_eq!(
        parse("price_change_percent > 1.0").to_string(),
        "price_change_percent > 1.0"
    );
}

#[test]
fn operands_may_be_numbers_or_variables_on_either_side() {
    let c = parse("1.0 <= price_change_percent");
    assert_eq!(
        c.expr(),
        &cmp(
            Operand::Number(d("1.0")),
            CmpOp::Le,
            Operand::Var(Var::PriceChangePercent)
        )
    );
    let c = parse("price_at_verify > price_at_create");
    assert_eq!(
        c.expr(),
        &cmp(
            Operand::Var(Var::PriceAtVerify),
            CmpOp::Gt,
            Operand::Var(Var::PriceAtCreate)
        )
    );
    let c = parse("1 = 1");
    assert_eq!(
        c.expr(),
        &cmp(Operand::Number(d("1")), CmpOp::Eq, Operand::Number(d("1")))
    );
    assert_eq!(c.variables().count(), 0);
    let c = parse("price_change < 0 OR price_change_percent < 0");
    assert_eq!(
        c.variables().collect::<Vec<_>>(),
        [Var::PriceChangePercent, Var::PriceChange]
    );
}

#[test]
fn precedence_not_then_and_then_or() {
    let a = p(CmpOp::Gt, "1");
    let b = p(CmpOp::Lt, "2");
    let c = p(CmpOp::Eq, "3");
    let s = "price_change_percent > 1";
    let t = "price_change_percent < 2";
    let u = "price_change_percent = 3";
    let not = |e: &Expr| Expr::Not(Box::new(e.clone()));
    let cases = [
        (
            format!("{s} OR {t} AND {u}"),
            Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()])]),
        ),
        (
            format!("{s} AND {t} OR {u}"),
            Expr::Or(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()]),
        ),
        (
            format!("NOT {s} AND {t}"),
            Expr::And(vec![not(&a), b.clone()]),
        ),
        (
            format!("NOT {s} OR NOT {t}"),
            Expr::Or(vec![not(&a), not(&b)]),
        ),
        (
            format!("NOT ({s} OR {t})"),
            not(&Expr::Or(vec![a.clone(), b.clone()])),
        ),
        (format!("NOT NOT {s}"), not(&not(&a))),
        (
            format!("{s} AND {t} AND {u}"),
            Expr::And(vec![a.clone(), b.clone(), c.clone()]),
        ),
        (
            format!("({s} AND {t}) AND {u}"),
            Expr::And(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()]),
        ),
        (
            format!("{s} AND ({t} OR {u})"),
            Expr::And(vec![a.clone(), Expr::Or(vec![b.clone(), c.clone()])]),
        ),
        (format!("((({s})))"), a.clone()),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(&text).expr(), &expected, "{text}");
    }
}

#[test]
fn keywords_are_case_insensitive_and_whitespace_is_free() {
    let canonical = parse(
        "NOT price_change_percent > 1 AND price_change_percent < 2 OR price_change_percent = 3",
    );
    for text in [
        "not price_change_percent > 1 and price_change_percent < 2 or price_change_percent = 3",
        "Not price_change_percent > 1 And price_change_percent < 2 oR price_change_percent = 3",
        "nOt price_change_percent>1 AnD price_change_percent<2 OR price_change_percent==3",
        "  NOT\tprice_change_percent >1\nAND price_change_percent< 2\r\nOR price_change_percent =3  ",
        "NOT(price_change_percent>1)AND(price_change_percent<2)OR(price_change_percent=3)",
        "NOT price_change_percent>1.0AND price_change_percent<2.00OR price_change_percent=+3",
    ] {
        assert_eq!(parse(text), canonical, "{text}");
    }
}

#[test]
fn display_is_canonical() {
    for (text, canonical) in [
        ("price_change_percent>=1.0", "price_change_percent >= 1.0"),
        (
            "price_change_percent == +2.25",
            "price_change_percent = 2.25",
        ),
        ("((price_change_percent > 1))", "price_change_percent > 1"),
        (
            "not (price_change_percent > 1 or price_change < 2)",
            "NOT (price_change_percent > 1 OR price_change < 2)",
        ),
        (
            "(price_change > 1 and price_change < 2) and price_change != 0",
            "(price_change > 1 AND price_change < 2) AND price_change != 0",
        ),
        (
            "price_change > 1 or (price_change < 2 or price_change = 0)",
            "price_change > 1 OR (price_change < 2 OR price_change = 0)",
        ),
        (
            "(price_change > 1 and price_change < 2) or (not not price_change = 0)",
            "price_change > 1 AND price_change < 2 OR NOT NOT price_change = 0",
        ),
        ("-0.5 < price_at_verify", "-0.5 < price_at_verify"),
    ] {
        let c = parse(text);
        assert_eq!(c.to_string(), canonical, "{text}");
        assert_eq!(parse(canonical), c, "{canonical}");
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing: rejections, with positions
// ---------------------------------------------------------------------------------------------

#[test]
fn errors_name_what_was_expected_and_where() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "price_change_percent >= ",
            24,
            "expected a number or variable at 24, found end of input",
        ),
        (
            "price_change_percent >=",
            23,
            "expected a number or variable at 23, found end of input",
        ),
        (
            "price_change_percent > 1 AND foo < 2",
            29,
            "unknown variable `foo` at 29 (known: price_change_percent, price_at_create, \
             price_at_verify, price_change)",
        ),
        (
            "Price_Change_Percent > 1",
            0,
            "unknown variable `Price_Change_Percent` at 0 (known: price_change_percent, \
             price_at_create, price_at_verify, price_change)",
        ),
        (
            "price_change_percent > 1 price_change < 2",
            25,
            "expected AND, OR or end of input at 25, found `price_change`",
        ),
        (
            "price_change_percent > 1)",
            24,
            "expected AND, OR or end of input at 24, found `)`",
        ),
        (
            "1 < price_change_percent < 2",
            25,
            "comparisons do not chain: unexpected `<` at 25 (combine comparisons with AND)",
        ),
        (
            "1 < price_change_percent == 2",
            25,
            "comparisons do not chain: unexpected `==` at 25 (combine comparisons with AND)",
        ),
        (
            "(price_change_percent > 1",
            25,
            "expected AND, OR or `)` at 25, found end of input",
        ),
        (
            "price_change_percent",
            20,
            "expected a comparison operator (> >= < <= = == !=) at 20, found end of input",
        ),
        (
            "price_change_percent XOR 1",
            21,
            "expected a comparison operator (> >= < <= = == !=) at 21, found `XOR`",
        ),
        (
            "AND > 1",
            0,
            "expected a number, a variable, NOT or `(` at 0, found `AND`",
        ),
        (
            "price_change_percent > 1 AND",
            28,
            "expected a number, a variable, NOT or `(` at 28, found end of input",
        ),
        (
            "price_change_percent > 1 OR ()",
            29,
            "expected a number, a variable, NOT or `(` at 29, found `)`",
        ),
        (
            "price_change_percent > NOT 1",
            23,
            "expected a number or variable at 23, found `NOT`",
        ),
        (
            "price_change_percent ≥ 1",
            21,
            "unexpected character '≥' at 21",
        ),
        (
            "price_change_percent > 1 && price_change < 2",
            25,
            "unexpected character '&' at 25",
        ),
        (
            "price_change_percent ! 1",
            22,
            "expected `=` after `!` at 22, found ' '",
        ),
        (
            "price_change_percent >= 1e5",
            24,
            "invalid number `1e5` at 24: exponents are not supported; write the digits out",
        ),
        (
            "price_change_percent >= .5",
            24,
            "invalid number `.5` at 24: a digit is needed before the decimal point",
        ),
        (
            "price_change_percent >= -.5",
            24,
            "invalid number `-.5` at 24: a digit is needed before the decimal point",
        ),
        (
            "price_change_percent >= 1.",
            24,
            "invalid number `1.` at 24: a digit is needed after the decimal point",
        ),
        (
            "price_change_percent >= 1.2.3",
            24,
            "invalid number `1.2.3` at 24: more than one decimal point",
        ),
        (
            "price_change_percent >= - 1",
            24,
            "invalid number `-` at 24: a sign must be directly followed by digits",
        ),
        (
            "price_change_percent >= 99999999999999999999999999999999",
            24,
            "invalid number `99999999999999999999999999999999` at 24: does not fit a decimal \
             exactly (at most 28 fractional digits and about 28 significant digits)",
        ),
        ("", 0, "empty condition"),
        (" \t\n ", 0, "empty condition"),
    ];
    for (text, pos, message) in cases {
        let e = err(text);
        assert_eq!(e.position(), *pos, "{text}: {e}");
        assert_eq!(e.to_string(), *message, "{text}");
    }
}

#[test]
fn rejects_numbers_that_do_not_fit_a_decimal() {
    for n in [
        "79228162514264337593543950336",
        "-79228162514264337593543950336",
        "0.00000000000000000000000000001",
        &"9".repeat(1000),
    ] {
        let text = format!("price_change_percent > {n}");
        if text.len() > MAX_CONDITION_LEN {
            assert!(matches!(err(&text), ConditionError::TooLong { .. }));
        } else {
            let e = err(&text);
            assert!(
                matches!(e, ConditionError::InvalidNumber { pos: 23, .. }),
                "{n}: {e}"
            );
        }
    }
    let e = err(&format!("price_change_percent > {}", "9".repeat(500)));
    // Long input is shortened in the message.
    assert!(e.to_string().len() < 200, "{e}");
}

#[test]
fn length_limit_is_one_kib() {
    let base = "price_change_percent > 1";
    let exactly = format!("{base}{}", " ".repeat(MAX_CONDITION_LEN - base.len()));
    assert_eq!(exactly.len(), 1024);
    assert!(Condition::parse(&exactly).is_ok());
    let over = format!("{exactly} ");
    let e = err(&over);
    assert_eq!(e, ConditionError::TooLong { len: 1025 });
    assert_eq!(
        e.to_string(),
        "condition too long: 1025 bytes, at most 1024 allowed"
    );
}

#[test]
fn nesting_limit_is_32() {
    let cmp = "price_change_percent > 1";
    let parens = |n: usize| format!("{}{cmp}{}", "(".repeat(n), ")".repeat(n));
    assert!(Condition::parse(&parens(32)).is_ok());
    let e = err(&parens(33));
    assert_eq!(e, ConditionError::TooDeep { pos: 32 });
    assert_eq!(e.to_string(), "nesting deeper than 32 at 32");

    let nots = |n: usize| format!("{}{cmp}", "NOT ".repeat(n));
    assert!(Condition::parse(&nots(32)).is_ok());
    assert_eq!(err(&nots(33)), ConditionError::TooDeep { pos: 128 });

    // NOT and parentheses count together.
    let mixed = format!("{}{cmp}{}", "NOT (".repeat(16), ")".repeat(16));
    assert!(Condition::parse(&mixed).is_ok());
    let mixed = format!("{}NOT {cmp}{}", "NOT (".repeat(16), ")".repeat(16));
    assert!(matches!(err(&mixed), ConditionError::TooDeep { .. }));

    // Long flat chains are not nesting.
    let chain = vec![cmp; 30].join(" AND ");
    assert!(chain.len() <= MAX_CONDITION_LEN);
    assert!(Condition::parse(&chain).is_ok());
}

#[test]
fn hostile_input_is_an_error_not_a_crash() {
    let cases = [
        "(".repeat(1000),
        "(".repeat(100_000),
        "NOT ".repeat(255),
        "NOT ".repeat(100_000),
        format!("{}1 = 1", "NOT(".repeat(200)),
        ")".repeat(1000),
        "9".repeat(1024),
        "-".repeat(1024),
        "\u{0}".repeat(10),
        "é".repeat(300),
        "price_change_percent > 1 OR ".repeat(40),
    ];
    for text in &cases {
        assert!(Condition::parse(text).is_err(), "{text:.40}");
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

#[test]
fn evaluates() {
    let vars = Vars::new(d("2650.00"), d("2680.00")).unwrap();
    assert_eq!(vars.price_change_percent, d("1.13"));
    assert_eq!(vars.price_change, d("30.00"));
    let cases = [
        ("price_change_percent >= 1.0", true),
        ("price_change_percent > 1.13", false),
        ("price_change_percent >= 1.13", true),
        ("price_change_percent = 1.130", true),
        ("price_change_percent == 1.13", true),
        ("price_change_percent != 1.13", false),
        ("price_change_percent < 1.13", false),
        ("price_change_percent <= 1.13", true),
        ("1.13 <= price_change_percent", true),
        ("1.14 <= price_change_percent", false),
        ("NOT price_change_percent > 2", true),
        ("NOT NOT price_change_percent > 2", false),
        ("price_change = 30", true),
        ("price_at_create = 2650 AND price_at_verify = 2680", true),
        ("price_at_verify > price_at_create", true),
        ("price_change_percent > 2 OR price_change > 29.99", true),
        ("price_change_percent > 2 OR price_change > 30", false),
        (
            "price_change_percent > 1 AND NOT (price_change < 0 OR price_change > 100)",
            true,
        ),
        ("1 = 1", true),
        ("1 = 1.00", true),
        ("1 > 2", false),
        ("-1 < -0.5", true),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text).eval(&vars), expected, "{text}");
    }
}

#[test]
fn vars_new_rounds_half_to_even() {
    let pct = |create: &str, verify: &str| {
        Vars::new(d(create), d(verify))
            .unwrap()
            .price_change_percent
            .to_string()
    };
    assert_eq!(pct("2650.00", "2680.00"), "1.13");
    assert_eq!(pct("2650.00", "2620.00"), "-1.13");
    assert_eq!(pct("100", "101.125"), "1.12");
    assert_eq!(pct("100", "101.135"), "1.14");
    assert_eq!(pct("100", "98.875"), "-1.12");
    assert_eq!(pct("100", "98.865"), "-1.14");
    assert_eq!(pct("100", "101.1250001"), "1.13");
    assert_eq!(pct("2650.00", "2650.00"), "0.00");
    assert_eq!(pct("3", "4"), "33.33");
    assert_eq!(pct("3", "5"), "66.67");
    assert_eq!(pct("2650", "0"), "-100.00");
    let v = Vars::new(d("2650.00"), d("2620.00")).unwrap();
    assert_eq!(v.price_change, d("-30.00"));
    assert_eq!(v.price_at_create, d("2650.00"));
    assert_eq!(v.price_at_verify, d("2620.00"));
    assert_eq!(Vars::new(Decimal::ZERO, d("1")), None);
    assert_eq!(Vars::new(d("-1"), d("1")), None);
    assert_eq!(Vars::new(Decimal::MAX, Decimal::MIN), None);
}

// ---------------------------------------------------------------------------------------------
// ConditionSet
// ---------------------------------------------------------------------------------------------

#[test]
fn condition_set_keeps_key_order_not_sorted_order() {
    let set = ConditionSet::from_json(
        r#"{"Z": "price_change_percent >= 0", "b": "price_change_percent < 0", "A": "1 = 1"}"#,
    )
    .unwrap();
    let names: Vec<&str> = set.options().map(|(o, _)| o).collect();
    assert_eq!(names, ["Z", "b", "A"]);
    assert_eq!(set.len(), 3);
    assert!(!set.is_empty());
    // First true wins although "A" is always true.
    assert_eq!(set.choose(&pcp("5")), Some("Z"));
    assert_eq!(set.choose(&pcp("-5")), Some("b"));
    assert_eq!(
        set.to_string(),
        r#"{"Z": "price_change_percent >= 0", "b": "price_change_percent < 0", "A": "1 = 1"}"#
    );
}

#[test]
fn condition_set_chooses_none_when_nothing_is_true() {
    let set = ConditionSet::from_json(r#"{"up": "price_change_percent > 0"}"#).unwrap();
    assert_eq!(set.choose(&pcp("0.00")), None);
    assert_eq!(set.choose(&pcp("0.01")), Some("up"));
}

#[test]
fn condition_set_rejections() {
    let cases: &[(&str, &str)] = &[
        (
            "{",
            "conditions are not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        (
            "",
            "conditions are not valid JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            r#"{"A": "1 = 1"} x"#,
            "conditions are not valid JSON: trailing characters at line 1 column 16",
        ),
        (
            "[]",
            "conditions must be a JSON object of option → {\"condition\": \"…\"} (or → condition string), found an array",
        ),
        (
            r#""A""#,
            "conditions must be a JSON object of option → {\"condition\": \"…\"} (or → condition string), found a string",
        ),
        (
            "null",
            "conditions must be a JSON object of option → {\"condition\": \"…\"} (or → condition string), found null",
        ),
        (
            "1.5",
            "conditions must be a JSON object of option → {\"condition\": \"…\"} (or → condition string), found a number",
        ),
        ("{}", "conditions object has no options"),
        (
            r#"{"A": 1}"#,
            r#"option "A": expected {"condition": "…"} or a condition string, found a number"#,
        ),
        (
            r#"{"A": "1 = 1", "B": {"x": [1, 2]}}"#,
            r#"option "B": expected {"condition": "…"} or a condition string, found an object without a "condition" key"#,
        ),
        (
            r#"{"A": true}"#,
            r#"option "A": expected {"condition": "…"} or a condition string, found a boolean"#,
        ),
        (
            r#"{"A": ["1 = 1"]}"#,
            r#"option "A": expected {"condition": "…"} or a condition string, found an array"#,
        ),
        (
            r#"{"A": {"condition": 1.5}}"#,
            r#"option "A": expected {"condition": "…"} or a condition string, found an object whose "condition" is a number"#,
        ),
        (
            r#"{"A": {"condition": {"condition": "1 = 1"}}}"#,
            r#"option "A": expected {"condition": "…"} or a condition string, found an object whose "condition" is an object"#,
        ),
        (
            r#"{"A": {"condition": null}}"#,
            r#"option "A": expected {"condition": "…"} or a condition string, found an object whose "condition" is null"#,
        ),
        (
            r#"{"A": {"condition": "1 = 1", "condition": "1 = 2"}}"#,
            r#"option "A": expected {"condition": "…"} or a condition string, found an object with "condition" more than once"#,
        ),
        (
            r#"{"A": {"condition": "price_change_percent >= 1"}, "B": {"condition": "price_change_percent >= "}}"#,
            r#"option "B": expected a number or variable at 24, found end of input"#,
        ),
        (
            r#"{"A": "1 = 1", "A": "1 = 2"}"#,
            r#"option "A" appears more than once"#,
        ),
        (
            r#"{"": "1 = 1"}"#,
            r#"option "": option names must not be blank"#,
        ),
        (
            r#"{"A": "1 = 2", " ": "1 = 1"}"#,
            r#"option " ": option names must not be blank"#,
        ),
        (
            r#"{"A": "price_change_percent >= 1", "B": "price_change_percent >= "}"#,
            r#"option "B": expected a number or variable at 24, found end of input"#,
        ),
        (
            r#"{"A\n": "nope > 1"}"#,
            r#"option "A\n": unknown variable `nope` at 0 (known: price_change_percent, price_at_create, price_at_verify, price_change)"#,
        ),
    ];
    for (json, message) in cases {
        match ConditionSet::from_json(json) {
            Ok(_) => panic!("{json} should be rejected"),
            Err(e) => {
                let line = e.to_string();
                assert_eq!(line, *message, "{json}");
                assert!(!line.contains('\n'), "{line}");
            }
        }
    }
    match ConditionSet::from_json(r#"{"B": "price_change_percent >= "}"#) {
        Err(ConditionSetError::Condition { option, error }) => {
            assert_eq!(option, "B");
            assert_eq!(error.position(), 24);
        }
        other => panic!("{other:?}"),
    }
}

/// The platform's shape (guide: *The condition object*): `{"A": {"condition": "…"}, …}`.
const PLATFORM: &str = r#"{"A": {"condition": "price_change_percent >= 1.0"},
 "B": {"condition": "price_change_percent > 0 AND price_change_percent < 1.0", "label": "up a little"},
 "C": {"label": ["ignored", {"deep": true}], "condition": "price_change_percent >= -0.5 AND price_change_percent <= 0"},
 "D": {"condition": "price_change_percent < -0.5"}}"#;

#[test]
fn the_platforms_shape_parses_in_key_order_like_plain_strings() {
    let set = ConditionSet::from_json(PLATFORM).unwrap();
    assert_eq!(set, ConditionSet::from_json(SEED).unwrap());
    let names: Vec<&str> = set.options().map(|(o, _)| o).collect();
    assert_eq!(names, ["A", "B", "C", "D"]);
    assert_eq!(set.choose(&pcp("1.13")), Some("A"));
    assert_eq!(set.choose(&pcp("0.99")), Some("B"));
    assert_eq!(set.choose(&pcp("-0.50")), Some("C"));
    assert_eq!(set.choose(&pcp("-0.51")), Some("D"));
    // Key order, not sorted order, in the platform's shape too.
    let set = ConditionSet::from_json(
        r#"{"Z": {"condition": "price_change_percent >= 0"}, "b": {"condition": "price_change_percent < 0"}, "A": {"condition": "1 = 1"}}"#,
    )
    .unwrap();
    let names: Vec<&str> = set.options().map(|(o, _)| o).collect();
    assert_eq!(names, ["Z", "b", "A"]);
    // The shapes may be mixed.
    let mixed = ConditionSet::from_json(
        r#"{"up": {"condition": "price_change_percent > 0"}, "rest": "1 = 1"}"#,
    )
    .unwrap();
    assert_eq!(mixed.choose(&pcp("-1")), Some("rest"));
    assert!(validate(PLATFORM).is_ok(), "{}", validate(PLATFORM));
}

#[test]
fn the_platforms_shape_reports_positions_in_the_condition_string() {
    let json = r#"{"A": {"condition": "price_change_percent >= 1.0"}, "B": {"note": "x", "condition": "price_change_percent <> 1"}}"#;
    match ConditionSet::from_json(json) {
        Err(ConditionSetError::Condition { option, error }) => {
            assert_eq!(option, "B");
            // `>` of `<>` at byte 22 of the condition, not of the JSON text.
            assert_eq!(error.position(), 22, "{error}");
        }
        other => panic!("{other:?}"),
    }
    let report = validate(json);
    assert!(
        matches!(&report.problems[..], [Problem::Parse { option, error }] if option == "B" && error.position() == 22),
        "{report}"
    );
    // Every problem of the set is listed, in both shapes.
    assert_eq!(
        lines(r#"{"A": {"condition": 1}, "B": "1 = 1", "C": {}}"#),
        [
            r#"option "A": expected {"condition": "…"} or a condition string, found an object whose "condition" is a number"#,
            r#"option "C": expected {"condition": "…"} or a condition string, found an object without a "condition" key"#,
        ]
    );
}

#[test]
fn too_many_options_are_refused_without_keeping_them() {
    let many: Vec<String> = (0..=MAX_OPTIONS)
        .map(|i| format!(r#""o{i}": {{"condition": "1 = 1"}}"#))
        .collect();
    let json = format!("{{{}}}", many.join(", "));
    match ConditionSet::from_json(&json) {
        Err(ConditionSetError::TooManyOptions { found }) => assert_eq!(found, MAX_OPTIONS + 1),
        other => panic!("{other:?}"),
    }
    assert!(!validate(&json).is_ok());
    let fits: Vec<String> = (0..MAX_OPTIONS)
        .map(|i| format!(r#""o{i}": "1 = 1""#))
        .collect();
    let set = ConditionSet::from_json(&format!("{{{}}}", fits.join(", "))).unwrap();
    assert_eq!(set.len(), MAX_OPTIONS);
}

#[test]
fn condition_set_new_checks_options() {
    let c = parse("1 = 1");
    assert!(ConditionSet::new(vec![]).is_none());
    assert!(ConditionSet::new(vec![("A".into(), c.clone()), ("A".into(), c.clone())]).is_none());
    let set = ConditionSet::new(vec![("A".into(), c.clone()), ("B".into(), c)]).unwrap();
    assert_eq!(set.choose(&Vars::default()), Some("A"));
}

// ---------------------------------------------------------------------------------------------
// Validator
// ---------------------------------------------------------------------------------------------

fn lines(json: &str) -> Vec<String> {
    validate(json)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn validator_finds_gaps_with_witnesses() {
    let r = validate(r#"{"up": "price_change_percent > 0", "down": "price_change_percent < 0"}"#);
    assert!(!r.is_ok());
    assert!(matches!(r.problems[..], [Problem::Gap { witness }] if witness == d("0.00")));
    assert_eq!(
        r.to_string(),
        "gap at price_change_percent = 0.00: no option is true"
    );

    assert_eq!(
        lines(r#"{"A": "price_change_percent >= 1", "B": "price_change_percent <= -1"}"#),
        ["gap at price_change_percent = -0.99: no option is true"]
    );
    assert_eq!(
        lines(
            r#"{"A": "price_change_percent < -1 OR price_change_percent > 1",
                "B": "price_change_percent = 0"}"#
        ),
        [
            "gap at price_change_percent = -1.00: no option is true",
            "gap at price_change_percent = 0.01: no option is true",
        ]
    );
    // Unbounded above.
    assert_eq!(
        lines(r#"{"A": "price_change_percent < 50"}"#),
        ["gap at price_change_percent = 50.00: no option is true"]
    );
    // −100.00 is the lowest possible value, so nothing below it is a gap ...
    assert!(validate(r#"{"A": "price_change_percent >= -100"}"#).is_ok());
    assert!(validate(r#"{"A": "price_change_percent > -150"}"#).is_ok());
    // ... but −100.00 itself is.
    assert_eq!(
        lines(r#"{"A": "price_change_percent > -100"}"#),
        ["gap at price_change_percent = -100.00: no option is true"]
    );
    // A condition that is never true on the grid.
    assert_eq!(
        lines(r#"{"A": "price_change_percent = 0.005"}"#),
        ["gap at price_change_percent = -100.00: no option is true"]
    );
}

#[test]
fn validator_uses_the_0_01_grid() {
    // No grid value lies between 0.00 and 0.01, so these leave no gap and do not overlap.
    assert!(validate(
        r#"{"A": "price_change_percent > 0.005", "B": "price_change_percent < 0.005"}"#
    )
    .is_ok());
    assert!(validate(
        r#"{"A": "price_change_percent > 0.001", "B": "price_change_percent <= 0.009"}"#
    )
    .is_ok());
    assert_eq!(
        lines(r#"{"A": "price_change_percent >= 0.015", "B": "price_change_percent <= 0.005"}"#),
        ["gap at price_change_percent = 0.01: no option is true"]
    );
    assert_eq!(
        lines(r#"{"A": "price_change_percent >= 0.001", "B": "price_change_percent <= 0.019"}"#),
        [
            r#"overlap: options "A" and "B" are both true at price_change_percent = 0.01 (the first, "A", wins)"#
        ]
    );
}

#[test]
fn validator_finds_overlaps_with_witnesses() {
    let r = validate(r#"{"A": "price_change_percent >= 1.0", "B": "price_change_percent > 0.5"}"#);
    match &r.problems[..] {
        [Problem::Overlap {
            first,
            second,
            witness,
        }, Problem::Gap { witness: gap }] => {
            assert_eq!((first.as_str(), second.as_str()), ("A", "B"));
            assert_eq!(*witness, d("1.00"));
            // The gap up to 0.50 is found too.
            assert_eq!(*gap, d("-100.00"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        lines(r#"{"A": "price_change_percent >= 0", "B": "price_change_percent <= 0"}"#),
        [
            r#"overlap: options "A" and "B" are both true at price_change_percent = 0.00 (the first, "A", wins)"#
        ]
    );
    assert_eq!(
        lines(
            r#"{"A": "price_change_percent >= 0", "B": "price_change_percent >= 1",
                "C": "price_change_percent < 2", "D": "1 = 1"}"#
        ),
        [
            r#"overlap: options "A" and "B" are both true at price_change_percent = 1.00 (the first, "A", wins)"#,
            r#"overlap: options "A" and "C" are both true at price_change_percent = 0.00 (the first, "A", wins)"#,
            r#"overlap: options "A" and "D" are both true at price_change_percent = 0.00 (the first, "A", wins)"#,
            r#"overlap: options "B" and "C" are both true at price_change_percent = 1.00 (the first, "B", wins)"#,
            r#"overlap: options "B" and "D" are both true at price_change_percent = 1.00 (the first, "B", wins)"#,
            r#"overlap: options "C" and "D" are both true at price_change_percent = -100.00 (the first, "C", wins)"#,
        ]
    );
}

#[test]
fn validator_reports_unchecked_conditions() {
    assert_eq!(
        lines(r#"{"A": "price_change > 0", "B": "price_change <= 0 OR price_at_verify = 0"}"#),
        [
            r#"option "A" not checked: it uses price_change; only conditions over price_change_percent alone can be checked"#,
            r#"option "B" not checked: it uses price_at_verify, price_change; only conditions over price_change_percent alone can be checked"#,
        ]
    );
    // Overlaps among checkable options are still certain; gaps are not looked for.
    let r = validate(
        r#"{"A": "price_change_percent >= 0", "B": "price_change_percent >= 1",
            "C": "price_change < 0 AND price_change_percent < 0"}"#,
    );
    assert!(matches!(
        &r.problems[..],
        [Problem::Unchecked { option, .. }, Problem::Overlap { witness, .. }]
            if option == "C" && *witness == d("1.00")
    ));
}

#[test]
fn validator_lists_every_parse_problem() {
    assert_eq!(
        lines(
            r#"{"A": "price_change_percent >=", "B": "price_change_percent > 0",
                "C": 5, "B": "1 = 1", "D": "x > 1"}"#
        ),
        [
            r#"option "A": expected a number or variable at 23, found end of input"#,
            r#"option "C": expected {"condition": "…"} or a condition string, found a number"#,
            r#"option "B" appears more than once"#,
            r#"option "D": unknown variable `x` at 0 (known: price_change_percent, price_at_create, price_at_verify, price_change)"#,
        ]
    );
    assert_eq!(
        lines("[1]"),
        ["conditions must be a JSON object of option → {\"condition\": \"…\"} (or → condition string), found an array"]
    );
    assert_eq!(lines("{}"), ["conditions object has no options"]);
    let r = validate("not json");
    assert!(matches!(
        &r.problems[..],
        [Problem::Invalid(ConditionSetError::Json(_))]
    ));
}

#[test]
fn from_expr_checks_what_the_parser_would_accept() {
    let a = p(CmpOp::Gt, "1");
    assert_eq!(
        Condition::from_expr(Expr::And(vec![a.clone()])),
        Err(ExprError::TooFewChildren)
    );
    let mut deep = a.clone();
    for _ in 0..33 {
        deep = Expr::Not(Box::new(deep));
    }
    assert_eq!(
        Condition::from_expr(deep),
        Err(ExprError::TooDeep { depth: 33 })
    );
    // NOT (…) needs two levels: the NOT and the parentheses.
    let mut deep = a.clone();
    for _ in 0..16 {
        deep = Expr::Not(Box::new(Expr::Or(vec![deep, a.clone()])));
    }
    assert!(Condition::from_expr(deep.clone()).is_ok());
    let deeper = Expr::Not(Box::new(Expr::Or(vec![deep, a.clone()])));
    assert_eq!(
        Condition::from_expr(deeper),
        Err(ExprError::TooDeep { depth: 34 })
    );
    let long = Expr::Or(vec![a.clone(); 50]);
    assert!(matches!(
        Condition::from_expr(long),
        Err(ExprError::TooLong { .. })
    ));
    let ok = Condition::from_expr(Expr::Or(vec![a.clone(), Expr::Not(Box::new(a))])).unwrap();
    assert_eq!(
        ok,
        parse("price_change_percent > 1 OR NOT price_change_percent > 1")
    );
}

#[test]
fn validator_survives_extreme_constants() {
    for json in [
        r#"{"A": "price_change_percent < 79228162514264337593543950335",
            "B": "price_change_percent >= -79228162514264337593543950335"}"#,
        r#"{"A": "price_change_percent > 0.0000000000000000000000000001",
            "B": "price_change_percent <= -0.0000000000000000000000000001"}"#,
        r#"{"A": "79228162514264337593543950335 != price_change_percent"}"#,
    ] {
        let report = validate(json);
        let _ = report.to_string();
    }
    assert_eq!(
        lines(
            r#"{"A": "price_change_percent > 0.0000000000000000000000000001",
                "B": "price_change_percent <= -0.0000000000000000000000000001"}"#
        ),
        ["gap at price_change_percent = 0.00: no option is true"]
    );
}
