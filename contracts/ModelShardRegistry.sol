// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IModelShardRegistry, ModelStatus, ChallengeStatus} from "./interfaces/IModelShardRegistry.sol";
import {IParticipantStaking, Role} from "./interfaces/IParticipantStaking.sol";
import {IStakeObserver} from "./interfaces/IStakeObserver.sol";
import {IProject} from "./interfaces/IProject.sol";
import {IRewards} from "./interfaces/IRewards.sol";
import {BN254} from "./libraries/BN254.sol";

/// @title ModelShardRegistry
/// @notice Published models, coordinator attestations, shard Merkle proofs, storage providers and challenges.
/// @dev Storage of a model is packed into at most 4 + ceil((1 + tasks) / 4) slots: the project id and the
///      task ids are kept as 64-bit words (17 of them in `ids[0..4]`: position 0 = project id, position
///      1 + j = task j). Only the words in use are written, so a one-task model costs five fresh slots.
///      BLS signers: `_blsApk` and `_blsActiveStake` are the sums of the keys and recorded stakes of the signers
///      whose bit is set in `_blsActive`; every write below keeps that invariant (a signer that is not counted
///      has recorded stake 0). ParticipantStaking reports stake changes through `onStakeChanged`.
contract ModelShardRegistry is IModelShardRegistry, AccessControl, ReentrancyGuardTransient {
    using SafeCast for uint256;

    /// @notice Most task ids one model may carry.
    uint256 public constant MAX_TASKS_PER_MODEL = 16;
    /// @notice Most shards (k + m) of one model; also the width of an announcement bitmap.
    uint256 public constant MAX_SHARDS = 256;
    /// @notice Most providers listed for one shard index.
    uint256 public constant MAX_HOLDERS_PER_SHARD = 16;
    /// @notice Longest provider endpoint in bytes.
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;
    /// @notice Shortest challenge window in blocks.
    uint64 public constant MIN_CHALLENGE_WINDOW = 1;
    /// @notice Longest challenge window in blocks.
    uint64 public constant MAX_CHALLENGE_WINDOW = 1_000_000;
    /// @notice Most coordinators with a BLS key (the width of a signer bitmap).
    uint256 public constant MAX_BLS_SIGNERS = 256;
    /// @notice Domain of BLS proof-of-possession messages.
    bytes32 public constant BLS_POP_DOMAIN = keccak256("autonet.bls.pop.v1");
    /// @notice Domain of BLS model attestation messages.
    bytes32 public constant BLS_ATTESTATION_DOMAIN = keccak256("autonet.bls.attestation.v1");
    /// @notice Reason tag of the slash taken for a failed challenge.
    bytes32 public constant CHALLENGE_SLASH_REASON = "SHARD_CHALLENGE_FAILED";

    /// @dev Packed storage of a model (see the contract NatSpec).
    struct ModelRecord {
        // slot 0
        address publisher;
        uint40 publishedBlock;
        ModelStatus status;
        uint8 dataShards;
        uint8 parityShards;
        uint8 taskCount;
        // slot 1
        uint128 attestedStake;
        uint64 totalSize;
        uint32 shardSize;
        // slot 2, 3
        bytes32 parentRoot;
        bytes32 manifestHash;
        // slots 4..8: 64-bit words, position 0 = project id, position 1 + j = task j
        uint256[5] ids;
    }

    IParticipantStaking private immutable _staking;
    IProject private immutable _projects;
    IRewards private immutable _rewards;

    mapping(bytes32 root => ModelRecord) private _models;
    mapping(bytes32 root => mapping(address coordinator => bool)) private _attested;
    mapping(uint256 projectId => bytes32) private _latest;
    mapping(uint256 projectId => uint256) private _versions;

    // BLS keys: signer index -> coordinator and G1 key; coordinator -> index + 1 (0 = none).
    address[] private _blsSigners;
    mapping(uint256 index => BN254.G1Point) private _blsKeys;
    mapping(address coordinator => uint256) private _blsIndexPlusOne;
    // Running aggregate: bit i set = signer i counted (an active Coordinator as last reported by staking);
    // sum of the counted keys; sum of the counted recorded stakes; recorded stake per index (0 when not counted).
    uint256 private _blsActive;
    BN254.G1Point private _blsApk;
    uint256 private _blsActiveStake;
    mapping(uint256 index => uint128) private _blsStake;

    mapping(address provider => Provider) private _providers;
    mapping(bytes32 root => mapping(address provider => uint256 bitmap)) private _held;
    mapping(bytes32 root => mapping(uint256 index => address[])) private _holders;
    mapping(bytes32 root => uint256) private _available;

    mapping(uint256 challengeId => Challenge) private _challenges;
    mapping(bytes32 root => mapping(address provider => uint256 challengeId)) private _openChallenge;
    uint256 private _challengeCount;
    uint64 private _challengeWindow = 100;
    uint256 private _challengeSlash = 10e18;

    /// @param admin receives DEFAULT_ADMIN_ROLE (the Timelock after deployment)
    /// @param staking_ stakes and roles; this contract needs its SLASHER_ROLE
    /// @param projects_ projects; this contract needs its MODEL_PUBLISHER_ROLE
    /// @param rewards_ rewards; this contract needs its MODEL_REGISTRY_ROLE
    constructor(address admin, IParticipantStaking staking_, IProject projects_, IRewards rewards_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _staking = staking_;
        _projects = projects_;
        _rewards = rewards_;
    }

    // ------------------------------------------------------------------ models

    /// @inheritdoc IModelShardRegistry
    function publishModel(ModelManifest calldata manifest, uint256[] calldata taskIds) external {
        if (!_staking.isActive(msg.sender, Role.Aggregator)) {
            revert ModelShardRegistryNotAggregator(msg.sender);
        }
        bytes32 root = manifest.root;
        if (root == bytes32(0)) revert ModelShardRegistryZeroRoot();
        if (_models[root].status != ModelStatus.None || root == manifest.parentRoot) {
            revert ModelShardRegistryRootExists(root);
        }
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

        ModelRecord storage m = _models[root];
        m.publisher = msg.sender;
        m.publishedBlock = uint40(block.number);
        m.status = ModelStatus.Pending;
        m.dataShards = manifest.dataShards;
        m.parityShards = manifest.parityShards;
        // casting to 'uint8' is safe because n <= MAX_TASKS_PER_MODEL = 16
        // forge-lint: disable-next-line(unsafe-typecast)
        m.taskCount = uint8(n);
        m.totalSize = manifest.totalSize;
        m.shardSize = manifest.shardSize;
        m.parentRoot = manifest.parentRoot;
        m.manifestHash = manifest.manifestHash;
        _storeIds(m, projectId, taskIds);

        emit ModelPublished(projectId, root, msg.sender, manifest.parentRoot, manifest.manifestHash, taskIds);
    }

    /// @inheritdoc IModelShardRegistry
    function attestModel(bytes32 root) external nonReentrant {
        ModelRecord storage m = _models[root];
        ModelStatus status = m.status;
        if (status == ModelStatus.None) revert ModelShardRegistryUnknownModel(root);
        if (status != ModelStatus.Pending) revert ModelShardRegistryModelNotPending(root, status);
        if (!_staking.isActive(msg.sender, Role.Coordinator)) {
            revert ModelShardRegistryNotCoordinator(msg.sender);
        }
        if (_attested[root][msg.sender]) revert ModelShardRegistryAlreadyAttested(root, msg.sender);

        uint256 stake = _staking.stakeOf(msg.sender);
        _attested[root][msg.sender] = true;
        uint256 attested = uint256(m.attestedStake) + stake;
        m.attestedStake = attested.toUint128();
        emit ModelAttested(root, msg.sender, stake, attested);

        _acceptIfThreshold(root, m, attested);
    }

    /// @inheritdoc IModelShardRegistry
    function registerBlsKey(uint256[2] calldata pkG1, uint256[4] calldata pkG2, uint256[2] calldata pop)
        external
    {
        if (!_staking.isActive(msg.sender, Role.Coordinator)) {
            revert ModelShardRegistryNotCoordinator(msg.sender);
        }
        BN254.G1Point memory pk = BN254.G1Point(pkG1[0], pkG1[1]);
        if ((pk.X == 0 && pk.Y == 0) || !BN254.isOnCurve(pk)) revert ModelShardRegistryInvalidBlsKey();
        BN254.G1Point memory sig = BN254.G1Point(pop[0], pop[1]);
        if (!BN254.isOnCurve(sig)) revert ModelShardRegistryInvalidProofOfPossession(msg.sender);
        bytes32 message = _popMessage(msg.sender, pkG1, pkG2);
        if (!BN254.verify(message, pk, _g2(pkG2), sig)) {
            revert ModelShardRegistryInvalidProofOfPossession(msg.sender);
        }

        uint256 index = _blsIndexPlusOne[msg.sender];
        if (index == 0) {
            index = _blsSigners.length;
            if (index == MAX_BLS_SIGNERS) revert ModelShardRegistryBlsSignersFull();
            _blsSigners.push(msg.sender);
            _blsIndexPlusOne[msg.sender] = index + 1;
        } else {
            --index;
        }

        // The caller is an active Coordinator (checked above): it is counted with its new key and current stake,
        // and a key counted before (rotation) leaves the aggregate.
        uint256 bit = 1 << index;
        uint256 active = _blsActive;
        BN254.G1Point memory apk = _blsApk;
        uint256 total = _blsActiveStake;
        if (active & bit != 0) {
            apk = BN254.plus(apk, BN254.negate(_blsKeys[index]));
            total -= _blsStake[index]; // the counted stakes sum to total
        }
        uint128 recorded = _recordable(_staking.stakeOf(msg.sender));
        _blsKeys[index] = pk;
        _blsApk = BN254.plus(apk, pk);
        _blsActive = active | bit;
        _blsStake[index] = recorded;
        _blsActiveStake = total + recorded;
        emit BlsKeyRegistered(msg.sender, index, pkG1);
        emit BlsSignerUpdated(msg.sender, index, true, recorded);
    }

    /// @inheritdoc IModelShardRegistry
    function attestModelBls(
        bytes32 root,
        uint256 signers,
        uint256[4] calldata apkG2,
        uint256[2] calldata sigma
    ) external nonReentrant {
        ModelRecord storage m = _models[root];
        ModelStatus status = m.status;
        if (status == ModelStatus.None) revert ModelShardRegistryUnknownModel(root);
        if (status != ModelStatus.Pending) revert ModelShardRegistryModelNotPending(root, status);
        uint256 active = _blsActive;
        if (signers == 0 || signers & ~active != 0) _revertBadSigners(signers, active);

        // Signers = counted minus non-signers: three slot reads (key, recorded stake) and one point addition per
        // non-signer, one negation in all; the pairing check is one, whatever the number of signers.
        BN254.G1Point memory apk = _blsApk;
        uint256 stake = _blsActiveStake;
        uint256 nonSigners = active & ~signers;
        if (nonSigners != 0) {
            BN254.G1Point memory missing;
            // at most MAX_BLS_SIGNERS iterations: each clears the lowest set bit
            for (uint256 bits = nonSigners; bits != 0; bits &= bits - 1) {
                uint256 i = _lowestBit(bits);
                missing = BN254.plus(missing, _blsKeys[i]);
                stake -= _blsStake[i]; // a subset of the counted stakes, which sum to _blsActiveStake
            }
            apk = BN254.plus(apk, BN254.negate(missing));
        }
        BN254.G1Point memory sig = BN254.G1Point(sigma[0], sigma[1]);
        if (!BN254.isOnCurve(sig) || !BN254.verify(_attestationMessage(root, m), apk, _g2(apkG2), sig)) {
            revert ModelShardRegistryInvalidAggregateSignature(root);
        }
        uint256 required = _staking.totalStake(Role.Coordinator) * 2;
        if (stake * 3 < required) {
            revert ModelShardRegistryInsufficientSignerStake(stake, (required + 2) / 3);
        }

        m.attestedStake = stake.toUint128();
        emit ModelAttestedBls(root, signers, stake);
        _acceptIfThreshold(root, m, stake);
    }

    /// @inheritdoc IStakeObserver
    /// @dev Not `nonReentrant`: `expireChallenge` (which holds the guard) slashes through staking, which calls
    ///      back here. Costs one slot read for an account without a BLS key.
    function onStakeChanged(address account) external {
        if (msg.sender != address(_staking)) revert ModelShardRegistryNotStaking(msg.sender);
        uint256 plusOne = _blsIndexPlusOne[account];
        if (plusOne != 0) _syncBlsSigner(account, plusOne - 1);
    }

    /// @inheritdoc IModelShardRegistry
    function syncBlsSigner(address coordinator) external {
        uint256 plusOne = _blsIndexPlusOne[coordinator];
        if (plusOne == 0) revert ModelShardRegistryBlsKeyNotRegistered(coordinator);
        _syncBlsSigner(coordinator, plusOne - 1);
    }

    /// @inheritdoc IModelShardRegistry
    function blsAggregate()
        external
        view
        returns (uint256[2] memory apk, uint256 stake, uint256 activeBitmap)
    {
        BN254.G1Point storage p = _blsApk;
        return ([p.X, p.Y], _blsActiveStake, _blsActive);
    }

    /// @inheritdoc IModelShardRegistry
    function blsSignerStake(uint256 index) external view returns (uint256) {
        return _blsStake[index];
    }

    /// @inheritdoc IModelShardRegistry
    function blsPopMessage(address coordinator, uint256[2] calldata pkG1, uint256[4] calldata pkG2)
        external
        view
        returns (bytes32)
    {
        return _popMessage(coordinator, pkG1, pkG2);
    }

    /// @inheritdoc IModelShardRegistry
    function blsAttestationMessage(bytes32 root) external view returns (bytes32) {
        ModelRecord storage m = _models[root];
        if (m.status == ModelStatus.None) return bytes32(0);
        return _attestationMessage(root, m);
    }

    /// @inheritdoc IModelShardRegistry
    function blsKeyOf(address coordinator)
        external
        view
        returns (bool registered, uint256 index, uint256[2] memory pkG1)
    {
        uint256 i = _blsIndexPlusOne[coordinator];
        if (i == 0) return (false, 0, pkG1);
        BN254.G1Point storage pk = _blsKeys[i - 1];
        return (true, i - 1, [pk.X, pk.Y]);
    }

    /// @inheritdoc IModelShardRegistry
    function blsSignerAt(uint256 index) external view returns (address) {
        return index < _blsSigners.length ? _blsSigners[index] : address(0);
    }

    /// @inheritdoc IModelShardRegistry
    function blsSignerCount() external view returns (uint256) {
        return _blsSigners.length;
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
        model.status = m.status;
        model.attestedStake = m.attestedStake;
        model.taskIds = _taskIds(m);
    }

    /// @inheritdoc IModelShardRegistry
    function modelStatus(bytes32 root) external view returns (ModelStatus) {
        return _models[root].status;
    }

    /// @inheritdoc IModelShardRegistry
    function hasAttested(bytes32 root, address coordinator) external view returns (bool) {
        return _attested[root][coordinator];
    }

    /// @inheritdoc IModelShardRegistry
    function modelCount(uint256 projectId) external view returns (uint256) {
        return _versions[projectId];
    }

    /// @inheritdoc IModelShardRegistry
    function latestAccepted(uint256 projectId) external view returns (bytes32) {
        return _latest[projectId];
    }

    // ------------------------------------------------------------------ providers

    /// @inheritdoc IModelShardRegistry
    function registerProvider(string calldata endpoint) external {
        if (_staking.stakeOf(msg.sender) == 0) revert ModelShardRegistryNotStaked(msg.sender);
        _checkEndpoint(endpoint);
        Provider storage p = _providers[msg.sender];
        if (p.active) revert ModelShardRegistryProviderExists(msg.sender);
        p.endpoint = endpoint;
        p.active = true;
        emit ProviderRegistered(msg.sender, endpoint);
    }

    /// @inheritdoc IModelShardRegistry
    function updateEndpoint(string calldata endpoint) external {
        Provider storage p = _providers[msg.sender];
        if (!p.active) revert ModelShardRegistryNotProvider(msg.sender);
        _checkEndpoint(endpoint);
        p.endpoint = endpoint;
        emit ProviderEndpointUpdated(msg.sender, endpoint);
    }

    /// @inheritdoc IModelShardRegistry
    function deactivateProvider() external {
        Provider storage p = _providers[msg.sender];
        if (!p.active) revert ModelShardRegistryNotProvider(msg.sender);
        if (p.rootsHeld != 0) revert ModelShardRegistryProviderHoldsShards(msg.sender, p.rootsHeld);
        p.active = false;
        emit ProviderDeactivated(msg.sender);
    }

    /// @inheritdoc IModelShardRegistry
    function announceShards(bytes32 root, uint256 bitmap) external {
        Provider storage p = _providers[msg.sender];
        if (!p.active) revert ModelShardRegistryNotProvider(msg.sender);
        if (_staking.stakeOf(msg.sender) == 0) revert ModelShardRegistryNotStaked(msg.sender);
        ModelRecord storage m = _models[root];
        if (m.status == ModelStatus.None) revert ModelShardRegistryUnknownModel(root);
        uint256 count = uint256(m.dataShards) + m.parityShards;
        if (bitmap == 0 || (count < MAX_SHARDS && bitmap >> count != 0)) {
            revert ModelShardRegistryInvalidBitmap(bitmap, count);
        }

        uint256 held = _held[root][msg.sender];
        uint256 added = bitmap & ~held;
        if (added == 0) return; // everything already announced: nothing changes
        uint256 newHeld = held | added;
        _held[root][msg.sender] = newHeld;
        if (held == 0) {
            // rootsHeld counts distinct roots; a provider cannot announce 2^32 roots in any realistic gas budget
            p.rootsHeld += 1;
        }

        uint256 newlyAvailable;
        for (uint256 i; i < count; ++i) {
            if ((added >> i) & 1 == 0) continue;
            address[] storage holders = _holders[root][i];
            uint256 len = holders.length;
            if (len >= MAX_HOLDERS_PER_SHARD) revert ModelShardRegistryShardHoldersFull(i);
            if (len == 0) ++newlyAvailable;
            holders.push(msg.sender);
        }
        if (newlyAvailable != 0) _available[root] += newlyAvailable;
        emit ShardsAnnounced(root, msg.sender, added, newHeld);
    }

    /// @inheritdoc IModelShardRegistry
    function withdrawShards(bytes32 root, uint256 bitmap) external {
        uint256 held = _held[root][msg.sender];
        if (bitmap == 0) {
            ModelRecord storage m = _models[root];
            revert ModelShardRegistryInvalidBitmap(bitmap, uint256(m.dataShards) + m.parityShards);
        }
        uint256 missing = bitmap & ~held;
        if (missing != 0) revert ModelShardRegistryShardsNotHeld(missing);
        uint256 open = _openChallenge[root][msg.sender];
        if (open != 0) revert ModelShardRegistryChallengeOpen(open);
        _removeShards(root, msg.sender, held, bitmap);
    }

    /// @inheritdoc IModelShardRegistry
    function availability(bytes32 root) external view returns (uint256 shardsAvailable, bool recoverable) {
        shardsAvailable = _available[root];
        uint256 k = _models[root].dataShards;
        recoverable = k != 0 && shardsAvailable >= k;
    }

    /// @inheritdoc IModelShardRegistry
    function providersOf(bytes32 root, uint256 index) external view returns (address[] memory) {
        return _holders[root][index];
    }

    /// @inheritdoc IModelShardRegistry
    function shardsOf(bytes32 root, address provider) external view returns (uint256) {
        return _held[root][provider];
    }

    /// @inheritdoc IModelShardRegistry
    function endpointOf(address provider) external view returns (string memory) {
        return _providers[provider].endpoint;
    }

    /// @inheritdoc IModelShardRegistry
    function getProvider(address provider) external view returns (Provider memory) {
        return _providers[provider];
    }

    // ------------------------------------------------------------------ challenges

    /// @inheritdoc IModelShardRegistry
    function challenge(bytes32 root, address provider) external returns (uint256 challengeId) {
        if (_staking.stakeOf(msg.sender) == 0) revert ModelShardRegistryNotStaked(msg.sender);
        uint256 held = _held[root][provider];
        if (held == 0) revert ModelShardRegistryNothingToChallenge(root, provider);
        uint256 open = _openChallenge[root][provider];
        if (open != 0) revert ModelShardRegistryChallengeOpen(open);

        challengeId = ++_challengeCount;
        uint256 seed =
            uint256(keccak256(abi.encode(blockhash(block.number - 1), challengeId, root, provider)));
        uint256 index = _nthSetBit(held, seed % _popcount(held));
        uint64 deadline = uint64(block.number) + _challengeWindow;

        _challenges[challengeId] = Challenge({
            root: root,
            provider: provider,
            challenger: msg.sender,
            // casting to 'uint16' is safe because index < MAX_SHARDS = 256
            // forge-lint: disable-next-line(unsafe-typecast)
            index: uint16(index),
            deadline: deadline,
            status: ChallengeStatus.Open
        });
        _openChallenge[root][provider] = challengeId;
        emit ChallengeOpened(challengeId, root, provider, msg.sender, index, deadline);
    }

    /// @inheritdoc IModelShardRegistry
    function respondChallenge(uint256 challengeId, bytes32 shardHash, bytes32[] calldata proof) external {
        Challenge storage c = _challenges[challengeId];
        if (c.status != ChallengeStatus.Open) {
            revert ModelShardRegistryChallengeNotOpen(challengeId, c.status);
        }
        if (msg.sender != c.provider) revert ModelShardRegistryNotChallenged(challengeId, msg.sender);
        if (block.number > c.deadline) revert ModelShardRegistryChallengeExpired(challengeId, c.deadline);
        if (!MerkleProof.verifyCalldata(proof, c.root, _leaf(c.index, shardHash))) {
            revert ModelShardRegistryInvalidProof(challengeId);
        }
        c.status = ChallengeStatus.Passed;
        delete _openChallenge[c.root][msg.sender];
        _providers[msg.sender].successes += 1;
        emit ChallengePassed(challengeId, msg.sender, shardHash);
    }

    /// @inheritdoc IModelShardRegistry
    function expireChallenge(uint256 challengeId) external nonReentrant {
        Challenge storage c = _challenges[challengeId];
        if (c.status != ChallengeStatus.Open) {
            revert ModelShardRegistryChallengeNotOpen(challengeId, c.status);
        }
        if (block.number <= c.deadline) {
            revert ModelShardRegistryChallengeNotExpired(challengeId, c.deadline);
        }
        bytes32 root = c.root;
        address provider = c.provider;

        c.status = ChallengeStatus.Failed;
        delete _openChallenge[root][provider];
        _providers[provider].failures += 1;
        uint256 held = _held[root][provider];
        if (held != 0) _removeShards(root, provider, held, held);

        uint256 slashed;
        uint256 amount = _challengeSlash;
        if (amount != 0) {
            uint256 gasBefore = gasleft();
            try _staking.slash(provider, amount, CHALLENGE_SLASH_REASON) returns (uint256 s) {
                slashed = s;
            } catch {
                _checkNotStarved(gasBefore);
            }
        }
        emit ChallengeFailed(challengeId, provider, root, slashed);
    }

    /// @inheritdoc IModelShardRegistry
    function getChallenge(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @inheritdoc IModelShardRegistry
    function challengeCount() external view returns (uint256) {
        return _challengeCount;
    }

    /// @inheritdoc IModelShardRegistry
    function openChallengeOf(bytes32 root, address provider) external view returns (uint256) {
        return _openChallenge[root][provider];
    }

    /// @inheritdoc IModelShardRegistry
    function challengeWindow() external view returns (uint64) {
        return _challengeWindow;
    }

    /// @inheritdoc IModelShardRegistry
    function challengeSlash() external view returns (uint256) {
        return _challengeSlash;
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IModelShardRegistry
    function setChallengeWindow(uint64 window) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (window < MIN_CHALLENGE_WINDOW || window > MAX_CHALLENGE_WINDOW) {
            revert ModelShardRegistryInvalidWindow(window);
        }
        _challengeWindow = window;
        emit ChallengeWindowUpdated(window);
    }

    /// @inheritdoc IModelShardRegistry
    function setChallengeSlash(uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _challengeSlash = amount;
        emit ChallengeSlashUpdated(amount);
    }

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

    // ------------------------------------------------------------------ internal: acceptance

    /// @dev The acceptance rule, kept in one place so that a BLS aggregate attestation (one call carrying the
    ///      total signing stake) can replace the per-coordinator sum without touching the rest. The parent is
    ///      only compared here, once the threshold is reached, so that ordinary attestations stay cheap.
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

    /// @dev Effects first (status, project head, version), then the project advance and the fee credits.
    ///      A failing fee credit (e.g. a task of another project) is reported and skipped, never blocking.
    function _accept(bytes32 root, ModelRecord storage m, uint256 projectId, bytes32 parent) private {
        m.status = ModelStatus.Accepted;
        _latest[projectId] = root;
        uint256 version = ++_versions[projectId];
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

    // ------------------------------------------------------------------ internal: BLS aggregate

    /// @dev Counts signer `index` (of `coordinator`) iff it is an active Coordinator, with its current bonded
    ///      stake. Only reads staking (views that cannot revert) and adds valid curve points (keys were checked
    ///      on the curve at registration), so it cannot make a staking operation revert. Writes and emits only
    ///      when something changed.
    function _syncBlsSigner(address coordinator, uint256 index) private {
        bool nowActive = _staking.isActive(coordinator, Role.Coordinator);
        uint128 recorded = nowActive ? _recordable(_staking.stakeOf(coordinator)) : 0;
        uint256 bit = 1 << index;
        uint256 active = _blsActive;
        bool wasActive = active & bit != 0;
        uint128 previous = _blsStake[index]; // 0 when not counted
        if (wasActive == nowActive && previous == recorded) return;

        if (wasActive != nowActive) {
            BN254.G1Point memory key = _blsKeys[index];
            _blsApk = BN254.plus(_blsApk, nowActive ? key : BN254.negate(key));
            _blsActive = active ^ bit;
        }
        if (previous != recorded) {
            _blsStake[index] = recorded;
            // previous is part of the total (0 when it was not counted)
            _blsActiveStake = _blsActiveStake - previous + recorded;
        }
        emit BlsSignerUpdated(coordinator, index, nowActive, recorded);
    }

    /// @dev Reverts for a signer bitmap that is empty or names a signer that is not counted: bits beyond the
    ///      registered signers give `InvalidSigners`, otherwise the lowest uncounted signer is `StaleSigner`.
    function _revertBadSigners(uint256 signers, uint256 active) private view {
        uint256 registered = _blsSigners.length;
        if (signers == 0 || (registered < MAX_BLS_SIGNERS && signers >> registered != 0)) {
            revert ModelShardRegistryInvalidSigners(signers, registered);
        }
        uint256 i = _lowestBit(signers & ~active);
        revert ModelShardRegistryStaleSigner(i, _blsSigners[i]);
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

    function _checkEndpoint(string calldata endpoint) private pure {
        uint256 len = bytes(endpoint).length;
        if (len == 0 || len > MAX_ENDPOINT_LENGTH) revert ModelShardRegistryInvalidEndpoint(len);
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

    /// @dev Removes `bits` (a subset of `held`) of `provider` for `root` and updates holders and availability.
    function _removeShards(bytes32 root, address provider, uint256 held, uint256 bits) private {
        uint256 newHeld = held & ~bits;
        _held[root][provider] = newHeld;
        if (newHeld == 0) {
            // held != 0 before, so the root was counted in rootsHeld (>= 1)
            _providers[provider].rootsHeld -= 1;
        }
        uint256 lost;
        for (uint256 i; i < MAX_SHARDS && (bits >> i) != 0; ++i) {
            if ((bits >> i) & 1 == 0) continue;
            address[] storage holders = _holders[root][i];
            uint256 len = holders.length; // <= MAX_HOLDERS_PER_SHARD, and >= 1 since provider is listed
            for (uint256 h; h < len; ++h) {
                if (holders[h] == provider) {
                    holders[h] = holders[len - 1];
                    holders.pop();
                    break;
                }
            }
            if (len == 1) ++lost;
        }
        if (lost != 0) _available[root] -= lost;
        emit ShardsWithdrawn(root, provider, bits, newHeld);
    }

    function _popMessage(address coordinator, uint256[2] calldata pkG1, uint256[4] calldata pkG2)
        private
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(BLS_POP_DOMAIN, block.chainid, address(this), coordinator, pkG1, pkG2));
    }

    function _attestationMessage(bytes32 root, ModelRecord storage m) private view returns (bytes32) {
        return keccak256(
            abi.encode(
                BLS_ATTESTATION_DOMAIN,
                block.chainid,
                address(this),
                uint256(uint64(m.ids[0])),
                m.parentRoot,
                root,
                _taskIds(m)
            )
        );
    }

    function _g2(uint256[4] calldata w) private pure returns (BN254.G2Point memory) {
        return BN254.G2Point([w[0], w[1]], [w[2], w[3]]);
    }

    function _leaf(uint256 index, bytes32 shardHash) private pure returns (bytes32) {
        return keccak256(abi.encode(index, shardHash));
    }

    function _popcount(uint256 x) private pure returns (uint256 c) {
        // at most 256 iterations: each clears the lowest set bit
        while (x != 0) {
            x &= x - 1;
            ++c;
        }
    }

    /// @dev Index of the `n`-th (0-based) set bit of `x`; requires n < popcount(x).
    function _nthSetBit(uint256 x, uint256 n) private pure returns (uint256 i) {
        for (; i < MAX_SHARDS; ++i) {
            if ((x >> i) & 1 == 1) {
                if (n == 0) return i;
                --n;
            }
        }
    }
}
