//! Agent identity (ERC-8004): every node registers once in the deployment's `AgentIdentity`
//! registry with an `agentURI` that describes its endpoints, and peers find each other there
//! instead of in static configuration.
//!
//! The `agentURI` is a `data:application/json;base64,…` URI carrying the ERC-8004 registration
//! file, so that it is readable from the chain alone:
//!
//! ```json
//! {"type": "https://eips.ethereum.org/EIPS/eip-8004#registration-v1",
//!  "name": "autonet coordinator 0x…", "description": "…",
//!  "endpoints": [{"name": "shards", "endpoint": "http://…"},
//!                {"name": "bls-attestation", "endpoint": "http://…/bls/attestations/"},
//!                {"name": "status", "endpoint": "http://…/"}, …],
//!  "supportedTrust": ["crypto-economic"],
//!  "autonet": {"role": "coordinator", "projectId": 1, "chainId": 31337}}
//! ```
//!
//! An agent's id is found from the registry's `Registered` events (the owner is indexed) and its
//! current URI from `tokenURI`, so a node that moves re-announces with `setAgentURI`.
//!
//! The role agents (`autonet-agents`) and the inference node (`autonet-inference`) register
//! through [`ensure_registered`]; coordinators' BLS signatures are found with [`find_endpoint`].
#![warn(missing_docs)]

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use autonet_bindings::AgentIdentity;
use autonet_chain::{TxOptions, send_and_confirm};
use base64::Engine;
use serde::{Deserialize, Serialize};
use tracing::info;

/// The registration-file type of ERC-8004.
pub const REGISTRATION_TYPE: &str = "https://eips.ethereum.org/EIPS/eip-8004#registration-v1";
/// The prefix of the data URIs this crate writes.
const DATA_PREFIX: &str = "data:application/json;base64,";

/// Endpoint names used across the network.
pub mod endpoints {
    /// The shard server (`/shards/…`, `/manifests/…`).
    pub const SHARDS: &str = "shards";
    /// A coordinator's BLS signatures (`…/bls/attestations/{root}`).
    pub const BLS_ATTESTATION: &str = "bls-attestation";
    /// The paid inference route (x402).
    pub const INFERENCE: &str = "inference";
    /// The status page.
    pub const STATUS: &str = "status";
    /// Prometheus metrics.
    pub const METRICS: &str = "metrics";
}

/// Errors of the identity layer.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A chain read or transaction.
    #[error("{0}")]
    Chain(String),
    /// An agentURI that is not a registration file this node can read.
    #[error("agentURI: {0}")]
    Uri(String),
}

/// One named endpoint of a registration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// What it is (see [`endpoints`]).
    pub name: String,
    /// Where.
    pub endpoint: String,
}

/// Autonet's own part of the registration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutonetInfo {
    /// The node's role (`proposer`, `solver`, `coordinator`, `aggregator`, `inference`).
    pub role: String,
    /// The project it works on.
    pub project_id: u64,
    /// The chain.
    pub chain_id: u64,
}

/// The ERC-8004 registration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// Always [`REGISTRATION_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable name.
    pub name: String,
    /// What the agent does.
    pub description: String,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Trust models it supports (stake-secured).
    #[serde(default)]
    pub supported_trust: Vec<String>,
    /// Autonet's fields.
    pub autonet: AutonetInfo,
}

impl Registration {
    /// The registration of a node with HTTP base URL `base` (no trailing slash needed) offering
    /// `names` (paths are derived from each name).
    pub fn new(info: AutonetInfo, me: Address, base: &str, names: &[&str]) -> Self {
        let base = base.trim_end_matches('/');
        let endpoints = names
            .iter()
            .map(|&name| Endpoint {
                name: name.to_string(),
                endpoint: match name {
                    endpoints::BLS_ATTESTATION => format!("{base}/bls/attestations/"),
                    endpoints::INFERENCE => format!("{base}/v1/generate"),
                    endpoints::METRICS => format!("{base}/metrics"),
                    endpoints::STATUS => format!("{base}/"),
                    _ => base.to_string(),
                },
            })
            .chain(std::iter::once(Endpoint {
                name: "agentWallet".into(),
                endpoint: format!("eip155:{}:{me}", info.chain_id),
            }))
            .collect();
        Self {
            kind: REGISTRATION_TYPE.into(),
            name: format!("autonet {} {me}", info.role),
            description: format!(
                "Autonet {} node of project {} on chain {}",
                info.role, info.project_id, info.chain_id
            ),
            endpoints,
            supported_trust: vec!["crypto-economic".into()],
            autonet: info,
        }
    }

    /// The endpoint called `name`.
    pub fn endpoint(&self, name: &str) -> Option<&str> {
        self.endpoints
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.endpoint.as_str())
    }

    /// The `agentURI` carrying this file (`data:application/json;base64,…`).
    pub fn to_uri(&self) -> String {
        let json = serde_json::to_vec(self).expect("a registration serializes");
        format!(
            "{DATA_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(json)
        )
    }

    /// Reads a registration back from an `agentURI`.
    pub fn from_uri(uri: &str) -> Result<Self, IdentityError> {
        let Some(payload) = uri.strip_prefix(DATA_PREFIX) else {
            return Err(IdentityError::Uri(format!(
                "expected a {DATA_PREFIX}… URI, got {:?}",
                uri.chars().take(40).collect::<String>()
            )));
        };
        let json = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(|e| IdentityError::Uri(format!("base64: {e}")))?;
        let r: Registration =
            serde_json::from_slice(&json).map_err(|e| IdentityError::Uri(e.to_string()))?;
        if r.kind != REGISTRATION_TYPE {
            return Err(IdentityError::Uri(format!("unknown type {:?}", r.kind)));
        }
        Ok(r)
    }
}

/// The agent id `owner` registered, and its current `agentURI` (the last registration that the
/// owner still holds), scanning `Registered` events from `from_block`.
pub async fn agent_of<P: Provider + Clone>(
    provider: &P,
    registry: Address,
    owner: Address,
    from_block: u64,
) -> Result<Option<(U256, String)>, IdentityError> {
    let chain = |e: String| IdentityError::Chain(e);
    let head = provider
        .get_block_number()
        .await
        .map_err(|e| chain(format!("reading the head: {e}")))?;
    let filter = Filter::new()
        .address(registry)
        .event_signature(AgentIdentity::Registered::SIGNATURE_HASH)
        .topic2(owner.into_word());
    let logs = autonet_chain::scan_logs(provider, &filter, from_block, head)
        .await
        .map_err(|e| chain(format!("scanning agent registrations: {e}")))?;
    let found = logs
        .iter()
        .filter_map(|log| log.log_decode::<AgentIdentity::Registered>().ok())
        .map(|e| e.inner.data.agentId)
        .next_back();
    let Some(id) = found else { return Ok(None) };
    let identity = AgentIdentity::new(registry, provider.clone());
    let holder = identity
        .ownerOf(id)
        .call()
        .await
        .map_err(|e| chain(format!("reading the owner of agent {id}: {e}")))?;
    if holder != owner {
        return Ok(None);
    }
    let uri = identity
        .tokenURI(id)
        .call()
        .await
        .map_err(|e| chain(format!("reading the agentURI of agent {id}: {e}")))?;
    Ok(Some((id, uri)))
}

/// The registration `owner` published, if any and readable.
pub async fn registration_of<P: Provider + Clone>(
    provider: &P,
    registry: Address,
    owner: Address,
    from_block: u64,
) -> Result<Option<(U256, Registration)>, IdentityError> {
    Ok(
        match agent_of(provider, registry, owner, from_block).await? {
            Some((id, uri)) => Registration::from_uri(&uri).ok().map(|r| (id, r)),
            None => None,
        },
    )
}

/// Registers `registration` for the provider's wallet `me`, or updates its URI when the agent
/// exists with a different one; returns the agent id.
pub async fn ensure_registered<P: Provider + Clone>(
    provider: &P,
    registry: Address,
    me: Address,
    from_block: u64,
    registration: &Registration,
    tx: &TxOptions,
) -> Result<U256, IdentityError> {
    let uri = registration.to_uri();
    let identity = AgentIdentity::new(registry, provider.clone());
    let chain = |what: &str, e: String| IdentityError::Chain(format!("{what}: {e}"));
    match agent_of(provider, registry, me, from_block).await? {
        Some((id, current)) if current == uri => {
            info!(agent_id = %id, "agent identity already registered");
            Ok(id)
        }
        Some((id, _)) => {
            send_and_confirm::<AgentIdentity::URIUpdated, _, _>(&identity.setAgentURI(id, uri), tx)
                .await
                .map_err(|e| chain("updating the agentURI", e.to_string()))?;
            info!(agent_id = %id, "agent identity updated with this node's endpoints");
            Ok(id)
        }
        None => {
            let c =
                send_and_confirm::<AgentIdentity::Registered, _, _>(&identity.register_2(uri), tx)
                    .await
                    .map_err(|e| chain("registering the agent identity", e.to_string()))?;
            info!(agent_id = %c.event.agentId, "agent identity registered (ERC-8004)");
            Ok(c.event.agentId)
        }
    }
}

/// The base URL of `owner`'s endpoint `name`, from its identity registration.
pub async fn find_endpoint<P: Provider + Clone>(
    provider: &P,
    registry: Address,
    owner: Address,
    from_block: u64,
    name: &str,
) -> Result<Option<String>, IdentityError> {
    Ok(registration_of(provider, registry, owner, from_block)
        .await?
        .and_then(|(_, r)| r.endpoint(name).map(str::to_string)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> AutonetInfo {
        AutonetInfo {
            role: "coordinator".into(),
            project_id: 1,
            chain_id: 31337,
        }
    }

    #[test]
    fn a_registration_round_trips_through_its_data_uri() {
        let me = Address::repeat_byte(7);
        let r = Registration::new(
            info(),
            me,
            "http://127.0.0.1:9000/",
            &[
                endpoints::SHARDS,
                endpoints::BLS_ATTESTATION,
                endpoints::STATUS,
            ],
        );
        let uri = r.to_uri();
        assert!(uri.starts_with("data:application/json;base64,"));
        let back = Registration::from_uri(&uri).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.endpoint("shards"), Some("http://127.0.0.1:9000"));
        assert_eq!(
            back.endpoint("bls-attestation"),
            Some("http://127.0.0.1:9000/bls/attestations/")
        );
        assert_eq!(
            back.endpoint("agentWallet").unwrap(),
            format!("eip155:31337:{me}")
        );
        assert_eq!(back.endpoint("inference"), None);
        let json: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(uri.strip_prefix(DATA_PREFIX).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["type"], REGISTRATION_TYPE);
        assert_eq!(json["supportedTrust"][0], "crypto-economic");
        assert_eq!(json["autonet"]["projectId"], 1);
    }

    #[test]
    fn foreign_or_damaged_uris_are_refused_with_the_reason() {
        let e = Registration::from_uri("https://example.invalid/agent.json").unwrap_err();
        assert!(e.to_string().contains("expected a data:"), "{e}");
        let e = Registration::from_uri("data:application/json;base64,!!!").unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
        let other = format!(
            "{DATA_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(
                br#"{"type":"x","name":"","description":"","endpoints":[],"autonet":{"role":"a","projectId":1,"chainId":1}}"#
            )
        );
        let e = Registration::from_uri(&other).unwrap_err();
        assert!(e.to_string().contains("unknown type"), "{e}");
    }
}
