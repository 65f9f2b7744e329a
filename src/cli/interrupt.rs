//! Ctrl-C for long commands: while an [`Interrupt`] guard lives, the first SIGINT only sets a
//! flag the command polls (a batch then stops handing items over, lets those in flight finish
//! and reports the rest as cancelled); a second one ends the process as usual.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Catches SIGINT until dropped (then the previous handler is back).
pub struct Interrupt {
    #[cfg(unix)]
    previous: libc::sighandler_t,
}

#[cfg(unix)]
extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe calls here: an atomic swap, signal(), raise().
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: restoring the default action and re-raising are async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::raise(libc::SIGINT);
        }
    }
}

impl Interrupt {
    pub fn catch() -> Interrupt {
        INTERRUPTED.store(false, Ordering::SeqCst);
        #[cfg(unix)]
        {
            // SAFETY: `on_sigint` only touches an atomic and async-signal-safe functions.
            let previous = unsafe { libc::signal(libc::SIGINT, on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t) };
            Interrupt { previous }
        }
        #[cfg(not(unix))]
        Interrupt {}
    }

    /// Whether Ctrl-C was pressed since [`catch`](Self::catch).
    pub fn pressed(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: puts back the handler that was there before.
        unsafe {
            libc::signal(libc::SIGINT, self.previous);
        }
    }
}
