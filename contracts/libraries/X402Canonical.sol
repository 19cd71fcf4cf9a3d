// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title X402Canonical
/// @notice The addresses at which the official x402 `batch-settlement` EVM client (npm package x402/evm)
///         expects the settlement contract and its EIP-3009 deposit collector. The client hard-codes both: the
///         settlement address is the `verifyingContract` of every channel id, voucher, claim batch and refund it
///         signs, and the collector is the `to` of every deposit authorization. Dev chains place our
///         `BatchSettlement` and `Erc3009DepositCollector` runtime code there with `anvil_setCode`; neither
///         contract writes storage in its constructor, so the copied code works unchanged at these addresses.
library X402Canonical {
    /// @notice The x402 batch-settlement contract (`BATCH_SETTLEMENT_ADDRESS` of the client).
    address internal constant BATCH_SETTLEMENT = 0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003;
    /// @notice The EIP-3009 deposit collector (`ERC3009_DEPOSIT_COLLECTOR_ADDRESS` of the client).
    address internal constant ERC3009_DEPOSIT_COLLECTOR = 0x4020806089470a89826cB9fB1f4059150b550004;
}
