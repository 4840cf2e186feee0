//! `goldjobs-server`: the reference server (guide: *The server's commands*). Thin: parse,
//! configure, delegate.

use clap::{Parser, Subcommand};
use goldjobs::adapters::sql::{self, SqlStore};
use goldjobs_server::app::{self, AppError, AppOptions};
use goldjobs_server::cli;
use goldjobs_server::config::Config;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// goldjobs reference server: background jobs (prices, news, prediction verification), HTTP API,
/// WebSocket hub and live dashboard.
#[derive(Debug, Parser)]
#[command(name = "goldjobs-server", version, about)]
struct Cli {
    /// Optional TOML config file (also `GOLDJOBS_CONFIG`); environment variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server and all jobs (the default).
    Serve,
    /// Apply migrations and exit.
    Migrate,
    /// Insert the default symbols and a few demo predictions and votes.
    SeedDemo,
    /// Recompute every user's statistics from the verified votes in verify_time order: fix
    /// them in one transaction and print how many users changed (users whose statistics have no
    /// votes behind them are named first).
    RecomputeStats {
        /// Write nothing: print one line per user whose stored statistics differ, exit 1 if any.
        #[arg(long)]
        check: bool,
    },
    /// Check an auto_verify_conditions JSON object: print `ok` or one line per problem
    /// (exit 0 when ok, 1 otherwise).
    CheckConditions {
        /// File with the JSON object, or `-` for standard input.
        #[arg(value_name = "FILE|-")]
        file: String,
        /// Print the option chosen for price_change_percent = VALUE, or `none`.
        #[arg(long, value_name = "VALUE", allow_hyphen_values = true)]
        at: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CheckConditions { file, at }) = &cli.command {
        return check_conditions(file, at.as_deref());
    }

    let env: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("goldjobs-server: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log_filter);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("goldjobs-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<u8> = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await.map(|()| 0),
            Command::Migrate => {
                open_store(&config).await?;
                println!("migrations applied ({})", config.describe_database());
                Ok(0)
            }
            Command::SeedDemo => {
                let store = open_store(&config).await?;
                let s = cli::seed_demo(&store.ports()).await?;
                println!(
                    "seeded {} symbols, {} predictions, {} votes ({})",
                    s.symbols,
                    s.predictions,
                    s.votes,
                    config.describe_database()
                );
                Ok(0)
            }
            Command::RecomputeStats { check } => {
                let store = open_store(&config).await?;
                let outcome = cli::recompute_stats(&store.ports(), check).await?;
                if !outcome.output.is_empty() {
                    println!("{}", outcome.output);
                }
                Ok(u8::try_from(outcome.code).unwrap_or(1))
            }
            Command::CheckConditions { .. } => Ok(0),
        }
    });
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("goldjobs-server: {e:#}");
            // A value of the configuration that cannot be used (a credentials file that does not
            // parse, a webhook URL of the wrong kind) is a configuration error, like those found
            // while parsing: exit 2. These are all found before anything is connected.
            let invalid_config = e
                .downcast_ref::<AppError>()
                .is_some_and(AppError::is_invalid_config);
            if invalid_config {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Open and migrate the configured database (the `migrate`, `seed-demo` and `recompute-stats`
/// commands).
async fn open_store(config: &Config) -> goldjobs::Result<SqlStore> {
    let store = sql::open(config.database_url.expose()).await?;
    store.migrate().await?;
    Ok(store)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = app::start(config, AppOptions::default()).await?;
    // Tests and scripts that use port 0 read the real address from here.
    println!("listening on {}", app.local_addr());
    let stop = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        stop.cancel();
    });
    app.run_until_stopped().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn check_conditions(file: &str, at: Option<&str>) -> ExitCode {
    let mut json = String::new();
    let read = if file == "-" {
        std::io::stdin().read_to_string(&mut json).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|s| json = s)
    };
    if let Err(e) = read {
        eprintln!("goldjobs-server: cannot read {file}: {e}");
        return ExitCode::from(1);
    }
    let outcome = cli::check_conditions(&json, at);
    println!("{}", outcome.output);
    ExitCode::from(outcome.code as u8)
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
