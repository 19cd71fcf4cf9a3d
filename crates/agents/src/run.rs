//! Starting an agent: checks (stake, spec, dataset, genesis), the shard server, the provider
//! registration, then the loop: catch the event watcher up, run the role's tick, sleep.

use std::net::SocketAddr;
use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use autonet_bindings::{Contracts, ParticipantStaking, ShardProviders};
use autonet_chain::watcher::{EventWatcher, PollOutcome, WatcherConfig};
use autonet_chain::{ChainProvider, CursorStore};
use autonet_storage::Store;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::agent::{Agent, AgentError, AgentOptions, Role};
use crate::db::AgentDb;
use crate::events::{Recorder, watched};
use crate::integrity::{IntegrityPolicy, check_code};
use crate::kind::{AnyKind, CartridgeKind, Lm};
use crate::roles;
use crate::spec::{Dataset, TrainingSpec};
use crate::status::AgentRounds;

/// File written into the state directory once the agent is ready (tests and `autonet devnet`
/// wait for it); holds the shard endpoint.
pub const READY_FILE: &str = "ready";

/// Runs the agent until `cancel` fires. Returns an error only for problems that a restart would
/// not fix (not staked, wrong project, corpus mismatch, ...); a failed tick is logged and retried.
pub async fn run(
    opts: AgentOptions,
    provider: ChainProvider,
    contracts: Contracts,
    me: Address,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| {
        AgentError::Other(format!(
            "creating the state directory {}: {e}",
            opts.state_dir.display()
        ))
    })?;
    let _ = std::fs::remove_file(opts.state_dir.join(READY_FILE));
    tch::set_num_threads(opts.threads.max(1));

    // Code integrity first: an unapproved build takes no part at all.
    let policy = opts.integrity.clone();
    let check = check_code(&provider, contracts.registry, &policy.identity).await?;
    let explained = check.explain(&policy.identity);
    if check.approved() {
        info!(key = policy.identity.registry_key(), fingerprint = %policy.identity.fingerprint, "{explained}");
    } else if policy.enforce {
        return Err(AgentError::Integrity(format!(
            "refusing to start the {} role: {explained}",
            opts.role.name()
        )));
    } else {
        warn!(
            "!!! INTEGRITY CHECK DISABLED (--dev-skip-integrity): running a staked role on code \
             governance has not approved. Never do this on a network with real value. {explained}"
        );
    }

    // Stake.
    let staking = ParticipantStaking::new(contracts.staking, provider.clone());
    let active = staking
        .isActive(me, opts.role.on_chain().into_underlying())
        .call()
        .await
        .map_err(AgentError::read("the stake"))?;
    if !active {
        return Err(AgentError::Other(format!(
            "{me} holds no active {} stake: run `autonet stake --role {} --amount <ATN>` first",
            opts.role.name(),
            opts.role.name()
        )));
    }

    // Windows against the reorg depth: an action dropped by a reorg is sent again while its
    // window is open, so a window no longer than the depth may close first.
    let config = autonet_bindings::Project::new(contracts.project, provider.clone())
        .config(U256::from(opts.project_id))
        .call()
        .await
        .map_err(AgentError::read(format!(
            "project {}'s config",
            opts.project_id
        )))?;
    for (name, blocks) in short_windows(&config.windows, opts.confirmations) {
        warn!(
            window = name,
            blocks,
            confirmations = opts.confirmations,
            "project {}'s {name} window is not longer than --confirmations: an action that a reorg \
             of that depth drops near the window's end cannot be sent again in time (lower \
             --confirmations, or lengthen the window by governance)",
            opts.project_id
        );
    }

    // Project, spec, dataset, genesis.
    let project = autonet_bindings::Project::new(contracts.project, provider.clone())
        .getProject(U256::from(opts.project_id))
        .call()
        .await
        .map_err(AgentError::read(format!("project {}", opts.project_id)))?;
    let spec = TrainingSpec::from_chain(&project.modelURI, project.modelSpecHash)?;
    info!(project = opts.project_id, kind = spec.kind.name(), preset = %spec.preset, steps = spec.steps, "loading the reference corpus");
    let data = {
        let (spec, ws, root) = (spec.clone(), opts.workspace.clone(), project.datasetRoot);
        tokio::task::spawn_blocking(move || Dataset::load(&spec, &ws, root))
            .await
            .map_err(|e| AgentError::Other(e.to_string()))??
    };
    let store = Store::open(opts.state_dir.join("store"))
        .map_err(|e| AgentError::Storage(e.to_string()))?;
    let (kind, genesis) = match spec.cartridge() {
        None => (
            AnyKind::Lm(Lm),
            spec.store_weights(&store, &spec.genesis()?)?,
        ),
        Some(_) => {
            let kind = CartridgeKind::open(
                &spec,
                &store,
                opts.cartridge.as_deref(),
                &opts.cartridge_peers,
            )
            .await?;
            let state = kind.genesis(spec.init_seed).await?;
            let genesis = store
                .put_with(&state, spec.shard_params()?)
                .map_err(|e| AgentError::Storage(e.to_string()))?;
            (AnyKind::Cartridge(kind), genesis)
        }
    };
    let genesis_root = B256::from(genesis.root);
    let first_root =
        autonet_bindings::ModelShardRegistry::new(contracts.shard_registry, provider.clone())
            .modelCount(U256::from(opts.project_id))
            .call()
            .await
            .map_err(AgentError::read("model count"))?;
    if first_root.is_zero() && project.modelRoot != genesis_root {
        return Err(AgentError::Other(format!(
            "project {} starts from model {} but this spec's genesis is {genesis_root}",
            opts.project_id, project.modelRoot
        )));
    }

    let db = Arc::new(AgentDb::open(opts.state_dir.join("agent.sqlite"))?);
    // The witness log: refuses to go on after a history that does not check.
    let witness =
        Arc::new(crate::witness::Witness::open(&opts.state_dir).map_err(|e| {
            AgentError::Other(format!("{e} (move the file aside to start a new log)"))
        })?);
    let cursor = Arc::new(
        CursorStore::open(opts.state_dir.join("events.sqlite"))
            .map_err(|e| AgentError::Other(e.to_string()))?,
    );

    // The node's HTTP server (shards, BLS signatures) and the provider registration.
    let server_cancel = cancel.child_token();
    let attestations = crate::bls::Attestations::default();
    let node = crate::status::NodeInfo {
        role: opts.role.name().to_string(),
        address: me.to_string(),
        chain_id: provider.get_chain_id().await?,
        project_id: opts.project_id,
        version: policy.identity.version.clone(),
        code_hash: Some(policy.identity.fingerprint.to_string()),
    };
    let status =
        crate::status::StatusState::from_db_file(node, opts.state_dir.join("agent.sqlite"));
    status.set_stakes(network_stakes(&staking, &db, opts.project_id, me).await?);
    let (addr, server_task) = crate::serve::start(
        opts.listen,
        store.clone(),
        opts.faults.corrupt_shards,
        crate::bls::routes(attestations.clone()).merge(crate::status::router(status.clone())),
        server_cancel.clone(),
    )
    .await?;
    let server_task = Some(server_task);
    let endpoint = opts
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    if opts.role.serves_shards() {
        register_provider(&provider, &contracts, me, &endpoint).await?;
    }

    let mut agent = Agent::new(
        opts.clone(),
        provider.clone(),
        contracts,
        me,
        db.clone(),
        store,
        spec,
        Arc::new(data),
        kind,
        witness.clone(),
        genesis_root,
    )?;
    if opts.role == Role::Coordinator {
        // A BLS key so that this coordinator's signature can count in an aggregate attestation.
        let key = crate::bls::load_or_create(&opts.state_dir)?;
        let index = crate::bls::ensure_registered(&agent, &key).await?;
        agent.bls = Some(crate::bls::Signer::new(key, index, attestations));
    }
    let agent_id = register_identity(&agent, &endpoint).await?;
    agent.set_identity_id(agent_id);
    witness.record(
        agent.head().await.unwrap_or_default(),
        None,
        "start",
        opts.role.name(),
        &serde_json::json!({
            "address": me,
            "project": opts.project_id,
            "agent_id": agent_id,
            "code": policy.identity.fingerprint,
            "version": policy.identity.version,
        }),
    );
    let mut config = WatcherConfig::new(
        format!("agent-{}", opts.role.name()),
        watched(&contracts),
        opts.from_block,
    );
    // The database follows the chain's newest block (the watcher undoes what a reorg removes),
    // so that a tick's reads and the database describe one block. Reorg safety for this agent's
    // own transactions is the journal's: an action counts as done only once it is
    // `--confirmations` deep, and one a reorg removed is sent again.
    config.confirmations = 0;
    config.poll_interval = opts.poll;
    let mut watcher = EventWatcher::new(
        provider.clone(),
        cursor,
        config,
        Recorder::new(db.clone()).with_witness(witness.clone()),
    );

    let ready = serde_json::json!({ "role": opts.role.name(), "address": me.to_string(), "endpoint": endpoint });
    std::fs::write(opts.state_dir.join(READY_FILE), ready.to_string())
        .map_err(|e| AgentError::Other(format!("writing the ready file: {e}")))?;
    info!(role = opts.role.name(), address = %me, endpoint, project = opts.project_id, "agent started");

    let mut failures = 0u32;
    let mut last_check = std::time::Instant::now();
    let mut last_stakes = std::time::Instant::now();
    while !cancel.is_cancelled() {
        if last_check.elapsed() >= policy.recheck {
            last_check = std::time::Instant::now();
            recheck(&agent, &policy).await;
        }
        if last_stakes.elapsed() >= STAKES_REFRESH {
            last_stakes = std::time::Instant::now();
            match network_stakes(&staking, &db, opts.project_id, me).await {
                Ok(stakes) => status.set_stakes(stakes),
                Err(e) => {
                    warn!(error = %e, "could not refresh the stakes shown on the status page")
                }
            }
        }
        let outcome = tick(&agent, &mut watcher).await;
        match outcome {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures <= 3 || failures.is_multiple_of(20) {
                    warn!(error = %e, failures, "tick failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(opts.poll) => {}
        }
    }
    server_cancel.cancel();
    if let Some(task) = server_task
        && let Err(e) = task.await
    {
        error!(error = %e, "shard server task");
    }
    info!("agent stopped");
    Ok(())
}

/// Re-reads the approved code hash; a failing check stops new work (reveals of earlier
/// commitments go on), a passing one resumes it. An unreadable Registry keeps the last verdict.
async fn recheck(agent: &Agent, policy: &IntegrityPolicy) {
    match check_code(&agent.provider, agent.contracts.registry, &policy.identity).await {
        Ok(check) => {
            let allowed = check.approved() || !policy.enforce;
            let changed = agent.set_takes_new_work(allowed);
            let explained = check.explain(&policy.identity);
            if !check.approved() && !policy.enforce {
                warn!("!!! INTEGRITY CHECK DISABLED (--dev-skip-integrity): {explained}");
            } else if changed && allowed {
                info!("integrity re-check passed: taking new work again. {explained}");
            } else if !allowed {
                // Loud on every re-check, not only on the change.
                error!(
                    "integrity re-check failed: taking no new work (pending reveals continue). {explained}"
                );
            }
        }
        Err(e) => {
            warn!(error = %e, "integrity re-check could not read the Registry; keeping the last verdict")
        }
    }
}

async fn tick<H: autonet_chain::watcher::LogHandler>(
    agent: &Agent,
    watcher: &mut EventWatcher<ChainProvider, H>,
) -> Result<(), AgentError> {
    // Catch up with the chain first: decisions are made on a complete picture.
    while let PollOutcome::Advanced {
        caught_up: false, ..
    }
    | PollOutcome::Rewound { .. } = watcher
        .poll_once()
        .await
        .map_err(|e| AgentError::Other(format!("event watcher: {e}")))?
    {}
    // Every read of the tick is made at the block the database was recorded up to.
    let view = match watcher
        .cursor()
        .map_err(|e| AgentError::Other(format!("event watcher: {e}")))?
    {
        Some(cursor) => roles::View {
            number: cursor.number,
            hash: Some(cursor.hash),
        },
        None => roles::View {
            number: agent.head().await?,
            hash: None,
        },
    };
    roles::tick(agent, view).await
}

/// Registers this node in the ERC-8004 identity registry (or refreshes its endpoints there).
async fn register_identity(agent: &Agent, endpoint: &str) -> Result<U256, AgentError> {
    use crate::identity::{AutonetInfo, Registration, endpoints};
    let mut names = vec![endpoints::STATUS, endpoints::METRICS];
    if agent.opts.role.serves_shards() {
        names.push(endpoints::SHARDS);
    }
    if agent.opts.role == Role::Coordinator {
        names.push(endpoints::BLS_ATTESTATION);
    }
    let info = AutonetInfo {
        role: agent.opts.role.name().to_string(),
        project_id: agent.opts.project_id,
        chain_id: agent.provider.get_chain_id().await?,
    };
    let registration = Registration::new(info, agent.me, endpoint, &names);
    crate::identity::ensure_registered(
        &agent.provider,
        agent.contracts.identity,
        agent.me,
        agent.opts.from_block,
        &registration,
        &autonet_chain::TxOptions::default(),
    )
    .await
    .map_err(|e| AgentError::Other(e.to_string()))
}

async fn register_provider(
    provider: &ChainProvider,
    contracts: &Contracts,
    me: Address,
    endpoint: &str,
) -> Result<(), AgentError> {
    let shards = ShardProviders::new(contracts.shard_providers, provider.clone());
    let current = shards
        .getProvider(me)
        .call()
        .await
        .map_err(AgentError::read("provider record"))?;
    let tx = autonet_chain::TxOptions::default();
    let result = if !current.active {
        autonet_chain::send_and_confirm::<ShardProviders::ProviderRegistered, _, _>(
            &shards.registerProvider(endpoint.to_string()),
            &tx,
        )
        .await
        .map(|_| ())
    } else if current.endpoint != endpoint {
        autonet_chain::send_and_confirm::<ShardProviders::ProviderEndpointUpdated, _, _>(
            &shards.updateEndpoint(endpoint.to_string()),
            &tx,
        )
        .await
        .map(|_| ())
    } else {
        Ok(())
    };
    result.map_err(|source| AgentError::Tx {
        action: format!("register shard endpoint {endpoint}"),
        source: Box::new(source),
    })?;
    info!(endpoint, "shard endpoint registered on chain");
    Ok(())
}

/// The action windows (not the publish window) that are no longer than `confirmations` blocks.
fn short_windows(
    w: &autonet_bindings::project::IProject::Windows,
    confirmations: u64,
) -> Vec<(&'static str, u32)> {
    [
        ("commit", w.commit),
        ("solution reveal", w.solReveal),
        ("ground-truth reveal", w.gtReveal),
        ("vote commit", w.voteCommit),
        ("vote reveal", w.voteReveal),
    ]
    .into_iter()
    .filter(|(_, blocks)| u64::from(*blocks) <= confirmations)
    .collect()
}

/// Bind address helper for CLI defaults.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// How often the status page's stakes are read again from the chain.
const STAKES_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// The stakes of this node and of every participant its database has seen in the project
/// (proposers, revealed solvers and coordinators, model publishers), largest first.
async fn network_stakes(
    staking: &ParticipantStaking::ParticipantStakingInstance<ChainProvider>,
    db: &AgentDb,
    project_id: u64,
    me: Address,
) -> Result<Vec<crate::status::Stake>, AgentError> {
    let mut accounts = db.participants(project_id)?;
    if !accounts.contains(&me) {
        accounts.push(me);
    }
    let mut stakes = Vec::with_capacity(accounts.len());
    for account in accounts {
        let amount = staking
            .stakeOf(account)
            .call()
            .await
            .map_err(AgentError::read(format!("the stake of {account}")))?;
        let role = staking
            .roleOf(account)
            .call()
            .await
            .map_err(AgentError::read(format!("the role of {account}")))?;
        let role = autonet_bindings::enums::Role::label_of(role);
        stakes.push((amount, crate::status::Stake::new(account, role, amount)));
    }
    stakes.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.address.cmp(&b.1.address)));
    Ok(stakes.into_iter().map(|(_, s)| s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_no_longer_than_the_reorg_depth_are_named() {
        let w = autonet_bindings::project::IProject::Windows {
            commit: 40,
            gtReveal: 6,
            solReveal: 6,
            voteCommit: 15,
            voteReveal: 6,
            publish: 2,
        };
        assert!(
            short_windows(&w, 5).is_empty(),
            "the publish window is not an action window"
        );
        assert_eq!(
            short_windows(&w, 6),
            vec![
                ("solution reveal", 6),
                ("ground-truth reveal", 6),
                ("vote reveal", 6)
            ]
        );
    }
}
