//! The routes: `GET /healthz`, `GET /metrics`, `GET /v1/pipelines`, `POST /v1/pipelines/NAME/run`
//! (an audio file body, decoded by the file decoder, run once, answered with the outputs as
//! `remotemedia run --json` writes them) and `GET /v1/stream` (the WebSocket upgrade). Admission
//! (token, origin, session counts) happens here, before any audio is taken. With `--ui`, also
//! `GET /`: the browser page (`ui`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::config::Refusal;
use super::stats::{merge_families, ServeStats};
use super::{auth, protocol, session, ServerState};
use crate::data::Payload;

pub fn router(state: Arc<ServerState>) -> Router {
    let body_limit = state.config.limits.max_body_bytes;
    let mut router = Router::new();
    if state.config.ui {
        router = router.route("/", get(super::ui::page));
    }
    router
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/pipelines", get(pipelines))
        .route("/v1/pipelines/{name}/run", post(run))
        .route("/v1/stream", get(stream))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// A refusal as its status and `{"error": {"status", "reason", "message"}}`, counted.
pub fn refuse(state: &ServerState, r: Refusal, message: impl Into<String>) -> Response {
    state.stats.refused(r);
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"status": r.status(), "reason": r.label(), "message": message.into()}});
    let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if r == Refusal::Unauthorized {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    resp
}

/// Token and origin checks; the token admitted (empty when auth is off).
fn authorize(state: &ServerState, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<String, Response> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let allowed = &state.config.allowed_origins;
        if !allowed.is_empty() && !allowed.iter().any(|a| a == origin) {
            return Err(refuse(state, Refusal::Origin, format!("origin '{origin}' is not allowed")));
        }
    }
    let authorization = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
    let token = auth::request_token(authorization, query.get("token").map(String::as_str));
    if !state.tokens.check(token) {
        let why = if token.is_none() { "a bearer token is required" } else { "the bearer token is not accepted" };
        return Err(refuse(state, Refusal::Unauthorized, why));
    }
    Ok(if state.tokens.enabled() { token.unwrap_or("").to_string() } else { String::new() })
}

async fn healthz(State(state): State<Arc<ServerState>>) -> Response {
    let status = if state.shutting_down() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = json!({"status": if state.shutting_down() { "shutting_down" } else { "ok" }, "pipelines": state.pipelines.keys().collect::<Vec<_>>()});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn pipelines(State(state): State<Arc<ServerState>>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    // A route like the others (docs/protocol.md): only healthz and metrics go without a token.
    if let Err(r) = authorize(&state, &headers, &query) {
        return r;
    }
    let list: Vec<Value> = state.pipelines.values().map(|p| json!({"name": p.name, "outputs": p.outputs})).collect();
    ([(header::CONTENT_TYPE, "application/json")], json!({"pipelines": list}).to_string()).into_response()
}

async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    let mut docs = vec![state.stats.prometheus()];
    for served in state.pipelines.values() {
        if let Ok(mut doc) = served.pipeline.metrics_json() {
            // The served name, not the install counter, identifies the pipeline.
            doc["pipeline_id"] = json!(served.name);
            docs.push(crate::metrics_prometheus::to_prometheus(&doc));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], merge_families(&docs)).into_response()
}

async fn stream(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let token = match authorize(&state, &headers, &query) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let slot = match state.admit(&token) {
        Ok(s) => s,
        Err(r) => {
            let msg = if r == Refusal::ShuttingDown { "the server is shutting down" } else { "too many open sessions for this token or server" };
            return refuse(&state, r, msg);
        }
    };
    let l = &state.config.limits;
    // The socket's own cap sits above ours so that a frame over `max_frame_bytes` is read and
    // refused with 1009 and a reason, while nothing larger than the cap is ever buffered.
    let cap = (l.max_frame_bytes.max(l.max_text_bytes)).saturating_mul(2).saturating_add(1 << 16);
    let st = Arc::clone(&state);
    // tungstenite zero-fills its read buffer up to `read_buffer_size` (default 128 KiB) before
    // every read, and a payload handed on keeps that buffer's allocation, so each read of a 2 KB
    // chunk cleared 128 KiB and often faulted fresh pages in: that was the largest cost in the
    // server's profile under load (benchmarks/serve_load.rs). 16 KiB holds a 20 ms chunk of
    // 48 kHz stereo f32 in one read; larger frames take several reads.
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| session::run(socket, st, slot))
}

/// Each WebSocket's read buffer (see `stream`).
const READ_BUFFER: usize = 16 << 10;

/// Names temporary files of request bodies apart.
static BODY_FILES: AtomicU64 = AtomicU64::new(0);

async fn run(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if let Err(r) = authorize(&state, &headers, &query) {
        return r;
    }
    if state.shutting_down() {
        return refuse(&state, Refusal::ShuttingDown, "the server is shutting down");
    }
    if !state.pipelines.contains_key(&name) {
        return refuse(&state, Refusal::UnknownPipeline, format!("no pipeline named '{name}' is served (GET /v1/pipelines lists them)"));
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let max = state.config.limits.max_body_bytes;
            return refuse(&state, Refusal::BodyTooLarge, format!("the request body could not be taken (limit {max} bytes): {e}"));
        }
    };
    ServeStats::add(&state.stats.bytes_received, body.len() as u64);
    // `?outputs=messages`: the outputs as a session's messages (exact samples and types, what the
    // Python client decodes); otherwise the JSON document of `remotemedia run --json`.
    let as_messages = match query.get("outputs").map(String::as_str) {
        None | Some("json") => false,
        Some("messages") => true,
        Some(other) => return refuse(&state, Refusal::BadRequest, format!("outputs={other}: expected 'json' or 'messages'")),
    };
    let st = Arc::clone(&state);
    let job = tokio::task::spawn_blocking(move || -> Result<Response, (Refusal, String)> {
        let audio = decode_body(&body).map_err(|m| (Refusal::BadAudio, m))?;
        let served = &st.pipelines[&name];
        let input = json!({
            "sample_rate": audio.sample_rate,
            "channels": audio.channels,
            "frames": audio.frames(),
            "format": audio.samples.format().name(),
            "duration_s": audio.duration_s(),
        });
        let out = served.pipeline.run(Payload::Audio(audio)).map_err(|e| (Refusal::PipelineError, e.to_string()))?;
        if as_messages {
            let options = protocol::Options { send_audio: true, vad_audio: true };
            let mut msgs = Vec::new();
            protocol::encode_outputs(0, &out.outputs, &options, &mut msgs);
            let body = protocol::message_records(&msgs);
            ServeStats::add(&st.stats.bytes_sent, body.len() as u64);
            return Ok(([(header::CONTENT_TYPE, protocol::MESSAGES_CONTENT_TYPE)], body).into_response());
        }
        let outputs: serde_json::Map<String, Value> =
            out.outputs.iter().map(|(id, p)| (id.clone(), crate::cli::report::payload_json(p))).collect();
        let doc = json!({"pipeline": name, "input": input, "outputs": outputs}).to_string();
        ServeStats::add(&st.stats.bytes_sent, doc.len() as u64);
        Ok(([(header::CONTENT_TYPE, "application/json")], doc).into_response())
    })
    .await;
    match job {
        Ok(Ok(resp)) => {
            ServeStats::add(&state.stats.http_runs, 1);
            resp
        }
        Ok(Err((r, m))) => refuse(&state, r, m),
        Err(e) => refuse(&state, Refusal::PipelineError, format!("the run did not complete: {e}")),
    }
}

/// Decodes a request body with the file decoder: written to a private temporary file (the decoder
/// reads files), read, and removed whatever happened.
fn decode_body(body: &[u8]) -> Result<crate::data::AudioBuffer, String> {
    if body.is_empty() {
        return Err("the request body is empty: send an audio file (WAV, FLAC, ...)".into());
    }
    let n = BODY_FILES.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("remotemedia-serve-{}-{n}.body", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| format!("cannot buffer the body: {e}"))?;
        std::io::Write::write_all(&mut f, body).map_err(|e| format!("cannot buffer the body: {e}"))?;
        drop(f);
        crate::audio_io::read(&path).map_err(|e| {
            // The temporary name means nothing to the client.
            crate::cli::plain(&e).replace(&path.display().to_string(), "the request body")
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}
