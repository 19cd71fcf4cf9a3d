// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IModelShardRegistry, ModelStatus} from "./interfaces/IModelShardRegistry.sol";
import {IBlsSignerRegistry} from "./interfaces/IBlsSignerRegistry.sol";
import {IParticipantStaking, Role} from "./interfaces/IParticipantStaking.sol";
import {IProject} from "./interfaces/IProject.sol";
import {IRewards} from "./interfaces/IRewards.sol";

/// @title ModelShardRegistry
/// @notice Published models, coordinator attestations (one by one or one BLS aggregate) and shard Merkle proofs.
/// @dev Storage of a model is packed into at most 4 + ceil((1 + tasks) / 4) slots: the project id and the
///      task ids are kept as 64-bit words (17 of them in `ids[0..4]`: position 0 = project id, position
///      1 + j = task j). Only the words in use are written, so a one-task model costs five fresh slots.
///      A root's record is replaced when the same root is published again after its record died (Expired or
///      Superseded); its attesters are counted per record (`attesterCount` restarts at 0) and the BLS message
///      names the publication block, so nothing a coordinator said about the old record carries over.
///      BLS aggregates are checked by `BlsSignerRegistry`, which keeps the coordinators' keys and the running
///      aggregate; storage providers and challenges live in `ShardProviders`.
contract ModelShardRegistry is IModelShardRegistry, AccessControl, ReentrancyGuardTransient {
    using SafeCast for uint256;

    /// @notice Most task ids one model may carry.
    uint256 public constant MAX_TASKS_PER_MODEL = 16;
    /// @notice Most shards (k + m) of one model (the GF(2^8) Reed-Solomon limit).
    uint256 public constant MAX_SHARDS = 256;
    /// @notice Most coordinators attesting one model one by one (more need the BLS aggregate).
    uint256 public constant MAX_ATTESTERS = 64;
    /// @notice Shortest attestation window of a model, in blocks.
    uint64 public constant MIN_MODEL_EXPIRY = 10;
    /// @notice Longest attestation window of a model, in blocks (it is stored in 24 bits).
    uint64 public constant MAX_MODEL_EXPIRY = type(uint24).max;
    /// @notice Domain of BLS model attestation messages.
    bytes32 public constant BLS_ATTESTATION_DOMAIN = keccak256("autonet.bls.attestation.v2");
    /// @notice Reason tag of the slash taken from the publisher of a model that expired unaccepted.
    bytes32 public constant EXPIRED_MODEL_SLASH_REASON = "MODEL_EXPIRED_UNACCEPTED";

    /// @dev Packed storage of a model (see the contract NatSpec).
    struct ModelRecord {
        // slot 0
        address publisher;
        uint40 publishedBlock;
        ModelStatus status;
        uint8 dataShards;
        uint8 parityShards;
        uint8 taskCount;
        uint24 expiryBlocks;
        // slot 1
        uint128 attestedStake;
        uint64 totalSize;
        uint32 shardSize;
        uint8 attesterCount;
        // slot 2, 3
        bytes32 parentRoot;
        bytes32 manifestHash;
        // slots 4..8: 64-bit words, position 0 = project id, position 1 + j = task j
        uint256[5] ids;
    }

    IParticipantStaking private immutable _staking;
    IProject private immutable _projects;
    IRewards private immutable _rewards;
    IBlsSignerRegistry private immutable _signers;

    mapping(bytes32 root => ModelRecord) private _models;
    // The coordinators that attested the current record of a root one by one: positions 0 .. attesterCount - 1.
    mapping(bytes32 root => mapping(uint256 position => address)) private _attesters;
    // The signer bitmap of the BLS aggregate that accepted a root (0 for a root accepted otherwise): those signers
    // hold the model's shards in `ShardProviders` without announcing them (`acceptedHoldersOf`).
    mapping(bytes32 root => uint256 signers) private _blsHolders;
    // Roots that may never be published again although they have no Accepted record: genesis roots.
    mapping(bytes32 root => bool) private _genesisUsed;
    mapping(uint256 projectId => bytes32) private _latest;
    mapping(uint256 projectId => uint256) private _versions;
    uint64 private _modelExpiry = 7200;
    uint256 private _publisherSlash = 100e18;

    /// @param admin receives DEFAULT_ADMIN_ROLE (the Timelock after deployment)
    /// @param staking_ stakes and roles; this contract needs its SLASHER_ROLE
    /// @param projects_ projects; this contract needs its MODEL_PUBLISHER_ROLE
    /// @param rewards_ rewards; this contract needs its MODEL_REGISTRY_ROLE
    /// @param signers_ coordinators' BLS keys and the aggregate signature check
    constructor(
        address admin,
        IParticipantStaking staking_,
        IProject projects_,
        IRewards rewards_,
        IBlsSignerRegistry signers_
    ) {
        if (
            admin == address(0) || address(staking_) == address(0) || address(projects_) == address(0)
                || address(rewards_) == address(0) || address(signers_) == address(0)
        ) revert ModelShardRegistryZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _staking = staking_;
        _projects = projects_;
        _rewards = rewards_;
        _signers = signers_;
    }

    // ------------------------------------------------------------------ models

    /// @inheritdoc IModelShardRegistry
    function publishModel(ModelManifest calldata manifest, uint256[] calldata taskIds) external nonReentrant {
        if (!_staking.isActive(msg.sender, Role.Aggregator)) {
            revert ModelShardRegistryNotAggregator(msg.sender);
        }
        bytes32 root = manifest.root;
        if (root == bytes32(0)) revert ModelShardRegistryZeroRoot();
        if (root == manifest.parentRoot || _genesisUsed[root]) revert ModelShardRegistryRootUsed(root);
        ModelRecord storage m = _models[root];
        ModelStatus status = m.status;
        if (status == ModelStatus.Pending) {
            // A pending record blocks its root until it expires; then it dies here (and its publisher pays).
            if (block.number <= _expiresAt(m)) revert ModelShardRegistryRootExists(root);
            status = _expire(root, m);
        }
        if (status == ModelStatus.Accepted) revert ModelShardRegistryRootUsed(root);
        _checkShape(manifest);
        uint256 n = taskIds.length;
        if (n > MAX_TASKS_PER_MODEL) revert ModelShardRegistryTooManyTasks(n, MAX_TASKS_PER_MODEL);
        uint256 projectId = manifest.projectId;
        if (projectId > type(uint64).max) revert ModelShardRegistryIdTooLarge(projectId);
        // Project roots are never zero (createProject and advanceModel reject it): zero = unknown project.
        bytes32 current = _projects.modelRoot(projectId);
        if (current == bytes32(0)) revert ModelShardRegistryUnknownProject(projectId);
        if (current != manifest.parentRoot) {
            revert ModelShardRegistryParentMismatch(current, manifest.parentRoot);
        }

        // A new record (status None, Expired or Superseded before): every field is written again.
        m.publisher = msg.sender;
        m.publishedBlock = uint40(block.number);
        m.status = ModelStatus.Pending;
        m.dataShards = manifest.dataShards;
        m.parityShards = manifest.parityShards;
        // casting to 'uint8' is safe because n <= MAX_TASKS_PER_MODEL = 16
        // forge-lint: disable-next-line(unsafe-typecast)
        m.taskCount = uint8(n);
        // casting to 'uint24' is safe because setModelExpiry keeps it <= MAX_MODEL_EXPIRY = 2^24 - 1
        // forge-lint: disable-next-line(unsafe-typecast)
        m.expiryBlocks = uint24(_modelExpiry);
        m.attestedStake = 0;
        m.totalSize = manifest.totalSize;
        m.shardSize = manifest.shardSize;
        m.attesterCount = 0;
        m.parentRoot = manifest.parentRoot;
        m.manifestHash = manifest.manifestHash;
        _storeIds(m, projectId, taskIds);

        emit ModelPublished(projectId, root, msg.sender, manifest.parentRoot, manifest.manifestHash, taskIds);
    }

    /// @inheritdoc IModelShardRegistry
    function attestModel(bytes32 root, bytes32 manifestHash, address publisher) external nonReentrant {
        ModelRecord storage m = _models[root];
        _checkAttestable(root, m);
        if (m.manifestHash != manifestHash || m.publisher != publisher) {
            revert ModelShardRegistryAttestationMismatch(root, m.manifestHash, m.publisher);
        }
        if (!_staking.isActive(msg.sender, Role.Coordinator)) {
            revert ModelShardRegistryNotCoordinator(msg.sender);
        }

        // The stake behind the model is re-read for every earlier attester: what it has bonded now, and only
        // while it is still an active Coordinator (unbonded or moved stake no longer counts).
        uint256 count = m.attesterCount;
        uint256 attested;
        for (uint256 i; i < count; ++i) {
            address a = _attesters[root][i];
            if (a == msg.sender) revert ModelShardRegistryAlreadyAttested(root, msg.sender);
            if (_staking.isActive(a, Role.Coordinator)) attested += _staking.stakeOf(a);
        }
        if (count == MAX_ATTESTERS) revert ModelShardRegistryAttestersFull(root, MAX_ATTESTERS);
        uint256 stake = _staking.stakeOf(msg.sender);
        attested += stake;
        _attesters[root][count] = msg.sender;
        // casting to 'uint8' is safe because count < MAX_ATTESTERS = 64
        // forge-lint: disable-next-line(unsafe-typecast)
        m.attesterCount = uint8(count + 1);
        m.attestedStake = attested.toUint128();
        emit ModelAttested(root, msg.sender, stake, attested);

        _acceptIfThreshold(root, m, attested);
    }

    /// @inheritdoc IModelShardRegistry
    function attestModelBls(
        bytes32 root,
        uint256 signers,
        uint256[4] calldata apkG2,
        uint256[2] calldata sigma
    ) external nonReentrant {
        ModelRecord storage m = _models[root];
        _checkAttestable(root, m);
        uint256 stake = _signers.verifyAggregate(_attestationMessage(root, m), signers, apkG2, sigma);
        uint256 required = _staking.totalStake(Role.Coordinator) * 2;
        if (stake * 3 < required) {
            revert ModelShardRegistryInsufficientSignerStake(stake, (required + 2) / 3);
        }

        m.attestedStake = stake.toUint128();
        emit ModelAttestedBls(root, signers, stake);
        _acceptIfThreshold(root, m, stake);
        // Only an Accepted record keeps its signers (a Superseded one may be published again; an Accepted one never).
        if (m.status == ModelStatus.Accepted) _blsHolders[root] = signers;
    }

    /// @inheritdoc IModelShardRegistry
    function expireModel(bytes32 root) external nonReentrant {
        ModelRecord storage m = _models[root];
        ModelStatus status = m.status;
        if (status == ModelStatus.None) revert ModelShardRegistryUnknownModel(root);
        if (status != ModelStatus.Pending) revert ModelShardRegistryModelNotPending(root, status);
        uint256 expiresAt = _expiresAt(m);
        if (block.number <= expiresAt) revert ModelShardRegistryModelNotExpired(root, expiresAt);
        _expire(root, m);
    }

    /// @inheritdoc IModelShardRegistry
    function blsAttestationMessage(bytes32 root) external view returns (bytes32) {
        ModelRecord storage m = _models[root];
        if (m.status == ModelStatus.None) return bytes32(0);
        return _attestationMessage(root, m);
    }

    /// @inheritdoc IModelShardRegistry
    function verifyShard(bytes32 root, uint256 index, bytes32 shardHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        ModelRecord storage m = _models[root];
        if (m.status == ModelStatus.None) return false;
        if (index >= uint256(m.dataShards) + m.parityShards) return false;
        return MerkleProof.verifyCalldata(proof, root, _leaf(index, shardHash));
    }

    /// @inheritdoc IModelShardRegistry
    function getModel(bytes32 root) external view returns (Model memory model) {
        ModelRecord storage m = _models[root];
        if (m.status == ModelStatus.None) return model;
        model.manifest = ModelManifest({
            projectId: uint64(m.ids[0]),
            root: root,
            manifestHash: m.manifestHash,
            parentRoot: m.parentRoot,
            totalSize: m.totalSize,
            shardSize: m.shardSize,
            dataShards: m.dataShards,
            parityShards: m.parityShards
        });
        model.publisher = m.publisher;
        model.publishedBlock = m.publishedBlock;
        model.expiresAt = uint64(_expiresAt(m));
        model.status = m.status;
        model.attestedStake = m.attestedStake;
        model.taskIds = _taskIds(m);
    }

    /// @inheritdoc IModelShardRegistry
    function acceptedHoldersOf(bytes32 root)
        external
        view
        returns (address publisher, uint256 blsSigners_, uint256 publishedBlock)
    {
        ModelRecord storage m = _models[root];
        if (m.status != ModelStatus.Accepted) return (address(0), 0, 0);
        return (m.publisher, _blsHolders[root], m.publishedBlock);
    }

    /// @inheritdoc IModelShardRegistry
    function shardCounts(bytes32 root) external view returns (uint8 dataShards, uint8 parityShards) {
        ModelRecord storage m = _models[root];
        return (m.dataShards, m.parityShards);
    }

    /// @inheritdoc IModelShardRegistry
    function modelStatus(bytes32 root) external view returns (ModelStatus) {
        return _models[root].status;
    }

    /// @inheritdoc IModelShardRegistry
    function hasAttested(bytes32 root, address coordinator) external view returns (bool) {
        uint256 count = _models[root].attesterCount;
        for (uint256 i; i < count; ++i) {
            if (_attesters[root][i] == coordinator) return true;
        }
        return false;
    }

    /// @inheritdoc IModelShardRegistry
    function attestersOf(bytes32 root) external view returns (address[] memory attesters) {
        uint256 count = _models[root].attesterCount;
        attesters = new address[](count);
        for (uint256 i; i < count; ++i) {
            attesters[i] = _attesters[root][i];
        }
    }

    /// @inheritdoc IModelShardRegistry
    function isRootUsed(bytes32 root) external view returns (bool) {
        return _genesisUsed[root] || _models[root].status == ModelStatus.Accepted;
    }

    /// @inheritdoc IModelShardRegistry
    function modelCount(uint256 projectId) external view returns (uint256) {
        return _versions[projectId];
    }

    /// @inheritdoc IModelShardRegistry
    function latestAccepted(uint256 projectId) external view returns (bytes32) {
        return _latest[projectId];
    }

    /// @inheritdoc IModelShardRegistry
    function modelExpiry() external view returns (uint64) {
        return _modelExpiry;
    }

    /// @inheritdoc IModelShardRegistry
    function publisherSlash() external view returns (uint256) {
        return _publisherSlash;
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IModelShardRegistry
    function setModelExpiry(uint64 blocks) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (blocks < MIN_MODEL_EXPIRY || blocks > MAX_MODEL_EXPIRY) {
            revert ModelShardRegistryInvalidExpiry(blocks);
        }
        _modelExpiry = blocks;
        emit ModelExpiryUpdated(blocks);
    }

    /// @inheritdoc IModelShardRegistry
    function setPublisherSlash(uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _publisherSlash = amount;
        emit PublisherSlashUpdated(amount);
    }

    // ------------------------------------------------------------------ dependencies

    /// @notice The staking contract.
    function staking() external view returns (IParticipantStaking) {
        return _staking;
    }

    /// @notice The project contract.
    function projects() external view returns (IProject) {
        return _projects;
    }

    /// @notice The rewards contract.
    function rewards() external view returns (IRewards) {
        return _rewards;
    }

    /// @notice The BLS signer registry that checks aggregate attestations.
    function blsSigners() external view returns (IBlsSignerRegistry) {
        return _signers;
    }

    // ------------------------------------------------------------------ internal: lifecycle

    /// @dev Reverts unless `m` is Pending and still inside its attestation window.
    function _checkAttestable(bytes32 root, ModelRecord storage m) private view {
        ModelStatus status = m.status;
        if (status == ModelStatus.None) revert ModelShardRegistryUnknownModel(root);
        if (status != ModelStatus.Pending) revert ModelShardRegistryModelNotPending(root, status);
        uint256 expiresAt = _expiresAt(m);
        if (block.number > expiresAt) revert ModelShardRegistryModelExpired(root, expiresAt);
    }

    /// @dev Last block at which `m` can be attested.
    function _expiresAt(ModelRecord storage m) private view returns (uint256) {
        return uint256(m.publishedBlock) + m.expiryBlocks;
    }

    /// @dev Ends a Pending model past its window: Superseded (no fault) when the project moved on meanwhile,
    ///      else Expired with `publisherSlash` taken from its publisher (the slash never reverts the call, but a
    ///      starved one does). Returns the new status.
    function _expire(bytes32 root, ModelRecord storage m) private returns (ModelStatus) {
        uint256 projectId = uint64(m.ids[0]);
        bytes32 current = _projects.modelRoot(projectId);
        if (current != m.parentRoot) {
            m.status = ModelStatus.Superseded;
            emit ModelSuperseded(projectId, root, current);
            return ModelStatus.Superseded;
        }
        m.status = ModelStatus.Expired;
        address publisher = m.publisher;
        uint256 slashed;
        uint256 amount = _publisherSlash;
        if (amount != 0) {
            uint256 gasBefore = gasleft();
            try _staking.slash(publisher, amount, EXPIRED_MODEL_SLASH_REASON) returns (uint256 s) {
                slashed = s;
            } catch {
                _checkNotStarved(gasBefore);
            }
        }
        emit ModelExpired(projectId, root, publisher, slashed);
        return ModelStatus.Expired;
    }

    // ------------------------------------------------------------------ internal: acceptance

    /// @dev The acceptance rule, kept in one place for both attestation paths (`attested` is the stake bonded
    ///      now behind the model). The parent is only compared here, once the threshold is reached, so that
    ///      ordinary attestations stay cheap.
    function _acceptIfThreshold(bytes32 root, ModelRecord storage m, uint256 attested) private {
        // attested < 2^128 (SafeCast above), so *3 cannot overflow 256 bits
        if (attested * 3 < _staking.totalStake(Role.Coordinator) * 2) return;
        uint256 projectId = uint64(m.ids[0]);
        bytes32 parent = m.parentRoot;
        bytes32 current = _projects.modelRoot(projectId);
        if (current != parent) {
            // The project moved on (another model was accepted): this one can never be accepted.
            m.status = ModelStatus.Superseded;
            emit ModelSuperseded(projectId, root, current);
            return;
        }
        _accept(root, m, projectId, parent);
    }

    /// @dev Effects first (status, project head, version, used roots), then the project advance and the fee
    ///      credits. A failing fee credit (e.g. a task of another project) is reported and skipped, never
    ///      blocking. The parent of a project's first model accepted here is its genesis root: it is marked used
    ///      (every later head is an Accepted record, which can never be published again either).
    function _accept(bytes32 root, ModelRecord storage m, uint256 projectId, bytes32 parent) private {
        m.status = ModelStatus.Accepted;
        _latest[projectId] = root;
        uint256 version = ++_versions[projectId];
        if (version == 1) _genesisUsed[parent] = true;
        emit ModelAccepted(projectId, root, parent, version);

        _projects.advanceModel(projectId, parent, root);

        address publisher = m.publisher;
        uint256 n = m.taskCount;
        for (uint256 j; j < n; ++j) {
            uint256 taskId = _idAt(m, j + 1);
            uint256 gasBefore = gasleft();
            // Rewards emits its own AggregatorFeePaid on success
            try _rewards.payAggregatorFee(projectId, taskId, publisher) {}
            catch (bytes memory reason) {
                _checkNotStarved(gasBefore);
                emit AggregatorFeeFailed(root, taskId, reason);
            }
        }
    }

    /// @dev After a failed inner call: if only about 1/64 of the gas is left, the call probably ran out of gas
    ///      because the caller sent too little (EIP-150); revert so that nobody can skip a payment or a slash
    ///      by gas griefing.
    function _checkNotStarved(uint256 gasBefore) private view {
        if (gasleft() <= gasBefore / 63) revert ModelShardRegistryInsufficientGas();
    }

    // ------------------------------------------------------------------ internal: helpers

    function _checkShape(ModelManifest calldata manifest) private pure {
        uint8 k = manifest.dataShards;
        uint8 parity = manifest.parityShards;
        if (k == 0 || uint256(k) + parity > MAX_SHARDS) {
            revert ModelShardRegistryInvalidShardCounts(k, parity);
        }
        uint64 totalSize = manifest.totalSize;
        uint32 shardSize = manifest.shardSize;
        if (totalSize == 0 || shardSize == 0 || uint256(shardSize) * k < totalSize) {
            revert ModelShardRegistryInvalidSizes(totalSize, shardSize, k);
        }
    }

    /// @dev Packs the project id (position 0) and the task ids (positions 1..n) as 64-bit words and writes
    ///      only the storage words in use.
    function _storeIds(ModelRecord storage m, uint256 projectId, uint256[] calldata taskIds) private {
        uint256 n = taskIds.length;
        uint256 word = projectId;
        for (uint256 j; j < n; ++j) {
            uint256 id = taskIds[j];
            if (id > type(uint64).max) revert ModelShardRegistryIdTooLarge(id);
            uint256 pos = j + 1;
            if (pos & 3 == 0) {
                m.ids[(pos >> 2) - 1] = word;
                word = 0;
            }
            word |= id << ((pos & 3) * 64);
        }
        // n <= 16 so n >> 2 <= 4 is a valid index into ids[5]
        m.ids[n >> 2] = word;
    }

    function _idAt(ModelRecord storage m, uint256 pos) private view returns (uint256) {
        return uint64(m.ids[pos >> 2] >> ((pos & 3) * 64));
    }

    function _taskIds(ModelRecord storage m) private view returns (uint256[] memory ids) {
        uint256 n = m.taskCount;
        ids = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            ids[j] = _idAt(m, j + 1);
        }
    }

    /// @dev What coordinators sign: the whole record (project, parent, root, manifest, publisher, publication
    ///      block, tasks), so that a signature vouches for one publication and nothing else.
    function _attestationMessage(bytes32 root, ModelRecord storage m) private view returns (bytes32) {
        return keccak256(
            abi.encode(
                BLS_ATTESTATION_DOMAIN,
                block.chainid,
                address(this),
                uint256(uint64(m.ids[0])),
                m.parentRoot,
                root,
                m.manifestHash,
                m.publisher,
                uint256(m.publishedBlock),
                _taskIds(m)
            )
        );
    }

    function _leaf(uint256 index, bytes32 shardHash) private pure returns (bytes32) {
        return keccak256(abi.encode(index, shardHash));
    }
}
