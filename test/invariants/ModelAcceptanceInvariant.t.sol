// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {ATNToken} from "../../contracts/ATNToken.sol";
import {ParticipantStaking} from "../../contracts/ParticipantStaking.sol";
import {Project} from "../../contracts/Project.sol";
import {ModelShardRegistry} from "../../contracts/ModelShardRegistry.sol";
import {BlsSignerRegistry} from "../../contracts/BlsSignerRegistry.sol";
import {BN254} from "../../contracts/libraries/BN254.sol";
import {Role} from "../../contracts/interfaces/IParticipantStaking.sol";
import {IModelShardRegistry, ModelStatus} from "../../contracts/interfaces/IModelShardRegistry.sol";
import {ShardFixture} from "../utils/ShardFixture.sol";

/// @dev Bounded actions around model acceptance: three aggregators publish competing models on the current head
///      (one of them squats roots with a bogus manifest), honest coordinators attest one by one or sign one BLS
///      aggregate (only for the real manifest), and coordinators unbond, withdraw and restake in between; models
///      expire. At the moment a model is accepted the handler records whether the stake bonded then by its
///      attesters (or signers) that are active Coordinators reached 2/3 of the coordinator stake.
contract ModelAcceptanceHandler is Test {
    uint256 internal constant N_COORDS = 6;

    ATNToken public token;
    ParticipantStaking public staking;
    Project public project;
    ModelShardRegistry public reg;
    BlsSignerRegistry public signers;
    uint256 public pid;
    bytes32 public genesis;
    address[3] public aggregators; // the last one squats with bogus manifests
    address[] public coordinators; // coordinator i holds BLS secret key i + 1
    string internal g2Table;

    bytes32[] public roots; // every root ever published
    mapping(bytes32 root => bool) internal _seen;
    bytes32[] public accepted; // ghost: accepted roots in acceptance order
    uint256 public ghostUnderBacked; // acceptances with less than 2/3 of the bonded stake behind them
    uint256 public ghostBogusAccepted; // acceptances of a record whose manifest no honest coordinator checked
    uint256 public ghostUnslashedExpiries; // Expired records whose publisher kept stake it should have lost
    uint256 public ghostExpired;
    uint256 public ghostRepublished; // records published again on a root whose record died

    constructor(
        ParticipantStaking staking_,
        Project project_,
        ModelShardRegistry reg_,
        BlsSignerRegistry signers_,
        ATNToken token_,
        uint256 pid_,
        address[3] memory aggregators_,
        address[] memory coordinators_
    ) {
        staking = staking_;
        project = project_;
        reg = reg_;
        signers = signers_;
        token = token_;
        pid = pid_;
        genesis = project_.modelRoot(pid_);
        aggregators = aggregators_;
        coordinators = coordinators_;
        g2Table = vm.readFile("./test/vectors/bls/g2_multiples.json");
    }

    function rootCount() external view returns (uint256) {
        return roots.length;
    }

    function acceptedCount() external view returns (uint256) {
        return accepted.length;
    }

    function realManifest(bytes32 root) public pure returns (bytes32) {
        return keccak256(abi.encode("manifest", root));
    }

    // ------------------------------------------------------------------ publishing

    /// @dev One of three candidate roots on the current head (so that publishers collide), by one of the three
    ///      aggregators; the squatter publishes a bogus manifest.
    function publish(uint256 publisherSeed, uint256 variant) external {
        uint256 who = publisherSeed % 3;
        bytes32 head = project.modelRoot(pid);
        bytes32 root = keccak256(abi.encode(head, variant % 3));
        IModelShardRegistry.ModelManifest memory mf = IModelShardRegistry.ModelManifest({
            projectId: pid,
            root: root,
            manifestHash: who == 2 ? keccak256(abi.encode("bogus", root)) : realManifest(root),
            parentRoot: head,
            totalSize: 1000,
            shardSize: 100,
            dataShards: 10,
            parityShards: 4
        });
        IModelShardRegistry.Model memory before = reg.getModel(root);
        uint256 stakeBefore = staking.stakeOf(before.publisher);
        uint256[] memory ids = new uint256[](1);
        ids[0] = roots.length + 1;
        vm.prank(aggregators[who]);
        try reg.publishModel(mf, ids) {
            if (before.status != ModelStatus.None) ++ghostRepublished;
            if (before.status == ModelStatus.Pending) _checkExpiry(before, stakeBefore);
            if (!_seen[root]) {
                _seen[root] = true;
                roots.push(root);
            }
        } catch {}
    }

    function expire(uint256 rootSeed) external {
        if (roots.length == 0) return;
        bytes32 root = roots[rootSeed % roots.length];
        IModelShardRegistry.Model memory before = reg.getModel(root);
        uint256 stakeBefore = staking.stakeOf(before.publisher);
        try reg.expireModel(root) {
            _checkExpiry(before, stakeBefore);
        } catch {}
    }

    /// @dev After a Pending record `before` died: Expired means its publisher lost `publisherSlash` (or all it
    ///      had); Superseded means the project had moved on.
    function _checkExpiry(IModelShardRegistry.Model memory before, uint256 stakeBefore) internal {
        // the record was replaced by the publication above or ended by expireModel: read the outcome back from
        // the head: if the parent is still the head, it expired with a slash
        if (project.modelRoot(pid) != before.manifest.parentRoot) return;
        ++ghostExpired;
        uint256 slash = reg.publisherSlash();
        uint256 want = stakeBefore < slash ? 0 : stakeBefore - slash;
        // the publisher may also have lost stake in the same publication (if it published again itself)
        if (staking.stakeOf(before.publisher) > want) ++ghostUnslashedExpiries;
    }

    // ------------------------------------------------------------------ attesting

    /// @dev A Pending record with the real manifest, searched from `rootSeed` (zero when none).
    function _pendingReal(uint256 rootSeed)
        internal
        view
        returns (bytes32 root, IModelShardRegistry.Model memory m)
    {
        uint256 n = roots.length;
        if (n != 0) rootSeed %= n;
        for (uint256 j; j < n; ++j) {
            root = roots[(rootSeed + j) % n];
            m = reg.getModel(root);
            if (m.status == ModelStatus.Pending && m.manifest.manifestHash == realManifest(root)) {
                return (root, m);
            }
        }
        root = bytes32(0);
    }

    /// @dev Honest coordinator `coordSeed` attests a pending record, only when its manifest is the real one.
    function attest(uint256 coordSeed, uint256 rootSeed) external {
        (bytes32 root, IModelShardRegistry.Model memory m) = _pendingReal(rootSeed);
        if (root == bytes32(0)) return;
        address c = coordinators[coordSeed % coordinators.length];
        vm.prank(c);
        try reg.attestModel(root, m.manifest.manifestHash, m.publisher) {
            if (reg.modelStatus(root) == ModelStatus.Accepted) {
                _recordAcceptance(root, reg.attestersOf(root));
            }
        } catch {}
    }

    /// @dev Every counted signer but at most one (picked by `mask`) signs one aggregate of the record's message
    ///      (real manifest only).
    function attestBls(uint256 mask, uint256 rootSeed) external {
        (bytes32 root,) = _pendingReal(rootSeed);
        if (root == bytes32(0)) return;
        (,, uint256 active) = signers.blsAggregate();
        uint256 absent = mask % 3 == 0 ? 0 : uint256(1) << (mask % N_COORDS);
        uint256 bitmap = active & ~absent & ((1 << N_COORDS) - 1);
        if (bitmap == 0) return;
        uint256 skSum;
        uint256 n;
        address[] memory who = new address[](N_COORDS);
        for (uint256 i; i < N_COORDS; ++i) {
            if ((bitmap >> i) & 1 == 0) continue;
            skSum += i + 1;
            who[n++] = coordinators[i];
        }
        assembly ("memory-safe") {
            mstore(who, n)
        }
        bytes32 message = reg.blsAttestationMessage(root);
        uint256[] memory v =
            vm.parseJsonUintArray(g2Table, string.concat(".g2[", vm.toString(skSum - 1), "]"));
        BN254.G1Point memory sigma = BN254.scalarMul(BN254.hashToG1(message), skSum);
        try reg.attestModelBls(root, bitmap, [v[0], v[1], v[2], v[3]], [sigma.X, sigma.Y]) {
            if (reg.modelStatus(root) == ModelStatus.Accepted) _recordAcceptance(root, who);
        } catch {}
    }

    /// @dev The invariant's measurement, taken right after the accepting call (nothing moved stake since).
    function _recordAcceptance(bytes32 root, address[] memory backers) internal {
        accepted.push(root);
        uint256 backing;
        for (uint256 i; i < backers.length; ++i) {
            if (staking.isActive(backers[i], Role.Coordinator)) backing += staking.stakeOf(backers[i]);
        }
        if (backing * 3 < staking.totalStake(Role.Coordinator) * 2) ++ghostUnderBacked;
        if (reg.getModel(root).manifest.manifestHash != realManifest(root)) ++ghostBogusAccepted;
    }

    // ------------------------------------------------------------------ stake moves

    function unbond(uint256 coordSeed, uint256 amount) external {
        address c = coordinators[coordSeed % coordinators.length];
        uint256 bonded = staking.stakeOf(c);
        if (bonded == 0 || staking.pendingUnbonds(c).length >= staking.MAX_PENDING_UNBONDS()) return;
        amount = bound(amount, 1, bonded);
        vm.prank(c);
        staking.requestUnbond(amount);
    }

    function withdraw(uint256 coordSeed) external {
        address c = coordinators[coordSeed % coordinators.length];
        vm.warp(block.timestamp + 15 days);
        vm.prank(c);
        try staking.withdrawUnbonded() {} catch {}
    }

    function restake(uint256 coordSeed, uint256 amount) external {
        address c = coordinators[coordSeed % coordinators.length];
        Role role = staking.roleOf(c);
        if (role != Role.None && role != Role.Coordinator) return;
        uint256 bonded = staking.stakeOf(c);
        uint256 min = staking.minStake(Role.Coordinator);
        uint256 lo = bonded >= min ? 1 : min - bonded;
        amount = bound(amount, lo, lo + 2_000e18);
        if (token.balanceOf(c) < amount) return;
        vm.prank(c);
        staking.stake(Role.Coordinator, amount);
    }

    function roll(uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 1, 25));
    }
}

/// @notice Model acceptance under attestations, unbonding, restaking, competing publishers, squatting and
///         expiry: an accepted model always had >= 2/3 of the bonded coordinator stake behind it at acceptance,
///         only real manifests are accepted, accepted models form a chain whose roots never come back, and every
///         model that expired on the project's head cost its publisher `publisherSlash`.
contract ModelAcceptanceInvariantTest is ShardFixture {
    ModelAcceptanceHandler internal handler;

    function setUp() public {
        _deploy();
        vm.prank(admin);
        reg.setModelExpiry(60);
        address squatter = makeAddr("squatter");
        address[3] memory aggs = [agg, agg2, squatter];
        for (uint256 i; i < 3; ++i) {
            _stake(aggs[i], Role.Aggregator, 5_000e18); // enough for many expiry slashes
        }
        address[] memory cs = new address[](6);
        string memory g2Table = vm.readFile("./test/vectors/bls/g2_multiples.json");
        for (uint256 i; i < cs.length; ++i) {
            cs[i] = makeAddr(string.concat("coord", vm.toString(i)));
            _stake(cs[i], Role.Coordinator, 500e18 + i * 150e18);
            vm.prank(admin);
            assertTrue(token.transfer(cs[i], 50_000e18));
            vm.prank(cs[i]);
            token.approve(address(staking), type(uint256).max);
            _registerBls(cs[i], i + 1, g2Table);
        }
        handler = new ModelAcceptanceHandler(staking, project, reg, signers, token, pid, aggs, cs);
        targetContract(address(handler));
    }

    function _registerBls(address who, uint256 sk, string memory g2Table) internal {
        BN254.G1Point memory p = BN254.scalarMul(BN254.generatorG1(), sk);
        uint256[2] memory pk = [p.X, p.Y];
        uint256[] memory v = vm.parseJsonUintArray(g2Table, string.concat(".g2[", vm.toString(sk - 1), "]"));
        uint256[4] memory pk2 = [v[0], v[1], v[2], v[3]];
        BN254.G1Point memory pop = BN254.scalarMul(BN254.hashToG1(signers.blsPopMessage(who, pk, pk2)), sk);
        vm.prank(who);
        signers.registerBlsKey(pk, pk2, [pop.X, pop.Y]);
    }

    /// @notice At acceptance, the attesters (or signers) still active as Coordinators had bonded >= 2/3 of all
    ///         coordinator stake, and the accepted record carried the manifest they checked.
    function invariant_acceptedModelsHadTwoThirdsOfBondedStake() public view {
        assertEq(handler.ghostUnderBacked(), 0, "a model was accepted with less than 2/3 bonded behind it");
        assertEq(handler.ghostBogusAccepted(), 0, "a squatted record was accepted");
    }

    /// @notice Accepted models form a chain from the genesis root; no root is accepted twice; the genesis and
    ///         every accepted root are used for good; the project's head is the last accepted model.
    function invariant_acceptedRootsFormAChainAndNeverComeBack() public view {
        uint256 n = handler.acceptedCount();
        bytes32 prev = GENESIS;
        for (uint256 j; j < n; ++j) {
            bytes32 root = handler.accepted(j);
            IModelShardRegistry.Model memory m = reg.getModel(root);
            assertEq(uint8(m.status), uint8(ModelStatus.Accepted), "accepted record replaced");
            assertEq(m.manifest.parentRoot, prev, "not built on the previous model");
            assertTrue(reg.isRootUsed(root), "accepted root not used");
            for (uint256 i; i < j; ++i) {
                assertTrue(handler.accepted(i) != root, "root accepted twice");
            }
            prev = root;
        }
        assertEq(project.modelRoot(pid), prev, "project head");
        assertEq(reg.modelCount(pid), n, "versions");
        assertEq(reg.isRootUsed(GENESIS), n != 0, "genesis used once a model was accepted");
    }

    /// @notice A model that expired while its parent was the project's head cost its publisher the slash;
    ///         pending records are never past their window in a way that blocks their root.
    function invariant_expiredPublishersPaid() public view {
        assertEq(handler.ghostUnslashedExpiries(), 0, "an expired publisher kept its stake");
    }
}
