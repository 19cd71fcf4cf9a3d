//! `autonet project create | fund | approve-proposer | status`.
//!
//! This module owns the project commands ([`ProjectCmd`]: their arguments and `run`) and the
//! operator's side of the `Project` contract behind them: creating a project with its reward
//! split, phase windows and task limits, funding its budget (approve + fund, confirmed by
//! `ProjectFunded`), letting a proposer spend it and showing its accounts in ATN. It must not move
//! a project's money any other way: reservations and payouts belong to TaskManager and Rewards.

use alloy::primitives::{Address, B256, U256};
use autonet_bindings::project::IProject::{CreateProjectParams, RewardSplit, Windows};
use autonet_bindings::{ATNToken, Project};
use autonet_chain::send_and_confirm;
use serde_json::json;

use super::{CommandError, Context, Report};
use crate::amount::{atn, atn_arg, format_atn};
use crate::config::EffectiveConfig;

/// Default reward split in basis points: solvers, coordinators, proposer, aggregator (the values
/// `script/DevnetRound.s.sol` uses).
pub const DEFAULT_SPLIT: [u16; 4] = [7_000, 1_500, 500, 1_000];
/// Default phase windows in blocks: commit, ground-truth reveal, solution reveal, vote commit,
/// vote reveal, publish (devnet lengths, as in `script/DevnetRound.s.sol`; raise them on a public
/// network where blocks are faster or participants slower).
pub const DEFAULT_WINDOWS: [u32; 6] = [8, 8, 8, 8, 8, 200];

/// `autonet project …`.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectCmd {
    /// Create a training project owned by this account
    #[command(after_help = "Example:
  autonet project create --spec-hash 0x11…11 --model-uri ipfs://spec --dataset-root 0x22…22 \\
      --initial-model-root 0x33…33 --price 0.01 --windows 8,8,8,8,8,200 --split 7000,1500,500,1000")]
    Create(CreateArgs),
    /// Add ATN to a project's budget (approves the Project contract first when needed)
    #[command(after_help = "Example: autonet project fund 1 --amount 1000")]
    Fund {
        /// Project id (from `project create`)
        id: U256,
        /// ATN to add, as a decimal number
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        amount: U256,
    },
    /// Owner only: let a staked proposer spend this project's budget, holding at most a cap reserved
    /// across its open tasks (`--max-reward 0` revokes it). Only approved proposers can propose
    /// tasks on a project.
    #[command(
        after_help = "Example: autonet project approve-proposer 1 0xabc…def --max-reward 100"
    )]
    ApproveProposer {
        /// Project id
        id: U256,
        /// The proposer's address
        proposer: Address,
        /// Most this proposer may hold reserved across its open tasks at once (so also the
        /// largest reward of one task), in ATN (0 revokes the approval)
        #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
        max_reward: U256,
    },
    /// Show a project's owner, accounts in ATN, model root, price, split and windows
    Status {
        /// Project id
        id: U256,
    },
}

impl ProjectCmd {
    /// Whether the command may sign, so that a `--account` keystore is unlocked first: all but
    /// `status`, which only reads.
    pub fn uses_key(&self) -> bool {
        !matches!(self, ProjectCmd::Status { .. })
    }

    /// Runs `autonet project …`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        match self {
            ProjectCmd::Create(args) => create(&ctx, &args).await,
            ProjectCmd::Fund { id, amount } => fund(&ctx, id, amount).await,
            ProjectCmd::ApproveProposer {
                id,
                proposer,
                max_reward,
            } => approve_proposer(&ctx, id, proposer, max_reward).await,
            ProjectCmd::Status { id } => status(&ctx, id).await,
        }
    }
}

/// The inputs of `project create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// keccak256 of the model specification (32-byte hex)
    #[arg(long, value_name = "HASH")]
    pub spec_hash: B256,
    /// Where the model specification can be fetched
    #[arg(long, value_name = "URI")]
    pub model_uri: String,
    /// Merkle root of the dataset manifest (32-byte hex)
    #[arg(long, value_name = "HASH")]
    pub dataset_root: B256,
    /// Merkle root of the initial global model (32-byte hex)
    #[arg(long, value_name = "HASH")]
    pub initial_model_root: B256,
    /// Inference price in ATN per request (decimal)
    #[arg(long, value_parser = atn_arg, value_name = "ATN", allow_hyphen_values = true)]
    pub price: U256,
    /// Phase lengths in blocks: commit,gt-reveal,sol-reveal,vote-commit,vote-reveal,publish
    #[arg(long, value_delimiter = ',', num_args = 1.., default_values_t = DEFAULT_WINDOWS, value_name = "BLOCKS")]
    pub windows: Vec<u32>,
    /// Reward split in basis points summing to 10000: solver,coordinator,proposer,aggregator
    #[arg(long, value_delimiter = ',', num_args = 1.., default_values_t = DEFAULT_SPLIT, value_name = "BPS")]
    pub split: Vec<u16>,
    /// Most solvers per task (1..=16)
    #[arg(long, default_value_t = 16)]
    pub max_solvers: u8,
    /// Revealed coordinator votes a task needs to settle (1..=16)
    #[arg(long, default_value_t = 2)]
    pub min_votes: u8,
    /// Pipelined rounds: 1 proposes the next task while the last one is revealed, scored and
    /// aggregated, and applies its delta to the model that round produced (bounded staleness 1);
    /// 0 runs rounds in sequence
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub max_staleness: u8,
}

fn split_json(s: &RewardSplit) -> serde_json::Value {
    json!({
        "solver_bps": s.solverBps,
        "coordinator_bps": s.coordinatorBps,
        "proposer_bps": s.proposerBps,
        "aggregator_bps": s.aggregatorBps,
    })
}

fn windows_json(w: &Windows) -> serde_json::Value {
    json!({
        "commit": w.commit,
        "gt_reveal": w.gtReveal,
        "sol_reveal": w.solReveal,
        "vote_commit": w.voteCommit,
        "vote_reveal": w.voteReveal,
        "publish": w.publish,
    })
}

/// Checks the shape of `--split` and `--windows` before anything is sent.
pub fn build_params(args: &CreateArgs) -> Result<CreateProjectParams, CommandError> {
    Ok(CreateProjectParams {
        modelSpecHash: args.spec_hash,
        modelURI: args.model_uri.clone(),
        datasetRoot: args.dataset_root,
        initialModelRoot: args.initial_model_root,
        inferencePrice: args.price,
        split: parse_split(&args.split)?,
        windows: parse_windows(&args.windows)?,
        maxSolvers: args.max_solvers,
        minVotes: args.min_votes,
        maxStaleness: args.max_staleness,
    })
}

/// `--split`: four basis-point values (solver,coordinator,proposer,aggregator) summing to 10000.
pub fn parse_split(split: &[u16]) -> Result<RewardSplit, CommandError> {
    let [solver, coordinator, proposer, aggregator] = <[u16; 4]>::try_from(split).map_err(|_| {
        CommandError::Invalid(format!(
            "--split takes 4 basis-point values (solver,coordinator,proposer,aggregator), got {}",
            split.len()
        ))
    })?;
    let sum: u32 = split.iter().map(|&b| u32::from(b)).sum();
    if sum != 10_000 {
        return Err(CommandError::Invalid(format!(
            "--split must sum to 10000 basis points, got {sum}"
        )));
    }
    Ok(RewardSplit {
        solverBps: solver,
        coordinatorBps: coordinator,
        proposerBps: proposer,
        aggregatorBps: aggregator,
    })
}

/// `--windows`: six block counts (commit,gt-reveal,sol-reveal,vote-commit,vote-reveal,publish).
pub fn parse_windows(windows: &[u32]) -> Result<Windows, CommandError> {
    let [commit, gt_reveal, sol_reveal, vote_commit, vote_reveal, publish] =
        <[u32; 6]>::try_from(windows).map_err(|_| {
            CommandError::Invalid(format!(
                "--windows takes 6 block counts (commit,gt-reveal,sol-reveal,vote-commit,vote-reveal,publish), got {}",
                windows.len()
            ))
        })?;
    Ok(Windows {
        commit,
        gtReveal: gt_reveal,
        solReveal: sol_reveal,
        voteCommit: vote_commit,
        voteReveal: vote_reveal,
        publish,
    })
}

/// `autonet project create`.
pub async fn create(ctx: &Context, args: &CreateArgs) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let params = build_params(args)?;
    let project = Project::new(ctx.contracts.project, &ctx.provider);
    let created =
        send_and_confirm::<Project::ProjectCreated, _, _>(&project.createProject(params), &ctx.tx)
            .await
            .map_err(|e| CommandError::tx("creating the project", e))?;
    let id = created.event.projectId;
    let tx = created.receipt.transaction_hash;
    Ok(Report {
        text: format!(
            "created project {id} owned by {me}\nfund it with `autonet project fund {id} --amount <ATN>`\ntx {tx}"
        ),
        json: json!({ "project_id": id.to_string(), "owner": me.to_string(), "tx": tx }),
    })
}

/// `autonet project fund`: approves the Project contract if needed, then funds the budget.
pub async fn fund(ctx: &Context, id: U256, amount: U256) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let c = &ctx.contracts;
    let project = Project::new(c.project, &ctx.provider);
    let token = ATNToken::new(c.atn_token, &ctx.provider);
    let exists = project
        .exists(id)
        .call()
        .await
        .map_err(|e| CommandError::read(format!("project {id}"), e))?;
    if !exists {
        return Err(CommandError::Invalid(format!(
            "project {id} does not exist (projects are numbered from 1; `autonet status` shows the latest)"
        )));
    }
    let allowance = token
        .allowance(me, c.project)
        .call()
        .await
        .map_err(|e| CommandError::read("the ATN allowance", e))?;
    if allowance < amount {
        send_and_confirm::<ATNToken::Approval, _, _>(&token.approve(c.project, amount), &ctx.tx)
            .await
            .map_err(|e| CommandError::tx(format!("approving {}", atn(amount)), e))?;
    }
    let funded =
        send_and_confirm::<Project::ProjectFunded, _, _>(&project.fund(id, amount), &ctx.tx)
            .await
            .map_err(|e| {
                let hint = e
                    .reverted_with::<ATNToken::ERC20InsufficientBalance>()
                    .is_some()
                    .then(|| format!("{me} does not hold {}", atn(amount)));
                CommandError::tx_with_hint(
                    format!("funding project {id} with {}", atn(amount)),
                    e,
                    hint,
                )
            })?;
    let tx = funded.receipt.transaction_hash;
    Ok(Report {
        text: format!(
            "funded project {id} with {}\nbudget now {}\ntx {tx}",
            atn(funded.event.amount),
            atn(funded.event.budget)
        ),
        json: json!({
            "project_id": id.to_string(),
            "amount": format_atn(funded.event.amount),
            "budget": format_atn(funded.event.budget),
            "tx": tx,
        }),
    })
}

/// `autonet project approve-proposer`: the owner sets how much `proposer` may reserve per task.
pub async fn approve_proposer(
    ctx: &Context,
    id: U256,
    proposer: Address,
    max_reward: U256,
) -> Result<Report, CommandError> {
    let me = ctx.me()?;
    let project = Project::new(ctx.contracts.project, &ctx.provider);
    let set = send_and_confirm::<Project::ProposerCapSet, _, _>(
        &project.setProposerCap(id, proposer, max_reward),
        &ctx.tx,
    )
    .await
    .map_err(|e| {
        let hint = match e.reverted_as::<Project::ProjectErrors>() {
            Some(Project::ProjectErrors::ProjectNotOwner(_)) => Some(format!(
                "only the project's owner can approve proposers; {me} is not the owner of project {id} (`autonet project status {id}` shows it)"
            )),
            Some(Project::ProjectErrors::ProjectUnknown(_)) => Some(format!("project {id} does not exist")),
            _ => None,
        };
        CommandError::tx_with_hint(format!("approving proposer {proposer} on project {id}"), e, hint)
    })?;
    let tx = set.receipt.transaction_hash;
    let text = if max_reward.is_zero() {
        format!("proposer {proposer} may no longer propose tasks on project {id}\ntx {tx}")
    } else {
        format!(
            "proposer {proposer} may propose tasks of up to {} each on project {id}\ntx {tx}",
            atn(max_reward)
        )
    };
    Ok(Report {
        text,
        json: json!({
            "project_id": id.to_string(),
            "proposer": proposer.to_string(),
            "max_reward": format_atn(max_reward),
            "tx": tx,
        }),
    })
}

/// `autonet project status`.
pub async fn status(ctx: &Context, id: U256) -> Result<Report, CommandError> {
    let project = Project::new(ctx.contracts.project, &ctx.provider);
    let p = project
        .getProject(id)
        .call()
        .await
        .map_err(|e| CommandError::read(format!("project {id}"), e))?;
    let s = &p.split;
    let w = &p.windows;
    let text = format!(
        "project {id}
  owner          {}
  budget         {}
  reserved       {}
  paid           {}
  funded         {}
  model root     {}
  model spec     {} ({})
  dataset root   {}
  price          {} per inference
  split (bps)    solver {} / coordinator {} / proposer {} / aggregator {}
  windows        commit {} / gt-reveal {} / sol-reveal {} / vote-commit {} / vote-reveal {} / publish {} blocks
  task limits    up to {} solvers, at least {} votes",
        p.owner,
        atn(p.budget),
        atn(p.reserved),
        atn(p.paid),
        atn(p.funded),
        p.modelRoot,
        p.modelSpecHash,
        p.modelURI,
        p.datasetRoot,
        atn(p.inferencePrice),
        s.solverBps,
        s.coordinatorBps,
        s.proposerBps,
        s.aggregatorBps,
        w.commit,
        w.gtReveal,
        w.solReveal,
        w.voteCommit,
        w.voteReveal,
        w.publish,
        p.maxSolvers,
        p.minVotes,
    );
    Ok(Report {
        text,
        json: json!({
            "project_id": id.to_string(),
            "owner": p.owner.to_string(),
            "budget": format_atn(p.budget),
            "reserved": format_atn(p.reserved),
            "paid": format_atn(p.paid),
            "funded": format_atn(p.funded),
            "model_root": p.modelRoot,
            "model_spec_hash": p.modelSpecHash,
            "model_uri": p.modelURI,
            "dataset_root": p.datasetRoot,
            "price": format_atn(p.inferencePrice),
            "split": split_json(s),
            "windows": windows_json(w),
            "max_solvers": p.maxSolvers,
            "min_votes": p.minVotes,
            "max_staleness": p.maxStaleness,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CreateArgs {
        CreateArgs {
            spec_hash: B256::repeat_byte(1),
            model_uri: "ipfs://spec".into(),
            dataset_root: B256::repeat_byte(2),
            initial_model_root: B256::repeat_byte(3),
            price: U256::from(5),
            windows: DEFAULT_WINDOWS.to_vec(),
            split: DEFAULT_SPLIT.to_vec(),
            max_solvers: 16,
            min_votes: 2,
            max_staleness: 0,
        }
    }

    #[test]
    fn defaults_build_valid_params() {
        let p = build_params(&args()).unwrap();
        assert_eq!(p.split.solverBps, 7_000);
        assert_eq!(p.windows.publish, 200);
        assert_eq!(p.maxSolvers, 16);
    }

    #[test]
    fn malformed_split_and_windows_are_refused_before_sending() {
        let mut a = args();
        a.split = vec![5_000, 5_000, 1];
        assert!(
            build_params(&a)
                .unwrap_err()
                .to_string()
                .contains("4 basis-point")
        );
        a.split = vec![5_000, 5_000, 1, 0];
        assert!(build_params(&a).unwrap_err().to_string().contains("10000"));
        let mut a = args();
        a.windows = vec![1, 2, 3];
        assert!(
            build_params(&a)
                .unwrap_err()
                .to_string()
                .contains("6 block")
        );
    }
}
