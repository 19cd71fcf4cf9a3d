// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IParticipantStaking, Role} from "./interfaces/IParticipantStaking.sol";
import {IStakeObserver} from "./interfaces/IStakeObserver.sol";
import {IStakeLocker} from "./interfaces/IStakeLocker.sol";

/// @title ParticipantStaking
/// @notice One role per address, minimum stakes, a bounded unbonding queue, stake locks and slashing to the
///         treasury.
/// @dev Every change of an account's bonded stake or role is reported to the stake observer, when one is set
///      (the BlsSignerRegistry, which keeps the BLS aggregate key and signer stake), after the state change
///      and before any token moves. `requestUnbond` asks the registered stake lockers (ShardProviders) how much
///      must stay bonded, before any state change; slashing never asks them.
contract ParticipantStaking is AccessControl, ReentrancyGuard, IParticipantStaking {
    using SafeERC20 for IERC20;

    /// @notice Role of the contracts allowed to slash (TaskManager, ModelShardRegistry, ShardProviders).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice May bind an account's stake until a block (TaskManager).
    bytes32 public constant BINDER_ROLE = keccak256("BINDER_ROLE");
    /// @notice Floor of every unbonding delay: with a shorter delay, stake could be borrowed for one
    ///         transaction (flash loan), used, unbonded and returned.
    uint64 public constant MIN_UNBONDING_DELAY = 1 days;
    /// @notice Maximum pending unbond entries per account.
    uint256 public constant MAX_PENDING_UNBONDS = 8;
    /// @notice Maximum unbonding delay governance may set.
    uint64 public constant MAX_UNBONDING_DELAY = 365 days;
    /// @notice Most registered stake lockers (each one is asked on every unbond request).
    uint256 public constant MAX_LOCKERS = 4;
    /// @notice Gas given to each locker's `lockedStake` call (a few storage reads need about 10k).
    uint256 public constant LOCKER_GAS = 50_000;
    /// @dev Number of values of `Role` (None included).
    uint256 private constant ROLE_COUNT = 5;
    /// @dev Gas that must be left before a locker call so that the locker gets all of LOCKER_GAS (EIP-150 keeps
    ///      1/64 back) after the call's own cost (a cold account access, 2,600, and a few operations).
    uint256 private constant LOCKER_CALL_RESERVE = LOCKER_GAS + LOCKER_GAS / 63 + 5_000;

    IERC20 private immutable _token;
    address private _treasury;

    /// @dev Role, the block until which the stake is bound and whether the account is counted active share one
    ///      slot, so binding costs one slot write.
    struct Account {
        Role role;
        uint64 boundUntil;
        bool active;
    }

    mapping(address account => Account) private _accounts;
    mapping(address account => uint256) private _bonded;
    mapping(address account => Unbond[]) private _pending;
    uint256[ROLE_COUNT] private _totalStake;
    /// @dev Per role, in one slot (read once by `bindStake`): the minimum stake, and how many accounts are counted
    ///      active (bonded stake > 0 and at least the minimum, as of the account's last stake change or
    ///      `syncActive`): a phase of a task can close early once that many have acted in it.
    struct RoleState {
        uint128 minStake;
        uint128 activeCount;
    }

    RoleState[ROLE_COUNT] private _roles;
    uint64[ROLE_COUNT] private _delay;
    IStakeObserver private _observer;
    IStakeLocker[] private _lockers;

    /// @param admin receives DEFAULT_ADMIN_ROLE
    /// @param token_ the staked token (ATN)
    /// @param treasury_ receives slashed stake (the Timelock)
    constructor(address admin, IERC20 token_, address treasury_) {
        if (address(token_) == address(0) || treasury_ == address(0)) revert StakingZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _token = token_;
        _treasury = treasury_;
        _roles[uint256(Role.Proposer)].minStake = 100e18;
        _roles[uint256(Role.Solver)].minStake = 50e18;
        _roles[uint256(Role.Coordinator)].minStake = 500e18;
        _roles[uint256(Role.Aggregator)].minStake = 1000e18;
        _delay[uint256(Role.Proposer)] = 7 days;
        _delay[uint256(Role.Solver)] = 3 days;
        _delay[uint256(Role.Coordinator)] = 14 days;
        _delay[uint256(Role.Aggregator)] = 14 days;
    }

    // ------------------------------------------------------------------ staker actions

    /// @inheritdoc IParticipantStaking
    function stake(Role role, uint256 amount) external nonReentrant {
        if (role == Role.None) revert StakingInvalidRole();
        if (amount == 0) revert StakingZeroAmount();
        Role current = _accounts[msg.sender].role;
        if (current != Role.None && current != role) revert StakingRoleMismatch(current, role);
        uint256 bonded = _bonded[msg.sender] + amount;
        uint256 need = _roles[uint256(role)].minStake;
        if (bonded < need) revert StakingBelowMinimum(bonded, need);

        _accounts[msg.sender].role = role;
        _bonded[msg.sender] = bonded;
        _totalStake[uint256(role)] += amount;
        emit Staked(msg.sender, role, amount, bonded);
        _syncActive(msg.sender, role, bonded);

        _notify(msg.sender);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IParticipantStaking
    function requestUnbond(uint256 amount) external {
        if (amount == 0) revert StakingZeroAmount();
        uint256 until = _accounts[msg.sender].boundUntil;
        if (block.number <= until) revert StakingBound(msg.sender, until);
        uint256 bonded = _bonded[msg.sender];
        if (amount > bonded) revert StakingInsufficientStake(bonded, amount);
        if (amount > type(uint128).max) revert StakingAmountTooLarge(amount);
        Unbond[] storage queue = _pending[msg.sender];
        if (queue.length >= MAX_PENDING_UNBONDS) revert StakingTooManyUnbonds();
        Role role = _accounts[msg.sender].role;
        // unchecked: amount <= bonded (checked above).
        uint256 remaining;
        unchecked {
            remaining = bonded - amount;
        }
        _checkLocks(msg.sender, role, remaining);

        uint64 maturesAt = uint64(block.timestamp) + _delay[uint256(role)];
        _bonded[msg.sender] = remaining;
        // unchecked: totalStake[role] >= bonded of every holder of role >= amount.
        unchecked {
            _totalStake[uint256(role)] -= amount;
        }
        _syncActive(msg.sender, role, remaining);
        // forge-lint: disable-next-line(unsafe-typecast)
        queue.push(Unbond({amount: uint128(amount), maturesAt: maturesAt})); // amount <= uint128 max, checked
        emit UnbondRequested(msg.sender, role, amount, maturesAt);

        _notify(msg.sender);
    }

    /// @inheritdoc IParticipantStaking
    function withdrawUnbonded() external nonReentrant returns (uint256 amount) {
        Unbond[] storage queue = _pending[msg.sender];
        uint256 n = queue.length; // <= MAX_PENDING_UNBONDS
        uint256 kept;
        for (uint256 i; i < n; ++i) {
            Unbond memory u = queue[i];
            if (u.maturesAt <= block.timestamp) {
                amount += u.amount;
            } else {
                if (kept != i) queue[kept] = u;
                ++kept;
            }
        }
        if (amount == 0) revert StakingNothingToWithdraw();
        for (uint256 i = kept; i < n; ++i) {
            queue.pop();
        }
        emit Withdrawn(msg.sender, amount);
        // The bonded stake is unchanged; only a cleared role can change what an observer sees.
        if (_maybeClearRole(msg.sender)) _notify(msg.sender);

        _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ slashing

    /// @inheritdoc IParticipantStaking
    function slash(address account, uint256 amount, bytes32 reason)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashed)
    {
        Role role = _accounts[account].role;
        if (amount == 0 || role == Role.None) return 0;

        uint256 bonded = _bonded[account];
        uint256 fromBonded = amount < bonded ? amount : bonded;
        if (fromBonded > 0) {
            // unchecked: fromBonded <= bonded <= totalStake[role].
            unchecked {
                _bonded[account] = bonded - fromBonded;
                _totalStake[uint256(role)] -= fromBonded;
            }
            _syncActive(account, role, bonded - fromBonded);
        }
        slashed = fromBonded;

        Unbond[] storage queue = _pending[account];
        // Newest first; at most MAX_PENDING_UNBONDS iterations.
        while (slashed < amount && queue.length > 0) {
            uint256 last = queue.length - 1;
            uint256 entry = queue[last].amount;
            uint256 take = amount - slashed;
            if (take >= entry) {
                slashed += entry;
                queue.pop();
            } else {
                // unchecked: take < entry, and entry came from a uint128, so the difference fits in uint128.
                unchecked {
                    // forge-lint: disable-next-line(unsafe-typecast)
                    queue[last].amount = uint128(entry - take);
                }
                slashed = amount;
            }
        }
        if (slashed == 0) return 0;

        emit Slashed(account, role, slashed, reason);
        bool cleared = _maybeClearRole(account);

        if (fromBonded != 0 || cleared) _notify(account);

        _token.safeTransfer(_treasury, slashed);
    }

    // ------------------------------------------------------------------ obligations

    /// @inheritdoc IParticipantStaking
    function bindStake(address account, Role role, uint64 untilBlock)
        external
        onlyRole(BINDER_ROLE)
        returns (uint256 stake_, uint256 activeInRole)
    {
        if (role == Role.None) return (0, 0);
        RoleState memory r = _roles[uint256(role)];
        activeInRole = r.activeCount;
        Account storage a = _accounts[account];
        if (a.role != role || !a.active) return (0, activeInRole);
        stake_ = _bonded[account];
        if (stake_ < r.minStake) return (0, activeInRole);
        if (untilBlock > a.boundUntil) a.boundUntil = untilBlock;
    }

    /// @inheritdoc IParticipantStaking
    function syncActive(address account) external {
        Role role = _accounts[account].role;
        if (role == Role.None) return;
        bool changed = _syncActive(account, role, _bonded[account]);
        bool cleared = _maybeClearRole(account);
        if (changed || cleared) _notify(account);
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IParticipantStaking
    function setMinStake(Role role, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (role == Role.None) revert StakingInvalidRole();
        if (amount > type(uint128).max) revert StakingAmountTooLarge(amount);
        _roles[uint256(role)].minStake = uint128(amount);
        emit MinStakeUpdated(role, amount);
    }

    /// @inheritdoc IParticipantStaking
    function setUnbondingDelay(Role role, uint64 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (role == Role.None) revert StakingInvalidRole();
        if (delay > MAX_UNBONDING_DELAY) revert StakingDelayTooLong(delay, MAX_UNBONDING_DELAY);
        if (delay < MIN_UNBONDING_DELAY) revert StakingDelayTooShort(delay, MIN_UNBONDING_DELAY);
        _delay[uint256(role)] = delay;
        emit UnbondingDelayUpdated(role, delay);
    }

    /// @inheritdoc IParticipantStaking
    function setStakeObserver(IStakeObserver observer) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _observer = observer;
        emit StakeObserverUpdated(address(observer));
    }

    /// @inheritdoc IParticipantStaking
    function addStakeLocker(IStakeLocker locker) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(locker).code.length == 0) revert StakingLockerNotContract(address(locker));
        uint256 n = _lockers.length; // <= MAX_LOCKERS
        for (uint256 i; i < n; ++i) {
            if (_lockers[i] == locker) revert StakingLockerAlreadyAdded(address(locker));
        }
        if (n >= MAX_LOCKERS) revert StakingTooManyLockers(MAX_LOCKERS);
        _lockers.push(locker);
        emit StakeLockerAdded(address(locker));
    }

    /// @inheritdoc IParticipantStaking
    function removeStakeLocker(IStakeLocker locker) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint256 n = _lockers.length; // <= MAX_LOCKERS
        for (uint256 i; i < n; ++i) {
            if (_lockers[i] == locker) {
                _lockers[i] = _lockers[n - 1];
                _lockers.pop();
                emit StakeLockerRemoved(address(locker));
                return;
            }
        }
        revert StakingLockerUnknown(address(locker));
    }

    /// @inheritdoc IParticipantStaking
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury_ == address(0)) revert StakingZeroAddress();
        _treasury = treasury_;
        emit TreasuryUpdated(treasury_);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IParticipantStaking
    function isActive(address account, Role role) external view returns (bool) {
        Account storage a = _accounts[account];
        return role != Role.None && a.role == role && a.active && _bonded[account] >= _roles[uint256(role)].minStake;
    }

    /// @inheritdoc IParticipantStaking
    function activeCount(Role role) external view returns (uint256) {
        return _roles[uint256(role)].activeCount;
    }

    /// @inheritdoc IParticipantStaking
    function boundUntil(address account) external view returns (uint64) {
        return _accounts[account].boundUntil;
    }

    /// @inheritdoc IParticipantStaking
    function stakeOf(address account) external view returns (uint256) {
        return _bonded[account];
    }

    /// @inheritdoc IParticipantStaking
    function roleOf(address account) external view returns (Role) {
        return _accounts[account].role;
    }

    /// @inheritdoc IParticipantStaking
    function totalStake(Role role) external view returns (uint256) {
        return _totalStake[uint256(role)];
    }

    /// @inheritdoc IParticipantStaking
    function minStake(Role role) external view returns (uint256) {
        return _roles[uint256(role)].minStake;
    }

    /// @inheritdoc IParticipantStaking
    function unbondingDelay(Role role) external view returns (uint64) {
        return _delay[uint256(role)];
    }

    /// @inheritdoc IParticipantStaking
    function pendingUnbonds(address account) external view returns (Unbond[] memory) {
        return _pending[account];
    }

    /// @inheritdoc IParticipantStaking
    function pendingUnbondTotal(address account) external view returns (uint256 total) {
        Unbond[] storage queue = _pending[account];
        uint256 n = queue.length; // <= MAX_PENDING_UNBONDS
        for (uint256 i; i < n; ++i) {
            total += queue[i].amount;
        }
    }

    /// @inheritdoc IParticipantStaking
    function stakeLockers() external view returns (IStakeLocker[] memory) {
        return _lockers;
    }

    /// @inheritdoc IParticipantStaking
    function lockedStake(address account) external view returns (uint256 locked, IStakeLocker locker) {
        Role role = _accounts[account].role;
        uint256 n = _lockers.length; // <= MAX_LOCKERS
        for (uint256 i; i < n; ++i) {
            IStakeLocker l = _lockers[i];
            (bool ok, uint256 amount) = _askLocker(l, account, role);
            if (ok && amount > locked) (locked, locker) = (amount, l);
        }
    }

    /// @inheritdoc IParticipantStaking
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IParticipantStaking
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IParticipantStaking
    function stakeObserver() external view returns (IStakeObserver) {
        return _observer;
    }

    /// @dev Counts `account` active in `role` when its bonded stake is positive and at least the role minimum, and
    ///      uncounts it otherwise, but never while its stake is bound to a task: a phase closes early once as many
    ///      accounts as are counted have acted in it, so an account that acted and then fell below the minimum (a
    ///      slash, a raised minimum) stays counted until its binding ends, or the phase could close before someone
    ///      who can still act. It cannot act meanwhile (`bindStake` checks the minimum), and is uncounted at its next
    ///      stake change or `syncActive` after the binding. The count can therefore only be too high, which holds
    ///      phases open to their deadlines. An account is only ever counted in its own role (the role cannot
    ///      change while counted, see `_maybeClearRole`). Returns whether the count changed.
    function _syncActive(address account, Role role, uint256 bonded) private returns (bool changed) {
        Account storage a = _accounts[account];
        RoleState storage r = _roles[uint256(role)];
        bool active = bonded != 0 && bonded >= r.minStake;
        if (active == a.active) return false;
        if (!active && block.number <= a.boundUntil) return false;
        a.active = active;
        if (active) {
            ++r.activeCount; // at most the number of accounts
        } else {
            --r.activeCount; // counted before, so the count is at least 1
        }
        emit ActiveChanged(account, role, active);
        return true;
    }

    /// @dev Resets the role of an account that holds nothing any more and is not counted active; true when it did.
    function _maybeClearRole(address account) private returns (bool cleared) {
        if (_bonded[account] == 0 && _pending[account].length == 0 && !_accounts[account].active) {
            Role previous = _accounts[account].role;
            if (previous != Role.None) {
                _accounts[account].role = Role.None;
                emit RoleCleared(account, previous);
                return true;
            }
        }
    }

    /// @dev Reverts StakingLocked when `remaining` is below the largest lock of the registered lockers. A locker
    ///      that fails counts as 0 (fail-open) and is reported with StakeLockerFailed: lockers are protocol
    ///      contracts registered by governance, and one broken locker must not freeze every staker's exit until
    ///      governance removes it; the locked stake stays slashable through the unbonding delay meanwhile. To
    ///      keep a caller from making a locker fail on purpose by sending too little gas, each call needs enough
    ///      gas left to give the locker all of LOCKER_GAS.
    function _checkLocks(address account, Role role, uint256 remaining) private {
        uint256 n = _lockers.length; // <= MAX_LOCKERS
        uint256 locked;
        IStakeLocker by;
        for (uint256 i; i < n; ++i) {
            IStakeLocker l = _lockers[i];
            if (gasleft() < LOCKER_CALL_RESERVE) revert StakingInsufficientGas();
            (bool ok, uint256 amount) = _askLocker(l, account, role);
            if (!ok) emit StakeLockerFailed(address(l), account);
            else if (amount > locked) (locked, by) = (amount, l);
        }
        if (remaining < locked) revert StakingLocked(account, address(by), locked, remaining);
    }

    /// @dev `locker.lockedStake(account, role)` by staticcall with LOCKER_GAS; `ok` is false when it reverted,
    ///      ran out of gas or returned less than one word. At most one word of return data is copied.
    function _askLocker(IStakeLocker locker, address account, Role role)
        private
        view
        returns (bool ok, uint256 amount)
    {
        bytes4 selector = IStakeLocker.lockedStake.selector;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), account)
            mstore(add(ptr, 0x24), role)
            ok := staticcall(LOCKER_GAS, locker, ptr, 0x44, ptr, 0x20)
            ok := and(ok, gt(returndatasize(), 0x1f))
            if ok { amount := mload(ptr) }
        }
    }

    /// @dev Tells the stake observer (if any) that `account` changed. Not in a `try`: an observer that could be
    ///      starved of gas into skipping an update would let its totals drift, so its failure fails the call.
    function _notify(address account) private {
        IStakeObserver observer = _observer;
        if (address(observer) != address(0)) observer.onStakeChanged(account);
    }
}
