// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title YumaConsensus
/// @notice The pure Yuma-style consensus of one task (docs/protocol.md §4, Bittensor "Yuma 2" bonds), in 1e18 fixed
///         point with floor division everywhere. docs/consensus.md is the normative description: the Rust
///         agents and the Stylus contract re-implement it bit for bit against test/vectors/consensus/*.json.
/// @dev n coordinators (rows), m solvers (columns); callers cap n, m at 16, so every loop is bounded by
///      16 * 16 * 16 iterations and no product can overflow (all factors ≤ 1e18 except raw stakes, see below).
library YumaConsensus {
    /// @notice 1.0 in fixed point.
    uint256 internal constant WAD = 1e18;

    /// @notice Outputs of one consensus run (all in 1e18 fixed point).
    struct Result {
        uint256[] consensus; // C_j
        uint256[] incentive; // I_j, Σ ≤ 1e18
        uint256[] dividends; // D_i, Σ ≤ 1e18
        uint256[][] bonds; // B'_ij
    }

    /// @notice Runs the consensus.
    /// @param stakes raw coordinator stakes (token units; Σ must be < 2^256 / 1e18)
    /// @param scores n×m score rows (uint16)
    /// @param prevBonds n×m previous bonds (1e18 fixed point; any non-negative values)
    /// @param kappa consensus quantile (≤ 1e18)
    /// @param alpha bond EMA rate (≤ 1e18)
    function compute(
        uint256[] memory stakes,
        uint16[][] memory scores,
        uint256[][] memory prevBonds,
        uint256 kappa,
        uint256 alpha
    ) internal pure returns (Result memory r) {
        uint256 n = stakes.length;
        uint256 m = n == 0 ? 0 : scores[0].length;
        uint256[] memory s = _normalize(stakes);
        uint256[][] memory w = _rowNormalize(scores, n, m);

        r.consensus = _consensus(stakes, w, n, m, kappa);
        // Clip in place: w becomes W̄ = min(W, C).
        for (uint256 i; i < n; ++i) {
            for (uint256 j; j < m; ++j) {
                if (w[i][j] > r.consensus[j]) w[i][j] = r.consensus[j];
            }
        }
        r.incentive = _incentive(s, w, n, m);
        r.bonds = _bonds(s, w, prevBonds, n, m, alpha);
        r.dividends = _dividends(r.bonds, r.incentive, n, m);
    }

    /// @dev S_i = stake_i * 1e18 / Σ stake (floor); all zero when Σ stake = 0.
    function _normalize(uint256[] memory v) private pure returns (uint256[] memory out) {
        uint256 n = v.length;
        out = new uint256[](n);
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            sum += v[i];
        }
        if (sum == 0) return out;
        for (uint256 i; i < n; ++i) {
            out[i] = v[i] * WAD / sum;
        }
    }

    /// @dev W_ij = score_ij * 1e18 / Σ_j score_ij (floor); a zero row stays zero.
    function _rowNormalize(uint16[][] memory scores, uint256 n, uint256 m)
        private
        pure
        returns (uint256[][] memory w)
    {
        w = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            w[i] = new uint256[](m);
            uint256 sum;
            for (uint256 j; j < m; ++j) {
                sum += scores[i][j];
            }
            if (sum == 0) continue;
            for (uint256 j; j < m; ++j) {
                w[i][j] = uint256(scores[i][j]) * WAD / sum;
            }
        }
    }

    /// @dev C_j = the largest W_ij among rows with stake_i > 0 such that the raw stake of rows with W_kj ≥ W_ij
    ///      is strictly more than κ of the raw voting stake: support * 1e18 > kappa * Σ_i stake_i. 0 if there is
    ///      none. Strict, so that a coalition holding exactly κ (two equal voters, κ = 0.5) cannot set a column
    ///      alone; raw, so that flooring the normalized stakes cannot shift the threshold either way.
    function _consensus(
        uint256[] memory stakes,
        uint256[][] memory w,
        uint256 n,
        uint256 m,
        uint256 kappa
    ) private pure returns (uint256[] memory c) {
        c = new uint256[](m);
        // Support is counted in raw stake, not in the floored S: rounding must not shift the threshold.
        uint256 total;
        for (uint256 i; i < n; ++i) {
            total += stakes[i];
        }
        uint256 need = kappa * total;
        for (uint256 j; j < m; ++j) {
            uint256 best;
            for (uint256 i; i < n; ++i) {
                if (stakes[i] == 0) continue;
                uint256 v = w[i][j];
                if (v <= best) continue; // cannot improve (0 when no score has more than κ behind it)
                uint256 atLeast;
                for (uint256 k; k < n; ++k) {
                    if (w[k][j] >= v) atLeast += stakes[k];
                }
                if (atLeast * WAD > need) best = v;
            }
            c[j] = best;
        }
    }

    /// @dev R_j = floor(Σ_i S_i * W̄_ij / 1e18); I_j = R_j * 1e18 / Σ R (floor), all zero when Σ R = 0.
    function _incentive(uint256[] memory s, uint256[][] memory wc, uint256 n, uint256 m)
        private
        pure
        returns (uint256[] memory inc)
    {
        uint256[] memory rank = new uint256[](m);
        for (uint256 j; j < m; ++j) {
            uint256 acc;
            for (uint256 i; i < n; ++i) {
                acc += s[i] * wc[i][j];
            }
            rank[j] = acc / WAD;
        }
        inc = _normalize(rank);
    }

    /// @dev ΔB_ij = floor(S_i * W̄_ij / 1e18), column-normalized; B column-normalized;
    ///      B'_ij = floor((alpha * ΔBn_ij + (1e18 - alpha) * Bn_ij) / 1e18).
    function _bonds(
        uint256[] memory s,
        uint256[][] memory wc,
        uint256[][] memory prev,
        uint256 n,
        uint256 m,
        uint256 alpha
    ) private pure returns (uint256[][] memory b) {
        b = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            b[i] = new uint256[](m);
        }
        for (uint256 j; j < m; ++j) {
            uint256 dSum;
            uint256 pSum;
            for (uint256 i; i < n; ++i) {
                b[i][j] = s[i] * wc[i][j] / WAD; // ΔB, temporarily
                dSum += b[i][j];
                pSum += prev[i][j];
            }
            for (uint256 i; i < n; ++i) {
                uint256 dn = dSum == 0 ? 0 : b[i][j] * WAD / dSum;
                uint256 pn = pSum == 0 ? 0 : prev[i][j] * WAD / pSum;
                b[i][j] = (alpha * dn + (WAD - alpha) * pn) / WAD;
            }
        }
    }

    /// @dev D_i = floor(Σ_j B'_ij * I_j / 1e18), then normalized (all zero when Σ D = 0).
    function _dividends(uint256[][] memory b, uint256[] memory inc, uint256 n, uint256 m)
        private
        pure
        returns (uint256[] memory d)
    {
        uint256[] memory raw = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            uint256 acc;
            for (uint256 j; j < m; ++j) {
                acc += b[i][j] * inc[j];
            }
            raw[i] = acc / WAD;
        }
        d = _normalize(raw);
    }
}
