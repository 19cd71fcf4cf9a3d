//! Robust aggregation of `n` deltas against a `memcpy` of the same bytes, in the same run.
//!
//! Every round the aggregator and every coordinator aggregate the solvers' deltas
//! ([`autonet_ml::aggregate`]: canonical order by content hash, then the rule coordinate by
//! coordinate in f64). This measures each rule on `n` deltas with the layout of the
//! `AUTONET_BENCH_PRESET` model (default `small`) and, as the yardstick, copying the same
//! `n × delta` bytes once. Each figure is the median of `AUTONET_BENCH_REPS` runs (default 5).
//! Prints throughputs in MiB/s of input deltas and, as `RESULT` lines, the ratio rule ÷ memcpy
//! (both bytes per second; the target for the trimmed mean is ≥ 0.3).
//! Env: `AUTONET_BENCH_PRESET`, `AUTONET_BENCH_REPS`, `AUTONET_BENCH_N` (comma-separated counts,
//! default `3,8,16`).

use std::hint::black_box;

use autonet_test_utils::bench::{median, mib_per_s};

use autonet_ml::rng::SplitMix64;
use autonet_ml::{
    Contribution, Delta, ModelConfig, NamedTensor, Rule, TensorSet, aggregate, content_hash,
    init_weights,
};

/// A delta with the layout of `layout` and small pseudo-random values (as trained deltas are).
fn delta_like(layout: &TensorSet, seed: u64) -> Delta {
    let mut rng = SplitMix64::new(seed);
    let tensors = layout
        .tensors()
        .iter()
        .map(|t| {
            let data = (0..t.data.len())
                .map(|_| (rng.below(2001) as f32 - 1000.0) * 1e-6)
                .collect();
            NamedTensor::new(t.name.clone(), t.shape.clone(), data)
        })
        .collect();
    TensorSet::new(tensors).expect("layout of a valid set")
}

fn main() {
    let preset = std::env::var("AUTONET_BENCH_PRESET").unwrap_or_else(|_| "small".into());
    let reps: usize = std::env::var("AUTONET_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let counts: Vec<usize> = std::env::var("AUTONET_BENCH_N")
        .unwrap_or_else(|_| "3,8,16".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let cfg = ModelConfig::preset(&preset).expect("unknown AUTONET_BENCH_PRESET");
    let layout = init_weights(&cfg, 1).expect("init");
    let values: usize = layout.tensors().iter().map(|t| t.data.len()).sum();
    println!(
        "preset {preset}: {values} values per delta ({:.2} MiB), median of {reps} runs",
        values as f64 * 4.0 / (1024.0 * 1024.0)
    );
    for n in counts {
        let deltas: Vec<Delta> = (0..n as u64).map(|i| delta_like(&layout, i + 1)).collect();
        let inputs: Vec<Contribution<'_>> = deltas
            .iter()
            .enumerate()
            .map(|(i, delta)| Contribution {
                delta,
                weight: 1_000 + i as u64,
            })
            .collect();
        let bytes = n * values * 4;
        // The yardstick: every input value copied once.
        let flat: Vec<f32> = deltas.iter().flat_map(|d| d.values()).collect();
        let mut dst = vec![0f32; flat.len()];
        let memcpy = median(reps, || {
            dst.copy_from_slice(black_box(&flat));
            black_box(&dst);
        });
        let hash = median(reps, || {
            for d in &deltas {
                black_box(content_hash(black_box(d)).expect("hash"));
            }
        });
        let rules = [
            ("trimmed mean", Rule::default()),
            ("median", Rule::Median),
            (
                "multi-krum",
                Rule::MultiKrum {
                    f: n / 4,
                    m: n.saturating_sub(n / 4).max(1),
                },
            ),
            ("fedavg", Rule::FedAvg),
            ("centered clip", Rule::centered_clip_default()),
            ("bucketing", Rule::bucketing_default()),
        ];
        println!(
            "n = {n} ({:.1} MiB of deltas)",
            bytes as f64 / (1024.0 * 1024.0)
        );
        println!("  memcpy        {:>9.1} MiB/s", mib_per_s(bytes, memcpy));
        println!(
            "  content hash  {:>9.1} MiB/s  (part of every rule: the canonical order)",
            mib_per_s(bytes, hash)
        );
        for (name, rule) in rules {
            let t = median(reps, || {
                black_box(aggregate(rule, black_box(&inputs)).expect("aggregate"));
            });
            let ratio = memcpy.as_secs_f64() / t.as_secs_f64();
            println!(
                "  {name:<13} {:>9.1} MiB/s  {ratio:.4}x memcpy",
                mib_per_s(bytes, t)
            );
            println!(
                "RESULT aggregate n={n} rule={} ratio_to_memcpy {ratio:.4}",
                name.replace(' ', "_")
            );
        }
    }
}
