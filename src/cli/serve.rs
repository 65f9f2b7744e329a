//! `remotemedia serve MANIFEST... --listen ADDR`: the flags, the manifests loaded and named, and
//! the server run until SIGTERM/SIGINT (src/serve/ does the serving; docs/serving.md).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{load_graph, parse_workers, CliError};
use crate::serve::{Limits, ServeConfig, Server, ServerState, TlsFiles};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Pipeline manifests to serve, each as MANIFEST (served under its file name without the
    /// extension) or NAME=MANIFEST.
    #[arg(required = true, value_name = "[NAME=]MANIFEST")]
    pub manifests: Vec<String>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// Bearer tokens file, one token a line (`#` comments); reloaded on SIGHUP. Without it
    /// every client is let in.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// A browser origin allowed to connect (repeat for more); without any, every origin is.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
    /// Also serve the browser page at `GET /` (microphone to a pipeline, level, VAD decisions and
    /// segments drawn live; docs/serving.md).
    #[arg(long)]
    pub ui: bool,
    /// TLS certificate chain (PEM): with --tls-key, the server speaks only TLS (https://,
    /// wss://), on rustls with a pure-Rust crypto provider.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Timely workers for every served pipeline (overrides the manifests' config.workers).
    #[arg(long, short, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// Largest binary PCM frame, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// Largest body of POST /v1/pipelines/NAME/run, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Highest sample rate a session may declare, in Hz.
    #[arg(long, value_name = "HZ", default_value_t = Limits::default().max_sample_rate)]
    pub max_sample_rate: u32,
    /// Most channels a session may declare.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_channels)]
    pub max_channels: u16,
    /// Seconds without a message from a client before its session is closed.
    #[arg(long, value_name = "S", default_value_t = Limits::default().idle_timeout.as_secs_f64())]
    pub idle_timeout: f64,
    /// Longest a session may stay open, in seconds.
    #[arg(long, value_name = "S", default_value_t = Limits::default().max_session.as_secs_f64())]
    pub max_session: f64,
    /// How far ahead of real time a client may push, in seconds of audio.
    #[arg(long, value_name = "S", default_value_t = Limits::default().max_ahead.as_secs_f64())]
    pub max_ahead: f64,
    /// Chunks a session may have accepted and not yet answered (then the server stops reading).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_in_flight)]
    pub max_in_flight: usize,
    /// Messages that may wait to be written to one client.
    #[arg(long, value_name = "N", default_value_t = Limits::default().send_queue)]
    pub send_queue: usize,
    /// Seconds a full send queue is tolerated before the client is disconnected as not reading.
    #[arg(long, value_name = "S", default_value_t = Limits::default().send_grace.as_secs_f64())]
    pub send_grace: f64,
    /// Open sessions, in all.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_sessions)]
    pub max_sessions: usize,
    /// Open sessions per bearer token.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_sessions_per_token)]
    pub max_sessions_per_token: usize,
    /// Seconds open sessions may go on after SIGTERM before they are closed with 1001.
    #[arg(long, value_name = "S", default_value_t = Limits::default().shutdown_grace.as_secs_f64())]
    pub shutdown_grace: f64,
}

fn seconds(flag: &str, s: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(s).ok().filter(|d| !d.is_zero()).ok_or_else(|| CliError::usage(format!("--{flag}: expected a positive number of seconds, found {s}")))
}

impl ServeArgs {
    pub fn config(&self) -> Result<ServeConfig, CliError> {
        let limits = Limits {
            max_frame_bytes: self.max_frame_bytes,
            max_body_bytes: self.max_body_bytes,
            max_sample_rate: self.max_sample_rate,
            max_channels: self.max_channels,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            max_session: seconds("max-session", self.max_session)?,
            max_ahead: seconds("max-ahead", self.max_ahead)?,
            max_in_flight: self.max_in_flight.max(1),
            send_queue: self.send_queue.max(1),
            send_grace: seconds("send-grace", self.send_grace)?,
            max_sessions: self.max_sessions,
            max_sessions_per_token: self.max_sessions_per_token,
            shutdown_grace: seconds("shutdown-grace", self.shutdown_grace)?,
            ..Limits::default()
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone() }),
            _ => None,
        };
        Ok(ServeConfig { tokens: self.tokens.clone(), allowed_origins: self.allow_origin.clone(), limits, ui: self.ui, tls })
    }
}

/// `NAME=PATH` or `PATH` (named by its file stem).
fn named(arg: &str) -> (String, PathBuf) {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => (name.to_string(), PathBuf::from(path)),
        _ => {
            let path = PathBuf::from(arg);
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| arg.to_string());
            (name, path)
        }
    }
}

pub fn run(args: &ServeArgs, out: &mut String) -> Result<(), CliError> {
    let config = args.config()?;
    let mut graphs = Vec::new();
    for m in &args.manifests {
        let (name, path) = named(m);
        let mut graph = load_graph(&path)?;
        if let Some(w) = args.workers {
            graph.config.workers = w;
        }
        graphs.push((name, graph));
    }
    let state = ServerState::new(graphs, config).map_err(|e| CliError::usage(super::plain(&e)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("remotemedia-serve")
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async {
        let server = Server::bind(state, args.listen).await.map_err(|e| CliError::failure(super::plain(&e)))?;
        let names: Vec<&str> = server.state.pipelines.keys().map(String::as_str).collect();
        // Said at once on stderr (stdout is printed at exit): scripts wait for this line.
        eprintln!("remotemedia serve: listening on {} (pipelines: {}){}", server.url(), names.join(", "),
            if server.state.tokens.enabled() { "" } else { "; no --tokens: every client is let in" });
        if args.ui {
            eprintln!("remotemedia serve: the browser page is at {}/", server.url());
        }
        let signals = crate::serve::signals(std::sync::Arc::clone(&server.state));
        server.run(signals).await.map_err(|e| CliError::failure(super::plain(&e)))
    })?;
    let _ = writeln!(out, "remotemedia serve: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_named_by_stem_or_prefix() {
        assert_eq!(named("dataflows/speech_vad.yaml"), ("speech_vad".to_string(), PathBuf::from("dataflows/speech_vad.yaml")));
        assert_eq!(named("vad=dataflows/speech_vad.yaml"), ("vad".to_string(), PathBuf::from("dataflows/speech_vad.yaml")));
    }
}
