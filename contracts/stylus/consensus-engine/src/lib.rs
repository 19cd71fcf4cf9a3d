//! Autonet's consensus engine: `YumaConsensus.compute` as an Arbitrum Stylus contract.
//!
//! The contract is stateless and exposes one pure method, `compute`, with exactly the inputs and
//! outputs of the Solidity library function `YumaConsensus.compute` (`docs/protocol.md` §4,
//! `docs/consensus.md`):
//!
//! ```solidity
//! function compute(uint256[] stakes, uint16[][] scores, uint256[][] prevBonds, uint256 kappa, uint256 alpha)
//!     external pure returns (ConsensusResult memory); // = YumaConsensus.Result
//! ```
//!
//! so a Solidity contract can `staticcall` it with `abi.encodeCall(IConsensusEngine.compute, (...))`
//! and `abi.decode(ret, (YumaConsensus.Result))` the answer. The arithmetic is the `autonet-consensus`
//! crate (`crates/consensus`, no SDK dependency), called through [`math`]; it is bit-identical to the
//! Solidity on the shared vectors.
//!
//! Reverts: the input checks of `Rewards` as custom errors (`ConsensusEngine*`, see
//! [`ConsensusEngineError`]); an arithmetic overflow as the Solidity does, `Panic(0x11)`.

// The contract is a library without `main` (src/main.rs is the export binary, built with `export-abi`).
#![cfg_attr(not(any(test, feature = "export-abi")), no_main)]

extern crate alloc;

pub mod math;

use alloc::vec::Vec;

use alloy_primitives::U256;
use alloy_sol_types::{sol, Panic, PanicKind, SolError};
use stylus_sdk::prelude::*;

use crate::math::ConsensusError;

sol! {
    #![sol(all_derives)]

    /// The outputs of one consensus run, laid out as `YumaConsensus.Result` (1e18 fixed point).
    #[derive(AbiType)]
    struct ConsensusResult {
        uint256[] consensus;
        uint256[] incentive;
        uint256[] dividends;
        uint256[][] bonds;
    }

    /// `stakes` is empty.
    error ConsensusEngineNoCoordinators();
    /// The first score row is empty.
    error ConsensusEngineNoSolvers();
    /// More than 16 coordinators (`Rewards.MAX_COORDINATORS_PER_TASK`).
    error ConsensusEngineTooManyCoordinators(uint256 got, uint256 max);
    /// More than 16 solvers (`Rewards.MAX_SOLVERS_PER_TASK`).
    error ConsensusEngineTooManySolvers(uint256 got, uint256 max);
    /// `scores.length != stakes.length`.
    error ConsensusEngineScoreRowCount(uint256 stakes, uint256 scoreRows);
    /// `scores[row].length != scores[0].length`.
    error ConsensusEngineRaggedScores(uint256 row, uint256 got, uint256 expected);
    /// `prevBonds.length != stakes.length`.
    error ConsensusEnginePrevBondsRowCount(uint256 got, uint256 expected);
    /// `prevBonds[row].length != scores[0].length`.
    error ConsensusEngineRaggedPrevBonds(uint256 row, uint256 got, uint256 expected);
    /// `kappa > 1e18`, `alpha == 0` or `alpha > 1e18` (`Rewards.setConsensusParams` bounds).
    error ConsensusEngineInvalidParams(uint256 kappa, uint256 alpha);
}

/// Why `compute` reverted. Every variant but [`ConsensusEngineError::Overflow`] is a custom error
/// declared in `IConsensusEngine.sol`; an overflow reverts with the Solidity's own `Panic(0x11)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsensusEngineError {
    /// `ConsensusEngineNoCoordinators()`.
    NoCoordinators(ConsensusEngineNoCoordinators),
    /// `ConsensusEngineNoSolvers()`.
    NoSolvers(ConsensusEngineNoSolvers),
    /// `ConsensusEngineTooManyCoordinators(got, max)`.
    TooManyCoordinators(ConsensusEngineTooManyCoordinators),
    /// `ConsensusEngineTooManySolvers(got, max)`.
    TooManySolvers(ConsensusEngineTooManySolvers),
    /// `ConsensusEngineScoreRowCount(stakes, scoreRows)`.
    ScoreRowCount(ConsensusEngineScoreRowCount),
    /// `ConsensusEngineRaggedScores(row, got, expected)`.
    RaggedScores(ConsensusEngineRaggedScores),
    /// `ConsensusEnginePrevBondsRowCount(got, expected)`.
    PrevBondsRowCount(ConsensusEnginePrevBondsRowCount),
    /// `ConsensusEngineRaggedPrevBonds(row, got, expected)`.
    RaggedPrevBonds(ConsensusEngineRaggedPrevBonds),
    /// `ConsensusEngineInvalidParams(kappa, alpha)`.
    InvalidParams(ConsensusEngineInvalidParams),
    /// `Panic(0x11)`: arithmetic overflow, exactly as the Solidity library reverts.
    Overflow,
}

fn u(x: usize) -> U256 {
    U256::from(x)
}

impl From<ConsensusError> for ConsensusEngineError {
    /// The revert for an error of [`math::compute`].
    ///
    /// # Panics
    ///
    /// On the payout errors of `autonet-consensus` (`InvalidSplit`, `RewardTooLarge`,
    /// `PayoutLengthMismatch`), which only its `payouts` and `settle` return, never `compute`.
    fn from(e: ConsensusError) -> Self {
        match e {
            ConsensusError::NoCoordinators => {
                Self::NoCoordinators(ConsensusEngineNoCoordinators {})
            }
            ConsensusError::NoSolvers => Self::NoSolvers(ConsensusEngineNoSolvers {}),
            ConsensusError::TooManyCoordinators { got, max } => {
                Self::TooManyCoordinators(ConsensusEngineTooManyCoordinators {
                    got: u(got),
                    max: u(max),
                })
            }
            ConsensusError::TooManySolvers { got, max } => {
                Self::TooManySolvers(ConsensusEngineTooManySolvers {
                    got: u(got),
                    max: u(max),
                })
            }
            ConsensusError::ScoreRowCount { stakes, scores } => {
                Self::ScoreRowCount(ConsensusEngineScoreRowCount {
                    stakes: u(stakes),
                    scoreRows: u(scores),
                })
            }
            ConsensusError::RaggedScores { row, got, expected } => {
                Self::RaggedScores(ConsensusEngineRaggedScores {
                    row: u(row),
                    got: u(got),
                    expected: u(expected),
                })
            }
            ConsensusError::PrevBondsRowCount { got, expected } => {
                Self::PrevBondsRowCount(ConsensusEnginePrevBondsRowCount {
                    got: u(got),
                    expected: u(expected),
                })
            }
            ConsensusError::RaggedPrevBonds { row, got, expected } => {
                Self::RaggedPrevBonds(ConsensusEngineRaggedPrevBonds {
                    row: u(row),
                    got: u(got),
                    expected: u(expected),
                })
            }
            ConsensusError::InvalidParams { kappa, alpha } => {
                Self::InvalidParams(ConsensusEngineInvalidParams { kappa, alpha })
            }
            ConsensusError::Overflow { .. } => Self::Overflow,
            ConsensusError::InvalidSplit { .. }
            | ConsensusError::RewardTooLarge { .. }
            | ConsensusError::PayoutLengthMismatch { .. } => {
                unreachable!("compute returns no payout error")
            }
        }
    }
}

impl From<ConsensusEngineError> for Vec<u8> {
    /// The revert data: the ABI-encoded custom error, or `Panic(0x11)` for an overflow.
    fn from(e: ConsensusEngineError) -> Vec<u8> {
        match e {
            ConsensusEngineError::NoCoordinators(x) => x.abi_encode(),
            ConsensusEngineError::NoSolvers(x) => x.abi_encode(),
            ConsensusEngineError::TooManyCoordinators(x) => x.abi_encode(),
            ConsensusEngineError::TooManySolvers(x) => x.abi_encode(),
            ConsensusEngineError::ScoreRowCount(x) => x.abi_encode(),
            ConsensusEngineError::RaggedScores(x) => x.abi_encode(),
            ConsensusEngineError::PrevBondsRowCount(x) => x.abi_encode(),
            ConsensusEngineError::RaggedPrevBonds(x) => x.abi_encode(),
            ConsensusEngineError::InvalidParams(x) => x.abi_encode(),
            ConsensusEngineError::Overflow => Panic::from(PanicKind::UnderOverflow).abi_encode(),
        }
    }
}

/// Lists the custom errors in the exported interface (`Panic` is built into Solidity and must not be
/// redeclared there, so it is left out).
#[cfg(feature = "export-abi")]
impl stylus_sdk::abi::export::internal::InnerTypes for ConsensusEngineError {
    fn inner_types() -> Vec<stylus_sdk::abi::export::internal::InnerType> {
        use alloc::{format, string::String};
        use core::any::TypeId;
        use stylus_sdk::abi::export::internal::InnerType;

        /// `error Name(type name, ...);` from the error's signature and its parameter names.
        fn item<E: SolError + 'static>(names: &[&str]) -> InnerType {
            let sig = E::SIGNATURE;
            let open = sig.find('(').expect("error signature has parameters");
            let types: Vec<&str> = sig[open + 1..sig.len() - 1]
                .split(',')
                .filter(|t| !t.is_empty())
                .collect();
            assert_eq!(types.len(), names.len(), "parameter names of {sig}");
            let params: Vec<String> = types
                .iter()
                .zip(names)
                .map(|(t, n)| format!("{t} {n}"))
                .collect();
            InnerType {
                name: format!("error {}({});", &sig[..open], params.join(", ")),
                id: TypeId::of::<E>(),
            }
        }
        alloc::vec![
            item::<ConsensusEngineNoCoordinators>(&[]),
            item::<ConsensusEngineNoSolvers>(&[]),
            item::<ConsensusEngineTooManyCoordinators>(&["got", "max"]),
            item::<ConsensusEngineTooManySolvers>(&["got", "max"]),
            item::<ConsensusEngineScoreRowCount>(&["stakes", "scoreRows"]),
            item::<ConsensusEngineRaggedScores>(&["row", "got", "expected"]),
            item::<ConsensusEnginePrevBondsRowCount>(&["got", "expected"]),
            item::<ConsensusEngineRaggedPrevBonds>(&["row", "got", "expected"]),
            item::<ConsensusEngineInvalidParams>(&["kappa", "alpha"]),
        ]
    }
}

/// The Stylus contract. It keeps no state.
#[storage]
#[entrypoint]
pub struct ConsensusEngine {}

#[public]
impl ConsensusEngine {
    /// `YumaConsensus.compute(stakes, scores, prevBonds, kappa, alpha)`: the consensus `C`, incentive
    /// `I`, dividends `D` and new bonds `B'` of one task, bit for bit as the Solidity library, after
    /// the input checks of `Rewards` (see [`math`]).
    #[allow(non_snake_case)]
    pub fn compute(
        stakes: Vec<U256>,
        scores: Vec<Vec<u16>>,
        prevBonds: Vec<Vec<U256>>,
        kappa: U256,
        alpha: U256,
    ) -> Result<ConsensusResult, ConsensusEngineError> {
        let out = math::compute(&stakes, &scores, &prevBonds, kappa, alpha)?;
        Ok(ConsensusResult {
            consensus: out.consensus,
            incentive: out.incentive,
            dividends: out.dividends,
            bonds: out.bonds,
        })
    }
}
