//! `DenoiseNode`'s gate alone (no Python, no dataflow, one thread): a whole buffer of 20 s of
//! 16 kHz mono noisy speech-like audio, stationary with the default params, per second of audio,
//! median and p99 of repeated runs; then the streaming push per 20 ms chunk. The kernel-only
//! figure beside `benchmarks/cleaning_bench.py`, and the loop to `perf record`:
//! `cargo run --release --example denoise_kernel [seconds_of_runs]`.

use std::time::Instant;

use remotemedia::nodes::denoise::{DenoiseParams, Gate, Mode, Reuse, Smoothing};

const RATE: u32 = 16000;

/// Gated harmonics (speech-like bursts) in white noise about 10 dB below them.
fn noisy(seconds: f64) -> Vec<f32> {
    let n = (RATE as f64 * seconds) as usize;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            let t = i as f64 / RATE as f64;
            let env = if (2.0 * std::f64::consts::PI * 0.7 * t + 1.0).sin() > 0.0 { 0.5 } else { 0.0 };
            let x: f64 = (1..6).map(|h| (2.0 * std::f64::consts::PI * 127.0 * h as f64 * t).sin() / h as f64).sum();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            (x * env * 0.3 + noise * 0.1) as f32
        })
        .collect()
}

fn params() -> DenoiseParams {
    DenoiseParams {
        mode: Mode::Stationary,
        n_fft: DenoiseParams::DEFAULT_N_FFT,
        n_std_thresh: DenoiseParams::DEFAULT_N_STD,
        prop_decrease: 1.0,
        freq_mask_smooth_hz: DenoiseParams::DEFAULT_FREQ_SMOOTH_HZ,
        time_mask_smooth_ms: DenoiseParams::DEFAULT_TIME_SMOOTH_MS,
        time_constant_s: DenoiseParams::DEFAULT_TIME_CONSTANT_S,
        smoothing: Smoothing::Preserve,
        noise_clip: None,
    }
}

/// As the node runs it: what one call leaves (plans, buffers) kept for the next.
fn whole(p: &DenoiseParams, x: &[f32], reuse: &mut Reuse) -> Vec<f32> {
    Gate::whole_reusing(p, RATE, 1, x, reuse).expect("valid params")
}

fn report(what: &str, mut times: Vec<f64>, per: f64) {
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    let p99 = times[((times.len() - 1) as f64 * 0.99).round() as usize];
    println!("{what}: median {:8.1} us, p99 {:8.1} us", med / per * 1e6, p99 / per * 1e6);
}

fn main() {
    let run_for: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let seconds = 20.0;
    let x = noisy(seconds);
    let p = params();
    let mut reuse = Reuse::default();
    std::hint::black_box(whole(&p, &x, &mut reuse));
    let (mut times, start) = (Vec::new(), Instant::now());
    while start.elapsed().as_secs_f64() < run_for || times.len() < 20 {
        let t = Instant::now();
        std::hint::black_box(whole(&p, &x, &mut reuse));
        times.push(t.elapsed().as_secs_f64());
    }
    report(&format!("whole buffer, per s of audio ({} runs)", times.len()), times, seconds);

    for (name, mode) in [("stationary", Mode::Stationary), ("nonstationary", Mode::Nonstationary)] {
        let p = DenoiseParams { mode, ..params() };
        let mut gate = Gate::new(&p, RATE, 1, None).expect("valid params");
        let chunk = RATE as usize / 50;
        let mut times = Vec::new();
        for part in x.chunks_exact(chunk) {
            let t = Instant::now();
            std::hint::black_box(gate.push(part));
            times.push(t.elapsed().as_secs_f64());
        }
        report(&format!("stream push 20 ms, {name}"), times[10..].to_vec(), 1.0);
    }
}
