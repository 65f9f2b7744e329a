//! The `remotemedia` binary end to end, in temporary directories: run (report, --json, --output),
//! graph, bench (--plot, --prometheus), node-types, and the error cases with their exit codes.

use std::path::{Path, PathBuf};

use remotemedia::audio_io::{read_wav, write_wav};
use remotemedia::data::{AudioBuffer, Samples};
use serde_json::Value;

mod common;
use common::{cli, s, temp_dir};

/// FormatConverter (→ f32) then Gain (-6 dB): node types that are complete on every branch.
const CONVERT_GAIN: &str = r#"
version: "1.0"
name: convert_gain
nodes:
  - id: to_f32
    type: FormatConverterNode
    params:
      target_format: f32
  - id: gain
    type: GainNode
    params:
      gain_db: -6.0
edges:
  - from: to_f32
    to: gain
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A 440 Hz tone at half scale, 16-bit, 8 kHz, 0.25 s.
fn tone_i16() -> Vec<i16> {
    (0..2000).map(|i| (16384.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()).round() as i16).collect()
}

#[test]
fn run_on_the_bundled_sample_reports_outputs_and_node_times() {
    let dir = temp_dir("run-sample");
    let manifest = write(&dir, "convert_gain.yaml", CONVERT_GAIN);
    let out = cli(&["run", s(&manifest), "--metrics"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", text(&out.stderr));
    assert!(stdout.contains("sample_speech.wav (bundled sample)"), "{stdout}");
    assert!(stdout.contains("48000 Hz, 1 channel, i16"), "{stdout}");
    // The gain output: f32 at the input's rate and length (282 499 frames at 48 kHz).
    assert!(stdout.contains("gain: audio, shape (282499, 1), 48000 Hz, f32, 5.885 s"), "{stdout}");
    for needle in ["to_f32", "FormatConverterNode", "GainNode", "(end to end)", "p99 µs", "errors"] {
        assert!(stdout.contains(needle), "{needle} missing in\n{stdout}");
    }
    assert!(stdout.contains(" µs") || stdout.contains(" ms"), "{stdout}");
}

#[test]
fn run_writes_json_and_a_wav_with_the_gain_applied() {
    let dir = temp_dir("run-files");
    let manifest = write(&dir, "convert_gain.yaml", CONVERT_GAIN);
    let input = dir.join("tone.wav");
    let tone = tone_i16();
    write_wav(&input, &AudioBuffer { samples: Samples::I16(tone.clone().into()), sample_rate: 8000, channels: 1 }).expect("write tone");
    let (json_path, wav_path) = (dir.join("out.json"), dir.join("out.wav"));
    let out = cli(&["run", s(&manifest), "--input", s(&input), "--json", s(&json_path), "--output", s(&wav_path), "--workers", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).expect("json written")).expect("valid JSON");
    assert_eq!(doc["input"]["sample_rate"], 8000);
    assert_eq!(doc["input"]["channels"], 1);
    assert_eq!(doc["input"]["format"], "i16");
    assert_eq!(doc["input"]["frames"], 2000);
    assert_eq!(doc["input"]["duration_s"], 0.25);
    let g = &doc["outputs"]["gain"];
    assert_eq!(g["kind"], "audio");
    assert_eq!(g["shape"], serde_json::json!([2000, 1]));
    assert_eq!(g["channels"], 1);
    assert_eq!(g["sample_rate"], 8000);
    assert_eq!(g["format"], "f32");
    assert_eq!(g["duration_s"], 0.25);
    // Peak of a half-scale tone after -6 dB: 0.5 · 10^(-6/20) ≈ 0.2506.
    let peak = g["peak"].as_f64().expect("peak");
    assert!((peak - 0.5 * 10f64.powf(-6.0 / 20.0)).abs() < 1e-3, "{peak}");
    let m = &doc["metrics"];
    assert_eq!(m["workers"], 2);
    assert_eq!(m["total_executions"], 1);
    let nodes = m["node_metrics"].as_array().expect("node_metrics");
    assert_eq!(nodes.len(), 2);
    assert!(nodes.iter().all(|n| n["execution_count"] == 1 && n["error_count"] == 0), "{nodes:?}");

    // The WAV holds the tone converted to f32 (x / 32768) and scaled by 10^(-6/20).
    let wav = read_wav(&wav_path).expect("output WAV readable");
    assert_eq!((wav.sample_rate, wav.channels), (8000, 1));
    let got = wav.as_f32().expect("f32 WAV");
    assert_eq!(got.len(), tone.len());
    let g = 10f32.powf(-6.0 / 20.0);
    for (x, y) in tone.iter().zip(got) {
        assert!((*x as f32 / 32768.0 * g - y).abs() < 1e-6, "{x} -> {y}");
    }
}

#[test]
fn graph_prints_dot_with_every_node_and_edge() {
    let dir = temp_dir("graph");
    let manifest = write(
        &dir,
        "mix.yaml",
        r#"
version: "1.0"
nodes:
  - {id: input, type: PassthroughNode}
  - {id: quiet, type: GainNode, params: {gain_db: -12.0}}
  - {id: loud, type: GainNode, params: {gain_db: 6.0}}
  - {id: mix, type: MixNode}
edges:
  - {from: input, to: quiet}
  - {from: input, to: loud}
  - {from: quiet, to: mix, input_key: background}
  - {from: loud, to: mix, input_key: foreground}
"#,
    );
    let out = cli(&["graph", s(&manifest)]);
    let dot = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    // DOT node name per manifest id, read from the labels.
    let name_of = |id: &str| -> String {
        let line = dot
            .lines()
            .find(|l| l.contains(&format!("[label=\"{id}\\n")))
            .unwrap_or_else(|| panic!("no node labelled {id} in\n{dot}"));
        line.trim().split(' ').next().expect("node name").to_string()
    };
    for (from, to) in [("input", "quiet"), ("input", "loud"), ("quiet", "mix"), ("loud", "mix")] {
        let edge = format!("{} -> {}", name_of(from), name_of(to));
        assert!(dot.lines().any(|l| l.trim().starts_with(&edge)), "edge {from} -> {to} ({edge}) missing in\n{dot}");
    }
    // A node called "input" stays distinct from the graph's input marker.
    assert_ne!(name_of("input"), "input");
    assert!(dot.contains("→background") && dot.contains("→foreground"), "{dot}");
}

#[test]
fn bench_prints_percentiles_and_draws_a_png() {
    let dir = temp_dir("bench");
    let manifest = write(&dir, "convert_gain.yaml", CONVERT_GAIN);
    let input = dir.join("tone.wav");
    write_wav(&input, &AudioBuffer { samples: Samples::I16(tone_i16().into()), sample_rate: 8000, channels: 1 }).expect("write tone");
    let (png, prom) = (dir.join("latency.png"), dir.join("metrics.prom"));
    let prom_arg = format!("--prometheus={}", s(&prom));
    let out = cli(&["bench", s(&manifest), "-i", s(&input), "--iterations", "20", "--warmup", "2", "--plot", s(&png), &prom_arg]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for needle in ["20 runs after 2 warm-up", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "(end to end)", "to_f32", "gain"] {
        assert!(stdout.contains(needle), "{needle} missing in\n{stdout}");
    }
    // Every node ran 20 times: the count column says so on each node row.
    for row in stdout.lines().filter(|l| l.trim_start().starts_with("to_f32") || l.trim_start().starts_with("gain ")) {
        assert!(row.split_whitespace().nth(2) == Some("20"), "{row}");
    }
    let bytes = std::fs::read(&png).expect("PNG written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert!(bytes.len() > 1024, "{} bytes", bytes.len());
    let prom_text = std::fs::read_to_string(&prom).expect("prometheus written");
    assert!(prom_text.contains("remotemedia_node_executions_total{"), "{prom_text}");
    assert!(prom_text.contains("node_id=\"gain\",node_type=\"GainNode\"} 20\n"), "{prom_text}");
}

#[test]
fn node_types_prints_parseable_json() {
    let out = cli(&["node-types"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_str(&text(&out.stdout)).expect("valid JSON");
    let names: Vec<&str> = v.as_array().expect("a list").iter().filter_map(|t| t["name"].as_str()).collect();
    for n in ["FormatConverterNode", "GainNode", "MixNode", "PassthroughNode"] {
        assert!(names.contains(&n), "{names:?}");
    }
}

#[test]
fn errors_exit_non_zero_with_a_clear_message() {
    let dir = temp_dir("errors");
    let manifest = write(&dir, "convert_gain.yaml", CONVERT_GAIN);

    let missing = dir.join("missing.yaml");
    let out = cli(&["run", s(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.yaml' not found"), "{}", text(&out.stderr));

    let bad = write(
        &dir,
        "bad.yaml",
        "version: \"1.0\"\nnodes:\n  - {id: a, type: NoSuchNode}\n  - {id: g, type: GainNode, params: {gain_db: loud}}\nedges:\n  - {from: a, to: g}\n",
    );
    for cmd in ["run", "graph", "bench"] {
        let out = cli(&[cmd, s(&bad)]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains("2 problems"), "{err}");
        assert!(err.contains("nodes[0].type") && err.contains("NoSuchNode"), "{err}");
        assert!(err.contains("nodes[1].params.gain_db") && err.contains("loud"), "{err}");
    }

    let out = cli(&["run", s(&manifest), "--input", s(&dir.join("nope.wav"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope.wav' not found"), "{}", text(&out.stderr));

    let not_wav = write(&dir, "notes.wav", "just some text\n");
    let out = cli(&["run", s(&manifest), "--input", s(&not_wav)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a supported audio file"), "{}", text(&out.stderr));

    // A node that rejects its input (i16 straight into GainNode) is a run failure: exit 1.
    let gain_only = write(&dir, "gain.yaml", "version: \"1.0\"\nnodes:\n  - {id: g, type: GainNode}\nedges: []\n");
    let out = cli(&["run", s(&gain_only)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("node 'g' (GainNode)") && err.contains("i16"), "{err}");

    let out = cli(&["bench", s(&manifest), "--iterations", "0"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    assert!(text(&out.stderr).contains("--iterations"), "{}", text(&out.stderr));
}

#[test]
fn stream_adds_up_to_the_whole_run_on_the_bundled_sample() {
    let dir = temp_dir("stream");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("dataflows/speech_vad.yaml");
    let (whole_json, stream_json, stream_wav, run_wav) =
        (dir.join("whole.json"), dir.join("stream.json"), dir.join("stream.wav"), dir.join("run.wav"));
    let run = cli(&["run", s(&manifest), "--json", s(&whole_json), "--output", s(&run_wav)]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    for ms in ["20", "37"] {
        let st = cli(&["stream", s(&manifest), "--chunk-ms", ms, "--json", s(&stream_json), "--output", s(&stream_wav)]);
        assert!(st.status.success(), "{}", text(&st.stderr));
        let report = text(&st.stdout);
        assert!(report.contains("speech 0.33-1.80 s"), "segments are printed as they close:\n{report}");
        let whole: Value = serde_json::from_str(&std::fs::read_to_string(&whole_json).unwrap()).unwrap();
        let streamed: Value = serde_json::from_str(&std::fs::read_to_string(&stream_json).unwrap()).unwrap();
        for key in ["segments", "frames", "frames_speech"] {
            assert_eq!(streamed["outputs"]["vad"][key], whole["outputs"]["vad"][key], "{ms} ms chunks: {key}");
        }
        assert!(streamed["push_latency_us"]["median"].as_f64().unwrap() > 0.0);
        // The chunks' audio, concatenated, is the whole run's audio up to float rounding (the
        // session's resampler cuts shorter blocks).
        let (a, b) = (read_wav(&stream_wav).unwrap(), read_wav(&run_wav).unwrap());
        assert_eq!((a.sample_rate, a.channels, a.frames()), (b.sample_rate, b.channels, b.frames()));
        let (Samples::F32(x), Samples::F32(y)) = (&a.samples, &b.samples) else { panic!("f32 WAVs") };
        let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{ms} ms chunks: audio differs by {worst:e}");
    }
    let bad = cli(&["stream", s(&manifest), "--chunk-ms", "0"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn limits_prints_the_limits_of_the_schema() {
    let out = cli(&["limits"]);
    assert_eq!(out.status.code(), Some(0));
    let printed: Value = serde_json::from_str(&text(&out.stdout)).expect("valid JSON");
    assert_eq!(printed, remotemedia::limits::describe());
    assert_eq!(printed, remotemedia::schema::describe()["limits"]);
}

#[test]
fn schema_prints_the_document_the_python_package_ships() {
    // Every generated file follows from python/remotemedia/schema.json (scripts/gen.py --check in
    // tests/python/test_schema.py); this holds that file to the engine's own facts.
    let out = cli(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/remotemedia/schema.json")).unwrap();
    assert!(printed == shipped, "regenerate: target/debug/remotemedia schema > python/remotemedia/schema.json && python scripts/gen.py");
    let doc: Value = serde_json::from_str(&printed).expect("valid JSON");
    assert_eq!(doc["node_types"], remotemedia::Registry::builtin().describe());
    let cooldown = doc["config"].as_array().unwrap().iter().find(|f| f["name"] == "circuit_breaker_cooldown_ms").unwrap();
    assert_eq!((cooldown["default"].as_u64(), cooldown["max"].as_i64()), (Some(30_000), Some(3_600_000)));
}

#[test]
fn an_error_exit_keeps_its_code_when_stderr_is_a_closed_pipe() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::{Command, Stdio};
    // A pipe whose reading end is closed before the command writes its error: writing fails
    // with EPIPE, which eprintln! turned into a panic and exit code 101.
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let status = Command::new(env!("CARGO_BIN_EXE_remotemedia"))
        .args(["run", "/nonexistent/manifest.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(write))
        .status()
        .expect("run the binary");
    assert_eq!(status.code(), Some(2));
}

/// `run --plot` with a node that changes the signal: the input's waveform, the filtered output's
/// under it and a panel of both average spectra (the image's height counts the panels); a plot
/// path that cannot be written is a clear error, not a panic.
#[test]
fn run_plot_draws_before_and_after_a_filter() {
    let dir = temp_dir("plot_filter");
    let manifest = write(
        &dir,
        "highpass.yaml",
        r#"
version: "1.0"
name: highpass
nodes:
  - id: to_f32
    type: FormatConverterNode
    params:
      target_format: f32
  - id: hp
    type: FilterNode
    params:
      bands: [{type: highpass, freq_hz: 1000, order: 4}]
edges:
  - from: to_f32
    to: hp
"#,
    );
    let input = dir.join("tone.wav");
    write_wav(&input, &AudioBuffer { samples: Samples::I16(tone_i16().into()), sample_rate: 8000, channels: 1 }).expect("write tone");
    let png = dir.join("before_after.png");
    let out = cli(&["run", s(&manifest), "-i", s(&input), "--plot", s(&png)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("1 changed audio output with spectra"), "{stdout}");
    let bytes = std::fs::read(&png).expect("PNG written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    // IHDR: width then height, big-endian, after the signature and the chunk's length and type.
    let dim = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!((dim(16), dim(20)), (1100, 2 * 260 + 320 + 40), "input and output waveforms, one spectra panel");

    let missing = dir.join("no_such_dir").join("p.png");
    let out = cli(&["run", s(&manifest), "-i", s(&input), "--plot", s(&missing)]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("cannot draw the plot to") && stderr.contains("no_such_dir"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The command's process runs without transparent huge pages from its first allocation on (see
/// `runtime::no_huge_pages_for_this_process` and src/main.rs): read from the kernel's view of a
/// running `remotemedia serve`, once it listens. Its `THP_enabled` flag is off, and none of its
/// memory is in huge pages: with the switch made in `main`, the Rust runtime's allocations before
/// it had already faulted two in (4 MB of a 15 MB process, on a kernel whose THP mode is
/// `madvise` or `always`; under `never` there are none either way).
#[cfg(target_os = "linux")]
#[test]
fn the_command_turns_transparent_huge_pages_off_for_its_process() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_remotemedia"))
        .args(["serve", "dataflows/speech_vad.yaml", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start remotemedia serve");
    // Its first line says it listens: everything it sets up before serving is allocated by then.
    // Read on a thread of its own, so that a server that never says so fails the test in 20 s
    // instead of hanging it.
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stderr).read_line(&mut line);
        let _ = tx.send(line);
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap_or_default();
    let read = |file: &str, key: &str| -> String {
        let text = std::fs::read_to_string(format!("/proc/{}/{file}", child.id())).unwrap_or_default();
        text.lines().find(|l| l.starts_with(key)).unwrap_or("").to_string()
    };
    let thp = read("status", "THP_enabled:");
    let huge = read("smaps_rollup", "AnonHugePages:");
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("listening on"), "remotemedia serve did not start: {first:?}");
    assert_eq!(thp.split_whitespace().nth(1), Some("0"), "the process's status line is {thp:?} (no line: this kernel does not report it), expected THP_enabled: 0");
    assert_eq!(huge.split_whitespace().nth(1), Some("0"), "the process's smaps_rollup line is {huge:?}, expected AnonHugePages: 0 kB");
}
