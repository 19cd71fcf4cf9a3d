//! Contract discovery.
//!
//! This module owns finding the Autonet contracts on a chain: from the Registry's
//! `contract.<Name>` entries ([`discover_contracts`]), or from a deployments file checked against
//! the chain ([`verify_deployment`]). It only reads; it must not write Registry entries (that is
//! governance's job, through the Timelock).

use std::collections::BTreeMap;

use alloy::primitives::Address;
use alloy::providers::Provider;
use autonet_bindings::{Contracts, DecodedRevert, Deployment, Registry, decode_revert};

use crate::provider::{ProviderError, check_chain_id};

/// Errors discovering or verifying contract addresses.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The Registry refused the lookup (e.g. `RegistryKeyNotSet`).
    #[error("Registry at {registry} has no usable {key:?}: {revert}")]
    Reverted {
        /// The Registry.
        registry: Address,
        /// The key looked up.
        key: String,
        /// The decoded error.
        revert: DecodedRevert,
    },
    /// The lookup failed for a transport or decoding reason.
    #[error("reading {key:?} from the Registry at {registry}: {source}")]
    Call {
        /// The Registry.
        registry: Address,
        /// The key looked up.
        key: String,
        /// The error.
        source: alloy::contract::Error,
    },
    /// An address has no code on this chain.
    #[error("{name} at {address} has no code")]
    NoCode {
        /// The contract name.
        name: &'static str,
        /// Its address.
        address: Address,
    },
    /// The Registry and the deployments file disagree.
    #[error("{name}: the deployments file says {in_file}, the Registry says {in_registry}")]
    Mismatch {
        /// The contract name.
        name: &'static str,
        /// The address in the file.
        in_file: Address,
        /// The address in the Registry.
        in_registry: Address,
    },
    /// Reading code or the chain id failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Reads `contract.<Name>` from the Registry at `registry` for every contract in
/// [`Contracts::NAMES`] and checks that each address holds code.
pub async fn discover_contracts<P: Provider>(
    provider: &P,
    registry: Address,
) -> Result<Contracts, DiscoveryError> {
    let instance = Registry::new(registry, provider);
    let mut found = BTreeMap::new();
    for name in Contracts::NAMES {
        let key = Contracts::registry_key(name);
        let address =
            instance
                .getAddress(key.clone())
                .call()
                .await
                .map_err(|source| {
                    match source
                        .as_revert_data()
                        .and_then(|d| decode_revert(&d, Some("Registry")))
                    {
                        Some(revert) => DiscoveryError::Reverted {
                            registry,
                            key: key.clone(),
                            revert,
                        },
                        None => DiscoveryError::Call {
                            registry,
                            key: key.clone(),
                            source,
                        },
                    }
                })?;
        let code = provider
            .get_code_at(address)
            .await
            .map_err(ProviderError::from)?;
        if code.is_empty() {
            return Err(DiscoveryError::NoCode { name, address });
        }
        found.insert(name, address);
    }
    Ok(
        Contracts::try_from_fn(|name| Ok::<_, std::convert::Infallible>(found[name]))
            .unwrap_or_else(|never| match never {}),
    )
}

/// Checks a deployments file against the chain: the chain id, and that the Registry it names
/// lists exactly the file's addresses. Returns the addresses.
pub async fn verify_deployment<P: Provider>(
    provider: &P,
    deployment: &Deployment,
) -> Result<Contracts, DiscoveryError> {
    check_chain_id(provider, deployment.chain_id).await?;
    let on_chain = discover_contracts(provider, deployment.contracts.registry).await?;
    for ((name, in_file), (_, in_registry)) in deployment.contracts.iter().zip(on_chain.iter()) {
        if in_file != in_registry {
            return Err(DiscoveryError::Mismatch {
                name,
                in_file,
                in_registry,
            });
        }
    }
    // The x402 channel pair is not a Registry entry (clients find it at its canonical address):
    // the file's deployed copies are kept as they are.
    let mut on_chain = on_chain;
    on_chain.batch_settlement = deployment.contracts.batch_settlement;
    on_chain.deposit_collector = deployment.contracts.deposit_collector;
    Ok(on_chain)
}
