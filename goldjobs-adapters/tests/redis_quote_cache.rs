//! The Redis quote cache against a real Redis (`GOLDJOBS_TEST_REDIS_URL`).
//!
//! Skipped with a printed reason when the variable is unset, unless
//! `GOLDJOBS_REQUIRE_SERVICES=1` (then an unset or unreachable Redis fails). Every test uses its
//! own random key prefix and deletes only its own keys.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use goldjobs_adapters::redis::{connect, RedisQuoteCache};
use goldjobs_core::{Quote, QuoteCache};
use redis::aio::ConnectionManager;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

async fn redis_or_skip(test: &str) -> Option<ConnectionManager> {
    let require = std::env::var("GOLDJOBS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let url = match std::env::var("GOLDJOBS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !require,
                "{test}: GOLDJOBS_TEST_REDIS_URL is unset but GOLDJOBS_REQUIRE_SERVICES=1"
            );
            eprintln!("{test}: skipped, GOLDJOBS_TEST_REDIS_URL is unset");
            return None;
        }
    };
    match connect(&url).await {
        Ok(conn) => Some(conn),
        Err(e) => {
            assert!(!require, "{test}: Redis unreachable: {e}");
            eprintln!("{test}: skipped, Redis unreachable: {e}");
            None
        }
    }
}

fn prefix() -> String {
    format!("goldjobs-test:{:016x}:", rand::random::<u64>())
}

fn quote(code: &str, price: &str, change: &str, pct: &str) -> Quote {
    Quote {
        symbol_code: code.to_owned(),
        price: Decimal::from_str(price).unwrap(),
        change: Decimal::from_str(change).unwrap(),
        change_percent: Decimal::from_str(pct).unwrap(),
        timestamp: Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(123_456_789),
        source: None,
    }
}

async fn cleanup(conn: &mut ConnectionManager, cache: &RedisQuoteCache, codes: &[&str]) {
    let keys: Vec<String> = codes.iter().map(|c| cache.key(c)).collect();
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn key_shape_fields_and_ttl() {
    let Some(mut conn) = redis_or_skip("key_shape_fields_and_ttl").await else {
        return;
    };
    let prefix = prefix();
    let cache = RedisQuoteCache::new(conn.clone(), prefix.clone());
    assert_eq!(cache.key("XAUUSD"), format!("{prefix}quote:XAUUSD"));
    assert_eq!(
        RedisQuoteCache::new(conn.clone(), "").key("XAUUSD"),
        "quote:XAUUSD"
    );
    let quotes = vec![
        quote("XAUUSD", "2658.50", "28.30", "1.08"),
        quote("XAGUSD", "31.245", "-0.120", "-0.38"),
    ];
    cache
        .put_quotes(&quotes, Duration::from_secs(5))
        .await
        .unwrap();
    let key = format!("{prefix}quote:XAUUSD");
    let hash: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let expected: HashMap<String, String> = [
        ("symbol_code", "XAUUSD"),
        ("price", "2658.50"),
        ("change", "28.30"),
        ("change_percent", "1.08"),
        ("timestamp", "2026-11-27T14:00:00.123456789Z"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(hash, expected);
    for code in ["XAUUSD", "XAGUSD"] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(cache.key(code))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(pttl > 0 && pttl <= 5_000, "PTTL {pttl}");
    }
    let kind: String = redis::cmd("TYPE")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kind, "hash");
    cleanup(&mut conn, &cache, &["XAUUSD", "XAGUSD"]).await;
}

#[tokio::test]
async fn round_trip_is_exact_and_in_order() {
    let Some(mut conn) = redis_or_skip("round_trip_is_exact_and_in_order").await else {
        return;
    };
    let cache = RedisQuoteCache::new(conn.clone(), prefix());
    let quotes = vec![
        quote("XAUUSD", "2658.50000", "28.30000", "1.07596"),
        quote("EURUSD", "1.08345", "-0.00001", "-0.00092"),
        quote("BTCUSD", "97000.12000000", "0", "0.000"),
    ];
    cache
        .put_quotes(&quotes, Duration::from_secs(5))
        .await
        .unwrap();
    let codes: Vec<String> = ["BTCUSD", "NOPE", "XAUUSD", "EURUSD"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let got = cache.get_quotes(&codes).await.unwrap();
    assert_eq!(
        got,
        vec![quotes[2].clone(), quotes[0].clone(), quotes[1].clone()]
    );
    assert_eq!(got[0].price.to_string(), "97000.12000000");
    assert_eq!(got[2].change.to_string(), "-0.00001");
    assert!(cache.get_quotes(&[]).await.unwrap().is_empty());
    cleanup(&mut conn, &cache, &["XAUUSD", "EURUSD", "BTCUSD"]).await;
}

#[tokio::test]
async fn malformed_hashes_are_skipped_and_expired_ones_missing() {
    let Some(mut conn) =
        redis_or_skip("malformed_hashes_are_skipped_and_expired_ones_missing").await
    else {
        return;
    };
    let cache = RedisQuoteCache::new(conn.clone(), prefix());
    cache
        .put_quotes(&[quote("XAUUSD", "1", "0", "0")], Duration::from_secs(5))
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(cache.key("BADONE"))
        .arg("symbol_code")
        .arg("BADONE")
        .arg("price")
        .arg("not a number")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg(cache.key("BADONE"))
        .arg(5_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    cache
        .put_quotes(&[quote("SHORT", "2", "0", "0")], Duration::from_millis(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let codes: Vec<String> = ["BADONE", "SHORT", "XAUUSD"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let got = cache.get_quotes(&codes).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].symbol_code, "XAUUSD");
    cleanup(&mut conn, &cache, &["XAUUSD", "BADONE", "SHORT"]).await;
}

#[tokio::test]
async fn survives_client_kill_of_its_own_connection() {
    let Some(mut admin) = redis_or_skip("survives_client_kill_of_its_own_connection").await else {
        return;
    };
    let url = std::env::var("GOLDJOBS_TEST_REDIS_URL").unwrap();
    // The cache gets its own manager, so that we kill exactly its connection.
    let mut conn = connect(&url).await.unwrap();
    let cache = RedisQuoteCache::new(conn.clone(), prefix());
    let q = [quote("XAUUSD", "2658.50", "1", "0.1")];
    cache.put_quotes(&q, Duration::from_secs(5)).await.unwrap();
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut conn)
        .await
        .unwrap();
    let admin_id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_ne!(id, admin_id);
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // The next calls go through (the cache retries once on a dropped connection).
    cache.put_quotes(&q, Duration::from_secs(5)).await.unwrap();
    let got = cache.get_quotes(&["XAUUSD".to_owned()]).await.unwrap();
    assert_eq!(got, q.to_vec());
    let new_id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_ne!(new_id, id, "a new connection replaced the killed one");
    cleanup(&mut admin, &cache, &["XAUUSD"]).await;
}

#[tokio::test]
async fn conformance_suite() {
    let Some(conn) = redis_or_skip("conformance_suite").await else {
        return;
    };
    let cache = RedisQuoteCache::new(conn, prefix());
    goldjobs_core::conformance::quote_cache::run_all(
        &cache,
        &goldjobs_core::conformance::tokio_sleep,
    )
    .await;
}
