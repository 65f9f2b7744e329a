//! The served-pipelines load benchmark (`cargo bench --bench serve_load -- ...`): N concurrent
//! WebSocket clients, each streaming 20 ms chunks of the bundled speech sample (looped) on the
//! real-time schedule into `speech_vad` on a release `remotemedia serve` over loopback. Reports
//! the sessions held, push-to-output latency (a chunk's send to its `done`, i.e. all its outputs
//! in), chunks lost, the server's CPU (from /proc) and how late the clients' own schedule ran;
//! and the peer in the same run: the same chunks pushed into a local session of the same
//! manifest, so the latency the server adds over a local session is reported.
//!
//! The clients are tokio tasks on the same WebSocket crate the server uses (tungstenite), in this
//! one process, on `--client-threads` runtime threads: on a 2-core machine they share the cores
//! with the server, and their lateness is reported so that a run where they, not the server,
//! were the limit can be told apart. Bounded: `--clients` levels, `--seconds` of streaming each,
//! every wait under a timeout.
//!
//! ```sh
//! cargo build --release && cargo bench --bench serve_load -- --clients 100 500 --seconds 10
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use remotemedia::data::{AudioBuffer, Payload, Samples};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const MANIFEST: &str = "dataflows/speech_vad.yaml";
const SAMPLE: &str = "dataflows/sample_speech.wav";
const CHUNK: Duration = Duration::from_millis(20);

struct Args {
    binary: PathBuf,
    clients: Vec<usize>,
    seconds: f64,
    client_threads: usize,
    workers: Option<usize>,
    send_audio: bool,
    /// How long the clients take to connect (spread evenly), in seconds.
    ramp: f64,
}

fn parse_args() -> Args {
    let mut a = Args {
        binary: PathBuf::from("target/release/remotemedia"),
        clients: vec![100, 500],
        seconds: 10.0,
        client_threads: 1,
        workers: None,
        send_audio: true,
        ramp: 2.0,
    };
    let mut it = std::env::args().skip(1).peekable();
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--binary" => a.binary = PathBuf::from(value()),
            "--clients" => {
                a.clients = vec![value().parse().expect("--clients: counts")];
                while let Some(n) = it.peek().and_then(|s| s.parse().ok()) {
                    a.clients.push(n);
                    it.next();
                }
            }
            "--seconds" => a.seconds = value().parse().expect("--seconds: a number"),
            "--client-threads" => a.client_threads = value().parse().expect("--client-threads: a count"),
            "--workers" => a.workers = Some(value().parse().expect("--workers: a count")),
            "--ramp" => a.ramp = value().parse().expect("--ramp: seconds"),
            "--no-audio" => a.send_audio = false,
            // What `cargo bench` adds.
            "--bench" => {}
            other => panic!("unknown argument {other} (--binary, --clients N.., --seconds, --client-threads, --workers, --ramp, --no-audio)"),
        }
    }
    a
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's /proc stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ is 100 on Linux
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The sample cut into 20 ms chunks: the `AudioBuffer` (for the local peer) and its s16le bytes.
fn chunks() -> Vec<(AudioBuffer, Vec<u8>)> {
    let audio = remotemedia::audio_io::read(Path::new(SAMPLE)).expect("the bundled sample");
    let step = audio.sample_rate as usize / 50;
    (0..audio.frames() / step)
        .map(|k| {
            let piece = audio.frame_range(k * step, (k + 1) * step);
            let bytes = match &piece.samples {
                Samples::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                _ => panic!("the sample is 16-bit"),
            };
            (piece, bytes)
        })
        .collect()
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        f64::NAN
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The peer: the same chunks pushed one at a time into a local session of the same manifest
/// (the runtime a local `Pipeline.stream()` uses), each push timed (µs).
fn local_peer(chunks: &[(AudioBuffer, Vec<u8>)], rounds: usize) -> Histogram<u64> {
    let g = remotemedia::cli::load_graph(Path::new(MANIFEST)).expect("the manifest");
    let pool = remotemedia::runtime::WorkerPool::shared(g.config.workers).unwrap();
    let pipeline = pool.install(g).unwrap();
    let mut h = hist();
    for _ in 0..rounds {
        let mut session = pipeline.session();
        for (a, _) in chunks {
            let t = Instant::now();
            session.push(Payload::Audio(a.clone())).expect("a local push");
            h.record(t.elapsed().as_micros().max(1) as u64).unwrap();
        }
        session.close().unwrap();
    }
    h
}

/// What one client saw.
#[derive(Default)]
struct ClientResult {
    latency: Option<Histogram<u64>>,
    late: Option<Histogram<u64>>,
    sent: u64,
    done: u64,
    close_code: u16,
    error: Option<String>,
}

/// Parses `{"chunk":K,"type":"done"}` (serde_json's key order) without a JSON parser: the
/// clients' own cost matters here.
fn done_chunk(t: &str) -> Option<u64> {
    t.strip_prefix(r#"{"chunk":"#)?.strip_suffix(r#","type":"done"}"#)?.parse().ok()
}

async fn client(
    url: String,
    chunks: Arc<Vec<(AudioBuffer, Vec<u8>)>>,
    start_at: tokio::time::Instant,
    n_chunks: u64,
    send_audio: bool,
) -> ClientResult {
    let mut r = ClientResult { latency: Some(hist()), late: Some(hist()), ..Default::default() };
    tokio::time::sleep_until(start_at).await;
    // A small read buffer, as the server's: tungstenite zero-fills the whole buffer before each
    // read (128 KiB by default), which made the clients, not the server, the first limit.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 << 10);
    // `true`: TCP_NODELAY, as the server sets it (small frames each way).
    let connect = tokio_tungstenite::connect_async_with_config(&url, Some(config), true);
    let ws = match tokio::time::timeout(Duration::from_secs(20), connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            r.error = Some(format!("connect: {e}"));
            return r;
        }
        Err(_) => {
            r.error = Some("connect: timed out".into());
            return r;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let rate = chunks[0].0.sample_rate;
    let start = json!({"type": "start", "protocol": 1, "pipeline": "speech_vad", "sample_rate": rate, "channels": 1,
        "format": "s16le", "options": {"send_audio": send_audio}});
    if let Err(e) = tx.send(Message::Text(start.to_string().into())).await {
        r.error = Some(format!("start: {e}"));
        return r;
    }
    // Send times of chunks not yet answered, in order (answers come in order).
    let sent_at: Arc<std::sync::Mutex<std::collections::VecDeque<Instant>>> = Default::default();
    let reader_sent = Arc::clone(&sent_at);
    let reader = tokio::spawn(async move {
        let mut h = hist();
        let mut done = 0u64;
        let mut code = 1006u16;
        while let Some(m) = rx.next().await {
            match m {
                Ok(Message::Text(t)) => {
                    if let Some(k) = done_chunk(t.as_str()) {
                        let now = Instant::now();
                        // The close's own `done` (chunk N) answers no pushed chunk.
                        if k < n_chunks {
                            if let Some(t0) = reader_sent.lock().unwrap().pop_front() {
                                h.record(now.duration_since(t0).as_micros().max(1) as u64).unwrap();
                            }
                            done += 1;
                        }
                    }
                }
                Ok(Message::Close(f)) => {
                    code = f.map_or(1005, |f| u16::from(f.code));
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (h, done, code)
    });
    // The real-time schedule: chunk k is due at t0 + k × 20 ms.
    let t0 = tokio::time::Instant::now();
    let late = r.late.as_mut().unwrap();
    for k in 0..n_chunks {
        let due = t0 + CHUNK * k as u32;
        tokio::time::sleep_until(due).await;
        let now = tokio::time::Instant::now();
        late.record(now.duration_since(due).as_micros().max(1) as u64).unwrap();
        let bytes = chunks[k as usize % chunks.len()].1.clone();
        sent_at.lock().unwrap().push_back(Instant::now());
        if let Err(e) = tx.send(Message::Binary(bytes.into())).await {
            r.error = Some(format!("chunk {k}: {e}"));
            break;
        }
        r.sent += 1;
    }
    if r.error.is_none() {
        let _ = tx.send(Message::Text(r#"{"type":"close"}"#.into())).await;
    }
    match tokio::time::timeout(Duration::from_secs(30), reader).await {
        Ok(Ok((h, done, code))) => {
            r.latency = Some(h);
            r.done = done;
            r.close_code = code;
        }
        _ => {
            if r.error.is_none() {
                r.error = Some("no close from the server within 30 s".into());
            }
        }
    }
    let _ = tx.close().await;
    r
}

fn start_server(a: &Args) -> (Child, String) {
    use std::io::BufRead;
    assert!(a.binary.exists(), "{} is missing: run `cargo build --release` first", a.binary.display());
    let mut cmd = Command::new(&a.binary);
    cmd.args(["serve", MANIFEST, "--listen", "127.0.0.1:0", "--max-sessions-per-token", "100000", "--max-sessions", "100000"]);
    if let Some(w) = a.workers {
        cmd.args(["--workers", &w.to_string()]);
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start the server");
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.as_mut().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, format!("ws://{addr}/v1/stream"))
}

fn main() {
    let a = parse_args();
    let chunks = Arc::new(chunks());
    println!("serve_load: {} ({} chunks of 20 ms, looped); load average before: {}", SAMPLE, chunks.len(), load_average());
    let peer = local_peer(&chunks, 3);
    println!(
        "local session push (peer, same run, before the load): median {:.3} ms, p99 {:.3} ms ({} pushes)",
        ms(&peer, 0.5),
        ms(&peer, 0.99),
        peer.len()
    );
    let (mut server, url) = start_server(&a);
    let pid = server.id();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(a.client_threads.max(1)).enable_all().build().unwrap();
    println!("clients | sessions held | chunks sent | lost | push-to-output p50 / p99 (ms) | p99 added over local (ms) | clients late p99 (ms) | server CPU (cores) | clients CPU (cores) | server RSS (MiB) | load avg after");
    let mut all_ok = true;
    for &n in &a.clients {
        let n_chunks = (a.seconds * 50.0).round() as u64;
        let c0 = cpu_seconds(pid);
        let own0 = cpu_seconds(std::process::id());
        let w0 = Instant::now();
        let results: Vec<ClientResult> = rt.block_on(async {
            let base = tokio::time::Instant::now() + Duration::from_millis(50);
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    // Connections spread over the ramp, and over one 20 ms period so the
                    // clients' sends are not all at the same instant (as real microphones).
                    let offset = Duration::from_secs_f64(a.ramp * i as f64 / n as f64);
                    tokio::spawn(client(url.clone(), Arc::clone(&chunks), base + offset, n_chunks, a.send_audio))
                })
                .collect();
            let mut out = Vec::with_capacity(n);
            for t in tasks {
                out.push(t.await.unwrap_or_else(|e| ClientResult { error: Some(format!("task: {e}")), ..Default::default() }));
            }
            out
        });
        let wall = w0.elapsed().as_secs_f64();
        let cpu = (cpu_seconds(pid) - c0) / wall;
        let clients_cpu = (cpu_seconds(std::process::id()) - own0) / wall;
        let mut lat = hist();
        let mut late = hist();
        let (mut sent, mut done, mut held) = (0u64, 0u64, 0usize);
        let mut errors = Vec::new();
        for r in &results {
            if let Some(h) = &r.latency {
                lat.add(h).unwrap();
            }
            if let Some(h) = &r.late {
                late.add(h).unwrap();
            }
            sent += r.sent;
            done += r.done;
            if r.error.is_none() && r.close_code == 1000 && r.sent == n_chunks && r.done == r.sent {
                held += 1;
            } else {
                errors.push(r.error.clone().unwrap_or_else(|| format!("close {} after {} of {} chunks, {} answered", r.close_code, r.sent, n_chunks, r.done)));
            }
        }
        let lost = sent - done;
        println!(
            "{n} | {held} | {sent} | {lost} | {:.3} / {:.3} | {:.3} | {:.3} | {:.2} | {:.2} | {:.1} | {}",
            ms(&lat, 0.5),
            ms(&lat, 0.99),
            ms(&lat, 0.99) - ms(&peer, 0.99),
            ms(&late, 0.99),
            cpu,
            clients_cpu,
            rss_mib(pid),
            load_average()
        );
        if let Some(e) = errors.first() {
            println!("  {} sessions not held; first: {e}", errors.len());
            all_ok = false;
        }
    }
    let peer_after = local_peer(&chunks, 3);
    println!("local session push (peer, same run, after the load): median {:.3} ms, p99 {:.3} ms", ms(&peer_after, 0.5), ms(&peer_after, 0.99));
    // SIGTERM: the server's graceful shutdown.
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    if !all_ok {
        std::process::exit(1);
    }
}
