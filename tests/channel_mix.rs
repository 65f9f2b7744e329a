//! `ChannelMixNode` in a pipeline on analytic signals: stereo and 6-channel input downmixed to
//! mono (the mean, or one channel), mono upmixed, a 5.1 → stereo matrix, integer input converted
//! by the format convention, and every refusal with its words (manifest problems and input errors).

use remotemedia::data::{AudioBuffer, Payload, Samples};
use remotemedia::manifest;
use remotemedia::nodes::channel_mix::to_mono;
use remotemedia::nodes::Registry;
use remotemedia::{RunInput, WorkerPool};

/// `channels` channels of `frames` frames; channel c of frame i holds `(c + 1) * i / 1000`.
fn ramp(channels: u16, frames: usize) -> AudioBuffer {
    let v: Vec<f32> = (0..frames).flat_map(|i| (0..channels).map(move |c| (c + 1) as f32 * i as f32 / 1000.0)).collect();
    AudioBuffer::new(Samples::F32(v.into()), 16000, channels).unwrap()
}

fn mix(params: &str, input: AudioBuffer) -> Result<AudioBuffer, String> {
    let text = format!("version: \"1.0\"\nnodes:\n  - {{id: m, type: ChannelMixNode, params: {params}}}\n");
    let graph = manifest::load_str(&text, &Registry::builtin()).map_err(|e| e.to_string())?;
    let pipeline = WorkerPool::shared(1).unwrap().install(graph).map_err(|e| e.to_string())?;
    match pipeline.run(RunInput::All(Payload::Audio(input))).map_err(|e| e.to_string())?.get("m") {
        Some(Payload::Audio(a)) => Ok(a.clone()),
        other => Err(format!("not audio: {other:?}")),
    }
}

fn f32s(a: &AudioBuffer) -> &[f32] {
    a.as_f32().expect("f32")
}

#[test]
fn stereo_and_six_channels_downmix_to_their_mean() {
    for channels in [2u16, 6] {
        let out = mix("{}", ramp(channels, 480)).unwrap();
        assert_eq!((out.channels, out.frames(), out.sample_rate), (1, 480, 16000));
        // The mean of (1..=n) * x is (n + 1) / 2 * x.
        for (i, y) in f32s(&out).iter().enumerate() {
            let want = (channels as f32 + 1.0) / 2.0 * i as f32 / 1000.0;
            assert!((y - want).abs() <= 1e-6 * want.max(1.0), "{channels} ch, frame {i}: {y} vs {want}");
        }
        assert_eq!(to_mono(ramp(channels, 480)), out, "to_mono is the node's code");
    }
}

#[test]
fn one_channel_mono_upmix_and_a_matrix() {
    let right = mix("{channel: 1}", ramp(2, 100)).unwrap();
    assert_eq!(f32s(&right), f32s(&ramp(1, 100)).iter().map(|x| 2.0 * x).collect::<Vec<_>>().as_slice());

    let up = mix("{channels: 3}", ramp(1, 10)).unwrap();
    assert_eq!(up.channels, 3);
    assert!(f32s(&up).chunks(3).zip(f32s(&ramp(1, 10))).all(|(f, x)| f == [*x, *x, *x]));

    // ITU-R BS.775 5.1 -> stereo, channels L R C LFE Ls Rs.
    let matrix = "{matrix: [[1, 0, 0.7071, 0, 0.7071, 0], [0, 1, 0.7071, 0, 0, 0.7071]]}";
    let st = mix(matrix, ramp(6, 50)).unwrap();
    assert_eq!(st.channels, 2);
    let g = 0.7071f32;
    for (i, f) in f32s(&st).chunks(2).enumerate() {
        let x = i as f32 / 1000.0;
        let (l, r) = (x + g * (3.0 * x) + g * (5.0 * x), 2.0 * x + g * (3.0 * x) + g * (6.0 * x));
        assert!((f[0] - l).abs() <= 1e-6 && (f[1] - r).abs() <= 1e-6, "frame {i}: {f:?} vs {l}, {r}");
    }
}

#[test]
fn integers_are_converted_by_the_format_convention_and_mono_passes_unchanged() {
    let stereo = AudioBuffer::new(Samples::I16(vec![16384, 0, -32768, -32768, 32767, 1].into()), 8000, 2).unwrap();
    let out = mix("{}", stereo).unwrap();
    assert_eq!(f32s(&out), [0.25, -1.0, (32767.0 / 32768.0 + 1.0 / 32768.0) / 2.0]);
    let mono = AudioBuffer::new(Samples::I16(vec![5, 6, 7].into()), 8000, 1).unwrap();
    assert_eq!(mix("{}", mono.clone()).unwrap(), mono);
}

#[test]
fn refusals_say_what_and_where() {
    let e = mix("{channels: 2}", ramp(6, 10)).unwrap_err();
    assert!(e.contains("no default mix from 6 to 2 channels") && e.contains("give a matrix of 2 rows of 6 gains"), "{e}");
    let e = mix("{channel: 2}", ramp(2, 10)).unwrap_err();
    assert!(e.contains("takes input channel 2 (param channel, counted from 0), but the input has 2 channels"), "{e}");
    let e = mix("{matrix: [[1, 1, 1]]}", ramp(2, 10)).unwrap_err();
    assert!(e.contains("matrix has 3 gains per row, one per input channel, but the input has 2 channels"), "{e}");

    let e = mix("{matrix: [[1, 0], [1]], channel: 0}", ramp(2, 10)).unwrap_err();
    assert!(e.contains("invalid manifest (2 problems)"), "{e}");
    assert!(e.contains("nodes[0].params.matrix: expected either channel or matrix, not both, found both channel and matrix"), "{e}");
    assert!(e.contains("found row 1 with 1 gain, row 0 with 2"), "{e}");
    let e = mix("{matrix: [[1, 0]], channels: 2}", ramp(2, 10)).unwrap_err();
    assert!(e.contains("nodes[0].params.channels: expected the matrix's row count, 1, found 2"), "{e}");
    let e = mix("{channels: 0}", ramp(2, 10)).unwrap_err();
    assert!(e.contains("nodes[0].params.channels: expected an integer from 1 to 256, found 0"), "{e}");
}
