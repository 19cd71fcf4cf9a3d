//! The fail-closed code-integrity check (`docs/protocol.md` §8.2).
//!
//! A staked role may only run code the DAO approved: the node's build-time fingerprint (see
//! `autonet-integrity`) must equal the `bytes32` that governance stored in the Registry under
//! `node.code.hash.<version>`. This module owns reading that key and judging it; the agent loop
//! ([`crate::run`]) refuses to start on anything but [`CodeCheck::Approved`] and re-checks
//! periodically, taking no new work while the check fails. A missing key, a different value and
//! a Registry that cannot be read all count as "not approved" — never as a pass.

use std::fmt;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use autonet_bindings::Registry;
use autonet_chain::ChainProvider;

use crate::agent::AgentError;

/// Registry key prefix of the approved code hashes.
pub const CODE_HASH_PREFIX: &str = "node.code.hash.";

/// What this node is: its version and its code fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeIdentity {
    /// The node's version (the Registry key's suffix).
    pub version: String,
    /// SHA-256 over the protocol-critical sources, embedded at build time.
    pub fingerprint: B256,
}

impl CodeIdentity {
    /// The Registry key holding the approved hash of this version.
    pub fn registry_key(&self) -> String {
        format!("{CODE_HASH_PREFIX}{}", self.version)
    }
}

/// The outcome of comparing this node with the Registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// The Registry holds exactly this node's fingerprint.
    Approved,
    /// Governance never published a hash for this version.
    Missing,
    /// Governance published another hash for this version.
    Differs {
        /// The hash in the Registry.
        published: B256,
    },
}

impl CodeCheck {
    /// Whether a staked role may take work.
    pub fn approved(&self) -> bool {
        matches!(self, CodeCheck::Approved)
    }

    /// The outcome in plain words, with what to do about it.
    pub fn explain(&self, id: &CodeIdentity) -> String {
        let key = id.registry_key();
        match self {
            CodeCheck::Approved => format!(
                "code approved: this node's fingerprint {} is the one governance published as `{key}`",
                id.fingerprint
            ),
            CodeCheck::Missing => format!(
                "code not approved: the Registry holds no `{key}`. This node's fingerprint is {}; \
                 governance must publish it first (`autonet gov propose code-hash`), or run a \
                 version the DAO approved",
                id.fingerprint
            ),
            CodeCheck::Differs { published } => format!(
                "code not approved: `{key}` in the Registry is {published} but this node's \
                 fingerprint is {} — this build's protocol sources differ from the approved \
                 release; run the approved release (check with `autonet integrity show --repo \
                 <checkout>`) or have governance publish this fingerprint",
                id.fingerprint
            ),
        }
    }
}

impl fmt::Display for CodeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeCheck::Approved => f.write_str("approved"),
            CodeCheck::Missing => f.write_str("missing"),
            CodeCheck::Differs { .. } => f.write_str("differs"),
        }
    }
}

/// Reads `node.code.hash.<version>` from the Registry and compares it with `id`.
pub async fn check_code(
    provider: &ChainProvider,
    registry: Address,
    id: &CodeIdentity,
) -> Result<CodeCheck, AgentError> {
    let r = Registry::new(registry, provider.clone())
        .tryGetBytes32(id.registry_key())
        .call()
        .await
        .map_err(AgentError::read(format!(
            "`{}` from the Registry",
            id.registry_key()
        )))?;
    Ok(judge(r.set, r.value, id))
}

/// The pure comparison behind [`check_code`].
pub fn judge(set: bool, published: B256, id: &CodeIdentity) -> CodeCheck {
    if !set {
        CodeCheck::Missing
    } else if published == id.fingerprint {
        CodeCheck::Approved
    } else {
        CodeCheck::Differs { published }
    }
}

/// How an agent applies the check.
#[derive(Clone, Debug)]
pub struct IntegrityPolicy {
    /// This node.
    pub identity: CodeIdentity,
    /// `false` only with the explicit development flag: the agent then runs unapproved code and
    /// says so loudly on every start and every re-check that fails.
    pub enforce: bool,
    /// Pause between re-checks while running.
    pub recheck: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> CodeIdentity {
        CodeIdentity {
            version: "0.1.0".into(),
            fingerprint: B256::repeat_byte(7),
        }
    }

    #[test]
    fn only_the_exact_hash_passes() {
        assert_eq!(
            judge(true, B256::repeat_byte(7), &id()),
            CodeCheck::Approved
        );
        assert_eq!(judge(false, B256::ZERO, &id()), CodeCheck::Missing);
        // A key set to zero is not "missing" and not approved either.
        assert_eq!(
            judge(true, B256::ZERO, &id()),
            CodeCheck::Differs {
                published: B256::ZERO
            }
        );
        assert!(!judge(true, B256::repeat_byte(8), &id()).approved());
    }

    #[test]
    fn explanations_name_the_key_and_both_hashes() {
        let text = CodeCheck::Differs {
            published: B256::repeat_byte(8),
        }
        .explain(&id());
        assert!(text.contains("node.code.hash.0.1.0"), "{text}");
        assert!(text.contains(&B256::repeat_byte(8).to_string()), "{text}");
        assert!(text.contains(&B256::repeat_byte(7).to_string()), "{text}");
        assert!(
            CodeCheck::Missing
                .explain(&id())
                .contains("autonet gov propose code-hash")
        );
    }
}
