//! Firebase Cloud Messaging, HTTP v1 API.
//!
//! `POST {base}/v1/projects/{project}/messages:send` with `Authorization: Bearer <token>`, one
//! request per device token (there is no batch endpoint any more), at most
//! [`FcmConfig::concurrency`] at once. The OAuth access token comes from the service account's
//! `token_uri` by the JWT-bearer grant (RS256 assertion signed with the account's private key),
//! as Google's own libraries do, and is cached until shortly before it expires.
//!
//! Errors are read from `error.details[].errorCode`:
//! - `UNREGISTERED` and `INVALID_ARGUMENT` about `message.token` → the token is dead: it is
//!   deleted from `device_tokens` and not retried;
//! - `SENDER_ID_MISMATCH` → a configuration error, not a dead token: the token belongs to
//!   another sender than this `FCM_PROJECT_ID`/credentials, which with a wrong project would be
//!   true of every user's tokens. Nothing is deleted; it is logged as an error, counted
//!   ([`FcmNotifier::config_errors`]) and the notification stays pending (temporary error) until
//!   the configuration is fixed or the outbox gives up;
//! - `QUOTA_EXCEEDED` → temporary, retry after at least 60 s;
//! - `UNAVAILABLE`, `INTERNAL` → temporary, honouring `Retry-After`, else the outbox's backoff;
//! - anything else → permanent, with FCM's message kept.
//!
//! Response bodies (errors, the token endpoint's answer) are read up to [`MAX_BODY_BYTES`].
//!
//! When some devices of a user failed temporarily, the notification is retried by the outbox;
//! devices that already received it are remembered (bounded) and not sent to again.

use super::NotifyError;
use async_trait::async_trait;
use futures::StreamExt;
use goldjobs_core::{DeviceTokenRepository, Error, Notification, Notifier, Result};
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const BACKEND: &str = "fcm";
/// The most bytes read of an FCM or OAuth response body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest access-token lifetime believed (a longer `expires_in` is cut to this).
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Minimum wait after `QUOTA_EXCEEDED`.
pub const QUOTA_BACKOFF: Duration = Duration::from_secs(60);
/// How many (notification, device) deliveries are remembered to avoid re-sending on retry.
pub const SENT_MEMORY: usize = 10_000;

/// The fields of a Google service-account key file that the notifier needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    /// The account's e-mail (JWT issuer).
    pub client_email: String,
    /// PEM-encoded RSA private key; never logged.
    pub private_key: String,
    /// Where to exchange the signed assertion for an access token.
    pub token_uri: String,
    /// The project, when the file names one.
    #[serde(default)]
    pub project_id: Option<String>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key", &"<redacted>")
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .finish()
    }
}

impl ServiceAccount {
    /// Parse a service-account JSON key.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| NotifyError::ServiceAccountJson(e).into())
    }

    /// Read a service-account JSON key file (`GOOGLE_APPLICATION_CREDENTIALS`).
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NotifyError::CredentialsFile(path.display().to_string(), e))?;
        Self::from_json(&text)
    }
}

/// Settings of the FCM notifier.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    /// `FCM_PROJECT_ID`.
    pub project_id: String,
    /// `FCM_BASE_URL`, default `https://fcm.googleapis.com`.
    pub base_url: String,
    /// Requests in flight at once (default 8).
    pub concurrency: usize,
    /// Per-request timeout (default 10 s).
    pub timeout: Duration,
}

impl FcmConfig {
    /// Defaults for a project.
    pub fn new(project_id: impl Into<String>) -> Self {
        FcmConfig {
            project_id: project_id.into(),
            base_url: "https://fcm.googleapis.com".into(),
            concurrency: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
struct CachedToken {
    value: String,
    refresh_at: Instant,
}

/// Bounded memory of deliveries already made, so a retried notification skips them.
#[derive(Debug, Default)]
struct SentMemory {
    set: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
}

impl SentMemory {
    fn contains(&self, key: &(String, String)) -> bool {
        self.set.contains(key)
    }
    fn insert(&mut self, key: (String, String)) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            while self.order.len() > SENT_MEMORY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// Sends notifications through FCM HTTP v1 to every device of the user.
pub struct FcmNotifier {
    client: reqwest::Client,
    config: FcmConfig,
    account: ServiceAccount,
    key: jsonwebtoken::EncodingKey,
    tokens: Arc<dyn DeviceTokenRepository>,
    access: tokio::sync::Mutex<Option<CachedToken>>,
    sent: Mutex<SentMemory>,
    config_errors: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for FcmNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmNotifier")
            .field("config", &self.config)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// What one send to one device came to.
#[derive(Debug)]
enum DeviceOutcome {
    Sent,
    DeadToken,
    Failed(Error),
    /// FCM refused our access token (HTTP 401): drop the cached token; retry later.
    Unauthorized(Error),
    /// The token belongs to another sender (`SENDER_ID_MISMATCH`): our configuration is wrong.
    Misconfigured(Error),
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorInfo,
}

#[derive(Debug, Deserialize)]
struct ErrorInfo {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
    #[serde(rename = "fieldViolations", default)]
    field_violations: Vec<FieldViolation>,
}

#[derive(Debug, Deserialize)]
struct FieldViolation {
    #[serde(default)]
    field: String,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl FcmNotifier {
    /// A notifier for `config.project_id`, authenticating as `account`, reading and pruning
    /// device tokens through `tokens`.
    pub fn new(
        config: FcmConfig,
        account: ServiceAccount,
        tokens: Arc<dyn DeviceTokenRepository>,
    ) -> Result<Self> {
        if config.project_id.trim().is_empty() {
            return Err(NotifyError::NoProject.into());
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(NotifyError::PrivateKey)?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::backend(BACKEND, "cannot build HTTP client", Some(e.into())))?;
        Ok(FcmNotifier {
            client,
            config: FcmConfig {
                concurrency: config.concurrency.max(1),
                ..config
            },
            account,
            key,
            tokens,
            access: tokio::sync::Mutex::new(None),
            sent: Mutex::new(SentMemory::default()),
            config_errors: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many sends FCM refused as `SENDER_ID_MISMATCH` (a wrong `FCM_PROJECT_ID` or
    /// credentials) since start.
    pub fn config_errors(&self) -> u64 {
        self.config_errors
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn send_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/messages:send",
            self.config.base_url.trim_end_matches('/'),
            self.config.project_id
        )
    }

    /// A valid access token, from the cache or freshly exchanged.
    async fn access_token(&self) -> Result<String> {
        let mut guard = self.access.lock().await;
        if let Some(t) = guard.as_ref() {
            if Instant::now() < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": self.account.client_email,
            "scope": SCOPE,
            "aud": self.account.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.key,
        )
        .map_err(|e| Error::backend(BACKEND, format!("cannot sign assertion: {e}"), None))?;
        let response = self
            .client
            .post(&self.account.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| transport_error(e, self.config.timeout))?;
        let status = response.status();
        let body = read_limited(response)
            .await
            .map_err(|e| transport_error(e, self.config.timeout))?;
        if !status.is_success() {
            let message = format!(
                "token endpoint answered HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                Error::unavailable(BACKEND, message, None)
            } else {
                Error::backend(BACKEND, message, None)
            });
        }
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            Error::backend(BACKEND, format!("token response not understood: {e}"), None)
        })?;
        let lifetime =
            Duration::from_secs(token.expires_in.unwrap_or(3600)).min(MAX_TOKEN_LIFETIME);
        // Refresh a minute early (or halfway for very short lifetimes).
        let margin = Duration::from_secs(60).min(lifetime / 2);
        let now = Instant::now();
        *guard = Some(CachedToken {
            value: token.access_token.clone(),
            refresh_at: now.checked_add(lifetime - margin).unwrap_or(now),
        });
        Ok(token.access_token)
    }

    async fn send_one(&self, access: &str, device: &str, n: &Notification) -> DeviceOutcome {
        let body = serde_json::json!({
            "message": {
                "token": device,
                "notification": { "title": n.title, "body": n.body },
                "data": n.data,
            }
        });
        let response = match self
            .client
            .post(self.send_url())
            .bearer_auth(access)
            .json(&body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return DeviceOutcome::Failed(transport_error(e, self.config.timeout)),
        };
        let status = response.status();
        if status.is_success() {
            return DeviceOutcome::Sent;
        }
        let retry_after = crate::headers::retry_after(response.headers());
        let bytes = read_limited(response).await.unwrap_or_default();
        classify(status.as_u16(), &bytes, retry_after)
    }

    async fn forget_access_token(&self) {
        *self.access.lock().await = None;
    }
}

/// The body of `response`, at most [`MAX_BODY_BYTES`] of it (the rest is not read).
async fn read_limited(mut response: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(body)
}

/// Map one FCM error answer to what to do about it.
fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> DeviceOutcome {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (message, fcm_status, codes, token_field) = match &parsed {
        Some(b) => (
            b.error.message.clone(),
            b.error.status.clone(),
            b.error
                .details
                .iter()
                .filter_map(|d| d.error_code.clone())
                .collect::<Vec<_>>(),
            b.error
                .details
                .iter()
                .flat_map(|d| d.field_violations.iter())
                .any(|v| v.field == "message.token"),
        ),
        None => (
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            String::new(),
            Vec::new(),
            false,
        ),
    };
    let code = codes.first().cloned().unwrap_or_else(|| fcm_status.clone());
    let text = format!("HTTP {status} {code}: {message}");
    match code.as_str() {
        "UNREGISTERED" => DeviceOutcome::DeadToken,
        "SENDER_ID_MISMATCH" => DeviceOutcome::Misconfigured(Error::unavailable(
            BACKEND,
            format!(
                "{text} — the device token belongs to another sender: check FCM_PROJECT_ID and \
                 the service account (no token was deleted)"
            ),
            None,
        )),
        "INVALID_ARGUMENT"
            if token_field || message.to_ascii_lowercase().contains("registration token") =>
        {
            DeviceOutcome::DeadToken
        }
        "QUOTA_EXCEEDED" => DeviceOutcome::Failed(Error::RateLimited {
            backend: BACKEND,
            message: text,
            retry_after: Some(retry_after.unwrap_or(QUOTA_BACKOFF).max(QUOTA_BACKOFF)),
        }),
        "UNAVAILABLE" | "INTERNAL" => DeviceOutcome::Failed(match retry_after {
            Some(_) => Error::RateLimited {
                backend: BACKEND,
                message: text,
                retry_after,
            },
            None => Error::unavailable(BACKEND, text, None),
        }),
        _ if status == 401 => DeviceOutcome::Unauthorized(Error::unavailable(
            BACKEND,
            format!("{text} (access token refreshed)"),
            None,
        )),
        _ if status >= 500 && parsed.is_none() => {
            DeviceOutcome::Failed(Error::unavailable(BACKEND, text, None))
        }
        _ => DeviceOutcome::Failed(Error::backend(BACKEND, text, None)),
    }
}

fn transport_error(e: reqwest::Error, timeout: Duration) -> Error {
    if e.is_timeout() {
        Error::Timeout(timeout)
    } else {
        Error::unavailable(BACKEND, "request failed", Some(e.without_url().into()))
    }
}

#[async_trait]
impl Notifier for FcmNotifier {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        let devices = self
            .tokens
            .tokens_for_users(std::slice::from_ref(&n.user_id))
            .await?;
        // Identify this notification for the sent-memory: user + prediction (or the body).
        let id = n
            .data
            .get("prediction_id")
            .cloned()
            .unwrap_or_else(|| n.body.clone());
        let sent_key = format!("{}|{id}", n.user_id);
        let todo: Vec<String> = {
            let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            devices
                .into_iter()
                .map(|d| d.token)
                .filter(|t| !sent.contains(&(sent_key.clone(), t.clone())))
                .collect()
        };
        if todo.is_empty() {
            return Ok(());
        }
        let access = self.access_token().await?;
        let outcomes: Vec<(String, DeviceOutcome)> = futures::stream::iter(todo)
            .map(|token| {
                let access = access.as_str();
                async move {
                    let outcome = self.send_one(access, &token, n).await;
                    (token, outcome)
                }
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;

        if outcomes
            .iter()
            .any(|(_, o)| matches!(o, DeviceOutcome::Unauthorized(_)))
        {
            self.forget_access_token().await;
        }
        let mut dead = Vec::new();
        let mut temporary: Option<Error> = None;
        let mut permanent: Option<Error> = None;
        for (token, outcome) in outcomes {
            match outcome {
                DeviceOutcome::Sent => self
                    .sent
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((sent_key.clone(), token)),
                DeviceOutcome::DeadToken => dead.push(token),
                DeviceOutcome::Misconfigured(e) => {
                    self.config_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(
                        project = %self.config.project_id,
                        error = %e,
                        "FCM configuration error: SENDER_ID_MISMATCH; no device token deleted"
                    );
                    temporary.get_or_insert(e);
                }
                DeviceOutcome::Unauthorized(e) | DeviceOutcome::Failed(e) if e.is_temporary() => {
                    // Keep the temporary error asking for the longest wait.
                    let keep = match &temporary {
                        Some(prev) => e.retry_after() > prev.retry_after(),
                        None => true,
                    };
                    if keep {
                        temporary = Some(e);
                    }
                }
                DeviceOutcome::Unauthorized(e) | DeviceOutcome::Failed(e) => permanent = Some(e),
            }
        }
        if !dead.is_empty() {
            let removed = self.tokens.delete_tokens(&dead).await?;
            tracing::info!(user = %n.user_id, removed, "deleted dead FCM device tokens");
        }
        if let Some(e) = temporary {
            return Err(e);
        }
        if let Some(e) = permanent {
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classifies_documented_errors() {
        let unregistered = br#"{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}"#;
        assert!(matches!(
            classify(404, unregistered, None),
            DeviceOutcome::DeadToken
        ));
        let invalid = br#"{"error": {"code": 400, "message": "The registration token is not a valid FCM registration token", "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"}, {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "message.token", "description": "x"}]}]}}"#;
        assert!(matches!(
            classify(400, invalid, None),
            DeviceOutcome::DeadToken
        ));
        let other_invalid = br#"{"error": {"code": 400, "message": "Invalid data payload", "status": "INVALID_ARGUMENT", "details": [{"errorCode": "INVALID_ARGUMENT"}]}}"#;
        match classify(400, other_invalid, None) {
            DeviceOutcome::Failed(e) => {
                assert!(!e.is_temporary());
                assert!(e.to_string().contains("Invalid data payload"));
            }
            o => panic!("{o:?}"),
        }
        let quota = br#"{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED", "details": [{"errorCode": "QUOTA_EXCEEDED"}]}}"#;
        match classify(429, quota, Some(Duration::from_secs(5))) {
            DeviceOutcome::Failed(e) => {
                assert!(e.is_temporary());
                assert_eq!(e.retry_after(), Some(QUOTA_BACKOFF));
            }
            o => panic!("{o:?}"),
        }
        let unavailable = br#"{"error": {"code": 503, "message": "unavailable", "status": "UNAVAILABLE", "details": [{"errorCode": "UNAVAILABLE"}]}}"#;
        match classify(503, unavailable, Some(Duration::from_secs(30))) {
            DeviceOutcome::Failed(e) => {
                assert!(e.is_temporary());
                assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
            }
            o => panic!("{o:?}"),
        }
        match classify(
            500,
            br#"{"error":{"details":[{"errorCode":"INTERNAL"}]}}"#,
            None,
        ) {
            DeviceOutcome::Failed(e) => {
                assert!(e.is_temporary());
                assert_eq!(e.retry_after(), None);
            }
            o => panic!("{o:?}"),
        }
        match classify(
            401,
            br#"{"error":{"message":"bad token","status":"UNAUTHENTICATED"}}"#,
            None,
        ) {
            DeviceOutcome::Unauthorized(e) => assert!(e.is_temporary()),
            o => panic!("{o:?}"),
        }
        match classify(502, b"<html>bad gateway", None) {
            DeviceOutcome::Failed(e) => assert!(e.is_temporary()),
            o => panic!("{o:?}"),
        }
        match classify(
            403,
            br#"{"error":{"message":"denied","status":"PERMISSION_DENIED"}}"#,
            None,
        ) {
            DeviceOutcome::Failed(e) => {
                assert!(!e.is_temporary());
                assert!(e.to_string().contains("denied"));
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn sent_memory_is_bounded() {
        let mut m = SentMemory::default();
        for i in 0..(SENT_MEMORY + 10) {
            m.insert((format!("u{i}"), "t".into()));
        }
        assert_eq!(m.set.len(), SENT_MEMORY);
        assert!(!m.contains(&("u0".into(), "t".into())));
        assert!(m.contains(&(format!("u{}", SENT_MEMORY + 9), "t".into())));
    }
}
