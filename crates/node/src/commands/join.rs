//! `autonet join --role …`: one command takes a new node from nothing to a running, staked,
//! registered role agent.
//!
//! This module owns the command's arguments ([`JoinArgs`]: the agent's own options of
//! `autonet run`, flattened, plus the funding and staking ones) and its seven steps, each printed
//! as a progress line (`[n/7] step … detail`) and each skipped when already done, so that a
//! re-run is a no-op: 1 the key (an encrypted keystore, created on the first run and unlocked
//! afterwards, or `AUTONET_PRIVATE_KEY`), 2 what the role needs (ETH for gas, ATN for
//! `minStake(role)` or `--stake`) against what the account has, 3 the funds (a devnet faucet,
//! or instructions and an optional wait), 4 the stake ([`super::staking::stake`]), 5 the ERC-8004
//! identity, 6 the code-integrity check, 7 the agent ([`super::agent`]: the same path as
//! `autonet run`; "already running" when another process holds the state directory's lock). It
//! must not hold protocol rules: the contracts decide minimums and roles, the agent its work.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use autonet_bindings::enums::Role as RoleName;
use autonet_bindings::{ATNToken, ParticipantStaking};
use serde_json::{Value, json};

use super::agent::{RunArgs, StateDirLock, agent_role, lock_state_dir};
use super::staking::RoleArg;
use super::{CommandError, Context, Report};
use crate::amount::{atn, atn_arg, format_atn};
use crate::config::{EffectiveConfig, PRIVATE_KEY_ENV};
use crate::keystore::{self, Opened};

/// The number of steps `join` reports.
pub const STEPS: usize = 7;

/// How often `--wait-funds` re-reads the balances.
const FUNDS_POLL: Duration = Duration::from_secs(2);

/// `autonet join` arguments: the agent's (as `autonet run`) and how to get there.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Steps (each skipped when already done; a re-run is a no-op):
  [1/7] key        create (first run) or unlock the keystore --account [default: autonet-<role>]
  [2/7] needs      ETH for gas and ATN for the role's minimum stake, against the balances
  [3/7] funds      from --faucet, or print where to get them (and wait up to --wait-funds)
  [4/7] stake      approve and stake the minimum (or --stake)
  [5/7] identity   the ERC-8004 registration (the agent registers on start; --no-start: join does)
  [6/7] integrity  this build's code fingerprint must be the one governance approved
  [7/7] agent      run it (as `autonet run`), or say it is already running for --state-dir

Examples:
  # Local devnet (its faucet URL is printed by `autonet devnet` and in <dir>/faucet.url)
  AUTONET_KEYSTORE_PASSWORD=… autonet join --role solver --rpc-url http://127.0.0.1:8545 \\
      --registry 0x… --faucet http://127.0.0.1:PORT/faucet --state-dir ./solver-1 --data-shard 0/3
  # Public test network: prints the address and the missing amounts, waits up to an hour
  autonet join --role coordinator --account coord-1 --state-dir ./coord-1 --wait-funds 3600
  # Key, funds, stake, identity and integrity only
  autonet join --role aggregator --state-dir ./agg --no-start"
)]
pub struct JoinArgs {
    /// The agent's options, as `autonet run` takes them
    #[command(flatten)]
    pub agent: RunArgs,
    /// A development faucet to fund this account from (`POST {address, atn}`; `autonet devnet`
    /// serves one and prints its URL); never needed on a network where the account is funded
    #[arg(long, env = "AUTONET_FAUCET", value_name = "URL")]
    pub faucet: Option<String>,
    /// Seconds to wait for missing funds to arrive, re-reading the balances every 2 s; 0 prints
    /// where to send them and exits non-zero at once (run `join` again once funded)
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub wait_funds: u64,
    /// Total stake to hold, in ATN, instead of the role's minimum (`minStake(role)` on chain);
    /// only the part not yet bonded is staked
    #[arg(long, value_parser = atn_arg, value_name = "ATN")]
    pub stake: Option<U256>,
    /// ETH the account must hold for gas before it stakes
    #[arg(long, value_parser = atn_arg, default_value = "0.05", value_name = "ETH")]
    pub min_eth: U256,
    /// Stop after the integrity check (step 6): key, funds, stake and identity, no agent
    #[arg(long)]
    pub no_start: bool,
}

/// The keystore account `join` uses when neither `--account` nor `AUTONET_PRIVATE_KEY` is given.
pub fn default_account(role: RoleArg) -> String {
    format!("autonet-{}", agent_role(role).name())
}

/// Where the progress lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Standard output (text mode).
    Stdout,
    /// Standard error (`--json`: standard output carries the JSON).
    Stderr,
    /// Nowhere (the lines are still returned, and logged at debug level).
    Quiet,
}

/// The progress lines, printed as they happen.
struct Lines {
    to: Progress,
    lines: Vec<String>,
}

impl Lines {
    fn step(&mut self, n: usize, what: &str, detail: impl std::fmt::Display) {
        let line = format!("[{n}/{STEPS}] {what:<9} … {detail}");
        match self.to {
            Progress::Stdout => println!("{line}"),
            Progress::Stderr => eprintln!("{line}"),
            Progress::Quiet => tracing::debug!("{line}"),
        }
        self.lines.push(line);
    }
}

/// A node that went through steps 1 to 6.
pub struct Joined {
    /// Connected with the node's key.
    pub ctx: Context,
    /// The node's address.
    pub address: Address,
    /// The progress lines so far.
    pub lines: Vec<String>,
    /// What each step found or did.
    pub json: Value,
}

/// `a solver`, `an aggregator`.
fn a(label: &str) -> String {
    let article = if label.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {label}")
}

/// A balance in ETH to at most 4 decimals, rounded down (`9.9999 ETH`).
fn eth(wei: U256) -> String {
    let step = U256::from(10).pow(U256::from(14));
    format!("{} ETH", format_atn(wei / step * step))
}

/// An amount of ETH to send, exactly.
fn eth_exact(wei: U256) -> String {
    format!("{} ETH", format_atn(wei))
}

/// The balances and stake that decide step 2.
struct Holdings {
    eth: U256,
    atn: U256,
    bonded: U256,
}

async fn holdings(ctx: &Context, me: Address) -> Result<Holdings, CommandError> {
    let c = &ctx.contracts;
    let eth = ctx
        .provider
        .get_balance(me)
        .await
        .map_err(|source| CommandError::Rpc {
            what: "the ETH balance",
            source,
        })?;
    let atn = ATNToken::new(c.atn_token, &ctx.provider)
        .balanceOf(me)
        .call()
        .await
        .map_err(|e| CommandError::read("the ATN balance", e))?;
    let bonded = ParticipantStaking::new(c.staking, &ctx.provider)
        .stakeOf(me)
        .call()
        .await
        .map_err(|e| CommandError::read("the stake", e))?;
    Ok(Holdings { eth, atn, bonded })
}

/// What is still missing: (ETH, ATN).
fn missing(h: &Holdings, min_eth: U256, to_stake: U256) -> (U256, U256) {
    (
        min_eth.saturating_sub(h.eth),
        to_stake.saturating_sub(h.atn),
    )
}

/// What the operator must do when the account lacks funds.
fn instructions(me: Address, role: &str, eth_missing: U256, atn_missing: U256) -> String {
    let mut text = format!("{me} needs funds to join as {}; send to {me}:\n", a(role));
    if !eth_missing.is_zero() {
        text.push_str(&format!(
            "    at least {}  (gas for staking, registering and the agent's transactions)\n",
            eth_exact(eth_missing)
        ));
    }
    if !atn_missing.is_zero() {
        text.push_str(&format!(
            "    at least {}  (the {role}'s stake)\n",
            atn(atn_missing)
        ));
    }
    text.push_str(
        "  On a development chain started by `autonet devnet`, pass --faucet <URL> (the devnet prints it \
         and writes it to <devnet dir>/faucet.url).\n  On a public network, get ETH from the chain's \
         faucet and ATN from the network's operators or another holder.\n  Then run this same command \
         again (finished steps are skipped), or add --wait-funds <SECS> to wait for the funds. Nothing \
         was staked.",
    );
    text
}

/// Asks the faucet at `url` for `atn_wanted` ATN (and its ETH grant); returns its answer.
async fn ask_faucet(url: &str, me: Address, atn_wanted: U256) -> Result<Value, String> {
    let body = json!({ "address": me.to_string(), "atn": format_atn(atn_wanted) });
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| format!("the faucet at {url} did not answer: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let why = answer["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| answer.to_string());
        return Err(format!("the faucet at {url} refused ({status}): {why}"));
    }
    Ok(answer)
}

impl JoinArgs {
    /// Whether `main` unlocks `--account` before `run`: no, `join` creates the keystore when it
    /// does not exist yet and unlocks it itself (step 1).
    pub fn uses_key(&self) -> bool {
        false
    }

    /// Runs `autonet join`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        let to = if config.json {
            Progress::Stderr
        } else {
            Progress::Stdout
        };
        let joined = self.prepare(config, to, true).await?;
        let mut lines = Lines {
            to,
            lines: joined.lines,
        };
        let me = joined.address;
        let role = agent_role(self.agent.role).name();
        let mut j = joined.json;
        if self.no_start {
            lines.step(
                7,
                "agent",
                "not started (--no-start): run the same command without --no-start to start it",
            );
            j["agent"] = json!({ "started": false });
            return Ok(Report {
                text: format!("{me} joined as {}; agent not started", a(role)),
                json: j,
            });
        }
        let dir = &self.agent.state_dir;
        match lock_state_dir(dir)? {
            StateDirLock::Busy { pid } => {
                let ready: Option<Value> =
                    std::fs::read_to_string(dir.join(autonet_agents::READY_FILE))
                        .ok()
                        .and_then(|t| serde_json::from_str(&t).ok());
                let endpoint = ready
                    .as_ref()
                    .and_then(|r| r["endpoint"].as_str().map(str::to_owned));
                lines.step(
                    7,
                    "agent",
                    format!(
                        "already running{} for {}{} ok",
                        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                        dir.display(),
                        endpoint
                            .as_ref()
                            .map(|e| format!(", serving {e}"))
                            .unwrap_or_else(|| ", not ready yet".into()),
                    ),
                );
                j["agent"] = json!({ "started": false, "already_running": true, "pid": pid, "endpoint": endpoint });
                Ok(Report {
                    text: format!("{me} is already running as {}: nothing to do", a(role)),
                    json: j,
                })
            }
            StateDirLock::Held(lock) => {
                lines.step(
                    7,
                    "agent",
                    format!(
                        "starting the {role} (state in {}; Ctrl-C stops it)",
                        dir.display()
                    ),
                );
                self.agent.run_agent(joined.ctx, lock).await
            }
        }
    }

    /// Steps 1 to 6 with the configuration's key (or the keystore it names, created on the first
    /// run); `check_integrity: false` skips step 6 (the devnet, whose agents check it on start).
    /// Progress lines go `to`.
    pub async fn prepare(
        &self,
        mut config: EffectiveConfig,
        to: Progress,
        check_integrity: bool,
    ) -> Result<Joined, CommandError> {
        self.agent.validate()?;
        let mut lines = Lines {
            to,
            lines: Vec::new(),
        };
        let role_arg = self.agent.role;
        let role = role_arg.role();
        let label = RoleName::label_of(role);
        let mut j = json!({ "role": label });

        // 1. The key.
        let key_detail = match &config.signer {
            Some(signer) => format!("{} (from {PRIVATE_KEY_ENV})", signer.address()),
            None => {
                let name = config
                    .account
                    .clone()
                    .unwrap_or_else(|| default_account(role_arg));
                let dir = config.require_keystore_dir()?.to_owned();
                let (key, path, how) = keystore::open_or_create(&dir, &name, &config.passwords())?;
                let address = key.address();
                config.signer = Some(key);
                j["keystore"] =
                    json!({ "name": name, "path": path, "created": how == Opened::Created });
                match how {
                    Opened::Created => format!(
                        "{address} (new keystore `{name}` at {}: keep it and its password safe)",
                        path.display()
                    ),
                    Opened::Unlocked => format!("{address} (keystore `{name}`)"),
                }
            }
        };
        lines.step(1, "key", format!("{key_detail} ok"));
        let ctx = Context::connect(config).await?;
        let me = ctx.me()?;
        j["address"] = json!(me.to_string());

        // 2. What the role needs against what the account has.
        let staking = ParticipantStaking::new(ctx.contracts.staking, &ctx.provider);
        let min = staking
            .minStake(role)
            .call()
            .await
            .map_err(|e| CommandError::read("the role's minimum stake", e))?;
        let held_role: u8 = staking
            .roleOf(me)
            .call()
            .await
            .map_err(|e| CommandError::read("the account's role", e))?;
        let mut have = holdings(&ctx, me).await?;
        if held_role != 0 && held_role != role && !have.bonded.is_zero() {
            return Err(CommandError::Invalid(format!(
                "{me} is staked as {} ({} bonded) and an address holds one role: join as --role {} \
                 or with another account (--account <NAME>)",
                a(RoleName::label_of(held_role)),
                atn(have.bonded),
                RoleName::label_of(held_role),
            )));
        }
        let target = self.stake.unwrap_or(min);
        if target < min {
            return Err(CommandError::Invalid(format!(
                "--stake {} is below the {label}'s minimum stake of {}",
                atn(target),
                atn(min)
            )));
        }
        let to_stake = target.saturating_sub(have.bonded);
        lines.step(
            2,
            "needs",
            format!(
                "{} for gas and {} as {} (minimum {}); has {}, {} and {} staked",
                eth(self.min_eth),
                if to_stake.is_zero() {
                    "nothing more to stake".to_string()
                } else {
                    format!("{} to stake", atn(to_stake))
                },
                a(label),
                atn(min),
                eth(have.eth),
                atn(have.atn),
                atn(have.bonded),
            ),
        );
        j["needs"] = json!({
            "eth": format_atn(self.min_eth),
            "atn_to_stake": format_atn(to_stake),
            "min_stake": format_atn(min),
            "has_eth": format_atn(have.eth),
            "has_atn": format_atn(have.atn),
            "staked": format_atn(have.bonded),
        });

        // 3. The funds.
        let (mut eth_missing, mut atn_missing) = missing(&have, self.min_eth, to_stake);
        if eth_missing.is_zero() && atn_missing.is_zero() {
            lines.step(3, "funds", "enough already ok");
            j["funds"] = json!({ "source": "held" });
        } else {
            let mut refused = None;
            if let Some(url) = &self.faucet {
                match ask_faucet(url, me, atn_missing).await {
                    Ok(answer) => {
                        have = holdings(&ctx, me).await?;
                        (eth_missing, atn_missing) = missing(&have, self.min_eth, to_stake);
                        j["funds"] = json!({ "source": "faucet", "faucet": url, "grant": answer });
                        let got = format!(
                            "from faucet {url}: +{} ETH, +{} ATN",
                            answer["eth"].as_str().unwrap_or("?"),
                            answer["atn"].as_str().unwrap_or("?"),
                        );
                        if eth_missing.is_zero() && atn_missing.is_zero() {
                            lines.step(3, "funds", format!("{got} ok"));
                        } else {
                            lines.step(3, "funds", format!("{got}: still short"));
                        }
                    }
                    Err(why) => refused = Some(why),
                }
            }
            if !(eth_missing.is_zero() && atn_missing.is_zero()) {
                let mut told = instructions(me, label, eth_missing, atn_missing);
                if let Some(why) = &refused {
                    told = format!("{why}\n{told}");
                }
                if self.wait_funds == 0 {
                    lines.step(
                        3,
                        "funds",
                        format!(
                            "missing {} and {}",
                            eth_exact(eth_missing),
                            atn(atn_missing)
                        ),
                    );
                    return Err(CommandError::Invalid(told));
                }
                lines.step(
                    3,
                    "funds",
                    format!(
                        "waiting up to {} s for {} and {} at {me}",
                        self.wait_funds,
                        eth_exact(eth_missing),
                        atn(atn_missing)
                    ),
                );
                match to {
                    Progress::Stdout => println!("{told}"),
                    Progress::Stderr => eprintln!("{told}"),
                    Progress::Quiet => {}
                }
                let deadline = Instant::now() + Duration::from_secs(self.wait_funds);
                loop {
                    tokio::time::sleep(FUNDS_POLL).await;
                    have = holdings(&ctx, me).await?;
                    (eth_missing, atn_missing) = missing(&have, self.min_eth, to_stake);
                    if eth_missing.is_zero() && atn_missing.is_zero() {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(CommandError::Invalid(format!(
                            "the funds did not arrive within {} s\n{}",
                            self.wait_funds,
                            instructions(me, label, eth_missing, atn_missing)
                        )));
                    }
                }
                lines.step(
                    3,
                    "funds",
                    format!("arrived: {} and {} ok", eth(have.eth), atn(have.atn)),
                );
                j["funds"] = json!({ "source": "received" });
            }
        }

        // 4. The stake.
        if to_stake.is_zero() {
            lines.step(
                4,
                "stake",
                format!(
                    "already {} as {} (minimum {}) ok",
                    atn(have.bonded),
                    a(label),
                    atn(min)
                ),
            );
            j["stake"] = json!({ "staked": format_atn(have.bonded), "tx": null });
        } else {
            let staked = super::staking::stake(&ctx, role_arg, to_stake).await?;
            lines.step(
                4,
                "stake",
                format!(
                    "staked {}, now {} as {} (tx {}) ok",
                    atn(to_stake),
                    staked.json["stake"]
                        .as_str()
                        .map_or("?".into(), |s| format!("{s} ATN")),
                    a(label),
                    staked.json["tx"].as_str().unwrap_or("?")
                ),
            );
            j["stake"] = json!({ "staked": staked.json["stake"], "tx": staked.json["tx"] });
        }

        // 5. The ERC-8004 identity.
        let identity = ctx.contracts.identity;
        let found =
            autonet_agents::identity::agent_of(&ctx.provider, identity, me, self.agent.from_block)
                .await
                .map_err(|e| CommandError::Invalid(format!("reading the agent identity: {e}")))?;
        match found {
            Some((id, _)) => {
                lines.step(5, "identity", format!("agent #{id} already registered ok"));
                j["identity"] = json!({ "agent_id": id.to_string(), "registered_now": false });
            }
            None if !self.no_start => {
                lines.step(
                    5,
                    "identity",
                    "pending: the agent registers it when it starts, with its endpoints",
                );
                j["identity"] = json!({ "agent_id": null, "pending": true });
            }
            None => {
                let id = self.register(&ctx, me).await?;
                lines.step(
                    5,
                    "identity",
                    format!(
                        "registered agent #{id} (the agent refreshes its endpoints on start) ok"
                    ),
                );
                j["identity"] = json!({ "agent_id": id.to_string(), "registered_now": true });
            }
        }

        // 6. The code integrity.
        if check_integrity {
            let id = super::integrity::this_build();
            let outcome = autonet_agents::check_code(&ctx.provider, ctx.contracts.registry, &id)
                .await
                .map_err(|e| CommandError::Invalid(e.to_string()))?;
            let explained = outcome.explain(&id);
            if outcome.approved() {
                lines.step(
                    6,
                    "integrity",
                    format!(
                        "code {} approved as {} ok",
                        id.fingerprint,
                        id.registry_key()
                    ),
                );
            } else if self.agent.dev_skip_integrity {
                lines.step(
                    6,
                    "integrity",
                    format!("NOT APPROVED, continuing (--dev-skip-integrity): {explained}"),
                );
            } else {
                lines.step(6, "integrity", "NOT APPROVED");
                return Err(CommandError::Invalid(format!(
                    "refusing to start the {label} role: {explained}"
                )));
            }
            j["integrity"] = json!({ "approved": outcome.approved(), "fingerprint": id.fingerprint.to_string() });
        } else {
            lines.step(6, "integrity", "left to the agent's check on start");
        }
        Ok(Joined {
            ctx,
            address: me,
            lines: lines.lines,
            json: j,
        })
    }

    /// Registers the node's ERC-8004 identity with the endpoints it will serve (`--public-url`,
    /// else its `--listen` address); the agent updates them on start when they differ.
    async fn register(&self, ctx: &Context, me: Address) -> Result<U256, CommandError> {
        use autonet_agents::identity::{AutonetInfo, Registration, endpoints};
        let role = agent_role(self.agent.role);
        let mut names = vec![endpoints::STATUS, endpoints::METRICS];
        if role.serves_shards() {
            names.push(endpoints::SHARDS);
        }
        if matches!(self.agent.role, RoleArg::Coordinator) {
            names.push(endpoints::BLS_ATTESTATION);
        }
        let base = self
            .agent
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.agent.listen));
        let info = AutonetInfo {
            role: role.name().to_string(),
            project_id: self.agent.project,
            chain_id: ctx.chain_id,
        };
        autonet_agents::identity::ensure_registered(
            &ctx.provider,
            ctx.contracts.identity,
            me,
            self.agent.from_block,
            &Registration::new(info, me, &base, &names),
            &ctx.tx,
        )
        .await
        .map_err(|e| CommandError::Invalid(format!("registering the agent identity: {e}")))
    }
}

/// Parses `join`'s own arguments (what follows `autonet … join`), e.g. to prepare a node
/// in-process with the very command line it is then started with.
pub fn parse_args<I, T>(args: I) -> Result<JoinArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        join: JoinArgs,
    }
    let all =
        std::iter::once(std::ffi::OsString::from("join")).chain(args.into_iter().map(Into::into));
    Ok(Only::try_parse_from(all)?.join)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_options_pass_through() {
        let a = parse_args([
            "--role",
            "solver",
            "--state-dir",
            "/tmp/s",
            "--data-shard",
            "1/3",
            "--faucet",
            "http://127.0.0.1:9/faucet",
            "--stake",
            "60",
            "--no-start",
        ])
        .unwrap();
        assert_eq!(a.agent.role, RoleArg::Solver);
        assert_eq!(a.agent.data_shard, (1, 3));
        assert_eq!(a.stake, Some(atn_arg("60").unwrap()));
        assert_eq!(a.min_eth, atn_arg("0.05").unwrap());
        assert_eq!(a.wait_funds, 0);
        assert!(a.no_start);
        assert!(
            parse_args(["--role", "solver"]).is_err(),
            "--state-dir is required"
        );
    }

    #[test]
    fn the_instructions_name_the_address_and_what_is_missing() {
        let me = Address::repeat_byte(0xab);
        let t = instructions(
            me,
            "solver",
            atn_arg("0.05").unwrap(),
            atn_arg("50").unwrap(),
        );
        assert!(t.contains(&me.to_string()), "{t}");
        assert!(t.contains("0.05 ETH") && t.contains("50 ATN"), "{t}");
        assert!(t.contains("--faucet") && t.contains("--wait-funds"), "{t}");
        let t = instructions(me, "solver", U256::ZERO, atn_arg("50").unwrap());
        assert!(!t.contains("ETH  (gas"), "{t}");
        assert_eq!(default_account(RoleArg::Aggregator), "autonet-aggregator");
    }
}
