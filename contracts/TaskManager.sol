// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ITaskManager} from "./interfaces/ITaskManager.sol";
import {IParticipantStaking, Role} from "./interfaces/IParticipantStaking.sol";
import {IProject} from "./interfaces/IProject.sol";
import {IRewards} from "./interfaces/IRewards.sol";

/// @title TaskManager
/// @notice Commit-reveal training rounds. See {ITaskManager}.
/// @dev Storage is laid out for the round gas target (docs/protocol.md §10): a task is 4 slots; a solver or a
///      coordinator costs one list slot (address | reveal flags) and one record slot (commitment, later its packed
///      scores).
contract TaskManager is ITaskManager, AccessControl, ReentrancyGuard {
    /// @notice Cap on solvers per task.
    uint256 public constant MAX_SOLVERS_PER_TASK = 16;
    /// @notice Cap on coordinators per task.
    uint256 public constant MAX_COORDINATORS_PER_TASK = 16;
    /// @notice Slash reasons passed to ParticipantStaking.
    bytes32 public constant REASON_PROPOSER = "task.proposer.no-reveal";
    bytes32 public constant REASON_SOLVER = "task.solver.no-reveal";
    bytes32 public constant REASON_COORDINATOR = "task.coordinator.no-reveal";

    uint256 private constant BPS = 10_000;
    /// @dev List slot layout: bits 0..159 address, bits 160..167 reveal position + 1 (0 = not revealed),
    ///      bits 168..255 the bonded stake when the seat was taken (saturated at 2^88 - 1 wei, above the supply).
    uint256 private constant POS_SHIFT = 160;
    uint256 private constant STAKE_SHIFT = 168;
    uint256 private constant MAX_SEAT_STAKE = (1 << 88) - 1;

    struct Task {
        // slot 0
        address proposer;
        uint64 projectId;
        TaskState state;
        uint8 numCommitted;
        uint8 numRevealed;
        // slot 1
        uint128 reward;
        uint64 commitEnd;
        uint64 solRevealEnd;
        // slot 2
        uint64 gtRevealEnd;
        uint64 voteCommitEnd;
        uint64 voteRevealEnd;
        uint8 maxSolvers;
        uint8 minVotes;
        uint8 numVoteCommits;
        uint8 numVoteReveals;
        /// @dev The largest total coordinator stake seen at a vote commit, in whole tokens rounded up (32 bits hold
        ///      4.29e9 ATN, above the supply): the quorum and the consensus threshold are measured against it, so
        ///      stake added once the votes are public changes nothing.
        uint32 coordinatorStakeAtVote;
        // slot 3
        bytes32 gtCommit;
    }

    IParticipantStaking private immutable _staking;
    IProject private immutable _projects;
    IRewards private immutable _rewards;

    uint16 private _proposerSlashBps = 1000;
    uint16 private _solverSlashBps = 100;
    uint16 private _coordinatorSlashBps = 100;
    /// @dev A task settles only when its revealed votes carry more than this share of the total coordinator stake.
    uint16 private _voteQuorumBps = 5000;
    /// @dev Last task id and whether governance retired this manager share one slot (read by every proposal).
    uint64 private _count;
    bool private _retired;
    mapping(uint256 taskId => Task) private _tasks;
    /// @dev Rewards a proposer holds reserved in a project's open tasks (bounded by its cap there).
    mapping(uint256 projectId => mapping(address proposer => uint256)) private _held;
    /// @dev Solver list in commit order; see POS_SHIFT.
    mapping(uint256 taskId => uint256[MAX_SOLVERS_PER_TASK]) private _solverList;
    /// @dev Solver record: its commitment with the low byte replaced by (list index + 1); 0 = none.
    mapping(uint256 taskId => mapping(address solver => bytes32)) private _solverRecord;
    /// @dev Coordinator list in commit order; bit 160 set = revealed.
    mapping(uint256 taskId => uint256[MAX_COORDINATORS_PER_TASK]) private _coordList;
    /// @dev Coordinator record: commitment (low byte = list index + 1) until revealed, then the packed scores
    ///      (score k in bits 16k..16k+15).
    mapping(uint256 taskId => mapping(address coordinator => bytes32)) private _coordRecord;

    /// @param admin receives DEFAULT_ADMIN_ROLE
    /// @param predecessor the manager this one replaces (zero for the first): it must be retired, and this one's
    ///        task ids continue after the last id it issued, so that Rewards' per-task records never collide
    constructor(
        address admin,
        IParticipantStaking staking_,
        IProject projects_,
        IRewards rewards_,
        ITaskManager predecessor
    ) {
        if (
            admin == address(0) || address(staking_) == address(0) || address(projects_) == address(0)
                || address(rewards_) == address(0)
        ) revert TaskManagerInvalidInput();
        if (address(predecessor) != address(0)) {
            if (!predecessor.retired()) revert TaskManagerPredecessorActive(address(predecessor));
            uint256 last = predecessor.taskCount();
            if (last >= type(uint64).max) revert TaskManagerInvalidInput();
            _count = uint64(last);
        }
        _staking = staking_;
        _projects = projects_;
        _rewards = rewards_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ round

    /// @inheritdoc ITaskManager
    function proposeTask(uint256 projectId, bytes32 specHash, bytes32 gtCommit, uint256 reward)
        external
        nonReentrant
        returns (uint256 taskId)
    {
        if (_retired) revert TaskManagerIsRetired();
        if (!_projects.exists(projectId)) revert TaskManagerUnknownProject(projectId);
        if (
            reward == 0 || reward > type(uint128).max || gtCommit == bytes32(0)
                || projectId > type(uint64).max
        ) {
            revert TaskManagerInvalidInput();
        }
        // Only proposers the project's owner approved spend its budget, each holding at most its cap reserved in
        // its open tasks at once.
        uint256 cap = _projects.proposerCap(projectId, msg.sender);
        uint256 held = _held[projectId][msg.sender] + reward;
        if (held > cap) revert TaskManagerProposerNotApproved(projectId, msg.sender, held, cap);
        _held[projectId][msg.sender] = held;
        IProject.Config memory cfg = _projects.config(projectId);
        Deadlines memory d;
        d.commitEnd = uint64(block.number) + cfg.windows.commit;
        d.solRevealEnd = d.commitEnd + cfg.windows.solReveal;
        d.gtRevealEnd = d.solRevealEnd + cfg.windows.gtReveal;
        d.voteCommitEnd = d.gtRevealEnd + cfg.windows.voteCommit;
        d.voteRevealEnd = d.voteCommitEnd + cfg.windows.voteReveal;
        _bind(msg.sender, Role.Proposer, d.voteRevealEnd);

        taskId = ++_count;
        Task storage t = _tasks[taskId];
        t.proposer = msg.sender;
        t.projectId = uint64(projectId);
        t.state = TaskState.Open;
        t.reward = uint128(reward);
        t.commitEnd = d.commitEnd;
        t.solRevealEnd = d.solRevealEnd;
        t.gtRevealEnd = d.gtRevealEnd;
        t.voteCommitEnd = d.voteCommitEnd;
        t.voteRevealEnd = d.voteRevealEnd;
        t.maxSolvers = cfg.maxSolvers;
        t.minVotes = cfg.minVotes;
        t.gtCommit = gtCommit;
        emit TaskProposed(taskId, projectId, msg.sender, specHash, gtCommit, reward, d);

        _projects.reserve(projectId, reward); // reverts ProjectInsufficientBudget
    }

    /// @inheritdoc ITaskManager
    function commitSolution(uint256 taskId, bytes32 commitment) external {
        Task storage t = _task(taskId);
        _requireState(taskId, t.state, TaskState.Open);
        _requireWindow(taskId, 0, t.commitEnd);
        if (commitment == bytes32(0)) revert TaskManagerInvalidInput();
        if (_solverRecord[taskId][msg.sender] != bytes32(0)) {
            revert TaskManagerAlreadyCommitted(taskId, msg.sender);
        }
        (uint256 stake, uint256 activeSolvers) = _bind(msg.sender, Role.Solver, t.voteRevealEnd);
        uint256 index = t.numCommitted;
        if (index < t.maxSolvers) {
            t.numCommitted = uint8(index + 1); // index < maxSolvers <= 16
        } else {
            index = _takeSeat(taskId, _solverList[taskId], index, stake);
            address displaced = address(uint160(_solverList[taskId][index]));
            delete _solverRecord[taskId][displaced];
            emit SolverDisplaced(taskId, displaced, msg.sender, index);
        }
        _solverList[taskId][index] = _seat(msg.sender, stake);
        _solverRecord[taskId][msg.sender] = _tag(commitment, index);
        // forge-lint: disable-next-line(unsafe-typecast)
        emit SolutionCommitted(taskId, msg.sender, commitment, uint8(index)); // index < 16
        // Every active solver holds a seat (only possible with no more active solvers than seats).
        if (t.numCommitted == activeSolvers) _closeEarly(t, taskId, Phase.Commit);
    }

    /// @inheritdoc ITaskManager
    function revealSolution(uint256 taskId, bytes32 deltaRoot, bytes32 manifestHash, bytes32 salt) external {
        Task storage t = _task(taskId);
        _requireState(taskId, t.state, TaskState.Open);
        _requireWindow(taskId, t.commitEnd, t.solRevealEnd);
        bytes32 rec = _solverRecord[taskId][msg.sender];
        uint256 tagByte = uint256(rec) & 0xff;
        if (tagByte == 0) revert TaskManagerNoCommitment(taskId, msg.sender);
        uint256 index = tagByte - 1;
        uint256 slot = _solverList[taskId][index];
        if (_pos(slot) != 0) revert TaskManagerNoCommitment(taskId, msg.sender); // already revealed
        bytes32 expected = keccak256(abi.encode(taskId, msg.sender, deltaRoot, manifestHash, salt));
        if (_tag(expected, index) != rec) revert TaskManagerCommitmentMismatch(taskId, msg.sender);

        uint8 pos = t.numRevealed;
        t.numRevealed = pos + 1;
        // pos < 16, so pos + 1 fits the 8-bit field above the address.
        _solverList[taskId][index] = slot | (uint256(pos) + 1) << POS_SHIFT;
        emit SolutionRevealed(taskId, msg.sender, deltaRoot, manifestHash, pos);
        // Commits ended (this window opens after them): the seat holders are final.
        if (pos + 1 == t.numCommitted) _closeEarly(t, taskId, Phase.SolutionReveal);
    }

    /// @inheritdoc ITaskManager
    function revealGroundTruth(uint256 taskId, bytes32 evalSpecHash, bytes32 salt) external {
        Task storage t = _task(taskId);
        if (msg.sender != t.proposer) revert TaskManagerNotProposer(taskId, msg.sender);
        _requireState(taskId, t.state, TaskState.Open);
        _requireWindow(taskId, t.solRevealEnd, t.gtRevealEnd);
        if (t.numRevealed == 0) revert TaskManagerNoSolutions(taskId);
        if (keccak256(abi.encode(msg.sender, uint256(t.projectId), evalSpecHash, salt)) != t.gtCommit) {
            revert TaskManagerCommitmentMismatch(taskId, msg.sender);
        }
        t.state = TaskState.GroundTruthRevealed;
        emit GroundTruthRevealed(taskId, msg.sender, evalSpecHash);
        _closeEarly(t, taskId, Phase.GroundTruthReveal);
    }

    /// @inheritdoc ITaskManager
    function commitVote(uint256 taskId, bytes32 commitment) external {
        Task storage t = _task(taskId);
        _requireState(taskId, t.state, TaskState.GroundTruthRevealed);
        _requireWindow(taskId, t.gtRevealEnd, t.voteCommitEnd);
        if (commitment == bytes32(0)) revert TaskManagerInvalidInput();
        if (_coordRecord[taskId][msg.sender] != bytes32(0)) {
            revert TaskManagerAlreadyCommitted(taskId, msg.sender);
        }
        (uint256 stake, uint256 activeCoordinators) = _bind(msg.sender, Role.Coordinator, t.voteRevealEnd);
        uint256 index = t.numVoteCommits;
        if (index < MAX_COORDINATORS_PER_TASK) {
            t.numVoteCommits = uint8(index + 1); // index < 16
        } else {
            index = _takeSeat(taskId, _coordList[taskId], index, stake);
            address displaced = address(uint160(_coordList[taskId][index]));
            delete _coordRecord[taskId][displaced];
            emit VoteDisplaced(taskId, displaced, msg.sender, index);
        }
        _recordCoordinatorStake(t);
        _coordList[taskId][index] = _seat(msg.sender, stake);
        _coordRecord[taskId][msg.sender] = _tag(commitment, index);
        emit VoteCommitted(taskId, msg.sender, commitment);
        if (t.numVoteCommits == activeCoordinators) _closeEarly(t, taskId, Phase.VoteCommit);
    }

    /// @inheritdoc ITaskManager
    function revealVote(uint256 taskId, uint16[] calldata scores, bytes32 salt) external {
        Task storage t = _task(taskId);
        _requireState(taskId, t.state, TaskState.GroundTruthRevealed);
        _requireWindow(taskId, t.voteCommitEnd, t.voteRevealEnd);
        bytes32 rec = _coordRecord[taskId][msg.sender];
        uint256 tagByte = uint256(rec) & 0xff;
        if (tagByte == 0) revert TaskManagerNoCommitment(taskId, msg.sender);
        uint256 index = tagByte - 1;
        uint256 slot = _coordList[taskId][index];
        if (_pos(slot) != 0) revert TaskManagerNoCommitment(taskId, msg.sender); // already revealed
        if (scores.length != t.numRevealed) revert TaskManagerBadScoresLength(scores.length, t.numRevealed);
        bytes32 expected = keccak256(abi.encode(taskId, msg.sender, scores, salt));
        if (_tag(expected, index) != rec) revert TaskManagerCommitmentMismatch(taskId, msg.sender);

        uint256 packed;
        for (uint256 k; k < scores.length; ++k) {
            packed |= uint256(scores[k]) << (16 * k); // k < 16: fits 256 bits
        }
        // numVoteReveals < numVoteCommits ≤ 16.
        uint8 reveals = t.numVoteReveals + 1;
        t.numVoteReveals = reveals;
        _coordList[taskId][index] = slot | (uint256(1) << POS_SHIFT);
        _coordRecord[taskId][msg.sender] = bytes32(packed);
        emit VoteRevealed(taskId, msg.sender, scores);
        // Vote commits ended (this window opens after them): the committers are final.
        if (reveals == t.numVoteCommits) _closeEarly(t, taskId, Phase.VoteReveal);
    }

    /// @inheritdoc ITaskManager
    function finalize(uint256 taskId) external nonReentrant returns (TaskState) {
        Task storage t = _task(taskId);
        TaskState state = t.state;
        uint256 projectId = t.projectId;
        uint256 reward = t.reward;
        if (state == TaskState.Open) {
            if (t.numCommitted == 0) {
                if (block.number <= t.commitEnd) revert TaskManagerTooEarly(taskId, t.commitEnd);
                return _close(t, taskId, projectId, reward, CloseReason.NoCommits);
            }
            if (t.numRevealed == 0) {
                if (block.number <= t.solRevealEnd) revert TaskManagerTooEarly(taskId, t.solRevealEnd);
                _slashUnrevealedSolvers(t, taskId);
                return _close(t, taskId, projectId, reward, CloseReason.NoRevealedSolutions);
            }
            if (block.number <= t.gtRevealEnd) revert TaskManagerTooEarly(taskId, t.gtRevealEnd);
            return _cancel(t, taskId, projectId, reward);
        }
        if (state != TaskState.GroundTruthRevealed) revert TaskManagerWrongState(taskId, state);
        if (block.number <= t.voteRevealEnd) revert TaskManagerTooEarly(taskId, t.voteRevealEnd);
        uint256 coordinatorStake = uint256(t.coordinatorStakeAtVote) * 1e18;
        if (t.numVoteReveals < t.minVotes || !_hasStakeQuorum(taskId, t.numVoteCommits, coordinatorStake)) {
            _slashUnrevealedSolvers(t, taskId);
            _slashUnrevealedCoordinators(taskId, t.numVoteCommits);
            return _close(
                t,
                taskId,
                projectId,
                reward,
                t.numVoteReveals < t.minVotes ? CloseReason.TooFewVotes : CloseReason.NoStakeQuorum
            );
        }
        _held[projectId][t.proposer] -= reward;
        _settle(t, taskId, projectId, reward, coordinatorStake);
        return TaskState.Finalized;
    }

    /// @inheritdoc ITaskManager
    function setSlashParams(uint16 proposerBps, uint16 solverBps, uint16 coordinatorBps)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (proposerBps > BPS || solverBps > BPS || coordinatorBps > BPS) {
            revert TaskManagerInvalidInput();
        }
        _proposerSlashBps = proposerBps;
        _solverSlashBps = solverBps;
        _coordinatorSlashBps = coordinatorBps;
        emit SlashParamsUpdated(proposerBps, solverBps, coordinatorBps);
    }

    /// @inheritdoc ITaskManager
    function retire() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _retired = true;
        emit Retired(_count);
    }

    /// @inheritdoc ITaskManager
    function setVoteQuorum(uint16 quorumBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (quorumBps >= BPS) revert TaskManagerInvalidInput();
        _voteQuorumBps = quorumBps;
        emit VoteQuorumUpdated(quorumBps);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITaskManager
    function heldBy(uint256 projectId, address proposer) external view returns (uint256) {
        return _held[projectId][proposer];
    }

    /// @inheritdoc ITaskManager
    function retired() external view returns (bool) {
        return _retired;
    }

    /// @inheritdoc ITaskManager
    function voteQuorum() external view returns (uint16) {
        return _voteQuorumBps;
    }

    /// @inheritdoc ITaskManager
    function seatStake(uint256 taskId, address account) external view returns (uint256) {
        bytes32 rec = _solverRecord[taskId][account];
        if (rec != bytes32(0)) return _solverList[taskId][(uint256(rec) & 0xff) - 1] >> STAKE_SHIFT;
        rec = _coordRecord[taskId][account];
        if (rec == bytes32(0)) return 0;
        // A revealed vote's record holds its scores: find the seat by address.
        uint256 n = _tasks[taskId].numVoteCommits;
        for (uint256 i; i < n; ++i) {
            uint256 slot = _coordList[taskId][i];
            if (address(uint160(slot)) == account) return slot >> STAKE_SHIFT;
        }
        return 0;
    }

    /// @inheritdoc ITaskManager
    function taskState(uint256 taskId) external view returns (TaskState) {
        return _tasks[taskId].state;
    }

    /// @inheritdoc ITaskManager
    function getTask(uint256 taskId) external view returns (TaskView memory v) {
        Task storage t = _task(taskId);
        v.proposer = t.proposer;
        v.projectId = t.projectId;
        v.state = t.state;
        v.reward = t.reward;
        v.gtCommit = t.gtCommit;
        v.deadlines = Deadlines(t.commitEnd, t.solRevealEnd, t.gtRevealEnd, t.voteCommitEnd, t.voteRevealEnd);
        v.maxSolvers = t.maxSolvers;
        v.minVotes = t.minVotes;
        v.numCommitted = t.numCommitted;
        v.numRevealed = t.numRevealed;
        v.numVoteCommits = t.numVoteCommits;
        v.numVoteReveals = t.numVoteReveals;
    }

    /// @inheritdoc ITaskManager
    function revealedSolvers(uint256 taskId) public view returns (address[] memory solvers) {
        Task storage t = _tasks[taskId];
        solvers = new address[](t.numRevealed);
        uint256 n = t.numCommitted;
        for (uint256 i; i < n; ++i) {
            uint256 slot = _solverList[taskId][i];
            uint256 pos = _pos(slot);
            if (pos != 0) solvers[pos - 1] = address(uint160(slot));
        }
    }

    /// @inheritdoc ITaskManager
    function committedSolvers(uint256 taskId) external view returns (address[] memory solvers) {
        uint256 n = _tasks[taskId].numCommitted;
        solvers = new address[](n);
        for (uint256 i; i < n; ++i) {
            solvers[i] = address(uint160(_solverList[taskId][i]));
        }
    }

    /// @inheritdoc ITaskManager
    function voteCommitters(uint256 taskId) external view returns (address[] memory coordinators) {
        uint256 n = _tasks[taskId].numVoteCommits;
        coordinators = new address[](n);
        for (uint256 i; i < n; ++i) {
            coordinators[i] = address(uint160(_coordList[taskId][i]));
        }
    }

    /// @inheritdoc ITaskManager
    function scoresOf(uint256 taskId, address coordinator) external view returns (uint16[] memory scores) {
        uint256 n = _tasks[taskId].numVoteCommits;
        for (uint256 i; i < n; ++i) {
            uint256 slot = _coordList[taskId][i];
            if (address(uint160(slot)) == coordinator && _pos(slot) != 0) {
                return _unpack(uint256(_coordRecord[taskId][coordinator]), _tasks[taskId].numRevealed);
            }
        }
    }

    /// @inheritdoc ITaskManager
    function taskCount() external view returns (uint256) {
        return _count;
    }

    /// @inheritdoc ITaskManager
    function slashParams() external view returns (uint16, uint16, uint16) {
        return (_proposerSlashBps, _solverSlashBps, _coordinatorSlashBps);
    }

    // ------------------------------------------------------------------ internal

    function _settle(Task storage t, uint256 taskId, uint256 projectId, uint256 reward, uint256 coordinatorStake)
        private
    {
        t.state = TaskState.Finalized;
        uint256 nSolvers = t.numRevealed;
        _slashUnrevealedSolvers(t, taskId);
        IRewards.Settlement memory st;
        st.taskId = taskId;
        st.projectId = projectId;
        st.proposer = t.proposer;
        st.reward = reward;
        st.coordinatorStake = coordinatorStake;
        st.solvers = revealedSolvers(taskId);
        uint256 nVotes = t.numVoteReveals;
        st.coordinators = new address[](nVotes);
        st.stakes = new uint256[](nVotes);
        st.scores = new uint16[][](nVotes);
        uint256 nCommits = t.numVoteCommits;
        uint256 k;
        for (uint256 i; i < nCommits; ++i) {
            uint256 slot = _coordList[taskId][i];
            address c = address(uint160(slot));
            if (_pos(slot) == 0) {
                _slashMissed(taskId, c, Role.Coordinator, _coordinatorSlashBps, REASON_COORDINATOR);
                continue;
            }
            st.coordinators[k] = c;
            // The stake bound when the vote was committed: adding stake after seeing the reveals changes nothing.
            st.stakes[k] = slot >> STAKE_SHIFT;
            st.scores[k] = _unpack(uint256(_coordRecord[taskId][c]), nSolvers);
            ++k;
        }
        (uint256 spent, uint256 fee, uint256 released) = _rewards.settleTask(st);
        emit TaskFinalized(taskId, projectId, spent, fee, released);
    }

    /// @dev Whether the revealed votes carry more than the quorum share of all coordinator stake (their stakes as
    ///      bound at commit; the total as the vote commits saw it, so that stake added or removed once the votes
    ///      are public changes nothing).
    function _hasStakeQuorum(uint256 taskId, uint256 nCommits, uint256 coordinatorStake)
        private
        view
        returns (bool)
    {
        uint256 voting;
        for (uint256 i; i < nCommits; ++i) {
            uint256 slot = _coordList[taskId][i];
            if (_pos(slot) != 0) voting += slot >> STAKE_SHIFT;
        }
        return voting * BPS > uint256(_voteQuorumBps) * coordinatorStake;
    }

    function _recordCoordinatorStake(Task storage t) private {
        uint256 whole = (_staking.totalStake(Role.Coordinator) + 1e18 - 1) / 1e18;
        if (whole > type(uint32).max) whole = type(uint32).max;
        // forge-lint: disable-next-line(unsafe-typecast)
        if (whole > t.coordinatorStakeAtVote) t.coordinatorStakeAtVote = uint32(whole); // capped above
    }

    /// @dev Binds the stake of `account` in `role` until the task's last window and returns it with the number of
    ///      accounts active in the role; reverts when not active.
    function _bind(address account, Role role, uint64 until) private returns (uint256 stake, uint256 active) {
        (stake, active) = _staking.bindStake(account, role, until);
        if (stake == 0) revert TaskManagerNotActive(account, uint8(role));
    }

    /// @dev All `n` seats are taken: the seat of the smallest stake goes to a newcomer with strictly more stake
    ///      (the earliest of equal smallest stakes); otherwise the task is full. Seats therefore go to stake, not
    ///      to whoever fills them first.
    function _takeSeat(uint256 taskId, uint256[16] storage list, uint256 n, uint256 stake)
        private
        view
        returns (uint256 index)
    {
        uint256 lowest = type(uint256).max;
        for (uint256 i; i < n; ++i) {
            uint256 s = list[i] >> STAKE_SHIFT;
            if (s < lowest) {
                lowest = s;
                index = i;
            }
        }
        if (_seatStake(stake) <= lowest) revert TaskManagerFull(taskId);
    }

    function _seat(address account, uint256 stake) private pure returns (uint256) {
        return uint256(uint160(account)) | _seatStake(stake) << STAKE_SHIFT;
    }

    function _seatStake(uint256 stake) private pure returns (uint256) {
        return stake > MAX_SEAT_STAKE ? MAX_SEAT_STAKE : stake;
    }

    function _pos(uint256 slot) private pure returns (uint256) {
        return (slot >> POS_SHIFT) & 0xff;
    }

    /// @dev Ends `phase` at this block: its deadline and every later one move earlier by the blocks it had left, so
    ///      each later phase keeps its full length. Nothing changes on the phase's last block. Stakes stay bound
    ///      until the deadline they were bound to, which is never earlier than the new one.
    function _closeEarly(Task storage t, uint256 taskId, Phase phase) private {
        uint64 end = phase == Phase.Commit
            ? t.commitEnd
            : phase == Phase.SolutionReveal
                ? t.solRevealEnd
                : phase == Phase.GroundTruthReveal
                    ? t.gtRevealEnd
                    : phase == Phase.VoteCommit ? t.voteCommitEnd : t.voteRevealEnd;
        // Callers act inside the phase, so block.number <= end.
        uint64 left = end - uint64(block.number);
        if (left == 0) return;
        // Deadlines only decrease and every one is at least the current block, which is >= left.
        if (phase == Phase.Commit) t.commitEnd = end - left;
        if (phase <= Phase.SolutionReveal) t.solRevealEnd -= left;
        if (phase <= Phase.GroundTruthReveal) t.gtRevealEnd -= left;
        if (phase <= Phase.VoteCommit) t.voteCommitEnd -= left;
        t.voteRevealEnd -= left;
        emit PhaseClosedEarly(taskId, phase, left);
    }

    function _close(Task storage t, uint256 taskId, uint256 projectId, uint256 reward, CloseReason reason)
        private
        returns (TaskState)
    {
        t.state = TaskState.Closed;
        _held[projectId][t.proposer] -= reward;
        emit TaskClosed(taskId, projectId, reason, reward);
        _projects.release(projectId, reward);
        return TaskState.Closed;
    }

    /// @dev The solutions are public and the proposer withheld the eval spec: it loses the larger of
    ///      `proposerSlashBps` of the minimum stake and the whole solver pool (at most its stake), so taking the
    ///      revealed deltas without paying for them costs at least what paying would have.
    function _cancel(Task storage t, uint256 taskId, uint256 projectId, uint256 reward) private returns (TaskState) {
        t.state = TaskState.Cancelled;
        address proposer = t.proposer;
        _held[projectId][proposer] -= reward;
        _slashUnrevealedSolvers(t, taskId);
        uint256 slashed =
            _slashAmount(proposer, _poolShareSlash(t, Role.Proposer, _proposerSlashBps, 1), REASON_PROPOSER);
        emit TaskCancelled(taskId, projectId, proposer, reward, slashed);
        _projects.release(projectId, reward);
        return TaskState.Cancelled;
    }

    /// @dev A solver that committed and never revealed loses the larger of `solverSlashBps` of the minimum stake
    ///      and its seat's share of the solver pool (reward × solverBps / committed seats): dropping a candidate
    ///      after seeing the ground truth then costs what the seat could have earned, so committing many and
    ///      revealing the best does not pay.
    function _slashUnrevealedSolvers(Task storage t, uint256 taskId) private {
        uint256 n = t.numCommitted;
        uint256 amount = type(uint256).max; // computed once, at the first unrevealed seat
        for (uint256 i; i < n; ++i) {
            uint256 slot = _solverList[taskId][i];
            if (_pos(slot) != 0) continue;
            if (amount == type(uint256).max) amount = _poolShareSlash(t, Role.Solver, _solverSlashBps, n);
            address solver = address(uint160(slot));
            emit MissedRevealSlashed(taskId, solver, _slashAmount(solver, amount, REASON_SOLVER), REASON_SOLVER);
        }
    }

    /// @dev The larger of `bps` of the role's minimum stake and the solver pool divided by `seats` (≥ 1). Never
    ///      reverts; 0 when governance turned the role's slashing off (`bps` 0).
    function _poolShareSlash(Task storage t, Role role, uint16 bps, uint256 seats)
        private
        view
        returns (uint256 amount)
    {
        if (bps == 0) return 0;
        amount = _minStakeShare(role, bps);
        try _projects.config(t.projectId) returns (IProject.Config memory cfg) {
            uint256 perSeat = uint256(t.reward) * cfg.split.solverBps / BPS / seats; // seats ≥ 1 here
            if (perSeat > amount) amount = perSeat;
        } catch {}
    }

    function _slashUnrevealedCoordinators(uint256 taskId, uint256 n) private {
        for (uint256 i; i < n; ++i) {
            uint256 slot = _coordList[taskId][i];
            if (_pos(slot) == 0) {
                _slashMissed(
                    taskId, address(uint160(slot)), Role.Coordinator, _coordinatorSlashBps, REASON_COORDINATOR
                );
            }
        }
    }

    function _slashMissed(uint256 taskId, address account, Role role, uint16 bps, bytes32 reason) private {
        uint256 amount = _slash(account, role, bps, reason);
        emit MissedRevealSlashed(taskId, account, amount, reason);
    }

    /// @dev `bps` of the role's minimum stake. Never reverts: a failing staking call slashes nothing.
    function _slash(address account, Role role, uint16 bps, bytes32 reason) private returns (uint256) {
        return _slashAmount(account, _minStakeShare(role, bps), reason);
    }

    /// @dev `bps` of the role's minimum stake; 0 when `bps` is 0 or the staking call fails.
    function _minStakeShare(Role role, uint16 bps) private view returns (uint256 amount) {
        if (bps == 0) return 0;
        try _staking.minStake(role) returns (uint256 min) {
            amount = min * bps / BPS;
        } catch {}
    }

    /// @dev Never reverts: a failing staking call slashes nothing.
    function _slashAmount(address account, uint256 amount, bytes32 reason) private returns (uint256 slashed) {
        if (amount == 0) return 0;
        try _staking.slash(account, amount, reason) returns (uint256 s) {
            slashed = s;
        } catch {}
    }

    function _task(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.state == TaskState.None) revert TaskManagerUnknownTask(taskId);
    }

    function _requireState(uint256 taskId, TaskState have, TaskState want) private pure {
        if (have != want) revert TaskManagerWrongState(taskId, have);
    }

    /// @dev Allowed when opens < block.number <= closes.
    function _requireWindow(uint256 taskId, uint256 opens, uint256 closes) private view {
        if (block.number <= opens || block.number > closes) {
            revert TaskManagerOutsideWindow(taskId, block.number, opens, closes);
        }
    }

    /// @dev Replaces the low byte of a commitment by (index + 1) so one slot holds both (248-bit binding).
    function _tag(bytes32 commitment, uint256 index) private pure returns (bytes32) {
        return bytes32((uint256(commitment) & ~uint256(0xff)) | (index + 1));
    }

    function _unpack(uint256 packed, uint256 n) private pure returns (uint16[] memory scores) {
        scores = new uint16[](n);
        for (uint256 k; k < n; ++k) {
            scores[k] = uint16(packed >> (16 * k));
        }
    }
}
