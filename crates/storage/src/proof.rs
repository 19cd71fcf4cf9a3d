//! Shard Merkle proofs, exactly as `ModelShardRegistry.verifyShard(root, index, shardHash, proof)`
//! checks them: OpenZeppelin `MerkleProof.verify(proof, root, keccak256(abi.encode(index,
//! shardHash)))` plus `index < k + m`. This module only adapts [`autonet_protocol::merkle`] (the
//! project's single Merkle rule) to manifests and to the HTTP header encoding; it must never
//! hash pairs or leaves itself.

use autonet_protocol::merkle::{self, Hash32};
use thiserror::Error;

use crate::manifest::{Manifest, parse_hash32};

/// Errors on building or parsing a proof.
#[derive(Debug, Error)]
pub enum ProofError {
    /// The index is not a shard of the manifest.
    #[error("shard index {index} out of range (k + m = {count})")]
    IndexOutOfRange {
        /// The index.
        index: usize,
        /// `k + m`.
        count: usize,
    },
    /// A proof header element is not 32-byte hex.
    #[error("proof element {position} is not 32-byte hex: {value:?}")]
    BadHex {
        /// Position in the list.
        position: usize,
        /// The offending text.
        value: String,
    },
}

/// Sibling hashes from shard `index`'s leaf to `manifest.root`.
pub fn proof(manifest: &Manifest, index: usize) -> Result<Vec<Hash32>, ProofError> {
    merkle::proof(&manifest.shard_hashes, index).ok_or(ProofError::IndexOutOfRange {
        index,
        count: manifest.shard_hashes.len(),
    })
}

/// What the contract's `verifyShard` returns for a model with `shard_count = k + m` shards:
/// `index < shard_count` and the proof folds the leaf `(index, shard_hash)` to `root`.
///
/// The index bound matters: a leaf preimage is 64 bytes like an inner node's, so without it an
/// inner node could pass as a leaf whose "index" is a hash-sized number.
pub fn verify(
    root: &Hash32,
    index: u64,
    shard_count: usize,
    shard_hash: &Hash32,
    proof: &[Hash32],
) -> bool {
    index < shard_count as u64 && merkle::verify(root, index, shard_hash, proof)
}

/// Encodes a proof for the `x-shard-proof` header: `0x` hex elements joined by `,`, empty for a
/// one-shard tree.
pub fn to_header(proof: &[Hash32]) -> String {
    proof
        .iter()
        .map(|h| merkle::to_hex(h))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses an `x-shard-proof` header (see [`to_header`]); surrounding spaces are ignored.
pub fn from_header(value: &str) -> Result<Vec<Hash32>, ProofError> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .enumerate()
        .map(|(position, part)| {
            parse_hash32(part.trim()).ok_or_else(|| ProofError::BadHex {
                position,
                value: part.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ShardParams;
    use crate::shard::encode;

    fn hashes(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| merkle::keccak256(&i.to_le_bytes()))
            .collect()
    }

    #[test]
    fn every_index_verifies_and_tampering_fails() {
        for n in [1usize, 2, 3, 5, 14] {
            let hs = hashes(n);
            let root = merkle::root(&hs);
            let other_root = merkle::keccak256(b"other root");
            for (i, h) in hs.iter().enumerate() {
                let p = merkle::proof(&hs, i).unwrap();
                let idx = i as u64;
                assert!(verify(&root, idx, n, h, &p), "n={n} i={i}");
                // wrong hash, wrong root
                assert!(!verify(&root, idx, n, &merkle::keccak256(b"x"), &p));
                assert!(!verify(&other_root, idx, n, h, &p));
                // wrong index, inside and outside the shard count
                if n > 1 {
                    assert!(
                        !verify(&root, (idx + 1) % n as u64, n, h, &p),
                        "n={n} i={i}"
                    );
                }
                assert!(!verify(&root, idx + n as u64, n, h, &p));
                // a truncated proof
                if !p.is_empty() {
                    assert!(!verify(&root, idx, n, h, &p[..p.len() - 1]));
                }
                // header round trip
                assert_eq!(from_header(&to_header(&p)).unwrap(), p);
            }
        }
    }

    #[test]
    fn index_bound_rejects_an_inner_node_posing_as_a_leaf() {
        // With 4 leaves, root = H(H(l0,l1), H(l2,l3)). The 64-byte preimage of H(l0,l1) is
        // min(l0,l1) ‖ max(l0,l1): read as abi.encode(index, hash) it is a "leaf" with
        // index = min(l0,l1) and hash = max(l0,l1), proven by the sibling H(l2,l3).
        let hs = hashes(4);
        let (l0, l1) = (merkle::leaf(0, &hs[0]), merkle::leaf(1, &hs[1]));
        let (lo, hi) = if l0 <= l1 { (l0, l1) } else { (l1, l0) };
        let sibling = merkle::hash_pair(&merkle::leaf(2, &hs[2]), &merkle::leaf(3, &hs[3]));
        let root = merkle::root(&hs);
        // The forged leaf folds to the root ...
        let mut buf = [0u8; 64];
        buf[..32].copy_from_slice(&lo);
        buf[32..].copy_from_slice(&hi);
        assert_eq!(merkle::hash_pair(&merkle::keccak256(&buf), &sibling), root);
        // ... but its index is a hash, never below the shard count.
        let fake_index = u64::from_be_bytes(lo[24..32].try_into().unwrap());
        assert!(lo[..24].iter().any(|b| *b != 0));
        assert!(!verify(&root, fake_index, 4, &hi, &[sibling]));
    }

    #[test]
    fn manifest_proofs_match_the_protocol_rule() {
        let enc = encode(&[7u8; 1000], ShardParams::new(9, 5).unwrap()).unwrap();
        let m = &enc.manifest;
        for i in 0..m.shard_count() {
            let p = proof(m, i).unwrap();
            assert_eq!(p, merkle::proof(&m.shard_hashes, i).unwrap());
            assert!(verify(&m.root, i as u64, 14, &m.shard_hashes[i], &p));
        }
        assert!(matches!(
            proof(m, 14),
            Err(ProofError::IndexOutOfRange {
                index: 14,
                count: 14
            })
        ));
    }

    #[test]
    fn header_parsing() {
        assert!(from_header("").unwrap().is_empty());
        assert!(matches!(
            from_header("0x12,zz"),
            Err(ProofError::BadHex { position: 0, .. })
        ));
        let h = merkle::keccak256(b"a");
        let text = format!("{} , {}", merkle::to_hex(&h), merkle::to_hex(&h));
        assert_eq!(from_header(&text).unwrap(), vec![h, h]);
    }
}
