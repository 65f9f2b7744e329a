//! Cluster mode's liveness check: one extra TCP connection per pair of processes, beside timely's,
//! on which each side sends a byte every quarter of `peer_timeout` (at most every second) and
//! expects one within `peer_timeout`. timely's own networking waits forever for a peer that is
//! frozen (SIGSTOP, a hung host, a dropped network) and panics in its network threads, then aborts
//! in a destructor, for one that was killed. Here either is noticed within `peer_timeout`: this
//! process prints which peer was lost and why, and exits with [`EXIT_PEER_LOST`].
//!
//! A process that ends cleanly says so first ([`BYE`]), so that a peer closing its end after the
//! group's dataflows have finished is not taken for a lost one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

/// The default for `--peer-timeout`.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// The exit code of a process whose peer stopped answering (the CLI's "the run failed" code).
pub const EXIT_PEER_LOST: i32 = 1;

/// "I am alive."
const BEAT: u8 = 1;
/// "I am done; my end closes next." Anything after it is ignored.
const BYE: u8 = 2;

/// Set once a loss is being reported: the first thread to notice prints and exits, the others
/// stay quiet (two concurrent `exit` calls are undefined behaviour in C).
static LOST: AtomicBool = AtomicBool::new(false);

/// Where a peer is, for messages.
#[derive(Clone)]
struct Peer {
    index: usize,
    host: String,
}

/// The running heartbeat of one process: a sender thread for all peers and a reader per peer.
pub struct Heartbeat {
    stopping: Arc<AtomicBool>,
    writers: Arc<Mutex<Vec<TcpStream>>>,
    sender: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts beating on `streams` (one per peer, `None` at this process's own index); `hosts`
    /// names the peers in messages.
    pub fn start(me: usize, hosts: &[String], streams: Vec<Option<TcpStream>>, peer_timeout: Duration) -> Heartbeat {
        install_panic_filter(me, hosts.to_vec());
        let stopping = Arc::new(AtomicBool::new(false));
        let interval = (peer_timeout / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let mut writers = Vec::new();
        for (index, stream) in streams.into_iter().enumerate() {
            let Some(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            let _ = stream.set_write_timeout(Some(peer_timeout));
            if let Ok(w) = stream.try_clone() {
                writers.push(w);
            }
            let peer = Peer { index, host: hosts[index].clone() };
            let stopping = Arc::clone(&stopping);
            let _ = std::thread::Builder::new()
                .name(format!("remotemedia:heartbeat-{index}"))
                .spawn(move || watch(me, peer, stream, peer_timeout, &stopping));
        }
        let writers = Arc::new(Mutex::new(writers));
        let sender = {
            let (writers, stopping) = (Arc::clone(&writers), Arc::clone(&stopping));
            std::thread::Builder::new()
                .name("remotemedia:heartbeat".into())
                .spawn(move || {
                    while !stopping.load(Ordering::SeqCst) {
                        if let Ok(mut ws) = writers.lock() {
                            // A failed write shows up on the reading side as the peer's loss.
                            for w in ws.iter_mut() {
                                let _ = w.write_all(&[BEAT]);
                            }
                        }
                        std::thread::park_timeout(interval);
                    }
                })
                .ok()
        };
        Heartbeat { stopping, writers, sender }
    }

    /// Ends the heartbeat after a clean finish: tells every peer so, then stops watching them.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(sender) = self.sender.take() {
            sender.thread().unpark();
            let _ = sender.join();
        }
        if let Ok(mut ws) = self.writers.lock() {
            for w in ws.iter_mut() {
                let _ = w.write_all(&[BYE]);
                let _ = w.flush();
            }
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads `peer`'s beats until it says goodbye or this process stops; anything else (silence for
/// `peer_timeout`, the connection closed or broken) ends the process.
fn watch(me: usize, peer: Peer, mut stream: TcpStream, peer_timeout: Duration, stopping: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(peer_timeout));
    let mut buf = [0u8; 64];
    loop {
        let got = stream.read(&mut buf);
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let why = match got {
            Ok(n) if n > 0 => {
                if buf[..n].contains(&BYE) {
                    return;
                }
                continue;
            }
            Ok(_) => "it closed its connection before the batch finished (it was killed or crashed)".to_string(),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => format!(
                "it sent nothing for {:.1} s (--peer-timeout): it is frozen, overloaded or unreachable",
                peer_timeout.as_secs_f64()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => format!("its connection failed: {e}"),
        };
        lost(me, &peer, &why);
    }
}

/// Reports the loss of `peer` on stderr and ends the process. The group cannot finish without
/// it, and unwinding timely's workers and network threads from here is not possible: they may be
/// blocked on the lost peer.
fn lost(me: usize, peer: &Peer, why: &str) -> ! {
    if LOST.swap(true, Ordering::SeqCst) {
        // Another thread is already reporting and exiting.
        loop {
            std::thread::park();
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "error: process {me}: lost process {} at {}: {why}; stopping this process (exit code {EXIT_PEER_LOST})",
        peer.index,
        peer.host
    );
    let _ = std::io::stdout().flush();
    std::process::exit(EXIT_PEER_LOST);
}

/// timely's network threads (`timely:send-P`, `timely:recv-P`, P the peer's index) panic with
/// "timely communication error: ..." when a peer's connection breaks. That is a lost peer, not a
/// bug: it is reported as one (without a panic trace), like the heartbeat's own findings.
fn install_panic_filter(me: usize, hosts: Vec<String>) {
    static FILTER: Once = Once::new();
    FILTER.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            let thread = std::thread::current();
            let peer = thread
                .name()
                .and_then(|n| n.strip_prefix("timely:send-").or_else(|| n.strip_prefix("timely:recv-")))
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|&i| i < hosts.len());
            match peer {
                Some(index) if message.starts_with("timely communication error") => {
                    let peer = Peer { index, host: hosts[index].clone() };
                    lost(me, &peer, &format!("its connection broke: it was killed, crashed or became unreachable ({message})"));
                }
                _ => previous(info),
            }
        }));
    });
}
