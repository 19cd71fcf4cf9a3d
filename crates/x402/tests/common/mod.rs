//! Shared by the anvil tests: wallets, transaction options and a project for sale.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use anyhow::Result;
use autonet_bindings::Project;
use autonet_bindings::project::IProject::{CreateProjectParams, RewardSplit, Windows};
use autonet_chain::{ChainProvider, ProviderConfig, TxOptions, connect, send_and_confirm};
use autonet_test_utils::TestChain;

/// The anvil account that creates projects.
pub const OWNER: usize = 2;

/// A nonce-safe provider sending from anvil account `account`.
pub async fn provider_for(chain: &TestChain, account: usize) -> Result<ChainProvider> {
    let config = ProviderConfig::new(chain.rpc_url()).with_chain_id(chain.chain_id());
    Ok(connect(&config, chain.signer(account)).await?)
}

/// Transaction options of the tests.
pub fn opts() -> TxOptions {
    TxOptions::default().with_timeout(Duration::from_secs(30))
}

/// A project owned by `OWNER` selling inference at `price`.
pub async fn create_project(chain: &TestChain, price: U256) -> Result<U256> {
    let p = provider_for(chain, OWNER).await?;
    let project = Project::new(chain.deployment.contracts.project, &p);
    let params = CreateProjectParams {
        modelSpecHash: B256::repeat_byte(1),
        modelURI: "ipfs://model".into(),
        datasetRoot: B256::repeat_byte(2),
        initialModelRoot: B256::repeat_byte(3),
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
    };
    let created =
        send_and_confirm::<Project::ProjectCreated, _, _>(&project.createProject(params), &opts())
            .await?;
    Ok(created.event.projectId)
}
