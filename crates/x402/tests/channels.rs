//! Payment channels end to end on a real anvil with the real contracts: the channel contract and
//! its deposit collector are placed at the canonical addresses (as `autonet devnet` does), a
//! payer deposits once and pays 100 requests by voucher; stale, replayed, over-spent and
//! foreign vouchers are refused with their codes; a request whose output fails costs nothing and
//! its voucher pays the retry; a server restart (and a crash between the stored voucher and the
//! answer) loses nothing; the server claims everything in two transactions and the
//! InferenceMarket splits it 60/25/15 like `exact`; a claim repeated after its receipt was lost
//! claims nothing twice. The official TypeScript client's channel flow is exercised by
//! `autonet devnet --check-payments` (`make check-devnet`).

mod common;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, ensure};
use autonet_bindings::channels::BatchSettlement;
use autonet_bindings::{ATNToken, InferenceMarket};
use autonet_chain::send_and_confirm;
use autonet_test_utils::TestChain;
use autonet_x402::channel::{
    BATCH_SETTLEMENT_ADDRESS, ChannelOffer, ChannelPayload, ChannelPaymentPayload,
    MIN_WITHDRAW_DELAY, WireChannelConfig, channel_codes, sign_deposit, sign_voucher,
    verify_channel_payment,
};
use autonet_x402::channel_chain::{claim_and_settle, place_on_dev_chain, read_channel};
use autonet_x402::channel_server::Channels;
use autonet_x402::channel_store::ChannelStore;
use autonet_x402::{payment_address, unix_now};
use common::{create_project, opts, provider_for};
use std::time::Duration;

const PAYER: usize = 1;
const NODE: usize = 3;
const STRANGER: usize = 4;
const REQUESTS: u128 = 100;

fn price() -> u128 {
    10u128.pow(16)
}

struct Setup {
    chain: TestChain,
    offer: ChannelOffer,
    project: U256,
    node: Address,
}

async fn setup() -> Result<Setup> {
    let chain = TestChain::start()?;
    let c = chain.deployment.contracts;
    let deployer = provider_for(&chain, 0).await?;
    place_on_dev_chain(
        &deployer,
        c.batch_settlement
            .context("the deployment has no BatchSettlement")?,
        c.deposit_collector
            .context("the deployment has no Erc3009DepositCollector")?,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let project = create_project(&chain, U256::from(price())).await?;
    let node = chain.address(NODE);
    let pay_to = payment_address(&deployer, c.market, project, node).await?;
    // The payer holds ATN.
    let token = ATNToken::new(c.atn_token, &deployer);
    send_and_confirm::<ATNToken::Transfer, _, _>(
        &token.transfer(chain.address(PAYER), U256::from(10u128.pow(19))),
        &opts(),
    )
    .await?;
    let offer = ChannelOffer {
        chain_id: chain.chain_id(),
        asset: c.atn_token,
        domain: ("Autonet".into(), "1".into()),
        pay_to,
        receiver_authorizer: node,
        withdraw_delay: MIN_WITHDRAW_DELAY,
        max_timeout_secs: 300,
    };
    Ok(Setup {
        chain,
        offer,
        project,
        node,
    })
}

fn config(s: &Setup, payer: Address) -> WireChannelConfig {
    WireChannelConfig {
        payer,
        payer_authorizer: payer,
        receiver: s.offer.pay_to,
        receiver_authorizer: s.offer.receiver_authorizer,
        token: s.offer.asset,
        withdraw_delay: MIN_WITHDRAW_DELAY,
        salt: alloy::primitives::B256::ZERO,
    }
}

fn payment(s: &Setup, payload: ChannelPayload) -> ChannelPaymentPayload {
    ChannelPaymentPayload {
        x402_version: 2,
        resource: None,
        accepted: s.offer.requirements(price()),
        payload,
    }
}

fn voucher(s: &Setup, signer: &PrivateKeySigner, max: u128) -> Result<ChannelPaymentPayload> {
    let cfg = config(s, signer.address());
    let voucher = sign_voucher(signer, &cfg, max, s.chain.chain_id())?;
    Ok(payment(
        s,
        ChannelPayload::Voucher {
            channel_config: cfg,
            voucher,
        },
    ))
}

/// `signer`'s first request on its channel: a voucher for one price with a deposit of 10 prices
/// (EIP-3009 salt `salt`), valid for 5 minutes.
fn first_with_deposit(
    s: &Setup,
    signer: &PrivateKeySigner,
    salt: u64,
) -> Result<ChannelPaymentPayload> {
    let cfg = config(s, signer.address());
    let deposit = sign_deposit(
        signer,
        &cfg,
        price() * 10,
        ("Autonet", "1"),
        s.chain.chain_id(),
        unix_now() + 300,
        U256::from(salt),
    )?;
    Ok(payment(
        s,
        ChannelPayload::Deposit {
            voucher: sign_voucher(signer, &cfg, price(), s.chain.chain_id())?,
            channel_config: cfg,
            deposit,
        },
    ))
}

/// Admits `payment` and records its charge, as a request whose output was produced.
async fn serve(
    channels: &Channels,
    node: &autonet_chain::ChainProvider,
    payment: &autonet_x402::channel::VerifiedChannelPayment,
    network: &str,
) -> Result<autonet_x402::SettleResponse> {
    let admitted = channels
        .admit(node, payment, price())
        .await
        .map_err(|r| anyhow::anyhow!("{}", r.error))?;
    channels
        .commit(admitted, network)
        .map_err(|r| anyhow::anyhow!("{}", r.error))
}

#[tokio::test]
async fn a_channel_pays_many_requests_and_is_claimed_in_two_transactions() -> Result<()> {
    let s = setup().await?;
    let c = s.chain.deployment.contracts;
    let node = provider_for(&s.chain, NODE).await?;
    let payer = s.chain.signer(PAYER);
    let dir = tempfile::tempdir()?;
    let store_path = dir.path().join("channels.sqlite");
    let open = || -> Result<Channels> {
        Ok(Channels::new(
            s.offer.clone(),
            ChannelStore::open(&store_path)?,
            Duration::from_secs(300),
        ))
    };
    let channels = open()?;
    let network = format!("eip155:{}", s.chain.chain_id());
    let now = unix_now();

    // A voucher without a deposit: the channel holds nothing.
    let verified = verify_channel_payment(&voucher(&s, &payer, price())?, &s.offer, price(), now)?;
    let refused = channels
        .admit(&node, &verified, price())
        .await
        .err()
        .context("admitted")?;
    assert_eq!(refused.error.code, channel_codes::CHANNEL_NOT_FOUND);

    // The first request: a deposit for REQUESTS requests plus its voucher.
    let cfg = config(&s, payer.address());
    let deposit = sign_deposit(
        &payer,
        &cfg,
        price() * REQUESTS,
        ("Autonet", "1"),
        s.chain.chain_id(),
        now + 300,
        U256::from(42u64),
    )?;
    let first = payment(
        &s,
        ChannelPayload::Deposit {
            channel_config: cfg.clone(),
            voucher: sign_voucher(&payer, &cfg, price(), s.chain.chain_id())?,
            deposit,
        },
    );
    let verified = verify_channel_payment(&first, &s.offer, price(), now)?;
    let response = serve(&channels, &node, &verified, &network).await?;
    ensure!(
        response.transaction.starts_with("0x"),
        "the deposit's transaction is reported: {response:?}"
    );
    assert_eq!(
        response.amount.as_deref(),
        Some((price() * REQUESTS).to_string().as_str())
    );
    let onchain = read_channel(&node, verified.channel_id).await?;
    assert_eq!(onchain.balance, price() * REQUESTS);

    // A replay of the deposit payload: its voucher is stale now (corrective 402 with the state).
    let verified = verify_channel_payment(&first, &s.offer, price(), unix_now())?;
    let refused = channels
        .admit(&node, &verified, price())
        .await
        .err()
        .context("replay admitted")?;
    assert_eq!(refused.error.code, channel_codes::AMOUNT_MISMATCH);
    let (state, voucher_state) = *refused.corrective.context("no corrective state")?;
    assert_eq!(state.charged_cumulative_amount, price());
    assert_eq!(voucher_state["signedMaxClaimable"], price().to_string());

    // The next requests, one voucher each; one output fails (dropped before commit) and its
    // voucher pays the retry.
    let mut charged = price();
    for i in 1..REQUESTS {
        let v = verify_channel_payment(
            &voucher(&s, &payer, charged + price())?,
            &s.offer,
            price(),
            unix_now(),
        )?;
        let admitted = channels
            .admit(&node, &v, price())
            .await
            .map_err(|r| anyhow::anyhow!("{}", r.error))?;
        match i {
            7 => {
                // The output failed: nothing is charged and the same voucher pays the retry.
                drop(admitted);
                let again = channels
                    .admit(&node, &v, price())
                    .await
                    .map_err(|r| anyhow::anyhow!("{}", r.error))?;
                channels
                    .commit(again, &network)
                    .map_err(|r| anyhow::anyhow!("{}", r.error))?;
            }
            50 => {
                // A crash between the stored voucher and the answer: only the store survives;
                // the charge was not made and the same voucher is taken after the restart.
                drop(admitted);
                let reopened = open()?;
                let again = reopened
                    .admit(&node, &v, price())
                    .await
                    .map_err(|r| anyhow::anyhow!("{}", r.error))?;
                reopened
                    .commit(again, &network)
                    .map_err(|r| anyhow::anyhow!("{}", r.error))?;
            }
            _ => {
                channels
                    .commit(admitted, &network)
                    .map_err(|r| anyhow::anyhow!("{}", r.error))?;
            }
        }
        charged += price();
    }
    assert_eq!(charged, price() * REQUESTS);

    // Over-spent: one more request than the deposit covers.
    let v = verify_channel_payment(
        &voucher(&s, &payer, charged + price())?,
        &s.offer,
        price(),
        unix_now(),
    )?;
    let refused = channels
        .admit(&node, &v, price())
        .await
        .err()
        .context("over-spent admitted")?;
    assert_eq!(refused.error.code, channel_codes::EXCEEDS_BALANCE);
    // A stranger's voucher for the payer's channel.
    let stranger = s.chain.signer(STRANGER);
    let mut forged = voucher(&s, &stranger, charged + price())?;
    if let ChannelPayload::Voucher { channel_config, .. } = &mut forged.payload {
        *channel_config = cfg.clone();
    }
    let e = verify_channel_payment(&forged, &s.offer, price(), unix_now()).unwrap_err();
    assert!(
        e.code == channel_codes::CHANNEL_ID_MISMATCH || e.code == channel_codes::VOUCHER_SIGNATURE,
        "{e:?}"
    );

    // A restart loses no voucher: claim from a freshly opened store.
    drop(channels);
    let channels = open()?;
    let market = InferenceMarket::new(c.market, &node);
    let before_provider = market.claimable(s.node).call().await?;
    let report = channels
        .claim(&node, c.market, s.project.to(), s.node)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(report.channels, 1);
    assert_eq!(report.claimed, charged);
    assert_eq!(
        report.transactions.len(),
        2,
        "multicall(claim, settle) then collect"
    );
    let provider_share = market.claimable(s.node).call().await? - before_provider;
    // 60% to the provider (the project has no contributors yet: 25% + 15% to the treasury).
    assert_eq!(
        provider_share,
        U256::from(charged) * U256::from(6000) / U256::from(10_000)
    );
    assert_eq!(
        read_channel(&node, verified.channel_id)
            .await?
            .total_claimed,
        charged
    );
    let token = ATNToken::new(c.atn_token, &node);
    assert_eq!(
        token.balanceOf(s.offer.pay_to).call().await?,
        U256::ZERO,
        "everything collected"
    );
    assert_eq!(
        token.balanceOf(BATCH_SETTLEMENT_ADDRESS).call().await?,
        U256::ZERO,
        "everything settled"
    );

    // Claiming again: nothing to claim, no transaction.
    let again = channels
        .claim(&node, c.market, s.project.to(), s.node)
        .await
        .map_err(anyhow::Error::msg)?;
    assert!(again.transactions.is_empty(), "{again:?}");
    Ok(())
}

#[tokio::test]
async fn a_claim_whose_receipt_was_lost_is_not_claimed_twice() -> Result<()> {
    let s = setup().await?;
    let c = s.chain.deployment.contracts;
    let node = provider_for(&s.chain, NODE).await?;
    let payer = s.chain.signer(PAYER);
    let channels = Channels::new(
        s.offer.clone(),
        ChannelStore::open_in_memory()?,
        Duration::from_secs(300),
    );
    let network = format!("eip155:{}", s.chain.chain_id());
    let first = first_with_deposit(&s, &payer, 1)?;
    let v = verify_channel_payment(&first, &s.offer, price(), unix_now())?;
    serve(&channels, &node, &v, &network).await?;
    let v = verify_channel_payment(
        &voucher(&s, &payer, 2 * price())?,
        &s.offer,
        price(),
        unix_now(),
    )?;
    serve(&channels, &node, &v, &network).await?;

    // The claim transaction lands but the server never records it (a timed-out receipt).
    let rows = channels.store.unclaimed()?;
    claim_and_settle(node.clone(), &rows, s.offer.pay_to, s.offer.asset, &opts()).await?;
    let settlement = BatchSettlement::new(BATCH_SETTLEMENT_ADDRESS, &node);
    let receiver = settlement
        .receivers(s.offer.pay_to, s.offer.asset)
        .call()
        .await?;
    assert_eq!(receiver.totalClaimed, 2 * price());

    // The retried claim re-reads the chain: nothing is claimed twice, the waiting value is
    // collected once.
    let report = channels
        .claim(&node, c.market, s.project.to(), s.node)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(report.channels, 0);
    assert_eq!(report.transactions.len(), 1, "only the collect: {report:?}");
    let receiver = settlement
        .receivers(s.offer.pay_to, s.offer.asset)
        .call()
        .await?;
    assert_eq!(
        (receiver.totalClaimed, receiver.totalSettled),
        (2 * price(), 2 * price())
    );
    assert!(channels.store.unclaimed()?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_channel_drained_by_a_withdrawal_does_not_block_the_others_claims() -> Result<()> {
    use alloy::providers::Provider;
    use autonet_x402::channel_chain::sol_config;
    let s = setup().await?;
    let c = s.chain.deployment.contracts;
    let node = provider_for(&s.chain, NODE).await?;
    let network = format!("eip155:{}", s.chain.chain_id());
    let channels = Channels::new(
        s.offer.clone(),
        ChannelStore::open_in_memory()?,
        Duration::from_secs(300),
    );
    // Two payers, each with a deposit of 10 prices and charged requests.
    let deployer = provider_for(&s.chain, 0).await?;
    let token = ATNToken::new(c.atn_token, &deployer);
    send_and_confirm::<ATNToken::Transfer, _, _>(
        &token.transfer(s.chain.address(STRANGER), U256::from(10u128.pow(19))),
        &opts(),
    )
    .await?;
    for (who, requests) in [(PAYER, 2u128), (STRANGER, 1)] {
        let payer = s.chain.signer(who);
        let first = first_with_deposit(&s, &payer, 5)?;
        let v = verify_channel_payment(&first, &s.offer, price(), unix_now())?;
        serve(&channels, &node, &v, &network).await?;
        for i in 2..=requests {
            let v = verify_channel_payment(
                &voucher(&s, &payer, i * price())?,
                &s.offer,
                price(),
                unix_now(),
            )?;
            serve(&channels, &node, &v, &network).await?;
        }
    }
    // The first payer withdraws everything unclaimed while the node is away for longer than
    // the withdraw delay.
    let payer = provider_for(&s.chain, PAYER).await?;
    let settlement = BatchSettlement::new(BATCH_SETTLEMENT_ADDRESS, &payer);
    let cfg = sol_config(&config(&s, s.chain.address(PAYER)));
    send_and_confirm::<BatchSettlement::WithdrawInitiated, _, _>(
        &settlement.initiateWithdraw(cfg.clone(), price() * 10),
        &opts(),
    )
    .await?;
    payer
        .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (MIN_WITHDRAW_DELAY + 1,))
        .await?;
    send_and_confirm::<BatchSettlement::WithdrawFinalized, _, _>(
        &settlement.finalizeWithdraw(cfg),
        &opts(),
    )
    .await?;

    // The node's claim: the drained channel is skipped, the other one is claimed.
    let report = channels
        .claim(&node, c.market, s.project.to(), s.node)
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        (report.channels, report.claimed),
        (1, price()),
        "{report:?}"
    );
    assert_eq!(report.transactions.len(), 2);
    Ok(())
}
