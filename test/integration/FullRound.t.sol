// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console2} from "forge-std/console2.sol";
import {World} from "../utils/World.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";
import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {IModelShardRegistry, ModelStatus} from "../../contracts/interfaces/IModelShardRegistry.sol";

/// @notice Whole rounds across every contract: the honest path with model publication (and its gas), a
///         deviating coordinator, and every failure path.
contract FullRoundTest is World {
    bytes32 internal constant NEW_ROOT = keccak256("model-v1");

    function _publishAndAttest(uint256 taskId) internal returns (uint256 txs) {
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        vm.prank(aggregator);
        shards.publishModel(_modelManifest(NEW_ROOT, GENESIS_ROOT), ids);
        txs = 1;
        for (uint256 i; i < coords.length; ++i) {
            if (shards.modelStatus(NEW_ROOT) != ModelStatus.Pending) break;
            vm.prank(coords[i]);
            shards.attestModel(NEW_ROOT, _modelManifest(NEW_ROOT, GENESIS_ROOT).manifestHash, aggregator);
            ++txs;
        }
    }

    function test_fullRound_publishesModelAndPaysEveryone() public {
        uint256 budgetBefore = project.budgetOf(projectId);
        vm.startSnapshotGas("fullRound");
        uint256 taskId = _fullRound(_agreeingRows());
        uint256 publishTxs = _publishAndAttest(taskId);
        uint256 gasUsed = vm.stopSnapshotGas();
        // 15 round transactions (propose, 3 commits, gt reveal, 3 reveals, 3 vote commits, 3 vote reveals,
        // finalize) plus publish and attestations; each real transaction also pays the 21000 intrinsic gas.
        uint256 txCount = 15 + publishTxs;
        console2.log("full round execution gas (3 solvers, 3 coordinators, finalize, publish):", gasUsed);
        console2.log("transactions:", txCount);
        console2.log("with 21000 intrinsic gas per transaction:", gasUsed + 21_000 * txCount);

        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Finalized));
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
        assertEq(project.modelRoot(projectId), NEW_ROOT);
        // Aggregator fee credited: 10% of the reward.
        assertEq(rewards.claimable(aggregator), REWARD * 1000 / 10_000);
        assertEq(rewards.pendingFee(taskId).amount, 0);
        // Agreeing scores with solver 0 at the target ⇒ the whole solver pool is earned, split 50/30/20.
        uint256 pool = REWARD * 7000 / 10_000;
        // 1e18-fixed-point floors lose at most a few hundred wei.
        assertApproxEqAbs(rewards.claimable(solvers[0]), pool * 5 / 10, 1e3);
        assertApproxEqAbs(rewards.claimable(solvers[1]), pool * 3 / 10, 1e3);
        assertApproxEqAbs(rewards.claimable(solvers[2]), pool * 2 / 10, 1e3);
        assertEq(rewards.claimable(proposer), REWARD * 500 / 10_000);
        // Equal stakes and equal rows ⇒ equal dividends (up to 1 wei of floor per coordinator).
        uint256 cpool = REWARD * 1500 / 10_000;
        for (uint256 i; i < 3; ++i) {
            assertApproxEqAbs(rewards.claimable(coords[i]), cpool / 3, 1e3);
        }
        // Contributor shares recorded in the market for every paid solver.
        assertEq(market.sharesOf(projectId, solvers[0]), rewards.claimable(solvers[0]));
        // Budget: everything not paid came back.
        assertEq(project.budgetOf(projectId) + project.paidOf(projectId), budgetBefore);
        assertEq(project.reservedOf(projectId), 0);
        // Claims move tokens once.
        uint256 before = token.balanceOf(solvers[0]);
        vm.prank(solvers[0]);
        rewards.claim();
        assertApproxEqAbs(token.balanceOf(solvers[0]) - before, pool * 5 / 10, 1e3);
        vm.prank(solvers[0]);
        vm.expectRevert(IRewards.RewardsNothingToClaim.selector);
        rewards.claim();
    }

    uint256 internal _coldGas;
    uint256 internal _coldTxs;

    /// @dev One "transaction": every protocol contract's storage is cooled first (a forge test is a single EVM
    ///      transaction, so without this every slot touched earlier would be warm), then `data` is sent as `from`.
    function _tx(address from, address to, bytes memory data) internal {
        _coldGas += _coldCall(from, to, data);
        ++_coldTxs;
    }

    function test_fullRound_gasWithColdStorage() public {
        uint256 taskId = tasks.taskCount() + 1;
        bytes32 gt = _gtCommit(proposer, projectId, EVAL_SPEC, GT_SALT);
        _tx(
            proposer,
            address(tasks),
            abi.encodeCall(tasks.proposeTask, (projectId, keccak256("spec"), gt, REWARD))
        );
        for (uint256 i; i < 3; ++i) {
            _tx(
                solvers[i],
                address(tasks),
                abi.encodeCall(tasks.commitSolution, (taskId, _solCommit(taskId, solvers[i])))
            );
        }
        _rollToSolReveal(taskId);
        for (uint256 i; i < 3; ++i) {
            address s = solvers[i];
            _tx(
                s,
                address(tasks),
                abi.encodeCall(tasks.revealSolution, (taskId, _delta(s), _manifest(s), _solSalt(s)))
            );
        }
        _rollToGtReveal(taskId);
        _tx(proposer, address(tasks), abi.encodeCall(tasks.revealGroundTruth, (taskId, EVAL_SPEC, GT_SALT)));
        uint16[] memory row = _scores3(65_535, 39_321, 26_214); // solver 0 at the target: the whole pool is paid
        _rollToVoteCommit(taskId);
        for (uint256 i; i < 3; ++i) {
            _tx(
                coords[i],
                address(tasks),
                abi.encodeCall(tasks.commitVote, (taskId, _voteCommit(taskId, coords[i], row)))
            );
        }
        _rollToVoteReveal(taskId);
        for (uint256 i; i < 3; ++i) {
            _tx(
                coords[i],
                address(tasks),
                abi.encodeCall(tasks.revealVote, (taskId, row, _voteSalt(coords[i])))
            );
        }
        _rollToFinalize(taskId);
        _tx(address(0xF1), address(tasks), abi.encodeCall(tasks.finalize, (taskId)));
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        _tx(
            aggregator,
            address(shards),
            abi.encodeCall(shards.publishModel, (_modelManifest(NEW_ROOT, GENESIS_ROOT), ids))
        );
        for (uint256 i; i < coords.length && shards.modelStatus(NEW_ROOT) == ModelStatus.Pending; ++i) {
            _tx(
                coords[i],
                address(shards),
                abi.encodeCall(
                    shards.attestModel, (NEW_ROOT, _modelManifest(NEW_ROOT, GENESIS_ROOT).manifestHash, aggregator)
                )
            );
        }
        assertEq(project.modelRoot(projectId), NEW_ROOT);
        assertEq(rewards.claimable(aggregator), REWARD / 10);
        console2.log("cold-storage execution gas of the full round:", _coldGas);
        console2.log("transactions:", _coldTxs);
        console2.log("with 21000 intrinsic gas per transaction:", _coldGas + 21_000 * _coldTxs);
        // docs/protocol.md §10 target: <= 2,340,000 for this round (missed since early phase closes, see
        // docs/consensus.md "Gas"); the committed snapshot tracks it.
        vm.snapshotValue("fullRoundColdWithIntrinsic", _coldGas + 21_000 * _coldTxs);
    }

    function test_fullRound_deviatingCoordinatorEarnsLess() public {
        uint16[][] memory rows = new uint16[][](3);
        rows[0] = _scores3(65_535, 39_321, 26_214); // solver 0 reached the target: the whole pool is earned
        rows[1] = _scores3(65_535, 39_321, 26_214);
        rows[2] = _scores3(0, 0, 65_535); // favours solver 2 against the majority
        uint256 taskId = _fullRound(rows);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Finalized));
        uint256 honest = rewards.claimable(coords[0]);
        assertEq(honest, rewards.claimable(coords[1]));
        assertLt(rewards.claimable(coords[2]), honest);
        // Consensus (κ = 0.5, majority honest) clips the deviator's 1.0 on solver 2 to C = 0.2, so solver 2
        // gets R = 0.2 against solver 0's R = 2/3 * 0.5: I = (1/3, 0.2, 0.2) / (11/15) = (5/11, 3/11, 3/11).
        uint256 pool = REWARD * 7000 / 10_000;
        assertApproxEqAbs(rewards.claimable(solvers[0]), pool * 5 / 11, 1e3);
        assertApproxEqAbs(rewards.claimable(solvers[2]), pool * 3 / 11, 1e3);
        // Its bond on solver 2 is below an honest coordinator's, none on solvers 0 and 1.
        assertEq(rewards.bondOf(projectId, coords[2], solvers[0]), 0);
        assertLt(
            rewards.bondOf(projectId, coords[2], solvers[2]),
            rewards.bondOf(projectId, coords[0], solvers[2]) + 1
        );
        // No slashing for disagreement.
        assertEq(staking.stakeOf(coords[2]), 1000e18);
    }

    function test_fullRound_solverThatNeverRevealsIsSlashedAndUnpaid() public {
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealSolution(taskId, solvers[0]);
        _revealSolution(taskId, solvers[1]);
        _revealGt(taskId);
        uint16[][] memory rows = new uint16[][](2);
        uint16[] memory r = new uint16[](2);
        r[0] = 65_535; // at the target: the whole pool is earned, split 60/40
        r[1] = 43_690;
        rows[0] = r;
        rows[1] = r;
        _voteAll(taskId, rows);
        _rollToFinalize(taskId);
        // The seat's share of the solver pool (1000 × 70% / 3 ≈ 233 ATN) exceeds the solver's 100 ATN stake:
        // all of it is taken.
        vm.expectEmit(true, true, false, true, address(tasks));
        emit ITaskManager.MissedRevealSlashed(taskId, solvers[2], 100e18, tasks.REASON_SOLVER());
        tasks.finalize(taskId);
        assertEq(staking.stakeOf(solvers[2]), 0);
        assertEq(rewards.claimable(solvers[2]), 0);
        assertEq(rewards.claimable(solvers[0]), REWARD * 7000 / 10_000 * 6 / 10);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Finalized));
    }

    /// @dev M-7: the solutions are public before the eval spec, so a proposer that withholds the spec could take
    ///      the deltas for free; it loses the whole solver pool (700 ATN) instead of 10% of the minimum stake
    ///      (dc0035f: 10 ATN, and the spec came before the solutions).
    function test_fullRound_proposerThatNeverRevealsIsCancelled() public {
        uint256 budget = project.budgetOf(projectId);
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealSolution(taskId, solvers[0]);
        _revealSolution(taskId, solvers[1]); // solvers[2] never reveals
        _rollTo(uint256(_deadlines(taskId).gtRevealEnd) + 1);
        uint256 treasuryBefore = token.balanceOf(address(timelock));
        tasks.finalize(taskId);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Cancelled));
        assertEq(project.budgetOf(projectId), budget);
        assertEq(project.reservedOf(projectId), 0);
        assertEq(tasks.heldBy(projectId, proposer), 0);
        assertEq(staking.stakeOf(proposer), 1000e18 - 700e18); // the solver pool: 70% of the 1,000 ATN reward
        // The revealed solvers keep their stake; the one that did not reveal loses its seat's share.
        assertEq(staking.stakeOf(solvers[0]), 100e18);
        assertEq(staking.stakeOf(solvers[1]), 100e18);
        assertEq(staking.stakeOf(solvers[2]), 0);
        assertEq(token.balanceOf(address(timelock)) - treasuryBefore, 700e18 + 100e18);
    }

    function test_fullRound_proposerSlashIsCappedByItsStake() public {
        uint256 taskId = _proposeFor(projectId, 2000e18); // solver pool 1,400 ATN > the proposer's 1,000 ATN
        _commit(taskId, solvers[0]);
        _revealSolution(taskId, solvers[0]);
        _rollTo(uint256(_deadlines(taskId).gtRevealEnd) + 1);
        tasks.finalize(taskId);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Cancelled));
        assertEq(staking.stakeOf(proposer), 0);
    }

    function test_fullRound_tooFewVotesClosesAndReturnsReward() public {
        uint256 budget = project.budgetOf(projectId);
        uint256 taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        uint16[] memory row = _scores3(1, 1, 1);
        _commitVote(taskId, coords[0], row);
        _commitVote(taskId, coords[1], row);
        _revealVote(taskId, coords[0], row); // coords[1] never reveals
        _rollToFinalize(taskId);
        tasks.finalize(taskId);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Closed));
        assertEq(project.budgetOf(projectId), budget);
        assertEq(staking.stakeOf(coords[1]), 1000e18 - 5e18); // 1% of 500
        assertEq(staking.stakeOf(coords[0]), 1000e18);
        assertEq(rewards.settled(taskId), false);
    }

    function test_fullRound_noSolversClosesAfterCommitWindow() public {
        uint256 budget = project.budgetOf(projectId);
        uint256 taskId = _propose();
        assertEq(project.budgetOf(projectId), budget - REWARD);
        _rollTo(uint256(_deadlines(taskId).commitEnd) + 1);
        vm.expectEmit(true, true, false, true, address(tasks));
        emit ITaskManager.TaskClosed(taskId, projectId, ITaskManager.CloseReason.NoCommits, REWARD);
        tasks.finalize(taskId);
        assertEq(project.budgetOf(projectId), budget);
        assertEq(staking.stakeOf(proposer), 1000e18); // not the proposer's fault
    }

    function test_fullRound_noRevealedSolutionsClosesAfterRevealWindow() public {
        uint256 taskId = _propose();
        _commitAll(taskId);
        _rollTo(uint256(_deadlines(taskId).solRevealEnd));
        vm.expectRevert(
            abi.encodeWithSelector(ITaskManager.TaskManagerTooEarly.selector, taskId, _deadlines(taskId).solRevealEnd)
        );
        tasks.finalize(taskId);
        _rollTo(uint256(_deadlines(taskId).solRevealEnd) + 1);
        tasks.finalize(taskId);
        assertEq(uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Closed));
        assertEq(staking.stakeOf(solvers[0]), 0); // its seat's share (≈ 233 ATN) is more than its stake
        assertEq(staking.stakeOf(proposer), 1000e18); // nothing to judge: not the proposer's fault
    }

    function test_fullRound_unpublishedFeeReturnsToBudget() public {
        uint256 taskId = _fullRound(_agreeingRows());
        uint256 fee = rewards.pendingFee(taskId).amount;
        assertEq(fee, REWARD / 10);
        uint256 budget = project.budgetOf(projectId);
        _rollTo(uint256(rewards.pendingFee(taskId).deadline) + 1);
        rewards.releaseExpiredAggregatorFee(taskId);
        assertEq(project.budgetOf(projectId), budget + fee);
        assertEq(project.reservedOf(projectId), 0);
    }

    function test_fullRound_twoRoundsCarryBonds() public {
        _fullRound(_agreeingRows());
        uint256 b1 = rewards.bondOf(projectId, coords[0], solvers[0]);
        _fullRound(_agreeingRows());
        uint256 b2 = rewards.bondOf(projectId, coords[0], solvers[0]);
        assertGt(b1, 0);
        assertGt(b2, b1); // EMA moves towards the column-normalized share (1/3)
    }
}
