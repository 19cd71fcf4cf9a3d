//! `autonet join` against a real anvil with the real contracts: a fresh node funded by the
//! devnet faucet, staked and registered, then re-joined as a no-op; a key-less, fund-less node
//! without a faucet told exactly what to do; the faucet refusing a second drain.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use autonet_bindings::{ATNToken, AgentIdentity, ParticipantStaking};
use autonet_node::devnet::faucet::{Faucet, FaucetLimits};
use autonet_test_utils::TestChain;
use serde_json::Value;

const ENV: [&str; 9] = [
    "AUTONET_RPC_URL",
    "AUTONET_REGISTRY",
    "AUTONET_DEPLOYMENT",
    "AUTONET_CONFIG",
    "AUTONET_PRIVATE_KEY",
    "AUTONET_ACCOUNT",
    "AUTONET_KEYSTORE_DIR",
    "AUTONET_FAUCET",
    "AUTONET_STATE_DIR",
];

fn unit() -> U256 {
    U256::from(10).pow(U256::from(18))
}

/// `autonet` on `chain` with keystores in `keys` (password `pw`), no other operator settings.
fn autonet(chain: &TestChain, keys: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autonet"));
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd.args(["--rpc-url", &chain.rpc_url(), "--registry"])
        .arg(chain.deployment.contracts.registry.to_string())
        .arg("--keystore-dir")
        .arg(keys)
        .env("AUTONET_KEYSTORE_PASSWORD", "pw")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args).output().expect("the autonet binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn count<E: SolEvent>(chain: &TestChain, contract: Address, who: Address) -> usize {
    let provider = ProviderBuilder::new().connect_http(chain.rpc_url().parse().unwrap());
    let logs = provider
        .get_logs(
            &Filter::new()
                .address(contract)
                .event_signature(E::SIGNATURE_HASH)
                .from_block(0),
        )
        .await
        .unwrap();
    logs.iter()
        .filter(|l| l.topics().iter().any(|t| *t == who.into_word()))
        .count()
}

async fn stake_of(chain: &TestChain, who: Address) -> U256 {
    let provider = ProviderBuilder::new().connect_http(chain.rpc_url().parse().unwrap());
    ParticipantStaking::new(chain.deployment.contracts.staking, &provider)
        .stakeOf(who)
        .call()
        .await
        .unwrap()
}

async fn faucet(chain: &TestChain, limits: FaucetLimits) -> Faucet {
    Faucet::start(
        &chain.rpc_url(),
        chain.deployment.contracts.atn_token,
        chain.signer(0),
        limits,
    )
    .await
    .unwrap()
}

/// Governance approves this build's code (the integrity step passes for real).
fn approve_this_build(chain: &TestChain, keys: &Path) {
    let mut cmd = autonet(chain, keys);
    cmd.env(
        "AUTONET_PRIVATE_KEY",
        chain.signer(0).to_bytes().to_string(),
    );
    let o = run(cmd, &["gov", "pass", "code-hash"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_funds_stakes_and_registers_a_fresh_node_then_a_rerun_is_a_no_op() {
    let chain = TestChain::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let state = dir.path().join("solver");
    approve_this_build(&chain, &keys);
    let faucet = faucet(&chain, FaucetLimits::default()).await;
    let join = |extra: &[&str]| {
        let mut args = vec![
            "join",
            "--role",
            "solver",
            "--state-dir",
            state.to_str().unwrap(),
            "--faucet",
            &faucet.url,
            "--json",
        ];
        args.extend(extra);
        let o = run(autonet(&chain, &keys), &args);
        assert!(o.status.success(), "{}", text(&o));
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        (j, String::from_utf8_lossy(&o.stderr).into_owned())
    };

    let (first, progress) = join(&["--no-start"]);
    println!("first join:\n{progress}");
    let me: Address = first["address"].as_str().unwrap().parse().unwrap();
    for step in [
        "[1/7] key",
        "new keystore `autonet-solver`",
        "[3/7] funds     … from faucet",
        "[4/7] stake     … staked 50 ATN",
        "[5/7] identity  … registered agent #",
        "[6/7] integrity … code",
        "[7/7] agent     … not started (--no-start)",
    ] {
        assert!(progress.contains(step), "{step}\n{progress}");
    }
    assert_eq!(first["keystore"]["created"], true);
    assert_eq!(first["funds"]["source"], "faucet");
    assert!(first["stake"]["tx"].is_string(), "{first}");
    assert_eq!(first["identity"]["registered_now"], true);
    assert_eq!(stake_of(&chain, me).await, U256::from(50) * unit());
    let c = &chain.deployment.contracts;
    assert_eq!(
        count::<ParticipantStaking::Staked>(&chain, c.staking, me).await,
        1
    );
    assert_eq!(
        count::<AgentIdentity::Registered>(&chain, c.identity, me).await,
        1
    );

    // The same command again: the same key, nothing sent.
    let (again, progress) = join(&["--no-start"]);
    println!("second join:\n{progress}");
    assert_eq!(again["address"], first["address"]);
    assert_eq!(again["keystore"]["created"], false);
    assert_eq!(again["funds"]["source"], "held");
    assert!(again["stake"]["tx"].is_null(), "{again}");
    assert_eq!(again["identity"]["registered_now"], false);
    for step in [
        "keystore `autonet-solver`",
        "[3/7] funds     … enough already ok",
        "[4/7] stake     … already 50 ATN",
        "already registered ok",
    ] {
        assert!(progress.contains(step), "{step}\n{progress}");
    }
    assert_eq!(
        count::<ParticipantStaking::Staked>(&chain, c.staking, me).await,
        1
    );
    assert_eq!(
        count::<AgentIdentity::Registered>(&chain, c.identity, me).await,
        1
    );

    // With an agent holding the state directory, a join that would start one says so instead.
    let held = match autonet_node::commands::agent::lock_state_dir(&state).unwrap() {
        autonet_node::commands::agent::StateDirLock::Held(lock) => lock,
        busy => panic!("{busy:?}"),
    };
    let (running, progress) = join(&[]);
    println!("third join (agent running):\n{progress}");
    assert_eq!(running["agent"]["already_running"], true, "{running}");
    assert!(
        progress.contains("[7/7] agent     … already running"),
        "{progress}"
    );
    drop(held);
    assert_eq!(
        count::<ParticipantStaking::Staked>(&chain, c.staking, me).await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_fundless_join_without_a_faucet_says_what_to_do_and_stakes_nothing() {
    let chain = TestChain::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let state = dir.path().join("agg");
    let args = [
        "join",
        "--role",
        "aggregator",
        "--state-dir",
        state.to_str().unwrap(),
        "--no-start",
        "--dev-skip-integrity",
    ];
    let o = run(autonet(&chain, &keys), &args);
    println!("key-less, fund-less join:\n{}", text(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(out.contains("new keystore `autonet-aggregator`"), "{out}");
    let me: Address = out
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("the address is shown");
    for told in [
        &me.to_string()[..],
        "needs funds to join as an aggregator",
        "at least 0.05 ETH",
        "at least 1000 ATN",
        "--faucet <URL>",
        "--wait-funds <SECS>",
        "Nothing was staked",
    ] {
        assert!(err.contains(told), "{told}\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(stake_of(&chain, me).await, U256::ZERO);

    // Waiting: the funds arrive while join polls, and it goes on to stake.
    let mut cmd = autonet(&chain, &keys);
    cmd.args(args).args(["--wait-funds", "120"]);
    let waiting = std::thread::spawn(move || run(cmd, &[]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deployer = ProviderBuilder::new()
        .wallet(chain.signer(0))
        .connect_http(chain.rpc_url().parse().unwrap());
    let _: () = deployer
        .raw_request("anvil_setBalance".into(), (me, U256::from(1) * unit()))
        .await
        .unwrap();
    ATNToken::new(chain.deployment.contracts.atn_token, &deployer)
        .transfer(me, U256::from(1000) * unit())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let o = waiting.join().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&me.to_string()), "the same key: {out}");
    assert!(out.contains("waiting up to 120 s"), "{out}");
    assert!(out.contains("[4/7] stake     … staked 1000 ATN"), "{out}");
    assert_eq!(stake_of(&chain, me).await, U256::from(1000) * unit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_faucet_caps_a_grant_and_refuses_a_second_drain() {
    let chain = TestChain::start().unwrap();
    let faucet = faucet(
        &chain,
        FaucetLimits {
            eth: U256::from(2) * unit(),
            max_atn: U256::from(100) * unit(),
            ..FaucetLimits::default()
        },
    )
    .await;
    let who = Address::repeat_byte(0x42);
    let client = reqwest::Client::new();
    let ask = |body: String| {
        client
            .post(&faucet.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let drain = format!("{{\"address\":\"{who}\",\"atn\":\"1000000000\"}}");
    let first = ask(drain.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    let granted: Value = serde_json::from_str(&first.text().await.unwrap()).unwrap();
    assert_eq!(granted["atn"], "100", "capped: {granted}");
    assert_eq!(granted["eth"], "2", "{granted}");
    let second = ask(drain).await.unwrap();
    assert_eq!(second.status(), 429);
    let refused = second.text().await.unwrap();
    assert!(refused.contains("one grant per address"), "{refused}");
    let bad = ask("{\"address\":\"nope\"}".into()).await.unwrap();
    assert_eq!(bad.status(), 400);

    let provider = ProviderBuilder::new().connect_http(chain.rpc_url().parse().unwrap());
    let atn = ATNToken::new(chain.deployment.contracts.atn_token, &provider)
        .balanceOf(who)
        .call()
        .await
        .unwrap();
    assert_eq!(atn, U256::from(100) * unit(), "one grant only");
    assert_eq!(
        provider.get_balance(who).await.unwrap(),
        U256::from(2) * unit()
    );
}
