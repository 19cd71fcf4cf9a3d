// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ATNToken} from "../../contracts/ATNToken.sol";
import {Project} from "../../contracts/Project.sol";
import {InferenceMarket} from "../../contracts/InferenceMarket.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";

/// @dev Random settles, redirection attempts (another project or provider than the offer's payTo), authorizations
///      submitted straight to the token (front-runs) and plain transfers to a pair's payTo, collects, plain and
///      legacy (`to` = market) transfers to the market, sweeps, contributions and claims, with ghost accounting.
contract MarketHandler is Test {
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    ATNToken public token;
    InferenceMarket public market;
    address public recorder;
    address public admin;
    address public treasury;
    address public constant ATTACKER = address(0xBAD);
    uint256[] public projectIds;
    address[] public providers;
    address[] public contributors;
    uint256[] internal payerPks;

    /// value accounted by `settle`
    uint256 public ghostSettled;
    /// value accounted by `collect`
    uint256 public ghostCollected;
    uint256 public ghostProvider;
    uint256 public ghostContributor;
    uint256 public ghostTreasury;
    uint256 public ghostPaidOut;
    uint256 public ghostDoublePays;
    uint256 public ghostSettles;
    /// value sent to pairs' payTo addresses outside `settle` (front-runs, plain transfers)
    uint256 public ghostToReceivers;
    /// value that reached the market itself without settle/collect (legacy authorizations, plain transfers)
    uint256 public ghostUnaccountedIn;
    uint256 public ghostSwept;
    /// settles that succeeded with an authorization already executed straight on the token
    uint256 public ghostFrontRunSettles;
    /// settles that succeeded for another project or provider than the authorization's payTo
    uint256 public ghostRedirects;
    mapping(address provider => uint256) public ghostProviderCredited;
    mapping(address provider => uint256) public ghostProviderClaimed;
    uint256 internal _nonce;

    constructor(
        ATNToken token_,
        InferenceMarket market_,
        address recorder_,
        address admin_,
        address treasury_,
        uint256[] memory projectIds_
    ) {
        token = token_;
        market = market_;
        recorder = recorder_;
        admin = admin_;
        treasury = treasury_;
        projectIds = projectIds_;
        for (uint256 i; i < 3; ++i) {
            providers.push(address(uint160(0x2000 + i)));
            contributors.push(address(uint160(0x3000 + i)));
            payerPks.push(0xA000 + i);
        }
    }

    function counts() external view returns (uint256 nProjects, uint256 nProviders, uint256 nContributors) {
        return (projectIds.length, providers.length, contributors.length);
    }

    /// A funded payer's authorization of `value` to `to`.
    function _authorize(uint256 payerSeed, address to, uint256 value)
        internal
        returns (address payer, bytes32 nonce, bytes memory sig)
    {
        uint256 pk = payerPks[payerSeed % payerPks.length];
        payer = vm.addr(pk);
        deal(address(token), payer, token.balanceOf(payer) + value, true);
        nonce = bytes32(++_nonce);
        bytes32 structHash =
            keccak256(abi.encode(TRANSFER_TYPEHASH, payer, to, value, 0, block.timestamp + 60, nonce));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(pk, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
        sig = abi.encodePacked(r, s, v);
    }

    function _pair(uint256 providerSeed, uint256 projectSeed)
        internal
        view
        returns (address prov, uint256 id)
    {
        prov = providers[providerSeed % providers.length];
        id = projectIds[projectSeed % projectIds.length];
    }

    function _credited(address prov, uint256 p, uint256 c, uint256 t) internal {
        ghostProvider += p;
        ghostContributor += c;
        ghostTreasury += t;
        ghostProviderCredited[prov] += p;
    }

    function settle(uint256 payerSeed, uint256 providerSeed, uint256 projectSeed, uint256 value) external {
        (address prov, uint256 id) = _pair(providerSeed, projectSeed);
        value = bound(value, market.projects().inferencePrice(id), 1_000e18);
        (address payer, bytes32 nonce, bytes memory sig) =
            _authorize(payerSeed, market.paymentAddress(id, prov), value);
        vm.prank(prov);
        (uint256 p, uint256 c, uint256 t) =
            market.settle(id, payer, value, 0, block.timestamp + 60, nonce, sig);
        ghostSettled += value;
        _credited(prov, p, c, t);
        ++ghostSettles;
    }

    struct Auth {
        address payer;
        uint256 value;
        bytes32 nonce;
        bytes sig;
    }

    /// Whoever holds the authorization tries to settle it for another project (as itself or as the offering
    /// provider) or as another provider; every attempt must fail. The offering provider then settles it.
    function redirect(
        uint256 payerSeed,
        uint256 providerSeed,
        uint256 projectSeed,
        uint256 otherSeed,
        uint256 value
    ) external {
        (address prov, uint256 id) = _pair(providerSeed, projectSeed);
        Auth memory a;
        a.value = bound(value, market.projects().inferencePrice(id), 1_000e18);
        (a.payer, a.nonce, a.sig) = _authorize(payerSeed, market.paymentAddress(id, prov), a.value);
        uint256 other = projectIds[(projectSeed % projectIds.length + 1) % projectIds.length];
        _tryRedirect(ATTACKER, id, a);
        _tryRedirect(providers[(providerSeed % providers.length + 1 + otherSeed % 2) % providers.length], id, a);
        _tryRedirect(ATTACKER, other, a);
        _tryRedirect(prov, other, a);
        vm.prank(prov);
        (uint256 p, uint256 c, uint256 t) =
            market.settle(id, a.payer, a.value, 0, block.timestamp + 60, a.nonce, a.sig);
        ghostSettled += a.value;
        _credited(prov, p, c, t);
        ++ghostSettles;
    }

    function _tryRedirect(address caller, uint256 id, Auth memory a) internal {
        vm.prank(caller);
        try market.settle(id, a.payer, a.value, 0, block.timestamp + 60, a.nonce, a.sig) returns (
            uint256, uint256, uint256
        ) {
            ++ghostRedirects;
        } catch {}
    }

    /// A mempool observer executes a payer's authorization straight on the token (it lands at the pair's
    /// payTo); the provider's `settle` of the same authorization must then fail.
    function frontRun(uint256 payerSeed, uint256 providerSeed, uint256 projectSeed, uint256 value) external {
        (address prov, uint256 id) = _pair(providerSeed, projectSeed);
        value = bound(value, market.projects().inferencePrice(id), 1_000e18);
        address payTo = market.paymentAddress(id, prov);
        (address payer, bytes32 nonce, bytes memory sig) = _authorize(payerSeed, payTo, value);
        uint256 vb = block.timestamp + 60;
        vm.prank(ATTACKER);
        token.transferWithAuthorization(payer, payTo, value, 0, vb, nonce, sig);
        ghostToReceivers += value;
        vm.prank(prov);
        try market.settle(id, payer, value, 0, vb, nonce, sig) returns (uint256, uint256, uint256) {
            ++ghostFrontRunSettles;
        } catch {}
    }

    /// A plain transfer to a pair's payTo.
    function donateToPayTo(uint256 providerSeed, uint256 projectSeed, uint256 amount) external {
        (address prov, uint256 id) = _pair(providerSeed, projectSeed);
        amount = bound(amount, 1, 1_000e18);
        address payTo = market.paymentAddress(id, prov);
        address donor = address(0xD1);
        deal(address(token), donor, token.balanceOf(donor) + amount, true);
        vm.prank(donor);
        assertTrue(token.transfer(payTo, amount));
        ghostToReceivers += amount;
    }

    function collect(uint256 providerSeed, uint256 projectSeed, uint256 callerSeed) external {
        (address prov, uint256 id) = _pair(providerSeed, projectSeed);
        if (market.uncollectedBalance(id, prov) == 0) return;
        vm.prank(callerSeed % 2 == 0 ? ATTACKER : address(uint160(0x4000 + callerSeed % 8)));
        (uint256 amount, uint256 p, uint256 c, uint256 t) = market.collect(id, prov);
        ghostCollected += amount;
        _credited(prov, p, c, t);
    }

    /// An authorization signed with the market itself as `to` (no node offers it), executed on the token.
    function legacyAuthorization(uint256 payerSeed, uint256 value) external {
        value = bound(value, 1, 1_000e18);
        (address payer, bytes32 nonce, bytes memory sig) = _authorize(payerSeed, address(market), value);
        token.transferWithAuthorization(payer, address(market), value, 0, block.timestamp + 60, nonce, sig);
        ghostUnaccountedIn += value;
    }

    /// A plain transfer to the market.
    function donate(uint256 amount) external {
        amount = bound(amount, 1, 1_000e18);
        address donor = address(0xD0);
        deal(address(token), donor, token.balanceOf(donor) + amount, true);
        vm.prank(donor);
        assertTrue(token.transfer(address(market), amount));
        ghostUnaccountedIn += amount;
    }

    function sweep(uint256 callerSeed) external {
        if (market.unaccountedBalance() == 0) return;
        vm.prank(address(uint160(0x4000 + callerSeed % 8)));
        ghostSwept += market.sweepUnaccounted();
    }

    function recordContribution(uint256 contributorSeed, uint256 projectSeed, uint256 amount) external {
        amount = bound(amount, 0, 1e24);
        vm.prank(recorder);
        market.recordContribution(
            projectIds[projectSeed % projectIds.length],
            contributors[contributorSeed % contributors.length],
            amount
        );
    }

    function claim(uint256 seed) external {
        address who = seed % 4 == 3 ? treasury : providers[seed % providers.length];
        if (market.claimable(who) == 0) return;
        vm.prank(who);
        uint256 amount = market.claim();
        ghostPaidOut += amount;
        if (who != treasury) ghostProviderClaimed[who] += amount;
        vm.prank(who);
        try market.claim() returns (uint256) {
            ++ghostDoublePays;
        } catch {}
    }

    function claimContributor(uint256 contributorSeed, uint256 projectSeed) external {
        address who = contributors[contributorSeed % contributors.length];
        uint256 id = projectIds[projectSeed % projectIds.length];
        if (market.pendingContributorRevenue(id, who) == 0) return;
        vm.prank(who);
        ghostPaidOut += market.claimContributorRevenue(id);
        vm.prank(who);
        try market.claimContributorRevenue(id) returns (uint256) {
            ++ghostDoublePays;
        } catch {}
    }

    function setSplit(uint16 p, uint16 c) external {
        p = uint16(bound(p, 0, 10_000));
        c = uint16(bound(c, 0, 10_000 - p));
        vm.prank(admin);
        market.setSplit(p, c, 10_000 - p - c);
    }
}

contract MarketInvariantTest is Test {
    ATNToken internal token;
    Project internal project;
    InferenceMarket internal market;
    MarketHandler internal handler;
    address internal admin = makeAddr("admin");
    address internal treasury = makeAddr("treasury");
    address internal recorder = makeAddr("recorder");

    function setUp() public {
        vm.warp(1_000_000);
        token = new ATNToken(admin, admin, 0);
        project = new Project(admin, token);
        market = new InferenceMarket(admin, token, project, treasury);
        uint256[] memory ids = new uint256[](2);
        ids[0] = _create(1e18);
        ids[1] = _create(3); // tiny price: exercises rounding dust
        handler = new MarketHandler(token, market, recorder, admin, treasury, ids);
        vm.startPrank(admin);
        market.grantRole(market.CONTRIBUTION_RECORDER_ROLE(), recorder);
        vm.stopPrank();
        targetContract(address(handler));
    }

    function _create(uint256 price) internal returns (uint256) {
        IProject.CreateProjectParams memory p = IProject.CreateProjectParams({
            modelSpecHash: keccak256("spec"),
            modelURI: "ipfs://m",
            datasetRoot: keccak256("data"),
            initialModelRoot: keccak256("root"),
            inferencePrice: price,
            split: IProject.RewardSplit({
                solverBps: 7000, coordinatorBps: 1000, proposerBps: 1000, aggregatorBps: 1000
            }),
            windows: IProject.Windows({
                commit: 1, gtReveal: 1, solReveal: 1, voteCommit: 1, voteReveal: 1, publish: 1
            }),
            maxSolvers: 1,
            minVotes: 1,
            maxStaleness: 0
        });
        return project.createProject(p);
    }

    function _outstanding() internal view returns (uint256 total) {
        (uint256 nProjects, uint256 nProviders, uint256 nContributors) = handler.counts();
        for (uint256 i; i < nProviders; ++i) {
            total += market.claimable(handler.providers(i));
        }
        total += market.claimable(treasury);
        for (uint256 j; j < nProjects; ++j) {
            uint256 id = handler.projectIds(j);
            for (uint256 i; i < nContributors; ++i) {
                total += market.pendingContributorRevenue(id, handler.contributors(i));
            }
        }
    }

    /// Σ over every (project, provider) payTo of the ATN waiting there
    function _atReceivers() internal view returns (uint256 total) {
        (uint256 nProjects, uint256 nProviders,) = handler.counts();
        for (uint256 j; j < nProjects; ++j) {
            for (uint256 i; i < nProviders; ++i) {
                total += market.uncollectedBalance(handler.projectIds(j), handler.providers(i));
            }
        }
    }

    /// total settled and collected == Σ provider + Σ contributor + Σ treasury shares
    function invariant_accountedValueEqualsShares() public view {
        assertEq(
            handler.ghostSettled() + handler.ghostCollected(),
            handler.ghostProvider() + handler.ghostContributor() + handler.ghostTreasury()
        );
    }

    /// the market always holds enough for every outstanding claim, and holds exactly
    /// settled + collected + unaccounted inflows − paid out
    function invariant_solvent() public view {
        uint256 bal = token.balanceOf(address(market));
        assertGe(bal, _outstanding());
        assertEq(
            bal,
            handler.ghostSettled() + handler.ghostCollected() + handler.ghostUnaccountedIn()
                - handler.ghostPaidOut()
        );
        assertLe(
            handler.ghostPaidOut(), handler.ghostSettled() + handler.ghostCollected() + handler.ghostSwept()
        );
    }

    /// the accounted total is settled + collected + swept − paid out, covers every claim, and never exceeds the
    /// balance; whatever is above it came in without settle/collect and was not swept yet
    function invariant_accountedCoversClaims() public view {
        uint256 accounted = market.accountedBalance();
        assertEq(
            accounted,
            handler.ghostSettled() + handler.ghostCollected() + handler.ghostSwept() - handler.ghostPaidOut()
        );
        assertGe(accounted, _outstanding());
        assertLe(accounted, token.balanceOf(address(market)));
        assertEq(market.unaccountedBalance(), handler.ghostUnaccountedIn() - handler.ghostSwept());
    }

    /// pairs' payTo addresses hold exactly what was sent to them outside settle and not collected yet
    /// (settle passes its value through untouched)
    function invariant_receiversHoldOnlyUncollected() public view {
        assertEq(_atReceivers(), handler.ghostToReceivers() - handler.ghostCollected());
    }

    /// a provider is credited only for payments to its own payTo, and the attacker never for anything
    function invariant_creditsReachOnlyTheOfferedProvider() public view {
        (, uint256 nProviders,) = handler.counts();
        for (uint256 i; i < nProviders; ++i) {
            address prov = handler.providers(i);
            assertEq(
                market.claimable(prov) + handler.ghostProviderClaimed(prov),
                handler.ghostProviderCredited(prov)
            );
        }
        assertEq(market.claimable(handler.ATTACKER()), 0);
    }

    /// an authorization can never be settled for another project or provider than its payTo names
    function invariant_noRedirect() public view {
        assertEq(handler.ghostRedirects(), 0);
    }

    /// an authorization executed straight on the token can never be settled afterwards
    function invariant_frontRunNeverSettles() public view {
        assertEq(handler.ghostFrontRunSettles(), 0);
    }

    /// a second claim right after a claim never pays
    function invariant_noDoubleClaim() public view {
        assertEq(handler.ghostDoublePays(), 0);
    }
}
