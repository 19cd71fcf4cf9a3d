// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {ATNToken} from "../contracts/ATNToken.sol";
import {ParticipantStaking} from "../contracts/ParticipantStaking.sol";
import {Project} from "../contracts/Project.sol";
import {ModelShardRegistry} from "../contracts/ModelShardRegistry.sol";
import {IParticipantStaking, Role} from "../contracts/interfaces/IParticipantStaking.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";
import {IRewards} from "../contracts/interfaces/IRewards.sol";
import {
    IModelShardRegistry,
    ModelStatus,
    ChallengeStatus
} from "../contracts/interfaces/IModelShardRegistry.sol";

/// @notice Shard Merkle trees exactly as agents build them (rs_merkle with a sorted-pair keccak hasher):
///         leaf = keccak256(abi.encode(index, shardHash)), pairs hashed sorted, a lone last node promoted.
library ShardMerkle {
    function leaf(uint256 index, bytes32 shardHash) internal pure returns (bytes32) {
        return keccak256(abi.encode(index, shardHash));
    }

    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    function shardHashes(uint256 n, uint256 seed) internal pure returns (bytes32[] memory hashes) {
        hashes = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            hashes[i] = keccak256(abi.encode("shard", seed, i));
        }
    }

    function leaves(bytes32[] memory hashes) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](hashes.length);
        for (uint256 i; i < hashes.length; ++i) {
            out[i] = leaf(i, hashes[i]);
        }
    }

    function _next(bytes32[] memory level) private pure returns (bytes32[] memory up) {
        uint256 n = level.length;
        up = new bytes32[]((n + 1) / 2);
        for (uint256 i; i < n; i += 2) {
            up[i / 2] = i + 1 < n ? hashPair(level[i], level[i + 1]) : level[i];
        }
    }

    function root(bytes32[] memory hashes) internal pure returns (bytes32) {
        bytes32[] memory level = leaves(hashes);
        while (level.length > 1) {
            level = _next(level);
        }
        return level[0];
    }

    function proof(bytes32[] memory hashes, uint256 index) internal pure returns (bytes32[] memory p) {
        bytes32[] memory level = leaves(hashes);
        bytes32[] memory tmp = new bytes32[](256);
        uint256 len;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) tmp[len++] = level[sibling];
            level = _next(level);
            index >>= 1;
        }
        p = new bytes32[](len);
        for (uint256 i; i < len; ++i) {
            p[i] = tmp[i];
        }
    }
}

/// @notice Stand-in for Rewards.payAggregatorFee: records calls, pays a fixed fee, reverts for one task id,
///         or burns all gas when asked.
contract MockRewards {
    uint256 public constant FEE = 7e18;
    uint256 public revertTask = type(uint256).max;
    bool public burnGas;
    mapping(uint256 taskId => address) public paidTo;
    uint256 public calls;

    error RewardsTaskProjectMismatch(uint256 taskId, uint256 projectId, uint256 taskProjectId);

    function setRevertTask(uint256 taskId) external {
        revertTask = taskId;
    }

    function setBurnGas(bool on) external {
        burnGas = on;
    }

    function payAggregatorFee(uint256 projectId, uint256 taskId, address aggregator)
        external
        returns (uint256)
    {
        if (burnGas) {
            while (true) {}
        }
        if (taskId == revertTask) revert RewardsTaskProjectMismatch(taskId, projectId, projectId + 1);
        ++calls;
        if (paidTo[taskId] != address(0)) return 0;
        paidTo[taskId] = aggregator;
        return FEE;
    }
}

/// @notice Deploys the real token, staking and project contracts around a registry.
abstract contract ShardFixture is Test {
    ATNToken internal token;
    ParticipantStaking internal staking;
    Project internal project;
    MockRewards internal rewards;
    ModelShardRegistry internal reg;

    address internal admin = makeAddr("admin");
    address internal treasury = makeAddr("treasury");
    address internal owner = makeAddr("owner");
    address internal agg = makeAddr("aggregator");
    address internal agg2 = makeAddr("aggregator2");
    address internal c1 = makeAddr("coordinator1");
    address internal c2 = makeAddr("coordinator2");
    address internal c3 = makeAddr("coordinator3");
    address internal p1 = makeAddr("provider1");
    address internal p2 = makeAddr("provider2");
    address internal stranger = makeAddr("stranger");

    bytes32 internal constant GENESIS = keccak256("genesis model");
    uint256 internal pid;

    function _deploy() internal {
        vm.roll(1000);
        vm.warp(1_000_000);
        token = new ATNToken(admin, admin, 100_000_000e18);
        staking = new ParticipantStaking(admin, token, treasury);
        project = new Project(admin, token);
        rewards = new MockRewards();
        reg = new ModelShardRegistry(admin, staking, project, IRewards(address(rewards)));
        vm.startPrank(admin);
        staking.grantRole(staking.SLASHER_ROLE(), address(reg));
        project.grantRole(project.MODEL_PUBLISHER_ROLE(), address(reg));
        vm.stopPrank();
        pid = _createProject(GENESIS);
    }

    function _createProject(bytes32 initialRoot) internal returns (uint256) {
        IProject.CreateProjectParams memory p;
        p.modelSpecHash = keccak256("spec");
        p.modelURI = "ipfs://spec";
        p.datasetRoot = keccak256("data");
        p.initialModelRoot = initialRoot;
        p.inferencePrice = 1e18;
        p.split = IProject.RewardSplit({
            solverBps: 6000, coordinatorBps: 2000, proposerBps: 1000, aggregatorBps: 1000
        });
        p.windows = IProject.Windows({
            commit: 10, gtReveal: 10, solReveal: 10, voteCommit: 10, voteReveal: 10, publish: 50
        });
        p.maxSolvers = 4;
        p.minVotes = 1;
        vm.prank(owner);
        return project.createProject(p);
    }

    function _stake(address who, Role role, uint256 amount) internal {
        vm.prank(admin);
        assertTrue(token.transfer(who, amount));
        vm.startPrank(who);
        token.approve(address(staking), amount);
        staking.stake(role, amount);
        vm.stopPrank();
    }

    function _manifest(bytes32 root, bytes32 parent, uint8 k, uint8 m)
        internal
        view
        returns (IModelShardRegistry.ModelManifest memory mf)
    {
        mf = IModelShardRegistry.ModelManifest({
            projectId: pid,
            root: root,
            manifestHash: keccak256(abi.encode("manifest", root)),
            parentRoot: parent,
            totalSize: uint64(k) * 1000 - 1,
            shardSize: 1000,
            dataShards: k,
            parityShards: m
        });
    }

    function _ids(uint256 a) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](1);
        ids[0] = a;
    }

    function _publish(bytes32 root, bytes32 parent, uint8 k, uint8 m, uint256[] memory taskIds) internal {
        vm.prank(agg);
        reg.publishModel(_manifest(root, parent, k, m), taskIds);
    }

    function _attest(address who, bytes32 root) internal {
        vm.prank(who);
        reg.attestModel(root);
    }
}

contract ModelShardRegistryTest is ShardFixture {
    bytes32[] internal hashes; // 14 shards: k = 10, m = 4
    bytes32 internal root14;

    function setUp() public {
        _deploy();
        _stake(agg, Role.Aggregator, 1000e18);
        _stake(agg2, Role.Aggregator, 1000e18);
        _stake(c1, Role.Coordinator, 500e18);
        _stake(c2, Role.Coordinator, 500e18);
        _stake(c3, Role.Coordinator, 500e18);
        _stake(p1, Role.Solver, 50e18);
        _stake(p2, Role.Solver, 50e18);
        hashes = ShardMerkle.shardHashes(14, 1);
        root14 = ShardMerkle.root(hashes);
    }

    // ------------------------------------------------------------------ helpers

    function _publish14() internal {
        _publish(root14, GENESIS, 10, 4, _ids(1));
    }

    function _register(address who) internal {
        vm.prank(who);
        reg.registerProvider("https://node.example/shards");
    }

    function _announce(address who, bytes32 root, uint256 bitmap) internal {
        vm.prank(who);
        reg.announceShards(root, bitmap);
    }

    function _openChallenge(address provider) internal returns (uint256 id) {
        vm.prank(c1);
        id = reg.challenge(root14, provider);
    }

    // ------------------------------------------------------------------ constructor / admin

    function test_constructor_setsDependenciesAndDefaults() public view {
        assertEq(address(reg.staking()), address(staking));
        assertEq(address(reg.projects()), address(project));
        assertEq(address(reg.rewards()), address(rewards));
        assertTrue(reg.hasRole(reg.DEFAULT_ADMIN_ROLE(), admin));
        assertEq(reg.challengeWindow(), 100);
        assertEq(reg.challengeSlash(), 10e18);
        assertEq(reg.challengeCount(), 0);
    }

    function test_setChallengeWindow_updates() public {
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ChallengeWindowUpdated(42);
        vm.prank(admin);
        reg.setChallengeWindow(42);
        assertEq(reg.challengeWindow(), 42);
    }

    function test_setChallengeSlash_updates() public {
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ChallengeSlashUpdated(3e18);
        vm.prank(admin);
        reg.setChallengeSlash(3e18);
        assertEq(reg.challengeSlash(), 3e18);
    }

    function test_RevertWhen_setChallengeWindowOutOfRange() public {
        vm.startPrank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidWindow.selector, 0)
        );
        reg.setChallengeWindow(0);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidWindow.selector, 1_000_001)
        );
        reg.setChallengeWindow(1_000_001);
        vm.stopPrank();
    }

    function test_RevertWhen_adminSetterCalledByStranger() public {
        bytes32 role = reg.DEFAULT_ADMIN_ROLE();
        vm.startPrank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        reg.setChallengeWindow(10);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        reg.setChallengeSlash(1);
        vm.stopPrank();
    }

    function testFuzz_setChallengeWindow_acceptsOnlyBoundedWindows(uint64 window) public {
        vm.prank(admin);
        if (window == 0 || window > 1_000_000) {
            vm.expectRevert(
                abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidWindow.selector, window)
            );
            reg.setChallengeWindow(window);
            assertEq(reg.challengeWindow(), 100);
        } else {
            reg.setChallengeWindow(window);
            assertEq(reg.challengeWindow(), window);
        }
    }

    // ------------------------------------------------------------------ publish

    function test_publishModel_storesPendingModel() public {
        uint256[] memory ids = new uint256[](2);
        ids[0] = 11;
        ids[1] = 12;
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, GENESIS, 10, 4);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelPublished(pid, root14, agg, GENESIS, mf.manifestHash, ids);
        vm.prank(agg);
        reg.publishModel(mf, ids);

        IModelShardRegistry.Model memory m = reg.getModel(root14);
        assertEq(uint8(m.status), uint8(ModelStatus.Pending));
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Pending));
        assertEq(m.publisher, agg);
        assertEq(m.publishedBlock, block.number);
        assertEq(m.attestedStake, 0);
        assertEq(m.manifest.projectId, pid);
        assertEq(m.manifest.root, root14);
        assertEq(m.manifest.manifestHash, mf.manifestHash);
        assertEq(m.manifest.parentRoot, GENESIS);
        assertEq(m.manifest.totalSize, 9999);
        assertEq(m.manifest.shardSize, 1000);
        assertEq(m.manifest.dataShards, 10);
        assertEq(m.manifest.parityShards, 4);
        assertEq(m.taskIds, ids);
        assertEq(reg.modelCount(pid), 0);
        assertEq(reg.latestAccepted(pid), bytes32(0));
    }

    function test_publishModel_packsSixteenTaskIds() public {
        uint256[] memory ids = new uint256[](16);
        for (uint256 j; j < 16; ++j) {
            ids[j] = j == 15 ? type(uint64).max : (j + 1) * 1_000_003;
        }
        _publish(root14, GENESIS, 10, 4, ids);
        assertEq(reg.getModel(root14).taskIds, ids);
        assertEq(reg.getModel(root14).manifest.projectId, pid);
    }

    function test_publishModel_acceptsNoTasks() public {
        _publish(root14, GENESIS, 10, 4, new uint256[](0));
        assertEq(reg.getModel(root14).taskIds.length, 0);
        assertEq(reg.getModel(root14).manifest.projectId, pid);
    }

    function test_getModel_returnsEmptyForUnknownRoot() public view {
        IModelShardRegistry.Model memory m = reg.getModel(root14);
        assertEq(uint8(m.status), uint8(ModelStatus.None));
        assertEq(m.publisher, address(0));
        assertEq(m.manifest.root, bytes32(0));
    }

    function test_RevertWhen_publisherNotAggregator() public {
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, GENESIS, 10, 4);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotAggregator.selector, c1)
        );
        vm.prank(c1);
        reg.publishModel(mf, _ids(1));
    }

    function test_RevertWhen_publishZeroRoot() public {
        IModelShardRegistry.ModelManifest memory mf = _manifest(bytes32(0), GENESIS, 10, 4);
        vm.expectRevert(IModelShardRegistry.ModelShardRegistryZeroRoot.selector);
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));
    }

    function test_RevertWhen_publishRootExists() public {
        _publish14();
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, GENESIS, 10, 4);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryRootExists.selector, root14)
        );
        vm.prank(agg2);
        reg.publishModel(mf, _ids(1));

        // a model cannot be its own parent either
        mf = _manifest(GENESIS, GENESIS, 10, 4);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryRootExists.selector, GENESIS)
        );
        vm.prank(agg2);
        reg.publishModel(mf, _ids(1));
    }

    function test_RevertWhen_publishInvalidShardCounts() public {
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, GENESIS, 10, 4);
        mf.dataShards = 0;
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidShardCounts.selector, 0, 4)
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));

        mf = _manifest(root14, GENESIS, 200, 57);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidShardCounts.selector, 200, 57)
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));
    }

    function test_RevertWhen_publishInvalidSizes() public {
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, GENESIS, 10, 4);
        mf.totalSize = 10_001; // 10 * 1000 < 10001
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryInvalidSizes.selector, 10_001, 1000, 10
            )
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));

        mf.totalSize = 0;
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidSizes.selector, 0, 1000, 10)
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));

        mf.totalSize = 5;
        mf.shardSize = 0;
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidSizes.selector, 5, 0, 10)
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));
    }

    function test_RevertWhen_publishTooManyTasks() public {
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, GENESIS, 10, 4);
        uint256[] memory ids = new uint256[](17);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryTooManyTasks.selector, 17, 16)
        );
        vm.prank(agg);
        reg.publishModel(mf, ids);
    }

    function test_RevertWhen_publishIdTooLarge() public {
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, GENESIS, 10, 4);
        uint256 big = uint256(type(uint64).max) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryIdTooLarge.selector, big)
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(big));

        mf.projectId = big;
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryIdTooLarge.selector, big)
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));
    }

    function test_RevertWhen_publishUnknownProject() public {
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, bytes32(0), 10, 4);
        mf.projectId = 99;
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryUnknownProject.selector, 99)
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));
    }

    function test_RevertWhen_publishParentMismatch() public {
        bytes32 wrong = keccak256("not the current model");
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, wrong, 10, 4);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryParentMismatch.selector, GENESIS, wrong
            )
        );
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));
    }

    function testFuzz_publishModel_enforcesShapeRules(uint8 k, uint8 m, uint64 totalSize, uint32 shardSize)
        public
    {
        IModelShardRegistry.ModelManifest memory mf = _manifest(root14, GENESIS, 1, 0);
        mf.dataShards = k;
        mf.parityShards = m;
        mf.totalSize = totalSize;
        mf.shardSize = shardSize;
        bool badCounts = k == 0 || uint256(k) + m > 256;
        bool badSizes = totalSize == 0 || shardSize == 0 || uint256(shardSize) * k < totalSize;
        if (badCounts) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IModelShardRegistry.ModelShardRegistryInvalidShardCounts.selector, k, m
                )
            );
        } else if (badSizes) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IModelShardRegistry.ModelShardRegistryInvalidSizes.selector, totalSize, shardSize, k
                )
            );
        }
        vm.prank(agg);
        reg.publishModel(mf, _ids(1));
        assertEq(
            uint8(reg.modelStatus(root14)),
            uint8(badCounts || badSizes ? ModelStatus.None : ModelStatus.Pending)
        );
    }

    // ------------------------------------------------------------------ attest / accept

    function test_attestModel_accumulatesBelowThreshold() public {
        _publish14();
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelAttested(root14, c1, 500e18, 500e18);
        _attest(c1, root14);
        IModelShardRegistry.Model memory m = reg.getModel(root14);
        assertEq(uint8(m.status), uint8(ModelStatus.Pending));
        assertEq(m.attestedStake, 500e18);
        assertTrue(reg.hasAttested(root14, c1));
        assertFalse(reg.hasAttested(root14, c2));
        assertEq(project.modelRoot(pid), GENESIS);
        assertEq(rewards.calls(), 0);
    }

    function test_attestModel_acceptsAtTwoThirds() public {
        uint256[] memory ids = new uint256[](2);
        ids[0] = 5;
        ids[1] = 6;
        _publish(root14, GENESIS, 10, 4, ids);
        _attest(c1, root14);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelAttested(root14, c2, 500e18, 1000e18);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelAccepted(pid, root14, GENESIS, 1);
        _attest(c2, root14); // 1000 * 3 >= 1500 * 2

        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Accepted));
        assertEq(project.modelRoot(pid), root14);
        assertEq(reg.latestAccepted(pid), root14);
        assertEq(reg.modelCount(pid), 1);
        assertEq(rewards.paidTo(5), agg);
        assertEq(rewards.paidTo(6), agg);
        assertEq(rewards.calls(), 2);
    }

    function test_attestModel_buildsAChainOfModels() public {
        _publish14();
        _attest(c1, root14);
        _attest(c2, root14);
        bytes32 next = keccak256("model v2");
        _publish(next, root14, 10, 4, _ids(2));
        _attest(c3, next);
        _attest(c1, next);
        assertEq(uint8(reg.modelStatus(next)), uint8(ModelStatus.Accepted));
        assertEq(project.modelRoot(pid), next);
        assertEq(reg.latestAccepted(pid), next);
        assertEq(reg.modelCount(pid), 2);
    }

    function test_attestModel_supersededWhenParentMoved() public {
        bytes32 rival = keccak256("rival model");
        _publish14();
        vm.prank(agg2);
        reg.publishModel(_manifest(rival, GENESIS, 10, 4), _ids(1));
        _attest(c1, rival);
        _attest(c1, root14);
        _attest(c2, root14); // root14 accepted, rival's parent is gone

        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelSuperseded(pid, rival, root14);
        _attest(c2, rival);
        assertEq(uint8(reg.modelStatus(rival)), uint8(ModelStatus.Superseded));
        assertTrue(reg.hasAttested(rival, c2));
        assertEq(reg.getModel(rival).attestedStake, 1000e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryModelNotPending.selector, rival, ModelStatus.Superseded
            )
        );
        _attest(c3, rival);
        assertEq(project.modelRoot(pid), root14);
        assertEq(reg.modelCount(pid), 1);
        assertEq(rewards.paidTo(1), agg); // the rival's publisher got nothing
    }

    function test_attestModel_feeFailureDoesNotBlockAcceptance() public {
        uint256[] memory ids = new uint256[](2);
        ids[0] = 5;
        ids[1] = 6;
        _publish(root14, GENESIS, 10, 4, ids);
        rewards.setRevertTask(5);
        _attest(c1, root14);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.AggregatorFeeFailed(
            root14,
            5,
            abi.encodeWithSelector(MockRewards.RewardsTaskProjectMismatch.selector, 5, pid, pid + 1)
        );
        _attest(c2, root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Accepted));
        assertEq(rewards.paidTo(5), address(0));
        assertEq(rewards.paidTo(6), agg);
    }

    function test_RevertWhen_attestFeeCallStarved() public {
        _publish14();
        _attest(c1, root14);
        rewards.setBurnGas(true);
        vm.expectRevert(IModelShardRegistry.ModelShardRegistryInsufficientGas.selector);
        vm.prank(c2);
        reg.attestModel{gas: 1_000_000}(root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Pending));
        assertEq(project.modelRoot(pid), GENESIS);
    }

    function test_RevertWhen_attestNotCoordinator() public {
        _publish14();
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotCoordinator.selector, agg)
        );
        _attest(agg, root14);
    }

    function test_RevertWhen_attestUnknownModel() public {
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryUnknownModel.selector, root14)
        );
        _attest(c1, root14);
    }

    function test_RevertWhen_attestTwice() public {
        _publish14();
        _attest(c1, root14);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryAlreadyAttested.selector, root14, c1)
        );
        _attest(c1, root14);
    }

    function test_RevertWhen_attestModelNotPending() public {
        _publish14();
        _attest(c1, root14);
        _attest(c2, root14);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryModelNotPending.selector, root14, ModelStatus.Accepted
            )
        );
        _attest(c3, root14);
    }

    function testFuzz_attestModel_acceptsExactlyAtTwoThirds(uint256 s1, uint256 s2, uint256 s3, uint8 signers)
        public
    {
        // fresh coordinators with arbitrary stakes (the three from setUp keep 1500 in the total)
        uint256[3] memory stakes = [bound(s1, 500e18, 1e25), bound(s2, 500e18, 1e25), bound(s3, 500e18, 1e25)];
        address[3] memory who = [makeAddr("f1"), makeAddr("f2"), makeAddr("f3")];
        for (uint256 i; i < 3; ++i) {
            _stake(who[i], Role.Coordinator, stakes[i]);
        }
        uint256 total = staking.totalStake(Role.Coordinator);
        _publish14();
        uint256 n = bound(signers, 1, 3);
        uint256 attested;
        for (uint256 i; i < n; ++i) {
            if (reg.modelStatus(root14) != ModelStatus.Pending) break;
            _attest(who[i], root14);
            attested += stakes[i];
            bool reached = attested * 3 >= total * 2;
            assertEq(
                uint8(reg.modelStatus(root14)), uint8(reached ? ModelStatus.Accepted : ModelStatus.Pending)
            );
            assertEq(project.modelRoot(pid), reached ? root14 : GENESIS);
        }
        assertEq(reg.getModel(root14).attestedStake, attested);
    }

    // ------------------------------------------------------------------ shard proofs

    function _checkTree(uint256 n) internal {
        bytes32[] memory h = ShardMerkle.shardHashes(n, 100 + n);
        bytes32 root = ShardMerkle.root(h);
        // k + m = n, with at least one parity shard when possible
        uint8 k = uint8(n > 1 ? n - 1 : 1);
        uint8 m = uint8(n - k);
        vm.prank(agg);
        IModelShardRegistry.ModelManifest memory mf = _manifest(root, GENESIS, k, m);
        reg.publishModel(mf, _ids(1));
        for (uint256 i; i < n; ++i) {
            bytes32[] memory proof = ShardMerkle.proof(h, i);
            assertTrue(reg.verifyShard(root, i, h[i], proof), "valid shard rejected");
            assertFalse(reg.verifyShard(root, i, keccak256("wrong"), proof), "wrong hash accepted");
            assertFalse(reg.verifyShard(keccak256("wrong root"), i, h[i], proof), "unknown root accepted");
            if (n > 1) {
                uint256 other = (i + 1) % n;
                assertFalse(reg.verifyShard(root, other, h[i], proof), "wrong index accepted");
            }
            assertFalse(reg.verifyShard(root, i + n, h[i], proof), "out-of-range index accepted");
        }
    }

    function test_verifyShard_oneLeaf() public {
        _checkTree(1);
    }

    function test_verifyShard_twoLeaves() public {
        _checkTree(2);
    }

    function test_verifyShard_threeLeavesPromotesLoneNode() public {
        _checkTree(3);
        // the lone third leaf is promoted: its proof is the single hash of the first pair
        bytes32[] memory h = ShardMerkle.shardHashes(3, 103);
        bytes32[] memory p = ShardMerkle.proof(h, 2);
        assertEq(p.length, 1);
        assertEq(p[0], ShardMerkle.hashPair(ShardMerkle.leaf(0, h[0]), ShardMerkle.leaf(1, h[1])));
    }

    function test_verifyShard_fiveLeaves() public {
        _checkTree(5);
    }

    function test_verifyShard_fourteenLeaves() public {
        _checkTree(14);
    }

    function test_verifyShard_rejectsIndexBeyondShardCount() public {
        // a 5-leaf tree published as k + m = 4: leaf 4 has a valid Merkle proof but no valid index
        bytes32[] memory h = ShardMerkle.shardHashes(5, 7);
        bytes32 root = ShardMerkle.root(h);
        vm.prank(agg);
        reg.publishModel(_manifest(root, GENESIS, 3, 1), _ids(1));
        bytes32[] memory proof = ShardMerkle.proof(h, 4);
        assertTrue(MerkleProof.verify(proof, root, ShardMerkle.leaf(4, h[4])));
        assertFalse(reg.verifyShard(root, 4, h[4], proof));
        assertTrue(reg.verifyShard(root, 3, h[3], ShardMerkle.proof(h, 3)));
    }

    function test_verifyShard_rejectsInnerNodeAsLeaf() public {
        _publish14();
        // inner node over leaves 0 and 1 = keccak256(abi.encode(lo, hi)): it parses as (index = lo, hash = hi)
        bytes32 l0 = ShardMerkle.leaf(0, hashes[0]);
        bytes32 l1 = ShardMerkle.leaf(1, hashes[1]);
        (bytes32 lo, bytes32 hi) = l0 < l1 ? (l0, l1) : (l1, l0);
        bytes32[] memory full = ShardMerkle.proof(hashes, 0);
        bytes32[] memory upper = new bytes32[](full.length - 1);
        for (uint256 i = 1; i < full.length; ++i) {
            upper[i - 1] = full[i];
        }
        // plain MerkleProof accepts the forgery ...
        assertTrue(MerkleProof.verify(upper, root14, ShardMerkle.leaf(uint256(lo), hi)));
        // ... the registry does not, because uint256(lo) >= k + m
        assertFalse(reg.verifyShard(root14, uint256(lo), hi, upper));
    }

    function testFuzz_verifyShard_acceptsExactlyTheTreeLeaves(
        uint256 n,
        uint256 index,
        uint256 seed,
        bytes32 junk
    ) public {
        n = bound(n, 1, 64);
        index = bound(index, 0, n - 1);
        bytes32[] memory h = ShardMerkle.shardHashes(n, seed);
        vm.assume(junk != h[index]);
        bytes32 root = ShardMerkle.root(h);
        vm.prank(agg);
        reg.publishModel(_manifest(root, GENESIS, uint8(n), 0), _ids(1));
        bytes32[] memory proof = ShardMerkle.proof(h, index);
        assertTrue(reg.verifyShard(root, index, h[index], proof));
        assertFalse(reg.verifyShard(root, index, junk, proof));
        if (n > 1) assertFalse(reg.verifyShard(root, (index + 1) % n, h[index], proof));
    }

    // ------------------------------------------------------------------ providers

    function test_registerProvider_storesEndpoint() public {
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ProviderRegistered(p1, "https://node.example/shards");
        _register(p1);
        assertEq(reg.endpointOf(p1), "https://node.example/shards");
        IModelShardRegistry.Provider memory p = reg.getProvider(p1);
        assertTrue(p.active);
        assertEq(p.rootsHeld, 0);
    }

    function test_RevertWhen_registerProviderNotStaked() public {
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotStaked.selector, stranger)
        );
        _register(stranger);
    }

    function test_RevertWhen_registerProviderTwice() public {
        _register(p1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryProviderExists.selector, p1)
        );
        _register(p1);
    }

    function test_RevertWhen_endpointInvalid() public {
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidEndpoint.selector, 0)
        );
        vm.prank(p1);
        reg.registerProvider("");
        string memory long = string(new bytes(257));
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidEndpoint.selector, 257)
        );
        vm.prank(p1);
        reg.registerProvider(long);
        _register(p1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidEndpoint.selector, 0)
        );
        vm.prank(p1);
        reg.updateEndpoint("");
    }

    function test_updateEndpoint_changesEndpoint() public {
        _register(p1);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ProviderEndpointUpdated(p1, "https://other.example");
        vm.prank(p1);
        reg.updateEndpoint("https://other.example");
        assertEq(reg.endpointOf(p1), "https://other.example");
    }

    function test_RevertWhen_updateEndpointNotProvider() public {
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotProvider.selector, p1)
        );
        vm.prank(p1);
        reg.updateEndpoint("https://x");
    }

    function test_deactivateProvider_thenRegisterAgain() public {
        _register(p1);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ProviderDeactivated(p1);
        vm.prank(p1);
        reg.deactivateProvider();
        assertFalse(reg.getProvider(p1).active);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotProvider.selector, p1)
        );
        vm.prank(p1);
        reg.deactivateProvider();
        _register(p1);
        assertTrue(reg.getProvider(p1).active);
    }

    function test_RevertWhen_deactivateProviderHoldingShards() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryProviderHoldsShards.selector, p1, 1)
        );
        vm.prank(p1);
        reg.deactivateProvider();
    }

    // ------------------------------------------------------------------ announce / withdraw

    function test_announceShards_tracksHoldersAndAvailability() public {
        _publish14();
        _register(p1);
        _register(p2);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ShardsAnnounced(root14, p1, 0x1ff, 0x1ff);
        _announce(p1, root14, 0x1ff); // shards 0..8
        (uint256 avail, bool ok) = reg.availability(root14);
        assertEq(avail, 9);
        assertFalse(ok);
        _announce(p2, root14, 0x300); // shards 8, 9
        (avail, ok) = reg.availability(root14);
        assertEq(avail, 10);
        assertTrue(ok);
        assertEq(reg.providersOf(root14, 8).length, 2);
        assertEq(reg.providersOf(root14, 9)[0], p2);
        assertEq(reg.shardsOf(root14, p1), 0x1ff);
        assertEq(reg.getProvider(p1).rootsHeld, 1);

        // re-announcing known bits changes nothing
        _announce(p1, root14, 0x3);
        assertEq(reg.providersOf(root14, 0).length, 1);
        assertEq(reg.shardsOf(root14, p1), 0x1ff);
    }

    function test_RevertWhen_announceInvalidBitmap() public {
        _publish14();
        _register(p1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidBitmap.selector, 0, 14)
        );
        _announce(p1, root14, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidBitmap.selector, 1 << 14, 14)
        );
        _announce(p1, root14, 1 << 14);
    }

    function test_announceShards_fullWidthModel() public {
        bytes32 wide = keccak256("wide");
        _publish(wide, GENESIS, 128, 128, _ids(1));
        _register(p1);
        _announce(p1, wide, type(uint256).max);
        (uint256 avail, bool ok) = reg.availability(wide);
        assertEq(avail, 256);
        assertTrue(ok);
        vm.prank(p1);
        reg.withdrawShards(wide, type(uint256).max);
        (avail, ok) = reg.availability(wide);
        assertEq(avail, 0);
        assertFalse(ok);
    }

    function test_RevertWhen_announceUnknownModel() public {
        _register(p1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryUnknownModel.selector, root14)
        );
        _announce(p1, root14, 1);
    }

    function test_RevertWhen_announceNotProvider() public {
        _publish14();
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotProvider.selector, p1)
        );
        _announce(p1, root14, 1);
    }

    function test_RevertWhen_announceAfterStakeLeft() public {
        _publish14();
        _register(p1);
        vm.prank(p1);
        staking.requestUnbond(50e18);
        vm.expectRevert(abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotStaked.selector, p1));
        _announce(p1, root14, 1);
    }

    function test_RevertWhen_shardHoldersFull() public {
        _publish14();
        for (uint256 i; i < 16; ++i) {
            address who = makeAddr(string(abi.encode("holder", i)));
            _stake(who, Role.Solver, 50e18);
            _register(who);
            _announce(who, root14, 1 << 3);
        }
        _register(p1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryShardHoldersFull.selector, 3)
        );
        _announce(p1, root14, (1 << 3) | 1);
        assertEq(reg.providersOf(root14, 3).length, 16);
        assertEq(reg.shardsOf(root14, p1), 0);
    }

    function test_withdrawShards_updatesAvailability() public {
        _publish14();
        _register(p1);
        _register(p2);
        _announce(p1, root14, 0x7);
        _announce(p2, root14, 0x6);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ShardsWithdrawn(root14, p1, 0x3, 0x4);
        vm.prank(p1);
        reg.withdrawShards(root14, 0x3);
        (uint256 avail,) = reg.availability(root14);
        assertEq(avail, 2); // shard 0 lost, shard 1 still held by p2, shard 2 by both
        assertEq(reg.providersOf(root14, 0).length, 0);
        assertEq(reg.providersOf(root14, 1)[0], p2);
        vm.prank(p1);
        reg.withdrawShards(root14, 0x4);
        assertEq(reg.getProvider(p1).rootsHeld, 0);
        assertEq(reg.providersOf(root14, 2).length, 1);
        vm.prank(p1);
        reg.deactivateProvider();
    }

    function test_RevertWhen_withdrawShardsNotHeld() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryShardsNotHeld.selector, 0x2)
        );
        vm.prank(p1);
        reg.withdrawShards(root14, 0x3);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidBitmap.selector, 0, 14)
        );
        vm.prank(p1);
        reg.withdrawShards(root14, 0);
    }

    function test_RevertWhen_withdrawShardsDuringChallenge() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        uint256 id = _openChallenge(p1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryChallengeOpen.selector, id)
        );
        vm.prank(p1);
        reg.withdrawShards(root14, 0x1);
    }

    function testFuzz_announceShards_availabilityMatchesUnion(uint256 a, uint256 b, uint256 w, uint8 count)
        public
    {
        uint256 n = bound(count, 1, 256);
        bytes32 root = keccak256(abi.encode("fuzz", n));
        _publish(root, GENESIS, uint8(n > 1 ? n / 2 : 1), uint8(n > 1 ? n - n / 2 : 0), _ids(1));
        uint256 mask = n == 256 ? type(uint256).max : (uint256(1) << n) - 1;
        a &= mask;
        b &= mask;
        _register(p1);
        _register(p2);
        if (a != 0) _announce(p1, root, a);
        if (b != 0) _announce(p2, root, b);
        w &= a;
        if (w != 0) {
            vm.prank(p1);
            reg.withdrawShards(root, w);
        }
        uint256 union = (a & ~w) | b;
        uint256 expected;
        for (uint256 i; i < n; ++i) {
            uint256 holders = ((a & ~w) >> i & 1) + (b >> i & 1);
            assertEq(reg.providersOf(root, i).length, holders);
            if (holders != 0) ++expected;
        }
        (uint256 avail, bool ok) = reg.availability(root);
        assertEq(avail, expected);
        assertEq(ok, expected >= (n > 1 ? n / 2 : 1));
        assertEq(reg.shardsOf(root, p1) | reg.shardsOf(root, p2), union);
    }

    // ------------------------------------------------------------------ challenges

    function test_challenge_opensOnAnAnnouncedShard() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1 << 5);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ChallengeOpened(1, root14, p1, c1, 5, uint64(block.number + 100));
        uint256 id = _openChallenge(p1);
        assertEq(id, 1);
        assertEq(reg.challengeCount(), 1);
        assertEq(reg.openChallengeOf(root14, p1), 1);
        IModelShardRegistry.Challenge memory c = reg.getChallenge(id);
        assertEq(c.root, root14);
        assertEq(c.provider, p1);
        assertEq(c.challenger, c1);
        assertEq(c.index, 5);
        assertEq(c.deadline, block.number + 100);
        assertEq(uint8(c.status), uint8(ChallengeStatus.Open));
    }

    function test_respondChallenge_passesWithValidProof() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x3fff);
        uint256 id = _openChallenge(p1);
        uint256 index = reg.getChallenge(id).index;
        assertLt(index, 14);
        vm.roll(block.number + 100); // the last block of the window still counts
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ChallengePassed(id, p1, hashes[index]);
        vm.prank(p1);
        reg.respondChallenge(id, hashes[index], ShardMerkle.proof(hashes, index));
        assertEq(uint8(reg.getChallenge(id).status), uint8(ChallengeStatus.Passed));
        assertEq(reg.openChallengeOf(root14, p1), 0);
        assertEq(reg.getProvider(p1).successes, 1);
        // a new challenge can be opened after the previous one closed
        assertEq(_openChallenge(p1), id + 1);
    }

    function test_RevertWhen_challengeByUnstakedCaller() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotStaked.selector, stranger)
        );
        vm.prank(stranger);
        reg.challenge(root14, p1);
    }

    function test_RevertWhen_challengeNothingAnnounced() public {
        _publish14();
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryNothingToChallenge.selector, root14, p1
            )
        );
        vm.prank(c1);
        reg.challenge(root14, p1);
    }

    function test_RevertWhen_challengeAlreadyOpen() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1);
        uint256 id = _openChallenge(p1);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryChallengeOpen.selector, id)
        );
        vm.prank(c2);
        reg.challenge(root14, p1);
    }

    function test_RevertWhen_respondChallengeInvalid() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1 << 2);
        uint256 id = _openChallenge(p1);
        bytes32[] memory proof = ShardMerkle.proof(hashes, 2);

        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotChallenged.selector, id, p2)
        );
        vm.prank(p2);
        reg.respondChallenge(id, hashes[2], proof);

        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidProof.selector, id)
        );
        vm.prank(p1);
        reg.respondChallenge(id, hashes[3], proof);

        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryChallengeNotOpen.selector, id + 1, ChallengeStatus.None
            )
        );
        vm.prank(p1);
        reg.respondChallenge(id + 1, hashes[2], proof);

        vm.roll(block.number + 101);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryChallengeExpired.selector, id, uint64(block.number - 1)
            )
        );
        vm.prank(p1);
        reg.respondChallenge(id, hashes[2], proof);
    }

    function test_expireChallenge_removesShardsAndSlashes() public {
        _publish14();
        _register(p1);
        _register(p2);
        _announce(p1, root14, 0x3);
        _announce(p2, root14, 0x2);
        uint256 id = _openChallenge(p1);
        vm.roll(block.number + 101);
        uint256 treasuryBefore = token.balanceOf(treasury);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ShardsWithdrawn(root14, p1, 0x3, 0);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ChallengeFailed(id, p1, root14, 10e18);
        vm.prank(stranger);
        reg.expireChallenge(id);

        assertEq(uint8(reg.getChallenge(id).status), uint8(ChallengeStatus.Failed));
        assertEq(reg.openChallengeOf(root14, p1), 0);
        assertEq(reg.shardsOf(root14, p1), 0);
        (uint256 avail,) = reg.availability(root14);
        assertEq(avail, 1);
        IModelShardRegistry.Provider memory p = reg.getProvider(p1);
        assertEq(p.failures, 1);
        assertEq(p.rootsHeld, 0);
        assertEq(staking.stakeOf(p1), 40e18);
        assertEq(token.balanceOf(treasury) - treasuryBefore, 10e18);
    }

    function test_expireChallenge_neverRevertsOnSlash() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        uint256 id = _openChallenge(p1);
        // the provider unbonds everything and the registry loses its slasher role: still closes
        vm.prank(p1);
        staking.requestUnbond(50e18);
        vm.startPrank(admin);
        staking.revokeRole(staking.SLASHER_ROLE(), address(reg));
        vm.stopPrank();
        vm.roll(block.number + 101);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ChallengeFailed(id, p1, root14, 0);
        reg.expireChallenge(id);
        assertEq(reg.getProvider(p1).failures, 1);
        assertEq(reg.shardsOf(root14, p1), 0);
    }

    function test_expireChallenge_zeroSlashSkipsStaking() public {
        vm.prank(admin);
        reg.setChallengeSlash(0);
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        uint256 id = _openChallenge(p1);
        vm.roll(block.number + 101);
        reg.expireChallenge(id);
        assertEq(staking.stakeOf(p1), 50e18);
        assertEq(reg.getProvider(p1).failures, 1);
    }

    function test_RevertWhen_expireChallengeEarlyOrClosed() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        uint256 id = _openChallenge(p1);
        uint64 deadline = reg.getChallenge(id).deadline;
        vm.roll(deadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryChallengeNotExpired.selector, id, deadline
            )
        );
        reg.expireChallenge(id);
        vm.prank(p1);
        reg.respondChallenge(id, hashes[0], ShardMerkle.proof(hashes, 0));
        vm.roll(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryChallengeNotOpen.selector, id, ChallengeStatus.Passed
            )
        );
        reg.expireChallenge(id);
    }

    function testFuzz_challenge_picksAnAnnouncedShard(uint256 bitmap, uint256 blockNum) public {
        bitmap &= 0x3fff;
        vm.assume(bitmap != 0);
        vm.roll(bound(blockNum, 1000, 1e9));
        _publish14();
        _register(p1);
        _announce(p1, root14, bitmap);
        uint256 id = _openChallenge(p1);
        uint256 index = reg.getChallenge(id).index;
        assertEq((bitmap >> index) & 1, 1);
        vm.prank(p1);
        reg.respondChallenge(id, hashes[index], ShardMerkle.proof(hashes, index));
        assertEq(reg.getProvider(p1).successes, 1);
    }

    // ------------------------------------------------------------------ gas (measured, reported by --gas-report)

    function test_gas_publishAndAttestRound() public {
        uint256 g = gasleft();
        _publish14();
        uint256 publishGas = g - gasleft();
        g = gasleft();
        _attest(c1, root14);
        uint256 attestGas = g - gasleft();
        g = gasleft();
        _attest(c2, root14);
        uint256 acceptGas = g - gasleft();
        emit log_named_uint("publish (1 task) gas", publishGas);
        emit log_named_uint("attest gas", attestGas);
        emit log_named_uint("accepting attest gas", acceptGas);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Accepted));
    }
}
