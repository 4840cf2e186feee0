//! Benchmarks of the condition language (`goldjobs::condition`).
//!
//! ```text
//! cargo bench --bench conditions -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! `eval/baseline_native` is the same comparison written directly in Rust over `Decimal`, the
//! floor any interpreter of the condition could reach.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use goldjobs::condition::{validate, Condition, ConditionSet, Vars};
use rust_decimal::Decimal;

/// The platform's shape (guide: *The condition object*).
const SEED: &str = r#"{"A": {"condition": "price_change_percent >= 1.0"},
 "B": {"condition": "price_change_percent > 0 AND price_change_percent < 1.0"},
 "C": {"condition": "price_change_percent >= -0.5 AND price_change_percent <= 0"},
 "D": {"condition": "price_change_percent < -0.5"}}"#;

const CONDITION_B: &str = "price_change_percent > 0 AND price_change_percent < 1.0";

fn price(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.bench_function("condition", |b| {
        b.iter(|| Condition::parse(black_box(CONDITION_B)).unwrap())
    });
    // The largest input accepted: 1 KiB of ORed comparisons.
    let mut big = String::from("price_change_percent > 0");
    while big.len() + 28 <= 1024 {
        big.push_str(" OR price_change_percent > 1");
    }
    g.bench_function("condition_1kib", |b| {
        b.iter(|| Condition::parse(black_box(&big)).unwrap())
    });
    g.bench_function("set_4_options", |b| {
        b.iter(|| ConditionSet::from_json(black_box(SEED)).unwrap())
    });
    g.bench_function("validate_4_options", |b| {
        b.iter(|| assert!(validate(black_box(SEED)).is_ok()))
    });
    g.finish();
}

fn eval(c: &mut Criterion) {
    let condition = Condition::parse(CONDITION_B).unwrap();
    // 2650.00 → 2660.00 is +0.38 %: condition B is true, both comparisons are evaluated.
    let vars = Vars::new(price("2650.00"), price("2660.00")).unwrap();
    let zero = Decimal::ZERO;
    let one = price("1.0");

    let mut g = c.benchmark_group("eval");
    g.bench_function("condition_and_of_2", |b| {
        b.iter(|| black_box(&condition).eval(black_box(&vars)))
    });
    g.bench_function("baseline_native", |b| {
        b.iter(|| {
            let v = black_box(&vars);
            v.price_change_percent > black_box(zero) && v.price_change_percent < black_box(one)
        })
    });
    let (create, verify) = (price("2650.00"), price("2660.00"));
    g.bench_function("vars_new", |b| {
        b.iter(|| Vars::new(black_box(create), black_box(verify)))
    });
    g.finish();

    let set = ConditionSet::from_json(SEED).unwrap();
    let mut g = c.benchmark_group("choose_4_options");
    for (name, verify) in [("first_A", "2700.00"), ("last_D", "2600.00")] {
        let vars = Vars::new(price("2650.00"), price(verify)).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| black_box(&set).choose(black_box(&vars)))
        });
    }
    g.finish();
}

criterion_group!(benches, parse, eval);
criterion_main!(benches);
