//! End to end: real anvil, real contracts, `autonet run` agent processes training the `tiny`
//! model on the reference corpus, faults injected from outside (SIGKILL) and inside (hidden
//! `--fault` flags).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use autonet_agents::TrainingSpec;
use autonet_bindings::{Rewards, TaskManager};
use autonet_node::devnet::network::{Network, NetworkOptions, tail};

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
        max_staleness: 0,
        rounds,
        block_time: 1,
        chain_id: 41_000
            + u64::from(std::process::id() % 1000) * 10
            + NEXT.fetch_add(1, Ordering::Relaxed),
        reward_atn: 100,
        extra_args: BTreeMap::new(),
        code_hash: None,
        start_agents: true,
        netns: false,
        draft: None,
        world: None,
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

/// Runs the `autonet` CLI against the network as `key` (the deployer holds the votes).
fn cli(net: &Network, key: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_autonet"))
        .args(["--rpc-url", &net.rpc_url, "--registry"])
        .arg(net.contracts.registry.to_string())
        .args(args)
        .env("AUTONET_PRIVATE_KEY", key)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Waits for agent `name` to exit on its own; returns whether it succeeded.
async fn wait_exit(net: &mut Network, name: &str) -> bool {
    let started = Instant::now();
    loop {
        let child = net.agents.get_mut(name).unwrap().child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            net.agents.get_mut(name).unwrap().child = None;
            return status.success();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{name} kept running:\n{}",
            logs_of(net, name)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fail-closed integrity: with another hash published for its version, a staked role refuses to
/// start (and `integrity check` fails) unless the loud development flag is given; once a real
/// governance proposal publishes its fingerprint, it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_code_is_not_approved_refuses_to_start_until_governance_approves_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 1, 1, 1, [8, 4, 4, 6, 4, 20]);
    let other_release = alloy::primitives::B256::repeat_byte(0xee);
    opts.code_hash = Some(other_release);
    opts.start_agents = false;
    let mut net = Network::launch(opts).await.unwrap();
    let deployer = autonet_node::devnet::network::DEPLOYER_KEY;

    net.start("solver-1").unwrap();
    assert!(
        !wait_exit(&mut net, "solver-1").await,
        "an unapproved node started"
    );
    let log = logs_of(&net, "solver-1");
    assert!(log.contains("refusing to start the solver role"), "{log}");
    assert!(log.contains("node.code.hash.0.1.0"), "{log}");
    assert!(log.contains(&other_release.to_string()), "{log}");
    assert!(!net.agents["solver-1"].state_dir.join("ready").exists());
    let check = cli(&net, deployer, &["integrity", "check"]);
    assert!(!check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("code not approved"),
        "{}",
        text(&check)
    );

    // The development escape hatch starts, loudly.
    let args = net.agents["solver-1"].args.clone();
    net.agents
        .get_mut("solver-1")
        .unwrap()
        .args
        .push("--dev-skip-integrity".into());
    net.start("solver-1").unwrap();
    net.wait_ready(&["solver-1".to_string()], Duration::from_secs(120))
        .await
        .unwrap();
    net.kill("solver-1").unwrap();
    assert!(logs_of(&net, "solver-1").contains("INTEGRITY CHECK DISABLED"));
    net.agents.get_mut("solver-1").unwrap().args = args;

    // Governance approves this build: propose, vote, queue, execute.
    let passed = cli(&net, deployer, &["gov", "pass", "code-hash"]);
    assert!(passed.status.success(), "{}", text(&passed));
    assert!(
        text(&passed).contains("executed at block"),
        "{}",
        text(&passed)
    );
    let listed = cli(&net, deployer, &["gov", "list"]);
    assert_eq!(
        text(&listed).matches("Executed").count(),
        2,
        "{}",
        text(&listed)
    );
    let check = cli(&net, deployer, &["integrity", "check"]);
    assert!(check.status.success(), "{}", text(&check));

    net.start("solver-1").unwrap();
    net.wait_ready(&["solver-1".to_string()], Duration::from_secs(120))
        .await
        .unwrap();
    assert!(logs_of(&net, "solver-1").contains("code approved"));
}

/// Governance changes reach running agents: new project windows (the next task's deadlines,
/// which the running solvers and coordinators follow to a finalized round), then a code-hash
/// rotation that makes the running agents stop taking new work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_changes_reach_running_agents() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2, 2, 1, [8, 4, 4, 6, 4, 20]);
    for name in [
        "proposer",
        "solver-1",
        "solver-2",
        "coordinator-1",
        "coordinator-2",
        "aggregator",
    ] {
        opts.extra_args.insert(
            name.into(),
            vec!["--integrity-recheck-secs".into(), "2".into()],
        );
    }
    let mut net = Network::launch(opts).await.unwrap();
    let deployer = autonet_node::devnet::network::DEPLOYER_KEY;
    assert_eq!(
        net.wait_task_end(1, ROUND).await.unwrap(),
        "finalized",
        "{}",
        dump(&net)
    );
    net.wait_model_for(1, ROUND)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dump(&net)));

    // Between rounds (the proposer stopped after one task): a longer commit window.
    let passed = cli(
        &net,
        deployer,
        &[
            "gov",
            "pass",
            "windows",
            "--project",
            "1",
            "--windows",
            "14,4,4,6,4,20",
        ],
    );
    assert!(passed.status.success(), "{}", text(&passed));
    let proposer = net.agents.get_mut("proposer").unwrap();
    let at = proposer
        .args
        .iter()
        .position(|a| a == "--max-tasks")
        .unwrap();
    proposer.args[at + 1] = "2".into();
    net.kill("proposer").unwrap();
    net.start("proposer").unwrap();
    assert_eq!(
        net.wait_task_end(2, ROUND).await.unwrap(),
        "finalized",
        "{}",
        dump(&net)
    );
    net.wait_model_for(2, ROUND)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dump(&net)));
    let proposed = net
        .logs::<TaskManager::TaskProposed>(net.contracts.task_manager)
        .await
        .unwrap();
    let window = |i: usize| proposed[i].1.deadlines.commitEnd - proposed[i].0.block_number.unwrap();
    assert_eq!(
        (window(0), window(1)),
        (8, 14),
        "commit windows of tasks 1 and 2"
    );

    // A release rotation that leaves this build unapproved: running agents take no new work.
    let passed = cli(
        &net,
        deployer,
        &[
            "gov",
            "pass",
            "code-hash",
            "--hash",
            &format!("{}", alloy::primitives::B256::repeat_byte(0xab)),
        ],
    );
    assert!(passed.status.success(), "{}", text(&passed));
    let started = Instant::now();
    while !logs_of(&net, "solver-1").contains("integrity re-check failed") {
        net.check_alive().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "solver-1 did not notice the rotation:\n{}",
            logs_of(&net, "solver-1")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
