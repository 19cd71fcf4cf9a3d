//! The `deployments/<chainId>.json` file written by `script/Deploy.s.sol`.
//!
//! This module owns the file format (`{chainId, deployBlock, version, commit, contracts}`) and
//! the typed address book [`Contracts`]. It only reads and writes JSON; it must not talk to a
//! chain (discovery through the Registry lives in `autonet-chain`).

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// Errors loading a deployments file.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The file could not be read.
    #[error("reading deployment file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid deployment.
    #[error("parsing deployment file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The file describes another chain than the one asked for.
    #[error("deployment file {path} is for chain {found}, expected {expected}")]
    ChainMismatch {
        /// The file.
        path: PathBuf,
        /// The chain id asked for.
        expected: u64,
        /// The chain id in the file.
        found: u64,
    },
    /// A contract name is not one of [`Contracts::NAMES`].
    #[error("unknown contract name {0:?}")]
    UnknownContract(String),
}

/// One deployment of every Autonet contract on one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The chain the contracts live on.
    pub chain_id: u64,
    /// The block number at which the deployment started: event scans begin here.
    pub deploy_block: u64,
    /// The protocol version (`Deploy.VERSION`).
    pub version: String,
    /// The git commit the contracts were built from.
    pub commit: String,
    /// The deployed addresses.
    pub contracts: Contracts,
}

impl Deployment {
    /// Reads a deployments file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DeploymentError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| DeploymentError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads `<dir>/<chain_id>.json` and checks that it is for `chain_id`.
    pub fn load_for_chain(dir: impl AsRef<Path>, chain_id: u64) -> Result<Self, DeploymentError> {
        let path = Self::path_for_chain(dir, chain_id);
        let deployment = Self::load(&path)?;
        if deployment.chain_id != chain_id {
            return Err(DeploymentError::ChainMismatch {
                path,
                expected: chain_id,
                found: deployment.chain_id,
            });
        }
        Ok(deployment)
    }

    /// The conventional path of the file for `chain_id` inside `dir` (`deployments/`).
    pub fn path_for_chain(dir: impl AsRef<Path>, chain_id: u64) -> PathBuf {
        dir.as_ref().join(format!("{chain_id}.json"))
    }
}

/// The address of every Autonet contract, keyed in JSON by contract name (as in the Registry's
/// `contract.<Name>` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Contracts {
    #[serde(rename = "ATNToken")]
    pub atn_token: Address,
    #[serde(rename = "Registry")]
    pub registry: Address,
    #[serde(rename = "TimelockController")]
    pub timelock: Address,
    #[serde(rename = "AutonetGovernor")]
    pub governor: Address,
    #[serde(rename = "ParticipantStaking")]
    pub staking: Address,
    #[serde(rename = "AgentIdentity")]
    pub identity: Address,
    #[serde(rename = "Project")]
    pub project: Address,
    #[serde(rename = "InferenceMarket")]
    pub market: Address,
    #[serde(rename = "Rewards")]
    pub rewards: Address,
    #[serde(rename = "TaskManager")]
    pub task_manager: Address,
    #[serde(rename = "BlsSignerRegistry")]
    pub bls_signers: Address,
    #[serde(rename = "ModelShardRegistry")]
    pub shard_registry: Address,
    #[serde(rename = "ShardProviders")]
    pub shard_providers: Address,
    /// The x402 payment-channel contract as deployed (dev chains copy its code to the canonical
    /// address the official client uses); absent in deployments made before it existed. Not a
    /// Registry entry and not in [`Contracts::NAMES`].
    #[serde(
        rename = "BatchSettlement",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub batch_settlement: Option<Address>,
    /// Its EIP-3009 deposit collector as deployed (bound to the canonical channel address).
    #[serde(
        rename = "Erc3009DepositCollector",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub deposit_collector: Option<Address>,
}

impl Contracts {
    /// Every contract name, in deploy order (the Registry key is `contract.<Name>`).
    pub const NAMES: [&'static str; 13] = [
        "ATNToken",
        "Registry",
        "TimelockController",
        "AutonetGovernor",
        "ParticipantStaking",
        "AgentIdentity",
        "Project",
        "InferenceMarket",
        "Rewards",
        "TaskManager",
        "BlsSignerRegistry",
        "ModelShardRegistry",
        "ShardProviders",
    ];

    /// The Registry key under which the deploy script records `name`.
    pub fn registry_key(name: &str) -> String {
        format!("contract.{name}")
    }

    /// Builds the address book by asking `lookup` for every name in [`Contracts::NAMES`].
    pub fn try_from_fn<E>(mut lookup: impl FnMut(&str) -> Result<Address, E>) -> Result<Self, E> {
        Ok(Self {
            atn_token: lookup("ATNToken")?,
            registry: lookup("Registry")?,
            timelock: lookup("TimelockController")?,
            governor: lookup("AutonetGovernor")?,
            staking: lookup("ParticipantStaking")?,
            identity: lookup("AgentIdentity")?,
            project: lookup("Project")?,
            market: lookup("InferenceMarket")?,
            rewards: lookup("Rewards")?,
            task_manager: lookup("TaskManager")?,
            bls_signers: lookup("BlsSignerRegistry")?,
            shard_registry: lookup("ModelShardRegistry")?,
            shard_providers: lookup("ShardProviders")?,
            batch_settlement: None,
            deposit_collector: None,
        })
    }

    /// The address of the contract called `name`.
    pub fn get(&self, name: &str) -> Result<Address, DeploymentError> {
        Ok(match name {
            "ATNToken" => self.atn_token,
            "Registry" => self.registry,
            "TimelockController" => self.timelock,
            "AutonetGovernor" => self.governor,
            "ParticipantStaking" => self.staking,
            "AgentIdentity" => self.identity,
            "Project" => self.project,
            "InferenceMarket" => self.market,
            "Rewards" => self.rewards,
            "TaskManager" => self.task_manager,
            "BlsSignerRegistry" => self.bls_signers,
            "ModelShardRegistry" => self.shard_registry,
            "ShardProviders" => self.shard_providers,
            other => return Err(DeploymentError::UnknownContract(other.to_owned())),
        })
    }

    /// `(name, address)` for every contract, in deploy order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Address)> + '_ {
        Self::NAMES
            .iter()
            .map(move |name| (*name, self.get(name).expect("NAMES are all known")))
    }

    /// The name of the contract at `address`, if it is one of ours.
    pub fn name_of(&self, address: Address) -> Option<&'static str> {
        self.iter().find(|(_, a)| *a == address).map(|(n, _)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "chainId": 31337,
      "commit": "abc",
      "contracts": {
        "ATNToken": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "AgentIdentity": "0xa513E6E4b8f2a923D98304ec87F64353C4D5C853",
        "AutonetGovernor": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
        "BlsSignerRegistry": "0x9A676e781A523b5d0C0e43731313A708CB607508",
        "InferenceMarket": "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318",
        "ModelShardRegistry": "0x0DCd1Bf9A1b36cE34237eEaFef220932846BCD82",
        "ParticipantStaking": "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
        "Project": "0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6",
        "Registry": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
        "Rewards": "0x610178dA211FEF7D417bC0e6FeD39F05609AD788",
        "ShardProviders": "0x959922bE3CAee4b8Cd9a407cc3ac1C251C2007B1",
        "TaskManager": "0xB7f8BC63BbcaD18155201308C8f3540b07f84F5e",
        "TimelockController": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
      },
      "deployBlock": 0,
      "version": "0.1.0"
    }"#;

    #[test]
    fn parses_the_deploy_script_format() {
        let d: Deployment = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(d.chain_id, 31337);
        assert_eq!(d.version, "0.1.0");
        assert_eq!(d.contracts.iter().count(), 13);
        let registry: Address = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
            .parse()
            .unwrap();
        assert_eq!(d.contracts.get("Registry").unwrap(), registry);
        assert_eq!(d.contracts.name_of(registry), Some("Registry"));
        assert!(d.contracts.get("Nope").is_err());
        let back: Deployment = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn load_for_chain_checks_the_chain_id() {
        let dir = std::env::temp_dir().join(format!("autonet-bindings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("5.json"), SAMPLE).unwrap();
        let err = Deployment::load_for_chain(&dir, 5).unwrap_err();
        assert!(
            matches!(err, DeploymentError::ChainMismatch { found: 31337, .. }),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
