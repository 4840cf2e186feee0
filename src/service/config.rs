//! [`ServiceConfig`]: everything the standard service is built from, as typed values.

use goldjobs_core::jobs::{
    NewsJobConfig, OutboxConfig, PriceFetcherConfig, RetentionConfig, VerifierConfig,
    VerifyWakeConfig,
};
use goldjobs_core::runtime::Cadence;
use goldjobs_core::{MarketData, MarketStream};
#[cfg(feature = "fcm")]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One market data provider of the chain [`ServiceConfig::market_data`] lists: the first is the
/// primary, the others are tried in order when it fails (a `FallbackMarketData`).
#[derive(Clone)]
#[non_exhaustive]
pub enum MarketDataSource {
    /// The seeded random walk (no network; feature `demo`). An instance on demo data alone
    /// verifies predictions by demo prices; a chain may not mix demo with real providers.
    #[cfg(feature = "demo")]
    Demo {
        /// Seed of the random walk.
        seed: u64,
    },
    /// Twelve Data (feature `twelvedata`).
    #[cfg(feature = "twelvedata")]
    TwelveData(goldjobs_adapters::market::TwelveDataConfig),
    /// Binance public spot API (feature `binance`).
    #[cfg(feature = "binance")]
    Binance(goldjobs_adapters::market::BinanceConfig),
    /// A provider of your own.
    Custom(Arc<dyn MarketData>),
}

impl MarketDataSource {
    /// A provider of your own, e.g. a [`MarketData`] over your broker's API.
    pub fn custom(provider: impl MarketData + 'static) -> Self {
        MarketDataSource::Custom(Arc::new(provider))
    }

    /// The name used in logs: `demo`, `twelvedata`, `binance` or the custom provider's name.
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "demo")]
            MarketDataSource::Demo { .. } => "demo",
            #[cfg(feature = "twelvedata")]
            MarketDataSource::TwelveData(_) => "twelvedata",
            #[cfg(feature = "binance")]
            MarketDataSource::Binance(_) => "binance",
            MarketDataSource::Custom(p) => p.name(),
        }
    }
}

impl std::fmt::Debug for MarketDataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Provider configs hold API keys: name the provider only.
        write!(f, "MarketDataSource({})", self.name())
    }
}

/// A provider's live price stream ([`ServiceConfig::market_stream`]), kept open on the price
/// leader beside the polling chain: streamed symbols are not polled, the rest are, and a stream
/// that is down hands its symbols back to polling.
#[derive(Clone)]
#[non_exhaustive]
pub enum MarketStreamSource {
    /// Twelve Data's WebSocket (feature `twelvedata-stream`).
    #[cfg(feature = "twelvedata-stream")]
    TwelveData(goldjobs_adapters::market::TwelveDataStreamConfig),
    /// Binance's combined market streams (feature `binance-stream`).
    #[cfg(feature = "binance-stream")]
    Binance(goldjobs_adapters::market::BinanceStreamConfig),
    /// A stream of your own.
    Custom(Arc<dyn MarketStream>),
}

impl MarketStreamSource {
    /// A stream of your own.
    pub fn custom(stream: impl MarketStream + 'static) -> Self {
        MarketStreamSource::Custom(Arc::new(stream))
    }

    /// The name used in logs and as the ticks' `source`.
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "twelvedata-stream")]
            MarketStreamSource::TwelveData(_) => "twelvedata",
            #[cfg(feature = "binance-stream")]
            MarketStreamSource::Binance(_) => "binance",
            MarketStreamSource::Custom(s) => s.name(),
        }
    }
}

impl std::fmt::Debug for MarketStreamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MarketStreamSource({})", self.name())
    }
}

/// FCM push notifications (feature `fcm`): the HTTP v1 settings and the service-account file.
#[cfg(feature = "fcm")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FcmSettings {
    /// Project id and endpoint.
    pub config: goldjobs_adapters::notify::fcm::FcmConfig,
    /// The service-account JSON file (`GOOGLE_APPLICATION_CREDENTIALS`); read when the service
    /// is built, so a bad file stops the build before anything is connected.
    pub credentials_file: PathBuf,
}

#[cfg(feature = "fcm")]
impl FcmSettings {
    /// FCM for `project_id` with the credentials in `credentials_file`.
    pub fn new(project_id: impl Into<String>, credentials_file: impl Into<PathBuf>) -> Self {
        FcmSettings {
            config: goldjobs_adapters::notify::fcm::FcmConfig::new(project_id),
            credentials_file: credentials_file.into(),
        }
    }

    /// Send to another endpoint than `https://fcm.googleapis.com` (tests, proxies).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.config.base_url = url.into();
        self
    }
}

/// What the standard service is built from. Every field has a default (in-memory storage,
/// in-process events, demo market data when the `demo` feature is on, the built-in feeds when
/// `rss` is on, log notifications, the guide's default schedules); set what differs with the
/// `with_*` methods.
///
/// ```
/// use goldjobs::runtime::Cadence;
/// use goldjobs::service::ServiceConfig;
/// use std::time::Duration;
///
/// let config = ServiceConfig::default()
///     .with_database_url("sqlite::memory:")
///     .with_price_interval(Duration::from_secs(1))
///     .with_news_interval(Cadence::parse("cron:0 */15 6-22 * * Mon-Fri", "Europe/Zurich")?);
/// assert_eq!(config.price.cadence, Cadence::Every(Duration::from_secs(1)));
/// # Ok::<(), goldjobs::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// The database (`postgres://…` with feature `postgres`, `sqlite:…` with `sqlite`);
    /// `None` keeps everything in memory (lost on exit).
    pub database_url: Option<String>,
    /// Apply pending migrations when the service is built (default `true`).
    pub migrate: bool,
    /// Redis for the quote and news caches and the cross-instance event bus (feature `redis`);
    /// `None` keeps them in this process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and of the events channel (default empty); lets several
    /// deployments or tests share one Redis.
    pub redis_key_prefix: String,
    /// The market data chain, primary first. Default: the demo random walk (seed 42) with
    /// feature `demo`, otherwise empty (then [`ServiceBuilder::build`](super::ServiceBuilder::build)
    /// asks for one).
    pub market_data: Vec<MarketDataSource>,
    /// A live price stream beside the chain (default none: polling only).
    /// [`ServiceBuilder::market_stream`](super::ServiceBuilder::market_stream) overrides it.
    pub market_stream: Option<MarketStreamSource>,
    /// The news feeds (feature `rss`); `None` = the built-in list.
    #[cfg(feature = "rss")]
    pub feeds: Option<Vec<goldjobs_adapters::news::FeedConfig>>,
    /// FCM push notifications (feature `fcm`).
    #[cfg(feature = "fcm")]
    pub fcm: Option<FcmSettings>,
    /// Signed webhook notifications (feature `webhook`).
    #[cfg(feature = "webhook")]
    pub webhook: Option<goldjobs_adapters::notify::webhook::WebhookConfig>,
    /// Also log every notification (default `true`).
    pub log_notifications: bool,
    /// The price job.
    pub price: PriceFetcherConfig,
    /// The news job.
    pub news: NewsJobConfig,
    /// The verifier job.
    pub verifier: VerifierConfig,
    /// The verifier's [`VerifyWaker`](goldjobs_core::jobs::VerifyWaker), which wakes it at the
    /// deadlines instead of leaving predictions to its periodic sweep (default on, with
    /// [`VerifyWakeConfig::default`]); `None` = the sweep alone.
    pub verify_wake: Option<VerifyWakeConfig>,
    /// The outbox dispatcher (broadcasts and push notifications of verdicts).
    pub outbox: OutboxConfig,
    /// The retention job.
    pub retention: RetentionConfig,
    /// How long a news list read through [`Service::news`](super::Service::news) is cached
    /// (default 5 min).
    pub news_cache_ttl: Duration,
    /// This instance's name in leases and on the event bus; default
    /// `{HOSTNAME or goldjobs}-{pid}-{random}`.
    pub instance_id: Option<String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            database_url: None,
            migrate: true,
            redis_url: None,
            redis_key_prefix: String::new(),
            #[cfg(feature = "demo")]
            market_data: vec![MarketDataSource::Demo { seed: 42 }],
            #[cfg(not(feature = "demo"))]
            market_data: Vec::new(),
            market_stream: None,
            #[cfg(feature = "rss")]
            feeds: None,
            #[cfg(feature = "fcm")]
            fcm: None,
            #[cfg(feature = "webhook")]
            webhook: None,
            log_notifications: true,
            price: PriceFetcherConfig::default(),
            news: NewsJobConfig::default(),
            verifier: VerifierConfig::default(),
            verify_wake: Some(VerifyWakeConfig::default()),
            outbox: OutboxConfig::default(),
            retention: RetentionConfig::default(),
            news_cache_ttl: Duration::from_secs(300),
            instance_id: None,
        }
    }
}

impl ServiceConfig {
    /// Keep this provider stream open beside the polling chain.
    pub fn with_market_stream(mut self, stream: MarketStreamSource) -> Self {
        self.market_stream = Some(stream);
        self
    }

    /// Store everything in the database at `url`.
    pub fn with_database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Whether to apply pending migrations at build time.
    pub fn with_migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Cache quotes and news lists in Redis at `url` and relay events between instances.
    pub fn with_redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Prefix every Redis key and the events channel with `prefix`.
    pub fn with_redis_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_key_prefix = prefix.into();
        self
    }

    /// The market data chain, primary first.
    pub fn with_market_data(mut self, chain: impl IntoIterator<Item = MarketDataSource>) -> Self {
        self.market_data = chain.into_iter().collect();
        self
    }

    /// The news feeds.
    #[cfg(feature = "rss")]
    pub fn with_feeds(mut self, feeds: Vec<goldjobs_adapters::news::FeedConfig>) -> Self {
        self.feeds = Some(feeds);
        self
    }

    /// Push notifications through FCM.
    #[cfg(feature = "fcm")]
    pub fn with_fcm(mut self, fcm: FcmSettings) -> Self {
        self.fcm = Some(fcm);
        self
    }

    /// Notifications to a signed webhook.
    #[cfg(feature = "webhook")]
    pub fn with_webhook(mut self, hook: goldjobs_adapters::notify::webhook::WebhookConfig) -> Self {
        self.webhook = Some(hook);
        self
    }

    /// Whether every notification is also logged.
    pub fn with_log_notifications(mut self, log: bool) -> Self {
        self.log_notifications = log;
        self
    }

    /// How often prices are fetched (and pushed): a period, or a calendar
    /// (`Cadence::parse("cron:*/5 * * * * *", "UTC")`).
    pub fn with_price_interval(mut self, every: impl Into<Cadence>) -> Self {
        self.price = self.price.with_cadence(every);
        self
    }

    /// How often the feeds are read.
    pub fn with_news_interval(mut self, every: impl Into<Cadence>) -> Self {
        self.news = self.news.with_cadence(every);
        self
    }

    /// How often due predictions are verified.
    pub fn with_verify_interval(mut self, every: impl Into<Cadence>) -> Self {
        self.verifier = self.verifier.with_cadence(every);
        self
    }

    /// The price job's settings.
    pub fn with_price(mut self, price: PriceFetcherConfig) -> Self {
        self.price = price;
        self
    }

    /// The news job's settings.
    pub fn with_news(mut self, news: NewsJobConfig) -> Self {
        self.news = news;
        self
    }

    /// The verifier's settings.
    pub fn with_verifier(mut self, verifier: VerifierConfig) -> Self {
        self.verifier = verifier;
        self
    }

    /// The verifier's waker: `Some(config)` (the default is on), or `None` to verify on the
    /// periodic sweep alone.
    pub fn with_verify_wake(mut self, wake: impl Into<Option<VerifyWakeConfig>>) -> Self {
        self.verify_wake = wake.into();
        self
    }

    /// The outbox dispatcher's settings.
    pub fn with_outbox(mut self, outbox: OutboxConfig) -> Self {
        self.outbox = outbox;
        self
    }

    /// The retention job's settings.
    pub fn with_retention(mut self, retention: RetentionConfig) -> Self {
        self.retention = retention;
        self
    }

    /// How long news lists are cached.
    pub fn with_news_cache_ttl(mut self, ttl: Duration) -> Self {
        self.news_cache_ttl = ttl;
        self
    }

    /// This instance's name in leases and on the event bus.
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }
}
