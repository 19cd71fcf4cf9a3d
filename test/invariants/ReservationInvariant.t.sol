// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {console2} from "forge-std/console2.sol";
import {World} from "../utils/World.sol";
import {ATNToken} from "../../contracts/ATNToken.sol";
import {Project} from "../../contracts/Project.sol";
import {Rewards} from "../../contracts/Rewards.sol";
import {TaskManager} from "../../contracts/TaskManager.sol";
import {ParticipantStaking} from "../../contracts/ParticipantStaking.sol";
import {ModelShardRegistry} from "../../contracts/ModelShardRegistry.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";
import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";
import {IModelShardRegistry, ModelStatus} from "../../contracts/interfaces/IModelShardRegistry.sol";

/// @notice Random walks over two projects and up to two TaskManagers (the original, and a replacement started at
///         `old.taskCount() + 1` and wired by the Timelock) through every way money moves: proposals, commits,
///         reveals, votes, finalize, model publication and attestation (which pays aggregator fees through
///         `Rewards.payAggregatorFee`), expired fee releases, claims and extra funding.
/// @dev Every task ever proposed is listed (manager, id, project), so the invariants can recompute each
///      project's reservation from the task states and Rewards' fee records alone.
contract ReservationHandler is Test {
    struct TaskRef {
        uint8 mgr;
        uint64 id;
        uint64 pid;
    }

    uint256 internal constant MAX_TASKS = 16;
    uint256 internal constant MAX_MODELS = 24;
    bytes32 internal constant EVAL = keccak256("eval-spec");
    bytes32 internal constant SALT = keccak256("gt-salt");

    ATNToken internal immutable token;
    ParticipantStaking internal immutable staking;
    Project internal immutable project;
    Rewards internal immutable rewards;
    ModelShardRegistry internal immutable shards;
    address internal immutable timelock;
    address internal immutable proposer;
    address internal immutable aggregator;
    address internal immutable funder;

    TaskManager[] public managers;
    uint256[] public pids;
    address[] internal solvers;
    address[] internal coords;
    address[] public claimants;
    TaskRef[] public refs;
    bytes32[] public roots;
    /// @dev Scores a coordinator committed, per task reference.
    mapping(uint256 ref => mapping(address => uint16[])) internal _votes;

    // ghosts
    uint256 public ghostFinalized;
    uint256 public ghostClosed;
    uint256 public ghostAccepted;
    uint256 public ghostFeesPaid;
    uint256 public ghostFeesReleased;
    /// @dev A task whose windows had all passed could not be finalized (it and its reservation are stuck).
    bool public ghostStuck;
    bytes public ghostStuckReason;
    uint256 public ghostStuckId;

    struct Wiring {
        TaskManager tasks;
        ATNToken token;
        ParticipantStaking staking;
        Project project;
        Rewards rewards;
        ModelShardRegistry shards;
        address timelock;
        address proposer;
        address aggregator;
        address funder;
    }

    constructor(
        Wiring memory w,
        uint256[] memory pids_,
        address[] memory solvers_,
        address[] memory coords_
    ) {
        managers.push(w.tasks);
        token = w.token;
        staking = w.staking;
        project = w.project;
        rewards = w.rewards;
        shards = w.shards;
        timelock = w.timelock;
        proposer = w.proposer;
        aggregator = w.aggregator;
        funder = w.funder;
        pids = pids_;
        solvers = solvers_;
        coords = coords_;
        for (uint256 i; i < solvers_.length; ++i) {
            claimants.push(solvers_[i]);
        }
        for (uint256 i; i < coords_.length; ++i) {
            claimants.push(coords_[i]);
        }
        claimants.push(w.proposer);
        claimants.push(w.aggregator);
    }

    // ------------------------------------------------------------------ views for the invariants

    function refCount() external view returns (uint256) {
        return refs.length;
    }

    function claimantCount() external view returns (uint256) {
        return claimants.length;
    }

    function pidCount() external view returns (uint256) {
        return pids.length;
    }

    function managerCount() external view returns (uint256) {
        return managers.length;
    }

    function refAt(uint256 k) external view returns (TaskManager m, uint256 id, uint256 pid) {
        TaskRef memory r = refs[k];
        return (managers[r.mgr], r.id, r.pid);
    }

    // ------------------------------------------------------------------ helpers

    function _ref(uint256 seed) internal view returns (bool ok, uint256 k, TaskManager m, uint256 id) {
        if (refs.length == 0) return (false, 0, TaskManager(address(0)), 0);
        k = seed % refs.length;
        TaskRef memory r = refs[k];
        return (true, k, managers[r.mgr], r.id);
    }

    function _rollPast(TaskManager m, uint256 id, uint8 which) internal {
        ITaskManager.Deadlines memory d = m.getTask(id).deadlines;
        uint256 opens = which == 0
            ? d.commitEnd
            : which == 1 ? d.gtRevealEnd : which == 2 ? d.voteCommitEnd : d.solRevealEnd;
        if (block.number <= opens) vm.roll(opens + 1);
    }

    function _solCommit(uint256 id, address s) internal pure returns (bytes32) {
        return keccak256(abi.encode(id, s, keccak256(abi.encode("delta", s)), keccak256(abi.encode("manifest", s)), bytes32("s")));
    }

    // ------------------------------------------------------------------ round actions

    function propose(uint256 mgrSeed, uint256 pidSeed, uint256 reward) public returns (bool ok, uint256 k) {
        if (refs.length >= MAX_TASKS) return (false, 0);
        uint8 mgr = uint8(mgrSeed % managers.length);
        uint256 pid = pids[pidSeed % pids.length];
        reward = bound(reward, 1, 3000e18);
        vm.prank(proposer);
        try managers[mgr].proposeTask(
            pid, keccak256("spec"), keccak256(abi.encode(proposer, pid, EVAL, SALT)), reward
        ) returns (
            uint256 id
        ) {
            refs.push(TaskRef(mgr, uint64(id), uint64(pid)));
            return (true, refs.length - 1);
        } catch {}
    }

    function commit(uint256 seed, uint256 who) public {
        (bool ok,, TaskManager m, uint256 id) = _ref(seed);
        if (!ok) return;
        address s = solvers[who % solvers.length];
        vm.prank(s);
        try m.commitSolution(id, _solCommit(id, s)) {} catch {}
    }

    function revealGt(uint256 seed) public {
        (bool ok,, TaskManager m, uint256 id) = _ref(seed);
        if (!ok) return;
        _rollPast(m, id, 3);
        vm.prank(proposer);
        try m.revealGroundTruth(id, EVAL, SALT) {} catch {}
    }

    function revealSolution(uint256 seed, uint256 who) public {
        (bool ok,, TaskManager m, uint256 id) = _ref(seed);
        if (!ok) return;
        _rollPast(m, id, 0);
        address s = solvers[who % solvers.length];
        vm.prank(s);
        try m.revealSolution(id, keccak256(abi.encode("delta", s)), keccak256(abi.encode("manifest", s)), bytes32("s")) {} catch {}
    }

    function commitVote(uint256 seed, uint256 who, uint256 scoreSeed) public {
        (bool ok, uint256 k, TaskManager m, uint256 id) = _ref(seed);
        if (!ok) return;
        _rollPast(m, id, 1);
        address c = coords[who % coords.length];
        uint256 n = m.getTask(id).numRevealed;
        uint16[] memory scores = new uint16[](n);
        for (uint256 j; j < n; ++j) {
            scores[j] = uint16(uint256(keccak256(abi.encode(scoreSeed, j))));
        }
        vm.prank(c);
        try m.commitVote(id, keccak256(abi.encode(id, c, scores, bytes32("v")))) {
            _votes[k][c] = scores;
        } catch {}
    }

    function revealVote(uint256 seed, uint256 who) public {
        (bool ok, uint256 k, TaskManager m, uint256 id) = _ref(seed);
        if (!ok) return;
        _rollPast(m, id, 2);
        address c = coords[who % coords.length];
        vm.prank(c);
        try m.revealVote(id, _votes[k][c], bytes32("v")) {} catch {}
    }

    function finalize(uint256 seed) public {
        (bool ok,, TaskManager m, uint256 id) = _ref(seed);
        if (!ok) return;
        ITaskManager.TaskView memory t = m.getTask(id);
        bool open =
            t.state == ITaskManager.TaskState.Open || t.state == ITaskManager.TaskState.GroundTruthRevealed;
        try m.finalize(id) returns (ITaskManager.TaskState st) {
            if (st == ITaskManager.TaskState.Finalized) ++ghostFinalized;
            else ++ghostClosed;
        } catch (bytes memory reason) {
            // Past the last window every open task must be able to end.
            if (open && block.number > t.deadlines.voteRevealEnd && !ghostStuck) {
                ghostStuck = true;
                ghostStuckReason = reason;
                ghostStuckId = id;
            }
        }
    }

    /// @dev A whole round of a fresh task on a random manager and project, so that every run settles tasks.
    function fullRound(uint256 mgrSeed, uint256 pidSeed, uint256 reward, uint256 seed) external {
        (bool ok, uint256 k) = propose(mgrSeed, pidSeed, reward);
        if (!ok) return;
        uint256 nS = seed % solvers.length + 1;
        for (uint256 i; i < nS; ++i) {
            commit(k, i);
        }
        for (uint256 i; i < nS; ++i) {
            if ((seed >> (8 + i)) & 3 != 0) revealSolution(k, i);
        }
        revealGt(k);
        for (uint256 i; i < coords.length; ++i) {
            commitVote(k, i, seed >> i);
        }
        for (uint256 i; i < coords.length; ++i) {
            if ((seed >> (20 + i)) & 7 != 0) revealVote(k, i);
        }
        TaskRef memory r = refs[k];
        vm.roll(uint256(managers[r.mgr].getTask(r.id).deadlines.voteRevealEnd) + 1);
        finalize(k);
    }

    function roll(uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 1, 40));
    }

    function fund(uint256 pidSeed, uint256 amount) external {
        amount = bound(amount, 1, 5000e18);
        uint256 pid = pids[pidSeed % pids.length];
        vm.startPrank(funder);
        token.approve(address(project), amount);
        project.fund(pid, amount);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ fees

    function releaseFee(uint256 seed) external {
        (bool ok,,, uint256 id) = _ref(seed);
        if (!ok) return;
        try rewards.releaseExpiredAggregatorFee(id) returns (uint256 amount) {
            ghostFeesReleased += amount;
        } catch {}
    }

    /// @dev Publishes a model on a project's head listing up to four random task ids (any manager, any project,
    ///      settled or not: fees of the wrong project or of unsettled tasks fail inside the acceptance, skipped).
    function publish(uint256 pidSeed, uint256 pick) public returns (bool ok, bytes32 root) {
        if (roots.length >= MAX_MODELS || refs.length == 0) return (false, 0);
        uint256 pid = pids[pidSeed % pids.length];
        root = keccak256(abi.encode("model", roots.length, pid));
        uint256 n = pick % 4 + 1;
        uint256[] memory ids = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            uint256 r = uint256(keccak256(abi.encode(pick, j)));
            uint256 k = r % refs.length;
            // Mostly a settled task of this project (scan forward from k), sometimes any task at all.
            if ((r >> 128) % 4 != 0) {
                for (uint256 step; step < refs.length; ++step) {
                    TaskRef memory c = refs[(k + step) % refs.length];
                    if (c.pid == pid && managers[c.mgr].taskState(c.id) == ITaskManager.TaskState.Finalized) {
                        k = (k + step) % refs.length;
                        break;
                    }
                }
            }
            ids[j] = refs[k].id;
        }
        IModelShardRegistry.ModelManifest memory mf = IModelShardRegistry.ModelManifest({
            projectId: pid,
            root: root,
            manifestHash: keccak256(abi.encode(root)),
            parentRoot: project.modelRoot(pid),
            totalSize: 1,
            shardSize: 1,
            dataShards: 1,
            parityShards: 0
        });
        vm.prank(aggregator);
        try shards.publishModel(mf, ids) {
            roots.push(root);
            ok = true;
        } catch {}
    }

    /// @dev The honest path: a model of settled tasks is published and every coordinator attests it at once.
    function publishAndAccept(uint256 pidSeed, uint256 pick) external {
        (bool ok, bytes32 root) = publish(pidSeed, pick);
        if (!ok) return;
        uint256 before = rewards.totalClaimable();
        for (uint256 i; i < coords.length && shards.modelStatus(root) == ModelStatus.Pending; ++i) {
            vm.prank(coords[i]);
            try shards.attestModel(root, keccak256(abi.encode(root)), aggregator) {} catch {}
        }
        if (shards.modelStatus(root) == ModelStatus.Accepted) {
            ++ghostAccepted;
            ghostFeesPaid += rewards.totalClaimable() - before;
        }
    }

    function attest(uint256 rootSeed, uint256 who) external {
        if (roots.length == 0) return;
        // Mostly one of the three latest models (those can still be on their project's head).
        uint256 back =
            rootSeed % 4 == 0 ? rootSeed % roots.length : rootSeed % (roots.length < 3 ? roots.length : 3);
        bytes32 root = roots[roots.length - 1 - back];
        address c = coords[who % coords.length];
        uint256 before = rewards.totalClaimable();
        vm.prank(c);
        try shards.attestModel(root, keccak256(abi.encode(root)), aggregator) {
            if (shards.modelStatus(root) == ModelStatus.Accepted) {
                ++ghostAccepted;
                ghostFeesPaid += rewards.totalClaimable() - before;
            }
        } catch {}
    }

    function claim(uint256 who) external {
        address a = claimants[who % claimants.length];
        vm.prank(a);
        try rewards.claim() {} catch {}
    }

    // ------------------------------------------------------------------ governance

    /// @dev L-3: the Timelock retires the TaskManager and deploys its replacement, which continues the old one's
    ///      ids, and gives it the four roles. The old manager keeps its roles so that its tasks in flight can still
    ///      end; proposals on it revert from now on.
    function replaceManager() external {
        if (managers.length > 1) return;
        TaskManager old = managers[0];
        vm.prank(timelock);
        old.retire();
        TaskManager next = new TaskManager(timelock, staking, project, rewards, old);
        vm.startPrank(timelock);
        staking.grantRole(staking.BINDER_ROLE(), address(next));
        staking.grantRole(staking.SLASHER_ROLE(), address(next));
        project.grantRole(project.SPENDER_ROLE(), address(next));
        rewards.grantRole(rewards.TASK_MANAGER_ROLE(), address(next));
        vm.stopPrank();
        managers.push(next);
    }
}

/// @notice The cross-contract reservation invariant (review section 3.3): for every project,
///         `reservedOf(p) == Σ reward of its Open/GroundTruthRevealed tasks + Σ pending aggregator fees of its
///         settled tasks`, across both TaskManagers; Rewards holds every claim and `totalClaimable` is the sum of
///         the claims; Project holds every budget and reservation; and (L-3) no task whose windows have all passed
///         is ever stuck.
/// forge-config: default.invariant.depth = 100
contract ReservationInvariantTest is World {
    ReservationHandler internal handler;
    uint256 internal secondProject;

    function setUp() public override {
        super.setUp();
        secondProject = _createProject(owner, PROJECT_FUNDING / 2);
        vm.startPrank(address(timelock));
        project.setTaskLimits(projectId, 16, 2);
        project.setTaskLimits(secondProject, 16, 1);
        // A publish window long enough for a model to be published and attested before the fees expire, short
        // enough for the walk to reach expiry too.
        IProject.Windows memory w = IProject.Windows(W_COMMIT, W_GT, W_SOL, W_VCOMMIT, W_VREVEAL, 100);
        project.setWindows(projectId, w);
        project.setWindows(secondProject, w);
        vm.stopPrank();
        uint256[] memory pids = new uint256[](2);
        pids[0] = projectId;
        pids[1] = secondProject;
        handler = new ReservationHandler(
            ReservationHandler.Wiring(
                tasks,
                token,
                staking,
                project,
                rewards,
                shards,
                address(timelock),
                proposer,
                aggregator,
                funder
            ),
            pids,
            solvers,
            coords
        );
        targetContract(address(handler));
    }

    function afterInvariant() external view {
        console2.log("tasks", handler.refCount(), "managers", handler.managerCount());
        console2.log("finalized", handler.ghostFinalized(), "closed", handler.ghostClosed());
        console2.log("models accepted", handler.ghostAccepted());
        console2.log("fees paid", handler.ghostFeesPaid(), "released", handler.ghostFeesReleased());
    }

    /// reserved(p) == Σ reward(Open | GroundTruthRevealed tasks of p) + Σ pending aggregator fee(settled tasks of p);
    /// Rewards holds every claim and totalClaimable is their sum; Project covers every budget and reservation.
    /// (One invariant function, so that one campaign checks all three after every call.)
    function invariant_reservationsAndBalances() public view {
        _checkReservations();
        _checkRewards();
        _checkProject();
    }

    function _checkReservations() internal view {
        uint256 nP = handler.pidCount();
        uint256 nT = handler.refCount();
        for (uint256 q; q < nP; ++q) {
            uint256 pid = handler.pids(q);
            uint256 expected;
            for (uint256 k; k < nT; ++k) {
                (TaskManager m, uint256 id, uint256 taskPid) = handler.refAt(k);
                if (taskPid != pid) continue;
                ITaskManager.TaskView memory t = m.getTask(id);
                if (
                    t.state == ITaskManager.TaskState.Open
                        || t.state == ITaskManager.TaskState.GroundTruthRevealed
                ) {
                    expected += t.reward;
                } else if (t.state == ITaskManager.TaskState.Finalized) {
                    IRewards.PendingFee memory f = rewards.pendingFee(id);
                    assertEq(f.projectId, pid, "a settled task's fee record names another project");
                    expected += f.amount;
                }
            }
            assertEq(project.reservedOf(pid), expected, "reserved != open rewards + pending fees");
        }
    }

    function _checkRewards() internal view {
        uint256 sum;
        uint256 n = handler.claimantCount();
        for (uint256 i; i < n; ++i) {
            sum += rewards.claimable(handler.claimants(i));
        }
        assertEq(rewards.totalClaimable(), sum, "totalClaimable != sum of the claims");
        assertGe(
            token.balanceOf(address(rewards)), rewards.totalClaimable(), "Rewards cannot pay every claim"
        );
    }

    function _checkProject() internal view {
        uint256 held;
        uint256 nP = handler.pidCount();
        for (uint256 q; q < nP; ++q) {
            uint256 pid = handler.pids(q);
            assertEq(
                project.fundedOf(pid),
                project.budgetOf(pid) + project.reservedOf(pid) + project.paidOf(pid),
                "funded != budget + reserved + paid"
            );
            held += project.budgetOf(pid) + project.reservedOf(pid);
        }
        assertGe(token.balanceOf(address(project)), held, "Project cannot cover its budgets and reservations");
    }

    /// L-3: a task whose every window has passed can always be finalized (else its reward stays reserved forever).
    function invariant_L3_everyTaskCanEnd() public view {
        if (handler.ghostStuck()) {
            console2.log("stuck task id", handler.ghostStuckId());
            console2.logBytes(handler.ghostStuckReason());
        }
        assertFalse(handler.ghostStuck(), "a task past its windows cannot be finalized");
    }
}
