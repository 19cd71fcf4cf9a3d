//! Training throughput of the `small` preset (tokens/s), the tch side of `make bench-pytorch`.
//!
//! Same protocol as `bench/pytorch_small.py`: random byte windows, batch 16 × context 128,
//! AdamW (lr 3e-3, wd 0.01), gradient-norm clip 1.0; `WARMUP` untimed steps, then `STEPS` timed
//! steps. Prints `RESULT tch tokens_per_s <x>`.
//! Env: `AUTONET_BENCH_THREADS` (default: libtorch's), `AUTONET_BENCH_STEPS` (20),
//! `AUTONET_BENCH_PRESET` (small), `AUTONET_BENCH_BATCH` (16).

use std::time::Instant;

use autonet_ml::corpus::Chunk;
use autonet_ml::rng::SplitMix64;
use autonet_ml::{TrainParams, init_weights, train};
use tch::Device;

mod common;
use common::{env_or, setup};

fn main() {
    let (preset, cfg) = setup();
    let steps = env_or("AUTONET_BENCH_STEPS", 20);
    let batch = env_or("AUTONET_BENCH_BATCH", 16);
    let warmup = 3;
    let mut rng = SplitMix64::new(1);
    let data: Vec<u8> = (0..1 << 20).map(|_| rng.below(256) as u8).collect();
    let chunk = Chunk {
        index: 0,
        hash: [0; 32],
        data,
    };
    let base = init_weights(&cfg, 0).expect("init");
    let params = |steps| TrainParams {
        steps,
        batch,
        lr: 3e-3,
        weight_decay: 0.01,
        grad_clip: 1.0,
        warmup_steps: 0,
        seed: 7,
        device: Device::Cpu,
        progress: false,
    };
    train(&cfg, &base, &[&chunk], &params(warmup)).expect("warmup");
    let t = Instant::now();
    train(&cfg, &base, &[&chunk], &params(steps)).expect("train");
    let secs = t.elapsed().as_secs_f64();
    let tokens = (steps * batch * cfg.context) as f64;
    println!(
        "tch {preset}: {} params, threads {}, {steps} steps × {batch}×{} tokens in {secs:.2}s ({:.1} ms/step)",
        cfg.num_params(),
        tch::get_num_threads(),
        cfg.context,
        1e3 * secs / steps as f64
    );
    println!("RESULT tch tokens_per_s {:.1}", tokens / secs);
}
