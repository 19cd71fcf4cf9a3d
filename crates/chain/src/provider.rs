//! Provider construction.
//!
//! This module owns the one way to build a provider: HTTP transport, a retry/backoff layer for
//! transient transport failures (rate limits, unavailable servers, refused or timed-out
//! connections), the recommended fillers (nonce, gas, chain id) and a local signer, type-erased
//! into [`ChainProvider`]; plus the check that the node serves the chain a deployment is for. It
//! must not send transactions or decode contract data.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest;
use alloy::transports::layers::{RateLimitRetryPolicy, RetryBackoffLayer};
use alloy::transports::{TransportError, TransportErrorKind};

/// The provider every Autonet component uses (Ethereum network, type-erased).
pub type ChainProvider = DynProvider;

/// Errors building a provider or checking the chain it serves.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The RPC URL does not parse.
    #[error("invalid RPC URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The chain id could not be read.
    #[error("reading the chain id: {0}")]
    Transport(#[from] TransportError),
    /// The node serves another chain than expected.
    #[error("RPC serves chain {actual}, the deployment is for chain {expected}")]
    ChainIdMismatch {
        /// The chain id of the deployment.
        expected: u64,
        /// The chain id the node reported.
        actual: u64,
    },
}

/// How to reach the node and how hard to retry.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The HTTP JSON-RPC endpoint.
    pub rpc_url: String,
    /// Retries of a failed request after the first attempt (transient errors only).
    pub max_retries: u32,
    /// Base delay between retries.
    pub initial_backoff: Duration,
    /// Compute units per second the endpoint allows (alloy's rate budget for backoff).
    pub compute_units_per_second: u64,
    /// The chain the node must serve (usually `Deployment::chain_id`); checked on connect.
    pub expected_chain_id: Option<u64>,
}

impl ProviderConfig {
    /// Defaults for `rpc_url`: 10 retries, 200 ms base backoff, no chain-id check.
    pub fn new(rpc_url: impl Into<String>) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            max_retries: 10,
            initial_backoff: Duration::from_millis(200),
            compute_units_per_second: 10_000,
            expected_chain_id: None,
        }
    }

    /// Requires the node to serve `chain_id`.
    pub fn with_chain_id(mut self, chain_id: u64) -> Self {
        self.expected_chain_id = Some(chain_id);
        self
    }
}

/// Whether a transport error is worth retrying: alloy's rate-limit / unavailable rules, plus
/// connections that were refused, reset or timed out (the node restarting).
pub fn is_transient(error: &TransportError) -> bool {
    match error {
        TransportError::Transport(TransportErrorKind::Custom(inner)) => inner
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|e| e.is_connect() || e.is_timeout()),
        _ => false,
    }
}

/// Builds a signing provider for `config`, checks the chain id if one is expected.
///
/// Note: a retried `eth_sendRawTransaction` re-sends the same signed bytes, so a retry after a
/// timeout can at worst be answered "already known"; it cannot double-spend.
pub async fn connect(
    config: &ProviderConfig,
    signer: PrivateKeySigner,
) -> Result<ChainProvider, ProviderError> {
    let url = config
        .rpc_url
        .parse::<reqwest::Url>()
        .map_err(|e| ProviderError::InvalidUrl {
            url: config.rpc_url.clone(),
            reason: e.to_string(),
        })?;
    let policy = RateLimitRetryPolicy::default().or(is_transient);
    let retry = RetryBackoffLayer::new_with_policy(
        config.max_retries,
        config.initial_backoff.as_millis() as u64,
        config.compute_units_per_second,
        policy,
    );
    let client = RpcClient::builder().layer(retry).http(url);
    // Nonces are read from the node (pending count) for every transaction: the default cached
    // manager reserves a nonce before broadcast, so one failed gas estimation (a race lost to
    // another agent) would leave every later transaction queued behind a gap forever.
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_client(client)
        .erased();
    if let Some(expected) = config.expected_chain_id {
        check_chain_id(&provider, expected).await?;
    }
    Ok(provider)
}

/// Fails unless `provider` serves chain `expected`.
pub async fn check_chain_id(provider: &impl Provider, expected: u64) -> Result<(), ProviderError> {
    let actual = provider.get_chain_id().await?;
    if actual != expected {
        return Err(ProviderError::ChainIdMismatch { expected, actual });
    }
    Ok(())
}
