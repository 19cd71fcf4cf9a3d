// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title BN254
/// @notice BN254 (alt_bn128) points, hash to G1 and the BLS aggregate check, on the EIP-196/197
/// precompiles (0x06 add, 0x07 mul, 0x08 pairing) and EIP-198 (0x05 modexp). The Rust twin is
/// `crates/bls`; both check the shared vectors in `test/vectors/bls/`.
/// @dev Conventions (EigenLayer's BN254 / BLSSignatureChecker): G2 coordinates are stored
/// imaginary part first, `X = [x.c1, x.c0]`, `Y = [y.c1, y.c0]`; the point at infinity is all zeros.
library BN254 {
    /// @notice The base field modulus p.
    uint256 internal constant P =
        21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// @notice The group order r.
    uint256 internal constant R =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice (p + 1) / 4: the square-root exponent (p ≡ 3 mod 4).
    uint256 internal constant SQRT_EXP =
        5472060717959818805561601436314318772174077789324455915672259473661306552146;

    // The generator of G2, imaginary parts first.
    uint256 internal constant G2_X0 =
        11559732032986387107991004021392285783925812861821192530917403151452391805634;
    uint256 internal constant G2_X1 =
        10857046999023057135944570762232829481370756359578518086990519993285655852781;
    uint256 internal constant G2_Y0 =
        4082367875863433681332203403145435568316851327593401208105741076214120093531;
    uint256 internal constant G2_Y1 =
        8495653923123431417604973247489272438418190587263600148770280649306958101930;

    // Gas handed to each precompile: a failing precompile burns all it was given, so each call
    // gets a cap well above its price (EIP-1108: add 150, mul 6000, pairing 45000 + 34000·k;
    // EIP-2565: modexp of 32-byte operands ≈ 1350) instead of all remaining gas.
    uint256 private constant ADD_GAS = 1_000;
    uint256 private constant MUL_GAS = 10_000;
    uint256 private constant PAIRING2_GAS = 150_000;
    uint256 private constant MODEXP_GAS = 10_000;

    struct G1Point {
        uint256 X;
        uint256 Y;
    }

    struct G2Point {
        uint256[2] X;
        uint256[2] Y;
    }

    /// @notice A precompile call failed (bad point encoding or out of gas).
    error PrecompileFailed(uint256 precompile);

    /// @notice The generator of G1.
    function generatorG1() internal pure returns (G1Point memory) {
        return G1Point(1, 2);
    }

    /// @notice The negated generator of G2 (`(X, -Y)`).
    function negGeneratorG2() internal pure returns (G2Point memory) {
        return G2Point([G2_X0, G2_X1], [P - G2_Y0, P - G2_Y1]);
    }

    /// @notice -p.
    function negate(G1Point memory p) internal pure returns (G1Point memory) {
        if (p.X == 0 && p.Y == 0) return G1Point(0, 0);
        return G1Point(p.X, P - (p.Y % P));
    }

    /// @notice a + b (precompile 0x06). Reverts with `PrecompileFailed(6)` on a point off the curve.
    function plus(G1Point memory a, G1Point memory b) internal view returns (G1Point memory r) {
        uint256[4] memory input = [a.X, a.Y, b.X, b.Y];
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(ADD_GAS, 0x06, input, 0x80, r, 0x40)
        }
        if (!ok) revert PrecompileFailed(6);
    }

    /// @notice s·p (precompile 0x07).
    function scalarMul(G1Point memory p, uint256 s) internal view returns (G1Point memory r) {
        uint256[3] memory input = [p.X, p.Y, s];
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(MUL_GAS, 0x07, input, 0x60, r, 0x40)
        }
        if (!ok) revert PrecompileFailed(7);
    }

    /// @notice Whether e(a1, a2) · e(b1, b2) = 1 (precompile 0x08). `success` is false when the
    /// precompile rejected the input (a point off the curve or outside the subgroup), in which
    /// case `valid` is false too; callers treat both as an invalid signature.
    function pairing2(G1Point memory a1, G2Point memory a2, G1Point memory b1, G2Point memory b2)
        internal
        view
        returns (bool success, bool valid)
    {
        uint256[12] memory input = [
            a1.X, a1.Y, a2.X[0], a2.X[1], a2.Y[0], a2.Y[1], b1.X, b1.Y, b2.X[0], b2.X[1], b2.Y[0], b2.Y[1]
        ];
        uint256[1] memory out;
        assembly ("memory-safe") {
            success := staticcall(PAIRING2_GAS, 0x08, input, 0x180, out, 0x20)
        }
        valid = success && out[0] == 1;
    }

    /// @notice Hash a 32-byte message to G1: x = uint256(m) mod p; loop { β = x³ + 3;
    /// y = β^((p+1)/4); if y² = β return (x, y); x += 1 }. About half of all x succeed, so the
    /// expected number of tries is two.
    function hashToG1(bytes32 message) internal view returns (G1Point memory) {
        uint256 x = uint256(message) % P;
        while (true) {
            uint256 beta = addmod(mulmod(mulmod(x, x, P), x, P), 3, P);
            uint256 y = _expMod(beta, SQRT_EXP);
            if (mulmod(y, y, P) == beta) return G1Point(x, y);
            x = addmod(x, 1, P);
        }
        revert(); // unreachable
    }

    /// @notice γ = keccak256(m ‖ apk ‖ apkG2 ‖ σ) mod r: binds the G1 key to its G2 twin.
    function gamma(bytes32 message, G1Point memory apk, G2Point memory apkG2, G1Point memory sigma)
        internal
        pure
        returns (uint256)
    {
        return uint256(
            keccak256(
            abi.encodePacked(
            message, apk.X, apk.Y, apkG2.X[0], apkG2.X[1], apkG2.Y[0], apkG2.Y[1], sigma.X, sigma.Y
        )
        )
        ) % R;
    }

    /// @notice Whether `sigma` is a BLS signature of `message` under the key whose G1 half is
    /// `apk` and G2 half `apkG2` (an aggregate verifies under the sum of the signers' keys):
    /// e(σ + γ·apk, −G2) · e(H(m) + γ·G1, apkG2) = 1.
    function verify(bytes32 message, G1Point memory apk, G2Point memory apkG2, G1Point memory sigma)
        internal
        view
        returns (bool)
    {
        uint256 g = gamma(message, apk, apkG2, sigma);
        G1Point memory left = plus(sigma, scalarMul(apk, g));
        G1Point memory right = plus(hashToG1(message), scalarMul(generatorG1(), g));
        (, bool valid) = pairing2(left, negGeneratorG2(), right, apkG2);
        return valid;
    }

    /// @notice Whether (x, y) is on the curve y² = x³ + 3 (or is the point at infinity).
    function isOnCurve(G1Point memory p) internal pure returns (bool) {
        if (p.X == 0 && p.Y == 0) return true;
        if (p.X >= P || p.Y >= P) return false;
        return mulmod(p.Y, p.Y, P) == addmod(mulmod(mulmod(p.X, p.X, P), p.X, P), 3, P);
    }

    function _expMod(uint256 base, uint256 exponent) private view returns (uint256 result) {
        uint256[6] memory input = [uint256(32), 32, 32, base, exponent, P];
        uint256[1] memory out;
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(MODEXP_GAS, 0x05, input, 0xc0, out, 0x20)
        }
        if (!ok) revert PrecompileFailed(5);
        result = out[0];
    }
}
