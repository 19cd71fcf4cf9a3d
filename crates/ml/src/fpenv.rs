//! CPU floating-point environment for training: flush subnormals to zero.
//!
//! Byte-level LM training on CPU produces subnormal floats (tiny softmax tails, decayed Adam
//! moments); x86 handles them in microcode, measured 4× slower steps on the `small` preset
//! (PyTorch shows the same; `torch.set_flush_denormal(True)` is its fix). This module sets the
//! MXCSR FTZ and DAZ bits on the calling thread; threads created afterwards (libtorch's OpenMP
//! pool, if not yet started) inherit them. It is a no-op on other architectures. FTZ/DAZ are
//! IEEE-deterministic modes, so results stay reproducible.

/// Sets flush-to-zero and denormals-are-zero on the current thread (x86_64 only).
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr only read/write the SSE control register of this thread; we
        // set bits 15 (FTZ) and 6 (DAZ) and keep every other bit as it was.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= (1 << 15) | (1 << 6);
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn subnormals_flush_to_zero_after_the_call() {
        // Run on a fresh thread so other tests keep the default environment.
        std::thread::spawn(|| {
            let tiny = std::hint::black_box(f32::MIN_POSITIVE);
            assert!((tiny / 4.0) > 0.0, "subnormal expected before");
            super::flush_denormals();
            let tiny = std::hint::black_box(f32::MIN_POSITIVE);
            #[cfg(target_arch = "x86_64")]
            assert_eq!(tiny / std::hint::black_box(4.0), 0.0);
        })
        .join()
        .unwrap();
    }
}
