//! BLS attestation end to end on anvil with the real deployment: coordinators register keys
//! with a proof of possession, sign the model message computed in Rust (checked equal to the
//! contract's), and one aggregate from the aggregator accepts the model. Refusals come back as
//! the contract's decoded custom errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy::primitives::{B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use autonet_agents::TrainingSpec;
use autonet_bindings::shards::IModelShardRegistry::ModelManifest;
use autonet_bindings::{BlsSignerRegistry, ModelShardRegistry};
use autonet_bls::{PublicKey, SecretKey, Signature, g1_words, g2_words};
use autonet_chain::{ChainProvider, ProviderConfig, TxError, TxOptions, connect, send_and_confirm};
use autonet_node::devnet::network::{Network, NetworkOptions};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn g2_flat(pk: &PublicKey) -> [U256; 4] {
    let [x, y] = g2_words(&pk.g2);
    [x[0], x[1], y[0], y[1]]
}

fn g1(sig: &Signature) -> [U256; 2] {
    g1_words(&sig.0)
}

fn tx_opts() -> TxOptions {
    TxOptions::default().with_timeout(Duration::from_secs(30))
}

async fn provider(net: &Network, key: &PrivateKeySigner) -> ChainProvider {
    let config = ProviderConfig::new(net.rpc_url.clone()).with_chain_id(net.opts.chain_id);
    connect(&config, key.clone()).await.expect("provider")
}

fn revert_name(e: &TxError) -> String {
    match e {
        TxError::Reverted { revert, .. } => revert.name.clone(),
        other => panic!("expected a decoded revert, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn coordinators_register_bls_keys_and_one_aggregate_accepts_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let spec = TrainingSpec::for_preset("tiny").unwrap();
    let opts = NetworkOptions {
        repo: autonet_test_utils::repo_root(),
        dir: dir.path().to_path_buf(),
        agent_bin: env!("CARGO_BIN_EXE_autonet").into(),
        spec,
        solvers: 1,
        coordinators: 3,
        windows: [10, 4, 4, 6, 4, 20],
        min_votes: 2,
        max_staleness: 0,
        rounds: 1,
        block_time: 1,
        chain_id: 43_000
            + u64::from(std::process::id() % 1000) * 10
            + NEXT.fetch_add(1, Ordering::Relaxed),
        reward_atn: 100,
        extra_args: Default::default(),
        code_hash: None,
        start_agents: false,
        netns: false,
        draft: None,
        world: None,
    };
    let mut net = Network::launch(opts).await.expect("network");
    let chain_id = net.opts.chain_id;
    let registry = net.contracts.shard_registry;
    let signer_registry = net.contracts.bls_signers;
    let coordinators: Vec<(String, PrivateKeySigner)> = net
        .agents
        .values()
        .filter(|a| a.name.starts_with("coordinator"))
        .map(|a| (a.name.clone(), a.key.clone()))
        .collect();
    assert_eq!(coordinators.len(), 3);
    let aggregator = net.agents["aggregator"].key.clone();

    // Registration: a proof replayed from another coordinator is refused; each registers its own.
    let secrets: Vec<SecretKey> = coordinators
        .iter()
        .map(|(name, _)| SecretKey::from_bytes(&keccak256(format!("bls {name}")).0).unwrap())
        .collect();
    for (i, ((name, key), sk)) in coordinators.iter().zip(&secrets).enumerate() {
        let p = provider(&net, key).await;
        let signers = BlsSignerRegistry::new(signer_registry, &p);
        let pk = sk.public_key();
        let expected = autonet_bls::pop_message(chain_id, signer_registry, key.address(), &pk);
        let on_chain = signers
            .blsPopMessage(key.address(), g1_words(&pk.g1), g2_flat(&pk))
            .call()
            .await
            .unwrap();
        assert_eq!(on_chain, expected, "proof-of-possession message of {name}");
        if i == 1 {
            let stolen = secrets[0].proof_of_possession(
                chain_id,
                signer_registry,
                coordinators[0].1.address(),
            );
            let pk0 = secrets[0].public_key();
            let err = send_and_confirm::<BlsSignerRegistry::BlsKeyRegistered, _, _>(
                &signers.registerBlsKey(g1_words(&pk0.g1), g2_flat(&pk0), g1(&stolen)),
                &tx_opts(),
            )
            .await
            .unwrap_err();
            assert_eq!(
                revert_name(&err),
                "BlsSignerRegistryInvalidProofOfPossession"
            );
        }
        let pop = sk.proof_of_possession(chain_id, signer_registry, key.address());
        let ok = send_and_confirm::<BlsSignerRegistry::BlsKeyRegistered, _, _>(
            &signers.registerBlsKey(g1_words(&pk.g1), g2_flat(&pk), g1(&pop)),
            &tx_opts(),
        )
        .await
        .unwrap();
        assert_eq!(ok.event.coordinator, key.address());
        assert_eq!(ok.event.index, U256::from(i));
    }

    // The aggregator publishes a model on the genesis root.
    let p = provider(&net, &aggregator).await;
    let shards = ModelShardRegistry::new(registry, &p);
    let root = keccak256("bls model");
    let manifest = ModelManifest {
        projectId: U256::from(net.project_id),
        root,
        manifestHash: keccak256("manifest"),
        parentRoot: net.genesis_root,
        totalSize: 10_000,
        shardSize: 1000,
        dataShards: 10,
        parityShards: 4,
    };
    let task_ids = vec![U256::from(7u64)];
    let published = send_and_confirm::<ModelShardRegistry::ModelPublished, _, _>(
        &shards.publishModel(manifest, task_ids.clone()),
        &tx_opts(),
    )
    .await
    .unwrap();

    // Every coordinator signs the message computed locally (the publication: manifest hash,
    // publisher and block included); it equals the contract's.
    let message = autonet_bls::attestation_message(&autonet_bls::ModelAttestation {
        chain_id,
        registry,
        project_id: U256::from(net.project_id),
        parent_root: net.genesis_root,
        root,
        manifest_hash: keccak256("manifest"),
        publisher: aggregator.address(),
        published_block: published.receipt.block_number.expect("a mined receipt"),
        task_ids: &task_ids,
    });
    assert_eq!(
        shards.blsAttestationMessage(root).call().await.unwrap(),
        message
    );
    let sigs: Vec<Signature> = secrets.iter().map(|sk| sk.sign(message)).collect();
    let keys: Vec<PublicKey> = secrets.iter().map(SecretKey::public_key).collect();

    // One signer is not enough (1/3 of the stake); a bad aggregate is refused by name.
    let err = send_and_confirm::<ModelShardRegistry::ModelAccepted, _, _>(
        &shards.attestModelBls(root, U256::from(1u64), g2_flat(&keys[0]), g1(&sigs[0])),
        &tx_opts(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        revert_name(&err),
        "ModelShardRegistryInsufficientSignerStake"
    );
    let wrong = autonet_bls::aggregate_signatures(&[secrets[0].sign(B256::ZERO), sigs[1], sigs[2]]);
    let all = autonet_bls::aggregate_keys(&keys);
    let err = send_and_confirm::<ModelShardRegistry::ModelAccepted, _, _>(
        &shards.attestModelBls(root, U256::from(7u64), g2_flat(&all), g1(&wrong)),
        &tx_opts(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        revert_name(&err),
        "BlsSignerRegistryInvalidAggregateSignature"
    );

    let agg = autonet_bls::aggregate_signatures(&sigs);
    let accepted = send_and_confirm::<ModelShardRegistry::ModelAccepted, _, _>(
        &shards.attestModelBls(root, U256::from(7u64), g2_flat(&all), g1(&agg)),
        &tx_opts(),
    )
    .await
    .unwrap();
    assert_eq!(accepted.event.root, root);
    let gas = accepted.receipt.gas_used;
    println!("one BLS aggregate of 3 coordinators accepted the model: {gas} gas");
    assert_eq!(
        shards
            .latestAccepted(U256::from(net.project_id))
            .call()
            .await
            .unwrap(),
        root
    );
    net.shutdown();
}
