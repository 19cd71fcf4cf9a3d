//! End-to-end tests against a real anvil running the real contracts (deployed by
//! `script/Deploy.s.sol` through `autonet-test-utils`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::{Log, TransactionRequest};
use alloy::sol_types::{SolCall, SolEvent};
use anyhow::{Context, Result, bail, ensure};
use autonet_bindings::staking::IParticipantStaking::Role;
use autonet_bindings::{ATNToken, Contracts, ParticipantStaking};
use autonet_chain::discovery::verify_deployment;
use autonet_chain::{
    ChainProvider, CursorStore, EventWatcher, HandlerError, LogHandler, PollOutcome,
    ProviderConfig, ProviderError, TxError, TxOptions, WatcherConfig, WatcherError, connect,
    discover_contracts, send_and_confirm,
};
use autonet_test_utils::{ReorgOptions, TestChain, TransactionData};
use tokio_util::sync::CancellationToken;

/// `Role.Solver`, as the `uint8` the functions take.
const SOLVER: u8 = Role::SOLVER.into_underlying();

async fn provider_for(chain: &TestChain, account: usize) -> Result<ChainProvider> {
    let config = ProviderConfig::new(chain.rpc_url()).with_chain_id(chain.chain_id());
    Ok(connect(&config, chain.signer(account)).await?)
}

fn opts() -> TxOptions {
    TxOptions::default().with_timeout(Duration::from_secs(30))
}

async fn min_solver_stake(chain: &TestChain, p: &ChainProvider) -> Result<U256> {
    let staking = ParticipantStaking::new(chain.deployment.contracts.staking, p);
    Ok(staking.minStake(SOLVER).call().await?)
}

/// Gives `account` `amount` ATN from the deployer and lets the staking contract pull it.
async fn fund_and_approve(chain: &TestChain, account: usize, amount: U256) -> Result<()> {
    let c = &chain.deployment.contracts;
    if account != 0 {
        let admin = provider_for(chain, 0).await?;
        let token = ATNToken::new(c.atn_token, &admin);
        send_and_confirm::<ATNToken::Transfer, _, _>(
            &token.transfer(chain.address(account), amount),
            &opts(),
        )
        .await?;
    }
    let p = provider_for(chain, account).await?;
    let token = ATNToken::new(c.atn_token, &p);
    send_and_confirm::<ATNToken::Approval, _, _>(&token.approve(c.staking, amount), &opts())
        .await?;
    Ok(())
}

async fn stake(chain: &TestChain, account: usize, amount: U256) -> Result<Log> {
    let p = provider_for(chain, account).await?;
    let staking = ParticipantStaking::new(chain.deployment.contracts.staking, &p);
    let confirmed = send_and_confirm::<ParticipantStaking::Staked, _, _>(
        &staking.stake(SOLVER, amount),
        &opts(),
    )
    .await?;
    Ok(confirmed.log)
}

#[tokio::test]
async fn discovery_from_the_registry_finds_every_contract() -> Result<()> {
    let chain = TestChain::start()?;
    let p = provider_for(&chain, 0).await?;
    let found = discover_contracts(&p, chain.deployment.contracts.registry).await?;
    // Everything but the x402 channel pair, which the Registry does not list.
    let mut listed = chain.deployment.contracts;
    assert!(listed.batch_settlement.is_some() && listed.deposit_collector.is_some());
    (listed.batch_settlement, listed.deposit_collector) = (None, None);
    assert_eq!(found, listed);
    assert_eq!(found.iter().count(), Contracts::NAMES.len());
    assert_eq!(Contracts::NAMES.len(), 13);
    assert_eq!(
        verify_deployment(&p, &chain.deployment).await?,
        chain.deployment.contracts
    );

    // A node serving another chain is refused.
    let wrong = ProviderConfig::new(chain.rpc_url()).with_chain_id(chain.chain_id() + 1);
    match connect(&wrong, chain.signer(0)).await {
        Err(ProviderError::ChainIdMismatch { expected, actual }) => {
            assert_eq!((expected, actual), (chain.chain_id() + 1, chain.chain_id()));
        }
        other => bail!("expected a chain id mismatch, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn send_and_confirm_stakes_and_finds_the_event() -> Result<()> {
    let chain = TestChain::start()?;
    let p = provider_for(&chain, 0).await?;
    let c = chain.deployment.contracts;
    let min = min_solver_stake(&chain, &p).await?;
    ensure!(min > U256::ZERO, "devnet minimum solver stake is zero");

    let token = ATNToken::new(c.atn_token, &p);
    let allowance = min + U256::from(1);
    let approved =
        send_and_confirm::<ATNToken::Approval, _, _>(&token.approve(c.staking, allowance), &opts())
            .await?;
    assert_eq!(approved.event.spender, c.staking);
    assert_eq!(approved.event.value, allowance);

    let staking = ParticipantStaking::new(c.staking, &p);
    let staked =
        send_and_confirm::<ParticipantStaking::Staked, _, _>(&staking.stake(SOLVER, min), &opts())
            .await?;
    assert!(staked.receipt.status());
    assert_eq!(staked.event.account, chain.address(0));
    assert_eq!(staked.event.amount, min);
    assert_eq!(staked.event.bonded, min);
    assert_eq!(staked.log.address(), c.staking);
    assert_eq!(staking.stakeOf(chain.address(0)).call().await?, min);

    // The token's Transfer is in the same receipt, from the token, not from the staking contract.
    let moved = send_and_confirm::<ATNToken::Transfer, _, _>(
        &staking.stake(SOLVER, U256::from(1)),
        &opts().emitted_by(c.atn_token),
    )
    .await?;
    assert_eq!(moved.event.to, c.staking);

    // An event the call does not emit is reported as missing (the call itself succeeded).
    let err = send_and_confirm::<ParticipantStaking::Withdrawn, _, _>(
        &token.approve(c.staking, U256::from(5)),
        &opts(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, TxError::MissingEvent { emitter, .. } if emitter == c.atn_token),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_revert_surfaces_the_decoded_custom_error() -> Result<()> {
    let chain = TestChain::start()?;
    let p = provider_for(&chain, 0).await?;
    let c = chain.deployment.contracts;
    let min = min_solver_stake(&chain, &p).await?;
    fund_and_approve(&chain, 0, min).await?;
    let staking = ParticipantStaking::new(c.staking, &p);
    let nonce = p.get_transaction_count(chain.address(0)).await?;
    let below = min - U256::from(1);
    let err = send_and_confirm::<ParticipantStaking::Staked, _, _>(
        &staking.stake(SOLVER, below),
        &opts(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.revert_name(), Some("StakingBelowMinimum"), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "StakingBelowMinimum {{ have: {below}, need: {min} }}"
        )),
        "{message}"
    );
    match &err {
        TxError::Reverted { to, revert, .. } => {
            assert_eq!(*to, c.staking);
            assert_eq!(revert.contract, Some("ParticipantStaking"));
        }
        other => bail!("expected a decoded revert, got {other:?}"),
    }
    // Matched as the generated error type, with its arguments.
    let typed = err
        .reverted_with::<ParticipantStaking::StakingBelowMinimum>()
        .context("the revert decodes as StakingBelowMinimum")?;
    assert_eq!((typed.have, typed.need), (below, min));
    assert!(
        err.reverted_with::<ParticipantStaking::StakingZeroAmount>()
            .is_none()
    );
    // Nothing was sent: the nonce did not move.
    assert_eq!(p.get_transaction_count(chain.address(0)).await?, nonce);

    // A revert without arguments.
    let err = send_and_confirm::<ParticipantStaking::Staked, _, _>(
        &staking.stake(SOLVER, U256::ZERO),
        &opts(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.revert_name(), Some("StakingZeroAmount"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_transaction_dropped_before_it_is_mined_fails_fast_as_dropped() -> Result<()> {
    let chain = TestChain::start()?;
    let p = provider_for(&chain, 0).await?;
    let c = chain.deployment.contracts;
    let min = min_solver_stake(&chain, &p).await?;
    fund_and_approve(&chain, 0, min).await?;
    p.anvil_set_auto_mine(false).await?;
    let staking = ParticipantStaking::new(c.staking, p.clone());
    let options = TxOptions::default().with_timeout(Duration::from_secs(60));
    let started = std::time::Instant::now();
    let send = tokio::spawn(async move {
        send_and_confirm::<ParticipantStaking::Staked, _, _>(&staking.stake(SOLVER, min), &options)
            .await
    });
    let me = chain.address(0);
    wait_for_async("the stake to be pending", || async {
        let pending = p.get_transaction_count(me).pending().await.unwrap_or(0);
        let mined = p.get_transaction_count(me).await.unwrap_or(0);
        pending > mined
    })
    .await?;
    p.anvil_drop_all_transactions().await?;
    let err = send
        .await?
        .expect_err("a dropped transaction cannot be confirmed");
    assert!(matches!(err, TxError::Dropped { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the drop is noticed long before the 60 s timeout: {:?}",
        started.elapsed()
    );
    Ok(())
}

async fn wait_for_async<F, Fut>(what: &str, mut done: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if done().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("timed out waiting for {what}")
}

#[tokio::test]
async fn chunked_log_scans_find_the_same_logs_as_one_request() -> Result<()> {
    let chain = TestChain::start()?;
    let p = provider_for(&chain, 0).await?;
    let c = chain.deployment.contracts;
    let min = min_solver_stake(&chain, &p).await?;
    for account in 1..=3 {
        fund_and_approve(&chain, account, min).await?;
        stake(&chain, account, min).await?;
    }
    let head = p.get_block_number().await?;
    let filter = alloy::rpc::types::Filter::new()
        .address(c.staking)
        .event_signature(ParticipantStaking::Staked::SIGNATURE_HASH);
    let whole = p
        .get_logs(&filter.clone().from_block(0).to_block(head))
        .await?;
    assert_eq!(whole.len(), 3);
    for chunk in [1, 2, 7] {
        let scanned = autonet_chain::logs::scan_logs_by(&p, &filter, 0, head, chunk).await?;
        assert_eq!(scanned, whole, "chunks of {chunk} blocks");
    }
    assert_eq!(autonet_chain::scan_logs(&p, &filter, 0, head).await?, whole);
    assert!(
        autonet_chain::scan_logs(&p, &filter, head + 1, head)
            .await?
            .is_empty()
    );
    Ok(())
}

/// Records `Staked` logs and rollbacks; can be told to fail once.
#[derive(Clone, Default)]
struct Recorder {
    staked: Arc<Mutex<Vec<Log>>>,
    rolled_back: Arc<Mutex<Vec<Log>>>,
    fail_next: Arc<AtomicBool>,
}

impl Recorder {
    fn staked(&self) -> Vec<Log> {
        self.staked.lock().unwrap().clone()
    }
    fn rolled_back(&self) -> Vec<Log> {
        self.rolled_back.lock().unwrap().clone()
    }
}

fn is_staked(log: &Log) -> bool {
    log.topic0() == Some(&ParticipantStaking::Staked::SIGNATURE_HASH)
}

fn staked_account(log: &Log) -> Address {
    ParticipantStaking::Staked::decode_log_data(log.data())
        .expect("a Staked log")
        .account
}

fn key(log: &Log) -> (B256, u64) {
    (log.transaction_hash.unwrap(), log.log_index.unwrap())
}

impl LogHandler for Recorder {
    async fn handle(&mut self, log: &Log) -> Result<(), HandlerError> {
        if !is_staked(log) {
            return Ok(());
        }
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err("injected handler failure".into());
        }
        self.staked.lock().unwrap().push(log.clone());
        Ok(())
    }

    async fn rollback(&mut self, log: &Log) -> Result<(), HandlerError> {
        if is_staked(log) {
            self.rolled_back.lock().unwrap().push(log.clone());
            self.staked.lock().unwrap().retain(|l| key(l) != key(log));
        }
        Ok(())
    }
}

fn watcher_config(chain: &TestChain) -> WatcherConfig {
    let mut config = WatcherConfig::new(
        "staking",
        vec![chain.deployment.contracts.staking],
        chain.deployment.deploy_block,
    );
    config.range = 5; // several ranges even on a short chain
    config.confirmations = 0;
    config.poll_interval = Duration::from_millis(50);
    config
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

#[tokio::test]
async fn the_watcher_delivers_each_event_exactly_once_across_restarts() -> Result<()> {
    let chain = TestChain::start()?;
    let p = provider_for(&chain, 0).await?;
    let min = min_solver_stake(&chain, &p).await?;
    fund_and_approve(&chain, 1, min * U256::from(3)).await?;
    fund_and_approve(&chain, 2, min).await?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("watcher.sqlite");

    // Run 1: two stakes.
    let first = stake(&chain, 1, min).await?;
    let second = stake(&chain, 2, min).await?;
    let run1 = Recorder::default();
    let cancel = CancellationToken::new();
    let store = Arc::new(CursorStore::open(&db)?);
    let watcher = EventWatcher::new(p.clone(), store, watcher_config(&chain), run1.clone());
    let task = tokio::spawn(watcher.run(cancel.clone()));
    wait_for("two Staked events", || run1.staked().len() == 2).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    task.await??;
    let keys1: Vec<_> = run1.staked().iter().map(key).collect();
    assert_eq!(keys1, vec![key(&first), key(&second)]);

    // Run 2: a third stake; the handler fails on it once, which stops the run without
    // recording it.
    let third = stake(&chain, 1, min).await?;
    let run2 = Recorder::default();
    run2.fail_next.store(true, Ordering::SeqCst);
    let store = Arc::new(CursorStore::open(&db)?);
    let watcher = EventWatcher::new(p.clone(), store, watcher_config(&chain), run2.clone());
    match watcher.run(CancellationToken::new()).await {
        Err(WatcherError::Handler { tx_hash, .. }) => {
            assert_eq!(Some(tx_hash), third.transaction_hash)
        }
        other => bail!("expected the injected handler failure, got {other:?}"),
    }
    assert!(run2.staked().is_empty());

    // Run 3: the restart redelivers the failed log, and only that one.
    let run3 = Recorder::default();
    let cancel = CancellationToken::new();
    let store = Arc::new(CursorStore::open(&db)?);
    let watcher = EventWatcher::new(
        p.clone(),
        store.clone(),
        watcher_config(&chain),
        run3.clone(),
    );
    let task = tokio::spawn(watcher.run(cancel.clone()));
    wait_for("the third Staked event", || !run3.staked().is_empty()).await?;
    p.anvil_mine(Some(3), None).await?; // more (empty) blocks to scan
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    task.await??;
    let keys3: Vec<_> = run3.staked().iter().map(key).collect();
    assert_eq!(keys3, vec![key(&third)]);
    let head = p.get_block_number().await?;
    assert_eq!(store.cursor("staking")?.map(|c| c.number), Some(head));
    Ok(())
}

#[tokio::test]
async fn the_watcher_rewinds_on_a_reorg_and_follows_the_new_chain() -> Result<()> {
    let chain = TestChain::start()?;
    let p = provider_for(&chain, 0).await?;
    let c = chain.deployment.contracts;
    let min = min_solver_stake(&chain, &p).await?;
    fund_and_approve(&chain, 0, min).await?; // Alice
    fund_and_approve(&chain, 1, min).await?; // Bob
    let (alice, bob) = (chain.address(0), chain.address(1));

    let recorder = Recorder::default();
    let store = Arc::new(CursorStore::open_in_memory()?);
    let mut watcher = EventWatcher::new(p.clone(), store, watcher_config(&chain), recorder.clone());
    while watcher.poll_once().await? != PollOutcome::Idle {}
    assert!(recorder.staked().is_empty());

    // Alice stakes; the watcher handles it.
    let alice_log = stake(&chain, 0, min).await?;
    let alice_block = alice_log.block_number.context("mined")?;
    p.anvil_mine(Some(1), None).await?;
    while watcher.poll_once().await? != PollOutcome::Idle {}
    assert_eq!(
        recorder.staked().iter().map(key).collect::<Vec<_>>(),
        vec![key(&alice_log)]
    );
    let cursor = watcher.cursor()?.context("cursor")?;
    assert_eq!(cursor.number, alice_block + 1);

    // Reorg: the two newest blocks are replaced; Bob's stake is in the first new block, Alice's
    // transaction is not.
    let bob_stake = TransactionRequest::default()
        .from(bob)
        .to(c.staking)
        .input(
            ParticipantStaking::stakeCall {
                role: SOLVER,
                amount: min,
            }
            .abi_encode()
            .into(),
        )
        .gas_limit(300_000);
    p.anvil_reorg(ReorgOptions {
        depth: 2,
        tx_block_pairs: vec![(TransactionData::JSON(bob_stake), 0)],
    })
    .await?;
    let new_hash = p
        .get_block_by_number(cursor.number.into())
        .await?
        .context("block still exists")?
        .header
        .hash;
    assert_ne!(
        new_hash, cursor.hash,
        "anvil_reorg did not change the cursor block"
    );

    // The next poll sees the hash mismatch, rewinds below Alice's block and reports her log.
    match watcher.poll_once().await? {
        PollOutcome::Rewound {
            from,
            to,
            rolled_back,
        } => {
            assert_eq!(from, cursor.number);
            assert!(to.is_some_and(|t| t < alice_block), "rewound to {to:?}");
            // Alice's stake emitted two logs: Staked and ActiveChanged (she became active).
            assert_eq!(rolled_back, 2);
        }
        other => bail!("expected a rewind, got {other:?}"),
    }
    let rolled: Vec<_> = recorder.rolled_back().iter().map(key).collect();
    assert_eq!(rolled, vec![key(&alice_log)]);
    assert!(recorder.staked().is_empty());

    // Then it follows the new chain: Bob's stake arrives, from a block of the new chain.
    while watcher.poll_once().await? != PollOutcome::Idle {}
    let staked = recorder.staked();
    let accounts: Vec<_> = staked.iter().map(staked_account).collect();
    assert!(accounts.contains(&bob), "new chain's logs: {accounts:?}");
    for log in &staked {
        let number = log.block_number.context("mined")?;
        let canonical = p
            .get_block_by_number(number.into())
            .await?
            .context("block")?;
        assert_eq!(log.block_hash, Some(canonical.header.hash));
        if staked_account(log) == alice {
            // anvil may re-include Alice's dropped transaction; then it is a new, canonical log.
            assert_ne!(log.block_hash, alice_log.block_hash);
        }
    }
    assert_eq!(
        recorder.rolled_back().len(),
        1,
        "nothing else was rolled back"
    );
    Ok(())
}
