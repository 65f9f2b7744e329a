//! Node types: the `Node` trait every operator body implements, the parameter schemas that
//! validation checks manifests against, and the registry that maps type names to both.

pub mod channel_mix;
pub mod cpu;
pub mod denoise;
pub mod describe;
pub mod fbank;
pub mod filter;
pub mod format;
pub mod gain;
pub mod kaldi;
pub mod lane_fft;
pub mod log_mel;
pub mod loudness;
pub mod mfcc;
pub mod mix;
pub mod params;
pub mod passthrough;
pub mod resample;
pub mod segment;
pub mod silero;
pub mod silero_vad;
pub mod sos;
pub mod sos_split;
pub mod spectral;
pub mod vad;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::data::{AudioBuffer, Payload};
use crate::error::NodeError;

/// A node's parameters after validation: every declared param present, defaults filled in.
pub type Params = serde_json::Map<String, Value>;

/// The inputs one node execution receives, by port name.
///
/// A node with one input port sees a single entry named `in`.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    entries: Vec<(String, Payload)>,
}

impl Inputs {
    pub fn single(payload: Payload) -> Inputs {
        Inputs { entries: vec![(DEFAULT_PORT.to_string(), payload)] }
    }

    pub fn from_ports(entries: Vec<(String, Payload)>) -> Inputs {
        Inputs { entries }
    }

    /// Takes the first (for one-input nodes, the only) input.
    pub fn one(mut self) -> Result<Payload, NodeError> {
        if self.entries.is_empty() {
            return Err(NodeError::invalid_input("the node received no input"));
        }
        Ok(self.entries.swap_remove(0).1)
    }

    /// Takes the input on a named port.
    pub fn take(&mut self, port: &str) -> Option<Payload> {
        let i = self.entries.iter().position(|(p, _)| p == port)?;
        Some(self.entries.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn into_entries(self) -> Vec<(String, Payload)> {
        self.entries
    }
}

/// The port name used when an edge names none.
pub const DEFAULT_PORT: &str = "in";

/// What a node does with one item's inputs.
///
/// A node instance lives on one worker and keeps whatever it needs between calls (FFT plans,
/// filter state): it is built once when the pipeline is installed, not per run.
pub trait Node: Send {
    /// Processes one item. Returning `Err` fails this item's run; the node stays usable.
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError>;

    /// Processes one chunk of a streaming session. A stateful node (see [`NodeType::stateful`])
    /// gets one instance per session, so what it carries (a resampler's filter history, a VAD's
    /// noise floor) flows from chunk to chunk; the outputs of all `push` calls followed by
    /// [`finish`](Node::finish) add up to what `process` gives for the whole signal.
    /// Stateless nodes treat a chunk like a whole item.
    fn push(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        self.process(inputs)
    }

    /// Ends a streaming session: takes the upstream nodes' last output (`None` when they had
    /// nothing left) and returns what this node still holds, if anything.
    fn finish(&mut self, inputs: Option<Inputs>) -> Result<Option<Payload>, NodeError> {
        inputs.map(|i| self.push(i)).transpose()
    }
}

/// The type of one parameter, with its allowed range.
#[derive(Clone, Debug)]
pub enum ParamKind {
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// A finite number in `min..=max`.
    Float { min: f64, max: f64 },
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// One of a fixed set of integers.
    IntChoice(&'static [i64]),
    Bool,
    /// Anything JSON can hold (Python nodes interpret their own params).
    Any,
    /// A list of `min_len..=max_len` items of one kind; each item is checked, and reported with
    /// its index, on its own.
    List { item: Box<ParamKind>, min_len: usize, max_len: usize },
    /// An object whose `tag` field names its variant (a filter band's `"type"`); each variant
    /// declares its own fields, checked like a node's params, with a path to every problem.
    Tagged { tag: &'static str, variants: Vec<Variant> },
}

/// One variant of a [`ParamKind::Tagged`] object: its tag value and its fields.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: &'static str,
    pub doc: &'static str,
    pub fields: Vec<ParamSpec>,
    /// Pairs of number fields `(a, b)` that must satisfy `a < b` (a band's low and high edges).
    pub increasing: Vec<(&'static str, &'static str)>,
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamKind::Int { min, max } => write!(f, "an integer from {min} to {max}"),
            ParamKind::Float { min, max } => write!(f, "a number from {min} to {max}"),
            ParamKind::Choice(c) => write!(f, "one of {}", c.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")),
            ParamKind::IntChoice(c) => write!(f, "one of {}", c.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
            ParamKind::Bool => write!(f, "true or false"),
            ParamKind::Any => write!(f, "any value"),
            ParamKind::List { item, min_len, max_len } => write!(f, "a list of {min_len} to {max_len} items, each {item}"),
            ParamKind::Tagged { tag, variants } => write!(
                f,
                "an object with \"{tag}\": one of {}",
                variants.iter().map(|v| format!("\"{}\"", v.name)).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

impl ParamKind {
    /// Whether `v` is a value of this kind within its range (the manifest validator's rule;
    /// integers may be written as whole floats).
    pub fn accepts(&self, v: &Value) -> bool {
        match (self, v) {
            (ParamKind::Int { min, max }, Value::Number(n)) => n.as_f64().is_some_and(|f| {
                f.fract() == 0.0 && f >= *min as f64 && f <= *max as f64
            }),
            (ParamKind::Float { min, max }, Value::Number(n)) => n.as_f64().is_some_and(|f| f.is_finite() && f >= *min && f <= *max),
            (ParamKind::Choice(c), Value::String(s)) => c.contains(&s.as_str()),
            (ParamKind::IntChoice(c), Value::Number(n)) => n.as_f64().is_some_and(|f| c.iter().any(|&i| i as f64 == f)),
            (ParamKind::Bool, Value::Bool(_)) | (ParamKind::Any, _) => true,
            _ => false,
        }
    }
}

/// One declared parameter of a node type.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    /// `None` with `required == false` means the param is optional and has no default.
    pub default: Option<Value>,
    pub required: bool,
    /// Unit and meaning, for docs and error messages.
    pub doc: &'static str,
}

impl ParamSpec {
    pub fn required(name: &'static str, kind: ParamKind, doc: &'static str) -> ParamSpec {
        ParamSpec { name, kind, default: None, required: true, doc }
    }

    pub fn optional(name: &'static str, kind: ParamKind, doc: &'static str) -> ParamSpec {
        ParamSpec { name, kind, default: None, required: false, doc }
    }

    pub fn with_default(name: &'static str, kind: ParamKind, default: Value, doc: &'static str) -> ParamSpec {
        ParamSpec { name, kind, default: Some(default), required: false, doc }
    }
}

/// Which input ports a node type has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputPorts {
    /// Exactly one input, on port `in`.
    One,
    /// These named ports, each fed by exactly one edge.
    Named(Vec<String>),
    /// Any number of inputs; an edge without `input_key` uses its source node's id as the port.
    Any,
}

/// What a node's factory is given to build one instance.
pub struct NodeConfig<'a> {
    pub id: &'a str,
    pub params: &'a Params,
    /// Index of the worker the instance will live on.
    pub worker: usize,
}

pub type Factory = Arc<dyn Fn(&NodeConfig) -> Result<Box<dyn Node>, NodeError> + Send + Sync>;

/// A cross-parameter check; returns `(param, expected, found)` for each problem.
pub type ParamCheck = fn(&Params) -> Vec<(String, String, String)>;

/// Everything the engine knows about a node type.
#[derive(Clone)]
pub struct NodeType {
    pub name: String,
    pub doc: String,
    pub params: Vec<ParamSpec>,
    /// Accept params not declared in `params` (Python nodes).
    pub open_params: bool,
    pub inputs: InputPorts,
    /// Keys an edge may name as `output_key`; the whole output is always available too.
    pub outputs: Vec<String>,
    /// Accept any `output_key` on edges leaving this node, not only those in `outputs`
    /// (Python nodes, whose output dictionaries are only known at run time).
    pub open_outputs: bool,
    /// Carries state between items (streaming): retries are off by default for such nodes.
    pub stateful: bool,
    pub check: Option<ParamCheck>,
    pub factory: Factory,
}

impl fmt::Debug for NodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeType").field("name", &self.name).finish_non_exhaustive()
    }
}

impl NodeType {
    /// A node type with one input, no params and no named outputs; adjust with struct update.
    pub fn new(
        name: impl Into<String>,
        doc: impl Into<String>,
        factory: impl Fn(&NodeConfig) -> Result<Box<dyn Node>, NodeError> + Send + Sync + 'static,
    ) -> NodeType {
        NodeType {
            name: name.into(),
            doc: doc.into(),
            params: Vec::new(),
            open_params: false,
            inputs: InputPorts::One,
            outputs: Vec::new(),
            open_outputs: false,
            stateful: false,
            check: None,
            factory: Arc::new(factory),
        }
    }

    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Maps node type names to their types. Cloning is cheap.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    types: BTreeMap<String, NodeType>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// The built-in native nodes.
    pub fn builtin() -> Registry {
        let mut r = Registry::empty();
        r.register(resample::node_type());
        r.register(vad::node_type());
        r.register(silero_vad::node_type());
        r.register(format::node_type());
        r.register(passthrough::node_type());
        r.register(gain::node_type());
        r.register(mix::node_type());
        r.register(channel_mix::node_type());
        r.register(segment::node_type());
        r.register(log_mel::node_type());
        r.register(fbank::node_type());
        r.register(mfcc::node_type());
        r.register(filter::node_type());
        r.register(loudness::node_type());
        r.register(denoise::node_type());
        r
    }

    /// Adds or replaces a node type.
    pub fn register(&mut self, t: NodeType) {
        self.types.insert(t.name.clone(), t);
    }

    pub fn get(&self, name: &str) -> Option<&NodeType> {
        self.types.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(|s| s.as_str())
    }
}

// ---- helpers shared by node implementations ----

/// Whether no sample is NaN or infinite. Branch-free so that it vectorises (an early-exit scan
/// cost as much as the FFT): `x - x` is 0 for finite `x` and NaN for NaN and ±inf.
#[allow(clippy::eq_op)] // `x - x` is the point: it is NaN exactly for non-finite x
pub(crate) fn all_finite(v: &[f32]) -> bool {
    let mut acc = [0f32; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x - x;
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|x| x - x).sum();
    acc.iter().sum::<f32>() + tail == 0.0
}

/// The index of the first NaN or infinity in `values`. Blocks of 256 are tested with a loop that
/// has no early exit, so that it vectorises (an exponent of all ones marks both), and only a
/// block that has one is searched: `position(|x| !x.is_finite())` runs a sample at a time, which
/// was a tenth of `LogMelNode`'s time and 28 % of a
/// `LoudnessNode` run's input check from Python.
pub fn first_non_finite(values: &[f32]) -> Option<usize> {
    #[inline(always)]
    fn body(values: &[f32]) -> Option<usize> {
        const EXP: u32 = 0x7f80_0000;
        let block = |c: &[f32]| c.iter().fold(0u32, |any, x| any | ((x.to_bits() & EXP == EXP) as u32)) != 0;
        let at = values.chunks(256).position(block)?;
        values[at * 256..].iter().position(|x| !x.is_finite()).map(|i| at * 256 + i)
    }
    #[cfg(target_arch = "x86_64")]
    if cpu::simd().avx2 {
        #[target_feature(enable = "avx2")]
        unsafe fn wide(values: &[f32]) -> Option<usize> {
            body(values)
        }
        // SAFETY: the CPU has AVX2.
        return unsafe { wide(values) };
    }
    body(values)
}

/// The audio in a payload, or an `InvalidInput` error naming what arrived instead.
pub fn expect_audio(payload: Payload) -> Result<AudioBuffer, NodeError> {
    match payload {
        Payload::Audio(a) => Ok(a),
        Payload::Vad(v) => Ok(v.audio),
        other => Err(NodeError::invalid_input(format!("expected audio, received {}", other.kind()))),
    }
}

/// An `InvalidInput` error naming the first NaN or infinite sample, if there is one:
/// `"{node} input contains a non-finite sample (NaN) at index 12"`.
pub fn check_finite(node: &str, samples: &[f32]) -> Result<(), NodeError> {
    match first_non_finite(samples) {
        None => Ok(()),
        Some(i) => Err(NodeError::invalid_input(format!("{node} input contains a non-finite sample ({}) at index {i}", samples[i]))),
    }
}

pub fn param_bool(params: &Params, name: &str) -> Result<Option<bool>, NodeError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| NodeError::permanent(format!("param '{name}' must be true or false, found {v}"))),
    }
}

/// The value of the declared param `name` (one of `specs`) in `params`, checked against its
/// spec: `None` when absent or null. Factories read their params through this, so a node's
/// ranges and messages come from its `ParamSpec`s alone.
pub fn checked_param<'a>(params: &'a Params, specs: &[ParamSpec], name: &str) -> Result<Option<&'a Value>, NodeError> {
    let spec = specs
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| NodeError::permanent(format!("param '{name}' is not declared")))?;
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) if spec.kind.accepts(v) => Ok(Some(v)),
        Some(v) => Err(NodeError::permanent(format!("param '{name}' must be {}, found {v}", spec.kind))),
    }
}

pub fn param_f64(params: &Params, name: &str) -> Result<Option<f64>, NodeError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| NodeError::permanent(format!("param '{name}' must be a number, found {v}"))),
    }
}

pub fn param_i64(params: &Params, name: &str) -> Result<Option<i64>, NodeError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| NodeError::permanent(format!("param '{name}' must be an integer, found {v}"))),
    }
}

pub fn param_str<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, NodeError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| NodeError::permanent(format!("param '{name}' must be a string, found {v}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first NaN or infinity wherever it falls in or across the 256-sample blocks, and none
    /// in finite samples (the largest and the subnormal included).
    #[test]
    fn first_non_finite_finds_the_first() {
        let clean: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut edge = clean.clone();
        edge[3] = f32::MAX;
        edge[4] = f32::MIN_POSITIVE / 4.0;
        assert_eq!(first_non_finite(&edge), None);
        for at in [0, 255, 256, 511, 999] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut x = clean.clone();
                x[at] = bad;
                if at + 300 < x.len() {
                    x[at + 300] = f32::NAN;
                }
                assert_eq!(first_non_finite(&x), Some(at), "{bad} at {at}");
            }
        }
    }
}
