// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IDepositCollector} from "./IDepositCollector.sol";

/// @title IERC3009ReceiveWithAuthorization
/// @notice The EIP-3009 `receiveWithAuthorization` in its `bytes signature` form (ATNToken, USDC v2.2 and later):
///         the payee (`to`) must be the caller, so nobody else can execute the payer's authorization.
interface IERC3009ReceiveWithAuthorization {
    /// @notice Transfer `value` from `from` to `to` (= msg.sender), authorized by `from`'s EIP-712
    ///         `ReceiveWithAuthorization(from, to, value, validAfter, validBefore, nonce)` signature.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;
}

/// @title IErc3009DepositCollector
/// @notice The x402 `batch-settlement` deposit collector for EIP-3009 tokens. `collectorData` is
///         `abi.encode(uint256 validAfter, uint256 validBefore, uint256 salt, bytes signature)` and the
///         authorization's nonce is `keccak256(abi.encode(channelId, salt))`: the payer signs
///         `ReceiveWithAuthorization(from = payer, to = this collector, value = amount, validAfter, validBefore,
///         nonce)` under the token's EIP-712 domain, exactly what the official x402 client signs.
interface IErc3009DepositCollector is IDepositCollector {
    /// @notice `collect` was called by someone other than the settlement contract.
    error Erc3009DepositCollectorOnlySettlement(address caller);
    /// @notice The settlement contract given to the constructor is the zero address.
    error Erc3009DepositCollectorZeroAddress();

    /// @notice The only caller `collect` accepts, and where collected tokens go.
    function settlement() external view returns (address);
}
