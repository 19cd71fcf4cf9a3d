//! The storage manifest: what a publisher commits to for one model or delta (sizes, shard
//! counts, every shard hash, the shard Merkle root and the content hash), its canonical JSON and
//! its hash. This module owns the manifest's shape and its validation rules; it does no I/O and
//! no erasure coding (see [`crate::shard`]).
//!
//! # Canonical JSON
//!
//! `manifest_hash = keccak256(canonical JSON bytes)` is what goes on chain
//! (`ModelManifest.manifestHash`). The canonical bytes are `serde_json::to_vec` of [`Manifest`]:
//! no whitespace, fields in declaration order (`version`, `total_size`, `shard_size`, `k`, `m`,
//! `shard_hashes`, `root`, `content_hash`), numbers in decimal, hashes as lower-case
//! `0x`-prefixed hex strings. [`Manifest::from_json`] accepts only bytes that re-serialize to
//! themselves, so a manifest's hash is a function of its content alone.
//!
//! # Chain mapping
//!
//! `ModelShardRegistry.ModelManifest` takes `root`, `manifestHash` (= [`Manifest::manifest_hash`]),
//! `totalSize` (= `total_size`, u64), `shardSize` (= `shard_size`, u32), `dataShards` (= `k`) and
//! `parityShards` (= `m`); `projectId` and `parentRoot` belong to the publication, not to the
//! stored bytes, and are not part of this manifest. The same size and count rules as the
//! contract's `_checkShape` are enforced here.

use autonet_protocol::merkle::{self, Hash32};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The manifest format version this crate writes and accepts.
pub const MANIFEST_VERSION: u32 = 1;

/// Most shards (`k + m`) of one model: `ModelShardRegistry.MAX_SHARDS`, which is also the limit of
/// Reed–Solomon over GF(2^8).
pub const MAX_SHARDS: usize = 256;

/// Default number of data shards. See [`ShardParams::default`].
pub const DEFAULT_DATA_SHARDS: u8 = 4;

/// Default number of parity shards. See [`ShardParams::default`].
pub const DEFAULT_PARITY_SHARDS: u8 = 2;

/// Errors on building, parsing or validating a manifest.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The bytes are not a JSON manifest.
    #[error("manifest is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The bytes parse but are not the canonical encoding of what they contain.
    #[error("manifest JSON is not canonical (compact, declared field order, lower-case 0x hex)")]
    NotCanonical,
    /// Unknown format version.
    #[error("manifest version {found} is not supported (expected {MANIFEST_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// `k == 0` or `k + m > MAX_SHARDS`.
    #[error("invalid shard counts k={k} m={m} (need k >= 1 and k + m <= {MAX_SHARDS})")]
    InvalidShardCounts {
        /// Data shards.
        k: usize,
        /// Parity shards.
        m: usize,
    },
    /// Sizes that the contract would reject, or a shard size other than `ceil(total_size / k)`.
    #[error(
        "invalid sizes total_size={total_size} shard_size={shard_size} k={k} \
         (need total_size >= 1 and shard_size = ceil(total_size / k) <= u32::MAX)"
    )]
    InvalidSizes {
        /// Total content size in bytes.
        total_size: u64,
        /// Shard size in bytes.
        shard_size: u64,
        /// Data shards.
        k: usize,
    },
    /// The number of shard hashes is not `k + m`.
    #[error("manifest lists {found} shard hashes, expected k + m = {expected}")]
    ShardCountMismatch {
        /// `k + m`.
        expected: usize,
        /// Hashes listed.
        found: usize,
    },
    /// The claimed root is not the Merkle root of the listed shard hashes.
    #[error("manifest root {claimed} is not the Merkle root of its shard hashes ({computed})")]
    RootMismatch {
        /// Root written in the manifest (hex).
        claimed: String,
        /// Root computed from the shard hashes (hex).
        computed: String,
    },
}

/// Erasure-coding parameters: `k` data shards and `m` parity shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardParams {
    k: u8,
    m: u8,
}

impl ShardParams {
    /// Checks `k >= 1` and `k + m <= MAX_SHARDS` (the contract's `_checkShape`).
    pub fn new(k: u8, m: u8) -> Result<Self, ManifestError> {
        check_counts(usize::from(k), usize::from(m))?;
        Ok(Self { k, m })
    }

    /// Data shards.
    pub fn k(&self) -> u8 {
        self.k
    }

    /// Parity shards.
    pub fn m(&self) -> u8 {
        self.m
    }

    /// `k + m`.
    pub fn shard_count(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }
}

impl Default for ShardParams {
    /// `k = 4`, `m = 2`: any 2 of the 6 shards (a third) can be lost at 1.5x storage, six
    /// shards are few enough that a handful of providers can hold one each, and four data shards
    /// keep each shard a quarter of the model, so a fetch is spread over several peers without
    /// turning into many tiny requests. Larger `k` lowers the overhead but needs more distinct
    /// providers to be online at once.
    fn default() -> Self {
        Self {
            k: DEFAULT_DATA_SHARDS,
            m: DEFAULT_PARITY_SHARDS,
        }
    }
}

fn check_counts(k: usize, m: usize) -> Result<(), ManifestError> {
    if k == 0 || k + m > MAX_SHARDS {
        return Err(ManifestError::InvalidShardCounts { k, m });
    }
    Ok(())
}

/// The shard size for `total_size` bytes split into `k` data shards: `ceil(total_size / k)`, or
/// an error when the sizes are not publishable (`total_size == 0`, or a shard over `u32::MAX`).
pub fn shard_size_for(total_size: u64, k: u8) -> Result<u32, ManifestError> {
    let invalid = |shard_size| ManifestError::InvalidSizes {
        total_size,
        shard_size,
        k: usize::from(k),
    };
    if k == 0 || total_size == 0 {
        return Err(invalid(0));
    }
    let size = total_size.div_ceil(u64::from(k));
    u32::try_from(size).map_err(|_| invalid(size))
}

/// What a publisher commits to for one stored blob. See the module docs for the canonical JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version, [`MANIFEST_VERSION`].
    pub version: u32,
    /// Length of the original bytes.
    pub total_size: u64,
    /// Length of every shard, `ceil(total_size / k)`; the last data shard is zero-padded.
    pub shard_size: u32,
    /// Data shards.
    pub k: u8,
    /// Parity shards.
    pub m: u8,
    /// `keccak256(shard_i)` for `i` in `0..k+m` (data shards first, then parity).
    #[serde(with = "hex_list")]
    pub shard_hashes: Vec<Hash32>,
    /// Merkle root over `shard_hashes` by `autonet_protocol::merkle` (leaf binds the index).
    #[serde(with = "hex32")]
    pub root: Hash32,
    /// `keccak256` of the original bytes (for a model: `autonet_ml::codec::content_hash`).
    #[serde(with = "hex32")]
    pub content_hash: Hash32,
}

impl Manifest {
    /// `k + m`.
    pub fn shard_count(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// The canonical JSON bytes (see the module docs).
    pub fn canonical_json(&self) -> Vec<u8> {
        // Serializing plain integers, strings and a Vec of strings into memory cannot fail.
        serde_json::to_vec(self).expect("manifest serialization is infallible")
    }

    /// `keccak256(canonical_json())`, the on-chain `manifestHash`.
    pub fn manifest_hash(&self) -> Hash32 {
        merkle::keccak256(&self.canonical_json())
    }

    /// Parses canonical JSON and validates it; rejects any non-canonical encoding.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        if manifest.canonical_json() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the version, the contract's shape rules, `shard_size == ceil(total_size / k)`,
    /// `k + m` shard hashes and that `root` is their Merkle root.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.version != MANIFEST_VERSION {
            return Err(ManifestError::UnsupportedVersion {
                found: self.version,
            });
        }
        check_counts(usize::from(self.k), usize::from(self.m))?;
        if shard_size_for(self.total_size, self.k)? != self.shard_size {
            return Err(ManifestError::InvalidSizes {
                total_size: self.total_size,
                shard_size: u64::from(self.shard_size),
                k: usize::from(self.k),
            });
        }
        if self.shard_hashes.len() != self.shard_count() {
            return Err(ManifestError::ShardCountMismatch {
                expected: self.shard_count(),
                found: self.shard_hashes.len(),
            });
        }
        let computed = merkle::root(&self.shard_hashes);
        if computed != self.root {
            return Err(ManifestError::RootMismatch {
                claimed: merkle::to_hex(&self.root),
                computed: merkle::to_hex(&computed),
            });
        }
        Ok(())
    }
}

/// Parses a 32-byte hash from hex, with or without `0x`, either case.
pub fn parse_hash32(s: &str) -> Option<Hash32> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

mod hex32 {
    use super::{Hash32, merkle, parse_hash32};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(h: &Hash32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&merkle::to_hex(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash32, D::Error> {
        let s = String::deserialize(d)?;
        parse_hash32(&s).ok_or_else(|| D::Error::custom("expected 32-byte 0x hex"))
    }
}

mod hex_list {
    use super::{Hash32, merkle, parse_hash32};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(list: &[Hash32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(|h| merkle::to_hex(h)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash32>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| parse_hash32(s).ok_or_else(|| D::Error::custom("expected 32-byte 0x hex")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let shard_hashes: Vec<Hash32> = (0..3u8).map(|i| merkle::keccak256(&[i])).collect();
        Manifest {
            version: MANIFEST_VERSION,
            total_size: 5,
            shard_size: 3,
            k: 2,
            m: 1,
            root: merkle::root(&shard_hashes),
            shard_hashes,
            content_hash: merkle::keccak256(b"hello"),
        }
    }

    #[test]
    fn canonical_json_round_trips_and_has_fixed_shape() {
        let m = sample();
        let json = m.canonical_json();
        let text = std::str::from_utf8(&json).unwrap();
        assert!(text.starts_with(
            r#"{"version":1,"total_size":5,"shard_size":3,"k":2,"m":1,"shard_hashes":["0x"#
        ));
        assert!(!text.contains(' ') && !text.contains('\n'));
        assert_eq!(Manifest::from_json(&json).unwrap(), m);
        assert_eq!(m.manifest_hash(), merkle::keccak256(&json));
    }

    #[test]
    fn non_canonical_json_is_rejected() {
        let m = sample();
        let pretty = serde_json::to_vec_pretty(&m).unwrap();
        assert!(matches!(
            Manifest::from_json(&pretty),
            Err(ManifestError::NotCanonical)
        ));
        let root_hex = merkle::to_hex(&m.root);
        let upper = String::from_utf8(m.canonical_json())
            .unwrap()
            .replace(&root_hex, &format!("0x{}", root_hex[2..].to_uppercase()));
        assert_ne!(upper.as_bytes(), m.canonical_json());
        assert!(matches!(
            Manifest::from_json(upper.as_bytes()),
            Err(ManifestError::NotCanonical)
        ));
        let extra = String::from_utf8(m.canonical_json())
            .unwrap()
            .replace("{\"version\":1,", "{\"version\":1,\"x\":0,");
        assert!(matches!(
            Manifest::from_json(extra.as_bytes()),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn validation_catches_each_rule() {
        let mut m = sample();
        m.version = 2;
        assert!(matches!(
            m.validate(),
            Err(ManifestError::UnsupportedVersion { found: 2 })
        ));
        let mut m = sample();
        m.shard_size = 4;
        assert!(matches!(
            m.validate(),
            Err(ManifestError::InvalidSizes { .. })
        ));
        let mut m = sample();
        m.k = 0;
        assert!(matches!(
            m.validate(),
            Err(ManifestError::InvalidShardCounts { .. })
        ));
        let mut m = sample();
        m.shard_hashes.pop();
        assert!(matches!(
            m.validate(),
            Err(ManifestError::ShardCountMismatch { .. })
        ));
        let mut m = sample();
        m.shard_hashes.swap(0, 1);
        assert!(matches!(
            m.validate(),
            Err(ManifestError::RootMismatch { .. })
        ));
    }

    #[test]
    fn params_follow_the_contract_limits() {
        assert!(ShardParams::new(0, 2).is_err());
        assert!(ShardParams::new(1, 0).is_ok());
        assert!(ShardParams::new(128, 128).is_ok());
        assert!(ShardParams::new(255, 1).is_ok());
        assert!(ShardParams::new(255, 2).is_err());
        assert_eq!(ShardParams::default().shard_count(), 6);
        assert!(shard_size_for(0, 4).is_err());
        assert_eq!(shard_size_for(9, 4).unwrap(), 3);
        assert!(shard_size_for(u64::from(u32::MAX) * 2 + 1, 2).is_err());
    }

    #[test]
    fn hash_parsing_accepts_prefix_and_case() {
        let h = merkle::keccak256(b"x");
        let hex = merkle::to_hex(&h);
        assert_eq!(parse_hash32(&hex), Some(h));
        assert_eq!(parse_hash32(&hex[2..]), Some(h));
        assert_eq!(
            parse_hash32(&hex.to_uppercase().replace("0X", "0x")),
            Some(h)
        );
        assert_eq!(parse_hash32("0x1234"), None);
        assert_eq!(parse_hash32("zz"), None);
    }
}
