// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IStakeObserver} from "./IStakeObserver.sol";

/// @notice Lifecycle of a published model.
/// @dev `None` = unknown root; `Pending` = published, collecting coordinator attestations; `Accepted` = the
///      project's model moved to it; `Superseded` = the project's model moved to another root before this one
///      reached the attestation threshold (terminal, never blocks anything).
enum ModelStatus {
    None,
    Pending,
    Accepted,
    Superseded
}

/// @notice Lifecycle of a storage challenge.
enum ChallengeStatus {
    None,
    Open,
    Passed,
    Failed
}

/// @title IModelShardRegistry
/// @notice Published models (a Merkle root over `k + m` Reed-Solomon shards of the serialized safetensors),
///         coordinator attestations that move a project's global model forward, on-chain shard proofs,
///         storage providers with their endpoints and per-shard availability, and liveness challenges.
/// @dev Shard leaf = `keccak256(abi.encode(uint256 index, bytes32 shardHash))`, pairs hashed sorted
///      (OpenZeppelin `MerkleProof`), a lone last node promoted unchanged (rs_merkle), and a valid index is
///      `< dataShards + parityShards`. See docs/storage.md.
///      BLS signers: the contract keeps the sum of the G1 keys and of the recorded bonded stake of the signers
///      counted as active Coordinators, updated by `ParticipantStaking` through `onStakeChanged`, so that an
///      aggregate attestation pays only for its non-signers. See docs/bls.md.
interface IModelShardRegistry is IStakeObserver {
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
    /// @param status lifecycle status
    /// @param attestedStake sum of `stakeOf` of the coordinators that attested, taken at attestation time (for a
    ///        BLS aggregate: the signers' stake as recorded in the running aggregate)
    /// @param taskIds the training tasks merged into this model (at most MAX_TASKS_PER_MODEL)
    struct Model {
        ModelManifest manifest;
        address publisher;
        uint64 publishedBlock;
        ModelStatus status;
        uint256 attestedStake;
        uint256[] taskIds;
    }

    /// @notice A storage provider.
    /// @param endpoint base URL serving `GET <endpoint>/shards/<root>/<index>` with the shard and its proof
    /// @param active false before registration and after `deactivateProvider`
    /// @param rootsHeld number of model roots for which the provider currently announces at least one shard
    /// @param successes challenges answered with a valid proof
    /// @param failures challenges that expired unanswered
    struct Provider {
        string endpoint;
        bool active;
        uint32 rootsHeld;
        uint64 successes;
        uint64 failures;
    }

    /// @notice A storage challenge.
    /// @param root the model
    /// @param provider the challenged provider
    /// @param challenger who opened it
    /// @param index the shard index the provider must prove
    /// @param deadline last block at which `respondChallenge` is accepted
    /// @param status lifecycle status
    struct Challenge {
        bytes32 root;
        address provider;
        address challenger;
        uint16 index;
        uint64 deadline;
        ChallengeStatus status;
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
    /// @notice `coordinator` attested `root` with `stake`; `attestedStake` is the running total.
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

    /// @notice `provider` registered (or re-activated) with `endpoint`.
    event ProviderRegistered(address indexed provider, string endpoint);
    /// @notice `provider` changed its endpoint.
    event ProviderEndpointUpdated(address indexed provider, string endpoint);
    /// @notice `provider` deactivated itself.
    event ProviderDeactivated(address indexed provider);
    /// @notice `provider` now announces `bitmap` for `root` (`added` = the newly announced bits).
    event ShardsAnnounced(bytes32 indexed root, address indexed provider, uint256 added, uint256 bitmap);
    /// @notice `provider` stopped announcing `removed` for `root`; `bitmap` is what it still announces.
    event ShardsWithdrawn(bytes32 indexed root, address indexed provider, uint256 removed, uint256 bitmap);

    /// @notice `challenger` opened challenge `challengeId`: `provider` must prove shard `index` of `root`
    ///         by block `deadline`.
    event ChallengeOpened(
        uint256 indexed challengeId,
        bytes32 indexed root,
        address indexed provider,
        address challenger,
        uint256 index,
        uint64 deadline
    );
    /// @notice The provider of `challengeId` proved its shard.
    event ChallengePassed(uint256 indexed challengeId, address indexed provider, bytes32 shardHash);
    /// @notice `challengeId` expired unanswered: the provider's announcement of `root` was removed and
    ///         `slashed` of its stake taken.
    event ChallengeFailed(
        uint256 indexed challengeId, address indexed provider, bytes32 indexed root, uint256 slashed
    );
    /// @notice `coordinator` registered (or rotated) its BLS key at signer index `index`.
    event BlsKeyRegistered(address indexed coordinator, uint256 indexed index, uint256[2] pkG1);
    /// @notice Coordinators holding `stake` (the set bits of `signers`) attested `root` with one BLS aggregate.
    event ModelAttestedBls(bytes32 indexed root, uint256 signers, uint256 stake);
    /// @notice The signer at `index` is now counted in the aggregate (`active`, with recorded bonded stake
    ///         `stake`) or no longer counted (`active` false, `stake` 0).
    event BlsSignerUpdated(address indexed coordinator, uint256 indexed index, bool active, uint256 stake);
    /// @notice Admin changed the challenge response window (blocks).
    event ChallengeWindowUpdated(uint64 window);
    /// @notice Admin changed the amount slashed for a failed challenge.
    event ChallengeSlashUpdated(uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice The caller is not an active Aggregator.
    error ModelShardRegistryNotAggregator(address account);
    /// @notice The caller is not an active Coordinator.
    error ModelShardRegistryNotCoordinator(address account);
    /// @notice The caller holds no bonded stake.
    error ModelShardRegistryNotStaked(address account);
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
    /// @notice The root was already published (or equals its parent).
    error ModelShardRegistryRootExists(bytes32 root);
    /// @notice More than MAX_TASKS_PER_MODEL task ids were given.
    error ModelShardRegistryTooManyTasks(uint256 count, uint256 max);
    /// @notice No model was published under `root`.
    error ModelShardRegistryUnknownModel(bytes32 root);
    /// @notice The model is not Pending.
    error ModelShardRegistryModelNotPending(bytes32 root, ModelStatus status);
    /// @notice The coordinator already attested this model.
    error ModelShardRegistryAlreadyAttested(bytes32 root, address coordinator);
    /// @notice The BLS public key is the point at infinity or not on the curve.
    error ModelShardRegistryInvalidBlsKey();
    /// @notice The proof of possession does not verify for this key, chain, contract and sender.
    error ModelShardRegistryInvalidProofOfPossession(address coordinator);
    /// @notice All MAX_BLS_SIGNERS signer indices are taken.
    error ModelShardRegistryBlsSignersFull();
    /// @notice `coordinator` has no BLS key.
    error ModelShardRegistryBlsKeyNotRegistered(address coordinator);
    /// @notice Only the staking contract may report stake changes.
    error ModelShardRegistryNotStaking(address caller);
    /// @notice The signer bitmap is empty or names an index no coordinator registered.
    error ModelShardRegistryInvalidSigners(uint256 signers, uint256 registered);
    /// @notice The signer at `index` is not counted in the aggregate: no longer an active Coordinator as last
    ///         reported by staking (after a minimum-stake change, see `syncBlsSigner`).
    error ModelShardRegistryStaleSigner(uint256 index, address coordinator);
    /// @notice The aggregate signature does not verify for the signers' keys and the model.
    error ModelShardRegistryInvalidAggregateSignature(bytes32 root);
    /// @notice The signers hold `stake`, less than the `required` 2/3 of coordinator stake.
    error ModelShardRegistryInsufficientSignerStake(uint256 stake, uint256 required);
    /// @notice The transaction ran so low on gas that a failed inner call may have been starved; retry with
    ///         more gas.
    error ModelShardRegistryInsufficientGas();

    /// @notice The endpoint is empty or longer than MAX_ENDPOINT_LENGTH bytes.
    error ModelShardRegistryInvalidEndpoint(uint256 length);
    /// @notice The caller is already an active provider.
    error ModelShardRegistryProviderExists(address provider);
    /// @notice The address is not an active provider.
    error ModelShardRegistryNotProvider(address account);
    /// @notice The provider still announces shards of `rootsHeld` models; withdraw them first.
    error ModelShardRegistryProviderHoldsShards(address provider, uint256 rootsHeld);
    /// @notice The bitmap is zero or has a bit at or above the model's shard count.
    error ModelShardRegistryInvalidBitmap(uint256 bitmap, uint256 shardCount);
    /// @notice The bitmap names shards (`missing`) that the provider does not announce.
    error ModelShardRegistryShardsNotHeld(uint256 missing);
    /// @notice Shard `index` already has MAX_HOLDERS_PER_SHARD holders.
    error ModelShardRegistryShardHoldersFull(uint256 index);
    /// @notice The provider has an open challenge `challengeId` for this root.
    error ModelShardRegistryChallengeOpen(uint256 challengeId);
    /// @notice The provider announces no shard of this root.
    error ModelShardRegistryNothingToChallenge(bytes32 root, address provider);
    /// @notice The challenge is not Open.
    error ModelShardRegistryChallengeNotOpen(uint256 challengeId, ChallengeStatus status);
    /// @notice Only the challenged provider may respond.
    error ModelShardRegistryNotChallenged(uint256 challengeId, address caller);
    /// @notice The response window ended at `deadline`.
    error ModelShardRegistryChallengeExpired(uint256 challengeId, uint64 deadline);
    /// @notice The response window is still running until `deadline`.
    error ModelShardRegistryChallengeNotExpired(uint256 challengeId, uint64 deadline);
    /// @notice The shard proof does not verify against the model root.
    error ModelShardRegistryInvalidProof(uint256 challengeId);
    /// @notice A challenge window outside [MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW].
    error ModelShardRegistryInvalidWindow(uint64 window);

    // ------------------------------------------------------------------ models

    /// @notice Publish a model (active Aggregator). Stored Pending until coordinators holding >= 2/3 of
    ///         coordinator stake attest it.
    /// @dev `projectId` and task ids are stored packed in 64 bits each (reverts `ModelShardRegistryIdTooLarge`
    ///      otherwise). The task ids are not checked here; a task of another project only makes its fee
    ///      payment fail (`AggregatorFeeFailed`) on acceptance.
    /// @param manifest the model manifest; `parentRoot` must equal `projects.modelRoot(projectId)`
    /// @param taskIds the tasks merged into this model (<= MAX_TASKS_PER_MODEL); their aggregator fees go to
    ///        the caller on acceptance
    function publishModel(ModelManifest calldata manifest, uint256[] calldata taskIds) external;

    /// @notice Attest a Pending model (active Coordinator, once per model) with the caller's bonded stake.
    ///         When attested stake * 3 >= totalStake(Coordinator) * 2 the model is accepted in the same
    ///         transaction: the project's model advances and each task's aggregator fee is credited to the
    ///         publisher. If, when the threshold is reached, the project's model is no longer the parent, the
    ///         model becomes Superseded instead (the call does not revert, the attestation is kept).
    /// @param root the model root
    function attestModel(bytes32 root) external;

    /// @notice Register (or rotate) the caller's BLS key (active Coordinator). `pop` must be the key's
    ///         signature of `blsPopMessage(msg.sender, pkG1, pkG2)`, which binds the chain, this contract, the
    ///         caller and both halves of the key (no rogue keys, no replay by another address). The signer is
    ///         counted in the aggregate from now on with its current bonded stake; a rotation replaces the old
    ///         key in the aggregate key.
    /// @param pkG1 sk·G1 as (x, y)
    /// @param pkG2 sk·G2 as (x.c1, x.c0, y.c1, y.c0)
    /// @param pop sk·H(message) as (x, y)
    function registerBlsKey(uint256[2] calldata pkG1, uint256[4] calldata pkG2, uint256[2] calldata pop)
        external;

    /// @notice Attest a Pending model with one BLS aggregate of the coordinators whose signer indices are the set
    ///         bits of `signers`, signing `blsAttestationMessage(root)`. Anyone may submit it (the aggregator
    ///         does). Every signer must be counted in the aggregate (an active Coordinator as last reported by
    ///         staking, else `ModelShardRegistryStaleSigner`); their recorded bonded stake must reach 2/3 of
    ///         coordinator stake on its own; the model is then accepted exactly as by `attestModel`.
    /// @dev The signers' key and stake are the running aggregate minus the counted non-signers, so the cost
    ///      grows with the number of non-signers only (one pairing check whatever the number of signers).
    /// @param root the model root
    /// @param signers bitmap of signer indices (bit i = `blsSignerAt(i)`), non-zero
    /// @param apkG2 the sum of the signers' G2 keys (bound to the on-chain G1 sum by the check)
    /// @param sigma the sum of the signers' signatures
    function attestModelBls(
        bytes32 root,
        uint256 signers,
        uint256[4] calldata apkG2,
        uint256[2] calldata sigma
    ) external;

    /// @notice The message a coordinator signs to prove possession of its BLS key.
    function blsPopMessage(address coordinator, uint256[2] calldata pkG1, uint256[4] calldata pkG2)
        external
        view
        returns (bytes32);

    /// @notice What coordinators sign for a published model: keccak256(abi.encode(ATTESTATION_DOMAIN, chainId,
    ///         this contract, projectId, parentRoot, root, taskIds)). Zero for an unknown root.
    function blsAttestationMessage(bytes32 root) external view returns (bytes32);

    /// @notice Signer index and G1 key of `coordinator` (`registered` false when it has none).
    function blsKeyOf(address coordinator)
        external
        view
        returns (bool registered, uint256 index, uint256[2] memory pkG1);

    /// @notice The coordinator at signer index `index` (zero address when none).
    function blsSignerAt(uint256 index) external view returns (address);

    /// @notice Number of signer indices in use.
    function blsSignerCount() external view returns (uint256);

    /// @notice Re-apply the staking rule to `coordinator`'s signer (permissionless): counted in the aggregate
    ///         iff `isActive(coordinator, Coordinator)`, with its current bonded stake. Staking reports every
    ///         stake and role change by itself; this is needed only after governance changes the Coordinator
    ///         minimum stake (which makes signers active or inactive without a report), or for stakes changed
    ///         while no observer was set. Emits `BlsSignerUpdated` when something changed.
    /// @param coordinator a coordinator with a BLS key (else `ModelShardRegistryBlsKeyNotRegistered`)
    function syncBlsSigner(address coordinator) external;

    /// @notice The running aggregate: `apk` = sum of the G1 keys of the counted signers (the point at infinity
    ///         (0, 0) when none), `stake` = sum of their recorded bonded stake, `activeBitmap` = their indices.
    function blsAggregate() external view returns (uint256[2] memory apk, uint256 stake, uint256 activeBitmap);

    /// @notice The bonded stake recorded for signer `index` (0 when it is not counted).
    function blsSignerStake(uint256 index) external view returns (uint256);

    /// @notice True when `proof` proves `shardHash` at `index` under `root` of a published model
    ///         (leaf = keccak256(abi.encode(index, shardHash)), sorted pairs) and `index < k + m`.
    ///         False for unknown roots.
    function verifyShard(bytes32 root, uint256 index, bytes32 shardHash, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice The model published under `root` (status None and zero fields when unknown).
    function getModel(bytes32 root) external view returns (Model memory);

    /// @notice Status of the model under `root`.
    function modelStatus(bytes32 root) external view returns (ModelStatus);

    /// @notice True when `coordinator` attested `root`.
    function hasAttested(bytes32 root, address coordinator) external view returns (bool);

    /// @notice Number of models accepted in `projectId` (the version of its latest model).
    function modelCount(uint256 projectId) external view returns (uint256);

    /// @notice Root of the latest model accepted through this registry in `projectId` (0 when none).
    function latestAccepted(uint256 projectId) external view returns (bytes32);

    // ------------------------------------------------------------------ providers

    /// @notice Register the caller as a storage provider (any address with bonded stake > 0).
    /// @param endpoint base URL, 1..MAX_ENDPOINT_LENGTH bytes
    function registerProvider(string calldata endpoint) external;

    /// @notice Change the caller's endpoint (active provider).
    function updateEndpoint(string calldata endpoint) external;

    /// @notice Deactivate the caller (active provider announcing no shards). Its record and counters stay.
    function deactivateProvider() external;

    /// @notice Announce that the caller (active provider with bonded stake) holds the shards of `root` whose
    ///         bits are set in `bitmap` (bit i = shard i, i < k + m). Already announced bits are ignored.
    function announceShards(bytes32 root, uint256 bitmap) external;

    /// @notice Stop announcing the shards of `root` in `bitmap` (all must be announced; not while a challenge
    ///         of the caller for `root` is open).
    function withdrawShards(bytes32 root, uint256 bitmap) external;

    /// @notice Number of shard indices of `root` with at least one holder, and whether that is >= k.
    function availability(bytes32 root) external view returns (uint256 shardsAvailable, bool recoverable);

    /// @notice Providers announcing shard `index` of `root` (at most MAX_HOLDERS_PER_SHARD).
    function providersOf(bytes32 root, uint256 index) external view returns (address[] memory);

    /// @notice Bitmap of the shards of `root` announced by `provider`.
    function shardsOf(bytes32 root, address provider) external view returns (uint256);

    /// @notice Endpoint of `provider` (empty when never registered).
    function endpointOf(address provider) external view returns (string memory);

    /// @notice The provider record of `provider`.
    function getProvider(address provider) external view returns (Provider memory);

    // ------------------------------------------------------------------ challenges

    /// @notice Challenge `provider` (caller must hold bonded stake) to prove a shard of `root` it announces,
    ///         picked from `blockhash(block.number - 1)` and the challenge id. One open challenge per
    ///         (root, provider).
    /// @return challengeId the new challenge id (ids start at 1)
    function challenge(bytes32 root, address provider) external returns (uint256 challengeId);

    /// @notice Answer an open challenge (the challenged provider, until the deadline) with the shard hash and
    ///         its Merkle proof. Reverts `ModelShardRegistryInvalidProof` on a bad proof (retry allowed).
    function respondChallenge(uint256 challengeId, bytes32 shardHash, bytes32[] calldata proof) external;

    /// @notice Close an unanswered challenge after its deadline (anyone): the provider's announcement of the
    ///         root is removed and `challengeSlash` of its stake is taken (never reverts on the slash).
    function expireChallenge(uint256 challengeId) external;

    /// @notice The challenge `challengeId`.
    function getChallenge(uint256 challengeId) external view returns (Challenge memory);

    /// @notice Number of challenges ever opened (the latest id).
    function challengeCount() external view returns (uint256);

    /// @notice Id of the open challenge of `provider` for `root` (0 when none).
    function openChallengeOf(bytes32 root, address provider) external view returns (uint256);

    /// @notice Blocks a provider has to answer a challenge.
    function challengeWindow() external view returns (uint64);

    /// @notice Stake taken from a provider whose challenge expired.
    function challengeSlash() external view returns (uint256);

    // ------------------------------------------------------------------ admin

    /// @notice Admin (Timelock): set the challenge response window in blocks.
    function setChallengeWindow(uint64 window) external;

    /// @notice Admin (Timelock): set the stake slashed for a failed challenge (0 disables slashing).
    function setChallengeSlash(uint256 amount) external;
}
