// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console2} from "forge-std/console2.sol";
import {World} from "../utils/World.sol";
import {Role} from "../../contracts/interfaces/IParticipantStaking.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";
import {IModelShardRegistry, ModelStatus} from "../../contracts/interfaces/IModelShardRegistry.sol";

/// @notice Measured gas of one whole training round as the number of solvers S and coordinators C grows
///         (3×3, 8×3, 16×3, 8×8, 16×16). Every round transaction (propose, S commitSolution, S revealSolution,
///         revealGroundTruth, C commitVote, C revealVote, finalize, publishModel, per-coordinator attestModel
///         until the model is accepted) runs with every protocol contract's storage cooled first, like `_tx` of
///         FullRound.t.sol, and is charged 21,000 intrinsic gas (calldata gas is logged apart, not added).
///         Every participant acts, so each phase closes early as on a live network, and the next phase is
///         reached by rolling to the closed phase's (moved) deadline + 1.
///         Three rounds run with the same participants: the first on fresh storage (first bonds, first
///         claimable balances, first contributor shares), the second in steady state (those slots are
///         non-zero already; each model builds on the previous one), the third with the bonds at their
///         fixed point as well (equal rows and stakes: the bond EMA moves from α/C to 1/C in the second round,
///         then stays, so the third writes no bond). Snapshots: `round_SxC` / `finalize_SxC` for the first
///         round, `roundSteady_SxC` / `finalizeSteady_SxC` for the second, `roundThird_SxC` /
///         `finalizeThird_SxC` for the third.
contract RoundScalingTest is World {
    uint256 internal constant K_PROPOSE = 0;
    uint256 internal constant K_COMMIT = 1;
    uint256 internal constant K_REVEAL = 2;
    uint256 internal constant K_GT = 3;
    uint256 internal constant K_VCOMMIT = 4;
    uint256 internal constant K_VREVEAL = 5;
    uint256 internal constant K_FINALIZE = 6;
    uint256 internal constant K_PUBLISH = 7;
    uint256 internal constant K_ATTEST = 8;
    uint256 internal constant N_KINDS = 9;

    uint256[N_KINDS] internal _kindGas;
    uint256[N_KINDS] internal _kindCount;
    uint256[N_KINDS] internal _kindMax;
    uint256 internal _calldataGas;
    /// @dev Gas of each attestModel of the current round, in order (the k-th re-reads the k - 1 earlier attesters).
    string internal _attestSeq;

    struct RoundGas {
        uint256 execution; // cold execution gas of all transactions
        uint256 txs;
        uint256 total; // execution + 21,000 per transaction
        uint256 finalize; // cold execution gas of finalize alone
        uint256 calldataGas; // EIP-2028 calldata gas of all transactions (not in `total`)
    }

    function test_roundGas_3x3() public {
        _measure(3, 3);
    }

    function test_roundGas_8x3() public {
        _measure(8, 3);
    }

    function test_roundGas_16x3() public {
        _measure(16, 3);
    }

    function test_roundGas_8x8() public {
        _measure(8, 8);
    }

    function test_roundGas_16x16() public {
        _measure(16, 16);
    }

    // ------------------------------------------------------------------ measurement

    function _measure(uint256 nSolvers, uint256 nCoords) internal {
        _grow(nSolvers, nCoords);
        assertEq(staking.activeCount(Role.Solver), nSolvers);
        assertEq(staking.activeCount(Role.Coordinator), nCoords);
        string memory tag = string.concat(vm.toString(nSolvers), "x", vm.toString(nCoords));

        bytes32 root1 = keccak256(abi.encode("model", tag, uint256(1)));
        bytes32 root2 = keccak256(abi.encode("model", tag, uint256(2)));
        bytes32 root3 = keccak256(abi.encode("model", tag, uint256(3)));
        RoundGas memory first = _round(root1, GENESIS_ROOT, string.concat(tag, " first round"));
        RoundGas memory steady = _round(root2, root1, string.concat(tag, " steady-state (second) round"));
        RoundGas memory third =
            _round(root3, root2, string.concat(tag, " third round (bonds at their fixed point)"));

        vm.snapshotValue(string.concat("round_", tag), first.total);
        vm.snapshotValue(string.concat("finalize_", tag), first.finalize);
        vm.snapshotValue(string.concat("roundSteady_", tag), steady.total);
        vm.snapshotValue(string.concat("finalizeSteady_", tag), steady.finalize);
        vm.snapshotValue(string.concat("roundThird_", tag), third.total);
        vm.snapshotValue(string.concat("finalizeThird_", tag), third.finalize);
    }

    /// @dev Adds staked solvers and coordinators, named like World's, up to `nSolvers` / `nCoords`, and caps the
    ///      project's seats at `nSolvers` (minVotes stays World's 2).
    function _grow(uint256 nSolvers, uint256 nCoords) internal {
        for (uint256 i = solvers.length; i < nSolvers; ++i) {
            address s = makeAddr(string.concat("solver", vm.toString(i)));
            _stake(s, Role.Solver, 100e18);
            solvers.push(s);
        }
        for (uint256 i = coords.length; i < nCoords; ++i) {
            address c = makeAddr(string.concat("coordinator", vm.toString(i)));
            _stake(c, Role.Coordinator, 1000e18);
            coords.push(c);
        }
        vm.prank(address(timelock));
        // forge-lint: disable-next-line(unsafe-typecast)
        project.setTaskLimits(projectId, uint8(nSolvers), 2); // nSolvers <= 16
    }

    /// @dev One complete round in which every solver and coordinator acts; returns its gas.
    function _round(bytes32 root, bytes32 parent, string memory label) internal returns (RoundGas memory g) {
        for (uint256 k; k < N_KINDS; ++k) {
            _kindGas[k] = 0;
            _kindCount[k] = 0;
            _kindMax[k] = 0;
        }
        _calldataGas = 0;
        _attestSeq = "";

        uint256 taskId = _solverPhases(root);
        _votePhases(taskId);
        _rollToFinalize(taskId);
        _tx(K_FINALIZE, address(0xF1), address(tasks), abi.encodeCall(tasks.finalize, (taskId)));
        assertEq(
            uint8(tasks.taskState(taskId)), uint8(ITaskManager.TaskState.Finalized), "task not finalized"
        );
        assertTrue(rewards.settled(taskId));
        _publishAndAttest(taskId, root, parent);

        for (uint256 k; k < N_KINDS; ++k) {
            g.execution += _kindGas[k];
            g.txs += _kindCount[k];
        }
        g.total = g.execution + 21_000 * g.txs;
        g.finalize = _kindGas[K_FINALIZE];
        g.calldataGas = _calldataGas;
        _log(label, g);
    }

    /// @dev Proposal, every solver's commit and reveal, and the ground-truth reveal; returns the task id.
    function _solverPhases(bytes32 root) internal returns (uint256 taskId) {
        taskId = tasks.taskCount() + 1;
        bytes32 gt = _gtCommit(proposer, projectId, EVAL_SPEC, GT_SALT);
        _tx(
            K_PROPOSE,
            proposer,
            address(tasks),
            abi.encodeCall(tasks.proposeTask, (projectId, keccak256(abi.encode("spec", root)), gt, REWARD))
        );
        assertEq(tasks.taskCount(), taskId);

        vm.roll(block.number + 1); // solvers see the proposal one block later
        for (uint256 i; i < solvers.length; ++i) {
            _tx(
                K_COMMIT,
                solvers[i],
                address(tasks),
                abi.encodeCall(tasks.commitSolution, (taskId, _solCommit(taskId, solvers[i])))
            );
        }
        // Every active solver holds a seat: the commit phase closed at this block.
        assertEq(_deadlines(taskId).commitEnd, block.number, "commit phase did not close early");

        _rollToSolReveal(taskId);
        for (uint256 i; i < solvers.length; ++i) {
            address s = solvers[i];
            _tx(
                K_REVEAL,
                s,
                address(tasks),
                abi.encodeCall(tasks.revealSolution, (taskId, _delta(s), _manifest(s), _solSalt(s)))
            );
        }
        assertEq(_deadlines(taskId).solRevealEnd, block.number, "reveal phase did not close early");

        _rollToGtReveal(taskId);
        _tx(
            K_GT,
            proposer,
            address(tasks),
            abi.encodeCall(tasks.revealGroundTruth, (taskId, EVAL_SPEC, GT_SALT))
        );
        assertEq(_deadlines(taskId).gtRevealEnd, block.number, "ground-truth phase did not close early");
    }

    /// @dev Every coordinator commits, then reveals, the same score row.
    function _votePhases(uint256 taskId) internal {
        uint16[] memory row = _row(solvers.length);
        _rollToVoteCommit(taskId);
        for (uint256 i; i < coords.length; ++i) {
            _tx(
                K_VCOMMIT,
                coords[i],
                address(tasks),
                abi.encodeCall(tasks.commitVote, (taskId, _voteCommit(taskId, coords[i], row)))
            );
        }
        assertEq(_deadlines(taskId).voteCommitEnd, block.number, "vote commit phase did not close early");

        _rollToVoteReveal(taskId);
        for (uint256 i; i < coords.length; ++i) {
            _tx(
                K_VREVEAL,
                coords[i],
                address(tasks),
                abi.encodeCall(tasks.revealVote, (taskId, row, _voteSalt(coords[i])))
            );
        }
        assertEq(_deadlines(taskId).voteRevealEnd, block.number, "vote reveal phase did not close early");
    }

    /// @dev The aggregator publishes `root` on `parent` for the task; coordinators attest one by one, in order,
    ///      until it is accepted.
    function _publishAndAttest(uint256 taskId, bytes32 root, bytes32 parent) internal {
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        IModelShardRegistry.ModelManifest memory m = _modelManifest(root, parent);
        _tx(K_PUBLISH, aggregator, address(shards), abi.encodeCall(shards.publishModel, (m, ids)));
        for (uint256 i; i < coords.length && shards.modelStatus(root) == ModelStatus.Pending; ++i) {
            _tx(
                K_ATTEST,
                coords[i],
                address(shards),
                abi.encodeCall(shards.attestModel, (root, m.manifestHash, aggregator))
            );
        }
        assertEq(uint8(shards.modelStatus(root)), uint8(ModelStatus.Accepted), "model not accepted");
        assertEq(project.modelRoot(projectId), root);
        assertEq(rewards.pendingFee(taskId).amount, 0); // the aggregator fee was paid
        // Equal rows with a 65535 top score: the whole solver pool is paid, every coordinator earns a dividend.
        assertGt(rewards.claimable(solvers[solvers.length - 1]), 0);
        assertGt(rewards.claimable(coords[coords.length - 1]), 0);
    }

    /// @dev The same row for every coordinator: decreasing scores, the first solver at the target (65535).
    function _row(uint256 n) internal pure returns (uint16[] memory r) {
        r = new uint16[](n);
        for (uint256 j; j < n; ++j) {
            // forge-lint: disable-next-line(unsafe-typecast)
            r[j] = uint16(65_535 - 4000 * j); // j < 16: at least 5535
        }
    }

    /// @dev One "transaction", as FullRound.t.sol's `_tx` (World's `_coldCall`: storage cooled first); its
    ///      execution gas is added to `kind`.
    function _tx(uint256 kind, address from, address to, bytes memory data) internal {
        uint256 g = _coldCall(from, to, data);
        _kindGas[kind] += g;
        ++_kindCount[kind];
        if (g > _kindMax[kind]) _kindMax[kind] = g;
        if (kind == K_ATTEST) _attestSeq = string.concat(_attestSeq, " ", vm.toString(g));
        for (uint256 i; i < data.length; ++i) {
            _calldataGas += data[i] == 0 ? 4 : 16;
        }
    }

    function _log(string memory label, RoundGas memory g) internal view {
        console2.log("==", label);
        console2.log("  transactions:", g.txs);
        console2.log("  cold execution gas:", g.execution);
        console2.log("  with 21000 intrinsic per tx:", g.total);
        console2.log("  finalize (cold execution):", g.finalize);
        console2.log("  calldata gas (EIP-2028, not in the total):", g.calldataGas);
        string[N_KINDS] memory names = [
            "proposeTask",
            "commitSolution",
            "revealSolution",
            "revealGroundTruth",
            "commitVote",
            "revealVote",
            "finalize",
            "publishModel",
            "attestModel"
        ];
        for (uint256 k; k < N_KINDS; ++k) {
            uint256 n = _kindCount[k];
            if (n == 0) continue;
            console2.log(
                string.concat(
                    "  ",
                    names[k],
                    " x",
                    vm.toString(n),
                    ": mean ",
                    vm.toString(_kindGas[k] / n),
                    ", max ",
                    vm.toString(_kindMax[k]),
                    ", sum ",
                    vm.toString(_kindGas[k])
                )
            );
        }
        console2.log(string.concat("  attestModel one by one:", _attestSeq));
    }
}
