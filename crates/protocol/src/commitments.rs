//! The commit-reveal commitments of a task, byte for byte as `TaskManager` recomputes them at
//! reveal (`docs/contracts.md`, "Commitments"):
//!
//! ```text
//! gtCommit       = keccak256(abi.encode(address proposer, uint256 projectId, bytes32 evalSpecHash, bytes32 salt))
//! solutionCommit = keccak256(abi.encode(uint256 taskId, address solver, bytes32 deltaRoot, bytes32 manifestHash, bytes32 salt))
//! voteCommit     = keccak256(abi.encode(uint256 taskId, address coordinator, uint16[] scores, bytes32 salt))
//! ```
//!
//! `abi.encode(a, b, …)` is the ABI encoding of the arguments as a parameter list (heads then
//! tails, no outer offset word), which is `SolValue::abi_encode_params` of the tuple.
//!
//! This module owns only these hashes. It must not draw salts (no RNG, no I/O: the caller makes a
//! 32-byte random salt and keeps it until the reveal) and must not send anything.

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;

/// `keccak256(abi.encode(proposer, projectId, evalSpecHash, salt))`: the ground-truth commitment
/// a proposer posts with `proposeTask` and opens with `revealGroundTruth`.
pub fn gt_commit(proposer: Address, project_id: U256, eval_spec_hash: B256, salt: B256) -> B256 {
    keccak256((proposer, project_id, eval_spec_hash, salt).abi_encode_params())
}

/// `keccak256(abi.encode(taskId, solver, deltaRoot, manifestHash, salt))`: a solver's solution
/// commitment (`commitSolution` / `revealSolution`). `manifestHash` is the keccak256 of the
/// delta's canonical manifest (shape, size, content hash), so the revealed root cannot be served
/// under any other manifest.
pub fn solution_commit(
    task_id: U256,
    solver: Address,
    delta_root: B256,
    manifest_hash: B256,
    salt: B256,
) -> B256 {
    keccak256((task_id, solver, delta_root, manifest_hash, salt).abi_encode_params())
}

/// The bytes hashed by [`vote_commit`]: `abi.encode(taskId, coordinator, uint16[] scores, salt)`.
/// The array is dynamic: its head is the offset `0x80`, its tail the length then one word per
/// score.
pub fn vote_commit_preimage(
    task_id: U256,
    coordinator: Address,
    scores: &[u16],
    salt: B256,
) -> Vec<u8> {
    (task_id, coordinator, scores.to_vec(), salt).abi_encode_params()
}

/// `keccak256(abi.encode(taskId, coordinator, scores, salt))` with `uint16[] scores`: a
/// coordinator's vote commitment (`commitVote` / `revealVote`). `scores` is the row over the
/// task's solvers in their reveal order.
pub fn vote_commit(task_id: U256, coordinator: Address, scores: &[u16], salt: B256) -> B256 {
    keccak256(vote_commit_preimage(task_id, coordinator, scores, salt))
}
