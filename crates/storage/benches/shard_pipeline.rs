//! The shard pipeline every round runs, against plain `sha256` of the same bytes.
//!
//! Encode (split into `k` data shards, Reed–Solomon parity, keccak of every shard, the Merkle
//! root and the manifest) and verify + rebuild (check the `k` shards at hand, rebuild the missing
//! ones, check every rebuilt shard and the content hash) of `AUTONET_BENCH_MB` MiB (default 16) of
//! bytes, each the median of `AUTONET_BENCH_REPS` runs (default 5), against `sha256` of the same
//! bytes. Prints the throughputs and, as `RESULT` lines, the ratios (pipeline ÷ sha256, both in
//! bytes per second; the target is ≥ 0.5).
//! Env: `AUTONET_BENCH_MB`, `AUTONET_BENCH_REPS`, `AUTONET_BENCH_K` (4), `AUTONET_BENCH_M` (2).

use std::hint::black_box;

use autonet_test_utils::bench::{median, mib_per_s};

use autonet_storage::ShardParams;
use autonet_storage::shard::{encode, reconstruct_all};
use sha2::{Digest, Sha256};

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let mb = env_or("AUTONET_BENCH_MB", 16);
    let reps = env_or("AUTONET_BENCH_REPS", 5);
    let (k, m) = (env_or("AUTONET_BENCH_K", 4), env_or("AUTONET_BENCH_M", 2));
    let params = ShardParams::new(k as u8, m as u8).expect("AUTONET_BENCH_K / _M out of range");
    let len = mb << 20;
    // Incompressible bytes, as safetensors of trained weights are.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();

    let sha = median(reps, || {
        black_box(Sha256::digest(black_box(&bytes)));
    });
    // One keccak256 pass over the bytes: the pipeline hashes every byte about twice (the shards and
    // the content hash).
    let keccak = median(reps, || {
        black_box(autonet_protocol::merkle::keccak256(black_box(&bytes)));
    });
    let encoded = encode(&bytes, params).expect("encode");
    let enc = median(reps, || {
        black_box(encode(black_box(&bytes), params).expect("encode"));
    });
    // The worst case a fetching node meets: the first `m` data shards missing.
    let partial = || -> Vec<Option<Vec<u8>>> {
        encoded
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| (i >= m).then(|| s.clone()))
            .collect()
    };
    let rebuild = median(reps, || {
        let shards = partial();
        black_box(reconstruct_all(&encoded.manifest, shards).expect("rebuild"));
    });
    // The copy of the shards that `rebuild` starts from is not the pipeline's work.
    let copy = median(reps, || {
        black_box(partial());
    });
    let rebuild = rebuild.saturating_sub(copy);

    println!("shard pipeline over {mb} MiB (k = {k}, m = {m}), median of {reps}:");
    println!("  sha256            {:>8.1} MiB/s", mib_per_s(len, sha));
    println!("  keccak256         {:>8.1} MiB/s", mib_per_s(len, keccak));
    println!("  encode            {:>8.1} MiB/s", mib_per_s(len, enc));
    println!("  verify + rebuild  {:>8.1} MiB/s", mib_per_s(len, rebuild));
    println!(
        "RESULT shard_encode_vs_sha256 {:.2}",
        sha.as_secs_f64() / enc.as_secs_f64()
    );
    println!(
        "RESULT shard_verify_rebuild_vs_sha256 {:.2}",
        sha.as_secs_f64() / rebuild.as_secs_f64()
    );
}
