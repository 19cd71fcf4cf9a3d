// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IATNToken
/// @notice The Autonet token: ERC-20 + ERC-2612 permit + ERC-5805 votes + EIP-3009 transfer with authorization
///         (random 32-byte nonces, as x402 clients use). EIP-712 domain: name "Autonet", version "1".
interface IATNToken is IERC20 {
    /// @notice The authorization `nonce` of `authorizer` was used by a transfer.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    /// @notice The authorization `nonce` of `authorizer` was canceled.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    /// @notice The signature does not come from the authorizer.
    error ATNTokenInvalidSignature();
    /// @notice The authorization is not yet valid (`now <= validAfter`).
    error ATNTokenAuthorizationNotYetValid(uint256 validAfter, uint256 nowTs);
    /// @notice The authorization expired (`now >= validBefore`).
    error ATNTokenAuthorizationExpired(uint256 validBefore, uint256 nowTs);
    /// @notice The nonce was already used or canceled.
    error ATNTokenAuthorizationUsed(address authorizer, bytes32 nonce);
    /// @notice `receiveWithAuthorization` was called by someone other than the payee.
    error ATNTokenCallerNotPayee(address caller, address payee);

    /// @notice Execute a transfer signed by `from` (EIP-3009, v/r/s form).
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Execute a transfer signed by `from` (EIP-3009, bytes form; ERC-1271 wallets accepted).
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;

    /// @notice Like `transferWithAuthorization` but only the payee `to` may submit it (front-running safe).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Bytes-signature form of `receiveWithAuthorization` (ERC-1271 wallets accepted).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;

    /// @notice Cancel an unused authorization nonce, signed by `authorizer` (v/r/s form).
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Cancel an unused authorization nonce, signed by `authorizer` (bytes form).
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes calldata signature) external;

    /// @notice True when `nonce` of `authorizer` was used or canceled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);

    /// @notice Mint `amount` to `to` (MINTER_ROLE, the Timelock after deploy).
    function mint(address to, uint256 amount) external;
}
