// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IProject} from "./interfaces/IProject.sol";

/// @title Project
/// @notice Registry and escrow of all training projects. See {IProject}.
contract Project is IProject, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice May reserve, release and pay project budget (TaskManager, Rewards).
    bytes32 public constant SPENDER_ROLE = keccak256("SPENDER_ROLE");
    /// @notice May advance a project's model root (ModelShardRegistry).
    bytes32 public constant MODEL_PUBLISHER_ROLE = keccak256("MODEL_PUBLISHER_ROLE");
    /// @notice Cap on solvers per task.
    uint8 public constant MAX_SOLVERS_PER_TASK = 16;
    /// @notice Cap on the vote quorum (coordinators per task are capped at 16 too).
    uint8 public constant MAX_MIN_VOTES = 16;
    /// @notice The most models newer than a task's base its aggregate may be applied to (bounded staleness).
    uint8 public constant MAX_STALENESS = 1;
    /// @notice Fixed point of jurisdiction coordinates: 1.0 is 1_000_000 (each coordinate is in [-1e6, 1e6]).
    int32 public constant JURISDICTION_SCALE = 1_000_000;

    /// @dev Money of one project, two slots. uint128 holds far more than any token supply.
    struct Accounts {
        uint128 funded;
        uint128 paid;
        uint128 budget;
        uint128 reserved;
    }

    /// @dev Everything else about a project.
    struct Data {
        Config config; // 2 slots
        bytes32 modelSpecHash;
        bytes32 datasetRoot;
        bytes32 modelRoot;
        uint256 inferencePrice;
        string modelURI;
    }

    /// @dev A project's jurisdiction vector, one slot (`set` false: no jurisdiction, coordinates zero).
    struct Jurisdiction {
        bool set;
        int32 lifePrecious;
        int32 selfPreservation;
        int32 promotionOfIntelligence;
        int32 evolution;
    }

    IERC20 private immutable _token;
    uint256 private _count;
    mapping(uint256 projectId => Data) private _projects;
    mapping(uint256 projectId => Accounts) private _accounts;
    mapping(uint256 projectId => mapping(address proposer => uint256 maxReward)) private _proposerCaps;
    mapping(uint256 projectId => Jurisdiction) private _jurisdictions;

    /// @param admin receives DEFAULT_ADMIN_ROLE
    /// @param token_ the ATN token escrowed
    constructor(address admin, IERC20 token_) {
        if (admin == address(0) || address(token_) == address(0)) revert ProjectZeroAddress();
        _token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ projects

    /// @inheritdoc IProject
    function createProject(CreateProjectParams calldata p) external returns (uint256 projectId) {
        _checkSplit(p.split);
        _checkWindows(p.windows);
        _checkLimits(p.maxSolvers, p.minVotes);
        _checkStaleness(p.maxStaleness);
        if (p.initialModelRoot == bytes32(0)) revert ProjectZeroRoot();
        projectId = ++_count;
        Data storage d = _projects[projectId];
        d.config = Config({
            owner: msg.sender,
            maxSolvers: p.maxSolvers,
            minVotes: p.minVotes,
            maxStaleness: p.maxStaleness,
            split: p.split,
            windows: p.windows
        });
        d.modelSpecHash = p.modelSpecHash;
        d.datasetRoot = p.datasetRoot;
        d.modelRoot = p.initialModelRoot;
        d.inferencePrice = p.inferencePrice;
        d.modelURI = p.modelURI;
        emit ProjectCreated(
            projectId,
            msg.sender,
            p.modelSpecHash,
            p.modelURI,
            p.datasetRoot,
            p.initialModelRoot,
            p.inferencePrice,
            p.split,
            p.windows,
            p.maxSolvers,
            p.minVotes,
            p.maxStaleness
        );
    }

    /// @inheritdoc IProject
    function fund(uint256 projectId, uint256 amount) external nonReentrant {
        _requireExists(projectId);
        if (amount == 0) revert ProjectZeroAmount();
        Accounts storage a = _accounts[projectId];
        // Effects before the pull (CEI); SafeCast reverts if the project's total would leave uint128.
        a.funded = SafeCast.toUint128(uint256(a.funded) + amount);
        a.budget += uint128(amount); // budget <= funded, which fits uint128 after the line above
        emit ProjectFunded(projectId, msg.sender, amount, a.budget);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    // ------------------------------------------------------------------ spender

    /// @inheritdoc IProject
    function reserve(uint256 projectId, uint256 amount) external onlyRole(SPENDER_ROLE) {
        _requireExists(projectId);
        Accounts storage a = _accounts[projectId];
        uint256 budget = a.budget;
        if (amount > budget) revert ProjectInsufficientBudget(budget, amount);
        // amount <= budget <= uint128 max, so the casts are exact and reserved + amount <= funded.
        a.budget = uint128(budget - amount);
        a.reserved += uint128(amount);
        emit BudgetReserved(projectId, msg.sender, amount);
    }

    /// @inheritdoc IProject
    function release(uint256 projectId, uint256 amount) external onlyRole(SPENDER_ROLE) {
        _requireExists(projectId);
        Accounts storage a = _accounts[projectId];
        uint256 reserved = a.reserved;
        if (amount > reserved) revert ProjectInsufficientReserve(reserved, amount);
        a.reserved = uint128(reserved - amount);
        a.budget += uint128(amount);
        emit ReservationReleased(projectId, msg.sender, amount);
    }

    /// @inheritdoc IProject
    function pay(uint256 projectId, address to, uint256 amount) external onlyRole(SPENDER_ROLE) nonReentrant {
        _requireExists(projectId);
        if (to == address(0)) revert ProjectZeroAddress();
        Accounts storage a = _accounts[projectId];
        uint256 reserved = a.reserved;
        if (amount > reserved) revert ProjectInsufficientReserve(reserved, amount);
        a.reserved = uint128(reserved - amount);
        a.paid += uint128(amount);
        emit ReservationPaid(projectId, msg.sender, to, amount);
        if (amount != 0) _token.safeTransfer(to, amount);
    }

    // ------------------------------------------------------------------ model

    /// @inheritdoc IProject
    function advanceModel(uint256 projectId, bytes32 parentRoot, bytes32 newRoot)
        external
        onlyRole(MODEL_PUBLISHER_ROLE)
    {
        _requireExists(projectId);
        if (newRoot == bytes32(0)) revert ProjectZeroRoot();
        Data storage d = _projects[projectId];
        bytes32 current = d.modelRoot;
        if (parentRoot != current) revert ProjectStaleParent(current, parentRoot);
        d.modelRoot = newRoot;
        emit ModelAdvanced(projectId, parentRoot, newRoot);
    }

    // ------------------------------------------------------------------ settings

    /// @inheritdoc IProject
    function setInferencePrice(uint256 projectId, uint256 price) external {
        _requireExists(projectId);
        Data storage d = _projects[projectId];
        address owner = d.config.owner;
        if (msg.sender != owner) revert ProjectNotOwner(msg.sender, owner);
        d.inferencePrice = price;
        emit InferencePriceUpdated(projectId, price);
    }

    /// @inheritdoc IProject
    function setProposerCap(uint256 projectId, address proposer, uint256 maxReward) external {
        _requireExists(projectId);
        address owner = _projects[projectId].config.owner;
        if (msg.sender != owner) revert ProjectNotOwner(msg.sender, owner);
        if (proposer == address(0)) revert ProjectZeroAddress();
        _proposerCaps[projectId][proposer] = maxReward;
        emit ProposerCapSet(projectId, proposer, maxReward);
    }

    /// @inheritdoc IProject
    function setJurisdiction(uint256 projectId, int32[4] calldata coords) external {
        _requireOwnerOrGovernance(projectId);
        for (uint256 axis; axis < 4; ++axis) {
            int32 c = coords[axis];
            if (c < -JURISDICTION_SCALE || c > JURISDICTION_SCALE) {
                revert ProjectJurisdictionOutOfRange(uint8(axis), c);
            }
        }
        _jurisdictions[projectId] = Jurisdiction({
            set: true,
            lifePrecious: coords[0],
            selfPreservation: coords[1],
            promotionOfIntelligence: coords[2],
            evolution: coords[3]
        });
        emit JurisdictionUpdated(projectId, msg.sender, true, coords);
    }

    /// @inheritdoc IProject
    function clearJurisdiction(uint256 projectId) external {
        _requireOwnerOrGovernance(projectId);
        delete _jurisdictions[projectId];
        int32[4] memory zero;
        emit JurisdictionUpdated(projectId, msg.sender, false, zero);
    }

    /// @inheritdoc IProject
    function setRewardSplit(uint256 projectId, RewardSplit calldata split)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _requireExists(projectId);
        _checkSplit(split);
        _projects[projectId].config.split = split;
        emit RewardSplitUpdated(projectId, split);
    }

    /// @inheritdoc IProject
    function setWindows(uint256 projectId, Windows calldata windows) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(projectId);
        _checkWindows(windows);
        _projects[projectId].config.windows = windows;
        emit WindowsUpdated(projectId, windows);
    }

    /// @inheritdoc IProject
    function setTaskLimits(uint256 projectId, uint8 maxSolvers, uint8 minVotes)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _requireExists(projectId);
        _checkLimits(maxSolvers, minVotes);
        Config storage c = _projects[projectId].config;
        c.maxSolvers = maxSolvers;
        c.minVotes = minVotes;
        emit TaskLimitsUpdated(projectId, maxSolvers, minVotes);
    }

    /// @inheritdoc IProject
    function setMaxStaleness(uint256 projectId, uint8 maxStaleness) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _requireExists(projectId);
        _checkStaleness(maxStaleness);
        _projects[projectId].config.maxStaleness = maxStaleness;
        emit MaxStalenessUpdated(projectId, maxStaleness);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IProject
    function exists(uint256 projectId) public view returns (bool) {
        return projectId != 0 && projectId <= _count;
    }

    /// @inheritdoc IProject
    function modelRoot(uint256 projectId) external view returns (bytes32) {
        return _projects[projectId].modelRoot;
    }

    /// @inheritdoc IProject
    function proposerCap(uint256 projectId, address proposer) external view returns (uint256) {
        return _proposerCaps[projectId][proposer];
    }

    /// @inheritdoc IProject
    function inferencePrice(uint256 projectId) external view returns (uint256) {
        return _projects[projectId].inferencePrice;
    }

    /// @inheritdoc IProject
    function jurisdictionOf(uint256 projectId) external view returns (bool set, int32[4] memory coords) {
        Jurisdiction memory j = _jurisdictions[projectId];
        set = j.set;
        coords = [j.lifePrecious, j.selfPreservation, j.promotionOfIntelligence, j.evolution];
    }

    /// @inheritdoc IProject
    function config(uint256 projectId) external view returns (Config memory) {
        _requireExists(projectId);
        return _projects[projectId].config;
    }

    /// @inheritdoc IProject
    function getProject(uint256 projectId) external view returns (ProjectView memory v) {
        _requireExists(projectId);
        Data storage d = _projects[projectId];
        Accounts storage a = _accounts[projectId];
        Config memory c = d.config;
        v.owner = c.owner;
        v.maxSolvers = c.maxSolvers;
        v.minVotes = c.minVotes;
        v.maxStaleness = c.maxStaleness;
        v.split = c.split;
        v.windows = c.windows;
        v.modelSpecHash = d.modelSpecHash;
        v.datasetRoot = d.datasetRoot;
        v.modelRoot = d.modelRoot;
        v.inferencePrice = d.inferencePrice;
        v.funded = a.funded;
        v.budget = a.budget;
        v.reserved = a.reserved;
        v.paid = a.paid;
        v.modelURI = d.modelURI;
    }

    /// @inheritdoc IProject
    function budgetOf(uint256 projectId) external view returns (uint256) {
        return _accounts[projectId].budget;
    }

    /// @inheritdoc IProject
    function reservedOf(uint256 projectId) external view returns (uint256) {
        return _accounts[projectId].reserved;
    }

    /// @inheritdoc IProject
    function paidOf(uint256 projectId) external view returns (uint256) {
        return _accounts[projectId].paid;
    }

    /// @inheritdoc IProject
    function fundedOf(uint256 projectId) external view returns (uint256) {
        return _accounts[projectId].funded;
    }

    /// @inheritdoc IProject
    function projectCount() external view returns (uint256) {
        return _count;
    }

    /// @inheritdoc IProject
    function token() external view returns (address) {
        return address(_token);
    }

    // ------------------------------------------------------------------ internal

    function _requireExists(uint256 projectId) private view {
        if (!exists(projectId)) revert ProjectUnknown(projectId);
    }

    /// @dev The project's owner or a DEFAULT_ADMIN_ROLE holder (the Timelock, i.e. an executed proposal).
    function _requireOwnerOrGovernance(uint256 projectId) private view {
        _requireExists(projectId);
        address owner = _projects[projectId].config.owner;
        if (msg.sender != owner && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert ProjectNotOwner(msg.sender, owner);
        }
    }

    function _checkSplit(RewardSplit calldata s) private pure {
        uint256 sum = uint256(s.solverBps) + s.coordinatorBps + s.proposerBps + s.aggregatorBps;
        if (sum != 10_000) revert ProjectInvalidSplit(sum);
    }

    function _checkWindows(Windows calldata w) private pure {
        if (
            w.commit == 0 || w.gtReveal == 0 || w.solReveal == 0 || w.voteCommit == 0 || w.voteReveal == 0
                || w.publish == 0
        ) revert ProjectInvalidWindows();
    }

    function _checkStaleness(uint8 maxStaleness) private pure {
        if (maxStaleness > MAX_STALENESS) revert ProjectStalenessTooHigh(maxStaleness, MAX_STALENESS);
    }

    function _checkLimits(uint8 maxSolvers, uint8 minVotes) private pure {
        if (maxSolvers == 0 || maxSolvers > MAX_SOLVERS_PER_TASK || minVotes == 0 || minVotes > MAX_MIN_VOTES)
        {
            revert ProjectInvalidTaskLimits(maxSolvers, minVotes);
        }
    }
}
