//! Shared by the anvil tests: wallets, transaction options and a project for sale.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use anyhow::Result;
use autonet_bindings::Project;
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
    let params = autonet_test_utils::project_params(
        B256::repeat_byte(1),
        "ipfs://model".into(),
        B256::repeat_byte(3),
        price,
    );
    let created =
        send_and_confirm::<Project::ProjectCreated, _, _>(&project.createProject(params), &opts())
            .await?;
    Ok(created.event.projectId)
}
