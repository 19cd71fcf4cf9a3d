//! A coordinator's BLS key (`docs/bls.md`): created once in the agent's state directory and
//! registered in `ModelShardRegistry` with a proof of possession, so that its signatures can
//! count in a BLS aggregate attestation.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use autonet_bindings::ModelShardRegistry;
use autonet_bls::{PublicKey, SecretKey, g1_words, g2_words};
use tracing::info;

use crate::agent::{Agent, AgentError};

/// The key file in the agent's state directory (hex, owner-readable only).
pub const KEY_FILE: &str = "bls.key";

/// The G2 half of a key as the contract takes it: `[x.c1, x.c0, y.c1, y.c0]`.
pub fn g2_flat(pk: &PublicKey) -> [U256; 4] {
    let [x, y] = g2_words(&pk.g2);
    [x[0], x[1], y[0], y[1]]
}

/// Loads the key from `dir/bls.key`, or creates it (32 random bytes, written to a temporary
/// file with mode 0600 and renamed, so a crash never leaves half a key).
pub fn load_or_create(dir: &Path) -> Result<SecretKey, AgentError> {
    let path = dir.join(KEY_FILE);
    let bad = |e: String| AgentError::Other(format!("{}: {e}", path.display()));
    match fs::read_to_string(&path) {
        Ok(text) => SecretKey::from_hex(&text).map_err(|e| {
            bad(format!(
                "{e}; restore the key from a backup, or delete the file to make a new one and \
                 register it again"
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = loop {
                if let Ok(k) = SecretKey::from_bytes(&rand::random::<[u8; 32]>()) {
                    break k;
                }
            };
            write_private(&path, &format!("{}\n", B256::from(key.to_bytes()))).map_err(bad)?;
            info!(path = %path.display(), "created a BLS key");
            Ok(key)
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// Registers `key` for this coordinator unless the registry already holds it; returns the
/// signer index.
pub async fn ensure_registered(agent: &Agent, key: &SecretKey) -> Result<u64, AgentError> {
    let pk = key.public_key();
    let shards = agent.shards();
    let current = shards
        .blsKeyOf(agent.me)
        .call()
        .await
        .map_err(AgentError::read("the registered BLS key"))?;
    if current.registered && current.pkG1 == g1_words(&pk.g1) {
        let index = current.index.to::<u64>();
        info!(index, "BLS key already registered");
        return Ok(index);
    }
    let chain_id = agent.provider.get_chain_id().await?;
    let pop = key.proof_of_possession(chain_id, agent.contracts.shard_registry, agent.me);
    let done = agent
        .send::<ModelShardRegistry::BlsKeyRegistered, _, _>(
            "register the BLS key",
            &shards.registerBlsKey(g1_words(&pk.g1), g2_flat(&pk), g1_words(&pop.0)),
        )
        .await?;
    let index = done.event.index.to::<u64>();
    info!(index, "BLS key registered with its proof of possession");
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), a);
    }

    #[test]
    fn a_damaged_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bls.key") && err.contains("32 bytes of hex"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(KEY_FILE)).unwrap(),
            "not a key"
        );
    }
}
