//! End to end: real anvil, real contracts, `autonet run` agent processes training the `tiny`
//! model on the reference corpus, faults injected from outside (SIGKILL) and inside (hidden
//! `--fault` flags).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use autonet_agents::TrainingSpec;
use autonet_bindings::{Rewards, TaskManager};
use autonet_node::network::{Network, NetworkOptions, tail};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn options(
    dir: &std::path::Path,
    solvers: usize,
    coordinators: usize,
    rounds: u64,
    windows: [u32; 6],
) -> NetworkOptions {
    let mut spec = TrainingSpec::for_preset("tiny").unwrap();
    spec.steps = 8;
    spec.corpus_max_bytes = 256 * 1024;
    NetworkOptions {
        repo: autonet_test_utils::repo_root(),
        dir: dir.to_path_buf(),
        agent_bin: env!("CARGO_BIN_EXE_autonet").into(),
        spec,
        solvers,
        coordinators,
        windows,
        min_votes: 2.min(coordinators as u8),
        rounds,
        block_time: 1,
        chain_id: 41_000
            + u64::from(std::process::id() % 1000) * 10
            + NEXT.fetch_add(1, Ordering::Relaxed),
        reward_atn: 100,
        extra_args: BTreeMap::new(),
    }
}

const ROUND: Duration = Duration::from_secs(240);

async fn count_logs<E: alloy::sol_types::SolEvent>(
    net: &Network,
    contract: Address,
    pred: impl Fn(&E) -> bool,
) -> usize {
    net.logs::<E>(contract)
        .await
        .unwrap()
        .iter()
        .filter(|(_, e)| pred(e))
        .count()
}

/// Every agent's last log lines (for failure messages).
fn dump(net: &Network) -> String {
    net.agents
        .values()
        .map(|a| {
            format!(
                "--- {}\n{}",
                a.name,
                tail(&a.state_dir.join("agent.log"), 25)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn logs_of(net: &Network, name: &str) -> String {
    std::fs::read_to_string(net.agents[name].state_dir.join("agent.log")).unwrap_or_default()
}

/// Two solvers, two coordinators, two rounds. Coordinator 1 is SIGKILLed right after committing
/// its vote and restarted: it reveals from its database, commits nothing twice, and (both
/// coordinators' stake being needed) attests. The aggregator serves corrupted shards: in round 2
/// the solvers reject them and rebuild the model from the coordinators' copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_complete_through_a_sigkilled_coordinator_and_a_corrupting_shard_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2, 2, 2, [8, 4, 4, 10, 10, 20]);
    opts.extra_args.insert(
        "aggregator".into(),
        vec!["--fault".into(), "corrupt-shards".into()],
    );
    let mut net = Network::launch(opts).await.unwrap();
    let tm = net.contracts.task_manager;
    let c1 = net.agents["coordinator-1"].address();

    // Kill coordinator 1 the moment its vote commitment is on chain.
    let started = Instant::now();
    while count_logs::<TaskManager::VoteCommitted>(&net, tm, |e| {
        e.coordinator == c1 && e.taskId == U256::from(1)
    })
    .await
        == 0
    {
        net.check_alive().unwrap();
        assert!(
            started.elapsed() < ROUND,
            "coordinator 1 never committed a vote"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    net.kill("coordinator-1").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    net.start("coordinator-1").unwrap();

    for task in 1..=2 {
        let outcome = net
            .wait_task_end(task, ROUND)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", dump(&net)));
        assert_eq!(outcome, "finalized", "task {task}\n{}", dump(&net));
        if let Err(e) = net.wait_model_for(task, ROUND).await {
            panic!("{e}\n{}", dump(&net));
        }
    }
    // Exactly one commitment and one reveal per task from the restarted coordinator.
    for task in 1..=2u64 {
        let id = U256::from(task);
        assert_eq!(
            count_logs::<TaskManager::VoteCommitted>(&net, tm, |e| e.coordinator == c1
                && e.taskId == id)
            .await,
            1
        );
        assert_eq!(
            count_logs::<TaskManager::VoteRevealed>(&net, tm, |e| e.coordinator == c1
                && e.taskId == id)
            .await,
            1
        );
    }
    let log = logs_of(&net, "coordinator-1");
    assert!(
        log.matches("agent started").count() >= 2,
        "coordinator 1 was not restarted:\n{log}"
    );
    // Round 2's base model came through the verifying client despite the corrupt server.
    let solver_log = logs_of(&net, "solver-1") + &logs_of(&net, "solver-2");
    assert!(
        solver_log.contains("shard rejected"),
        "no corrupted shard was seen:\n{solver_log}"
    );
    for name in [
        "solver-1",
        "solver-2",
        "coordinator-1",
        "coordinator-2",
        "proposer",
        "aggregator",
    ] {
        assert!(
            net.claimable(net.agents[name].address()).await.unwrap() > U256::ZERO,
            "{name} earned nothing"
        );
    }
}

/// A solver that commits but never reveals: the round settles among the others, the silent
/// solver is slashed and earns nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_solver_that_never_reveals_is_slashed_and_the_round_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 3, 2, 1, [8, 4, 4, 6, 4, 20]);
    opts.extra_args.insert(
        "solver-3".into(),
        vec!["--fault".into(), "skip-solution-reveal".into()],
    );
    let mut net = Network::launch(opts).await.unwrap();
    assert_eq!(
        net.wait_task_end(1, ROUND).await.unwrap(),
        "finalized",
        "{}",
        dump(&net)
    );
    if let Err(e) = net.wait_model_for(1, ROUND).await {
        panic!("{e}\n{}", dump(&net));
    }
    let silent = net.agents["solver-3"].address();
    let tm = net.contracts.task_manager;
    assert_eq!(
        count_logs::<TaskManager::SolutionCommitted>(&net, tm, |e| e.solver == silent).await,
        1
    );
    assert_eq!(
        count_logs::<TaskManager::SolutionRevealed>(&net, tm, |e| e.solver == silent).await,
        0
    );
    assert_eq!(
        count_logs::<TaskManager::MissedRevealSlashed>(&net, tm, |e| e.account == silent).await,
        1
    );
    assert_eq!(
        count_logs::<Rewards::SolverRewarded>(&net, net.contracts.rewards, |e| e.solver == silent)
            .await,
        0
    );
    assert_eq!(net.claimable(silent).await.unwrap(), U256::ZERO);
    for name in ["solver-1", "solver-2"] {
        assert!(
            net.claimable(net.agents[name].address()).await.unwrap() > U256::ZERO,
            "{name} earned nothing"
        );
    }
}

/// A proposer that never reveals its evaluation: the task is cancelled, the proposer slashed,
/// the reward returned to the budget; nothing is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposer_that_never_reveals_is_slashed_and_the_task_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2, 2, 1, [8, 4, 4, 6, 4, 20]);
    opts.extra_args.insert(
        "proposer".into(),
        vec!["--fault".into(), "skip-gt-reveal".into()],
    );
    let mut net = Network::launch(opts).await.unwrap();
    assert_eq!(net.wait_task_end(1, ROUND).await.unwrap(), "cancelled");
    let proposer = net.agents["proposer"].address();
    let cancelled = net
        .logs::<TaskManager::TaskCancelled>(net.contracts.task_manager)
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].1.proposer, proposer);
    assert!(
        cancelled[0].1.slashed > U256::ZERO,
        "the proposer was not slashed"
    );
    // Solvers committed but had nothing to reveal against; nobody was paid.
    assert!(
        count_logs::<TaskManager::SolutionCommitted>(&net, net.contracts.task_manager, |_| true)
            .await
            >= 1
    );
    for agent in net.agents.values() {
        assert_eq!(
            net.claimable(agent.address()).await.unwrap(),
            U256::ZERO,
            "{} was paid",
            agent.name
        );
    }
    let log = logs_of(&net, "proposer");
    assert!(log.contains("never reveal the ground truth"), "{log}");
}
