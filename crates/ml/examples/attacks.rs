//! The attack table: how far each solver-side attack ([`autonet_ml::attack`]) pushes the final
//! eval loss under each aggregation rule, relative to the same federation without attackers.
//!
//! For every setup `f/n` (f attackers among n solvers), every rule and every attack, it runs R
//! federated rounds from `init_weights(cfg, 0)` on the reference corpus (as
//! `examples/learning.rs`: solver i trains S local steps on shard i of the training chunks, the
//! deltas are merged with equal weights and added to the global model) and evaluates the final
//! model once. The attackers are the last f solvers: each trains on its own shard
//! ([`Attack::train_steps`] steps: lazy trains fewer) and sends [`Attack::craft`] of its delta.
//! The reference an attacker sees is this round's honest deltas (an omniscient attacker, the
//! threat model of the literature), except that the copier copies honest solver 0's delta of the
//! previous round, as a live copier would copy the last revealed one, and this round's in the
//! first round. ALIE, IPM and the copier ignore their own delta when the reference is not
//! empty, so those attackers skip training. Multi-Krum runs with `f` = attackers and `m = n − f`.
//!
//! Cell = final eval loss ÷ the honest-only final eval loss of the same rule and solver count;
//! the honest-only losses are printed as absolute values. Round 1's honest deltas are the same
//! for every run with the same n (same start, shards and seeds), so they are trained once.
//!
//! `cargo run --release -p autonet-ml --example attacks -- [--preset small] [--rounds 3]
//!  [--local-steps 10] [--batch 16] [--eval-windows 128] [--max-mib 8] [--attacks all]
//!  [--setups 1/4,2/8] [--rules fedavg,trimmed,median,krum,cclip,bucketing] [--seed 0]
//!  [--threads N]`
//!
//! `--threads 1` is much faster on a machine whose cores are busy with other work (libtorch's
//! threads wait for each other): measured 7× on the 2-core VM while other builds ran. The
//! thread count changes the last bits of training, so compare runs made with the same count.

use std::collections::HashMap;
use std::time::Instant;

use autonet_ml::aggregate::BucketInner;
use autonet_ml::corpus::{self, Chunk};
use autonet_ml::{
    Attack, Contribution, Delta, EvalSpec, ModelConfig, Rule, TrainError, TrainParams, Weights,
    aggregate, evaluate, train,
};

mod common;
use common::{Common, Result};

/// The rules by name; Multi-Krum depends on the setup.
const RULE_NAMES: &[&str] = &[
    "fedavg",
    "trimmed",
    "median",
    "krum",
    "cclip",
    "bucketing",
    "bucketing-median",
];

fn rule_for(name: &str, f: usize, n: usize) -> Rule {
    match name {
        "fedavg" => Rule::FedAvg,
        "trimmed" => Rule::default(),
        "median" => Rule::Median,
        "krum" => Rule::MultiKrum {
            f,
            m: (n - f).max(1),
        },
        "cclip" => Rule::centered_clip_default(),
        "bucketing" => Rule::bucketing_default(),
        "bucketing-median" => Rule::Bucketing {
            s: 2,
            inner: BucketInner::Median,
        },
        other => unreachable!("rule {other} was checked when parsing"),
    }
}

struct Args {
    c: Common,
    attacks: Vec<Attack>,
    setups: Vec<(usize, usize)>,
    rules: Vec<String>,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        c: Common::new(3, 10),
        attacks: Attack::all_defaults(),
        setups: vec![(1, 4), (2, 8)],
        rules: ["fedavg", "trimmed", "median", "krum", "cclip", "bucketing"]
            .map(String::from)
            .to_vec(),
        seed: 0,
    };
    common::parse_flags(
        &mut a,
        |a| &mut a.c,
        |a, flag, val| {
            match flag {
                "--seed" => a.seed = val()?.parse()?,
                "--attacks" => {
                    let v = val()?;
                    a.attacks = if v == "all" {
                        Attack::all_defaults()
                    } else {
                        v.split(',')
                            .map(str::parse)
                            .collect::<std::result::Result<_, _>>()?
                    };
                }
                "--setups" => {
                    a.setups = val()?
                        .split(',')
                        .map(|s| -> Result<(usize, usize)> {
                            let (f, n) = s.split_once('/').ok_or_else(|| {
                                format!("setup `{s}`: expected attackers/solvers")
                            })?;
                            let (f, n) = (f.trim().parse()?, n.trim().parse()?);
                            if f == 0 || f >= n {
                                return Err(
                                    format!("setup `{s}`: need 1 <= attackers < solvers").into()
                                );
                            }
                            Ok((f, n))
                        })
                        .collect::<Result<_>>()?;
                }
                "--rules" => {
                    a.rules = val()?.split(',').map(|s| s.trim().to_owned()).collect();
                    if let Some(bad) = a.rules.iter().find(|r| !RULE_NAMES.contains(&r.as_str())) {
                        return Err(format!(
                            "unknown rule `{bad}` (valid: {})",
                            RULE_NAMES.join(", ")
                        )
                        .into());
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    if a.c.rounds == 0 || a.c.local_steps == 0 {
        return Err("--rounds and --local-steps must be > 0".into());
    }
    Ok(a)
}

/// Everything a run needs that does not change between runs.
struct Ctx<'a> {
    cfg: ModelConfig,
    init: Weights,
    eval: Vec<&'a Chunk>,
    spec: EvalSpec,
    base: TrainParams,
    rounds: usize,
    seed: u64,
}

impl Ctx<'_> {
    /// Seed of solver `i`'s training in `round` (also its attack's noise seed).
    fn seed_of(&self, round: usize, i: usize) -> u64 {
        self.seed
            .wrapping_mul(1_000_000)
            .wrapping_add((round * 1000 + i) as u64)
    }
}

/// One setup's shards and its cache of round-1 deltas, keyed by (solver, steps).
struct Setup<'a> {
    f: usize,
    n: usize,
    shards: Vec<Vec<&'a Chunk>>,
    first_round: HashMap<(usize, usize), Delta>,
}

impl Setup<'_> {
    /// Solver `i`'s delta of `steps` steps from `from` in `round` (round 0 from the cache).
    fn train(
        &mut self,
        ctx: &Ctx<'_>,
        from: &Weights,
        round: usize,
        i: usize,
        steps: usize,
    ) -> std::result::Result<Delta, TrainError> {
        if round == 0
            && let Some(d) = self.first_round.get(&(i, steps))
        {
            return Ok(d.clone());
        }
        let p = TrainParams {
            steps,
            seed: ctx.seed_of(round, i),
            ..ctx.base.clone()
        };
        let delta = train(&ctx.cfg, from, &self.shards[i], &p)?.delta;
        if round == 0 {
            self.first_round.insert((i, steps), delta.clone());
        }
        Ok(delta)
    }
}

/// R rounds of one rule, with the last `setup.f` solvers running `attack` (none: all honest).
/// Returns the final eval loss (infinity when training or the model diverged).
fn run(ctx: &Ctx<'_>, setup: &mut Setup<'_>, rule: Rule, attack: Option<Attack>) -> Result<f32> {
    let (f, n) = (setup.f, setup.n);
    let honest_n = if attack.is_some() { n - f } else { n };
    let mut global = ctx.init.clone();
    let mut previous_honest0: Option<Delta> = None;
    for round in 0..ctx.rounds {
        let mut deltas = Vec::with_capacity(n);
        for i in 0..honest_n {
            match setup.train(ctx, &global, round, i, ctx.base.steps) {
                Ok(d) => deltas.push(d),
                Err(TrainError::Diverged(_)) => return Ok(f32::INFINITY),
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(attack) = attack {
            let mut crafted = Vec::with_capacity(f);
            for i in honest_n..n {
                let own = if attack.needs_reference() {
                    None // ignored: the reference below is never empty
                } else {
                    let steps = attack.train_steps(ctx.base.steps);
                    match setup.train(ctx, &global, round, i, steps) {
                        Ok(d) => Some(d),
                        Err(TrainError::Diverged(_)) => return Ok(f32::INFINITY),
                        Err(e) => return Err(e.into()),
                    }
                };
                let reference: Vec<&Delta> = match attack {
                    Attack::Copier { .. } => {
                        vec![previous_honest0.as_ref().unwrap_or(&deltas[0])]
                    }
                    _ => deltas.iter().collect(),
                };
                let own = own.as_ref().unwrap_or(&deltas[0]);
                if let Some(d) = attack.craft(own, &reference, ctx.seed_of(round, i))? {
                    crafted.push(d);
                }
            }
            previous_honest0 = Some(deltas[0].clone());
            deltas.extend(crafted);
        }
        if deltas.iter().any(|d| d.first_non_finite().is_some()) {
            return Ok(f32::INFINITY);
        }
        let contributions: Vec<Contribution<'_>> = deltas
            .iter()
            .map(|delta| Contribution { delta, weight: 1 })
            .collect();
        global = global.add(&aggregate(rule, &contributions)?)?;
        if global.first_non_finite().is_some() {
            return Ok(f32::INFINITY);
        }
    }
    Ok(evaluate(&ctx.cfg, &global, &ctx.eval, &ctx.spec)?)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let t0 = Instant::now();
    let start = common::Setup::load(&args.c)?;
    let (train_chunks, eval_chunks) = start.split();
    let attacks: Vec<String> = args.attacks.iter().map(|a| a.to_string()).collect();
    println!(
        "seed {}; attacks {}; rules {}",
        args.seed,
        attacks.join(","),
        args.rules.join(",")
    );
    let ctx = Ctx {
        init: start.init.clone(),
        cfg: start.cfg.clone(),
        eval: eval_chunks,
        spec: start.spec,
        base: start.base.clone(),
        rounds: args.c.rounds,
        seed: args.seed,
    };
    let initial = start.initial;

    // honest[(setup, rule)] and attacked[(attack, setup, rule)] final losses.
    let mut honest: Vec<Vec<f32>> = Vec::new();
    let mut attacked: Vec<Vec<Vec<f32>>> = vec![Vec::new(); args.attacks.len()];
    let total_runs = args.setups.len() * args.rules.len() * (1 + args.attacks.len());
    let mut done = 0;
    for &(f, n) in &args.setups {
        let mut setup = Setup {
            f,
            n,
            shards: (0..n).map(|i| corpus::shard(&train_chunks, n, i)).collect(),
            first_round: HashMap::new(),
        };
        let mut progress = |label: &str, loss: f32, t: Instant| {
            done += 1;
            println!(
                "[{done}/{total_runs}] {f}/{n} {label}: final eval {loss:.4} ({:.1}s, total {:.0}s)",
                t.elapsed().as_secs_f64(),
                t0.elapsed().as_secs_f64()
            );
        };
        let mut row = Vec::new();
        for name in &args.rules {
            let t = Instant::now();
            let loss = run(&ctx, &mut setup, rule_for(name, f, n), None)?;
            progress(&format!("honest-only, {name}"), loss, t);
            row.push(loss);
        }
        honest.push(row);
        for (ai, &attack) in args.attacks.iter().enumerate() {
            let mut row = Vec::new();
            for name in &args.rules {
                let t = Instant::now();
                let loss = run(&ctx, &mut setup, rule_for(name, f, n), Some(attack))?;
                progress(&format!("{attack}, {name}"), loss, t);
                row.push(loss);
            }
            attacked[ai].push(row);
        }
    }

    let header = |first: &str| {
        println!("\n| {first} | {} |", args.rules.join(" | "));
        println!("|---|{}", "---|".repeat(args.rules.len()));
    };
    println!(
        "\nFinal eval loss ÷ honest-only final eval loss of the same rule and solver count \
         (initial eval loss {initial:.4}); bold: the best robust rule (not FedAvg) of each row."
    );
    header("attack (attackers/solvers)");
    for (si, &(f, n)) in args.setups.iter().enumerate() {
        let cells: Vec<String> = honest[si].iter().map(|l| format!("{l:.4}")).collect();
        println!(
            "| honest-only, {n} solvers (absolute; {} honest in the attacked runs) | {} |",
            n - f,
            cells.join(" | ")
        );
    }
    for (ai, attack) in args.attacks.iter().enumerate() {
        for (si, &(f, n)) in args.setups.iter().enumerate() {
            let ratios: Vec<f32> = attacked[ai][si]
                .iter()
                .zip(&honest[si])
                .map(|(a, h)| a / h)
                .collect();
            let best = ratios
                .iter()
                .zip(&args.rules)
                .filter(|(r, name)| *name != "fedavg" && r.is_finite())
                .map(|(r, _)| *r)
                .fold(f32::INFINITY, f32::min);
            let cells: Vec<String> = ratios
                .iter()
                .zip(&args.rules)
                .map(|(r, name)| {
                    let s = if r.is_finite() {
                        format!("{r:.3}")
                    } else {
                        "diverged".into()
                    };
                    if *name != "fedavg" && *r == best {
                        format!("**{s}**")
                    } else {
                        s
                    }
                })
                .collect();
            println!("| {attack} ({f}/{n}) | {} |", cells.join(" | "));
        }
    }
    println!("\nAbsolute final eval losses:");
    header("attack (attackers/solvers)");
    for (ai, attack) in args.attacks.iter().enumerate() {
        for (si, &(f, n)) in args.setups.iter().enumerate() {
            let cells: Vec<String> = attacked[ai][si].iter().map(|l| format!("{l:.4}")).collect();
            println!("| {attack} ({f}/{n}) | {} |", cells.join(" | "));
        }
    }
    println!("\ntotal {:.1}s", t0.elapsed().as_secs_f64());
    Ok(())
}
