//! Where `batch` writes, kept apart from the batch loop so that the loop can change without
//! touching the files: `NAME.NODE.EXT` for each item and sink node (the node id made safe for a
//! file name), planned and checked before anything runs: no two items may write the same name
//! (ignoring case, as macOS and Windows file systems do: `x.wav` and `x.WAV`, or `x.wav` and
//! `x.flac`, both write `x.gain.wav`), the output folder may not be the input folder (outputs
//! would overwrite inputs and be read as inputs next time), and no name can leave `--out`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::report::payload_json;
use super::CliError;
use crate::audio_io::{self, OutFormat, OutSpec};
use crate::data::Payload;
use crate::error::Error;
use crate::file_safety::{self, Planned};

/// Writes each item's outputs into the output folder: audio as `STEM.NODE.wav` (or `.flac`),
/// everything else as `STEM.NODE.json`, each file renamed into place only when complete.
pub struct ItemWriter {
    pub dir: PathBuf,
    pub spec: OutSpec,
}

impl ItemWriter {
    /// Writes one item's outputs; the first failure is the item's error (`stage: write`).
    pub fn write_item(&self, input: &Path, outputs: &[(String, Payload)]) -> Result<Vec<Value>, Value> {
        let mut written = Vec::new();
        for (node, payload) in outputs {
            let result = match payload {
                Payload::Audio(a) => {
                    let ext = self.spec.format.unwrap_or(OutFormat::Wav).extension();
                    path(&self.dir, input, node, ext).and_then(|(name, p)| audio_io::write(&p, a, self.spec).map(|()| name))
                }
                other => path(&self.dir, input, node, "json").and_then(|(name, p)| {
                    let text = serde_json::to_string_pretty(&payload_json(other)).unwrap_or_else(|_| "null".into());
                    file_safety::write_atomic(&p, (text + "\n").as_bytes()).map(|()| name)
                }),
            };
            match result {
                Ok(file) => written.push(json!({"node": node, "kind": payload.kind(), "file": file})),
                Err(e) => return Err(json!({"stage": "write", "message": e.to_string(), "node_id": node})),
            }
        }
        Ok(written)
    }
}

/// The name stem an input contributes (its file name without the extension).
pub fn stem(input: &Path) -> String {
    input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "item".into())
}

/// `STEM.NODE.EXT`, with the node id made safe.
pub fn file_name(input: &Path, node: &str, ext: &str) -> String {
    format!("{}.{}.{ext}", stem(input), file_safety::safe_component(node))
}

/// `out_dir/STEM.NODE.EXT`, refusing (it cannot happen after [`file_name`]) a name that leaves it.
pub fn path(out_dir: &Path, input: &Path, node: &str, ext: &str) -> Result<(String, PathBuf), Error> {
    let name = file_name(input, node, ext);
    let p = file_safety::inside(out_dir, &name)?;
    Ok((name, p))
}

/// Refuses an output folder that is the input folder.
pub fn check_folders(input_dir: &Path, out_dir: &Path) -> Result<(), CliError> {
    if file_safety::same_file(input_dir, out_dir) {
        return Err(CliError::usage(format!(
            "--out '{}' is the input folder: outputs would overwrite inputs and be read as inputs by the next run; \
             choose another folder",
            out_dir.display()
        )));
    }
    Ok(())
}

/// Checks every item × sink name for collisions before anything is written. The payload kind
/// (and so the extension) is only known after the run, so names are compared without it.
pub fn check_plan(files: &[PathBuf], sinks: &[String]) -> Result<(), CliError> {
    let plan: Vec<Planned> = files
        .iter()
        .flat_map(|f| {
            let owner = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            sinks.iter().map(move |s| Planned { name: file_name(f, s, "*"), owner: owner.clone() })
        })
        .collect();
    let found = file_safety::collisions(&plan);
    if found.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = found.iter().take(10).map(|(a, b, name)| format!("  {a} and {b} would both write {name}")).collect();
    let more = if found.len() > 10 { format!("\n  ... and {} more", found.len() - 10) } else { String::new() };
    Err(CliError::usage(format!(
        "output names collide (compared ignoring case; nothing was written):\n{}{more}\nrename the inputs so their names differ by more than case or extension",
        shown.join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_collisions_are_refused() {
        assert_eq!(file_name(Path::new("in/a.wav"), "../../x", "wav"), "a._._.._x.wav");
        let files = [PathBuf::from("a.wav"), PathBuf::from("b.flac"), PathBuf::from("A.WAV")];
        let err = check_plan(&files, &["gain".into()]).expect_err("collision accepted");
        assert!(err.message.contains("a.wav and A.WAV would both write a.gain.*"), "{}", err.message);
        assert_eq!(err.code, 2);
        // Two sink ids that sanitise to the same part collide too.
        let err = check_plan(&[PathBuf::from("a.wav")], &["x/y".into(), "x_y".into()]).expect_err("collision accepted");
        assert!(err.message.contains("a.x_y.*"), "{}", err.message);
        assert!(check_plan(&[PathBuf::from("a.wav"), PathBuf::from("b.wav")], &["gain".into(), "vad".into()]).is_ok());
    }
}
