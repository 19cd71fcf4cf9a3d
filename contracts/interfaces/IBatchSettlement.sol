// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IBatchSettlement
/// @notice Unidirectional payment channels for the x402 `batch-settlement` EVM scheme, wire-compatible with the
///         official TypeScript client (npm package x402/evm). A payer funds a channel, fixed by its
///         `ChannelConfig`, through a deposit collector; for every paid request it signs a cumulative
///         `Voucher(channelId, maxClaimableAmount)`. The receiver (or its authorizer) claims the latest vouchers
///         of many channels at once, setting each channel's cumulative `totalClaimed`, and `settle` pays
///         everything a receiver has claimed in a token with one transfer. The payer gets unclaimed funds back
///         with a timed withdrawal (`initiateWithdraw`, then `finalizeWithdraw` after the channel's
///         `withdrawDelay`) or at once with a refund from the receiver side (`refund`, `refundWithSignature`).
/// @dev EIP-712 domain: name "x402 Batch Settlement", version "1", the chain id and this contract's address
///      (recomputed when either differs from the deployment's, so runtime code copied to the canonical address
///      signs and verifies there). `channelId = hashTypedDataV4(ChannelConfig)`.
///      Accounting: a channel's `balance` is deposits minus withdrawals and refunds; its `totalClaimed` (never
///      above `balance`, never decreasing) is the part of it owed to the receiver. Claimed value stays inside
///      `balance` until the channel closes; `receivers[receiver][token]` counts what was claimed and what was
///      paid out. Invariant, per token: this contract's balance = Σ channel.balance − Σ receiver.totalSettled
///      = Σ (balance − totalClaimed) + Σ (receiver.totalClaimed − receiver.totalSettled).
interface IBatchSettlement {
    /// @notice What fixes a channel; its EIP-712 hash is the channel id, so no field can change once funded.
    struct ChannelConfig {
        address payer; // funds the channel, receives withdrawals and refunds
        address payerAuthorizer; // signs vouchers (ECDSA); 0: `payer` signs them (ECDSA or ERC-1271)
        address receiver; // paid by `settle`
        address receiverAuthorizer; // may claim and refund, and signs claim batches and refunds
        address token; // the ERC-20 the channel holds
        uint40 withdrawDelay; // seconds between `initiateWithdraw` and `finalizeWithdraw`
        bytes32 salt; // lets one payer open several channels with the same parties
    }

    /// @notice A channel's funds: `balance` held for it, `totalClaimed` of it owed to the receiver.
    struct ChannelState {
        uint128 balance;
        uint128 totalClaimed;
    }

    /// @notice A payer's pending withdrawal: `amount` asked for at `initiatedAt` (0: none).
    struct WithdrawalState {
        uint128 amount;
        uint40 initiatedAt;
    }

    /// @notice A receiver's totals in one token: claimed over all its channels, and paid out by `settle`.
    struct ReceiverState {
        uint128 totalClaimed;
        uint128 totalSettled;
    }

    /// @notice The payer's signed promise: the receiver may claim up to `maxClaimableAmount` in total.
    struct Voucher {
        ChannelConfig channel;
        uint128 maxClaimableAmount;
    }

    /// @notice One claim row: a voucher, the payer's signature of it, and the channel's new cumulative claimed
    ///         total (at most `maxClaimableAmount`; not a delta).
    struct VoucherClaim {
        Voucher voucher;
        bytes signature;
        uint128 totalClaimed;
    }

    /// @notice A channel received its first deposit (or its first since it closed).
    event ChannelCreated(bytes32 indexed channelId, ChannelConfig config);
    /// @notice `sender` deposited `amount` into `channelId`, whose balance is now `newBalance`.
    event Deposited(bytes32 indexed channelId, address indexed sender, uint128 amount, uint128 newBalance);
    /// @notice `sender` claimed `claimAmount` more of `channelId`, whose cumulative claimed total is now
    ///         `newTotalClaimed`.
    event Claimed(
        bytes32 indexed channelId, address indexed sender, uint128 claimAmount, uint128 newTotalClaimed
    );
    /// @notice `sender` paid `receiver` `amount` of `token` (everything it had claimed and not yet been paid).
    event Settled(address indexed receiver, address indexed token, address indexed sender, uint128 amount);
    /// @notice The payer asked to withdraw `amount` of `channelId`; `finalizeWithdraw` works from `finalizeAfter`.
    event WithdrawInitiated(bytes32 indexed channelId, uint128 amount, uint40 finalizeAfter);
    /// @notice `amount` of `channelId` went back to its payer (finalized by `sender`).
    event WithdrawFinalized(bytes32 indexed channelId, address indexed sender, uint128 amount);
    /// @notice The receiver side (`sender` submitted it) returned `amount` of `channelId` to its payer; `nonce`
    ///         is the refund nonce it consumed.
    event Refunded(bytes32 indexed channelId, address indexed sender, uint128 amount, uint256 nonce);
    /// @notice A withdrawal or refund emptied `channelId`: it holds and owes nothing (balance and claimed total
    ///         both zero) until it is funded again.
    event ChannelClosed(bytes32 indexed channelId);

    /// @notice A config address that must be set (payer, receiver, receiverAuthorizer, token) is zero, or the
    ///         collector is.
    error BatchSettlementZeroAddress();
    /// @notice The config's `withdrawDelay` is outside [MIN_WITHDRAW_DELAY, MAX_WITHDRAW_DELAY].
    error BatchSettlementInvalidWithdrawDelay(uint40 withdrawDelay);
    /// @notice A zero amount was given.
    error BatchSettlementZeroAmount();
    /// @notice The collector moved `received` tokens into this contract instead of the deposit's `expected`.
    error BatchSettlementDepositMismatch(uint256 expected, uint256 received);
    /// @notice A claim batch has no rows.
    error BatchSettlementEmptyBatch();
    /// @notice `caller` is neither the receiver nor the receiver authorizer of `channelId`.
    error BatchSettlementNotReceiver(bytes32 channelId, address caller);
    /// @notice `caller` is neither the payer nor the payer authorizer of `channelId`.
    error BatchSettlementNotPayer(bytes32 channelId, address caller);
    /// @notice Row `index` of a signed claim batch has another receiver authorizer than row 0.
    error BatchSettlementAuthorizerMismatch(uint256 index);
    /// @notice The claim batch or refund is not signed by the channel's receiver authorizer.
    error BatchSettlementInvalidAuthorizerSignature();
    /// @notice The voucher of `channelId` is not signed by its payer authorizer (or payer).
    error BatchSettlementInvalidVoucherSignature(bytes32 channelId);
    /// @notice The claimed total is above the voucher's `maxClaimableAmount`.
    error BatchSettlementClaimExceedsMax(bytes32 channelId, uint128 totalClaimed, uint128 maxClaimableAmount);
    /// @notice The claimed total is above the channel's balance.
    error BatchSettlementClaimExceedsBalance(bytes32 channelId, uint128 totalClaimed, uint128 balance);
    /// @notice The channel already has a pending withdrawal.
    error BatchSettlementWithdrawPending(bytes32 channelId);
    /// @notice The channel has no pending withdrawal.
    error BatchSettlementNoPendingWithdrawal(bytes32 channelId);
    /// @notice The withdrawal cannot be finalized before `finalizeAfter`.
    error BatchSettlementWithdrawNotReady(bytes32 channelId, uint256 finalizeAfter);
    /// @notice `amount` is above the channel's unclaimed balance `available`.
    error BatchSettlementInsufficientAvailable(bytes32 channelId, uint128 amount, uint128 available);
    /// @notice The refund names nonce `given`; the channel's next refund nonce is `expected`.
    error BatchSettlementInvalidRefundNonce(bytes32 channelId, uint256 expected, uint256 given);

    /// @notice Fund the channel of `config` with `amount` of `config.token`, pulled from `config.payer` by
    ///         `collector` (`IDepositCollector.collect(payer, token, amount, channelId, collectorData)`).
    ///         Anyone may submit it: the collector needs the payer's authorization, bound to the channel id.
    /// @dev Reverts unless payer, receiver, receiverAuthorizer and token are set, `withdrawDelay` is within
    ///      [MIN_WITHDRAW_DELAY, MAX_WITHDRAW_DELAY], `amount > 0`, `collector` is set, and this contract's token
    ///      balance rose by exactly `amount` (fee-on-transfer tokens and lying collectors are refused).
    ///      Emits `ChannelCreated` when the channel held and owed nothing before, then `Deposited`.
    function deposit(
        ChannelConfig calldata config,
        uint128 amount,
        address collector,
        bytes calldata collectorData
    ) external;

    /// @notice Claim vouchers: for every row, set its channel's cumulative claimed total to `row.totalClaimed`.
    ///         The caller must be the receiver or the receiver authorizer of every row's channel.
    /// @dev Per row: a total at or below the channel's current one is skipped (replaying an applied claim does
    ///      nothing); otherwise it must not exceed the voucher's `maxClaimableAmount` nor the channel's balance,
    ///      and the voucher must be signed by the payer authorizer (ECDSA) or, when that is zero, by the payer
    ///      (ECDSA or ERC-1271). The increase is added to `receivers[receiver][token].totalClaimed`. An empty
    ///      batch reverts.
    function claim(VoucherClaim[] calldata voucherClaims) external;

    /// @notice `claim` submitted by anyone (a relayer) with the receiver authorizer's EIP-712 signature of the
    ///         batch (`getClaimBatchDigest`). Every row must have the receiver authorizer of row 0.
    function claimWithSignature(VoucherClaim[] calldata voucherClaims, bytes calldata authorizerSignature)
        external;

    /// @notice Permissionless: pay `receiver` everything it has claimed in `token` and not yet been paid
    ///         (`receivers[receiver][token].totalClaimed − totalSettled`). Does nothing when that is zero.
    function settle(address receiver, address token) external;

    /// @notice Payer or payer authorizer: ask to withdraw `amount` of the channel's unclaimed balance. The
    ///         receiver keeps claiming meanwhile: it must claim its vouchers within `withdrawDelay`.
    /// @dev Reverts on a zero amount, an amount above `balance − totalClaimed`, or a withdrawal already pending.
    function initiateWithdraw(ChannelConfig calldata config, uint128 amount) external;

    /// @notice Permissionless once `withdrawDelay` has passed since `initiateWithdraw`: send the pending
    ///         withdrawal to the payer, capped to what is unclaimed now (claims made during the delay win).
    ///         Emits `ChannelClosed` when the channel then holds and owes nothing.
    function finalizeWithdraw(ChannelConfig calldata config) external;

    /// @notice Receiver or receiver authorizer: return up to `amount` of the channel's unclaimed balance to the
    ///         payer at once (capped to what is unclaimed; a pending withdrawal shrinks by what was returned).
    ///         Consumes the channel's refund nonce. Reverts on a zero amount.
    function refund(ChannelConfig calldata config, uint128 amount) external;

    /// @notice `refund` submitted by anyone with the receiver authorizer's EIP-712 `Refund(channelId, nonce,
    ///         amount)` signature; `nonce` must be the channel's current `refundNonce`, so each signature works
    ///         once.
    function refundWithSignature(
        ChannelConfig calldata config,
        uint128 amount,
        uint256 nonce,
        bytes calldata receiverAuthorizerSignature
    ) external;

    /// @notice The id of the channel of `config`: the EIP-712 hash of `ChannelConfig` under this domain.
    function getChannelId(ChannelConfig calldata config) external view returns (bytes32);

    /// @notice The EIP-712 digest a payer (authorizer) signs for `Voucher(channelId, maxClaimableAmount)`.
    function getVoucherDigest(bytes32 channelId, uint128 maxClaimableAmount) external view returns (bytes32);

    /// @notice The EIP-712 digest a receiver authorizer signs for `Refund(channelId, nonce, amount)`.
    function getRefundDigest(bytes32 channelId, uint256 nonce, uint128 amount) external view returns (bytes32);

    /// @notice The EIP-712 digest a receiver authorizer signs for a claim batch:
    ///         `ClaimBatch(ClaimEntry[] claims)` with one `ClaimEntry(channelId, maxClaimableAmount,
    ///         totalClaimed)` per row, in order.
    function getClaimBatchDigest(VoucherClaim[] calldata voucherClaims) external view returns (bytes32);

    /// @notice Balance and cumulative claimed total of `channelId`.
    function channels(bytes32 channelId) external view returns (uint128 balance, uint128 totalClaimed);

    /// @notice The nonce the next refund of `channelId` consumes (the number of refunds so far).
    function refundNonce(bytes32 channelId) external view returns (uint256);

    /// @notice The pending withdrawal of `channelId` (`initiatedAt` 0: none).
    function pendingWithdrawals(bytes32 channelId) external view returns (uint128 amount, uint40 initiatedAt);

    /// @notice What `receiver` claimed in `token` over all its channels, and what `settle` paid it.
    function receivers(address receiver, address token)
        external
        view
        returns (uint128 totalClaimed, uint128 totalSettled);
}
