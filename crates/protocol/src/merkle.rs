//! The project's single Merkle rule and keccak256 helper. Every crate that commits to a list of
//! 32-byte hashes on chain (dataset chunks here, model shards in storage) must use this module,
//! never its own variant.
//!
//! # Rule
//!
//! - `leaf(i, h) = keccak256(abi.encode(uint256 i, bytes32 h))`, i.e. keccak256 of the 32-byte
//!   big-endian index followed by the 32-byte hash (64 bytes).
//! - Inner node: `keccak256(min(a, b) ‖ max(a, b))` — the pair is **sorted** (byte-wise), as in
//!   OpenZeppelin `MerkleProof`/`Hashes.commutativeKeccak256`, so a proof needs no left/right
//!   flags.
//! - Leaves are ordered by index; a level with an odd count promotes its last node unchanged
//!   (`rs_merkle` behaviour); a proof simply has no sibling for that level.
//! - The root of zero leaves is 32 zero bytes.
//!
//! Solidity check: `MerkleProof.verify(proof, root, keccak256(abi.encode(i, h)))`.
//! Because a leaf preimage is 64 bytes like an inner node's, the contract must also check
//! `i < numChunks` (an inner node reinterpreted as a leaf would have a hash-sized "index").

use rs_merkle::{Hasher, MerkleTree};
use tiny_keccak::{Hasher as _, Keccak};

/// A 32-byte hash.
pub type Hash32 = [u8; 32];

/// keccak256 (Ethereum's, not SHA3-256).
pub fn keccak256(data: &[u8]) -> Hash32 {
    let mut k = Keccak::v256();
    k.update(data);
    let mut out = [0u8; 32];
    k.finalize(&mut out);
    out
}

/// `rs_merkle` hasher: keccak256 with sorted pairs (OpenZeppelin compatible).
#[derive(Clone, Copy, Debug)]
pub struct SortedKeccak256;

impl Hasher for SortedKeccak256 {
    type Hash = Hash32;

    fn hash(data: &[u8]) -> Hash32 {
        keccak256(data)
    }

    fn concat_and_hash(left: &Hash32, right: Option<&Hash32>) -> Hash32 {
        match right {
            Some(right) => hash_pair(left, right),
            None => *left,
        }
    }

    fn hash_size() -> usize {
        32
    }
}

/// keccak256 of the byte-wise sorted pair.
pub fn hash_pair(a: &Hash32, b: &Hash32) -> Hash32 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo);
    buf[32..].copy_from_slice(hi);
    keccak256(&buf)
}

/// The leaf for item `index` with content hash `hash`: `keccak256(abi.encode(uint256, bytes32))`.
pub fn leaf(index: u64, hash: &Hash32) -> Hash32 {
    let mut buf = [0u8; 64];
    buf[24..32].copy_from_slice(&index.to_be_bytes());
    buf[32..].copy_from_slice(hash);
    keccak256(&buf)
}

fn tree(hashes: &[Hash32]) -> MerkleTree<SortedKeccak256> {
    let leaves: Vec<Hash32> = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| leaf(i as u64, h))
        .collect();
    MerkleTree::<SortedKeccak256>::from_leaves(&leaves)
}

/// Merkle root over `hashes` (item `i` is leaf `i`).
pub fn root(hashes: &[Hash32]) -> Hash32 {
    tree(hashes).root().unwrap_or([0u8; 32])
}

/// Sibling hashes from leaf `index` up to the root, or `None` when out of range.
pub fn proof(hashes: &[Hash32], index: usize) -> Option<Vec<Hash32>> {
    if index >= hashes.len() {
        return None;
    }
    Some(tree(hashes).proof(&[index]).proof_hashes().to_vec())
}

/// OpenZeppelin `MerkleProof.verify`: fold the proof over the leaf with sorted pairs.
pub fn verify(root: &Hash32, index: u64, hash: &Hash32, proof: &[Hash32]) -> bool {
    let computed = proof
        .iter()
        .fold(leaf(index, hash), |acc, p| hash_pair(&acc, p));
    &computed == root
}

/// Lower-case `0x`-prefixed hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash32 {
        keccak256(&[n])
    }

    #[test]
    fn keccak_matches_known_vector() {
        // keccak256("") — the Ethereum empty-string hash.
        assert_eq!(
            to_hex(&keccak256(b"")),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn leaf_is_abi_encoded_index_and_hash() {
        let mut buf = vec![0u8; 31];
        buf.push(5);
        buf.extend_from_slice(&h(1));
        assert_eq!(leaf(5, &h(1)), keccak256(&buf));
    }

    #[test]
    fn roots_match_hand_built_trees() {
        assert_eq!(root(&[]), [0u8; 32]);
        let (l0, l1, l2) = (leaf(0, &h(0)), leaf(1, &h(1)), leaf(2, &h(2)));
        assert_eq!(root(&[h(0)]), l0);
        assert_eq!(root(&[h(0), h(1)]), hash_pair(&l0, &l1));
        // Three leaves: level 1 = [H(l0,l1), l2 promoted]; root = H(H(l0,l1), l2).
        assert_eq!(
            root(&[h(0), h(1), h(2)]),
            hash_pair(&hash_pair(&l0, &l1), &l2)
        );
        // Sorting makes the pair commutative.
        assert_eq!(hash_pair(&l0, &l1), hash_pair(&l1, &l0));
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        for n in 1..=9u8 {
            let hashes: Vec<Hash32> = (0..n).map(h).collect();
            let r = root(&hashes);
            for i in 0..usize::from(n) {
                let p = proof(&hashes, i).unwrap();
                assert!(verify(&r, i as u64, &hashes[i], &p), "n={n} i={i}");
                assert!(!verify(&r, i as u64, &h(200), &p));
                if n > 1 {
                    assert!(!verify(&r, (i as u64 + 1) % u64::from(n), &hashes[i], &p));
                }
            }
            assert!(proof(&hashes, usize::from(n)).is_none());
        }
    }
}
