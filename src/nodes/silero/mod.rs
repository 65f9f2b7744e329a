//! The Silero VAD v6 network in pure Rust: its shipped weights, the one dense kernel it needs,
//! the network itself (streaming and whole-buffer) and silero-vad's timestamp post-processing.
//! The node built on them is `nodes::silero_vad`.

pub mod kernel;
pub mod network;
pub mod timestamps;
pub mod weights;
