// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {World} from "../utils/World.sol";
import {TaskManager} from "../../contracts/TaskManager.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";
import {IParticipantStaking, Role} from "../../contracts/interfaces/IParticipantStaking.sol";

/// @notice Ordering and front-running tests of a round (review section 3.4) on the production wiring:
///         selective reveal of Sybil commitments (M-7, L-2), budget locking by proposers (C-1, M-6), and seat
///         filling at the proposal block by Sybils that larger stakes displace later (C-1).
contract OrderingTest is World {
    uint256 internal constant SOLVER_MIN = 50e18;
    uint256 internal constant SOLVER_SLASH = 0.5e18; // 1% of the solver minimum (TaskManager default)

    /// @dev `who`'s stake is bound to a task: an unbond request reverts StakingBound until the binding's block.
    function _expectBound(address who) internal {
        uint256 until = staking.boundUntil(who);
        assertGe(until, block.number, "not bound");
        vm.prank(who);
        vm.expectRevert(abi.encodeWithSelector(IParticipantStaking.StakingBound.selector, who, until));
        staking.requestUnbond(1);
    }

    /// @dev The missed-reveal slash of a solver seat among `seats` committed ones in a fixture task (the larger of
    ///      1% of the minimum and the seat's share of the solver pool), taken up to the solver's whole stake.
    function _missedSlash(uint256 seats, uint256 stake) internal pure returns (uint256 amount) {
        amount = REWARD * 7000 / 10_000 / seats;
        if (amount < SOLVER_SLASH) amount = SOLVER_SLASH;
        if (amount > stake) amount = stake;
    }

    function _rows(uint256 n, uint16[] memory row) internal pure returns (uint16[][] memory rows) {
        rows = new uint16[][](n);
        for (uint256 i; i < n; ++i) {
            rows[i] = row;
        }
    }

    // ------------------------------------------------------------------ M-7 / L-2: selective reveal

    /// M-7 (the free option: commit K Sybil deltas, reveal only the ones that look best once the ground truth is
    /// public) and L-2: every dropped commitment pays the missed-reveal slash at the task's end, on every way the
    /// task can end, and until then the stake behind each one stays bound (no unbond request goes through).
    /// `path`: 0 = the task settles, 1 = it closes with too few votes, 2 = nobody reveals (NoRevealedSolutions).
    function testFuzz_M7_selectiveRevealPaysTheSlashForEveryDroppedCommitment(
        uint256 k,
        uint256 mask,
        uint256 path
    ) public {
        k = bound(k, 1, 13); // 13 Sybils + the 3 honest solvers fill the 16 seats at most
        path = path % 3;
        if (path == 2) mask = 0;
        else if (path == 0 && mask % (1 << k) == 0) mask = 1; // settle needs a revealed solution anyway
        address[] memory sybils = _stakedAccounts("m7sybil", k, Role.Solver, SOLVER_MIN);

        uint256 taskId = _propose();
        // The task's deadlines as proposed (TaskProposed): phases may close early, stakes stay bound until these.
        uint256 originalEnd = _deadlines(taskId).voteRevealEnd;
        // The attacker commits first, in the proposal block; the honest solvers commit too (except on path 2).
        for (uint256 i; i < k; ++i) {
            _commit(taskId, sybils[i]);
        }
        if (path != 2) _commitAll(taskId);

        // The attacker reveals only the subset `mask` (it can no longer wait for the ground truth: the eval spec
        // comes after the solution reveals).
        uint256 dropped;
        for (uint256 i; i < k; ++i) {
            if ((mask >> i) & 1 == 1) _revealSolution(taskId, sybils[i]);
            else ++dropped;
        }
        if (path != 2) {
            _revealAll(taskId);
            _revealGt(taskId);
        }

        // Bound until the end, whether revealed or not.
        for (uint256 i; i < k; ++i) {
            _expectBound(sybils[i]);
        }
        uint256 nRevealed = tasks.getTask(taskId).numRevealed;
        if (path == 0) {
            uint16[] memory row = new uint16[](nRevealed);
            for (uint256 j; j < nRevealed; ++j) {
                row[j] = uint16(1000 + j);
            }
            _voteAll(taskId, _rows(3, row));
        }
        _rollToFinalize(taskId);

        address treasury = staking.treasury();
        uint256 treasuryBefore = token.balanceOf(treasury);
        uint256 slash = _missedSlash(k + (path != 2 ? solvers.length : 0), SOLVER_MIN);
        for (uint256 i; i < k; ++i) {
            if ((mask >> i) & 1 == 0) {
                vm.expectEmit(true, true, false, true, address(tasks));
                emit ITaskManager.MissedRevealSlashed(taskId, sybils[i], slash, tasks.REASON_SOLVER());
            }
        }
        ITaskManager.TaskState end = tasks.finalize(taskId);
        assertEq(
            uint8(end),
            uint8(path == 0 ? ITaskManager.TaskState.Finalized : ITaskManager.TaskState.Closed),
            "unexpected end"
        );

        assertEq(token.balanceOf(treasury) - treasuryBefore, dropped * slash, "slashed total");
        for (uint256 i; i < k; ++i) {
            bool revealed = (mask >> i) & 1 == 1;
            assertEq(staking.stakeOf(sybils[i]), revealed ? SOLVER_MIN : SOLVER_MIN - slash);
            assertLe(staking.boundUntil(sybils[i]), originalEnd, "bound beyond the task's original end");
        }
        // Free to leave once the task's original last window has passed.
        _rollTo(originalEnd + 1);
        for (uint256 i; i < k; ++i) {
            uint256 left = staking.stakeOf(sybils[i]);
            if (left != 0) {
                vm.prank(sybils[i]);
                staking.requestUnbond(left);
            }
        }
    }

    /// M-7: a dropped commitment's stake cannot escape the slash by unbonding or withdrawing first (L-2), even
    /// when the task outlasts the solver unbonding delay.
    function test_L2_droppedCommitmentCannotWithdrawBeforeTheSlash() public {
        address sybil = _stakedAccounts("l2sybil", 1, Role.Solver, SOLVER_MIN)[0];
        uint256 taskId = _propose();
        _commit(taskId, sybil);
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        vm.warp(block.timestamp + staking.unbondingDelay(Role.Solver) + 1);
        _expectBound(sybil);
        vm.prank(sybil);
        vm.expectRevert(IParticipantStaking.StakingNothingToWithdraw.selector);
        staking.withdrawUnbonded();
        _voteAll(taskId, _agreeingRows());
        _rollToFinalize(taskId);
        tasks.finalize(taskId);
        assertEq(staking.stakeOf(sybil), SOLVER_MIN - _missedSlash(1 + solvers.length, SOLVER_MIN));
    }

    // ------------------------------------------------------------------ C-1 / M-6: budget locking

    /// C-1: a staked proposer the owner never approved reserves nothing, whatever the reward.
    function testFuzz_C1_foreignProposerNeverReserves(uint256 reward) public {
        reward = bound(reward, 1, type(uint128).max);
        address foreign = makeAddr("foreignProposer");
        _stake(foreign, Role.Proposer, 100e18);
        bytes32 gt = _gtCommit(foreign, projectId, EVAL_SPEC, GT_SALT);
        vm.prank(foreign);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerProposerNotApproved.selector, projectId, foreign, reward, 0
            )
        );
        tasks.proposeTask(projectId, keccak256("spec"), gt, reward);
        assertEq(project.reservedOf(projectId), 0);
        assertEq(staking.boundUntil(foreign), 0);
    }

    /// M-6: each task of an approved proposer reserves at most the cap its project's owner gave it.
    function testFuzz_M6_approvedProposerReservesAtMostItsCapPerTask(uint256 cap, uint256 reward) public {
        cap = bound(cap, 1, PROJECT_FUNDING);
        reward = bound(reward, 1, PROJECT_FUNDING);
        address locker = makeAddr("locker");
        _stake(locker, Role.Proposer, 100e18);
        vm.prank(owner);
        project.setProposerCap(projectId, locker, cap);
        bytes32 gt = _gtCommit(locker, projectId, EVAL_SPEC, GT_SALT);
        vm.prank(locker);
        if (reward > cap) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    ITaskManager.TaskManagerProposerNotApproved.selector, projectId, locker, reward, cap
                )
            );
        }
        tasks.proposeTask(projectId, keccak256("spec"), gt, reward);
        assertEq(project.reservedOf(projectId), reward > cap ? 0 : reward);
    }

    /// M-6 (residual): the cap is per task, not per proposer, so an approved proposer with a 1,000 ATN cap locks
    /// the whole 100,000 ATN budget with 100 proposals in one block. Nobody commits, every task closes NoCommits
    /// without a slash after `commit` blocks, and it can start over; meanwhile the owner's own proposer reverts
    /// ProjectInsufficientBudget. Expected: what one approved proposer holds reserved in open tasks never exceeds
    /// its cap (or a bounded number of open tasks per proposer).
    function test_M6_approvedProposerLocksNoMoreThanItsCapAcrossOpenTasks() public {
        uint256 cap = 1000e18;
        address locker = makeAddr("locker");
        _stake(locker, Role.Proposer, 100e18);
        vm.prank(owner);
        project.setProposerCap(projectId, locker, cap);
        bytes32 gt = _gtCommit(locker, projectId, EVAL_SPEC, GT_SALT);

        uint256 locked;
        for (uint256 i; i < 100; ++i) {
            vm.prank(locker);
            try tasks.proposeTask(projectId, keccak256("spec"), gt, cap) {
                locked += cap;
            } catch {
                break;
            }
        }
        assertLe(locked, cap, "an approved proposer locked more than its cap");
    }

    // ------------------------------------------------------------------ C-1: seats go to stake

    /// C-1: 16 minimum-stake Sybils fill every solver seat in the proposal block itself; honest solvers with more
    /// stake commit in the last block of the window and displace them one by one. A displaced Sybil's obligation
    /// ends at once, its commitment is void, and the honest majority scores the Sybils that kept a seat 0, so
    /// they earn nothing and the honest solvers share the pool.
    function test_C1_sybilsFillingSeatsAtTheProposalBlockAreDisplacedByLargerStakes() public {
        address[] memory sybils = _stakedAccounts("seatSybil", 16, Role.Solver, SOLVER_MIN);
        uint256 taskId = _propose();
        uint256 proposalBlock = block.number;
        for (uint256 i; i < 16; ++i) {
            _commit(taskId, sybils[i]);
        }
        assertEq(block.number, proposalBlock);
        assertEq(tasks.getTask(taskId).numCommitted, 16);

        _rollTo(_deadlines(taskId).commitEnd); // the last block of the commit window
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(true, true, true, true, address(tasks));
            emit ITaskManager.SolverDisplaced(taskId, sybils[i], solvers[i], i);
            _commit(taskId, solvers[i]);
            assertEq(tasks.seatStake(taskId, sybils[i]), 0);
        }
        // Sybils that kept a seat reveal; honest coordinators score them 0.
        _rollToSolReveal(taskId);
        vm.prank(sybils[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNoCommitment.selector, taskId, sybils[0])
        );
        tasks.revealSolution(taskId, _delta(sybils[0]), _manifest(sybils[0]), _solSalt(sybils[0]));
        for (uint256 i = 3; i < 16; ++i) {
            _revealSolution(taskId, sybils[i]);
        }
        _revealAll(taskId);
        _revealGt(taskId);
        address[] memory revealed = tasks.revealedSolvers(taskId);
        uint16[] memory row = new uint16[](revealed.length);
        for (uint256 j; j < revealed.length; ++j) {
            if (revealed[j] == solvers[0]) row[j] = 65_535; // reached the target: the whole pool is earned
            if (revealed[j] == solvers[1]) row[j] = 39_321;
            if (revealed[j] == solvers[2]) row[j] = 26_214;
        }
        _voteAll(taskId, _rows(3, row));
        _rollToFinalize(taskId);
        tasks.finalize(taskId);
        for (uint256 i; i < 16; ++i) {
            assertEq(rewards.claimable(sybils[i]), 0, "a Sybil scored 0 by the honest majority earned");
        }
        uint256 pool = REWARD * 7000 / 10_000;
        assertApproxEqAbs(rewards.claimable(solvers[0]), pool / 2, 1e6);
    }

    /// C-1: whatever the order of commits (some in the proposal block, some at the window's last block) and the
    /// stakes, no committer left without a seat has more stake than a seated one, seated accounts hold exactly one
    /// obligation, and everyone else none.
    function testFuzz_C1_solverSeatsGoToStakeWhateverTheOrder(uint256 seed, uint256 n) public {
        n = bound(n, 1, 28);
        address[] memory who = new address[](n);
        uint256[] memory stakeOf = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            who[i] = makeAddr(string.concat("seat", vm.toString(i)));
            // few distinct values, so ties are common
            stakeOf[i] = SOLVER_MIN + (uint256(keccak256(abi.encode(seed, i))) % 6) * 25e18;
            _stake(who[i], Role.Solver, stakeOf[i]);
        }
        uint256 taskId = _propose();
        uint64 commitEnd = _deadlines(taskId).commitEnd;
        for (uint256 i; i < n; ++i) {
            if (uint256(keccak256(abi.encode(seed, "late", i))) % 3 == 0) _rollTo(commitEnd);
            vm.prank(who[i]);
            try tasks.commitSolution(taskId, _solCommit(taskId, who[i])) {}
            catch (bytes memory err) {
                assertEq(err, abi.encodeWithSelector(ITaskManager.TaskManagerFull.selector, taskId));
            }
        }
        address[] memory seated = tasks.committedSolvers(taskId);
        assertEq(seated.length, n < 16 ? n : 16);
        uint256 minSeated = type(uint256).max;
        for (uint256 s; s < seated.length; ++s) {
            uint256 st = tasks.seatStake(taskId, seated[s]);
            if (st < minSeated) minSeated = st;
        }
        for (uint256 i; i < n; ++i) {
            bool isSeated;
            for (uint256 s; s < seated.length; ++s) {
                if (seated[s] == who[i]) isSeated = true;
            }
            if (isSeated) assertGe(staking.boundUntil(who[i]), block.number, "a seated solver is not bound");
            if (isSeated) assertEq(tasks.seatStake(taskId, who[i]), stakeOf[i]);
            else assertLe(stakeOf[i], minSeated, "a larger stake was left without a seat");
        }
    }

    /// C-1: 16 minimum-stake Sybil coordinators take every vote seat in the first block of the vote window and
    /// score their own solver alone; the honest coordinators (3,000 ATN each, a majority of both the total and the
    /// voting stake) commit in the window's last block and displace three of them. The honest majority of voting
    /// stake clips the Sybils' self-scoring: their solver earns nothing.
    function test_C1_sybilVotersFillingTheFirstVoteBlockAreDisplacedByLargerStakes() public {
        address sybilSolver = _stakedAccounts("voteSybilSolver", 1, Role.Solver, SOLVER_MIN)[0];
        uint256 taskId = _propose();
        _commit(taskId, sybilSolver);
        _commitAll(taskId);
        _revealSolution(taskId, sybilSolver); // position 0
        _revealAll(taskId);
        _revealGt(taskId);
        for (uint256 i; i < 3; ++i) {
            _stake(coords[i], Role.Coordinator, 2000e18); // 3,000 ATN each: 9,000 honest
        }
        address[] memory sybils = _stakedAccounts("voteSybil", 16, Role.Coordinator, 500e18); // 8,000
        uint16[] memory selfish = new uint16[](4);
        selfish[0] = 65535;
        uint16[] memory honest = new uint16[](4);
        (honest[1], honest[2], honest[3]) = (500, 300, 200);
        _rollToVoteCommit(taskId);
        uint256 firstBlock = block.number;
        for (uint256 i; i < 16; ++i) {
            _commitVote(taskId, sybils[i], selfish);
        }
        assertEq(block.number, firstBlock);
        _rollTo(_deadlines(taskId).voteCommitEnd);
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(true, true, true, true, address(tasks));
            emit ITaskManager.VoteDisplaced(taskId, sybils[i], coords[i], i);
            _commitVote(taskId, coords[i], honest);
            assertEq(tasks.seatStake(taskId, sybils[i]), 0);
        }
        for (uint256 i; i < 3; ++i) {
            _revealVote(taskId, coords[i], honest);
        }
        for (uint256 i = 3; i < 16; ++i) {
            _revealVote(taskId, sybils[i], selfish);
        }
        _rollToFinalize(taskId);
        assertEq(uint8(tasks.finalize(taskId)), uint8(ITaskManager.TaskState.Finalized));
        assertEq(rewards.claimable(sybilSolver), 0, "the Sybils' self-scoring paid");
        assertGt(rewards.claimable(solvers[0]), rewards.claimable(solvers[1]));
        assertGt(rewards.claimable(solvers[1]), rewards.claimable(solvers[2]));
    }

    /// C-1 (residual: seats cap the voters, the quorum counts total stake): honest coordinators hold 62.5% of all
    /// coordinator stake (3 × 1,000 ATN + 20 × 500 ATN = 13,000), a coalition 37.5% (13 × 600 = 7,800). Vote seats
    /// go to the 16 largest stakes, so the coalition displaces every 500-ATN honest voter: voting stake is
    /// 3,000 honest + 7,800 coalition = 10,800, above the 50% quorum of 20,800, and the coalition holds 72% of
    /// it. Its 1.0 for its own Sybil solver becomes the consensus and the honest solvers' values (backed by 28%)
    /// become 0: the Sybil takes the whole solver pool. Expected: a coalition without a majority of coordinator
    /// stake cannot set any consensus (e.g. require more than κ of *total* coordinator stake behind a value, or
    /// count seated stake only towards the quorum when the seats are full).
    function test_C1_minorityCoalitionOutbidsFragmentedHonestStakeForEveryVoteSeat() public {
        address sybilSolver = _stakedAccounts("fragSybilSolver", 1, Role.Solver, SOLVER_MIN)[0];
        address[] memory small = _stakedAccounts("smallHonest", 20, Role.Coordinator, 500e18);
        address[] memory coalition = _stakedAccounts("coalition", 13, Role.Coordinator, 600e18);
        uint256 total = staking.totalStake(Role.Coordinator);
        assertEq(total, 20_800e18);
        assertLt(13 * 600e18 * 2, total, "setup: the coalition is a minority of coordinator stake");

        uint256 taskId = _propose();
        _commitAll(taskId);
        _commit(taskId, sybilSolver);
        _revealAll(taskId);
        _revealSolution(taskId, sybilSolver); // position 3
        _revealGt(taskId);
        uint16[] memory honest = new uint16[](4);
        (honest[0], honest[1], honest[2]) = (500, 300, 200);
        uint16[] memory selfish = new uint16[](4);
        selfish[3] = 65535;

        // Honest coordinators vote first: the three large ones and the first 13 small ones take the 16 seats.
        for (uint256 i; i < 3; ++i) {
            _commitVote(taskId, coords[i], honest);
        }
        for (uint256 i; i < 20; ++i) {
            vm.prank(small[i]);
            try tasks.commitVote(taskId, _voteCommit(taskId, small[i], honest)) {} catch {}
        }
        // The coalition outbids every small honest voter.
        for (uint256 i; i < 13; ++i) {
            _commitVote(taskId, coalition[i], selfish);
        }
        for (uint256 i; i < 3; ++i) {
            _revealVote(taskId, coords[i], honest);
        }
        for (uint256 i; i < 13; ++i) {
            _revealVote(taskId, coalition[i], selfish);
        }
        _rollToFinalize(taskId);
        assertEq(uint8(tasks.finalize(taskId)), uint8(ITaskManager.TaskState.Finalized), "settled");
        assertEq(rewards.claimable(sybilSolver), 0, "a 37.5% coalition paid its Sybil solver");
    }
}
