//! The standard service: one [`ServiceBuilder`] opens every port from a [`ServiceConfig`],
//! registers the five standard jobs and hands back a [`Service`]: the [`JobManager`], the event
//! stream, the read services and a graceful [`Service::shutdown`].
//!
//! The reference server is this builder plus HTTP and WebSocket; an embedder gets the same
//! service in a few lines:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use goldjobs::service::{Service, ServiceConfig};
//! use std::time::Duration;
//!
//! // In memory, demo prices (features `demo`, the default): nothing to set up.
//! let service = Service::builder(ServiceConfig::default()).start().await?;
//! let mut events = service.subscribe();
//! service.jobs().run_now(goldjobs::jobs::PriceFetcherJob::NAME)?;
//! let first = events.recv().await;
//! assert!(first.is_ok());
//! service.shutdown(Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```
//!
//! What is built, in order:
//!
//! 1. market data (the chain of [`ServiceConfig::market_data`], or yours), news source, and the
//!    notifiers that need no store — so a bad credentials file or URL fails before anything is
//!    connected ([`ServiceError::is_invalid_config`]);
//! 2. the store: [`goldjobs_adapters::sql::open`] for `database_url` (then migrations), or the
//!    in-memory backend; both give the same [`Ports`];
//! 3. caches and events: Redis when `redis_url` is set (the jobs publish on the Redis channel and
//!    every instance's subscriber relays to its local sink), otherwise in-process;
//! 4. the jobs `PriceFetcherJob`, `NewsFetcherJob` (when there is a news source),
//!    `PredictionVerifierJob`, `OutboxDispatcherJob` and `RetentionJob` (each type's `NAME`);
//!    beside them the loops [`Service::start`] runs: the [`PriceStreamer`] of a market stream
//!    (on the price leader) and the verifier's [`VerifyWaker`] (on the verifier's leader, unless
//!    [`ServiceConfig::verify_wake`] is `None`).

mod config;

#[cfg(feature = "fcm")]
pub use config::FcmSettings;
pub use config::{MarketDataSource, MarketStreamSource, ServiceConfig};

use goldjobs_core::jobs::{
    NewsFetcherJob, OutboxDispatcherJob, PredictionVerifierJob, PriceFetcherJob, PriceStreamer,
    RetentionJob, SeqFloor, VerifyWaker,
};
use goldjobs_core::memory::{
    FanoutNotifier, InMemoryBackend, InMemoryNewsCache, InMemoryQuoteCache, LocalBroadcaster,
    LogNotifier,
};
use goldjobs_core::news::{FeedDirectory, NewsReader};
use goldjobs_core::runtime::{JobManager, JobObserver, StopReport};
use goldjobs_core::verify::{ManualResolver, PredictionReader};
use goldjobs_core::{
    Broadcast, Broadcaster, Error, MarketData, MarketStream, NewsCache, NewsSource, Notifier,
    Ports, QuoteCache, Result, SystemClock,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[source] Error),
    /// A part could not be built from the config.
    #[error("{what}: {source}")]
    Setup {
        /// What was being built: `market data`, `news feeds`, `notifier`, `redis`, `jobs`.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Error,
    },
}

impl ServiceError {
    /// Whether a value of the configuration is unusable (a credentials file that does not
    /// parse, a URL of the wrong kind, a feature that is not compiled in) rather than a backend
    /// being unreachable; the server exits 2 for these, like for a parse error.
    pub fn is_invalid_config(&self) -> bool {
        matches!(
            self,
            ServiceError::Setup {
                source: Error::InvalidInput(_),
                ..
            } | ServiceError::Database(Error::InvalidInput(_))
        )
    }
}

fn setup(what: &'static str) -> impl Fn(Error) -> ServiceError {
    move |source| ServiceError::Setup { what, source }
}

type Layer<T> = Box<dyn FnOnce(Arc<T>) -> Arc<T> + Send>;

/// Builds a [`Service`]; see the [module docs](self).
#[must_use = "a builder does nothing until build() or start()"]
pub struct ServiceBuilder {
    config: ServiceConfig,
    ports: Option<Ports>,
    sink: Option<Arc<dyn Broadcaster>>,
    seq_floor: Option<SeqFloor>,
    news_source: Option<Arc<dyn NewsSource>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    observer: Option<Arc<dyn JobObserver>>,
    market_layer: Option<Layer<dyn MarketData>>,
    quote_cache_layer: Option<Layer<dyn QuoteCache>>,
    news_cache_layer: Option<Layer<dyn NewsCache>>,
    news_source_layer: Option<Layer<dyn NewsSource>>,
    market_stream: Option<Arc<dyn MarketStream>>,
}

impl std::fmt::Debug for ServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServiceBuilder {
    /// A builder for `config`.
    pub fn new(config: ServiceConfig) -> Self {
        ServiceBuilder {
            config,
            ports: None,
            sink: None,
            seq_floor: None,
            news_source: None,
            notifiers: Vec::new(),
            observer: None,
            market_layer: None,
            quote_cache_layer: None,
            news_cache_layer: None,
            news_source_layer: None,
            market_stream: None,
        }
    }

    /// Also keep `stream` open on the price leader ([`PriceStreamer`]): its prices become ticks
    /// and `price_update`s as they come, and the price job polls only what it does not cover.
    pub fn market_stream(mut self, stream: Arc<dyn MarketStream>) -> Self {
        self.market_stream = Some(stream);
        self
    }

    /// Use these storage ports instead of opening [`ServiceConfig::database_url`] (a store of
    /// your own, or an [`InMemoryBackend`] a test keeps a handle on).
    pub fn ports(mut self, ports: Ports) -> Self {
        self.ports = Some(ports);
        self
    }

    /// Deliver this instance's events (quotes, verdicts) to `sink` as well as to
    /// [`Service::subscribe`]rs; the reference server passes its WebSocket hub. With Redis the
    /// sink receives what the bus relays, from every instance.
    pub fn deliver_to(mut self, sink: Arc<dyn Broadcaster>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// After a failover the new leader's price job continues each symbol's `seq` above what
    /// `floor` returns (the last `seq` the local sink relayed), so `seq` only grows.
    pub fn seq_floor(mut self, floor: SeqFloor) -> Self {
        self.seq_floor = Some(floor);
        self
    }

    /// Read news from `source` instead of the configured feeds.
    pub fn news_source(mut self, source: Arc<dyn NewsSource>) -> Self {
        self.news_source = Some(source);
        self
    }

    /// Also deliver every notification to `notifier` (after the configured ones).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Report every job run to `observer` (metrics, logs).
    pub fn observer(mut self, observer: Arc<dyn JobObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Wrap the market data chain, e.g. in a metering decorator.
    pub fn layer_market_data(
        mut self,
        layer: impl FnOnce(Arc<dyn MarketData>) -> Arc<dyn MarketData> + Send + 'static,
    ) -> Self {
        self.market_layer = Some(Box::new(layer));
        self
    }

    /// Wrap the quote cache.
    pub fn layer_quote_cache(
        mut self,
        layer: impl FnOnce(Arc<dyn QuoteCache>) -> Arc<dyn QuoteCache> + Send + 'static,
    ) -> Self {
        self.quote_cache_layer = Some(Box::new(layer));
        self
    }

    /// Wrap the news cache.
    pub fn layer_news_cache(
        mut self,
        layer: impl FnOnce(Arc<dyn NewsCache>) -> Arc<dyn NewsCache> + Send + 'static,
    ) -> Self {
        self.news_cache_layer = Some(Box::new(layer));
        self
    }

    /// Wrap the news source (the built-in feeds or [`news_source`](Self::news_source)), e.g.
    /// in a metering decorator.
    pub fn layer_news_source(
        mut self,
        layer: impl FnOnce(Arc<dyn NewsSource>) -> Arc<dyn NewsSource> + Send + 'static,
    ) -> Self {
        self.news_source_layer = Some(Box::new(layer));
        self
    }

    /// Build and start every job's schedule.
    pub async fn start(self) -> std::result::Result<Service, ServiceError> {
        let service = self.build().await?;
        service.start();
        Ok(service)
    }

    /// Open every port and register the standard jobs without starting their schedules
    /// (register jobs of your own with [`Service::jobs`], then [`Service::start`]).
    pub async fn build(self) -> std::result::Result<Service, ServiceError> {
        let ServiceBuilder {
            config,
            ports,
            sink,
            seq_floor,
            news_source,
            notifiers: extra_notifiers,
            observer,
            market_layer,
            quote_cache_layer,
            news_cache_layer,
            news_source_layer,
            market_stream,
        } = self;

        // 1. What needs no store, so that a bad value fails before anything is connected.
        let market = market_chain(&config.market_data)?;
        let market_stream = match market_stream {
            Some(stream) => Some(stream),
            None => config.market_stream.as_ref().map(stream_of).transpose()?,
        };
        let market_name = if market.is_demo() {
            "demo"
        } else {
            market.name()
        };
        let market_chain_label = config
            .market_data
            .iter()
            .map(MarketDataSource::name)
            .collect::<Vec<_>>()
            .join(" → ");
        let market = match market_layer {
            Some(layer) => layer(market),
            None => market,
        };
        let (news_source, news_categories, news_label) = news(&config, news_source)?;
        let news_source = match (news_source, news_source_layer) {
            (Some(source), Some(layer)) => Some(layer(source)),
            (source, _) => source,
        };
        let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
        if config.log_notifications {
            notifiers.push(Arc::new(LogNotifier::new()));
        }
        #[cfg(feature = "fcm")]
        let fcm_account = match &config.fcm {
            Some(fcm) => Some(
                goldjobs_adapters::notify::fcm::ServiceAccount::from_file(&fcm.credentials_file)
                    .map_err(setup("notifier"))?,
            ),
            None => None,
        };
        #[cfg(feature = "webhook")]
        if let Some(hook) = &config.webhook {
            notifiers.push(Arc::new(
                goldjobs_adapters::notify::webhook::WebhookNotifier::new(hook.clone())
                    .map_err(setup("notifier"))?,
            ));
        }

        // 2. The store.
        let (ports, database_label) = match ports {
            Some(p) => (p, "custom".to_owned()),
            None => open_store(&config).await?,
        };

        // 3. Caches and events.
        let instance_id = config
            .instance_id
            .clone()
            .unwrap_or_else(default_instance_id);
        let events = LocalBroadcaster::new();
        let local: Arc<dyn Broadcaster> = match sink {
            Some(sink) => Arc::new(Tee {
                sink,
                events: events.clone(),
            }),
            None => Arc::new(events.clone()),
        };
        let caches = caches(&config, &instance_id, local).await?;
        let quote_cache = match quote_cache_layer {
            Some(layer) => layer(caches.quotes),
            None => caches.quotes,
        };
        let news_cache = match news_cache_layer {
            Some(layer) => layer(caches.news),
            None => caches.news,
        };

        // Notifiers that read the store.
        #[cfg(feature = "fcm")]
        if let (Some(fcm), Some(account)) = (&config.fcm, fcm_account) {
            let position = usize::from(config.log_notifications);
            notifiers.insert(
                position,
                Arc::new(
                    goldjobs_adapters::notify::fcm::FcmNotifier::new(
                        fcm.config.clone(),
                        account,
                        ports.device_tokens.clone(),
                    )
                    .map_err(setup("notifier"))?,
                ),
            );
        }
        notifiers.extend(extra_notifiers);
        let notifications_label = if notifiers.is_empty() {
            "none".to_owned()
        } else {
            notifiers
                .iter()
                .map(|n| n.name())
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let notifier: Arc<dyn Notifier> = match notifiers.len() {
            1 => notifiers.remove(0),
            _ => Arc::new(FanoutNotifier::new(notifiers)),
        };

        // 4. Jobs.
        let mut manager = JobManager::new(Arc::new(SystemClock), ports.lease.clone(), instance_id)
            .with_store(ports.jobs.clone())
            .with_runs_kept(config.retention.runs_kept);
        if let Some(observer) = observer {
            manager = manager.with_observer(observer);
        }
        let jobs = Arc::new(manager);
        let register = |job| jobs.register(job).map_err(setup("jobs"));
        let mut price = PriceFetcherJob::new(
            &ports,
            market.clone(),
            quote_cache.clone(),
            caches.publish.clone(),
        )
        .with_config(config.price.clone());
        if let Some(floor) = seq_floor {
            price = price.with_seq_floor(floor);
        }
        let price = Arc::new(price);
        let streamer = market_stream.map(|stream| {
            Arc::new(PriceStreamer::new(
                &ports,
                stream,
                price.clone(),
                Arc::new(SystemClock),
            ))
        });
        register(price)?;
        let feeds = news_source
            .as_ref()
            .map(|source| FeedDirectory::new(source.clone(), ports.news.clone()));
        if let Some(source) = news_source {
            register(Arc::new(
                NewsFetcherJob::new(&ports, source, news_cache.clone())
                    .with_config(config.news.clone()),
            ))?;
        }
        let verifier =
            PredictionVerifierJob::new(&ports, market.clone()).with_config(config.verifier.clone());
        let waker = config.verify_wake.clone().map(|wake| {
            Arc::new(
                VerifyWaker::new(&ports, Arc::new(SystemClock))
                    .with_demo_ticks(market.is_demo())
                    .with_config(wake),
            )
        });
        let resolver = Arc::new(verifier.resolver());
        register(Arc::new(verifier))?;
        register(Arc::new(
            OutboxDispatcherJob::new(&ports, caches.publish.clone(), notifier)
                .with_config(config.outbox.clone()),
        ))?;
        register(Arc::new(
            RetentionJob::new(&ports).with_config(config.retention.clone()),
        ))?;

        #[cfg(feature = "twelvedata")]
        warn_about_budget(&config, &ports).await;

        let news = NewsReader::new(ports.news.clone(), news_cache, config.news_cache_ttl)
            .with_categories(news_categories);
        Ok(Service {
            streamer,
            stream_task: std::sync::Mutex::new(None),
            waker,
            wake_task: std::sync::Mutex::new(None),
            jobs,
            predictions: PredictionReader::new(ports.predictions.clone()),
            ports,
            quote_cache,
            news,
            feeds,
            resolver,
            events,
            #[cfg(feature = "redis")]
            event_bus: caches.bus,
            market_data: market_name.to_owned(),
            description: Description {
                database: database_label,
                cache: caches.label,
                market_data: market_chain_label,
                news: news_label,
                notifications: notifications_label,
            },
        })
    }
}

/// Delivers to the embedder's sink and to the service's own event stream.
struct Tee {
    sink: Arc<dyn Broadcaster>,
    events: LocalBroadcaster,
}

#[async_trait::async_trait]
impl Broadcaster for Tee {
    async fn publish(&self, messages: &[Broadcast]) -> Result<()> {
        // The local stream never fails; the sink's result is the caller's.
        let _ = self.events.publish(messages).await;
        self.sink.publish(messages).await
    }
}

/// The live price stream a [`MarketStreamSource`] describes.
fn stream_of(
    source: &MarketStreamSource,
) -> std::result::Result<Arc<dyn MarketStream>, ServiceError> {
    #[allow(unused_variables)]
    let fail = setup("market stream");
    Ok(match source {
        #[cfg(feature = "twelvedata-stream")]
        MarketStreamSource::TwelveData(c) => {
            Arc::new(goldjobs_adapters::market::TwelveDataStream::new(c.clone()).map_err(&fail)?)
        }
        #[cfg(feature = "binance-stream")]
        MarketStreamSource::Binance(c) => {
            Arc::new(goldjobs_adapters::market::BinanceStream::new(c.clone()).map_err(&fail)?)
        }
        MarketStreamSource::Custom(s) => s.clone(),
    })
}

/// The market data chain: one provider, or a fallback chain of several.
fn market_chain(
    sources: &[MarketDataSource],
) -> std::result::Result<Arc<dyn MarketData>, ServiceError> {
    let fail = setup("market data");
    let mut providers: Vec<Arc<dyn MarketData>> = Vec::new();
    for source in sources {
        let provider: Arc<dyn MarketData> = match source {
            #[cfg(feature = "demo")]
            MarketDataSource::Demo { seed } => {
                Arc::new(goldjobs_adapters::market::DemoMarketData::new(*seed))
            }
            #[cfg(feature = "twelvedata")]
            MarketDataSource::TwelveData(c) => Arc::new(
                goldjobs_adapters::market::TwelveDataMarketData::new(c.clone()).map_err(&fail)?,
            ),
            #[cfg(feature = "binance")]
            MarketDataSource::Binance(c) => Arc::new(
                goldjobs_adapters::market::BinanceMarketData::new(c.clone()).map_err(&fail)?,
            ),
            MarketDataSource::Custom(p) => p.clone(),
        };
        providers.push(provider);
    }
    match providers.len() {
        0 => Err(fail(Error::invalid(
            "no market data: list a provider in ServiceConfig::market_data (the demo random \
             walk needs the `demo` feature)",
        ))),
        1 => Ok(providers.remove(0)),
        _ => fallback(providers).map_err(fail),
    }
}

#[cfg(feature = "adapters")]
fn fallback(providers: Vec<Arc<dyn MarketData>>) -> Result<Arc<dyn MarketData>> {
    Ok(Arc::new(
        goldjobs_adapters::market::FallbackMarketData::new(providers)?,
    ))
}

#[cfg(not(feature = "adapters"))]
fn fallback(_providers: Vec<Arc<dyn MarketData>>) -> Result<Arc<dyn MarketData>> {
    Err(Error::invalid(
        "a chain of several market data providers needs the `adapters` feature of goldjobs",
    ))
}

/// The news source, the categories `GET /news?category=` answers, and how to describe them.
type NewsWiring = (Option<Arc<dyn NewsSource>>, Vec<String>, String);

fn news(
    config: &ServiceConfig,
    custom: Option<Arc<dyn NewsSource>>,
) -> std::result::Result<NewsWiring, ServiceError> {
    if let Some(source) = custom {
        return Ok((Some(source), Vec::new(), "custom source".to_owned()));
    }
    #[cfg(feature = "rss")]
    {
        use goldjobs_adapters::news::{FeedConfig, FeedSource, FeedSourceConfig};
        let feeds = config.feeds.clone().unwrap_or_else(FeedConfig::defaults);
        let categories = feeds.iter().map(|f| f.category.clone()).collect();
        let label = match &config.feeds {
            None => format!("{} built-in feeds", feeds.len()),
            Some(_) => format!("{} configured feeds", feeds.len()),
        };
        let source =
            FeedSource::new(feeds, FeedSourceConfig::default()).map_err(setup("news feeds"))?;
        Ok((Some(Arc::new(source)), categories, label))
    }
    #[cfg(not(feature = "rss"))]
    {
        let _ = config;
        Ok((None, Vec::new(), "none (no `rss` feature)".to_owned()))
    }
}

/// Open the configured database (and migrate it), or the in-memory backend.
async fn open_store(config: &ServiceConfig) -> std::result::Result<(Ports, String), ServiceError> {
    let Some(url) = &config.database_url else {
        return Ok((InMemoryBackend::new().ports(), "in memory".to_owned()));
    };
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    {
        let store = goldjobs_adapters::sql::open(url)
            .await
            .map_err(ServiceError::Database)?;
        if config.migrate {
            store.migrate().await.map_err(ServiceError::Database)?;
        }
        Ok((store.ports(), describe_database(url)))
    }
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    {
        let _ = url;
        Err(ServiceError::Database(Error::invalid(
            "database_url needs the `postgres` or `sqlite` feature of goldjobs",
        )))
    }
}

/// How a database URL is shown in logs: `sqlite {path}` or `postgres {host}{path}`, never the
/// credentials.
pub fn describe_database(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or(path);
        format!("sqlite {path}")
    } else {
        match url::Url::parse(url) {
            Ok(u) => format!(
                "postgres {}{}",
                u.host_str().unwrap_or("localhost"),
                u.path()
            ),
            Err(_) => "postgres".to_owned(),
        }
    }
}

struct Caches {
    quotes: Arc<dyn QuoteCache>,
    news: Arc<dyn NewsCache>,
    /// Where the jobs publish: the local sink, or the Redis bus that relays to every
    /// instance's local sink.
    publish: Arc<dyn Broadcaster>,
    label: String,
    #[cfg(feature = "redis")]
    bus: Option<goldjobs_adapters::redis::events::RedisEventBusHandle>,
}

async fn caches(
    config: &ServiceConfig,
    instance_id: &str,
    local: Arc<dyn Broadcaster>,
) -> std::result::Result<Caches, ServiceError> {
    let Some(url) = &config.redis_url else {
        return Ok(Caches {
            quotes: Arc::new(InMemoryQuoteCache::new()),
            news: Arc::new(InMemoryNewsCache::new()),
            publish: local,
            label: "in-process".to_owned(),
            #[cfg(feature = "redis")]
            bus: None,
        });
    };
    #[cfg(feature = "redis")]
    {
        use goldjobs_adapters::redis::events::{RedisEventBus, DEFAULT_CHANNEL};
        use goldjobs_adapters::redis::{RedisNewsCache, RedisQuoteCache};
        let fail = setup("redis");
        let conn = goldjobs_adapters::redis::connect(url)
            .await
            .map_err(&fail)?;
        let prefix = &config.redis_key_prefix;
        let (bus, handle) = RedisEventBus::connect(
            url,
            instance_id.to_owned(),
            local,
            format!("{prefix}{DEFAULT_CHANNEL}"),
        )
        .await
        .map_err(&fail)?;
        Ok(Caches {
            quotes: Arc::new(RedisQuoteCache::new(conn.clone(), prefix.clone())),
            news: Arc::new(RedisNewsCache::new(conn, prefix.clone())),
            publish: Arc::new(bus),
            label: format!("redis {}", redact_url(url)),
            bus: Some(handle),
        })
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = (url, instance_id, local);
        Err(setup("redis")(Error::invalid(
            "redis_url needs the `redis` feature of goldjobs",
        )))
    }
}

/// `scheme://user:pass@host/...` → `scheme://user:***@host/...`; other strings unchanged.
pub fn redact_url(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => s.to_owned(),
        // Unparseable: hide anything between "://" and "@" to be safe.
        Err(_) => match (s.find("://"), s.rfind('@')) {
            (Some(a), Some(b)) if b > a => format!("{}***{}", &s[..a + 3], &s[b..]),
            _ => s.to_owned(),
        },
    }
}

/// Warn when Twelve Data's credits cannot cover the price interval for the active symbols.
#[cfg(feature = "twelvedata")]
async fn warn_about_budget(config: &ServiceConfig, ports: &Ports) {
    let Some(td) = config.market_data.iter().find_map(|s| match s {
        MarketDataSource::TwelveData(c) => Some(c),
        _ => None,
    }) else {
        return;
    };
    let Ok(active) = ports.symbols.active_symbols().await else {
        return;
    };
    if let Some(warning) = goldjobs_adapters::market::check_budget(
        config.price.cadence.schedule().interval,
        active.len(),
        td.credits_per_minute,
        td.history_reserve,
    ) {
        tracing::warn!("{warning}");
    }
}

/// `{HOSTNAME or goldjobs}-{pid}-{8 hex digits}`.
fn default_instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!(
        "{}-{}-{:08x}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "goldjobs".to_owned()),
        std::process::id(),
        h.finish() as u32
    )
}

/// What a [`Service`] runs on, for the startup line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Description {
    /// `in memory`, `sqlite {path}`, `postgres {host}/{db}` or `custom`.
    pub database: String,
    /// `in-process` or `redis {url without credentials}`.
    pub cache: String,
    /// The market data chain, e.g. `twelvedata → binance`.
    pub market_data: String,
    /// The news source, e.g. `3 built-in feeds`.
    pub news: String,
    /// The notifiers, e.g. `log + fcm`.
    pub notifications: String,
}

impl std::fmt::Display for Description {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "database: {}, cache: {}, market data: {}, news: {}, notifications: {}",
            self.database, self.cache, self.market_data, self.news, self.notifications
        )
    }
}

/// A built service: its jobs, ports, read services and events. Dropping it leaves the jobs
/// running until the runtime ends; call [`Service::shutdown`] to stop them in order.
pub struct Service {
    streamer: Option<Arc<PriceStreamer>>,
    stream_task: std::sync::Mutex<Option<Background>>,
    waker: Option<Arc<VerifyWaker>>,
    wake_task: std::sync::Mutex<Option<Background>>,
    jobs: Arc<JobManager>,
    ports: Ports,
    quote_cache: Arc<dyn QuoteCache>,
    news: NewsReader,
    feeds: Option<FeedDirectory>,
    predictions: PredictionReader,
    resolver: Arc<ManualResolver>,
    events: LocalBroadcaster,
    #[cfg(feature = "redis")]
    event_bus: Option<goldjobs_adapters::redis::events::RedisEventBusHandle>,
    market_data: String,
    description: Description,
}

/// A running background loop ([`PriceStreamer`], [`VerifyWaker`]): how to stop it and wait
/// for it.
type Background = (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
);

/// Spawn `run` into `slot` unless it already runs there.
fn spawn_once(
    slot: &std::sync::Mutex<Option<Background>>,
    run: impl FnOnce(tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()>,
) {
    let mut task = slot.lock().unwrap_or_else(|e| e.into_inner());
    if task.is_none() {
        let cancel = tokio_util::sync::CancellationToken::new();
        let handle = run(cancel.clone());
        *task = Some((cancel, handle));
    }
}

/// Stop the loop in `slot`, if any, and wait up to `deadline` for it to end.
async fn stop(slot: &std::sync::Mutex<Option<Background>>, deadline: Duration) {
    let task = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((cancel, handle)) = task {
        cancel.cancel();
        let _ = tokio::time::timeout(deadline, handle).await;
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A builder for `config`.
    pub fn builder(config: ServiceConfig) -> ServiceBuilder {
        ServiceBuilder::new(config)
    }

    /// Start the schedules of every registered job, the price stream on the price leader and
    /// the verifier's waker on the verifier's leader (idempotent).
    pub fn start(&self) {
        self.jobs.start_all();
        if let Some(streamer) = self.streamer.clone() {
            let jobs = self.jobs.clone();
            let is_leader = move || {
                jobs.job_status(PriceFetcherJob::NAME)
                    .is_ok_and(|s| s.is_leader)
            };
            spawn_once(&self.stream_task, |stop| {
                tokio::spawn(async move { streamer.run(stop, is_leader).await })
            });
        }
        if let Some(waker) = self.waker.clone() {
            // Every instance runs one; it acts while this one leads the verifier. A paused
            // verifier is not woken (a manual run would go past the pause).
            let jobs = self.jobs.clone();
            let is_leader = move || {
                jobs.job_status(PredictionVerifierJob::NAME)
                    .is_ok_and(|s| s.is_leader && !s.paused)
            };
            let jobs = self.jobs.clone();
            let trigger = move || jobs.run_now(PredictionVerifierJob::NAME);
            spawn_once(&self.wake_task, |stop| {
                tokio::spawn(async move { waker.run(stop, is_leader, trigger).await })
            });
        }
    }

    /// The live price stream, when one was given
    /// ([`ServiceBuilder::market_stream`]).
    pub fn price_stream(&self) -> Option<&Arc<PriceStreamer>> {
        self.streamer.as_ref()
    }

    /// The verifier's waker, unless turned off ([`ServiceConfig::verify_wake`]).
    pub fn verify_waker(&self) -> Option<&Arc<VerifyWaker>> {
        self.waker.as_ref()
    }

    /// The job manager: status, `run_now`, and jobs of your own (`register`).
    pub fn jobs(&self) -> &Arc<JobManager> {
        &self.jobs
    }

    /// The storage ports.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The latest quotes (the cache the price job fills).
    pub fn quotes(&self) -> &Arc<dyn QuoteCache> {
        &self.quote_cache
    }

    /// News lists, cached ([`NewsReader::list`]).
    pub fn news(&self) -> &NewsReader {
        &self.news
    }

    /// The news feeds with their health (`GET /news/feeds`); `None` without a news source.
    pub fn feeds(&self) -> Option<&FeedDirectory> {
        self.feeds.as_ref()
    }

    /// Predictions with their evidence, and users' statistics.
    pub fn predictions(&self) -> &PredictionReader {
        &self.predictions
    }

    /// Manual resolution, correction and voiding of predictions.
    pub fn resolver(&self) -> &Arc<ManualResolver> {
        &self.resolver
    }

    /// A receiver of every event this instance delivers from now on (quotes, verdicts; with
    /// Redis, those of every instance). A receiver that falls more than 4,096 events behind
    /// loses the oldest and is told how many
    /// ([`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)).
    pub fn subscribe(&self) -> broadcast::Receiver<Broadcast> {
        self.events.subscribe()
    }

    /// The primary market data provider's name (`demo` for the random walk).
    pub fn market_data_name(&self) -> &str {
        &self.market_data
    }

    /// What the service runs on.
    pub fn description(&self) -> &Description {
        &self.description
    }

    /// Stop every job, waiting up to `deadline` for runs in progress (then they are aborted
    /// and named in the report), then close the event bus.
    pub async fn shutdown(self, deadline: Duration) -> StopReport {
        // No more wakes for a verifier that is stopping.
        stop(&self.wake_task, deadline).await;
        // The stream's batch in hand is recorded before the jobs stop.
        stop(&self.stream_task, deadline).await;
        let report = self.jobs.stop_all(deadline).await;
        #[cfg(feature = "redis")]
        if let Some(bus) = self.event_bus {
            bus.shutdown().await;
        }
        if !report.all_stopped() {
            tracing::warn!(not_stopped = ?report.not_stopped, "some jobs did not stop in time");
        }
        report
    }
}
