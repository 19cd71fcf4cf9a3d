//! The node's effective configuration.
//!
//! This module owns where every setting comes from — command-line flag, then environment variable
//! (both through clap's `#[arg(long, env)]`), then the TOML file named by `--config`, then the
//! built-in default — and the redacted view of the result that is logged. The signing key comes
//! either from the environment (`AUTONET_PRIVATE_KEY`) or from an encrypted keystore named by
//! `--account` ([`crate::keystore`]), never both; a config file that carries a secret is rejected.
//! It must not open connections: `context` turns the configuration into a provider.

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

use crate::keystore::{self, KeystoreError, PasswordSource};

/// Default JSON-RPC endpoint (a local anvil).
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:8545";
/// The environment variable holding the hex private key of the operator's account.
pub const PRIVATE_KEY_ENV: &str = "AUTONET_PRIVATE_KEY";

/// Errors assembling the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this program.
    #[error("parsing config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        source: Box<toml::de::Error>,
    },
    /// The config file carries a secret.
    #[error(
        "config file {path} contains `{key}`: secrets are never read from files; use --account <NAME> (an encrypted keystore) or set {PRIVATE_KEY_ENV} in the environment instead"
    )]
    SecretInFile {
        /// The file.
        path: PathBuf,
        /// The offending key.
        key: String,
    },
    /// The private key in the environment is malformed (the value itself is never printed).
    #[error("{PRIVATE_KEY_ENV} is not a valid hex private key (32 bytes, optional 0x prefix)")]
    BadPrivateKey,
    /// A transaction needs a key and none was given.
    #[error(
        "this command signs transactions: pass --account <NAME> (a keystore made by `autonet key new` or `autonet key import`) or set {PRIVATE_KEY_ENV} to the account's hex private key"
    )]
    MissingPrivateKey,
    /// Both a raw key and a keystore account were given.
    #[error(
        "both {PRIVATE_KEY_ENV} and a keystore account (--account or AUTONET_ACCOUNT: `{0}`) are set: use one of them"
    )]
    TwoKeys(String),
    /// The keystore account could not be unlocked.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
}

/// Settings shared by every subcommand (flag > environment > `--config` file > default).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// JSON-RPC endpoint of the chain [default: http://127.0.0.1:8545]
    #[arg(long, env = "AUTONET_RPC_URL", global = true, value_name = "URL")]
    pub rpc_url: Option<String>,

    /// Address of the Registry; every other contract is discovered from it
    #[arg(long, env = "AUTONET_REGISTRY", global = true, value_name = "ADDRESS")]
    pub registry: Option<Address>,

    /// Deployments file written by `autonet deploy` (deployments/<chainId>.json) [default:
    /// deployments/<chainId>.json in the current directory, when neither this nor --registry is
    /// set]
    #[arg(long, env = "AUTONET_DEPLOYMENT", global = true, value_name = "FILE")]
    pub deployment: Option<PathBuf>,

    /// TOML file with defaults for the keys rpc_url, registry and deployment (never secrets)
    #[arg(long, env = "AUTONET_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Sign with this encrypted keystore (a file in the keystore directory, as `cast wallet
    /// --account`) instead of AUTONET_PRIVATE_KEY; unlocked with AUTONET_KEYSTORE_PASSWORD,
    /// --password-file or a prompt
    #[arg(long, env = "AUTONET_ACCOUNT", global = true, value_name = "NAME")]
    pub account: Option<String>,

    /// Directory of the encrypted keystores [default: ~/.foundry/keystores, shared with cast]
    #[arg(long, env = "AUTONET_KEYSTORE_DIR", global = true, value_name = "DIR")]
    pub keystore_dir: Option<PathBuf>,

    /// File whose first line is the keystore password (instead of AUTONET_KEYSTORE_PASSWORD or
    /// a prompt)
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Print machine-readable JSON on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// More logging on stderr (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The keys a `--config` TOML file may set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: Option<String>,
    /// Registry address.
    pub registry: Option<Address>,
    /// Deployments file (relative paths are relative to the config file).
    pub deployment: Option<PathBuf>,
}

impl FileConfig {
    /// Parses TOML text; `path` locates relative paths and names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        // Reject anything that looks like a secret before the typed parse, so the message names
        // the real problem instead of "unknown field".
        let raw: toml::Table = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        for key in raw.keys() {
            let lower = key.to_ascii_lowercase();
            if ["key", "secret", "password", "mnemonic"]
                .iter()
                .any(|s| lower.contains(s))
            {
                return Err(ConfigError::SecretInFile {
                    path: path.to_owned(),
                    key: key.clone(),
                });
            }
        }
        let mut file: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        if let (Some(deployment), Some(dir)) = (&file.deployment, path.parent())
            && deployment.is_relative()
        {
            file.deployment = Some(dir.join(deployment));
        }
        Ok(file)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

/// Where the contract addresses come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "value")]
pub enum ContractsSource {
    /// Discovered from this Registry.
    Registry(Address),
    /// Read from this deployments file (and checked against its Registry).
    Deployment(PathBuf),
    /// `deployments/<chainId>.json` in the current directory.
    DefaultDeploymentsDir,
}

/// The configuration every command runs with.
#[derive(Clone, Serialize)]
pub struct EffectiveConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// Where contract addresses come from (a Registry given explicitly wins over a file).
    pub contracts: ContractsSource,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Machine-readable output.
    pub json: bool,
    /// The operator's key (from the environment, or the keystore once unlocked); serialized as
    /// its address.
    #[serde(serialize_with = "redacted_signer")]
    pub signer: Option<PrivateKeySigner>,
    /// The keystore account to sign with (`--account`), if one was named.
    pub account: Option<String>,
    /// The keystore directory (`--keystore-dir`, else `~/.foundry/keystores`; none without
    /// `HOME`).
    pub keystore_dir: Option<PathBuf>,
    /// The file holding the keystore password (`--password-file`).
    pub password_file: Option<PathBuf>,
}

fn redacted_signer<S: serde::Serializer>(
    signer: &Option<PrivateKeySigner>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Redacted {
        address: String,
        private_key: &'static str,
    }
    signer
        .as_ref()
        .map(|k| Redacted {
            address: k.address().to_string(),
            private_key: "<redacted>",
        })
        .serialize(s)
}

impl std::fmt::Debug for EffectiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectiveConfig")
            .field("rpc_url", &self.rpc_url)
            .field("contracts", &self.contracts)
            .field("config_file", &self.config_file)
            .field("json", &self.json)
            .field(
                "signer",
                &self
                    .signer
                    .as_ref()
                    .map(|k| format!("{} (private key <redacted>)", k.address())),
            )
            .field("account", &self.account)
            .field("keystore_dir", &self.keystore_dir)
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl EffectiveConfig {
    /// Merges flag/environment values (`args`, already combined by clap) over the config file
    /// over the defaults. `private_key` is the raw value of [`PRIVATE_KEY_ENV`], if set. A
    /// keystore account is only recorded here; [`Self::unlock_account`] decrypts it.
    pub fn resolve(
        args: &GlobalArgs,
        file: Option<FileConfig>,
        private_key: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let file = file.unwrap_or_default();
        let rpc_url = args
            .rpc_url
            .clone()
            .or(file.rpc_url)
            .unwrap_or_else(|| DEFAULT_RPC_URL.to_owned());
        // A source given on the command line or in the environment beats both sources in the
        // file; within one level an explicit Registry beats a deployments file.
        let contracts = match (&args.registry, &args.deployment) {
            (Some(r), _) => ContractsSource::Registry(*r),
            (None, Some(d)) => ContractsSource::Deployment(d.clone()),
            (None, None) => match (file.registry, file.deployment) {
                (Some(r), _) => ContractsSource::Registry(r),
                (None, Some(d)) => ContractsSource::Deployment(d),
                (None, None) => ContractsSource::DefaultDeploymentsDir,
            },
        };
        let signer = match private_key.map(str::trim).filter(|k| !k.is_empty()) {
            Some(k) => Some(
                k.parse::<PrivateKeySigner>()
                    .map_err(|_| ConfigError::BadPrivateKey)?,
            ),
            None => None,
        };
        let account = args.account.clone().filter(|a| !a.is_empty());
        if let (Some(account), Some(_)) = (&account, &signer) {
            return Err(ConfigError::TwoKeys(account.clone()));
        }
        Ok(Self {
            rpc_url,
            contracts,
            config_file: args.config.clone(),
            json: args.json,
            signer,
            account,
            keystore_dir: keystore::resolve_dir(args.keystore_dir.as_deref()).ok(),
            password_file: args.password_file.clone(),
        })
    }

    /// The keystore directory, or [`KeystoreError::NoDirectory`].
    pub fn require_keystore_dir(&self) -> Result<&Path, KeystoreError> {
        self.keystore_dir
            .as_deref()
            .ok_or(KeystoreError::NoDirectory)
    }

    /// Where keystore passwords come from.
    pub fn passwords(&self) -> PasswordSource {
        PasswordSource {
            file: self.password_file.clone(),
        }
    }

    /// Decrypts the `--account` keystore into [`Self::signer`] (asking for its password as
    /// [`PasswordSource`] says); nothing to do without an account or once unlocked.
    pub fn unlock_account(&mut self) -> Result<(), ConfigError> {
        if self.signer.is_some() {
            return Ok(());
        }
        if let Some(account) = &self.account {
            let dir = self.require_keystore_dir()?;
            let signer = keystore::unlock(dir, account, &self.passwords())?;
            tracing::debug!(account, address = %signer.address(), "keystore unlocked");
            self.signer = Some(signer);
        }
        Ok(())
    }

    /// Reads the `--config` file (if any) and the key from the environment, then resolves (a
    /// keystore account stays locked: see [`Self::unlock_account`]).
    pub fn from_env(args: &GlobalArgs) -> Result<Self, ConfigError> {
        let file = args.config.as_deref().map(FileConfig::load).transpose()?;
        let key = std::env::var(PRIVATE_KEY_ENV).ok();
        Self::resolve(args, file, key.as_deref())
    }

    /// The signer, or [`ConfigError::MissingPrivateKey`].
    pub fn require_signer(&self) -> Result<&PrivateKeySigner, ConfigError> {
        self.signer.as_ref().ok_or(ConfigError::MissingPrivateKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const R1: &str = "0x00000000000000000000000000000000000000a1";
    const R2: &str = "0x00000000000000000000000000000000000000b2";

    fn file(text: &str) -> FileConfig {
        FileConfig::parse(text, Path::new("/etc/autonet/node.toml")).unwrap()
    }

    #[test]
    fn default_when_nothing_is_set() {
        let c = EffectiveConfig::resolve(&GlobalArgs::default(), None, None).unwrap();
        assert_eq!(c.rpc_url, DEFAULT_RPC_URL);
        assert_eq!(c.contracts, ContractsSource::DefaultDeploymentsDir);
        assert!(c.signer.is_none());
        assert!(c.require_signer().is_err());
    }

    #[test]
    fn file_beats_default_and_flag_beats_file() {
        let f = file(&format!(
            "rpc_url = \"http://file:8545\"\nregistry = \"{R1}\"\n"
        ));
        let c = EffectiveConfig::resolve(&GlobalArgs::default(), Some(f.clone()), None).unwrap();
        assert_eq!(c.rpc_url, "http://file:8545");
        assert_eq!(c.contracts, ContractsSource::Registry(R1.parse().unwrap()));

        let args = GlobalArgs {
            rpc_url: Some("http://flag:8545".into()),
            registry: Some(R2.parse().unwrap()),
            ..Default::default()
        };
        let c = EffectiveConfig::resolve(&args, Some(f.clone()), None).unwrap();
        assert_eq!(c.rpc_url, "http://flag:8545");
        assert_eq!(c.contracts, ContractsSource::Registry(R2.parse().unwrap()));

        // A deployments file on the command line beats a Registry in the file.
        let args = GlobalArgs {
            deployment: Some("d.json".into()),
            ..Default::default()
        };
        let c = EffectiveConfig::resolve(&args, Some(f), None).unwrap();
        assert_eq!(c.contracts, ContractsSource::Deployment("d.json".into()));
    }

    #[test]
    fn clap_reads_flags_over_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            g: GlobalArgs,
        }
        let t = T::try_parse_from(["t", "--rpc-url", "http://x:1", "--json", "-vv"]).unwrap();
        assert_eq!(t.g.rpc_url.as_deref(), Some("http://x:1"));
        assert!(t.g.json);
        assert_eq!(t.g.verbose, 2);
    }

    #[test]
    fn relative_deployment_paths_follow_the_config_file() {
        let f = file("deployment = \"deployments/31337.json\"");
        assert_eq!(
            f.deployment.unwrap(),
            PathBuf::from("/etc/autonet/deployments/31337.json")
        );
    }

    #[test]
    fn secrets_and_unknown_keys_in_the_file_are_rejected() {
        let err = FileConfig::parse(&format!("private_key = \"{KEY}\""), Path::new("n.toml"))
            .unwrap_err();
        assert!(matches!(err, ConfigError::SecretInFile { .. }), "{err}");
        assert!(err.to_string().contains(PRIVATE_KEY_ENV));
        assert!(!err.to_string().contains(KEY));
        let err = FileConfig::parse("rpcurl = \"x\"", Path::new("n.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn the_key_is_redacted_everywhere_it_is_shown() {
        let c = EffectiveConfig::resolve(&GlobalArgs::default(), None, Some(KEY)).unwrap();
        let address = c.require_signer().unwrap().address();
        let debug = format!("{c:?}");
        let json = serde_json::to_string(&c).unwrap();
        for shown in [&debug, &json] {
            assert!(!shown.contains(&KEY[2..]), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(shown.contains(&address.to_string()), "{shown}");
        }
        let err = EffectiveConfig::resolve(&GlobalArgs::default(), None, Some("0x1234"))
            .err()
            .unwrap();
        assert!(matches!(err, ConfigError::BadPrivateKey));
    }

    #[test]
    fn a_raw_key_and_an_account_together_are_refused() {
        let args = GlobalArgs {
            account: Some("operator".into()),
            keystore_dir: Some("/keys".into()),
            ..Default::default()
        };
        let err = EffectiveConfig::resolve(&args, None, Some(KEY)).unwrap_err();
        assert!(matches!(err, ConfigError::TwoKeys(_)), "{err}");
        assert!(err.to_string().contains("`operator`"), "{err}");
        assert!(!err.to_string().contains(&KEY[2..]), "{err}");
        let c = EffectiveConfig::resolve(&args, None, None).unwrap();
        assert_eq!(c.account.as_deref(), Some("operator"));
        assert_eq!(c.keystore_dir.as_deref(), Some(Path::new("/keys")));
        assert!(c.signer.is_none());
    }
}
