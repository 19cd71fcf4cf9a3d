// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Registry} from "../contracts/Registry.sol";
import {IRegistry} from "../contracts/interfaces/IRegistry.sol";

contract RegistryTest is Test {
    Registry internal registry;
    address internal admin = makeAddr("admin");
    address internal stranger = makeAddr("stranger");

    function setUp() public {
        registry = new Registry(admin);
    }

    function test_setAddress_storesAndEmits() public {
        address v = makeAddr("staking");
        vm.expectEmit(true, false, false, true, address(registry));
        emit IRegistry.AddressSet(keccak256("contract.ParticipantStaking"), "contract.ParticipantStaking", v);
        vm.prank(admin);
        registry.setAddress("contract.ParticipantStaking", v);
        assertEq(registry.getAddress("contract.ParticipantStaking"), v);
        assertTrue(registry.isSet("contract.ParticipantStaking"));
        assertEq(uint8(registry.typeOf("contract.ParticipantStaking")), uint8(IRegistry.ValueType.Address));
    }

    function test_setUint_overwrites() public {
        vm.startPrank(admin);
        registry.setUint("param.kappa", 5000);
        registry.setUint("param.kappa", 6000);
        vm.stopPrank();
        assertEq(registry.getUint("param.kappa"), 6000);
    }

    function test_setBytes32_tryGetBytes32() public {
        bytes32 h = keccak256("binary");
        (bool set, bytes32 value) = registry.tryGetBytes32("node.code.hash.0.1.0");
        assertFalse(set);
        assertEq(value, bytes32(0));
        vm.expectEmit(true, false, false, true, address(registry));
        emit IRegistry.Bytes32Set(keccak256("node.code.hash.0.1.0"), "node.code.hash.0.1.0", h);
        vm.prank(admin);
        registry.setBytes32("node.code.hash.0.1.0", h);
        (set, value) = registry.tryGetBytes32("node.code.hash.0.1.0");
        assertTrue(set);
        assertEq(value, h);
        assertEq(registry.getBytes32("node.code.hash.0.1.0"), h);
    }

    function test_tryGetBytes32_falseForOtherType() public {
        vm.prank(admin);
        registry.setUint("x", 1);
        (bool set,) = registry.tryGetBytes32("x");
        assertFalse(set);
    }

    function test_setString_stores() public {
        vm.expectEmit(true, false, false, true, address(registry));
        emit IRegistry.StringSet(keccak256("net.bootstrap"), "net.bootstrap", "http://node:8080");
        vm.prank(admin);
        registry.setString("net.bootstrap", "http://node:8080");
        assertEq(registry.getString("net.bootstrap"), "http://node:8080");
    }

    function test_setAddresses_batch() public {
        string[] memory keys = new string[](2);
        address[] memory values = new address[](2);
        keys[0] = "contract.A";
        keys[1] = "contract.B";
        values[0] = address(0xA);
        values[1] = address(0xB);
        vm.prank(admin);
        registry.setAddresses(keys, values);
        assertEq(registry.getAddress("contract.A"), address(0xA));
        assertEq(registry.getAddress("contract.B"), address(0xB));
    }

    function test_remove_clearsKey() public {
        vm.startPrank(admin);
        registry.setBytes32("k", bytes32(uint256(1)));
        vm.expectEmit(true, false, false, true, address(registry));
        emit IRegistry.KeyRemoved(keccak256("k"), "k");
        registry.remove("k");
        registry.setUint("k", 7); // the key may be reused with another type once removed
        vm.stopPrank();
        assertEq(registry.getUint("k"), 7);
        (bool set,) = registry.tryGetBytes32("k");
        assertFalse(set);
    }

    function test_RevertWhen_getUnsetKey() public {
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryKeyNotSet.selector, "missing"));
        registry.getAddress("missing");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryKeyNotSet.selector, "missing"));
        registry.getUint("missing");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryKeyNotSet.selector, "missing"));
        registry.getBytes32("missing");
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryKeyNotSet.selector, "missing"));
        registry.getString("missing");
        assertFalse(registry.isSet("missing"));
    }

    function test_RevertWhen_getWithWrongType() public {
        vm.prank(admin);
        registry.setUint("n", 1);
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryKeyNotSet.selector, "n"));
        registry.getAddress("n");
    }

    function test_RevertWhen_setWithOtherType() public {
        vm.startPrank(admin);
        registry.setUint("n", 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRegistry.RegistryTypeMismatch.selector,
                "n",
                IRegistry.ValueType.Uint,
                IRegistry.ValueType.Address
            )
        );
        registry.setAddress("n", address(1));
        vm.stopPrank();
    }

    function test_RevertWhen_emptyKey() public {
        vm.expectRevert(IRegistry.RegistryEmptyKey.selector);
        vm.prank(admin);
        registry.setUint("", 1);
    }

    function test_RevertWhen_removeUnsetKey() public {
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryKeyNotSet.selector, "nope"));
        vm.prank(admin);
        registry.remove("nope");
    }

    function test_RevertWhen_nonAdminSets() public {
        bytes memory err = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, registry.DEFAULT_ADMIN_ROLE()
        );
        vm.startPrank(stranger);
        vm.expectRevert(err);
        registry.setAddress("a", address(1));
        vm.expectRevert(err);
        registry.setUint("a", 1);
        vm.expectRevert(err);
        registry.setBytes32("a", bytes32(0));
        vm.expectRevert(err);
        registry.setString("a", "x");
        vm.expectRevert(err);
        registry.setAddresses(new string[](0), new address[](0));
        vm.expectRevert(err);
        registry.remove("a");
        vm.stopPrank();
    }

    function test_RevertWhen_batchLengthMismatch() public {
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryLengthMismatch.selector, 2, 1));
        vm.prank(admin);
        registry.setAddresses(new string[](2), new address[](1));
    }

    function test_RevertWhen_batchTooLarge() public {
        uint256 max = registry.MAX_BATCH();
        vm.expectRevert(abi.encodeWithSelector(IRegistry.RegistryBatchTooLarge.selector, max + 1, max));
        vm.prank(admin);
        registry.setAddresses(new string[](max + 1), new address[](max + 1));
    }

    function testFuzz_setUint_roundTrip(string calldata key, uint256 value) public {
        vm.assume(bytes(key).length > 0);
        vm.prank(admin);
        registry.setUint(key, value);
        assertEq(registry.getUint(key), value);
        assertTrue(registry.isSet(key));
    }

    function testFuzz_setBytes32_independentKeys(bytes32 a, bytes32 b) public {
        vm.startPrank(admin);
        registry.setBytes32("node.code.hash.1", a);
        registry.setBytes32("node.code.hash.2", b);
        vm.stopPrank();
        assertEq(registry.getBytes32("node.code.hash.1"), a);
        assertEq(registry.getBytes32("node.code.hash.2"), b);
    }
}
