//! The dashboard (`GET /`) in a real browser: headless Chromium, driven over the DevTools
//! protocol (chromiumoxide), loads the page from the server (started in-process on a loopback
//! port with a temporary SQLite file and the demo feed every 200 ms) and is used as a person
//! would: the chart draws the recorded candles and moves with live ticks, the interval buttons
//! switch it (also from the keyboard), a verdict's evidence expands, jobs are paused and resumed
//! with an admin token, and the layout holds at 1440 px and at 390 px. Every console error,
//! uncaught exception and browser log error (a CSP violation, a failed load) fails the test.
//!
//! Needs `chromium` (Debian package; `GOLDJOBS_CHROMIUM` may name another binary). Without it the
//! test prints why and passes, except with `GOLDJOBS_REQUIRE_SERVICES=1` (CI), where it fails.
//! With `GOLDJOBS_DASHBOARD_SCREENSHOTS=DIR` it saves `dashboard-1440.png` and
//! `dashboard-390.png` there (the README's screenshots: `GOLDJOBS_DASHBOARD_SCREENSHOTS=docs`).

#![allow(clippy::unwrap_used)]

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use chrono::{DurationRound, TimeDelta, Utc};
use futures::StreamExt;
use goldjobs::{Prediction, PredictionStatus, PriceTick, VerifyRule, Vote};
use goldjobs_server::app::{self, App, AppOptions};
use goldjobs_server::config::Config;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Long enough for any step on a loaded CI machine; only a bound, never a measurement.
const PATIENCE: Duration = Duration::from_secs(45);
const TOKEN: &str = "dashboard-test-admin-token";
/// Minutes of XAUUSD history recorded before the page opens.
const HISTORY_MINUTES: i64 = 30;

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
    start_server_with(dir, &[]).await
}

/// The test server with some settings replaced.
async fn start_server_with(dir: &Path, overrides: &[(&str, &str)]) -> App {
    let db = dir.join("dashboard-test.db");
    let mut env: HashMap<String, String> = [
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
        ("GOLDJOBS_VERIFY_INTERVAL", "300ms".to_owned()),
        ("GOLDJOBS_ADMIN_TOKEN", TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let cfg = Config::from_sources(None, &env).unwrap();
    app::start(cfg, AppOptions::default()).await.unwrap()
}

/// Poll `check` every 100 ms until it answers `Some`, for at most [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Record a minute of XAUUSD history per minute before now, with exact prices, and three
/// predictions: one the verifier will end, one it sends to review, one voided by an admin.
async fn seed(app: &App, base: &str) {
    let now = Utc::now();
    let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap();
    let ticks: Vec<PriceTick> = (1..=HISTORY_MINUTES)
        .flat_map(|m| {
            let at = minute - TimeDelta::minutes(m);
            [10, 40].map(|s| PriceTick {
                symbol_code: "XAUUSD".to_owned(),
                price: Decimal::new(265_000 + m * 25 + s, 2),
                ts: at + TimeDelta::seconds(s),
                source: Some("demo".to_owned()),
            })
        })
        .collect();
    app.repos().ticks.insert_ticks(&ticks).await.unwrap();

    let repo = &app.repos().predictions;
    let due = now + TimeDelta::seconds(1);
    let up = r#"{"A": {"condition": "price_change_percent >= 0"}, "B": {"condition": "price_change_percent < 0"}}"#;
    // No price falls by more than 100 %: no option can match, the verifier sends it to review.
    let unmatched = r#"{"A": {"condition": "price_change_percent < -100"}, "B": {"condition": "price_change_percent < -200"}}"#;
    let predictions = [
        (
            "dash-ended",
            VerifyRule::Auto,
            Some(up),
            "Will gold close higher?",
        ),
        (
            "dash-review",
            VerifyRule::Auto,
            Some(unmatched),
            "Will gold fall below zero?",
        ),
        (
            "dash-void",
            VerifyRule::Manual,
            None,
            "Will the market open?",
        ),
    ];
    for (id, rule, conditions, question) in predictions {
        let p = Prediction::new_active(
            id,
            "XAUUSD",
            question,
            Decimal::new(264_000, 2),
            due,
            rule,
            conditions.map(str::to_owned),
            now - TimeDelta::minutes(5),
        );
        repo.insert_prediction(&p).await.unwrap();
        let votes: Vec<Vote> = [("alice", "A"), ("bob", "B"), ("carol", "A")]
            .into_iter()
            .map(|(user, option)| Vote {
                prediction_id: id.to_owned(),
                user_id: user.to_owned(),
                selected_option: option.to_owned(),
                is_correct: None,
                created_at: now,
            })
            .collect();
        repo.insert_votes(&votes).await.unwrap();
    }
    let client = reqwest::Client::new();
    let voided = client
        .post(format!("{base}/admin/predictions/dash-void/void"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"reason": "the market was closed that day"}))
        .send()
        .await
        .unwrap();
    assert_eq!(voided.status(), 200, "{}", voided.text().await.unwrap());
    for (id, status) in [
        ("dash-ended", PredictionStatus::Ended),
        ("dash-review", PredictionStatus::NeedsReview),
    ] {
        eventually(&format!("{id} to be {status:?}"), || async {
            let p = repo.get_prediction(id).await.unwrap()?;
            (p.status == status).then_some(())
        })
        .await;
    }
}

/// The value of a JavaScript expression.
async fn eval<T: DeserializeOwned>(page: &Page, js: &str) -> T {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("{js}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("{js}: {e}"))
}

/// Wait until a JavaScript expression is truthy; the page's text on a timeout.
async fn wait_js(page: &Page, what: &str, js: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if eval::<bool>(page, &format!("!!({js})")).await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let body: String = eval(page, "document.body.innerText").await;
            panic!("timed out waiting for {what} ({js}); the page says:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Click the element `selector` names, as the mouse does.
async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

/// Focus the element `selector` names and press Enter, as the keyboard does.
async fn press_enter(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .focus()
        .await
        .unwrap_or_else(|e| panic!("focus {selector}: {e}"))
        .press_key("Enter")
        .await
        .unwrap_or_else(|e| panic!("Enter on {selector}: {e}"));
}

/// The chart's state as the page records it on its container.
async fn chart(page: &Page) -> Value {
    eval(
        page,
        "Object.assign({}, document.getElementById('chart').dataset)",
    )
    .await
}

async fn set_viewport(page: &Page, width: i64, height: i64, mobile: bool) {
    page.execute(SetDeviceMetricsOverrideParams::new(
        width, height, 1.0, mobile,
    ))
    .await
    .unwrap();
    // Let the layout and the chart's resize observer settle.
    wait_js(
        page,
        "the new width",
        &format!("window.innerWidth === {width}"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The layout holds at the current width: nothing wider than the window, the chart fits.
async fn assert_layout(page: &Page, width: i64) {
    let overflow: Value = eval(
        page,
        "({page: document.documentElement.scrollWidth, win: window.innerWidth, \
          chart: document.querySelector('#chart canvas').getBoundingClientRect().right, \
          sections: Math.max(...[...document.querySelectorAll('section')].map(s => s.getBoundingClientRect().right))})",
    )
    .await;
    let n = |k: &str| overflow[k].as_f64().unwrap();
    assert!(
        n("page") <= n("win"),
        "the page scrolls sideways at {width} px: {overflow}"
    );
    assert!(
        n("chart") <= width as f64,
        "the chart overflows at {width} px: {overflow}"
    );
    assert!(
        n("sections") <= width as f64,
        "a section overflows at {width} px: {overflow}"
    );
}

async fn screenshot(page: &Page, name: &str) {
    let Ok(dir) = std::env::var("GOLDJOBS_DASHBOARD_SCREENSHOTS") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let params = ScreenshotParams::builder()
        .format(CaptureScreenshotFormat::Png)
        .full_page(true)
        .build();
    page.save_screenshot(params, Path::new(&dir).join(name))
        .await
        .unwrap();
}

/// Whether the admin sees `job` paused, asked over HTTP.
async fn paused(base: &str, job: &str) -> bool {
    let s: Value = reqwest::get(format!("{base}/jobs/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    s["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == job)
        .unwrap()["paused"]
        .as_bool()
        .unwrap()
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
async fn dashboard_charts_evidence_jobs_and_layout_in_a_real_browser() {
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
    seed(&app, &base).await;

    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(&chromium)
        .no_sandbox()
        .user_data_dir(profile.path())
        .window_size(1440, 900)
        .viewport(Viewport {
            width: 1440,
            height: 900,
            ..Viewport::default()
        })
        .args(["--disable-gpu", "--disable-quic", "--disable-extensions"])
        .launch_timeout(PATIENCE)
        .request_timeout(PATIENCE)
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config)
        .await
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let driver = tokio::spawn(async move { while handler.next().await.is_some() {} });

    // Every error the page reports, from the first request on.
    let page = browser.new_page("about:blank").await.unwrap();
    page.enable_log().await.unwrap();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .unwrap();
    let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
    let sink = errors.clone();
    let listeners = tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                Some(e) = exceptions.next() => format!("uncaught: {:?}", e.exception_details),
                Some(e) = console.next() => match e.r#type {
                    ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert =>
                        format!("console.error: {:?}", e.args),
                    _ => continue,
                },
                Some(e) = log.next() => match e.entry.level {
                    LogEntryLevel::Error => format!("log: {} {:?}", e.entry.text, e.entry.url),
                    _ => continue,
                },
                else => break,
            };
            sink.lock().unwrap().push(line);
        }
    });
    page.goto(format!("{base}/")).await.unwrap();

    // The chart: the recorded minutes from the candles endpoint, on XAUUSD at 1m.
    wait_js(
        &page,
        "the chart to draw the recorded candles",
        &format!("+document.getElementById('chart').dataset.points >= {HISTORY_MINUTES}"),
    )
    .await;
    let c = chart(&page).await;
    assert_eq!(c["symbol"], "XAUUSD", "{c}");
    assert_eq!(c["interval"], "1m", "{c}");
    let canvas: Value = eval(
        &page,
        "(() => { const r = document.querySelector('#chart canvas').getBoundingClientRect(); return [r.width, r.height]; })()",
    )
    .await;
    assert!(
        canvas[0].as_f64().unwrap() > 600.0 && canvas[1].as_f64().unwrap() > 100.0,
        "{canvas}"
    );

    // A live tick moves it: the last candle is the current minute and its close follows the
    // prices the WebSocket brings.
    let before = chart(&page).await;
    wait_js(
        &page,
        "a live tick to move the chart",
        &format!(
            "(d => +d.liveTicks > {} && d.lastClose !== {})(document.getElementById('chart').dataset)",
            before["liveTicks"].as_str().unwrap(),
            before["lastClose"],
        ),
    )
    .await;
    let moved = chart(&page).await;
    let last_close = moved["lastClose"].as_str().unwrap();
    assert!(
        is_decimal(last_close),
        "close {last_close:?} is not a decimal"
    );
    let last_t: chrono::DateTime<Utc> = moved["lastT"].as_str().unwrap().parse().unwrap();
    assert!(last_t > Utc::now() - TimeDelta::minutes(2), "{moved}");

    // Live prices: a row per symbol with a decimal price and a sparkline.
    wait_js(
        &page,
        "a price row per symbol",
        "document.querySelectorAll('#prices tr').length >= 6",
    )
    .await;
    let prices: Vec<(String, String, bool)> = eval(
        &page,
        "[...document.querySelectorAll('#prices tr')].map(r => [r.dataset.symbol, r.cells[1].textContent, !!r.querySelector('.spark canvas')])",
    )
    .await;
    for (symbol, price, spark) in &prices {
        assert!(
            is_decimal(price),
            "{symbol} price {price:?} is not a decimal"
        );
        assert!(spark, "{symbol} has no sparkline");
    }

    // The interval buttons switch the chart, with the mouse and with the keyboard.
    click(&page, "#intervals button[data-interval='5m']").await;
    wait_js(
        &page,
        "5-minute candles",
        "(d => d.interval === '5m' && +d.points >= 6)(document.getElementById('chart').dataset)",
    )
    .await;
    press_enter(&page, "#intervals button[data-interval='1m']").await;
    wait_js(
        &page,
        "the keyboard to switch back to 1m",
        "document.getElementById('chart').dataset.interval === '1m'",
    )
    .await;

    // Predictions: the verdicts from GET /predictions; a verdict's evidence expands.
    wait_js(
        &page,
        "the predictions list",
        "document.querySelectorAll('#predictions details').length >= 3",
    )
    .await;
    click(&page, "details[data-id='dash-ended'] > summary").await;
    wait_js(
        &page,
        "the evidence of dash-ended",
        "document.querySelector(\"details[data-id='dash-ended'] .evidence table\")",
    )
    .await;
    let evidence: String = eval(
        &page,
        "document.querySelector(\"details[data-id='dash-ended'] .evidence\").innerText",
    )
    .await;
    for expected in [
        "price_change_percent >= 0",
        "price_change_percent < 0",
        "tick, demo",
        "2640.00",
    ] {
        assert!(
            evidence.contains(expected),
            "{expected:?} missing from the evidence:\n{evidence}"
        );
    }
    let winner: Vec<String> = eval(
        &page,
        "[...document.querySelector(\"details[data-id='dash-ended'] tr.winner\").cells].map(c => c.textContent)",
    )
    .await;
    assert_eq!(winner, ["A", "price_change_percent >= 0", "true", "2"]);
    // The void one and the one in review show their reasons; the keyboard opens them too.
    press_enter(&page, "details[data-id='dash-void'] > summary").await;
    wait_js(
        &page,
        "the void reason",
        "(document.querySelector(\"details[data-id='dash-void'] .reason\") || {}).textContent === 'Void: the market was closed that day'",
    )
    .await;
    let review = app
        .repos()
        .predictions
        .get_prediction("dash-review")
        .await
        .unwrap()
        .unwrap()
        .review_reason
        .unwrap();
    click(&page, "details[data-id='dash-review'] > summary").await;
    wait_js(
        &page,
        "the review reason",
        &format!(
            "(document.querySelector(\"details[data-id='dash-review'] .reason\") || {{}}).textContent === {}",
            serde_json::to_string(&format!("Needs review: {review}")).unwrap()
        ),
    )
    .await;

    // Health: the demo feed is announced; the failing feed is listed.
    wait_js(
        &page,
        "the demo banner",
        "!document.getElementById('banner').hidden && document.getElementById('banner').textContent.includes('Demo market data')",
    )
    .await;
    wait_js(
        &page,
        "the failing feed",
        "document.getElementById('feeds').textContent.includes('Local test feed')",
    )
    .await;

    // Jobs: pause and resume round-trip with the token, which stays in session storage only.
    let button = "button[data-job='NewsFetcherJob']";
    wait_js(
        &page,
        "the jobs table",
        &format!("document.querySelector(\"{button}\")"),
    )
    .await;
    assert!(
        eval::<bool>(
            &page,
            &format!("document.querySelector(\"{button}\").disabled")
        )
        .await,
        "pause is offered without a token"
    );
    page.find_element("#token")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(TOKEN)
        .await
        .unwrap();
    click(&page, "#token-save").await;
    wait_js(
        &page,
        "pause to be offered",
        &format!("!document.querySelector(\"{button}\").disabled"),
    )
    .await;
    let stored: Value = eval(
        &page,
        "[sessionStorage.getItem('goldjobs.adminToken'), localStorage.length, document.cookie]",
    )
    .await;
    assert_eq!(stored, serde_json::json!([TOKEN, 0, ""]));
    click(&page, button).await;
    wait_js(
        &page,
        "NewsFetcherJob to show paused",
        "document.querySelector(\"tr[data-job='NewsFetcherJob']\").cells[1].textContent === 'paused'",
    )
    .await;
    assert!(
        paused(&base, "NewsFetcherJob").await,
        "the server does not have it paused"
    );
    click(&page, button).await;
    wait_js(
        &page,
        "NewsFetcherJob to show resumed",
        "document.querySelector(\"tr[data-job='NewsFetcherJob']\").cells[1].textContent !== 'paused'",
    )
    .await;
    assert!(
        !paused(&base, "NewsFetcherJob").await,
        "the server still has it paused"
    );
    // Last runs, from GET /jobs/{name}/runs.
    wait_js(
        &page,
        "the last runs of the price job",
        "document.querySelectorAll(\"tr[data-job='PriceFetcherJob'] .run\").length > 0",
    )
    .await;

    // Layout: two columns at 1440 px, one at 390 px, nothing wider than the window.
    assert_layout(&page, 1440).await;
    let columns: usize = eval(
        &page,
        "new Set([...document.querySelectorAll('main > section:not(.wide)')].map(s => Math.round(s.getBoundingClientRect().left))).size",
    )
    .await;
    assert!(columns >= 2, "{columns} column(s) at 1440 px");
    screenshot(&page, "dashboard-1440.png").await;
    set_viewport(&page, 390, 844, true).await;
    assert_layout(&page, 390).await;
    let columns: usize = eval(
        &page,
        "new Set([...document.querySelectorAll('main > section')].map(s => Math.round(s.getBoundingClientRect().left))).size",
    )
    .await;
    assert_eq!(columns, 1, "more than one column at 390 px");
    // On a phone the tables keep what matters in view without sideways scrolling: each row's
    // sparkline and each job's pause button.
    let hidden: Vec<String> = eval(
        &page,
        "[...document.querySelectorAll('#prices .spark, #jobs button')].filter(e => e.getBoundingClientRect().right > window.innerWidth).map(e => e.closest('tr').dataset.symbol || e.closest('tr').dataset.job)",
    )
    .await;
    assert!(hidden.is_empty(), "cut off at 390 px: {hidden:?}");
    screenshot(&page, "dashboard-390.png").await;

    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "the page reported errors:\n{}",
        errors.join("\n")
    );

    // A server whose provider stream is down (nothing listens at its URL) says so.
    let down_dir = tempfile::tempdir().unwrap();
    let down = start_server_with(
        down_dir.path(),
        &[
            ("GOLDJOBS_MARKET_DATA", "binance"),
            ("BINANCE_BASE_URL", "http://127.0.0.1:9"),
            ("GOLDJOBS_MARKET_STREAM", "binance"),
            ("BINANCE_WS_URL", "ws://127.0.0.1:9"),
        ],
    )
    .await;
    page.goto(format!("http://{}/", down.local_addr()))
        .await
        .unwrap();
    wait_js(
        &page,
        "the stream-down banner",
        "!document.getElementById('banner').hidden && document.getElementById('banner').textContent.includes('binance price stream is down')",
    )
    .await;
    down.shutdown().await;

    listeners.abort();
    browser.close().await.unwrap();
    let _ = browser.wait().await;
    driver.abort();
    app.shutdown().await;
}
