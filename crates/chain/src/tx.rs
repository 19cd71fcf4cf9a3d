//! The transaction helper.
//!
//! This module owns [`send_and_confirm`]: simulate with `eth_call` (reverted receipts carry no
//! revert data, the simulation does), send, wait for the receipt with a timeout, and check that
//! the expected event was emitted by the expected contract — every failure surfacing as a
//! [`TxError`] whose revert part is the decoded custom error (`StakingBelowMinimum { .. }`), not
//! hex. It must not choose what to send or retry a reverted call: callers own that decision.

use std::time::Duration;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes, TxHash};
use alloy::providers::{PendingTransactionError, Provider};
use alloy::rpc::types::{Log, TransactionReceipt};
use alloy::sol_types::SolEvent;
use autonet_bindings::{DecodedRevert, decode_revert};

/// How long to wait and what to expect.
#[derive(Debug, Clone)]
pub struct TxOptions {
    /// How long to wait for the receipt after sending.
    pub timeout: Duration,
    /// Blocks on top of the including block before the receipt counts (1 = included).
    pub confirmations: u64,
    /// The contract that must emit the expected event (default: the called contract).
    pub emitter: Option<Address>,
}

impl Default for TxOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            confirmations: 1,
            emitter: None,
        }
    }
}

impl TxOptions {
    /// Expects the event from `emitter` instead of the called contract.
    pub fn emitted_by(mut self, emitter: Address) -> Self {
        self.emitter = Some(emitter);
        self
    }

    /// Waits at most `timeout` for the receipt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A confirmed transaction and the expected event it emitted.
#[derive(Debug, Clone)]
pub struct Confirmed<E> {
    /// The receipt (status success).
    pub receipt: TransactionReceipt,
    /// The first matching event, decoded.
    pub event: E,
    /// The log the event was decoded from.
    pub log: Log,
}

/// Why a transaction did not go through as expected.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The simulation (or gas estimation) reverted with a known custom error.
    #[error("call to {to} reverted: {revert}")]
    Reverted {
        /// The called contract.
        to: Address,
        /// The decoded error.
        revert: DecodedRevert,
        /// The raw revert data.
        data: Bytes,
    },
    /// The simulation reverted with data no Autonet ABI declares.
    #[error("call to {to} reverted with undecodable data {data}")]
    RevertedUnknown {
        /// The called contract.
        to: Address,
        /// The raw revert data (may be empty).
        data: Bytes,
    },
    /// The transaction was mined but reverted (the state changed between simulation and
    /// inclusion). `revert` is the replay of the call on the parent block, when it reverts there.
    #[error("transaction {tx_hash} reverted on chain{}", .revert.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    RevertedOnChain {
        /// The transaction.
        tx_hash: TxHash,
        /// The decoded error of the replay, if any.
        revert: Option<DecodedRevert>,
        /// The raw revert data of the replay (`None` when the replay did not revert).
        data: Option<Bytes>,
    },
    /// The transaction was neither mined nor pending any more (a reorg dropped it, or the node
    /// forgot it): nothing of it is on chain, and the same call may be sent again.
    #[error(
        "transaction {tx_hash} was dropped: neither mined nor pending (a reorg, or the node forgot it)"
    )]
    Dropped {
        /// The transaction.
        tx_hash: TxHash,
    },
    /// The receipt does not contain the expected event from the expected contract.
    #[error("transaction {tx_hash} succeeded but {emitter} did not emit {event}")]
    MissingEvent {
        /// The transaction.
        tx_hash: TxHash,
        /// The expected event signature.
        event: &'static str,
        /// The contract that should have emitted it.
        emitter: Address,
    },
    /// The expected event was found but could not be decoded.
    #[error("transaction {tx_hash}: decoding {event}: {source}")]
    BadEvent {
        /// The transaction.
        tx_hash: TxHash,
        /// The expected event signature.
        event: &'static str,
        /// The decoding error.
        source: alloy::sol_types::Error,
    },
    /// No receipt arrived in time.
    #[error("no receipt for transaction {tx_hash} within {timeout:?}")]
    Timeout {
        /// The transaction.
        tx_hash: TxHash,
        /// The configured timeout.
        timeout: Duration,
    },
    /// Waiting for the receipt failed.
    #[error("waiting for the receipt of {tx_hash}: {source}")]
    Receipt {
        /// The transaction.
        tx_hash: TxHash,
        /// The error.
        source: PendingTransactionError,
    },
    /// The node rejected the simulation for another reason than a revert.
    #[error("simulating the call to {to}: {source}")]
    Simulation {
        /// The called contract.
        to: Address,
        /// The error.
        source: alloy::contract::Error,
    },
    /// Signing or sending the transaction failed.
    #[error("sending the transaction to {to}: {source}")]
    Send {
        /// The called contract.
        to: Address,
        /// The error.
        source: alloy::contract::Error,
    },
    /// The call has no recipient (contract creation is not supported by this helper).
    #[error("the call has no recipient address")]
    NoRecipient,
}

impl TxError {
    /// The custom error name of a revert (`StakingBelowMinimum`), if this is one.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Self::Reverted { revert, .. } => Some(&revert.name),
            Self::RevertedOnChain {
                revert: Some(revert),
                ..
            } => Some(&revert.name),
            _ => None,
        }
    }

    /// The raw revert data, when this is a revert that returned some (before sending, or from
    /// the replay of a transaction that reverted on chain).
    pub fn revert_data(&self) -> Option<&Bytes> {
        match self {
            Self::Reverted { data, .. } | Self::RevertedUnknown { data, .. } => Some(data),
            Self::RevertedOnChain { data, .. } => data.as_ref(),
            _ => None,
        }
    }

    /// The revert decoded as the generated error type `E` (`TaskManager::TaskManagerWrongState`),
    /// when this is a revert with `E`'s selector. Matching on the type, not on a name, keeps the
    /// check honest when an error is renamed or gains arguments.
    pub fn reverted_with<E: alloy::sol_types::SolError>(&self) -> Option<E> {
        E::abi_decode(self.revert_data()?).ok()
    }

    /// The revert decoded as one of a contract's generated errors
    /// (`ParticipantStaking::ParticipantStakingErrors`), to `match` on its variants.
    pub fn reverted_as<I: alloy::sol_types::SolInterface>(&self) -> Option<I> {
        I::abi_decode(self.revert_data()?).ok()
    }
}

fn revert_error(to: Address, data: Bytes) -> TxError {
    match decode_revert(&data, None) {
        Some(revert) => TxError::Reverted { to, revert, data },
        None => TxError::RevertedUnknown { to, data },
    }
}

/// Receipt polls (200 ms apart) in a row that find the transaction neither mined nor pending
/// before it counts as dropped.
const DROPPED_AFTER_POLLS: u32 = 10;

/// Polls the receipt of `tx_hash` until it is `options.confirmations` deep; fails after
/// `options.timeout`, or as soon as the transaction is neither mined nor pending any more.
pub async fn wait_receipt<P: Provider>(
    provider: &P,
    tx_hash: TxHash,
    options: &TxOptions,
) -> Result<TransactionReceipt, TxError> {
    let deadline = tokio::time::Instant::now() + options.timeout;
    let confirmations = options.confirmations.max(1);
    let mut unknown = 0u32;
    loop {
        if let Ok(Some(receipt)) = provider.get_transaction_receipt(tx_hash).await
            && let Some(mined) = receipt.block_number
        {
            unknown = 0;
            let head = provider.get_block_number().await.unwrap_or(mined);
            if head + 1 >= mined + confirmations {
                return Ok(receipt);
            }
        } else if let Ok(None) = provider.get_transaction_by_hash(tx_hash).await {
            // Neither mined nor pending: a reorg dropped it (or the node forgot it). Waiting for
            // the timeout would only let the caller's window close.
            unknown += 1;
            if unknown >= DROPPED_AFTER_POLLS {
                return Err(TxError::Dropped { tx_hash });
            }
        } else {
            unknown = 0;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TxError::Timeout {
                tx_hash,
                timeout: options.timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Simulates, sends and confirms `call`, then finds event `E` emitted by the called contract (or
/// `options.emitter`) in the receipt.
///
/// Fails with [`TxError::Reverted`] before sending anything when the simulation reverts, so the
/// caller sees the decoded custom error.
pub async fn send_and_confirm<E, P, D>(
    call: &CallBuilder<P, D>,
    options: &TxOptions,
) -> Result<Confirmed<E>, TxError>
where
    E: SolEvent,
    P: Provider + Clone,
    D: CallDecoder + Clone,
{
    let to = call
        .clone()
        .into_transaction_request()
        .to
        .and_then(|kind| kind.to().copied())
        .ok_or(TxError::NoRecipient)?;

    // 1. Simulate on the pending block, where the transaction will run (block.number is the next
    //    block's, as in gas estimation): a revert here carries the data a mined revert would not.
    //    On `latest` an action allowed from the next block on (a phase that opens after the head)
    //    would fail here although the transaction itself succeeds.
    if let Err(err) = call.clone().block(BlockId::pending()).call_raw().await {
        let reverted_without_data = matches!(
            &err,
            alloy::contract::Error::TransportError(t)
                if t.as_error_resp().is_some_and(|p| p.message.contains("revert"))
        );
        return Err(match err.as_revert_data() {
            Some(data) => revert_error(to, data),
            None if reverted_without_data => revert_error(to, Bytes::new()),
            None => TxError::Simulation { to, source: err },
        });
    }

    // 2. Send (gas estimation may still revert if the state moved since the simulation).
    let pending = match call.send().await {
        Ok(pending) => pending,
        Err(err) => {
            return Err(match err.as_revert_data() {
                Some(data) => revert_error(to, data),
                None => TxError::Send { to, source: err },
            });
        }
    };
    let tx_hash = *pending.tx_hash();
    tracing::debug!(%tx_hash, %to, "transaction sent");

    // 3. Wait for the receipt by polling it: robust to blocks mined before a block watcher
    //    could have seen them (interval-mined chains, slow RPCs).
    let receipt = wait_receipt(pending.provider(), tx_hash, options).await?;
    confirm_receipt(call, receipt, options.emitter.unwrap_or(to), None).await
}

/// Checks a mined `receipt` of `call`: a reverted one is replayed on its parent block to decode
/// the reason (against `contract`'s errors first, when named); a successful one must hold event
/// `E` emitted by `emitter`.
pub async fn confirm_receipt<E, P, D>(
    call: &CallBuilder<P, D>,
    receipt: TransactionReceipt,
    emitter: Address,
    contract: Option<&str>,
) -> Result<Confirmed<E>, TxError>
where
    E: SolEvent,
    P: Provider + Clone,
    D: CallDecoder + Clone,
{
    let tx_hash = receipt.transaction_hash;
    if !receipt.status() {
        // Replay on the parent block to recover a reason; best effort.
        let data = match receipt.block_number {
            Some(n) if n > 0 => match call.clone().block(BlockId::number(n - 1)).call_raw().await {
                Err(err) => err.as_revert_data(),
                Ok(_) => None,
            },
            _ => None,
        };
        let revert = data.as_ref().and_then(|d| decode_revert(d, contract));
        return Err(TxError::RevertedOnChain {
            tx_hash,
            revert,
            data,
        });
    }

    // Find the expected event from the expected contract.
    let log = receipt
        .inner
        .logs()
        .iter()
        .find(|log| log.address() == emitter && log.topic0() == Some(&E::SIGNATURE_HASH))
        .cloned()
        .ok_or(TxError::MissingEvent {
            tx_hash,
            event: E::SIGNATURE,
            emitter,
        })?;
    let event = E::decode_log_data(log.data()).map_err(|source| TxError::BadEvent {
        tx_hash,
        event: E::SIGNATURE,
        source,
    })?;
    tracing::debug!(%tx_hash, event = E::SIGNATURE, "transaction confirmed");
    Ok(Confirmed {
        receipt,
        event,
        log,
    })
}
