//! `GainNode`: multiplies f32 audio by a constant factor given in decibels.

use super::params::node_params;
use super::{expect_audio, Inputs, Node, NodeType, ParamKind};
use crate::data::{Payload, Samples};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "GainNode";

node_params! {
    /// GainNode's params.
    pub struct GainParams {
        gain_db: f64 = 0.0, ParamKind::Float { min: -120.0, max: 60.0 }, "gain in dB applied to every sample";
    }
}

struct Gain {
    factor: f32,
}

impl Node for Gain {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let mut audio = expect_audio(inputs.one()?)?;
        match &mut audio.samples {
            Samples::F32(v) => v.make_mut().iter_mut().for_each(|x| *x *= self.factor),
            other => {
                return Err(NodeError::invalid_input(format!(
                    "GainNode needs f32 samples, received {}; put a FormatConverterNode before it",
                    other.format().name()
                )))
            }
        }
        Ok(Payload::Audio(audio))
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: GainParams::specs(),
        ..NodeType::new(TYPE_NAME, "Multiplies f32 audio by 10^(gain_db/20).", |cfg| {
            let db = GainParams::from_params(cfg.params)?.gain_db;
            Ok(Box::new(Gain { factor: 10f64.powf(db / 20.0) as f32 }))
        })
    }
}
