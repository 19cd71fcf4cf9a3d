// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IInferenceMarket
/// @notice Settles x402 payments: executes the payer's EIP-3009 `transferWithAuthorization` to itself (the
///         authorization the x402 `exact` EVM scheme signs, with `to` = payTo = this market) and splits it
///         provider / project contributors / treasury (default 6000 / 2500 / 1500 bps). Contributor revenue is
///         distributed pro rata to training-reward shares through a per-project reward-per-share accumulator.
///         Everything is claimed by pull.
/// @dev Accounting invariant: the market's token balance is always at least `accountedBalance()` (settled and
///      swept value not yet paid out), which covers every `claimable` and every pending contributor revenue.
///      Tokens that reach the market without `settle` (an authorization submitted straight to the token, a plain
///      transfer) are unaccounted: nobody can claim them until `sweepUnaccounted` credits them to the treasury.
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

    /// @notice Settle an x402 payment: moves `value` from `from` to this market with the token's
    ///         `transferWithAuthorization(from, address(this), ...)` (token errors such as replay, expiry or a bad
    ///         signature bubble up) and credits the shares. The caller is the provider. `signature` is the payer's
    ///         EIP-712 `TransferWithAuthorization(from, to = this market, value, validAfter, validBefore, nonce)`
    ///         signature over the token's domain, exactly what an x402 v2 `exact` client sends.
    /// @dev Security: an EIP-3009 authorization binds payer, payee (this market), value, window and nonce, but
    ///      not the provider or the project, and `transferWithAuthorization` may be submitted by anyone.
    ///      - A mempool observer can front-run a provider's `settle` with its own `settle`: it is then credited as
    ///        provider (and picks any project whose price the value covers).
    ///      - It can also submit the authorization straight to the token: the value reaches this market without
    ///        accounting and the provider's `settle` reverts with the token's used-nonce error. Those funds are
    ///        never claimable by anyone until `sweepUnaccounted` credits them to the treasury; the attacker gains
    ///        nothing and pays the gas, the provider loses its share of that payment.
    ///      The payer pays exactly once in every case. Providers should submit through a private/sequencer RPC.
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

    /// @notice CONTRIBUTION_RECORDER (Rewards): add `amount` revenue shares for `contributor` in `projectId`.
    ///         The contributor's pending revenue is settled first, so new shares earn only future revenue.
    function recordContribution(uint256 projectId, address contributor, uint256 amount) external;

    /// @notice Claim the caller's provider/treasury balance.
    /// @return amount paid
    function claim() external returns (uint256 amount);

    /// @notice Claim the caller's contributor revenue in `projectId`.
    /// @return amount paid
    function claimContributorRevenue(uint256 projectId) external returns (uint256 amount);

    /// @notice Permissionless: credit every token the market holds above `accountedBalance()` (front-run
    ///         authorizations submitted straight to the token, plain transfers) to the treasury's claimable
    ///         balance. Reverts with `InferenceMarketNothingToSweep` when there is none.
    /// @return amount credited to the treasury
    function sweepUnaccounted() external returns (uint256 amount);

    /// @notice Admin: set the split (must sum to 10000).
    function setSplit(uint16 providerBps, uint16 contributorsBps, uint16 treasuryBps) external;

    /// @notice Admin: set the treasury that receives future treasury shares.
    function setTreasury(address treasury) external;

    /// @notice Provider/treasury balance of `account`.
    function claimable(address account) external view returns (uint256);

    /// @notice Contributor revenue of `account` in `projectId` not yet claimed.
    function pendingContributorRevenue(uint256 projectId, address account) external view returns (uint256);

    /// @notice Revenue shares of `account` in `projectId`.
    function sharesOf(uint256 projectId, address account) external view returns (uint256);

    /// @notice Total revenue shares in `projectId`.
    function totalShares(uint256 projectId) external view returns (uint256);

    /// @notice Tokens the market accounts for: settled and swept value not yet paid out (covers every claimable
    ///         balance and every pending contributor revenue, plus contributor rounding dust).
    function accountedBalance() external view returns (uint256);

    /// @notice Tokens held above `accountedBalance()`, which `sweepUnaccounted` would credit to the treasury.
    function unaccountedBalance() external view returns (uint256);

    /// @notice The split in bps.
    function split() external view returns (uint16 providerBps, uint16 contributorsBps, uint16 treasuryBps);

    /// @notice The treasury.
    function treasury() external view returns (address);
}
