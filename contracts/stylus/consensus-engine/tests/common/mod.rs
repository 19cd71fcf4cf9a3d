//! Shared helpers of the native tests: the shared vectors, the Solidity view of `compute` (declared
//! here independently of the contract, from `contracts/libraries/YumaConsensus.sol`), and calls
//! through the contract's ABI router on a `TestVM`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use alloy_primitives::U256;
use alloy_sol_types::{sol, SolCall};
use autonet_consensus_engine::math::{self, ConsensusError, ConsensusOutput};
use autonet_consensus_engine::ConsensusEngine;
use serde_json::Value;
use stylus_sdk::testing::TestVM;
use stylus_sdk::ArbResult;

pub const WAD: U256 = math::WAD;

sol! {
    /// `YumaConsensus.Result`, as a Solidity caller decodes the engine's return data.
    struct YumaResult {
        uint256[] consensus;
        uint256[] incentive;
        uint256[] dividends;
        uint256[][] bonds;
    }

    /// `YumaConsensus.compute`'s parameters and return, as an external function.
    function compute(uint256[] stakes, uint16[][] scores, uint256[][] prevBonds, uint256 kappa, uint256 alpha)
        external pure returns (YumaResult r);
}

/// One consensus input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub stakes: Vec<U256>,
    pub scores: Vec<Vec<u16>>,
    pub prev_bonds: Vec<Vec<U256>>,
    pub kappa: U256,
    pub alpha: U256,
}

impl Input {
    pub fn run(&self) -> Result<ConsensusOutput, ConsensusError> {
        math::compute(
            &self.stakes,
            &self.scores,
            &self.prev_bonds,
            self.kappa,
            self.alpha,
        )
    }

    /// The calldata a Solidity contract sends: `abi.encodeCall(compute, (...))`.
    pub fn calldata(&self) -> Vec<u8> {
        computeCall {
            stakes: self.stakes.clone(),
            scores: self.scores.clone(),
            prevBonds: self.prev_bonds.clone(),
            kappa: self.kappa,
            alpha: self.alpha,
        }
        .abi_encode()
    }
}

/// A shared vector: its input and expected output.
#[derive(Clone, Debug)]
pub struct Vector {
    pub name: String,
    pub input: Input,
    pub expected: ConsensusOutput,
}

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../test/vectors/consensus")
}

fn dec(v: &Value) -> U256 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}"));
    U256::from_str_radix(s, 10).unwrap_or_else(|e| panic!("bad decimal {s}: {e}"))
}

fn list(v: &Value) -> Vec<U256> {
    v.as_array().expect("array").iter().map(dec).collect()
}

fn matrix(v: &Value) -> Vec<Vec<U256>> {
    v.as_array()
        .expect("array of rows")
        .iter()
        .map(list)
        .collect()
}

/// Every `*.json` file of the shared vector directory, sorted by file name.
pub fn load_vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("read vector");
            let j: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let scores = matrix(&j["scores"])
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|x| u16::try_from(x).expect("score fits uint16"))
                        .collect()
                })
                .collect();
            let e = &j["expected"];
            Vector {
                name: j["name"].as_str().expect("name").to_string(),
                input: Input {
                    stakes: list(&j["stakes"]),
                    scores,
                    prev_bonds: matrix(&j["prevBonds"]),
                    kappa: dec(&j["kappa"]),
                    alpha: dec(&j["alpha"]),
                },
                expected: ConsensusOutput {
                    consensus: list(&e["consensus"]),
                    incentive: list(&e["incentive"]),
                    dividends: list(&e["dividends"]),
                    bonds: matrix(&e["bonds"]),
                },
            }
        })
        .collect()
}

/// Runs raw calldata through the contract's router (what `user_entrypoint` runs on chain) on `vm`.
pub fn call_on(vm: &TestVM, calldata: Vec<u8>) -> ArbResult {
    let host = stylus_sdk::host::VM {
        host: Box::new(vm.clone()),
    };
    stylus_sdk::abi::router_entrypoint::<ConsensusEngine, ConsensusEngine>(calldata, host)
}

/// Runs raw calldata through the router on a fresh `TestVM`.
pub fn call(calldata: Vec<u8>) -> ArbResult {
    call_on(&TestVM::default(), calldata)
}

/// `compute` through the ABI: encode as Solidity would, route, decode the return as Solidity would.
/// `Err` holds the raw revert data.
pub fn call_compute(input: &Input) -> Result<ConsensusOutput, Vec<u8>> {
    let ret = call(input.calldata())?;
    let r = computeCall::abi_decode_returns_validate(&ret)
        .expect("return data decodes as YumaConsensus.Result");
    Ok(ConsensusOutput {
        consensus: r.consensus,
        incentive: r.incentive,
        dividends: r.dividends,
        bonds: r.bonds,
    })
}

/// A small deterministic PRNG (xorshift64*), so property tests are reproducible without extra crates.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }

    /// A random valid input: 1..=16 × 1..=16, with zero stakes, zero score rows, zero prev bonds and
    /// stakes spanning small to ~1e40 token units.
    pub fn input(&mut self) -> Input {
        let n = self.range(1, 16) as usize;
        let m = self.range(1, 16) as usize;
        let stake_scale = U256::from(10u64).pow(U256::from(self.range(0, 22)));
        let stakes = (0..n)
            .map(|_| {
                if self.chance(1, 8) {
                    U256::ZERO
                } else {
                    U256::from(self.range(1, 1 << 60)) * stake_scale
                }
            })
            .collect();
        let score_max = [1u64, 10, 1000, 65535][self.range(0, 3) as usize];
        let scores = (0..n)
            .map(|_| {
                let zero_row = self.chance(1, 10);
                (0..m)
                    .map(|_| {
                        if zero_row || self.chance(1, 4) {
                            0
                        } else {
                            self.range(0, score_max) as u16
                        }
                    })
                    .collect()
            })
            .collect();
        let prev_bonds = (0..n)
            .map(|_| {
                (0..m)
                    .map(|_| {
                        if self.chance(1, 3) {
                            U256::ZERO
                        } else {
                            U256::from(self.range(0, 1_000_000_000_000_000_000))
                        }
                    })
                    .collect()
            })
            .collect();
        let half_minus = U256::from(499_992_370_489_051_651u64);
        let kappa = match self.range(0, 5) {
            0 => U256::ZERO,
            1 => half_minus,
            2 => WAD / U256::from(2),
            3 => U256::from(600_000_000_000_000_000u64),
            4 => WAD,
            _ => U256::from(self.range(0, 1_000_000_000_000_000_000)),
        };
        let alpha = match self.range(0, 4) {
            0 => U256::from(1),
            1 => U256::from(100_000_000_000_000_000u64),
            2 => WAD / U256::from(2),
            3 => WAD,
            _ => U256::from(self.range(1, 1_000_000_000_000_000_000)),
        };
        Input {
            stakes,
            scores,
            prev_bonds,
            kappa,
            alpha,
        }
    }
}
