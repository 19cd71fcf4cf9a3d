// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console2} from "forge-std/console2.sol";
import {World} from "../utils/World.sol";
import {BN254} from "../../contracts/libraries/BN254.sol";
import {Role} from "../../contracts/interfaces/IParticipantStaking.sol";
import {IModelShardRegistry, ModelStatus} from "../../contracts/interfaces/IModelShardRegistry.sol";

/// @notice Coordinator BLS keys with proof of possession, and models accepted with one BLS aggregate of the
///         coordinators' signatures. Secret keys are small known scalars (test data): the EVM can compute the
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
        uint256[2] memory pop = _sign(shards.blsPopMessage(who, pk, pk2), sk);
        vm.prank(who);
        shards.registerBlsKey(pk, pk2, pop);
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

    // ------------------------------------------------------------------ registration

    function test_registerBlsKey_storesTheKeyAtTheNextIndex() public {
        _registerAll();
        assertEq(shards.blsSignerCount(), 3);
        (bool registered, uint256 index, uint256[2] memory pk) = shards.blsKeyOf(coords[1]);
        assertTrue(registered);
        assertEq(index, 1);
        uint256[2] memory want = _g1Of(_sk(1));
        assertEq(pk[0], want[0]);
        assertEq(pk[1], want[1]);
        assertEq(shards.blsSignerAt(2), coords[2]);
        (registered,,) = shards.blsKeyOf(solvers[0]);
        assertFalse(registered);
    }

    function test_registerBlsKey_rotatesInPlace() public {
        _registerAll();
        _register(coords[0], 77);
        assertEq(shards.blsSignerCount(), 3);
        (, uint256 index, uint256[2] memory pk) = shards.blsKeyOf(coords[0]);
        assertEq(index, 0);
        assertEq(pk[0], _g1Of(77)[0]);
    }

    function test_RevertWhen_registerBlsKeyByNonCoordinator() public {
        uint256[2] memory pk = _g1Of(5);
        uint256[4] memory pk2 = _g2Of(5);
        uint256[2] memory pop = _sign(shards.blsPopMessage(solvers[0], pk, pk2), 5);
        vm.prank(solvers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryNotCoordinator.selector, solvers[0])
        );
        shards.registerBlsKey(pk, pk2, pop);
    }

    function test_RevertWhen_proofOfPossessionIsReplayedByAnotherCoordinator() public {
        uint256[2] memory pk = _g1Of(5);
        uint256[4] memory pk2 = _g2Of(5);
        uint256[2] memory pop = _sign(shards.blsPopMessage(coords[0], pk, pk2), 5);
        vm.prank(coords[1]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryInvalidProofOfPossession.selector, coords[1]
            )
        );
        shards.registerBlsKey(pk, pk2, pop);
    }

    function test_RevertWhen_G2KeyIsNotTheTwinOfTheG1Key() public {
        uint256[2] memory pk = _g1Of(5);
        uint256[4] memory pk2 = _g2Of(6);
        uint256[2] memory pop = _sign(shards.blsPopMessage(coords[0], pk, pk2), 5);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryInvalidProofOfPossession.selector, coords[0]
            )
        );
        shards.registerBlsKey(pk, pk2, pop);
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
        uint256[2] memory attempt = _sign(shards.blsPopMessage(coords[0], pk, pk2), attacker);
        vm.prank(coords[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IModelShardRegistry.ModelShardRegistryInvalidProofOfPossession.selector, coords[0]
            )
        );
        shards.registerBlsKey(pk, pk2, attempt);
    }

    function test_RevertWhen_keyIsInfinityOrOffCurve() public {
        uint256[4] memory pk2 = _g2Of(5);
        uint256[2] memory pop = _sign(keccak256("x"), 5);
        vm.startPrank(coords[0]);
        vm.expectRevert(IModelShardRegistry.ModelShardRegistryInvalidBlsKey.selector);
        shards.registerBlsKey([uint256(0), 0], pk2, pop);
        vm.expectRevert(IModelShardRegistry.ModelShardRegistryInvalidBlsKey.selector);
        shards.registerBlsKey([uint256(1), 3], pk2, pop);
        vm.stopPrank();
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
                    keccak256("autonet.bls.attestation.v1"),
                    block.chainid,
                    address(shards),
                    projectId,
                    GENESIS_ROOT,
                    NEW_ROOT,
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
                IModelShardRegistry.ModelShardRegistryInvalidAggregateSignature.selector, NEW_ROOT
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
                IModelShardRegistry.ModelShardRegistryInvalidAggregateSignature.selector, NEW_ROOT
            )
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
    }

    function test_RevertWhen_aSignerIsNoLongerACoordinator() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        vm.prank(coords[1]);
        staking.requestUnbond(1000e18);
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), _all());
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryStaleSigner.selector, 1, coords[1])
        );
        shards.attestModelBls(NEW_ROOT, _all(), apk2, sigma);
    }

    function test_RevertWhen_signerBitmapIsEmptyOrUnregistered() public {
        _registerAll();
        _publish(_fullRound(_agreeingRows()));
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), _all());
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidSigners.selector, 0, 3)
        );
        shards.attestModelBls(NEW_ROOT, 0, apk2, sigma);
        vm.expectRevert(
            abi.encodeWithSelector(IModelShardRegistry.ModelShardRegistryInvalidSigners.selector, 0xf, 3)
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

    // ------------------------------------------------------------------ gas: per-coordinator vs one aggregate

    function _cool() internal {
        vm.cool(address(staking));
        vm.cool(address(project));
        vm.cool(address(rewards));
        vm.cool(address(shards));
        vm.cool(address(token));
    }

    /// @dev Gas (execution + 21000 intrinsic per transaction, cold storage per transaction) to take a published
    ///      model to Accepted: with per-coordinator `attestModel` until 2/3 of the stake attested, or with one
    ///      `attestModelBls` carrying every coordinator's signature.
    function _compare(uint256 n) internal returns (uint256 perCoordinator, uint256 bls) {
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
            shards.attestModel(NEW_ROOT);
            perCoordinator += g - gasleft() + 21_000;
        }
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));

        vm.revertToState(snap);
        _publish(taskId);
        uint256 signers = n == 256 ? type(uint256).max : (uint256(1) << n) - 1;
        (uint256[4] memory apk2, uint256[2] memory sigma) =
            _aggregate(shards.blsAttestationMessage(NEW_ROOT), signers);
        _cool();
        uint256 g0 = gasleft();
        shards.attestModelBls(NEW_ROOT, signers, apk2, sigma);
        bls = g0 - gasleft() + 21_000;
        assertEq(uint8(shards.modelStatus(NEW_ROOT)), uint8(ModelStatus.Accepted));
    }

    function test_gas_attestationCost_3_coordinators() public {
        (uint256 per, uint256 bls) = _compare(3);
        console2.log("3 coordinators: per-coordinator attestations", per, "one BLS aggregate", bls);
        vm.snapshotValue("attest_perCoordinator_3", per);
        vm.snapshotValue("attest_bls_3", bls);
    }

    function test_gas_attestationCost_10_coordinators() public {
        (uint256 per, uint256 bls) = _compare(10);
        console2.log("10 coordinators: per-coordinator attestations", per, "one BLS aggregate", bls);
        vm.snapshotValue("attest_perCoordinator_10", per);
        vm.snapshotValue("attest_bls_10", bls);
    }

    function test_gas_attestationCost_32_coordinators() public {
        (uint256 per, uint256 bls) = _compare(32);
        console2.log("32 coordinators: per-coordinator attestations", per, "one BLS aggregate", bls);
        vm.snapshotValue("attest_perCoordinator_32", per);
        vm.snapshotValue("attest_bls_32", bls);
        assertLt(bls * 2, per, "one aggregate must cost under half of the attestations it replaces");
    }
}
