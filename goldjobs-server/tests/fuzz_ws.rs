//! Fuzz-style property tests of the WebSocket endpoint (`/ws`, guide: *WebSocket protocol*):
//! arbitrary text and binary frames, JSON of every shape, mutated valid messages and raw text
//! frames that are not UTF-8. Whatever a client sends, the server answers with well-formed messages
//! (an `error` for what it cannot use) or closes the connection with a close frame — and keeps
//! serving.
//!
//! The client-message parser is private to the hub, so it is driven through a real server
//! (in-process, SQLite in a temp dir, jobs not started, the per-connection rate limit raised so
//! that hundreds of frames can go over one connection).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{SinkExt, StreamExt};
use goldjobs_server::app::{self, App, AppOptions};
use goldjobs_server::config::Config;
use goldjobs_server::hub::HubConfig;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CASES: u32 = 256;

struct Server {
    app: App,
    ws_url: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fuzz-ws.db");
    let env: HashMap<String, String> = [
        ("GOLDJOBS_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        ),
        (
            "GOLDJOBS_NEWS_FEEDS",
            "gold|Local test feed|http://127.0.0.1:9/rss".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cfg = Config::from_sources(None, &env).unwrap();
    let opts = AppOptions {
        start_jobs: false,
        hub: HubConfig {
            max_messages_per_second: 1_000_000,
            ..HubConfig::default()
        },
        ..AppOptions::default()
    };
    let app = app::start(cfg, opts).await.unwrap();
    let ws_url = format!("ws://{}/ws", app.local_addr());
    Server {
        app,
        ws_url,
        _dir: dir,
    }
}

async fn connect(url: &str) -> Ws {
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("connect timed out")
    .expect("the server no longer accepts WebSocket connections")
    .0
}

/// What one fuzz frame led to.
#[derive(Debug)]
enum Outcome {
    /// Answered with these messages (all well-formed), connection still open.
    Answered(Vec<Value>),
    /// The server closed the connection (with a close frame, or the TCP connection ended after a
    /// protocol violation by the client).
    Closed(Option<u16>),
}

/// Send `frame`, then a sync marker (a subscribe to an unknown symbol), and read until the
/// marker's `subscribed` answer: everything in between is the answer to `frame`.
async fn exchange(ws: &mut Ws, frame: Message, marker: &str) -> Outcome {
    if ws.send(frame).await.is_err() {
        return Outcome::Closed(None);
    }
    let sync = json!({"action": "subscribe", "symbols": [marker]}).to_string();
    if ws.send(Message::text(sync)).await.is_err() {
        return Outcome::Closed(None);
    }
    let mut answers = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no answer within 5 s (the server must answer or close)");
        let msg = match next {
            None | Some(Err(_)) => return Outcome::Closed(None),
            Some(Ok(m)) => m,
        };
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str())
                    .unwrap_or_else(|e| panic!("server sent non-JSON text {t:?}: {e}"));
                check_server_message(&v);
                if v["type"] == "subscribed"
                    && v["unknown"]
                        .as_array()
                        .is_some_and(|u| u.iter().any(|s| s == marker))
                {
                    return Outcome::Answered(answers);
                }
                answers.push(v);
            }
            Message::Close(frame) => return Outcome::Closed(frame.map(|f| u16::from(f.code))),
            Message::Binary(b) => panic!("server sent a binary frame {b:?}"),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// Every server message has the shape of the guide's *WebSocket protocol*.
fn check_server_message(v: &Value) {
    match v["type"].as_str() {
        Some("error") => assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without a message: {v}"
        ),
        Some("subscribed") | Some("unsubscribed") => {
            assert!(v["symbols"].is_array(), "{v}");
        }
        Some("pong") => {}
        Some("price_update") => assert!(v["payload"]["symbol_code"].is_string(), "{v}"),
        _ => panic!("unexpected server message {v}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Generators.

fn symbol() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop_oneof![
            Just("XAUUSD"),
            Just("xauusd"),
            Just("XAGUSD"),
            Just(""),
            Just(" XAUUSD "),
            Just("XAU/USD"),
            Just("金"),
            Just("\u{0}"),
        ]
        .prop_map(|s| json!(s)),
        "\\PC{0,12}".prop_map(Value::String),
        "[A-Z]{300}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
        Just(json!({"code": "XAUUSD"})),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Client messages close to the real ones: known and unknown actions, symbols of every type.
fn client_message() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(json!("subscribe")),
            Just(json!("unsubscribe")),
            Just(json!("ping")),
            Just(json!("SUBSCRIBE")),
            Just(json!("")),
            Just(Value::Null),
            Just(json!(1)),
            "\\PC{0,10}".prop_map(Value::String),
        ],
        prop_oneof![
            proptest::collection::vec(symbol(), 0..8).prop_map(Value::Array),
            proptest::collection::vec(symbol(), 40..70).prop_map(Value::Array),
            symbol(),
            arb_json(),
        ],
        proptest::option::of(arb_json()),
        any::<bool>(),
    )
        .prop_map(|(action, symbols, extra, with_symbols)| {
            let mut m = serde_json::Map::new();
            m.insert("action".into(), action);
            if with_symbols {
                m.insert("symbols".into(), symbols);
            }
            if let Some(extra) = extra {
                m.insert("extra".into(), extra);
            }
            Value::Object(m)
        })
}

fn mutated_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(r#"{"action":"subscribe","symbols":["XAUUSD","XAGUSD"]}"#),
            Just(r#"{"action":"unsubscribe","symbols":["XAGUSD"]}"#),
            Just(r#"{"action":"ping"}"#),
        ],
        any::<usize>(),
        any::<usize>(),
        "\\PC{0,6}",
    )
        .prop_map(|(base, cut, at, insert)| {
            let chars: Vec<char> = base.chars().collect();
            let cut = cut % (chars.len() + 1);
            let mut s: Vec<char> = chars[..cut].to_vec();
            let at = at % (s.len() + 1);
            s.splice(at..at, insert.chars());
            s.into_iter().collect()
        })
}

#[derive(Debug, Clone)]
enum FuzzFrame {
    Text(String),
    Binary(Vec<u8>),
    /// A text frame whose payload may not be UTF-8 (a protocol violation by the client).
    RawText(Vec<u8>),
}

fn fuzz_frame() -> impl Strategy<Value = FuzzFrame> {
    prop_oneof![
        3 => client_message().prop_map(|v| FuzzFrame::Text(v.to_string())),
        2 => arb_json().prop_map(|v| FuzzFrame::Text(v.to_string())),
        2 => any::<String>().prop_map(FuzzFrame::Text),
        2 => mutated_text().prop_map(FuzzFrame::Text),
        1 => "x{4000,4200}".prop_map(FuzzFrame::Text),
        1 => Just(FuzzFrame::Text(String::new())),
        2 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(FuzzFrame::Binary),
        1 => client_message().prop_map(|v| FuzzFrame::Binary(v.to_string().into_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(FuzzFrame::RawText),
    ]
}

impl FuzzFrame {
    fn message(&self) -> Message {
        match self {
            FuzzFrame::Text(t) => Message::text(t.clone()),
            FuzzFrame::Binary(b) => Message::binary(b.clone()),
            FuzzFrame::RawText(b) => {
                Message::Frame(Frame::message(b.clone(), OpCode::Data(Data::Text), true))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn arbitrary_frames_get_an_error_or_a_close_and_the_server_keeps_serving() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(start());
    let ws = std::cell::RefCell::new(Some(rt.block_on(connect(&server.ws_url))));
    let (n, answered, closed) = (
        std::cell::Cell::new(0u64),
        std::cell::Cell::new(0u32),
        std::cell::Cell::new(0u32),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&fuzz_frame(), |frame| {
        n.set(n.get() + 1);
        let marker = format!("ZZSYNC{}", n.get());
        let mut ws = ws.borrow_mut();
        if ws.is_none() {
            *ws = Some(rt.block_on(connect(&server.ws_url)));
        }
        let conn = ws.as_mut().unwrap();
        match rt.block_on(exchange(conn, frame.message(), &marker)) {
            Outcome::Answered(answers) => {
                answered.set(answered.get() + 1);
                // A data frame that is not a valid request is answered with an `error`; a valid
                // one with its answer. Either way: at least one message.
                prop_assert!(!answers.is_empty(), "no answer to {frame:?}");
                if let FuzzFrame::Binary(_) = frame {
                    prop_assert!(answers.iter().any(|a| a["type"] == "error"), "{answers:?}");
                }
            }
            Outcome::Closed(code) => {
                closed.set(closed.get() + 1);
                *ws = None;
                // Only a text frame that is not UTF-8 may cost the connection.
                prop_assert!(
                    matches!(frame, FuzzFrame::RawText(_)),
                    "connection closed ({code:?}) after {frame:?}"
                );
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "{} frames: {} answered, {} closed the connection",
        n.get(),
        answered.get(),
        closed.get()
    );

    // The server still serves: a fresh connection gets a pong.
    rt.block_on(async {
        let mut ws = connect(&server.ws_url).await;
        ws.send(Message::text(r#"{"action":"ping"}"#))
            .await
            .unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                assert_eq!(
                    serde_json::from_str::<Value>(t.as_str()).unwrap()["type"],
                    "pong"
                );
                break;
            }
        }
        server.app.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_frame_closes_with_1007() {
    let server = start().await;
    let mut ws = connect(&server.ws_url).await;
    let bad = Message::Frame(Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        OpCode::Data(Data::Text),
        true,
    ));
    let outcome = exchange(&mut ws, bad, "ZZSYNC").await;
    match outcome {
        Outcome::Answered(a) => panic!("expected a close with 1007, got {a:?}"),
        Outcome::Closed(code) => assert_eq!(code, Some(1007), "close code"),
    }
    // Others are not affected.
    let mut other = connect(&server.ws_url).await;
    match exchange(&mut other, Message::text(r#"{"action":"ping"}"#), "ZZSYNC2").await {
        Outcome::Answered(a) => assert_eq!(a.len(), 1, "{a:?}"),
        Outcome::Closed(c) => panic!("closed {c:?}"),
    }
    server.app.shutdown().await;
}
