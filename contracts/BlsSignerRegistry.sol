// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IBlsSignerRegistry} from "./interfaces/IBlsSignerRegistry.sol";
import {IStakeObserver} from "./interfaces/IStakeObserver.sol";
import {IParticipantStaking, Role} from "./interfaces/IParticipantStaking.sol";
import {BN254} from "./libraries/BN254.sol";

/// @title BlsSignerRegistry
/// @notice Coordinators' BLS keys, the running aggregate of the counted signers and the aggregate signature check.
/// @dev `_apk` and `_activeStake` are the sums of the keys and recorded stakes of the signers whose bit is set in
///      `_active`; every write below keeps that invariant (a signer that is not counted has recorded stake 0).
///      Signer indices are never exhausted by accounts that left: once all MAX_BLS_SIGNERS are taken, a new
///      coordinator takes the index of one that is no longer an active Coordinator.
///      ParticipantStaking reports stake changes through `onStakeChanged`. No admin: nothing here is governable.
contract BlsSignerRegistry is IBlsSignerRegistry {
    /// @notice Most coordinators with a BLS key (the width of a signer bitmap).
    uint256 public constant MAX_BLS_SIGNERS = 256;
    /// @notice Domain of BLS proof-of-possession messages.
    bytes32 public constant BLS_POP_DOMAIN = keccak256("autonet.bls.pop.v1");

    IParticipantStaking private immutable _staking;

    // Signer index -> coordinator and G1 key; coordinator -> index + 1 (0 = none).
    address[] private _signers;
    mapping(uint256 index => BN254.G1Point) private _keys;
    mapping(address coordinator => uint256) private _indexPlusOne;
    // Block at which the index's current coordinator took it (a reused index starts again).
    mapping(uint256 index => uint256) private _since;
    // Running aggregate: bit i set = signer i counted (an active Coordinator as last reported by staking);
    // sum of the counted keys; sum of the counted recorded stakes; recorded stake per index (0 when not counted).
    uint256 private _active;
    BN254.G1Point private _apk;
    uint256 private _activeStake;
    mapping(uint256 index => uint128) private _stake;

    /// @param staking_ stakes and roles; it must report stake changes here (`setStakeObserver`)
    constructor(IParticipantStaking staking_) {
        if (address(staking_) == address(0)) revert BlsSignerRegistryZeroAddress();
        _staking = staking_;
    }

    // ------------------------------------------------------------------ keys

    /// @inheritdoc IBlsSignerRegistry
    function registerBlsKey(uint256[2] calldata pkG1, uint256[4] calldata pkG2, uint256[2] calldata pop)
        external
    {
        if (!_staking.isActive(msg.sender, Role.Coordinator)) {
            revert BlsSignerRegistryNotCoordinator(msg.sender);
        }
        BN254.G1Point memory pk = BN254.G1Point(pkG1[0], pkG1[1]);
        if ((pk.X == 0 && pk.Y == 0) || !BN254.isOnCurve(pk)) revert BlsSignerRegistryInvalidBlsKey();
        BN254.G1Point memory sig = BN254.G1Point(pop[0], pop[1]);
        if (!BN254.isOnCurve(sig)) revert BlsSignerRegistryInvalidProofOfPossession(msg.sender);
        if (!BN254.verify(_popMessage(msg.sender, pkG1, pkG2), pk, _g2(pkG2), sig)) {
            revert BlsSignerRegistryInvalidProofOfPossession(msg.sender);
        }

        uint256 index = _indexPlusOne[msg.sender];
        if (index == 0) {
            index = _signers.length;
            if (index < MAX_BLS_SIGNERS) {
                _signers.push(msg.sender);
            } else {
                // Every index is taken: reuse the slot of a signer that is no longer an active Coordinator.
                index = _reusableIndex();
                address previous = _signers[index];
                delete _indexPlusOne[previous];
                _signers[index] = msg.sender;
                emit BlsSignerReplaced(index, previous, msg.sender);
            }
            _indexPlusOne[msg.sender] = index + 1;
            _since[index] = block.number;
        } else {
            --index;
        }

        // The caller is an active Coordinator (checked above): it is counted with its new key and current stake,
        // and a key counted before (rotation) leaves the aggregate.
        uint256 bit = 1 << index;
        uint256 active = _active;
        BN254.G1Point memory apk = _apk;
        uint256 total = _activeStake;
        if (active & bit != 0) {
            apk = BN254.plus(apk, BN254.negate(_keys[index]));
            total -= _stake[index]; // the counted stakes sum to total
        }
        uint128 recorded = _recordable(_staking.stakeOf(msg.sender));
        _keys[index] = pk;
        _apk = BN254.plus(apk, pk);
        _active = active | bit;
        _stake[index] = recorded;
        _activeStake = total + recorded;
        emit BlsKeyRegistered(msg.sender, index, pkG1);
        emit BlsSignerUpdated(msg.sender, index, true, recorded);
    }

    /// @inheritdoc IStakeObserver
    /// @dev Costs one slot read for an account without a BLS key. Makes no call that can fail (see `_sync`), so a
    ///      stake, an unbond or a slash never reverts because of it.
    function onStakeChanged(address account) external {
        if (msg.sender != address(_staking)) revert BlsSignerRegistryNotStaking(msg.sender);
        uint256 plusOne = _indexPlusOne[account];
        if (plusOne != 0) _sync(account, plusOne - 1);
    }

    /// @inheritdoc IBlsSignerRegistry
    function syncBlsSigner(address coordinator) external {
        uint256 plusOne = _indexPlusOne[coordinator];
        if (plusOne == 0) revert BlsSignerRegistryKeyNotRegistered(coordinator);
        _sync(coordinator, plusOne - 1);
    }

    // ------------------------------------------------------------------ aggregate check

    /// @inheritdoc IBlsSignerRegistry
    function verifyAggregate(
        bytes32 message,
        uint256 signers,
        uint256[4] calldata apkG2,
        uint256[2] calldata sigma
    ) external view returns (uint256 stake) {
        uint256 active = _active;
        if (signers == 0 || signers & ~active != 0) _revertBadSigners(signers, active);

        // Signers = counted minus non-signers: three slot reads (key, recorded stake) and one point addition per
        // non-signer, one negation in all; the pairing check is one, whatever the number of signers.
        BN254.G1Point memory apk = _apk;
        stake = _activeStake;
        uint256 nonSigners = active & ~signers;
        if (nonSigners != 0) {
            BN254.G1Point memory missing;
            // at most MAX_BLS_SIGNERS iterations: each clears the lowest set bit
            for (uint256 bits = nonSigners; bits != 0; bits &= bits - 1) {
                uint256 i = _lowestBit(bits);
                missing = BN254.plus(missing, _keys[i]);
                stake -= _stake[i]; // a subset of the counted stakes, which sum to _activeStake
            }
            apk = BN254.plus(apk, BN254.negate(missing));
        }
        BN254.G1Point memory sig = BN254.G1Point(sigma[0], sigma[1]);
        if (!BN254.isOnCurve(sig) || !BN254.verify(message, apk, _g2(apkG2), sig)) {
            revert BlsSignerRegistryInvalidAggregateSignature(message);
        }
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IBlsSignerRegistry
    function blsPopMessage(address coordinator, uint256[2] calldata pkG1, uint256[4] calldata pkG2)
        external
        view
        returns (bytes32)
    {
        return _popMessage(coordinator, pkG1, pkG2);
    }

    /// @inheritdoc IBlsSignerRegistry
    function blsKeyOf(address coordinator)
        external
        view
        returns (bool registered, uint256 index, uint256[2] memory pkG1)
    {
        uint256 i = _indexPlusOne[coordinator];
        if (i == 0) return (false, 0, pkG1);
        BN254.G1Point storage pk = _keys[i - 1];
        return (true, i - 1, [pk.X, pk.Y]);
    }

    /// @inheritdoc IBlsSignerRegistry
    function blsSignerAt(uint256 index) external view returns (address) {
        return index < _signers.length ? _signers[index] : address(0);
    }

    /// @inheritdoc IBlsSignerRegistry
    function blsSignerSince(uint256 index) external view returns (uint256) {
        return _since[index];
    }

    /// @inheritdoc IBlsSignerRegistry
    function blsSignerCount() external view returns (uint256) {
        return _signers.length;
    }

    /// @inheritdoc IBlsSignerRegistry
    function blsAggregate()
        external
        view
        returns (uint256[2] memory apk, uint256 stake, uint256 activeBitmap)
    {
        BN254.G1Point storage p = _apk;
        return ([p.X, p.Y], _activeStake, _active);
    }

    /// @inheritdoc IBlsSignerRegistry
    function blsSignerStake(uint256 index) external view returns (uint256) {
        return _stake[index];
    }

    /// @inheritdoc IBlsSignerRegistry
    function staking() external view returns (address) {
        return address(_staking);
    }

    // ------------------------------------------------------------------ internal

    /// @dev Counts signer `index` (of `coordinator`) iff it is an active Coordinator, with its current bonded
    ///      stake. Only reads staking (views that cannot revert) and adds valid curve points (keys were checked
    ///      on the curve at registration), so it cannot make a staking operation revert. Writes and emits only
    ///      when something changed.
    function _sync(address coordinator, uint256 index) private {
        bool nowActive = _staking.isActive(coordinator, Role.Coordinator);
        uint128 recorded = nowActive ? _recordable(_staking.stakeOf(coordinator)) : 0;
        uint256 bit = 1 << index;
        uint256 active = _active;
        bool wasActive = active & bit != 0;
        uint128 previous = _stake[index]; // 0 when not counted
        if (wasActive == nowActive && previous == recorded) return;

        if (wasActive != nowActive) {
            BN254.G1Point memory key = _keys[index];
            _apk = BN254.plus(_apk, nowActive ? key : BN254.negate(key));
            _active = active ^ bit;
        }
        if (previous != recorded) {
            _stake[index] = recorded;
            // previous is part of the total (0 when it was not counted)
            _activeStake = _activeStake - previous + recorded;
        }
        emit BlsSignerUpdated(coordinator, index, nowActive, recorded);
    }

    /// @dev The lowest index whose signer is not counted and, read back from staking, not an active Coordinator
    ///      (a signer left uncounted by an unsynced minimum change but active again is skipped). Such a signer's
    ///      key is not in the aggregate and its recorded stake is 0, so the slot can take a new key as if fresh.
    ///      At most MAX_BLS_SIGNERS iterations, each one staking read; called only when every index is taken.
    function _reusableIndex() private view returns (uint256) {
        for (uint256 bits = ~_active; bits != 0; bits &= bits - 1) {
            uint256 i = _lowestBit(bits);
            if (!_staking.isActive(_signers[i], Role.Coordinator)) return i;
        }
        revert BlsSignerRegistrySignersFull();
    }

    /// @dev Reverts for a signer bitmap that is empty or names a signer that is not counted: bits beyond the
    ///      registered signers give `InvalidSigners`, otherwise the lowest uncounted signer is `StaleSigner`.
    function _revertBadSigners(uint256 signers, uint256 active) private view {
        uint256 registered = _signers.length;
        if (signers == 0 || (registered < MAX_BLS_SIGNERS && signers >> registered != 0)) {
            revert BlsSignerRegistryInvalidSigners(signers, registered);
        }
        uint256 i = _lowestBit(signers & ~active);
        revert BlsSignerRegistryStaleSigner(i, _signers[i]);
    }

    /// @dev A bonded stake as recorded for a signer: saturated at 2^128 - 1 so that recording never reverts
    ///      (a real stake is far below; a saturated one only understates the signer).
    function _recordable(uint256 amount) private pure returns (uint128) {
        // casting to 'uint128' is safe because the value is capped at type(uint128).max first
        // forge-lint: disable-next-line(unsafe-typecast)
        return amount > type(uint128).max ? type(uint128).max : uint128(amount);
    }

    /// @dev Index of the lowest set bit of `x` (x != 0).
    function _lowestBit(uint256 x) private pure returns (uint256) {
        // unchecked: two's complement isolates the lowest set bit; x != 0 so the result is a power of two
        unchecked {
            return Math.log2(x & (~x + 1));
        }
    }

    function _popMessage(address coordinator, uint256[2] calldata pkG1, uint256[4] calldata pkG2)
        private
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(BLS_POP_DOMAIN, block.chainid, address(this), coordinator, pkG1, pkG2));
    }

    function _g2(uint256[4] calldata w) private pure returns (BN254.G2Point memory) {
        return BN254.G2Point([w[0], w[1]], [w[2], w[3]]);
    }
}
