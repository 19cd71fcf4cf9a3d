//! The local content-addressed shard store. This module owns the on-disk layout and its
//! guarantees; it never decides what to fetch or serve (see [`crate::client`] and
//! [`crate::server`]).
//!
//! # Layout
//!
//! ```text
//! <dir>/<root>/manifest.json   canonical manifest JSON (root = 0x-prefixed lower-case hex)
//! <dir>/<root>/<index>.shard   shard bytes, index in decimal
//! ```
//!
//! # Guarantees
//!
//! - Every file is written to a temporary name in the same directory, fsynced, then renamed into
//!   place, so a reader sees either nothing or a complete file.
//! - Shards are written before the manifest: a root is listed ([`Store::has`], [`Store::list`])
//!   only once its manifest is in place. A provider may hold only some shards of a root
//!   ([`Store::held`]).
//! - Every read re-verifies: a manifest must parse canonically, validate and carry the root of
//!   its directory; a shard must hash to the manifest's hash for its index. A shard that fails is
//!   never returned ([`StoreError::CorruptShard`]).
//!
//! All methods do blocking file I/O; async callers use `tokio::task::spawn_blocking`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use autonet_protocol::merkle::{self, Hash32};
use thiserror::Error;
use tracing::warn;

use crate::manifest::{Manifest, ManifestError, ShardParams, parse_hash32};
use crate::shard::{self, Encoded, ShardError};

const MANIFEST_FILE: &str = "manifest.json";
const SHARD_SUFFIX: &str = ".shard";

/// Errors of the local store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// No manifest is stored for this root.
    #[error("unknown root {0}")]
    UnknownRoot(String),
    /// The stored manifest is invalid or not canonical.
    #[error("stored manifest of {root} is invalid: {source}")]
    BadManifest {
        /// The root (hex).
        root: String,
        /// Why.
        source: ManifestError,
    },
    /// The stored manifest belongs to another root than its directory.
    #[error("manifest stored under {dir_root} has root {manifest_root}")]
    ManifestRootMismatch {
        /// The directory's root (hex).
        dir_root: String,
        /// The manifest's root (hex).
        manifest_root: String,
    },
    /// The shard index is not below `k + m`.
    #[error("shard index {index} out of range for {root} (k + m = {count})")]
    IndexOutOfRange {
        /// The root (hex).
        root: String,
        /// The index.
        index: usize,
        /// `k + m`.
        count: usize,
    },
    /// The shard is not held here.
    #[error("shard {index} of {root} is not stored")]
    MissingShard {
        /// The root (hex).
        root: String,
        /// The index.
        index: usize,
    },
    /// The stored shard fails its hash or size check; it is not served.
    #[error("stored shard {index} of {root} is corrupt: {source}")]
    CorruptShard {
        /// The root (hex).
        root: String,
        /// The index.
        index: usize,
        /// The failed check.
        source: ShardError,
    },
    /// Encoding, checking or reconstructing failed.
    #[error(transparent)]
    Shard(#[from] ShardError),
}

/// A content-addressed shard store rooted at a directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError + use<> {
    let path = path.to_owned();
    move |source| StoreError::Io { op, path, source }
}

impl Store {
    /// Opens (creating if needed) a store at `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        Ok(Self { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn root_dir(&self, root: &Hash32) -> PathBuf {
        self.dir.join(merkle::to_hex(root))
    }

    fn shard_path(&self, root: &Hash32, index: usize) -> PathBuf {
        self.root_dir(root).join(format!("{index}{SHARD_SUFFIX}"))
    }

    /// Shards `bytes` with the default parameters and stores manifest and all shards.
    pub fn put(&self, bytes: &[u8]) -> Result<Manifest, StoreError> {
        self.put_with(bytes, ShardParams::default())
    }

    /// Shards `bytes` with `params` and stores manifest and all shards.
    pub fn put_with(&self, bytes: &[u8], params: ShardParams) -> Result<Manifest, StoreError> {
        let encoded = shard::encode(bytes, params)?;
        self.insert(&encoded)?;
        Ok(encoded.manifest)
    }

    /// Stores an already encoded blob: every shard (checked against the manifest), then the
    /// manifest.
    pub fn insert(&self, encoded: &Encoded) -> Result<(), StoreError> {
        let manifest = &encoded.manifest;
        manifest
            .validate()
            .map_err(|source| StoreError::BadManifest {
                root: merkle::to_hex(&manifest.root),
                source,
            })?;
        if encoded.shards.len() != manifest.shard_count() {
            return Err(ShardError::WrongSlotCount {
                expected: manifest.shard_count(),
                found: encoded.shards.len(),
            }
            .into());
        }
        for (index, bytes) in encoded.shards.iter().enumerate() {
            self.put_shard(manifest, index, bytes)?;
        }
        self.put_manifest(manifest)
    }

    /// Stores one shard of `manifest` after checking its hash (a provider holding a subset).
    /// The manifest itself is written by [`Store::put_manifest`].
    pub fn put_shard(
        &self,
        manifest: &Manifest,
        index: usize,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        shard::check_shard(manifest, index, bytes)?;
        let dir = self.root_dir(&manifest.root);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        write_atomic(&self.shard_path(&manifest.root, index), bytes)
    }

    /// Stores a (validated) manifest; from then on its root is listed.
    pub fn put_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        manifest
            .validate()
            .map_err(|source| StoreError::BadManifest {
                root: merkle::to_hex(&manifest.root),
                source,
            })?;
        let dir = self.root_dir(&manifest.root);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        write_atomic(&dir.join(MANIFEST_FILE), &manifest.canonical_json())
    }

    /// Whether a manifest is stored for `root` (shards may still be partial: see [`Store::held`]).
    pub fn has(&self, root: &Hash32) -> bool {
        self.root_dir(root).join(MANIFEST_FILE).is_file()
    }

    /// Roots with a stored manifest, sorted.
    pub fn list(&self) -> Result<Vec<Hash32>, StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))?;
        let mut roots = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let Some(root) = entry.file_name().to_str().and_then(parse_hash32) else {
                continue;
            };
            if self.has(&root) {
                roots.push(root);
            }
        }
        roots.sort_unstable();
        Ok(roots)
    }

    /// The manifest of `root`, re-validated.
    pub fn manifest(&self, root: &Hash32) -> Result<Manifest, StoreError> {
        let path = self.root_dir(root).join(MANIFEST_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::UnknownRoot(merkle::to_hex(root)));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let manifest = Manifest::from_json(&bytes).map_err(|source| StoreError::BadManifest {
            root: merkle::to_hex(root),
            source,
        })?;
        if &manifest.root != root {
            return Err(StoreError::ManifestRootMismatch {
                dir_root: merkle::to_hex(root),
                manifest_root: merkle::to_hex(&manifest.root),
            });
        }
        Ok(manifest)
    }

    /// Indices of the shard files present for `root` (not verified), ascending.
    pub fn held(&self, root: &Hash32) -> Result<Vec<usize>, StoreError> {
        let manifest = self.manifest(root)?;
        Ok((0..manifest.shard_count())
            .filter(|&i| self.shard_path(root, i).is_file())
            .collect())
    }

    /// Shard `index` of `root`, verified against the stored manifest.
    pub fn get_shard(&self, root: &Hash32, index: usize) -> Result<Vec<u8>, StoreError> {
        let manifest = self.manifest(root)?;
        self.read_shard(&manifest, index)
    }

    /// Shard `index` of an already loaded `manifest`, verified against it.
    pub fn read_shard(&self, manifest: &Manifest, index: usize) -> Result<Vec<u8>, StoreError> {
        let root = &manifest.root;
        if index >= manifest.shard_count() {
            return Err(StoreError::IndexOutOfRange {
                root: merkle::to_hex(root),
                index,
                count: manifest.shard_count(),
            });
        }
        let path = self.shard_path(root, index);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingShard {
                    root: merkle::to_hex(root),
                    index,
                });
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        shard::check_shard(manifest, index, &bytes).map_err(|source| {
            warn!(root = %merkle::to_hex(root), index, error = %source, "stored shard is corrupt");
            StoreError::CorruptShard {
                root: merkle::to_hex(root),
                index,
                source,
            }
        })?;
        Ok(bytes)
    }

    /// The original bytes of `root`, rebuilt from whichever stored shards verify (missing or
    /// corrupt ones are skipped while at least `k` remain).
    pub fn get(&self, root: &Hash32) -> Result<Vec<u8>, StoreError> {
        let manifest = self.manifest(root)?;
        let mut slots = Vec::with_capacity(manifest.shard_count());
        let mut have = 0;
        for index in 0..manifest.shard_count() {
            let slot = if have < usize::from(manifest.k) {
                match self.read_shard(&manifest, index) {
                    Ok(bytes) => Some(bytes),
                    Err(StoreError::MissingShard { .. } | StoreError::CorruptShard { .. }) => None,
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            have += usize::from(slot.is_some());
            slots.push(slot);
        }
        Ok(shard::reconstruct(&manifest, slots)?)
    }
}

/// Writes `bytes` to `path` through a fsynced temporary file in the same directory and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().expect("store paths have a parent");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("store file names are ASCII");
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))?;
        // Make the rename itself durable.
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn put_get_list_has_held() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("s")).unwrap();
        assert!(store.list().unwrap().is_empty());
        let bytes = data(1234);
        let man = store.put(&bytes).unwrap();
        assert!(store.has(&man.root));
        assert_eq!(store.list().unwrap(), vec![man.root]);
        assert_eq!(store.held(&man.root).unwrap(), (0..6).collect::<Vec<_>>());
        assert_eq!(store.get(&man.root).unwrap(), bytes);
        assert_eq!(store.manifest(&man.root).unwrap(), man);
        let enc = shard::encode(&bytes, ShardParams::default()).unwrap();
        for i in 0..6 {
            assert_eq!(store.get_shard(&man.root, i).unwrap(), enc.shards[i]);
        }
        // Layout is as documented.
        let dir = tmp.path().join("s").join(merkle::to_hex(&man.root));
        assert_eq!(
            fs::read(dir.join("manifest.json")).unwrap(),
            man.canonical_json()
        );
        assert_eq!(fs::read(dir.join("5.shard")).unwrap(), enc.shards[5]);
        // Idempotent.
        assert_eq!(store.put(&bytes).unwrap(), man);
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn unknown_root_and_out_of_range() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let root = merkle::keccak256(b"nothing");
        assert!(!store.has(&root));
        assert!(matches!(store.get(&root), Err(StoreError::UnknownRoot(_))));
        let man = store.put(&data(10)).unwrap();
        assert!(matches!(
            store.get_shard(&man.root, 6),
            Err(StoreError::IndexOutOfRange {
                index: 6,
                count: 6,
                ..
            })
        ));
    }

    #[test]
    fn flipped_byte_is_never_served_and_get_routes_around_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let bytes = data(999);
        let man = store.put(&bytes).unwrap();
        let path = store.shard_path(&man.root, 1);
        let mut shard = fs::read(&path).unwrap();
        shard[7] ^= 0x40;
        fs::write(&path, &shard).unwrap();
        assert!(matches!(
            store.get_shard(&man.root, 1),
            Err(StoreError::CorruptShard {
                index: 1,
                source: ShardError::HashMismatch { index: 1, .. },
                ..
            })
        ));
        // Truncated shard: wrong size.
        fs::write(store.shard_path(&man.root, 2), &shard[..3]).unwrap();
        assert!(matches!(
            store.get_shard(&man.root, 2),
            Err(StoreError::CorruptShard {
                source: ShardError::WrongShardSize { .. },
                ..
            })
        ));
        // Two bad of six with m = 2: still recoverable.
        assert_eq!(store.get(&man.root).unwrap(), bytes);
        fs::remove_file(store.shard_path(&man.root, 4)).unwrap();
        assert!(matches!(
            store.get(&man.root),
            Err(StoreError::Shard(ShardError::TooFewShards {
                have: 3,
                need: 4
            }))
        ));
    }

    #[test]
    fn tampered_or_misplaced_manifest_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let a = store.put(&data(100)).unwrap();
        let b = store.put(&data(200)).unwrap();
        let path_a = store.root_dir(&a.root).join(MANIFEST_FILE);
        // b's manifest under a's directory.
        fs::write(&path_a, b.canonical_json()).unwrap();
        assert!(matches!(
            store.manifest(&a.root),
            Err(StoreError::ManifestRootMismatch { .. })
        ));
        // Non-canonical bytes.
        fs::write(&path_a, serde_json::to_vec_pretty(&a).unwrap()).unwrap();
        assert!(matches!(
            store.get_shard(&a.root, 0),
            Err(StoreError::BadManifest {
                source: ManifestError::NotCanonical,
                ..
            })
        ));
    }

    #[test]
    fn writes_leave_no_temporaries_and_partial_roots_are_unlisted() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let enc = shard::encode(&data(500), ShardParams::default()).unwrap();
        // A provider that got two shards but no manifest yet: not listed.
        store.put_shard(&enc.manifest, 0, &enc.shards[0]).unwrap();
        store.put_shard(&enc.manifest, 3, &enc.shards[3]).unwrap();
        assert!(!store.has(&enc.manifest.root));
        assert!(store.list().unwrap().is_empty());
        store.put_manifest(&enc.manifest).unwrap();
        assert_eq!(store.held(&enc.manifest.root).unwrap(), vec![0, 3]);
        assert!(matches!(
            store.get_shard(&enc.manifest.root, 1),
            Err(StoreError::MissingShard { index: 1, .. })
        ));
        // A wrong shard is refused before anything is written.
        assert!(matches!(
            store.put_shard(&enc.manifest, 1, &enc.shards[2]),
            Err(StoreError::Shard(ShardError::HashMismatch { index: 1, .. }))
        ));
        let names: Vec<String> = fs::read_dir(store.root_dir(&enc.manifest.root))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn concurrent_writers_and_readers_see_whole_files() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let bytes = data(64 * 1024);
        let man = store.put(&bytes).unwrap();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..20 {
                        store.put(&bytes).unwrap();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..50 {
                    for i in 0..6 {
                        store.get_shard(&man.root, i).unwrap();
                    }
                    store.manifest(&man.root).unwrap();
                }
            });
        });
        assert_eq!(store.get(&man.root).unwrap(), bytes);
    }
}
