// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {ModelShardRegistry} from "../contracts/ModelShardRegistry.sol";
import {BlsSignerRegistry} from "../contracts/BlsSignerRegistry.sol";
import {ParticipantStaking} from "../contracts/ParticipantStaking.sol";
import {Project} from "../contracts/Project.sol";
import {IBlsSignerRegistry} from "../contracts/interfaces/IBlsSignerRegistry.sol";
import {Role} from "../contracts/interfaces/IParticipantStaking.sol";
import {IRewards} from "../contracts/interfaces/IRewards.sol";
import {IModelShardRegistry, ModelStatus} from "../contracts/interfaces/IModelShardRegistry.sol";
import {ShardFixture, ShardMerkle, MockRewards} from "./utils/ShardFixture.sol";

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

    // ------------------------------------------------------------------ constructor / admin

    function test_constructor_setsDependenciesAndDefaults() public view {
        assertEq(address(reg.staking()), address(staking));
        assertEq(address(reg.projects()), address(project));
        assertEq(address(reg.rewards()), address(rewards));
        assertEq(address(reg.blsSigners()), address(signers));
        assertTrue(reg.hasRole(reg.DEFAULT_ADMIN_ROLE(), admin));
    }

    /// @dev I-6. Fails on dc0035f: the constructor took any address, so a deployment could wire nothing.
    function test_I6_constructorRefusesZeroAddresses() public {
        IRewards r = IRewards(address(rewards));
        vm.expectRevert(IModelShardRegistry.ModelShardRegistryZeroAddress.selector);
        new ModelShardRegistry(address(0), staking, project, r, signers);
        vm.expectRevert(IModelShardRegistry.ModelShardRegistryZeroAddress.selector);
        new ModelShardRegistry(admin, staking, project, r, BlsSignerRegistry(address(0)));
        vm.expectRevert(IModelShardRegistry.ModelShardRegistryZeroAddress.selector);
        new ModelShardRegistry(admin, staking, Project(address(0)), r, signers);
        vm.expectRevert(IBlsSignerRegistry.BlsSignerRegistryZeroAddress.selector);
        new BlsSignerRegistry(ParticipantStaking(address(0)));
    }

    function test_constructor_setsLifecycleDefaults() public view {
        assertEq(reg.modelExpiry(), 7200);
        assertEq(reg.publisherSlash(), 100e18);
        assertEq(reg.MAX_ATTESTERS(), 64);
    }

    function test_setModelExpiryAndPublisherSlash_updateByAdminOnly() public {
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelExpiryUpdated(50);
        vm.prank(admin);
        reg.setModelExpiry(50);
        assertEq(reg.modelExpiry(), 50);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.PublisherSlashUpdated(7e18);
        vm.prank(admin);
        reg.setPublisherSlash(7e18);
        assertEq(reg.publisherSlash(), 7e18);

        vm.startPrank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidExpiry.selector, 9)
        );
        reg.setModelExpiry(9);
        uint64 tooLong = uint64(type(uint24).max) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidExpiry.selector, tooLong)
        );
        reg.setModelExpiry(tooLong);
        vm.stopPrank();

        bytes32 role = reg.DEFAULT_ADMIN_ROLE();
        vm.startPrank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        reg.setModelExpiry(100);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        reg.setPublisherSlash(1);
        vm.stopPrank();
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
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryRootUsed.selector, GENESIS)
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
        publisherOf[rival] = agg2;
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
        bytes32 manifestHash = reg.getModel(root14).manifest.manifestHash;
        vm.expectRevert(IModelShardRegistry.ModelShardRegistryInsufficientGas.selector);
        vm.prank(c2);
        reg.attestModel{gas: 1_000_000}(root14, manifestHash, agg);
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

    // ------------------------------------------------------------------ review dc0035f: H-1

    /// @dev H-1. Fails on dc0035f: `a1` attests, unbonds everything (the total drops, its attestation stayed
    ///      counted), `a2` attests, and the model was Accepted with 48% of coordinator stake and no honest
    ///      attestation. Now every attester's stake is re-read: `a1` no longer counts.
    function test_H1_attestThenUnbondNoLongerCounts() public {
        address a1 = makeAddr("attacker1");
        address a2 = makeAddr("attacker2");
        _stake(a1, Role.Coordinator, 900e18);
        _stake(a2, Role.Coordinator, 500e18); // attacker 1400 of 2900 (48%), honest 1500
        _publish14();
        _attest(a1, root14);
        vm.prank(a1);
        staking.requestUnbond(900e18); // total 2000; on dc0035f the attestation still counted 900
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelAttested(root14, a2, 500e18, 500e18);
        _attest(a2, root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Pending));
        assertEq(reg.getModel(root14).attestedStake, 500e18);
        assertEq(project.modelRoot(pid), GENESIS);
        // Honest coordinators still decide: c1 and c2 bring 1000 + 500 = 1500 of 2000 >= 2/3.
        _attest(c1, root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Pending)); // 1000 * 3 < 2000 * 2
        _attest(c2, root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Accepted));
        assertEq(reg.getModel(root14).attestedStake, 1500e18);
    }

    /// @dev H-1. Fails on dc0035f (stake taken at attestation): a partial unbond lowers what the attester brings,
    ///      a top-up raises it, and an attester that left the Coordinator role brings nothing.
    function test_H1_attestedStakeIsTheStakeBondedAtAcceptance() public {
        _publish14();
        _attest(c1, root14);
        vm.prank(c1);
        staking.requestUnbond(400e18); // c1 keeps 100, below the 500 minimum: no longer active
        _attest(c2, root14);
        assertEq(reg.getModel(root14).attestedStake, 500e18);
        _stake(c1, Role.Coordinator, 900e18); // back to 1000 bonded and active: its attestation counts again
        _attest(c3, root14); // 1000 + 500 + 500 of 2000
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Accepted));
        assertEq(reg.getModel(root14).attestedStake, 2000e18);
    }

    /// @dev H-1: at most MAX_ATTESTERS coordinators attest one by one (each attestation re-reads them all).
    function test_RevertWhen_attestersFull() public {
        _stake(makeAddr("whale"), Role.Coordinator, 1_000_000e18); // nobody below reaches 2/3
        _publish14();
        for (uint256 i; i < 64; ++i) {
            address c = makeAddr(string(abi.encode("many", i)));
            _stake(c, Role.Coordinator, 500e18);
            _attest(c, root14);
        }
        assertEq(reg.attestersOf(root14).length, 64);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryAttestersFull.selector, root14, 64)
        );
        _attest(c1, root14);
    }

    // ------------------------------------------------------------------ review dc0035f: H-2

    /// @dev H-2. Fails on dc0035f: a squatter published the honest root with a bogus manifest first, honest
    ///      coordinators could not vouch for it, and the honest `publishModel` reverted `RootExists` forever. Now
    ///      attestations name the manifest and publisher, the squatted record expires, its publisher is slashed,
    ///      and the honest aggregator publishes the root again and is paid.
    function test_H2_bogusManifestSquatterExpiresIsSlashedAndTheRootIsPublishedAgain() public {
        IModelShardRegistry.ModelManifest memory bogus = _manifest(root14, GENESIS, 10, 4);
        bogus.manifestHash = keccak256("bogus manifest");
        vm.prank(agg2);
        reg.publishModel(bogus, new uint256[](0));
        uint256 expiresAt = reg.getModel(root14).expiresAt;
        assertEq(expiresAt, block.number + 7200);

        // The honest aggregator cannot publish while the squatted record is pending ...
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryRootExists.selector, root14)
        );
        _publish14();
        // ... and coordinators that checked the real manifest cannot be counted for the bogus one.
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryAttestationMismatch.selector,
                root14,
                bogus.manifestHash,
                agg2
            )
        );
        _attest(c1, root14);

        vm.roll(expiresAt + 1);
        uint256 before = staking.stakeOf(agg2);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelExpired(pid, root14, agg2, 100e18);
        _publish14(); // expires the squatted record, then publishes a new one
        assertEq(staking.stakeOf(agg2), before - 100e18);
        IModelShardRegistry.Model memory m = reg.getModel(root14);
        assertEq(m.publisher, agg);
        assertEq(m.manifest.manifestHash, keccak256(abi.encode("manifest", root14)));
        assertEq(uint8(m.status), uint8(ModelStatus.Pending));
        _attest(c1, root14);
        _attest(c2, root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Accepted));
        assertEq(rewards.paidTo(1), agg);
    }

    /// @dev H-2. Fails on dc0035f (no expiry, attestations keyed by root): attestations of an expired record do not
    ///      carry over to the record that replaces it, and the BLS message of the new record differs.
    function test_H2_attestationsOfAnExpiredRecordDoNotCarryOver() public {
        _publish14();
        _attest(c1, root14);
        bytes32 oldMessage = reg.blsAttestationMessage(root14);
        vm.roll(reg.getModel(root14).expiresAt + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryModelExpired.selector, root14, block.number - 1
            )
        );
        _attest(c2, root14);
        reg.expireModel(root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Expired));

        vm.prank(agg2);
        reg.publishModel(_manifest(root14, GENESIS, 10, 4), _ids(1));
        publisherOf[root14] = agg2;
        IModelShardRegistry.Model memory m = reg.getModel(root14);
        assertEq(m.attestedStake, 0);
        assertEq(reg.attestersOf(root14).length, 0);
        assertFalse(reg.hasAttested(root14, c1));
        assertTrue(reg.blsAttestationMessage(root14) != oldMessage);
        _attest(c2, root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Pending)); // c1's old attestation is gone
        _attest(c1, root14);
        assertEq(uint8(reg.modelStatus(root14)), uint8(ModelStatus.Accepted));
        assertEq(rewards.paidTo(1), agg2);
    }

    /// @dev H-2: a model that outlived its window after the project moved on is Superseded, and its publisher
    ///      is not slashed (it lost a race, it did not squat).
    function test_H2_expiredAfterTheProjectMovedOnIsSupersededWithoutSlash() public {
        bytes32 rival = keccak256("rival model");
        vm.prank(agg2);
        reg.publishModel(_manifest(rival, GENESIS, 10, 4), _ids(1));
        _publish14();
        _attest(c1, root14);
        _attest(c2, root14);
        vm.roll(reg.getModel(rival).expiresAt + 1);
        uint256 before = staking.stakeOf(agg2);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelSuperseded(pid, rival, root14);
        reg.expireModel(rival);
        assertEq(uint8(reg.modelStatus(rival)), uint8(ModelStatus.Superseded));
        assertEq(staking.stakeOf(agg2), before);
    }

    /// @dev H-2: attestations are refused for a manifest or a publisher other than the record's.
    function test_H2_attestationNamesManifestAndPublisher() public {
        _publish14();
        bytes32 real = keccak256(abi.encode("manifest", root14));
        vm.startPrank(c1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryAttestationMismatch.selector, root14, real, agg
            )
        );
        reg.attestModel(root14, keccak256("other"), agg);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryAttestationMismatch.selector, root14, real, agg
            )
        );
        reg.attestModel(root14, real, agg2);
        reg.attestModel(root14, real, agg);
        vm.stopPrank();
    }

    function test_expireModel_slashNeverBlocksAndZeroSlashSkipsIt() public {
        _publish14();
        vm.prank(agg);
        staking.requestUnbond(1000e18);
        vm.warp(block.timestamp + 30 days);
        vm.prank(agg);
        staking.withdrawUnbonded(); // nothing left to slash
        vm.roll(reg.getModel(root14).expiresAt + 1);
        vm.expectEmit(address(reg));
        emit IModelShardRegistry.ModelExpired(pid, root14, agg, 0);
        reg.expireModel(root14);

        vm.prank(admin);
        reg.setPublisherSlash(0);
        vm.prank(agg2);
        reg.publishModel(_manifest(root14, GENESIS, 10, 4), _ids(1));
        vm.roll(reg.getModel(root14).expiresAt + 1);
        reg.expireModel(root14);
        assertEq(staking.stakeOf(agg2), 1000e18);
    }

    function test_RevertWhen_expireModelEarlyOrNotPending() public {
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryUnknownModel.selector, root14)
        );
        reg.expireModel(root14);
        _publish14();
        uint256 expiresAt = reg.getModel(root14).expiresAt;
        vm.roll(expiresAt);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryModelNotExpired.selector, root14, expiresAt
            )
        );
        reg.expireModel(root14);
        _attest(c1, root14); // the last block of the window still counts
        _attest(c2, root14);
        vm.roll(expiresAt + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryModelNotPending.selector, root14, ModelStatus.Accepted
            )
        );
        reg.expireModel(root14);
    }

    function test_setModelExpiry_appliesToModelsPublishedAfterwards() public {
        _publish14();
        vm.prank(admin);
        reg.setModelExpiry(20);
        assertEq(reg.getModel(root14).expiresAt, block.number + 7200);
        bytes32 other = keccak256("other model");
        vm.prank(agg2);
        reg.publishModel(_manifest(other, GENESIS, 10, 4), _ids(2));
        assertEq(reg.getModel(other).expiresAt, block.number + 20);
    }

    // ------------------------------------------------------------------ review dc0035f: L-7

    /// @dev L-7. Fails on dc0035f: the genesis root had no record, so it could be published again on top of the
    ///      accepted model and the project's model could cycle back.
    function test_L7_genesisRootCannotBePublishedAgain() public {
        _publish14();
        _attest(c1, root14);
        _attest(c2, root14);
        assertTrue(reg.isRootUsed(GENESIS));
        assertTrue(reg.isRootUsed(root14));
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryRootUsed.selector, GENESIS)
        );
        _publish(GENESIS, root14, 10, 4, _ids(2));
    }

    /// @dev L-7. Fails on dc0035f (which answered `RootExists`, no used-root rule): an accepted root can never
    ///      come back, not even after later models.
    function test_L7_acceptedRootsNeverComeBack() public {
        _publish14();
        _attest(c1, root14);
        _attest(c2, root14);
        bytes32 next = keccak256("model v2");
        _publish(next, root14, 10, 4, _ids(2));
        _attest(c1, next);
        _attest(c2, next);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryRootUsed.selector, root14)
        );
        _publish(root14, next, 10, 4, _ids(3));
        assertFalse(reg.isRootUsed(keccak256("never published")));
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
