//! Property tests of the sharding round trip: random sizes, random parameters, random losses.

use autonet_protocol::merkle;
use autonet_storage::manifest::Manifest;
use autonet_storage::{ShardParams, proof, shard};
use proptest::prelude::*;

fn case() -> impl Strategy<Value = (Vec<u8>, u8, u8, Vec<bool>)> {
    (1u8..=8, 0u8..=4).prop_flat_map(|(k, m)| {
        (
            proptest::collection::vec(any::<u8>(), 1..3000),
            Just(k),
            Just(m),
            // which shards to drop (trimmed to at most m drops below)
            proptest::collection::vec(any::<bool>(), usize::from(k + m)),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_k_shards_rebuild_the_bytes((bytes, k, m, drop) in case()) {
        let enc = shard::encode(&bytes, ShardParams::new(k, m).unwrap()).unwrap();
        let man = &enc.manifest;
        prop_assert_eq!(man.shard_count(), usize::from(k + m));
        prop_assert_eq!(u64::from(man.shard_size) * u64::from(k) >= bytes.len() as u64, true);

        // The manifest survives its canonical JSON and hashes the same.
        let back = Manifest::from_json(&man.canonical_json()).unwrap();
        prop_assert_eq!(&back, man);
        prop_assert_eq!(back.manifest_hash(), merkle::keccak256(&man.canonical_json()));

        // Drop up to m shards.
        let mut dropped = 0;
        let slots: Vec<Option<Vec<u8>>> = enc
            .shards
            .iter()
            .zip(&drop)
            .map(|(s, &d)| {
                if d && dropped < m {
                    dropped += 1;
                    None
                } else {
                    Some(s.clone())
                }
            })
            .collect();
        prop_assert_eq!(shard::reconstruct(man, slots.clone()).unwrap(), bytes.clone());
        let all = shard::reconstruct_all(man, slots).unwrap();
        prop_assert_eq!(all.shards, enc.shards.clone());

        // Every shard proves against the root, and only at its own index.
        let n = man.shard_count();
        for i in 0..n {
            let p = proof::proof(man, i).unwrap();
            prop_assert!(proof::verify(&man.root, i as u64, n, &man.shard_hashes[i], &p));
            if n > 1 {
                let j = ((i + 1) % n) as u64;
                prop_assert!(!proof::verify(&man.root, j, n, &man.shard_hashes[i], &p));
            }
        }
    }

    #[test]
    fn one_more_loss_than_parity_fails((bytes, k, m, _drop) in case()) {
        let enc = shard::encode(&bytes, ShardParams::new(k, m).unwrap()).unwrap();
        let slots: Vec<Option<Vec<u8>>> = enc
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| (i > usize::from(m)).then(|| s.clone()))
            .collect();
        let result = shard::reconstruct(&enc.manifest, slots);
        let too_few = matches!(
            result,
            Err(shard::ShardError::TooFewShards { have, need }) if have + 1 == need
        );
        prop_assert!(too_few);
    }
}
