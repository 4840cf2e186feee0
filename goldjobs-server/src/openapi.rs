//! `GET /openapi.json`: the OpenAPI 3.1 document of every HTTP endpoint (guide: *HTTP API*).
//!
//! Written next to the routes and kept honest three ways: a test checks that its operations are
//! exactly [`crate::http::ROUTES`], the end-to-end tests check real answers of every endpoint
//! against its response schemas ([`check`]), and CI runs schemathesis against a live server with
//! `response_schema_conformance`, `status_code_conformance` and `content_type_conformance`.

use serde_json::{json, Map, Value};
use std::sync::LazyLock;

/// The document, built once.
pub static DOCUMENT: LazyLock<Value> = LazyLock::new(build);

/// The document as JSON bytes.
pub static DOCUMENT_BYTES: LazyLock<Vec<u8>> =
    LazyLock::new(|| serde_json::to_vec(&*DOCUMENT).unwrap_or_default());

/// The pattern of decimal strings (`"2658.50"`, `"-0.5"`), which [`check`] verifies.
const DECIMAL_PATTERN: &str = "^-?[0-9]+(\\.[0-9]+)?$";

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn json_answer(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn error_answer(description: &str) -> Value {
    json_answer(description, r("Error"))
}

/// Answers every operation may give: a bad request, and trouble with a backend.
fn with_common(mut answers: Map<String, Value>) -> Value {
    answers
        .entry("400")
        .or_insert_with(|| error_answer("a parameter is out of range or of the wrong form"));
    answers
        .entry("503")
        .or_insert_with(|| error_answer("a backend is unavailable"));
    Value::Object(answers)
}

fn answers(list: &[(&str, Value)]) -> Map<String, Value> {
    list.iter()
        .map(|(code, v)| ((*code).to_owned(), v.clone()))
        .collect()
}

fn admin(mut op: Value) -> Value {
    op["security"] = json!([{ "admin": [] }]);
    if let Some(a) = op["responses"].as_object_mut() {
        a.insert("401".into(), error_answer("missing or wrong bearer token"));
        a.insert(
            "403".into(),
            error_answer("admin endpoints are disabled (no GOLDJOBS_ADMIN_TOKEN)"),
        );
        a.insert(
            "413".into(),
            error_answer("request body larger than 64 KiB"),
        );
    }
    op
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": "string", "minLength": 1, "maxLength": 128 } })
}

/// A path parameter with a pattern and an example value.
fn path_param_like(name: &str, description: &str, pattern: &str, example: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": "string", "pattern": pattern, "examples": [example] } })
}

fn text_answer(description: &str, content_type: &str) -> Value {
    json!({ "description": description, "content": { content_type: { "schema": { "type": "string" } } } })
}

fn schemas() -> Value {
    let decimal = json!({ "type": "string", "pattern": DECIMAL_PATTERN,
                          "description": "an exact decimal number as a string" });
    let time = json!({ "type": "string", "format": "date-time" });
    let status = json!({ "type": "string", "enum": ["active", "ended", "needs_review", "void"] });
    let source = json!({ "type": "string", "enum": ["tick", "provider_history", "manual"] });
    let rule = json!({ "type": "string", "enum": ["auto", "manual"] });
    let summary_props = json!({
        "id": { "type": "string" },
        "symbol_code": { "type": "string" },
        "question": { "type": "string" },
        "status": status,
        "verify_rule": rule,
        "verify_time": time,
        "price_at_create": decimal,
        "price_at_verify": nullable(decimal.clone()),
        "price_at_verify_ts": nullable(time.clone()),
        "price_source": nullable(source.clone()),
        "price_provider": nullable(json!({ "type": "string" })),
        "price_change": nullable(decimal.clone()),
        "price_change_percent": nullable(decimal.clone()),
        "correct_option": nullable(json!({ "type": "string" })),
        "review_reason": nullable(json!({ "type": "string" })),
        "verified_at": nullable(time.clone()),
    });
    let summary_keys: Vec<String> = summary_props
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let summary_required: Vec<&str> = summary_keys.iter().map(String::as_str).collect();
    let mut evidence_props = summary_props.clone();
    evidence_props["options"] = json!({ "type": "array", "items": r("OptionEvidence") });
    let mut evidence_required = summary_required.clone();
    evidence_required.push("options");
    json!({
        "Error": object(&["error"], json!({ "error": { "type": "string" } })),
        "Decimal": decimal,
        "Health": object(&["status", "database", "cache"], json!({
            "status": { "type": "string", "enum": ["ok", "unavailable"] },
            "database": { "type": "string" },
            "cache": { "type": "string" },
            "market_data": { "type": "string" },
            "market_stream": {
                "type": ["object", "null"],
                "required": ["provider", "state", "streamed"],
                "properties": {
                    "provider": { "type": "string" },
                    "state": { "type": "string", "enum": ["streaming", "down", "standby"] },
                    "streamed": { "type": "integer", "minimum": 0 },
                },
            },
            "websocket_clients": { "type": "integer", "minimum": 0 },
        })),
        "JobStatus": object(
            &["name", "running", "interval_seconds", "last_run_at", "last_duration_ms",
              "last_error", "runs", "failures", "next_run_at", "leader", "is_leader", "paused"],
            json!({
                "name": { "type": "string" },
                "running": { "type": "boolean" },
                "paused": { "type": "boolean" },
                "missed_policy": { "type": "string", "pattern": "^(skip|once|all:[0-9]+)$" },
                "skipped_paused": { "type": "integer", "minimum": 0 },
                "interval_seconds": { "type": "number" },
                "schedule": { "type": "string" },
                "timezone": nullable(json!({ "type": "string" })),
                "next_run_local": nullable(json!({ "type": "string" })),
                "last_run_at": nullable(time.clone()),
                "last_duration_ms": nullable(json!({ "type": "integer", "minimum": 0 })),
                "last_error": nullable(json!({ "type": "string" })),
                "runs": { "type": "integer", "minimum": 0 },
                "failures": { "type": "integer", "minimum": 0 },
                "next_run_at": nullable(time.clone()),
                "leader": nullable(json!({ "type": "string" })),
                "is_leader": { "type": "boolean" },
                "busy": { "type": "boolean" },
                "singleton": { "type": "boolean" },
                "skipped_not_leader": { "type": "integer", "minimum": 0 },
                "missed_ticks": { "type": "integer", "minimum": 0 },
                "last_success_at": nullable(time.clone()),
                "last_status": nullable(json!({ "type": "string" })),
                "last_report": nullable(json!({ "type": "object" })),
            }),
        ),
        "JobsStatus": object(&["jobs", "total_jobs"], json!({
            "jobs": { "type": "array", "items": r("JobStatus") },
            "total_jobs": { "type": "integer", "minimum": 0 },
        })),
        "JobRun": object(&["started_at", "duration_ms", "status", "error", "summary", "instance"], json!({
            "started_at": time.clone(),
            "duration_ms": { "type": "integer", "minimum": 0 },
            "status": { "type": "string", "enum": ["ok", "failed", "timeout", "panicked", "cancelled"] },
            "error": nullable(json!({ "type": "string" })),
            "summary": nullable(json!({ "type": "string" })),
            "instance": { "type": "string" },
        })),
        "JobRuns": object(&["runs"], json!({ "runs": { "type": "array", "items": r("JobRun") } })),
        "Accepted": object(&["status", "job"], json!({
            "status": { "type": "string", "enum": ["accepted"] },
            "job": { "type": "string" },
        })),
        "Quote": object(&["symbol_code", "price", "change", "change_percent", "timestamp"], json!({
            "symbol_code": { "type": "string" },
            "price": decimal,
            "change": decimal,
            "change_percent": decimal,
            "timestamp": time,
        })),
        "Quotes": object(&["quotes"], json!({ "quotes": { "type": "array", "items": r("Quote") } })),
        "Candle": object(&["t", "open", "high", "low", "close", "ticks"], json!({
            "t": time,
            "open": decimal,
            "high": decimal,
            "low": decimal,
            "close": decimal,
            "ticks": { "type": "integer", "minimum": 1 },
        })),
        "Candles": object(&["symbol_code", "interval", "candles"], json!({
            "symbol_code": { "type": "string" },
            "interval": { "type": "string", "enum": ["1m", "5m", "15m", "1h", "1d"] },
            "candles": { "type": "array", "maxItems": 1000, "items": r("Candle") },
        })),
        "Article": object(
            &["id", "title", "summary", "url", "source", "category", "thumbnail_url",
              "published_at", "related_symbols", "story_id", "sources"],
            json!({
                "id": { "type": "string" },
                "title": { "type": "string" },
                "summary": { "type": "string" },
                "url": { "type": "string" },
                "source": { "type": "string" },
                "category": { "type": "string" },
                "thumbnail_url": nullable(json!({ "type": "string" })),
                "published_at": time,
                "related_symbols": { "type": "array", "items": { "type": "string" } },
                "story_id": { "type": "string" },
                "sources": { "type": "array", "items": object(&["source", "url", "title"], json!({
                    "source": { "type": "string" },
                    "url": { "type": "string" },
                    "title": { "type": "string" },
                })) },
            }),
        ),
        "News": object(&["articles"], json!({ "articles": { "type": "array", "items": r("Article") } })),
        "Feed": object(
            &["name", "category", "url", "last_fetch_at", "last_status", "consecutive_failures",
              "next_fetch_at", "articles_total"],
            json!({
                "name": { "type": "string" },
                "category": { "type": "string" },
                "url": { "type": "string" },
                "last_fetch_at": nullable(time.clone()),
                "last_status": nullable(json!({ "type": "string", "enum": ["ok", "not_modified", "failed", "rate_limited"] })),
                "consecutive_failures": { "type": "integer", "minimum": 0 },
                "next_fetch_at": nullable(time.clone()),
                "articles_total": { "type": "integer", "minimum": 0 },
                "last_error": nullable(json!({ "type": "string" })),
            }),
        ),
        "Feeds": object(&["feeds"], json!({ "feeds": { "type": "array", "items": r("Feed") } })),
        "PredictionSummary": object(&summary_required, summary_props),
        "Predictions": object(&["predictions"], json!({
            "predictions": { "type": "array", "items": r("PredictionSummary") },
        })),
        "OptionEvidence": object(&["option", "condition", "result", "votes"], json!({
            "option": { "type": "string" },
            "condition": nullable(json!({ "type": "string" })),
            "result": nullable(json!({ "type": "boolean" })),
            "votes": { "type": "integer", "minimum": 0 },
        })),
        "PredictionEvidence": object(&evidence_required, evidence_props),
        "Prediction": object(
            &["id", "symbol_code", "question", "price_at_create", "verify_time", "verify_rule",
              "status", "created_at"],
            json!({
                "id": { "type": "string" },
                "symbol_code": { "type": "string" },
                "question": { "type": "string" },
                "price_at_create": decimal,
                "price_at_verify": nullable(decimal.clone()),
                "price_change_percent": nullable(decimal.clone()),
                "verify_time": time,
                "verify_rule": rule,
                "auto_verify_conditions": nullable(json!({ "type": "string" })),
                "correct_option": nullable(json!({ "type": "string" })),
                "status": status,
                "review_reason": nullable(json!({ "type": "string" })),
                "price_source": nullable(source),
                "price_provider": nullable(json!({ "type": "string" })),
                "price_at_verify_ts": nullable(time.clone()),
                "verified_at": nullable(time.clone()),
                "created_at": time,
            }),
        ),
        "UserStats": object(
            &["user_id", "total_participations", "correct_count", "accuracy_rate",
              "current_streak", "max_streak"],
            json!({
                "user_id": { "type": "string" },
                "total_participations": { "type": "integer", "minimum": 0 },
                "correct_count": { "type": "integer", "minimum": 0 },
                "accuracy_rate": decimal,
                "current_streak": { "type": "integer", "minimum": 0 },
                "max_streak": { "type": "integer", "minimum": 0 },
                "updated_at": time,
            }),
        ),
        "ResolveBody": object(&["correct_option"], json!({
            "correct_option": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "examples": ["A"] },
            "price_at_verify": decimal,
        })),
        "VoidBody": object(&["reason"], json!({
            "reason": { "type": "string", "minLength": 1, "maxLength": 500 },
        })),
    })
}

fn build() -> Value {
    let limit = json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 });
    let id = |what: &str| path_param("id", what);
    let get = |summary: &str, params: Value, ok: Value, more: &[(&str, Value)]| {
        let mut a = answers(&[("200", ok)]);
        for (c, v) in more {
            a.insert((*c).to_owned(), v.clone());
        }
        json!({ "summary": summary, "parameters": params, "responses": with_common(a) })
    };
    let not_found = |what: &str| error_answer(&format!("no such {what}"));
    let body = |schema: &str| json!({ "required": true, "content": { "application/json": { "schema": r(schema) } } });
    let revise = |summary: &str, schema: &str| {
        admin(json!({
            "summary": summary,
            "parameters": [id("the prediction")],
            "requestBody": body(schema),
            "responses": with_common(answers(&[
                ("200", json_answer("the prediction as stored afterwards", r("Prediction"))),
                ("404", not_found("prediction")),
                ("409", error_answer("not in a state that allows it")),
            ])),
        }))
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "goldjobs",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Background jobs of a precious-metals social platform: prices, news and prediction verification. Decimals are JSON strings; instants are RFC 3339 UTC.",
        },
        "paths": {
            "/": { "get": { "summary": "the live dashboard", "responses": {
                "200": text_answer("the page", "text/html") } } },
            "/dashboard.js": { "get": { "summary": "the dashboard's script", "responses": {
                "200": text_answer("the script", "text/javascript") } } },
            "/dashboard.css": { "get": { "summary": "the dashboard's styles", "responses": {
                "200": text_answer("the style sheet", "text/css") } } },
            "/uplot.js": { "get": { "summary": "the dashboard's chart library (uPlot, MIT, vendored)", "responses": {
                "200": text_answer("the script", "text/javascript") } } },
            "/uplot.css": { "get": { "summary": "the chart library's styles", "responses": {
                "200": text_answer("the style sheet", "text/css") } } },
            "/openapi.json": { "get": { "summary": "this document", "responses": {
                "200": json_answer("the OpenAPI document", json!({ "type": "object" })) } } },
            "/health": { "get": {
                "summary": "health of the database and the cache",
                "responses": {
                    "200": json_answer("every part is ok", r("Health")),
                    "503": json_answer("a part is failing (named)", r("Health")),
                },
            } },
            "/jobs/status": { "get": get("every job's status", json!([]),
                json_answer("the jobs", r("JobsStatus")), &[]) },
            "/jobs/{name}/run": { "post": admin(json!({
                "summary": "run a job now",
                "parameters": [path_param_like("name", "the job, e.g. PriceFetcherJob", "^[A-Za-z]{1,64}$", "NewsFetcherJob")],
                "responses": with_common(answers(&[
                    ("202", json_answer("the run is queued", r("Accepted"))),
                    ("404", not_found("job")),
                ])),
            })) },
            "/jobs/{name}/pause": { "post": admin(json!({
                "summary": "pause a job's scheduled runs on every instance (kept across restarts)",
                "parameters": [path_param_like("name", "the job, e.g. NewsFetcherJob", "^[A-Za-z]{1,64}$", "NewsFetcherJob")],
                "responses": with_common(answers(&[
                    ("200", json_answer("the job's status, paused", r("JobStatus"))),
                    ("404", not_found("job")),
                ])),
            })) },
            "/jobs/{name}/resume": { "post": admin(json!({
                "summary": "resume a paused job",
                "parameters": [path_param_like("name", "the job, e.g. NewsFetcherJob", "^[A-Za-z]{1,64}$", "NewsFetcherJob")],
                "responses": with_common(answers(&[
                    ("200", json_answer("the job's status", r("JobStatus"))),
                    ("404", not_found("job")),
                ])),
            })) },
            "/jobs/{name}/runs": { "get": get("the job's last runs on any instance, newest first",
                json!([
                    path_param_like("name", "the job, e.g. PriceFetcherJob", "^[A-Za-z]{1,64}$", "PriceFetcherJob"),
                    query("limit", "how many, 1–200 (default 50)", json!({ "type": "integer", "minimum": 1, "maximum": 200 })),
                ]),
                json_answer("the runs", r("JobRuns")), &[("404", not_found("job"))]) },
            "/quotes": { "get": get("the latest quote of every active symbol", json!([]),
                json_answer("the quotes", r("Quotes")), &[]) },
            "/quotes/{symbol}": { "get": get("the latest quote of one symbol",
                json!([path_param_like("symbol", "a symbol code like XAUUSD", "^[A-Za-z0-9]{1,32}$", "XAUUSD")]),
                json_answer("the quote", r("Quote")), &[("404", not_found("quote cached"))]) },
            "/quotes/{symbol}/candles": { "get": get("candles of the recorded ticks in [from, to), oldest first, empty intervals omitted",
                json!([
                    path_param_like("symbol", "a symbol code like XAUUSD", "^[A-Za-z0-9]{1,32}$", "XAUUSD"),
                    query("interval", "the candle width (default 1m), aligned to UTC boundaries", json!({ "type": "string", "enum": ["1m", "5m", "15m", "1h", "1d"] })),
                    query("from", "inclusive start, RFC 3339 (default: the last 100 intervals)", json!({ "type": "string", "format": "date-time" })),
                    query("to", "exclusive end, RFC 3339 (default: now); at most 1,000 intervals after from", json!({ "type": "string", "format": "date-time" })),
                ]),
                json_answer("the candles", r("Candles")), &[("404", not_found("symbol"))]) },
            "/news": { "get": get("the latest news, newest first",
                json!([
                    query("category", "one of the configured categories, any letter case", json!({ "type": "string" })),
                    query("limit", "how many, 1–100", limit.clone()),
                    query("group", "one entry per story (default true); false lists every article", json!({ "type": "boolean" })),
                ]),
                json_answer("the articles", r("News")), &[]) },
            "/news/feeds": { "get": get("the news feeds with their health",
                json!([]),
                json_answer("the feeds", r("Feeds")), &[]) },
            "/predictions": { "get": get("predictions, most recently verified first",
                json!([
                    query("status", "only this status", json!({ "type": "string", "enum": ["active", "ended", "needs_review", "void"] })),
                    query("symbol", "only this symbol", json!({ "type": "string", "pattern": "^[A-Za-z0-9]{1,32}$" })),
                    query("limit", "how many, 1–100", limit),
                ]),
                json_answer("the predictions", r("Predictions")), &[]) },
            "/predictions/{id}": { "get": get("one prediction with the evidence of its verdict",
                json!([id("the prediction")]),
                json_answer("the prediction, its prices and each option's condition and result", r("PredictionEvidence")),
                &[("404", not_found("prediction"))]) },
            "/users/{id}/stats": { "get": get("one user's prediction statistics",
                json!([id("the user")]),
                json_answer("the statistics", r("UserStats")), &[("404", not_found("statistics"))]) },
            "/admin/predictions/{id}/resolve": { "post": revise(
                "resolve a manual or needs_review prediction, or correct an ended one", "ResolveBody") },
            "/admin/predictions/{id}/void": { "post": revise("void a prediction (final)", "VoidBody") },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": {
                "200": text_answer("the metrics in the Prometheus text format", "text/plain") } } },
            "/ws": { "get": {
                "summary": "the WebSocket of live prices and verdicts (an HTTP/1.1 upgrade)",
                "responses": {
                    "101": { "description": "switching to the WebSocket protocol" },
                    "400": error_answer("a bad upgrade request"),
                    "403": error_answer("a browser origin that is not allowed"),
                    "426": error_answer("not a WebSocket upgrade"),
                    "503": error_answer("too many clients, or shutting down"),
                },
            } },
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "admin": { "type": "http", "scheme": "bearer",
                           "description": "GOLDJOBS_ADMIN_TOKEN" },
            },
        },
    })
}

/// Why `value` does not conform to the schema `schema` of this document (a checker of the
/// subset of JSON Schema the document uses: `$ref`, `anyOf`, `type`, `enum`, `required`,
/// `properties`, `items`, `pattern` of decimals, `minimum`); empty when it does.
pub fn check(schema: &Value, value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_at(schema, value, "$", &mut problems);
    problems
}

fn check_at(schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        match DOCUMENT["components"]["schemas"].get(name) {
            Some(target) => check_at(target, value, at, problems),
            None => problems.push(format!("{at}: unknown schema {reference}")),
        }
        return;
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let ok = any.iter().any(|s| check(s, value).is_empty());
        if !ok {
            problems.push(format!(
                "{at}: {value} matches none of {}",
                Value::Array(any.clone())
            ));
        }
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            problems.push(format!(
                "{at}: {value} is not one of {}",
                Value::Array(options.clone())
            ));
        }
    }
    let ty = schema.get("type").and_then(Value::as_str);
    let type_ok = match ty {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("null") => value.is_null(),
        Some(_) => false,
    };
    if !type_ok {
        problems.push(format!(
            "{at}: {value} is not of type {}",
            ty.unwrap_or("?")
        ));
        return;
    }
    if let (Some(pattern), Some(s)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) {
        // Decimals are checked; the other patterns (symbol codes, option names) only steer
        // schemathesis' generation.
        let ok = if pattern == DECIMAL_PATTERN {
            let digits = s.strip_prefix('-').unwrap_or(s);
            let mut parts = digits.splitn(2, '.');
            let int = parts.next().unwrap_or("");
            let frac = parts.next();
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        } else {
            true
        };
        if !ok {
            problems.push(format!("{at}: {s:?} does not match {pattern}"));
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
        if value.as_i64().is_some_and(|v| v < min) {
            problems.push(format!("{at}: {value} is below {min}"));
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(k) = key.as_str() {
                if !obj.contains_key(k) {
                    problems.push(format!("{at}: missing {k:?}"));
                }
            }
        }
        for (k, v) in obj {
            match props.get(k) {
                Some(s) => check_at(s, v, &format!("{at}.{k}"), problems),
                None => problems.push(format!("{at}: undocumented field {k:?}")),
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            check_at(items, v, &format!("{at}[{i}]"), problems);
        }
    }
}

/// The `200`/`202` JSON schema of `method path` in the document (a path as documented, e.g.
/// `/predictions/{id}`).
pub fn response_schema(method: &str, path: &str, status: u16) -> Option<&'static Value> {
    DOCUMENT["paths"]
        .get(path)?
        .get(method)?
        .get("responses")?
        .get(status.to_string())?
        .get("content")?
        .get("application/json")?
        .get("schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_exactly_the_routes_the_server_serves() {
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, ops) in DOCUMENT["paths"].as_object().into_iter().flatten() {
            for method in ops.as_object().into_iter().flatten().map(|(m, _)| m) {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        documented.sort();
        let mut served: Vec<(String, String)> = crate::http::ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        served.sort();
        assert_eq!(documented, served);
        assert_eq!(DOCUMENT["openapi"], "3.1.0");
        // Every reference resolves.
        let text = DOCUMENT.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(
                DOCUMENT["components"]["schemas"].get(&name).is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_checker_catches_drift() {
        let quote = r("Quote");
        let good = json!({"symbol_code": "XAUUSD", "price": "2658.50", "change": "-1.2",
                          "change_percent": "0.05", "timestamp": "2026-12-01T12:00:00Z"});
        assert!(
            check(&quote, &good).is_empty(),
            "{:?}",
            check(&quote, &good)
        );
        let mut float = good.clone();
        float["price"] = json!(2658.5);
        assert!(!check(&quote, &float).is_empty(), "a float price");
        let mut extra = good.clone();
        extra["bid"] = json!("1");
        assert!(!check(&quote, &extra).is_empty(), "an undocumented field");
        let mut missing = good;
        missing.as_object_mut().map(|m| m.remove("timestamp"));
        assert!(!check(&quote, &missing).is_empty(), "a missing field");
    }
}
