//! The timely runtime: a pool of long-lived workers ([`WorkerPool`]) onto which validated graphs
//! are installed as dataflows ([`Pipeline`]); one run is one epoch, completed when timely's
//! progress tracking shows every output has passed it. A pool may also span processes
//! ([`WorkerPool::cluster`], set up by [`cluster`]); items submitted on process 0 are spread over
//! every process's workers and collected back on process 0.

pub mod cluster;
pub mod affinity;
pub(crate) mod alloc;
pub(crate) mod lanes;
pub mod breaker;
pub mod dataflow;
pub(crate) mod panic;
pub mod pipeline;
pub mod pool;
pub(crate) mod reply;
pub mod retry;

pub use dataflow::{Flow, Record};
pub use pipeline::{ItemResult, Pipeline, Reply, RunInput, RunOutput, Session, Started};
pub use pool::WorkerPool;
pub use retry::{Clock, FakeClock, RealClock, RetrySettings};
