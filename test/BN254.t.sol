// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {BN254} from "../contracts/libraries/BN254.sol";

/// @dev External entry points so reverts and gas are observable per call.
contract BN254Harness {
    function verify(
        bytes32 m,
        BN254.G1Point memory apk,
        BN254.G2Point memory apkG2,
        BN254.G1Point memory sigma
    ) external view returns (bool) {
        return BN254.verify(m, apk, apkG2, sigma);
    }

    function hashToG1(bytes32 m) external view returns (BN254.G1Point memory) {
        return BN254.hashToG1(m);
    }
}

/// @notice The BN254 library against the vectors the Rust crate `autonet-bls` writes
/// (`test/vectors/bls/`): every verdict, hash and message must agree.
contract BN254Test is Test {
    BN254Harness internal h;
    string internal verifyJson;
    string internal popJson;

    function setUp() public {
        h = new BN254Harness();
        verifyJson = vm.readFile("./test/vectors/bls/verify.json");
        popJson = vm.readFile("./test/vectors/bls/pop.json");
    }

    function _at(string memory list, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(".", list, "[", vm.toString(i), "].", field);
    }

    function _g1(string memory json, string memory path) internal pure returns (BN254.G1Point memory p) {
        uint256[] memory w = vm.parseJsonUintArray(json, path);
        assertEq(w.length, 2, "G1 is two words");
        p = BN254.G1Point(w[0], w[1]);
    }

    function _g2(string memory json, string memory path) internal pure returns (BN254.G2Point memory p) {
        uint256[] memory w = vm.parseJsonUintArray(json, path);
        assertEq(w.length, 4, "G2 is four words");
        p = BN254.G2Point([w[0], w[1]], [w[2], w[3]]);
    }

    function test_constantsMatchTheRustCrate() public view {
        string memory c = vm.readFile("./test/vectors/bls/constants.json");
        assertEq(vm.parseJsonUint(c, ".fieldModulus"), BN254.P);
        assertEq(vm.parseJsonUint(c, ".groupOrder"), BN254.R);
        assertEq(BN254.SQRT_EXP, (BN254.P + 1) / 4);
        uint256[] memory g2 = vm.parseJsonUintArray(c, ".g2");
        assertEq(g2[0], BN254.G2_X0);
        assertEq(g2[1], BN254.G2_X1);
        assertEq(g2[2], BN254.G2_Y0);
        assertEq(g2[3], BN254.G2_Y1);
        assertEq(vm.parseJsonBytes32(c, ".popDomain"), keccak256("autonet.bls.pop.v1"));
        assertEq(vm.parseJsonBytes32(c, ".attestationDomain"), keccak256("autonet.bls.attestation.v2"));
    }

    function test_verify_agreesWithEveryVector() public view {
        uint256 n = vm.parseJsonUint(verifyJson, ".count");
        uint256 valid;
        for (uint256 i; i < n; ++i) {
            bytes32 m = vm.parseJsonBytes32(verifyJson, _at("cases", i, "message"));
            bool expected = vm.parseJsonBool(verifyJson, _at("cases", i, "valid"));
            bool got = h.verify(
                m,
                _g1(verifyJson, _at("cases", i, "apkG1")),
                _g2(verifyJson, _at("cases", i, "apkG2")),
                _g1(verifyJson, _at("cases", i, "sigma"))
            );
            assertEq(got, expected, vm.parseJsonString(verifyJson, _at("cases", i, "name")));
            if (got) ++valid;
        }
        assertGe(n, 14, "vectors missing");
        assertEq(valid, 4, "one valid aggregate per size");
    }

    function test_messagesAndHashToG1AgreeWithTheRustCrate() public view {
        uint256 n = vm.parseJsonUint(verifyJson, ".messageCount");
        for (uint256 i; i < n; ++i) {
            bytes32 m = keccak256(
                abi.encode(
                    keccak256("autonet.bls.attestation.v2"),
                    vm.parseJsonUint(verifyJson, _at("messages", i, "chainId")),
                    vm.parseJsonAddress(verifyJson, _at("messages", i, "contract")),
                    vm.parseJsonUint(verifyJson, _at("messages", i, "projectId")),
                    vm.parseJsonBytes32(verifyJson, _at("messages", i, "parentRoot")),
                    vm.parseJsonBytes32(verifyJson, _at("messages", i, "newRoot")),
                    vm.parseJsonBytes32(verifyJson, _at("messages", i, "manifestHash")),
                    vm.parseJsonAddress(verifyJson, _at("messages", i, "publisher")),
                    vm.parseJsonUint(verifyJson, _at("messages", i, "publishedBlock")),
                    vm.parseJsonUintArray(verifyJson, _at("messages", i, "taskIds"))
                )
            );
            assertEq(m, vm.parseJsonBytes32(verifyJson, _at("messages", i, "message")), "attestation message");
            BN254.G1Point memory p = h.hashToG1(m);
            BN254.G1Point memory want = _g1(verifyJson, _at("messages", i, "hashToG1"));
            assertEq(p.X, want.X, "hashToG1 x");
            assertEq(p.Y, want.Y, "hashToG1 y");
            assertTrue(BN254.isOnCurve(p));
        }
        assertEq(n, 4);
    }

    function test_proofOfPossession_agreesWithEveryVector() public view {
        uint256 n = vm.parseJsonUint(popJson, ".count");
        for (uint256 i; i < n; ++i) {
            BN254.G1Point memory pk = _g1(popJson, _at("cases", i, "pkG1"));
            BN254.G2Point memory pk2 = _g2(popJson, _at("cases", i, "pkG2"));
            bytes32 m = keccak256(
                abi.encode(
                    keccak256("autonet.bls.pop.v1"),
                    vm.parseJsonUint(popJson, _at("cases", i, "chainId")),
                    vm.parseJsonAddress(popJson, _at("cases", i, "contract")),
                    vm.parseJsonAddress(popJson, _at("cases", i, "operator")),
                    pk.X,
                    pk.Y,
                    pk2.X,
                    pk2.Y
                )
            );
            assertEq(m, vm.parseJsonBytes32(popJson, _at("cases", i, "message")), "pop message");
            bool got = h.verify(m, pk, pk2, _g1(popJson, _at("cases", i, "pop")));
            assertEq(
                got,
                vm.parseJsonBool(popJson, _at("cases", i, "valid")),
                vm.parseJsonString(popJson, _at("cases", i, "name"))
            );
        }
        assertEq(n, 3);
    }

    function test_verify_revertsOnAPointOffTheCurve() public {
        bytes32 m = vm.parseJsonBytes32(verifyJson, _at("cases", 0, "message"));
        BN254.G1Point memory sigma = _g1(verifyJson, _at("cases", 0, "sigma"));
        sigma.Y = addmod(sigma.Y, 1, BN254.P);
        vm.expectRevert(abi.encodeWithSelector(BN254.PrecompileFailed.selector, 6));
        h.verify(
            m, _g1(verifyJson, _at("cases", 0, "apkG1")), _g2(verifyJson, _at("cases", 0, "apkG2")), sigma
        );
    }

    function test_negate_addsToInfinity() public view {
        BN254.G1Point memory g = BN254.hashToG1(keccak256("x"));
        BN254.G1Point memory z = BN254.plus(g, BN254.negate(g));
        assertEq(z.X, 0);
        assertEq(z.Y, 0);
        BN254.G1Point memory zz = BN254.negate(BN254.G1Point(0, 0));
        assertEq(zz.Y, 0);
    }

    /// @dev Gas of one check: the same for an aggregate of 1 and of 32 signers (index 0 vs the
    /// last size's valid case).
    function test_verifyGas_isFlatInTheNumberOfSigners() public {
        uint256 n = vm.parseJsonUint(verifyJson, ".count");
        uint256[] memory gasUsed = new uint256[](2);
        uint256 k;
        for (uint256 i; i < n && k < 2; ++i) {
            string memory name = vm.parseJsonString(verifyJson, _at("cases", i, "name"));
            if (
                keccak256(bytes(name)) != keccak256("aggregate of 1")
                    && keccak256(bytes(name)) != keccak256("aggregate of 32")
            ) {
                continue;
            }
            bytes32 m = vm.parseJsonBytes32(verifyJson, _at("cases", i, "message"));
            BN254.G1Point memory apk = _g1(verifyJson, _at("cases", i, "apkG1"));
            BN254.G2Point memory apk2 = _g2(verifyJson, _at("cases", i, "apkG2"));
            BN254.G1Point memory sigma = _g1(verifyJson, _at("cases", i, "sigma"));
            uint256 before = gasleft();
            assertTrue(h.verify(m, apk, apk2, sigma));
            gasUsed[k++] = before - gasleft();
        }
        assertEq(k, 2);
        // hash-to-curve tries differ per message (~1.5k gas each); the pairing dominates.
        uint256 diff = gasUsed[0] > gasUsed[1] ? gasUsed[0] - gasUsed[1] : gasUsed[1] - gasUsed[0];
        assertLt(diff, 10_000, "verification cost must not grow with the signers");
        emit log_named_uint("verify gas, 1 signer", gasUsed[0]);
        emit log_named_uint("verify gas, 32 signers", gasUsed[1]);
    }
}
