//! FCM HTTP v1 notifier against a loopback server, driven through the outbox.
//!
//! The "done" scenario of the push-notification issue: verifying a prediction with three voters
//! (one with two devices, one of them answering 503 once; one with an unregistered token) sends
//! the right text to each device, deletes the dead token and retries the 503 until it succeeds,
//! all visible in the outbox rows.
#![cfg(feature = "fcm")]
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use goldjobs_adapters::notify::fcm::{FcmConfig, FcmNotifier, ServiceAccount};
use goldjobs_core::jobs::OutboxDispatcherJob;
use goldjobs_core::memory::{InMemoryDeviceTokens, InMemoryPredictions, LocalBroadcaster};
use goldjobs_core::runtime::{Job, JobContext};
use goldjobs_core::{
    DeviceToken, DeviceTokenRepository, ManualClock, OutboxPayload, OutboxRepository, OutboxState,
    Prediction, PredictionRepository, PriceSource, Verdict, VerificationOutcome,
    VerificationRecord, VerifyRule, Vote,
};
use rust_decimal::Decimal;
use serde_json::json;
use std::sync::Arc;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/fcm/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn account(token_uri: String) -> ServiceAccount {
    let mut a = ServiceAccount::from_json(&fixture("test_service_account.json")).unwrap();
    a.token_uri = token_uri;
    a
}

#[tokio::test]
async fn three_voters_dead_token_deleted_503_retried_until_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"}),
        ))
        .expect(1) // cached for the second round
        .mount(&server)
        .await;
    let send = "/v1/projects/demo-project/messages:send";
    Mock::given(method("POST"))
        .and(path(send))
        .and(body_partial_json(
            json!({"message": {"token": "dead-token"}}),
        ))
        .respond_with(
            ResponseTemplate::new(404).set_body_string(fixture("error_unregistered.json")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(send))
        .and(body_partial_json(
            json!({"message": {"token": "alice-tablet"}}),
        ))
        .respond_with(ResponseTemplate::new(503).set_body_string(fixture("error_unavailable.json")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(send))
        .and(header("authorization", "Bearer ya29.test"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("success.json")))
        .with_priority(5)
        .mount(&server)
        .await;

    let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
    let repo = Arc::new(InMemoryPredictions::new());
    let tokens = Arc::new(InMemoryDeviceTokens::new());
    for (user, token) in [
        ("alice", "alice-phone"),
        ("alice", "alice-tablet"),
        ("bob", "bob-phone"),
        ("carol", "dead-token"),
    ] {
        tokens
            .register_token(&DeviceToken {
                user_id: user.into(),
                token: token.into(),
                platform: "android".into(),
            })
            .await
            .unwrap();
    }
    repo.insert_prediction(&Prediction::new_active(
        "p1",
        "XAUUSD",
        "金价会涨吗？",
        Decimal::new(265000, 2),
        t0,
        VerifyRule::Auto,
        Some(
            r#"{"A":{"condition":"price_change_percent > 0"},"B":{"condition":"price_change_percent <= 0"}}"#
                .into(),
        ),
        t0,
    ))
    .await
    .unwrap();
    let votes: Vec<Vote> = [("alice", "A"), ("bob", "B"), ("carol", "A")]
        .into_iter()
        .map(|(u, o)| Vote {
            prediction_id: "p1".into(),
            user_id: u.into(),
            selected_option: o.into(),
            is_correct: None,
            created_at: t0,
        })
        .collect();
    repo.insert_votes(&votes).await.unwrap();
    repo.record_verifications(&[VerificationRecord {
        prediction_id: "p1".into(),
        outcome: VerificationOutcome::Verified(Verdict {
            correct_option: "A".into(),
            price_at_verify: Decimal::new(268000, 2),
            price_change_percent: Some(Decimal::new(113, 2)),
            price_source: PriceSource::Tick,
            price_at_verify_ts: t0,
            price_provider: None,
        }),
        verified_at: t0,
        manual: false,
    }])
    .await
    .unwrap();

    let notifier = Arc::new(
        FcmNotifier::new(
            FcmConfig {
                base_url: server.uri(),
                ..FcmConfig::new("demo-project")
            },
            account(format!("{}/token", server.uri())),
            tokens.clone(),
        )
        .unwrap(),
    );
    let job = OutboxDispatcherJob::new(
        &goldjobs_core::Ports::in_memory().with_outbox(repo.clone()),
        Arc::new(LocalBroadcaster::new()),
        notifier,
    );
    let clock = ManualClock::new(t0);
    let ctx = JobContext {
        cancel: tokio_util::sync::CancellationToken::new(),
        clock: Arc::new(clock.clone()),
        attempt: 1,
    };

    job.run(&ctx).await.unwrap();
    // alice's tablet answered 503: her notification waits for a retry; the rest is delivered.
    let rows = repo.outbox_rows().await.unwrap();
    let alice = |rows: &[goldjobs_core::OutboxRow]| {
        rows.iter()
            .find(|r| matches!(&r.payload, OutboxPayload::Notify(n) if n.user_id == "alice"))
            .cloned()
            .unwrap()
    };
    let a = alice(&rows);
    assert_eq!(a.state, OutboxState::Pending);
    assert_eq!(a.attempts, 1);
    assert!(
        a.last_error.as_deref().unwrap().contains("UNAVAILABLE"),
        "{a:?}"
    );
    for r in &rows {
        if !matches!(&r.payload, OutboxPayload::Notify(n) if n.user_id == "alice") {
            assert_eq!(r.state, OutboxState::Delivered, "{r:?}");
        }
    }
    // The dead token is gone, the others stay.
    let left = tokens
        .tokens_for_users(&["alice".into(), "bob".into(), "carol".into()])
        .await
        .unwrap();
    let mut left: Vec<_> = left.into_iter().map(|t| t.token).collect();
    left.sort();
    assert_eq!(left, ["alice-phone", "alice-tablet", "bob-phone"]);

    // After the backoff the retry goes to the tablet only and succeeds.
    clock.advance(chrono::Duration::seconds(5));
    job.run(&ctx).await.unwrap();
    let a = alice(&repo.outbox_rows().await.unwrap());
    assert_eq!(a.state, OutboxState::Delivered, "{a:?}");

    let requests = server.received_requests().await.unwrap();
    let sends: Vec<serde_json::Value> = requests
        .iter()
        .filter(|r| r.url.path() == send)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let to = |t: &str| {
        sends
            .iter()
            .filter(|b| b["message"]["token"] == t)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(to("alice-phone").len(), 1, "not re-sent on retry");
    assert_eq!(to("alice-tablet").len(), 2, "503 then success");
    assert_eq!(to("dead-token").len(), 1, "not retried");
    let bob = &to("bob-phone")[0]["message"];
    assert_eq!(bob["notification"]["title"], "预测验证完成");
    assert_eq!(
        bob["notification"]["body"],
        "预测结果已揭晓：金价会涨吗？ - 你的选择B是错误的！"
    );
    assert_eq!(bob["data"]["prediction_id"], "p1");
    assert_eq!(bob["data"]["is_correct"], "false");
    let alice_msg = &to("alice-phone")[0]["message"];
    assert_eq!(
        alice_msg["notification"]["body"],
        "预测结果已揭晓：金价会涨吗？ - 你的选择A是正确的！"
    );
    assert_eq!(alice_msg["data"]["is_correct"], "true");
}

#[tokio::test]
async fn quota_exceeded_backs_off_at_least_a_minute_and_bad_key_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "t"})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/projects/p/messages:send"))
        .respond_with(ResponseTemplate::new(429).set_body_string(fixture("error_quota.json")))
        .mount(&server)
        .await;
    let tokens = Arc::new(InMemoryDeviceTokens::new());
    tokens
        .register_token(&DeviceToken {
            user_id: "u".into(),
            token: "tok".into(),
            platform: "ios".into(),
        })
        .await
        .unwrap();
    let n = FcmNotifier::new(
        FcmConfig {
            base_url: server.uri(),
            ..FcmConfig::new("p")
        },
        account(format!("{}/token", server.uri())),
        tokens,
    )
    .unwrap();
    use goldjobs_core::Notifier;
    let e = n
        .notify(&goldjobs_core::Notification {
            user_id: "u".into(),
            title: "t".into(),
            body: "b".into(),
            data: Default::default(),
            delivery_id: None,
        })
        .await
        .unwrap_err();
    assert!(e.is_temporary());
    assert!(e.retry_after().unwrap() >= std::time::Duration::from_secs(60));

    let mut bad = account("http://127.0.0.1:1/token".into());
    bad.private_key = "not a key".into();
    assert!(FcmNotifier::new(
        FcmConfig::new("p"),
        bad,
        Arc::new(InMemoryDeviceTokens::new())
    )
    .is_err());
}

/// One user's token registered; a notifier against `server` whose token endpoint answers
/// `token_body`.
async fn one_device_notifier(
    server: &MockServer,
    token_body: serde_json::Value,
) -> (FcmNotifier, Arc<InMemoryDeviceTokens>) {
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body))
        .mount(server)
        .await;
    let tokens = Arc::new(InMemoryDeviceTokens::new());
    tokens
        .register_token(&DeviceToken {
            user_id: "u".into(),
            token: "tok".into(),
            platform: "ios".into(),
        })
        .await
        .unwrap();
    let n = FcmNotifier::new(
        FcmConfig {
            base_url: server.uri(),
            ..FcmConfig::new("p")
        },
        account(format!("{}/token", server.uri())),
        tokens.clone(),
    )
    .unwrap();
    (n, tokens)
}

fn note() -> goldjobs_core::Notification {
    goldjobs_core::Notification {
        user_id: "u".into(),
        title: "t".into(),
        body: "b".into(),
        data: Default::default(),
        delivery_id: None,
    }
}

/// A wrong FCM_PROJECT_ID or service account makes FCM answer SENDER_ID_MISMATCH for every
/// token: that must never delete the users' tokens.
#[tokio::test]
async fn sender_id_mismatch_deletes_nothing_and_is_a_counted_configuration_error() {
    use goldjobs_core::Notifier;
    let server = MockServer::start().await;
    let (n, tokens) = one_device_notifier(&server, json!({"access_token": "t"})).await;
    let mismatch = json!({"error": {"code": 403, "message": "SenderId mismatch", "status": "PERMISSION_DENIED",
        "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "SENDER_ID_MISMATCH"}]}});
    Mock::given(path("/v1/projects/p/messages:send"))
        .respond_with(ResponseTemplate::new(403).set_body_json(mismatch))
        .mount(&server)
        .await;
    let e = n.notify(&note()).await.unwrap_err();
    assert!(
        e.is_temporary(),
        "kept pending until the configuration is fixed: {e}"
    );
    assert!(e.to_string().contains("FCM_PROJECT_ID"), "{e}");
    assert_eq!(n.config_errors(), 1);
    let left = tokens.tokens_for_users(&["u".into()]).await.unwrap();
    assert_eq!(left.len(), 1, "no token deleted");
}

/// A hostile endpoint: a 20 MiB error body is read only up to the limit, and an `expires_in`
/// of u64::MAX seconds neither panics nor caches the token forever.
#[tokio::test]
async fn huge_bodies_and_lifetimes_are_bounded() {
    use goldjobs_core::Notifier;
    let server = MockServer::start().await;
    let (n, _tokens) = one_device_notifier(
        &server,
        json!({"access_token": "t", "expires_in": u64::MAX}),
    )
    .await;
    Mock::given(path("/v1/projects/p/messages:send"))
        .respond_with(ResponseTemplate::new(500).set_body_string("x".repeat(20 << 20)))
        .mount(&server)
        .await;
    let e = n.notify(&note()).await.unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(
        e.to_string().len() < 1_000,
        "the message quotes at most a prefix"
    );
}
