// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IShardProviders, ChallengeStatus} from "./interfaces/IShardProviders.sol";
import {IModelShardRegistry} from "./interfaces/IModelShardRegistry.sol";
import {IParticipantStaking} from "./interfaces/IParticipantStaking.sol";

/// @title ShardProviders
/// @notice Storage providers, their shard announcements, per-shard availability and liveness challenges.
/// @dev The shape of a model (k, m) is read from `ModelShardRegistry`; a provider's announcement of a root is a
///      bitmap of shard indices (< k + m <= MAX_SHARDS), mirrored in per-index holder lists of at most
///      MAX_HOLDERS_PER_SHARD providers, and `_available[root]` counts the indices with at least one holder.
contract ShardProviders is IShardProviders, AccessControl, ReentrancyGuardTransient {
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
    /// @notice Reason tag of the slash taken for a failed challenge.
    bytes32 public constant CHALLENGE_SLASH_REASON = "SHARD_CHALLENGE_FAILED";

    IParticipantStaking private immutable _staking;
    IModelShardRegistry private immutable _models;

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
    /// @param staking_ stakes; this contract needs its SLASHER_ROLE
    /// @param models_ the published models (shard counts)
    constructor(address admin, IParticipantStaking staking_, IModelShardRegistry models_) {
        if (admin == address(0) || address(staking_) == address(0) || address(models_) == address(0)) {
            revert ShardProvidersZeroAddress();
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _staking = staking_;
        _models = models_;
    }

    // ------------------------------------------------------------------ providers

    /// @inheritdoc IShardProviders
    function registerProvider(string calldata endpoint) external {
        if (_staking.stakeOf(msg.sender) == 0) revert ShardProvidersNotStaked(msg.sender);
        _checkEndpoint(endpoint);
        Provider storage p = _providers[msg.sender];
        if (p.active) revert ShardProvidersProviderExists(msg.sender);
        p.endpoint = endpoint;
        p.active = true;
        emit ProviderRegistered(msg.sender, endpoint);
    }

    /// @inheritdoc IShardProviders
    function updateEndpoint(string calldata endpoint) external {
        Provider storage p = _providers[msg.sender];
        if (!p.active) revert ShardProvidersNotProvider(msg.sender);
        _checkEndpoint(endpoint);
        p.endpoint = endpoint;
        emit ProviderEndpointUpdated(msg.sender, endpoint);
    }

    /// @inheritdoc IShardProviders
    function deactivateProvider() external {
        Provider storage p = _providers[msg.sender];
        if (!p.active) revert ShardProvidersNotProvider(msg.sender);
        if (p.rootsHeld != 0) revert ShardProvidersProviderHoldsShards(msg.sender, p.rootsHeld);
        p.active = false;
        emit ProviderDeactivated(msg.sender);
    }

    /// @inheritdoc IShardProviders
    function announceShards(bytes32 root, uint256 bitmap) external {
        Provider storage p = _providers[msg.sender];
        if (!p.active) revert ShardProvidersNotProvider(msg.sender);
        if (_staking.stakeOf(msg.sender) == 0) revert ShardProvidersNotStaked(msg.sender);
        (uint8 k, uint8 m) = _models.shardCounts(root);
        if (k == 0) revert ShardProvidersUnknownModel(root);
        uint256 count = uint256(k) + m;
        if (bitmap == 0 || (count < MAX_SHARDS && bitmap >> count != 0)) {
            revert ShardProvidersInvalidBitmap(bitmap, count);
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
            if (len >= MAX_HOLDERS_PER_SHARD) revert ShardProvidersShardHoldersFull(i);
            if (len == 0) ++newlyAvailable;
            holders.push(msg.sender);
        }
        if (newlyAvailable != 0) _available[root] += newlyAvailable;
        emit ShardsAnnounced(root, msg.sender, added, newHeld);
    }

    /// @inheritdoc IShardProviders
    function withdrawShards(bytes32 root, uint256 bitmap) external {
        uint256 held = _held[root][msg.sender];
        if (bitmap == 0) {
            (uint8 k, uint8 m) = _models.shardCounts(root);
            revert ShardProvidersInvalidBitmap(bitmap, uint256(k) + m);
        }
        uint256 missing = bitmap & ~held;
        if (missing != 0) revert ShardProvidersShardsNotHeld(missing);
        uint256 open = _openChallenge[root][msg.sender];
        if (open != 0) revert ShardProvidersChallengeOpen(open);
        _removeShards(root, msg.sender, held, bitmap);
    }

    /// @inheritdoc IShardProviders
    function availability(bytes32 root) external view returns (uint256 shardsAvailable, bool recoverable) {
        shardsAvailable = _available[root];
        (uint8 k,) = _models.shardCounts(root);
        recoverable = k != 0 && shardsAvailable >= k;
    }

    /// @inheritdoc IShardProviders
    function providersOf(bytes32 root, uint256 index) external view returns (address[] memory) {
        return _holders[root][index];
    }

    /// @inheritdoc IShardProviders
    function shardsOf(bytes32 root, address provider) external view returns (uint256) {
        return _held[root][provider];
    }

    /// @inheritdoc IShardProviders
    function endpointOf(address provider) external view returns (string memory) {
        return _providers[provider].endpoint;
    }

    /// @inheritdoc IShardProviders
    function getProvider(address provider) external view returns (Provider memory) {
        return _providers[provider];
    }

    // ------------------------------------------------------------------ challenges

    /// @inheritdoc IShardProviders
    function challenge(bytes32 root, address provider) external returns (uint256 challengeId) {
        if (_staking.stakeOf(msg.sender) == 0) revert ShardProvidersNotStaked(msg.sender);
        uint256 held = _held[root][provider];
        if (held == 0) revert ShardProvidersNothingToChallenge(root, provider);
        uint256 open = _openChallenge[root][provider];
        if (open != 0) revert ShardProvidersChallengeOpen(open);

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

    /// @inheritdoc IShardProviders
    function respondChallenge(uint256 challengeId, bytes32 shardHash, bytes32[] calldata proof) external {
        Challenge storage c = _challenges[challengeId];
        if (c.status != ChallengeStatus.Open) {
            revert ShardProvidersChallengeNotOpen(challengeId, c.status);
        }
        if (msg.sender != c.provider) revert ShardProvidersNotChallenged(challengeId, msg.sender);
        if (block.number > c.deadline) revert ShardProvidersChallengeExpired(challengeId, c.deadline);
        // The index was picked among announced bits, all below the model's shard count.
        if (!MerkleProof.verifyCalldata(proof, c.root, keccak256(abi.encode(uint256(c.index), shardHash)))) {
            revert ShardProvidersInvalidProof(challengeId);
        }
        c.status = ChallengeStatus.Passed;
        delete _openChallenge[c.root][msg.sender];
        _providers[msg.sender].successes += 1;
        emit ChallengePassed(challengeId, msg.sender, shardHash);
    }

    /// @inheritdoc IShardProviders
    function expireChallenge(uint256 challengeId) external nonReentrant {
        Challenge storage c = _challenges[challengeId];
        if (c.status != ChallengeStatus.Open) {
            revert ShardProvidersChallengeNotOpen(challengeId, c.status);
        }
        if (block.number <= c.deadline) {
            revert ShardProvidersChallengeNotExpired(challengeId, c.deadline);
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
                // If only about 1/64 of the gas is left, the slash probably ran out of gas because the caller
                // sent too little (EIP-150): revert so that nobody can skip the slash by gas griefing.
                if (gasleft() <= gasBefore / 63) revert ShardProvidersInsufficientGas();
            }
        }
        emit ChallengeFailed(challengeId, provider, root, slashed);
    }

    /// @inheritdoc IShardProviders
    function getChallenge(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @inheritdoc IShardProviders
    function challengeCount() external view returns (uint256) {
        return _challengeCount;
    }

    /// @inheritdoc IShardProviders
    function openChallengeOf(bytes32 root, address provider) external view returns (uint256) {
        return _openChallenge[root][provider];
    }

    /// @inheritdoc IShardProviders
    function challengeWindow() external view returns (uint64) {
        return _challengeWindow;
    }

    /// @inheritdoc IShardProviders
    function challengeSlash() external view returns (uint256) {
        return _challengeSlash;
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IShardProviders
    function setChallengeWindow(uint64 window) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (window < MIN_CHALLENGE_WINDOW || window > MAX_CHALLENGE_WINDOW) {
            revert ShardProvidersInvalidWindow(window);
        }
        _challengeWindow = window;
        emit ChallengeWindowUpdated(window);
    }

    /// @inheritdoc IShardProviders
    function setChallengeSlash(uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _challengeSlash = amount;
        emit ChallengeSlashUpdated(amount);
    }

    /// @notice The staking contract.
    function staking() external view returns (IParticipantStaking) {
        return _staking;
    }

    /// @notice The model registry whose roots the providers serve.
    function models() external view returns (IModelShardRegistry) {
        return _models;
    }

    // ------------------------------------------------------------------ internal

    function _checkEndpoint(string calldata endpoint) private pure {
        uint256 len = bytes(endpoint).length;
        if (len == 0 || len > MAX_ENDPOINT_LENGTH) revert ShardProvidersInvalidEndpoint(len);
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
