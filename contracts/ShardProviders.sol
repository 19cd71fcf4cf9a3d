// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {IShardProviders, ChallengeStatus} from "./interfaces/IShardProviders.sol";
import {IModelShardRegistry} from "./interfaces/IModelShardRegistry.sol";
import {IBlsSignerRegistry} from "./interfaces/IBlsSignerRegistry.sol";
import {IParticipantStaking, Role} from "./interfaces/IParticipantStaking.sol";
import {IStakeLocker} from "./interfaces/IStakeLocker.sol";

/// @title ShardProviders
/// @notice Storage providers, their shard announcements, per-shard availability and liveness challenges.
/// @dev The shape of a model (k, m) is read from `ModelShardRegistry`; a provider's announcement of a root is a
///      bitmap of shard indices (< k + m <= MAX_SHARDS). Per root the contract keeps the holder count of every
///      index (8 bits each, 32 indices per slot, at most MAX_HOLDERS_PER_SHARD), the list of providers holding
///      any of its shards (with each one's position, for O(1) removal), and `_available[root]`, the number of
///      indices with at least one holder. An announcement thus writes a few slots whatever the number of shards
///      (a list of holders per index cost two slots per announced shard); `providersOf` filters the root's
///      holders by their bitmaps.
///      Providers and challengers must hold bonded stake of at least `challengeSlash` (what a failed challenge
///      takes); a challenger also escrows `challengeBond` ATN here, paid to the provider when it proves its shard
///      and returned when it does not. The token balance is always the open bonds plus the unclaimed credits.
///      As a stake locker registered in `ParticipantStaking`, it keeps `minProviderStake()` of a provider bonded
///      while the provider announces any shard or has a challenge open.
///
///      Holding by acceptance: an accepted model's publisher built it, and the coordinators whose BLS aggregate
///      accepted it recomputed it and signed that they hold it (`ModelShardRegistry.acceptedHoldersOf`), so each of
///      them holds every shard of it here without an announcement (no storage is written for them: the round's
///      shard announcements were its largest gas item). Such a holding counts while the account is an active,
///      backed provider, for a signer only if it took its BLS index no later than the model's publication (a reused
///      index does not inherit it), and until it is dropped (`withdrawAccepted`, or a failed challenge). It is
///      challenged, proved and slashed like an announced one; it is not counted in the per-index holder counts, and
///      at most 1 + `MAX_BLS_SIGNERS` accounts hold a root this way.
contract ShardProviders is IShardProviders, IStakeLocker, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

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
    IERC20 private immutable _token;

    mapping(address provider => Provider) private _providers;
    mapping(bytes32 root => mapping(address provider => uint256 bitmap)) private _held;
    /// @dev Holder counts of shard indices 32w..32w+31 of a root, 8 bits per index (index 32w + j at bit 8j).
    mapping(bytes32 root => mapping(uint256 word => uint256 counts)) private _holderCounts;
    /// @dev Providers holding at least one shard of a root, and each one's position in that list plus one.
    mapping(bytes32 root => address[]) private _rootHolders;
    mapping(bytes32 root => mapping(address provider => uint256 positionPlusOne)) private _rootHolderPosition;
    mapping(bytes32 root => uint256) private _available;

    mapping(uint256 challengeId => Challenge) private _challenges;
    mapping(bytes32 root => mapping(address provider => uint256 challengeId)) private _openChallenge;
    uint256 private _challengeCount;
    uint64 private _challengeWindow = 100;
    uint256 private _challengeSlash = 10e18;
    uint96 private _challengeBond = 1e18;
    mapping(address account => uint256) private _claimable;
    /// @dev Holdings by acceptance given up or lost (see the contract's notes).
    mapping(bytes32 root => mapping(address provider => bool)) private _acceptDropped;
    /// @dev Open challenges of a provider: its `minProviderStake` stays locked while any is open.
    mapping(address provider => uint256) private _openChallenges;

    /// @param admin receives DEFAULT_ADMIN_ROLE (the Timelock after deployment)
    /// @param staking_ stakes; this contract needs its SLASHER_ROLE
    /// @param models_ the published models (shard counts)
    /// @param token_ the token of challenge bonds (ATN)
    constructor(address admin, IParticipantStaking staking_, IModelShardRegistry models_, IERC20 token_) {
        if (
            admin == address(0) || address(staking_) == address(0) || address(models_) == address(0)
                || address(token_) == address(0)
        ) revert ShardProvidersZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _staking = staking_;
        _models = models_;
        _token = token_;
    }

    // ------------------------------------------------------------------ providers

    /// @inheritdoc IShardProviders
    function registerProvider(string calldata endpoint) external {
        _requireBacked(msg.sender);
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
        _requireBacked(msg.sender);
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
            address[] storage holders = _rootHolders[root];
            holders.push(msg.sender);
            _rootHolderPosition[root][msg.sender] = holders.length;
        }

        uint256 newlyAvailable = _countHolders(root, added, true);
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
    function withdrawAccepted(bytes32 root) external {
        if (!_acceptHolds(root, msg.sender)) revert ShardProvidersShardsNotHeld(_fullBitmap(root));
        uint256 open = _openChallenge[root][msg.sender];
        if (open != 0) revert ShardProvidersChallengeOpen(open);
        _dropAccepted(root, msg.sender);
    }

    /// @inheritdoc IShardProviders
    function evictUnbacked(bytes32 root, address provider) external {
        uint256 held = _held[root][provider];
        if (held == 0) revert ShardProvidersNothingToChallenge(root, provider);
        uint256 open = _openChallenge[root][provider];
        if (open != 0) revert ShardProvidersChallengeOpen(open);
        (uint256 stake, uint256 need) = _backing(provider);
        if (stake >= need) revert ShardProvidersProviderBacked(provider, stake, need);
        emit ProviderEvicted(root, provider, stake);
        _removeShards(root, provider, held, held);
    }

    /// @inheritdoc IShardProviders
    function availability(bytes32 root) external view returns (uint256 shardsAvailable, bool recoverable) {
        shardsAvailable = _available[root];
        (uint8 k, uint8 m) = _models.shardCounts(root);
        if (_acceptHolders(root).length != 0) shardsAvailable = uint256(k) + m; // each holds every shard
        recoverable = k != 0 && shardsAvailable >= k;
    }

    /// @inheritdoc IShardProviders
    function providersOf(bytes32 root, uint256 index) external view returns (address[] memory providers) {
        address[] storage holders = _rootHolders[root];
        uint256 n = holders.length;
        // an index past the model's shards is held by nobody by acceptance
        address[] memory accepted = (_fullBitmap(root) >> index) & 1 == 1 ? _acceptHolders(root) : new address[](0);
        providers = new address[](n + accepted.length);
        uint256 found;
        for (uint256 i; i < n; ++i) {
            address h = holders[i];
            // a shift by 256 or more is 0: an index past MAX_SHARDS finds nobody
            if ((_held[root][h] >> index) & 1 == 1) providers[found++] = h;
        }
        for (uint256 i; i < accepted.length; ++i) {
            if ((_held[root][accepted[i]] >> index) & 1 == 0) providers[found++] = accepted[i]; // not listed above
        }
        assembly ("memory-safe") {
            mstore(providers, found) // shrink to the providers found (found <= n + accepted.length)
        }
    }

    /// @inheritdoc IShardProviders
    function holdersOf(bytes32 root) external view returns (address[] memory holders) {
        address[] storage announced = _rootHolders[root];
        uint256 n = announced.length;
        address[] memory accepted = _acceptHolders(root);
        holders = new address[](n + accepted.length);
        for (uint256 i; i < n; ++i) {
            holders[i] = announced[i];
        }
        uint256 found = n;
        for (uint256 i; i < accepted.length; ++i) {
            if (_held[root][accepted[i]] == 0) holders[found++] = accepted[i]; // not listed above
        }
        assembly ("memory-safe") {
            mstore(holders, found) // found <= n + accepted.length
        }
    }

    /// @inheritdoc IShardProviders
    function shardsOf(bytes32 root, address provider) external view returns (uint256) {
        return _heldBy(root, provider);
    }

    /// @inheritdoc IShardProviders
    function announcedOf(bytes32 root, address provider) external view returns (uint256) {
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
    function challenge(bytes32 root, address provider) external nonReentrant returns (uint256 challengeId) {
        _requireBacked(msg.sender);
        uint256 held = _heldBy(root, provider);
        if (held == 0) revert ShardProvidersNothingToChallenge(root, provider);
        uint256 open = _openChallenge[root][provider];
        if (open != 0) revert ShardProvidersChallengeOpen(open);

        challengeId = ++_challengeCount;
        _openChallenges[provider] += 1;
        uint256 seed =
            uint256(keccak256(abi.encode(blockhash(block.number - 1), challengeId, root, provider)));
        uint256 index = _nthSetBit(held, seed % _popcount(held));
        uint64 deadline = uint64(block.number) + _challengeWindow;

        uint96 bond = _challengeBond;
        _challenges[challengeId] = Challenge({
            root: root,
            provider: provider,
            // casting to 'uint16' is safe because index < MAX_SHARDS = 256
            // forge-lint: disable-next-line(unsafe-typecast)
            index: uint16(index),
            deadline: deadline,
            status: ChallengeStatus.Open,
            challenger: msg.sender,
            bond: bond
        });
        _openChallenge[root][provider] = challengeId;
        emit ChallengeOpened(challengeId, root, provider, msg.sender, index, deadline);
        if (bond != 0) _token.safeTransferFrom(msg.sender, address(this), bond);
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
        _openChallenges[msg.sender] -= 1;
        _providers[msg.sender].successes += 1;
        emit ChallengePassed(challengeId, msg.sender, shardHash);
        _credit(msg.sender, challengeId, c.bond); // the challenger's bond pays the provider for its answer
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
        _credit(c.challenger, challengeId, c.bond); // the challenger was right: its bond comes back

        c.status = ChallengeStatus.Failed;
        delete _openChallenge[root][provider];
        _openChallenges[provider] -= 1;
        _providers[provider].failures += 1;
        // Every holding of the root goes: by acceptance (checked before the slash below lowers the stake; one that
        // lapsed meanwhile, its stake below the minimum, must not come back with a top-up either) and announced.
        if (_acceptHolds(root, provider)) _dropAccepted(root, provider);
        else _acceptDropped[root][provider] = true;
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
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _claimable[msg.sender];
        if (amount == 0) revert ShardProvidersNothingToClaim(msg.sender);
        _claimable[msg.sender] = 0;
        emit BondClaimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IShardProviders
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
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

    /// @inheritdoc IShardProviders
    function challengeBond() external view returns (uint256) {
        return _challengeBond;
    }

    /// @inheritdoc IShardProviders
    function minProviderStake() public view returns (uint256) {
        uint256 slash = _challengeSlash;
        return slash == 0 ? 1 : slash;
    }

    /// @inheritdoc IStakeLocker
    /// @dev Providers stake in any role, so the role is not looked at. Locked while the provider announces any
    ///      root or has a challenge open (a holding by acceptance needs no lock of its own: it lapses once
    ///      the provider's stake falls below `minProviderStake`).
    function lockedStake(address account, Role) external view returns (uint256) {
        return _providers[account].rootsHeld != 0 || _openChallenges[account] != 0 ? minProviderStake() : 0;
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

    /// @inheritdoc IShardProviders
    function setChallengeBond(uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (amount > type(uint96).max) revert ShardProvidersInvalidBond(amount);
        // casting to 'uint96' is safe because of the check above
        // forge-lint: disable-next-line(unsafe-typecast)
        _challengeBond = uint96(amount);
        emit ChallengeBondUpdated(amount);
    }

    /// @notice The staking contract.
    function staking() external view returns (IParticipantStaking) {
        return _staking;
    }

    /// @notice The model registry whose roots the providers serve.
    function models() external view returns (IModelShardRegistry) {
        return _models;
    }

    /// @notice The token of challenge bonds.
    function token() external view returns (IERC20) {
        return _token;
    }

    // ------------------------------------------------------------------ internal

    /// @dev `account`'s bonded stake and the stake a provider or challenger needs (`minProviderStake`).
    function _backing(address account) private view returns (uint256 stake, uint256 need) {
        stake = _staking.stakeOf(account);
        need = minProviderStake();
    }

    function _requireBacked(address account) private view {
        (uint256 stake, uint256 need) = _backing(account);
        if (stake < need) revert ShardProvidersInsufficientStake(account, stake, need);
    }

    function _credit(address account, uint256 challengeId, uint256 amount) private {
        if (amount == 0) return;
        _claimable[account] += amount;
        emit BondCredited(account, challengeId, amount);
    }

    function _checkEndpoint(string calldata endpoint) private pure {
        uint256 len = bytes(endpoint).length;
        if (len == 0 || len > MAX_ENDPOINT_LENGTH) revert ShardProvidersInvalidEndpoint(len);
    }

    /// @dev Every shard index of `root` as a bitmap (0 for an unknown root).
    function _fullBitmap(bytes32 root) private view returns (uint256) {
        (uint8 k, uint8 m) = _models.shardCounts(root);
        uint256 count = uint256(k) + m; // < MAX_SHARDS = 256 (two 8-bit counts)
        return (uint256(1) << count) - 1;
    }

    /// @dev What `provider` holds of `root`: its announced shards, and every shard while it holds the root by its
    ///      acceptance.
    function _heldBy(bytes32 root, address provider) private view returns (uint256 held) {
        held = _held[root][provider];
        if (_acceptHolds(root, provider)) held |= _fullBitmap(root);
    }

    /// @dev Whether `provider` holds `root` by its acceptance (see the contract's notes).
    function _acceptHolds(bytes32 root, address provider) private view returns (bool) {
        (address publisher, uint256 signers, uint256 publishedBlock) = _models.acceptedHoldersOf(root);
        if (publisher == address(0) || _acceptDropped[root][provider]) return false;
        if (provider != publisher) {
            if (signers == 0) return false;
            IBlsSignerRegistry bls = _models.blsSigners();
            (bool registered, uint256 index,) = bls.blsKeyOf(provider);
            // a signer index taken after the publication names a later holder of the index
            if (!registered || (signers >> index) & 1 == 0 || bls.blsSignerSince(index) > publishedBlock) {
                return false;
            }
        }
        return _servesBacked(provider);
    }

    /// @dev The providers that hold `root` by its acceptance now, the publisher first: at most 1 + MAX_BLS_SIGNERS,
    ///      three registry reads and a staking read each.
    function _acceptHolders(bytes32 root) private view returns (address[] memory holders) {
        (address publisher, uint256 signers, uint256 publishedBlock) = _models.acceptedHoldersOf(root);
        if (publisher == address(0)) return holders;
        holders = new address[](1 + _popcount(signers));
        uint256 found;
        if (!_acceptDropped[root][publisher] && _servesBacked(publisher)) holders[found++] = publisher;
        if (signers != 0) {
            IBlsSignerRegistry bls = _models.blsSigners();
            for (uint256 i; i < MAX_SHARDS && (signers >> i) != 0; ++i) {
                if ((signers >> i) & 1 == 0) continue;
                address p = bls.blsSignerAt(i);
                if (p == publisher || _acceptDropped[root][p] || bls.blsSignerSince(i) > publishedBlock) continue;
                if (_servesBacked(p)) holders[found++] = p;
            }
        }
        assembly ("memory-safe") {
            mstore(holders, found) // found <= 1 + popcount(signers)
        }
    }

    /// @dev An active provider with bonded stake of at least `minProviderStake()`.
    function _servesBacked(address provider) private view returns (bool) {
        if (!_providers[provider].active) return false;
        (uint256 stake, uint256 need) = _backing(provider);
        return stake >= need;
    }

    /// @dev Ends `provider`'s holding of `root` by its acceptance.
    function _dropAccepted(bytes32 root, address provider) private {
        _acceptDropped[root][provider] = true;
        uint256 announced = _held[root][provider];
        emit ShardsWithdrawn(root, provider, _fullBitmap(root) & ~announced, announced);
    }

    /// @dev Removes `bits` (a subset of `held`) of `provider` for `root` and updates holders and availability.
    function _removeShards(bytes32 root, address provider, uint256 held, uint256 bits) private {
        uint256 newHeld = held & ~bits;
        _held[root][provider] = newHeld;
        if (newHeld == 0) {
            // held != 0 before, so the root was counted in rootsHeld (>= 1) and the provider is listed
            _providers[provider].rootsHeld -= 1;
            address[] storage holders = _rootHolders[root];
            uint256 position = _rootHolderPosition[root][provider];
            address last = holders[holders.length - 1];
            holders[position - 1] = last;
            _rootHolderPosition[root][last] = position;
            holders.pop();
            delete _rootHolderPosition[root][provider];
        }
        uint256 lost = _countHolders(root, bits, false);
        if (lost != 0) _available[root] -= lost;
        emit ShardsWithdrawn(root, provider, bits, newHeld);
    }

    /// @dev Adds one holder to (`joining`) or removes one from every index set in `bits`, and returns how many of
    ///      those indices went from no holder to one (joining) or from one to none (leaving). Joining reverts when
    ///      an index already has MAX_HOLDERS_PER_SHARD holders; leaving is only asked for indices the provider
    ///      holds, whose counts are therefore >= 1. One slot holds the counts of 32 indices.
    function _countHolders(bytes32 root, uint256 bits, bool joining) private returns (uint256 flipped) {
        for (uint256 w; w < MAX_SHARDS / 32 && (bits >> (w * 32)) != 0; ++w) {
            uint256 chunk = (bits >> (w * 32)) & 0xffffffff;
            if (chunk == 0) continue;
            uint256 counts = _holderCounts[root][w];
            for (uint256 j; j < 32 && (chunk >> j) != 0; ++j) {
                if ((chunk >> j) & 1 == 0) continue;
                uint256 c = (counts >> (8 * j)) & 0xff;
                if (joining) {
                    if (c >= MAX_HOLDERS_PER_SHARD) revert ShardProvidersShardHoldersFull(w * 32 + j);
                    if (c == 0) ++flipped;
                    counts += uint256(1) << (8 * j);
                } else {
                    if (c == 1) ++flipped;
                    counts -= uint256(1) << (8 * j);
                }
            }
            _holderCounts[root][w] = counts;
        }
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
