// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {World} from "./utils/World.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";

/// @notice A project's jurisdiction vector (alignment pricing, docs/x402.md): set by its owner or by an
///         executed governance proposal, range-checked per axis, cleared, and read by inference nodes.
contract ProjectJurisdictionTest is World {
    address internal stranger = makeAddr("stranger");

    function _coords(int32 a, int32 b, int32 c, int32 d) internal pure returns (int32[4] memory v) {
        v = [a, b, c, d];
    }

    function _assertJurisdiction(bool wantSet, int32[4] memory want) internal view {
        (bool set, int32[4] memory got) = project.jurisdictionOf(projectId);
        assertEq(set, wantSet, "set");
        for (uint256 i; i < 4; ++i) {
            assertEq(int256(got[i]), int256(want[i]), "coordinate");
        }
    }

    function test_noJurisdictionByDefault() public view {
        _assertJurisdiction(false, _coords(0, 0, 0, 0));
        (bool set,) = project.jurisdictionOf(42);
        assertFalse(set, "an unknown project has none");
    }

    function test_setJurisdiction_byOwner() public {
        int32[4] memory v = _coords(1_000_000, 0, 500_000, -1_000_000);
        vm.expectEmit(true, true, false, true, address(project));
        emit IProject.JurisdictionUpdated(projectId, owner, true, v);
        vm.prank(owner);
        project.setJurisdiction(projectId, v);
        _assertJurisdiction(true, v);
        // Changed again by the owner; the price is untouched.
        uint256 price = project.inferencePrice(projectId);
        vm.prank(owner);
        project.setJurisdiction(projectId, _coords(-3, 2, -1, 0));
        _assertJurisdiction(true, _coords(-3, 2, -1, 0));
        assertEq(project.inferencePrice(projectId), price);
    }

    function test_RevertWhen_strangerSetsOrClearsJurisdiction() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectNotOwner.selector, stranger, owner));
        project.setJurisdiction(projectId, _coords(1, 1, 1, 1));
        vm.prank(owner);
        project.setJurisdiction(projectId, _coords(1, 1, 1, 1));
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectNotOwner.selector, stranger, owner));
        project.clearJurisdiction(projectId);
        _assertJurisdiction(true, _coords(1, 1, 1, 1));
    }

    function test_RevertWhen_jurisdictionOfUnknownProject() public {
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 42));
        project.setJurisdiction(42, _coords(0, 0, 0, 0));
        vm.prank(address(timelock));
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectUnknown.selector, 42));
        project.clearJurisdiction(42);
    }

    function test_RevertWhen_coordinateOutOfRange() public {
        int32 scale = project.JURISDICTION_SCALE();
        assertEq(int256(scale), 1_000_000);
        vm.startPrank(owner);
        // The bounds themselves are accepted.
        project.setJurisdiction(projectId, _coords(-scale, scale, -scale, scale));
        vm.expectRevert(abi.encodeWithSelector(IProject.ProjectJurisdictionOutOfRange.selector, 0, scale + 1));
        project.setJurisdiction(projectId, _coords(scale + 1, 0, 0, 0));
        vm.expectRevert(
            abi.encodeWithSelector(IProject.ProjectJurisdictionOutOfRange.selector, 2, -scale - 1)
        );
        project.setJurisdiction(projectId, _coords(0, 0, -scale - 1, 0));
        // The first bad axis is named.
        vm.expectRevert(
            abi.encodeWithSelector(IProject.ProjectJurisdictionOutOfRange.selector, 1, type(int32).min)
        );
        project.setJurisdiction(projectId, _coords(0, type(int32).min, type(int32).max, 0));
        vm.expectRevert(
            abi.encodeWithSelector(IProject.ProjectJurisdictionOutOfRange.selector, 3, type(int32).max)
        );
        project.setJurisdiction(projectId, _coords(0, 0, 0, type(int32).max));
        vm.stopPrank();
        _assertJurisdiction(true, _coords(-scale, scale, -scale, scale));
    }

    function testFuzz_setJurisdiction_inRangeStoresOutOfRangeReverts(
        int32 a,
        int32 b,
        int32 c,
        int32 d,
        bool inRange
    ) public {
        int32[4] memory v = _coords(a, b, c, d);
        if (inRange) {
            for (uint256 i; i < 4; ++i) {
                v[i] = int32(bound(int256(v[i]), -1_000_000, 1_000_000));
            }
        }
        uint256 bad = 4;
        for (uint256 i; i < 4; ++i) {
            if (v[i] < -1_000_000 || v[i] > 1_000_000) {
                bad = i;
                break;
            }
        }
        vm.prank(owner);
        if (bad < 4) {
            vm.expectRevert(
                abi.encodeWithSelector(IProject.ProjectJurisdictionOutOfRange.selector, uint8(bad), v[bad])
            );
            project.setJurisdiction(projectId, v);
            _assertJurisdiction(false, _coords(0, 0, 0, 0));
        } else {
            project.setJurisdiction(projectId, v);
            _assertJurisdiction(true, v);
        }
    }

    function test_clearJurisdiction_byOwnerAndByGovernance() public {
        vm.prank(owner);
        project.setJurisdiction(projectId, _coords(7, 8, 9, 10));
        vm.expectEmit(true, true, false, true, address(project));
        emit IProject.JurisdictionUpdated(projectId, owner, false, _coords(0, 0, 0, 0));
        vm.prank(owner);
        project.clearJurisdiction(projectId);
        _assertJurisdiction(false, _coords(0, 0, 0, 0));
        // Clearing twice is harmless; the Timelock (governance) may clear too.
        vm.prank(owner);
        project.setJurisdiction(projectId, _coords(7, 8, 9, 10));
        vm.prank(address(timelock));
        project.clearJurisdiction(projectId);
        vm.prank(address(timelock));
        project.clearJurisdiction(projectId);
        _assertJurisdiction(false, _coords(0, 0, 0, 0));
    }

    /// @dev The full governance path: a proposal calling setJurisdiction is voted, queued in the Timelock
    ///      (the holder of DEFAULT_ADMIN_ROLE) and executed; it overrides the owner's vector, and a second one
    ///      clears it.
    function test_governanceProposalChangesAndClearsJurisdiction() public {
        vm.prank(owner);
        project.setJurisdiction(projectId, _coords(1_000_000, 0, 0, 0));
        // This test contract deployed the token and holds most of the supply: it delegates to itself.
        token.delegate(address(this));
        vm.roll(block.number + 1);

        int32[4] memory v = _coords(-250_000, 0, 750_000, 1_000_000);
        _passProposal(
            abi.encodeCall(IProject.setJurisdiction, (projectId, v)), "Set project 1's jurisdiction"
        );
        _assertJurisdiction(true, v);

        _passProposal(
            abi.encodeCall(IProject.clearJurisdiction, (projectId)), "Clear project 1's jurisdiction"
        );
        _assertJurisdiction(false, _coords(0, 0, 0, 0));
    }

    function _passProposal(bytes memory data, string memory description) internal {
        address[] memory targets = new address[](1);
        uint256[] memory values = new uint256[](1);
        bytes[] memory calldatas = new bytes[](1);
        targets[0] = address(project);
        calldatas[0] = data;
        uint256 id = governor.propose(targets, values, calldatas, description);
        vm.roll(block.number + governor.votingDelay() + 1);
        governor.castVote(id, 1);
        vm.roll(block.number + governor.votingPeriod() + 1);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Succeeded));
        bytes32 descHash = keccak256(bytes(description));
        governor.queue(targets, values, calldatas, descHash);
        vm.warp(block.timestamp + timelock.getMinDelay() + 1);
        governor.execute(targets, values, calldatas, descHash);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Executed));
    }
}
