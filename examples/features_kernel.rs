//! `LogMelNode`'s transform alone (no Python, no dataflow, one thread): per second of audio at
//! 1 s, 30 s and 10 min, median and p99 of repeated runs, for the kernel-only figure that
//! `docs/performance.md` quotes beside `benchmarks/features_bench.py`:
//! `cargo run --release --example features_kernel`.

use std::time::Instant;

use remotemedia::nodes::log_mel::{LogMel, LogMelParams};

/// The same speech-like signal as `features_bench.py`'s `speech_like` (harmonics, gated, noise).
fn speech_like(seconds: f64) -> Vec<f32> {
    let n = (16000.0 * seconds) as usize;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 16000.0;
            let env = if (2.0 * std::f64::consts::PI * 1.5 * t + 1.0).sin() > 0.0 { 0.5 } else { 0.0 };
            let x: f64 = (1..6).map(|h| (2.0 * std::f64::consts::PI * 127.0 * h as f64 * t).sin() / h as f64).sum();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            (x * env * 0.3 + noise * 0.01) as f32
        })
        .collect()
}

fn main() {
    // Which lane kernel `LogMel` takes here (`LaneRealFft::new`): the figures depend on it.
    #[cfg(target_arch = "x86_64")]
    let kernel = if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        "16 lanes (AVX-512F)"
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        "8 lanes (AVX2 + FMA)"
    } else {
        "realfft per frame"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let kernel = "realfft per frame";
    println!("kernel: {kernel}");
    for normalize in ["whole", "window"] {
        for (seconds, reps) in [(1.0, 3000), (30.0, 300), (600.0, 20)] {
            let x = speech_like(seconds);
            let mut mel = LogMel::new(LogMelParams { normalize, ..LogMelParams::default() });
            std::hint::black_box(mel.whole(&x));
            let mut times: Vec<f64> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(mel.whole(&x));
                    t.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let med = times[times.len() / 2];
            let p99 = times[((times.len() - 1) as f64 * 0.99).round() as usize];
            println!(
                "{normalize:>6} {seconds:>5} s: median {:8.3} ms = {:5.1} us per s of audio, p99 {:5.1} us/s",
                med * 1e3,
                med / seconds * 1e6,
                p99 / seconds * 1e6
            );
        }
    }
}
