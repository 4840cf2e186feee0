//! The in-memory adapters under real parallelism (multi-threaded runtime) and paused time.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::*;
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;

fn article(n: u32) -> NewsArticle {
    let t = Utc.timestamp_opt(1_700_000_000 + i64::from(n), 0).unwrap();
    NewsArticle {
        id: format!("id-{n}"),
        title: format!("t{n}"),
        summary: String::new(),
        content: None,
        url: format!("https://x.test/{n}"),
        canonical_url: format!("https://x.test/{n}"),
        source: "s".into(),
        category: if n.is_multiple_of(2) { "gold" } else { "forex" }.into(),
        thumbnail_url: None,
        published_at: t,
        related_symbols: vec![],
        created_at: t,
        story_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn news_parallel_inserts_store_each_once() {
    let repo = Arc::new(InMemoryNews::new());
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let repo = repo.clone();
            // Overlapping windows of 100 articles out of 0..450.
            let batch: Vec<_> = (i * 50..i * 50 + 100).map(article).collect();
            tokio::spawn(async move { repo.insert_articles(&batch).await.unwrap() })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 450);
    assert_eq!(repo.len(), 450);
    let gold = repo.latest_articles(Some("gold"), 1000).await.unwrap();
    assert_eq!(gold.len(), 225);
    assert!(gold
        .windows(2)
        .all(|w| w[0].published_at > w[1].published_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_race_has_one_winner() {
    let clock = Arc::new(ManualClock::new(Utc.timestamp_opt(0, 0).unwrap()));
    let lease = Arc::new(InMemoryLease::new(clock));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let lease = lease.clone();
            tokio::spawn(async move {
                lease
                    .acquire("leader", &format!("h{i}"), Duration::from_secs(10))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        let st = t.await.unwrap();
        winners += usize::from(st.is_leader);
        assert_eq!(st.term, 1);
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ticks_parallel_inserts_all_land() {
    let repo = Arc::new(InMemoryTicks::new());
    let base = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let tasks: Vec<_> = (0..8i64)
        .map(|w| {
            let repo = repo.clone();
            tokio::spawn(async move {
                for chunk in 0..10i64 {
                    let ticks: Vec<PriceTick> = (0..100i64)
                        .map(|k| PriceTick {
                            symbol_code: "XAUUSD".into(),
                            price: Decimal::new(w, 0),
                            ts: base + chrono::Duration::seconds(chunk * 100 + k),
                            source: None,
                        })
                        .collect();
                    repo.insert_ticks(&ticks).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(repo.len(), 8_000);
    let q = TickQuery {
        symbol_code: "XAUUSD".into(),
        at: base + chrono::Duration::seconds(500),
        allow_demo: false,
    };
    let got = repo.first_ticks_at_or_after(&[q]).await.unwrap();
    assert_eq!(
        got[0].as_ref().map(|t| t.ts),
        Some(base + chrono::Duration::seconds(500))
    );
    let mut deleted = 0;
    loop {
        let n = repo
            .delete_ticks_before(base + chrono::Duration::seconds(500), 333)
            .await
            .unwrap();
        assert!(n <= 333);
        if n == 0 {
            break;
        }
        deleted += n;
    }
    assert_eq!(deleted, 4_000);
    assert_eq!(repo.len(), 4_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_tokens_moving_keeps_one_owner_per_token() {
    let repo = Arc::new(InMemoryDeviceTokens::new());
    let tasks: Vec<_> = (0..8)
        .map(|u| {
            let repo = repo.clone();
            tokio::spawn(async move {
                for t in 0..50 {
                    let tok = DeviceToken {
                        user_id: format!("u{u}"),
                        token: format!("tok{t}"),
                        platform: "ios".into(),
                    };
                    repo.register_token(&tok).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let users: Vec<String> = (0..8).map(|u| format!("u{u}")).collect();
    let all = repo.tokens_for_users(&users).await.unwrap();
    assert_eq!(all.len(), 50, "each token listed under exactly one user");
    assert_eq!(repo.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broadcaster_keeps_order_across_threads() {
    let hub = LocalBroadcaster::with_capacity(2_000);
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let mut rx = hub.subscribe();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while seen.len() < 1_000 {
                    let m = rx.recv().await.unwrap();
                    seen.push(u16::from_be_bytes([m.payload[0], m.payload[1]]));
                }
                seen
            })
        })
        .collect();
    for i in 0..1_000u16 {
        let m = Broadcast {
            topic: Topic::All,
            payload: bytes::Bytes::copy_from_slice(&i.to_be_bytes()),
        };
        hub.publish(&[m]).await.unwrap();
    }
    for r in receivers {
        assert_eq!(r.await.unwrap(), (0..1_000).collect::<Vec<u16>>());
    }
}

#[tokio::test(start_paused = true)]
async fn quote_expires_exactly_ttl_after_write() {
    let cache = InMemoryQuoteCache::new();
    let q = Quote {
        symbol_code: "XAUUSD".into(),
        price: Decimal::new(265_850, 2),
        change: Decimal::ZERO,
        change_percent: Decimal::ZERO,
        timestamp: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        source: None,
    };
    let codes = ["XAUUSD".to_owned()];
    cache
        .put_quotes(std::slice::from_ref(&q), Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(4_999)).await;
    assert_eq!(cache.get_quotes(&codes).await.unwrap(), vec![q.clone()]);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(cache.get_quotes(&codes).await.unwrap().is_empty());
    assert!(cache.is_empty(), "expired entry dropped on read");
    cache
        .put_quotes(std::slice::from_ref(&q), Duration::ZERO)
        .await
        .unwrap();
    assert!(
        cache.get_quotes(&codes).await.unwrap().is_empty(),
        "zero ttl"
    );
}

#[tokio::test(start_paused = true)]
async fn news_cache_expiry_and_invalidation() {
    let cache = InMemoryNewsCache::new();
    let v = bytes::Bytes::from_static(b"[]");
    cache
        .put_list("k", v.clone(), Duration::from_secs(300))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(299)).await;
    assert_eq!(cache.get_list("k").await.unwrap(), Some(v.clone()));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cache.get_list("k").await.unwrap(), None);
    cache
        .put_list("k", v.clone(), Duration::from_secs(300))
        .await
        .unwrap();
    cache.invalidate_lists().await.unwrap();
    assert_eq!(cache.version(), 1);
    assert_eq!(cache.get_list("k").await.unwrap(), None);
    cache
        .put_list("k", v.clone(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        cache.get_list("k").await.unwrap(),
        None,
        "zero ttl stores nothing"
    );
}

#[tokio::test]
async fn backend_bundles_working_ports() {
    let b = InMemoryBackend::new();
    assert_eq!(b.symbols.active_symbols().await.unwrap().len(), 6);
    let mut rx = b.hub.subscribe();
    let m = Broadcast {
        topic: Topic::Symbol("XAUUSD".into()),
        payload: bytes::Bytes::from_static(b"{}"),
    };
    b.broadcaster
        .publish(std::slice::from_ref(&m))
        .await
        .unwrap();
    assert_eq!(rx.recv().await.unwrap(), m);
    assert!(
        b.lease
            .acquire("j", "me", Duration::from_secs(1))
            .await
            .unwrap()
            .is_leader
    );
    b.notifier
        .notify(&Notification {
            user_id: "u".into(),
            title: "t".into(),
            body: "b".into(),
            data: Default::default(),
            delivery_id: None,
        })
        .await
        .unwrap();
}
