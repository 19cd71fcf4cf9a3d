// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IBatchSettlement} from "./interfaces/IBatchSettlement.sol";
import {IDepositCollector} from "./interfaces/IDepositCollector.sol";

/// @title BatchSettlement
/// @notice Payment channels of the x402 `batch-settlement` EVM scheme (see `IBatchSettlement`): deposits through
///         collectors, cumulative vouchers claimed in batches, one transfer per receiver and token on `settle`,
///         timed withdrawals and receiver-side refunds. `multicall` batches calls (e.g. `claim` then `settle`)
///         in one transaction with the caller kept as `msg.sender`.
/// @dev No admin, no upgrade, no constructor storage: the EIP-712 name and version are immutables
///      (ShortStrings), the reentrancy guard is transient (EIP-1153) and every mapping starts empty. The runtime
///      code can therefore be copied to the canonical address (`X402Canonical.BATCH_SETTLEMENT`) with
///      `anvil_setCode`; EIP712 then recomputes the domain separator for that address.
contract BatchSettlement is IBatchSettlement, EIP712, Multicall, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type hash of `ChannelConfig` (the channel id is its typed-data hash).
    bytes32 public constant CHANNEL_CONFIG_TYPEHASH = keccak256(
        "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
    );
    /// @notice EIP-712 type hash of a payer's voucher.
    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 channelId,uint128 maxClaimableAmount)");
    /// @notice EIP-712 type hash of a receiver authorizer's refund.
    bytes32 public constant REFUND_TYPEHASH =
        keccak256("Refund(bytes32 channelId,uint256 nonce,uint128 amount)");
    /// @notice EIP-712 type hash of one row of a claim batch.
    bytes32 public constant CLAIM_ENTRY_TYPEHASH =
        keccak256("ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)");
    /// @notice EIP-712 type hash of a receiver authorizer's claim batch.
    bytes32 public constant CLAIM_BATCH_TYPEHASH = keccak256(
        "ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
    );
    /// @notice Shortest `withdrawDelay` a channel may have (15 minutes).
    uint40 public constant MIN_WITHDRAW_DELAY = 900;
    /// @notice Longest `withdrawDelay` a channel may have.
    uint40 public constant MAX_WITHDRAW_DELAY = 30 days;

    /// @inheritdoc IBatchSettlement
    mapping(bytes32 channelId => ChannelState) public channels;
    /// @inheritdoc IBatchSettlement
    mapping(bytes32 channelId => uint256) public refundNonce;
    /// @inheritdoc IBatchSettlement
    mapping(bytes32 channelId => WithdrawalState) public pendingWithdrawals;
    /// @inheritdoc IBatchSettlement
    mapping(address receiver => mapping(address token => ReceiverState)) public receivers;

    constructor() EIP712("x402 Batch Settlement", "1") {}

    // ------------------------------------------------------------------ deposit

    /// @inheritdoc IBatchSettlement
    function deposit(
        ChannelConfig calldata config,
        uint128 amount,
        address collector,
        bytes calldata collectorData
    ) external nonReentrant {
        _checkConfig(config);
        if (amount == 0) revert BatchSettlementZeroAmount();
        if (collector == address(0)) revert BatchSettlementZeroAddress();
        bytes32 channelId = _channelId(config);

        ChannelState storage channel = channels[channelId];
        uint128 balance = channel.balance;
        if (balance == 0 && channel.totalClaimed == 0) emit ChannelCreated(channelId, config);
        uint128 newBalance = balance + amount;
        channel.balance = newBalance;
        emit Deposited(channelId, msg.sender, amount, newBalance);

        IERC20 token = IERC20(config.token);
        uint256 before = token.balanceOf(address(this));
        IDepositCollector(collector).collect(config.payer, config.token, amount, channelId, collectorData);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert BatchSettlementDepositMismatch(amount, received);
    }

    // ------------------------------------------------------------------ claims

    /// @inheritdoc IBatchSettlement
    function claim(VoucherClaim[] calldata voucherClaims) external nonReentrant {
        uint256 n = voucherClaims.length;
        if (n == 0) revert BatchSettlementEmptyBatch();
        for (uint256 i; i < n; ++i) {
            VoucherClaim calldata row = voucherClaims[i];
            bytes32 channelId = _channelId(row.voucher.channel);
            if (
                msg.sender != row.voucher.channel.receiver
                    && msg.sender != row.voucher.channel.receiverAuthorizer
            ) {
                revert BatchSettlementNotReceiver(channelId, msg.sender);
            }
            _claim(row, channelId);
        }
    }

    /// @inheritdoc IBatchSettlement
    function claimWithSignature(VoucherClaim[] calldata voucherClaims, bytes calldata authorizerSignature)
        external
        nonReentrant
    {
        uint256 n = voucherClaims.length;
        if (n == 0) revert BatchSettlementEmptyBatch();
        address authorizer = voucherClaims[0].voucher.channel.receiverAuthorizer;
        bytes32[] memory ids = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            if (voucherClaims[i].voucher.channel.receiverAuthorizer != authorizer) {
                revert BatchSettlementAuthorizerMismatch(i);
            }
            ids[i] = _channelId(voucherClaims[i].voucher.channel);
        }
        bytes32 digest = _claimBatchDigest(voucherClaims, ids);
        if (!SignatureChecker.isValidSignatureNowCalldata(authorizer, digest, authorizerSignature)) {
            revert BatchSettlementInvalidAuthorizerSignature();
        }
        for (uint256 i; i < n; ++i) {
            _claim(voucherClaims[i], ids[i]);
        }
    }

    /// @inheritdoc IBatchSettlement
    function settle(address receiver, address token) external nonReentrant {
        ReceiverState storage r = receivers[receiver][token];
        uint128 claimed = r.totalClaimed;
        uint128 amount = claimed - r.totalSettled; // totalSettled only ever catches up with totalClaimed
        if (amount == 0) return;
        r.totalSettled = claimed;
        emit Settled(receiver, token, msg.sender, amount);
        IERC20(token).safeTransfer(receiver, amount);
    }

    // ------------------------------------------------------------------ withdrawals and refunds

    /// @inheritdoc IBatchSettlement
    function initiateWithdraw(ChannelConfig calldata config, uint128 amount) external nonReentrant {
        bytes32 channelId = _channelId(config);
        if (msg.sender != config.payer && msg.sender != config.payerAuthorizer) {
            revert BatchSettlementNotPayer(channelId, msg.sender);
        }
        if (amount == 0) revert BatchSettlementZeroAmount();
        WithdrawalState storage pending = pendingWithdrawals[channelId];
        if (pending.initiatedAt != 0) revert BatchSettlementWithdrawPending(channelId);
        ChannelState storage channel = channels[channelId];
        uint128 available = channel.balance - channel.totalClaimed;
        if (amount > available) revert BatchSettlementInsufficientAvailable(channelId, amount, available);

        uint40 now40 = uint40(block.timestamp);
        pending.amount = amount;
        pending.initiatedAt = now40;
        emit WithdrawInitiated(channelId, amount, now40 + config.withdrawDelay);
    }

    /// @inheritdoc IBatchSettlement
    function finalizeWithdraw(ChannelConfig calldata config) external nonReentrant {
        bytes32 channelId = _channelId(config);
        WithdrawalState memory pending = pendingWithdrawals[channelId];
        if (pending.initiatedAt == 0) revert BatchSettlementNoPendingWithdrawal(channelId);
        uint256 finalizeAfter = uint256(pending.initiatedAt) + config.withdrawDelay;
        if (block.timestamp < finalizeAfter) {
            revert BatchSettlementWithdrawNotReady(channelId, finalizeAfter);
        }

        delete pendingWithdrawals[channelId];
        ChannelState storage channel = channels[channelId];
        uint128 balance = channel.balance;
        uint128 totalClaimed = channel.totalClaimed;
        uint128 available = balance - totalClaimed;
        uint128 amount = pending.amount < available ? pending.amount : available;
        balance -= amount;
        channel.balance = balance;
        emit WithdrawFinalized(channelId, msg.sender, amount);
        if (amount > 0 && balance == 0 && totalClaimed == 0) emit ChannelClosed(channelId);
        if (amount > 0) IERC20(config.token).safeTransfer(config.payer, amount);
    }

    /// @inheritdoc IBatchSettlement
    function refund(ChannelConfig calldata config, uint128 amount) external nonReentrant {
        bytes32 channelId = _channelId(config);
        if (msg.sender != config.receiver && msg.sender != config.receiverAuthorizer) {
            revert BatchSettlementNotReceiver(channelId, msg.sender);
        }
        _refund(config, channelId, amount);
    }

    /// @inheritdoc IBatchSettlement
    function refundWithSignature(
        ChannelConfig calldata config,
        uint128 amount,
        uint256 nonce,
        bytes calldata receiverAuthorizerSignature
    ) external nonReentrant {
        bytes32 channelId = _channelId(config);
        uint256 expected = refundNonce[channelId];
        if (nonce != expected) revert BatchSettlementInvalidRefundNonce(channelId, expected, nonce);
        bytes32 digest = _refundDigest(channelId, nonce, amount);
        address authorizer = config.receiverAuthorizer;
        if (!SignatureChecker.isValidSignatureNowCalldata(authorizer, digest, receiverAuthorizerSignature)) {
            revert BatchSettlementInvalidAuthorizerSignature();
        }
        _refund(config, channelId, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IBatchSettlement
    function getChannelId(ChannelConfig calldata config) external view returns (bytes32) {
        return _channelId(config);
    }

    /// @inheritdoc IBatchSettlement
    function getVoucherDigest(bytes32 channelId, uint128 maxClaimableAmount) external view returns (bytes32) {
        return _voucherDigest(channelId, maxClaimableAmount);
    }

    /// @inheritdoc IBatchSettlement
    function getRefundDigest(bytes32 channelId, uint256 nonce, uint128 amount)
        external
        view
        returns (bytes32)
    {
        return _refundDigest(channelId, nonce, amount);
    }

    /// @inheritdoc IBatchSettlement
    function getClaimBatchDigest(VoucherClaim[] calldata voucherClaims) external view returns (bytes32) {
        uint256 n = voucherClaims.length;
        bytes32[] memory ids = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            ids[i] = _channelId(voucherClaims[i].voucher.channel);
        }
        return _claimBatchDigest(voucherClaims, ids);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Applies one claim row of `channelId` (the id of `row.voucher.channel`); the caller checked who may
    ///      claim it.
    function _claim(VoucherClaim calldata row, bytes32 channelId) private {
        ChannelState storage channel = channels[channelId];
        uint128 newTotal = row.totalClaimed;
        uint128 oldTotal = channel.totalClaimed;
        if (newTotal <= oldTotal) return; // already applied (a replay, or an older voucher): nothing to do
        uint128 maxClaimable = row.voucher.maxClaimableAmount;
        if (newTotal > maxClaimable) {
            revert BatchSettlementClaimExceedsMax(channelId, newTotal, maxClaimable);
        }
        uint128 balance = channel.balance;
        if (newTotal > balance) revert BatchSettlementClaimExceedsBalance(channelId, newTotal, balance);
        _checkVoucherSignature(row, channelId);

        uint128 delta = newTotal - oldTotal;
        channel.totalClaimed = newTotal;
        receivers[row.voucher.channel.receiver][row.voucher.channel.token].totalClaimed += delta;
        emit Claimed(channelId, msg.sender, delta, newTotal);
    }

    /// @dev Reverts unless `row.signature` signs the voucher: ECDSA by the payer authorizer when there is one,
    ///      otherwise the payer's ECDSA or ERC-1271 signature.
    function _checkVoucherSignature(VoucherClaim calldata row, bytes32 channelId) private view {
        bytes32 digest = _voucherDigest(channelId, row.voucher.maxClaimableAmount);
        address payerAuthorizer = row.voucher.channel.payerAuthorizer;
        bool valid;
        if (payerAuthorizer != address(0)) {
            (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, row.signature);
            valid = err == ECDSA.RecoverError.NoError && recovered == payerAuthorizer;
        } else {
            valid = SignatureChecker.isValidSignatureNowCalldata(
                row.voucher.channel.payer, digest, row.signature
            );
        }
        if (!valid) revert BatchSettlementInvalidVoucherSignature(channelId);
    }

    /// @dev Returns up to `amount` of the unclaimed balance to the payer, after consuming the refund nonce.
    function _refund(ChannelConfig calldata config, bytes32 channelId, uint128 amount) private {
        if (amount == 0) revert BatchSettlementZeroAmount();
        uint256 nonce = refundNonce[channelId]++;

        ChannelState storage channel = channels[channelId];
        uint128 balance = channel.balance;
        uint128 totalClaimed = channel.totalClaimed;
        uint128 available = balance - totalClaimed;
        uint128 refunded = amount < available ? amount : available;
        balance -= refunded;
        channel.balance = balance;

        // What the receiver returned counts towards the payer's pending withdrawal.
        WithdrawalState storage pending = pendingWithdrawals[channelId];
        uint128 pendingAmount = pending.amount;
        if (pending.initiatedAt != 0) {
            if (pendingAmount > refunded) pending.amount = pendingAmount - refunded;
            else delete pendingWithdrawals[channelId];
        }

        emit Refunded(channelId, msg.sender, refunded, nonce);
        if (refunded > 0 && balance == 0 && totalClaimed == 0) emit ChannelClosed(channelId);
        if (refunded > 0) IERC20(config.token).safeTransfer(config.payer, refunded);
    }

    /// @dev Reverts unless `config` may be funded: its parties and token set, its delay within bounds.
    function _checkConfig(ChannelConfig calldata config) private pure {
        if (
            config.payer == address(0) || config.receiver == address(0)
                || config.receiverAuthorizer == address(0) || config.token == address(0)
        ) revert BatchSettlementZeroAddress();
        uint40 delay = config.withdrawDelay;
        if (delay < MIN_WITHDRAW_DELAY || delay > MAX_WITHDRAW_DELAY) {
            revert BatchSettlementInvalidWithdrawDelay(delay);
        }
    }

    /// @dev `hashTypedDataV4(keccak256(abi.encode(CHANNEL_CONFIG_TYPEHASH, config)))`.
    function _channelId(ChannelConfig calldata config) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CHANNEL_CONFIG_TYPEHASH, config)));
    }

    function _voucherDigest(bytes32 channelId, uint128 maxClaimableAmount) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, maxClaimableAmount)));
    }

    function _refundDigest(bytes32 channelId, uint256 nonce, uint128 amount) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REFUND_TYPEHASH, channelId, nonce, amount)));
    }

    /// @dev EIP-712 digest of `ClaimBatch(ClaimEntry[] claims)`: the array is hashed as the packed concatenation
    ///      of its entries' struct hashes. `ids[i]` is the channel id of row i.
    function _claimBatchDigest(VoucherClaim[] calldata voucherClaims, bytes32[] memory ids)
        private
        view
        returns (bytes32)
    {
        uint256 n = voucherClaims.length;
        bytes32[] memory entries = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            entries[i] = keccak256(
                abi.encode(
                    CLAIM_ENTRY_TYPEHASH,
                    ids[i],
                    voucherClaims[i].voucher.maxClaimableAmount,
                    voucherClaims[i].totalClaimed
                )
            );
        }
        return
            _hashTypedDataV4(
                keccak256(abi.encode(CLAIM_BATCH_TYPEHASH, keccak256(abi.encodePacked(entries))))
            );
    }
}
