//! What `remotemedia batch` writes for one item's outputs, and the batch's JSONL manifests of
//! clips: kept apart from the batch loop so that the loop can change without touching the files.
//!
//! Per item and output (the manifest's declared `outputs`, else its sinks): audio as
//! `NAME.NODE.wav`, features as `NAME.NODE.npy`, clips as `NODE/NAME.0001.wav …` (numbered from
//! 1 in time order), anything else as `NAME.NODE.json`. Per clips output, `NODE/metadata.jsonl` lists every clip of the
//! batch, one JSON object per line, in input order: the layout of a Hugging Face `audiofolder`
//! (`file_name` relative to the manifest), with where each clip lies in its source.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::report::{kind_name, payload_json};
use super::CliError;
use crate::data::{Clip, Payload};

/// The JSONL manifest written into each clips output's folder.
pub const CLIP_MANIFEST: &str = "metadata.jsonl";

/// A node id as part of a file name: characters other than letters, digits, `.`, `_` and `-`
/// become `_` (an id may hold `/`), and an id that would name `.` or `..` becomes `_`.
pub fn file_part(id: &str) -> String {
    let s: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "_".into()
    } else {
        s
    }
}

/// Writes one item's outputs into `out_dir`; returns their entries for `report.json` (a clips
/// output's entry holds its manifest rows), or the first write error as the item's error.
pub fn write_item(input: &Path, out_dir: &Path, outputs: &[(String, Payload)]) -> Result<Vec<Value>, Value> {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "item".into());
    let source = input.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| stem.clone());
    let mut written = Vec::new();
    for (node, payload) in outputs {
        let part = file_part(node);
        let fail = |message: String| json!({"stage": "write", "message": message, "node_id": node});
        match payload {
            Payload::Audio(a) => {
                let file = format!("{stem}.{part}.wav");
                crate::audio_io::write_wav(out_dir.join(&file), a).map_err(|e| fail(e.to_string()))?;
                written.push(json!({"node": node, "kind": kind_name(payload), "file": file}));
            }
            Payload::Features(f) => {
                let file = format!("{stem}.{part}.npy");
                crate::npy::write_features(&out_dir.join(&file), f).map_err(fail)?;
                written.push(json!({"node": node, "kind": kind_name(payload), "file": file}));
            }
            Payload::Clips(clips) => {
                let dir = out_dir.join(&part);
                std::fs::create_dir_all(&dir).map_err(|e| fail(format!("cannot create '{}': {e}", dir.display())))?;
                let mut rows = Vec::with_capacity(clips.len());
                for (i, clip) in clips.iter().enumerate() {
                    let file = format!("{stem}.{:04}.wav", i + 1);
                    crate::audio_io::write_wav(dir.join(&file), &clip.audio).map_err(|e| fail(e.to_string()))?;
                    rows.push(clip_row(&file, &source, i + 1, clip));
                }
                written.push(json!({"node": node, "kind": kind_name(payload), "dir": part, "clips": rows}));
            }
            other => {
                let file = format!("{stem}.{part}.json");
                let path = out_dir.join(&file);
                let text = serde_json::to_string_pretty(&payload_json(other)).map_err(|e| fail(e.to_string()))?;
                std::fs::write(&path, text + "\n").map_err(|e| fail(format!("cannot write '{}': {e}", path.display())))?;
                written.push(json!({"node": node, "kind": kind_name(payload), "file": file}));
            }
        }
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
        write_whole(&path, &text)?;
        let _ = writeln!(out, "wrote {} ({})", path.display(), super::report::plural(count, "clip"));
    }
    Ok(())
}

/// Writes a file under a temporary name and renames it into place, so that no reader ever sees
/// half of it and a failure leaves no partial file.
fn write_whole(path: &Path, text: &str) -> Result<(), CliError> {
    let mut tmp = PathBuf::from(path);
    tmp.set_extension("jsonl.partial");
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::failure(format!("cannot write '{}': {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_become_safe_file_name_parts() {
        assert_eq!(file_part("resample_16k"), "resample_16k");
        assert_eq!(file_part("a/b c"), "a_b_c");
        assert_eq!(file_part(".."), "_");
        assert_eq!(file_part(""), "_");
    }
}
