//! The server's side of x402 payment channels (`batch-settlement`): admitting a paid request,
//! recording its charge, and claiming.
//!
//! A request paid by a channel goes: decode and check the payment offline
//! ([`autonet_x402::channel::verify_channel_payment`]) → take the channel's lock (requests on one
//! channel are serialized; different channels run in parallel) → load the channel (first sight:
//! its on-chain state, whose claimed total is the baseline) → the voucher's ceiling must be
//! exactly `charged + price` (a replayed or stale voucher gets the corrective 402
//! `..._cumulative_amount_mismatch` carrying the server's state and last signed voucher) and
//! within what the channel holds (`..._cumulative_exceeds_balance`) → a deposit is executed on
//! chain first → the output is produced → the voucher and the charge are stored in one write
//! ([`Channels::commit`]) → the answer. Nothing is answered without a stored voucher that covers
//! it; a request whose output fails, or a crash before the write, charges nothing and the same
//! voucher pays the retry; a charge is never stored twice: the next request must carry the next
//! ceiling.
//!
//! Claims: [`Channels::claim`] sends one `multicall(claim, settle)` for every channel with
//! unclaimed charges, then `InferenceMarket.collect` (which splits the value 60/25/15 like an
//! `exact` payment) — two transactions for any number of requests. The node claims when the
//! oldest unclaimed charge is older than `claim_after` (well inside the contract's 15-minute
//! minimum withdraw delay), at once when a payer starts a timed withdrawal, at shutdown, and
//! when the operator asks (`autonet serve`: `POST /v1/channels/claim`, loopback only). It must
//! not serve HTTP: the caller produces the output between [`Channels::admit`] and
//! [`Channels::commit`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::channel::{
    ChannelError, ChannelOffer, ChannelStateExtra, VerifiedChannelPayment, channel_codes,
};
use crate::channel_chain::{claim_and_settle, read_channel, send_deposit};
use crate::channel_store::{ChannelRecord, ChannelStore, OnchainChannel};
use crate::{SettleResponse, collect_uncollected, unix_now};
use alloy::primitives::{Address, B256, TxHash, U256};
use autonet_chain::{ChainProvider, TxOptions};
use serde_json::{Value, json};
use tracing::{info, warn};

/// Channel locks kept before idle ones are dropped.
pub const PRUNE_LOCKS_AT: usize = 1024;

/// The payment-channel side of a node.
#[derive(Debug)]
pub struct Channels {
    /// What is offered.
    pub offer: ChannelOffer,
    /// Vouchers and charges.
    pub store: ChannelStore,
    /// Claim when the oldest unclaimed charge is this old.
    pub claim_after: Duration,
    locks: Mutex<HashMap<B256, Arc<tokio::sync::Mutex<()>>>>,
    claim_lock: tokio::sync::Mutex<()>,
    /// Claim transactions sent (`multicall` and `collect` each count).
    pub claim_transactions: AtomicU64,
    /// Requests paid by a voucher.
    pub vouchers: AtomicU64,
}

/// A request whose voucher is stored and checked; [`Channels::commit`] records its charge once
/// the output exists.
pub struct Admitted {
    /// The channel as it is once this request is answered (charged up to its voucher).
    pub record: ChannelRecord,
    /// The payer.
    pub payer: Address,
    /// This request's charge.
    pub price: u128,
    /// The deposit transaction, when this request carried one, and its amount.
    pub deposit: Option<(TxHash, u128)>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Admitted {
    /// The channel.
    pub fn channel_id(&self) -> B256 {
        self.record.channel_id
    }
}

/// Why a channel payment is not admitted: the 402's code and message, and, for a cumulative
/// mismatch, the server's state for the client to resync from.
#[derive(Debug)]
pub struct Refusal {
    /// The x402 code and message.
    pub error: ChannelError,
    /// `extra.channelState` and `extra.voucherState` of the corrective 402.
    pub corrective: Option<Box<(ChannelStateExtra, Value)>>,
    /// An internal failure (500, nothing charged) rather than a refusal (402).
    pub internal: bool,
}

impl From<ChannelError> for Refusal {
    fn from(error: ChannelError) -> Self {
        Self {
            error,
            corrective: None,
            internal: false,
        }
    }
}

/// What one claim did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimReport {
    /// Channels claimed.
    pub channels: usize,
    /// Value claimed and settled to the payTo (wei).
    pub claimed: u128,
    /// The transactions: `multicall(claim, settle)` then `InferenceMarket.collect`.
    pub transactions: Vec<TxHash>,
}

impl Channels {
    /// Channels offered by `offer`, stored in `store`.
    pub fn new(offer: ChannelOffer, store: ChannelStore, claim_after: Duration) -> Self {
        Self {
            offer,
            store,
            claim_after,
            locks: Mutex::new(HashMap::new()),
            claim_lock: tokio::sync::Mutex::new(()),
            claim_transactions: AtomicU64::new(0),
            vouchers: AtomicU64::new(0),
        }
    }

    /// The lock serializing requests on channel `id`. Locks nobody holds or waits for are
    /// dropped once [`PRUNE_LOCKS_AT`] channels have one, so the map stays as large as the
    /// channels in use, not as all channels ever seen (a dropped lock is made again on demand:
    /// nobody held it, so nothing is left unserialized).
    fn lock_of(&self, id: B256) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.len() >= PRUNE_LOCKS_AT {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(id).or_default().clone()
    }

    /// Checks `payment` (already verified offline) against the channel's state and executes its
    /// deposit. Holds the channel until the returned [`Admitted`] is committed or dropped
    /// (dropped: nothing is charged).
    pub async fn admit(
        &self,
        provider: &ChainProvider,
        payment: &VerifiedChannelPayment,
        price: u128,
    ) -> Result<Admitted, Refusal> {
        let id = payment.channel_id;
        let guard = match tokio::time::timeout(
            Duration::from_secs(10),
            self.lock_of(id).lock_owned(),
        )
        .await
        {
            Ok(g) => g,
            Err(_) => {
                return Err(ChannelError::new(
                    channel_codes::CHANNEL_BUSY,
                    "another request holds this channel; retry",
                )
                .into());
            }
        };
        let now = unix_now();
        let stored = self.store.get(&id).map_err(internal)?;
        let (mut onchain, charged) = match &stored {
            Some(r) if payment.deposit.is_none() => (r.onchain.clone(), r.charged),
            Some(r) => (read_channel(provider, id).await?, r.charged),
            None => {
                let onchain = read_channel(provider, id).await?;
                let charged = onchain.total_claimed;
                (onchain, charged)
            }
        };
        let max = payment.voucher.max_claimable_amount;
        let expected = charged.saturating_add(price);
        if max != expected {
            let state = state_extra(id, &onchain, charged);
            let voucher_state = match &stored {
                Some(r) => json!({
                    "signedMaxClaimable": r.signed_max.to_string(),
                    "signature": r.signature.to_string(),
                }),
                None => json!({}),
            };
            return Err(Refusal {
                error: ChannelError::new(
                    channel_codes::AMOUNT_MISMATCH,
                    format!(
                        "the voucher's ceiling is {max}; this channel has been charged {charged}, so the next voucher must be {expected}"
                    ),
                ),
                corrective: Some(Box::new((state, voucher_state))),
                internal: false,
            });
        }
        if max <= onchain.total_claimed {
            return Err(ChannelError::new(
                channel_codes::BELOW_CLAIMED,
                format!(
                    "the voucher's ceiling {max} is not above the {} already claimed",
                    onchain.total_claimed
                ),
            )
            .into());
        }
        let incoming = payment.deposit.as_ref().map(|d| d.0).unwrap_or(0);
        if max > onchain.spendable().saturating_add(incoming) {
            if onchain.balance == 0 && incoming == 0 {
                return Err(ChannelError::new(
                    channel_codes::CHANNEL_NOT_FOUND,
                    format!("channel {id} holds nothing: deposit first"),
                )
                .into());
            }
            return Err(ChannelError::new(
                channel_codes::EXCEEDS_BALANCE,
                format!(
                    "the voucher's ceiling {max} exceeds what the channel can pay ({} deposited, {} being withdrawn{})",
                    onchain.balance,
                    onchain.withdraw_amount,
                    if incoming > 0 { format!(", {incoming} arriving") } else { String::new() }
                ),
            )
            .into());
        }
        let mut deposit = None;
        if let Some((amount, data)) = &payment.deposit {
            let options = TxOptions::default().with_timeout(Duration::from_secs(60));
            let tx = send_deposit(
                provider.clone(),
                &payment.config,
                *amount,
                data.clone(),
                &options,
            )
            .await?;
            info!(channel = %id, payer = %payment.config.payer, amount, %tx, "channel deposit executed");
            onchain = read_channel(provider, id).await?;
            deposit = Some((tx, *amount));
            if max > onchain.spendable() {
                return Err(ChannelError::new(
                    channel_codes::EXCEEDS_BALANCE,
                    format!(
                        "after the deposit the channel holds {}, below the voucher's {max}",
                        onchain.balance
                    ),
                )
                .into());
            }
        }
        let record = ChannelRecord {
            channel_id: id,
            config: payment.config.clone(),
            charged: max,
            signed_max: max,
            signature: payment.voucher.signature.clone(),
            onchain,
            first_unclaimed_at: stored.as_ref().and_then(|r| r.first_unclaimed_at),
            updated_at: now,
        };
        Ok(Admitted {
            record,
            payer: payment.config.payer,
            price,
            deposit,
            _guard: guard,
        })
    }

    /// Stores the voucher and charge of a request whose output exists (one write, durable across
    /// a restart when it returns) and builds its `PAYMENT-RESPONSE`.
    pub fn commit(&self, admitted: Admitted, network: &str) -> Result<SettleResponse, Refusal> {
        let mut record = admitted.record.clone();
        let now = unix_now();
        record.first_unclaimed_at = Some(record.first_unclaimed_at.unwrap_or(now));
        record.updated_at = now;
        self.store.commit(&record).map_err(internal)?;
        self.vouchers.fetch_add(1, Ordering::Relaxed);
        let state = state_extra(record.channel_id, &record.onchain, record.charged);
        let mut extra = serde_json::Map::new();
        extra.insert("chargedAmount".into(), admitted.price.to_string().into());
        extra.insert(
            "channelState".into(),
            serde_json::to_value(&state).unwrap_or(Value::Null),
        );
        let (transaction, amount) = match admitted.deposit {
            Some((tx, amount)) => (tx.to_string(), amount.to_string()),
            None => (String::new(), String::new()),
        };
        Ok(SettleResponse {
            success: true,
            error_reason: None,
            payer: Some(admitted.payer),
            transaction,
            network: network.to_owned(),
            amount: Some(amount),
            extra: Some(extra),
        })
    }

    /// Whether a claim is due at unix time `now`: the oldest unclaimed charge is `claim_after`
    /// old, or a channel with unclaimed charges has a withdrawal pending.
    pub fn claim_due(&self, now: u64) -> bool {
        match self.store.unclaimed() {
            Ok(rows) => rows.iter().any(|r| {
                r.onchain.withdraw_requested_at != 0
                    || r.first_unclaimed_at
                        .is_some_and(|t| now.saturating_sub(t) >= self.claim_after.as_secs())
            }),
            Err(e) => {
                warn!(error = %e, "reading unclaimed channels");
                false
            }
        }
    }

    /// Claims every unclaimed charge and accounts it in the InferenceMarket: at most two
    /// transactions (none when nothing is unclaimed).
    pub async fn claim(
        &self,
        provider: &ChainProvider,
        market: Address,
        project_id: u64,
        node: Address,
    ) -> Result<ClaimReport, String> {
        let _one_at_a_time = self.claim_lock.lock().await;
        let mut rows = self.store.unclaimed().map_err(|e| e.to_string())?;
        // The chain may already hold a claim this store did not record (a crash after the
        // transaction): refresh and keep what is still unclaimed.
        let now = unix_now();
        for r in &mut rows {
            match read_channel(provider, r.channel_id).await {
                Ok(onchain) => {
                    let _ = self.store.set_onchain(&r.channel_id, &onchain, now);
                    let _ = self
                        .store
                        .mark_claimed(&r.channel_id, onchain.total_claimed, now);
                    r.onchain = onchain;
                }
                Err(e) => return Err(e.to_string()),
            }
            // A payer's withdrawal that completed before the claim (the node was down longer
            // than the withdraw delay) left less than was charged: claim what is there, so one
            // such channel never makes the whole batch revert; the rest is lost to this node.
            if r.charged > r.onchain.balance {
                warn!(
                    channel = %r.channel_id, charged = r.charged, balance = r.onchain.balance,
                    "a withdrawal left less than was charged: claiming what the channel holds"
                );
                r.charged = r.onchain.balance;
            }
        }
        rows.retain(|r| r.unclaimed() > 0);
        let options = TxOptions::default().with_timeout(Duration::from_secs(120));
        if rows.is_empty() {
            // A claim whose collect did not happen (a crash between the two) left value at the
            // payTo: account it now (no transaction when nothing waits).
            let mut report = ClaimReport::default();
            if let Ok(Some(c)) = collect_uncollected(
                provider.clone(),
                market,
                U256::from(project_id),
                node,
                &options,
            )
            .await
            {
                self.claim_transactions.fetch_add(1, Ordering::Relaxed);
                report.transactions.push(c.receipt.transaction_hash);
            }
            return Ok(report);
        }
        let receipt = claim_and_settle(
            provider.clone(),
            &rows,
            self.offer.pay_to,
            self.offer.asset,
            &options,
        )
        .await
        .map_err(|e| format!("claiming {} channel(s): {e}", rows.len()))?;
        self.claim_transactions.fetch_add(1, Ordering::Relaxed);
        let now = unix_now();
        for (id, total) in &receipt.claimed {
            if let Err(e) = self.store.mark_claimed(id, *total, now) {
                warn!(channel = %id, error = %e, "recording a claim (the chain has it; the next claim re-reads it)");
            }
        }
        let mut report = ClaimReport {
            channels: rows.len(),
            claimed: receipt.settled,
            transactions: vec![receipt.tx],
        };
        match collect_uncollected(
            provider.clone(),
            market,
            U256::from(project_id),
            node,
            &options,
        )
        .await
        {
            Ok(Some(c)) => {
                self.claim_transactions.fetch_add(1, Ordering::Relaxed);
                report.transactions.push(c.receipt.transaction_hash);
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "collecting claimed channel value into the market (retried at the next claim)")
            }
        }
        info!(
            channels = report.channels,
            claimed = report.claimed,
            transactions = report.transactions.len(),
            "channel vouchers claimed and split through the InferenceMarket"
        );
        Ok(report)
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal {
        error: ChannelError::new(
            channel_codes::STATE_UNAVAILABLE,
            format!("the channel state could not be recorded; nothing was charged: {e}"),
        ),
        corrective: None,
        internal: true,
    }
}

fn state_extra(id: B256, onchain: &OnchainChannel, charged: u128) -> ChannelStateExtra {
    ChannelStateExtra {
        channel_id: id,
        balance: onchain.balance,
        total_claimed: onchain.total_claimed,
        withdraw_requested_at: onchain.withdraw_requested_at,
        refund_nonce: onchain.refund_nonce.clone(),
        charged_cumulative_amount: charged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Channels {
        let offer = ChannelOffer {
            chain_id: 1,
            asset: Address::repeat_byte(1),
            domain: ("ATN".into(), "1".into()),
            pay_to: Address::repeat_byte(2),
            receiver_authorizer: Address::repeat_byte(3),
            withdraw_delay: 900,
            max_timeout_secs: 60,
        };
        Channels::new(
            offer,
            ChannelStore::open_in_memory().unwrap(),
            Duration::from_secs(300),
        )
    }

    #[tokio::test]
    async fn idle_channel_locks_are_dropped_and_held_ones_kept() {
        let c = channels();
        let busy = B256::repeat_byte(0xee);
        let held = c.lock_of(busy).lock_owned().await;
        let waiting = c.lock_of(busy);
        for i in 0..3 * PRUNE_LOCKS_AT as u64 {
            let _ = c.lock_of(B256::from(alloy::primitives::U256::from(i)));
        }
        let len = c.locks.lock().unwrap().len();
        assert!(len <= PRUNE_LOCKS_AT, "{len} locks kept for idle channels");
        // The held lock survived: a request on that channel still waits for it.
        assert!(Arc::ptr_eq(&c.lock_of(busy), &waiting));
        assert!(waiting.try_lock().is_err());
        drop(held);
        assert!(waiting.try_lock().is_ok());
    }
}
