//! The devnet's draft project (`autonet devnet --draft-rounds N`): a second, smaller project
//! (the `tiny` preset) on the main project's corpus, trained by its own agents (`draft-…`)
//! through the same contracts after the main rounds. The inference node drafts with its current
//! model (`autonet serve --draft-project`); this module follows its rounds and measures what
//! speculative decoding gives on the devnet's two trained models.

use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use autonet_agents::spec::Dataset;
use autonet_bindings::Project;
use autonet_ml::Lm;
use autonet_ml::generate::{GenerateParams, generate};
use autonet_ml::speculative::{held_out_prompts, speculative_greedy};
use serde_json::{Value, json};

use super::network::{Network, NetworkError, eval_loss_for};

/// Draft bytes per round measured.
const MEASURED_K: [usize; 3] = [1, 2, 4];
/// Prompts measured (16 bytes of held-out code each).
const PROMPTS: usize = 8;
/// Bytes generated per prompt.
const GENERATED: usize = 128;
/// Timed repetitions (the fastest is kept).
const REPEATS: usize = 3;

fn other(e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Other(e.to_string())
}

/// The current model root of project `id`.
async fn model_root(net: &Network, id: u64) -> Result<B256, NetworkError> {
    Project::new(net.contracts.project, net.provider.clone())
        .modelRoot(U256::from(id))
        .call()
        .await
        .map_err(other)
}

/// Starts the draft project's agents, follows its rounds (the tasks after the main project's
/// `main_rounds`) and measures speculative decoding with the two final models; the summary's
/// text and JSON.
pub async fn train_and_measure(
    net: &mut Network,
    main_rounds: u64,
) -> Result<(String, Value), NetworkError> {
    let (Some(d), Some(id)) = (net.opts.draft.clone(), net.draft_project) else {
        return Err(other("this network has no draft project"));
    };
    println!(
        "draft: starting the draft project's agents (project {id}, {} preset on the same corpus, {} solvers, {} coordinators, {} rounds)",
        d.spec.preset, d.solvers, d.coordinators, d.rounds
    );
    net.start_draft().await?;
    let workspace = autonet_agents::spec::default_workspace();
    let corpus_root = B256::from(d.spec.corpus(&workspace).map_err(other)?.root());
    let data = Dataset::load(&d.spec, &workspace, corpus_root).map_err(other)?;
    let genesis = d.spec.genesis().map_err(other)?;
    let initial = eval_loss_for(&d.spec, &data, &genesis)?;
    println!("draft round 0: draft eval loss {initial:.4} (genesis model)");
    let round_blocks = u64::from(d.windows.iter().sum::<u32>()) + 30;
    let timeout = Duration::from_secs(round_blocks * net.opts.block_time.max(1) * 3 + 120);
    let mut rounds = Vec::new();
    for i in 1..=d.rounds {
        let task = main_rounds + i;
        let outcome = net.wait_task_end(task, timeout).await?;
        if outcome != "finalized" {
            return Err(other(format!(
                "draft round {i}: task {task} was {outcome}; see the draft agents' logs in {}",
                net.opts.dir.display()
            )));
        }
        let root = net.wait_model_for(task, timeout).await?;
        let loss = eval_loss_for(&d.spec, &data, &net.load_model(root)?)?;
        println!("draft round {i}: task {task} {outcome}, draft eval loss {loss:.4}, model {root}");
        rounds.push(
            json!({"round": i, "task_id": task, "eval_loss": loss, "model": root.to_string()}),
        );
    }

    let main_root = model_root(net, net.project_id).await?;
    let draft_root = model_root(net, id).await?;
    let main_cfg = net.opts.spec.model_config().map_err(other)?;
    let draft_cfg = d.spec.model_config().map_err(other)?;
    let main = Lm::new(&main_cfg, &net.load_model(main_root)?, tch::Device::Cpu).map_err(other)?;
    let draft =
        Lm::new(&draft_cfg, &net.load_model(draft_root)?, tch::Device::Cpu).map_err(other)?;
    let main_data = net.dataset()?;
    let prompts = held_out_prompts(&main_data.eval_chunks(), PROMPTS, 16);
    if prompts.is_empty() {
        return Err(other("no held-out chunk of 1 KiB to cut prompts from"));
    }
    let (text, json) = measure(&main, &draft, &prompts)?;
    let mut out = format!(
        "\n  draft project {id} ({} preset, {} rounds): draft eval loss {initial:.4} → {:.4}\n",
        d.spec.preset,
        d.rounds,
        rounds
            .last()
            .and_then(|r| r["eval_loss"].as_f64())
            .unwrap_or(f64::from(initial))
    );
    out.push_str(&text);
    Ok((
        out,
        json!({
            "project_id": id,
            "preset": d.spec.preset,
            "initial_eval_loss": initial,
            "rounds": rounds,
            "main_model": main_root.to_string(),
            "draft_model": draft_root.to_string(),
            "speculation": json,
        }),
    ))
}

/// Greedy generations of [`GENERATED`] bytes after each prompt with `main` alone (KV cache,
/// the node's full path) and speculatively with `draft` at each of [`MEASURED_K`], on one
/// libtorch thread (the node's default): fails unless every speculative output equals the
/// plain one; the table's text and JSON.
fn measure(main: &Lm, draft: &Lm, prompts: &[Vec<u8>]) -> Result<(String, Value), NetworkError> {
    let threads = tch::get_num_threads();
    tch::set_num_threads(1);
    let result = (|| {
        let params = GenerateParams::greedy(GENERATED);
        let bytes = (GENERATED * prompts.len()) as f64;
        let best = |f: &mut dyn FnMut() -> Result<(), NetworkError>| {
            let mut best = f64::INFINITY;
            for _ in 0..REPEATS {
                let t = Instant::now();
                f()?;
                best = best.min(t.elapsed().as_secs_f64());
            }
            Ok::<_, NetworkError>(best)
        };
        let refs = prompts
            .iter()
            .map(|p| generate(main, p, &params).map_err(other))
            .collect::<Result<Vec<_>, _>>()?;
        let plain = bytes
            / best(&mut || {
                for p in prompts {
                    generate(main, p, &params).map_err(other)?;
                }
                Ok(())
            })?;
        let mut text = format!(
            "  speculative decoding on the devnet's models ({} prompts of held-out code, {GENERATED} bytes each, greedy, 1 thread): the main model alone {plain:.0} B/s\n",
            prompts.len()
        );
        let mut rows = Vec::new();
        for k in MEASURED_K {
            let (mut proposed, mut accepted) = (0, 0);
            for (p, want) in prompts.iter().zip(&refs) {
                let (out, s) = speculative_greedy(main, draft, p, GENERATED, k).map_err(other)?;
                if &out != want {
                    return Err(other(format!(
                        "speculative decoding with k={k} gave {:?} where the main model alone gives {:?} (prompt {:?})",
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(want),
                        String::from_utf8_lossy(p)
                    )));
                }
                proposed += s.proposed;
                accepted += s.accepted;
            }
            let speed = bytes
                / best(&mut || {
                    for p in prompts {
                        speculative_greedy(main, draft, p, GENERATED, k).map_err(other)?;
                    }
                    Ok(())
                })?;
            let rate = accepted as f64 / proposed.max(1) as f64;
            text.push_str(&format!(
                "    k={k}: {speed:.0} B/s ({:.2}× the main model alone), acceptance {rate:.2} ({accepted} of {proposed} drafted bytes), outputs identical\n",
                speed / plain
            ));
            rows.push(json!({"k": k, "bytes_per_s": speed, "speedup": speed / plain, "acceptance_rate": rate, "proposed": proposed, "accepted": accepted}));
        }
        Ok((text, json!({"main_bytes_per_s": plain, "by_k": rows})))
    })();
    tch::set_num_threads(threads);
    result
}
