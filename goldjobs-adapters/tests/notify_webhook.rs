//! Webhook notifier against a loopback server.
#![cfg(feature = "webhook")]
#![allow(clippy::unwrap_used)]

use goldjobs_adapters::notify::webhook::{
    verify_request, verify_signature, WebhookConfig, WebhookNotifier, DELIVERY_HEADER,
    SIGNATURE_HEADER, TIMESTAMP_HEADER,
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
        delivery_id: None,
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
    let mut note = notification();
    note.delivery_id = Some("outbox-41".into());
    n.notify(&note).await.unwrap();

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
    let ts = req.headers.get(TIMESTAMP_HEADER).unwrap().to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now - ts.parse::<i64>().unwrap()).abs() < 60);
    // The receiver verifies over the timestamp and the raw bytes it received.
    let five_min = Duration::from_secs(300);
    assert!(verify_request(
        b"s3cret", ts, &req.body, &sig, now, five_min
    ));
    assert!(!verify_request(
        b"wrong", ts, &req.body, &sig, now, five_min
    ));
    // A capture replayed an hour later is refused, also with the timestamp header changed.
    assert!(!verify_request(
        b"s3cret",
        ts,
        &req.body,
        &sig,
        now + 3600,
        five_min
    ));
    let fresh = (now + 3600).to_string();
    assert!(!verify_request(
        b"s3cret",
        &fresh,
        &req.body,
        &sig,
        now + 3600,
        five_min
    ));
    assert!(verify_signature(
        b"s3cret",
        ts.parse().unwrap(),
        &req.body,
        &sig
    ));
    assert_eq!(
        req.headers.get(DELIVERY_HEADER).unwrap(),
        "outbox-41",
        "the delivery id given by the outbox"
    );
    let body: Notification = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body, notification());
}

/// A redirect is not followed: following it would re-POST the body and its signature to
/// wherever the redirect points.
#[tokio::test]
async fn redirects_are_never_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    for status in [301u16, 302, 307, 308] {
        Mock::given(path(format!("/r{status}")))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("Location", format!("{}/steal", elsewhere.uri())),
            )
            .mount(&server)
            .await;
    }
    Mock::given(path("/steal"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&elsewhere)
        .await;
    for status in [301u16, 302, 307, 308] {
        let n = WebhookNotifier::new(WebhookConfig::new(
            format!("{}/r{status}?token=t0ken", server.uri()),
            "k",
        ))
        .unwrap();
        let e = n.notify(&notification()).await.unwrap_err();
        assert!(!e.is_temporary(), "{status}: {e}");
        assert!(!e.to_string().contains("t0ken"), "the URL is redacted: {e}");
    }
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
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
