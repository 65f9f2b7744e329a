//! Ctrl-C and SIGTERM for long commands: while an [`Interrupt`] guard lives, the first SIGINT or
//! SIGTERM only sets a flag the command polls (a batch then stops handing items over, lets those
//! in flight finish and reports the rest as cancelled); a second one ends the process as usual.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The signals caught: Ctrl-C, and what `kill` and service managers send.
#[cfg(unix)]
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// Catches SIGINT and SIGTERM until dropped (then the previous handlers are back).
pub struct Interrupt {
    #[cfg(unix)]
    previous: [libc::sighandler_t; 2],
}

#[cfg(unix)]
extern "C" fn on_signal(signal: libc::c_int) {
    // Only async-signal-safe calls here: an atomic swap, signal(), raise().
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: restoring the default action and re-raising are async-signal-safe.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

impl Interrupt {
    pub fn catch() -> Interrupt {
        INTERRUPTED.store(false, Ordering::SeqCst);
        #[cfg(unix)]
        {
            // SAFETY: `on_signal` only touches an atomic and async-signal-safe functions.
            let previous = SIGNALS.map(|s| unsafe { libc::signal(s, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) });
            Interrupt { previous }
        }
        #[cfg(not(unix))]
        Interrupt {}
    }

    /// Whether Ctrl-C was pressed (or SIGTERM came) since [`catch`](Self::catch).
    pub fn pressed(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        #[cfg(unix)]
        for (s, previous) in SIGNALS.into_iter().zip(self.previous) {
            // SAFETY: puts back the handler that was there before.
            unsafe {
                libc::signal(s, previous);
            }
        }
    }
}
