//! A job of your own beside the standard ones: the same runtime (fixed rate, timeouts, retries,
//! leases for singletons, status in `/jobs/status`).
//!
//! Run with `cargo run --example custom_job`.

use async_trait::async_trait;
use goldjobs::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts the active symbols every 250 ms, on every instance.
struct SymbolCensus {
    ports: Ports,
    runs: AtomicU64,
}

#[async_trait]
impl Job for SymbolCensus {
    fn name(&self) -> &str {
        "symbol_census"
    }

    fn schedule(&self) -> Schedule {
        // Not a singleton: runs on every instance, not only on the leader.
        Schedule::every(Duration::from_millis(250)).with_singleton(false)
    }

    async fn run(&self, _ctx: &JobContext) -> Result<RunReport> {
        let n = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let active = self.ports.symbols.active_symbols().await?;
        Ok(RunReport::ok(format!(
            "run {n}: {} active symbols",
            active.len()
        )))
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    // Build without starting, add the job, then start everything.
    let service = Service::builder(ServiceConfig::default()).build().await?;
    service.jobs().register(Arc::new(SymbolCensus {
        ports: service.ports().clone(),
        runs: AtomicU64::new(0),
    }))?;
    service.start();

    tokio::time::sleep(Duration::from_secs(1)).await;
    for job in service.jobs().status().jobs {
        let last = job.last_report.map(|r| r.summary).unwrap_or_default();
        println!("{:<22} runs: {:>3}  last: {last}", job.name, job.runs);
    }
    service.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
