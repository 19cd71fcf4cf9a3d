// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {ATNToken} from "../contracts/ATNToken.sol";
import {Registry} from "../contracts/Registry.sol";
import {ParticipantStaking} from "../contracts/ParticipantStaking.sol";
import {AutonetGovernor} from "../contracts/AutonetGovernor.sol";
import {Role} from "../contracts/interfaces/IParticipantStaking.sol";

contract GovernanceTest is Test {
    ATNToken internal token;
    TimelockController internal timelock;
    AutonetGovernor internal governor;
    Registry internal registry;
    ParticipantStaking internal staking;

    address internal whale = makeAddr("whale"); // 90%
    address internal voter = makeAddr("voter"); // 2%
    address internal minnow = makeAddr("minnow"); // below threshold

    uint48 internal constant VOTING_DELAY = 1;
    uint32 internal constant VOTING_PERIOD = 50;
    uint256 internal constant THRESHOLD = 1000e18;
    uint256 internal constant QUORUM_PCT = 4;
    uint256 internal constant MIN_DELAY = 1 days;

    function setUp() public {
        vm.warp(1_000_000);
        vm.roll(1000);
        token = new ATNToken(address(this), whale, 9_000_000e18);
        token.mint(voter, 200_000e18);
        token.mint(minnow, 999e18);
        token.mint(address(this), 801_001e18 - 999e18 - 1e18);

        address[] memory none = new address[](0);
        address[] memory anyone = new address[](1); // address(0) = open executor
        timelock = new TimelockController(MIN_DELAY, none, anyone, address(this));
        governor = new AutonetGovernor(token, timelock, VOTING_DELAY, VOTING_PERIOD, THRESHOLD, QUORUM_PCT);
        timelock.grantRole(timelock.PROPOSER_ROLE(), address(governor));
        timelock.grantRole(timelock.CANCELLER_ROLE(), address(governor));

        registry = new Registry(address(timelock));
        staking = new ParticipantStaking(address(timelock), token, address(timelock));
        token.grantRole(token.MINTER_ROLE(), address(timelock));
        token.renounceRole(token.MINTER_ROLE(), address(this));
        timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), address(this));

        vm.prank(whale);
        token.delegate(whale);
        vm.prank(voter);
        token.delegate(voter);
        vm.prank(minnow);
        token.delegate(minnow);
        vm.roll(block.number + 1);
    }

    function _proposal()
        internal
        view
        returns (
            address[] memory targets,
            uint256[] memory values,
            bytes[] memory calldatas,
            string memory desc
        )
    {
        targets = new address[](3);
        values = new uint256[](3);
        calldatas = new bytes[](3);
        targets[0] = address(registry);
        calldatas[0] =
            abi.encodeCall(Registry.setBytes32, ("node.code.hash.0.1.0", keccak256("autonet-0.1.0")));
        targets[1] = address(staking);
        calldatas[1] = abi.encodeCall(ParticipantStaking.setMinStake, (Role.Coordinator, 750e18));
        targets[2] = address(token);
        calldatas[2] = abi.encodeCall(ATNToken.mint, (address(timelock), 1e18));
        desc = "Set node code hash 0.1.0, raise coordinator stake, mint 1 ATN to the treasury";
    }

    function test_constructor_settings() public view {
        assertEq(governor.name(), "AutonetGovernor");
        assertEq(governor.votingDelay(), VOTING_DELAY);
        assertEq(governor.votingPeriod(), VOTING_PERIOD);
        assertEq(governor.proposalThreshold(), THRESHOLD);
        assertEq(address(governor.token()), address(token));
        assertEq(governor.timelock(), address(timelock));
        assertEq(governor.clock(), block.number);
        assertEq(
            governor.quorum(block.number - 1), token.getPastTotalSupply(block.number - 1) * QUORUM_PCT / 100
        );
    }

    function test_lifecycle_proposeVoteQueueExecute() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c, string memory d) = _proposal();
        vm.prank(voter);
        uint256 id = governor.propose(t, v, c, d);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Pending));
        assertTrue(governor.proposalNeedsQueuing(id));

        vm.roll(block.number + VOTING_DELAY + 1);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Active));
        vm.prank(whale);
        governor.castVote(id, 1);
        vm.prank(voter);
        governor.castVote(id, 0);
        (uint256 against, uint256 forVotes,) = governor.proposalVotes(id);
        assertEq(forVotes, 9_000_000e18);
        assertEq(against, 200_000e18);

        vm.roll(block.number + VOTING_PERIOD);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Succeeded));
        bytes32 descHash = keccak256(bytes(d));
        governor.queue(t, v, c, descHash);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Queued));

        // too early
        bytes32 opId = timelock.hashOperationBatch(t, v, c, 0, bytes20(address(governor)) ^ descHash);
        vm.expectRevert(
            abi.encodeWithSelector(
                TimelockController.TimelockUnexpectedOperationState.selector,
                opId,
                bytes32(1 << uint8(TimelockController.OperationState.Ready))
            )
        );
        governor.execute(t, v, c, descHash);

        vm.warp(block.timestamp + MIN_DELAY + 1);
        governor.execute(t, v, c, descHash);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Executed));
        assertEq(registry.getBytes32("node.code.hash.0.1.0"), keccak256("autonet-0.1.0"));
        assertEq(staking.minStake(Role.Coordinator), 750e18);
        assertEq(token.balanceOf(address(timelock)), 1e18);
    }

    function test_RevertWhen_proposerBelowThreshold() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c, string memory d) = _proposal();
        vm.expectRevert(
            abi.encodeWithSelector(
                IGovernor.GovernorInsufficientProposerVotes.selector, minnow, 999e18, THRESHOLD
            )
        );
        vm.prank(minnow);
        governor.propose(t, v, c, d);
    }

    function test_state_defeatedWithoutQuorum() public {
        (address[] memory t, uint256[] memory v, bytes[] memory c, string memory d) = _proposal();
        vm.prank(voter);
        uint256 id = governor.propose(t, v, c, d);
        vm.roll(block.number + VOTING_DELAY + 1);
        vm.prank(voter);
        governor.castVote(id, 1); // 2% For, quorum is 4%
        vm.roll(block.number + VOTING_PERIOD);
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Defeated));
        vm.expectRevert(
            abi.encodeWithSelector(
                IGovernor.GovernorUnexpectedProposalState.selector,
                id,
                IGovernor.ProposalState.Defeated,
                bytes32(1 << uint8(IGovernor.ProposalState.Succeeded))
            )
        );
        governor.queue(t, v, c, keccak256(bytes(d)));
    }

    function test_RevertWhen_directCallByNonTimelock() public {
        bytes32 adminRole = registry.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, whale, adminRole)
        );
        vm.prank(whale);
        registry.setBytes32("node.code.hash.0.1.0", bytes32(uint256(1)));

        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, whale, adminRole)
        );
        vm.prank(whale);
        staking.setMinStake(Role.Solver, 1);

        vm.expectRevert(abi.encodeWithSelector(IGovernor.GovernorOnlyExecutor.selector, whale));
        vm.prank(whale);
        governor.setVotingPeriod(1);
    }

    function _passAndExecute(address[] memory t, uint256[] memory v, bytes[] memory c, string memory d)
        internal
    {
        vm.prank(voter);
        uint256 id = governor.propose(t, v, c, d);
        vm.roll(block.number + VOTING_DELAY + 1);
        vm.prank(whale);
        governor.castVote(id, 1);
        vm.roll(block.number + VOTING_PERIOD);
        governor.queue(t, v, c, keccak256(bytes(d)));
        vm.warp(block.timestamp + MIN_DELAY + 1);
        governor.execute(t, v, c, keccak256(bytes(d)));
        assertEq(uint8(governor.state(id)), uint8(IGovernor.ProposalState.Executed));
    }

    function test_lifecycle_slashAppealReturnsStakeFromTreasury() public {
        // a slasher takes stake: it lands in the treasury (the timelock)
        address slasher = makeAddr("slasher");
        address victim = makeAddr("victim");
        vm.prank(whale);
        assertTrue(token.transfer(victim, 600e18));
        vm.startPrank(victim);
        token.approve(address(staking), 600e18);
        staking.stake(Role.Coordinator, 600e18);
        vm.stopPrank();

        address[] memory t = new address[](1);
        uint256[] memory v = new uint256[](1);
        bytes[] memory c = new bytes[](1);
        t[0] = address(staking);
        c[0] = abi.encodeCall(staking.grantRole, (staking.SLASHER_ROLE(), slasher));
        _passAndExecute(t, v, c, "grant slasher");
        vm.prank(slasher);
        staking.slash(victim, 200e18, "disputed");
        assertEq(token.balanceOf(address(timelock)), 200e18);

        // the appeal passes: the treasury grants the slashed amount back
        t[0] = address(token);
        c[0] = abi.encodeCall(token.transfer, (victim, 200e18));
        _passAndExecute(t, v, c, "slash appeal: return 200 ATN to victim");
        assertEq(token.balanceOf(victim), 200e18);
        assertEq(token.balanceOf(address(timelock)), 0);
    }

    function testFuzz_castVote_outcomeFollowsTally(uint256 forShare, bool voterFor) public {
        forShare = bound(forShare, 0, 9_000_000e18);
        // whale moves `forShare` of its votes to a fresh delegate that votes For; whale votes Against with the rest
        address ally = makeAddr("ally");
        vm.prank(whale);
        token.transfer(ally, forShare);
        vm.prank(ally);
        token.delegate(ally);
        vm.roll(block.number + 1);

        (address[] memory t, uint256[] memory v, bytes[] memory c, string memory d) = _proposal();
        vm.prank(voter);
        uint256 id = governor.propose(t, v, c, d);
        vm.roll(block.number + VOTING_DELAY + 1);
        vm.prank(ally);
        governor.castVote(id, 1);
        vm.prank(whale);
        governor.castVote(id, 0);
        vm.prank(voter);
        governor.castVote(id, voterFor ? 1 : 0);
        vm.roll(block.number + VOTING_PERIOD);

        uint256 forVotes = forShare + (voterFor ? 200_000e18 : 0);
        uint256 againstVotes = 9_000_000e18 - forShare + (voterFor ? 0 : 200_000e18);
        uint256 quorum = governor.quorum(governor.proposalSnapshot(id));
        bool succeeded = forVotes > againstVotes && forVotes >= quorum;
        assertEq(
            uint8(governor.state(id)),
            uint8(succeeded ? IGovernor.ProposalState.Succeeded : IGovernor.ProposalState.Defeated)
        );
    }
}
