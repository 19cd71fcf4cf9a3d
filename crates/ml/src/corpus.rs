//! Datasets: text files turned into fixed-size, content-addressed chunks and a manifest.
//!
//! # Rules (every machine must derive the same manifest root from the same inputs)
//!
//! 1. Sources are (relative path, bytes) pairs in a fixed order: for a directory, all regular
//!    files (optionally filtered by extension) sorted by their `/`-separated relative path,
//!    skipping hidden entries and `target/`; for the default corpus, the `.rs` files of every
//!    non-workspace package in `Cargo.lock` (from `cargo metadata --locked`), sorted by
//!    (package name, version, source, relative path), named `name-version/rel/path.rs`.
//! 2. The sources' bytes are concatenated in that order into one stream, cut at
//!    `max_bytes` (the last file is truncated), then split into `chunk_size`-byte chunks; only
//!    the last chunk may be shorter.
//! 3. Chunk id = keccak256(chunk bytes); manifest root = [`crate::merkle::root`] over the chunk
//!    ids in order.
//! 4. Train/eval split by chunk id only ([`split`]); solver shards by index ([`shard`]).
//!
//! Tokenization is bytes (vocabulary 256); see `docs/ml.md`. This module reads files and runs
//! `cargo metadata`; it does not touch the network itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::merkle::{self, Hash32, keccak256, to_hex};

/// Default chunk size: 16 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 16 * 1024;
/// Default cap on the corpus stream: 8 MiB.
pub const DEFAULT_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// Errors while building a corpus.
#[derive(Debug, Error)]
pub enum CorpusError {
    /// Reading a file or directory failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `cargo metadata` could not be run or failed.
    #[error("cargo metadata: {0}")]
    CargoMetadata(String),
    /// Invalid options.
    #[error("invalid corpus options: {0}")]
    Options(String),
    /// No bytes were found.
    #[error("the corpus is empty")]
    Empty,
}

/// How to build a corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusOptions {
    /// Chunk size in bytes.
    pub chunk_size: usize,
    /// Cap on the concatenated stream in bytes.
    pub max_bytes: usize,
    /// Keep only files with these extensions (without dot); `None` keeps every file.
    pub extensions: Option<Vec<String>>,
}

impl Default for CorpusOptions {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_bytes: DEFAULT_MAX_BYTES,
            extensions: None,
        }
    }
}

/// One chunk entry of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkInfo {
    /// Position in the stream.
    pub index: u64,
    /// keccak256 of the chunk bytes, 0x-hex.
    pub hash: String,
    /// Length in bytes.
    pub len: u64,
}

/// One source file that contributed bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Logical path (see module rules).
    pub path: String,
    /// Bytes taken from it (less than its size only for the last, truncated file).
    pub len: u64,
}

/// The dataset manifest (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Chunk size in bytes.
    pub chunk_size: u64,
    /// Length of the stream.
    pub total_bytes: u64,
    /// Merkle root over chunk hashes, 0x-hex.
    pub root: String,
    /// Chunks in order.
    pub chunks: Vec<ChunkInfo>,
    /// Contributing files in order.
    pub sources: Vec<SourceFile>,
}

/// A chunk with its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the stream.
    pub index: u64,
    /// keccak256 of `data`.
    pub hash: Hash32,
    /// The bytes (= tokens).
    pub data: Vec<u8>,
}

/// A built corpus: manifest plus chunk bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corpus {
    /// The manifest.
    pub manifest: Manifest,
    /// Chunks in order.
    pub chunks: Vec<Chunk>,
}

impl Corpus {
    /// Builds a corpus from ordered (logical path, bytes) sources.
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, Vec<u8>)>,
        opts: &CorpusOptions,
    ) -> Result<Corpus, CorpusError> {
        if opts.chunk_size == 0 {
            return Err(CorpusError::Options("chunk_size must be > 0".into()));
        }
        let mut stream = Vec::new();
        let mut files = Vec::new();
        for (path, bytes) in sources {
            let room = opts.max_bytes - stream.len();
            if room == 0 {
                break;
            }
            let take = bytes.len().min(room);
            if take == 0 {
                continue;
            }
            stream.extend_from_slice(&bytes[..take]);
            files.push(SourceFile {
                path,
                len: take as u64,
            });
        }
        if stream.is_empty() {
            return Err(CorpusError::Empty);
        }
        let chunks: Vec<Chunk> = stream
            .chunks(opts.chunk_size)
            .enumerate()
            .map(|(i, c)| Chunk {
                index: i as u64,
                hash: keccak256(c),
                data: c.to_vec(),
            })
            .collect();
        let hashes: Vec<Hash32> = chunks.iter().map(|c| c.hash).collect();
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            chunk_size: opts.chunk_size as u64,
            total_bytes: stream.len() as u64,
            root: to_hex(&merkle::root(&hashes)),
            chunks: chunks
                .iter()
                .map(|c| ChunkInfo {
                    index: c.index,
                    hash: to_hex(&c.hash),
                    len: c.data.len() as u64,
                })
                .collect(),
            sources: files,
        };
        Ok(Corpus { manifest, chunks })
    }

    /// Builds a corpus from every file under `root` (rule 1).
    pub fn from_dir(root: &Path, opts: &CorpusOptions) -> Result<Corpus, CorpusError> {
        let files = list_files(root, opts.extensions.as_deref())?;
        let sources = files.into_iter().map(|rel| {
            let full = root.join(&rel);
            std::fs::read(&full)
                .map(|b| (rel, b))
                .map_err(|source| CorpusError::Io { path: full, source })
        });
        Corpus::from_sources(sources.collect::<Result<Vec<_>, _>>()?, opts)
    }

    /// The reference corpus: `.rs` sources of the packages pinned in `workspace_root/Cargo.lock`.
    /// `opts.extensions` is ignored (always `rs`).
    pub fn from_cargo_lock(
        workspace_root: &Path,
        opts: &CorpusOptions,
    ) -> Result<Corpus, CorpusError> {
        let mut sources = Vec::new();
        let mut total = 0usize;
        for pkg in locked_packages(workspace_root)? {
            if total >= opts.max_bytes {
                break;
            }
            for rel in list_files(&pkg.dir, Some(&["rs".to_string()]))? {
                if total >= opts.max_bytes {
                    break;
                }
                let full = pkg.dir.join(&rel);
                let bytes = std::fs::read(&full)
                    .map_err(|source| CorpusError::Io { path: full, source })?;
                total += bytes.len();
                sources.push((format!("{}-{}/{}", pkg.name, pkg.version, rel), bytes));
            }
        }
        Corpus::from_sources(sources, opts)
    }

    /// The merkle root as bytes.
    pub fn root(&self) -> Hash32 {
        merkle::root(&self.chunks.iter().map(|c| c.hash).collect::<Vec<_>>())
    }

    /// Total bytes.
    pub fn total_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.data.len()).sum()
    }
}

/// The workspace root of this repository (where the reference `Cargo.lock` lives).
pub fn default_workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Splits chunks into (train, eval) by chunk id: a chunk is eval when the first two bytes of its
/// hash, read big-endian, satisfy `v * 1000 < eval_permille * 65536`. If that picks none (and
/// there are ≥ 2 chunks) the chunk with the smallest hash is eval; if it picks all, the one with
/// the largest hash is train. Order within each side is chunk order.
pub fn split(chunks: &[Chunk], eval_permille: u32) -> (Vec<&Chunk>, Vec<&Chunk>) {
    let is_eval = |c: &Chunk| {
        u32::from(u16::from_be_bytes([c.hash[0], c.hash[1]])) * 1000 < eval_permille * 65536
    };
    let (mut eval, mut train): (Vec<&Chunk>, Vec<&Chunk>) = chunks.iter().partition(|c| is_eval(c));
    if chunks.len() >= 2 && eval.is_empty() {
        let min = train
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.hash)
            .map(|(i, _)| i)
            .unwrap_or(0);
        eval.push(train.remove(min));
    } else if chunks.len() >= 2 && train.is_empty() {
        let max = eval
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| c.hash)
            .map(|(i, _)| i)
            .unwrap_or(0);
        train.push(eval.remove(max));
    }
    (train, eval)
}

/// Shard `i` of `n`: the chunks at positions `p` with `p % n == i`.
pub fn shard<'a>(chunks: &[&'a Chunk], n: usize, i: usize) -> Vec<&'a Chunk> {
    chunks
        .iter()
        .enumerate()
        .filter(|(p, _)| p % n == i)
        .map(|(_, c)| *c)
        .collect()
}

/// Relative `/`-separated paths of regular files under `root`, sorted, skipping hidden entries
/// and `target/`.
fn list_files(root: &Path, extensions: Option<&[String]>) -> Result<Vec<String>, CorpusError> {
    fn walk(
        dir: &Path,
        prefix: &str,
        ext: Option<&[String]>,
        out: &mut Vec<String>,
    ) -> Result<(), CorpusError> {
        let rd = std::fs::read_dir(dir).map_err(|source| CorpusError::Io {
            path: dir.into(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| CorpusError::Io {
                path: dir.into(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let ft = entry.file_type().map_err(|source| CorpusError::Io {
                path: entry.path(),
                source,
            })?;
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if ft.is_dir() {
                walk(&entry.path(), &rel, ext, out)?;
            } else if ft.is_file() {
                let keep = ext.is_none_or(|exts| {
                    Path::new(&name)
                        .extension()
                        .is_some_and(|e| exts.iter().any(|x| e == x.as_str()))
                });
                if keep {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, "", extensions, &mut out)?;
    out.sort();
    Ok(out)
}

struct LockedPackage {
    name: String,
    version: String,
    source: String,
    dir: PathBuf,
}

/// Non-workspace packages of `cargo metadata --locked`, sorted by (name, version, source).
fn locked_packages(workspace_root: &Path) -> Result<Vec<LockedPackage>, CorpusError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(workspace_root.join("Cargo.toml"))
        .output()
        .map_err(|e| CorpusError::CargoMetadata(e.to_string()))?;
    if !out.status.success() {
        return Err(CorpusError::CargoMetadata(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| CorpusError::CargoMetadata(e.to_string()))?;
    let pkgs = v["packages"]
        .as_array()
        .ok_or_else(|| CorpusError::CargoMetadata("no `packages` array".into()))?;
    let mut res = Vec::new();
    for p in pkgs {
        let Some(source) = p["source"].as_str() else {
            continue;
        }; // workspace member
        let field = |k: &str| p[k].as_str().map(str::to_owned);
        let (Some(name), Some(version), Some(manifest)) =
            (field("name"), field("version"), field("manifest_path"))
        else {
            return Err(CorpusError::CargoMetadata(
                "package without name/version/manifest_path".into(),
            ));
        };
        let dir = Path::new(&manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        res.push(LockedPackage {
            name,
            version,
            source: source.to_owned(),
            dir,
        });
    }
    res.sort_by(|a, b| (&a.name, &a.version, &a.source).cmp(&(&b.name, &b.version, &b.source)));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(chunk: usize, max: usize) -> CorpusOptions {
        CorpusOptions {
            chunk_size: chunk,
            max_bytes: max,
            extensions: None,
        }
    }

    #[test]
    fn chunks_are_fixed_size_content_addressed_and_capped() {
        let src = vec![
            ("a.txt".to_string(), b"hello world".to_vec()),
            ("b.txt".to_string(), b"0123456789".to_vec()),
        ];
        let c = Corpus::from_sources(src.clone(), &opts(4, 15)).unwrap();
        // Stream = "hello world" + "0123" (cap 15) -> chunks "hell","o wo","rld0","123".
        let parts: Vec<&[u8]> = c.chunks.iter().map(|c| c.data.as_slice()).collect();
        assert_eq!(parts, [&b"hell"[..], b"o wo", b"rld0", b"123"]);
        assert_eq!(c.manifest.total_bytes, 15);
        assert_eq!(
            c.manifest.sources[1],
            SourceFile {
                path: "b.txt".into(),
                len: 4
            }
        );
        assert_eq!(c.chunks[0].hash, keccak256(b"hell"));
        assert_eq!(c.manifest.root, to_hex(&c.root()));
        // Same input, same manifest; one changed byte changes the root.
        assert_eq!(
            Corpus::from_sources(src.clone(), &opts(4, 15))
                .unwrap()
                .manifest,
            c.manifest
        );
        let mut changed = src;
        changed[1].1[0] = b'X';
        assert_ne!(
            Corpus::from_sources(changed, &opts(4, 15))
                .unwrap()
                .manifest
                .root,
            c.manifest.root
        );
        let json = serde_json::to_string(&c.manifest).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), c.manifest);
    }

    #[test]
    fn empty_and_bad_options_are_errors() {
        assert!(matches!(
            Corpus::from_sources(vec![], &opts(4, 100)),
            Err(CorpusError::Empty)
        ));
        assert!(matches!(
            Corpus::from_sources(vec![("a".into(), vec![1])], &opts(0, 100)),
            Err(CorpusError::Options(_))
        ));
    }

    #[test]
    fn dir_corpus_is_sorted_and_filtered() {
        let dir = std::env::temp_dir().join(format!("autonet-ml-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join("z.rs"), "zz").unwrap();
        std::fs::write(dir.join("sub/a.rs"), "aa").unwrap();
        std::fs::write(dir.join("b.txt"), "bb").unwrap();
        std::fs::write(dir.join(".git/x.rs"), "hidden").unwrap();
        let all = Corpus::from_dir(&dir, &opts(64, 1 << 20)).unwrap();
        let paths: Vec<_> = all
            .manifest
            .sources
            .iter()
            .map(|s| s.path.as_str())
            .collect();
        assert_eq!(paths, ["b.txt", "sub/a.rs", "z.rs"]);
        assert_eq!(all.chunks[0].data, b"bbaazz");
        let rs = Corpus::from_dir(
            &dir,
            &CorpusOptions {
                extensions: Some(vec!["rs".into()]),
                ..opts(64, 1 << 20)
            },
        )
        .unwrap();
        assert_eq!(rs.chunks[0].data, b"aazz");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn split_is_by_hash_and_never_empty() {
        let src: Vec<(String, Vec<u8>)> = (0..200u32)
            .map(|i| (format!("{i}"), i.to_le_bytes().repeat(8)))
            .collect();
        let c = Corpus::from_sources(src, &opts(32, 1 << 20)).unwrap();
        let (train, eval) = split(&c.chunks, 100);
        assert_eq!(train.len() + eval.len(), c.chunks.len());
        assert!(!eval.is_empty() && !train.is_empty());
        for e in &eval {
            assert!(u32::from(u16::from_be_bytes([e.hash[0], e.hash[1]])) * 1000 < 100 * 65536);
        }
        // 0 permille still yields one eval chunk; shards partition the train set.
        let (t0, e0) = split(&c.chunks, 0);
        assert_eq!(e0.len(), 1);
        assert_eq!(e0[0].hash, c.chunks.iter().map(|c| c.hash).min().unwrap());
        let total: usize = (0..4).map(|i| shard(&t0, 4, i).len()).sum();
        assert_eq!(total, t0.len());
    }

    #[test]
    fn default_cargo_lock_corpus_is_deterministic() {
        let o = opts(4096, 256 * 1024);
        let a = Corpus::from_cargo_lock(&default_workspace_root(), &o).unwrap();
        let b = Corpus::from_cargo_lock(&default_workspace_root(), &o).unwrap();
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(a.manifest.total_bytes, 256 * 1024);
        assert_eq!(a.chunks.len(), 64);
        // Sources come in (package, version, path) order and are pinned crates, not our own.
        let pkgs: Vec<&str> = a
            .manifest
            .sources
            .iter()
            .map(|s| s.path.split('/').next().unwrap())
            .collect();
        assert!(pkgs.windows(2).all(|w| w[0] <= w[1]), "{pkgs:?}");
        assert!(
            a.manifest
                .sources
                .iter()
                .all(|s| s.path.ends_with(".rs") && !s.path.starts_with("autonet-"))
        );
    }
}
