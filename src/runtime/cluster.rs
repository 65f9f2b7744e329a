//! Process-group set-up for cluster mode: reads a hosts file, connects one TCP socket to every
//! other process ourselves (short retry intervals, an overall timeout, errors that name the peer)
//! and hands the sockets to timely's networking layer.
//!
//! timely's own start-up (`CommunicationConfig::Cluster`) sleeps a whole second between connection
//! attempts and between accept polls, and retries forever: a peer that never comes up hangs every
//! other process. Here a process listens on its own address, connects to every lower-index peer
//! (retrying every 10 ms) and accepts every higher-index one (polling every 5 ms), all within
//! `connect_timeout`.
//!
//! Each pair of processes opens two connections: timely's, and a heartbeat's (see
//! [`crate::runtime::heartbeat`]), so that a peer that freezes or dies later is noticed within
//! `peer_timeout` instead of hanging or aborting the others.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks};

use crate::error::Error;
use crate::runtime::heartbeat::{Heartbeat, DEFAULT_PEER_TIMEOUT};

/// The default for `--connect-timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sent first on every connection, so that a stray connection (or a peer started with another
/// process count) is refused with a clear error rather than corrupting timely's stream.
const MAGIC: u32 = 0x524d_4332; // "RMC2": the handshake has a channel byte since version 2

/// The handshake's channel byte: which of a pair's two connections this is.
const DATA: u8 = 0;
const HEARTBEAT: u8 = 1;
const HANDSHAKE_BYTES: usize = 29;

const CONNECT_RETRY: Duration = Duration::from_millis(10);
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// One process's place in a process group.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `host:port` of every process, by process index.
    pub hosts: Vec<String>,
    /// This process's index into `hosts`.
    pub process: usize,
    /// Timely workers in this process (every process must use the same number).
    pub workers: usize,
    /// How long to wait for every peer to connect before giving up.
    pub connect_timeout: Duration,
    /// How long a connected peer may stay silent (frozen, killed, unreachable) before this
    /// process gives up on it and exits (see [`crate::runtime::heartbeat`]).
    pub peer_timeout: Duration,
}

impl ClusterConfig {
    /// The group described by a hosts file (one `host:port` per line; blank lines and `#`
    /// comments ignored). `processes` must equal the number of hosts listed.
    pub fn from_hosts_file(
        path: &Path,
        processes: usize,
        process: usize,
        workers: usize,
        connect_timeout: Duration,
    ) -> Result<ClusterConfig, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Input(format!("cannot read hosts file '{}': {e}", path.display())))?;
        let hosts = parse_hosts(&text).map_err(|m| Error::Input(format!("hosts file '{}': {m}", path.display())))?;
        let config = ClusterConfig { hosts, process, workers, connect_timeout, peer_timeout: DEFAULT_PEER_TIMEOUT };
        config.check(processes)?;
        Ok(config)
    }

    /// Checks the counts and indices agree; `processes` is what the user said on the command line.
    pub fn check(&self, processes: usize) -> Result<(), Error> {
        if processes == 0 {
            return Err(Error::Input("--processes must be at least 1".into()));
        }
        if self.hosts.len() != processes {
            return Err(Error::Input(format!(
                "--processes is {processes} but the hosts file lists {} host{}",
                self.hosts.len(),
                if self.hosts.len() == 1 { "" } else { "s" }
            )));
        }
        if self.process >= processes {
            return Err(Error::Input(format!(
                "--process-index {} is out of range for {processes} processes (0 to {})",
                self.process,
                processes - 1
            )));
        }
        if self.workers == 0 {
            return Err(Error::Input("a process needs at least one worker".into()));
        }
        Ok(())
    }

    pub fn processes(&self) -> usize {
        self.hosts.len()
    }
}

/// `host:port` lines; blank lines and lines starting with `#` are skipped.
pub fn parse_hosts(text: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => hosts.push(line.to_string()),
            _ => return Err(format!("line {}: expected host:port, found '{line}'", n + 1)),
        }
    }
    if hosts.is_empty() {
        return Err("no hosts listed (one host:port per line)".into());
    }
    Ok(hosts)
}

/// Connects this process to every peer and returns timely's allocator builders (one per local
/// worker) plus the guard that owns the network threads and the heartbeat.
pub fn connect(config: &ClusterConfig) -> Result<(Vec<AllocatorBuilder>, Box<dyn std::any::Any + Send>), Error> {
    let Sockets { data, heartbeat } = connect_sockets(config)?;
    // Beating before timely's start-up: a peer lost during it is noticed too.
    let heartbeat = Heartbeat::start(config.process, &config.hosts, heartbeat, config.peer_timeout);
    let hooks = Hooks::default();
    let local = ProcessBuilder::new_typed_vector(config.workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) = initialize_networking_from_sockets(local, data, config.process, config.workers, hooks)
        .map_err(|e| Error::Engine(format!("process {}: cannot start timely networking: {e}", config.process)))?;
    let guard = ClusterGuard { network: Some(Box::new(guard)), heartbeat: Some(heartbeat) };
    Ok((builders.into_iter().map(AllocatorBuilder::Tcp).collect(), Box::new(guard)))
}

/// Dropped by the worker pool after its workers have ended: joins timely's network threads (they
/// finish once every peer's workers have), then tells the peers this process is done.
struct ClusterGuard {
    network: Option<Box<dyn std::any::Any + Send>>,
    heartbeat: Option<Heartbeat>,
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        // The heartbeat still runs meanwhile: a peer lost now ends the process, not a hang.
        drop(self.network.take());
        if let Some(h) = self.heartbeat.take() {
            h.finish();
        }
    }
}

/// A pair's two connections, per peer (`None` at this process's own index), in process order.
pub struct Sockets {
    /// timely's.
    pub data: Vec<Option<TcpStream>>,
    /// The heartbeat's.
    pub heartbeat: Vec<Option<TcpStream>>,
}

/// Connects both of every pair's connections within `connect_timeout`.
pub fn connect_sockets(config: &ClusterConfig) -> Result<Sockets, Error> {
    let me = config.process;
    let n = config.processes();
    let deadline = Instant::now() + config.connect_timeout;
    let mut sockets: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    let mut beats: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    if n == 1 {
        return Ok(Sockets { data: sockets, heartbeat: beats });
    }
    // Listen before connecting: higher peers' connections then wait in the backlog.
    let listener = if me + 1 < n {
        let own = resolve(&config.hosts[me]).map_err(|m| Error::Engine(format!("process {me}: {m}")))?;
        let l = TcpListener::bind(own)
            .map_err(|e| Error::Engine(format!("process {me}: cannot listen on {}: {e}", config.hosts[me])))?;
        l.set_nonblocking(true).map_err(|e| Error::Engine(format!("process {me}: {e}")))?;
        Some(l)
    } else {
        None
    };
    let group = group_id(&config.hosts);
    for peer in 0..me {
        for channel in [DATA, HEARTBEAT] {
            // A listener that refuses us (another group on a reused port, a process started with
            // another hosts file) is retried until the deadline, as an absent one is.
            let stream = loop {
                let mut stream = connect_to(config, peer, deadline)?;
                match handshake_send(&mut stream, me, n, group, channel, deadline) {
                    Ok(()) => break stream,
                    Err(e) if Instant::now() + CONNECT_RETRY >= deadline => {
                        return Err(Error::Engine(format!(
                            "process {me}: timed out after {} connecting to process {peer} at {}: {e}; is it running with the same hosts file?",
                            secs(config.connect_timeout),
                            config.hosts[peer]
                        )))
                    }
                    Err(_) => std::thread::sleep(CONNECT_RETRY),
                }
            };
            let slot = if channel == DATA { &mut sockets[peer] } else { &mut beats[peer] };
            *slot = Some(stream);
        }
    }
    if let Some(listener) = listener {
        let mut waiting = 2 * (n - me - 1);
        let mut refused: Option<String> = None;
        while waiting > 0 {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    // A connection from outside the group is refused and dropped; we keep waiting.
                    let (peer, channel) = match handshake_receive(&mut stream, me, n, group, deadline) {
                        Ok((peer, channel)) if (if channel == DATA { &sockets } else { &beats })[peer].is_none() => (peer, channel),
                        Ok((peer, _)) => {
                            let _ = stream.write_all(&[0]);
                            refused = Some(format!("process {peer} connected twice"));
                            continue;
                        }
                        Err(m) => {
                            let _ = stream.write_all(&[0]);
                            refused = Some(m);
                            continue;
                        }
                    };
                    stream.write_all(&[1]).map_err(|e| Error::Engine(format!("process {me}: process {peer} left during the handshake: {e}")))?;
                    if channel == DATA {
                        sockets[peer] = Some(stream);
                    } else {
                        beats[peer] = Some(stream);
                    }
                    waiting -= 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let missing: Vec<String> = (me + 1..n)
                            .filter(|&p| sockets[p].is_none() || beats[p].is_none())
                            .map(|p| format!("process {p} ({})", config.hosts[p]))
                            .collect();
                        let last = refused.as_deref().map(|r| format!(" (refused a connection: {r})")).unwrap_or_default();
                        return Err(Error::Engine(format!(
                            "process {me}: timed out after {} waiting for {} to connect to {}{last}; is it running with the same hosts file?",
                            secs(config.connect_timeout),
                            missing.join(", "),
                            config.hosts[me]
                        )));
                    }
                    std::thread::sleep(ACCEPT_POLL);
                }
                Err(e) => return Err(Error::Engine(format!("process {me}: accept on {} failed: {e}", config.hosts[me]))),
            }
        }
    }
    Ok(Sockets { data: sockets, heartbeat: beats })
}

fn connect_to(config: &ClusterConfig, peer: usize, deadline: Instant) -> Result<TcpStream, Error> {
    let addr = resolve(&config.hosts[peer]).map_err(|m| peer_error(config, peer, &m))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(1)).min(Duration::from_secs(1)));
        match attempt {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => {
                if Instant::now() + CONNECT_RETRY >= deadline {
                    return Err(Error::Engine(format!(
                        "process {}: timed out after {} connecting to process {peer} at {} (last error: {e}); is it running with the same hosts file?",
                        config.process,
                        secs(config.connect_timeout),
                        config.hosts[peer]
                    )));
                }
                std::thread::sleep(CONNECT_RETRY);
            }
        }
    }
}

fn peer_error(config: &ClusterConfig, peer: usize, message: &str) -> Error {
    Error::Engine(format!("process {}: process {peer} at {}: {message}", config.process, config.hosts[peer]))
}

fn resolve(host: &str) -> Result<SocketAddr, String> {
    host.to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {e}"))?
        .next()
        .ok_or_else(|| format!("'{host}' resolves to no address"))
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A fingerprint of the group (FNV-1a over the hosts list): processes started with different
/// hosts files never pair up, even when one group's port is reused by another.
fn group_id(hosts: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in hosts.join("\n").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Sends magic (u32), sender index, process count and group id (u64 each) and the channel (u8):
/// 29 bytes, little-endian; then waits for the listener's one-byte answer (1: accepted).
fn handshake_send(stream: &mut TcpStream, me: usize, n: usize, group: u64, channel: u8, deadline: Instant) -> Result<(), String> {
    let mut buf = [0u8; HANDSHAKE_BYTES];
    buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    buf[4..12].copy_from_slice(&(me as u64).to_le_bytes());
    buf[12..20].copy_from_slice(&(n as u64).to_le_bytes());
    buf[20..28].copy_from_slice(&group.to_le_bytes());
    buf[28] = channel;
    stream.write_all(&buf).map_err(|e| format!("handshake failed: {e}"))?;
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).map_err(|e| format!("no answer to the handshake: {e}"))?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    match answer[0] {
        1 => Ok(()),
        _ => Err("the listener refused the handshake (another group, or started with another hosts file)".into()),
    }
}

/// Reads a peer's handshake and returns its process index and the channel (the caller answers it).
fn handshake_receive(stream: &mut TcpStream, me: usize, n: usize, group: u64, deadline: Instant) -> Result<(usize, u8), String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; HANDSHAKE_BYTES];
    stream.read_exact(&mut buf).map_err(|e| format!("no handshake received: {e}"))?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if magic != MAGIC {
        return Err("not a remotemedia process (bad handshake)".into());
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let (peer, count, theirs) = (word(4) as usize, word(12) as usize, word(20));
    if count != n {
        return Err(format!("process {peer} was started with {count} processes, this one with {n}"));
    }
    if theirs != group {
        return Err(format!("process {peer} was started with another hosts file"));
    }
    if peer <= me || peer >= n {
        return Err(format!("unexpected process index {peer} (expected {} to {})", me + 1, n - 1));
    }
    if buf[28] != DATA && buf[28] != HEARTBEAT {
        return Err(format!("process {peer} asked for an unknown channel {}", buf[28]));
    }
    Ok((peer, buf[28]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_with_other_hosts_refuse_each_other() {
        let a = vec!["127.0.0.1:4000".to_string(), "127.0.0.1:4001".to_string()];
        let b = vec!["127.0.0.1:4000".to_string(), "127.0.0.1:4002".to_string()];
        assert_ne!(group_id(&a), group_id(&b));
        // A process 1 of group b knocking on group a's process 0 is refused, not paired.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(5);
        let knock = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            handshake_send(&mut s, 1, 2, group_id(&b), DATA, deadline)
        });
        let (mut stream, _) = listener.accept().expect("accept");
        let got = handshake_receive(&mut stream, 0, 2, group_id(&a), deadline);
        assert_eq!(got, Err("process 1 was started with another hosts file".to_string()));
        stream.write_all(&[0]).expect("answer");
        let sent = knock.join().expect("thread");
        assert!(sent.unwrap_err().contains("refused the handshake"));
    }

    #[test]
    fn hosts_file_lines() {
        assert_eq!(parse_hosts("# group\n127.0.0.1:4000\n\n  host-b:4001 \n").unwrap(), vec!["127.0.0.1:4000", "host-b:4001"]);
        assert_eq!(parse_hosts("127.0.0.1").unwrap_err(), "line 1: expected host:port, found '127.0.0.1'");
        assert_eq!(parse_hosts("a:1\nb:70000").unwrap_err(), "line 2: expected host:port, found 'b:70000'");
        assert!(parse_hosts("\n# nothing\n").is_err());
    }

    #[test]
    fn counts_must_agree() {
        let c = ClusterConfig { hosts: vec!["a:1".into(), "b:2".into()], process: 2, workers: 1, connect_timeout: Duration::from_secs(1), peer_timeout: DEFAULT_PEER_TIMEOUT };
        assert!(c.check(3).unwrap_err().to_string().contains("lists 2 hosts"));
        assert!(c.check(2).unwrap_err().to_string().contains("--process-index 2 is out of range"));
    }
}
