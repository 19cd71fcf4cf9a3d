// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IRewards
/// @notice Settles finalized tasks: runs the Yuma-style consensus (`YumaConsensus`, docs/consensus.md) over the
///         revealed coordinator score rows, persists bonds per (project, coordinator, solver), pulls the solver,
///         coordinator and proposer shares out of the project's reservation into itself, credits pull-based
///         `claimable` balances, records solver rewards as contributor shares in the InferenceMarket, keeps the
///         aggregator fee reserved until the project's publish window ends, and releases everything unspent
///         (the part of the solver pool no absolute improvement earned, unpaid shares, rounding dust) back to the
///         project budget. It never pays more than the task reserved.
interface IRewards {
    /// @notice What TaskManager hands over when a task is finalized.
    /// @dev `scores[i]` is coordinator i's revealed row over `solvers` (same order, same length). Scores are absolute:
    ///      65535 means the solver reached the task's target improvement; the solver pool is paid in proportion to
    ///      the highest score backed by more than κ of all coordinator stake (docs/consensus.md, Payouts).
    ///      `stakes[i]` is coordinator i's bonded stake when it committed its vote (`TaskManager.seatStake`).
    ///      Lengths are capped at 16.
    struct Settlement {
        uint256 taskId;
        uint256 projectId;
        address proposer;
        uint256 reward;
        address[] solvers;
        address[] coordinators;
        uint256[] stakes;
        uint16[][] scores;
        /// @dev Total coordinator stake as the task's vote commits saw it (the largest total seen, in whole tokens
        ///      rounded up, times 1e18): a consensus value needs more than κ of it (not only of the voters' stake)
        ///      behind it.
        uint256 coordinatorStake;
    }

    /// @notice The aggregator fee of a task, reserved in the project until `deadline` (block number).
    struct PendingFee {
        uint64 projectId;
        uint64 deadline;
        uint128 amount;
    }

    /// @notice A task was settled. Amounts: paid to solvers, coordinators, proposer; aggregator fee kept reserved;
    ///         `released` went back to the project budget.
    event TaskSettled(
        uint256 indexed taskId,
        uint256 indexed projectId,
        uint256 solversPaid,
        uint256 coordinatorsPaid,
        uint256 proposerFee,
        uint256 aggregatorFee,
        uint256 released
    );
    /// @notice Solver result of a settled task (consensus and incentive in 1e18 fixed point).
    event SolverRewarded(
        uint256 indexed taskId, address indexed solver, uint256 consensus, uint256 incentive, uint256 amount
    );
    /// @notice Coordinator result of a settled task (dividend in 1e18 fixed point).
    event CoordinatorRewarded(
        uint256 indexed taskId, address indexed coordinator, uint256 dividend, uint256 amount
    );
    /// @notice The proposer fee was credited.
    event ProposerRewarded(uint256 indexed taskId, address indexed proposer, uint256 amount);
    /// @notice The aggregator fee stays reserved until `deadline`.
    event AggregatorFeePending(
        uint256 indexed taskId, uint256 indexed projectId, uint256 amount, uint256 deadline
    );
    /// @notice The aggregator fee was credited to `aggregator`.
    event AggregatorFeePaid(
        uint256 indexed taskId, uint256 indexed projectId, address indexed aggregator, uint256 amount
    );
    /// @notice An unpaid aggregator fee went back to the project budget.
    event AggregatorFeeReleased(uint256 indexed taskId, uint256 indexed projectId, uint256 amount);
    /// @notice `account` claimed `amount`.
    event Claimed(address indexed account, uint256 amount);
    /// @notice Consensus parameters changed (1e18 fixed point).
    event ConsensusParamsUpdated(uint256 kappa, uint256 alpha);
    /// @notice Governance set the consensus engine (zero: compute in this contract).
    event ConsensusEngineUpdated(address engine);
    /// @notice The engine failed for `taskId` (`reason`: its revert data, or "result shape" / "result encoding" /
    ///         "result size");
    ///         the consensus was computed here instead.
    event ConsensusEngineFallback(uint256 indexed taskId, address indexed engine, bytes reason);

    /// @notice The task is not of that project (or was never settled).
    error RewardsTaskProjectMismatch(uint256 taskId, uint256 projectId, uint256 taskProjectId);
    /// @notice The task was already settled.
    error RewardsAlreadySettled(uint256 taskId);
    /// @notice Settlement arrays are inconsistent or over the caps.
    error RewardsInvalidSettlement();
    /// @notice Nothing to claim.
    error RewardsNothingToClaim();
    /// @notice No aggregator fee pending for the task.
    error RewardsNoPendingFee(uint256 taskId);
    /// @notice The aggregator fee deadline has not passed.
    error RewardsFeeNotExpired(uint256 taskId, uint256 deadline);
    /// @notice kappa out of [0, 1e18) or alpha out of (0, 1e18]: with the strict consensus threshold, κ = 1 would
    ///         leave every consensus at zero.
    error RewardsInvalidParams(uint256 kappa, uint256 alpha);
    /// @notice The zero address was given.
    error RewardsZeroAddress();
    /// @notice The consensus engine address holds no code.
    error RewardsEngineHasNoCode(address engine);

    /// @notice TASK_MANAGER_ROLE: settle a finalized task whose `reward` is reserved in the project.
    /// @return spent paid out of the reservation into this contract (solvers + coordinators + proposer)
    /// @return aggregatorFee kept reserved as the task's pending fee
    /// @return released returned to the project budget
    function settleTask(Settlement calldata s)
        external
        returns (uint256 spent, uint256 aggregatorFee, uint256 released);

    /// @notice MODEL_REGISTRY_ROLE: credits the task's pending aggregator fee to `aggregator`; returns 0 if none
    ///         pending (already paid or expired: an expired fee is released to the budget instead); reverts
    ///         RewardsTaskProjectMismatch if the task is not of that project.
    function payAggregatorFee(uint256 projectId, uint256 taskId, address aggregator)
        external
        returns (uint256 paid);

    /// @notice Anyone: after the deadline, release a task's unpaid aggregator fee back to the project budget.
    function releaseExpiredAggregatorFee(uint256 taskId) external returns (uint256 released);

    /// @notice Pull the caller's claimable balance.
    function claim() external returns (uint256 amount);

    /// @notice DEFAULT_ADMIN_ROLE: set kappa (consensus quantile) and alpha (bond EMA rate), 1e18 fixed point.
    function setConsensusParams(uint256 kappa, uint256 alpha) external;

    /// @notice DEFAULT_ADMIN_ROLE: delegate the consensus computation to `engine` (a contract with
    ///         IConsensusEngine.compute, e.g. the Stylus engine in contracts/stylus), or compute here (zero).
    function setConsensusEngine(address engine) external;

    /// @notice The consensus engine (zero: computed in this contract).
    function consensusEngine() external view returns (address);

    /// @notice Claimable balance of `account`.
    function claimable(address account) external view returns (uint256);

    /// @notice Sum of every account's claimable balance (equals this contract's token balance).
    function totalClaimable() external view returns (uint256);

    /// @notice Bond (1e18 fixed point) of `coordinator` on `solver` within `projectId`.
    function bondOf(uint256 projectId, address coordinator, address solver) external view returns (uint256);

    /// @notice The pending aggregator fee record of a task (projectId 0 if never settled).
    function pendingFee(uint256 taskId) external view returns (PendingFee memory);

    /// @notice Whether the task was settled.
    function settled(uint256 taskId) external view returns (bool);

    /// @notice Consensus parameters (kappa, alpha) in 1e18 fixed point.
    function consensusParams() external view returns (uint256 kappa, uint256 alpha);
}
