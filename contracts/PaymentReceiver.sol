// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title PaymentReceiver
/// @notice The x402 `payTo` of one (project, provider) pair. `InferenceMarket` deploys it with CREATE2 at
///         `paymentAddress(projectId, provider)` (salt `keccak256(abi.encode(projectId, provider))`), so the
///         address a client signs its EIP-3009 authorization to names the project and the provider. It only holds
///         ATN until the market moves it into its books for exactly that pair; nobody else can move it.
/// @dev No owner, no other function, no signature support: `transferWithAuthorization`/`permit` from this
///      address cannot verify (no key, no ERC-1271), so `release` is the only way out. Kept tiny because the
///      market deploys one per pair on its first payment.
contract PaymentReceiver {
    /// @notice The caller is not the market that deployed this receiver.
    error PaymentReceiverOnlyMarket(address caller);
    /// @notice The token refused the transfer.
    error PaymentReceiverTransferFailed();

    address private immutable _market;
    IERC20 private immutable _token;

    /// @param token_ the ATN token; the deployer is the market
    constructor(IERC20 token_) {
        _market = msg.sender;
        _token = token_;
    }

    /// @notice Market only: move `amount` ATN held here to the market.
    function release(uint256 amount) external {
        if (msg.sender != _market) revert PaymentReceiverOnlyMarket(msg.sender);
        if (!_token.transfer(msg.sender, amount)) revert PaymentReceiverTransferFailed();
    }
}
