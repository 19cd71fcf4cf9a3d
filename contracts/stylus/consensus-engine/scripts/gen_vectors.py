#!/usr/bin/env python3
"""Generates the consensus vectors this crate added to test/vectors/consensus/ (the shared set that the
Solidity, the Rust agents and this Stylus contract must all match), with the reference implementation of
docs/consensus.md (integer arithmetic, copied unchanged below).

    python3 contracts/stylus/consensus-engine/scripts/gen_vectors.py [OUT_DIR]

Deterministic (fixed seeds); rerunning rewrites the same two files byte for byte:
  gen_15_n16_m16.json      16 coordinators x 16 solvers, the size caps of Rewards (the older gen_* stop at 7x7)
  edge_16_wide_values.json stakes near the documented 1e40 bound, previous bonds far above 1e18, a zero-stake
                           row that still holds bonds
"""
import json
import os
import random
import sys

WAD = 10**18


def normalize(v):
    s = sum(v)
    return [0] * len(v) if s == 0 else [x * WAD // s for x in v]


def yuma(stakes, scores, prev, kappa, alpha):
    n = len(stakes); m = len(scores[0]) if n else 0
    S = normalize(stakes)
    W = []
    for i in range(n):
        rs = sum(scores[i])
        W.append([0] * m if rs == 0 else [scores[i][j] * WAD // rs for j in range(m)])
    total = sum(S)
    C = []
    for j in range(m):
        best = 0
        for i in range(n):
            if S[i] == 0: continue
            v = W[i][j]
            if v <= best: continue
            at = sum(S[k] for k in range(n) if S[k] != 0 and W[k][j] >= v)
            if at * WAD >= kappa * total: best = v
        C.append(best)
    Wc = [[min(W[i][j], C[j]) for j in range(m)] for i in range(n)]
    R = [sum(S[i] * Wc[i][j] for i in range(n)) // WAD for j in range(m)]
    I = normalize(R)
    B = [[0] * m for _ in range(n)]
    for j in range(m):
        dB = [S[i] * Wc[i][j] // WAD for i in range(n)]
        ds = sum(dB); ps = sum(prev[i][j] for i in range(n))
        for i in range(n):
            dn = 0 if ds == 0 else dB[i] * WAD // ds
            pn = 0 if ps == 0 else prev[i][j] * WAD // ps
            B[i][j] = (alpha * dn + (WAD - alpha) * pn) // WAD
    D = normalize([sum(B[i][j] * I[j] for j in range(m)) // WAD for i in range(n)])
    return C, I, D, B


def vector(name, stakes, scores, prev, kappa, alpha):
    # Stay inside uint256 at every step, as the Solidity must (it would revert otherwise).
    assert sum(stakes) * WAD < 2**256 and all(sum(col) * WAD < 2**256 for col in zip(*prev))
    C, I, D, B = yuma(stakes, scores, prev, kappa, alpha)
    s = lambda v: [str(x) for x in v]
    return {
        "name": name,
        "stakes": s(stakes),
        "scores": [s(r) for r in scores],
        "prevBonds": [s(r) for r in prev],
        "kappa": str(kappa),
        "alpha": str(alpha),
        "expected": {"consensus": s(C), "incentive": s(I), "dividends": s(D), "bonds": [s(r) for r in B]},
    }


def max_size():
    rng = random.Random(0x5EED15)
    n = m = 16
    stakes = [0 if rng.random() < 0.1 else rng.randrange(1, 10**6) * 10**18 for _ in range(n)]
    scores = []
    for i in range(n):
        if i == 5:
            scores.append([0] * m)  # a coordinator that scored nobody
        else:
            scores.append([0 if rng.random() < 0.2 else rng.randrange(0, 65536) for _ in range(m)])
    prev = [[0 if rng.random() < 0.3 else rng.randrange(0, WAD) for _ in range(m)] for _ in range(n)]
    return vector("gen_15_n16_m16", stakes, scores, prev, 5 * 10**17, 10**17)


def wide_values():
    rng = random.Random(0x5EED16)
    n, m = 5, 4
    stakes = [rng.randrange(10**38, 3 * 10**39) for _ in range(n - 1)] + [0]  # Σ < 1e40; last row unstaked
    scores = [[rng.randrange(0, 65536) for _ in range(m)] for _ in range(n)]
    scores[1] = [65535] * m  # equal scores: W = 1e18 / m with a remainder
    prev = [[rng.randrange(0, 10**40) for _ in range(m)] for _ in range(n)]  # any non-negative values
    prev[2][3] = 0
    return vector("edge_16_wide_values", stakes, scores, prev, 6 * 10**17, 5 * 10**17)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../../test/vectors/consensus")
    for v in (max_size(), wide_values()):
        path = os.path.join(out, v["name"] + ".json")
        with open(path, "w") as f:
            json.dump(v, f, indent=2)
        print(os.path.normpath(path))


if __name__ == "__main__":
    main()
