//! End-to-end tests of the `autonet` binary: each runs the built executable as a subprocess
//! against a real anvil with the real contracts (`autonet-test-utils`), the way an operator would.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy::node_bindings::Anvil;
use anyhow::{Context, Result, ensure};
use autonet_bindings::Contracts;
use autonet_test_utils::{TestChain, foundry_tool, repo_root};
use serde_json::Value;

const ENV: [&str; 9] = [
    "AUTONET_RPC_URL",
    "AUTONET_REGISTRY",
    "AUTONET_DEPLOYMENT",
    "AUTONET_CONFIG",
    "AUTONET_PRIVATE_KEY",
    "AUTONET_ACCOUNT",
    "AUTONET_KEYSTORE_DIR",
    "AUTONET_KEYSTORE_PASSWORD",
    "RUST_LOG",
];

/// The binary with a clean environment (no operator settings leak in), run from `dir`.
fn autonet(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autonet"));
    cmd.current_dir(dir);
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The binary pointed at `chain`, signing with development account `account`.
fn on_chain(chain: &TestChain, account: usize) -> Command {
    let mut cmd = autonet(&std::env::temp_dir());
    cmd.env("AUTONET_RPC_URL", chain.rpc_url())
        .env(
            "AUTONET_REGISTRY",
            chain.deployment.contracts.registry.to_string(),
        )
        .env(
            "AUTONET_PRIVATE_KEY",
            chain.signer(account).to_bytes().to_string(),
        );
    cmd
}

/// Longest any one command of these tests may take (a cold `deploy` compiles every contract:
/// about 20 s on 2 cores).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(420);

/// Runs the command to completion. One that outlives [`COMMAND_TIMEOUT`] is killed and the test
/// fails with what it printed so far and the processes still running, instead of hanging.
fn run(cmd: &mut Command, args: &[&str]) -> Output {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the autonet binary runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for autonet") {
            break status;
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let processes = Command::new("ps")
                .args(["-eo", "pid,ppid,etime,args", "--forest"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!(
                "autonet {args:?} ran for over {COMMAND_TIMEOUT:?} and was killed; its stderr:\n{err}\n\
                 processes at the time:\n{processes}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and requires success; returns stdout.
fn ok(cmd: &mut Command, args: &[&str]) -> Result<String> {
    let o = run(cmd, args);
    ensure!(
        o.status.success(),
        "autonet {args:?} failed ({}):\n{}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    Ok(stdout(&o))
}

/// Runs with `--json` and parses stdout.
fn json(cmd: &mut Command, args: &[&str]) -> Result<Value> {
    let mut args = args.to_vec();
    args.push("--json");
    let out = ok(cmd, &args)?;
    serde_json::from_str(&out).with_context(|| format!("stdout is not JSON: {out}"))
}

/// Runs and requires failure; returns stderr.
fn fails(cmd: &mut Command, args: &[&str]) -> Result<String> {
    let o = run(cmd, args);
    ensure!(
        !o.status.success(),
        "autonet {args:?} unexpectedly succeeded:\n{}",
        stdout(&o)
    );
    Ok(stderr(&o))
}

#[test]
fn status_lists_every_contract_and_staking_shows_up_in_it() -> Result<()> {
    let chain = TestChain::start()?;
    let text = ok(&mut on_chain(&chain, 0), &["status"])?;
    for (name, address) in chain.deployment.contracts.iter() {
        assert!(text.contains(name), "{name} missing:\n{text}");
        assert!(
            text.contains(&address.to_string()),
            "{address} missing:\n{text}"
        );
    }
    assert!(text.contains("latest task: none yet"), "{text}");
    let s = json(&mut on_chain(&chain, 0), &["status"])?;
    assert_eq!(s["chain_id"], chain.chain_id());
    assert_eq!(
        s["contracts"].as_object().unwrap().len(),
        Contracts::NAMES.len()
    );
    assert_eq!(s["account"]["role"], "none");
    assert_eq!(s["account"]["stake"], "0");

    let out = ok(
        &mut on_chain(&chain, 0),
        &["stake", "--role", "solver", "--amount", "50"],
    )?;
    assert!(out.contains("stake now 50 ATN (role solver)"), "{out}");
    let s = json(&mut on_chain(&chain, 0), &["status"])?;
    assert_eq!(s["account"]["role"], "solver");
    assert_eq!(s["account"]["stake"], "50");
    let text = ok(&mut on_chain(&chain, 0), &["status"])?;
    assert!(text.contains("role       solver"), "{text}");

    // Below the minimum: a fresh account, a decoded error, a hint with the minimum in ATN.
    let err = fails(
        &mut on_chain(&chain, 1),
        &["stake", "--role", "solver", "--amount", "1"],
    )?;
    assert!(err.contains("StakingBelowMinimum"), "{err}");
    assert!(
        err.contains("the minimum stake for a solver is 50 ATN"),
        "{err}"
    );
    Ok(())
}

#[test]
fn project_create_fund_and_status_round_trip() -> Result<()> {
    let chain = TestChain::start()?;
    let (spec, data, model) = (
        format!("0x{}", "11".repeat(32)),
        format!("0x{}", "22".repeat(32)),
        format!("0x{}", "33".repeat(32)),
    );
    let created = json(
        &mut on_chain(&chain, 0),
        &[
            "project",
            "create",
            "--spec-hash",
            &spec,
            "--model-uri",
            "ipfs://autonet-spec",
            "--dataset-root",
            &data,
            "--initial-model-root",
            &model,
            "--price",
            "0.25",
            "--windows",
            "5,6,7,8,9,100",
            "--split",
            "6000,2000,1000,1000",
            "--max-solvers",
            "8",
            "--min-votes",
            "3",
        ],
    )?;
    let id = created["project_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| created["project_id"].to_string());
    let funded = json(
        &mut on_chain(&chain, 0),
        &["project", "fund", &id, "--amount", "1000.5"],
    )?;
    assert_eq!(funded["budget"], "1000.5");
    json(
        &mut on_chain(&chain, 0),
        &["project", "fund", &id, "--amount", "0.5"],
    )?;

    let p = json(&mut on_chain(&chain, 0), &["project", "status", &id])?;
    assert_eq!(p["owner"], chain.address(0).to_string());
    assert_eq!(p["budget"], "1001");
    assert_eq!(p["funded"], "1001");
    assert_eq!(p["reserved"], "0");
    assert_eq!(p["paid"], "0");
    assert_eq!(p["price"], "0.25");
    assert_eq!(p["model_root"], model);
    assert_eq!(p["model_spec_hash"], spec);
    assert_eq!(p["dataset_root"], data);
    assert_eq!(p["model_uri"], "ipfs://autonet-spec");
    assert_eq!(p["split"]["solver_bps"], 6000);
    assert_eq!(p["split"]["aggregator_bps"], 1000);
    assert_eq!(p["windows"]["commit"], 5);
    assert_eq!(p["windows"]["publish"], 100);
    assert_eq!(p["max_solvers"], 8);
    assert_eq!(p["min_votes"], 3);
    let text = ok(&mut on_chain(&chain, 0), &["project", "status", &id])?;
    assert!(text.contains("budget         1001 ATN"), "{text}");

    // A project that does not exist is reported as such.
    let err = fails(
        &mut on_chain(&chain, 0),
        &["project", "fund", "99", "--amount", "1"],
    )?;
    assert!(err.contains("project 99 does not exist"), "{err}");
    let err = fails(&mut on_chain(&chain, 0), &["project", "status", "99"])?;
    assert!(err.contains("ProjectUnknown"), "{err}");
    Ok(())
}

#[test]
fn unstake_then_withdraw_before_maturity_fails_clearly() -> Result<()> {
    let chain = TestChain::start()?;
    ok(
        &mut on_chain(&chain, 0),
        &["stake", "--role", "solver", "--amount", "60"],
    )?;
    let out = ok(&mut on_chain(&chain, 0), &["unstake", "--amount", "10"])?;
    assert!(out.contains("unbonding 10 ATN (role solver)"), "{out}");
    assert!(out.contains("withdrawable from"), "{out}");
    assert!(out.contains("UTC (in "), "{out}");
    assert!(out.contains("stake still bonded 50 ATN"), "{out}");

    let err = fails(&mut on_chain(&chain, 0), &["withdraw"])?;
    assert!(err.contains("StakingNothingToWithdraw"), "{err}");
    assert!(
        err.contains("nothing has matured yet: 10 ATN is unbonding"),
        "{err}"
    );

    let s = json(&mut on_chain(&chain, 0), &["status"])?;
    assert_eq!(s["account"]["unbonds"][0]["amount"], "10");
    assert_eq!(s["account"]["unbonds"][0]["matured"], false);

    // Without a key, signing commands say which variable to set.
    let mut no_key = on_chain(&chain, 0);
    no_key.env_remove("AUTONET_PRIVATE_KEY");
    let err = fails(&mut no_key, &["withdraw"])?;
    assert!(err.contains("set AUTONET_PRIVATE_KEY"), "{err}");
    Ok(())
}

#[test]
fn deploy_runs_the_forge_script_and_prints_the_addresses() -> Result<()> {
    let root = repo_root();
    let chain_id = 900_000 + u64::from(std::process::id() % 90_000);
    let anvil = Anvil::at(foundry_tool("anvil")?)
        .host("127.0.0.1")
        .chain_id(chain_id)
        .try_spawn()?;
    let key = autonet_test_utils::DEPLOYER_KEY;
    let out = run(
        autonet(&root)
            .env("AUTONET_RPC_URL", anvil.endpoint())
            .env("AUTONET_PRIVATE_KEY", key)
            .env("AUTONET_PROFILE", "devnet"),
        &[
            "deploy",
            "--json",
            "--",
            "--out",
            "target/forge-test/out",
            "--cache-path",
            "target/forge-test/cache",
        ],
    );
    let file = root.join(format!("deployments/{chain_id}.json"));
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir_all(root.join(format!("broadcast/Deploy.s.sol/{chain_id}")));
    let _ = std::fs::remove_dir(root.join("broadcast/Deploy.s.sol"));
    let _ = std::fs::remove_dir(root.join("broadcast"));
    ensure!(out.status.success(), "deploy failed:\n{}", stderr(&out));
    assert!(
        !stderr(&out).contains(&key[2..]),
        "the key leaked to the output"
    );
    let d: Value = serde_json::from_str(&stdout(&out))?;
    assert_eq!(d["deployment"]["chainId"], chain_id);
    // Every Registry contract plus the x402 channel pair.
    let contracts = d["deployment"]["contracts"].as_object().unwrap();
    assert_eq!(contracts.len(), Contracts::NAMES.len() + 2);
    assert!(
        contracts.contains_key("BatchSettlement")
            && contracts.contains_key("Erc3009DepositCollector")
    );

    // Without forge: a clear instruction.
    let empty = tempfile::tempdir()?;
    let err = fails(
        autonet(empty.path())
            .env("AUTONET_RPC_URL", anvil.endpoint())
            .env("AUTONET_PRIVATE_KEY", key),
        &["deploy", "--repo", empty.path().to_str().unwrap()],
    )?;
    assert!(err.contains("run `make setup`"), "{err}");
    Ok(())
}

#[test]
fn config_precedence_is_flag_then_env_then_file_then_default() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let toml = dir.path().join("node.toml");
    std::fs::write(
        &toml,
        "rpc_url = \"http://from-file:1\"\nregistry = \"0x00000000000000000000000000000000000000f1\"\n",
    )?;
    let toml = toml.to_str().unwrap();

    let c = json(&mut autonet(dir.path()), &["config"])?;
    assert_eq!(c["rpc_url"], "http://127.0.0.1:8545");
    assert_eq!(c["contracts"]["from"], "default_deployments_dir");

    let c = json(&mut autonet(dir.path()), &["config", "--config", toml])?;
    assert_eq!(c["rpc_url"], "http://from-file:1");
    assert_eq!(c["contracts"]["from"], "registry");

    let c = json(
        autonet(dir.path())
            .env("AUTONET_CONFIG", toml)
            .env("AUTONET_RPC_URL", "http://from-env:2"),
        &["config"],
    )?;
    assert_eq!(c["rpc_url"], "http://from-env:2");

    let c = json(
        autonet(dir.path())
            .env("AUTONET_CONFIG", toml)
            .env("AUTONET_RPC_URL", "http://from-env:2"),
        &["config", "--rpc-url", "http://from-flag:3"],
    )?;
    assert_eq!(c["rpc_url"], "http://from-flag:3");

    // The key is shown as its address, never as itself, also in debug logs.
    let key = autonet_test_utils::DEPLOYER_KEY;
    let o = run(
        autonet(dir.path()).env("AUTONET_PRIVATE_KEY", key),
        &["config", "--json", "-v"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains(&key[2..]), "{all}");
    assert!(all.contains("<redacted>"), "{all}");
    assert!(
        all.contains("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
        "{all}"
    );

    // A secret in the file is refused.
    std::fs::write(
        dir.path().join("bad.toml"),
        format!("private_key = \"{key}\"\n"),
    )?;
    let err = fails(
        &mut autonet(dir.path()),
        &["config", "--config", "bad.toml"],
    )?;
    assert!(err.contains("secrets are never read from files"), "{err}");
    assert!(!err.contains(&key[2..]), "{err}");
    Ok(())
}

#[test]
fn help_documents_every_command() -> Result<()> {
    let help = ok(&mut autonet(Path::new(".")), &["--help"])?;
    for word in [
        "status",
        "stake",
        "unstake",
        "withdraw",
        "project",
        "deploy",
        "--rpc-url",
        "--registry",
        "--deployment",
        "--config",
        "--json",
        "AUTONET_PRIVATE_KEY",
        "--account",
        "key",
        "Examples:",
    ] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
    let help = ok(
        &mut autonet(Path::new(".")),
        &["project", "create", "--help"],
    )?;
    for word in [
        "--spec-hash",
        "--windows",
        "--split",
        "--max-solvers",
        "--min-votes",
        "Example",
    ] {
        assert!(help.contains(word), "{word} missing:\n{help}");
    }
    let err = fails(
        &mut autonet(Path::new(".")),
        &[
            "stake",
            "--role",
            "solver",
            "--amount",
            "1.0000000000000000001",
        ],
    )?;
    assert!(err.contains("more than 18 decimals"), "{err}");
    Ok(())
}
