// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ATNToken} from "../contracts/ATNToken.sol";
import {ParticipantStaking} from "../contracts/ParticipantStaking.sol";
import {IParticipantStaking, Role} from "../contracts/interfaces/IParticipantStaking.sol";
import {IStakeObserver} from "../contracts/interfaces/IStakeObserver.sol";
import {IStakeLocker} from "../contracts/interfaces/IStakeLocker.sol";

/// @dev A stake locker that locks a set amount per account for one role, or misbehaves on demand.
contract MockLocker is IStakeLocker {
    enum Mode {
        Normal,
        Reverts,
        BurnsGas,
        ShortAnswer,
        LongAnswer
    }

    Mode public mode;
    Role public lockedRole = Role.Solver;
    mapping(address account => uint256) public locks;

    function setLock(address account, uint256 amount) external {
        locks[account] = amount;
    }

    function setMode(Mode m) external {
        mode = m;
    }

    function setRole(Role r) external {
        lockedRole = r;
    }

    function lockedStake(address account, Role role) external view returns (uint256 locked) {
        Mode m = mode;
        if (m == Mode.Reverts) revert("locker down");
        if (m == Mode.BurnsGas) {
            while (true) {}
        }
        locked = role == lockedRole ? locks[account] : 0;
        if (m == Mode.ShortAnswer) {
            assembly ("memory-safe") {
                mstore(0, locked)
                return(0, 31)
            }
        }
        if (m == Mode.LongAnswer) {
            // 16 KiB of return data; staking reads the first word only
            assembly ("memory-safe") {
                mstore(0, locked)
                return(0, 0x4000)
            }
        }
    }
}

/// @dev Records every report; reverts on demand.
contract RecordingObserver is IStakeObserver {
    address[] public seen;
    bool public failing;

    function setFailing(bool f) external {
        failing = f;
    }

    function onStakeChanged(address account) external {
        require(!failing, "observer down");
        seen.push(account);
    }

    function count() external view returns (uint256) {
        return seen.length;
    }
}

contract ParticipantStakingTest is Test {
    ATNToken internal token;
    ParticipantStaking internal staking;
    address internal admin = makeAddr("admin");
    address internal treasury = makeAddr("treasury");
    address internal slasher = makeAddr("slasher");
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");

    function setUp() public {
        vm.warp(1_000_000);
        token = new ATNToken(admin, admin, 10_000_000e18);
        staking = new ParticipantStaking(admin, token, treasury);
        bytes32 slasherRole = staking.SLASHER_ROLE();
        vm.startPrank(admin);
        staking.grantRole(slasherRole, slasher);
        assertTrue(token.transfer(alice, 100_000e18));
        assertTrue(token.transfer(bob, 100_000e18));
        vm.stopPrank();
        vm.prank(alice);
        token.approve(address(staking), type(uint256).max);
        vm.prank(bob);
        token.approve(address(staking), type(uint256).max);
    }

    function _stake(address who, Role role, uint256 amount) internal {
        vm.prank(who);
        staking.stake(role, amount);
    }

    // ------------------------------------------------------------------ constructor / defaults

    function test_constructor_defaults() public view {
        assertEq(staking.minStake(Role.Proposer), 100e18);
        assertEq(staking.minStake(Role.Solver), 50e18);
        assertEq(staking.minStake(Role.Coordinator), 500e18);
        assertEq(staking.minStake(Role.Aggregator), 1000e18);
        assertEq(staking.unbondingDelay(Role.Proposer), 7 days);
        assertEq(staking.unbondingDelay(Role.Solver), 3 days);
        assertEq(staking.unbondingDelay(Role.Coordinator), 14 days);
        assertEq(staking.unbondingDelay(Role.Aggregator), 14 days);
        assertEq(staking.treasury(), treasury);
        assertEq(staking.token(), address(token));
        assertTrue(staking.hasRole(staking.DEFAULT_ADMIN_ROLE(), admin));
    }

    function test_RevertWhen_constructorZeroTreasury() public {
        vm.expectRevert(IParticipantStaking.StakingZeroAddress.selector);
        new ParticipantStaking(admin, token, address(0));
    }

    // ------------------------------------------------------------------ stake

    function test_stake_setsRoleAndActivates() public {
        vm.expectEmit(true, true, false, true, address(staking));
        emit IParticipantStaking.Staked(alice, Role.Coordinator, 500e18, 500e18);
        _stake(alice, Role.Coordinator, 500e18);
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.Coordinator));
        assertEq(staking.stakeOf(alice), 500e18);
        assertTrue(staking.isActive(alice, Role.Coordinator));
        assertFalse(staking.isActive(alice, Role.Solver));
        assertFalse(staking.isActive(alice, Role.None));
        assertEq(staking.totalStake(Role.Coordinator), 500e18);
        assertEq(token.balanceOf(address(staking)), 500e18);
    }

    function test_stake_addsInSameRole() public {
        _stake(alice, Role.Solver, 50e18);
        _stake(alice, Role.Solver, 1e18);
        assertEq(staking.stakeOf(alice), 51e18);
        assertEq(staking.totalStake(Role.Solver), 51e18);
    }

    function test_RevertWhen_stakeDifferentRole() public {
        _stake(alice, Role.Solver, 50e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantStaking.StakingRoleMismatch.selector, Role.Solver, Role.Proposer
            )
        );
        _stake(alice, Role.Proposer, 100e18);
    }

    function test_RevertWhen_stakeBelowMinimum() public {
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingBelowMinimum.selector, 99e18, 100e18)
        );
        _stake(alice, Role.Proposer, 99e18);
    }

    function test_RevertWhen_stakeRoleNone() public {
        vm.expectRevert(IParticipantStaking.StakingInvalidRole.selector);
        _stake(alice, Role.None, 100e18);
    }

    function test_RevertWhen_stakeZero() public {
        vm.expectRevert(IParticipantStaking.StakingZeroAmount.selector);
        _stake(alice, Role.Solver, 0);
    }

    function testFuzz_stake_accounting(uint256 a, uint256 b) public {
        a = bound(a, 50e18, 40_000e18);
        b = bound(b, 50e18, 40_000e18);
        _stake(alice, Role.Solver, a);
        _stake(bob, Role.Solver, b);
        assertEq(staking.totalStake(Role.Solver), a + b);
        assertEq(token.balanceOf(address(staking)), a + b);
        assertEq(staking.stakeOf(alice), a);
    }

    // ------------------------------------------------------------------ unbond / withdraw

    function test_requestUnbond_createsEntryAndDeactivatesBelowMin() public {
        _stake(alice, Role.Proposer, 150e18);
        uint64 matures = uint64(block.timestamp + 7 days);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IParticipantStaking.UnbondRequested(alice, Role.Proposer, 60e18, matures);
        vm.prank(alice);
        staking.requestUnbond(60e18);
        assertEq(staking.stakeOf(alice), 90e18);
        assertEq(staking.totalStake(Role.Proposer), 90e18);
        assertFalse(staking.isActive(alice, Role.Proposer));
        IParticipantStaking.Unbond[] memory q = staking.pendingUnbonds(alice);
        assertEq(q.length, 1);
        assertEq(q[0].amount, 60e18);
        assertEq(q[0].maturesAt, matures);
        assertEq(staking.pendingUnbondTotal(alice), 60e18);
    }

    function test_withdrawUnbonded_paysMaturedOnlyAndClearsRole() public {
        _stake(alice, Role.Solver, 100e18);
        vm.prank(alice);
        staking.requestUnbond(40e18);
        vm.warp(block.timestamp + 1 days);
        vm.prank(alice);
        staking.requestUnbond(60e18);
        vm.warp(block.timestamp + 2 days); // first matured, second not
        uint256 before = token.balanceOf(alice);
        vm.prank(alice);
        assertEq(staking.withdrawUnbonded(), 40e18);
        assertEq(token.balanceOf(alice), before + 40e18);
        assertEq(staking.pendingUnbonds(alice).length, 1);
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.Solver));

        vm.warp(block.timestamp + 1 days);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IParticipantStaking.RoleCleared(alice, Role.Solver);
        vm.prank(alice);
        assertEq(staking.withdrawUnbonded(), 60e18);
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.None));
        // with no stake left the account may take another role
        _stake(alice, Role.Proposer, 100e18);
        assertTrue(staking.isActive(alice, Role.Proposer));
    }

    function test_RevertWhen_withdrawBeforeMaturity() public {
        _stake(alice, Role.Solver, 100e18);
        vm.prank(alice);
        staking.requestUnbond(10e18);
        vm.warp(block.timestamp + 3 days - 1);
        vm.expectRevert(IParticipantStaking.StakingNothingToWithdraw.selector);
        vm.prank(alice);
        staking.withdrawUnbonded();
    }

    function test_RevertWhen_unbondMoreThanBonded() public {
        _stake(alice, Role.Solver, 100e18);
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingInsufficientStake.selector, 100e18, 101e18)
        );
        vm.prank(alice);
        staking.requestUnbond(101e18);
    }

    function test_RevertWhen_unbondZero() public {
        vm.expectRevert(IParticipantStaking.StakingZeroAmount.selector);
        vm.prank(alice);
        staking.requestUnbond(0);
    }

    function test_RevertWhen_tooManyPendingUnbonds() public {
        _stake(alice, Role.Solver, 100e18);
        vm.startPrank(alice);
        for (uint256 i; i < staking.MAX_PENDING_UNBONDS(); ++i) {
            staking.requestUnbond(1e18);
        }
        vm.expectRevert(IParticipantStaking.StakingTooManyUnbonds.selector);
        staking.requestUnbond(1e18);
        vm.stopPrank();
    }

    function testFuzz_requestUnbond_conservesStake(uint256 stakeAmt, uint256 unbondAmt) public {
        stakeAmt = bound(stakeAmt, 50e18, 100_000e18);
        unbondAmt = bound(unbondAmt, 1, stakeAmt);
        _stake(alice, Role.Solver, stakeAmt);
        vm.prank(alice);
        staking.requestUnbond(unbondAmt);
        assertEq(staking.stakeOf(alice) + staking.pendingUnbondTotal(alice), stakeAmt);
        assertEq(staking.totalStake(Role.Solver), stakeAmt - unbondAmt);
        assertEq(staking.isActive(alice, Role.Solver), stakeAmt - unbondAmt >= 50e18);
    }

    // ------------------------------------------------------------------ slash

    function test_slash_takesBondedToTreasury() public {
        _stake(alice, Role.Coordinator, 600e18);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IParticipantStaking.Slashed(alice, Role.Coordinator, 200e18, "bad-vote");
        vm.prank(slasher);
        uint256 slashed = staking.slash(alice, 200e18, "bad-vote");
        assertEq(slashed, 200e18);
        assertEq(staking.stakeOf(alice), 400e18);
        assertEq(staking.totalStake(Role.Coordinator), 400e18);
        assertEq(token.balanceOf(treasury), 200e18);
        assertFalse(staking.isActive(alice, Role.Coordinator));
    }

    function test_slash_bondedThenPendingNewestFirst() public {
        _stake(alice, Role.Solver, 100e18);
        vm.startPrank(alice);
        staking.requestUnbond(30e18); // older
        staking.requestUnbond(20e18); // newer
        vm.stopPrank();
        // bonded 50, pending [30, 20]; slash 75 => bonded 0, newest 20 gone, older 30 -> 25
        vm.prank(slasher);
        assertEq(staking.slash(alice, 75e18, "x"), 75e18);
        assertEq(staking.stakeOf(alice), 0);
        IParticipantStaking.Unbond[] memory q = staking.pendingUnbonds(alice);
        assertEq(q.length, 1);
        assertEq(q[0].amount, 25e18);
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.Solver));
        assertEq(token.balanceOf(treasury), 75e18);
    }

    function test_slash_partialNewestEntryKeepsOrder() public {
        _stake(alice, Role.Solver, 100e18);
        vm.startPrank(alice);
        staking.requestUnbond(30e18);
        staking.requestUnbond(20e18);
        vm.stopPrank();
        vm.prank(slasher);
        assertEq(staking.slash(alice, 65e18, "x"), 65e18); // bonded 50, newest 20 -> 5
        IParticipantStaking.Unbond[] memory q = staking.pendingUnbonds(alice);
        assertEq(q.length, 2);
        assertEq(q[0].amount, 30e18);
        assertEq(q[1].amount, 5e18);
    }

    function test_slash_moreThanAvailableTakesAllAndClearsRole() public {
        _stake(alice, Role.Solver, 100e18);
        vm.prank(alice);
        staking.requestUnbond(40e18);
        vm.prank(slasher);
        assertEq(staking.slash(alice, 1_000e18, "all"), 100e18);
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.None));
        assertEq(staking.pendingUnbonds(alice).length, 0);
        assertEq(token.balanceOf(address(staking)), 0);
        assertEq(token.balanceOf(treasury), 100e18);
    }

    function test_slash_zeroStakeOrAmountReturnsZero() public {
        vm.startPrank(slasher);
        assertEq(staking.slash(bob, 10e18, "none"), 0);
        vm.stopPrank();
        _stake(alice, Role.Solver, 100e18);
        vm.prank(slasher);
        assertEq(staking.slash(alice, 0, "zero"), 0);
        assertEq(staking.stakeOf(alice), 100e18);
        assertEq(token.balanceOf(treasury), 0);
    }

    function test_RevertWhen_slashByNonSlasher() public {
        _stake(alice, Role.Solver, 100e18);
        bytes32 role = staking.SLASHER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bob, role)
        );
        vm.prank(bob);
        staking.slash(alice, 1, "x");
    }

    function testFuzz_slash_neverExceedsAvailable(uint256 stakeAmt, uint256 unbondAmt, uint256 slashAmt)
        public
    {
        stakeAmt = bound(stakeAmt, 50e18, 100_000e18);
        unbondAmt = bound(unbondAmt, 0, stakeAmt);
        slashAmt = bound(slashAmt, 0, 300_000e18);
        _stake(alice, Role.Solver, stakeAmt);
        if (unbondAmt > 0) {
            vm.prank(alice);
            staking.requestUnbond(unbondAmt);
        }
        vm.prank(slasher);
        uint256 slashed = staking.slash(alice, slashAmt, "f");
        uint256 expected = slashAmt < stakeAmt ? slashAmt : stakeAmt;
        assertEq(slashed, expected);
        assertEq(token.balanceOf(treasury), expected);
        assertEq(staking.stakeOf(alice) + staking.pendingUnbondTotal(alice), stakeAmt - expected);
        assertEq(token.balanceOf(address(staking)), stakeAmt - expected);
        assertEq(staking.totalStake(Role.Solver), staking.stakeOf(alice));
    }

    // ------------------------------------------------------------------ admin

    function test_setMinStake_changesActivity() public {
        _stake(alice, Role.Solver, 60e18);
        vm.expectEmit(true, false, false, true, address(staking));
        emit IParticipantStaking.MinStakeUpdated(Role.Solver, 70e18);
        vm.prank(admin);
        staking.setMinStake(Role.Solver, 70e18);
        assertFalse(staking.isActive(alice, Role.Solver));
        assertEq(staking.minStake(Role.Solver), 70e18);
    }

    function test_setUnbondingDelay_appliesToNewRequests() public {
        vm.prank(admin);
        staking.setUnbondingDelay(Role.Solver, 2 days);
        _stake(alice, Role.Solver, 60e18);
        vm.prank(alice);
        staking.requestUnbond(10e18);
        assertEq(staking.pendingUnbonds(alice)[0].maturesAt, block.timestamp + 2 days);
    }

    function test_setTreasury_redirectsSlashes() public {
        address t2 = makeAddr("t2");
        vm.prank(admin);
        staking.setTreasury(t2);
        _stake(alice, Role.Solver, 60e18);
        vm.prank(slasher);
        staking.slash(alice, 5e18, "x");
        assertEq(token.balanceOf(t2), 5e18);
    }

    function test_RevertWhen_adminSetterInvalidInput() public {
        vm.startPrank(admin);
        vm.expectRevert(IParticipantStaking.StakingInvalidRole.selector);
        staking.setMinStake(Role.None, 1);
        vm.expectRevert(IParticipantStaking.StakingInvalidRole.selector);
        staking.setUnbondingDelay(Role.None, 1);
        uint64 max = staking.MAX_UNBONDING_DELAY();
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingDelayTooLong.selector, max + 1, max)
        );
        staking.setUnbondingDelay(Role.Solver, max + 1);
        vm.expectRevert(IParticipantStaking.StakingZeroAddress.selector);
        staking.setTreasury(address(0));
        vm.stopPrank();
    }

    function test_RevertWhen_adminSetterByStranger() public {
        bytes memory err = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector, bob, staking.DEFAULT_ADMIN_ROLE()
        );
        vm.startPrank(bob);
        vm.expectRevert(err);
        staking.setMinStake(Role.Solver, 1);
        vm.expectRevert(err);
        staking.setUnbondingDelay(Role.Solver, 1);
        vm.expectRevert(err);
        staking.setTreasury(bob);
        vm.expectRevert(err);
        staking.setStakeObserver(IStakeObserver(bob));
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ stake observer

    function _observe() internal returns (RecordingObserver observer) {
        observer = new RecordingObserver();
        vm.expectEmit(address(staking));
        emit IParticipantStaking.StakeObserverUpdated(address(observer));
        vm.prank(admin);
        staking.setStakeObserver(observer);
        assertEq(address(staking.stakeObserver()), address(observer));
    }

    function test_setStakeObserver_setsAndUnsets() public {
        assertEq(address(staking.stakeObserver()), address(0));
        RecordingObserver observer = _observe();
        vm.prank(admin);
        staking.setStakeObserver(IStakeObserver(address(0)));
        assertEq(address(staking.stakeObserver()), address(0));
        _stake(alice, Role.Coordinator, 500e18);
        assertEq(observer.count(), 0, "an unset observer hears nothing");
    }

    function test_stakeObserver_toldOfEveryBondedStakeOrRoleChange() public {
        RecordingObserver observer = _observe();
        _stake(alice, Role.Coordinator, 600e18);
        assertEq(observer.count(), 1, "stake");
        assertEq(observer.seen(0), alice);
        vm.prank(alice);
        staking.requestUnbond(600e18);
        assertEq(observer.count(), 2, "requestUnbond");
        vm.prank(slasher);
        staking.slash(alice, 100e18, "pending only");
        assertEq(observer.count(), 2, "a slash of pending stake alone changes nothing observable");
        vm.prank(slasher);
        staking.slash(bob, 100e18, "no stake");
        assertEq(observer.count(), 2, "nothing slashed");
        vm.prank(slasher);
        staking.slash(alice, 500e18, "the rest");
        assertEq(observer.count(), 3, "role cleared by a slash of pending stake");
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.None));

        _stake(bob, Role.Solver, 100e18);
        assertEq(observer.count(), 4);
        vm.prank(slasher);
        staking.slash(bob, 10e18, "bonded");
        assertEq(observer.count(), 5, "slash of bonded stake");
        assertEq(observer.seen(4), bob);
        vm.startPrank(bob);
        staking.requestUnbond(40e18);
        vm.warp(block.timestamp + 3 days);
        staking.withdrawUnbonded();
        assertEq(observer.count(), 6, "a withdrawal that keeps the role is not reported");
        staking.requestUnbond(50e18);
        vm.warp(block.timestamp + 3 days);
        staking.withdrawUnbonded();
        vm.stopPrank();
        assertEq(observer.count(), 8, "a withdrawal that clears the role is reported");
        assertEq(uint8(staking.roleOf(bob)), uint8(Role.None));
    }

    function test_RevertWhen_stakeObserverReverts() public {
        RecordingObserver observer = _observe();
        _stake(alice, Role.Coordinator, 600e18);
        observer.setFailing(true);
        vm.prank(alice);
        vm.expectRevert("observer down");
        staking.requestUnbond(100e18);
        vm.prank(slasher);
        vm.expectRevert("observer down");
        staking.slash(alice, 100e18, "x");
        // Governance can unset a broken observer.
        vm.prank(admin);
        staking.setStakeObserver(IStakeObserver(address(0)));
        vm.prank(alice);
        staking.requestUnbond(100e18);
    }

    function testFuzz_setMinStake_isActiveMatches(uint256 minAmt, uint256 stakeAmt) public {
        minAmt = bound(minAmt, 1, 1_000e18);
        stakeAmt = bound(stakeAmt, minAmt, 2_000e18);
        vm.prank(admin);
        staking.setMinStake(Role.Aggregator, minAmt);
        _stake(alice, Role.Aggregator, stakeAmt);
        assertTrue(staking.isActive(alice, Role.Aggregator));
        vm.prank(admin);
        staking.setMinStake(Role.Aggregator, stakeAmt + 1);
        assertFalse(staking.isActive(alice, Role.Aggregator));
    }

    // ------------------------------------------------------------------ active count (early phase closes)

    address internal carol = makeAddr("carol");
    address internal binder = makeAddr("binder");

    function _fund(address who, uint256 amount) internal {
        vm.prank(admin);
        assertTrue(token.transfer(who, amount));
        vm.prank(who);
        token.approve(address(staking), type(uint256).max);
    }

    function _grantBinder() internal {
        bytes32 role = staking.BINDER_ROLE();
        vm.prank(admin);
        staking.grantRole(role, binder);
    }

    function _setMin(Role role, uint256 amount) internal {
        vm.prank(admin);
        staking.setMinStake(role, amount);
    }

    /// @dev How many ActiveChanged events `logs` hold.
    function _activeChanges(Vm.Log[] memory logs) internal view returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(staking)
                    && logs[i].topics[0] == IParticipantStaking.ActiveChanged.selector
            ) {
                ++n;
            }
        }
    }

    /// A stake that reaches the role minimum counts the account once, in its own role; top-ups change nothing.
    function test_activeCount_countsAStakeReachingTheMinimumOnce() public {
        assertEq(staking.activeCount(Role.Solver), 0);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IParticipantStaking.ActiveChanged(alice, Role.Solver, true);
        _stake(alice, Role.Solver, 50e18);
        assertEq(staking.activeCount(Role.Solver), 1);
        vm.recordLogs();
        _stake(alice, Role.Solver, 30e18);
        assertEq(_activeChanges(vm.getRecordedLogs()), 0, "a top-up changed the count");
        assertEq(staking.activeCount(Role.Solver), 1);
        _stake(bob, Role.Coordinator, 500e18);
        assertEq(staking.activeCount(Role.Solver), 1);
        assertEq(staking.activeCount(Role.Coordinator), 1);
        assertEq(staking.activeCount(Role.Proposer), 0);
    }

    /// An unbond that leaves less than the minimum uncounts the account (dust included); a further unbond changes
    /// nothing, and a stake back to the minimum counts it again.
    function test_activeCount_unbondBelowTheMinimumUncounts() public {
        _stake(alice, Role.Solver, 100e18);
        _stake(bob, Role.Solver, 100e18);
        vm.prank(alice);
        staking.requestUnbond(50e18); // exactly the minimum left: still counted
        assertEq(staking.activeCount(Role.Solver), 2);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IParticipantStaking.ActiveChanged(alice, Role.Solver, false);
        vm.prank(alice);
        staking.requestUnbond(50e18 - 1); // 1 wei of dust left
        assertEq(staking.activeCount(Role.Solver), 1);
        assertFalse(staking.isActive(alice, Role.Solver));
        vm.recordLogs();
        vm.prank(alice);
        staking.requestUnbond(1);
        assertEq(_activeChanges(vm.getRecordedLogs()), 0);
        assertEq(staking.activeCount(Role.Solver), 1);
        _stake(alice, Role.Solver, 50e18); // role kept while the unbond is pending
        assertEq(staking.activeCount(Role.Solver), 2);
        assertTrue(staking.isActive(alice, Role.Solver));
    }

    /// A slash that leaves less than the minimum uncounts the account; one that leaves at least the minimum does
    /// not.
    function test_activeCount_slashBelowTheMinimumUncounts() public {
        _stake(alice, Role.Coordinator, 600e18);
        vm.prank(slasher);
        staking.slash(alice, 100e18, "ok");
        assertEq(staking.activeCount(Role.Coordinator), 1);
        vm.expectEmit(true, true, false, true, address(staking));
        emit IParticipantStaking.ActiveChanged(alice, Role.Coordinator, false);
        vm.prank(slasher);
        staking.slash(alice, 1, "dust");
        assertEq(staking.activeCount(Role.Coordinator), 0);
        assertFalse(staking.isActive(alice, Role.Coordinator));
        uint256 left = staking.stakeOf(alice);
        vm.prank(slasher);
        staking.slash(alice, left, "all"); // nothing left: the role clears, the count stays
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.None));
        assertEq(staking.activeCount(Role.Coordinator), 0);
    }

    /// A dust account can never be counted: it holds no phase open, however often it is recounted, and cannot
    /// bind. Even with a zero minimum an account needs a positive stake to be counted.
    function test_activeCount_neverCountsDust() public {
        _grantBinder();
        _stake(alice, Role.Solver, 50e18);
        vm.prank(alice);
        staking.requestUnbond(50e18 - 1);
        staking.syncActive(alice);
        assertEq(staking.activeCount(Role.Solver), 0);
        vm.prank(binder);
        {
            (uint256 bound,) = staking.bindStake(alice, Role.Solver, 100);
            assertEq(bound, 0);
        }
        assertEq(staking.boundUntil(alice), 0);

        _setMin(Role.Solver, 0);
        _stake(bob, Role.Solver, 1);
        assertEq(staking.activeCount(Role.Solver), 1);
        vm.prank(bob);
        staking.requestUnbond(1);
        staking.syncActive(bob);
        assertEq(staking.activeCount(Role.Solver), 0, "an account with nothing bonded is counted");
        assertFalse(staking.isActive(bob, Role.Solver));
        staking.syncActive(alice); // 1 wei >= 0: counted again under the zero minimum
        assertEq(staking.activeCount(Role.Solver), 1);
    }

    /// After governance lowers the minimum, an account between the two minimums is not counted and cannot bind
    /// (`isActive` false) until anyone calls `syncActive`; then it is counted and binds.
    function test_syncActive_countsAnAccountALoweredMinimumMadeEligible() public {
        _grantBinder();
        _stake(alice, Role.Solver, 50e18);
        vm.prank(alice);
        staking.requestUnbond(10e18); // 40 left
        assertEq(staking.activeCount(Role.Solver), 0);
        _setMin(Role.Solver, 30e18);
        assertFalse(staking.isActive(alice, Role.Solver));
        assertEq(staking.activeCount(Role.Solver), 0);
        vm.prank(binder);
        {
            (uint256 bound,) = staking.bindStake(alice, Role.Solver, 100);
            assertEq(bound, 0);
        }
        assertEq(staking.boundUntil(alice), 0);

        vm.expectEmit(true, true, false, true, address(staking));
        emit IParticipantStaking.ActiveChanged(alice, Role.Solver, true);
        vm.prank(bob);
        staking.syncActive(alice);
        assertTrue(staking.isActive(alice, Role.Solver));
        assertEq(staking.activeCount(Role.Solver), 1);
        vm.prank(binder);
        {
            (uint256 bound,) = staking.bindStake(alice, Role.Solver, 100);
            assertEq(bound, 40e18);
        }
        assertEq(staking.boundUntil(alice), 100);
        staking.syncActive(alice); // already counted: nothing changes
        assertEq(staking.activeCount(Role.Solver), 1);
    }

    /// After governance raises the minimum, an account below it can no longer bind but stays counted until
    /// anyone calls `syncActive`, which uncounts it; a stake back above the new minimum counts it again.
    function test_syncActive_uncountsAnAccountARaisedMinimumMadeIneligible() public {
        _grantBinder();
        _stake(alice, Role.Solver, 60e18);
        _stake(bob, Role.Solver, 80e18);
        _setMin(Role.Solver, 70e18);
        assertFalse(staking.isActive(alice, Role.Solver));
        assertEq(staking.activeCount(Role.Solver), 2, "counted until recounted");
        vm.prank(binder);
        {
            (uint256 bound,) = staking.bindStake(alice, Role.Solver, 100);
            assertEq(bound, 0);
        }

        vm.expectEmit(true, true, false, true, address(staking));
        emit IParticipantStaking.ActiveChanged(alice, Role.Solver, false);
        staking.syncActive(alice);
        staking.syncActive(bob); // still eligible: nothing changes
        assertEq(staking.activeCount(Role.Solver), 1);
        assertTrue(staking.isActive(bob, Role.Solver));
        _stake(alice, Role.Solver, 10e18);
        assertEq(staking.activeCount(Role.Solver), 2);
    }

    /// `syncActive` on an account without a role (never staked, or cleared) changes nothing, even with a zero
    /// minimum.
    function test_syncActive_roleLessAccountIsANoOp() public {
        _stake(alice, Role.Solver, 50e18);
        vm.prank(alice);
        staking.requestUnbond(50e18);
        vm.warp(block.timestamp + 3 days);
        vm.prank(alice);
        staking.withdrawUnbonded();
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.None));
        _setMin(Role.Solver, 0);
        vm.recordLogs();
        vm.record();
        staking.syncActive(alice);
        staking.syncActive(carol);
        (, bytes32[] memory writes) = vm.accesses(address(staking));
        assertEq(writes.length, 0, "a write");
        assertEq(vm.getRecordedLogs().length, 0, "an event");
        for (uint256 r; r < 5; ++r) {
            assertEq(staking.activeCount(Role(r)), 0);
        }
    }

    /// `bindStake` also returns the role's active count (TaskManager compares it with the accounts that acted),
    /// whether or not the account can bind, and 0 for `Role.None`.
    function test_bindStake_returnsTheRolesActiveCount() public {
        _grantBinder();
        _stake(alice, Role.Solver, 50e18);
        _stake(bob, Role.Solver, 70e18);
        _fund(carol, 1000e18);
        _stake(carol, Role.Coordinator, 500e18);
        vm.startPrank(binder);
        (uint256 stake_, uint256 active) = staking.bindStake(alice, Role.Solver, 10);
        assertEq(stake_, 50e18);
        assertEq(active, 2);
        (stake_, active) = staking.bindStake(carol, Role.Solver, 10); // another role: binds nothing
        assertEq(stake_, 0);
        assertEq(active, 2);
        (stake_, active) = staking.bindStake(alice, Role.Coordinator, 10);
        assertEq(stake_, 0);
        assertEq(active, 1);
        (stake_, active) = staking.bindStake(alice, Role.None, 10);
        assertEq(stake_, 0);
        assertEq(active, 0);
        vm.stopPrank();
        assertEq(staking.boundUntil(carol), 0);
        assertEq(staking.boundUntil(alice), 10);
    }

    /// Whatever stakes, unbonds, slashes, minimum changes and recounts come in any order, the count is never
    /// below the number of `isActive` accounts (an account that can act is always counted, so no phase closes
    /// before it acted), and once every account is recounted it is exactly the number of accounts of the role
    /// with a positive stake of at least the role minimum.
    function testFuzz_activeCount_matchesTheEligibleAccountsOnceSynced(uint256 seed) public {
        address[3] memory who = [alice, bob, carol];
        _fund(carol, 100_000e18);
        for (uint256 step; step < 16; ++step) {
            uint256 r = uint256(keccak256(abi.encode(seed, step)));
            address a = who[r % 3];
            uint256 op = (r >> 8) % 5;
            uint256 amount = ((r >> 16) % 120) * 1e18 + (r >> 32) % 2;
            if (op == 0) {
                uint256 bonded = staking.stakeOf(a);
                uint256 need = staking.minStake(Role.Solver);
                Role role = staking.roleOf(a);
                if (role != Role.None && role != Role.Solver) continue; // one role per account
                if (bonded + amount < need) amount = need - bonded;
                if (amount == 0) amount = 1;
                _stake(a, Role.Solver, amount);
            } else if (op == 1) {
                uint256 bonded = staking.stakeOf(a);
                if (bonded == 0 || staking.pendingUnbonds(a).length >= staking.MAX_PENDING_UNBONDS()) {
                    continue;
                }
                vm.prank(a);
                staking.requestUnbond(amount % bonded + 1);
            } else if (op == 2) {
                vm.prank(slasher);
                staking.slash(a, amount, "fuzz");
            } else if (op == 3) {
                _setMin(Role.Solver, ((r >> 40) % 100) * 1e18);
            } else {
                staking.syncActive(a);
            }
            uint256 active;
            for (uint256 i; i < 3; ++i) {
                if (staking.isActive(who[i], Role.Solver)) ++active;
            }
            // Equal until a minimum raise leaves an account counted that can no longer act (until recounted).
            assertGe(staking.activeCount(Role.Solver), active, "an account that can act is not counted");
        }
        uint256 eligible;
        for (uint256 i; i < 3; ++i) {
            staking.syncActive(who[i]);
            uint256 bonded = staking.stakeOf(who[i]);
            bool counted = staking.roleOf(who[i]) == Role.Solver && bonded != 0
                && bonded >= staking.minStake(Role.Solver);
            assertEq(staking.isActive(who[i], Role.Solver), counted);
            if (counted) ++eligible;
        }
        assertEq(staking.activeCount(Role.Solver), eligible);
    }

    // ------------------------------------------------------------------ stake lockers (review dc0035f: M-4)

    function _locker() internal returns (MockLocker locker) {
        locker = new MockLocker();
        vm.prank(admin);
        staking.addStakeLocker(locker);
    }

    function test_addStakeLocker_registersAtMostTheBoundAndRemoves() public {
        assertEq(staking.MAX_LOCKERS(), 4);
        MockLocker[5] memory l;
        for (uint256 i; i < 5; ++i) {
            l[i] = new MockLocker();
        }
        vm.startPrank(admin);
        for (uint256 i; i < 4; ++i) {
            vm.expectEmit(address(staking));
            emit IParticipantStaking.StakeLockerAdded(address(l[i]));
            staking.addStakeLocker(l[i]);
        }
        assertEq(staking.stakeLockers().length, 4);
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingLockerAlreadyAdded.selector, address(l[2]))
        );
        staking.addStakeLocker(l[2]);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingTooManyLockers.selector, 4));
        staking.addStakeLocker(l[4]);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingLockerNotContract.selector, bob));
        staking.addStakeLocker(IStakeLocker(bob));
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingLockerNotContract.selector, address(0))
        );
        staking.addStakeLocker(IStakeLocker(address(0)));

        vm.expectEmit(address(staking));
        emit IParticipantStaking.StakeLockerRemoved(address(l[1]));
        staking.removeStakeLocker(l[1]);
        IStakeLocker[] memory left = staking.stakeLockers();
        assertEq(left.length, 3);
        for (uint256 i; i < 3; ++i) {
            assertTrue(address(left[i]) != address(l[1]), "removed locker still listed");
        }
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingLockerUnknown.selector, address(l[1]))
        );
        staking.removeStakeLocker(l[1]);
        staking.addStakeLocker(l[4]); // room again
        assertEq(staking.stakeLockers().length, 4);
        vm.stopPrank();
    }

    function test_RevertWhen_stakeLockerAdminByStranger() public {
        MockLocker locker = _locker();
        MockLocker other = new MockLocker();
        bytes memory err = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector, bob, staking.DEFAULT_ADMIN_ROLE()
        );
        vm.startPrank(bob);
        vm.expectRevert(err);
        staking.addStakeLocker(other);
        vm.expectRevert(err);
        staking.removeStakeLocker(locker);
        vm.stopPrank();
        // a locker cannot remove itself either
        bytes32 adminRole = staking.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(locker), adminRole
            )
        );
        vm.prank(address(locker));
        staking.removeStakeLocker(locker);
    }

    /// @dev M-4. Fails on dc0035f: `requestUnbond` left any amount bonded. Now the largest lock (not the sum: the
    ///      same stake backs every obligation) must stay bonded, and the error names account, locker, lock and
    ///      what would have remained.
    function test_requestUnbond_keepsTheLargestLockBonded() public {
        MockLocker small = _locker();
        MockLocker large = _locker();
        _stake(alice, Role.Solver, 100e18);
        small.setLock(alice, 30e18);
        large.setLock(alice, 70e18);
        (uint256 locked, IStakeLocker by) = staking.lockedStake(alice);
        assertEq(locked, 70e18);
        assertEq(address(by), address(large));
        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantStaking.StakingLocked.selector, alice, address(large), 70e18, 69e18
            )
        );
        vm.prank(alice);
        staking.requestUnbond(31e18);
        vm.prank(alice);
        staking.requestUnbond(30e18); // 70 left: each lock holds, though they add up to 100
        assertEq(staking.stakeOf(alice), 70e18);
        // Removing the locker ends its lock.
        vm.prank(admin);
        staking.removeStakeLocker(large);
        vm.prank(alice);
        staking.requestUnbond(40e18);
        assertEq(staking.stakeOf(alice), 30e18);
    }

    function test_requestUnbond_asksForTheAccountsRole() public {
        MockLocker locker = _locker();
        locker.setRole(Role.Coordinator);
        locker.setLock(alice, 600e18);
        locker.setLock(bob, 600e18);
        _stake(alice, Role.Solver, 100e18);
        _stake(bob, Role.Coordinator, 600e18);
        vm.prank(alice);
        staking.requestUnbond(100e18); // a solver: not locked
        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantStaking.StakingLocked.selector, bob, address(locker), 600e18, 0
            )
        );
        vm.prank(bob);
        staking.requestUnbond(600e18);
    }

    /// @dev M-4. Does not compile on dc0035f (no lockers). Slashing must not be blocked by a lock: a slash takes
    ///      locked stake as any other, and the account is then simply unable to unbond until the lock falls.
    function test_M4_lockDoesNotBlockSlashing() public {
        MockLocker locker = _locker();
        _stake(alice, Role.Solver, 100e18);
        locker.setLock(alice, 100e18);
        vm.prank(slasher);
        assertEq(staking.slash(alice, 60e18, "x"), 60e18);
        assertEq(staking.stakeOf(alice), 40e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantStaking.StakingLocked.selector, alice, address(locker), 100e18, 39e18
            )
        );
        vm.prank(alice);
        staking.requestUnbond(1e18);
        vm.prank(slasher);
        assertEq(staking.slash(alice, 100e18, "x"), 40e18, "a slash of everything locked goes through");
        assertEq(uint8(staking.roleOf(alice)), uint8(Role.None));
    }

    /// @dev M-4. Does not compile on dc0035f (no lockers). A registered locker that reverts, burns all its gas,
    ///      answers less than a word or more than one, must not freeze everyone's unbonding: a failure counts as
    ///      no lock (fail-open), is reported with StakeLockerFailed, and the other lockers still apply.
    function test_M4_misbehavingLockerCannotBrickUnbonding() public {
        MockLocker broken = _locker();
        MockLocker sound = _locker();
        _stake(alice, Role.Solver, 10_000e18);
        broken.setLock(alice, 10_000e18);
        sound.setLock(alice, 100e18);
        MockLocker.Mode[3] memory failing =
            [MockLocker.Mode.Reverts, MockLocker.Mode.BurnsGas, MockLocker.Mode.ShortAnswer];
        for (uint256 i; i < failing.length; ++i) {
            broken.setMode(failing[i]);
            (uint256 locked, IStakeLocker by) = staking.lockedStake(alice);
            assertEq(locked, 100e18, "a failing locker counts as 0");
            assertEq(address(by), address(sound));
            uint256 left = staking.stakeOf(alice);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IParticipantStaking.StakingLocked.selector, alice, address(sound), 100e18, 100e18 - 1
                )
            );
            vm.prank(alice);
            staking.requestUnbond(left - 100e18 + 1);
            vm.expectEmit(address(staking));
            emit IParticipantStaking.StakeLockerFailed(address(broken), alice);
            uint256 gasBefore = gasleft();
            vm.prank(alice);
            staking.requestUnbond(1e18);
            assertLt(gasBefore - gasleft(), 200_000, "a gas-burning locker costs at most LOCKER_GAS");
        }
        // A longer answer than one word is read by its first word (ABI-style), without copying the rest.
        broken.setMode(MockLocker.Mode.LongAnswer);
        (uint256 lockedLong, IStakeLocker byLong) = staking.lockedStake(alice);
        assertEq(lockedLong, 10_000e18);
        assertEq(address(byLong), address(broken));
        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantStaking.StakingLocked.selector,
                alice,
                address(broken),
                10_000e18,
                10_000e18 - 4e18
            )
        );
        vm.prank(alice);
        staking.requestUnbond(1e18);
    }

    /// @dev M-4. A caller must not make a locker fail on purpose by sending just too little gas for it (EIP-150
    ///      forwards at most 63/64): at no gas limit does an unbond past a lock go through.
    function test_requestUnbond_starvedOfGasNeverSkipsALock() public {
        MockLocker locker = _locker();
        _stake(alice, Role.Solver, 100e18);
        locker.setLock(alice, 100e18);
        bytes memory call = abi.encodeCall(IParticipantStaking.requestUnbond, (50e18));
        uint256 tooLittle;
        for (uint256 g = 20_000; g < 140_000; g += 1_000) {
            vm.prank(alice);
            (bool ok, bytes memory ret) = address(staking).call{gas: g}(call);
            assertFalse(ok, "unbonded past the lock");
            if (ret.length >= 4) {
                bytes4 sel = bytes4(ret);
                if (sel == IParticipantStaking.StakingInsufficientGas.selector) ++tooLittle;
                else assertEq(sel, IParticipantStaking.StakingLocked.selector, "unexpected error");
            }
        }
        assertGt(tooLittle, 0, "some limits stop before the locker call");
        // With enough gas the lock answers for itself.
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantStaking.StakingLocked.selector, alice, address(locker), 100e18, 50e18
            )
        );
        staking.requestUnbond(50e18);
    }
}
