//! Cartridges: a task kind's code as a WebAssembly module, run in wasmtime under limits.
//!
//! A project's spec can commit to a module by its keccak256 ([`CartridgeHash`]); nodes fetch the
//! module like a model and [`Cartridge::load`] refuses one whose hash differs. A run gives the
//! module an input and takes its output ([`Cartridge::run`]). What a cartridge cannot do:
//! - **reach anything**: it gets no host functions, so a module that imports anything is refused
//!   at load (no files, clock, network, randomness);
//! - **run forever**: every run has a fuel budget (wasm instructions, [`Limits::fuel`]) and a
//!   wall-clock deadline ([`Limits::deadline`], enforced by wasmtime's epoch interruption);
//! - **take the machine's memory**: linear memory is capped ([`Limits::memory_bytes`]), and so is
//!   the output ([`Limits::output_bytes`]);
//! - **disagree across machines**: NaN results are canonicalized, relaxed SIMD and threads are
//!   off; every other wasm instruction, floats included, is specified bit for bit, so the same
//!   module and input give the same output and the same fuel on every machine.
//!
//! A cartridge that traps, runs out of fuel or time, or exceeds its memory is a [`Failure`] of
//! that run, with what happened; the caller scores it (a failed contribution), the node goes on.
//!
//! # ABI (what a module exports; `autonet-cartridge-sdk` writes it for Rust guests)
//! - `memory`: its linear memory;
//! - `autonet_alloc(len: i32) -> i32`: room for `len` input bytes, where the host writes them;
//! - `autonet_run(ptr: i32, len: i32) -> i64`: runs on the input at `ptr`, returns the output's
//!   place as `(ptr << 32) | len`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{B256, keccak256};
use serde::Serialize;
use wasmtime::{Config, Engine, Instance, Module, ResourceLimiter, Store, Trap};

/// keccak256 of a module's bytes: what a spec commits to.
pub type CartridgeHash = B256;

/// The name of the export holding the module's linear memory.
pub const MEMORY_EXPORT: &str = "memory";
/// The export that reserves room for the input.
pub const ALLOC_EXPORT: &str = "autonet_alloc";
/// The export that runs the cartridge.
pub const RUN_EXPORT: &str = "autonet_run";

/// What one run may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Fuel: about one unit per wasm instruction.
    pub fuel: u64,
    /// Linear memory cap, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock cap (fuel bounds the instructions; this bounds what fuel does not weigh, such
    /// as bulk memory operations).
    pub deadline: Duration,
    /// Output cap, in bytes.
    pub output_bytes: usize,
}

impl Default for Limits {
    /// 2·10⁹ fuel, 64 MiB, 1 s, 16 MiB of output.
    fn default() -> Self {
        Self {
            fuel: 2_000_000_000,
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(1),
            output_bytes: 16 << 20,
        }
    }
}

/// Why a module cannot be used as a cartridge.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Its hash is not the one committed to.
    #[error("the module's keccak256 is {actual}, the spec commits to {expected}: refusing it")]
    HashMismatch {
        /// Committed to.
        expected: CartridgeHash,
        /// Of the bytes received.
        actual: CartridgeHash,
    },
    /// It imports something (cartridges get no host functions).
    #[error("the module imports `{module}::{name}`: cartridges get no host functions")]
    Imports {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// An export of the ABI is missing or has the wrong type.
    #[error("the module lacks the export `{0}` of the cartridge ABI (see autonet-cartridge-sdk)")]
    Abi(String),
    /// Not valid WebAssembly (or it uses a feature that is off: threads, relaxed SIMD).
    #[error("not a valid cartridge module: {0}")]
    Invalid(String),
}

/// How a run failed: scored as a failed contribution, never a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Failure {
    /// It used its whole fuel budget.
    #[error("out of fuel: used the budget of {0} units")]
    OutOfFuel(u64),
    /// It ran past the deadline.
    #[error("past the deadline of {0:?}")]
    Deadline(Duration),
    /// It asked for more memory than allowed.
    #[error("asked for {asked} bytes of memory, the cap is {cap}")]
    Memory {
        /// Bytes asked for.
        asked: usize,
        /// The cap.
        cap: usize,
    },
    /// It trapped (unreachable, out-of-bounds access, division by zero, a guest panic …).
    #[error("trapped: {0}")]
    Trap(String),
    /// It returned an output outside its memory or above the cap.
    #[error("bad output: {0}")]
    Output(String),
}

/// A finished run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The output, or why there is none.
    pub result: Result<Vec<u8>, Failure>,
    /// Fuel used.
    pub fuel_used: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// The engine cartridges run on: deterministic settings, and a thread ticking the epoch that
/// enforces deadlines (stopped when the runtime is dropped).
pub struct Runtime {
    engine: Engine,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

/// How often the epoch ticks: the deadline's resolution.
const TICK: Duration = Duration::from_millis(5);

impl Runtime {
    /// A runtime (one per process is enough; cartridges are loaded into it).
    pub fn new() -> Result<Self, LoadError> {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .cranelift_nan_canonicalization(true)
            .wasm_relaxed_simd(false);
        // Threads (shared memory) are not compiled in (wasmtime's `threads` feature is off).
        let engine = Engine::new(&config).map_err(|e| LoadError::Invalid(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::Builder::new()
                .name("cartridge-epoch".into())
                .spawn(move || {
                    // Ticks follow the clock, not the sleeps: a late wake-up (a loaded machine)
                    // catches up, so `n` ticks never take longer than `n` × TICK.
                    let start = Instant::now();
                    let mut ticked: u128 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        let due = start.elapsed().as_nanos() / TICK.as_nanos();
                        while ticked < due {
                            engine.increment_epoch();
                            ticked += 1;
                        }
                    }
                })
                .map_err(|e| LoadError::Invalid(format!("starting the epoch thread: {e}")))?
        };
        Ok(Self {
            engine,
            stop,
            ticker: Some(ticker),
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// A module checked against its committed hash and the ABI, ready to run.
pub struct Cartridge {
    module: Module,
    hash: CartridgeHash,
}

impl Cartridge {
    /// Loads `bytes` (a binary module, or its text form) if their keccak256 is `expected`.
    pub fn load(rt: &Runtime, bytes: &[u8], expected: CartridgeHash) -> Result<Self, LoadError> {
        let actual = keccak256(bytes);
        if actual != expected {
            return Err(LoadError::HashMismatch { expected, actual });
        }
        let module =
            Module::new(&rt.engine, bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        if let Some(i) = module.imports().next() {
            return Err(LoadError::Imports {
                module: i.module().into(),
                name: i.name().into(),
            });
        }
        for (name, memory) in [
            (MEMORY_EXPORT, true),
            (ALLOC_EXPORT, false),
            (RUN_EXPORT, false),
        ] {
            let ok = |t: wasmtime::ExternType| {
                if memory {
                    t.memory().is_some()
                } else {
                    t.func().is_some()
                }
            };
            if !module.get_export(name).is_some_and(ok) {
                return Err(LoadError::Abi(name.into()));
            }
        }
        Ok(Self {
            module,
            hash: actual,
        })
    }

    /// Its keccak256.
    pub fn hash(&self) -> CartridgeHash {
        self.hash
    }

    /// Runs it on `input` under `limits`, in a fresh instance (nothing carries over between
    /// runs).
    pub fn run(&self, rt: &Runtime, input: &[u8], limits: &Limits) -> Run {
        let started = Instant::now();
        let mut store = Store::new(
            &rt.engine,
            Guard {
                cap: limits.memory_bytes,
                denied: None,
            },
        );
        store.limiter(|g| g);
        // One tick less than the deadline's whole ticks: the first may come at once, so the run
        // is interrupted between two ticks and one tick before its deadline, leaving a tick for
        // the ticker's wake-up on a loaded machine.
        let ticks = (limits.deadline.as_nanos() / TICK.as_nanos())
            .saturating_sub(1)
            .max(1) as u64;
        store.set_epoch_deadline(ticks);
        let _ = store.set_fuel(limits.fuel);
        let result = call(&self.module, &mut store, input, limits);
        let fuel_used = limits.fuel - store.get_fuel().unwrap_or(0);
        let result = result.map_err(|e| match store.data().denied {
            Some(asked) => Failure::Memory {
                asked,
                cap: limits.memory_bytes,
            },
            None => match e {
                Failure::Trap(_) if fuel_used >= limits.fuel => Failure::OutOfFuel(limits.fuel),
                other => other,
            },
        });
        let result = result.map_err(|e| match e {
            Failure::Trap(msg) if msg == Trap::Interrupt.to_string() => {
                Failure::Deadline(limits.deadline)
            }
            other => other,
        });
        Run {
            result,
            fuel_used,
            elapsed: started.elapsed(),
        }
    }
}

/// Instantiates and runs; a trap becomes [`Failure::Trap`] (classified by the caller).
fn call(
    module: &Module,
    store: &mut Store<Guard>,
    input: &[u8],
    limits: &Limits,
) -> Result<Vec<u8>, Failure> {
    let trap = |e: wasmtime::Error| match e.downcast_ref::<Trap>() {
        Some(t) => Failure::Trap(t.to_string()),
        None => Failure::Trap(format!("{e:#}")),
    };
    let instance = Instance::new(&mut *store, module, &[]).map_err(trap)?;
    let memory = instance
        .get_memory(&mut *store, MEMORY_EXPORT)
        .ok_or_else(|| Failure::Trap("no memory".into()))?;
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut *store, ALLOC_EXPORT)
        .map_err(|e| Failure::Trap(format!("{ALLOC_EXPORT}: {e}")))?;
    let run = instance
        .get_typed_func::<(i32, i32), i64>(&mut *store, RUN_EXPORT)
        .map_err(|e| Failure::Trap(format!("{RUN_EXPORT}: {e}")))?;
    let len =
        i32::try_from(input.len()).map_err(|_| Failure::Output("input above 2 GiB".into()))?;
    let ptr = alloc.call(&mut *store, len).map_err(trap)?;
    memory
        .write(&mut *store, ptr as u32 as usize, input)
        .map_err(|_| Failure::Output(format!("{ALLOC_EXPORT} returned {ptr}, outside memory")))?;
    let packed = run.call(&mut *store, (ptr, len)).map_err(trap)? as u64;
    let (out_ptr, out_len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
    if out_len > limits.output_bytes {
        return Err(Failure::Output(format!(
            "{out_len} bytes, the cap is {}",
            limits.output_bytes
        )));
    }
    let mut out = vec![0; out_len];
    memory
        .read(&*store, out_ptr, &mut out)
        .map_err(|_| Failure::Output(format!("{out_len} bytes at {out_ptr}, outside memory")))?;
    Ok(out)
}

/// Caps a run's memory and remembers a refused growth.
struct Guard {
    cap: usize,
    denied: Option<usize>,
}

impl ResourceLimiter for Guard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.denied = Some(desired);
            // A trap, not a -1 from memory.grow: the run ends here, as a memory failure.
            return Err(wasmtime::Error::msg(format!(
                "memory of {desired} bytes above the cap of {}",
                self.cap
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 16)
    }
}

/// keccak256 of `bytes`: the hash [`Cartridge::load`] checks.
pub fn hash_of(bytes: &[u8]) -> CartridgeHash {
    keccak256(bytes)
}
