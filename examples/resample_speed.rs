//! Times whole-buffer resampling of 1 s of mono audio per preset:
//! `cargo run --release --example resample_speed [in_rate out_rate iterations] [quality]`.
//! Reports wall-clock medians and per-call thread CPU time (robust on a shared, loaded machine).

use std::time::Instant;

use remotemedia::nodes::resample::{Quality, Resampler};

fn thread_cpu_s() -> f64 {
    // /proc/thread-self/schedstat: first field is the thread's CPU time in nanoseconds.
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |ns| ns * 1e-9)
}

fn main() {
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let only: Option<Quality> = std::env::args().skip(1).find_map(|a| Quality::parse(&a));
    let (i, o, iters) = match args.as_slice() {
        [i, o, n] => (*i, *o, *n as usize),
        _ => (48000, 16000, 2000),
    };
    let x: Vec<f32> = (0..i as usize).map(|k| (k as f32 * 0.13).sin() * 0.5).collect();
    for q in [Quality::Low, Quality::Medium, Quality::High, Quality::VeryHigh] {
        if only.is_some_and(|o| o != q) {
            continue;
        }
        let mut r = Resampler::new(i, o, 1, q).expect("valid rates");
        let mut out = Vec::new();
        r.process_interleaved(&x, &mut out).expect("resample");
        let mut times = Vec::with_capacity(iters);
        let c0 = thread_cpu_s();
        for _ in 0..iters {
            let t = Instant::now();
            r.process_interleaved(&x, &mut out).expect("resample");
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let cpu = (thread_cpu_s() - c0) / iters as f64 * 1e6;
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{i}->{o} 1 s mono {:<10} wall median {:>7.1} us  p10 {:>7.1} us  cpu/call {:>7.1} us",
            q.name(), times[iters / 2], times[iters / 10], cpu
        );
    }
}
