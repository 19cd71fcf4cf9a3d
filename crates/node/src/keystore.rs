//! Encrypted key files: the operator's keys at rest.
//!
//! This module owns the keystore directory (by default `~/.foundry/keystores`, the one
//! `cast wallet` uses, so the two programs share accounts), creating and reading Web3 Secret
//! Storage v3 files (scrypt + AES-128-CTR, through alloy's `eth-keystore` support), and where a
//! keystore's password comes from (`--password-file`, [`PASSWORD_ENV`], or a prompt without echo
//! on a terminal). A keystore is named by its file name, as with `cast wallet --account`.
//! Files written here carry the account's `address` as geth's do; cast ignores that field.
//! It must not decide which key a command uses: that is [`crate::config`].

use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::{LocalSignerError, PrivateKeySigner};
use serde::Serialize;
use serde_json::Value;

/// The environment variable naming the keystore account to sign with (as `--account`).
pub const ACCOUNT_ENV: &str = "AUTONET_ACCOUNT";
/// The environment variable naming the keystore directory (as `--keystore-dir`).
pub const KEYSTORE_DIR_ENV: &str = "AUTONET_KEYSTORE_DIR";
/// The environment variable holding the password of the keystore being created or unlocked.
pub const PASSWORD_ENV: &str = "AUTONET_KEYSTORE_PASSWORD";
/// The default keystore directory below the home directory (shared with `cast wallet`).
pub const DEFAULT_DIR_IN_HOME: &str = ".foundry/keystores";

/// Errors creating, listing or unlocking keystores. None of them carries a password or a key.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// Neither `--keystore-dir` nor `HOME` says where keystores live.
    #[error(
        "no keystore directory: pass --keystore-dir <DIR> or set {KEYSTORE_DIR_ENV} (HOME is not set, so ~/{DEFAULT_DIR_IN_HOME} cannot be used)"
    )]
    NoDirectory,
    /// The name cannot be a keystore file name.
    #[error(
        "`{0}` is not a usable account name: a file name in the keystore directory (no `/`, not starting with `.`)"
    )]
    BadName(String),
    /// No keystore of that name.
    #[error(
        "no keystore named `{name}` in {}: create it with `autonet key new --name {name}` or `autonet key import --name {name}`, or pass --keystore-dir <DIR> where it is{}",
        dir.display(),
        if available.is_empty() { " (that directory holds none)".to_owned() } else { format!(" (that directory holds: {})", available.join(", ")) }
    )]
    UnknownAccount {
        /// The account asked for.
        name: String,
        /// The directory searched.
        dir: PathBuf,
        /// The keystores that directory does hold.
        available: Vec<String>,
    },
    /// A keystore of that name exists already.
    #[error(
        "a keystore named `{name}` already exists ({}): choose another --name, or remove the file first",
        path.display()
    )]
    AlreadyExists {
        /// The name.
        name: String,
        /// The existing file.
        path: PathBuf,
    },
    /// No password source was given and there is no terminal to ask on.
    #[error(
        "account `{name}` ({}) is locked and no password was given: set {PASSWORD_ENV}, pass --password-file <FILE>, or run in a terminal to be asked",
        path.display()
    )]
    NoPassword {
        /// The account.
        name: String,
        /// Its keystore file.
        path: PathBuf,
    },
    /// The password does not open the keystore.
    #[error(
        "wrong password for account `{name}` ({}): {from} does not open it; give the password the keystore was made with ({PASSWORD_ENV}, --password-file <FILE> or the prompt)",
        path.display()
    )]
    WrongPassword {
        /// The account.
        name: String,
        /// Its keystore file.
        path: PathBuf,
        /// Where the wrong password came from (e.g. `the password in AUTONET_KEYSTORE_PASSWORD`).
        from: String,
    },
    /// The file is not a keystore this program can read.
    #[error("account `{name}`: {} is not a readable keystore: {reason}", path.display())]
    Unreadable {
        /// The account.
        name: String,
        /// Its keystore file.
        path: PathBuf,
        /// What is wrong (never secret).
        reason: String,
    },
    /// The decrypted key does not belong to the address the file declares.
    #[error(
        "account `{name}` ({}): the file says address {declared} but its key is {actual}'s; the file was altered",
        path.display()
    )]
    AddressMismatch {
        /// The account.
        name: String,
        /// Its keystore file.
        path: PathBuf,
        /// The `address` field.
        declared: Address,
        /// The key's address.
        actual: Address,
    },
    /// A new password was refused.
    #[error("{0}")]
    BadNewPassword(&'static str),
    /// The private key to import is malformed (the value itself is never printed).
    #[error("{0} is not a valid hex private key (32 bytes, optional 0x prefix)")]
    BadPrivateKey(String),
    /// Reading a password, a key or the directory failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KeystoreError {
    let what = what.into();
    move |source| KeystoreError::Io { what, source }
}

/// The keystore directory: the one given (`--keystore-dir` / [`KEYSTORE_DIR_ENV`]), else
/// `$HOME/.foundry/keystores`.
pub fn resolve_dir(given: Option<&Path>) -> Result<PathBuf, KeystoreError> {
    match given {
        Some(dir) => Ok(dir.to_owned()),
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| Path::new(&home).join(DEFAULT_DIR_IN_HOME))
            .ok_or(KeystoreError::NoDirectory),
    }
}

/// Checks that `name` is a plain file name (so `--account` cannot reach outside the directory).
pub fn check_name(name: &str) -> Result<(), KeystoreError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name
            .chars()
            .any(|c| matches!(c, '/' | '\\') || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(KeystoreError::BadName(name.to_owned()))
    }
}

/// One keystore file in a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The account's name (the file name; what `--account` takes).
    pub name: String,
    /// The address the file declares, if it declares one (checked when the keystore is unlocked).
    pub address: Option<Address>,
    /// The file.
    pub path: PathBuf,
}

/// Whether `json` looks like a Web3 Secret Storage file, and the address it declares.
fn parse_keystore(json: &Value) -> Option<Option<Address>> {
    let object = json.as_object()?;
    if !(object.contains_key("crypto") || object.contains_key("Crypto")) {
        return None;
    }
    let address = object.get("address").and_then(Value::as_str).and_then(|a| {
        let hex = a.strip_prefix("0x").unwrap_or(a);
        hex.parse::<Address>().ok()
    });
    Some(address)
}

/// Every keystore in `dir`, sorted by name; files that are not keystores are skipped. A missing
/// directory holds none.
pub fn list(dir: &Path) -> Result<Vec<Entry>, KeystoreError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("reading {}", dir.display()))(e)),
    };
    let mut entries = Vec::new();
    for item in read {
        let item = item.map_err(io(format!("reading {}", dir.display())))?;
        let path = item.path();
        let Some(name) = item.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some(address) = serde_json::from_str::<Value>(&text)
            .ok()
            .as_ref()
            .and_then(parse_keystore)
        else {
            continue;
        };
        entries.push(Entry {
            name,
            address,
            path,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Writes `key` encrypted with `password` to `dir/name` (creating `dir` readable by its owner
/// only), records its address in the file, and checks that the file decrypts to the same key.
/// Refuses to overwrite an existing file.
pub fn create(
    dir: &Path,
    name: &str,
    key: &PrivateKeySigner,
    password: &Password,
) -> Result<PathBuf, KeystoreError> {
    check_name(name)?;
    let path = dir.join(name);
    if path.exists() {
        return Err(KeystoreError::AlreadyExists {
            name: name.to_owned(),
            path,
        });
    }
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        restrict(dir, 0o700)?;
    }
    let unreadable = |reason: String| KeystoreError::Unreadable {
        name: name.to_owned(),
        path: path.clone(),
        reason,
    };
    PrivateKeySigner::encrypt_keystore(
        dir,
        &mut rand::thread_rng(),
        key.to_bytes(),
        &password.secret,
        Some(name),
    )
    .map_err(|e| unreadable(e.to_string()))?;
    restrict(&path, 0o600)?;

    // Geth's files name their address, so `autonet key list` (and other wallets) can show it
    // without the password.
    let text = std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
    let mut json: Value = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    if let Some(object) = json.as_object_mut() {
        object.insert(
            "address".into(),
            Value::String(hex_lower(key.address().as_slice())),
        );
    }
    std::fs::write(&path, json.to_string()).map_err(io(format!("writing {}", path.display())))?;

    let back = unlock_with(name, &path, password)?;
    if back.address() != key.address() {
        return Err(unreadable(
            "it does not decrypt to the key just written".into(),
        ));
    }
    Ok(path)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<(), KeystoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(format!(
        "restricting the permissions of {}",
        path.display()
    )))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<(), KeystoreError> {
    Ok(())
}

/// The keystore file of account `name` in `dir`, or [`KeystoreError::UnknownAccount`] listing
/// what the directory holds.
pub fn find(dir: &Path, name: &str) -> Result<PathBuf, KeystoreError> {
    check_name(name)?;
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    Err(KeystoreError::UnknownAccount {
        name: name.to_owned(),
        dir: dir.to_owned(),
        available: list(dir)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.name)
            .collect(),
    })
}

/// Decrypts account `name`'s keystore at `path` with `password`, and checks the address the
/// file declares (if any) against the key.
pub fn unlock_with(
    name: &str,
    path: &Path,
    password: &Password,
) -> Result<PrivateKeySigner, KeystoreError> {
    let unreadable = |reason: String| KeystoreError::Unreadable {
        name: name.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let signer =
        PrivateKeySigner::decrypt_keystore(path, &password.secret).map_err(|e| match e {
            LocalSignerError::EthKeystoreError(eth_keystore::KeystoreError::MacMismatch) => {
                KeystoreError::WrongPassword {
                    name: name.to_owned(),
                    path: path.to_owned(),
                    from: password.from.clone(),
                }
            }
            other => unreadable(other.to_string()),
        })?;
    let declared = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .as_ref()
        .and_then(parse_keystore)
        .flatten();
    if let Some(declared) = declared
        && declared != signer.address()
    {
        return Err(KeystoreError::AddressMismatch {
            name: name.to_owned(),
            path: path.to_owned(),
            declared,
            actual: signer.address(),
        });
    }
    Ok(signer)
}

/// A password and where it came from (for messages; the password itself is never shown).
pub struct Password {
    /// The password.
    pub secret: String,
    /// Where it came from, e.g. `the password in AUTONET_KEYSTORE_PASSWORD`.
    pub from: String,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password(<redacted>, {})", self.from)
    }
}

/// Where a password comes from: `--password-file`, else [`PASSWORD_ENV`], else a prompt
/// without echo when standard input is a terminal.
#[derive(Debug, Clone, Default)]
pub struct PasswordSource {
    /// `--password-file`: the password is the file's first line.
    pub file: Option<PathBuf>,
}

impl PasswordSource {
    /// The password given without a prompt (file, then environment), if any.
    pub fn given(&self) -> Result<Option<Password>, KeystoreError> {
        if let Some(file) = &self.file {
            let text = std::fs::read_to_string(file)
                .map_err(io(format!("reading the password file {}", file.display())))?;
            let first = text.lines().next().unwrap_or("");
            return Ok(Some(Password {
                secret: first.trim_end_matches('\r').to_owned(),
                from: format!("the password in {}", file.display()),
            }));
        }
        Ok(std::env::var(PASSWORD_ENV).ok().map(|secret| Password {
            secret,
            from: format!("the password in {PASSWORD_ENV}"),
        }))
    }

    /// The password to unlock account `name` (at `path`).
    pub fn unlock_password(&self, name: &str, path: &Path) -> Result<Password, KeystoreError> {
        if let Some(password) = self.given()? {
            return Ok(password);
        }
        if !std::io::stdin().is_terminal() {
            return Err(KeystoreError::NoPassword {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        let secret = rpassword::prompt_password(format!("Password for account `{name}`: "))
            .map_err(io("reading the password from the terminal"))?;
        Ok(Password {
            secret,
            from: "the password typed".into(),
        })
    }

    /// The password of a new keystore: given once, or typed twice at a terminal. An empty one
    /// is refused.
    pub fn new_password(&self, name: &str) -> Result<Password, KeystoreError> {
        let password = match self.given()? {
            Some(password) => password,
            None if std::io::stdin().is_terminal() => {
                let first =
                    rpassword::prompt_password(format!("Password for the new keystore `{name}`: "))
                        .map_err(io("reading the password from the terminal"))?;
                let second = rpassword::prompt_password("The same password again: ")
                    .map_err(io("reading the password from the terminal"))?;
                if first != second {
                    return Err(KeystoreError::BadNewPassword(
                        "the two passwords differ; nothing was written",
                    ));
                }
                Password {
                    secret: first,
                    from: "the password typed".into(),
                }
            }
            None => {
                return Err(KeystoreError::BadNewPassword(
                    "a new keystore needs a password: set AUTONET_KEYSTORE_PASSWORD, pass --password-file <FILE>, or run in a terminal to be asked",
                ));
            }
        };
        if password.secret.is_empty() {
            return Err(KeystoreError::BadNewPassword(
                "refusing an empty password for a new keystore",
            ));
        }
        Ok(password)
    }
}

/// Unlocks account `name` in `dir`, asking `passwords` for its password.
pub fn unlock(
    dir: &Path,
    name: &str,
    passwords: &PasswordSource,
) -> Result<PrivateKeySigner, KeystoreError> {
    let path = find(dir, name)?;
    let password = passwords.unlock_password(name, &path)?;
    unlock_with(name, &path, &password)
}

/// How [`open_or_create`] got its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The keystore existed and was unlocked.
    Unlocked,
    /// No keystore of that name existed: a fresh key was generated and written.
    Created,
}

/// Unlocks account `name` in `dir` when its keystore exists, else generates a fresh key and
/// writes it there encrypted (with a new password from `passwords`): the same key on every later
/// call. Returns the key, its file and which of the two happened.
pub fn open_or_create(
    dir: &Path,
    name: &str,
    passwords: &PasswordSource,
) -> Result<(PrivateKeySigner, PathBuf, Opened), KeystoreError> {
    check_name(name)?;
    let path = dir.join(name);
    if path.is_file() {
        let password = passwords.unlock_password(name, &path)?;
        return Ok((unlock_with(name, &path, &password)?, path, Opened::Unlocked));
    }
    let key = PrivateKeySigner::random();
    let password = passwords.new_password(name)?;
    let path = create(dir, name, &key, &password)?;
    Ok((key, path, Opened::Created))
}

/// Reads a hex private key to import: from environment variable `var` when given, else from
/// standard input (a prompt without echo at a terminal, the first line when piped).
pub fn read_private_key(var: Option<&str>) -> Result<PrivateKeySigner, KeystoreError> {
    let (raw, from) = match var {
        Some(var) => (
            std::env::var(var).map_err(|_| {
                KeystoreError::BadPrivateKey(format!("{var} (it is not set in the environment)"))
            })?,
            var.to_owned(),
        ),
        None if std::io::stdin().is_terminal() => (
            rpassword::prompt_password("Private key (hex, not shown): ")
                .map_err(io("reading the private key from the terminal"))?,
            "the key typed".to_owned(),
        ),
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(io("reading the private key from standard input"))?;
            (line, "the key on standard input".to_owned())
        }
    };
    raw.trim()
        .parse::<PrivateKeySigner>()
        .map_err(|_| KeystoreError::BadPrivateKey(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(secret: &str) -> Password {
        Password {
            secret: secret.into(),
            from: "the test's password".into(),
        }
    }

    const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    #[test]
    fn names_stay_inside_the_directory() {
        for good in [
            "operator",
            "solver-1",
            "a.b_c",
            "my key",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        ] {
            check_name(good).unwrap();
        }
        for bad in ["", ".hidden", "..", "../x", "a/b", "a\\b", "a\nb"] {
            assert!(
                matches!(check_name(bad), Err(KeystoreError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn create_list_unlock_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keystores");
        let key: PrivateKeySigner = KEY.parse().unwrap();
        let path = create(&keys, "op", &key, &pw("pw")).unwrap();
        assert_eq!(path, keys.join("op"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&keys), 0o700);
            assert_eq!(mode(&path), 0o600);
        }
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["version"], 3);
        assert_eq!(json["crypto"]["kdf"], "scrypt");
        assert_eq!(json["crypto"]["cipher"], "aes-128-ctr");
        assert_eq!(json["address"], hex_lower(key.address().as_slice()));

        std::fs::write(keys.join("notes.txt"), "not a keystore").unwrap();
        let entries = list(&keys).unwrap();
        assert_eq!(
            entries,
            vec![Entry {
                name: "op".into(),
                address: Some(key.address()),
                path: path.clone()
            }]
        );
        assert_eq!(
            unlock_with("op", &path, &pw("pw")).unwrap().address(),
            key.address()
        );
        let err = unlock_with("op", &path, &pw("nope")).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassword { .. }), "{err}");
        assert!(err.to_string().contains("`op`"), "{err}");
        assert!(err.to_string().contains("the test's password"), "{err}");
        assert!(!err.to_string().contains("nope"), "{err}");

        let err = create(&keys, "op", &key, &pw("pw")).unwrap_err();
        assert!(matches!(err, KeystoreError::AlreadyExists { .. }), "{err}");
        let err = find(&keys, "other").unwrap_err();
        assert!(err.to_string().contains("holds: op"), "{err}");
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn open_or_create_makes_a_key_once_then_unlocks_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "secret\n").unwrap();
        let passwords = PasswordSource {
            file: Some(file.clone()),
        };
        let keys = dir.path().join("keys");
        let (first, path, how) = open_or_create(&keys, "solver", &passwords).unwrap();
        assert_eq!(how, Opened::Created);
        assert_eq!(path, keys.join("solver"));
        let (again, _, how) = open_or_create(&keys, "solver", &passwords).unwrap();
        assert_eq!(how, Opened::Unlocked);
        assert_eq!(again.address(), first.address());
        std::fs::write(&file, "other\n").unwrap();
        let err = open_or_create(&keys, "solver", &passwords).unwrap_err();
        assert!(matches!(err, KeystoreError::WrongPassword { .. }), "{err}");
        assert!(matches!(
            open_or_create(&keys, "../x", &passwords),
            Err(KeystoreError::BadName(_))
        ));
    }

    #[test]
    fn a_tampered_address_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let key: PrivateKeySigner = KEY.parse().unwrap();
        let path = create(dir.path(), "op", &key, &pw("pw")).unwrap();
        let mut json: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["address"] = Value::String("00".repeat(20));
        std::fs::write(&path, json.to_string()).unwrap();
        let err = unlock_with("op", &path, &pw("pw")).unwrap_err();
        assert!(
            matches!(err, KeystoreError::AddressMismatch { .. }),
            "{err}"
        );
    }
}
