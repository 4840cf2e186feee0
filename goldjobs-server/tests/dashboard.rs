//! The dashboard (`GET /`) in a real browser: headless Chromium loads the page from the server
//! (started in-process on a loopback port with a temporary SQLite file and the demo feed every
//! 200 ms), lets its scripts run (WebSocket, polling) for a few seconds of virtual time, and dumps
//! the DOM, in which the live prices, the jobs and a verified prediction must show.
//!
//! Needs `chromium` (Debian package; `GOLDJOBS_CHROMIUM` may name another binary). Without it the
//! test prints why and passes, except with `GOLDJOBS_REQUIRE_SERVICES=1` (CI), where it fails.
//! With `GOLDJOBS_DASHBOARD_SCREENSHOT=/tmp/dashboard.png` it also saves a 1280×900 screenshot.

#![allow(clippy::unwrap_used)]

use chrono::Utc;
use goldjobs::{Event, PredictionVerified, PriceSource};
use goldjobs_server::app::{self, App, AppOptions};
use goldjobs_server::config::Config;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one browser run may take in real time before it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// The prediction id the test announces over the hub.
const PREDICTION_ID: &str = "dashboard-test-prediction";

/// The Chromium binary, or `None` when there is none.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GOLDJOBS_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn require_services() -> bool {
    std::env::var("GOLDJOBS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

async fn start_server(dir: &Path) -> App {
    let db = dir.join("dashboard-test.db");
    let env: HashMap<String, String> = [
        ("GOLDJOBS_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        ),
        ("GOLDJOBS_MARKET_DATA", "demo".to_owned()),
        ("GOLDJOBS_PRICE_INTERVAL", "200ms".to_owned()),
        ("GOLDJOBS_QUOTE_TTL", "30s".to_owned()),
        // Nothing listens there: no traffic leaves the machine.
        (
            "GOLDJOBS_NEWS_FEEDS",
            "gold|Local test feed|http://127.0.0.1:9/rss".to_owned(),
        ),
        ("GOLDJOBS_NEWS_INTERVAL", "1h".to_owned()),
        ("GOLDJOBS_VERIFY_INTERVAL", "1s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cfg = Config::from_sources(None, &env).unwrap();
    app::start(cfg, AppOptions::default()).await.unwrap()
}

/// Wait until the price job has cached a quote of XAUUSD.
async fn wait_for_gold(base: &str) {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/quotes/XAUUSD")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no XAUUSD quote after 10 s");
}

/// Run Chromium headless on `url` with `extra` arguments; its stdout, killed after the timeout.
fn run_browser(chromium: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let stderr_path = profile.join("chromium-stderr.log");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            // Timers and sockets run; the page is dumped after 4 s of virtual time.
            "--virtual-time-budget=4000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    // Read stdout on a thread so that a large DOM never blocks the browser on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}; stderr:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.join().unwrap();
    if !status.success() {
        let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        panic!("chromium failed ({status}); stderr:\n{log}");
    }
    out
}

/// The text of the first `<td>` after the cell whose text is `label`, inside `within`.
fn cell_after(html: &str, label: &str) -> Option<String> {
    let at = html.find(&format!(">{label}</td>"))? + label.len() + 6;
    let rest = &html[at..];
    let open = rest.find("<td")?;
    let rest = &rest[open..];
    let start = rest.find('>')? + 1;
    let end = rest.find("</td>")?;
    Some(rest.get(start..end)?.to_owned())
}

/// The inner HTML of the element with this opening tag (e.g. `<tbody id="prices">`).
fn element<'a>(html: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = html.find(open)? + open.len();
    let len = html[start..].find(close)?;
    Some(&html[start..start + len])
}

/// A plain decimal number as the wire carries prices: digits, a point, digits.
fn is_decimal(s: &str) -> bool {
    match s.split_once('.') {
        Some((int, frac)) => {
            !int.is_empty()
                && !frac.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_prices_jobs_and_verified_predictions() {
    let Some(chromium) = chromium() else {
        if require_services() {
            panic!("GOLDJOBS_REQUIRE_SERVICES=1 but no chromium found (apt-get install chromium, or set GOLDJOBS_CHROMIUM)");
        }
        println!("skipping the dashboard browser test: no chromium on PATH (apt-get install chromium, or set GOLDJOBS_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = start_server(dir.path()).await;
    let base = format!("http://{}", app.local_addr());
    wait_for_gold(&base).await;

    // A verification announcement every 50 ms, so the page sees one while it is connected.
    let hub = app.hub().clone();
    let announcer = tokio::spawn(async move {
        let event = Event::PredictionVerified(PredictionVerified {
            prediction_id: PREDICTION_ID.to_owned(),
            symbol_code: "XAUUSD".to_owned(),
            correct_option: "A".to_owned(),
            price_at_verify: Decimal::new(268_000, 2),
            price_change_percent: Some(Decimal::new(113, 2)),
            price_source: PriceSource::Tick,
            price_at_verify_ts: Utc::now(),
        });
        let b = event.to_broadcast().unwrap();
        loop {
            hub.publish_now(std::slice::from_ref(&b));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let browser_dir = tempfile::tempdir().unwrap();
    let dom = {
        let (chromium, profile, url) = (
            chromium.clone(),
            browser_dir.path().to_owned(),
            base.clone(),
        );
        tokio::task::spawn_blocking(move || {
            run_browser(&chromium, &profile, &format!("{url}/"), &["--dump-dom"])
        })
        .await
        .unwrap()
    };
    if let Ok(path) = std::env::var("GOLDJOBS_DASHBOARD_SCREENSHOT") {
        let (chromium, profile, url) = (
            chromium.clone(),
            browser_dir.path().to_owned(),
            base.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let shot = format!("--screenshot={path}");
            run_browser(
                &chromium,
                &profile,
                &format!("{url}/"),
                &[shot.as_str(), "--window-size=1280,900"],
            )
        })
        .await
        .unwrap();
    }
    announcer.abort();

    // Live prices arrived over the WebSocket: a row per symbol, XAUUSD with a decimal price.
    let prices = element(&dom, r#"<tbody id="prices">"#, "</tbody>")
        .unwrap_or_else(|| panic!("no prices table in the page:\n{dom}"));
    let gold = cell_after(prices, "XAUUSD")
        .unwrap_or_else(|| panic!("no XAUUSD row in the prices table:\n{prices}"));
    assert!(is_decimal(&gold), "XAUUSD price {gold:?} is not a decimal");
    let gold: Decimal = gold.parse().unwrap();
    assert!(
        gold > Decimal::from(500) && gold < Decimal::from(20_000),
        "implausible gold price {gold}"
    );
    for symbol in ["XAGUSD", "EURUSD", "BTCUSD"] {
        let price = cell_after(prices, symbol)
            .unwrap_or_else(|| panic!("no {symbol} row in the prices table:\n{prices}"));
        assert!(
            is_decimal(&price),
            "{symbol} price {price:?} is not a decimal"
        );
    }
    assert!(
        dom.contains(r#"<span id="ws" class="badge ok">live</span>"#),
        "the WebSocket badge does not say live:\n{dom}"
    );

    // Jobs by polling /jobs/status.
    let jobs = element(&dom, r#"<tbody id="jobs">"#, "</tbody>")
        .unwrap_or_else(|| panic!("no jobs table in the page:\n{dom}"));
    for job in ["PriceFetcherJob", "NewsFetcherJob", "PredictionVerifierJob"] {
        assert!(
            jobs.contains(job),
            "{job} missing from the jobs table:\n{jobs}"
        );
    }

    // The verification announcement over the WebSocket.
    let verified = element(&dom, r#"<ul id="verified">"#, "</ul>")
        .unwrap_or_else(|| panic!("no verified list in the page:\n{dom}"));
    assert!(
        verified.contains(PREDICTION_ID) && verified.contains("XAUUSD → A"),
        "the verified prediction is not shown:\n{verified}"
    );

    // The news section is there (the only feed is unreachable, so it says so).
    assert!(dom.contains(r#"<ul id="news">"#), "no news list:\n{dom}");
    // The unreachable feed is listed as unhealthy, with its error.
    let feeds = element(&dom, r#"<ul id="feeds">"#, "</ul>").unwrap_or_default();
    assert!(
        feeds.contains("Local test feed") && feeds.contains("failure(s) in a row"),
        "the failing feed is not shown:\n{feeds}"
    );

    app.shutdown().await;
}
