//! Measures the server's memory per idle WebSocket connection.
//!
//! Starts the real `goldjobs-server` binary (demo feed, temporary SQLite, loopback port), reads
//! its resident memory (`VmRSS` from `/proc/PID/status`, Linux only), opens N idle WebSocket
//! connections that each subscribe to two symbols, waits, reads the RSS again and prints the
//! difference per connection. Everything stays on 127.0.0.1 and ends by itself.
//!
//! ```sh
//! cargo build -p goldjobs-server
//! cargo run -p goldjobs-server --example ws_idle_memory -- 2000
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let bin = std::env::var("GOLDJOBS_SERVER_BIN").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        format!("{target}/debug/goldjobs-server")
    });
    let dir = std::env::temp_dir().join(format!("gj-ws-mem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(&bin)
        .current_dir(&dir)
        .env("GOLDJOBS_LISTEN", "127.0.0.1:0")
        .env("GOLDJOBS_NEWS_FEEDS", "gold|Local|http://127.0.0.1:9/rss")
        .env("GOLDJOBS_PRICE_INTERVAL", "1h")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e} (build it first)"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().trim_start_matches("listening on ").to_owned();
    let url = format!("ws://{addr}/ws");

    // Warm up: one connection, so lazily built state is not counted per connection.
    let (mut warm, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    warm.send(Message::text(r#"{"action":"ping"}"#))
        .await
        .unwrap();
    warm.next().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(child.id());

    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::text(
            r#"{"action":"subscribe","symbols":["XAUUSD","XAGUSD"]}"#,
        ))
        .await
        .unwrap();
        clients.push(ws);
    }
    for ws in &mut clients {
        ws.next().await; // subscribed
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(child.id());
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        "{n} idle WebSocket connections: server RSS {before} KiB -> {after} KiB, \
         about {:.1} KiB per connection",
        per / 1024.0
    );
    drop(clients);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
