// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {console} from "forge-std/console.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ATNToken} from "../contracts/ATNToken.sol";
import {Project} from "../contracts/Project.sol";
import {InferenceMarket} from "../contracts/InferenceMarket.sol";
import {BatchSettlement} from "../contracts/BatchSettlement.sol";
import {Erc3009DepositCollector} from "../contracts/Erc3009DepositCollector.sol";
import {X402Canonical} from "../contracts/libraries/X402Canonical.sol";
import {IATNToken} from "../contracts/interfaces/IATNToken.sol";
import {IProject} from "../contracts/interfaces/IProject.sol";
import {IBatchSettlement} from "../contracts/interfaces/IBatchSettlement.sol";
import {IDepositCollector} from "../contracts/interfaces/IDepositCollector.sol";
import {IErc3009DepositCollector} from "../contracts/interfaces/IErc3009DepositCollector.sol";

/// @dev Shared fixture: the real ATNToken, and BatchSettlement + Erc3009DepositCollector placed at the canonical
///      x402 addresses with `vm.etch` of their deployed runtime code (what dev chains do with `anvil_setCode`).
///      Signatures are built by hand from the EIP-712 type strings and a hand-computed domain separator, the way
///      the official x402 client builds them (viem `hashTypedData`).
abstract contract BatchSettlementFixture is Test {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant CONFIG_TYPEHASH = keccak256(
        "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
    );
    bytes32 internal constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 channelId,uint128 maxClaimableAmount)");
    bytes32 internal constant REFUND_TYPEHASH =
        keccak256("Refund(bytes32 channelId,uint256 nonce,uint128 amount)");
    bytes32 internal constant ENTRY_TYPEHASH =
        keccak256("ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)");
    bytes32 internal constant BATCH_TYPEHASH = keccak256(
        "ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
    );
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    address internal constant SETTLEMENT = X402Canonical.BATCH_SETTLEMENT;
    address internal constant COLLECTOR = X402Canonical.ERC3009_DEPOSIT_COLLECTOR;
    uint40 internal constant DELAY = 3600;

    ATNToken internal token;
    BatchSettlement internal bs;
    Erc3009DepositCollector internal collector;
    address internal admin = makeAddr("admin");
    address internal receiver = makeAddr("receiver");
    uint256 internal payerPk = 0xA11CE;
    uint256 internal payerAuthPk = 0xA0A0;
    uint256 internal receiverAuthPk = 0xB0B;
    address internal payer;
    address internal payerAuth;
    address internal receiverAuth;
    uint256 internal _depositSalt;

    function _deploy() internal {
        vm.warp(1_000_000);
        payer = vm.addr(payerPk);
        payerAuth = vm.addr(payerAuthPk);
        receiverAuth = vm.addr(receiverAuthPk);
        token = new ATNToken(admin, admin, 100_000_000e18);
        _placeCanonical();
        vm.prank(admin);
        assertTrue(token.transfer(payer, 10_000_000e18));
    }

    /// @dev Deploys both contracts anywhere, then copies their runtime code to the canonical addresses.
    function _placeCanonical() internal {
        BatchSettlement impl = new BatchSettlement();
        Erc3009DepositCollector collectorImpl = new Erc3009DepositCollector(SETTLEMENT);
        vm.etch(SETTLEMENT, address(impl).code);
        vm.etch(COLLECTOR, address(collectorImpl).code);
        bs = BatchSettlement(SETTLEMENT);
        collector = Erc3009DepositCollector(COLLECTOR);
    }

    function _config(bytes32 salt) internal view returns (IBatchSettlement.ChannelConfig memory) {
        return IBatchSettlement.ChannelConfig({
            payer: payer,
            payerAuthorizer: payerAuth,
            receiver: receiver,
            receiverAuthorizer: receiverAuth,
            token: address(token),
            withdrawDelay: DELAY,
            salt: salt
        });
    }

    // ------------------------------------------------------------------ EIP-712 by hand

    function _domainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("x402 Batch Settlement"), keccak256("1"), block.chainid, SETTLEMENT
            )
        );
    }

    function _typed(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    function _channelId(IBatchSettlement.ChannelConfig memory c) internal view returns (bytes32) {
        return _typed(
            keccak256(
                abi.encode(
                    CONFIG_TYPEHASH,
                    c.payer,
                    c.payerAuthorizer,
                    c.receiver,
                    c.receiverAuthorizer,
                    c.token,
                    c.withdrawDelay,
                    c.salt
                )
            )
        );
    }

    function _sign(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _voucherSig(uint256 pk, bytes32 id, uint128 max) internal view returns (bytes memory) {
        return _sign(pk, _typed(keccak256(abi.encode(VOUCHER_TYPEHASH, id, max))));
    }

    function _refundSig(uint256 pk, bytes32 id, uint256 nonce, uint128 amount)
        internal
        view
        returns (bytes memory)
    {
        return _sign(pk, _typed(keccak256(abi.encode(REFUND_TYPEHASH, id, nonce, amount))));
    }

    function _batchDigest(IBatchSettlement.VoucherClaim[] memory rows) internal view returns (bytes32) {
        bytes32[] memory entries = new bytes32[](rows.length);
        for (uint256 i; i < rows.length; ++i) {
            entries[i] = keccak256(
                abi.encode(
                    ENTRY_TYPEHASH,
                    _channelId(rows[i].voucher.channel),
                    rows[i].voucher.maxClaimableAmount,
                    rows[i].totalClaimed
                )
            );
        }
        return _typed(keccak256(abi.encode(BATCH_TYPEHASH, keccak256(abi.encodePacked(entries)))));
    }

    function _batchSig(uint256 pk, IBatchSettlement.VoucherClaim[] memory rows)
        internal
        view
        returns (bytes memory)
    {
        return _sign(pk, _batchDigest(rows));
    }

    /// @dev The collector data the x402 client sends: its ERC-3009 `ReceiveWithAuthorization` to the canonical
    ///      collector, nonce `keccak256(abi.encode(channelId, salt))`, under ATN's EIP-712 domain.
    function _collectorData(uint256 pk, uint256 amount, bytes32 id, uint256 salt)
        internal
        view
        returns (bytes memory)
    {
        uint256 validBefore = block.timestamp + 300;
        bytes32 nonce = keccak256(abi.encode(id, salt));
        bytes32 structHash =
            keccak256(abi.encode(RECEIVE_TYPEHASH, vm.addr(pk), COLLECTOR, amount, 0, validBefore, nonce));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        return abi.encode(uint256(0), validBefore, salt, _sign(pk, digest));
    }

    function _deposit(IBatchSettlement.ChannelConfig memory c, uint256 pk, uint128 amount)
        internal
        returns (bytes32 id)
    {
        id = _channelId(c);
        bytes memory data = _collectorData(pk, amount, id, ++_depositSalt);
        bs.deposit(c, amount, COLLECTOR, data);
    }

    function _row(IBatchSettlement.ChannelConfig memory c, uint256 pk, uint128 max, uint128 total)
        internal
        view
        returns (IBatchSettlement.VoucherClaim memory)
    {
        return IBatchSettlement.VoucherClaim({
            voucher: IBatchSettlement.Voucher({channel: c, maxClaimableAmount: max}),
            signature: _voucherSig(pk, _channelId(c), max),
            totalClaimed: total
        });
    }

    function _one(IBatchSettlement.VoucherClaim memory row)
        internal
        pure
        returns (IBatchSettlement.VoucherClaim[] memory rows)
    {
        rows = new IBatchSettlement.VoucherClaim[](1);
        rows[0] = row;
    }

    function _balance(bytes32 id) internal view returns (uint128 balance) {
        (balance,) = bs.channels(id);
    }

    function _claimed(bytes32 id) internal view returns (uint128 totalClaimed) {
        (, totalClaimed) = bs.channels(id);
    }
}

/// @dev A smart-contract wallet (ERC-1271) owned by one key: the payer of a channel without payer authorizer.
contract OwnedWallet is IERC1271 {
    address internal immutable _owner;

    constructor(address owner_) {
        _owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return
            err == ECDSA.RecoverError.NoError && signer == _owner ? this.isValidSignature.selector : bytes4(0);
    }
}

/// @dev A collector that delivers less than it was asked for (a fee-on-transfer token would look the same).
contract ShortCollector is IDepositCollector {
    function collect(address, address token, uint256 amount, bytes32, bytes calldata) external {
        require(IERC20(token).transfer(msg.sender, amount - 1), "transfer");
    }
}

contract BatchSettlementTest is BatchSettlementFixture {
    address internal relayer = makeAddr("relayer");
    address internal stranger = makeAddr("stranger");

    function setUp() public {
        _deploy();
    }

    // ------------------------------------------------------------------ placement at the canonical address

    function test_placement_canonicalDomainAndChannelId() public view {
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            bs.eip712Domain();
        assertEq(name, "x402 Batch Settlement");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifyingContract, SETTLEMENT, "the domain names the canonical address, not the deployment");
        IBatchSettlement.ChannelConfig memory c = _config(bytes32(uint256(7)));
        assertEq(bs.getChannelId(c), _channelId(c));
        assertEq(bs.CHANNEL_CONFIG_TYPEHASH(), CONFIG_TYPEHASH);
        assertEq(bs.VOUCHER_TYPEHASH(), VOUCHER_TYPEHASH);
        assertEq(bs.REFUND_TYPEHASH(), REFUND_TYPEHASH);
        assertEq(bs.CLAIM_ENTRY_TYPEHASH(), ENTRY_TYPEHASH);
        assertEq(bs.CLAIM_BATCH_TYPEHASH(), BATCH_TYPEHASH);
        assertEq(bs.MIN_WITHDRAW_DELAY(), 900);
        assertEq(bs.MAX_WITHDRAW_DELAY(), 30 days);
        assertEq(collector.settlement(), SETTLEMENT, "the collector's immutable survives the copy");
    }

    function test_placement_channelIdFollowsTheChainId() public {
        IBatchSettlement.ChannelConfig memory c = _config(bytes32(uint256(7)));
        bytes32 before = bs.getChannelId(c);
        vm.chainId(421614);
        assertEq(bs.getChannelId(c), _channelId(c));
        assertTrue(bs.getChannelId(c) != before);
    }

    /// @dev Nothing in either constructor touches storage: the runtime code alone is the whole contract.
    function test_constructorsWriteNoStorage() public {
        vm.record();
        BatchSettlement fresh = new BatchSettlement();
        (, bytes32[] memory writes) = vm.accesses(address(fresh));
        assertEq(writes.length, 0);
        vm.record();
        Erc3009DepositCollector freshCollector = new Erc3009DepositCollector(SETTLEMENT);
        (, writes) = vm.accesses(address(freshCollector));
        assertEq(writes.length, 0);
    }

    /// @dev Vectors produced by the official x402 TypeScript client (npm x402/evm 2.27.0 with viem 2.57):
    ///      `computeChannelId(config, "eip155:31337")`, `signVoucher(payer, channelId, "1000", network)`, the
    ///      facilitator's claim-batch and refund signatures (`signTypedData` with its `claimBatchTypes` /
    ///      `refundTypes` under `getBatchSettlementEip712Domain(31337)`), and the EIP-3009 deposit built like
    ///      `createBatchSettlementEIP3009DepositPayload` (`buildErc3009DepositNonce(channelId, 0x1234567890)`,
    ///      `buildErc3009CollectorData(0, 2000000, salt, signature)`; ATN domain name "Autonet", version "1").
    ///      Keys: payer = vm.addr(0xA11CE) (also payerAuthorizer, the client's default), receiverAuthorizer =
    ///      vm.addr(0xB0B). The token sits at 0x…0a7a01 so that its address is part of the vectors.
    function test_officialClientVectors() public {
        vm.chainId(31337);
        address tokenAt = 0x00000000000000000000000000000000000a7a01;
        address payTo = 0x000000000000000000000000000000000000FEE1;
        deployCodeTo("ATNToken.sol:ATNToken", abi.encode(admin, payer, 1_000_000e18), tokenAt);
        IBatchSettlement.ChannelConfig memory c = IBatchSettlement.ChannelConfig({
            payer: payer,
            payerAuthorizer: payer,
            receiver: payTo,
            receiverAuthorizer: receiverAuth,
            token: tokenAt,
            withdrawDelay: 900,
            salt: bytes32(uint256(0x5a17))
        });
        assertEq(payer, 0xe05fcC23807536bEe418f142D19fa0d21BB0cfF7);
        assertEq(receiverAuth, 0x0376AAc07Ad725E01357B1725B5ceC61aE10473c);
        bytes32 id = 0x3e3c72c911dfe75c84b76038a6b8a1fd2b806bf4a31c41627def049898271523;
        assertEq(bs.getChannelId(c), id, "computeChannelId");
        assertEq(_channelId(c), id);
        assertEq(
            bs.getVoucherDigest(id, 1000), 0x35e8d26a9817777c9e38f147a770ec7d3a8b83cb99a3fbad8328b74f569023b7
        );
        assertEq(
            bs.getRefundDigest(id, 0, 100), 0x5fee941d208e8f00ccb0edbd536c6d45a18a4f0896ffe9eb1e3b667fc2b5d662
        );

        bytes memory collectorData =
            hex"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001e8480000000000000000000000000000000000000000000000000000000123456789000000000000000000000000000000000000000000000000000000000000000800000000000000000000000000000000000000000000000000000000000000041c3a8e49bc7433b8959a1c8571d87a342e59fb2f34fe083f05a1c1987acda01ab63f9a788a9ce78b6955a4310f50b4bad31f1dc66440fabb1f2396220824e77b71c00000000000000000000000000000000000000000000000000000000000000";
        vm.prank(relayer);
        bs.deposit(c, 5000, COLLECTOR, collectorData);
        assertEq(_balance(id), 5000);
        assertEq(IERC20(tokenAt).balanceOf(SETTLEMENT), 5000);

        IBatchSettlement.VoucherClaim[] memory rows = new IBatchSettlement.VoucherClaim[](1);
        rows[0] = IBatchSettlement.VoucherClaim({
            voucher: IBatchSettlement.Voucher({channel: c, maxClaimableAmount: 1000}),
            signature: hex"87737bc0c5411cc41428eb4422452e83deb04f03691bf6597e78040c494e797975e89fd7cea09be837d72800a4b5ceab2b77862a21756d1d3ba7e6aeaaa596981b",
            totalClaimed: 700
        });
        assertEq(
            bs.getClaimBatchDigest(rows), 0x482f01dbaa8fa617c988ae18897004247b03cd35c9e8eafb55e5b27b4660e495
        );
        vm.prank(relayer);
        bs.claimWithSignature(
            rows,
            hex"3e00114cf88c215aaeb2907918f08aefd786f244988d96cafe80de0791b7ffc22fc2117ba62eff40b6c2e9d00146edc2460c4b1265238f46cf2c09d258b9af551b"
        );
        assertEq(_claimed(id), 700);

        vm.prank(relayer);
        bs.refundWithSignature(
            c,
            100,
            0,
            hex"c620707ed36d39f92b83459f4c8fe53ad2127cec5effe18ba2e66b5a85443703660fd29568a6e34bf8ba55a909ead2bc02385c850ace7131f4ee02a544ff209e1c"
        );
        assertEq(_balance(id), 4900);
        assertEq(bs.refundNonce(id), 1);
        bs.settle(payTo, tokenAt);
        assertEq(IERC20(tokenAt).balanceOf(payTo), 700);
        assertEq(IERC20(tokenAt).balanceOf(SETTLEMENT), 4200);
    }

    // ------------------------------------------------------------------ deposit

    function test_deposit_throughCollector() public {
        IBatchSettlement.ChannelConfig memory c = _config("d");
        bytes32 id = _channelId(c);
        bytes memory data = _collectorData(payerPk, 100e18, id, 1);
        vm.expectEmit(true, false, false, true, SETTLEMENT);
        emit IBatchSettlement.ChannelCreated(id, c);
        vm.expectEmit(true, true, false, true, SETTLEMENT);
        emit IBatchSettlement.Deposited(id, relayer, 100e18, 100e18);
        vm.prank(relayer); // anyone may submit the payer's signed deposit
        bs.deposit(c, 100e18, COLLECTOR, data);
        assertEq(_balance(id), 100e18);
        assertEq(token.balanceOf(SETTLEMENT), 100e18);
        assertEq(token.balanceOf(COLLECTOR), 0);
        assertEq(token.balanceOf(payer), 10_000_000e18 - 100e18);
        assertTrue(token.authorizationState(payer, keccak256(abi.encode(id, uint256(1)))));

        // A second deposit tops up without re-creating the channel.
        data = _collectorData(payerPk, 5e18, id, 2);
        vm.recordLogs();
        bs.deposit(c, 5e18, COLLECTOR, data);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            assertTrue(logs[i].topics[0] != IBatchSettlement.ChannelCreated.selector);
        }
        assertEq(_balance(id), 105e18);
    }

    function test_RevertWhen_depositReplaysItsAuthorization() public {
        IBatchSettlement.ChannelConfig memory c = _config("d");
        bytes32 id = _channelId(c);
        bytes memory data = _collectorData(payerPk, 1e18, id, 1);
        bs.deposit(c, 1e18, COLLECTOR, data);
        vm.expectRevert(
            abi.encodeWithSelector(
                IATNToken.ATNTokenAuthorizationUsed.selector, payer, keccak256(abi.encode(id, uint256(1)))
            )
        );
        bs.deposit(c, 1e18, COLLECTOR, data);
        assertEq(_balance(id), 1e18);
    }

    /// @dev A stranger who sees the deposit in the mempool cannot execute it outside the settlement: the collector
    ///      serves only the settlement, and the token only lets the collector (the payee) execute it.
    function test_RevertWhen_collectFrontRunByStranger() public {
        IBatchSettlement.ChannelConfig memory c = _config("d");
        bytes32 id = _channelId(c);
        bytes memory data = _collectorData(payerPk, 1e18, id, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IErc3009DepositCollector.Erc3009DepositCollectorOnlySettlement.selector, stranger
            )
        );
        vm.prank(stranger);
        collector.collect(payer, address(token), 1e18, id, data);

        (uint256 va, uint256 vb, uint256 salt, bytes memory sig) =
            abi.decode(data, (uint256, uint256, uint256, bytes));
        vm.expectRevert(
            abi.encodeWithSelector(IATNToken.ATNTokenCallerNotPayee.selector, stranger, COLLECTOR)
        );
        vm.prank(stranger);
        token.receiveWithAuthorization(payer, COLLECTOR, 1e18, va, vb, keccak256(abi.encode(id, salt)), sig);

        bs.deposit(c, 1e18, COLLECTOR, data); // the authorization is intact
        assertEq(_balance(id), 1e18);
    }

    /// @dev The deposit nonce hashes the channel id: an authorization signed for one channel cannot fund another
    ///      (e.g. one whose receiver is the front-runner), nor the same channel with another amount.
    function test_RevertWhen_depositAuthorizationUsedForAnotherChannel() public {
        IBatchSettlement.ChannelConfig memory c = _config("d");
        bytes32 id = _channelId(c);
        bytes memory data = _collectorData(payerPk, 1e18, id, 1);

        IBatchSettlement.ChannelConfig memory theft = _config("d");
        theft.receiver = stranger;
        theft.receiverAuthorizer = stranger;
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        vm.prank(stranger);
        bs.deposit(theft, 1e18, COLLECTOR, data);

        IBatchSettlement.ChannelConfig memory otherSalt = _config("other");
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        bs.deposit(otherSalt, 1e18, COLLECTOR, data);

        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        bs.deposit(c, 2e18, COLLECTOR, data);

        bs.deposit(c, 1e18, COLLECTOR, data);
        assertEq(_balance(id), 1e18);
        assertEq(_balance(_channelId(theft)), 0);
    }

    function test_RevertWhen_depositConfigInvalid() public {
        bytes memory data = _collectorData(payerPk, 1e18, bytes32(0), 1);
        IBatchSettlement.ChannelConfig memory c = _config("d");
        c.payer = address(0);
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAddress.selector);
        bs.deposit(c, 1e18, COLLECTOR, data);
        c = _config("d");
        c.receiver = address(0);
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAddress.selector);
        bs.deposit(c, 1e18, COLLECTOR, data);
        c = _config("d");
        c.receiverAuthorizer = address(0);
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAddress.selector);
        bs.deposit(c, 1e18, COLLECTOR, data);
        c = _config("d");
        c.token = address(0);
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAddress.selector);
        bs.deposit(c, 1e18, COLLECTOR, data);
        c = _config("d");
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAddress.selector);
        bs.deposit(c, 1e18, address(0), data);
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAmount.selector);
        bs.deposit(c, 0, COLLECTOR, data);
        c.withdrawDelay = 899;
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidWithdrawDelay.selector, 899)
        );
        bs.deposit(c, 1e18, COLLECTOR, data);
        c.withdrawDelay = 30 days + 1;
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidWithdrawDelay.selector, 30 days + 1)
        );
        bs.deposit(c, 1e18, COLLECTOR, data);
        // payerAuthorizer may be zero (the payer then signs vouchers itself), and both delay bounds are allowed.
        c.payerAuthorizer = address(0);
        c.withdrawDelay = 900;
        _deposit(c, payerPk, 1);
        c.withdrawDelay = 30 days;
        _deposit(c, payerPk, 1);
    }

    function test_RevertWhen_collectorDeliversLess() public {
        ShortCollector short = new ShortCollector();
        vm.prank(admin);
        assertTrue(token.transfer(address(short), 10e18));
        IBatchSettlement.ChannelConfig memory c = _config("d");
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementDepositMismatch.selector, 1e18, 1e18 - 1)
        );
        bs.deposit(c, 1e18, address(short), "");
    }

    // ------------------------------------------------------------------ claims and settle

    function test_claim_thenSettleMovesExactlyTheClaimedAmount() public {
        IBatchSettlement.ChannelConfig memory c = _config("c");
        bytes32 id = _deposit(c, payerPk, 100e18);
        vm.expectEmit(true, true, false, true, SETTLEMENT);
        emit IBatchSettlement.Claimed(id, receiverAuth, 30e18, 30e18);
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 40e18, 30e18)));
        assertEq(_claimed(id), 30e18);
        assertEq(_balance(id), 100e18, "claimed value stays in the channel balance until settled");
        (uint128 rc, uint128 rs) = bs.receivers(receiver, address(token));
        assertEq(rc, 30e18);
        assertEq(rs, 0);

        // The receiver itself may claim too; a later voucher raises the total by the difference.
        vm.prank(receiver);
        bs.claim(_one(_row(c, payerAuthPk, 45e18, 45e18)));
        assertEq(_claimed(id), 45e18);

        vm.expectEmit(true, true, true, true, SETTLEMENT);
        emit IBatchSettlement.Settled(receiver, address(token), stranger, 45e18);
        vm.prank(stranger); // permissionless: it only ever pays the receiver
        bs.settle(receiver, address(token));
        assertEq(token.balanceOf(receiver), 45e18);
        assertEq(token.balanceOf(SETTLEMENT), 55e18);
        (rc, rs) = bs.receivers(receiver, address(token));
        assertEq(rc, 45e18);
        assertEq(rs, 45e18);

        // Nothing more to settle: no transfer, no event, no revert.
        vm.recordLogs();
        bs.settle(receiver, address(token));
        assertEq(vm.getRecordedLogs().length, 0);
        assertEq(token.balanceOf(receiver), 45e18);
    }

    function test_claim_replayOfAnAppliedClaimIsANoop() public {
        IBatchSettlement.ChannelConfig memory c = _config("c");
        bytes32 id = _deposit(c, payerPk, 100e18);
        IBatchSettlement.VoucherClaim[] memory rows = _one(_row(c, payerAuthPk, 40e18, 40e18));
        bytes memory sig = _batchSig(receiverAuthPk, rows);
        vm.prank(relayer);
        bs.claimWithSignature(rows, sig);
        bs.settle(receiver, address(token));
        uint256 settlementBalance = token.balanceOf(SETTLEMENT);

        vm.recordLogs();
        vm.prank(relayer);
        bs.claimWithSignature(rows, sig); // the same signed batch again
        vm.prank(receiverAuth);
        bs.claim(rows);
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 20e18, 20e18))); // an older voucher
        bs.settle(receiver, address(token));
        assertEq(vm.getRecordedLogs().length, 0);
        assertEq(_claimed(id), 40e18);
        assertEq(_balance(id), 100e18);
        assertEq(token.balanceOf(receiver), 40e18);
        assertEq(token.balanceOf(SETTLEMENT), settlementBalance);
        (uint128 rc, uint128 rs) = bs.receivers(receiver, address(token));
        assertEq(rc, 40e18);
        assertEq(rs, 40e18);
    }

    function test_RevertWhen_claimAboveMaxClaimable() public {
        IBatchSettlement.ChannelConfig memory c = _config("c");
        bytes32 id = _deposit(c, payerPk, 100e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.BatchSettlementClaimExceedsMax.selector, id, 10e18 + 1, 10e18
            )
        );
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 10e18, 10e18 + 1)));
    }

    function test_RevertWhen_claimAboveBalance() public {
        IBatchSettlement.ChannelConfig memory c = _config("c");
        bytes32 id = _deposit(c, payerPk, 100e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.BatchSettlementClaimExceedsBalance.selector, id, 101e18, 100e18
            )
        );
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 200e18, 101e18)));
        // Nor on a channel nobody funded.
        IBatchSettlement.ChannelConfig memory empty = _config("empty");
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.BatchSettlementClaimExceedsBalance.selector, _channelId(empty), 1, 0
            )
        );
        vm.prank(receiverAuth);
        bs.claim(_one(_row(empty, payerAuthPk, 1, 1)));
    }

    function test_RevertWhen_voucherSignedBySomeoneElse() public {
        IBatchSettlement.ChannelConfig memory c = _config("c");
        bytes32 id = _deposit(c, payerPk, 100e18);
        // The payer's own key does not count when the channel names a payer authorizer.
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidVoucherSignature.selector, id)
        );
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerPk, 10e18, 10e18)));
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidVoucherSignature.selector, id)
        );
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, receiverAuthPk, 10e18, 10e18)));
        // A voucher of another channel of the same parties.
        IBatchSettlement.VoucherClaim memory row = _row(c, payerAuthPk, 10e18, 10e18);
        row.signature = _voucherSig(payerAuthPk, _channelId(_config("other")), 10e18);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidVoucherSignature.selector, id)
        );
        vm.prank(receiverAuth);
        bs.claim(_one(row));
        // A voucher for a smaller maximum, replayed with a larger one.
        row = _row(c, payerAuthPk, 10e18, 10e18);
        row.voucher.maxClaimableAmount = 50e18;
        row.totalClaimed = 50e18;
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidVoucherSignature.selector, id)
        );
        vm.prank(receiverAuth);
        bs.claim(_one(row));
        assertEq(_claimed(id), 0);
    }

    function test_claim_payerSignsWhenNoPayerAuthorizer() public {
        IBatchSettlement.ChannelConfig memory c = _config("c");
        c.payerAuthorizer = address(0);
        bytes32 id = _deposit(c, payerPk, 10e18);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidVoucherSignature.selector, id)
        );
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 1e18, 1e18)));
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerPk, 1e18, 1e18)));
        assertEq(_claimed(id), 1e18);
    }

    /// @dev A smart-wallet payer: its ERC-1271 check covers both the EIP-3009 deposit and the vouchers.
    function test_claim_erc1271PayerWallet() public {
        uint256 ownerPk = 0x0A7E;
        OwnedWallet wallet = new OwnedWallet(vm.addr(ownerPk));
        vm.prank(admin);
        assertTrue(token.transfer(address(wallet), 10e18));
        IBatchSettlement.ChannelConfig memory c = _config("wallet");
        c.payer = address(wallet);
        c.payerAuthorizer = address(0);
        bytes32 id = _channelId(c);
        bytes32 nonce = keccak256(abi.encode(id, uint256(1)));
        uint256 vb = block.timestamp + 300;
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01",
                token.DOMAIN_SEPARATOR(),
                keccak256(abi.encode(RECEIVE_TYPEHASH, address(wallet), COLLECTOR, 10e18, 0, vb, nonce))
            )
        );
        bs.deposit(c, 10e18, COLLECTOR, abi.encode(uint256(0), vb, uint256(1), _sign(ownerPk, digest)));
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, ownerPk, 3e18, 3e18)));
        assertEq(_claimed(id), 3e18);
    }

    function test_RevertWhen_claimByStranger() public {
        IBatchSettlement.ChannelConfig memory c = _config("c");
        bytes32 id = _deposit(c, payerPk, 10e18);
        IBatchSettlement.VoucherClaim[] memory rows = _one(_row(c, payerAuthPk, 1e18, 1e18));
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementNotReceiver.selector, id, payer)
        );
        vm.prank(payer);
        bs.claim(rows);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementNotReceiver.selector, id, stranger)
        );
        vm.prank(stranger);
        bs.claim(rows);
    }

    function test_RevertWhen_claimEmptyBatch() public {
        IBatchSettlement.VoucherClaim[] memory rows = new IBatchSettlement.VoucherClaim[](0);
        vm.expectRevert(IBatchSettlement.BatchSettlementEmptyBatch.selector);
        vm.prank(receiverAuth);
        bs.claim(rows);
        vm.expectRevert(IBatchSettlement.BatchSettlementEmptyBatch.selector);
        bs.claimWithSignature(rows, "");
    }

    function test_claimWithSignature_byRelayer() public {
        IBatchSettlement.ChannelConfig memory a = _config("a");
        IBatchSettlement.ChannelConfig memory b = _config("b");
        bytes32 idA = _deposit(a, payerPk, 10e18);
        bytes32 idB = _deposit(b, payerPk, 10e18);
        IBatchSettlement.VoucherClaim[] memory rows = new IBatchSettlement.VoucherClaim[](2);
        rows[0] = _row(a, payerAuthPk, 5e18, 4e18);
        rows[1] = _row(b, payerAuthPk, 7e18, 7e18);
        assertEq(bs.getClaimBatchDigest(rows), _batchDigest(rows));
        bytes memory sig = _batchSig(receiverAuthPk, rows);
        vm.expectEmit(true, true, false, true, SETTLEMENT);
        emit IBatchSettlement.Claimed(idA, relayer, 4e18, 4e18);
        vm.expectEmit(true, true, false, true, SETTLEMENT);
        emit IBatchSettlement.Claimed(idB, relayer, 7e18, 7e18);
        vm.prank(relayer);
        bs.claimWithSignature(rows, sig);
        (uint128 rc,) = bs.receivers(receiver, address(token));
        assertEq(rc, 11e18);
    }

    function test_RevertWhen_claimWithSignatureWrongSigner() public {
        IBatchSettlement.ChannelConfig memory c = _config("c");
        _deposit(c, payerPk, 10e18);
        IBatchSettlement.VoucherClaim[] memory rows = _one(_row(c, payerAuthPk, 5e18, 5e18));
        vm.expectRevert(IBatchSettlement.BatchSettlementInvalidAuthorizerSignature.selector);
        vm.prank(relayer);
        bs.claimWithSignature(rows, _batchSig(payerAuthPk, rows));
        // A signature of a different batch (another total) does not carry over.
        IBatchSettlement.VoucherClaim[] memory other = _one(_row(c, payerAuthPk, 5e18, 4e18));
        vm.expectRevert(IBatchSettlement.BatchSettlementInvalidAuthorizerSignature.selector);
        vm.prank(relayer);
        bs.claimWithSignature(rows, _batchSig(receiverAuthPk, other));
    }

    function test_RevertWhen_claimWithSignatureMixesAuthorizers() public {
        IBatchSettlement.ChannelConfig memory a = _config("a");
        IBatchSettlement.ChannelConfig memory b = _config("b");
        b.receiverAuthorizer = stranger;
        _deposit(a, payerPk, 10e18);
        _deposit(b, payerPk, 10e18);
        IBatchSettlement.VoucherClaim[] memory rows = new IBatchSettlement.VoucherClaim[](2);
        rows[0] = _row(a, payerAuthPk, 5e18, 5e18);
        rows[1] = _row(b, payerAuthPk, 5e18, 5e18);
        bytes memory sig = _batchSig(receiverAuthPk, rows);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementAuthorizerMismatch.selector, 1)
        );
        vm.prank(relayer);
        bs.claimWithSignature(rows, sig);
    }

    /// @dev What a receiver authorizer sends: its claims and the payout in one transaction.
    function test_multicall_claimAndSettleInOneTransaction() public {
        IBatchSettlement.ChannelConfig memory c = _config("m");
        bytes32 id = _deposit(c, payerPk, 10e18);
        bytes[] memory calls = new bytes[](2);
        calls[0] = abi.encodeCall(IBatchSettlement.claim, (_one(_row(c, payerAuthPk, 6e18, 6e18))));
        calls[1] = abi.encodeCall(IBatchSettlement.settle, (receiver, address(token)));
        vm.expectEmit(true, true, false, true, SETTLEMENT);
        emit IBatchSettlement.Claimed(id, receiverAuth, 6e18, 6e18);
        vm.expectEmit(true, true, true, true, SETTLEMENT);
        emit IBatchSettlement.Settled(receiver, address(token), receiverAuth, 6e18);
        vm.prank(receiverAuth);
        bs.multicall(calls);
        assertEq(token.balanceOf(receiver), 6e18);
        assertEq(token.balanceOf(SETTLEMENT), 4e18);

        // Inside multicall the caller is still the caller: a stranger's batched claim fails.
        calls[0] = abi.encodeCall(IBatchSettlement.claim, (_one(_row(c, payerAuthPk, 8e18, 8e18))));
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementNotReceiver.selector, id, stranger)
        );
        vm.prank(stranger);
        bs.multicall(calls);
    }

    // ------------------------------------------------------------------ withdrawals

    function test_withdraw_timedClaimWinsTheRaceFinalizeCapped() public {
        IBatchSettlement.ChannelConfig memory c = _config("w");
        bytes32 id = _deposit(c, payerPk, 100e18);
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 100e18, 20e18)));

        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.BatchSettlementInsufficientAvailable.selector, id, 81e18, 80e18
            )
        );
        vm.prank(payer);
        bs.initiateWithdraw(c, 81e18);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementNotPayer.selector, id, receiverAuth)
        );
        vm.prank(receiverAuth);
        bs.initiateWithdraw(c, 80e18);
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAmount.selector);
        vm.prank(payer);
        bs.initiateWithdraw(c, 0);

        uint40 finalizeAfter = uint40(block.timestamp) + DELAY;
        vm.expectEmit(true, false, false, true, SETTLEMENT);
        emit IBatchSettlement.WithdrawInitiated(id, 80e18, finalizeAfter);
        vm.prank(payerAuth); // the payer authorizer may ask too
        bs.initiateWithdraw(c, 80e18);
        (uint128 pending, uint40 at) = bs.pendingWithdrawals(id);
        assertEq(pending, 80e18);
        assertEq(at, block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.BatchSettlementWithdrawPending.selector, id));
        vm.prank(payer);
        bs.initiateWithdraw(c, 1);

        // During the delay the receiver claims the vouchers it holds.
        vm.warp(block.timestamp + DELAY - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.BatchSettlementWithdrawNotReady.selector, id, finalizeAfter
            )
        );
        bs.finalizeWithdraw(c);
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 100e18, 50e18)));

        vm.warp(finalizeAfter);
        uint256 payerBefore = token.balanceOf(payer);
        vm.expectEmit(true, true, false, true, SETTLEMENT);
        emit IBatchSettlement.WithdrawFinalized(id, stranger, 50e18);
        vm.prank(stranger); // permissionless: it only ever pays the payer
        bs.finalizeWithdraw(c);
        assertEq(token.balanceOf(payer), payerBefore + 50e18, "capped to what was unclaimed at finalize");
        assertEq(_balance(id), 50e18);
        assertEq(_claimed(id), 50e18);
        (pending, at) = bs.pendingWithdrawals(id);
        assertEq(pending, 0);
        assertEq(at, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementNoPendingWithdrawal.selector, id)
        );
        bs.finalizeWithdraw(c);

        // What was claimed is still paid out, and nothing more can be claimed.
        bs.settle(receiver, address(token));
        assertEq(token.balanceOf(receiver), 50e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IBatchSettlement.BatchSettlementClaimExceedsBalance.selector, id, 51e18, 50e18
            )
        );
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 100e18, 51e18)));
        assertEq(token.balanceOf(SETTLEMENT), 0);
    }

    /// @dev The receiver that misses the delay loses what it did not claim: that is the race it must win.
    function test_withdraw_unclaimedVouchersLoseAfterFinalize() public {
        IBatchSettlement.ChannelConfig memory c = _config("w");
        bytes32 id = _deposit(c, payerPk, 10e18);
        IBatchSettlement.VoucherClaim memory late = _row(c, payerAuthPk, 10e18, 10e18);
        vm.prank(payer);
        bs.initiateWithdraw(c, 10e18);
        vm.warp(block.timestamp + DELAY);
        vm.expectEmit(true, false, false, true, SETTLEMENT);
        emit IBatchSettlement.ChannelClosed(id);
        bs.finalizeWithdraw(c);
        assertEq(_balance(id), 0);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementClaimExceedsBalance.selector, id, 10e18, 0)
        );
        vm.prank(receiverAuth);
        bs.claim(_one(late));

        // A closed channel may be funded again, and is announced again.
        bytes memory data = _collectorData(payerPk, 1e18, id, 99);
        vm.expectEmit(true, false, false, true, SETTLEMENT);
        emit IBatchSettlement.ChannelCreated(id, c);
        bs.deposit(c, 1e18, COLLECTOR, data);
    }

    // ------------------------------------------------------------------ refunds

    function test_refund_receiverSideCappedAndShrinksPendingWithdrawal() public {
        IBatchSettlement.ChannelConfig memory c = _config("r");
        bytes32 id = _deposit(c, payerPk, 100e18);
        vm.prank(receiverAuth);
        bs.claim(_one(_row(c, payerAuthPk, 100e18, 30e18)));
        vm.prank(payer);
        bs.initiateWithdraw(c, 50e18);

        uint256 payerBefore = token.balanceOf(payer);
        vm.expectEmit(true, true, false, true, SETTLEMENT);
        emit IBatchSettlement.Refunded(id, receiver, 20e18, 0);
        vm.prank(receiver);
        bs.refund(c, 20e18);
        assertEq(token.balanceOf(payer), payerBefore + 20e18);
        assertEq(bs.refundNonce(id), 1);
        (uint128 pending, uint40 at) = bs.pendingWithdrawals(id);
        assertEq(pending, 30e18, "the refund counts towards the pending withdrawal");
        assertEq(at, block.timestamp);

        // Capped to what is unclaimed (50e18); the pending withdrawal is then covered and cleared.
        vm.expectEmit(true, true, false, true, SETTLEMENT);
        emit IBatchSettlement.Refunded(id, receiverAuth, 50e18, 1);
        vm.prank(receiverAuth);
        bs.refund(c, 1000e18);
        assertEq(_balance(id), 30e18);
        assertEq(_claimed(id), 30e18);
        (pending, at) = bs.pendingWithdrawals(id);
        assertEq(pending, 0);
        assertEq(at, 0);
        assertEq(bs.refundNonce(id), 2);

        // Nothing left to refund: the nonce is still consumed, nothing moves.
        vm.prank(receiver);
        bs.refund(c, 1);
        assertEq(bs.refundNonce(id), 3);
        assertEq(_balance(id), 30e18);

        bs.settle(receiver, address(token));
        assertEq(token.balanceOf(receiver), 30e18);
        assertEq(token.balanceOf(SETTLEMENT), 0);
    }

    function test_refund_emptiesAndClosesChannel() public {
        IBatchSettlement.ChannelConfig memory c = _config("r");
        bytes32 id = _deposit(c, payerPk, 10e18);
        uint256 payerBefore = token.balanceOf(payer);
        vm.expectEmit(true, false, false, true, SETTLEMENT);
        emit IBatchSettlement.ChannelClosed(id);
        vm.prank(receiverAuth);
        bs.refund(c, 10e18);
        assertEq(token.balanceOf(payer), payerBefore + 10e18);
        assertEq(token.balanceOf(SETTLEMENT), 0);

        // A refund on a channel nobody funded moves nothing and closes nothing (it only consumes its nonce).
        IBatchSettlement.ChannelConfig memory never = _config("never");
        vm.recordLogs();
        vm.prank(receiver);
        bs.refund(never, 1e18);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1);
        assertEq(logs[0].topics[0], IBatchSettlement.Refunded.selector);
        assertEq(bs.refundNonce(_channelId(never)), 1);
    }

    function test_RevertWhen_refundByStrangerOrZero() public {
        IBatchSettlement.ChannelConfig memory c = _config("r");
        bytes32 id = _deposit(c, payerPk, 10e18);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementNotReceiver.selector, id, payer)
        );
        vm.prank(payer);
        bs.refund(c, 1e18);
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAmount.selector);
        vm.prank(receiver);
        bs.refund(c, 0);
        assertEq(bs.refundNonce(id), 0);
    }

    function test_refundWithSignature_nonceRules() public {
        IBatchSettlement.ChannelConfig memory c = _config("r");
        bytes32 id = _deposit(c, payerPk, 10e18);
        bytes memory sig0 = _refundSig(receiverAuthPk, id, 0, 2e18);
        assertEq(bs.getRefundDigest(id, 0, 2e18), _typed(keccak256(abi.encode(REFUND_TYPEHASH, id, 0, 2e18))));

        // A nonce ahead of the channel's is refused even with a valid signature.
        bytes memory sig1 = _refundSig(receiverAuthPk, id, 1, 2e18);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidRefundNonce.selector, id, 0, 1)
        );
        bs.refundWithSignature(c, 2e18, 1, sig1);
        // Wrong signer, or the signed amount changed.
        vm.expectRevert(IBatchSettlement.BatchSettlementInvalidAuthorizerSignature.selector);
        bs.refundWithSignature(c, 2e18, 0, _refundSig(payerPk, id, 0, 2e18));
        vm.expectRevert(IBatchSettlement.BatchSettlementInvalidAuthorizerSignature.selector);
        bs.refundWithSignature(c, 3e18, 0, sig0);

        vm.prank(relayer);
        bs.refundWithSignature(c, 2e18, 0, sig0);
        assertEq(_balance(id), 8e18);
        assertEq(bs.refundNonce(id), 1);
        // Replaying the used signature fails; the next nonce's works once.
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidRefundNonce.selector, id, 1, 0)
        );
        bs.refundWithSignature(c, 2e18, 0, sig0);
        bs.refundWithSignature(c, 2e18, 1, sig1);
        assertEq(_balance(id), 6e18);
        // A direct refund consumes a nonce too, so a signature prepared for it can no longer be used.
        bytes memory sig2 = _refundSig(receiverAuthPk, id, 2, 1e18);
        vm.prank(receiver);
        bs.refund(c, 1e18);
        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.BatchSettlementInvalidRefundNonce.selector, id, 3, 2)
        );
        bs.refundWithSignature(c, 1e18, 2, sig2);
        vm.expectRevert(IBatchSettlement.BatchSettlementZeroAmount.selector);
        bs.refundWithSignature(c, 0, 3, _refundSig(receiverAuthPk, id, 3, 0));
    }

    // ------------------------------------------------------------------ conservation

    function _assertConservation(bytes32[2] memory ids) internal view {
        uint256 held;
        uint256 claimed;
        for (uint256 i; i < 2; ++i) {
            (uint128 balance, uint128 totalClaimed) = bs.channels(ids[i]);
            assertLe(totalClaimed, balance);
            held += balance;
            claimed += totalClaimed;
        }
        (uint128 rc, uint128 rs) = bs.receivers(receiver, address(token));
        assertEq(claimed, rc);
        assertEq(token.balanceOf(SETTLEMENT), held - rs);
    }

    struct Amounts {
        uint128 depositA;
        uint128 depositB;
        uint128 claimA;
        uint128 claimB;
        uint128 withdrawA;
        uint128 refundB;
    }

    function testFuzz_conservation(Amounts memory x, bool settleEarly) public {
        x.depositA = uint128(bound(x.depositA, 1, 1_000_000e18));
        x.depositB = uint128(bound(x.depositB, 1, 1_000_000e18));
        IBatchSettlement.ChannelConfig memory a = _config("fa");
        IBatchSettlement.ChannelConfig memory b = _config("fb");
        bytes32[2] memory ids = [_deposit(a, payerPk, x.depositA), _deposit(b, payerPk, x.depositB)];
        _assertConservation(ids);

        x.claimA = uint128(bound(x.claimA, 0, x.depositA));
        x.claimB = uint128(bound(x.claimB, 0, x.depositB));
        IBatchSettlement.VoucherClaim[] memory rows = new IBatchSettlement.VoucherClaim[](2);
        rows[0] = _row(a, payerAuthPk, x.claimA, x.claimA);
        rows[1] = _row(b, payerAuthPk, x.claimB, x.claimB);
        vm.prank(receiverAuth);
        bs.claim(rows);
        _assertConservation(ids);
        if (settleEarly) bs.settle(receiver, address(token));
        _assertConservation(ids);

        x.withdrawA = uint128(bound(x.withdrawA, 0, x.depositA - x.claimA));
        if (x.withdrawA > 0) {
            vm.prank(payer);
            bs.initiateWithdraw(a, x.withdrawA);
            vm.warp(block.timestamp + DELAY);
            bs.finalizeWithdraw(a);
        }
        _assertConservation(ids);
        x.refundB = uint128(bound(x.refundB, 1, type(uint128).max));
        vm.prank(receiver);
        bs.refund(b, x.refundB);
        _assertConservation(ids);
        bs.settle(receiver, address(token));
        _assertConservation(ids);
        _assertFinal(x);
    }

    function _assertFinal(Amounts memory x) internal view {
        uint256 unclaimedB = uint256(x.depositB) - x.claimB;
        uint256 refundedB = x.refundB < unclaimedB ? x.refundB : unclaimedB;
        assertEq(token.balanceOf(receiver), uint256(x.claimA) + x.claimB);
        assertEq(
            token.balanceOf(SETTLEMENT),
            (uint256(x.depositA) - x.claimA - x.withdrawA) + (unclaimedB - refundedB),
            "the settlement holds exactly the unclaimed value"
        );
        assertEq(
            token.balanceOf(payer), 10_000_000e18 - uint256(x.depositA) - x.depositB + x.withdrawA + refundedB
        );
    }
}

/// @dev The x402 batch-settlement channel paying an InferenceMarket payTo: the receiver is
///      `market.paymentAddress(projectId, provider)` and the provider's node is the receiver authorizer.
contract BatchSettlementMarketTest is BatchSettlementFixture {
    uint256 internal constant PRICE = 1e15;
    uint256 internal constant REQUESTS = 1000;
    Project internal project;
    InferenceMarket internal market;
    address internal treasury = makeAddr("treasury");
    address internal recorder = makeAddr("recorder");
    address internal owner = makeAddr("projectOwner");
    address internal alice = makeAddr("alice");
    uint256 internal providerPk = 0x9A0DE;
    address internal provider;
    uint256 internal projectId;

    function setUp() public {
        _deploy();
        provider = vm.addr(providerPk);
        project = new Project(admin, token);
        market = new InferenceMarket(admin, token, project, treasury);
        bytes32 role = market.CONTRIBUTION_RECORDER_ROLE();
        vm.prank(admin);
        market.grantRole(role, recorder);
        IProject.CreateProjectParams memory p = IProject.CreateProjectParams({
            modelSpecHash: keccak256("spec"),
            modelURI: "ipfs://model",
            datasetRoot: keccak256("data"),
            initialModelRoot: keccak256("root0"),
            inferencePrice: PRICE,
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
        projectId = project.createProject(p);
        vm.prank(recorder);
        market.recordContribution(projectId, alice, 1e18);
    }

    function test_endToEnd_thousandVouchersClaimedSettledAndCollected() public {
        address payTo = market.paymentAddress(projectId, provider);
        IBatchSettlement.ChannelConfig memory c = _config("market");
        c.receiver = payTo;
        c.receiverAuthorizer = provider;
        bytes32 id = _deposit(c, payerPk, uint128(REQUESTS * PRICE + 7));

        // 1,000 paid requests, each with the next cumulative voucher; the node keeps the latest.
        bytes memory latest;
        for (uint256 i = 1; i <= REQUESTS; ++i) {
            latest = _voucherSig(payerAuthPk, id, uint128(i * PRICE));
        }
        uint128 total = uint128(REQUESTS * PRICE);
        IBatchSettlement.VoucherClaim[] memory rows = _one(
            IBatchSettlement.VoucherClaim({
                voucher: IBatchSettlement.Voucher({channel: c, maxClaimableAmount: total}),
                signature: latest,
                totalClaimed: total
            })
        );
        bytes[] memory calls = new bytes[](2);
        calls[0] = abi.encodeCall(IBatchSettlement.claim, (rows));
        calls[1] = abi.encodeCall(IBatchSettlement.settle, (payTo, address(token)));
        vm.prank(provider);
        bs.multicall(calls);
        assertEq(token.balanceOf(payTo), total);
        assertEq(market.uncollectedBalance(projectId, provider), total);

        (uint256 amount, uint256 p, uint256 cs, uint256 t) = market.collect(projectId, provider);
        assertEq(amount, total);
        assertEq(p, uint256(total) * 6000 / 10_000);
        assertEq(cs, uint256(total) * 2500 / 10_000);
        assertEq(t, uint256(total) * 1500 / 10_000);
        assertEq(p + cs + t, total);
        assertEq(market.claimable(provider), p);
        assertEq(market.claimable(treasury), t);
        assertEq(market.pendingContributorRevenue(projectId, alice), cs);
        assertEq(token.balanceOf(payTo), 0);

        // The same split an x402 `exact` settlement of the same value gives.
        (uint256 sp, uint256 sc, uint256 st) = _exactSettle(total);
        assertEq(sp, p);
        assertEq(sc, cs);
        assertEq(st, t);

        // The channel keeps the rest for later requests; the settlement holds exactly that.
        assertEq(_balance(id) - _claimed(id), 7);
        assertEq(token.balanceOf(SETTLEMENT), 7);
    }

    function _exactSettle(uint256 value) internal returns (uint256, uint256, uint256) {
        bytes32 transferTypehash = keccak256(
            "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
        );
        uint256 vb = block.timestamp + 60;
        bytes32 nonce = keccak256("exact");
        address payTo = market.paymentAddress(projectId, provider);
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01",
                token.DOMAIN_SEPARATOR(),
                keccak256(abi.encode(transferTypehash, payer, payTo, value, 0, vb, nonce))
            )
        );
        bytes memory sig = _sign(payerPk, digest);
        vm.prank(provider);
        return market.settle(projectId, payer, value, 0, vb, nonce, sig);
    }
}

/// @dev Gas of the x402 channel calls, bounded. `forge test --match-contract BatchSettlementGasTest --isolate -vv`
///      prints per-transaction figures (net of refunds).
contract BatchSettlementGasTest is BatchSettlementFixture {
    function setUp() public {
        _deploy();
    }

    function _gas(string memory what, uint256 limit) internal view returns (uint256 used) {
        Vm.Gas memory g = vm.lastCallGas();
        used = g.gasTotalUsed;
        console.log(what, used);
        assertLt(used, limit, what);
    }

    /// @dev `n` freshly funded channels (salts from `first`) and a claim row of `amount` for each.
    function _rows(uint256 first, uint256 n, uint128 amount)
        internal
        returns (IBatchSettlement.VoucherClaim[] memory rows)
    {
        rows = new IBatchSettlement.VoucherClaim[](n);
        for (uint256 i; i < n; ++i) {
            IBatchSettlement.ChannelConfig memory c = _config(bytes32(first + i));
            _deposit(c, payerPk, 10e18);
            rows[i] = _row(c, payerAuthPk, amount, amount);
        }
    }

    function test_gas_depositClaimSettle() public {
        IBatchSettlement.ChannelConfig memory c = _config("gas");
        bytes32 id = _channelId(c);
        bytes memory data = _collectorData(payerPk, 10e18, id, 1);
        bs.deposit(c, 10e18, COLLECTOR, data);
        _gas("deposit, new channel (EIP-3009 collector)", 200_000);
        data = _collectorData(payerPk, 10e18, id, 2);
        bs.deposit(c, 10e18, COLLECTOR, data);
        _gas("deposit, top-up", 150_000);

        IBatchSettlement.VoucherClaim[] memory one = _one(_row(c, payerAuthPk, 1e18, 1e18));
        vm.prank(receiverAuth);
        bs.claim(one);
        _gas("claim, 1 row", 100_000);
        bs.settle(receiver, address(token));
        _gas("settle", 120_000); // the official facilitator sends settle with a 120,000 gas limit

        IBatchSettlement.VoucherClaim[] memory rows = _rows(1000, 100, 1e18);
        vm.prank(receiverAuth);
        bs.claim(rows);
        _gas("claim, 100 rows", 4_000_000);

        rows = _rows(2000, 100, 1e18);
        bytes memory sig = _batchSig(receiverAuthPk, rows);
        bs.claimWithSignature(rows, sig);
        _gas("claimWithSignature, 100 rows", 4_500_000);

        bytes[] memory calls = new bytes[](2);
        calls[0] = abi.encodeCall(IBatchSettlement.claim, (_one(_row(c, payerAuthPk, 2e18, 2e18))));
        calls[1] = abi.encodeCall(IBatchSettlement.settle, (receiver, address(token)));
        vm.prank(receiverAuth);
        bs.multicall(calls);
        _gas("multicall(claim 1 row, settle)", 160_000);
    }
}

/// @dev Random deposits, claims (direct, signed, replayed, stale), settles, timed withdrawals and refunds over four
///      channels of two payers and two receivers, with ghost totals of what entered and left.
contract BatchSettlementHandler is Test {
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    address internal constant COLLECTOR = X402Canonical.ERC3009_DEPOSIT_COLLECTOR;

    ATNToken public token;
    BatchSettlement public bs;
    IBatchSettlement.ChannelConfig[] internal _configs;
    uint256[] internal _payerPks;
    uint256[] internal _authPks;
    address[] public receiverList;
    bytes32[] public ids;
    mapping(bytes32 id => IBatchSettlement.VoucherClaim) internal _lastRow;

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public ghostRefunded;
    uint256 public ghostSettled;
    /// claims that changed state although they replayed an applied (or older) voucher
    uint256 public ghostReplayEffects;
    uint256 internal _salt;

    constructor(ATNToken token_, BatchSettlement bs_) {
        token = token_;
        bs = bs_;
        _payerPks.push(0xA1);
        _payerPks.push(0xA2);
        _authPks.push(0xC1);
        _authPks.push(0xC2);
        receiverList.push(address(0xE1));
        receiverList.push(address(0xE2));
        for (uint256 i; i < 4; ++i) {
            IBatchSettlement.ChannelConfig memory c = IBatchSettlement.ChannelConfig({
                payer: vm.addr(_payerPks[i % 2]),
                // even channels: the payer signs vouchers itself; odd: a payer authorizer key of their own
                payerAuthorizer: i % 2 == 0 ? address(0) : vm.addr(0xD0 + i),
                receiver: receiverList[i / 2],
                receiverAuthorizer: vm.addr(_authPks[i / 2]),
                token: address(token),
                withdrawDelay: 900,
                salt: bytes32(i)
            });
            _configs.push(c);
            ids.push(bs.getChannelId(c));
        }
    }

    function _voucherPk(uint256 i) internal view returns (uint256) {
        return i % 2 == 0 ? _payerPks[i % 2] : 0xD0 + i;
    }

    function _sign(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function deposit(uint256 seed, uint256 amount) external {
        uint256 i = seed % 4;
        amount = bound(amount, 1, 1_000e18);
        IBatchSettlement.ChannelConfig memory c = _configs[i];
        deal(address(token), c.payer, token.balanceOf(c.payer) + amount, true);
        bs.deposit(c, uint128(amount), COLLECTOR, _collectorData(i, amount));
        ghostDeposited += amount;
    }

    function _collectorData(uint256 i, uint256 amount) internal returns (bytes memory) {
        uint256 salt = ++_salt;
        uint256 vb = block.timestamp + 300;
        bytes32 structHash = keccak256(
            abi.encode(
                RECEIVE_TYPEHASH,
                _configs[i].payer,
                COLLECTOR,
                amount,
                0,
                vb,
                keccak256(abi.encode(ids[i], salt))
            )
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        return abi.encode(uint256(0), vb, salt, _sign(_payerPks[i % 2], digest));
    }

    function claim(uint256 seed, uint256 amount, bool signed) external {
        uint256 i = seed % 4;
        (uint128 balance, uint128 claimed) = bs.channels(ids[i]);
        if (balance == claimed) return;
        uint128 total = claimed + uint128(bound(amount, 1, balance - claimed));
        IBatchSettlement.VoucherClaim[] memory rows = new IBatchSettlement.VoucherClaim[](1);
        rows[0] = IBatchSettlement.VoucherClaim({
            voucher: IBatchSettlement.Voucher({channel: _configs[i], maxClaimableAmount: total}),
            signature: _sign(_voucherPk(i), bs.getVoucherDigest(ids[i], total)),
            totalClaimed: total
        });
        if (signed) {
            bs.claimWithSignature(rows, _sign(_authPks[i / 2], bs.getClaimBatchDigest(rows)));
        } else {
            vm.prank(_configs[i].receiverAuthorizer);
            bs.claim(rows);
        }
        _lastRow[ids[i]] = rows[0];
    }

    function replayClaim(uint256 seed) external {
        uint256 i = seed % 4;
        IBatchSettlement.VoucherClaim memory row = _lastRow[ids[i]];
        if (row.totalClaimed == 0) return;
        IBatchSettlement.VoucherClaim[] memory rows = new IBatchSettlement.VoucherClaim[](1);
        rows[0] = row;
        (uint128 balanceBefore, uint128 claimedBefore) = bs.channels(ids[i]);
        vm.prank(_configs[i].receiver);
        bs.claim(rows);
        (uint128 balanceAfter, uint128 claimedAfter) = bs.channels(ids[i]);
        if (balanceAfter != balanceBefore || claimedAfter != claimedBefore) ++ghostReplayEffects;
    }

    function settle(uint256 seed) external {
        address r = receiverList[seed % 2];
        uint256 before = token.balanceOf(r);
        bs.settle(r, address(token));
        ghostSettled += token.balanceOf(r) - before;
    }

    function initiateWithdraw(uint256 seed, uint256 amount) external {
        uint256 i = seed % 4;
        (uint128 balance, uint128 claimed) = bs.channels(ids[i]);
        (, uint40 at) = bs.pendingWithdrawals(ids[i]);
        if (at != 0 || balance == claimed) return;
        vm.prank(_configs[i].payer);
        bs.initiateWithdraw(_configs[i], uint128(bound(amount, 1, balance - claimed)));
    }

    function finalizeWithdraw(uint256 seed) external {
        uint256 i = seed % 4;
        (, uint40 at) = bs.pendingWithdrawals(ids[i]);
        if (at == 0) return;
        if (block.timestamp < uint256(at) + 900) vm.warp(uint256(at) + 900);
        (uint128 before,) = bs.channels(ids[i]);
        bs.finalizeWithdraw(_configs[i]);
        (uint128 afterBalance,) = bs.channels(ids[i]);
        ghostWithdrawn += before - afterBalance;
    }

    function refund(uint256 seed, uint256 amount, bool signed) external {
        uint256 i = seed % 4;
        amount = bound(amount, 1, 2_000e18);
        (uint128 before,) = bs.channels(ids[i]);
        if (signed) {
            uint256 nonce = bs.refundNonce(ids[i]);
            bytes memory sig = _sign(_authPks[i / 2], bs.getRefundDigest(ids[i], nonce, uint128(amount)));
            bs.refundWithSignature(_configs[i], uint128(amount), nonce, sig);
        } else {
            vm.prank(_configs[i].receiver);
            bs.refund(_configs[i], uint128(amount));
        }
        (uint128 afterBalance,) = bs.channels(ids[i]);
        ghostRefunded += before - afterBalance;
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 2 hours));
    }
}

contract BatchSettlementInvariantTest is BatchSettlementFixture {
    BatchSettlementHandler internal handler;

    function setUp() public {
        _deploy();
        handler = new BatchSettlementHandler(token, bs);
        targetContract(address(handler));
    }

    /// @dev The settlement holds exactly Σ channel balance − Σ paid out: Σ (balance − totalClaimed) for payers plus
    ///      Σ (claimed − settled) for receivers.
    function invariant_conservation() public view {
        uint256 held;
        uint256 claimedByChannels;
        for (uint256 i; i < 4; ++i) {
            (uint128 balance, uint128 claimed) = bs.channels(handler.ids(i));
            assertLe(claimed, balance, "claimed within balance");
            held += balance;
            claimedByChannels += claimed;
        }
        uint256 claimedByReceivers;
        uint256 settled;
        for (uint256 r; r < 2; ++r) {
            (uint128 rc, uint128 rs) = bs.receivers(handler.receiverList(r), address(token));
            assertLe(rs, rc, "settled within claimed");
            claimedByReceivers += rc;
            settled += rs;
        }
        assertEq(claimedByChannels, claimedByReceivers, "every claim is owed to a receiver");
        assertEq(token.balanceOf(SETTLEMENT), held - settled, "balance = channel balances - paid out");
        assertEq(
            token.balanceOf(SETTLEMENT),
            (held - claimedByChannels) + (claimedByReceivers - settled),
            "payers' unclaimed + receivers' unsettled"
        );
        assertEq(settled, handler.ghostSettled());
        assertEq(
            held,
            handler.ghostDeposited() - handler.ghostWithdrawn() - handler.ghostRefunded(),
            "ghost balances"
        );
    }

    function invariant_replaysChangeNothing() public view {
        assertEq(handler.ghostReplayEffects(), 0);
    }
}
