// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ATNToken} from "../../contracts/ATNToken.sol";
import {Project} from "../../contracts/Project.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";

/// @notice Bounded random actions on Project's money paths (fund / reserve / release / pay over 3 projects).
contract ProjectHandler is Test {
    Project internal immutable project;
    ATNToken internal immutable token;
    uint256 internal constant N = 3;

    uint256 public ghostFunded;
    uint256 public ghostPaid;
    bool public ghostOverspent;
    mapping(uint256 => uint256) public ghostPaidOf;

    constructor(Project project_, ATNToken token_) {
        project = project_;
        token = token_;
        token.approve(address(project_), type(uint256).max);
    }

    function fund(uint256 pid, uint256 amount) external {
        pid = bound(pid, 1, N);
        amount = bound(amount, 1, 1_000_000e18);
        project.fund(pid, amount);
        ghostFunded += amount;
    }

    function reserve(uint256 pid, uint256 amount) external {
        pid = bound(pid, 1, N);
        amount = bound(amount, 0, project.budgetOf(pid));
        project.reserve(pid, amount);
    }

    function release(uint256 pid, uint256 amount) external {
        pid = bound(pid, 1, N);
        amount = bound(amount, 0, project.reservedOf(pid));
        project.release(pid, amount);
    }

    function pay(uint256 pid, uint256 amount, address to) external {
        pid = bound(pid, 1, N);
        if (to == address(0) || to == address(project)) to = address(0xBEEF);
        amount = bound(amount, 0, project.reservedOf(pid));
        project.pay(pid, to, amount);
        ghostPaid += amount;
        ghostPaidOf[pid] += amount;
    }

    /// Over-spending must always revert and leave state untouched.
    function overReserve(uint256 pid, uint256 extra) external {
        pid = bound(pid, 1, N);
        extra = bound(extra, 1, 1e30);
        uint256 amount = project.budgetOf(pid) + extra;
        try project.reserve(pid, amount) {
            ghostOverspent = true;
        } catch {}
    }
}

contract ProjectInvariantTest is Test {
    ATNToken internal token;
    Project internal project;
    ProjectHandler internal handler;

    function setUp() public {
        token = new ATNToken(address(this), address(this), 1e36);
        project = new Project(address(this), token);
        handler = new ProjectHandler(project, token);
        project.grantRole(project.SPENDER_ROLE(), address(handler));
        require(token.transfer(address(handler), 1e35));
        IProject.CreateProjectParams memory p;
        p.initialModelRoot = bytes32("genesis");
        p.split = IProject.RewardSplit(7000, 1500, 500, 1000);
        p.windows = IProject.Windows(1, 1, 1, 1, 1, 1);
        p.maxSolvers = 4;
        p.minVotes = 1;
        for (uint256 i; i < 3; ++i) {
            project.createProject(p);
        }
        targetContract(address(handler));
    }

    function invariant_fundedEqualsBudgetPlusReservedPlusPaid() public view {
        for (uint256 pid = 1; pid <= 3; ++pid) {
            assertEq(
                project.fundedOf(pid), project.budgetOf(pid) + project.reservedOf(pid) + project.paidOf(pid)
            );
            assertEq(project.paidOf(pid), handler.ghostPaidOf(pid));
        }
    }

    function invariant_balanceCoversBudgetsAndReservations() public view {
        uint256 held;
        uint256 funded;
        for (uint256 pid = 1; pid <= 3; ++pid) {
            held += project.budgetOf(pid) + project.reservedOf(pid);
            funded += project.fundedOf(pid);
        }
        assertEq(token.balanceOf(address(project)), held);
        assertEq(funded, handler.ghostFunded());
        assertLe(handler.ghostPaid(), handler.ghostFunded());
        assertFalse(handler.ghostOverspent());
    }
}
