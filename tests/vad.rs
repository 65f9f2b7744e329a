//! VADNode and VadState behaviour: accuracy in noise (frame-level F1 against the synthetic ground
//! truth, printed as a table with `cargo test --test vad -- --nocapture`), silence, tones and
//! noise-only input, the frame-count rule, segments vs frames vs hangover, streaming equivalence,
//! input formats and bad input.

use remotemedia::data::{AudioBuffer, Payload, Samples, VadResult};
use remotemedia::nodes::vad::{self, segments, VadConfig, VadState};
use remotemedia::nodes::{Inputs, Node, NodeConfig, Params, Registry};
use remotemedia::synth::{self, NoiseKind};
use remotemedia::NodeErrorKind;
use serde_json::json;

fn node(params: serde_json::Value) -> Box<dyn Node> {
    let reg = Registry::builtin();
    let t = reg.get(vad::TYPE_NAME).expect("VADNode registered");
    let params: Params = params.as_object().cloned().unwrap_or_default();
    (t.factory)(&NodeConfig { id: "vad", params: &params, worker: 0 }).expect("node builds")
}

fn run(node: &mut dyn Node, audio: AudioBuffer) -> Result<VadResult, remotemedia::NodeError> {
    match node.process(Inputs::single(Payload::Audio(audio)))? {
        Payload::Vad(v) => Ok(*v),
        other => panic!("expected a VAD result, got {}", other.kind()),
    }
}

/// (precision, recall, F1) of `pred` against `truth`.
fn prf(pred: &[bool], truth: &[bool]) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fnn) = (0.0, 0.0, 0.0);
    for (p, t) in pred.iter().zip(truth) {
        match (p, t) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fnn += 1.0,
            _ => {}
        }
    }
    let p = tp / f64::max(tp + fp, 1.0);
    let r = tp / f64::max(tp + fnn, 1.0);
    (p, r, 2.0 * tp / f64::max(2.0 * tp + fp + fnn, 1.0))
}

/// Frame F1 of the default detector on `seconds` of speech-like signal in `kind` noise at `snr`.
fn f1_case(rate: u32, ms: u32, kind: NoiseKind, snr: f64, seconds: f64, seed: u64) -> (f64, f64, f64) {
    let (speech, truth) = synth::speech_like(rate, seconds, seed);
    let nz = synth::noise(kind, speech.len(), rate, seed + 1000);
    let x = synth::mix_at_snr(&speech, &truth, &nz, snr);
    let (_, frames) = vad::detect(&x, VadConfig::new(rate, ms)).expect("detect");
    let ft = synth::frame_truth(&truth, VadConfig::new(rate, ms).frame_len());
    assert_eq!(frames.len(), ft.len());
    prf(&frames, &ft)
}

// Measured (60 s, seed 21, 16 kHz, 30 ms, defaults), F1 at 20 / 10 / 5 / 0 dB:
//   white 0.888 0.877 0.871 0.869 | pink 0.889 0.885 0.876 0.866 | hum50, hum60 0.891 at every SNR.
// Precision is ~0.82 everywhere because the 200 ms hangover extends each utterance beyond its
// ground truth; recall falls from ~0.97 at 20 dB to ~0.91 at 0 dB. Hum sits mostly below the
// 200 Hz band edge and is stationary, so its SNR hardly matters. Floors sit ~3 points below.
#[test]
fn f1_table_16k() {
    let floors = [(20.0, 0.86), (10.0, 0.85), (5.0, 0.84), (0.0, 0.83)];
    // Built as one string: tests run in parallel and would interleave line by line.
    let mut table = String::from("\nframe-level F1 (precision/recall), 16 kHz, 30 ms frames, defaults, 60 s of speech-like signal\n");
    table += &format!("{:<7}{}\n", "noise", floors.map(|(s, _)| format!("{:>18}", format!("{s} dB"))).join(""));
    let mut failures = Vec::new();
    for kind in [NoiseKind::White, NoiseKind::Pink, NoiseKind::Hum50, NoiseKind::Hum60] {
        table += &format!("{:<7}", kind.name());
        for (snr, floor) in floors {
            let (p, r, f) = f1_case(16000, 30, kind, snr, 60.0, 21);
            table += &format!("{:>18}", format!("{f:.3} ({p:.2}/{r:.2})"));
            if f < floor {
                failures.push(format!("{kind:?} at {snr} dB: F1 {f:.3} below {floor}"));
            }
        }
        table += "\n";
    }
    println!("{table}");
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn other_rates_and_frame_lengths() {
    // Measured F1 0.850 (48 kHz, 30 ms) to 0.909 (16 kHz, 10 ms).
    let mut table = String::from("\nframe-level F1, pink noise at 10 dB, 30 s of speech-like signal\n");
    let mut failures = Vec::new();
    for rate in [8000u32, 16000, 32000, 44100, 48000] {
        for ms in [10, 20, 30] {
            let (p, r, f) = f1_case(rate, ms, NoiseKind::Pink, 10.0, 30.0, 5);
            table += &format!("{rate:>5} Hz {ms:>2} ms: F1 {f:.3} (p {p:.2}, r {r:.2})\n");
            if f < 0.82 {
                failures.push(format!("{rate} Hz {ms} ms: F1 {f:.3}"));
            }
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn silence_gives_no_segments() {
    for rate in [8000u32, 16000, 48000] {
        let v = run(&mut *node(json!({})), AudioBuffer::mono_f32(vec![0.0; rate as usize * 3], rate)).expect("runs");
        assert!(v.segments.is_empty());
        assert_eq!(v.frames.len(), 100);
        assert!(v.frames.iter().all(|f| !f));
    }
    // Very quiet noise (-80 dBFS) is below the absolute gate even when it starts after digital silence.
    let mut x = vec![0f32; 16000];
    x.extend(synth::noise(NoiseKind::White, 32000, 16000, 1).iter().map(|s| s * 1e-3));
    let (segs, _) = vad::detect(&x, VadConfig::new(16000, 30)).expect("detect");
    assert!(segs.is_empty(), "{segs:?}");
}

#[test]
fn empty_buffer() {
    let v = run(&mut *node(json!({})), AudioBuffer::mono_f32(vec![], 16000)).expect("runs");
    assert!(v.frames.is_empty() && v.segments.is_empty());
    let mut s = VadState::new(VadConfig::new(16000, 10)).expect("state");
    assert!(s.push(&[]).expect("push").is_empty());
    assert!(s.finish().is_empty());
}

#[test]
fn steady_tone_and_noise_are_not_speech() {
    // A tone present from the start is its own noise floor: never speech.
    let tone = synth::tone(1000.0, 16000, 16000 * 5, 0.5);
    let (segs, _) = vad::detect(&tone, VadConfig::new(16000, 30)).expect("detect");
    assert!(segs.is_empty(), "{segs:?}");
    // A tone switching on after 1 s of silence is an onset (speech-like) until the minimum-statistics
    // floor, about 2 s long, has caught up with it; afterwards it is background.
    let mut x = vec![0f32; 16000];
    x.extend(synth::tone(440.0, 16000, 16000 * 6, 0.3));
    let (_, frames) = vad::detect(&x, VadConfig::new(16000, 30)).expect("detect");
    let after = (4.0 / 0.03) as usize;
    assert!(frames[..40].iter().any(|f| *f), "the onset of the tone is detected");
    assert!(frames[after..].iter().all(|f| !f), "a steady tone is background after the floor adapts");
    // Noise alone: hardly any speech frames.
    for kind in [NoiseKind::White, NoiseKind::Pink, NoiseKind::Hum50] {
        let nz = synth::noise(kind, 16000 * 30, 16000, 9);
        let (_, frames) = vad::detect(&nz, VadConfig::new(16000, 30)).expect("detect");
        let frac = frames.iter().filter(|f| **f).count() as f64 / frames.len() as f64;
        println!("{kind:?} alone: {:.2}% speech frames", frac * 100.0);
        assert!(frac < 0.03, "{kind:?}: {frac}");
    }
}

#[test]
fn frame_count_is_floor_and_partial_frame_is_dropped() {
    for (rate, ms) in [(16000u32, 10u32), (16000, 20), (16000, 30), (8000, 30), (48000, 20)] {
        let fl = (rate * ms / 1000) as usize;
        for n in [0, fl - 1, fl, fl + 1, 10 * fl + fl / 2] {
            let v = run(&mut *node(json!({ "frame_duration_ms": ms })), AudioBuffer::mono_f32(vec![0.01; n], rate)).expect("runs");
            assert_eq!(v.frames.len(), n / fl, "rate {rate} ms {ms} n {n}");
            assert_eq!(v.frame_duration_ms, ms);
        }
    }
}

#[test]
fn segments_follow_frames_and_hangover() {
    let (speech, truth) = synth::speech_like(16000, 30.0, 3);
    let nz = synth::noise(NoiseKind::Pink, speech.len(), 16000, 4);
    let x = synth::mix_at_snr(&speech, &truth, &nz, 10.0);
    for ms in [10u32, 20, 30] {
        let mut bare_cfg = VadConfig::new(16000, ms);
        bare_cfg.hangover_ms = 0;
        let (_, bare) = vad::detect(&x, bare_cfg).expect("detect");
        let v = run(&mut *node(json!({ "frame_duration_ms": ms, "hangover_ms": 200 })), AudioBuffer::mono_f32(x.clone(), 16000)).expect("runs");
        // Segments are exactly the runs of speech frames, in seconds.
        assert_eq!(v.segments, segments(&v.frames, ms));
        assert!(!v.segments.is_empty());
        let fs = ms as f64 / 1000.0;
        let mut covered = 0usize;
        for (s, e) in &v.segments {
            assert!(e > s);
            let (a, b) = ((s / fs).round() as usize, (e / fs).round() as usize);
            assert!(v.frames[a..b].iter().all(|f| *f));
            assert!(a == 0 || !v.frames[a - 1]);
            assert!(b == v.frames.len() || !v.frames[b]);
            covered += b - a;
        }
        assert_eq!(covered, v.frames.iter().filter(|f| **f).count());
        // The hangover only adds frames: every speech frame without it is speech with it, and every
        // segment outlasts its last hangover-free speech frame by the hangover (or hits the end).
        let hang = 200u32.div_ceil(ms) as usize;
        assert!(bare.iter().zip(&v.frames).all(|(b, h)| !b || *h));
        for (s, e) in &v.segments {
            let (a, b) = ((s / fs).round() as usize, (e / fs).round() as usize);
            if let Some(last) = (a..b).rev().find(|i| bare[*i]) {
                assert!(b == v.frames.len() || b - 1 - last >= hang, "segment {s}-{e}: last raw {last}, end {b}");
            }
        }
        assert!(v.frames.iter().filter(|f| **f).count() > bare.iter().filter(|f| **f).count());
    }
}

#[test]
fn streaming_in_chunks_matches_whole_buffer() {
    let (speech, truth) = synth::speech_like(16000, 20.0, 8);
    let nz = synth::noise(NoiseKind::White, speech.len(), 16000, 9);
    let x = synth::mix_at_snr(&speech, &truth, &nz, 5.0);
    for ms in [10u32, 20, 30] {
        let (_, whole) = vad::detect(&x, VadConfig::new(16000, ms)).expect("detect");
        let mut s = VadState::new(VadConfig::new(16000, ms)).expect("state");
        let mut got = Vec::new();
        let mut rng = synth::Rng::new(ms as u64);
        let mut i = 0;
        while i < x.len() {
            let n = (rng.int(0, 1500) as usize).min(x.len() - i);
            got.extend(s.push(&x[i..i + n]).expect("push"));
            i += n;
        }
        got.extend(s.finish());
        assert_eq!(got, whole, "{ms} ms");
        assert_eq!(s.frames_decided() as usize, whole.len());
        // After reset the same state gives the same answer again.
        s.reset();
        assert_eq!(s.push(&x).expect("push"), whole);
    }
}

#[test]
fn formats_and_channels() {
    let (speech, truth) = synth::speech_like(16000, 10.0, 12);
    let nz = synth::noise(NoiseKind::Pink, speech.len(), 16000, 13);
    let x = synth::mix_at_snr(&speech, &truth, &nz, 10.0);
    let mut n = node(json!({}));
    let mono = run(&mut *n, AudioBuffer::mono_f32(x.clone(), 16000)).expect("runs");
    // Identical channels average to the mono signal exactly.
    let stereo: Vec<f32> = x.iter().flat_map(|s| [*s, *s]).collect();
    let st = run(&mut *n, AudioBuffer::new(Samples::F32(stereo.clone().into()), 16000, 2).expect("buffer")).expect("runs");
    assert_eq!(st.frames, mono.frames);
    assert_eq!(st.audio.samples, Samples::F32(stereo.into()), "audio passed on unchanged");
    // Opposite-phase channels cancel: silence.
    let anti: Vec<f32> = x.iter().flat_map(|s| [*s, -*s]).collect();
    let a = run(&mut *n, AudioBuffer::new(Samples::F32(anti.into()), 16000, 2).expect("buffer")).expect("runs");
    assert!(a.segments.is_empty());
    // i16 and i32 are scaled to ±1: decisions match f32 up to quantisation.
    let i16s: Vec<i16> = x.iter().map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect();
    let i32s: Vec<i32> = x.iter().map(|s| (*s as f64 * 2147483648.0).round().clamp(-2147483648.0, 2147483647.0) as i32).collect();
    for samples in [Samples::I16(i16s.into()), Samples::I32(i32s.into())] {
        let v = run(&mut *n, AudioBuffer::new(samples, 16000, 1).expect("buffer")).expect("runs");
        let agree = v.frames.iter().zip(&mono.frames).filter(|(a, b)| a == b).count() as f64 / v.frames.len() as f64;
        assert!(agree >= 0.99, "agreement {agree}");
    }
    // Each run is independent: the same input gives the same result again.
    assert_eq!(run(&mut *n, AudioBuffer::mono_f32(x, 16000)).expect("runs"), mono);
}

#[test]
fn fixed_threshold() {
    let (speech, truth) = synth::speech_like(16000, 20.0, 14);
    let nz = synth::noise(NoiseKind::White, speech.len(), 16000, 15);
    let x = synth::mix_at_snr(&speech, &truth, &nz, 20.0);
    let count = |t: f64| {
        let v = run(&mut *node(json!({ "threshold": t })), AudioBuffer::mono_f32(x.clone(), 16000)).expect("runs");
        v.frames.iter().filter(|f| **f).count()
    };
    let (lo, mid, hi) = (count(3.0), count(10.0), count(60.0));
    assert!(lo >= mid && mid > 0, "{lo} {mid}");
    assert_eq!(hi, 0, "60 dB above the floor is never reached by a -14 dBFS signal");
}

#[test]
fn bad_input_is_rejected_without_panic() {
    let mut n = node(json!({}));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = vec![0.1f32; 16000];
        x[1234] = bad;
        let e = run(&mut *n, AudioBuffer::mono_f32(x, 16000)).expect_err("non-finite sample");
        assert_eq!(e.kind, NodeErrorKind::InvalidInput);
        assert!(e.message.contains("non-finite") && e.message.contains("1234"), "{}", e.message);
    }
    for rate in [7999u32, 22050, 96000, 1, 8001] {
        let e = run(&mut *n, AudioBuffer::mono_f32(vec![0.0; 1000], rate)).expect_err("bad rate");
        assert_eq!(e.kind, NodeErrorKind::InvalidInput, "{rate}");
    }
    let e = n.process(Inputs::single(Payload::Json(json!(1)))).expect_err("not audio");
    assert_eq!(e.kind, NodeErrorKind::InvalidInput);
    // A NaN pushed into a stream leaves the stream untouched.
    let mut s = VadState::new(VadConfig::new(16000, 30)).expect("state");
    s.push(&[0.1; 700]).expect("push");
    assert!(s.push(&[0.1, f32::NAN]).is_err());
    assert_eq!(s.frames_decided(), 1);
    // Huge but finite samples overflow the f32 spectrum: no panic, no error, and the stream recovers.
    let mut s = VadState::new(VadConfig::new(16000, 30)).expect("state");
    let d = s.push(&vec![3e38f32; 480 * 4]).expect("finite input is accepted");
    assert_eq!(d.len(), 4);
    let (speech, truth) = synth::speech_like(16000, 10.0, 30);
    let nz = synth::noise(NoiseKind::Pink, speech.len(), 16000, 31);
    let x = synth::mix_at_snr(&speech, &truth, &nz, 10.0);
    s.push(&vec![0.0; 16000 * 3]).expect("push");
    assert!(s.push(&x).expect("push").iter().any(|d| *d), "still detects speech afterwards");
    let stereo = AudioBuffer::new(Samples::F32(vec![3e38; 9600].into()), 16000, 2).expect("buffer");
    assert!(run(&mut *n, stereo).is_ok(), "channel mean of huge values does not overflow");
    // Bad params fail when the node is built.
    let reg = Registry::builtin();
    let t = reg.get(vad::TYPE_NAME).expect("registered");
    for p in [json!({"frame_duration_ms": 25}), json!({"hangover_ms": -1}), json!({"threshold": "x"})] {
        let params: Params = p.as_object().cloned().unwrap_or_default();
        assert!((t.factory)(&NodeConfig { id: "v", params: &params, worker: 0 }).is_err(), "{p}");
    }
}
