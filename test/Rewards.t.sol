// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {World} from "./utils/World.sol";
import {IRewards} from "../contracts/interfaces/IRewards.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";
import {IInferenceMarket} from "../contracts/interfaces/IInferenceMarket.sol";
import {Rewards} from "../contracts/Rewards.sol";

/// @notice Rewards driven directly (this test acts as TaskManager and ModelShardRegistry).
contract RewardsTest is World {
    address internal tm = makeAddr("taskManager");
    address internal registryRole = makeAddr("modelRegistry");
    uint256 internal nextTask = 1000;

    function setUp() public override {
        super.setUp();
        vm.startPrank(address(timelock));
        rewards.grantRole(rewards.TASK_MANAGER_ROLE(), tm);
        rewards.grantRole(rewards.MODEL_REGISTRY_ROLE(), registryRole);
        project.grantRole(project.SPENDER_ROLE(), tm);
        vm.stopPrank();
    }

    function _settlement(uint256 reward, uint16[][] memory rows, uint256[] memory stakes)
        internal
        returns (IRewards.Settlement memory st)
    {
        st.taskId = ++nextTask;
        st.projectId = projectId;
        st.proposer = proposer;
        st.reward = reward;
        uint256 m = rows[0].length;
        st.solvers = new address[](m);
        for (uint256 j; j < m; ++j) {
            st.solvers[j] = address(uint160(0x5000 + j));
        }
        st.coordinators = new address[](rows.length);
        for (uint256 i; i < rows.length; ++i) {
            st.coordinators[i] = address(uint160(0xC000 + i));
        }
        st.stakes = stakes;
        st.scores = rows;
    }

    function _equalStakes(uint256 n) internal pure returns (uint256[] memory s) {
        s = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            s[i] = 1000e18;
        }
    }

    function _settle(IRewards.Settlement memory st)
        internal
        returns (uint256 spent, uint256 fee, uint256 released)
    {
        vm.startPrank(tm);
        project.reserve(st.projectId, st.reward);
        (spent, fee, released) = rewards.settleTask(st);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ settle

    function test_settleTask_paysSharesAndKeepsFee() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        uint256 budget = project.budgetOf(projectId);
        vm.startPrank(tm);
        project.reserve(projectId, REWARD);
        vm.expectEmit(true, true, false, false, address(rewards));
        emit IRewards.TaskSettled(st.taskId, projectId, 0, 0, 0, 0, 0);
        (uint256 spent, uint256 fee, uint256 released) = rewards.settleTask(st);
        vm.stopPrank();
        assertEq(fee, REWARD / 10);
        assertEq(spent + fee + released, REWARD);
        assertLe(released, 1e4); // only rounding dust
        assertEq(token.balanceOf(address(rewards)), spent);
        assertEq(rewards.totalClaimable(), spent);
        assertEq(project.reservedOf(projectId), fee);
        assertEq(project.budgetOf(projectId), budget - REWARD + released);
        assertTrue(rewards.settled(st.taskId));
        IRewards.PendingFee memory pf = rewards.pendingFee(st.taskId);
        assertEq(pf.amount, fee);
        assertEq(pf.projectId, projectId);
        assertEq(pf.deadline, block.number + W_PUBLISH);
        assertEq(rewards.claimable(proposer), REWARD / 20);
        assertEq(market.sharesOf(projectId, st.solvers[0]), rewards.claimable(st.solvers[0]));
        assertGt(rewards.bondOf(projectId, st.coordinators[0], st.solvers[0]), 0);
    }

    function test_settleTask_allZeroScoresPayCoordinatorsByStake() public {
        uint16[][] memory rows = new uint16[][](2);
        rows[0] = _scores3(0, 0, 0);
        rows[1] = _scores3(0, 0, 0);
        uint256[] memory stakes = new uint256[](2);
        stakes[0] = 3e18;
        stakes[1] = 1e18;
        IRewards.Settlement memory st = _settlement(REWARD, rows, stakes);
        (,, uint256 released) = _settle(st);
        uint256 cpool = REWARD * 1500 / 10_000;
        assertEq(rewards.claimable(st.coordinators[0]), cpool * 3 / 4);
        assertEq(rewards.claimable(st.coordinators[1]), cpool / 4);
        assertEq(rewards.claimable(st.solvers[0]), 0);
        assertEq(released, REWARD * 7000 / 10_000); // the solver pool goes back
    }

    function test_RevertWhen_settleTwice() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        _settle(st);
        vm.prank(tm);
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsAlreadySettled.selector, st.taskId));
        rewards.settleTask(st);
    }

    function test_RevertWhen_settlementInconsistent() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(2));
        vm.prank(tm);
        vm.expectRevert(IRewards.RewardsInvalidSettlement.selector);
        rewards.settleTask(st);
        st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        st.scores[1] = new uint16[](2);
        vm.prank(tm);
        vm.expectRevert(IRewards.RewardsInvalidSettlement.selector);
        rewards.settleTask(st);
        st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        st.projectId = 0;
        vm.prank(tm);
        vm.expectRevert(IRewards.RewardsInvalidSettlement.selector);
        rewards.settleTask(st);
    }

    function test_RevertWhen_settleWithoutReservation() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        vm.prank(tm);
        vm.expectRevert(); // ProjectInsufficientReserve with computed amounts
        rewards.settleTask(st);
    }

    function test_RevertWhen_settleByNonTaskManager() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                address(this),
                rewards.TASK_MANAGER_ROLE()
            )
        );
        rewards.settleTask(st);
    }

    function testFuzz_settleTask_neverPaysMoreThanReserved(
        uint256 reward,
        uint256 seed,
        uint16 solverBps,
        uint16 coordBps
    ) public {
        reward = bound(reward, 1, PROJECT_FUNDING);
        solverBps = uint16(bound(solverBps, 0, 10_000));
        coordBps = uint16(bound(coordBps, 0, 10_000 - solverBps));
        uint16 rest = 10_000 - solverBps - coordBps;
        vm.prank(address(timelock));
        project.setRewardSplit(
            projectId, IProject.RewardSplit(solverBps, coordBps, rest / 2, rest - rest / 2)
        );
        uint256 budget = project.budgetOf(projectId);
        (uint256 spent, uint256 fee, uint256 released) = _settle(_randomSettlement(reward, seed));
        assertEq(spent + fee + released, reward);
        assertEq(token.balanceOf(address(rewards)), spent);
        assertEq(project.reservedOf(projectId), fee);
        assertEq(project.budgetOf(projectId), budget - reward + released);
        assertEq(
            project.fundedOf(projectId),
            project.budgetOf(projectId) + project.reservedOf(projectId) + project.paidOf(projectId)
        );
    }

    function _randomSettlement(uint256 reward, uint256 seed) internal returns (IRewards.Settlement memory) {
        uint256 n = seed % 16 + 1;
        uint256 m = (seed >> 8) % 16 + 1;
        uint16[][] memory rows = new uint16[][](n);
        uint256[] memory stakes = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            rows[i] = new uint16[](m);
            stakes[i] = uint256(keccak256(abi.encode(seed, i))) % 1e24;
            for (uint256 j; j < m; ++j) {
                rows[i][j] = uint16(uint256(keccak256(abi.encode(seed, i, j))));
            }
        }
        return _settlement(reward, rows, stakes);
    }

    // ------------------------------------------------------------------ S-1: absolute improvement

    /// @dev Reference for the top backed score, straight from docs/consensus.md (per column: the largest raw score of
    ///      a voter with stake that more than κ of the voting stake scored at least as high; then the maximum), with
    ///      none of Rewards' single-pass shortcuts. These settlements have no absent coordinator stake, so κ' = κ.
    function _refTopScore(IRewards.Settlement memory st) internal view returns (uint256 top) {
        (uint256 kappa,) = rewards.consensusParams();
        uint256 voting;
        for (uint256 i; i < st.stakes.length; ++i) {
            voting += st.stakes[i];
        }
        for (uint256 j; j < st.solvers.length; ++j) {
            for (uint256 i; i < st.stakes.length; ++i) {
                if (st.stakes[i] == 0) continue;
                uint256 v = st.scores[i][j];
                uint256 support;
                for (uint256 k; k < st.stakes.length; ++k) {
                    if (st.scores[k][j] >= v) support += st.stakes[k];
                }
                if (support * 1e18 > kappa * voting && v > top) top = v;
            }
        }
    }

    function _solversPaid(IRewards.Settlement memory st) internal view returns (uint256 paid) {
        for (uint256 j; j < st.solvers.length; ++j) {
            paid += rewards.claimable(st.solvers[j]);
        }
    }

    /// S-1 (fails before the fix, where any improvement earned the whole solver pool: the solvers were paid
    /// 700 ATN and only rounding dust was released): agreeing coordinators score solver 0 at 10% of the task's
    /// target and solver 1 at 5%, so 10% of the pool is earned, split 2:1, and the other 90% goes back to the
    /// budget. Contributor shares (M-5) are minted for what was paid only.
    function test_S1_smallImprovementPaysAFractionOfThePoolAndReleasesTheRest() public {
        uint16[][] memory rows = new uint16[][](3);
        for (uint256 i; i < 3; ++i) {
            rows[i] = _scores3(6554, 3277, 0);
        }
        IRewards.Settlement memory st = _settlement(REWARD, rows, _equalStakes(3));
        uint256 budget = project.budgetOf(projectId);
        (uint256 spent, uint256 fee, uint256 released) = _settle(st);
        uint256 pool = REWARD * 7000 / 10_000;
        uint256 earned = pool * 6554 / 65_535; // 70.005 ATN
        assertApproxEqAbs(_solversPaid(st), earned, 1e3);
        assertApproxEqAbs(rewards.claimable(st.solvers[0]), earned * 2 / 3, 1e3);
        assertApproxEqAbs(rewards.claimable(st.solvers[1]), earned / 3, 1e3);
        assertEq(rewards.claimable(st.solvers[2]), 0);
        // Coordinators and proposer are paid in full: they did the work whatever the solvers achieved.
        assertApproxEqAbs(rewards.claimable(st.coordinators[0]), REWARD * 1500 / 10_000 / 3, 1e3);
        assertEq(rewards.claimable(proposer), REWARD * 500 / 10_000);
        // The unearned 90% of the solver pool is released to the budget.
        assertGe(released, pool - earned);
        assertApproxEqAbs(released, pool - earned, 1e4);
        assertEq(spent + fee + released, REWARD);
        assertEq(project.budgetOf(projectId), budget - REWARD + released);
        // M-5: shares only for what was paid.
        assertEq(market.sharesOf(projectId, st.solvers[0]), rewards.claimable(st.solvers[0]));
        assertEq(market.totalShares(projectId), _solversPaid(st));
    }

    /// S-1: no improvement (every honest row all zero) pays no solver, mints no share, pays the coordinators by
    /// stake and releases the whole solver pool. This also held before the fix (all-zero rows give zero
    /// incentive); it pins that scaling the pool leaves this path unchanged.
    function test_S1_noImprovementPaysNoSolverAndReleasesThePool() public {
        uint16[][] memory rows = new uint16[][](3);
        for (uint256 i; i < 3; ++i) {
            rows[i] = _scores3(0, 0, 0);
        }
        IRewards.Settlement memory st = _settlement(REWARD, rows, _equalStakes(3));
        (uint256 spent, uint256 fee, uint256 released) = _settle(st);
        assertEq(_solversPaid(st), 0);
        assertEq(market.totalShares(projectId), 0);
        uint256 cpool = REWARD * 1500 / 10_000;
        uint256 each = cpool * uint256(333_333_333_333_333_333) / 1e18; // equal stakes: weight 1e18 / 3 (floor)
        assertEq(rewards.claimable(st.coordinators[0]), each);
        assertEq(spent, 3 * each + REWARD * 500 / 10_000);
        assertEq(released, REWARD * 7000 / 10_000 + cpool - 3 * each);
        assertEq(spent + fee + released, REWARD);
    }

    /// S-1: a solver at (or beyond: scores are capped at 65535) the target earns the whole pool; two such solvers
    /// share it equally, a third at half the target gets its row share. This also held before the fix (the best
    /// always earned the whole pool); it pins that reaching the target still does.
    function test_S1_fullTargetPaysTheWholePool() public {
        uint16[][] memory rows = new uint16[][](3);
        for (uint256 i; i < 3; ++i) {
            rows[i] = _scores3(65_535, 65_535, 32_768);
        }
        IRewards.Settlement memory st = _settlement(REWARD, rows, _equalStakes(3));
        (,, uint256 released) = _settle(st);
        uint256 pool = REWARD * 7000 / 10_000;
        assertApproxEqAbs(_solversPaid(st), pool, 1e4);
        uint256 rowSum = 65_535 * 2 + 32_768;
        assertApproxEqAbs(rewards.claimable(st.solvers[0]), pool * 65_535 / rowSum, 1e3);
        assertEq(rewards.claimable(st.solvers[0]), rewards.claimable(st.solvers[1]));
        assertApproxEqAbs(rewards.claimable(st.solvers[2]), pool * 32_768 / rowSum, 1e3);
        assertLe(released, 1e4); // only rounding dust
    }

    /// S-1 (fails before the fix, where the minority's favourite made the majority's small improvement pay the
    /// whole pool): a coordinator holding a third of the stake scores its own solver at the target; the majority
    /// scores solver 0 at 10% and that solver at 0. The pool earned is set by the highest score with more than κ of
    /// the stake behind it (10%), not by the most generous coordinator.
    function test_S1_minorityCannotInflateThePool() public {
        uint16[][] memory rows = new uint16[][](3);
        rows[0] = _scores3(6554, 0, 0);
        rows[1] = _scores3(6554, 0, 0);
        rows[2] = _scores3(0, 0, 65_535);
        IRewards.Settlement memory st = _settlement(REWARD, rows, _equalStakes(3));
        _settle(st);
        uint256 earned = REWARD * 7000 / 10_000 * 6554 / 65_535;
        assertApproxEqAbs(_solversPaid(st), earned, 1e3);
        assertEq(rewards.claimable(st.solvers[2]), 0); // the minority's 1.0 is clipped to the honest 0
    }

    /// S-1 conservation (fails before the fix on the second assertion: the solvers were paid the whole pool): for any
    /// shape, stakes, scores, reward and split, paid + fee + released = reward, and the solvers together get the
    /// pool scaled by the top backed score (computed here by the reference above), less at most the flooring of
    /// the m incentive shares.
    function testFuzz_S1_conservation(uint256 reward, uint256 seed, uint16 solverBps, uint16 coordBps)
        public
    {
        reward = bound(reward, 1, PROJECT_FUNDING);
        solverBps = uint16(bound(solverBps, 0, 10_000));
        coordBps = uint16(bound(coordBps, 0, 10_000 - solverBps));
        uint16 rest = 10_000 - solverBps - coordBps;
        vm.prank(address(timelock));
        project.setRewardSplit(
            projectId, IProject.RewardSplit(solverBps, coordBps, rest / 2, rest - rest / 2)
        );
        IRewards.Settlement memory st = _randomSettlement(reward, seed);
        // A third of the cases: scores in a narrow band, so that several columns tie or are backed.
        if (seed % 3 == 0) {
            for (uint256 i; i < st.scores.length; ++i) {
                for (uint256 j; j < st.solvers.length; ++j) {
                    st.scores[i][j] = uint16(st.scores[i][j] % 4);
                }
            }
        }
        uint256 earned = reward * solverBps / 10_000 * _refTopScore(st) / 65_535;
        (uint256 spent, uint256 fee, uint256 released) = _settle(st);
        assertEq(spent + fee + released, reward);
        uint256 paid = _solversPaid(st);
        assertLe(paid, earned);
        assertLe(earned - paid, earned * st.solvers.length / 1e18 + st.solvers.length);
    }

    // ------------------------------------------------------------------ aggregator fee

    function test_payAggregatorFee_creditsOnce() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        (, uint256 fee,) = _settle(st);
        vm.expectEmit(true, true, true, true, address(rewards));
        emit IRewards.AggregatorFeePaid(st.taskId, projectId, aggregator, fee);
        vm.prank(registryRole);
        assertEq(rewards.payAggregatorFee(projectId, st.taskId, aggregator), fee);
        assertEq(rewards.claimable(aggregator), fee);
        assertEq(project.reservedOf(projectId), 0);
        vm.prank(registryRole);
        assertEq(rewards.payAggregatorFee(projectId, st.taskId, aggregator), 0);
        assertEq(rewards.claimable(aggregator), fee);
    }

    function test_payAggregatorFee_afterDeadlineReleasesInstead() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        (, uint256 fee,) = _settle(st);
        uint256 budget = project.budgetOf(projectId);
        vm.roll(block.number + W_PUBLISH + 1);
        vm.prank(registryRole);
        assertEq(rewards.payAggregatorFee(projectId, st.taskId, aggregator), 0);
        assertEq(project.budgetOf(projectId), budget + fee);
        assertEq(rewards.claimable(aggregator), 0);
    }

    function test_RevertWhen_payAggregatorFeeWrongProject() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        _settle(st);
        vm.startPrank(registryRole);
        vm.expectRevert(
            abi.encodeWithSelector(IRewards.RewardsTaskProjectMismatch.selector, st.taskId, 2, projectId)
        );
        rewards.payAggregatorFee(2, st.taskId, aggregator);
        vm.expectRevert(
            abi.encodeWithSelector(IRewards.RewardsTaskProjectMismatch.selector, 777, projectId, 0)
        );
        rewards.payAggregatorFee(projectId, 777, aggregator);
        vm.expectRevert(IRewards.RewardsZeroAddress.selector);
        rewards.payAggregatorFee(projectId, st.taskId, address(0));
        vm.stopPrank();
    }

    function test_RevertWhen_payAggregatorFeeUnauthorized() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                address(this),
                rewards.MODEL_REGISTRY_ROLE()
            )
        );
        rewards.payAggregatorFee(projectId, 1, aggregator);
    }

    function test_releaseExpiredAggregatorFee_returnsToBudget() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        (, uint256 fee,) = _settle(st);
        uint64 deadline = rewards.pendingFee(st.taskId).deadline;
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsFeeNotExpired.selector, st.taskId, deadline));
        rewards.releaseExpiredAggregatorFee(st.taskId);
        vm.roll(uint256(deadline) + 1);
        vm.expectEmit(true, true, false, true, address(rewards));
        emit IRewards.AggregatorFeeReleased(st.taskId, projectId, fee);
        assertEq(rewards.releaseExpiredAggregatorFee(st.taskId), fee);
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsNoPendingFee.selector, st.taskId));
        rewards.releaseExpiredAggregatorFee(st.taskId);
    }

    // ------------------------------------------------------------------ claim and params

    function test_claim_paysOnce() public {
        IRewards.Settlement memory st = _settlement(REWARD, _agreeingRows(), _equalStakes(3));
        _settle(st);
        uint256 owed = rewards.claimable(proposer);
        vm.expectEmit(true, false, false, true, address(rewards));
        emit IRewards.Claimed(proposer, owed);
        vm.prank(proposer);
        assertEq(rewards.claim(), owed);
        assertEq(token.balanceOf(proposer), owed);
        assertEq(rewards.claimable(proposer), 0);
        vm.prank(proposer);
        vm.expectRevert(IRewards.RewardsNothingToClaim.selector);
        rewards.claim();
    }

    function test_setConsensusParams_byGovernance() public {
        vm.prank(address(timelock));
        rewards.setConsensusParams(6e17, 2e17);
        (uint256 k, uint256 a) = rewards.consensusParams();
        assertEq(k, 6e17);
        assertEq(a, 2e17);
    }

    function testFuzz_RevertWhen_consensusParamsOutOfRange(uint256 kappa, uint256 alpha) public {
        vm.assume(kappa >= 1e18 || alpha == 0 || alpha > 1e18);
        vm.prank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsInvalidParams.selector, kappa, alpha));
        rewards.setConsensusParams(kappa, alpha);
    }

    function test_RevertWhen_constructorZeroAddress() public {
        vm.expectRevert(IRewards.RewardsZeroAddress.selector);
        new Rewards(
            address(0), token, IProject(address(project)), IInferenceMarket(address(market)), address(1)
        );
    }
}
