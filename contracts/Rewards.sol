// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IRewards} from "./interfaces/IRewards.sol";
import {IProject} from "./interfaces/IProject.sol";
import {IInferenceMarket} from "./interfaces/IInferenceMarket.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {YumaConsensus} from "./libraries/YumaConsensus.sol";
import {IConsensusEngine} from "./stylus/consensus-engine/IConsensusEngine.sol";

/// @title Rewards
/// @notice Consensus, bonds, payouts and aggregator fees of finalized tasks. See {IRewards}.
contract Rewards is IRewards, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice May settle finalized tasks (TaskManager).
    bytes32 public constant TASK_MANAGER_ROLE = keccak256("TASK_MANAGER_ROLE");
    /// @notice May pay aggregator fees (ModelShardRegistry).
    bytes32 public constant MODEL_REGISTRY_ROLE = keccak256("MODEL_REGISTRY_ROLE");
    /// @notice Cap on solvers per task.
    uint256 public constant MAX_SOLVERS_PER_TASK = 16;
    /// @notice Cap on coordinators per task.
    uint256 public constant MAX_COORDINATORS_PER_TASK = 16;
    /// @notice Gas a consensus engine may use for one settlement; past it the library here computes the result.
    uint256 public constant ENGINE_GAS = 3_000_000;
    /// @notice Largest engine answer read (a 16 × 16 result is 11,040 bytes); a larger one counts as malformed.
    uint256 public constant MAX_ENGINE_RESULT = 16_384;
    uint256 private constant WAD = 1e18;
    uint256 private constant BPS = 10_000;
    /// @dev The score of a solver that reached the task's target improvement (honest scores are absolute).
    uint256 private constant FULL_SCORE = type(uint16).max;

    IERC20 private immutable _token;
    IProject private immutable _projects;
    IInferenceMarket private immutable _market;
    /// @notice Treasury (the Timelock). Rounding dust goes back to the project budget, not here; kept for
    ///         governance tooling that discovers it from this contract.
    address public immutable treasury;

    uint128 private _kappa = 5e17;
    uint128 private _alpha = 1e17;
    uint256 private _totalClaimable;
    /// @dev A contract computing YumaConsensus.compute (the Stylus engine on chains that run Stylus); zero = here.
    address private _consensusEngine;
    mapping(address account => uint256) private _claimable;
    mapping(uint256 taskId => PendingFee) private _fees;
    mapping(uint256 projectId => mapping(address coordinator => mapping(address solver => uint256))) private
        _bonds;

    /// @dev Amounts of one settlement, kept in memory to stay under the stack limit.
    struct Payout {
        uint256 solverPool;
        uint256 coordinatorPool;
        uint256 proposerFee;
        uint256 aggregatorFee;
        uint256 solversPaid;
        uint256 coordinatorsPaid;
        uint256 spent;
        uint256 released;
        uint64 deadline;
    }

    /// @param admin receives DEFAULT_ADMIN_ROLE
    constructor(
        address admin,
        IERC20 token_,
        IProject projects_,
        IInferenceMarket market_,
        address treasury_
    ) {
        if (
            admin == address(0) || address(token_) == address(0) || address(projects_) == address(0)
                || address(market_) == address(0) || treasury_ == address(0)
        ) revert RewardsZeroAddress();
        _token = token_;
        _projects = projects_;
        _market = market_;
        treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ settlement

    /// @inheritdoc IRewards
    function settleTask(Settlement calldata st)
        external
        onlyRole(TASK_MANAGER_ROLE)
        nonReentrant
        returns (uint256 spent, uint256 aggregatorFee, uint256 released)
    {
        _checkSettlement(st);
        if (_fees[st.taskId].projectId != 0) revert RewardsAlreadySettled(st.taskId);
        IProject.Config memory cfg = _projects.config(st.projectId);

        Payout memory p;
        p.solverPool = st.reward * cfg.split.solverBps / BPS;
        p.coordinatorPool = st.reward * cfg.split.coordinatorBps / BPS;
        p.proposerFee = st.reward * cfg.split.proposerBps / BPS;
        p.aggregatorFee = st.reward * cfg.split.aggregatorBps / BPS;
        p.deadline = uint64(block.number + cfg.windows.publish);
        // Scales p.solverPool to the share earned by absolute improvement (S-1, see _consensus).
        uint256[][] memory prevBonds = _loadBonds(st);
        YumaConsensus.Result memory res = _consensus(st, p, prevBonds);

        // Effects: fee record (also marks the task settled), bonds, credits.
        _fees[st.taskId] = PendingFee({
            projectId: uint64(st.projectId), deadline: p.deadline, amount: uint128(p.aggregatorFee)
        });
        _storeBonds(st, res.bonds, prevBonds);
        uint256[] memory solverAmounts = _creditSolvers(st, res, p);
        _creditCoordinators(st, res, p);
        if (p.proposerFee != 0) _claimable[st.proposer] += p.proposerFee;
        emit ProposerRewarded(st.taskId, st.proposer, p.proposerFee);

        p.spent = p.solversPaid + p.coordinatorsPaid + p.proposerFee;
        // Every account credited above (solvers, coordinators, proposer) added its amount to `_claimable` only; the
        // total is the sum of those credits, written once.
        _totalClaimable += p.spent;
        // Each share is a floor of reward * bps / 10000 (the solver pool further scaled by top / FULL_SCORE ≤ 1, each
        // pool by weights ≤ 1e18 that sum to ≤ 1e18) and the bps sum to 10000, so spent + aggregatorFee ≤ reward;
        // the checked subtraction proves it at runtime. The unearned part of the solver pool is in `released`.
        p.released = st.reward - p.spent - p.aggregatorFee;
        emit AggregatorFeePending(st.taskId, st.projectId, p.aggregatorFee, p.deadline);
        emit TaskSettled(
            st.taskId,
            st.projectId,
            p.solversPaid,
            p.coordinatorsPaid,
            p.proposerFee,
            p.aggregatorFee,
            p.released
        );

        // Interactions (trusted protocol contracts).
        if (p.spent != 0) _projects.pay(st.projectId, address(this), p.spent);
        if (p.released != 0) _projects.release(st.projectId, p.released);
        for (uint256 j; j < solverAmounts.length; ++j) {
            if (solverAmounts[j] != 0) {
                _market.recordContribution(st.projectId, st.solvers[j], solverAmounts[j]);
            }
        }
        return (p.spent, p.aggregatorFee, p.released);
    }

    /// @inheritdoc IRewards
    function payAggregatorFee(uint256 projectId, uint256 taskId, address aggregator)
        external
        onlyRole(MODEL_REGISTRY_ROLE)
        nonReentrant
        returns (uint256 paid)
    {
        if (aggregator == address(0)) revert RewardsZeroAddress();
        PendingFee memory f = _fees[taskId];
        if (f.projectId != projectId || projectId == 0) {
            revert RewardsTaskProjectMismatch(taskId, projectId, f.projectId);
        }
        if (f.amount == 0) return 0;
        _fees[taskId].amount = 0;
        if (block.number > f.deadline) {
            emit AggregatorFeeReleased(taskId, projectId, f.amount);
            _projects.release(projectId, f.amount);
            return 0;
        }
        paid = f.amount;
        _credit(aggregator, paid);
        emit AggregatorFeePaid(taskId, projectId, aggregator, paid);
        _projects.pay(projectId, address(this), paid);
    }

    /// @inheritdoc IRewards
    function releaseExpiredAggregatorFee(uint256 taskId) external nonReentrant returns (uint256 released) {
        PendingFee memory f = _fees[taskId];
        if (f.amount == 0) revert RewardsNoPendingFee(taskId);
        if (block.number <= f.deadline) revert RewardsFeeNotExpired(taskId, f.deadline);
        _fees[taskId].amount = 0;
        released = f.amount;
        emit AggregatorFeeReleased(taskId, f.projectId, released);
        _projects.release(f.projectId, released);
    }

    /// @inheritdoc IRewards
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _claimable[msg.sender];
        if (amount == 0) revert RewardsNothingToClaim();
        _claimable[msg.sender] = 0;
        _totalClaimable -= amount;
        emit Claimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IRewards
    function setConsensusParams(uint256 kappa, uint256 alpha) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (kappa >= WAD || alpha == 0 || alpha > WAD) revert RewardsInvalidParams(kappa, alpha);
        _kappa = uint128(kappa);
        _alpha = uint128(alpha);
        emit ConsensusParamsUpdated(kappa, alpha);
    }

    /// @inheritdoc IRewards
    function setConsensusEngine(address engine) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (engine != address(0) && engine.code.length == 0) revert RewardsEngineHasNoCode(engine);
        _consensusEngine = engine;
        emit ConsensusEngineUpdated(engine);
    }

    /// @notice Decodes a consensus engine's return data; external so that `_consensus` can catch malformed data.
    function decodeEngineResult(bytes calldata data)
        external
        pure
        returns (IConsensusEngine.ConsensusResult memory)
    {
        return abi.decode(data, (IConsensusEngine.ConsensusResult));
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IRewards
    function consensusEngine() external view returns (address) {
        return _consensusEngine;
    }

    /// @inheritdoc IRewards
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc IRewards
    function totalClaimable() external view returns (uint256) {
        return _totalClaimable;
    }

    /// @inheritdoc IRewards
    function bondOf(uint256 projectId, address coordinator, address solver) external view returns (uint256) {
        return _bonds[projectId][coordinator][solver];
    }

    /// @inheritdoc IRewards
    function pendingFee(uint256 taskId) external view returns (PendingFee memory) {
        return _fees[taskId];
    }

    /// @inheritdoc IRewards
    function settled(uint256 taskId) external view returns (bool) {
        return _fees[taskId].projectId != 0;
    }

    /// @inheritdoc IRewards
    function consensusParams() external view returns (uint256 kappa, uint256 alpha) {
        return (_kappa, _alpha);
    }

    // ------------------------------------------------------------------ internal

    function _checkSettlement(Settlement calldata st) private pure {
        uint256 n = st.coordinators.length;
        uint256 m = st.solvers.length;
        if (
            n == 0 || m == 0 || n > MAX_COORDINATORS_PER_TASK || m > MAX_SOLVERS_PER_TASK
                || st.stakes.length != n || st.scores.length != n || st.projectId == 0
                || st.projectId > type(uint64).max || st.reward > type(uint128).max
                || st.proposer == address(0)
        ) revert RewardsInvalidSettlement();
        for (uint256 i; i < n; ++i) {
            if (st.scores[i].length != m) revert RewardsInvalidSettlement();
        }
    }

    function _toMemory(uint16[][] calldata scores) private pure returns (uint16[][] memory out) {
        out = new uint16[][](scores.length);
        for (uint256 i; i < scores.length; ++i) {
            out[i] = scores[i];
        }
    }

    function _loadBonds(Settlement calldata st) private view returns (uint256[][] memory b) {
        uint256 n = st.coordinators.length;
        uint256 m = st.solvers.length;
        b = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            b[i] = new uint256[](m);
            mapping(address => uint256) storage row = _bonds[st.projectId][st.coordinators[i]];
            for (uint256 j; j < m; ++j) {
                uint256 v = row[st.solvers[j]];
                b[i][j] = v > WAD ? WAD : v; // stored bonds are ≤ 1e18 (checked on store); clamp all the same
            }
        }
    }

    /// @dev Writes the bonds that changed: `prev` is what _loadBonds read (stored bonds are ≤ 1e18, so its clamp
    ///      never altered a value), compared in memory instead of reading every slot again.
    function _storeBonds(Settlement calldata st, uint256[][] memory b, uint256[][] memory prev) private {
        uint256 n = st.coordinators.length;
        uint256 m = st.solvers.length;
        for (uint256 i; i < n; ++i) {
            mapping(address => uint256) storage row = _bonds[st.projectId][st.coordinators[i]];
            uint256[] memory bi = b[i];
            uint256[] memory pi = prev[i];
            for (uint256 j; j < m; ++j) {
                uint256 v = bi[j];
                if (v != pi[j]) row[st.solvers[j]] = v;
            }
        }
    }

    /// @dev The consensus of a settlement: from the engine governance set, when it answers with results of the
    ///      right shape, else (no engine, a revert, malformed data, wrong lengths) from the library here, so a
    ///      broken engine never blocks settlement (weights summing over 1e18 count as the wrong shape; payout
    ///      conservation is also enforced by the checked arithmetic in settleTask).
    ///      Also scales `p.solverPool` to what absolute improvement earned (review finding S-1), whoever computes
    ///      the consensus: a score is the solver's improvement as a share of the task's target (FULL_SCORE = target
    ///      reached), so `top / FULL_SCORE` of the pool is earned, `top` being the highest score backed by more than
    ///      κ of all coordinator stake on one solver (see {_topScore}). The earned pool is split by incentive; the
    ///      rest is released by settleTask.
    function _consensus(Settlement calldata st, Payout memory p, uint256[][] memory bonds)
        private
        returns (YumaConsensus.Result memory)
    {
        uint16[][] memory scores = _toMemory(st.scores);
        (uint256 kappa, uint256 bar) = _effectiveKappa(st);
        p.solverPool = p.solverPool * _topScore(st.stakes, scores, bar) / FULL_SCORE;
        address engine = _consensusEngine;
        if (engine != address(0)) {
            (bool ok, bytes memory out) = _callEngine(
                engine, abi.encodeCall(IConsensusEngine.compute, (st.stakes, scores, bonds, kappa, _alpha))
            );
            if (ok) {
                try this.decodeEngineResult(out) returns (IConsensusEngine.ConsensusResult memory r) {
                    if (_shapeOk(r, st.stakes.length, st.solvers.length)) {
                        return YumaConsensus.Result(r.consensus, r.incentive, r.dividends, r.bonds);
                    }
                    out = "result shape";
                } catch {
                    out = "result encoding";
                }
            }
            emit ConsensusEngineFallback(st.taskId, engine, out);
        }
        return YumaConsensus.compute(st.stakes, scores, bonds, kappa, _alpha);
    }

    /// @dev The highest score any solver is backed at: the maximum over solvers j of the largest raw score
    ///      `scores[i][j]` of a coordinator with stake such that the coordinators scoring j at least that much hold
    ///      more than κ of all coordinator stake (`support > bar`, i.e. `support * 1e18 > κ' * voting`: the rule of
    ///      YumaConsensus._consensus applied to raw scores instead of row-normalized weights). 0 when nothing is
    ///      backed. One running maximum over all columns: a score not above it cannot change the result and is
    ///      skipped unchecked. Assembly for gas (the round target); `support` cannot overflow, it is at most the
    ///      voting stake whose sum _effectiveKappa computed with checked arithmetic.
    function _topScore(uint256[] calldata stakes, uint16[][] memory scores, uint256 bar)
        private
        pure
        returns (uint256 top)
    {
        assembly ("memory-safe") {
            let n := mload(scores)
            let rows := add(scores, 0x20)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                if calldataload(add(stakes.offset, shl(5, i))) {
                    let row := mload(add(rows, shl(5, i)))
                    let end := add(row, shl(5, mload(row)))
                    for { let at := add(row, 0x20) } iszero(gt(at, end)) { at := add(at, 0x20) } {
                        let v := mload(at)
                        if gt(v, top) {
                            let col := sub(at, row) // byte offset of this solver's entry in every row
                            let support := 0
                            for { let k := 0 } lt(k, n) { k := add(k, 1) } {
                                if iszero(lt(mload(add(mload(add(rows, shl(5, k))), col)), v)) {
                                    support := add(support, calldataload(add(stakes.offset, shl(5, k))))
                                }
                            }
                            if gt(support, bar) { top := v }
                        }
                    }
                }
            }
        }
    }

    /// @dev κ over the voters' stake that means κ over all coordinator stake: a value needs more than
    ///      κ × coordinatorStake behind it, i.e. more than ⌈κ × coordinatorStake / voting⌉ of the voting stake
    ///      (rounded up, so never less), at most 1e18 (then nothing can be backed: every consensus is 0). Voters
    ///      who together hold less than κ of all coordinator stake can then never set a value, however few of
    ///      the others took a seat.
    ///      Also returns `bar = ⌊κ' × voting / 1e18⌋`: a value is backed when the raw stake behind it exceeds `bar`
    ///      (for integers, `support > ⌊x / 1e18⌋` iff `support * 1e18 > x`, the library's test).
    function _effectiveKappa(Settlement calldata st) private view returns (uint256 k, uint256 bar) {
        uint256 voting;
        for (uint256 i; i < st.stakes.length; ++i) {
            voting += st.stakes[i];
        }
        uint256 all = st.coordinatorStake > voting ? st.coordinatorStake : voting;
        if (voting == 0) return (_kappa, 0);
        k = Math.mulDiv(_kappa, all, voting, Math.Rounding.Ceil);
        if (k > WAD) k = WAD;
        bar = k * voting / WAD;
    }

    /// @dev A static call with at most ENGINE_GAS gas that copies at most MAX_ENGINE_RESULT bytes back, so that an
    ///      engine that loops or answers with huge data cannot make settlement run out of gas.
    function _callEngine(address engine, bytes memory input) private view returns (bool ok, bytes memory out) {
        uint256 size;
        assembly ("memory-safe") {
            ok := staticcall(ENGINE_GAS, engine, add(input, 32), mload(input), 0, 0)
            size := returndatasize()
        }
        if (size > MAX_ENGINE_RESULT) return (false, "result size");
        out = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(out, 32), 0, size)
        }
    }

    function _shapeOk(IConsensusEngine.ConsensusResult memory r, uint256 n, uint256 m)
        private
        pure
        returns (bool)
    {
        if (
            r.consensus.length != m || r.incentive.length != m || r.dividends.length != n
                || r.bonds.length != n
        ) {
            return false;
        }
        for (uint256 i; i < n; ++i) {
            if (r.bonds[i].length != m) return false;
        }
        // Bonds are column-normalized EMAs: every column sums to at most 1e18. Larger values would be stored
        // and poison every later settlement of these pairs, even after the engine is removed.
        for (uint256 j; j < m; ++j) {
            uint256 col;
            for (uint256 i; i < n; ++i) {
                uint256 v = r.bonds[i][j];
                if (v > WAD) return false;
                col += v;
            }
            if (col > WAD) return false;
        }
        // Weights must not promise more than the pools (Σ ≤ 1e18), else the payout arithmetic would revert.
        return _sumAtMostWad(r.incentive) && _sumAtMostWad(r.dividends);
    }

    function _sumAtMostWad(uint256[] memory v) private pure returns (bool) {
        uint256 sum;
        for (uint256 i; i < v.length; ++i) {
            if (v[i] > WAD) return false;
            sum += v[i];
        }
        return sum <= WAD;
    }

    function _creditSolvers(Settlement calldata st, YumaConsensus.Result memory res, Payout memory p)
        private
        returns (uint256[] memory amounts)
    {
        uint256 m = st.solvers.length;
        amounts = new uint256[](m);
        for (uint256 j; j < m; ++j) {
            uint256 amount = p.solverPool * res.incentive[j] / WAD;
            amounts[j] = amount;
            p.solversPaid += amount;
            if (amount != 0) _claimable[st.solvers[j]] += amount;
            emit SolverRewarded(st.taskId, st.solvers[j], res.consensus[j], res.incentive[j], amount);
        }
    }

    function _creditCoordinators(Settlement calldata st, YumaConsensus.Result memory res, Payout memory p)
        private
    {
        uint256 n = st.coordinators.length;
        uint256 dSum;
        for (uint256 i; i < n; ++i) {
            dSum += res.dividends[i];
        }
        uint256 stakeSum;
        if (dSum == 0) {
            // Nobody earned a dividend. Coordinators whose scores are all zero agreed that nothing improved and
            // still did the work: they share the pool by stake. Coordinators that scored what nobody backed
            // (a minority's self-dealing, say) get nothing; the rest of the pool returns to the budget.
            for (uint256 i; i < n; ++i) {
                if (_silent(st.scores[i])) stakeSum += st.stakes[i];
            }
        }
        for (uint256 i; i < n; ++i) {
            uint256 weight = dSum != 0
                ? res.dividends[i]
                : (stakeSum == 0 || !_silent(st.scores[i]) ? 0 : st.stakes[i] * WAD / stakeSum);
            uint256 amount = p.coordinatorPool * weight / WAD;
            p.coordinatorsPaid += amount;
            if (amount != 0) _claimable[st.coordinators[i]] += amount;
            emit CoordinatorRewarded(st.taskId, st.coordinators[i], weight, amount);
        }
    }

    function _silent(uint16[] calldata row) private pure returns (bool) {
        for (uint256 j; j < row.length; ++j) {
            if (row[j] != 0) return false;
        }
        return true;
    }

    function _credit(address account, uint256 amount) private {
        _claimable[account] += amount;
        _totalClaimable += amount;
    }
}
