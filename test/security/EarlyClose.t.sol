// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";
import {World} from "../utils/World.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";
import {IParticipantStaking, Role} from "../../contracts/interfaces/IParticipantStaking.sol";

/// @notice Phases that close early (ITaskManager.PhaseClosedEarly) on the production wiring: each phase closes
///         exactly when nobody who could still act in it is left (every active solver committed, every seat
///         holder revealed, the proposer revealed, every active coordinator committed, every vote committer
///         revealed), never one action before; the closed phase ends at that block and every later deadline
///         moves earlier by the blocks it had left, so each later phase keeps its length. An early close never
///         refuses an eligible actor, composes with the seat rule (more active accounts than seats: the phase
///         runs to its deadline, a seat still goes to more stake) and with the stake quorum (the same votes settle
///         the same way on the fixed schedule), and an idle or dust stake only makes a phase run to its
///         deadline.
contract EarlyCloseTest is World {
    uint256 internal constant SOLVER_MIN = 50e18;
    uint256 internal constant COORD_MIN = 500e18;

    // ------------------------------------------------------------------ helpers

    function _rand(uint256 seed, string memory tag, uint256 i) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, tag, i)));
    }

    /// @dev A random permutation of 0..n-1 (Fisher-Yates), different for each `salt`.
    function _permutation(uint256 seed, uint256 salt, uint256 n) internal pure returns (uint256[] memory p) {
        p = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            p[i] = i;
        }
        for (uint256 i = n; i > 1; --i) {
            uint256 j = _rand(seed, "order", salt * 100 + i) % i;
            (p[i - 1], p[j]) = (p[j], p[i - 1]);
        }
    }

    /// @dev The deadlines in phase order (ITaskManager.Phase).
    function _ends(ITaskManager.Deadlines memory d) internal pure returns (uint256[5] memory e) {
        e = [uint256(d.commitEnd), d.solRevealEnd, d.gtRevealEnd, d.voteCommitEnd, d.voteRevealEnd];
    }

    function _toDeadlines(uint256[5] memory e) internal pure returns (ITaskManager.Deadlines memory d) {
        d = ITaskManager.Deadlines(uint64(e[0]), uint64(e[1]), uint64(e[2]), uint64(e[3]), uint64(e[4]));
    }

    /// @dev What the deadlines `e` become when phase `p` closes at block `at`: its end and every later one move
    ///      earlier by the blocks it had left (a fresh array).
    function _closedAt(uint256[5] memory e, uint256 p, uint256 at)
        internal
        pure
        returns (uint256[5] memory out)
    {
        uint256 left = e[p] - at;
        for (uint256 q; q < 5; ++q) {
            out[q] = q < p ? e[q] : e[q] - left;
        }
    }

    function _closedAt(ITaskManager.Deadlines memory d, ITaskManager.Phase p, uint256 at)
        internal
        pure
        returns (ITaskManager.Deadlines memory)
    {
        return _toDeadlines(_closedAt(_ends(d), uint256(p), at));
    }

    function _assertEnds(uint256 taskId, uint256[5] memory want, string memory what) internal view {
        uint256[5] memory have = _ends(_deadlines(taskId));
        for (uint256 p; p < 5; ++p) {
            assertEq(have[p], want[p], what);
        }
    }

    function _assertDeadlines(uint256 taskId, ITaskManager.Deadlines memory want, string memory what)
        internal
        view
    {
        _assertEnds(taskId, _ends(want), what);
    }

    /// @dev Each phase after `p` is as long in `b` as in `a`.
    function _assertLaterLengthsKept(
        ITaskManager.Deadlines memory a,
        ITaskManager.Deadlines memory b,
        uint256 p
    ) internal pure {
        uint256[5] memory x = _ends(a);
        uint256[5] memory y = _ends(b);
        for (uint256 q = p + 1; q < 5; ++q) {
            assertEq(y[q] - y[q - 1], x[q] - x[q - 1], "a later phase lost blocks");
        }
    }

    /// @dev Expects phase `p` to close early, moving its deadline and every later one `saved` blocks earlier.
    function _expectClose(uint256 taskId, ITaskManager.Phase p, uint256 saved) internal {
        vm.expectEmit(true, false, false, true, address(tasks));
        emit ITaskManager.PhaseClosedEarly(taskId, p, uint64(saved));
    }

    /// @dev Expects phase `p` to close early, taking the deadlines from `before` to `afterwards`.
    function _expectClose(
        uint256 taskId,
        ITaskManager.Phase p,
        ITaskManager.Deadlines memory before,
        ITaskManager.Deadlines memory afterwards
    ) internal {
        _expectClose(taskId, p, _ends(before)[uint256(p)] - _ends(afterwards)[uint256(p)]);
    }

    /// @dev How many PhaseClosedEarly events `logs` hold.
    function _closes(Vm.Log[] memory logs) internal view returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(tasks)
                    && logs[i].topics[0] == ITaskManager.PhaseClosedEarly.selector
            ) {
                ++n;
            }
        }
    }

    /// @dev The fixture's solvers and coordinators unbond everything: none of them is counted any more.
    function _retireFixture() internal {
        for (uint256 i; i < solvers.length; ++i) {
            uint256 amount = staking.stakeOf(solvers[i]);
            vm.prank(solvers[i]);
            staking.requestUnbond(amount);
        }
        for (uint256 i; i < coords.length; ++i) {
            uint256 amount = staking.stakeOf(coords[i]);
            vm.prank(coords[i]);
            staking.requestUnbond(amount);
        }
        assertEq(staking.activeCount(Role.Solver), 0);
        assertEq(staking.activeCount(Role.Coordinator), 0);
    }

    /// @dev A funded project of the fixture owner with longer windows (24/12/6/12/12 blocks), `maxSolvers` seats
    ///      and `minVotes`.
    function _project(uint256 maxSolvers, uint256 minVotes) internal returns (uint256 id) {
        IProject.CreateProjectParams memory p = _defaultParams();
        p.windows = IProject.Windows(24, 6, 12, 12, 12, W_PUBLISH);
        p.maxSolvers = uint8(maxSolvers);
        p.minVotes = uint8(minVotes);
        vm.startPrank(owner);
        id = project.createProject(p);
        project.setProposerCap(id, proposer, type(uint128).max);
        vm.stopPrank();
        _fund(id, PROJECT_FUNDING);
    }

    function _revealGtNow(uint256 taskId) internal {
        vm.prank(proposer);
        tasks.revealGroundTruth(taskId, EVAL_SPEC, GT_SALT);
    }

    function _commitVoteNow(uint256 taskId, address c, uint16[] memory scores) internal {
        vm.prank(c);
        tasks.commitVote(taskId, _voteCommit(taskId, c, scores));
    }

    function _revealVoteNow(uint256 taskId, address c, uint16[] memory scores) internal {
        vm.prank(c);
        tasks.revealVote(taskId, scores, _voteSalt(c));
    }

    // ------------------------------------------------------------------ 1. each close, exactly when due

    /// Commit phase: with 3 active solvers, 2 commits leave every deadline as proposed; the third commit (at any
    /// block before the window's last) closes the phase there and moves every later deadline earlier by the
    /// blocks it had left, each later phase keeping its length. The solution reveal is refused in the closing
    /// block and accepted in the next one; a commit in the next block is too late.
    function testFuzz_commitPhaseClosesOnTheLastActiveSolversCommit(uint256 first, uint256 last) public {
        uint256 taskId = _propose();
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        assertEq(staking.activeCount(Role.Solver), 3);
        first = bound(first, block.number, d.commitEnd - 1);
        last = bound(last, first, d.commitEnd - 1);

        _rollTo(first);
        vm.recordLogs();
        _commit(taskId, solvers[0]);
        _commit(taskId, solvers[1]);
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed with an active solver left");
        _assertDeadlines(taskId, d, "moved before the last active solver committed");

        _rollTo(last);
        ITaskManager.Deadlines memory want = _closedAt(d, ITaskManager.Phase.Commit, last);
        _expectClose(taskId, ITaskManager.Phase.Commit, d, want);
        _commit(taskId, solvers[2]);
        _assertDeadlines(taskId, want, "deadlines after the close");
        assertEq(want.commitEnd, last);
        _assertLaterLengthsKept(d, want, 0);

        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector, taskId, last, last, want.solRevealEnd
            )
        );
        tasks.revealSolution(taskId, _delta(solvers[0]), _manifest(solvers[0]), _solSalt(solvers[0]));

        vm.roll(last + 1);
        _revealSolutionNow(taskId, solvers[0]);
        address late = _stakedAccounts("lateSolver", 1, Role.Solver, SOLVER_MIN)[0];
        vm.prank(late);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerOutsideWindow.selector, taskId, last + 1, 0, last)
        );
        tasks.commitSolution(taskId, _solCommit(taskId, late));
    }

    /// Solution reveal: 2 of 3 seat holders revealing leave the deadlines alone; the third reveal closes the
    /// phase at its block. The ground truth is refused in that block and accepted in the next.
    function testFuzz_solutionRevealClosesOnTheLastSeatHoldersReveal(uint256 first, uint256 last) public {
        uint256 taskId = _propose();
        _commitAll(taskId); // closes the commit phase in the proposal block
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        first = bound(first, uint256(d.commitEnd) + 1, d.solRevealEnd - 1);
        last = bound(last, first, d.solRevealEnd - 1);

        _rollTo(first);
        vm.recordLogs();
        _revealSolutionNow(taskId, solvers[0]);
        _revealSolutionNow(taskId, solvers[1]);
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed with a seat holder left");
        _assertDeadlines(taskId, d, "moved before the last seat holder revealed");

        _rollTo(last);
        ITaskManager.Deadlines memory want = _closedAt(d, ITaskManager.Phase.SolutionReveal, last);
        _expectClose(taskId, ITaskManager.Phase.SolutionReveal, d, want);
        _revealSolutionNow(taskId, solvers[2]);
        _assertDeadlines(taskId, want, "deadlines after the close");
        assertEq(want.solRevealEnd, last);
        assertEq(want.commitEnd, d.commitEnd, "an earlier deadline moved");
        _assertLaterLengthsKept(d, want, 1);

        vm.prank(proposer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector, taskId, last, last, want.gtRevealEnd
            )
        );
        tasks.revealGroundTruth(taskId, EVAL_SPEC, GT_SALT);
        vm.roll(last + 1);
        _revealGtNow(taskId);
    }

    /// Ground-truth reveal: the proposer's reveal (its only actor) closes the phase at its block. A vote commit
    /// is refused in that block and accepted in the next.
    function testFuzz_groundTruthRevealClosesItsPhase(uint256 at) public {
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        at = bound(at, uint256(d.solRevealEnd) + 1, d.gtRevealEnd - 1);

        _rollTo(at);
        ITaskManager.Deadlines memory want = _closedAt(d, ITaskManager.Phase.GroundTruthReveal, at);
        _expectClose(taskId, ITaskManager.Phase.GroundTruthReveal, d, want);
        _revealGtNow(taskId);
        _assertDeadlines(taskId, want, "deadlines after the close");
        assertEq(want.gtRevealEnd, at);
        assertEq(want.solRevealEnd, d.solRevealEnd, "an earlier deadline moved");
        _assertLaterLengthsKept(d, want, 2);

        uint16[] memory row = _scores3(3, 2, 1);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector, taskId, at, at, want.voteCommitEnd
            )
        );
        tasks.commitVote(taskId, _voteCommit(taskId, coords[0], row));
        vm.roll(at + 1);
        _commitVoteNow(taskId, coords[0], row);
    }

    /// Vote commit: with 3 active coordinators, 2 commits leave the deadlines alone; the third closes the phase
    /// at its block. A vote reveal is refused in that block and accepted in the next.
    function testFuzz_voteCommitClosesOnTheLastActiveCoordinatorsCommit(uint256 first, uint256 last) public {
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        assertEq(staking.activeCount(Role.Coordinator), 3);
        first = bound(first, uint256(d.gtRevealEnd) + 1, d.voteCommitEnd - 1);
        last = bound(last, first, d.voteCommitEnd - 1);
        uint16[] memory row = _scores3(3, 2, 1);

        _rollTo(first);
        vm.recordLogs();
        _commitVoteNow(taskId, coords[0], row);
        _commitVoteNow(taskId, coords[1], row);
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed with an active coordinator left");
        _assertDeadlines(taskId, d, "moved before the last active coordinator committed");

        _rollTo(last);
        ITaskManager.Deadlines memory want = _closedAt(d, ITaskManager.Phase.VoteCommit, last);
        _expectClose(taskId, ITaskManager.Phase.VoteCommit, d, want);
        _commitVoteNow(taskId, coords[2], row);
        _assertDeadlines(taskId, want, "deadlines after the close");
        assertEq(want.voteCommitEnd, last);
        assertEq(want.gtRevealEnd, d.gtRevealEnd, "an earlier deadline moved");
        _assertLaterLengthsKept(d, want, 3);

        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector, taskId, last, last, want.voteRevealEnd
            )
        );
        tasks.revealVote(taskId, row, _voteSalt(coords[0]));
        vm.roll(last + 1);
        _revealVoteNow(taskId, coords[0], row);
    }

    /// Vote reveal: 2 of 3 committers revealing leave the deadlines alone; the third closes the phase at its
    /// block. Finalize is refused in that block and settles the task in the next.
    function testFuzz_voteRevealClosesOnTheLastCommittersReveal(uint256 first, uint256 last) public {
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        uint16[][] memory rows = _agreeingRows();
        for (uint256 i; i < 3; ++i) {
            _commitVote(taskId, coords[i], rows[i]);
        }
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        first = bound(first, uint256(d.voteCommitEnd) + 1, d.voteRevealEnd - 1);
        last = bound(last, first, d.voteRevealEnd - 1);

        _rollTo(first);
        vm.recordLogs();
        _revealVoteNow(taskId, coords[0], rows[0]);
        _revealVoteNow(taskId, coords[1], rows[1]);
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed with a committer left");
        _assertDeadlines(taskId, d, "moved before the last committer revealed");

        _rollTo(last);
        ITaskManager.Deadlines memory want = _closedAt(d, ITaskManager.Phase.VoteReveal, last);
        _expectClose(taskId, ITaskManager.Phase.VoteReveal, d, want);
        _revealVoteNow(taskId, coords[2], rows[2]);
        _assertDeadlines(taskId, want, "deadlines after the close");
        assertEq(want.voteRevealEnd, last);
        assertEq(want.voteCommitEnd, d.voteCommitEnd, "an earlier deadline moved");

        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerTooEarly.selector, taskId, last));
        tasks.finalize(taskId);
        vm.roll(last + 1);
        assertEq(uint8(tasks.finalize(taskId)), uint8(ITaskManager.TaskState.Finalized));
    }

    /// The action that completes a phase on the phase's last block moves nothing: a round whose every phase
    /// completes on its last block emits no PhaseClosedEarly and keeps the proposed deadlines.
    function test_completingAPhaseOnItsLastBlockMovesNothing() public {
        uint256 taskId = _propose();
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        vm.recordLogs();
        _commit(taskId, solvers[0]);
        _commit(taskId, solvers[1]);
        _rollTo(d.commitEnd);
        _commit(taskId, solvers[2]);
        _rollTo(uint256(d.commitEnd) + 1);
        _revealSolutionNow(taskId, solvers[0]);
        _revealSolutionNow(taskId, solvers[1]);
        _rollTo(d.solRevealEnd);
        _revealSolutionNow(taskId, solvers[2]);
        _rollTo(d.gtRevealEnd);
        _revealGtNow(taskId);
        uint16[][] memory rows = _agreeingRows();
        _rollTo(uint256(d.gtRevealEnd) + 1);
        _commitVoteNow(taskId, coords[0], rows[0]);
        _commitVoteNow(taskId, coords[1], rows[1]);
        _rollTo(d.voteCommitEnd);
        _commitVoteNow(taskId, coords[2], rows[2]);
        _rollTo(uint256(d.voteCommitEnd) + 1);
        _revealVoteNow(taskId, coords[0], rows[0]);
        _revealVoteNow(taskId, coords[1], rows[1]);
        _rollTo(d.voteRevealEnd);
        _revealVoteNow(taskId, coords[2], rows[2]);
        assertEq(_closes(vm.getRecordedLogs()), 0, "a phase completed on its last block closed early");
        _assertDeadlines(taskId, d, "a deadline moved");
        vm.roll(uint256(d.voteRevealEnd) + 1);
        assertEq(uint8(tasks.finalize(taskId)), uint8(ITaskManager.TaskState.Finalized));
    }

    /// The deadlines after an early close are the ones that count (PhaseClosedEarly says by how many blocks they
    /// moved, `getTask` returns them): a solver that keeps to the proposed schedule and reveals on the proposed
    /// last block of the solution reveal comes after the moved one and is refused (its stake later pays the
    /// missed-reveal slash). Participants follow the event or `getTask`, not the TaskProposed deadlines.
    function test_RevertWhen_revealFollowsTheProposedScheduleAfterAnEarlyClose() public {
        uint256 taskId = _propose();
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        _commitAll(taskId); // the commit phase closes in the proposal block, W_COMMIT blocks early
        ITaskManager.Deadlines memory moved = _deadlines(taskId);
        assertEq(moved.solRevealEnd, d.solRevealEnd - W_COMMIT);
        vm.roll(d.solRevealEnd);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector,
                taskId,
                d.solRevealEnd,
                moved.commitEnd,
                moved.solRevealEnd
            )
        );
        tasks.revealSolution(taskId, _delta(solvers[0]), _manifest(solvers[0]), _solSalt(solvers[0]));
    }

    // ------------------------------------------------------------------ 2. fairness

    /// @dev A round driven by `_phase`: the deadlines as the test expects them, from the proposal on.
    struct Round {
        uint256 taskId;
        uint256 seed;
        uint256 proposed;
        uint256[5] original;
        uint256[5] ends;
        uint256 phase; // the phase `_phase` runs, and its window as it opened
        uint256 first;
        uint256 last;
    }

    /// @dev Which of `n` eligible actors act in phase `p`: in half of the phases everyone does, in the others
    ///      each one skips with probability 1/3; at least one acts (the round needs a solution and a vote).
    function _acts(uint256 seed, uint256 p, uint256 n) internal pure returns (bool[] memory acts) {
        acts = new bool[](n);
        bool skippers = _rand(seed, "skippers", p) % 2 == 0;
        bool any;
        for (uint256 i; i < n; ++i) {
            acts[i] = !skippers || _rand(seed, "skip", p * 100 + i) % 3 != 0;
            any = any || acts[i];
        }
        if (!any) acts[0] = true;
    }

    function _act(uint256 taskId, uint256 p, address who, uint16[] memory row) internal {
        vm.prank(who);
        if (p == 0) tasks.commitSolution(taskId, _solCommit(taskId, who));
        else if (p == 1) tasks.revealSolution(taskId, _delta(who), _manifest(who), _solSalt(who));
        else if (p == 3) tasks.commitVote(taskId, _voteCommit(taskId, who, row));
        else tasks.revealVote(taskId, row, _voteSalt(who));
    }

    /// @dev Runs phase `p` (0 commit, 1 solution reveal, 3 vote commit, 4 vote reveal) of `r` for `eligible`
    ///      (everyone who could act in it): those with `acts[i]` act in a random order, each at a random block of
    ///      the phase's window as it stands when the phase opens (the same offset into the phase as under the
    ///      proposed schedule: earlier closes only move the window), or at the current block if that block has
    ///      passed. Every one of them must succeed; the phase must close early exactly when the last eligible
    ///      actor acts before the window's last block. Returns the indices into `eligible` that acted, in order.
    function _phase(
        Round memory r,
        uint256 p,
        address[] memory eligible,
        bool[] memory acts,
        uint16[][] memory rows
    ) internal returns (uint256[] memory acted) {
        (r.phase, r.first, r.last) = (p, p == 0 ? r.proposed : r.ends[p - 1] + 1, r.ends[p]);
        uint256 acting;
        for (uint256 i; i < acts.length; ++i) {
            if (acts[i]) ++acting;
        }
        acted = new uint256[](acting);
        uint256[] memory order = _permutation(r.seed, p, eligible.length);
        uint256 k;
        for (uint256 j; j < order.length; ++j) {
            uint256 i = order[j];
            if (!acts[i]) continue;
            _turn(r, eligible[i], p < 3 ? new uint16[](0) : rows[i], i, k + 1 == eligible.length);
            acted[k++] = i;
        }
        if (acting < eligible.length) {
            assertEq(_ends(_deadlines(r.taskId))[p], r.last, "a phase with an actor left closed early");
        }
    }

    /// @dev The turn of eligible actor `i` (`who`) in the phase `r` runs: at its random block of the window or
    ///      now, whichever is later. It must succeed, and close the phase early exactly when it is the last
    ///      eligible actor and acts before the window's last block.
    function _turn(Round memory r, address who, uint16[] memory row, uint256 i, bool lastEligible) internal {
        uint256 p = r.phase;
        _rollTo(r.first + _rand(r.seed, "at", p * 100 + i) % (r.last - r.first + 1));
        // No early close came before an eligible actor's turn: its phase is still open.
        assertLe(block.number, _ends(_deadlines(r.taskId))[p], "an early close refused an eligible actor");
        if (lastEligible && block.number < r.last) {
            r.ends = _closedAt(r.ends, p, block.number);
            _expectClose(r.taskId, ITaskManager.Phase(p), r.last - block.number);
        }
        _act(r.taskId, p, who, row);
        _assertEnds(r.taskId, r.ends, "the deadlines moved other than expected");
    }

    function _gtPhase(Round memory r) internal {
        uint256 first = r.ends[1] + 1;
        uint256 last = r.ends[2];
        _rollTo(first + _rand(r.seed, "gt", 0) % (last - first + 1));
        if (block.number < last) {
            r.ends = _closedAt(r.ends, 2, block.number);
            _expectClose(r.taskId, ITaskManager.Phase.GroundTruthReveal, last - block.number);
        }
        _revealGtNow(r.taskId);
        _assertEnds(r.taskId, r.ends, "the deadlines moved other than expected");
    }

    function _pick(address[] memory from, uint256[] memory idx) internal pure returns (address[] memory out) {
        out = new address[](idx.length);
        for (uint256 i; i < idx.length; ++i) {
            out[i] = from[idx[i]];
        }
    }

    /// @dev `n` fresh accounts staking `min` plus a random multiple of `min / 2` (0 to 3).
    function _fuzzStakers(uint256 seed, string memory tag, uint256 n, Role role, uint256 min)
        internal
        returns (address[] memory who, uint256[] memory amount, uint256 total)
    {
        who = new address[](n);
        amount = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            who[i] = makeAddr(string.concat(tag, vm.toString(i)));
            amount[i] = min + (_rand(seed, tag, i) % 4) * (min / 2);
            total += amount[i];
            _stake(who[i], role, amount[i]);
        }
    }

    /// @dev The participants of a fairness round and what each phase saw.
    struct Fair {
        address[] solvers;
        uint256[] solverStake;
        address[] coords;
        uint256[] coordStake;
        uint256 coordTotal;
        uint256[] committed; // indices into solvers, in commit order
        address[] committers;
        address[] revealers;
        uint256[] voted; // indices into coords, in commit order
        address[] voters;
        uint16[][] voterRows;
        uint256[] revealedVotes; // indices into voters
    }

    function _fairPlay(Round memory r, Fair memory f) internal {
        uint16[][] memory none = new uint16[][](0);
        f.committed = _phase(r, 0, f.solvers, _acts(r.seed, 0, f.solvers.length), none);
        f.committers = _pick(f.solvers, f.committed);
        uint256[] memory revealedIdx = _phase(r, 1, f.committers, _acts(r.seed, 1, f.committers.length), none);
        f.revealers = _pick(f.committers, revealedIdx);
        _gtPhase(r);

        uint256 m = f.coords.length;
        uint16[][] memory rows = new uint16[][](m);
        for (uint256 i; i < m; ++i) {
            rows[i] = new uint16[](f.revealers.length);
            for (uint256 j; j < f.revealers.length; ++j) {
                rows[i][j] = uint16(_rand(r.seed, "score", i * 100 + j));
            }
        }
        f.voted = _phase(r, 3, f.coords, _acts(r.seed, 3, m), rows);
        f.voters = _pick(f.coords, f.voted);
        f.voterRows = new uint16[][](f.voted.length);
        for (uint256 i; i < f.voted.length; ++i) {
            f.voterRows[i] = rows[f.voted[i]];
        }
        f.revealedVotes = _phase(r, 4, f.voters, _acts(r.seed, 4, f.voters.length), f.voterRows);
    }

    /// @dev Finalizes and checks the settlement and every actor's record.
    function _fairSettle(Round memory r, Fair memory f) internal {
        // Settles as the stake quorum says (more than half of all coordinator stake revealed; minVotes is 1).
        uint256 revealedStake;
        for (uint256 i; i < f.revealedVotes.length; ++i) {
            revealedStake += f.coordStake[f.voted[f.revealedVotes[i]]];
        }
        _rollTo(r.ends[4] + 1);
        ITaskManager.TaskState state = tasks.finalize(r.taskId);
        assertEq(
            uint8(state),
            uint8(
                revealedStake * 2 > f.coordTotal
                    ? ITaskManager.TaskState.Finalized
                    : ITaskManager.TaskState.Closed
            ),
            "settlement"
        );

        // Every actor's seat, solution and vote is there, in the order they acted.
        assertEq(tasks.committedSolvers(r.taskId), f.committers);
        assertEq(tasks.revealedSolvers(r.taskId), f.revealers);
        assertEq(tasks.voteCommitters(r.taskId), f.voters);
        for (uint256 i; i < f.committed.length; ++i) {
            assertEq(tasks.seatStake(r.taskId, f.committers[i]), f.solverStake[f.committed[i]], "solver seat");
        }
        for (uint256 i; i < f.voted.length; ++i) {
            assertEq(tasks.seatStake(r.taskId, f.voters[i]), f.coordStake[f.voted[i]], "vote seat");
        }
        bool[] memory revealed = new bool[](f.voters.length);
        for (uint256 i; i < f.revealedVotes.length; ++i) {
            revealed[f.revealedVotes[i]] = true;
        }
        for (uint256 i; i < f.voters.length; ++i) {
            bytes memory want = revealed[i] ? abi.encode(f.voterRows[i]) : abi.encode(new uint16[](0));
            assertEq(abi.encode(tasks.scoresOf(r.taskId, f.voters[i])), want, "scores");
        }
    }

    /// @dev No stake is bound beyond the task's proposed end, every one at least until its (moved) end; after the
    ///      proposed end every actor may unbond what it has left.
    function _fairUnbind(Round memory r, address[] memory actors) internal {
        for (uint256 i; i < actors.length; ++i) {
            assertLe(staking.boundUntil(actors[i]), r.original[4], "bound beyond the proposed end");
            assertGe(staking.boundUntil(actors[i]), r.ends[4], "unbound before the task's end");
        }
        _rollTo(r.original[4] + 1);
        for (uint256 i; i < actors.length; ++i) {
            uint256 left = staking.stakeOf(actors[i]);
            if (left == 0) continue; // a missed solution reveal may take the whole stake
            vm.prank(actors[i]);
            staking.requestUnbond(left);
        }
    }

    /// Fairness (the key property): an early close never refuses an eligible actor. With n active solvers
    /// (1..maxSolvers, so every one can hold a seat) and m active coordinators (1..16), each participant acts in
    /// a random order at a random block of its phase's window (the proposed offset into the phase; when
    /// another's turn ran past it, at the current block), and some skip whole phases. Every action succeeds; a
    /// phase closes early exactly when its last eligible actor acts before the window's last block, and a
    /// phase in which someone skipped runs to its deadline (as moved by earlier closes). The round settles as
    /// the stake quorum says, with every committed seat, revealed solution and vote present, and no stake is
    /// bound beyond the proposed end of the task, after which everyone may unbond.
    function testFuzz_earlyClosesNeverRefuseAnEligibleActor(uint256 seed, uint256 n, uint256 m, uint256 seats)
        public
    {
        n = bound(n, 1, 16);
        m = bound(m, 1, 16);
        seats = bound(seats, n, 16);
        _retireFixture();
        Fair memory f;
        (f.solvers, f.solverStake,) = _fuzzStakers(seed, "fairSolver", n, Role.Solver, SOLVER_MIN);
        (f.coords, f.coordStake, f.coordTotal) =
            _fuzzStakers(seed, "fairCoord", m, Role.Coordinator, COORD_MIN);
        assertEq(staking.activeCount(Role.Solver), n);
        assertEq(staking.activeCount(Role.Coordinator), m);

        Round memory r;
        r.seed = seed;
        r.taskId = _proposeFor(_project(seats, 1), REWARD);
        r.proposed = block.number;
        r.original = _ends(_deadlines(r.taskId));
        r.ends = _ends(_deadlines(r.taskId));

        _fairPlay(r, f);
        _fairSettle(r, f);
        _fairUnbind(r, f.committers);
        _fairUnbind(r, f.voters);
    }

    // ------------------------------------------------------------------ 3. seats

    /// With more active solvers than seats, the commit phase never closes early, whatever the order and blocks
    /// of the commits (every active solver but one tries; those beyond the seats are refused TaskManagerFull),
    /// and a solver with more stake still takes a seat on the phase's last block.
    function testFuzz_moreActiveSolversThanSeatsNeverCloseTheCommitPhase(
        uint256 seed,
        uint256 seats,
        uint256 extra
    ) public {
        seats = bound(seats, 1, 15);
        extra = bound(extra, 1, 4);
        _retireFixture();
        address[] memory crowd = _stakedAccounts("seatCrowd", seats + extra - 1, Role.Solver, SOLVER_MIN);
        address big = _stakedAccounts("seatBig", 1, Role.Solver, 2 * SOLVER_MIN)[0];
        assertEq(staking.activeCount(Role.Solver), seats + extra);
        uint256 taskId = _proposeFor(_project(seats, 1), REWARD);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        uint256 start = block.number;

        vm.recordLogs();
        for (uint256 i; i < crowd.length; ++i) {
            _rollTo(start + _rand(seed, "seatAt", i) % (d.commitEnd - start));
            vm.prank(crowd[i]);
            if (i >= seats) {
                vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerFull.selector, taskId));
            }
            tasks.commitSolution(taskId, _solCommit(taskId, crowd[i]));
        }
        assertEq(tasks.getTask(taskId).numCommitted, seats);
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed with more active solvers than seats");
        _assertDeadlines(taskId, d, "a deadline moved");

        _rollTo(d.commitEnd);
        vm.expectEmit(true, true, true, true, address(tasks));
        emit ITaskManager.SolverDisplaced(taskId, crowd[0], big, 0); // the first of the equal smallest
        _commit(taskId, big);
        assertEq(tasks.committedSolvers(taskId)[0], big);
        _assertDeadlines(taskId, d, "a deadline moved");
    }

    /// With more than 16 active coordinators (17 here, then 18), the vote commit phase never closes early, even
    /// with every vote seat taken in its first block, and a coordinator with more stake takes a seat on the
    /// phase's last block. The vote reveal then closes once every seat holder revealed, and the task settles.
    function test_moreThan16ActiveCoordinatorsNeverCloseTheVoteCommitPhase() public {
        address[] memory crowd = _stakedAccounts("voteCrowd", 14, Role.Coordinator, COORD_MIN);
        address big = _stakedAccounts("voteBig", 1, Role.Coordinator, 4 * COORD_MIN)[0];
        assertEq(staking.activeCount(Role.Coordinator), 18);
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        _rollToVoteCommit(taskId);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        uint16[] memory row = _scores3(500, 300, 200);

        vm.recordLogs();
        for (uint256 i; i < 3; ++i) {
            _commitVoteNow(taskId, coords[i], row);
        }
        for (uint256 i; i < 13; ++i) {
            _commitVoteNow(taskId, crowd[i], row);
        }
        vm.prank(crowd[13]);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerFull.selector, taskId));
        tasks.commitVote(taskId, _voteCommit(taskId, crowd[13], row));
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed with more than 16 active coordinators");
        _assertDeadlines(taskId, d, "a deadline moved");

        _rollTo(d.voteCommitEnd);
        vm.expectEmit(true, true, true, true, address(tasks));
        emit ITaskManager.VoteDisplaced(taskId, crowd[0], big, 3); // the first of the equal smallest seats
        _commitVoteNow(taskId, big, row);
        _assertDeadlines(taskId, d, "a deadline moved");

        address[] memory seated = tasks.voteCommitters(taskId);
        assertEq(seated.length, 16);
        _rollToVoteReveal(taskId);
        for (uint256 i; i < 15; ++i) {
            _revealVoteNow(taskId, seated[i], row);
        }
        _expectClose(
            taskId,
            ITaskManager.Phase.VoteReveal,
            d,
            _closedAt(d, ITaskManager.Phase.VoteReveal, block.number)
        );
        _revealVoteNow(taskId, seated[15], row);
        _rollToFinalize(taskId);
        assertEq(uint8(tasks.finalize(taskId)), uint8(ITaskManager.TaskState.Finalized));
    }

    // ------------------------------------------------------------------ 4. stake quorum

    /// @dev What a settlement left behind, to compare two runs of the same votes.
    struct Outcome {
        uint8 state;
        uint8 closeReason; // 1 + CloseReason of TaskClosed; 0 when none
        uint256 treasury;
        uint256[] balances;
        uint256[] stakes;
    }

    /// @dev Commits `rows` for every coordinator of `cs` and reveals those in `mask`, either each phase as early
    ///      as possible (`early`: both vote phases close early when complete) or with the last commit and every
    ///      reveal on the phase's last block (the fixed schedule: nothing moves); then finalizes.
    function _voteAndSettle(
        uint256 taskId,
        address[] memory cs,
        uint16[][] memory rows,
        uint256 mask,
        bool early
    ) internal returns (Outcome memory o) {
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        _rollTo(uint256(d.gtRevealEnd) + 1);
        vm.recordLogs();
        for (uint256 i; i < cs.length; ++i) {
            if (!early && i + 1 == cs.length) _rollTo(d.voteCommitEnd);
            _commitVoteNow(taskId, cs[i], rows[i]);
        }
        if (!early) {
            _assertDeadlines(taskId, d, "the fixed schedule moved");
        } else {
            assertEq(
                _deadlines(taskId).voteCommitEnd, uint256(d.gtRevealEnd) + 1, "no early vote commit close"
            );
        }
        d = _deadlines(taskId);
        _rollTo(early ? uint256(d.voteCommitEnd) + 1 : d.voteRevealEnd);
        for (uint256 i; i < cs.length; ++i) {
            if ((mask >> i) & 1 == 1) _revealVoteNow(taskId, cs[i], rows[i]);
        }
        _rollTo(uint256(_deadlines(taskId).voteRevealEnd) + 1);
        o.state = uint8(tasks.finalize(taskId));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 closes;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(tasks)) continue;
            if (logs[i].topics[0] == ITaskManager.PhaseClosedEarly.selector) ++closes;
            if (logs[i].topics[0] == ITaskManager.TaskClosed.selector) {
                (ITaskManager.CloseReason reason,) =
                    abi.decode(logs[i].data, (ITaskManager.CloseReason, uint256));
                o.closeReason = 1 + uint8(reason);
            }
        }
        if (!early) assertEq(closes, 0, "the fixed schedule closed a phase early");
        o.treasury = token.balanceOf(staking.treasury());
        o.balances = new uint256[](solvers.length + cs.length + 2);
        o.stakes = new uint256[](cs.length);
        for (uint256 i; i < solvers.length; ++i) {
            o.balances[i] = rewards.claimable(solvers[i]);
        }
        for (uint256 i; i < cs.length; ++i) {
            o.balances[solvers.length + i] = rewards.claimable(cs[i]);
            o.stakes[i] = staking.stakeOf(cs[i]);
        }
        o.balances[solvers.length + cs.length] = rewards.claimable(proposer);
        o.balances[solvers.length + cs.length + 1] = project.budgetOf(projectId);
    }

    /// The quorum and the consensus weights do not depend on when the vote phases end: with random coordinator
    /// stakes (3 to 5 coordinators), random score rows and a random subset revealing, the round whose vote
    /// phases close early settles exactly as the same votes on the fixed schedule (same state and close reason,
    /// same rewards, slashes and stakes), including the TooFewVotes and NoStakeQuorum closes.
    function testFuzz_earlyVoteCloseSettlesLikeTheFixedSchedule(uint256 seed) public {
        uint256 extra = seed % 3;
        address[] memory cs = new address[](3 + extra);
        uint256 total;
        for (uint256 i; i < 3; ++i) {
            cs[i] = coords[i];
            uint256 top = (_rand(seed, "top", i) % 4) * COORD_MIN;
            if (top != 0) _stake(coords[i], Role.Coordinator, top);
            total += staking.stakeOf(coords[i]);
        }
        for (uint256 i = 3; i < cs.length; ++i) {
            cs[i] = makeAddr(string.concat("quorumCoord", vm.toString(i)));
            uint256 amount = COORD_MIN + (_rand(seed, "extra", i) % 6) * (COORD_MIN / 2);
            _stake(cs[i], Role.Coordinator, amount);
            total += amount;
        }
        assertEq(staking.activeCount(Role.Coordinator), cs.length);
        uint256 mask = _rand(seed, "mask", 0) % (1 << cs.length);
        uint16[][] memory rows = new uint16[][](cs.length);
        for (uint256 i; i < cs.length; ++i) {
            rows[i] = _scores3(
                uint16(_rand(seed, "s0", i)), uint16(_rand(seed, "s1", i)), uint16(_rand(seed, "s2", i))
            );
        }

        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        uint256 snap = vm.snapshotState();
        Outcome memory early = _voteAndSettle(taskId, cs, rows, mask, true);
        vm.revertToState(snap);
        Outcome memory fixedSchedule = _voteAndSettle(taskId, cs, rows, mask, false);

        assertEq(early.state, fixedSchedule.state, "state");
        assertEq(early.closeReason, fixedSchedule.closeReason, "close reason");
        assertEq(early.treasury, fixedSchedule.treasury, "slashes");
        assertEq(early.balances, fixedSchedule.balances, "rewards");
        assertEq(early.stakes, fixedSchedule.stakes, "coordinator stakes");
        // And as the rules say: at least minVotes (2) reveals carrying more than half of all coordinator stake.
        uint256 revealed;
        uint256 nReveals;
        for (uint256 i; i < cs.length; ++i) {
            if ((mask >> i) & 1 == 1) {
                revealed += staking.stakeOf(cs[i]);
                ++nReveals;
            }
        }
        bool settles = nReveals >= 2 && revealed * 2 > total;
        assertEq(
            early.state,
            uint8(settles ? ITaskManager.TaskState.Finalized : ITaskManager.TaskState.Closed),
            "quorum outcome"
        );
    }

    // ------------------------------------------------------------------ 6. idle and dust stakes

    /// Griefing: an attacker stakes a solver account and never commits. The commit phase only runs to its
    /// proposed deadline (no revert, nothing moves earlier for it), the round settles, and the idle account is
    /// neither bound nor slashed.
    function test_idleSolverOnlyRunsTheCommitPhaseToItsDeadline() public {
        address idle = _stakedAccounts("idleSolver", 1, Role.Solver, SOLVER_MIN)[0];
        uint256 taskId = _propose();
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        vm.recordLogs();
        _commitAll(taskId);
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed with the idle solver counted");
        _assertDeadlines(taskId, d, "a deadline moved");
        _revealAll(taskId);
        assertEq(block.number, uint256(d.commitEnd) + 1, "the reveals waited for the proposed commitEnd");
        _revealGt(taskId);
        _voteAll(taskId, _agreeingRows());
        _rollToFinalize(taskId);
        assertEq(uint8(tasks.finalize(taskId)), uint8(ITaskManager.TaskState.Finalized));
        assertEq(_deadlines(taskId).commitEnd, d.commitEnd);
        assertEq(staking.stakeOf(idle), SOLVER_MIN);
        assertEq(staking.boundUntil(idle), 0);
    }

    /// Griefing, votes: an idle coordinator (minimum stake, never commits) only makes the vote commit phase run
    /// to its deadline; the round settles.
    function test_idleCoordinatorOnlyRunsTheVoteCommitPhaseToItsDeadline() public {
        _stakedAccounts("idleCoord", 1, Role.Coordinator, COORD_MIN);
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        uint16[][] memory rows = _agreeingRows();
        vm.recordLogs();
        for (uint256 i; i < 3; ++i) {
            _commitVote(taskId, coords[i], rows[i]);
        }
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed with the idle coordinator counted");
        _assertDeadlines(taskId, d, "a deadline moved");
        for (uint256 i; i < 3; ++i) {
            _revealVote(taskId, coords[i], rows[i]);
        }
        _rollToFinalize(taskId);
        assertEq(uint8(tasks.finalize(taskId)), uint8(ITaskManager.TaskState.Finalized));
    }

    /// Dust: an account that unbonds all but 1 wei of its solver stake is not counted, so it can neither act nor
    /// hold the commit phase open: the three counted solvers' commits close it.
    function test_dustSolverCannotHoldTheCommitPhaseOpen() public {
        address dust = _stakedAccounts("dustSolver", 1, Role.Solver, SOLVER_MIN)[0];
        assertEq(staking.activeCount(Role.Solver), 4);
        vm.prank(dust);
        staking.requestUnbond(SOLVER_MIN - 1);
        assertEq(staking.activeCount(Role.Solver), 3);
        staking.syncActive(dust); // a recount does not count it either
        assertEq(staking.activeCount(Role.Solver), 3);

        uint256 taskId = _propose();
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        vm.prank(dust);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNotActive.selector, dust, uint8(Role.Solver))
        );
        tasks.commitSolution(taskId, _solCommit(taskId, dust));
        _commit(taskId, solvers[0]);
        _commit(taskId, solvers[1]);
        _expectClose(
            taskId, ITaskManager.Phase.Commit, d, _closedAt(d, ITaskManager.Phase.Commit, block.number)
        );
        _commit(taskId, solvers[2]);
    }

    /// After governance raises the minimum, an account it made ineligible is still counted until someone
    /// recounts it: it cannot act, and it holds the commit phase open (the safe side: nobody is refused). Once
    /// anyone calls `syncActive`, the remaining counted solvers' commits close the phase.
    function test_minimumRaiseHoldsThePhaseOpenUntilSynced() public {
        _stake(solvers[0], Role.Solver, 50e18);
        _stake(solvers[1], Role.Solver, 50e18);
        vm.prank(address(timelock));
        staking.setMinStake(Role.Solver, 150e18); // solvers[2] keeps 100
        assertEq(staking.activeCount(Role.Solver), 3);

        uint256 taskId = _propose();
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        vm.prank(solvers[2]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNotActive.selector, solvers[2], uint8(Role.Solver))
        );
        tasks.commitSolution(taskId, _solCommit(taskId, solvers[2]));
        vm.recordLogs();
        _commit(taskId, solvers[0]);
        assertEq(_closes(vm.getRecordedLogs()), 0);

        vm.prank(makeAddr("anyone"));
        staking.syncActive(solvers[2]);
        assertEq(staking.activeCount(Role.Solver), 2);
        _expectClose(
            taskId, ITaskManager.Phase.Commit, d, _closedAt(d, ITaskManager.Phase.Commit, block.number)
        );
        _commit(taskId, solvers[1]);
    }

    /// After governance lowers the minimum, an account it made eligible (left between the two minimums) cannot
    /// act until it is recounted, so the counted solvers' commits close the phase without it. Recounted, it
    /// acts and holds the next task's commit phase open until it commits.
    function test_minimumCutCountsTheNewlyEligibleOnlyOnceSynced() public {
        address between = _stakedAccounts("between", 1, Role.Solver, SOLVER_MIN)[0];
        vm.prank(between);
        staking.requestUnbond(10e18); // 40 left < 50
        vm.prank(address(timelock));
        staking.setMinStake(Role.Solver, 30e18);
        assertFalse(staking.isActive(between, Role.Solver));
        assertEq(staking.activeCount(Role.Solver), 3);

        uint256 first = _propose();
        vm.prank(between);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNotActive.selector, between, uint8(Role.Solver))
        );
        tasks.commitSolution(first, _solCommit(first, between));
        ITaskManager.Deadlines memory d = _deadlines(first);
        _commit(first, solvers[0]);
        _commit(first, solvers[1]);
        _expectClose(
            first, ITaskManager.Phase.Commit, d, _closedAt(d, ITaskManager.Phase.Commit, block.number)
        );
        _commit(first, solvers[2]);

        staking.syncActive(between);
        assertTrue(staking.isActive(between, Role.Solver));
        assertEq(staking.activeCount(Role.Solver), 4);
        vm.roll(block.number + 1);
        uint256 second = _propose();
        d = _deadlines(second);
        vm.recordLogs();
        _commitAll(second);
        assertEq(_closes(vm.getRecordedLogs()), 0, "closed without the recounted solver");
        _expectClose(
            second, ITaskManager.Phase.Commit, d, _closedAt(d, ITaskManager.Phase.Commit, block.number)
        );
        _commit(second, between);
        assertEq(tasks.seatStake(second, between), 40e18);
    }

    /// @notice A committer that falls below the minimum during the phase (here: slashed by another task's
    ///         finalize) stays counted while its stake is bound, so the phase cannot close on the remaining eligible
    ///         coordinators: the vote commit phase closes only once the last of them committed. Regression test:
    ///         before, the slash uncounted it at once and the next commit closed the phase on an eligible
    ///         coordinator.
    function test_aCommitterSlashedBelowTheMinimumDuringThePhaseStillCountsUntilSynced() public {
        address x = makeAddr("xCoord");
        _stake(x, Role.Coordinator, 500e18);
        assertEq(staking.activeCount(Role.Coordinator), 4);
        uint16[][] memory rows = _agreeingRows();
        // task 1: x commits a vote and never reveals (slashed at its finalize)
        uint256 t1 = _propose();
        _commitAll(t1);
        _revealAll(t1);
        _revealGt(t1);
        for (uint256 i; i < 3; ++i) {
            _commitVote(t1, coords[i], rows[i]);
        }
        _commitVote(t1, x, rows[0]);
        for (uint256 i; i < 3; ++i) {
            _revealVote(t1, coords[i], rows[i]);
        }
        // task 2 runs its vote commit phase while task 1 becomes finalizable
        uint256 t2 = _propose();
        _commitAll(t2);
        _revealAll(t2);
        _revealGt(t2);
        _rollToVoteCommit(t2);
        _commitVote(t2, x, rows[0]);
        _commitVote(t2, coords[0], rows[0]);
        uint256 t1End = tasks.getTask(t1).deadlines.voteRevealEnd;
        uint256 t2VoteCommitEnd = tasks.getTask(t2).deadlines.voteCommitEnd;
        assertLt(t1End + 1, t2VoteCommitEnd, "task 1 ends inside task 2's vote commit phase");
        vm.roll(t1End + 1);
        tasks.finalize(t1); // x loses 1% of the minimum: 495 < 500
        assertLt(staking.stakeOf(x), 500e18);
        assertFalse(staking.isActive(x, Role.Coordinator), "x cannot act");
        assertEq(staking.activeCount(Role.Coordinator), 4, "x stays counted while bound");
        staking.syncActive(x); // anyone: no effect while x is bound
        assertEq(staking.activeCount(Role.Coordinator), 4);

        _commitVote(t2, coords[1], rows[1]);
        assertEq(tasks.getTask(t2).deadlines.voteCommitEnd, t2VoteCommitEnd, "not closed: coords[2] can act");
        vm.roll(block.number + 1);
        _commitVote(t2, coords[2], rows[2]); // the last counted coordinator: closes the phase
        assertEq(tasks.getTask(t2).deadlines.voteCommitEnd, block.number, "closed by the last eligible commit");

        // Once x's binding ended, anyone uncounts it.
        vm.roll(uint256(staking.boundUntil(x)) + 1);
        staking.syncActive(x);
        assertEq(staking.activeCount(Role.Coordinator), 3);
    }
}
