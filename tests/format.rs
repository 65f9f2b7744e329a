//! Tests of the sample-format convention (`nodes::format`) and `FormatConverterNode`, against
//! references computed independently in f64 with `round_ties_even`.

use remotemedia::data::{AudioBuffer, Payload, SampleFormat, Samples};
use remotemedia::nodes::format::{
    convert, f32_to_i16, f32_to_i32, i16_to_f32, i16_to_f32_into, i16_to_i32, i32_to_f32, i32_to_f32_in_place, i32_to_i16, into_f32, to_f32,
};
use remotemedia::nodes::{Inputs, Node, NodeConfig, Params, Registry};
use remotemedia::NodeErrorKind;

/// Reference f32 → i16: exact product in f64, round half to even, clip, NaN → 0.
fn ref_f32_to_i16(x: f32) -> i16 {
    if x.is_nan() {
        return 0;
    }
    (x as f64 * 32768.0).round_ties_even().clamp(-32768.0, 32767.0) as i16
}

fn ref_f32_to_i32(x: f32) -> i32 {
    if x.is_nan() {
        return 0;
    }
    (x as f64 * 2147483648.0).round_ties_even().clamp(-2147483648.0, 2147483647.0) as i32
}

/// Correctly rounded x / 2^31: the quotient is exact in f64, the cast to f32 rounds once.
fn ref_i32_to_f32(x: i32) -> f32 {
    (x as f64 / 2147483648.0) as f32
}

fn ref_i32_to_i16(x: i32) -> i16 {
    (x as f64 / 65536.0).round_ties_even().clamp(-32768.0, 32767.0) as i16
}

/// A deterministic pseudo-random sequence (64-bit LCG), for sweeps without extra dependencies.
struct Lcg(u64);
impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
}

fn all_i16() -> Vec<i16> {
    (i16::MIN..=i16::MAX).collect()
}

/// Floats that stress the rounding and clipping rules: halves, neighbours of halves, full scale,
/// beyond full scale, infinities, NaN, subnormals, signed zeros, plus random bit patterns.
fn tricky_f32() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.0 - f32::EPSILON / 2.0,
        2.0,
        -2.0,
        1e30,
        -1e30,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1e-45,
        -1e-45,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
    ];
    for k in -70000i32..70000 {
        for scale in [32768.0f64, 2147483648.0] {
            let half = (k as f64 + 0.5) / scale;
            let h = half as f32;
            v.push(h);
            v.push(f32::from_bits(h.to_bits().wrapping_add(1)));
            v.push(f32::from_bits(h.to_bits().wrapping_sub(1)));
            v.push((k as f64 / scale) as f32);
        }
    }
    let mut rng = Lcg(12345);
    for _ in 0..200_000 {
        v.push(f32::from_bits(rng.next_u32()));
    }
    v
}

#[test]
fn i16_to_f32_is_x_over_32768_and_round_trips_for_every_value() {
    let all = all_i16();
    let f = i16_to_f32(&all);
    for (&x, &y) in all.iter().zip(&f) {
        assert_eq!(y as f64, x as f64 / 32768.0, "i16 {x}");
    }
    assert_eq!(f32_to_i16(&f), all);
    // Through i32 as well.
    let wide = i16_to_i32(&all);
    for (&x, &w) in all.iter().zip(&wide) {
        assert_eq!(w, x as i32 * 65536);
    }
    assert_eq!(i32_to_i16(&wide), all);
    // And i16 -> f32 -> i32 -> i16.
    assert_eq!(i32_to_i16(&f32_to_i32(&f)), all);
}

#[test]
fn f32_to_i16_rounds_half_to_even() {
    let s = 1.0 / 32768.0;
    let cases: [(f32, i16); 10] = [
        (0.5 * s, 0),
        (1.5 * s, 2),
        (2.5 * s, 2),
        (3.5 * s, 4),
        (-0.5 * s, 0),
        (-1.5 * s, -2),
        (-2.5 * s, -2),
        (0.49999997 * s, 0),
        (0.50000006 * s, 1),
        (100.25 * s, 100),
    ];
    for (x, want) in cases {
        assert_eq!(f32_to_i16(&[x]), vec![want], "input {x:e} = {} LSB", x * 32768.0);
    }
}

#[test]
fn f32_to_i16_clips_and_maps_non_finite_values() {
    let input = [1.0, -1.0, 32767.0 / 32768.0, 32767.5 / 32768.0, 1.5, -1.5, f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
    let want = [32767, -32768, 32767, 32767, 32767, -32768, 32767, -32768, 32767, -32768, 0];
    assert_eq!(f32_to_i16(&input), want);
}

#[test]
fn f32_to_i16_matches_f64_reference_on_tricky_values() {
    let v = tricky_f32();
    let got = f32_to_i16(&v);
    for (&x, &y) in v.iter().zip(&got) {
        assert_eq!(y, ref_f32_to_i16(x), "input {x:e} (bits {:#010x})", x.to_bits());
    }
}

#[test]
fn f32_to_i32_rounds_clips_and_matches_reference() {
    let s = 1.0 / 2147483648.0;
    let cases: [(f32, i32); 12] = [
        (0.5 * s, 0),
        (1.5 * s, 2),
        (2.5 * s, 2),
        (-1.5 * s, -2),
        (-2.5 * s, -2),
        (0.5, 1 << 30),
        (1.0, i32::MAX),
        (-1.0, i32::MIN),
        (3.0, i32::MAX),
        (f32::INFINITY, i32::MAX),
        (f32::NEG_INFINITY, i32::MIN),
        (f32::NAN, 0),
    ];
    for (x, want) in cases {
        assert_eq!(f32_to_i32(&[x]), vec![want], "input {x:e}");
    }
    let v = tricky_f32();
    let got = f32_to_i32(&v);
    for (&x, &y) in v.iter().zip(&got) {
        assert_eq!(y, ref_f32_to_i32(x), "input {x:e} (bits {:#010x})", x.to_bits());
    }
}

fn tricky_i32() -> Vec<i32> {
    let mut v = vec![i32::MIN, i32::MIN + 1, i32::MAX, i32::MAX - 1, 0, 1, -1];
    // Around every multiple of 65536 and the half-way points between them.
    for k in i16::MIN as i32..=i16::MAX as i32 {
        for off in [0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF] {
            v.push((k << 16).wrapping_add(off));
        }
    }
    // Around f32 rounding boundaries: 2^24 + odd numbers need rounding, halves tie.
    for e in 24..31 {
        for d in -3..=3 {
            v.push((1i32 << e) + d);
            v.push(-(1i32 << e) + d);
        }
    }
    let mut rng = Lcg(777);
    for _ in 0..200_000 {
        v.push(rng.next_u32() as i32);
    }
    v
}

#[test]
fn i32_to_f32_is_correctly_rounded() {
    let v = tricky_i32();
    let got = i32_to_f32(&v);
    for (&x, &y) in v.iter().zip(&got) {
        assert_eq!(y.to_bits(), ref_i32_to_f32(x).to_bits(), "i32 {x}");
    }
    assert_eq!(i32_to_f32(&[i32::MIN, 1 << 30]), vec![-1.0, 0.5]);
    // The in-place conversion (whole owned buffers: `convert`, `into_f32`) gives the same bits and
    // keeps the allocation.
    let owned = v.clone();
    let at = owned.as_ptr() as usize;
    let in_place = i32_to_f32_in_place(owned);
    assert_eq!(in_place.as_ptr() as usize, at);
    assert_eq!(in_place.iter().map(|y| y.to_bits()).collect::<Vec<_>>(), got.iter().map(|y| y.to_bits()).collect::<Vec<_>>());
}

#[test]
fn i32_to_i16_rounds_half_to_even_and_clips() {
    let cases = [(0x8000, 0), (0x18000, 2), (0x28000, 2), (-0x8000, 0), (-0x18000, -2), (0x8001, 1), (0x7FFF, 0), (i32::MAX, 32767), (i32::MIN, -32768), (0x7FFF_7FFF, 32767)];
    for (x, want) in cases {
        assert_eq!(i32_to_i16(&[x]), vec![want], "i32 {x:#x}");
    }
    let v = tricky_i32();
    let got = i32_to_i16(&v);
    for (&x, &y) in v.iter().zip(&got) {
        assert_eq!(y, ref_i32_to_i16(x), "i32 {x}");
    }
}

#[test]
fn i32_round_trips() {
    // f32 -> i32 -> f32 is exact for every f32 in [-1, 1) whose scaled value is an integer,
    // which includes everything with |x| >= 2^-8 (24-bit mantissa, scale 2^31).
    let mut rng = Lcg(99);
    let mut xs = vec![-1.0f32, 0.0, 0.5, -0.25, 1.0 - f32::EPSILON];
    for _ in 0..100_000 {
        let x = (rng.next_u32() as f64 / 4294967296.0 * 2.0 - 1.0) as f32;
        if x.abs() >= 1.0 / 256.0 {
            xs.push(x);
        }
    }
    assert_eq!(i32_to_f32(&f32_to_i32(&xs)), xs);
    // 1.0 clips to i32::MAX, which reads back as 1.0 (2^31 - 1 rounds to 2^31 in f32).
    assert_eq!(i32_to_f32(&f32_to_i32(&[1.0])), vec![1.0]);
    // i32 values with at most 24 significant bits survive i32 -> f32 -> i32.
    let ints: Vec<i32> = (0..100_000).map(|_| (rng.next_u32() as i32) >> 7 << 7).chain([i32::MIN]).collect();
    assert_eq!(f32_to_i32(&i32_to_f32(&ints)), ints);
}

#[test]
fn convert_moves_same_format_and_helpers_agree() {
    let v = vec![0.25f32, -0.5];
    let ptr = v.as_ptr();
    match convert(Samples::F32(v.into()), SampleFormat::F32) {
        Samples::F32(out) => assert_eq!(out.as_ptr(), ptr),
        other => panic!("wrong format {:?}", other.format()),
    }
    let ints = Samples::I16(vec![16384, -32768].into());
    assert_eq!(to_f32(&ints), vec![0.5, -1.0]);
    assert_eq!(into_f32(ints.clone()), vec![0.5, -1.0]);
    assert_eq!(ints.to_f32_vec(), vec![0.5, -1.0]);
    assert_eq!(Samples::I32(vec![1 << 30].into()).into_f32_vec(), vec![0.5]);
    let mut scratch = Vec::with_capacity(1);
    i16_to_f32_into(&[16384, 8192, -16384], &mut scratch);
    assert_eq!(scratch, vec![0.5, 0.25, -0.5]);
    i16_to_f32_into(&[], &mut scratch);
    assert!(scratch.is_empty());
    assert_eq!(convert(Samples::F32(vec![].into()), SampleFormat::I16), Samples::I16(vec![].into()));
}

fn converter(target: &str) -> Box<dyn Node> {
    let registry = Registry::builtin();
    let t = registry.get("FormatConverterNode").expect("registered");
    let mut params = Params::new();
    params.insert("target_format".into(), target.into());
    let r = (t.factory)(&NodeConfig { id: "fmt", params: &params, worker: 0 });
    r.unwrap_or_else(|e| panic!("factory failed: {e}"))
}

#[test]
fn node_converts_stereo_and_keeps_rate_channels_and_interleaving() {
    // Stereo: left is a ramp, right its negation, so swapped or merged channels would show.
    let frames = 1000;
    let mut samples = Vec::with_capacity(frames * 2);
    for i in 0..frames as i32 {
        samples.push((i * 32) as i16);
        samples.push((-i * 32) as i16);
    }
    let audio = AudioBuffer::new(Samples::I16(samples.clone().into()), 44100, 2).expect("valid buffer");
    let mut node = converter("f32");
    let out = node.process(Inputs::single(Payload::Audio(audio))).expect("converts");
    let Payload::Audio(out) = out else { panic!("expected audio") };
    assert_eq!((out.sample_rate, out.channels, out.frames()), (44100, 2, frames));
    let f = out.as_f32().expect("f32 output");
    for i in 0..frames {
        assert_eq!(f[2 * i], (i as f32 * 32.0) / 32768.0);
        assert_eq!(f[2 * i + 1], -(i as f32 * 32.0) / 32768.0);
    }
    // Back to i16 through another node instance: the original samples.
    let mut back = converter("i16");
    let Payload::Audio(again) = back.process(Inputs::single(Payload::Audio(out))).expect("converts") else {
        panic!("expected audio")
    };
    assert_eq!(again.samples, Samples::I16(samples.into()));
    assert_eq!(again.channels, 2);
}

#[test]
fn node_passes_same_format_through_without_copying() {
    let v: Vec<f32> = vec![0.1; 4096];
    let ptr = v.as_ptr();
    let mut node = converter("f32");
    let Payload::Audio(out) = node.process(Inputs::single(Payload::Audio(AudioBuffer::mono_f32(v, 16000)))).expect("ok")
    else {
        panic!("expected audio")
    };
    assert_eq!(out.as_f32().map(|s| s.as_ptr()), Some(ptr));
}

#[test]
fn node_rejects_bad_params_and_non_audio_input() {
    let registry = Registry::builtin();
    let t = registry.get("FormatConverterNode").expect("registered");
    for bad in [serde_json::json!("f64"), serde_json::json!(16), serde_json::Value::Null] {
        let mut params = Params::new();
        params.insert("target_format".into(), bad.clone());
        let Err(e) = (t.factory)(&NodeConfig { id: "fmt", params: &params, worker: 0 }) else {
            panic!("accepted target_format {bad}")
        };
        assert!(e.message.contains("target_format"), "{}", e.message);
    }
    let mut node = converter("i16");
    let Err(e) = node.process(Inputs::single(Payload::Json(serde_json::json!([1, 2])))) else {
        panic!("accepted json")
    };
    assert_eq!(e.kind, NodeErrorKind::InvalidInput);
    // Empty audio is fine.
    let out = node.process(Inputs::single(Payload::Audio(AudioBuffer::mono_f32(vec![], 16000)))).expect("empty ok");
    assert_eq!(out.audio().map(|a| a.samples.clone()), Some(Samples::I16(vec![].into())));
}

#[test]
fn from_le_bytes_decodes_known_patterns_at_any_alignment() {
    // 1.0f32 = 0x3F800000, -2.0f32 = 0xC0000000; i16 -32768 = 0x8000; i32 -2 = 0xFFFFFFFE.
    let f32_bytes = [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0];
    let i16_bytes = [0x00, 0x80, 0x01, 0x00];
    let i32_bytes = [0xFE, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x40];
    for offset in 0..4 {
        // Place the bytes at every offset inside an 8-aligned buffer to force misalignment.
        let mut storage = vec![0u64; 4];
        let raw: &mut [u8] = bytemuck::cast_slice_mut(&mut storage);
        raw[offset..offset + 8].copy_from_slice(&f32_bytes);
        assert_eq!(Samples::from_le_bytes(SampleFormat::F32, &raw[offset..offset + 8]), Ok(Samples::F32(vec![1.0, -2.0].into())));
        raw[offset..offset + 4].copy_from_slice(&i16_bytes);
        assert_eq!(Samples::from_le_bytes(SampleFormat::I16, &raw[offset..offset + 4]), Ok(Samples::I16(vec![-32768, 1].into())));
        raw[offset..offset + 8].copy_from_slice(&i32_bytes);
        assert_eq!(Samples::from_le_bytes(SampleFormat::I32, &raw[offset..offset + 8]), Ok(Samples::I32(vec![-2, 1 << 30].into())));
    }
    assert_eq!(Samples::from_le_bytes(SampleFormat::I16, &[]), Ok(Samples::I16(vec![].into())));
}

#[test]
fn from_le_bytes_rejects_partial_samples_and_round_trips() {
    for (format, len) in [(SampleFormat::F32, 7), (SampleFormat::I16, 3), (SampleFormat::I32, 5), (SampleFormat::F32, 1)] {
        let err = Samples::from_le_bytes(format, &vec![0u8; len]).expect_err("partial sample accepted");
        assert!(err.contains(&len.to_string()) && err.contains(format.name()), "{err}");
    }
    let all = Samples::I16(all_i16().into());
    let bytes = all.to_le_bytes();
    assert_eq!(bytes.len(), 2 * 65536);
    // Misaligned copy of the same bytes.
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    assert_eq!(Samples::from_le_bytes(SampleFormat::I16, &shifted[1..]).as_ref(), Ok(&all));
    let floats = Samples::F32(tricky_f32().into_iter().filter(|x| !x.is_nan()).collect());
    assert_eq!(Samples::from_le_bytes(SampleFormat::F32, &floats.to_le_bytes()).as_ref(), Ok(&floats));
}
