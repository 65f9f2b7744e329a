//! SileroVADNode in Rust: a stream pushed in pieces of any size gives exactly the whole buffer's
//! probabilities, frames and segments (both rates, both modes); formats, channels and bad input.
//! Parity with onnxruntime and silero-vad's own get_speech_timestamps is checked where those run:
//! tests/python/test_silero.py.

use remotemedia::data::{AudioBuffer, Payload, Samples, VadResult};
use remotemedia::nodes::silero_vad::{self, Mode, SileroParams};
use remotemedia::nodes::{Inputs, Node, NodeConfig, Params, Registry};
use remotemedia::synth::{self, NoiseKind};
use remotemedia::NodeErrorKind;
use serde_json::json;

fn node(params: serde_json::Value) -> Box<dyn Node> {
    let reg = Registry::builtin();
    let t = reg.get(silero_vad::TYPE_NAME).expect("SileroVADNode registered");
    let params: Params = params.as_object().cloned().unwrap_or_default();
    (t.factory)(&NodeConfig { id: "silero", params: &params, worker: 0 }).expect("node builds")
}

fn vad(p: Payload) -> VadResult {
    match p {
        Payload::Vad(v) => *v,
        other => panic!("expected a VAD result, got {}", other.kind()),
    }
}

fn run(node: &mut dyn Node, audio: AudioBuffer) -> Result<VadResult, remotemedia::NodeError> {
    Ok(vad(node.process(Inputs::single(Payload::Audio(audio)))?))
}

/// Speech-like signal with pauses in pink noise at 10 dB.
fn speechy(rate: u32, seconds: f64) -> Vec<f32> {
    let (speech, truth) = synth::speech_like(rate, seconds, 7);
    let noise = synth::noise(NoiseKind::Pink, speech.len(), rate, 8);
    synth::mix_at_snr(&speech, &truth, &noise, 10.0)
}

/// Pushes `x` in pieces cycling through `sizes`, then closes: the session's results added up.
fn streamed(params: &serde_json::Value, x: &[f32], rate: u32, sizes: &[usize]) -> (Vec<f32>, Vec<bool>, Vec<(f64, f64)>) {
    let mut n = node(params.clone());
    let (mut probs, mut frames, mut segments) = (Vec::new(), Vec::new(), Vec::new());
    let mut add = |v: VadResult| {
        assert_eq!(v.frame_duration_ms, 32);
        probs.extend(v.probabilities);
        frames.extend(v.frames);
        segments.extend(v.segments);
    };
    let mut at = 0;
    let mut k = 0;
    while at < x.len() {
        let end = (at + sizes[k % sizes.len()]).min(x.len());
        add(vad(n.push(Inputs::single(Payload::Audio(AudioBuffer::mono_f32(x[at..end].to_vec(), rate)))).expect("push")));
        at = end;
        k += 1;
    }
    add(vad(n.finish(None).expect("finish").expect("a final result")));
    (probs, frames, segments)
}

#[test]
fn streams_in_any_pieces_give_the_whole_buffer_result() {
    for rate in [16000u32, 8000] {
        let x = speechy(rate, 6.0);
        for params in [json!({}), json!({"mode": "raw"}), json!({"max_speech_duration_s": 0.8, "speech_pad_ms": 60})] {
            let whole = run(node(params.clone()).as_mut(), AudioBuffer::mono_f32(x.clone(), rate)).expect("run");
            let chunks = rate as usize * 32 / 1000;
            assert_eq!(whole.probabilities.len(), x.len().div_ceil(chunks));
            assert_eq!(whole.frames.len(), whole.probabilities.len());
            assert!(!whole.segments.is_empty(), "{rate} Hz {params}: speech found");
            for sizes in [vec![rate as usize / 50], vec![rate as usize * 37 / 1000], vec![1, 700, 3, 5000, 511, 513], vec![x.len()]] {
                let (p, f, s) = streamed(&params, &x, rate, &sizes);
                assert_eq!(p, whole.probabilities, "{rate} Hz {params} pieces {sizes:?}");
                assert_eq!(f, whole.frames, "{rate} Hz {params} pieces {sizes:?}");
                assert_eq!(s, whole.segments, "{rate} Hz {params} pieces {sizes:?}");
            }
        }
    }
}

#[test]
fn raw_mode_frames_are_the_threshold_and_segments_their_runs() {
    let x = speechy(16000, 5.0);
    let v = run(node(json!({"mode": "raw", "threshold": 0.3})).as_mut(), AudioBuffer::mono_f32(x.clone(), 16000)).unwrap();
    let want: Vec<bool> = v.probabilities.iter().map(|&p| p as f64 >= 0.3).collect();
    assert_eq!(v.frames, want);
    assert_eq!(v.segments, remotemedia::nodes::vad::segments(&v.frames, 32).iter().map(|&(s, e)| (s, e.min(x.len() as f64 / 16000.0))).collect::<Vec<_>>());
}

#[test]
fn empty_and_one_sample_buffers() {
    let mut n = node(json!({}));
    let v = run(n.as_mut(), AudioBuffer::mono_f32(vec![], 16000)).unwrap();
    assert!(v.probabilities.is_empty() && v.frames.is_empty() && v.segments.is_empty());
    let v = run(n.as_mut(), AudioBuffer::mono_f32(vec![0.3], 8000)).unwrap();
    assert_eq!(v.probabilities.len(), 1);
    assert!(v.probabilities[0] > 0.0 && v.probabilities[0] < 1.0);
    assert!(v.segments.is_empty());
    // A session closed before any audio reports nothing.
    assert!(node(json!({})).finish(None).unwrap().is_none());
}

#[test]
fn formats_and_channels() {
    let x = speechy(16000, 3.0);
    let mut n = node(json!({}));
    let mono = run(n.as_mut(), AudioBuffer::mono_f32(x.clone(), 16000)).unwrap();
    // i16 is scaled by 1/32768 before the network.
    let q: Vec<i16> = x.iter().map(|v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect();
    let qf: Vec<f32> = q.iter().map(|&v| v as f32 / 32768.0).collect();
    let from_i16 = run(n.as_mut(), AudioBuffer { samples: Samples::I16(q.into()), sample_rate: 16000, channels: 1 }).unwrap();
    assert_eq!(from_i16.probabilities, run(n.as_mut(), AudioBuffer::mono_f32(qf, 16000)).unwrap().probabilities);
    // Identical channels average to the mono signal; the audio passes through unchanged.
    let stereo: Vec<f32> = x.iter().flat_map(|&v| [v, v]).collect();
    let st = run(n.as_mut(), AudioBuffer { samples: Samples::F32(stereo.clone().into()), sample_rate: 16000, channels: 2 }).unwrap();
    assert_eq!(st.probabilities, mono.probabilities);
    assert_eq!(st.audio.samples, Samples::F32(stereo.into()));
}

#[test]
fn bad_input_is_an_error_and_the_next_run_works() {
    let mut n = node(json!({}));
    let x = speechy(16000, 2.0);
    let good = run(n.as_mut(), AudioBuffer::mono_f32(x.clone(), 16000)).unwrap();
    let e = run(n.as_mut(), AudioBuffer::mono_f32(x.clone(), 44100)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::InvalidInput);
    assert!(e.message.contains("needs audio at 16000 or 8000 Hz, received 44100 Hz; put an AudioResampleNode before it"), "{}", e.message);
    let mut bad = x.clone();
    bad[1234] = f32::NAN;
    let e = run(n.as_mut(), AudioBuffer::mono_f32(bad, 16000)).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::InvalidInput);
    assert!(e.message.contains("non-finite sample (NaN) at index 1234"), "{}", e.message);
    assert_eq!(run(n.as_mut(), AudioBuffer::mono_f32(x.clone(), 16000)).unwrap(), good);
    // A stream cannot change rate.
    n.push(Inputs::single(Payload::Audio(AudioBuffer::mono_f32(x[..1000].to_vec(), 16000)))).unwrap();
    let e = n.push(Inputs::single(Payload::Audio(AudioBuffer::mono_f32(x[..1000].to_vec(), 8000)))).unwrap_err();
    assert!(e.message.contains("this stream started with audio at 16000 Hz"), "{}", e.message);
}

#[test]
fn params_are_read_and_checked_from_one_struct() {
    let d = SileroParams::default();
    assert_eq!((d.threshold, d.neg_threshold(), d.mode), (0.5, 0.35, Mode::Timestamps));
    assert_eq!(SileroParams::from_params(&d.to_params()).unwrap(), d);
    let t = Registry::builtin().get(silero_vad::TYPE_NAME).cloned().unwrap();
    for spec in &t.params {
        let default = d.to_params()[spec.name].clone();
        assert_eq!(spec.default.clone().unwrap_or(serde_json::Value::Null), default, "{}", spec.name);
    }
    for (params, msg) in [
        (json!({"threshold": 1.5}), "param 'threshold' must be a number from 0 to 1, found 1.5"),
        (json!({"speech_pad_ms": -1}), "param 'speech_pad_ms' must be an integer from 0 to 10000, found -1"),
        (json!({"mode": "fast"}), "param 'mode' must be one of \"timestamps\", \"raw\", found \"fast\""),
        (json!({"threshold": 0.4, "neg_threshold": 0.6}), "param 'neg_threshold' must be at most threshold (0.4), found 0.6"),
    ] {
        let p: Params = params.as_object().cloned().unwrap();
        let e = (t.factory)(&NodeConfig { id: "s", params: &p, worker: 0 }).err().expect("refused");
        assert_eq!(e.message, msg);
    }
}
