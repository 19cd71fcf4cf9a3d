//! The values every role derives for a task from public hashes alone: the task's `specHash`
//! and the seeds of its training and evaluation.
//!
//! Per task, the `specHash` binds the base model ([`task_spec_hash`]); the revealed
//! `evalSpecHash`, mixed with the hash of the task's `solRevealEnd` block, seeds the evaluation
//! windows ([`eval_seed`]); each solver trains with a seed bound to the task and its account
//! ([`train_seed`]).

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;

/// `specHash` of a task training from `base_root` in `project_id`.
pub fn task_spec_hash(project_id: U256, base_root: B256) -> B256 {
    keccak256((keccak256(b"autonet.task.v1"), project_id, base_root).abi_encode())
}

/// The seed of a task's evaluation windows: `seed_of(keccak256(abi.encode(evalSpecHash,
/// beacon)))`, with `beacon` the hash of the task's `solRevealEnd` block.
pub fn eval_seed(eval_spec_hash: B256, beacon: B256) -> u64 {
    seed_of(keccak256((eval_spec_hash, beacon).abi_encode()))
}

/// The seed of `solver`'s local training on `task_id`: `seed_of(keccak256(abi.encode(taskId,
/// solver)))`.
pub fn train_seed(task_id: U256, solver: Address) -> u64 {
    seed_of(keccak256((task_id, solver).abi_encode()))
}

/// A u64 seed from a hash (its first 8 bytes, big-endian).
pub fn seed_of(hash: B256) -> u64 {
    u64::from_be_bytes(hash.0[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_seed_depends_on_the_spec_and_the_beacon() {
        let spec = B256::repeat_byte(1);
        let beacon = B256::repeat_byte(2);
        let seed = eval_seed(spec, beacon);
        assert_eq!(seed, eval_seed(spec, beacon));
        assert_ne!(seed, eval_seed(spec, B256::repeat_byte(3)));
        assert_ne!(seed, eval_seed(B256::repeat_byte(4), beacon));
        assert_ne!(
            seed,
            seed_of(spec),
            "the proposer's hash alone must not give the seed"
        );
    }

    #[test]
    fn task_spec_binds_project_and_base() {
        let a = task_spec_hash(U256::from(1), B256::repeat_byte(1));
        assert_ne!(a, task_spec_hash(U256::from(2), B256::repeat_byte(1)));
        assert_ne!(a, task_spec_hash(U256::from(1), B256::repeat_byte(2)));
    }

    #[test]
    fn train_seed_binds_task_and_solver() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let seed = train_seed(U256::from(1), a);
        assert_eq!(
            seed,
            seed_of(keccak256((U256::from(1), a).abi_encode())),
            "the first 8 bytes of keccak256(abi.encode(taskId, solver))"
        );
        assert_ne!(seed, train_seed(U256::from(2), a));
        assert_ne!(seed, train_seed(U256::from(1), b));
    }

    #[test]
    fn a_seed_is_the_first_eight_bytes_big_endian() {
        let mut h = B256::ZERO;
        h.0[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        h.0[8] = 0xff;
        assert_eq!(seed_of(h), 0x0102_0304_0506_0708);
    }
}
