// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console2} from "forge-std/console2.sol";
import {Vm} from "forge-std/Vm.sol";
import {World} from "../utils/World.sol";
import {BN254} from "../../contracts/libraries/BN254.sol";
import {Role} from "../../contracts/interfaces/IParticipantStaking.sol";
import {IModelShardRegistry, ModelStatus} from "../../contracts/interfaces/IModelShardRegistry.sol";
import {IBlsSignerRegistry} from "../../contracts/interfaces/IBlsSignerRegistry.sol";
import {IShardProviders} from "../../contracts/interfaces/IShardProviders.sol";

/// @notice Coordinator BLS keys with proof of possession, the running aggregate key and signer stake kept by
///         staking's reports, and models accepted with one BLS aggregate of the coordinators' signatures. Secret keys are small known scalars (test data): the EVM can compute the
///         G1 halves and the signatures with its precompiles, and the G2 halves (no EVM G2 arithmetic) come from
///         `test/vectors/bls/g2_multiples.json`, written by the Rust crate `autonet-bls`.
contract BlsAttestationTest is World {
    bytes32 internal constant NEW_ROOT = keccak256("model-bls");
    string internal g2Table;

    function setUp() public override {
        super.setUp();
        g2Table = vm.readFile("./test/vectors/bls/g2_multiples.json");
    }

    // ------------------------------------------------------------------ helpers

    function _sk(uint256 i) internal pure returns (uint256) {
        return i + 1; // coordinator i holds secret key i + 1
    }

    function _g2Of(uint256 k) internal view returns (uint256[4] memory w) {
        uint256[] memory v = vm.parseJsonUintArray(g2Table, string.concat(".g2[", vm.toString(k - 1), "]"));
        w = [v[0], v[1], v[2], v[3]];
    }

    function _g1Of(uint256 k) internal view returns (uint256[2] memory) {
        BN254.G1Point memory p = BN254.scalarMul(BN254.generatorG1(), k);
        return [p.X, p.Y];
    }

    function _sign(bytes32 m, uint256 k) internal view returns (uint256[2] memory) {
        BN254.G1Point memory p = BN254.scalarMul(BN254.hashToG1(m), k);
        return [p.X, p.Y];
    }

    function _register(address who, uint256 sk) internal {
        uint256[2] memory pk = _g1Of(sk);
        uint256[4] memory pk2 = _g2Of(sk);
        uint256[2] memory pop = _sign(blsSigners.blsPopMessage(who, pk, pk2), sk);
        vm.prank(who);
        blsSigners.registerBlsKey(pk, pk2, pop);
    }

    function _registerAll() internal {
        for (uint256 i; i < coords.length; ++i) {
            _register(coords[i], _sk(i));
        }
    }

    function _addCoordinators(uint256 total) internal {
        for (uint256 i = coords.length; i < total; ++i) {
            address c = makeAddr(string.concat("coordinator", vm.toString(i)));
            coords.push(c);
            _stake(c, Role.Coordinator, 1000e18);
        }
    }

    function _manifest(bytes32 root) internal view returns (IModelShardRegistry.ModelManifest memory m) {
        m = IModelShardRegistry.ModelManifest({
            projectId: projectId,
            root: root,
            manifestHash: keccak256(abi.encode("manifest", root)),
            parentRoot: GENESIS_ROOT,
            totalSize: 10_000,
            shardSize: 1000,
            dataShards: 10,
            parityShards: 4
        });
    }

    function _publish(uint256 taskId) internal {
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        vm.prank(aggregator);
        shards.publishModel(_manifest(NEW_ROOT), ids);
    }

    /// @dev The aggregate of coordinators whose indices are set in `signers`, signing `m`.
    function _aggregate(bytes32 m, uint256 signers)
        internal
        view
        returns (uint256[4] memory apk2, uint256[2] memory sigma)
    {
        uint256 sum;
        for (uint256 i; i < coords.length; ++i) {
            if ((signers >> i) & 1 == 1) sum += _sk(i);
        }
        apk2 = _g2Of(sum);
        sigma = _sign(m, sum);
    }

    function _all() internal view returns (uint256) {
        return (uint256(1) << coords.length) - 1;
    }

    /// @dev An aggregate under explicit secret keys (after a rotation).
    function _aggregateOf(bytes32 m, uint256 skSum)
        internal
        view
        returns (uint256[4] memory apk2, uint256[2] memory sigma)
    {
        apk2 = _g2Of(skSum);
        sigma = _sign(m, skSum);
    }

    /// @dev The running aggregate must be the key of secret `skSum` (0 = infinity), `stake` and `bitmap`.
    function _assertAggregate(uint256 skSum, uint256 stake, uint256 bitmap) internal view {
        (uint256[2] memory apk, uint256 s, uint256 b) = blsSigners.blsAggregate();
        uint256[2] memory want = _g1Of(skSum);
        assertEq(apk[0], want[0], "apk x");
        assertEq(apk[1], want[1], "apk y");
        assertEq(s, stake, "aggregate stake");
        assertEq(b, bitmap, "active bitmap");
    }

    function _setCoordinatorMinimum(uint256 amount) internal {
        vm.prank(address(timelock));
        staking.setMinStake(Role.Coordinator, amount);
    }

    function _expectStale(uint256 signers, uint256 index) internal {
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), signers);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBlsSignerRegistry.BlsSignerRegistryStaleSigner.selector, index, coords[index]
            )
        );
        shards.attestModelBls(NEW_ROOT, signers, apk2, sigma);
    }

    function _attest(uint256 signers) internal {
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), signers);
        shards.attestModelBls(NEW_ROOT, signers, apk2, sigma);
    }

    // ------------------------------------------------------------------ registration

    function test_registerBlsKey_storesTheKeyAtTheNextIndex() public {
        _registerAll();
        assertEq(blsSigners.blsSignerCount(), 3);
        (bool registered, uint256 index, uint256[2] memory pk) = blsSigners.blsKeyOf(coords[1]);
        assertTrue(registered);
        assertEq(index, 1);
        uint256[2] memory want = _g1Of(_sk(1));
        assertEq(pk[0], want[0]);
        assertEq(pk[1], want[1]);
        assertEq(blsSigners.blsSignerAt(2), coords[2]);
        (registered,,) = blsSigners.blsKeyOf(solvers[0]);
        assertFalse(registered);
    }

    function test_registerBlsKey_rotatesInPlace() public {
        _registerAll();
        _register(coords[0], 77);
        assertEq(blsSigners.blsSignerCount(), 3);
        (, uint256 index, uint256[2] memory pk) = blsSigners.blsKeyOf(coords[0]);
        assertEq(index, 0);
        assertEq(pk[0], _g1Of(77)[0]);
    }

    function test_registerBlsKey_countsTheSignerInTheAggregate() public {
        _assertAggregate(0, 0, 0);
        vm.expectEmit(address(blsSigners));
        emit IBlsSignerRegistry.BlsSignerUpdated(coords[0], 0, true, 1000e18);
        _register(coords[0], _sk(0));
        _assertAggregate(1, 1000e18, 0x1);
        _register(coords[1], _sk(1));
        _register(coords[2], _sk(2));
        _assertAggregate(1 + 2 + 3, 3000e18, 0x7);
        assertEq(blsSigners.blsSignerStake(2), 1000e18);
    }

    function test_registerBlsKey_rotationReplacesTheKeyInTheAggregate() public {
        _registerAll();
        _register(coords[0], 77);
        _assertAggregate(77 + 2 + 3, 3000e18, 0x7);
        // The old key no longer signs for index 0; the new one does.
        _publish(_fullRound(_agreeingRows()));
        bytes32 m = shards.blsAttestationMessage(NEW_ROOT);
        (uint256[4] memory apk2, uint256[2] memory sigma) = _aggregateOf(m, 1 + 2 + 3);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBlsSignerRegistry.BlsSignerRegistryInvalidAggregateSignature.selector,
                shards.blsAttestationMessage(NEW_ROOT)
            )
        );
        shards.attestModelBls(NEW_ROOT, 0x7, apk2, sigma);
        (apk2, sigma) = _aggregateOf(m, 77 + 2 + 3);
        shards.attestModelBls(NEW_ROOT, 0x7, apk2, sigma);
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
    }

    function test_registerBlsKey_rotationRefreshesAnUncountedSigner() public {
        _registerAll();
        // Minimum raised and synced: coordinator 0 is no longer counted; lowered again without a sync, it is
        // active in staking but still uncounted, and a rotation (which requires activity) counts it again.
        _setCoordinatorMinimum(1500e18);
        blsSigners.syncBlsSigner(coords[0]);
        _setCoordinatorMinimum(500e18);
        _assertAggregate(2 + 3, 2000e18, 0x6);
        _register(coords[0], 9);
        _assertAggregate(9 + 2 + 3, 3000e18, 0x7);
    }

    function test_RevertWhen_registerBlsKeyByNonCoordinator() public {
        uint256[2] memory pk = _g1Of(5);
        uint256[4] memory pk2 = _g2Of(5);
        uint256[2] memory pop = _sign(blsSigners.blsPopMessage(solvers[0], pk, pk2), 5);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IBlsSignerRegistry.BlsSignerRegistryNotCoordinator.selector, solvers[0])
        );
        blsSigners.registerBlsKey(pk, pk2, pop);
    }

    function test_RevertWhen_proofOfPossessionIsReplayedByAnotherCoordinator() public {
        uint256[2] memory pk = _g1Of(5);
        uint256[4] memory pk2 = _g2Of(5);
        uint256[2] memory pop = _sign(blsSigners.blsPopMessage(coords[0], pk, pk2), 5);
        vm.prank(coords[1]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBlsSignerRegistry.BlsSignerRegistryInvalidProofOfPossession.selector, coords[1]
            )
        );
        blsSigners.registerBlsKey(pk, pk2, pop);
    }

    function test_RevertWhen_G2KeyIsNotTheTwinOfTheG1Key() public {
        uint256[2] memory pk = _g1Of(5);
        uint256[4] memory pk2 = _g2Of(6);
        uint256[2] memory pop = _sign(blsSigners.blsPopMessage(coords[0], pk, pk2), 5);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBlsSignerRegistry.BlsSignerRegistryInvalidProofOfPossession.selector, coords[0]
            )
        );
        blsSigners.registerBlsKey(pk, pk2, pop);
    }

    /// @dev The rogue key pk_attacker − pk_victim (from the Rust vectors): with it, the attacker alone could sign
    ///      for "victim + rogue". Its best proof — its own key signing the rogue key's message — is refused.
    function test_RevertWhen_rogueKeyRegistersWithoutPossession() public {
        string memory pop = vm.readFile("./test/vectors/bls/pop.json");
        uint256[] memory g1w = vm.parseJsonUintArray(pop, ".rogueKey.pkG1");
        uint256[] memory g2w = vm.parseJsonUintArray(pop, ".rogueKey.pkG2");
        uint256 attacker = vm.parseJsonUint(pop, ".attackerSecret");
        uint256[2] memory pk = [g1w[0], g1w[1]];
        uint256[4] memory pk2 = [g2w[0], g2w[1], g2w[2], g2w[3]];
        uint256[2] memory attempt = _sign(blsSigners.blsPopMessage(coords[0], pk, pk2), attacker);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBlsSignerRegistry.BlsSignerRegistryInvalidProofOfPossession.selector, coords[0]
            )
        );
        blsSigners.registerBlsKey(pk, pk2, attempt);
    }

    function test_RevertWhen_keyIsInfinityOrOffCurve() public {
        uint256[4] memory pk2 = _g2Of(5);
        uint256[2] memory pop = _sign(keccak256("x"), 5);
        vm.startPrank(coords[0]);
        vm.expectRevert(IBlsSignerRegistry.BlsSignerRegistryInvalidBlsKey.selector);
        blsSigners.registerBlsKey([uint256(0), 0], pk2, pop);
        vm.expectRevert(IBlsSignerRegistry.BlsSignerRegistryInvalidBlsKey.selector);
        blsSigners.registerBlsKey([uint256(1), 3], pk2, pop);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ running aggregate (staking reports)

    function test_onStakeChanged_unbondBelowMinimumRemovesTheSigner() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        // The round's phases closed early: the vote stays bound until the deadline it was bound to.
        _rollTo(uint256(staking.boundUntil(coords[1])) + 1);
        vm.expectEmit(address(blsSigners));
        emit IBlsSignerRegistry.BlsSignerUpdated(coords[1], 1, false, 0);
        vm.prank(coords[1]);
        staking.requestUnbond(600e18); // 400 left < 500 minimum
        _assertAggregate(1 + 3, 2000e18, 0x5);
        assertEq(blsSigners.blsSignerStake(1), 0);
        _expectStale(0x7, 1);
        _expectStale(0x2, 1);
        // The two counted signers hold 2000 of the 2400 coordinator stake.
        _attest(0x5);
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
    }

    function test_onStakeChanged_partialUnbondLowersTheRecordedStake() public {
        _registerAll();
        vm.expectEmit(address(blsSigners));
        emit IBlsSignerRegistry.BlsSignerUpdated(coords[2], 2, true, 700e18);
        vm.prank(coords[2]);
        staking.requestUnbond(300e18);
        _assertAggregate(1 + 2 + 3, 2700e18, 0x7);
        assertEq(blsSigners.blsSignerStake(2), 700e18);
    }

    function test_onStakeChanged_slashLowersTheStakeThenRemovesTheSigner() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        vm.prank(address(tasks)); // a SLASHER_ROLE holder
        staking.slash(coords[2], 200e18, "test");
        _assertAggregate(1 + 2 + 3, 2800e18, 0x7);
        assertEq(blsSigners.blsSignerStake(2), 800e18);
        vm.expectEmit(address(blsSigners));
        emit IBlsSignerRegistry.BlsSignerUpdated(coords[2], 2, false, 0);
        vm.prank(address(tasks));
        staking.slash(coords[2], 400e18, "test"); // 400 left < 500 minimum
        _assertAggregate(1 + 2, 2000e18, 0x3);
        _expectStale(0x7, 2);
    }

    function test_onStakeChanged_stakeIncreaseRaisesTheRecordedStake() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        require(token.transfer(coords[0], 500e18));
        vm.startPrank(coords[0]);
        token.approve(address(staking), 500e18);
        vm.expectEmit(address(blsSigners));
        emit IBlsSignerRegistry.BlsSignerUpdated(coords[0], 0, true, 1500e18);
        staking.stake(Role.Coordinator, 500e18);
        vm.stopPrank();
        _assertAggregate(1 + 2 + 3, 3500e18, 0x7);
        assertEq(blsSigners.blsSignerStake(0), 1500e18);
        // Coordinators 1 and 2 hold 2000 of 3500 (< 2/3); 0 and 1 hold 2500 (>= 2/3).
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), 0x6);
        vm.expectPartialRevert(IModelShardRegistry.ModelShardRegistryInsufficientSignerStake.selector);
        shards.attestModelBls(NEW_ROOT, 0x6, apk2, sigma);
        vm.expectEmit(address(shards));
        emit IModelShardRegistry.ModelAttestedBls(NEW_ROOT, 0x3, 2500e18);
        _attest(0x3);
    }

    function test_onStakeChanged_restakeCountsTheSignerAgain() public {
        _registerAll();
        vm.prank(coords[1]);
        staking.requestUnbond(1000e18);
        _assertAggregate(1 + 3, 2000e18, 0x5);
        _stake(coords[1], Role.Coordinator, 800e18); // still a Coordinator: its unbond is pending
        _assertAggregate(1 + 2 + 3, 2800e18, 0x7);
        assertEq(blsSigners.blsSignerStake(1), 800e18);
    }

    function test_onStakeChanged_roleClearedRemovesTheSigner() public {
        _registerAll();
        // Even with a zero minimum, a Coordinator with nothing bonded is not active (an active account holds a
        // positive stake, see IParticipantStaking.activeCount): the signer leaves the aggregate at the unbond,
        // and the role clear at the withdrawal finds it gone and changes nothing.
        _setCoordinatorMinimum(0);
        vm.expectEmit(address(blsSigners));
        emit IBlsSignerRegistry.BlsSignerUpdated(coords[1], 1, false, 0);
        vm.prank(coords[1]);
        staking.requestUnbond(1000e18);
        assertFalse(staking.isActive(coords[1], Role.Coordinator));
        _assertAggregate(1 + 3, 2000e18, 0x5);
        vm.warp(block.timestamp + staking.unbondingDelay(Role.Coordinator));
        vm.recordLogs();
        vm.prank(coords[1]);
        staking.withdrawUnbonded();
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertFalse(logs[i].emitter == address(blsSigners), "the role clear changed the aggregate again");
        }
        assertEq(uint8(staking.roleOf(coords[1])), uint8(Role.None));
        _assertAggregate(1 + 3, 2000e18, 0x5);
        // Back in another role: still not counted.
        _stake(coords[1], Role.Solver, 100e18);
        _assertAggregate(1 + 3, 2000e18, 0x5);
    }

    function test_onStakeChanged_accountWithoutKeyCostsOneSlotRead() public {
        _registerAll();
        vm.record();
        vm.recordLogs();
        vm.prank(address(staking));
        blsSigners.onStakeChanged(solvers[0]);
        (bytes32[] memory reads, bytes32[] memory writes) = vm.accesses(address(blsSigners));
        assertEq(reads.length, 1, "one slot read");
        assertEq(writes.length, 0, "no write");
        assertEq(vm.getRecordedLogs().length, 0, "no event");
        // Through staking too: a solver's stake leaves the aggregate alone.
        _stake(solvers[0], Role.Solver, 100e18);
        _assertAggregate(1 + 2 + 3, 3000e18, 0x7);
    }

    function test_RevertWhen_onStakeChangedIsNotCalledByStaking() public {
        _registerAll();
        address stranger = makeAddr("stranger");
        vm.prank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IBlsSignerRegistry.BlsSignerRegistryNotStaking.selector, stranger)
        );
        blsSigners.onStakeChanged(coords[0]);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IBlsSignerRegistry.BlsSignerRegistryNotStaking.selector, coords[0])
        );
        blsSigners.onStakeChanged(coords[0]);
    }

    function test_syncBlsSigner_appliesAMinimumStakeRaise() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        _stake(coords[2], Role.Coordinator, 1000e18);
        // Governance raises the minimum: staking reports nothing, the aggregate is stale until synced.
        _setCoordinatorMinimum(1500e18);
        _assertAggregate(1 + 2 + 3, 4000e18, 0x7);
        assertFalse(staking.isActive(coords[0], Role.Coordinator));
        vm.expectEmit(address(blsSigners));
        emit IBlsSignerRegistry.BlsSignerUpdated(coords[0], 0, false, 0);
        vm.prank(makeAddr("anyone"));
        blsSigners.syncBlsSigner(coords[0]);
        blsSigners.syncBlsSigner(coords[1]);
        blsSigners.syncBlsSigner(coords[2]); // still active: nothing changes
        _assertAggregate(3, 2000e18, 0x4);
        _expectStale(0x7, 0);
        // Lowered again: synced signers count again.
        _setCoordinatorMinimum(500e18);
        blsSigners.syncBlsSigner(coords[0]);
        _assertAggregate(1 + 3, 3000e18, 0x5);
    }

    function test_syncBlsSigner_writesNothingWhenCurrent() public {
        _registerAll();
        vm.record();
        vm.recordLogs();
        blsSigners.syncBlsSigner(coords[0]);
        (, bytes32[] memory writes) = vm.accesses(address(blsSigners));
        assertEq(writes.length, 0, "no write");
        assertEq(vm.getRecordedLogs().length, 0, "no event");
    }

    function test_RevertWhen_syncBlsSignerWithoutKey() public {
        vm.expectRevert(
            abi.encodeWithSelector(IBlsSignerRegistry.BlsSignerRegistryKeyNotRegistered.selector, solvers[0])
        );
        blsSigners.syncBlsSigner(solvers[0]);
    }

    /// @dev Any subset of ten counted signers: accepted iff it holds 2/3 of the stake, with the stake of the
    ///      subset, whatever non-signers are subtracted from the running aggregate.
    function testFuzz_attestModelBls_anySubsetPaysForItsNonSigners(uint256 signers, uint256 heavy) public {
        _addCoordinators(10);
        heavy = bound(heavy, 0, 9);
        _stake(coords[heavy], Role.Coordinator, 2000e18); // one coordinator holds 3000, the others 1000
        for (uint256 i; i < 10; ++i) {
            _register(coords[i], _sk(i));
        }
        signers = bound(signers, 1, (uint256(1) << 10) - 1);
        uint256 stake;
        for (uint256 i; i < 10; ++i) {
            if ((signers >> i) & 1 == 1) stake += i == heavy ? 3000e18 : 1000e18;
        }
        _publish(_propose());
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), signers);
        uint256 total = 12_000e18;
        if (stake * 3 < total * 2) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IModelShardRegistry.ModelShardRegistryInsufficientSignerStake.selector,
                    stake,
                    (total * 2 + 2) / 3
                )
            );
            shards.attestModelBls(NEW_ROOT, signers, apk2, sigma);
        } else {
            vm.expectEmit(address(shards));
            emit IModelShardRegistry.ModelAttestedBls(NEW_ROOT, signers, stake);
            shards.attestModelBls(NEW_ROOT, signers, apk2, sigma);
            assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
        }
    }

    // ------------------------------------------------------------------ aggregate attestation

    function test_attestModelBls_acceptsTheModelWithOneAggregate() public {
        _registerAll();
        uint256 taskId = _fullRound(_agreeingRows());
        _publish(taskId);
        bytes32 m = shards.blsAttestationMessage(NEW_ROOT);
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        assertEq(
            m,
            keccak256(
                abi.encode(
                    keccak256("autonet.bls.attestation.v2"),
                    block.chainid,
                    address(shards),
                    projectId,
                    GENESIS_ROOT,
                    NEW_ROOT,
                    _manifest(NEW_ROOT).manifestHash,
                    aggregator,
                    shards.getModel(NEW_ROOT).publishedBlock,
                    ids
                )
            )
        );
        (uint256[4] memory apk2, uint256[2] memory sigma) = _aggregate(m, _all());
        vm.expectEmit(address(shards));
        emit IModelShardRegistry.ModelAttestedBls(NEW_ROOT, _all(), 3000e18);
        vm.prank(makeAddr("anyone"));
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
        assertEq(project.modelRoot(projectId), NEW_ROOT);
        assertEq(rewards.claimable(aggregator), REWARD / 10);
        // Accepted: a second aggregate is refused.
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryModelNotPending.selector, NEW_ROOT, ModelStatus.Accepted
            )
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
    }

    function test_attestModelBls_twoOfThreeIsEnough() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        uint256 signers = 0x5; // coordinators 0 and 2
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), signers);
        shards.attestModelBls(NEW_ROOT, signers, apk2, sigma);
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
    }

    function test_RevertWhen_signersHoldLessThanTwoThirds() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        uint256 signers = 0x2;
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), signers);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryInsufficientSignerStake.selector, 1000e18, 2000e18
            )
        );
        shards.attestModelBls(NEW_ROOT, signers, apk2, sigma);
    }

    function test_RevertWhen_aggregateSignsAnotherMessage() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        (uint256[4] memory apk2, uint256[2] memory sigma) = _aggregate(keccak256("another model"), _all());
        vm.expectRevert(
            abi.encodeWithSelector(
                IBlsSignerRegistry.BlsSignerRegistryInvalidAggregateSignature.selector,
                shards.blsAttestationMessage(NEW_ROOT)
            )
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
    }

    function test_RevertWhen_bitmapClaimsASignerWhoDidNotSign() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        bytes32 m = shards.blsAttestationMessage(NEW_ROOT);
        // Signatures of coordinators 0 and 1 only, claimed as all three (G2 key of all three).
        (uint256[4] memory apk2,) = _aggregate(m, _all());
        (, uint256[2] memory sigma) = _aggregate(m, 0x3);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBlsSignerRegistry.BlsSignerRegistryInvalidAggregateSignature.selector,
                shards.blsAttestationMessage(NEW_ROOT)
            )
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
    }

    function test_RevertWhen_aSignerIsNoLongerACoordinator() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        // The round's phases closed early: the vote stays bound until the deadline it was bound to.
        _rollTo(uint256(staking.boundUntil(coords[1])) + 1);
        vm.prank(coords[1]);
        staking.requestUnbond(1000e18);
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), _all());
        vm.expectRevert(
            abi.encodeWithSelector(IBlsSignerRegistry.BlsSignerRegistryStaleSigner.selector, 1, coords[1])
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
    }

    function test_RevertWhen_signerBitmapIsEmptyOrUnregistered() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), _all());
        vm.expectRevert(
            abi.encodeWithSelector(IBlsSignerRegistry.BlsSignerRegistryInvalidSigners.selector, 0, 3)
        );
        shards.attestModelBls(NEW_ROOT, 0, apk2, sigma);
        vm.expectRevert(
            abi.encodeWithSelector(IBlsSignerRegistry.BlsSignerRegistryInvalidSigners.selector, 0xf, 3)
        );
        shards.attestModelBls(NEW_ROOT, 0xf, apk2, sigma);
    }

    function test_RevertWhen_modelIsUnknown() public {
        _registerAll();
        (uint256[4] memory apk2, uint256[2] memory sigma) = _aggregate(keccak256("m"), _all());
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryUnknownModel.selector, NEW_ROOT)
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
        assertEq(shards.blsAttestationMessage(NEW_ROOT), bytes32(0));
    }

    function test_RevertWhen_modelExpired() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        bytes32 m = shards.blsAttestationMessage(NEW_ROOT);
        (uint256[4] memory apk2, uint256[2] memory sigma) = _aggregate(m, _all());
        uint256 expiresAt = shards.getModel(NEW_ROOT).expiresAt;
        vm.roll(expiresAt + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryModelExpired.selector, NEW_ROOT, expiresAt
            )
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
    }

    // ------------------------------------------------------------------ review dc0035f: H-2 and M-3

    /// @dev The message honest coordinators sign for what they checked.
    function _message(uint256 taskId, bytes32 manifestHash, address publisher, uint256 publishedBlock)
        internal
        view
        returns (bytes32)
    {
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        return keccak256(
            abi.encode(
                keccak256("autonet.bls.attestation.v2"),
                block.chainid,
                address(shards),
                projectId,
                GENESIS_ROOT,
                NEW_ROOT,
                manifestHash,
                publisher,
                publishedBlock,
                ids
            )
        );
    }

    /// @dev `_register` in its own call frame.
    function registerFrom(address who, uint256 sk) external {
        _register(who, sk);
    }

    /// @dev H-2. Fails on dc0035f: the BLS message named neither the manifest nor the publisher, so signatures
    ///      of coordinators who checked the honest manifest accepted a squatter's record of the same root (with a
    ///      wrong manifest, or with the squatter as the paid publisher). Now they only fit the record they checked.
    function test_H2_blsSignaturesOnlyFitTheRecordTheCoordinatorsChecked() public {
        _registerAll();
        uint256 taskId = _fullRound(_agreeingRows());
        address squatter = makeAddr("squatter");
        _stake(squatter, Role.Aggregator, 1000e18);
        // A window short enough for the honest record to land inside the project's publish window (W_PUBLISH).
        vm.prank(address(timelock));
        shards.setModelExpiry(20);
        IModelShardRegistry.ModelManifest memory bogus = _manifest(NEW_ROOT);
        bogus.manifestHash = keccak256("bogus manifest");
        uint256[] memory ids = new uint256[](1);
        ids[0] = taskId;
        vm.prank(squatter);
        shards.publishModel(bogus, ids);

        // What honest coordinators checked: the real manifest, published by the aggregator (in this block).
        bytes32 honest = _message(taskId, _manifest(NEW_ROOT).manifestHash, aggregator, block.number);
        (uint256[4] memory apk2, uint256[2] memory sigma) = _aggregate(honest, _all());
        bytes32 squatted = shards.blsAttestationMessage(NEW_ROOT);
        assertTrue(squatted != honest);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBlsSignerRegistry.BlsSignerRegistryInvalidAggregateSignature.selector, squatted
            )
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);

        // The squatted record expires (its publisher pays) and the honest one is published and accepted.
        vm.roll(shards.getModel(NEW_ROOT).expiresAt + 1);
        _publish(taskId);
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Pending));
        assertEq(staking.stakeOf(squatter), 900e18);
        (apk2, sigma) =
            _aggregate(_message(taskId, _manifest(NEW_ROOT).manifestHash, aggregator, block.number), _all());
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
        assertEq(rewards.claimable(aggregator), REWARD / 10);
        assertEq(rewards.claimable(squatter), 0);
    }

    /// @dev M-3. Fails on dc0035f: signer indices were never freed, so 256 throw-away coordinators (stake returned
    ///      after the unbonding delay) locked every later coordinator out of BLS registration. Now a newcomer takes
    ///      the index of a signer that is no longer an active Coordinator; active signers keep theirs.
    function test_M3_slotsOfDepartedCoordinatorsAreReused() public {
        _addCoordinators(256);
        for (uint256 i; i < 256; ++i) {
            this.registerFrom(coords[i], _sk(i)); // one call frame each: the key table is read into fresh memory
        }
        assertEq(blsSigners.blsSignerCount(), 256);
        address newcomer = makeAddr("newcomer");
        _stake(newcomer, Role.Coordinator, 1000e18);
        vm.expectRevert(IBlsSignerRegistry.BlsSignerRegistrySignersFull.selector);
        this.registerFrom(newcomer, 300); // every signer is still an active Coordinator

        // Two of them leave (unbond everything): the lower index is reused first.
        vm.prank(coords[9]);
        staking.requestUnbond(1000e18);
        vm.prank(coords[5]);
        staking.requestUnbond(1000e18);
        vm.expectEmit(address(blsSigners));
        emit IBlsSignerRegistry.BlsSignerReplaced(5, coords[5], newcomer);
        _register(newcomer, 300);
        (bool registered, uint256 index,) = blsSigners.blsKeyOf(newcomer);
        assertTrue(registered);
        assertEq(index, 5);
        assertEq(blsSigners.blsSignerAt(5), newcomer);
        (registered,,) = blsSigners.blsKeyOf(coords[5]);
        assertFalse(registered);
        assertEq(blsSigners.blsSignerCount(), 256);
        // The aggregate counts 255 signers: every key but the departed ones (6 and 10), plus the newcomer's.
        uint256 skSum = 256 * 257 / 2 - 6 - 10 + 300;
        _assertAggregate(skSum, 255 * 1000e18, type(uint256).max & ~(uint256(1) << 9));
        // The departed coordinator's stake reports no longer reach the slot it lost.
        _stake(coords[5], Role.Coordinator, 1000e18);
        assertEq(blsSigners.blsSignerStake(5), 1000e18);
        _assertAggregate(skSum, 256 * 1000e18 - 1000e18, type(uint256).max & ~(uint256(1) << 9));
    }

    // ------------------------------------------------------------------ signers hold the model's shards

    uint256 internal constant FULL_14 = (uint256(1) << 14) - 1; // k + m = 10 + 4 shards of `_manifest`

    function _registerProvider(address who) internal {
        vm.prank(who);
        shardProviders.registerProvider(string.concat("http://", vm.toString(who)));
    }

    /// @dev Coordinators 0 and 1 serve shards, coordinator 2 does not; all three sign the aggregate that accepts
    ///      NEW_ROOT.
    function _acceptWithAllSigning() internal {
        _registerAll();
        _registerProvider(coords[0]);
        _registerProvider(coords[1]);
        _publish(_propose());
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), _all());
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
    }

    /// @dev `_acceptWithAllSigning`, then coordinator 1 (funded for the bond) challenges coordinator 0's holding.
    function _acceptAndChallengeSigner0() internal returns (address challenger, uint256 id) {
        _acceptWithAllSigning();
        challenger = coords[1];
        require(token.transfer(challenger, 10e18));
        vm.prank(challenger);
        token.approve(address(shardProviders), type(uint256).max);
        vm.prank(challenger);
        id = shardProviders.challenge(NEW_ROOT, coords[0]);
    }

    function test_attestModelBls_signersHoldEveryShardWithoutAnnouncing() public {
        _registerAll();
        _registerProvider(coords[0]);
        _registerProvider(coords[1]);
        _publish(_propose());
        // Pending: nobody holds it through attestation yet.
        (address publisher, uint256 signers, uint256 publishedBlock) = shards.acceptedHoldersOf(NEW_ROOT);
        assertEq(publisher, address(0));
        assertEq(signers, 0);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[0]), 0);
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), _all());
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);

        (publisher, signers, publishedBlock) = shards.acceptedHoldersOf(NEW_ROOT);
        assertEq(publisher, aggregator);
        assertEq(signers, _all());
        assertEq(publishedBlock, shards.getModel(NEW_ROOT).publishedBlock);
        // The two signers that serve shards hold all 14; the one that does not, none.
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[0]), FULL_14);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[1]), FULL_14);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[2]), 0);
        address[] memory holders = shardProviders.holdersOf(NEW_ROOT);
        assertEq(holders.length, 2);
        assertEq(holders[0], coords[0]);
        assertEq(holders[1], coords[1]);
        assertEq(shardProviders.providersOf(NEW_ROOT, 13).length, 2);
        assertEq(shardProviders.providersOf(NEW_ROOT, 14).length, 0, "no shard 14");
        (uint256 available, bool recoverable) = shardProviders.availability(NEW_ROOT);
        assertEq(available, 14);
        assertTrue(recoverable);
        // No storage of their own: no stake lock either.
        assertEq(shardProviders.lockedStake(coords[0], Role.Coordinator), 0);
        assertEq(shardProviders.getProvider(coords[0]).rootsHeld, 0);

        // One of them also announces shards: listed once, with everything it holds.
        vm.prank(coords[0]);
        shardProviders.announceShards(NEW_ROOT, 0x3);
        assertEq(shardProviders.holdersOf(NEW_ROOT).length, 2);
        assertEq(shardProviders.providersOf(NEW_ROOT, 0).length, 2);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[0]), FULL_14);
    }

    function test_attestedHolding_lapsesWhenUnbackedAndCanBeWithdrawn() public {
        _acceptWithAllSigning();
        // coordinator 0 unbonds below the provider minimum: its holding lapses (nothing locked it).
        uint256 keep = shardProviders.minProviderStake() - 1;
        vm.prank(coords[0]);
        staking.requestUnbond(1000e18 - keep);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[0]), 0);
        address[] memory holders = shardProviders.holdersOf(NEW_ROOT);
        assertEq(holders.length, 1);
        assertEq(holders[0], coords[1]);

        // coordinator 1 gives it up; a second time there is nothing to give up.
        vm.expectEmit(address(shardProviders));
        emit IShardProviders.ShardsWithdrawn(NEW_ROOT, coords[1], FULL_14, 0);
        vm.prank(coords[1]);
        shardProviders.withdrawAccepted(NEW_ROOT);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[1]), 0);
        assertEq(shardProviders.holdersOf(NEW_ROOT).length, 0);
        (uint256 available, bool recoverable) = shardProviders.availability(NEW_ROOT);
        assertEq(available, 0);
        assertFalse(recoverable);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersShardsNotHeld.selector, FULL_14));
        vm.prank(coords[1]);
        shardProviders.withdrawAccepted(NEW_ROOT);
        // Nor can a signer that does not serve shards.
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersShardsNotHeld.selector, FULL_14));
        vm.prank(coords[2]);
        shardProviders.withdrawAccepted(NEW_ROOT);
    }

    function test_attestedHolding_isChallengedAndSlashedLikeAnAnnouncedOne() public {
        (address challenger, uint256 id) = _acceptAndChallengeSigner0();
        assertLt(shardProviders.getChallenge(id).index, 14);
        // While the challenge is open its stake is locked and its holding cannot be withdrawn.
        assertEq(shardProviders.lockedStake(coords[0], Role.Coordinator), shardProviders.minProviderStake());
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersChallengeOpen.selector, id));
        vm.prank(coords[0]);
        shardProviders.withdrawAccepted(NEW_ROOT);

        // No proof in time: slashed, and the holding is gone for good.
        vm.roll(shardProviders.getChallenge(id).deadline + 1);
        uint256 stakeBefore = staking.stakeOf(coords[0]);
        shardProviders.expireChallenge(id);
        assertEq(stakeBefore - staking.stakeOf(coords[0]), shardProviders.challengeSlash());
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[0]), 0);
        assertEq(shardProviders.lockedStake(coords[0], Role.Coordinator), 0);
        assertEq(shardProviders.holdersOf(NEW_ROOT).length, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IShardProviders.ShardProvidersNothingToChallenge.selector, NEW_ROOT, coords[0]
            )
        );
        vm.prank(challenger);
        shardProviders.challenge(NEW_ROOT, coords[0]);
    }

    function test_acceptedHolding_includesThePublisherHoweverTheModelWasAccepted() public {
        _registerProvider(aggregator);
        _registerProvider(coords[0]);
        _publish(_propose());
        assertEq(shardProviders.shardsOf(NEW_ROOT, aggregator), 0, "pending: nobody holds it yet");
        // Accepted one attestation at a time (no BLS): the publisher holds it, the attesters do not.
        for (uint256 i; shards.modelStatus(NEW_ROOT) == ModelStatus.Pending; ++i) {
            vm.prank(coords[i]);
            shards.attestModel(NEW_ROOT, _manifest(NEW_ROOT).manifestHash, aggregator);
        }
        (address publisher, uint256 signers,) = shards.acceptedHoldersOf(NEW_ROOT);
        assertEq(publisher, aggregator);
        assertEq(signers, 0);
        assertEq(shardProviders.shardsOf(NEW_ROOT, aggregator), FULL_14);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[0]), 0);
        address[] memory holders = shardProviders.holdersOf(NEW_ROOT);
        assertEq(holders.length, 1);
        assertEq(holders[0], aggregator);
        (uint256 available,) = shardProviders.availability(NEW_ROOT);
        assertEq(available, 14);
        // It can give the holding up like a signer.
        vm.prank(aggregator);
        shardProviders.withdrawAccepted(NEW_ROOT);
        assertEq(shardProviders.holdersOf(NEW_ROOT).length, 0);
    }

    function test_attestedHolding_lostToAFailedChallengeDoesNotComeBackWithStake() public {
        (, uint256 id) = _acceptAndChallengeSigner0();
        // Governance raises the minimum above the provider's stake: its holding lapses while challenged.
        vm.prank(address(timelock));
        shardProviders.setChallengeSlash(2000e18);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[0]), 0);
        vm.roll(shardProviders.getChallenge(id).deadline + 1);
        shardProviders.expireChallenge(id);
        // The minimum comes back down: the failed provider's holding stays gone, the other signer's is back.
        vm.prank(address(timelock));
        shardProviders.setChallengeSlash(10e18);
        assertGe(staking.stakeOf(coords[1]), 10e18);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[1]), FULL_14);
        _stake(coords[0], Role.Coordinator, 1000e18);
        assertEq(
            shardProviders.shardsOf(NEW_ROOT, coords[0]), 0, "a failed challenge ends the holding for good"
        );
    }

    function test_attestedHolding_needsTheSignerIndexTakenBeforeThePublication() public {
        // coordinator 2 takes its signer index only after the model was published, then signs: its signature
        // counts for acceptance, but the holding is not recognized (a reused index must not inherit one).
        _register(coords[0], _sk(0));
        _register(coords[1], _sk(1));
        _registerProvider(coords[0]);
        _registerProvider(coords[2]);
        _publish(_propose());
        vm.roll(block.number + 1);
        _register(coords[2], _sk(2));
        assertGt(blsSigners.blsSignerSince(2), shards.getModel(NEW_ROOT).publishedBlock);
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), _all());
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[0]), FULL_14);
        assertEq(shardProviders.shardsOf(NEW_ROOT, coords[2]), 0);
        assertEq(shardProviders.holdersOf(NEW_ROOT).length, 1);
    }

    // ------------------------------------------------------------------ gas: per-coordinator vs one aggregate

    function _cool() internal {
        vm.cool(address(staking));
        vm.cool(address(project));
        vm.cool(address(rewards));
        vm.cool(address(shards));
        vm.cool(address(blsSigners));
        vm.cool(address(shardProviders));
        vm.cool(address(token));
    }

    /// @dev Gas (execution + 21000 intrinsic per transaction, cold storage per transaction) to take a published
    ///      model to Accepted with `n` coordinators of equal stake: with per-coordinator `attestModel` until 2/3 of
    ///      the stake attested, with one `attestModelBls` carrying every coordinator's signature, and with one
    ///      carrying all but `n / 3` of them (the non-signers are the highest indices; only their number counts).
    ///      Leaves the world as it found it.
    function _compare(uint256 n) internal returns (uint256 perCoordinator, uint256 bls, uint256 blsAbsent) {
        uint256 start = vm.snapshotState();
        _addCoordinators(n);
        for (uint256 i; i < n; ++i) {
            _register(coords[i], _sk(i));
        }
        uint256 taskId = _propose(); // a task id to carry; fees are irrelevant to the comparison
        uint256 snap = vm.snapshotState();

        _publish(taskId);
        for (uint256 i; i < n && shards.modelStatus(NEW_ROOT) == ModelStatus.Pending; ++i) {
            _cool();
            vm.prank(coords[i]);
            uint256 g = gasleft();
            shards.attestModel(NEW_ROOT, _manifest(NEW_ROOT).manifestHash, aggregator);
            perCoordinator += g - gasleft() + 21_000;
        }
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));

        uint256 all = n == 256 ? type(uint256).max : (uint256(1) << n) - 1;
        vm.revertToState(snap);
        bls = _blsCost(taskId, all);
        vm.revertToState(snap);
        blsAbsent = _blsCost(taskId, all >> (n / 3));
        vm.revertToStateAndDelete(start); // this contract's storage too: coords is back to N_COORDS
    }

    function _blsCost(uint256 taskId, uint256 signers) internal returns (uint256 gasUsed) {
        _publish(taskId);
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), signers);
        _cool();
        uint256 g0 = gasleft();
        shards.attestModelBls(NEW_ROOT, signers, apk2, sigma);
        gasUsed = g0 - gasleft() + 21_000;
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
    }

    function _report(uint256 n) internal returns (uint256 per, uint256 all) {
        uint256 absent;
        (per, all, absent) = _compare(n);
        console2.log(n, "coordinators: per-coordinator attestations", per);
        console2.log("  one BLS aggregate, all signing", all);
        console2.log("  one BLS aggregate, a third absent", absent);
        string memory k = vm.toString(n);
        vm.snapshotValue(string.concat("attest_perCoordinator_", k), per);
        vm.snapshotValue(string.concat("attest_bls_", k), all);
        vm.snapshotValue(string.concat("attest_blsThirdAbsent_", k), absent);
        // A non-signer costs its key and stake reads (three cold slots) and a point addition, about 7.6k gas;
        // having any costs one negation and one more addition.
        assertLe(absent, all + 1500 + (n / 3) * 8000, "non-signers cost about 7.6k gas each");
    }

    function test_gas_attestationCost_3_coordinators() public {
        _report(3);
    }

    function test_gas_attestationCost_10_coordinators() public {
        _report(10);
    }

    function test_gas_attestationCost_32_coordinators() public {
        (uint256 per, uint256 bls) = _report(32);
        assertLt(bls * 4, per, "one aggregate must cost under a quarter of the attestations it replaces");
    }

    /// @dev The flat cost: with every coordinator signing, 32 coordinators cost what 3 do.
    function test_gas_blsAggregateIsFlatInTheNumberOfSigners() public {
        (, uint256 three,) = _compare(3);
        (, uint256 thirtyTwo,) = _compare(32);
        assertApproxEqAbs(thirtyTwo, three, 500, "all-signing aggregate cost independent of the signer count");
    }
}
