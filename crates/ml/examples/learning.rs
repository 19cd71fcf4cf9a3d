//! Does the network learn? Centralized training (the same steps as one solver, and the same
//! compute as all solvers together) vs federated rounds (4 solvers, trimmed mean of
//! deltas), pipelined federated rounds (each delta trained one model behind the one it is applied
//! to) and federated with one poisoned solver, on the reference corpus (Rust sources pinned by
//! this workspace's Cargo.lock). Prints the eval loss per round and a markdown table.
//!
//! `cargo run --release -p autonet-ml --example learning -- [--preset small] [--rounds 4]
//!  [--local-steps 30] [--batch 16] [--solvers 4] [--max-mib 8] [--eval-windows 128]`

use std::time::Instant;

use autonet_ml::corpus::{self, Corpus, CorpusOptions, default_workspace_root};
use autonet_ml::{
    Contribution, EvalSpec, ModelConfig, Rule, TrainParams, aggregate, apply_stale, evaluate,
    init_weights, train, train_with_hook,
};

/// Boxed-error result for the example (no anyhow dependency in this crate).
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Args {
    preset: String,
    rounds: usize,
    local_steps: usize,
    batch: usize,
    solvers: usize,
    max_mib: usize,
    eval_windows: usize,
    lr: f64,
}

/// How a pipelined round's delta reaches the model (see `federated`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stale {
    /// Rounds in sequence: trained from the model it is applied to.
    No,
    /// Trained one model behind, added to the newer model.
    Add,
    /// Trained one model behind, applied by `apply_stale`.
    Midpoint,
    /// Trained from the model one behind plus the solver's own delta of the round before (its
    /// own guess of the newer model), the delta taken from that start and added to the newer
    /// model.
    Lookahead,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        preset: "small".into(),
        rounds: 4,
        local_steps: 30,
        batch: 16,
        solvers: 4,
        max_mib: 8,
        eval_windows: 128,
        lr: 3e-3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--preset" => a.preset = val()?,
            "--rounds" => a.rounds = val()?.parse()?,
            "--local-steps" => a.local_steps = val()?.parse()?,
            "--batch" => a.batch = val()?.parse()?,
            "--solvers" => a.solvers = val()?.parse()?,
            "--max-mib" => a.max_mib = val()?.parse()?,
            "--eval-windows" => a.eval_windows = val()?.parse()?,
            "--lr" => a.lr = val()?.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    autonet_ml::fpenv::flush_denormals();
    let args = parse_args()?;
    let cfg = ModelConfig::preset(&args.preset).ok_or("unknown preset")?;
    let t0 = Instant::now();
    let opts = CorpusOptions {
        max_bytes: args.max_mib << 20,
        ..Default::default()
    };
    let corpus = Corpus::from_cargo_lock(&default_workspace_root(), &opts)?;
    let (train_chunks, eval_chunks) = corpus::split(&corpus.chunks, 50);
    println!(
        "corpus: {} bytes, {} chunks ({} train / {} eval), root {} ({:.1}s)",
        corpus.manifest.total_bytes,
        corpus.chunks.len(),
        train_chunks.len(),
        eval_chunks.len(),
        corpus.manifest.root,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "model: {:?}, {} params; threads {}; R={} rounds, S={} local steps, batch {}, {} solvers",
        cfg,
        cfg.num_params(),
        tch::get_num_threads(),
        args.rounds,
        args.local_steps,
        args.batch,
        args.solvers
    );
    let spec = EvalSpec {
        seed: 0xE7A1,
        windows: args.eval_windows,
        batch: 32,
    };
    let init = init_weights(&cfg, 0)?;
    let initial = evaluate(&cfg, &init, &eval_chunks, &spec)?;
    println!("initial eval loss {initial:.4}");
    let base = TrainParams {
        steps: args.local_steps,
        batch: args.batch,
        lr: args.lr,
        warmup_steps: 3,
        progress: true,
        ..Default::default()
    };

    // Centralized: one run of R·S steps on all training chunks, evaluated every S steps.
    let t = Instant::now();
    let mut central = Vec::new();
    let params = TrainParams {
        steps: args.rounds * args.local_steps,
        seed: 1,
        ..base.clone()
    };
    train_with_hook(&cfg, &init, &train_chunks, &params, &mut |step, lm| {
        if step % args.local_steps == 0 {
            let loss = evaluate(&cfg, &lm.weights()?, &eval_chunks, &spec)?;
            println!("centralized step {step}: eval {loss:.4}");
            central.push(loss);
        }
        Ok(())
    })?;
    println!("centralized took {:.1}s", t.elapsed().as_secs_f64());

    // Centralized at equal compute: as many optimizer steps × batch as all solvers together
    // (R·S·n steps), evaluated after each round's worth (S·n steps).
    let t = Instant::now();
    let per_round = args.local_steps * args.solvers;
    let mut central_equal = Vec::new();
    let params = TrainParams {
        steps: args.rounds * per_round,
        seed: 1,
        ..base.clone()
    };
    train_with_hook(&cfg, &init, &train_chunks, &params, &mut |step, lm| {
        if step % per_round == 0 {
            let loss = evaluate(&cfg, &lm.weights()?, &eval_chunks, &spec)?;
            println!("centralized, equal compute, step {step}: eval {loss:.4}");
            central_equal.push(loss);
        }
        Ok(())
    })?;
    println!(
        "centralized at equal compute took {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let shards: Vec<_> = (0..args.solvers)
        .map(|i| corpus::shard(&train_chunks, args.solvers, i))
        .collect();
    // `stale`: pipelined rounds (a project's maxStaleness 1): round r's solvers train from the
    // model before round r − 1's update (they started while it was being aggregated), and their
    // merged delta goes onto the newer model, added to it (`Stale::Add`) or by the protocol's
    // rule (`Stale::Midpoint`, `apply_stale`).
    let federated = |label: &str, rule: Rule, poisoned: bool, stale: Stale| -> Result<Vec<f32>> {
        let t = Instant::now();
        let mut global = init.clone();
        let mut previous = init.clone();
        let mut curve = Vec::new();
        // Each solver's own delta of the round before (`Stale::Lookahead`).
        let mut own: Vec<Option<autonet_ml::Delta>> = vec![None; shards.len()];
        for round in 0..args.rounds {
            let from = if stale == Stale::No || round == 0 {
                &global
            } else {
                &previous
            };
            let mut deltas = Vec::new();
            for (i, shard) in shards.iter().enumerate() {
                let ts = Instant::now();
                let p = TrainParams {
                    seed: (round * 1000 + i) as u64,
                    ..base.clone()
                };
                let start = match (&own[i], stale) {
                    (Some(mine), Stale::Lookahead) if round > 0 => from.add(mine)?,
                    _ => from.clone(),
                };
                let out = train(&cfg, &start, shard, &p)?;
                own[i] = Some(out.delta.clone());
                let delta = if poisoned && i == args.solvers - 1 {
                    out.delta.scale(-10.0)
                } else {
                    out.delta
                };
                println!(
                    "  {label} round {} solver {i}: train loss {:.4}, {:.1}s",
                    round + 1,
                    out.train_loss,
                    ts.elapsed().as_secs_f64()
                );
                deltas.push(delta);
            }
            let contributions: Vec<Contribution<'_>> = deltas
                .iter()
                .map(|delta| Contribution { delta, weight: 1 })
                .collect();
            let merged = aggregate(rule, &contributions)?;
            // Round 1 trains from the model it is applied to: nothing is stale yet.
            let next = match stale {
                Stale::Midpoint if round > 0 => apply_stale(&global, &previous, &merged)?,
                _ => global.add(&merged)?,
            };
            previous = std::mem::replace(&mut global, next);
            let loss = evaluate(&cfg, &global, &eval_chunks, &spec)?;
            println!("{label} round {}: eval {loss:.4}", round + 1);
            curve.push(loss);
        }
        println!("{label} took {:.1}s", t.elapsed().as_secs_f64());
        Ok(curve)
    };
    let fed = federated("federated", Rule::default(), false, Stale::No)?;
    let pipelined_add = federated("pipelined+add", Rule::default(), false, Stale::Add)?;
    let pipelined = federated(
        "pipelined+midpoint",
        Rule::default(),
        false,
        Stale::Midpoint,
    )?;
    let lookahead = federated(
        "pipelined+lookahead",
        Rule::default(),
        false,
        Stale::Lookahead,
    )?;
    let poisoned = federated("poisoned+trimmed", Rule::default(), true, Stale::No)?;
    let poisoned_avg = federated("poisoned+fedavg", Rule::FedAvg, true, Stale::No)?;

    println!(
        "\n| round | centralized (S steps/round) | centralized, equal compute (S·n steps/round) | federated, trimmed mean | federated vs equal compute | pipelined, delta added to the newer model | pipelined, apply_stale (the protocol) | pipelined, own-delta lookahead | 1 of {} poisoned, trimmed mean | 1 of {} poisoned, FedAvg |",
        args.solvers, args.solvers
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| 0 (init) | {initial:.4} | {initial:.4} | {initial:.4} | – | {initial:.4} | {initial:.4} | {initial:.4} | {initial:.4} | {initial:.4} |"
    );
    for r in 0..args.rounds {
        println!(
            "| {} | {:.4} | {:.4} | {:.4} | {:+.1}% | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
            r + 1,
            central[r],
            central_equal[r],
            fed[r],
            (fed[r] / central_equal[r] - 1.0) * 100.0,
            pipelined_add[r],
            pipelined[r],
            lookahead[r],
            poisoned[r],
            poisoned_avg[r]
        );
    }
    println!("total {:.1}s", t0.elapsed().as_secs_f64());
    Ok(())
}
