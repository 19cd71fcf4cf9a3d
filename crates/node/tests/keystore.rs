//! Encrypted keystores through the `autonet` binary: `key new`, `key import`, `key list`, and
//! signing commands unlocking `--account` — with files written by autonet and by `cast wallet`
//! (the committed fixture `fixtures/keystores/cast-account`). No chain is needed: `autonet
//! config` unlocks the account and shows its address.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, Result, ensure};
use serde_json::Value;

/// Written by `cast wallet import --keystore-dir tests/fixtures/keystores --private-key <KEY>
/// --unsafe-password fixture-password cast-account` (cast 1.7.1).
const CAST_ACCOUNT: &str = "cast-account";
const CAST_PASSWORD: &str = "fixture-password";
/// anvil's second development key, the one in the fixture; never use it on a real network.
const CAST_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const CAST_ADDRESS: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

const ENV: [&str; 8] = [
    "AUTONET_PRIVATE_KEY",
    "AUTONET_ACCOUNT",
    "AUTONET_KEYSTORE_DIR",
    "AUTONET_KEYSTORE_PASSWORD",
    "AUTONET_CONFIG",
    "AUTONET_RPC_URL",
    "AUTONET_REGISTRY",
    "RUST_LOG",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keystores")
}

/// The binary with a clean environment, `home` as its home directory and no terminal.
fn autonet(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autonet"));
    cmd.current_dir(home).env("HOME", home).stdin(Stdio::null());
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut Command, args: &[&str]) -> Output {
    cmd.args(args).output().expect("the autonet binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs with `--json`, requires success and parses stdout.
fn json(cmd: &mut Command, args: &[&str]) -> Result<Value> {
    let mut args = args.to_vec();
    args.push("--json");
    let o = run(cmd, &args);
    ensure!(
        o.status.success(),
        "autonet {args:?} failed ({}):\n{}{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).with_context(|| format!("not JSON: {}", text(&o.stdout)))
}

/// Runs, requires failure and returns stderr.
fn fails(cmd: &mut Command, args: &[&str]) -> Result<String> {
    let o = run(cmd, args);
    ensure!(
        !o.status.success(),
        "autonet {args:?} unexpectedly succeeded:\n{}",
        text(&o.stdout)
    );
    Ok(text(&o.stderr))
}

/// The address `autonet config` reports for the signer.
fn signer_address(config: &Value) -> String {
    config["signer"]["address"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn key_new_writes_a_keystore_that_unlocks_to_its_address() -> Result<()> {
    let home = tempfile::tempdir()?;
    let dir = home.path().join("keys");
    let dir_arg = dir.to_str().unwrap();
    let created = json(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", "correct horse"),
        &[
            "key",
            "new",
            "--name",
            "operator",
            "--keystore-dir",
            dir_arg,
        ],
    )?;
    let address = created["address"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "operator");
    let path = PathBuf::from(created["path"].as_str().unwrap());
    assert_eq!(path, dir.join("operator"));

    // Web3 Secret Storage v3 with scrypt, as cast writes it, plus the address as geth writes it.
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    assert_eq!(file["version"], 3);
    assert_eq!(file["crypto"]["kdf"], "scrypt");
    assert_eq!(file["crypto"]["cipher"], "aes-128-ctr");
    assert_eq!(
        file["address"].as_str().unwrap(),
        address[2..].to_lowercase()
    );
    let key = PrivateKeySigner::decrypt_keystore(&path, "correct horse")?;
    assert_eq!(key.address().to_string(), address);
    assert!(
        !text(&std::fs::read(&path)?).contains(&key.to_bytes().to_string()[2..]),
        "the key is stored in clear"
    );

    // A signing command unlocks it with --account, the password from a file or the environment.
    let password_file = home.path().join("pw");
    std::fs::write(&password_file, "correct horse\n")?;
    let c = json(
        &mut autonet(home.path()),
        &[
            "config",
            "--account",
            "operator",
            "--keystore-dir",
            dir_arg,
            "--password-file",
            password_file.to_str().unwrap(),
        ],
    )?;
    assert_eq!(signer_address(&c), address);
    assert_eq!(c["account"], "operator");
    let c = json(
        autonet(home.path())
            .env("AUTONET_ACCOUNT", "operator")
            .env("AUTONET_KEYSTORE_DIR", dir_arg)
            .env("AUTONET_KEYSTORE_PASSWORD", "correct horse"),
        &["config"],
    )?;
    assert_eq!(signer_address(&c), address);

    // The name is never reused, and a password is required.
    let err = fails(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", "x"),
        &[
            "key",
            "new",
            "--name",
            "operator",
            "--keystore-dir",
            dir_arg,
        ],
    )?;
    assert!(err.contains("already exists"), "{err}");
    let err = fails(
        &mut autonet(home.path()),
        &["key", "new", "--keystore-dir", dir_arg],
    )?;
    assert!(err.contains("AUTONET_KEYSTORE_PASSWORD"), "{err}");
    let err = fails(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", ""),
        &["key", "new", "--keystore-dir", dir_arg],
    )?;
    assert!(err.contains("empty password"), "{err}");
    Ok(())
}

#[test]
fn the_default_directory_is_foundrys_and_the_default_name_the_address() -> Result<()> {
    let home = tempfile::tempdir()?;
    let created = json(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", "pw"),
        &["key", "new"],
    )?;
    let address = created["address"].as_str().unwrap();
    assert_eq!(created["name"], address);
    assert_eq!(
        PathBuf::from(created["path"].as_str().unwrap()),
        home.path().join(".foundry/keystores").join(address)
    );
    assert_eq!(created["usage"], format!("--account {address}"));
    Ok(())
}

#[test]
fn a_cast_keystore_is_read_by_account() -> Result<()> {
    let home = tempfile::tempdir()?;
    let c = json(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", CAST_PASSWORD),
        &[
            "config",
            "--account",
            CAST_ACCOUNT,
            "--keystore-dir",
            fixtures().to_str().unwrap(),
        ],
    )?;
    assert_eq!(signer_address(&c), CAST_ADDRESS);
    assert_eq!(c["signer"]["private_key"], "<redacted>");
    Ok(())
}

#[test]
fn wrong_missing_or_doubled_credentials_are_refused_by_name() -> Result<()> {
    let home = tempfile::tempdir()?;
    let dir = fixtures();
    let dir_arg = dir.to_str().unwrap();
    let account = [
        "config",
        "--account",
        CAST_ACCOUNT,
        "--keystore-dir",
        dir_arg,
    ];

    let err = fails(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", "not the password"),
        &account,
    )?;
    assert!(err.contains("wrong password"), "{err}");
    assert!(err.contains(&format!("`{CAST_ACCOUNT}`")), "{err}");
    assert!(err.contains(dir_arg), "{err}");
    assert!(
        err.contains("the password in AUTONET_KEYSTORE_PASSWORD"),
        "{err}"
    );
    assert!(!err.contains("not the password"), "{err}");
    let wrong_file = home.path().join("wrong");
    std::fs::write(&wrong_file, "not the password\n")?;
    let mut with_file = account.to_vec();
    with_file.extend(["--password-file", wrong_file.to_str().unwrap()]);
    let err = fails(&mut autonet(home.path()), &with_file)?;
    assert!(err.contains("wrong password"), "{err}");
    assert!(err.contains(wrong_file.to_str().unwrap()), "{err}");

    // No password and no terminal: say how to give one.
    let err = fails(&mut autonet(home.path()), &account)?;
    assert!(err.contains(&format!("`{CAST_ACCOUNT}`")), "{err}");
    assert!(err.contains("AUTONET_KEYSTORE_PASSWORD"), "{err}");
    assert!(err.contains("--password-file"), "{err}");

    // An unknown account: the directory, what it holds and how to make one.
    let err = fails(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", CAST_PASSWORD),
        &["config", "--account", "nobody", "--keystore-dir", dir_arg],
    )?;
    assert!(err.contains("no keystore named `nobody`"), "{err}");
    assert!(err.contains(dir_arg), "{err}");
    assert!(err.contains(CAST_ACCOUNT), "{err}");
    assert!(err.contains("autonet key new --name nobody"), "{err}");
    let err = fails(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", CAST_PASSWORD),
        &[
            "config",
            "--account",
            "../keystores/x",
            "--keystore-dir",
            dir_arg,
        ],
    )?;
    assert!(err.contains("not a usable account name"), "{err}");

    // A raw key and an account together: one of them.
    let err = fails(
        autonet(home.path())
            .env("AUTONET_PRIVATE_KEY", CAST_KEY)
            .env("AUTONET_KEYSTORE_PASSWORD", CAST_PASSWORD),
        &account,
    )?;
    assert!(err.contains("use one of them"), "{err}");
    assert!(!err.contains(&CAST_KEY[2..]), "{err}");

    // Commands that never sign do not ask.
    let o = run(
        &mut autonet(home.path()),
        &["integrity", "show", "--account", CAST_ACCOUNT],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    Ok(())
}

#[test]
fn import_and_list() -> Result<()> {
    let home = tempfile::tempdir()?;
    let dir = home.path().join("keys");
    let dir_arg = dir.to_str().unwrap();
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(fixtures().join(CAST_ACCOUNT), dir.join(CAST_ACCOUNT))?;

    // From an environment variable.
    let imported = json(
        autonet(home.path())
            .env("OLD_KEY", autonet_test_utils::DEPLOYER_KEY)
            .env("AUTONET_KEYSTORE_PASSWORD", "pw"),
        &[
            "key",
            "import",
            "--name",
            "deployer",
            "--private-key-env",
            "OLD_KEY",
            "--keystore-dir",
            dir_arg,
        ],
    )?;
    let deployer: PrivateKeySigner = autonet_test_utils::DEPLOYER_KEY.parse()?;
    assert_eq!(imported["address"], deployer.address().to_string());

    // From standard input (piped: the password must then come from the environment or a file).
    let mut child = autonet(home.path())
        .env("AUTONET_KEYSTORE_PASSWORD", "pw")
        .args([
            "key",
            "import",
            "--name",
            "piped",
            "--keystore-dir",
            dir_arg,
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    writeln!(child.stdin.take().unwrap(), "{CAST_KEY}")?;
    let o = child.wait_with_output()?;
    ensure!(o.status.success(), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains(&CAST_KEY[2..]));
    let piped: Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(piped["address"], CAST_ADDRESS);

    let err = fails(
        autonet(home.path())
            .env("BAD", "0x1234")
            .env("AUTONET_KEYSTORE_PASSWORD", "pw"),
        &[
            "key",
            "import",
            "--private-key-env",
            "BAD",
            "--keystore-dir",
            dir_arg,
        ],
    )?;
    assert!(err.contains("BAD is not a valid hex private key"), "{err}");
    assert!(!err.contains("1234"), "{err}");

    // The list: cast's file has no address (it needs the password), autonet's files have one.
    std::fs::write(dir.join("README"), "not a keystore")?;
    let listed = json(
        &mut autonet(home.path()),
        &["key", "list", "--keystore-dir", dir_arg],
    )?;
    let entries = listed["keystores"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [CAST_ACCOUNT, "deployer", "piped"]);
    assert_eq!(entries[0]["address"], Value::Null);
    assert_eq!(entries[1]["address"], deployer.address().to_string());
    assert_eq!(entries[2]["address"], CAST_ADDRESS);
    assert_eq!(
        entries[1]["path"].as_str().unwrap(),
        dir.join("deployer").to_str().unwrap()
    );
    let o = run(
        &mut autonet(home.path()),
        &["key", "list", "--keystore-dir", dir_arg],
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("locked (needs the password)"), "{out}");
    assert!(out.contains(&deployer.address().to_string()), "{out}");
    assert!(out.contains(dir.join("piped").to_str().unwrap()), "{out}");

    let empty = json(
        &mut autonet(home.path()),
        &["key", "list", "--keystore-dir", "nowhere"],
    )?;
    assert_eq!(empty["keystores"], Value::Array(vec![]));
    Ok(())
}

/// cast reads what autonet writes (skipped when Foundry is not installed: `make setup`).
#[test]
fn cast_reads_an_autonet_keystore() -> Result<()> {
    let Ok(cast) = autonet_test_utils::foundry_tool("cast") else {
        eprintln!("skipped: cast is not installed (make setup)");
        return Ok(());
    };
    let home = tempfile::tempdir()?;
    let dir = home.path().join("keys");
    let created = json(
        autonet(home.path()).env("AUTONET_KEYSTORE_PASSWORD", "pw"),
        &[
            "key",
            "new",
            "--name",
            "shared",
            "--keystore-dir",
            dir.to_str().unwrap(),
        ],
    )?;
    let o = Command::new(cast)
        .args(["wallet", "address", "--keystore"])
        .arg(dir.join("shared"))
        .args(["--password", "pw"])
        .env("HOME", home.path())
        .output()?;
    ensure!(o.status.success(), "cast failed: {}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim().to_lowercase(),
        created["address"].as_str().unwrap().to_lowercase()
    );
    Ok(())
}
