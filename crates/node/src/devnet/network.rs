//! A whole local network: anvil, the contracts, a funded project on the reference corpus, a
//! faucet ([`super::faucet`]) and one OS process per role agent, each with its own key and state
//! directory. Every agent goes through `autonet join` ([`crate::commands::join`]): the network
//! prepares it in-process with the very arguments it then launches it with (`autonet … join …
//! --faucet <URL>`: keyed, funded from the faucet, staked, registered), and the launched process
//! re-runs join — a no-op up to its integrity check — before it starts the agent. `autonet
//! devnet` and the end-to-end tests both start the network through this module.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::consensus::Transaction as _;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use autonet_agents::spec::{Dataset, TrainingSpec};
use autonet_bindings::{ATNToken, Contracts, Deployment, ModelShardRegistry, Rewards, TaskManager};
use autonet_chain::{ChainProvider, ProviderConfig, connect};
use autonet_storage::Store;

use crate::commands::join::{self, Progress};
use crate::commands::project::{CreateArgs, DEFAULT_SPLIT, approve_proposer, create, fund};
use crate::commands::staking::RoleArg;
use crate::commands::{CommandError, Context, Report};
use crate::config::{ContractsSource, EffectiveConfig};

/// anvil's first development key (the deployer; holds the initial ATN supply). Local chains only.
pub const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// How to start a network.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Repository checkout (forge/anvil in node_modules/.bin, script/Deploy.s.sol).
    pub repo: PathBuf,
    /// Root of the state directories (one per agent, plus anvil's log).
    pub dir: PathBuf,
    /// The `autonet` binary that runs the agents.
    pub agent_bin: PathBuf,
    /// The training spec of the project.
    pub spec: TrainingSpec,
    /// Solvers (each trains on its own data shard).
    pub solvers: usize,
    /// Coordinators.
    pub coordinators: usize,
    /// Window lengths in blocks: commit, gt reveal, sol reveal, vote commit, vote reveal, publish.
    pub windows: [u32; 6],
    /// Revealed votes a task needs.
    pub min_votes: u8,
    /// The project's maxStaleness (1: pipelined rounds).
    pub max_staleness: u8,
    /// Tasks the proposer proposes.
    pub rounds: u64,
    /// Seconds per block once the agents run.
    pub block_time: u64,
    /// Chain id of the anvil.
    pub chain_id: u64,
    /// Reward of a task in ATN (whole tokens).
    pub reward_atn: u64,
    /// Extra arguments per agent name (e.g. `solver-2` → `--fault skip-solution-reveal`).
    pub extra_args: BTreeMap<String, Vec<String>>,
    /// The code hash governance approves before any agent starts (`None`: this build's
    /// fingerprint, so the agents pass their integrity check).
    pub code_hash: Option<B256>,
    /// Start the agents at the end of [`Network::launch`] (otherwise [`Network::start`] them).
    pub start_agents: bool,
    /// Run every agent in its own network namespace with its own address
    /// ([`super::netns`]; needs root), anvil on the namespaces' bridge.
    pub netns: bool,
    /// A second, smaller project on the same corpus whose model the inference node drafts with
    /// (speculative decoding); its agents (`draft-…`) are staked at launch and started by
    /// [`Network::start_draft`].
    pub draft: Option<DraftProject>,
    /// A project of a cartridge task kind (`--task-kind substrate`): its agents (`world-…`)
    /// are staked at launch and started by [`Network::start_world`] after the main (and draft)
    /// rounds.
    pub world: Option<WorldProject>,
}

/// The cartridge-kind project of a network.
#[derive(Debug, Clone)]
pub struct WorldProject {
    /// Its spec (pins the module).
    pub spec: TrainingSpec,
    /// The module's file (given to the project's aggregator; the others fetch it from there).
    pub module: PathBuf,
    /// Its rounds.
    pub rounds: u64,
    /// Its windows.
    pub windows: [u32; 6],
    /// Solvers contributing.
    pub solvers: usize,
    /// Coordinators scoring it (the main project's accounts).
    pub coordinators: usize,
}

/// The draft project of a network.
#[derive(Debug, Clone)]
pub struct DraftProject {
    /// Its spec (a smaller preset over the same corpus bytes).
    pub spec: TrainingSpec,
    /// Its rounds.
    pub rounds: u64,
    /// Its windows.
    pub windows: [u32; 6],
    /// Solvers, and coordinators, training it.
    pub solvers: usize,
    /// Coordinators scoring it.
    pub coordinators: usize,
}

/// A project to create and the agents that train it.
struct ProjectPlan {
    prefix: &'static str,
    spec: TrainingSpec,
    genesis: B256,
    dataset_root: B256,
    windows: [u32; 6],
    min_votes: u8,
    max_staleness: u8,
    rounds: u64,
    solvers: usize,
    coordinators: usize,
}

/// The global evaluation loss of `weights`, a model of `spec`, on `data`'s held-out chunks.
pub fn eval_loss_for(
    spec: &TrainingSpec,
    data: &Dataset,
    weights: &autonet_ml::TensorSet,
) -> Result<f32, NetworkError> {
    autonet_ml::train::evaluate(
        &spec.model_config().map_err(other)?,
        weights,
        &data.eval_chunks(),
        &spec.global_eval_spec(),
    )
    .map_err(other)
}

/// Name prefix of the draft project's agents.
pub const DRAFT_PREFIX: &str = "draft-";

/// Name prefix of the cartridge-kind project's agents.
pub const WORLD_PREFIX: &str = "world-";

/// Why the network could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A command failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Something else, said plainly.
    #[error("{0}")]
    Other(String),
}

fn other(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Other(e.to_string())
}

/// One agent process.
#[derive(Debug)]
pub struct AgentProcess {
    /// Name (`proposer`, `solver-1`, ...).
    pub name: String,
    /// Staked role (`None`: the unstaked inference node).
    pub role: Option<RoleArg>,
    /// Its key.
    pub key: PrivateKeySigner,
    /// Its state directory.
    pub state_dir: PathBuf,
    /// Its command-line arguments after `autonet`.
    pub args: Vec<String>,
    /// The network namespace it runs in (`--netns`).
    pub netns: Option<String>,
    /// The running process.
    pub child: Option<Child>,
}

impl AgentProcess {
    /// The agent's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }
}

/// A running network.
pub struct Network {
    /// Options it was started with.
    pub opts: NetworkOptions,
    anvil: Child,
    /// JSON-RPC URL.
    pub rpc_url: String,
    /// Contract addresses.
    pub contracts: Contracts,
    /// Read-only provider.
    pub provider: ChainProvider,
    /// The project.
    pub project_id: u64,
    /// Block at which the agents started.
    pub start_block: u64,
    /// The agents by name.
    pub agents: BTreeMap<String, AgentProcess>,
    /// Root of the genesis model.
    pub genesis_root: B256,
    /// The draft project ([`NetworkOptions::draft`]), once created.
    pub draft_project: Option<u64>,
    /// The cartridge-kind project ([`NetworkOptions::world`]), once created.
    pub world_project: Option<u64>,
    /// The governance proposals passed while setting up (the code hash), as reports.
    pub governance: Vec<Report>,
    /// The agents' network namespaces (`--netns`); removed after the processes stopped.
    netns: Option<super::netns::Netns>,
    /// The faucet the agents fund themselves from (`autonet join --faucet`), once deployed.
    faucet: Option<super::faucet::Faucet>,
}

fn free_port() -> Result<u16, NetworkError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(other)?;
    Ok(l.local_addr().map_err(other)?.port())
}

/// The configuration of a command signing with `key` on the network at `rpc_url`.
fn agent_config(rpc_url: &str, registry: Address, key: &PrivateKeySigner) -> EffectiveConfig {
    EffectiveConfig {
        rpc_url: rpc_url.to_string(),
        contracts: ContractsSource::Registry(registry),
        config_file: None,
        json: false,
        signer: Some(key.clone()),
        account: None,
        keystore_dir: None,
        password_file: None,
    }
}

pub(crate) async fn context(
    rpc_url: &str,
    registry: Address,
    key: &PrivateKeySigner,
) -> Result<Context, NetworkError> {
    Ok(Context::connect(agent_config(rpc_url, registry, key)).await?)
}

impl Network {
    /// Starts anvil, deploys, creates and funds the project, funds and stakes one fresh key per
    /// agent, switches anvil to interval mining and starts every agent (the proposer last, once
    /// the others are ready).
    pub async fn launch(opts: NetworkOptions) -> Result<Self, NetworkError> {
        std::fs::create_dir_all(&opts.dir).map_err(other)?;
        // The native binary: SIGKILLing npm's launcher would leave anvil running (foundry_tool_path).
        let anvil_bin = autonet_chain::foundry_tool_path(&opts.repo, "anvil");
        if !anvil_bin.exists() {
            return Err(NetworkError::Other(format!(
                "{} not found: run `make setup` in the repository first",
                anvil_bin.display()
            )));
        }
        let netns = if opts.netns {
            Some(super::netns::Netns::create()?)
        } else {
            None
        };
        let host = netns
            .as_ref()
            .map_or_else(|| "127.0.0.1".to_string(), |n| n.host().to_string());
        let port = free_port()?;
        let rpc_url = format!("http://{host}:{port}");
        let log = File::create(opts.dir.join("anvil.log")).map_err(other)?;
        let anvil = Command::new(&anvil_bin)
            .args([
                "--host",
                &host,
                "--port",
                &port.to_string(),
                "--chain-id",
                &opts.chain_id.to_string(),
                // Recent states stay in memory; nothing is dumped under ~/.foundry/anvil/tmp.
                "--max-persisted-states",
                "0",
            ])
            .stdout(Stdio::from(log.try_clone().map_err(other)?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| NetworkError::Other(format!("starting anvil: {e}")))?;
        let deployer: PrivateKeySigner = DEPLOYER_KEY.parse().map_err(other)?;
        let provider = connect(&ProviderConfig::new(&rpc_url), deployer.clone())
            .await
            .map_err(other)?;
        let started = Instant::now();
        while provider.get_block_number().await.is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(NetworkError::Other(
                    "anvil did not answer within 30 s (see anvil.log)".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut net = Network {
            opts,
            anvil,
            rpc_url,
            contracts: Contracts::try_from_fn(|_| Ok::<_, std::convert::Infallible>(Address::ZERO))
                .unwrap_or_else(|never| match never {}),
            provider,
            project_id: 0,
            start_block: 0,
            agents: BTreeMap::new(),
            genesis_root: B256::ZERO,
            draft_project: None,
            world_project: None,
            governance: Vec::new(),
            netns,
            faucet: None,
        };
        net.deploy()?;
        // The faucet every agent's `join` funds itself from (paid by the deployer, who holds the
        // supply); its URL is kept beside the state for operators joining by hand.
        let faucet = super::faucet::Faucet::start(
            &net.rpc_url,
            net.contracts.atn_token,
            deployer.clone(),
            super::faucet::FaucetLimits::default(),
        )
        .await?;
        std::fs::write(
            net.opts.dir.join(super::faucet::URL_FILE),
            format!("{}\n", faucet.url),
        )
        .map_err(other)?;
        net.faucet = Some(faucet);
        net.setup(&deployer).await?;
        Ok(net)
    }

    /// The faucet's URL (`POST {address}`; also in `<dir>/faucet.url`).
    pub fn faucet_url(&self) -> Option<&str> {
        self.faucet.as_ref().map(|f| f.url.as_str())
    }

    fn deploy(&mut self) -> Result<(), NetworkError> {
        let o = &self.opts;
        let git_commit = std::env::var("GIT_COMMIT").unwrap_or_else(|_| "devnet".into());
        let deployment = autonet_chain::foundry::forge_deploy(
            &o.repo,
            &self.rpc_url,
            DEPLOYER_KEY,
            o.chain_id,
            &git_commit,
        )
        .map_err(|e| NetworkError::Other(format!("deploying with forge failed: {e}")))?;
        let path = Deployment::path_for_chain(o.repo.join("deployments"), o.chain_id);
        // Keep the network's file beside its state, out of the repository's deployments/.
        let _ = std::fs::copy(&path, o.dir.join("deployment.json"));
        if o.chain_id != 31337 {
            let _ = std::fs::remove_file(&path);
        }
        self.contracts = deployment.contracts;
        Ok(())
    }

    async fn setup(&mut self, deployer: &PrivateKeySigner) -> Result<(), NetworkError> {
        let spec = self.opts.spec.clone();
        let registry = self.contracts.registry;
        let ctx = context(&self.rpc_url, registry, deployer).await?;

        // x402 payment channels: the official client expects the channel contract and its
        // deposit collector at their canonical addresses.
        if let (Some(settlement), Some(collector)) = (
            self.contracts.batch_settlement,
            self.contracts.deposit_collector,
        ) {
            autonet_x402::channel_chain::place_on_dev_chain(&ctx.provider, settlement, collector)
                .await
                .map_err(NetworkError::Other)?;
        }

        // Dataset and genesis, exactly as every agent will rebuild them.
        let workspace = autonet_agents::spec::default_workspace();
        let corpus = spec.corpus(&workspace).map_err(other)?;
        let genesis_store = Store::open(self.opts.dir.join("genesis")).map_err(other)?;
        let genesis = spec
            .store_weights(&genesis_store, &spec.genesis().map_err(other)?)
            .map_err(other)?;
        self.genesis_root = B256::from(genesis.root);
        let main = ProjectPlan {
            prefix: "",
            spec: spec.clone(),
            genesis: self.genesis_root,
            dataset_root: B256::from(corpus.root()),
            windows: self.opts.windows,
            min_votes: self.opts.min_votes,
            max_staleness: self.opts.max_staleness,
            rounds: self.opts.rounds,
            solvers: self.opts.solvers,
            coordinators: self.opts.coordinators,
        };
        self.project_id = self.create_project(&ctx, &main).await?;

        // Governance approves the node's code before any agent starts (`docs/protocol.md` §8).
        let (passed, _) = crate::commands::gov::pass(
            &ctx,
            &crate::commands::gov::GovAction::CodeHash {
                version: None,
                hash: self.opts.code_hash,
            },
            None,
        )
        .await?;
        self.governance.push(passed);
        self.add_agents(&ctx, &main, self.project_id).await?;

        if let Some(d) = self.opts.draft.clone() {
            let corpus = d.spec.corpus(&workspace).map_err(other)?;
            let genesis = d
                .spec
                .store_weights(&genesis_store, &d.spec.genesis().map_err(other)?)
                .map_err(other)?;
            let plan = ProjectPlan {
                prefix: DRAFT_PREFIX,
                spec: d.spec.clone(),
                genesis: B256::from(genesis.root),
                dataset_root: B256::from(corpus.root()),
                windows: d.windows,
                min_votes: self.opts.min_votes.min(d.coordinators as u8).max(1),
                max_staleness: 0,
                rounds: d.rounds,
                solvers: d.solvers,
                coordinators: d.coordinators,
            };
            let id = self.create_project(&ctx, &plan).await?;
            self.add_agents(&ctx, &plan, id).await?;
            self.draft_project = Some(id);
        }

        if let Some(w) = self.opts.world.clone() {
            let kind = autonet_agents::kind::CartridgeKind::open(
                &w.spec,
                &genesis_store,
                Some(&w.module),
                &[],
            )
            .await
            .map_err(other)?;
            let state = kind.genesis(w.spec.init_seed).await.map_err(other)?;
            let genesis = genesis_store
                .put_with(&state, w.spec.shard_params().map_err(other)?)
                .map_err(other)?;
            let data = Dataset::build(&w.spec, &workspace).map_err(other)?;
            let plan = ProjectPlan {
                prefix: WORLD_PREFIX,
                spec: w.spec.clone(),
                genesis: B256::from(genesis.root),
                dataset_root: data.root(),
                windows: w.windows,
                min_votes: self.opts.min_votes.min(w.coordinators as u8).max(1),
                max_staleness: 0,
                rounds: w.rounds,
                solvers: w.solvers,
                coordinators: w.coordinators,
            };
            let id = self.create_project(&ctx, &plan).await?;
            self.add_agents(&ctx, &plan, id).await?;
            self.world_project = Some(id);
        }

        // Blocks every second from now on: the windows are counted in blocks.
        let _: () = self
            .provider
            .raw_request("evm_setIntervalMining".into(), (self.opts.block_time,))
            .await
            .map_err(other)?;
        self.start_block = self.provider.get_block_number().await.map_err(other)?;
        if !self.opts.start_agents {
            return Ok(());
        }
        self.start_group("").await
    }

    /// Starts the agents whose names start with `prefix` (and are not another group's): every
    /// one but the proposer, then, once they are ready, the proposer.
    async fn start_group(&mut self, prefix: &str) -> Result<(), NetworkError> {
        let proposer = format!("{prefix}proposer");
        let names: Vec<String> = self
            .agents
            .iter()
            .filter(|(n, a)| {
                n.starts_with(prefix)
                    && (!prefix.is_empty() || !Self::is_later(n))
                    && a.role.is_some()
                    && a.child.is_none()
                    && **n != proposer
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in &names {
            self.start(name)?;
        }
        self.wait_ready(&names, Duration::from_secs(300)).await?;
        self.start(&proposer)?;
        self.wait_ready(std::slice::from_ref(&proposer), Duration::from_secs(300))
            .await?;
        Ok(())
    }

    /// Starts the draft project's agents ([`NetworkOptions::draft`]). Its coordinators are the
    /// main project's accounts, with their BLS keys: run after the main rounds, so that one
    /// account never sends from two processes at once.
    pub async fn start_draft(&mut self) -> Result<(), NetworkError> {
        if self.draft_project.is_none() {
            return Err(other("this network has no draft project"));
        }
        self.start_later(DRAFT_PREFIX).await
    }

    /// Starts the cartridge-kind project's agents ([`NetworkOptions::world`]): its aggregator
    /// first, with the module's file; the others then fetch the module from the aggregator's
    /// shard server, every shard checked against the spec's root. The draft project's
    /// coordinators (the same accounts) are stopped first.
    pub async fn start_world(&mut self) -> Result<(), NetworkError> {
        let Some(w) = self.opts.world.clone() else {
            return Err(other("this network has no cartridge-kind project"));
        };
        let draft_coordinators: Vec<String> = self
            .agents
            .values()
            .filter(|a| {
                a.name.starts_with(DRAFT_PREFIX)
                    && matches!(a.role, Some(RoleArg::Coordinator))
                    && a.child.is_some()
            })
            .map(|a| a.name.clone())
            .collect();
        for name in draft_coordinators {
            self.kill(&name)?;
        }
        self.copy_bls_keys(WORLD_PREFIX)?;
        let aggregator = format!("{WORLD_PREFIX}aggregator");
        {
            let a = self
                .agents
                .get_mut(&aggregator)
                .ok_or_else(|| other(format!("no agent {aggregator}")))?;
            a.args
                .extend(["--cartridge".into(), w.module.display().to_string()]);
        }
        self.start(&aggregator)?;
        self.wait_ready(std::slice::from_ref(&aggregator), Duration::from_secs(300))
            .await?;
        let endpoint = autonet_bindings::ShardProviders::new(
            self.contracts.shard_providers,
            self.provider.clone(),
        )
        .endpointOf(self.agents[&aggregator].address())
        .call()
        .await
        .map_err(other)?;
        for a in self.agents.values_mut() {
            if a.name.starts_with(WORLD_PREFIX) && a.name != aggregator {
                a.args.extend(["--cartridge-peer".into(), endpoint.clone()]);
            }
        }
        self.start_group(WORLD_PREFIX).await
    }

    /// Gives the coordinators of the project of `prefix` their main coordinator's BLS key (the
    /// same account) and starts the project's agents.
    async fn start_later(&mut self, prefix: &str) -> Result<(), NetworkError> {
        self.copy_bls_keys(prefix)?;
        self.start_group(prefix).await
    }

    fn copy_bls_keys(&self, prefix: &str) -> Result<(), NetworkError> {
        for agent in self.agents.values() {
            if let Some(main) = agent.name.strip_prefix(prefix)
                && matches!(agent.role, Some(RoleArg::Coordinator))
            {
                let from = self.opts.dir.join(main).join(autonet_agents::bls::KEY_FILE);
                std::fs::create_dir_all(&agent.state_dir).map_err(other)?;
                std::fs::copy(&from, agent.state_dir.join(autonet_agents::bls::KEY_FILE))
                    .map_err(|e| other(format!("copying {}: {e}", from.display())))?;
            }
        }
        Ok(())
    }

    /// Whether `name` is an agent of a project trained after the main rounds (the draft or the
    /// cartridge-kind project).
    pub fn is_later(name: &str) -> bool {
        name.starts_with(DRAFT_PREFIX) || name.starts_with(WORLD_PREFIX)
    }

    /// Creates and funds the project of `p`; returns its id.
    async fn create_project(&self, ctx: &Context, p: &ProjectPlan) -> Result<u64, NetworkError> {
        let created = create(
            ctx,
            &CreateArgs {
                spec_hash: p.spec.spec_hash(),
                model_uri: p.spec.model_uri(),
                dataset_root: p.dataset_root,
                initial_model_root: p.genesis,
                price: U256::from(10).pow(U256::from(16)),
                windows: p.windows.to_vec(),
                split: DEFAULT_SPLIT.to_vec(),
                max_solvers: 16,
                min_votes: p.min_votes,
                max_staleness: p.max_staleness,
            },
        )
        .await?;
        let id = created.json["project_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| other("no project id"))?;
        let budget = U256::from(self.opts.reward_atn * (p.rounds + 2) * 2)
            * U256::from(10).pow(U256::from(18));
        fund(ctx, U256::from(id), budget).await?;
        Ok(id)
    }

    /// Joins one fresh key per agent of `p` (named with its prefix) for project `project_id`
    /// through `autonet join` (funded from the faucet, staked, registered) and records their
    /// command lines (`autonet … join …`); nothing is started.
    async fn add_agents(
        &mut self,
        ctx: &Context,
        p: &ProjectPlan,
        project_id: u64,
    ) -> Result<(), NetworkError> {
        let prefix = p.prefix;
        let mut plan: Vec<(String, RoleArg, u64)> =
            vec![(format!("{prefix}aggregator"), RoleArg::Aggregator, 1000)];
        for i in 1..=p.coordinators {
            plan.push((
                format!("{prefix}coordinator-{i}"),
                RoleArg::Coordinator,
                500,
            ));
        }
        for i in 1..=p.solvers {
            plan.push((format!("{prefix}solver-{i}"), RoleArg::Solver, 50));
        }
        plan.push((format!("{prefix}proposer"), RoleArg::Proposer, 100));
        let registry = self.contracts.registry;
        let atn = U256::from(10).pow(U256::from(18));
        let faucet = self
            .faucet_url()
            .ok_or_else(|| other("the faucet is not running"))?
            .to_string();
        for (name, role, amount) in plan {
            // A vote's quorum is a share of all coordinator stake on the network, so another
            // project's coordinators are the same staked accounts (their BLS keys copied by
            // `start_draft`): coordinators with keys of their own would leave both projects
            // short of quorum. Their `join` finds them funded, staked and registered already.
            let shared = match role {
                RoleArg::Coordinator if !prefix.is_empty() => Some(
                    self.agents
                        .get(name.trim_start_matches(prefix))
                        .ok_or_else(|| {
                            other(format!(
                                "{name}: the draft project has more coordinators than the main one"
                            ))
                        })?
                        .key
                        .clone(),
                ),
                _ => None,
            };
            let key = shared.unwrap_or_else(PrivateKeySigner::random);
            let state_dir = self.opts.dir.join(&name);
            let _ = std::fs::remove_dir_all(&state_dir);
            let mut join_args = vec![
                "--role".to_string(),
                format!("{role:?}").to_lowercase(),
                "--project".into(),
                project_id.to_string(),
                "--state-dir".into(),
                state_dir.display().to_string(),
                "--poll-ms".into(),
                "250".into(),
            ];
            if let RoleArg::Solver = role {
                let i: usize = name
                    .trim_start_matches(prefix)
                    .trim_start_matches("solver-")
                    .parse()
                    .unwrap_or(1);
                join_args.extend(["--data-shard".into(), format!("{}/{}", i - 1, p.solvers)]);
            }
            if let RoleArg::Proposer = role {
                join_args.extend([
                    "--max-tasks".into(),
                    p.rounds.to_string(),
                    "--reward".into(),
                    self.opts.reward_atn.to_string(),
                ]);
            }
            let extra = self.opts.extra_args.get(&name);
            if !extra.is_some_and(|e| e.iter().any(|a| a == "--confirmations")) {
                join_args.extend(["--confirmations".into(), "1".into()]);
            }
            if let Some(extra) = extra {
                join_args.extend(extra.iter().cloned());
            }
            // Key, funds (from the faucet), stake and identity now, through `join` itself, with
            // the arguments the agent is launched with; the agents check their code on start.
            let mut prepare = join_args.clone();
            prepare.extend([
                "--stake".into(),
                amount.to_string(),
                "--faucet".into(),
                faucet.clone(),
                "--no-start".into(),
            ]);
            let parsed = join::parse_args(&prepare)
                .map_err(|e| other(format!("{name}: join arguments: {e}")))?;
            let joined = parsed
                .prepare(
                    agent_config(&self.rpc_url, registry, &key),
                    Progress::Quiet,
                    false,
                )
                .await
                .map_err(|e| other(format!("{name}: join: {e}")))?;
            tracing::debug!(name, lines = ?joined.lines, "joined");
            if let RoleArg::Proposer = role {
                // Only proposers the owner approved spend the project's budget; pipelined
                // rounds hold two tasks open at once.
                let open_tasks = 1 + u64::from(p.max_staleness);
                approve_proposer(
                    ctx,
                    U256::from(project_id),
                    key.address(),
                    U256::from(self.opts.reward_atn * open_tasks) * atn,
                )
                .await?;
            }
            let mut args = vec![
                "--rpc-url".to_string(),
                self.rpc_url.clone(),
                "--registry".into(),
                registry.to_string(),
                "join".into(),
            ];
            args.extend(join_args);
            // An agent in its own network namespace cannot reach the faucet on the host's
            // loopback; it is funded already and needs none.
            if self.netns.is_none() {
                args.extend(["--faucet".into(), faucet.clone()]);
            }
            let netns = self.own_namespace(&name, &mut args)?;
            self.agents.insert(
                name.clone(),
                AgentProcess {
                    name,
                    role: Some(role),
                    key,
                    state_dir,
                    args,
                    netns,
                    child: None,
                },
            );
        }

        Ok(())
    }

    /// With `--netns`, makes agent `name`'s namespace and has it listen on its own address
    /// (replacing a `--listen` already in `args`); returns the namespace.
    fn own_namespace(
        &mut self,
        name: &str,
        args: &mut Vec<String>,
    ) -> Result<Option<String>, NetworkError> {
        let Some(netns) = self.netns.as_mut() else {
            return Ok(None);
        };
        let (ns, addr) = netns.add(name)?;
        let listen = format!("{addr}:0");
        match args.iter().position(|a| a == "--listen") {
            Some(i) if i + 1 < args.len() => args[i + 1] = listen,
            _ => args.extend(["--listen".into(), listen]),
        }
        Ok(Some(ns))
    }

    /// Starts (or restarts) agent `name`.
    pub fn start(&mut self, name: &str) -> Result<(), NetworkError> {
        let bin = self.opts.agent_bin.clone();
        let agent = self
            .agents
            .get_mut(name)
            .ok_or_else(|| other(format!("no agent {name}")))?;
        std::fs::create_dir_all(&agent.state_dir).map_err(other)?;
        let _ = std::fs::remove_file(agent.state_dir.join(autonet_agents::READY_FILE));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(agent.state_dir.join("agent.log"))
            .map_err(other)?;
        let mut command = match &agent.netns {
            Some(ns) => super::netns::Netns::command(ns, &bin),
            None => Command::new(bin),
        };
        let child = command
            .args(&agent.args)
            .env("AUTONET_PRIVATE_KEY", agent.key.to_bytes().to_string())
            // Each agent signs with its own key only: no operator account or password leaks in.
            .env_remove(crate::keystore::ACCOUNT_ENV)
            .env_remove(crate::keystore::PASSWORD_ENV)
            .env(
                "RUST_LOG",
                std::env::var("AUTONET_AGENT_LOG").unwrap_or_else(|_| {
                    "warn,autonet_agents=info,autonet_inference=info,autonet_node=info".into()
                }),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().map_err(other)?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| other(format!("starting {name}: {e}")))?;
        agent.child = Some(child);
        Ok(())
    }

    /// Kills agent `name` with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill(&mut self, name: &str) -> Result<(), NetworkError> {
        let agent = self
            .agents
            .get_mut(name)
            .ok_or_else(|| other(format!("no agent {name}")))?;
        if let Some(mut child) = agent.child.take() {
            child.kill().map_err(other)?;
            let _ = child.wait();
        }
        Ok(())
    }

    /// Waits until every named agent wrote its ready file; fails early when one exits.
    pub async fn wait_ready(
        &mut self,
        names: &[String],
        timeout: Duration,
    ) -> Result<(), NetworkError> {
        let started = Instant::now();
        loop {
            let mut all = true;
            for name in names {
                let agent = self
                    .agents
                    .get_mut(name)
                    .ok_or_else(|| other(format!("no agent {name}")))?;
                if let Some(child) = agent.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    return Err(NetworkError::Other(format!(
                        "agent {name} exited ({status}) while starting; its log:\n{}",
                        tail(&agent.state_dir.join("agent.log"), 40)
                    )));
                }
                all &= agent.state_dir.join(autonet_agents::READY_FILE).exists();
            }
            if all {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(NetworkError::Other(format!(
                    "agents {names:?} not ready after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Fails with the agent's log when any agent process has exited.
    pub fn check_alive(&mut self) -> Result<(), NetworkError> {
        for agent in self.agents.values_mut() {
            if let Some(child) = agent.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(NetworkError::Other(format!(
                    "agent {} exited ({status}); its log:\n{}",
                    agent.name,
                    tail(&agent.state_dir.join("agent.log"), 40)
                )));
            }
        }
        Ok(())
    }

    /// Address → agent name.
    pub fn names(&self) -> BTreeMap<Address, String> {
        let mut names = BTreeMap::new();
        // A draft coordinator shares its main coordinator's account: the main name is kept.
        for a in self.agents.values() {
            let name = names.entry(a.address()).or_insert_with(|| a.name.clone());
            if Self::is_later(name) && !Self::is_later(&a.name) {
                *name = a.name.clone();
            }
        }
        names
    }

    /// Logs of `event` from `contract` since the agents started.
    pub async fn logs<E: SolEvent>(
        &self,
        contract: Address,
    ) -> Result<Vec<(alloy::rpc::types::Log, E)>, NetworkError> {
        let filter = Filter::new()
            .address(contract)
            .event_signature(E::SIGNATURE_HASH)
            .from_block(self.start_block);
        let logs = self.provider.get_logs(&filter).await.map_err(other)?;
        logs.into_iter()
            .map(|l| {
                let e = E::decode_log(&l.inner).map_err(other)?.data;
                Ok((l, e))
            })
            .collect()
    }

    /// Waits for task `task_id` to end; returns `finalized`, `closed` or `cancelled`.
    pub async fn wait_task_end(
        &mut self,
        task_id: u64,
        timeout: Duration,
    ) -> Result<String, NetworkError> {
        let started = Instant::now();
        let tm = TaskManager::new(self.contracts.task_manager, self.provider.clone());
        loop {
            self.check_alive()?;
            if tm.taskCount().call().await.map_err(other)? >= U256::from(task_id) {
                let state = tm
                    .taskState(U256::from(task_id))
                    .call()
                    .await
                    .map_err(other)?;
                match state {
                    3 => return Ok("finalized".into()),
                    4 => return Ok("closed".into()),
                    5 => return Ok("cancelled".into()),
                    _ => {}
                }
            }
            if started.elapsed() > timeout {
                return Err(other(format!(
                    "task {task_id} did not end within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until a model aggregating `task_id` is accepted; returns its root.
    pub async fn wait_model_for(
        &mut self,
        task_id: u64,
        timeout: Duration,
    ) -> Result<B256, NetworkError> {
        let started = Instant::now();
        loop {
            self.check_alive()?;
            let published = self
                .logs::<ModelShardRegistry::ModelPublished>(self.contracts.shard_registry)
                .await?;
            let accepted = self
                .logs::<ModelShardRegistry::ModelAccepted>(self.contracts.shard_registry)
                .await?;
            for (_, p) in &published {
                if p.taskIds.contains(&U256::from(task_id))
                    && accepted.iter().any(|(_, a)| a.root == p.root)
                {
                    return Ok(p.root);
                }
            }
            if started.elapsed() > timeout {
                return Err(other(format!(
                    "no model for task {task_id} was accepted within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The bytes of state `root` from an agent's store (the aggregator and attesting
    /// coordinators hold it).
    pub fn load_bytes(&self, root: B256) -> Result<Option<Vec<u8>>, NetworkError> {
        for agent in self.agents.values() {
            let Ok(store) = Store::open(agent.state_dir.join("store")) else {
                continue;
            };
            if store.has(&root.0) {
                return store.get(&root.0).map(Some).map_err(other);
            }
        }
        Ok(None)
    }

    /// Loads a model with its outer momentum buffer from an agent's store (the aggregator and
    /// attesting coordinators hold it).
    pub fn load_state(&self, root: B256) -> Result<autonet_ml::ModelState, NetworkError> {
        if let Some(bytes) = self.load_bytes(root)? {
            return autonet_agents::spec::decode_state(&bytes).map_err(other);
        }
        if root == self.genesis_root {
            return Ok(autonet_ml::ModelState::weights_only(
                self.opts.spec.genesis().map_err(other)?,
            ));
        }
        Err(other(format!("no agent holds model {root}")))
    }

    /// The weights of a model, loaded as [`Self::load_state`] does.
    pub fn load_model(&self, root: B256) -> Result<autonet_ml::TensorSet, NetworkError> {
        Ok(self.load_state(root)?.weights)
    }

    /// The global evaluation loss of `weights` on the held-out data.
    pub fn eval_loss(
        &self,
        data: &Dataset,
        weights: &autonet_ml::TensorSet,
    ) -> Result<f32, NetworkError> {
        eval_loss_for(&self.opts.spec, data, weights)
    }

    /// Builds the dataset of the project (for evaluation).
    pub fn dataset(&self) -> Result<Dataset, NetworkError> {
        let spec = &self.opts.spec;
        let root = B256::from(
            spec.corpus(&autonet_agents::spec::default_workspace())
                .map_err(other)?
                .root(),
        );
        Dataset::load(spec, &autonet_agents::spec::default_workspace(), root).map_err(other)
    }

    /// Total `Rewards.claimable` of `who`.
    pub async fn claimable(&self, who: Address) -> Result<U256, NetworkError> {
        Rewards::new(self.contracts.rewards, self.provider.clone())
            .claimable(who)
            .call()
            .await
            .map_err(other)
    }

    /// The gas of the agents' round transactions in blocks `from..=to` (one-time registrations
    /// left out), in total and by the function called.
    pub async fn agent_gas(&self, from: u64, to: u64) -> Result<RoundGas, NetworkError> {
        let agents: Vec<Address> = self.agents.values().map(|a| a.address()).collect();
        let setup = [
            autonet_bindings::BlsSignerRegistry::BlsKeyRegistered::SIGNATURE_HASH,
            autonet_bindings::ShardProviders::ProviderRegistered::SIGNATURE_HASH,
            autonet_bindings::ShardProviders::ProviderEndpointUpdated::SIGNATURE_HASH,
            autonet_bindings::AgentIdentity::Registered::SIGNATURE_HASH,
            autonet_bindings::AgentIdentity::URIUpdated::SIGNATURE_HASH,
        ];
        let mut gas = RoundGas::default();
        for b in from..=to {
            let receipts = self
                .provider
                .get_block_receipts(b.into())
                .await
                .map_err(other)?
                .unwrap_or_default();
            for r in receipts {
                let one_time = r
                    .inner
                    .logs()
                    .iter()
                    .any(|l| l.topics().first().is_some_and(|t| setup.contains(t)));
                if !agents.contains(&r.from) || one_time {
                    continue;
                }
                let input = self
                    .provider
                    .get_transaction_by_hash(r.transaction_hash)
                    .await
                    .map_err(other)?
                    .map(|t| t.input().clone())
                    .unwrap_or_default();
                let call = call_name(&self.contracts, r.to.unwrap_or_default(), &input);
                gas.add(call, r.gas_used);
            }
        }
        Ok(gas)
    }

    /// Adds and starts the inference node (`autonet serve`, with the unpaid comparison route)
    /// under a fresh key holding ETH for its settlement transactions; returns its base URL.
    pub async fn start_inference(&mut self, timeout: Duration) -> Result<String, NetworkError> {
        let name = "inference".to_string();
        if !self.agents.contains_key(&name) {
            let key = PrivateKeySigner::random();
            let _: () = self
                .provider
                .raw_request(
                    "anvil_setBalance".into(),
                    (
                        key.address(),
                        U256::from(100) * U256::from(10).pow(U256::from(18)),
                    ),
                )
                .await
                .map_err(other)?;
            let state_dir = self.opts.dir.join(&name);
            let _ = std::fs::remove_dir_all(&state_dir);
            let mut args = vec![
                "--rpc-url".to_string(),
                self.rpc_url.clone(),
                "--registry".into(),
                self.contracts.registry.to_string(),
                "serve".into(),
                "--project".into(),
                self.project_id.to_string(),
                "--state-dir".into(),
                state_dir.display().to_string(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--follow-secs".into(),
                "1".into(),
                "--free-route".into(),
            ];
            if let Some(draft) = self.draft_project {
                args.extend(["--draft-project".into(), draft.to_string()]);
            }
            let netns = self.own_namespace(&name, &mut args)?;
            self.agents.insert(
                name.clone(),
                AgentProcess {
                    name: name.clone(),
                    role: None,
                    key,
                    state_dir,
                    args,
                    netns,
                    child: None,
                },
            );
        }
        // Already running (started before the last rounds): keep it; after a kill, restart it.
        if self.agents[&name].child.is_none() {
            self.start(&name)?;
        }
        self.wait_ready(std::slice::from_ref(&name), timeout)
            .await?;
        let dir = &self.agents[&name].state_dir;
        let ready: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(autonet_inference::READY_FILE)).map_err(other)?,
        )
        .map_err(other)?;
        ready["url"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| other("the inference node's ready file has no url"))
    }

    /// A fresh key holding `atn` ATN (and no ETH: an x402 payer needs none).
    pub async fn funded_payer(&self, atn: u64) -> Result<PrivateKeySigner, NetworkError> {
        let deployer: PrivateKeySigner = DEPLOYER_KEY.parse().map_err(other)?;
        let ctx = context(&self.rpc_url, self.contracts.registry, &deployer).await?;
        let key = PrivateKeySigner::random();
        let token = ATNToken::new(self.contracts.atn_token, &ctx.provider);
        autonet_chain::send_and_confirm::<ATNToken::Transfer, _, _>(
            &token.transfer(
                key.address(),
                U256::from(atn) * U256::from(10).pow(U256::from(18)),
            ),
            &ctx.tx,
        )
        .await
        .map_err(other)?;
        Ok(key)
    }

    /// Stops every agent (SIGTERM, then SIGKILL after 10 s) and anvil.
    pub fn shutdown(&mut self) {
        for agent in self.agents.values_mut() {
            if let Some(child) = agent.child.as_mut() {
                #[cfg(unix)]
                unsafe_free_sigterm(child.id());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for agent in self.agents.values_mut() {
            if let Some(mut child) = agent.child.take() {
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = self.anvil.kill();
        let _ = self.anvil.wait();
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Sends SIGTERM through `kill(1)` (no unsafe code, no extra dependency).
#[cfg(unix)]
fn unsafe_free_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The gas of one round's transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RoundGas {
    /// All of it.
    pub total: u64,
    /// Number of transactions.
    pub txs: usize,
    /// By function called (`Contract.function`): transactions and gas.
    pub by_call: BTreeMap<String, CallGas>,
}

/// The transactions of one kind in a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallGas {
    /// How many.
    pub txs: usize,
    /// Their gas.
    pub gas: u64,
}

impl RoundGas {
    /// Counts one transaction calling `call`.
    pub fn add(&mut self, call: String, gas: u64) {
        self.total += gas;
        self.txs += 1;
        let entry = self.by_call.entry(call).or_default();
        entry.txs += 1;
        entry.gas += gas;
    }
}

/// `Contract.function` of a transaction to `to` with calldata `input`, from the bindings'
/// selectors (`Contract.?` for an unknown selector, `other` for an unknown contract).
pub fn call_name(contracts: &Contracts, to: Address, input: &[u8]) -> String {
    use autonet_bindings::{AgentIdentity, BlsSignerRegistry, ParticipantStaking, ShardProviders};
    let Some(selector) = input.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
        return "transfer".into();
    };
    let (contract, name) = if to == contracts.task_manager {
        (
            "TaskManager",
            TaskManager::TaskManagerCalls::name_by_selector(selector),
        )
    } else if to == contracts.shard_registry {
        (
            "ModelShardRegistry",
            ModelShardRegistry::ModelShardRegistryCalls::name_by_selector(selector),
        )
    } else if to == contracts.shard_providers {
        (
            "ShardProviders",
            ShardProviders::ShardProvidersCalls::name_by_selector(selector),
        )
    } else if to == contracts.rewards {
        ("Rewards", Rewards::RewardsCalls::name_by_selector(selector))
    } else if to == contracts.staking {
        (
            "ParticipantStaking",
            ParticipantStaking::ParticipantStakingCalls::name_by_selector(selector),
        )
    } else if to == contracts.bls_signers {
        (
            "BlsSignerRegistry",
            BlsSignerRegistry::BlsSignerRegistryCalls::name_by_selector(selector),
        )
    } else if to == contracts.identity {
        (
            "AgentIdentity",
            AgentIdentity::AgentIdentityCalls::name_by_selector(selector),
        )
    } else if to == contracts.atn_token {
        (
            "ATNToken",
            ATNToken::ATNTokenCalls::name_by_selector(selector),
        )
    } else {
        return "other".into();
    };
    format!("{contract}.{}", name.unwrap_or("?"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolCall;

    fn contracts() -> Contracts {
        let a = Address::repeat_byte;
        Contracts {
            atn_token: a(1),
            registry: a(2),
            timelock: a(3),
            governor: a(4),
            staking: a(5),
            identity: a(6),
            project: a(7),
            market: a(8),
            rewards: a(9),
            task_manager: a(10),
            bls_signers: a(11),
            shard_registry: a(12),
            shard_providers: a(13),
            batch_settlement: None,
            deposit_collector: None,
        }
    }

    #[test]
    fn calls_are_named_by_contract_and_selector() {
        let c = contracts();
        let commit = TaskManager::commitSolutionCall::SELECTOR;
        assert_eq!(
            call_name(&c, c.task_manager, &[&commit[..], &[0u8; 64][..]].concat()),
            "TaskManager.commitSolution"
        );
        assert_eq!(
            call_name(&c, c.task_manager, &[0xde, 0xad, 0xbe, 0xef]),
            "TaskManager.?"
        );
        assert_eq!(call_name(&c, c.task_manager, &[]), "transfer");
        assert_eq!(call_name(&c, Address::repeat_byte(0x99), &commit), "other");
    }

    #[test]
    fn round_gas_adds_up_by_kind() {
        let mut g = RoundGas::default();
        g.add("TaskManager.commitSolution".into(), 100);
        g.add("TaskManager.commitSolution".into(), 120);
        g.add("TaskManager.finalize".into(), 700);
        assert_eq!((g.total, g.txs), (920, 3));
        assert_eq!(
            g.by_call["TaskManager.commitSolution"],
            CallGas { txs: 2, gas: 220 }
        );
    }
}
