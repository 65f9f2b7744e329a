//! `remotemedia serve --ui`: the browser page, in headless Chromium with a fake microphone fed
//! from a WAV file, shows the segments the engine finds in that file. Chromium is a test-only
//! reference (tests/requirements/serve_ui.apt); without it the test fails under CI or
//! REMOTEMEDIA_REQUIRE_NATIVE=1 and says so elsewhere.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use remotemedia::data::{AudioBuffer, Samples};
use remotemedia::serve::{ServeConfig, Server, ServerState};
use serde_json::Value;

const SAMPLE: &str = "dataflows/sample_speech.wav";
/// How far the page's segment boundaries may lie from a file run's. The fake device plays the
/// file on a real-time clock from the moment the page opens the microphone, and the page's first
/// chunk starts when its AudioWorklet first runs: the two clocks differ by the time between them
/// (tens of ms, more on a loaded machine), and the resampling to the page's AudioContext rate
/// moves the VAD's 30 ms frame grid.
const TOLERANCE_S: f64 = 0.3;
/// The page's audio reaches the server resampled twice (the fake device's file rate to the
/// AudioContext's, e.g. 48 kHz to 44.1 kHz, then the pipeline's to 16 kHz), so a pause whose
/// probabilities sit near the VAD's threshold may split a segment in two on the page (seen:
/// 1.20-2.79 s and 3.27-4.86 s for the engine's 1.26-4.89 s). So the check is: every boundary
/// the engine finds is one the page shows (within `TOLERANCE_S`), every segment the page shows
/// lies mostly inside one of the engine's, and the two disagree on at most this many seconds.
const MAX_DISAGREEMENT_S: f64 = 1.0;
/// The whole browser run's bound.
const TIMEOUT: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REMOTEMEDIA_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

fn required() -> bool {
    std::env::var("REMOTEMEDIA_REQUIRE_NATIVE").is_ok_and(|v| v == "1") || std::env::var_os("CI").is_some()
}

/// 1 s of silence, the sample, 1.5 s of silence: the fake device loops its file, and the page
/// stops before the loop comes round.
fn padded_sample(path: &Path) -> f64 {
    let a = remotemedia::audio_io::read(Path::new(SAMPLE)).unwrap();
    let Samples::I16(v) = &a.samples else { panic!("the sample is 16-bit") };
    let rate = a.sample_rate as usize;
    let mut s = vec![0i16; rate];
    s.extend_from_slice(v);
    s.extend(std::iter::repeat_n(0i16, rate * 3 / 2));
    let secs = s.len() as f64 / rate as f64;
    remotemedia::audio_io::write_wav(path, &AudioBuffer::new(Samples::I16(s.into()), a.sample_rate, 1).unwrap()).unwrap();
    secs
}

fn segments(v: &Value) -> Vec<(f64, f64)> {
    v.as_array().unwrap().iter().map(|s| (s[0].as_f64().unwrap(), s[1].as_f64().unwrap())).collect()
}

/// Seconds of `a` not in `b`.
fn outside(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    a.iter().map(|&(s, e)| (e - s) - b.iter().map(|&(bs, be)| (e.min(be) - s.max(bs)).max(0.0)).sum::<f64>()).sum()
}

/// A plain HTTP/1.1 GET: the whole answer, head and body.
fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_page_shows_the_segments_the_engine_finds_in_a_fake_microphone_file() {
    let Some(browser) = chromium() else {
        assert!(!required(), "chromium is not installed (tests/requirements/serve_ui.apt lists it): the browser page cannot be tested");
        eprintln!("SKIPPED: chromium is not installed (tests/requirements/serve_ui.apt); set REMOTEMEDIA_REQUIRE_NATIVE=1 to make this a failure");
        return;
    };
    let dir = common::temp_dir("ui");
    let wav = dir.join("mic.wav");
    let secs = padded_sample(&wav);

    // What the engine finds in the file: a whole-file run.
    let json_path = dir.join("run.json");
    let run = common::cli(&["run", "dataflows/speech_vad.yaml", "--once", "--input", common::s(&wav), "--json", common::s(&json_path)]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let want = segments(&serde_json::from_slice::<Value>(&std::fs::read(&json_path).unwrap()).unwrap()["outputs"]["vad"]["segments"]);
    assert!(!want.is_empty(), "the sample has speech");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let graph = remotemedia::cli::load_graph(Path::new("dataflows/speech_vad.yaml")).unwrap();
    // With a tokens file: the page passes the token of its own URL on to every request.
    let tokens = dir.join("tokens.txt");
    std::fs::write(&tokens, "page-token\n").unwrap();
    let config = ServeConfig { tokens: Some(tokens), ui: true, ..ServeConfig::default() };
    let state = ServerState::new(vec![("speech_vad".into(), graph)], config).unwrap();
    let server = rt.block_on(Server::bind(state, "127.0.0.1:0".parse().unwrap())).unwrap();
    let addr = server.local_addr();
    let state = Arc::clone(&server.state);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(server.run(async move {
        let _ = stopped.await;
    }));

    // The page is served at `/` without a token; the pipeline list it asks for needs one.
    let page = get(addr, "/");
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("getUserMedia") && page.contains("AudioWorkletNode"), "{page}");
    assert!(get(addr, "/v1/pipelines").starts_with("HTTP/1.1 401"));
    assert!(get(addr, "/v1/pipelines?token=page-token").contains("speech_vad"));

    // The page streams a little less than the file, then closes (the flush closes the last
    // segment) and logs the segments its list shows.
    let url = format!("http://{addr}/?token=page-token&pipeline=speech_vad&autostart=1&seconds={:.2}", secs - 0.5);
    let mut child = Command::new(&browser)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio"])
        .args(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"])
        .arg(format!("--use-file-for-fake-audio-capture={}", wav.display()))
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut log = Vec::new();
    let mut shown = None;
    while started.elapsed() < TIMEOUT {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some(rest) = line.split("remotemedia-ui shown: ").nth(1) {
                    // Chromium logs the message quoted: `"TEXT", source: URL (LINE)`.
                    let json = rest.rsplit_once("\", source:").map_or(rest, |(j, _)| j);
                    shown = Some(serde_json::from_str::<Value>(json).unwrap_or_else(|e| panic!("{e}: {json}")));
                    break;
                }
                if line.contains("remotemedia-ui") {
                    // The page said it failed: no need to wait for the timeout.
                    let failed = line.contains("status: cannot") || line.contains("status: error") || line.contains("status: WebSocket error");
                    log.push(line);
                    if failed {
                        break;
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = stop.send(());
    let doc = shown.unwrap_or_else(|| panic!("the page did not report what it shows within {TIMEOUT:?}; its log: {log:#?}"));
    let shown = segments(&doc["segments"]);
    eprintln!("engine: {want:?}\npage:   {doc}");
    let all = format!("the page shows {shown:?}, the engine finds {want:?}");
    let near = |t: f64, ts: Vec<f64>| ts.iter().any(|u| (u - t).abs() <= TOLERANCE_S);
    for &(s, e) in &want {
        assert!(near(s, shown.iter().map(|x| x.0).collect()), "no segment starts near {s} s: {all}");
        assert!(near(e, shown.iter().map(|x| x.1).collect()), "no segment ends near {e} s: {all}");
    }
    for &seg in &shown {
        let len = seg.1 - seg.0;
        assert!(outside(&[seg], &want) <= len / 2.0, "{seg:?} lies mostly outside the engine's segments: {all}");
    }
    let disagreement = outside(&shown, &want) + outside(&want, &shown);
    assert!(disagreement <= MAX_DISAGREEMENT_S, "they disagree on {disagreement:.2} s: {all}");
    // What the canvas was drawn from: a level for every 20 ms chunk of the streamed seconds,
    // from digital silence (the padding; -120 dBFS is the page's floor) to speech; a VAD decision
    // for every 30 ms frame of them, speech where the segments are.
    let streamed = secs - 0.5;
    let chunks = doc["chunks"].as_f64().unwrap();
    assert!((chunks * 0.02 - streamed).abs() < 0.05, "{chunks} chunks for {streamed} s");
    let (lo, hi) = (doc["level_db"][0].as_f64().unwrap(), doc["level_db"][1].as_f64().unwrap());
    assert!(lo < -60.0 && hi > -40.0 && hi <= 0.0, "levels {lo}..{hi} dBFS");
    let frames = doc["vad_frames"].as_f64().unwrap();
    assert!((frames * 0.03 - streamed).abs() < 0.1, "{frames} VAD frames for {streamed} s");
    let speech_s = doc["speech_frames"].as_f64().unwrap() * 0.03;
    let segment_s: f64 = want.iter().map(|(s, e)| e - s).sum();
    assert!((speech_s - segment_s).abs() < 1.0, "{speech_s} s of speech frames, the engine's segments {segment_s} s");
    // The session was served and closed normally.
    let metrics = state.stats.prometheus();
    assert!(metrics.contains("reason=\"normal\""), "{metrics}");
}
