//! The x402 `batch-settlement` scheme on EVM: payment channels.
//!
//! A payer deposits once into a channel of the `BatchSettlement` contract (through the
//! `Erc3009DepositCollector`, with an EIP-3009 `ReceiveWithAuthorization` whose nonce is bound to
//! the channel), then signs one cumulative EIP-712 `Voucher(channelId, maxClaimableAmount)` per
//! request. The server keeps the latest voucher per channel and claims many requests later in
//! one transaction (`multicall(claim, settle)`), which moves the claimed value to the channel's
//! receiver: here this node's payTo for the project, so `InferenceMarket.collect` splits it
//! 60/25/15 like an `exact` payment.
//!
//! This module owns the wire types, field for field as the official `@x402/evm` 2.27 client
//! sends them, the EIP-712 structs and domain (name `x402 Batch Settlement`, version `1`, the
//! canonical contract address), the channel id, and [`verify_channel_payment`] — the offline
//! checks of a deposit or voucher against this server's offer. It must not touch the chain or the
//! channel store ([`crate::channel_store`]); [`crate::channel_chain`] sends the transactions.
//! The error codes are the scheme's (`invalid_batch_settlement_evm_*`).

use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes, U256, address, keccak256};
use alloy::sol_types::{Eip712Domain, SolStruct, SolValue, eip712_domain};
use serde::{Deserialize, Serialize};

use crate::eip712::{SignatureError, recover_signer, token_domain};
use crate::header::decode_header_json;
use crate::types::{PaymentRequirements, ResourceInfo, X402_VERSION, eip155_network};

/// The scheme's name in `accepts[].scheme`.
pub const SCHEME_BATCH_SETTLEMENT: &str = "batch-settlement";
/// Where the official client expects the channel contract (the EIP-712 `verifyingContract` of
/// every channel id and voucher). Dev chains place `BatchSettlement`'s code here.
pub const BATCH_SETTLEMENT_ADDRESS: Address = address!("4020074e9dF2ce1deE5A9C1b5c3f541D02a10003");
/// Where the official client sends the EIP-3009 deposit authorization (`to`).
pub const ERC3009_DEPOSIT_COLLECTOR_ADDRESS: Address =
    address!("4020806089470a89826cB9fB1f4059150b550004");
/// Shortest withdraw delay the contract accepts (15 minutes).
pub const MIN_WITHDRAW_DELAY: u64 = 900;
/// Longest withdraw delay the contract accepts (30 days).
pub const MAX_WITHDRAW_DELAY: u64 = 30 * 24 * 3600;

/// The scheme's error codes (the official `@x402/evm` names).
pub mod channel_codes {
    /// The channel config does not hash to the voucher's channel id.
    pub const CHANNEL_ID_MISMATCH: &str = "invalid_batch_settlement_evm_channel_id_mismatch";
    /// No channel with a positive balance.
    pub const CHANNEL_NOT_FOUND: &str = "invalid_batch_settlement_evm_channel_not_found";
    /// The channel's token is not the offered asset.
    pub const TOKEN_MISMATCH: &str = "invalid_batch_settlement_evm_token_mismatch";
    /// The channel's receiver is not the offered payTo.
    pub const RECEIVER_MISMATCH: &str = "invalid_batch_settlement_evm_receiver_mismatch";
    /// The channel's receiver authorizer is not this node.
    pub const RECEIVER_AUTHORIZER_MISMATCH: &str =
        "invalid_batch_settlement_evm_receiver_authorizer_mismatch";
    /// The channel's withdraw delay is not the offered one.
    pub const WITHDRAW_DELAY_MISMATCH: &str =
        "invalid_batch_settlement_evm_withdraw_delay_mismatch";
    /// The voucher is not signed by the payer (or its authorizer).
    pub const VOUCHER_SIGNATURE: &str = "invalid_batch_settlement_evm_voucher_signature";
    /// The voucher's ceiling exceeds what the channel holds.
    pub const EXCEEDS_BALANCE: &str = "invalid_batch_settlement_evm_cumulative_exceeds_balance";
    /// The voucher's ceiling is not above what was already claimed.
    pub const BELOW_CLAIMED: &str = "invalid_batch_settlement_evm_cumulative_below_claimed";
    /// The voucher's ceiling is not the server's charged total plus the price (a replayed or
    /// out-of-date voucher): the 402 carries the server's state so the client can resync.
    pub const AMOUNT_MISMATCH: &str = "invalid_batch_settlement_evm_cumulative_amount_mismatch";
    /// The deposit authorization's signature does not verify.
    pub const RECEIVE_AUTHORIZATION_SIGNATURE: &str =
        "invalid_batch_settlement_evm_receive_authorization_signature";
    /// The deposit authorization is expired or too close to expiry.
    pub const VALID_BEFORE: &str =
        "invalid_batch_settlement_evm_payload_authorization_valid_before";
    /// The deposit authorization is not valid yet.
    pub const VALID_AFTER: &str = "invalid_batch_settlement_evm_payload_authorization_valid_after";
    /// A deposit without an EIP-3009 authorization (Permit2 is not offered).
    pub const ERC3009_REQUIRED: &str =
        "invalid_batch_settlement_evm_erc3009_authorization_required";
    /// The deposit transaction failed.
    pub const DEPOSIT_FAILED: &str = "invalid_batch_settlement_evm_deposit_transaction_failed";
    /// A payload type this server does not take here.
    pub const PAYLOAD_TYPE: &str = "invalid_batch_settlement_evm_payload_type";
    /// Another network than the offered one.
    pub const NETWORK_MISMATCH: &str = "invalid_batch_settlement_evm_network_mismatch";
    /// The payload is not the batch-settlement scheme.
    pub const SCHEME: &str = "invalid_batch_settlement_evm_scheme";
    /// Another request holds the channel (the client retries).
    pub const CHANNEL_BUSY: &str = "invalid_batch_settlement_evm_channel_busy";
    /// A deposit below the announced minimum (`extra.minDeposit`).
    pub const BELOW_MIN_DEPOSIT: &str = "invalid_batch_settlement_evm_deposit_below_min_deposit";
    /// The chain could not be read.
    pub const RPC_READ_FAILED: &str = "invalid_batch_settlement_evm_rpc_read_failed";
    /// The channel's state could not be recorded (nothing was charged).
    pub const STATE_UNAVAILABLE: &str =
        "invalid_batch_settlement_evm_verification_state_unavailable";
}

alloy::sol! {
    /// The immutable channel parameters; their EIP-712 hash is the channel id.
    #[derive(Debug, PartialEq, Eq)]
    struct ChannelConfig {
        address payer;
        address payerAuthorizer;
        address receiver;
        address receiverAuthorizer;
        address token;
        uint40 withdrawDelay;
        bytes32 salt;
    }

    /// A cumulative voucher: the receiver may claim up to `maxClaimableAmount` from the channel.
    #[derive(Debug, PartialEq, Eq)]
    struct Voucher {
        bytes32 channelId;
        uint128 maxClaimableAmount;
    }

    /// EIP-3009 `ReceiveWithAuthorization` (the deposit's token authorization).
    #[derive(Debug, PartialEq, Eq)]
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The EIP-712 domain of every channel id and voucher on `chain_id`.
pub fn settlement_domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "x402 Batch Settlement",
        version: "1",
        chain_id: chain_id,
        verifying_contract: BATCH_SETTLEMENT_ADDRESS,
    }
}

/// The channel id of `config` on `chain_id` (the contract's `getChannelId`).
pub fn channel_id(config: &ChannelConfig, chain_id: u64) -> B256 {
    config.eip712_signing_hash(&settlement_domain(chain_id))
}

/// The digest a payer signs for a voucher (the contract's `getVoucherDigest`).
pub fn voucher_digest(channel_id: B256, max_claimable: u128, chain_id: u64) -> B256 {
    Voucher {
        channelId: channel_id,
        maxClaimableAmount: max_claimable,
    }
    .eip712_signing_hash(&settlement_domain(chain_id))
}

/// The EIP-3009 nonce of a deposit authorization: `keccak256(abi.encode(channelId, salt))`, so a
/// signed deposit can fund only that channel.
pub fn deposit_nonce(channel_id: B256, salt: U256) -> B256 {
    keccak256((channel_id, salt).abi_encode())
}

/// The collector's data for an EIP-3009 deposit: `abi.encode(validAfter, validBefore, salt,
/// signature)`.
pub fn erc3009_collector_data(
    valid_after: U256,
    valid_before: U256,
    salt: U256,
    signature: &Bytes,
) -> Bytes {
    (valid_after, valid_before, salt, signature.clone())
        .abi_encode_params()
        .into()
}

/// A decimal string of a `u128` (the wire form of amounts).
mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u128, D::Error> {
        let s = String::deserialize(deserializer)?;
        super::parse_amount(&s)
            .ok_or_else(|| D::Error::custom(format!("{s:?} is not an unsigned 128-bit integer")))
    }
}

/// Parses a decimal (or `0x` hex) amount that fits in 128 bits.
pub fn parse_amount(s: &str) -> Option<u128> {
    let v = crate::types::parse_uint(s)?;
    u128::try_from(v).ok()
}

/// The channel config as the client sends it (`payload.channelConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireChannelConfig {
    /// The paying wallet.
    pub payer: Address,
    /// The key that signs vouchers (zero: the payer itself).
    pub payer_authorizer: Address,
    /// Where claimed value goes (this node's payTo for the project).
    pub receiver: Address,
    /// Who authorizes claims and refunds (this node).
    pub receiver_authorizer: Address,
    /// The token.
    pub token: Address,
    /// Seconds between a payer's withdrawal request and its completion.
    pub withdraw_delay: u64,
    /// Tells apart channels with the same other fields.
    pub salt: B256,
}

impl WireChannelConfig {
    /// The contract's struct (the delay must fit 40 bits: checked by [`verify_channel_payment`]).
    pub fn to_sol(&self) -> ChannelConfig {
        ChannelConfig {
            payer: self.payer,
            payerAuthorizer: self.payer_authorizer,
            receiver: self.receiver,
            receiverAuthorizer: self.receiver_authorizer,
            token: self.token,
            withdrawDelay: alloy::primitives::Uint::<40, 1>::from(
                self.withdraw_delay.min((1u64 << 40) - 1),
            ),
            salt: self.salt,
        }
    }

    /// The channel the official client opens for `payer` on `offer` (its `buildChannelConfig`
    /// with the default salt 0 and the payer as its own voucher signer): `receiver` = `payTo`,
    /// `receiverAuthorizer` and `withdrawDelay` from `extra`, `token` = `asset`. `None` when the
    /// offer lacks one of them.
    pub fn for_offer(payer: Address, offer: &PaymentRequirements) -> Option<Self> {
        Some(Self {
            payer,
            payer_authorizer: payer,
            receiver: offer.pay_to_address()?,
            receiver_authorizer: offer
                .extra
                .get("receiverAuthorizer")?
                .as_str()?
                .parse()
                .ok()?,
            token: offer.asset_address()?,
            withdraw_delay: offer
                .extra
                .get("withdrawDelay")
                .and_then(|d| d.as_u64())
                .unwrap_or(MIN_WITHDRAW_DELAY),
            salt: B256::ZERO,
        })
    }

    /// Who must have signed the vouchers.
    pub fn voucher_signer(&self) -> Address {
        if self.payer_authorizer == Address::ZERO {
            self.payer
        } else {
            self.payer_authorizer
        }
    }
}

/// A signed cumulative voucher (`payload.voucher`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoucherFields {
    /// The channel.
    pub channel_id: B256,
    /// The cumulative ceiling.
    #[serde(with = "u128_string")]
    pub max_claimable_amount: u128,
    /// The payer's (or its authorizer's) EIP-712 signature.
    pub signature: Bytes,
}

/// The EIP-3009 part of a deposit (`deposit.authorization.erc3009Authorization`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Erc3009DepositAuthorization {
    /// `validAfter` (decimal string).
    pub valid_after: String,
    /// `validBefore` (decimal string).
    pub valid_before: String,
    /// The salt the nonce is derived from (32-byte hex).
    pub salt: String,
    /// The payer's `ReceiveWithAuthorization` signature.
    pub signature: Bytes,
}

/// How a deposit is authorized (only EIP-3009 is offered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositAuthorization {
    /// The EIP-3009 authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erc3009_authorization: Option<Erc3009DepositAuthorization>,
    /// A Permit2 authorization (refused: not offered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit2_authorization: Option<serde_json::Value>,
}

/// A deposit (`payload.deposit`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositFields {
    /// The amount deposited.
    #[serde(with = "u128_string")]
    pub amount: u128,
    /// Its authorization.
    pub authorization: DepositAuthorization,
}

/// `payload` of a batch-settlement payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChannelPayload {
    /// First request or top-up: a deposit plus the voucher for this request.
    #[serde(rename_all = "camelCase")]
    Deposit {
        /// The channel.
        channel_config: WireChannelConfig,
        /// The voucher.
        voucher: VoucherFields,
        /// The deposit.
        deposit: DepositFields,
    },
    /// A request paid by a new voucher.
    #[serde(rename_all = "camelCase")]
    Voucher {
        /// The channel.
        channel_config: WireChannelConfig,
        /// The voucher.
        voucher: VoucherFields,
    },
    /// A cooperative refund request.
    #[serde(rename_all = "camelCase")]
    Refund {
        /// The channel.
        channel_config: WireChannelConfig,
        /// A zero-charge voucher.
        voucher: VoucherFields,
        /// The amount (absent: everything unclaimed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<String>,
    },
}

impl ChannelPayload {
    /// The channel config.
    pub fn config(&self) -> &WireChannelConfig {
        match self {
            Self::Deposit { channel_config, .. }
            | Self::Voucher { channel_config, .. }
            | Self::Refund { channel_config, .. } => channel_config,
        }
    }
    /// The voucher.
    pub fn voucher(&self) -> &VoucherFields {
        match self {
            Self::Deposit { voucher, .. }
            | Self::Voucher { voucher, .. }
            | Self::Refund { voucher, .. } => voucher,
        }
    }
    /// The payload's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Deposit { .. } => "deposit",
            Self::Voucher { .. } => "voucher",
            Self::Refund { .. } => "refund",
        }
    }
}

/// The `PAYMENT-SIGNATURE` JSON of a batch-settlement payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPaymentPayload {
    /// Protocol version (2).
    pub x402_version: u32,
    /// The resource paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The requirement it pays.
    pub accepted: PaymentRequirements,
    /// The scheme payload.
    pub payload: ChannelPayload,
}

/// The channel snapshot sent in `extra.channelState` (responses and corrective 402s).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStateExtra {
    /// The channel.
    pub channel_id: B256,
    /// Deposited minus withdrawn and refunded (on chain).
    #[serde(with = "u128_string")]
    pub balance: u128,
    /// Claimed so far (on chain).
    #[serde(with = "u128_string")]
    pub total_claimed: u128,
    /// When a payer's withdrawal was requested (0: none).
    pub withdraw_requested_at: u64,
    /// The next refund nonce (decimal).
    pub refund_nonce: String,
    /// What this server has charged in total (off chain).
    #[serde(with = "u128_string")]
    pub charged_cumulative_amount: u128,
}

/// Why a channel payment is refused: an x402 code and a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ChannelError {
    /// The x402 error code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ChannelError {
    /// A refusal with `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The header's scheme, read without parsing the payload (to route exact vs channel payments).
pub fn payment_scheme(header: &str) -> Option<String> {
    let json = decode_header_json(header).ok()?;
    let value: serde_json::Value = serde_json::from_str(&json).ok()?;
    value
        .get("accepted")?
        .get("scheme")?
        .as_str()
        .map(str::to_owned)
}

/// What this server offers channels for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOffer {
    /// Chain id.
    pub chain_id: u64,
    /// The token.
    pub asset: Address,
    /// The token's EIP-712 name and version.
    pub domain: (String, String),
    /// The receiver (this node's payTo for the project).
    pub pay_to: Address,
    /// This node (authorizes claims).
    pub receiver_authorizer: Address,
    /// The withdraw delay offered.
    pub withdraw_delay: u64,
    /// How long a deposit authorization may be signed for.
    pub max_timeout_secs: u64,
}

/// The smallest deposit taken, in prices (the official server's default multiplier): the node
/// pays the gas of every deposit it executes, so a deposit must buy enough requests to be worth
/// it. Announced as `extra.minDeposit`, which the official client deposits at least.
pub const MIN_DEPOSIT_PRICES: u128 = 10;

impl ChannelOffer {
    /// The smallest deposit taken at `price`.
    pub fn min_deposit(&self, price: u128) -> u128 {
        price.saturating_mul(MIN_DEPOSIT_PRICES)
    }

    /// The `accepts[]` entry at `price`.
    pub fn requirements(&self, price: u128) -> PaymentRequirements {
        let mut extra = serde_json::Map::new();
        extra.insert(
            "receiverAuthorizer".into(),
            self.receiver_authorizer.to_checksum(None).into(),
        );
        extra.insert("withdrawDelay".into(), self.withdraw_delay.into());
        extra.insert(
            "minDeposit".into(),
            self.min_deposit(price).to_string().into(),
        );
        extra.insert("name".into(), self.domain.0.clone().into());
        extra.insert("version".into(), self.domain.1.clone().into());
        PaymentRequirements {
            scheme: SCHEME_BATCH_SETTLEMENT.into(),
            network: eip155_network(self.chain_id),
            amount: price.to_string(),
            asset: self.asset.to_checksum(None),
            pay_to: self.pay_to.to_checksum(None),
            max_timeout_seconds: self.max_timeout_secs,
            extra,
        }
    }
}

/// A channel payment whose signatures and fields check out offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedChannelPayment {
    /// The channel id.
    pub channel_id: B256,
    /// The config (as the contract takes it).
    pub config: WireChannelConfig,
    /// The voucher.
    pub voucher: VoucherFields,
    /// The deposit, when the payload carries one: its amount and the collector data.
    pub deposit: Option<(u128, Bytes)>,
}

/// Decodes a `PAYMENT-SIGNATURE` header carrying a batch-settlement payment.
pub fn decode_channel_payment(header: &str) -> Result<ChannelPaymentPayload, ChannelError> {
    let json = decode_header_json(header).map_err(|e| {
        ChannelError::new(
            crate::verify::codes::INVALID_PAYLOAD,
            format!("malformed payment: {e}"),
        )
    })?;
    serde_json::from_str(&json).map_err(|e| {
        ChannelError::new(
            crate::verify::codes::INVALID_PAYLOAD,
            format!("malformed batch-settlement payment: {e}"),
        )
    })
}

/// The offline checks of a deposit or voucher against `offer` at `price`, at unix time `now`:
/// the requirement it pays is the offered one; the channel's receiver, receiver authorizer,
/// token and withdraw delay are the offer's; the config hashes to the voucher's channel id; the
/// voucher is signed by the payer (or its authorizer); a deposit carries an EIP-3009
/// authorization signed by the payer for the collector, bound to this channel, valid now and
/// long enough to land. Refund payloads are refused here (`payload_type`): this server does not
/// take cooperative refunds over HTTP; the payer's timed withdrawal always works.
pub fn verify_channel_payment(
    payment: &ChannelPaymentPayload,
    offer: &ChannelOffer,
    price: u128,
    now: u64,
) -> Result<VerifiedChannelPayment, ChannelError> {
    use channel_codes as c;
    if payment.x402_version != X402_VERSION {
        return Err(ChannelError::new(
            crate::verify::codes::INVALID_X402_VERSION,
            format!(
                "x402 version {} is not supported, use {X402_VERSION}",
                payment.x402_version
            ),
        ));
    }
    let accepted = &payment.accepted;
    if accepted.scheme != SCHEME_BATCH_SETTLEMENT {
        return Err(ChannelError::new(
            c::SCHEME,
            format!(
                "scheme {:?} is not {SCHEME_BATCH_SETTLEMENT:?}",
                accepted.scheme
            ),
        ));
    }
    if accepted.chain_id() != Some(offer.chain_id) {
        return Err(ChannelError::new(
            c::NETWORK_MISMATCH,
            format!(
                "payment is for network {:?}, this server accepts {:?}",
                accepted.network,
                eip155_network(offer.chain_id)
            ),
        ));
    }
    if accepted.amount_value() != Some(U256::from(price)) {
        return Err(ChannelError::new(
            crate::verify::codes::INVALID_PAYMENT_REQUIREMENTS,
            format!(
                "the payment was made for a price of {}, the price is {price}",
                accepted.amount
            ),
        ));
    }
    let (config, voucher) = (payment.payload.config(), payment.payload.voucher());
    if matches!(payment.payload, ChannelPayload::Refund { .. }) {
        return Err(ChannelError::new(
            c::PAYLOAD_TYPE,
            "cooperative refunds are not taken here: the payer's timed withdrawal \
             (initiateWithdraw, then finalizeWithdraw after the delay) returns what is unclaimed",
        ));
    }
    if config.token != offer.asset {
        return Err(ChannelError::new(
            c::TOKEN_MISMATCH,
            format!(
                "the channel's token is {}, this server takes {}",
                config.token, offer.asset
            ),
        ));
    }
    if config.receiver != offer.pay_to {
        return Err(ChannelError::new(
            c::RECEIVER_MISMATCH,
            format!(
                "the channel pays {}, it must pay {}",
                config.receiver, offer.pay_to
            ),
        ));
    }
    if config.receiver_authorizer != offer.receiver_authorizer {
        return Err(ChannelError::new(
            c::RECEIVER_AUTHORIZER_MISMATCH,
            format!(
                "the channel's receiver authorizer is {}, it must be {}",
                config.receiver_authorizer, offer.receiver_authorizer
            ),
        ));
    }
    if config.withdraw_delay != offer.withdraw_delay {
        return Err(ChannelError::new(
            c::WITHDRAW_DELAY_MISMATCH,
            format!(
                "the channel's withdraw delay is {} s, this server offers {} s",
                config.withdraw_delay, offer.withdraw_delay
            ),
        ));
    }
    if config.payer == Address::ZERO {
        return Err(ChannelError::new(
            crate::verify::codes::INVALID_PAYLOAD,
            "the channel's payer is the zero address",
        ));
    }
    let id = channel_id(&config.to_sol(), offer.chain_id);
    if id != voucher.channel_id {
        return Err(ChannelError::new(
            c::CHANNEL_ID_MISMATCH,
            format!(
                "the channel config hashes to {id}, the voucher names {}",
                voucher.channel_id
            ),
        ));
    }
    let digest = voucher_digest(id, voucher.max_claimable_amount, offer.chain_id);
    let expected = config.voucher_signer();
    match recover_signer(&digest, &voucher.signature) {
        Ok(signer) if signer == expected => {}
        Ok(signer) => {
            return Err(ChannelError::new(
                c::VOUCHER_SIGNATURE,
                format!("the voucher was signed by {signer}, not by {expected}"),
            ));
        }
        Err(e) => {
            return Err(ChannelError::new(
                c::VOUCHER_SIGNATURE,
                format!("the voucher signature does not verify: {e}"),
            ));
        }
    }
    let deposit = match &payment.payload {
        ChannelPayload::Deposit { deposit, .. } => {
            Some(verify_deposit(config, id, deposit, offer, price, now)?)
        }
        _ => None,
    };
    Ok(VerifiedChannelPayment {
        channel_id: id,
        config: config.clone(),
        voucher: voucher.clone(),
        deposit,
    })
}

fn verify_deposit(
    config: &WireChannelConfig,
    id: B256,
    deposit: &DepositFields,
    offer: &ChannelOffer,
    price: u128,
    now: u64,
) -> Result<(u128, Bytes), ChannelError> {
    use channel_codes as c;
    let Some(auth) = &deposit.authorization.erc3009_authorization else {
        return Err(ChannelError::new(
            c::ERC3009_REQUIRED,
            "the deposit must carry an EIP-3009 authorization (Permit2 is not offered)",
        ));
    };
    if deposit.amount < offer.min_deposit(price) {
        return Err(ChannelError::new(
            c::BELOW_MIN_DEPOSIT,
            format!(
                "a deposit of {} is below the minimum of {} ({MIN_DEPOSIT_PRICES} requests)",
                deposit.amount,
                offer.min_deposit(price)
            ),
        ));
    }
    let parse = |what: &str, s: &str| {
        crate::types::parse_uint(s).ok_or_else(|| {
            ChannelError::new(
                crate::verify::codes::INVALID_PAYLOAD,
                format!("the deposit authorization's {what} {s:?} is not a number"),
            )
        })
    };
    let (valid_after, valid_before, salt) = (
        parse("validAfter", &auth.valid_after)?,
        parse("validBefore", &auth.valid_before)?,
        parse("salt", &auth.salt)?,
    );
    if valid_after >= U256::from(now) {
        return Err(ChannelError::new(
            c::VALID_AFTER,
            format!("the deposit authorization is valid only after {valid_after}, now is {now}"),
        ));
    }
    let margin = crate::verify::MIN_VALIDITY_MARGIN_SECS;
    if valid_before <= U256::from(now + margin) {
        return Err(ChannelError::new(
            c::VALID_BEFORE,
            format!(
                "the deposit authorization expires at {valid_before}, now is {now} and depositing needs {margin} s"
            ),
        ));
    }
    if valid_before > U256::from(now + offer.max_timeout_secs + crate::verify::CLOCK_SKEW_SECS) {
        return Err(ChannelError::new(
            c::VALID_BEFORE,
            format!(
                "the deposit authorization is valid until {valid_before}, longer than the {} s offered",
                offer.max_timeout_secs
            ),
        ));
    }
    let message = ReceiveWithAuthorization {
        from: config.payer,
        to: ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        value: U256::from(deposit.amount),
        validAfter: valid_after,
        validBefore: valid_before,
        nonce: deposit_nonce(id, salt),
    };
    let domain = token_domain(
        &offer.domain.0,
        &offer.domain.1,
        offer.chain_id,
        offer.asset,
    );
    let digest = message.eip712_signing_hash(&domain);
    match recover_signer(&digest, &auth.signature) {
        Ok(signer) if signer == config.payer => {}
        Ok(signer) => {
            return Err(ChannelError::new(
                c::RECEIVE_AUTHORIZATION_SIGNATURE,
                format!(
                    "the deposit authorization was signed by {signer}, not by the payer {}",
                    config.payer
                ),
            ));
        }
        Err(e) => {
            let e: SignatureError = e;
            return Err(ChannelError::new(
                c::RECEIVE_AUTHORIZATION_SIGNATURE,
                format!("the deposit authorization's signature does not verify: {e}"),
            ));
        }
    }
    Ok((
        deposit.amount,
        erc3009_collector_data(valid_after, valid_before, salt, &auth.signature),
    ))
}

/// Signs the voucher `max_claimable` for `config`'s channel on `chain_id` with `signer` (the
/// paying side; the config's voucher signer must be `signer`).
pub fn sign_voucher(
    signer: &alloy::signers::local::PrivateKeySigner,
    config: &WireChannelConfig,
    max_claimable: u128,
    chain_id: u64,
) -> Result<VoucherFields, alloy::signers::Error> {
    use alloy::signers::SignerSync;
    let id = channel_id(&config.to_sol(), chain_id);
    let signature = signer.sign_hash_sync(&voucher_digest(id, max_claimable, chain_id))?;
    Ok(VoucherFields {
        channel_id: id,
        max_claimable_amount: max_claimable,
        signature: Bytes::copy_from_slice(&signature.as_bytes()),
    })
}

/// Signs an EIP-3009 deposit of `amount` into `config`'s channel on `chain_id` (the token's
/// EIP-712 domain `token_name`/`token_version`), valid until `valid_before`, with nonce salt
/// `salt` — what the official client's `createBatchSettlementEIP3009DepositPayload` signs.
pub fn sign_deposit(
    signer: &alloy::signers::local::PrivateKeySigner,
    config: &WireChannelConfig,
    amount: u128,
    (token_name, token_version): (&str, &str),
    chain_id: u64,
    valid_before: u64,
    salt: U256,
) -> Result<DepositFields, alloy::signers::Error> {
    use alloy::signers::SignerSync;
    let id = channel_id(&config.to_sol(), chain_id);
    let message = ReceiveWithAuthorization {
        from: config.payer,
        to: ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        value: U256::from(amount),
        validAfter: U256::ZERO,
        validBefore: U256::from(valid_before),
        nonce: deposit_nonce(id, salt),
    };
    let domain = token_domain(token_name, token_version, chain_id, config.token);
    let signature = signer.sign_hash_sync(&message.eip712_signing_hash(&domain))?;
    Ok(DepositFields {
        amount,
        authorization: DepositAuthorization {
            erc3009_authorization: Some(Erc3009DepositAuthorization {
                valid_after: "0".into(),
                valid_before: valid_before.to_string(),
                salt: format!("{salt:#066x}"),
                signature: Bytes::copy_from_slice(&signature.as_bytes()),
            }),
            permit2_authorization: None,
        },
    })
}

impl FromStr for WireChannelConfig {
    type Err = serde_json::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s)
    }
}

impl std::fmt::Display for WireChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;

    const TOKEN: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
    const PAY_TO: Address = address!("8A791620dd6260079BF849Dc5567aDC3F2FdC318");
    const NODE: Address = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");

    fn offer() -> ChannelOffer {
        ChannelOffer {
            chain_id: 31337,
            asset: TOKEN,
            domain: ("Autonet".into(), "1".into()),
            pay_to: PAY_TO,
            receiver_authorizer: NODE,
            withdraw_delay: MIN_WITHDRAW_DELAY,
            max_timeout_secs: 300,
        }
    }

    fn config(payer: Address) -> WireChannelConfig {
        WireChannelConfig {
            payer,
            payer_authorizer: payer,
            receiver: PAY_TO,
            receiver_authorizer: NODE,
            token: TOKEN,
            withdraw_delay: MIN_WITHDRAW_DELAY,
            salt: B256::ZERO,
        }
    }

    fn voucher(signer: &PrivateKeySigner, cfg: &WireChannelConfig, max: u128) -> VoucherFields {
        sign_voucher(signer, cfg, max, 31337).unwrap()
    }

    fn deposit(
        signer: &PrivateKeySigner,
        cfg: &WireChannelConfig,
        amount: u128,
        now: u64,
    ) -> DepositFields {
        sign_deposit(
            signer,
            cfg,
            amount,
            ("Autonet", "1"),
            31337,
            now + 300,
            U256::from(7u64),
        )
        .unwrap()
    }

    fn payment(payload: ChannelPayload) -> ChannelPaymentPayload {
        ChannelPaymentPayload {
            x402_version: 2,
            resource: None,
            accepted: offer().requirements(100),
            payload,
        }
    }

    #[test]
    fn the_wire_payload_of_the_official_client_parses() {
        let json = serde_json::json!({
            "x402Version": 2,
            "accepted": offer().requirements(100),
            "payload": {
                "type": "voucher",
                "channelConfig": {
                    "payer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "payerAuthorizer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "receiver": "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318",
                    "receiverAuthorizer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                    "withdrawDelay": 900,
                    "salt": "0x0000000000000000000000000000000000000000000000000000000000000000"
                },
                "voucher": {"channelId": format!("{:#066x}", U256::from(1)), "maxClaimableAmount": "5000", "signature": "0x01"}
            }
        });
        let p: ChannelPaymentPayload = serde_json::from_value(json).unwrap();
        assert_eq!(p.payload.kind(), "voucher");
        assert_eq!(p.payload.voucher().max_claimable_amount, 5000);
        assert_eq!(p.payload.config().withdraw_delay, 900);
    }

    #[test]
    fn a_signed_voucher_and_deposit_verify_and_tampering_is_named() {
        let payer = PrivateKeySigner::random();
        let cfg = config(payer.address());
        let now = 1_800_000_000;
        let v = voucher(&payer, &cfg, 100);
        let ok = verify_channel_payment(
            &payment(ChannelPayload::Deposit {
                channel_config: cfg.clone(),
                voucher: v.clone(),
                deposit: deposit(&payer, &cfg, 1000, now),
            }),
            &offer(),
            100,
            now,
        )
        .unwrap();
        assert_eq!(ok.deposit.as_ref().map(|d| d.0), Some(1000));
        assert_eq!(ok.channel_id, v.channel_id);

        // Another receiver: named, not a signature error.
        let mut other = cfg.clone();
        other.receiver = Address::repeat_byte(9);
        let e = verify_channel_payment(
            &payment(ChannelPayload::Voucher {
                channel_config: other,
                voucher: v.clone(),
            }),
            &offer(),
            100,
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, channel_codes::RECEIVER_MISMATCH);

        // A config that does not hash to the voucher's channel.
        let mut salted = cfg.clone();
        salted.salt = B256::repeat_byte(1);
        let e = verify_channel_payment(
            &payment(ChannelPayload::Voucher {
                channel_config: salted,
                voucher: v.clone(),
            }),
            &offer(),
            100,
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, channel_codes::CHANNEL_ID_MISMATCH);

        // A voucher signed by someone else.
        let stranger = PrivateKeySigner::random();
        let e = verify_channel_payment(
            &payment(ChannelPayload::Voucher {
                channel_config: cfg.clone(),
                voucher: voucher(&stranger, &cfg, 100),
            }),
            &offer(),
            100,
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, channel_codes::VOUCHER_SIGNATURE);

        // A raised ceiling under the old signature.
        let mut raised = v.clone();
        raised.max_claimable_amount = 10_000;
        let e = verify_channel_payment(
            &payment(ChannelPayload::Voucher {
                channel_config: cfg.clone(),
                voucher: raised,
            }),
            &offer(),
            100,
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, channel_codes::VOUCHER_SIGNATURE);

        // A deposit signed for more than it says.
        let mut d = deposit(&payer, &cfg, 1000, now);
        d.amount = 5000;
        let e = verify_channel_payment(
            &payment(ChannelPayload::Deposit {
                channel_config: cfg.clone(),
                voucher: v.clone(),
                deposit: d,
            }),
            &offer(),
            100,
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, channel_codes::RECEIVE_AUTHORIZATION_SIGNATURE);

        // An expired deposit authorization.
        let e = verify_channel_payment(
            &payment(ChannelPayload::Deposit {
                channel_config: cfg.clone(),
                voucher: v.clone(),
                deposit: deposit(&payer, &cfg, 1000, now - 1000),
            }),
            &offer(),
            100,
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, channel_codes::VALID_BEFORE);

        // A deposit below the announced minimum (10 prices): the node would pay its gas for
        // fewer requests than that.
        assert_eq!(offer().requirements(100).extra["minDeposit"], "1000");
        let e = verify_channel_payment(
            &payment(ChannelPayload::Deposit {
                channel_config: cfg.clone(),
                voucher: v,
                deposit: deposit(&payer, &cfg, 999, now),
            }),
            &offer(),
            100,
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, channel_codes::BELOW_MIN_DEPOSIT);
    }

    #[test]
    fn the_channel_id_is_the_eip712_hash_under_the_canonical_domain() {
        // keccak256(0x1901 ‖ domainSeparator ‖ hashStruct) computed by hand.
        let cfg = config(Address::repeat_byte(1)).to_sol();
        let typehash = keccak256(
            "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)",
        );
        let struct_hash = keccak256(
            (
                typehash,
                cfg.payer,
                cfg.payerAuthorizer,
                cfg.receiver,
                cfg.receiverAuthorizer,
                cfg.token,
                U256::from(MIN_WITHDRAW_DELAY),
                cfg.salt,
            )
                .abi_encode(),
        );
        let domain_typehash = keccak256(
            "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
        );
        let separator = keccak256(
            (
                domain_typehash,
                keccak256("x402 Batch Settlement"),
                keccak256("1"),
                U256::from(31337u64),
                BATCH_SETTLEMENT_ADDRESS,
            )
                .abi_encode(),
        );
        let mut preimage = vec![0x19, 0x01];
        preimage.extend_from_slice(separator.as_slice());
        preimage.extend_from_slice(struct_hash.as_slice());
        assert_eq!(channel_id(&cfg, 31337), keccak256(preimage));
        assert_ne!(channel_id(&cfg, 31337), channel_id(&cfg, 1));
    }
}
