//! The chain side of payment channels: reading a channel, executing a deposit, and claiming
//! many requests in one transaction.
//!
//! This module owns [`settlement_deployed`] (is there a channel contract where the official
//! client expects it), [`read_channel`] (balance, claimed, a pending withdrawal, the refund
//! nonce), [`send_deposit`] (the payer's signed deposit, executed by this node:
//! `deposit(config, amount, collector, data)`, waited for, because vouchers draw on it), and
//! [`claim_and_settle`]: one `multicall(claim(rows), settle(receiver, token))` from the
//! receiver authorizer, which records every row's claimed total and moves the value to the
//! receiver (this node's payTo for the project) in the same transaction. The caller then
//! accounts it with `InferenceMarket.collect` ([`crate::collect_uncollected`]): two transactions
//! for any number of requests and channels. It must not decide what to claim
//! ([`crate::channel_store`] knows what was charged).

use alloy::primitives::{Address, B256, Bytes, TxHash};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use autonet_bindings::channels::{BatchSettlement, IBatchSettlement};
use autonet_chain::{TxError, TxOptions, send_and_confirm};

use crate::channel::{
    BATCH_SETTLEMENT_ADDRESS, ChannelError, ERC3009_DEPOSIT_COLLECTOR_ADDRESS, WireChannelConfig,
    channel_codes,
};
use crate::channel_store::{ChannelRecord, OnchainChannel};

/// The contract's struct of `config`.
pub fn sol_config(config: &WireChannelConfig) -> IBatchSettlement::ChannelConfig {
    let c = config.to_sol();
    IBatchSettlement::ChannelConfig {
        payer: c.payer,
        payerAuthorizer: c.payerAuthorizer,
        receiver: c.receiver,
        receiverAuthorizer: c.receiverAuthorizer,
        token: c.token,
        withdrawDelay: c.withdrawDelay,
        salt: c.salt,
    }
}

/// Whether the channel contract and its EIP-3009 collector have code at their canonical
/// addresses (where the official client sends its vouchers and deposits).
pub async fn settlement_deployed<P: Provider>(provider: &P) -> Result<bool, ChannelError> {
    let read = |e: alloy::transports::TransportError| {
        ChannelError::new(
            channel_codes::RPC_READ_FAILED,
            format!("reading contract code: {e}"),
        )
    };
    let settlement = provider
        .get_code_at(BATCH_SETTLEMENT_ADDRESS)
        .await
        .map_err(read)?;
    let collector = provider
        .get_code_at(ERC3009_DEPOSIT_COLLECTOR_ADDRESS)
        .await
        .map_err(read)?;
    Ok(!settlement.is_empty() && !collector.is_empty())
}

/// The channel's on-chain state.
pub async fn read_channel<P: Provider>(
    provider: &P,
    channel_id: B256,
) -> Result<OnchainChannel, ChannelError> {
    let contract = BatchSettlement::new(BATCH_SETTLEMENT_ADDRESS, provider);
    let (state_call, pending_call, nonce_call) = (
        contract.channels(channel_id),
        contract.pendingWithdrawals(channel_id),
        contract.refundNonce(channel_id),
    );
    let (state, pending, nonce) =
        tokio::try_join!(state_call.call(), pending_call.call(), nonce_call.call()).map_err(
            |e| {
                ChannelError::new(
                    channel_codes::RPC_READ_FAILED,
                    format!("reading channel {channel_id}: {e}"),
                )
            },
        )?;
    let initiated: u64 = pending.initiatedAt.to();
    Ok(OnchainChannel {
        balance: state.balance,
        total_claimed: state.totalClaimed,
        withdraw_requested_at: initiated,
        withdraw_amount: if initiated == 0 { 0 } else { pending.amount },
        refund_nonce: nonce.to_string(),
    })
}

/// Executes the payer's signed deposit into `config`'s channel from `provider`'s wallet and
/// waits for it (`collector_data` from [`crate::channel::verify_channel_payment`]).
pub async fn send_deposit<P: Provider + Clone>(
    provider: P,
    config: &WireChannelConfig,
    amount: u128,
    collector_data: Bytes,
    options: &TxOptions,
) -> Result<TxHash, ChannelError> {
    let contract = BatchSettlement::new(BATCH_SETTLEMENT_ADDRESS, provider);
    let call = contract.deposit(
        sol_config(config),
        amount,
        ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        collector_data,
    );
    match send_and_confirm::<BatchSettlement::Deposited, _, _>(&call, options).await {
        Ok(confirmed) => Ok(confirmed.receipt.transaction_hash),
        Err(e) => Err(ChannelError::new(
            channel_codes::DEPOSIT_FAILED,
            format!("the deposit could not be executed: {}", describe(&e)),
        )),
    }
}

fn describe(e: &TxError) -> String {
    match e.revert_name() {
        Some(name) => format!("reverted with {name} ({e})"),
        None => e.to_string(),
    }
}

/// What one claim did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimReceipt {
    /// The `multicall(claim, settle)` transaction.
    pub tx: TxHash,
    /// The value it moved to the receiver.
    pub settled: u128,
    /// The rows claimed: channel and its new claimed total.
    pub claimed: Vec<(B256, u128)>,
}

/// Claims every record's charged total (each under its latest voucher) and settles the
/// receiver's claimed value, in one transaction from `provider`'s wallet (the receiver
/// authorizer). `records` must share `receiver` and `token`.
pub async fn claim_and_settle<P: Provider + Clone>(
    provider: P,
    records: &[ChannelRecord],
    receiver: Address,
    token: Address,
    options: &TxOptions,
) -> Result<ClaimReceipt, TxError> {
    let contract = BatchSettlement::new(BATCH_SETTLEMENT_ADDRESS, provider);
    let rows: Vec<IBatchSettlement::VoucherClaim> = records
        .iter()
        .map(|r| IBatchSettlement::VoucherClaim {
            voucher: IBatchSettlement::Voucher {
                channel: sol_config(&r.config),
                maxClaimableAmount: r.signed_max,
            },
            signature: r.signature.clone(),
            totalClaimed: r.charged,
        })
        .collect();
    let calls: Vec<Bytes> = vec![
        BatchSettlement::claimCall {
            voucherClaims: rows,
        }
        .abi_encode()
        .into(),
        BatchSettlement::settleCall { receiver, token }
            .abi_encode()
            .into(),
    ];
    let call = contract.multicall(calls);
    let confirmed = send_and_confirm::<BatchSettlement::Settled, _, _>(&call, options).await?;
    Ok(ClaimReceipt {
        tx: confirmed.receipt.transaction_hash,
        settled: confirmed.event.amount,
        claimed: records.iter().map(|r| (r.channel_id, r.charged)).collect(),
    })
}

/// On a development chain (anvil), copies the runtime code of the deployed channel contract and
/// deposit collector to the canonical addresses the official client uses
/// ([`BATCH_SETTLEMENT_ADDRESS`], [`ERC3009_DEPOSIT_COLLECTOR_ADDRESS`]) with `anvil_setCode`.
/// Both contracts keep no constructor-written storage (the EIP-712 domain is rebuilt for the new
/// address; the collector's one immutable already names the canonical channel address), so the
/// copies work as deployed there. Public chains have the official contracts at these addresses.
pub async fn place_on_dev_chain<P: Provider>(
    provider: &P,
    settlement: Address,
    collector: Address,
) -> Result<(), String> {
    for (from, to) in [
        (settlement, BATCH_SETTLEMENT_ADDRESS),
        (collector, ERC3009_DEPOSIT_COLLECTOR_ADDRESS),
    ] {
        let code = provider
            .get_code_at(from)
            .await
            .map_err(|e| format!("reading the code at {from}: {e}"))?;
        if code.is_empty() {
            return Err(format!("no contract at {from}"));
        }
        provider
            .raw_request::<_, ()>("anvil_setCode".into(), (to, code))
            .await
            .map_err(|e| format!("anvil_setCode at {to} (a development chain is needed): {e}"))?;
    }
    Ok(())
}
