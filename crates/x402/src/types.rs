//! The x402 v2 wire types, field for field as the official TypeScript packages (`@x402/core`
//! 2.27) send and accept them.
//!
//! This module owns the JSON shapes carried (base64-encoded, see [`crate::header`]) in the
//! `PAYMENT-REQUIRED`, `PAYMENT-SIGNATURE` and `PAYMENT-RESPONSE` headers, their constants, and
//! typed accessors for the `exact` EVM scheme. It must not verify anything: a value that parses
//! here can still be an invalid payment ([`mod@crate::verify`] decides).
//!
//! [`PaymentRequirements`] keeps its fields as the strings of the wire (other servers may offer
//! non-EVM networks in the same `accepts` list); [`ExactEvmPayload`] is typed, because it only
//! exists for EVM and a malformed one is an `invalid_payload`.

use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
pub const X402_VERSION: u32 = 2;
/// The only scheme this crate implements.
pub const SCHEME_EXACT: &str = "exact";
/// The CAIP-2 namespace of EVM chains (`eip155:<chainId>`).
pub const EIP155_NAMESPACE: &str = "eip155";
/// Server → client: base64 JSON [`PaymentRequired`] on a 402.
pub const PAYMENT_REQUIRED_HEADER: &str = "PAYMENT-REQUIRED";
/// Client → server: base64 JSON [`PaymentPayload`] on the retry.
pub const PAYMENT_SIGNATURE_HEADER: &str = "PAYMENT-SIGNATURE";
/// Server → client: base64 JSON [`SettleResponse`] on the paid answer.
pub const PAYMENT_RESPONSE_HEADER: &str = "PAYMENT-RESPONSE";
/// `extra.assetTransferMethod` of the EIP-3009 flow (the default when absent).
pub const ASSET_TRANSFER_EIP3009: &str = "eip3009";

/// The CAIP-2 network id of an EVM chain: `eip155:<chain_id>`.
pub fn eip155_network(chain_id: u64) -> String {
    format!("{EIP155_NAMESPACE}:{chain_id}")
}

/// The chain id of an `eip155:<chain_id>` network, `None` for any other string.
pub fn parse_eip155_network(network: &str) -> Option<u64> {
    let reference = network.strip_prefix(EIP155_NAMESPACE)?.strip_prefix(':')?;
    if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    reference.parse().ok()
}

/// What is being paid for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// The URL of the resource.
    pub url: String,
    /// A human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The MIME type of the paid response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// One way to pay, as offered in [`PaymentRequired::accepts`] and echoed in
/// [`PaymentPayload::accepted`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// The scheme (`exact`).
    pub scheme: String,
    /// CAIP-2 network (`eip155:<chainId>`).
    pub network: String,
    /// The price in atomic token units, as a decimal string.
    pub amount: String,
    /// The token contract (for EVM: the EIP-3009 token, also the EIP-712 verifying contract).
    pub asset: String,
    /// The recipient of the transfer (Autonet: the selling node's payment address for the
    /// project, `InferenceMarket.paymentAddress(project, node)`).
    pub pay_to: String,
    /// How long a signed payment may stay valid (the client signs `validBefore = now + this`).
    pub max_timeout_seconds: u64,
    /// Scheme data; for `exact` on EVM: `name` and `version` of the token's EIP-712 domain.
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn null_as_empty_map<'de, D>(
    deserializer: D,
) -> Result<serde_json::Map<String, serde_json::Value>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}

impl PaymentRequirements {
    /// The `exact` EVM requirement: pay `amount` of `asset` (whose EIP-712 domain is
    /// `domain_name`/`domain_version`) on chain `chain_id` to `pay_to`, signed for at most
    /// `max_timeout_seconds`. Addresses are written checksummed.
    pub fn exact_evm(
        chain_id: u64,
        asset: Address,
        pay_to: Address,
        amount: U256,
        max_timeout_seconds: u64,
        domain_name: &str,
        domain_version: &str,
    ) -> Self {
        let mut extra = serde_json::Map::new();
        extra.insert("name".into(), domain_name.into());
        extra.insert("version".into(), domain_version.into());
        Self {
            scheme: SCHEME_EXACT.into(),
            network: eip155_network(chain_id),
            amount: amount.to_string(),
            asset: asset.to_checksum(None),
            pay_to: pay_to.to_checksum(None),
            max_timeout_seconds,
            extra,
        }
    }

    /// The chain id, if `network` is `eip155:<id>`.
    pub fn chain_id(&self) -> Option<u64> {
        parse_eip155_network(&self.network)
    }

    /// `asset` as an EVM address.
    pub fn asset_address(&self) -> Option<Address> {
        Address::from_str(&self.asset).ok()
    }

    /// `payTo` as an EVM address.
    pub fn pay_to_address(&self) -> Option<Address> {
        Address::from_str(&self.pay_to).ok()
    }

    /// `amount` as an integer (decimal, or hex with `0x`).
    pub fn amount_value(&self) -> Option<U256> {
        parse_uint(&self.amount)
    }

    /// `extra.name` and `extra.version`: the token's EIP-712 domain.
    pub fn eip712_name_version(&self) -> Option<(&str, &str)> {
        let name = self.extra.get("name")?.as_str()?;
        let version = self.extra.get("version")?.as_str()?;
        Some((name, version))
    }

    /// `extra.assetTransferMethod`, defaulting to `eip3009`.
    pub fn asset_transfer_method(&self) -> &str {
        self.extra
            .get("assetTransferMethod")
            .and_then(|v| v.as_str())
            .unwrap_or(ASSET_TRANSFER_EIP3009)
    }

    /// Whether this is an `exact` EIP-3009 requirement on an `eip155` chain.
    pub fn is_exact_evm(&self) -> bool {
        self.scheme == SCHEME_EXACT
            && self.chain_id().is_some()
            && self.asset_transfer_method() == ASSET_TRANSFER_EIP3009
    }
}

/// The 402 answer (header `PAYMENT-REQUIRED`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always [`X402_VERSION`].
    pub x402_version: u32,
    /// Why a payment was refused (an error code of [`crate::verify::PaymentError::code`]), or a
    /// short message on the first 402.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: ResourceInfo,
    /// The ways to pay.
    pub accepts: Vec<PaymentRequirements>,
    /// Protocol extensions (echoed by clients; unused here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

impl PaymentRequired {
    /// A v2 402 body for `resource` offering `accepts`.
    pub fn new(resource: ResourceInfo, accepts: Vec<PaymentRequirements>) -> Self {
        Self {
            x402_version: X402_VERSION,
            error: None,
            resource,
            accepts,
            extensions: None,
        }
    }

    /// The same offer carrying an error (the refusal reason of a payment).
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// The parameters of an EIP-3009 `TransferWithAuthorization`, as carried on the wire.
///
/// Integers are decimal strings on output; hex with `0x` is accepted on input (the `exact` EVM
/// scheme's encoding rules allow both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// The payer.
    pub from: Address,
    /// The recipient (must be the requirement's `payTo`).
    pub to: Address,
    /// Atomic token units.
    #[serde(with = "uint_string")]
    pub value: U256,
    /// Unix seconds; the transfer is valid strictly after it.
    #[serde(with = "uint_string")]
    pub valid_after: U256,
    /// Unix seconds; the transfer is valid strictly before it.
    #[serde(with = "uint_string")]
    pub valid_before: U256,
    /// A random 32-byte nonce (EIP-3009 nonces are per payer and token, not sequential).
    pub nonce: B256,
}

/// The `payload` of an `exact` EVM payment (EIP-3009 flow).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactEvmPayload {
    /// The 65-byte EIP-712 signature `r ‖ s ‖ v` over the `TransferWithAuthorization`.
    pub signature: Bytes,
    /// The signed parameters.
    pub authorization: Authorization,
}

/// The client's payment (header `PAYMENT-SIGNATURE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// The protocol version the client used.
    pub x402_version: u32,
    /// The resource, echoed from the 402.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The requirement the client chose, echoed from the 402's `accepts`.
    pub accepted: PaymentRequirements,
    /// The signed authorization.
    pub payload: ExactEvmPayload,
    /// Protocol extensions (unused here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The settlement result (header `PAYMENT-RESPONSE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the payment was settled (submitted and accepted by the node).
    pub success: bool,
    /// The error code when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Address>,
    /// The settlement transaction hash (`""` when none was sent).
    #[serde(default)]
    pub transaction: String,
    /// CAIP-2 network of the settlement.
    pub network: String,
    /// The amount moved on chain by this response (`batch-settlement`: the deposit, or `""`
    /// for a voucher-only request); absent for `exact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Scheme data (`batch-settlement`: `chargedAmount` and `channelState`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl SettleResponse {
    /// A successful settlement by transaction `tx` on `network`.
    pub fn success(payer: Address, tx: TxHash, network: impl Into<String>) -> Self {
        Self {
            success: true,
            error_reason: None,
            payer: Some(payer),
            transaction: tx.to_string(),
            network: network.into(),
            amount: None,
            extra: None,
        }
    }

    /// A failed settlement with error code `reason`.
    pub fn failure(
        reason: impl Into<String>,
        payer: Option<Address>,
        network: impl Into<String>,
    ) -> Self {
        Self {
            success: false,
            error_reason: Some(reason.into()),
            payer,
            transaction: String::new(),
            network: network.into(),
            amount: None,
            extra: None,
        }
    }

    /// The transaction hash, if `transaction` is one.
    pub fn transaction_hash(&self) -> Option<TxHash> {
        TxHash::from_str(&self.transaction).ok()
    }
}

/// Parses an unsigned integer written in decimal, or in hex with a `0x`/`0X` prefix.
pub fn parse_uint(s: &str) -> Option<U256> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return U256::from_str_radix(hex, 16).ok();
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    U256::from_str_radix(s, 10).ok()
}

/// Serde for a `uint256` carried as a string: decimal out, decimal or `0x` hex in.
mod uint_string {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<U256, D::Error> {
        let s = String::deserialize(deserializer)?;
        super::parse_uint(&s)
            .ok_or_else(|| D::Error::custom(format!("{s:?} is not an unsigned 256-bit integer")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256};
    use serde_json::json;

    const ASSET: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
    const MARKET: Address = address!("8A791620dd6260079BF849Dc5567aDC3F2FdC318");

    fn requirement() -> PaymentRequirements {
        PaymentRequirements::exact_evm(
            31337,
            ASSET,
            MARKET,
            U256::from(10u64).pow(U256::from(18)),
            300,
            "Autonet",
            "1",
        )
    }

    #[test]
    fn networks_are_caip2() {
        assert_eq!(eip155_network(8453), "eip155:8453");
        assert_eq!(parse_eip155_network("eip155:31337"), Some(31337));
        for bad in [
            "eip155:",
            "eip155",
            "solana:5eyk",
            "eip155:0x1",
            "eip155:-1",
            "base",
        ] {
            assert_eq!(parse_eip155_network(bad), None, "{bad}");
        }
    }

    #[test]
    fn requirements_serialize_with_the_v2_field_names() {
        let value = serde_json::to_value(requirement()).unwrap();
        assert_eq!(
            value,
            json!({
                "scheme": "exact",
                "network": "eip155:31337",
                "amount": "1000000000000000000",
                "asset": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "payTo": "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318",
                "maxTimeoutSeconds": 300,
                "extra": {"name": "Autonet", "version": "1"}
            })
        );
        let r = requirement();
        assert_eq!(r.chain_id(), Some(31337));
        assert_eq!(r.asset_address(), Some(ASSET));
        assert_eq!(r.pay_to_address(), Some(MARKET));
        assert_eq!(r.eip712_name_version(), Some(("Autonet", "1")));
        assert!(r.is_exact_evm());
    }

    #[test]
    fn requirements_accept_missing_or_null_extra() {
        let mut value = serde_json::to_value(requirement()).unwrap();
        value["extra"] = serde_json::Value::Null;
        let r: PaymentRequirements = serde_json::from_value(value.clone()).unwrap();
        assert!(r.extra.is_empty());
        value.as_object_mut().unwrap().remove("extra");
        let r: PaymentRequirements = serde_json::from_value(value).unwrap();
        assert_eq!(r.eip712_name_version(), None);
        assert_eq!(r.asset_transfer_method(), ASSET_TRANSFER_EIP3009);
    }

    #[test]
    fn payment_required_omits_absent_optionals() {
        let required = PaymentRequired::new(
            ResourceInfo {
                url: "http://127.0.0.1/infer".into(),
                description: Some("text generation".into()),
                mime_type: Some("application/json".into()),
            },
            vec![requirement()],
        );
        let value = serde_json::to_value(&required).unwrap();
        assert_eq!(value["x402Version"], 2);
        assert!(value.get("error").is_none());
        assert!(value.get("extensions").is_none());
        assert_eq!(value["resource"]["mimeType"], "application/json");
        let with_error = serde_json::to_value(required.with_error("invalid_network")).unwrap();
        assert_eq!(with_error["error"], "invalid_network");
    }

    #[test]
    fn payload_parses_the_official_client_shape() {
        // As @x402/core 2.27 builds it: resource and accepted echoed, extensions undefined.
        let json = json!({
            "x402Version": 2,
            "payload": {
                "authorization": {
                    "from": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "to": "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318",
                    "value": "1000000000000000000",
                    "validAfter": "0",
                    "validBefore": "1700000300",
                    "nonce": "0xabababababababababababababababababababababababababababababababab"
                },
                "signature": "0x4291bc78a4a18a611aa7a9b333f643ae4805598791376ff1176114a9b8ef53fa551a62da119d84c20a4a6ff9c8d41bb15bd83090c82e01f9f95de250535c88061b"
            },
            "resource": {"url": "http://127.0.0.1/infer", "description": "d", "mimeType": "text/plain"},
            "accepted": serde_json::to_value(requirement()).unwrap()
        });
        let payload: PaymentPayload = serde_json::from_value(json).unwrap();
        let a = payload.payload.authorization;
        assert_eq!(a.from, address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"));
        assert_eq!(a.value, U256::from(10u64).pow(U256::from(18)));
        assert_eq!(a.valid_after, U256::ZERO);
        assert_eq!(a.valid_before, U256::from(1_700_000_300u64));
        assert_eq!(
            a.nonce,
            b256!("abababababababababababababababababababababababababababababababab")
        );
        assert_eq!(payload.payload.signature.len(), 65);
        assert_eq!(payload.accepted, requirement());
    }

    #[test]
    fn authorization_integers_are_decimal_strings_and_accept_hex() {
        let a = Authorization {
            from: Address::ZERO,
            to: MARKET,
            value: U256::from(255u64),
            valid_after: U256::ZERO,
            valid_before: U256::from(60u64),
            nonce: B256::ZERO,
        };
        let value = serde_json::to_value(a).unwrap();
        assert_eq!(value["value"], "255");
        assert_eq!(value["validBefore"], "60");
        let mut hex = value.clone();
        hex["value"] = "0xff".into();
        assert_eq!(serde_json::from_value::<Authorization>(hex).unwrap(), a);
        for bad in [
            json!(255),
            json!("-1"),
            json!("1e3"),
            json!("0x"),
            json!(""),
        ] {
            let mut v = value.clone();
            v["value"] = bad.clone();
            assert!(serde_json::from_value::<Authorization>(v).is_err(), "{bad}");
        }
    }

    #[test]
    fn settle_response_round_trips() {
        let tx = TxHash::repeat_byte(0x11);
        let ok = SettleResponse::success(MARKET, tx, "eip155:1");
        let value = serde_json::to_value(&ok).unwrap();
        assert_eq!(value["success"], true);
        assert_eq!(value["transaction"], tx.to_string());
        assert!(value.get("errorReason").is_none());
        assert_eq!(ok.transaction_hash(), Some(tx));
        let failed = SettleResponse::failure("invalid_transaction_state", None, "eip155:1");
        let value = serde_json::to_value(&failed).unwrap();
        assert_eq!(value["errorReason"], "invalid_transaction_state");
        assert_eq!(value["transaction"], "");
        assert!(value.get("payer").is_none());
        assert_eq!(
            serde_json::from_value::<SettleResponse>(value).unwrap(),
            failed
        );
    }
}
