//! The shipped Silero VAD v6 weights (`assets/silero_vad/`, embedded in the binary), parsed once
//! and laid out for [`kernel::dense`](super::kernel::dense).
//!
//! Embedded with `include_bytes!` rather than read from a path at node build: the CLI, the Python
//! wheel and the tests then all carry exactly the weights they were built with, with no search
//! path to get wrong (1.8 MB of the binary). They are parsed and checked on the first
//! `SileroVADNode` build of a process (about a millisecond) and shared by every instance after.
//!
//! The file is in the safetensors layout (an 8-byte little-endian header length, a JSON header
//! with each tensor's dtype, shape and byte range, the raw data); `scripts/silero_weights.py`
//! writes it from the silero-vad wheel's ONNX graph. Names: `{16k,8k}.{conv1..conv4,lstm,out}.*`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::kernel::Matrix;

/// The file as shipped.
pub static FILE: &[u8] = include_bytes!("../../../assets/silero_vad/silero_vad_v6.safetensors");

/// LSTM hidden size, and the width of the encoder's last layer.
pub const HIDDEN: usize = 128;

/// One rate's network, re-laid-out for the kernel. Convolution weights `[out][in][tap]` become
/// rows `[out][tap * in + i]`, so a row dotted with `in * taps` consecutive values of a buffer of
/// frames (each frame `in` values) is one output of the convolution at one position.
#[derive(Debug)]
pub struct Weights {
    /// Frequency bins of the STFT (129 at 16 kHz, 65 at 8 kHz).
    pub bins: usize,
    /// 128 x (3 taps x bins).
    pub conv1: Matrix,
    pub conv1_b: Vec<f32>,
    /// 64 x (3 x 128).
    pub conv2: Matrix,
    pub conv2_b: Vec<f32>,
    /// 64 x (2 x 64): the taps on the two input frames; the third tap always reads padding.
    pub conv3: Matrix,
    pub conv3_b: Vec<f32>,
    /// 128 x 64: the middle tap; the input is one frame, the other taps read padding.
    pub conv4: Matrix,
    pub conv4_b: Vec<f32>,
    /// 512 x 128, gates i, f, g, o (PyTorch's LSTMCell order).
    pub w_ih: Matrix,
    pub w_hh: Matrix,
    /// `bias_ih + bias_hh`.
    pub lstm_b: Vec<f32>,
    pub out_w: Vec<f32>,
    pub out_b: f32,
}

/// Both rates' weights.
#[derive(Debug)]
pub struct AllWeights {
    pub r16k: Weights,
    pub r8k: Weights,
}

/// The parsed weights (parsed on first use; an error means a corrupt build).
pub fn get() -> Result<&'static AllWeights, String> {
    static PARSED: OnceLock<Result<AllWeights, String>> = OnceLock::new();
    PARSED.get_or_init(|| parse(FILE)).as_ref().map_err(|e| format!("the embedded Silero VAD weights are unusable: {e}"))
}

/// A tensor of the file: its shape and values.
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// The tensors of a safetensors file (f32 only).
fn tensors(file: &[u8]) -> Result<BTreeMap<String, Tensor>, String> {
    let len_bytes: [u8; 8] = file.get(..8).and_then(|b| b.try_into().ok()).ok_or("shorter than its header length")?;
    let n = u64::from_le_bytes(len_bytes) as usize;
    let header = file.get(8..8 + n).ok_or("header runs past the end")?;
    let data = &file[8 + n..];
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| format!("header is not JSON: {e}"))?;
    let mut out = BTreeMap::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        if info["dtype"] != "F32" {
            return Err(format!("tensor {name} has dtype {}, expected F32", info["dtype"]));
        }
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone()).map_err(|e| format!("tensor {name}: shape: {e}"))?;
        let [a, b]: [usize; 2] =
            serde_json::from_value(info["data_offsets"].clone()).map_err(|e| format!("tensor {name}: offsets: {e}"))?;
        let bytes = data.get(a..b).ok_or_else(|| format!("tensor {name}: bytes {a}..{b} outside the data"))?;
        if bytes.len() != 4 * shape.iter().product::<usize>() {
            return Err(format!("tensor {name}: {} bytes for shape {shape:?}", bytes.len()));
        }
        let data = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.insert(name, Tensor { shape, data });
    }
    Ok(out)
}

fn parse(file: &[u8]) -> Result<AllWeights, String> {
    let t = tensors(file)?;
    Ok(AllWeights { r16k: rate(&t, "16k", 129)?, r8k: rate(&t, "8k", 65)? })
}

fn rate(t: &BTreeMap<String, Tensor>, prefix: &str, bins: usize) -> Result<Weights, String> {
    let get = |name: &str, shape: &[usize]| -> Result<&Tensor, String> {
        let full = format!("{prefix}.{name}");
        let x = t.get(&full).ok_or_else(|| format!("tensor {full} is missing"))?;
        if x.shape != shape {
            return Err(format!("tensor {full} has shape {:?}, expected {shape:?}", x.shape));
        }
        Ok(x)
    };
    // [out][in][3] -> rows [out][tap * in + i] over the taps `taps`.
    let conv = |name: &str, out: usize, inp: usize, taps: std::ops::Range<usize>| -> Result<Matrix, String> {
        let w = get(&format!("{name}.weight"), &[out, inp, 3])?;
        let k = taps.len() * inp;
        let mut data = vec![0f32; out * k];
        for o in 0..out {
            for (j, tap) in taps.clone().enumerate() {
                for i in 0..inp {
                    data[o * k + j * inp + i] = w.data[(o * inp + i) * 3 + tap];
                }
            }
        }
        Ok(Matrix { data, rows: out, k })
    };
    let vec = |name: &str, n: usize| -> Result<Vec<f32>, String> { Ok(get(name, &[n])?.data.clone()) };
    let lstm_b = vec("lstm.bias_ih", 4 * HIDDEN)?.iter().zip(vec("lstm.bias_hh", 4 * HIDDEN)?).map(|(a, b)| a + b).collect();
    let matrix = |name: &str| -> Result<Matrix, String> {
        Ok(Matrix { data: get(name, &[4 * HIDDEN, HIDDEN])?.data.clone(), rows: 4 * HIDDEN, k: HIDDEN })
    };
    Ok(Weights {
        bins,
        conv1: conv("conv1", 128, bins, 0..3)?,
        conv1_b: vec("conv1.bias", 128)?,
        conv2: conv("conv2", 64, 128, 0..3)?,
        conv2_b: vec("conv2.bias", 64)?,
        conv3: conv("conv3", 64, 64, 1..3)?,
        conv3_b: vec("conv3.bias", 64)?,
        conv4: conv("conv4", HIDDEN, 64, 1..2)?,
        conv4_b: vec("conv4.bias", HIDDEN)?,
        w_ih: matrix("lstm.weight_ih")?,
        w_hh: matrix("lstm.weight_hh")?,
        lstm_b,
        out_w: get("out.weight", &[1, HIDDEN, 1])?.data.clone(),
        out_b: vec("out.bias", 1)?[0],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_file_parses_with_every_tensor_of_both_rates() {
        let w = get().expect("weights");
        assert_eq!((w.r16k.conv1.rows, w.r16k.conv1.k), (128, 387));
        assert_eq!((w.r8k.conv1.rows, w.r8k.conv1.k), (128, 195));
        assert_eq!(w.r16k.w_hh.data.len(), 512 * 128);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_panic() {
        assert!(parse(&FILE[..4]).is_err());
        assert!(parse(&FILE[..1000]).is_err());
        let mut bad = FILE.to_vec();
        bad[10] = b'#';
        assert!(parse(&bad).is_err());
    }
}
