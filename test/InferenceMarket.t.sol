// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ATNToken} from "../contracts/ATNToken.sol";
import {Project} from "../contracts/Project.sol";
import {InferenceMarket} from "../contracts/InferenceMarket.sol";
import {PaymentReceiver} from "../contracts/PaymentReceiver.sol";
import {IATNToken} from "../contracts/interfaces/IATNToken.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";
import {IInferenceMarket} from "../contracts/interfaces/IInferenceMarket.sol";

/// @dev Shared fixture: token, real Project, market; helpers to sign x402 payments (EIP-3009
///      TransferWithAuthorization to the offer's payTo, as the x402 `exact` EVM client signs them; a node selling
///      project P offers payTo = market.paymentAddress(P, node)).
abstract contract MarketFixture is Test {
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    ATNToken internal token;
    Project internal project;
    InferenceMarket internal market;
    address internal admin = makeAddr("admin");
    address internal treasury = makeAddr("treasury");
    address internal recorder = makeAddr("recorder");
    address internal provider = makeAddr("provider");
    address internal owner = makeAddr("projectOwner");
    uint256 internal payerPk = 0xBEEF;
    address internal payer;
    uint256 internal projectId;
    uint256 internal constant PRICE = 1e18;

    function _deployMarket() internal {
        vm.warp(1_000_000);
        payer = vm.addr(payerPk);
        token = new ATNToken(admin, admin, 10_000_000e18);
        project = new Project(admin, token);
        market = new InferenceMarket(admin, token, project, treasury);
        bytes32 role = market.CONTRIBUTION_RECORDER_ROLE();
        vm.startPrank(admin);
        market.grantRole(role, recorder);
        assertTrue(token.transfer(payer, 1_000_000e18));
        vm.stopPrank();
        projectId = _createProject(PRICE);
    }

    function _createProject(uint256 price) internal returns (uint256 id) {
        IProject.CreateProjectParams memory p = IProject.CreateProjectParams({
            modelSpecHash: keccak256("spec"),
            modelURI: "ipfs://model",
            datasetRoot: keccak256("data"),
            initialModelRoot: keccak256("root0"),
            inferencePrice: price,
            split: IProject.RewardSplit({
                solverBps: 5000, coordinatorBps: 3000, proposerBps: 1000, aggregatorBps: 1000
            }),
            windows: IProject.Windows({
                commit: 10, gtReveal: 10, solReveal: 10, voteCommit: 10, voteReveal: 10, publish: 10
            }),
            maxSolvers: 4,
            minVotes: 1,
            maxStaleness: 0
        });
        vm.prank(owner);
        id = project.createProject(p);
    }

    /// @dev What the 402 of `prov` selling project `id` offers as payTo.
    function _payTo(uint256 id, address prov) internal view returns (address) {
        return market.paymentAddress(id, prov);
    }

    function _sign(uint256 pk, address from, address to, uint256 value, uint256 va, uint256 vb, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        return _signTyped(TRANSFER_TYPEHASH, pk, from, to, value, va, vb, nonce);
    }

    function _signTyped(
        bytes32 typehash,
        uint256 pk,
        address from,
        address to,
        uint256 value,
        uint256 va,
        uint256 vb,
        bytes32 nonce
    ) internal view returns (bytes memory) {
        bytes32 structHash = keccak256(abi.encode(typehash, from, to, value, va, vb, nonce));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _settle(address prov, uint256 id, uint256 value, bytes32 nonce)
        internal
        returns (uint256 p, uint256 c, uint256 t)
    {
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sign(payerPk, payer, _payTo(id, prov), value, 0, vb, nonce);
        vm.prank(prov);
        return market.settle(id, payer, value, 0, vb, nonce, sig);
    }
}

contract InferenceMarketTest is MarketFixture {
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");

    function setUp() public {
        _deployMarket();
    }

    // ------------------------------------------------------------------ constructor / admin

    function test_constructor_defaults() public view {
        (uint16 p, uint16 c, uint16 t) = market.split();
        assertEq(p, 6000);
        assertEq(c, 2500);
        assertEq(t, 1500);
        assertEq(market.treasury(), treasury);
        assertEq(address(market.token()), address(token));
        assertEq(address(market.projects()), address(project));
    }

    function test_RevertWhen_constructorZeroAddress() public {
        vm.expectRevert(IInferenceMarket.InferenceMarketZeroAddress.selector);
        new InferenceMarket(admin, token, project, address(0));
    }

    function test_setSplit_updatesAndApplies() public {
        vm.expectEmit(false, false, false, true, address(market));
        emit IInferenceMarket.SplitUpdated(7000, 2000, 1000);
        vm.prank(admin);
        market.setSplit(7000, 2000, 1000);
        (uint256 p,, uint256 t) = _settle(provider, projectId, 10e18, keccak256("s"));
        assertEq(p, 7e18);
        assertEq(t, 3e18); // 1000 bps + 2000 bps of contributors (no shares yet)
    }

    function test_RevertWhen_setSplitNotSumming() public {
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InferenceMarketInvalidSplit.selector, 6000, 2500, 1000)
        );
        vm.prank(admin);
        market.setSplit(6000, 2500, 1000);
    }

    function test_RevertWhen_adminFunctionsByStranger() public {
        bytes memory err = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector, alice, market.DEFAULT_ADMIN_ROLE()
        );
        vm.startPrank(alice);
        vm.expectRevert(err);
        market.setSplit(10_000, 0, 0);
        vm.expectRevert(err);
        market.setTreasury(alice);
        vm.stopPrank();
    }

    function test_setTreasury_redirectsFutureShares() public {
        address t2 = makeAddr("t2");
        vm.expectEmit(false, false, false, true, address(market));
        emit IInferenceMarket.TreasuryUpdated(t2);
        vm.prank(admin);
        market.setTreasury(t2);
        _settle(provider, projectId, 1e18, keccak256("t"));
        assertEq(market.claimable(t2), 0.4e18);
        assertEq(market.claimable(treasury), 0);
        vm.expectRevert(IInferenceMarket.InferenceMarketZeroAddress.selector);
        vm.prank(admin);
        market.setTreasury(address(0));
    }

    // ------------------------------------------------------------------ settle

    function test_settle_noContributorsSendsContributorPartToTreasury() public {
        bytes32 nonce = keccak256("n1");
        vm.expectEmit(true, true, true, true, address(market));
        emit IInferenceMarket.Settled(projectId, provider, payer, nonce, PRICE, 0.6e18, 0, 0.4e18);
        (uint256 p, uint256 c, uint256 t) = _settle(provider, projectId, PRICE, nonce);
        assertEq(p, 0.6e18);
        assertEq(c, 0);
        assertEq(t, 0.4e18);
        assertEq(market.claimable(provider), 0.6e18);
        assertEq(market.claimable(treasury), 0.4e18);
        assertEq(token.balanceOf(address(market)), PRICE);
        assertTrue(token.authorizationState(payer, nonce));
    }

    function test_settle_distributesToContributorsProRata() public {
        vm.startPrank(recorder);
        market.recordContribution(projectId, alice, 1e18);
        market.recordContribution(projectId, bob, 3e18);
        vm.stopPrank();
        (uint256 p, uint256 c, uint256 t) = _settle(provider, projectId, 4e18, keccak256("n2"));
        assertEq(p, 2.4e18);
        assertEq(c, 1e18);
        assertEq(t, 0.6e18);
        assertEq(market.pendingContributorRevenue(projectId, alice), 0.25e18);
        assertEq(market.pendingContributorRevenue(projectId, bob), 0.75e18);
    }

    function test_settle_overpaymentAccepted() public {
        (uint256 p, uint256 c, uint256 t) = _settle(provider, projectId, 3e18, keccak256("n3"));
        assertEq(p + c + t, 3e18);
        assertEq(token.balanceOf(address(market)), 3e18);
    }

    function test_settle_roundingDustToTreasury() public {
        vm.startPrank(recorder);
        market.recordContribution(projectId, alice, 3);
        vm.stopPrank();
        vm.prank(owner);
        project.setInferencePrice(projectId, 1);
        (uint256 p, uint256 c, uint256 t) = _settle(provider, projectId, 7, keccak256("d"));
        // provider floor(7*0.6)=4, contributors floor(7*0.25)=1, treasury 2 (+ accumulator dust)
        assertEq(p, 4);
        assertEq(p + c + t, 7);
        assertLe(market.pendingContributorRevenue(projectId, alice), c);
    }

    function test_RevertWhen_settleUnderpaid() public {
        bytes memory sig = _sign(
            payerPk, payer, _payTo(projectId, provider), PRICE - 1, 0, block.timestamp + 60, keccak256("u")
        );
        vm.expectRevert(
            abi.encodeWithSelector(IInferenceMarket.InferenceMarketUnderpaid.selector, PRICE - 1, PRICE)
        );
        vm.prank(provider);
        market.settle(projectId, payer, PRICE - 1, 0, block.timestamp + 60, keccak256("u"), sig);
    }

    function test_RevertWhen_settleNotForSale() public {
        uint256 free = _createProject(0);
        bytes memory sig =
            _sign(payerPk, payer, _payTo(free, provider), PRICE, 0, block.timestamp + 60, keccak256("f"));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InferenceMarketNotForSale.selector, free));
        vm.prank(provider);
        market.settle(free, payer, PRICE, 0, block.timestamp + 60, keccak256("f"), sig);
    }

    function test_RevertWhen_settleUnknownProject() public {
        bytes memory sig =
            _sign(payerPk, payer, _payTo(999, provider), PRICE, 0, block.timestamp + 60, keccak256("x"));
        vm.expectRevert(abi.encodeWithSelector(IInferenceMarket.InferenceMarketUnknownProject.selector, 999));
        vm.prank(provider);
        market.settle(999, payer, PRICE, 0, block.timestamp + 60, keccak256("x"), sig);
    }

    function test_RevertWhen_settleReplayed() public {
        bytes32 nonce = keccak256("r");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sign(payerPk, payer, _payTo(projectId, provider), PRICE, 0, vb, nonce);
        vm.prank(provider);
        market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationUsed.selector, payer, nonce));
        vm.prank(provider);
        market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);
        assertEq(market.claimable(provider), 0.6e18); // credited once
    }

    function test_RevertWhen_settleExpired() public {
        bytes32 nonce = keccak256("e");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sign(payerPk, payer, _payTo(projectId, provider), PRICE, 0, vb, nonce);
        vm.warp(vb + 1);
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationExpired.selector, vb, vb + 1));
        vm.prank(provider);
        market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);
        assertEq(market.claimable(provider), 0);
    }

    function test_RevertWhen_settleSignatureForOtherValue() public {
        bytes32 nonce = keccak256("w");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sign(payerPk, payer, _payTo(projectId, provider), PRICE, 0, vb, nonce);
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        vm.prank(provider);
        market.settle(projectId, payer, 2 * PRICE, 0, vb, nonce, sig);
    }

    function test_RevertWhen_settleWithReceiveAuthorization() public {
        // settle executes TransferWithAuthorization: a ReceiveWithAuthorization signature does not verify.
        bytes32 nonce = keccak256("recv");
        uint256 vb = block.timestamp + 60;
        bytes memory sig =
            _signTyped(RECEIVE_TYPEHASH, payerPk, payer, _payTo(projectId, provider), PRICE, 0, vb, nonce);
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        vm.prank(provider);
        market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);
    }

    function test_settle_officialClientWindow() public {
        // The x402 v2 `exact` client signs validAfter = 0 and validBefore = now + maxTimeoutSeconds.
        bytes32 nonce = keccak256("official");
        uint256 vb = block.timestamp + 300;
        bytes memory sig = _sign(payerPk, payer, _payTo(projectId, provider), PRICE, 0, vb, nonce);
        uint256 before = token.balanceOf(payer);
        vm.prank(provider);
        market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);
        assertEq(token.balanceOf(payer), before - PRICE);
        assertEq(market.accountedBalance(), PRICE);
        assertEq(market.unaccountedBalance(), 0);
    }

    function test_RevertWhen_settleNotYetValid() public {
        bytes32 nonce = keccak256("early");
        uint256 va = block.timestamp + 10;
        bytes memory sig = _sign(payerPk, payer, _payTo(projectId, provider), PRICE, va, va + 60, nonce);
        vm.expectRevert(
            abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationNotYetValid.selector, va, block.timestamp)
        );
        vm.prank(provider);
        market.settle(projectId, payer, PRICE, va, va + 60, nonce, sig);
    }

    // ------------------------------------------------------------------ payTo binding (M-2)

    /// @dev M-2 regression; fails on dc0035f, where payTo was the market and `settle` credited any caller-chosen
    ///      project whose price the value covered: the holder of an authorization (client, relay, mempool
    ///      observer) front-ran the node into its own 1-wei project and got 85% back.
    function test_M2_settleCannotBeRedirectedToAnotherProject() public {
        address attacker = makeAddr("attacker");
        uint256 attackerPid = _createProject(1);
        vm.startPrank(recorder);
        market.recordContribution(attackerPid, attacker, 1e18); // the attacker owns its project's shares
        market.recordContribution(projectId, alice, 1e18);
        vm.stopPrank();

        bytes32 nonce = keccak256("m2-project");
        uint256 vb = block.timestamp + 60;
        address payTo = _payTo(projectId, provider); // what the node's 402 offered
        bytes memory sig = _sign(payerPk, payer, payTo, PRICE, 0, vb, nonce);

        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        vm.prank(attacker);
        market.settle(attackerPid, payer, PRICE, 0, vb, nonce, sig);
        // Not even the offering node can move the payment to another project.
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        vm.prank(provider);
        market.settle(attackerPid, payer, PRICE, 0, vb, nonce, sig);
        assertFalse(token.authorizationState(payer, nonce));

        vm.prank(provider);
        (uint256 p, uint256 c, uint256 t) = market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);
        assertEq(p, 0.6e18);
        assertEq(c, 0.25e18);
        assertEq(t, 0.15e18);
        assertEq(market.claimable(provider), 0.6e18);
        assertEq(market.pendingContributorRevenue(projectId, alice), 0.25e18);
        assertEq(market.claimable(attacker), 0);
        assertEq(market.pendingContributorRevenue(attackerPid, attacker), 0);
        assertEq(token.balanceOf(address(market)), PRICE);
        assertEq(token.balanceOf(payTo), 0);
    }

    /// @dev M-2 regression (provider half); fails on dc0035f, where whoever submitted `settle` first was credited
    ///      as the provider.
    function test_M2_settleCannotBeRedirectedToAnotherProvider() public {
        address attacker = makeAddr("attacker");
        bytes32 nonce = keccak256("m2-provider");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sign(payerPk, payer, _payTo(projectId, provider), PRICE, 0, vb, nonce);

        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        vm.prank(attacker);
        market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);

        vm.prank(provider);
        market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);
        assertEq(market.claimable(provider), 0.6e18);
        assertEq(market.claimable(attacker), 0);
    }

    /// @dev The authorization submitted straight to the token lands at the offered pair's receiver, the node's
    ///      settle then fails on the used nonce, and anyone's `collect` accounts it to that project and provider.
    function test_M2_directToTokenIsCollectedForTheOfferedPair() public {
        address attacker = makeAddr("attacker");
        uint256 attackerPid = _createProject(1);
        vm.prank(recorder);
        market.recordContribution(projectId, alice, 1e18);
        bytes32 nonce = keccak256("m2-direct");
        uint256 vb = block.timestamp + 60;
        address payTo = _payTo(projectId, provider);
        bytes memory sig = _sign(payerPk, payer, payTo, PRICE, 0, vb, nonce);

        vm.prank(attacker);
        token.transferWithAuthorization(payer, payTo, PRICE, 0, vb, nonce, sig);
        assertEq(token.balanceOf(payTo), PRICE);
        assertEq(market.uncollectedBalance(projectId, provider), PRICE);
        assertEq(market.unaccountedBalance(), 0);
        assertEq(market.accountedBalance(), 0);

        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationUsed.selector, payer, nonce));
        vm.prank(provider);
        market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);

        // Other pairs hold nothing of it.
        vm.expectRevert(
            abi.encodeWithSelector(
                IInferenceMarket.InferenceMarketNothingToCollect.selector, attackerPid, attacker
            )
        );
        market.collect(attackerPid, attacker);
        vm.expectRevert(
            abi.encodeWithSelector(
                IInferenceMarket.InferenceMarketNothingToCollect.selector, projectId, attacker
            )
        );
        market.collect(projectId, attacker);

        vm.expectEmit(true, true, false, true, address(market));
        emit IInferenceMarket.Collected(projectId, provider, PRICE, 0.6e18, 0.25e18, 0.15e18);
        vm.expectEmit(true, true, false, true, address(market));
        emit IInferenceMarket.PaymentReceiverDeployed(projectId, provider, payTo);
        vm.prank(attacker); // permissionless, and it credits the pair, not the caller
        (uint256 amount, uint256 p, uint256 c, uint256 t) = market.collect(projectId, provider);
        assertEq(amount, PRICE);
        assertEq(p + c + t, PRICE);
        assertEq(market.claimable(provider), 0.6e18);
        assertEq(market.pendingContributorRevenue(projectId, alice), 0.25e18);
        assertEq(market.claimable(treasury), 0.15e18);
        assertEq(market.claimable(attacker), 0);
        assertEq(token.balanceOf(payTo), 0);
        assertEq(market.accountedBalance(), PRICE);
        assertEq(token.balanceOf(address(market)), PRICE);

        vm.expectRevert(
            abi.encodeWithSelector(
                IInferenceMarket.InferenceMarketNothingToCollect.selector, projectId, provider
            )
        );
        market.collect(projectId, provider);
    }

    function test_paymentAddress_isTheCreate2ReceiverOfThePair() public {
        address payTo = _payTo(projectId, provider);
        bytes32 initCodeHash =
            keccak256(abi.encodePacked(type(PaymentReceiver).creationCode, abi.encode(address(token))));
        assertEq(
            payTo,
            vm.computeCreate2Address(
                keccak256(abi.encode(projectId, provider)), initCodeHash, address(market)
            )
        );
        assertTrue(payTo != _payTo(projectId, alice));
        assertTrue(payTo != _payTo(projectId + 1, provider));
        assertTrue(payTo != address(market));
        assertEq(payTo.code.length, 0);

        // Deployed by the pair's first settlement, at that address, and only then.
        vm.expectEmit(true, true, false, true, address(market));
        emit IInferenceMarket.PaymentReceiverDeployed(projectId, provider, payTo);
        _settle(provider, projectId, PRICE, keccak256("first"));
        assertGt(payTo.code.length, 0);
        vm.recordLogs();
        _settle(provider, projectId, PRICE, keccak256("second"));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertTrue(logs[i].topics[0] != IInferenceMarket.PaymentReceiverDeployed.selector);
        }
        assertEq(_payTo(projectId, provider), payTo);
        assertEq(market.claimable(provider), 1.2e18);
    }

    function test_RevertWhen_receiverReleasedByOtherThanMarket() public {
        address payTo = _payTo(projectId, provider);
        _settle(provider, projectId, PRICE, keccak256("deploy"));
        vm.prank(payer);
        assertTrue(token.transfer(payTo, 5));
        vm.expectRevert(abi.encodeWithSelector(PaymentReceiver.PaymentReceiverOnlyMarket.selector, alice));
        vm.prank(alice);
        PaymentReceiver(payTo).release(5);
        vm.expectRevert(abi.encodeWithSelector(PaymentReceiver.PaymentReceiverOnlyMarket.selector, provider));
        vm.prank(provider);
        PaymentReceiver(payTo).release(5);
        assertEq(token.balanceOf(payTo), 5);
    }

    function test_collect_beforeAnySettleDeploysTheReceiverOnce() public {
        address payTo = _payTo(projectId, provider);
        vm.prank(payer);
        assertTrue(token.transfer(payTo, 7)); // a plain transfer to the payTo counts as the pair's revenue
        (uint256 amount, uint256 p,, uint256 t) = market.collect(projectId, provider);
        assertEq(amount, 7);
        assertEq(p, 4);
        assertEq(t, 3);
        assertGt(payTo.code.length, 0);
        vm.recordLogs();
        _settle(provider, projectId, PRICE, keccak256("after-collect"));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertTrue(logs[i].topics[0] != IInferenceMarket.PaymentReceiverDeployed.selector);
        }
        assertEq(market.claimable(provider), 4 + 0.6e18);
        assertEq(market.accountedBalance(), token.balanceOf(address(market)));
    }

    function test_settle_movesOnlyItsValueAndLeavesStrayFundsToCollect() public {
        address payTo = _payTo(projectId, provider);
        vm.prank(payer);
        assertTrue(token.transfer(payTo, 3e18));
        _settle(provider, projectId, PRICE, keccak256("exact"));
        assertEq(token.balanceOf(payTo), 3e18);
        assertEq(market.accountedBalance(), PRICE);
        (uint256 amount,,,) = market.collect(projectId, provider);
        assertEq(amount, 3e18);
        assertEq(market.accountedBalance(), 4e18);
        assertEq(market.claimable(provider), 2.4e18);
    }

    function test_RevertWhen_collectForZeroProvider() public {
        vm.expectRevert(IInferenceMarket.InferenceMarketZeroAddress.selector);
        market.collect(projectId, address(0));
    }

    /// @dev The price may drop between the 402 and the settlement: the payment made at the offered price
    ///      still settles (`value >= price`), and only the payer's own signed value moves.
    function test_settle_afterPriceLowered() public {
        bytes32 nonce = keccak256("lowered");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sign(payerPk, payer, _payTo(projectId, provider), PRICE, 0, vb, nonce);
        vm.prank(owner);
        project.setInferencePrice(projectId, PRICE / 2);
        vm.prank(provider);
        (uint256 p,,) = market.settle(projectId, payer, PRICE, 0, vb, nonce, sig);
        assertEq(p, 0.6e18);
    }

    // ------------------------------------------------------------------ sweep

    function test_sweepUnaccounted_creditsTreasury() public {
        _settle(provider, projectId, PRICE, keccak256("acc"));
        bytes32 nonce = keccak256("front2");
        uint256 vb = block.timestamp + 60;
        // An authorization signed with the market itself as `to` (no node offers that) and a plain transfer reach
        // the market outside settle/collect.
        bytes memory sig = _sign(payerPk, payer, address(market), 2 * PRICE, 0, vb, nonce);
        token.transferWithAuthorization(payer, address(market), 2 * PRICE, 0, vb, nonce, sig);
        vm.prank(payer);
        assertTrue(token.transfer(address(market), 5));

        uint256 unaccounted = 2 * PRICE + 5;
        assertEq(market.unaccountedBalance(), unaccounted);
        vm.expectEmit(true, false, false, true, address(market));
        emit IInferenceMarket.UnaccountedSwept(treasury, unaccounted);
        vm.prank(alice); // permissionless
        assertEq(market.sweepUnaccounted(), unaccounted);

        assertEq(market.claimable(treasury), 0.4e18 + unaccounted);
        assertEq(market.claimable(alice), 0);
        assertEq(market.unaccountedBalance(), 0);
        assertEq(market.accountedBalance(), token.balanceOf(address(market)));

        vm.expectRevert(IInferenceMarket.InferenceMarketNothingToSweep.selector);
        market.sweepUnaccounted();

        vm.prank(treasury);
        assertEq(market.claim(), 0.4e18 + unaccounted);
        vm.prank(provider);
        market.claim();
        assertEq(token.balanceOf(address(market)), 0);
        assertEq(market.accountedBalance(), 0);
    }

    function test_RevertWhen_sweepNothing() public {
        vm.expectRevert(IInferenceMarket.InferenceMarketNothingToSweep.selector);
        market.sweepUnaccounted();
        _settle(provider, projectId, PRICE, keccak256("only-accounted"));
        // Funds waiting at a pair's payTo are the pair's, not the treasury's.
        address payTo = _payTo(projectId, provider);
        vm.prank(payer);
        assertTrue(token.transfer(payTo, 1e18));
        vm.expectRevert(IInferenceMarket.InferenceMarketNothingToSweep.selector);
        market.sweepUnaccounted();
    }

    function test_accountedBalance_tracksSettlesAndClaims() public {
        vm.prank(recorder);
        market.recordContribution(projectId, alice, 1);
        _settle(provider, projectId, 4e18, keccak256("t1"));
        assertEq(market.accountedBalance(), 4e18);
        vm.prank(provider);
        market.claim();
        assertEq(market.accountedBalance(), 4e18 - 2.4e18);
        vm.prank(alice);
        market.claimContributorRevenue(projectId);
        assertEq(market.accountedBalance(), 4e18 - 2.4e18 - 1e18);
        assertEq(market.accountedBalance(), token.balanceOf(address(market)));
    }

    function testFuzz_settle_sharesSumToValue(uint256 value, uint256 sharesA, uint256 sharesB) public {
        value = bound(value, PRICE, 100_000e18);
        sharesA = bound(sharesA, 0, 1e30);
        sharesB = bound(sharesB, 0, 1e30);
        vm.startPrank(recorder);
        market.recordContribution(projectId, alice, sharesA);
        market.recordContribution(projectId, bob, sharesB);
        vm.stopPrank();
        (uint256 p, uint256 c, uint256 t) = _settle(provider, projectId, value, keccak256(abi.encode(value)));
        assertEq(p + c + t, value);
        assertEq(p, value * 6000 / 10_000);
        uint256 pendA = market.pendingContributorRevenue(projectId, alice);
        uint256 pendB = market.pendingContributorRevenue(projectId, bob);
        assertLe(pendA + pendB, c);
        if (sharesA + sharesB == 0) assertEq(c, 0);
        assertGe(
            token.balanceOf(address(market)),
            market.claimable(provider) + market.claimable(treasury) + pendA + pendB
        );
        assertEq(market.accountedBalance(), value);
        assertGe(
            market.accountedBalance(), market.claimable(provider) + market.claimable(treasury) + pendA + pendB
        );
    }

    // ------------------------------------------------------------------ contributions / claims

    function test_recordContribution_onlyEarnsFutureRevenue() public {
        vm.prank(recorder);
        market.recordContribution(projectId, alice, 1e18);
        _settle(provider, projectId, 4e18, keccak256("a"));
        vm.expectEmit(true, true, false, true, address(market));
        emit IInferenceMarket.ContributionRecorded(projectId, bob, 1e18, 2e18);
        vm.prank(recorder);
        market.recordContribution(projectId, bob, 1e18);
        assertEq(market.pendingContributorRevenue(projectId, bob), 0);
        assertEq(market.pendingContributorRevenue(projectId, alice), 1e18);
        _settle(provider, projectId, 4e18, keccak256("b"));
        assertEq(market.pendingContributorRevenue(projectId, alice), 1.5e18);
        assertEq(market.pendingContributorRevenue(projectId, bob), 0.5e18);
        assertEq(market.sharesOf(projectId, alice), 1e18);
        assertEq(market.totalShares(projectId), 2e18);
    }

    function test_recordContribution_zeroAmountIsNoop() public {
        vm.recordLogs();
        vm.prank(recorder);
        market.recordContribution(projectId, alice, 0);
        assertEq(vm.getRecordedLogs().length, 0);
        assertEq(market.totalShares(projectId), 0);
    }

    function test_RevertWhen_recordContributionByStranger() public {
        bytes32 role = market.CONTRIBUTION_RECORDER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, role)
        );
        vm.prank(alice);
        market.recordContribution(projectId, alice, 1);
    }

    function test_RevertWhen_recordContributionZeroAddress() public {
        vm.expectRevert(IInferenceMarket.InferenceMarketZeroAddress.selector);
        vm.prank(recorder);
        market.recordContribution(projectId, address(0), 1);
    }

    function test_claim_paysProviderAndTreasuryOnce() public {
        _settle(provider, projectId, PRICE, keccak256("c"));
        vm.expectEmit(true, false, false, true, address(market));
        emit IInferenceMarket.Claimed(provider, 0.6e18);
        vm.prank(provider);
        assertEq(market.claim(), 0.6e18);
        assertEq(token.balanceOf(provider), 0.6e18);
        assertEq(market.claimable(provider), 0);
        vm.expectRevert(IInferenceMarket.InferenceMarketNothingToClaim.selector);
        vm.prank(provider);
        market.claim();
        vm.prank(treasury);
        assertEq(market.claim(), 0.4e18);
        assertEq(token.balanceOf(address(market)), 0);
    }

    function test_claimContributorRevenue_paysOnce() public {
        vm.prank(recorder);
        market.recordContribution(projectId, alice, 5);
        _settle(provider, projectId, 4e18, keccak256("cc"));
        vm.expectEmit(true, true, false, true, address(market));
        emit IInferenceMarket.ContributorRevenueClaimed(projectId, alice, 1e18);
        vm.prank(alice);
        assertEq(market.claimContributorRevenue(projectId), 1e18);
        assertEq(token.balanceOf(alice), 1e18);
        assertEq(market.pendingContributorRevenue(projectId, alice), 0);
        vm.expectRevert(IInferenceMarket.InferenceMarketNothingToClaim.selector);
        vm.prank(alice);
        market.claimContributorRevenue(projectId);
    }

    function test_RevertWhen_claimNothing() public {
        vm.expectRevert(IInferenceMarket.InferenceMarketNothingToClaim.selector);
        vm.prank(alice);
        market.claim();
        vm.expectRevert(IInferenceMarket.InferenceMarketNothingToClaim.selector);
        vm.prank(alice);
        market.claimContributorRevenue(projectId);
    }

    function testFuzz_claimContributorRevenue_neverExceedsDistributed(
        uint256 s1,
        uint256 s2,
        uint256 v1,
        uint256 v2
    ) public {
        s1 = bound(s1, 1, 1e27);
        s2 = bound(s2, 1, 1e27);
        v1 = bound(v1, PRICE, 50_000e18);
        v2 = bound(v2, PRICE, 50_000e18);
        vm.prank(recorder);
        market.recordContribution(projectId, alice, s1);
        (, uint256 c1,) = _settle(provider, projectId, v1, keccak256("f1"));
        vm.prank(recorder);
        market.recordContribution(projectId, bob, s2);
        (, uint256 c2,) = _settle(provider, projectId, v2, keccak256("f2"));
        uint256 paid;
        if (market.pendingContributorRevenue(projectId, alice) > 0) {
            vm.prank(alice);
            paid += market.claimContributorRevenue(projectId);
        }
        if (market.pendingContributorRevenue(projectId, bob) > 0) {
            vm.prank(bob);
            paid += market.claimContributorRevenue(projectId);
        }
        assertLe(paid, c1 + c2);
        // everything left is still covered
        assertGe(token.balanceOf(address(market)), market.claimable(provider) + market.claimable(treasury));
    }
}
