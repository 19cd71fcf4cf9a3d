// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {VmSafe} from "forge-std/Vm.sol";
import {YumaConsensus} from "../contracts/libraries/YumaConsensus.sol";

/// @notice The consensus library against the shared vectors (exact equality), hand-computed cases and properties.
contract YumaConsensusTest is Test {
    uint256 internal constant WAD = 1e18;
    uint256 internal constant KAPPA = 5e17;
    uint256 internal constant ALPHA = 1e17;

    // ------------------------------------------------------------------ shared vectors

    function test_compute_matchesEveryVector() public {
        VmSafe.DirEntry[] memory entries = vm.readDir("./test/vectors/consensus");
        uint256 checked;
        for (uint256 e; e < entries.length; ++e) {
            string memory path = entries[e].path;
            if (entries[e].isDir || !vm.contains(path, ".json")) continue;
            _checkVector(vm.readFile(path));
            ++checked;
        }
        assertGe(checked, 9, "vectors missing");
    }

    function _checkVector(string memory json) internal pure {
        string memory name = vm.parseJsonString(json, ".name");
        uint256[] memory stakes = vm.parseJsonUintArray(json, ".stakes");
        uint256 n = stakes.length;
        uint16[][] memory scores = new uint16[][](n);
        uint256[][] memory prev = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            string memory idx = vm.toString(i);
            uint256[] memory row = vm.parseJsonUintArray(json, string.concat(".scores[", idx, "]"));
            scores[i] = new uint16[](row.length);
            for (uint256 j; j < row.length; ++j) {
                scores[i][j] = uint16(row[j]);
            }
            prev[i] = vm.parseJsonUintArray(json, string.concat(".prevBonds[", idx, "]"));
        }
        YumaConsensus.Result memory r = YumaConsensus.compute(
            stakes, scores, prev, vm.parseJsonUint(json, ".kappa"), vm.parseJsonUint(json, ".alpha")
        );
        assertEq(
            r.consensus,
            vm.parseJsonUintArray(json, ".expected.consensus"),
            string.concat(name, ": consensus")
        );
        assertEq(
            r.incentive,
            vm.parseJsonUintArray(json, ".expected.incentive"),
            string.concat(name, ": incentive")
        );
        assertEq(
            r.dividends,
            vm.parseJsonUintArray(json, ".expected.dividends"),
            string.concat(name, ": dividends")
        );
        for (uint256 i; i < n; ++i) {
            assertEq(
                r.bonds[i],
                vm.parseJsonUintArray(json, string.concat(".expected.bonds[", vm.toString(i), "]")),
                string.concat(name, ": bonds")
            );
        }
    }

    // ------------------------------------------------------------------ hand-computed cases

    /// One coordinator, scores (3, 1):
    ///   S = [1e18]; W = [3/4, 1/4] = [0.75e18, 0.25e18]; a single row is its own κ-quantile: C = W;
    ///   W̄ = W; R = [0.75e18, 0.25e18]; I = R / ΣR = R;
    ///   ΔB = S·W̄ = [0.75e18, 0.25e18], each column has one entry ⇒ ΔBn = [1e18, 1e18]; B = 0 ⇒ Bn = 0;
    ///   B' = 0.1·1e18 = [1e17, 1e17]; D_raw = 1e17·0.75 + 1e17·0.25 = 1e17 ⇒ D = [1e18].
    function test_compute_singleCoordinator() public pure {
        uint256[] memory stakes = new uint256[](1);
        stakes[0] = 100;
        uint16[][] memory scores = new uint16[][](1);
        scores[0] = _row2(3, 1);
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, _zeros(1, 2), KAPPA, ALPHA);
        assertEq(r.consensus[0], 0.75e18);
        assertEq(r.consensus[1], 0.25e18);
        assertEq(r.incentive[0], 0.75e18);
        assertEq(r.incentive[1], 0.25e18);
        assertEq(r.bonds[0][0], 1e17);
        assertEq(r.bonds[0][1], 1e17);
        assertEq(r.dividends[0], 1e18);
    }

    /// Two equal coordinators that disagree completely, rows (1, 0) and (0, 1):
    ///   S = [0.5, 0.5]; W = identity. Column 0: candidate 1e18 has stake(≥1e18) = 0.5, and 0.5·1e18 is not more
    ///   than κ·ΣS = 0.5·1e18 ⇒ C = [0, 0]; W̄ = 0; R = 0; I = 0; ΔB = 0; B' = 0; D = 0.
    function test_compute_splitDisagreement() public pure {
        uint256[] memory stakes = new uint256[](2);
        stakes[0] = 1;
        stakes[1] = 1;
        uint16[][] memory scores = new uint16[][](2);
        scores[0] = _row2(1, 0);
        scores[1] = _row2(0, 1);
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, _zeros(2, 2), KAPPA, ALPHA);
        // Regression for review finding L-1 (fails on dc0035f, where `≥ κ` let each half set its own column to 1
        // and a self-scoring coordinator's Sybil took half the pool): exactly half of the stake is not more than
        // κ = 0.5, so neither column has a consensus, nobody earns incentive and no bond forms.
        assertEq(r.consensus[0], 0);
        assertEq(r.consensus[1], 0);
        assertEq(r.incentive[0], 0);
        assertEq(r.incentive[1], 0);
        assertEq(r.dividends[0], 0);
        assertEq(r.dividends[1], 0);
        assertEq(r.bonds[0][1], 0);
        assertEq(r.bonds[1][1], 0);
    }

    /// Stakes (2, 1, 1), rows (1, 1), (1, 1), (0, 2) — coordinator 2 deviates:
    ///   S = [0.5, 0.25, 0.25]; W = [[.5, .5], [.5, .5], [0, 1]].
    ///   Column 0: candidate .5 has stake .75 ≥ .5 ⇒ C0 = .5. Column 1: candidate 1 has stake .25 < .5, .5 has
    ///   1.0 ⇒ C1 = .5. W̄ = [[.5, .5], [.5, .5], [0, .5]] (the deviator's 1 is clipped to .5).
    ///   R0 = .5·.5 + .25·.5 = .375; R1 = .5·.5 + .25·.5 + .25·.5 = .5; I = [3/7, 4/7] floored =
    ///   [428571428571428571, 571428571428571428].
    ///   ΔB col 0 = [.25, .125, 0] ⇒ [2/3, 1/3, 0]; col 1 = [.25, .125, .125] ⇒ [.5, .25, .25]; B' = 0.1·ΔBn =
    ///   [[66666666666666666, 5e16], [33333333333333333, 2.5e16], [0, 2.5e16]].
    ///   D_raw ≈ [.0571, .0286, .0143] ⇒ D = [571428571428571431, 285714285714285715, 142857142857142852]:
    ///   the deviator earns the least, with no slashing.
    function test_compute_majorityClipsDeviator() public pure {
        uint256[] memory stakes = new uint256[](3);
        stakes[0] = 2;
        stakes[1] = 1;
        stakes[2] = 1;
        uint16[][] memory scores = new uint16[][](3);
        scores[0] = _row2(1, 1);
        scores[1] = _row2(1, 1);
        scores[2] = _row2(0, 2);
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, _zeros(3, 2), KAPPA, ALPHA);
        assertEq(r.consensus[0], 0.5e18);
        assertEq(r.consensus[1], 0.5e18);
        assertEq(r.incentive[0], 428571428571428571);
        assertEq(r.incentive[1], 571428571428571428);
        assertEq(r.bonds[0][0], 66666666666666666);
        assertEq(r.bonds[2][0], 0);
        assertEq(r.bonds[2][1], 2.5e16);
        assertEq(r.dividends[0], 571428571428571431);
        assertEq(r.dividends[1], 285714285714285715);
        assertEq(r.dividends[2], 142857142857142852);
    }

    /// Previous bonds column (0.3, 0.1) normalizes to (0.75, 0.25); with equal fresh ΔBn (0.5, 0.5):
    ///   B' = 0.1·0.5 + 0.9·0.75 = 0.725 and 0.1·0.5 + 0.9·0.25 = 0.275 — old bonds dominate (EMA).
    function test_compute_previousBondsDecayTowardsNewWeights() public pure {
        uint256[] memory stakes = new uint256[](2);
        stakes[0] = 1;
        stakes[1] = 1;
        uint16[][] memory scores = new uint16[][](2);
        scores[0] = _row2(1, 1);
        scores[1] = _row2(1, 1);
        uint256[][] memory prev = _zeros(2, 2);
        prev[0][0] = 3e17;
        prev[1][0] = 1e17;
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, prev, KAPPA, ALPHA);
        assertEq(r.bonds[0][0], 0.725e18);
        assertEq(r.bonds[1][0], 0.275e18);
        assertGt(r.dividends[0], r.dividends[1]);
    }

    function test_compute_allZeroScoresGiveNothing() public pure {
        uint256[] memory stakes = new uint256[](2);
        stakes[0] = 5;
        stakes[1] = 7;
        uint16[][] memory scores = new uint16[][](2);
        scores[0] = _row2(0, 0);
        scores[1] = _row2(0, 0);
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, _zeros(2, 2), KAPPA, ALPHA);
        assertEq(r.incentive[0] + r.incentive[1], 0);
        assertEq(r.dividends[0] + r.dividends[1], 0);
    }

    function test_compute_zeroTotalStakeGivesNothing() public pure {
        uint256[] memory stakes = new uint256[](2);
        uint16[][] memory scores = new uint16[][](2);
        scores[0] = _row2(1, 2);
        scores[1] = _row2(2, 1);
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, _zeros(2, 2), KAPPA, ALPHA);
        assertEq(r.consensus[0], 0);
        assertEq(r.incentive[0] + r.incentive[1], 0);
    }

    function test_compute_kappaOneTakesMinimum() public pure {
        uint256[] memory stakes = new uint256[](2);
        stakes[0] = 9;
        stakes[1] = 1;
        uint16[][] memory scores = new uint16[][](2);
        scores[0] = _row2(3, 1);
        scores[1] = _row2(1, 3);
        // κ = 0.95: only the minimum has more than 95% of the stake behind it.
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, _zeros(2, 2), 0.95e18, ALPHA);
        assertEq(r.consensus[0], 0.25e18);
        assertEq(r.consensus[1], 0.25e18);
        // κ = 1: nothing can have more than all the stake behind it.
        r = YumaConsensus.compute(stakes, scores, _zeros(2, 2), 1e18, ALPHA);
        assertEq(r.consensus[0], 0);
        // κ = 0 takes the maximum supported value.
        r = YumaConsensus.compute(stakes, scores, _zeros(2, 2), 0, ALPHA);
        assertEq(r.consensus[0], 0.75e18);
    }

    // ------------------------------------------------------------------ properties

    function testFuzz_compute_sumsBounded(uint256 seed, uint256 n, uint256 m, uint256 kappa, uint256 alpha)
        public
        pure
    {
        n = bound(n, 1, 8);
        m = bound(m, 1, 8);
        kappa = bound(kappa, 0, WAD);
        alpha = bound(alpha, 1, WAD);
        (uint256[] memory stakes, uint16[][] memory scores, uint256[][] memory prev) = _random(seed, n, m);
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, prev, kappa, alpha);
        uint256 sumI;
        for (uint256 j; j < m; ++j) {
            sumI += r.incentive[j];
            assertLe(r.consensus[j], WAD);
            uint256 colB;
            for (uint256 i; i < n; ++i) {
                colB += r.bonds[i][j];
            }
            assertLe(colB, WAD, "bond column > 1");
        }
        uint256 sumD;
        for (uint256 i; i < n; ++i) {
            sumD += r.dividends[i];
        }
        assertLe(sumI, WAD);
        assertLe(sumD, WAD);
        // Floors lose at most one unit per term when anything is positive.
        if (sumI != 0) assertGe(sumI, WAD - m);
        if (sumD != 0) assertGe(sumD, WAD - n);
    }

    function testFuzz_compute_coordinatorPermutationInvariant(
        uint256 seed,
        uint256 n,
        uint256 m,
        uint256 a,
        uint256 b
    ) public pure {
        n = bound(n, 2, 8);
        m = bound(m, 1, 8);
        a = bound(a, 0, n - 1);
        b = bound(b, 0, n - 1);
        (uint256[] memory stakes, uint16[][] memory scores, uint256[][] memory prev) = _random(seed, n, m);
        YumaConsensus.Result memory r1 = YumaConsensus.compute(stakes, scores, prev, KAPPA, ALPHA);
        (stakes[a], stakes[b]) = (stakes[b], stakes[a]);
        (scores[a], scores[b]) = (scores[b], scores[a]);
        (prev[a], prev[b]) = (prev[b], prev[a]);
        YumaConsensus.Result memory r2 = YumaConsensus.compute(stakes, scores, prev, KAPPA, ALPHA);
        assertEq(r1.consensus, r2.consensus);
        assertEq(r1.incentive, r2.incentive);
        assertEq(r1.dividends[a], r2.dividends[b]);
        assertEq(r1.dividends[b], r2.dividends[a]);
        assertEq(r1.bonds[a], r2.bonds[b]);
    }

    function testFuzz_compute_clippedByConsensus(uint256 seed, uint256 n, uint256 m) public pure {
        n = bound(n, 1, 8);
        m = bound(m, 1, 8);
        (uint256[] memory stakes, uint16[][] memory scores, uint256[][] memory prev) = _random(seed, n, m);
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, prev, KAPPA, ALPHA);
        // A solver's consensus never exceeds the largest normalized score it received from a staked row.
        for (uint256 j; j < m; ++j) {
            uint256 maxW;
            for (uint256 i; i < n; ++i) {
                uint256 rowSum;
                for (uint256 k; k < m; ++k) {
                    rowSum += scores[i][k];
                }
                if (stakes[i] == 0 || rowSum == 0) continue;
                uint256 w = uint256(scores[i][j]) * WAD / rowSum;
                if (w > maxW) maxW = w;
            }
            assertLe(r.consensus[j], maxW);
        }
    }

    function testFuzz_compute_stakeScaleInvariant(uint256 seed, uint256 n, uint256 m, uint256 k) public pure {
        n = bound(n, 1, 8);
        m = bound(m, 1, 8);
        k = bound(k, 1, 1e9);
        (uint256[] memory stakes, uint16[][] memory scores, uint256[][] memory prev) = _random(seed, n, m);
        YumaConsensus.Result memory r1 = YumaConsensus.compute(stakes, scores, prev, KAPPA, ALPHA);
        for (uint256 i; i < n; ++i) {
            stakes[i] *= k;
        }
        YumaConsensus.Result memory r2 = YumaConsensus.compute(stakes, scores, prev, KAPPA, ALPHA);
        assertEq(r1.incentive, r2.incentive);
        assertEq(r1.dividends, r2.dividends);
    }

    function testFuzz_compute_majorityStakeDecidesConsensus(uint16 honest, uint16 liar, uint256 share)
        public
        pure
    {
        // Two solvers; honest coordinators (> κ of stake) give (honest, 1000), a liar gives (liar, 1000).
        share = bound(share, 51, 99);
        uint256[] memory stakes = new uint256[](2);
        stakes[0] = share;
        stakes[1] = 100 - share;
        uint16[][] memory scores = new uint16[][](2);
        scores[0] = _row2(honest, 1000);
        scores[1] = _row2(liar, 1000);
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, _zeros(2, 2), KAPPA, ALPHA);
        assertEq(r.consensus[0], uint256(honest) * WAD / (uint256(honest) + 1000));
    }

    // ------------------------------------------------------------------ helpers

    function _row2(uint16 a, uint16 b) internal pure returns (uint16[] memory r) {
        r = new uint16[](2);
        r[0] = a;
        r[1] = b;
    }

    function _zeros(uint256 n, uint256 m) internal pure returns (uint256[][] memory z) {
        z = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            z[i] = new uint256[](m);
        }
    }

    function _random(uint256 seed, uint256 n, uint256 m)
        internal
        pure
        returns (uint256[] memory stakes, uint16[][] memory scores, uint256[][] memory prev)
    {
        stakes = new uint256[](n);
        scores = new uint16[][](n);
        prev = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            uint256 h = uint256(keccak256(abi.encode(seed, i)));
            stakes[i] = h % 7 == 0 ? 0 : (h >> 8) % 1e24;
            scores[i] = new uint16[](m);
            prev[i] = new uint256[](m);
            for (uint256 j; j < m; ++j) {
                uint256 g = uint256(keccak256(abi.encode(seed, i, j)));
                scores[i][j] = g % 5 == 0 ? 0 : uint16(g >> 16);
                prev[i][j] = g % 3 == 0 ? 0 : (g >> 40) % (WAD + 1);
            }
        }
    }
}
