//! `autonet witness verify|show`: re-checks a node's witness log (`autonet_agents::witness`) and
//! prints a task's story as the node saw it.

use std::path::{Path, PathBuf};

use autonet_agents::witness::{self, Verified};
use serde_json::json;

use super::{CommandError, Context, Report};
use crate::config::EffectiveConfig;

/// `autonet witness …`.
#[derive(Debug, clap::Subcommand)]
pub enum WitnessCmd {
    /// Re-check a node's witness log: every entry's hash and link, every unsealed secret against
    /// its seal, every anchor's salt against the head it binds and, unless --offline, every
    /// anchor transaction on chain (sent by the node, carrying the anchored value). Exits
    /// non-zero naming the first entry that fails
    Verify {
        /// The node's state directory (holds witness.jsonl)
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// Do not check the anchors on chain
        #[arg(long)]
        offline: bool,
    },
    /// Print a task's story as the node saw it (its entries in order; sealed ones by hash)
    Show {
        /// The node's state directory (holds witness.jsonl)
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// The task
        #[arg(long)]
        task: u64,
    },
}

impl WitnessCmd {
    /// Whether the command unlocks the operator's key: never.
    pub fn uses_key(&self) -> bool {
        false
    }

    /// Runs `autonet witness …` (only `verify` without `--offline` connects to the chain).
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        match self {
            WitnessCmd::Verify { state_dir, offline } => {
                let ctx = if offline {
                    None
                } else {
                    Some(Context::connect(config).await?)
                };
                verify(&state_dir, ctx.as_ref().map(|c| &c.provider)).await
            }
            WitnessCmd::Show { state_dir, task } => show(&state_dir, task),
        }
    }
}

fn checked(state_dir: &Path) -> Result<Verified, CommandError> {
    witness::verify(&state_dir.join(witness::FILE))
        .map_err(|e| CommandError::Invalid(e.to_string()))
}

/// `autonet witness verify`: the log, and its anchors on chain when `provider` is given.
pub async fn verify<P: alloy::providers::Provider>(
    state_dir: &Path,
    provider: Option<&P>,
) -> Result<Report, CommandError> {
    let v = checked(state_dir)?;
    let on_chain = match provider {
        Some(p) => Some(
            witness::check_onchain(p, &v)
                .await
                .map_err(|e| CommandError::Invalid(e.to_string()))?,
        ),
        None => None,
    };
    let unanchored = witness::unanchored_tasks(&v);
    if !unanchored.is_empty() {
        return Err(CommandError::Invalid(format!(
            "the witness log in {} anchors nothing for tasks {unanchored:?} the node took part in",
            state_dir.display()
        )));
    }
    let head = v
        .entries
        .last()
        .map(|e| e.hash.to_string())
        .unwrap_or_default();
    let text = format!(
        "witness log {}: {} entries check (head {head}); {} anchors bind the head into a salt; {}; {} entries still sealed{}",
        state_dir.join(witness::FILE).display(),
        v.entries.len(),
        v.anchors,
        match on_chain {
            Some(n) => format!("{n} anchor transactions checked on chain"),
            None => "anchors not checked on chain (--offline)".into(),
        },
        v.sealed.len(),
        if v.sealed.is_empty() {
            String::new()
        } else {
            format!(" (their reveal has not landed: entries {:?})", v.sealed)
        }
    );
    Ok(Report {
        text,
        json: json!({
            "entries": v.entries.len(),
            "head": head,
            "anchors": v.anchors,
            "anchors_on_chain": on_chain,
            "sealed": v.sealed,
            "owner": witness::owner(&v),
        }),
    })
}

/// `autonet witness show --task N`.
fn show(state_dir: &Path, task: u64) -> Result<Report, CommandError> {
    let v = checked(state_dir)?;
    let story = witness::story(&v, task);
    if story.is_empty() {
        return Err(CommandError::Invalid(format!(
            "the witness log in {} has no entry for task {task}",
            state_dir.display()
        )));
    }
    let mut text = format!("task {task} as {} saw it:\n", state_dir.display());
    for e in &story {
        let data = match &e.data {
            Some(d) if d.len() > 160 => format!("{}…", &d[..d.floor_char_boundary(160)]),
            Some(d) => d.clone(),
            None => format!("sealed {}", e.data_hash),
        };
        text.push_str(&format!(
            "  #{:<5} block {:<6} {:<8} {:<22} {data}\n",
            e.i, e.block, e.kind, e.what
        ));
    }
    Ok(Report {
        text,
        json: json!({ "task": task, "entries": story }),
    })
}
