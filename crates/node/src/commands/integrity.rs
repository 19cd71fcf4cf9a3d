//! `autonet integrity show|check`: this build's code fingerprint and how it compares with the
//! hash governance approved.
//!
//! This module owns the node's [`this_build`] identity (the fingerprint `build.rs` embedded from
//! `crates/node/integrity-sources.txt`) and the two commands ([`IntegrityCmd`]: their arguments
//! and `run`); the comparison with the Registry is `autonet_agents::integrity`, the fingerprint
//! algorithm `autonet-integrity`.

use std::path::{Path, PathBuf};

use alloy::primitives::B256;
use autonet_agents::{CodeIdentity, check_code};
use serde_json::json;

use super::{CommandError, Context, Report};
use crate::config::EffectiveConfig;

/// `autonet integrity …`.
#[derive(Debug, clap::Subcommand)]
pub enum IntegrityCmd {
    /// Print this build's code fingerprint and the Registry key governance approves it under
    Show {
        /// Also recompute the fingerprint from this checkout and compare
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
    /// Compare this build's fingerprint with `node.code.hash.<version>` in the Registry; exits
    /// non-zero unless they are equal
    Check,
}

impl IntegrityCmd {
    /// Whether the command unlocks the operator's key: never, both only read.
    pub fn uses_key(&self) -> bool {
        false
    }

    /// Runs `autonet integrity …` (only `check` connects to the chain).
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        match self {
            IntegrityCmd::Show { repo } => show(repo.as_deref()),
            IntegrityCmd::Check => check(&Context::connect(config).await?).await,
        }
    }
}

/// The sources list, relative to the repository root.
pub const SOURCES_LIST: &str = "crates/node/integrity-sources.txt";

/// This binary's version and code fingerprint.
pub fn this_build() -> CodeIdentity {
    CodeIdentity {
        version: env!("CARGO_PKG_VERSION").to_string(),
        fingerprint: env!("AUTONET_CODE_FINGERPRINT")
            .parse::<B256>()
            .expect("build.rs embeds a 32-byte hex fingerprint"),
    }
}

/// `autonet integrity show [--repo DIR]`.
pub fn show(repo: Option<&Path>) -> Result<Report, CommandError> {
    let id = this_build();
    let mut text = format!(
        "autonet {}\ncode fingerprint  {}\nregistry key      {}\nsources           {} files listed in {SOURCES_LIST}\n",
        id.version,
        id.fingerprint,
        id.registry_key(),
        env!("AUTONET_CODE_FILES"),
    );
    let mut j = json!({
        "version": id.version,
        "fingerprint": id.fingerprint.to_string(),
        "registry_key": id.registry_key(),
        "files": env!("AUTONET_CODE_FILES").parse::<u64>().unwrap_or(0),
    });
    if let Some(repo) = repo {
        let (fp, files) = autonet_integrity::fingerprint_from_list(repo, SOURCES_LIST)
            .map_err(|e| CommandError::Invalid(format!("{}: {e}", repo.display())))?;
        let recomputed = B256::from(fp.0);
        let same = recomputed == id.fingerprint;
        text.push_str(&format!(
            "checkout {}      {recomputed} over {} files: {}\n",
            repo.display(),
            files.len(),
            if same {
                "the same code as this binary"
            } else {
                "DIFFERENT from this binary"
            }
        ));
        j["checkout"] = json!({ "path": repo, "fingerprint": recomputed.to_string(), "files": files.len(), "same": same });
    }
    Ok(Report { text, json: j })
}

/// `autonet integrity check`: exits non-zero unless the Registry approves this build.
pub async fn check(ctx: &Context) -> Result<Report, CommandError> {
    let id = this_build();
    let outcome = check_code(&ctx.provider, ctx.contracts.registry, &id)
        .await
        .map_err(|e| CommandError::Invalid(e.to_string()))?;
    let explained = outcome.explain(&id);
    if !outcome.approved() {
        return Err(CommandError::Invalid(explained));
    }
    Ok(Report {
        text: explained,
        json: json!({
            "approved": true,
            "version": id.version,
            "fingerprint": id.fingerprint.to_string(),
            "registry_key": id.registry_key(),
            "registry": ctx.contracts.registry.to_string(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded fingerprint is the one a checkout of this tree recomputes: build.rs tracks
    /// every listed source (edit one and this binary's fingerprint follows).
    #[test]
    fn the_embedded_fingerprint_is_this_trees() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let (fp, files) = autonet_integrity::fingerprint_from_list(&root, SOURCES_LIST).unwrap();
        assert_eq!(B256::from(fp.0), this_build().fingerprint);
        assert_eq!(files.len().to_string(), env!("AUTONET_CODE_FILES"));
        for file in [
            "crates/agents/src/roles/mod.rs",
            "crates/spec/src/models.rs",
            "crates/status/src/lib.rs",
        ] {
            assert!(files.iter().any(|f| f == file), "{file}");
        }
        assert!(files.iter().any(|f| f == "Cargo.lock"));
        // The development network's harness is not production code: outside the fingerprint,
        // while the rest of the node's sources are in it.
        assert!(files.iter().any(|f| f == "crates/node/src/cli.rs"));
        assert!(
            !files
                .iter()
                .any(|f| f.starts_with("crates/node/src/devnet/")),
            "{files:?}"
        );
    }

    #[test]
    fn show_compares_a_checkout() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let r = show(Some(&root)).unwrap();
        assert_eq!(r.json["checkout"]["same"], true, "{}", r.text);
        let err = show(Some(Path::new("/nonexistent"))).unwrap_err();
        assert!(err.to_string().contains("integrity-sources.txt"), "{err}");
    }
}
