// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IInferenceMarket
/// @notice Settles x402 payments and splits them provider / project contributors / treasury (default
///         6000 / 2500 / 1500 bps). The x402 `exact` EVM scheme has the payer sign an EIP-3009
///         `TransferWithAuthorization` to the offer's `payTo`; a node selling project P offers
///         `payTo = paymentAddress(P, node)`, a per-(project, provider) receiver this market deploys with CREATE2.
///         Since `to` is signed, the payment can only be accounted to that project and provider: by the node's
///         `settle`, or by anyone's `collect` when the authorization was submitted straight to the token.
///         Contributor revenue is distributed pro rata to training-reward shares through a per-project
///         reward-per-share accumulator. Everything is claimed by pull.
/// @dev Accounting invariant: the market's token balance is always at least `accountedBalance()` (settled,
///      collected and swept value not yet paid out), which covers every `claimable` and every pending contributor
///      revenue. Tokens that reach the market itself without `settle`/`collect` (plain transfers) are
///      unaccounted: nobody can claim them until `sweepUnaccounted` credits them to the treasury.
interface IInferenceMarket {
    /// @notice A payment of `value` by `payer` for `projectId` was settled by `provider`.
    event Settled(
        uint256 indexed projectId,
        address indexed provider,
        address indexed payer,
        bytes32 nonce,
        uint256 value,
        uint256 providerShare,
        uint256 contributorShare,
        uint256 treasuryShare
    );
    /// @notice `amount` shares were added to `contributor` in `projectId`; `totalShares` is the project total after.
    event ContributionRecorded(
        uint256 indexed projectId, address indexed contributor, uint256 amount, uint256 totalShares
    );
    /// @notice `account` claimed `amount` of its provider/treasury balance.
    event Claimed(address indexed account, uint256 amount);
    /// @notice `account` claimed `amount` of contributor revenue of `projectId`.
    event ContributorRevenueClaimed(uint256 indexed projectId, address indexed account, uint256 amount);
    /// @notice The split changed.
    event SplitUpdated(uint16 providerBps, uint16 contributorsBps, uint16 treasuryBps);
    /// @notice The treasury changed (balances already credited to the old treasury stay claimable by it).
    event TreasuryUpdated(address treasury);
    /// @notice `amount` tokens held without accounting were credited to `treasury`'s claimable balance.
    event UnaccountedSwept(address indexed treasury, uint256 amount);
    /// @notice `value` held at `paymentAddress(projectId, provider)` outside `settle` was collected and split.
    event Collected(
        uint256 indexed projectId,
        address indexed provider,
        uint256 value,
        uint256 providerShare,
        uint256 contributorShare,
        uint256 treasuryShare
    );
    /// @notice The payment receiver of (`projectId`, `provider`) was deployed at `receiver` (its first payment).
    event PaymentReceiverDeployed(uint256 indexed projectId, address indexed provider, address receiver);

    /// @notice The project does not exist.
    error InferenceMarketUnknownProject(uint256 projectId);
    /// @notice The project has no inference price (0): it is not for sale.
    error InferenceMarketNotForSale(uint256 projectId);
    /// @notice The payment is below the project's price.
    error InferenceMarketUnderpaid(uint256 value, uint256 price);
    /// @notice The split does not sum to 10000 bps.
    error InferenceMarketInvalidSplit(uint16 providerBps, uint16 contributorsBps, uint16 treasuryBps);
    /// @notice Nothing to claim.
    error InferenceMarketNothingToClaim();
    /// @notice A zero amount was given.
    error InferenceMarketZeroAmount();
    /// @notice The zero address was given.
    error InferenceMarketZeroAddress();
    /// @notice The market holds no unaccounted tokens.
    error InferenceMarketNothingToSweep();
    /// @notice `paymentAddress(projectId, provider)` holds nothing.
    error InferenceMarketNothingToCollect(uint256 projectId, address provider);

    /// @notice Settle an x402 payment for `projectId`, served by the caller (the provider): executes the token's
    ///         `transferWithAuthorization(from, paymentAddress(projectId, msg.sender), ...)` (token errors such as
    ///         replay, expiry or a bad signature bubble up), moves the value from that receiver into the market
    ///         (deploying the receiver on the pair's first payment) and credits the shares. `signature` is the
    ///         payer's EIP-712 `TransferWithAuthorization(from, to = paymentAddress(projectId, provider), value,
    ///         validAfter, validBefore, nonce)` signature over the token's domain, exactly what an x402 v2 `exact`
    ///         client sends for an offer whose `payTo` is that address.
    /// @dev Security: `to` is part of the signed digest and is computed here from `projectId` and `msg.sender`,
    ///      so an authorization can only be settled by the provider and for the project its payTo names. Any other
    ///      (projectId, caller) makes the token reject the signature (`ATNTokenInvalidSignature`).
    ///      `transferWithAuthorization` may still be submitted straight to the token by anyone: the value then
    ///      waits at the pair's receiver, the provider's `settle` reverts with the token's used-nonce error, and
    ///      `collect(projectId, provider)` (permissionless) accounts it to the same project and provider. The payer
    ///      pays exactly once in every case and nobody else can take the value.
    ///      `value >= price`: an overpayment is the payer's own signed choice and can no longer be redirected, and
    ///      a price lowered between the 402 and the settlement does not void a payment made at the offered price.
    /// @return providerShare credited to the caller's `claimable`
    /// @return contributorShare distributed to the project's contributors (0 when it has none: goes to treasury)
    /// @return treasuryShare credited to the treasury's `claimable` (includes rounding dust)
    function settle(
        uint256 projectId,
        address from,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external returns (uint256 providerShare, uint256 contributorShare, uint256 treasuryShare);

    /// @notice Permissionless: account everything held at `paymentAddress(projectId, provider)` (authorizations
    ///         submitted straight to the token, plain transfers to it) to that project and provider, split like a
    ///         settlement (no price check: whatever reached the pair's payTo is the pair's revenue). Deploys the
    ///         receiver when needed. Reverts with `InferenceMarketNothingToCollect` when it holds nothing.
    /// @return amount collected (the receiver's whole balance)
    /// @return providerShare credited to `provider`'s `claimable`
    /// @return contributorShare distributed to the project's contributors
    /// @return treasuryShare credited to the treasury's `claimable`
    function collect(uint256 projectId, address provider)
        external
        returns (uint256 amount, uint256 providerShare, uint256 contributorShare, uint256 treasuryShare);

    /// @notice CONTRIBUTION_RECORDER (Rewards): add `amount` revenue shares for `contributor` in `projectId`.
    ///         The contributor's pending revenue is settled first, so new shares earn only future revenue.
    function recordContribution(uint256 projectId, address contributor, uint256 amount) external;

    /// @notice Claim the caller's provider/treasury balance.
    /// @return amount paid
    function claim() external returns (uint256 amount);

    /// @notice Claim the caller's contributor revenue in `projectId`.
    /// @return amount paid
    function claimContributorRevenue(uint256 projectId) external returns (uint256 amount);

    /// @notice Permissionless: credit every token the market itself holds above `accountedBalance()` (plain
    ///         transfers, authorizations signed with the market as `to`) to the treasury's claimable balance.
    ///         Payments to a pair's payTo are not swept: `collect` accounts them to their project and provider.
    ///         Reverts with `InferenceMarketNothingToSweep` when there is none.
    /// @return amount credited to the treasury
    function sweepUnaccounted() external returns (uint256 amount);

    /// @notice Admin: set the split (must sum to 10000).
    function setSplit(uint16 providerBps, uint16 contributorsBps, uint16 treasuryBps) external;

    /// @notice Admin: set the treasury that receives future treasury shares.
    function setTreasury(address treasury) external;

    /// @notice The x402 `payTo` of `provider` selling `projectId`: the CREATE2 address of the pair's
    ///         `PaymentReceiver` (deployed or not yet). Depends only on this market, the token, `projectId` and
    ///         `provider`.
    function paymentAddress(uint256 projectId, address provider) external view returns (address);

    /// @notice ATN waiting at `paymentAddress(projectId, provider)`, which `collect` would account.
    function uncollectedBalance(uint256 projectId, address provider) external view returns (uint256);

    /// @notice Provider/treasury balance of `account`.
    function claimable(address account) external view returns (uint256);

    /// @notice Contributor revenue of `account` in `projectId` not yet claimed.
    function pendingContributorRevenue(uint256 projectId, address account) external view returns (uint256);

    /// @notice Revenue shares of `account` in `projectId`.
    function sharesOf(uint256 projectId, address account) external view returns (uint256);

    /// @notice Total revenue shares in `projectId`.
    function totalShares(uint256 projectId) external view returns (uint256);

    /// @notice Tokens the market accounts for: settled, collected and swept value not yet paid out (covers every claimable
    ///         balance and every pending contributor revenue, plus contributor rounding dust).
    function accountedBalance() external view returns (uint256);

    /// @notice Tokens held above `accountedBalance()`, which `sweepUnaccounted` would credit to the treasury.
    function unaccountedBalance() external view returns (uint256);

    /// @notice The split in bps.
    function split() external view returns (uint16 providerBps, uint16 contributorsBps, uint16 treasuryBps);

    /// @notice The treasury.
    function treasury() external view returns (address);
}
