// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Role} from "./IParticipantStaking.sol";

/// @title IStakeLocker
/// @notice A protocol contract that needs part of an account's bonded stake to stay bonded while the account has
///         obligations there (`ShardProviders`: announced shards and open challenges). Governance registers it
///         with `ParticipantStaking.addStakeLocker`; `requestUnbond` then refuses to leave less bonded than the
///         largest amount any registered locker reports.
/// @dev Called with `staticcall` and at most `ParticipantStaking.LOCKER_GAS` gas. An answer that reverts, runs out
///      of that gas or is shorter than one word counts as 0 (nothing locked; `StakeLockerFailed` is emitted), so
///      an implementation must read only its own storage and never revert. Slashing ignores locks.
interface IStakeLocker {
    /// @notice The bonded stake `account` must keep while it holds `role` (its current role in staking); 0 when
    ///         nothing is locked. A lock may exceed the bonded stake (after a slash or a raised minimum): the
    ///         account then cannot unbond at all until the obligation ends.
    /// @param account the staker
    /// @param role the account's role in `ParticipantStaking`
    /// @return locked the bonded stake that must stay bonded
    function lockedStake(address account, Role role) external view returns (uint256 locked);
}
