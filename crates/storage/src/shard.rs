//! Erasure coding of a blob into `k + m` shards and back. This module owns the split rule (zero
//! padding to `k` shards of `ceil(len / k)` bytes, Reed–Solomon over GF(2^8) for the `m` parity
//! shards, data shards first) and the checks on the way back (every present shard's hash before
//! decoding, the content hash after). It does no I/O.
//!
//! With `m = 0` (allowed by the contract) there is no parity: the data shards are stored as is
//! and all `k` are needed.

use autonet_protocol::merkle::{self, Hash32};
use reed_solomon_erasure::galois_8::ReedSolomon;
use thiserror::Error;

use crate::manifest::{MANIFEST_VERSION, Manifest, ManifestError, ShardParams, shard_size_for};

/// Errors on encoding or reconstructing.
#[derive(Debug, Error)]
pub enum ShardError {
    /// Bad parameters or an invalid manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The shard vector does not have `k + m` slots.
    #[error("expected {expected} shard slots (k + m), got {found}")]
    WrongSlotCount {
        /// `k + m`.
        expected: usize,
        /// Slots given.
        found: usize,
    },
    /// A present shard has the wrong length.
    #[error("shard {index} has {found} bytes, expected {expected}")]
    WrongShardSize {
        /// Shard index.
        index: usize,
        /// `shard_size`.
        expected: usize,
        /// Its length.
        found: usize,
    },
    /// A present shard does not hash to the manifest's hash for its index.
    #[error("hash mismatch at shard {index}: expected {expected}, found {found}")]
    HashMismatch {
        /// Shard index.
        index: usize,
        /// Hash in the manifest (hex).
        expected: String,
        /// Hash of the shard given (hex).
        found: String,
    },
    /// A shard index at or past `k + m`.
    #[error("shard index {index} out of range (k + m = {count})")]
    IndexOutOfRange {
        /// The index.
        index: usize,
        /// `k + m`.
        count: usize,
    },
    /// Fewer than `k` valid shards.
    #[error("too few shards: {have} present, {need} needed")]
    TooFewShards {
        /// Shards present.
        have: usize,
        /// `k`.
        need: usize,
    },
    /// A rebuilt shard differs from the manifest: the publisher's parity does not match its data.
    #[error("rebuilt shard {index} does not match the manifest: the encoding is inconsistent")]
    InconsistentEncoding {
        /// Shard index.
        index: usize,
    },
    /// The decoded bytes do not hash to the manifest's content hash.
    #[error("content hash mismatch: expected {expected}, found {found}")]
    ContentHashMismatch {
        /// Content hash in the manifest (hex).
        expected: String,
        /// Hash of the decoded bytes (hex).
        found: String,
    },
    /// The Reed–Solomon library failed (a bug: shapes are checked before calling it).
    #[error("reed-solomon: {0}")]
    Codec(#[from] reed_solomon_erasure::Error),
}

/// A manifest together with all `k + m` of its shards.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The manifest.
    pub manifest: Manifest,
    /// Shard `i` at position `i`, each `manifest.shard_size` bytes.
    pub shards: Vec<Vec<u8>>,
}

impl Encoded {
    /// The original bytes: the data shards joined, padding dropped.
    pub fn content(&self) -> Vec<u8> {
        join_data(&self.manifest, &self.shards)
    }
}

/// Splits `bytes` into `k` zero-padded data shards plus `m` parity shards and builds the manifest.
/// Fails on empty input (the contract rejects `totalSize == 0`) or shards over `u32::MAX` bytes.
pub fn encode(bytes: &[u8], params: ShardParams) -> Result<Encoded, ShardError> {
    let (k, m) = (usize::from(params.k()), usize::from(params.m()));
    let shard_size = shard_size_for(bytes.len() as u64, params.k())?;
    let size = shard_size as usize;
    let mut shards: Vec<Vec<u8>> = (0..k + m)
        .map(|i| {
            let start = (i * size).min(bytes.len());
            let end = ((i + 1) * size).min(bytes.len());
            let mut shard = if i < k {
                bytes[start..end].to_vec()
            } else {
                Vec::new()
            };
            shard.resize(size, 0);
            shard
        })
        .collect();
    if m > 0 {
        ReedSolomon::new(k, m)?.encode(&mut shards)?;
    }
    let shard_hashes: Vec<Hash32> = shards.iter().map(|s| merkle::keccak256(s)).collect();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        total_size: bytes.len() as u64,
        shard_size,
        k: params.k(),
        m: params.m(),
        root: merkle::root(&shard_hashes),
        shard_hashes,
        content_hash: merkle::keccak256(bytes),
    };
    Ok(Encoded { manifest, shards })
}

/// Checks that `shard` is shard `index` of `manifest` (length and hash).
pub fn check_shard(manifest: &Manifest, index: usize, shard: &[u8]) -> Result<(), ShardError> {
    let Some(expected) = manifest.shard_hashes.get(index) else {
        return Err(ShardError::IndexOutOfRange {
            index,
            count: manifest.shard_count(),
        });
    };
    let expected_len = manifest.shard_size as usize;
    if shard.len() != expected_len {
        return Err(ShardError::WrongShardSize {
            index,
            expected: expected_len,
            found: shard.len(),
        });
    }
    let found = merkle::keccak256(shard);
    if &found != expected {
        return Err(ShardError::HashMismatch {
            index,
            expected: merkle::to_hex(expected),
            found: merkle::to_hex(&found),
        });
    }
    Ok(())
}

/// Rebuilds the original bytes from any `k` of the `k + m` shards (`None` = missing). Every
/// present shard is checked against its hash first (a bad one is an error, not skipped: callers
/// that want to skip bad shards drop them before), and the result against the content hash.
pub fn reconstruct(
    manifest: &Manifest,
    shards: Vec<Option<Vec<u8>>>,
) -> Result<Vec<u8>, ShardError> {
    let shards = decode(manifest, shards, false)?;
    let content = join_data(manifest, &shards);
    check_content(manifest, &content)?;
    Ok(content)
}

/// Like [`reconstruct`], but also rebuilds the missing parity shards and checks every rebuilt
/// shard against the manifest, returning all `k + m` shards (what a node stores to serve them).
pub fn reconstruct_all(
    manifest: &Manifest,
    shards: Vec<Option<Vec<u8>>>,
) -> Result<Encoded, ShardError> {
    let missing: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].is_none()).collect();
    let shards = decode(manifest, shards, true)?;
    for index in missing {
        if merkle::keccak256(&shards[index]) != manifest.shard_hashes[index] {
            return Err(ShardError::InconsistentEncoding { index });
        }
    }
    check_content(manifest, &join_data(manifest, &shards))?;
    Ok(Encoded {
        manifest: manifest.clone(),
        shards,
    })
}

/// Validates, checks present shards, runs Reed–Solomon; returns `k + m` slots with at least the
/// data shards (all shards when `all`) filled in.
fn decode(
    manifest: &Manifest,
    mut shards: Vec<Option<Vec<u8>>>,
    all: bool,
) -> Result<Vec<Vec<u8>>, ShardError> {
    manifest.validate()?;
    let (k, m) = (usize::from(manifest.k), usize::from(manifest.m));
    if shards.len() != k + m {
        return Err(ShardError::WrongSlotCount {
            expected: k + m,
            found: shards.len(),
        });
    }
    for (index, shard) in shards.iter().enumerate() {
        if let Some(shard) = shard {
            check_shard(manifest, index, shard)?;
        }
    }
    let have = shards.iter().filter(|s| s.is_some()).count();
    if have < k {
        return Err(ShardError::TooFewShards { have, need: k });
    }
    let complete = if all {
        have == k + m
    } else {
        shards[..k].iter().all(Option::is_some)
    };
    if !complete {
        // m > 0 here: with m = 0, have >= k means every shard is present.
        let rs = ReedSolomon::new(k, m)?;
        if all {
            rs.reconstruct(&mut shards)?;
        } else {
            rs.reconstruct_data(&mut shards)?;
        }
    }
    let size = manifest.shard_size as usize;
    Ok(shards
        .into_iter()
        .map(|s| s.unwrap_or_else(|| vec![0; size]))
        .collect())
}

fn join_data(manifest: &Manifest, shards: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(manifest.total_size as usize);
    for shard in &shards[..usize::from(manifest.k)] {
        out.extend_from_slice(shard);
    }
    out.truncate(manifest.total_size as usize);
    out
}

fn check_content(manifest: &Manifest, content: &[u8]) -> Result<(), ShardError> {
    let found = merkle::keccak256(content);
    if found != manifest.content_hash {
        return Err(ShardError::ContentHashMismatch {
            expected: merkle::to_hex(&manifest.content_hash),
            found: merkle::to_hex(&found),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect()
    }

    /// All subsets of `0..n` with exactly `r` elements.
    fn subsets(n: usize, r: usize) -> Vec<Vec<usize>> {
        (0u32..1 << n)
            .filter(|mask| mask.count_ones() as usize == r)
            .map(|mask| (0..n).filter(|i| mask >> i & 1 == 1).collect())
            .collect()
    }

    #[test]
    fn layout_is_padded_data_then_parity() {
        let data = bytes(10, 1);
        let enc = encode(&data, ShardParams::new(4, 2).unwrap()).unwrap();
        let man = &enc.manifest;
        assert_eq!(
            (man.total_size, man.shard_size, man.k, man.m),
            (10, 3, 4, 2)
        );
        assert_eq!(enc.shards.len(), 6);
        assert_eq!(enc.shards[0], data[0..3]);
        assert_eq!(enc.shards[3], [data[9], 0, 0]);
        for (s, h) in enc.shards.iter().zip(&man.shard_hashes) {
            assert_eq!(&merkle::keccak256(s), h);
        }
        assert_eq!(man.root, merkle::root(&man.shard_hashes));
        assert_eq!(man.content_hash, merkle::keccak256(&data));
        man.validate().unwrap();
        assert_eq!(enc.content(), data);
    }

    #[test]
    fn any_m_missing_shards_are_recovered() {
        let data = bytes(1000, 2);
        for (k, m) in [(4u8, 2u8), (3, 3), (1, 2), (5, 1)] {
            let enc = encode(&data, ShardParams::new(k, m).unwrap()).unwrap();
            let n = usize::from(k + m);
            for missing in subsets(n, usize::from(m)) {
                let slots: Vec<Option<Vec<u8>>> = (0..n)
                    .map(|i| (!missing.contains(&i)).then(|| enc.shards[i].clone()))
                    .collect();
                assert_eq!(reconstruct(&enc.manifest, slots.clone()).unwrap(), data);
                let all = reconstruct_all(&enc.manifest, slots).unwrap();
                assert_eq!(all.shards, enc.shards, "k={k} m={m} missing={missing:?}");
            }
        }
    }

    #[test]
    fn one_too_many_missing_is_too_few_shards() {
        let data = bytes(100, 3);
        let enc = encode(&data, ShardParams::default()).unwrap();
        let slots = vec![
            Some(enc.shards[0].clone()),
            None,
            None,
            None,
            Some(enc.shards[4].clone()),
            Some(enc.shards[5].clone()),
        ];
        assert!(matches!(
            reconstruct(&enc.manifest, slots),
            Err(ShardError::TooFewShards { have: 3, need: 4 })
        ));
    }

    #[test]
    fn corrupt_or_wrong_size_shard_is_named() {
        let data = bytes(100, 4);
        let enc = encode(&data, ShardParams::default()).unwrap();
        let mut slots: Vec<Option<Vec<u8>>> = enc.shards.iter().cloned().map(Some).collect();
        slots[2].as_mut().unwrap()[0] ^= 1;
        assert!(matches!(
            reconstruct(&enc.manifest, slots.clone()),
            Err(ShardError::HashMismatch { index: 2, .. })
        ));
        slots[2] = Some(vec![0; 3]);
        assert!(matches!(
            reconstruct(&enc.manifest, slots.clone()),
            Err(ShardError::WrongShardSize { index: 2, .. })
        ));
        slots.pop();
        assert!(matches!(
            reconstruct(&enc.manifest, slots),
            Err(ShardError::WrongSlotCount {
                expected: 6,
                found: 5
            })
        ));
    }

    #[test]
    fn inconsistent_parity_is_detected() {
        // A publisher whose parity hashes do not describe the parity of its data: decoding from
        // a subset including the bogus parity gives other bytes, caught by the content hash;
        // rebuilding the bogus parity from the data is caught by its hash.
        let data = bytes(64, 5);
        let mut enc = encode(&data, ShardParams::new(2, 1).unwrap()).unwrap();
        enc.shards[2][0] ^= 0xff;
        enc.manifest.shard_hashes[2] = merkle::keccak256(&enc.shards[2]);
        enc.manifest.root = merkle::root(&enc.manifest.shard_hashes);
        let slots = vec![
            Some(enc.shards[0].clone()),
            None,
            Some(enc.shards[2].clone()),
        ];
        assert!(matches!(
            reconstruct(&enc.manifest, slots),
            Err(ShardError::ContentHashMismatch { .. })
        ));
        let slots = vec![
            Some(enc.shards[0].clone()),
            Some(enc.shards[1].clone()),
            None,
        ];
        assert!(matches!(
            reconstruct_all(&enc.manifest, slots),
            Err(ShardError::InconsistentEncoding { index: 2 })
        ));
    }

    #[test]
    fn no_parity_and_extreme_counts() {
        let data = bytes(77, 6);
        let enc = encode(&data, ShardParams::new(3, 0).unwrap()).unwrap();
        assert_eq!(enc.shards.len(), 3);
        let slots: Vec<_> = enc.shards.iter().cloned().map(Some).collect();
        assert_eq!(reconstruct(&enc.manifest, slots).unwrap(), data);
        assert!(matches!(
            reconstruct(&enc.manifest, vec![Some(enc.shards[0].clone()), None, None]),
            Err(ShardError::TooFewShards { have: 1, need: 3 })
        ));

        // k + m = MAX_SHARDS, fewer bytes than data shards (most data shards are padding).
        let enc = encode(&data, ShardParams::new(200, 56).unwrap()).unwrap();
        assert_eq!(enc.manifest.shard_size, 1);
        let slots: Vec<_> = (0..256)
            .map(|i| (i >= 56).then(|| enc.shards[i].clone()))
            .collect();
        assert_eq!(reconstruct(&enc.manifest, slots).unwrap(), data);
    }

    #[test]
    fn empty_input_is_rejected() {
        assert!(matches!(
            encode(&[], ShardParams::default()),
            Err(ShardError::Manifest(ManifestError::InvalidSizes { .. }))
        ));
    }
}
