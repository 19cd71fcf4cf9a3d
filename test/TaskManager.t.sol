// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {World} from "./utils/World.sol";
import {ITaskManager} from "../contracts/interfaces/ITaskManager.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";
import {Role} from "../contracts/interfaces/IParticipantStaking.sol";

contract TaskManagerTest is World {
    // ------------------------------------------------------------------ propose

    function test_proposeTask_reservesRewardAndSetsDeadlines() public {
        uint256 start = block.number;
        uint256 budget = project.budgetOf(projectId);
        bytes32 gt = _gtCommit(proposer, projectId, EVAL_SPEC, GT_SALT);
        ITaskManager.Deadlines memory d = ITaskManager.Deadlines(
            uint64(start + 10), uint64(start + 15), uint64(start + 20), uint64(start + 25), uint64(start + 30)
        );
        vm.expectEmit(true, true, true, true, address(tasks));
        emit ITaskManager.TaskProposed(1, projectId, proposer, keccak256("spec"), gt, REWARD, d);
        uint256 taskId = _propose();
        assertEq(taskId, 1);
        assertEq(tasks.taskCount(), 1);
        assertEq(project.budgetOf(projectId), budget - REWARD);
        assertEq(project.reservedOf(projectId), REWARD);
        ITaskManager.TaskView memory v = tasks.getTask(taskId);
        assertEq(v.proposer, proposer);
        assertEq(v.reward, REWARD);
        assertEq(v.gtCommit, gt);
        assertEq(v.deadlines.voteRevealEnd, start + 30);
        assertEq(uint8(v.state), uint8(ITaskManager.TaskState.Open));
        assertEq(v.minVotes, 2);
    }

    function test_RevertWhen_proposerNotActive() public {
        // Approved by the owner, but staked as a solver: not an active proposer.
        vm.prank(owner);
        project.setProposerCap(projectId, solvers[0], 1);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerNotActive.selector, solvers[0], uint8(Role.Proposer)
            )
        );
        tasks.proposeTask(projectId, bytes32("s"), bytes32("g"), 1);
    }

    function test_RevertWhen_proposeUnknownProject() public {
        vm.prank(proposer);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerUnknownProject.selector, 99));
        tasks.proposeTask(99, bytes32("s"), bytes32("g"), 1);
    }

    function test_RevertWhen_proposeZeroRewardOrCommit() public {
        vm.startPrank(proposer);
        vm.expectRevert(ITaskManager.TaskManagerInvalidInput.selector);
        tasks.proposeTask(projectId, bytes32("s"), bytes32("g"), 0);
        vm.expectRevert(ITaskManager.TaskManagerInvalidInput.selector);
        tasks.proposeTask(projectId, bytes32("s"), bytes32(0), 1);
        vm.stopPrank();
    }

    function test_RevertWhen_proposeExceedsBudget() public {
        vm.prank(proposer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IProject.ProjectInsufficientBudget.selector, PROJECT_FUNDING, PROJECT_FUNDING + 1
            )
        );
        tasks.proposeTask(projectId, bytes32("s"), bytes32("g"), PROJECT_FUNDING + 1);
    }

    function testFuzz_proposeTask_reservesExactly(uint256 reward) public {
        reward = bound(reward, 1, PROJECT_FUNDING);
        uint256 taskId = _proposeFor(projectId, reward);
        assertEq(project.reservedOf(projectId), reward);
        assertEq(tasks.getTask(taskId).reward, reward);
    }

    // ------------------------------------------------------------------ commit

    function test_commitSolution_recordsInOrder() public {
        uint256 taskId = _propose();
        vm.expectEmit(true, true, false, true, address(tasks));
        emit ITaskManager.SolutionCommitted(taskId, solvers[0], _solCommit(taskId, solvers[0]), 0);
        _commitAll(taskId);
        address[] memory c = tasks.committedSolvers(taskId);
        assertEq(c.length, 3);
        assertEq(c[2], solvers[2]);
        assertEq(tasks.getTask(taskId).numCommitted, 3);
    }

    function test_RevertWhen_commitByNonSolver() public {
        uint256 taskId = _propose();
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNotActive.selector, coords[0], uint8(Role.Solver))
        );
        tasks.commitSolution(taskId, bytes32("c"));
    }

    function test_RevertWhen_commitTwice() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerAlreadyCommitted.selector, taskId, solvers[0])
        );
        tasks.commitSolution(taskId, bytes32("other"));
    }

    function test_RevertWhen_commitAfterWindow() public {
        uint256 taskId = _propose();
        uint256 end = _deadlines(taskId).commitEnd;
        vm.roll(end + 1);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerOutsideWindow.selector, taskId, end + 1, 0, end)
        );
        tasks.commitSolution(taskId, bytes32("c"));
    }

    function test_RevertWhen_commitZero() public {
        uint256 taskId = _propose();
        vm.prank(solvers[0]);
        vm.expectRevert(ITaskManager.TaskManagerInvalidInput.selector);
        tasks.commitSolution(taskId, bytes32(0));
    }

    function test_RevertWhen_commitUnknownTask() public {
        vm.prank(solvers[0]);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerUnknownTask.selector, 7));
        tasks.commitSolution(7, bytes32("c"));
    }

    function test_RevertWhen_commitBeyondMaxSolvers() public {
        vm.prank(address(timelock));
        project.setTaskLimits(projectId, 2, 1);
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _commit(taskId, solvers[1]);
        vm.prank(solvers[2]);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerFull.selector, taskId));
        tasks.commitSolution(taskId, bytes32("c"));
    }

    // ------------------------------------------------------------------ ground truth

    function test_revealGroundTruth_movesState() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _revealSolution(taskId, solvers[0]);
        _rollToGtReveal(taskId);
        vm.expectEmit(true, true, false, true, address(tasks));
        emit ITaskManager.GroundTruthRevealed(taskId, proposer, EVAL_SPEC);
        vm.prank(proposer);
        tasks.revealGroundTruth(taskId, EVAL_SPEC, GT_SALT);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.GroundTruthRevealed));
    }

    /// @dev M-7: the eval spec cannot come out while solvers may still reveal (on dc0035f it came first, right
    ///      after the commit window, and every reveal followed it).
    function test_RevertWhen_groundTruthRevealedBeforeTheSolutionsAreIn() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _revealSolution(taskId, solvers[0]);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        for (uint256 b = block.number; b <= d.solRevealEnd; b += 3) {
            vm.roll(b);
            vm.prank(proposer);
            vm.expectRevert(
                abi.encodeWithSelector(
                    ITaskManager.TaskManagerOutsideWindow.selector, taskId, b, d.solRevealEnd, d.gtRevealEnd
                )
            );
            tasks.revealGroundTruth(taskId, EVAL_SPEC, GT_SALT);
        }
    }

    function test_RevertWhen_groundTruthByOther() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _revealSolution(taskId, solvers[0]);
        _rollToGtReveal(taskId);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNotProposer.selector, taskId, solvers[0])
        );
        tasks.revealGroundTruth(taskId, EVAL_SPEC, GT_SALT);
    }

    function test_RevertWhen_groundTruthMismatch() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _revealSolution(taskId, solvers[0]);
        _rollToGtReveal(taskId);
        vm.prank(proposer);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerCommitmentMismatch.selector, taskId, proposer)
        );
        tasks.revealGroundTruth(taskId, EVAL_SPEC, bytes32("wrong salt"));
    }

    function test_RevertWhen_groundTruthWithoutRevealedSolutions() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]); // committed, never revealed
        _rollToGtReveal(taskId);
        vm.prank(proposer);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerNoSolutions.selector, taskId));
        tasks.revealGroundTruth(taskId, EVAL_SPEC, GT_SALT);
    }

    function test_RevertWhen_groundTruthRevealedTwice() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _revealSolution(taskId, solvers[0]);
        _revealGt(taskId);
        vm.prank(proposer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerWrongState.selector,
                taskId,
                ITaskManager.TaskState.GroundTruthRevealed
            )
        );
        tasks.revealGroundTruth(taskId, EVAL_SPEC, GT_SALT);
    }

    // ------------------------------------------------------------------ solutions

    function test_revealSolution_ordersByReveal() public {
        uint256 taskId = _propose();
        _commitAll(taskId);
        _rollToSolReveal(taskId);
        vm.expectEmit(true, true, false, true, address(tasks));
        emit ITaskManager.SolutionRevealed(taskId, solvers[2], _delta(solvers[2]), _manifest(solvers[2]), 0);
        _revealSolution(taskId, solvers[2]);
        _revealSolution(taskId, solvers[0]);
        address[] memory r = tasks.revealedSolvers(taskId);
        assertEq(r.length, 2);
        assertEq(r[0], solvers[2]);
        assertEq(r[1], solvers[0]);
    }

    function test_RevertWhen_revealSolutionDuringCommit() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector, taskId, block.number, d.commitEnd, d.solRevealEnd
            )
        );
        tasks.revealSolution(taskId, _delta(solvers[0]), _manifest(solvers[0]), _solSalt(solvers[0]));
    }

    /// @dev M-7: once the eval spec is public no solution can be revealed, so no solver chooses which candidate
    ///      to reveal by how it will score (on dc0035f reveals were only possible after the ground truth).
    function test_M7_noSolutionIsRevealedAfterTheGroundTruth() public {
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealSolution(taskId, solvers[0]);
        _revealGt(taskId);
        vm.prank(solvers[1]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerWrongState.selector, taskId, ITaskManager.TaskState.GroundTruthRevealed
            )
        );
        tasks.revealSolution(taskId, _delta(solvers[1]), _manifest(solvers[1]), _solSalt(solvers[1]));
    }

    function test_RevertWhen_copiedCommitmentRevealed() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        // solver 1 copies solver 0's commitment from the event and later its reveal from the mempool.
        vm.prank(solvers[1]);
        tasks.commitSolution(taskId, _solCommit(taskId, solvers[0]));
        _revealSolution(taskId, solvers[0]);
        vm.prank(solvers[1]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerCommitmentMismatch.selector, taskId, solvers[1])
        );
        tasks.revealSolution(taskId, _delta(solvers[0]), _manifest(solvers[0]), _solSalt(solvers[0]));
    }

    function test_RevertWhen_revealSolutionWithoutCommitOrTwice() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _rollToSolReveal(taskId);
        vm.prank(solvers[1]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNoCommitment.selector, taskId, solvers[1])
        );
        tasks.revealSolution(taskId, bytes32(0), bytes32(0), bytes32(0));
        _revealSolution(taskId, solvers[0]);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNoCommitment.selector, taskId, solvers[0])
        );
        tasks.revealSolution(taskId, _delta(solvers[0]), _manifest(solvers[0]), _solSalt(solvers[0]));
    }

    function test_RevertWhen_revealSolutionAfterWindow() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        vm.roll(d.solRevealEnd + 1);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector,
                taskId,
                d.solRevealEnd + 1,
                d.commitEnd,
                d.solRevealEnd
            )
        );
        tasks.revealSolution(taskId, _delta(solvers[0]), _manifest(solvers[0]), _solSalt(solvers[0]));
    }

    /// @dev S-3: the commitment binds the manifest (shape, size, content hash) as well as the shard root, so a
    ///      solver cannot reveal its committed root under another manifest (dc0035f committed `numSamples` and
    ///      no manifest: any manifest for the root was as good as the committed one).
    function testFuzz_revealSolution_rejectsWrongPreimage(bytes32 deltaRoot, bytes32 manifestHash, bytes32 salt)
        public
    {
        vm.assume(
            deltaRoot != _delta(solvers[0]) || manifestHash != _manifest(solvers[0]) || salt != _solSalt(solvers[0])
        );
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _rollToSolReveal(taskId);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerCommitmentMismatch.selector, taskId, solvers[0])
        );
        tasks.revealSolution(taskId, deltaRoot, manifestHash, salt);
    }

    function test_S3_sameRootUnderAnotherManifestIsRefused() public {
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _rollToSolReveal(taskId);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerCommitmentMismatch.selector, taskId, solvers[0])
        );
        tasks.revealSolution(taskId, _delta(solvers[0]), keccak256("other manifest"), _solSalt(solvers[0]));
        _revealSolution(taskId, solvers[0]);
    }

    // ------------------------------------------------------------------ votes

    function _toVoting() internal returns (uint256 taskId) {
        taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
    }

    function test_commitAndRevealVote_storesScores() public {
        uint256 taskId = _toVoting();
        uint16[] memory s = _scores3(1, 2, 65_535);
        _commitVote(taskId, coords[0], s);
        assertEq(tasks.voteCommitters(taskId)[0], coords[0]);
        assertEq(tasks.scoresOf(taskId, coords[0]).length, 0);
        vm.expectEmit(true, true, false, true, address(tasks));
        emit ITaskManager.VoteRevealed(taskId, coords[0], s);
        _revealVote(taskId, coords[0], s);
        uint16[] memory got = tasks.scoresOf(taskId, coords[0]);
        assertEq(got.length, 3);
        assertEq(got[2], 65_535);
        assertEq(got[1], 2);
        assertEq(tasks.getTask(taskId).numVoteReveals, 1);
    }

    function test_RevertWhen_commitVoteBeforeGroundTruthWindowEnds() public {
        uint256 taskId = _toVoting();
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector,
                taskId,
                block.number,
                d.gtRevealEnd,
                d.voteCommitEnd
            )
        );
        tasks.commitVote(taskId, bytes32("v"));
    }

    function test_RevertWhen_commitVoteByNonCoordinatorOrTwice() public {
        uint256 taskId = _toVoting();
        _rollToVoteCommit(taskId);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerNotActive.selector, solvers[0], uint8(Role.Coordinator)
            )
        );
        tasks.commitVote(taskId, bytes32("v"));
        vm.startPrank(coords[0]);
        vm.expectRevert(ITaskManager.TaskManagerInvalidInput.selector);
        tasks.commitVote(taskId, bytes32(0));
        tasks.commitVote(taskId, bytes32("v"));
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerAlreadyCommitted.selector, taskId, coords[0])
        );
        tasks.commitVote(taskId, bytes32("w"));
        vm.stopPrank();
    }

    function test_RevertWhen_commitVoteWithoutGroundTruth() public {
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _rollToVoteCommit(taskId);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerWrongState.selector, taskId, ITaskManager.TaskState.Open)
        );
        tasks.commitVote(taskId, bytes32("v"));
    }

    function test_RevertWhen_revealVoteBadLength() public {
        uint256 taskId = _toVoting();
        uint16[] memory s = new uint16[](2);
        _commitVote(taskId, coords[0], s);
        _rollToVoteReveal(taskId);
        vm.prank(coords[0]);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerBadScoresLength.selector, 2, 3));
        tasks.revealVote(taskId, s, _voteSalt(coords[0]));
    }

    function test_RevertWhen_revealVoteMismatchOrMissingOrTwice() public {
        uint256 taskId = _toVoting();
        uint16[] memory s = _scores3(1, 1, 1);
        _commitVote(taskId, coords[0], s);
        _rollToVoteReveal(taskId);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerCommitmentMismatch.selector, taskId, coords[0])
        );
        tasks.revealVote(taskId, _scores3(1, 1, 2), _voteSalt(coords[0]));
        vm.prank(coords[1]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNoCommitment.selector, taskId, coords[1])
        );
        tasks.revealVote(taskId, s, _voteSalt(coords[1]));
        _revealVote(taskId, coords[0], s);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerNoCommitment.selector, taskId, coords[0])
        );
        tasks.revealVote(taskId, s, _voteSalt(coords[0]));
    }

    function test_RevertWhen_revealVoteAfterWindow() public {
        uint256 taskId = _toVoting();
        uint16[] memory s = _scores3(1, 1, 1);
        _commitVote(taskId, coords[0], s);
        ITaskManager.Deadlines memory d = _deadlines(taskId);
        vm.roll(d.voteRevealEnd + 1);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerOutsideWindow.selector,
                taskId,
                d.voteRevealEnd + 1,
                d.voteCommitEnd,
                d.voteRevealEnd
            )
        );
        tasks.revealVote(taskId, s, _voteSalt(coords[0]));
    }

    function testFuzz_revealVote_roundTripsScores(uint16 a, uint16 b, uint16 c) public {
        uint256 taskId = _toVoting();
        uint16[] memory s = _scores3(a, b, c);
        _commitVote(taskId, coords[0], s);
        _revealVote(taskId, coords[0], s);
        uint16[] memory got = tasks.scoresOf(taskId, coords[0]);
        assertEq(got[0], a);
        assertEq(got[1], b);
        assertEq(got[2], c);
    }

    // ------------------------------------------------------------------ finalize

    function test_RevertWhen_finalizeTooEarly() public {
        uint256 taskId = _propose();
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerTooEarly.selector, taskId, _deadlines(taskId).commitEnd
            )
        );
        tasks.finalize(taskId);
        _commit(taskId, solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerTooEarly.selector, taskId, _deadlines(taskId).solRevealEnd
            )
        );
        tasks.finalize(taskId);
        _revealSolution(taskId, solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerTooEarly.selector, taskId, _deadlines(taskId).gtRevealEnd
            )
        );
        tasks.finalize(taskId);
        _revealGt(taskId);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerTooEarly.selector, taskId, _deadlines(taskId).voteRevealEnd
            )
        );
        tasks.finalize(taskId);
    }

    function test_RevertWhen_finalizeTwiceOrUnknown() public {
        uint256 taskId = _fullRound(_agreeingRows());
        vm.expectRevert(
            abi.encodeWithSelector(
                ITaskManager.TaskManagerWrongState.selector, taskId, ITaskManager.TaskState.Finalized
            )
        );
        tasks.finalize(taskId);
        vm.expectRevert(abi.encodeWithSelector(ITaskManager.TaskManagerUnknownTask.selector, 99));
        tasks.finalize(99);
    }

    function test_finalize_slashNeverBlocks() public {
        // The solver lost all its stake to another slash before finalize: the missed-reveal slash takes what is
        // there (nothing), finalize succeeds.
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealSolution(taskId, solvers[0]);
        _revealSolution(taskId, solvers[1]);
        _revealGt(taskId);
        vm.prank(address(shards));
        staking.slash(solvers[2], 100e18, "other");
        uint16[] memory r = new uint16[](2);
        r[0] = 1;
        r[1] = 1;
        uint16[][] memory rows = new uint16[][](2);
        rows[0] = r;
        rows[1] = r;
        _voteAll(taskId, rows);
        _rollToFinalize(taskId);
        assertEq(uint8(tasks.finalize(taskId)), uint8(ITaskManager.TaskState.Finalized));
    }

    // ------------------------------------------------------------------ admin

    function test_setSlashParams_byGovernance() public {
        vm.expectEmit(false, false, false, true, address(tasks));
        emit ITaskManager.SlashParamsUpdated(0, 200, 300);
        vm.prank(address(timelock));
        tasks.setSlashParams(0, 200, 300);
        (uint16 p, uint16 s, uint16 c) = tasks.slashParams();
        assertEq(p, 0);
        assertEq(s, 200);
        assertEq(c, 300);
        // With proposer slashing off, a cancelled task slashes nothing.
        uint256 taskId = _propose();
        _commit(taskId, solvers[0]);
        _rollTo(uint256(_deadlines(taskId).gtRevealEnd) + 1);
        tasks.finalize(taskId);
        assertEq(staking.stakeOf(proposer), 1000e18);
    }

    function test_RevertWhen_setSlashParamsInvalidOrUnauthorized() public {
        vm.prank(address(timelock));
        vm.expectRevert(ITaskManager.TaskManagerInvalidInput.selector);
        tasks.setSlashParams(10_001, 0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), bytes32(0)
            )
        );
        tasks.setSlashParams(1, 1, 1);
    }
}
