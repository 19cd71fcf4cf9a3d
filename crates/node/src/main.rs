//! `autonet`: the Autonet operator's command line (see `autonet --help`).
//!
//! This file owns process concerns only: parsing, logging to stderr, the async runtime, printing
//! the report and the exit status. Everything else lives in the `autonet_node` library.

use std::process::ExitCode;

use anyhow::Context as _;
use autonet_node::cli::{Cli, run};
use autonet_node::config::EffectiveConfig;
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,autonet_node=info,autonet_chain=info,autonet_agents=info,autonet_storage=info",
        1 => "info,autonet_node=debug,autonet_chain=debug,autonet_agents=debug",
        _ => "debug,autonet_node=trace,autonet_chain=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn main_inner(cli: Cli) -> anyhow::Result<()> {
    let mut config = EffectiveConfig::from_env(&cli.global).context("loading the configuration")?;
    if cli.command.uses_key() {
        config.unlock_account()?;
    }
    tracing::debug!(?config, "effective configuration");
    let json = config.json;
    let report = run(cli.command, config).await?;
    report.print(json);
    Ok(())
}

/// The error and its causes, skipping a cause whose text its parent already printed (most of our
/// errors embed their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_inner(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
