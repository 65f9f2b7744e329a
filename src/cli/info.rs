//! `remotemedia info FILE...`: what each audio file holds, as a table like `soxi`'s (or JSON),
//! read from the headers; a file that cannot be read gets its error in the table while the
//! others are still described.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::table::Table;
use super::CliError;
use crate::audio_io::{self, FileInfo};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Audio files (any readable format: WAV, FLAC, MP3, Ogg Vorbis, AAC/ALAC in M4A, AIFF, ...).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON document (a list, one object per file) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `hh:mm:ss.ss`, as soxi prints durations.
pub fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0);
    let h = (total / 3600.0).floor();
    let m = ((total - h * 3600.0) / 60.0).floor();
    let s = total - h * 3600.0 - m * 60.0;
    format!("{:02}:{:02}:{:05.2}", h as u64, m as u64, s)
}

/// `1.2 MB`, `512 kB`, `80 B` (powers of 1000, as soxi).
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

fn row(path: &std::path::Path, i: &FileInfo) -> Vec<String> {
    let duration = i.duration_s().map(clock).unwrap_or_else(|| "?".into());
    let bitrate = match i.duration_s() {
        Some(d) if d > 0.0 => format!("{:.0}k", i.file_size as f64 * 8.0 / d / 1000.0),
        _ => "-".into(),
    };
    vec![
        path.display().to_string(),
        format!("{} / {}", i.container, i.codec),
        i.channels.to_string(),
        i.sample_rate.to_string(),
        i.bits.map(|b| format!("{b}-bit")).unwrap_or_else(|| "lossy".into()),
        duration,
        i.frames.map(|f| f.to_string()).unwrap_or_else(|| "?".into()),
        size(i.file_size),
        bitrate,
    ]
}

pub fn run(args: &InfoArgs, out: &mut String) -> Result<(), CliError> {
    let mut table = Table::new(&["file", "format", "channels", "rate", "precision", "duration", "frames", "size", "bit rate"]).right_from(2);
    let mut docs: Vec<Value> = Vec::new();
    let mut failed = Vec::new();
    for path in &args.files {
        match audio_io::info(path) {
            Ok(i) => {
                table.row(row(path, &i));
                let mut doc = i.to_json();
                doc["path"] = json!(path.display().to_string());
                docs.push(doc);
            }
            Err(e) => {
                let message = match e {
                    crate::error::Error::Input(m) => m,
                    other => other.to_string(),
                };
                table.row(vec![path.display().to_string(), format!("error: {message}")]);
                docs.push(json!({"path": path.display().to_string(), "error": message}));
                failed.push(path.display().to_string());
            }
        }
    }
    if args.json {
        let text = serde_json::to_string_pretty(&docs).map_err(|e| CliError::failure(format!("cannot encode JSON: {e}")))?;
        out.push_str(&text);
        out.push('\n');
    } else {
        out.push_str(&table.render());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::usage(format!("{} of {} files could not be read: {}", failed.len(), args.files.len(), failed.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_soxi() {
        assert_eq!(clock(0.0), "00:00:00.00");
        assert_eq!(clock(5.885), "00:00:05.88");
        assert_eq!(clock(3725.5), "01:02:05.50");
        assert_eq!(size(159_000_000), "159.0 MB");
        assert_eq!(size(800), "800 B");
    }
}
