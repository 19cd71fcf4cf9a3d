// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IDepositCollector
/// @notice A strategy `BatchSettlement.deposit` calls to pull a channel deposit from its payer: the collector
///         moves exactly `amount` of `token` from `payer` into the settlement contract (the caller), with whatever
///         authorization `collectorData` carries. The settlement contract checks its own token balance rose by
///         exactly `amount`, so a collector cannot credit a channel with tokens it did not deliver.
interface IDepositCollector {
    /// @notice Move `amount` of `token` from `payer` to the caller (the settlement contract) for channel
    ///         `channelId`, authorized by `collectorData` (collector-specific encoding).
    /// @dev Implementations must only act for their settlement contract and bind the payer's authorization to
    ///      `channelId`, so that a signed deposit can only ever fund the channel it was signed for.
    function collect(
        address payer,
        address token,
        uint256 amount,
        bytes32 channelId,
        bytes calldata collectorData
    ) external;
}
