//! The WebSocket protocol of docs/protocol.md (version [`PROTOCOL_VERSION`]): the start message
//! and its checks, PCM frames into audio buffers, and outputs into messages (JSON text for
//! segments, probabilities and values; binary frames with a JSON header for arrays).
//!
//! Binary output frame: `u32` little-endian header length, the header (UTF-8 JSON), then the
//! data (little-endian samples or f32 values). One frame per audio output, per clip and per
//! features output of a chunk.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::config::{CloseKind, Limits, PROTOCOL_VERSION};
use crate::data::{AudioBuffer, Payload, Samples};

/// How the client's PCM samples are laid out: interleaved, little-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcmFormat {
    S16le,
    F32le,
}

impl PcmFormat {
    pub fn bytes(self) -> usize {
        match self {
            PcmFormat::S16le => 2,
            PcmFormat::F32le => 4,
        }
    }
}

/// Per-session options of the start message.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Send audio and clip outputs back as binary frames (default true); false sends only their
    /// JSON description.
    #[serde(default = "yes")]
    pub send_audio: bool,
    /// Also send the audio a VAD result carries (its input passed on), as a `vad_audio` binary
    /// frame after the `vad` message (default false; the Python client asks for it, so that its
    /// `VadResult`s equal a local session's).
    #[serde(default)]
    pub vad_audio: bool,
}

fn yes() -> bool {
    true
}

impl Default for Options {
    fn default() -> Options {
        Options { send_audio: true, vad_audio: false }
    }
}

/// The first message of a session.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub protocol: Option<u32>,
    pub pipeline: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub format: PcmFormat,
    #[serde(default)]
    pub options: Options,
}

/// A refusal: the close code's kind and a reason for the client.
pub type Refusal = (CloseKind, String);

/// Parses and checks a start message against the limits (the pipeline name is checked by the
/// caller, which knows what is served).
pub fn parse_start(text: &str, limits: &Limits) -> Result<Start, Refusal> {
    let start: Start = serde_json::from_str(text).map_err(|e| (CloseKind::BadMessage, format!("malformed start message: {e}")))?;
    if start.kind != "start" {
        return Err((CloseKind::BadMessage, format!("the first message must have \"type\": \"start\", not '{}'", start.kind)));
    }
    if let Some(v) = start.protocol {
        if v != PROTOCOL_VERSION {
            return Err((CloseKind::BadMessage, format!("protocol version {v} is not served (this server speaks {PROTOCOL_VERSION})")));
        }
    }
    if start.sample_rate == 0 || start.sample_rate > limits.max_sample_rate {
        return Err((CloseKind::Unsupported, format!("sample_rate {} is outside 1..={}", start.sample_rate, limits.max_sample_rate)));
    }
    if start.channels == 0 || start.channels > limits.max_channels {
        return Err((CloseKind::Unsupported, format!("channels {} is outside 1..={}", start.channels, limits.max_channels)));
    }
    Ok(start)
}

/// A message after the start: only `{"type": "close"}` is defined.
pub fn is_close_message(text: &str) -> Result<(), Refusal> {
    let v: Value = serde_json::from_str(text).map_err(|e| (CloseKind::BadMessage, format!("malformed message: {e}")))?;
    match v.get("type").and_then(Value::as_str) {
        Some("close") => Ok(()),
        Some("start") => Err((CloseKind::BadMessage, "the session has already started".into())),
        other => Err((CloseKind::BadMessage, format!("unknown message type {other:?}: expected \"close\""))),
    }
}

/// One binary PCM frame as an audio buffer.
pub fn decode_pcm(bytes: &[u8], start: &Start) -> Result<AudioBuffer, Refusal> {
    let frame = start.format.bytes() * start.channels as usize;
    if bytes.is_empty() || bytes.len() % frame != 0 {
        return Err((
            CloseKind::BadMessage,
            format!("a PCM frame of {} bytes is not a whole, non-zero number of {}-byte sample frames", bytes.len(), frame),
        ));
    }
    let samples = match start.format {
        PcmFormat::S16le => Samples::I16(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()),
        PcmFormat::F32le => {
            let v: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err((CloseKind::BadMessage, format!("sample {i} of the frame is not finite")));
            }
            Samples::F32(v.into())
        }
    };
    AudioBuffer::new(samples, start.sample_rate, start.channels).map_err(|e| (CloseKind::BadMessage, e))
}

/// A message to send: text (JSON) or binary.
pub enum Out {
    Text(String),
    Binary(Vec<u8>),
}

/// The content type of `POST /v1/pipelines/NAME/run?outputs=messages`.
pub const MESSAGES_CONTENT_TYPE: &str = "application/vnd.remotemedia.messages";

/// Messages as one HTTP body: per message a `u32` little-endian length, a kind byte (1: text,
/// 2: binary, as the WebSocket opcodes) and the message's bytes.
pub fn message_records(msgs: &[Out]) -> Vec<u8> {
    let mut v = Vec::with_capacity(msgs.iter().map(|m| 5 + match m { Out::Text(t) => t.len(), Out::Binary(b) => b.len() }).sum());
    for m in msgs {
        let (kind, bytes) = match m {
            Out::Text(t) => (1u8, t.as_bytes()),
            Out::Binary(b) => (2u8, b.as_slice()),
        };
        v.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        v.push(kind);
        v.extend_from_slice(bytes);
    }
    v
}

/// The messages for one chunk's outputs (`chunk`: its index; the close's outputs carry the number
/// of chunks pushed), each output node in the pipeline's output order.
pub fn encode_outputs(chunk: u64, outputs: &[(String, Payload)], options: &Options, out: &mut Vec<Out>) {
    for (id, p) in outputs {
        encode_payload(chunk, id, None, p, options, out);
    }
}

fn header(kind: &str, chunk: u64, node: &str, key: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!(kind));
    m.insert("chunk".into(), json!(chunk));
    m.insert("node".into(), json!(node));
    if let Some(k) = key {
        m.insert("key".into(), json!(k));
    }
    m
}

fn text(m: Map<String, Value>) -> Out {
    Out::Text(Value::Object(m).to_string())
}

/// A binary frame: header length, header, data.
pub fn binary(head: &Map<String, Value>, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(head).unwrap_or_default();
    let mut v = Vec::with_capacity(4 + h.len() + data.len());
    v.extend_from_slice(&(h.len() as u32).to_le_bytes());
    v.extend_from_slice(&h);
    v.extend_from_slice(data);
    v
}

/// Splits a binary output frame into its header and data.
pub fn split_binary(frame: &[u8]) -> Option<(Value, &[u8])> {
    let n = u32::from_le_bytes(frame.get(..4)?.try_into().ok()?) as usize;
    let head = serde_json::from_slice(frame.get(4..4 + n)?).ok()?;
    Some((head, &frame[4 + n..]))
}

fn audio_fields(m: &mut Map<String, Value>, a: &AudioBuffer) {
    m.insert("sample_rate".into(), json!(a.sample_rate));
    m.insert("channels".into(), json!(a.channels));
    m.insert("format".into(), json!(sample_format(&a.samples)));
    m.insert("frames".into(), json!(a.frames()));
}

/// The wire name of a buffer's samples.
pub fn sample_format(s: &Samples) -> &'static str {
    match s {
        Samples::F32(_) => "f32le",
        Samples::I16(_) => "s16le",
        Samples::I32(_) => "s32le",
    }
}

/// The buffer's samples as little-endian bytes.
pub fn sample_bytes(s: &Samples) -> Vec<u8> {
    match s {
        Samples::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Samples::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Samples::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn encode_payload(chunk: u64, node: &str, key: Option<&str>, p: &Payload, options: &Options, out: &mut Vec<Out>) {
    match p {
        Payload::Audio(a) => {
            let mut m = header("audio", chunk, node, key);
            audio_fields(&mut m, a);
            if options.send_audio {
                out.push(Out::Binary(binary(&m, &sample_bytes(&a.samples))));
            } else {
                out.push(text(m));
            }
        }
        Payload::Vad(v) => {
            // The audio a VAD result carries is its input passed on: not sent back (declare the
            // node before it as an output to get it).
            let mut m = header("vad", chunk, node, key);
            m.insert("segments".into(), crate::data::segments_json(&v.segments));
            m.insert("frames".into(), json!(v.frames));
            m.insert("probabilities".into(), json!(v.probabilities));
            m.insert("frame_duration_ms".into(), json!(v.frame_duration_ms));
            m.insert("audio_frames".into(), json!(v.audio.frames()));
            out.push(text(m));
            if options.vad_audio {
                let mut h = header("vad_audio", chunk, node, key);
                audio_fields(&mut h, &v.audio);
                out.push(Out::Binary(binary(&h, &sample_bytes(&v.audio.samples))));
            }
        }
        Payload::Clips(clips) => {
            // Announced first, so that a chunk with no clips still says so.
            let mut m = header("clips", chunk, node, key);
            m.insert("count".into(), json!(clips.len()));
            out.push(text(m));
            for (i, c) in clips.iter().enumerate() {
                let mut m = header("clip", chunk, node, key);
                m.insert("index".into(), json!(i));
                m.insert("count".into(), json!(clips.len()));
                m.insert("start_frame".into(), json!(c.start_frame));
                m.insert("start_s".into(), json!(c.start_s()));
                m.insert("end_s".into(), json!(c.end_s()));
                audio_fields(&mut m, &c.audio);
                if options.send_audio {
                    out.push(Out::Binary(binary(&m, &sample_bytes(&c.audio.samples))));
                } else {
                    out.push(text(m));
                }
            }
        }
        Payload::Features(f) => {
            let mut m = header("features", chunk, node, key);
            m.insert("frames".into(), json!(f.frames()));
            m.insert("bins".into(), json!(f.bins));
            m.insert("frame_rate".into(), json!(f.frame_rate));
            let data: Vec<u8> = f.values.iter().flat_map(|x| x.to_le_bytes()).collect();
            out.push(Out::Binary(binary(&m, &data)));
        }
        Payload::Json(j) => {
            let mut m = header("json", chunk, node, key);
            m.insert("value".into(), j.clone());
            out.push(text(m));
        }
        Payload::Map(entries) => {
            for (k, v) in entries {
                let path = match key {
                    Some(prefix) => format!("{prefix}.{k}"),
                    None => k.clone(),
                };
                encode_payload(chunk, node, Some(&path), v, options, out);
            }
        }
    }
}

/// `{"type": "ready", ...}`: the session is open.
pub fn ready(session: u64, pipeline: &str, outputs: &[String]) -> Out {
    Out::Text(json!({"type": "ready", "protocol": PROTOCOL_VERSION, "session": session, "pipeline": pipeline, "outputs": outputs}).to_string())
}

/// `{"type": "done", "chunk": k}`: every output of chunk `k` has been sent.
pub fn done(chunk: u64) -> Out {
    Out::Text(json!({"type": "done", "chunk": chunk}).to_string())
}

/// `{"type": "error", ...}`, sent before a close frame that is not 1000.
pub fn error(kind: CloseKind, reason: &str, last_chunk: Option<u64>) -> Out {
    Out::Text(json!({"type": "error", "code": kind.code(), "reason": reason, "last_chunk_processed": last_chunk}).to_string())
}

/// The reason of a close frame: at most 123 bytes (RFC 6455), cut on a character boundary.
pub fn close_reason(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_messages_are_checked() {
        let l = Limits::default();
        let ok = r#"{"type":"start","pipeline":"p","sample_rate":16000,"channels":1,"format":"s16le"}"#;
        let s = parse_start(ok, &l).unwrap();
        assert_eq!((s.sample_rate, s.channels, s.format, s.options.send_audio), (16000, 1, PcmFormat::S16le, true));
        let kind = |t: &str| parse_start(t, &l).unwrap_err().0;
        assert_eq!(kind("not json"), CloseKind::BadMessage);
        assert_eq!(kind(r#"{"type":"start","pipeline":"p","sample_rate":16000,"channels":1,"format":"u8"}"#), CloseKind::BadMessage);
        assert_eq!(kind(r#"{"type":"start","pipeline":"p","sample_rate":16000,"channels":1,"format":"s16le","extra":1}"#), CloseKind::BadMessage);
        assert_eq!(kind(r#"{"type":"start","pipeline":"p","sample_rate":400000,"channels":1,"format":"s16le"}"#), CloseKind::Unsupported);
        assert_eq!(kind(r#"{"type":"start","pipeline":"p","sample_rate":16000,"channels":9,"format":"f32le"}"#), CloseKind::Unsupported);
        assert_eq!(kind(r#"{"type":"start","protocol":2,"pipeline":"p","sample_rate":16000,"channels":1,"format":"f32le"}"#), CloseKind::BadMessage);
    }

    #[test]
    fn pcm_frames_decode_little_endian() {
        let l = Limits::default();
        let s = parse_start(r#"{"type":"start","pipeline":"p","sample_rate":8000,"channels":2,"format":"s16le"}"#, &l).unwrap();
        let a = decode_pcm(&[1, 0, 0xff, 0xff, 0, 0x80, 0xff, 0x7f], &s).unwrap();
        assert_eq!(a.samples, Samples::I16(vec![1, -1, i16::MIN, i16::MAX].into()));
        assert_eq!(a.frames(), 2);
        assert!(decode_pcm(&[1, 0, 2], &s).is_err());
        assert!(decode_pcm(&[], &s).is_err());
        let f = parse_start(r#"{"type":"start","pipeline":"p","sample_rate":8000,"channels":1,"format":"f32le"}"#, &l).unwrap();
        assert!(decode_pcm(&f32::NAN.to_le_bytes(), &f).is_err());
        let frame = binary(&header("audio", 3, "n", None), &[9, 8]);
        let (h, data) = split_binary(&frame).unwrap();
        assert_eq!((h["chunk"].as_u64(), data), (Some(3), &[9u8, 8][..]));
        assert_eq!(close_reason(&"é".repeat(100)).len(), 122);
    }
}
