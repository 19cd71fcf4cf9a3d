//! What the `small`-preset benchmarks share: their environment variables and floating-point
//! setup (the same as the PyTorch twins in `bench/`).

use autonet_ml::ModelConfig;

/// `key` parsed from the environment, else `default`.
pub fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Subnormals flushed to zero (as training and aggregation run), `AUTONET_BENCH_THREADS`
/// libtorch threads when set, and the preset of `AUTONET_BENCH_PRESET` (default `small`).
pub fn setup() -> (String, ModelConfig) {
    autonet_ml::fpenv::flush_denormals();
    if let Ok(t) = std::env::var("AUTONET_BENCH_THREADS")
        && let Ok(t) = t.parse()
    {
        tch::set_num_threads(t);
    }
    let preset = std::env::var("AUTONET_BENCH_PRESET").unwrap_or_else(|_| "small".into());
    let cfg = ModelConfig::preset(&preset).expect("unknown preset");
    (preset, cfg)
}
