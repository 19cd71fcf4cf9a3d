//! `autonet deploy`: deploys every contract with the repository's own forge script.
//!
//! This module owns the command's arguments ([`DeployArgs`]) and `run`: running `forge script
//! script/Deploy.s.sol:Deploy --broadcast` from the repository root (forge from
//! `node_modules/.bin`, installed by `make setup`) with the operator's key from the environment,
//! then summarising the `deployments/<chainId>.json` the script wrote. It must not deploy
//! contracts any other way: the script is the single deployment path, shared with `make deploy`
//! and the test chain.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use autonet_bindings::Deployment;
use autonet_chain::{ProviderConfig, ProviderError, connect};
use serde_json::json;

use super::{CommandError, Report};
use crate::config::EffectiveConfig;

/// `autonet deploy` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example: autonet deploy --repo ~/autonet -- --slow")]
pub struct DeployArgs {
    /// The repository checkout holding script/Deploy.s.sol and node_modules/.bin/forge
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// Extra arguments for `forge script` (after `--`)
    #[arg(last = true, value_name = "FORGE_ARGS")]
    pub forge_args: Vec<String>,
}

impl DeployArgs {
    /// Whether the command unlocks the operator's key: yes, forge deploys with it.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet deploy`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        deploy(&config, &self.repo, &self.forge_args).await
    }
}

/// The forge binary inside a repository checkout.
pub fn forge_path(repo: &Path) -> PathBuf {
    repo.join("node_modules/.bin/forge")
}

/// `autonet deploy`.
pub async fn deploy(
    config: &EffectiveConfig,
    repo: &Path,
    forge_args: &[String],
) -> Result<Report, CommandError> {
    let key = config.require_signer()?;
    let forge = forge_path(repo);
    if !forge.exists() {
        return Err(CommandError::ForgeMissing(forge));
    }
    // Ask the node first: a wrong URL fails here, before forge compiles anything.
    let provider = connect(
        &ProviderConfig::new(&config.rpc_url),
        PrivateKeySigner::random(),
    )
    .await?;
    let chain_id = provider.get_chain_id().await.map_err(ProviderError::from)?;
    tracing::info!(chain_id, deployer = %key.address(), repo = %repo.display(), "running forge script script/Deploy.s.sol");

    let mut command = Command::new(&forge);
    command
        .current_dir(repo)
        .args([
            "script",
            "script/Deploy.s.sol:Deploy",
            "--broadcast",
            "--rpc-url",
        ])
        .arg(&config.rpc_url)
        // forge takes the key only as an argument (the Makefile's `deploy` target does the same).
        .arg("--private-key")
        .arg(key.to_bytes().to_string())
        .args(forge_args);
    if std::env::var_os("GIT_COMMIT").is_none()
        && let Ok(out) = Command::new("git")
            .current_dir(repo)
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
        && out.status.success()
    {
        command.env("GIT_COMMIT", String::from_utf8_lossy(&out.stdout).trim());
    }
    // forge's own output streams to stderr as it runs (compiling takes a while), so that stdout
    // stays the summary (or JSON); it never reads a prompt's answer.
    let status = command
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(std::io::stderr())
        .status()
        .map_err(CommandError::ForgeIo)?;
    if !status.success() {
        return Err(CommandError::ForgeFailed(status));
    }

    let path = Deployment::path_for_chain(repo.join("deployments"), chain_id);
    let d = Deployment::load_for_chain(repo.join("deployments"), chain_id)?;
    let mut text = format!(
        "deployed Autonet {} (commit {}) on chain {} from block {}\nwritten to {}\n",
        d.version,
        d.commit,
        d.chain_id,
        d.deploy_block,
        path.display()
    );
    for (name, address) in d.contracts.iter() {
        text.push_str(&format!("  {name:<20} {address}\n"));
    }
    text.push_str(&format!(
        "next: export AUTONET_REGISTRY={} (or pass --deployment {})",
        d.contracts.registry,
        path.display()
    ));
    Ok(Report {
        text,
        json: json!({ "file": path, "deployment": d }),
    })
}
