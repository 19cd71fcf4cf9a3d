// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {console2} from "forge-std/console2.sol";
import {World} from "../utils/World.sol";
import {ATNToken} from "../../contracts/ATNToken.sol";
import {Project} from "../../contracts/Project.sol";
import {Rewards} from "../../contracts/Rewards.sol";
import {TaskManager} from "../../contracts/TaskManager.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";

/// @notice Drives random round actions through every window of several concurrent tasks.
contract RoundHandler is Test {
    TaskManager internal immutable tasks;
    Rewards internal immutable rewards;
    ATNToken internal immutable token;
    uint256 internal immutable projectId;
    address internal immutable proposer;
    address[] internal solvers;
    address[] internal coords;
    address[] internal claimants;

    bytes32 internal constant EVAL = keccak256("eval-spec");
    bytes32 internal constant SALT = keccak256("gt-salt");

    uint256[] public taskIds;
    mapping(uint256 => uint8) public ghostState;
    mapping(uint256 => mapping(address => uint16[])) internal _votes;
    bool public ghostWentBackwards;
    bool public ghostDoubleClaim;
    uint256 public ghostClaimed;
    uint256 public ghostCredited;
    mapping(uint8 => uint256) public ghostEnded;

    constructor(
        TaskManager tasks_,
        Rewards rewards_,
        ATNToken token_,
        uint256 projectId_,
        address proposer_,
        address[] memory solvers_,
        address[] memory coords_,
        address aggregator_
    ) {
        tasks = tasks_;
        rewards = rewards_;
        token = token_;
        projectId = projectId_;
        proposer = proposer_;
        solvers = solvers_;
        coords = coords_;
        claimants = solvers_;
        for (uint256 i; i < coords_.length; ++i) {
            claimants.push(coords_[i]);
        }
        claimants.push(proposer_);
        claimants.push(aggregator_);
    }

    function _task(uint256 seed) internal view returns (uint256) {
        return taskIds.length == 0 ? 0 : taskIds[seed % taskIds.length];
    }

    function _after() internal {
        for (uint256 k; k < taskIds.length; ++k) {
            uint256 id = taskIds[k];
            uint8 s = uint8(tasks.taskState(id));
            uint8 prev = ghostState[id];
            // Rank: None 0 < Open 1 < GroundTruthRevealed 2 < terminal (Finalized/Closed/Cancelled); terminal is final.
            bool prevTerminal = prev >= uint8(ITaskManager.TaskState.Finalized);
            if (s < prev && !(s >= uint8(ITaskManager.TaskState.Finalized) && prevTerminal)) {
                ghostWentBackwards = true;
            }
            if (prevTerminal && s != prev) ghostWentBackwards = true;
            ghostState[id] = s;
        }
    }

    function propose(uint256 reward) external {
        if (taskIds.length >= 12) return;
        reward = bound(reward, 1, 500e18);
        vm.prank(proposer);
        try tasks.proposeTask(
            projectId, keccak256("spec"), keccak256(abi.encode(proposer, projectId, EVAL, SALT)), reward
        ) returns (
            uint256 id
        ) {
            taskIds.push(id);
        } catch {}
        _after();
    }

    function commit(uint256 seed, uint256 who) external {
        uint256 id = _task(seed);
        address s = solvers[who % solvers.length];
        vm.prank(s);
        try tasks.commitSolution(
            id, keccak256(abi.encode(id, s, keccak256(abi.encode(s)), keccak256(abi.encode("manifest", s)), bytes32("s")))
        ) {}
            catch {}
        _after();
    }

    /// @dev Window-aware actions roll forward to their window's opening when called early, so random walks
    ///      reach every phase; calls after a window still exercise the late paths.
    function _rollPast(uint256 id, uint8 which) internal {
        if (id == 0) return;
        ITaskManager.Deadlines memory d = tasks.getTask(id).deadlines;
        uint256 opens = which == 0
            ? d.commitEnd
            : which == 1 ? d.gtRevealEnd : which == 2 ? d.voteCommitEnd : d.solRevealEnd;
        if (block.number <= opens) vm.roll(opens + 1);
    }

    function revealGt(uint256 seed) external {
        uint256 id = _task(seed);
        _rollPast(id, 3);
        vm.prank(proposer);
        try tasks.revealGroundTruth(id, EVAL, SALT) {} catch {}
        _after();
    }

    function revealSolution(uint256 seed, uint256 who) external {
        uint256 id = _task(seed);
        _rollPast(id, 0);
        address s = solvers[who % solvers.length];
        vm.prank(s);
        try tasks.revealSolution(id, keccak256(abi.encode(s)), keccak256(abi.encode("manifest", s)), bytes32("s")) {} catch {}
        _after();
    }

    function commitVote(uint256 seed, uint256 who, uint256 scoreSeed) external {
        uint256 id = _task(seed);
        _rollPast(id, 1);
        address c = coords[who % coords.length];
        uint256 n = id == 0 ? 0 : tasks.getTask(id).numRevealed;
        uint16[] memory scores = new uint16[](n);
        for (uint256 k; k < n; ++k) {
            scores[k] = uint16(uint256(keccak256(abi.encode(scoreSeed, k))));
        }
        vm.prank(c);
        try tasks.commitVote(id, keccak256(abi.encode(id, c, scores, bytes32("v")))) {
            _votes[id][c] = scores;
        } catch {}
        _after();
    }

    function revealVote(uint256 seed, uint256 who) external {
        uint256 id = _task(seed);
        _rollPast(id, 2);
        address c = coords[who % coords.length];
        vm.prank(c);
        try tasks.revealVote(id, _votes[id][c], bytes32("v")) {} catch {}
        _after();
    }

    /// @dev A whole round of a fresh task with random participation and scores, so every run settles tasks.
    function fullRound(uint256 reward, uint256 seed) external {
        if (taskIds.length >= 12) return;
        reward = bound(reward, 1, 500e18);
        vm.prank(proposer);
        uint256 id = tasks.proposeTask(
            projectId, keccak256("spec"), keccak256(abi.encode(proposer, projectId, EVAL, SALT)), reward
        );
        taskIds.push(id);
        _after();
        uint256 nS = seed % solvers.length + 1;
        for (uint256 i; i < nS; ++i) {
            this.commit(taskIds.length - 1, i);
        }
        for (uint256 i; i < nS; ++i) {
            if ((seed >> (8 + i)) & 3 != 0) this.revealSolution(taskIds.length - 1, i);
        }
        this.revealGt(taskIds.length - 1);
        for (uint256 i; i < coords.length; ++i) {
            this.commitVote(taskIds.length - 1, i, seed >> i);
        }
        for (uint256 i; i < coords.length; ++i) {
            if ((seed >> (20 + i)) & 3 != 0) this.revealVote(taskIds.length - 1, i);
        }
        ITaskManager.Deadlines memory d = tasks.getTask(id).deadlines;
        vm.roll(uint256(d.voteRevealEnd) + 1);
        this.finalize(taskIds.length - 1);
    }

    function roll(uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 1, 12));
        _after();
    }

    function finalize(uint256 seed) external {
        uint256 id = _task(seed);
        uint256 before = rewards.totalClaimable();
        try tasks.finalize(id) returns (ITaskManager.TaskState st) {
            ghostCredited += rewards.totalClaimable() - before;
            ghostEnded[uint8(st)] += 1;
        } catch {}
        _after();
    }

    function releaseFee(uint256 seed) external {
        try rewards.releaseExpiredAggregatorFee(_task(seed)) {} catch {}
        _after();
    }

    function claim(uint256 who) external {
        address a = claimants[who % claimants.length];
        uint256 owed = rewards.claimable(a);
        uint256 bal = token.balanceOf(a);
        vm.prank(a);
        try rewards.claim() returns (uint256 amount) {
            ghostClaimed += amount;
            if (amount != owed || token.balanceOf(a) - bal != amount || rewards.claimable(a) != 0) {
                ghostDoubleClaim = true;
            }
        } catch {}
        vm.prank(a);
        try rewards.claim() {
            ghostDoubleClaim = true; // a second claim in a row must fail
        } catch {}
        _after();
    }

    function taskCount() external view returns (uint256) {
        return taskIds.length;
    }
}

/// forge-config: default.invariant.depth = 100
contract RoundInvariantTest is World {
    RoundHandler internal handler;

    function setUp() public override {
        super.setUp();
        vm.prank(address(timelock));
        project.setTaskLimits(projectId, 16, 1);
        handler = new RoundHandler(tasks, rewards, token, projectId, proposer, solvers, coords, aggregator);
        targetContract(address(handler));
    }

    function afterInvariant() external view {
        // Visibility into how far the random walks got (-vv): finalized / closed / cancelled counts.
        console2.log("finalized", handler.ghostEnded(uint8(ITaskManager.TaskState.Finalized)));
        console2.log("closed", handler.ghostEnded(uint8(ITaskManager.TaskState.Closed)));
        console2.log("cancelled", handler.ghostEnded(uint8(ITaskManager.TaskState.Cancelled)));
    }

    function invariant_taskStateOnlyMovesForward() public view {
        assertFalse(handler.ghostWentBackwards());
    }

    function invariant_noRewardClaimedTwice() public view {
        assertFalse(handler.ghostDoubleClaim());
        assertLe(handler.ghostClaimed(), handler.ghostCredited());
        assertEq(handler.ghostCredited() - handler.ghostClaimed(), rewards.totalClaimable());
        assertEq(token.balanceOf(address(rewards)), rewards.totalClaimable());
    }

    function invariant_projectNeverOverpays() public view {
        assertEq(
            project.fundedOf(projectId),
            project.budgetOf(projectId) + project.reservedOf(projectId) + project.paidOf(projectId)
        );
        assertEq(
            token.balanceOf(address(project)), project.budgetOf(projectId) + project.reservedOf(projectId)
        );
        assertLe(project.paidOf(projectId), PROJECT_FUNDING);
    }
}
