//! Text generation from the byte-level [`Lm`]: autoregressive sampling over a sliding window of
//! the last `context` tokens, with temperature, top-k and nucleus (top-p) filtering, a stop
//! sequence, and a per-token callback for streaming.
//!
//! Sampling runs in pure Rust on the last position's logits copied to host memory, drawing from
//! [`SplitMix64`] seeded by [`GenerateParams::seed`], so the same model, prompt and parameters
//! give the same bytes on every run. This module owns decoding only: it does not load models,
//! serve HTTP or charge for requests.
//!
//! An empty prompt is allowed: the model is then conditioned on a single newline byte (`b'\n'`),
//! the usual document boundary of the text corpora it is trained on; that byte is not part of
//! the output.
//!
//! # Greedy decoding is defined on the canonical logits
//!
//! The byte greedy decoding picks after a window of tokens is the argmax (the first largest
//! logit) of the *canonical* logits: the last row of [`Lm::forward`] over that window alone, as
//! [`greedy_without_cache`] computes them. The KV cache and speculative decoding
//! ([`crate::speculative`]) compute the same function with other matrix shapes, so their logits
//! differ from the canonical ones by rounding (below 1e-6 of the largest logit, measured). Every
//! greedy path decides through [`greedy_decision`]: when the top two logits it has are further
//! apart than [`TIE_TOLERANCE`] × max(1, largest |logit|), far beyond that rounding, their
//! argmax is the canonical argmax; otherwise (a near or exact tie) it recomputes the canonical
//! logits and takes their argmax. So all greedy paths give the same bytes, ties included, as
//! long as rounding stays under half that margin (checked by the tests).

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};
use thiserror::Error;

use crate::model::{KvCache, Lm};
use crate::rng::SplitMix64;

/// Most tokens one request may generate.
pub const MAX_TOKENS_LIMIT: usize = 1024;

/// The byte the model is conditioned on when the prompt is empty.
pub const EMPTY_PROMPT_TOKEN: u8 = b'\n';

/// Errors of generation.
#[derive(Debug, Error)]
pub enum GenerateError {
    /// A request parameter is out of range (`field` names it, as in the JSON body).
    #[error("invalid generation parameter `{field}`: {reason}")]
    InvalidParam {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The model cannot generate bytes (its vocabulary is not the 256 byte values).
    #[error("the model cannot generate bytes: {0}")]
    Model(String),
    /// The draft model of speculative decoding does not fit the main model.
    #[error("the draft model does not fit the main model: {0}")]
    Draft(String),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Relative width of the band of near-ties that greedy decoding settles on the canonical
/// logits (see the module documentation): the top logit must lead the second by more than
/// `TIE_TOLERANCE × max(1, largest |logit|)` to be trusted without recomputation.
pub const TIE_TOLERANCE: f32 = 1e-4;

/// Generation parameters; deserializable as the JSON body of a request, every field optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateParams {
    /// Bytes to generate (`1..=MAX_TOKENS_LIMIT`); fewer when a stop sequence or the callback
    /// ends generation first. Default 128.
    pub max_tokens: usize,
    /// Softmax temperature (`>= 0`, finite); 0 means greedy (argmax). Default 0.8.
    pub temperature: f32,
    /// Keep only the `k` most likely bytes (`>= 1`); `None` keeps all. Default `None`.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely bytes whose probability reaches `p` (`0 < p <= 1`);
    /// `None` keeps all. Default `None`.
    pub top_p: Option<f32>,
    /// Seed of the sampling stream: same seed, same output. Default 0.
    pub seed: u64,
    /// Stop when the output ends with these bytes (given as a UTF-8 string, non-empty); the
    /// stop sequence itself is not returned. Default `None`.
    pub stop: Option<String>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            temperature: 0.8,
            top_k: None,
            top_p: None,
            seed: 0,
            stop: None,
        }
    }
}

impl GenerateParams {
    /// Greedy decoding of `max_tokens` bytes.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            max_tokens,
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// The stop sequence as bytes (empty when there is none).
    pub(crate) fn stop_bytes(&self) -> &[u8] {
        self.stop.as_deref().map(str::as_bytes).unwrap_or_default()
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), GenerateError> {
        let bad = |field, reason: String| Err(GenerateError::InvalidParam { field, reason });
        if !(1..=MAX_TOKENS_LIMIT).contains(&self.max_tokens) {
            return bad(
                "max_tokens",
                format!("must be in 1..={MAX_TOKENS_LIMIT}, got {}", self.max_tokens),
            );
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(
                "temperature",
                format!(
                    "must be a finite number >= 0 (0 = greedy), got {}",
                    self.temperature
                ),
            );
        }
        if self.top_k == Some(0) {
            return bad("top_k", "must be >= 1, got 0".into());
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return bad("top_p", format!("must be in (0, 1], got {p}"));
        }
        if self.stop.as_deref() == Some("") {
            return bad("stop", "must not be empty (omit it instead)".into());
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// `max_tokens` bytes were generated.
    MaxTokens,
    /// The output ended with the stop sequence.
    Stop,
    /// The callback asked to stop.
    Cancelled,
}

/// Summary of a streamed generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Finish {
    /// Bytes sampled from the model (including a stop sequence that was withheld).
    pub sampled: usize,
    /// Bytes passed to the callback.
    pub emitted: usize,
    /// Why it ended.
    pub reason: FinishReason,
}

/// Generates a continuation of `prompt` (the prompt is not repeated in the output).
pub fn generate(lm: &Lm, prompt: &[u8], params: &GenerateParams) -> Result<Vec<u8>, GenerateError> {
    let mut out = Vec::with_capacity(params.max_tokens);
    generate_stream(lm, prompt, params, |b| {
        out.push(b);
        true
    })?;
    Ok(out)
}

/// Generates a continuation of `prompt`, passing each output byte to `on_token` as soon as it is
/// known; `on_token` returns `false` to stop early.
///
/// With a stop sequence, bytes that could begin it are held back until they cannot, so the
/// callback never sees any part of the stop sequence.
pub fn generate_stream(
    lm: &Lm,
    prompt: &[u8],
    params: &GenerateParams,
    mut on_token: impl FnMut(u8) -> bool,
) -> Result<Finish, GenerateError> {
    let mut d = Decoding::new(lm, prompt, params)?;
    tch::no_grad(|| {
        loop {
            if let Some(finish) = d.step(lm, &mut on_token)? {
                return Ok(finish);
            }
        }
    })
}

/// One generation in progress: what [`generate_stream`] keeps between bytes, stepped by whoever
/// computes the logits ([`Decoding::step`] alone, or [`Batch`] with other generations).
pub(crate) struct Decoding {
    params: GenerateParams,
    /// The window: at most the last `context` tokens.
    tokens: Vec<i64>,
    /// `tokens[..cached]` have their keys and values in `cache`: each step feeds only the bytes
    /// after them. Positions are absolute, so when the window slides the cache is rebuilt from
    /// the new window (exactly what a full re-run of the window computes).
    cache: KvCache,
    cached: usize,
    context: usize,
    rng: SplitMix64,
    filter: StopFilter,
    ready: Vec<u8>,
    sampled: usize,
    emitted: usize,
}

impl Decoding {
    pub(crate) fn new(
        lm: &Lm,
        prompt: &[u8],
        params: &GenerateParams,
    ) -> Result<Self, GenerateError> {
        params.validate()?;
        check_bytes(lm)?;
        let context = lm.config().context;
        Ok(Self {
            params: params.clone(),
            // Only the last `context` tokens are ever fed to the model.
            tokens: conditioning(prompt, context),
            cache: KvCache::new(),
            cached: 0,
            context,
            rng: SplitMix64::derive(params.seed, "generate"),
            filter: StopFilter::new(params.stop_bytes()),
            ready: Vec::new(),
            sampled: 0,
            emitted: 0,
        })
    }

    /// Drops the tokens before the window (and the cache with them); whether it slid.
    fn slide(&mut self) -> bool {
        let start = self.tokens.len().saturating_sub(self.context);
        if start > 0 {
            self.tokens.drain(..start);
            self.cache.clear();
            self.cached = 0;
        }
        start > 0
    }

    /// The next byte, with the logits computed from this sequence's own cache; `Some` once the
    /// generation is over.
    pub(crate) fn step(
        &mut self,
        lm: &Lm,
        on_token: &mut dyn FnMut(u8) -> bool,
    ) -> Result<Option<Finish>, GenerateError> {
        self.slide();
        let logits = next_logits(
            lm,
            &self.tokens[self.cached..],
            &mut self.cache,
            lm.device(),
        )?;
        // A prefill (empty cache) is the full forward of the window op for op: its logits are
        // the canonical ones.
        let canonical = self.cached == 0;
        self.cached = self.tokens.len();
        self.advance(lm, &logits, canonical, on_token)
    }

    /// Decides the next byte from `logits` (for the position after `tokens`, computed by any
    /// path; `canonical` when they are the window's plain forward), passes the bytes that are
    /// ready to `on_token`; `Some` once the generation is over.
    fn advance(
        &mut self,
        lm: &Lm,
        logits: &[f32],
        canonical: bool,
        on_token: &mut dyn FnMut(u8) -> bool,
    ) -> Result<Option<Finish>, GenerateError> {
        let next = if self.params.temperature == 0.0 {
            greedy_decision(lm, logits, &self.tokens, canonical)?.0
        } else {
            sample(logits, &self.params, &mut self.rng)
        };
        self.sampled += 1;
        self.tokens.push(next as i64);
        if self.filter.push(next as u8, &mut self.ready) {
            return Ok(Some(self.finish(FinishReason::Stop, on_token)));
        }
        if let Some(f) = self.emit(on_token) {
            return Ok(Some(f));
        }
        if self.sampled >= self.params.max_tokens {
            self.filter.flush(&mut self.ready);
            return Ok(Some(self.finish(FinishReason::MaxTokens, on_token)));
        }
        Ok(None)
    }

    /// Passes the ready bytes on; `Some(cancelled)` when the callback stops.
    fn emit(&mut self, on_token: &mut dyn FnMut(u8) -> bool) -> Option<Finish> {
        for b in std::mem::take(&mut self.ready) {
            self.emitted += 1;
            if !on_token(b) {
                return Some(Finish {
                    sampled: self.sampled,
                    emitted: self.emitted,
                    reason: FinishReason::Cancelled,
                });
            }
        }
        None
    }

    fn finish(&mut self, reason: FinishReason, on_token: &mut dyn FnMut(u8) -> bool) -> Finish {
        self.emit(on_token).unwrap_or(Finish {
            sampled: self.sampled,
            emitted: self.emitted,
            reason,
        })
    }
}

/// A callback receiving a generation's bytes (`false` stops it).
pub type OnToken<'a> = Box<dyn FnMut(u8) -> bool + Send + 'a>;

/// Generations decoded together: every step feeds each one's next byte through the model in one
/// batched forward call ([`Lm::forward_slots`]), so `n` concurrent generations cost about one
/// call per byte instead of `n` (libtorch's per-operator overhead, not arithmetic, dominates a
/// small model's step on a CPU). Generations join ([`Batch::add`]) and leave (returned by
/// [`Batch::step`]) between steps. Each yields the bytes [`generate_stream`] yields for it
/// alone: greedy ones exactly (every greedy path decides through [`greedy_decision`]); a
/// prompt's prefill and every step once the window slides run for that generation alone.
pub struct Batch<'a> {
    store: crate::model::SlotCache,
    entries: Vec<Option<Entry<'a>>>,
}

struct Entry<'a> {
    decoding: Decoding,
    on_token: OnToken<'a>,
    /// The cached positions are in this entry's slot of the store (else in its own cache).
    in_slot: bool,
}

impl<'a> Batch<'a> {
    /// Room for `slots` generations at once.
    pub fn new(slots: usize) -> Self {
        Self {
            store: crate::model::SlotCache::new(slots),
            entries: (0..slots).map(|_| None).collect(),
        }
    }

    /// Generations in progress.
    pub fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    /// Whether none is in progress.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether another generation can join.
    pub fn has_room(&self) -> bool {
        self.entries.iter().any(Option::is_none)
    }

    /// Adds a generation of `prompt` with `params`; returns its id (its slot), or `None` when
    /// the batch is full. Bad parameters are refused here, as by [`generate_stream`].
    pub fn add(
        &mut self,
        lm: &Lm,
        prompt: &[u8],
        params: &GenerateParams,
        on_token: OnToken<'a>,
    ) -> Result<Option<usize>, GenerateError> {
        let Some(slot) = self.entries.iter().position(Option::is_none) else {
            return Ok(None);
        };
        self.entries[slot] = Some(Entry {
            decoding: Decoding::new(lm, prompt, params)?,
            on_token,
            in_slot: false,
        });
        Ok(Some(slot))
    }

    /// One byte of every generation in progress; returns the ones that ended, by id.
    pub fn step(&mut self, lm: &Lm) -> Vec<(usize, Result<Finish, GenerateError>)> {
        let mut ended = Vec::new();
        let (mut ids, mut tokens, mut positions) = (Vec::new(), Vec::new(), Vec::new());
        tch::no_grad(|| {
            for (id, slot) in self.entries.iter_mut().enumerate() {
                let Some(e) = slot else { continue };
                if e.decoding.slide() {
                    e.in_slot = false;
                }
                let d = &e.decoding;
                if e.in_slot {
                    ids.push(id);
                    tokens.push(*d.tokens.last().expect("a window is never empty"));
                    positions.push(d.cached);
                    continue;
                }
                // Prefill, or a window that no longer fits: this generation alone.
                match e.decoding.step(lm, &mut e.on_token) {
                    Ok(None) => {
                        let d = &mut e.decoding;
                        if d.tokens.len() <= d.context {
                            self.store.load(lm, id, &d.cache);
                            d.cache.clear();
                            e.in_slot = true;
                        }
                    }
                    Ok(Some(f)) => ended.push((id, Ok(f))),
                    Err(err) => ended.push((id, Err(err))),
                }
            }
            if !ids.is_empty() {
                let logits = lm
                    .forward_slots(&tokens, &ids, &positions, &mut self.store)
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu);
                let vocab = lm.config().vocab;
                let rows = Vec::<f32>::try_from(&logits.reshape([-1]));
                for (i, &id) in ids.iter().enumerate() {
                    let e = self.entries[id].as_mut().expect("stepped entries exist");
                    let result = match &rows {
                        Ok(rows) => {
                            e.decoding.cached += 1;
                            let row = &rows[i * vocab..(i + 1) * vocab];
                            e.decoding.advance(lm, row, false, &mut e.on_token)
                        }
                        Err(err) => {
                            Err(GenerateError::Torch(tch::TchError::Torch(err.to_string())))
                        }
                    };
                    match result {
                        Ok(None) => {}
                        Ok(Some(f)) => ended.push((id, Ok(f))),
                        Err(err) => ended.push((id, Err(err))),
                    }
                }
            }
        });
        for (id, _) in &ended {
            self.entries[*id] = None;
        }
        ended.sort_by_key(|(id, _)| *id);
        ended
    }
}

/// Generates a continuation of each prompt, decoding them together ([`Batch`]); the outputs in
/// the order of `requests`.
pub fn generate_batch(
    lm: &Lm,
    requests: &[(&[u8], GenerateParams)],
) -> Result<Vec<Vec<u8>>, GenerateError> {
    let outs: Vec<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
        requests.iter().map(|_| Default::default()).collect();
    let mut batch = Batch::new(requests.len().max(1));
    for ((prompt, params), out) in requests.iter().zip(&outs) {
        let out = out.clone();
        batch.add(
            lm,
            prompt,
            params,
            Box::new(move |b| {
                out.lock().unwrap_or_else(|p| p.into_inner()).push(b);
                true
            }),
        )?;
    }
    while !batch.is_empty() {
        for (_, r) in batch.step(lm) {
            r?;
        }
    }
    Ok(outs
        .into_iter()
        .map(|o| std::mem::take(&mut *o.lock().unwrap_or_else(|p| p.into_inner())))
        .collect())
}

/// Greedy decoding the way it is defined, without the KV cache: the whole window of the last
/// `context` bytes through [`Lm::forward`] for every byte (the canonical logits), the first
/// largest logit of the last position. The reference [`generate`]'s greedy output is tested
/// against, and the baseline of `make bench-generate`. `prompt` must not be empty.
pub fn greedy_without_cache(lm: &Lm, prompt: &[u8], n: usize) -> Vec<u8> {
    let context = lm.config().context;
    let mut seq: Vec<i64> = prompt.iter().map(|&b| i64::from(b)).collect();
    let mut out = Vec::with_capacity(n);
    tch::no_grad(|| {
        for _ in 0..n {
            let window = &seq[seq.len().saturating_sub(context)..];
            let logits = canonical_logits(lm, window).expect("libtorch forward");
            let next = argmax(&logits);
            seq.push(next as i64);
            out.push(next as u8);
        }
    });
    out
}

/// The greedy choice after `window` (the last `context` tokens, or fewer at the start) given
/// `logits` for that position computed by any path (cached, chunked): their argmax when it
/// clearly leads, else the argmax of the canonical logits (recomputed unless `canonical` says
/// `logits` are those already). Returns the token and whether the canonical logits were
/// recomputed. See the module documentation for why every greedy path goes through this.
pub fn greedy_decision(
    lm: &Lm,
    logits: &[f32],
    window: &[i64],
    canonical: bool,
) -> Result<(usize, bool), GenerateError> {
    let best = argmax(logits);
    if canonical || clearly_leads(logits, best) {
        return Ok((best, false));
    }
    let exact = tch::no_grad(|| canonical_logits(lm, window))?;
    Ok((argmax(&exact), true))
}

/// Whether `logits[best]` leads every other logit by more than the tie band (false with NaNs).
fn clearly_leads(logits: &[f32], best: usize) -> bool {
    let mut second = f32::NEG_INFINITY;
    let mut scale = 1.0f32;
    for (i, &v) in logits.iter().enumerate() {
        scale = scale.max(v.abs());
        if i != best && (v > second || v.is_nan()) {
            second = v;
        }
    }
    logits[best] - second > TIE_TOLERANCE * scale
}

/// The canonical logits after `window`: the last row of [`Lm::forward`] over it, on the host.
pub fn canonical_logits(lm: &Lm, window: &[i64]) -> Result<Vec<f32>, tch::TchError> {
    let x = Tensor::from_slice(window)
        .view([1, window.len() as i64])
        .to_device(lm.device());
    let last = lm
        .forward(&x)
        .get(0)
        .get(-1)
        .to_kind(Kind::Float)
        .to_device(Device::Cpu);
    Vec::<f32>::try_from(&last)
}

/// Refuses a model whose vocabulary is not the 256 byte values.
pub(crate) fn check_bytes(lm: &Lm) -> Result<(), GenerateError> {
    let vocab = lm.config().vocab;
    if vocab != 256 {
        return Err(GenerateError::Model(format!(
            "vocabulary of {vocab} tokens, byte generation needs 256"
        )));
    }
    Ok(())
}

/// The last `keep` tokens the model is conditioned on: the prompt, or [`EMPTY_PROMPT_TOKEN`]
/// when it is empty.
pub(crate) fn conditioning(prompt: &[u8], keep: usize) -> Vec<i64> {
    if prompt.is_empty() {
        vec![i64::from(EMPTY_PROMPT_TOKEN)]
    } else {
        prompt[prompt.len().saturating_sub(keep)..]
            .iter()
            .map(|&b| i64::from(b))
            .collect()
    }
}

/// Holds back output bytes that may be the start of the stop sequence.
pub(crate) struct StopFilter {
    stop: Vec<u8>,
    pending: Vec<u8>,
}

impl StopFilter {
    pub(crate) fn new(stop: &[u8]) -> Self {
        Self {
            stop: stop.to_vec(),
            pending: Vec::new(),
        }
    }

    /// Takes the next byte: appends to `ready` the bytes that can no longer be part of the stop
    /// sequence, and returns whether the stop sequence is complete (its bytes are dropped).
    pub(crate) fn push(&mut self, byte: u8, ready: &mut Vec<u8>) -> bool {
        self.pending.push(byte);
        if !self.stop.is_empty() && self.pending.ends_with(&self.stop) {
            let keep = self.pending.len() - self.stop.len();
            ready.extend_from_slice(&self.pending[..keep]);
            self.pending.clear();
            return true;
        }
        // Release what lies in front of the longest suffix that is a prefix of `stop`.
        let mut release = 0;
        while !self.stop.starts_with(&self.pending[release..]) {
            release += 1;
        }
        ready.extend(self.pending.drain(..release));
        false
    }

    /// Releases everything held back (generation ended without the stop sequence).
    pub(crate) fn flush(&mut self, ready: &mut Vec<u8>) {
        ready.append(&mut self.pending);
    }
}

/// The logits of the last of `tokens`, which follow the positions in `cache` (appended to it),
/// on the host.
fn next_logits(
    lm: &Lm,
    tokens: &[i64],
    cache: &mut KvCache,
    device: Device,
) -> Result<Vec<f32>, GenerateError> {
    let n = tokens.len() as i64;
    let input = Tensor::from_slice(tokens).view([1, n]).to_device(device);
    let last = lm
        .forward_cached(&input, cache)
        .get(0)
        .get(n - 1)
        .to_kind(Kind::Float)
        .to_device(Device::Cpu);
    Ok(Vec::<f32>::try_from(&last)?)
}

/// Index of the largest value (the first on ties).
pub(crate) fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
}

/// Draws a token from `logits` under the temperature, top-k and top-p of `params`.
fn sample(logits: &[f32], params: &GenerateParams, rng: &mut SplitMix64) -> usize {
    if params.temperature == 0.0 {
        return argmax(logits);
    }
    // Candidates by decreasing logit (ties by index, so the order is total and reproducible).
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if let Some(k) = params.top_k {
        order.truncate(k.max(1));
    }
    let t = f64::from(params.temperature);
    let max = f64::from(logits[order[0]]);
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&i| ((f64::from(logits[i]) - max) / t).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if let Some(top_p) = params.top_p {
        let mut cumulative = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            cumulative += p;
            if cumulative >= f64::from(top_p) {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        order.truncate(keep);
    }
    let mass: f64 = probs.iter().sum();
    let u = f64::from(rng.next_f32()) * mass;
    let mut cumulative = 0.0;
    for (&i, p) in order.iter().zip(&probs) {
        cumulative += p;
        if u < cumulative {
            return i;
        }
    }
    order[order.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, init_weights};

    fn tiny(seed: u64) -> Lm {
        let cfg = ModelConfig::tiny();
        Lm::new(&cfg, &init_weights(&cfg, seed).unwrap(), Device::Cpu).unwrap()
    }

    fn sampling(seed: u64) -> GenerateParams {
        GenerateParams {
            max_tokens: 64,
            temperature: 1.0,
            seed,
            ..GenerateParams::default()
        }
    }

    fn reference_greedy(lm: &Lm, prompt: &[u8], n: usize) -> Vec<u8> {
        greedy_without_cache(lm, prompt, n)
    }

    #[test]
    fn a_batch_yields_each_generations_own_bytes() {
        // Both presets; greedy and sampled generations of different prompts (empty, short,
        // longer than the window) and lengths (past the window: they slide), with a stop
        // sequence, decoded together; each must be what it is alone.
        for (cfg, seed) in [(ModelConfig::tiny(), 3), (ModelConfig::small(), 4)] {
            let lm = Lm::new(&cfg, &init_weights(&cfg, seed).unwrap(), Device::Cpu).unwrap();
            let long: Vec<u8> = (0..cfg.context + 9)
                .map(|i| b"let x = 1;\n"[i % 11])
                .collect();
            let prompts: [&[u8]; 6] = [b"", b"fn main", b"impl", &long, b"x", b"struct A {"];
            let requests: Vec<(&[u8], GenerateParams)> = prompts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut params = if i % 2 == 0 {
                        GenerateParams::greedy(5 + 13 * i)
                    } else {
                        GenerateParams {
                            max_tokens: cfg.context + 3 * i,
                            ..sampling(i as u64)
                        }
                    };
                    if i == 4 {
                        params.stop = Some("e".into());
                    }
                    (*p, params)
                })
                .collect();
            let together = generate_batch(&lm, &requests).unwrap();
            for ((prompt, params), got) in requests.iter().zip(&together) {
                let alone = generate(&lm, prompt, params).unwrap();
                assert_eq!(
                    got, &alone,
                    "context {}, prompt {prompt:?}, {params:?}",
                    cfg.context
                );
            }
        }
    }

    #[test]
    fn a_batch_takes_new_generations_between_steps_and_names_bad_ones() {
        let lm = tiny(5);
        let mut batch = Batch::new(2);
        let outs: Vec<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
            (0..3).map(|_| Default::default()).collect();
        let sink = |i: usize| {
            let out = outs[i].clone();
            Box::new(move |b| {
                out.lock().unwrap().push(b);
                true
            }) as OnToken<'static>
        };
        let greedy = GenerateParams::greedy(20);
        assert_eq!(batch.add(&lm, b"fn", &greedy, sink(0)).unwrap(), Some(0));
        for _ in 0..5 {
            assert!(batch.step(&lm).is_empty());
        }
        assert_eq!(batch.add(&lm, b"let", &greedy, sink(1)).unwrap(), Some(1));
        assert!(!batch.has_room());
        assert_eq!(batch.add(&lm, b"full", &greedy, sink(2)).unwrap(), None);
        let bad = GenerateParams {
            max_tokens: 0,
            ..greedy.clone()
        };
        let mut b2 = Batch::new(1);
        let e = b2.add(&lm, b"x", &bad, sink(2)).err().unwrap();
        assert!(e.to_string().contains("max_tokens"), "{e}");
        assert!(b2.is_empty());
        let mut ended = Vec::new();
        while !batch.is_empty() {
            ended.extend(batch.step(&lm).into_iter().map(|(id, f)| (id, f.unwrap())));
        }
        assert_eq!(ended.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [0, 1]);
        assert!(
            ended
                .iter()
                .all(|(_, f)| f.reason == FinishReason::MaxTokens && f.emitted == 20)
        );
        assert_eq!(
            *outs[0].lock().unwrap(),
            generate(&lm, b"fn", &greedy).unwrap()
        );
        assert_eq!(
            *outs[1].lock().unwrap(),
            generate(&lm, b"let", &greedy).unwrap()
        );
        // A callback that stops cancels its generation only.
        let mut batch = Batch::new(2);
        let mut left = 3;
        batch
            .add(
                &lm,
                b"a",
                &greedy,
                Box::new(move |_| {
                    left -= 1;
                    left > 0
                }),
            )
            .unwrap();
        batch.add(&lm, b"b", &greedy, sink(2)).unwrap();
        let mut reasons = Vec::new();
        while !batch.is_empty() {
            reasons.extend(
                batch
                    .step(&lm)
                    .into_iter()
                    .map(|(id, f)| (id, f.unwrap().reason)),
            );
        }
        assert_eq!(
            reasons,
            [(0, FinishReason::Cancelled), (1, FinishReason::MaxTokens)]
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_seeds_differ() {
        let lm = tiny(1);
        let a = generate(&lm, b"fn main", &sampling(7)).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(a, generate(&lm, b"fn main", &sampling(7)).unwrap());
        let b = generate(&lm, b"fn main", &sampling(8)).unwrap();
        assert_ne!(a, b, "seeds 7 and 8 sampled the same 64 bytes");
    }

    #[test]
    fn greedy_output_with_the_kv_cache_is_the_full_re_runs() {
        // Both presets, prompts empty, short and longer than the window, and generations long
        // enough that the window slides (the cache is rebuilt then).
        for (cfg, seed) in [(ModelConfig::tiny(), 3), (ModelConfig::small(), 4)] {
            let lm = Lm::new(&cfg, &init_weights(&cfg, seed).unwrap(), Device::Cpu).unwrap();
            let long: Vec<u8> = (0..cfg.context + 17)
                .map(|i| b"fn main() {}"[i % 12])
                .collect();
            for prompt in [&b""[..], b"let x = ", &long] {
                let n = cfg.context + 24;
                let got = generate(&lm, prompt, &GenerateParams::greedy(n)).unwrap();
                let conditioned: &[u8] = if prompt.is_empty() { b"\n" } else { prompt };
                assert_eq!(
                    got,
                    reference_greedy(&lm, conditioned, n),
                    "preset with context {}, prompt of {} bytes",
                    cfg.context,
                    prompt.len()
                );
            }
        }
    }

    #[test]
    fn temperature_zero_is_the_argmax_of_the_forward_pass() {
        let lm = tiny(2);
        let got = generate(&lm, b"let x = ", &GenerateParams::greedy(40)).unwrap();
        assert_eq!(got, reference_greedy(&lm, b"let x = ", 40));
        // Greedy decoding ignores the seed.
        let other_seed = GenerateParams {
            seed: 99,
            ..GenerateParams::greedy(40)
        };
        assert_eq!(got, generate(&lm, b"let x = ", &other_seed).unwrap());
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let lm = tiny(3);
        let greedy = generate(&lm, b"abc", &GenerateParams::greedy(30)).unwrap();
        for (seed, temperature) in [(1, 0.5), (2, 1.0), (3, 5.0)] {
            let p = GenerateParams {
                max_tokens: 30,
                temperature,
                top_k: Some(1),
                seed,
                ..GenerateParams::default()
            };
            assert_eq!(generate(&lm, b"abc", &p).unwrap(), greedy, "seed {seed}");
        }
        // A tiny nucleus keeps only the most likely byte too.
        let p = GenerateParams {
            top_p: Some(1e-6),
            ..sampling(4)
        };
        let n = GenerateParams::greedy(64);
        assert_eq!(
            generate(&lm, b"abc", &p).unwrap(),
            generate(&lm, b"abc", &n).unwrap()
        );
    }

    #[test]
    fn top_k_restricts_the_candidates() {
        let logits = [0.0f32, 3.0, 1.0, 2.5, -1.0];
        let p = GenerateParams {
            temperature: 100.0, // nearly uniform over what top-k keeps
            top_k: Some(2),
            ..GenerateParams::default()
        };
        let mut rng = SplitMix64::new(5);
        let drawn: std::collections::BTreeSet<usize> =
            (0..500).map(|_| sample(&logits, &p, &mut rng)).collect();
        assert_eq!(drawn, [1, 3].into());
    }

    #[test]
    fn max_tokens_is_respected_and_the_callback_can_stop() {
        let lm = tiny(4);
        for n in [1, 5, 33] {
            let p = GenerateParams {
                max_tokens: n,
                ..sampling(1)
            };
            assert_eq!(generate(&lm, b"x", &p).unwrap().len(), n);
        }
        let mut seen = Vec::new();
        let f = generate_stream(&lm, b"x", &sampling(1), |b| {
            seen.push(b);
            seen.len() < 10
        })
        .unwrap();
        assert_eq!(
            (f.reason, f.emitted, seen.len()),
            (FinishReason::Cancelled, 10, 10)
        );
        // The streamed bytes are a prefix of the full output.
        assert_eq!(seen, generate(&lm, b"x", &sampling(1)).unwrap()[..10]);
    }

    #[test]
    fn prompts_longer_than_the_context_and_empty_prompts_work() {
        let lm = tiny(5);
        let context = lm.config().context;
        let long: Vec<u8> = (0..3 * context).map(|i| b'a' + (i % 26) as u8).collect();
        let got = generate(&lm, &long, &GenerateParams::greedy(20)).unwrap();
        assert_eq!(got.len(), 20);
        // Only the last `context` bytes of the prompt matter.
        assert_eq!(
            got,
            generate(&lm, &long[2 * context..], &GenerateParams::greedy(20)).unwrap()
        );
        assert_eq!(got, reference_greedy(&lm, &long, 20));
        let empty = generate(&lm, b"", &GenerateParams::greedy(10)).unwrap();
        assert_eq!(
            empty,
            generate(&lm, b"\n", &GenerateParams::greedy(10)).unwrap()
        );
    }

    #[test]
    fn a_stop_sequence_ends_generation_and_is_withheld() {
        let lm = tiny(6);
        let full = generate(&lm, b"q", &sampling(11)).unwrap();
        // Stop on an ASCII pair generated after position 10: output is everything before its
        // first occurrence.
        let at = (10..full.len() - 1)
            .find(|&i| full[i].is_ascii() && full[i + 1].is_ascii())
            .expect("64 random bytes hold an ASCII pair");
        let stop = &full[at..at + 2];
        let first = full.windows(2).position(|w| w == stop).unwrap();
        let p = GenerateParams {
            stop: Some(String::from_utf8(stop.to_vec()).unwrap()),
            ..sampling(11)
        };
        let mut streamed = Vec::new();
        let f = generate_stream(&lm, b"q", &p, |b| {
            streamed.push(b);
            true
        })
        .unwrap();
        assert_eq!(f.reason, FinishReason::Stop);
        assert_eq!(streamed, full[..first]);
        assert_eq!((f.sampled, f.emitted), (first + 2, first));
    }

    #[test]
    fn the_stop_filter_never_leaks_part_of_the_stop_sequence() {
        let run = |stop: &[u8], input: &[u8]| {
            let mut f = StopFilter::new(stop);
            let mut out = Vec::new();
            for &b in input {
                if f.push(b, &mut out) {
                    return (out, true);
                }
            }
            f.flush(&mut out);
            (out, false)
        };
        assert_eq!(run(b"ab", b"aab"), (b"a".to_vec(), true));
        assert_eq!(run(b"aab", b"aaab"), (b"a".to_vec(), true));
        assert_eq!(run(b"ab", b"xaxa"), (b"xaxa".to_vec(), false));
        assert_eq!(run(b"", b"xyz"), (b"xyz".to_vec(), false));
        // Held-back bytes are released as soon as they cannot start the stop sequence.
        let mut f = StopFilter::new(b"ab");
        let mut out = Vec::new();
        assert!(!f.push(b'a', &mut out) && out.is_empty());
        assert!(!f.push(b'c', &mut out));
        assert_eq!(out, b"ac");
    }

    #[test]
    fn every_invalid_parameter_is_rejected_by_name() {
        let base = GenerateParams::default();
        assert!(base.validate().is_ok());
        let cases: Vec<(&str, GenerateParams)> = vec![
            (
                "max_tokens",
                GenerateParams {
                    max_tokens: 0,
                    ..base.clone()
                },
            ),
            (
                "max_tokens",
                GenerateParams {
                    max_tokens: MAX_TOKENS_LIMIT + 1,
                    ..base.clone()
                },
            ),
            (
                "temperature",
                GenerateParams {
                    temperature: -0.1,
                    ..base.clone()
                },
            ),
            (
                "temperature",
                GenerateParams {
                    temperature: f32::NAN,
                    ..base.clone()
                },
            ),
            (
                "temperature",
                GenerateParams {
                    temperature: f32::INFINITY,
                    ..base.clone()
                },
            ),
            (
                "top_k",
                GenerateParams {
                    top_k: Some(0),
                    ..base.clone()
                },
            ),
            (
                "top_p",
                GenerateParams {
                    top_p: Some(0.0),
                    ..base.clone()
                },
            ),
            (
                "top_p",
                GenerateParams {
                    top_p: Some(1.5),
                    ..base.clone()
                },
            ),
            (
                "top_p",
                GenerateParams {
                    top_p: Some(f32::NAN),
                    ..base.clone()
                },
            ),
            (
                "stop",
                GenerateParams {
                    stop: Some(String::new()),
                    ..base.clone()
                },
            ),
        ];
        let lm = tiny(7);
        for (field, p) in cases {
            match p.validate() {
                Err(GenerateError::InvalidParam { field: f, .. }) => assert_eq!(f, field, "{p:?}"),
                other => panic!("{p:?} gave {other:?}"),
            }
            let msg = generate(&lm, b"a", &p).unwrap_err().to_string();
            assert!(msg.contains(&format!("`{field}`")), "{msg}");
        }
    }

    #[test]
    fn params_parse_from_json_with_defaults() {
        let p: GenerateParams = serde_json::from_str(r#"{"max_tokens": 5, "top_p": 0.9}"#).unwrap();
        assert_eq!(
            p,
            GenerateParams {
                max_tokens: 5,
                top_p: Some(0.9),
                ..GenerateParams::default()
            }
        );
        assert_eq!(
            serde_json::from_str::<GenerateParams>("{}").unwrap(),
            GenerateParams::default()
        );
        let err = serde_json::from_str::<GenerateParams>(r#"{"max_token": 5}"#).unwrap_err();
        assert!(err.to_string().contains("max_token"), "{err}");
    }

    /// Throughput of the `small` preset (measured by hand:
    /// `cargo test --release -p autonet-ml generate::tests::small_preset_throughput -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn small_preset_throughput() {
        let cfg = ModelConfig::small();
        let device = crate::model::default_device();
        let lm = Lm::new(&cfg, &init_weights(&cfg, 1).unwrap(), device).unwrap();
        let p = GenerateParams {
            max_tokens: 512,
            ..sampling(1)
        };
        let prompt = vec![b'a'; cfg.context];
        generate(
            &lm,
            &prompt,
            &GenerateParams {
                max_tokens: 8,
                ..p.clone()
            },
        )
        .unwrap();
        let started = std::time::Instant::now();
        let out = generate(&lm, &prompt, &p).unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(out.len(), 512);
        println!(
            "small preset on {device:?}, {} threads: {:.1} tokens/s (full {}-token window per step)",
            tch::get_num_threads(),
            512.0 / secs,
            cfg.context
        );
    }
}
