//! The served model: the project's current model read from chain, loaded from the genesis rule
//! or fetched from its shard providers with every shard verified against the chain.

use std::path::Path;
use std::sync::{Arc, Mutex};

use alloy::primitives::{B256, U256};
use autonet_bindings::{Contracts, ModelShardRegistry, Project, ShardProviders};
use autonet_chain::ChainProvider;
use autonet_ml::generate::{Batch, Finish, GenerateParams, OnToken};
use autonet_ml::speculative::{SpecStats, check_draft, generate_stream_with_draft};
use autonet_ml::{Lm, ModelConfig};
use autonet_spec::{ModelError, ModelSources, TrainingSpec};
use autonet_storage::{ShardClient, Store};

use crate::InferenceError;

/// A model ready to generate with: one copy of the weights per generation that may run at once
/// (a copy is used by one generation at a time; concurrent requests decode in parallel on
/// separate copies instead of queueing behind one).
pub struct LoadedModel {
    /// Its Merkle root (as published and accepted on chain).
    pub root: B256,
    copies: Vec<Mutex<Lm>>,
    next: std::sync::atomic::AtomicUsize,
    /// With `--batch-slots`: threads decoding generations of the full path together, one per
    /// core; a generation goes to the one with the fewest in progress.
    batchers: Vec<Batcher>,
}

/// A generation handed to the [`Batcher`]: its bytes come back one by one, then its end.
struct Job {
    prompt: Vec<u8>,
    params: GenerateParams,
    on_byte: OnToken<'static>,
    done: std::sync::mpsc::Sender<Result<Finish, String>>,
}

/// Runs its closure when dropped.
struct Defer<F: FnMut()>(F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// A thread that owns one copy of the model and decodes every generation it is given together,
/// up to `slots` at once ([`Batch`]: one forward call per step for all of them), admitting new
/// ones between steps. It ends once the model is dropped and its last generation is done.
struct Batcher {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    /// Generations handed to it and not yet done.
    active: Arc<std::sync::atomic::AtomicUsize>,
}

impl Batcher {
    fn start(lm: Lm, slots: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("batcher".into())
            .spawn(move || Self::run(&lm, slots, &rx))
            .expect("spawning the batcher thread");
        Self {
            jobs: Mutex::new(tx),
            active: Arc::default(),
        }
    }

    fn run(lm: &Lm, slots: usize, rx: &std::sync::mpsc::Receiver<Job>) {
        use std::sync::mpsc::TryRecvError;
        let mut batch = Batch::new(slots.max(1));
        let mut waiting = std::collections::HashMap::new();
        let admit = |batch: &mut Batch<'static>,
                     waiting: &mut std::collections::HashMap<_, _>,
                     job: Job| {
            match batch.add(lm, &job.prompt, &job.params, job.on_byte) {
                Ok(Some(id)) => {
                    waiting.insert(id, job.done);
                }
                Ok(None) => {
                    let _ = job.done.send(Err("the batch is full".into()));
                }
                Err(e) => {
                    let _ = job.done.send(Err(e.to_string()));
                }
            }
        };
        loop {
            if batch.is_empty() {
                match rx.recv() {
                    Ok(job) => admit(&mut batch, &mut waiting, job),
                    Err(_) => return,
                }
            }
            while batch.has_room() {
                match rx.try_recv() {
                    Ok(job) => admit(&mut batch, &mut waiting, job),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            for (id, result) in batch.step(lm) {
                if let Some(done) = waiting.remove(&id) {
                    let _ = done.send(result.map_err(|e| e.to_string()));
                }
            }
        }
    }

    /// Decodes `prompt` in the batch, passing each byte to `on_byte` on the calling thread
    /// (`false` cancels the generation); blocking.
    fn generate(
        &self,
        prompt: &[u8],
        params: &GenerateParams,
        mut on_byte: impl FnMut(u8) -> bool,
    ) -> Result<Finish, InferenceError> {
        // Unbounded: at most `max_tokens` bytes wait, and a slow reader never stalls the batch.
        let (bytes, received) = std::sync::mpsc::channel::<u8>();
        let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (done, finished) = std::sync::mpsc::channel();
        let stop = cancelled.clone();
        self.active
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let active = self.active.clone();
        let _done = Defer(move || {
            active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
        let job = Job {
            prompt: prompt.to_vec(),
            params: params.clone(),
            on_byte: Box::new(move |b| {
                !stop.load(std::sync::atomic::Ordering::Relaxed) && bytes.send(b).is_ok()
            }),
            done,
        };
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| InferenceError::Model("the batcher thread stopped".into()))?;
        // The byte channel closes when the generation leaves the batch.
        for b in received {
            if !cancelled.load(std::sync::atomic::Ordering::Relaxed) && !on_byte(b) {
                cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let mut finish = finished
            .recv()
            .map_err(|_| InferenceError::Model("the batcher thread stopped".into()))?
            .map_err(InferenceError::Model)?;
        if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
            finish.reason = autonet_ml::generate::FinishReason::Cancelled;
        }
        Ok(finish)
    }
}

/// Copies of a served model: one per core, at most 4 (decoding one byte is too small a job for
/// libtorch to spread over cores, so parallel requests are what uses them).
pub fn default_copies() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4)
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("root", &self.root)
            .finish()
    }
}

/// Which decoding produced a generation (a cache hit is reported by the server as `cache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodePath {
    /// The served model alone, one forward call per byte.
    Full,
    /// Speculative decoding with the draft model: the same bytes, checked by the served model
    /// several at a time.
    Speculative,
}

impl DecodePath {
    /// The name in responses and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Speculative => "speculative",
        }
    }
}

/// What one generation produced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Generated {
    /// The continuation (bytes, shown as UTF-8 with invalid sequences replaced).
    pub output: String,
    /// Bytes generated.
    pub tokens: usize,
    /// Why generation ended (`max_tokens`, `stop`).
    pub finish: String,
    /// How it was decoded.
    pub path: DecodePath,
    /// What speculation did (speculative path only).
    pub speculation: Option<SpecStats>,
}

impl LoadedModel {
    /// Wraps `lm` as model `root` (one copy: generations take turns).
    pub fn new(root: B256, lm: Lm) -> Self {
        Self::with_copies(root, vec![lm])
    }

    /// Model `root` served from `copies` (each the same weights; at least one).
    pub fn with_copies(root: B256, copies: Vec<Lm>) -> Self {
        assert!(!copies.is_empty(), "a served model needs at least one copy");
        Self {
            root,
            copies: copies.into_iter().map(Mutex::new).collect(),
            next: Default::default(),
            batchers: Vec::new(),
        }
    }

    /// Also decodes full-path generations together, up to `slots` at once per copy, on `lms`
    /// (other copies of the same weights), each in a thread of its own.
    pub fn with_batchers(mut self, lms: Vec<Lm>, slots: usize) -> Self {
        self.batchers = lms
            .into_iter()
            .map(|lm| Batcher::start(lm, slots))
            .collect();
        self
    }

    /// Whether full-path generations are batched.
    pub fn batched(&self) -> bool {
        !self.batchers.is_empty()
    }

    /// Copies of the weights held.
    pub fn copies(&self) -> usize {
        self.copies.len()
    }

    /// A free copy, or (all busy) the next one in turn, waited for.
    pub(crate) fn lm(&self) -> std::sync::MutexGuard<'_, Lm> {
        for c in &self.copies {
            if let Ok(lm) = c.try_lock() {
                return lm;
            }
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.copies.len();
        self.copies[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Generates a continuation of `prompt` (blocking: call from a blocking thread).
    pub fn generate(
        &self,
        prompt: &[u8],
        params: &GenerateParams,
    ) -> Result<Generated, InferenceError> {
        self.generate_stream(prompt, params, None, |_| true)
    }

    /// Generates a continuation of `prompt`, passing each output byte to `on_byte` as soon as it
    /// is known (`false` stops generation: finish `cancelled`); blocking. With `draft`
    /// (a draft model and its bytes per round) and greedy `params`, decodes speculatively: the
    /// same bytes, [`DecodePath::Speculative`].
    pub fn generate_stream(
        &self,
        prompt: &[u8],
        params: &GenerateParams,
        draft: Option<(&LoadedModel, usize)>,
        mut on_byte: impl FnMut(u8) -> bool,
    ) -> Result<Generated, InferenceError> {
        let draft = draft.filter(|_| params.temperature == 0.0);
        let mut out = Vec::with_capacity(params.max_tokens);
        let batcher = self
            .batchers
            .iter()
            .min_by_key(|b| b.active.load(std::sync::atomic::Ordering::Relaxed));
        if let (Some(batcher), None) = (batcher, draft) {
            let finish = batcher.generate(prompt, params, |b| {
                out.push(b);
                on_byte(b)
            })?;
            return Ok(Generated::new(out, finish, None));
        }
        // A copy of the served model first, then one of the draft: the draft has as many
        // copies, so every holder of a served copy finds a draft copy.
        let lm = self.lm();
        let draft_lm = draft.map(|(d, _)| d.lm());
        let k = draft.map_or(1, |(_, k)| k);
        let (finish, speculation) =
            generate_stream_with_draft(&lm, draft_lm.as_deref(), prompt, params, k, |b| {
                out.push(b);
                on_byte(b)
            })
            .map_err(|e| InferenceError::Model(e.to_string()))?;
        Ok(Generated::new(out, finish, speculation))
    }
}

impl Generated {
    fn new(out: Vec<u8>, finish: Finish, speculation: Option<SpecStats>) -> Self {
        Self {
            tokens: out.len(),
            output: String::from_utf8_lossy(&out).into_owned(),
            finish: serde_json::to_value(finish.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            path: if speculation.is_some() {
                DecodePath::Speculative
            } else {
                DecodePath::Full
            },
            speculation,
        }
    }
}

/// When the draft is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpeculateMode {
    /// For greedy requests whenever it is measured faster than the served model alone (both
    /// paths are timed on live requests, and the slower one is re-timed every
    /// [`RETIME_EVERY`] requests).
    Auto,
    /// For every greedy request.
    Always,
}

impl std::str::FromStr for SpeculateMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "always" => Ok(Self::Always),
            _ => Err(format!("`{s}`: expected `auto` or `always`")),
        }
    }
}

/// In [`SpeculateMode::Auto`], one greedy request in this many takes the path measured slower,
/// so that a change (a new model, a better draft) is noticed.
pub const RETIME_EVERY: u64 = 10;

/// Timed generations a path needs before [`SpeculateMode::Auto`] trusts its speed.
const MIN_TIMINGS: u64 = 3;

/// Generations shorter than this are not timed (their time is mostly the prompt's).
const MIN_TIMED_BYTES: usize = 8;

/// The speed of one path: an exponential moving average of seconds per generated byte.
#[derive(Clone, Copy, Debug, Default)]
struct PathSpeed {
    timings: u64,
    secs_per_byte: f64,
}

impl PathSpeed {
    fn record(&mut self, secs_per_byte: f64) {
        self.secs_per_byte = if self.timings == 0 {
            secs_per_byte
        } else {
            0.8 * self.secs_per_byte + 0.2 * secs_per_byte
        };
        self.timings += 1;
    }
}

#[derive(Debug, Default)]
struct Timings {
    full: PathSpeed,
    speculative: PathSpeed,
    greedy_requests: u64,
}

/// The draft model a node decodes greedy requests with (its own project's current model,
/// swapped when that project accepts a new one), and the choice of path.
pub struct Drafting {
    draft: Current,
    /// Draft bytes per round.
    pub k: usize,
    /// When the draft is used.
    pub mode: SpeculateMode,
    timings: Mutex<Timings>,
}

impl std::fmt::Debug for Drafting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drafting")
            .field("draft", &self.draft.get().root)
            .field("k", &self.k)
            .field("mode", &self.mode)
            .finish()
    }
}

/// What [`Drafting::speeds`] reports: seconds per byte of each path (`None`: not timed yet).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PathSpeeds {
    /// The served model alone.
    pub full_ms_per_byte: Option<f64>,
    /// Speculative decoding.
    pub speculative_ms_per_byte: Option<f64>,
}

impl Drafting {
    /// Drafts with `draft` (checked against the served model's `main` architecture), `k` bytes
    /// per round.
    pub fn new(
        main: &ModelConfig,
        draft_config: &ModelConfig,
        draft: LoadedModel,
        k: usize,
        mode: SpeculateMode,
    ) -> Result<Self, InferenceError> {
        check_draft(main, draft_config).map_err(|e| InferenceError::Model(e.to_string()))?;
        if k == 0 {
            return Err(InferenceError::Other(
                "--draft-tokens must be at least 1".into(),
            ));
        }
        Ok(Self {
            draft: Current::new(draft),
            k,
            mode,
            timings: Mutex::default(),
        })
    }

    /// The draft model now used.
    pub fn draft(&self) -> Arc<LoadedModel> {
        self.draft.get()
    }

    /// The draft model's handle (swapped when the draft project accepts a new model).
    pub fn current(&self) -> &Current {
        &self.draft
    }

    /// The draft to decode a request with `params` (`None`: the served model alone), counting
    /// the request.
    pub fn plan(&self, params: &GenerateParams) -> Option<(Arc<LoadedModel>, usize)> {
        if params.temperature != 0.0 {
            return None;
        }
        let speculate = match self.mode {
            SpeculateMode::Always => true,
            SpeculateMode::Auto => {
                let mut t = self.timings.lock().unwrap_or_else(|p| p.into_inner());
                let n = t.greedy_requests;
                t.greedy_requests += 1;
                if t.speculative.timings < MIN_TIMINGS || t.full.timings < MIN_TIMINGS {
                    // Learn both speeds first, alternating.
                    n.is_multiple_of(2)
                } else {
                    let faster = t.speculative.secs_per_byte <= t.full.secs_per_byte;
                    faster != (n % RETIME_EVERY == RETIME_EVERY - 1)
                }
            }
        };
        speculate.then(|| (self.draft.get(), self.k))
    }

    /// Records how long a generation of `bytes` bytes on `path` took.
    pub fn record(&self, path: DecodePath, bytes: usize, elapsed: std::time::Duration) {
        if bytes < MIN_TIMED_BYTES {
            return;
        }
        let spb = elapsed.as_secs_f64() / bytes as f64;
        let mut t = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        match path {
            DecodePath::Full => t.full.record(spb),
            DecodePath::Speculative => t.speculative.record(spb),
        }
    }

    /// The measured speeds.
    pub fn speeds(&self) -> PathSpeeds {
        let t = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        let ms = |p: PathSpeed| (p.timings > 0).then_some(p.secs_per_byte * 1e3);
        PathSpeeds {
            full_ms_per_byte: ms(t.full),
            speculative_ms_per_byte: ms(t.speculative),
        }
    }
}

/// Splits off the front of `pending` that is text already: complete UTF-8 characters, and
/// invalid sequences (as U+FFFD, the way `String::from_utf8_lossy` writes them). What could still
/// become a character (the start of a multi-byte sequence) stays. The pieces of a byte stream
/// joined are `String::from_utf8_lossy` of the whole, once the rest is flushed with
/// [`flush_text`].
pub fn take_text(pending: &mut Vec<u8>) -> String {
    let mut text = String::new();
    loop {
        match std::str::from_utf8(pending) {
            Ok(s) => {
                text.push_str(s);
                pending.clear();
                return text;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                match e.error_len() {
                    Some(bad) => {
                        text.push_str(&String::from_utf8_lossy(&pending[..valid + bad]));
                        pending.drain(..valid + bad);
                    }
                    None => {
                        text.push_str(&String::from_utf8_lossy(&pending[..valid]));
                        pending.drain(..valid);
                        return text;
                    }
                }
            }
        }
    }
}

/// The rest of a byte stream at its end, as text (an unfinished sequence becomes U+FFFD).
pub fn flush_text(pending: &mut Vec<u8>) -> String {
    let text = String::from_utf8_lossy(pending).into_owned();
    pending.clear();
    text
}

/// Where models come from: the project on chain, its spec, and the shard network.
pub struct ModelSource {
    provider: ChainProvider,
    contracts: Contracts,
    project_id: u64,
    config: ModelConfig,
    spec: TrainingSpec,
    genesis_root: B256,
    store: Store,
    client: ShardClient,
}

impl ModelSource {
    /// Reads project `project_id`'s spec from chain; models are kept under `state_dir/store`.
    pub async fn open(
        provider: ChainProvider,
        contracts: Contracts,
        project_id: u64,
        state_dir: &Path,
    ) -> Result<Self, InferenceError> {
        let project = Project::new(contracts.project, provider.clone())
            .getProject(U256::from(project_id))
            .call()
            .await
            .map_err(|e| InferenceError::Chain(format!("reading project {project_id}: {e}")))?;
        let spec = TrainingSpec::from_chain(&project.modelURI, project.modelSpecHash)
            .map_err(|e| InferenceError::Model(format!("project {project_id}'s spec: {e}")))?;
        let config = spec
            .model_config()
            .map_err(|e| InferenceError::Model(e.to_string()))?;
        let store = Store::open(state_dir.join("store"))
            .map_err(|e| InferenceError::Storage(e.to_string()))?;
        let genesis = spec
            .store_weights(
                &store,
                &spec
                    .genesis()
                    .map_err(|e| InferenceError::Model(e.to_string()))?,
            )
            .map_err(|e| InferenceError::Model(e.to_string()))?;
        let client = ShardClient::new(autonet_storage::FetchConfig::default())
            .map_err(|e| InferenceError::Storage(e.to_string()))?;
        Ok(Self {
            provider,
            contracts,
            project_id,
            config,
            spec,
            genesis_root: B256::from(genesis.root),
            store,
            client,
        })
    }

    /// The project's current model root (the last accepted one).
    pub async fn head(&self) -> Result<B256, InferenceError> {
        Project::new(self.contracts.project, self.provider.clone())
            .modelRoot(U256::from(self.project_id))
            .call()
            .await
            .map_err(|e| InferenceError::Chain(format!("reading the project's model: {e}")))
    }

    /// The architecture of the project's models.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The preset name of the project's spec.
    pub fn preset(&self) -> &str {
        &self.spec.preset
    }

    /// Loads model `root` through [`ModelSources`]: the local store, else the genesis rule, else
    /// its providers (the manifest hash read from chain, every shard checked against the Merkle
    /// root). With `batch_slots` above 0, full-path generations are decoded together, up to that
    /// many at once on each of one copy per core ([`LoadedModel::with_batchers`]).
    pub async fn load(
        &self,
        root: B256,
        batch_slots: usize,
    ) -> Result<LoadedModel, InferenceError> {
        let sources = ModelSources {
            spec: &self.spec,
            genesis_root: self.genesis_root,
            store: &self.store,
            client: &self.client,
            shards: ModelShardRegistry::new(self.contracts.shard_registry, self.provider.clone()),
            providers: ShardProviders::new(self.contracts.shard_providers, self.provider.clone()),
        };
        let weights = sources.weights(root, None).await.map_err(|e| match e {
            ModelError::Read { .. } => InferenceError::Chain(e.to_string()),
            ModelError::NoPeers(_) | ModelError::Storage(_) => {
                InferenceError::Storage(e.to_string())
            }
            ModelError::Spec(_) | ModelError::Decode(_) => InferenceError::Model(e.to_string()),
        })?;
        let lm = || {
            Lm::new(&self.config, &weights, tch::Device::Cpu)
                .map_err(|e| InferenceError::Model(format!("model {root}: {e}")))
        };
        let copies = || {
            (0..default_copies())
                .map(|_| lm())
                .collect::<Result<Vec<_>, _>>()
        };
        let model = LoadedModel::with_copies(root, copies()?);
        Ok(match batch_slots {
            0 => model,
            slots => model.with_batchers(copies()?, slots),
        })
    }

    /// Whether `root` is the project's genesis model.
    pub fn is_genesis(&self, root: B256) -> bool {
        root == self.genesis_root
    }
}

/// The model being served, swapped atomically when a new one is accepted: requests in flight
/// finish on the model they started with.
#[derive(Clone, Debug)]
pub struct Current(Arc<std::sync::RwLock<Arc<LoadedModel>>>);

impl Current {
    /// Starts serving `model`.
    pub fn new(model: LoadedModel) -> Self {
        Self(Arc::new(std::sync::RwLock::new(Arc::new(model))))
    }

    /// The model now served.
    pub fn get(&self) -> Arc<LoadedModel> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves `model` from now on.
    pub fn replace(&self, model: LoadedModel) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(model);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_generations_take_separate_copies_and_agree() {
        let cfg = autonet_ml::ModelConfig::tiny();
        let weights = autonet_ml::init_weights(&cfg, 2).unwrap();
        let copy = || Lm::new(&cfg, &weights, tch::Device::Cpu).unwrap();
        let m = LoadedModel::with_copies(B256::repeat_byte(1), vec![copy(), copy()]);
        assert_eq!(m.copies(), 2);
        let greedy = GenerateParams::greedy(16);
        let alone = m.generate(b"fn", &greedy).unwrap();
        {
            // One copy busy: the other is taken at once (a single copy would wait here forever).
            let _busy = m.lm();
            let b = m.lm();
            drop(b);
            assert_eq!(m.generate(b"fn", &greedy).unwrap(), alone);
        }
        assert_eq!(alone.tokens, 16);
    }

    #[test]
    fn auto_mode_takes_the_faster_path_and_retimes_the_slower_one() {
        let cfg = autonet_ml::ModelConfig::tiny();
        let weights = autonet_ml::init_weights(&cfg, 2).unwrap();
        let lm = Lm::new(&cfg, &weights, tch::Device::Cpu).unwrap();
        let d = Drafting::new(
            &cfg,
            &cfg,
            LoadedModel::new(B256::repeat_byte(2), lm),
            2,
            SpeculateMode::Auto,
        )
        .unwrap();
        let greedy = GenerateParams::greedy(32);
        let ms = std::time::Duration::from_millis;
        // Sampling never drafts.
        let sampled = GenerateParams {
            temperature: 0.5,
            ..greedy.clone()
        };
        assert!(d.plan(&sampled).is_none());
        // Untimed: the two paths alternate until each has MIN_TIMINGS timings.
        let mut chosen = Vec::new();
        for _ in 0..2 * MIN_TIMINGS {
            let speculative = d.plan(&greedy).is_some();
            chosen.push(speculative);
            // Speculation measured 2× slower per byte.
            let (path, t) = if speculative {
                (DecodePath::Speculative, ms(64))
            } else {
                (DecodePath::Full, ms(32))
            };
            d.record(path, 32, t);
        }
        assert_eq!(chosen.iter().filter(|s| **s).count() as u64, MIN_TIMINGS);
        // Too short to time: ignored.
        d.record(DecodePath::Speculative, 2, ms(1));
        let speeds = d.speeds();
        assert!((speeds.full_ms_per_byte.unwrap() - 1.0).abs() < 1e-9);
        assert!((speeds.speculative_ms_per_byte.unwrap() - 2.0).abs() < 1e-9);
        // Then the faster one (the full model), and the slower one once in RETIME_EVERY.
        let drafted = (0..10 * RETIME_EVERY)
            .filter(|_| d.plan(&greedy).is_some())
            .count();
        assert_eq!(drafted as u64, 10);
        // Once speculation is timed faster, it is taken.
        for _ in 0..20 {
            d.record(DecodePath::Speculative, 32, ms(8));
        }
        let drafted = (0..10 * RETIME_EVERY)
            .filter(|_| d.plan(&greedy).is_some())
            .count();
        assert_eq!(drafted as u64, 9 * RETIME_EVERY);
        // `always` drafts every greedy request, and a draft of another vocabulary is refused.
        let lm = Lm::new(&cfg, &weights, tch::Device::Cpu).unwrap();
        let always = Drafting::new(
            &cfg,
            &cfg,
            LoadedModel::new(B256::ZERO, lm),
            2,
            SpeculateMode::Always,
        )
        .unwrap();
        assert!((0..5).all(|_| always.plan(&greedy).is_some()));
        let other = ModelConfig {
            vocab: 128,
            ..cfg.clone()
        };
        let lm = Lm::new(&cfg, &weights, tch::Device::Cpu).unwrap();
        let e = Drafting::new(
            &cfg,
            &other,
            LoadedModel::new(B256::ZERO, lm),
            2,
            SpeculateMode::Auto,
        )
        .unwrap_err();
        assert!(e.to_string().contains("vocabulary"), "{e}");
    }

    #[test]
    fn a_batched_generation_streams_stops_and_is_refused_like_one_alone() {
        let cfg = autonet_ml::ModelConfig::tiny();
        let weights = autonet_ml::init_weights(&cfg, 4).unwrap();
        let copy = || Lm::new(&cfg, &weights, tch::Device::Cpu).unwrap();
        let alone = LoadedModel::new(B256::ZERO, copy());
        let batched = LoadedModel::new(B256::ZERO, copy()).with_batchers(vec![copy()], 2);
        assert!(batched.batched() && !alone.batched());
        let greedy = GenerateParams::greedy(30);
        assert_eq!(
            batched.generate(b"fn", &greedy).unwrap(),
            alone.generate(b"fn", &greedy).unwrap()
        );
        // A reader that stops after 3 bytes cancels the generation.
        let mut seen = Vec::new();
        let g = batched
            .generate_stream(b"fn", &greedy, None, |b| {
                seen.push(b);
                seen.len() < 3
            })
            .unwrap();
        assert_eq!((g.finish.as_str(), g.tokens), ("cancelled", 3));
        assert_eq!(seen.len(), 3);
        // Bad parameters are named.
        let bad = GenerateParams {
            top_k: Some(0),
            ..greedy
        };
        let e = batched.generate(b"fn", &bad).unwrap_err();
        assert!(e.to_string().contains("top_k"), "{e}");
    }

    #[test]
    fn streamed_text_joins_to_the_lossy_text_of_the_whole() {
        let samples: [&[u8]; 4] = [
            "héllo wörld €".as_bytes(),
            b"\xff\xfeab\xe2\x82",
            b"a\xe2\x82\xacb\xc3",
            b"\xf0\x9f\x98\x80\x80x",
        ];
        for bytes in samples {
            let mut pending = Vec::new();
            let mut joined = String::new();
            for &b in bytes {
                pending.push(b);
                joined.push_str(&take_text(&mut pending));
            }
            joined.push_str(&flush_text(&mut pending));
            assert_eq!(joined, String::from_utf8_lossy(bytes), "{bytes:?}");
        }
        // A character is held back until it is complete.
        let mut pending = vec![0xe2, 0x82];
        assert_eq!(take_text(&mut pending), "");
        pending.push(0xac);
        assert_eq!(take_text(&mut pending), "€");
    }
}
