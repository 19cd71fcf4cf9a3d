// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {ATNToken} from "../../contracts/ATNToken.sol";
import {ParticipantStaking} from "../../contracts/ParticipantStaking.sol";
import {Project} from "../../contracts/Project.sol";
import {ModelShardRegistry} from "../../contracts/ModelShardRegistry.sol";
import {BlsSignerRegistry} from "../../contracts/BlsSignerRegistry.sol";
import {ShardProviders} from "../../contracts/ShardProviders.sol";
import {Role} from "../../contracts/interfaces/IParticipantStaking.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";
import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {IModelShardRegistry} from "../../contracts/interfaces/IModelShardRegistry.sol";

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

/// @notice Deploys the real token, staking and project contracts around the model registry, the BLS signer
///         registry and the shard providers (rewards mocked).
abstract contract ShardFixture is Test {
    ATNToken internal token;
    ParticipantStaking internal staking;
    Project internal project;
    MockRewards internal rewards;
    BlsSignerRegistry internal signers;
    ModelShardRegistry internal reg;
    ShardProviders internal prov;

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
    mapping(bytes32 root => address) internal publisherOf;
    uint256 internal pid;

    function _deploy() internal {
        vm.roll(1000);
        vm.warp(1_000_000);
        token = new ATNToken(admin, admin, 100_000_000e18);
        staking = new ParticipantStaking(admin, token, treasury);
        project = new Project(admin, token);
        rewards = new MockRewards();
        signers = new BlsSignerRegistry(staking);
        reg = new ModelShardRegistry(admin, staking, project, IRewards(address(rewards)), signers);
        prov = new ShardProviders(admin, staking, reg, token);
        vm.startPrank(admin);
        staking.grantRole(staking.SLASHER_ROLE(), address(reg));
        staking.grantRole(staking.SLASHER_ROLE(), address(prov));
        staking.setStakeObserver(signers);
        staking.addStakeLocker(prov); // as DeployLib wires it
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

    /// @dev Attests what `_publish` published (the fixture's manifest hash, `publisherOf` or the aggregator),
    ///      without a call before the attestation (so that `vm.expectRevert` applies to it).
    function _attest(address who, bytes32 root) internal {
        address publisher = publisherOf[root] == address(0) ? agg : publisherOf[root];
        vm.prank(who);
        reg.attestModel(root, keccak256(abi.encode("manifest", root)), publisher);
    }
}

