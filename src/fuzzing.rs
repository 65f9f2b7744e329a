//! Fuzz harnesses shared by the cargo-fuzz targets in `fuzz/` and the corpus-replay test
//! `tests/fuzz_corpus.rs`: arbitrary bytes in, no panic out, and a few properties the code
//! documents checked on the way (a failed property is a panic too, so the fuzzer reports it).
//!
//! Not part of the public API; kept in the main crate so that the fuzz crate and the normal
//! test suite run exactly the same code.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::data::{AudioBuffer, Payload, SampleFormat, Samples, VadResult};
use crate::error::{Error, NodeErrorKind};
use crate::manifest;
use crate::nodes::resample::{output_frames, Quality, Resampler};
use crate::nodes::vad::{detect, VadConfig, VadState};
use crate::nodes::{Inputs, Node, NodeConfig, Params, Registry};
use crate::runtime::WorkerPool;

/// Most samples one fuzz input may ask for: keeps every execution in the millisecond range.
const MAX_SAMPLES: usize = 1 << 15;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::builtin)
}

/// Reads fuzz bytes as a stream of choices; past the end every read is 0, so any input is usable.
struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }

    /// An index below `n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n
    }

    fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[self.below(table.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Manifests

/// Manifest text → parse (JSON and YAML) → validate against the built-in registry → canonical
/// round trip → node factories → install on a one-worker pool and run once.
///
/// Properties checked: a valid graph's canonical manifest validates to an equal graph; the
/// topological order is a permutation with every edge pointing forward; every node of a valid
/// graph builds; a run never poisons the pool and no node panics.
pub fn fuzz_manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Both parsers see every text, whatever its first character.
    let _ = manifest::parse_json(text);
    let _ = manifest::parse_yaml(text);
    let tree = match manifest::parse_str(text) {
        Ok(t) => t,
        Err(e) => {
            assert!(!e.problems.is_empty(), "a parse error without problems");
            let _ = e.to_string();
            return;
        }
    };
    check_tree(&tree);
}

/// Validates a tree and, if valid, builds, installs and runs it (the part of [`fuzz_manifest`]
/// after parsing; [`fuzz_node`] reuses it for single-node manifests).
fn check_tree(tree: &Value) {
    let reg = registry();
    let graph = match manifest::validate(tree, reg) {
        Ok(g) => g,
        Err(e) => {
            assert!(!e.problems.is_empty(), "a manifest error without problems");
            let _ = e.to_string();
            return;
        }
    };
    let canon = manifest::to_manifest(&graph);
    match manifest::validate(&canon, reg) {
        Ok(again) => assert!(again == graph, "the canonical manifest rebuilt a different graph: {canon}"),
        Err(e) => panic!("the canonical manifest of a valid graph is invalid: {e}\n{canon}"),
    }
    let mut seen = vec![false; graph.nodes.len()];
    let mut position = vec![0; graph.nodes.len()];
    assert_eq!(graph.order.len(), graph.nodes.len(), "topological order length");
    for (pos, &n) in graph.order.iter().enumerate() {
        assert!(!std::mem::replace(&mut seen[n], true), "node {n} twice in the order");
        position[n] = pos;
    }
    for e in &graph.edges {
        assert!(position[e.from] < position[e.to], "edge {e:?} points backwards in the order");
    }
    let _ = graph.to_dot();
    for n in &graph.nodes {
        let cfg = NodeConfig { id: &n.id, params: &n.params, worker: 0 };
        let Some(t) = reg.get(&n.node_type.name) else { panic!("node '{}' has a type the registry lacks", n.id) };
        if let Err(e) = (t.factory)(&cfg) {
            panic!("node '{}' passed validation but its factory failed: {e}", n.id);
        }
    }
    let pool = match WorkerPool::shared(1) {
        Ok(p) => p,
        Err(e) => panic!("cannot start the worker pool: {e}"),
    };
    let pipeline = match pool.install(graph) {
        Ok(p) => p,
        Err(e) => panic!("a valid graph failed to install: {e}"),
    };
    // 20 ms of a 440 Hz tone at 16 kHz: every node type has something real to chew on.
    let tone: Vec<f32> = (0..320).map(|k| (k as f32 * 0.172_787_6).sin() * 0.5).collect();
    match pipeline.run(AudioBuffer::mono_f32(tone, 16_000)) {
        Ok(_) => {}
        Err(Error::Node(e)) if e.kind != NodeErrorKind::Panic => {}
        Err(e) => panic!("a run of a valid pipeline failed with {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// Bytes → a scratch file → `audio_io::read` (content sniffing, the WAV reader, symphonia for
/// FLAC/MP3/Vorbis/MP4/AIFF/...), and the same bytes → `audio_io::decode_wav` (the in-memory WAV
/// reader).
///
/// Properties checked: a file is decoded or refused with `Error::Input` (never another error,
/// never a panic); decoded audio has 1 to 256 channels, a rate above 0 and whole frames; when the
/// in-memory WAV reader accepts the bytes, the file reader accepts them too, with the same samples.
pub fn fuzz_file(data: &[u8]) {
    // One scratch file per process and thread: libFuzzer's -jobs/-fork and the replay test's
    // threads never share one.
    let path = std::env::temp_dir().join(format!(
        "remotemedia-fuzz-file-{}-{:?}.bin",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, data).expect("write the scratch file");
    let from_file = crate::audio_io::read(&path);
    let _ = std::fs::remove_file(&path);
    match &from_file {
        Ok(a) => {
            assert!((1..=256).contains(&a.channels), "decoded {} channels", a.channels);
            assert!(a.sample_rate > 0, "decoded at 0 Hz");
            assert_eq!(a.samples.len() % a.channels as usize, 0, "a partial frame was decoded");
        }
        Err(Error::Input(_)) => {}
        Err(e) => panic!("the file reader failed with something other than an input error: {e}"),
    }
    if let Ok(a) = crate::audio_io::decode_wav(data) {
        let b = from_file.as_ref().expect("decode_wav accepted bytes the file reader refused");
        assert_eq!((a.sample_rate, a.channels), (b.sample_rate, b.channels), "the two WAV readers disagree on the format");
        // Compared as bytes: a float file may hold NaNs, which never equal themselves.
        assert!(
            a.samples.format() == b.samples.format() && a.samples.to_le_bytes() == b.samples.to_le_bytes(),
            "the two WAV readers decoded different samples"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// Bytes → a node type with arbitrary (often out-of-range) params, validated and built, then
/// fed arbitrary buffers; or the streaming [`Resampler`] / [`VadState`] APIs cut into arbitrary
/// chunks; or sample bytes in every format.
pub fn fuzz_node(data: &[u8]) {
    let mut u = Bytes { data };
    match u.u8() % 8 {
        0..=4 => node_case(&mut u),
        5 => resampler_stream(&mut u),
        6 => vad_stream(&mut u),
        _ => sample_bytes(&mut u),
    }
}

/// Param values that sit on, just past and far past every declared range, plus wrong types.
fn param_value(u: &mut Bytes) -> Value {
    match u.below(40) {
        0 => json!(0),
        1 => json!(1),
        2 => json!(-1),
        3 => json!(10),
        4 => json!(20),
        5 => json!(30),
        6 => json!(8000),
        7 => json!(16000),
        8 => json!(44100),
        9 => json!(48000),
        10 => json!(192000),
        11 => json!(7999),
        12 => json!(192001),
        13 => json!(2000),
        14 => json!(2001),
        15 => json!(i64::MIN),
        16 => json!(i64::MAX),
        17 => json!(u64::MAX),
        18 => json!(0.5),
        19 => json!(-0.0),
        20 => json!(60.0),
        21 => json!(60.000001),
        22 => json!(-120.0),
        23 => json!(-120.000001),
        24 => json!(1e308),
        25 => json!(-1e308),
        26 => json!(16000.5),
        27 => json!(u.pick(&["f32", "i16", "i32", "low", "medium", "high", "very_high"])),
        28 => json!(u.pick(&["", "F32", "bogus", "float32", "HIGH"])),
        29 => json!(true),
        30 => json!(false),
        31 => Value::Null,
        32 => json!([]),
        33 => json!({}),
        34 => json!([16000]),
        35 => json!(u.u64() as i64),
        36 => json!(u.u32() as i64 - (1 << 31)),
        // Value::from turns non-finite floats into null, which is a case of its own.
        37 => json!(f64::from_bits(u.u64())),
        38 => json!(f32::from_bits(u.u32()) as f64),
        _ => json!((u.u16() as i64) * 10),
    }
}

fn rate(u: &mut Bytes) -> u32 {
    match u.below(20) {
        0 => 0,
        1 => 1,
        2 => 100,
        3 => 7999,
        4 => 8000,
        5 => 8001,
        6 => 11025,
        7 | 8 => 16000,
        9 => 22050,
        10 => 32000,
        11 => 44100,
        12 | 13 => 48000,
        14 => 48100,
        15 => 96000,
        16 => 192000,
        17 => 192001,
        18 => u32::MAX,
        _ => u.u32(),
    }
}

/// A rate the resampler accepts, mostly common ones. Arbitrary rates are multiples of 50 Hz: a
/// pair of coprime rates gives FFT blocks hundreds of thousands of frames long, which took up to
/// 50 s per input under ASan and cut the target to 5 execs/s (coprime pairs keep their unit test,
/// `coprime_rates_work_with_long_blocks`).
fn resampler_rate(u: &mut Bytes) -> u32 {
    match u.below(16) {
        0 => 8000 + (u.u32() % 3681) * 50,
        1 => rate(u),
        _ => u.pick(&[8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000, 192000]),
    }
}

fn channels(u: &mut Bytes) -> u16 {
    match u.below(16) {
        0 => 0,
        1..=6 => 1,
        7..=9 => 2,
        10 => 3,
        11 => 6,
        12 => 255,
        13 => 256,
        14 => u16::MAX,
        _ => u.u16(),
    }
}

/// `n` f32 samples: silence, a tone, raw bit patterns (NaN, inf, subnormals) or special values.
fn f32_samples(u: &mut Bytes, n: usize) -> Vec<f32> {
    const SPECIAL: [f32; 14] = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        1e-45,
        -0.0,
        1e30,
        1.1e30,
        1.0,
        -1.0,
        0.5,
        1e-20,
    ];
    match u.below(5) {
        0 => vec![0.0; n],
        1 => {
            let amp = u.pick(&[0.5f32, 1.0, 1e-6, 1e30, f32::MAX]);
            (0..n).map(|k| (k as f32 * 0.1).sin() * amp).collect()
        }
        2 => (0..n).map(|_| f32::from_bits(u.u32())).collect(),
        3 => (0..n).map(|_| u.pick(&SPECIAL)).collect(),
        _ => {
            // A tone with a few special values dropped in.
            let mut v: Vec<f32> = (0..n).map(|k| (k as f32 * 0.05).sin() * 0.3).collect();
            for _ in 0..u.below(4) {
                if n > 0 {
                    let at = u.u16() as usize % n;
                    v[at] = u.pick(&SPECIAL);
                }
            }
            v
        }
    }
}

fn samples(u: &mut Bytes, n: usize) -> Samples {
    match u.below(4) {
        0 => Samples::I16(match u.below(3) {
            0 => (0..n).map(|_| u.u16() as i16).collect(),
            1 => (0..n).map(|_| u.pick(&[i16::MIN, i16::MAX, 0, -1, 1])).collect(),
            _ => vec![0; n],
        }.into()),
        1 => Samples::I32(match u.below(3) {
            0 => (0..n).map(|_| u.u32() as i32).collect(),
            1 => (0..n).map(|_| u.pick(&[i32::MIN, i32::MAX, 0, -1, 1])).collect(),
            _ => vec![0; n],
        }.into()),
        _ => Samples::F32(f32_samples(u, n).into()),
    }
}

/// A buffer with arbitrary format, rate, channel count and length: including shapes
/// `AudioBuffer::new` would refuse (0 channels, rate 0, a partial last frame), since the fields
/// are public and nodes must not trust them.
fn buffer(u: &mut Bytes) -> AudioBuffer {
    let sample_rate = rate(u);
    let ch = channels(u);
    let frames = match u.below(8) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 479,
        _ => u.u16() as usize % 4096,
    };
    let mut n = frames.saturating_mul(ch.max(1) as usize).min(MAX_SAMPLES);
    if u.below(6) == 0 {
        n += 1; // a partial frame
    }
    AudioBuffer { samples: samples(u, n), sample_rate, channels: ch }
}

fn payload(u: &mut Bytes) -> Payload {
    match u.below(12) {
        0 => Payload::Json(json!({"x": 1})),
        1 => {
            let audio = buffer(u);
            Payload::Vad(Box::new(VadResult { segments: vec![(0.0, 0.01)], frames: vec![true], frame_duration_ms: 10, audio, probabilities: Vec::new() }))
        }
        2 => {
            let mut m = std::collections::BTreeMap::new();
            m.insert("audio".to_string(), Payload::Audio(buffer(u)));
            Payload::Map(m)
        }
        _ => Payload::Audio(buffer(u)),
    }
}

fn node_case(u: &mut Bytes) {
    let reg = registry();
    let names: Vec<&str> = reg.names().collect();
    let type_name = names[u.below(names.len())];
    let Some(node_type) = reg.get(type_name) else { return };
    let mut params = Map::new();
    for spec in &node_type.params {
        if u.below(4) != 0 {
            params.insert(spec.name.to_string(), param_value(u));
        }
    }
    if u.below(16) == 0 {
        params.insert("no_such_param".into(), param_value(u));
    }
    // Validation decides; a single-node manifest of a valid node also goes through the engine.
    let tree = json!({"version": "1.0", "nodes": [{"id": "n", "type": type_name, "params": params.clone()}]});
    let validated = manifest::validate(&tree, reg).ok();
    if validated.is_some() && u.below(8) == 0 {
        check_tree(&tree);
    }
    // The factory must not panic on unvalidated params either (it may refuse them).
    let raw: Params = params;
    let raw_node = (node_type.factory)(&NodeConfig { id: "n", params: &raw, worker: 0 });
    let mut node: Box<dyn Node> = match &validated {
        Some(g) => {
            let cfg = NodeConfig { id: "n", params: &g.nodes[0].params, worker: 0 };
            match (node_type.factory)(&cfg) {
                Ok(n) => n,
                Err(e) => panic!("{type_name} with validated params {:?} failed to build: {e}", g.nodes[0].params),
            }
        }
        None => match raw_node {
            Ok(n) => n,
            Err(_) => return,
        },
    };
    let valid_params = validated.map(|g| g.nodes[0].params.clone());
    for _ in 0..1 + u.below(3) {
        let entries: Vec<(String, Payload)> = match u.below(10) {
            0 => Vec::new(),
            1 | 2 => (0..1 + u.below(4)).map(|i| (format!("p{i}"), payload(u))).collect(),
            _ => vec![(crate::nodes::DEFAULT_PORT.to_string(), payload(u))],
        };
        let input = if entries.len() == 1 { Some(entries[0].1.clone()) } else { None };
        let result = node.process(Inputs::from_ports(entries));
        if let (Ok(out), Some(input), Some(params)) = (&result, &input, &valid_params) {
            check_output(type_name, params, input, out);
        }
    }
}

/// Equality that treats NaN as equal to itself (`PartialEq` on f32 does not): Debug text shows
/// every sample exactly (shortest round-trip digits) and prints every NaN as `NaN`.
fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// What each built-in node promises about the shape of its output for one input.
fn check_output(type_name: &str, params: &Params, input: &Payload, out: &Payload) {
    use crate::nodes::{channel_mix, format, gain, mix, passthrough, resample, segment, vad};
    if type_name == passthrough::TYPE_NAME {
        assert!(same(out, input), "PassthroughNode changed its input");
        return;
    }
    let Some(a) = input.audio() else { panic!("{type_name} accepted a {} payload", input.kind()) };
    let frames = a.samples.len() / a.channels.max(1) as usize;
    let int = |k: &str| params.get(k).and_then(Value::as_u64);
    match (type_name, out) {
        (t, Payload::Audio(o)) if t == gain::TYPE_NAME || t == mix::TYPE_NAME => {
            assert_eq!((o.samples.len(), o.sample_rate, o.channels), (a.samples.len(), a.sample_rate, a.channels), "{t} shape");
        }
        (t, Payload::Audio(o)) if t == format::TYPE_NAME => {
            let target = params.get("target_format").and_then(Value::as_str).and_then(SampleFormat::parse);
            assert_eq!((o.samples.len(), Some(o.samples.format())), (a.samples.len(), target), "format conversion");
        }
        (t, Payload::Audio(o)) if t == resample::TYPE_NAME => {
            let out_rate = int("output_rate").unwrap_or(0) as u32;
            assert_eq!(o.sample_rate, out_rate, "resampled rate");
            assert_eq!(o.channels, a.channels, "resampled channels");
            let expected = output_frames(frames, a.sample_rate, out_rate) * a.channels as usize;
            assert_eq!(o.samples.len(), expected, "resampled length for {frames} frames {} -> {out_rate} Hz", a.sample_rate);
        }
        (t, Payload::Vad(v)) if t == vad::TYPE_NAME => {
            let frame_len = (a.sample_rate as u64 * v.frame_duration_ms as u64 / 1000) as usize;
            assert_eq!(v.frames.len(), frames / frame_len.max(1), "one VAD decision per whole frame");
            assert!(same(&v.audio, a), "VADNode changed the audio it passes on");
        }
        (t, Payload::Audio(o)) if t == channel_mix::TYPE_NAME => {
            assert_eq!(o.sample_rate, a.sample_rate, "ChannelMixNode keeps the rate");
            if o.channels != a.channels {
                assert_eq!(o.samples.len(), frames * o.channels as usize, "ChannelMixNode keeps the frames");
            } else {
                assert!(same(o, a), "ChannelMixNode changed audio that had its channel count already");
            }
        }
        (t, Payload::Clips(clips)) if t == segment::TYPE_NAME => {
            let mut end = 0;
            for c in clips {
                assert!(c.start_frame >= end && c.end_frame() <= frames as u64, "clips in order, inside the audio");
                assert!(c.audio.frames() > 0, "no empty clip");
                end = c.end_frame();
            }
        }
        (t, o) => panic!("{t} returned a {} payload", o.kind()),
    }
}

/// The streaming resampler: arbitrary rates, channels, quality and chunking. Properties: a chunk
/// that is refused is not consumed (the stream of accepted chunks equals `process_interleaved`
/// on their concatenation, bit for bit); a stream yields `round(frames * out / in)` frames.
fn resampler_stream(u: &mut Bytes) {
    let (input_rate, output_rate) = (resampler_rate(u), resampler_rate(u));
    let ch = match u.below(8) {
        0 => 0,
        1..=4 => 1,
        5 | 6 => 2,
        _ => 1 + u.below(8),
    };
    let quality = u.pick(&[Quality::Low, Quality::Medium, Quality::High, Quality::VeryHigh]);
    let Ok(mut r) = Resampler::new(input_rate, output_rate, ch, quality) else { return };
    let mut accepted: Vec<f32> = Vec::new();
    let mut streamed: Vec<f32> = Vec::new();
    for _ in 0..u.below(6) {
        let frames = match u.below(4) {
            0 => u.below(3),
            _ => u.u16() as usize % 3000,
        };
        let chunk = f32_samples(u, (frames * ch).min(MAX_SAMPLES / 4));
        let before = streamed.len();
        match r.push(&chunk, &mut streamed) {
            Ok(()) => accepted.extend_from_slice(&chunk),
            Err(e) => {
                assert_eq!(streamed.len(), before, "a refused chunk produced output: {e}");
            }
        }
    }
    if let Err(e) = r.finish(&mut streamed) {
        panic!("finish failed after accepted chunks: {e}");
    }
    let frames = accepted.len() / ch;
    assert_eq!(streamed.len(), output_frames(frames, input_rate, output_rate) * ch, "streamed length");
    let mut whole = Vec::new();
    if let Err(e) = r.process_interleaved(&accepted, &mut whole) {
        panic!("the whole of the accepted chunks was refused: {e}");
    }
    assert!(
        whole.len() == streamed.len() && whole.iter().zip(&streamed).all(|(a, b)| a.to_bits() == b.to_bits()),
        "streamed output differs from the whole-buffer output ({input_rate} -> {output_rate} Hz, {ch} ch, {quality:?})"
    );
}

/// The streaming VAD: arbitrary config and chunking. Properties: a refused chunk leaves the
/// state unchanged, and the decisions over the accepted chunks equal `detect` on their
/// concatenation.
fn vad_stream(u: &mut Bytes) {
    let config = VadConfig {
        sample_rate: match u.below(4) {
            0 => rate(u),
            _ => u.pick(&[8000, 16000, 16100, 32000, 44100, 48000]),
        },
        frame_duration_ms: match u.below(8) {
            0 => u.u32(),
            1 => u.pick(&[0, 5, 15, 31]),
            _ => u.pick(&[10, 20, 30]),
        },
        threshold_db: match u.below(4) {
            0 => {
                let any = f64::from_bits(u.u64());
                Some(u.pick(&[0.0, 3.5, 60.0, -1.0, f64::NAN, f64::INFINITY, 1e308, any]))
            }
            _ => None,
        },
        hangover_ms: match u.below(6) {
            0 => u.u32(),
            1 => u.pick(&[0, 2000, 2001, u32::MAX]),
            _ => 200,
        },
        bridge_ms: match u.below(6) {
            0 => u.u32(),
            1 => u.pick(&[0, 30, 2000, 2001, u32::MAX]),
            _ => 390,
        },
    };
    let Ok(mut state) = VadState::new(config.clone()) else { return };
    let mut accepted: Vec<f32> = Vec::new();
    let mut decisions = Vec::new();
    for _ in 0..u.below(6) {
        let n = match u.below(4) {
            0 => u.below(3),
            _ => u.u16() as usize % 4000,
        };
        let chunk = f32_samples(u, n.min(MAX_SAMPLES / 4));
        match state.push(&chunk) {
            Ok(d) => {
                accepted.extend_from_slice(&chunk);
                decisions.extend(d);
            }
            Err(_) => assert!(chunk.iter().any(|x| !x.is_finite()), "a finite chunk was refused"),
        }
    }
    decisions.extend(state.finish());
    assert_eq!(decisions.len(), accepted.len() / state.frame_len(), "one decision per whole frame");
    match detect(&accepted, config) {
        Ok((_, whole)) => assert_eq!(whole, decisions, "streamed decisions differ from whole-buffer ones"),
        Err(e) => panic!("the whole of the accepted chunks was refused: {e}"),
    }
}

/// Sample bytes in each format: decoding, the byte round trip and every conversion.
fn sample_bytes(u: &mut Bytes) {
    let format = u.pick(&[SampleFormat::F32, SampleFormat::I16, SampleFormat::I32]);
    let skip = u.below(4); // misaligned slices too
    let bytes = u.data.get(skip.min(u.data.len())..).unwrap_or(&[]);
    let Ok(s) = Samples::from_le_bytes(format, bytes) else { return };
    assert_eq!(s.to_le_bytes(), bytes, "little-endian byte round trip");
    for target in [SampleFormat::F32, SampleFormat::I16, SampleFormat::I32] {
        let c = s.clone().convert(target);
        assert_eq!((c.len(), c.format()), (s.len(), target), "conversion keeps the length");
    }
    let ch = (bytes.first().copied().unwrap_or(1) % 5) as u16;
    if let Ok(a) = AudioBuffer::new(s, 16000, ch) {
        let _ = crate::nodes::vad::to_mono(&a);
    }
}
