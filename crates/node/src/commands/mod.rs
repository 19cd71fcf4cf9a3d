//! The operator's commands and what they share.
//!
//! Each submodule owns one command or group of commands of `autonet`: its clap arguments (an
//! `Args` struct, or a `Subcommand` enum for a group such as `project`, `gov`, `integrity` or
//! `key`) with their help text and examples, whether it unlocks the operator's key (`uses_key`),
//! and its `run(self, config)`, which connects with [`Context::connect`] when the command needs
//! the chain; [`crate::cli`] only lists them and dispatches to `run`. This module owns what they
//! share: the [`Context`] every chain command runs in (provider, discovered contract addresses,
//! the operator's address, transaction options), the [`CommandError`] they report and the
//! [`Report`] they print (text or JSON). None of them holds protocol decisions (those belong to
//! the role agents) — they translate an operator's request into calls and explain the outcome.

pub mod agent;
pub mod config;
pub mod deploy;
pub mod gov;
pub mod integrity;
pub mod join;
pub mod key;
pub mod market;
pub mod project;
pub mod staking;
pub mod status;
pub mod witness;

use std::path::PathBuf;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::Address;
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::TransportError;
use autonet_bindings::{Contracts, DecodedRevert, Deployment, DeploymentError, decode_revert};
use autonet_chain::discovery::verify_deployment;
use autonet_chain::{
    ChainProvider, DiscoveryError, ProviderConfig, ProviderError, TxError, TxOptions, connect,
    discover_contracts,
};
use serde_json::Value;

use crate::config::{ConfigError, ContractsSource, EffectiveConfig};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A keystore could not be created, read or unlocked.
    #[error(transparent)]
    Keystore(#[from] crate::keystore::KeystoreError),
    /// The node could not be reached or serves another chain.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The contracts could not be discovered.
    #[error(transparent)]
    Discovery(Box<DiscoveryError>),
    /// The deployments file is unusable.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// No source of contract addresses was configured and the default file is missing.
    #[error(
        "no contract addresses for chain {chain_id}: pass --registry <ADDRESS> or --deployment <FILE> (the default {} does not exist; `autonet deploy` writes it)",
        path.display()
    )]
    NoContracts {
        /// The chain the node serves.
        chain_id: u64,
        /// The default file that was looked for.
        path: PathBuf,
    },
    /// A transaction failed (its revert decoded), with advice when there is some.
    #[error("{action} failed: {source}{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Tx {
        /// What was attempted, e.g. `staking 1 ATN as solver`.
        action: String,
        /// The transaction error (boxed: it is large).
        source: Box<TxError>,
        /// What the operator can do about it.
        hint: Option<String>,
    },
    /// A read-only contract call reverted with a known error.
    #[error("reading {what}: {revert}")]
    ReadReverted {
        /// What was read.
        what: String,
        /// The decoded error.
        revert: DecodedRevert,
    },
    /// A read-only contract call failed.
    #[error("reading {what}: {source}")]
    Read {
        /// What was read.
        what: String,
        /// The error (boxed: it is large).
        source: Box<alloy::contract::Error>,
    },
    /// A plain RPC request failed.
    #[error("reading {what} from the node: {source}")]
    Rpc {
        /// What was read.
        what: &'static str,
        /// The error.
        source: TransportError,
    },
    /// The operator's input is inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// forge is not installed.
    #[error("{} not found: run `make setup` in the repository (or pass --repo <DIR>)", .0.display())]
    ForgeMissing(PathBuf),
    /// forge could not be started.
    #[error("running forge: {0}")]
    ForgeIo(#[source] std::io::Error),
    /// The deploy script failed.
    #[error("forge script script/Deploy.s.sol failed ({0}); its output is above")]
    ForgeFailed(std::process::ExitStatus),
}

impl From<DiscoveryError> for CommandError {
    fn from(e: DiscoveryError) -> Self {
        Self::Discovery(Box::new(e))
    }
}

impl CommandError {
    /// Wraps a transaction error with what was attempted.
    pub fn tx(action: impl Into<String>, source: TxError) -> Self {
        Self::tx_with_hint(action, source, None)
    }

    /// Wraps a transaction error with what was attempted and advice for the operator.
    pub fn tx_with_hint(action: impl Into<String>, source: TxError, hint: Option<String>) -> Self {
        Self::Tx {
            action: action.into(),
            source: Box::new(source),
            hint,
        }
    }

    /// Wraps a view-call error, decoding a revert into its custom error.
    pub fn read(what: impl Into<String>, source: alloy::contract::Error) -> Self {
        let what = what.into();
        match source
            .as_revert_data()
            .and_then(|data| decode_revert(&data, None))
        {
            Some(revert) => Self::ReadReverted { what, revert },
            None => Self::Read {
                what,
                source: Box::new(source),
            },
        }
    }
}

/// What a command prints: text for people, JSON for scripts (`--json`).
#[derive(Debug, Clone)]
pub struct Report {
    /// Human-readable lines.
    pub text: String,
    /// The same facts as one JSON value.
    pub json: Value,
}

impl Report {
    /// Prints the report on stdout in the chosen form. A reader that stops early (`autonet status
    /// | head`) is not an error: the rest is dropped quietly, as other command-line tools do.
    pub fn print(&self, json: bool) {
        let body = if json {
            serde_json::to_string_pretty(&self.json).expect("a Value always serializes")
        } else {
            self.text.trim_end().to_owned()
        };
        let mut out = std::io::stdout().lock();
        if let Err(e) = write_report(&mut out, &body)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            eprintln!("error: printing the report: {e}");
        }
    }
}

/// Writes `body` and a newline in one write, then flushes.
fn write_report(out: &mut impl std::io::Write, body: &str) -> std::io::Result<()> {
    let mut all = String::with_capacity(body.len() + 1);
    all.push_str(body);
    all.push('\n');
    out.write_all(all.as_bytes())?;
    out.flush()
}

/// A connected provider and the deployment it talks to.
pub struct Context {
    /// The effective configuration.
    pub config: EffectiveConfig,
    /// A signing provider (read-only commands without a key get a throwaway signer that is never
    /// used to sign).
    pub provider: ChainProvider,
    /// Every contract address.
    pub contracts: Contracts,
    /// The chain the node serves.
    pub chain_id: u64,
    /// How transactions are confirmed.
    pub tx: TxOptions,
}

impl Context {
    /// Connects to the configured node and finds the contracts.
    pub async fn connect(config: EffectiveConfig) -> Result<Self, CommandError> {
        let signer = config
            .signer
            .clone()
            .unwrap_or_else(PrivateKeySigner::random);
        let mut provider_config = ProviderConfig::new(&config.rpc_url);
        provider_config.max_retries = 3;
        let provider = connect(&provider_config, signer).await?;
        let chain_id = provider.get_chain_id().await.map_err(ProviderError::from)?;
        let contracts = match &config.contracts {
            ContractsSource::Registry(registry) => discover_contracts(&provider, *registry).await?,
            ContractsSource::Deployment(path) => {
                verify_deployment(&provider, &Deployment::load(path)?).await?
            }
            ContractsSource::DefaultDeploymentsDir => {
                let path = Deployment::path_for_chain("deployments", chain_id);
                if !path.exists() {
                    return Err(CommandError::NoContracts { chain_id, path });
                }
                let deployment = Deployment::load_for_chain("deployments", chain_id)?;
                verify_deployment(&provider, &deployment).await?
            }
        };
        tracing::debug!(chain_id, registry = %contracts.registry, "contracts discovered");
        Ok(Self {
            config,
            provider,
            contracts,
            chain_id,
            tx: TxOptions::default().with_timeout(Duration::from_secs(120)),
        })
    }

    /// The operator's address (requires `--account` or `AUTONET_PRIVATE_KEY`).
    pub fn me(&self) -> Result<Address, CommandError> {
        Ok(self.config.require_signer()?.address())
    }

    /// The latest block's number and timestamp (the chain's "now").
    pub async fn head(&self) -> Result<(u64, u64), CommandError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|source| CommandError::Rpc {
                what: "the latest block",
                source,
            })?
            .ok_or_else(|| CommandError::Invalid("the node returned no latest block".into()))?;
        Ok((block.header.number, block.header.timestamp))
    }
}

#[cfg(test)]
mod report_tests {
    use super::write_report;

    /// A writer whose reader has gone away after the first write.
    struct ClosedAfterOne(usize);

    impl std::io::Write for ClosedAfterOne {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += 1;
            if self.0 > 1 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_report_is_one_write_with_its_newline() {
        let mut out = ClosedAfterOne(0);
        write_report(&mut out, "line 1\nline 2").unwrap();
        assert_eq!(out.0, 1);
        let mut buf = Vec::new();
        write_report(&mut buf, "a\nb").unwrap();
        assert_eq!(buf, b"a\nb\n");
    }
}
