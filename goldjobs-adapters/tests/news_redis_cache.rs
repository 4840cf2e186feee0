//! `RedisNewsCache` against a real Redis (`GOLDJOBS_TEST_REDIS_URL`).
//!
//! Unset → the tests print why and pass, unless `GOLDJOBS_REQUIRE_SERVICES=1`, which makes an
//! unset or unreachable Redis a failure. Every test uses its own random key prefix and deletes
//! what it knows it wrote; nothing else is touched (no FLUSH, no KEYS).
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use goldjobs_adapters::redis::news_cache::RedisNewsCache;
use goldjobs_core::conformance::{news_cache, tokio_sleep};
use goldjobs_core::{Error, NewsCache};
use rand::Rng;
use redis::aio::ConnectionManager;
use std::time::Duration;

fn required() -> bool {
    std::env::var("GOLDJOBS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A connection, or `None` (test skipped) when Redis is not configured and not required.
async fn connect() -> Option<ConnectionManager> {
    let url = match std::env::var("GOLDJOBS_TEST_REDIS_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            assert!(
                !required(),
                "GOLDJOBS_REQUIRE_SERVICES=1 but GOLDJOBS_TEST_REDIS_URL is not set"
            );
            eprintln!("skipped: GOLDJOBS_TEST_REDIS_URL is not set");
            return None;
        }
    };
    let client = redis::Client::open(url.as_str())
        .unwrap_or_else(|e| panic!("GOLDJOBS_TEST_REDIS_URL is not a Redis URL: {e}"));
    let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client)).await;
    match conn {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            assert!(
                !required(),
                "Redis at GOLDJOBS_TEST_REDIS_URL is unreachable: {e}"
            );
            eprintln!("skipped: Redis at GOLDJOBS_TEST_REDIS_URL is unreachable: {e}");
            None
        }
        Err(_) => {
            assert!(
                !required(),
                "Redis at GOLDJOBS_TEST_REDIS_URL did not answer in 5 s"
            );
            eprintln!("skipped: Redis at GOLDJOBS_TEST_REDIS_URL did not answer in 5 s");
            None
        }
    }
}

fn prefix() -> String {
    format!("goldjobs-test-{:016x}:", rand::thread_rng().gen::<u64>())
}

async fn del(conn: &ConnectionManager, keys: &[String]) {
    let mut c = conn.clone();
    let _: i64 = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut c)
        .await
        .unwrap();
}

async fn get_raw(conn: &ConnectionManager, key: &str) -> Option<Vec<u8>> {
    let mut c = conn.clone();
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn conforms() {
    let Some(conn) = connect().await else { return };
    let cache = RedisNewsCache::new(conn.clone(), prefix());
    news_cache::run_all(&cache, &tokio_sleep).await;
    // the suite's lists carry a 60 s TTL and expire on their own; the counter does not
    del(&conn, &[cache.version_key().to_owned()]).await;
}

#[tokio::test]
async fn key_layout_version_and_ttl() {
    let Some(conn) = connect().await else { return };
    let p = prefix();
    let cache = RedisNewsCache::new(conn.clone(), p.clone());
    assert_eq!(cache.version_key(), format!("{p}news:version"));

    let body = Bytes::from_static(br#"{"articles":[]}"#);
    cache
        .put_list("list:all:20", body.clone(), Duration::from_secs(30))
        .await
        .unwrap();
    // before any invalidation the version is 0
    let v0 = format!("{p}news:v0:list:all:20");
    assert_eq!(get_raw(&conn, &v0).await.as_deref(), Some(&body[..]));
    let mut c = conn.clone();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&v0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 30_000, "{pttl}");

    cache.invalidate_lists().await.unwrap();
    let version: Option<i64> = redis::cmd("GET")
        .arg(cache.version_key())
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(version, Some(1));
    assert_eq!(cache.get_list("list:all:20").await.unwrap(), None);

    cache
        .put_list(
            "list:all:20",
            Bytes::from_static(b"new"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let v1 = format!("{p}news:v1:list:all:20");
    assert_eq!(get_raw(&conn, &v1).await.as_deref(), Some(&b"new"[..]));
    assert_eq!(
        cache.get_list("list:all:20").await.unwrap().as_deref(),
        Some(&b"new"[..])
    );

    // binary-safe values
    let binary = Bytes::from(vec![0u8, 255, 10, 13, b'\'', b'"', 0xc3]);
    cache
        .put_list("list:cat:gold:5", binary.clone(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        cache.get_list("list:cat:gold:5").await.unwrap(),
        Some(binary)
    );

    // a zero TTL stores nothing
    cache
        .put_list("list:zero", Bytes::from_static(b"x"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(cache.get_list("list:zero").await.unwrap(), None);

    del(
        &conn,
        &[
            v0,
            v1,
            format!("{p}news:v1:list:cat:gold:5"),
            cache.version_key().to_owned(),
        ],
    )
    .await;
}

#[tokio::test]
async fn separate_prefixes_do_not_see_each_other() {
    let Some(conn) = connect().await else { return };
    let a = RedisNewsCache::new(conn.clone(), prefix());
    let b = RedisNewsCache::new(conn.clone(), prefix());
    a.put_list("k", Bytes::from_static(b"a"), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(b.get_list("k").await.unwrap(), None);
    b.invalidate_lists().await.unwrap();
    assert_eq!(a.get_list("k").await.unwrap().as_deref(), Some(&b"a"[..]));
    let a_key = a.version_key().replace("news:version", "news:v0:k");
    del(
        &conn,
        &[
            a_key,
            a.version_key().to_owned(),
            b.version_key().to_owned(),
        ],
    )
    .await;
}

#[tokio::test]
async fn redis_errors_map_to_unavailable() {
    let Some(conn) = connect().await else { return };
    let p = prefix();
    let cache = RedisNewsCache::new(conn.clone(), p.clone());
    // make the version key a hash: every script's GET on it fails with WRONGTYPE
    let mut c = conn.clone();
    let _: i64 = redis::cmd("HSET")
        .arg(cache.version_key())
        .arg("f")
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    for e in [
        cache.get_list("k").await.unwrap_err(),
        cache
            .put_list("k", Bytes::from_static(b"x"), Duration::from_secs(5))
            .await
            .unwrap_err(),
        cache.invalidate_lists().await.unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                Error::Unavailable {
                    backend: "redis",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("news cache"), "{e}");
    }
    del(&conn, &[cache.version_key().to_owned()]).await;
}
