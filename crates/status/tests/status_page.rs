//! The status page in a real browser: serves the status router on a loopback port and runs
//! `script/check-status-page.sh` (headless Chromium) against it. Needs `/usr/bin/chromium`
//! (`make setup-browser`); without it this test fails rather than skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use autonet_status::{NodeInfo, Round, STATUS_HTML, SolverResult, StatusState, router};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../script/check-status-page.sh")
}

fn require_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: run `make setup-browser` (apt-get install -y chromium) \
         — this browser test does not skip"
    );
}

fn node() -> NodeInfo {
    NodeInfo {
        role: "coordinator".into(),
        address: "0x1111111111111111111111111111111111111111".into(),
        chain_id: 31337,
        project_id: 1,
        version: env!("CARGO_PKG_VERSION").into(),
        code_hash: Some(format!("0x{}", "ab".repeat(32))),
    }
}

/// `n` finalized rounds; with `timed`, each carries its proposal time (30 s apart).
fn rounds(n: u64, timed: bool) -> Vec<Round> {
    (1..=n)
        .map(|task_id| Round {
            task_id,
            proposed_at: timed.then_some(1_800_000_000 + 30 * task_id),
            proposer: "0x2222222222222222222222222222222222222222".into(),
            status: "finalized".into(),
            base_loss: Some(5.5 - 0.3 * task_id as f64),
            solvers: vec![SolverResult {
                address: "0x3333333333333333333333333333333333333333".into(),
                consensus: Some(0.9),
                incentive: Some(1.0),
                reward_atn: Some("2.5".into()),
                ..SolverResult::default()
            }],
            ..Round::default()
        })
        .collect()
}

/// Serves the status page of `rounds` on 127.0.0.1:0; returns its URL.
async fn serve(rounds: Vec<Round>) -> String {
    let app = router(StatusState::fixed(node(), rounds));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

/// Runs the check script; returns (success, combined output).
async fn check(url: &str, expected: usize) -> (bool, String) {
    let (script, url) = (script(), url.to_string());
    tokio::task::spawn_blocking(move || {
        let out = Command::new("bash")
            .arg(&script)
            .arg(&url)
            .arg(expected.to_string())
            .output()
            .expect("running check-status-page.sh");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loss_chart_renders_one_point_per_round() {
    require_chromium();
    let url = serve(rounds(4, true)).await;
    let (ok, out) = check(&url, 4).await;
    assert!(ok, "the check failed on a page with 4 rounds:\n{out}");
    assert!(
        out.contains("loss chart with 4 points (x axis: time, 6 x ticks)"),
        "rounds with proposal times plot against wall-clock time: {out}"
    );

    let (ok, out) = check(&url, 3).await;
    assert!(!ok, "the check passed with a wrong point count:\n{out}");
    assert!(out.contains("expected 3"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_are_rounded_for_people_with_every_digit_on_hover() {
    require_chromium();
    let mut rs = rounds(3, true);
    for r in &mut rs {
        r.solvers[0].reward_atn = Some("69.99999999999999993".into());
    }
    let url = serve(rs).await;
    let (ok, out) = check(&url, 3).await;
    assert!(ok, "the check failed:\n{out}");
    assert!(
        out.contains("card: 210 ATN (209.99999999999999979 ATN) all rewards"),
        "the total is rounded, every digit on hover: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_without_proposal_times_plot_by_round() {
    require_chromium();
    let mut rs = rounds(3, true);
    rs[1].proposed_at = None; // one unknown time: no wall-clock axis
    let url = serve(rs).await;
    let (ok, out) = check(&url, 3).await;
    assert!(ok, "the check failed on a page with 3 rounds:\n{out}");
    assert!(
        out.contains("loss chart with 3 points (x axis: round, 3 x ticks)"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_says_no_rounds_yet() {
    require_chromium();
    let url = serve(Vec::new()).await;
    let (ok, out) = check(&url, 0).await;
    assert!(ok, "the check failed on a page without rounds:\n{out}");
    let (ok, _) = check(&url, 1).await;
    assert!(!ok, "an empty chart passed as one point");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_data_does_not_load_fails_the_check() {
    require_chromium();
    // The real page, but its API fails.
    let app = axum::Router::new()
        .route("/", get(|| async { Html(STATUS_HTML) }))
        .route(
            "/api/status",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database is down") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (ok, out) = check(&format!("http://{addr}/"), 0).await;
    assert!(!ok, "a page whose data failed to load passed:\n{out}");
    assert!(
        out.contains("did not load its data") && out.contains("database is down"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_node_shows_its_outputs_by_path_and_the_draft_acceptance() {
    require_chromium();
    let state = StatusState::fixed(
        NodeInfo {
            role: "inference".into(),
            ..node()
        },
        vec![],
    );
    let m = state.metrics();
    m.inference_path("speculative", Some((10, 6)));
    m.inference_path("speculative", Some((10, 2)));
    m.inference_path("cache", None);
    m.inference_path("full", None);
    let app = router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (ok, out) = check(&format!("http://{addr}/"), 0).await;
    assert!(ok, "the check failed:\n{out}");
    for card in [
        "card: 1 (25%) () answered from cache",
        "card: 2 (50%) () decoded speculatively",
        "card: 1 (25%) () decoded by the full model",
        "card: 0.400 (8 of 20 proposed bytes accepted) draft acceptance",
    ] {
        assert!(out.contains(card), "missing `{card}`: {out}");
    }
}
