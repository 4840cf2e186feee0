//! A notifier of your own: verdicts reach voters through it (after they are committed, from
//! the outbox, retried with backoff when it fails).
//!
//! The program creates a prediction in the platform's shape, due now, with two votes; the
//! verifier decides it by the next price tick and the outbox hands each voter's notification
//! to `ChannelNotifier`.
//!
//! Run with `cargo run --example custom_notifier`.

use async_trait::async_trait;
use chrono::Utc;
use goldjobs::prelude::*;
use goldjobs::{Prediction, VerifyRule, Vote};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Hands every notification to a channel (a real one would call your push service).
struct ChannelNotifier(mpsc::UnboundedSender<Notification>);

#[async_trait]
impl Notifier for ChannelNotifier {
    fn name(&self) -> &'static str {
        "channel"
    }

    async fn notify(&self, notification: &Notification) -> Result<()> {
        // An error here is retried later; the verdict itself is already stored.
        self.0
            .send(notification.clone())
            .map_err(|_| Error::unavailable("channel", "the receiver is gone", None))
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let config = ServiceConfig::default()
        .with_price_interval(Duration::from_millis(500))
        .with_verify_interval(Duration::from_secs(1))
        .with_log_notifications(false);
    let service = Service::builder(config)
        .notifier(Arc::new(ChannelNotifier(tx)))
        .start()
        .await?;

    let now = Utc::now();
    // Due in a second: the votes below arrive before the deadline, as on the platform (a
    // prediction already due could be verified between the two inserts, with nobody voted).
    let verify_time = now + chrono::Duration::seconds(1);
    let conditions = r#"{"A": {"condition": "price_change_percent >= 0"},
                         "B": {"condition": "price_change_percent < 0"}}"#;
    let prediction = Prediction::new_active(
        "example-1",
        "XAUUSD",
        "Will gold close higher?",
        Decimal::new(265_000, 2),
        verify_time,
        VerifyRule::Auto,
        Some(conditions.to_owned()),
        now,
    );
    let predictions = &service.ports().predictions;
    predictions.insert_prediction(&prediction).await?;
    let votes: Vec<Vote> = [("alice", "A"), ("bob", "B")]
        .into_iter()
        .map(|(user, option)| Vote {
            prediction_id: prediction.id.clone(),
            user_id: user.to_owned(),
            selected_option: option.to_owned(),
            is_correct: None,
            created_at: now,
        })
        .collect();
    predictions.insert_votes(&votes).await?;

    for _ in 0..votes.len() {
        let n = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await?
            .ok_or("the notifier was dropped")?;
        println!("to {}: {} — {} {:?}", n.user_id, n.title, n.body, n.data);
    }
    if let Some(evidence) = service.predictions().get(&prediction.id).await? {
        println!("{}", serde_json::to_string_pretty(&evidence)?);
    }
    service.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
