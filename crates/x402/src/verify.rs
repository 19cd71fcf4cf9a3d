//! Offline verification of an `exact` EVM payment against the server's requirement.
//!
//! This module owns [`verify`] (and [`verify_header`], which decodes first) and the
//! [`PaymentError`] every refusal is reported with: an x402 error code ([`PaymentError::code`])
//! for the `error` field of the 402 answer, and a message for humans. It must not touch the
//! chain or the nonce store: balance and nonce state are checked by [`crate::onchain`], replay
//! across requests by [`crate::store`].
//!
//! Decisions, from the x402 v2 specification (`x402-specification-v2.md` §9,
//! `schemes/exact/scheme_exact_evm.md`) and the official `@x402/evm` 2.27 facilitator:
//! - `exact` means exact: `authorization.value` must **equal** the required amount
//!   (`invalid_exact_evm_payload_authorization_value_mismatch`, "does not exactly match"); the
//!   InferenceMarket contract would accept more, the protocol does not.
//! - `validAfter` must be strictly in the past (the token requires `block.timestamp >
//!   validAfter`; the official client signs `validAfter = 0`).
//! - `validBefore` must leave at least [`MIN_VALIDITY_MARGIN_SECS`] for the settlement to land
//!   (the official facilitator uses 6 s), and be at most `maxTimeoutSeconds` +
//!   [`CLOCK_SKEW_SECS`] ahead (an authorization valid for longer than offered is refused).
//! - Checks of the signed fields run before the signature, so a tampered field is reported by
//!   name (`..._recipient_mismatch`, `..._value_mismatch`) rather than as a bad signature.

use alloy::primitives::{Address, B256, Bytes, U256};

use crate::eip712::{SignatureError, token_domain, verify_authorization_signature};
use crate::header::{HeaderError, decode_header_json};
use crate::store::NonceKey;
use crate::types::{
    Authorization, PaymentPayload, PaymentRequirements, SCHEME_EXACT, SettleResponse, X402_VERSION,
};

/// `validBefore` must be at least this many seconds after `now` (time to settle).
pub const MIN_VALIDITY_MARGIN_SECS: u64 = 6;
/// Tolerated clock difference between client and server when bounding `validBefore`.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// x402 error codes (spec §9, plus the nonce code of `@x402/evm`).
pub mod codes {
    /// The payer's balance is below the value.
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
    /// `validAfter` is not yet passed.
    pub const VALID_AFTER: &str = "invalid_exact_evm_payload_authorization_valid_after";
    /// `validBefore` is passed, too close, or too far.
    pub const VALID_BEFORE: &str = "invalid_exact_evm_payload_authorization_valid_before";
    /// `value` differs from the required amount.
    pub const VALUE_MISMATCH: &str = "invalid_exact_evm_payload_authorization_value_mismatch";
    /// The signature does not verify for `from`.
    pub const SIGNATURE: &str = "invalid_exact_evm_payload_signature";
    /// `to` is not `payTo`.
    pub const RECIPIENT_MISMATCH: &str = "invalid_exact_evm_payload_recipient_mismatch";
    /// The nonce was already used (on chain or by an earlier request); from `@x402/evm`, the
    /// spec has no code for it.
    pub const NONCE_ALREADY_USED: &str = "invalid_exact_evm_nonce_already_used";
    /// Another network than the offered one.
    pub const INVALID_NETWORK: &str = "invalid_network";
    /// The payment header or payload is malformed.
    pub const INVALID_PAYLOAD: &str = "invalid_payload";
    /// The requirement the payment was made for is not the offered one (or the offer is
    /// unusable).
    pub const INVALID_PAYMENT_REQUIREMENTS: &str = "invalid_payment_requirements";
    /// Another scheme than `exact`.
    pub const INVALID_SCHEME: &str = "invalid_scheme";
    /// Another protocol version than 2.
    pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
    /// The settlement transaction failed or was rejected.
    pub const INVALID_TRANSACTION_STATE: &str = "invalid_transaction_state";
    /// Verification could not complete (node unreachable, ...).
    pub const UNEXPECTED_VERIFY_ERROR: &str = "unexpected_verify_error";
    /// Settlement could not complete for another reason.
    pub const UNEXPECTED_SETTLE_ERROR: &str = "unexpected_settle_error";
}

/// Why a payment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The `PAYMENT-SIGNATURE` header or its payload does not parse.
    #[error("malformed payment: {0}")]
    Malformed(String),
    /// Another x402 version.
    #[error("x402 version {got:?} is not supported, use {X402_VERSION}")]
    UnsupportedVersion {
        /// The version sent (`None` when missing or not a number).
        got: Option<u64>,
    },
    /// Another scheme.
    #[error("scheme {got:?} is not accepted, use {SCHEME_EXACT:?}")]
    SchemeMismatch {
        /// The scheme the payment was made for.
        got: String,
    },
    /// Another network.
    #[error("payment is for network {got:?}, this server accepts {expected:?}")]
    NetworkMismatch {
        /// The payment's network.
        got: String,
        /// The offered network.
        expected: String,
    },
    /// Another token.
    #[error("payment is in asset {got}, this server accepts {expected}")]
    AssetMismatch {
        /// The payment's asset, as sent.
        got: String,
        /// The offered asset.
        expected: Address,
    },
    /// The server's own requirement is unusable (a configuration error).
    #[error("the server's payment requirement is invalid: {0}")]
    InvalidRequirements(String),
    /// `authorization.to` is not `payTo`.
    #[error("payment goes to {got}, it must go to {expected}")]
    RecipientMismatch {
        /// The authorization's recipient.
        got: Address,
        /// The required recipient.
        expected: Address,
    },
    /// `authorization.value` is not the price.
    #[error("payment authorizes {got} atomic units, the price is exactly {expected}")]
    ValueMismatch {
        /// The authorized value.
        got: U256,
        /// The price.
        expected: U256,
    },
    /// `validAfter` is not yet passed.
    #[error("payment is valid only after {valid_after}, now is {now}")]
    NotYetValid {
        /// The authorization's `validAfter`.
        valid_after: U256,
        /// The server's clock.
        now: u64,
    },
    /// `validBefore` is passed, or too close to settle in time.
    #[error(
        "payment expired: valid before {valid_before}, now is {now} and settling needs {MIN_VALIDITY_MARGIN_SECS} s"
    )]
    Expired {
        /// The authorization's `validBefore`.
        valid_before: U256,
        /// The server's clock.
        now: u64,
    },
    /// `validBefore` is further than the offered `maxTimeoutSeconds` allows.
    #[error("payment is valid until {valid_before}, longer than the allowed {max_valid_before}")]
    WindowTooLong {
        /// The authorization's `validBefore`.
        valid_before: U256,
        /// `now + maxTimeoutSeconds + CLOCK_SKEW_SECS`.
        max_valid_before: u64,
    },
    /// The signature does not verify for `authorization.from`.
    #[error("invalid payment signature: {0}")]
    InvalidSignature(#[from] SignatureError),
    /// The nonce was used already (settled, being settled, or cancelled).
    #[error("payment nonce {nonce} of {payer} was already used")]
    NonceAlreadyUsed {
        /// The payer.
        payer: Address,
        /// The nonce.
        nonce: B256,
    },
    /// The payer cannot cover the value.
    #[error("payer {payer} holds {balance}, the payment needs {required}")]
    InsufficientFunds {
        /// The payer.
        payer: Address,
        /// Its token balance.
        balance: U256,
        /// The value.
        required: U256,
    },
    /// The chain could not be read to finish verifying.
    #[error("could not verify the payment on chain: {0}")]
    Chain(String),
}

impl PaymentError {
    /// The x402 error code, for `PaymentRequired.error` / `SettleResponse.errorReason`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => codes::INVALID_PAYLOAD,
            Self::UnsupportedVersion { .. } => codes::INVALID_X402_VERSION,
            Self::SchemeMismatch { .. } => codes::INVALID_SCHEME,
            Self::NetworkMismatch { .. } => codes::INVALID_NETWORK,
            Self::AssetMismatch { .. } | Self::InvalidRequirements(_) => {
                codes::INVALID_PAYMENT_REQUIREMENTS
            }
            Self::RecipientMismatch { .. } => codes::RECIPIENT_MISMATCH,
            Self::ValueMismatch { .. } => codes::VALUE_MISMATCH,
            Self::NotYetValid { .. } => codes::VALID_AFTER,
            Self::Expired { .. } | Self::WindowTooLong { .. } => codes::VALID_BEFORE,
            Self::InvalidSignature(_) => codes::SIGNATURE,
            Self::NonceAlreadyUsed { .. } => codes::NONCE_ALREADY_USED,
            Self::InsufficientFunds { .. } => codes::INSUFFICIENT_FUNDS,
            Self::Chain(_) => codes::UNEXPECTED_VERIFY_ERROR,
        }
    }

    /// Whether the client can fix it by paying again (every refusal but an unreadable chain).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Chain(_) | Self::InvalidRequirements(_))
    }
}

impl From<HeaderError> for PaymentError {
    fn from(e: HeaderError) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// A payment that passed [`verify`]: everything needed to check it on chain, claim its nonce
/// and settle it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayment {
    /// The payer (`authorization.from`, recovered from the signature).
    pub payer: Address,
    /// The signed authorization.
    pub authorization: Authorization,
    /// The 65-byte signature.
    pub signature: Bytes,
    /// The EIP-712 digest that was signed.
    pub digest: B256,
    /// The chain.
    pub chain_id: u64,
    /// CAIP-2 network (`eip155:<chain_id>`).
    pub network: String,
    /// The token.
    pub asset: Address,
    /// The recipient (the offer's payTo: the node's payment address for the project).
    pub pay_to: Address,
}

impl VerifiedPayment {
    /// The key under which its nonce is claimed in the [`crate::store::NonceStore`].
    pub fn nonce_key(&self) -> NonceKey {
        NonceKey {
            chain_id: self.chain_id,
            asset: self.asset,
            payer: self.payer,
            nonce: self.authorization.nonce,
        }
    }

    /// The value paid.
    pub fn value(&self) -> U256 {
        self.authorization.value
    }

    /// The `PAYMENT-RESPONSE` of its settlement by `tx`.
    pub fn settle_response(&self, tx: alloy::primitives::TxHash) -> SettleResponse {
        SettleResponse::success(self.payer, tx, self.network.clone())
    }
}

/// The server's requirement, parsed once.
struct Offer<'a> {
    chain_id: u64,
    asset: Address,
    pay_to: Address,
    amount: U256,
    name: &'a str,
    version: &'a str,
}

fn offer(requirements: &PaymentRequirements) -> Result<Offer<'_>, PaymentError> {
    let invalid = |what: &str| PaymentError::InvalidRequirements(what.to_owned());
    if requirements.scheme != SCHEME_EXACT {
        return Err(invalid("scheme is not \"exact\""));
    }
    let chain_id = requirements
        .chain_id()
        .ok_or_else(|| invalid("network is not eip155:<chainId>"))?;
    let asset = requirements
        .asset_address()
        .ok_or_else(|| invalid("asset is not an address"))?;
    let pay_to = requirements
        .pay_to_address()
        .ok_or_else(|| invalid("payTo is not an address"))?;
    let amount = requirements
        .amount_value()
        .ok_or_else(|| invalid("amount is not an integer"))?;
    let (name, version) = requirements.eip712_name_version().ok_or_else(|| {
        invalid("extra.name / extra.version (the token's EIP-712 domain) missing")
    })?;
    Ok(Offer {
        chain_id,
        asset,
        pay_to,
        amount,
        name,
        version,
    })
}

/// Verifies `payload` against the server's `requirements` at unix time `now`, offline: version,
/// scheme, network, asset, recipient, exact value, validity window, then the EIP-712 signature
/// (which must recover to `authorization.from`, with a low `s`).
pub fn verify(
    payload: &PaymentPayload,
    requirements: &PaymentRequirements,
    now: u64,
) -> Result<VerifiedPayment, PaymentError> {
    if payload.x402_version != X402_VERSION {
        return Err(PaymentError::UnsupportedVersion {
            got: Some(payload.x402_version.into()),
        });
    }
    let offer = offer(requirements)?;
    let accepted = &payload.accepted;
    if accepted.scheme != SCHEME_EXACT {
        return Err(PaymentError::SchemeMismatch {
            got: accepted.scheme.clone(),
        });
    }
    if accepted.network != requirements.network {
        return Err(PaymentError::NetworkMismatch {
            got: accepted.network.clone(),
            expected: requirements.network.clone(),
        });
    }
    if accepted.asset_address() != Some(offer.asset) {
        return Err(PaymentError::AssetMismatch {
            got: accepted.asset.clone(),
            expected: offer.asset,
        });
    }

    let a = &payload.payload.authorization;
    if a.to != offer.pay_to {
        return Err(PaymentError::RecipientMismatch {
            got: a.to,
            expected: offer.pay_to,
        });
    }
    if a.value != offer.amount {
        return Err(PaymentError::ValueMismatch {
            got: a.value,
            expected: offer.amount,
        });
    }
    if a.valid_after >= U256::from(now) {
        return Err(PaymentError::NotYetValid {
            valid_after: a.valid_after,
            now,
        });
    }
    if a.valid_before < U256::from(now.saturating_add(MIN_VALIDITY_MARGIN_SECS)) {
        return Err(PaymentError::Expired {
            valid_before: a.valid_before,
            now,
        });
    }
    let max_valid_before = now
        .saturating_add(requirements.max_timeout_seconds)
        .saturating_add(CLOCK_SKEW_SECS);
    if a.valid_before > U256::from(max_valid_before) {
        return Err(PaymentError::WindowTooLong {
            valid_before: a.valid_before,
            max_valid_before,
        });
    }

    let domain = token_domain(offer.name, offer.version, offer.chain_id, offer.asset);
    let digest = verify_authorization_signature(a, &domain, &payload.payload.signature)?;
    Ok(VerifiedPayment {
        payer: a.from,
        authorization: *a,
        signature: payload.payload.signature.clone(),
        digest,
        chain_id: offer.chain_id,
        network: requirements.network.clone(),
        asset: offer.asset,
        pay_to: offer.pay_to,
    })
}

/// Decodes a `PAYMENT-SIGNATURE` header value: a version other than 2 is
/// `invalid_x402_version` (checked before the v2 shape), anything unparsable `invalid_payload`.
pub fn decode_payment_signature(header: &str) -> Result<PaymentPayload, PaymentError> {
    let json = decode_header_json(header)?;
    let value: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| PaymentError::Malformed(e.to_string()))?;
    let version = value.get("x402Version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(X402_VERSION)) {
        return Err(PaymentError::UnsupportedVersion { got: version });
    }
    serde_json::from_value(value).map_err(|e| PaymentError::Malformed(e.to_string()))
}

/// [`decode_payment_signature`] then [`verify`].
pub fn verify_header(
    header: &str,
    requirements: &PaymentRequirements,
    now: u64,
) -> Result<VerifiedPayment, PaymentError> {
    verify(&decode_payment_signature(header)?, requirements, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::PaymentSigner;
    use crate::header::{encode_header, encode_payment_signature};
    use crate::types::{PaymentRequired, ResourceInfo};
    use alloy::primitives::address;
    use alloy::signers::local::PrivateKeySigner;

    const NOW: u64 = 1_700_000_000;
    const ASSET: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
    const MARKET: Address = address!("8A791620dd6260079BF849Dc5567aDC3F2FdC318");

    fn price() -> U256 {
        U256::from(10u64).pow(U256::from(18))
    }

    fn requirements() -> PaymentRequirements {
        PaymentRequirements::exact_evm(31337, ASSET, MARKET, price(), 300, "Autonet", "1")
    }

    fn signer() -> PrivateKeySigner {
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
            .parse()
            .unwrap()
    }

    fn paid() -> PaymentPayload {
        let required = PaymentRequired::new(
            ResourceInfo {
                url: "http://x/infer".into(),
                ..Default::default()
            },
            vec![requirements()],
        );
        PaymentSigner::new(signer()).sign(&required, NOW).unwrap()
    }

    /// Re-signs `payload` after a change, so that only the changed field is wrong.
    fn resigned(mut payload: PaymentPayload, requirements: &PaymentRequirements) -> PaymentPayload {
        let (name, version) = requirements.eip712_name_version().unwrap();
        let domain = token_domain(
            name,
            version,
            requirements.chain_id().unwrap(),
            requirements.asset_address().unwrap(),
        );
        payload.payload.signature =
            crate::eip712::sign_authorization(&signer(), &payload.payload.authorization, &domain)
                .unwrap();
        payload
    }

    #[test]
    fn accepts_a_signed_payment() {
        let payload = paid();
        let v = verify(&payload, &requirements(), NOW).unwrap();
        assert_eq!(v.payer, signer().address());
        assert_eq!(v.pay_to, MARKET);
        assert_eq!(v.asset, ASSET);
        assert_eq!(v.chain_id, 31337);
        assert_eq!(v.network, "eip155:31337");
        assert_eq!(v.value(), price());
        assert_eq!(v.nonce_key().nonce, payload.payload.authorization.nonce);
        let header = encode_payment_signature(&payload);
        assert_eq!(verify_header(&header, &requirements(), NOW).unwrap(), v);
    }

    #[test]
    fn each_tampered_field_has_its_code() {
        let r = requirements();
        let code = |p: &PaymentPayload, now: u64| verify(p, &r, now).unwrap_err().code();

        let mut p = paid();
        p.payload.authorization.value += U256::from(1);
        assert_eq!(code(&p, NOW), codes::VALUE_MISMATCH);
        p.payload.authorization.value = price() - U256::from(1);
        assert_eq!(code(&p, NOW), codes::VALUE_MISMATCH);

        let mut p = paid();
        p.payload.authorization.to = Address::repeat_byte(1);
        assert_eq!(code(&p, NOW), codes::RECIPIENT_MISMATCH);

        let mut p = paid();
        let mut sig = p.payload.signature.to_vec();
        sig[10] ^= 1;
        p.payload.signature = sig.into();
        assert_eq!(code(&p, NOW), codes::SIGNATURE);

        let mut p = paid();
        p.payload.authorization.nonce = B256::repeat_byte(7);
        assert_eq!(code(&p, NOW), codes::SIGNATURE);

        let mut p = paid();
        p.payload.authorization.from = MARKET;
        assert_eq!(code(&p, NOW), codes::SIGNATURE);

        let mut p = paid();
        p.accepted.network = "eip155:1".into();
        assert_eq!(code(&p, NOW), codes::INVALID_NETWORK);

        let mut p = paid();
        p.accepted.scheme = "upto".into();
        assert_eq!(code(&p, NOW), codes::INVALID_SCHEME);

        let mut p = paid();
        p.accepted.asset = Address::repeat_byte(2).to_string();
        assert_eq!(code(&p, NOW), codes::INVALID_PAYMENT_REQUIREMENTS);

        let mut p = paid();
        p.x402_version = 1;
        assert_eq!(code(&p, NOW), codes::INVALID_X402_VERSION);
    }

    #[test]
    fn a_signature_for_another_price_is_a_bad_signature() {
        // The server's price moved: the field matches the new price but was not signed.
        let mut p = paid();
        p.payload.authorization.value = U256::from(5);
        let mut cheaper = requirements();
        cheaper.amount = "5".into();
        assert_eq!(
            verify(&p, &cheaper, NOW).unwrap_err().code(),
            codes::SIGNATURE
        );
        assert!(verify(&resigned(p, &cheaper), &cheaper, NOW).is_ok());
    }

    #[test]
    fn the_time_window_is_enforced() {
        let r = requirements();
        let p = paid(); // validAfter 0, validBefore NOW + 300
        let vb = NOW + 300;
        assert!(verify(&p, &r, vb - MIN_VALIDITY_MARGIN_SECS).is_ok());
        let late = verify(&p, &r, vb - MIN_VALIDITY_MARGIN_SECS + 1).unwrap_err();
        assert!(matches!(late, PaymentError::Expired { .. }), "{late}");
        assert_eq!(late.code(), codes::VALID_BEFORE);
        assert_eq!(
            verify(&p, &r, vb + 10).unwrap_err().code(),
            codes::VALID_BEFORE
        );

        let mut future = p.clone();
        future.payload.authorization.valid_after = U256::from(NOW);
        let future = resigned(future, &r);
        let err = verify(&future, &r, NOW).unwrap_err();
        assert!(matches!(err, PaymentError::NotYetValid { .. }), "{err}");
        assert_eq!(err.code(), codes::VALID_AFTER);
        assert!(verify(&future, &r, NOW + 1).is_ok());

        let mut long = p;
        long.payload.authorization.valid_before = U256::from(NOW + 300 + CLOCK_SKEW_SECS + 1);
        let long = resigned(long, &r);
        let err = verify(&long, &r, NOW).unwrap_err();
        assert!(matches!(err, PaymentError::WindowTooLong { .. }), "{err}");
        assert_eq!(err.code(), codes::VALID_BEFORE);
    }

    #[test]
    fn broken_server_requirements_are_reported_as_such() {
        let p = paid();
        let mut r = requirements();
        r.extra.clear();
        let err = verify(&p, &r, NOW).unwrap_err();
        assert_eq!(err.code(), codes::INVALID_PAYMENT_REQUIREMENTS);
        assert!(!err.is_client_error());
        let mut r = requirements();
        r.network = "base".into();
        assert!(matches!(
            verify(&p, &r, NOW),
            Err(PaymentError::InvalidRequirements(_))
        ));
    }

    #[test]
    fn headers_decode_with_precise_errors() {
        let code = |h: &str| verify_header(h, &requirements(), NOW).unwrap_err().code();
        assert_eq!(code("%%%"), codes::INVALID_PAYLOAD);
        assert_eq!(
            code(
                &encode_header(&serde_json::json!({"x402Version": 1, "scheme": "exact"})).unwrap()
            ),
            codes::INVALID_X402_VERSION
        );
        assert_eq!(
            code(&encode_header(&serde_json::json!({"scheme": "exact"})).unwrap()),
            codes::INVALID_X402_VERSION
        );
        let mut value = serde_json::to_value(paid()).unwrap();
        value["payload"]["authorization"]
            .as_object_mut()
            .unwrap()
            .remove("nonce");
        let err = verify_header(&encode_header(&value).unwrap(), &requirements(), NOW).unwrap_err();
        assert_eq!(err.code(), codes::INVALID_PAYLOAD);
        assert!(err.to_string().contains("nonce"), "{err}");
        // A Permit2 payload is not the EIP-3009 payload this server verifies.
        let mut value = serde_json::to_value(paid()).unwrap();
        value["payload"] = serde_json::json!({"signature": "0x00", "permit2Authorization": {}});
        assert_eq!(
            code(&encode_header(&value).unwrap()),
            codes::INVALID_PAYLOAD
        );
    }
}
