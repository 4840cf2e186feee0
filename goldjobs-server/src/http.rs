//! HTTP routes on hyper 1 + hyper-util (guide: *HTTP API*).
//!
//! Every answer is JSON except `/metrics` (Prometheus text) and `/` (the dashboard). Errors are
//! `{"error":"..."}` with the right status; internal details are logged, never returned.

use crate::config::Secret;
use crate::hub::Hub;
use crate::memo::Memo;
use crate::metrics::Metrics;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use goldjobs::news::NewsReader;
use goldjobs::runtime::JobManager;
use goldjobs::verify::evidence::MAX_LIST_LIMIT;
use goldjobs::verify::PredictionReader;
use goldjobs::{
    Error, Prediction, PredictionQuery, PredictionStatus, QuoteCache, SymbolRepository,
};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rust_decimal::Decimal;
use serde::Serialize;
use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Every route the server answers, as `(method, path pattern)` — the operations of the OpenAPI
/// document ([`crate::openapi`]), which a test holds to this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/dashboard.js"),
    ("GET", "/dashboard.css"),
    ("GET", "/uplot.js"),
    ("GET", "/uplot.css"),
    ("GET", "/openapi.json"),
    ("GET", "/health"),
    ("GET", "/jobs/status"),
    ("POST", "/jobs/{name}/run"),
    ("POST", "/jobs/{name}/pause"),
    ("POST", "/jobs/{name}/resume"),
    ("GET", "/jobs/{name}/runs"),
    ("GET", "/quotes"),
    ("GET", "/quotes/{symbol}"),
    ("GET", "/quotes/{symbol}/candles"),
    ("GET", "/news"),
    ("GET", "/news/feeds"),
    ("GET", "/predictions"),
    ("GET", "/predictions/{id}"),
    ("GET", "/users/{id}/stats"),
    ("POST", "/admin/predictions/{id}/resolve"),
    ("POST", "/admin/predictions/{id}/void"),
    ("GET", "/metrics"),
    ("GET", "/ws"),
];

/// The response type of every route.
pub type HttpResponse = Response<Full<Bytes>>;

/// Largest accepted request body (64 KiB); larger → 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The dashboard page (`GET /`).
pub const DASHBOARD_HTML: &str = include_str!("dashboard.html");
/// The dashboard's script (`GET /dashboard.js`): no inline script, so the page's CSP allows
/// scripts from the server itself only.
pub const DASHBOARD_JS: &str = include_str!("dashboard.js");
/// The dashboard's style sheet (`GET /dashboard.css`).
pub const DASHBOARD_CSS: &str = include_str!("dashboard.css");
/// The dashboard's charts (`GET /uplot.js`): uPlot 1.6.32 (MIT), vendored from the npm registry
/// unchanged (`src/vendor/`), so that the page loads nothing from elsewhere.
pub const UPLOT_JS: &str = include_str!("vendor/uPlot.iife.min.js");
/// uPlot's style sheet (`GET /uplot.css`).
pub const UPLOT_CSS: &str = include_str!("vendor/uPlot.min.css");

/// The dashboard's Content-Security-Policy: nothing but the server itself, no inline script or
/// style, no framing, no plugins, no forms.
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Resolves a manual (or `needs_review`) prediction with the bookkeeping of the guide's
/// *Verification rules*, corrects an `ended` one and voids predictions (§6.7), for
/// `POST /admin/predictions/{id}/resolve` and `/void`; implemented by the verifier's
/// [`goldjobs::verify::ManualResolver`].
///
/// Errors: `NotFound` (no such prediction), `Conflict` (not resolvable, void, nothing to
/// correct), `InvalidInput` (an option the prediction does not have, a bad price or reason).
#[async_trait]
pub trait Resolve: Send + Sync {
    /// Resolve (or correct) `prediction_id` with `correct_option`, optionally at the admin's
    /// `price_at_verify`; the prediction as stored afterwards.
    async fn resolve(
        &self,
        prediction_id: &str,
        correct_option: &str,
        price_at_verify: Option<Decimal>,
    ) -> goldjobs::Result<Prediction>;

    /// Void `prediction_id` for `reason`; the prediction as stored afterwards.
    async fn void(&self, prediction_id: &str, reason: &str) -> goldjobs::Result<Prediction>;
}

#[async_trait]
impl Resolve for goldjobs::verify::ManualResolver {
    async fn resolve(
        &self,
        prediction_id: &str,
        correct_option: &str,
        price_at_verify: Option<Decimal>,
    ) -> goldjobs::Result<Prediction> {
        self.resolve_with_price(
            prediction_id,
            correct_option,
            price_at_verify,
            chrono::Utc::now(),
        )
        .await
    }

    async fn void(&self, prediction_id: &str, reason: &str) -> goldjobs::Result<Prediction> {
        goldjobs::verify::ManualResolver::void(self, prediction_id, reason, chrono::Utc::now())
            .await
    }
}

/// What the routes need; built by [`crate::app`].
pub struct HttpState {
    /// The WebSocket hub (also the in-process last values of quotes).
    pub hub: Hub,
    /// The job manager.
    pub jobs: Arc<JobManager>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Symbols (also the cheap database health check).
    pub symbols: Arc<dyn SymbolRepository>,
    /// Latest quotes.
    pub quote_cache: Arc<dyn QuoteCache>,
    /// Recorded ticks (`GET /quotes/{symbol}/candles`).
    pub ticks: Arc<dyn goldjobs::PriceTickRepository>,
    /// The `GET /news` reader.
    pub news: NewsReader,
    /// `GET /news/feeds`: the feeds with their health (`None` without a news source).
    pub feeds: Option<goldjobs::news::FeedDirectory>,
    /// `GET /predictions`, `GET /predictions/{id}`, `GET /users/{id}/stats`.
    pub predictions: PredictionReader,
    /// Manual resolution.
    pub resolver: Arc<dyn Resolve>,
    /// `GOLDJOBS_ADMIN_TOKEN`.
    pub admin_token: Option<Secret>,
    /// `GOLDJOBS_CORS_ORIGINS`.
    pub cors_origins: Vec<String>,
    /// Name of the primary market data feed, e.g. `demo`.
    pub market_data: String,
    /// The provider's live price stream, when one is configured (`GOLDJOBS_MARKET_STREAM`).
    pub stream: Option<Arc<goldjobs::jobs::PriceStreamer>>,
    /// What `/health` and `/quotes` read from the backends, refreshed at most once a second.
    pub reads: ReadMemos,
}

/// The backend reads behind the anonymous `/health` and `/quotes`, each refreshed at most once
/// per [`READ_MEMO_TTL`] however many requests arrive.
#[derive(Debug)]
pub struct ReadMemos {
    /// `(database, cache)` states of `/health`.
    health: Memo<(&'static str, &'static str)>,
    /// Active symbol codes (`None` when the database could not be read).
    codes: Memo<Option<Vec<String>>>,
    /// The feeds' health for the `feed_consecutive_failures` gauges (`None` when unread).
    feeds: Memo<Option<Vec<goldjobs::news::FeedHealth>>>,
}

/// How long `/health` and `/quotes` reuse what they read (1 s).
pub const READ_MEMO_TTL: Duration = Duration::from_secs(1);

impl Default for ReadMemos {
    fn default() -> Self {
        ReadMemos {
            health: Memo::new(READ_MEMO_TTL),
            codes: Memo::new(READ_MEMO_TTL),
            feeds: Memo::new(READ_MEMO_TTL),
        }
    }
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("hub", &self.hub)
            .field("admin_token", &self.admin_token)
            .field("cors_origins", &self.cors_origins)
            .field("market_data", &self.market_data)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A dashboard asset with the page's security headers.
fn dashboard_asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut r = respond(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    );
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DASHBOARD_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => respond(status, "application/json", body),
        Err(e) => {
            tracing::error!(error = %e, "response not serializable");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// A JSON error answer `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    let body = serde_json::to_vec(&ErrorBody { error: message })
        .unwrap_or_else(|_| br#"{"error":"internal error"}"#.to_vec());
    respond(status, "application/json", body)
}

/// Map a core error to an answer; details of backend errors are logged, not returned.
fn core_error(e: &Error, what: &str) -> HttpResponse {
    match e {
        Error::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        Error::InvalidInput(m) => error(StatusCode::BAD_REQUEST, m),
        Error::Conflict(m) => error(StatusCode::CONFLICT, m),
        other => {
            tracing::error!(error = %other, "{what} failed");
            let status = if other.is_temporary() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            error(status, &format!("{what} failed; see the server log"))
        }
    }
}

/// Check `Authorization: Bearer <token>` in constant time; `Some(answer)` when refused.
fn check_admin(state: &HttpState, req: &Request<Incoming>) -> Option<HttpResponse> {
    let Some(expected) = &state.admin_token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "admin endpoints are disabled (GOLDJOBS_ADMIN_TOKEN is not set)",
        ));
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let ok = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.expose().as_bytes())));
    if ok {
        None
    } else {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Some(r)
    }
}

/// Read the body, at most [`MAX_BODY_BYTES`].
async fn read_body(req: Request<Incoming>) -> Result<Bytes, HttpResponse> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > MAX_BODY_BYTES as u64 {
            return Err(too_large());
        }
    }
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "could not read the request body",
        )),
    }
}

fn is_read_endpoint(path: &str) -> bool {
    path == "/health"
        || path == "/jobs/status"
        || (path.starts_with("/jobs/") && path.ends_with("/runs"))
        || path == "/quotes"
        || path.starts_with("/quotes/")
        || path == "/news"
        || path == "/news/feeds"
        || path == "/metrics"
        || path == "/predictions"
        || path.starts_with("/predictions/")
        || (path.starts_with("/users/") && path.ends_with("/stats"))
}

/// The route pattern of a path, for metrics (bounded set of values).
fn route_pattern(path: &str) -> &'static str {
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        [] => "/",
        ["dashboard.js"] => "/dashboard.js",
        ["dashboard.css"] => "/dashboard.css",
        ["uplot.js"] => "/uplot.js",
        ["uplot.css"] => "/uplot.css",
        ["openapi.json"] => "/openapi.json",
        ["health"] => "/health",
        ["jobs", "status"] => "/jobs/status",
        ["jobs", _, "run"] => "/jobs/{name}/run",
        ["jobs", _, "pause"] => "/jobs/{name}/pause",
        ["jobs", _, "resume"] => "/jobs/{name}/resume",
        ["jobs", _, "runs"] => "/jobs/{name}/runs",
        ["quotes"] => "/quotes",
        ["quotes", _] => "/quotes/{symbol}",
        ["quotes", _, "candles"] => "/quotes/{symbol}/candles",
        ["news"] => "/news",
        ["news", "feeds"] => "/news/feeds",
        ["predictions"] => "/predictions",
        ["predictions", _] => "/predictions/{id}",
        ["users", _, "stats"] => "/users/{id}/stats",
        ["admin", "predictions", _, "resolve"] => "/admin/predictions/{id}/resolve",
        ["admin", "predictions", _, "void"] => "/admin/predictions/{id}/void",
        ["metrics"] => "/metrics",
        ["ws"] => "/ws",
        _ => "other",
    }
}

/// The CORS origin to allow for this request, if any.
fn cors_origin(state: &HttpState, req: &Request<Incoming>) -> Option<HeaderValue> {
    if state.cors_origins.is_empty() || !is_read_endpoint(req.uri().path()) {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?;
    let o = origin.to_str().ok()?.trim_end_matches('/');
    if state.cors_origins.iter().any(|a| a == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    state
        .cors_origins
        .iter()
        .any(|a| a.eq_ignore_ascii_case(o))
        .then(|| origin.clone())
}

/// Handle one request (the hyper service).
pub async fn handle(
    state: Arc<HttpState>,
    req: Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let cors = cors_origin(&state, &req);
    let route_label = route_pattern(req.uri().path());
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = if preflight && cors.is_some() {
        let mut r = respond(StatusCode::NO_CONTENT, "text/plain", Bytes::new());
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        route(&state, req).await
    };
    if let Some(origin) = cors {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    state
        .metrics
        .http_request(route_label, resp.status().as_u16());
    Ok(resp)
}

async fn route(state: &HttpState, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match segments.as_slice() {
        [] if get => dashboard_asset("text/html; charset=utf-8", DASHBOARD_HTML),
        ["dashboard.js"] if get => dashboard_asset("text/javascript; charset=utf-8", DASHBOARD_JS),
        ["dashboard.css"] if get => dashboard_asset("text/css; charset=utf-8", DASHBOARD_CSS),
        ["uplot.js"] if get => dashboard_asset("text/javascript; charset=utf-8", UPLOT_JS),
        ["uplot.css"] if get => dashboard_asset("text/css; charset=utf-8", UPLOT_CSS),
        ["openapi.json"] if get => respond(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(crate::openapi::DOCUMENT_BYTES.as_slice()),
        ),
        ["health"] if get => health(state).await,
        ["jobs", "status"] if get => json(StatusCode::OK, &state.jobs.status()),
        ["jobs", name, "run"] if post => match check_admin(state, &req) {
            Some(refused) => refused,
            None => run_job(state, &decode(name)),
        },
        ["jobs", name, action @ ("pause" | "resume")] if post => match check_admin(state, &req) {
            Some(refused) => refused,
            None => pause_job(state, &decode(name), *action == "pause").await,
        },
        ["jobs", name, "runs"] if get => job_runs(state, &decode(name), req.uri().query()).await,
        ["quotes"] if get => quotes(state).await,
        ["quotes", symbol] if get => quote(state, &decode(symbol)).await,
        ["quotes", symbol, "candles"] if get => {
            candles(state, &decode(symbol), req.uri().query()).await
        }
        ["news"] if get => news(state, req.uri().query()).await,
        ["news", "feeds"] if get => news_feeds(state).await,
        ["predictions"] if get => predictions(state, req.uri().query()).await,
        ["predictions", id] if get => prediction(state, &decode(id)).await,
        ["users", id, "stats"] if get => user_stats(state, &decode(id)).await,
        ["admin", "predictions", id, "resolve"] if post => match check_admin(state, &req) {
            Some(refused) => refused,
            None => {
                let id = decode(id);
                match read_body(req).await {
                    Err(r) => r,
                    Ok(body) => resolve(state, &id, &body).await,
                }
            }
        },
        ["admin", "predictions", id, "void"] if post => match check_admin(state, &req) {
            Some(refused) => refused,
            None => {
                let id = decode(id);
                match read_body(req).await {
                    Err(r) => r,
                    Ok(body) => void(state, &id, &body).await,
                }
            }
        },
        ["metrics"] if get => {
            state.metrics.observe_jobs(&state.jobs.status());
            if let Some(feeds) = state.reads.feeds.get(|| feed_health(state)).await {
                state.metrics.observe_feeds(&feeds);
            }
            respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                state.metrics.encode(),
            )
        }
        ["ws"] if get => websocket(state, req),
        []
        | ["dashboard.js"]
        | ["dashboard.css"]
        | ["uplot.js"]
        | ["uplot.css"]
        | ["openapi.json"]
        | ["health"]
        | ["jobs", "status"]
        | ["jobs", _, "run" | "pause" | "resume" | "runs"]
        | ["quotes"]
        | ["quotes", _]
        | ["quotes", _, "candles"]
        | ["news"]
        | ["news", "feeds"]
        | ["predictions"]
        | ["predictions", _]
        | ["users", _, "stats"]
        | ["admin", "predictions", _, "resolve"]
        | ["admin", "predictions", _, "void"]
        | ["metrics"]
        | ["ws"] => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

/// Percent-decode one path segment.
fn decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| segment.to_owned())
}

async fn health(state: &HttpState) -> HttpResponse {
    let (database, cache) = state.reads.health.get(|| check_health(state)).await;
    let ok = database == "ok" && cache == "ok";
    let status = if ok { "ok" } else { "unavailable" };
    let body = serde_json::json!({
        "status": status,
        "database": database,
        "cache": cache,
        "market_data": state.market_data,
        "market_stream": stream_health(state),
        "websocket_clients": state.hub.client_count(),
    });
    json(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}

/// This instance's view of the price stream: `null` without one; `standby` when another
/// instance leads the price job (and holds the stream), `streaming` while connected, `down`
/// while this instance leads and the stream is not connected (its symbols are polled).
fn stream_health(state: &HttpState) -> serde_json::Value {
    let Some(stream) = &state.stream else {
        return serde_json::Value::Null;
    };
    let leads = state
        .jobs
        .job_status(goldjobs::jobs::PriceFetcherJob::NAME)
        .is_ok_and(|s| s.is_leader);
    let status = if stream.is_connected() {
        "streaming"
    } else if leads {
        "down"
    } else {
        "standby"
    };
    serde_json::json!({
        "provider": stream.name(),
        "state": status,
        "streamed": stream.covered().len(),
    })
}

/// One round trip to the database and one to the cache: `(database, cache)` states.
async fn check_health(state: &HttpState) -> (&'static str, &'static str) {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let db = tokio::time::timeout(TIMEOUT, state.symbols.active_symbols()).await;
    let database = match db {
        Ok(Ok(_)) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: database check failed");
            "unavailable"
        }
        Err(_) => "timeout",
    };
    let probe = ["HEALTHCHECK".to_owned()];
    let cache = match tokio::time::timeout(TIMEOUT, state.quote_cache.get_quotes(&probe)).await {
        Ok(Ok(_)) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: cache check failed");
            "unavailable"
        }
        Err(_) => "timeout",
    };
    (database, cache)
}

fn run_job(state: &HttpState, name: &str) -> HttpResponse {
    match state.jobs.run_now(name) {
        Ok(()) => json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"status": "accepted", "job": name}),
        ),
        Err(Error::NotFound(_)) => error(StatusCode::NOT_FOUND, &format!("no job named {name:?}")),
        Err(e) => core_error(&e, "run job"),
    }
}

async fn pause_job(state: &HttpState, name: &str, pause: bool) -> HttpResponse {
    let done = if pause {
        state.jobs.pause(name).await
    } else {
        state.jobs.resume(name).await
    };
    match done {
        Ok(status) => json(StatusCode::OK, &status),
        Err(Error::NotFound(_)) => error(StatusCode::NOT_FOUND, &format!("no job named {name:?}")),
        Err(e) => core_error(&e, if pause { "pause job" } else { "resume job" }),
    }
}

/// The most runs `GET /jobs/{name}/runs` lists.
const MAX_RUNS_LIMIT: u32 = 200;

async fn job_runs(state: &HttpState, name: &str, query: Option<&str>) -> HttpResponse {
    let mut limit: u32 = 50;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "limit" {
            match v.parse::<u32>() {
                Ok(n) if (1..=MAX_RUNS_LIMIT).contains(&n) => limit = n,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "limit: expected a whole number from 1 to 200",
                    )
                }
            }
        }
    }
    match state.jobs.runs(name, limit).await {
        Ok(runs) => json(StatusCode::OK, &serde_json::json!({ "runs": runs })),
        Err(Error::NotFound(_)) => error(StatusCode::NOT_FOUND, &format!("no job named {name:?}")),
        Err(e) => core_error(&e, "job runs"),
    }
}

/// Active symbol codes; the hub's known list when the database is down.
async fn active_codes(state: &HttpState) -> Vec<String> {
    let codes = state
        .reads
        .codes
        .get(|| async {
            match state.symbols.active_symbols().await {
                Ok(symbols) => Some(symbols.into_iter().map(|s| s.code).collect()),
                Err(e) => {
                    tracing::warn!(error = %e, "active symbols unavailable; using the hub's list");
                    None
                }
            }
        })
        .await;
    codes.unwrap_or_else(|| state.hub.known_symbols())
}

async fn quotes(state: &HttpState) -> HttpResponse {
    let codes = active_codes(state).await;
    let quotes = match state.quote_cache.get_quotes(&codes).await {
        Ok(q) => q,
        Err(e) => {
            tracing::warn!(error = %e, "quote cache unavailable; serving in-process last values");
            state.hub.last_quotes(&codes)
        }
    };
    json(StatusCode::OK, &serde_json::json!({ "quotes": quotes }))
}

/// A symbol code as asked (`xauusd`, ` XAUUSD `): upper case, 1–32 ASCII letters and digits.
fn symbol_code(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    (!code.is_empty() && code.len() <= 32 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(code)
}

async fn quote(state: &HttpState, symbol: &str) -> HttpResponse {
    let Some(code) = symbol_code(symbol) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a symbol code like XAUUSD",
        );
    };
    let codes = [code.clone()];
    let found = match state.quote_cache.get_quotes(&codes).await {
        Ok(q) => q,
        Err(e) => {
            tracing::warn!(error = %e, "quote cache unavailable; serving in-process last value");
            state.hub.last_quotes(&codes)
        }
    };
    match found.into_iter().next() {
        Some(q) => json(StatusCode::OK, &q),
        None => error(
            StatusCode::NOT_FOUND,
            &format!("no quote cached for {code}"),
        ),
    }
}

/// An RFC 3339 instant of a query parameter; the `400` message otherwise.
fn instant_param(name: &str, v: &str) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{name}: expected an RFC 3339 instant like 2026-12-06T10:00:00Z"))
}

async fn candles(state: &HttpState, symbol: &str, query: Option<&str>) -> HttpResponse {
    let Some(code) = symbol_code(symbol) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a symbol code like XAUUSD",
        );
    };
    let mut interval = goldjobs::CandleInterval::OneMinute;
    let (mut from, mut to) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "interval" => match v.parse() {
                Ok(i) => interval = i,
                Err(e) => return core_error(&e, "candles"),
            },
            "from" => match instant_param("from", &v) {
                Ok(t) => from = Some(t),
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            },
            "to" => match instant_param("to", &v) {
                Ok(t) => to = Some(t),
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            },
            _ => {}
        }
    }
    let q = match goldjobs::CandleQuery::new(code.clone(), interval, from, to, Utc::now()) {
        Ok(q) => q,
        Err(e) => return core_error(&e, "candles"),
    };
    if !active_codes(state).await.contains(&code) {
        return error(StatusCode::NOT_FOUND, &format!("unknown symbol {code}"));
    }
    match state.ticks.candles(&q).await {
        Ok(candles) => json(
            StatusCode::OK,
            &serde_json::json!({
                "symbol_code": code,
                "interval": interval,
                "candles": candles,
            }),
        ),
        Err(e) => core_error(&e, "candles"),
    }
}

async fn news(state: &HttpState, query: Option<&str>) -> HttpResponse {
    let mut category: Option<String> = None;
    let mut limit: u32 = 20;
    let mut group = true;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "category" if !v.is_empty() => category = Some(v.into_owned()),
            "group" => match v.as_ref() {
                "true" | "1" => group = true,
                "false" | "0" => group = false,
                _ => return error(StatusCode::BAD_REQUEST, "group: expected true or false"),
            },
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => limit = n,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "limit: expected a whole number from 1 to 100",
                    )
                }
            },
            _ => {}
        }
    }
    match state
        .news
        .list_with(category.as_deref(), limit, group)
        .await
    {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(e) => core_error(&e, "news list"),
    }
}

/// The feeds' health, or `None` (logged) when it cannot be read.
async fn feed_health(state: &HttpState) -> Option<Vec<goldjobs::news::FeedHealth>> {
    let feeds = state.feeds.as_ref()?;
    match feeds.list().await {
        Ok(list) => Some(list),
        Err(e) => {
            tracing::warn!(error = %e, "reading the feeds' health failed");
            None
        }
    }
}

async fn news_feeds(state: &HttpState) -> HttpResponse {
    let list = match &state.feeds {
        None => Ok(Vec::new()),
        Some(feeds) => feeds.list().await,
    };
    match list.and_then(|l| goldjobs::news::feeds_body(&l)) {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(e) => core_error(&e, "news feeds"),
    }
}

/// The longest id or symbol accepted in a path or query.
const MAX_ID_LEN: usize = 128;

fn bad_id(what: &str) -> HttpResponse {
    error(
        StatusCode::BAD_REQUEST,
        &format!("{what}: expected 1 to {MAX_ID_LEN} characters"),
    )
}

async fn predictions(state: &HttpState, query: Option<&str>) -> HttpResponse {
    let mut q = PredictionQuery::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "status" => match v.parse::<PredictionStatus>() {
                Ok(status) => q.status = Some(status),
                Err(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "status: expected active, ended, needs_review or void",
                    )
                }
            },
            "symbol" => {
                let Some(code) = symbol_code(&v) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "symbol: expected a symbol code like XAUUSD",
                    );
                };
                q.symbol_code = Some(code);
            }
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => q.limit = n,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "limit: expected a whole number from 1 to 100",
                    )
                }
            },
            _ => {}
        }
    }
    #[derive(Serialize)]
    struct Listing {
        predictions: Vec<goldjobs::verify::PredictionSummary>,
    }
    match state.predictions.list(&q).await {
        Ok(predictions) => json(StatusCode::OK, &Listing { predictions }),
        Err(e) => core_error(&e, "list predictions"),
    }
}

async fn prediction(state: &HttpState, id: &str) -> HttpResponse {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return bad_id("prediction id");
    }
    match state.predictions.get(id).await {
        Ok(Some(evidence)) => json(StatusCode::OK, &evidence),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no prediction {id:?}")),
        Err(e) => core_error(&e, "read prediction"),
    }
}

async fn user_stats(state: &HttpState, id: &str) -> HttpResponse {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return bad_id("user id");
    }
    match state.predictions.user_stats(id).await {
        Ok(Some(stats)) => json(StatusCode::OK, &stats),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            &format!("no statistics for user {id:?}"),
        ),
        Err(e) => core_error(&e, "read user statistics"),
    }
}

async fn resolve(state: &HttpState, id: &str, body: &[u8]) -> HttpResponse {
    #[derive(serde::Deserialize)]
    struct ResolveBody {
        correct_option: String,
        /// A decimal string (decimals are JSON strings, never floats).
        #[serde(default)]
        price_at_verify: Option<String>,
    }
    let parsed: ResolveBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected a JSON body {\"correct_option\":\"A\"} with an optional \
                 \"price_at_verify\":\"2680.00\" (a decimal string)",
            )
        }
    };
    let option = parsed.correct_option.trim();
    if option.is_empty() || option.len() > 64 {
        return error(
            StatusCode::BAD_REQUEST,
            "correct_option: expected an option name like A",
        );
    }
    let price =
        match parsed.price_at_verify.as_deref().map(str::trim) {
            None => None,
            Some(text) => match Decimal::from_str(text) {
                Ok(p) if p > Decimal::ZERO && text.len() <= 40 => Some(p),
                _ => return error(
                    StatusCode::BAD_REQUEST,
                    "price_at_verify: expected a decimal string greater than 0, like \"2680.00\"",
                ),
            },
        };
    match state.resolver.resolve(id, option, price).await {
        Ok(p) => json(StatusCode::OK, &p),
        Err(e) => core_error(&e, "resolve prediction"),
    }
}

async fn void(state: &HttpState, id: &str, body: &[u8]) -> HttpResponse {
    #[derive(serde::Deserialize)]
    struct VoidBody {
        reason: String,
    }
    let parsed: VoidBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected a JSON body {\"reason\":\"…\"}",
            )
        }
    };
    // The resolver checks the reason (trimmed, not empty, bounded): InvalidInput → 400.
    match state.resolver.void(id, &parsed.reason).await {
        Ok(p) => json(StatusCode::OK, &p),
        Err(e) => core_error(&e, "void prediction"),
    }
}

fn header_has_token(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Whether a browser at this `Origin` may open `/ws` (guide: *Configuration reference*): always
/// when `GOLDJOBS_CORS_ORIGINS` is unset; else a request without `Origin` (not a browser), the
/// server's own origin (the request's `Host`), and the listed origins (or `*`).
fn ws_origin_allowed(state: &HttpState, req: &Request<Incoming>) -> bool {
    if state.cors_origins.is_empty() {
        return true;
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    let own = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .zip(origin.split_once("://").map(|(_, authority)| authority))
        .is_some_and(|(host, authority)| host.eq_ignore_ascii_case(authority));
    own || state
        .cors_origins
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
}

fn websocket(state: &HttpState, mut req: Request<Incoming>) -> HttpResponse {
    if state.hub.is_shutting_down() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    if !ws_origin_allowed(state, &req) {
        return error(
            StatusCode::FORBIDDEN,
            "this origin may not open the WebSocket (GOLDJOBS_CORS_ORIGINS)",
        );
    }
    let upgrade = header_has_token(&req, header::UPGRADE, "websocket")
        && header_has_token(&req, header::CONNECTION, "upgrade");
    if !upgrade {
        let mut r = error(StatusCode::UPGRADE_REQUIRED, "expected a WebSocket upgrade");
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return r;
    }
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return error(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    if !version_ok {
        let mut r = error(
            StatusCode::BAD_REQUEST,
            "expected Sec-WebSocket-Version: 13",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    // The slot is taken now, before the 101: concurrent upgrades cannot overshoot the limit.
    let Some(slot) = state.hub.try_admit() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket clients",
        );
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    state.hub.accept(on_upgrade, slot);
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// Accept connections on `listener` until `shutdown` fires, then stop accepting and let
/// in-flight requests finish (up to `grace`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let connections = tokio_util::task::TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(64 * 1024);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                let stop = shutdown.clone();
                connections.spawn(async move {
                    let mut conn = std::pin::pin!(conn);
                    let result = tokio::select! {
                        r = conn.as_mut() => r,
                        _ = stop.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP connections did not finish in time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_decode() {
        assert_eq!(decode("XAU%2FUSD"), "XAU/USD");
        assert_eq!(decode("abc"), "abc");
        assert_eq!(decode("a+b"), "a+b");
    }

    #[test]
    fn read_endpoints() {
        assert!(is_read_endpoint("/quotes/XAUUSD"));
        assert!(!is_read_endpoint("/admin/predictions/1/resolve"));
        assert!(!is_read_endpoint("/jobs/PriceFetcherJob/run"));
        assert_eq!(route_pattern("/quotes/XAUUSD"), "/quotes/{symbol}");
        assert!(is_read_endpoint("/predictions"));
        assert!(is_read_endpoint("/predictions/p1"));
        assert!(is_read_endpoint("/users/u1/stats"));
        assert_eq!(route_pattern("/predictions/p1"), "/predictions/{id}");
        assert_eq!(route_pattern("/users/u1/stats"), "/users/{id}/stats");
        assert_eq!(
            route_pattern("/admin/predictions/x/resolve"),
            "/admin/predictions/{id}/resolve"
        );
        assert_eq!(route_pattern("/a/b/c/d/e"), "other");
    }
}
