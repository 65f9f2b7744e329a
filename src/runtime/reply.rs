//! One-shot reply slots: how a blocking caller (`Pipeline::run`, `Session::push`) receives its
//! run's result from the worker that completes it.
//!
//! A run's round trip is a few microseconds, so what the hand-back itself costs shows: a channel
//! per run allocated its queue and wakers and locked them again on drop (measured ~0.5 µs a run
//! between the two threads). A slot is one allocation holding the value, a ready flag and the
//! caller's thread; the worker stores the value, sets the flag and unparks the caller, which
//! either sees the flag while polling or is woken from `park`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;

/// A value handed from one thread to one waiting thread.
pub(crate) struct ReplySlot<T> {
    ready: AtomicBool,
    value: Mutex<Option<T>>,
    waiter: Thread,
}

impl<T> ReplySlot<T> {
    /// A slot whose waiter is the calling thread.
    pub fn for_current_thread() -> Arc<ReplySlot<T>> {
        Arc::new(ReplySlot { ready: AtomicBool::new(false), value: Mutex::new(None), waiter: std::thread::current() })
    }

    /// Stores the value and wakes the waiter. A second call replaces nothing (the first wins).
    pub fn fill(&self, value: T) {
        {
            let mut v = self.value.lock().unwrap_or_else(|e| e.into_inner());
            if self.ready.load(Ordering::Relaxed) {
                return;
            }
            *v = Some(value);
            self.ready.store(true, Ordering::Release);
        }
        self.waiter.unpark();
    }

    /// Takes the value if it has arrived.
    pub fn try_take(&self) -> Option<T> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        self.value.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_value_filled_on_another_thread_reaches_the_parked_waiter() {
        let slot = ReplySlot::<u32>::for_current_thread();
        let filler = Arc::clone(&slot);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            filler.fill(7);
            filler.fill(8); // ignored: the first value wins
        });
        let got = loop {
            if let Some(v) = slot.try_take() {
                break v;
            }
            std::thread::park_timeout(Duration::from_millis(500));
        };
        t.join().unwrap();
        assert_eq!(got, 7);
        assert_eq!(slot.try_take(), None, "a value is taken once");
    }
}
