//! Autonet storage: how a model or delta is cut into erasure-coded shards, committed on chain,
//! served and fetched back (`docs/protocol.md` §5).
//!
//! - [`manifest`]: the manifest a publisher commits to, its canonical JSON and hash, validation.
//! - [`shard`]: Reed–Solomon encoding into `k + m` shards and reconstruction from any `k`.
//! - [`proof`]: shard Merkle proofs as `ModelShardRegistry.verifyShard` checks them (built on
//!   `autonet_protocol::merkle`, the project's single Merkle rule).
//! - [`store`]: the local content-addressed directory store (atomic writes, re-verified reads).
//! - [`server`]: the HTTP shard server (axum) over a store.
//! - [`client`]: the verifying fetch client (reqwest) that rebuilds from peers into a store.
//!
//! ```
//! use autonet_storage::{ShardParams, proof, shard};
//!
//! let bytes = b"safetensors bytes of a model".to_vec();
//! let enc = shard::encode(&bytes, ShardParams::default()).unwrap();
//! let m = &enc.manifest;
//! // Any k = 4 of the 6 shards rebuild the bytes.
//! let slots = vec![None, Some(enc.shards[1].clone()), None, Some(enc.shards[3].clone()),
//!                  Some(enc.shards[4].clone()), Some(enc.shards[5].clone())];
//! assert_eq!(shard::reconstruct(m, slots).unwrap(), bytes);
//! // Every shard proves against the root that goes on chain.
//! let p = proof::proof(m, 2).unwrap();
//! assert!(proof::verify(&m.root, 2, m.shard_count(), &m.shard_hashes[2], &p));
//! ```
#![warn(missing_docs)]

pub mod client;
pub mod manifest;
pub mod proof;
pub mod server;
pub mod shard;
pub mod store;

pub use autonet_protocol::merkle::Hash32;
pub use client::{ClientError, FetchConfig, Fetched, ShardClient};
pub use manifest::{Manifest, ManifestError, ShardParams};
pub use server::{ServerError, ShardServer};
pub use shard::{Encoded, ShardError};
pub use store::{Store, StoreError};
