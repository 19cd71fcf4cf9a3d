// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ATNToken} from "../../contracts/ATNToken.sol";
import {Project} from "../../contracts/Project.sol";
import {InferenceMarket} from "../../contracts/InferenceMarket.sol";
import {IProject} from "../../contracts/interfaces/IProject.sol";

/// @dev Random settles, contributions, claims, front-run authorizations (submitted straight to the token),
///      plain transfers and sweeps on InferenceMarket with ghost accounting.
contract MarketHandler is Test {
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    ATNToken public token;
    InferenceMarket public market;
    address public recorder;
    address public admin;
    address public treasury;
    uint256[] public projectIds;
    address[] public providers;
    address[] public contributors;
    uint256[] internal payerPks;

    uint256 public ghostSettled;
    uint256 public ghostProvider;
    uint256 public ghostContributor;
    uint256 public ghostTreasury;
    uint256 public ghostPaidOut;
    uint256 public ghostDoublePays;
    uint256 public ghostSettles;
    /// value that reached the market without `settle` (front-run authorizations, plain transfers)
    uint256 public ghostUnaccountedIn;
    uint256 public ghostSwept;
    /// settles that succeeded with an authorization already executed straight on the token
    uint256 public ghostFrontRunSettles;
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

    function settle(uint256 payerSeed, uint256 providerSeed, uint256 projectSeed, uint256 value) external {
        uint256 pk = payerPks[payerSeed % payerPks.length];
        uint256 id = projectIds[projectSeed % projectIds.length];
        value = bound(value, market.projects().inferencePrice(id), 1_000e18);
        address payer = vm.addr(pk);
        deal(address(token), payer, token.balanceOf(payer) + value, true);
        bytes32 nonce = bytes32(++_nonce);
        bytes memory sig = _sign(pk, payer, value, nonce);
        vm.prank(providers[providerSeed % providers.length]);
        (uint256 p, uint256 c, uint256 t) =
            market.settle(id, payer, value, 0, block.timestamp + 60, nonce, sig);
        ghostSettled += value;
        ghostProvider += p;
        ghostContributor += c;
        ghostTreasury += t;
        ++ghostSettles;
    }

    function _sign(uint256 pk, address payer, uint256 value, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        bytes32 structHash = keccak256(
            abi.encode(TRANSFER_TYPEHASH, payer, address(market), value, 0, block.timestamp + 60, nonce)
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(pk, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
        return abi.encodePacked(r, s, v);
    }

    /// A mempool observer executes a payer's authorization straight on the token, then the provider's
    /// `settle` of the same authorization must fail.
    function frontRun(uint256 payerSeed, uint256 providerSeed, uint256 projectSeed, uint256 value) external {
        uint256 pk = payerPks[payerSeed % payerPks.length];
        uint256 id = projectIds[projectSeed % projectIds.length];
        value = bound(value, market.projects().inferencePrice(id), 1_000e18);
        address payer = vm.addr(pk);
        deal(address(token), payer, token.balanceOf(payer) + value, true);
        bytes32 nonce = bytes32(++_nonce);
        bytes memory sig = _sign(pk, payer, value, nonce);
        uint256 vb = block.timestamp + 60;
        token.transferWithAuthorization(payer, address(market), value, 0, vb, nonce, sig);
        ghostUnaccountedIn += value;
        vm.prank(providers[providerSeed % providers.length]);
        try market.settle(id, payer, value, 0, vb, nonce, sig) returns (uint256, uint256, uint256) {
            ++ghostFrontRunSettles;
        } catch {}
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
        ghostPaidOut += market.claim();
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
            minVotes: 1
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

    /// total settled == Σ provider + Σ contributor + Σ treasury shares
    function invariant_settledEqualsShares() public view {
        assertEq(
            handler.ghostSettled(),
            handler.ghostProvider() + handler.ghostContributor() + handler.ghostTreasury()
        );
    }

    /// the market always holds enough for every outstanding claim, and holds exactly
    /// settled + unaccounted inflows − paid out
    function invariant_solvent() public view {
        uint256 bal = token.balanceOf(address(market));
        assertGe(bal, _outstanding());
        assertEq(bal, handler.ghostSettled() + handler.ghostUnaccountedIn() - handler.ghostPaidOut());
    }

    /// the accounted total is settled + swept − paid out, covers every claim, and never exceeds the balance;
    /// whatever is above it came in without `settle` and was not swept yet
    function invariant_accountedCoversClaims() public view {
        uint256 accounted = market.accountedBalance();
        assertEq(accounted, handler.ghostSettled() + handler.ghostSwept() - handler.ghostPaidOut());
        assertGe(accounted, _outstanding());
        assertLe(accounted, token.balanceOf(address(market)));
        assertEq(market.unaccountedBalance(), handler.ghostUnaccountedIn() - handler.ghostSwept());
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
