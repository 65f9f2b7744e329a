//! `FilterNode`: Butterworth low-pass, high-pass, band-pass and band-stop filters of any order and
//! RBJ audio-EQ-cookbook bands (peaking, low and high shelf, notch), several bands in one node, run
//! as one cascade of second-order sections in f64 ([`super::sos`]).
//!
//! Whole buffers are filtered from silence, or forward and backward (`zero_phase`, as scipy's
//! `sosfiltfilt`); a streaming session carries the filter state from chunk to chunk, so its chunks
//! add up to the whole-buffer output. Every param lives in [`FilterParams`]: its specs, the factory
//! and the filter design all read them from there. `python/remotemedia/_pure/filter.py` is the
//! numpy twin. Params, algorithm and measured accuracy: `docs/nodes.md#filternode`.

use serde_json::Value;

use super::sos::{butterworth, Cascade, Cookbook, Pass, Section};
use super::{check_finite, expect_audio, param_bool, param_f64, param_i64, param_str, Inputs, Node, NodeType, ParamKind, ParamSpec, Params, Variant};
use crate::data::{AudioBuffer, Payload, Samples};
use crate::error::NodeError;
use crate::nodes::format::into_f32;

pub const TYPE_NAME: &str = "FilterNode";

/// One band of a filter, as its manifest entry describes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Band {
    /// A Butterworth filter: `low_hz` is the cut-off of low- and high-pass filters.
    Butterworth { pass: Pass, order: usize, low_hz: f64, high_hz: f64 },
    Cookbook(Cookbook),
}

/// Band types with a Butterworth design, by the name manifests use.
const PASSES: [(&str, Pass); 4] =
    [("lowpass", Pass::Lowpass), ("highpass", Pass::Highpass), ("bandpass", Pass::Bandpass), ("bandstop", Pass::Bandstop)];

/// Every param of `FilterNode`, with the ranges and defaults of each band type's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterParams {
    pub bands: Vec<Band>,
    /// Filter forward then backward (whole buffers only).
    pub zero_phase: bool,
}

impl FilterParams {
    pub const MAX_BANDS: usize = 32;
    pub const MAX_ORDER: i64 = 16;
    pub const DEFAULT_ORDER: i64 = 2;
    pub const FREQ: ParamKind = ParamKind::Float { min: 1.0, max: 1e6 };
    pub const Q: ParamKind = ParamKind::Float { min: 0.01, max: 100.0 };
    pub const GAIN_DB: ParamKind = ParamKind::Float { min: -48.0, max: 48.0 };
    /// Default Q per cookbook band: a one-octave peak, the steepest monotonic shelf, a narrow notch.
    pub const DEFAULT_Q_PEAKING: f64 = 1.0;
    pub const DEFAULT_Q_SHELF: f64 = std::f64::consts::FRAC_1_SQRT_2;
    pub const DEFAULT_Q_NOTCH: f64 = 30.0;

    /// The param specs: `bands` (a list of tagged band objects) and `zero_phase`.
    pub fn specs() -> Vec<ParamSpec> {
        let freq = |doc| ParamSpec::required("freq_hz", Self::FREQ, doc);
        let order = || {
            ParamSpec::with_default(
                "order",
                ParamKind::Int { min: 1, max: Self::MAX_ORDER },
                Value::from(Self::DEFAULT_ORDER),
                "Butterworth order (a band filter has twice as many poles, as in scipy)",
            )
        };
        let q = |default: f64| ParamSpec::with_default("q", Self::Q, Value::from(default), "quality factor: centre frequency / bandwidth");
        let gain = || ParamSpec::required("gain_db", Self::GAIN_DB, "gain in dB at the centre (peaking) or beyond the corner (shelves)");
        let edges = || {
            vec![
                ParamSpec::required("low_hz", Self::FREQ, "lower -3 dB edge in Hz"),
                ParamSpec::required("high_hz", Self::FREQ, "upper -3 dB edge in Hz"),
                order(),
            ]
        };
        let variant = |name, doc, fields, increasing| Variant { name, doc, fields, increasing };
        let variants = vec![
            variant("lowpass", "Butterworth low-pass", vec![freq("-3 dB cut-off in Hz"), order()], vec![]),
            variant("highpass", "Butterworth high-pass", vec![freq("-3 dB cut-off in Hz"), order()], vec![]),
            variant("bandpass", "Butterworth band-pass", edges(), vec![("low_hz", "high_hz")]),
            variant("bandstop", "Butterworth band-stop", edges(), vec![("low_hz", "high_hz")]),
            variant("peaking", "RBJ peaking EQ", vec![freq("centre in Hz"), gain(), q(Self::DEFAULT_Q_PEAKING)], vec![]),
            variant("lowshelf", "RBJ low shelf", vec![freq("corner (half gain) in Hz"), gain(), q(Self::DEFAULT_Q_SHELF)], vec![]),
            variant("highshelf", "RBJ high shelf", vec![freq("corner (half gain) in Hz"), gain(), q(Self::DEFAULT_Q_SHELF)], vec![]),
            variant("notch", "RBJ notch", vec![freq("notch frequency in Hz"), q(Self::DEFAULT_Q_NOTCH)], vec![]),
        ];
        vec![
            ParamSpec::required(
                "bands",
                ParamKind::List { item: Box::new(ParamKind::Tagged { tag: "type", variants }), min_len: 1, max_len: Self::MAX_BANDS },
                "the bands, applied in order: {\"type\": \"highpass\", \"freq_hz\": 80, \"order\": 4}, \
                 {\"type\": \"peaking\", \"freq_hz\": 3000, \"gain_db\": 4, \"q\": 1}, ...",
            ),
            ParamSpec::with_default(
                "zero_phase",
                ParamKind::Bool,
                Value::from(false),
                "filter whole buffers forward and backward (no phase shift, squared magnitude); not in streams",
            ),
        ]
    }

    /// Reads validated params (defaults filled in by validation, or taken from the consts here).
    pub fn from_params(params: &Params) -> Result<FilterParams, NodeError> {
        let list = match params.get("bands") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            other => return Err(NodeError::permanent(format!("param 'bands' must be a list of 1 to {} bands, found {}", Self::MAX_BANDS, other.unwrap_or(&Value::Null)))),
        };
        let bands = list.iter().enumerate().map(|(i, b)| Self::band(i, b)).collect::<Result<_, _>>()?;
        Ok(FilterParams { bands, zero_phase: param_bool(params, "zero_phase")?.unwrap_or(false) })
    }

    fn band(i: usize, v: &Value) -> Result<Band, NodeError> {
        let bad = |what: String| NodeError::permanent(format!("param 'bands[{i}]': {what}"));
        let Value::Object(b) = v else { return Err(bad(format!("a band object, found {v}"))) };
        let kind = param_str(b, "type")?.ok_or_else(|| bad("a \"type\"".into()))?;
        let need = |name: &str| param_f64(b, name)?.ok_or_else(|| bad(format!("a \"{kind}\" band needs '{name}'")));
        let q = |default: f64| Ok::<f64, NodeError>(param_f64(b, "q")?.unwrap_or(default));
        if let Some(&(_, pass)) = PASSES.iter().find(|(n, _)| *n == kind) {
            let order = param_i64(b, "order")?.unwrap_or(Self::DEFAULT_ORDER).clamp(1, Self::MAX_ORDER) as usize;
            let (low_hz, high_hz) = match pass {
                Pass::Lowpass | Pass::Highpass => (need("freq_hz")?, 0.0),
                Pass::Bandpass | Pass::Bandstop => (need("low_hz")?, need("high_hz")?),
            };
            return Ok(Band::Butterworth { pass, order, low_hz, high_hz });
        }
        let freq_hz = need("freq_hz")?;
        Ok(Band::Cookbook(match kind {
            "peaking" => Cookbook::Peaking { freq_hz, q: q(Self::DEFAULT_Q_PEAKING)?, gain_db: need("gain_db")? },
            "lowshelf" => Cookbook::LowShelf { freq_hz, q: q(Self::DEFAULT_Q_SHELF)?, gain_db: need("gain_db")? },
            "highshelf" => Cookbook::HighShelf { freq_hz, q: q(Self::DEFAULT_Q_SHELF)?, gain_db: need("gain_db")? },
            "notch" => Cookbook::Notch { freq_hz, q: q(Self::DEFAULT_Q_NOTCH)? },
            other => return Err(bad(format!("unknown band type \"{other}\""))),
        }))
    }

    /// The sections of every band at `rate`, in order; `InvalidInput` when a band's frequency is
    /// not strictly between 0 and the Nyquist frequency of the audio.
    pub fn design(&self, rate: u32) -> Result<Vec<Section>, NodeError> {
        let nyquist = rate as f64 / 2.0;
        let mut out = Vec::new();
        for (i, band) in self.bands.iter().enumerate() {
            let (name, freqs): (&str, Vec<(&str, f64)>) = match *band {
                Band::Butterworth { pass, low_hz, high_hz, .. } => {
                    let name = PASSES.iter().find(|(_, p)| *p == pass).map_or("", |(n, _)| n);
                    match pass {
                        Pass::Lowpass | Pass::Highpass => (name, vec![("freq_hz", low_hz)]),
                        _ => (name, vec![("low_hz", low_hz), ("high_hz", high_hz)]),
                    }
                }
                Band::Cookbook(c) => {
                    let (name, f) = match c {
                        Cookbook::Peaking { freq_hz, .. } => ("peaking", freq_hz),
                        Cookbook::LowShelf { freq_hz, .. } => ("lowshelf", freq_hz),
                        Cookbook::HighShelf { freq_hz, .. } => ("highshelf", freq_hz),
                        Cookbook::Notch { freq_hz, .. } => ("notch", freq_hz),
                    };
                    (name, vec![("freq_hz", f)])
                }
            };
            if let Some((field, f)) = freqs.iter().find(|(_, f)| *f >= nyquist) {
                return Err(NodeError::invalid_input(format!(
                    "{TYPE_NAME} bands[{i}] (\"{name}\"): {field} {f} Hz is not below the Nyquist frequency \
                     ({nyquist} Hz) of {rate} Hz audio"
                )));
            }
            match *band {
                Band::Butterworth { pass, order, low_hz, high_hz } => out.extend(butterworth(order, pass, low_hz, high_hz, rate as f64)),
                Band::Cookbook(c) => out.push(c.section(rate as f64)),
            }
        }
        Ok(out)
    }
}

struct FilterNode {
    params: FilterParams,
    /// The cascade for the last rate and channel count seen (designs are reused between runs).
    cascade: Option<(u32, Cascade)>,
    /// In a streaming session: the session's audio format is fixed by its first chunk.
    streaming: bool,
}

impl FilterNode {
    /// The cascade for this audio, designed anew only when the rate or channel count changes.
    fn cascade_for(&mut self, rate: u32, channels: usize) -> Result<&mut Cascade, NodeError> {
        let fits = matches!(&self.cascade, Some((r, c)) if *r == rate && c.channels() == channels);
        if !fits {
            let sections = self.params.design(rate)?;
            self.cascade = Some((rate, Cascade::new(sections, channels)));
        }
        Ok(&mut self.cascade.as_mut().expect("set above").1)
    }

    fn filter(&mut self, audio: AudioBuffer, stream: bool) -> Result<Payload, NodeError> {
        if stream && self.params.zero_phase {
            return Err(NodeError::invalid_input(format!(
                "{TYPE_NAME} with zero_phase filters whole buffers forward and backward; a streaming session \
                 cannot look ahead: use zero_phase: false"
            )));
        }
        if stream && self.streaming {
            if let Some((rate, c)) = &self.cascade {
                if (*rate, c.channels()) != (audio.sample_rate, audio.channels.max(1) as usize) {
                    return Err(NodeError::invalid_input(format!(
                        "this stream started with audio at {rate} Hz and {} channel(s); a chunk at {} Hz with {} \
                         channel(s) cannot continue it",
                        c.channels(),
                        audio.sample_rate,
                        audio.channels
                    )));
                }
            }
        }
        let (rate, channels) = (audio.sample_rate, audio.channels);
        let zero_phase = self.params.zero_phase;
        let continuing = stream && self.streaming;
        let cascade = self.cascade_for(rate, channels.max(1) as usize)?;
        let mut samples = into_f32(audio.samples);
        check_finite(TYPE_NAME, &samples)?;
        if !continuing {
            cascade.reset();
        }
        if zero_phase {
            cascade.filtfilt(&mut samples);
        } else {
            cascade.process(&mut samples);
        }
        self.streaming = stream;
        Ok(Payload::Audio(AudioBuffer { samples: Samples::F32(samples.into()), sample_rate: rate, channels }))
    }
}

impl Node for FilterNode {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        self.streaming = false;
        self.filter(expect_audio(inputs.one()?)?, false)
    }

    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        self.filter(expect_audio(inputs.one()?)?, true)
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: FilterParams::specs(),
        stateful: true,
        ..NodeType::new(
            TYPE_NAME,
            "Butterworth low/high/band-pass and band-stop filters of any order and RBJ cookbook EQ bands \
             (peaking, shelves, notch), applied in order as second-order sections in f64; f32/i16/i32 in, f32 out; \
             optional zero-phase (forward-backward) filtering of whole buffers.",
            |cfg| Ok(Box::new(FilterNode { params: FilterParams::from_params(cfg.params)?, cascade: None, streaming: false })),
        )
    }
}
