//! Speculative greedy decoding: a small *draft* model proposes a few bytes, the *main* model
//! checks them all in one cached forward call, and the output is exactly the main model's greedy
//! output ([`generate`](fn@crate::generate) at temperature 0, and [`crate::generate::greedy_without_cache`]).
//!
//! One round, with `L` bytes of context (prompt and output so far):
//! 1. the draft proposes `k` bytes greedily with its own [`KvCache`] (its own window, rebuilt
//!    from its last `context` tokens when it is full, as [`generate`](fn@crate::generate) does);
//! 2. the main model runs once over the bytes its cache lacks (normally the last decided byte)
//!    followed by the `k` proposals, which gives its logits for the `k + 1` positions `L ..= L+k`;
//! 3. walking those positions in order, the main model's greedy choice at each one is decided
//!    ([`greedy_decision`], the same rule every greedy path uses): while it equals the proposal
//!    the proposal is accepted; at the first mismatch the main model's own choice is taken
//!    instead, and when all `k` are accepted its choice after them is a bonus byte;
//! 4. both caches are rolled back ([`KvCache::truncate`]) to the accepted bytes.
//!
//! Every round yields `accepted + 1` bytes for one main-model call. Positions are absolute and
//! the main model's window starts at position 0 until the context is full, so a round only
//! checks proposals that fit in the main model's window (`L + k <= context`); past it, every byte
//! has its own window (the generation slides by one), and speculation falls back to exactly what
//! [`generate`](fn@crate::generate) does: one full forward of the last `context` bytes per byte, no draft.
//!
//! # Why the output is identical
//!
//! A chunked forward rounds differently from a single-position one (below 1e-6 relative), so the
//! argmax of the chunk's logits could differ from the one-at-a-time argmax on a near-tie. Both
//! [`generate`](fn@crate::generate) (greedy) and this module therefore decide every byte with
//! [`greedy_decision`]: the argmax of whatever logits they computed when it leads the second
//! logit by more than [`crate::generate::TIE_TOLERANCE`] × max(1, largest |logit|), else the
//! argmax of the *canonical* logits (the plain forward of that byte's window, recomputed). Both
//! paths thus pick the canonical argmax (lowest byte on exact ties) whenever their rounding stays
//! below half the tolerance, which the tests check with a wide margin.
//!
//! This module decodes only; a node chooses models and `k` (see [`generate_stream_with_draft`]
//! and [`train_from_init`] for a draft trained on the main model's corpus).

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::corpus::Chunk;
use crate::generate::{
    Finish, FinishReason, GenerateError, GenerateParams, StopFilter, argmax, check_bytes,
    conditioning, generate_stream, greedy_decision,
};
use crate::model::{KvCache, Lm, ModelConfig, init_weights};
use crate::tensors::TensorSet;
use crate::train::{TrainError, TrainParams, train};

/// Draft bytes per round when a caller has no better value: the best of 2, 4 and 8 for a
/// trained `small` main model with a `tiny` draft on CPU (`docs/ml.md`, within run-to-run noise).
pub const DEFAULT_DRAFT_TOKENS: usize = 2;

/// What one speculative generation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpecStats {
    /// Bytes the draft proposed.
    pub proposed: usize,
    /// Proposals the main model accepted.
    pub accepted: usize,
    /// Forward calls of the main model that decided bytes (a verification round or a single
    /// step); each decides one byte of its own after the accepted proposals, so without a stop
    /// sequence or cancellation the output has `accepted + main_calls` bytes.
    pub main_calls: usize,
    /// Forward calls of the draft model (one per proposed byte).
    pub draft_calls: usize,
    /// Near-ties settled by recomputing the main model's canonical logits (an extra full
    /// forward of the window each; plain greedy [`generate`](fn@crate::generate) does the same).
    pub recomputed: usize,
}

impl SpecStats {
    /// Accepted / proposed (0 when nothing was proposed).
    pub fn acceptance_rate(&self) -> f64 {
        if self.proposed == 0 {
            0.0
        } else {
            self.accepted as f64 / self.proposed as f64
        }
    }

    /// Bytes decided per main-model call (`1 + accepted / main_calls`); plain decoding is 1.
    pub fn bytes_per_main_call(&self) -> f64 {
        if self.main_calls == 0 {
            0.0
        } else {
            (self.accepted + self.main_calls) as f64 / self.main_calls as f64
        }
    }
}

/// Checks that `draft` can propose bytes for `main`: both byte-level (vocabulary 256) with the
/// same vocabulary. Their widths, depths and windows may differ.
pub fn check_draft(main: &ModelConfig, draft: &ModelConfig) -> Result<(), GenerateError> {
    if draft.vocab != main.vocab {
        return Err(GenerateError::Draft(format!(
            "draft vocabulary of {} tokens, the main model has {}",
            draft.vocab, main.vocab
        )));
    }
    if main.vocab != 256 {
        return Err(GenerateError::Model(format!(
            "vocabulary of {} tokens, byte generation needs 256",
            main.vocab
        )));
    }
    Ok(())
}

/// `max_tokens` bytes after `prompt` by speculative greedy decoding with `k` draft bytes per
/// round: the same bytes as `generate(main, prompt, &GenerateParams::greedy(max_tokens))`.
pub fn speculative_greedy(
    main: &Lm,
    draft: &Lm,
    prompt: &[u8],
    max_tokens: usize,
    k: usize,
) -> Result<(Vec<u8>, SpecStats), GenerateError> {
    let mut out = Vec::with_capacity(max_tokens);
    let (_, stats) = speculative_stream(
        main,
        draft,
        prompt,
        &GenerateParams::greedy(max_tokens),
        k,
        |b| {
            out.push(b);
            true
        },
    )?;
    Ok((out, stats))
}

/// [`crate::generate_stream`] for greedy `params` (temperature 0) by speculative decoding with
/// `k` draft bytes per round: the same bytes passed to `on_token`, the same stop-sequence
/// handling and the same [`Finish`], plus what speculation did.
pub fn speculative_stream(
    main: &Lm,
    draft: &Lm,
    prompt: &[u8],
    params: &GenerateParams,
    k: usize,
    mut on_token: impl FnMut(u8) -> bool,
) -> Result<(Finish, SpecStats), GenerateError> {
    params.validate()?;
    if params.temperature != 0.0 {
        return Err(GenerateError::InvalidParam {
            field: "temperature",
            reason: format!(
                "speculative decoding is greedy: must be 0, got {}",
                params.temperature
            ),
        });
    }
    if k == 0 {
        return Err(GenerateError::InvalidParam {
            field: "k",
            reason: "the draft must propose at least 1 byte per round, got 0".into(),
        });
    }
    check_bytes(main)?;
    check_draft(main.config(), draft.config())?;
    let context = main.config().context;
    let mut seq = conditioning(prompt, context.max(draft.config().context));
    let mut main_s = Stream::new(main);
    let mut draft_s = Stream::new(draft);
    let mut stats = SpecStats::default();
    let mut filter = StopFilter::new(params.stop_bytes());
    let mut ready = Vec::new();
    let (mut sampled, mut emitted) = (0, 0);
    let done = |sampled, emitted, reason, stats| {
        let finish = Finish {
            sampled,
            emitted,
            reason,
        };
        Ok((finish, stats))
    };
    tch::no_grad(|| {
        while sampled < params.max_tokens {
            // Proposals are checked only while the last one's window still starts at 0, and
            // never beyond the bytes still wanted (the round adds one of the main model's own).
            let room = context.saturating_sub(seq.len());
            let kk = k.min(room).min(params.max_tokens - sampled - 1);
            let decided = if kk == 0 {
                vec![main_s.step(&seq, &mut stats)?]
            } else {
                speculate(&mut main_s, &mut draft_s, &seq, kk, &mut stats)?
            };
            // Bytes go out one by one exactly as `generate_stream` sends them.
            for t in decided {
                seq.push(t as i64);
                sampled += 1;
                if filter.push(t as u8, &mut ready) {
                    for b in ready.drain(..) {
                        emitted += 1;
                        if !on_token(b) {
                            return done(sampled, emitted, FinishReason::Cancelled, stats);
                        }
                    }
                    return done(sampled, emitted, FinishReason::Stop, stats);
                }
                for b in ready.drain(..) {
                    emitted += 1;
                    if !on_token(b) {
                        return done(sampled, emitted, FinishReason::Cancelled, stats);
                    }
                }
            }
        }
        filter.flush(&mut ready);
        for b in ready.drain(..) {
            emitted += 1;
            if !on_token(b) {
                return done(sampled, emitted, FinishReason::Cancelled, stats);
            }
        }
        done(sampled, emitted, FinishReason::MaxTokens, stats)
    })
}

/// What a node calls to serve a request: speculative decoding with `draft` and `k` draft bytes
/// per round when a draft is given and `params` are greedy, else [`generate_stream`]. The bytes
/// and the [`Finish`] are [`generate_stream`]'s either way; the stats say what speculation did
/// (`None` when it was not used).
pub fn generate_stream_with_draft(
    main: &Lm,
    draft: Option<&Lm>,
    prompt: &[u8],
    params: &GenerateParams,
    k: usize,
    on_token: impl FnMut(u8) -> bool,
) -> Result<(Finish, Option<SpecStats>), GenerateError> {
    match draft {
        Some(draft) if params.temperature == 0.0 => {
            let (finish, stats) = speculative_stream(main, draft, prompt, params, k, on_token)?;
            Ok((finish, Some(stats)))
        }
        _ => Ok((generate_stream(main, prompt, params, on_token)?, None)),
    }
}

/// Weights of `cfg` trained from `init_weights(cfg, seed)` on `chunks` with `params`: how a node
/// gets a draft for its served model (a `tiny` trained on the project's corpus), or a main model
/// for experiments.
pub fn train_from_init(
    cfg: &ModelConfig,
    seed: u64,
    chunks: &[&Chunk],
    params: &TrainParams,
) -> Result<TensorSet, TrainError> {
    let init = init_weights(cfg, seed)?;
    let out = train(cfg, &init, chunks, params)?;
    Ok(init.add(&out.delta)?)
}

/// `n` prompts of `len` bytes cut from `chunks` (held-out data): each starts after a line break,
/// so it reads like the start of a line of code. How speculation is measured on real text (the
/// generation benchmark, the devnet). Chunks shorter than 1 KiB are skipped; empty when none is
/// long enough, or `len` is over 256.
pub fn held_out_prompts(chunks: &[&Chunk], n: usize, len: usize) -> Vec<Vec<u8>> {
    let long: Vec<&[u8]> = chunks
        .iter()
        .map(|c| c.data.as_slice())
        .filter(|d| d.len() >= 1024)
        .collect();
    if long.is_empty() || len > 256 {
        return Vec::new();
    }
    (0..n)
        .map(|i| {
            let c = long[i % long.len()];
            let from = (1000 + 7919 * i) % (c.len() - 512);
            let line = from
                + c[from..from + 256]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
            c[line..line + len].to_vec()
        })
        .collect()
}

/// One model's cache over the token sequence: it holds the keys and values of
/// `seq[start .. start + cache.len()]`.
struct Stream<'a> {
    lm: &'a Lm,
    cache: KvCache,
    start: usize,
}

impl<'a> Stream<'a> {
    fn new(lm: &'a Lm) -> Self {
        Self {
            lm,
            cache: KvCache::new(),
            start: 0,
        }
    }

    fn context(&self) -> usize {
        self.lm.config().context
    }

    /// Position after the last cached one.
    fn end(&self) -> usize {
        self.start + self.cache.len()
    }

    /// Makes the cache start at position `start`, emptying it when it starts elsewhere.
    fn align(&mut self, start: usize) {
        if self.start != start {
            self.cache.clear();
            self.start = start;
        }
    }

    /// Forgets the cached positions from `end` on.
    fn truncate(&mut self, end: usize) {
        self.cache.truncate(end.saturating_sub(self.start));
    }

    /// Feeds `seq[self.end()..upto]`; returns the logits of its last `rows` positions
    /// (`[rows × vocab]` flattened, on the host), the predictions for positions
    /// `upto - rows + 1 ..= upto`.
    fn feed(&mut self, seq: &[i64], upto: usize, rows: usize) -> Result<Vec<f32>, GenerateError> {
        let tokens = &seq[self.end()..upto];
        let n = tokens.len() as i64;
        assert!(
            rows >= 1 && rows as i64 <= n,
            "{rows} rows of {n} fed positions"
        );
        let input = Tensor::from_slice(tokens)
            .view([1, n])
            .to_device(self.lm.device());
        let logits = self
            .lm
            .forward_cached(&input, &mut self.cache)
            .get(0)
            .narrow(0, n - rows as i64, rows as i64)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .contiguous()
            .view([-1]);
        Ok(Vec::<f32>::try_from(&logits)?)
    }

    /// The greedy byte after `seq` as [`generate`](fn@crate::generate) decides it: the window of the last
    /// `context` tokens, its cache rebuilt when the window has moved.
    fn step(&mut self, seq: &[i64], stats: &mut SpecStats) -> Result<usize, GenerateError> {
        let l = seq.len();
        let window = l.saturating_sub(self.context());
        self.align(window);
        let canonical = self.cache.is_empty();
        let logits = self.feed(seq, l, 1)?;
        stats.main_calls += 1;
        let (t, recomputed) = greedy_decision(self.lm, &logits, &seq[window..], canonical)?;
        stats.recomputed += usize::from(recomputed);
        Ok(t)
    }
}

/// One round: `kk` draft proposals after `seq` (with `seq.len() + kk <= main context`), checked
/// by one main-model call. Returns the accepted proposals and the main model's own next byte.
fn speculate(
    main: &mut Stream<'_>,
    draft: &mut Stream<'_>,
    seq: &[i64],
    kk: usize,
    stats: &mut SpecStats,
) -> Result<Vec<usize>, GenerateError> {
    let l = seq.len();
    let vocab = main.lm.config().vocab;
    let mut ext = Vec::with_capacity(l + kk);
    ext.extend_from_slice(seq);
    for _ in 0..kk {
        let q = ext.len();
        draft.align(q.saturating_sub(draft.context()));
        let logits = draft.feed(&ext, q, 1)?;
        stats.draft_calls += 1;
        ext.push(argmax(&logits) as i64);
    }
    stats.proposed += kk;
    // Logits row `i` is the prediction for position `l + i`.
    main.align(0);
    let prefill = main.cache.is_empty();
    let logits = main.feed(&ext, l + kk, kk + 1)?;
    stats.main_calls += 1;
    let mut out = Vec::with_capacity(kk + 1);
    for p in l..=l + kk {
        let r = p - l;
        let row = &logits[r * vocab..(r + 1) * vocab];
        // Only the last row of a prefill is the plain forward of its window op for op.
        let canonical = prefill && p == l + kk;
        let (t, recomputed) = greedy_decision(main.lm, row, &ext[..p], canonical)?;
        stats.recomputed += usize::from(recomputed);
        out.push(t);
        if p == l + kk || t as i64 != ext[p] {
            break;
        }
        stats.accepted += 1;
    }
    let keep = l + out.len() - 1;
    main.truncate(keep);
    draft.truncate(keep);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{generate, greedy_without_cache};
    use crate::model::init_weights;

    fn lm(cfg: &ModelConfig, seed: u64) -> Lm {
        Lm::new(cfg, &init_weights(cfg, seed).unwrap(), Device::Cpu).unwrap()
    }

    fn conditioned(prompt: &[u8]) -> &[u8] {
        if prompt.is_empty() { b"\n" } else { prompt }
    }

    fn code(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"fn main() { let x = 1; }\n"[i % 25])
            .collect()
    }

    /// Checks speculation against plain greedy decoding of `main` for several prompts (empty,
    /// short, longer than the main window), lengths (1, 2, 5, crossing the window) and `k`;
    /// returns the summed stats.
    fn check_identity(main: &Lm, draft: &Lm, ks: &[usize]) -> SpecStats {
        let context = main.config().context;
        let long = code(context + 17);
        let mut total = SpecStats::default();
        for prompt in [&b""[..], b"x", b"let x = ", &long] {
            let n = context + 24;
            let want = generate(main, prompt, &GenerateParams::greedy(n)).unwrap();
            assert_eq!(
                want,
                greedy_without_cache(main, conditioned(prompt), n),
                "generate differs from greedy_without_cache"
            );
            for &k in ks {
                let (got, s) = speculative_greedy(main, draft, prompt, n, k).unwrap();
                assert_eq!(got, want, "k {k}, prompt of {} bytes", prompt.len());
                assert_eq!(got.len(), s.accepted + s.main_calls, "{s:?}");
                assert!(
                    s.accepted <= s.proposed && s.draft_calls == s.proposed,
                    "{s:?}"
                );
                total.proposed += s.proposed;
                total.accepted += s.accepted;
                total.main_calls += s.main_calls;
                total.draft_calls += s.draft_calls;
                total.recomputed += s.recomputed;
                for short in [1, 2, 5] {
                    let (got, _) = speculative_greedy(main, draft, prompt, short, k).unwrap();
                    assert_eq!(got, want[..short], "k {k}, {short} bytes");
                }
            }
        }
        total
    }

    #[test]
    fn a_random_draft_leaves_the_output_unchanged() {
        let tiny = ModelConfig::tiny();
        let (main, draft) = (lm(&tiny, 3), lm(&tiny, 9));
        let s = check_identity(&main, &draft, &[1, 2, 4, 8, 40]);
        assert!(s.proposed > 0 && s.accepted < s.proposed, "{s:?}");
    }

    #[test]
    fn the_main_model_as_its_own_draft_is_always_accepted() {
        for (cfg, seed) in [(ModelConfig::tiny(), 3), (ModelConfig::small(), 4)] {
            let main = lm(&cfg, seed);
            let draft = lm(&cfg, seed);
            let s = check_identity(&main, &draft, &[1, 4, 8]);
            assert_eq!(s.accepted, s.proposed, "{s:?}");
            // (Prompts longer than the window and the bytes past it decide one byte per call.)
            assert!(
                s.acceptance_rate() == 1.0 && s.bytes_per_main_call() > 1.3,
                "{s:?}"
            );
            // While the window fills, each main call decides k + 1 bytes.
            let (out, s) = speculative_greedy(&main, &draft, b"ab", 30, 4).unwrap();
            assert_eq!(out.len(), 30);
            assert_eq!((s.main_calls, s.accepted, s.proposed), (6, 24, 24), "{s:?}");
        }
    }

    #[test]
    fn drafts_with_another_window_or_size_work_both_ways() {
        let (tiny, small) = (ModelConfig::tiny(), ModelConfig::small());
        // A draft with a shorter window than the main model (the usual case)...
        check_identity(&lm(&small, 4), &lm(&tiny, 5), &[2, 4]);
        // ...and with a longer one.
        check_identity(&lm(&tiny, 3), &lm(&small, 4), &[4]);
    }

    /// A `tiny` model whose bytes 128..256 have the embeddings of bytes 0..128 plus uniform
    /// noise of amplitude `noise`: as the head is tied to the embedding, every logit comes
    /// twice (exactly with no noise), so every greedy choice is a (near) tie.
    fn twins(noise: f32) -> Lm {
        let cfg = ModelConfig::tiny();
        let w = init_weights(&cfg, 3).unwrap();
        let mut rng = crate::rng::SplitMix64::new(17);
        let tensors = w
            .tensors()
            .iter()
            .map(|t| {
                let mut t = t.clone();
                if t.name == "wte.weight" {
                    let (lo, hi) = t.data.split_at_mut(128 * cfg.d_model);
                    for (h, l) in hi.iter_mut().zip(lo.iter()) {
                        *h = *l + noise * (2.0 * rng.next_f32() - 1.0);
                    }
                }
                t
            })
            .collect();
        Lm::new(&cfg, &TensorSet::new(tensors).unwrap(), Device::Cpu).unwrap()
    }

    #[test]
    fn exact_ties_go_to_the_lowest_byte_on_every_path() {
        let cfg = ModelConfig::tiny();
        let main = twins(0.0);
        let logits = tch::no_grad(|| crate::generate::canonical_logits(&main, &[1, 2, 3])).unwrap();
        assert_eq!(logits[..128], logits[128..], "the tie setup does not tie");
        let draft = lm(&cfg, 9);
        let want = greedy_without_cache(&main, b"tie", 50);
        assert!(want.iter().all(|&b| b < 128), "{want:?}");
        assert_eq!(
            generate(&main, b"tie", &GenerateParams::greedy(50)).unwrap(),
            want
        );
        for k in [1, 4] {
            let (got, _) = speculative_greedy(&main, &draft, b"tie", 50, k).unwrap();
            assert_eq!(got, want, "k {k}");
            // Inside the window every decided byte is a tie settled on the canonical logits,
            // except possibly the first round's last row (a prefill's, canonical already).
            let (got, s) = speculative_greedy(&main, &draft, b"tie", 25, k).unwrap();
            assert_eq!(got, want[..25], "k {k}");
            assert!(s.recomputed + 1 >= got.len(), "{s:?}");
        }
    }

    #[test]
    fn near_ties_are_settled_on_the_canonical_logits() {
        // Twin logits apart by about the rounding of a cached or chunked forward: their order
        // there can differ from the canonical one, and only settling near-ties on the canonical
        // logits keeps every path equal to `greedy_without_cache`.
        let main = twins(3e-8);
        let draft = lm(&ModelConfig::tiny(), 9);
        let mut recomputed = 0;
        for prompt in [&b"near"[..], b"tie", b"fn main() {"] {
            let want = greedy_without_cache(&main, prompt, 60);
            let got = generate(&main, prompt, &GenerateParams::greedy(60)).unwrap();
            assert_eq!(got, want, "generate, prompt {prompt:?}");
            for k in [1, 2, 4, 8] {
                let (got, s) = speculative_greedy(&main, &main, prompt, 60, k).unwrap();
                assert_eq!(got, want, "k {k}, prompt {prompt:?}");
                recomputed += s.recomputed;
                let (got, _) = speculative_greedy(&main, &draft, prompt, 60, k).unwrap();
                assert_eq!(got, want, "random draft, k {k}, prompt {prompt:?}");
            }
        }
        assert!(recomputed > 0);
    }

    #[test]
    fn the_tie_band_covers_the_rounding_of_cached_and_chunked_logits() {
        // The identity rests on cached/chunked logits being within TIE_TOLERANCE / 2 (relative)
        // of the canonical ones; require 20× headroom over what is measured.
        for (cfg, seed) in [(ModelConfig::tiny(), 3), (ModelConfig::small(), 4)] {
            let main = lm(&cfg, seed);
            let c = cfg.context;
            let tokens: Vec<i64> = code(c).iter().map(|&b| i64::from(b)).collect();
            let mut worst = 0.0f32;
            tch::no_grad(|| {
                for chunk in [1usize, 2, 5, 9] {
                    let mut s = Stream::new(&main);
                    let mut end = 3;
                    s.feed(&tokens, end, 1).unwrap();
                    while end < c {
                        let next = (end + chunk).min(c);
                        let rows = s.feed(&tokens, next, next - end).unwrap();
                        for (r, p) in (end..next).enumerate() {
                            let row = &rows[r * 256..(r + 1) * 256];
                            let exact =
                                crate::generate::canonical_logits(&main, &tokens[..=p]).unwrap();
                            let scale = exact.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                            for (a, b) in row.iter().zip(&exact) {
                                worst = worst.max((a - b).abs() / scale);
                            }
                        }
                        end = next;
                    }
                }
            });
            eprintln!("context {c}: worst relative rounding {worst:e}");
            assert!(
                worst < crate::generate::TIE_TOLERANCE / 40.0,
                "context {c}: relative rounding {worst:e}"
            );
        }
    }

    #[test]
    fn truncating_the_cache_rolls_back_positions() {
        let cfg = ModelConfig::tiny();
        let main = lm(&cfg, 5);
        let a: Vec<i64> = code(20).iter().map(|&b| i64::from(b)).collect();
        let mut b = a.clone();
        b[12..].iter_mut().for_each(|t| *t = 255 - *t);
        tch::no_grad(|| {
            let mut s = Stream::new(&main);
            s.feed(&b, 16, 1).unwrap();
            s.truncate(12);
            assert_eq!(s.cache.len(), 12);
            s.truncate(14);
            assert_eq!(s.cache.len(), 12, "truncate to more positions is a no-op");
            let last = s.feed(&a, 20, 1).unwrap();
            let exact = crate::generate::canonical_logits(&main, &a).unwrap();
            let diff = last
                .iter()
                .zip(&exact)
                .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                diff < 1e-5,
                "after the roll-back the logits differ by {diff}"
            );
            s.truncate(0);
            assert!(s.cache.is_empty());
        });
    }

    #[test]
    fn streaming_matches_generate_stream_with_stop_and_cancel() {
        let (main, draft) = trained_pair();
        let full = generate(&main, b"fn add(", &GenerateParams::greedy(60)).unwrap();
        // Stop on an ASCII pair first seen after byte 20.
        let at = (20..full.len() - 1)
            .find(|&i| {
                full[i..i + 2].is_ascii()
                    && full.windows(2).position(|w| w == &full[i..i + 2]) == Some(i)
            })
            .expect("a new ASCII pair");
        let params = GenerateParams {
            stop: Some(String::from_utf8(full[at..at + 2].to_vec()).unwrap()),
            ..GenerateParams::greedy(60)
        };
        for cancel_after in [usize::MAX, 7] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let fa = generate_stream(&main, b"fn add(", &params, |x| {
                a.push(x);
                a.len() < cancel_after
            })
            .unwrap();
            let (fb, s) = speculative_stream(&main, &draft, b"fn add(", &params, 4, |x| {
                b.push(x);
                b.len() < cancel_after
            })
            .unwrap();
            assert_eq!((fa, &a), (fb, &b), "cancel after {cancel_after}");
            let want = if cancel_after == 7 {
                (FinishReason::Cancelled, 7)
            } else {
                (FinishReason::Stop, at)
            };
            assert_eq!((fb.reason, fb.emitted), want);
            assert!(s.accepted > 0, "{s:?}");
        }
        // The node's entry point: speculation for greedy requests, plain sampling otherwise.
        let mut out = Vec::new();
        let (f, s) = generate_stream_with_draft(&main, Some(&draft), b"q", &params, 4, |x| {
            out.push(x);
            true
        })
        .unwrap();
        assert!(s.is_some() && f.emitted == out.len());
        let sampling = GenerateParams {
            temperature: 1.0,
            ..GenerateParams::greedy(10)
        };
        let (_, s) =
            generate_stream_with_draft(&main, Some(&draft), b"q", &sampling, 4, |_| true).unwrap();
        assert!(s.is_none());
    }

    #[test]
    fn mismatched_models_and_bad_parameters_are_refused() {
        let tiny = ModelConfig::tiny();
        let main = lm(&tiny, 1);
        let wide = ModelConfig {
            vocab: 300,
            ..tiny.clone()
        };
        let err = speculative_greedy(&main, &lm(&wide, 1), b"a", 8, 4).unwrap_err();
        assert!(matches!(err, GenerateError::Draft(_)), "{err}");
        assert!(err.to_string().contains("vocabulary of 300"), "{err}");
        let err = speculative_greedy(&lm(&wide, 1), &lm(&wide, 1), b"a", 8, 4).unwrap_err();
        assert!(matches!(err, GenerateError::Model(_)), "{err}");
        for (n, k, field) in [(8, 0, "k"), (0, 4, "max_tokens")] {
            match speculative_greedy(&main, &main, b"a", n, k) {
                Err(GenerateError::InvalidParam { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let sampling = GenerateParams::default();
        assert!(matches!(
            speculative_stream(&main, &main, b"a", &sampling, 4, |_| true),
            Err(GenerateError::InvalidParam {
                field: "temperature",
                ..
            })
        ));
    }

    /// Two `tiny` models trained from different seeds on the same (repetitive) text, trained
    /// once for all tests.
    fn trained_pair() -> (Lm, Lm) {
        static WEIGHTS: std::sync::OnceLock<(TensorSet, TensorSet)> = std::sync::OnceLock::new();
        let tiny = ModelConfig::tiny();
        let (main_w, draft_w) = WEIGHTS.get_or_init(|| {
            let line = b"fn add(a: u32, b: u32) -> u32 { a + b }\n";
            let text: Vec<u8> = (0..4096).map(|i| line[i % line.len()]).collect();
            let chunk = Chunk {
                index: 0,
                hash: crate::merkle::keccak256(&text),
                data: text,
            };
            let params = TrainParams {
                steps: 200,
                batch: 16,
                lr: 1e-2,
                device: Device::Cpu,
                ..TrainParams::default()
            };
            let train = |seed| train_from_init(&tiny, seed, &[&chunk], &params).unwrap();
            (train(1), train(2))
        });
        (
            Lm::new(&tiny, main_w, Device::Cpu).unwrap(),
            Lm::new(&tiny, draft_w, Device::Cpu).unwrap(),
        )
    }

    #[test]
    fn a_draft_trained_on_the_same_text_is_accepted_often() {
        // The two models agree on most bytes: a realistic acceptance rate, and the output is
        // still the main model's.
        let (main, draft) = trained_pair();
        check_identity(&main, &draft, &[4]);
        let want = generate(&main, b"fn add(", &GenerateParams::greedy(24)).unwrap();
        let (got, s) = speculative_greedy(&main, &draft, b"fn add(", 24, 4).unwrap();
        assert_eq!(got, want);
        assert!(s.acceptance_rate() > 0.7, "{s:?}");
    }
}
