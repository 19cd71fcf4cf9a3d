//! Bad input reverts with the documented error, in the math module and through the ABI router
//! (revert data decoded as a Solidity caller would); inputs exactly at the caps still compute.

mod common;

use alloy_primitives::U256;
use alloy_sol_types::{Panic, PanicKind, SolCall, SolError};
use autonet_consensus_engine::math::{
    ConsensusError, MAX_COORDINATORS_PER_TASK, MAX_SOLVERS_PER_TASK,
};
use autonet_consensus_engine::{
    ConsensusEngineInvalidParams, ConsensusEngineNoCoordinators, ConsensusEngineNoSolvers,
    ConsensusEnginePrevBondsRowCount, ConsensusEngineRaggedPrevBonds, ConsensusEngineRaggedScores,
    ConsensusEngineScoreRowCount, ConsensusEngineTooManyCoordinators,
    ConsensusEngineTooManySolvers,
};
use common::{call, call_compute, call_on, computeCall, Input, WAD};
use stylus_sdk::testing::TestVM;

fn u(x: usize) -> U256 {
    U256::from(x)
}

/// A valid n × m input: stakes 1..=n, scores (i + j) % 5, previous bonds 1e17.
fn valid(n: usize, m: usize) -> Input {
    Input {
        stakes: (1..=n).map(u).collect(),
        scores: (0..n)
            .map(|i| (0..m).map(|j| ((i + j) % 5) as u16).collect())
            .collect(),
        prev_bonds: vec![vec![WAD / u(10); m]; n],
        kappa: WAD / u(2),
        alpha: WAD / u(10),
    }
}

/// Runs `input` through the math and the router: the math must return `math_err`, the router must
/// revert with exactly `revert` (the ABI-encoded custom error).
fn expect_revert(input: &Input, math_err: ConsensusError, revert: Vec<u8>) {
    assert_eq!(input.run(), Err(math_err), "math: {input:?}");
    assert_eq!(call_compute(input), Err(revert), "router: {input:?}");
}

#[test]
fn inputs_at_the_caps_compute() {
    for (n, m) in [
        (1, 1),
        (MAX_COORDINATORS_PER_TASK, 1),
        (1, MAX_SOLVERS_PER_TASK),
        (16, 16),
    ] {
        let input = valid(n, m);
        let out = input.run().unwrap_or_else(|e| panic!("{n}×{m}: {e:?}"));
        assert_eq!(call_compute(&input), Ok(out), "{n}×{m}");
    }
}

#[test]
fn empty_inputs_revert() {
    let mut input = valid(1, 1);
    input.stakes.clear();
    input.scores.clear();
    input.prev_bonds.clear();
    expect_revert(
        &input,
        ConsensusError::NoCoordinators,
        ConsensusEngineNoCoordinators {}.abi_encode(),
    );

    let mut input = valid(3, 2);
    input.scores = vec![vec![]; 3];
    input.prev_bonds = vec![vec![]; 3];
    expect_revert(
        &input,
        ConsensusError::NoSolvers,
        ConsensusEngineNoSolvers {}.abi_encode(),
    );
}

#[test]
fn sizes_over_the_cap_revert() {
    let input = valid(MAX_COORDINATORS_PER_TASK + 1, 3);
    expect_revert(
        &input,
        ConsensusError::TooManyCoordinators { got: 17, max: 16 },
        ConsensusEngineTooManyCoordinators {
            got: u(17),
            max: u(16),
        }
        .abi_encode(),
    );
    let input = valid(2, MAX_SOLVERS_PER_TASK + 1);
    expect_revert(
        &input,
        ConsensusError::TooManySolvers { got: 17, max: 16 },
        ConsensusEngineTooManySolvers {
            got: u(17),
            max: u(16),
        }
        .abi_encode(),
    );
    // Far over the cap is rejected the same way (before any arithmetic).
    let input = valid(40, 40);
    expect_revert(
        &input,
        ConsensusError::TooManyCoordinators { got: 40, max: 16 },
        ConsensusEngineTooManyCoordinators {
            got: u(40),
            max: u(16),
        }
        .abi_encode(),
    );
}

#[test]
fn mismatched_lengths_revert() {
    let mut input = valid(3, 4);
    input.scores.pop();
    expect_revert(
        &input,
        ConsensusError::ScoreRowCount {
            stakes: 3,
            scores: 2,
        },
        ConsensusEngineScoreRowCount {
            stakes: u(3),
            scoreRows: u(2),
        }
        .abi_encode(),
    );

    let mut input = valid(3, 4);
    input.scores[2].push(1);
    expect_revert(
        &input,
        ConsensusError::RaggedScores {
            row: 2,
            got: 5,
            expected: 4,
        },
        ConsensusEngineRaggedScores {
            row: u(2),
            got: u(5),
            expected: u(4),
        }
        .abi_encode(),
    );

    let mut input = valid(3, 4);
    input.prev_bonds.push(vec![U256::ZERO; 4]);
    expect_revert(
        &input,
        ConsensusError::PrevBondsRowCount {
            got: 4,
            expected: 3,
        },
        ConsensusEnginePrevBondsRowCount {
            got: u(4),
            expected: u(3),
        }
        .abi_encode(),
    );

    let mut input = valid(3, 4);
    input.prev_bonds[1].pop();
    expect_revert(
        &input,
        ConsensusError::RaggedPrevBonds {
            row: 1,
            got: 3,
            expected: 4,
        },
        ConsensusEngineRaggedPrevBonds {
            row: u(1),
            got: u(3),
            expected: u(4),
        }
        .abi_encode(),
    );
}

#[test]
fn parameters_out_of_range_revert() {
    for (kappa, alpha) in [
        (WAD + U256::from(1), WAD / u(10)),
        (WAD / u(2), U256::ZERO),
        (WAD / u(2), WAD + U256::from(1)),
        (U256::MAX, U256::MAX),
    ] {
        let input = Input {
            kappa,
            alpha,
            ..valid(2, 2)
        };
        expect_revert(
            &input,
            ConsensusError::InvalidParams { kappa, alpha },
            ConsensusEngineInvalidParams { kappa, alpha }.abi_encode(),
        );
    }
    // The bounds themselves are valid.
    for (kappa, alpha) in [(U256::ZERO, U256::from(1)), (WAD, WAD)] {
        let input = Input {
            kappa,
            alpha,
            ..valid(2, 2)
        };
        assert!(input.run().is_ok());
        assert!(call_compute(&input).is_ok());
    }
}

#[test]
fn overflow_reverts_with_the_solidity_panic() {
    let panic = Panic::from(PanicKind::UnderOverflow).abi_encode();
    assert_eq!(&panic[..4], &[0x4e, 0x48, 0x7b, 0x71]); // Panic(uint256)
    assert_eq!(U256::from_be_slice(&panic[4..]), U256::from(0x11));

    // Σ stake overflows.
    let input = Input {
        stakes: vec![U256::MAX, U256::from(1)],
        ..valid(2, 2)
    };
    let step = "stake normalization";
    expect_revert(&input, ConsensusError::Overflow { step }, panic.clone());

    // stake * 1e18 overflows (Σ stake ≥ 2^256 / 1e18).
    let input = Input {
        stakes: vec![U256::MAX / u(4), U256::MAX / u(4)],
        ..valid(2, 2)
    };
    expect_revert(&input, ConsensusError::Overflow { step }, panic.clone());

    // A previous bond times 1e18 overflows.
    let mut input = valid(2, 2);
    input.prev_bonds[0][1] = U256::MAX / u(2);
    let step = "previous bond normalization";
    expect_revert(&input, ConsensusError::Overflow { step }, panic.clone());

    // Just below: previous bonds up to ~2^256 / 1e18 / n still compute.
    let mut input = valid(2, 2);
    input.prev_bonds[0][1] = U256::MAX / WAD / u(4);
    assert!(input.run().is_ok());
}

#[test]
fn malformed_calldata_reverts_without_data() {
    let good = common::Input::calldata(&valid(2, 2));
    assert!(call(good.clone()).is_ok());

    // Truncated calldata.
    assert_eq!(call(good[..good.len() - 1].to_vec()), Err(Vec::new()));
    // A score word above uint16 (Solidity's decoder reverts too).
    let input = valid(1, 1);
    let mut data = input.calldata();
    let enc = computeCall {
        stakes: input.stakes.clone(),
        scores: vec![vec![0x1234]],
        prevBonds: input.prev_bonds.clone(),
        kappa: input.kappa,
        alpha: input.alpha,
    }
    .abi_encode();
    assert_eq!(enc.len(), data.len());
    let pos = enc
        .windows(2)
        .rposition(|w| w == [0x12, 0x34])
        .expect("score word in calldata");
    data = enc.clone();
    data[pos - 1] = 0x01; // the word now holds 0x011234 > type(uint16).max
    assert!(call(enc).is_ok());
    assert_eq!(call(data), Err(Vec::new()));
    // Unknown selector, and no calldata at all.
    let mut other = good.clone();
    other[0] ^= 0xff;
    assert_eq!(call(other), Err(Vec::new()));
    assert_eq!(call(Vec::new()), Err(Vec::new()));
}

#[test]
fn value_is_refused() {
    let vm = TestVM::default();
    vm.set_value(U256::from(1));
    assert!(call_on(&vm, valid(2, 2).calldata()).is_err());
    vm.set_value(U256::ZERO);
    assert!(call_on(&vm, valid(2, 2).calldata()).is_ok());
}
