//! End to end on a real anvil with the real contracts (deployed by `script/Deploy.s.sol`
//! through `autonet-test-utils`): a payment signed by this crate's client to the node's payTo
//! (`InferenceMarket.paymentAddress(project, node)`) is verified, checked on chain, claimed in
//! the nonce store and settled through `InferenceMarket.settle`; replays, redirection to another
//! project or provider and front-run authorizations are refused with their x402 codes, and
//! front-run funds are collected for the offered project and node.

mod common;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result};
use autonet_bindings::{ATNToken, InferenceMarket};
use autonet_chain::{ChainProvider, send_and_confirm};
use autonet_test_utils::TestChain;
use autonet_x402::eip712::token_domain;
use autonet_x402::{
    ClaimOutcome, NonceStore, PaymentError, PaymentRequired, PaymentRequirements, PaymentSigner,
    PaymentState, ResourceInfo, VerifiedPayment, check_onchain, codes, collect_uncollected,
    encode_payment_signature, payment_address, send_settle, unix_now, verify_header,
};
use common::{create_project, opts, provider_for};

const PAYER: usize = 1;
const NODE: usize = 3;
const STRANGER: usize = 4;

fn price() -> U256 {
    U256::from(10u64).pow(U256::from(18))
}

/// The requirement an Autonet node offers (payTo = its payment address for the project), with
/// ATN's EIP-712 domain read from the chain.
async fn requirements(
    chain: &TestChain,
    p: &ChainProvider,
    pay_to: Address,
) -> Result<PaymentRequirements> {
    let c = &chain.deployment.contracts;
    let token = ATNToken::new(c.atn_token, p);
    let domain = token.eip712Domain().call().await?;
    let requirements = PaymentRequirements::exact_evm(
        chain.chain_id(),
        c.atn_token,
        pay_to,
        price(),
        120,
        &domain.name,
        &domain.version,
    );
    // The domain this crate builds is the token's.
    assert_eq!(
        (domain.name.as_str(), domain.version.as_str()),
        ("Autonet", "1")
    );
    assert_eq!(
        token_domain(&domain.name, &domain.version, chain.chain_id(), c.atn_token).separator(),
        token.DOMAIN_SEPARATOR().call().await?
    );
    Ok(requirements)
}

fn sign(signer: PrivateKeySigner, requirements: &PaymentRequirements) -> Result<String> {
    let required = PaymentRequired::new(
        ResourceInfo {
            url: "http://127.0.0.1/v1/generate".into(),
            ..Default::default()
        },
        vec![requirements.clone()],
    );
    let payload = PaymentSigner::new(signer)
        .with_max_amount(price())
        .sign(&required, unix_now())?;
    Ok(encode_payment_signature(&payload))
}

/// A payment by `signer`, through the header and the server-side verification.
fn verified(
    requirements: &PaymentRequirements,
    signer: PrivateKeySigner,
) -> Result<VerifiedPayment> {
    Ok(verify_header(
        &sign(signer, requirements)?,
        requirements,
        unix_now(),
    )?)
}

#[tokio::test]
async fn a_payment_settles_once_for_the_offered_pair_and_front_running_is_collected() -> Result<()>
{
    let chain = TestChain::start()?;
    let c = chain.deployment.contracts;
    let project_id = create_project(&chain, price()).await?;
    let other_project = create_project(&chain, price()).await?;
    let deployer = provider_for(&chain, 0).await?;
    let token = ATNToken::new(c.atn_token, &deployer);
    send_and_confirm::<ATNToken::Transfer, _, _>(
        &token.transfer(chain.address(PAYER), price() * U256::from(10)),
        &opts(),
    )
    .await?;
    let node = provider_for(&chain, NODE).await?;
    let pay_to = payment_address(&node, c.market, project_id, chain.address(NODE)).await?;
    assert_ne!(pay_to, c.market);
    assert_ne!(
        pay_to,
        payment_address(&node, c.market, other_project, chain.address(NODE)).await?
    );
    assert_ne!(
        pay_to,
        payment_address(&node, c.market, project_id, chain.address(STRANGER)).await?
    );
    let requirements = requirements(&chain, &node, pay_to).await?;
    let market = InferenceMarket::new(c.market, &node);
    let dir = tempfile::tempdir()?;
    let store = NonceStore::open(dir.path().join("x402.sqlite"))?;

    // 1. Verify, check on chain, claim, settle, confirm.
    let payment = verified(&requirements, chain.signer(PAYER))?;
    check_onchain(&node, &payment).await?;
    assert_eq!(
        store.claim_payment(&payment, unix_now())?,
        ClaimOutcome::Claimed
    );
    let pending = send_settle(node.clone(), c.market, project_id, &payment).await?;
    let key = payment.nonce_key();
    store.mark_submitted(&key, pending.tx_hash(), unix_now())?;
    let confirmed = pending.confirm(&opts()).await?;
    store.mark_settled(&key, pending.tx_hash(), unix_now())?;
    assert_eq!(confirmed.receipt.transaction_hash, pending.tx_hash());
    let settled = confirmed.event;
    assert_eq!(settled.projectId, project_id);
    assert_eq!(settled.provider, chain.address(NODE));
    assert_eq!(settled.payer, chain.address(PAYER));
    assert_eq!(settled.nonce, payment.authorization.nonce);
    assert_eq!(settled.value, price());
    assert_eq!(
        market.claimable(chain.address(NODE)).call().await?,
        price() * U256::from(6000) / U256::from(10_000)
    );
    assert_eq!(market.accountedBalance().call().await?, price());
    assert_eq!(
        token.balanceOf(chain.address(PAYER)).call().await?,
        price() * U256::from(9)
    );
    assert_eq!(
        store.get(&key)?.context("claimed")?.state,
        PaymentState::Settled {
            tx_hash: pending.tx_hash()
        }
    );

    // 2. The same payment again: refused by the store, the chain and the contract.
    assert!(matches!(
        store.claim_payment(&payment, unix_now())?,
        ClaimOutcome::AlreadyUsed(_)
    ));
    let err = check_onchain(&node, &payment).await.unwrap_err();
    assert_eq!(err.code(), codes::NONCE_ALREADY_USED, "{err}");
    let err = send_settle(node.clone(), c.market, project_id, &payment)
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NONCE_ALREADY_USED, "{err}");
    assert_eq!(
        err.revert().map(|r| r.name.as_str()),
        Some("ATNTokenAuthorizationUsed")
    );

    // 3. Redirection (M-2): whoever holds an authorization cannot settle it for another project
    //    or as another provider; the token rejects the signature, since `to` is the offered payTo.
    let held = verified(&requirements, chain.signer(PAYER))?;
    let stranger = provider_for(&chain, STRANGER).await?;
    for (who, project) in [
        (&stranger, other_project),
        (&stranger, project_id),
        (&node, other_project),
    ] {
        let err = send_settle(who.clone(), c.market, project, &held)
            .await
            .unwrap_err();
        assert_eq!(err.code(), codes::SIGNATURE, "{err}");
        assert_eq!(
            err.revert().map(|r| r.name.as_str()),
            Some("ATNTokenInvalidSignature")
        );
    }
    let pending = send_settle(node.clone(), c.market, project_id, &held).await?;
    assert_eq!(
        pending.confirm(&opts()).await?.event.provider,
        chain.address(NODE)
    );
    assert_eq!(
        market.claimable(chain.address(NODE)).call().await?,
        price() * U256::from(2 * 6000) / U256::from(10_000)
    );
    assert_eq!(
        market.claimable(chain.address(STRANGER)).call().await?,
        U256::ZERO
    );

    // 4. Front-running: a stranger submits the next authorization straight to the token. The
    //    value waits at the node's payTo, the node's settle fails on the used nonce, and anyone's
    //    collect credits the offered project and node.
    let front_run = verified(&requirements, chain.signer(PAYER))?;
    let a = front_run.authorization;
    assert_eq!(a.to, pay_to);
    send_and_confirm::<ATNToken::AuthorizationUsed, _, _>(
        &ATNToken::new(c.atn_token, &stranger).transferWithAuthorization_0(
            a.from,
            a.to,
            a.value,
            a.valid_after,
            a.valid_before,
            a.nonce,
            front_run.signature.clone(),
        ),
        &opts(),
    )
    .await?;
    assert_eq!(
        check_onchain(&node, &front_run).await.unwrap_err().code(),
        codes::NONCE_ALREADY_USED
    );
    assert_eq!(
        send_settle(node.clone(), c.market, project_id, &front_run)
            .await
            .unwrap_err()
            .code(),
        codes::NONCE_ALREADY_USED
    );
    assert_eq!(
        market
            .uncollectedBalance(project_id, chain.address(NODE))
            .call()
            .await?,
        price()
    );
    assert_eq!(market.unaccountedBalance().call().await?, U256::ZERO);
    assert!(
        collect_uncollected(
            stranger.clone(),
            c.market,
            other_project,
            chain.address(STRANGER),
            &opts()
        )
        .await?
        .is_none()
    );
    let collected = collect_uncollected(
        stranger.clone(),
        c.market,
        project_id,
        chain.address(NODE),
        &opts(),
    )
    .await?
    .context("the front-run payment waits at the node's payTo")?;
    assert_eq!(collected.event.projectId, project_id);
    assert_eq!(collected.event.provider, chain.address(NODE));
    assert_eq!(collected.event.value, price());
    assert_eq!(
        market.claimable(chain.address(NODE)).call().await?,
        price() * U256::from(3 * 6000) / U256::from(10_000)
    );
    assert_eq!(
        market.claimable(c.timelock).call().await?,
        price() * U256::from(3 * 4000) / U256::from(10_000)
    );
    assert_eq!(
        market.claimable(chain.address(STRANGER)).call().await?,
        U256::ZERO
    );
    assert_eq!(
        market.accountedBalance().call().await?,
        price() * U256::from(3)
    );
    assert_eq!(
        token.balanceOf(pay_to).call().await?,
        U256::ZERO,
        "the payTo only passes value through"
    );

    // 5. A payer without ATN: the signature verifies, the balance check refuses it.
    let broke = verified(&requirements, PrivateKeySigner::random())?;
    let err = check_onchain(&node, &broke).await.unwrap_err();
    assert!(
        matches!(err, PaymentError::InsufficientFunds { .. }),
        "{err}"
    );
    assert_eq!(err.code(), codes::INSUFFICIENT_FUNDS);
    let err = send_settle(node.clone(), c.market, project_id, &broke)
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::INSUFFICIENT_FUNDS, "{err}");
    Ok(())
}
