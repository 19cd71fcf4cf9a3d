//! `autonet devnet`: a local network doing real training rounds, with a summary per round.
//!
//! This module owns the devnet's defaults (window lengths per preset), following the rounds and
//! printing what happened in each: the global evaluation loss, every solver's consensus and
//! incentive, what each agent earned, the gas and the time spent training. Starting the network
//! is [`network`]'s.

pub mod chart;
pub mod draft;
pub mod faucet;
pub mod leakcheck;
pub mod netns;
pub mod network;
pub mod sale;
pub mod witnessing;
pub mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use autonet_agents::TrainingSpec;
use autonet_bindings::{BlsSignerRegistry, ModelShardRegistry, Rewards, TaskManager};
use serde_json::json;

use crate::amount::format_atn;
use crate::commands::{CommandError, Report};
use crate::config::EffectiveConfig;
use autonet_protocol::units::display_atn;
use network::{CallGas, Network, NetworkError, NetworkOptions};

/// `autonet devnet` arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  autonet devnet                         # 3 rounds of the small model
  autonet devnet --preset tiny --rounds 5
  autonet devnet --keep-running          # leave the network up afterwards")]
pub struct DevnetArgs {
    /// Training rounds to run
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
    /// Model preset (tiny: seconds per round; small: the reference model)
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Local optimizer steps per round (default: the preset's)
    #[arg(long)]
    pub steps: Option<u32>,
    /// Relative loss improvement that earns a solver the whole solver pool (the project spec's
    /// `target_gain`); smaller improvements earn a proportional share and the rest returns to the
    /// budget. Coordinators score against at least 0.0001
    #[arg(long, default_value_t = autonet_agents::spec::DEFAULT_TARGET_GAIN, value_name = "FRACTION")]
    pub target_gain: f64,
    /// The project's outer rule (its spec's `outer`): `average` (the next model is base +
    /// aggregate) or `nesterov[:LR‰:MOMENTUM‰]` (DiLoCo's outer Nesterov step, 700‰ and 900‰ by
    /// default; its momentum buffer is published inside every model and verified with it)
    #[arg(long, default_value = "average", value_name = "RULE")]
    pub outer: autonet_ml::Outer,
    /// The project's aggregation rule (its spec's `aggregate`): trimmed-mean[:β‰], median,
    /// krum:F, centered-clip[:τ‰:ITERS] or bucketing[:S:RULE]
    #[arg(long, default_value = "trimmed-mean:200", value_name = "RULE")]
    pub aggregate: autonet_ml::Rule,
    /// Solver agents
    #[arg(long, default_value_t = 3)]
    pub solvers: usize,
    /// Coordinator agents
    #[arg(long, default_value_t = 3)]
    pub coordinators: usize,
    /// The project's maxStaleness: 1 pipelines rounds (solvers train the next task while the
    /// last one is revealed, scored, aggregated and attested; its delta is applied to the model
    /// that round produced: faster rounds, less learning per round, see docs/learning.md), 0
    /// runs them in sequence
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub max_staleness: u8,
    /// Seconds per block
    #[arg(long, default_value_t = 1)]
    pub block_time: u64,
    /// Where the agents' state directories and logs go
    #[arg(long, default_value = ".devnet/agents", value_name = "DIR")]
    pub dir: PathBuf,
    /// The repository checkout (node_modules/.bin/anvil and forge, script/Deploy.s.sol)
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// Chain id of the local chain
    #[arg(long, default_value_t = 31337)]
    pub chain_id: u64,
    /// Leave the network running after the rounds, until Ctrl-C
    #[arg(long)]
    pub keep_running: bool,
    /// Run every agent in its own Linux network namespace with its own address (veth pairs on a
    /// bridge made and removed by the devnet; anvil on the bridge), as agents on separate
    /// machines: nothing may depend on 127.0.0.1. Needs root and iproute2
    #[arg(long)]
    pub netns: bool,
    /// After the rounds, also pay the inference node with the official x402 client (node and
    /// script/x402-pay.mjs from the repository) and check that bad payments are refused
    #[arg(long)]
    pub check_payments: bool,
    /// After the rounds, load coordinator-1's status page in headless Chromium
    /// (script/check-status-page.sh) and check its loss chart has one point per round, against
    /// wall-clock time
    #[arg(long)]
    pub check_status_page: bool,
    /// After the rounds, measure N sequential requests of each kind (paid / unpaid, cached /
    /// uncached) against the inference node
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub bench_inference: usize,
    /// Throughout the rounds, poll every HTTP route of every agent and fail if any response
    /// shows a vote, loss, delta root or salt not yet revealed on chain (see
    /// `devnet/leakcheck.rs`)
    #[arg(long)]
    pub check_no_leaks: bool,
    /// In the first round, drop the proposer's ground-truth reveal with an `anvil_reorg` right
    /// after it lands, and check that the proposer sends it again with the same secrets and the
    /// task settles (the proposer runs with `--confirmations 3` for this)
    #[arg(long)]
    pub check_reorg: bool,
    /// Replace COUNT solvers (the last ones) with Byzantine solvers sending MODE's crafted
    /// deltas (`autonet run --attack MODE`): e.g. copier:1, sign-flip:10:1, alie:1:1, lazy:0.25:1.
    /// The devnet then also fails unless the global loss still falls, every attacker earned
    /// less than every honest solver, and a copier at most 10% of the honest solvers' mean; see
    /// docs/learning.md "Under attack"
    #[arg(long, value_name = "MODE:COUNT", value_parser = parse_attack)]
    pub attack: Option<(autonet_ml::Attack, usize)>,
    /// Also create a draft project (the `tiny` preset on the same corpus, trained for N rounds
    /// after the main ones by 2 solvers, an aggregator and a proposer of its own, and by the
    /// main project's coordinator accounts: a vote's quorum is a share of all coordinator stake):
    /// the inference node decodes greedy requests speculatively with its model
    /// (`autonet serve --draft-project`), and the summary measures the speed-up and acceptance
    /// rate on the two trained models. 0: no draft project
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub draft_rounds: u64,
    /// Also run a project of another task kind after the LM's rounds (and the draft's), through
    /// the same contracts: `substrate`, the world-model substrate as a WASM cartridge, trained by
    /// 2 solvers, an aggregator and a proposer of its own and the main coordinator accounts; the
    /// summary prints per round the world's gap, each solver's mint and novelty, and its reward
    #[arg(long, value_name = "KIND", value_parser = ["substrate"])]
    pub task_kind: Option<String>,
    /// Rounds of the --task-kind project
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub kind_rounds: u64,
    /// The --task-kind project's module (default: the substrate cartridge `make cartridge` builds
    /// under the repository's target/cartridges)
    #[arg(long, value_name = "FILE")]
    pub cartridge: Option<PathBuf>,
}

/// The substrate cartridge's file as `make cartridge` builds it.
pub const SUBSTRATE_WASM: &str =
    "target/cartridges/wasm32-unknown-unknown/release/examples/substrate.wasm";

/// The project of `--task-kind`: the cartridge's spec over a generated corpus of agent turns.
fn world_project(
    args: &DevnetArgs,
    repo: &Path,
) -> Result<Option<network::WorldProject>, CommandError> {
    let Some(kind) = &args.task_kind else {
        return Ok(None);
    };
    let module = args
        .cartridge
        .clone()
        .unwrap_or_else(|| repo.join(SUBSTRATE_WASM));
    let bytes = std::fs::read(&module).map_err(|e| {
        CommandError::Invalid(format!(
            "--task-kind {kind}: reading the cartridge {}: {e} (build it with `make cartridge`, or give --cartridge)",
            module.display()
        ))
    })?;
    let store = autonet_storage::Store::open(
        std::env::temp_dir().join(format!("autonet-devnet-cartridge-{}", std::process::id())),
    )
    .map_err(|e| CommandError::Invalid(e.to_string()))?;
    let probe =
        TrainingSpec::for_preset("tiny").map_err(|e| CommandError::Invalid(e.to_string()))?;
    let manifest = store
        .put_with(
            &bytes,
            probe
                .shard_params()
                .map_err(|e| CommandError::Invalid(e.to_string()))?,
        )
        .map_err(|e| CommandError::Invalid(e.to_string()))?;
    let _ = std::fs::remove_dir_all(store.dir());
    let spec = TrainingSpec::for_cartridge(kind, &bytes, &manifest, 4000, 40, 64);
    spec.validate()
        .map_err(|e| CommandError::Invalid(format!("--task-kind {kind}: {e}")))?;
    Ok(Some(network::WorldProject {
        spec,
        module,
        rounds: args.kind_rounds.max(1),
        windows: windows_for("tiny"),
        solvers: 2,
        coordinators: args.coordinators,
    }))
}

/// `MODE[:PARAM]:COUNT` of `--attack`.
fn parse_attack(s: &str) -> Result<(autonet_ml::Attack, usize), String> {
    let (mode, count) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}`: expected MODE:COUNT, e.g. copier:1 or sign-flip:10:1"))?;
    let count: usize = count
        .parse()
        .map_err(|_| format!("`{count}` in `{s}` is not a number of solvers"))?;
    if count == 0 {
        return Err(format!("`{s}`: the number of attackers must be at least 1"));
    }
    let attack = mode.parse().map_err(|e| format!("`{s}`: {e}"))?;
    Ok((attack, count))
}

impl DevnetArgs {
    /// Whether the command unlocks the operator's key: never, the network makes and funds its
    /// own keys.
    pub fn uses_key(&self) -> bool {
        false
    }

    /// Runs `autonet devnet` (its chain and keys are its own, so the configuration is unused).
    pub async fn run(self, _config: EffectiveConfig) -> Result<Report, CommandError> {
        devnet(&self).await
    }
}

/// What one round did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundSummary {
    /// Round number (1-based).
    pub round: u64,
    /// Task id.
    pub task_id: u64,
    /// How the task ended.
    pub outcome: String,
    /// Global evaluation loss of the project's model after the round.
    pub eval_loss: f32,
    /// Wall seconds from the end of the round before (its model accepted; for round 1 the
    /// proposal) to this model's acceptance (block timestamps).
    pub wall_secs: u64,
    /// Longest local training of a solver in this round (seconds).
    pub train_secs: f32,
    /// The solvers' utilization: their mean training time ÷ the round's wall time.
    pub utilization: f32,
    /// Wall seconds of the round not spent training by its slowest solver (the protocol's
    /// overhead: windows, reveals, scoring, aggregation, attestation).
    pub overhead_secs: f32,
    /// Gas of the agents' transactions in the round.
    pub gas: u64,
    /// Number of those transactions.
    pub txs: usize,
    /// The same gas by the function called (`Contract.function`).
    pub gas_by_call: BTreeMap<String, CallGas>,
    /// Solver → (consensus, incentive) in 1e18 fixed point.
    pub consensus: BTreeMap<String, (String, String)>,
    /// Agent → ATN earned in this round (wei).
    pub earned: BTreeMap<String, String>,
    /// How the model was accepted: the number of coordinators in its one BLS aggregate, or
    /// `None` when per-coordinator attestations accepted it.
    pub bls_signers: Option<usize>,
    /// Gas of the BLS aggregate attestation transaction.
    pub bls_gas: Option<u64>,
}

/// The draft project of `--draft-rounds`: the `tiny` preset over the main project's corpus
/// bytes, as many local steps per round as the main project.
fn draft_project(
    args: &DevnetArgs,
    main: &TrainingSpec,
) -> Result<Option<network::DraftProject>, CommandError> {
    if args.draft_rounds == 0 {
        return Ok(None);
    }
    let mut spec =
        TrainingSpec::for_preset("tiny").map_err(|e| CommandError::Invalid(e.to_string()))?;
    spec.corpus_max_bytes = main.corpus_max_bytes;
    spec.steps = main.steps;
    spec.validate()
        .map_err(|e| CommandError::Invalid(format!("--draft-rounds: {e}")))?;
    Ok(Some(network::DraftProject {
        spec,
        rounds: args.draft_rounds,
        windows: windows_for("tiny"),
        solvers: 2,
        coordinators: args.coordinators,
    }))
}

fn windows_for(preset: &str) -> [u32; 6] {
    if preset == "tiny" {
        [8, 4, 4, 6, 4, 20]
    } else {
        [40, 6, 6, 15, 6, 30]
    }
}

/// The signer index of every coordinator agent's BLS key (registered when it started); an error
/// names a coordinator that has none.
async fn bls_signers(net: &Network) -> Result<Vec<(u64, String)>, NetworkError> {
    let signers = BlsSignerRegistry::new(net.contracts.bls_signers, &net.provider);
    let mut out = Vec::new();
    for agent in net.agents.values() {
        // The draft project's coordinators start after the main rounds.
        if !matches!(
            agent.role,
            Some(crate::commands::staking::RoleArg::Coordinator)
        ) || Network::is_later(&agent.name)
        {
            continue;
        }
        let key = signers
            .blsKeyOf(agent.address())
            .call()
            .await
            .map_err(|e| {
                NetworkError::Other(format!("reading the BLS key of {}: {e}", agent.name))
            })?;
        if !key.registered {
            return Err(NetworkError::Other(format!(
                "{} started without registering a BLS key: see {}",
                agent.name,
                agent.state_dir.display()
            )));
        }
        out.push((key.index.to::<u64>(), agent.name.clone()));
    }
    out.sort();
    Ok(out)
}

fn net_err(e: NetworkError) -> CommandError {
    CommandError::Invalid(e.to_string())
}

/// `autonet devnet`.
pub async fn devnet(args: &DevnetArgs) -> Result<Report, CommandError> {
    let mut spec =
        TrainingSpec::for_preset(&args.preset).map_err(|e| CommandError::Invalid(e.to_string()))?;
    if let Some(steps) = args.steps {
        spec.steps = steps;
    }
    spec.target_gain = args.target_gain;
    spec.outer = args.outer;
    spec.aggregate = args.aggregate;
    spec.validate()
        .map_err(|e| CommandError::Invalid(e.to_string()))?;
    if args.netns {
        netns::Netns::available().map_err(|e| CommandError::Invalid(format!("--netns: {e}")))?;
    }
    if let Some((_, count)) = args.attack
        && count >= args.solvers
    {
        return Err(CommandError::Invalid(format!(
            "--attack: {count} attackers among {} solvers leaves no honest solver (raise --solvers)",
            args.solvers
        )));
    }
    let spec_for_draft = spec.clone();
    let repo = std::fs::canonicalize(&args.repo)
        .map_err(|e| CommandError::Invalid(format!("--repo {}: {e}", args.repo.display())))?;
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        repo.join(&args.dir)
    };
    let repo_for_world = repo.clone();
    let opts = NetworkOptions {
        repo,
        dir,
        agent_bin: std::env::current_exe().map_err(|e| CommandError::Invalid(e.to_string()))?,
        spec,
        solvers: args.solvers,
        coordinators: args.coordinators,
        windows: {
            let mut w = windows_for(&args.preset);
            if args.check_reorg {
                // Room to send the dropped reveal again after the reorg, on a loaded machine.
                w[1] = w[1].max(8);
            }
            w
        },
        min_votes: 2.min(args.coordinators as u8).max(1),
        max_staleness: args.max_staleness,
        rounds: args.rounds,
        block_time: args.block_time,
        chain_id: args.chain_id,
        reward_atn: 100,
        extra_args: {
            let mut extra = BTreeMap::new();
            if args.check_reorg {
                extra.insert(
                    "proposer".to_string(),
                    vec!["--confirmations".into(), REORG_CONFIRMATIONS.to_string()],
                );
            }
            for name in attackers(args) {
                let (attack, _) = args.attack.expect("attackers only under --attack");
                extra.insert(name, vec!["--attack".into(), attack.to_string()]);
            }
            extra
        },
        code_hash: None,
        start_agents: true,
        netns: args.netns,
        draft: draft_project(args, &spec_for_draft)?,
        world: world_project(args, &repo_for_world)?,
    };
    println!(
        "devnet: starting anvil, deploying, staking 1 proposer, {} solvers, {} coordinators, 1 aggregator ({} preset, {} steps per round, {} relative improvement earns the whole solver pool, aggregation {}, outer step {})",
        opts.solvers,
        opts.coordinators,
        opts.spec.preset,
        opts.spec.steps,
        opts.spec.target_gain,
        opts.spec.aggregate,
        opts.spec.outer
    );
    let started = Instant::now();
    let mut net = Network::launch(opts).await.map_err(net_err)?;
    let id = crate::commands::integrity::this_build();
    for passed in &net.governance {
        println!(
            "devnet: governance approved this node's code before any agent started — {} = {}\n  {}",
            id.registry_key(),
            id.fingerprint,
            passed.text.replace('\n', "\n  ")
        );
    }
    let signers = bls_signers(&net).await.map_err(net_err)?;
    println!(
        "devnet: every coordinator registered a BLS key with its proof of possession: {}",
        signers
            .iter()
            .map(|(index, name)| format!("{name} at signer index {index}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "devnet: chain {} at {}, registry {}, project {}; agents running (state and logs in {})",
        net.opts.chain_id,
        net.rpc_url,
        net.contracts.registry,
        net.project_id,
        net.opts.dir.display()
    );
    if let Some(url) = net.faucet_url() {
        println!(
            "devnet: faucet at {url} (also in {}): every agent joined through `autonet join --faucet`; add a node with\n  autonet join --rpc-url {} --registry {} --faucet {url} --role solver --state-dir <DIR>",
            net.opts.dir.join(faucet::URL_FILE).display(),
            net.rpc_url,
            net.contracts.registry,
        );
    }
    let leaks = args
        .check_no_leaks
        .then(|| leakcheck::LeakCheck::start(&net));
    let rounds = tokio::select! {
        r = follow_rounds(&mut net, args.check_reorg) => r,
        _ = crate::commands::agent::shutdown_signal() => Err(NetworkError::Other("interrupted: stopping every agent and anvil".into())),
    };
    let result = match rounds {
        Ok((summaries, initial)) => {
            let paid = check_payouts(&net, &summaries).await;
            let report = report(
                &net,
                &summaries,
                initial,
                started.elapsed(),
                paid.as_ref().err(),
            );
            match paid {
                Ok(()) => {
                    let last = summaries.last().map(|s| s.eval_loss).unwrap_or(initial);
                    let per_coordinator = summaries.iter().find(|s| s.bls_signers.is_none());
                    if let Some(r) = per_coordinator {
                        println!("{}", report.text);
                        Err(CommandError::Invalid(format!(
                            "round {}: the model was accepted by per-coordinator attestations, not \
                             by one BLS aggregate (see the aggregator's and coordinators' logs in {})",
                            r.round,
                            net.opts.dir.display()
                        )))
                    } else if last < initial {
                        match under_attack(args, &summaries, initial, last) {
                            Ok(line) => {
                                let mut report = report;
                                report.text.push_str(&line);
                                match sale::colony_health(&net).await {
                                    Ok(psi) => report.text.push_str(&psi),
                                    Err(e) => report.text.push_str(&format!(
                                        "  colony health Ψ: coordinator-1's status could not be read: {e}\n"
                                    )),
                                }
                                Ok(report)
                            }
                            Err(e) => {
                                println!("{}", report.text);
                                Err(e)
                            }
                        }
                    } else {
                        println!("{}", report.text);
                        Err(CommandError::Invalid(format!(
                            "the global eval loss did not fall: {initial:.4} → {last:.4}"
                        )))
                    }
                }
                Err(e) => {
                    println!("{}", report.text);
                    Err(e)
                }
            }
        }
        Err(e) => Err(net_err(e)),
    };
    // The draft project trains after the main rounds; speculation is measured on both models.
    let result = match result {
        Ok(mut r) if args.draft_rounds > 0 => {
            match draft::train_and_measure(&mut net, args.rounds).await {
                Ok((text, json)) => {
                    r.text.push_str(&text);
                    r.json["draft"] = json;
                    Ok(r)
                }
                Err(e) => {
                    println!("{}", r.text);
                    Err(net_err(e))
                }
            }
        }
        other => other,
    };
    // The project of another task kind trains after the LM's (and the draft's) rounds.
    let result = match result {
        Ok(mut r) if args.task_kind.is_some() => {
            let first = args.rounds
                + if args.draft_rounds > 0 {
                    args.draft_rounds
                } else {
                    0
                };
            match world::train(&mut net, first).await {
                Ok((text, json)) => {
                    r.text.push_str(&text);
                    r.json["task_kind"] = json;
                    Ok(r)
                }
                Err(e) => {
                    println!("{}", r.text);
                    Err(net_err(e))
                }
            }
        }
        other => other,
    };
    // The trained model earns: the inference node serves it and one generation is bought.
    let result = match result {
        Ok(mut r) => match sale::sell(&mut net, args.check_payments, args.bench_inference).await {
            Ok(sale) => {
                r.text.push_str(&sale.text);
                r.json["inference"] = sale.json;
                if args.check_status_page {
                    match sale::check_status_page(&net, args.rounds).await {
                        Ok(line) => {
                            r.text.push_str(&line);
                            Ok(r)
                        }
                        Err(e) => {
                            println!("{}", r.text);
                            Err(e)
                        }
                    }
                } else {
                    Ok(r)
                }
            }
            Err(e) => {
                println!("{}", r.text);
                Err(CommandError::Invalid(format!(
                    "inference: {e} (the inference node's log: {})",
                    net.opts.dir.join("inference/agent.log").display()
                )))
            }
        },
        Err(e) => Err(e),
    };
    let result = match leaks {
        Some(check) => leakcheck::conclude(check, result).await,
        None => result,
    };
    // Every agent's witness log checks, its anchors on chain included.
    let result = match result {
        Ok(mut r) => match witnessing::verify_all(&net).await {
            Ok((text, json)) => {
                r.text.push_str(&text);
                r.json["witness"] = json;
                Ok(r)
            }
            Err(e) => {
                println!("{}", r.text);
                Err(net_err(e))
            }
        },
        Err(e) => Err(e),
    };
    if args.keep_running && result.is_ok() {
        if let Ok(r) = &result {
            println!("{}", r.text);
        }
        println!(
            "devnet: network left running at {} (Ctrl-C to stop)",
            net.rpc_url
        );
        crate::commands::agent::shutdown_signal().await;
        net.shutdown();
        return Ok(Report {
            text: "devnet: stopped".into(),
            json: json!({"stopped": true}),
        });
    }
    net.shutdown();
    result
}

/// The names of the solvers `--attack` replaces: the last COUNT.
fn attackers(args: &DevnetArgs) -> Vec<String> {
    match args.attack {
        Some((_, count)) => (args.solvers + 1 - count.min(args.solvers)..=args.solvers)
            .map(|i| format!("solver-{i}"))
            .collect(),
        None => Vec::new(),
    }
}

/// Under `--attack`: what the attackers and the honest solvers earned over the rounds, and the
/// check that the attack did not pay (every attacker below every honest solver, a copier at most
/// 10% of the honest mean).
fn under_attack(
    args: &DevnetArgs,
    rounds: &[RoundSummary],
    initial: f32,
    last: f32,
) -> Result<String, CommandError> {
    let Some((attack, count)) = args.attack else {
        return Ok(String::new());
    };
    let bad = attackers(args);
    let earned = earned_totals(rounds);
    let total: BTreeMap<String, U256> = (1..=args.solvers)
        .map(|i| format!("solver-{i}"))
        .map(|name| {
            let amount = earned.get(&name).copied().unwrap_or_default();
            (name, amount)
        })
        .collect();
    let (attackers, honest): (Vec<_>, Vec<_>) = total.iter().partition(|(n, _)| bad.contains(n));
    let honest_min = honest.iter().map(|(_, v)| **v).min().unwrap_or_default();
    let honest_mean =
        honest.iter().map(|(_, v)| **v).sum::<U256>() / U256::from(honest.len().max(1));
    let pct = |v: U256| {
        if honest_mean.is_zero() {
            0.0
        } else {
            let scale = U256::from(1_000_000u64);
            (v * scale / honest_mean).to::<u64>() as f64 / 10_000.0
        }
    };
    let mut text = format!(
        "\n  under attack ({attack} × {count} of {} solvers): global eval loss {initial:.4} → {last:.4}; honest solvers earned {} ATN on average over {} rounds
",
        args.solvers,
        display_atn(honest_mean),
        rounds.len()
    );
    let mut failures = Vec::new();
    for (name, earned) in &attackers {
        text.push_str(&format!(
            "    {name} (attacker) earned {} ATN = {:.1}% of an honest solver's mean
",
            display_atn(**earned),
            pct(**earned)
        ));
        if **earned >= honest_min {
            failures.push(format!(
                "{name} earned {} ATN, not less than the least-paid honest solver ({} ATN)",
                display_atn(**earned),
                display_atn(honest_min)
            ));
        }
        if matches!(attack, autonet_ml::Attack::Copier { .. }) && pct(**earned) > 10.0 {
            failures.push(format!(
                "{name} copies deltas and earned {:.1}% of an honest solver's mean (at most 10% expected)",
                pct(**earned)
            ));
        }
    }
    if failures.is_empty() {
        Ok(text)
    } else {
        println!("{text}");
        Err(CommandError::Invalid(format!(
            "the attack paid: {}",
            failures.join("; ")
        )))
    }
}

/// The proposer's confirmation depth under `--check-reorg`: deeper than the reorg the check
/// makes, so that the dropped reveal still counts as not yet done.
const REORG_CONFIRMATIONS: u64 = 3;

/// Waits for the ground-truth reveal of `task_id`, drops it with an `anvil_reorg` of the blocks
/// from its own on, and waits for the proposer to reveal it again. Returns the line for the
/// report.
async fn drop_ground_truth_reveal(
    net: &mut Network,
    task_id: u64,
    timeout: Duration,
) -> Result<String, NetworkError> {
    let started = Instant::now();
    let id = U256::from(task_id);
    async fn reveal(net: &Network, id: U256) -> Result<Option<(u64, B256)>, NetworkError> {
        Ok(net
            .logs::<TaskManager::GroundTruthRevealed>(net.contracts.task_manager)
            .await?
            .into_iter()
            .find(|(_, e)| e.taskId == id)
            .and_then(|(l, _)| Some((l.block_number?, l.transaction_hash?))))
    }
    let (block, first_tx) = loop {
        net.check_alive()?;
        if let Some(found) = reveal(net, id).await? {
            break found;
        }
        if started.elapsed() > timeout {
            return Err(NetworkError::Other(format!(
                "reorg check: task {task_id}'s ground truth was never revealed"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let head = net
        .provider
        .get_block_number()
        .await
        .map_err(|e| NetworkError::Other(e.to_string()))?;
    let depth = head + 1 - block;
    if depth >= REORG_CONFIRMATIONS {
        return Err(NetworkError::Other(format!(
            "reorg check: the reveal of task {task_id} (block {block}) was already {depth} blocks deep when seen; \
             the check needs it shallower than the proposer's {REORG_CONFIRMATIONS} confirmations"
        )));
    }
    net.provider
        .raw_request::<_, serde_json::Value>(
            "anvil_reorg".into(),
            (depth, Vec::<serde_json::Value>::new()),
        )
        .await
        .map_err(|e| NetworkError::Other(format!("anvil_reorg: {e}")))?;
    if reveal(net, id).await?.is_some() {
        return Err(NetworkError::Other(format!(
            "reorg check: the reveal of task {task_id} survived a {depth}-block reorg"
        )));
    }
    loop {
        net.check_alive()?;
        if let Some((again, tx)) = reveal(net, id).await? {
            return Ok(format!(
                "reorg check: a {depth}-block anvil_reorg dropped the ground-truth reveal of task {task_id} \
                 (block {block}, tx {first_tx}); the proposer revealed it again in block {again} (tx {tx}{})\n",
                if tx == first_tx {
                    ", the same transaction re-mined"
                } else {
                    ", a new transaction with the same secrets"
                }
            ));
        }
        if started.elapsed() > timeout {
            return Err(NetworkError::Other(format!(
                "reorg check: the proposer did not reveal task {task_id}'s ground truth again after the reorg \
                 (see {})",
                net.opts.dir.join("proposer/agent.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn follow_rounds(
    net: &mut Network,
    check_reorg: bool,
) -> Result<(Vec<RoundSummary>, f32), NetworkError> {
    let data = net.dataset()?;
    let initial = net.eval_loss(&data, &net.load_model(net.genesis_root)?)?;
    println!("round 0: global eval loss {initial:.4} (genesis model)");
    let names = net.names();
    let name_of = |a: &Address| names.get(a).cloned().unwrap_or_else(|| a.to_string());
    let w = net.opts.windows;
    let round_blocks = u64::from(w.iter().sum::<u32>()) + 30;
    let timeout = Duration::from_secs(round_blocks * net.opts.block_time.max(1) * 3 + 120);
    let mut out = Vec::new();
    let mut loss = initial;
    // Each round runs from the end of the one before (its model accepted; the first proposal for
    // round 1) to its own model's acceptance: with pipelined rounds the next task is proposed,
    // and trains, before that, so the time and gas between two models is what a round costs.
    let mut previous_end: Option<u64> = None;
    for round in 1..=net.opts.rounds {
        let proposed = wait_proposal(net, round, timeout).await?;
        let started = previous_end.unwrap_or(proposed);
        let task_id = round;
        // In round 1: the check must see the reveal land, and with pipelined rounds a later
        // task's reveal can land while the devnet still follows the round before.
        if check_reorg && round == 1 {
            let line = drop_ground_truth_reveal(net, task_id, timeout).await?;
            print!("{line}");
        }
        let outcome = net.wait_task_end(task_id, timeout).await?;
        if outcome != "finalized" {
            return Err(NetworkError::Other(format!(
                "round {round}: task {task_id} was {outcome}; see the agents' logs in {}",
                net.opts.dir.display()
            )));
        }
        let root = net.wait_model_for(task_id, timeout).await?;
        if round == 1 && net.opts.rounds > 1 {
            // Started now, the inference node must follow the later rounds' models live.
            let url = net.start_inference(Duration::from_secs(180)).await?;
            println!("inference node serving at {url} (it follows every later model)");
        }
        let state = net.load_state(root)?;
        loss = net.eval_loss(&data, &state.weights)?;
        let outer = net.opts.spec.outer;
        match (&state.momentum, outer.is_average()) {
            (Some(m), true) => {
                return Err(NetworkError::Other(format!(
                    "round {round}: model {root} carries a momentum buffer (|m| = {:.4}) although \
                     the project's outer rule is average",
                    m.l2_norm()
                )));
            }
            (None, false) => {
                return Err(NetworkError::Other(format!(
                    "round {round}: model {root} carries no momentum buffer although the \
                     project's outer rule is {outer}"
                )));
            }
            (Some(m), false) => println!(
                "round {round}: outer step {outer}: the accepted model carries its momentum \
                 buffer, |m| = {:.4} (verified with the weights under the model root)",
                m.l2_norm()
            ),
            (None, true) => {}
        }
        let accepted_block = net
            .logs::<ModelShardRegistry::ModelAccepted>(net.contracts.shard_registry)
            .await?
            .into_iter()
            .find(|(_, e)| e.root == root)
            .and_then(|(l, _)| l.block_number)
            .unwrap_or(proposed);
        let ts = |b: u64| {
            let p = net.provider.clone();
            async move {
                p.get_block_by_number(b.into())
                    .await
                    .ok()
                    .flatten()
                    .map(|b| b.header.timestamp)
                    .unwrap_or(0)
            }
        };
        let wall_secs = ts(accepted_block).await.saturating_sub(ts(started).await);
        let gas = net
            .agent_gas(previous_end.map_or(proposed, |b| b + 1), accepted_block)
            .await?;
        previous_end = Some(accepted_block);
        let mut consensus = BTreeMap::new();
        let mut earned: BTreeMap<String, U256> = BTreeMap::new();
        let id = U256::from(task_id);
        for (_, e) in net
            .logs::<Rewards::SolverRewarded>(net.contracts.rewards)
            .await?
        {
            if e.taskId == id {
                consensus.insert(
                    name_of(&e.solver),
                    (e.consensus.to_string(), e.incentive.to_string()),
                );
                *earned.entry(name_of(&e.solver)).or_default() += e.amount;
            }
        }
        for (_, e) in net
            .logs::<Rewards::CoordinatorRewarded>(net.contracts.rewards)
            .await?
        {
            if e.taskId == id {
                *earned.entry(name_of(&e.coordinator)).or_default() += e.amount;
            }
        }
        for (_, e) in net
            .logs::<Rewards::ProposerRewarded>(net.contracts.rewards)
            .await?
        {
            if e.taskId == id {
                *earned.entry(name_of(&e.proposer)).or_default() += e.amount;
            }
        }
        for (_, e) in net
            .logs::<Rewards::AggregatorFeePaid>(net.contracts.rewards)
            .await?
        {
            if e.taskId == id {
                *earned.entry(name_of(&e.aggregator)).or_default() += e.amount;
            }
        }
        let trained: Vec<f64> = net
            .agents
            .values()
            .filter(|a| a.name.starts_with("solver"))
            .filter_map(|a| {
                let db =
                    autonet_agents::db::AgentDb::open(a.state_dir.join("agent.sqlite")).ok()?;
                let action = db
                    .action::<serde_json::Value>(
                        &autonet_agents::roles::ActionKey::Solve(task_id).to_string(),
                    )
                    .ok()??;
                action.data.get("train_secs")?.as_f64()
            })
            .collect();
        let (train_secs, utilization, overhead_secs) = training_share(&trained, wall_secs);
        let mut bls_signers = None;
        let mut bls_gas = None;
        for (l, e) in net
            .logs::<ModelShardRegistry::ModelAttestedBls>(net.contracts.shard_registry)
            .await?
        {
            if e.root == root {
                bls_signers = Some(e.signers.count_ones());
                if let Some(h) = l.transaction_hash {
                    bls_gas = net
                        .provider
                        .get_transaction_receipt(h)
                        .await
                        .ok()
                        .flatten()
                        .map(|r| r.gas_used);
                }
            }
        }
        let s = RoundSummary {
            bls_signers,
            bls_gas,
            round,
            task_id,
            outcome,
            eval_loss: loss,
            wall_secs,
            train_secs,
            utilization,
            overhead_secs,
            gas: gas.total,
            txs: gas.txs,
            gas_by_call: gas.by_call,
            consensus,
            earned: earned
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
        };
        print_round(&s);
        out.push(s);
    }
    let _ = loss;
    Ok((out, initial))
}

async fn wait_proposal(
    net: &mut Network,
    round: u64,
    timeout: Duration,
) -> Result<u64, NetworkError> {
    let started = Instant::now();
    loop {
        net.check_alive()?;
        let proposed = net
            .logs::<TaskManager::TaskProposed>(net.contracts.task_manager)
            .await?;
        if let Some((log, _)) = proposed.iter().find(|(_, e)| e.taskId == U256::from(round)) {
            return Ok(log.block_number.unwrap_or_default());
        }
        if started.elapsed() > timeout {
            return Err(NetworkError::Other(format!(
                "round {round}: no task proposed within {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A decimal wei string as ATN for people (rounded, see `display_atn`).
fn atn(wei: &str) -> String {
    wei.parse::<U256>()
        .map(display_atn)
        .unwrap_or_else(|_| wei.to_string())
}

fn wad(v: &str) -> String {
    v.parse::<f64>()
        .map(|x| format!("{:.3}", x / 1e18))
        .unwrap_or_else(|_| v.to_string())
}

/// The slowest solver's training seconds, the solvers' utilization (mean training ÷ wall) and
/// the protocol's overhead (wall − slowest training), from each solver's training seconds.
fn training_share(trained: &[f64], wall_secs: u64) -> (f32, f32, f32) {
    let slowest = trained.iter().copied().fold(0.0f64, f64::max);
    let mean = if trained.is_empty() {
        0.0
    } else {
        trained.iter().sum::<f64>() / trained.len() as f64
    };
    let wall = wall_secs as f64;
    let utilization = if wall > 0.0 { mean / wall } else { 0.0 };
    (
        slowest as f32,
        utilization as f32,
        (wall - slowest).max(0.0) as f32,
    )
}

fn print_round(s: &RoundSummary) {
    println!(
        "round {}: task {} {} — global eval loss {:.4}; {} s wall, {:.1} s training (slowest solver), solver utilization {:.0}%, protocol overhead {:.1} s; {} gas in {} tx",
        s.round,
        s.task_id,
        s.outcome,
        s.eval_loss,
        s.wall_secs,
        s.train_secs,
        s.utilization * 100.0,
        s.overhead_secs,
        s.gas,
        s.txs
    );
    let mut kinds: Vec<_> = s.gas_by_call.iter().collect();
    kinds.sort_by(|a, b| b.1.gas.cmp(&a.1.gas).then(a.0.cmp(b.0)));
    for (call, g) in kinds {
        println!("  gas  {call:<40} {:>3} tx {:>9}", g.txs, g.gas);
    }
    match (s.bls_signers, s.bls_gas) {
        (Some(n), gas) => println!(
            "  model accepted by one BLS aggregate attestation of {n} coordinators ({} gas)",
            gas.map(|g| g.to_string()).unwrap_or_else(|| "?".into())
        ),
        (None, _) => println!("  model accepted by per-coordinator attestations"),
    }
    for (solver, (c, i)) in &s.consensus {
        println!("  {solver:<14} consensus {}  incentive {}", wad(c), wad(i));
    }
    for (agent, amount) in &s.earned {
        println!("  {agent:<14} earned {} ATN", atn(amount));
    }
}

/// What each agent earned over `rounds`, by name (wei).
fn earned_totals(rounds: &[RoundSummary]) -> BTreeMap<String, U256> {
    let mut total: BTreeMap<String, U256> = BTreeMap::new();
    for r in rounds {
        for (agent, amount) in &r.earned {
            *total.entry(agent.clone()).or_default() += amount.parse::<U256>().unwrap_or_default();
        }
    }
    total
}

/// Checks that what every agent can claim equals the sum of what the events paid it.
async fn check_payouts(net: &Network, rounds: &[RoundSummary]) -> Result<(), CommandError> {
    let expected = earned_totals(rounds);
    // The draft project's agents train after the main rounds (and its coordinators are the
    // main ones' accounts).
    for agent in net.agents.values().filter(|a| !Network::is_later(&a.name)) {
        let claimable = net.claimable(agent.address()).await.map_err(net_err)?;
        let want = expected.get(&agent.name).copied().unwrap_or_default();
        if claimable != want {
            return Err(CommandError::Invalid(format!(
                "{} can claim {} ATN but the rounds' events paid it {} ATN",
                agent.name,
                format_atn(claimable),
                format_atn(want)
            )));
        }
    }
    Ok(())
}

fn report(
    net: &Network,
    rounds: &[RoundSummary],
    initial: f32,
    elapsed: Duration,
    paid: Option<&CommandError>,
) -> Report {
    let mut text = String::from(
        "\ndevnet summary\n  round  eval loss   wall s  train s   util  overhead s        gas\n",
    );
    text.push_str(&format!("  {:>5}  {initial:>9.4}\n", 0));
    for r in rounds {
        text.push_str(&format!(
            "  {:>5}  {:>9.4}  {:>7}  {:>7.1}  {:>4.0}%  {:>10.1}  {:>9}\n",
            r.round,
            r.eval_loss,
            r.wall_secs,
            r.train_secs,
            r.utilization * 100.0,
            r.overhead_secs,
            r.gas
        ));
    }
    let mut points = vec![(0.0, f64::from(initial))];
    let mut clock = 0.0;
    for r in rounds {
        clock += r.wall_secs as f64;
        points.push((clock, f64::from(r.eval_loss)));
    }
    let chart = net.opts.dir.join("loss.svg");
    match std::fs::write(&chart, chart::loss_svg(&points)) {
        Ok(()) => text.push_str(&format!(
            "  loss against wall-clock time: {}\n",
            chart.display()
        )),
        Err(e) => text.push_str(&format!("  could not write {}: {e}\n", chart.display())),
    }
    text.push_str(&match paid {
        None => "  every agent's claimable balance equals what the contracts paid it\n".to_string(),
        Some(e) => format!("  PAYOUT MISMATCH: {e}\n"),
    });
    text.push_str(&format!(
        "  total {:.0} s; logs in {}",
        elapsed.as_secs_f64(),
        net.opts.dir.display()
    ));
    Report {
        text,
        json: json!({ "initial_eval_loss": initial, "rounds": rounds }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(attack: Option<&str>, solvers: usize) -> DevnetArgs {
        let mut v = vec![
            "devnet".to_string(),
            "--solvers".into(),
            solvers.to_string(),
        ];
        if let Some(a) = attack {
            v.extend(["--attack".into(), a.into()]);
        }
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: Cmd,
        }
        #[derive(clap::Subcommand)]
        enum Cmd {
            Devnet(DevnetArgs),
        }
        let Cmd::Devnet(a) =
            <Cli as clap::Parser>::parse_from(std::iter::once("autonet".to_string()).chain(v)).cmd;
        a
    }

    fn round(earned: &[(&str, u64)]) -> RoundSummary {
        RoundSummary {
            round: 1,
            task_id: 1,
            outcome: "finalized".into(),
            eval_loss: 3.0,
            wall_secs: 10,
            train_secs: 1.0,
            utilization: 0.1,
            overhead_secs: 9.0,
            gas: 0,
            txs: 0,
            gas_by_call: BTreeMap::new(),
            consensus: BTreeMap::new(),
            earned: earned
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        (U256::from(*v) * U256::from(10u64).pow(U256::from(18))).to_string(),
                    )
                })
                .collect(),
            bls_signers: Some(3),
            bls_gas: None,
        }
    }

    #[test]
    fn attack_flag_parses_mode_parameter_and_count() {
        use autonet_ml::Attack;
        assert_eq!(parse_attack("copier:1").unwrap().1, 1);
        assert!(matches!(
            parse_attack("copier:1").unwrap().0,
            Attack::Copier { .. }
        ));
        assert_eq!(
            parse_attack("sign-flip:10:2").unwrap(),
            (Attack::SignFlip { k: 10.0 }, 2)
        );
        for bad in ["copier", "copier:0", "copier:x", "nonsense:1"] {
            assert!(parse_attack(bad).is_err(), "{bad}");
        }
        assert_eq!(
            attackers(&args(Some("lazy:0.25:2"), 4)),
            vec!["solver-3", "solver-4"]
        );
        assert!(attackers(&args(None, 4)).is_empty());
    }

    #[test]
    fn an_attack_that_pays_fails_the_devnet() {
        let a = args(Some("copier:1"), 3);
        // The copier earned nothing: passes, and says so.
        let ok = [round(&[
            ("solver-1", 35),
            ("solver-2", 35),
            ("solver-3", 0),
        ])];
        let text = under_attack(&a, &ok, 5.0, 4.0).unwrap();
        assert!(
            text.contains("solver-3 (attacker) earned 0 ATN = 0.0%"),
            "{text}"
        );
        // A copier that earned 20% of an honest solver: fails, although below the honest.
        let paid = [round(&[
            ("solver-1", 35),
            ("solver-2", 35),
            ("solver-3", 7),
        ])];
        let e = under_attack(&a, &paid, 5.0, 4.0).unwrap_err().to_string();
        assert!(e.contains("20.0%"), "{e}");
        // Another attack earning as much as an honest solver: fails.
        let a = args(Some("sign-flip:10:1"), 3);
        let paid = [round(&[
            ("solver-1", 35),
            ("solver-2", 30),
            ("solver-3", 30),
        ])];
        let e = under_attack(&a, &paid, 5.0, 4.0).unwrap_err().to_string();
        assert!(
            e.contains("not less than the least-paid honest solver"),
            "{e}"
        );
        // No attack: nothing to check.
        assert_eq!(under_attack(&args(None, 3), &paid, 5.0, 4.0).unwrap(), "");
    }

    #[test]
    fn utilization_is_mean_training_over_wall_and_overhead_the_rest() {
        let (slowest, util, overhead) = training_share(&[10.0, 20.0, 30.0], 40);
        assert_eq!(slowest, 30.0);
        assert!((util - 0.5).abs() < 1e-6, "{util}");
        assert_eq!(overhead, 10.0);
        assert_eq!(training_share(&[], 40), (0.0, 0.0, 40.0));
        assert_eq!(training_share(&[5.0], 0), (5.0, 0.0, 0.0));
    }
}
