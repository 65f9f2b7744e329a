//! `SegmentNode`: cuts a VAD result's audio into one clip per speech segment, the step between a
//! VAD and a dataset of model-ready clips.
//!
//! In frames of the audio, in this order: segments are rounded to frames and joined where they
//! touch; segments less than `merge_gap_ms` apart are merged; segments shorter than
//! `min_duration_s` are dropped; each is padded by `pad_ms` on both sides, never past the
//! recording's ends and never into a neighbour (two segments closer than twice the padding
//! share the gap, each taking half, as silero-vad's `get_speech_timestamps` does); a clip longer
//! than `max_duration_s` is split at its quietest points (the lowest energy over 10 ms) into the
//! fewest pieces that fit, each at least `min_duration_s` long where that is possible. Pieces of
//! one split are adjacent: no frame is lost or repeated. With no padding, merging or dropping,
//! the clips hold exactly the segments' frames.
//!
//! In a streaming session each chunk's VAD result is kept (its audio and segments, which are in
//! session time) and every push returns no clips; `finish` cuts the whole session, so the clips
//! of a session are those of the same audio run whole, at the session's end.
//!
//! `python/remotemedia/_pure/segment.py` is the numpy twin (same spans, same split points).

use super::format::{s_i16_to_f32, s_i32_to_f32};
use super::params::node_params;
use super::{Inputs, Node, NodeType, ParamKind, Params};
use crate::data::{AudioBuffer, Clip, Payload, Samples, VadResult};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "SegmentNode";

node_params! {
    /// `SegmentNode`'s params.
    pub struct SegmentParams {
        pad_ms: f64 = 30.0, ParamKind::Float { min: 0.0, max: 10_000.0 },
            "ms of audio kept before and after each segment (at most half the gap to a neighbour, never past the recording's ends)";
        min_duration_s: f64 = 0.25, ParamKind::Float { min: 0.0, max: 3600.0 },
            "segments shorter than this (after merging, before padding) are dropped; also the shortest piece a split aims for";
        max_duration_s: Option<f64> = None, ParamKind::Float { min: 0.1, max: 86_400.0 },
            "clips longer than this (padding included) are split at their quietest 10 ms; absent: no limit";
        merge_gap_ms: f64 = 0.0, ParamKind::Float { min: 0.0, max: 60_000.0 },
            "segments separated by less than this much non-speech are merged into one";
    }
}

impl SegmentParams {
    /// The problems no single param shows, as `(param, expected, found)`: run by manifest
    /// validation and again by the node's factory.
    pub fn problems(&self) -> Vec<(String, String, String)> {
        match self.max_duration_s {
            Some(max) if max < self.min_duration_s => vec![(
                "max_duration_s".into(),
                format!("at least min_duration_s ({})", self.min_duration_s),
                max.to_string(),
            )],
            _ => Vec::new(),
        }
    }
}

/// A count of frames for a duration in seconds at `rate`, rounded to the nearest frame.
fn frames_of(seconds: f64, rate: u32) -> usize {
    (seconds * rate as f64).round().max(0.0) as usize
}

/// The clips' frame spans `(start, end)` for `segments` (seconds) over `audio`, in time order.
pub fn spans(audio: &AudioBuffer, segments: &[(f64, f64)], p: &SegmentParams) -> Vec<(usize, usize)> {
    let n = audio.frames();
    let rate = audio.sample_rate;
    // Rounded to frames, clamped to the audio, empty ones left out, touching ones joined.
    let mut rounded: Vec<(usize, usize)> = segments
        .iter()
        .map(|&(s, e)| {
            let a = frames_of(s, rate).min(n);
            (a, frames_of(e, rate).clamp(a, n))
        })
        .filter(|&(a, b)| b > a)
        .collect();
    rounded.sort_unstable();
    let mut joined: Vec<(usize, usize)> = Vec::with_capacity(rounded.len());
    let gap = frames_of(p.merge_gap_ms / 1000.0, rate);
    for (a, b) in rounded {
        match joined.last_mut() {
            Some(last) if a <= last.1 || a - last.1 < gap => last.1 = last.1.max(b),
            _ => joined.push((a, b)),
        }
    }
    let min_len = frames_of(p.min_duration_s, rate);
    joined.retain(|&(a, b)| b - a >= min_len);
    let pad = frames_of(p.pad_ms / 1000.0, rate);
    let mut padded = joined.clone();
    for i in 0..joined.len() {
        let left = if i == 0 { joined[i].0 } else { (joined[i].0 - joined[i - 1].1) / 2 };
        let right = if i + 1 == joined.len() { n - joined[i].1 } else { (joined[i + 1].0 - joined[i].1) / 2 };
        padded[i] = (joined[i].0 - pad.min(left), joined[i].1 + pad.min(right));
    }
    let Some(max_s) = p.max_duration_s else { return padded };
    let max_len = frames_of(max_s, rate).max(1);
    let mut out = Vec::with_capacity(padded.len());
    for (a, b) in padded {
        split(audio, a, b, max_len, min_len, &mut out);
    }
    out
}

/// Splits `a..b` into the fewest pieces of at most `max_len` frames, each cut at the quietest
/// point the limits allow; pushes the pieces onto `out`.
fn split(audio: &AudioBuffer, mut a: usize, b: usize, max_len: usize, min_len: usize, out: &mut Vec<(usize, usize)>) {
    if b - a <= max_len {
        out.push((a, b));
        return;
    }
    let energy = prefix_energy(audio, a, b);
    let base = a;
    // Half of a 10 ms window (at least one frame).
    let w = (audio.sample_rate as usize / 200).max(1);
    let window = |p: usize| energy[(p + w).min(b) - base] - energy[p.saturating_sub(w).max(base) - base];
    while b - a > max_len {
        let rest = b - a;
        let pieces = rest.div_ceil(max_len);
        // The cut keeps this piece within max_len and leaves the rest for pieces - 1 pieces.
        let (lo, hi) = (rest - (pieces - 1) * max_len, max_len);
        // Within that, keep both sides at least min_len (no more than half a piece) if possible.
        let keep = min_len.min(max_len / 2);
        let (lo, hi) = if lo.max(keep) <= hi.min(rest - keep) { (lo.max(keep), hi.min(rest - keep)) } else { (lo, hi) };
        let mut best = a + lo;
        let mut best_e = f64::INFINITY;
        for p in a + lo..=a + hi {
            // `<=`: among equally quiet points the latest, so pieces come out as long as allowed.
            let e = window(p);
            if e <= best_e {
                best_e = e;
                best = p;
            }
        }
        out.push((a, best));
        a = best;
    }
    out.push((a, b));
}

/// Running sums of each frame's energy (sum over channels of x², in f64) over frames `a..b`:
/// `sums[k]` is the energy of frames `a..a + k`.
fn prefix_energy(audio: &AudioBuffer, a: usize, b: usize) -> Vec<f64> {
    fn run<T: Copy>(v: &[T], ch: usize, a: usize, b: usize, f: impl Fn(T) -> f32) -> Vec<f64> {
        let mut sums = Vec::with_capacity(b - a + 1);
        let mut total = 0.0f64;
        sums.push(total);
        for frame in v[a * ch..b * ch].chunks_exact(ch) {
            let mut e = 0.0f64;
            for &x in frame {
                let x = f(x) as f64;
                e += x * x;
            }
            total += e;
            sums.push(total);
        }
        sums
    }
    let ch = audio.channels.max(1) as usize;
    match &audio.samples {
        Samples::F32(v) => run(v, ch, a, b, |x| x),
        Samples::I16(v) => run(v, ch, a, b, s_i16_to_f32),
        Samples::I32(v) => run(v, ch, a, b, s_i32_to_f32),
    }
}

/// The clips of a VAD result: its audio cut at [`spans`].
pub fn cut(vad: &VadResult, p: &SegmentParams) -> Vec<Clip> {
    spans(&vad.audio, &vad.segments, p)
        .into_iter()
        .map(|(a, b)| Clip { start_frame: a as u64, audio: vad.audio.frame_range(a, b) })
        .collect()
}

struct Segment {
    params: SegmentParams,
    /// A streaming session's VAD results so far, joined (segments in session time).
    session: Option<VadResult>,
}

/// The VAD result a SegmentNode is given, or an error saying what it needs.
fn expect_vad(inputs: Inputs) -> Result<VadResult, NodeError> {
    match inputs.one()? {
        Payload::Vad(v) => Ok(*v),
        other => Err(NodeError::invalid_input(format!(
            "SegmentNode needs a VAD result (speech segments and their audio), received {}; put it after a VAD node, \
             on the VAD's whole output (no output_key)",
            other.kind()
        ))),
    }
}

impl Node for Segment {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        Ok(Payload::Clips(cut(&expect_vad(inputs)?, &self.params)))
    }

    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let v = expect_vad(inputs)?;
        match &mut self.session {
            None => self.session = Some(v),
            Some(acc) => {
                // Checked before anything changes, so a refused chunk leaves the session as it was.
                acc.audio.append(&v.audio).map_err(NodeError::invalid_input)?;
                acc.segments.extend(v.segments);
            }
        }
        Ok(Payload::Clips(Vec::new()))
    }

    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        if let Some(inputs) = inputs {
            self.push(inputs)?;
        }
        let clips = self.session.take().map(|v| cut(&v, &self.params)).unwrap_or_default();
        Ok(Some(Payload::Clips(clips)))
    }
}

fn check(params: &Params) -> Vec<(String, String, String)> {
    match SegmentParams::from_params(params) {
        Ok(p) => p.problems(),
        Err(e) => vec![(String::new(), "params SegmentNode can read".into(), e.into_fields().message)],
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: SegmentParams::specs(),
        check: Some(check),
        stateful: true,
        ..NodeType::new(
            TYPE_NAME,
            "Cuts a VAD result's audio into clips, one per speech segment: merges segments closer than \
             merge_gap_ms, drops those shorter than min_duration_s, pads by pad_ms, splits clips longer \
             than max_duration_s at their quietest points. Output: the clips, each with its start in the recording.",
            |cfg| {
                let params = SegmentParams::from_params(cfg.params)?;
                if let Some((param, expected, found)) = params.problems().into_iter().next() {
                    return Err(NodeError::permanent(format!("param '{param}': expected {expected}, found {found}")));
                }
                Ok(Box::new(Segment { params, session: None }))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> SegmentParams {
        SegmentParams { pad_ms: 0.0, min_duration_s: 0.0, max_duration_s: None, merge_gap_ms: 0.0 }
    }

    #[test]
    fn segments_become_frame_spans_exactly() {
        let audio = AudioBuffer::mono_f32(vec![0.1; 16000], 16000);
        let s = spans(&audio, &[(0.03, 0.09), (0.09, 0.12), (0.5, 0.62), (0.99, 1.5)], &none());
        // Touching segments are joined; the last is clamped to the audio.
        assert_eq!(s, vec![(480, 1920), (8000, 9920), (15840, 16000)]);
    }

    #[test]
    fn padding_stops_at_the_ends_and_halfway_to_a_neighbour() {
        let audio = AudioBuffer::mono_f32(vec![0.1; 16000], 16000);
        let p = SegmentParams { pad_ms: 100.0, ..none() };
        let s = spans(&audio, &[(0.05, 0.3), (0.4, 0.6), (0.9, 0.95)], &p);
        assert_eq!(s, vec![(0, 5600), (5600, 11200), (12800, 16000)]);
    }

    #[test]
    fn merging_and_dropping() {
        let audio = AudioBuffer::mono_f32(vec![0.1; 16000], 16000);
        let p = SegmentParams { merge_gap_ms: 150.0, min_duration_s: 0.2, ..none() };
        let s = spans(&audio, &[(0.0, 0.1), (0.2, 0.3), (0.5, 0.6), (0.7, 0.71)], &p);
        // 0.0-0.3 merged (gap 0.1 < 0.15); 0.5-0.6 and 0.7-0.71 merged into 0.5-0.71 (0.21 s).
        assert_eq!(s, vec![(0, 4800), (8000, 11360)]);
    }
}
