//! Task kinds: what a project's tasks train. A kind decides how a solver makes a contribution
//! from the base state and its data, how a coordinator scores the contributions, how they merge
//! into the next state, and how states and contributions are encoded (their bytes are what the
//! shard store keeps and the chain names by Merkle root). The roles call [`TaskKind`] through
//! the running agent's `Node` port and know nothing else of the kind; the contracts see roots
//! and scores only, so a new kind changes neither.
//!
//! - [`Lm`]: the byte-level language model (libtorch training, held-out loss, robust
//!   aggregation, the outer step).
//! - [`CartridgeKind`]: a WASM module that answers the task-kind protocol
//!   (`autonet_cartridge_sdk::kind`), pinned by hash in the project's spec, run in wasmtime
//!   under fuel, memory and time limits. The world-model substrate is the first.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256, keccak256};
use autonet_cartridge::{Cartridge, Limits, Runtime};
use autonet_cartridge_sdk::kind::{Op, Request, decode_u64s, parse_reply};
use autonet_ml::duplicates::{LOOKBACK_TASKS, originality};
use autonet_ml::train::{evaluate, train};
use autonet_ml::{Attack, TensorSet};
use autonet_storage::{ShardClient, Store};
use tracing::{info, warn};

use crate::agent::{Agent, AgentError};
use crate::db::{SolutionRow, TaskRow};
use crate::roles::ports::{Aggregate, Solution, Vote};
use crate::spec::{CartridgeSpec, Originality, TrainingSpec, scores_from_losses, task_scores};

/// What a task kind does for the roles.
pub trait TaskKind: Sync {
    /// Solver: a contribution for `task` from the state `base_root`, stored in the agent's store.
    fn train(
        &self,
        agent: &Agent,
        task: &TaskRow,
        base_root: B256,
    ) -> impl Future<Output = Result<Solution, AgentError>> + Send;
    /// Coordinator: the scores of the contributions revealed for `task`, evaluated on the
    /// held-out data `eval_hash` and the task's beacon select.
    fn score(
        &self,
        agent: &Agent,
        task: &TaskRow,
        eval_hash: B256,
        revealed: &[Address],
        solutions: &[SolutionRow],
    ) -> impl Future<Output = Result<Vote, AgentError>> + Send;
    /// Aggregator and coordinators: the next state of a finalized task, with `onto` as its
    /// parent (`None`: no solver earned incentive). Every node computes the same bytes.
    fn aggregate(
        &self,
        agent: &Agent,
        task: &TaskRow,
        onto: B256,
    ) -> impl Future<Output = Result<Option<Aggregate>, AgentError>> + Send;
}

/// The kind a project's spec names, ready to run.
pub enum AnyKind {
    /// The byte-level LM.
    Lm(Lm),
    /// A cartridge.
    Cartridge(CartridgeKind),
}

impl AnyKind {
    /// Its name in logs.
    pub fn name(&self) -> &str {
        match self {
            AnyKind::Lm(_) => "lm",
            AnyKind::Cartridge(c) => &c.spec.name,
        }
    }
}

impl TaskKind for AnyKind {
    async fn train(
        &self,
        agent: &Agent,
        task: &TaskRow,
        base_root: B256,
    ) -> Result<Solution, AgentError> {
        match self {
            AnyKind::Lm(k) => k.train(agent, task, base_root).await,
            AnyKind::Cartridge(k) => k.train(agent, task, base_root).await,
        }
    }

    async fn score(
        &self,
        agent: &Agent,
        task: &TaskRow,
        eval_hash: B256,
        revealed: &[Address],
        solutions: &[SolutionRow],
    ) -> Result<Vote, AgentError> {
        match self {
            AnyKind::Lm(k) => k.score(agent, task, eval_hash, revealed, solutions).await,
            AnyKind::Cartridge(k) => k.score(agent, task, eval_hash, revealed, solutions).await,
        }
    }

    async fn aggregate(
        &self,
        agent: &Agent,
        task: &TaskRow,
        onto: B256,
    ) -> Result<Option<Aggregate>, AgentError> {
        match self {
            AnyKind::Lm(k) => k.aggregate(agent, task, onto).await,
            AnyKind::Cartridge(k) => k.aggregate(agent, task, onto).await,
        }
    }
}

/// The salt of `key`'s commitment: random, and anchoring the witness log's head.
fn salt_for(agent: &Agent, key: crate::roles::ActionKey, task: &TaskRow) -> B256 {
    agent
        .witness
        .anchored_salt(task.block, Some(task.task_id), &key.to_string())
}

/// The solution stored as `manifest` (trained since `started`, at `loss`), with its salt.
fn solution_of(
    agent: &Agent,
    task: &TaskRow,
    manifest: &autonet_storage::Manifest,
    loss: f32,
    started: Instant,
) -> Solution {
    Solution {
        delta_root: B256::from(manifest.root),
        manifest_hash: B256::from(manifest.manifest_hash()),
        salt: salt_for(agent, crate::roles::ActionKey::Solve(task.task_id), task),
        train_loss: loss,
        train_secs: started.elapsed().as_secs_f32(),
    }
}

fn aggregate_of(manifest: &autonet_storage::Manifest, parent_root: B256) -> Aggregate {
    Aggregate {
        root: B256::from(manifest.root),
        manifest_hash: B256::from(manifest.manifest_hash()),
        parent_root,
        total_size: manifest.total_size,
        shard_size: manifest.shard_size,
        k: manifest.k,
        m: manifest.m,
    }
}

// ------------------------------------------------------------------------------------- the LM

/// The byte-level language model.
pub struct Lm;

impl TaskKind for Lm {
    async fn train(
        &self,
        agent: &Agent,
        task: &TaskRow,
        base_root: B256,
    ) -> Result<Solution, AgentError> {
        let base = agent.model(base_root).await?;
        let spec = agent.spec.clone();
        let data = agent.data.clone();
        let (index, count) = agent.opts.data_shard;
        let mut params = spec.train_params(U256::from(task.task_id), agent.me);
        let store = agent.store.clone();
        let attack = agent.opts.faults.attack;
        // A Byzantine solver (`--attack`, test networks only) knows the deltas revealed in the
        // project's previous task, as any observer of the chain does.
        let reference: Vec<TensorSet> = match attack {
            Some(a) if a.needs_reference() => revealed_before(agent, task, 1)
                .await?
                .into_iter()
                .filter(|(solver, _)| *solver != agent.me)
                .map(|(_, d)| d)
                .collect(),
            _ => Vec::new(),
        };
        if let Some(a) = attack {
            params.steps = a.train_steps(params.steps);
            warn!(task = task.task_id, attack = %a, known_deltas = reference.len(), "ATTACKING (--attack): this solver sends a crafted delta");
            if matches!(a, Attack::Copier { .. }) && reference.is_empty() {
                return Err(AgentError::Abstain(format!(
                    "attack {a}: no delta of an earlier task to copy yet"
                )));
            }
        }
        info!(
            task = task.task_id,
            steps = params.steps,
            shard = index,
            of = count,
            "training"
        );
        let started = Instant::now();
        let (manifest, loss) = tokio::task::spawn_blocking(move || -> Result<_, AgentError> {
            let cfg = spec.model_config()?;
            let chunks = data.train_shard(index, count);
            let ml = |e: String| AgentError::Ml(e);
            let refs: Vec<&TensorSet> = reference.iter().collect();
            let (delta, train_loss) = match attack {
                // A copier does not train: it sends what it copied.
                Some(a @ Attack::Copier { .. }) => (
                    a.craft(refs[0], &refs, params.seed)
                        .map_err(|e| ml(e.to_string()))?
                        .ok_or_else(|| ml("copier: nothing to copy".into()))?,
                    0.0, // nothing trained (a NaN would not survive the journal's JSON)
                ),
                _ => {
                    let out =
                        train(&cfg, &base, &chunks, &params).map_err(|e| ml(e.to_string()))?;
                    let delta = match attack {
                        None => out.delta,
                        Some(a) => a
                            .craft(&out.delta, &refs, params.seed)
                            .map_err(|e| ml(e.to_string()))?
                            .ok_or_else(|| ml(format!("attack {a} produced no delta")))?,
                    };
                    (delta, out.train_loss)
                }
            };
            let bytes =
                autonet_ml::to_safetensors(&delta).map_err(|e| AgentError::Ml(e.to_string()))?;
            let manifest = store
                .put_with(&bytes, spec.shard_params()?)
                .map_err(|e| AgentError::Storage(e.to_string()))?;
            Ok((manifest, train_loss))
        })
        .await
        .map_err(|e| AgentError::Other(format!("training task: {e}")))??;
        info!(task = task.task_id, train_loss = loss, secs = started.elapsed().as_secs_f32(), delta = %B256::from(manifest.root), "trained");
        Ok(solution_of(agent, task, &manifest, loss, started))
    }

    async fn score(
        &self,
        agent: &Agent,
        task: &TaskRow,
        eval_hash: B256,
        revealed: &[Address],
        solutions: &[SolutionRow],
    ) -> Result<Vote, AgentError> {
        let base = agent.model(agent.base_root(task).await?).await?;
        let mut deltas = Vec::with_capacity(revealed.len());
        for solver in revealed {
            let (root, manifest_hash) = revealed_root(solutions, *solver)?;
            match agent.delta(*solver, root, manifest_hash).await {
                Ok(d) => deltas.push(Some(d)),
                Err(e) => {
                    warn!(task = task.task_id, solver = %solver, error = %e, "delta unavailable: scored 0");
                    deltas.push(None);
                }
            }
        }
        let earlier: Vec<TensorSet> = revealed_before(agent, task, LOOKBACK_TASKS)
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let spec = agent.spec.clone();
        let data = agent.data.clone();
        // The block that closes the solution reveals: nobody knew it while solutions could be
        // committed or revealed.
        let beacon = agent.block_hash(task.sol_reveal_end).await?;
        let eval = spec.eval_spec(eval_hash, beacon);
        let (base_loss, losses, originality) = tokio::task::spawn_blocking(
            move || -> Result<(f32, Vec<f32>, Vec<Originality>), AgentError> {
                let cfg = spec.model_config()?;
                let chunks = data.eval_chunks();
                let base_loss = evaluate(&cfg, &base, &chunks, &eval)
                    .map_err(|e| AgentError::Ml(e.to_string()))?;
                let losses = deltas
                    .iter()
                    .map(|d| {
                        d.as_ref()
                            .and_then(|d| base.add(d).ok())
                            .and_then(|w| evaluate(&cfg, &w, &chunks, &eval).ok())
                            .unwrap_or(f32::INFINITY)
                    })
                    .collect();
                let current: Vec<Option<&TensorSet>> = deltas.iter().map(Option::as_ref).collect();
                let earlier: Vec<&TensorSet> = earlier.iter().collect();
                Ok((base_loss, losses, originality(&current, &earlier)))
            },
        )
        .await
        .map_err(|e| AgentError::Other(format!("evaluation task: {e}")))??;
        let scores = task_scores(
            base_loss,
            &losses,
            agent.spec.scoring_target(),
            &originality,
        );
        for (solver, o) in revealed.iter().zip(&originality) {
            match o {
                Originality::CopiesEarlier => {
                    warn!(task = task.task_id, solver = %solver, "delta copies one revealed in an earlier task: scored 0")
                }
                Originality::Group(g) if revealed[*g as usize] != *solver => {
                    warn!(task = task.task_id, solver = %solver, with = %revealed[*g as usize], "delta duplicates another solver's in this task: they share one contribution")
                }
                Originality::Group(_) => {}
            }
        }
        info!(task = task.task_id, base_loss, ?losses, ?scores, "scored");
        Ok(Vote {
            scores,
            salt: salt_for(agent, crate::roles::ActionKey::Vote(task.task_id), task),
            base_loss,
            losses,
            mints: Vec::new(),
        })
    }

    async fn aggregate(
        &self,
        agent: &Agent,
        task: &TaskRow,
        onto: B256,
    ) -> Result<Option<Aggregate>, AgentError> {
        Ok(agent
            .build_aggregate(task, onto)
            .await?
            .map(|(manifest, parent_root)| aggregate_of(&manifest, parent_root)))
    }
}

/// The root and manifest hash `solver` revealed.
fn revealed_root(solutions: &[SolutionRow], solver: Address) -> Result<(B256, B256), AgentError> {
    solutions
        .iter()
        .find(|s| s.solver == solver)
        .map(|s| (s.delta_root, s.manifest_hash))
        .ok_or_else(|| AgentError::Other(format!("reveal of {solver} not recorded")))
}

/// The deltas revealed in the project's last `tasks` tasks before `task` that this agent can
/// load, with their solvers (the duplicate rule compares a task's deltas against the last
/// [`LOOKBACK_TASKS`]). One it cannot load is left out with a warning.
async fn revealed_before(
    agent: &Agent,
    task: &TaskRow,
    tasks: usize,
) -> Result<Vec<(Address, TensorSet)>, AgentError> {
    let ids = agent.db.task_ids(task.project_id)?;
    let mut out = Vec::new();
    for id in ids
        .into_iter()
        .filter(|id| *id < task.task_id)
        .rev()
        .take(tasks)
    {
        for s in agent.db.solutions(id)? {
            match agent.delta(s.solver, s.delta_root, s.manifest_hash).await {
                Ok(d) => out.push((s.solver, d)),
                Err(e) => {
                    warn!(task = id, solver = %s.solver, error = %e, "earlier delta unavailable: not compared against")
                }
            }
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------ cartridges

/// How long a node waits for a peer to serve a cartridge's module before giving up.
const MODULE_FETCH_PATIENCE: Duration = Duration::from_secs(120);

/// A cartridge task kind: its module loaded (its hash checked against the spec) in a runtime,
/// and the limits of each run.
pub struct CartridgeKind {
    spec: CartridgeSpec,
    runtime: Arc<Runtime>,
    cartridge: Arc<Cartridge>,
    limits: Limits,
}

impl CartridgeKind {
    /// Loads the module the spec pins: from `store`; else from `file` (an operator's copy); else
    /// from `peers`, every shard checked against the spec's root (retried for
    /// [`MODULE_FETCH_PATIENCE`] while the peers start). The bytes are kept in `store`, whose
    /// shard server then serves them to others. A module whose keccak256 differs from the
    /// spec's is refused, wherever it came from.
    pub async fn open(
        spec: &TrainingSpec,
        store: &Store,
        file: Option<&Path>,
        peers: &[String],
    ) -> Result<Self, AgentError> {
        let c = spec
            .cartridge()
            .ok_or_else(|| AgentError::Other("the project's kind is not a cartridge".into()))?
            .clone();
        let bytes = if store.has(&c.module_root.0) {
            store
                .get(&c.module_root.0)
                .map_err(|e| AgentError::Storage(e.to_string()))?
        } else if let Some(file) = file {
            let bytes = std::fs::read(file).map_err(|e| {
                AgentError::Other(format!("reading the cartridge {}: {e}", file.display()))
            })?;
            if keccak256(&bytes) != c.module_hash {
                return Err(AgentError::Other(format!(
                    "the cartridge {} has keccak256 {} but the project's spec pins {}",
                    file.display(),
                    keccak256(&bytes),
                    c.module_hash
                )));
            }
            let m = store
                .put_with(&bytes, spec.shard_params()?)
                .map_err(|e| AgentError::Storage(e.to_string()))?;
            if B256::from(m.root) != c.module_root {
                return Err(AgentError::Other(format!(
                    "the cartridge {} stores as root {} but the project's spec names {}",
                    file.display(),
                    B256::from(m.root),
                    c.module_root
                )));
            }
            bytes
        } else {
            fetch_module(&c, store, peers).await?
        };
        Self::load(c, &bytes)
    }

    /// The kind of `spec` running `bytes` (refused unless their keccak256 is the spec's).
    pub fn load(spec: CartridgeSpec, bytes: &[u8]) -> Result<Self, AgentError> {
        let runtime = Arc::new(
            Runtime::new().map_err(|e| AgentError::Other(format!("cartridge runtime: {e}")))?,
        );
        let cartridge = Cartridge::load(&runtime, bytes, spec.module_hash)
            .map_err(|e| AgentError::Other(format!("cartridge {}: {e}", spec.name)))?;
        info!(kind = %spec.name, module = %spec.module_hash, bytes = bytes.len(), "cartridge loaded");
        Ok(Self {
            spec,
            runtime,
            cartridge: Arc::new(cartridge),
            limits: Limits::default(),
        })
    }

    /// The same kind with other limits per run.
    pub fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    /// Runs one request off the async threads: its payload, or why the run failed (a trap,
    /// fuel, memory or the deadline; or the error the cartridge answered).
    async fn ask(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
        let (rt, c, limits) = (self.runtime.clone(), self.cartridge.clone(), self.limits);
        let run = tokio::task::spawn_blocking(move || c.run(&rt, &request, &limits))
            .await
            .map_err(|e| format!("the cartridge's thread: {e}"))?;
        let out = run.result.map_err(|f| f.to_string())?;
        parse_reply(&out).map(<[u8]>::to_vec)
    }

    /// The project's genesis state (the cartridge's answer to the spec's seed).
    pub async fn genesis(&self, seed: u64) -> Result<Vec<u8>, AgentError> {
        let mut r = Request::new(Op::Genesis);
        r.seed = seed;
        self.ask(r.encode())
            .await
            .map_err(|e| AgentError::Other(format!("the {} genesis: {e}", self.spec.name)))
    }
}

async fn fetch_module(
    c: &CartridgeSpec,
    store: &Store,
    peers: &[String],
) -> Result<Vec<u8>, AgentError> {
    if peers.is_empty() {
        return Err(AgentError::Other(format!(
            "the project's {} cartridge ({}) is not in this node's store: give its file \
             (--cartridge <file>) or a node that holds it (--cartridge-peer <url>)",
            c.name, c.module_hash
        )));
    }
    let client = ShardClient::new(autonet_storage::FetchConfig::default())
        .map_err(|e| AgentError::Storage(e.to_string()))?;
    let started = Instant::now();
    loop {
        match client
            .fetch(c.module_root.0, c.module_manifest.0, peers, store)
            .await
        {
            Ok(f) => {
                if keccak256(&f.bytes) != c.module_hash {
                    return Err(AgentError::Other(format!(
                        "the cartridge fetched as root {} has keccak256 {}, not the spec's {}",
                        c.module_root,
                        keccak256(&f.bytes),
                        c.module_hash
                    )));
                }
                info!(kind = %c.name, peers = ?peers, "cartridge fetched, every shard checked");
                return Ok(f.bytes);
            }
            Err(e) if started.elapsed() < MODULE_FETCH_PATIENCE => {
                warn!(kind = %c.name, error = %e, "fetching the cartridge; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                return Err(AgentError::Storage(format!(
                    "fetching the {} cartridge from {peers:?}: {e}",
                    c.name
                )));
            }
        }
    }
}

/// Turns as the request's byte slices.
fn turn_bytes<'a>(turns: &[&'a str]) -> Vec<&'a [u8]> {
    turns.iter().map(|t| t.as_bytes()).collect()
}

/// What the cartridge's verifier made of one task's contributions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The base state's gap on the held-out turns.
    pub before: u64,
    /// Each contribution's mint and novelty (0 for one the verifier failed on).
    pub mints: Vec<(u64, u64)>,
    /// The contributions the cartridge failed on (its index, and why): a trap, a limit, or an
    /// error it answered.
    pub failures: Vec<(usize, String)>,
}

impl Verdict {
    /// The base "loss", each contribution's "loss" and the scores: mint against the base's gap,
    /// as the LM's gain against its loss ([`scores_from_losses`]): a contribution that removes
    /// `target` of the gap for good earns the whole solver pool; one without mint scores 0.
    pub fn scores(&self, target: f64) -> (f32, Vec<f32>, Vec<u16>) {
        let base = self.before as f32;
        let losses: Vec<f32> = self
            .mints
            .iter()
            .map(|(mint, _)| {
                if *mint > 0 {
                    self.before.saturating_sub(*mint) as f32
                } else {
                    f32::INFINITY
                }
            })
            .collect();
        let scores = scores_from_losses(base, &losses, target);
        (base, losses, scores)
    }
}

impl CartridgeKind {
    /// The verifier on each contribution alone (`None`: unavailable), then the epoch's
    /// reconciliation of the valid ones. A run that fails (a trap, its limits, an error the
    /// cartridge answers) costs at most the run's limits and scores that contribution 0; a
    /// failed reconciliation scores every contribution 0.
    pub async fn verify(&self, base: &[u8], held: &[&str], items: &[Option<Vec<u8>>]) -> Verdict {
        let mut v = Verdict {
            mints: vec![(0, 0); items.len()],
            ..Verdict::default()
        };
        let mut valid = vec![false; items.len()];
        for (i, item) in items.iter().enumerate() {
            let Some(item) = item else { continue };
            let mut r = Request::new(Op::Score);
            r.state = base;
            r.turns = turn_bytes(held);
            r.items = vec![item];
            match self.ask(r.encode()).await.and_then(|b| decode_u64s(&b, 2)) {
                Ok(g) => {
                    v.before = g[0];
                    valid[i] = true;
                }
                Err(e) => v.failures.push((i, e)),
            }
        }
        let kept: Vec<&[u8]> = items
            .iter()
            .zip(&valid)
            .filter(|(_, ok)| **ok)
            .filter_map(|(b, _)| b.as_deref())
            .collect();
        if kept.is_empty() {
            return v;
        }
        let mut r = Request::new(Op::Reconcile);
        r.state = base;
        r.turns = turn_bytes(held);
        r.items = kept.clone();
        match self
            .ask(r.encode())
            .await
            .and_then(|b| decode_u64s(&b, 2 * kept.len()))
        {
            Ok(m) => {
                let mut pairs = m.chunks_exact(2).map(|p| (p[0], p[1]));
                for (i, ok) in valid.iter().enumerate() {
                    if *ok {
                        v.mints[i] = pairs.next().expect("one pair per kept contribution");
                    }
                }
            }
            Err(e) => {
                for (i, ok) in valid.iter().enumerate() {
                    if *ok {
                        v.failures.push((i, format!("the reconciliation: {e}")));
                    }
                }
            }
        }
        v
    }
}

impl TaskKind for CartridgeKind {
    async fn train(
        &self,
        agent: &Agent,
        task: &TaskRow,
        base_root: B256,
    ) -> Result<Solution, AgentError> {
        let base = agent.model_bytes(base_root).await?;
        let (index, count) = agent.opts.data_shard;
        let seed = agent
            .spec
            .train_params(U256::from(task.task_id), agent.me)
            .seed;
        let turns = agent
            .data
            .train_turns(index, count, seed, agent.spec.steps as usize);
        info!(task = task.task_id, kind = %self.spec.name, turns = turns.len(), shard = index, of = count, "contributing");
        let started = Instant::now();
        let mut r = Request::new(Op::Contribute);
        r.seed = seed;
        r.state = &base;
        r.turns = turn_bytes(&turns);
        let contribution = self.ask(r.encode()).await.map_err(|e| {
            AgentError::Ml(format!(
                "the {} cartridge made no contribution: {e}",
                self.spec.name
            ))
        })?;
        let manifest = agent
            .store
            .put_with(&contribution, agent.spec.shard_params()?)
            .map_err(|e| AgentError::Storage(e.to_string()))?;
        info!(task = task.task_id, bytes = contribution.len(), secs = started.elapsed().as_secs_f32(), contribution = %B256::from(manifest.root), "contributed");
        Ok(solution_of(agent, task, &manifest, 0.0, started))
    }

    async fn score(
        &self,
        agent: &Agent,
        task: &TaskRow,
        eval_hash: B256,
        revealed: &[Address],
        solutions: &[SolutionRow],
    ) -> Result<Vote, AgentError> {
        let base = agent.model_bytes(agent.base_root(task).await?).await?;
        let beacon = agent.block_hash(task.sol_reveal_end).await?;
        let seed = agent.spec.eval_spec(eval_hash, beacon).seed;
        let held = agent
            .data
            .eval_turns(seed, agent.spec.eval_windows as usize);
        let mut items: Vec<Option<Vec<u8>>> = Vec::with_capacity(revealed.len());
        for solver in revealed {
            let (root, manifest_hash) = revealed_root(solutions, *solver)?;
            match agent.delta_bytes(*solver, root, manifest_hash).await {
                Ok(b) => items.push(Some(b)),
                Err(e) => {
                    warn!(task = task.task_id, solver = %solver, error = %e, "contribution unavailable: scored 0");
                    items.push(None);
                }
            }
        }
        let verdict = self.verify(&base, &held, &items).await;
        for (i, e) in &verdict.failures {
            warn!(task = task.task_id, solver = %revealed[*i], error = %e, "the cartridge failed on this contribution: scored 0");
        }
        let (base_loss, as_loss, scores) = verdict.scores(agent.spec.scoring_target());
        let (before, mints) = (verdict.before, verdict.mints);
        info!(task = task.task_id, kind = %self.spec.name, gap = before, ?mints, ?scores, "scored");
        Ok(Vote {
            scores,
            salt: salt_for(agent, crate::roles::ActionKey::Vote(task.task_id), task),
            base_loss,
            losses: as_loss,
            mints,
        })
    }

    async fn aggregate(
        &self,
        agent: &Agent,
        task: &TaskRow,
        onto: B256,
    ) -> Result<Option<Aggregate>, AgentError> {
        let paid = agent.paid(task)?;
        if paid.is_empty() {
            return Ok(None);
        }
        let base = agent.model_bytes(onto).await?;
        let mut items = Vec::with_capacity(paid.len());
        for (solver, _, root, manifest_hash) in paid {
            items.push(agent.delta_bytes(solver, root, manifest_hash).await?);
        }
        let mut r = Request::new(Op::Merge);
        r.state = &base;
        r.items = items.iter().map(Vec::as_slice).collect();
        let next = self
            .ask(r.encode())
            .await
            .map_err(|e| AgentError::Ml(format!("the {} merge: {e}", self.spec.name)))?;
        let manifest = agent
            .store
            .put_with(&next, agent.spec.shard_params()?)
            .map_err(|e| AgentError::Storage(e.to_string()))?;
        Ok(Some(aggregate_of(&manifest, onto)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module that answers genesis with the empty state, loops forever on a score, and traps
    /// on anything else.
    const HOSTILE: &str = r#"(module
      (memory (export "memory") 1)
      (data (i32.const 0) "\00\00\00\00\00")
      (func (export "autonet_alloc") (param i32) (result i32) i32.const 1024)
      (func (export "autonet_run") (param $p i32) (param $l i32) (result i64)
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 0)) (then (return (i64.const 5))))
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 2)) (then (loop $spin (br $spin))))
        unreachable))"#;

    fn spec_of(bytes: &[u8]) -> CartridgeSpec {
        CartridgeSpec {
            name: "hostile".into(),
            module_hash: keccak256(bytes),
            module_root: B256::ZERO,
            module_manifest: B256::ZERO,
            turns: 10,
        }
    }

    #[tokio::test]
    async fn a_cartridge_that_loops_or_traps_costs_its_limits_and_scores_zero() {
        let kind = CartridgeKind::load(spec_of(HOSTILE.as_bytes()), HOSTILE.as_bytes())
            .unwrap()
            .with_limits(Limits {
                fuel: 20_000_000,
                ..Limits::default()
            });
        assert_eq!(kind.genesis(1).await.unwrap(), [0, 0, 0, 0]);
        let items = vec![Some(b"a".to_vec()), None, Some(b"b".to_vec())];
        let started = Instant::now();
        let v = kind.verify(&[0; 4], &["turn"], &items).await;
        let took = started.elapsed();
        assert_eq!(v.mints, [(0, 0); 3]);
        let failed: Vec<usize> = v.failures.iter().map(|(i, _)| *i).collect();
        assert_eq!(failed, [0, 2], "{:?}", v.failures);
        assert!(v.failures[0].1.contains("out of fuel"), "{:?}", v.failures);
        // Two runs, each stopped by its fuel (or at worst its 1 s deadline).
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(v.scores(0.25).2, [0, 0, 0]);
        // The contribution path traps: an error naming it, not a panic.
        let mut r = Request::new(Op::Merge);
        r.state = &[0; 4];
        assert!(kind.ask(r.encode()).await.unwrap_err().contains("trap"));
    }

    #[tokio::test]
    async fn a_module_whose_hash_differs_from_the_specs_is_refused_wherever_it_comes_from() {
        let dir = std::env::temp_dir().join(format!("autonet-kind-{}", std::process::id()));
        let store = Store::open(dir.join("store")).unwrap();
        let module = HOSTILE.as_bytes();
        let manifest = store.put(module).unwrap();
        let mut spec = TrainingSpec::for_cartridge("hostile", module, &manifest, 10, 2, 2);
        // From the store: loads.
        let kind = CartridgeKind::open(&spec, &store, None, &[]).await.unwrap();
        assert_eq!(kind.genesis(0).await.unwrap(), [0, 0, 0, 0]);
        // A file whose bytes are not the pinned module: refused, naming both hashes.
        let other = Store::open(dir.join("empty")).unwrap();
        let file = dir.join("other.wat");
        std::fs::write(&file, b"(module)").unwrap();
        let e = CartridgeKind::open(&spec, &other, Some(&file), &[])
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&keccak256(b"(module)").to_string()), "{e}");
        assert!(e.contains(&keccak256(module).to_string()), "{e}");
        // Nowhere to get it from: says what to give.
        let e = CartridgeKind::open(&spec, &other, None, &[])
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--cartridge"), "{e}");
        // The right bytes with the wrong pin: refused by the runtime too.
        if let crate::spec::Kind::Cartridge(c) = &mut spec.kind {
            c.module_hash = B256::repeat_byte(7);
        }
        assert!(CartridgeKind::open(&spec, &store, None, &[]).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn scores_follow_mint_against_the_base_gap() {
        let v = Verdict {
            before: 1000,
            mints: vec![(250, 400), (100, 100), (0, 50)],
            failures: Vec::new(),
        };
        let (base, losses, scores) = v.scores(0.25);
        assert_eq!(base, 1000.0);
        assert_eq!(losses[..2], [750.0, 900.0]);
        assert!(losses[2].is_infinite());
        assert_eq!(scores, [65535, 26214, 0]);
    }
}
