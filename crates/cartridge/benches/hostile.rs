//! What a hostile cartridge costs the node running it, under the default limits (2·10⁹ fuel,
//! 64 MiB, 1 s): wall time and fuel of an endless loop, endless bulk memory fills, a memory bomb
//! and a trap, each the worst of 3 runs. Prints `RESULT cartridge <case> ms <x> fuel <y> <failure>`.

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
}
