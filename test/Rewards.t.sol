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
