//! Provider price → WebSocket client latency, with and without the provider's live stream.
//!
//! ```text
//! cargo run --release -p goldjobs-server --example stream_latency
//! cargo run --release -p goldjobs-server --example stream_latency -- --seconds 10 --clients 50
//! ```
//!
//! A loopback fake Twelve Data (REST `/quote` and the WebSocket `/v1/quotes/price`) holds one
//! price per symbol that changes every `--change` (50 ms): each new price is remembered with the
//! instant it appeared at the provider, served by `/quote` from then on and sent as a stream
//! price event at once. The real server runs in this process (`goldjobs_server::app::start`,
//! in-memory SQLite, jobs started) with `--clients` WebSocket clients subscribed to XAUUSD; each
//! `price_update` a client gets is looked up by its price, and the latency is the client's
//! receipt minus the instant that price appeared at the provider. Three runs, one after the
//! other in one process:
//!
//! * **polling**: no stream, `GOLDJOBS_PRICE_INTERVAL=5s`, push interval 250 ms (the defaults);
//! * **stream**: `GOLDJOBS_MARKET_STREAM=twelvedata`, push interval 250 ms (the default);
//! * **stream, push 0s**: every update pushed at once (no conflation).
//!
//! Two figures per run (HDR histograms, µs): **event → client**, for every update delivered to
//! every client (receipt − the instant its price appeared at the provider), and **change →
//! shown**, for every change of the XAUUSD price at the provider, until the first client got that
//! price or a newer one (what a price screen lags behind the market: with polling, up to a price
//! interval). Loopback only; the provider's own delay is not in the figures.

use anyhow::{Context, Result};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use goldjobs::Event;
use goldjobs_server::app::{self, AppOptions};
use goldjobs_server::config::Config;
use hdrhistogram::Histogram;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "Provider price → WebSocket client latency, polling vs the live stream")]
struct Args {
    /// Seconds measured per run (after a warm-up of two price intervals).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// WebSocket clients subscribed to XAUUSD.
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// How often the provider's price changes.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    change: Duration,
}

/// The fake provider's prices: each symbol's current one, and when every recent one appeared.
#[derive(Default)]
struct Prices {
    current: HashMap<String, String>,
    /// (price text, when it appeared); the last 10,000.
    born: VecDeque<(String, Instant)>,
    index: HashMap<String, Instant>,
}

impl Prices {
    fn set(&mut self, symbol: &str, price: String) {
        let now = Instant::now();
        self.current.insert(symbol.to_owned(), price.clone());
        self.index.insert(price.clone(), now);
        self.born.push_back((price, now));
        if self.born.len() > 10_000 {
            if let Some((old, _)) = self.born.pop_front() {
                self.index.remove(&old);
            }
        }
    }
}

type Shared = Arc<Mutex<Prices>>;

const SYMBOLS: [&str; 2] = ["XAU/USD", "EUR/USD"];

/// Change the prices every `every`, announcing each change.
fn ticker(prices: Shared, every: Duration, tx: broadcast::Sender<(String, String)>) {
    tokio::spawn(async move {
        let mut n: u64 = 0;
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            n += 1;
            for (i, s) in SYMBOLS.iter().enumerate() {
                // Distinct for every change: 2000.000001, 2000.000002, …
                let price = format!(
                    "{}.{:06}",
                    2000 + 1000 * i as u64 + n / 1_000_000,
                    n % 1_000_000
                );
                prices.lock().map(|mut p| p.set(s, price.clone())).ok();
                let _ = tx.send(((*s).to_owned(), price));
            }
        }
    });
}

/// The fake Twelve Data on one port: `/quote` over HTTP and the stream over WebSocket.
async fn provider(prices: Shared, tx: broadcast::Sender<(String, String)>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let mut peek = [0_u8; 512];
            let n = tcp.peek(&mut peek).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&peek[..n]).to_ascii_lowercase();
            if head.contains("upgrade: websocket") {
                tokio::spawn(stream(tcp, tx.subscribe()));
            } else {
                let prices = prices.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let prices = prices.clone();
                        async move { Ok::<_, std::convert::Infallible>(quote(&req, &prices)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        }
    });
    Ok(format!("127.0.0.1:{}", addr.port()))
}

fn quote(req: &Request<hyper::body::Incoming>, prices: &Shared) -> Response<Full<Bytes>> {
    let asked: Vec<String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k == "symbol")
            .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
            .collect();
    let now = chrono::Utc::now().timestamp();
    let current = prices.lock().map(|p| p.current.clone()).unwrap_or_default();
    let one = |s: &str| {
        json!({"symbol": s, "timestamp": now, "last_quote_at": now,
               "close": current.get(s).cloned().unwrap_or_else(|| "1.5".into()),
               "previous_close": "1000.00"})
    };
    let body = if asked.len() == 1 {
        one(&asked[0])
    } else {
        Value::Object(asked.iter().map(|s| (s.clone(), one(s))).collect())
    };
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

async fn stream(tcp: tokio::net::TcpStream, mut changes: broadcast::Receiver<(String, String)>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let mut subscribed: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if v["action"] == "subscribe" {
                        subscribed = v["params"]["symbols"].as_str().unwrap_or("")
                            .split(',').map(str::to_owned).collect();
                        let success: Vec<Value> = subscribed.iter().map(|s| json!({"symbol": s})).collect();
                        let _ = ws.send(Message::text(json!({"event": "subscribe-status",
                            "status": "ok", "success": success, "fails": []}).to_string())).await;
                    } else if v["action"] == "heartbeat" {
                        let _ = ws.send(Message::text(r#"{"event":"heartbeat","status":"ok"}"#)).await;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            c = changes.recv() => match c {
                Ok((symbol, price)) if subscribed.contains(&symbol) => {
                    let event = json!({"event": "price", "symbol": symbol,
                        "timestamp": chrono::Utc::now().timestamp(), "price": price});
                    if ws.send(Message::text(event.to_string())).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            },
        }
    }
}

struct Run {
    label: &'static str,
    stream: bool,
    push: &'static str,
}

/// What one run measured.
struct Measured {
    /// Delivered update: client receipt − when its price appeared at the provider (all clients).
    delivered: Histogram<u64>,
    /// Every provider change of XAUUSD: until the first client shows it or a newer price.
    shown: Histogram<u64>,
}

async fn measure(args: &Args, provider: &str, prices: &Shared, run: &Run) -> Result<Measured> {
    let dir = tempfile::tempdir()?;
    let mut env: HashMap<String, String> = [
        ("GOLDJOBS_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display()),
        ),
        ("GOLDJOBS_MARKET_DATA", "twelvedata".to_owned()),
        ("TWELVEDATA_API_KEY", "bench".to_owned()),
        ("TWELVEDATA_BASE_URL", format!("http://{provider}")),
        ("TWELVEDATA_CREDITS_PER_MINUTE", "100000".to_owned()),
        ("GOLDJOBS_PRICE_INTERVAL", "5s".to_owned()),
        ("GOLDJOBS_PUSH_INTERVAL", run.push.to_owned()),
        (
            "GOLDJOBS_NEWS_FEEDS",
            "gold|none|http://127.0.0.1:9/rss".to_owned(),
        ),
        ("GOLDJOBS_NEWS_INTERVAL", "1h".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if run.stream {
        env.insert("GOLDJOBS_MARKET_STREAM".into(), "twelvedata".into());
        env.insert(
            "TWELVEDATA_WS_URL".into(),
            format!("ws://{provider}/v1/quotes/price"),
        );
    }
    let cfg = Config::from_sources(None, &env).context("config")?;
    let app = app::start(cfg, AppOptions::default())
        .await
        .context("start")?;
    let url = format!("ws://{}/ws", app.local_addr());
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let warm_until = Instant::now() + Duration::from_secs(10);
    let end = warm_until + Duration::from_secs(args.seconds);
    let mut clients = Vec::new();
    // The first client's receipts: (when the price appeared, when it arrived).
    let seen: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    for client in 0..args.clients {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        ws.send(Message::text(
            r#"{"action":"subscribe","symbols":["XAUUSD"]}"#,
        ))
        .await?;
        let (h, prices, seen) = (histogram.clone(), prices.clone(), seen.clone());
        clients.push(tokio::spawn(async move {
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(end.into(), ws.next()).await {
                let Message::Text(t) = m else { continue };
                let Ok(Event::PriceUpdate(u)) = serde_json::from_str::<Event>(t.as_str()) else {
                    continue;
                };
                let got = Instant::now();
                if got < warm_until || u.symbol_code != "XAUUSD" {
                    continue;
                }
                let born = prices
                    .lock()
                    .ok()
                    .and_then(|p| p.index.get(&u.price.to_string()).copied());
                if let Some(born) = born {
                    if client == 0 {
                        seen.lock().map(|mut s| s.push((born, got))).ok();
                    }
                    let micros = got.saturating_duration_since(born).as_micros() as u64;
                    if let Ok(mut h) = h.lock() {
                        let _ = h.record(micros.max(1));
                    }
                }
            }
        }));
    }
    for c in clients {
        let _ = c.await;
    }
    app.shutdown().await;
    let delivered = histogram
        .lock()
        .map(|h| h.clone())
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    // Every XAUUSD change in the window, until the first client got that price or a newer one.
    let changes: Vec<Instant> = prices
        .lock()
        .map(|p| {
            p.born
                .iter()
                .filter(|(price, at)| price.starts_with("2000.") && *at >= warm_until)
                .map(|(_, at)| *at)
                .collect()
        })
        .unwrap_or_default();
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut shown = Histogram::<u64>::new(3)?;
    for change in changes {
        if let Some((_, got)) = seen.iter().find(|(born, _)| *born >= change) {
            let _ = shown.record((got.saturating_duration_since(change).as_micros() as u64).max(1));
        }
    }
    eprintln!(
        "{}: {} updates delivered, {} provider changes followed",
        run.label,
        delivered.len(),
        shown.len()
    );
    Ok(Measured { delivered, shown })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let prices: Shared = Arc::default();
    let (tx, _) = broadcast::channel(1024);
    ticker(prices.clone(), args.change, tx.clone());
    let provider = provider(prices.clone(), tx).await?;
    let runs = [
        Run {
            label: "polling (5 s), push 250 ms",
            stream: false,
            push: "250ms",
        },
        Run {
            label: "stream, push 250 ms",
            stream: true,
            push: "250ms",
        },
        Run {
            label: "stream, push 0 s",
            stream: true,
            push: "0s",
        },
    ];
    let mut rows = Vec::new();
    for run in &runs {
        let m = measure(&args, &provider, &prices, run).await?;
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        rows.push(format!(
            "| {} | {} | {:.1} / {:.1} / {:.1} ms | {} | {:.1} / {:.1} / {:.1} ms |",
            run.label,
            m.delivered.len(),
            ms(&m.delivered, 0.5),
            ms(&m.delivered, 0.99),
            m.delivered.max() as f64 / 1000.0,
            m.shown.len(),
            ms(&m.shown, 0.5),
            ms(&m.shown, 0.99),
            m.shown.max() as f64 / 1000.0,
        ));
    }
    println!(
        "{} clients, provider price changes every {:?}, {} s measured per run\n",
        args.clients, args.change, args.seconds
    );
    println!(
        "| run | updates delivered | event → client p50 / p99 / max | provider changes | change → shown p50 / p99 / max |\n|---|---|---|---|---|"
    );
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
