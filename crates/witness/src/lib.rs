//! The witness log: an append-only, hash-chained record of what a node observed and decided —
//! each chain event it recorded (and each one a reorg took back), each action with the hash of
//! its inputs, each transaction it landed, each score — so that the node's history can be
//! checked, and cannot be rewritten once anchored on chain.
//!
//! - **Entries.** One JSON line per entry in `witness.jsonl` of the state directory. Entry `i`
//!   commits to entry `i − 1`: its hash is keccak256 of the previous hash, its index, time,
//!   block, task, kind, what and the keccak256 of its data ([`Entry::compute_hash`]).
//! - **Sealed data.** Data that would reveal a secret before its reveal (a solution's root and
//!   salt, a vote's scores, the proposer's eval spec) is written sealed: only its hash. Once the
//!   reveal lands, an `unseal` entry carries the data, which must hash to the sealed entry's.
//! - **Anchors.** A commit–reveal salt is `keccak256(head ‖ secret)` of the log's head when the
//!   salt was made ([`Witness::anchored_salt`]); the `anchor` entry that records it is sealed and
//!   unsealed with the reveal. The reveal's transaction carries the salt on chain, so the head is
//!   fixed there no later than the commitment that hides it — at no extra transaction. A node
//!   without a commit–reveal step (the aggregator) anchors its head in its ERC-8004 registration
//!   (`setMetadata(agentId, "autonet.witness", head)`) once per task it takes part in; the
//!   inference node, once per model it starts serving.
//! - **Checking.** [`verify`] re-hashes every entry, checks each link, each unsealed data
//!   against its seal and each anchor's salt against its head; [`onchain_anchors`] lists the
//!   transactions whose calldata must carry each anchored value (`autonet witness verify` checks
//!   them on chain). A changed byte anywhere fails, naming the entry.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alloy::primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

/// The log's file name in a state directory.
pub const FILE: &str = "witness.jsonl";

/// The file beside the log that keeps the data of sealed entries until their reveal (secrets, as
/// private as the agent's database).
pub const SEALED_FILE: &str = "witness-sealed.json";

/// The metadata key under which a node anchors its head in its ERC-8004 registration.
pub const METADATA_KEY: &str = "autonet.witness";

/// One entry of the log, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its index (0-based).
    pub i: u64,
    /// The previous entry's hash (zero for the first).
    pub prev: B256,
    /// Unix seconds when it was written.
    pub at: u64,
    /// The chain block it concerns (the head when it was written, or an event's block).
    pub block: u64,
    /// The task it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<u64>,
    /// `event`, `reorg`, `action`, `sent`, `skipped`, `score`, `anchor`, `unseal`, `payment`,
    /// `start`.
    pub kind: String,
    /// What happened, for people (an event's name, an action's key, ...).
    pub what: String,
    /// The data as JSON text, or absent while sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// keccak256 of the data's text.
    pub data_hash: B256,
    /// This entry's hash.
    pub hash: B256,
}

impl Entry {
    /// keccak256(prev ‖ i ‖ at ‖ block ‖ task (u64::MAX: none) ‖ keccak(kind) ‖ keccak(what) ‖
    /// data_hash), integers big-endian.
    pub fn compute_hash(&self) -> B256 {
        let mut b = Vec::with_capacity(32 * 4 + 8 * 4);
        b.extend_from_slice(self.prev.as_slice());
        for n in [self.i, self.at, self.block, self.task.unwrap_or(u64::MAX)] {
            b.extend_from_slice(&n.to_be_bytes());
        }
        b.extend_from_slice(keccak256(self.kind.as_bytes()).as_slice());
        b.extend_from_slice(keccak256(self.what.as_bytes()).as_slice());
        b.extend_from_slice(self.data_hash.as_slice());
        keccak256(&b)
    }
}

/// The data of an `anchor` entry (sealed until the reveal that carries its salt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The entry whose hash is anchored.
    pub head_index: u64,
    /// Its hash.
    pub head: B256,
    /// The random half of the salt.
    pub secret: B256,
    /// `keccak256(head ‖ secret)`: the salt sent on chain.
    pub salt: B256,
    /// The action whose salt it is (`solve:7`, `vote:7`, `propose:000003`).
    pub action: String,
}

impl Anchor {
    /// The salt of `head` and `secret`.
    pub fn salt_of(head: B256, secret: B256) -> B256 {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(head.as_slice());
        b[32..].copy_from_slice(secret.as_slice());
        keccak256(b)
    }
}

/// The data of an `unseal` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unseal {
    /// The sealed entry.
    pub entry: u64,
    /// Its data's text.
    pub data: String,
    /// The transaction that made it public (the reveal), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<B256>,
}

/// The data of an entry anchoring the head in a transaction (`anchored`): the value the
/// transaction's calldata carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchored {
    /// The value in the calldata (a salt, or a head).
    pub value: B256,
    /// The transaction.
    pub tx: B256,
    /// The entry whose hash it fixes.
    pub head_index: u64,
}

/// Why a log does not check.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// Reading or writing the file.
    #[error("witness log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An entry that does not check.
    #[error("witness log entry {index} (line {line}): {why}")]
    Entry {
        /// Its index (as far as known: the line's position).
        index: u64,
        /// Its line (1-based).
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// The log of one node, appended to as it works.
#[derive(Debug)]
pub struct Witness {
    path: PathBuf,
    sealed_path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    next: u64,
    head: B256,
    /// Sealed entries by what they seal (an action key): their index and data, kept (also in
    /// [`SEALED_FILE`]) for the unseal.
    sealed: HashMap<String, (u64, String)>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Witness {
    /// Opens (or creates) the log of `state_dir`, checking every entry already there: a node
    /// does not go on writing after a history that does not check.
    pub fn open(state_dir: &Path) -> Result<Self, WitnessError> {
        let path = state_dir.join(FILE);
        let entries = if path.exists() {
            let v = verify(&path)?;
            v.entries
        } else {
            Vec::new()
        };
        let io = |source| WitnessError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        // The data of entries still sealed, kept beside the log by an earlier life of the node.
        let sealed_path = state_dir.join(SEALED_FILE);
        let kept: HashMap<String, (u64, String)> = std::fs::read(&sealed_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut open_seals: HashMap<u64, B256> = HashMap::new();
        for e in &entries {
            if e.data.is_none() {
                open_seals.insert(e.i, e.data_hash);
            } else if e.kind == "unseal"
                && let Some(u) = e
                    .data
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<Unseal>(d).ok())
            {
                open_seals.remove(&u.entry);
            }
        }
        let sealed: HashMap<String, (u64, String)> = kept
            .into_iter()
            .filter(|(_, (i, text))| open_seals.get(i) == Some(&keccak256(text.as_bytes())))
            .collect();
        let (next, head) = entries
            .last()
            .map_or((0, B256::ZERO), |e| (e.i + 1, e.hash));
        Ok(Self {
            path,
            sealed_path,
            inner: Mutex::new(Inner {
                file,
                next,
                head,
                sealed,
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The index and hash of the last entry (`None` before the first).
    pub fn head(&self) -> Option<(u64, B256)> {
        let g = self.inner.lock().expect("witness lock");
        (g.next > 0).then_some((g.next - 1, g.head))
    }

    fn append(
        &self,
        g: &mut Inner,
        block: u64,
        task: Option<u64>,
        kind: &str,
        what: &str,
        (data, data_hash): (Option<String>, B256),
    ) -> (u64, B256) {
        let mut e = Entry {
            i: g.next,
            prev: g.head,
            at: now(),
            block,
            task,
            kind: kind.into(),
            what: what.into(),
            data,
            data_hash,
            hash: B256::ZERO,
        };
        e.hash = e.compute_hash();
        let line = serde_json::to_string(&e).expect("an entry serializes");
        // A log that cannot be written is reported, not fatal: the node's duties on chain come
        // first, and `verify` names the gap (a missing entry breaks the chain of hashes).
        if let Err(err) = writeln!(g.file, "{line}").and_then(|()| g.file.flush()) {
            tracing::error!(error = %err, path = %self.path.display(), "writing the witness log");
        }
        g.next += 1;
        g.head = e.hash;
        (e.i, e.hash)
    }

    /// Records `data` in the clear.
    pub fn record<T: Serialize>(
        &self,
        block: u64,
        task: Option<u64>,
        kind: &str,
        what: &str,
        data: &T,
    ) -> (u64, B256) {
        let text = serde_json::to_string(data).expect("witness data serializes");
        let hash = keccak256(text.as_bytes());
        let mut g = self.inner.lock().expect("witness lock");
        self.append(&mut g, block, task, kind, what, (Some(text), hash))
    }

    /// Records `data` sealed under `key` (only its hash), to be unsealed by [`Self::unseal`].
    /// Sealing the same key again (a restart re-preparing an action) writes nothing new.
    pub fn seal<T: Serialize>(
        &self,
        block: u64,
        task: Option<u64>,
        kind: &str,
        key: &str,
        data: &T,
    ) -> (u64, B256) {
        let text = serde_json::to_string(data).expect("witness data serializes");
        let hash = keccak256(text.as_bytes());
        let mut g = self.inner.lock().expect("witness lock");
        let out = self.append(&mut g, block, task, kind, key, (None, hash));
        g.sealed.insert(key.to_string(), (out.0, text));
        self.save_sealed(&g);
        out
    }

    /// Writes the data of the entries still sealed beside the log (replaced whole, atomically).
    fn save_sealed(&self, g: &Inner) {
        let tmp = self.sealed_path.with_extension("json.tmp");
        let text = serde_json::to_vec(&g.sealed).expect("sealed data serializes");
        if let Err(e) =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.sealed_path))
        {
            tracing::error!(error = %e, path = %self.sealed_path.display(), "keeping the witness log's sealed data");
        }
    }

    /// Unseals the entry sealed under `key` (its data made public by `tx`); nothing when none is
    /// sealed under it (already unsealed, or its data was lost: `verify` then reports it still
    /// sealed).
    pub fn unseal(&self, block: u64, task: Option<u64>, key: &str, tx: Option<B256>) {
        let mut g = self.inner.lock().expect("witness lock");
        self.unseal_locked(&mut g, block, task, key, tx);
        self.save_sealed(&g);
    }

    fn unseal_locked(
        &self,
        g: &mut Inner,
        block: u64,
        task: Option<u64>,
        key: &str,
        tx: Option<B256>,
    ) {
        let Some((entry, data)) = g.sealed.remove(key) else {
            return;
        };
        let text = serde_json::to_string(&Unseal { entry, data, tx }).expect("serializes");
        let hash = keccak256(text.as_bytes());
        self.append(g, block, task, "unseal", key, (Some(text), hash));
    }

    /// A reveal carrying `salt` landed in `tx`: unseals the anchor whose salt it is, and the
    /// action it anchors (whose secrets the reveal made public).
    pub fn reveal(&self, salt: B256, tx: B256, block: u64, task: Option<u64>) {
        let mut g = self.inner.lock().expect("witness lock");
        let found = g.sealed.iter().find_map(|(key, (_, text))| {
            let a: Anchor = serde_json::from_str(text).ok()?;
            (key.starts_with("anchor:") && a.salt == salt).then(|| (key.clone(), a.action))
        });
        if let Some((anchor, action)) = found {
            self.unseal_locked(&mut g, block, task, &action, Some(tx));
            self.unseal_locked(&mut g, block, task, &anchor, Some(tx));
            self.save_sealed(&g);
        }
    }

    /// A commit–reveal salt that anchors the log's head: `keccak256(head ‖ secret)`, with a
    /// sealed `anchor` entry under `anchor:<action>` (unsealed with the reveal).
    pub fn anchored_salt(&self, block: u64, task: Option<u64>, action: &str) -> B256 {
        let secret = B256::from(rand::random::<[u8; 32]>());
        let (head_index, head) = self.head().unwrap_or((0, B256::ZERO));
        let salt = Anchor::salt_of(head, secret);
        let anchor = Anchor {
            head_index,
            head,
            secret,
            salt,
            action: action.to_string(),
        };
        self.seal(block, task, "anchor", &format!("anchor:{action}"), &anchor);
        salt
    }
}

/// A checked log.
#[derive(Debug, Default)]
pub struct Verified {
    /// Its entries.
    pub entries: Vec<Entry>,
    /// Entries still sealed (their reveal has not landed, or the node stopped before it).
    pub sealed: Vec<u64>,
    /// Anchors whose salt was checked against their head.
    pub anchors: usize,
}

/// Re-checks the log at `path`: every line an entry, every hash, every link, every unsealed
/// data against its seal, every anchor's salt against its head. The first failure names its
/// entry.
pub fn verify(path: &Path) -> Result<Verified, WitnessError> {
    let file = File::open(path).map_err(|source| WitnessError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Verified::default();
    let mut sealed: HashMap<u64, B256> = HashMap::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let index = n as u64;
        let bad = |why: String| WitnessError::Entry {
            index,
            line: n + 1,
            why,
        };
        let line = line.map_err(|e| bad(format!("unreadable: {e}")))?;
        let e: Entry =
            serde_json::from_str(&line).map_err(|e| bad(format!("not an entry: {e}")))?;
        if e.i != index {
            return Err(bad(format!("its index is {}", e.i)));
        }
        let prev = out.entries.last().map_or(B256::ZERO, |p: &Entry| p.hash);
        if e.prev != prev {
            return Err(bad(format!(
                "it names {} as the previous entry's hash, which is {prev}",
                e.prev
            )));
        }
        if let Some(d) = &e.data
            && keccak256(d.as_bytes()) != e.data_hash
        {
            return Err(bad("its data does not hash to its data_hash".into()));
        }
        let computed = e.compute_hash();
        if computed != e.hash {
            return Err(bad(format!(
                "its hash is {} but its content hashes to {computed}",
                e.hash
            )));
        }
        match (&e.data, e.kind.as_str()) {
            (None, _) => {
                sealed.insert(e.i, e.data_hash);
            }
            (Some(d), "unseal") => {
                let u: Unseal = serde_json::from_str(d)
                    .map_err(|err| bad(format!("an unseal that does not parse: {err}")))?;
                let Some(h) = sealed.remove(&u.entry) else {
                    return Err(bad(format!(
                        "it unseals entry {}, which is not sealed",
                        u.entry
                    )));
                };
                if keccak256(u.data.as_bytes()) != h {
                    return Err(bad(format!(
                        "the data it unseals does not hash to entry {}'s seal",
                        u.entry
                    )));
                }
                let sealed_entry = &out.entries[u.entry as usize];
                if sealed_entry.kind == "anchor" {
                    let a: Anchor = serde_json::from_str(&u.data)
                        .map_err(|err| bad(format!("an anchor that does not parse: {err}")))?;
                    let head = if a.head_index < sealed_entry.i && sealed_entry.i > 0 {
                        out.entries[a.head_index as usize].hash
                    } else {
                        B256::ZERO
                    };
                    if a.head != head || Anchor::salt_of(a.head, a.secret) != a.salt {
                        return Err(bad(format!(
                            "the anchor of entry {} does not bind entry {}'s hash into its salt",
                            u.entry, a.head_index
                        )));
                    }
                    out.anchors += 1;
                }
            }
            _ => {}
        }
        out.entries.push(e);
    }
    let mut still: Vec<u64> = sealed.into_keys().collect();
    still.sort_unstable();
    out.sealed = still;
    Ok(out)
}

/// What must be on chain for a checked log: each transaction whose calldata carries an anchored
/// value (a salt once unsealed with its reveal's transaction, or a head in an `anchored` entry),
/// with the entry that claims it.
pub fn onchain_anchors(v: &Verified) -> Vec<(u64, B256, B256)> {
    let mut out = Vec::new();
    for e in &v.entries {
        let Some(d) = &e.data else { continue };
        match e.kind.as_str() {
            "unseal" => {
                if let Ok(u) = serde_json::from_str::<Unseal>(d)
                    && let Some(tx) = u.tx
                    && v.entries[u.entry as usize].kind == "anchor"
                    && let Ok(a) = serde_json::from_str::<Anchor>(&u.data)
                {
                    out.push((e.i, tx, a.salt));
                }
            }
            "anchored" => {
                if let Ok(a) = serde_json::from_str::<Anchored>(d) {
                    out.push((e.i, a.tx, a.value));
                }
            }
            _ => {}
        }
    }
    out
}

/// The tasks the node took part in (it landed a proposal, commitment, vote or publication for
/// them) whose log has no anchor for them: each needs a salt anchor (`anchor`) or an on-chain
/// anchor (`anchored`).
pub fn unanchored_tasks(v: &Verified) -> Vec<u64> {
    use std::collections::BTreeSet;
    // An anchor names the action whose salt it is (`anchor:solve:7`); an on-chain anchor, the
    // task it was sent for.
    let actions: BTreeSet<&str> = v
        .entries
        .iter()
        .filter(|e| e.kind == "anchor")
        .filter_map(|e| e.what.strip_prefix("anchor:"))
        .collect();
    let tasks: BTreeSet<u64> = v
        .entries
        .iter()
        .filter(|e| e.kind == "anchored")
        .filter_map(|e| e.task)
        .collect();
    let missing: BTreeSet<u64> = v
        .entries
        .iter()
        .filter(|e| {
            e.kind == "sent"
                && ["propose:", "solve:", "vote:", "publish:"]
                    .iter()
                    .any(|p| e.what.starts_with(p))
        })
        .filter(|e| !actions.contains(e.what.as_str()))
        .filter_map(|e| e.task)
        .filter(|t| !tasks.contains(t))
        .collect();
    missing.into_iter().collect()
}

/// The account whose log it is (its `start` entries'), if it says.
pub fn owner(v: &Verified) -> Option<alloy::primitives::Address> {
    v.entries.iter().find(|e| e.kind == "start").and_then(|e| {
        let d: serde_json::Value = serde_json::from_str(e.data.as_deref()?).ok()?;
        d["address"].as_str()?.parse().ok()
    })
}

/// Checks every anchor of a checked log on chain ([`onchain_anchors`]): each transaction exists,
/// succeeded, was sent by the log's owner and carries the anchored value in its calldata. Returns
/// how many were checked; the first that fails names its entry.
pub async fn check_onchain<P: alloy::providers::Provider>(
    provider: &P,
    v: &Verified,
) -> Result<usize, WitnessError> {
    use alloy::consensus::Transaction as _;
    use alloy::network::TransactionResponse as _;
    let owner = owner(v);
    let anchors = onchain_anchors(v);
    for (i, tx, value) in &anchors {
        let bad = |why: String| WitnessError::Entry {
            index: *i,
            line: *i as usize + 1,
            why,
        };
        let t = provider
            .get_transaction_by_hash(*tx)
            .await
            .map_err(|e| bad(format!("reading its anchor transaction {tx}: {e}")))?
            .ok_or_else(|| bad(format!("its anchor transaction {tx} is not on chain")))?;
        let receipt = provider
            .get_transaction_receipt(*tx)
            .await
            .map_err(|e| bad(format!("reading the receipt of {tx}: {e}")))?
            .ok_or_else(|| bad(format!("its anchor transaction {tx} has no receipt")))?;
        if !receipt.status() {
            return Err(bad(format!("its anchor transaction {tx} reverted")));
        }
        if let Some(owner) = owner
            && t.from() != owner
        {
            return Err(bad(format!(
                "its anchor transaction {tx} was sent by {}, not the log's owner {owner}",
                t.from()
            )));
        }
        if !t.input().windows(32).any(|w| w == value.as_slice()) {
            return Err(bad(format!(
                "its anchor transaction {tx} does not carry {value}"
            )));
        }
    }
    Ok(anchors.len())
}

/// Anchors `witness`'s head in the ERC-8004 registration `agent_id` of the sender
/// (`setMetadata(agentId, "autonet.witness", head)`, sent through `provider`), and records the
/// transaction in an `anchored` entry for `task`. Returns the transaction (`None`: the log is
/// empty).
pub async fn anchor_in_identity<P: alloy::providers::Provider + Clone>(
    witness: &Witness,
    provider: &P,
    identity: alloy::primitives::Address,
    agent_id: alloy::primitives::U256,
    task: Option<u64>,
    tx: &autonet_chain::TxOptions,
) -> Result<Option<B256>, String> {
    use autonet_bindings::AgentIdentity;
    let Some((head_index, head)) = witness.head() else {
        return Ok(None);
    };
    let c = autonet_chain::send_and_confirm::<AgentIdentity::MetadataSet, _, _>(
        &AgentIdentity::new(identity, provider.clone()).setMetadata(
            agent_id,
            METADATA_KEY.into(),
            head.to_vec().into(),
        ),
        tx,
    )
    .await
    .map_err(|e| format!("anchoring the witness log's head: {e}"))?;
    let hash = c.receipt.transaction_hash;
    witness.record(
        c.receipt.block_number.unwrap_or_default(),
        task,
        "anchored",
        METADATA_KEY,
        &Anchored {
            value: head,
            tx: hash,
            head_index,
        },
    );
    tracing::info!(head = %head, entry = head_index, tx = %hash, "witness log head anchored in the ERC-8004 registration");
    Ok(Some(hash))
}

/// The entries of `task` (and the unseals of its sealed entries), in order: the task's story as
/// the node saw it.
pub fn story(v: &Verified, task: u64) -> Vec<&Entry> {
    v.entries.iter().filter(|e| e.task == Some(task)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_log(dir: &Path) -> Witness {
        let w = Witness::open(dir).unwrap();
        w.record(
            10,
            None,
            "start",
            "solver",
            &serde_json::json!({"me": "0x01"}),
        );
        w.record(
            11,
            Some(7),
            "event",
            "TaskProposed",
            &serde_json::json!({"task": 7}),
        );
        let salt = w.anchored_salt(12, Some(7), "solve:7");
        w.seal(
            12,
            Some(7),
            "action",
            "solve:7",
            &serde_json::json!({"salt": salt, "root": "0xaa"}),
        );
        w.record(
            13,
            Some(7),
            "sent",
            "solve:7",
            &serde_json::json!({"tx": "0x02"}),
        );
        // A restart between the commitment and the reveal loses nothing.
        drop(w);
        let w = Witness::open(dir).unwrap();
        w.reveal(salt, B256::repeat_byte(9), 20, Some(7));
        w
    }

    #[test]
    fn a_log_checks_and_its_anchor_binds_the_head_into_the_salt() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_log(dir.path());
        let v = verify(w.path()).unwrap();
        assert_eq!(v.entries.len(), 7);
        assert!(v.sealed.is_empty(), "{:?}", v.sealed);
        assert_eq!(v.anchors, 1);
        let anchors = onchain_anchors(&v);
        assert_eq!(anchors.len(), 1);
        assert_eq!(anchors[0].1, B256::repeat_byte(9));
        // The anchored salt is the one the action's data committed to.
        assert!(v.entries[3].data.is_none(), "the action is written sealed");
        let unsealed: Unseal = serde_json::from_str(v.entries[5].data.as_deref().unwrap()).unwrap();
        assert_eq!(unsealed.entry, 3);
        let data: serde_json::Value = serde_json::from_str(&unsealed.data).unwrap();
        assert_eq!(data["salt"], serde_json::json!(anchors[0].2));
        assert_eq!(story(&v, 7).len(), 6);
        assert!(unanchored_tasks(&v).is_empty());
        // Reopened, it goes on from its head.
        let again = Witness::open(dir.path()).unwrap();
        assert_eq!(again.head(), Some((6, v.entries[6].hash)));
        again.record(30, None, "event", "X", &1);
        assert_eq!(verify(again.path()).unwrap().entries.len(), 8);
    }

    #[test]
    fn one_changed_byte_anywhere_fails_and_names_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_log(dir.path());
        let clean = std::fs::read(w.path()).unwrap();
        let lines: Vec<usize> = std::iter::once(0)
            .chain(
                clean
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        let mut checked = 0;
        for pos in (0..clean.len()).step_by(7) {
            if clean[pos] == b'\n' {
                continue;
            }
            let mut bytes = clean.clone();
            bytes[pos] = if bytes[pos] == b'1' { b'2' } else { b'1' };
            if bytes == clean {
                continue;
            }
            std::fs::write(w.path(), &bytes).unwrap();
            let line = lines.iter().filter(|&&start| start <= pos).count();
            match verify(w.path()) {
                Err(WitnessError::Entry { line: l, index, .. }) => {
                    assert_eq!(l, line, "byte {pos}");
                    assert_eq!(index, (line - 1) as u64, "byte {pos}");
                }
                other => panic!("byte {pos} changed and the log {other:?}"),
            }
            checked += 1;
        }
        assert!(checked > 100, "{checked}");
        std::fs::write(w.path(), &clean).unwrap();
        assert!(verify(w.path()).is_ok());
        // A dropped entry breaks the next link.
        let text = String::from_utf8(clean).unwrap();
        let without: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, l)| l)
            .collect();
        std::fs::write(w.path(), without.join("\n") + "\n").unwrap();
        let e = verify(w.path()).unwrap_err().to_string();
        assert!(e.contains("entry 2 (line 3)"), "{e}");
    }

    #[test]
    fn an_unseal_that_does_not_match_its_seal_fails() {
        let dir = tempfile::tempdir().unwrap();
        let w = Witness::open(dir.path()).unwrap();
        w.seal(
            1,
            Some(1),
            "action",
            "vote:1",
            &serde_json::json!({"scores": [1, 2]}),
        );
        // Forge: an unseal of other data, hashed correctly into the chain.
        {
            let mut g = w.inner.lock().unwrap();
            g.sealed
                .insert("vote:1".into(), (0, "{\"scores\":[9,9]}".into()));
        }
        w.unseal(2, Some(1), "vote:1", None);
        let e = verify(w.path()).unwrap_err().to_string();
        assert!(e.contains("entry 1") && e.contains("seal"), "{e}");
        // Opening a log that does not check refuses to go on writing.
        assert!(Witness::open(dir.path()).is_err());
    }
}
