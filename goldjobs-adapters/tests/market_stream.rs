//! The Twelve Data and Binance price streams against a loopback fake provider that speaks their
//! documented shapes: subscriptions with `fails`, garbage frames, silence, closes, pings, bursts
//! and oversized frames.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

use futures::{SinkExt, StreamExt};
use goldjobs_adapters::market::{
    BinanceStream, BinanceStreamConfig, TwelveDataStream, TwelveDataStreamConfig,
};
use goldjobs_core::{Error, MarketStream, PriceEvents, StreamEvent, Symbol};
use rust_decimal::Decimal;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const KEY: &str = "secret-key-123";
/// Generous bound for anything the tests wait for (never a timing claim).
const PATIENCE: Duration = Duration::from_secs(20);

type Socket = WebSocketStream<TcpStream>;

/// What the fake provider saw of one handshake.
#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    key_header: Option<String>,
}

/// A fake provider: every connection is handed to `script` after the handshake (or refused with
/// `refuse` as the HTTP status).
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn fake<F, Fut>(refuse: Option<StatusCode>, script: F) -> Fake
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = TcpListener::from_std(listener).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let callback = |req: &Request, resp: Response| {
                    record.lock().unwrap().push(Seen {
                        uri: req.uri().to_string(),
                        key_header: req
                            .headers()
                            .get("x-td-apikey")
                            .map(|v| v.to_str().unwrap().to_owned()),
                    });
                    match refuse {
                        None => Ok(resp),
                        Some(status) => {
                            let mut e = ErrorResponse::new(Some("refused".to_owned()));
                            *e.status_mut() = status;
                            if status == StatusCode::TOO_MANY_REQUESTS {
                                e.headers_mut().insert("retry-after", "7".parse().unwrap());
                            }
                            Err(e)
                        }
                    }
                };
                if let Ok(socket) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                    script(socket).await;
                }
            });
        }
    });
    Fake {
        url: format!("ws://{addr}"),
        seen,
    }
}

fn symbols() -> Vec<Symbol> {
    vec![
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        Symbol::new("EURUSD", "Euro", "EUR/USD"),
        Symbol::new("BTCUSD", "Bitcoin", "BTC/USD"),
    ]
}

fn twelvedata(url: &str) -> TwelveDataStream {
    TwelveDataStream::new(
        TwelveDataStreamConfig::new(KEY)
            .with_url(format!("{url}/v1/quotes/price"))
            .with_heartbeat(Duration::from_millis(100))
            .with_idle_timeout(Duration::from_millis(600)),
    )
    .unwrap()
}

async fn next(events: &mut PriceEvents) -> Option<goldjobs_core::Result<StreamEvent>> {
    tokio::time::timeout(PATIENCE, events.next()).await.unwrap()
}

/// Read the subscription message of a Twelve Data client.
async fn subscription(socket: &mut Socket) -> serde_json::Value {
    loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn twelvedata_subscribes_reads_fails_skips_garbage_and_sends_heartbeats() {
    let heartbeats = Arc::new(Mutex::new(0_u32));
    let counted = heartbeats.clone();
    let provider = fake(None, move |mut socket| {
        let counted = counted.clone();
        async move {
            let sub = subscription(&mut socket).await;
            assert_eq!(sub["action"], "subscribe");
            assert_eq!(sub["params"]["symbols"], "XAU/USD,EUR/USD,BTC/USD");
            for text in [
                r#"{"event":"subscribe-status","status":"error","success":[{"symbol":"XAU/USD","exchange":"PHYSICAL CURRENCY","mic_code":"","country":"","type":"Physical Currency"}],"fails":[{"symbol":"EUR/USD","message":"symbol not in plan"}]}"#,
                "garbage, not json",
                r#"{"event":"price","symbol":"XAU/USD","timestamp":"nonsense","price":1}"#,
                r#"{"event":"subscribe-status","status":"ok","success":[{"symbol":"BTC/USD"}],"fails":null}"#,
                r#"{"event":"price","symbol":"XAU/USD","currency_base":"Gold Spot","currency_quote":"US Dollar","type":"Physical Currency","timestamp":1647950462,"price":1925.18,"bid":1925.1,"ask":1925.3}"#,
            ] {
                socket.send(Message::text(text)).await.unwrap();
            }
            // Answer heartbeats until the client goes away.
            while let Some(Ok(m)) = socket.next().await {
                if let Message::Text(t) = m {
                    if t.as_str() == r#"{"action":"heartbeat"}"# {
                        *counted.lock().unwrap() += 1;
                        let _ = socket
                            .send(Message::text(r#"{"event":"heartbeat","status":"ok"}"#))
                            .await;
                    }
                }
            }
        }
    });
    let stream = twelvedata(&provider.url);
    let mut events = stream.connect(&symbols()).await.unwrap();

    let Some(Ok(StreamEvent::Subscribed { symbols, failures })) = next(&mut events).await else {
        panic!("no subscription")
    };
    assert_eq!(symbols, ["XAUUSD"]);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].symbol_code, "EURUSD");
    assert!(failures[0].error.to_string().contains("symbol not in plan"));

    let Some(Ok(StreamEvent::Subscribed { symbols, failures })) = next(&mut events).await else {
        panic!("no second status")
    };
    assert_eq!(symbols, ["BTCUSD"]);
    assert!(failures.is_empty());

    let Some(Ok(StreamEvent::Price(price))) = next(&mut events).await else {
        panic!("no price")
    };
    assert_eq!(price.symbol_code, "XAUUSD");
    assert_eq!(price.price, Decimal::from_str("1925.18").unwrap());
    assert_eq!(price.timestamp.timestamp(), 1_647_950_462);

    // Heartbeats keep a quiet stream alive past the idle timeout.
    tokio::time::timeout(PATIENCE, async {
        while *heartbeats.lock().unwrap() < 10 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    drop(events);

    let seen = provider.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/v1/quotes/price", "the key is not in the URL");
    assert_eq!(seen[0].key_header.as_deref(), Some(KEY));
}

#[tokio::test]
async fn twelvedata_refusals_are_classified_and_never_show_the_key() {
    let unauthorized = fake(Some(StatusCode::UNAUTHORIZED), |_| async {});
    let e = twelvedata(&unauthorized.url)
        .connect(&symbols())
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
    assert!(!e.is_temporary());
    assert!(!format!("{e:?}").contains(KEY));

    let limited = fake(Some(StatusCode::TOO_MANY_REQUESTS), |_| async {});
    let e = twelvedata(&limited.url)
        .connect(&symbols())
        .await
        .err()
        .unwrap();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)), "{e:?}");

    let down = fake(Some(StatusCode::SERVICE_UNAVAILABLE), |_| async {});
    let e = twelvedata(&down.url)
        .connect(&symbols())
        .await
        .err()
        .unwrap();
    assert!(e.is_temporary(), "{e:?}");

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = twelvedata(&url).connect(&symbols()).await.err().unwrap();
    assert!(e.is_temporary(), "{e:?}");

    // Bad configuration is refused before connecting.
    assert!(TwelveDataStream::new(TwelveDataStreamConfig::new("")).is_err());
    assert!(TwelveDataStream::new(TwelveDataStreamConfig::new(KEY).with_url("http://x")).is_err());
    assert!(!format!("{:?}", TwelveDataStreamConfig::new(KEY)).contains(KEY));
}

#[tokio::test]
async fn a_silent_stream_ends_with_an_error() {
    // Accepts, reads the subscription and the heartbeats, and never says a word.
    let provider = fake(None, |mut socket| async move {
        while let Some(Ok(_)) = socket.next().await {}
    });
    let mut events = twelvedata(&provider.url).connect(&symbols()).await.unwrap();
    let Some(Err(e)) = next(&mut events).await else {
        panic!("a silent stream went on")
    };
    assert!(e.is_temporary(), "{e:?}");
    assert!(e.to_string().contains("silent"), "{e}");
    assert!(next(&mut events).await.is_none(), "nothing after the end");
}

#[tokio::test]
async fn a_provider_that_closes_ends_the_stream_with_why() {
    let provider = fake(None, |mut socket| async move {
        let _ = subscription(&mut socket).await;
        let _ = socket
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1001_u16.into(),
                reason: "maintenance".into(),
            }))
            .await;
    });
    let mut events = twelvedata(&provider.url).connect(&symbols()).await.unwrap();
    let Some(Err(e)) = next(&mut events).await else {
        panic!("no end")
    };
    assert!(e.is_temporary());
    assert!(e.to_string().contains("maintenance"), "{e}");
    assert!(next(&mut events).await.is_none());
}

#[tokio::test]
async fn a_burst_is_delivered_whole_in_order_with_bounded_buffering() {
    const BURST: usize = 20_000;
    let provider = fake(None, |mut socket| async move {
        let _ = subscription(&mut socket).await;
        for i in 0..BURST {
            let text = format!(
                r#"{{"event":"price","symbol":"XAU/USD","timestamp":{},"price":"{}.5"}}"#,
                1_647_950_462 + i,
                2000 + i
            );
            if socket.feed(Message::text(text)).await.is_err() {
                return;
            }
        }
        let _ = socket.flush().await;
        while let Some(Ok(_)) = socket.next().await {}
    });
    let stream = TwelveDataStream::new(
        TwelveDataStreamConfig::new(KEY)
            .with_url(&provider.url)
            .with_idle_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let mut events = stream.connect(&symbols()).await.unwrap();
    let mut got = 0_usize;
    while got < BURST {
        match next(&mut events).await {
            Some(Ok(StreamEvent::Price(p))) => {
                let want = Decimal::from_str(&format!("{}.5", 2000 + got)).unwrap();
                assert_eq!(p.price, want, "event {got} in order");
                got += 1;
                // A slow consumer: the connection waits for it instead of buffering without end.
                if got.is_multiple_of(5000) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            other => panic!("{other:?} after {got}"),
        }
    }
}

#[tokio::test]
async fn an_oversized_frame_ends_the_connection() {
    let provider = fake(None, |mut socket| async move {
        let _ = subscription(&mut socket).await;
        let huge = format!(
            r#"{{"event":"price","symbol":"XAU/USD","timestamp":1,"price":"1","pad":"{}"}}"#,
            "x".repeat(2 * 1024 * 1024)
        );
        let _ = socket.send(Message::text(huge)).await;
        while let Some(Ok(_)) = socket.next().await {}
    });
    let mut events = twelvedata(&provider.url).connect(&symbols()).await.unwrap();
    let Some(Err(e)) = next(&mut events).await else {
        panic!("an oversized frame was taken")
    };
    assert!(e.is_temporary(), "{e:?}");
}

#[tokio::test]
async fn dropping_the_events_closes_the_connection() {
    let closed = Arc::new(tokio::sync::Notify::new());
    let told = closed.clone();
    let provider = fake(None, move |mut socket| {
        let told = told.clone();
        async move {
            let _ = subscription(&mut socket).await;
            while let Some(Ok(m)) = socket.next().await {
                if m.is_close() {
                    break;
                }
            }
            told.notify_one();
        }
    });
    let events = twelvedata(&provider.url).connect(&symbols()).await.unwrap();
    drop(events);
    tokio::time::timeout(PATIENCE, closed.notified())
        .await
        .unwrap();
}

#[tokio::test]
async fn binance_streams_mini_tickers_answers_pings_and_refuses_metals() {
    let pongs = Arc::new(Mutex::new(0_u32));
    let counted = pongs.clone();
    let provider = fake(None, move |mut socket| {
        let counted = counted.clone();
        async move {
            socket
                .send(Message::Ping(b"hello".to_vec().into()))
                .await
                .unwrap();
            for text in [
                "not json",
                r#"{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1672515782136,"s":"BTCUSDT","c":"16541.23000000","o":"16400.01000000","h":"16600.00000000","l":"16300.00000000","v":"1000.0","q":"16500000.0"}}"#,
            ] {
                socket.send(Message::text(text)).await.unwrap();
            }
            while let Some(Ok(m)) = socket.next().await {
                if let Message::Pong(p) = m {
                    assert_eq!(&p[..], b"hello");
                    *counted.lock().unwrap() += 1;
                }
            }
        }
    });
    let stream =
        BinanceStream::new(BinanceStreamConfig::default().with_url(&provider.url)).unwrap();
    let symbols = vec![
        Symbol::new("BTCUSD", "Bitcoin", "BTC/USD"),
        Symbol::new("XAUUSD", "Gold", "XAU/USD"),
    ];
    let mut events = stream.connect(&symbols).await.unwrap();
    let Some(Ok(StreamEvent::Subscribed { symbols, failures })) = next(&mut events).await else {
        panic!("no subscription")
    };
    assert_eq!(symbols, ["BTCUSD"]);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].symbol_code, "XAUUSD");
    let Some(Ok(StreamEvent::Price(p))) = next(&mut events).await else {
        panic!("no price")
    };
    assert_eq!(p.symbol_code, "BTCUSD");
    assert_eq!(p.price, Decimal::from_str("16541.23").unwrap());
    assert_eq!(p.reference, Some(Decimal::from_str("16400.01").unwrap()));
    tokio::time::timeout(PATIENCE, async {
        while *pongs.lock().unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    let seen = provider.seen.lock().unwrap().clone();
    assert_eq!(seen[0].uri, "/stream?streams=btcusdt@miniTicker");

    // Only metals: nothing to connect for.
    let e = stream
        .connect(&[Symbol::new("XAUUSD", "Gold", "XAU/USD")])
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
}

#[tokio::test]
async fn binance_reconnects_before_the_cut() {
    let provider = fake(None, |mut socket| async move {
        while let Some(Ok(_)) = socket.next().await {}
    });
    let stream = BinanceStream::new(
        BinanceStreamConfig::default()
            .with_url(&provider.url)
            .with_max_age(Duration::from_millis(200)),
    )
    .unwrap();
    let mut events = stream
        .connect(&[Symbol::new("BTCUSD", "Bitcoin", "BTC/USD")])
        .await
        .unwrap();
    assert!(matches!(
        next(&mut events).await,
        Some(Ok(StreamEvent::Subscribed { .. }))
    ));
    let Some(Err(e)) = next(&mut events).await else {
        panic!("the connection outlived its maximum age")
    };
    assert!(e.to_string().contains("maximum age"), "{e}");
}
