//! `remotemedia serve` on loopback: a WebSocket session gives exactly a local session's outputs,
//! an HTTP run equals `remotemedia run`, and every refusal of docs/protocol.md is given (and
//! counted) while another session goes on unaffected.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use remotemedia::data::{AudioBuffer, Payload, Samples};
use remotemedia::serve::protocol::{encode_outputs, Options, Out};
use remotemedia::serve::{Limits, ServeConfig, Server, ServerState, TlsFiles};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

const TOKEN: &str = "s3cret-token";
const SAMPLE: &str = "dataflows/sample_speech.wav";

fn graph(path: &str) -> remotemedia::graph::Graph {
    remotemedia::cli::load_graph(Path::new(path)).expect("valid manifest")
}

/// A server on 127.0.0.1 (a free port) serving speech_vad and convert_gain, with `limits`.
async fn start(limits: Limits, dir: &Path) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, Arc<ServerState>) {
    start_with(limits, None, dir).await
}

/// The same, with TLS from these files when given.
async fn start_with(limits: Limits, tls: Option<TlsFiles>, dir: &Path) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, Arc<ServerState>) {
    let tokens = dir.join("tokens.txt");
    std::fs::write(&tokens, format!("# test clients\n{TOKEN}\nother-token\n")).unwrap();
    let config = ServeConfig { tokens: Some(tokens), allowed_origins: vec![], limits, tls, ..ServeConfig::default() };
    let state = ServerState::new(
        vec![("speech_vad".into(), graph("dataflows/speech_vad.yaml")), ("convert_gain".into(), graph("dataflows/convert_gain.yaml"))],
        config,
    )
    .unwrap();
    let server = Server::bind(state, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr();
    let state = Arc::clone(&server.state);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (addr, stop, state)
}

fn request(addr: SocketAddr, token: Option<&str>) -> tungstenite::handshake::client::Request {
    let mut req = format!("ws://{addr}/v1/stream").into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut().insert("Authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

fn start_msg(pipeline: &str, rate: u32, channels: u16, format: &str) -> Message {
    Message::Text(json!({"type": "start", "protocol": 1, "pipeline": pipeline, "sample_rate": rate, "channels": channels, "format": format}).to_string().into())
}

fn s16_bytes(a: &AudioBuffer) -> Vec<u8> {
    match &a.samples {
        Samples::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        _ => panic!("the sample is 16-bit"),
    }
}

/// A message as the client compares it: text as is, binary as bytes.
#[derive(Debug, PartialEq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
}

/// What the server must send for one chunk: its outputs, encoded, then `done`.
fn expected(chunk: u64, outputs: &[(String, Payload)]) -> Vec<Got> {
    let mut out = Vec::new();
    encode_outputs(chunk, outputs, &Options::default(), &mut out);
    let mut v: Vec<Got> = out
        .into_iter()
        .map(|m| match m {
            Out::Text(t) => Got::Text(t),
            Out::Binary(b) => Got::Binary(b),
        })
        .collect();
    v.push(Got::Text(json!({"type": "done", "chunk": chunk}).to_string()));
    v
}

/// Streams `audio` in chunks of `chunk` frames (pausing `pause` between pushes) and returns every
/// message up to the close frame, and the close code and reason.
async fn stream_session(addr: SocketAddr, pipeline: &str, audio: &AudioBuffer, chunk: usize, pause: Duration) -> (Vec<Got>, u16, String) {
    let (ws, _) = tokio_tungstenite::connect_async(request(addr, Some(TOKEN))).await.expect("connect");
    session_over(ws, pipeline, audio, chunk, pause).await
}

/// The session of [`stream_session`] on a connected WebSocket (plain or TLS).
async fn session_over<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    pipeline: &str,
    audio: &AudioBuffer,
    chunk: usize,
    pause: Duration,
) -> (Vec<Got>, u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(m) = rx.next().await {
            match m.expect("read") {
                Message::Text(t) => got.push(Got::Text(t.to_string())),
                Message::Binary(b) => got.push(Got::Binary(b.to_vec())),
                Message::Close(Some(f)) => return (got, u16::from(f.code), f.reason.to_string()),
                Message::Close(None) => return (got, 1005, String::new()),
                _ => {}
            }
        }
        (got, 1006, String::new())
    });
    tx.send(start_msg(pipeline, audio.sample_rate, audio.channels, "s16le")).await.unwrap();
    for k in 0..audio.frames().div_ceil(chunk) {
        let piece = audio.frame_range(k * chunk, (k + 1) * chunk);
        tx.send(Message::Binary(s16_bytes(&piece).into())).await.unwrap();
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    tx.send(Message::Text(r#"{"type":"close"}"#.into())).await.unwrap();
    reader.await.unwrap()
}

/// The same audio through a local session of the same manifest: the messages it must give.
fn local_messages(manifest: &str, audio: &AudioBuffer, chunk: usize) -> Vec<Got> {
    let g = graph(manifest);
    let pool = remotemedia::runtime::WorkerPool::shared(g.config.workers).unwrap();
    let pipeline = pool.install(g).unwrap();
    let mut session = pipeline.session();
    let mut v = Vec::new();
    let chunks = audio.frames().div_ceil(chunk);
    for k in 0..chunks {
        let out = session.push(Payload::Audio(audio.frame_range(k * chunk, (k + 1) * chunk))).unwrap();
        v.extend(expected(k as u64, &out.outputs));
    }
    let out = session.close().unwrap();
    v.extend(expected(chunks as u64, &out.outputs));
    v
}

fn sample() -> AudioBuffer {
    remotemedia::audio_io::read(Path::new(SAMPLE)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_session_gives_exactly_the_outputs_of_a_local_session() {
    let dir = common::temp_dir("ws-equal");
    let (addr, stop, _) = start(Limits { max_ahead: Duration::from_secs(3600), ..Limits::default() }, &dir).await;
    let audio = sample();
    let chunk = audio.sample_rate as usize / 50; // 20 ms
    let (got, code, reason) = stream_session(addr, "speech_vad", &audio, chunk, Duration::ZERO).await;
    assert_eq!((code, reason.as_str()), (1000, "session complete"));
    let Got::Text(ready) = &got[0] else { panic!("ready first") };
    let ready: Value = serde_json::from_str(ready).unwrap();
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["outputs"], json!(["resample_16k", "vad", "clips"]));
    let Some(Got::Text(summary)) = got.last() else { panic!("summary last") };
    let summary: Value = serde_json::from_str(summary).unwrap();
    let chunks = audio.frames().div_ceil(chunk) as u64;
    assert_eq!((summary["type"].as_str(), summary["chunks"].as_u64(), summary["frames"].as_u64()), (Some("summary"), Some(chunks), Some(audio.frames() as u64)));
    let local = local_messages("dataflows/speech_vad.yaml", &audio, chunk);
    let remote = &got[1..got.len() - 1];
    assert_eq!(remote.len(), local.len());
    for (i, (r, l)) in remote.iter().zip(&local).enumerate() {
        assert_eq!(r, l, "message {i} differs");
    }
    // Not vacuous: the sample's speech closes segments and cuts clips on the way.
    let segments = remote.iter().filter(|m| matches!(m, Got::Text(t) if t.contains("\"type\":\"vad\"") && !t.contains("\"segments\":[]"))).count();
    let clips = remote.iter().filter(|m| matches!(m, Got::Binary(b) if String::from_utf8_lossy(&b[..200.min(b.len())]).contains("\"clip\""))).count();
    assert!(segments > 0 && clips > 0, "segments {segments}, clips {clips}");
    let _ = stop.send(());
}

/// `--tls-cert/--tls-key` (tests/fixtures/tls: a self-signed localhost certificate): a `wss://`
/// session gives exactly the messages of a plain one, the client checking the server's
/// certificate against that one alone; a plain `ws://` client is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_session_gives_the_same_outputs_and_a_plain_client_is_refused() {
    let dir = common::temp_dir("wss");
    let fixtures = Path::new("tests/fixtures/tls");
    let tls = TlsFiles { cert: fixtures.join("cert.pem"), key: fixtures.join("key.pem") };
    let limits = Limits { max_ahead: Duration::from_secs(3600), ..Limits::default() };
    let (addr, stop, state) = start_with(limits.clone(), Some(tls), &dir).await;
    let (plain_addr, plain_stop, _) = start(limits, &dir).await;
    let audio = sample();
    let chunk = audio.sample_rate as usize / 50;

    // The client trusts the fixture certificate only, with the same pure-Rust provider.
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_file(fixtures.join("cert.pem")).unwrap()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls_rustcrypto::provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.expect("TLS handshake");
    let mut req = format!("wss://localhost:{}/v1/stream", addr.port()).into_client_request().unwrap();
    req.headers_mut().insert("Authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::client_async(req, tls).await.expect("WebSocket over TLS");
    let (secure, code, reason) = session_over(ws, "speech_vad", &audio, chunk, Duration::ZERO).await;
    assert_eq!((code, reason.as_str()), (1000, "session complete"));
    let (plain, code, _) = stream_session(plain_addr, "speech_vad", &audio, chunk, Duration::ZERO).await;
    assert_eq!(code, 1000);
    // Everything but `ready` (its session id) and the summary (its wall time).
    assert!(secure.len() > 100, "{} messages", secure.len());
    assert_eq!(&secure[1..secure.len() - 1], &plain[1..plain.len() - 1]);

    // A plain client on the TLS port gets no WebSocket (and no HTTP answer).
    let plain_try = tokio::time::timeout(Duration::from_secs(20), tokio_tungstenite::connect_async(request(addr, Some(TOKEN)))).await.expect("refused, not hung");
    assert!(plain_try.is_err(), "a plain ws:// client was let in on the TLS port");
    let (status, _) = tokio::time::timeout(Duration::from_secs(20), async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        (buf.starts_with(b"HTTP/"), buf)
    })
    .await
    .expect("closed, not hung");
    assert!(!status, "plain HTTP was answered on the TLS port");
    // The refused plain clients never became sessions.
    assert_eq!(state.stats.sessions_total.load(std::sync::atomic::Ordering::Relaxed), 1);
    let _ = stop.send(());
    let _ = plain_stop.send(());
}

/// A raw HTTP/1.1 request on loopback; the status and body.
async fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    let text = String::from_utf8_lossy(&resp);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    let at = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers") + 4;
    (status, resp[at..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_run_of_a_wav_or_flac_equals_remotemedia_run() {
    let dir = common::temp_dir("http-run");
    let (addr, stop, _) = start(Limits::default(), &dir).await;
    // A FLAC of the sample, written by the CLI's encoder.
    let flac = dir.join("sample.flac");
    let made = common::cli(&["run", "dataflows/convert_gain.yaml", "--once", "--output", common::s(&flac)]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    for input in [Path::new(SAMPLE), flac.as_path()] {
        let json_path = dir.join("run.json");
        let run = common::cli(&["run", "dataflows/speech_vad.yaml", "--once", "--input", common::s(input), "--json", common::s(&json_path)]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let want: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
        let (status, body) = http(addr, "POST", "/v1/pipelines/speech_vad/run", Some(TOKEN), &std::fs::read(input).unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got["outputs"], want["outputs"], "{}", input.display());
        assert!(got["outputs"]["vad"]["segments"].as_array().is_some_and(|s| !s.is_empty()));
    }
    // Refusals of the run route, each with its status and reason.
    let wav = std::fs::read(SAMPLE).unwrap();
    let reason = |body: &[u8]| serde_json::from_slice::<Value>(body).unwrap()["error"]["reason"].as_str().unwrap().to_string();
    let (status, body) = http(addr, "POST", "/v1/pipelines/speech_vad/run", None, &wav).await;
    assert_eq!((status, reason(&body)), (401, "unauthorized".into()));
    let (status, body) = http(addr, "POST", "/v1/pipelines/speech_vad/run", Some("wrong"), &wav).await;
    assert_eq!((status, reason(&body)), (401, "unauthorized".into()));
    let (status, body) = http(addr, "POST", "/v1/pipelines/nope/run", Some(TOKEN), &wav).await;
    assert_eq!((status, reason(&body)), (404, "unknown_pipeline".into()));
    let (status, body) = http(addr, "POST", "/v1/pipelines/speech_vad/run", Some(TOKEN), b"this is not audio").await;
    assert_eq!((status, reason(&body)), (400, "bad_audio".into()));
    let (status, body) = http(addr, "GET", "/healthz", None, b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, body) = http(addr, "GET", "/metrics", None, b"").await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200);
    assert!(text.contains("remotemedia_serve_http_runs_total 2"), "{text}");
    assert!(text.contains("remotemedia_serve_http_refused_total{reason=\"unauthorized\",status=\"401\"} 2"), "{text}");
    assert!(text.contains("node_id=\"vad\""), "per-node series: {text}");
    let _ = stop.send(());
}

/// Connects, sends `first` and then `then`, and returns the close code (HTTP refusals as their
/// status).
async fn refused(addr: SocketAddr, token: Option<&str>, first: Message, then: Vec<Message>) -> (u16, String) {
    let ws = match tokio_tungstenite::connect_async(request(addr, token)).await {
        Ok((ws, _)) => ws,
        Err(tungstenite::Error::Http(resp)) => return (resp.status().as_u16(), String::new()),
        Err(e) => panic!("connect: {e}"),
    };
    let (mut tx, mut rx) = ws.split();
    let _ = tx.send(first).await;
    for m in then {
        let _ = tx.send(m).await;
    }
    close_of(&mut rx).await
}

async fn close_of<S>(rx: &mut S) -> (u16, String)
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let mut error_seen = false;
    while let Some(m) = tokio::time::timeout(Duration::from_secs(20), rx.next()).await.expect("a close within 20 s") {
        match m {
            Ok(Message::Text(t)) if t.contains("\"type\":\"error\"") => error_seen = true,
            Ok(Message::Close(Some(f))) => {
                assert!(error_seen, "an error message comes before the close frame");
                return (u16::from(f.code), f.reason.to_string());
            }
            Ok(_) => {}
            Err(_) => return (1006, String::new()),
        }
    }
    (1006, String::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_gets_its_code_while_another_session_goes_on() {
    let dir = common::temp_dir("refusals");
    let limits = Limits {
        max_frame_bytes: 64 << 10,
        max_sample_rate: 96_000,
        idle_timeout: Duration::from_millis(600),
        max_ahead: Duration::from_secs(2),
        send_queue: 8,
        send_grace: Duration::from_millis(500),
        socket_send_buffer: 64 << 10,
        ..Limits::default()
    };
    let (addr, stop, state) = start(limits, &dir).await;
    // The session that must go on: 3 s of the sample at about 1.5x real time, checked against
    // a local session at the end.
    let audio = sample().frame_range(0, 3 * 48_000);
    let chunk = 960;
    let good = {
        let audio = audio.clone();
        tokio::spawn(async move { stream_session(addr, "speech_vad", &audio, chunk, Duration::from_millis(13)).await })
    };
    let start16 = || start_msg("speech_vad", 16_000, 1, "s16le");
    let pcm = |bytes: usize| Message::Binary(vec![0u8; bytes].into());
    let checks = async {
        assert_eq!(refused(addr, None, start16(), vec![]).await.0, 401, "missing token");
        assert_eq!(refused(addr, Some("guess"), start16(), vec![]).await.0, 401, "wrong token");
        let (code, reason) = refused(addr, Some(TOKEN), start16(), vec![pcm(128 << 10)]).await;
        assert_eq!(code, 1009, "oversized frame: {reason}");
        let (code, reason) = refused(addr, Some(TOKEN), Message::Text("{\"type\":\"start\",\"pipeline\":".into()), vec![]).await;
        assert_eq!(code, 4000, "malformed start: {reason}");
        let (code, reason) = refused(addr, Some(TOKEN), start_msg("nope", 16_000, 1, "s16le"), vec![]).await;
        assert_eq!((code, reason.contains("'nope'")), (4004, true), "unknown pipeline: {reason}");
        let (code, reason) = refused(addr, Some(TOKEN), start_msg("speech_vad", 192_000, 1, "s16le"), vec![]).await;
        assert_eq!(code, 4013, "too high a rate: {reason}");
        let (code, reason) = refused(addr, Some(TOKEN), start16(), vec![pcm(640)]).await;
        assert_eq!(code, 4008, "idle client: {reason}");
        // 100x real time: 20 ms chunks, 5 s of audio, sent as fast as the socket takes them.
        let (code, reason) = refused(addr, Some(TOKEN), start16(), (0..250).map(|_| pcm(640)).collect()).await;
        assert_eq!(code, 4029, "pushing ahead of real time: {reason}");
        // A client that never reads: convert_gain sends every chunk back; it is disconnected.
        never_reads(addr).await;
    };
    checks.await;
    let (got, code, reason) = good.await.unwrap();
    assert_eq!((code, reason.as_str()), (1000, "session complete"));
    let local = local_messages("dataflows/speech_vad.yaml", &audio, chunk);
    assert_eq!(&got[1..got.len() - 1], &local[..], "the session going on meanwhile is unaffected");
    let metrics = state.stats.prometheus();
    for (reason, code) in [("too_big", 1009), ("bad_message", 4000), ("unknown_pipeline", 4004), ("unsupported", 4013), ("idle", 4008), ("too_fast", 4029), ("slow_consumer", 4030), ("normal", 1000)] {
        let line = format!("remotemedia_serve_sessions_closed_total{{reason=\"{reason}\",code=\"{code}\"}} ");
        assert!(metrics.lines().any(|l| l.starts_with(&line) && !l.ends_with(" 0")), "{line} counted: {metrics}");
    }
    assert!(metrics.contains("remotemedia_serve_http_refused_total{reason=\"unauthorized\",status=\"401\"} 2"), "{metrics}");
    let _ = stop.send(());
}

/// Streams 48 kHz f32 stereo in real time into convert_gain and never reads: the server must
/// drop the connection (the client's writes then fail) within a few seconds.
async fn never_reads(addr: SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(request(addr, Some(TOKEN)), stream).await.unwrap();
    let (mut tx, _rx) = ws.split();
    tx.send(start_msg("convert_gain", 48_000, 2, "f32le")).await.unwrap();
    let frame = vec![0u8; 960 * 2 * 4]; // 20 ms
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if tx.send(Message::Binary(frame.clone().into())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "a client that never reads is disconnected");
}

#[test]
fn the_protocol_page_lists_every_close_code_and_status() {
    use remotemedia::serve::{CloseKind, Refusal};
    let page = std::fs::read_to_string("docs/protocol.md").unwrap();
    for k in CloseKind::ALL {
        let row = format!("| {} | `{}` |", k.code(), k.label());
        assert!(page.contains(&row), "docs/protocol.md lacks the row {row}");
    }
    for r in Refusal::ALL {
        let row = format!("| {} | `{}` |", r.status(), r.label());
        assert!(page.contains(&row), "docs/protocol.md lacks the row {row}");
    }
}

/// This process's resident memory, in MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).unwrap().parse().unwrap();
    kb / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_a_flooding_client_and_one_that_never_reads() {
    let dir = common::temp_dir("memory");
    let limits = Limits { max_ahead: Duration::from_secs(3600), send_grace: Duration::from_millis(500), ..Limits::default() };
    let (addr, stop, state) = start(limits, &dir).await;
    let before = rss_mib();
    let peak = Arc::new(std::sync::Mutex::new(before));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                let now = rss_mib();
                {
                    let mut p = peak.lock().unwrap();
                    *p = p.max(now);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Flooding: 48 kHz stereo f32 in 20 ms frames, as fast as the server takes them (about
    // 1,000x real time here), 64 MiB in all, every output read and dropped.
    const FRAME: usize = 960 * 2 * 4;
    const FRAMES: usize = (64 << 20) / FRAME;
    let flood = tokio::spawn(async move {
        let (ws, _) = tokio_tungstenite::connect_async(request(addr, Some(TOKEN))).await.unwrap();
        let (mut tx, mut rx) = ws.split();
        let reader = tokio::spawn(async move {
            let mut bytes = 0usize;
            while let Some(Ok(m)) = rx.next().await {
                match m {
                    Message::Binary(b) => bytes += b.len(),
                    Message::Close(f) => return (bytes, f.map(|f| u16::from(f.code))),
                    _ => {}
                }
            }
            (bytes, None)
        });
        tx.send(start_msg("convert_gain", 48_000, 2, "f32le")).await.unwrap();
        let frame: Vec<u8> = (0..FRAME / 4).flat_map(|i| ((i % 100) as f32 / 100.0).to_le_bytes()).collect();
        for _ in 0..FRAMES {
            tx.send(Message::Binary(frame.clone().into())).await.unwrap();
        }
        tx.send(Message::Text(r#"{"type":"close"}"#.into())).await.unwrap();
        reader.await.unwrap()
    });
    never_reads(addr).await;
    let (bytes_back, code) = flood.await.unwrap();
    sampler.abort();
    let peak = *peak.lock().unwrap();
    eprintln!("memory: {before:.1} MiB before, peak {peak:.1} MiB while 64 MiB were pushed (and {:.1} MiB sent back) and a client never read", bytes_back as f64 / (1 << 20) as f64);
    assert_eq!(code, Some(1000));
    assert!(bytes_back >= 64 << 20, "every chunk's output came back: {bytes_back} bytes");
    // Buffering what was pushed would take 64 MiB and more; the bounded queues take a few MiB.
    assert!(peak - before < 32.0, "memory grew by {:.1} MiB", peak - before);
    assert!(state.stats.prometheus().contains("reason=\"slow_consumer\",code=\"4030\"} 1"));
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_new_work_gets_503_and_open_sessions_1001_after_the_grace() {
    let dir = common::temp_dir("shutdown");
    let limits = Limits { shutdown_grace: Duration::from_millis(300), ..Limits::default() };
    let (addr, stop, _) = start(limits, &dir).await;
    let (ws, _) = tokio_tungstenite::connect_async(request(addr, Some(TOKEN))).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    tx.send(start_msg("speech_vad", 16_000, 1, "s16le")).await.unwrap();
    tx.send(Message::Binary(vec![0u8; 640].into())).await.unwrap();
    // The chunk is answered before the shutdown begins.
    loop {
        match rx.next().await.unwrap().unwrap() {
            Message::Text(t) if t.contains("\"type\":\"done\"") => break,
            _ => {}
        }
    }
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _) = http(addr, "GET", "/healthz", None, b"").await;
    assert_eq!(status, 503);
    let (status, _) = http(addr, "POST", "/v1/pipelines/speech_vad/run", Some(TOKEN), &std::fs::read(SAMPLE).unwrap()).await;
    assert_eq!(status, 503);
    let (code, reason) = close_of(&mut rx).await;
    assert_eq!((code, reason.as_str()), (1001, "the server is shutting down"));
}
