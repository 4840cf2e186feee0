//! The facade as an embedder uses it: the builder on the in-memory default and on SQLite, a job
//! of one's own beside the standard ones, errors found before anything is connected, and
//! graceful shutdown.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use chrono::Utc;
use goldjobs::jobs::{NewsFetcherJob, PriceFetcherJob, RetentionJob};
use goldjobs::jobs::{OutboxDispatcherJob, PredictionVerifierJob};
use goldjobs::memory::{LocalBroadcaster, RecordingNotifier};
use goldjobs::prelude::*;
use goldjobs::service::MarketDataSource;
use goldjobs::{Prediction, PredictionStatus, Topic, VerifyRule, Vote};
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Long enough for any step on a loaded CI machine; only a bound, never a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

fn fast() -> ServiceConfig {
    ServiceConfig::default()
        .with_price_interval(Duration::from_millis(200))
        .with_verify_interval(Duration::from_millis(300))
        .with_log_notifications(false)
}

/// Wait for the first event of `topic`.
async fn next_on(
    events: &mut tokio::sync::broadcast::Receiver<Broadcast>,
    topic: &Topic,
) -> Broadcast {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(event) if &event.topic == topic => return event,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .expect("no event in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_default_runs_the_standard_jobs_and_streams_quotes() {
    let service = Service::builder(fast()).build().await.unwrap();
    let names: Vec<String> = service
        .jobs()
        .status()
        .jobs
        .into_iter()
        .map(|j| j.name)
        .collect();
    for name in [
        PriceFetcherJob::NAME,
        NewsFetcherJob::NAME,
        PredictionVerifierJob::NAME,
        OutboxDispatcherJob::NAME,
        RetentionJob::NAME,
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    assert_eq!(service.description().database, "in memory");
    assert_eq!(service.description().cache, "in-process");
    assert_eq!(service.market_data_name(), "demo");

    let mut events = service.subscribe();
    service.start();
    let event = next_on(&mut events, &Topic::Symbol("XAUUSD".into())).await;
    let json: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
    assert_eq!(json["type"], "price_update");
    assert_eq!(json["payload"]["symbol_code"], "XAUUSD");

    let cached = service
        .quotes()
        .get_quotes(&["XAUUSD".to_owned()])
        .await
        .unwrap();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].price > Decimal::ZERO);
    let report = service.shutdown(Duration::from_secs(10)).await;
    assert!(report.all_stopped(), "{report:?}");
    assert_eq!(report.stopped.len(), names.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_receives_what_subscribers_receive() {
    let sink = LocalBroadcaster::new();
    let mut from_sink = sink.subscribe();
    let service = Service::builder(fast())
        .deliver_to(Arc::new(sink))
        .start()
        .await
        .unwrap();
    let mut from_service = service.subscribe();
    let topic = Topic::Symbol("XAGUSD".into());
    let a = next_on(&mut from_sink, &topic).await;
    let b = next_on(&mut from_service, &topic).await;
    // Both streams carry the same price updates (the first one each saw may differ by a round).
    for event in [a, b] {
        let json: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(json["payload"]["symbol_code"], "XAGUSD");
    }
    service.shutdown(Duration::from_secs(10)).await;
}

/// A platform prediction (`{"A": {"condition": …}}`) due in two seconds, with one vote per
/// option. Not due at once: the verifier could otherwise end it between the insert of the
/// prediction and that of its votes.
fn platform_prediction(id: &str) -> (Prediction, Vec<Vote>) {
    let now = Utc::now();
    let verify_time = now + chrono::Duration::seconds(2);
    let conditions = r#"{"A": {"condition": "price_change_percent >= 0"}, "B": {"condition": "price_change_percent < 0"}}"#;
    let p = Prediction::new_active(
        id,
        "XAUUSD",
        "Will gold close higher?",
        Decimal::new(1, 2),
        verify_time,
        VerifyRule::Auto,
        Some(conditions.to_owned()),
        now,
    );
    let votes = [("alice", "A"), ("bob", "B")]
        .into_iter()
        .map(|(user, option)| Vote {
            prediction_id: id.to_owned(),
            user_id: user.to_owned(),
            selected_option: option.to_owned(),
            is_correct: None,
            created_at: now,
        })
        .collect();
    (p, votes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_service_verifies_and_notifies_once_and_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
    let notifier = Arc::new(RecordingNotifier::new());
    let service = Service::builder(fast().with_database_url(&url))
        .notifier(notifier.clone())
        .start()
        .await
        .unwrap();
    assert!(
        service.description().database.starts_with("sqlite "),
        "{:?}",
        service.description()
    );

    let (prediction, votes) = platform_prediction("facade-1");
    let ports = service.ports().clone();
    ports
        .predictions
        .insert_prediction(&prediction)
        .await
        .unwrap();
    ports.predictions.insert_votes(&votes).await.unwrap();

    let notified = tokio::time::timeout(PATIENCE, async {
        while notifier.delivered().len() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        notified.is_ok(),
        "both voters notified; the jobs: {:#?}",
        service.jobs().status()
    );
    let evidence = service
        .predictions()
        .get("facade-1")
        .await
        .unwrap()
        .unwrap();
    let json = serde_json::to_value(&evidence).unwrap();
    // The demo price is far above the 0.01 it was created at: option A.
    assert_eq!(json["correct_option"], "A", "{json}");
    let stats = service
        .predictions()
        .user_stats("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.correct_count, 1);
    service.shutdown(Duration::from_secs(10)).await;

    // A second service on the same file: migrations are idempotent, the verdict is there, and
    // nobody is notified again.
    let again = Arc::new(RecordingNotifier::new());
    let service = Service::builder(fast().with_database_url(&url))
        .notifier(again.clone())
        .start()
        .await
        .unwrap();
    let p = service
        .ports()
        .predictions
        .get_prediction("facade-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.status, PredictionStatus::Ended);
    assert_eq!(p.correct_option.as_deref(), Some("A"));
    service.jobs().run_now(OutboxDispatcherJob::NAME).unwrap();
    service.jobs().run_now(PredictionVerifierJob::NAME).unwrap();
    service.shutdown(Duration::from_secs(10)).await;
    assert!(again.delivered().is_empty(), "{:?}", again.delivered());
    assert_eq!(notifier.delivered().len(), 2);
}

/// Counts its runs; with `hold`, each run waits that long without looking at its cancel token.
struct Counter {
    runs: Arc<AtomicU64>,
    hold: Option<Duration>,
}

#[async_trait]
impl Job for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn schedule(&self) -> Schedule {
        Schedule::every(Duration::from_millis(100))
            .with_singleton(false)
            .with_timeout(None)
    }

    async fn run(&self, _ctx: &JobContext) -> Result<RunReport> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if let Some(hold) = self.hold {
            tokio::time::sleep(hold).await;
        }
        Ok(RunReport::ok("counted"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_ones_own_runs_beside_the_standard_ones() {
    let service = Service::builder(fast()).build().await.unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let job = || {
        Arc::new(Counter {
            runs: runs.clone(),
            hold: None,
        })
    };
    service.jobs().register(job()).unwrap();
    // Names are unique.
    assert!(matches!(
        service.jobs().register(job()),
        Err(Error::Conflict(_))
    ));
    service.start();
    tokio::time::timeout(PATIENCE, async {
        while runs.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the custom job runs on its schedule");
    let status = service.jobs().status();
    assert_eq!(status.total_jobs, 6);
    let counter = status.jobs.iter().find(|j| j.name == "counter").unwrap();
    assert!(counter.runs >= 1);
    let report = service.shutdown(Duration::from_secs(10)).await;
    assert!(report.all_stopped(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_names_the_runs_that_outlive_the_deadline() {
    let service = Service::builder(fast()).build().await.unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    service
        .jobs()
        .register(Arc::new(Counter {
            runs: runs.clone(),
            hold: Some(Duration::from_secs(3600)),
        }))
        .unwrap();
    service.start();
    tokio::time::timeout(PATIENCE, async {
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the slow job started a run");
    let report = service.shutdown(Duration::from_millis(300)).await;
    assert_eq!(report.not_stopped, vec!["counter".to_owned()]);
    assert!(
        report.stopped.iter().any(|n| n == PriceFetcherJob::NAME),
        "{report:?}"
    );
}

#[tokio::test]
async fn unusable_values_fail_before_anything_is_connected() {
    // No market data at all.
    let err = Service::builder(ServiceConfig::default().with_market_data([]))
        .build()
        .await
        .unwrap_err();
    assert!(err.is_invalid_config(), "{err}");
    assert!(err.to_string().contains("market data"), "{err}");

    // Demo mixed with a real provider, in front of a database that does not exist: the chain is
    // refused first.
    let custom = MarketDataSource::custom(goldjobs::adapters::market::DemoMarketData::new(1));
    let binance = MarketDataSource::Binance(goldjobs::adapters::market::BinanceConfig::default());
    let err = Service::builder(
        ServiceConfig::default()
            .with_market_data([custom, binance])
            .with_database_url("postgres://nobody@127.0.0.1:1/none"),
    )
    .build()
    .await
    .unwrap_err();
    assert!(err.is_invalid_config(), "{err}");

    // A credentials file that is not there.
    let err = Service::builder(
        ServiceConfig::default()
            .with_fcm(goldjobs::service::FcmSettings::new(
                "p",
                "/nonexistent/sa.json",
            ))
            .with_database_url("postgres://nobody@127.0.0.1:1/none"),
    )
    .build()
    .await
    .unwrap_err();
    assert!(err.is_invalid_config(), "{err}");
    assert!(err.to_string().contains("notifier"), "{err}");

    // A URL of no known database.
    let err = Service::builder(ServiceConfig::default().with_database_url("mysql://x/y"))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Database(_)), "{err}");
}

/// A live stream given to the builder: opened on the price leader (the only instance here),
/// its prices become ticks and `price_update`s, and shutdown closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_stream_feeds_ticks_and_updates_and_closes_on_shutdown() {
    let stream = goldjobs::memory::InMemoryMarketStream::new("fake");
    let service = Service::builder(fast().with_price_interval(Duration::from_secs(1)))
        .market_stream(Arc::new(stream.clone()))
        .start()
        .await
        .unwrap();
    let mut events = service.subscribe();
    wait_until_open(&stream).await;
    assert_eq!(service.price_stream().unwrap().name(), "fake");

    let price = Decimal::from_str_exact("2701.123456").unwrap();
    // Polled updates may come first; wait for the streamed one.
    let got = tokio::time::timeout(PATIENCE, async {
        loop {
            stream.send(gold_at(price));
            let event = next_on(&mut events, &Topic::Symbol("XAUUSD".into())).await;
            let v: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
            if v["payload"]["price"] == "2701.123456" {
                return v;
            }
        }
    })
    .await
    .expect("a streamed price is published");
    assert_eq!(got["type"], "price_update");
    // The tick is written with the publish (concurrently): wait for it.
    let tick = tokio::time::timeout(PATIENCE, async {
        loop {
            let tick = service.ports().ticks.latest_tick("XAUUSD").await.unwrap();
            if let Some(t) = tick.filter(|t| t.price == price) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the streamed price is recorded as a tick");
    assert_eq!(tick.source.as_deref(), Some("fake"));

    service.shutdown(PATIENCE).await;
    assert_eq!(stream.open_connections(), 0, "shutdown closes the stream");
    assert_eq!(stream.connects(), 1);
}

/// Wait until the service has opened `stream` (on its price leader).
async fn wait_until_open(stream: &goldjobs::memory::InMemoryMarketStream) {
    tokio::time::timeout(PATIENCE, async {
        while stream.open_connections() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stream is opened on the price leader");
}

/// A service whose price job and verifier sweep are an hour apart, so that only the in-memory
/// stream and the verifier's waker can price and decide; returned once the stream is open.
async fn hourly_service_with_stream() -> (Service, goldjobs::memory::InMemoryMarketStream) {
    let stream = goldjobs::memory::InMemoryMarketStream::new("fake");
    let hour = Duration::from_secs(3600);
    let service = Service::builder(fast().with_price_interval(hour).with_verify_interval(hour))
        .market_stream(Arc::new(stream.clone()))
        .start()
        .await
        .unwrap();
    wait_until_open(&stream).await;
    (service, stream)
}

/// One streamed XAUUSD price, stamped now.
fn gold_at(price: Decimal) -> goldjobs::StreamPrice {
    goldjobs::StreamPrice {
        symbol_code: "XAUUSD".into(),
        price,
        timestamp: Utc::now(),
        reference: None,
    }
}

/// Insert [`platform_prediction`] `id` with its votes (its deadline two seconds ahead).
async fn insert_platform_prediction(ports: &goldjobs::Ports, id: &str) -> Prediction {
    let (prediction, votes) = platform_prediction(id);
    ports
        .predictions
        .insert_prediction(&prediction)
        .await
        .unwrap();
    ports.predictions.insert_votes(&votes).await.unwrap();
    prediction
}

/// Prediction `id` as stored.
async fn stored(ports: &goldjobs::Ports, id: &str) -> Prediction {
    ports
        .predictions
        .get_prediction(id)
        .await
        .unwrap()
        .expect("stored")
}

/// The verifier's waker: with a sweep an hour apart, a prediction is verified as soon as a
/// streamed tick past its deadline is recorded, by that tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prediction_is_verified_by_the_first_streamed_tick_after_its_deadline() {
    let (service, stream) = hourly_service_with_stream().await;
    assert!(
        service.verify_waker().is_some(),
        "the waker is on by default"
    );
    let ports = service.ports().clone();
    insert_platform_prediction(&ports, "wake-1").await;

    // A provider's stream: a price every 100 ms, until the prediction is ended.
    let price = Decimal::from_str_exact("2702.5").unwrap();
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            stream.send(gold_at(price));
            let p = stored(&ports, "wake-1").await;
            if p.status != PredictionStatus::Active {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("verified long before the hourly sweep");
    assert_eq!(ended.status, PredictionStatus::Ended, "{ended:?}");
    assert_eq!(ended.correct_option.as_deref(), Some("A"));
    assert_eq!(ended.price_at_verify, Some(price));
    assert_eq!(ended.price_provider.as_deref(), Some("fake"));
    assert!(ended.price_at_verify_ts.unwrap() >= ended.verify_time);
    assert!(service.verify_waker().unwrap().wakes() >= 1);
    let votes = ports.predictions.votes_for("wake-1").await.unwrap();
    assert!(votes.iter().all(|v| v.is_correct.is_some()), "{votes:?}");

    let report = service.shutdown(PATIENCE).await;
    assert!(report.all_stopped(), "{report:?}");
}

/// A paused verifier is not woken: the deadline's price is recorded, nothing is decided until
/// the verifier is resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_verifier_is_not_woken() {
    let (service, stream) = hourly_service_with_stream().await;
    service
        .jobs()
        .pause(goldjobs::jobs::PredictionVerifierJob::NAME)
        .await
        .unwrap();
    let ports = service.ports().clone();
    let prediction = insert_platform_prediction(&ports, "paused-1").await;
    let send = || stream.send(gold_at(Decimal::from(2700)));

    // Prices keep coming until the deadline's price is recorded and the waker has had a few
    // of its looks (it reads the deadlines every second) since.
    let query = [goldjobs::TickQuery::new("XAUUSD", prediction.verify_time)];
    tokio::time::timeout(PATIENCE, async {
        loop {
            send();
            let first = ports.ticks.first_ticks_at_or_after(&query).await.unwrap();
            if first.first().is_some_and(Option::is_some) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the deadline's price is recorded");
    for _ in 0..30 {
        send();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = stored(&ports, "paused-1").await;
    assert_eq!(
        p.status,
        PredictionStatus::Active,
        "decided while paused: {p:?}"
    );
    assert_eq!(service.verify_waker().unwrap().wakes(), 0);

    // Resumed: the waker wakes it by the price it already has.
    service
        .jobs()
        .resume(goldjobs::jobs::PredictionVerifierJob::NAME)
        .await
        .unwrap();
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            let p = stored(&ports, "paused-1").await;
            if p.status != PredictionStatus::Active {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("verified after resume, long before the hourly sweep");
    assert_eq!(ended.status, PredictionStatus::Ended, "{ended:?}");
    assert!(service.verify_waker().unwrap().wakes() >= 1);
    service.shutdown(PATIENCE).await;
}
