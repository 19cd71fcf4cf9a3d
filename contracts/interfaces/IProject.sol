// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IProject
/// @notice Registry of every Autonet training project (ids from 1). Escrows every token funded to a project and
///         keeps, per project, `funded == budget + reserved + paid` at all times. Only SPENDER_ROLE holders
///         (TaskManager, Rewards) move money out of a budget; only MODEL_PUBLISHER_ROLE (ModelShardRegistry)
///         moves the global model root forward.
interface IProject {
    /// @notice How a task reward is split, in basis points summing to 10000.
    struct RewardSplit {
        uint16 solverBps;
        uint16 coordinatorBps;
        uint16 proposerBps;
        uint16 aggregatorBps;
    }

    /// @notice Length of each phase of a task, in blocks (each > 0).
    /// @dev Applied in the order commit → solReveal → gtReveal → voteCommit → voteReveal (TaskManager):
    ///      commit: solvers commit; solReveal: solvers reveal; gtReveal: proposer reveals the eval spec;
    ///      voteCommit / voteReveal: coordinators commit / reveal score vectors; publish: time after finalize
    ///      during which the aggregator fee stays reserved for a model publication.
    struct Windows {
        uint32 commit;
        uint32 gtReveal;
        uint32 solReveal;
        uint32 voteCommit;
        uint32 voteReveal;
        uint32 publish;
    }

    /// @notice Parameters of `createProject`.
    struct CreateProjectParams {
        bytes32 modelSpecHash;
        string modelURI;
        bytes32 datasetRoot;
        bytes32 initialModelRoot;
        uint256 inferencePrice;
        RewardSplit split;
        Windows windows;
        uint8 maxSolvers;
        uint8 minVotes;
        uint8 maxStaleness;
    }

    /// @notice The round configuration of a project, read by TaskManager and Rewards in one call.
    /// @dev `maxStaleness` is how many models newer than a task's base its aggregate may be applied to (0 or 1):
    ///      with 1, the next task is proposed while the previous one is still being revealed, scored and
    ///      aggregated (pipelined rounds), and its aggregated delta is applied to the model that round produced.
    ///      Coordinators enforce it when they recompute a published model before attesting it.
    struct Config {
        address owner;
        uint8 maxSolvers;
        uint8 minVotes;
        uint8 maxStaleness;
        RewardSplit split;
        Windows windows;
    }

    /// @notice Everything about a project.
    struct ProjectView {
        address owner;
        uint8 maxSolvers;
        uint8 minVotes;
        uint8 maxStaleness;
        RewardSplit split;
        Windows windows;
        bytes32 modelSpecHash;
        bytes32 datasetRoot;
        bytes32 modelRoot;
        uint256 inferencePrice;
        uint256 funded;
        uint256 budget;
        uint256 reserved;
        uint256 paid;
        string modelURI;
    }

    /// @notice A project was created by `owner`.
    event ProjectCreated(
        uint256 indexed projectId,
        address indexed owner,
        bytes32 modelSpecHash,
        string modelURI,
        bytes32 datasetRoot,
        bytes32 initialModelRoot,
        uint256 inferencePrice,
        RewardSplit split,
        Windows windows,
        uint8 maxSolvers,
        uint8 minVotes,
        uint8 maxStaleness
    );
    /// @notice `funder` added `amount` to the budget.
    event ProjectFunded(uint256 indexed projectId, address indexed funder, uint256 amount, uint256 budget);
    /// @notice `amount` moved from budget to reserved.
    event BudgetReserved(uint256 indexed projectId, address indexed spender, uint256 amount);
    /// @notice `amount` moved from reserved back to budget.
    event ReservationReleased(uint256 indexed projectId, address indexed spender, uint256 amount);
    /// @notice `amount` of the reservation was paid (transferred) to `to`.
    event ReservationPaid(
        uint256 indexed projectId, address indexed spender, address indexed to, uint256 amount
    );
    /// @notice The global model moved from `parentRoot` to `newRoot`.
    event ModelAdvanced(uint256 indexed projectId, bytes32 parentRoot, bytes32 newRoot);
    /// @notice The inference price changed.
    event InferencePriceUpdated(uint256 indexed projectId, uint256 price);
    /// @notice The reward split changed.
    event RewardSplitUpdated(uint256 indexed projectId, RewardSplit split);
    /// @notice The windows changed (tasks already proposed keep their deadlines).
    event WindowsUpdated(uint256 indexed projectId, Windows windows);
    /// @notice The owner set how much `proposer` may hold reserved in open tasks (0 = not approved).
    event ProposerCapSet(uint256 indexed projectId, address indexed proposer, uint256 maxReward);
    /// @notice The per-task solver cap and vote quorum changed.
    event TaskLimitsUpdated(uint256 indexed projectId, uint8 maxSolvers, uint8 minVotes);
    /// @notice Governance changed how stale a task's base may be when its aggregate is applied.
    event MaxStalenessUpdated(uint256 indexed projectId, uint8 maxStaleness);
    /// @notice `by` (the owner or governance) set (`set` true) or cleared (`set` false, coordinates zero) the
    ///         project's jurisdiction vector.
    event JurisdictionUpdated(uint256 indexed projectId, address indexed by, bool set, int32[4] coords);

    /// @notice No project with this id.
    error ProjectUnknown(uint256 projectId);
    /// @notice Only the project owner may do this.
    error ProjectNotOwner(address caller, address owner);
    /// @notice The split does not sum to 10000 bps.
    error ProjectInvalidSplit(uint256 sumBps);
    /// @notice A window is zero.
    error ProjectInvalidWindows();
    /// @notice maxSolvers must be in 1..16 and minVotes in 1..16.
    error ProjectInvalidTaskLimits(uint8 maxSolvers, uint8 minVotes);
    /// @notice `maxStaleness` is above the most this protocol supports.
    error ProjectStalenessTooHigh(uint8 maxStaleness, uint8 max);
    /// @notice A zero amount was given.
    error ProjectZeroAmount();
    /// @notice The zero address was given.
    error ProjectZeroAddress();
    /// @notice The root given is zero.
    error ProjectZeroRoot();
    /// @notice The budget cannot cover the reservation.
    error ProjectInsufficientBudget(uint256 budget, uint256 amount);
    /// @notice The reservation cannot cover the release or payment.
    error ProjectInsufficientReserve(uint256 reserved, uint256 amount);
    /// @notice The publication's parent is not the current model.
    error ProjectStaleParent(bytes32 current, bytes32 parent);
    /// @notice A jurisdiction coordinate is outside [-1_000_000, 1_000_000]; `axis` is 0 life_precious,
    ///         1 self_preservation, 2 promotion_of_intelligence, 3 evolution.
    error ProjectJurisdictionOutOfRange(uint8 axis, int32 value);

    /// @notice Create a project owned by the caller. Returns its id (from 1).
    function createProject(CreateProjectParams calldata params) external returns (uint256 projectId);

    /// @notice Add `amount` tokens (pulled from the caller with transferFrom) to the project's budget.
    function fund(uint256 projectId, uint256 amount) external;

    /// @notice SPENDER_ROLE: move `amount` from budget to reserved. Reverts ProjectInsufficientBudget.
    function reserve(uint256 projectId, uint256 amount) external;

    /// @notice SPENDER_ROLE: move `amount` from reserved back to budget. Reverts ProjectInsufficientReserve.
    function release(uint256 projectId, uint256 amount) external;

    /// @notice SPENDER_ROLE: move `amount` from reserved to paid and transfer it to `to`.
    function pay(uint256 projectId, address to, uint256 amount) external;

    /// @notice MODEL_PUBLISHER_ROLE: move the model root from `parentRoot` (must be current) to `newRoot`.
    function advanceModel(uint256 projectId, bytes32 parentRoot, bytes32 newRoot) external;

    /// @notice Owner: approve `proposer` to hold at most `maxReward` of this project's budget reserved in its open
    ///         tasks at once, or revoke it with 0. Only approved proposers spend a project's budget (TaskManager
    ///         checks it), and none can lock more of it than its cap.
    function setProposerCap(uint256 projectId, address proposer, uint256 maxReward) external;

    /// @notice The most `proposer` may hold reserved in the project's open tasks at once (0 = not approved).
    function proposerCap(uint256 projectId, address proposer) external view returns (uint256);

    /// @notice Owner: set the inference price (0 = not for sale).
    function setInferencePrice(uint256 projectId, uint256 price) external;

    /// @notice Owner or DEFAULT_ADMIN_ROLE (governance, through an executed proposal): set the project's
    ///         jurisdiction vector in charter space, one coordinate per axis (life_precious, self_preservation,
    ///         promotion_of_intelligence, evolution), fixed point 1e6, each in [-1e6, 1e6] (else
    ///         ProjectJurisdictionOutOfRange). Inference nodes price each request by its alignment with it
    ///         (docs/x402.md, "Alignment pricing"). Anyone else: ProjectNotOwner.
    function setJurisdiction(uint256 projectId, int32[4] calldata coords) external;

    /// @notice Owner or DEFAULT_ADMIN_ROLE (governance): remove the jurisdiction (requests are then priced at
    ///         the plain inference price).
    function clearJurisdiction(uint256 projectId) external;

    /// @notice The project's jurisdiction: `set` false (and zero coordinates) when it has none.
    function jurisdictionOf(uint256 projectId) external view returns (bool set, int32[4] memory coords);

    /// @notice DEFAULT_ADMIN_ROLE (governance): set the reward split (sums to 10000).
    function setRewardSplit(uint256 projectId, RewardSplit calldata split) external;

    /// @notice DEFAULT_ADMIN_ROLE (governance): set the windows (each > 0); affects tasks proposed afterwards.
    function setWindows(uint256 projectId, Windows calldata windows) external;

    /// @notice DEFAULT_ADMIN_ROLE (governance): set the per-task solver cap and the minimum revealed votes.
    function setTaskLimits(uint256 projectId, uint8 maxSolvers, uint8 minVotes) external;

    /// @notice DEFAULT_ADMIN_ROLE (governance): set how many models newer than a task's base its aggregate may be
    ///         applied to (0: rounds in sequence; 1: pipelined rounds). Applies to publications from now on.
    function setMaxStaleness(uint256 projectId, uint8 maxStaleness) external;

    /// @notice Whether the project exists.
    function exists(uint256 projectId) external view returns (bool);

    /// @notice The current global model root.
    function modelRoot(uint256 projectId) external view returns (bytes32);

    /// @notice The inference price.
    function inferencePrice(uint256 projectId) external view returns (uint256);

    /// @notice The round configuration (owner, caps, split, windows). Reverts ProjectUnknown.
    function config(uint256 projectId) external view returns (Config memory);

    /// @notice Everything about a project. Reverts ProjectUnknown.
    function getProject(uint256 projectId) external view returns (ProjectView memory);

    /// @notice Unreserved budget.
    function budgetOf(uint256 projectId) external view returns (uint256);

    /// @notice Reserved amount.
    function reservedOf(uint256 projectId) external view returns (uint256);

    /// @notice Total ever paid out.
    function paidOf(uint256 projectId) external view returns (uint256);

    /// @notice Total ever funded.
    function fundedOf(uint256 projectId) external view returns (uint256);

    /// @notice Number of projects created (the last id).
    function projectCount() external view returns (uint256);

    /// @notice The escrowed token.
    function token() external view returns (address);
}
