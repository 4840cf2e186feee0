//! Helpers of the multi-instance tests: service discovery (skip or fail), an own PostgreSQL
//! schema, a private `redis-server`, server processes (the built binary) killed on drop, a
//! loopback Twelve Data provider counting its `/quote` requests, and WebSocket clients.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// `GOLDJOBS_REQUIRE_SERVICES=1`: a missing service is a failure, not a skip.
pub fn services_required() -> bool {
    std::env::var("GOLDJOBS_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// The value of `var`, or `None` after printing why the test is skipped (a panic when
/// services are required).
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if services_required() {
                panic!("{var} is not set but GOLDJOBS_REQUIRE_SERVICES=1");
            }
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// A random number (no extra dependency).
pub fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: an own schema shared by the instances of one test.

/// A fresh schema `gj_mi_<random>`, dropped (CASCADE) on [`Schema::drop_now`] or on drop.
pub struct Schema {
    base: String,
    /// The schema name.
    pub name: String,
    /// `DATABASE_URL` for the instances (search_path = the schema).
    pub url: String,
    /// A pool on the same schema for the test's own queries.
    pub pool: sqlx::PgPool,
    dropped: bool,
}

impl Schema {
    /// Create the schema; a panic when PostgreSQL cannot be reached.
    pub async fn create(base: &str) -> Schema {
        let name = format!("gj_mi_{:016x}", rand_u64());
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(base)
            .await
            .expect("cannot connect to GOLDJOBS_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        Schema {
            base: base.to_owned(),
            name,
            url,
            pool,
            dropped: false,
        }
    }

    /// Drop the schema now.
    pub async fn drop_now(mut self) {
        self.pool.close().await;
        drop_schema(&self.base, &self.name).await;
        self.dropped = true;
    }
}

async fn drop_schema(base: &str, name: &str) {
    if let Ok(admin) = sqlx::PgPool::connect(base).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // A failed test: drop it from a thread of its own (the test's runtime may be gone).
        let (base, name) = (self.base.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_schema(&base, &name));
            }
        })
        .join();
    }
}

// ---------------------------------------------------------------------------------------------
// A private redis-server.

/// A `redis-server` child process on a loopback port of its own (killed on drop).
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Start one, or `None` when `redis-server` cannot be run here.
    pub fn start() -> Option<PrivateRedis> {
        let port = free_port();
        let mut r = PrivateRedis { port, child: None };
        if !r.spawn() {
            return None;
        }
        Some(r)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = StdStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not come back on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Server processes.

/// One `goldjobs-server` process (SIGKILLed on drop).
pub struct Instance {
    /// A label for messages (`A`, `B`, `C`).
    pub label: String,
    /// Its bound address.
    pub addr: SocketAddr,
    /// Its pid.
    pub pid: u32,
    child: Option<Child>,
    /// Where its stderr (logs) go.
    pub log: PathBuf,
}

impl Instance {
    /// Start the binary with exactly `env` (plus PATH) and wait for `listening on ADDR`.
    pub fn spawn(label: &str, env: &[(String, String)], log_dir: &std::path::Path) -> Instance {
        let log = log_dir.join(format!("{label}-{}.log", rand_u64()));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_goldjobs-server"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(1);
        std::thread::spawn(move || {
            // Keep draining stdout so the child never blocks on a full pipe.
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                }
            }
        });
        let mut me = Instance {
            label: label.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            child: Some(child),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => me.addr = addr.parse().unwrap(),
            Err(_) => {
                me.kill();
                panic!(
                    "instance {label} did not start; its log:\n{}",
                    me.log_tail(4000)
                );
            }
        }
        me
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `ws://ADDR/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// SIGKILL (`Child::kill`) and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (a graceful stop); the process is reaped by [`reap`](Self::reap) or on drop.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {} failed", self.pid);
    }

    /// Wait for the process to end (after [`terminate`](Self::terminate)).
    pub fn reap(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Whether it was killed.
    pub fn is_dead(&self) -> bool {
        self.child.is_none()
    }

    /// The last `n` bytes of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = s.len().saturating_sub(n);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s[start..].to_owned()
    }

    /// `GET /jobs/status` → the entry of `job`.
    pub async fn job_status(&self, http: &reqwest::Client, job: &str) -> Option<Value> {
        let body: Value = http
            .get(self.url("/jobs/status"))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["name"] == job)
            .cloned()
    }

    /// Whether `/jobs/status` shows this instance as leader of `job`.
    pub async fn leads(&self, http: &reqwest::Client, job: &str) -> bool {
        match self.job_status(http, job).await {
            Some(j) => j["is_leader"] == true,
            None => false,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The common environment of the instances of a test.
pub fn base_env(database_url: &str, redis_url: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("GOLDJOBS_LISTEN", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        ("GOLDJOBS_QUOTE_TTL", "30s".to_owned()),
        // A local address where nothing listens: no traffic leaves the machine.
        (
            "GOLDJOBS_NEWS_FEEDS",
            "gold|Local test feed|http://127.0.0.1:9/rss".to_owned(),
        ),
        ("GOLDJOBS_NEWS_INTERVAL", "1h".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(r) = redis_url {
        env.push(("REDIS_URL".to_owned(), r.to_owned()));
    }
    env
}

/// Set `key` in `env` (replacing).
pub fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
}

/// Run `goldjobs-server migrate` once (before seeding and before the instances race).
pub fn migrate(env: &[(String, String)]) {
    let out = Command::new(env!("CARGO_BIN_EXE_goldjobs-server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// A loopback Twelve Data provider.

/// Answers `GET /quote?symbol=A,B,…` in the documented batch shape (an object keyed by the
/// provider symbol; a single symbol answers with the quote object itself), counting requests.
pub struct Provider {
    /// Its base URL.
    pub base_url: String,
    requests: Arc<AtomicU64>,
    times: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Provider {
    /// Start it on a loopback port.
    pub async fn start() -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let times = Arc::new(Mutex::new(Vec::new()));
        let (r, t) = (requests.clone(), times.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (r, t) = (r.clone(), t.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (r, t) = (r.clone(), t.clone());
                        async move { Ok::<_, std::convert::Infallible>(answer(&req, &r, &t)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Provider {
            base_url: format!("http://{addr}"),
            requests,
            times,
            task,
        }
    }

    /// `/quote` requests so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// When each `/quote` request arrived.
    pub fn request_times(&self) -> Vec<Instant> {
        self.times.lock().unwrap().clone()
    }

    /// The instances' environment pointing at this provider.
    pub fn env(&self, env: &mut Vec<(String, String)>) {
        set(env, "GOLDJOBS_MARKET_DATA", "twelvedata");
        set(env, "TWELVEDATA_BASE_URL", &self.base_url);
        set(env, "TWELVEDATA_API_KEY", "test-key");
        set(env, "TWELVEDATA_CREDITS_PER_MINUTE", "100000");
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(
    req: &Request<hyper::body::Incoming>,
    requests: &AtomicU64,
    times: &Mutex<Vec<Instant>>,
) -> Response<Full<Bytes>> {
    let json_response = |status: u16, body: Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    if req.uri().path() != "/quote" {
        return json_response(
            404,
            json!({"code": 404, "message": "not found", "status": "error"}),
        );
    }
    let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
    times.lock().unwrap().push(Instant::now());
    let symbols: Vec<String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k == "symbol")
            .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
            .collect();
    let now = chrono::Utc::now();
    let quote = |s: &str, i: usize| {
        // A price that moves with every request: 1000 + 100·i + n/100.
        let cents = 100_000 + 10_000 * i as u64 + n;
        json!({
            "symbol": s,
            "name": s,
            "exchange": "Physical Currency",
            "datetime": now.format("%Y-%m-%d").to_string(),
            "timestamp": now.timestamp(),
            "last_quote_at": now.timestamp(),
            "open": "1000.00",
            "close": format!("{}.{:02}", cents / 100, cents % 100),
            "previous_close": "1000.00",
            "is_market_open": true
        })
    };
    let body = if symbols.len() == 1 {
        quote(&symbols[0], 0)
    } else {
        Value::Object(
            symbols
                .iter()
                .enumerate()
                .map(|(i, s)| (s.clone(), quote(s, i)))
                .collect(),
        )
    };
    json_response(200, body)
}

// ---------------------------------------------------------------------------------------------
// WebSocket clients.

/// A WebSocket connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connect and subscribe to `symbols`; returns after the `subscribed` answer.
pub async fn ws_subscribe(url: &str, symbols: &[&str]) -> Ws {
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("websocket connect timed out")
    .unwrap();
    ws.send(Message::text(
        json!({"action": "subscribe", "symbols": symbols}).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let v = next_json(&mut ws, Duration::from_secs(5))
            .await
            .expect("no subscribed answer");
        if v["type"] == "subscribed" {
            return ws;
        }
    }
}

/// The next JSON text message within `wait` (pings skipped); `None` on timeout or close.
pub async fn next_json(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg.ok()? {
            Message::Text(t) => return serde_json::from_str(t.as_str()).ok(),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Collect the `seq` of every `price_update` of `symbol` arriving within `wait`.
pub async fn collect_seqs(ws: &mut Ws, symbol: &str, wait: Duration) -> Vec<u64> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut seqs = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return seqs;
        }
        match next_json(ws, left).await {
            Some(v) => {
                if v["type"] == "price_update" && v["payload"]["symbol_code"] == symbol {
                    if let Some(seq) = v["payload"]["seq"].as_u64() {
                        seqs.push(seq);
                    }
                }
            }
            None => return seqs,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A cuttable TCP proxy (to take a shared service "down" for one test without touching it).

/// Forwards loopback connections to `target`; [`CutProxy::cut`] drops every connection and
/// refuses new ones until [`CutProxy::restore`].
pub struct CutProxy {
    /// Its address.
    pub addr: SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Start forwarding to `target` (`host:port`).
    pub async fn start(target: String) -> CutProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (up2, gen2) = (up.clone(), generation.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = gen2.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        CutProxy {
            addr,
            up,
            generation,
            task,
        }
    }

    /// Drop every connection and refuse new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accept connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// `url` with its host and port replaced by `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_host(Some(&addr.ip().to_string())).unwrap();
    u.set_port(Some(addr.port())).unwrap();
    u.to_string()
}

/// `host:port` of a service URL.
pub fn host_port(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!(
        "{}:{}",
        u.host_str().unwrap_or("127.0.0.1"),
        u.port_or_known_default().unwrap_or(5432)
    )
}

/// A loopback Twelve Data price stream (`TWELVEDATA_WS_URL`): answers every subscription with a
/// `subscribe-status` listing every symbol as a success, then sends a price event per symbol
/// every 200 ms stamped now. Counts connections; can be taken down (every connection closed,
/// new ones refused) and brought back.
pub struct FakeStream {
    /// Its URL.
    pub url: String,
    open: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    max_open: Arc<AtomicU64>,
    down: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeStream {
    /// Start it on a loopback port.
    pub async fn start() -> FakeStream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicU64::new(0));
        let total = Arc::new(AtomicU64::new(0));
        let max_open = Arc::new(AtomicU64::new(0));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (o, t, m, d) = (open.clone(), total.clone(), max_open.clone(), down.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                if d.load(Ordering::SeqCst) {
                    drop(tcp);
                    continue;
                }
                let (o, t, m, d) = (o.clone(), t.clone(), m.clone(), d.clone());
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    t.fetch_add(1, Ordering::SeqCst);
                    let now_open = o.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now_open, Ordering::SeqCst);
                    serve_stream(ws, &d).await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FakeStream {
            url: format!("ws://{addr}/v1/quotes/price"),
            open,
            total,
            max_open,
            down,
            task,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }

    /// The most connections ever open at once.
    pub fn max_open(&self) -> u64 {
        self.max_open.load(Ordering::SeqCst)
    }

    /// Close every connection and refuse new ones (`true`), or accept again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The instances' environment pointing at this stream.
    pub fn env(&self, env: &mut Vec<(String, String)>) {
        set(env, "GOLDJOBS_MARKET_STREAM", "twelvedata");
        set(env, "TWELVEDATA_WS_URL", &self.url);
    }
}

impl Drop for FakeStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_stream(mut ws: WebSocketStream<TcpStream>, down: &std::sync::atomic::AtomicBool) {
    let mut symbols: Vec<String> = Vec::new();
    let mut every = tokio::time::interval(Duration::from_millis(200));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if v["action"] == "subscribe" {
                        symbols = v["params"]["symbols"]
                            .as_str()
                            .unwrap_or("")
                            .split(',')
                            .map(str::to_owned)
                            .collect();
                        let success: Vec<Value> =
                            symbols.iter().map(|s| json!({"symbol": s})).collect();
                        let status = json!({"event": "subscribe-status", "status": "ok",
                            "success": success, "fails": []});
                        if ws.send(Message::text(status.to_string())).await.is_err() {
                            return;
                        }
                    } else if v["action"] == "heartbeat" {
                        let _ = ws
                            .send(Message::text(r#"{"event":"heartbeat","status":"ok"}"#))
                            .await;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            _ = every.tick() => {
                if down.load(Ordering::SeqCst) {
                    let _ = ws.close(None).await;
                    return;
                }
                n += 1;
                let now = chrono::Utc::now().timestamp();
                for (i, s) in symbols.iter().enumerate() {
                    let price = format!("{}.{:02}", 2000 + 100 * i as u64, n % 100);
                    let event = json!({"event": "price", "symbol": s, "timestamp": now,
                        "price": price.parse::<f64>().unwrap_or(1.0)});
                    if ws.send(Message::text(event.to_string())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
