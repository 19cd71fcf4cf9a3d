//! What a hostile cartridge costs the node running it, under the default limits (2·10⁹ fuel,
//! 64 MiB, 1 s): wall time and fuel of an endless loop, endless bulk memory fills, a memory bomb
//! and a trap, each the worst of 3 runs. Prints `RESULT cartridge <case> ms <x> fuel <y> <failure>`.
//! Then what an honest task kind costs: each op of the substrate cartridge (`make cartridge`) at
//! the devnet's sizes (contributions of 40 turns, 64 held-out turns), the best of 3 runs.

use std::time::Duration;

use autonet_cartridge::{Cartridge, Limits, Runtime, hash_of};

fn wat(body: &str, pages: u32) -> Vec<u8> {
    format!(
        r#"(module (memory (export "memory") {pages})
  (func (export "autonet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "autonet_run") (param i32 i32) (result i64) {body}))"#
    )
    .into_bytes()
}

fn main() {
    let rt = Runtime::new().expect("runtime");
    let limits = Limits::default();
    for (case, module) in [
        ("endless_loop", wat("(loop (br 0)) (i64.const 0)", 1)),
        (
            "endless_memory_fill",
            wat(
                "(loop (memory.fill (i32.const 0) (i32.const 7) (i32.const 60000000)) (br 0)) (i64.const 0)",
                1000,
            ),
        ),
        (
            "memory_bomb",
            wat("(drop (memory.grow (i32.const 60000))) (i64.const 0)", 1),
        ),
        ("trap", wat("(unreachable)", 1)),
    ] {
        let c = Cartridge::load(&rt, &module, hash_of(&module)).expect("load");
        let mut worst = (Duration::ZERO, 0, String::new());
        for _ in 0..3 {
            let r = c.run(&rt, b"", &limits);
            if r.elapsed >= worst.0 {
                let failure = r.result.err().map_or("ok".into(), |f| f.to_string());
                worst = (r.elapsed, r.fuel_used, failure);
            }
        }
        println!(
            "RESULT cartridge {case} ms {:.1} fuel {} {}",
            worst.0.as_secs_f64() * 1e3,
            worst.1,
            worst.2
        );
    }
    // Fuel to spare: the 1 s deadline alone ends an endless loop.
    let spin = wat("(loop (br 0)) (i64.const 0)", 1);
    let c = Cartridge::load(&rt, &spin, hash_of(&spin)).expect("load");
    let unmetered = Limits {
        fuel: 1 << 60,
        ..limits
    };
    let worst = (0..3)
        .map(|_| c.run(&rt, b"", &unmetered))
        .max_by_key(|r| r.elapsed)
        .expect("3 runs");
    println!(
        "RESULT cartridge endless_loop_fuel_to_spare ms {:.1} fuel {} {}",
        worst.elapsed.as_secs_f64() * 1e3,
        worst.fuel_used,
        worst.result.err().map_or("ok".into(), |f| f.to_string())
    );
    substrate(&rt, &limits);
}

fn refs(t: &[Vec<u8>]) -> Vec<&[u8]> {
    t.iter().map(Vec::as_slice).collect()
}

fn substrate(rt: &Runtime, limits: &Limits) {
    use autonet_cartridge_sdk::kind::{Op, Request, parse_reply};
    use autonet_substrate::embed::generated_turns;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/cartridges/wasm32-unknown-unknown/release/examples/substrate.wasm");
    let Ok(module) = std::fs::read(&path) else {
        println!("RESULT cartridge substrate NOT RUN: build it with `make cartridge`");
        return;
    };
    let c = Cartridge::load(rt, &module, hash_of(&module)).expect("load");
    let best = |r: &Request<'_>| {
        let input = r.encode();
        let mut best: Option<autonet_cartridge::Run> = None;
        for _ in 0..3 {
            let run = c.run(rt, &input, limits);
            if best.as_ref().is_none_or(|b| run.elapsed < b.elapsed) {
                best = Some(run);
            }
        }
        let run = best.expect("3 runs");
        let out = parse_reply(run.result.as_ref().expect("an honest run"))
            .expect("an answer")
            .to_vec();
        (run, out)
    };
    let text = |seed, n| generated_turns(seed, n);
    let (a, b, held) = (text(1, 40), text(2, 40), text(3, 64));
    let bytes = |t: &[String]| t.iter().map(|t| t.as_bytes().to_vec()).collect::<Vec<_>>();
    let (a, b, held) = (bytes(&a), bytes(&b), bytes(&held));
    let (_, genesis) = best(&Request::new(Op::Genesis));
    let contribute = |t: &[Vec<u8>]| {
        let mut r = Request::new(Op::Contribute);
        r.state = &genesis;
        r.turns = refs(t);
        best(&r)
    };
    let (run_a, ca) = contribute(&a);
    let (_, cb) = contribute(&b);
    let report = |op: &str, run: &autonet_cartridge::Run| {
        println!(
            "RESULT cartridge substrate_{op} ms {:.2} fuel {}",
            run.elapsed.as_secs_f64() * 1e3,
            run.fuel_used
        )
    };
    report("contribute_40_turns", &run_a);
    for (op, name, items) in [
        (Op::Score, "score_1_of_64_held_out", vec![ca.as_slice()]),
        (
            Op::Reconcile,
            "reconcile_2",
            vec![ca.as_slice(), cb.as_slice()],
        ),
        (Op::Merge, "merge_2", vec![ca.as_slice(), cb.as_slice()]),
    ] {
        let mut r = Request::new(op);
        r.state = &genesis;
        r.turns = refs(&held);
        r.items = items;
        report(name, &best(&r).0);
    }
}
