// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";
import {IATNToken} from "./interfaces/IATNToken.sol";
import {IProject} from "./interfaces/IProject.sol";
import {IInferenceMarket} from "./interfaces/IInferenceMarket.sol";
import {PaymentReceiver} from "./PaymentReceiver.sol";

/// @title InferenceMarket
/// @notice x402 settlement with a provider / contributors / treasury split and pull claims. Every (project,
///         provider) pair has its own payTo, `paymentAddress(projectId, provider)`: a `PaymentReceiver` that this
///         market deploys with CREATE2 on the pair's first payment. The payer's EIP-3009 authorization names that
///         address as `to`, so it can only ever pay that project and that provider.
/// @dev Accounting: `_accounted` is every token the market owes or has locked as rounding dust (settled,
///      collected and swept value minus everything paid out); the token balance is always at least
///      `_accounted`. Tokens reach the books only with a transfer of the same amount into this contract:
///      `settle` (authorization executed into the caller's receiver, then released here) and `collect` (a
///      receiver's balance, e.g. an authorization submitted straight to the token). Anything else sent here
///      (plain transfers) is unaccounted and can only leave through `sweepUnaccounted`, to the treasury.
///      Contributor revenue: per project `accPerShare` grows by `floor(c * 1e18 / totalShares)` on each settle;
///      the part of `c` this cannot represent (rounded down to whole tokens) goes to the treasury. Each contributor keeps its accrued revenue
///      in 1e18-scaled units (`residual`) and is paid `floor(residual / 1e18)`, so the sum paid never exceeds
///      what was distributed (no per-user rounding up).
contract InferenceMarket is AccessControl, ReentrancyGuard, IInferenceMarket {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to record contributions (Rewards).
    bytes32 public constant CONTRIBUTION_RECORDER_ROLE = keccak256("CONTRIBUTION_RECORDER_ROLE");
    /// @notice Basis-point denominator.
    uint16 public constant BPS = 10_000;
    /// @notice Fixed-point precision of the reward-per-share accumulator.
    uint256 public constant PRECISION = 1e18;

    struct Split {
        uint16 provider;
        uint16 contributors;
        uint16 treasury;
    }

    struct Pool {
        uint256 totalShares;
        uint256 accPerShare; // scaled by PRECISION
    }

    struct Contributor {
        uint256 shares;
        uint256 accSnapshot; // pool accPerShare at the last accrual
        uint256 residual; // accrued revenue scaled by PRECISION, not yet paid
    }

    IATNToken private immutable _token;
    IProject private immutable _projects;
    /// @dev keccak256 of PaymentReceiver's init code for `_token`: with the salt, fixes every payTo address.
    bytes32 private immutable _receiverCodeHash;
    address private _treasury;
    Split private _split;

    /// @dev Settled + swept − paid out: what the market owes (plus contributor rounding dust).
    uint256 private _accounted;
    mapping(address account => uint256) private _claimable;
    mapping(uint256 projectId => Pool) private _pools;
    mapping(uint256 projectId => mapping(address account => Contributor)) private _contributors;

    /// @param admin receives DEFAULT_ADMIN_ROLE
    /// @param token_ the ATN token (EIP-3009)
    /// @param projects_ the Project contract (prices, existence)
    /// @param treasury_ receives the treasury share (the Timelock)
    constructor(address admin, IATNToken token_, IProject projects_, address treasury_) {
        if (address(token_) == address(0) || address(projects_) == address(0) || treasury_ == address(0)) {
            revert InferenceMarketZeroAddress();
        }
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _token = token_;
        _projects = projects_;
        _receiverCodeHash =
            keccak256(abi.encodePacked(type(PaymentReceiver).creationCode, abi.encode(address(token_))));
        _treasury = treasury_;
        _split = Split({provider: 6000, contributors: 2500, treasury: 1500});
    }

    /// @inheritdoc IInferenceMarket
    function settle(
        uint256 projectId,
        address from,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external nonReentrant returns (uint256 providerShare, uint256 contributorShare, uint256 treasuryShare) {
        _checkPrice(projectId, value);

        (providerShare, contributorShare, treasuryShare) = _credit(projectId, msg.sender, value);
        emit Settled(
            projectId, msg.sender, from, nonce, value, providerShare, contributorShare, treasuryShare
        );

        // The payee is the (project, caller) receiver: the token checks the payer's signature over
        // `to = receiver`, so an authorization signed for another project's or provider's payTo does not
        // verify (ATNTokenInvalidSignature). Replay / expiry revert inside the token too, undoing the credits.
        address receiver = _paymentAddress(projectId, msg.sender);
        _token.transferWithAuthorization(from, receiver, value, validAfter, validBefore, nonce, signature);
        _release(projectId, msg.sender, receiver, value);
    }

    /// @inheritdoc IInferenceMarket
    function collect(uint256 projectId, address provider)
        external
        nonReentrant
        returns (uint256 amount, uint256 providerShare, uint256 contributorShare, uint256 treasuryShare)
    {
        if (provider == address(0)) revert InferenceMarketZeroAddress();
        address receiver = _paymentAddress(projectId, provider);
        amount = IERC20(address(_token)).balanceOf(receiver);
        if (amount == 0) revert InferenceMarketNothingToCollect(projectId, provider);

        (providerShare, contributorShare, treasuryShare) = _credit(projectId, provider, amount);
        emit Collected(projectId, provider, amount, providerShare, contributorShare, treasuryShare);

        _release(projectId, provider, receiver, amount);
    }

    /// @inheritdoc IInferenceMarket
    function sweepUnaccounted() external nonReentrant returns (uint256 amount) {
        uint256 accounted = _accounted;
        uint256 balance = IERC20(address(_token)).balanceOf(address(this));
        // balance >= accounted: accounted value only enters with a transfer of the same amount (settle,
        // collect) or is taken from the balance above it (here), and leaves with a transfer of the same amount
        // (claims).
        amount = balance - accounted;
        if (amount == 0) revert InferenceMarketNothingToSweep();
        address treasury_ = _treasury;
        _accounted = accounted + amount;
        _claimable[treasury_] += amount;
        emit UnaccountedSwept(treasury_, amount);
    }

    /// @inheritdoc IInferenceMarket
    function recordContribution(uint256 projectId, address contributor, uint256 amount)
        external
        onlyRole(CONTRIBUTION_RECORDER_ROLE)
    {
        if (contributor == address(0)) revert InferenceMarketZeroAddress();
        if (amount == 0) return; // a zero reward earns no shares; never block the caller's finalize
        Contributor storage c = _accrue(projectId, contributor);
        c.shares += amount;
        uint256 total = _pools[projectId].totalShares + amount;
        _pools[projectId].totalShares = total;
        emit ContributionRecorded(projectId, contributor, amount, total);
    }

    /// @inheritdoc IInferenceMarket
    function claim() external nonReentrant returns (uint256 amount) {
        amount = _claimable[msg.sender];
        if (amount == 0) revert InferenceMarketNothingToClaim();
        _claimable[msg.sender] = 0;
        _accounted -= amount;
        emit Claimed(msg.sender, amount);
        IERC20(address(_token)).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IInferenceMarket
    function claimContributorRevenue(uint256 projectId) external nonReentrant returns (uint256 amount) {
        Contributor storage c = _accrue(projectId, msg.sender);
        uint256 residual = c.residual;
        amount = residual / PRECISION;
        if (amount == 0) revert InferenceMarketNothingToClaim();
        c.residual = residual - amount * PRECISION;
        _accounted -= amount;
        emit ContributorRevenueClaimed(projectId, msg.sender, amount);
        IERC20(address(_token)).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IInferenceMarket
    function setSplit(uint16 providerBps, uint16 contributorsBps, uint16 treasuryBps)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (uint256(providerBps) + contributorsBps + treasuryBps != BPS) {
            revert InferenceMarketInvalidSplit(providerBps, contributorsBps, treasuryBps);
        }
        _split = Split({provider: providerBps, contributors: contributorsBps, treasury: treasuryBps});
        emit SplitUpdated(providerBps, contributorsBps, treasuryBps);
    }

    /// @inheritdoc IInferenceMarket
    function setTreasury(address treasury_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (treasury_ == address(0)) revert InferenceMarketZeroAddress();
        _treasury = treasury_;
        emit TreasuryUpdated(treasury_);
    }

    /// @inheritdoc IInferenceMarket
    function paymentAddress(uint256 projectId, address provider) external view returns (address) {
        return _paymentAddress(projectId, provider);
    }

    /// @inheritdoc IInferenceMarket
    function uncollectedBalance(uint256 projectId, address provider) external view returns (uint256) {
        return IERC20(address(_token)).balanceOf(_paymentAddress(projectId, provider));
    }

    /// @inheritdoc IInferenceMarket
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc IInferenceMarket
    function pendingContributorRevenue(uint256 projectId, address account) external view returns (uint256) {
        Contributor storage c = _contributors[projectId][account];
        uint256 acc = _pools[projectId].accPerShare;
        return (c.residual + c.shares * (acc - c.accSnapshot)) / PRECISION;
    }

    /// @inheritdoc IInferenceMarket
    function sharesOf(uint256 projectId, address account) external view returns (uint256) {
        return _contributors[projectId][account].shares;
    }

    /// @inheritdoc IInferenceMarket
    function totalShares(uint256 projectId) external view returns (uint256) {
        return _pools[projectId].totalShares;
    }

    /// @inheritdoc IInferenceMarket
    function accountedBalance() external view returns (uint256) {
        return _accounted;
    }

    /// @inheritdoc IInferenceMarket
    function unaccountedBalance() external view returns (uint256) {
        return IERC20(address(_token)).balanceOf(address(this)) - _accounted;
    }

    /// @inheritdoc IInferenceMarket
    function split() external view returns (uint16 providerBps, uint16 contributorsBps, uint16 treasuryBps) {
        Split memory s = _split;
        return (s.provider, s.contributors, s.treasury);
    }

    /// @inheritdoc IInferenceMarket
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @notice The token settled in.
    function token() external view returns (IATNToken) {
        return _token;
    }

    /// @notice The Project contract read for prices.
    function projects() external view returns (IProject) {
        return _projects;
    }

    /// @dev Effects of a payment of `value` for `projectId` served by `provider`: split, credit, account.
    function _credit(uint256 projectId, address provider, uint256 value)
        private
        returns (uint256 providerShare, uint256 contributorShare, uint256 treasuryShare)
    {
        (providerShare, contributorShare, treasuryShare) = _distribute(projectId, value);
        _claimable[provider] += providerShare;
        _claimable[_treasury] += treasuryShare;
        _accounted += value;
    }

    /// @dev Reverts unless `projectId` exists, is for sale and `value` covers its price.
    function _checkPrice(uint256 projectId, uint256 value) private view {
        if (!_projects.exists(projectId)) revert InferenceMarketUnknownProject(projectId);
        uint256 price = _projects.inferencePrice(projectId);
        if (price == 0) revert InferenceMarketNotForSale(projectId);
        if (value < price) revert InferenceMarketUnderpaid(value, price);
    }

    /// @dev Moves `amount` from `receiver`, the (projectId, provider) receiver, to this market, deploying it
    ///      first when this is the pair's first payment.
    function _release(uint256 projectId, address provider, address receiver, uint256 amount) private {
        if (receiver.code.length == 0) {
            new PaymentReceiver{salt: _receiverSalt(projectId, provider)}(IERC20(address(_token)));
            emit PaymentReceiverDeployed(projectId, provider, receiver);
        }
        PaymentReceiver(receiver).release(amount);
    }

    /// @dev The CREATE2 address of the (projectId, provider) receiver.
    function _paymentAddress(uint256 projectId, address provider) private view returns (address) {
        return Create2.computeAddress(_receiverSalt(projectId, provider), _receiverCodeHash);
    }

    /// @dev CREATE2 salt of the (projectId, provider) receiver.
    function _receiverSalt(uint256 projectId, address provider) private pure returns (bytes32) {
        return keccak256(abi.encode(projectId, provider));
    }

    /// @dev Splits `value` and updates the project's accumulator; dust and an unowned contributor part go to
    ///      the treasury share.
    function _distribute(uint256 projectId, uint256 value)
        private
        returns (uint256 providerShare, uint256 contributorShare, uint256 treasuryShare)
    {
        Split memory s = _split;
        providerShare = value * s.provider / BPS;
        uint256 contributorPart = value * s.contributors / BPS;
        // value * (provider + contributors) / BPS <= value since the split sums to BPS, so no underflow.
        treasuryShare = value - providerShare - contributorPart;

        Pool storage pool = _pools[projectId];
        uint256 total = pool.totalShares;
        if (total == 0) {
            treasuryShare += contributorPart;
        } else {
            uint256 delta = contributorPart * PRECISION / total;
            // Rounded up: contributors can claim at most total * delta / PRECISION (exact), so crediting the ceiling
            // keeps the market solvent; ceil(total * delta / PRECISION) <= contributorPart as delta is floored.
            contributorShare = Math.mulDiv(delta, total, PRECISION, Math.Rounding.Ceil);
            treasuryShare += contributorPart - contributorShare;
            pool.accPerShare += delta;
        }
    }

    /// @dev Moves revenue earned since the last accrual into the contributor's scaled residual.
    function _accrue(uint256 projectId, address account) private returns (Contributor storage c) {
        c = _contributors[projectId][account];
        uint256 acc = _pools[projectId].accPerShare;
        uint256 snap = c.accSnapshot;
        if (acc != snap) {
            c.residual += c.shares * (acc - snap);
            c.accSnapshot = acc;
        }
    }
}
