// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {World} from "./utils/World.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";
import {Project} from "../contracts/Project.sol";

contract ProjectTest is World {
    address internal spender = makeAddr("spender");
    address internal publisher = makeAddr("publisher");

    function setUp() public override {
        super.setUp();
        vm.startPrank(address(timelock));
        project.grantRole(project.SPENDER_ROLE(), spender);
        project.grantRole(project.MODEL_PUBLISHER_ROLE(), publisher);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ create

    function test_createProject_storesEverything() public {
        IProject.CreateProjectParams memory p = _defaultParams();
        vm.expectEmit(true, true, false, true, address(project));
        emit IProject.ProjectCreated(
            2,
            owner,
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
        vm.prank(owner);
        uint256 id = project.createProject(p);
        assertEq(id, 2);
        assertEq(project.projectCount(), 2);
        IProject.ProjectView memory v = project.getProject(id);
        assertEq(v.owner, owner);
        assertEq(v.modelRoot, GENESIS_ROOT);
        assertEq(v.modelURI, "ipfs://model");
        assertEq(v.split.solverBps, 7000);
        assertEq(v.windows.publish, W_PUBLISH);
        assertEq(v.maxSolvers, 16);
        assertEq(v.minVotes, 2);
        assertEq(v.maxStaleness, 0);
        assertEq(v.funded, 0);
        assertTrue(project.exists(id));
        assertFalse(project.exists(3));
        assertFalse(project.exists(0));
        assertEq(project.inferencePrice(id), 1e18);
        IProject.Config memory c = project.config(id);
        assertEq(c.owner, owner);
        assertEq(project.token(), address(token));
    }

    function test_RevertWhen_splitDoesNotSumTo10000() public {
        IProject.CreateProjectParams memory p = _defaultParams();
        p.split.solverBps = 6999;
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectInvalidSplit.selector, 9999));
        project.createProject(p);
    }

    function test_RevertWhen_windowIsZero() public {
        IProject.CreateProjectParams memory p = _defaultParams();
        p.windows.voteReveal = 0;
        vm.expectRevert(IProject.ProjectInvalidWindows.selector);
        project.createProject(p);
    }

    function test_RevertWhen_taskLimitsInvalid() public {
        IProject.CreateProjectParams memory p = _defaultParams();
        p.maxSolvers = 17;
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectInvalidTaskLimits.selector, 17, 2));
        project.createProject(p);
        p.maxSolvers = 3;
        p.minVotes = 0;
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectInvalidTaskLimits.selector, 3, 0));
        project.createProject(p);
    }

    function test_RevertWhen_initialRootZero() public {
        IProject.CreateProjectParams memory p = _defaultParams();
        p.initialModelRoot = bytes32(0);
        vm.expectRevert(IProject.ProjectZeroRoot.selector);
        project.createProject(p);
    }

    function test_RevertWhen_constructorZeroAddress() public {
        vm.expectRevert(IProject.ProjectZeroAddress.selector);
        new Project(address(0), token);
    }

    // ------------------------------------------------------------------ fund

    function test_fund_addsToBudget() public {
        uint256 before = token.balanceOf(address(project));
        vm.startPrank(funder);
        token.approve(address(project), 5e18);
        vm.expectEmit(true, true, false, true, address(project));
        emit IProject.ProjectFunded(projectId, funder, 5e18, PROJECT_FUNDING + 5e18);
        project.fund(projectId, 5e18);
        vm.stopPrank();
        assertEq(project.budgetOf(projectId), PROJECT_FUNDING + 5e18);
        assertEq(project.fundedOf(projectId), PROJECT_FUNDING + 5e18);
        assertEq(token.balanceOf(address(project)) - before, 5e18);
    }

    function test_RevertWhen_fundZero() public {
        vm.expectRevert(IProject.ProjectZeroAmount.selector);
        project.fund(projectId, 0);
    }

    function test_RevertWhen_fundUnknownProject() public {
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 9));
        project.fund(9, 1);
    }

    // ------------------------------------------------------------------ spender

    function test_reserveReleasePay_keepAccounting() public {
        vm.startPrank(spender);
        project.reserve(projectId, 100e18);
        project.release(projectId, 30e18);
        project.pay(projectId, solvers[0], 50e18);
        vm.stopPrank();
        assertEq(project.budgetOf(projectId), PROJECT_FUNDING - 70e18);
        assertEq(project.reservedOf(projectId), 20e18);
        assertEq(project.paidOf(projectId), 50e18);
        assertEq(token.balanceOf(solvers[0]), 50e18);
    }

    function test_RevertWhen_reserveExceedsBudget() public {
        vm.prank(spender);
        vm.expectRevert(
            abi.encodeWithSelector(
                IProject.ProjectInsufficientBudget.selector, PROJECT_FUNDING, PROJECT_FUNDING + 1
            )
        );
        project.reserve(projectId, PROJECT_FUNDING + 1);
    }

    function test_RevertWhen_releaseExceedsReserve() public {
        vm.startPrank(spender);
        project.reserve(projectId, 10);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectInsufficientReserve.selector, 10, 11));
        project.release(projectId, 11);
        vm.stopPrank();
    }

    function test_RevertWhen_payExceedsReserve() public {
        vm.prank(spender);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectInsufficientReserve.selector, 0, 1));
        project.pay(projectId, solvers[0], 1);
    }

    function test_RevertWhen_payToZero() public {
        vm.prank(spender);
        vm.expectRevert(IProject.ProjectZeroAddress.selector);
        project.pay(projectId, address(0), 0);
    }

    function test_RevertWhen_spenderActionUnknownProject() public {
        vm.startPrank(spender);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 5));
        project.reserve(5, 1);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 5));
        project.release(5, 1);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 5));
        project.pay(5, solvers[0], 1);
        vm.stopPrank();
    }

    function test_RevertWhen_notSpender() public {
        bytes32 role = project.SPENDER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), role
            )
        );
        project.reserve(projectId, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), role
            )
        );
        project.release(projectId, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), role
            )
        );
        project.pay(projectId, address(this), 1);
    }

    function testFuzz_reserveReleasePay_conservesFunds(uint256 r, uint256 rel, uint256 p) public {
        r = bound(r, 0, PROJECT_FUNDING);
        rel = bound(rel, 0, r);
        p = bound(p, 0, r - rel);
        vm.startPrank(spender);
        project.reserve(projectId, r);
        project.release(projectId, rel);
        project.pay(projectId, solvers[1], p);
        vm.stopPrank();
        assertEq(
            project.fundedOf(projectId),
            project.budgetOf(projectId) + project.reservedOf(projectId) + project.paidOf(projectId)
        );
        assertEq(project.paidOf(projectId), p);
    }

    // ------------------------------------------------------------------ model

    function test_advanceModel_movesRoot() public {
        vm.expectEmit(true, false, false, true, address(project));
        emit IProject.ModelAdvanced(projectId, GENESIS_ROOT, bytes32("v1"));
        vm.prank(publisher);
        project.advanceModel(projectId, GENESIS_ROOT, bytes32("v1"));
        assertEq(project.modelRoot(projectId), bytes32("v1"));
    }

    function test_RevertWhen_advanceModelStaleParent() public {
        vm.prank(publisher);
        vm.expectRevert(
            abi.encodeWithSelector(IProject.ProjectStaleParent.selector, GENESIS_ROOT, bytes32("x"))
        );
        project.advanceModel(projectId, bytes32("x"), bytes32("v1"));
    }

    function test_RevertWhen_advanceModelZeroRoot() public {
        vm.prank(publisher);
        vm.expectRevert(IProject.ProjectZeroRoot.selector);
        project.advanceModel(projectId, GENESIS_ROOT, bytes32(0));
    }

    function test_RevertWhen_advanceModelNotPublisher() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector,
                address(this),
                project.MODEL_PUBLISHER_ROLE()
            )
        );
        project.advanceModel(projectId, GENESIS_ROOT, bytes32("v1"));
    }

    // ------------------------------------------------------------------ settings

    function test_setInferencePrice_byOwner() public {
        vm.prank(owner);
        project.setInferencePrice(projectId, 7);
        assertEq(project.inferencePrice(projectId), 7);
    }

    function test_RevertWhen_setInferencePriceNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectNotOwner.selector, address(this), owner));
        project.setInferencePrice(projectId, 7);
    }

    function test_setRewardSplit_byGovernance() public {
        vm.prank(address(timelock));
        project.setRewardSplit(projectId, IProject.RewardSplit(5000, 3000, 1000, 1000));
        assertEq(project.config(projectId).split.coordinatorBps, 3000);
    }

    function test_RevertWhen_setRewardSplitInvalidOrUnauthorized() public {
        vm.prank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectInvalidSplit.selector, 10_001));
        project.setRewardSplit(projectId, IProject.RewardSplit(5001, 3000, 1000, 1000));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), bytes32(0)
            )
        );
        project.setRewardSplit(projectId, IProject.RewardSplit(5000, 3000, 1000, 1000));
    }

    function test_setWindows_byGovernance() public {
        vm.prank(address(timelock));
        project.setWindows(projectId, IProject.Windows(1, 2, 3, 4, 5, 6));
        assertEq(project.config(projectId).windows.voteReveal, 5);
        vm.prank(address(timelock));
        vm.expectRevert(IProject.ProjectInvalidWindows.selector);
        project.setWindows(projectId, IProject.Windows(0, 2, 3, 4, 5, 6));
    }

    function test_setTaskLimits_byGovernance() public {
        vm.prank(address(timelock));
        project.setTaskLimits(projectId, 4, 3);
        assertEq(project.config(projectId).maxSolvers, 4);
        assertEq(project.config(projectId).minVotes, 3);
        vm.prank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectInvalidTaskLimits.selector, 0, 3));
        project.setTaskLimits(projectId, 0, 3);
    }

    function test_createProject_pipelinedAndTheStalenessBound() public {
        IProject.CreateProjectParams memory p = _defaultParams();
        p.maxStaleness = 1;
        vm.prank(owner);
        uint256 id = project.createProject(p);
        assertEq(project.config(id).maxStaleness, 1);
        assertEq(project.getProject(id).maxStaleness, 1);
        p.maxStaleness = 2;
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectStalenessTooHigh.selector, 2, 1));
        project.createProject(p);
        assertEq(project.projectCount(), id, "nothing created");
    }

    function test_setMaxStaleness_byGovernanceOnly() public {
        bytes32 admin = project.DEFAULT_ADMIN_ROLE();
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, admin));
        project.setMaxStaleness(projectId, 1);
        vm.expectEmit(true, false, false, true, address(project));
        emit IProject.MaxStalenessUpdated(projectId, 1);
        vm.prank(address(timelock));
        project.setMaxStaleness(projectId, 1);
        IProject.Config memory c = project.config(projectId);
        assertEq(c.maxStaleness, 1);
        // The fields sharing its slot are untouched.
        assertEq(c.owner, owner);
        assertEq(c.minVotes, 2);
        assertEq(c.split.aggregatorBps, 1000);
        vm.prank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectStalenessTooHigh.selector, 255, 1));
        project.setMaxStaleness(projectId, 255);
        assertEq(project.config(projectId).maxStaleness, 1);
        vm.prank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 42));
        project.setMaxStaleness(42, 1);
    }

    function test_RevertWhen_viewUnknownProject() public {
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 42));
        project.getProject(42);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 42));
        project.config(42);
    }
}
