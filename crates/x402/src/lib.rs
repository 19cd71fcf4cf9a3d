//! x402 v2 payments for Autonet's paid inference.
//!
//! A paid route answers `402` with a `PAYMENT-REQUIRED` header offering one
//! [`PaymentRequirements`] (scheme `exact`, network `eip155:<chainId>`, asset = the ATN token,
//! `payTo` = the node's payment address for the project ([`payment_address`]), amount = the
//! project's price, `extra` = ATN's EIP-712 `name`/`version`). The client retries with `PAYMENT-SIGNATURE`: a [`PaymentPayload`]
//! carrying an EIP-3009 `TransferWithAuthorization` signed for that requirement. The server
//! [`verify()`]s it offline, [`check_onchain`]s balance and nonce, claims the nonce in its
//! [`NonceStore`], serves, [`send_settle`]s through `InferenceMarket.settle` and answers with a
//! `PAYMENT-RESPONSE` ([`SettleResponse`]). Refusals carry an x402 error code
//! ([`PaymentError::code`]).
//!
//! Modules: [`types`] (wire types), [`header`] (base64 JSON headers), [`eip712`] (digest,
//! signing, recovery), [`mod@verify`] (offline checks and error codes), [`onchain`] (balance, nonce
//! state, settlement), [`store`] (persisted nonces), [`client`] (the paying side). This crate
//! Payment channels (the `batch-settlement` scheme) live in [`channel`] (wire types, EIP-712,
//! offline checks), [`channel_store`] (persisted vouchers and charges), [`channel_chain`]
//! (deposits, one-transaction claims) and [`channel_server`] (admit, commit, claim). This crate
//! must not contain HTTP serving or model code: `autonet serve` and `autonet infer` build on it.
//! The wire format, checks and error codes are documented in `docs/x402.md`.

#![warn(missing_docs)]

pub mod channel;
pub mod channel_chain;
pub mod channel_server;
pub mod channel_store;
pub mod client;
pub mod eip712;
pub mod header;
pub mod onchain;
pub mod store;
pub mod types;
pub mod verify;

pub use client::{ClientError, PaymentSigner};
pub use header::{
    HeaderError, decode_payment_required, decode_payment_response, encode_payment_required,
    encode_payment_response, encode_payment_signature,
};
pub use onchain::{
    PendingSettlement, SettleError, check_onchain, collect_uncollected, payment_address,
    send_settle,
};
pub use store::{ClaimOutcome, NonceKey, NonceStore, PaymentRecord, PaymentState, StoreError};
pub use types::{
    Authorization, ExactEvmPayload, PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER, PaymentPayload, PaymentRequired, PaymentRequirements, ResourceInfo,
    SCHEME_EXACT, SettleResponse, X402_VERSION,
};
pub use verify::{
    PaymentError, VerifiedPayment, codes, decode_payment_signature, verify, verify_header,
};

/// The current unix time in seconds (the `now` of [`verify()`] and [`PaymentSigner::sign`]).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
