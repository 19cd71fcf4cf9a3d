//! End-to-end tests over real HTTP on 127.0.0.1: shard servers (honest, partial, malicious,
//! down) and the verifying client.

use std::net::SocketAddr;

use autonet_protocol::merkle::{self, Hash32};
use autonet_storage::client::{FailureReason, PeerFailure};
use autonet_storage::server::{HEADER_SHARD_HASH, HEADER_SHARD_PROOF};
use autonet_storage::{
    ClientError, Encoded, FetchConfig, ShardClient, ShardParams, ShardServer, Store, proof, shard,
};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LOCALHOST: &str = "127.0.0.1:0";

fn blob(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(seed).wrapping_add((i >> 8) as u8))
        .collect()
}

struct Running {
    url: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

async fn serve_store(store: Store) -> Running {
    let server = ShardServer::bind(LOCALHOST.parse().unwrap(), store)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let task = tokio::spawn(async move { server.run(token).await.unwrap() });
    Running {
        url: format!("http://{addr}"),
        cancel,
        task,
    }
}

async fn serve_router(router: Router) -> Running {
    let listener = TcpListener::bind(LOCALHOST).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .unwrap()
    });
    Running {
        url: format!("http://{addr}"),
        cancel,
        task,
    }
}

/// An address on which nothing listens.
async fn dead_url() -> String {
    let listener = TcpListener::bind(LOCALHOST).await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn client() -> ShardClient {
    ShardClient::new(FetchConfig::default()).unwrap()
}

/// How a malicious peer lies.
#[derive(Clone, Copy)]
enum Lie {
    /// Flips a byte and keeps the honest hash and proof headers.
    FlipByte,
    /// Flips a byte and sends the corrupted bytes' hash with the honest proof.
    FlipByteAndHash,
    /// Honest bytes and hash, but the proof of another index.
    WrongProof,
    /// Honest bytes with one extra byte appended.
    Oversized,
}

/// A peer that serves the honest manifest but corrupted shards.
fn malicious(encoded: Encoded, lie: Lie) -> Router {
    async fn handler(
        State((enc, lie)): State<(Encoded, Lie)>,
        Path((_root, item)): Path<(String, String)>,
    ) -> Response {
        if item == "manifest" {
            return enc.manifest.canonical_json().into_response();
        }
        let index: usize = item.parse().unwrap();
        let n = enc.manifest.shard_count();
        let mut bytes = enc.shards[index].clone();
        let mut proof_index = index;
        let hash = match lie {
            Lie::FlipByte => {
                bytes[0] ^= 0x01;
                enc.manifest.shard_hashes[index]
            }
            Lie::FlipByteAndHash => {
                bytes[0] ^= 0x01;
                merkle::keccak256(&bytes)
            }
            Lie::WrongProof => {
                proof_index = (index + 1) % n;
                enc.manifest.shard_hashes[index]
            }
            Lie::Oversized => {
                bytes.push(0);
                enc.manifest.shard_hashes[index]
            }
        };
        let proof = proof::proof(&enc.manifest, proof_index).unwrap();
        (
            [
                (
                    HeaderName::from_static(HEADER_SHARD_HASH),
                    merkle::to_hex(&hash),
                ),
                (
                    HeaderName::from_static(HEADER_SHARD_PROOF),
                    proof::to_header(&proof),
                ),
            ],
            bytes,
        )
            .into_response()
    }
    Router::new()
        .route("/shards/{root}/{item}", get(handler))
        .with_state((encoded, lie))
}

/// A peer that serves fixed manifest bytes and nothing else.
fn manifest_only(body: Vec<u8>) -> Router {
    Router::new().route(
        "/shards/{root}/{item}",
        get(move |Path((_r, item)): Path<(String, String)>| {
            let body = body.clone();
            async move {
                if item == "manifest" {
                    body.into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            }
        }),
    )
}

fn reasons_for(failures: &[PeerFailure], peer: &str) -> Vec<FailureReason> {
    failures
        .iter()
        .filter(|f| f.peer == peer)
        .map(|f| f.reason.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_round_trip_from_two_honest_servers() {
    let bytes = blob(100_000, 7);
    let (_a_dir, a) = store();
    let (_b_dir, b) = store();
    let man = a.put(&bytes).unwrap();
    assert_eq!(b.put(&bytes).unwrap(), man);
    let (sa, sb) = (serve_store(a).await, serve_store(b).await);

    let (_c_dir, local) = store();
    let peers = vec![sa.url.clone(), format!("{}/", sb.url)];
    let fetched = client()
        .fetch(man.root, man.manifest_hash(), &peers, &local)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, bytes);
    assert_eq!(fetched.manifest, man);
    assert!(fetched.failures.is_empty(), "{:?}", fetched.failures);
    // Stored locally: every shard, verified on read.
    assert_eq!(local.list().unwrap(), vec![man.root]);
    assert_eq!(local.held(&man.root).unwrap(), (0..6).collect::<Vec<_>>());
    assert_eq!(local.get(&man.root).unwrap(), bytes);

    // A second fetch is served locally even with every peer gone.
    sa.stop().await;
    sb.stop().await;
    let again = client()
        .fetch(man.root, man.manifest_hash(), &[dead_url().await], &local)
        .await
        .unwrap();
    assert_eq!(again.bytes, bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_wire_format_and_status_codes() {
    let bytes = blob(5_000, 3);
    let (_dir, st) = store();
    let man = st
        .put_with(&bytes, ShardParams::new(3, 2).unwrap())
        .unwrap();
    let enc = shard::encode(&bytes, ShardParams::new(3, 2).unwrap()).unwrap();
    let srv = serve_store(st.clone()).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let root_hex = merkle::to_hex(&man.root);

    let r = http
        .get(format!("{}/shards/{root_hex}/manifest", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.bytes().await.unwrap(), man.canonical_json());

    for i in 0..5 {
        // Root without 0x works too.
        let r = http
            .get(format!("{}/shards/{}/{i}", srv.url, &root_hex[2..]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-shard-index"], i.to_string().as_str());
        let hash: Hash32 = autonet_storage::manifest::parse_hash32(
            r.headers()[HEADER_SHARD_HASH].to_str().unwrap(),
        )
        .unwrap();
        let p = proof::from_header(r.headers()[HEADER_SHARD_PROOF].to_str().unwrap()).unwrap();
        assert_eq!(p, proof::proof(&man, i).unwrap());
        let body = r.bytes().await.unwrap();
        assert_eq!(body, enc.shards[i]);
        assert_eq!(hash, merkle::keccak256(&body));
        assert!(proof::verify(&man.root, i as u64, 5, &hash, &p));
    }

    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    let unknown = merkle::to_hex(&merkle::keccak256(b"unknown"));
    assert_eq!(
        status(format!("{}/shards/{unknown}/manifest", srv.url)).await,
        404
    );
    assert_eq!(status(format!("{}/shards/{unknown}/0", srv.url)).await, 404);
    assert_eq!(
        status(format!("{}/shards/{root_hex}/5", srv.url)).await,
        404
    );
    assert_eq!(status(format!("{}/shards/0x1234/0", srv.url)).await, 400);
    assert_eq!(
        status(format!("{}/shards/{root_hex}/abc", srv.url)).await,
        400
    );
    assert_eq!(status(format!("{}/nothing", srv.url)).await, 404);

    // A flipped byte on disk: the server refuses to send that shard.
    let path = st.dir().join(&root_hex).join("2.shard");
    let mut raw = std::fs::read(&path).unwrap();
    raw[10] ^= 0x80;
    std::fs::write(&path, raw).unwrap();
    assert_eq!(
        status(format!("{}/shards/{root_hex}/2", srv.url)).await,
        500
    );
    assert_eq!(
        status(format!("{}/shards/{root_hex}/1", srv.url)).await,
        200
    );

    // Graceful shutdown: run returns, the port stops answering.
    let url = srv.url.clone();
    srv.stop().await;
    assert!(
        http.get(format!("{url}/shards/{root_hex}/manifest"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_shards_are_rejected_and_rebuilt_from_parity() {
    let bytes = blob(40_000, 11);
    let enc = shard::encode(&bytes, ShardParams::default()).unwrap();
    let man = enc.manifest.clone();

    for lie in [
        Lie::FlipByte,
        Lie::FlipByteAndHash,
        Lie::WrongProof,
        Lie::Oversized,
    ] {
        // The liar holds everything; the honest peer holds only shards 1, 2, 4, 5 (k = 4 of 6),
        // so data shards 0 and 3 must come back through Reed-Solomon.
        let liar = serve_router(malicious(enc.clone(), lie)).await;
        let (_h_dir, honest_store) = store();
        for i in [1, 2, 4, 5] {
            honest_store.put_shard(&man, i, &enc.shards[i]).unwrap();
        }
        honest_store.put_manifest(&man).unwrap();
        let honest = serve_store(honest_store).await;

        let (_l_dir, local) = store();
        let peers = vec![liar.url.clone(), honest.url.clone()];
        let fetched = client()
            .fetch(man.root, man.manifest_hash(), &peers, &local)
            .await
            .unwrap();
        assert_eq!(fetched.bytes, bytes);
        let liar_reasons = reasons_for(&fetched.failures, &liar.url);
        let expected = match lie {
            Lie::FlipByte => FailureReason::HeaderHashMismatch,
            Lie::FlipByteAndHash => FailureReason::ShardHashMismatch,
            Lie::WrongProof => FailureReason::BadProof,
            Lie::Oversized => FailureReason::TooLarge {
                limit: man.shard_size as usize,
            },
        };
        assert!(!liar_reasons.is_empty());
        assert!(
            liar_reasons.iter().all(|r| *r == expected),
            "{liar_reasons:?}"
        );
        // Rebuilt shards 0 and 3 are stored and verify.
        assert_eq!(local.held(&man.root).unwrap(), (0..6).collect::<Vec<_>>());
        for i in 0..6 {
            assert_eq!(local.get_shard(&man.root, i).unwrap(), enc.shards[i]);
        }
        liar.stop().await;
        honest.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_down_the_other_serves() {
    let bytes = blob(12_345, 5);
    let (_dir, st) = store();
    let man = st.put(&bytes).unwrap();
    let up = serve_store(st).await;
    let down = dead_url().await;

    let (_l_dir, local) = store();
    let peers = vec![down.clone(), up.url.clone()];
    let fetched = client()
        .fetch(man.root, man.manifest_hash(), &peers, &local)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, bytes);
    let down_reasons = reasons_for(&fetched.failures, &down);
    assert!(!down_reasons.is_empty());
    assert!(
        down_reasons
            .iter()
            .all(|r| matches!(r, FailureReason::Unreachable(_)))
    );
    // The manifest failure on the dead peer is recorded, not fatal.
    assert!(
        fetched
            .failures
            .iter()
            .any(|f| f.peer == down && f.index.is_none())
    );
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_that_do_not_match_the_chain_are_rejected() {
    let bytes = blob(3_000, 9);
    let (_dir, st) = store();
    let man = st.put(&bytes).unwrap();
    let other = st.put(&blob(2_000, 13)).unwrap();
    let honest = serve_store(st).await;
    let (_l_dir, local) = store();

    // Wrong on-chain manifest hash: every peer's manifest is rejected.
    let wrong = merkle::keccak256(b"not the manifest");
    let err = client()
        .fetch(man.root, wrong, std::slice::from_ref(&honest.url), &local)
        .await
        .unwrap_err();
    match &err {
        ClientError::ManifestUnavailable { failures, .. } => {
            assert!(matches!(
                failures.0[0].reason,
                FailureReason::ManifestHashMismatch(_)
            ));
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains(&honest.url));
    assert!(!local.has(&man.root));

    // A peer serving another model's manifest (whose hash the caller was told) for this root.
    let swapped = serve_router(manifest_only(other.canonical_json())).await;
    let err = client()
        .fetch_manifest(
            man.root,
            other.manifest_hash(),
            std::slice::from_ref(&swapped.url),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::ManifestUnavailable { failures, .. }
            if matches!(failures.0[0].reason, FailureReason::ManifestRootMismatch(_))),
        "{err}"
    );

    // A publisher that committed to non-canonical JSON: the hash matches, the bytes are refused.
    let pretty = serde_json::to_vec_pretty(&man).unwrap();
    let sloppy = serve_router(manifest_only(pretty.clone())).await;
    let err = client()
        .fetch_manifest(
            man.root,
            merkle::keccak256(&pretty),
            std::slice::from_ref(&sloppy.url),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::ManifestUnavailable { failures, .. }
            if matches!(failures.0[0].reason, FailureReason::InvalidManifest(_))),
        "{err}"
    );

    // The right manifest from a later peer after a bad one.
    let peers = vec![swapped.url.clone(), honest.url.clone()];
    let got = client()
        .fetch_manifest(man.root, man.manifest_hash(), &peers)
        .await
        .unwrap();
    assert_eq!(got, man);

    for s in [honest, swapped, sloppy] {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_valid_shards_names_the_failing_peers() {
    let bytes = blob(8_000, 17);
    let enc = shard::encode(&bytes, ShardParams::default()).unwrap();
    let man = enc.manifest.clone();
    // Honest but partial (3 of the 4 needed), a liar, and a dead peer.
    let (_p_dir, partial_store) = store();
    for i in [0, 2, 5] {
        partial_store.put_shard(&man, i, &enc.shards[i]).unwrap();
    }
    partial_store.put_manifest(&man).unwrap();
    let partial = serve_store(partial_store).await;
    let liar = serve_router(malicious(enc.clone(), Lie::FlipByte)).await;
    let down = dead_url().await;

    let (_l_dir, local) = store();
    let peers = vec![partial.url.clone(), liar.url.clone(), down.clone()];
    let err = client()
        .fetch(man.root, man.manifest_hash(), &peers, &local)
        .await
        .unwrap_err();
    match &err {
        ClientError::NotEnoughShards {
            need,
            have,
            failures,
            ..
        } => {
            assert_eq!((*need, *have), (4, 3));
            let peers_named = failures.peers();
            for p in [&partial.url, &liar.url, &down] {
                assert!(peers_named.contains(&p.as_str()), "{peers_named:?}");
            }
            assert!(
                reasons_for(&failures.0, &partial.url)
                    .iter()
                    .all(|r| *r == FailureReason::Status(404))
            );
        }
        e => panic!("unexpected {e}"),
    }
    let text = err.to_string();
    assert!(text.contains("only 3 of the 4 shards"), "{text}");
    for p in [&partial.url, &liar.url, &down] {
        assert!(text.contains(p.as_str()), "{text}");
    }
    assert!(!local.has(&man.root));
    partial.stop().await;
    liar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_peers_is_an_error() {
    let (_dir, local) = store();
    let root = merkle::keccak256(b"r");
    let err = client().fetch(root, root, &[], &local).await.unwrap_err();
    assert!(matches!(err, ClientError::NoPeers));
}
