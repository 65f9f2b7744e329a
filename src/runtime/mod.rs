//! The timely runtime, as a one-way stack: each layer uses only those listed before it.
//!
//! 1. **Node runner** ([`runner`], with [`breaker`], [`retry`], `panic`): builds nodes from their
//!    factories and calls them (breaker, retries, panics, metrics). No timely.
//! 2. **Operators and routing** (`runs`, `lanes`, `sessions`, `installed`, [`dataflow`],
//!    `collect`): the table of runs in flight, placement of items on workers, the per-worker
//!    session executor, and the timely operators every worker builds for an installed graph.
//! 3. **Worker pool** ([`pool`], with [`affinity`], [`cluster`], [`heartbeat`], `alloc`): threads, pinning,
//!    parking, panics; builds dataflows on request.
//! 4. **Run handles** ([`pipeline`], with `reply`): install a graph, submit runs, wait for
//!    replies, streaming sessions.
//! 5. **Batch scheduler** ([`batch`]): a bounded window of items in flight, results in input
//!    order, per-item errors, cancellation; used by every batch surface.
//!
//! docs/architecture.md draws the stack and says what each layer may touch.

pub mod affinity;
pub(crate) mod alloc;
pub mod batch;
pub mod breaker;
pub mod cluster;
pub(crate) mod collect;
pub mod dataflow;
pub mod heartbeat;
pub(crate) mod installed;
pub(crate) mod lanes;
pub(crate) mod panic;
pub mod pipeline;
pub mod pool;
pub(crate) mod reply;
pub mod retry;
pub mod runner;
pub(crate) mod runs;
pub(crate) mod sessions;

pub use alloc::no_huge_pages_for_this_process;
pub use batch::{BatchDriver, BatchItem, BatchOptions, CancelToken};
pub use dataflow::Record;
pub use lanes::Placement;
pub use pipeline::{StartedRun, CANCEL_OPERATION, ItemHandler, ItemInput, ItemResult, KeyedIo, Loader, Pipeline, Reply, RunInput, RunOutput, Session, LOAD_OPERATION};
pub use pool::WorkerPool;
pub use retry::{Clock, FakeClock, RealClock, RetrySettings};
pub use runner::Factories;
