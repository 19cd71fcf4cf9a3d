//! Does the network learn? Centralized training (the same steps as one solver, and the same
//! compute as all solvers together) vs federated rounds (4 solvers, trimmed mean of
//! deltas), pipelined federated rounds (each delta trained one model behind the one it is applied
//! to) and federated with one poisoned solver, on the reference corpus (Rust sources pinned by
//! this workspace's Cargo.lock). Prints the eval loss per round and a markdown table.
//!
//! `cargo run --release -p autonet-ml --example learning -- [--preset small] [--rounds 4]
//!  [--local-steps 30] [--batch 16] [--solvers 4] [--max-mib 8] [--eval-windows 128]
//!  [--lr 3e-3] [--outer average,nesterov:700:900,...] [--only-federated]`
//!
//! `--outer`: a comma list of outer steps ([`autonet_ml::Outer`], e.g. `average`,
//! `nesterov:700:900`); the sequential federated run (trimmed mean) is run once per entry, each
//! with a column and its gap to the centralized run at equal compute. An entry may end in
//! `@<lr>` to give that run's solvers another inner (AdamW) learning rate than `--lr`, e.g.
//! `nesterov:700:900@0.002`. `--only-federated` skips the centralized run of S steps per round
//! and the pipelined and poisoned runs (the centralized run at equal compute is kept).

use std::time::Instant;

use autonet_ml::corpus;
use autonet_ml::{
    Contribution, Outer, Rule, TrainParams, aggregate, apply_stale, evaluate, train,
    train_with_hook,
};

mod common;
use common::{Common, Result, Setup};

struct Args {
    c: Common,
    solvers: usize,
    /// Outer steps of the sequential federated runs, each with an optional inner lr override.
    outer: Vec<(Outer, Option<f64>)>,
    only_federated: bool,
}

/// `RULE[@LR]`, e.g. `nesterov:700:900@0.002`.
fn parse_outer(item: &str) -> Result<(Outer, Option<f64>)> {
    match item.split_once('@') {
        Some((rule, lr)) => Ok((rule.parse()?, Some(lr.parse()?))),
        None => Ok((item.parse()?, None)),
    }
}

/// Column label of an outer run.
fn outer_label(outer: Outer, lr: Option<f64>) -> String {
    match lr {
        Some(lr) => format!("{outer}, inner lr {lr}"),
        None => outer.to_string(),
    }
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
        c: Common::new(4, 30),
        solvers: 4,
        outer: vec![(Outer::Average, None)],
        only_federated: false,
    };
    common::parse_flags(
        &mut a,
        |a| &mut a.c,
        |a, flag, val| {
            match flag {
                "--solvers" => a.solvers = val()?.parse()?,
                "--outer" => {
                    a.outer = val()?.split(',').map(parse_outer).collect::<Result<_>>()?;
                }
                "--only-federated" => a.only_federated = true,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(a)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let t0 = Instant::now();
    let setup = Setup::load(&args.c)?;
    println!("{} solvers", args.solvers);
    let (train_chunks, eval_chunks) = setup.split();
    let (cfg, init, spec, initial) = (
        setup.cfg.clone(),
        setup.init.clone(),
        setup.spec,
        setup.initial,
    );
    let base = TrainParams {
        progress: true,
        ..setup.base.clone()
    };

    // Centralized: one run of R·S steps on all training chunks, evaluated every S steps.
    let mut central = Vec::new();
    if !args.only_federated {
        let t = Instant::now();
        let params = TrainParams {
            steps: args.c.rounds * args.c.local_steps,
            seed: 1,
            ..base.clone()
        };
        train_with_hook(&cfg, &init, &train_chunks, &params, &mut |step, lm| {
            if step % args.c.local_steps == 0 {
                let loss = evaluate(&cfg, &lm.weights()?, &eval_chunks, &spec)?;
                println!("centralized step {step}: eval {loss:.4}");
                central.push(loss);
            }
            Ok(())
        })?;
        println!("centralized took {:.1}s", t.elapsed().as_secs_f64());
    }

    // Centralized at equal compute: as many optimizer steps × batch as all solvers together
    // (R·S·n steps), evaluated after each round's worth (S·n steps).
    let t = Instant::now();
    let per_round = args.c.local_steps * args.solvers;
    let mut central_equal = Vec::new();
    let params = TrainParams {
        steps: args.c.rounds * per_round,
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
    // rule (`Stale::Midpoint`, `apply_stale`). `outer` (sequential rounds only): how the merged
    // delta becomes the next model, its momentum buffer carried over the rounds; `lr`: the
    // solvers' inner learning rate.
    let federated = |label: &str,
                     rule: Rule,
                     poisoned: bool,
                     stale: Stale,
                     outer: Outer,
                     lr: f64|
     -> Result<Vec<f32>> {
        assert!(stale == Stale::No || outer == Outer::Average);
        let t = Instant::now();
        let mut global = init.clone();
        let mut previous = init.clone();
        let mut momentum: Option<autonet_ml::Delta> = None;
        let mut curve = Vec::new();
        // Each solver's own delta of the round before (`Stale::Lookahead`).
        let mut own: Vec<Option<autonet_ml::Delta>> = vec![None; shards.len()];
        for round in 0..args.c.rounds {
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
                    lr,
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
                Stale::No => {
                    let (next, m) = outer.step(&global, &merged, momentum.as_ref())?;
                    momentum = m;
                    next
                }
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
    let mut feds = Vec::new();
    for &(outer, lr) in &args.outer {
        let label = format!("federated {}", outer_label(outer, lr));
        let t = Instant::now();
        let curve = federated(
            &label,
            Rule::default(),
            false,
            Stale::No,
            outer,
            lr.unwrap_or(args.c.lr),
        )?;
        feds.push((outer_label(outer, lr), curve, t.elapsed().as_secs_f64()));
    }
    let avg = Outer::Average;
    let others = if args.only_federated {
        Vec::new()
    } else {
        vec![
            (
                "pipelined, delta added to the newer model",
                federated(
                    "pipelined+add",
                    Rule::default(),
                    false,
                    Stale::Add,
                    avg,
                    args.c.lr,
                )?,
            ),
            (
                "pipelined, apply_stale (the protocol)",
                federated(
                    "pipelined+midpoint",
                    Rule::default(),
                    false,
                    Stale::Midpoint,
                    avg,
                    args.c.lr,
                )?,
            ),
            (
                "pipelined, own-delta lookahead",
                federated(
                    "pipelined+lookahead",
                    Rule::default(),
                    false,
                    Stale::Lookahead,
                    avg,
                    args.c.lr,
                )?,
            ),
            (
                "1 of n poisoned, trimmed mean",
                federated(
                    "poisoned+trimmed",
                    Rule::default(),
                    true,
                    Stale::No,
                    avg,
                    args.c.lr,
                )?,
            ),
            (
                "1 of n poisoned, FedAvg",
                federated(
                    "poisoned+fedavg",
                    Rule::FedAvg,
                    true,
                    Stale::No,
                    avg,
                    args.c.lr,
                )?,
            ),
        ]
    };

    // The table: one column per run, a gap column after each federated one.
    let loss_cells = |curve: &[f32]| -> Vec<String> {
        std::iter::once(format!("{initial:.4}"))
            .chain(curve.iter().map(|l| format!("{l:.4}")))
            .collect()
    };
    let mut columns: Vec<(String, Vec<String>)> = Vec::new();
    if !args.only_federated {
        columns.push(("centralized (S steps/round)".into(), loss_cells(&central)));
    }
    columns.push((
        "centralized, equal compute (S·n steps/round)".into(),
        loss_cells(&central_equal),
    ));
    for (label, curve, _) in &feds {
        columns.push((
            format!("federated, trimmed mean, {label}"),
            loss_cells(curve),
        ));
        let gaps = std::iter::once("–".to_string())
            .chain(
                curve
                    .iter()
                    .zip(&central_equal)
                    .map(|(f, c)| format!("{:+.1}%", (f / c - 1.0) * 100.0)),
            )
            .collect();
        columns.push((format!("{label} vs equal compute"), gaps));
    }
    for (label, curve) in &others {
        columns.push((
            label.replace(" n ", &format!(" {} ", args.solvers)),
            loss_cells(curve),
        ));
    }
    println!();
    let row = |cells: Vec<&str>| println!("| {} |", cells.join(" | "));
    row(std::iter::once("round")
        .chain(columns.iter().map(|(h, _)| h.as_str()))
        .collect());
    row(vec!["---"; columns.len() + 1]);
    for r in 0..=args.c.rounds {
        let name = if r == 0 {
            "0 (init)".to_string()
        } else {
            r.to_string()
        };
        row(std::iter::once(name.as_str())
            .chain(columns.iter().map(|(_, c)| c[r].as_str()))
            .collect());
    }
    for (label, _, secs) in &feds {
        println!("federated {label} took {secs:.1}s");
    }
    println!("total {:.1}s", t0.elapsed().as_secs_f64());
    Ok(())
}
