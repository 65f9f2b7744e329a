//! Where `batch` writes (what it writes is `outputs.rs`): `NAME.NODE.EXT` for each item and
//! output node, and `NODE/NAME.0001.EXT …` for clips (the node id made safe for a file name),
//! planned and checked before anything runs: no two items may write the same name (ignoring case, as macOS and Windows file systems do: `x.wav` and `x.WAV`, or `x.wav` and
//! `x.flac`, both write `x.gain.wav`), the output folder may not be the input folder (outputs
//! would overwrite inputs and be read as inputs next time), and no name can leave `--out`.

use std::path::{Path, PathBuf};

use super::CliError;
use crate::error::Error;
use crate::file_safety::{self, Planned};

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

/// A clips output's folder, `out_dir/NODE` (the node id made safe), as `(NODE, path)`.
pub fn clip_dir(out_dir: &Path, node: &str) -> Result<(String, PathBuf), Error> {
    let name = file_safety::safe_component(node);
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

/// Checks every item × output name for collisions before anything is written: `STEM.NODE.*`,
/// and `NODE/STEM.*` for the clips an output may turn out to hold. The payload kind (and so the
/// extension, and whether there are clips) is only known after the run, so names are compared
/// without the extension.
pub fn check_plan(files: &[PathBuf], outputs: &[String]) -> Result<(), CliError> {
    let plan: Vec<Planned> = files
        .iter()
        .flat_map(|f| {
            let owner = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            outputs.iter().flat_map(move |s| {
                let clips = format!("{}/{}.*", file_safety::safe_component(s), stem(f));
                [Planned { name: file_name(f, s, "*"), owner: owner.clone() }, Planned { name: clips, owner: owner.clone() }]
            })
        })
        .collect();
    let mut found = file_safety::collisions(&plan);
    // A pair whose file names collide has colliding clip names too: name it once.
    let mut pairs = std::collections::HashSet::new();
    found.retain(|(a, b, _)| pairs.insert((a.clone(), b.clone())));
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
