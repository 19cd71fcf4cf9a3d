//! `autonet-stylus-wasm-check <program.wasm>`: checks a Stylus program offline, without a chain or
//! `cargo stylus`, against what Arbitrum does when a program is activated
//! (`arbitrator/prover/src/binary.rs` in Nitro: `parse` and `parse_user`):
//!
//! - first the module is re-encoded canonically without its custom sections, as `cargo stylus`
//!   does before deploying (its wasm → wat → wasm round trip): Rust's precompiled `std` for
//!   wasm32 is built with reference types, which leaves over-long `call_indirect` table indices
//!   that Nitro's validator rejects until they are re-encoded;
//! - wasm validation with Stylus's feature set (no reference types, SIMD, threads, tail calls,
//!   exceptions, multi-memory, memory64, GC; bulk memory, multi-value, sign extension allowed);
//! - imports are functions from `vm_hooks` only; exports `user_entrypoint: (i32) -> i32` and
//!   `memory`; no start function; nothing named `stylus*`;
//! - Nitro's size limits (memories, data and element segments, exports, functions, locals,
//!   opcodes per function, table entries);
//! - the compressed size: the re-encoded module brotli-compressed at quality 11, window 22 (what
//!   `cargo stylus deploy` does), plus 64 bytes of headroom for the 32-byte
//!   `project_hash` section it adds and the 4-byte prefix, against the 24 KiB limit.
//!
//! Prints one summary line and exits 1 on the first violation.

use std::io::Write;
use std::process::ExitCode;

use wasm_encoder::reencode::Reencode;
use wasmparser::{
    ExternalKind, FuncType, Parser, Payload, TypeRef, ValType, Validator, WasmFeatures,
};

/// Re-encodes every section as is (canonical LEB128 encodings) except custom sections, dropped.
struct StripCustomSections;

impl Reencode for StripCustomSections {
    type Error = std::convert::Infallible;

    fn parse_custom_section(
        &mut self,
        _module: &mut wasm_encoder::Module,
        _section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        Ok(())
    }
}

/// The module as `cargo stylus` deploys it (before adding its `project_hash` section).
fn normalize(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut module = wasm_encoder::Module::new();
    StripCustomSections
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| format!("cannot re-encode: {e}"))?;
    Ok(module.finish())
}

/// Stylus code-size limit on the compressed program (`DEFAULT_MAX_CODE_SIZE` in cargo-stylus).
const MAX_COMPRESSED: usize = 24_576;
/// Bytes `cargo stylus` adds before compression (project-hash section) and after (prefix).
const DEPLOY_OVERHEAD: usize = 64;

fn stylus_features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::FLOATS
}

#[derive(Debug)]
struct Report {
    raw: usize,
    normalized: usize,
    brotli: usize,
    functions: usize,
    memory_pages: u64,
}

fn check(raw: &[u8]) -> Result<Report, String> {
    let normalized = normalize(raw)?;
    let wasm = normalized.as_slice();
    Validator::new_with_features(stylus_features())
        .validate_all(wasm)
        .map_err(|e| format!("not valid under Stylus's wasm features: {e}"))?;

    let mut types: Vec<FuncType> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new(); // type index of every function, imports first
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    let mut memories = Vec::new();
    let mut datas = 0usize;
    let mut elements = 0usize;
    let mut table_entries = 0u64;
    let mut codes = 0usize;

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        match payload {
            Payload::TypeSection(r) => {
                for ty in r.into_iter_err_on_gc_types() {
                    types.push(ty.map_err(|e| e.to_string())?);
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    let imp = imp.map_err(|e| e.to_string())?;
                    let TypeRef::Func(ty) = imp.ty else {
                        return Err(format!(
                            "import {}.{} is not a function",
                            imp.module, imp.name
                        ));
                    };
                    if imp.module != "vm_hooks" {
                        return Err(format!(
                            "import {}.{} is not from vm_hooks",
                            imp.module, imp.name
                        ));
                    }
                    if imp.name.starts_with("stylus") {
                        return Err(format!("import of reserved symbol {}", imp.name));
                    }
                    func_types.push(ty);
                }
            }
            Payload::FunctionSection(r) => {
                for ty in r {
                    func_types.push(ty.map_err(|e| e.to_string())?);
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    table_entries += t.map_err(|e| e.to_string())?.ty.initial;
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    memories.push(m.map_err(|e| e.to_string())?);
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(|e| e.to_string())?;
                    exports.push((e.name.to_string(), e.kind, e.index));
                }
            }
            Payload::StartSection { .. } => return Err("start functions are not allowed".into()),
            Payload::ElementSection(r) => elements += r.count() as usize,
            Payload::DataSection(r) => datas += r.count() as usize,
            Payload::CodeSectionEntry(body) => {
                codes += 1;
                let mut locals = 0u64;
                for l in body.get_locals_reader().map_err(|e| e.to_string())? {
                    locals += u64::from(l.map_err(|e| e.to_string())?.0);
                }
                if locals > 348 {
                    return Err(format!("function {codes}: {locals} locals > 348"));
                }
                let mut ops = body.get_operators_reader().map_err(|e| e.to_string())?;
                let mut count = 0usize;
                while !ops.eof() {
                    ops.read().map_err(|e| e.to_string())?;
                    count += 1;
                }
                if count > 65_536 {
                    return Err(format!("function {codes}: {count} opcodes > 65536"));
                }
            }
            _ => {}
        }
    }

    let limit = |what: &str, got: u64, max: u64| {
        if got > max {
            Err(format!("too many {what}: {got} > {max}"))
        } else {
            Ok(())
        }
    };
    limit("memories", memories.len() as u64, 1)?;
    limit("data segments", datas as u64, 128)?;
    limit("element segments", elements as u64, 128)?;
    limit("exports", exports.len() as u64, 1024)?;
    limit("functions", codes as u64, 4096)?;
    limit("table entries", table_entries, 4096)?;
    if let Some((name, _, _)) = exports.iter().find(|(n, _, _)| n.starts_with("stylus")) {
        return Err(format!("export of reserved symbol {name}"));
    }
    let memory = memories.first().ok_or("no memory")?;
    if !exports
        .iter()
        .any(|(n, k, _)| n == "memory" && *k == ExternalKind::Memory)
    {
        return Err("missing export \"memory\"".into());
    }
    let (_, kind, index) = exports
        .iter()
        .find(|(n, _, _)| n == "user_entrypoint")
        .ok_or("missing export user_entrypoint")?;
    if *kind != ExternalKind::Func {
        return Err("user_entrypoint is not a function".into());
    }
    let ty = &types[func_types[*index as usize] as usize];
    if ty.params() != [ValType::I32] || ty.results() != [ValType::I32] {
        return Err(format!(
            "user_entrypoint has type {ty}, expected (i32) -> i32"
        ));
    }

    let mut enc = brotli::CompressorWriter::new(Vec::new(), 4096, 11, 22);
    enc.write_all(wasm).map_err(|e| e.to_string())?;
    let brotli = enc.into_inner().len();
    Ok(Report {
        raw: raw.len(),
        normalized: wasm.len(),
        brotli,
        functions: codes,
        memory_pages: memory.initial,
    })
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: autonet-stylus-wasm-check <program.wasm>");
        return ExitCode::from(2);
    };
    let wasm = match std::fs::read(&path) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("wasm-check: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    match check(&wasm) {
        Ok(r) => {
            println!(
                "wasm-check: ok: {} bytes raw, {} re-encoded without custom sections, {} brotli (limit {} incl. ~{} deploy overhead); {} functions, {} initial memory pages",
                r.raw, r.normalized, r.brotli, MAX_COMPRESSED, DEPLOY_OVERHEAD, r.functions, r.memory_pages
            );
            if r.brotli + DEPLOY_OVERHEAD > MAX_COMPRESSED {
                eprintln!(
                    "wasm-check: {path}: compressed {} + {} > {} bytes (Stylus code-size limit)",
                    r.brotli, DEPLOY_OVERHEAD, MAX_COMPRESSED
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasm-check: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use wasm_encoder::{
        CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
    };

    /// A minimal Stylus-shaped module: `vm_hooks.read_args` imported, memory and
    /// `user_entrypoint(i32) -> i32` exported (under the given names), from the given import module.
    fn module(import_module: &str, entry_name: &str, entry_params: &[ValType]) -> Vec<u8> {
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], []);
        types
            .ty()
            .function(entry_params.iter().copied(), [ValType::I32]);
        let mut imports = ImportSection::new();
        imports.import(import_module, "read_args", EntityType::Function(0));
        let mut funcs = FunctionSection::new();
        funcs.function(1);
        let mut memory = MemorySection::new();
        memory.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        let mut exports = ExportSection::new();
        exports.export("memory", ExportKind::Memory, 0);
        exports.export(entry_name, ExportKind::Func, 1);
        let mut code = CodeSection::new();
        let mut f = Function::new([]);
        f.instruction(&Instruction::I32Const(0));
        f.instruction(&Instruction::Call(0));
        f.instruction(&Instruction::I32Const(0));
        f.instruction(&Instruction::End);
        code.function(&f);
        let mut m = Module::new();
        m.section(&types)
            .section(&imports)
            .section(&funcs)
            .section(&memory)
            .section(&exports)
            .section(&code);
        m.finish()
    }

    #[test]
    fn accepts_a_stylus_shaped_module() {
        let r = check(&module("vm_hooks", "user_entrypoint", &[ValType::I32])).expect("valid");
        assert_eq!(r.functions, 1);
        assert_eq!(r.memory_pages, 1);
        assert!(r.brotli > 0);
    }

    #[test]
    fn rejects_a_missing_or_mistyped_entrypoint() {
        let e = check(&module("vm_hooks", "main", &[ValType::I32])).unwrap_err();
        assert!(e.contains("user_entrypoint"), "{e}");
        let e = check(&module("vm_hooks", "user_entrypoint", &[ValType::I64])).unwrap_err();
        assert!(e.contains("expected (i32) -> i32"), "{e}");
    }

    #[test]
    fn rejects_imports_outside_vm_hooks() {
        let e = check(&module("env", "user_entrypoint", &[ValType::I32])).unwrap_err();
        assert!(e.contains("not from vm_hooks"), "{e}");
    }
}
