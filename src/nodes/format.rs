//! `FormatConverterNode` and the one place where sample formats are converted (f32 / i16 / i32).
//!
//! Every node that needs f32 from integer input (resampler, VAD) calls the kernels here, so the
//! whole engine shares one convention, and the Python twin `remotemedia._pure.format` matches it
//! bit for bit:
//!
//! | from → to  | rule |
//! |------------|------|
//! | i16 → f32  | `x / 32768` (exact: every i16 is an f32 and the scale is a power of two) |
//! | i32 → f32  | `x / 2147483648`, correctly rounded: `x as f32` rounds once (to nearest, ties to even), the power-of-two scale is then exact |
//! | f32 → i16  | `x * 32768`, clipped to `[-32768, 32767]`, rounded to nearest with ties to even (= `np.rint`); NaN → 0, +inf → 32767, -inf → -32768 |
//! | f32 → i32  | the same in f64: `x * 2147483648`, clipped to `[-2147483648, 2147483647]`, ties to even; NaN → 0 |
//! | i16 → i32  | `x << 16` (`x * 65536`, exact) |
//! | i32 → i16  | `x / 65536` rounded to nearest, ties to even, clipped to `[-32768, 32767]` |
//! | same       | passed through unchanged (the buffer is moved, not copied) |
//!
//! Consequences: i16 → f32 → i16 and i16 → i32 → i16 are the identity for all 65536 values.
//!
//! The loops are single-pass and branch-free so that LLVM vectorises them with the baseline x86-64
//! instruction set (SSE2, no `roundps`): rounding adds 1.5·2^23 (1.5·2^52 in f64) and reads the
//! integer from the low mantissa bits, instead
//! of `round_ties_even`, which would be a libm call per sample without SSE4.1.

use super::params::node_params;
use super::{expect_audio, Inputs, Node, NodeType, ParamKind};
use crate::data::{Payload, SampleFormat, Samples};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "FormatConverterNode";

/// The manifest spellings of the formats, as accepted by `target_format`.
pub const FORMAT_NAMES: &[&str] = &["f32", "i16", "i32"];

node_params! {
    /// FormatConverterNode's params.
    pub struct FormatParams {
        target_format: &'static str, ParamKind::Choice(FORMAT_NAMES),
            "sample format of the output: f32 (full scale ±1.0), i16 or i32";
    }
}

/// 1.5·2^23: adding it to an f32 of magnitude < 2^22 leaves no fraction bits, so the addition
/// itself rounds to an integer (to nearest, ties to even).
const ROUND_MAGIC_F32: f32 = 12_582_912.0;
/// 1.5·2^52: the same trick for f64 values of magnitude < 2^51.
const ROUND_MAGIC_F64: f64 = 6_755_399_441_055_744.0;

const I16_SCALE: f32 = 32_768.0;
const I16_INV_SCALE: f32 = 1.0 / 32_768.0;
const I32_SCALE: f64 = 2_147_483_648.0;
const I32_INV_SCALE: f32 = 1.0 / 2_147_483_648.0;

// ---- per-sample rules (inlined into the loops below) ----

/// One i16 sample as f32 (x / 32768): the convention every node that accepts integer audio uses.
#[inline(always)]
pub fn s_i16_to_f32(x: i16) -> f32 {
    x as f32 * I16_INV_SCALE
}

/// One i32 sample as f32 (x / 2147483648, correctly rounded).
#[inline(always)]
pub fn s_i32_to_f32(x: i32) -> f32 {
    // `as f32` is the only rounding step; multiplying by 2^-31 is exact (no subnormals reachable).
    x as f32 * I32_INV_SCALE
}

#[inline(always)]
fn s_f32_to_i16(x: f32) -> i16 {
    // NaN → 0 first, as a select, so the rest is plain min/max arithmetic.
    let x = if x.is_nan() { 0.0 } else { x };
    // x * 32768 is exact (or ±inf); the bounds are integers, so clipping before rounding gives
    // the same result as rounding first.
    let y = (x * I16_SCALE).clamp(-32_768.0, 32_767.0);
    // y + 1.5·2^23 lies in [2^23, 2^24), where the f32 spacing is 1: the addition rounds y to an
    // integer (ties to even) and leaves it in the mantissa, offset by the constant's bits.
    // Reading bits instead of a float→int cast keeps the loop vectorised on plain SSE2.
    let i = (y + ROUND_MAGIC_F32).to_bits() as i32 - ROUND_MAGIC_F32.to_bits() as i32;
    // Already in range; the integer clamp is a no-op that lets LLVM narrow with one saturating
    // pack (`packssdw`) instead of three shuffles.
    i.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

#[inline(always)]
fn s_f32_to_i32(x: f32) -> i32 {
    let x = if x.is_nan() { 0.0 } else { x };
    // In f64 so that 2147483647 is representable as a clip bound and nothing is rounded twice.
    let y = (x as f64 * I32_SCALE).clamp(-2_147_483_648.0, 2_147_483_647.0);
    // The same trick with 1.5·2^52: the low 32 bits of the sum are y in two's complement.
    (y + ROUND_MAGIC_F64).to_bits() as u32 as i32
}

#[inline(always)]
fn s_i16_to_i32(x: i16) -> i32 {
    (x as i32) << 16
}

#[inline(always)]
fn s_i32_to_i16(x: i32) -> i16 {
    // floor(x / 65536) plus one if the remainder is above half, or exactly half and the floor is
    // odd (ties to even); all in integers, then the one possible overflow (32767 + 1) is clipped.
    let q = x >> 16;
    let r = x & 0xFFFF;
    let up = (r + 0x7FFF + (q & 1)) >> 16;
    // Only q == 32767 with up == 1 overflows; the clamp compiles to a saturating pack.
    (q + up).clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

// ---- slice kernels ----

macro_rules! kernels {
    ($($name:ident, $into:ident: $from:ty => $to:ty, $f:ident;)*) => {$(
        /// Converts a whole slice into a new vector (see the module docs for the rule).
        pub fn $name(src: &[$from]) -> Vec<$to> {
            src.iter().map(|&x| $f(x)).collect()
        }

        /// Like the allocating version, but reuses `dst`'s allocation: `dst` is cleared and
        /// filled with exactly `src.len()` converted samples. Saves the page faults of a fresh
        /// large buffer on hot paths.
        pub fn $into(src: &[$from], dst: &mut Vec<$to>) {
            dst.clear();
            dst.extend(src.iter().map(|&x| $f(x)));
        }
    )*};
}

kernels! {
    i16_to_f32, i16_to_f32_into: i16 => f32, s_i16_to_f32;
    i32_to_f32, i32_to_f32_into: i32 => f32, s_i32_to_f32;
    f32_to_i16, f32_to_i16_into: f32 => i16, s_f32_to_i16;
    f32_to_i32, f32_to_i32_into: f32 => i32, s_f32_to_i32;
    i16_to_i32, i16_to_i32_into: i16 => i32, s_i16_to_i32;
    i32_to_i16, i32_to_i16_into: i32 => i16, s_i32_to_i16;
}

/// Converts samples to `target`; samples already in that format are returned as they are.
pub fn convert(samples: Samples, target: SampleFormat) -> Samples {
    match (samples, target) {
        (s @ Samples::F32(_), SampleFormat::F32)
        | (s @ Samples::I16(_), SampleFormat::I16)
        | (s @ Samples::I32(_), SampleFormat::I32) => s,
        (Samples::I16(v), SampleFormat::F32) => Samples::F32(i16_to_f32(&v).into()),
        (Samples::I32(v), SampleFormat::F32) => Samples::F32(i32_into_f32(v).into()),
        (Samples::F32(v), SampleFormat::I16) => Samples::I16(f32_to_i16(&v).into()),
        (Samples::I32(v), SampleFormat::I16) => Samples::I16(i32_to_i16(&v).into()),
        (Samples::F32(v), SampleFormat::I32) => Samples::I32(f32_to_i32(&v).into()),
        (Samples::I16(v), SampleFormat::I32) => Samples::I32(i16_to_i32(&v).into()),
    }
}

/// The samples as f32 (a copy; integer formats are converted with the module's convention).
pub fn to_f32(samples: &Samples) -> Vec<f32> {
    match samples {
        Samples::F32(v) => v.to_vec(),
        Samples::I16(v) => i16_to_f32(v),
        Samples::I32(v) => i32_to_f32(v),
    }
}

/// The samples as f32, moving the vector when it already is f32 and converting i32 in place
/// (lent samples are read where they lie: copied, or converted into a new vector).
pub fn into_f32(samples: Samples) -> Vec<f32> {
    match samples {
        Samples::F32(v) => v.into_vec(),
        Samples::I16(v) => i16_to_f32(&v),
        Samples::I32(v) => i32_into_f32(v),
    }
}

/// i32 samples as f32: converted in their own memory when owned, into a new vector when lent.
fn i32_into_f32(v: crate::data::SampleVec<i32>) -> Vec<f32> {
    if v.is_lent() {
        i32_to_f32(&v)
    } else {
        i32_to_f32_in_place(v.into_vec())
    }
}

/// [`i32_to_f32`] in the vector's own memory (i32 and f32 have the same size and alignment): a
/// whole 24-bit file handed to the resampler then never exists twice. Converting into a second
/// buffer held 10 minutes of 44.1 kHz stereo twice (2 × 202 MiB) at the peak of a `run`.
pub fn i32_to_f32_in_place(v: Vec<i32>) -> Vec<f32> {
    let mut v = std::mem::ManuallyDrop::new(v);
    for x in v.iter_mut() {
        *x = s_i32_to_f32(*x).to_bits() as i32;
    }
    let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
    // SAFETY: the allocation came from a Vec<i32> of this length and capacity; f32 has the same
    // size and alignment as i32, every element now holds an f32's bits, and the original Vec is
    // never dropped (ManuallyDrop), so the memory has exactly one owner.
    unsafe { Vec::from_raw_parts(ptr.cast::<f32>(), len, cap) }
}

/// Fills `dst` with the samples as f32, reusing its allocation (for nodes that keep a scratch
/// buffer between calls).
pub fn to_f32_into(samples: &Samples, dst: &mut Vec<f32>) {
    match samples {
        Samples::F32(v) => {
            dst.clear();
            dst.extend_from_slice(v);
        }
        Samples::I16(v) => i16_to_f32_into(v, dst),
        Samples::I32(v) => i32_to_f32_into(v, dst),
    }
}

/// Bytes per sample of a format.
pub fn sample_size(format: SampleFormat) -> usize {
    match format {
        SampleFormat::F32 | SampleFormat::I32 => 4,
        SampleFormat::I16 => 2,
    }
}

/// Reads little-endian samples of type `T` from bytes of any alignment.
fn pod_from_le<T: bytemuck::Pod>(bytes: &[u8], from_le: fn(&[u8]) -> T) -> Vec<T> {
    // Aligned input on a little-endian machine is reinterpreted in place and copied once (never
    // `cast_slice`, which panics on misalignment). Misaligned input (a slice into a network buffer
    // at an odd offset) and big-endian machines decode chunk by chunk; this stands in for
    // `bytemuck::pod_collect_to_vec`, which needs bytemuck's `extern_crate_alloc` feature.
    if cfg!(target_endian = "little") {
        if let Ok(s) = bytemuck::try_cast_slice::<u8, T>(bytes) {
            return s.to_vec();
        }
    }
    bytes.chunks_exact(std::mem::size_of::<T>()).map(from_le).collect()
}

// Conversions as methods on `Samples`, kept next to the kernels they use rather than in
// `data.rs`, so the convention lives in one file.
impl Samples {
    /// Samples from little-endian bytes (numpy's native layout on every platform we run on, and
    /// WAV's). Any alignment is accepted. Fails if the length is not a whole number of samples.
    pub fn from_le_bytes(format: SampleFormat, bytes: &[u8]) -> Result<Samples, String> {
        let size = sample_size(format);
        if !bytes.len().is_multiple_of(size) {
            return Err(format!(
                "{} bytes is not a whole number of {} samples ({} bytes each)",
                bytes.len(),
                format.name(),
                size
            ));
        }
        // The closures only see exact-size chunks, so the conversions cannot fail.
        Ok(match format {
            SampleFormat::F32 => Samples::F32(pod_from_le(bytes, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).into()),
            SampleFormat::I16 => Samples::I16(pod_from_le(bytes, |b| i16::from_le_bytes([b[0], b[1]])).into()),
            SampleFormat::I32 => Samples::I32(pod_from_le(bytes, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).into()),
        })
    }

    /// The samples as little-endian bytes (a copy).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        fn le<T: bytemuck::Pod, const N: usize>(v: &[T], to_le: fn(&T) -> [u8; N]) -> Vec<u8> {
            if cfg!(target_endian = "little") {
                bytemuck::cast_slice::<T, u8>(v).to_vec()
            } else {
                v.iter().flat_map(to_le).collect()
            }
        }
        match self {
            Samples::F32(v) => le(v, |x| x.to_le_bytes()),
            Samples::I16(v) => le(v, |x| x.to_le_bytes()),
            Samples::I32(v) => le(v, |x| x.to_le_bytes()),
        }
    }

    /// The samples as f32 (a copy), with the engine's conversion convention.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        to_f32(self)
    }

    /// The samples as f32, moving the vector when it already is f32.
    pub fn into_f32_vec(self) -> Vec<f32> {
        into_f32(self)
    }

    /// The samples in `target` format (moved unchanged when already in it).
    pub fn convert(self, target: SampleFormat) -> Samples {
        convert(self, target)
    }
}

// ---- the node ----

struct FormatConverter {
    target: SampleFormat,
}

impl Node for FormatConverter {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let mut audio = expect_audio(inputs.one()?)?;
        // Moving the samples out and back keeps same-format input copy-free.
        let samples = std::mem::replace(&mut audio.samples, Samples::F32(Vec::new().into()));
        audio.samples = convert(samples, self.target);
        Ok(Payload::Audio(audio))
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: FormatParams::specs(),
        ..NodeType::new(
            TYPE_NAME,
            "Converts audio samples to f32, i16 or i32 (round to nearest, ties to even; clipped; \
             NaN to 0). Rate and channels are kept.",
            |cfg| {
                let name = FormatParams::from_params(cfg.params)?.target_format;
                // The choice was checked against FORMAT_NAMES, which `parse` reads the same way.
                let target = SampleFormat::parse(name)
                    .ok_or_else(|| NodeError::permanent(format!("param 'target_format': no format \"{name}\"")))?;
                Ok(Box::new(FormatConverter { target }))
            },
        )
    }
}
