//! `remotemedia run --stream [FILE]`: a file of any length decoded chunk by chunk and pushed
//! through a streaming session, with `--output` written as the chunks come, so memory stays the
//! same for a minute or two hours. What is kept per sink is a summary (frames, segments), never
//! the audio.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::report::{payload_json, plural};
use super::run::RunArgs;
use super::CliError;
use crate::audio_io::{self, AudioWriter, FileInfo};
use crate::data::{AudioBuffer, Payload};

/// The audio a payload carries (a VAD result's audio, the first audio inside a map), as `--output`
/// takes it.
fn carried_audio(p: &Payload) -> Option<&AudioBuffer> {
    match p {
        Payload::Map(m) => m.values().find_map(carried_audio),
        other => other.audio(),
    }
}

/// Segments printed; the `--json` document has all of them.
const SHOWN_SEGMENTS: usize = 20;

/// What one sink's outputs over the stream add up to.
#[derive(Default)]
struct Summary {
    audio_frames: u64,
    audio: Option<(u32, u16, &'static str)>,
    segments: Vec<(f64, f64)>,
    vad_frames: u64,
    speech_frames: u64,
    frame_ms: u32,
    vad: bool,
    last: Option<Value>,
}

impl Summary {
    fn add(&mut self, p: &Payload) {
        match p {
            Payload::Audio(a) => {
                self.audio_frames += a.frames() as u64;
                self.audio = Some((a.sample_rate, a.channels, a.samples.format().name()));
            }
            Payload::Vad(v) => {
                self.vad = true;
                self.segments.extend_from_slice(&v.segments);
                self.vad_frames += v.frames.len() as u64;
                self.speech_frames += v.frames.iter().filter(|&&f| f).count() as u64;
                self.frame_ms = v.frame_duration_ms;
                self.audio_frames += v.audio.frames() as u64;
                self.audio = Some((v.audio.sample_rate, v.audio.channels, v.audio.samples.format().name()));
            }
            other => self.last = Some(payload_json(other)),
        }
    }

    fn json(&self) -> Value {
        let audio = self.audio.map(|(rate, channels, format)| {
            json!({"sample_rate": rate, "channels": channels, "format": format, "frames": self.audio_frames,
                   "duration_s": self.audio_frames as f64 / rate as f64})
        });
        if self.vad {
            json!({"kind": "vad result", "segments": self.segments, "frames": self.vad_frames,
                   "speech_frames": self.speech_frames, "frame_duration_ms": self.frame_ms, "audio": audio})
        } else if let Some(a) = audio {
            json!({"kind": "audio", "audio": a})
        } else {
            json!({"kind": "json", "value": self.last})
        }
    }

    fn describe(&self, out: &mut String, id: &str) {
        let audio = |s: &Summary| match s.audio {
            Some((rate, ch, fmt)) => format!(
                "{} frames ({:.3} s), {rate} Hz, {}, {fmt}",
                s.audio_frames,
                s.audio_frames as f64 / rate as f64,
                plural(ch as usize, "channel")
            ),
            None => "no audio".into(),
        };
        if self.vad {
            let fraction = if self.vad_frames == 0 { 0.0 } else { self.speech_frames as f64 / self.vad_frames as f64 };
            let _ = writeln!(
                out,
                "  {id}: VAD result, {}, speech in {:.1}% of {} frames of {} ms",
                plural(self.segments.len(), "speech segment"),
                fraction * 100.0,
                self.vad_frames,
                self.frame_ms
            );
            for (i, (s, e)) in self.segments.iter().take(SHOWN_SEGMENTS).enumerate() {
                let _ = writeln!(out, "    {:>2}. {s:>7.2} – {e:>7.2} s  ({:.2} s)", i + 1, e - s);
            }
            if self.segments.len() > SHOWN_SEGMENTS {
                let _ = writeln!(out, "    ... {} more (all of them in --json)", self.segments.len() - SHOWN_SEGMENTS);
            }
            let _ = writeln!(out, "    audio: {}", audio(self));
        } else if self.audio.is_some() {
            let _ = writeln!(out, "  {id}: audio, {}", audio(self));
        } else {
            let _ = writeln!(out, "  {id}: {}", self.last.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "(nothing)".into()));
        }
    }
}

fn describe_info(path: &Path, i: &FileInfo) -> String {
    format!(
        "input    {} ({} / {}{})\n         {} Hz, {}, {}, streamed\n",
        path.display(),
        i.container,
        i.codec,
        i.bits.map(|b| format!(", {b}-bit")).unwrap_or_default(),
        i.sample_rate,
        plural(i.channels as usize, "channel"),
        match i.duration_s() {
            Some(d) => format!("{d:.3} s ({} frames)", i.frames.unwrap_or(0)),
            None => "length not in the header".into(),
        }
    )
}

/// The file `--stream FILE` or `--input FILE` names (the bundled sample when neither does).
fn input_path(args: &RunArgs) -> Result<(PathBuf, bool), CliError> {
    match (args.stream.clone().flatten(), args.input.clone()) {
        (Some(a), Some(b)) if a != b => {
            Err(CliError::usage(format!("--stream '{}' and --input '{}' name different files; give one", a.display(), b.display())))
        }
        (Some(p), _) | (None, Some(p)) => Ok((p, false)),
        (None, None) => Ok((super::find_sample(&args.manifest)?, true)),
    }
}

pub fn run(args: &RunArgs, out: &mut String) -> Result<(), CliError> {
    let mut graph = super::load_graph(&args.manifest)?;
    graph.config.enable_metrics = true;
    if let Some(w) = args.workers {
        graph.config.workers = w;
    }
    let (path, bundled) = input_path(args)?;
    super::run::check_outputs(args, &path)?;
    let spec = args.encode.spec()?;
    let mut reader = audio_io::open(&path).map_err(super::input_error)?;
    let info = reader.info().clone();
    let workers = graph.config.workers;
    let _ = writeln!(
        out,
        "manifest {} ({}, {}, {})",
        args.manifest.display(),
        plural(graph.nodes.len(), "node"),
        plural(graph.edges.len(), "edge"),
        plural(workers, "worker")
    );
    out.push_str(&describe_info(&path, &info));
    if bundled {
        let _ = writeln!(out, "         (bundled sample)");
    }
    let pool = crate::runtime::WorkerPool::shared(workers).map_err(CliError::from_run)?;
    let pipeline = pool.install(graph).map_err(|e| CliError::failure(format!("cannot install the pipeline: {e}")))?;
    let chunk = ((info.sample_rate as u64 * args.chunk_ms as u64) / 1000).max(1) as usize;

    let mut session = pipeline.session();
    let mut order: Vec<String> = Vec::new();
    let mut sums: std::collections::HashMap<String, Summary> = std::collections::HashMap::new();
    let mut target: Option<String> = None;
    let mut writer: Option<AudioWriter> = None;
    let mut chunks = 0u64;
    let started = Instant::now();
    let mut absorb = |outputs: Vec<(String, Payload)>, out_path: Option<&PathBuf>| -> Result<(), CliError> {
        if let Some(path) = out_path {
            if target.is_none() {
                target = outputs.iter().find(|(_, p)| carried_audio(p).is_some()).map(|(id, _)| id.clone());
            }
            if let Some(t) = &target {
                if let Some(a) = outputs.iter().find(|(id, _)| id == t).and_then(|(_, p)| carried_audio(p)) {
                    if writer.is_none() {
                        writer = Some(AudioWriter::create(path, spec, a.sample_rate, a.channels, a.samples.format()).map_err(|e| CliError::failure(super::plain(&e)))?);
                    }
                    if let Some(w) = writer.as_mut() {
                        w.write(a).map_err(|e| CliError::failure(super::plain(&e)))?;
                    }
                }
            }
        }
        for (id, p) in outputs {
            if !sums.contains_key(&id) {
                order.push(id.clone());
            }
            sums.entry(id).or_default().add(&p);
        }
        Ok(())
    };
    while let Some(piece) = reader.read_frames(chunk).map_err(super::input_error)? {
        let outputs = session
            .push(Payload::Audio(piece))
            .map_err(|e| CliError::from_run(e).with_prefix(&format!("chunk {chunks}")))?;
        chunks += 1;
        absorb(outputs.outputs, args.output.as_ref())?;
    }
    let flushed = session.close().map_err(|e| CliError::from_run(e).with_prefix("close"))?;
    absorb(flushed.outputs, args.output.as_ref())?;
    let wall = started.elapsed().as_secs_f64();
    let written = match writer.take() {
        Some(w) => {
            let frames = w.frames();
            w.finish().map_err(|e| CliError::failure(super::plain(&e)))?;
            Some(frames)
        }
        None => None,
    };

    let _ = writeln!(out, "\noutputs (whole stream)");
    if order.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for id in &order {
        sums[id].describe(out, id);
    }
    let seconds = reader.info().frames.map(|f| f as f64 / info.sample_rate as f64);
    let _ = writeln!(
        out,
        "\nstreamed {chunks} chunks of {} ms in {wall:.3} s{}",
        args.chunk_ms,
        seconds.map(|s| format!(" ({:.1}x real time)", s / wall.max(1e-9))).unwrap_or_default()
    );
    if let (Some(path), Some(frames)) = (&args.output, written) {
        let _ = writeln!(out, "wrote {} ({frames} frames of output '{}')", path.display(), target.as_deref().unwrap_or(""));
    } else if let Some(path) = &args.output {
        return Err(CliError::failure(format!("--output {}: no output carries audio", path.display())));
    }
    let metrics = pipeline.metrics_json().map_err(CliError::from_run)?;
    if let Some(json_path) = &args.json {
        let outs: serde_json::Map<String, Value> = order.iter().map(|id| (id.clone(), sums[id].json())).collect();
        let mut input = info.to_json();
        input["path"] = json!(path.display().to_string());
        input["bundled_sample"] = json!(bundled);
        let doc = json!({"input": input, "chunk_ms": args.chunk_ms, "chunks": chunks, "wall_s": wall, "outputs": outs, "metrics": metrics});
        super::write_json(json_path, &doc, out)?;
    }
    super::write_prometheus(args.prometheus.as_ref(), &metrics, out)
}
