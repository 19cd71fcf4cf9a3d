//! Generation throughput of the `small` preset (bytes/s), the tch side of `make bench-generate`.
//!
//! Same protocol as `bench/pytorch_generate.py`: greedy decoding of `AUTONET_BENCH_TOKENS` (128)
//! bytes after a 16-byte prompt, one stream; 2 untimed warm-up generations, then
//! `AUTONET_BENCH_REPEATS` (5) timed ones. Measured three ways:
//! - `kv`: [`autonet_ml::generate`] (KV cache, the node's path);
//! - `full`: the path before the KV cache, the whole window through the model per byte;
//! - `8 streams`: 8 generations at once on 8 threads, a copy of the model each (no batching
//!   across requests: each stream decodes alone), total bytes/s.
//!
//! Prints `RESULT tch <kind> bytes_per_s <x>` lines. Env: `AUTONET_BENCH_THREADS` (libtorch's
//! intra-op threads, default libtorch's), `AUTONET_BENCH_PRESET` (small).

use std::time::Instant;

use autonet_ml::generate::greedy_without_cache;
use autonet_ml::{GenerateParams, Lm, generate, init_weights};
use tch::Device;

mod common;
use common::{env_or, setup};

fn time(repeats: usize, bytes: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let t = Instant::now();
    for _ in 0..repeats {
        f();
    }
    (repeats * bytes) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let (preset, cfg) = setup();
    let tokens = env_or("AUTONET_BENCH_TOKENS", 128);
    let repeats = env_or("AUTONET_BENCH_REPEATS", 5);
    let lm = Lm::new(&cfg, &init_weights(&cfg, 1).expect("init"), Device::Cpu).expect("model");
    let prompt = b"fn main() {\n    ";
    let params = GenerateParams::greedy(tokens);
    let kv_out = generate(&lm, prompt, &params).expect("generate");
    assert_eq!(
        kv_out,
        greedy_without_cache(&lm, prompt, tokens),
        "the KV cache changed the greedy output"
    );
    let kv = time(repeats, tokens, || {
        generate(&lm, prompt, &params).expect("generate");
    });
    let full = time(repeats, tokens, || {
        greedy_without_cache(&lm, prompt, tokens);
    });
    // 8 streams: a model per thread (an `Lm` is not shared across threads), started together.
    let streams = 8;
    let weights = init_weights(&cfg, 1).expect("init");
    let barrier = std::sync::Barrier::new(streams);
    let slowest = std::thread::scope(|s| {
        let handles: Vec<_> = (0..streams)
            .map(|_| {
                let (cfg, weights, barrier, params) = (&cfg, &weights, &barrier, &params);
                s.spawn(move || {
                    let lm = Lm::new(cfg, weights, Device::Cpu).expect("model");
                    generate(&lm, prompt, params).expect("generate");
                    barrier.wait();
                    let t = Instant::now();
                    for _ in 0..repeats {
                        generate(&lm, prompt, params).expect("generate");
                    }
                    t.elapsed().as_secs_f64()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("stream"))
            .fold(0.0, f64::max)
    });
    let concurrent = (streams * repeats * tokens) as f64 / slowest;
    println!(
        "tch {preset}: threads {}, greedy {tokens} bytes after a {}-byte prompt, {repeats} timed runs",
        tch::get_num_threads(),
        prompt.len()
    );
    println!("RESULT tch kv bytes_per_s {kv:.1}");
    println!("RESULT tch full bytes_per_s {full:.1}");
    println!("RESULT tch kv_8_streams bytes_per_s {concurrent:.1}");
}
