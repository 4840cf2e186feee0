//! The server around the library's service: [`Config`] → [`goldjobs::service`] → HTTP server and
//! WebSocket hub.
//!
//! [`start`] turns the config into a [`ServiceConfig`], lets the library's builder open every
//! port and register the jobs (with the hub as the local event sink and metering layers), binds
//! the listener and serves; the returned [`App`] knows the bound address and shuts everything
//! down in order ([`App::shutdown`]).

use crate::config::{Config, MarketDataKind};
use crate::http::HttpState;
use crate::hub::{Hub, HubConfig};
use crate::metrics::{
    MeteredMarketData, MeteredNewsCache, MeteredNewsSource, MeteredQuoteCache, Metrics,
};
use goldjobs::adapters::market::{
    BinanceConfig, BinanceStreamConfig, TwelveDataConfig, TwelveDataStreamConfig,
};
use goldjobs::adapters::notify::webhook::WebhookConfig;
use goldjobs::runtime::{JobManager, JobObserver, RunOutcome};
use goldjobs::service::{
    FcmSettings, MarketDataSource, MarketStreamSource, Service, ServiceConfig, ServiceError,
};
use goldjobs::Ports;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The library could not build the service (database, Redis, providers, notifiers).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl AppError {
    /// Whether a value of the configuration is unusable (exit 2, like a parse error).
    pub fn is_invalid_config(&self) -> bool {
        matches!(self, AppError::Service(e) if e.is_invalid_config())
    }
}

/// Options that are not part of the operator's config (tests and embedders).
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// WebSocket hub limits; its `push_interval` is taken from the config
    /// (`GOLDJOBS_PUSH_INTERVAL`).
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

/// The library's service config for the operator's `cfg`.
pub fn service_config(cfg: &Config, opts: &AppOptions) -> ServiceConfig {
    let key = || {
        cfg.twelvedata_api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
            .unwrap_or_default()
    };
    let market_data = cfg.market_data.iter().map(|kind| match kind {
        MarketDataKind::Demo => MarketDataSource::Demo {
            seed: opts.demo_seed,
        },
        MarketDataKind::Binance => MarketDataSource::Binance(
            BinanceConfig::default().with_base_url(cfg.binance_base_url.clone()),
        ),
        MarketDataKind::TwelveData => MarketDataSource::TwelveData(
            TwelveDataConfig::new(key())
                .with_base_url(cfg.twelvedata_base_url.clone())
                .with_credits_per_minute(cfg.twelvedata_credits_per_minute),
        ),
    });
    let market_stream = cfg.market_stream.and_then(|kind| match kind {
        MarketDataKind::TwelveData => Some(MarketStreamSource::TwelveData(
            TwelveDataStreamConfig::new(key()).with_url(cfg.twelvedata_ws_url.clone()),
        )),
        MarketDataKind::Binance => Some(MarketStreamSource::Binance(
            BinanceStreamConfig::default().with_url(cfg.binance_ws_url.clone()),
        )),
        MarketDataKind::Demo => None,
    });
    let mut service = ServiceConfig::default()
        .with_database_url(cfg.database_url.expose())
        .with_redis_key_prefix(opts.redis_key_prefix.clone())
        .with_market_data(market_data)
        .with_price(
            goldjobs::jobs::PriceFetcherConfig::default()
                .with_cadence(cfg.price_interval.clone())
                .with_quote_ttl(cfg.quote_ttl),
        )
        .with_news_interval(cfg.news_interval.clone())
        .with_verifier(
            goldjobs::jobs::VerifierConfig::default()
                .with_cadence(cfg.verify_interval.clone())
                .with_max_lag(cfg.verify_max_lag),
        )
        .with_news_cache_ttl(cfg.news_cache_ttl)
        .with_verify_wake(
            cfg.verify_wake
                .map(|spacing| goldjobs::jobs::VerifyWakeConfig::default().with_spacing(spacing)),
        );
    service.outbox.locale = cfg.locale;
    service.retention.tick_retention = cfg.tick_retention;
    service.retention.outbox_retention = cfg.outbox_retention;
    if let Some(stream) = market_stream {
        service = service.with_market_stream(stream);
    }
    if let Some(url) = &cfg.redis_url {
        service = service.with_redis_url(url.expose());
    }
    if let Some(feeds) = &cfg.news_feeds {
        service = service.with_feeds(feeds.clone());
    }
    if let Some(fcm) = &cfg.fcm {
        service = service.with_fcm(
            FcmSettings::new(fcm.project_id.clone(), fcm.credentials_file.clone())
                .with_base_url(fcm.base_url.clone()),
        );
    }
    if let Some(hook) = &cfg.webhook {
        service = service.with_webhook(WebhookConfig::new(hook.url.clone(), hook.secret.expose()));
    }
    service
}

/// Exports job runs as metrics.
struct MetricsObserver(Arc<Metrics>);

impl JobObserver for MetricsObserver {
    fn on_run_finished(&self, job: &str, outcome: &RunOutcome) {
        self.0.job_finished(job, outcome, chrono::Utc::now());
    }
}

/// A running server.
pub struct App {
    addr: SocketAddr,
    hub: Hub,
    service: Service,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
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

    /// The WebSocket hub (also a [`goldjobs::Broadcaster`]).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The job manager.
    pub fn jobs(&self) -> &Arc<JobManager> {
        self.service.jobs()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The storage ports.
    pub fn repos(&self) -> &Ports {
        self.service.ports()
    }

    /// The library's service.
    pub fn service(&self) -> &Service {
        &self.service
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
        // The jobs stop (and give up their leases, so a standby takes over at once) while the
        // connections drain.
        let hub_closing = self.hub.shutdown(Duration::from_secs(3));
        let jobs_stopping = self.service.shutdown(self.stop_grace);
        let (_, server, _) = tokio::join!(hub_closing, self.server, jobs_stopping);
        if let Err(e) = server {
            tracing::warn!(error = %e, "HTTP server task ended badly");
        }
        tracing::info!("goldjobs stopped");
    }
}

/// Build everything from `cfg` and start serving.
pub async fn start(cfg: Config, opts: AppOptions) -> Result<App, AppError> {
    let metrics = Arc::new(Metrics::new());
    let hub_config = HubConfig {
        push_interval: cfg.push_interval,
        ..opts.hub.clone()
    };
    let hub = Hub::new(hub_config, metrics.clone());
    let service = Service::builder(service_config(&cfg, &opts))
        .deliver_to(Arc::new(hub.clone()))
        // After a failover the new leader continues each symbol's seq after the last one its
        // hub relayed from the previous leader (guide: *WebSocket protocol*: seq only grows).
        .seq_floor({
            let hub = hub.clone();
            Arc::new(move |code: &str| hub.last_seq(code))
        })
        .observer(Arc::new(MetricsObserver(metrics.clone())))
        .layer_market_data({
            let metrics = metrics.clone();
            move |m| Arc::new(MeteredMarketData::new(m, metrics))
        })
        .layer_quote_cache({
            let metrics = metrics.clone();
            move |c| Arc::new(MeteredQuoteCache::new(c, metrics))
        })
        .layer_news_cache({
            let metrics = metrics.clone();
            move |c| Arc::new(MeteredNewsCache::new(c, metrics))
        })
        .layer_news_source({
            let metrics = metrics.clone();
            move |s| Arc::new(MeteredNewsSource::new(s, metrics))
        })
        .build()
        .await?;
    let ports = service.ports().clone();

    // Known symbols for the hub, refreshed every 30 s.
    let mut background: Vec<JoinHandle<()>> = Vec::new();
    let active = ports
        .symbols
        .active_symbols()
        .await
        .map_err(|e| AppError::Service(ServiceError::Database(e)))?;
    hub.set_known_symbols(active.into_iter().map(|s| s.code));
    background.push({
        let hub = hub.clone();
        let symbols = ports.symbols.clone();
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
    let shutdown = CancellationToken::new();
    let state = Arc::new(HttpState {
        hub: hub.clone(),
        jobs: service.jobs().clone(),
        metrics: metrics.clone(),
        symbols: ports.symbols.clone(),
        quote_cache: service.quotes().clone(),
        ticks: ports.ticks.clone(),
        news: service.news().clone(),
        feeds: service.feeds().cloned(),
        predictions: service.predictions().clone(),
        resolver: service.resolver().clone(),
        admin_token: cfg.admin_token.clone(),
        cors_origins: cfg.cors_origins.clone(),
        market_data: service.market_data_name().to_owned(),
        stream: service.price_stream().cloned(),
        reads: Default::default(),
    });
    let server = tokio::spawn(crate::http::serve(
        listener,
        state,
        shutdown.clone(),
        Duration::from_secs(5),
    ));

    if opts.start_jobs {
        service.start();
    }

    tracing::info!("goldjobs listening on {addr} ({})", service.description());

    Ok(App {
        addr,
        hub,
        service,
        metrics,
        shutdown,
        server,
        background,
        stop_grace: opts.stop_grace,
    })
}
