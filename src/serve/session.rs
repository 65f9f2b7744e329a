//! One streaming session over a WebSocket: the start message, PCM frames pushed into a runtime
//! session (the same [`Session`](crate::runtime::Session) a local `Pipeline.stream()` uses, so
//! the outputs are exactly a local session's), outputs sent as each chunk completes, the close
//! message's flush and a summary.
//!
//! Bounded end to end: at most `max_in_flight` chunks are accepted and not yet answered (past it
//! the server stops reading this socket, so TCP slows the client down); outputs wait in a queue of
//! `send_queue` messages for the writer task, and a client that leaves it full for `send_grace`
//! is not reading and is disconnected. Every accepted chunk is answered, or the session ends with
//! an error naming the last chunk processed.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};

use super::config::CloseKind;
use super::protocol::{self, Out, Start};
use super::stats::ServeStats;
use super::{ServerState, SessionSlot};
use crate::data::Payload;
use crate::error::Error;
use crate::runtime::RunOutput;

/// How a session ended.
enum End {
    /// Closed by the server with this code and reason (after the last chunk processed, if any).
    Close(CloseKind, String, Option<u64>),
    /// The client went away (or closed first): nothing more to send.
    Gone,
    /// The client did not read: dropped without a close frame (it could not be delivered).
    Slow,
}

type Results = mpsc::UnboundedReceiver<(u64, Result<RunOutput, Error>)>;

struct Conn {
    state: Arc<ServerState>,
    out: mpsc::Sender<Message>,
}

impl Conn {
    /// Queues one message for the writer; `Err` ends the session (not reading, or gone).
    async fn send(&self, m: Out) -> Result<(), End> {
        let msg = match m {
            Out::Text(t) => Message::Text(t.into()),
            Out::Binary(b) => Message::Binary(b.into()),
        };
        ServeStats::add(&self.state.stats.bytes_sent, msg_len(&msg) as u64);
        match timeout(self.state.config.limits.send_grace, self.out.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Slow),
        }
    }
}

fn msg_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

/// Runs a session to its end; `slot` holds its place in the session counts until then.
pub async fn run(socket: WebSocket, state: Arc<ServerState>, slot: SessionSlot) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(state.config.limits.send_queue.max(1));
    let writer = tokio::spawn(write_loop(sink, rx));
    let conn = Conn { state: Arc::clone(&state), out: tx };
    let end = drive(&conn, &mut stream).await;
    match end {
        End::Close(kind, reason, last) => {
            state.stats.closed(kind);
            if kind != CloseKind::Normal {
                let _ = conn.send(protocol::error(kind, &reason, last)).await;
            }
            let frame = CloseFrame { code: kind.code(), reason: protocol::close_reason(&reason).into() };
            let _ = timeout(state.config.limits.send_grace, conn.out.send(Message::Close(Some(frame)))).await;
            drop(conn);
            // The writer ends after the close frame; a client that stopped reading holds it up
            // for at most the grace period.
            let abort = writer.abort_handle();
            if timeout(state.config.limits.send_grace, writer).await.is_err() {
                abort.abort();
            } else {
                // Read (and drop) what the client still sends until its close frame answers
                // ours: closing the socket on unread data would reset the connection, and the
                // client would lose the close frame and its reason.
                let _ = timeout(state.config.limits.send_grace, async {
                    while let Some(Ok(m)) = stream.next().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        End::Gone => {
            drop(conn);
            writer.abort();
        }
        End::Slow => {
            state.stats.closed(CloseKind::SlowConsumer);
            drop(conn);
            writer.abort();
        }
    }
    drop(stream);
    drop(slot);
}

/// Writes the queued messages, flushing once per batch: a chunk's outputs (4-5 messages for
/// speech_vad) then leave in one write syscall instead of one each, which is most of what the
/// server's CPU went to under load (benchmarks/serve_load.rs).
async fn write_loop(mut sink: SplitSink<WebSocket, Message>, mut rx: mpsc::Receiver<Message>) {
    'outer: while let Some(mut m) = rx.recv().await {
        loop {
            let last = matches!(m, Message::Close(_));
            if sink.feed(m).await.is_err() {
                break 'outer;
            }
            if last {
                let _ = sink.flush().await;
                break 'outer;
            }
            match rx.try_recv() {
                Ok(next) => m = next,
                Err(_) => break,
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}

/// The next message from the client, with the checks every message gets.
fn too_big(m: &Message, state: &ServerState) -> Option<End> {
    let l = &state.config.limits;
    match m {
        Message::Binary(b) if b.len() > l.max_frame_bytes => Some(End::Close(
            CloseKind::TooBig,
            format!("a PCM frame of {} bytes is over the limit of {} bytes", b.len(), l.max_frame_bytes),
            None,
        )),
        Message::Text(t) if t.len() > l.max_text_bytes => Some(End::Close(
            CloseKind::TooBig,
            format!("a text message of {} bytes is over the limit of {} bytes", t.len(), l.max_text_bytes),
            None,
        )),
        _ => None,
    }
}

/// An error reading the socket: a message over the socket's own cap is "too big", anything else
/// means the client is gone.
fn read_error(e: axum::Error, state: &ServerState) -> End {
    let text = e.to_string();
    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
        End::Close(CloseKind::TooBig, format!("a message is over the limit of {} bytes", state.config.limits.max_frame_bytes), None)
    } else {
        End::Gone
    }
}

async fn drive(conn: &Conn, stream: &mut SplitStream<WebSocket>) -> End {
    let state = &conn.state;
    let l = state.config.limits.clone();
    let opened = Instant::now();
    // The start message.
    let first = match timeout(l.idle_timeout, next_data(stream)).await {
        Err(_) => return End::Close(CloseKind::Idle, format!("no start message within {} s", l.idle_timeout.as_secs_f64()), None),
        Ok(None) => return End::Gone,
        Ok(Some(Err(e))) => return read_error(e, state),
        Ok(Some(Ok(m))) => m,
    };
    ServeStats::add(&state.stats.bytes_received, msg_len(&first) as u64);
    if let Some(end) = too_big(&first, state) {
        return end;
    }
    let start: Start = match &first {
        Message::Text(t) => match protocol::parse_start(t, &l) {
            Ok(s) => s,
            Err((kind, reason)) => return End::Close(kind, reason, None),
        },
        Message::Binary(_) => return End::Close(CloseKind::BadMessage, "the first message must be the JSON start message, not a binary frame".into(), None),
        _ => return End::Gone,
    };
    let Some(served) = state.pipelines.get(&start.pipeline) else {
        let names: Vec<&str> = state.pipelines.keys().map(String::as_str).collect();
        return End::Close(CloseKind::UnknownPipeline, format!("no pipeline named '{}' is served (served: {})", start.pipeline, names.join(", ")), None);
    };
    let mut session = served.pipeline.session();
    if let Err(e) = conn.send(protocol::ready(session.id(), &served.name, &served.outputs)).await {
        return e;
    }
    let started = Instant::now();
    let (results_tx, mut results): (_, Results) = mpsc::unbounded_channel();
    let mut going_away = state.going_away();
    let mut pushed: u64 = 0;
    let mut frames: u64 = 0;
    let mut in_flight = 0usize;
    let mut closing = false;
    let mut last_done: Option<u64> = None;
    let mut output_messages: u64 = 0;
    let mut idle_at = Instant::now() + l.idle_timeout;
    let ends_at = opened + l.max_session;
    loop {
        tokio::select! {
            biased;
            Some((k, result)) = results.recv() => {
                in_flight -= 1;
                let outputs = match result {
                    Ok(o) => o,
                    Err(e) => {
                        let what = if closing && k == pushed { "the close".to_string() } else { format!("chunk {k}") };
                        return End::Close(CloseKind::PipelineError, format!("{what} failed: {e}"), last_done);
                    }
                };
                let mut msgs = Vec::new();
                protocol::encode_outputs(k, &outputs.outputs, &start.options, &mut msgs);
                output_messages += msgs.len() as u64;
                for m in msgs {
                    if let Err(end) = conn.send(m).await {
                        return end;
                    }
                }
                if let Err(end) = conn.send(protocol::done(k)).await {
                    return end;
                }
                last_done = Some(k);
                if closing && k == pushed {
                    let summary = json!({
                        "type": "summary",
                        "chunks": pushed,
                        "frames": frames,
                        "audio_s": frames as f64 / start.sample_rate as f64,
                        "output_messages": output_messages,
                        "wall_s": started.elapsed().as_secs_f64(),
                    });
                    if let Err(end) = conn.send(Out::Text(summary.to_string())).await {
                        return end;
                    }
                    return End::Close(CloseKind::Normal, "session complete".into(), last_done);
                }
            }
            msg = next_data(stream), if in_flight < l.max_in_flight && !closing => {
                let m = match msg {
                    None => return End::Gone,
                    Some(Err(e)) => return read_error(e, state),
                    Some(Ok(m)) => m,
                };
                idle_at = Instant::now() + l.idle_timeout;
                ServeStats::add(&state.stats.bytes_received, msg_len(&m) as u64);
                if let Some(end) = too_big(&m, state) {
                    return end;
                }
                match m {
                    Message::Binary(bytes) => {
                        let audio = match protocol::decode_pcm(&bytes, &start) {
                            Ok(a) => a,
                            Err((kind, reason)) => return End::Close(kind, format!("chunk {pushed}: {reason}"), last_done),
                        };
                        frames += audio.frames() as u64;
                        let ahead = frames as f64 / start.sample_rate as f64 - started.elapsed().as_secs_f64();
                        if ahead > l.max_ahead.as_secs_f64() {
                            return End::Close(
                                CloseKind::TooFast,
                                format!("chunk {pushed} is {ahead:.1} s ahead of real time (limit {} s)", l.max_ahead.as_secs_f64()),
                                last_done,
                            );
                        }
                        let tx = results_tx.clone();
                        let k = pushed;
                        let reply = Box::new(move |r| { let _ = tx.send((k, single(r))); });
                        if let Err(e) = session.submit_push(Payload::Audio(audio), reply) {
                            return End::Close(CloseKind::PipelineError, format!("chunk {k} was refused: {e}"), last_done);
                        }
                        ServeStats::add(&state.stats.chunks_total, 1);
                        pushed += 1;
                        in_flight += 1;
                    }
                    Message::Text(t) => {
                        if let Err((kind, reason)) = protocol::is_close_message(&t) {
                            return End::Close(kind, reason, last_done);
                        }
                        let tx = results_tx.clone();
                        let k = pushed;
                        let reply = Box::new(move |r| { let _ = tx.send((k, single(r))); });
                        if let Err(e) = session.submit_close(reply) {
                            return End::Close(CloseKind::PipelineError, format!("the close was refused: {e}"), last_done);
                        }
                        closing = true;
                        in_flight += 1;
                    }
                    // The client closed first: the session is dropped without its flush.
                    _ => return End::Gone,
                }
            }
            _ = sleep_until(idle_at), if in_flight == 0 && !closing => {
                return End::Close(CloseKind::Idle, format!("no message for {} s", l.idle_timeout.as_secs_f64()), last_done);
            }
            _ = sleep_until(ends_at) => {
                return End::Close(CloseKind::TooLong, format!("the session reached its limit of {} s", l.max_session.as_secs_f64()), last_done);
            }
            Ok(()) = going_away.changed() => {
                if *going_away.borrow() {
                    return End::Close(CloseKind::GoingAway, "the server is shutting down".into(), last_done);
                }
            }
        }
    }
}

/// The next text, binary or close message (pings and pongs are answered by the socket itself).
async fn next_data(stream: &mut SplitStream<WebSocket>) -> Option<Result<Message, axum::Error>> {
    loop {
        match stream.next().await? {
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            other => return Some(other),
        }
    }
}

/// A session reply's one result.
fn single(r: Result<Vec<crate::runtime::ItemResult>, Error>) -> Result<RunOutput, Error> {
    match r?.pop() {
        Some(item) => item.map_err(Error::Node),
        None => Err(Error::Engine("a chunk completed without a result".into())),
    }
}
