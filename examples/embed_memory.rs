//! Embed goldjobs on its in-memory default: no database, no Redis, demo prices.
//!
//! The service runs the five standard jobs; this program watches a few price updates go by (as
//! a WebSocket hub would), reads the quote cache, prints the jobs' status and stops.
//!
//! Run with `cargo run --example embed_memory`.

use goldjobs::prelude::*;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = ServiceConfig::default().with_price_interval(Duration::from_millis(500));
    let service = Service::builder(config).start().await?;
    println!("running on {}", service.description());

    let mut events = service.subscribe();
    for _ in 0..6 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
        println!(
            "{:?}: {}",
            event.topic,
            String::from_utf8_lossy(&event.payload)
        );
    }

    let cached = service.quotes().get_quotes(&["XAUUSD".to_owned()]).await?;
    if let Some(gold) = cached.first() {
        println!("XAUUSD from the cache: {}", gold.price);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&service.jobs().status())?
    );

    let report = service.shutdown(Duration::from_secs(5)).await;
    println!("stopped: {:?}", report.stopped);
    Ok(())
}
