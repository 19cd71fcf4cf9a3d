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
import {YumaConsensus} from "../../contracts/libraries/YumaConsensus.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";
import {IParticipantStaking, Role} from "../../contracts/interfaces/IParticipantStaking.sol";

/// @notice Multi-actor adversarial rounds (review section 3.1; C-1, M-1, M-6, L-2) on one funded project.
///
/// Actors:
/// - the project's owner-approved honest proposer (uncapped) and a budget-locking proposer the owner approved
///   with a cap of LOCK_CAP per task, which never reveals its ground truth;
/// - a foreign proposer, staked but never approved, that tries to open tasks on the project;
/// - three honest solvers and three Sybil solvers; every solver has a hidden quality per task (honest: 1,000 to
///   65,535; Sybil: 0 half of the time, else at most 3,000 — junk or a near copy);
/// - three honest coordinators that score every revealed solution by its hidden quality (the ground truth), and
///   three Sybil coordinators that commit in the first block of the vote window and score their own Sybil
///   solvers 65,535 and everyone else 0, and reveal or not at will;
/// - anyone tops up stake or tries to unbond at any time (in particular between the reveals and finalize), and
///   anyone finalizes at any time.
///
/// Protocol assumption (what the consensus is designed for, kept by the handler): honest coordinators hold a
/// majority of the coordinator stake and are live: their stake (3 × 3,000 ATN, only ever lowered by missed-reveal
/// slashes of 5 ATN) stays above the Sybil coordinators' (capped at SYBIL_COORD_CAP in all), and they commit
/// together and reveal together, so that whenever a task settles their revealed votes carry more than half of the
/// voting stake. `ghostAssumptionBroken` records any settled task where that did not hold (it must not happen).
/// Vote and solver seats are never full here (6 of 16 each); seat competition is in test/security/Ordering.t.sol.
///
/// The oracle: before every finalize that can settle, the handler recomputes the expected outcome on its own —
/// quorum from the stakes it saw bound at commit (`stakeOf` when each vote was committed), consensus by
/// YumaConsensus.compute on those stakes, the scores it committed and the stored bonds, payouts by the documented
/// split — and compares every actor's credit after finalize with it.
contract AdversarialRoundHandler is Test {
    uint256 internal constant WAD = 1e18;
    uint256 internal constant BPS = 10_000;
    uint256 public constant LOCK_CAP = 500e18;
    uint256 public constant SYBIL_COORD_CAP = 6000e18;
    uint256 internal constant MAX_TASKS = 24;
    bytes32 internal constant EVAL = keccak256("eval-spec");
    bytes32 internal constant SALT = keccak256("gt-salt");

    ATNToken internal immutable token;
    ParticipantStaking internal immutable staking;
    Project internal immutable project;
    Rewards internal immutable rewards;
    TaskManager internal immutable tasks;
    uint256 internal immutable pid;

    address public proposer;
    address public locker;
    address public foreign;
    address[] public hSolvers;
    address[] public sSolvers;
    address[] public hCoords;
    address[] public sCoords;
    /// @dev solvers (honest, Sybil), coordinators (honest, Sybil), proposer, locker, foreign.
    address[] public actors;
    mapping(address => uint256) internal _actorIndexPlusOne;
    mapping(address => bool) public isSybilSolver;
    mapping(address => bool) public isHonestCoord;

    uint256[] public taskIds;
    mapping(uint256 id => mapping(address => uint16[])) internal _votes;
    mapping(uint256 id => mapping(address => uint256)) internal _boundStake;
    /// @dev The largest total coordinator stake seen at a vote commit of the task, in whole tokens rounded up.
    mapping(uint256 id => uint256) internal _coordStakeAtVote;
    mapping(uint256 id => mapping(address => bool)) internal _voteRevealed;

    // ghosts: (a)
    bool public ghostForeignProposed;
    bool public ghostLockerOverCap;
    bool public ghostAssumptionBroken;
    bool public ghostZeroScoredSybilPaid;
    bool public ghostSybilOverBound;
    uint256 public ghostSybilEarned;
    uint256 public ghostSybilBound;
    bool public ghostSolverPoolOverHonestTop;
    uint256 public ghostSolversPaid;
    uint256 public ghostSolverPoolNominal;
    // ghosts: (b)
    bool public ghostPayoutMismatch;
    bool public ghostOutcomeMismatch;
    bool public ghostSeatStakeMismatch;
    bool public ghostStuck;
    uint256 public ghostMismatchTask;
    address public ghostMismatchActor;
    uint256 public ghostMismatchExpected;
    uint256 public ghostMismatchActual;
    // ghosts: (c)
    bool public ghostUnbondedWhileBound;
    address public ghostUnbondedActor;
    // coverage
    uint256 public ghostSettled;
    uint256 public ghostSettledWithSybilVotes;
    uint256 public ghostTopUpsWhileBound;
    uint256 public ghostBoundUnbondRefused;
    uint256 public ghostClosed;

    struct Round {
        uint256 id;
        uint256 reward;
        address proposer;
        address[] solvers;
        address[] voters;
        uint256[] stakes;
        uint16[][] scores;
    }

    struct Actors {
        address proposer;
        address locker;
        address foreign;
        address[] hSolvers;
        address[] sSolvers;
        address[] hCoords;
        address[] sCoords;
    }

    constructor(
        ATNToken token_,
        ParticipantStaking staking_,
        Project project_,
        Rewards rewards_,
        TaskManager tasks_,
        uint256 pid_,
        Actors memory a
    ) {
        token = token_;
        staking = staking_;
        project = project_;
        rewards = rewards_;
        tasks = tasks_;
        pid = pid_;
        proposer = a.proposer;
        locker = a.locker;
        foreign = a.foreign;
        hSolvers = a.hSolvers;
        sSolvers = a.sSolvers;
        hCoords = a.hCoords;
        sCoords = a.sCoords;
        for (uint256 i; i < a.hSolvers.length; ++i) {
            _addActor(a.hSolvers[i]);
        }
        for (uint256 i; i < a.sSolvers.length; ++i) {
            _addActor(a.sSolvers[i]);
            isSybilSolver[a.sSolvers[i]] = true;
        }
        for (uint256 i; i < a.hCoords.length; ++i) {
            _addActor(a.hCoords[i]);
            isHonestCoord[a.hCoords[i]] = true;
        }
        for (uint256 i; i < a.sCoords.length; ++i) {
            _addActor(a.sCoords[i]);
        }
        _addActor(a.proposer);
        _addActor(a.locker);
        _addActor(a.foreign);
    }

    function _addActor(address a) internal {
        actors.push(a);
        _actorIndexPlusOne[a] = actors.length;
    }

    // ------------------------------------------------------------------ views for the invariants

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function taskCount() external view returns (uint256) {
        return taskIds.length;
    }

    function actorIndex(address a) external view returns (uint256) {
        return _actorIndexPlusOne[a] - 1;
    }

    // ------------------------------------------------------------------ the hidden truth

    /// @dev Quality of `solver`'s solution to task `id`: what an honest coordinator scores.
    function quality(uint256 id, address solver) public view returns (uint16) {
        uint256 h = uint256(keccak256(abi.encode("quality", id, solver)));
        if (isSybilSolver[solver]) return h % 2 == 0 ? 0 : uint16((h >> 8) % 3001);
        return uint16(1000 + (h >> 8) % 64536);
    }

    function _honestRow(uint256 id) internal view returns (uint16[] memory row) {
        address[] memory revealed = tasks.revealedSolvers(id);
        row = new uint16[](revealed.length);
        for (uint256 j; j < revealed.length; ++j) {
            row[j] = quality(id, revealed[j]);
        }
    }

    function _sybilRow(uint256 id) internal view returns (uint16[] memory row) {
        address[] memory revealed = tasks.revealedSolvers(id);
        row = new uint16[](revealed.length);
        for (uint256 j; j < revealed.length; ++j) {
            if (isSybilSolver[revealed[j]]) row[j] = 65535;
        }
    }

    // ------------------------------------------------------------------ helpers

    function _task(uint256 seed) internal view returns (bool ok, uint256 id) {
        if (taskIds.length == 0) return (false, 0);
        return (true, taskIds[seed % taskIds.length]);
    }

    function _deadlines(uint256 id) internal view returns (ITaskManager.Deadlines memory) {
        return tasks.getTask(id).deadlines;
    }

    function _solCommit(uint256 id, address s) internal pure returns (bytes32) {
        return keccak256(abi.encode(id, s, keccak256(abi.encode("delta", s)), keccak256(abi.encode("manifest", s)), bytes32("s")));
    }

    function _stakeMore(address who, uint256 amount) internal {
        Role role = staking.roleOf(who);
        if (role == Role.None) return;
        vm.prank(who);
        token.approve(address(staking), amount);
        vm.prank(who);
        staking.stake(role, amount);
    }

    function _sybilCoordTotal() internal view returns (uint256 s) {
        for (uint256 i; i < sCoords.length; ++i) {
            s += staking.stakeOf(sCoords[i]);
        }
    }

    function _credits() internal view returns (uint256[] memory c) {
        c = new uint256[](actors.length);
        for (uint256 i; i < actors.length; ++i) {
            c[i] = rewards.claimable(actors[i]);
        }
    }

    // ------------------------------------------------------------------ proposals

    function proposeHonest(uint256 reward, uint256 earlySybils) public returns (bool ok, uint256 id) {
        if (taskIds.length >= MAX_TASKS) return (false, 0);
        reward = bound(reward, 1, 2000e18);
        vm.prank(proposer);
        try tasks.proposeTask(
            pid, keccak256("spec"), keccak256(abi.encode(proposer, pid, EVAL, SALT)), reward
        ) returns (
            uint256 newId
        ) {
            id = newId;
            ok = true;
            taskIds.push(id);
        } catch {
            return (false, 0);
        }
        // Sybil solvers commit in the proposal block itself.
        for (uint256 i; i < sSolvers.length; ++i) {
            if ((earlySybils >> i) & 1 == 1) _commitSolution(id, sSolvers[i]);
        }
    }

    /// @dev C-1: never approved, so every proposal must revert and reserve nothing.
    function proposeForeign(uint256 reward) external {
        reward = bound(reward, 1, type(uint128).max);
        vm.prank(foreign);
        try tasks.proposeTask(
            pid, keccak256("spec"), keccak256(abi.encode(foreign, pid, EVAL, SALT)), reward
        ) returns (
            uint256 id
        ) {
            ghostForeignProposed = true;
            taskIds.push(id);
        } catch {}
    }

    /// @dev M-6: approved up to LOCK_CAP per task; tries up to twice that, and never reveals its ground truth.
    function proposeLocker(uint256 reward) external {
        if (taskIds.length >= MAX_TASKS) return;
        reward = bound(reward, 1, 2 * LOCK_CAP);
        vm.prank(locker);
        try tasks.proposeTask(
            pid, keccak256("spec"), keccak256(abi.encode(locker, pid, EVAL, SALT)), reward
        ) returns (
            uint256 id
        ) {
            if (reward > LOCK_CAP) ghostLockerOverCap = true;
            taskIds.push(id);
        } catch {}
    }

    // ------------------------------------------------------------------ solutions

    function _commitSolution(uint256 id, address s) internal {
        vm.prank(s);
        try tasks.commitSolution(id, _solCommit(id, s)) {} catch {}
    }

    function commitSolution(uint256 seed, uint256 who) public {
        (bool ok, uint256 id) = _task(seed);
        if (!ok) return;
        address s =
            who % 2 == 0 ? hSolvers[(who >> 1) % hSolvers.length] : sSolvers[(who >> 1) % sSolvers.length];
        _commitSolution(id, s);
    }

    function revealGt(uint256 seed) public {
        (bool ok, uint256 id) = _task(seed);
        if (!ok || tasks.getTask(id).proposer != proposer) return; // the locker never reveals
        ITaskManager.Deadlines memory d = _deadlines(id);
        if (block.number <= d.solRevealEnd) vm.roll(uint256(d.solRevealEnd) + 1);
        vm.prank(proposer);
        try tasks.revealGroundTruth(id, EVAL, SALT) {} catch {}
    }

    function _revealSolution(uint256 id, address s) internal {
        ITaskManager.Deadlines memory d = _deadlines(id);
        if (block.number <= d.commitEnd) vm.roll(uint256(d.commitEnd) + 1);
        vm.prank(s);
        try tasks.revealSolution(id, keccak256(abi.encode("delta", s)), keccak256(abi.encode("manifest", s)), bytes32("s")) {} catch {}
    }

    /// @dev Honest solvers always reveal when asked; Sybils reveal selectively (the fuzzer decides).
    function revealSolution(uint256 seed, uint256 who) public {
        (bool ok, uint256 id) = _task(seed);
        if (!ok) return;
        address s =
            who % 2 == 0 ? hSolvers[(who >> 1) % hSolvers.length] : sSolvers[(who >> 1) % sSolvers.length];
        _revealSolution(id, s);
    }

    // ------------------------------------------------------------------ votes

    function _commitVote(uint256 id, address c, uint16[] memory row) internal {
        uint256 stake = staking.stakeOf(c);
        vm.prank(c);
        try tasks.commitVote(id, keccak256(abi.encode(id, c, row, bytes32("v")))) {
            _votes[id][c] = row;
            _boundStake[id][c] = stake;
            uint256 all = (staking.totalStake(Role.Coordinator) + 1e18 - 1) / 1e18 * 1e18;
            if (all > _coordStakeAtVote[id]) _coordStakeAtVote[id] = all;
            if (tasks.seatStake(id, c) != stake) ghostSeatStakeMismatch = true;
        } catch {}
    }

    function _revealVote(uint256 id, address c) internal {
        vm.prank(c);
        try tasks.revealVote(id, _votes[id][c], bytes32("v")) {
            _voteRevealed[id][c] = true;
        } catch {}
    }

    /// @dev Sybil coordinators commit as early as possible: the first block of the vote window.
    function sybilCommitVote(uint256 seed, uint256 who) public {
        (bool ok, uint256 id) = _task(seed);
        if (!ok) return;
        ITaskManager.Deadlines memory d = _deadlines(id);
        if (block.number <= d.gtRevealEnd) vm.roll(uint256(d.gtRevealEnd) + 1);
        _commitVote(id, sCoords[who % sCoords.length], _sybilRow(id));
    }

    /// @dev Honest coordinators are live: they commit together, with the truth.
    function honestCommitVotes(uint256 seed) public {
        (bool ok, uint256 id) = _task(seed);
        if (!ok) return;
        ITaskManager.Deadlines memory d = _deadlines(id);
        if (block.number <= d.gtRevealEnd) vm.roll(uint256(d.gtRevealEnd) + 1);
        uint16[] memory row = _honestRow(id);
        for (uint256 i; i < hCoords.length; ++i) {
            _commitVote(id, hCoords[i], row);
        }
    }

    function sybilRevealVote(uint256 seed, uint256 who) public {
        (bool ok, uint256 id) = _task(seed);
        if (!ok) return;
        ITaskManager.Deadlines memory d = _deadlines(id);
        if (block.number <= d.voteCommitEnd) vm.roll(uint256(d.voteCommitEnd) + 1);
        _revealVote(id, sCoords[who % sCoords.length]);
    }

    /// @dev Honest coordinators reveal together (all or none of them, so that they stay a majority of voters).
    function honestRevealVotes(uint256 seed) public {
        (bool ok, uint256 id) = _task(seed);
        if (!ok) return;
        ITaskManager.Deadlines memory d = _deadlines(id);
        if (block.number <= d.voteCommitEnd) vm.roll(uint256(d.voteCommitEnd) + 1);
        if (block.number > d.voteRevealEnd) return;
        for (uint256 i; i < hCoords.length; ++i) {
            _revealVote(id, hCoords[i]);
        }
    }

    // ------------------------------------------------------------------ stake moves

    /// @dev M-1: anyone adds stake at any time, notably after every vote is public. Sybil coordinators stay below
    ///      SYBIL_COORD_CAP in all (the honest-majority assumption).
    function topUp(uint256 who, uint256 amount) public {
        amount = bound(amount, 1e18, 5000e18);
        address a = actors[who % (actors.length - 3)]; // solvers and coordinators
        if (!isHonestCoord[a] && staking.roleOf(a) == Role.Coordinator) {
            uint256 total = _sybilCoordTotal();
            if (total >= SYBIL_COORD_CAP) return;
            if (total + amount > SYBIL_COORD_CAP) amount = SYBIL_COORD_CAP - total;
        }
        uint256 bonded = staking.stakeOf(a);
        uint256 min = staking.minStake(staking.roleOf(a));
        if (bonded + amount < min) amount = min - bonded; // a slashed account tops up to its minimum at least
        _stakeMore(a, amount);
        // Coverage: a top-up while some vote of this account awaits finalize.
        if (staking.boundUntil(a) >= block.number) ++ghostTopUpsWhileBound;
    }

    /// @dev L-2: a bound account's unbond request must revert; a free account may leave (honest coordinators
    ///      never do; others keep their role's minimum).
    function unbondAttempt(uint256 who, uint256 amount) public {
        address a = actors[who % actors.length];
        uint256 bonded = staking.stakeOf(a);
        if (bonded == 0) return;
        uint256 open = staking.boundUntil(a);
        if (open >= block.number) {
            amount = bound(amount, 1, bonded);
            vm.prank(a);
            try staking.requestUnbond(amount) {
                ghostUnbondedWhileBound = true;
                ghostUnbondedActor = a;
            } catch (bytes memory err) {
                if (
                    keccak256(err)
                        != keccak256(
                            abi.encodeWithSelector(IParticipantStaking.StakingBound.selector, a, open)
                        )
                ) {
                    ghostUnbondedWhileBound = true; // refused, but not for the bound stake: look at it
                    ghostUnbondedActor = a;
                }
                ++ghostBoundUnbondRefused;
            }
            return;
        }
        if (isHonestCoord[a]) return;
        uint256 min = staking.minStake(staking.roleOf(a));
        if (bonded <= min) return;
        amount = bound(amount, 1, bonded - min);
        vm.prank(a);
        try staking.requestUnbond(amount) {} catch {}
    }

    // ------------------------------------------------------------------ finalize with the oracle

    function roll(uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 1, 30));
    }

    function claim(uint256 who) external {
        vm.prank(actors[who % actors.length]);
        try rewards.claim() {} catch {}
    }

    function finalize(uint256 seed) public {
        (bool ok, uint256 id) = _task(seed);
        if (!ok) return;
        (bool canSettle, bool settles, uint256[] memory expected) = _predict(id);
        uint256[] memory before = _credits();
        try tasks.finalize(id) returns (ITaskManager.TaskState st) {
            uint256[] memory afterCredits = _credits();
            uint256[] memory delta = new uint256[](actors.length);
            for (uint256 i; i < actors.length; ++i) {
                delta[i] = afterCredits[i] - before[i];
            }
            bool isSettled = st == ITaskManager.TaskState.Finalized;
            if (canSettle && isSettled != settles) _mismatchOutcome(id);
            if (!canSettle && isSettled) _mismatchOutcome(id);
            if (isSettled) {
                ++ghostSettled;
                _comparePayouts(id, expected, delta);
                _checkSybilBound(id, delta);
            } else {
                ++ghostClosed;
                for (uint256 i; i < actors.length; ++i) {
                    if (delta[i] != 0) _mismatchPayout(id, actors[i], 0, delta[i]);
                }
            }
        } catch {
            if (canSettle) ghostStuck = true; // past every window, a task must be able to end
        }
    }

    /// @dev A complete round with adversarial choices everywhere, so that every run settles tasks.
    function adversarialRound(uint256 reward, uint256 seed) external {
        (bool ok, uint256 id) = proposeHonest(reward, seed);
        if (!ok) return;
        uint256 k = taskIds.length - 1;
        for (uint256 i; i < hSolvers.length; ++i) {
            if ((seed >> (3 + i)) & 3 != 0) _commitSolution(id, hSolvers[i]);
        }
        for (uint256 i; i < sSolvers.length; ++i) {
            if ((seed >> (9 + i)) & 1 == 1) _commitSolution(id, sSolvers[i]); // late Sybils
        }
        for (uint256 i; i < hSolvers.length; ++i) {
            _revealSolution(id, hSolvers[i]);
        }
        for (uint256 i; i < sSolvers.length; ++i) {
            if ((seed >> (12 + i)) & 1 == 1) _revealSolution(id, sSolvers[i]); // selective
        }
        revealGt(k);
        for (uint256 i; i < sCoords.length; ++i) {
            if ((seed >> (15 + i)) & 3 != 0) sybilCommitVote(k, i); // first block of the window
        }
        if ((seed >> 18) & 7 != 0) honestCommitVotes(k);
        if ((seed >> 21) & 1 == 1) topUp(seed >> 22, seed >> 40); // between commit and reveal
        if ((seed >> 60) & 7 != 0) honestRevealVotes(k);
        for (uint256 i; i < sCoords.length; ++i) {
            if ((seed >> (63 + i)) & 1 == 1) sybilRevealVote(k, i);
        }
        // After every vote is public: top-ups and unbond attempts, then finalize.
        if ((seed >> 66) & 1 == 1) topUp(seed >> 67, seed >> 80);
        if ((seed >> 100) & 1 == 1) topUp(seed >> 101, seed >> 110);
        if ((seed >> 120) & 1 == 1) unbondAttempt(seed >> 121, seed >> 130);
        vm.roll(uint256(_deadlines(id).voteRevealEnd) + 1);
        if ((seed >> 140) & 1 == 1) topUp(seed >> 141, seed >> 150);
        finalize(k);
    }

    /// @dev The expected outcome of finalizing `id` now, from the handler's own records. `canSettle` is false when
    ///      the task cannot settle in this call (then every credit must stay unchanged).
    function _predict(uint256 id)
        internal
        view
        returns (bool canSettle, bool settles, uint256[] memory expected)
    {
        expected = new uint256[](actors.length);
        ITaskManager.TaskView memory t = tasks.getTask(id);
        if (
            t.state != ITaskManager.TaskState.GroundTruthRevealed || t.numRevealed == 0
                || block.number <= t.deadlines.voteRevealEnd
        ) return (false, false, expected);
        canSettle = true;
        Round memory r = _round(id, t);
        uint256 voting;
        for (uint256 i; i < r.stakes.length; ++i) {
            voting += r.stakes[i];
        }
        settles = r.voters.length >= t.minVotes
            && voting * BPS > uint256(tasks.voteQuorum()) * _coordStakeAtVote[id];
        if (!settles) return (canSettle, settles, expected);
        _expectedPayouts(r, expected);
    }

    function _round(uint256 id, ITaskManager.TaskView memory t) internal view returns (Round memory r) {
        r.id = id;
        r.reward = t.reward;
        r.proposer = t.proposer;
        r.solvers = tasks.revealedSolvers(id);
        address[] memory committers = tasks.voteCommitters(id);
        uint256 n;
        for (uint256 i; i < committers.length; ++i) {
            if (_voteRevealed[id][committers[i]]) ++n;
        }
        r.voters = new address[](n);
        r.stakes = new uint256[](n);
        r.scores = new uint16[][](n);
        uint256 k;
        for (uint256 i; i < committers.length; ++i) {
            address c = committers[i];
            if (!_voteRevealed[id][c]) continue;
            r.voters[k] = c;
            r.stakes[k] = _boundStake[id][c]; // bound at commit: what the weight must be
            r.scores[k] = _votes[id][c];
            ++k;
        }
    }

    /// @dev The library on the bind-time stakes, the committed scores and the stored (clamped) bonds.
    function _replay(Round memory r) internal view returns (YumaConsensus.Result memory) {
        uint256 n = r.voters.length;
        uint256 m = r.solvers.length;
        uint256[][] memory prev = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            prev[i] = new uint256[](m);
            for (uint256 j; j < m; ++j) {
                uint256 b = rewards.bondOf(pid, r.voters[i], r.solvers[j]);
                prev[i][j] = b > WAD ? WAD : b;
            }
        }
        (uint256 kappa, uint256 alpha) = rewards.consensusParams();
        return YumaConsensus.compute(r.stakes, r.scores, prev, _effectiveKappa(r, kappa), alpha);
    }

    /// @dev κ over all coordinator stake seen at the vote commits, expressed over the voters' stake (Rewards).
    function _effectiveKappa(Round memory r, uint256 kappa) internal view returns (uint256) {
        uint256 voting;
        for (uint256 i; i < r.stakes.length; ++i) {
            voting += r.stakes[i];
        }
        if (voting == 0) return kappa;
        uint256 all = _coordStakeAtVote[r.id];
        if (all < voting) all = voting;
        uint256 k = (kappa * all + voting - 1) / voting;
        return k > WAD ? WAD : k;
    }

    function _silent(uint16[] memory row) internal pure returns (bool) {
        for (uint256 j; j < row.length; ++j) {
            if (row[j] != 0) return false;
        }
        return true;
    }

    /// @dev S-1: the highest raw score backed on one solver, straight from docs/consensus.md (for each column the
    ///      largest score of a voter with stake that more than κ' of the voting stake scored at least as high; the
    ///      maximum over the columns), written independently of Rewards' single-pass assembly.
    function _topScore(Round memory r) internal view returns (uint256 top) {
        (uint256 kappa,) = rewards.consensusParams();
        uint256 k = _effectiveKappa(r, kappa);
        uint256 voting;
        for (uint256 i; i < r.stakes.length; ++i) {
            voting += r.stakes[i];
        }
        for (uint256 j; j < r.solvers.length; ++j) {
            uint256 best;
            for (uint256 i; i < r.voters.length; ++i) {
                if (r.stakes[i] == 0) continue;
                uint256 v = r.scores[i][j];
                uint256 support;
                for (uint256 q; q < r.voters.length; ++q) {
                    if (r.scores[q][j] >= v) support += r.stakes[q];
                }
                if (support * WAD > k * voting && v > best) best = v;
            }
            if (best > top) top = best;
        }
    }

    /// @dev The solver pool a settlement earns: reward × solverBps / 10000 scaled by the top backed score.
    function _earnedSolverPool(Round memory r) internal view returns (uint256) {
        return r.reward * project.config(pid).split.solverBps / BPS * _topScore(r) / 65_535;
    }

    /// @dev Rewards' documented split (docs/consensus.md, Payouts).
    function _expectedPayouts(Round memory r, uint256[] memory expected) internal view {
        YumaConsensus.Result memory res = _replay(r);
        IProject.RewardSplit memory split = project.config(pid).split;
        uint256 pool = _earnedSolverPool(r);
        for (uint256 j; j < r.solvers.length; ++j) {
            expected[_actorIndexPlusOne[r.solvers[j]] - 1] += pool * res.incentive[j] / WAD;
        }
        pool = r.reward * split.coordinatorBps / BPS;
        uint256 dSum;
        uint256 stakeSum;
        for (uint256 i; i < r.voters.length; ++i) {
            dSum += res.dividends[i];
            if (_silent(r.scores[i])) stakeSum += r.stakes[i];
        }
        for (uint256 i; i < r.voters.length; ++i) {
            uint256 w = dSum != 0
                ? res.dividends[i]
                : (stakeSum == 0 || !_silent(r.scores[i]) ? 0 : r.stakes[i] * WAD / stakeSum);
            expected[_actorIndexPlusOne[r.voters[i]] - 1] += pool * w / WAD;
        }
        expected[_actorIndexPlusOne[r.proposer] - 1] += r.reward * split.proposerBps / BPS;
    }

    function _comparePayouts(uint256 id, uint256[] memory expected, uint256[] memory delta) internal {
        for (uint256 i; i < actors.length; ++i) {
            if (expected[i] != delta[i]) _mismatchPayout(id, actors[i], expected[i], delta[i]);
        }
    }

    function _mismatchPayout(uint256 id, address a, uint256 expected, uint256 actual) internal {
        if (ghostPayoutMismatch) return;
        ghostPayoutMismatch = true;
        ghostMismatchTask = id;
        ghostMismatchActor = a;
        ghostMismatchExpected = expected;
        ghostMismatchActual = actual;
    }

    function _mismatchOutcome(uint256 id) internal {
        if (ghostOutcomeMismatch) return;
        ghostOutcomeMismatch = true;
        ghostMismatchTask = id;
    }

    /// @dev (a) on a settled task: with honest coordinators holding more than half of the voting stake, every Sybil
    ///      solver's consensus is clipped to the largest value an honest coordinator gave it (H_j), so its rank is
    ///      at most ΣS · H_j and its payout at most earnedPool · ΣS · H_j / ΣR (its clipped share); H_j = 0 (every
    ///      honest coordinator scored it 0) means it earns nothing. S-1: a backed score has more than κ ≥ half of the
    ///      voting stake behind it, so an honest coordinator gave at least that much: all solvers together earn at
    ///      most solverPool · (the best honest score) / 65535, whatever the Sybil coordinators score.
    struct Weights {
        uint256[] s; // normalized stakes
        uint256[][] w; // row-normalized scores
        uint256 sumS;
        uint256 sumR;
        uint256 solverPool;
    }

    function _checkSybilBound(uint256 id, uint256[] memory delta) internal {
        Round memory r = _round(id, tasks.getTask(id));
        uint256 n = r.voters.length;
        uint256 honestStake;
        uint256 totalStake;
        bool sybilVoted;
        for (uint256 i; i < n; ++i) {
            totalStake += r.stakes[i];
            if (isHonestCoord[r.voters[i]]) honestStake += r.stakes[i];
            else sybilVoted = true;
        }
        if (sybilVoted) ++ghostSettledWithSybilVotes;
        if (honestStake * 2 <= totalStake) {
            ghostAssumptionBroken = true;
            return;
        }
        Weights memory x = _weights(r, totalStake);
        x.sumR = _rankSum(r, x.s, x.w);
        x.solverPool = _earnedSolverPool(r);
        for (uint256 j; j < r.solvers.length; ++j) {
            if (isSybilSolver[r.solvers[j]]) _checkSybilColumn(r, x, j, delta);
        }
        _checkSolverPoolBound(r, delta);
    }

    function _checkSolverPoolBound(Round memory r, uint256[] memory delta) internal {
        uint256 honestTop;
        for (uint256 i; i < r.voters.length; ++i) {
            if (!isHonestCoord[r.voters[i]]) continue;
            for (uint256 j; j < r.solvers.length; ++j) {
                if (r.scores[i][j] > honestTop) honestTop = r.scores[i][j];
            }
        }
        uint256 paid;
        for (uint256 j; j < r.solvers.length; ++j) {
            paid += delta[_actorIndexPlusOne[r.solvers[j]] - 1];
        }
        uint256 nominal = r.reward * project.config(pid).split.solverBps / BPS;
        ghostSolversPaid += paid;
        ghostSolverPoolNominal += nominal;
        if (paid > nominal * honestTop / 65_535) ghostSolverPoolOverHonestTop = true;
    }

    /// @dev Normalized stakes and row weights, as the library computes them.
    function _weights(Round memory r, uint256 totalStake) internal pure returns (Weights memory x) {
        uint256 n = r.voters.length;
        uint256 m = r.solvers.length;
        x.s = new uint256[](n);
        x.w = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            x.s[i] = r.stakes[i] * WAD / totalStake;
            x.sumS += x.s[i];
            x.w[i] = new uint256[](m);
            uint256 rowSum;
            for (uint256 j; j < m; ++j) {
                rowSum += r.scores[i][j];
            }
            for (uint256 j; j < m; ++j) {
                x.w[i][j] = rowSum == 0 ? 0 : uint256(r.scores[i][j]) * WAD / rowSum;
            }
        }
    }

    function _checkSybilColumn(Round memory r, Weights memory x, uint256 j, uint256[] memory delta) internal {
        uint256 hMax;
        for (uint256 i; i < r.voters.length; ++i) {
            if (isHonestCoord[r.voters[i]] && x.w[i][j] > hMax) hMax = x.w[i][j];
        }
        uint256 paid = delta[_actorIndexPlusOne[r.solvers[j]] - 1];
        uint256 boundJ = x.sumR == 0 ? 0 : x.solverPool * (x.sumS * hMax / WAD) / x.sumR;
        ghostSybilEarned += paid;
        ghostSybilBound += boundJ;
        if (hMax == 0 && paid != 0) ghostZeroScoredSybilPaid = true;
        if (paid > boundJ) ghostSybilOverBound = true;
    }

    /// @dev ΣR of the library's incentive step, recomputed with the consensus the library gives.
    function _rankSum(Round memory r, uint256[] memory s, uint256[][] memory w)
        internal
        view
        returns (uint256 sumR)
    {
        uint256 n = r.voters.length;
        uint256 m = r.solvers.length;
        (uint256 kappa, uint256 alpha) = rewards.consensusParams();
        // The consensus does not depend on the previous bonds.
        uint256[] memory c =
        YumaConsensus.compute(r.stakes, r.scores, _zeros(n, m), _effectiveKappa(r, kappa), alpha).consensus;
        for (uint256 j; j < m; ++j) {
            uint256 acc;
            for (uint256 i; i < n; ++i) {
                acc += s[i] * (w[i][j] < c[j] ? w[i][j] : c[j]);
            }
            sumR += acc / WAD;
        }
    }

    function _zeros(uint256 n, uint256 m) internal pure returns (uint256[][] memory z) {
        z = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            z[i] = new uint256[](m);
        }
    }
}

/// @notice The adversarial round invariants:
///         (a) actors that fund nothing and do no honest work extract nothing beyond honest work's worth: the foreign
///             proposer never opens a task (reserves nothing, binds nothing, earns nothing); the budget locker never
///             reserves more than its cap per task; a Sybil solver the honest majority scored 0 earns 0, and Sybil
///             solvers never earn more than their clipped share (C-1, M-6); all solvers together never earn more of
///             the pool than the best honest score (S-1);
///         (b) weights are the stakes bound at commit: every credit of every settled task equals the oracle's,
///             computed from the stakes seen at commit, whatever was topped up afterwards (M-1);
///         (c) no bound stake is unbonded before its task ends, and every account's open obligations equal the
///             open tasks it proposed, holds a solver seat in, or committed a vote to (zero once all ended) (L-2).
/// forge-config: default.invariant.depth = 100
contract AdversarialRoundInvariantTest is World {
    AdversarialRoundHandler internal handler;

    function setUp() public override {
        super.setUp();
        assertEq(rewards.consensusEngine(), address(0), "the oracle replays the library");
        AdversarialRoundHandler.Actors memory a;
        a.proposer = proposer;
        a.locker = makeAddr("locker");
        a.foreign = makeAddr("foreignProposer");
        _stake(a.locker, Role.Proposer, 1000e18);
        _stake(a.foreign, Role.Proposer, 1000e18);
        a.hSolvers = solvers;
        a.sSolvers = _stakedAccounts("sybilSolver", 3, Role.Solver, 60e18);
        for (uint256 i; i < coords.length; ++i) {
            _stake(coords[i], Role.Coordinator, 2000e18); // 3,000 ATN each
        }
        a.hCoords = coords;
        a.sCoords = _stakedAccounts("sybilCoord", 3, Role.Coordinator, 500e18);
        handler = new AdversarialRoundHandler(token, staking, project, rewards, tasks, projectId, a);
        uint256 cap = handler.LOCK_CAP();
        vm.prank(owner);
        project.setProposerCap(projectId, a.locker, cap);
        // Tokens for top-ups.
        for (uint256 i; i < handler.actorCount(); ++i) {
            require(token.transfer(handler.actors(i), 200_000e18));
        }
        targetContract(address(handler));
    }

    function afterInvariant() external view {
        console2.log("tasks", handler.taskCount(), "settled", handler.ghostSettled());
        console2.log(
            "settled with Sybil votes", handler.ghostSettledWithSybilVotes(), "closed", handler.ghostClosed()
        );
        console2.log("Sybil solvers earned", handler.ghostSybilEarned(), "bound", handler.ghostSybilBound());
        console2.log(
            "solvers paid", handler.ghostSolversPaid(), "of nominal pools", handler.ghostSolverPoolNominal()
        );
        console2.log("top-ups while bound", handler.ghostTopUpsWhileBound());
        console2.log("bound unbonds refused", handler.ghostBoundUnbondRefused());
    }

    function invariant_adversarialRound() public view {
        _checkA();
        _checkB();
        _checkC();
    }

    /// (a) no extraction without funding or honest work.
    function _checkA() internal view {
        assertFalse(handler.ghostAssumptionBroken(), "(a) handler broke the honest-majority assumption");
        address foreign = handler.foreign();
        assertFalse(handler.ghostForeignProposed(), "(a) C-1: the foreign proposer opened a task");
        assertEq(staking.boundUntil(foreign), 0, "(a) C-1: the foreign proposer bound stake");
        assertEq(rewards.claimable(foreign), 0, "(a) C-1: the foreign proposer earned");
        assertFalse(handler.ghostLockerOverCap(), "(a) M-6: a locker task above the cap");
        assertFalse(
            handler.ghostZeroScoredSybilPaid(), "(a) a Sybil solver scored 0 by the honest majority earned"
        );
        assertFalse(handler.ghostSybilOverBound(), "(a) a Sybil solver earned more than its clipped share");
        assertLe(
            handler.ghostSybilEarned(),
            handler.ghostSybilBound(),
            "(a) Sybil solvers above their clipped share"
        );
        assertFalse(
            handler.ghostSolverPoolOverHonestTop(),
            "(a) S-1: solvers earned more of the pool than the best honest score"
        );
    }

    /// (b) payouts follow the stakes bound at commit.
    function _checkB() internal view {
        if (handler.ghostPayoutMismatch() || handler.ghostOutcomeMismatch()) {
            console2.log("task", handler.ghostMismatchTask(), "actor", handler.ghostMismatchActor());
            console2.log("expected", handler.ghostMismatchExpected(), "actual", handler.ghostMismatchActual());
        }
        assertFalse(handler.ghostSeatStakeMismatch(), "(b) seatStake differs from the stake at commit");
        assertFalse(handler.ghostStuck(), "(b) a task past its windows could not be finalized");
        assertFalse(
            handler.ghostOutcomeMismatch(), "(b) M-1: settle/close differs from the bind-time prediction"
        );
        assertFalse(handler.ghostPayoutMismatch(), "(b) M-1: a credit differs from the bind-time oracle");
    }

    /// (c) bound stake stays bound: every account seated in a task (its proposer, its seated solvers and vote
    ///     committers) is bound at least until that task's last window.
    function _checkC() internal view {
        assertFalse(handler.ghostUnbondedWhileBound(), "(c) L-2: bound stake was unbonded");
        uint256 nT = handler.taskCount();
        for (uint256 k; k < nT; ++k) {
            uint256 id = handler.taskIds(k);
            ITaskManager.TaskView memory t = tasks.getTask(id);
            uint64 end = t.deadlines.voteRevealEnd;
            assertGe(staking.boundUntil(t.proposer), end, "(c) L-2: proposer not bound to its task");
            address[] memory s = tasks.committedSolvers(id);
            for (uint256 i; i < s.length; ++i) {
                assertGe(staking.boundUntil(s[i]), end, "(c) L-2: solver not bound to its seat");
            }
            address[] memory c = tasks.voteCommitters(id);
            for (uint256 i; i < c.length; ++i) {
                assertGe(staking.boundUntil(c[i]), end, "(c) L-2: coordinator not bound to its vote");
            }
        }
    }
}
