// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {World} from "../utils/World.sol";
import {YumaConsensus} from "../../contracts/libraries/YumaConsensus.sol";
import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {IConsensusEngine} from "../../contracts/stylus/consensus-engine/IConsensusEngine.sol";

/// @dev Random consensus inputs derived from a seed (keccak), so one fuzzed word drives a whole 16 × 16 case.
abstract contract ConsensusInputs is Test {
    uint256 internal constant WAD = 1e18;
    uint256 internal constant KAPPA = 5e17;
    uint256 internal constant ALPHA = 1e17;
    /// @dev TaskManager saturates a seat's stake at 2^88 - 1 wei.
    uint256 internal constant MAX_SEAT_STAKE = (1 << 88) - 1;

    function _rand(uint256 seed, bytes32 tag, uint256 i, uint256 j) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, tag, i, j)));
    }

    /// @dev A realistic stake: at least the coordinator minimum (500 ATN), up to 1e6 ATN, with a random wei
    ///      offset so that the normalisation floors lose something.
    function _realStake(uint256 seed, bytes32 tag, uint256 i) internal pure returns (uint256) {
        uint256 r = _rand(seed, tag, i, 0);
        return 500e18 + r % 1_000_000e18;
    }

    /// @dev An extreme stake: zero, a few wei, realistic, or the seat maximum, chosen by the seed.
    function _wildStake(uint256 seed, uint256 i) internal pure returns (uint256) {
        uint256 r = _rand(seed, "wild", i, 0);
        uint256 mode = r % 6;
        if (mode == 0) return 0;
        if (mode == 1) return (r >> 8) % 4;
        if (mode == 2) return MAX_SEAT_STAKE - (r >> 8) % 1000;
        if (mode == 3) return (r >> 8) % type(uint128).max; // far above any supply: the library must still cope
        return (r >> 8) % 1e24;
    }

    /// @dev A random score row; `zeroChance` in 1/8 makes whole rows zero.
    function _row(uint256 seed, bytes32 tag, uint256 i, uint256 m)
        internal
        pure
        returns (uint16[] memory row)
    {
        row = new uint16[](m);
        uint256 r0 = _rand(seed, tag, i, type(uint256).max);
        if (r0 % 8 == 0) return row; // all-zero row
        for (uint256 j; j < m; ++j) {
            uint256 r = _rand(seed, tag, i, j);
            // a mix of zeros, small, and saturated scores
            uint256 mode = r % 4;
            row[j] = mode == 0 ? 0 : mode == 1 ? 65535 : uint16(r >> 8);
        }
    }

    function _zeros(uint256 n, uint256 m) internal pure returns (uint256[][] memory z) {
        z = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            z[i] = new uint256[](m);
        }
    }

    /// @dev W_ij as the library computes it (floor of score * 1e18 / row sum; 0 for a zero row).
    function _w(uint16[] memory row, uint256 j) internal pure returns (uint256) {
        uint256 sum;
        for (uint256 k; k < row.length; ++k) {
            sum += row[k];
        }
        return sum == 0 ? 0 : uint256(row[j]) * WAD / sum;
    }

    function _sum(uint256[] memory v) internal pure returns (uint256 s) {
        for (uint256 i; i < v.length; ++i) {
            s += v[i];
        }
    }
}

/// @notice Adversarial properties of YumaConsensus.compute (review section 3.5): what a coalition below κ of the
///         voting stake can and cannot do, the exact-κ boundary (L-1), monotonicity in the scores, and the output
///         bounds under extreme but reachable inputs (L-4: bonds are never larger than 1e18 per column).
/// @dev Rows 0..h-1 are the honest voters, rows h.. the coalition. "Honest maximum" of a column is the largest
///      W_ij among the honest rows: a coalition below κ must never lift C_j above it.
contract ConsensusPropertiesTest is ConsensusInputs {
    struct Case {
        uint256[] stakes;
        uint16[][] scores;
        uint256 honest; // rows [0, honest) are honest
        uint256 m;
    }

    function _honestMax(Case memory c, uint256 j) internal pure returns (uint256 best) {
        for (uint256 i; i < c.honest; ++i) {
            uint256 w = _w(c.scores[i], j);
            if (w > best) best = w;
        }
    }

    /// @dev `nH` honest voters with realistic stakes and random scores, then the coalition's rows: each coalition
    ///      member puts everything on `target` (its Sybil) — the strongest push a voter has on one column.
    function _case(uint256 seed, uint256 nH, uint256 nC, uint256 m, uint256 target)
        internal
        pure
        returns (Case memory c, uint256 honestStake)
    {
        c.honest = nH;
        c.m = m;
        c.stakes = new uint256[](nH + nC);
        c.scores = new uint16[][](nH + nC);
        for (uint256 i; i < nH; ++i) {
            c.stakes[i] = _realStake(seed, "honest", i);
            honestStake += c.stakes[i];
            c.scores[i] = _row(seed, "honestRow", i, m);
        }
        for (uint256 i = nH; i < nH + nC; ++i) {
            c.scores[i] = new uint16[](m);
            c.scores[i][target] = 65535;
        }
    }

    /// @dev Splits `total` over the coalition rows (random shares, exact sum).
    function _splitCoalition(Case memory c, uint256 seed, uint256 total) internal pure {
        uint256 n = c.stakes.length;
        uint256 left = total;
        for (uint256 i = c.honest; i < n; ++i) {
            uint256 share = i + 1 == n ? left : _rand(seed, "split", i, 0) % (left + 1);
            c.stakes[i] = share;
            left -= share;
        }
    }

    function _consensusOf(Case memory c, uint256 kappa) internal pure returns (uint256[] memory) {
        return YumaConsensus.compute(c.stakes, c.scores, _zeros(c.stakes.length, c.m), kappa, ALPHA).consensus;
    }

    // ------------------------------------------------------------------ below κ

    /// L-1 / C-1: a coalition holding strictly less than κ of the voting stake (κ fuzzed) cannot lift any C_j above
    /// the largest value an honest voter gave that column, whatever it scores and however it splits its stake.
    /// `nearEdge` puts the coalition within a few wei of the largest stake that is still below κ.
    function testFuzz_L1_coalitionBelowKappaCannotRaiseAnyConsensus(
        uint256 seed,
        uint256 nH,
        uint256 nC,
        uint256 m,
        uint256 kappa,
        uint256 coalition,
        bool nearEdge
    ) public pure {
        nH = bound(nH, 1, 15);
        nC = bound(nC, 1, 16 - nH);
        m = bound(m, 1, 16);
        kappa = bound(kappa, 1, WAD - 1);
        (Case memory c, uint256 h) = _case(seed, nH, nC, m, seed % m);
        // Largest coalition stake C with C * 1e18 < κ * (C + H), i.e. C * (1e18 - κ) < κ * H.
        uint256 maxC = (kappa * h - 1) / (WAD - kappa);
        coalition = nearEdge ? maxC - bound(coalition, 0, 16 < maxC ? 16 : maxC) : bound(coalition, 0, maxC);
        assertLt(coalition * WAD, kappa * (coalition + h), "setup: coalition below kappa");
        _splitCoalition(c, seed, coalition);
        uint256[] memory cons = _consensusOf(c, kappa);
        for (uint256 j; j < m; ++j) {
            assertLe(cons[j], _honestMax(c, j), "a coalition below kappa raised a consensus");
        }
    }

    // ------------------------------------------------------------------ exactly κ

    /// L-1 (κ = 0.5): one voter holding exactly half of the voting stake cannot set a column on its own, however
    /// the other half is spread over honest voters (docs/consensus.md: "a value needs more than half the stake
    /// behind it").
    function testFuzz_L1_exactlyKappaSetsNothingAlone(uint256 seed, uint256 nH, uint256 m) public pure {
        nH = bound(nH, 1, 15);
        m = bound(m, 2, 16);
        uint256 target = seed % m;
        (Case memory c, uint256 h) = _case(seed, nH, 1, m, target);
        c.stakes[nH] = h; // exactly half
        // The honest voters never give the target everything, so the coalition's 1.0 is above every honest value.
        for (uint256 i; i < nH; ++i) {
            c.scores[i][(target + 1) % m] = 1;
        }
        uint256[] memory cons = _consensusOf(c, KAPPA);
        assertLe(cons[target], _honestMax(c, target), "exactly half of the stake set a column alone");
    }

    /// L-1 (κ = 0.5): one wei more than half, and the coalition's value is the consensus of its column.
    function testFuzz_L1_oneWeiAboveKappaSetsTheColumn(uint256 seed, uint256 nH, uint256 m) public pure {
        nH = bound(nH, 1, 15);
        m = bound(m, 1, 16);
        uint256 target = seed % m;
        (Case memory c, uint256 h) = _case(seed, nH, 1, m, target);
        c.stakes[nH] = h + 1;
        uint256[] memory cons = _consensusOf(c, KAPPA);
        assertEq(cons[target], WAD, "more than half of the stake did not set its column");
    }

    /// L-1, minimal reproduction: the coalition holds exactly half of the voting stake (2,000 of 4,000 ATN), the
    /// honest half is held by two voters whose stakes do not divide evenly (500 ATN + 1 wei, 1,500 ATN - 1 wei).
    /// Normalisation floors the honest weights to 1.25e17 and 3.75e17 - 1 (sum 5e17 - 1) and the coalition's to
    /// exactly 5e17, so the strict test `5e17 * 1e18 > κ * (1e18 - 1)` passes and the coalition's 1.0 for its Sybil
    /// becomes the consensus, although both honest voters gave it 0.
    function test_L1_exactlyHalfOfVotingStakeSetsAColumnWhenHonestStakeIsSplit() public pure {
        uint256[] memory stakes = new uint256[](3);
        stakes[0] = 500e18 + 1;
        stakes[1] = 1500e18 - 1;
        stakes[2] = 2000e18; // the coalition: exactly half
        uint16[][] memory scores = new uint16[][](3);
        scores[0] = new uint16[](2);
        scores[1] = new uint16[](2);
        scores[2] = new uint16[](2);
        scores[0][0] = 65535; // honest: solver 0 only
        scores[1][0] = 65535;
        scores[2][1] = 65535; // coalition: its Sybil (solver 1) only
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, _zeros(3, 2), KAPPA, ALPHA);
        assertEq(r.consensus[1], 0, "exactly half of the voting stake set the Sybil's consensus");
        assertEq(r.incentive[1], 0, "the Sybil earns");
    }

    // ------------------------------------------------------------------ monotonicity

    /// Raising one voter's score for solver j never lowers C_j (its W_ij can only grow, nothing else in column j
    /// changes, and C_j is an upper weighted quantile). Stakes include zeros and extremes.
    function testFuzz_raisingAScoreNeverLowersThatConsensus(
        uint256 seed,
        uint256 n,
        uint256 m,
        uint256 i,
        uint256 j,
        uint256 bump,
        uint256 kappa
    ) public pure {
        n = bound(n, 1, 16);
        m = bound(m, 1, 16);
        i = bound(i, 0, n - 1);
        j = bound(j, 0, m - 1);
        kappa = bound(kappa, 0, WAD - 1);
        uint256[] memory stakes = new uint256[](n);
        uint16[][] memory scores = new uint16[][](n);
        for (uint256 k; k < n; ++k) {
            stakes[k] = _wildStake(seed, k);
            scores[k] = _row(seed, "row", k, m);
        }
        uint256[][] memory prev = _zeros(n, m);
        uint256 before = YumaConsensus.compute(stakes, scores, prev, kappa, ALPHA).consensus[j];
        uint256 raised = uint256(scores[i][j]) + bound(bump, 1, 65535);
        scores[i][j] = uint16(raised > 65535 ? 65535 : raised);
        uint256 afterRaise = YumaConsensus.compute(stakes, scores, prev, kappa, ALPHA).consensus[j];
        assertGe(afterRaise, before, "raising a score lowered the consensus of that solver");
    }

    // ------------------------------------------------------------------ bounds under extreme inputs

    /// L-4: huge but valid previous bonds (every entry ≤ 1e18, as Rewards clamps them on load; with `normalized`
    /// every column also sums to ≤ 1e18, as the library stores them), zero and extreme stakes, all-zero rows, any
    /// κ < 1 and α in (0, 1]: compute never reverts, Σ I ≤ 1e18, Σ D ≤ 1e18, every bond column and every C_j
    /// ≤ 1e18, and the shapes are n × m.
    function testFuzz_L4_boundsHoldForExtremeInputs(
        uint256 seed,
        uint256 n,
        uint256 m,
        uint256 kappa,
        uint256 alpha,
        bool normalized
    ) public pure {
        n = bound(n, 1, 16);
        m = bound(m, 1, 16);
        kappa = bound(kappa, 0, WAD - 1);
        alpha = bound(alpha, 1, WAD);
        uint256[] memory stakes = new uint256[](n);
        uint16[][] memory scores = new uint16[][](n);
        uint256[][] memory prev = new uint256[][](n);
        for (uint256 i; i < n; ++i) {
            stakes[i] = _wildStake(seed, i);
            scores[i] = _row(seed, "row", i, m);
            prev[i] = new uint256[](m);
        }
        for (uint256 j; j < m; ++j) {
            uint256 left = WAD;
            for (uint256 i; i < n; ++i) {
                uint256 h = _rand(seed, "bond", i, j);
                uint256 v = h % 3 == 0 ? WAD : h % 3 == 1 ? 0 : (h >> 8) % (WAD + 1);
                if (normalized) {
                    v = v > left ? left : v;
                    left -= v;
                }
                prev[i][j] = v;
            }
        }
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, prev, kappa, alpha);
        assertEq(r.consensus.length, m);
        assertEq(r.incentive.length, m);
        assertEq(r.dividends.length, n);
        assertEq(r.bonds.length, n);
        assertLe(_sum(r.incentive), WAD, "incentive sum above 1");
        assertLe(_sum(r.dividends), WAD, "dividend sum above 1");
        for (uint256 j; j < m; ++j) {
            assertLe(r.consensus[j], WAD);
            uint256 col;
            for (uint256 i; i < n; ++i) {
                assertEq(r.bonds[i].length, m);
                col += r.bonds[i][j];
            }
            assertLe(col, WAD, "bond column above 1");
        }
    }

    /// Zero total stake and all-zero scores: nothing is earned, nothing reverts, and old bonds only decay.
    function testFuzz_zeroStakesAndZeroRowsPayNothing(uint256 seed, uint256 n, uint256 m, bool zeroStakes)
        public
        pure
    {
        n = bound(n, 1, 16);
        m = bound(m, 1, 16);
        uint256[] memory stakes = new uint256[](n);
        uint16[][] memory scores = new uint16[][](n);
        uint256[][] memory prev = _zeros(n, m);
        for (uint256 i; i < n; ++i) {
            stakes[i] = zeroStakes ? 0 : _realStake(seed, "s", i);
            scores[i] = zeroStakes ? _row(seed, "row", i, m) : new uint16[](m);
            prev[i][_rand(seed, "p", i, 0) % m] = WAD / n;
        }
        YumaConsensus.Result memory r = YumaConsensus.compute(stakes, scores, prev, KAPPA, ALPHA);
        assertEq(_sum(r.incentive), 0);
        assertEq(_sum(r.dividends), 0);
        for (uint256 j; j < m; ++j) {
            assertEq(r.consensus[j], 0);
            for (uint256 i; i < n; ++i) {
                assertLe(r.bonds[i][j], prev[i][j] == 0 ? 0 : WAD, "a bond appeared from nothing");
            }
        }
    }
}

/// @dev Answers every call with the bytes it was given (as return data, or as revert data).
contract ScriptedEngine {
    bytes internal _answer;
    bool internal _revert;

    function script(bytes calldata answer, bool asRevert) external {
        _answer = answer;
        _revert = asRevert;
    }

    fallback() external {
        bytes memory a = _answer;
        bool r = _revert;
        assembly {
            switch r
            case 0 { return(add(a, 32), mload(a)) }
            default { revert(add(a, 32), mload(a)) }
        }
    }
}

/// @notice Rewards against malformed engine answers (L-4, L-6): random bytes, reverts, oversized answers, results
///         of the wrong lengths, bonds above 1e18 (one entry, or a column sum), weights promising more than the
///         pools. Every one of them must fall back to the library: every credit, every stored bond and the fee
///         record equal those of the same settlement with no engine at all.
/// @dev Settlements are fed to Rewards directly as the TaskManager (it holds TASK_MANAGER_ROLE and SPENDER_ROLE),
///      after a first library settlement of the same coordinators and solvers, so that previous bonds exist.
contract EngineFallbackPropertiesTest is World, ConsensusInputs {
    ScriptedEngine internal engine;
    uint256 internal nextTaskId = 1_000_000;

    function setUp() public override {
        super.setUp();
        engine = new ScriptedEngine();
    }

    function _settlement(uint256 seed, uint256 n, uint256 m)
        internal
        returns (IRewards.Settlement memory st)
    {
        st.taskId = nextTaskId++;
        st.projectId = projectId;
        st.proposer = proposer;
        st.reward = 1 + _rand(seed, "reward", st.taskId, 0) % 1000e18;
        st.solvers = new address[](m);
        st.coordinators = new address[](n);
        st.stakes = new uint256[](n);
        st.scores = new uint16[][](n);
        for (uint256 j; j < m; ++j) {
            st.solvers[j] = address(uint160(0x5000 + j));
        }
        for (uint256 i; i < n; ++i) {
            st.coordinators[i] = address(uint160(0xC000 + i));
            st.stakes[i] = _wildStake(seed, i) % MAX_SEAT_STAKE;
            st.scores[i] = _row(seed, bytes32(st.taskId), i, m);
        }
        vm.prank(address(tasks));
        project.reserve(projectId, st.reward);
    }

    function _settle(IRewards.Settlement memory st) internal {
        vm.prank(address(tasks));
        rewards.settleTask(st);
    }

    /// @dev Every observable result of a settlement.
    function _observe(IRewards.Settlement memory st) internal view returns (uint256[] memory out) {
        uint256 n = st.coordinators.length;
        uint256 m = st.solvers.length;
        out = new uint256[](m + n + n * m + 5);
        uint256 k;
        for (uint256 j; j < m; ++j) {
            out[k++] = rewards.claimable(st.solvers[j]);
        }
        for (uint256 i; i < n; ++i) {
            out[k++] = rewards.claimable(st.coordinators[i]);
            for (uint256 j; j < m; ++j) {
                out[k++] = rewards.bondOf(projectId, st.coordinators[i], st.solvers[j]);
            }
        }
        out[k++] = rewards.claimable(st.proposer);
        out[k++] = rewards.totalClaimable();
        out[k++] = project.budgetOf(projectId);
        out[k++] = project.reservedOf(projectId);
        out[k++] = rewards.pendingFee(st.taskId).amount;
    }

    /// @dev A well-encoded result of the given lengths; entries filled by `fill`.
    function _encoded(uint256 seed, uint256 nc, uint256 ni, uint256 nd, uint256 nb, uint256 mb, uint256 fill)
        internal
        pure
        returns (bytes memory)
    {
        IConsensusEngine.ConsensusResult memory r;
        r.consensus = new uint256[](nc);
        r.incentive = new uint256[](ni);
        r.dividends = new uint256[](nd);
        r.bonds = new uint256[][](nb);
        for (uint256 i; i < nb; ++i) {
            r.bonds[i] = new uint256[](mb);
            for (uint256 j; j < mb; ++j) {
                r.bonds[i][j] = fill == 0 ? 0 : _rand(seed, "b", i, j) % (fill + 1);
            }
        }
        return abi.encode(r);
    }

    /// @dev A malformed answer of kind `kind` for an n × m settlement.
    function _malformed(uint256 seed, uint256 kind, uint256 n, uint256 m, bytes memory garbage)
        internal
        pure
        returns (bytes memory answer, bool asRevert)
    {
        kind = kind % 8;
        if (kind == 0) return (garbage, false); // random bytes
        if (kind == 1) return (garbage, true); // a revert with random data
        if (kind == 2) {
            // Wrong lengths: one of the five lengths off by 1..3 (bonds row length included).
            uint256 which = seed % 5;
            uint256 d = 1 + (seed >> 8) % 3;
            return (
                _encoded(
                    seed,
                    which == 0 ? m + d : m,
                    which == 1 ? (m > d ? m - d : m + d) : m,
                    which == 2 ? n + d : n,
                    which == 3 ? (n > d ? n - d : n + d) : n,
                    which == 4 ? m + d : m,
                    0
                ),
                false
            );
        }
        if (kind == 3) {
            // One bond entry above 1e18 (up to 2^255), the rest zero.
            IConsensusEngine.ConsensusResult memory r =
                abi.decode(_encoded(seed, m, m, n, n, m, 0), (IConsensusEngine.ConsensusResult));
            r.bonds[seed % n][(seed >> 8) % m] = WAD + 1 + (seed >> 16) % (1 << 255);
            return (abi.encode(r), false);
        }
        if (kind == 4) {
            // Every entry ≤ 1e18, but one column sums above 1e18.
            IConsensusEngine.ConsensusResult memory r =
                abi.decode(_encoded(seed, m, m, n, n, m, 0), (IConsensusEngine.ConsensusResult));
            uint256 j = (seed >> 8) % m;
            r.bonds[0][j] = WAD;
            r.bonds[n - 1][j] += 1 + (seed >> 16) % WAD; // n == 1: the entry itself goes above 1e18
            return (abi.encode(r), false);
        }
        if (kind == 5) {
            // Incentives (or dividends) summing above 1e18: the pools would be overpaid.
            IConsensusEngine.ConsensusResult memory r =
                abi.decode(_encoded(seed, m, m, n, n, m, 0), (IConsensusEngine.ConsensusResult));
            if (seed & 1 == 0) r.incentive[seed % m] = WAD + 1 + (seed >> 8) % WAD;
            else r.dividends[seed % n] = WAD + 1 + (seed >> 8) % WAD;
            return (abi.encode(r), false);
        }
        if (kind == 6) {
            // Larger than MAX_ENGINE_RESULT (a valid result padded with trailing bytes).
            return (bytes.concat(_encoded(seed, m, m, n, n, m, 0), new bytes(rewards_MAX_RESULT + 1)), false);
        }
        // Truncated: a valid result cut short by 1..64 bytes.
        bytes memory full = _encoded(seed, m, m, n, n, m, WAD / 16);
        uint256 cut = 1 + seed % 64;
        bytes memory part = new bytes(full.length - cut);
        for (uint256 b; b < part.length; ++b) {
            part[b] = full[b];
        }
        return (part, false);
    }

    uint256 internal constant rewards_MAX_RESULT = 16_384;

    /// L-4 / L-6: whatever malformed answer the engine gives, the settlement equals the library's.
    function testFuzz_L4_malformedEngineAnswerFallsBackToTheLibrary(
        uint256 seed,
        uint256 n,
        uint256 m,
        uint256 kind,
        bytes memory garbage
    ) public {
        n = bound(n, 1, 16);
        m = bound(m, 1, 16);
        if (garbage.length > 2048) garbage = bytes.concat(bytes32(seed)); // keep the fuzzer's bytes small
        assertEq(rewards_MAX_RESULT, rewards.MAX_ENGINE_RESULT());

        // Previous bonds of these pairs, by the library.
        _settle(_settlement(seed, n, m));
        IRewards.Settlement memory st = _settlement(seed ^ 1, n, m);

        uint256 snap = vm.snapshotState();
        _settle(st);
        uint256[] memory library_ = _observe(st);
        vm.revertToState(snap);

        (bytes memory answer, bool asRevert) = _malformed(seed, kind, n, m, garbage);
        engine.script(answer, asRevert);
        vm.prank(address(timelock));
        rewards.setConsensusEngine(address(engine));
        vm.recordLogs();
        _settle(st);
        assertEq(_observe(st), library_, "a malformed engine answer changed the settlement");
        // The fallback was reported.
        bool reported;
        bytes32 topic = IRewards.ConsensusEngineFallback.selector;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 k; k < logs.length; ++k) {
            if (logs[k].emitter == address(rewards) && logs[k].topics[0] == topic) reported = true;
        }
        assertTrue(reported, "no ConsensusEngineFallback event");
    }
}
