//! Webhook notifier against a loopback server.
#![cfg(feature = "webhook")]
#![allow(clippy::unwrap_used)]

use goldjobs_adapters::notify::webhook::{
    verify_signature, WebhookConfig, WebhookNotifier, SIGNATURE_HEADER,
};
use goldjobs_core::{Notification, Notifier};
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn notification() -> Notification {
    let mut data = BTreeMap::new();
    data.insert("type".into(), "prediction_verified".into());
    data.insert("prediction_id".into(), "pred-1".into());
    data.insert("is_correct".into(), "true".into());
    Notification {
        user_id: "u1".into(),
        title: "预测验证完成".into(),
        body: "预测结果已揭晓：金价会涨吗？ - 你的选择A是正确的！".into(),
        data,
    }
}

#[tokio::test]
async fn posts_signed_json_that_a_receiver_can_verify() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let n = WebhookNotifier::new(WebhookConfig::new(
        format!("{}/hook", server.uri()),
        "s3cret",
    ))
    .unwrap();
    n.notify(&notification()).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    let sig = req
        .headers
        .get(SIGNATURE_HEADER)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // The receiver verifies over the raw bytes it received.
    assert!(verify_signature(b"s3cret", &req.body, &sig));
    assert!(!verify_signature(b"wrong", &req.body, &sig));
    let body: Notification = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body, notification());
}

#[tokio::test]
async fn server_errors_and_timeouts_are_temporary_client_errors_permanent() {
    let server = MockServer::start().await;
    Mock::given(path("/500"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(path("/400"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&server)
        .await;
    Mock::given(path("/429"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let make = |p: &str| {
        let mut c = WebhookConfig::new(format!("{}{p}", server.uri()), "k");
        c.timeout = Duration::from_millis(300);
        WebhookNotifier::new(c).unwrap()
    };
    let e = make("/500").notify(&notification()).await.unwrap_err();
    assert!(e.is_temporary(), "{e}");
    let e = make("/400").notify(&notification()).await.unwrap_err();
    assert!(!e.is_temporary(), "{e}");
    let e = make("/429").notify(&notification()).await.unwrap_err();
    assert!(e.is_temporary());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    let e = make("/slow").notify(&notification()).await.unwrap_err();
    assert!(e.is_temporary(), "{e}");
}
