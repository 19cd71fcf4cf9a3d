//! Write a cartridge (`autonet-cartridge`) as a Rust function from input bytes to output bytes:
//!
//! ```
//! fn score(input: &[u8]) -> Vec<u8> {
//!     input.iter().rev().copied().collect() // deterministic work on the input
//! }
//! autonet_cartridge_sdk::cartridge!(score);
//! ```
//!
//! in a `cdylib` crate built for `wasm32-unknown-unknown` (`make cartridge` builds this crate's
//! examples). The module then exports the ABI the host runs: `memory`, `autonet_alloc` and
//! `autonet_run`. It gets no host functions, so the function sees only its input: no clock, files,
//! network or randomness (seed any randomness from the input). A panic traps, which the host
//! reports as a failed run; the fuel budget, memory cap and deadline are the host's.
//!
//! A cartridge that is a task kind answers the requests of [`kind`].

pub mod kind;

/// Room for `len` input bytes in the guest's memory (the ABI's `autonet_alloc`).
#[doc(hidden)]
pub fn alloc(len: i32) -> i32 {
    let mut buf = Vec::<u8>::with_capacity(len.max(0) as usize);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr as usize as i32
}

/// Hands `out` to the host as the ABI's `(ptr << 32) | len` (the bytes stay in memory until the
/// instance is dropped).
#[doc(hidden)]
pub fn finish(out: Vec<u8>) -> i64 {
    let len = out.len() as u64;
    let ptr = Box::into_raw(out.into_boxed_slice()) as *mut u8 as usize as u64;
    ((ptr << 32) | len) as i64
}

/// The input the host wrote at `ptr` (the ABI's `autonet_run` arguments).
///
/// # Safety
/// `ptr` and `len` must be what the host passed to `autonet_run`: `len` bytes it wrote at `ptr`,
/// in room `autonet_alloc` reserved.
#[doc(hidden)]
pub unsafe fn input<'a>(ptr: i32, len: i32) -> &'a [u8] {
    if len <= 0 {
        return &[];
    }
    // SAFETY: the caller passes the host's arguments (see above).
    unsafe { std::slice::from_raw_parts(ptr as u32 as usize as *const u8, len as usize) }
}

/// Exports `f: fn(&[u8]) -> Vec<u8>` as the cartridge.
#[macro_export]
macro_rules! cartridge {
    ($f:path) => {
        /// The ABI's allocator.
        #[unsafe(no_mangle)]
        pub extern "C" fn autonet_alloc(len: i32) -> i32 {
            $crate::alloc(len)
        }

        /// The ABI's entry point.
        #[unsafe(no_mangle)]
        pub extern "C" fn autonet_run(ptr: i32, len: i32) -> i64 {
            let f: fn(&[u8]) -> Vec<u8> = $f;
            // SAFETY: called by the host with the place it wrote the input to.
            $crate::finish(f(unsafe { $crate::input(ptr, len) }))
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn input_and_output_round_trip_through_the_abi_helpers() {
        let data = b"charter".to_vec();
        // On the host, pointers do not fit i32: only the length handling is checked here; the
        // real round trip runs in wasmtime (crates/cartridge tests).
        assert_eq!(unsafe { super::input(0, 0) }, b"");
        assert_eq!(unsafe { super::input(8, -1) }, b"");
        let packed = super::finish(data.clone()) as u64;
        assert_eq!(packed & 0xffff_ffff, data.len() as u64);
    }
}
