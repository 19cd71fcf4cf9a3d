// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {World} from "../utils/World.sol";
import {TaskManager} from "../../contracts/TaskManager.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";
import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";
import {IParticipantStaking, Role} from "../../contracts/interfaces/IParticipantStaking.sol";

/// @notice Regression tests of the round findings of the dc0035f security review (C-1, M-1, M-6, L-2, L-3,
///         L-5), on the production wiring. Each test names the finding; each one fails on dc0035f, where the
///         attack it replays succeeded.
contract RoundAttacksTest is World {
    address internal attacker = makeAddr("attacker");

    // ------------------------------------------------------------------ C-1 / M-6: who spends a budget

    /// C-1 (fails on dc0035f: any staked proposer reserved any project's budget): a staked proposer the owner
    /// never approved cannot open a task on the project, whatever the reward.
    function test_C1_foreignProposerCannotSpendAProject() public {
        _stake(attacker, Role.Proposer, 100e18);
        uint256 budget = project.budgetOf(projectId);
        bytes32 gt = _gtCommit(attacker, projectId, EVAL_SPEC, GT_SALT);
        vm.prank(attacker);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerProposerNotApproved.selector, projectId, attacker, budget, 0
            )
        );
        tasks.proposeTask(projectId, keccak256("spec"), gt, budget);
        assertEq(project.budgetOf(projectId), budget);
        assertEq(project.reservedOf(projectId), 0);
    }

    /// M-6 (fails on dc0035f: one proposer reserved the whole budget for free, blocking every other proposer):
    /// an approved proposer holds at most the cap the owner gave it across its open tasks; revoking ends it.
    function test_M6_approvedProposerIsCappedPerTaskAndRevocable() public {
        _stake(attacker, Role.Proposer, 100e18);
        vm.prank(owner);
        project.setProposerCap(projectId, attacker, 500e18);
        bytes32 gt = _gtCommit(attacker, projectId, EVAL_SPEC, GT_SALT);
        vm.prank(attacker);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerProposerNotApproved.selector, projectId, attacker, 501e18, 500e18
            )
        );
        tasks.proposeTask(projectId, keccak256("spec"), gt, 501e18);
        vm.prank(attacker);
        tasks.proposeTask(projectId, keccak256("spec"), gt, 500e18);
        assertEq(project.reservedOf(projectId), 500e18);

        // The cap bounds what it holds across its open tasks, not each task: a second task does not fit.
        assertEq(tasks.heldBy(projectId, attacker), 500e18);
        vm.prank(attacker);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerProposerNotApproved.selector, projectId, attacker, 500e18 + 1, 500e18
            )
        );
        tasks.proposeTask(projectId, keccak256("spec"), gt, 1);

        vm.prank(owner);
        project.setProposerCap(projectId, attacker, 0);
        vm.prank(attacker);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerProposerNotApproved.selector, projectId, attacker, 500e18 + 1, 0
            )
        );
        tasks.proposeTask(projectId, keccak256("spec"), gt, 1);
    }

    function test_RevertWhen_setProposerCapByNonOwner() public {
        vm.prank(attacker);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectNotOwner.selector, attacker, owner));
        project.setProposerCap(projectId, attacker, 1);
    }

    /// C-1 seats (fails on dc0035f: 16 minimum-stake Sybils filling the solver seats in the proposal block locked
    /// every honest solver out with TaskManagerFull): when every seat is taken, a solver with more stake takes
    /// the seat of the smallest stake; the displaced Sybil can neither reveal nor stays bound.
    function test_C1_sybilSolversCannotHoldTheSeats() public {
        uint256 taskId = _propose();
        address[] memory sybils = _stakedAccounts("sybilSolver", 16, Role.Solver, 50e18);
        for (uint256 i; i < 16; ++i) {
            _commit(taskId, sybils[i]);
        }
        uint64 end = _deadlines(taskId).voteRevealEnd;
        assertEq(staking.boundUntil(sybils[0]), end);

        // An honest solver with 100 ATN takes the first of the equal smallest seats.
        vm.expectEmit(true, true, true, true, address(tasks));
        emit ITaskManager.SolverDisplaced(taskId, sybils[0], solvers[0], 0);
        _commit(taskId, solvers[0]);
        assertEq(tasks.committedSolvers(taskId)[0], solvers[0]);
        assertEq(tasks.seatStake(taskId, solvers[0]), 100e18);
        assertEq(tasks.seatStake(taskId, sybils[0]), 0);

        // Equal stake does not displace: the seat stays with whoever holds it.
        address late = makeAddr("lateSybil");
        _stake(late, Role.Solver, 50e18);
        vm.prank(late);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerFull.selector, taskId));
        tasks.commitSolution(taskId, _solCommit(taskId, late));

        // The displaced Sybil's commitment is void.
        _rollToSolReveal(taskId);
        vm.prank(sybils[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNoCommitment.selector, taskId, sybils[0])
        );
        tasks.revealSolution(taskId, _delta(sybils[0]), _manifest(sybils[0]), _solSalt(sybils[0]));
        _revealSolution(taskId, solvers[0]);
    }

    /// C-1 votes (fails on dc0035f: 16 Sybil coordinators filled every vote seat first, honest coordinators
    /// reverted TaskManagerFull, and consensus ran over the Sybils alone): when every seat is taken, coordinators
    /// with more stake displace the smallest seats, so stake, not speed, decides who votes and the honest
    /// majority of stake clips the Sybils' self-dealing.
    function test_C1_sybilVotersCannotHoldTheVoteSeats() public {
        for (uint256 i; i < 3; ++i) {
            _stake(coords[i], Role.Coordinator, 4000e18); // 5,000 ATN each: 15,000 honest
        }
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        // 16 Sybils of 500 ATN (8,000) take every seat first and score their own solver 2 alone.
        address[] memory sybils = _stakedAccounts("sybilCoord", 16, Role.Coordinator, 500e18);
        uint16[] memory sybilRow = _scores3(0, 0, 65535);
        for (uint256 i; i < 16; ++i) {
            _commitVote(taskId, sybils[i], sybilRow);
        }
        uint16[] memory honest = _scores3(500, 300, 200);
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(true, true, true, true, address(tasks));
            emit ITaskManager.VoteDisplaced(taskId, sybils[i], coords[i], i);
            _commitVote(taskId, coords[i], honest);
        }
        assertEq(tasks.getTask(taskId).numVoteCommits, 16);
        for (uint256 i; i < 3; ++i) {
            _revealVote(taskId, coords[i], honest);
        }
        for (uint256 i = 3; i < 16; ++i) {
            _revealVote(taskId, sybils[i], sybilRow);
        }
        _rollToFinalize(taskId);
        tasks.finalize(taskId);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Finalized));
        // The honest majority of voting stake (15,000 of 21,500) sets every consensus: solver 2 is clipped to
        // the honest 0.2, so solver 0 earns most, as the honest coordinators scored.
        assertGt(rewards.claimable(solvers[0]), rewards.claimable(solvers[2]));
        assertGt(rewards.claimable(solvers[1]), rewards.claimable(solvers[2]));
    }

    /// C-1 quorum (fails on dc0035f: two Sybil coordinators met minVotes = 2 and their votes alone set the
    /// consensus): votes carrying less than half of the total coordinator stake close the task instead of
    /// paying, and the reward returns to the budget.
    function test_C1_minoritySybilVotersCannotSettle() public {
        uint256 budget = project.budgetOf(projectId);
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        address[] memory sybils = _stakedAccounts("sybilCoord", 2, Role.Coordinator, 500e18);
        uint16[] memory sybilRow = _scores3(0, 0, 65535);
        for (uint256 i; i < 2; ++i) {
            _commitVote(taskId, sybils[i], sybilRow);
        }
        for (uint256 i; i < 2; ++i) {
            _revealVote(taskId, sybils[i], sybilRow);
        }
        _rollToFinalize(taskId);
        vm.expectEmit(true, true, false, true, address(tasks));
        emit ITaskManager.TaskClosed(taskId, projectId, ITaskManager.CloseReason.NoStakeQuorum, REWARD);
        tasks.finalize(taskId);
        assertEq(rewards.claimable(solvers[2]), 0);
        assertEq(project.budgetOf(projectId), budget);
    }

    // ------------------------------------------------------------------ M-1: weights are bound at commit

    /// M-1 (fails on dc0035f: a coordinator that topped up its stake after every vote was revealed overrode the
    /// consensus for its Sybil): the consensus weight is the stake bound when the vote was committed, so
    /// the payout with the top-up equals the payout without it.
    function test_M1_stakeAddedAfterTheRevealsChangesNothing() public {
        address deviant = makeAddr("deviant");
        _stake(deviant, Role.Coordinator, 500e18);
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        uint16[] memory honest = _scores3(500, 300, 200);
        uint16[] memory selfish = _scores3(0, 0, 65535);
        for (uint256 i; i < 3; ++i) {
            _commitVote(taskId, coords[i], honest);
        }
        _commitVote(taskId, deviant, selfish);
        for (uint256 i; i < 3; ++i) {
            _revealVote(taskId, coords[i], honest);
        }
        _revealVote(taskId, deviant, selfish);
        _rollToFinalize(taskId);

        uint256 snap = vm.snapshotState();
        tasks.finalize(taskId);
        uint256 controlFavoured = rewards.claimable(solvers[2]);
        uint256 controlBest = rewards.claimable(solvers[0]);
        vm.revertToState(snap);

        // 500 + 2,600 = 3,100 > the honest 3,000: on dc0035f its 1.0 for solver 2 became the consensus. (The
        // stake quorum still holds: the bound 3,500 is more than half of the 6,100 now staked.)
        _stake(deviant, Role.Coordinator, 2600e18);
        assertEq(tasks.seatStake(taskId, deviant), 500e18);
        tasks.finalize(taskId);
        assertEq(rewards.claimable(solvers[2]), controlFavoured);
        assertEq(rewards.claimable(solvers[0]), controlBest);
        assertGt(controlBest, controlFavoured);
    }

    // ------------------------------------------------------------------ L-2 / L-5: stake stays at risk

    /// L-2 (fails on dc0035f: a committed solver unbonded and withdrew before finalize and its missed-reveal slash
    /// took nothing): stake that backs a commitment cannot be unbonded before the task's last window, so the
    /// slash lands; afterwards the solver may leave. Phases that close early move the task's last window earlier,
    /// never a binding: each stays until the last window as it stood when the stake was bound (the proposal's
    /// for the proposer and the solvers, the vote commit's for a coordinator), never earlier than the task's end.
    function test_L2_committedSolverCannotUnbondBeforeTheTaskEnds() public {
        uint256 taskId = _propose();
        uint256 end = _deadlines(taskId).voteRevealEnd;
        _commitAll(taskId);
        assertLt(_deadlines(taskId).voteRevealEnd, end, "setup: the commit phase closed early");
        vm.prank(solvers[2]);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingBound.selector, solvers[2], end));
        staking.requestUnbond(100e18);
        // The proposer and the coordinators are bound as well.
        vm.prank(proposer);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingBound.selector, proposer, end));
        staking.requestUnbond(1);

        _revealSolution(taskId, solvers[0]);
        _revealSolution(taskId, solvers[1]);
        _revealGt(taskId);
        uint16[] memory r = new uint16[](2);
        r[0] = 600;
        r[1] = 400;
        uint256 voteEnd = _deadlines(taskId).voteRevealEnd; // the last window when the votes are committed
        for (uint256 i; i < 3; ++i) {
            _commitVote(taskId, coords[i], r);
        }
        assertLt(_deadlines(taskId).voteRevealEnd, voteEnd, "setup: the vote commit phase closed early");
        assertLe(voteEnd, end);
        vm.prank(coords[0]);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingBound.selector, coords[0], voteEnd));
        staking.requestUnbond(1);
        for (uint256 i; i < 3; ++i) {
            _revealVote(taskId, coords[i], r);
        }
        _rollToFinalize(taskId);
        // Still bound at the (shifted) end of the task.
        vm.prank(solvers[2]);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingBound.selector, solvers[2], end));
        staking.requestUnbond(100e18);
        tasks.finalize(taskId);
        // The missed reveal costs the seat's share of the pool, capped by the stake: all 100 ATN.
        assertEq(staking.stakeOf(solvers[2]), 0);
        assertEq(staking.pendingUnbondTotal(solvers[2]), 0);
        _rollTo(voteEnd + 1);
        vm.prank(coords[0]);
        staking.requestUnbond(1);
    }

    /// L-2, the other order: once the last window has passed a bound solver may start unbonding before anyone
    /// finalized, but the unbonding delay (at least MIN_UNBONDING_DELAY) keeps the stake slashable, so the
    /// missed-reveal slash still lands. The windows closed early here: the solver's binding is the task's last
    /// window as proposed, after the shifted one, and the unbond goes through only once that has passed.
    function test_L2_unbondingAfterTheLastWindowStillPaysTheSlash() public {
        uint256 taskId = _propose();
        uint256 end = _deadlines(taskId).voteRevealEnd;
        _commitAll(taskId);
        _revealSolution(taskId, solvers[0]);
        _revealSolution(taskId, solvers[1]);
        _revealGt(taskId);
        uint16[] memory r = new uint16[](2);
        r[0] = 600;
        r[1] = 400;
        for (uint256 i; i < 3; ++i) {
            _commitVote(taskId, coords[i], r);
        }
        for (uint256 i; i < 3; ++i) {
            _revealVote(taskId, coords[i], r);
        }
        _rollToFinalize(taskId);
        assertEq(staking.boundUntil(solvers[2]), end);
        vm.prank(solvers[2]);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingBound.selector, solvers[2], end));
        staking.requestUnbond(100e18);
        _rollTo(end + 1);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.GroundTruthRevealed));
        vm.prank(solvers[2]);
        staking.requestUnbond(100e18);
        vm.warp(block.timestamp + staking.MIN_UNBONDING_DELAY() - 1);
        vm.prank(solvers[2]);
        vm.expectRevert(IParticipantStaking.StakingNothingToWithdraw.selector);
        staking.withdrawUnbonded();
        tasks.finalize(taskId);
        assertEq(staking.pendingUnbondTotal(solvers[2]), 0);
        assertEq(token.balanceOf(address(timelock)) >= 100e18, true);
    }

    // ------------------------------------------------------------------ M-7: selective reveal

    /// M-7 (fails on dc0035f, where a dropped candidate cost 1% of the minimum stake, 0.5 ATN): a solver that
    /// commits several candidates under Sybil identities and reveals only some (today it must choose before the
    /// eval spec is public, see `test_M7_noSolutionIsRevealedAfterTheGroundTruth`) loses, for each dropped
    /// candidate, its seat's share of the solver pool (up to the whole stake), which is what the seat could have
    /// earned: committing many and revealing the best does not pay.
    function test_M7_droppedCandidatesCostTheirSeatShare() public {
        uint256 taskId = _propose();
        address[] memory candidates = _stakedAccounts("candidate", 4, Role.Solver, 500e18);
        for (uint256 i; i < 4; ++i) {
            _commit(taskId, candidates[i]);
        }
        _revealSolution(taskId, candidates[0]); // the one it guesses is best
        _revealGt(taskId);
        uint16[] memory r = new uint16[](1);
        r[0] = 65_535; // the best candidate reached the target: the whole pool is earned
        for (uint256 i; i < 3; ++i) {
            _commitVote(taskId, coords[i], r);
        }
        for (uint256 i; i < 3; ++i) {
            _revealVote(taskId, coords[i], r);
        }
        _rollToFinalize(taskId);
        tasks.finalize(taskId);
        uint256 seatShare = REWARD * 7000 / 10_000 / 4; // 175 ATN
        for (uint256 i = 1; i < 4; ++i) {
            assertEq(staking.stakeOf(candidates[i]), 500e18 - seatShare);
        }
        // Net of the drops, the selective revealer ends with no more than one fair seat of the pool.
        uint256 lost;
        for (uint256 i = 1; i < 4; ++i) {
            lost += 500e18 - staking.stakeOf(candidates[i]);
        }
        assertLe(rewards.claimable(candidates[0]) - lost, seatShare);
    }

    /// A binding only ever extends: a second task ending later keeps the proposer bound until its own end.
    function test_L2_bindingExtendsToTheLatestTask() public {
        uint256 first = _propose();
        _rollTo(block.number + 3);
        uint256 second = _propose();
        assertEq(staking.boundUntil(proposer), _deadlines(second).voteRevealEnd);
        assertGt(_deadlines(second).voteRevealEnd, _deadlines(first).voteRevealEnd);
        _rollTo(uint256(_deadlines(first).voteRevealEnd) + 1);
        uint256 end = _deadlines(second).voteRevealEnd;
        vm.prank(proposer);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingBound.selector, proposer, end));
        staking.requestUnbond(1);
    }

    /// L-5 (fails on dc0035f: governance could set a zero unbonding delay, turning every stake-weighted rule into
    /// a flash-loan target): the delay has a floor.
    function test_L5_unbondingDelayHasAFloor() public {
        uint64 floor = staking.MIN_UNBONDING_DELAY();
        vm.prank(address(timelock));
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingDelayTooShort.selector, uint64(0), floor)
        );
        staking.setUnbondingDelay(Role.Coordinator, 0);
        vm.prank(address(timelock));
        staking.setUnbondingDelay(Role.Coordinator, floor);
        assertEq(staking.unbondingDelay(Role.Coordinator), floor);
    }

    // ------------------------------------------------------------------ L-3: a replacement TaskManager

    /// L-3 (fails on dc0035f: a redeployed TaskManager restarted at id 1 and every finalize of an id already
    /// settled reverted RewardsAlreadySettled, leaving its reservation stuck): a replacement can only follow a
    /// retired predecessor and continues its ids; the predecessor's open task still settles, and the two never
    /// issue the same id.
    function test_L3_replacementTaskManagerSettles() public {
        _fullRound(_agreeingRows());
        uint256 open = _propose(); // still running on the old manager
        TaskManager old = tasks;

        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerPredecessorActive.selector, address(old))
        );
        new TaskManager(address(timelock), staking, project, rewards, old);

        vm.prank(address(timelock));
        old.retire();
        TaskManager next = new TaskManager(address(timelock), staking, project, rewards, old);
        vm.startPrank(address(timelock));
        staking.grantRole(staking.BINDER_ROLE(), address(next));
        staking.grantRole(staking.SLASHER_ROLE(), address(next));
        project.grantRole(project.SPENDER_ROLE(), address(next));
        rewards.grantRole(rewards.TASK_MANAGER_ROLE(), address(next));
        vm.stopPrank();

        vm.prank(proposer);
        vm.expectRevert(ITaskManager.TaskManagerIsRetired.selector);
        old.proposeTask(projectId, keccak256("spec"), _gtCommit(proposer, projectId, EVAL_SPEC, GT_SALT), 1);

        // The old manager's open task runs to the end and settles.
        _commitAll(open);
        _revealAll(open);
        _revealGt(open);
        _voteAll(open, _agreeingRows());
        _rollToFinalize(open);
        tasks.finalize(open);
        assertTrue(rewards.settled(open));

        tasks = next;
        uint256 taskId = _fullRound(_agreeingRows());
        assertEq(taskId, open + 1);
        assertEq(uint8(next.taskState(taskId)), uint8(ITaskManager.TaskState.Finalized));
        assertTrue(rewards.settled(taskId));
    }

    function test_RevertWhen_retireByNonAdmin() public {
        vm.prank(attacker);
        vm.expectRevert();
        tasks.retire();
        assertFalse(tasks.retired());
    }
}
