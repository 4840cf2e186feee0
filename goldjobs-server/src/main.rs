//! `goldjobs-server`: the reference server.

use clap::{Parser, Subcommand};

/// goldjobs reference server.
#[derive(Debug, Parser)]
#[command(name = "goldjobs-server", version, about)]
struct Cli {
    /// Optional TOML config file (also `GOLDJOBS_CONFIG`).
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
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
    /// Check an auto_verify_conditions JSON object.
    CheckConditions {
        /// File with the JSON object, or `-` for standard input.
        file: String,
        /// Print the option chosen for price_change_percent = VALUE.
        #[arg(long)]
        at: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing::debug!(?cli, "parsed command line");
    Ok(())
}
