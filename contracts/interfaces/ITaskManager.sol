// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ITaskManager
/// @notice One training round (docs/protocol.md §3) with block windows, each phase ending at an inclusive deadline:
///         propose → solvers commit (block ≤ commitEnd) → solvers reveal (commitEnd < block ≤ solRevealEnd)
///         → proposer reveals the eval spec (solRevealEnd < block ≤ gtRevealEnd), so every solution is fixed
///         and public before anyone but the proposer knows how it will be judged → coordinators commit votes
///         (gtRevealEnd < block ≤ voteCommitEnd) → reveal votes
///         (voteCommitEnd < block ≤ voteRevealEnd) → anyone finalizes. Every failure path is closable by
///         anyone through `finalize`, which always returns the unspent reservation to the project budget.
///         The stored state only moves forward.
///
///         A phase closes early once nobody who could still act in it is left (PhaseClosedEarly): the commit
///         phase when every account counted active as a Solver (IParticipantStaking.activeCount) holds a seat
///         with a commitment; the solution reveal phase when every seat holder revealed; the eval spec phase when
///         the proposer revealed; the vote commit phase when every active Coordinator committed; the vote reveal
///         phase when every vote committer revealed. The phase's deadline becomes the closing block and every
///         later deadline moves earlier by the same number of blocks, so each later phase keeps its full length.
///         With more active solvers than seats (or more than 16 active coordinators) the commit phase always runs
///         to its deadline, so a seat can still go to more stake.
interface ITaskManager {
    /// @notice Stored task state. Open → GroundTruthRevealed → Finalized; Open → Closed (no commits, or no
    ///         revealed solution) or Cancelled (solutions revealed, proposer never revealed);
    ///         GroundTruthRevealed → Closed (too few revealed votes or no stake quorum).
    enum TaskState {
        None,
        Open,
        GroundTruthRevealed,
        Finalized,
        Closed,
        Cancelled
    }

    /// @notice Why a task was closed without settlement.
    enum CloseReason {
        NoCommits,
        NoRevealedSolutions,
        TooFewVotes,
        NoStakeQuorum
    }

    /// @notice The phases of a task, in order.
    enum Phase {
        Commit,
        SolutionReveal,
        GroundTruthReveal,
        VoteCommit,
        VoteReveal
    }

    /// @notice Block numbers (inclusive) ending each phase.
    struct Deadlines {
        uint64 commitEnd;
        uint64 solRevealEnd;
        uint64 gtRevealEnd;
        uint64 voteCommitEnd;
        uint64 voteRevealEnd;
    }

    /// @notice Summary of a task.
    struct TaskView {
        address proposer;
        uint256 projectId;
        TaskState state;
        uint256 reward;
        bytes32 gtCommit;
        Deadlines deadlines;
        uint8 maxSolvers;
        uint8 minVotes;
        uint8 numCommitted;
        uint8 numRevealed;
        uint8 numVoteCommits;
        uint8 numVoteReveals;
    }

    /// @notice A task was proposed; `reward` is reserved from the project budget.
    event TaskProposed(
        uint256 indexed taskId,
        uint256 indexed projectId,
        address indexed proposer,
        bytes32 specHash,
        bytes32 gtCommit,
        uint256 reward,
        Deadlines deadlines
    );
    /// @notice `solver` committed (its `index` in commit order).
    event SolutionCommitted(uint256 indexed taskId, address indexed solver, bytes32 commitment, uint8 index);
    /// @notice All solver seats were taken: `displaced` (the smallest stake) lost seat `index` to `by`, who bound
    ///         more stake. The displaced solver's commitment is void.
    event SolverDisplaced(uint256 indexed taskId, address indexed displaced, address indexed by, uint256 index);
    /// @notice All coordinator seats were taken: `displaced` (the smallest stake) lost seat `index` to `by`.
    event VoteDisplaced(uint256 indexed taskId, address indexed displaced, address indexed by, uint256 index);
    /// @notice Everyone who could act in `phase` has: it ended at this block, and the deadlines of it and of every
    ///         later phase moved `blocksSaved` blocks earlier (getTask returns the new deadlines).
    event PhaseClosedEarly(uint256 indexed taskId, Phase phase, uint64 blocksSaved);
    /// @notice Governance retired this manager after task `lastTaskId`: no new proposals; open tasks run to the end.
    event Retired(uint256 lastTaskId);
    /// @notice The share of total coordinator stake that revealed votes must exceed changed.
    event VoteQuorumUpdated(uint16 quorumBps);
    /// @notice The proposer revealed the evaluation spec: coordinators fetch it by hash.
    event GroundTruthRevealed(uint256 indexed taskId, address indexed proposer, bytes32 evalSpecHash);
    /// @notice `solver` revealed its delta: the shard root and the hash of the manifest (shape, size, content
    ///         hash) it committed to; `revealIndex` is its column in every score vector.
    event SolutionRevealed(
        uint256 indexed taskId,
        address indexed solver,
        bytes32 deltaRoot,
        bytes32 manifestHash,
        uint8 revealIndex
    );
    /// @notice `coordinator` committed a score vector.
    event VoteCommitted(uint256 indexed taskId, address indexed coordinator, bytes32 commitment);
    /// @notice `coordinator` revealed `scores` (one per revealed solver, in reveal order).
    event VoteRevealed(uint256 indexed taskId, address indexed coordinator, uint16[] scores);
    /// @notice The task was settled by Rewards.
    event TaskFinalized(
        uint256 indexed taskId,
        uint256 indexed projectId,
        uint256 spent,
        uint256 aggregatorFee,
        uint256 released
    );
    /// @notice The task was closed without settlement; `released` went back to the budget.
    event TaskClosed(uint256 indexed taskId, uint256 indexed projectId, CloseReason reason, uint256 released);
    /// @notice Solutions were revealed and the proposer never revealed the eval spec: task cancelled, reward
    ///         released, proposer slashed (at least the solver pool, at most its stake).
    event TaskCancelled(
        uint256 indexed taskId,
        uint256 indexed projectId,
        address indexed proposer,
        uint256 released,
        uint256 slashed
    );
    /// @notice `account` committed but never revealed and lost `amount` of stake (may be 0).
    event MissedRevealSlashed(
        uint256 indexed taskId, address indexed account, uint256 amount, bytes32 reason
    );
    /// @notice Slash parameters changed (bps of the role's minimum stake).
    event SlashParamsUpdated(uint16 proposerBps, uint16 solverBps, uint16 coordinatorBps);

    /// @notice With this task `proposer` would hold `held` reserved in the project's open tasks, above the cap its
    ///         owner approved (`cap` 0 = not approved).
    error TaskManagerProposerNotApproved(uint256 projectId, address proposer, uint256 held, uint256 cap);
    /// @notice This manager is retired: propose on its successor.
    error TaskManagerIsRetired();
    /// @notice A replacement manager can only follow a retired predecessor (whose ids it continues).
    error TaskManagerPredecessorActive(address predecessor);
    /// @notice No task with this id.
    error TaskManagerUnknownTask(uint256 taskId);
    /// @notice No project with this id.
    error TaskManagerUnknownProject(uint256 projectId);
    /// @notice The caller is not active in the required role.
    error TaskManagerNotActive(address account, uint8 role);
    /// @notice The task is not in the required state.
    error TaskManagerWrongState(uint256 taskId, TaskState state);
    /// @notice The action is outside its window: allowed for `opens < block <= closes`.
    error TaskManagerOutsideWindow(uint256 taskId, uint256 blockNumber, uint256 opens, uint256 closes);
    /// @notice The task already has its maximum number of solvers or coordinators.
    error TaskManagerFull(uint256 taskId);
    /// @notice The caller already committed.
    error TaskManagerAlreadyCommitted(uint256 taskId, address account);
    /// @notice The caller has no commitment (or already revealed).
    error TaskManagerNoCommitment(uint256 taskId, address account);
    /// @notice The reveal does not match the commitment.
    error TaskManagerCommitmentMismatch(uint256 taskId, address account);
    /// @notice Only the task's proposer may do this.
    error TaskManagerNotProposer(uint256 taskId, address caller);
    /// @notice The score vector length must equal the number of revealed solutions.
    error TaskManagerBadScoresLength(uint256 length, uint256 expected);
    /// @notice No solution was revealed: there is nothing to vote on.
    error TaskManagerNoSolutions(uint256 taskId);
    /// @notice Zero reward, zero hash, or an invalid parameter.
    error TaskManagerInvalidInput();
    /// @notice The task cannot be finalized or closed yet; retry after block `after`.
    error TaskManagerTooEarly(uint256 taskId, uint256 after_);

    /// @notice Active Proposer approved by the project's owner (IProject.proposerCap bounds what it holds reserved
    ///         in the project's open tasks at once, this reward included): open
    ///         a task and reserve `reward` from the project budget. The proposer's stake is bound (cannot be
    ///         unbonded) until the task's voteRevealEnd. `gtCommit = keccak256(abi.encode(proposer, projectId, evalSpecHash, salt))`.
    function proposeTask(uint256 projectId, bytes32 specHash, bytes32 gtCommit, uint256 reward)
        external
        returns (uint256 taskId);

    /// @notice Active Solver, once, until commitEnd. The solver's bonded stake is bound until voteRevealEnd and
    ///         recorded with the seat. When maxSolvers seats are taken, the seat of the smallest
    ///         stake goes to a caller with strictly more stake (SolverDisplaced), else TaskManagerFull.
    ///         `commitment = keccak256(abi.encode(taskId, solver, deltaRoot, manifestHash, salt))`.
    function commitSolution(uint256 taskId, bytes32 commitment) external;

    /// @notice A committed solver, after commitEnd until solRevealEnd, before anyone but the proposer knows the
    ///         eval spec: a solver cannot choose whether to reveal by how the evaluation will go.
    function revealSolution(uint256 taskId, bytes32 deltaRoot, bytes32 manifestHash, bytes32 salt) external;

    /// @notice Proposer only, after solRevealEnd until gtRevealEnd, once at least one solution was revealed.
    function revealGroundTruth(uint256 taskId, bytes32 evalSpecHash, bytes32 salt) external;

    /// @notice Active Coordinator, after gtRevealEnd until voteCommitEnd. Its bonded stake is bound until
    ///         voteRevealEnd and recorded: that snapshot is its consensus weight. At most 16 seats; when full, the seat of the smallest stake
    ///         goes to a caller with strictly more stake (VoteDisplaced), else TaskManagerFull.
    ///         `commitment = keccak256(abi.encode(taskId, coordinator, scores, salt))` with `uint16[] scores`.
    function commitVote(uint256 taskId, bytes32 commitment) external;

    /// @notice A committed coordinator, after voteCommitEnd until voteRevealEnd. `scores` has one entry per
    ///         revealed solution, in reveal order (see `revealedSolvers`).
    function revealVote(uint256 taskId, uint16[] calldata scores, bytes32 salt) external;

    /// @notice Anyone: finish the task as far as its windows allow.
    ///         - Open, no commits, after commitEnd: Closed(NoCommits), reward released.
    ///         - Open with commits and no revealed solution, after solRevealEnd: unrevealed solvers slashed,
    ///           Closed(NoRevealedSolutions).
    ///         - Open with revealed solutions, after gtRevealEnd: Cancelled, reward released, unrevealed solvers
    ///           slashed, and the proposer slashed the larger of its slash bps of the minimum stake and the
    ///           solver pool (at most its stake): withholding the eval spec once the solutions are public costs
    ///           at least what paying for them would have.
    ///         - GroundTruthRevealed, after voteRevealEnd: unrevealed solvers/coordinators slashed (a solver
    ///           loses the larger of its slash bps of the minimum stake and its seat's share of the solver
    ///           pool, at most its stake); fewer than
    ///           minVotes revealed votes → Closed(TooFewVotes); revealed votes whose bound stake is not more
    ///           than `voteQuorum` of the total coordinator stake → Closed(NoStakeQuorum); otherwise settled by
    ///           Rewards → Finalized.
    ///         Slashes never revert (try/catch).
    function finalize(uint256 taskId) external returns (TaskState state);

    /// @notice DEFAULT_ADMIN_ROLE: slash amounts in bps of the role's minimum stake (each ≤ 10000).
    function setSlashParams(uint16 proposerBps, uint16 solverBps, uint16 coordinatorBps) external;

    /// @notice DEFAULT_ADMIN_ROLE: stop new proposals for good (before deploying a replacement, whose constructor
    ///         requires it); tasks already open still run through finalize.
    function retire() external;

    /// @notice What `proposer` holds reserved in the project's open tasks (at most its proposerCap).
    function heldBy(uint256 projectId, address proposer) external view returns (uint256);

    /// @notice Whether governance retired this manager.
    function retired() external view returns (bool);

    /// @notice DEFAULT_ADMIN_ROLE: revealed votes must carry more than `quorumBps` (< 10000) of the total
    ///         coordinator stake for a task to settle.
    function setVoteQuorum(uint16 quorumBps) external;

    /// @notice The vote quorum in bps of total coordinator stake.
    function voteQuorum() external view returns (uint16);

    /// @notice The stake `account` had bonded when it took its seat in the task (0 if it holds none).
    function seatStake(uint256 taskId, address account) external view returns (uint256);

    /// @notice The stored state of a task.
    function taskState(uint256 taskId) external view returns (TaskState);

    /// @notice Everything about a task.
    function getTask(uint256 taskId) external view returns (TaskView memory);

    /// @notice Solvers that revealed, in reveal order (the columns of every score vector).
    function revealedSolvers(uint256 taskId) external view returns (address[] memory);

    /// @notice Solvers that committed, in commit order.
    function committedSolvers(uint256 taskId) external view returns (address[] memory);

    /// @notice Coordinators that committed a vote, in commit order.
    function voteCommitters(uint256 taskId) external view returns (address[] memory);

    /// @notice Revealed scores of `coordinator` (empty if not revealed).
    function scoresOf(uint256 taskId, address coordinator) external view returns (uint16[] memory);

    /// @notice Number of tasks proposed (the last id).
    function taskCount() external view returns (uint256);

    /// @notice Slash parameters (bps of min stake).
    function slashParams() external view returns (uint16 proposerBps, uint16 solverBps, uint16 coordinatorBps);
}
