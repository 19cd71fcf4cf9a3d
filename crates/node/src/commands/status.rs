//! `autonet status`: what the chain says about this node and its operator.
//!
//! This module owns the command's arguments ([`StatusArgs`]) and `run`, and the one-screen
//! overview it prints: chain id and head, every contract address as the Registry lists it, the
//! operator's balance, role, stake, pending unbonds and claimable rewards, and the latest task
//! with its deadlines relative to the current block. It only reads.

use alloy::primitives::U256;
use autonet_bindings::{ATNToken, ParticipantStaking, Rewards, TaskManager};
use serde_json::{Value, json};

use super::{CommandError, Context, Report};
use crate::amount::{atn, format_atn};
use crate::config::EffectiveConfig;
use crate::format::{block_deadline, when};
use autonet_bindings::enums::{Role, TaskState};

/// `autonet status` arguments (it takes none of its own).
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {}

impl StatusArgs {
    /// Whether the command unlocks the operator's key: yes, to show its balance, role, stake and
    /// rewards.
    pub fn uses_key(&self) -> bool {
        true
    }

    /// Runs `autonet status`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let ctx = Context::connect(config).await?;
        status(&ctx).await
    }
}

/// `autonet status`.
pub async fn status(ctx: &Context) -> Result<Report, CommandError> {
    let c = &ctx.contracts;
    let (block, now) = ctx.head().await?;
    let mut text = format!(
        "chain {} at block {block} ({})\ncontracts (from the Registry at {}):\n",
        ctx.chain_id,
        crate::format::utc(now),
        c.registry
    );
    let mut contracts = serde_json::Map::new();
    for (name, address) in c.iter() {
        text.push_str(&format!("  {name:<20} {address}\n"));
        contracts.insert(name.to_owned(), json!(address.to_string()));
    }

    let account = match ctx.config.signer.as_ref().map(|s| s.address()) {
        None => {
            text.push_str(
                "account: none (pass --account or set AUTONET_PRIVATE_KEY to see balance, stake and rewards)\n",
            );
            Value::Null
        }
        Some(me) => {
            let token = ATNToken::new(c.atn_token, &ctx.provider);
            let staking = ParticipantStaking::new(c.staking, &ctx.provider);
            let rewards = Rewards::new(c.rewards, &ctx.provider);
            let read = |what: &'static str| move |e| CommandError::read(what, e);
            let balance = token
                .balanceOf(me)
                .call()
                .await
                .map_err(read("the ATN balance"))?;
            let role = staking.roleOf(me).call().await.map_err(read("the role"))?;
            let stake = staking
                .stakeOf(me)
                .call()
                .await
                .map_err(read("the stake"))?;
            let unbonds = staking
                .pendingUnbonds(me)
                .call()
                .await
                .map_err(read("the pending unbonds"))?;
            let claimable = rewards
                .claimable(me)
                .call()
                .await
                .map_err(read("the claimable rewards"))?;
            text.push_str(&format!(
                "account {me}\n  balance    {}\n  role       {}\n  stake      {}\n",
                atn(balance),
                Role::label_of(role),
                atn(stake)
            ));
            if unbonds.is_empty() {
                text.push_str("  unbonding  nothing\n");
            }
            for u in &unbonds {
                let ready = if u.maturesAt <= now {
                    ", ready to withdraw"
                } else {
                    ""
                };
                text.push_str(&format!(
                    "  unbonding  {}, withdrawable from {}{ready}\n",
                    atn(U256::from(u.amount)),
                    when(u.maturesAt, now)
                ));
            }
            text.push_str(&format!("  claimable  {}\n", atn(claimable)));
            json!({
                "address": me.to_string(),
                "balance": format_atn(balance),
                "role": Role::label_of(role),
                "stake": format_atn(stake),
                "unbonds": unbonds.iter().map(|u| json!({
                    "amount": format_atn(U256::from(u.amount)),
                    "matures_at": u.maturesAt,
                    "matured": u.maturesAt <= now,
                })).collect::<Vec<_>>(),
                "claimable": format_atn(claimable),
            })
        }
    };

    let tasks = TaskManager::new(c.task_manager, &ctx.provider);
    let count = tasks
        .taskCount()
        .call()
        .await
        .map_err(|e| CommandError::read("the task count", e))?;
    let latest = if count.is_zero() {
        text.push_str("latest task: none yet\n");
        Value::Null
    } else {
        let t = tasks
            .getTask(count)
            .call()
            .await
            .map_err(|e| CommandError::read(format!("task {count}"), e))?;
        let state = TaskState::label_of(t.state);
        let d = &t.deadlines;
        let phases = [
            ("commit", d.commitEnd),
            ("sol_reveal", d.solRevealEnd),
            ("gt_reveal", d.gtRevealEnd),
            ("vote_commit", d.voteCommitEnd),
            ("vote_reveal", d.voteRevealEnd),
        ];
        text.push_str(&format!(
            "latest task {count} (project {}, proposer {})\n  state      {state}\n  reward     {}\n  solvers    {} committed, {} revealed (max {})\n  votes      {} committed, {} revealed (min {})\n",
            t.projectId,
            t.proposer,
            atn(t.reward),
            t.numCommitted,
            t.numRevealed,
            t.maxSolvers,
            t.numVoteCommits,
            t.numVoteReveals,
            t.minVotes,
        ));
        for (phase, end) in phases {
            text.push_str(&format!(
                "  {:<12} ends at {}\n",
                phase.replace('_', "-"),
                block_deadline(end, block)
            ));
        }
        json!({
            "id": count.to_string(),
            "project_id": t.projectId.to_string(),
            "proposer": t.proposer.to_string(),
            "state": state,
            "reward": format_atn(t.reward),
            "deadlines": phases.iter().map(|(p, end)| (format!("{p}_end"), json!({
                "block": end,
                "blocks_left": end.saturating_sub(block),
            }))).collect::<serde_json::Map<_, _>>(),
        })
    };

    Ok(Report {
        text,
        json: json!({
            "chain_id": ctx.chain_id,
            "block": block,
            "timestamp": now,
            "contracts": contracts,
            "account": account,
            "latest_task": latest,
        }),
    })
}
