// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IStakeObserver
/// @notice A contract that keeps running totals over stakes (the BLS aggregate key and signer stake of
///         `BlsSignerRegistry`) and is told by `ParticipantStaking` whenever an account's bonded stake, role
///         or activeness may have changed, so that it never has to re-read every staker.
/// @dev The call is made after the staking state is final and before any token moves, and is not wrapped in a
///      `try`: a failing observer makes the staking operation fail, so an observer must not revert except for
///      lack of gas. Governance can unset it (`ParticipantStaking.setStakeObserver(address(0))`).
///      A change of `minStake` is not notified (it would touch every staker): observers offer a permissionless
///      re-sync for that case.
interface IStakeObserver {
    /// @notice The bonded stake, the role or the activeness of `account` may have changed; read it back from
    ///         the staking contract. Only the staking contract may call this.
    /// @param account the staker
    function onStakeChanged(address account) external;
}
