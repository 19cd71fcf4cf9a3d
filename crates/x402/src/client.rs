//! The paying side (for `autonet infer`): turn a 402's `PAYMENT-REQUIRED` into a
//! `PAYMENT-SIGNATURE`, and read the `PAYMENT-RESPONSE`.
//!
//! This module owns choosing an `exact` EIP-3009 requirement on an `eip155` chain, the spending
//! guard (a maximum amount, optionally a required chain and token), and signing the
//! authorization exactly as the official `@x402/evm` 2.27 client does: a random 32-byte nonce,
//! `validAfter = 0`, `validBefore = now + maxTimeoutSeconds`, `to = payTo`, `value = amount`,
//! and the payload echoing `resource` and the chosen requirement as `accepted`. It must not send
//! HTTP requests: the caller owns the transport.

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;

use crate::eip712::{sign_authorization, token_domain};
use crate::header::{HeaderError, decode_payment_required, encode_payment_signature};
use crate::types::{
    Authorization, ExactEvmPayload, PaymentPayload, PaymentRequired, PaymentRequirements,
    X402_VERSION,
};

/// Why no payment could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `PAYMENT-REQUIRED` header does not decode.
    #[error("PAYMENT-REQUIRED: {0}")]
    Header(#[from] HeaderError),
    /// The server speaks another x402 version.
    #[error("the server asks for x402 version {0}, this client speaks {X402_VERSION}")]
    UnsupportedVersion(u32),
    /// No requirement is an `exact` EIP-3009 payment this client accepts.
    #[error("no acceptable payment option among {offered} offered ({reason})")]
    NoAcceptableRequirement {
        /// How many options were offered.
        offered: usize,
        /// Why the last candidate was rejected.
        reason: String,
    },
    /// Signing failed.
    #[error("signing the authorization: {0}")]
    Signing(#[from] alloy::signers::Error),
}

/// Signs x402 `exact` payments with a local key, within limits.
#[derive(Debug, Clone)]
pub struct PaymentSigner {
    signer: PrivateKeySigner,
    max_amount: Option<U256>,
    chain_id: Option<u64>,
    asset: Option<Address>,
}

impl PaymentSigner {
    /// A signer paying from `signer`'s address, without limits.
    pub fn new(signer: PrivateKeySigner) -> Self {
        Self {
            signer,
            max_amount: None,
            chain_id: None,
            asset: None,
        }
    }

    /// Refuses requirements asking for more than `max_amount` atomic units.
    pub fn with_max_amount(mut self, max_amount: U256) -> Self {
        self.max_amount = Some(max_amount);
        self
    }

    /// Pays only on chain `chain_id`.
    pub fn with_chain_id(mut self, chain_id: u64) -> Self {
        self.chain_id = Some(chain_id);
        self
    }

    /// Pays only in token `asset`.
    pub fn with_asset(mut self, asset: Address) -> Self {
        self.asset = Some(asset);
        self
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    fn check(&self, r: &PaymentRequirements) -> Result<(), String> {
        if !r.is_exact_evm() {
            return Err(format!(
                "{}/{} is not an exact EIP-3009 payment on an eip155 chain",
                r.scheme, r.network
            ));
        }
        if let Some(chain_id) = self.chain_id
            && r.chain_id() != Some(chain_id)
        {
            return Err(format!("{} is not eip155:{chain_id}", r.network));
        }
        let asset = r
            .asset_address()
            .ok_or_else(|| format!("asset {:?} is not an address", r.asset))?;
        if let Some(expected) = self.asset
            && asset != expected
        {
            return Err(format!("asset {asset} is not {expected}"));
        }
        r.pay_to_address()
            .ok_or_else(|| format!("payTo {:?} is not an address", r.pay_to))?;
        let amount = r
            .amount_value()
            .ok_or_else(|| format!("amount {:?} is not an integer", r.amount))?;
        if let Some(max) = self.max_amount
            && amount > max
        {
            return Err(format!("amount {amount} is above the maximum {max}"));
        }
        if r.eip712_name_version().is_none() {
            return Err("extra.name / extra.version (the token's EIP-712 domain) missing".into());
        }
        Ok(())
    }

    /// The first requirement of `required` this signer accepts.
    pub fn select<'a>(
        &self,
        required: &'a PaymentRequired,
    ) -> Result<&'a PaymentRequirements, ClientError> {
        if required.x402_version != X402_VERSION {
            return Err(ClientError::UnsupportedVersion(required.x402_version));
        }
        let mut reason = "none offered".to_owned();
        for r in &required.accepts {
            match self.check(r) {
                Ok(()) => return Ok(r),
                Err(why) => reason = why,
            }
        }
        Err(ClientError::NoAcceptableRequirement {
            offered: required.accepts.len(),
            reason,
        })
    }

    /// Selects a requirement of `required` and signs a payment for it at unix time `now`.
    pub fn sign(
        &self,
        required: &PaymentRequired,
        now: u64,
    ) -> Result<PaymentPayload, ClientError> {
        let r = self.select(required)?;
        // `select` checked every field below.
        let (name, version) = r.eip712_name_version().unwrap_or_default();
        let chain_id = r.chain_id().unwrap_or_default();
        let asset = r.asset_address().unwrap_or_default();
        let authorization = Authorization {
            from: self.signer.address(),
            to: r.pay_to_address().unwrap_or_default(),
            value: r.amount_value().unwrap_or_default(),
            valid_after: U256::ZERO,
            valid_before: U256::from(now.saturating_add(r.max_timeout_seconds)),
            nonce: rand::random::<[u8; 32]>().into(),
        };
        let domain = token_domain(name, version, chain_id, asset);
        let signature = sign_authorization(&self.signer, &authorization, &domain)?;
        Ok(PaymentPayload {
            x402_version: X402_VERSION,
            resource: Some(required.resource.clone()),
            accepted: r.clone(),
            payload: ExactEvmPayload {
                signature,
                authorization,
            },
            extensions: required.extensions.clone(),
        })
    }

    /// From a 402's `PAYMENT-REQUIRED` header value to the `PAYMENT-SIGNATURE` header value of
    /// the retry (and the payload it carries).
    pub fn payment_header(
        &self,
        payment_required: &str,
        now: u64,
    ) -> Result<(String, PaymentPayload), ClientError> {
        let required = decode_payment_required(payment_required)?;
        let payload = self.sign(&required, now)?;
        Ok((encode_payment_signature(&payload), payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::encode_payment_required;
    use crate::types::ResourceInfo;
    use crate::verify::verify_header;
    use alloy::primitives::address;

    const NOW: u64 = 1_700_000_000;
    const ASSET: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
    const MARKET: Address = address!("8A791620dd6260079BF849Dc5567aDC3F2FdC318");

    fn requirement(chain_id: u64, amount: u64) -> PaymentRequirements {
        PaymentRequirements::exact_evm(
            chain_id,
            ASSET,
            MARKET,
            U256::from(amount),
            120,
            "Autonet",
            "1",
        )
    }

    fn required(accepts: Vec<PaymentRequirements>) -> PaymentRequired {
        PaymentRequired::new(
            ResourceInfo {
                url: "http://127.0.0.1/infer".into(),
                description: Some("generation".into()),
                mime_type: Some("application/json".into()),
            },
            accepts,
        )
    }

    fn signer() -> PaymentSigner {
        PaymentSigner::new(PrivateKeySigner::random())
    }

    #[test]
    fn signs_like_the_official_client() {
        let s = signer();
        let req = required(vec![requirement(31337, 1000)]);
        let payload = s.sign(&req, NOW).unwrap();
        let a = payload.payload.authorization;
        assert_eq!(a.from, s.address());
        assert_eq!(a.to, MARKET);
        assert_eq!(a.value, U256::from(1000));
        assert_eq!(a.valid_after, U256::ZERO);
        assert_eq!(a.valid_before, U256::from(NOW + 120));
        assert_eq!(payload.accepted, requirement(31337, 1000));
        assert_eq!(payload.resource.as_ref(), Some(&req.resource));
        // Fresh random nonces.
        assert_ne!(
            s.sign(&req, NOW).unwrap().payload.authorization.nonce,
            a.nonce
        );
        // The server side accepts it.
        let (header, _) = s
            .payment_header(&encode_payment_required(&req), NOW)
            .unwrap();
        let verified = verify_header(&header, &requirement(31337, 1000), NOW).unwrap();
        assert_eq!(verified.payer, s.address());
    }

    #[test]
    fn selects_the_first_acceptable_requirement() {
        let mut solana = requirement(1, 1);
        solana.network = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into();
        solana.asset = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v".into();
        let mut permit2 = requirement(1, 1);
        permit2
            .extra
            .insert("assetTransferMethod".into(), "permit2".into());
        let req = required(vec![
            solana,
            permit2,
            requirement(8453, 5),
            requirement(31337, 5),
        ]);
        assert_eq!(signer().select(&req).unwrap().network, "eip155:8453");
        assert_eq!(
            signer().with_chain_id(31337).select(&req).unwrap().network,
            "eip155:31337"
        );
    }

    #[test]
    fn refuses_what_the_limits_exclude() {
        let req = required(vec![requirement(31337, 1000)]);
        let err = signer()
            .with_max_amount(U256::from(999))
            .select(&req)
            .unwrap_err();
        assert!(err.to_string().contains("above the maximum"), "{err}");
        assert!(
            signer()
                .with_max_amount(U256::from(1000))
                .select(&req)
                .is_ok()
        );
        assert!(signer().with_asset(MARKET).select(&req).is_err());
        assert!(signer().with_chain_id(1).select(&req).is_err());
        let mut no_domain = requirement(31337, 1);
        no_domain.extra.clear();
        assert!(signer().select(&required(vec![no_domain])).is_err());
        let mut v1 = req;
        v1.x402_version = 1;
        assert!(matches!(
            signer().select(&v1),
            Err(ClientError::UnsupportedVersion(1))
        ));
        assert!(matches!(
            signer().payment_header("***", NOW),
            Err(ClientError::Header(_))
        ));
    }
}
