//! Cartridges in wasmtime: the SDK's example built for wasm32 (by `cargo`, as `make cartridge`
//! does), and hand-written hostile modules.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use autonet_cartridge::{Cartridge, Failure, Limits, LoadError, Runtime, hash_of};

/// The SDK's `entropy` example as a wasm module, built into `target/cartridges`.
fn entropy_wasm() -> Vec<u8> {
    example_wasm("entropy")
}

/// The SDK's example `name` as a wasm module, built into `target/cartridges`.
fn example_wasm(name: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = root.join("target/cartridges");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args([
            "build",
            "-q",
            "--release",
            "-p",
            "autonet-cartridge-sdk",
            "--example",
            name,
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
        ])
        .arg(&target)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        .status()
        .expect("running cargo");
    assert!(status.success(), "building the {name} cartridge failed");
    std::fs::read(target.join(format!(
        "wasm32-unknown-unknown/release/examples/{name}.wasm"
    )))
    .unwrap()
}

/// Runs `c` on `input` from 3 threads at once: each run must give `first`'s bytes and fuel.
fn same_from_threads(rt: &Runtime, c: &Cartridge, input: &[u8], first: &autonet_cartridge::Run) {
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| c.run(rt, input, &Limits::default())))
            .collect();
        for r in runs {
            let r = r.join().unwrap();
            assert_eq!(
                (r.result, r.fuel_used),
                (first.result.clone(), first.fuel_used)
            );
        }
    });
}

fn load(rt: &Runtime, bytes: &[u8]) -> Cartridge {
    Cartridge::load(rt, bytes, hash_of(bytes)).unwrap()
}

/// What the example computes, natively.
fn histogram(input: &[u8]) -> Vec<u8> {
    let mut counts = [0u32; 256];
    for &b in input {
        counts[b as usize] += 1;
    }
    counts.iter().flat_map(|c| c.to_le_bytes()).collect()
}

#[test]
fn the_example_runs_the_same_every_time_and_matches_the_host() {
    let rt = Runtime::new().unwrap();
    let wasm = entropy_wasm();
    let c = load(&rt, &wasm);
    let input = b"life_precious self_preservation promotion_of_intelligence evolution".repeat(50);
    let first = c.run(&rt, &input, &Limits::default());
    let out = first.result.clone().unwrap();
    assert_eq!(out.len(), 256 * 4 + 8);
    assert_eq!(&out[..1024], histogram(&input).as_slice());
    let bits = f64::from_le_bytes(out[1024..].try_into().unwrap());
    // The host's libm may round a transcendental function differently in the last place; inside
    // wasm every machine computes the same bits.
    let n = input.len() as f64;
    let host: f64 = input
        .iter()
        .fold([0u32; 256], |mut c, &b| {
            c[b as usize] += 1;
            c
        })
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| -(f64::from(c) / n) * (f64::from(c) / n).log2())
        .sum();
    assert!((bits - host).abs() < 1e-12, "{bits} vs {host}");
    // Again, and from other threads at once: the same bytes and the same fuel.
    for _ in 0..2 {
        let again = c.run(&rt, &input, &Limits::default());
        assert_eq!(
            (again.result, again.fuel_used),
            (first.result.clone(), first.fuel_used)
        );
    }
    same_from_threads(&rt, &c, &input, &first);
    assert!(first.fuel_used > 0);
}

#[test]
fn a_module_is_refused_unless_its_hash_is_the_committed_one() {
    let rt = Runtime::new().unwrap();
    let wasm = entropy_wasm();
    let mut changed = wasm.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    match Cartridge::load(&rt, &changed, hash_of(&wasm)) {
        Err(LoadError::HashMismatch { expected, actual }) => {
            assert_eq!(expected, hash_of(&wasm));
            assert_eq!(actual, hash_of(&changed));
        }
        other => panic!("expected a hash mismatch, got {:?}", other.err()),
    }
}

#[test]
fn a_panicking_cartridge_is_a_trap_and_the_runtime_goes_on() {
    let rt = Runtime::new().unwrap();
    let c = load(&rt, &entropy_wasm());
    let r = c.run(&rt, b"panic now", &Limits::default());
    assert!(matches!(r.result, Err(Failure::Trap(_))), "{:?}", r.result);
    assert!(c.run(&rt, b"fine", &Limits::default()).result.is_ok());
}

/// A module with the ABI around `body` (the run function's code).
fn wat(body: &str, memory_pages: u32) -> Vec<u8> {
    format!(
        r#"(module
  (memory (export "memory") {memory_pages})
  (func (export "autonet_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "autonet_run") (param i32 i32) (result i64) {body}))"#
    )
    .into_bytes()
}

/// `r` ended at its deadline or its fuel, not much after the deadline.
fn stopped_by_a_limit(r: &autonet_cartridge::Run, limits: &Limits) {
    assert!(
        matches!(r.result, Err(Failure::Deadline(_) | Failure::OutOfFuel(_))),
        "{:?}",
        r.result
    );
    assert!(
        r.elapsed < limits.deadline + Duration::from_secs(2),
        "{:?}",
        r.elapsed
    );
}

#[test]
fn hostile_modules_fail_as_runs_within_their_limits() {
    let rt = Runtime::new().unwrap();
    let limits = Limits::default();
    // An endless loop: the deadline (or the fuel, whichever comes first) ends it.
    let spin = load(&rt, &wat("(loop (br 0)) (i64.const 0)", 1));
    let r = spin.run(&rt, b"", &limits);
    stopped_by_a_limit(&r, &limits);
    // With fuel to spare, the deadline ends it.
    let short = Limits {
        fuel: 1 << 60,
        deadline: Duration::from_millis(50),
        ..limits
    };
    let r = spin.run(&rt, b"", &short);
    assert_eq!(r.result, Err(Failure::Deadline(short.deadline)));
    assert!(
        r.elapsed >= short.deadline - Duration::from_millis(10)
            && r.elapsed < Duration::from_secs(1),
        "{:?}",
        r.elapsed
    );
    // With a small budget, fuel ends it first, at exactly the budget.
    let small = Limits {
        fuel: 1_000_000,
        ..limits
    };
    let r = spin.run(&rt, b"", &small);
    assert_eq!(r.result, Err(Failure::OutOfFuel(1_000_000)));
    assert_eq!(r.fuel_used, 1_000_000);
    // Bulk memory work that fuel hardly weighs: the deadline ends it.
    let fill = load(
        &rt,
        &wat(
            "(loop (memory.fill (i32.const 0) (i32.const 7) (i32.const 60000000)) (br 0)) (i64.const 0)",
            1000,
        ),
    );
    let r = fill.run(&rt, b"", &limits);
    stopped_by_a_limit(&r, &limits);
    // A memory bomb: growing past the cap, or declaring too much at once.
    let grow = load(
        &rt,
        &wat("(drop (memory.grow (i32.const 60000))) (i64.const 0)", 1),
    );
    let r = grow.run(&rt, b"", &limits);
    assert_eq!(
        r.result,
        Err(Failure::Memory {
            asked: (60001usize) << 16,
            cap: limits.memory_bytes
        })
    );
    let huge = load(&rt, &wat("(i64.const 0)", 20000));
    assert!(matches!(
        huge.run(&rt, b"", &limits).result,
        Err(Failure::Memory { .. })
    ));
    // A trap.
    let trap = load(&rt, &wat("(unreachable)", 1));
    assert!(matches!(
        trap.run(&rt, b"", &limits).result,
        Err(Failure::Trap(_))
    ));
    // An output outside memory, or above the cap.
    let outside = load(&rt, &wat("(i64.const 0x7fff000000000010)", 1));
    assert!(matches!(
        outside.run(&rt, b"", &limits).result,
        Err(Failure::Output(_))
    ));
    let big = load(&rt, &wat("(i64.const 0x0000000000ffffff)", 1));
    let r = big.run(
        &rt,
        b"",
        &Limits {
            output_bytes: 1000,
            ..limits
        },
    );
    assert!(
        matches!(r.result, Err(Failure::Output(_))),
        "{:?}",
        r.result
    );
    // The runtime still runs a good module afterwards.
    let ok = load(&rt, &wat("(i64.const 0)", 1));
    assert_eq!(ok.run(&rt, b"abc", &limits).result, Ok(Vec::new()));
}

#[test]
fn modules_that_reach_out_or_lack_the_abi_are_refused_at_load() {
    let rt = Runtime::new().unwrap();
    let imports = br#"(module
  (import "env" "clock" (func (result i64)))
  (memory (export "memory") 1)
  (func (export "autonet_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "autonet_run") (param i32 i32) (result i64) (call 0)))"#;
    match Cartridge::load(&rt, imports, hash_of(imports)) {
        Err(LoadError::Imports { module, name }) => {
            assert_eq!((module.as_str(), name.as_str()), ("env", "clock"))
        }
        other => panic!("expected the import refused, got {:?}", other.err()),
    }
    let no_run = br#"(module (memory (export "memory") 1)
  (func (export "autonet_alloc") (param i32) (result i32) (i32.const 0)))"#;
    match Cartridge::load(&rt, no_run, hash_of(no_run)) {
        Err(LoadError::Abi(name)) => assert_eq!(name, "autonet_run"),
        other => panic!("expected the missing export named, got {:?}", other.err()),
    }
    let garbage = b"\0asm\x01\0\0\0garbage";
    assert!(matches!(
        Cartridge::load(&rt, garbage, hash_of(garbage)),
        Err(LoadError::Invalid(_))
    ));
}

#[test]
fn the_substrate_task_kind_answers_the_same_inside_wasmtime_as_natively() {
    use autonet_cartridge_sdk::kind::{Op, Request, parse_reply};
    use autonet_substrate::embed::generated_turns;
    use autonet_substrate::kind::run;
    let rt = Runtime::new().unwrap();
    let c = load(&rt, &example_wasm("substrate"));
    let both = |r: &Request<'_>| -> Vec<u8> {
        let input = r.encode();
        let native = run(&input);
        let first = c.run(&rt, &input, &Limits::default());
        assert_eq!(first.result.as_deref(), Ok(native.as_slice()), "{:?}", r.op);
        // From several threads at once: the same bytes and the same fuel.
        same_from_threads(&rt, &c, &input, &first);
        native
    };
    let turns = |seed, n| generated_turns(seed, n);
    let (a_turns, b_turns, held) = (turns(20, 30), turns(21, 30), turns(22, 20));
    let bytes = |t: &[String]| t.iter().map(|t| t.as_bytes().to_vec()).collect::<Vec<_>>();
    let (a_turns, b_turns, held) = (bytes(&a_turns), bytes(&b_turns), bytes(&held));
    fn refs(t: &[Vec<u8>]) -> Vec<&[u8]> {
        t.iter().map(Vec::as_slice).collect()
    }
    let genesis = both(&Request::new(Op::Genesis));
    let genesis = parse_reply(&genesis).unwrap().to_vec();
    let contribute = |t: &[Vec<u8>]| {
        let mut r = Request::new(Op::Contribute);
        r.state = &genesis;
        r.turns = refs(t);
        parse_reply(&both(&r)).unwrap().to_vec()
    };
    let (a, b) = (contribute(&a_turns), contribute(&b_turns));
    for (op, items) in [
        (Op::Score, vec![a.as_slice()]),
        (
            Op::Reconcile,
            vec![a.as_slice(), b.as_slice(), a.as_slice()],
        ),
        (Op::Merge, vec![a.as_slice(), b.as_slice()]),
    ] {
        let mut r = Request::new(op);
        r.state = &genesis;
        r.turns = refs(&held);
        r.items = items;
        assert!(parse_reply(&both(&r)).is_ok(), "{op:?}");
    }
    // A malformed contribution is a named error in the cartridge's reply, not a trap.
    let mut r = Request::new(Op::Score);
    r.state = &genesis;
    r.items = vec![&a[..a.len() - 1]];
    let bad = c.run(&rt, &r.encode(), &Limits::default());
    assert!(
        parse_reply(&bad.result.unwrap())
            .unwrap_err()
            .contains("malformed")
    );
}
