//! The instructions the nodes' own vectorised kernels may use, detected once per process: the one
//! place every kernel asks, so that `REMOTEMEDIA_NO_SIMD=1` sends all of them down their portable
//! paths (to compare, or to check those paths on a CPU that would never take them).
//!
//! Why one place: the checks were written out in eight kernels, and only Silero's honoured the
//! switch. The FFT crates (rustfft, realfft) choose their own instructions and are not covered.

use std::sync::OnceLock;

/// What this CPU offers (x86-64; every flag is false elsewhere).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub avx2: bool,
    pub fma: bool,
    pub avx512f: bool,
    pub avx512vl: bool,
}

impl Features {
    /// AVX2 and FMA together: what the 8-lane kernels are compiled for.
    pub fn avx2_fma(self) -> bool {
        self.avx2 && self.fma
    }

    /// AVX-512F with AVX2 and FMA: what the 16-lane kernels need (they use both widths).
    pub fn avx512(self) -> bool {
        self.avx2_fma() && self.avx512f
    }
}

/// What the hardware offers, whatever the switch says: for tests that run every path the CPU
/// has. Kernels ask [`simd`].
pub fn hardware() -> Features {
    static HW: OnceLock<Features> = OnceLock::new();
    *HW.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            Features {
                avx2: is_x86_feature_detected!("avx2"),
                fma: is_x86_feature_detected!("fma"),
                avx512f: is_x86_feature_detected!("avx512f"),
                avx512vl: is_x86_feature_detected!("avx512vl"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Features::default()
        }
    })
}

/// What the kernels may use: [`hardware`], or nothing at all under `REMOTEMEDIA_NO_SIMD=1`. A
/// flag is true only where the hardware has the feature, so a kernel compiled for it may be
/// called when the flag says so.
pub fn simd() -> Features {
    static USED: OnceLock<Features> = OnceLock::new();
    *USED.get_or_init(|| if crate::tuning::flag_on(crate::tuning::NO_SIMD) { Features::default() } else { hardware() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_use_only_what_the_hardware_has() {
        let (hw, used) = (hardware(), simd());
        for (u, h) in [(used.avx2, hw.avx2), (used.fma, hw.fma), (used.avx512f, hw.avx512f), (used.avx512vl, hw.avx512vl)] {
            assert!(!u || h);
        }
        assert!(!used.avx512() || (hw.avx2 && hw.fma && hw.avx512f));
        let switched_off = crate::tuning::flag_on(crate::tuning::NO_SIMD);
        assert_eq!(used == Features::default(), switched_off || hw == Features::default());
    }
}
