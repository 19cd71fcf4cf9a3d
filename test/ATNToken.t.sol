// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ATNToken} from "../contracts/ATNToken.sol";
import {IATNToken} from "../contracts/interfaces/IATNToken.sol";

/// @dev Minimal ERC-1271 smart wallet: accepts digests signed by its owner key.
contract MockWallet1271 is IERC1271 {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4) {
        (address rec, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return
            (err == ECDSA.RecoverError.NoError && rec == owner)
                ? IERC1271.isValidSignature.selector
                : bytes4(0);
    }
}

contract ATNTokenTest is Test {
    ATNToken internal token;
    address internal admin = makeAddr("admin");
    address internal holder = makeAddr("holder");
    address internal bob = makeAddr("bob");
    address internal relayer = makeAddr("relayer");
    uint256 internal alicePk = 0xA11CE;
    address internal alice;

    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    function setUp() public {
        vm.warp(1_000_000);
        vm.roll(100);
        alice = vm.addr(alicePk);
        token = new ATNToken(admin, holder, 1_000_000e18);
        vm.prank(holder);
        assertTrue(token.transfer(alice, 1000e18));
    }

    // ------------------------------------------------------------------ helpers

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
    }

    function _signAuth(
        uint256 pk,
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        return vm.sign(
            pk, _digest(keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce)))
        );
    }

    function _sigBytes(
        uint256 pk,
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) =
            _signAuth(pk, typehash, from, to, value, validAfter, validBefore, nonce);
        return abi.encodePacked(r, s, v);
    }

    // ------------------------------------------------------------------ metadata / roles

    function test_constructor_setsMetadataSupplyAndRoles() public view {
        assertEq(token.name(), "Autonet");
        assertEq(token.symbol(), "ATN");
        assertEq(token.totalSupply(), 1_000_000e18);
        assertEq(token.balanceOf(holder), 1_000_000e18 - 1000e18);
        assertTrue(token.hasRole(token.MINTER_ROLE(), admin));
        assertTrue(token.hasRole(token.DEFAULT_ADMIN_ROLE(), admin));
        (, string memory name, string memory version, uint256 chainId, address verifying,,) =
            token.eip712Domain();
        assertEq(name, "Autonet");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(token));
        assertEq(token.clock(), uint48(block.number));
        assertEq(token.CLOCK_MODE(), "mode=blocknumber&from=default");
    }

    function test_constructor_zeroSupplyMintsNothing() public {
        ATNToken t = new ATNToken(admin, holder, 0);
        assertEq(t.totalSupply(), 0);
    }

    function test_mint_byMinterIncreasesSupply() public {
        vm.prank(admin);
        token.mint(bob, 5e18);
        assertEq(token.balanceOf(bob), 5e18);
        assertEq(token.totalSupply(), 1_000_005e18);
    }

    function test_RevertWhen_mintByNonMinter() public {
        bytes32 role = token.MINTER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bob, role)
        );
        vm.prank(bob);
        token.mint(bob, 1);
    }

    function testFuzz_mint_supplyTracksBalances(address to, uint256 amount) public {
        vm.assume(to != address(0));
        amount = bound(amount, 0, 1e30);
        uint256 beforeBal = token.balanceOf(to);
        uint256 beforeSupply = token.totalSupply();
        vm.prank(admin);
        token.mint(to, amount);
        assertEq(token.balanceOf(to), beforeBal + amount);
        assertEq(token.totalSupply(), beforeSupply + amount);
    }

    // ------------------------------------------------------------------ transferWithAuthorization

    function test_transferWithAuthorization_vrsMovesTokensAndMarksNonce() public {
        bytes32 nonce = keccak256("n1");
        uint256 va = block.timestamp - 1;
        uint256 vb = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) =
            _signAuth(alicePk, TRANSFER_TYPEHASH, alice, bob, 10e18, va, vb, nonce);
        vm.expectEmit(true, true, false, false, address(token));
        emit IATNToken.AuthorizationUsed(alice, nonce);
        vm.prank(relayer);
        token.transferWithAuthorization(alice, bob, 10e18, va, vb, nonce, v, r, s);
        assertEq(token.balanceOf(bob), 10e18);
        assertEq(token.balanceOf(alice), 990e18);
        assertTrue(token.authorizationState(alice, nonce));
    }

    function test_transferWithAuthorization_bytesSignature() public {
        bytes32 nonce = keccak256("n2");
        uint256 va = 0;
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sigBytes(alicePk, TRANSFER_TYPEHASH, alice, bob, 3e18, va, vb, nonce);
        vm.prank(relayer);
        token.transferWithAuthorization(alice, bob, 3e18, va, vb, nonce, sig);
        assertEq(token.balanceOf(bob), 3e18);
        assertTrue(token.authorizationState(alice, nonce));
    }

    function test_transferWithAuthorization_erc1271Wallet() public {
        uint256 ownerPk = 0xB0B;
        MockWallet1271 wallet = new MockWallet1271(vm.addr(ownerPk));
        vm.prank(holder);
        assertTrue(token.transfer(address(wallet), 50e18));
        bytes32 nonce = keccak256("w");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sigBytes(ownerPk, TRANSFER_TYPEHASH, address(wallet), bob, 20e18, 0, vb, nonce);
        token.transferWithAuthorization(address(wallet), bob, 20e18, 0, vb, nonce, sig);
        assertEq(token.balanceOf(bob), 20e18);
        assertEq(token.balanceOf(address(wallet)), 30e18);
    }

    function test_RevertWhen_transferWithAuthorizationReplayed() public {
        bytes32 nonce = keccak256("n3");
        uint256 vb = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) =
            _signAuth(alicePk, TRANSFER_TYPEHASH, alice, bob, 1e18, 0, vb, nonce);
        token.transferWithAuthorization(alice, bob, 1e18, 0, vb, nonce, v, r, s);
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationUsed.selector, alice, nonce));
        token.transferWithAuthorization(alice, bob, 1e18, 0, vb, nonce, v, r, s);
    }

    function test_RevertWhen_transferWithAuthorizationExpired() public {
        bytes32 nonce = keccak256("n4");
        uint256 vb = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) =
            _signAuth(alicePk, TRANSFER_TYPEHASH, alice, bob, 1e18, 0, vb, nonce);
        vm.warp(vb);
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationExpired.selector, vb, vb));
        token.transferWithAuthorization(alice, bob, 1e18, 0, vb, nonce, v, r, s);
    }

    function test_RevertWhen_transferWithAuthorizationNotYetValid() public {
        bytes32 nonce = keccak256("n5");
        uint256 va = block.timestamp;
        uint256 vb = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) =
            _signAuth(alicePk, TRANSFER_TYPEHASH, alice, bob, 1e18, va, vb, nonce);
        vm.expectRevert(
            abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationNotYetValid.selector, va, block.timestamp)
        );
        token.transferWithAuthorization(alice, bob, 1e18, va, vb, nonce, v, r, s);
        vm.warp(va + 1);
        token.transferWithAuthorization(alice, bob, 1e18, va, vb, nonce, v, r, s);
        assertEq(token.balanceOf(bob), 1e18);
    }

    function test_RevertWhen_transferWithAuthorizationWrongSigner() public {
        bytes32 nonce = keccak256("n6");
        uint256 vb = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(0xBAD, TRANSFER_TYPEHASH, alice, bob, 1e18, 0, vb, nonce);
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        token.transferWithAuthorization(alice, bob, 1e18, 0, vb, nonce, v, r, s);
        assertFalse(token.authorizationState(alice, nonce));
    }

    function test_RevertWhen_transferWithAuthorizationTamperedValue() public {
        bytes32 nonce = keccak256("n7");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sigBytes(alicePk, TRANSFER_TYPEHASH, alice, bob, 1e18, 0, vb, nonce);
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        token.transferWithAuthorization(alice, bob, 2e18, 0, vb, nonce, sig);
    }

    function test_RevertWhen_transferWithAuthorizationUsesReceiveTypehash() public {
        bytes32 nonce = keccak256("n8");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sigBytes(alicePk, RECEIVE_TYPEHASH, alice, bob, 1e18, 0, vb, nonce);
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        token.transferWithAuthorization(alice, bob, 1e18, 0, vb, nonce, sig);
    }

    function testFuzz_transferWithAuthorization_windowAndValue(
        uint256 value,
        uint256 offsetAfter,
        uint256 offsetBefore
    ) public {
        value = bound(value, 0, 1000e18);
        offsetAfter = bound(offsetAfter, 1, 1 days);
        offsetBefore = bound(offsetBefore, 1, 1 days);
        uint256 va = block.timestamp - offsetAfter;
        uint256 vb = block.timestamp + offsetBefore;
        bytes32 nonce = keccak256(abi.encode(value, offsetAfter, offsetBefore));
        bytes memory sig = _sigBytes(alicePk, TRANSFER_TYPEHASH, alice, bob, value, va, vb, nonce);
        token.transferWithAuthorization(alice, bob, value, va, vb, nonce, sig);
        assertEq(token.balanceOf(bob), value);
        assertEq(token.balanceOf(alice), 1000e18 - value);
        assertTrue(token.authorizationState(alice, nonce));
    }

    // ------------------------------------------------------------------ receiveWithAuthorization

    function test_receiveWithAuthorization_byPayee() public {
        bytes32 nonce = keccak256("r1");
        uint256 vb = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, RECEIVE_TYPEHASH, alice, bob, 4e18, 0, vb, nonce);
        vm.prank(bob);
        token.receiveWithAuthorization(alice, bob, 4e18, 0, vb, nonce, v, r, s);
        assertEq(token.balanceOf(bob), 4e18);
    }

    function test_receiveWithAuthorization_bytesByPayee() public {
        bytes32 nonce = keccak256("r2");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sigBytes(alicePk, RECEIVE_TYPEHASH, alice, bob, 4e18, 0, vb, nonce);
        vm.prank(bob);
        token.receiveWithAuthorization(alice, bob, 4e18, 0, vb, nonce, sig);
        assertEq(token.balanceOf(bob), 4e18);
        assertTrue(token.authorizationState(alice, nonce));
    }

    function test_RevertWhen_receiveWithAuthorizationByNonPayee() public {
        bytes32 nonce = keccak256("r3");
        uint256 vb = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = _signAuth(alicePk, RECEIVE_TYPEHASH, alice, bob, 4e18, 0, vb, nonce);
        bytes memory sig = abi.encodePacked(r, s, v);
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenCallerNotPayee.selector, relayer, bob));
        vm.prank(relayer);
        token.receiveWithAuthorization(alice, bob, 4e18, 0, vb, nonce, v, r, s);
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenCallerNotPayee.selector, relayer, bob));
        vm.prank(relayer);
        token.receiveWithAuthorization(alice, bob, 4e18, 0, vb, nonce, sig);
    }

    function test_RevertWhen_receiveWithAuthorizationReplayed() public {
        bytes32 nonce = keccak256("r4");
        uint256 vb = block.timestamp + 60;
        bytes memory sig = _sigBytes(alicePk, RECEIVE_TYPEHASH, alice, bob, 1e18, 0, vb, nonce);
        vm.startPrank(bob);
        token.receiveWithAuthorization(alice, bob, 1e18, 0, vb, nonce, sig);
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationUsed.selector, alice, nonce));
        token.receiveWithAuthorization(alice, bob, 1e18, 0, vb, nonce, sig);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ cancelAuthorization

    function test_cancelAuthorization_thenUseReverts() public {
        bytes32 nonce = keccak256("c1");
        uint256 vb = block.timestamp + 60;
        (uint8 cv, bytes32 cr, bytes32 cs) =
            vm.sign(alicePk, _digest(keccak256(abi.encode(CANCEL_TYPEHASH, alice, nonce))));
        vm.expectEmit(true, true, false, false, address(token));
        emit IATNToken.AuthorizationCanceled(alice, nonce);
        token.cancelAuthorization(alice, nonce, cv, cr, cs);
        assertTrue(token.authorizationState(alice, nonce));

        bytes memory sig = _sigBytes(alicePk, TRANSFER_TYPEHASH, alice, bob, 1e18, 0, vb, nonce);
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationUsed.selector, alice, nonce));
        token.transferWithAuthorization(alice, bob, 1e18, 0, vb, nonce, sig);
    }

    function test_cancelAuthorization_bytesForm() public {
        bytes32 nonce = keccak256("c2");
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(alicePk, _digest(keccak256(abi.encode(CANCEL_TYPEHASH, alice, nonce))));
        token.cancelAuthorization(alice, nonce, abi.encodePacked(r, s, v));
        assertTrue(token.authorizationState(alice, nonce));
        vm.expectRevert(abi.encodeWithSelector(IATNToken.ATNTokenAuthorizationUsed.selector, alice, nonce));
        token.cancelAuthorization(alice, nonce, abi.encodePacked(r, s, v));
    }

    function test_RevertWhen_cancelAuthorizationWrongSigner() public {
        bytes32 nonce = keccak256("c3");
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(0xBAD, _digest(keccak256(abi.encode(CANCEL_TYPEHASH, alice, nonce))));
        vm.expectRevert(IATNToken.ATNTokenInvalidSignature.selector);
        token.cancelAuthorization(alice, nonce, v, r, s);
        assertFalse(token.authorizationState(alice, nonce));
    }

    // ------------------------------------------------------------------ permit / votes

    function test_permit_setsAllowance() public {
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, alice, bob, 7e18, token.nonces(alice), deadline));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(alicePk, _digest(structHash));
        token.permit(alice, bob, 7e18, deadline, v, r, s);
        assertEq(token.allowance(alice, bob), 7e18);
        assertEq(token.nonces(alice), 1);
        vm.prank(bob);
        assertTrue(token.transferFrom(alice, bob, 7e18));
        assertEq(token.balanceOf(bob), 7e18);
    }

    function test_delegate_getVotesAndPastVotes() public {
        assertEq(token.getVotes(alice), 0);
        vm.prank(alice);
        token.delegate(alice);
        assertEq(token.getVotes(alice), 1000e18);
        uint256 blk = block.number;
        vm.roll(blk + 1);
        vm.prank(alice);
        assertTrue(token.transfer(bob, 400e18));
        assertEq(token.getVotes(alice), 600e18);
        assertEq(token.getPastVotes(alice, blk), 1000e18);
        vm.roll(blk + 2);
        assertEq(token.getPastTotalSupply(blk + 1), 1_000_000e18);
    }
}
