//! `SegmentNode` on analytic signals: clips hold exactly the speech segments' frames, padding stops
//! at the ends and halfway to a neighbour, long clips split at their quietest point, and the clips
//! of a `VADNode → SegmentNode` pipeline are the VAD's segments cut from its audio, on a whole run
//! and at the end of a streaming session; clips survive serde (the way they cross processes).

use remotemedia::data::{AudioBuffer, Clip, Payload, Samples, VadResult};
use remotemedia::manifest;
use remotemedia::nodes::segment::{cut, spans, SegmentParams};
use remotemedia::nodes::Registry;
use remotemedia::{RunInput, WorkerPool};

const RATE: u32 = 16_000;

fn none() -> SegmentParams {
    SegmentParams { pad_ms: 0.0, min_duration_s: 0.0, max_duration_s: None, merge_gap_ms: 0.0 }
}

/// A 300 Hz tone at half scale inside `bursts` (seconds), silence elsewhere.
fn bursts(seconds: f64, bursts: &[(f64, f64)]) -> AudioBuffer {
    let n = (seconds * RATE as f64) as usize;
    let mut v = vec![0.0f32; n];
    for &(a, b) in bursts {
        let (a, b) = ((a * RATE as f64) as usize, (b * RATE as f64) as usize);
        for (i, x) in v.iter_mut().enumerate().take(b).skip(a) {
            *x = 0.5 * (2.0 * std::f64::consts::PI * 300.0 * i as f64 / RATE as f64).sin() as f32;
        }
    }
    AudioBuffer::mono_f32(v, RATE)
}

fn vad_result(audio: AudioBuffer, segments: Vec<(f64, f64)>) -> VadResult {
    VadResult { segments, frames: Vec::new(), frame_duration_ms: 30, audio, probabilities: Vec::new() }
}

fn samples(a: &AudioBuffer) -> &[f32] {
    a.as_f32().expect("f32 audio")
}

#[test]
fn without_padding_merging_or_dropping_clips_hold_exactly_the_segments_frames() {
    let audio = bursts(4.0, &[(0.3, 1.2), (2.0, 3.5)]);
    let segments = vec![(0.27, 1.41), (1.98, 3.72), (3.9, 4.5)];
    let clips = cut(&vad_result(audio.clone(), segments.clone()), &none());
    assert_eq!(clips.len(), 3);
    let expected: usize = [(4320, 22560), (31680, 59520), (62400, 64000)].iter().map(|(a, b)| b - a).sum();
    assert_eq!(clips.iter().map(|c| c.audio.frames()).sum::<usize>(), expected);
    for c in &clips {
        let (a, b) = (c.start_frame as usize, c.end_frame() as usize);
        assert_eq!(samples(&c.audio), &samples(&audio)[a..b], "clip {a}..{b} is the audio there, bit for bit");
        assert_eq!((c.audio.sample_rate, c.audio.channels), (RATE, 1));
    }
    assert_eq!((clips[0].start_s(), clips[0].end_s()), (0.27, 1.41));
}

#[test]
fn padding_stops_at_the_ends_and_halfway_to_a_neighbour() {
    let audio = bursts(3.0, &[]);
    let p = SegmentParams { pad_ms: 250.0, ..none() };
    // 0.1 s from the start, a gap of 0.2 s (< 2 x 250 ms) between the first two, 0.1 s to the end.
    let got = spans(&audio, &[(0.1, 1.0), (1.2, 2.0), (2.6, 2.9)], &p);
    let f = |s: f64| (s * RATE as f64) as usize;
    assert_eq!(got, vec![(0, f(1.1)), (f(1.1), f(2.25)), (f(2.35), f(3.0))]);
}

#[test]
fn merging_then_dropping_short_segments() {
    let audio = bursts(3.0, &[]);
    let p = SegmentParams { merge_gap_ms: 100.0, min_duration_s: 0.3, ..none() };
    // 0.10-0.20 and 0.25-0.50 merge (gap 50 ms); 1.0-1.2 stays alone and is too short.
    let got = spans(&audio, &[(0.1, 0.2), (0.25, 0.5), (1.0, 1.2)], &p);
    assert_eq!(got, vec![(1600, 8000)]);
}

#[test]
fn a_long_clip_splits_at_its_quietest_point_into_adjacent_pieces() {
    // 10 s of tone with 40 ms of silence at 6.00-6.04 s: the only quiet place.
    let audio = bursts(10.0, &[(0.0, 6.0), (6.04, 10.0)]);
    let p = SegmentParams { max_duration_s: Some(8.0), ..none() };
    let got = spans(&audio, &[(0.0, 10.0)], &p);
    assert_eq!(got.len(), 2, "{got:?}");
    let cut_at = got[0].1;
    assert_eq!(got[1].0, cut_at, "adjacent: no frame lost or repeated");
    assert!((96_000..=96_640).contains(&cut_at), "the cut {cut_at} lies in the silent gap 96000..96640");
    assert!(got.iter().all(|(a, b)| b - a <= 128_000));

    // 25 s with quiet gaps at 8 s and 17 s and max 10 s: three pieces, cut in the gaps.
    let audio = bursts(25.0, &[(0.0, 8.0), (8.05, 17.0), (17.05, 25.0)]);
    let p = SegmentParams { max_duration_s: Some(10.0), ..none() };
    let got = spans(&audio, &[(0.0, 25.0)], &p);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!((128_000..=128_800).contains(&got[0].1) && (272_000..=272_800).contains(&got[1].1), "{got:?}");
    assert_eq!(got.iter().map(|(a, b)| b - a).sum::<usize>(), 400_000);
}

#[test]
fn padding_counts_towards_the_maximum() {
    let audio = bursts(10.0, &[(1.0, 9.0)]);
    let p = SegmentParams { pad_ms: 500.0, max_duration_s: Some(4.0), ..none() };
    let got = spans(&audio, &[(1.0, 9.0)], &p);
    assert_eq!((got[0].0, got.last().unwrap().1), (8000, 152_000), "padded by 0.5 s on each side");
    assert!(got.iter().all(|(a, b)| b - a <= 64_000), "{got:?}");
    assert_eq!(got.len(), 3);
}

const VAD_CLIPS: &str = r#"
version: "1.0"
nodes:
  - {id: vad, type: VADNode, params: {frame_duration_ms: 30}}
  - {id: clips, type: SegmentNode, params: {pad_ms: 0, min_duration_s: 0}}
edges:
  - {from: vad, to: clips}
outputs: [vad, clips]
"#;

fn clips_of(p: &Payload) -> &[Clip] {
    match p {
        Payload::Clips(c) => c,
        other => panic!("expected clips, got {}", other.kind()),
    }
}

#[test]
fn after_a_vad_node_the_clips_are_its_segments_cut_from_its_audio() {
    let graph = manifest::load_str(VAD_CLIPS, &Registry::builtin()).expect("valid manifest");
    let pipeline = WorkerPool::shared(1).unwrap().install(graph).expect("installed");
    let audio = bursts(4.0, &[(0.5, 1.5), (2.2, 3.1)]);
    let out = pipeline.run(RunInput::All(Payload::Audio(audio.clone()))).expect("run");
    let Some(Payload::Vad(v)) = out.get("vad") else { panic!("the VAD result is a declared output") };
    assert_eq!(v.segments.len(), 2, "{:?}", v.segments);
    let clips = clips_of(out.get("clips").expect("clips"));
    let speech: usize = v.segments.iter().map(|(s, e)| ((e * 16000.0).round() - (s * 16000.0).round()) as usize).sum();
    assert_eq!(clips.iter().map(|c| c.audio.frames()).sum::<usize>(), speech);
    for (c, (s, e)) in clips.iter().zip(&v.segments) {
        assert!((c.start_s() - s).abs() < 1e-9 && (c.end_s() - e).abs() < 1e-9, "{c:?} vs {s}-{e}");
        assert_eq!(samples(&c.audio), &samples(&audio)[c.start_frame as usize..c.end_frame() as usize]);
    }

    // A streaming session gives no clips per chunk and the whole run's clips at its close.
    let mut session = pipeline.session();
    for k in 0..20 {
        let chunk = audio.frame_range(k * 3200, (k + 1) * 3200);
        let got = session.push(RunInput::All(Payload::Audio(chunk))).expect("push");
        assert!(clips_of(got.get("clips").expect("clips each push")).is_empty());
    }
    let last = session.close().expect("close");
    assert_eq!(clips_of(last.get("clips").expect("clips at close")), clips);
}

#[test]
fn clips_survive_serde_as_they_cross_processes() {
    let clip = Clip { start_frame: 4800, audio: AudioBuffer::new(Samples::I16(vec![1, -2, 3, -4].into()), 8000, 2).unwrap() };
    let p = Payload::Clips(vec![clip.clone(), Clip { start_frame: 9000, ..clip }]);
    let text = serde_json::to_string(&p).expect("serialise");
    assert_eq!(serde_json::from_str::<Payload>(&text).expect("deserialise"), p);
}

#[test]
fn segment_node_refuses_what_is_not_a_vad_result_and_bad_params() {
    let graph = manifest::load_str(
        "version: \"1.0\"\nnodes:\n  - {id: clips, type: SegmentNode}\n",
        &Registry::builtin(),
    )
    .unwrap();
    let pipeline = WorkerPool::shared(1).unwrap().install(graph).unwrap();
    let e = pipeline.run(RunInput::All(Payload::Audio(bursts(0.1, &[])))).unwrap_err().to_string();
    assert!(e.contains("SegmentNode needs a VAD result (speech segments and their audio), received audio"), "{e}");

    let bad = "version: \"1.0\"\nnodes:\n  - {id: c, type: SegmentNode, params: {min_duration_s: 2, max_duration_s: 1}}\n";
    let e = manifest::load_str(bad, &Registry::builtin()).unwrap_err().to_string();
    assert!(e.contains("nodes[0].params.max_duration_s: expected at least min_duration_s (2), found 1"), "{e}");
}
