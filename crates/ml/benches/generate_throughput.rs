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

use autonet_ml::{GenerateParams, Lm, ModelConfig, generate, init_weights};
use tch::{Device, Tensor};

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Greedy decoding as the node did before the KV cache: the whole window per byte.
fn full_rerun(lm: &Lm, prompt: &[u8], n: usize) -> Vec<u8> {
    let context = lm.config().context;
    let mut seq: Vec<i64> = prompt.iter().map(|&b| i64::from(b)).collect();
    let mut out = Vec::with_capacity(n);
    tch::no_grad(|| {
        for _ in 0..n {
            let window = &seq[seq.len().saturating_sub(context)..];
            let x = Tensor::from_slice(window).view([1, window.len() as i64]);
            let next = lm
                .forward(&x)
                .get(0)
                .get(-1)
                .argmax(0, false)
                .int64_value(&[]);
            seq.push(next);
            out.push(next as u8);
        }
    });
    out
}

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
    autonet_ml::fpenv::flush_denormals();
    if let Ok(t) = std::env::var("AUTONET_BENCH_THREADS")
        && let Ok(t) = t.parse()
    {
        tch::set_num_threads(t);
    }
    let preset = std::env::var("AUTONET_BENCH_PRESET").unwrap_or_else(|_| "small".into());
    let cfg = ModelConfig::preset(&preset).expect("unknown preset");
    let tokens = env_or("AUTONET_BENCH_TOKENS", 128);
    let repeats = env_or("AUTONET_BENCH_REPEATS", 5);
    let lm = Lm::new(&cfg, &init_weights(&cfg, 1).expect("init"), Device::Cpu).expect("model");
    let prompt = b"fn main() {\n    ";
    let params = GenerateParams::greedy(tokens);
    let kv_out = generate(&lm, prompt, &params).expect("generate");
    assert_eq!(
        kv_out,
        full_rerun(&lm, prompt, tokens),
        "the KV cache changed the greedy output"
    );
    let kv = time(repeats, tokens, || {
        generate(&lm, prompt, &params).expect("generate");
    });
    let full = time(repeats, tokens, || {
        full_rerun(&lm, prompt, tokens);
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
