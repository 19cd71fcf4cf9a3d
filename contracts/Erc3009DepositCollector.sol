// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {
    IErc3009DepositCollector,
    IERC3009ReceiveWithAuthorization
} from "./interfaces/IErc3009DepositCollector.sol";
import {IDepositCollector} from "./interfaces/IDepositCollector.sol";

/// @title Erc3009DepositCollector
/// @notice Funds x402 `batch-settlement` channels from a payer's EIP-3009 `ReceiveWithAuthorization`: executes the
///         authorization into itself (the token requires the payee to be the caller, so nobody else can execute
///         it) and forwards the tokens to the settlement contract, the only caller it serves. The authorization's
///         nonce is `keccak256(abi.encode(channelId, salt))`, so a signed deposit can fund only the channel whose
///         id the payer hashed into it.
/// @dev Stateless: the settlement address is an immutable and nothing is written to storage, so the runtime code
///      can be copied to the canonical collector address (`X402Canonical.ERC3009_DEPOSIT_COLLECTOR`) with
///      `anvil_setCode` when it was deployed with the canonical settlement address as `settlement_`.
contract Erc3009DepositCollector is IErc3009DepositCollector {
    using SafeERC20 for IERC20;

    address private immutable _settlement;

    /// @param settlement_ the BatchSettlement contract allowed to call `collect` (and paid by it)
    constructor(address settlement_) {
        if (settlement_ == address(0)) revert Erc3009DepositCollectorZeroAddress();
        _settlement = settlement_;
    }

    /// @inheritdoc IDepositCollector
    /// @dev `collectorData` = `abi.encode(uint256 validAfter, uint256 validBefore, uint256 salt, bytes signature)`.
    ///      Token errors (expired, not yet valid, used nonce, bad signature, including a signature for another
    ///      channel, whose nonce differs) bubble up.
    function collect(
        address payer,
        address token,
        uint256 amount,
        bytes32 channelId,
        bytes calldata collectorData
    ) external {
        if (msg.sender != _settlement) {
            revert Erc3009DepositCollectorOnlySettlement(msg.sender);
        }
        (uint256 validAfter, uint256 validBefore, uint256 salt, bytes memory signature) =
            abi.decode(collectorData, (uint256, uint256, uint256, bytes));
        bytes32 nonce = keccak256(abi.encode(channelId, salt));
        IERC3009ReceiveWithAuthorization(token)
            .receiveWithAuthorization(payer, address(this), amount, validAfter, validBefore, nonce, signature);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IErc3009DepositCollector
    function settlement() external view returns (address) {
        return _settlement;
    }
}
