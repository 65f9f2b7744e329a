//! remotemedia: audio and ML preprocessing pipelines, declared as manifests and compiled into
//! timely dataflows that run on a long-lived pool of workers.
//!
//! The data's own path through the crate: [`manifest`] (JSON/YAML → tree) → [`manifest::validate`]
//! (tree → [`graph::Graph`], or every problem at once) → [`runtime`] (graph → timely operators on a
//! [`runtime::WorkerPool`]) → outputs keyed by node id, and per-node metrics.

pub mod audio_io;
pub mod cli;
pub mod data;
pub mod error;
pub mod file_safety;
/// Fuzz harnesses for `fuzz/` and `tests/fuzz_corpus.rs`; not a stable API.
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod limits;
pub mod manifest;
pub mod metrics;
pub mod metrics_prometheus;
pub mod nodes;
pub mod npy;
pub mod runtime;
pub mod sample_vec;
pub mod schema;
#[cfg(feature = "serve")]
pub mod serve;
pub mod synth;
pub mod tuning;

pub use data::{AudioBuffer, Features, Payload, SampleFormat, Samples, VadResult};
pub use error::{Error, ManifestError, NodeError, NodeErrorKind, Problem, Result};
pub use graph::Graph;
pub use nodes::{Node, NodeType, Registry};
pub use runtime::{Pipeline, RunInput, RunOutput, Session, WorkerPool};

#[cfg(feature = "python")]
mod python;
