//! The shared consensus vectors (`test/vectors/consensus/*.json`, also read by
//! `test/YumaConsensus.t.sol`): every output of every file must be equal, bit for bit.

use std::path::{Path, PathBuf};

use autonet_consensus::{self as consensus, ConsensusParams, ConsensusResult, RewardSplit, U256};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Vector {
    name: String,
    stakes: Vec<String>,
    scores: Vec<Vec<String>>,
    prev_bonds: Vec<Vec<String>>,
    kappa: String,
    alpha: String,
    expected: Expected,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    consensus: Vec<String>,
    incentive: Vec<String>,
    dividends: Vec<String>,
    bonds: Vec<Vec<String>>,
}

fn dec(s: &str) -> U256 {
    U256::from_str_radix(s, 10).unwrap_or_else(|e| panic!("bad decimal {s:?}: {e}"))
}

fn decs(v: &[String]) -> Vec<U256> {
    v.iter().map(|s| dec(s)).collect()
}

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/vectors/consensus")
}

fn vector_files() -> Vec<PathBuf> {
    let dir = vector_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

struct Loaded {
    name: String,
    stakes: Vec<U256>,
    scores: Vec<Vec<u16>>,
    prev: Vec<Vec<U256>>,
    params: ConsensusParams,
    expected: ConsensusResult,
}

fn load(path: &Path) -> Loaded {
    let text = std::fs::read_to_string(path).expect("read vector");
    let v: Vector = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: bad vector JSON: {e}", path.display()));
    Loaded {
        stakes: decs(&v.stakes),
        scores: v
            .scores
            .iter()
            .map(|r| {
                r.iter()
                    .map(|s| s.parse::<u16>().expect("score fits uint16"))
                    .collect()
            })
            .collect(),
        prev: v.prev_bonds.iter().map(|r| decs(r)).collect(),
        params: ConsensusParams::new(dec(&v.kappa), dec(&v.alpha)).expect("valid params"),
        expected: ConsensusResult {
            consensus: decs(&v.expected.consensus),
            incentive: decs(&v.expected.incentive),
            dividends: decs(&v.expected.dividends),
            bonds: v.expected.bonds.iter().map(|r| decs(r)).collect(),
        },
        name: v.name,
    }
}

#[test]
fn compute_matches_every_vector() {
    let files = vector_files();
    assert!(
        !files.is_empty(),
        "no vectors in {}",
        vector_dir().display()
    );
    let mut failures = Vec::new();
    for path in &files {
        let v = load(path);
        let got = consensus::compute(&v.stakes, &v.scores, &v.prev, v.params)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        for (what, ok) in [
            ("consensus", got.consensus == v.expected.consensus),
            ("incentive", got.incentive == v.expected.incentive),
            ("dividends", got.dividends == v.expected.dividends),
            ("bonds", got.bonds == v.expected.bonds),
        ] {
            if !ok {
                failures.push(format!("{}: {what}", v.name));
            }
        }
        if got != v.expected {
            eprintln!("{}: got {got:?}\nexpected {:?}", v.name, v.expected);
        }
    }
    assert!(failures.is_empty(), "mismatches: {failures:#?}");
    eprintln!("checked {} vectors", files.len());
}

/// The payout identities on every vector's consensus outputs: what is spent, reserved and
/// released adds up to the reward, and no pool is overpaid.
#[test]
fn payouts_balance_on_every_vector() {
    let split = RewardSplit {
        solver_bps: 6000,
        coordinator_bps: 2500,
        proposer_bps: 1000,
        aggregator_bps: 500,
    };
    for path in vector_files() {
        let v = load(&path);
        for reward in [
            U256::ZERO,
            U256::from(1u64),
            U256::from(10u64).pow(U256::from(21u64)),
            U256::from(u128::MAX),
        ] {
            let p = consensus::payouts(reward, split, &v.stakes, &v.scores, v.params, &v.expected)
                .unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_eq!(
                p.spent + p.aggregator_fee + p.released,
                reward,
                "{}",
                v.name
            );
            assert!(p.solver_pool_earned <= p.solver_pool, "{}", v.name);
            assert!(p.solvers_paid <= p.solver_pool_earned, "{}", v.name);
            assert!(p.coordinators_paid <= p.coordinator_pool, "{}", v.name);
        }
    }
}
