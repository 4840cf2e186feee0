//! Property tests: printing round-trips, evaluation against an independent reference, the
//! validator against brute force, the percent rounding against integer arithmetic, and hostile
//! input.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;

// ---------------------------------------------------------------------------------------------
// Random ASTs print canonically and parse back to the same AST
// ---------------------------------------------------------------------------------------------

fn arb_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (-100_000i64..100_000, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s)),
        (any::<i64>(), 0u32..=12).prop_map(|(m, s)| Decimal::new(m, s)),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            0u32..=28
        )
            .prop_map(|(lo, mid, hi, neg, s)| Decimal::from_parts(lo, mid, hi, neg, s)),
    ]
}

fn arb_var() -> impl Strategy<Value = Var> {
    prop::sample::select(Var::ALL.to_vec())
}

fn arb_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Eq,
        CmpOp::Ne,
    ])
}

fn arb_operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        arb_var().prop_map(Operand::Var),
        arb_decimal().prop_map(Operand::Number),
    ]
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = (arb_operand(), arb_op(), arb_operand()).prop_map(|(lhs, op, rhs)| Expr::Cmp {
        lhs,
        op,
        rhs,
    });
    leaf.prop_recursive(5, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

proptest! {
    #[test]
    fn printed_ast_parses_back_to_the_same_ast(expr in arb_expr()) {
        let Ok(condition) = Condition::from_expr(expr.clone()) else {
            // Deeper or longer than the parser accepts: from_expr said so, nothing to check.
            return Ok(());
        };
        let text = condition.to_string();
        let parsed = Condition::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(parsed.expr(), &expr, "{}", text);
        prop_assert_eq!(parsed.to_string(), text);
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation agrees with a reference evaluator over an independent representation
// ---------------------------------------------------------------------------------------------

/// The reference: a plain binary tree with operators as strings, rendered to text with random
/// spelling and evaluated directly.
#[derive(Debug, Clone)]
enum Ref {
    Cmp(RefOperand, &'static str, RefOperand),
    Not(Box<Ref>),
    And(Box<Ref>, Box<Ref>),
    Or(Box<Ref>, Box<Ref>),
}

#[derive(Debug, Clone)]
enum RefOperand {
    Var(usize),
    Num(Decimal),
}

const REF_VARS: [&str; 4] = [
    "price_change_percent",
    "price_at_create",
    "price_at_verify",
    "price_change",
];

/// Values that make comparisons interesting: constants and variables are drawn from here.
fn pool() -> Vec<Decimal> {
    [
        "-2.5", "-1", "-0.50", "0", "0.5", "1", "1.13", "1.130", "2650", "-100",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fn ref_eval(e: &Ref, vals: &[Decimal; 4]) -> bool {
    let value = |o: &RefOperand| match o {
        RefOperand::Var(i) => vals[*i],
        RefOperand::Num(n) => *n,
    };
    match e {
        Ref::Cmp(l, op, r) => {
            let (l, r) = (value(l), value(r));
            match *op {
                "<" => l < r,
                "<=" => l <= r,
                ">" => l > r,
                ">=" => l >= r,
                "=" | "==" => l == r,
                "!=" => l != r,
                _ => unreachable!(),
            }
        }
        Ref::Not(e) => !ref_eval(e, vals),
        Ref::And(a, b) => ref_eval(a, vals) && ref_eval(b, vals),
        Ref::Or(a, b) => ref_eval(a, vals) || ref_eval(b, vals),
    }
}

/// Deterministic choices from proptest-provided bytes.
struct Choices {
    bytes: Vec<u8>,
    at: usize,
}

impl Choices {
    fn next(&mut self, n: usize) -> usize {
        let b = self.bytes[self.at % self.bytes.len()];
        self.at += 1;
        usize::from(b) % n
    }

    fn space(&mut self, may_be_empty: bool) -> &'static str {
        let all = [" ", "  ", "\t", "\n", " \r\n ", ""];
        let n = if may_be_empty {
            all.len()
        } else {
            all.len() - 1
        };
        all[self.next(n)]
    }

    fn keyword(&mut self, kw: &str) -> String {
        kw.chars()
            .map(|c| {
                if self.next(2) == 0 {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect()
    }
}

fn precedence(e: &Ref) -> u8 {
    match e {
        Ref::Or(..) => 1,
        Ref::And(..) => 2,
        Ref::Not(_) => 3,
        Ref::Cmp(..) => 4,
    }
}

/// Renders with parentheses where precedence needs them, and sometimes where it does not.
fn render(e: &Ref, ch: &mut Choices) -> String {
    let operand = |o: &RefOperand, ch: &mut Choices| match o {
        RefOperand::Var(i) => REF_VARS[*i].to_owned(),
        RefOperand::Num(n) if n.is_sign_negative() || ch.next(3) != 0 => n.to_string(),
        RefOperand::Num(n) => format!("+{n}"),
    };
    let child = |c: &Ref, min: u8, ch: &mut Choices| {
        let text = render(c, ch);
        if precedence(c) < min || ch.next(5) == 0 {
            format!("({}{text}{})", ch.space(true), ch.space(true))
        } else {
            text
        }
    };
    match e {
        Ref::Cmp(l, op, r) => {
            let l = operand(l, ch);
            let r = operand(r, ch);
            format!("{l}{}{op}{}{r}", ch.space(true), ch.space(true))
        }
        Ref::Not(inner) => {
            let not = ch.keyword("NOT");
            let inner = child(inner, 3, ch);
            format!("{not}{}{inner}", ch.space(false))
        }
        Ref::And(a, b) | Ref::Or(a, b) => {
            let (kw, min) = if matches!(e, Ref::And(..)) {
                ("AND", 2)
            } else {
                ("OR", 1)
            };
            let a = child(a, min, ch);
            let kw = ch.keyword(kw);
            let b = child(b, min, ch);
            format!("{a}{}{kw}{}{b}", ch.space(false), ch.space(false))
        }
    }
}

fn arb_ref() -> impl Strategy<Value = Ref> {
    let operand = prop_oneof![
        (0usize..4).prop_map(RefOperand::Var),
        prop::sample::select(pool()).prop_map(RefOperand::Num),
    ];
    let op = prop::sample::select(vec!["<", "<=", ">", ">=", "=", "==", "!="]);
    let leaf = (operand.clone(), op, operand).prop_map(|(l, op, r)| Ref::Cmp(l, op, r));
    leaf.prop_recursive(5, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Ref::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Ref::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Ref::Or(Box::new(a), Box::new(b))),
        ]
    })
}

proptest! {
    #[test]
    fn evaluation_agrees_with_the_reference(
        e in arb_ref(),
        bytes in prop::collection::vec(any::<u8>(), 1..64),
        vals in prop::array::uniform4(prop::sample::select(pool())),
    ) {
        let text = render(&e, &mut Choices { bytes, at: 0 });
        prop_assume!(text.len() <= MAX_CONDITION_LEN);
        let condition = Condition::parse(&text)
            .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        let vars = Vars {
            price_change_percent: vals[0],
            price_at_create: vals[1],
            price_at_verify: vals[2],
            price_change: vals[3],
        };
        prop_assert_eq!(condition.eval(&vars), ref_eval(&e, &vals), "{}", text);
        // The canonical form means the same.
        let again = Condition::parse(&condition.to_string()).unwrap();
        prop_assert_eq!(again.eval(&vars), ref_eval(&e, &vals));
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input never panics
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        if let Ok(c) = Condition::parse(&s) {
            prop_assert_eq!(Condition::parse(&c.to_string()).unwrap(), c);
        }
        let _ = ConditionSet::from_json(&s);
        let _ = validate(&s).to_string();
    }

    #[test]
    fn token_soup_never_panics(s in "[()a-zA-Z_ <>=!0-9.+eE-]{0,1100}") {
        match Condition::parse(&s) {
            Ok(c) => prop_assert_eq!(Condition::parse(&c.to_string()).unwrap(), c),
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.contains('\n'));
                prop_assert!(e.position() <= s.len().max(MAX_CONDITION_LEN));
            }
        }
    }

    #[test]
    fn keyword_soup_never_panics(
        words in prop::collection::vec(
            prop::sample::select(vec![
                "NOT", "not", "AND", "OR", "(", ")", "price_change_percent", "price_change",
                ">", ">=", "=", "==", "!=", "<", "-1.5", "+2", "0", "99999999999999999999999999999",
            ]),
            0..300,
        ),
    ) {
        let s = words.join(" ");
        if let Ok(c) = Condition::parse(&s) {
            prop_assert_eq!(Condition::parse(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn json_soup_never_panics(
        entries in prop::collection::vec(("[A-Z]{0,2}", "[ -~]{0,40}"), 0..6),
    ) {
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{}: {}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
            .collect();
        let json = format!("{{{}}}", body.join(", "));
        let from_json = ConditionSet::from_json(&json);
        let report = validate(&json);
        // The validator finds a JSON or parse problem exactly when from_json fails.
        let structural = report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Invalid(_) | Problem::Parse { .. }));
        prop_assert_eq!(from_json.is_err(), structural, "{}", json);
    }
}

/// An option value as the platform or a hostile writer might send it.
#[derive(Debug, Clone)]
enum OptionValue {
    Plain(String),
    /// `{"condition": …}` with extra members before and after it.
    Object(String, Vec<(String, String)>),
    Junk(String),
}

fn arb_option_value() -> impl Strategy<Value = OptionValue> {
    let text = prop_oneof![
        "[ -~]{0,40}",
        prop::sample::select(vec![
            "price_change_percent >= 1.0".to_owned(),
            "price_change_percent < 1.0 AND NOT price_change < -5".to_owned(),
            "1 = 1".to_owned(),
        ]),
    ];
    prop_oneof![
        text.clone().prop_map(OptionValue::Plain),
        (
            text,
            prop::collection::vec(("[a-z]{1,8}", "[ -~]{0,10}"), 0..3)
        )
            .prop_map(|(t, extra)| OptionValue::Object(t, extra)),
        prop::sample::select(vec![
            "1".to_owned(),
            "null".to_owned(),
            "[]".to_owned(),
            "{}".to_owned(),
            r#"{"condition": 5}"#.to_owned(),
            r#"{"label": "x"}"#.to_owned(),
            r#"{"condition": {"condition": "1 = 1"}}"#.to_owned(),
        ])
        .prop_map(OptionValue::Junk),
    ]
}

fn render_value(v: &OptionValue) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    match v {
        OptionValue::Plain(t) => q(t),
        OptionValue::Object(t, extra) => {
            let mut members: Vec<String> = extra
                .iter()
                .filter(|(k, _)| k != "condition")
                .map(|(k, v)| format!("{}: {}", q(k), q(v)))
                .collect();
            members.insert(members.len() / 2, format!("\"condition\": {}", q(t)));
            format!("{{{}}}", members.join(", "))
        }
        OptionValue::Junk(j) => j.clone(),
    }
}

proptest! {
    /// Any mix of the two shapes and junk: never a panic, the validator and `from_json` agree on
    /// structural problems, and an object `{"condition": s}` means exactly what the plain `s`
    /// means (same set, same errors with the same positions).
    #[test]
    fn both_shapes_and_junk_never_panic_and_agree(
        entries in prop::collection::vec(("[A-D]{1}", arb_option_value()), 0..6),
    ) {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let body: Vec<String> =
            entries.iter().map(|(k, v)| format!("{}: {}", q(k), render_value(v))).collect();
        let json = format!("{{{}}}", body.join(", "));
        let from_json = ConditionSet::from_json(&json);
        let report = validate(&json);
        let structural = report
            .problems
            .iter()
            .any(|p| matches!(p, Problem::Invalid(_) | Problem::Parse { .. }));
        prop_assert_eq!(from_json.is_err(), structural, "{}", json);
        // The plain-string twin of the same set.
        let plain: Option<Vec<String>> = entries
            .iter()
            .map(|(k, v)| match v {
                OptionValue::Plain(t) | OptionValue::Object(t, _) => Some(format!("{}: {}", q(k), q(t))),
                OptionValue::Junk(_) => None,
            })
            .collect();
        if let Some(plain) = plain {
            let twin = format!("{{{}}}", plain.join(", "));
            let a = ConditionSet::from_json(&json).map_err(|e| e.to_string());
            let b = ConditionSet::from_json(&twin).map_err(|e| e.to_string());
            prop_assert_eq!(a, b, "{} vs {}", json, twin);
            prop_assert_eq!(validate(&json).to_string(), validate(&twin).to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The validator agrees with brute force over the 0.01 grid
// ---------------------------------------------------------------------------------------------

fn arb_pcp_expr() -> impl Strategy<Value = Expr> {
    // Constants on and off the grid, near each other and at the domain's edge.
    let constant = prop_oneof![
        (-300i64..300).prop_map(|m| Decimal::new(m, 3)),
        (-30i64..30).prop_map(|m| Decimal::new(m, 1)),
        Just(Decimal::new(-100, 0)),
        Just(Decimal::new(-1_000_001, 4)),
    ];
    let leaf = (constant, arb_op(), any::<bool>()).prop_map(|(c, op, flip)| {
        let (var, num) = (Operand::Var(Var::PriceChangePercent), Operand::Number(c));
        if flip {
            Expr::Cmp {
                lhs: num,
                op,
                rhs: var,
            }
        } else {
            Expr::Cmp {
                lhs: var,
                op,
                rhs: num,
            }
        }
    });
    leaf.prop_recursive(3, 8, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..3).prop_map(Expr::And),
            prop::collection::vec(inner, 2..3).prop_map(Expr::Or),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn validator_agrees_with_brute_force(exprs in prop::collection::vec(arb_pcp_expr(), 1..5)) {
        let conditions: Vec<Condition> =
            exprs.into_iter().map(|e| Condition::from_expr(e).unwrap()).collect();
        let names: Vec<String> = (0..conditions.len()).map(|i| format!("O{i}")).collect();
        let json = format!(
            "{{{}}}",
            names
                .iter()
                .zip(&conditions)
                .map(|(n, c)| format!("{n:?}: {:?}", c.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        );

        // Every constant is within [-100.0001, 3]; beyond 3.01 nothing changes.
        let grid: Vec<Decimal> = (-10_000i64..=310).map(|m| Decimal::new(m, 2)).collect();
        let truth: Vec<Vec<bool>> = conditions
            .iter()
            .map(|c| grid.iter().map(|x| c.eval(&Vars { price_change_percent: *x, ..Vars::default() })).collect())
            .collect();
        let mut expected = Vec::new();
        for i in 0..conditions.len() {
            for j in i + 1..conditions.len() {
                if let Some(k) = (0..grid.len()).find(|&k| truth[i][k] && truth[j][k]) {
                    expected.push(format!("overlap {} {} {}", names[i], names[j], grid[k]));
                }
            }
        }
        let mut in_gap = false;
        for k in 0..grid.len() {
            let covered = truth.iter().any(|t| t[k]);
            if !covered && !in_gap {
                expected.push(format!("gap {}", grid[k]));
            }
            in_gap = !covered;
        }

        let got: Vec<String> = validate(&json)
            .problems
            .iter()
            .map(|p| match p {
                Problem::Overlap { first, second, witness } => format!("overlap {first} {second} {witness}"),
                Problem::Gap { witness } => format!("gap {witness}"),
                other => format!("unexpected {other}"),
            })
            .collect();
        prop_assert_eq!(got, expected, "{}", json);
    }
}

// ---------------------------------------------------------------------------------------------
// Vars::new rounds exactly like integer arithmetic
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn percent_matches_integer_half_even(create in 1i64..10_000_000_000, verify in 0i64..20_000_000_000, scale in 0u32..5) {
        // Prices are create / 10^scale and verify / 10^scale.
        let vars = Vars::new(Decimal::new(create, scale), Decimal::new(verify, scale)).unwrap();
        // percent × 100 = (verify − create) × 10000 / create, rounded half to even.
        let num = i128::from(verify - create) * 10_000;
        let den = i128::from(create);
        let (q, r) = (num.div_euclid(den), num.rem_euclid(den));
        let rounded = match (2 * r).cmp(&den) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal if q % 2 == 0 => q,
            std::cmp::Ordering::Equal => q + 1,
        };
        let expected = Decimal::from_i128_with_scale(rounded, 2);
        prop_assert_eq!(vars.price_change_percent, expected);
        prop_assert_eq!(vars.price_change_percent.scale(), 2);
        prop_assert_eq!(vars.price_change, Decimal::new(verify - create, scale));
    }
}
