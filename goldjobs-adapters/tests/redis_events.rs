//! `RedisEventBus` against a real Redis (`GOLDJOBS_TEST_REDIS_URL`).
//!
//! Unset → the tests print why and pass, unless `GOLDJOBS_REQUIRE_SERVICES=1`, which makes an
//! unset or unreachable Redis a failure. Every test uses its own random channel and instance ids,
//! so tests running at the same time (here or in other crates) do not see each other's messages;
//! the reconnect test kills only the connection carrying its own client name.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use goldjobs_adapters::redis::events::{
    encode_envelope, EventBusStats, RedisEventBus, RedisEventBusConfig, RedisEventBusHandle,
};
use goldjobs_core::memory::LocalBroadcaster;
use goldjobs_core::{Broadcast, Broadcaster, Topic};
use rand::Rng;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;

/// Upper bound for anything to arrive; generous because the machine is shared.
const PATIENCE: Duration = Duration::from_secs(15);

fn required() -> bool {
    std::env::var("GOLDJOBS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A client and an admin connection, or `None` (test skipped) when Redis is not configured and
/// not required.
async fn redis() -> Option<(redis::Client, ConnectionManager)> {
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
    match tokio::time::timeout(
        Duration::from_secs(5),
        ConnectionManager::new(client.clone()),
    )
    .await
    {
        Ok(Ok(admin)) => Some((client, admin)),
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

fn random_tag() -> String {
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

struct Node {
    bus: RedisEventBus,
    handle: RedisEventBusHandle,
    rx: Receiver<Broadcast>,
    id: String,
}

async fn node(client: &redis::Client, id: &str, channel: &str) -> Node {
    let local = LocalBroadcaster::with_capacity(1024);
    let rx = local.subscribe();
    let config = RedisEventBusConfig::new(id)
        .with_channel(channel)
        .with_reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500));
    let (bus, handle) = RedisEventBus::start_with_config(client.clone(), config, Arc::new(local))
        .await
        .unwrap();
    Node {
        bus,
        handle,
        rx,
        id: id.to_owned(),
    }
}

/// Two nodes `a` and `b` on a fresh channel.
async fn pair(client: &redis::Client) -> (String, Node, Node) {
    let tag = random_tag();
    let channel = format!("goldjobs-test:{tag}:events");
    let a = node(client, &format!("test-{tag}-a"), &channel).await;
    let b = node(client, &format!("test-{tag}-b"), &channel).await;
    (channel, a, b)
}

fn msg(i: usize) -> Broadcast {
    let topic = if i.is_multiple_of(3) {
        Topic::All
    } else {
        Topic::Symbol(
            if i.is_multiple_of(2) {
                "XAUUSD"
            } else {
                "XAGUSD"
            }
            .to_owned(),
        )
    };
    Broadcast {
        topic,
        payload: Bytes::from(format!(
            r#"{{"type":"price_update","payload":{{"seq":{i}}}}}"#
        )),
    }
}

fn sentinel(tag: &str) -> Broadcast {
    Broadcast {
        topic: Topic::All,
        payload: Bytes::from(format!(r#"{{"sentinel":"{tag}"}}"#)),
    }
}

async fn next(rx: &mut Receiver<Broadcast>) -> Broadcast {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("no message arrived in time")
        .expect("local hub closed or lagged")
}

/// The next `n` messages.
async fn take(rx: &mut Receiver<Broadcast>, n: usize) -> Vec<Broadcast> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(next(rx).await);
    }
    got
}

/// Poll the bus counters until `pred` holds.
async fn wait_stats(bus: &RedisEventBus, what: &str, pred: impl Fn(&EventBusStats) -> bool) {
    let poll = async {
        while !pred(&bus.stats()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(PATIENCE, poll).await.is_err() {
        panic!("timed out waiting for {what}; stats {:?}", bus.stats());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_reaches_each_instance_exactly_once_in_order() {
    let Some((client, _admin)) = redis().await else {
        return;
    };
    let (_channel, mut a, mut b) = pair(&client).await;

    let sent: Vec<Broadcast> = (0..60).map(msg).collect();
    for batch in sent.chunks(7) {
        a.bus.publish(batch).await.unwrap();
    }
    // Fence: a message after everything else. If a duplicate had been delivered, the message
    // read after the 60 would not be the fence (each hub keeps publish order).
    let fence = sentinel("a-done");
    a.bus.publish(std::slice::from_ref(&fence)).await.unwrap();

    assert_eq!(take(&mut a.rx, 60).await, sent, "a's own hub, in order");
    assert_eq!(next(&mut a.rx).await, fence, "a delivered nothing twice");
    assert_eq!(take(&mut b.rx, 60).await, sent, "relayed to b, in order");
    assert_eq!(next(&mut b.rx).await, fence, "b relayed nothing twice");

    // And the other way round.
    let from_b: Vec<Broadcast> = (100..110).map(msg).collect();
    b.bus.publish(&from_b).await.unwrap();
    let fence_b = sentinel("b-done");
    b.bus.publish(std::slice::from_ref(&fence_b)).await.unwrap();
    assert_eq!(take(&mut a.rx, 10).await, from_b);
    assert_eq!(next(&mut a.rx).await, fence_b);
    assert_eq!(take(&mut b.rx, 10).await, from_b);
    assert_eq!(next(&mut b.rx).await, fence_b);

    // a saw its own 61 messages come back on the channel and skipped them. (A counter moves
    // just after the local hub took the message, so wait for it.)
    wait_stats(&a.bus, "a's counters", |s| {
        s.skipped_own == 61 && s.relayed == 11
    })
    .await;
    wait_stats(&b.bus, "b's counters", |s| {
        s.skipped_own == 11 && s.relayed == 61
    })
    .await;
    let (sa, sb) = (a.bus.stats(), b.bus.stats());
    assert_eq!((sa.published, sa.publish_errors, sa.relayed), (61, 0, 11));
    assert_eq!((sb.published, sb.publish_errors, sb.relayed), (11, 0, 61));
    assert_eq!(sa.dropped_malformed + sb.dropped_malformed, 0);
    assert_eq!((sa.subscriptions, sb.subscriptions), (1, 1));

    a.handle.shutdown().await;
    b.handle.shutdown().await;
    assert!(a.id != b.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_dropped_and_counted() {
    let Some((client, mut admin)) = redis().await else {
        return;
    };
    let (channel, a, mut b) = pair(&client).await;

    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"hello".to_vec(),
        br#"{"origin":"x","topic":"all","payload":"{}"}"#.to_vec(),
        b"GJE1".to_vec(),
        b"GJE1\x05ab".to_vec(),
        b"GJE1\x01z\x09{}".to_vec(),
        b"GJE1\x01\xff\x00{}".to_vec(),
        vec![0xff; 64],
    ];
    for frame in &garbage {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(frame.as_slice())
            .query_async(&mut admin)
            .await
            .unwrap();
    }
    // A well-formed frame from a third instance published raw is relayed by both.
    let foreign = msg(7);
    let frame = encode_envelope("someone-else", &foreign).unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(frame.as_ref())
        .query_async(&mut admin)
        .await
        .unwrap();
    let fence = sentinel("after-garbage");
    a.bus.publish(std::slice::from_ref(&fence)).await.unwrap();

    assert_eq!(next(&mut b.rx).await, foreign);
    assert_eq!(next(&mut b.rx).await, fence);
    // Frames on one channel arrive in order: when the fence was relayed, all garbage was seen.
    let n = garbage.len() as u64;
    assert_eq!(b.bus.stats().dropped_malformed, n);
    wait_stats(&b.bus, "b to count the relays", |s| s.relayed == 2).await;
    assert_eq!(b.bus.stats().dropped_malformed, n);
    wait_stats(&a.bus, "a to drop the garbage", |s| {
        s.dropped_malformed == n && s.relayed == 1 && s.skipped_own == 1
    })
    .await;
}

/// The client id of the connection named `name`, from `CLIENT LIST`.
async fn client_id_by_name(admin: &mut ConnectionManager, name: &str) -> Option<u64> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .unwrap();
    let want = format!("name={name}");
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == want))
        .find_map(|line| {
            line.split(' ')
                .find_map(|field| field.strip_prefix("id="))
                .and_then(|id| id.parse().ok())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_reconnects_and_resubscribes_after_its_connection_is_killed() {
    let Some((client, mut admin)) = redis().await else {
        return;
    };
    let (_channel, a, mut b) = pair(&client).await;

    let before = msg(1);
    a.bus.publish(std::slice::from_ref(&before)).await.unwrap();
    assert_eq!(next(&mut b.rx).await, before);

    let name = b.bus.config().subscriber_client_name();
    for round in 1..=2u64 {
        let id = client_id_by_name(&mut admin, &name)
            .await
            .unwrap_or_else(|| panic!("no client named {name}"));
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(killed, 1);
        wait_stats(&b.bus, "b to subscribe again", |s| {
            s.subscriptions == round + 1
        })
        .await;
        assert_ne!(client_id_by_name(&mut admin, &name).await, Some(id));

        let after: Vec<Broadcast> = (0..20).map(|i| msg(1000 * round as usize + i)).collect();
        a.bus.publish(&after).await.unwrap();
        let fence = sentinel(&format!("round-{round}"));
        a.bus.publish(std::slice::from_ref(&fence)).await.unwrap();
        assert_eq!(take(&mut b.rx, 20).await, after);
        assert_eq!(next(&mut b.rx).await, fence);
    }
    wait_stats(&b.bus, "b to count the relays", |s| s.relayed == 1 + 2 * 21).await;
    // a's subscriber was never disturbed.
    assert_eq!(a.bus.stats().subscriptions, 1);
}

async fn numsub(admin: &mut ConnectionManager, channel: &str) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(admin)
        .await
        .unwrap();
    n
}

async fn wait_numsub(admin: &mut ConnectionManager, channel: &str, want: i64) {
    let poll = async {
        while numsub(admin, channel).await != want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, poll)
        .await
        .unwrap_or_else(|_| panic!("channel never had {want} subscribers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_drop_unsubscribe_but_publishing_still_works() {
    let Some((client, mut admin)) = redis().await else {
        return;
    };
    let (channel, mut a, b) = pair(&client).await;
    assert_eq!(numsub(&mut admin, &channel).await, 2);

    b.handle.shutdown().await;
    wait_numsub(&mut admin, &channel, 1).await;
    drop(a.handle);
    wait_numsub(&mut admin, &channel, 0).await;

    // Without subscribers both still deliver locally and publish to Redis.
    let m = msg(3);
    a.bus.publish(std::slice::from_ref(&m)).await.unwrap();
    assert_eq!(next(&mut a.rx).await, m);
    b.bus.publish(std::slice::from_ref(&m)).await.unwrap();
    assert_eq!(a.bus.stats().published, 1);
    assert_eq!(b.bus.stats().published, 1);
    assert_eq!(a.bus.stats().relayed, 0);
}

/// A TCP proxy in front of Redis that can be taken down and brought back on the same port, to
/// play a Redis outage without touching the shared server.
struct Proxy {
    port: u16,
    upstream: String,
    tasks: tokio::task::JoinSet<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Proxy {
            port,
            upstream,
            tasks: tokio::task::JoinSet::new(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream.clone();
        self.tasks.spawn(async move {
            // Connections live in this set: aborting the accept task drops (closes) them all.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }

    /// Close the listener and every proxied connection.
    async fn down(&mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Listen again on the same port.
    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }

    /// `client`'s settings, pointed at the proxy.
    fn client(&self, client: &redis::Client) -> redis::Client {
        let info = client
            .get_connection_info()
            .clone()
            .set_addr(redis::ConnectionAddr::Tcp("127.0.0.1".into(), self.port));
        redis::Client::open(info).unwrap()
    }
}

/// A local hub that refuses everything.
struct BrokenHub;

#[async_trait::async_trait]
impl Broadcaster for BrokenHub {
    async fn publish(&self, _messages: &[Broadcast]) -> goldjobs_core::Result<()> {
        Err(goldjobs_core::Error::backend("hub", "closed", None))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_redis_outage_local_first_then_reconnects() {
    let Some((client, _admin)) = redis().await else {
        return;
    };
    let upstream = match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        other => {
            eprintln!("skipped: outage test needs a plain TCP Redis URL, not {other}");
            return;
        }
    };
    let mut proxy = Proxy::start(upstream).await;
    let via_proxy = proxy.client(&client);
    let tag = random_tag();
    let channel = format!("goldjobs-test:{tag}:events");
    let mut a = node(&via_proxy, &format!("test-{tag}-a"), &channel).await;
    let mut b = node(&via_proxy, &format!("test-{tag}-b"), &channel).await;
    let config = RedisEventBusConfig::new(format!("test-{tag}-c")).with_channel(&channel);
    let (c, _c_handle) =
        RedisEventBus::start_with_config(via_proxy.clone(), config, Arc::new(BrokenHub))
            .await
            .unwrap();

    // Redis up, local hub broken: the local error comes back as it is (not temporary).
    let err = c.publish(&[msg(0)]).await.unwrap_err();
    assert!(!err.is_temporary(), "{err}");
    assert_eq!(c.stats().published, 1);
    // ... and the other instances got it.
    assert_eq!(next(&mut a.rx).await, msg(0));
    assert_eq!(next(&mut b.rx).await, msg(0));

    proxy.down().await;
    wait_stats(&b.bus, "b to notice the outage", |s| {
        s.connect_failures >= 1
    })
    .await;

    // Redis down: local clients still get everything, the call succeeds, the failure is counted.
    let during: Vec<Broadcast> = (0..5).map(msg).collect();
    a.bus.publish(&during).await.unwrap();
    assert_eq!(take(&mut a.rx, 5).await, during);
    let s = a.bus.stats();
    assert_eq!((s.published, s.publish_errors), (0, 5));
    // Both down: a temporary error.
    let err = c.publish(&[msg(1)]).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert_eq!(c.stats().publish_errors, 1);

    proxy.up().await;
    wait_stats(&b.bus, "b to subscribe again", |s| s.subscriptions == 2).await;
    wait_stats(&a.bus, "a to subscribe again", |s| s.subscriptions == 2).await;

    // a's publisher reconnects on use: publish probes until one gets through to b.
    let probe = sentinel("probe");
    let reached = async {
        loop {
            a.bus.publish(std::slice::from_ref(&probe)).await.unwrap();
            assert_eq!(next(&mut a.rx).await, probe);
            if let Ok(got) = tokio::time::timeout(Duration::from_millis(200), b.rx.recv()).await {
                assert_eq!(got.unwrap(), probe);
                return;
            }
        }
    };
    tokio::time::timeout(PATIENCE, reached)
        .await
        .expect("no message reached b after Redis came back");
    let after: Vec<Broadcast> = (200..230).map(msg).collect();
    a.bus.publish(&after).await.unwrap();
    let fence = sentinel("after-outage");
    a.bus.publish(std::slice::from_ref(&fence)).await.unwrap();
    // Late copies of the probe may come first; then exactly `after` and the fence. Nothing
    // published during the outage shows up late.
    let mut first = next(&mut b.rx).await;
    while first == probe {
        first = next(&mut b.rx).await;
    }
    let mut got = vec![first];
    got.extend(take(&mut b.rx, 29).await);
    assert_eq!(got, after);
    assert_eq!(next(&mut b.rx).await, fence);
    assert_eq!(b.bus.stats().dropped_malformed, 0);
    proxy.down().await;
}

/// A local hub that holds every publish until permits are added, then counts deliveries.
struct GatedHub {
    gate: tokio::sync::Semaphore,
    delivered: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Broadcaster for GatedHub {
    async fn publish(&self, messages: &[Broadcast]) -> goldjobs_core::Result<()> {
        self.gate.acquire().await.unwrap().forget();
        self.delivered
            .fetch_add(messages.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_local_hub_makes_the_relay_drop_not_grow() {
    let Some((client, _admin)) = redis().await else {
        return;
    };
    let tag = random_tag();
    let channel = format!("goldjobs-test:{tag}:events");
    let a = node(&client, &format!("test-{tag}-a"), &channel).await;
    let hub = Arc::new(GatedHub {
        gate: tokio::sync::Semaphore::new(0),
        delivered: 0.into(),
    });
    let config = RedisEventBusConfig::new(format!("test-{tag}-b"))
        .with_channel(&channel)
        .with_queue_capacity(4);
    let (b, _b_handle) = RedisEventBus::start_with_config(client.clone(), config, hub.clone())
        .await
        .unwrap();

    // The relay takes one message and is stuck on it; 4 wait in the queue; the rest is dropped.
    let burst: Vec<Broadcast> = (0..20).map(msg).collect();
    a.bus.publish(&burst).await.unwrap();
    wait_stats(&b, "b to drop the overflow", |s| s.dropped_overflow >= 15).await;

    hub.gate.add_permits(1000);
    wait_stats(&b, "b to relay what it kept", |s| {
        s.relayed + s.dropped_overflow == 20
    })
    .await;
    let s = b.stats();
    assert!((15..=16).contains(&s.dropped_overflow), "{s:?}");
    assert_eq!(
        hub.delivered.load(std::sync::atomic::Ordering::SeqCst) as u64,
        s.relayed
    );

    // And it keeps relaying afterwards.
    a.bus.publish(&[sentinel("after-overflow")]).await.unwrap();
    wait_stats(&b, "b to relay again", |t| t.relayed == s.relayed + 1).await;
}
