//! What `remotemedia batch` writes for one item's outputs, and the batch's JSONL manifests of
//! clips: kept apart from the batch loop so that the loop can change without touching the files.
//!
//! Per item and output (the manifest's declared `outputs`, else its sinks): audio as
//! `NAME.NODE.wav` (`.flac` with `--out-format flac`), features as `NAME.NODE.npy`, clips as
//! `NODE/NAME.0001.wav …` (numbered from 1 in time order), anything else as `NAME.NODE.json`;
//! where is `output_plan.rs`. Per clips output, `NODE/metadata.jsonl` lists every clip of the
//! batch, one JSON object per line, in input order: the layout of a Hugging Face `audiofolder`
//! (`file_name` relative to the manifest), with where each clip lies in its source.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::output_plan;
use super::report::{kind_name, payload_json};
use super::CliError;
use crate::audio_io::{self, OutFormat, OutSpec};
use crate::data::{Clip, Payload};
use crate::error::Error;
use crate::file_safety;

/// The JSONL manifest written into each clips output's folder.
pub const CLIP_MANIFEST: &str = "metadata.jsonl";

/// Writes one item's outputs into `out_dir` (audio and clips in `spec`'s format, WAV unless
/// `--out-format` says otherwise), each file under a temporary name renamed into place only when
/// complete; returns their entries for `report.json` (a clips output's entry holds its manifest
/// rows), or the first write error as the item's error. The names were checked for collisions
/// by [`output_plan::check_plan`] before the run.
pub fn write_item(input: &Path, out_dir: &Path, spec: OutSpec, outputs: &[(String, Payload)]) -> Result<Vec<Value>, Value> {
    let stem = output_plan::stem(input);
    let source = input.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| stem.clone());
    let audio_ext = spec.format.unwrap_or(OutFormat::Wav).extension();
    let mut written = Vec::new();
    for (node, payload) in outputs {
        let fail = |e: Error| json!({"stage": "write", "message": super::plain(&e), "node_id": node});
        let (name, path) = match payload {
            Payload::Audio(_) => output_plan::path(out_dir, input, node, audio_ext),
            Payload::Features(_) => output_plan::path(out_dir, input, node, "npy"),
            Payload::Clips(_) => output_plan::clip_dir(out_dir, node),
            _ => output_plan::path(out_dir, input, node, "json"),
        }
        .map_err(fail)?;
        match payload {
            Payload::Audio(a) => audio_io::write(&path, a, spec).map_err(fail)?,
            Payload::Features(f) => file_safety::write_atomic(&path, &crate::npy::features_npy(f)).map_err(fail)?,
            Payload::Clips(clips) => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| fail(Error::Input(format!("cannot create '{}': {e}", path.display()))))?;
                let mut rows = Vec::with_capacity(clips.len());
                for (i, clip) in clips.iter().enumerate() {
                    let file = format!("{stem}.{:04}.{audio_ext}", i + 1);
                    let clip_path = file_safety::inside(&path, &file).map_err(fail)?;
                    audio_io::write(&clip_path, &clip.audio, spec).map_err(fail)?;
                    rows.push(clip_row(&file, &source, i + 1, clip));
                }
                written.push(json!({"node": node, "kind": kind_name(payload), "dir": name, "clips": rows}));
                continue;
            }
            other => {
                let text = serde_json::to_string_pretty(&payload_json(other)).unwrap_or_else(|_| "null".into());
                file_safety::write_atomic(&path, (text + "\n").as_bytes()).map_err(fail)?;
            }
        }
        written.push(json!({"node": node, "kind": kind_name(payload), "file": name}));
    }
    Ok(written)
}

/// One line of a clips manifest.
fn clip_row(file: &str, source: &str, segment: usize, clip: &Clip) -> Value {
    json!({
        "file_name": file,
        "source": source,
        "segment": segment,
        "start": clip.start_s(),
        "end": clip.end_s(),
        "duration": clip.audio.duration_s(),
        "start_frame": clip.start_frame,
        "frames": clip.audio.frames(),
        "sample_rate": clip.audio.sample_rate,
        "channels": clip.audio.channels,
    })
}

/// Writes `NODE/metadata.jsonl` for every clips output, from the items' `report.json` entries
/// (`items`: the successful items' output lists, in input order); each file is written whole
/// under a temporary name, then renamed. Says what it wrote in `out`.
pub fn write_clip_manifests<'a>(out_dir: &Path, items: impl Iterator<Item = &'a Vec<Value>>, out: &mut String) -> Result<(), CliError> {
    // (folder, text, clips) per clips output, in the order they first appear.
    let mut manifests: Vec<(String, String, usize)> = Vec::new();
    for entry in items.flatten().filter(|e| e["kind"] == "clips") {
        let dir = entry["dir"].as_str().unwrap_or("_").to_string();
        let pos = match manifests.iter().position(|m| m.0 == dir) {
            Some(pos) => pos,
            None => {
                manifests.push((dir, String::new(), 0));
                manifests.len() - 1
            }
        };
        let m = &mut manifests[pos];
        for row in entry["clips"].as_array().into_iter().flatten() {
            m.1.push_str(&row.to_string());
            m.1.push('\n');
            m.2 += 1;
        }
    }
    for (dir, text, count) in manifests {
        let path = out_dir.join(dir).join(CLIP_MANIFEST);
        file_safety::write_atomic(&path, text.as_bytes()).map_err(|e| CliError::failure(super::plain(&e)))?;
        let _ = writeln!(out, "wrote {} ({})", path.display(), super::report::plural(count, "clip"));
    }
    Ok(())
}
