//! What a server is configured with (`remotemedia serve`'s flags) and every refusal it can give:
//! the limits with their defaults, and the close codes and HTTP statuses of docs/protocol.md,
//! written once here (a test checks that the document lists each of them).

use std::path::PathBuf;
use std::time::Duration;

/// The protocol version a start message names (`"protocol": 1`) and the server announces.
pub const PROTOCOL_VERSION: u32 = 1;

/// Limits every session and request is held to. The defaults are the flags' defaults.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest binary PCM frame (one chunk), in bytes.
    pub max_frame_bytes: usize,
    /// Largest text message (the start and close messages), in bytes.
    pub max_text_bytes: usize,
    /// Largest request body of `POST /v1/pipelines/NAME/run`, in bytes.
    pub max_body_bytes: usize,
    /// Highest sample rate a start message may declare, in Hz.
    pub max_sample_rate: u32,
    /// Most channels a start message may declare.
    pub max_channels: u16,
    /// A session with no message from its client for this long is closed (the pipeline's own
    /// backlog does not count as idle: the server is then not reading).
    pub idle_timeout: Duration,
    /// A session open this long is closed, whatever it is doing.
    pub max_session: Duration,
    /// How far ahead of real time (audio seconds pushed minus wall-clock seconds since the start
    /// message) a client may get before it is refused.
    pub max_ahead: Duration,
    /// Chunks accepted but not yet answered, per session: past it the server stops reading.
    pub max_in_flight: usize,
    /// Messages waiting to be written to one client: when full for `send_grace`, the client is
    /// taken as not reading and disconnected.
    pub send_queue: usize,
    pub send_grace: Duration,
    /// Open streaming sessions in all, and per bearer token.
    pub max_sessions: usize,
    pub max_sessions_per_token: usize,
    /// Kernel send buffer of each connection (bytes; 0 keeps the system's default).
    pub socket_send_buffer: usize,
    /// On SIGTERM/SIGINT: how long open sessions may go on before they are closed.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 1 << 20,
            max_text_bytes: 64 << 10,
            max_body_bytes: 256 << 20,
            max_sample_rate: 192_000,
            max_channels: 8,
            idle_timeout: Duration::from_secs(30),
            max_session: Duration::from_secs(4 * 3600),
            max_ahead: Duration::from_secs(10),
            max_in_flight: 4,
            send_queue: 256,
            send_grace: Duration::from_secs(5),
            max_sessions: 4096,
            max_sessions_per_token: 1024,
            socket_send_buffer: 256 << 10,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A whole server's configuration.
#[derive(Clone, Debug, Default)]
pub struct ServeConfig {
    /// The bearer tokens file (one token a line; `#` starts a comment); `None`: no auth.
    pub tokens: Option<PathBuf>,
    /// Browser origins allowed to open sessions (an `Origin` header elsewhere gets 403); empty:
    /// any origin.
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    /// Serve the browser page (`--ui`) at `GET /`.
    pub ui: bool,
    /// `--tls-cert` and `--tls-key`: PEM certificate chain and private key; with them the server
    /// speaks only TLS (`https://`, `wss://`).
    pub tls: Option<TlsFiles>,
}

/// Where the server's TLS certificate chain and private key are (PEM files).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a WebSocket session was closed: its close code, and the reason label in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// The client's close message was answered: every output and the summary were sent.
    Normal,
    /// The server is shutting down and the grace period has passed.
    GoingAway,
    /// A binary frame larger than `max_frame_bytes` (or a text message over `max_text_bytes`).
    TooBig,
    /// The start message (or a later text message) is not what the protocol says.
    BadMessage,
    /// The start message names a pipeline this server does not serve.
    UnknownPipeline,
    /// The sample rate, channel count or sample format is not accepted.
    Unsupported,
    /// No message from the client for `idle_timeout`.
    Idle,
    /// The session was open for `max_session`.
    TooLong,
    /// The client pushed more than `max_ahead` ahead of real time.
    TooFast,
    /// The client did not read its results: its send queue stayed full for `send_grace`.
    SlowConsumer,
    /// The pipeline failed on a chunk; the reason names the last chunk processed.
    PipelineError,
}

impl CloseKind {
    pub const ALL: [CloseKind; 11] = [
        CloseKind::Normal,
        CloseKind::GoingAway,
        CloseKind::TooBig,
        CloseKind::BadMessage,
        CloseKind::UnknownPipeline,
        CloseKind::Unsupported,
        CloseKind::Idle,
        CloseKind::TooLong,
        CloseKind::TooFast,
        CloseKind::SlowConsumer,
        CloseKind::PipelineError,
    ];

    /// The WebSocket close code (RFC 6455 codes where one fits, else the 4000-4999 private range).
    pub fn code(self) -> u16 {
        match self {
            CloseKind::Normal => 1000,
            CloseKind::GoingAway => 1001,
            CloseKind::TooBig => 1009,
            CloseKind::BadMessage => 4000,
            CloseKind::UnknownPipeline => 4004,
            CloseKind::Unsupported => 4013,
            CloseKind::Idle => 4008,
            CloseKind::TooLong => 4009,
            CloseKind::TooFast => 4029,
            CloseKind::SlowConsumer => 4030,
            CloseKind::PipelineError => 4500,
        }
    }

    /// The `reason` label of `remotemedia_serve_sessions_closed_total`.
    pub fn label(self) -> &'static str {
        match self {
            CloseKind::Normal => "normal",
            CloseKind::GoingAway => "going_away",
            CloseKind::TooBig => "too_big",
            CloseKind::BadMessage => "bad_message",
            CloseKind::UnknownPipeline => "unknown_pipeline",
            CloseKind::Unsupported => "unsupported",
            CloseKind::Idle => "idle",
            CloseKind::TooLong => "too_long",
            CloseKind::TooFast => "too_fast",
            CloseKind::SlowConsumer => "slow_consumer",
            CloseKind::PipelineError => "pipeline_error",
        }
    }
}

/// Why an HTTP request (a run, or a WebSocket upgrade) was refused before any audio was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token, or one not in the tokens file.
    Unauthorized,
    /// An `Origin` not in `--allow-origin`.
    Origin,
    /// `NAME` in the path is not served.
    UnknownPipeline,
    /// The request body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// The request body is not audio the file decoder reads.
    BadAudio,
    /// A query parameter the route does not take, or a value it does not know.
    BadRequest,
    /// The token (or the server) already holds its most sessions.
    TooManySessions,
    /// The server is shutting down.
    ShuttingDown,
    /// The pipeline failed on the audio.
    PipelineError,
}

impl Refusal {
    pub const ALL: [Refusal; 9] = [
        Refusal::Unauthorized,
        Refusal::Origin,
        Refusal::UnknownPipeline,
        Refusal::BodyTooLarge,
        Refusal::BadAudio,
        Refusal::BadRequest,
        Refusal::TooManySessions,
        Refusal::ShuttingDown,
        Refusal::PipelineError,
    ];

    pub fn status(self) -> u16 {
        match self {
            Refusal::Unauthorized => 401,
            Refusal::Origin => 403,
            Refusal::UnknownPipeline => 404,
            Refusal::BodyTooLarge => 413,
            Refusal::BadAudio => 400,
            Refusal::BadRequest => 400,
            Refusal::TooManySessions => 429,
            Refusal::ShuttingDown => 503,
            Refusal::PipelineError => 500,
        }
    }

    /// The `reason` label of `remotemedia_serve_http_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Unauthorized => "unauthorized",
            Refusal::Origin => "origin",
            Refusal::UnknownPipeline => "unknown_pipeline",
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::BadAudio => "bad_audio",
            Refusal::BadRequest => "bad_request",
            Refusal::TooManySessions => "too_many_sessions",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::PipelineError => "pipeline_error",
        }
    }
}
