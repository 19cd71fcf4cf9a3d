// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Lifecycle of a storage challenge.
enum ChallengeStatus {
    None,
    Open,
    Passed,
    Failed
}

/// @title IShardProviders
/// @notice Storage providers of published models: their endpoints, which shards of which model each one
///         announces, per-shard availability, and liveness challenges that slash a provider who cannot show a
///         shard it announced. Models themselves (roots, shard counts, proofs) live in `ModelShardRegistry`.
/// @dev A shard is proven with `keccak256(abi.encode(uint256 index, bytes32 shardHash))` as leaf under the model
///      root, pairs hashed sorted (OpenZeppelin `MerkleProof`). Providers and challengers need bonded stake of at
///      least `minProviderStake()` (= `challengeSlash`, what a failed challenge takes) when they register,
///      announce or challenge. While a provider announces shards, `ShardProviders` (an `IStakeLocker` registered
///      in `ParticipantStaking`) keeps `minProviderStake()` of its stake from being unbonded; a provider whose
///      stake still falls below it (slashed, or the minimum raised) can be evicted by anyone. A challenger
///      escrows `challengeBond` ATN, paid to the provider when the proof holds and returned when the challenge
///      expires unanswered (pull payments, `claim`). See docs/storage.md.
interface IShardProviders {
    // ------------------------------------------------------------------ structs

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
    /// @param index the shard index the provider must prove
    /// @param deadline last block at which `respondChallenge` is accepted
    /// @param status lifecycle status
    /// @param challenger who opened it
    /// @param bond ATN the challenger escrowed (to the provider on a pass, back to the challenger on a failure)
    struct Challenge {
        bytes32 root;
        address provider;
        uint16 index;
        uint64 deadline;
        ChallengeStatus status;
        address challenger;
        uint96 bond;
    }

    // ------------------------------------------------------------------ events

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
    /// @notice `provider`'s announcement of `root` was removed because its bonded stake `stake` fell below
    ///         `minProviderStake()`.
    event ProviderEvicted(bytes32 indexed root, address indexed provider, uint256 stake);
    /// @notice `amount` of the bond of `challengeId` was credited to `account` (claimable).
    event BondCredited(address indexed account, uint256 indexed challengeId, uint256 amount);
    /// @notice `account` claimed `amount` of credited bonds.
    event BondClaimed(address indexed account, uint256 amount);
    /// @notice Admin changed the bond a challenger escrows.
    event ChallengeBondUpdated(uint256 amount);
    /// @notice Admin changed the challenge response window (blocks).
    event ChallengeWindowUpdated(uint64 window);
    /// @notice Admin changed the amount slashed for a failed challenge.
    event ChallengeSlashUpdated(uint256 amount);

    // ------------------------------------------------------------------ errors

    /// @notice A constructor argument is the zero address.
    error ShardProvidersZeroAddress();
    /// @notice `account` holds `stake` bonded, less than the `need` of a provider or challenger.
    error ShardProvidersInsufficientStake(address account, uint256 stake, uint256 need);
    /// @notice `provider` still holds `stake` >= `need`: it cannot be evicted.
    error ShardProvidersProviderBacked(address provider, uint256 stake, uint256 need);
    /// @notice `account` has no credited bond to claim.
    error ShardProvidersNothingToClaim(address account);
    /// @notice A challenge bond above 2^96 - 1.
    error ShardProvidersInvalidBond(uint256 amount);
    /// @notice The endpoint is empty or longer than MAX_ENDPOINT_LENGTH bytes.
    error ShardProvidersInvalidEndpoint(uint256 length);
    /// @notice The caller is already an active provider.
    error ShardProvidersProviderExists(address provider);
    /// @notice The address is not an active provider.
    error ShardProvidersNotProvider(address account);
    /// @notice The provider still announces shards of `rootsHeld` models; withdraw them first.
    error ShardProvidersProviderHoldsShards(address provider, uint256 rootsHeld);
    /// @notice No model was published under `root`.
    error ShardProvidersUnknownModel(bytes32 root);
    /// @notice The bitmap is zero or has a bit at or above the model's shard count.
    error ShardProvidersInvalidBitmap(uint256 bitmap, uint256 shardCount);
    /// @notice The bitmap names shards (`missing`) that the provider does not announce.
    error ShardProvidersShardsNotHeld(uint256 missing);
    /// @notice Shard `index` already has MAX_HOLDERS_PER_SHARD holders.
    error ShardProvidersShardHoldersFull(uint256 index);
    /// @notice The provider has an open challenge `challengeId` for this root.
    error ShardProvidersChallengeOpen(uint256 challengeId);
    /// @notice The provider announces no shard of this root.
    error ShardProvidersNothingToChallenge(bytes32 root, address provider);
    /// @notice The challenge is not Open.
    error ShardProvidersChallengeNotOpen(uint256 challengeId, ChallengeStatus status);
    /// @notice Only the challenged provider may respond.
    error ShardProvidersNotChallenged(uint256 challengeId, address caller);
    /// @notice The response window ended at `deadline`.
    error ShardProvidersChallengeExpired(uint256 challengeId, uint64 deadline);
    /// @notice The response window is still running until `deadline`.
    error ShardProvidersChallengeNotExpired(uint256 challengeId, uint64 deadline);
    /// @notice The shard proof does not verify against the model root.
    error ShardProvidersInvalidProof(uint256 challengeId);
    /// @notice A challenge window outside [MIN_CHALLENGE_WINDOW, MAX_CHALLENGE_WINDOW].
    error ShardProvidersInvalidWindow(uint64 window);
    /// @notice The transaction ran so low on gas that the slash may have been starved; retry with more gas.
    error ShardProvidersInsufficientGas();

    // ------------------------------------------------------------------ providers

    /// @notice Register the caller as a storage provider (any address with bonded stake >= `minProviderStake()`,
    ///         in any role).
    /// @param endpoint base URL, 1..MAX_ENDPOINT_LENGTH bytes
    function registerProvider(string calldata endpoint) external;

    /// @notice Change the caller's endpoint (active provider).
    function updateEndpoint(string calldata endpoint) external;

    /// @notice Deactivate the caller (active provider announcing no shards). Its record and counters stay.
    function deactivateProvider() external;

    /// @notice Announce that the caller (active provider with bonded stake >= `minProviderStake()`) holds the
    ///         shards of `root` whose
    ///         bits are set in `bitmap` (bit i = shard i, i < k + m of the published model). Already announced
    ///         bits are ignored.
    function announceShards(bytes32 root, uint256 bitmap) external;

    /// @notice Stop announcing the shards of `root` in `bitmap` (all must be announced; not while a challenge
    ///         of the caller for `root` is open).
    function withdrawShards(bytes32 root, uint256 bitmap) external;

    /// @notice Give up the caller's holding of `root` by its acceptance (it published the model or signed the
    ///         BLS aggregate that accepted it; see `shardsOf`); its announced shards stay. Not while a challenge of
    ///         the caller for `root` is open.
    function withdrawAccepted(bytes32 root) external;

    /// @notice Remove every announced shard of `root` of `provider` (anyone) when its bonded stake is below
    ///         `minProviderStake()`: the stake lock keeps a provider from unbonding below it, but a slash or a
    ///         raised `challengeSlash` can still leave it short, and stake that does not cover a failed challenge
    ///         does not hold a place in the holder lists. Not while a challenge of it for `root` is open.
    function evictUnbacked(bytes32 root, address provider) external;

    /// @notice Number of shard indices of `root` with at least one holder, and whether that is >= k (every index
    ///         while any provider holds the root by its acceptance).
    function availability(bytes32 root) external view returns (uint256 shardsAvailable, bool recoverable);

    /// @notice Providers holding shard `index` of `root`: those announcing it (at most MAX_HOLDERS_PER_SHARD),
    ///         then those holding the root by its acceptance.
    function providersOf(bytes32 root, uint256 index) external view returns (address[] memory);

    /// @notice Providers holding any shard of `root`, each once: those announcing shards (order changes when one
    ///         leaves), then those holding it only by its acceptance.
    function holdersOf(bytes32 root) external view returns (address[] memory);

    /// @notice Bitmap of the shards of `root` that `provider` announced (what `withdrawShards` can remove).
    function announcedOf(bytes32 root, address provider) external view returns (uint256);

    /// @notice Bitmap of the shards of `root` that `provider` holds: those it announced, and every shard while it
    ///         holds the root by its acceptance: it is the accepted model's publisher or a signer of the BLS
    ///         aggregate that accepted it (`ModelShardRegistry.acceptedHoldersOf`) that took its signer index no
    ///         later than the publication, is an active provider with stake >= `minProviderStake()`, and has not
    ///         dropped the holding by `withdrawAccepted` or a failed challenge.
    function shardsOf(bytes32 root, address provider) external view returns (uint256);

    /// @notice Endpoint of `provider` (empty when never registered).
    function endpointOf(address provider) external view returns (string memory);

    /// @notice The provider record of `provider`.
    function getProvider(address provider) external view returns (Provider memory);

    // ------------------------------------------------------------------ challenges

    /// @notice Challenge `provider` (caller must hold bonded stake >= `minProviderStake()` and approve
    ///         `challengeBond()` ATN, escrowed here) to prove a shard of `root` it announces, picked from
    ///         `blockhash(block.number - 1)` and the challenge id. One open challenge per (root, provider).
    /// @return challengeId the new challenge id (ids start at 1)
    function challenge(bytes32 root, address provider) external returns (uint256 challengeId);

    /// @notice Answer an open challenge (the challenged provider, until the deadline) with the shard hash and
    ///         its Merkle proof; the challenger's bond is credited to the provider. Reverts
    ///         `ShardProvidersInvalidProof` on a bad proof (retry allowed).
    function respondChallenge(uint256 challengeId, bytes32 shardHash, bytes32[] calldata proof) external;

    /// @notice Close an unanswered challenge after its deadline (anyone): the provider's announcement of the
    ///         root is removed, `challengeSlash` of its stake is taken (bonded first, then pending unbonds; never
    ///         reverts on the slash) and the challenger's bond is credited back to it.
    function expireChallenge(uint256 challengeId) external;

    /// @notice Pay the caller its credited bonds.
    /// @return amount the ATN transferred
    function claim() external returns (uint256 amount);

    /// @notice Credited bonds `account` can claim.
    function claimable(address account) external view returns (uint256);

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

    /// @notice ATN a challenger escrows per challenge.
    function challengeBond() external view returns (uint256);

    /// @notice Bonded stake a provider or challenger needs: `challengeSlash`, at least 1 wei.
    function minProviderStake() external view returns (uint256);

    // ------------------------------------------------------------------ admin

    /// @notice Admin (Timelock): set the challenge response window in blocks.
    function setChallengeWindow(uint64 window) external;

    /// @notice Admin (Timelock): set the stake slashed for a failed challenge (0 disables slashing); it is also
    ///         the bonded stake a provider or challenger needs.
    function setChallengeSlash(uint256 amount) external;

    /// @notice Admin (Timelock): set the ATN a challenger escrows per challenge (0 disables the bond).
    function setChallengeBond(uint256 amount) external;
}
