//! Wiring: [`Config`] → adapters → jobs → HTTP server and WebSocket hub.
//!
//! [`start`] builds every port from the config, runs migrations, registers the jobs with the
//! [`JobManager`], binds the listener and serves; the returned [`App`] knows the bound address
//! and shuts everything down in order ([`App::shutdown`]).

use crate::config::{Config, MarketDataKind};
use crate::http::HttpState;
use crate::hub::{Hub, HubConfig};
use crate::metrics::{MeteredMarketData, MeteredNewsCache, MeteredQuoteCache, Metrics};
use goldjobs_adapters::market::{
    check_budget, BinanceConfig, BinanceMarketData, DemoMarketData, FallbackMarketData,
    TwelveDataConfig, TwelveDataMarketData, DEFAULT_HISTORY_RESERVE,
};
use goldjobs_adapters::news::{FeedConfig, FeedSource, FeedSourceConfig};
use goldjobs_adapters::notify::fcm::{FcmConfig as FcmNotifierConfig, FcmNotifier, ServiceAccount};
use goldjobs_adapters::notify::webhook::{WebhookConfig as WebhookNotifierConfig, WebhookNotifier};
use goldjobs_adapters::redis::events::{RedisEventBus, RedisEventBusHandle, DEFAULT_CHANNEL};
use goldjobs_adapters::redis::{RedisNewsCache, RedisQuoteCache};
use goldjobs_adapters::sql::SqlStore;
use goldjobs_core::jobs::{
    NewsFetcherJob, NewsJobConfig, PriceFetcherConfig, PriceFetcherJob, RetentionConfig,
    RetentionJob,
};
use goldjobs_core::memory::{FanoutNotifier, InMemoryNewsCache, InMemoryQuoteCache, LogNotifier};
use goldjobs_core::news::NewsReader;
use goldjobs_core::runtime::{JobManager, JobObserver, RunOutcome, RunStatus};
use goldjobs_core::verify::{
    OutboxConfig, OutboxDispatcherJob, PredictionVerifierJob, VerifierConfig,
};
use goldjobs_core::{
    Broadcaster, MarketData, NewsCache, NewsSource, Notifier, QuoteCache, SystemClock,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(goldjobs_core::Error),
    /// A backend could not be built from the config.
    #[error("{what}: {source}")]
    Setup {
        /// What was being built.
        what: &'static str,
        /// Why it failed.
        source: goldjobs_core::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Options that are not part of the operator's config (tests and embedders).
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// WebSocket hub limits.
    pub hub: HubConfig,
    /// Seed of the demo random walk.
    pub demo_seed: u64,
    /// Whether to start the jobs' schedules (default `true`); `false` keeps every job idle, for
    /// tests that publish into the hub themselves.
    pub start_jobs: bool,
    /// How long shutdown waits for jobs (10 s).
    pub stop_grace: Duration,
    /// Prefix of every Redis key and of the events channel (empty in production; tests use a
    /// random one to share a Redis).
    pub redis_key_prefix: String,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            hub: HubConfig::default(),
            demo_seed: 42,
            start_jobs: true,
            stop_grace: Duration::from_secs(10),
            redis_key_prefix: String::new(),
        }
    }
}

/// The SQL store chosen by `DATABASE_URL`: the library's [`SqlStore`], opened by
/// [`goldjobs_adapters::sql::open`].
#[derive(Debug, Clone)]
pub struct Store(SqlStore);

/// Every repository port of one store: the library's [`goldjobs_core::Ports`].
pub type Repos = goldjobs_core::Ports;

impl Store {
    /// Open the database of `cfg` (no migrations).
    pub async fn connect(cfg: &Config) -> Result<Store, AppError> {
        goldjobs_adapters::sql::open(cfg.database_url.expose())
            .await
            .map(Store)
            .map_err(AppError::Database)
    }

    /// Apply pending migrations.
    pub async fn migrate(&self) -> Result<(), AppError> {
        self.0.migrate().await.map_err(AppError::Database)
    }

    /// The store as each repository port.
    pub fn repos(&self) -> Repos {
        self.0.ports()
    }

    /// The library's store.
    pub fn sql(&self) -> &SqlStore {
        &self.0
    }
}

/// Build the market data provider(s) of `cfg`: the primary, then fallbacks.
pub fn market_data(cfg: &Config, demo_seed: u64) -> Result<Arc<dyn MarketData>, AppError> {
    let setup = |source| AppError::Setup {
        what: "market data",
        source,
    };
    let mut providers: Vec<Arc<dyn MarketData>> = Vec::new();
    for kind in &cfg.market_data {
        let p: Arc<dyn MarketData> = match kind {
            MarketDataKind::Demo => Arc::new(DemoMarketData::new(demo_seed)),
            MarketDataKind::Binance => Arc::new(
                BinanceMarketData::new(
                    BinanceConfig::default().with_base_url(cfg.binance_base_url.clone()),
                )
                .map_err(setup)?,
            ),
            MarketDataKind::TwelveData => {
                let key = cfg
                    .twelvedata_api_key
                    .as_ref()
                    .map(|k| k.expose().to_owned())
                    .unwrap_or_default();
                Arc::new(
                    TwelveDataMarketData::new(
                        TwelveDataConfig::new(key)
                            .with_base_url(cfg.twelvedata_base_url.clone())
                            .with_credits_per_minute(cfg.twelvedata_credits_per_minute),
                    )
                    .map_err(setup)?,
                )
            }
        };
        providers.push(p);
    }
    if providers.len() == 1 {
        if let Some(p) = providers.pop() {
            return Ok(p);
        }
    }
    Ok(Arc::new(FallbackMarketData::new(providers).map_err(setup)?))
}

/// How the market data is described in the startup line.
fn describe_market(cfg: &Config) -> String {
    let names: Vec<&str> = cfg
        .market_data
        .iter()
        .map(|k| match k {
            MarketDataKind::Demo => "DEMO random walk",
            other => other.as_str(),
        })
        .collect();
    names.join(" → ")
}

/// Exports job runs as metrics.
struct MetricsObserver(Arc<Metrics>);

impl JobObserver for MetricsObserver {
    fn on_run_finished(&self, job: &str, outcome: &RunOutcome) {
        if outcome.status == RunStatus::SkippedNotLeader {
            return;
        }
        self.0.job_finished(
            job,
            outcome.status == RunStatus::Ok,
            outcome.status.is_failure(),
            outcome.duration,
            chrono::Utc::now(),
        );
    }
}

/// A running server.
pub struct App {
    addr: SocketAddr,
    hub: Hub,
    jobs: Arc<JobManager>,
    metrics: Arc<Metrics>,
    repos: Repos,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    event_bus: Option<RedisEventBusHandle>,
    stop_grace: Duration,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl App {
    /// The bound address (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The WebSocket hub (also a [`Broadcaster`]).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The job manager.
    pub fn jobs(&self) -> &Arc<JobManager> {
        &self.jobs
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The repositories.
    pub fn repos(&self) -> &Repos {
        &self.repos
    }

    /// A token that stops the server when cancelled (e.g. from a signal handler).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Wait until the shutdown token is cancelled, then shut down.
    pub async fn run_until_stopped(self) {
        self.shutdown.cancelled().await;
        self.shutdown().await;
    }

    /// Stop accepting, close WebSockets with 1001, stop the jobs (10 s by default).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in &self.background {
            task.abort();
        }
        let hub_closing = self.hub.shutdown(Duration::from_secs(3));
        let (_, server) = tokio::join!(hub_closing, self.server);
        if let Err(e) = server {
            tracing::warn!(error = %e, "HTTP server task ended badly");
        }
        let report = self.jobs.stop_all(self.stop_grace).await;
        if let Some(bus) = self.event_bus {
            bus.shutdown().await;
        }
        if !report.all_stopped() {
            tracing::warn!(not_stopped = ?report.not_stopped, "some jobs did not stop in time");
        }
        tracing::info!("goldjobs stopped");
    }
}

/// Quote cache, news cache, broadcaster and how to describe them.
type CacheWiring = (
    Arc<dyn QuoteCache>,
    Arc<dyn NewsCache>,
    Arc<dyn Broadcaster>,
    String,
);

/// Build everything from `cfg` and start serving.
pub async fn start(cfg: Config, opts: AppOptions) -> Result<App, AppError> {
    let metrics = Arc::new(Metrics::new());

    // Market data.
    let market = market_data(&cfg, opts.demo_seed)?;
    let is_demo = market.is_demo();
    let market_name = if is_demo { "demo" } else { market.name() };
    let market: Arc<dyn MarketData> = Arc::new(MeteredMarketData::new(market, metrics.clone()));

    // News feeds.
    let feeds: Vec<FeedConfig> = cfg.news_feeds.clone().unwrap_or_else(FeedConfig::defaults);
    // `GET /news?category=` answers only these (any letter case); others are a 400.
    let news_categories: Vec<String> = feeds.iter().map(|f| f.category.clone()).collect();
    let news_label = match &cfg.news_feeds {
        None => format!("{} built-in feeds", feeds.len()),
        Some(_) => format!("{} configured feeds", feeds.len()),
    };
    let news_source: Arc<dyn NewsSource> = Arc::new(
        FeedSource::new(feeds, FeedSourceConfig::default()).map_err(|source| AppError::Setup {
            what: "news feeds",
            source,
        })?,
    );

    // Notifiers that need no store are built (and the FCM credentials read) before anything is
    // connected, so a bad value stops the start at once.
    let mut notifiers: Vec<Arc<dyn Notifier>> = vec![Arc::new(LogNotifier::new())];
    let notify_setup = |source| AppError::Setup {
        what: "notifier",
        source,
    };
    let fcm_account = match &cfg.fcm {
        Some(fcm) => Some(ServiceAccount::from_file(&fcm.credentials_file).map_err(notify_setup)?),
        None => None,
    };
    if let Some(hook) = &cfg.webhook {
        notifiers.push(Arc::new(
            WebhookNotifier::new(WebhookNotifierConfig::new(
                hook.url.clone(),
                hook.secret.expose(),
            ))
            .map_err(notify_setup)?,
        ));
    }

    // Database.
    let store = Store::connect(&cfg).await?;
    store.migrate().await?;
    let repos = store.repos();

    // Caches and event fan-out: in-process unless REDIS_URL is set.
    let hub = Hub::new(opts.hub.clone(), metrics.clone());
    let shutdown = CancellationToken::new();
    let mut background: Vec<JoinHandle<()>> = Vec::new();
    let mut event_bus: Option<RedisEventBusHandle> = None;
    let instance_id = format!(
        "{}-{}-{:08x}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "goldjobs".to_owned()),
        std::process::id(),
        rand::random::<u32>()
    );
    let (quote_cache, news_cache, broadcaster, cache_label): CacheWiring = match &cfg.redis_url {
        None => (
            Arc::new(InMemoryQuoteCache::new()),
            Arc::new(InMemoryNewsCache::new()),
            Arc::new(hub.clone()),
            "in-process".to_owned(),
        ),
        Some(url) => {
            let redis_setup = |source| AppError::Setup {
                what: "redis",
                source,
            };
            let conn = goldjobs_adapters::redis::connect(url.expose())
                .await
                .map_err(redis_setup)?;
            let channel = format!("{}{}", opts.redis_key_prefix, DEFAULT_CHANNEL);
            let (bus, handle) = RedisEventBus::connect(
                url.expose(),
                instance_id.clone(),
                Arc::new(hub.clone()),
                channel,
            )
            .await
            .map_err(redis_setup)?;
            event_bus = Some(handle);
            (
                Arc::new(RedisQuoteCache::new(
                    conn.clone(),
                    opts.redis_key_prefix.clone(),
                )),
                Arc::new(RedisNewsCache::new(conn, opts.redis_key_prefix.clone())),
                Arc::new(bus),
                format!("redis {}", url.redacted()),
            )
        }
    };
    let quote_cache: Arc<dyn QuoteCache> =
        Arc::new(MeteredQuoteCache::new(quote_cache, metrics.clone()));
    let news_cache: Arc<dyn NewsCache> =
        Arc::new(MeteredNewsCache::new(news_cache, metrics.clone()));

    // FCM needs the device tokens of the store.
    if let (Some(fcm), Some(account)) = (&cfg.fcm, fcm_account) {
        let mut config = FcmNotifierConfig::new(fcm.project_id.clone());
        config.base_url = fcm.base_url.clone();
        notifiers.insert(
            1,
            Arc::new(
                FcmNotifier::new(config, account, repos.device_tokens.clone())
                    .map_err(notify_setup)?,
            ),
        );
    }
    let notifier_label: Vec<&str> = notifiers.iter().map(|n| n.name()).collect();
    let notifier_label = notifier_label.join(" + ");
    let notifier: Arc<dyn Notifier> = if notifiers.len() == 1 {
        notifiers.remove(0)
    } else {
        Arc::new(FanoutNotifier::new(notifiers))
    };

    // Jobs.
    let jobs = Arc::new(
        JobManager::new(Arc::new(SystemClock), repos.lease.clone(), instance_id)
            .with_observer(Arc::new(MetricsObserver(metrics.clone()))),
    );
    let setup_job = |source| AppError::Setup {
        what: "jobs",
        source,
    };
    jobs.register(Arc::new(
        PriceFetcherJob::new(
            repos.symbols.clone(),
            market.clone(),
            quote_cache.clone(),
            repos.ticks.clone(),
            broadcaster.clone(),
            PriceFetcherConfig::default()
                .with_interval(cfg.price_interval)
                .with_quote_ttl(cfg.quote_ttl),
        )
        .with_seq_floor({
            // After a failover the new leader continues each symbol's seq after the last one its
            // hub relayed from the previous leader (CONTRACT §4: seq only grows).
            let hub = hub.clone();
            Arc::new(move |code: &str| hub.last_seq(code))
        }),
    ))
    .map_err(setup_job)?;
    jobs.register(Arc::new(NewsFetcherJob::new(
        news_source,
        repos.news.clone(),
        news_cache.clone(),
        NewsJobConfig::default().with_interval(cfg.news_interval),
    )))
    .map_err(setup_job)?;
    let verifier = PredictionVerifierJob::new(
        repos.predictions.clone(),
        repos.ticks.clone(),
        market.clone(),
        repos.symbols.clone(),
    )
    .with_config(
        VerifierConfig::default()
            .with_interval(cfg.verify_interval)
            .with_max_lag(cfg.verify_max_lag),
    );
    let resolver = Arc::new(verifier.resolver());
    jobs.register(Arc::new(verifier)).map_err(setup_job)?;
    let outbox_config = OutboxConfig {
        locale: match cfg.locale {
            crate::config::Locale::ZhCn => goldjobs_core::verify::Locale::ZhCn,
            crate::config::Locale::En => goldjobs_core::verify::Locale::En,
        },
        ..OutboxConfig::default()
    };
    jobs.register(Arc::new(
        OutboxDispatcherJob::new(repos.outbox.clone(), broadcaster.clone(), notifier)
            .with_config(outbox_config),
    ))
    .map_err(setup_job)?;

    jobs.register(Arc::new(
        RetentionJob::new(repos.ticks.clone(), repos.outbox.clone()).with_config(RetentionConfig {
            tick_retention: cfg.tick_retention,
            outbox_retention: cfg.outbox_retention,
            ..RetentionConfig::default()
        }),
    ))
    .map_err(setup_job)?;

    // Known symbols for the hub, refreshed every 30 s.
    let active = repos
        .symbols
        .active_symbols()
        .await
        .map_err(AppError::Database)?;
    if cfg.market_data.contains(&MarketDataKind::TwelveData) {
        if let Some(warning) = check_budget(
            cfg.price_interval,
            active.len(),
            cfg.twelvedata_credits_per_minute,
            DEFAULT_HISTORY_RESERVE,
        ) {
            tracing::warn!("{warning}");
        }
    }
    hub.set_known_symbols(active.into_iter().map(|s| s.code));
    background.push({
        let hub = hub.clone();
        let symbols = repos.symbols.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            every.tick().await;
            loop {
                every.tick().await;
                match symbols.active_symbols().await {
                    Ok(s) => hub.set_known_symbols(s.into_iter().map(|s| s.code)),
                    Err(e) => tracing::warn!(error = %e, "refreshing active symbols failed"),
                }
            }
        })
    });

    // HTTP.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| AppError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AppError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let state = Arc::new(HttpState {
        hub: hub.clone(),
        jobs: jobs.clone(),
        metrics: metrics.clone(),
        symbols: repos.symbols.clone(),
        quote_cache: quote_cache.clone(),
        news: NewsReader::new(repos.news.clone(), news_cache.clone(), cfg.news_cache_ttl)
            .with_categories(news_categories),
        predictions: goldjobs_core::verify::PredictionReader::new(repos.predictions.clone()),
        resolver,
        admin_token: cfg.admin_token.clone(),
        cors_origins: cfg.cors_origins.clone(),
        market_data: market_name.to_owned(),
        reads: Default::default(),
    });
    let server = tokio::spawn(crate::http::serve(
        listener,
        state,
        shutdown.clone(),
        Duration::from_secs(5),
    ));

    if opts.start_jobs {
        jobs.start_all();
    }

    tracing::info!(
        "goldjobs listening on {addr} (database: {}, cache: {cache_label}, market data: {}, news: {news_label}, notifications: {notifier_label})",
        cfg.describe_database(),
        describe_market(&cfg),
    );

    Ok(App {
        addr,
        hub,
        jobs,
        metrics,
        repos,
        shutdown,
        server,
        background,
        event_bus,
        stop_grace: opts.stop_grace,
    })
}
