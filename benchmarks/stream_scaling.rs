//! Streaming from 1..N Rust threads against its ceiling (`cargo bench --bench stream_scaling`;
//! `benchmarks/scaling_bench.py` runs it as part of its sweep).
//!
//! Each of `n` threads pushes 20 ms chunks of 48 kHz audio back to back through resample (16 kHz)
//! + VAD into sessions of its own (a new one every 2 s of audio) on one pipeline of `n` workers,
//! for a fixed time: pushes per second, the real-time 20 ms streams that rate holds (pushes/s
//! / 50) and each push's latency. The ceiling, measured in the same round: `n` child processes
//! (this program again), each pinned to a CPU of its own with a 1-worker pipeline and one pushing
//! thread, each its share of the sessions; nothing shared between them, so what `n` cores give
//! this work on this machine, engine or not. Rounds alternate engine and ceiling, so a busy
//! machine slows both alike.
//!
//!     stream_scaling [--threads 1,2,4] [--seconds S] [--rounds R] [--json FILE]
//!
//! Prints one line per thread count and, with `--json`, the figures as JSON.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use remotemedia::data::{AudioBuffer, Payload};
use remotemedia::runtime::affinity;
use remotemedia::{manifest, Pipeline, Registry, WorkerPool};

const RESAMPLE_VAD: &str = r#"{"version": "1.0",
  "nodes": [{"id": "resample", "type": "AudioResampleNode", "params": {"output_rate": 16000}},
            {"id": "vad", "type": "VADNode", "params": {"frame_duration_ms": 30}}],
  "edges": [{"from": "resample", "to": "vad"}]}"#;

/// 2 s of the crate's speech-like test signal (`synth::speech_like`) as 20 ms chunks.
fn chunks() -> Vec<Payload> {
    let (x, _) = remotemedia::synth::speech_like(48_000, 2.0, 7);
    x.chunks(960).map(|c| Payload::Audio(AudioBuffer::mono_f32(c.to_vec(), 48_000))).collect()
}

fn pipeline(workers: usize) -> Pipeline {
    let registry = Registry::builtin();
    let graph = manifest::load_str(RESAMPLE_VAD, &registry).expect("manifest");
    WorkerPool::shared(workers).expect("pool").install(graph).expect("install")
}

/// Pushes `chunks` into new sessions of `p`, back to back, until `until`: the latency of each push.
fn push_for(p: &Pipeline, chunks: &[Payload], until: Instant) -> Vec<u32> {
    let mut lat = Vec::with_capacity(1 << 16);
    while Instant::now() < until {
        let mut s = p.session();
        for c in chunks {
            let t = Instant::now();
            std::hint::black_box(s.push(c.clone()).expect("push"));
            lat.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        }
        std::hint::black_box(s.close().expect("close"));
    }
    lat
}

/// `n` threads on one `n`-worker pipeline for `seconds`: (pushes per second, every push's latency).
fn engine_round(p: &Pipeline, chunks: &[Payload], n: usize, seconds: f64) -> (f64, Vec<u32>) {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let lat: Vec<u32> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n).map(|_| sc.spawn(|| push_for(p, chunks, until))).collect();
        hs.into_iter().flat_map(|h| h.join().expect("pushing thread")).collect()
    });
    (lat.len() as f64 / start.elapsed().as_secs_f64(), lat)
}

/// One ceiling process: pinned to `cpu` before its pool starts (so its worker inherits the CPU),
/// it says "ready", waits for a line, pushes for `seconds` and prints its pushes and wall seconds.
fn child(cpu: usize, seconds: f64) {
    affinity::pin_current_thread(cpu);
    let p = pipeline(1);
    let chunks = chunks();
    push_for(&p, &chunks[..10], Instant::now() + Duration::from_millis(50));
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    let start = Instant::now();
    let lat = push_for(&p, &chunks, start + Duration::from_secs_f64(seconds));
    println!("{} {}", lat.len(), start.elapsed().as_secs_f64());
}

/// The CPUs this process may use (the engine's own reading of them).
fn cpus() -> Vec<usize> {
    let allowed = affinity::allowed_cpus();
    if allowed.is_empty() {
        return (0..std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).collect();
    }
    allowed
}

/// `n` pinned child processes, each pushing its share for `seconds`: their pushes per second together.
fn ceiling_round(n: usize, seconds: f64) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let cpus = cpus();
    // All started before any is waited for, so they warm up side by side.
    let mut kids: Vec<(Child, BufReader<std::process::ChildStdout>)> = (0..n)
        .map(|k| {
            let mut c = Command::new(&exe)
                .args(["--child", &cpus[k % cpus.len()].to_string(), &seconds.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("ceiling child");
            let out = BufReader::new(c.stdout.take().expect("stdout"));
            (c, out)
        })
        .collect();
    for (_, out) in &mut kids {
        let mut line = String::new();
        out.read_line(&mut line).expect("ready");
        assert_eq!(line.trim(), "ready", "ceiling child failed to start");
    }
    for (c, _) in &mut kids {
        writeln!(c.stdin.as_mut().expect("stdin"), "go").expect("go");
    }
    let mut rate = 0.0;
    for (mut c, mut out) in kids {
        let mut line = String::new();
        out.read_line(&mut line).expect("result");
        let mut it = line.split_whitespace().map(|v| v.parse::<f64>().expect("number"));
        let (pushes, wall) = (it.next().expect("pushes"), it.next().expect("wall"));
        rate += pushes / wall;
        c.wait().expect("child exit");
    }
    rate
}

fn pct(sorted: &[u32], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(args[i + 1].parse().expect("cpu"), args[i + 2].parse().expect("seconds"));
        return;
    }
    let cores = cpus().len();
    let threads: Vec<usize> = match value("--threads") {
        Some(list) => list.split(',').map(|v| v.parse().expect("thread count")).collect(),
        None => std::iter::successors(Some(1usize), |n| Some(n * 2)).take_while(|&n| n < cores).chain([cores]).collect(),
    };
    let seconds: f64 = value("--seconds").map(|v| v.parse().expect("seconds")).unwrap_or(1.0);
    let rounds: usize = value("--rounds").map(|v| v.parse().expect("rounds")).unwrap_or(3);
    let chunks = chunks();
    let pipelines: Vec<Pipeline> = threads.iter().map(|&n| pipeline(n)).collect();
    for p in &pipelines {
        push_for(p, &chunks[..10], Instant::now() + Duration::from_millis(20));
    }
    let mut rates = vec![Vec::new(); threads.len()];
    let mut ceilings = vec![Vec::new(); threads.len()];
    let mut lats: Vec<Vec<u32>> = vec![Vec::new(); threads.len()];
    for _ in 0..rounds {
        for (i, &n) in threads.iter().enumerate() {
            let (rate, lat) = engine_round(&pipelines[i], &chunks, n, seconds);
            rates[i].push(rate);
            lats[i].extend(lat);
            ceilings[i].push(ceiling_round(n, seconds));
        }
    }
    println!("streaming from Rust threads: 20 ms pushes through resample 16k + VAD, {rounds} rounds of {seconds} s, {cores} usable cores");
    let mut rows = Vec::new();
    for (i, &n) in threads.iter().enumerate() {
        let (rate, ceiling) = (median(&mut rates[i]), median(&mut ceilings[i]));
        lats[i].sort_unstable();
        let (p50, p99) = (pct(&lats[i], 0.5), pct(&lats[i], 0.99));
        println!(
            "{n:>3} threads: {rate:>9.0} pushes/s = {:>7.0} real-time streams, push p50 {p50:.1} µs p99 {p99:.1} µs; ceiling ({n} pinned processes) {:>7.0} streams; {:.2} of it",
            rate / 50.0,
            ceiling / 50.0,
            rate / ceiling
        );
        rows.push(format!(
            r#"{{"threads": {n}, "pushes_per_s": {rate:.1}, "streams": {:.1}, "p50_us": {p50:.2}, "p99_us": {p99:.2}, "ceiling_pushes_per_s": {ceiling:.1}, "ceiling_streams": {:.1}, "of_ceiling": {:.4}}}"#,
            rate / 50.0,
            ceiling / 50.0,
            rate / ceiling
        ));
    }
    if let Some(path) = value("--json") {
        std::fs::write(&path, format!("[{}]\n", rows.join(",\n"))).expect("json");
    }
}
