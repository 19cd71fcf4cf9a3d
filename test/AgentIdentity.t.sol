// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {AgentIdentity} from "../contracts/AgentIdentity.sol";
import {IAgentIdentity} from "../contracts/interfaces/IAgentIdentity.sol";
import {MockWallet1271} from "./ATNToken.t.sol";

contract AgentIdentityTest is Test {
    AgentIdentity internal identity;
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");
    address internal operator = makeAddr("operator");
    uint256 internal walletPk = 0xFEED;
    address internal wallet;

    bytes32 internal constant WALLET_TYPEHASH =
        keccak256("AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)");

    function setUp() public {
        vm.warp(1_000_000);
        identity = new AgentIdentity();
        wallet = vm.addr(walletPk);
    }

    function _domain() internal view returns (bytes32) {
        (, string memory name, string memory version, uint256 chainId, address verifying,,) =
            identity.eip712Domain();
        return keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256(bytes(name)),
                keccak256(bytes(version)),
                chainId,
                verifying
            )
        );
    }

    function _walletSig(uint256 pk, uint256 agentId, address newWallet, address owner_, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        bytes32 structHash = keccak256(abi.encode(WALLET_TYPEHASH, agentId, newWallet, owner_, deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", _domain(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _register(address who, string memory uri) internal returns (uint256 id) {
        vm.prank(who);
        id = identity.register(uri);
    }

    // ------------------------------------------------------------------ register

    function test_register_noUri() public {
        vm.expectEmit(true, true, false, true, address(identity));
        emit IAgentIdentity.Registered(1, "", alice);
        vm.prank(alice);
        uint256 id = identity.register();
        assertEq(id, 1);
        assertEq(identity.ownerOf(1), alice);
        assertEq(identity.getAgentWallet(1), alice);
        assertEq(identity.name(), "Autonet Agent");
        assertEq(identity.symbol(), "AGENT");
        assertEq(identity.totalAgents(), 1);
    }

    function test_register_withUriSetsTokenUri() public {
        uint256 id = _register(alice, "https://node.example/agent.json");
        assertEq(identity.tokenURI(id), "https://node.example/agent.json");
        uint256 id2 = _register(bob, "ipfs://b");
        assertEq(id2, 2);
        assertEq(identity.ownerOf(2), bob);
    }

    function test_register_withMetadata() public {
        IAgentIdentity.MetadataEntry[] memory md = new IAgentIdentity.MetadataEntry[](2);
        md[0] = IAgentIdentity.MetadataEntry("endpoint", bytes("http://1.2.3.4:8080"));
        md[1] = IAgentIdentity.MetadataEntry("role", abi.encode(uint8(2)));
        vm.expectEmit(true, true, false, true, address(identity));
        emit IAgentIdentity.MetadataSet(1, "endpoint", "endpoint", bytes("http://1.2.3.4:8080"));
        vm.prank(alice);
        uint256 id = identity.register("ipfs://a", md);
        assertEq(identity.getMetadata(id, "endpoint"), bytes("http://1.2.3.4:8080"));
        assertEq(identity.getMetadata(id, "role"), abi.encode(uint8(2)));
        assertEq(identity.getMetadata(id, "agentWallet"), abi.encodePacked(alice));
    }

    function test_RevertWhen_registerWithReservedKey() public {
        IAgentIdentity.MetadataEntry[] memory md = new IAgentIdentity.MetadataEntry[](1);
        md[0] = IAgentIdentity.MetadataEntry("agentWallet", abi.encodePacked(bob));
        vm.expectRevert(IAgentIdentity.AgentIdentityReservedKey.selector);
        vm.prank(alice);
        identity.register("ipfs://a", md);
        assertEq(identity.totalAgents(), 0);
    }

    function test_RevertWhen_registerTooManyEntries() public {
        uint256 max = identity.MAX_METADATA_ENTRIES();
        IAgentIdentity.MetadataEntry[] memory md = new IAgentIdentity.MetadataEntry[](max + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IAgentIdentity.AgentIdentityTooManyEntries.selector, max + 1, max)
        );
        vm.prank(alice);
        identity.register("ipfs://a", md);
    }

    // ------------------------------------------------------------------ URI / metadata

    function test_setAgentURI_byOwnerAndOperator() public {
        uint256 id = _register(alice, "ipfs://old");
        vm.expectEmit(true, true, false, true, address(identity));
        emit IAgentIdentity.URIUpdated(id, "ipfs://new", alice);
        vm.prank(alice);
        identity.setAgentURI(id, "ipfs://new");
        assertEq(identity.tokenURI(id), "ipfs://new");

        vm.prank(alice);
        identity.setApprovalForAll(operator, true);
        assertTrue(identity.isAuthorizedOrOwner(operator, id));
        vm.prank(operator);
        identity.setAgentURI(id, "ipfs://op");
        assertEq(identity.tokenURI(id), "ipfs://op");
    }

    function test_RevertWhen_setAgentURIByStranger() public {
        uint256 id = _register(alice, "ipfs://old");
        assertFalse(identity.isAuthorizedOrOwner(bob, id));
        vm.expectRevert(abi.encodeWithSelector(IAgentIdentity.AgentIdentityNotAuthorized.selector, bob, id));
        vm.prank(bob);
        identity.setAgentURI(id, "ipfs://evil");
    }

    function test_RevertWhen_unknownAgent() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 42));
        identity.getAgentWallet(42);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 42));
        identity.setAgentURI(42, "x");
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 42));
        identity.isAuthorizedOrOwner(alice, 42);
    }

    function test_setMetadata_byApprovedAccount() public {
        uint256 id = _register(alice, "");
        vm.prank(alice);
        identity.approve(bob, id);
        vm.prank(bob);
        identity.setMetadata(id, "endpoint", bytes("http://x"));
        assertEq(identity.getMetadata(id, "endpoint"), bytes("http://x"));
    }

    function test_RevertWhen_setMetadataReservedOrStranger() public {
        uint256 id = _register(alice, "");
        vm.expectRevert(IAgentIdentity.AgentIdentityReservedKey.selector);
        vm.prank(alice);
        identity.setMetadata(id, "agentWallet", abi.encodePacked(bob));
        vm.expectRevert(abi.encodeWithSelector(IAgentIdentity.AgentIdentityNotAuthorized.selector, bob, id));
        vm.prank(bob);
        identity.setMetadata(id, "endpoint", "x");
    }

    function testFuzz_setMetadata_roundTrip(string calldata key, bytes calldata value) public {
        vm.assume(keccak256(bytes(key)) != keccak256("agentWallet"));
        uint256 id = _register(alice, "");
        vm.prank(alice);
        identity.setMetadata(id, key, value);
        assertEq(identity.getMetadata(id, key), value);
    }

    // ------------------------------------------------------------------ wallet

    function test_setAgentWallet_withProof() public {
        uint256 id = _register(alice, "");
        uint256 deadline = block.timestamp + 5 minutes;
        bytes memory sig = _walletSig(walletPk, id, wallet, alice, deadline);
        vm.expectEmit(true, true, false, true, address(identity));
        emit IAgentIdentity.MetadataSet(id, "agentWallet", "agentWallet", abi.encodePacked(wallet));
        vm.prank(alice);
        identity.setAgentWallet(id, wallet, deadline, sig);
        assertEq(identity.getAgentWallet(id), wallet);
        assertEq(identity.getMetadata(id, "agentWallet"), abi.encodePacked(wallet));
    }

    function test_setAgentWallet_erc1271() public {
        MockWallet1271 w = new MockWallet1271(vm.addr(walletPk));
        uint256 id = _register(alice, "");
        uint256 deadline = block.timestamp + 60;
        bytes memory sig = _walletSig(walletPk, id, address(w), alice, deadline);
        vm.prank(alice);
        identity.setAgentWallet(id, address(w), deadline, sig);
        assertEq(identity.getAgentWallet(id), address(w));
    }

    function test_RevertWhen_setAgentWalletBadProof() public {
        uint256 id = _register(alice, "");
        uint256 deadline = block.timestamp + 60;
        bytes memory sig = _walletSig(0xBAD, id, wallet, alice, deadline);
        vm.expectRevert(IAgentIdentity.AgentIdentityInvalidWalletSignature.selector);
        vm.prank(alice);
        identity.setAgentWallet(id, wallet, deadline, sig);
    }

    function test_RevertWhen_setAgentWalletDeadlineOutOfRange() public {
        uint256 id = _register(alice, "");
        uint256 far = block.timestamp + 5 minutes + 1;
        bytes memory sig = _walletSig(walletPk, id, wallet, alice, far);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentIdentity.AgentIdentityDeadlineTooFar.selector, far, block.timestamp + 5 minutes
            )
        );
        vm.prank(alice);
        identity.setAgentWallet(id, wallet, far, sig);

        uint256 past = block.timestamp - 1;
        sig = _walletSig(walletPk, id, wallet, alice, past);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAgentIdentity.AgentIdentityDeadlineExpired.selector, past, block.timestamp
            )
        );
        vm.prank(alice);
        identity.setAgentWallet(id, wallet, past, sig);
    }

    function test_RevertWhen_setAgentWalletZeroOrStranger() public {
        uint256 id = _register(alice, "");
        vm.expectRevert(IAgentIdentity.AgentIdentityZeroWallet.selector);
        vm.prank(alice);
        identity.setAgentWallet(id, address(0), block.timestamp, "");
        vm.expectRevert(abi.encodeWithSelector(IAgentIdentity.AgentIdentityNotAuthorized.selector, bob, id));
        vm.prank(bob);
        identity.setAgentWallet(id, wallet, block.timestamp, "");
    }

    function test_unsetAgentWallet_clears() public {
        uint256 id = _register(alice, "");
        vm.prank(alice);
        identity.unsetAgentWallet(id);
        assertEq(identity.getAgentWallet(id), address(0));
        assertEq(identity.getMetadata(id, "agentWallet").length, 0);
        vm.expectRevert(abi.encodeWithSelector(IAgentIdentity.AgentIdentityNotAuthorized.selector, bob, id));
        vm.prank(bob);
        identity.unsetAgentWallet(id);
    }

    function test_transfer_clearsWallet() public {
        uint256 id = _register(alice, "");
        vm.prank(alice);
        identity.transferFrom(alice, bob, id);
        assertEq(identity.ownerOf(id), bob);
        assertEq(identity.getAgentWallet(id), address(0));
        assertTrue(identity.isAuthorizedOrOwner(bob, id));
        assertFalse(identity.isAuthorizedOrOwner(alice, id));
    }

    function testFuzz_setAgentWallet_deadlineWindow(uint256 delay) public {
        delay = bound(delay, 0, 10 minutes);
        uint256 id = _register(alice, "");
        uint256 deadline = block.timestamp + delay;
        bytes memory sig = _walletSig(walletPk, id, wallet, alice, deadline);
        if (delay > 5 minutes) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAgentIdentity.AgentIdentityDeadlineTooFar.selector, deadline, block.timestamp + 5 minutes
                )
            );
        }
        vm.prank(alice);
        identity.setAgentWallet(id, wallet, deadline, sig);
        assertEq(identity.getAgentWallet(id), delay > 5 minutes ? alice : wallet);
    }
}
