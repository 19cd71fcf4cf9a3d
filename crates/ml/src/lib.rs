//! Autonet ML: the reference task family of the protocol (`docs/protocol.md` §6).
//!
//! This crate owns everything a solver, coordinator or aggregator needs to *compute* on models:
//!
//! - [`corpus`]: any directory of text files (or the Rust sources pinned by `Cargo.lock`) turned
//!   into fixed-size, keccak256 content-addressed chunks and a JSON manifest with a Merkle root.
//! - [`merkle`]: the one Merkle rule of the project (sorted-pair keccak256, OpenZeppelin
//!   `MerkleProof` compatible).
//! - [`model`]: a small causal transformer language model on `tch` (libtorch), byte-level.
//! - [`train`]: local training (AdamW, gradient clipping) returning a weight delta, and
//!   deterministic evaluation.
//! - [`aggregate`]: pure-Rust, bit-reproducible robust aggregation of deltas (trimmed mean,
//!   median, Multi-Krum, FedAvg) weighted by consensus incentives.
//! - [`attack`]: solver-side attack modes (sign flip, scaling, ALIE, IPM, noise, lazy, copier)
//!   for robustness experiments and misbehaving test solvers.
//! - [`outer`]: the outer step turning the aggregate into the next model (`base + aggregate`,
//!   or DiLoCo's Nesterov momentum), bit-reproducible.
//! - [`duplicates`]: the protocol's deterministic rule for near-duplicate (copied) deltas.
//! - [`tensors`] and [`codec`]: the named f32 tensor set that travels between roles, and its
//!   canonical safetensors encoding and hash.
//!
//! It does no networking and no chain access; role agents call into it.
#![warn(missing_docs)]

pub mod aggregate;
pub mod attack;
pub mod codec;
pub mod corpus;
pub mod duplicates;
pub mod fpenv;
pub mod generate;
pub use autonet_protocol::merkle;
pub mod model;
pub mod outer;
pub mod rng;
pub mod speculative;
pub mod tensors;
pub mod train;

pub use aggregate::{AggregateError, Contribution, Rule, aggregate, apply_stale};
pub use attack::{Attack, AttackError};
pub use codec::{CodecError, content_hash, from_safetensors, to_safetensors};
pub use corpus::{Chunk, Corpus, CorpusError, CorpusOptions, Manifest};
pub use generate::{
    Finish, FinishReason, GenerateError, GenerateParams, generate, generate_stream,
};
pub use model::{KvCache, Lm, ModelConfig, ModelError, default_device, init_weights};
pub use outer::{MAX_LR_PERMILLE, MOMENTUM_PREFIX, ModelState, Outer, OuterError};
pub use speculative::{
    SpecStats, generate_stream_with_draft, speculative_greedy, speculative_stream,
};
pub use tensors::{Delta, NamedTensor, TensorError, TensorSet, Weights};
pub use train::{
    EvalSpec, TrainError, TrainOutput, TrainParams, evaluate, evaluate_on, train, train_with_hook,
};
