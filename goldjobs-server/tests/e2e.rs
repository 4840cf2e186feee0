//! End-to-end tests: the real server (started in-process through the library) on a loopback
//! port with a temporary SQLite file and the demo feed, talked to over HTTP and WebSocket as a
//! client would.

#![allow(clippy::unwrap_used)]

use futures::{SinkExt, StreamExt};
use goldjobs::{Broadcast, Topic};
use goldjobs_server::app::{self, App, AppOptions};
use goldjobs_server::config::Config;
use goldjobs_server::hub::HubConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const TOKEN: &str = "test-admin-token";

struct TestServer {
    app: App,
    base: String,
    ws_url: String,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(extra: &[(&str, &str)], opts: AppOptions) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("goldjobs-test.db");
        let mut env: HashMap<String, String> = [
            ("GOLDJOBS_LISTEN", "127.0.0.1:0".to_owned()),
            (
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", db.display()),
            ),
            ("GOLDJOBS_PRICE_INTERVAL", "200ms".to_owned()),
            ("GOLDJOBS_QUOTE_TTL", "30s".to_owned()),
            // A local address where nothing listens: no traffic leaves the machine.
            (
                "GOLDJOBS_NEWS_FEEDS",
                "gold|Local test feed|http://127.0.0.1:9/rss".to_owned(),
            ),
            ("GOLDJOBS_NEWS_INTERVAL", "1h".to_owned()),
            ("GOLDJOBS_VERIFY_INTERVAL", "1s".to_owned()),
            ("GOLDJOBS_ADMIN_TOKEN", TOKEN.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        let cfg = Config::from_sources(None, &env).unwrap();
        let app = app::start(cfg, opts).await.unwrap();
        let addr = app.local_addr();
        TestServer {
            app,
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/ws"),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Wait until `/quotes` lists every active symbol (the price job ran).
    async fn wait_for_quotes(&self, client: &reqwest::Client) -> Value {
        for _ in 0..100 {
            let body: Value = client
                .get(self.url("/quotes"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if body["quotes"].as_array().is_some_and(|q| q.len() == 6) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no quotes after 10 s");
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn ws_connect(url: &str) -> Ws {
    let (ws, resp) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next text message as JSON (skipping pings), within 5 s.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no message within 5 s")
            .expect("connection closed")
            .unwrap();
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Skip price updates until a message of `kind` arrives.
async fn next_of_type(ws: &mut Ws, kind: &str) -> Value {
    for _ in 0..200 {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return v;
        }
        assert_eq!(v["type"], "price_update", "unexpected {v}");
    }
    panic!("no {kind} message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_routes_answer_with_the_contract_shapes() {
    let server = TestServer::start(&[], AppOptions::default()).await;
    let client = reqwest::Client::new();

    // /health
    let resp = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let health: Value = resp.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["cache"], "ok");
    assert_eq!(health["market_data"], "demo");

    // /jobs/status
    let status: Value = client
        .get(server.url("/jobs/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"PriceFetcherJob"), "{status}");
    assert!(names.contains(&"NewsFetcherJob"), "{status}");
    assert_eq!(status["total_jobs"], names.len());
    let price_job = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "PriceFetcherJob")
        .unwrap();
    assert_eq!(price_job["running"], true);
    assert_eq!(price_job["interval_seconds"], 0.2);
    for key in [
        "last_run_at",
        "last_duration_ms",
        "last_error",
        "runs",
        "failures",
        "next_run_at",
        "leader",
    ] {
        assert!(price_job.get(key).is_some(), "missing {key} in {price_job}");
    }

    // /quotes and /quotes/{symbol}
    let quotes = server.wait_for_quotes(&client).await;

    // /quotes/{symbol}/candles: the demo feed's recorded ticks, in one-minute candles.
    let candles: Value = client
        .get(server.url("/quotes/XAUUSD/candles?interval=1m"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(candles["symbol_code"], "XAUUSD");
    assert_eq!(candles["interval"], "1m");
    let list = candles["candles"].as_array().unwrap();
    assert!(!list.is_empty(), "no candles of recorded ticks: {candles}");
    let last = list.last().unwrap();
    use rust_decimal::Decimal;
    let (low, high): (Decimal, Decimal) = (
        last["low"].as_str().unwrap().parse().unwrap(),
        last["high"].as_str().unwrap().parse().unwrap(),
    );
    for key in ["open", "close"] {
        let v: Decimal = last[key].as_str().unwrap().parse().unwrap();
        assert!(low <= v && v <= high, "{key} outside [low, high]: {last}");
    }
    assert!(last["ticks"].as_u64().unwrap() >= 1, "{last}");
    let t: chrono::DateTime<chrono::Utc> = last["t"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        t.timestamp() % 60,
        0,
        "a minute candle starts on the minute: {last}"
    );
    let first = &quotes["quotes"][0];
    for key in [
        "symbol_code",
        "price",
        "change",
        "change_percent",
        "timestamp",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert!(first["price"].is_string(), "decimals are strings: {first}");
    let resp = client
        .get(server.url("/quotes/xauusd"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let q: Value = resp.json().await.unwrap();
    assert_eq!(q["symbol_code"], "XAUUSD");
    assert!(q["price"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
    let resp = client.get(server.url("/quotes/NOPE")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let e: Value = resp.json().await.unwrap();
    assert!(e["error"].is_string());

    // /news
    let resp = client
        .get(server.url("/news?category=gold&limit=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let news: Value = resp.json().await.unwrap();
    assert!(news["articles"].is_array(), "{news}");
    // Categories match the configured ones in any letter case.
    let resp = client
        .get(server.url("/news?category=Gold&limit=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for bad in [
        "/news?limit=0",
        "/news?limit=101",
        "/news?limit=abc",
        "/news?category=a%20b",
        "/news?category=silver",
    ] {
        let resp = client.get(server.url(bad)).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let e: Value = resp.json().await.unwrap();
        assert!(e["error"].is_string(), "{bad}");
    }

    // Unknown paths and methods.
    let resp = client.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client.delete(server.url("/quotes")).send().await.unwrap();
    assert_eq!(resp.status(), 405);

    // Dashboard.
    let resp = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("goldjobs"));

    // /metrics: every sample line is `name value`.
    let text = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad line {line}"));
        samples.insert(name.to_owned(), value);
    }
    assert!(
        samples
            .get("goldjobs_job_runs_total{job=\"PriceFetcherJob\",status=\"ok\"}")
            .is_some_and(|v| *v >= 1.0),
        "{text}"
    );
    assert!(samples.contains_key("goldjobs_ws_connections"), "{text}");
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("goldjobs_provider_requests_total")),
        "{text}"
    );
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("goldjobs_cache_hits_total")),
        "{text}"
    );
    assert!(
        samples.contains_key(
            "goldjobs_http_requests_total{route=\"/quotes/{symbol}\",status=\"404\"}"
        ),
        "{text}"
    );

    server.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_need_the_token() {
    let server = TestServer::start(&[], AppOptions::default()).await;
    let client = reqwest::Client::new();
    let run = server.url("/jobs/NewsFetcherJob/run");

    let resp = client.post(&run).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let e: Value = resp.json().await.unwrap();
    assert!(e["error"].is_string());
    let resp = client
        .post(&run)
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client.post(&run).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let resp = client
        .post(server.url("/jobs/NoSuchJob/run"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Resolve: auth first, then the body.
    let resolve = server.url("/admin/predictions/p-1/resolve");
    let resp = client
        .post(&resolve)
        .json(&json!({"correct_option": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .post(&resolve)
        .bearer_auth(TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client
        .post(&resolve)
        .bearer_auth(TOKEN)
        .body(vec![b' '; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    server.app.shutdown().await;

    // Without a configured token, admin endpoints are forbidden.
    let server = TestServer::start(&[("GOLDJOBS_ADMIN_TOKEN", "")], AppOptions::default()).await;
    let resp = client
        .post(server.url("/jobs/NewsFetcherJob/run"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    server.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_run_history_end_to_end() {
    let server = TestServer::start(&[], AppOptions::default()).await;
    let client = reqwest::Client::new();
    let pause = server.url("/jobs/PriceFetcherJob/pause");
    assert_eq!(client.post(&pause).send().await.unwrap().status(), 401);

    // The price job ran at the start: its run is in the history, with the instance.
    let mut runs = Value::Null;
    for _ in 0..100 {
        runs = client
            .get(server.url("/jobs/PriceFetcherJob/runs?limit=50"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if runs["runs"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = &runs["runs"][0];
    assert_eq!(first["status"], "ok", "{runs}");
    assert!(
        first["instance"].as_str().is_some_and(|i| !i.is_empty()),
        "{runs}"
    );
    assert!(
        first["summary"]
            .as_str()
            .is_some_and(|s| s.contains("quotes")),
        "{runs}"
    );
    assert!(first["duration_ms"].is_u64() && first["started_at"].is_string());

    let resp = client.post(&pause).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["name"], "PriceFetcherJob");
    assert_eq!(status["paused"], true, "{status}");
    assert_eq!(status["missed_policy"], "skip");
    let all: Value = client
        .get(server.url("/jobs/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let price = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "PriceFetcherJob")
        .unwrap();
    assert_eq!(price["paused"], true);
    let news = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "NewsFetcherJob")
        .unwrap();
    assert_eq!(news["paused"], false);
    assert_eq!(news["missed_policy"], "once");
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("goldjobs_job_paused{job=\"PriceFetcherJob\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("goldjobs_job_is_leader{job=\"PriceFetcherJob\"} 1"));
    assert!(metrics.contains("goldjobs_job_runs_total{job=\"PriceFetcherJob\",status=\"ok\"}"));
    assert!(metrics.contains("goldjobs_job_lateness_seconds_count{job=\"PriceFetcherJob\"}"));

    let resp = client
        .post(server.url("/jobs/PriceFetcherJob/resume"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let status: Value = resp.json().await.unwrap();
    assert_eq!(status["paused"], false);
    let resp = client
        .post(server.url("/jobs/NoSuchJob/resume"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client
        .get(server.url("/jobs/PriceFetcherJob/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    server.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_headers_on_read_endpoints_only() {
    let server = TestServer::start(
        &[("GOLDJOBS_CORS_ORIGINS", "https://app.example")],
        AppOptions::default(),
    )
    .await;
    let client = reqwest::Client::new();
    let resp = client
        .get(server.url("/health"))
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let resp = client
        .get(server.url("/health"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = client
        .post(server.url("/jobs/PriceFetcherJob/run"))
        .header("Origin", "https://app.example")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // /ws: only listed browser origins, the server's own, and non-browsers (no Origin).
    let ws_with_origin = |origin: Option<String>| {
        let url = server.ws_url.clone();
        async move {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut req = url.into_client_request().unwrap();
            if let Some(o) = origin {
                req.headers_mut().insert("origin", o.parse().unwrap());
            }
            match tokio_tungstenite::connect_async(req).await {
                Ok((_, resp)) => resp.status().as_u16(),
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(
        ws_with_origin(Some("https://evil.example".into())).await,
        403
    );
    assert_eq!(
        ws_with_origin(Some("https://app.example".into())).await,
        101
    );
    assert_eq!(ws_with_origin(None).await, 101);
    let own = server.base.clone();
    assert_eq!(
        ws_with_origin(Some(own)).await,
        101,
        "the dashboard's own origin"
    );
    server.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_on_every_answer_and_a_strict_csp_on_the_dashboard() {
    let server = TestServer::start(&[], AppOptions::default()).await;
    let client = reqwest::Client::new();
    for path in [
        "/",
        "/dashboard.js",
        "/dashboard.css",
        "/uplot.js",
        "/uplot.css",
        "/health",
        "/nope",
        "/metrics",
    ] {
        let resp = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    let page = client.get(server.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<style>"),
        "no inline code"
    );
    assert!(html.contains(r#"<script src="/dashboard.js">"#));
    let js = client
        .get(server.url("/dashboard.js"))
        .send()
        .await
        .unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text().await.unwrap().contains("new WebSocket"));
    // The chart library comes from the server itself, with its license banner.
    assert!(html.contains(r#"<script src="/uplot.js">"#));
    let uplot = client.get(server.url("/uplot.js")).send().await.unwrap();
    assert_eq!(uplot.status(), 200);
    assert!(uplot
        .text()
        .await
        .unwrap()
        .starts_with("/*! https://github.com/leeoniya/uPlot (v1.6.32) */"));
    server.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clients_holds_under_concurrent_upgrades() {
    let opts = AppOptions {
        hub: HubConfig {
            max_clients: 2,
            ..HubConfig::default()
        },
        ..AppOptions::default()
    };
    let server = TestServer::start(&[], opts).await;
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let url = server.ws_url.clone();
            tokio::spawn(async move { tokio_tungstenite::connect_async(url).await })
        })
        .collect();
    let mut open = Vec::new();
    let mut refused = 0;
    for a in attempts {
        match a.await.unwrap() {
            Ok((ws, _)) => open.push(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 503);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(open.len(), 2, "exactly max_clients admitted");
    assert_eq!(refused, 18);
    // A slot comes back when a client leaves.
    drop(open.pop());
    let mut again = None;
    for _ in 0..50 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(&server.ws_url).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the freed slot is reused");
    server.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscribe_snapshot_updates_unsubscribe() {
    let server = TestServer::start(&[], AppOptions::default()).await;
    let client = reqwest::Client::new();
    server.wait_for_quotes(&client).await;

    let mut ws = ws_connect(&server.ws_url).await;
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": ["XAUUSD", "nope"]}),
    )
    .await;
    let subscribed = next_json(&mut ws).await;
    assert_eq!(subscribed["type"], "subscribed");
    assert_eq!(subscribed["symbols"], json!(["XAUUSD"]));
    assert_eq!(subscribed["unknown"], json!(["NOPE"]));

    // Snapshot at once, then live updates with seq rising by one.
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["type"], "price_update");
    assert_eq!(snapshot["payload"]["symbol_code"], "XAUUSD");
    assert!(snapshot["payload"]["price"].is_string());
    let mut seq = snapshot["payload"]["seq"].as_u64().unwrap();
    for _ in 0..3 {
        let update = next_json(&mut ws).await;
        assert_eq!(update["type"], "price_update");
        assert_eq!(update["payload"]["symbol_code"], "XAUUSD");
        let next = update["payload"]["seq"].as_u64().unwrap();
        assert_eq!(next, seq + 1, "seq must rise by one");
        seq = next;
    }

    // Ping / pong.
    send(&mut ws, json!({"action": "ping"})).await;
    next_of_type(&mut ws, "pong").await;

    // A prediction_verified goes to every client.
    let mut other = ws_connect(&server.ws_url).await;
    send(&mut other, json!({"action": "ping"})).await;
    assert_eq!(next_json(&mut other).await["type"], "pong");
    let event = br#"{"type":"prediction_verified","payload":{"prediction_id":"p-1"}}"#;
    server.app.hub().publish_now(&[Broadcast {
        topic: Topic::All,
        payload: bytes::Bytes::from_static(event),
    }]);
    assert_eq!(next_json(&mut other).await["type"], "prediction_verified");
    assert_eq!(
        next_of_type(&mut ws, "prediction_verified").await["payload"]["prediction_id"],
        "p-1"
    );

    // Unsubscribe: no more updates afterwards.
    send(
        &mut ws,
        json!({"action": "unsubscribe", "symbols": ["XAUUSD"]}),
    )
    .await;
    let unsub = next_of_type(&mut ws, "unsubscribed").await;
    assert_eq!(unsub["symbols"], json!(["XAUUSD"]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    server.app.shutdown().await;
    // Shutdown closes WebSockets with 1001.
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(close, Some(CloseCode::Away));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_bad_frames_get_errors() {
    let opts = AppOptions {
        start_jobs: false,
        ..AppOptions::default()
    };
    let server = TestServer::start(&[], opts).await;
    let mut ws = ws_connect(&server.ws_url).await;

    ws.send(Message::text("{not json")).await.unwrap();
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert!(e["message"].as_str().unwrap().contains("JSON"), "{e}");

    send(&mut ws, json!({"action": "dance"})).await;
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert!(
        e["message"].as_str().unwrap().contains("unknown action"),
        "{e}"
    );

    let many: Vec<String> = (0..51).map(|i| format!("S{i}")).collect();
    send(&mut ws, json!({"action": "subscribe", "symbols": many})).await;
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert!(
        e["message"].as_str().unwrap().contains("too many symbols"),
        "{e}"
    );

    ws.send(Message::text("x".repeat(5000))).await.unwrap();
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert!(e["message"].as_str().unwrap().contains("too large"), "{e}");

    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "error");

    // More than 20 messages a second: one error, the rest ignored; the connection stays.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..30 {
        send(&mut ws, json!({"action": "ping"})).await;
    }
    let mut pongs = 0;
    let mut errors = 0;
    while pongs + errors < 21 {
        let m = next_json(&mut ws).await;
        match m["type"].as_str().unwrap() {
            "pong" => pongs += 1,
            "error" => {
                assert!(m["message"].as_str().unwrap().contains("too many messages"));
                errors += 1
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((pongs, errors), (20, 1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    // Beyond the hard limit: error, then close 1009.
    ws.send(Message::text("y".repeat(70 * 1024))).await.unwrap();
    let e = next_json(&mut ws).await;
    assert_eq!(e["type"], "error");
    let close = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap();
    match close {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected close 1009, got {other:?}"),
    }
    server.app.shutdown().await;
}

/// guide: *WebSocket protocol* (0.2): a client that falls behind gets the latest value of its
/// symbols instead of every value (`seq` jumps, nothing queues up), the others lose nothing; a
/// client that reads nothing at all for the ping timeout is disconnected with 1013.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_gets_the_latest_values_and_only_a_silent_one_is_dropped_with_1013() {
    let opts = AppOptions {
        start_jobs: false,
        hub: HubConfig {
            ping_interval: Duration::from_secs(2),
            close_timeout: Duration::from_secs(10),
            ..HubConfig::default()
        },
        ..AppOptions::default()
    };
    // Every update pushed (no push interval), so the slow client's socket does fill up.
    let server = TestServer::start(&[("GOLDJOBS_PUSH_INTERVAL", "0s")], opts).await;

    // The slow client: a tiny receive buffer, and it does not read during the burst.
    let addr = server.app.local_addr();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(server.ws_url.clone(), stream)
        .await
        .unwrap();
    slow.send(Message::text(
        json!({"action": "subscribe", "symbols": ["XAUUSD"]}).to_string(),
    ))
    .await
    .unwrap();
    let mut fast = ws_connect(&server.ws_url).await;
    send(
        &mut fast,
        json!({"action": "subscribe", "symbols": ["XAUUSD"]}),
    )
    .await;
    assert_eq!(next_json(&mut fast).await["type"], "subscribed");
    // Make sure the slow client's subscription is in before the burst.
    while server.app.hub().client_count() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The fast client reads everything in its own task: `seq` only grows.
    let reader = tokio::spawn(async move {
        let mut last_seq = 0u64;
        let mut count = 0u64;
        loop {
            let v = next_json(&mut fast).await;
            if v["type"] == "pong" {
                return (fast, count, last_seq);
            }
            assert_eq!(v["type"], "price_update");
            let seq = v["payload"]["seq"].as_u64().unwrap();
            assert!(seq > last_seq, "seq grows: {seq} after {last_seq}");
            last_seq = seq;
            count += 1;
        }
    });

    // A burst far beyond what the slow client's socket and the kernel's buffers hold (20 MB).
    let pad = "p".repeat(4000);
    let mut seq = 0u64;
    let hub = server.app.hub().clone();
    for _ in 0..100 {
        let batch: Vec<Broadcast> = (0..50)
            .map(|_| {
                seq += 1;
                let text = json!({"type": "price_update", "payload": {
                    "symbol_code": "XAUUSD", "price": "2658.50", "change": "1.00",
                    "change_percent": "0.04", "timestamp": "2026-11-29T20:00:00Z",
                    "seq": seq, "pad": pad}})
                .to_string();
                Broadcast {
                    topic: Topic::Symbol("XAUUSD".into()),
                    payload: bytes::Bytes::from(text),
                }
            })
            .collect();
        hub.publish_now(&batch);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        hub.client_count(),
        2,
        "falling behind is no reason to drop a client"
    );
    // The values the slow client will never get are counted.
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let replaced: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("goldjobs_ws_messages_dropped_total "))
        .expect("the counter is exported")
        .parse()
        .unwrap();
    assert!(replaced > 0.0, "conflated updates are counted: {replaced}");

    // The fast client gets the last update (at the latest one push interval later); a
    // pong-shaped message to everyone then ends its reader.
    tokio::time::sleep(Duration::from_millis(400)).await;
    hub.publish_now(&[Broadcast {
        topic: Topic::All,
        payload: bytes::Bytes::from_static(br#"{"type":"pong"}"#),
    }]);
    let (mut fast, count, last_seq) = reader.await.unwrap();
    assert_eq!(last_seq, seq, "the newest value always arrives");
    assert!(count > 0);
    send(&mut fast, json!({"action": "ping"})).await;
    assert_eq!(next_json(&mut fast).await["type"], "pong");

    // The slow client reads nothing at all: after the ping timeout it is dropped.
    let dropped = tokio::time::timeout(Duration::from_secs(15), async {
        while hub.client_count() > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(dropped.is_ok(), "the silent client was dropped");

    // What it reads now: older updates in order, then a close frame with 1013.
    let code = tokio::time::timeout(Duration::from_secs(15), async {
        let mut last = 0u64;
        loop {
            match slow.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] == "price_update" {
                        let s = v["payload"]["seq"].as_u64().unwrap();
                        assert!(s > last, "seq grows for the slow client too");
                        last = s;
                    }
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("read error {e}"),
                None => return None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(CloseCode::Again));
    let metrics = server.app.metrics().encode();
    assert!(
        metrics.contains("goldjobs_ws_slow_disconnects_total 1"),
        "{metrics}"
    );
    server.app.shutdown().await;
}

fn prediction(
    id: &str,
    rule: goldjobs::VerifyRule,
    conditions: Option<&str>,
) -> goldjobs::Prediction {
    let now = chrono::Utc::now();
    // An automatic one is due in two seconds, so that the verifier cannot end it between the
    // insert of the prediction and that of its votes; a manual one is past its deadline.
    let verify_time = match rule {
        goldjobs::VerifyRule::Auto => now + chrono::Duration::seconds(2),
        _ => now - chrono::Duration::seconds(1),
    };
    goldjobs::Prediction::new_active(
        id,
        "XAUUSD",
        "Gold up?",
        "2000".parse().unwrap(),
        verify_time,
        rule,
        conditions.map(str::to_owned),
        now - chrono::Duration::minutes(10),
    )
}

fn votes(id: &str) -> Vec<goldjobs::Vote> {
    [("u1", "A"), ("u2", "B")]
        .iter()
        .map(|(u, o)| goldjobs::Vote {
            prediction_id: id.to_owned(),
            user_id: (*u).to_owned(),
            selected_option: (*o).to_owned(),
            is_correct: None,
            created_at: chrono::Utc::now(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_are_verified_and_broadcast() {
    let server = TestServer::start(&[], AppOptions::default()).await;
    let client = reqwest::Client::new();
    server.wait_for_quotes(&client).await;
    let repo = server.app.repos().predictions.clone();
    let mut ws = ws_connect(&server.ws_url).await;
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    // A manual prediction, resolved by an admin.
    repo.insert_prediction(&prediction("m-1", goldjobs::VerifyRule::Manual, None))
        .await
        .unwrap();
    repo.insert_votes(&votes("m-1")).await.unwrap();
    let resolve = server.url("/admin/predictions/m-1/resolve");
    let resp = client
        .post(&resolve)
        .bearer_auth(TOKEN)
        .json(&json!({"correct_option": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["status"], "ended", "{p}");
    assert_eq!(p["correct_option"], "A");
    assert_eq!(p["price_source"], "manual");
    let v = repo.votes_for("m-1").await.unwrap();
    assert_eq!(
        v.iter()
            .map(|v| (v.user_id.as_str(), v.is_correct))
            .collect::<Vec<_>>(),
        vec![("u1", Some(true)), ("u2", Some(false))]
    );
    // Twice → 409; unknown → 404.
    let resp = client
        .post(&resolve)
        .bearer_auth(TOKEN)
        .json(&json!({"correct_option": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = client
        .post(server.url("/admin/predictions/nope/resolve"))
        .bearer_auth(TOKEN)
        .json(&json!({"correct_option": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // The outbox delivers prediction_verified to every client.
    let msg = next_of_type(&mut ws, "prediction_verified").await;
    assert_eq!(msg["payload"]["prediction_id"], "m-1");
    assert_eq!(msg["payload"]["correct_option"], "A");

    // An auto prediction in the platform's shape, verified by the job from the recorded ticks.
    let conditions = r#"{"A": {"condition": "price_change_percent >= 0"}, "B": {"condition": "price_change_percent < 0", "label": "down"}}"#;
    repo.insert_prediction(&prediction(
        "a-1",
        goldjobs::VerifyRule::Auto,
        Some(conditions),
    ))
    .await
    .unwrap();
    repo.insert_votes(&votes("a-1")).await.unwrap();
    let msg = tokio::time::timeout(
        Duration::from_secs(15),
        next_of_type(&mut ws, "prediction_verified"),
    )
    .await
    .unwrap();
    assert_eq!(msg["payload"]["prediction_id"], "a-1");
    assert_eq!(msg["payload"]["price_source"], "tick");
    let p = repo.get_prediction("a-1").await.unwrap().unwrap();
    assert_eq!(p.status, goldjobs::PredictionStatus::Ended);
    let stats = repo
        .user_stats(&["u1".to_owned(), "u2".to_owned()])
        .await
        .unwrap();
    assert!(
        stats.iter().all(|s| s.total_participations == 2),
        "{stats:?}"
    );

    // The evidence: why did the winning option win?
    let get = |path: String| {
        let client = client.clone();
        async move {
            let resp = client.get(path).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, e) = get(server.url("/predictions/a-1")).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["status"], "ended");
    assert_eq!(e["price_source"], "tick");
    assert_eq!(e["price_provider"], "demo", "{e}");
    assert!(e["price_at_verify"].is_string() && e["price_at_verify_ts"].is_string());
    let winner = e["correct_option"].as_str().unwrap();
    let options = e["options"].as_array().unwrap();
    let names: Vec<&str> = options
        .iter()
        .map(|o| o["option"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B"], "key order");
    assert_eq!(options[0]["condition"], "price_change_percent >= 0");
    assert_eq!(options[1]["condition"], "price_change_percent < 0");
    for o in options {
        assert_eq!(o["votes"], 1, "{o}");
        // The evidence agrees with the verdict: exactly the winner's condition is true here.
        assert_eq!(o["result"].as_bool(), Some(o["option"] == winner), "{e}");
    }
    let (status, list) = get(server.url("/predictions?status=ended&symbol=xauusd&limit=10")).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a-1", "m-1"], "most recently verified first");
    assert!(list["predictions"][0].get("options").is_none());
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "status=done",
        "symbol=%20",
    ] {
        let (status, body) = get(server.url(&format!("/predictions?{bad}"))).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
    let (status, _) = get(server.url("/predictions/nope")).await;
    assert_eq!(status, 404);
    let (status, st) = get(server.url("/users/u1/stats")).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["user_id"], "u1");
    assert_eq!(st["total_participations"], 2);
    assert!(st["accuracy_rate"].is_string());
    let (status, _) = get(server.url("/users/nobody/stats")).await;
    assert_eq!(status, 404);

    server.app.shutdown().await;
}

/// `GOLDJOBS_TEST_REDIS_URL`, or `None` (skip) — a failure when `GOLDJOBS_REQUIRE_SERVICES=1`.
fn test_redis_url() -> Option<String> {
    match std::env::var("GOLDJOBS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("GOLDJOBS_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("GOLDJOBS_TEST_REDIS_URL is not set but GOLDJOBS_REQUIRE_SERVICES=1");
            }
            eprintln!("skipped: GOLDJOBS_TEST_REDIS_URL is not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_quotes_are_shared_and_events_reach_every_instance() {
    let Some(redis_url) = test_redis_url() else {
        return;
    };
    let prefix = format!("test-{:016x}:", rand_u64());
    let leader = TestServer::start(
        &[("REDIS_URL", &redis_url)],
        AppOptions {
            redis_key_prefix: prefix.clone(),
            ..AppOptions::default()
        },
    )
    .await;
    // A second instance that runs no job: everything it shows comes through Redis.
    let follower = TestServer::start(
        &[("REDIS_URL", &redis_url)],
        AppOptions {
            redis_key_prefix: prefix.clone(),
            start_jobs: false,
            ..AppOptions::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let health: Value = client
        .get(follower.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["cache"], "ok", "{health}");
    follower.wait_for_quotes(&client).await;

    let mut ws = ws_connect(&follower.ws_url).await;
    send(
        &mut ws,
        json!({"action": "subscribe", "symbols": ["XAUUSD"]}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    let mut last = None;
    for _ in 0..3 {
        let m = next_json(&mut ws).await;
        assert_eq!(m["type"], "price_update");
        let seq = m["payload"]["seq"].as_u64().unwrap();
        if let Some(prev) = last {
            assert_eq!(seq, prev + 1);
        }
        last = Some(seq);
    }
    leader.app.shutdown().await;
    follower.app.shutdown().await;
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_the_server_migrates_fetches_and_verifies() {
    let base = match std::env::var("GOLDJOBS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var("GOLDJOBS_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("GOLDJOBS_TEST_DATABASE_URL is not set but GOLDJOBS_REQUIRE_SERVICES=1");
            }
            eprintln!("skipped: GOLDJOBS_TEST_DATABASE_URL is not set");
            return;
        }
    };
    // An own schema, so that other tests sharing the database are not disturbed.
    let schema = format!("gj_server_{:016x}", rand_u64());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let server = TestServer::start(&[("DATABASE_URL", &url)], AppOptions::default()).await;
    let client = reqwest::Client::new();
    let health: Value = client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], "ok", "{health}");
    server.wait_for_quotes(&client).await;
    // The price job caches, records and publishes concurrently: the ticks may land a moment
    // after the quotes are served.
    let mut ticks: i64 = 0;
    for _ in 0..100 {
        ticks = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {schema}.price_ticks"))
            .fetch_one(&admin)
            .await
            .unwrap();
        if ticks >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ticks >= 6, "{ticks} ticks");

    let repo = server.app.repos().predictions.clone();
    repo.insert_prediction(&prediction("pg-m-1", goldjobs::VerifyRule::Manual, None))
        .await
        .unwrap();
    repo.insert_votes(&votes("pg-m-1")).await.unwrap();
    let resp = client
        .post(server.url("/admin/predictions/pg-m-1/resolve"))
        .bearer_auth(TOKEN)
        .json(&json!({"correct_option": "B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["status"], "ended");
    assert_eq!(p["correct_option"], "B");

    server.app.shutdown().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_dropped_after_a_missed_pong() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let opts = AppOptions {
        start_jobs: false,
        hub: HubConfig {
            ping_interval: Duration::from_millis(200),
            ..HubConfig::default()
        },
        ..AppOptions::default()
    };
    let server = TestServer::start(&[], opts).await;

    // A live client: tokio-tungstenite answers pings while it reads.
    let mut live = ws_connect(&server.ws_url).await;
    let live_reader = tokio::spawn(async move { while let Some(Ok(_)) = live.next().await {} });

    // A dead one: completes the handshake, then never reads or writes again.
    let mut dead = TcpStream::connect(server.app.local_addr()).await.unwrap();
    dead.write_all(
        b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 512];
    let n = dead.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");

    let mut saw_two = false;
    for _ in 0..100 {
        let n = server.app.hub().client_count();
        if n == 2 {
            saw_two = true;
        }
        if saw_two && n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_two);
    assert_eq!(
        server.app.hub().client_count(),
        1,
        "the silent client is gone"
    );
    // The live one stays, several ping intervals later.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(server.app.hub().client_count(), 1);
    assert!(!live_reader.is_finished());
    server.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_are_notified_through_the_signed_webhook() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let url = format!("{}/hook", hook.uri());
    let server = TestServer::start(
        &[
            ("GOLDJOBS_WEBHOOK_URL", &url),
            ("GOLDJOBS_WEBHOOK_SECRET", "hook-secret"),
            ("GOLDJOBS_LOCALE", "en"),
        ],
        AppOptions::default(),
    )
    .await;
    let client = reqwest::Client::new();
    server.wait_for_quotes(&client).await;
    let repo = server.app.repos().predictions.clone();
    repo.insert_prediction(&prediction("w-1", goldjobs::VerifyRule::Manual, None))
        .await
        .unwrap();
    repo.insert_votes(&votes("w-1")).await.unwrap();
    let resp = client
        .post(server.url("/admin/predictions/w-1/resolve"))
        .bearer_auth(TOKEN)
        .json(&json!({"correct_option": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let mut requests = Vec::new();
    for _ in 0..100 {
        requests = hook.received_requests().await.unwrap();
        if requests.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(requests.len(), 2, "one notification per voter");
    let mut users = Vec::new();
    for r in &requests {
        let sig = r
            .headers
            .get("x-goldjobs-signature")
            .unwrap()
            .to_str()
            .unwrap();
        let ts = r
            .headers
            .get("x-goldjobs-timestamp")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(goldjobs::adapters::notify::webhook::verify_request(
            b"hook-secret",
            ts,
            &r.body,
            sig,
            chrono::Utc::now().timestamp(),
            Duration::from_secs(300),
        ));
        let delivery = r
            .headers
            .get("x-goldjobs-delivery")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(delivery.starts_with("outbox-"), "{delivery}");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        users.push(body["user_id"].as_str().unwrap().to_owned());
    }
    users.sort();
    assert_eq!(users, vec!["u1", "u2"]);
    server.app.shutdown().await;
}

/// A quote cache that is down.
struct DownCache;

#[async_trait::async_trait]
impl goldjobs::QuoteCache for DownCache {
    async fn put_quotes(
        &self,
        _quotes: &[goldjobs::Quote],
        _ttl: Duration,
    ) -> goldjobs::Result<()> {
        Err(goldjobs::Error::unavailable(
            "redis",
            "connection refused",
            None,
        ))
    }
    async fn get_quotes(&self, _codes: &[String]) -> goldjobs::Result<Vec<goldjobs::Quote>> {
        Err(goldjobs::Error::unavailable(
            "redis",
            "connection refused",
            None,
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_down_health_is_503_and_quotes_come_from_the_hub() {
    use goldjobs::memory::{
        InMemoryNews, InMemoryNewsCache, InMemoryPredictions, InMemorySymbols, InMemoryTicks,
        SoleLeader,
    };
    use goldjobs_server::http::{serve, HttpState};
    use goldjobs_server::hub::Hub;
    use goldjobs_server::metrics::Metrics;
    use std::sync::Arc;

    let metrics = Arc::new(Metrics::new());
    let hub = Hub::new(HubConfig::default(), metrics.clone());
    hub.set_known_symbols(["XAUUSD", "XAGUSD"]);
    let symbols = Arc::new(InMemorySymbols::with_symbols(vec![
        goldjobs::Symbol::new("XAUUSD", "Gold", "XAU/USD"),
        goldjobs::Symbol::new("XAGUSD", "Silver", "XAG/USD"),
    ]));
    let predictions = Arc::new(InMemoryPredictions::new());
    let resolver = goldjobs::verify::ManualResolver::new(
        &goldjobs::Ports::in_memory()
            .with_predictions(predictions.clone())
            .with_ticks(Arc::new(InMemoryTicks::new()))
            .with_symbols(symbols.clone()),
        Arc::new(goldjobs::adapters::market::DemoMarketData::new(1)),
    );
    let state = Arc::new(HttpState {
        hub: hub.clone(),
        jobs: Arc::new(goldjobs::runtime::JobManager::new(
            Arc::new(goldjobs::SystemClock),
            Arc::new(SoleLeader::new()),
            "test",
        )),
        metrics,
        symbols,
        quote_cache: Arc::new(DownCache),
        ticks: Arc::new(InMemoryTicks::new()),
        news: goldjobs::news::NewsReader::new(
            Arc::new(InMemoryNews::new()),
            Arc::new(InMemoryNewsCache::new()),
            Duration::from_secs(60),
        ),
        feeds: None,
        predictions: goldjobs::verify::PredictionReader::new(predictions),
        resolver: Arc::new(resolver),
        admin_token: None,
        cors_origins: Vec::new(),
        market_data: "demo".into(),
        stream: None,
        reads: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(serve(listener, state, stop.clone(), Duration::from_secs(2)));
    let client = reqwest::Client::new();

    let resp = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let health: Value = resp.json().await.unwrap();
    assert_eq!(health["database"], "ok");
    assert_eq!(health["cache"], "unavailable");
    assert!(
        !health.to_string().contains("connection refused"),
        "no internals: {health}"
    );

    // No last value yet: empty; after a published update: served from the hub.
    let q: Value = client
        .get(format!("{base}/quotes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(q["quotes"], json!([]));
    let update = goldjobs::Event::PriceUpdate(goldjobs::PriceUpdate {
        symbol_code: "XAUUSD".into(),
        price: "2658.50".parse().unwrap(),
        change: "28.30".parse().unwrap(),
        change_percent: "1.08".parse().unwrap(),
        timestamp: chrono::Utc::now(),
        seq: 42,
    })
    .to_broadcast()
    .unwrap();
    hub.publish_now(&[update]);
    let q: Value = client
        .get(format!("{base}/quotes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(q["quotes"][0]["symbol_code"], "XAUUSD");
    assert_eq!(q["quotes"][0]["price"], "2658.50");
    let one: Value = client
        .get(format!("{base}/quotes/XAUUSD"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["change_percent"], "1.08");

    stop.cancel();
    server.await.unwrap();
}

/// Skip everything until a message of `kind` arrives.
async fn next_event(ws: &mut Ws, kind: &str) -> Value {
    for _ in 0..500 {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
    panic!("no {kind} message");
}

/// Corrections and voids through the real server (guide: *HTTP API*; *WebSocket protocol*;
/// *Corrections and voids*): admin auth, 404, 409, 400, the WebSocket events every client gets, and
/// the recomputed statistics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_and_voids_through_the_api() {
    let server = TestServer::start(&[], AppOptions::default()).await;
    let client = reqwest::Client::new();
    server.wait_for_quotes(&client).await;
    let repo = server.app.repos().predictions.clone();
    let mut ws = ws_connect(&server.ws_url).await;
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    let post = |path: &str, body: Value| {
        client
            .post(server.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let stats = |repo: std::sync::Arc<dyn goldjobs::PredictionRepository>| async move {
        repo.user_stats(&["u1".to_owned(), "u2".to_owned()])
            .await
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    s.user_id,
                    s.total_participations,
                    s.correct_count,
                    s.current_streak,
                )
            })
            .collect::<Vec<_>>()
    };

    repo.insert_prediction(&prediction("m-1", goldjobs::VerifyRule::Manual, None))
        .await
        .unwrap();
    repo.insert_votes(&votes("m-1")).await.unwrap();
    let resp = post(
        "/admin/predictions/m-1/resolve",
        json!({"correct_option": "A"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        stats(repo.clone()).await,
        vec![("u1".into(), 1, 1, 1), ("u2".into(), 1, 0, 0)]
    );

    // A correction with a price: 200, the prediction as stored, stats recomputed.
    for bad in [
        json!({"correct_option": "B", "price_at_verify": 2620.5}),
        json!({"correct_option": "B", "price_at_verify": "abc"}),
        json!({"correct_option": "B", "price_at_verify": "-1"}),
        json!({"correct_option": "B", "price_at_verify": "0"}),
        json!({"option": "B"}),
    ] {
        let resp = post("/admin/predictions/m-1/resolve", bad.clone())
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let e: Value = resp.json().await.unwrap();
        assert!(e["error"].is_string());
    }
    let resp = post(
        "/admin/predictions/m-1/resolve",
        json!({"correct_option": "B", "price_at_verify": "1980.00"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["status"], "ended", "{p}");
    assert_eq!(p["correct_option"], "B");
    assert_eq!(p["price_at_verify"], "1980.00");
    assert_eq!(p["price_change_percent"], "-1.00");
    assert_eq!(p["price_source"], "manual");
    assert_eq!(
        stats(repo.clone()).await,
        vec![("u1".into(), 1, 0, 0), ("u2".into(), 1, 1, 1)]
    );
    // The same correction again changes nothing: 409.
    let resp = post(
        "/admin/predictions/m-1/resolve",
        json!({"correct_option": "B"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 409);
    let msg = next_event(&mut ws, "prediction_corrected").await;
    assert_eq!(msg["payload"]["prediction_id"], "m-1");
    assert_eq!(msg["payload"]["correct_option"], "B");
    assert_eq!(msg["payload"]["previous_option"], "A");
    assert_eq!(msg["payload"]["price_at_verify"], "1980.00");
    assert_eq!(msg["payload"]["price_source"], "manual");

    // Void: auth first, then the body; 404 unknown; 400 empty reason; 200; 409 the second time.
    let void = server.url("/admin/predictions/m-1/void");
    let resp = client
        .post(&void)
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .post(&void)
        .bearer_auth("wrong")
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    for bad in [json!({}), json!({"reason": "   "}), json!({"reason": 5})] {
        let resp = post("/admin/predictions/m-1/void", bad.clone())
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    let resp = client
        .post(&void)
        .bearer_auth(TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = post("/admin/predictions/nope/void", json!({"reason": "x"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = post(
        "/admin/predictions/m-1/void",
        json!({"reason": "  the event was cancelled  "}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["status"], "void");
    assert_eq!(p["review_reason"], "the event was cancelled");
    assert_eq!(
        stats(repo.clone()).await,
        vec![("u1".into(), 0, 0, 0), ("u2".into(), 0, 0, 0)],
        "a voided prediction counts for nobody"
    );
    let resp = post("/admin/predictions/m-1/void", json!({"reason": "again"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = post(
        "/admin/predictions/m-1/resolve",
        json!({"correct_option": "A"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 409, "void is final");
    let msg = next_event(&mut ws, "prediction_voided").await;
    assert_eq!(
        msg["payload"],
        json!({"prediction_id": "m-1", "symbol_code": "XAUUSD", "reason": "the event was cancelled"})
    );
    let resp = client
        .get(server.url("/admin/predictions/m-1/void"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);

    server.app.shutdown().await;
}

/// Every JSON answer of the real server conforms to its schema in `/openapi.json`: the document
/// cannot drift from what the handlers send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_conform_to_the_openapi_document() {
    use goldjobs_server::openapi::{check, response_schema};
    let server = TestServer::start(&[], AppOptions::default()).await;
    let client = reqwest::Client::new();
    server.wait_for_quotes(&client).await;
    let repo = server.app.repos().predictions.clone();
    let conditions = r#"{"A": {"condition": "price_change_percent >= 0"}, "B": {"condition": "price_change_percent < 0"}}"#;
    for id in ["oa-auto", "oa-void"] {
        repo.insert_prediction(&prediction(
            id,
            goldjobs::VerifyRule::Auto,
            Some(conditions),
        ))
        .await
        .unwrap();
        repo.insert_votes(&votes(id)).await.unwrap();
    }
    repo.insert_prediction(&prediction("oa-manual", goldjobs::VerifyRule::Manual, None))
        .await
        .unwrap();
    repo.insert_votes(&votes("oa-manual")).await.unwrap();
    // Let the verifier decide the auto ones.
    for _ in 0..100 {
        let p = repo.get_prediction("oa-auto").await.unwrap().unwrap();
        if p.status == goldjobs::PredictionStatus::Ended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let doc: Value = client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    let conform = |documented: &'static str, method: &'static str, status: u16, body: Value| {
        let schema = response_schema(method, documented, status)
            .unwrap_or_else(|| panic!("{method} {documented} {status} is not documented"));
        let problems = check(schema, &body);
        assert!(
            problems.is_empty(),
            "{method} {documented} {status}: {problems:?}\n{body}"
        );
    };
    let gets: &[(&str, &str, &str, u16)] = &[
        ("/health", "/health", "get", 200),
        ("/jobs/status", "/jobs/status", "get", 200),
        ("/quotes", "/quotes", "get", 200),
        ("/quotes/XAUUSD", "/quotes/{symbol}", "get", 200),
        ("/quotes/NOPE", "/quotes/{symbol}", "get", 404),
        (
            "/quotes/XAUUSD/candles",
            "/quotes/{symbol}/candles",
            "get",
            200,
        ),
        (
            "/quotes/XAUUSD/candles?interval=1h&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            "/quotes/{symbol}/candles",
            "get",
            200,
        ),
        (
            "/quotes/XAUUSD/candles?interval=2m",
            "/quotes/{symbol}/candles",
            "get",
            400,
        ),
        (
            "/quotes/XAUUSD/candles?interval=1m&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z",
            "/quotes/{symbol}/candles",
            "get",
            400,
        ),
        (
            "/quotes/XAUUSD/candles?from=yesterday",
            "/quotes/{symbol}/candles",
            "get",
            400,
        ),
        (
            "/quotes/NOPE/candles",
            "/quotes/{symbol}/candles",
            "get",
            404,
        ),
        ("/news?limit=5", "/news", "get", 200),
        ("/news?limit=0", "/news", "get", 400),
        ("/predictions?limit=100", "/predictions", "get", 200),
        ("/predictions/oa-auto", "/predictions/{id}", "get", 200),
        ("/predictions/oa-manual", "/predictions/{id}", "get", 200),
        ("/predictions/nope", "/predictions/{id}", "get", 404),
        ("/users/u1/stats", "/users/{id}/stats", "get", 200),
        ("/users/nobody/stats", "/users/{id}/stats", "get", 404),
        (
            "/jobs/PriceFetcherJob/runs?limit=5",
            "/jobs/{name}/runs",
            "get",
            200,
        ),
        (
            "/jobs/PriceFetcherJob/runs?limit=0",
            "/jobs/{name}/runs",
            "get",
            400,
        ),
        ("/jobs/NoSuchJob/runs", "/jobs/{name}/runs", "get", 404),
    ];
    for (url, documented, method, status) in gets {
        let resp = client.get(server.url(url)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{url}");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        conform(documented, method, *status, resp.json().await.unwrap());
    }
    let posts: &[(&str, &str, Value, u16)] = &[
        (
            "/admin/predictions/oa-manual/resolve",
            "/admin/predictions/{id}/resolve",
            json!({"correct_option": "A"}),
            200,
        ),
        (
            "/admin/predictions/oa-auto/resolve",
            "/admin/predictions/{id}/resolve",
            json!({"correct_option": "B", "price_at_verify": "1.5"}),
            200,
        ),
        (
            "/admin/predictions/oa-void/void",
            "/admin/predictions/{id}/void",
            json!({"reason": "market closed"}),
            200,
        ),
        (
            "/admin/predictions/oa-void/void",
            "/admin/predictions/{id}/void",
            json!({"reason": "again"}),
            409,
        ),
        (
            "/admin/predictions/nope/void",
            "/admin/predictions/{id}/void",
            json!({"reason": "x"}),
            404,
        ),
        (
            "/admin/predictions/oa-auto/resolve",
            "/admin/predictions/{id}/resolve",
            json!({"wrong": 1}),
            400,
        ),
        (
            "/jobs/NewsFetcherJob/run",
            "/jobs/{name}/run",
            json!({}),
            202,
        ),
        ("/jobs/NoSuchJob/run", "/jobs/{name}/run", json!({}), 404),
        (
            "/jobs/RetentionJob/pause",
            "/jobs/{name}/pause",
            json!({}),
            200,
        ),
        (
            "/jobs/RetentionJob/resume",
            "/jobs/{name}/resume",
            json!({}),
            200,
        ),
        (
            "/jobs/NoSuchJob/pause",
            "/jobs/{name}/pause",
            json!({}),
            404,
        ),
    ];
    for (url, documented, body, status) in posts {
        let resp = client
            .post(server.url(url))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{url} {body}");
        conform(documented, "post", *status, resp.json().await.unwrap());
    }
    let resp = client
        .post(server.url("/jobs/NewsFetcherJob/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    conform("/jobs/{name}/run", "post", 401, resp.json().await.unwrap());
    server.app.shutdown().await;
}
