//! One running agent: its chain handles, database, stores and the operations every role shares
//! (sending a recorded action, loading models and deltas, building the aggregate).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use autonet_bindings::{
    BlsSignerRegistry, Contracts, ModelShardRegistry, Project, ShardProviders, TaskManager,
};
use autonet_chain::{ChainProvider, Confirmed, TxError, TxOptions, send_and_confirm};
use autonet_ml::aggregate::{Contribution, aggregate, apply_stale};
use autonet_ml::{ModelState, TensorSet, from_safetensors};
use autonet_spec::{ModelError, ModelSources, model_peers};
use autonet_storage::{Manifest, ShardClient, Store};
use tracing::info;

use crate::db::{AgentDb, DbError, TaskRow};
use crate::spec::{Dataset, TrainingSpec};

/// The role an agent plays (its stake's role on chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Proposes tasks and reveals their evaluation.
    Proposer,
    /// Trains deltas.
    Solver,
    /// Scores deltas, attests aggregates.
    Coordinator,
    /// Publishes aggregates.
    Aggregator,
}

impl Role {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Proposer => "proposer",
            Role::Solver => "solver",
            Role::Coordinator => "coordinator",
            Role::Aggregator => "aggregator",
        }
    }

    /// The on-chain role.
    pub fn on_chain(self) -> autonet_bindings::staking::IParticipantStaking::Role {
        use autonet_bindings::staking::IParticipantStaking::Role as R;
        match self {
            Role::Proposer => R::PROPOSER,
            Role::Solver => R::SOLVER,
            Role::Coordinator => R::COORDINATOR,
            Role::Aggregator => R::AGGREGATOR,
        }
    }

    /// Whether the role serves shards (and so registers as a provider).
    pub fn serves_shards(self) -> bool {
        !matches!(self, Role::Proposer)
    }
}

/// Behaviours injected on purpose by the end-to-end tests (never on in production).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Proposer: never reveal the ground truth.
    pub skip_gt_reveal: bool,
    /// Solver: commit but never reveal.
    pub skip_solution_reveal: bool,
    /// Shard server: flip a byte of every shard served.
    pub corrupt_shards: bool,
    /// Solver: a Byzantine solver sending crafted deltas (`autonet run --attack`, test networks).
    pub attack: Option<autonet_ml::Attack>,
}

/// Everything an agent is configured with.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The role.
    pub role: Role,
    /// The project worked on.
    pub project_id: u64,
    /// Where the database and the shard store live.
    pub state_dir: PathBuf,
    /// Shard server bind address (solver, coordinator, aggregator).
    pub listen: std::net::SocketAddr,
    /// The URL announced on chain (default `http://<bound address>`).
    pub public_url: Option<String>,
    /// Solver's data shard `(index, count)`.
    pub data_shard: (usize, usize),
    /// Proposer: stop proposing after this many tasks (None: forever).
    pub max_tasks: Option<u64>,
    /// Proposer: reward of each task (wei ATN).
    pub reward: U256,
    /// Blocks an action of this agent must be deep before it counts as done (the reorg depth the
    /// operator expects).
    pub confirmations: u64,
    /// First block scanned on a fresh database.
    pub from_block: u64,
    /// Pause between ticks.
    pub poll: Duration,
    /// Workspace whose `Cargo.lock` names the reference corpus.
    pub workspace: PathBuf,
    /// A cartridge kind: a local copy of the module the project's spec pins (checked against
    /// its hash), used when the store lacks it.
    pub cartridge: Option<PathBuf>,
    /// A cartridge kind: shard servers to fetch the module from when neither the store nor
    /// [`Self::cartridge`] has it.
    pub cartridge_peers: Vec<String>,
    /// Intra-op threads of libtorch.
    pub threads: i32,
    /// Fault injection (tests).
    pub faults: Faults,
    /// The code-integrity check.
    pub integrity: crate::integrity::IntegrityPolicy,
    /// Coordinator: blocks after a model's publication during which it waits for the
    /// aggregator's BLS aggregate before attesting alone.
    pub bls_grace_blocks: u64,
}

/// Errors of an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Spec / dataset / genesis.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// A transaction.
    #[error("{action}: {source}")]
    Tx {
        /// What was being done.
        action: String,
        /// Why it failed (boxed: it is large).
        source: Box<TxError>,
    },
    /// A read.
    #[error("reading {what}: {source}")]
    Read {
        /// What was read.
        what: String,
        /// Why it failed (boxed: it is large).
        source: Box<alloy::contract::Error>,
    },
    /// RPC.
    #[error("rpc: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    /// Storage.
    #[error("storage: {0}")]
    Storage(String),
    /// ML.
    #[error("ml: {0}")]
    Ml(String),
    /// The code-integrity check refused this node.
    #[error("{0}")]
    Integrity(String),
    /// The agent decided not to take part in this task (said why); not a failure.
    #[error("abstaining: {0}")]
    Abstain(String),
    /// Anything else, with what to do.
    #[error("{0}")]
    Other(String),
}

impl From<ModelError> for AgentError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Read { what, source } => AgentError::Read { what, source },
            ModelError::NoPeers(_) => AgentError::Storage(e.to_string()),
            ModelError::Storage(m) => AgentError::Storage(m),
            ModelError::Spec(e) => AgentError::Spec(e),
            ModelError::Decode(m) => AgentError::Ml(m),
        }
    }
}

impl AgentError {
    pub(crate) fn read(what: impl Into<String>) -> impl FnOnce(alloy::contract::Error) -> Self {
        let what = what.into();
        move |source| AgentError::Read {
            what,
            source: Box::new(source),
        }
    }
}

/// A running agent's shared state.
pub struct Agent {
    /// Options.
    pub opts: AgentOptions,
    /// Signing provider.
    pub provider: ChainProvider,
    /// Contract addresses.
    pub contracts: Contracts,
    /// This agent's account.
    pub me: Address,
    /// Database.
    pub db: Arc<AgentDb>,
    /// Local content-addressed store (models and deltas).
    pub store: Store,
    /// Fetches from peers.
    pub client: ShardClient,
    /// The project's spec.
    pub spec: TrainingSpec,
    /// The dataset.
    pub data: Arc<Dataset>,
    /// The project's task kind.
    pub kind: crate::kind::AnyKind,
    /// The witness log.
    pub witness: Arc<crate::witness::Witness>,
    /// This agent's ERC-8004 identity, once registered.
    identity: Mutex<Option<U256>>,
    /// Genesis model root.
    pub genesis_root: B256,
    /// Transaction options.
    pub tx: TxOptions,
    /// Coordinator: its BLS signer (set once its key is registered).
    pub bls: Option<crate::bls::Signer>,
    /// Aggregator: the coordinators' BLS signatures collected so far.
    pub bls_collector: crate::bls::Collector,
    /// Whether the last integrity check allowed new work (reveals of earlier commitments go on
    /// regardless: skipping them would only get this account slashed).
    accepting: AtomicBool,
    /// What the agent said once about why it cannot take new work.
    pub notices: crate::roles::Notices,
    models: Mutex<HashMap<B256, Arc<TensorSet>>>,
    bases: Mutex<HashMap<u64, B256>>,
}

impl Agent {
    /// Assembles an agent (see [`crate::run`] for the checks done before).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        opts: AgentOptions,
        provider: ChainProvider,
        contracts: Contracts,
        me: Address,
        db: Arc<AgentDb>,
        store: Store,
        spec: TrainingSpec,
        data: Arc<Dataset>,
        kind: crate::kind::AnyKind,
        witness: Arc<crate::witness::Witness>,
        genesis_root: B256,
    ) -> Result<Self, AgentError> {
        let client = ShardClient::new(autonet_storage::FetchConfig::default())
            .map_err(|e| AgentError::Storage(e.to_string()))?;
        Ok(Self {
            opts,
            provider,
            contracts,
            me,
            db,
            store,
            client,
            spec,
            data,
            kind,
            witness,
            identity: Mutex::new(None),
            genesis_root,
            tx: TxOptions::default().with_timeout(Duration::from_secs(120)),
            bls: None,
            bls_collector: crate::bls::Collector::default(),
            accepting: AtomicBool::new(true),
            notices: crate::roles::Notices::default(),
            models: Mutex::new(HashMap::new()),
            bases: Mutex::new(HashMap::new()),
        })
    }

    /// This agent's ERC-8004 identity, once registered.
    pub fn identity_id(&self) -> Option<U256> {
        *self.identity.lock().expect("identity lock")
    }

    /// Records this agent's ERC-8004 identity.
    pub fn set_identity_id(&self, id: U256) {
        *self.identity.lock().expect("identity lock") = Some(id);
    }

    /// The project id as a U256.
    pub fn project(&self) -> U256 {
        U256::from(self.opts.project_id)
    }

    /// TaskManager handle.
    pub fn tasks(&self) -> TaskManager::TaskManagerInstance<ChainProvider> {
        TaskManager::new(self.contracts.task_manager, self.provider.clone())
    }

    /// Project handle.
    pub fn projects(&self) -> Project::ProjectInstance<ChainProvider> {
        Project::new(self.contracts.project, self.provider.clone())
    }

    /// ModelShardRegistry handle (published models and their attestations).
    pub fn shards(&self) -> ModelShardRegistry::ModelShardRegistryInstance<ChainProvider> {
        ModelShardRegistry::new(self.contracts.shard_registry, self.provider.clone())
    }

    /// ShardProviders handle (storage providers, their endpoints and shard announcements).
    pub fn providers(&self) -> ShardProviders::ShardProvidersInstance<ChainProvider> {
        ShardProviders::new(self.contracts.shard_providers, self.provider.clone())
    }

    /// BlsSignerRegistry handle (coordinators' BLS keys and the running aggregate).
    pub fn bls_signers(&self) -> BlsSignerRegistry::BlsSignerRegistryInstance<ChainProvider> {
        BlsSignerRegistry::new(self.contracts.bls_signers, self.provider.clone())
    }

    /// The record of `root` in `ModelShardRegistry` (its current publication: manifest, publisher,
    /// status, publication block, expiry).
    pub async fn model_record(
        &self,
        root: B256,
    ) -> Result<autonet_bindings::shards::IModelShardRegistry::Model, AgentError> {
        self.shards()
            .getModel(root)
            .call()
            .await
            .map_err(AgentError::read(format!("model {root}")))
    }

    /// The `ModelStatus` of `root` in `ModelShardRegistry`.
    pub async fn model_status(
        &self,
        root: B256,
    ) -> Result<autonet_bindings::enums::ModelStatus, AgentError> {
        let raw = self
            .shards()
            .modelStatus(root)
            .call()
            .await
            .map_err(AgentError::read("model status"))?;
        autonet_bindings::enums::ModelStatus::from_u8(raw).ok_or_else(|| {
            AgentError::Other(format!(
                "ModelShardRegistry returned model status {raw} for {root}, unknown to this build"
            ))
        })
    }

    /// Whether the agent may start new work (propose, commit, vote, publish, attest).
    pub fn takes_new_work(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    /// Records the outcome of an integrity re-check; returns whether it changed.
    pub fn set_takes_new_work(&self, accepting: bool) -> bool {
        self.accepting.swap(accepting, Ordering::Relaxed) != accepting
    }

    /// The latest block number.
    pub async fn head(&self) -> Result<u64, AgentError> {
        Ok(self.provider.get_block_number().await?)
    }

    /// The hash of block `number` (which must exist).
    pub async fn block_hash(&self, number: u64) -> Result<B256, AgentError> {
        let block = self
            .provider
            .get_block_by_number(number.into())
            .await?
            .ok_or_else(|| AgentError::Other(format!("block {number} not found")))?;
        Ok(block.header.hash)
    }

    // ------------------------------------------------------------------ transactions

    /// Sends `call` and waits for event `E`; `what` names the action in logs and errors.
    pub async fn send<E, P, D>(
        &self,
        what: &str,
        call: &alloy::contract::CallBuilder<P, D>,
    ) -> Result<Confirmed<E>, AgentError>
    where
        E: SolEvent,
        P: Provider + Clone,
        D: alloy::contract::CallDecoder + Clone,
    {
        let confirmed = send_and_confirm::<E, _, _>(call, &self.tx)
            .await
            .map_err(|source| AgentError::Tx {
                action: what.to_string(),
                source: Box::new(source),
            })?;
        info!(
            action = what,
            tx = %confirmed.receipt.transaction_hash,
            block = confirmed.receipt.block_number.unwrap_or_default(),
            gas = confirmed.receipt.gas_used,
            "confirmed"
        );
        Ok(confirmed)
    }

    // ------------------------------------------------------------------ models

    /// The model a task trains from: the project's model root at the proposal block.
    pub async fn base_root(&self, task: &TaskRow) -> Result<B256, AgentError> {
        if let Some(root) = self.bases.lock().expect("bases lock").get(&task.task_id) {
            return Ok(*root);
        }
        let root = self
            .projects()
            .modelRoot(U256::from(task.project_id))
            .block(BlockId::number(task.block))
            .call()
            .await
            .map_err(AgentError::read(format!(
                "the model root of project {} at block {}",
                task.project_id, task.block
            )))?;
        self.bases
            .lock()
            .expect("bases lock")
            .insert(task.task_id, root);
        Ok(root)
    }

    /// The shard servers that announced shards of `root`.
    pub async fn peers_of(&self, root: B256) -> Result<Vec<String>, AgentError> {
        Ok(model_peers(&self.providers(), root).await?)
    }

    /// Where the project's models come from (this agent's store, the genesis rule, the chain).
    pub fn sources(&self) -> ModelSources<'_, ChainProvider> {
        ModelSources {
            spec: &self.spec,
            genesis_root: self.genesis_root,
            store: &self.store,
            client: &self.client,
            shards: self.shards(),
            providers: self.providers(),
        }
    }

    /// Loads the model `root`: from memory, else through [`Self::sources`] (the local store, the
    /// genesis rule or its providers, every shard verified against the chain; the manifest hash
    /// recorded from the chain's events when known).
    pub async fn model(&self, root: B256) -> Result<Arc<TensorSet>, AgentError> {
        if let Some(m) = self.models.lock().expect("models lock").get(&root) {
            return Ok(m.clone());
        }
        let manifest_hash = self.db.manifest_hash(root)?;
        let weights = Arc::new(self.sources().weights(root, manifest_hash).await?);
        self.models
            .lock()
            .expect("models lock")
            .insert(root, weights.clone());
        Ok(weights)
    }

    /// The bytes of state `root` (a model, or a cartridge kind's state), loaded through
    /// [`Self::sources`], every shard verified.
    pub async fn model_bytes(&self, root: B256) -> Result<Vec<u8>, AgentError> {
        let manifest_hash = self.db.manifest_hash(root)?;
        Ok(self.sources().bytes(root, manifest_hash).await?)
    }

    /// Model `root` with the outer momentum buffer it carries (what the next outer step
    /// continues from); loaded like [`Self::model`], not kept in memory.
    pub async fn model_state(&self, root: B256) -> Result<ModelState, AgentError> {
        let manifest_hash = self.db.manifest_hash(root)?;
        Ok(self.sources().state(root, manifest_hash).await?)
    }

    /// Loads `solver`'s delta committed as `root` with the manifest hashing to `manifest_hash`,
    /// from the local store or the solver's server (every shard and the manifest checked).
    pub async fn delta(
        &self,
        solver: Address,
        root: B256,
        manifest_hash: B256,
    ) -> Result<TensorSet, AgentError> {
        let bytes = self.delta_bytes(solver, root, manifest_hash).await?;
        from_safetensors(&bytes).map_err(|e| AgentError::Ml(format!("delta of {solver}: {e}")))
    }

    /// The bytes `solver` committed as `root` (a delta, or a cartridge kind's contribution),
    /// from the local store or the solver's server (every shard and the manifest checked).
    pub async fn delta_bytes(
        &self,
        solver: Address,
        root: B256,
        manifest_hash: B256,
    ) -> Result<Vec<u8>, AgentError> {
        Ok(if self.store.has(&root.0) {
            self.store
                .get(&root.0)
                .map_err(|e| AgentError::Storage(e.to_string()))?
        } else {
            let endpoint = self
                .providers()
                .endpointOf(solver)
                .call()
                .await
                .map_err(AgentError::read(format!("endpoint of solver {solver}")))?;
            if endpoint.is_empty() {
                return Err(AgentError::Storage(format!(
                    "solver {solver} announced no shard endpoint"
                )));
            }
            self.client
                .fetch(root.0, manifest_hash.0, &[endpoint], &self.store)
                .await
                .map_err(|e| AgentError::Storage(format!("fetching the delta of {solver}: {e}")))?
                .bytes
        })
    }

    /// The solutions of a finalized task that consensus paid (incentive above 0), with their
    /// incentives, in the order the database records them.
    pub fn paid(&self, task: &TaskRow) -> Result<Vec<(Address, U256, B256, B256)>, AgentError> {
        let solutions = self.db.solutions(task.task_id)?;
        self.db
            .incentives(task.task_id)?
            .into_iter()
            .filter(|(_, inc, _)| !inc.is_zero())
            .map(|(solver, inc, _)| {
                let s = solutions
                    .iter()
                    .find(|s| s.solver == solver)
                    .ok_or_else(|| {
                        AgentError::Other(format!(
                            "no revealed solution recorded for rewarded solver {solver}"
                        ))
                    })?;
                Ok((solver, inc, s.delta_root, s.manifest_hash))
            })
            .collect()
    }

    /// The next model of a finalized task, with `onto` as its parent: the robust aggregate of
    /// the accepted deltas weighted by consensus incentive, turned into a model by the spec's
    /// outer rule ([`autonet_ml::Outer`]). `Average`: the task's base plus the aggregate or,
    /// with pipelined rounds, that applied to `onto`, the model built on the task's base
    /// (`autonet_ml::apply_stale`). Nesterov: one outer step from `onto`'s weights and momentum
    /// buffer (`onto` is the base itself unless rounds are pipelined), the new buffer published
    /// inside the model. Encoded into the local store.
    /// `None` when no solver earned incentive. Aggregator and coordinators compute it
    /// independently and get the same bytes (the aggregation is deterministic).
    pub async fn build_aggregate(
        &self,
        task: &TaskRow,
        onto: B256,
    ) -> Result<Option<(Manifest, B256)>, AgentError> {
        let paid = self.paid(task)?;
        if paid.is_empty() {
            return Ok(None);
        }
        let base_root = self.base_root(task).await?;
        let base = self.model(base_root).await?;
        // Pipelined rounds: applied to the model the round before built on this task's base.
        let newer = if onto == base_root {
            None
        } else {
            Some(self.model(onto).await?)
        };
        let outer = self.spec.outer;
        let parent = if outer.is_average() {
            None
        } else {
            Some(self.model_state(onto).await?)
        };
        let mut deltas = Vec::with_capacity(paid.len());
        for (solver, incentive, root, manifest_hash) in paid {
            let weight = u64::try_from(incentive)
                .map_err(|_| AgentError::Other(format!("incentive {incentive} out of range")))?;
            deltas.push((self.delta(solver, root, manifest_hash).await?, weight));
        }
        let spec = self.spec.clone();
        let store = self.store.clone();
        let manifest = tokio::task::spawn_blocking(move || -> Result<Manifest, AgentError> {
            // Every node computes the model in one floating-point mode, flush-to-zero and
            // denormals-are-zero (training's): this pooled thread may or may not have trained
            // before, and a subnormal value would otherwise give another root.
            autonet_ml::fpenv::flush_denormals();
            let inputs: Vec<Contribution<'_>> = deltas
                .iter()
                .map(|(delta, weight)| Contribution {
                    delta,
                    weight: *weight,
                })
                .collect();
            let merged =
                aggregate(spec.aggregate, &inputs).map_err(|e| AgentError::Ml(e.to_string()))?;
            let next = match (&parent, &newer) {
                (Some(parent), _) => outer
                    .next_state(parent, &merged)
                    .map_err(|e| AgentError::Ml(e.to_string()))?,
                (None, None) => ModelState::weights_only(
                    base.add(&merged)
                        .map_err(|e| AgentError::Ml(e.to_string()))?,
                ),
                (None, Some(onto)) => ModelState::weights_only(
                    apply_stale(onto, &base, &merged).map_err(|e| AgentError::Ml(e.to_string()))?,
                ),
            };
            Ok(spec.store_state(&store, &next)?)
        })
        .await
        .map_err(|e| AgentError::Other(format!("aggregation task: {e}")))??;
        Ok(Some((manifest, onto)))
    }

    /// Announces every shard of `root` held here (registering first if needed).
    pub async fn announce(&self, root: B256, shard_count: usize) -> Result<(), AgentError> {
        let full = (U256::from(1) << shard_count) - U256::from(1);
        let held = self
            .providers()
            .shardsOf(root, self.me)
            .call()
            .await
            .map_err(AgentError::read("announced shards"))?;
        if held == full {
            return Ok(());
        }
        self.send::<ShardProviders::ShardsAnnounced, _, _>(
            &format!("announce shards of {root}"),
            &self.providers().announceShards(root, full),
        )
        .await?;
        Ok(())
    }
}
