//! `PassthroughNode`: hands its input on unchanged. Useful as a fan-out point and as the
//! smallest possible node when measuring the engine's own overhead.

use super::{Inputs, Node, NodeType};
use crate::data::Payload;
use crate::error::NodeError;

pub const TYPE_NAME: &str = "PassthroughNode";

struct Passthrough;

impl Node for Passthrough {
    fn process(&mut self, inputs: Inputs) -> Result<Payload, NodeError> {
        inputs.one()
    }
}

pub fn node_type() -> NodeType {
    NodeType::new(TYPE_NAME, "Passes its input on unchanged.", |_| Ok(Box::new(Passthrough)))
}
