// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IBlsSignerRegistry} from "./IBlsSignerRegistry.sol";

/// @notice Lifecycle of a published model.
/// @dev `None` = unknown root; `Pending` = published, collecting coordinator attestations until its `expiresAt`
///      block; `Accepted` = the project's model moved to it (the root is used for good); `Superseded` = the
///      project's model moved to another root before this one reached the attestation threshold; `Expired` = its
///      attestation window ended without acceptance while its parent was still the project's model (its
///      publisher was slashed). Superseded and Expired are final for the record; the root may be published again
///      as a new record.
enum ModelStatus {
    None,
    Pending,
    Accepted,
    Superseded,
    Expired
}

/// @title IModelShardRegistry
/// @notice Published models (a Merkle root over `k + m` Reed-Solomon shards of the serialized safetensors),
///         coordinator attestations (one by one, or one BLS aggregate checked by `BlsSignerRegistry`) that move a
///         project's global model forward, and on-chain shard proofs. Storage providers and their challenges live
///         in `ShardProviders`, coordinators' BLS keys in `BlsSignerRegistry`.
/// @dev Roots cannot be squatted: what a coordinator vouches for (one by one, or in the BLS message) names the
///      manifest hash and the publisher, a pending model expires after `modelExpiry` blocks (its publisher is
///      slashed `publisherSlash` unless the project moved on), and its root may then be published again. Roots
///      never cycle back: a project's genesis root and every accepted root can never be published again.
///      Shard leaf = `keccak256(abi.encode(uint256 index, bytes32 shardHash))`, pairs hashed sorted
///      (OpenZeppelin `MerkleProof`), a lone last node promoted unchanged (rs_merkle), and a valid index is
///      `< dataShards + parityShards`. See docs/storage.md.
interface IModelShardRegistry {
    // ------------------------------------------------------------------ structs

    /// @notice What an aggregator publishes.
    /// @param projectId the training project (must fit in 64 bits)
    /// @param root Merkle root over the `dataShards + parityShards` erasure-coded shards
    /// @param manifestHash keccak256 of the off-chain manifest JSON (tensor layout, shard hashes, codec)
    /// @param parentRoot the project's model root this model was trained from (`Project.modelRoot`)
    /// @param totalSize bytes of the serialized safetensors
    /// @param shardSize bytes per shard (the last data shard is zero-padded)
    /// @param dataShards k: any k shards rebuild the model (>= 1)
    /// @param parityShards m: Reed-Solomon parity shards (k + m <= MAX_SHARDS)
    struct ModelManifest {
        uint256 projectId;
        bytes32 root;
        bytes32 manifestHash;
        bytes32 parentRoot;
        uint64 totalSize;
        uint32 shardSize;
        uint8 dataShards;
        uint8 parityShards;
    }

    /// @notice A published model as returned by `getModel`.
    /// @param manifest the published manifest
    /// @param publisher the aggregator that published it (receives the aggregator fees on acceptance)
    /// @param publishedBlock block of publication
    /// @param expiresAt last block at which the model can be attested (publishedBlock + the model expiry in
    ///        force at publication)
    /// @param status lifecycle status
    /// @param attestedStake the stake behind the model at the last attestation: the bonded stake, re-read then,
    ///        of the coordinators that attested one by one and were still active Coordinators (for a BLS
    ///        aggregate: the signers' stake as recorded in the running aggregate)
    /// @param taskIds the training tasks merged into this model (at most MAX_TASKS_PER_MODEL)
    struct Model {
        ModelManifest manifest;
        address publisher;
        uint64 publishedBlock;
        uint64 expiresAt;
        ModelStatus status;
        uint256 attestedStake;
        uint256[] taskIds;
    }

    // ------------------------------------------------------------------ events

    /// @notice `publisher` published `root` for `projectId` on top of `parentRoot`.
    event ModelPublished(
        uint256 indexed projectId,
        bytes32 indexed root,
        address indexed publisher,
        bytes32 parentRoot,
        bytes32 manifestHash,
        uint256[] taskIds
    );
    /// @notice `coordinator` attested `root` with `stake`; `attestedStake` is the stake now bonded behind the model
    ///         (every attester's current stake, re-read, counting only active Coordinators).
    event ModelAttested(
        bytes32 indexed root, address indexed coordinator, uint256 stake, uint256 attestedStake
    );
    /// @notice `root` reached the attestation threshold and became the model of `projectId`.
    event ModelAccepted(uint256 indexed projectId, bytes32 indexed root, bytes32 parentRoot, uint256 version);
    /// @notice `root` can never be accepted: the model of `projectId` is now `currentRoot`, not its parent.
    event ModelSuperseded(uint256 indexed projectId, bytes32 indexed root, bytes32 currentRoot);
    /// @notice `Rewards.payAggregatorFee` reverted for `taskId` on acceptance of `root`; acceptance went on
    ///         without that fee (a successful credit is reported by Rewards' own `AggregatorFeePaid`).
    event AggregatorFeeFailed(bytes32 indexed root, uint256 indexed taskId, bytes reason);

    /// @notice Coordinators holding `stake` (the set bits of `signers`) attested `root` with one BLS aggregate.
    event ModelAttestedBls(bytes32 indexed root, uint256 signers, uint256 stake);
    /// @notice `root` of `projectId` was not accepted within its window while its parent was still the project's
    ///         model: `slashed` of its publisher's stake was taken. The root may be published again.
    event ModelExpired(
        uint256 indexed projectId, bytes32 indexed root, address indexed publisher, uint256 slashed
    );
    /// @notice Admin changed the attestation window of newly published models (blocks).
    event ModelExpiryUpdated(uint64 blocks);
    /// @notice Admin changed the stake slashed from the publisher of a model that expires unaccepted.
    event PublisherSlashUpdated(uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice A constructor argument is the zero address.
    error ModelShardRegistryZeroAddress();
    /// @notice The caller is not an active Aggregator.
    error ModelShardRegistryNotAggregator(address account);
    /// @notice The caller is not an active Coordinator.
    error ModelShardRegistryNotCoordinator(address account);
    /// @notice A zero root was given.
    error ModelShardRegistryZeroRoot();
    /// @notice The project does not exist.
    error ModelShardRegistryUnknownProject(uint256 projectId);
    /// @notice A project or task id does not fit the 64-bit packed storage.
    error ModelShardRegistryIdTooLarge(uint256 id);
    /// @notice `k == 0` or `k + m > MAX_SHARDS`.
    error ModelShardRegistryInvalidShardCounts(uint8 dataShards, uint8 parityShards);
    /// @notice `totalSize == 0`, `shardSize == 0` or `shardSize * k < totalSize`.
    error ModelShardRegistryInvalidSizes(uint64 totalSize, uint32 shardSize, uint8 dataShards);
    /// @notice The manifest's parent is not the project's current model root.
    error ModelShardRegistryParentMismatch(bytes32 current, bytes32 given);
    /// @notice The root has a Pending record still inside its attestation window.
    error ModelShardRegistryRootExists(bytes32 root);
    /// @notice The root was accepted, is a project's genesis root, or equals its parent: it can never be
    ///         published again.
    error ModelShardRegistryRootUsed(bytes32 root);
    /// @notice More than MAX_TASKS_PER_MODEL task ids were given.
    error ModelShardRegistryTooManyTasks(uint256 count, uint256 max);
    /// @notice No model was published under `root`.
    error ModelShardRegistryUnknownModel(bytes32 root);
    /// @notice The model is not Pending.
    error ModelShardRegistryModelNotPending(bytes32 root, ModelStatus status);
    /// @notice The coordinator already attested this model.
    error ModelShardRegistryAlreadyAttested(bytes32 root, address coordinator);
    /// @notice The model's record does not carry the manifest hash and publisher the coordinator vouches for
    ///         (it carries `manifestHash` and `publisher`).
    error ModelShardRegistryAttestationMismatch(bytes32 root, bytes32 manifestHash, address publisher);
    /// @notice `max` coordinators already attested the model one by one; the rest must use the BLS aggregate.
    error ModelShardRegistryAttestersFull(bytes32 root, uint256 max);
    /// @notice The model's attestation window ended at block `expiresAt`.
    error ModelShardRegistryModelExpired(bytes32 root, uint256 expiresAt);
    /// @notice The model's attestation window runs until block `expiresAt`.
    error ModelShardRegistryModelNotExpired(bytes32 root, uint256 expiresAt);
    /// @notice A model expiry outside [MIN_MODEL_EXPIRY, MAX_MODEL_EXPIRY] blocks.
    error ModelShardRegistryInvalidExpiry(uint64 blocks);
    /// @notice The signers hold `stake`, less than the `required` 2/3 of coordinator stake.
    error ModelShardRegistryInsufficientSignerStake(uint256 stake, uint256 required);
    /// @notice The transaction ran so low on gas that a failed inner call may have been starved; retry with
    ///         more gas.
    error ModelShardRegistryInsufficientGas();

    // ------------------------------------------------------------------ models

    /// @notice Publish a model (active Aggregator). Stored Pending until coordinators holding >= 2/3 of
    ///         coordinator stake attest it, at most until block `publishedBlock + modelExpiry()`. A root with a
    ///         Pending record past its window is expired first (see `expireModel`) and published again as a new
    ///         record; a root whose record is Expired or Superseded may be published again.
    /// @dev `projectId` and task ids are stored packed in 64 bits each (reverts `ModelShardRegistryIdTooLarge`
    ///      otherwise). The task ids are not checked here; a task of another project only makes its fee
    ///      payment fail (`AggregatorFeeFailed`) on acceptance. Reverts `ModelShardRegistryRootUsed` for an
    ///      accepted or genesis root (or one equal to its parent), `ModelShardRegistryRootExists` while another
    ///      record of the root is Pending.
    /// @param manifest the model manifest; `parentRoot` must equal `projects.modelRoot(projectId)`
    /// @param taskIds the tasks merged into this model (<= MAX_TASKS_PER_MODEL); their aggregator fees go to
    ///        the caller on acceptance
    function publishModel(ModelManifest calldata manifest, uint256[] calldata taskIds) external;

    /// @notice Attest a Pending model inside its window (active Coordinator, once per record) that carries
    ///         exactly `manifestHash` and `publisher`. Every earlier attester's stake is re-read: the model counts
    ///         the stake bonded now by the attesters that are still active Coordinators. When that stake * 3 >=
    ///         totalStake(Coordinator) * 2 the model is accepted in the same transaction: the project's model
    ///         advances and each task's aggregator fee is credited to the publisher. If, when the threshold is
    ///         reached, the project's model is no longer the parent, the model becomes Superseded instead (the
    ///         call does not revert). At most MAX_ATTESTERS attest one by one.
    /// @param root the model root
    /// @param manifestHash the manifest hash the coordinator checked
    /// @param publisher the publisher the coordinator vouches for (who receives the aggregator fees)
    function attestModel(bytes32 root, bytes32 manifestHash, address publisher) external;

    /// @notice Attest a Pending model inside its window with one BLS aggregate of the coordinators whose signer
    ///         indices (in `BlsSignerRegistry`) are the set bits of `signers`, signing
    ///         `blsAttestationMessage(root)`. Anyone may submit it (the aggregator does).
    ///         `BlsSignerRegistry.verifyAggregate` checks the signature and returns the signers' recorded bonded
    ///         stake (current: staking reports every change), which must reach 2/3 of coordinator stake on its
    ///         own; the model is then accepted exactly as by `attestModel`.
    /// @param root the model root
    /// @param signers bitmap of signer indices (bit i = `BlsSignerRegistry.blsSignerAt(i)`), non-zero
    /// @param apkG2 the sum of the signers' G2 keys (bound to the on-chain G1 sum by the check)
    /// @param sigma the sum of the signers' signatures
    function attestModelBls(
        bytes32 root,
        uint256 signers,
        uint256[4] calldata apkG2,
        uint256[2] calldata sigma
    ) external;

    /// @notice End a Pending model whose window has passed (anyone): Superseded when the project's model is no
    ///         longer its parent, else Expired and `publisherSlash` is taken from its publisher (a failing slash
    ///         never blocks the call). Either way its root may be published again.
    /// @param root the model root
    function expireModel(bytes32 root) external;

    /// @notice What coordinators sign for a published model: keccak256(abi.encode(BLS_ATTESTATION_DOMAIN, chainId,
    ///         this contract, projectId, parentRoot, root, manifestHash, publisher, publishedBlock, taskIds)).
    ///         Zero for an unknown root.
    function blsAttestationMessage(bytes32 root) external view returns (bytes32);

    /// @notice True when `proof` proves `shardHash` at `index` under `root` of a published model
    ///         (leaf = keccak256(abi.encode(index, shardHash)), sorted pairs) and `index < k + m`.
    ///         False for unknown roots.
    function verifyShard(bytes32 root, uint256 index, bytes32 shardHash, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice The model published under `root` (status None and zero fields when unknown).
    function getModel(bytes32 root) external view returns (Model memory);

    /// @notice Who holds the model `root` by its acceptance: its publisher (who built it), the signers of the BLS
    ///         aggregate that accepted it (bit i = signer index i of the BLS signer registry; 0 when it was
    ///         accepted by attestations one by one) and the block of the publication they signed. All zero unless
    ///         `root` is Accepted. Publishing a model and signing its attestation message both state that the
    ///         account built the model and holds it: `ShardProviders` counts these accounts as holders of every
    ///         shard without an announcement.
    function acceptedHoldersOf(bytes32 root)
        external
        view
        returns (address publisher, uint256 blsSigners, uint256 publishedBlock);

    /// @notice The BLS signer registry that checks aggregate attestations.
    function blsSigners() external view returns (IBlsSignerRegistry);

    /// @notice `k` and `m` of the model published under `root` (both 0 when unknown; `k` is never 0 otherwise).
    function shardCounts(bytes32 root) external view returns (uint8 dataShards, uint8 parityShards);

    /// @notice Status of the model under `root`.
    function modelStatus(bytes32 root) external view returns (ModelStatus);

    /// @notice True when `coordinator` attested the current record of `root` one by one.
    function hasAttested(bytes32 root, address coordinator) external view returns (bool);

    /// @notice The coordinators that attested the current record of `root` one by one, in order.
    function attestersOf(bytes32 root) external view returns (address[] memory);

    /// @notice True when `root` can never be published again: it was accepted, or is a project's genesis root.
    function isRootUsed(bytes32 root) external view returns (bool);

    /// @notice Number of models accepted in `projectId` (the version of its latest model).
    function modelCount(uint256 projectId) external view returns (uint256);

    /// @notice Root of the latest model accepted through this registry in `projectId` (0 when none).
    function latestAccepted(uint256 projectId) external view returns (bytes32);

    /// @notice Blocks a newly published model may collect attestations.
    function modelExpiry() external view returns (uint64);

    /// @notice Stake taken from the publisher of a model that expires unaccepted.
    function publisherSlash() external view returns (uint256);

    // ------------------------------------------------------------------ admin

    /// @notice Admin (Timelock): set the attestation window of models published from now on, in blocks
    ///         ([MIN_MODEL_EXPIRY, MAX_MODEL_EXPIRY]).
    function setModelExpiry(uint64 blocks) external;

    /// @notice Admin (Timelock): set the stake slashed from the publisher of a model that expires unaccepted
    ///         (0 disables the slash).
    function setPublisherSlash(uint256 amount) external;
}
