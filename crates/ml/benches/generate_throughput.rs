//! Generation throughput of the `small` preset (bytes/s), the tch side of `make bench-generate`.
//!
//! Same protocol as `bench/pytorch_generate.py`: greedy decoding of `AUTONET_BENCH_TOKENS` (128)
//! bytes after a 16-byte prompt, one stream; 2 untimed warm-up generations, then
//! `AUTONET_BENCH_REPEATS` (5) timed ones. Measured three ways:
//! - `kv`: [`autonet_ml::generate`] (KV cache, the node's path);
//! - `full`: the path before the KV cache, the whole window through the model per byte;
//! - `8 streams`: 8 generations at once on 8 threads, a copy of the model each (no batching
//!   across requests: each stream decodes alone), total bytes/s;
//! - `8 batched`: 8 generations decoded together by one model ([`autonet_ml::generate::Batch`]:
//!   one forward call per step for all of them), total bytes/s.
//!
//! Then speculative greedy decoding ([`autonet_ml::speculative`]) with a `tiny` draft proposing
//! `AUTONET_BENCH_SPEC_K` (4) bytes per round, same prompt and length, its output checked equal
//! to the KV-cache greedy output, three ways:
//! - `spec_random`: main and draft randomly initialised (they rarely agree: a slowdown);
//! - `spec_self`: the main model as its own draft (every proposal accepted: the upper bound on
//!   acceptance, not on speed, as this draft costs as much as the main model);
//! - `spec_trained`: a main model and a `tiny` draft both trained from scratch on the reference
//!   corpus (the `.rs` sources of `Cargo.lock`, 2 MiB), `AUTONET_BENCH_TRAIN_STEPS` (500) steps
//!   for the main model and twice that for the draft, batch 16 (about a minute on one core);
//!   8 prompts of 16 bytes cut from held-out chunks, compared with the KV-cache greedy decoding
//!   of that trained main model over the same prompts (`kv_trained`). 0 steps skips it.
//!
//! Prints `RESULT tch <kind> bytes_per_s <x>` lines, and for the speculative kinds
//! `RESULT tch <kind> acceptance <accepted/proposed>` and `RESULT tch <kind> speedup_vs_kv <x>`.
//! Env: `AUTONET_BENCH_THREADS` (libtorch's intra-op threads, default libtorch's),
//! `AUTONET_BENCH_PRESET` (small).

use std::time::Instant;

use autonet_ml::corpus::{self, Corpus, CorpusOptions, default_workspace_root};
use autonet_ml::generate::{generate_batch, greedy_without_cache};
use autonet_ml::speculative::{held_out_prompts, train_from_init};
use autonet_ml::{
    GenerateParams, Lm, ModelConfig, SpecStats, TrainParams, generate, init_weights,
    speculative_greedy,
};
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
    // 8 streams batched: one model, every step one forward call for all of them.
    let requests: Vec<(&[u8], GenerateParams)> = vec![(&prompt[..], params.clone()); streams];
    let outs = generate_batch(&lm, &requests).expect("batch");
    assert!(
        outs.iter().all(|o| *o == kv_out),
        "batched decoding changed the greedy output"
    );
    let batched = time(repeats, tokens * streams, || {
        generate_batch(&lm, &requests).expect("batch");
    });
    println!(
        "tch {preset}: threads {}, greedy {tokens} bytes after a {}-byte prompt, {repeats} timed runs",
        tch::get_num_threads(),
        prompt.len()
    );
    println!("RESULT tch kv bytes_per_s {kv:.1}");
    println!("RESULT tch full bytes_per_s {full:.1}");
    println!("RESULT tch kv_8_streams bytes_per_s {concurrent:.1}");
    println!("RESULT tch kv_8_batched bytes_per_s {batched:.1}");

    let k = env_or("AUTONET_BENCH_SPEC_K", 4);
    let tiny = ModelConfig::tiny();
    // Speculative decoding of every prompt, checked against `refs` (the KV-cache greedy output)
    // and timed against `kv` (its bytes/s over the same prompts).
    let spec = |kind: &str, main: &Lm, draft: &Lm, prompts: &[Vec<u8>], refs: &[Vec<u8>], kv| {
        let mut total = SpecStats::default();
        for (p, want) in prompts.iter().zip(refs) {
            let (out, s) = speculative_greedy(main, draft, p, tokens, k).expect("speculate");
            assert_eq!(&out, want, "{kind}: speculation changed the greedy output");
            total.proposed += s.proposed;
            total.accepted += s.accepted;
            total.main_calls += s.main_calls;
            total.draft_calls += s.draft_calls;
            total.recomputed += s.recomputed;
        }
        let speed = time(repeats, tokens * prompts.len(), || {
            for p in prompts {
                speculative_greedy(main, draft, p, tokens, k).expect("speculate");
            }
        });
        println!(
            "tch {kind}: k {k}, {} prompt(s): {}/{} proposals accepted, {} main calls, {} draft \
             calls, {} near-ties recomputed for {} bytes",
            prompts.len(),
            total.accepted,
            total.proposed,
            total.main_calls,
            total.draft_calls,
            total.recomputed,
            tokens * prompts.len()
        );
        println!("RESULT tch {kind} bytes_per_s {speed:.1}");
        println!(
            "RESULT tch {kind} acceptance {:.3}",
            total.acceptance_rate()
        );
        println!("RESULT tch {kind} speedup_vs_kv {:.3}", speed / kv);
    };
    let one = [prompt.to_vec()];
    let draft = Lm::new(&tiny, &init_weights(&tiny, 2).expect("init"), Device::Cpu).expect("model");
    spec(
        "spec_random",
        &lm,
        &draft,
        &one,
        std::slice::from_ref(&kv_out),
        kv,
    );
    let same = Lm::new(&cfg, &weights, Device::Cpu).expect("model");
    spec(
        "spec_self",
        &lm,
        &same,
        &one,
        std::slice::from_ref(&kv_out),
        kv,
    );

    let steps = env_or("AUTONET_BENCH_TRAIN_STEPS", 500);
    if steps == 0 {
        return;
    }
    let t = Instant::now();
    let opts = CorpusOptions {
        max_bytes: 2 << 20,
        ..Default::default()
    };
    let corpus = Corpus::from_cargo_lock(&default_workspace_root(), &opts).expect("corpus");
    let (train, eval) = corpus::split(&corpus.chunks, 50);
    let train_params = |steps| TrainParams {
        steps,
        device: Device::Cpu,
        ..TrainParams::default()
    };
    let main_w = train_from_init(&cfg, 1, &train, &train_params(steps)).expect("train main");
    let draft_w = train_from_init(&tiny, 2, &train, &train_params(2 * steps)).expect("train draft");
    println!(
        "tch trained: {preset} {steps} steps, tiny {} steps on {} bytes of the reference corpus \
         in {:.1}s",
        2 * steps,
        corpus.total_bytes(),
        t.elapsed().as_secs_f64()
    );
    let main = Lm::new(&cfg, &main_w, Device::Cpu).expect("model");
    let draft = Lm::new(&tiny, &draft_w, Device::Cpu).expect("model");
    // Prompts: 8 snippets of held-out code, each the 16 bytes after a line break (as long as
    // the prompt above, so the same 16 output bytes lie past the main window).
    let prompts = held_out_prompts(&eval, 8, prompt.len());
    assert!(!prompts.is_empty(), "no held-out chunk of 1 KiB");
    let refs: Vec<Vec<u8>> = prompts
        .iter()
        .map(|p| generate(&main, p, &params).expect("generate"))
        .collect();
    for (p, out) in prompts.iter().zip(&refs).take(3) {
        println!(
            "tch trained sample: {:?} -> {:?}",
            String::from_utf8_lossy(p),
            String::from_utf8_lossy(&out[..out.len().min(64)])
        );
    }
    let kv_trained = time(repeats, tokens * prompts.len(), || {
        for p in &prompts {
            generate(&main, p, &params).expect("generate");
        }
    });
    println!("RESULT tch kv_trained bytes_per_s {kv_trained:.1}");
    spec("spec_trained", &main, &draft, &prompts, &refs, kv_trained);
}
