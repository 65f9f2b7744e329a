//! `remotemedia serve`: installed pipelines served over HTTP and WebSocket (docs/serving.md, the
//! protocol in docs/protocol.md). A layer beside the CLI, above the runtime: it installs each
//! manifest once on the shared worker pool and turns requests into runs and streaming sessions.
//!
//! - `config`: limits, close codes and HTTP statuses (facts written once).
//! - `auth`: bearer tokens from a file, constant-time compare, reload on SIGHUP.
//! - `protocol`: start message, PCM frames, outputs as messages.
//! - `session`: one WebSocket streaming session, with its bounded queues.
//! - `http`: the routes, admission (auth, origin, session counts) and whole-file runs.
//! - `stats`: the server's counters and the `/metrics` document.
//! - `tls`: `--tls-cert/--tls-key` on rustls with a pure-Rust crypto provider.
//! - `ui`: the browser page of `--ui` (`GET /`).

pub mod auth;
pub mod config;
pub mod http;
pub mod protocol;
pub mod session;
pub mod stats;
pub mod tls;
pub mod ui;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub use config::{CloseKind, Limits, Refusal, ServeConfig, TlsFiles, PROTOCOL_VERSION};

use crate::error::Error;
use crate::graph::Graph;
use crate::runtime::{Pipeline, WorkerPool};

/// One served pipeline.
pub struct Served {
    pub name: String,
    pub pipeline: Pipeline,
    /// The ids of its output nodes, in the order outputs are sent.
    pub outputs: Vec<String>,
}

/// What every request handler shares.
pub struct ServerState {
    pub pipelines: BTreeMap<String, Served>,
    pub tokens: auth::Tokens,
    pub config: ServeConfig,
    pub stats: stats::ServeStats,
    /// With `--tls-cert/--tls-key`: the TLS configuration every connection is accepted with.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Open sessions per token (the empty string when auth is off).
    per_token: Mutex<HashMap<String, usize>>,
    shutting_down: AtomicBool,
    /// Set to true when open sessions must close (the shutdown grace has passed).
    going_away: watch::Sender<bool>,
}

impl ServerState {
    /// Installs every `(name, graph)` on the shared pool (metrics on, for `/metrics`).
    pub fn new(graphs: Vec<(String, Graph)>, config: ServeConfig) -> Result<ServerState, Error> {
        let tokens = auth::Tokens::load(config.tokens.as_deref()).map_err(Error::Input)?;
        // Read at start-up, so that a missing or malformed file stops the server before it listens.
        let tls = match &config.tls {
            Some(f) => Some(tls::server_config(&f.cert, &f.key).map_err(Error::Input)?),
            None => None,
        };
        let mut pipelines = BTreeMap::new();
        for (name, mut graph) in graphs {
            if pipelines.contains_key(&name) {
                return Err(Error::Input(format!("two manifests are served as '{name}': name them NAME=MANIFEST")));
            }
            graph.config.enable_metrics = true;
            let outputs = graph.output_nodes().iter().map(|&n| graph.nodes[n].id.clone()).collect();
            let pool = WorkerPool::shared(graph.config.workers)?;
            let pipeline = pool.install(graph)?;
            pipelines.insert(name.clone(), Served { name, pipeline, outputs });
        }
        Ok(ServerState {
            pipelines,
            tokens,
            config,
            stats: stats::ServeStats::default(),
            tls,
            per_token: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            going_away: watch::channel(false).0,
        })
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub fn going_away(&self) -> watch::Receiver<bool> {
        self.going_away.subscribe()
    }

    /// Takes a session slot for `token`, or says why not.
    pub fn admit(self: &Arc<Self>, token: &str) -> Result<SessionSlot, Refusal> {
        if self.shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        let limits = &self.config.limits;
        let mut map = self.per_token.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = map.values().sum();
        let mine = map.get(token).copied().unwrap_or(0);
        if total >= limits.max_sessions || mine >= limits.max_sessions_per_token {
            return Err(Refusal::TooManySessions);
        }
        *map.entry(token.to_string()).or_default() += 1;
        stats::ServeStats::add(&self.stats.sessions_open, 1);
        stats::ServeStats::add(&self.stats.sessions_total, 1);
        Ok(SessionSlot { state: Arc::clone(self), token: token.to_string() })
    }

    fn open_sessions(&self) -> usize {
        self.per_token.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }
}

/// An admitted session's place in the counts, given back when dropped.
pub struct SessionSlot {
    state: Arc<ServerState>,
    token: String,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut map = self.state.per_token.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.token);
            }
        }
        self.state.stats.sessions_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A server bound to its address, ready to run.
pub struct Server {
    pub state: Arc<ServerState>,
    listener: tokio::net::TcpListener,
}

impl Server {
    /// Binds `addr` (the kernel send buffer of each connection set from the limits, so that a
    /// client that never reads holds a bounded amount there too). Needs a tokio runtime.
    pub async fn bind(state: ServerState, addr: SocketAddr) -> Result<Server, Error> {
        let io = |e: std::io::Error| Error::Io { context: format!("cannot listen on {addr}"), source: e };
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }.map_err(io)?;
        socket.set_reuseaddr(true).map_err(io)?;
        if state.config.limits.socket_send_buffer > 0 {
            socket.set_send_buffer_size(state.config.limits.socket_send_buffer as u32).map_err(io)?;
        }
        socket.bind(addr).map_err(io)?;
        let listener = socket.listen(1024).map_err(io)?;
        Ok(Server { state: Arc::new(state), listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The server's base URL: `https://ADDR` with TLS, else `http://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.state.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// Serves until `stop` resolves; then refuses new work, lets open sessions go on for the
    /// shutdown grace, closes those left with 1001 and returns.
    pub async fn run(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let addr = self.local_addr();
        let state = self.state;
        let app = http::router(Arc::clone(&state));
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let watcher = Arc::clone(&state);
        tokio::spawn(async move {
            stop.await;
            watcher.shutting_down.store(true, Ordering::Relaxed);
            let deadline = tokio::time::Instant::now() + watcher.config.limits.shutdown_grace;
            while watcher.open_sessions() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let _ = watcher.going_away.send(true);
            // Closing sessions get a moment to send their close frames.
            let end = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
            while watcher.open_sessions() > 0 && tokio::time::Instant::now() < end {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let _ = stopped_tx.send(());
        });
        let shutdown = async move {
            let _ = stopped_rx.await;
        };
        let served = match &state.tls {
            Some(config) => {
                let listener = tls::TlsListener::new(self.listener, Arc::clone(config))
                    .map_err(|e| Error::Io { context: format!("serving on {addr}"), source: e })?;
                axum::serve(listener, app).with_graceful_shutdown(shutdown).await
            }
            None => {
                // Outputs go out as several small messages per chunk: without TCP_NODELAY,
                // Nagle's algorithm held the later ones back for the client's delayed ACK
                // (~40 ms a chunk). (The TLS listener sets it too.)
                let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app).with_graceful_shutdown(shutdown).await
            }
        };
        served.map_err(|e| Error::Io { context: format!("serving on {addr}"), source: e })
    }
}

/// Resolves on SIGTERM or SIGINT; reloads the tokens file on each SIGHUP meanwhile.
pub async fn signals(state: Arc<ServerState>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => match state.tokens.reload() {
                Ok(n) => eprintln!("remotemedia serve: reloaded the tokens file ({n} tokens)"),
                Err(e) => eprintln!("remotemedia serve: kept the old tokens: {e}"),
            },
        }
    }
}
