// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IStakeObserver} from "./IStakeObserver.sol";
import {IStakeLocker} from "./IStakeLocker.sol";

/// @notice The four staked roles of Autonet (`None` = not staked). One role per address.
enum Role {
    None,
    Proposer,
    Solver,
    Coordinator,
    Aggregator
}

/// @title IParticipantStaking
/// @notice Stake ATN in one role per address, unbond through a bounded queue, get slashed by authorized
///         protocol contracts. Slashed tokens go to the treasury (the Timelock) so a governance slash appeal
///         can return them.
interface IParticipantStaking {
    /// @notice One pending unbond entry: `amount` becomes withdrawable at `maturesAt` (unix seconds).
    struct Unbond {
        uint128 amount;
        uint64 maturesAt;
    }

    /// @notice `account` staked `amount` more in `role`; `bonded` is its bonded stake afterwards.
    event Staked(address indexed account, Role indexed role, uint256 amount, uint256 bonded);
    /// @notice `account` moved `amount` from bonded stake to a pending unbond maturing at `maturesAt`.
    event UnbondRequested(address indexed account, Role indexed role, uint256 amount, uint64 maturesAt);
    /// @notice `account` withdrew `amount` of matured unbonds.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `amount` of `account`'s stake (bonded first, then pending newest first) went to the treasury.
    event Slashed(address indexed account, Role indexed role, uint256 amount, bytes32 reason);
    /// @notice `account` has no stake left; its role was reset from `previous` to `None`.
    event RoleCleared(address indexed account, Role previous);
    /// @notice `account` is now counted (or no longer counted) in `activeCount(role)`.
    event ActiveChanged(address indexed account, Role indexed role, bool active);
    /// @notice The minimum stake of `role` changed.
    event MinStakeUpdated(Role indexed role, uint256 minStake);
    /// @notice The unbonding delay of `role` changed.
    event UnbondingDelayUpdated(Role indexed role, uint64 delay);
    /// @notice The treasury that receives slashed stake changed.
    event TreasuryUpdated(address treasury);
    /// @notice The contract told of every stake change is now `observer` (zero: none).
    event StakeObserverUpdated(address observer);
    /// @notice `locker` was registered: `requestUnbond` now keeps what it reports bonded.
    event StakeLockerAdded(address indexed locker);
    /// @notice `locker` was removed from the registered lockers.
    event StakeLockerRemoved(address indexed locker);
    /// @notice `locker` reverted, ran out of `LOCKER_GAS` or answered malformed data while `account` unbonded;
    ///         its lock counted as 0 (fail-open, see `requestUnbond`).
    event StakeLockerFailed(address indexed locker, address indexed account);

    /// @notice `Role.None` was given where a real role is required.
    error StakingInvalidRole();
    /// @notice The account already holds stake in another role.
    error StakingRoleMismatch(Role current, Role requested);
    /// @notice The bonded stake after this call would be below the role's minimum.
    error StakingBelowMinimum(uint256 have, uint256 need);
    /// @notice A zero amount was given.
    error StakingZeroAmount();
    /// @notice More than the bonded stake was asked to unbond.
    error StakingInsufficientStake(uint256 have, uint256 want);
    /// @notice The account already has MAX_PENDING_UNBONDS pending entries.
    error StakingTooManyUnbonds();
    /// @notice No pending unbond entry has matured yet.
    error StakingNothingToWithdraw();
    /// @notice The zero address was given.
    error StakingZeroAddress();
    /// @notice An amount does not fit the 128-bit storage of an unbond entry.
    error StakingAmountTooLarge(uint256 amount);
    /// @notice An unbonding delay above MAX_UNBONDING_DELAY was given.
    error StakingDelayTooLong(uint64 delay, uint64 max);
    /// @notice The unbonding delay is below the floor that keeps stake at risk for a whole task.
    error StakingDelayTooShort(uint64 delay, uint64 min);
    /// @notice The account's stake backs a task (a proposal, a commitment, a vote) until block `until`: unbonding
    ///         waits for it.
    error StakingBound(address account, uint256 until);
    /// @notice `locker` requires `account` to keep `locked` bonded (the largest lock of all registered lockers);
    ///         the unbond would leave only `remaining`. End the obligation there first (for `ShardProviders`:
    ///         withdraw every announced shard and let open challenges close), or unbond less.
    error StakingLocked(address account, address locker, uint256 locked, uint256 remaining);
    /// @notice Already MAX_LOCKERS lockers are registered.
    error StakingTooManyLockers(uint256 max);
    /// @notice `locker` is already registered.
    error StakingLockerAlreadyAdded(address locker);
    /// @notice `locker` is not registered.
    error StakingLockerUnknown(address locker);
    /// @notice `locker` has no code (the zero address included).
    error StakingLockerNotContract(address locker);
    /// @notice Too little gas was left to give a locker its full LOCKER_GAS; retry with more gas.
    error StakingInsufficientGas();

    /// @notice Stake `amount` in `role` (pulls tokens with transferFrom). The first stake sets the role and
    ///         must reach `minStake(role)`; later stakes must name the same role.
    /// @param role the role to stake in (not `None`)
    /// @param amount tokens to add (> 0)
    function stake(Role role, uint256 amount) external;

    /// @notice Move `amount` of bonded stake to a pending unbond that matures after `unbondingDelay(role)`.
    ///         The remaining bonded stake may be anything down to the locked stake (0 when nothing is locked);
    ///         `isActive` reflects whether it still meets the role minimum. At most MAX_PENDING_UNBONDS entries
    ///         per account. Reverts StakingBound while the caller's stake is bound to a task (see `bindStake`)
    ///         and StakingLocked when less than `lockedStake(caller)` would stay bonded: the largest
    ///         `IStakeLocker.lockedStake` of the registered lockers (the same stake backs every obligation, so
    ///         locks do not add up). A locker that reverts, exceeds LOCKER_GAS or answers malformed data counts
    ///         as 0 and `StakeLockerFailed` is emitted; a call left with too little gas to give each locker its
    ///         full LOCKER_GAS reverts StakingInsufficientGas, so a caller cannot starve a locker into failing.
    /// @param amount tokens to unbond (> 0, <= bonded)
    function requestUnbond(uint256 amount) external;

    /// @notice Pay the caller every matured unbond entry.
    /// @return amount the tokens paid
    function withdrawUnbonded() external returns (uint256 amount);

    /// @notice Slash up to `amount` of `account`'s stake: bonded first, then pending entries newest first.
    ///         Never reverts for amount > available or zero stake (returns what was taken). Locks do not apply
    ///         (lockers are not called). SLASHER_ROLE.
    /// @param account the staker
    /// @param amount the amount to take at most
    /// @param reason a free-form reason tag emitted with the event
    /// @return slashed the amount actually taken and sent to the treasury
    function slash(address account, uint256 amount, bytes32 reason) external returns (uint256 slashed);

    /// @notice Admin: set the minimum stake of `role`. Accounts crossing the new minimum change `isActive`
    ///         without a report to the stake observer: re-sync the BLS signers concerned with
    ///         `BlsSignerRegistry.syncBlsSigner` (permissionless) in the same governance operation.
    function setMinStake(Role role, uint256 amount) external;

    /// @notice Admin: set the unbonding delay (seconds) of `role`; applies to new unbond requests.
    function setUnbondingDelay(Role role, uint64 delay) external;

    /// @notice Admin: set the treasury that receives slashed stake.
    function setTreasury(address treasury) external;

    /// @notice Admin: set the contract told (`IStakeObserver.onStakeChanged`) after every change of an
    ///         account's bonded stake or role: `stake`, `requestUnbond`, `slash` of bonded stake, and any call that
    ///         clears a role. `setMinStake` is not reported (observers offer a re-sync). A reverting observer
    ///         makes those calls revert; zero disables the reports. The deployment sets the BlsSignerRegistry.
    /// @param observer the observer, or the zero address for none
    function setStakeObserver(IStakeObserver observer) external;

    /// @notice Admin: register `locker` (a protocol contract implementing `IStakeLocker`; at most
    ///         MAX_LOCKERS). From then on `requestUnbond` keeps at least its `lockedStake` bonded.
    function addStakeLocker(IStakeLocker locker) external;

    /// @notice Admin: remove a registered `locker`; its locks no longer apply.
    function removeStakeLocker(IStakeLocker locker) external;

    /// @notice The registered lockers (at most MAX_LOCKERS), in no particular order.
    function stakeLockers() external view returns (IStakeLocker[] memory);

    /// @notice The bonded stake `account` must keep (the largest lock of the registered lockers, asked for the
    ///         account's current role) and the locker asking for it (zero address when nothing is locked). A
    ///         failing locker counts as 0, as in `requestUnbond`.
    function lockedStake(address account) external view returns (uint256 locked, IStakeLocker locker);

    /// @notice Most registered stake lockers.
    function MAX_LOCKERS() external view returns (uint256);

    /// @notice Gas given to each locker's `lockedStake` call in `requestUnbond`.
    function LOCKER_GAS() external view returns (uint256);

    /// @notice True when `account` has role `role`, bonded stake >= `minStake(role)` and is counted in
    ///         `activeCount(role)`.
    function isActive(address account, Role role) external view returns (bool);

    /// @notice How many accounts are counted active in `role`: bonded stake positive and at least the role minimum
    ///         as of the account's last stake change (stake, unbond, slash) or `syncActive`; an account that falls
    ///         below the minimum while its stake is bound to a task stays counted until it is synced after the
    ///         binding, so the count is never below the number of accounts that can act. A task phase closes
    ///         early once every account that can act in it has (ITaskManager): an account that is not counted
    ///         cannot act (`bindStake` returns 0), so the count never leaves out someone who could.
    function activeCount(Role role) external view returns (uint256);

    /// @notice Anyone: recount `account` against its role's current minimum. Needed only after governance changed
    ///         a minimum: an account the change made eligible cannot act until it is recounted (by this call or
    ///         its next stake), and one the change made ineligible holds phases open until it is recounted.
    ///         Also clears the role of an account left with nothing, and tells the stake observer when either
    ///         changed.
    function syncActive(address account) external;

    /// @notice BINDER_ROLE (TaskManager): if `account` is active in `role`, bind its stake until block `untilBlock`
    ///         (the later of this and any earlier binding) and return its bonded stake, the weight snapshot of
    ///         the proposal, commitment or vote; otherwise bind nothing and return 0. A bound account cannot
    ///         request an unbond until the block has passed; after it, the unbonding delay (at least
    ///         MIN_UNBONDING_DELAY) keeps the stake slashable while the task is finalized. No event of its own:
    ///         the caller's events (TaskProposed, SolutionCommitted, VoteCommitted) carry the deadlines.
    ///         Also returns `activeCount(role)`, read from the same slot as the minimum, so that the caller can
    ///         tell whether every active account of the role has acted without a second call.
    function bindStake(address account, Role role, uint64 untilBlock)
        external
        returns (uint256 stake, uint256 activeInRole);

    /// @notice The block until which `account`'s stake is bound (0 = never bound).
    function boundUntil(address account) external view returns (uint64);

    /// @notice Floor of every unbonding delay (governance cannot go below it).
    function MIN_UNBONDING_DELAY() external view returns (uint64);

    /// @notice Bonded (not unbonding) stake of `account`.
    function stakeOf(address account) external view returns (uint256);

    /// @notice Role of `account` (`None` when it holds no stake at all).
    function roleOf(address account) external view returns (Role);

    /// @notice Sum of bonded stake of all accounts holding `role`.
    function totalStake(Role role) external view returns (uint256);

    /// @notice Minimum bonded stake to be active in `role`.
    function minStake(Role role) external view returns (uint256);

    /// @notice Unbonding delay (seconds) of `role`.
    function unbondingDelay(Role role) external view returns (uint64);

    /// @notice The pending unbond entries of `account` (at most MAX_PENDING_UNBONDS).
    function pendingUnbonds(address account) external view returns (Unbond[] memory);

    /// @notice Sum of `account`'s pending unbond entries (matured or not).
    function pendingUnbondTotal(address account) external view returns (uint256);

    /// @notice The treasury that receives slashed stake.
    function treasury() external view returns (address);

    /// @notice The staked token.
    function token() external view returns (address);

    /// @notice The contract told of every stake change (zero address when none).
    function stakeObserver() external view returns (IStakeObserver);
}
