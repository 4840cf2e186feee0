//! Embed goldjobs on PostgreSQL and Redis: the same service as the reference server, in a few
//! lines. `DATABASE_URL` and `REDIS_URL` default to the local services.
//!
//! Run with `cargo run --example embed_postgres_redis --features postgres,redis`.

use goldjobs::prelude::*;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |k, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    let config = ServiceConfig::default()
        .with_database_url(env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ))
        .with_redis_url(env("REDIS_URL", "redis://127.0.0.1:6379"));
    let service = Service::builder(config).start().await?;
    let mut events = service.subscribe();
    let first = tokio::time::timeout(Duration::from_secs(30), events.recv()).await??;
    println!("{:?} on {}", first.topic, service.description());
    service.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
