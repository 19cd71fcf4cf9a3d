// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {ShardProviders} from "../contracts/ShardProviders.sol";
import {IParticipantStaking, Role} from "../contracts/interfaces/IParticipantStaking.sol";
import {IModelShardRegistry} from "../contracts/interfaces/IModelShardRegistry.sol";
import {IShardProviders, ChallengeStatus} from "../contracts/interfaces/IShardProviders.sol";
import {IStakeLocker} from "../contracts/interfaces/IStakeLocker.sol";
import {ShardFixture, ShardMerkle} from "./utils/ShardFixture.sol";

/// @notice Storage providers, shard announcements, availability and challenges.
contract ShardProvidersTest is ShardFixture {
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
        // Challengers escrow bonds in ATN.
        _fundBonds(c1);
        _fundBonds(c2);
    }

    function _fundBonds(address who) internal {
        vm.prank(admin);
        assertTrue(token.transfer(who, 100e18));
        vm.prank(who);
        token.approve(address(prov), type(uint256).max);
    }

    // ------------------------------------------------------------------ helpers

    function _publish14() internal {
        _publish(root14, GENESIS, 10, 4, _ids(1));
    }

    function _register(address who) internal {
        vm.prank(who);
        prov.registerProvider("https://node.example/shards");
    }

    function _announce(address who, bytes32 root, uint256 bitmap) internal {
        vm.prank(who);
        prov.announceShards(root, bitmap);
    }

    function _openChallenge(address provider) internal returns (uint256 id) {
        vm.prank(c1);
        id = prov.challenge(root14, provider);
    }

    // ------------------------------------------------------------------ constructor / admin

    function test_constructor_setsDependenciesAndDefaults() public view {
        assertEq(address(prov.staking()), address(staking));
        assertEq(address(prov.models()), address(reg));
        assertTrue(prov.hasRole(prov.DEFAULT_ADMIN_ROLE(), admin));
        assertEq(prov.challengeWindow(), 100);
        assertEq(prov.challengeSlash(), 10e18);
        assertEq(prov.challengeCount(), 0);
        assertEq(prov.challengeBond(), 1e18);
        assertEq(prov.minProviderStake(), 10e18);
        assertEq(address(prov.token()), address(token));
    }

    function test_setChallengeBond_updatesByAdminOnly() public {
        vm.expectEmit(address(prov));
        emit IShardProviders.ChallengeBondUpdated(5e18);
        vm.prank(admin);
        prov.setChallengeBond(5e18);
        assertEq(prov.challengeBond(), 5e18);
        uint256 tooLarge = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidBond.selector, tooLarge));
        vm.prank(admin);
        prov.setChallengeBond(tooLarge);
        bytes32 role = prov.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        vm.prank(stranger);
        prov.setChallengeBond(0);
    }

    function test_minProviderStake_followsTheChallengeSlash() public {
        vm.prank(admin);
        prov.setChallengeSlash(30e18);
        assertEq(prov.minProviderStake(), 30e18);
        vm.prank(p2);
        staking.requestUnbond(25e18); // 25 bonded, below 30
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersInsufficientStake.selector, p2, 25e18, 30e18)
        );
        _register(p2);
        _register(p1); // 50 bonded
        vm.prank(admin);
        prov.setChallengeSlash(0);
        assertEq(prov.minProviderStake(), 1); // a provider always needs some slashable stake
    }

    /// @dev I-6. Fails on dc0035f: the constructor took any address, so a deployment could wire nothing.
    function test_I6_constructorRefusesZeroAddresses() public {
        vm.expectRevert(IShardProviders.ShardProvidersZeroAddress.selector);
        new ShardProviders(address(0), staking, reg, token);
        vm.expectRevert(IShardProviders.ShardProvidersZeroAddress.selector);
        new ShardProviders(admin, staking, IModelShardRegistry(address(0)), token);
        vm.expectRevert(IShardProviders.ShardProvidersZeroAddress.selector);
        new ShardProviders(admin, staking, reg, IERC20(address(0)));
    }

    function test_setChallengeWindow_updates() public {
        vm.expectEmit(address(prov));
        emit IShardProviders.ChallengeWindowUpdated(42);
        vm.prank(admin);
        prov.setChallengeWindow(42);
        assertEq(prov.challengeWindow(), 42);
    }

    function test_setChallengeSlash_updates() public {
        vm.expectEmit(address(prov));
        emit IShardProviders.ChallengeSlashUpdated(3e18);
        vm.prank(admin);
        prov.setChallengeSlash(3e18);
        assertEq(prov.challengeSlash(), 3e18);
    }

    function test_RevertWhen_setChallengeWindowOutOfRange() public {
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidWindow.selector, 0));
        prov.setChallengeWindow(0);
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidWindow.selector, 1_000_001)
        );
        prov.setChallengeWindow(1_000_001);
        vm.stopPrank();
    }

    function test_RevertWhen_adminSetterCalledByStranger() public {
        bytes32 role = prov.DEFAULT_ADMIN_ROLE();
        vm.startPrank(stranger);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        prov.setChallengeWindow(10);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, role)
        );
        prov.setChallengeSlash(1);
        vm.stopPrank();
    }

    function testFuzz_setChallengeWindow_acceptsOnlyBoundedWindows(uint64 window) public {
        vm.prank(admin);
        if (window == 0 || window > 1_000_000) {
            vm.expectRevert(
                abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidWindow.selector, window)
            );
            prov.setChallengeWindow(window);
            assertEq(prov.challengeWindow(), 100);
        } else {
            prov.setChallengeWindow(window);
            assertEq(prov.challengeWindow(), window);
        }
    }

    // ------------------------------------------------------------------ providers

    function test_registerProvider_storesEndpoint() public {
        vm.expectEmit(address(prov));
        emit IShardProviders.ProviderRegistered(p1, "https://node.example/shards");
        _register(p1);
        assertEq(prov.endpointOf(p1), "https://node.example/shards");
        IShardProviders.Provider memory p = prov.getProvider(p1);
        assertTrue(p.active);
        assertEq(p.rootsHeld, 0);
    }

    function test_RevertWhen_registerProviderNotStaked() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IShardProviders.ShardProvidersInsufficientStake.selector, stranger, 0, 10e18
            )
        );
        _register(stranger);
    }

    function test_RevertWhen_registerProviderTwice() public {
        _register(p1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersProviderExists.selector, p1));
        _register(p1);
    }

    function test_RevertWhen_endpointInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidEndpoint.selector, 0));
        vm.prank(p1);
        prov.registerProvider("");
        string memory long = string(new bytes(257));
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidEndpoint.selector, 257));
        vm.prank(p1);
        prov.registerProvider(long);
        _register(p1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidEndpoint.selector, 0));
        vm.prank(p1);
        prov.updateEndpoint("");
    }

    function test_updateEndpoint_changesEndpoint() public {
        _register(p1);
        vm.expectEmit(address(prov));
        emit IShardProviders.ProviderEndpointUpdated(p1, "https://other.example");
        vm.prank(p1);
        prov.updateEndpoint("https://other.example");
        assertEq(prov.endpointOf(p1), "https://other.example");
    }

    function test_RevertWhen_updateEndpointNotProvider() public {
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersNotProvider.selector, p1));
        vm.prank(p1);
        prov.updateEndpoint("https://x");
    }

    function test_deactivateProvider_thenRegisterAgain() public {
        _register(p1);
        vm.expectEmit(address(prov));
        emit IShardProviders.ProviderDeactivated(p1);
        vm.prank(p1);
        prov.deactivateProvider();
        assertFalse(prov.getProvider(p1).active);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersNotProvider.selector, p1));
        vm.prank(p1);
        prov.deactivateProvider();
        _register(p1);
        assertTrue(prov.getProvider(p1).active);
    }

    function test_RevertWhen_deactivateProviderHoldingShards() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersProviderHoldsShards.selector, p1, 1)
        );
        vm.prank(p1);
        prov.deactivateProvider();
    }

    // ------------------------------------------------------------------ announce / withdraw

    function test_announceShards_tracksHoldersAndAvailability() public {
        _publish14();
        _register(p1);
        _register(p2);
        vm.expectEmit(address(prov));
        emit IShardProviders.ShardsAnnounced(root14, p1, 0x1ff, 0x1ff);
        _announce(p1, root14, 0x1ff); // shards 0..8
        (uint256 avail, bool ok) = prov.availability(root14);
        assertEq(avail, 9);
        assertFalse(ok);
        _announce(p2, root14, 0x300); // shards 8, 9
        (avail, ok) = prov.availability(root14);
        assertEq(avail, 10);
        assertTrue(ok);
        assertEq(prov.providersOf(root14, 8).length, 2);
        assertEq(prov.providersOf(root14, 9)[0], p2);
        assertEq(prov.shardsOf(root14, p1), 0x1ff);
        assertEq(prov.getProvider(p1).rootsHeld, 1);

        // re-announcing known bits changes nothing
        _announce(p1, root14, 0x3);
        assertEq(prov.providersOf(root14, 0).length, 1);
        assertEq(prov.shardsOf(root14, p1), 0x1ff);
    }

    /// @notice The root's holder list follows providers joining and leaving in any order (swap-and-pop keeps the
    ///         moved provider's position right, so it can leave later too).
    function test_holdersOf_followsJoinsAndLeaves() public {
        _publish14();
        address p3 = makeAddr("provider3");
        _stake(p3, Role.Solver, 50e18);
        _register(p1);
        _register(p2);
        _register(p3);
        _announce(p1, root14, 0x1);
        _announce(p2, root14, 0x3);
        _announce(p3, root14, 0x2);
        assertEq(prov.holdersOf(root14).length, 3);

        vm.prank(p1);
        prov.withdrawShards(root14, 0x1); // the first leaves: the last takes its place
        address[] memory h = prov.holdersOf(root14);
        assertEq(h.length, 2);
        assertEq(h[0], p3);
        assertEq(h[1], p2);
        (uint256 avail,) = prov.availability(root14);
        assertEq(avail, 2);

        vm.prank(p3);
        prov.withdrawShards(root14, 0x2); // the moved one leaves from its new place
        h = prov.holdersOf(root14);
        assertEq(h.length, 1);
        assertEq(h[0], p2);
        assertEq(prov.providersOf(root14, 1).length, 1);
        assertEq(prov.providersOf(root14, 300).length, 0);

        _announce(p1, root14, 0x4); // and one can come back
        h = prov.holdersOf(root14);
        assertEq(h.length, 2);
        assertEq(h[1], p1);
        vm.prank(p2);
        prov.withdrawShards(root14, 0x3);
        h = prov.holdersOf(root14);
        assertEq(h.length, 1);
        assertEq(h[0], p1);
        (avail,) = prov.availability(root14);
        assertEq(avail, 1);
    }

    function test_RevertWhen_announceInvalidBitmap() public {
        _publish14();
        _register(p1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidBitmap.selector, 0, 14));
        _announce(p1, root14, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidBitmap.selector, 1 << 14, 14)
        );
        _announce(p1, root14, 1 << 14);
    }

    function test_announceShards_fullWidthModel() public {
        bytes32 wide = keccak256("wide");
        _publish(wide, GENESIS, 128, 128, _ids(1));
        _register(p1);
        _announce(p1, wide, type(uint256).max);
        (uint256 avail, bool ok) = prov.availability(wide);
        assertEq(avail, 256);
        assertTrue(ok);
        vm.prank(p1);
        prov.withdrawShards(wide, type(uint256).max);
        (avail, ok) = prov.availability(wide);
        assertEq(avail, 0);
        assertFalse(ok);
    }

    function test_RevertWhen_announceUnknownModel() public {
        _register(p1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersUnknownModel.selector, root14));
        _announce(p1, root14, 1);
    }

    function test_RevertWhen_announceNotProvider() public {
        _publish14();
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersNotProvider.selector, p1));
        _announce(p1, root14, 1);
    }

    function test_RevertWhen_announceAfterStakeLeft() public {
        _publish14();
        _register(p1);
        vm.prank(p1);
        staking.requestUnbond(50e18);
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersInsufficientStake.selector, p1, 0, 10e18)
        );
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
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersShardHoldersFull.selector, 3));
        _announce(p1, root14, (1 << 3) | 1);
        assertEq(prov.providersOf(root14, 3).length, 16);
        assertEq(prov.shardsOf(root14, p1), 0);
    }

    function test_withdrawShards_updatesAvailability() public {
        _publish14();
        _register(p1);
        _register(p2);
        _announce(p1, root14, 0x7);
        _announce(p2, root14, 0x6);
        vm.expectEmit(address(prov));
        emit IShardProviders.ShardsWithdrawn(root14, p1, 0x3, 0x4);
        vm.prank(p1);
        prov.withdrawShards(root14, 0x3);
        (uint256 avail,) = prov.availability(root14);
        assertEq(avail, 2); // shard 0 lost, shard 1 still held by p2, shard 2 by both
        assertEq(prov.providersOf(root14, 0).length, 0);
        assertEq(prov.providersOf(root14, 1)[0], p2);
        vm.prank(p1);
        prov.withdrawShards(root14, 0x4);
        assertEq(prov.getProvider(p1).rootsHeld, 0);
        assertEq(prov.providersOf(root14, 2).length, 1);
        vm.prank(p1);
        prov.deactivateProvider();
    }

    function test_RevertWhen_withdrawShardsNotHeld() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersShardsNotHeld.selector, 0x2));
        vm.prank(p1);
        prov.withdrawShards(root14, 0x3);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidBitmap.selector, 0, 14));
        vm.prank(p1);
        prov.withdrawShards(root14, 0);
    }

    function test_RevertWhen_withdrawShardsDuringChallenge() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        uint256 id = _openChallenge(p1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersChallengeOpen.selector, id));
        vm.prank(p1);
        prov.withdrawShards(root14, 0x1);
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
            prov.withdrawShards(root, w);
        }
        uint256 union = (a & ~w) | b;
        uint256 expected;
        for (uint256 i; i < n; ++i) {
            uint256 holders = ((a & ~w) >> i & 1) + (b >> i & 1);
            assertEq(prov.providersOf(root, i).length, holders);
            if (holders != 0) ++expected;
        }
        (uint256 avail, bool ok) = prov.availability(root);
        assertEq(avail, expected);
        assertEq(ok, expected >= (n > 1 ? n / 2 : 1));
        assertEq(prov.shardsOf(root, p1) | prov.shardsOf(root, p2), union);
    }

    // ------------------------------------------------------------------ challenges

    function test_challenge_opensOnAnAnnouncedShard() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1 << 5);
        vm.expectEmit(address(prov));
        emit IShardProviders.ChallengeOpened(1, root14, p1, c1, 5, uint64(block.number + 100));
        uint256 id = _openChallenge(p1);
        assertEq(id, 1);
        assertEq(prov.challengeCount(), 1);
        assertEq(prov.openChallengeOf(root14, p1), 1);
        IShardProviders.Challenge memory c = prov.getChallenge(id);
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
        uint256 index = prov.getChallenge(id).index;
        assertLt(index, 14);
        vm.roll(block.number + 100); // the last block of the window still counts
        vm.expectEmit(address(prov));
        emit IShardProviders.ChallengePassed(id, p1, hashes[index]);
        vm.prank(p1);
        prov.respondChallenge(id, hashes[index], ShardMerkle.proof(hashes, index));
        assertEq(uint8(prov.getChallenge(id).status), uint8(ChallengeStatus.Passed));
        assertEq(prov.openChallengeOf(root14, p1), 0);
        assertEq(prov.getProvider(p1).successes, 1);
        // a new challenge can be opened after the previous one closed
        assertEq(_openChallenge(p1), id + 1);
    }

    function test_RevertWhen_challengeByUnstakedCaller() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IShardProviders.ShardProvidersInsufficientStake.selector, stranger, 0, 10e18
            )
        );
        vm.prank(stranger);
        prov.challenge(root14, p1);
    }

    function test_RevertWhen_challengeNothingAnnounced() public {
        _publish14();
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersNothingToChallenge.selector, root14, p1)
        );
        vm.prank(c1);
        prov.challenge(root14, p1);
    }

    function test_RevertWhen_challengeAlreadyOpen() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1);
        uint256 id = _openChallenge(p1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersChallengeOpen.selector, id));
        vm.prank(c2);
        prov.challenge(root14, p1);
    }

    function test_RevertWhen_respondChallengeInvalid() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 1 << 2);
        uint256 id = _openChallenge(p1);
        bytes32[] memory proof = ShardMerkle.proof(hashes, 2);

        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersNotChallenged.selector, id, p2));
        vm.prank(p2);
        prov.respondChallenge(id, hashes[2], proof);

        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersInvalidProof.selector, id));
        vm.prank(p1);
        prov.respondChallenge(id, hashes[3], proof);

        vm.expectRevert(
            abi.encodeWithSelector(
                IShardProviders.ShardProvidersChallengeNotOpen.selector, id + 1, ChallengeStatus.None
            )
        );
        vm.prank(p1);
        prov.respondChallenge(id + 1, hashes[2], proof);

        vm.roll(block.number + 101);
        vm.expectRevert(
            abi.encodeWithSelector(
                IShardProviders.ShardProvidersChallengeExpired.selector, id, uint64(block.number - 1)
            )
        );
        vm.prank(p1);
        prov.respondChallenge(id, hashes[2], proof);
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
        vm.expectEmit(address(prov));
        emit IShardProviders.ShardsWithdrawn(root14, p1, 0x3, 0);
        vm.expectEmit(address(prov));
        emit IShardProviders.ChallengeFailed(id, p1, root14, 10e18);
        vm.prank(stranger);
        prov.expireChallenge(id);

        assertEq(uint8(prov.getChallenge(id).status), uint8(ChallengeStatus.Failed));
        assertEq(prov.openChallengeOf(root14, p1), 0);
        assertEq(prov.shardsOf(root14, p1), 0);
        (uint256 avail,) = prov.availability(root14);
        assertEq(avail, 1);
        IShardProviders.Provider memory p = prov.getProvider(p1);
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
        // the provider unbonds all it may (the stake lock keeps 10 bonded) and the registry loses its slasher
        // role: still closes
        vm.prank(p1);
        staking.requestUnbond(40e18);
        vm.startPrank(admin);
        staking.revokeRole(staking.SLASHER_ROLE(), address(prov));
        vm.stopPrank();
        vm.roll(block.number + 101);
        vm.expectEmit(address(prov));
        emit IShardProviders.ChallengeFailed(id, p1, root14, 0);
        prov.expireChallenge(id);
        assertEq(prov.getProvider(p1).failures, 1);
        assertEq(prov.shardsOf(root14, p1), 0);
    }

    function test_expireChallenge_zeroSlashSkipsStaking() public {
        vm.prank(admin);
        prov.setChallengeSlash(0);
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        uint256 id = _openChallenge(p1);
        vm.roll(block.number + 101);
        prov.expireChallenge(id);
        assertEq(staking.stakeOf(p1), 50e18);
        assertEq(prov.getProvider(p1).failures, 1);
    }

    function test_RevertWhen_expireChallengeEarlyOrClosed() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        uint256 id = _openChallenge(p1);
        uint64 deadline = prov.getChallenge(id).deadline;
        vm.roll(deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersChallengeNotExpired.selector, id, deadline)
        );
        prov.expireChallenge(id);
        vm.prank(p1);
        prov.respondChallenge(id, hashes[0], ShardMerkle.proof(hashes, 0));
        vm.roll(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IShardProviders.ShardProvidersChallengeNotOpen.selector, id, ChallengeStatus.Passed
            )
        );
        prov.expireChallenge(id);
    }

    function testFuzz_challenge_picksAnAnnouncedShard(uint256 bitmap, uint256 blockNum) public {
        bitmap &= 0x3fff;
        vm.assume(bitmap != 0);
        vm.roll(bound(blockNum, 1000, 1e9));
        _publish14();
        _register(p1);
        _announce(p1, root14, bitmap);
        uint256 id = _openChallenge(p1);
        uint256 index = prov.getChallenge(id).index;
        assertEq((bitmap >> index) & 1, 1);
        vm.prank(p1);
        prov.respondChallenge(id, hashes[index], ShardMerkle.proof(hashes, index));
        assertEq(prov.getProvider(p1).successes, 1);
    }

    // ------------------------------------------------------------------ review dc0035f: M-4

    /// @dev M-4. Fails on dc0035f: 1 wei of bonded stake was enough to register, announce and challenge, so 16
    ///      Sybils filled a shard's holder list and challenges cost nothing. Now each needs `challengeSlash`.
    function test_M4_oneWeiStakersCannotRegisterAnnounceOrChallenge() public {
        _publish14();
        address sybil = makeAddr("sybil");
        _stake(sybil, Role.Solver, 50e18);
        vm.prank(sybil);
        staking.requestUnbond(50e18 - 1); // 1 wei bonded
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersInsufficientStake.selector, sybil, 1, 10e18)
        );
        _register(sybil);

        _register(p1);
        _announce(p1, root14, 1);
        _register(p2);
        vm.prank(p2);
        staking.requestUnbond(50e18 - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersInsufficientStake.selector, p2, 1, 10e18)
        );
        _announce(p2, root14, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersInsufficientStake.selector, sybil, 1, 10e18)
        );
        vm.prank(sybil);
        prov.challenge(root14, p1);
    }

    /// @dev M-4. Fails on dc0035f: a provider that announced and then unbonded kept its place in the holder lists
    ///      with nothing left to slash. Now it cannot unbond below `minProviderStake()` while it holds shards
    ///      (stake lock), and when its stake is short anyway (here governance raised the minimum) anyone evicts it,
    ///      freeing the place for a provider with stake.
    function test_M4_providerWhoseStakeLeftIsEvicted() public {
        _publish14();
        for (uint256 i; i < 16; ++i) {
            address who = makeAddr(string(abi.encode("holder", i)));
            _stake(who, Role.Solver, 50e18);
            _register(who);
            _announce(who, root14, 1 << 3);
        }
        address gone = prov.providersOf(root14, 3)[0];
        _register(p1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersShardHoldersFull.selector, 3));
        _announce(p1, root14, 1 << 3);
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersProviderBacked.selector, gone, 50e18, 10e18)
        );
        prov.evictUnbacked(root14, gone);

        vm.prank(gone);
        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantStaking.StakingLocked.selector, gone, address(prov), 10e18, 5e18
            )
        );
        staking.requestUnbond(45e18); // would leave 5, below the 10 a failed challenge takes
        vm.prank(gone);
        staking.requestUnbond(40e18); // 10 left: allowed
        vm.prank(admin);
        prov.setChallengeSlash(20e18); // the minimum rises above what it kept
        vm.expectEmit(address(prov));
        emit IShardProviders.ProviderEvicted(root14, gone, 10e18);
        vm.prank(stranger);
        prov.evictUnbacked(root14, gone);
        assertEq(prov.shardsOf(root14, gone), 0);
        assertEq(prov.getProvider(gone).rootsHeld, 0);
        _announce(p1, root14, 1 << 3);
        assertEq(prov.providersOf(root14, 3).length, 16);
    }

    function test_RevertWhen_evictWithoutShardsOrDuringAChallenge() public {
        _publish14();
        vm.expectRevert(
            abi.encodeWithSelector(IShardProviders.ShardProvidersNothingToChallenge.selector, root14, p1)
        );
        prov.evictUnbacked(root14, p1);
        _register(p1);
        _announce(p1, root14, 1);
        uint256 id = _openChallenge(p1);
        vm.prank(p1);
        staking.requestUnbond(40e18); // down to the locked 10
        vm.prank(admin);
        prov.setChallengeSlash(30e18); // now short of the minimum, but challenged
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersChallengeOpen.selector, id));
        prov.evictUnbacked(root14, p1);
        // the challenge takes its slash from the bonded 10, then 20 from the pending unbond
        vm.roll(block.number + 101);
        prov.expireChallenge(id);
        assertEq(staking.stakeOf(p1), 0);
        assertEq(staking.pendingUnbondTotal(p1), 20e18);
    }

    /// @dev M-4. Fails on dc0035f: a challenge was free, so a 1-wei staker could re-challenge an honest provider
    ///      after every answer. Now each challenge escrows `challengeBond`, and every answered challenge pays the
    ///      provider; the challenger pays for the spam.
    function test_M4_challengeSpamPaysTheProvider() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x3fff);
        uint256 balance = token.balanceOf(c1);
        for (uint256 round; round < 3; ++round) {
            uint256 id = _openChallenge(p1);
            assertEq(prov.getChallenge(id).bond, 1e18);
            uint256 index = prov.getChallenge(id).index;
            vm.expectEmit(address(prov));
            emit IShardProviders.BondCredited(p1, id, 1e18);
            vm.prank(p1);
            prov.respondChallenge(id, hashes[index], ShardMerkle.proof(hashes, index));
        }
        assertEq(token.balanceOf(c1), balance - 3e18);
        assertEq(prov.claimable(p1), 3e18);
        assertEq(token.balanceOf(address(prov)), 3e18);
        uint256 before = token.balanceOf(p1);
        vm.expectEmit(address(prov));
        emit IShardProviders.BondClaimed(p1, 3e18);
        vm.prank(p1);
        assertEq(prov.claim(), 3e18);
        assertEq(token.balanceOf(p1) - before, 3e18);
        assertEq(token.balanceOf(address(prov)), 0);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersNothingToClaim.selector, p1));
        vm.prank(p1);
        prov.claim();
    }

    /// @dev M-4: a challenger that was right gets its bond back, and the provider loses its stake and its place.
    function test_M4_expiredChallengeReturnsTheBond() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        uint256 id = _openChallenge(p1);
        vm.roll(block.number + 101);
        vm.expectEmit(address(prov));
        emit IShardProviders.BondCredited(c1, id, 1e18);
        prov.expireChallenge(id);
        assertEq(prov.claimable(c1), 1e18);
        assertEq(staking.stakeOf(p1), 40e18);
        vm.prank(c1);
        prov.claim();
        assertEq(token.balanceOf(address(prov)), 0);
    }

    function test_RevertWhen_challengerHasNotApprovedTheBond() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        vm.prank(c3); // staked, but holds and approved no ATN
        vm.expectRevert();
        prov.challenge(root14, p1);
        vm.prank(admin);
        prov.setChallengeBond(0);
        vm.prank(c3);
        uint256 id = prov.challenge(root14, p1);
        assertEq(prov.getChallenge(id).bond, 0);
    }

    // ------------------------------------------------------------------ review dc0035f: M-4, the stake lock

    /// @dev M-4. Fails on dc0035f and before the stake lock: `requestUnbond` consulted nobody, so a provider kept
    ///      announcing shards (and its places in the holder lists) with 1 wei bonded until someone evicted it.
    ///      Now `ShardProviders` locks `minProviderStake()` while the provider announces shards.
    function test_M4_providerCannotUnbondBelowMinimumWhileHoldingShards() public {
        _publish14();
        _register(p1);
        assertEq(prov.lockedStake(p1, Role.Solver), 0, "registered, nothing announced: nothing locked");
        _announce(p1, root14, 0x3);
        assertEq(prov.lockedStake(p1, Role.Solver), 10e18);
        assertEq(prov.lockedStake(p1, Role.Coordinator), 10e18, "providers stake in any role");
        (uint256 locked, IStakeLocker by) = staking.lockedStake(p1);
        assertEq(locked, 10e18);
        assertEq(address(by), address(prov));

        vm.expectRevert(
            abi.encodeWithSelector(
                IParticipantStaking.StakingLocked.selector, p1, address(prov), 10e18, 10e18 - 1
            )
        );
        vm.prank(p1);
        staking.requestUnbond(40e18 + 1);
        vm.prank(p1);
        staking.requestUnbond(40e18); // exactly the minimum stays bonded
        assertEq(staking.stakeOf(p1), 10e18);
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingLocked.selector, p1, address(prov), 10e18, 9e18)
        );
        vm.prank(p1);
        staking.requestUnbond(1e18);

        // An open challenge keeps the lock: its shards can be neither withdrawn nor evicted until it closes.
        uint256 id = _openChallenge(p1);
        vm.expectRevert(abi.encodeWithSelector(IShardProviders.ShardProvidersChallengeOpen.selector, id));
        vm.prank(p1);
        prov.withdrawShards(root14, 0x3);
        vm.expectRevert(
            abi.encodeWithSelector(IParticipantStaking.StakingLocked.selector, p1, address(prov), 10e18, 0)
        );
        vm.prank(p1);
        staking.requestUnbond(10e18);
        // ... and the stake it kept pays the failed challenge.
        vm.roll(block.number + 101);
        prov.expireChallenge(id);
        assertEq(staking.stakeOf(p1), 0);
        assertEq(staking.pendingUnbondTotal(p1), 40e18, "the pending unbond was not needed");
    }

    /// @dev M-4, the other half of the lock. Does not compile on dc0035f (no `lockedStake`: nothing was ever
    ///      locked). The lock must end with the obligation so that an honest provider is never trapped: once it
    ///      withdraws its shards (after answering its challenge), or loses them to a failed challenge, it
    ///      unbonds everything.
    function test_M4_providerUnbondsAfterDroppingShards() public {
        _publish14();
        _register(p1);
        _register(p2);
        _announce(p1, root14, 0x3);
        _announce(p2, root14, 0x1);

        uint256 id = _openChallenge(p1);
        uint256 index = prov.getChallenge(id).index;
        vm.prank(p1);
        prov.respondChallenge(id, hashes[index], ShardMerkle.proof(hashes, index));
        assertEq(prov.lockedStake(p1, Role.Solver), 10e18, "still announcing");
        vm.prank(p1);
        prov.withdrawShards(root14, 0x1);
        assertEq(prov.lockedStake(p1, Role.Solver), 10e18, "one shard left");
        vm.prank(p1);
        prov.withdrawShards(root14, 0x2);
        assertEq(prov.lockedStake(p1, Role.Solver), 0);
        vm.prank(p1);
        staking.requestUnbond(50e18);
        assertEq(staking.stakeOf(p1), 0);
        // Deactivating is not needed for the lock, and stays possible.
        vm.prank(p1);
        prov.deactivateProvider();

        // A failed challenge removes the announcement, which ends the lock on what is left.
        uint256 id2 = _openChallenge(p2);
        vm.roll(block.number + 101);
        prov.expireChallenge(id2);
        assertEq(prov.lockedStake(p2, Role.Solver), 0);
        vm.prank(p2);
        staking.requestUnbond(40e18);
        assertEq(staking.stakeOf(p2), 0);
    }

    /// @dev M-4. Does not compile on dc0035f (no `lockedStake`). Guards the lock against over-reach: with all of
    ///      the provider's stake locked, the failed challenge still slashes all of it (locks only stop the
    ///      holder's own unbond requests; `slash` never asks the lockers).
    function test_M4_lockDoesNotBlockSlashing() public {
        _publish14();
        _register(p1);
        _announce(p1, root14, 0x1);
        vm.prank(admin);
        prov.setChallengeSlash(50e18); // the whole stake is locked and a failed challenge takes all of it
        assertEq(prov.lockedStake(p1, Role.Solver), 50e18);
        uint256 id = _openChallenge(p1);
        vm.roll(block.number + 101);
        vm.expectEmit(address(prov));
        emit IShardProviders.ChallengeFailed(id, p1, root14, 50e18);
        prov.expireChallenge(id);
        assertEq(staking.stakeOf(p1), 0);
        assertEq(uint8(staking.roleOf(p1)), uint8(Role.None));
    }
}
