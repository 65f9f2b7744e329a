//! `ChannelMixNode`: changes the channel count of audio: downmix to mono (the mean of the
//! channels, or one chosen channel), upmix mono to N channels, or any mix given as a matrix of
//! gains. [`to_mono`] is the same downmix as a plain function, for loaders that want mono.
//!
//! Arithmetic is f32, one output sample at a time in input-channel order (`acc = g0·x0;
//! acc += g1·x1; …`, the mean divides the sum by the channel count), which the numpy twin
//! `python/remotemedia/_pure/channel_mix.py` repeats operation for operation: both give the same
//! bits. Integer input is converted with the engine's convention first (`nodes::format`).

use serde_json::Value;

use super::format::{s_i16_to_f32, s_i32_to_f32};
use super::params::node_params;
use super::{expect_audio, Inputs, Node, NodeType, ParamKind, Params};
use crate::data::{AudioBuffer, Payload, Samples};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "ChannelMixNode";

/// Most channels a mix may produce or read (the engine's channel limit elsewhere too).
pub const MAX_CHANNELS: usize = 256;

node_params! {
    /// `ChannelMixNode`'s params.
    pub struct ChannelMixParams {
        channels: Option<i64> = None, ParamKind::Int { min: 1, max: MAX_CHANNELS as i64 },
            "output channel count; absent: 1, or the matrix's row count";
        channel: Option<i64> = None, ParamKind::Int { min: 0, max: MAX_CHANNELS as i64 - 1 },
            "take this input channel (counted from 0) for every output channel instead of the mean";
        matrix: Option<Value> = None, ParamKind::Any,
            "gains, one row per output channel and one column per input channel: out[o] = sum of matrix[o][i] * in[i]";
    }
}

/// How output channels are made from input channels.
#[derive(Clone, Debug, PartialEq)]
pub enum Mix {
    /// `channels` outputs: the input when it already has that many; else each output is the
    /// mean of the input channels (to mono), or the one input channel (mono to N).
    Mean { channels: usize },
    /// Every one of `channels` outputs is input channel `channel`.
    Select { channel: usize, channels: usize },
    /// `out[o] = Σ_i rows[o][i] · in[i]`.
    Matrix(Vec<Vec<f32>>),
}

impl ChannelMixParams {
    /// The problems no single param shows, as `(param, expected, found)`: run by manifest
    /// validation and again by the node's factory.
    pub fn problems(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let Some(m) = &self.matrix else { return out };
        if self.channel.is_some() {
            out.push(("matrix".into(), "either channel or matrix, not both".into(), "both channel and matrix".into()));
        }
        match matrix_rows(m) {
            Ok(rows) => {
                if let Some(c) = self.channels {
                    if c as usize != rows.len() {
                        out.push(("channels".into(), format!("the matrix's row count, {}", rows.len()), c.to_string()));
                    }
                }
            }
            Err(found) => out.push((
                "matrix".into(),
                format!(
                    "a list of 1 to {MAX_CHANNELS} rows (one per output channel), each a list of 1 to {MAX_CHANNELS} \
                     finite numbers (one gain per input channel), all rows the same length"
                ),
                found,
            )),
        }
        out
    }

    /// The mix these params ask for (after [`problems`](Self::problems) found none).
    pub fn mix(&self) -> Result<Mix, NodeError> {
        if let Some(p) = self.problems().into_iter().next() {
            return Err(NodeError::permanent(format!("param '{}': expected {}, found {}", p.0, p.1, p.2)));
        }
        let channels = self.channels.unwrap_or(1) as usize;
        Ok(match (&self.matrix, self.channel) {
            (Some(m), _) => Mix::Matrix(matrix_rows(m).map_err(NodeError::permanent)?),
            (None, Some(channel)) => Mix::Select { channel: channel as usize, channels },
            (None, None) => Mix::Mean { channels },
        })
    }
}

/// The manifest's matrix as rows of f32 gains, or what is wrong with it.
fn matrix_rows(m: &Value) -> Result<Vec<Vec<f32>>, String> {
    let Value::Array(rows) = m else { return Err("a value that is not a list".into()) };
    if rows.is_empty() || rows.len() > MAX_CHANNELS {
        return Err(format!("a list of {} rows", rows.len()));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (o, row) in rows.iter().enumerate() {
        let Value::Array(gains) = row else { return Err(format!("row {o}, which is not a list")) };
        if gains.is_empty() || gains.len() > MAX_CHANNELS {
            return Err(format!("row {o} with {}", gains_text(gains.len())));
        }
        let row: Option<Vec<f32>> = gains.iter().map(|g| g.as_f64().filter(|f| f.is_finite()).map(|f| f as f32)).collect();
        let Some(row) = row else { return Err(format!("row {o} holding something other than a finite number")) };
        if let Some(first) = out.first().map(Vec::len) {
            if row.len() != first {
                return Err(format!("row {o} with {}, row 0 with {first}", gains_text(row.len())));
            }
        }
        out.push(row);
    }
    Ok(out)
}

impl Mix {
    /// The output channel count for `input` channels.
    pub fn output_channels(&self) -> usize {
        match self {
            Mix::Mean { channels } | Mix::Select { channels, .. } => *channels,
            Mix::Matrix(rows) => rows.len(),
        }
    }

    /// Whether audio with `input` channels passes unchanged (no mixing, no format change).
    fn passes(&self, input: usize) -> bool {
        match self {
            Mix::Mean { channels } => *channels == input,
            Mix::Select { channel, channels } => *channel == 0 && *channels == 1 && input == 1,
            Mix::Matrix(_) => false,
        }
    }

    /// Mixes `audio`; the message of an error says why this input cannot be mixed so.
    pub fn apply(&self, audio: AudioBuffer) -> Result<AudioBuffer, String> {
        let input = audio.channels as usize;
        if self.passes(input) {
            return Ok(audio);
        }
        let gains: Vec<Vec<f32>> = match self {
            Mix::Mean { channels } if *channels == 1 => return Ok(to_mono(audio)),
            Mix::Mean { channels } if input == 1 => vec![vec![1.0]; *channels],
            Mix::Mean { channels } => {
                return Err(format!(
                    "ChannelMixNode has no default mix from {input} to {channels} channels (only to mono, or mono to N); \
                     give a matrix of {channels} rows of {input} gains"
                ))
            }
            Mix::Select { channel, .. } if *channel >= input => {
                return Err(format!(
                    "ChannelMixNode takes input channel {channel} (param channel, counted from 0), but the input has {}",
                    channels_text(input)
                ))
            }
            Mix::Select { channel, channels } => {
                let mut row = vec![0.0; input];
                row[*channel] = 1.0;
                vec![row; *channels]
            }
            Mix::Matrix(rows) if rows[0].len() != input => {
                return Err(format!(
                    "ChannelMixNode's matrix has {} per row, one per input channel, but the input has {}",
                    gains_text(rows[0].len()),
                    channels_text(input)
                ))
            }
            Mix::Matrix(rows) => rows.clone(),
        };
        Ok(mixed(&audio, &gains))
    }
}

/// Downmixes to mono by the mean of the channels (f32 out); mono audio is returned unchanged.
/// The same code as `ChannelMixNode` with its defaults, for loaders that offer `mono=True`.
pub fn to_mono(audio: AudioBuffer) -> AudioBuffer {
    if audio.channels <= 1 {
        return audio;
    }
    mixed(&audio, &[])
}

/// `audio` mixed by `gains` (one row per output channel; none: the mean to mono), as f32.
fn mixed(audio: &AudioBuffer, gains: &[Vec<f32>]) -> AudioBuffer {
    let input = audio.channels.max(1) as usize;
    let samples = match &audio.samples {
        Samples::F32(v) => mix_frames(v, input, gains, |x| x),
        Samples::I16(v) => mix_frames(v, input, gains, s_i16_to_f32),
        Samples::I32(v) => mix_frames(v, input, gains, s_i32_to_f32),
    };
    let channels = gains.len().max(1) as u16;
    AudioBuffer { samples: Samples::F32(samples.into()), sample_rate: audio.sample_rate, channels }
}

fn channels_text(n: usize) -> String {
    format!("{n} channel{}", if n == 1 { "" } else { "s" })
}

fn gains_text(n: usize) -> String {
    format!("{n} gain{}", if n == 1 { "" } else { "s" })
}

/// One pass over interleaved frames: with no `gains`, the mean of each frame's channels; else
/// `out[o] = Σ_i gains[o][i] · in[i]` in input-channel order (a first term of `gain · x`, not
/// `0 + gain · x`, so the twin's `g0 * x0 + g1 * x1 …` gives the same bits).
fn mix_frames<T: Copy>(v: &[T], input: usize, gains: &[Vec<f32>], to_f32: impl Fn(T) -> f32) -> Vec<f32> {
    let frames = v.len() / input;
    if gains.is_empty() {
        let n = input as f32;
        return v
            .chunks_exact(input)
            .map(|frame| {
                let mut acc = to_f32(frame[0]);
                for &x in &frame[1..] {
                    acc += to_f32(x);
                }
                acc / n
            })
            .collect();
    }
    let mut out = Vec::with_capacity(frames * gains.len());
    for frame in v.chunks_exact(input) {
        for row in gains {
            let mut acc = row[0] * to_f32(frame[0]);
            for (g, &x) in row[1..].iter().zip(&frame[1..]) {
                acc += g * to_f32(x);
            }
            out.push(acc);
        }
    }
    out
}

struct ChannelMix {
    mix: Mix,
}

impl Node for ChannelMix {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let audio = expect_audio(inputs.one()?)?;
        self.mix.apply(audio).map(Payload::Audio).map_err(NodeError::invalid_input)
    }
}

fn check(params: &Params) -> Vec<(String, String, String)> {
    match ChannelMixParams::from_params(params) {
        Ok(p) => p.problems(),
        Err(e) => vec![(String::new(), "params ChannelMixNode can read".into(), e.into_fields().message)],
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: ChannelMixParams::specs(),
        check: Some(check),
        ..NodeType::new(
            TYPE_NAME,
            "Changes the channel count: to mono by the mean of the channels (default) or one chosen channel, \
             mono to N channels, or any mix as a matrix of gains. Output f32 (integer input converted first); \
             audio that already has the requested channels passes unchanged.",
            |cfg| Ok(Box::new(ChannelMix { mix: ChannelMixParams::from_params(cfg.params)?.mix()? })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stereo(l: &[f32], r: &[f32]) -> AudioBuffer {
        let v: Vec<f32> = l.iter().zip(r).flat_map(|(a, b)| [*a, *b]).collect();
        AudioBuffer { samples: Samples::F32(v.into()), sample_rate: 16000, channels: 2 }
    }

    #[test]
    fn mean_select_upmix_and_matrix() {
        let a = stereo(&[1.0, 0.5, -1.0], &[0.0, 0.5, 1.0]);
        assert_eq!(to_mono(a.clone()).samples, Samples::F32(vec![0.5, 0.5, 0.0].into()));
        let right = Mix::Select { channel: 1, channels: 1 }.apply(a.clone()).unwrap();
        assert_eq!(right.samples, Samples::F32(vec![0.0, 0.5, 1.0].into()));
        let up = Mix::Mean { channels: 3 }.apply(AudioBuffer::mono_f32(vec![0.25, -0.5], 8000)).unwrap();
        assert_eq!((up.channels, up.samples), (3, Samples::F32(vec![0.25, 0.25, 0.25, -0.5, -0.5, -0.5].into())));
        let swap = Mix::Matrix(vec![vec![0.0, 1.0], vec![1.0, 0.0]]).apply(a).unwrap();
        assert_eq!(swap.samples, Samples::F32(vec![0.0, 1.0, 0.5, 0.5, 1.0, -1.0].into()));
    }

    #[test]
    fn integers_use_the_format_convention_and_mono_passes_unchanged() {
        let i16s = AudioBuffer { samples: Samples::I16(vec![16384, -16384, 32767, 32767].into()), sample_rate: 8000, channels: 2 };
        assert_eq!(to_mono(i16s).samples, Samples::F32(vec![0.0, 32767.0 / 32768.0].into()));
        let mono = AudioBuffer { samples: Samples::I16(vec![1, 2, 3].into()), sample_rate: 8000, channels: 1 };
        assert_eq!(to_mono(mono.clone()), mono);
    }

    #[test]
    fn mixes_this_input_cannot_take_are_errors() {
        let six = AudioBuffer { samples: Samples::F32(vec![0.0; 12].into()), sample_rate: 8000, channels: 6 };
        let e = Mix::Mean { channels: 2 }.apply(six.clone()).unwrap_err();
        assert!(e.contains("no default mix from 6 to 2 channels"), "{e}");
        let e = Mix::Select { channel: 6, channels: 1 }.apply(six.clone()).unwrap_err();
        assert!(e.ends_with("but the input has 6 channels"), "{e}");
        let e = Mix::Matrix(vec![vec![1.0, 1.0]]).apply(six).unwrap_err();
        assert!(e.contains("has 2 gains per row"), "{e}");
    }

    #[test]
    fn param_problems() {
        let mut p = ChannelMixParams { matrix: Some(serde_json::json!([[1, 0], [0]])), ..Default::default() };
        assert_eq!(p.problems()[0].2, "row 1 with 1 gain, row 0 with 2");
        p.matrix = Some(serde_json::json!([[0.5, 0.5]]));
        p.channels = Some(2);
        p.channel = Some(0);
        let found: Vec<String> = p.problems().into_iter().map(|x| x.0).collect();
        assert_eq!(found, ["matrix", "channels"]);
    }
}
