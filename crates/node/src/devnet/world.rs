//! The devnet's project of another task kind (`autonet devnet --task-kind substrate`): the
//! world-model substrate as a WASM cartridge, trained after the LM's rounds by its own agents
//! (`world-…`) and the main coordinator accounts, through the same contracts. Per round it prints
//! the world's gap on held-out turns, each solver's mint and novelty (from a coordinator's vote)
//! and its reward (from `Rewards`), and fails unless the gap falls every round and the solvers
//! are paid.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use autonet_agents::db::AgentDb;
use autonet_agents::roles::ports::Vote;
use autonet_agents::spec::Dataset;
use autonet_bindings::TaskManager;
use autonet_substrate::embed::embed;
use autonet_substrate::{Observation, World};
use serde_json::{Value, json};

use super::network::{Network, NetworkError, WORLD_PREFIX};
use crate::amount::format_atn;

/// Held-out turns the devnet measures the world's gap on (the same every round).
const MEASURED_TURNS: usize = 64;

fn other(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Other(e.to_string())
}

/// The gap of the state `bytes` on `held`.
fn gap_of(bytes: &[u8], held: &[Observation]) -> Result<(u64, usize), NetworkError> {
    let world = autonet_substrate::kind::state(bytes).map_err(other)?;
    Ok((world.gap(held), world.claims()))
}

/// Starts the project's agents, follows its rounds (tasks `first_task + 1 ..`), and returns the
/// summary's text and JSON.
pub async fn train(net: &mut Network, first_task: u64) -> Result<(String, Value), NetworkError> {
    let (Some(w), Some(id)) = (net.opts.world.clone(), net.world_project) else {
        return Err(other("this network has no cartridge-kind project"));
    };
    let name = w.spec.kind.name().to_string();
    println!(
        "{name}: starting the {name} project's agents (project {id}, cartridge {}, {} solvers, {} coordinators, {} rounds)",
        w.spec
            .cartridge()
            .map(|c| c.module_hash.to_string())
            .unwrap_or_default(),
        w.solvers,
        w.coordinators,
        w.rounds
    );
    net.start_world().await?;
    let data =
        Dataset::build(&w.spec, &autonet_agents::spec::default_workspace()).map_err(other)?;
    let held: Vec<Observation> = data
        .eval_turns(0, MEASURED_TURNS)
        .into_iter()
        .map(embed)
        .collect();
    let initial = World::seed().gap(&held);
    println!("{name} round 0: world gap {initial} on {MEASURED_TURNS} held-out turns (seed world)");
    let coordinator = net
        .agents
        .get(&format!("{WORLD_PREFIX}coordinator-1"))
        .ok_or_else(|| other("no world-coordinator-1"))?
        .state_dir
        .join("agent.sqlite");
    let names = net.names();
    let tm = TaskManager::new(net.contracts.task_manager, net.provider.clone());
    let round_blocks = u64::from(w.windows.iter().sum::<u32>()) + 30;
    let timeout = Duration::from_secs(round_blocks * net.opts.block_time.max(1) * 3 + 120);
    let mut previous = initial;
    let mut rounds = Vec::new();
    let mut text = String::new();
    for i in 1..=w.rounds {
        let task = first_task + i;
        let outcome = net.wait_task_end(task, timeout).await?;
        if outcome != "finalized" {
            return Err(other(format!(
                "{name} round {i}: task {task} was {outcome}; see the {WORLD_PREFIX}agents' logs in {}",
                net.opts.dir.display()
            )));
        }
        let root = net.wait_model_for(task, timeout).await?;
        let bytes = net
            .load_bytes(root)?
            .ok_or_else(|| other(format!("no agent holds state {root}")))?;
        let (gap, claims) = gap_of(&bytes, &held)?;
        let revealed: Vec<Address> = tm
            .revealedSolvers(U256::from(task))
            .call()
            .await
            .map_err(other)?;
        let db = AgentDb::open_read_only(&coordinator).map_err(other)?;
        let vote: Vote = db
            .action::<Vote>(&format!("vote:{task}"))
            .map_err(other)?
            .ok_or_else(|| {
                other(format!(
                    "world-coordinator-1 recorded no vote on task {task}"
                ))
            })?
            .data;
        let rewards = db.solver_rewards(task).map_err(other)?;
        let mut line = format!(
            "{name} round {i}: task {task} {outcome} — world gap {previous} → {gap} ({claims} sub-claims), state {root}\n"
        );
        let mut solvers = Vec::new();
        let mut paid = U256::ZERO;
        for (k, solver) in revealed.iter().enumerate() {
            let (mint, novelty) = vote.mints.get(k).copied().unwrap_or_default();
            let reward = rewards
                .iter()
                .find(|r| r.solver == *solver)
                .map(|r| r.amount)
                .unwrap_or_default();
            paid += reward;
            let who = names
                .get(solver)
                .cloned()
                .unwrap_or_else(|| solver.to_string());
            line.push_str(&format!(
                "    {who}: score {}, mint {mint}, novelty {novelty}, reward {} ATN\n",
                vote.scores.get(k).copied().unwrap_or_default(),
                format_atn(reward)
            ));
            solvers.push(json!({"solver": who, "address": solver.to_string(), "score": vote.scores.get(k), "mint": mint, "novelty": novelty, "reward_wei": reward.to_string()}));
        }
        print!("{line}");
        text.push_str(&format!("  {line}"));
        if gap >= previous {
            return Err(other(format!(
                "{name} round {i}: the world's gap did not fall ({previous} → {gap})"
            )));
        }
        if paid.is_zero() {
            return Err(other(format!(
                "{name} round {i}: no solver was rewarded on task {task}"
            )));
        }
        rounds.push(json!({"round": i, "task_id": task, "gap": gap, "claims": claims, "state": root.to_string(), "solvers": solvers}));
        previous = gap;
    }
    Ok((
        format!(
            "\n  {name} project {id} ({} rounds, cartridge {} bytes): world gap {initial} → {previous} on {MEASURED_TURNS} held-out turns\n{text}",
            w.rounds,
            std::fs::metadata(&w.module).map(|m| m.len()).unwrap_or(0)
        ),
        json!({"kind": name, "project_id": id, "initial_gap": initial, "rounds": rounds}),
    ))
}
