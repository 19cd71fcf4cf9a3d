//! How the inference node's generation layer ([`LoadedModel`]) handles concurrent requests:
//! greedy generations of `AUTONET_BENCH_TOKENS` (128) bytes after a 16-byte prompt, the
//! `small` preset with random weights, as 1 stream and as `AUTONET_BENCH_STREAMS` (8) streams
//! started together (each on its own thread, as the node's request handlers are), total
//! bytes/s over `AUTONET_BENCH_REPEATS` (3) rounds after one warm-up. Two ways:
//! - `copies`: the default, one copy of the model per core (at most 4), libtorch at 1 thread;
//! - `batched`: `autonet serve --batch-slots 8`, one batching thread per copy (per core), each
//!   decoding its streams together (one forward call per step), at 1 and at 2 libtorch threads
//!   (`--threads`); `batched-1`: a single batching thread.
//!
//! Prints `RESULT node <way> <threads>t <streams> bytes_per_s <x>` lines. The outputs of every
//! way are checked equal first.

use std::time::Instant;

use alloy::primitives::B256;
use autonet_inference::model::{LoadedModel, default_copies};
use autonet_ml::{GenerateParams, Lm, ModelConfig, init_weights};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Total bytes/s of `streams` concurrent generations, `repeats` rounds.
fn run(model: &LoadedModel, streams: usize, repeats: usize, params: &GenerateParams) -> f64 {
    let prompt = b"fn main() {\n    ";
    let round = || {
        std::thread::scope(|s| {
            for _ in 0..streams {
                s.spawn(|| model.generate(prompt, params).expect("generate"));
            }
        })
    };
    round();
    let t = Instant::now();
    for _ in 0..repeats {
        round();
    }
    (streams * repeats * params.max_tokens) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let tokens = env_or("AUTONET_BENCH_TOKENS", 128);
    let repeats = env_or("AUTONET_BENCH_REPEATS", 3);
    let streams = env_or("AUTONET_BENCH_STREAMS", 8);
    let cfg = ModelConfig::small();
    let weights = init_weights(&cfg, 1).expect("init");
    let lm = || Lm::new(&cfg, &weights, tch::Device::Cpu).expect("model");
    let params = GenerateParams::greedy(tokens);
    let prompt = b"fn main() {\n    ";
    let want = autonet_ml::generate(&lm(), prompt, &params).expect("generate");
    println!(
        "node generation layer, small preset: greedy {tokens} bytes, {repeats} rounds, {} copies",
        default_copies()
    );
    for (way, threads) in [
        ("copies", 1),
        ("batched", 1),
        ("batched-1", 1),
        ("batched", 2),
    ] {
        // Before the model's threads run anything: libtorch reads the count once per thread.
        tch::set_num_threads(threads);
        let model = match way {
            "copies" => {
                LoadedModel::with_copies(B256::ZERO, (0..default_copies()).map(|_| lm()).collect())
            }
            "batched" => LoadedModel::new(B256::ZERO, lm())
                .with_batchers((0..default_copies()).map(|_| lm()).collect(), 8),
            _ => LoadedModel::new(B256::ZERO, lm()).with_batchers(vec![lm()], 8),
        };
        assert_eq!(
            model.generate(prompt, &params).expect("generate").output,
            String::from_utf8_lossy(&want),
            "{way} changed the output"
        );
        for n in [1, streams] {
            let speed = run(&model, n, repeats, &params);
            println!("RESULT node {way} {threads}t {n} bytes_per_s {speed:.1}");
        }
    }
}
