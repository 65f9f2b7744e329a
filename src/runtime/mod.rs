//! The timely runtime: a pool of long-lived workers ([`WorkerPool`]) onto which validated graphs
//! are installed as dataflows ([`Pipeline`]); one run is one epoch, completed when timely's
//! progress tracking shows every output has passed it.

pub mod breaker;
pub mod dataflow;
pub(crate) mod panic;
pub mod pipeline;
pub mod pool;
pub mod retry;

pub use dataflow::Record;
pub use pipeline::{ItemResult, Pipeline, Reply, RunInput, RunOutput};
pub use pool::WorkerPool;
pub use retry::{Clock, FakeClock, RealClock, RetrySettings};
