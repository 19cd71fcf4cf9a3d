// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {console2} from "forge-std/console2.sol";

import {Role} from "../../contracts/interfaces/IParticipantStaking.sol";
import {ShardFixture, ShardMerkle} from "../utils/ShardFixture.sol";

/// @notice Gas of a round's shard announcements as the devnet makes them: the three coordinators and the
///         aggregator each announce every shard of the new model, each in its own transaction with cold storage.
contract ShardAnnouncementsTest is ShardFixture {
    function setUp() public {
        _deploy();
        _stake(agg, Role.Aggregator, 1000e18);
        _stake(c1, Role.Coordinator, 500e18);
        _stake(c2, Role.Coordinator, 500e18);
        _stake(c3, Role.Coordinator, 500e18);
        address[4] memory holders = [c1, c2, c3, agg];
        for (uint256 i; i < holders.length; ++i) {
            vm.prank(holders[i]);
            prov.registerProvider("https://node.example/shards");
        }
    }

    /// @dev One announcement as its own transaction: every contract it reads is cooled first.
    function _announceCold(address who, bytes32 root, uint256 bitmap) internal returns (uint256 used) {
        vm.cool(address(prov));
        vm.cool(address(staking));
        vm.cool(address(reg));
        vm.prank(who);
        uint256 g = gasleft();
        prov.announceShards(root, bitmap);
        used = g - gasleft() + 21_000;
    }

    function _roundAnnouncements(uint256 shards) internal returns (uint256 first, uint256 total) {
        bytes32 root = ShardMerkle.root(ShardMerkle.shardHashes(shards, 7));
        _publish(root, GENESIS, uint8(shards - shards / 3), uint8(shards / 3), _ids(1));
        uint256 all = (uint256(1) << shards) - 1;
        address[4] memory holders = [c1, c2, c3, agg];
        for (uint256 i; i < holders.length; ++i) {
            uint256 used = _announceCold(holders[i], root, all);
            if (i == 0) first = used;
            total += used;
        }
        (uint256 available, bool recoverable) = prov.availability(root);
        assertEq(available, shards);
        assertTrue(recoverable);
        assertEq(prov.holdersOf(root).length, holders.length);
    }

    /// @notice Four holders of every shard of a 6-shard model (the devnet's `small` preset: k = 4, m = 2) and of a
    ///         24-shard one: the cost hardly depends on the number of shards.
    function test_roundAnnouncements_gasWithColdStorage() public {
        (uint256 first6, uint256 total6) = _roundAnnouncements(6);
        (uint256 first24, uint256 total24) = _roundAnnouncements(24);
        console2.log("first announcement of 6 shards:", first6);
        console2.log("four announcements of 6 shards:", total6);
        console2.log("four announcements of 24 shards:", total24);
        vm.snapshotValue("announceFirstOf6Shards", first6);
        vm.snapshotValue("announceFourHoldersOf6Shards", total6);
        vm.snapshotValue("announceFourHoldersOf24Shards", total24);
        assertLt(first24, first6 + 25_000, "an announcement's cost must not grow per shard");
    }
}
