// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IStakeObserver} from "./IStakeObserver.sol";

/// @title IBlsSignerRegistry
/// @notice Coordinators' BLS keys on BN254 (registered with a proof of possession) and the running aggregate of
///         the signers counted as active Coordinators: the sum of their G1 keys and of their recorded bonded
///         stake, kept current by `ParticipantStaking` through `onStakeChanged`. `verifyAggregate` checks one
///         aggregate signature of any subset of the counted signers and returns the stake behind it, paying only
///         for the non-signers. See docs/bls.md.
/// @dev Invariant kept by every write: `blsAggregate()` is the sum of the keys and recorded stakes of the signers
///      whose bit is set in its bitmap, and a signer that is not counted has recorded stake 0.
interface IBlsSignerRegistry is IStakeObserver {
    // ------------------------------------------------------------------ events

    /// @notice `coordinator` registered (or rotated) its BLS key at signer index `index`.
    event BlsKeyRegistered(address indexed coordinator, uint256 indexed index, uint256[2] pkG1);
    /// @notice Every signer index was taken: `coordinator` took index `index` from `previous`, which was no longer
    ///         an active Coordinator (its key left with it; it registers again like a newcomer).
    event BlsSignerReplaced(uint256 indexed index, address indexed previous, address indexed coordinator);
    /// @notice The signer at `index` is now counted in the aggregate (`active`, with recorded bonded stake
    ///         `stake`) or no longer counted (`active` false, `stake` 0).
    event BlsSignerUpdated(address indexed coordinator, uint256 indexed index, bool active, uint256 stake);

    // ------------------------------------------------------------------ errors

    /// @notice A constructor argument is the zero address.
    error BlsSignerRegistryZeroAddress();
    /// @notice The caller is not an active Coordinator.
    error BlsSignerRegistryNotCoordinator(address account);
    /// @notice The BLS public key is the point at infinity or not on the curve.
    error BlsSignerRegistryInvalidBlsKey();
    /// @notice The proof of possession does not verify for this key, chain, contract and sender.
    error BlsSignerRegistryInvalidProofOfPossession(address coordinator);
    /// @notice All MAX_BLS_SIGNERS signer indices are taken by active Coordinators.
    error BlsSignerRegistrySignersFull();
    /// @notice `coordinator` has no BLS key.
    error BlsSignerRegistryKeyNotRegistered(address coordinator);
    /// @notice Only the staking contract may report stake changes.
    error BlsSignerRegistryNotStaking(address caller);
    /// @notice The signer bitmap is empty or names an index no coordinator registered.
    error BlsSignerRegistryInvalidSigners(uint256 signers, uint256 registered);
    /// @notice The signer at `index` is not counted in the aggregate: no longer an active Coordinator as last
    ///         reported by staking (after a minimum-stake change, see `syncBlsSigner`).
    error BlsSignerRegistryStaleSigner(uint256 index, address coordinator);
    /// @notice The aggregate signature does not verify for the signers' keys and `message`.
    error BlsSignerRegistryInvalidAggregateSignature(bytes32 message);

    // ------------------------------------------------------------------ keys

    /// @notice Register (or rotate) the caller's BLS key (active Coordinator). `pop` must be the key's
    ///         signature of `blsPopMessage(msg.sender, pkG1, pkG2)`, which binds the chain, this contract, the
    ///         caller and both halves of the key (no rogue keys, no replay by another address). The signer is
    ///         counted in the aggregate from now on with its current bonded stake; a rotation replaces the old
    ///         key in the aggregate key. A new signer gets the next free index; once all MAX_BLS_SIGNERS are
    ///         taken, the lowest index whose signer is uncounted and no longer an active Coordinator
    ///         (`BlsSignerReplaced`), else `BlsSignerRegistrySignersFull`.
    /// @param pkG1 sk·G1 as (x, y)
    /// @param pkG2 sk·G2 as (x.c1, x.c0, y.c1, y.c0)
    /// @param pop sk·H(message) as (x, y)
    function registerBlsKey(uint256[2] calldata pkG1, uint256[4] calldata pkG2, uint256[2] calldata pop)
        external;

    /// @notice Re-apply the staking rule to `coordinator`'s signer (permissionless): counted in the aggregate
    ///         iff `isActive(coordinator, Coordinator)`, with its current bonded stake. Staking reports every
    ///         stake and role change by itself; this is needed only after governance changes the Coordinator
    ///         minimum stake (which makes signers active or inactive without a report), or for stakes changed
    ///         while no observer was set. Emits `BlsSignerUpdated` when something changed.
    /// @param coordinator a coordinator with a BLS key (else `BlsSignerRegistryKeyNotRegistered`)
    function syncBlsSigner(address coordinator) external;

    // ------------------------------------------------------------------ aggregate check

    /// @notice Checks one BLS aggregate signature of the signers whose indices are the set bits of `signers`
    ///         over `message`, and returns their recorded bonded stake. Every signer must be counted in the
    ///         aggregate (an active Coordinator as last reported by staking, else `BlsSignerRegistryStaleSigner`).
    /// @dev The signers' key and stake are the running aggregate minus the counted non-signers, so the cost grows
    ///      with the number of non-signers only (one pairing check whatever the number of signers).
    /// @param message the signed message (the caller builds it, e.g. `ModelShardRegistry.blsAttestationMessage`)
    /// @param signers bitmap of signer indices (bit i = `blsSignerAt(i)`), non-zero
    /// @param apkG2 the sum of the signers' G2 keys (bound to the on-chain G1 sum by the check)
    /// @param sigma the sum of the signers' signatures
    /// @return stake the sum of the signers' recorded bonded stake
    function verifyAggregate(
        bytes32 message,
        uint256 signers,
        uint256[4] calldata apkG2,
        uint256[2] calldata sigma
    ) external view returns (uint256 stake);

    // ------------------------------------------------------------------ views

    /// @notice The message a coordinator signs to prove possession of its BLS key.
    function blsPopMessage(address coordinator, uint256[2] calldata pkG1, uint256[4] calldata pkG2)
        external
        view
        returns (bytes32);

    /// @notice Signer index and G1 key of `coordinator` (`registered` false when it has none).
    function blsKeyOf(address coordinator)
        external
        view
        returns (bool registered, uint256 index, uint256[2] memory pkG1);

    /// @notice The coordinator at signer index `index` (zero address when none).
    function blsSignerAt(uint256 index) external view returns (address);

    /// @notice The block at which signer index `index`'s current coordinator took the index (0 when none): a
    ///         signature bitmap recorded before that block names an earlier holder of the index.
    function blsSignerSince(uint256 index) external view returns (uint256);

    /// @notice Number of signer indices in use.
    function blsSignerCount() external view returns (uint256);

    /// @notice The running aggregate: `apk` = sum of the G1 keys of the counted signers (the point at infinity
    ///         (0, 0) when none), `stake` = sum of their recorded bonded stake, `activeBitmap` = their indices.
    function blsAggregate() external view returns (uint256[2] memory apk, uint256 stake, uint256 activeBitmap);

    /// @notice The bonded stake recorded for signer `index` (0 when it is not counted).
    function blsSignerStake(uint256 index) external view returns (uint256);

    /// @notice The staking contract whose reports keep the aggregate current.
    function staking() external view returns (address);
}
