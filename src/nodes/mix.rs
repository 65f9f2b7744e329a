//! `MixNode`: sums several f32 audio inputs sample by sample (a node with many inputs, fed
//! by the same run's outputs of its upstream nodes together).

use super::{expect_audio, InputPorts, Inputs, Node, NodeType};
use crate::data::{AudioBuffer, Payload, Samples};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "MixNode";

struct Mix;

impl Node for Mix {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        let mut entries = inputs.into_entries();
        // Sum in port-name order so the result does not depend on arrival order.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut iter = entries.into_iter();
        let (first_port, first) = iter
            .next()
            .ok_or_else(|| NodeError::invalid_input("MixNode received no inputs"))?;
        let mut acc = expect_f32(&first_port, first)?;
        for (port, payload) in iter {
            let next = expect_f32(&port, payload)?;
            if next.sample_rate != acc.sample_rate || next.channels != acc.channels {
                return Err(NodeError::invalid_input(format!(
                    "input '{port}' is {} Hz x{} but '{first_port}' is {} Hz x{}",
                    next.sample_rate, next.channels, acc.sample_rate, acc.channels
                )));
            }
            let (Samples::F32(a), Samples::F32(b)) = (&mut acc.samples, &next.samples) else {
                unreachable!("checked by expect_f32")
            };
            let a = a.make_mut();
            if b.len() > a.len() {
                a.resize(b.len(), 0.0);
            }
            a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x += *y);
        }
        Ok(Payload::Audio(acc))
    }
}

fn expect_f32(port: &str, payload: Payload) -> Result<AudioBuffer, NodeError> {
    let audio = expect_audio(payload)?;
    if !matches!(audio.samples, Samples::F32(_)) {
        return Err(NodeError::invalid_input(format!(
            "MixNode input '{port}' has {} samples; it needs f32",
            audio.samples.format().name()
        )));
    }
    Ok(audio)
}

pub fn node_type() -> NodeType {
    NodeType {
        inputs: InputPorts::Any,
        ..NodeType::new(
            TYPE_NAME,
            "Sums its f32 audio inputs sample by sample; the shorter inputs are padded with silence.",
            |_| Ok(Box::new(Mix)),
        )
    }
}
