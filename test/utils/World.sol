// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {ATNToken} from "../../contracts/ATNToken.sol";
import {Registry} from "../../contracts/Registry.sol";
import {AutonetGovernor} from "../../contracts/AutonetGovernor.sol";
import {ParticipantStaking} from "../../contracts/ParticipantStaking.sol";
import {AgentIdentity} from "../../contracts/AgentIdentity.sol";
import {Project} from "../../contracts/Project.sol";
import {InferenceMarket} from "../../contracts/InferenceMarket.sol";
import {Rewards} from "../../contracts/Rewards.sol";
import {TaskManager} from "../../contracts/TaskManager.sol";
import {ModelShardRegistry} from "../../contracts/ModelShardRegistry.sol";
import {BlsSignerRegistry} from "../../contracts/BlsSignerRegistry.sol";
import {ShardProviders} from "../../contracts/ShardProviders.sol";
import {IATNToken} from "../../contracts/interfaces/IATNToken.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";
import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {ITaskManager} from "../../contracts/interfaces/ITaskManager.sol";
import {IInferenceMarket} from "../../contracts/interfaces/IInferenceMarket.sol";
import {IParticipantStaking, Role} from "../../contracts/interfaces/IParticipantStaking.sol";
import {IModelShardRegistry} from "../../contracts/interfaces/IModelShardRegistry.sol";
import {DeployLib} from "../../script/DeployLib.sol";

/// @notice The shared fixture: deploys and wires every contract like Deploy.s.sol (constructors of
///         docs/contracts.md, roles of its table, admin handed to the Timelock), funds and stakes named actors,
///         creates a funded project, and offers helpers to drive a round.
abstract contract World is Test {
    uint256 internal constant SUPPLY = 100_000_000e18;
    uint256 internal constant PROJECT_FUNDING = 100_000e18;
    uint256 internal constant REWARD = 1000e18;
    uint256 internal constant N_SOLVERS = 3;
    uint256 internal constant N_COORDS = 3;

    ATNToken internal token;
    Registry internal registry;
    TimelockController internal timelock;
    AutonetGovernor internal governor;
    ParticipantStaking internal staking;
    AgentIdentity internal identity;
    Project internal project;
    InferenceMarket internal market;
    Rewards internal rewards;
    TaskManager internal tasks;
    ModelShardRegistry internal shards;
    BlsSignerRegistry internal blsSigners;
    ShardProviders internal shardProviders;

    address internal deployer = address(this);
    address internal owner = makeAddr("projectOwner");
    address internal funder = makeAddr("funder");
    address internal proposer = makeAddr("proposer");
    address internal aggregator = makeAddr("aggregator");
    address[] internal solvers;
    address[] internal coords;
    uint256 internal projectId;

    // Windows of the fixture project (blocks).
    uint32 internal constant W_COMMIT = 10;
    uint32 internal constant W_GT = 5;
    uint32 internal constant W_SOL = 5;
    uint32 internal constant W_VCOMMIT = 5;
    uint32 internal constant W_VREVEAL = 5;
    uint32 internal constant W_PUBLISH = 50;

    bytes32 internal constant EVAL_SPEC = keccak256("eval-spec");
    bytes32 internal constant GT_SALT = keccak256("gt-salt");
    bytes32 internal constant GENESIS_ROOT = keccak256("genesis-model");

    function setUp() public virtual {
        _deploy();
        _actors();
        projectId = _createProject(owner, PROJECT_FUNDING);
    }

    // ------------------------------------------------------------------ deployment

    /// @dev The same code path as script/Deploy.s.sol (DeployLib), with this test contract as the
    ///      deployer, so every test runs against exactly the production wiring and hand-over.
    function _deploy() internal {
        DeployLib.Config memory c = DeployLib.devnetConfig();
        c.initialSupply = SUPPLY;
        c.timelockDelay = 1 days;
        c.votingPeriod = 50;
        DeployLib.Deployment memory d = DeployLib.deployAll(deployer, c);
        token = d.token;
        registry = d.registry;
        timelock = d.timelock;
        governor = d.governor;
        staking = d.staking;
        identity = d.identity;
        project = d.project;
        market = d.market;
        rewards = d.rewards;
        tasks = d.taskManager;
        shards = d.shardRegistry;
        blsSigners = d.blsSigners;
        shardProviders = d.shardProviders;
    }

    function _actors() internal {
        for (uint256 i; i < N_SOLVERS; ++i) {
            solvers.push(makeAddr(string.concat("solver", vm.toString(i))));
        }
        for (uint256 i; i < N_COORDS; ++i) {
            coords.push(makeAddr(string.concat("coordinator", vm.toString(i))));
        }
        _stake(proposer, Role.Proposer, 1000e18);
        _stake(aggregator, Role.Aggregator, 2000e18);
        for (uint256 i; i < solvers.length; ++i) {
            _stake(solvers[i], Role.Solver, 100e18);
        }
        for (uint256 i; i < coords.length; ++i) {
            _stake(coords[i], Role.Coordinator, 1000e18);
        }
        require(token.transfer(funder, 1_000_000e18));
        require(token.transfer(owner, 1_000_000e18));
    }

    /// @dev `n` fresh accounts named `tag0`, `tag1`, …, each staking `amount` in `role`.
    function _stakedAccounts(string memory tag, uint256 n, Role role, uint256 amount)
        internal
        returns (address[] memory out)
    {
        out = new address[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = makeAddr(string.concat(tag, vm.toString(i)));
            _stake(out[i], role, amount);
        }
    }

    function _stake(address who, Role role, uint256 amount) internal {
        require(token.transfer(who, amount));
        vm.startPrank(who);
        token.approve(address(staking), amount);
        staking.stake(role, amount);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ projects

    function _defaultParams() internal pure returns (IProject.CreateProjectParams memory p) {
        p.modelSpecHash = keccak256("model-spec");
        p.modelURI = "ipfs://model";
        p.datasetRoot = keccak256("dataset");
        p.initialModelRoot = GENESIS_ROOT;
        p.inferencePrice = 1e18;
        p.split = IProject.RewardSplit(7000, 1500, 500, 1000);
        p.windows = IProject.Windows(W_COMMIT, W_GT, W_SOL, W_VCOMMIT, W_VREVEAL, W_PUBLISH);
        p.maxSolvers = 16;
        p.minVotes = 2;
    }

    function _createProject(address by, uint256 funding) internal returns (uint256 id) {
        vm.startPrank(by);
        id = project.createProject(_defaultParams());
        // The owner approves the fixture's proposer; tests of foreign proposers use other addresses.
        project.setProposerCap(id, proposer, type(uint128).max);
        vm.stopPrank();
        if (funding != 0) _fund(id, funding);
    }

    function _fund(uint256 id, uint256 amount) internal {
        vm.startPrank(funder);
        token.approve(address(project), amount);
        project.fund(id, amount);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ commitments

    function _gtCommit(address p, uint256 pid, bytes32 evalSpec, bytes32 salt)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(p, pid, evalSpec, salt));
    }

    function _delta(address s) internal pure returns (bytes32) {
        return keccak256(abi.encode("delta", s));
    }

    function _manifest(address s) internal pure returns (bytes32) {
        return keccak256(abi.encode("manifest", s));
    }

    function _solSalt(address s) internal pure returns (bytes32) {
        return keccak256(abi.encode("sol-salt", s));
    }

    function _voteSalt(address c) internal pure returns (bytes32) {
        return keccak256(abi.encode("vote-salt", c));
    }

    function _solCommit(uint256 taskId, address s) internal pure returns (bytes32) {
        return keccak256(abi.encode(taskId, s, _delta(s), _manifest(s), _solSalt(s)));
    }

    function _voteCommit(uint256 taskId, address c, uint16[] memory scores) internal pure returns (bytes32) {
        return keccak256(abi.encode(taskId, c, scores, _voteSalt(c)));
    }

    // ------------------------------------------------------------------ round helpers

    function _propose() internal returns (uint256 taskId) {
        return _proposeFor(projectId, REWARD);
    }

    function _proposeFor(uint256 pid, uint256 reward) internal returns (uint256 taskId) {
        bytes32 gt = _gtCommit(proposer, pid, EVAL_SPEC, GT_SALT);
        vm.prank(proposer);
        taskId = tasks.proposeTask(pid, keccak256("spec"), gt, reward);
    }

    function _deadlines(uint256 taskId) internal view returns (ITaskManager.Deadlines memory) {
        return tasks.getTask(taskId).deadlines;
    }

    /// @dev One "transaction" for gas measurements: every protocol contract's storage is cooled first (as a new
    ///      transaction finds it), then `data` is sent as `from`; reverts the test when the call fails. Returns
    ///      the call's execution gas (without the 21,000 intrinsic gas).
    function _coldCall(address from, address to, bytes memory data) internal returns (uint256 gasUsed) {
        address[9] memory all = [
            address(token),
            address(staking),
            address(project),
            address(market),
            address(rewards),
            address(tasks),
            address(shards),
            address(blsSigners),
            address(shardProviders)
        ];
        for (uint256 i; i < all.length; ++i) {
            vm.cool(all[i]);
        }
        vm.prank(from);
        uint256 g = gasleft();
        (bool ok,) = to.call(data);
        gasUsed = g - gasleft();
        assertTrue(ok, "round transaction failed");
    }

    /// @dev The manifest of a test model `root` built on `parent` (10 data + 4 parity shards of 1,000 bytes).
    function _modelManifest(bytes32 root, bytes32 parent)
        internal
        view
        returns (IModelShardRegistry.ModelManifest memory m)
    {
        m = IModelShardRegistry.ModelManifest({
            projectId: projectId,
            root: root,
            manifestHash: keccak256(abi.encode("manifest", root)),
            parentRoot: parent,
            totalSize: 10_000,
            shardSize: 1000,
            dataShards: 10,
            parityShards: 4
        });
    }

    function _rollTo(uint256 blockNumber) internal {
        if (block.number < blockNumber) vm.roll(blockNumber);
    }

    function _rollToSolReveal(uint256 taskId) internal {
        _rollTo(uint256(_deadlines(taskId).commitEnd) + 1);
    }

    function _rollToGtReveal(uint256 taskId) internal {
        _rollTo(uint256(_deadlines(taskId).solRevealEnd) + 1);
    }

    function _rollToVoteCommit(uint256 taskId) internal {
        _rollTo(uint256(_deadlines(taskId).gtRevealEnd) + 1);
    }

    function _rollToVoteReveal(uint256 taskId) internal {
        _rollTo(uint256(_deadlines(taskId).voteCommitEnd) + 1);
    }

    function _rollToFinalize(uint256 taskId) internal {
        _rollTo(uint256(_deadlines(taskId).voteRevealEnd) + 1);
    }

    function _commit(uint256 taskId, address s) internal {
        vm.prank(s);
        tasks.commitSolution(taskId, _solCommit(taskId, s));
    }

    function _commitAll(uint256 taskId) internal {
        for (uint256 i; i < solvers.length; ++i) {
            _commit(taskId, solvers[i]);
        }
    }

    function _revealGt(uint256 taskId) internal {
        _rollToGtReveal(taskId);
        vm.prank(proposer);
        tasks.revealGroundTruth(taskId, EVAL_SPEC, GT_SALT);
    }

    function _revealSolution(uint256 taskId, address s) internal {
        _rollToSolReveal(taskId);
        _revealSolutionNow(taskId, s);
    }

    function _revealSolutionNow(uint256 taskId, address s) internal {
        vm.prank(s);
        tasks.revealSolution(taskId, _delta(s), _manifest(s), _solSalt(s));
    }

    function _revealAll(uint256 taskId) internal {
        _rollToSolReveal(taskId);
        for (uint256 i; i < solvers.length; ++i) {
            _revealSolutionNow(taskId, solvers[i]);
        }
    }

    function _commitVote(uint256 taskId, address c, uint16[] memory scores) internal {
        _rollToVoteCommit(taskId);
        vm.prank(c);
        tasks.commitVote(taskId, _voteCommit(taskId, c, scores));
    }

    function _revealVote(uint256 taskId, address c, uint16[] memory scores) internal {
        _rollToVoteReveal(taskId);
        vm.prank(c);
        tasks.revealVote(taskId, scores, _voteSalt(c));
    }

    function _scores3(uint16 a, uint16 b, uint16 c) internal pure returns (uint16[] memory s) {
        s = new uint16[](3);
        s[0] = a;
        s[1] = b;
        s[2] = c;
    }

    /// @dev Commits and reveals `rows[i]` for coordinator i (all coordinators with a row).
    function _voteAll(uint256 taskId, uint16[][] memory rows) internal {
        for (uint256 i; i < rows.length; ++i) {
            _commitVote(taskId, coords[i], rows[i]);
        }
        for (uint256 i; i < rows.length; ++i) {
            _revealVote(taskId, coords[i], rows[i]);
        }
    }

    /// @dev A complete honest round through finalize; returns the task id.
    function _fullRound(uint16[][] memory rows) internal returns (uint256 taskId) {
        taskId = _propose();
        _commitAll(taskId);
        _revealAll(taskId);
        _revealGt(taskId);
        _voteAll(taskId, rows);
        _rollToFinalize(taskId);
        tasks.finalize(taskId);
    }

    /// @dev Three honest coordinators agreeing on absolute scores (65535 = the task's target improvement): solver 0
    ///      reached the target, solvers 1 and 2 got 60% and 40% of it. The whole solver pool is earned and split
    ///      5/3/2 (row weights exactly 0.5, 0.3, 0.2).
    function _agreeingRows() internal pure returns (uint16[][] memory rows) {
        rows = new uint16[][](3);
        rows[0] = _scores3(65_535, 39_321, 26_214);
        rows[1] = _scores3(65_535, 39_321, 26_214);
        rows[2] = _scores3(65_535, 39_321, 26_214);
    }
}
