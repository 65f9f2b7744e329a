//! `FormatConverterNode` (placeholder until the converter lands).
use super::NodeType;
use crate::error::NodeError;
pub const TYPE_NAME: &str = "FormatConverterNode";
pub fn node_type() -> NodeType {
    NodeType::new(TYPE_NAME, "placeholder", |_| Err(NodeError::permanent("not implemented yet")))
}
