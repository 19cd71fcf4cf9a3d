//! `autonet key …`: the operator's encrypted keystores.
//!
//! This module owns the three key commands ([`KeyCmd`]: their arguments and `run`) — make a new
//! key, encrypt an existing one, list what the keystore directory holds — and what they print.
//! The file format, the directory and the password sources belong to [`crate::keystore`]; these
//! commands never talk to the chain.

use std::path::Path;

use alloy::signers::local::PrivateKeySigner;
use serde_json::json;

use super::{CommandError, Report};
use crate::config::EffectiveConfig;
use crate::keystore::{self, KeystoreError};

/// `autonet key …`.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCmd {
    /// Generate a new key and write it encrypted; prints its address and file
    #[command(after_help = "Examples:
  autonet key new --name operator        # asks for the password twice
  AUTONET_KEYSTORE_PASSWORD=… autonet key new --name solver-1 --keystore-dir /etc/autonet/keys")]
    New {
        /// The account's name: its file name, what --account takes [default: its address]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Encrypt an existing hex private key into a keystore; prints its address and file
    #[command(after_help = "Examples:
  autonet key import --name operator     # asks for the key (not shown), then the password twice
  autonet key import --name operator --private-key-env OLD_KEY --password-file ./pw")]
    Import {
        /// The account's name: its file name, what --account takes [default: its address]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Read the key from this environment variable [default: standard input, not echoed]
        #[arg(long, value_name = "VAR")]
        private_key_env: Option<String>,
    },
    /// Every keystore in the directory: name, address (when the file records it) and file
    List,
}

impl KeyCmd {
    /// Whether the command unlocks the operator's `--account` first: never, these commands make,
    /// encrypt or list keystores and ask for the passwords they need themselves.
    pub fn uses_key(&self) -> bool {
        false
    }

    /// Runs `autonet key …`.
    pub async fn run(self, config: EffectiveConfig) -> Result<Report, CommandError> {
        match self {
            KeyCmd::New { name } => new(&config, name.as_deref()),
            KeyCmd::Import {
                name,
                private_key_env,
            } => import(&config, name.as_deref(), private_key_env.as_deref()),
            KeyCmd::List => list(&config),
        }
    }
}

/// What `key list` shows for a keystore that does not record its address.
const LOCKED: &str = "locked (needs the password)";

/// How to sign with account `name` kept in `dir` (the flag for the directory only when it is not
/// the default one).
fn usage(name: &str, dir: &Path) -> String {
    let default = keystore::resolve_dir(None).ok();
    if default.as_deref() == Some(dir) {
        format!("--account {name}")
    } else {
        format!("--account {name} --keystore-dir {}", dir.display())
    }
}

/// Encrypts `key` into the keystore directory as `name` (default: its address).
fn store(
    config: &EffectiveConfig,
    key: &PrivateKeySigner,
    name: Option<&str>,
    verb: &str,
) -> Result<Report, CommandError> {
    let dir = config.require_keystore_dir()?;
    let address = key.address().to_string();
    let name = name.unwrap_or(&address);
    keystore::check_name(name)?;
    let target = dir.join(name);
    if target.exists() {
        return Err(KeystoreError::AlreadyExists {
            name: name.to_owned(),
            path: target,
        }
        .into());
    }
    let password = config.passwords().new_password(name)?;
    let path = keystore::create(dir, name, key, &password)?;
    let usage = usage(name, dir);
    Ok(Report {
        text: format!(
            "{verb} keystore `{name}`\naddress  {address}\nfile     {}\nsign with: autonet {usage} <command>\n",
            path.display()
        ),
        json: json!({ "name": name, "address": address, "path": path, "usage": usage }),
    })
}

/// `autonet key new`: a fresh random key, encrypted.
pub fn new(config: &EffectiveConfig, name: Option<&str>) -> Result<Report, CommandError> {
    store(config, &PrivateKeySigner::random(), name, "created")
}

/// `autonet key import`: an existing key (from environment variable `private_key_env`, else
/// standard input without echo), encrypted.
pub fn import(
    config: &EffectiveConfig,
    name: Option<&str>,
    private_key_env: Option<&str>,
) -> Result<Report, CommandError> {
    let key = keystore::read_private_key(private_key_env)?;
    store(config, &key, name, "imported into")
}

/// `autonet key list`: every keystore in the directory with its address when the file names it.
pub fn list(config: &EffectiveConfig) -> Result<Report, CommandError> {
    let dir = config.require_keystore_dir()?;
    let entries = keystore::list(dir)?;
    let mut text = String::new();
    if entries.is_empty() {
        text.push_str(&format!(
            "no keystores in {}: create one with `autonet key new` or `autonet key import`\n",
            dir.display()
        ));
    } else {
        text.push_str(&format!("keystores in {}:\n", dir.display()));
        let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for e in &entries {
            let address = e
                .address
                .map(|a| a.to_string())
                .unwrap_or_else(|| LOCKED.to_owned());
            text.push_str(&format!(
                "  {:width$}  {address:42}  {}\n",
                e.name,
                e.path.display()
            ));
        }
        if let Some(locked) = entries.iter().find(|e| e.address.is_none()) {
            text.push_str(&format!(
                "a keystore shown as `{LOCKED}` does not record its address: `autonet {} config` shows it after the password\n",
                usage(&locked.name, dir)
            ));
        }
    }
    Ok(Report {
        text,
        json: json!({
            "dir": dir,
            "keystores": entries
                .iter()
                .map(|e| json!({
                    "name": e.name,
                    "address": e.address.map(|a| a.to_string()),
                    "path": e.path,
                }))
                .collect::<Vec<_>>(),
        }),
    })
}
