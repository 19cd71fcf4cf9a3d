//! Test utilities: a real anvil with the real Autonet contracts.
//!
//! This crate owns [`TestChain`]: it spawns `node_modules/.bin/anvil` (installed by
//! `make setup`) on 127.0.0.1 with a chain id unique to the test, deploys every contract with
//! the project's own `script/Deploy.s.sol` through `forge script --broadcast`, loads the
//! `deployments/<chainId>.json` it wrote and deletes it (and forge's broadcast record) when
//! dropped. It must not be a dependency of production code and must not fake the chain: tests
//! that need contracts get the ones `make deploy-local` deploys.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use alloy::node_bindings::{Anvil, AnvilInstance, NodeError};
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use autonet_bindings::{Deployment, DeploymentError};
use autonet_chain::foundry::DeployError;

pub use alloy::rpc::types::anvil::{ReorgOptions, TransactionData};

/// Errors starting a test chain.
#[derive(Debug, thiserror::Error)]
pub enum TestChainError {
    /// A Foundry binary is missing.
    #[error("{} not found: run `make setup` (it installs anvil/forge from npm into node_modules/.bin)", .0.display())]
    MissingTool(PathBuf),
    /// anvil did not start.
    #[error("starting anvil: {0}")]
    Anvil(#[from] NodeError),
    /// forge could not be run.
    #[error("running forge: {0}")]
    Io(#[from] std::io::Error),
    /// The deploy script failed.
    #[error("forge script script/Deploy.s.sol failed ({status}):\n{output}")]
    Deploy {
        /// forge's exit status.
        status: std::process::ExitStatus,
        /// forge's stdout and stderr.
        output: String,
    },
    /// The deployments file the script wrote is unusable.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
}

/// The repository root (where `foundry.toml` and `Cargo.toml` live).
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The path of a Foundry binary installed from npm (the native one, see
/// [`autonet_chain::foundry_tool_path`]), or [`TestChainError::MissingTool`].
pub fn foundry_tool(name: &str) -> Result<PathBuf, TestChainError> {
    let path = autonet_chain::foundry_tool_path(&repo_root(), name);
    if path.exists() {
        Ok(path)
    } else {
        Err(TestChainError::MissingTool(path))
    }
}

/// anvil's first development key (the deployer); never use it on a real network.
pub const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

static NEXT_CHAIN: AtomicU64 = AtomicU64::new(0);

/// A running anvil with every Autonet contract deployed by `script/Deploy.s.sol`.
pub struct TestChain {
    anvil: AnvilInstance,
    /// The deployments file written by the script.
    pub deployment: Deployment,
    root: PathBuf,
}

impl std::fmt::Debug for TestChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestChain")
            .field("rpc_url", &self.rpc_url())
            .field("deployment", &self.deployment)
            .finish()
    }
}

impl TestChain {
    /// Spawns anvil (unique chain id, random loopback port) and deploys the contracts with the
    /// devnet parameters.
    pub fn start() -> Result<Self, TestChainError> {
        let anvil_bin = foundry_tool("anvil")?;
        foundry_tool("forge")?;
        let root = repo_root();
        // Distinct per process and per test, away from 31337 (the developer's devnet file).
        let chain_id = 31_338
            + u64::from(std::process::id() % 100_000) * 1_000
            + NEXT_CHAIN.fetch_add(1, Ordering::Relaxed);
        let anvil = Anvil::at(anvil_bin)
            .host("127.0.0.1")
            .chain_id(chain_id)
            .timeout(30_000)
            // Recent states stay in memory; nothing is dumped under ~/.foundry/anvil/tmp.
            .args(["--max-persisted-states", "0"])
            .try_spawn()?;

        match autonet_chain::foundry::forge_deploy(
            &root,
            &anvil.endpoint(),
            DEPLOYER_KEY,
            chain_id,
            "test",
        ) {
            Ok(deployment) => Ok(Self {
                anvil,
                deployment,
                root,
            }),
            Err(e) => {
                cleanup(&root, chain_id);
                Err(match e {
                    DeployError::Spawn { source, .. } => TestChainError::Io(source),
                    DeployError::Failed { status, output } => {
                        TestChainError::Deploy { status, output }
                    }
                    DeployError::Deployment(e) => TestChainError::Deployment(e),
                })
            }
        }
    }

    /// The HTTP endpoint (`http://127.0.0.1:<port>`).
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.anvil.port())
    }

    /// The chain id of this anvil.
    pub fn chain_id(&self) -> u64 {
        self.deployment.chain_id
    }

    /// The `i`-th development account's signer (0 is the deployer and holds the ATN supply).
    pub fn signer(&self, i: usize) -> PrivateKeySigner {
        PrivateKeySigner::from(self.anvil.keys()[i].clone())
    }

    /// The `i`-th development account's address.
    pub fn address(&self, i: usize) -> Address {
        self.anvil.addresses()[i]
    }

    /// The anvil process.
    pub fn anvil(&self) -> &AnvilInstance {
        &self.anvil
    }
}

/// Removes what a deploy to `chain_id` left in the repository.
fn cleanup(root: &Path, chain_id: u64) {
    let _ = std::fs::remove_file(Deployment::path_for_chain(
        root.join("deployments"),
        chain_id,
    ));
    let _ = std::fs::remove_dir_all(root.join(format!("broadcast/Deploy.s.sol/{chain_id}")));
    // Only if empty: other scripts' records stay.
    let _ = std::fs::remove_dir(root.join("broadcast/Deploy.s.sol"));
    let _ = std::fs::remove_dir(root.join("broadcast"));
}

impl Drop for TestChain {
    fn drop(&mut self) {
        cleanup(&self.root, self.deployment.chain_id);
    }
}

/// Timing helpers of the `cargo bench` programs (harness-free benches print their own tables).
pub mod bench {
    use std::time::{Duration, Instant};

    /// The median duration of `reps` (at least one) runs of `f`.
    pub fn median(reps: usize, mut f: impl FnMut()) -> Duration {
        let mut times: Vec<Duration> = (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    }

    /// `bytes` processed in `d`, in MiB/s.
    pub fn mib_per_s(bytes: usize, d: Duration) -> f64 {
        bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
    }
}

/// A project of the tests: `spec_hash` and `model_uri` as given, initial model `initial_root`,
/// inference at `price` wei ATN, the 50/30/10/10 split, windows of 10 blocks, at most 4
/// solvers, 1 vote, rounds in sequence.
pub fn project_params(
    spec_hash: alloy::primitives::B256,
    model_uri: String,
    initial_root: alloy::primitives::B256,
    price: alloy::primitives::U256,
) -> autonet_bindings::project::IProject::CreateProjectParams {
    use autonet_bindings::project::IProject::{CreateProjectParams, RewardSplit, Windows};
    CreateProjectParams {
        modelSpecHash: spec_hash,
        modelURI: model_uri,
        datasetRoot: alloy::primitives::B256::repeat_byte(2),
        initialModelRoot: initial_root,
        inferencePrice: price,
        split: RewardSplit {
            solverBps: 5000,
            coordinatorBps: 3000,
            proposerBps: 1000,
            aggregatorBps: 1000,
        },
        windows: Windows {
            commit: 10,
            gtReveal: 10,
            solReveal: 10,
            voteCommit: 10,
            voteReveal: 10,
            publish: 10,
        },
        maxSolvers: 4,
        minVotes: 1,
        maxStaleness: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_says_to_run_make_setup() {
        let err = foundry_tool("no-such-foundry-tool").unwrap_err();
        assert!(err.to_string().contains("run `make setup`"), "{err}");
        assert!(
            foundry_tool("anvil").is_ok(),
            "anvil missing: run `make setup`"
        );
    }
}
