//! The one typed configuration of the server (guide: *Configuration reference*).
//!
//! Read from an optional TOML file, then overridden by environment variables. The environment is
//! passed in as a map ([`Config::from_sources`]), so tests never touch the process environment.
//!
//! The TOML file uses the variable names in lower case without the `GOLDJOBS_` prefix
//! (`listen`, `database_url`, `price_interval`, `market_data`, ...); lists may be TOML arrays.
//! `news_feeds` may also be an array of tables `{ category, source, url }`.
//! Unknown keys in the file are an error, so that a typo does not pass silently.

use goldjobs::adapters::news::FeedConfig;
use goldjobs::runtime::Cadence;
/// The language of notification texts: the library's.
pub use goldjobs::verify::Locale;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An invalid configuration: one line naming the key, the bad value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value that is not allowed.
    #[error("invalid {key}={value}: {allowed}")]
    Invalid {
        /// The variable (or `key in FILE`).
        key: String,
        /// The bad value, quoted (redacted for secrets).
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// The config file could not be read or parsed.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A secret string: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; only for the code that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A URL that may carry a password (`DATABASE_URL`, `REDIS_URL`); `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wrap a URL.
    pub fn new(s: impl Into<String>) -> Self {
        SecretUrl(s.into())
    }

    /// The URL with its password; only for the code that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with the password (if any) replaced by `***`, safe to log.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

pub use goldjobs::service::redact_url;

/// A market data provider choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketDataKind {
    /// Twelve Data (needs `TWELVEDATA_API_KEY`).
    TwelveData,
    /// Binance public API (crypto only).
    Binance,
    /// The demo random walk.
    Demo,
}

impl MarketDataKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MarketDataKind::TwelveData => "twelvedata",
            MarketDataKind::Binance => "binance",
            MarketDataKind::Demo => "demo",
        }
    }
}

/// FCM notifier settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcmConfig {
    /// `FCM_PROJECT_ID`.
    pub project_id: String,
    /// `GOOGLE_APPLICATION_CREDENTIALS`: the service-account JSON file.
    pub credentials_file: PathBuf,
    /// `FCM_BASE_URL`.
    pub base_url: String,
}

/// Webhook notifier settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `GOLDJOBS_WEBHOOK_URL`.
    pub url: String,
    /// `GOLDJOBS_WEBHOOK_SECRET` (HMAC key).
    pub secret: Secret,
}

/// The whole configuration. Defaults are those of the guide's *Configuration reference*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `GOLDJOBS_LISTEN` (`127.0.0.1:8080`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// `DATABASE_URL` (`sqlite://goldjobs.db?mode=rwc`).
    pub database_url: SecretUrl,
    /// `REDIS_URL` (unset: in-process cache and hub).
    pub redis_url: Option<SecretUrl>,
    /// `GOLDJOBS_MARKET_DATA`: primary then fallbacks.
    pub market_data: Vec<MarketDataKind>,
    /// `TWELVEDATA_API_KEY`.
    pub twelvedata_api_key: Option<Secret>,
    /// `TWELVEDATA_BASE_URL`.
    pub twelvedata_base_url: String,
    /// `TWELVEDATA_CREDITS_PER_MINUTE` (8).
    pub twelvedata_credits_per_minute: u32,
    /// `BINANCE_BASE_URL`.
    pub binance_base_url: String,
    /// `GOLDJOBS_MARKET_STREAM` (unset): `twelvedata` or `binance`, the provider stream kept open
    /// on the price leader beside polling.
    pub market_stream: Option<MarketDataKind>,
    /// `TWELVEDATA_WS_URL` (`wss://ws.twelvedata.com/v1/quotes/price`).
    pub twelvedata_ws_url: String,
    /// `BINANCE_WS_URL` (`wss://data-stream.binance.vision`).
    pub binance_ws_url: String,
    /// `GOLDJOBS_NEWS_FEEDS`; `None` = the built-in list.
    pub news_feeds: Option<Vec<FeedConfig>>,
    /// `GOLDJOBS_PRICE_INTERVAL` (5 s, or `cron:EXPR`).
    pub price_interval: Cadence,
    /// `GOLDJOBS_NEWS_INTERVAL` (15 min, or `cron:EXPR`).
    pub news_interval: Cadence,
    /// `GOLDJOBS_VERIFY_INTERVAL` (60 s, or `cron:EXPR`).
    pub verify_interval: Cadence,
    /// `GOLDJOBS_TIMEZONE` (`UTC`): the IANA zone `cron:` schedules are evaluated in.
    pub timezone: String,
    /// `GOLDJOBS_QUOTE_TTL` (5 s).
    pub quote_ttl: Duration,
    /// `GOLDJOBS_PUSH_INTERVAL` (250 ms; `0s` pushes every update): at most one `price_update`
    /// per symbol and client in this period, the newest value wins.
    pub push_interval: Duration,
    /// `GOLDJOBS_NEWS_CACHE_TTL` (5 min).
    pub news_cache_ttl: Duration,
    /// `GOLDJOBS_VERIFY_MAX_LAG` (5 min).
    pub verify_max_lag: Duration,
    /// `GOLDJOBS_VERIFY_WAKE` (1 s; `off` for none): the least time between two verifier runs
    /// woken at the deadlines; `None` leaves predictions to the verifier's sweep.
    pub verify_wake: Option<Duration>,
    /// `GOLDJOBS_TICK_RETENTION` (30 days; `off` keeps every tick): older price ticks are
    /// deleted by `RetentionJob`.
    pub tick_retention: Option<Duration>,
    /// `GOLDJOBS_OUTBOX_RETENTION` (7 days; `off` keeps them): older delivered and failed outbox
    /// rows are deleted by `RetentionJob`.
    pub outbox_retention: Option<Duration>,
    /// `GOLDJOBS_ADMIN_TOKEN`; unset = admin endpoints answer 403.
    pub admin_token: Option<Secret>,
    /// `GOLDJOBS_CORS_ORIGINS`; empty = no CORS headers.
    pub cors_origins: Vec<String>,
    /// FCM notifier, when `FCM_PROJECT_ID` and `GOOGLE_APPLICATION_CREDENTIALS` are set.
    pub fcm: Option<FcmConfig>,
    /// Webhook notifier, when `GOLDJOBS_WEBHOOK_URL` and `GOLDJOBS_WEBHOOK_SECRET` are set.
    pub webhook: Option<WebhookConfig>,
    /// `GOLDJOBS_LOCALE` (`zh-CN`).
    pub locale: Locale,
    /// `RUST_LOG` (`info`).
    pub log_filter: String,
}

impl Default for Config {
    fn default() -> Self {
        #[allow(clippy::unwrap_used)] // both are constant, valid inputs
        Config::from_sources(None, &HashMap::new()).unwrap()
    }
}

/// Where a raw value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    Env,
    File(String),
}

/// One setting: its environment name and its key in the TOML file.
struct Setting {
    env: &'static str,
    key: &'static str,
    secret: bool,
}

const SETTINGS: &[Setting] = &[
    s("GOLDJOBS_LISTEN", "listen", false),
    s("DATABASE_URL", "database_url", false),
    s("REDIS_URL", "redis_url", false),
    s("GOLDJOBS_MARKET_DATA", "market_data", false),
    s("TWELVEDATA_API_KEY", "twelvedata_api_key", true),
    s("TWELVEDATA_BASE_URL", "twelvedata_base_url", false),
    s(
        "TWELVEDATA_CREDITS_PER_MINUTE",
        "twelvedata_credits_per_minute",
        false,
    ),
    s("BINANCE_BASE_URL", "binance_base_url", false),
    s("GOLDJOBS_MARKET_STREAM", "market_stream", false),
    s("TWELVEDATA_WS_URL", "twelvedata_ws_url", false),
    s("BINANCE_WS_URL", "binance_ws_url", false),
    s("GOLDJOBS_NEWS_FEEDS", "news_feeds", false),
    s("GOLDJOBS_TIMEZONE", "timezone", false),
    s("GOLDJOBS_PRICE_INTERVAL", "price_interval", false),
    s("GOLDJOBS_NEWS_INTERVAL", "news_interval", false),
    s("GOLDJOBS_VERIFY_INTERVAL", "verify_interval", false),
    s("GOLDJOBS_QUOTE_TTL", "quote_ttl", false),
    s("GOLDJOBS_PUSH_INTERVAL", "push_interval", false),
    s("GOLDJOBS_NEWS_CACHE_TTL", "news_cache_ttl", false),
    s("GOLDJOBS_VERIFY_MAX_LAG", "verify_max_lag", false),
    s("GOLDJOBS_VERIFY_WAKE", "verify_wake", false),
    s("GOLDJOBS_TICK_RETENTION", "tick_retention", false),
    s("GOLDJOBS_OUTBOX_RETENTION", "outbox_retention", false),
    s("GOLDJOBS_ADMIN_TOKEN", "admin_token", true),
    s("GOLDJOBS_CORS_ORIGINS", "cors_origins", false),
    s("FCM_PROJECT_ID", "fcm_project_id", false),
    s(
        "GOOGLE_APPLICATION_CREDENTIALS",
        "google_application_credentials",
        false,
    ),
    s("FCM_BASE_URL", "fcm_base_url", false),
    s("GOLDJOBS_WEBHOOK_URL", "webhook_url", false),
    s("GOLDJOBS_WEBHOOK_SECRET", "webhook_secret", true),
    s("GOLDJOBS_LOCALE", "locale", false),
    s("RUST_LOG", "rust_log", false),
];

/// The shortest duration setting accepted.
pub const MIN_DURATION: Duration = Duration::from_millis(100);
/// The longest duration setting accepted (30 days).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);
/// The shortest retention accepted.
const MIN_RETENTION: Duration = Duration::from_secs(3600);
/// The longest retention accepted (about ten years).
const MAX_RETENTION: Duration = Duration::from_secs(3650 * 86_400);

const fn s(env: &'static str, key: &'static str, secret: bool) -> Setting {
    Setting { env, key, secret }
}

/// Raw values by environment name, with their origin.
struct Raw {
    values: HashMap<&'static str, (String, Origin)>,
}

impl Raw {
    fn get(&self, env: &str) -> Option<&str> {
        self.values.get(env).map(|(v, _)| v.as_str())
    }

    fn err(&self, env: &'static str, allowed: impl Into<String>) -> ConfigError {
        let setting = SETTINGS.iter().find(|s| s.env == env);
        let secret = setting.is_some_and(|s| s.secret);
        let (value, origin) = match self.values.get(env) {
            Some((v, o)) => (v.as_str(), o.clone()),
            None => ("", Origin::Env),
        };
        let key = match origin {
            Origin::Env => env.to_owned(),
            Origin::File(path) => format!("{} (in {path})", setting.map(|s| s.key).unwrap_or(env)),
        };
        let value = if secret {
            "\"***\"".to_owned()
        } else if env == "DATABASE_URL" || env == "REDIS_URL" {
            format!("{:?}", redact_url(value))
        } else {
            format!("{value:?}")
        };
        ConfigError::Invalid {
            key,
            value,
            allowed: allowed.into(),
        }
    }

    /// A duration from [`MIN_DURATION`] to [`MAX_DURATION`] (guide: *Configuration reference*).
    fn duration(&self, env: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(env) {
            None => Ok(default),
            Some(v) => match humantime::parse_duration(v) {
                Ok(d) if (MIN_DURATION..=MAX_DURATION).contains(&d) => Ok(d),
                _ => Err(self.err(
                    env,
                    "expected a duration from 100ms to 30days (a duration like 500ms, 5s, 15m or 1h)",
                )),
            },
        }
    }

    /// A job's period: a duration from 100 ms to 30 days, or `cron:EXPR` evaluated in `zone`.
    fn cadence(
        &self,
        env: &'static str,
        default: Duration,
        zone: &str,
    ) -> Result<Cadence, ConfigError> {
        match self.get(env) {
            None => Ok(Cadence::Every(default)),
            Some(v) if v.trim().starts_with("cron:") => Cadence::parse(v, zone)
                .map_err(|e| self.err(env, format!("expected cron:EXPR with 5 or 6 fields ({e})"))),
            Some(_) => self.duration(env, default).map(Cadence::Every),
        }
    }

    /// A duration from 0 up to 1 minute; `default` when unset, `allowed` in the error.
    fn short_duration(
        &self,
        env: &'static str,
        default: Duration,
        allowed: &'static str,
    ) -> Result<Duration, ConfigError> {
        match self.get(env) {
            None => Ok(default),
            Some(v) => match humantime::parse_duration(v.trim()) {
                Ok(d) if d <= Duration::from_secs(60) => Ok(d),
                _ => Err(self.err(env, allowed)),
            },
        }
    }

    /// `GOLDJOBS_PUSH_INTERVAL`: 0 (every update) up to 1 minute; 250 ms when unset.
    fn push_interval(&self, env: &'static str) -> Result<Duration, ConfigError> {
        self.short_duration(
            env,
            Duration::from_millis(250),
            "expected a duration from 0s to 1m (a duration like 0s, 250ms or 1s)",
        )
    }

    /// `GOLDJOBS_VERIFY_WAKE`: `off`, or a duration from 0s to 1m; the library's default
    /// spacing (1 s) when unset.
    fn verify_wake(&self, env: &'static str) -> Result<Option<Duration>, ConfigError> {
        match self.get(env) {
            Some(v) if v.trim().eq_ignore_ascii_case("off") => Ok(None),
            _ => self
                .short_duration(
                    env,
                    goldjobs::jobs::VerifyWakeConfig::default().spacing,
                    "expected a duration from 0s to 1m (like 0s, 500ms or 1s), or off",
                )
                .map(Some),
        }
    }

    /// A positive duration, or `off` for none.
    fn retention(
        &self,
        env: &'static str,
        default: Duration,
    ) -> Result<Option<Duration>, ConfigError> {
        match self.get(env) {
            Some(v) if v.trim().eq_ignore_ascii_case("off") => Ok(None),
            Some(v) => match humantime::parse_duration(v.trim()) {
                Ok(d) if (MIN_RETENTION..=MAX_RETENTION).contains(&d) => Ok(Some(d)),
                _ => Err(self.err(
                    env,
                    "expected a duration from 1h to 3650days like 7d or 30days, or off",
                )),
            },
            None => Ok(Some(default)),
        }
    }

    fn http_url(&self, env: &'static str, default: &str) -> Result<String, ConfigError> {
        match self.get(env) {
            None => Ok(default.to_owned()),
            Some(v) => {
                if is_http_url(v) {
                    Ok(v.trim_end_matches('/').to_owned())
                } else {
                    Err(self.err(env, "expected an http:// or https:// URL"))
                }
            }
        }
    }

    /// A `ws://` or `wss://` URL without query or fragment (keys never go in URLs).
    fn ws_url(&self, env: &'static str, default: &str) -> Result<String, ConfigError> {
        match self.get(env) {
            None => Ok(default.to_owned()),
            Some(v) => {
                let ok = url::Url::parse(v)
                    .map(|u| {
                        matches!(u.scheme(), "ws" | "wss")
                            && u.has_host()
                            && u.query().is_none()
                            && u.fragment().is_none()
                    })
                    .unwrap_or(false);
                if ok {
                    Ok(v.trim_end_matches('/').to_owned())
                } else {
                    Err(self.err(
                        env,
                        "expected a ws:// or wss:// URL without query (the key is sent in a header)",
                    ))
                }
            }
        }
    }
}

fn is_http_url(v: &str) -> bool {
    url::Url::parse(v)
        .map(|u| (u.scheme() == "http" || u.scheme() == "https") && u.has_host())
        .unwrap_or(false)
}

/// Turn a TOML value into the string an environment variable would hold.
fn toml_to_string(env: &str, v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => {
            let sep = if env == "GOLDJOBS_NEWS_FEEDS" {
                ";"
            } else {
                ","
            };
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    toml::Value::Table(t) if env == "GOLDJOBS_NEWS_FEEDS" => {
                        let get = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or("");
                        Some(format!(
                            "{}|{}|{}",
                            get("category"),
                            get("source"),
                            get("url")
                        ))
                    }
                    other => toml_to_string("", other),
                })
                .collect();
            parts.map(|p| p.join(sep))
        }
        _ => None,
    }
}

impl Config {
    /// Load: the TOML file at `path` (or at `GOLDJOBS_CONFIG` in `env`), then `env` on top.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let path: Option<PathBuf> = path.map(Path::to_path_buf).or_else(|| {
            env.get("GOLDJOBS_CONFIG")
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
        });
        match path {
            None => Config::from_sources(None, env),
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| ConfigError::File {
                    path: p.display().to_string(),
                    message: format!("cannot read: {e}"),
                })?;
                Config::from_sources(Some((&p.display().to_string(), &text)), env)
            }
        }
    }

    /// Parse from an optional TOML file `(name, text)` and the environment `env`
    /// (environment values win; empty values count as unset).
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut raw = Raw {
            values: HashMap::new(),
        };
        if let Some((name, text)) = file {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: name.to_owned(),
                        message: e.message().to_owned(),
                    })?;
            for (k, v) in &table {
                let setting = SETTINGS
                    .iter()
                    .find(|s| s.key == k.as_str() || s.env.eq_ignore_ascii_case(k))
                    .ok_or_else(|| ConfigError::File {
                        path: name.to_owned(),
                        message: format!("unknown key {k:?}"),
                    })?;
                let value = toml_to_string(setting.env, v).ok_or_else(|| ConfigError::File {
                    path: name.to_owned(),
                    message: format!("key {k:?}: expected a string, number or list"),
                })?;
                // Trimmed like environment values.
                let value = value.trim();
                if !value.is_empty() {
                    raw.values.insert(
                        setting.env,
                        (value.to_owned(), Origin::File(name.to_owned())),
                    );
                }
            }
        }
        for setting in SETTINGS {
            if let Some(v) = env.get(setting.env) {
                if !v.trim().is_empty() {
                    raw.values
                        .insert(setting.env, (v.trim().to_owned(), Origin::Env));
                }
            }
        }
        Config::from_raw(&raw)
    }

    fn from_raw(raw: &Raw) -> Result<Config, ConfigError> {
        let listen = match raw.get("GOLDJOBS_LISTEN") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.parse().map_err(|_| {
                raw.err(
                    "GOLDJOBS_LISTEN",
                    "expected IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
                )
            })?,
        };

        let database_url = match raw.get("DATABASE_URL") {
            None => "sqlite://goldjobs.db?mode=rwc".to_owned(),
            Some(v) => {
                let ok = v.starts_with("sqlite:")
                    || ((v.starts_with("postgres://") || v.starts_with("postgresql://"))
                        && url::Url::parse(v).is_ok());
                if !ok {
                    return Err(raw.err("DATABASE_URL", "expected a sqlite: or postgres:// URL"));
                }
                v.to_owned()
            }
        };

        let redis_url = match raw.get("REDIS_URL") {
            None => None,
            Some(v) => {
                let ok = url::Url::parse(v)
                    .map(|u| matches!(u.scheme(), "redis" | "rediss" | "redis+unix" | "unix"))
                    .unwrap_or(false);
                if !ok {
                    return Err(raw.err("REDIS_URL", "expected a redis:// or rediss:// URL"));
                }
                Some(SecretUrl::new(v))
            }
        };

        let twelvedata_api_key = raw.get("TWELVEDATA_API_KEY").map(Secret::new);

        let market_data = match raw.get("GOLDJOBS_MARKET_DATA") {
            None if twelvedata_api_key.is_some() => vec![MarketDataKind::TwelveData],
            None => vec![MarketDataKind::Demo],
            Some(v) => {
                let allowed = "expected twelvedata, binance, demo, or a comma list of \
                               twelvedata and binance (primary first, each at most once; demo \
                               only alone)";
                let mut kinds = Vec::new();
                for part in v.split(',') {
                    let kind = match part.trim().to_ascii_lowercase().as_str() {
                        "twelvedata" => MarketDataKind::TwelveData,
                        "binance" => MarketDataKind::Binance,
                        "demo" => MarketDataKind::Demo,
                        _ => return Err(raw.err("GOLDJOBS_MARKET_DATA", allowed)),
                    };
                    if kinds.contains(&kind) {
                        return Err(raw.err("GOLDJOBS_MARKET_DATA", allowed));
                    }
                    kinds.push(kind);
                }
                // guide: *Configuration reference*: made-up prices never enter a real deployment.
                if kinds.len() > 1 && kinds.contains(&MarketDataKind::Demo) {
                    return Err(raw.err(
                        "GOLDJOBS_MARKET_DATA",
                        "demo is allowed only alone; a list of providers may name twelvedata \
                         and binance (primary first), never demo",
                    ));
                }
                if kinds.contains(&MarketDataKind::TwelveData) && twelvedata_api_key.is_none() {
                    return Err(raw.err(
                        "GOLDJOBS_MARKET_DATA",
                        "twelvedata needs TWELVEDATA_API_KEY to be set",
                    ));
                }
                kinds
            }
        };

        let market_stream = match raw.get("GOLDJOBS_MARKET_STREAM") {
            None => None,
            Some(v) => {
                let kind =
                    match v.trim().to_ascii_lowercase().as_str() {
                        "twelvedata" => MarketDataKind::TwelveData,
                        "binance" => MarketDataKind::Binance,
                        _ => return Err(raw.err(
                            "GOLDJOBS_MARKET_STREAM",
                            "expected twelvedata or binance (or leave it unset for polling only)",
                        )),
                    };
                if kind == MarketDataKind::TwelveData && twelvedata_api_key.is_none() {
                    return Err(raw.err(
                        "GOLDJOBS_MARKET_STREAM",
                        "twelvedata needs TWELVEDATA_API_KEY to be set",
                    ));
                }
                // guide: *Configuration reference*: demo prices never mix with real ones.
                if market_data.contains(&MarketDataKind::Demo) {
                    return Err(raw.err(
                        "GOLDJOBS_MARKET_STREAM",
                        "a provider stream gives real prices and cannot run beside the demo \
                         feed; set GOLDJOBS_MARKET_DATA to twelvedata or binance too",
                    ));
                }
                Some(kind)
            }
        };

        let twelvedata_credits_per_minute = match raw.get("TWELVEDATA_CREDITS_PER_MINUTE") {
            None => 8,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=100_000).contains(&n) => n,
                _ => {
                    return Err(raw.err(
                        "TWELVEDATA_CREDITS_PER_MINUTE",
                        "expected a whole number from 1 to 100000",
                    ))
                }
            },
        };

        // The library's parser (one syntax, one set of checks: categories, names, http(s) URLs,
        // each URL once), so a bad list stops the start here, before anything is connected.
        let news_feeds = match raw.get("GOLDJOBS_NEWS_FEEDS") {
            None => None,
            Some(v) => match FeedConfig::parse_list(v) {
                Ok(feeds) => Some(feeds),
                Err(e) => {
                    let why = match e {
                        goldjobs::Error::InvalidInput(m) => m,
                        other => other.to_string(),
                    };
                    let why = why
                        .strip_prefix("GOLDJOBS_NEWS_FEEDS ")
                        .unwrap_or(&why)
                        .to_owned();
                    return Err(raw.err("GOLDJOBS_NEWS_FEEDS", why));
                }
            },
        };

        let fcm =
            match (
                raw.get("FCM_PROJECT_ID"),
                raw.get("GOOGLE_APPLICATION_CREDENTIALS"),
            ) {
                (None, _) => None,
                (Some(_), None) => return Err(raw.err(
                    "FCM_PROJECT_ID",
                    "GOOGLE_APPLICATION_CREDENTIALS must be set too (service-account JSON file)",
                )),
                (Some(project), Some(file)) => Some(FcmConfig {
                    project_id: project.to_owned(),
                    credentials_file: PathBuf::from(file),
                    base_url: raw.http_url("FCM_BASE_URL", "https://fcm.googleapis.com")?,
                }),
            };

        let webhook = match (
            raw.get("GOLDJOBS_WEBHOOK_URL"),
            raw.get("GOLDJOBS_WEBHOOK_SECRET"),
        ) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(raw.err(
                    "GOLDJOBS_WEBHOOK_URL",
                    "GOLDJOBS_WEBHOOK_SECRET must be set too",
                ))
            }
            (None, Some(_)) => {
                return Err(raw.err(
                    "GOLDJOBS_WEBHOOK_SECRET",
                    "GOLDJOBS_WEBHOOK_URL must be set too",
                ))
            }
            (Some(_), Some(secret)) => Some(WebhookConfig {
                url: raw.http_url("GOLDJOBS_WEBHOOK_URL", "")?,
                secret: Secret::new(secret),
            }),
        };

        let timezone = match raw.get("GOLDJOBS_TIMEZONE") {
            None => "UTC".to_owned(),
            Some(z) => goldjobs::runtime::parse_zone(z)
                .map(|tz| tz.name().to_owned())
                .map_err(|_| {
                    raw.err(
                        "GOLDJOBS_TIMEZONE",
                        "expected an IANA time zone such as UTC, Europe/Zurich or America/New_York",
                    )
                })?,
        };
        let locale = match raw.get("GOLDJOBS_LOCALE") {
            None => Locale::default(),
            Some(v) => v
                .parse::<Locale>()
                .map_err(|_| raw.err("GOLDJOBS_LOCALE", "expected zh-CN or en"))?,
        };

        let log_filter = match raw.get("RUST_LOG") {
            None => "info".to_owned(),
            Some(v) => {
                if tracing_subscriber::EnvFilter::try_new(v).is_err() {
                    return Err(raw.err(
                        "RUST_LOG",
                        "expected a tracing filter like info, warn or goldjobs=debug,info",
                    ));
                }
                v.to_owned()
            }
        };

        let cors_origins = match raw.get("GOLDJOBS_CORS_ORIGINS") {
            None => Vec::new(),
            Some(v) => {
                let mut out = Vec::new();
                for o in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                    if o != "*" && !is_http_url(o) {
                        return Err(raw.err(
                            "GOLDJOBS_CORS_ORIGINS",
                            "expected `*` or a comma list of origins like https://example.com",
                        ));
                    }
                    out.push(o.trim_end_matches('/').to_owned());
                }
                out
            }
        };

        Ok(Config {
            listen,
            database_url: SecretUrl::new(database_url),
            redis_url,
            market_data,
            twelvedata_api_key,
            twelvedata_base_url: raw
                .http_url("TWELVEDATA_BASE_URL", "https://api.twelvedata.com")?,
            twelvedata_credits_per_minute,
            binance_base_url: raw.http_url("BINANCE_BASE_URL", "https://api.binance.com")?,
            market_stream,
            twelvedata_ws_url: raw.ws_url(
                "TWELVEDATA_WS_URL",
                "wss://ws.twelvedata.com/v1/quotes/price",
            )?,
            binance_ws_url: raw.ws_url("BINANCE_WS_URL", "wss://data-stream.binance.vision")?,
            news_feeds,
            price_interval: raw.cadence(
                "GOLDJOBS_PRICE_INTERVAL",
                Duration::from_secs(5),
                &timezone,
            )?,
            news_interval: raw.cadence(
                "GOLDJOBS_NEWS_INTERVAL",
                Duration::from_secs(15 * 60),
                &timezone,
            )?,
            verify_interval: raw.cadence(
                "GOLDJOBS_VERIFY_INTERVAL",
                Duration::from_secs(60),
                &timezone,
            )?,
            timezone,
            quote_ttl: raw.duration("GOLDJOBS_QUOTE_TTL", Duration::from_secs(5))?,
            push_interval: raw.push_interval("GOLDJOBS_PUSH_INTERVAL")?,
            news_cache_ttl: raw.duration("GOLDJOBS_NEWS_CACHE_TTL", Duration::from_secs(5 * 60))?,
            verify_max_lag: raw.duration("GOLDJOBS_VERIFY_MAX_LAG", Duration::from_secs(5 * 60))?,
            verify_wake: raw.verify_wake("GOLDJOBS_VERIFY_WAKE")?,
            tick_retention: raw.retention(
                "GOLDJOBS_TICK_RETENTION",
                Duration::from_secs(30 * 24 * 3600),
            )?,
            outbox_retention: raw.retention(
                "GOLDJOBS_OUTBOX_RETENTION",
                Duration::from_secs(7 * 24 * 3600),
            )?,
            admin_token: raw.get("GOLDJOBS_ADMIN_TOKEN").map(Secret::new),
            cors_origins,
            fcm,
            webhook,
            locale,
            log_filter,
        })
    }

    /// Whether the primary market data source is the demo feed.
    pub fn is_demo_market_data(&self) -> bool {
        self.market_data.first() == Some(&MarketDataKind::Demo)
    }

    /// The database kind and location, safe to log, e.g. `sqlite goldjobs.db`.
    pub fn describe_database(&self) -> String {
        goldjobs::service::describe_database(self.database_url.expose())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn err_line(pairs: &[(&str, &str)]) -> String {
        Config::from_sources(None, &env(pairs))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::from_sources(None, &env(&[])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.database_url.expose(), "sqlite://goldjobs.db?mode=rwc");
        assert_eq!(c.redis_url, None);
        assert_eq!(c.market_data, vec![MarketDataKind::Demo]);
        assert!(c.is_demo_market_data());
        assert_eq!(c.twelvedata_base_url, "https://api.twelvedata.com");
        assert_eq!(c.twelvedata_credits_per_minute, 8);
        assert_eq!(c.binance_base_url, "https://api.binance.com");
        assert_eq!(c.market_stream, None);
        assert_eq!(
            c.twelvedata_ws_url,
            "wss://ws.twelvedata.com/v1/quotes/price"
        );
        assert_eq!(c.binance_ws_url, "wss://data-stream.binance.vision");
        assert_eq!(c.news_feeds, None);
        assert_eq!(c.price_interval, Cadence::Every(Duration::from_secs(5)));
        assert_eq!(c.news_interval, Cadence::Every(Duration::from_secs(900)));
        assert_eq!(c.verify_interval, Cadence::Every(Duration::from_secs(60)));
        assert_eq!(c.quote_ttl, Duration::from_secs(5));
        assert_eq!(c.push_interval, Duration::from_millis(250));
        assert_eq!(c.news_cache_ttl, Duration::from_secs(300));
        assert_eq!(c.verify_max_lag, Duration::from_secs(300));
        assert_eq!(c.verify_wake, Some(Duration::from_secs(1)));
        assert_eq!(c.tick_retention, Some(Duration::from_secs(30 * 24 * 3600)));
        assert_eq!(c.outbox_retention, Some(Duration::from_secs(7 * 24 * 3600)));
        assert_eq!(c.admin_token, None);
        assert!(c.cors_origins.is_empty());
        assert_eq!(c.fcm, None);
        assert_eq!(c.webhook, None);
        assert_eq!(c.locale, Locale::ZhCn);
        assert_eq!(c.log_filter, "info");
        assert_eq!(c.describe_database(), "sqlite goldjobs.db");
        assert_eq!(Config::default(), c);
    }

    #[test]
    fn market_streams_are_read_and_checked() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("TWELVEDATA_API_KEY", "k"),
                ("GOLDJOBS_MARKET_STREAM", "TwelveData"),
                ("TWELVEDATA_WS_URL", "ws://127.0.0.1:9/v1/quotes/price"),
                ("BINANCE_WS_URL", "wss://stream.binance.com:9443/"),
            ]),
        )
        .unwrap();
        assert_eq!(c.market_stream, Some(MarketDataKind::TwelveData));
        assert_eq!(c.twelvedata_ws_url, "ws://127.0.0.1:9/v1/quotes/price");
        assert_eq!(c.binance_ws_url, "wss://stream.binance.com:9443");
        let c = Config::from_sources(
            None,
            &env(&[
                ("GOLDJOBS_MARKET_DATA", "binance"),
                ("GOLDJOBS_MARKET_STREAM", "binance"),
            ]),
        )
        .unwrap();
        assert_eq!(c.market_stream, Some(MarketDataKind::Binance));

        let e = err_line(&[("GOLDJOBS_MARKET_STREAM", "demo")]);
        assert!(e.contains("expected twelvedata or binance"), "{e}");
        let e = err_line(&[("GOLDJOBS_MARKET_STREAM", "twelvedata")]);
        assert!(e.contains("TWELVEDATA_API_KEY"), "{e}");
        // The demo feed never runs beside real prices.
        let e = err_line(&[("GOLDJOBS_MARKET_STREAM", "binance")]);
        assert!(e.contains("demo"), "{e}");
        let e = err_line(&[
            ("TWELVEDATA_API_KEY", "k"),
            (
                "TWELVEDATA_WS_URL",
                "wss://ws.twelvedata.com/v1/quotes/price?apikey=k",
            ),
        ]);
        assert!(e.contains("without query"), "{e}");
        assert!(err_line(&[("BINANCE_WS_URL", "https://x")]).contains("ws://"));
    }

    #[test]
    fn twelvedata_is_the_default_when_a_key_is_set() {
        let c = Config::from_sources(None, &env(&[("TWELVEDATA_API_KEY", "k")])).unwrap();
        assert_eq!(c.market_data, vec![MarketDataKind::TwelveData]);
        let c = Config::from_sources(
            None,
            &env(&[
                ("TWELVEDATA_API_KEY", "k"),
                ("GOLDJOBS_MARKET_DATA", "twelvedata, binance"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.market_data,
            vec![MarketDataKind::TwelveData, MarketDataKind::Binance]
        );
    }

    #[test]
    fn demo_is_allowed_only_alone() {
        let c = Config::from_sources(None, &env(&[("GOLDJOBS_MARKET_DATA", " Demo ")])).unwrap();
        assert_eq!(c.market_data, vec![MarketDataKind::Demo]);
        for list in [
            "twelvedata,binance,demo",
            "demo,binance",
            "binance, DEMO",
            "demo,twelvedata",
        ] {
            let line = err_line(&[("TWELVEDATA_API_KEY", "k"), ("GOLDJOBS_MARKET_DATA", list)]);
            assert!(
                line.starts_with(&format!("invalid GOLDJOBS_MARKET_DATA={list:?}: ")),
                "{line}"
            );
            assert!(line.contains("demo is allowed only alone"), "{line}");
            assert!(line.contains("twelvedata and binance"), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
        // The same from the TOML file, named by its key there.
        let e = Config::from_sources(
            Some(("g.toml", r#"market_data = ["binance", "demo"]"#)),
            &env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("invalid market_data (in g.toml)=\"binance,demo\": "),
            "{e}"
        );
        assert!(e.contains("demo is allowed only alone"), "{e}");
        // The environment overrides a mixing file value with an allowed one.
        let c = Config::from_sources(
            Some(("g.toml", r#"market_data = ["binance", "demo"]"#)),
            &env(&[("GOLDJOBS_MARKET_DATA", "binance")]),
        )
        .unwrap();
        assert_eq!(c.market_data, vec![MarketDataKind::Binance]);
    }

    #[test]
    fn every_variable_is_read() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("GOLDJOBS_LISTEN", "0.0.0.0:9000"),
                ("DATABASE_URL", "postgres://u:pw@db.local:5432/gold"),
                ("REDIS_URL", "redis://:pw@127.0.0.1:6379/0"),
                ("GOLDJOBS_MARKET_DATA", "binance"),
                ("TWELVEDATA_BASE_URL", "http://127.0.0.1:1234/"),
                ("TWELVEDATA_CREDITS_PER_MINUTE", "55"),
                ("BINANCE_BASE_URL", "http://127.0.0.1:1235"),
                (
                    "GOLDJOBS_NEWS_FEEDS",
                    "gold|Kitco|https://kitco.example/rss; forex|FX Street|http://fx.example/feed",
                ),
                ("GOLDJOBS_PRICE_INTERVAL", "500ms"),
                ("GOLDJOBS_NEWS_INTERVAL", "1h"),
                ("GOLDJOBS_VERIFY_INTERVAL", "10s"),
                ("GOLDJOBS_QUOTE_TTL", "7s"),
                ("GOLDJOBS_PUSH_INTERVAL", "0s"),
                ("GOLDJOBS_NEWS_CACHE_TTL", "1m"),
                ("GOLDJOBS_VERIFY_MAX_LAG", "2m"),
                ("GOLDJOBS_VERIFY_WAKE", "off"),
                ("GOLDJOBS_TICK_RETENTION", "90days"),
                ("GOLDJOBS_OUTBOX_RETENTION", "off"),
                ("GOLDJOBS_ADMIN_TOKEN", "tok"),
                (
                    "GOLDJOBS_CORS_ORIGINS",
                    "https://a.example, http://localhost:3000",
                ),
                ("FCM_PROJECT_ID", "proj"),
                ("GOOGLE_APPLICATION_CREDENTIALS", "/etc/sa.json"),
                ("FCM_BASE_URL", "http://127.0.0.1:1236"),
                ("GOLDJOBS_WEBHOOK_URL", "https://hooks.example/x"),
                ("GOLDJOBS_WEBHOOK_SECRET", "whsec"),
                ("GOLDJOBS_LOCALE", "en"),
                ("RUST_LOG", "goldjobs=debug,info"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.describe_database(), "postgres db.local/gold");
        assert!(c.redis_url.is_some());
        assert_eq!(c.market_data, vec![MarketDataKind::Binance]);
        assert_eq!(c.twelvedata_base_url, "http://127.0.0.1:1234");
        assert_eq!(c.twelvedata_credits_per_minute, 55);
        assert_eq!(c.binance_base_url, "http://127.0.0.1:1235");
        let feeds = c.news_feeds.clone().unwrap();
        assert_eq!(feeds.len(), 2);
        assert_eq!(feeds[1].category, "forex");
        assert_eq!(feeds[1].source_name, "FX Street");
        assert_eq!(feeds[1].url.as_str(), "http://fx.example/feed");
        assert_eq!(c.price_interval, Cadence::Every(Duration::from_millis(500)));
        assert_eq!(c.news_interval, Cadence::Every(Duration::from_secs(3600)));
        assert_eq!(c.verify_interval, Cadence::Every(Duration::from_secs(10)));
        assert_eq!(c.quote_ttl, Duration::from_secs(7));
        assert_eq!(c.push_interval, Duration::ZERO);
        assert_eq!(c.news_cache_ttl, Duration::from_secs(60));
        assert_eq!(c.verify_max_lag, Duration::from_secs(120));
        assert_eq!(c.verify_wake, None);
        assert_eq!(c.tick_retention, Some(Duration::from_secs(90 * 24 * 3600)));
        assert_eq!(c.outbox_retention, None);
        assert_eq!(c.admin_token.as_ref().unwrap().expose(), "tok");
        assert_eq!(
            c.cors_origins,
            vec!["https://a.example", "http://localhost:3000"]
        );
        assert_eq!(c.fcm.as_ref().unwrap().project_id, "proj");
        assert_eq!(c.fcm.as_ref().unwrap().base_url, "http://127.0.0.1:1236");
        assert_eq!(c.webhook.as_ref().unwrap().url, "https://hooks.example/x");
        assert_eq!(c.locale, Locale::En);
        assert_eq!(c.log_filter, "goldjobs=debug,info");
    }

    #[test]
    fn intervals_take_cron_in_the_configured_zone() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("GOLDJOBS_NEWS_INTERVAL", "cron:0 */15 6-22 * * Mon-Fri"),
                ("GOLDJOBS_VERIFY_INTERVAL", " cron:30 2 * * * "),
                ("GOLDJOBS_TIMEZONE", "Europe/Zurich"),
            ]),
        )
        .unwrap();
        assert_eq!(c.timezone, "Europe/Zurich");
        let Cadence::Calendar(news) = &c.news_interval else {
            panic!("{:?}", c.news_interval)
        };
        assert_eq!(news.expression(), "0 */15 6-22 * * Mon-Fri");
        assert_eq!(news.zone().name(), "Europe/Zurich");
        let Cadence::Calendar(verify) = &c.verify_interval else {
            panic!("{:?}", c.verify_interval)
        };
        assert_eq!(verify.expression(), "30 2 * * *");
        assert_eq!(c.price_interval, Cadence::Every(Duration::from_secs(5)));
        // without GOLDJOBS_TIMEZONE: UTC
        let c = Config::from_sources(None, &env(&[("GOLDJOBS_PRICE_INTERVAL", "cron:* * * * *")]))
            .unwrap();
        assert_eq!(c.timezone, "UTC");
    }

    #[test]
    fn bad_cron_and_bad_zones_name_the_key() {
        let line = err_line(&[("GOLDJOBS_NEWS_INTERVAL", "cron:61 * * * *")]);
        assert!(line.contains("GOLDJOBS_NEWS_INTERVAL"), "{line}");
        assert!(line.contains("cron:EXPR with 5 or 6 fields"), "{line}");
        let line = err_line(&[("GOLDJOBS_PRICE_INTERVAL", "cron:* * *")]);
        assert!(line.contains("3 fields"), "{line}");
        let line = err_line(&[("GOLDJOBS_TIMEZONE", "Mars/Olympus")]);
        assert!(line.contains("GOLDJOBS_TIMEZONE"), "{line}");
        assert!(line.contains("IANA time zone"), "{line}");
    }

    #[test]
    fn invalid_values_name_key_value_and_allowed() {
        let line = err_line(&[("GOLDJOBS_PRICE_INTERVAL", "fast")]);
        assert!(line.contains("GOLDJOBS_PRICE_INTERVAL"), "{line}");
        assert!(line.contains("\"fast\""), "{line}");
        assert!(line.contains("duration like 500ms"), "{line}");
        assert!(!line.contains('\n'));

        assert!(err_line(&[("GOLDJOBS_PRICE_INTERVAL", "0s")]).contains("from 100ms to 30days"));
        // Bounded: a huge duration is refused here instead of overflowing the scheduler.
        for bad in ["99ms", "31days", "100000000000y"] {
            let line = err_line(&[("GOLDJOBS_NEWS_INTERVAL", bad)]);
            assert!(line.contains("from 100ms to 30days"), "{bad}: {line}");
        }
        assert!(err_line(&[("GOLDJOBS_TICK_RETENTION", "1000000000y")]).contains("3650days"));
        for bad in ["2m", "soon", "-1s"] {
            let line = err_line(&[("GOLDJOBS_PUSH_INTERVAL", bad)]);
            assert!(line.contains("from 0s to 1m"), "{bad}: {line}");
        }
        // The library's feed-list checks, at config time.
        assert!(
            err_line(&[("GOLDJOBS_NEWS_FEEDS", "go ld|Kitco|https://a.example/")])
                .contains("category \"go ld\"")
        );
        assert!(err_line(&[(
            "GOLDJOBS_NEWS_FEEDS",
            "gold|A|https://a.example/rss;forex|B|https://a.example/rss"
        )])
        .contains("listed twice"));
        assert!(err_line(&[("GOLDJOBS_LISTEN", "nowhere")]).contains("GOLDJOBS_LISTEN"));
        assert!(err_line(&[("DATABASE_URL", "mysql://x")]).contains("sqlite: or postgres://"));
        assert!(err_line(&[("REDIS_URL", "http://x")]).contains("redis://"));
        assert!(err_line(&[("GOLDJOBS_MARKET_DATA", "bloomberg")])
            .contains("twelvedata, binance, demo"));
        assert!(err_line(&[("GOLDJOBS_MARKET_DATA", "demo,demo")]).contains("at most once"));
        assert!(err_line(&[("GOLDJOBS_MARKET_DATA", "twelvedata")]).contains("TWELVEDATA_API_KEY"));
        assert!(err_line(&[("TWELVEDATA_CREDITS_PER_MINUTE", "-1")]).contains("whole number"));
        assert!(err_line(&[("TWELVEDATA_BASE_URL", "ftp://x")]).contains("http://"));
        assert!(err_line(&[("GOLDJOBS_NEWS_FEEDS", "gold|Kitco")]).contains("category|source name"));
        assert!(err_line(&[("GOLDJOBS_LOCALE", "fr")]).contains("zh-CN or en"));
        assert!(err_line(&[("GOLDJOBS_CORS_ORIGINS", "not an origin")]).contains("origins"));
        assert!(err_line(&[("FCM_PROJECT_ID", "p")]).contains("GOOGLE_APPLICATION_CREDENTIALS"));
        assert!(err_line(&[("GOLDJOBS_WEBHOOK_URL", "https://x.example")]).contains("SECRET"));
        assert!(err_line(&[("RUST_LOG", "[[[")]).contains("RUST_LOG"));
    }

    #[test]
    fn secrets_never_show() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("TWELVEDATA_API_KEY", "supersecretkey"),
                ("GOLDJOBS_ADMIN_TOKEN", "supersecrettoken"),
                ("GOLDJOBS_WEBHOOK_URL", "https://hooks.example/x"),
                ("GOLDJOBS_WEBHOOK_SECRET", "supersecrethmac"),
                ("DATABASE_URL", "postgres://user:supersecretpw@db/gold"),
                ("REDIS_URL", "redis://:supersecretredis@127.0.0.1:6379"),
            ]),
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        assert!(dbg.contains("postgres://user:***@db/gold"), "{dbg}");
        assert!(!c.describe_database().contains("supersecret"));
        // Nor in error lines.
        let line = err_line(&[("DATABASE_URL", "mysql://user:supersecretpw@db/gold")]);
        assert!(!line.contains("supersecret"), "{line}");
    }

    #[test]
    fn file_then_environment() {
        let toml = r#"
            listen = "127.0.0.1:9999"
            price_interval = "2s"
            market_data = ["binance"]
            twelvedata_credits_per_minute = 20
            news_feeds = [{ category = "gold", source = "Kitco", url = "https://k.example/rss" }]
        "#;
        let c = Config::from_sources(
            Some(("goldjobs.toml", toml)),
            &env(&[("GOLDJOBS_PRICE_INTERVAL", "3s")]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.price_interval, Cadence::Every(Duration::from_secs(3)));
        assert_eq!(c.market_data, vec![MarketDataKind::Binance]);
        assert_eq!(c.twelvedata_credits_per_minute, 20);
        assert_eq!(c.news_feeds.unwrap()[0].source_name, "Kitco");

        let e = Config::from_sources(Some(("g.toml", "verify_interval = \"soon\"")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("verify_interval (in g.toml)"), "{e}");
        let e = Config::from_sources(Some(("g.toml", "lisen = \"x\"")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key \"lisen\""), "{e}");
        let e = Config::from_sources(Some(("g.toml", "= broken")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config file g.toml"), "{e}");
        // TOML values are trimmed like environment values.
        let c = Config::from_sources(
            Some(("g.toml", "price_interval = \" 2s \"\nlocale = \"en \"")),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.price_interval, Cadence::Every(Duration::from_secs(2)));
    }

    #[test]
    fn load_reads_goldjobs_config() {
        let dir = std::env::temp_dir().join(format!("goldjobs-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "news_interval = \"30m\"\n").unwrap();
        let c = Config::load(None, &env(&[("GOLDJOBS_CONFIG", path.to_str().unwrap())])).unwrap();
        assert_eq!(c.news_interval, Cadence::Every(Duration::from_secs(1800)));
        let e = Config::load(Some(&dir.join("missing.toml")), &env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::File { .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The user guide's configuration reference, which the test below holds to the code.
    const GUIDE: &str = include_str!("../../docs/src/configuration.md");

    /// One row of the guide's settings table, cells with `\|` unescaped.
    #[derive(Debug)]
    struct GuideRow {
        env: String,
        key: String,
        default: String,
        refused: String,
    }

    /// The contents of the Markdown code spans of `text`, in order (a span opened by N
    /// backticks ends at the next run of exactly N; one space is stripped at each end when both
    /// are there, as CommonMark does).
    fn code_spans(text: &str) -> Vec<String> {
        let b = text.as_bytes();
        let run = |at: usize| b[at..].iter().take_while(|&&c| c == b'`').count();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'`' {
                i += 1;
                continue;
            }
            let n = run(i);
            let start = i + n;
            let mut j = start;
            let mut end = None;
            while j < b.len() {
                if b[j] == b'`' {
                    let m = run(j);
                    if m == n {
                        end = Some(j);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            let Some(end) = end else { break };
            let inner = &text[start..end];
            let inner = if inner.len() >= 2 && inner.starts_with(' ') && inner.ends_with(' ') {
                &inner[1..inner.len() - 1]
            } else {
                inner
            };
            spans.push(inner.to_owned());
            i = end + n;
        }
        spans
    }

    /// The cells of a table row, split at `|` that are not escaped, with `\|` unescaped.
    fn cells(line: &str) -> Vec<String> {
        let inner = line.trim().trim_start_matches('|');
        let inner = inner.strip_suffix('|').unwrap_or(inner);
        let mut out = vec![String::new()];
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    chars.next();
                    out.last_mut().unwrap().push('|');
                }
                '|' => out.push(String::new()),
                c => out.last_mut().unwrap().push(c),
            }
        }
        out.into_iter().map(|c| c.trim().to_owned()).collect()
    }

    /// The settings table: the table right after its marker comment.
    fn guide_rows() -> Vec<GuideRow> {
        let marker = "<!-- settings table:";
        let start = GUIDE
            .find(marker)
            .expect("docs/src/configuration.md has the settings table's marker");
        let mut rows = Vec::new();
        for line in GUIDE[start..].lines().skip(1) {
            if !line.trim_start().starts_with('|') {
                break;
            }
            let c = cells(line);
            if c[0] == "Variable" || c[0].starts_with("---") {
                continue;
            }
            assert_eq!(c.len(), 5, "a settings row has five cells: {line}");
            let one = |cell: &str| {
                let spans = code_spans(cell);
                assert_eq!(spans.len(), 1, "one name in backticks: {line}");
                spans[0].clone()
            };
            rows.push(GuideRow {
                env: one(&c[0]),
                key: one(&c[1]),
                default: c[2].clone(),
                refused: c[4].clone(),
            });
        }
        rows
    }

    /// Settings that make `env` matter (without them it is not read).
    fn context(env: &str) -> Vec<(&'static str, &'static str)> {
        match env {
            "FCM_BASE_URL" => vec![
                ("FCM_PROJECT_ID", "p"),
                ("GOOGLE_APPLICATION_CREDENTIALS", "/etc/sa.json"),
            ],
            _ => Vec::new(),
        }
    }

    /// Invalid configurations for each setting: every message the guide says `env` is refused
    /// with must show up in the error line of one of them.
    fn refusals(env: &str) -> Vec<Vec<(&'static str, &'static str)>> {
        let fcm = |url| {
            vec![
                ("FCM_PROJECT_ID", "p"),
                ("GOOGLE_APPLICATION_CREDENTIALS", "/etc/sa.json"),
                ("FCM_BASE_URL", url),
            ]
        };
        match env {
            "GOLDJOBS_LISTEN" => vec![vec![(env_name(env), "nowhere")]],
            "DATABASE_URL" => vec![vec![("DATABASE_URL", "mysql://x")]],
            "REDIS_URL" => vec![vec![("REDIS_URL", "http://x")]],
            "GOLDJOBS_MARKET_DATA" => vec![
                vec![("GOLDJOBS_MARKET_DATA", "bloomberg")],
                vec![
                    ("TWELVEDATA_API_KEY", "k"),
                    ("GOLDJOBS_MARKET_DATA", "binance,demo"),
                ],
                vec![("GOLDJOBS_MARKET_DATA", "twelvedata")],
            ],
            "TWELVEDATA_BASE_URL" => vec![vec![("TWELVEDATA_BASE_URL", "ftp://x")]],
            "TWELVEDATA_CREDITS_PER_MINUTE" => vec![
                vec![("TWELVEDATA_CREDITS_PER_MINUTE", "0")],
                vec![("TWELVEDATA_CREDITS_PER_MINUTE", "100001")],
            ],
            "BINANCE_BASE_URL" => vec![vec![("BINANCE_BASE_URL", "ftp://x")]],
            "GOLDJOBS_MARKET_STREAM" => vec![
                vec![("GOLDJOBS_MARKET_STREAM", "demo")],
                vec![("GOLDJOBS_MARKET_STREAM", "binance")],
            ],
            "TWELVEDATA_WS_URL" => vec![vec![(
                "TWELVEDATA_WS_URL",
                "wss://ws.example/v1/quotes/price?apikey=k",
            )]],
            "BINANCE_WS_URL" => vec![vec![("BINANCE_WS_URL", "https://x.example")]],
            "GOLDJOBS_NEWS_FEEDS" => vec![
                vec![("GOLDJOBS_NEWS_FEEDS", "gold|Kitco")],
                vec![("GOLDJOBS_NEWS_FEEDS", "go ld|Kitco|https://a.example/")],
                vec![(
                    "GOLDJOBS_NEWS_FEEDS",
                    "gold|A|https://a.example/rss;forex|B|https://a.example/rss",
                )],
            ],
            "GOLDJOBS_TIMEZONE" => vec![vec![("GOLDJOBS_TIMEZONE", "Mars/Olympus")]],
            "GOLDJOBS_PRICE_INTERVAL" => vec![
                vec![("GOLDJOBS_PRICE_INTERVAL", "99ms")],
                vec![("GOLDJOBS_PRICE_INTERVAL", "cron:61 * * * *")],
            ],
            "GOLDJOBS_NEWS_INTERVAL"
            | "GOLDJOBS_VERIFY_INTERVAL"
            | "GOLDJOBS_QUOTE_TTL"
            | "GOLDJOBS_NEWS_CACHE_TTL"
            | "GOLDJOBS_VERIFY_MAX_LAG" => {
                vec![
                    vec![(env_name(env), "31days")],
                    vec![(env_name(env), "99ms")],
                ]
            }
            "GOLDJOBS_PUSH_INTERVAL" => vec![vec![("GOLDJOBS_PUSH_INTERVAL", "61s")]],
            "GOLDJOBS_VERIFY_WAKE" => vec![
                vec![("GOLDJOBS_VERIFY_WAKE", "61s")],
                vec![("GOLDJOBS_VERIFY_WAKE", "never")],
            ],
            "GOLDJOBS_TICK_RETENTION" | "GOLDJOBS_OUTBOX_RETENTION" => {
                vec![
                    vec![(env_name(env), "59m")],
                    vec![(env_name(env), "3651days")],
                ]
            }
            "GOLDJOBS_CORS_ORIGINS" => vec![vec![("GOLDJOBS_CORS_ORIGINS", "not an origin")]],
            "FCM_PROJECT_ID" => vec![vec![("FCM_PROJECT_ID", "p")]],
            "FCM_BASE_URL" => vec![fcm("ftp://x")],
            "GOLDJOBS_WEBHOOK_URL" => vec![
                vec![("GOLDJOBS_WEBHOOK_URL", "https://hooks.example/x")],
                vec![
                    ("GOLDJOBS_WEBHOOK_URL", "ftp://hooks.example/x"),
                    ("GOLDJOBS_WEBHOOK_SECRET", "s"),
                ],
            ],
            "GOLDJOBS_WEBHOOK_SECRET" => vec![vec![("GOLDJOBS_WEBHOOK_SECRET", "s")]],
            "GOLDJOBS_LOCALE" => vec![vec![("GOLDJOBS_LOCALE", "fr")]],
            "RUST_LOG" => vec![vec![("RUST_LOG", "[[[")]],
            _ => Vec::new(),
        }
    }

    /// `env` as the `&'static str` of [`SETTINGS`].
    fn env_name(env: &str) -> &'static str {
        SETTINGS
            .iter()
            .find(|s| s.env == env)
            .map(|s| s.env)
            .unwrap_or_else(|| panic!("{env} is not a setting"))
    }

    /// Whether the default configuration leaves `env` unset, for the rows whose default the
    /// guide gives as "unset".
    fn default_is_unset(c: &Config, env: &str) -> bool {
        match env {
            "REDIS_URL" => c.redis_url.is_none(),
            "TWELVEDATA_API_KEY" => c.twelvedata_api_key.is_none(),
            "GOLDJOBS_MARKET_STREAM" => c.market_stream.is_none(),
            "GOLDJOBS_ADMIN_TOKEN" => c.admin_token.is_none(),
            "GOLDJOBS_CORS_ORIGINS" => c.cors_origins.is_empty(),
            "FCM_PROJECT_ID" | "GOOGLE_APPLICATION_CREDENTIALS" => c.fcm.is_none(),
            "GOLDJOBS_WEBHOOK_URL" | "GOLDJOBS_WEBHOOK_SECRET" => c.webhook.is_none(),
            other => panic!("the guide says {other} is unset by default, but it has a default"),
        }
    }

    #[test]
    fn the_guide_lists_every_setting() {
        let rows = guide_rows();
        let defaults = Config::default();

        // Every setting once, with its TOML key; nothing the code does not know.
        let mut seen = std::collections::HashSet::new();
        for row in &rows {
            assert!(seen.insert(row.env.clone()), "{} is listed twice", row.env);
            let setting = SETTINGS
                .iter()
                .find(|s| s.env == row.env)
                .unwrap_or_else(|| {
                    panic!("the guide lists {}, which the code does not read", row.env)
                });
            assert_eq!(row.key, setting.key, "the TOML key of {}", row.env);
        }
        for s in SETTINGS {
            assert!(seen.contains(s.env), "the guide's table lacks {}", s.env);
        }
        assert_eq!(rows.len(), SETTINGS.len());

        for row in &rows {
            let env = row.env.as_str();

            // The default: setting the documented value changes nothing.
            if row.default.starts_with("unset") {
                assert!(default_is_unset(&defaults, env), "{env} has a default");
            } else if row.default.starts_with("the built-in list") {
                assert_eq!(env, "GOLDJOBS_NEWS_FEEDS");
                assert_eq!(defaults.news_feeds, None);
            } else {
                let spans = code_spans(&row.default);
                let documented = spans
                    .first()
                    .unwrap_or_else(|| panic!("{env}: no default in backticks: {row:?}"));
                let base = context(env);
                let mut with = base.clone();
                with.push((env_name(env), documented.as_str()));
                let expected = Config::from_sources(None, &super::tests::env(&base)).unwrap();
                let got = Config::from_sources(None, &super::tests::env(&with))
                    .unwrap_or_else(|e| panic!("{env}={documented:?} (its default): {e}"));
                assert_eq!(got, expected, "{env}: the guide's default {documented:?}");
                if base.is_empty() {
                    assert_eq!(got, defaults, "{env}");
                }
            }

            // What an invalid value gets: each message of the last column, in the error line
            // `invalid {env}=…: …` of one of the invalid configurations.
            let messages: Vec<String> = code_spans(&row.refused)
                .into_iter()
                .filter(|m| m.contains(' '))
                .collect();
            let cases = refusals(env);
            if row.refused == "—" {
                assert!(
                    cases.is_empty(),
                    "{env}: the guide says it is never refused"
                );
                continue;
            }
            assert!(
                !messages.is_empty(),
                "{env}: no message in {:?}",
                row.refused
            );
            assert!(
                !cases.is_empty(),
                "{env}: the test has no invalid value for it"
            );
            let lines: Vec<String> = cases
                .iter()
                .map(|pairs| {
                    let line = err_line(pairs);
                    assert!(line.starts_with("invalid "), "{env}: {line}");
                    line
                })
                .collect();
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("invalid {env}="))),
                "{env}: {lines:?}"
            );
            for m in &messages {
                assert!(
                    lines.iter().any(|l| l.contains(m.as_str())),
                    "{env}: the guide says it is refused with {m:?}, but the errors are {lines:?}"
                );
            }
        }

        // GOLDJOBS_MARKET_DATA's default depends on the key, as the guide says.
        let row = rows
            .iter()
            .find(|r| r.env == "GOLDJOBS_MARKET_DATA")
            .unwrap();
        assert_eq!(
            code_spans(&row.default),
            ["demo", "twelvedata", "TWELVEDATA_API_KEY"]
        );
        assert_eq!(defaults.market_data, vec![MarketDataKind::Demo]);
        let keyed = Config::from_sources(None, &env(&[("TWELVEDATA_API_KEY", "k")])).unwrap();
        assert_eq!(keyed.market_data, vec![MarketDataKind::TwelveData]);

        // Every variable named anywhere in the chapter is one the code reads (or a pattern of
        // them, like `GOLDJOBS_*_INTERVAL`); `GOLDJOBS_CONFIG` names the file.
        for span in code_spans(GUIDE) {
            let looks_like_var = span.len() > 3
                && span.contains('_')
                && span
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '*');
            if !looks_like_var || span == "GOLDJOBS_CONFIG" {
                continue;
            }
            let known = match span.split_once('*') {
                None => SETTINGS.iter().any(|s| s.env == span),
                Some((head, tail)) => SETTINGS
                    .iter()
                    .any(|s| s.env.starts_with(head) && s.env.ends_with(tail)),
            };
            assert!(
                known,
                "the guide names {span}, which the code does not read"
            );
        }
    }

    #[test]
    fn the_guide_parser_reads_code_spans_and_cells() {
        assert_eq!(code_spans("a `b` c ``d `e` f`` `g`"), ["b", "d `e` f", "g"]);
        assert_eq!(
            cells(r"| `A` | `a\|b` | x |"),
            ["`A`", "`a|b`", "x"].map(String::from)
        );
    }
}
