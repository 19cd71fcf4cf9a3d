// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ATNToken} from "../../contracts/ATNToken.sol";
import {ParticipantStaking} from "../../contracts/ParticipantStaking.sol";
import {IParticipantStaking, Role} from "../../contracts/interfaces/IParticipantStaking.sol";

/// @dev Bounded actions on ParticipantStaking by a fixed set of actors; ghost totals of what was slashed.
contract StakingHandler is Test {
    ATNToken public token;
    ParticipantStaking public staking;
    address public slasher;
    address[] public actors;

    uint256 public ghostSlashed;
    uint256 public ghostStaked;
    uint256 public ghostWithdrawn;
    uint256 public calls;

    constructor(ATNToken token_, ParticipantStaking staking_, address slasher_) {
        token = token_;
        staking = staking_;
        slasher = slasher_;
        for (uint256 i; i < 6; ++i) {
            address a = address(uint160(0x1000 + i));
            actors.push(a);
        }
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    function stake(uint256 actorSeed, uint256 roleSeed, uint256 amount) external {
        address a = _actor(actorSeed);
        Role role = staking.roleOf(a);
        if (role == Role.None) role = Role(1 + roleSeed % 4);
        uint256 min = staking.minStake(role);
        uint256 bonded = staking.stakeOf(a);
        uint256 lo = bonded >= min ? 1 : min - bonded;
        amount = bound(amount, lo, lo + 5_000e18);
        deal(address(token), a, token.balanceOf(a) + amount, true);
        vm.startPrank(a);
        token.approve(address(staking), amount);
        staking.stake(role, amount);
        vm.stopPrank();
        ghostStaked += amount;
        ++calls;
    }

    function requestUnbond(uint256 actorSeed, uint256 amount) external {
        address a = _actor(actorSeed);
        uint256 bonded = staking.stakeOf(a);
        if (bonded == 0 || staking.pendingUnbonds(a).length >= staking.MAX_PENDING_UNBONDS()) return;
        amount = bound(amount, 1, bonded);
        vm.prank(a);
        staking.requestUnbond(amount);
        ++calls;
    }

    function withdraw(uint256 actorSeed) external {
        address a = _actor(actorSeed);
        IParticipantStaking.Unbond[] memory q = staking.pendingUnbonds(a);
        bool matured;
        for (uint256 i; i < q.length; ++i) {
            if (q[i].maturesAt <= block.timestamp) matured = true;
        }
        if (!matured) return;
        vm.prank(a);
        ghostWithdrawn += staking.withdrawUnbonded();
        ++calls;
    }

    function slash(uint256 actorSeed, uint256 amount) external {
        address a = _actor(actorSeed);
        amount = bound(amount, 0, 20_000e18);
        vm.prank(slasher);
        ghostSlashed += staking.slash(a, amount, "inv");
        ++calls;
    }

    function warp(uint256 secs) external {
        secs = bound(secs, 1, 10 days);
        vm.warp(block.timestamp + secs);
    }
}

contract StakingInvariantTest is Test {
    ATNToken internal token;
    ParticipantStaking internal staking;
    StakingHandler internal handler;
    address internal treasury = makeAddr("treasury");
    address internal slasher = makeAddr("slasher");

    function setUp() public {
        vm.warp(1_000_000);
        token = new ATNToken(address(this), address(this), 0);
        staking = new ParticipantStaking(address(this), token, treasury);
        staking.grantRole(staking.SLASHER_ROLE(), slasher);
        handler = new StakingHandler(token, staking, slasher);
        targetContract(address(handler));
    }

    function _sums() internal view returns (uint256 bonded, uint256 pending, uint256[5] memory byRole) {
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            uint256 b = staking.stakeOf(a);
            bonded += b;
            pending += staking.pendingUnbondTotal(a);
            byRole[uint256(staking.roleOf(a))] += b;
        }
    }

    /// token.balanceOf(staking) == Σ bonded + Σ pending
    function invariant_balanceCoversBondedPlusPending() public view {
        (uint256 bonded, uint256 pending,) = _sums();
        assertEq(token.balanceOf(address(staking)), bonded + pending);
        assertEq(handler.ghostStaked(), bonded + pending + handler.ghostSlashed() + handler.ghostWithdrawn());
    }

    /// totalStake(r) == Σ bonded of accounts whose role is r
    function invariant_totalStakePerRole() public view {
        (,, uint256[5] memory byRole) = _sums();
        for (uint256 r = 1; r < 5; ++r) {
            assertEq(staking.totalStake(Role(r)), byRole[r]);
        }
        assertEq(byRole[0], 0); // an account without a role holds nothing bonded
    }

    /// activeCount(r) == number of accounts active in r (the minimums never change here, so every count is
    /// current): a phase of a task closes early only once every account that can act in it has
    function invariant_activeCountPerRole() public view {
        uint256 n = handler.actorCount();
        uint256[5] memory active;
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            Role role = staking.roleOf(a);
            if (staking.isActive(a, role)) ++active[uint256(role)];
        }
        for (uint256 r = 1; r < 5; ++r) {
            assertEq(staking.activeCount(Role(r)), active[r]);
        }
    }

    /// everything slashed reached the treasury
    function invariant_slashedEqualsTreasuryBalance() public view {
        assertEq(token.balanceOf(treasury), handler.ghostSlashed());
    }

    /// an account with no stake at all has no role, and the queue never exceeds its cap
    function invariant_roleClearedWhenEmpty() public view {
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            uint256 len = staking.pendingUnbonds(a).length;
            assertLe(len, staking.MAX_PENDING_UNBONDS());
            if (staking.stakeOf(a) == 0 && len == 0) assertEq(uint8(staking.roleOf(a)), uint8(Role.None));
        }
    }
}
