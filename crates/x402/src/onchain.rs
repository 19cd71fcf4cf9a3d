//! The chain side of a payment: the payTo to offer, the checks that need state, and settlement
//! through `InferenceMarket.settle`.
//!
//! This module owns [`payment_address`] (the `payTo` a node offers for a project:
//! `InferenceMarket.paymentAddress(project, node)`, one address per project and node, so that the
//! signed authorization can only pay that project and that node), [`check_onchain`] (the payer's
//! ATN balance covers the value and the EIP-3009 nonce is unused on the token), [`send_settle`],
//! which simulates and sends `settle` from the provider's wallet and returns as soon as the node
//! accepted the transaction, and [`collect_uncollected`], which accounts payments that reached
//! the node's payTo without its `settle` (an authorization submitted straight to the token). The
//! [`PendingSettlement`] it returns awaits the receipt and the `Settled` event later, so the
//! response can be served without waiting for a block. Reverts surface as the project's
//! [`TxError`] with decoded custom errors (`ATNTokenAuthorizationUsed`, ...), mapped to x402
//! codes by [`SettleError::code`]. It must not decide whether to settle: the caller claims the
//! nonce in [`crate::store`] first.
//!
//! The provider should be the project's nonce-safe provider (`autonet_chain::connect`).

use alloy::contract::SolCallBuilder;
use alloy::primitives::{Address, Bytes, TxHash, U256};
use alloy::providers::Provider;
use autonet_bindings::market::InferenceMarket;
use autonet_bindings::token::ATNToken;
use autonet_bindings::{DecodedRevert, decode_revert};
use autonet_chain::tx::{confirm_receipt, wait_receipt};
use autonet_chain::{Confirmed, TxError, TxOptions, send_and_confirm};

use crate::verify::{PaymentError, VerifiedPayment, codes};

/// The x402 `payTo` that `node` offers when selling project `project_id` through the
/// InferenceMarket at `market`: `paymentAddress(project_id, node)`. It depends only on the market,
/// the token, the project and the node, so a node reads it once and keeps it. A payment to it can
/// only be settled by `node` (the sender of `settle`) for `project_id`.
pub async fn payment_address<P: Provider>(
    provider: &P,
    market: Address,
    project_id: U256,
    node: Address,
) -> Result<Address, alloy::contract::Error> {
    InferenceMarket::new(market, provider)
        .paymentAddress(project_id, node)
        .call()
        .await
}

/// Accounts whatever waits at `node`'s payTo for `project_id` (authorizations a third party
/// submitted straight to the token, plain transfers) to that project and node with
/// `InferenceMarket.collect`, sent from `provider`'s wallet (anyone may send it: the credit goes
/// to `node` whoever sends it). `Ok(None)` when nothing waits there.
pub async fn collect_uncollected<P: Provider + Clone>(
    provider: P,
    market: Address,
    project_id: U256,
    node: Address,
    options: &TxOptions,
) -> Result<Option<Confirmed<InferenceMarket::Collected>>, SettleError> {
    let contract = InferenceMarket::new(market, provider);
    let waiting = contract
        .uncollectedBalance(project_id, node)
        .call()
        .await
        .map_err(|source| TxError::Send { to: market, source })?;
    if waiting.is_zero() {
        return Ok(None);
    }
    let confirmed = send_and_confirm::<InferenceMarket::Collected, _, _>(
        &contract.collect(project_id, node),
        options,
    )
    .await?;
    tracing::info!(
        project = %project_id, %node, amount = %confirmed.event.value,
        "payments made straight to this node's payTo were collected"
    );
    Ok(Some(confirmed))
}

/// Reads the payer's balance and the nonce's state on the token (`payment.asset`).
///
/// Fails with [`PaymentError::NonceAlreadyUsed`] when `authorizationState(from, nonce)` is set
/// (settled, front-run straight to the token, or cancelled), [`PaymentError::InsufficientFunds`]
/// when the balance is below the value, and [`PaymentError::Chain`] when the node cannot be read.
pub async fn check_onchain<P: Provider>(
    provider: &P,
    payment: &VerifiedPayment,
) -> Result<(), PaymentError> {
    let token = ATNToken::new(payment.asset, provider);
    let a = &payment.authorization;
    let used_call = token.authorizationState(a.from, a.nonce);
    let balance_call = token.balanceOf(a.from);
    let (used, balance) = tokio::try_join!(used_call.call(), balance_call.call())
        .map_err(|e| PaymentError::Chain(e.to_string()))?;
    if used {
        return Err(PaymentError::NonceAlreadyUsed {
            payer: a.from,
            nonce: a.nonce,
        });
    }
    if balance < a.value {
        return Err(PaymentError::InsufficientFunds {
            payer: a.from,
            balance,
            required: a.value,
        });
    }
    Ok(())
}

/// A settlement that failed before or after it was sent.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SettleError(#[from] pub TxError);

impl SettleError {
    /// The decoded revert, if the failure is one.
    pub fn revert(&self) -> Option<&DecodedRevert> {
        match &self.0 {
            TxError::Reverted { revert, .. } => Some(revert),
            TxError::RevertedOnChain { revert, .. } => revert.as_ref(),
            _ => None,
        }
    }

    /// The x402 error code for `SettleResponse.errorReason` / a 402's `error`.
    pub fn code(&self) -> &'static str {
        match self.revert().map(|r| r.name.as_str()) {
            Some("ATNTokenAuthorizationUsed") => codes::NONCE_ALREADY_USED,
            Some("ATNTokenAuthorizationExpired") => codes::VALID_BEFORE,
            Some("ATNTokenAuthorizationNotYetValid") => codes::VALID_AFTER,
            Some("ATNTokenInvalidSignature") => codes::SIGNATURE,
            Some("ERC20InsufficientBalance") => codes::INSUFFICIENT_FUNDS,
            Some("InferenceMarketUnderpaid") => codes::VALUE_MISMATCH,
            Some(_) => codes::INVALID_TRANSACTION_STATE,
            None => match &self.0 {
                TxError::RevertedUnknown { .. } | TxError::RevertedOnChain { .. } => {
                    codes::INVALID_TRANSACTION_STATE
                }
                _ => codes::UNEXPECTED_SETTLE_ERROR,
            },
        }
    }
}

/// A `settle` transaction the node accepted; [`PendingSettlement::confirm`] awaits its receipt.
#[derive(Debug, Clone)]
pub struct PendingSettlement<P> {
    provider: P,
    market: Address,
    tx_hash: TxHash,
    call: SolCallBuilder<P, InferenceMarket::settleCall>,
}

impl<P: Provider + Clone> PendingSettlement<P> {
    /// The transaction hash (for `PAYMENT-RESPONSE.transaction`).
    pub fn tx_hash(&self) -> TxHash {
        self.tx_hash
    }

    /// Waits (polling, at most `options.timeout`) for the receipt with `options.confirmations`,
    /// and checks that it succeeded and that the market emitted `Settled`. A reverted receipt is
    /// replayed on its parent block to decode the reason.
    pub async fn confirm(
        &self,
        options: &TxOptions,
    ) -> Result<Confirmed<InferenceMarket::Settled>, SettleError> {
        let tx_hash = self.tx_hash;
        let receipt = wait_receipt(&self.provider, tx_hash, options).await?;
        let confirmed = confirm_receipt::<InferenceMarket::Settled, _, _>(
            &self.call,
            receipt,
            options.emitter.unwrap_or(self.market),
            Some("InferenceMarket"),
        )
        .await?;
        tracing::debug!(%tx_hash, "x402 settlement confirmed");
        Ok(confirmed)
    }
}

fn revert_error(to: Address, data: Bytes) -> TxError {
    match decode_revert(&data, Some("InferenceMarket")) {
        Some(revert) => TxError::Reverted { to, revert, data },
        None => TxError::RevertedUnknown { to, data },
    }
}

/// Settles `payment` for project `project_id` through the InferenceMarket at `market`, from
/// `provider`'s wallet (credited as the provider): sends it (the gas estimate simulates it first:
/// a revert is returned decoded and nothing is broadcast) and returns once the node accepted the
/// transaction. The market executes the authorization to `paymentAddress(project_id, sender)`, so
/// `payment` must have been verified against that payTo ([`payment_address`]); an authorization
/// to any other address reverts with the token's `ATNTokenInvalidSignature`.
pub async fn send_settle<P: Provider + Clone>(
    provider: P,
    market: Address,
    project_id: U256,
    payment: &VerifiedPayment,
) -> Result<PendingSettlement<P>, SettleError> {
    let a = &payment.authorization;
    let contract = InferenceMarket::new(market, provider.clone());
    let call = contract
        .settle(
            project_id,
            a.from,
            a.value,
            a.valid_after,
            a.valid_before,
            a.nonce,
            payment.signature.clone(),
        )
        .with_cloned_provider();
    // Sending estimates the gas first, which simulates the call: a revert comes back decoded and
    // nothing is broadcast (one round trip fewer than a separate simulation).
    let pending = match call.send().await {
        Ok(pending) => pending,
        Err(err) => {
            let reverted_without_data = matches!(
                &err,
                alloy::contract::Error::TransportError(t)
                    if t.as_error_resp().is_some_and(|p| p.message.contains("revert"))
            );
            return Err(match err.as_revert_data() {
                Some(data) => revert_error(market, data),
                None if reverted_without_data => revert_error(market, Bytes::new()),
                None => TxError::Send {
                    to: market,
                    source: err,
                },
            }
            .into());
        }
    };
    let tx_hash = *pending.tx_hash();
    tracing::debug!(%tx_hash, payer = %a.from, value = %a.value, "x402 settlement sent");
    Ok(PendingSettlement {
        provider,
        market,
        tx_hash,
        call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolError;
    use std::time::Duration;

    fn reverted(data: Vec<u8>) -> SettleError {
        TxError::Reverted {
            to: Address::ZERO,
            revert: decode_revert(&data, Some("InferenceMarket")).unwrap(),
            data: data.into(),
        }
        .into()
    }

    #[test]
    fn token_reverts_map_to_x402_codes() {
        let used = ATNToken::ATNTokenAuthorizationUsed {
            authorizer: Address::ZERO,
            nonce: Default::default(),
        }
        .abi_encode();
        assert_eq!(reverted(used).code(), codes::NONCE_ALREADY_USED);
        let expired = ATNToken::ATNTokenAuthorizationExpired {
            validBefore: U256::from(1),
            nowTs: U256::from(2),
        }
        .abi_encode();
        assert_eq!(reverted(expired).code(), codes::VALID_BEFORE);
        let sig = ATNToken::ATNTokenInvalidSignature {}.abi_encode();
        assert_eq!(reverted(sig).code(), codes::SIGNATURE);
        let underpaid = InferenceMarket::InferenceMarketUnderpaid {
            value: U256::from(1),
            price: U256::from(2),
        }
        .abi_encode();
        assert_eq!(reverted(underpaid).code(), codes::VALUE_MISMATCH);
        let unknown = InferenceMarket::InferenceMarketUnknownProject {
            projectId: U256::from(9),
        }
        .abi_encode();
        assert_eq!(reverted(unknown).code(), codes::INVALID_TRANSACTION_STATE);
        let timeout: SettleError = TxError::Timeout {
            tx_hash: TxHash::ZERO,
            timeout: Duration::from_secs(1),
        }
        .into();
        assert_eq!(timeout.code(), codes::UNEXPECTED_SETTLE_ERROR);
    }
}
