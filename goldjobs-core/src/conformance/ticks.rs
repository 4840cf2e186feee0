//! Conformance suite of [`PriceTickRepository`].

use super::{ok, unique_code, utc};
use crate::{
    candles_from_ticks, CandleInterval, CandleQuery, PriceTick, PriceTickRepository, TickQuery,
};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

/// Run every behaviour of this suite, [`delete_is_bounded`] included (see its isolation note).
pub async fn run_all(repo: &dyn PriceTickRepository) {
    first_at_or_after(repo).await;
    equal_timestamps(repo).await;
    batch_answers_in_query_order(repo).await;
    latest(repo).await;
    decimals_round_trip(repo).await;
    sources_and_demo_ticks(repo).await;
    candles(repo).await;
    delete_is_bounded(repo).await;
}

fn base() -> DateTime<Utc> {
    utc(2025, 3, 14, 9, 30, 0)
}

fn tick(code: &str, secs: i64, price: Decimal) -> PriceTick {
    PriceTick {
        symbol_code: code.to_owned(),
        price,
        ts: base() + Duration::seconds(secs),
        source: None,
    }
}

fn q(code: &str, secs: i64) -> TickQuery {
    TickQuery {
        symbol_code: code.to_owned(),
        at: base() + Duration::seconds(secs),
        allow_demo: false,
    }
}

fn dec(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

/// The answer is the tick with the smallest `ts >= at`: a tick exactly at `at` counts, later
/// ones are skipped, none after → `None`, unknown symbol → `None`.
pub async fn first_at_or_after(repo: &dyn PriceTickRepository) {
    let s = unique_code();
    let t10 = tick(&s, 10, dec(265_850, 2));
    let t20 = tick(&s, 20, dec(265_900, 2));
    let t30 = tick(&s, 30, dec(265_725, 2));
    // Inserted out of order, in two batches.
    ok(
        repo.insert_ticks(&[t30.clone(), t10.clone()]).await,
        "insert_ticks",
    );
    ok(
        repo.insert_ticks(std::slice::from_ref(&t20)).await,
        "insert_ticks",
    );
    let got = ok(
        repo.first_ticks_at_or_after(&[
            q(&s, 0),
            q(&s, 10),
            q(&s, 11),
            q(&s, 30),
            q(&s, 31),
            q(&unique_code(), 0),
        ])
        .await,
        "first_ticks_at_or_after",
    );
    assert_eq!(
        got,
        vec![
            Some(t10.clone()),
            Some(t10),
            Some(t20),
            Some(t30),
            None,
            None
        ],
        "first tick with ts >= at (inclusive), None after the last tick and for an unknown symbol"
    );
    assert_eq!(
        ok(
            repo.first_ticks_at_or_after(&[]).await,
            "first_ticks_at_or_after(&[])"
        ),
        Vec::<Option<PriceTick>>::new()
    );
}

/// Several ticks with the same `ts`: a query at (or just before) that instant gets one of them,
/// with that `ts`; a query just after skips all of them.
pub async fn equal_timestamps(repo: &dyn PriceTickRepository) {
    let s = unique_code();
    let a = tick(&s, 100, dec(1, 0));
    let b = tick(&s, 100, dec(2, 0));
    let c = tick(&s, 101, dec(3, 0));
    ok(
        repo.insert_ticks(&[a.clone(), b.clone(), c.clone()]).await,
        "insert_ticks",
    );
    let got = ok(
        repo.first_ticks_at_or_after(&[q(&s, 99), q(&s, 100), q(&s, 101)])
            .await,
        "first_ticks_at_or_after",
    );
    for (i, answer) in got.iter().take(2).enumerate() {
        assert!(
            answer.as_ref() == Some(&a) || answer.as_ref() == Some(&b),
            "query {i}: one of the two ticks at the same instant, got {answer:?}"
        );
    }
    assert_eq!(got[2], Some(c), "a query after equal ticks skips them");
}

/// One answer per query, in the order of the queries, also with several symbols and repeated
/// queries.
pub async fn batch_answers_in_query_order(repo: &dyn PriceTickRepository) {
    let s1 = unique_code();
    let s2 = unique_code();
    let a1 = tick(&s1, 5, dec(100, 0));
    let a2 = tick(&s1, 50, dec(101, 0));
    let b1 = tick(&s2, 7, dec(200, 0));
    ok(
        repo.insert_ticks(&[b1.clone(), a2.clone(), a1.clone()])
            .await,
        "insert_ticks",
    );
    let got = ok(
        repo.first_ticks_at_or_after(&[q(&s2, 0), q(&s1, 6), q(&s1, 0), q(&s2, 8), q(&s1, 6)])
            .await,
        "first_ticks_at_or_after",
    );
    assert_eq!(
        got,
        vec![Some(b1), Some(a2.clone()), Some(a1), None, Some(a2)],
        "answers follow the order of the queries"
    );
}

/// `latest_tick` is the tick with the greatest `ts`, whatever the insertion order.
pub async fn latest(repo: &dyn PriceTickRepository) {
    let s = unique_code();
    assert_eq!(
        ok(repo.latest_tick(&s).await, "latest_tick"),
        None,
        "no tick yet"
    );
    let late = tick(&s, 60, dec(7, 0));
    ok(
        repo.insert_ticks(&[
            tick(&s, 10, dec(5, 0)),
            late.clone(),
            tick(&s, 30, dec(6, 0)),
        ])
        .await,
        "insert_ticks",
    );
    assert_eq!(ok(repo.latest_tick(&s).await, "latest_tick"), Some(late));
    ok(repo.insert_ticks(&[]).await, "insert_ticks(&[])");
}

/// `source` round-trips (`None` included); a demo tick (`source = "demo"`) answers a first-tick
/// query only when the query allows demo ticks, else the first real tick after it does (a tick
/// without a source counts as real); `latest_tick` answers whatever came last.
pub async fn sources_and_demo_ticks(repo: &dyn PriceTickRepository) {
    let s = unique_code();
    let with = |secs: i64, price: i64, source: Option<&str>| {
        PriceTick::new(&s, dec(price, 0), base() + Duration::seconds(secs), source)
    };
    let demo = with(10, 1, Some(crate::DEMO_SOURCE));
    let real = with(20, 2, Some("twelvedata"));
    let unknown = with(30, 3, None);
    let last_demo = with(40, 4, Some(crate::DEMO_SOURCE));
    ok(
        repo.insert_ticks(&[
            demo.clone(),
            real.clone(),
            unknown.clone(),
            last_demo.clone(),
        ])
        .await,
        "insert_ticks",
    );
    let got = ok(
        repo.first_ticks_at_or_after(&[
            q(&s, 0),
            q(&s, 0).with_demo(true),
            q(&s, 25),
            q(&s, 35),
            q(&s, 35).with_demo(true),
        ])
        .await,
        "first_ticks_at_or_after",
    );
    assert_eq!(
        got,
        vec![
            Some(real.clone()),
            Some(demo),
            Some(unknown),
            None,
            Some(last_demo.clone())
        ],
        "demo ticks answer only queries that allow them; sources round-trip"
    );
    assert_eq!(
        ok(repo.latest_tick(&s).await, "latest_tick"),
        Some(last_demo)
    );
}

/// Prices keep their value exactly (many digits, small and large values).
pub async fn decimals_round_trip(repo: &dyn PriceTickRepository) {
    let s = unique_code();
    let prices = [
        dec(265_850, 2),               // 2658.50
        dec(1_234, 8),                 // 0.00001234
        dec(9_876_543_210_123_456, 6), // 9876543210.123456
        dec(15_625, 3),                // 15.625
    ];
    let ticks: Vec<PriceTick> = prices
        .iter()
        .enumerate()
        .map(|(i, p)| tick(&s, i as i64, *p))
        .collect();
    ok(repo.insert_ticks(&ticks).await, "insert_ticks");
    let queries: Vec<TickQuery> = (0..prices.len() as i64).map(|i| q(&s, i)).collect();
    let got = ok(
        repo.first_ticks_at_or_after(&queries).await,
        "first_ticks_at_or_after",
    );
    let want: Vec<Option<PriceTick>> = ticks.into_iter().map(Some).collect();
    assert_eq!(got, want, "prices come back with the same value");
}

/// `delete_ticks_before(before, limit)` deletes at most `limit` ticks, only ticks with
/// `ts < before`, and reports how many went.
///
/// **Isolation:** it deletes every tick older than 1971-01-02, whoever wrote it; run it on a
/// store (schema) no concurrent test writes such ticks to. The other behaviours only use 2025.
pub async fn delete_is_bounded(repo: &dyn PriceTickRepository) {
    let s = unique_code();
    let cutoff = utc(1971, 1, 2, 0, 0, 0);
    let old: Vec<PriceTick> = (0..5)
        .map(|i| PriceTick {
            symbol_code: s.clone(),
            price: dec(i + 1, 0),
            ts: utc(1971, 1, 1, 0, 0, i as u32),
            source: None,
        })
        .collect();
    let at_cutoff = PriceTick {
        symbol_code: s.clone(),
        price: dec(10, 0),
        ts: cutoff,
        source: None,
    };
    let after = PriceTick {
        symbol_code: s.clone(),
        price: dec(11, 0),
        ts: cutoff + Duration::seconds(1),
        source: None,
    };
    ok(repo.insert_ticks(&old).await, "insert_ticks");
    ok(
        repo.insert_ticks(&[at_cutoff.clone(), after.clone()]).await,
        "insert_ticks",
    );
    assert_eq!(
        ok(
            repo.delete_ticks_before(cutoff, 0).await,
            "delete_ticks_before(limit 0)"
        ),
        0,
        "limit 0 deletes nothing"
    );
    assert_eq!(
        ok(
            repo.delete_ticks_before(cutoff, 2).await,
            "delete_ticks_before(limit 2)"
        ),
        2,
        "no more than the limit"
    );
    assert_eq!(
        ok(
            repo.delete_ticks_before(cutoff, 100).await,
            "delete_ticks_before(limit 100)"
        ),
        3,
        "the rest of the old ticks"
    );
    assert_eq!(
        ok(
            repo.delete_ticks_before(cutoff, 100).await,
            "delete_ticks_before(again)"
        ),
        0,
        "nothing older is left"
    );
    let first = ok(
        repo.first_ticks_at_or_after(&[TickQuery {
            symbol_code: s.clone(),
            at: utc(1970, 1, 1, 0, 0, 0),
            allow_demo: false,
        }])
        .await,
        "first_ticks_at_or_after",
    );
    assert_eq!(
        first,
        vec![Some(at_cutoff)],
        "a tick at exactly `before` is not older, so it stays"
    );
    assert_eq!(ok(repo.latest_tick(&s).await, "latest_tick"), Some(after));
}

#[cfg(test)]
mod tests {
    use crate::memory::InMemoryTicks;

    #[tokio::test]
    async fn in_memory_ticks_conform() {
        super::run_all(&InMemoryTicks::new()).await;
        super::run_all(&InMemoryTicks::with_retention(1_000)).await;
    }
}

/// Candles: `[from, to)` (a tick at `from` counts, one at `to` does not), UTC-aligned
/// intervals, empty ones omitted, open/close the first/last tick by time, high/low by value
/// (`999.5 < 1000.25`, which text order gets wrong), other symbols and demo ticks as recorded,
/// an unknown symbol → no candles; equal to [`candles_from_ticks`] for every interval.
pub async fn candles(repo: &dyn PriceTickRepository) {
    let s = unique_code();
    let other = unique_code();
    let start = utc(2025, 3, 14, 10, 0, 0);
    let at = |secs: i64, p: &str| PriceTick {
        symbol_code: s.clone(),
        price: p.parse().unwrap_or_default(),
        ts: start + Duration::seconds(secs),
        source: None,
    };
    let mut demo = at(125, "1000.00");
    demo.source = Some(crate::DEMO_SOURCE.to_owned());
    let ticks = vec![
        at(-1, "5"),
        at(0, "999.5"),
        at(10, "1000.25"),
        at(20, "998.125"),
        at(59, "999.90"),
        // 10:01 has no ticks; 10:02 has three (one of the demo feed).
        at(121, "1001"),
        demo,
        at(179, "999.99"),
        at(3600, "1500"),
        at(3601, "1600"),
    ];
    // Inserted newest first, so insertion order is not time order.
    let mut shuffled = ticks.clone();
    shuffled.reverse();
    let noise = PriceTick {
        symbol_code: other.clone(),
        price: Decimal::new(1, 0),
        ts: start + Duration::seconds(30),
        source: None,
    };
    shuffled.push(noise);
    ok(repo.insert_ticks(&shuffled).await, "insert_ticks");
    let to = start + Duration::seconds(3600);
    for interval in CandleInterval::ALL {
        let query = CandleQuery {
            symbol_code: s.clone(),
            interval,
            from: start,
            to,
        };
        let got = ok(repo.candles(&query).await, "candles");
        let want = candles_from_ticks(
            interval,
            ticks
                .iter()
                .filter(|t| t.ts >= start && t.ts < to)
                .map(|t| (t.ts, t.price)),
        );
        assert_eq!(got, want, "candles of {interval}");
    }
    let minute = CandleQuery {
        symbol_code: s.clone(),
        interval: CandleInterval::OneMinute,
        from: start,
        to,
    };
    let got = ok(repo.candles(&minute).await, "candles");
    assert_eq!(got.len(), 2, "an empty minute is omitted: {got:?}");
    let first = &got[0];
    assert_eq!(first.t, start);
    assert_eq!(
        first.ticks, 4,
        "the tick at `from` counts, the one before does not"
    );
    assert_eq!(first.open, dec(9995, 1));
    assert_eq!(first.close, dec(99990, 2));
    assert_eq!(first.high, dec(100_025, 2), "high by value, not by text");
    assert_eq!(first.low, dec(998_125, 3));
    assert_eq!(got[1].t, start + Duration::seconds(120));
    assert_eq!(got[1].ticks, 3, "demo ticks are charted too");
    assert_eq!(got[1].high, dec(1001, 0));
    let hour = CandleQuery {
        interval: CandleInterval::OneHour,
        to: start + Duration::seconds(7200),
        ..minute.clone()
    };
    let got = ok(repo.candles(&hour).await, "candles");
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[1].t, got[1].open, got[1].close, got[1].ticks),
        (to, dec(1500, 0), dec(1600, 0), 2)
    );
    let unknown = CandleQuery {
        symbol_code: unique_code(),
        ..minute
    };
    assert!(ok(repo.candles(&unknown).await, "candles").is_empty());
}

/// The suite catches a classic mistake: `ts > at` instead of `ts >= at`.
#[cfg(test)]
mod catches_bugs {
    use crate::memory::InMemoryTicks;
    use crate::{Candle, CandleQuery, PriceTick, PriceTickRepository, Result, TickQuery};
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    struct Exclusive(InMemoryTicks);

    #[async_trait]
    impl PriceTickRepository for Exclusive {
        async fn insert_ticks(&self, ticks: &[PriceTick]) -> Result<()> {
            self.0.insert_ticks(ticks).await
        }
        async fn first_ticks_at_or_after(
            &self,
            queries: &[TickQuery],
        ) -> Result<Vec<Option<PriceTick>>> {
            let shifted: Vec<TickQuery> = queries
                .iter()
                .map(|q| TickQuery {
                    symbol_code: q.symbol_code.clone(),
                    at: q.at + chrono::Duration::nanoseconds(1),
                    allow_demo: false,
                })
                .collect();
            self.0.first_ticks_at_or_after(&shifted).await
        }
        async fn latest_tick(&self, symbol_code: &str) -> Result<Option<PriceTick>> {
            self.0.latest_tick(symbol_code).await
        }
        async fn delete_ticks_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
            self.0.delete_ticks_before(before, limit).await
        }
        async fn candles(&self, query: &CandleQuery) -> Result<Vec<Candle>> {
            self.0.candles(query).await
        }
    }

    #[tokio::test]
    #[should_panic(expected = "inclusive")]
    async fn exclusive_bound_fails() {
        super::first_at_or_after(&Exclusive(InMemoryTicks::new())).await;
    }
}
