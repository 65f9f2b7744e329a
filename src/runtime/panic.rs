//! Panics: a node's panic becomes a `NodeError` for that run, without the default hook printing a
//! backtrace to the user's terminal; a panic anywhere else on a worker poisons the pool so that
//! runs fail with an error instead of hanging.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once};

use crate::error::NodeError;
use crate::runtime::pool::PoolState;

thread_local! {
    /// Set while a node's own code runs: its panics are caught and reported, not printed.
    static IN_NODE: Cell<bool> = const { Cell::new(false) };
    /// Set on pool worker threads: a panic outside node code poisons this pool.
    static WORKER_POOL: RefCell<Option<Arc<PoolState>>> = const { RefCell::new(None) };
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Runs node code, turning a panic into a `NodeError` of kind `Panic`.
pub fn catch_node_panic<T>(f: impl FnOnce() -> Result<T, NodeError>) -> Result<T, NodeError> {
    install_hook();
    IN_NODE.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_NODE.with(|c| c.set(false));
    result.unwrap_or_else(|p| Err(NodeError::panic(panic_message(&*p))))
}

/// Marks the current thread as a worker of `pool`.
pub(crate) fn register_worker(pool: Arc<PoolState>) {
    install_hook();
    WORKER_POOL.with(|w| *w.borrow_mut() = Some(pool));
}

/// Whether the calling thread is one of this pool's workers.
pub(crate) fn is_worker_of(pool: &Arc<PoolState>) -> bool {
    WORKER_POOL.with(|w| w.borrow().as_ref().is_some_and(|p| Arc::ptr_eq(p, pool)))
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_NODE.with(|c| c.get()) {
                return; // caught and reported as a NodeError
            }
            let pool = WORKER_POOL.with(|w| w.borrow().clone());
            if let Some(pool) = pool {
                let msg = info.payload();
                let text = panic_message(msg);
                let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                pool.poison(format!("a worker thread panicked{at}: {text}"));
            }
            previous(info);
        }));
    });
}
