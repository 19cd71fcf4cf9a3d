//! The shared consensus vectors (`test/vectors/consensus/*.json`, also checked by
//! `test/YumaConsensus.t.sol` against the Solidity and by `crates/consensus/tests/vectors.rs`):
//! every one must come out exactly, through the math module, through the contract method and
//! through the contract's ABI router on a `TestVM` (calldata and return data as Solidity has them).

mod common;

use alloy_primitives::{keccak256, U256};
use alloy_sol_types::SolCall;
use autonet_consensus_engine::{ConsensusEngine, ConsensusResult};
use common::{call_compute, computeCall, load_vectors, vectors_dir};
use stylus_sdk::testing::TestVM;

/// The vectors this suite must at least see (the Solidity suite requires the same minimum).
const MIN_VECTORS: usize = 9;

#[test]
fn every_vector_matches_through_math_method_and_router() {
    let vectors = load_vectors();
    assert!(
        vectors.len() >= MIN_VECTORS,
        "only {} vectors in {}",
        vectors.len(),
        vectors_dir().display()
    );

    let vm = TestVM::default();
    // A contract instance on the test VM (the engine is stateless; this checks it instantiates).
    let _engine = ConsensusEngine::from(&vm);

    let mut checked = 0usize;
    let mut failures = Vec::new();
    for v in &vectors {
        let i = &v.input;
        assert_eq!(
            i.scores.len(),
            i.stakes.len(),
            "{}: malformed vector",
            v.name
        );

        // 1. The pure math module.
        match i.run() {
            Ok(out) if out == v.expected => {}
            other => failures.push(format!("{} (math): {other:?}", v.name)),
        }

        // 2. The contract's public method, called as Rust.
        let expected_sol = ConsensusResult {
            consensus: v.expected.consensus.clone(),
            incentive: v.expected.incentive.clone(),
            dividends: v.expected.dividends.clone(),
            bonds: v.expected.bonds.clone(),
        };
        match ConsensusEngine::compute(
            i.stakes.clone(),
            i.scores.clone(),
            i.prev_bonds.clone(),
            i.kappa,
            i.alpha,
        ) {
            Ok(r) if r == expected_sol => {}
            other => failures.push(format!("{} (method): {other:?}", v.name)),
        }

        // 3. Solidity-encoded calldata through the router, return data decoded as YumaConsensus.Result.
        match call_compute(i) {
            Ok(out) if out == v.expected => {}
            other => failures.push(format!("{} (router): {other:?}", v.name)),
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    assert_eq!(checked, vectors.len());
    assert!(checked >= MIN_VECTORS, "checked {checked} vectors");
    eprintln!("checked {checked} vectors (math, method and router each)");
}

#[test]
fn selector_is_the_solidity_one() {
    // The Solidity canonical signature of YumaConsensus.compute's parameters.
    let signature = "compute(uint256[],uint16[][],uint256[][],uint256,uint256)";
    let expected: [u8; 4] = keccak256(signature.as_bytes())[..4].try_into().unwrap();
    assert_eq!(computeCall::SIGNATURE, signature);
    assert_eq!(computeCall::SELECTOR, expected);

    // The selector the SDK's router dispatches on, from the contract's Rust parameter types.
    let sdk = stylus_sdk::function_selector!(
        "compute",
        Vec<U256>,
        Vec<Vec<u16>>,
        Vec<Vec<U256>>,
        U256,
        U256
    );
    assert_eq!(
        sdk, expected,
        "SDK selector differs from keccak256({signature})"
    );
    eprintln!("compute selector {}", hex(&expected));
}

fn hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

#[test]
fn return_data_is_one_abi_encoded_struct() {
    // Solidity returns `Result memory` as a single dynamic tuple: the first word is its offset 0x20.
    let v = &load_vectors()[0];
    let ret = common::call(v.input.calldata()).expect("vector computes");
    assert_eq!(U256::from_be_slice(&ret[..32]), U256::from(32));
    let decoded = computeCall::abi_decode_returns_validate(&ret).expect("decodes");
    assert_eq!(decoded.consensus, v.expected.consensus);
    // Re-encoding what was decoded gives back exactly the bytes the engine returned.
    assert_eq!(computeCall::abi_encode_returns(&decoded), ret);
}

#[test]
fn committed_interface_declares_the_solidity_signature() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("IConsensusEngine.sol");
    let sol = std::fs::read_to_string(&path).expect("IConsensusEngine.sol (make stylus-abi)");
    let line = sol
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("function compute("))
        .expect("compute declared");
    let params = &line["function compute(".len()..line.find(')').unwrap()];
    // "uint256[] memory stakes" → "uint256[]"
    let types: Vec<&str> = params
        .split(", ")
        .map(|p| p.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        format!("compute({})", types.join(",")),
        computeCall::SIGNATURE
    );
    assert!(
        line.ends_with("external pure returns (ConsensusResult memory);"),
        "{line}"
    );
    // The returned struct has YumaConsensus.Result's fields, in its order.
    assert!(sol.contains(
        "struct ConsensusResult {uint256[] consensus;uint256[] incentive;uint256[] dividends;uint256[][] bonds;}"
    ));
}
