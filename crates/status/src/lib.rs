//! The node's status page and Prometheus metrics: `GET /` (one self-contained HTML page),
//! `GET /api/status` (a JSON [`StatusSnapshot`]) and `GET /metrics` (text exposition).
//!
//! A snapshot is read from a [`RoundSource`] — for a role agent, its database: the rounds the
//! event recorder stored (tasks, reveals, consensus results, published and accepted models) and
//! this node's own actions (the coordinator's evaluation losses, the solver's training loss); the
//! agents crate implements the source over its database — and completed with what the source
//! does not hold: stakes (read from the chain by the caller) and inference payments (pushed by
//! the inference server through a [`Payments`] handle). A node without rounds (the inference
//! node) serves [`StatusState::fixed`] ones. [`Metrics`] is a cloneable handle on one Prometheus
//! registry that any module may increment.
//!
//! This crate only reads: it never writes a database, sends transactions or decides anything.
//!
//! # What the routes disclose
//!
//! Every route is public, so nothing a node committed to and has not revealed on chain may reach
//! a snapshot: a coordinator that showed its per-solver losses during the vote-commit window would
//! let anyone commit the same vote without evaluating anything. One rule, [`disclosure`], decides
//! per task what this node's own results may show, from facts its source recorded from the
//! chain ([`Revealed`]); `read_round` applies it while gathering, so a withheld value is never
//! even read into a [`Round`], and the page, the JSON and the metrics are all derived from that
//! one snapshot:
//!
//! - the coordinator's base loss and per-solver losses of a task: once its own `VoteRevealed` for
//!   the task is recorded, or the task ended (finalized, closed, cancelled);
//! - the solver's training loss of a task: once its own `SolutionRevealed` is recorded, or the
//!   task ended;
//! - solvers' delta roots and manifest hashes: only from `SolutionRevealed` events, so always
//!   revealed;
//! - salts, score vectors and unrevealed delta roots: never read at all.
//!
//! A withheld round has [`Round::sealed`] set.
#![warn(missing_docs)]

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, U256};
pub use autonet_protocol::units::format_atn;
pub use psi::{PsiPoint, psi_series};

pub mod psi;
use autonet_protocol::units::parse_atn;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use serde::{Deserialize, Serialize};

/// The status page, served as is.
pub const STATUS_HTML: &str = include_str!("../assets/status.html");

/// Rounds a snapshot details (the newest ones); counts cover all rounds.
pub const MAX_ROUNDS: usize = 500;

/// Payments a [`Payments`] handle keeps for display (totals cover all of them).
pub const MAX_PAYMENTS: usize = 200;

/// Errors of the status module.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The source of rounds could not be opened (the agent database file).
    #[error("status: reading {}: {error}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The source of rounds failed while read (the agent database).
    #[error("{0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
    /// The metrics registry refused a metric or failed to encode.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

// ---------------------------------------------------------------------- snapshot types

/// Who this node is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Role name (`solver`, `coordinator`, ..., or `inference`).
    pub role: String,
    /// The node's account.
    pub address: String,
    /// Chain id.
    pub chain_id: u64,
    /// Project followed.
    pub project_id: u64,
    /// Software version.
    pub version: String,
    /// Code fingerprint checked against the registry, if known.
    pub code_hash: Option<String>,
}

/// One solver's part in a round.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SolverResult {
    /// Solver account.
    pub address: String,
    /// Merkle root of its revealed delta.
    pub delta_root: Option<String>,
    /// keccak256 of the delta's manifest, committed with the root.
    pub manifest_hash: Option<String>,
    /// Held-out loss of base + delta as scored by this node (coordinators only; `None` when the
    /// delta could not be evaluated).
    pub loss: Option<f64>,
    /// Consensus score from the settlement (0..1).
    pub consensus: Option<f64>,
    /// Incentive share from the settlement (0..1).
    pub incentive: Option<f64>,
    /// Reward paid, in ATN.
    pub reward_atn: Option<String>,
}

/// One training round (a task).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// Task id.
    pub task_id: u64,
    /// Proposer account.
    pub proposer: String,
    /// Block of the proposal.
    pub proposed_block: u64,
    /// Timestamp of that block (unix seconds), where the node recorded it.
    #[serde(default)]
    pub proposed_at: Option<u64>,
    /// Reward reserved for the task, in ATN (`None` where the source does not expose it).
    pub reward_atn: Option<String>,
    /// `open`, `finalized`, `closed` or `cancelled`.
    pub status: String,
    /// Block of the outcome.
    pub ended_block: Option<u64>,
    /// Held-out loss of the round's base model as evaluated by this node (coordinators).
    pub base_loss: Option<f64>,
    /// This node's training loss in the round (solvers).
    pub train_loss: Option<f64>,
    /// Root of the model published from this round.
    pub published_root: Option<String>,
    /// Version of that model once accepted.
    pub model_version: Option<u64>,
    /// Solvers by reveal order.
    pub solvers: Vec<SolverResult>,
    /// The round's other payouts: coordinator dividends, the proposer's and aggregator's fees.
    #[serde(default)]
    pub payouts: Vec<Payout>,
    /// This node holds results for the round that it committed to and has not revealed yet:
    /// they are withheld (see [`disclosure`]).
    #[serde(default)]
    pub sealed: bool,
}

/// A payout of a finalized task other than a solver reward.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payout {
    /// The account paid.
    pub address: String,
    /// `coordinator` (dividends), `proposer` or `aggregator` (fees).
    pub kind: String,
    /// Amount in ATN.
    pub amount_atn: String,
}

/// A stake on chain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stake {
    /// Staker.
    pub address: String,
    /// Role staked for.
    pub role: String,
    /// Amount in ATN.
    pub stake_atn: String,
}

impl Stake {
    /// A stake of `amount` base units.
    pub fn new(address: Address, role: &str, amount: U256) -> Self {
        Self {
            address: address.to_string(),
            role: role.to_string(),
            stake_atn: format_atn(amount),
        }
    }
}

/// What one account earned over the rounds in the snapshot, in every role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RewardTotal {
    /// Account.
    pub address: String,
    /// Rounds in which it was rewarded.
    pub rounds: u64,
    /// Sum in ATN.
    pub total_atn: String,
}

/// An inference payment received.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// Paying account.
    pub payer: String,
    /// Amount in ATN.
    pub value_atn: String,
    /// Settlement transaction.
    pub tx: String,
    /// Unix seconds when it was recorded.
    pub at: u64,
}

/// Inference outputs by what produced them (an inference node's status page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InferenceSplit {
    /// Answered from the exact cache.
    pub cache: u64,
    /// Decoded speculatively with the draft model.
    pub speculative: u64,
    /// Decoded by the served model alone.
    pub full: u64,
    /// Bytes the draft proposed.
    pub draft_proposed: u64,
    /// Of which the served model accepted.
    pub draft_accepted: u64,
    /// `draft_accepted / draft_proposed` (`None`: nothing proposed yet).
    pub acceptance_rate: Option<f64>,
}

/// One point of the loss chart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Round (task id).
    pub round: u64,
    /// Loss.
    pub loss: f64,
    /// When the round was proposed (unix seconds), where known: the chart's wall-clock axis.
    #[serde(default)]
    pub at: Option<u64>,
}

/// Which loss `loss_per_round` plots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Held-out loss of each round's base model (this node evaluated as coordinator).
    Eval,
    /// This node's training loss (solver); used only when no evaluation loss is known.
    Train,
    /// No loss known.
    #[default]
    None,
}

/// Everything the status page shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// Unix seconds when it was taken.
    pub generated_at: u64,
    /// This node.
    pub node: NodeInfo,
    /// Rounds of the project known to the database.
    pub rounds_total: u64,
    /// Of which finalized.
    pub tasks_finalized: u64,
    /// The newest rounds (at most [`MAX_ROUNDS`]), oldest first.
    pub rounds: Vec<Round>,
    /// Stakes, as last set by the caller.
    pub stakes: Vec<Stake>,
    /// Rewards per account over `rounds`, in every role: solver rewards, coordinator
    /// dividends, proposer and aggregator fees.
    pub rewards: Vec<RewardTotal>,
    /// Sum of `rewards`, in ATN.
    pub rewards_total_atn: String,
    /// Rewards of this node's account, in ATN.
    pub node_rewards_atn: String,
    /// The latest inference payments (at most [`MAX_PAYMENTS`]), oldest first.
    pub payments: Vec<Payment>,
    /// Payments recorded since start.
    pub payments_count: u64,
    /// Their sum, in ATN.
    pub payments_total_atn: String,
    /// What `loss_per_round` plots.
    pub loss_kind: LossKind,
    /// The loss chart's points, by round.
    pub loss_per_round: Vec<LossPoint>,
    /// Colony health Ψ and its factors per round of `loss_per_round` ([`psi`]).
    #[serde(default)]
    pub psi: Vec<PsiPoint>,
    /// Inference outputs by path (`None`: not an inference node).
    #[serde(default)]
    pub inference: Option<InferenceSplit>,
}

impl StatusSnapshot {
    /// A snapshot of `rounds` (oldest first) completed with stakes and payments; derives the
    /// reward totals and the loss series.
    pub fn assemble(
        node: NodeInfo,
        rounds: Vec<Round>,
        stakes: Vec<Stake>,
        payments: &Payments,
    ) -> Self {
        // Per account: the rounds it was paid in and what it earned in them, in every role.
        let mut per_account: BTreeMap<String, (u64, U256)> = BTreeMap::new();
        for r in &rounds {
            let mut paid: BTreeMap<&str, U256> = BTreeMap::new();
            let solver_rewards = r
                .solvers
                .iter()
                .filter_map(|s| Some((s.address.as_str(), s.reward_atn.as_deref()?)));
            let others = r
                .payouts
                .iter()
                .map(|p| (p.address.as_str(), p.amount_atn.as_str()));
            for (address, amount) in solver_rewards.chain(others) {
                if let Ok(wei) = parse_atn(amount) {
                    *paid.entry(address).or_default() += wei;
                }
            }
            for (address, wei) in paid {
                let e = per_account.entry(address.to_string()).or_default();
                e.0 += 1;
                e.1 += wei;
            }
        }
        let total: U256 = per_account.values().map(|(_, v)| *v).sum();
        let mine = per_account
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(&node.address))
            .map(|(_, (_, v))| *v)
            .unwrap_or_default();
        let eval: Vec<LossPoint> = rounds
            .iter()
            .filter_map(|r| finite_point(r, r.base_loss))
            .collect();
        let train: Vec<LossPoint> = rounds
            .iter()
            .filter_map(|r| finite_point(r, r.train_loss))
            .collect();
        let (loss_kind, loss_per_round) = if !eval.is_empty() {
            (LossKind::Eval, eval)
        } else if !train.is_empty() {
            (LossKind::Train, train)
        } else {
            (LossKind::None, Vec::new())
        };
        let (recent, count, paid) = payments.summary();
        let psi = psi::psi_series(&rounds, &loss_per_round);
        Self {
            generated_at: unix_now(),
            node,
            rounds_total: rounds.len() as u64,
            tasks_finalized: rounds.iter().filter(|r| r.status == "finalized").count() as u64,
            rounds,
            stakes,
            rewards: per_account
                .into_iter()
                .map(|(address, (n, v))| RewardTotal {
                    address,
                    rounds: n,
                    total_atn: format_atn(v),
                })
                .collect(),
            rewards_total_atn: format_atn(total),
            node_rewards_atn: format_atn(mine),
            payments: recent,
            payments_count: count,
            payments_total_atn: format_atn(paid),
            loss_kind,
            loss_per_round,
            psi,
            inference: None,
        }
    }
}

fn finite_point(r: &Round, loss: Option<f64>) -> Option<LossPoint> {
    loss.filter(|l| l.is_finite()).map(|loss| LossPoint {
        round: r.task_id,
        loss,
        at: r.proposed_at,
    })
}

/// The snapshot of `node`'s project from `src`, completed with `stakes` and `payments`: the
/// newest [`MAX_ROUNDS`] rounds, each as [`disclosure`] allows this node to show it now.
pub fn snapshot_from_source(
    src: &dyn RoundSource,
    node: NodeInfo,
    stakes: Vec<Stake>,
    payments: &Payments,
) -> Result<StatusSnapshot, StatusError> {
    let ids = src.task_ids(node.project_id)?;
    let finalized = src.finalized_count(node.project_id)?;
    let models = src.models(node.project_id)?;
    let newest = &ids[ids.len().saturating_sub(MAX_ROUNDS)..];
    // An address that does not parse has revealed nothing: everything of its own stays sealed.
    let me = node.address.parse::<Address>().ok();
    let rounds = newest
        .iter()
        .map(|&id| read_round(src, me, id, &models))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let mut s = StatusSnapshot::assemble(node, rounds, stakes, payments);
    s.rounds_total = ids.len() as u64;
    s.tasks_finalized = finalized;
    Ok(s)
}

// ---------------------------------------------------------------------- disclosure

/// What the chain has made public about one task, as this node's database recorded it: the
/// facts [`disclosure`] decides on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Revealed {
    /// The task ended: finalized, closed or cancelled.
    pub ended: bool,
    /// This node's `VoteRevealed` on the task.
    pub own_vote: bool,
    /// This node's `SolutionRevealed` on the task.
    pub own_solution: bool,
}

/// Which of this node's own results for a task its routes may show now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Disclosure {
    /// The coordinator's evaluation: base loss and per-solver losses.
    pub evaluation: bool,
    /// The solver's training metrics (training loss).
    pub training: bool,
}

/// The one disclosure rule of every route (`/`, `/api/status`, `/metrics`): a node's evaluation
/// of a task is shown only once its vote on the task is revealed on chain, its training results
/// only once its solution is, and both once the task ended. Salts, score vectors and delta roots
/// not yet revealed are never shown at all (they are not part of a [`Round`]).
///
/// Reveal windows that passed without a reveal are not enough on their own: the task's end
/// (`finalize` is due right after them) opens it, so the rule needs no clock.
pub fn disclosure(r: Revealed) -> Disclosure {
    Disclosure {
        evaluation: r.ended || r.own_vote,
        training: r.ended || r.own_solution,
    }
}

/// The parts of the coordinator's vote commitment ([`RoundSource::own_vote`]) this page shows.
#[derive(Deserialize)]
struct VoteLosses {
    base_loss: f64,
    losses: Vec<Option<f64>>,
}

/// The part of the solver's solution commitment ([`RoundSource::own_solution`]) this page shows.
#[derive(Deserialize)]
struct SolveLoss {
    train_loss: f64,
}

/// One round as this node may show it now: gathers the task's public facts, and this node's own
/// results only where [`disclosure`] allows (a withheld action's data is not even parsed).
fn read_round(
    src: &dyn RoundSource,
    me: Option<Address>,
    task_id: u64,
    models: &[ModelFacts],
) -> Result<Option<Round>, StatusError> {
    let Some(task) = src.task(task_id)? else {
        return Ok(None);
    };
    let outcome = src.outcome(task_id)?;
    // Only revealed solutions are recorded (`SolutionRevealed`): roots and counts are public.
    let revealed_solutions = src.solutions(task_id)?;
    let revealed = Revealed {
        ended: outcome.is_some(),
        own_vote: match me {
            Some(me) => src.vote_revealed(task_id, me)?,
            None => false,
        },
        own_solution: me.is_some_and(|me| revealed_solutions.iter().any(|s| s.solver == me)),
    };
    let may = disclosure(revealed);
    let mut sealed = false;
    let mut own = |data: Option<serde_json::Value>, allowed: bool| {
        if allowed {
            data
        } else {
            sealed |= data.is_some();
            None
        }
    };
    let vote = own(src.own_vote(task_id)?, may.evaluation)
        .and_then(|v| serde_json::from_value::<VoteLosses>(v).ok());
    let train_loss = own(src.own_solution(task_id)?, may.training)
        .and_then(|v| serde_json::from_value::<SolveLoss>(v).ok())
        .map(|s| s.train_loss);
    let incentives = src.incentives(task_id)?;
    let mut solvers: Vec<SolverResult> = revealed_solutions
        .into_iter()
        .map(|s| SolverResult {
            address: s.solver.to_string(),
            delta_root: Some(s.delta_root.to_string()),
            manifest_hash: Some(s.manifest_hash.to_string()),
            loss: vote
                .as_ref()
                .and_then(|v| v.losses.get(usize::from(s.reveal_index)).copied().flatten()),
            ..SolverResult::default()
        })
        .collect();
    for inc in incentives {
        let address = inc.solver.to_string();
        let i = match solvers.iter().position(|s| s.address == address) {
            Some(i) => i,
            None => {
                solvers.push(SolverResult {
                    address,
                    ..SolverResult::default()
                });
                solvers.len() - 1
            }
        };
        solvers[i].consensus = inc.consensus.map(fixed18);
        solvers[i].incentive = Some(fixed18(inc.incentive));
        solvers[i].reward_atn = Some(format_atn(inc.amount));
    }
    let payouts = src
        .payouts(task_id)?
        .into_iter()
        .map(|p| Payout {
            address: p.account.to_string(),
            kind: p.kind,
            amount_atn: format_atn(p.amount),
        })
        .collect();
    let model = models.iter().find(|m| m.task_ids.contains(&task_id));
    Ok(Some(Round {
        task_id,
        proposer: task.proposer.to_string(),
        proposed_block: task.block,
        proposed_at: task.at,
        reward_atn: task.reward.map(format_atn),
        status: outcome
            .as_ref()
            .map_or_else(|| "open".to_string(), |(o, _)| o.clone()),
        ended_block: outcome.map(|(_, b)| b),
        base_loss: vote.map(|v| v.base_loss),
        train_loss,
        published_root: model.map(|m| m.root.to_string()),
        model_version: model.and_then(|m| m.version),
        solvers,
        payouts,
        sealed,
    }))
}

// ---------------------------------------------------------------------- sources

/// A task as proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFacts {
    /// Proposer.
    pub proposer: Address,
    /// Block of the proposal.
    pub block: u64,
    /// Timestamp of that block (unix seconds), where recorded.
    pub at: Option<u64>,
    /// Reward reserved for the task (`None` where the source does not know it).
    pub reward: Option<U256>,
}

/// A revealed solution (`SolutionRevealed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevealedSolution {
    /// Solver.
    pub solver: Address,
    /// Merkle root of its delta.
    pub delta_root: B256,
    /// keccak256 of the delta's manifest, committed with the root.
    pub manifest_hash: B256,
    /// Position in the task's revealed solvers (the index of its loss in a vote).
    pub reveal_index: u8,
}

/// A payout of a finalized task other than a solver reward (`CoordinatorRewarded`,
/// `ProposerRewarded`, `AggregatorFeePaid`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutFacts {
    /// The account paid.
    pub account: Address,
    /// `coordinator`, `proposer` or `aggregator`.
    pub kind: String,
    /// Amount in base units.
    pub amount: U256,
}

/// A solver's consensus result of a finalized task (`SolverRewarded`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncentiveFacts {
    /// Solver.
    pub solver: Address,
    /// Consensus score, 1e18 fixed point (`None` where the source does not know it).
    pub consensus: Option<U256>,
    /// Incentive share, 1e18 fixed point.
    pub incentive: U256,
    /// Reward paid, in ATN base units.
    pub amount: U256,
}

/// A published model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFacts {
    /// Its root.
    pub root: B256,
    /// The tasks it aggregates.
    pub task_ids: Vec<u64>,
    /// The version under which it was accepted (`None`: not accepted, or not known).
    pub version: Option<u64>,
}

/// What a snapshot reads: the chain's facts about a project's rounds as a node recorded them,
/// and this node's own commitments. The role agents implement it over their database.
pub trait RoundSource {
    /// Task ids of the project, ascending.
    fn task_ids(&self, project_id: u64) -> Result<Vec<u64>, StatusError>;
    /// How many tasks of the project finalized.
    fn finalized_count(&self, project_id: u64) -> Result<u64, StatusError>;
    /// A task as proposed.
    fn task(&self, task_id: u64) -> Result<Option<TaskFacts>, StatusError>;
    /// How the task ended (`finalized`, `closed`, `cancelled`) and in which block.
    fn outcome(&self, task_id: u64) -> Result<Option<(String, u64)>, StatusError>;
    /// The task's revealed solutions, by reveal index.
    fn solutions(&self, task_id: u64) -> Result<Vec<RevealedSolution>, StatusError>;
    /// Whether `coordinator`'s `VoteRevealed` on the task is recorded.
    fn vote_revealed(&self, task_id: u64, coordinator: Address) -> Result<bool, StatusError>;
    /// The solvers' consensus results of a finalized task.
    fn incentives(&self, task_id: u64) -> Result<Vec<IncentiveFacts>, StatusError>;
    /// A finalized task's other payouts (none where the source does not record them).
    fn payouts(&self, _task_id: u64) -> Result<Vec<PayoutFacts>, StatusError> {
        Ok(Vec::new())
    }
    /// Published models of the project (with their accepted version), oldest first.
    fn models(&self, project_id: u64) -> Result<Vec<ModelFacts>, StatusError>;
    /// The data of this node's vote commitment on the task (a coordinator's `base_loss` and
    /// `losses`, its salt and scores), if it made one. Read whether or not it may be shown:
    /// [`disclosure`] decides, and a withheld one only marks the round [`Round::sealed`].
    fn own_vote(&self, task_id: u64) -> Result<Option<serde_json::Value>, StatusError>;
    /// The data of this node's solution commitment on the task (a solver's `train_loss`, its
    /// roots and salt), if it made one; withheld like [`Self::own_vote`].
    fn own_solution(&self, task_id: u64) -> Result<Option<serde_json::Value>, StatusError>;
}

impl<T: RoundSource + ?Sized> RoundSource for Arc<T> {
    fn task_ids(&self, project_id: u64) -> Result<Vec<u64>, StatusError> {
        (**self).task_ids(project_id)
    }

    fn finalized_count(&self, project_id: u64) -> Result<u64, StatusError> {
        (**self).finalized_count(project_id)
    }

    fn task(&self, task_id: u64) -> Result<Option<TaskFacts>, StatusError> {
        (**self).task(task_id)
    }

    fn outcome(&self, task_id: u64) -> Result<Option<(String, u64)>, StatusError> {
        (**self).outcome(task_id)
    }

    fn solutions(&self, task_id: u64) -> Result<Vec<RevealedSolution>, StatusError> {
        (**self).solutions(task_id)
    }

    fn vote_revealed(&self, task_id: u64, coordinator: Address) -> Result<bool, StatusError> {
        (**self).vote_revealed(task_id, coordinator)
    }

    fn incentives(&self, task_id: u64) -> Result<Vec<IncentiveFacts>, StatusError> {
        (**self).incentives(task_id)
    }

    fn payouts(&self, task_id: u64) -> Result<Vec<PayoutFacts>, StatusError> {
        (**self).payouts(task_id)
    }

    fn models(&self, project_id: u64) -> Result<Vec<ModelFacts>, StatusError> {
        (**self).models(project_id)
    }

    fn own_vote(&self, task_id: u64) -> Result<Option<serde_json::Value>, StatusError> {
        (**self).own_vote(task_id)
    }

    fn own_solution(&self, task_id: u64) -> Result<Option<serde_json::Value>, StatusError> {
        (**self).own_solution(task_id)
    }
}

// ---------------------------------------------------------------------- payments

#[derive(Debug, Default)]
struct PaymentLog {
    recent: VecDeque<Payment>,
    count: u64,
    total: U256,
}

/// A cloneable handle on the payments this node received (the inference server records them).
#[derive(Clone, Debug, Default)]
pub struct Payments {
    inner: Arc<Mutex<PaymentLog>>,
}

impl Payments {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a settled payment of `value` base units from `payer` in transaction `tx`.
    pub fn record(&self, payer: Address, value: U256, tx: B256) {
        let mut log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        log.count += 1;
        log.total = log.total.saturating_add(value);
        if log.recent.len() == MAX_PAYMENTS {
            log.recent.pop_front();
        }
        log.recent.push_back(Payment {
            payer: payer.to_string(),
            value_atn: format_atn(value),
            tx: tx.to_string(),
            at: unix_now(),
        });
    }

    /// Payments recorded since start.
    pub fn count(&self) -> u64 {
        self.summary().1
    }

    /// Their sum in base units.
    pub fn total(&self) -> U256 {
        self.summary().2
    }

    fn summary(&self) -> (Vec<Payment>, u64, U256) {
        let log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (log.recent.iter().cloned().collect(), log.count, log.total)
    }
}

// ---------------------------------------------------------------------- metrics

const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug)]
struct MetricsInner {
    registry: Registry,
    rounds_seen: IntGauge,
    tasks_finalized: IntGauge,
    last_eval_loss: Gauge,
    psi: GaugeVec,
    stake: GaugeVec,
    rewards: Gauge,
    http_requests: IntCounterVec,
    inference_requests: IntCounterVec,
    inference_paths: IntCounterVec,
    draft_proposed: IntCounter,
    draft_accepted: IntCounter,
    payments_settled: IntCounter,
    payment_failures: IntCounterVec,
    inference_latency: Histogram,
}

/// A cloneable handle on the node's Prometheus registry (every metric is prefixed `autonet_`).
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric of the node at zero.
    pub fn new() -> Self {
        Self::try_new().expect("static metric definitions are valid and distinct")
    }

    fn try_new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("autonet".into()), None)?;
        fn reg<M: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            m: M,
        ) -> Result<M, prometheus::Error> {
            r.register(Box::new(m.clone()))?;
            Ok(m)
        }
        let r = &registry;
        let inner = MetricsInner {
            rounds_seen: reg(
                r,
                IntGauge::new(
                    "rounds_seen",
                    "Rounds (tasks) of the project in the database",
                )?,
            )?,
            tasks_finalized: reg(
                r,
                IntGauge::new("tasks_finalized", "Rounds of the project that finalized")?,
            )?,
            last_eval_loss: reg(
                r,
                Gauge::new(
                    "last_eval_loss",
                    "Held-out loss of the newest evaluated round's base model (NaN: none)",
                )?,
            )?,
            psi: reg(
                r,
                GaugeVec::new(
                    Opts::new(
                        "psi",
                        "Colony health of the newest round with a loss point: psi and its factors intelligence, sync, diversity, velocity (NaN: not known), see docs/agents.md",
                    ),
                    &["factor"],
                )?,
            )?,
            stake: reg(
                r,
                GaugeVec::new(
                    Opts::new("stake_atn", "This node's stake in ATN, by role"),
                    &["role"],
                )?,
            )?,
            rewards: reg(
                r,
                Gauge::new(
                    "rewards_earned_atn",
                    "Rewards paid to this node's account in ATN, in every role (solver rewards, coordinator dividends, proposer and aggregator fees)",
                )?,
            )?,
            http_requests: reg(
                r,
                IntCounterVec::new(
                    Opts::new("http_requests_total", "HTTP requests served"),
                    &["route", "status"],
                )?,
            )?,
            inference_requests: reg(
                r,
                IntCounterVec::new(
                    Opts::new("inference_requests_total", "Inference requests"),
                    &["paid", "cached"],
                )?,
            )?,
            inference_paths: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "inference_path_total",
                        "Inference outputs by what produced them: cache, speculative (the draft model's bytes checked by the served model) or full (the served model alone)",
                    ),
                    &["path"],
                )?,
            )?,
            draft_proposed: reg(
                r,
                IntCounter::new(
                    "speculative_proposed_bytes_total",
                    "Bytes the draft model proposed in speculative decoding",
                )?,
            )?,
            draft_accepted: reg(
                r,
                IntCounter::new(
                    "speculative_accepted_bytes_total",
                    "Proposed bytes the served model accepted (acceptance rate: accepted / proposed)",
                )?,
            )?,
            payments_settled: reg(
                r,
                IntCounter::new("payments_settled_total", "Inference payments settled")?,
            )?,
            payment_failures: reg(
                r,
                IntCounterVec::new(
                    Opts::new("payment_failures_total", "Inference payments that failed"),
                    &["reason"],
                )?,
            )?,
            inference_latency: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "inference_latency_seconds",
                        "Time to answer an inference request",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                )?,
            )?,
            registry,
        };
        inner.last_eval_loss.set(f64::NAN);
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The registry (to register more collectors; they get the `autonet_` prefix).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Counts an HTTP request answered with `status` on `route` (the route pattern, not the
    /// path, to keep the label set small).
    pub fn http_request(&self, route: &str, status: u16) {
        self.inner
            .http_requests
            .with_label_values(&[route, status.to_string().as_str()])
            .inc();
    }

    /// Counts an inference request.
    pub fn inference_request(&self, paid: bool, cached: bool) {
        let b = |v: bool| if v { "true" } else { "false" };
        self.inner
            .inference_requests
            .with_label_values(&[b(paid), b(cached)])
            .inc();
    }

    /// Counts an inference output produced on `path` (`cache`, `speculative`, `full`), with
    /// the draft's (proposed, accepted) bytes on the speculative path.
    pub fn inference_path(&self, path: &str, draft: Option<(u64, u64)>) {
        self.inner.inference_paths.with_label_values(&[path]).inc();
        if let Some((proposed, accepted)) = draft {
            self.inner.draft_proposed.inc_by(proposed);
            self.inner.draft_accepted.inc_by(accepted);
        }
    }

    /// Inference outputs so far by path, and the draft's bytes.
    pub fn inference_split(&self) -> InferenceSplit {
        let n = |p: &str| self.inner.inference_paths.with_label_values(&[p]).get();
        let (proposed, accepted) = (
            self.inner.draft_proposed.get(),
            self.inner.draft_accepted.get(),
        );
        InferenceSplit {
            cache: n("cache"),
            speculative: n("speculative"),
            full: n("full"),
            draft_proposed: proposed,
            draft_accepted: accepted,
            acceptance_rate: (proposed > 0).then(|| accepted as f64 / proposed as f64),
        }
    }

    /// Records how long an inference request took.
    pub fn inference_latency(&self, elapsed: Duration) {
        self.inner.inference_latency.observe(elapsed.as_secs_f64());
    }

    /// Counts a settled payment.
    pub fn payment_settled(&self) {
        self.inner.payments_settled.inc();
    }

    /// Counts a failed payment (`reason`: a short fixed word such as `signature`, `expired`,
    /// `insufficient`, `rpc`).
    pub fn payment_failed(&self, reason: &str) {
        self.inner
            .payment_failures
            .with_label_values(&[reason])
            .inc();
    }

    /// Sets the gauges derived from a snapshot (rounds, loss, stake, rewards). The snapshot is
    /// already disclosed (see [`disclosure`]): no gauge is set from anything else, so `/metrics`
    /// shows no secret that `/api/status` withholds.
    pub fn observe_snapshot(&self, s: &StatusSnapshot) {
        let m = &self.inner;
        m.rounds_seen.set(s.rounds_total as i64);
        m.tasks_finalized.set(s.tasks_finalized as i64);
        let last_eval = match s.loss_kind {
            LossKind::Eval => s.loss_per_round.last().map(|p| p.loss),
            _ => None,
        };
        m.last_eval_loss.set(last_eval.unwrap_or(f64::NAN));
        let newest = s.psi.last().copied().unwrap_or_default();
        for (factor, value) in [
            ("psi", newest.psi),
            ("intelligence", newest.intelligence),
            ("sync", newest.sync),
            ("diversity", newest.diversity),
            ("velocity", newest.velocity),
        ] {
            m.psi
                .with_label_values(&[factor])
                .set(value.unwrap_or(f64::NAN));
        }
        m.stake.reset();
        for st in s
            .stakes
            .iter()
            .filter(|st| st.address.eq_ignore_ascii_case(&s.node.address))
        {
            m.stake
                .with_label_values(&[st.role.as_str()])
                .set(atn_f64(&st.stake_atn));
        }
        m.rewards.set(atn_f64(&s.node_rewards_atn));
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, StatusError> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.inner.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Wraps every route of `router` so that [`Metrics::http_request`] counts its requests by
/// route pattern and status (apply before merging routers, so no request is counted twice).
pub fn track_requests<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    metrics: Metrics,
) -> Router<S> {
    router.layer(middleware::from_fn_with_state(metrics, count_request))
}

async fn count_request(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    metrics.http_request(&route, response.status().as_u16());
    response
}

// ---------------------------------------------------------------------- HTTP

/// Opens the source of one snapshot's rounds (on a blocking thread).
type OpenSource = Box<dyn Fn() -> Result<Box<dyn RoundSource>, StatusError> + Send + Sync>;

enum Rounds {
    Source(OpenSource),
    Fixed(Vec<Round>),
}

/// What the status routes serve: where rounds come from, this node, the stakes, the payments
/// and the metrics (cheap to clone; every handle is shared).
#[derive(Clone)]
pub struct StatusState {
    node: NodeInfo,
    rounds: Arc<Rounds>,
    stakes: Arc<Mutex<Vec<Stake>>>,
    payments: Payments,
    metrics: Metrics,
}

impl StatusState {
    fn with(node: NodeInfo, rounds: Rounds) -> Self {
        Self {
            node,
            rounds: Arc::new(rounds),
            stakes: Arc::default(),
            payments: Payments::new(),
            metrics: Metrics::new(),
        }
    }

    /// Rounds from the source `open` returns, called once per snapshot: a shared handle, or a
    /// fresh read-only view of a database another task writes (see [`snapshot_from_source`]).
    pub fn from_source<S, F>(node: NodeInfo, open: F) -> Self
    where
        S: RoundSource + 'static,
        F: Fn() -> Result<S, StatusError> + Send + Sync + 'static,
    {
        let open: OpenSource = Box::new(move || Ok(Box::new(open()?) as Box<dyn RoundSource>));
        Self::with(node, Rounds::Source(open))
    }

    /// Fixed rounds (nodes without rounds of their own, such as the inference node; tests).
    pub fn fixed(node: NodeInfo, rounds: Vec<Round>) -> Self {
        Self::with(node, Rounds::Fixed(rounds))
    }

    /// Uses `metrics` (shared with other modules) instead of a fresh registry.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Uses `payments` (shared with the inference server) instead of a fresh log.
    pub fn with_payments(mut self, payments: Payments) -> Self {
        self.payments = payments;
        self
    }

    /// The metrics handle.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The payments handle.
    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// Replaces the stakes shown (the caller reads them from the chain).
    pub fn set_stakes(&self, stakes: Vec<Stake>) {
        *self.stakes.lock().unwrap_or_else(|p| p.into_inner()) = stakes;
    }

    /// The current snapshot (blocking: reads SQLite), with the metrics' gauges updated.
    pub fn snapshot(&self) -> Result<StatusSnapshot, StatusError> {
        let stakes = self
            .stakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let node = self.node.clone();
        let s = match &*self.rounds {
            Rounds::Source(open) => {
                snapshot_from_source(open()?.as_ref(), node, stakes, &self.payments)?
            }
            Rounds::Fixed(rounds) => {
                StatusSnapshot::assemble(node, rounds.clone(), stakes, &self.payments)
            }
        };
        let mut s = s;
        if s.node.role == "inference" {
            s.inference = Some(self.metrics.inference_split());
        }
        self.metrics.observe_snapshot(&s);
        Ok(s)
    }
}

/// `GET /` (the page), `GET /api/status` (JSON) and `GET /metrics` (Prometheus text), with
/// their requests counted in the state's metrics.
pub fn router(state: StatusState) -> Router {
    let metrics = state.metrics.clone();
    let routes = Router::new()
        .route("/", get(page))
        .route("/api/status", get(api_status))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    track_requests(routes, metrics)
}

async fn page() -> Html<&'static str> {
    Html(STATUS_HTML)
}

async fn blocking_snapshot(state: StatusState) -> Result<StatusSnapshot, String> {
    tokio::task::spawn_blocking(move || state.snapshot())
        .await
        .map_err(|e| format!("status task: {e}"))?
        .map_err(|e| e.to_string())
}

async fn api_status(State(state): State<StatusState>) -> Response {
    let started = Instant::now();
    match blocking_snapshot(state).await {
        Ok(s) => match serde_json::to_string(&s) {
            Ok(body) => {
                tracing::debug!(
                    rounds = s.rounds.len(),
                    ms = started.elapsed().as_millis(),
                    "status snapshot"
                );
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "no-store"),
                    ],
                    body,
                )
                    .into_response()
            }
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "status snapshot failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e).into_response()
        }
    }
}

async fn metrics_text(State(state): State<StatusState>) -> Response {
    let metrics = state.metrics.clone();
    // Refresh the gauges; counters are served even when the database cannot be read.
    if let Err(e) = blocking_snapshot(state).await {
        tracing::warn!(error = %e, "metrics: status snapshot failed, gauges are stale");
    }
    match metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

// ---------------------------------------------------------------------- amounts

fn atn_f64(text: &str) -> f64 {
    text.parse().unwrap_or(f64::NAN)
}

/// A 1e18 fixed-point value as a float.
fn fixed18(v: U256) -> f64 {
    v.to_string().parse::<f64>().unwrap_or(f64::NAN) / 1e18
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    const E18: u64 = 1_000_000_000_000_000_000;

    fn atn(n: u64) -> U256 {
        U256::from(n) * U256::from(E18)
    }

    fn solver(i: u8) -> Address {
        Address::repeat_byte(0x10 + i)
    }

    fn node(address: Address) -> NodeInfo {
        NodeInfo {
            role: "coordinator".into(),
            address: address.to_string(),
            chain_id: 31337,
            project_id: 1,
            version: "0.1.0".into(),
            code_hash: None,
        }
    }

    #[test]
    fn solver_nodes_plot_their_training_loss() {
        let rounds = vec![
            Round {
                task_id: 1,
                train_loss: Some(4.0),
                ..Round::default()
            },
            Round {
                task_id: 2,
                train_loss: Some(f64::NAN),
                ..Round::default()
            },
            Round {
                task_id: 3,
                train_loss: Some(3.5),
                ..Round::default()
            },
        ];
        let s = StatusSnapshot::assemble(NodeInfo::default(), rounds, vec![], &Payments::new());
        assert_eq!(s.loss_kind, LossKind::Train);
        assert_eq!(
            s.loss_per_round.iter().map(|p| p.round).collect::<Vec<_>>(),
            [1, 3]
        );
    }

    #[test]
    fn payments_keep_totals_beyond_the_displayed_window() {
        let p = Payments::new();
        for i in 0..(MAX_PAYMENTS as u64 + 5) {
            p.record(
                Address::repeat_byte(7),
                U256::from(E18 / 2),
                B256::with_last_byte(i as u8),
            );
        }
        let s = StatusSnapshot::assemble(NodeInfo::default(), vec![], vec![], &p);
        assert_eq!(s.payments.len(), MAX_PAYMENTS);
        assert_eq!(s.payments_count, MAX_PAYMENTS as u64 + 5);
        assert_eq!(s.payments_total_atn, "102.5");
        assert_eq!(s.payments[0].value_atn, "0.5");
    }

    #[test]
    fn an_inference_nodes_snapshot_splits_its_outputs_by_path() {
        let inference = NodeInfo {
            role: "inference".into(),
            ..NodeInfo::default()
        };
        let state = StatusState::fixed(inference, vec![]);
        assert_eq!(
            state.snapshot().unwrap().inference,
            Some(InferenceSplit::default())
        );
        let m = state.metrics();
        m.inference_path("speculative", Some((10, 7)));
        m.inference_path("speculative", Some((6, 1)));
        m.inference_path("cache", None);
        m.inference_path("full", None);
        m.inference_path("full", None);
        let split = state.snapshot().unwrap().inference.unwrap();
        assert_eq!((split.cache, split.speculative, split.full), (1, 2, 2));
        assert_eq!((split.draft_proposed, split.draft_accepted), (16, 8));
        assert_eq!(split.acceptance_rate, Some(0.5));
        // Other roles have no inference split.
        let solver = StatusState::fixed(NodeInfo::default(), vec![]);
        assert_eq!(solver.snapshot().unwrap().inference, None);
    }

    #[test]
    fn atn_amounts_round_trip() {
        for (wei, text) in [
            (U256::ZERO, "0"),
            (atn(50), "50"),
            (atn(50) + U256::from(E18 / 2), "50.5"),
            (U256::from(1), "0.000000000000000001"),
        ] {
            assert_eq!(format_atn(wei), text);
            assert_eq!(parse_atn(text).ok(), Some(wei));
        }
        assert_eq!(parse_atn("1.2.3").ok(), None);
        assert_eq!(parse_atn("-1").ok(), None);
    }

    /// The value of the sample `name` (with its labels, as written) in a text exposition.
    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    #[test]
    fn the_metrics_text_has_every_metric_and_the_values_set() {
        let m = Metrics::new();
        let clone = m.clone();
        clone.http_request("/api/status", 200);
        clone.http_request("/api/status", 200);
        m.inference_request(true, false);
        m.inference_latency(Duration::from_millis(30));
        m.inference_latency(Duration::from_millis(300));
        m.payment_settled();
        m.payment_failed("expired");
        let mut s = StatusSnapshot::assemble(
            node(solver(0)),
            vec![Round {
                task_id: 7,
                status: "finalized".into(),
                base_loss: Some(4.25),
                solvers: vec![SolverResult {
                    address: solver(0).to_string(),
                    reward_atn: Some("1.5".into()),
                    ..SolverResult::default()
                }],
                ..Round::default()
            }],
            vec![
                Stake::new(solver(0), "coordinator", atn(100)),
                Stake::new(solver(1), "solver", atn(5)),
            ],
            &Payments::new(),
        );
        s.rounds_total = 12;
        m.observe_snapshot(&s);
        let text = m.render().unwrap();
        for name in [
            "rounds_seen",
            "tasks_finalized",
            "last_eval_loss",
            "stake_atn",
            "rewards_earned_atn",
            "http_requests_total",
            "inference_requests_total",
            "payments_settled_total",
            "payment_failures_total",
            "inference_latency_seconds",
        ] {
            assert!(
                text.contains(&format!("# HELP autonet_{name} ")),
                "HELP {name}\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE autonet_{name} ")),
                "TYPE {name}\n{text}"
            );
        }
        assert!(text.contains("# TYPE autonet_inference_latency_seconds histogram"));
        assert!(text.contains("# TYPE autonet_http_requests_total counter"));
        let v = |n: &str| sample(&text, n).unwrap_or_else(|| panic!("no sample {n}\n{text}"));
        assert_eq!(v("autonet_rounds_seen"), 12.0);
        assert_eq!(v("autonet_tasks_finalized"), 1.0);
        assert_eq!(v("autonet_last_eval_loss"), 4.25);
        assert_eq!(v("autonet_stake_atn{role=\"coordinator\"}"), 100.0);
        assert_eq!(v("autonet_rewards_earned_atn"), 1.5);
        assert_eq!(
            v("autonet_http_requests_total{route=\"/api/status\",status=\"200\"}"),
            2.0
        );
        assert_eq!(
            v("autonet_inference_requests_total{cached=\"false\",paid=\"true\"}"),
            1.0
        );
        assert_eq!(v("autonet_payments_settled_total"), 1.0);
        assert_eq!(v("autonet_payment_failures_total{reason=\"expired\"}"), 1.0);
        assert_eq!(v("autonet_inference_latency_seconds_count"), 2.0);
        assert_eq!(
            v("autonet_inference_latency_seconds_bucket{le=\"0.05\"}"),
            1.0
        );
        assert_eq!(
            v("autonet_inference_latency_seconds_bucket{le=\"+Inf\"}"),
            2.0
        );
        // Two registries do not share values.
        assert!(
            !Metrics::new()
                .render()
                .unwrap()
                .contains("route=\"/api/status\"")
        );
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, String, String) {
        let res = app
            .clone()
            .oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let status = res.status();
        let body = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn the_rule_opens_each_secret_only_with_its_own_reveal_or_the_end() {
        let r = |ended, own_vote, own_solution| {
            disclosure(Revealed {
                ended,
                own_vote,
                own_solution,
            })
        };
        let d = |evaluation, training| Disclosure {
            evaluation,
            training,
        };
        assert_eq!(r(false, false, false), d(false, false));
        assert_eq!(r(false, true, false), d(true, false));
        assert_eq!(r(false, false, true), d(false, true));
        assert_eq!(r(true, false, false), d(true, true));
        assert_eq!(r(true, true, true), d(true, true));
    }

    /// A source of one open task (5) with two revealed solutions and this node's commitments,
    /// counting how often the commitments are read.
    #[derive(Default)]
    struct OneTask {
        revealed: Revealed,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl RoundSource for OneTask {
        fn task_ids(&self, _: u64) -> Result<Vec<u64>, StatusError> {
            Ok(vec![5])
        }

        fn finalized_count(&self, _: u64) -> Result<u64, StatusError> {
            Ok(0)
        }

        fn task(&self, _: u64) -> Result<Option<TaskFacts>, StatusError> {
            Ok(Some(TaskFacts {
                proposer: Address::repeat_byte(1),
                block: 7,
                at: Some(1_700_000_000),
                reward: None,
            }))
        }

        fn outcome(&self, _: u64) -> Result<Option<(String, u64)>, StatusError> {
            Ok(self.revealed.ended.then(|| ("finalized".to_string(), 9)))
        }

        fn solutions(&self, _: u64) -> Result<Vec<RevealedSolution>, StatusError> {
            let mut s = vec![solver(1), solver(2)];
            if self.revealed.own_solution {
                s.push(solver(0));
            }
            Ok(s.into_iter()
                .enumerate()
                .map(|(i, solver)| RevealedSolution {
                    solver,
                    delta_root: B256::repeat_byte(0x40 + i as u8),
                    manifest_hash: B256::repeat_byte(0x4d),
                    reveal_index: i as u8,
                })
                .collect())
        }

        fn vote_revealed(&self, _: u64, coordinator: Address) -> Result<bool, StatusError> {
            Ok(self.revealed.own_vote && coordinator == solver(0))
        }

        fn incentives(&self, _: u64) -> Result<Vec<IncentiveFacts>, StatusError> {
            Ok(Vec::new())
        }

        fn models(&self, _: u64) -> Result<Vec<ModelFacts>, StatusError> {
            Ok(Vec::new())
        }

        fn own_vote(&self, _: u64) -> Result<Option<serde_json::Value>, StatusError> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(Some(serde_json::json!({
                "scores": [65535, 1], "salt": B256::repeat_byte(0x5a).to_string(),
                "base_loss": 5.25, "losses": [4.5, null],
            })))
        }

        fn own_solution(&self, _: u64) -> Result<Option<serde_json::Value>, StatusError> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(Some(
                serde_json::json!({ "train_loss": 2.75, "salt": B256::repeat_byte(0x5b).to_string() }),
            ))
        }
    }

    #[test]
    fn a_round_shows_this_nodes_results_only_as_the_rule_allows() {
        let me = node(solver(0));
        for (ended, own_vote, own_solution) in [
            (false, false, false),
            (false, true, false),
            (false, false, true),
            (true, false, false),
        ] {
            let revealed = Revealed {
                ended,
                own_vote,
                own_solution,
            };
            let may = disclosure(revealed);
            let src = OneTask {
                revealed,
                ..OneTask::default()
            };
            let s = snapshot_from_source(&src, me.clone(), Vec::new(), &Payments::new()).unwrap();
            assert_eq!(
                src.reads.load(std::sync::atomic::Ordering::Relaxed),
                2,
                "both commitments are read once, to know whether to seal"
            );
            let r = &s.rounds[0];
            let when = format!("{revealed:?}");
            assert_eq!(r.base_loss, may.evaluation.then_some(5.25), "{when}");
            assert_eq!(r.solvers[0].loss, may.evaluation.then_some(4.5), "{when}");
            assert_eq!(r.solvers[1].loss, None, "{when}");
            assert_eq!(r.train_loss, may.training.then_some(2.75), "{when}");
            assert_eq!(r.sealed, !(may.evaluation && may.training), "{when}");
            assert_eq!(r.status, if ended { "finalized" } else { "open" });
            let json = serde_json::to_string(&s).unwrap();
            assert!(!json.contains(&B256::repeat_byte(0x5a).to_string()[2..]));
            assert!(!json.contains("65535"), "{when}: scores never show");
        }
    }

    #[tokio::test]
    async fn the_router_answers_the_three_routes() {
        let state = StatusState::fixed(
            node(solver(0)),
            vec![Round {
                task_id: 3,
                status: "finalized".into(),
                base_loss: Some(5.0),
                ..Round::default()
            }],
        );
        state.set_stakes(vec![Stake::new(solver(0), "coordinator", atn(100))]);
        state
            .payments()
            .record(Address::repeat_byte(9), atn(2), B256::repeat_byte(8));
        let app = router(state);

        let (status, ct, html) = get(&app, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/html"), "{ct}");
        assert!(html.contains("id=\"loss-chart\"") && html.contains("api/status"));

        let (status, ct, body) = get(&app, "/api/status").await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
        let s: StatusSnapshot = serde_json::from_str(&body).unwrap();
        assert_eq!((s.rounds.len(), s.loss_per_round.len()), (1, 1));
        assert_eq!((s.payments_count, s.payments_total_atn.as_str()), (1, "2"));
        assert_eq!(s.stakes[0].stake_atn, "100");

        let (status, ct, text) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        assert_eq!(sample(&text, "autonet_last_eval_loss"), Some(5.0));
        assert_eq!(
            sample(
                &text,
                "autonet_http_requests_total{route=\"/api/status\",status=\"200\"}"
            ),
            Some(1.0)
        );
        let (status, _, _) = get(&app, "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_source_that_cannot_open_is_a_500_but_metrics_still_serve() {
        let state = StatusState::from_source(node(solver(0)), || -> Result<OneTask, _> {
            Err(StatusError::Open {
                path: "missing.sqlite".into(),
                error: "unable to open database file".into(),
            })
        });
        let app = router(state);
        let (status, _, body) = get(&app, "/api/status").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("missing.sqlite"), "{body}");
        let (status, _, text) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("# TYPE autonet_rounds_seen gauge"));
    }
}
