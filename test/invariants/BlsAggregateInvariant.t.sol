// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ATNToken} from "../../contracts/ATNToken.sol";
import {ParticipantStaking} from "../../contracts/ParticipantStaking.sol";
import {BlsSignerRegistry} from "../../contracts/BlsSignerRegistry.sol";
import {BN254} from "../../contracts/libraries/BN254.sol";
import {IParticipantStaking, Role} from "../../contracts/interfaces/IParticipantStaking.sol";

/// @dev Bounded actions on the stakes and BLS keys of a fixed set of actors: stake (mostly as Coordinator),
///      unbond, withdraw, slash, register or rotate a key, change the Coordinator minimum and re-sync. Ghost:
///      whether a minimum change is still unsynced (the one change staking does not report).
contract BlsHandler is Test {
    ATNToken public token;
    ParticipantStaking public staking;
    BlsSignerRegistry public shards;
    address public admin;
    address public slasher;
    address[] public actors;
    string internal g2Table;

    bool public minStakeUnsynced;

    constructor(
        ATNToken token_,
        ParticipantStaking staking_,
        BlsSignerRegistry shards_,
        address admin_,
        address slasher_
    ) {
        token = token_;
        staking = staking_;
        shards = shards_;
        admin = admin_;
        slasher = slasher_;
        for (uint256 i; i < 6; ++i) {
            actors.push(address(uint160(0x2000 + i)));
        }
        g2Table = vm.readFile("./test/vectors/bls/g2_multiples.json");
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    function stake(uint256 actorSeed, uint256 roleSeed, uint256 amount) external {
        address a = _actor(actorSeed);
        Role role = staking.roleOf(a);
        if (role == Role.None) role = roleSeed % 5 == 0 ? Role.Solver : Role.Coordinator;
        uint256 min = staking.minStake(role);
        uint256 bonded = staking.stakeOf(a);
        uint256 lo = bonded >= min ? 1 : min - bonded;
        amount = bound(amount, lo, lo + 3_000e18);
        deal(address(token), a, token.balanceOf(a) + amount, true);
        vm.startPrank(a);
        token.approve(address(staking), amount);
        staking.stake(role, amount);
        vm.stopPrank();
    }

    function requestUnbond(uint256 actorSeed, uint256 amount) external {
        address a = _actor(actorSeed);
        uint256 bonded = staking.stakeOf(a);
        if (bonded == 0 || staking.pendingUnbonds(a).length >= staking.MAX_PENDING_UNBONDS()) return;
        amount = bound(amount, 1, bonded);
        vm.prank(a);
        staking.requestUnbond(amount);
    }

    function withdraw(uint256 actorSeed) external {
        address a = _actor(actorSeed);
        IParticipantStaking.Unbond[] memory q = staking.pendingUnbonds(a);
        bool matured;
        for (uint256 i; i < q.length; ++i) {
            if (q[i].maturesAt <= block.timestamp) matured = true;
        }
        if (!matured) return;
        vm.prank(a);
        staking.withdrawUnbonded();
    }

    function slash(uint256 actorSeed, uint256 amount) external {
        amount = bound(amount, 0, 3_000e18);
        vm.prank(slasher);
        staking.slash(_actor(actorSeed), amount, "inv");
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 20 days));
    }

    /// @dev Register or rotate (the same call) with secret key 1..528 (the G2 multiples of the vectors).
    function register(uint256 actorSeed, uint256 skSeed) external {
        address a = _actor(actorSeed);
        if (!staking.isActive(a, Role.Coordinator)) return;
        uint256 sk = bound(skSeed, 1, 528);
        BN254.G1Point memory p = BN254.scalarMul(BN254.generatorG1(), sk);
        uint256[2] memory pk = [p.X, p.Y];
        uint256[] memory v = vm.parseJsonUintArray(g2Table, string.concat(".g2[", vm.toString(sk - 1), "]"));
        uint256[4] memory pk2 = [v[0], v[1], v[2], v[3]];
        BN254.G1Point memory pop = BN254.scalarMul(BN254.hashToG1(shards.blsPopMessage(a, pk, pk2)), sk);
        vm.prank(a);
        shards.registerBlsKey(pk, pk2, [pop.X, pop.Y]);
    }

    function setMinStake(uint256 amount) external {
        amount = bound(amount, 0, 3_000e18);
        vm.prank(admin);
        staking.setMinStake(Role.Coordinator, amount);
        minStakeUnsynced = true;
    }

    function sync(uint256 actorSeed) external {
        address a = _actor(actorSeed);
        (bool registered,,) = shards.blsKeyOf(a);
        if (registered) shards.syncBlsSigner(a);
    }

    /// @dev What governance does after a minimum change: re-sync every signer.
    function syncAll() external {
        for (uint256 i; i < actors.length; ++i) {
            (bool registered,,) = shards.blsKeyOf(actors[i]);
            if (registered) shards.syncBlsSigner(actors[i]);
        }
        minStakeUnsynced = false;
    }
}

/// @notice The running BLS aggregate of BlsSignerRegistry stays the sum of the keys and recorded stakes of the
///         signers it counts, and (once a minimum change is synced) counts exactly the active Coordinators with
///         their bonded stake, under any sequence of stake, unbond, withdraw, slash, rotation and minimum change.
contract BlsAggregateInvariantTest is Test {
    ATNToken internal token;
    ParticipantStaking internal staking;
    BlsSignerRegistry internal shards;
    BlsHandler internal handler;
    address internal treasury = makeAddr("treasury");
    address internal slasher = makeAddr("slasher");

    function setUp() public {
        vm.warp(1_000_000);
        token = new ATNToken(address(this), address(this), 0);
        staking = new ParticipantStaking(address(this), token, treasury);
        shards = new BlsSignerRegistry(staking);
        staking.grantRole(staking.SLASHER_ROLE(), slasher);
        staking.setStakeObserver(shards);
        handler = new BlsHandler(token, staking, shards, address(this), slasher);
        // Every actor starts as a Coordinator and four hold a key, so no run checks an empty aggregate.
        for (uint256 i; i < handler.actorCount(); ++i) {
            handler.stake(i, 1, 1000e18 + i * 100e18);
            if (i < 4) handler.register(i, i + 1);
        }
        targetContract(address(handler));
    }

    /// blsAggregate().apk == Σ keys of the counted signers; stake == Σ their recorded stakes; uncounted signers
    /// record 0 and no bit beyond the registered signers is set
    function invariant_aggregateIsTheSumOfCountedSigners() public view {
        (uint256[2] memory apk, uint256 stake, uint256 bitmap) = shards.blsAggregate();
        uint256 n = shards.blsSignerCount();
        BN254.G1Point memory sum;
        uint256 total;
        for (uint256 i; i < n; ++i) {
            uint256 recorded = shards.blsSignerStake(i);
            if ((bitmap >> i) & 1 == 1) {
                (,, uint256[2] memory pk) = shards.blsKeyOf(shards.blsSignerAt(i));
                sum = BN254.plus(sum, BN254.G1Point(pk[0], pk[1]));
                total += recorded;
            } else {
                assertEq(recorded, 0, "an uncounted signer records no stake");
            }
        }
        assertEq(apk[0], sum.X, "apk x");
        assertEq(apk[1], sum.Y, "apk y");
        assertEq(stake, total, "aggregate stake");
        assertEq(n < 256 ? bitmap >> n : 0, 0, "no bit beyond the registered signers");
    }

    /// with every minimum change synced: counted iff an active Coordinator, recorded stake == bonded stake
    function invariant_countedSignersAreTheActiveCoordinators() public view {
        if (handler.minStakeUnsynced()) return;
        (,, uint256 bitmap) = shards.blsAggregate();
        uint256 n = handler.actorCount();
        for (uint256 k; k < n; ++k) {
            address a = handler.actors(k);
            (bool registered, uint256 i,) = shards.blsKeyOf(a);
            if (!registered) continue;
            bool active = staking.isActive(a, Role.Coordinator);
            assertEq((bitmap >> i) & 1 == 1, active, "counted iff active");
            assertEq(shards.blsSignerStake(i), active ? staking.stakeOf(a) : 0, "recorded stake");
        }
    }
}
