// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {Project} from "../../contracts/Project.sol";
import {ParticipantStaking} from "../../contracts/ParticipantStaking.sol";
import {ModelShardRegistry} from "../../contracts/ModelShardRegistry.sol";
import {ShardProviders} from "../../contracts/ShardProviders.sol";
import {Role} from "../../contracts/interfaces/IParticipantStaking.sol";
import {IModelShardRegistry, ModelStatus} from "../../contracts/interfaces/IModelShardRegistry.sol";
import {IShardProviders, ChallengeStatus} from "../../contracts/interfaces/IShardProviders.sol";
import {ShardFixture, ShardMerkle} from "../utils/ShardFixture.sol";

/// @notice Bounded random actions on one project: publish, attest, announce, withdraw, challenge, respond,
///         expire. Ghost state records the order of accepted models and the challenge outcomes. The publisher is a
///         provider too, so every accepted model is held by its publisher without an announcement (holding by
///         acceptance), which it can give up or lose to a failed challenge.
contract ShardHandler is Test {
    uint256 internal constant MAX_MODELS = 12;

    ModelShardRegistry public reg;
    ShardProviders public prov;
    Project public project;
    uint256 public pid;
    address public agg;
    address[] public coordinators;
    address[] public providers;

    bytes32[] public roots;
    mapping(bytes32 root => uint256) public shardCount;
    mapping(bytes32 root => uint256) public seedOf;

    bytes32[] public acceptedRoots; // ghost: accepted models in acceptance order
    uint256[] public challengeIds;
    uint256 public ghostPassed;
    uint256 public ghostFailed;
    uint256 public ghostSuperseded;
    uint256 public ghostUnbondedPastLock; // unbonds that left a provider holding shards below the minimum
    mapping(address provider => bool) public everSlashed; // a failed challenge took stake from it
    // holdings by acceptance given up (withdrawAccepted) or lost (failed challenge)
    mapping(bytes32 root => mapping(address provider => bool)) public acceptDropped;

    constructor(
        ModelShardRegistry reg_,
        ShardProviders prov_,
        Project project_,
        uint256 pid_,
        address agg_,
        address[] memory coordinators_,
        address[] memory providers_
    ) {
        reg = reg_;
        prov = prov_;
        project = project_;
        pid = pid_;
        agg = agg_;
        coordinators = coordinators_;
        providers = providers_;
    }

    // ------------------------------------------------------------------ views for the invariants

    function rootCount() external view returns (uint256) {
        return roots.length;
    }

    function acceptedCount() external view returns (uint256) {
        return acceptedRoots.length;
    }

    function providerCount() external view returns (uint256) {
        return providers.length;
    }

    // ------------------------------------------------------------------ actions

    function publish(uint256 seed, uint256 n, uint256 kSeed) external {
        if (roots.length >= MAX_MODELS) return;
        n = bound(n, 1, 20);
        uint256 k = bound(kSeed, 1, n);
        bytes32[] memory h = ShardMerkle.shardHashes(n, seed);
        bytes32 root = ShardMerkle.root(h);
        if (reg.modelStatus(root) != ModelStatus.None) return;
        bytes32 parent = project.modelRoot(pid);
        if (root == parent) return;
        // keep at most two rival Pending models on the current head so that the chain keeps growing
        uint256 rivals;
        for (uint256 r; r < roots.length; ++r) {
            IModelShardRegistry.Model memory other = reg.getModel(roots[r]);
            if (other.status == ModelStatus.Pending && other.manifest.parentRoot == parent) ++rivals;
        }
        if (rivals >= 2) return;
        IModelShardRegistry.ModelManifest memory mf = IModelShardRegistry.ModelManifest({
            projectId: pid,
            root: root,
            manifestHash: keccak256(abi.encode(seed)),
            parentRoot: parent,
            totalSize: uint64(k) * 4096,
            shardSize: 4096,
            dataShards: uint8(k),
            parityShards: uint8(n - k)
        });
        uint256[] memory ids = new uint256[](1);
        ids[0] = roots.length + 1;
        vm.prank(agg);
        reg.publishModel(mf, ids);
        roots.push(root);
        shardCount[root] = n;
        seedOf[root] = seed;
    }

    /// @dev Attests the oldest Pending model (so models get accepted and later ones superseded), or with
    ///      `rootSeed` odd a random Pending one.
    function attest(uint256 rootSeed, uint256 coordSeed) external {
        uint256 nRoots = roots.length;
        if (nRoots == 0) return;
        uint256 start = rootSeed % 2 == 0 ? 0 : rootSeed % nRoots;
        coordSeed %= coordinators.length;
        for (uint256 r; r < nRoots; ++r) {
            bytes32 root = roots[(start + r) % nRoots];
            if (reg.modelStatus(root) != ModelStatus.Pending) continue;
            for (uint256 j; j < coordinators.length; ++j) {
                address c = coordinators[(coordSeed + j) % coordinators.length];
                if (reg.hasAttested(root, c)) continue;
                IModelShardRegistry.Model memory m = reg.getModel(root);
                if (block.number > m.expiresAt) continue;
                vm.prank(c);
                reg.attestModel(root, m.manifest.manifestHash, m.publisher);
                ModelStatus s = reg.modelStatus(root);
                if (s == ModelStatus.Accepted) acceptedRoots.push(root);
                if (s == ModelStatus.Superseded) ++ghostSuperseded;
                return;
            }
        }
    }

    function announce(uint256 rootSeed, uint256 provSeed, uint256 bitmap) external {
        if (roots.length == 0) return;
        bytes32 root = roots[rootSeed % roots.length];
        uint256 n = shardCount[root];
        bitmap &= (uint256(1) << n) - 1;
        if (bitmap == 0) return;
        vm.prank(providers[provSeed % providers.length]);
        prov.announceShards(root, bitmap);
    }

    function withdraw(uint256 rootSeed, uint256 provSeed, uint256 bitmap) external {
        if (roots.length == 0) return;
        bytes32 root = roots[rootSeed % roots.length];
        address p = providers[provSeed % providers.length];
        bitmap &= prov.announcedOf(root, p);
        if (bitmap == 0 || prov.openChallengeOf(root, p) != 0) return;
        vm.prank(p);
        prov.withdrawShards(root, bitmap);
    }

    function withdrawAccepted(uint256 rootSeed, uint256 provSeed) external {
        if (roots.length == 0) return;
        bytes32 root = roots[rootSeed % roots.length];
        address p = providers[provSeed % providers.length];
        vm.prank(p);
        try prov.withdrawAccepted(root) {
            acceptDropped[root][p] = true;
        } catch {}
    }

    /// @dev Whether `p` has a challenge open on any root.
    function hasOpenChallenge(address p) public view returns (bool) {
        for (uint256 r; r < roots.length; ++r) {
            if (prov.openChallengeOf(roots[r], p) != 0) return true;
        }
        return false;
    }

    function challenge(uint256 rootSeed, uint256 provSeed, uint256 coordSeed) external {
        uint256 nRoots = roots.length;
        uint256 nProv = providers.length;
        if (nRoots == 0) return;
        rootSeed %= nRoots;
        provSeed %= nProv;
        for (uint256 t; t < nRoots * nProv; ++t) {
            bytes32 root = roots[(rootSeed + t / nProv) % nRoots];
            address p = providers[(provSeed + t) % nProv];
            if (prov.shardsOf(root, p) == 0 || prov.openChallengeOf(root, p) != 0) continue;
            vm.prank(coordinators[coordSeed % coordinators.length]);
            challengeIds.push(prov.challenge(root, p));
            return;
        }
    }

    function respond(uint256 idSeed) external {
        if (challengeIds.length == 0) return;
        uint256 id = challengeIds[idSeed % challengeIds.length];
        IShardProviders.Challenge memory c = prov.getChallenge(id);
        if (c.status != ChallengeStatus.Open || block.number > c.deadline) return;
        bytes32[] memory h = ShardMerkle.shardHashes(shardCount[c.root], seedOf[c.root]);
        vm.prank(c.provider);
        prov.respondChallenge(id, h[c.index], ShardMerkle.proof(h, c.index));
        ++ghostPassed;
    }

    function expire(uint256 idSeed) external {
        if (challengeIds.length == 0) return;
        uint256 id = challengeIds[idSeed % challengeIds.length];
        IShardProviders.Challenge memory c = prov.getChallenge(id);
        if (c.status != ChallengeStatus.Open || block.number <= c.deadline) return;
        acceptDropped[c.root][c.provider] = true; // a failure ends any holding by acceptance, lapsed or not
        prov.expireChallenge(id);
        ++ghostFailed;
        everSlashed[c.provider] = true;
    }

    /// @dev A provider lets part of its stake go: half of the tries stay within what the stake lock allows, the
    ///      others ask for anything up to all of it (refused below the lock while it announces shards).
    function unbondProvider(uint256 provSeed, uint256 amount) external {
        address p = providers[provSeed % providers.length];
        ParticipantStaking staking = ParticipantStaking(address(prov.staking()));
        uint256 bonded = staking.stakeOf(p);
        if (bonded == 0) return;
        bool holds = prov.getProvider(p).rootsHeld != 0 || hasOpenChallenge(p);
        uint256 min = prov.minProviderStake();
        if (amount % 2 == 0 && holds && bonded > min) amount = bound(amount, 1, bonded - min);
        else amount = bound(amount, 1, bonded);
        vm.prank(p);
        try staking.requestUnbond(amount) {
            if (holds && bonded - amount < min) ++ghostUnbondedPastLock;
        } catch {}
    }

    function evict(uint256 rootSeed, uint256 provSeed) external {
        if (roots.length == 0) return;
        bytes32 root = roots[rootSeed % roots.length];
        try prov.evictUnbacked(root, providers[provSeed % providers.length]) {} catch {}
    }

    /// @dev Anyone involved claims its credited bonds.
    function claim(uint256 seed) external {
        address who =
            seed % 2 == 0 ? providers[seed % providers.length] : coordinators[seed % coordinators.length];
        if (prov.claimable(who) == 0) return;
        vm.prank(who);
        prov.claim();
    }

    function claimants() external view returns (address[] memory all) {
        all = new address[](providers.length + coordinators.length);
        for (uint256 i; i < providers.length; ++i) {
            all[i] = providers[i];
        }
        for (uint256 i; i < coordinators.length; ++i) {
            all[providers.length + i] = coordinators[i];
        }
    }

    function challengeCount() external view returns (uint256) {
        return challengeIds.length;
    }

    function roll(uint256 blocks) external {
        vm.roll(block.number + bound(blocks, 1, 60));
    }
}

contract ShardInvariantTest is ShardFixture {
    ShardHandler internal handler;

    function setUp() public {
        _deploy();
        vm.prank(admin);
        prov.setChallengeWindow(50);
        _stake(agg, Role.Aggregator, 1000e18);
        address[] memory cs = new address[](3);
        cs[0] = c1;
        cs[1] = c2;
        cs[2] = c3;
        _stake(c1, Role.Coordinator, 500e18);
        _stake(c2, Role.Coordinator, 700e18);
        _stake(c3, Role.Coordinator, 900e18);
        address[] memory ps = new address[](4);
        ps[0] = p1;
        ps[1] = p2;
        ps[2] = makeAddr("provider3");
        for (uint256 i; i < 3; ++i) {
            _stake(ps[i], Role.Solver, 1000e18); // enough for many slashes
            vm.prank(ps[i]);
            prov.registerProvider("https://provider.example");
        }
        // The publisher serves shards too: it holds every model it published once accepted.
        ps[3] = agg;
        vm.prank(agg);
        prov.registerProvider("https://aggregator.example");
        for (uint256 i; i < 3; ++i) {
            vm.prank(admin);
            assertTrue(token.transfer(cs[i], 10_000e18));
            vm.prank(cs[i]);
            token.approve(address(prov), type(uint256).max);
        }
        handler = new ShardHandler(reg, prov, project, pid, agg, cs, ps);
        targetContract(address(handler));
    }

    /// @notice availability == number of indices with >= 1 holder; holder lists, holder counts and bitmaps agree.
    function invariant_availabilityMatchesHolders() public view {
        uint256 nRoots = handler.rootCount();
        uint256 nProviders = handler.providerCount();
        for (uint256 r; r < nRoots; ++r) {
            bytes32 root = handler.roots(r);
            uint256 n = handler.shardCount(root);
            uint256 withHolder;
            for (uint256 i; i < n; ++i) {
                address[] memory holders = prov.providersOf(root, i);
                if (holders.length != 0) ++withHolder;
                uint256 expected;
                for (uint256 p; p < nProviders; ++p) {
                    if ((prov.shardsOf(root, handler.providers(p)) >> i) & 1 == 1) ++expected;
                }
                assertEq(holders.length, expected, "holder list != bitmaps");
                for (uint256 h; h < holders.length; ++h) {
                    assertEq((prov.shardsOf(root, holders[h]) >> i) & 1, 1, "listed holder without bit");
                }
            }
            // The root's holder list names exactly the providers with a bit set, each once.
            address[] memory listed = prov.holdersOf(root);
            uint256 withBits;
            for (uint256 p; p < nProviders; ++p) {
                address who = handler.providers(p);
                uint256 seen;
                for (uint256 h; h < listed.length; ++h) {
                    if (listed[h] == who) ++seen;
                }
                assertEq(seen, prov.shardsOf(root, who) != 0 ? 1 : 0, "root holder list != bitmaps");
                if (seen != 0) ++withBits;
            }
            assertEq(listed.length, withBits, "root holder list names a stranger");
            (uint256 avail, bool ok) = prov.availability(root);
            assertEq(avail, withHolder, "availability count");
            assertEq(ok, avail >= reg.getModel(root).manifest.dataShards, "recoverable flag");
        }
    }

    /// @notice Accepted models form a chain from the genesis root, and the project's head is the last one.
    function invariant_acceptedModelsFormAChain() public view {
        uint256 n = handler.acceptedCount();
        bytes32 prev = GENESIS;
        for (uint256 j; j < n; ++j) {
            bytes32 root = handler.acceptedRoots(j);
            IModelShardRegistry.Model memory m = reg.getModel(root);
            assertEq(uint8(m.status), uint8(ModelStatus.Accepted));
            assertEq(m.manifest.parentRoot, prev, "accepted model not built on the previous one");
            prev = root;
        }
        assertEq(project.modelRoot(pid), prev, "project head");
        assertEq(reg.modelCount(pid), n, "version count");
        assertEq(reg.latestAccepted(pid), n == 0 ? bytes32(0) : prev, "latest accepted");
    }

    /// @notice rootsHeld counts the roots with a non-empty announced bitmap; open challenges are consistent (the
    ///         challenged shard is held, announced or by acceptance, unless a slash took the provider's stake below
    ///         the minimum, which lapses a holding by acceptance); the provider counters equal the ghost outcomes.
    function invariant_providerAndChallengeBookkeeping() public view {
        uint256 nRoots = handler.rootCount();
        uint256 successes;
        uint256 failures;
        for (uint256 p; p < handler.providerCount(); ++p) {
            address provider = handler.providers(p);
            uint256 held;
            for (uint256 r; r < nRoots; ++r) {
                bytes32 root = handler.roots(r);
                if (prov.announcedOf(root, provider) != 0) ++held;
                uint256 open = prov.openChallengeOf(root, provider);
                if (open != 0) {
                    IShardProviders.Challenge memory c = prov.getChallenge(open);
                    assertEq(uint8(c.status), uint8(ChallengeStatus.Open));
                    assertEq(c.provider, provider);
                    assertEq(c.root, root);
                    // Held, announced or by acceptance; or a holding by acceptance that lapsed while the challenge
                    // is open because a slash (another failed challenge) took the stake below the minimum: no lock
                    // can stop a slash, and the challenge stays answerable (`respondChallenge` does not ask).
                    if ((prov.shardsOf(root, provider) >> c.index) & 1 == 0) {
                        assertLt(
                            ParticipantStaking(address(prov.staking())).stakeOf(provider),
                            prov.minProviderStake(),
                            "challenged shard not held by a backed provider"
                        );
                        assertEq(prov.announcedOf(root, provider), 0, "announced shards cannot lapse");
                    }
                }
            }
            IShardProviders.Provider memory info = prov.getProvider(provider);
            assertEq(info.rootsHeld, held, "rootsHeld");
            successes += info.successes;
            failures += info.failures;
        }
        assertEq(successes, handler.ghostPassed(), "successes");
        assertEq(failures, handler.ghostFailed(), "failures");
    }

    /// @notice Review finding M-4: the providers contract holds exactly the bonds of open challenges plus the
    ///         credited, unclaimed bonds (a challenger's bond goes to the provider on a pass, back on a failure).
    function invariant_bondsAreEscrowedOrClaimable() public view {
        uint256 open;
        for (uint256 i; i < handler.challengeCount(); ++i) {
            IShardProviders.Challenge memory c = prov.getChallenge(handler.challengeIds(i));
            if (c.status == ChallengeStatus.Open) open += c.bond;
        }
        uint256 credited;
        address[] memory all = handler.claimants();
        for (uint256 i; i < all.length; ++i) {
            credited += prov.claimable(all[i]);
        }
        assertEq(token.balanceOf(address(prov)), open + credited, "bonds escrowed or claimable");
    }

    /// @notice Every provider announcing shards is an active provider, also after unbonds, evictions and failed
    ///         challenges.
    function invariant_holdersAreActiveProviders() public view {
        for (uint256 r; r < handler.rootCount(); ++r) {
            bytes32 root = handler.roots(r);
            for (uint256 p; p < handler.providerCount(); ++p) {
                address provider = handler.providers(p);
                if (prov.shardsOf(root, provider) == 0) continue;
                assertTrue(prov.getProvider(provider).active, "holder not an active provider");
            }
        }
    }

    /// @notice Review finding M-4, the stake lock: no unbond request ever left a provider announcing shards with
    ///         less than `minProviderStake()` bonded, so every holder keeps at least the minimum unless a failed
    ///         challenge slashed it (the minimum is not changed in this suite; a raised one is covered by
    ///         `test_M4_providerWhoseStakeLeftIsEvicted`).
    function invariant_M4_holdersKeepTheMinimumBonded() public view {
        assertEq(handler.ghostUnbondedPastLock(), 0, "unbonded past the stake lock");
        uint256 min = prov.minProviderStake();
        for (uint256 p; p < handler.providerCount(); ++p) {
            address provider = handler.providers(p);
            if (prov.getProvider(provider).rootsHeld == 0 && !handler.hasOpenChallenge(provider)) {
                assertEq(prov.lockedStake(provider, staking.roleOf(provider)), 0, "lock without shards");
                continue;
            }
            assertEq(prov.lockedStake(provider, staking.roleOf(provider)), min, "holder or challenged not locked");
            if (!handler.everSlashed(provider)) {
                assertGe(staking.stakeOf(provider), min, "holder below minimum");
            }
        }
    }

    /// @notice Holding by acceptance: what a provider holds of a root is what it announced, plus every shard
    ///         exactly while the root is Accepted with it as the publisher, it is an active provider with the
    ///         minimum bonded, and it has not given the holding up or lost it to a failed challenge.
    function invariant_acceptedPublisherHoldsEveryShard() public view {
        uint256 min = prov.minProviderStake();
        for (uint256 r; r < handler.rootCount(); ++r) {
            bytes32 root = handler.roots(r);
            IModelShardRegistry.Model memory m = reg.getModel(root);
            uint256 full = (uint256(1) << handler.shardCount(root)) - 1;
            (address publisher,,) = reg.acceptedHoldersOf(root);
            assertEq(publisher, m.status == ModelStatus.Accepted ? m.publisher : address(0), "accepted holders");
            for (uint256 p; p < handler.providerCount(); ++p) {
                address provider = handler.providers(p);
                bool byAcceptance = publisher == provider && !handler.acceptDropped(root, provider)
                    && prov.getProvider(provider).active && staking.stakeOf(provider) >= min;
                assertEq(
                    prov.shardsOf(root, provider),
                    prov.announcedOf(root, provider) | (byAcceptance ? full : 0),
                    "held = announced + by acceptance"
                );
            }
        }
    }
}
