//! `VADNode` (placeholder until the realfft implementation lands).
use super::NodeType;
use crate::error::NodeError;
pub const TYPE_NAME: &str = "VADNode";
pub fn node_type() -> NodeType {
    NodeType::new(TYPE_NAME, "placeholder", |_| Err(NodeError::permanent("not implemented yet")))
}
