//! What the CLI says about audio, run outputs and metrics, as text for people and as JSON for
//! `--json`: shared by `run` and `bench`.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::table::{fmt_us, fmt_us_plain, Table};
use super::InputFile;
use crate::data::{AudioBuffer, Clip, Features, Payload, Samples, VadResult};

/// Longest compact JSON shown inline; longer values are cut (the `--json` file has them whole).
const MAX_INLINE_JSON: usize = 160;

/// Segments or clips listed per output unless every one is asked for (`--all`): a 10-minute
/// recording has hundreds.
pub const MAX_LISTED: usize = 20;

/// The largest absolute sample value relative to full scale (f32 as is, integers divided by
/// 2^15 or 2^31); NaN samples are ignored.
pub fn peak(audio: &AudioBuffer) -> f64 {
    match &audio.samples {
        Samples::F32(v) => peak_f32(v) as f64,
        Samples::I16(v) => v.iter().map(|&x| (x as i32).unsigned_abs()).max().unwrap_or(0) as f64 / 32768.0,
        Samples::I32(v) => v.iter().map(|&x| (x as i64).unsigned_abs()).max().unwrap_or(0) as f64 / 2147483648.0,
    }
}

/// The largest `|x|` in `v`, NaN ignored (a comparison with NaN is false). Eight running maxima,
/// one per lane, so the compiler keeps them in one vector register: a fold over `f32::max` is
/// one dependent scalar step per sample (~2 % of a `remotemedia batch` of 1 s items in a
/// profile, for the report's peak of each output).
fn peak_f32(v: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            let a = x.abs();
            *m = if a > *m { a } else { *m };
        }
    }
    tail.iter().map(|x| x.abs()).chain(lanes).fold(0.0f32, |m, a| if a > m { a } else { m })
}

fn fmt_peak(p: f64) -> String {
    if p <= 0.0 {
        "peak 0 (silent)".into()
    } else {
        format!("peak {p:.3} ({:.1} dBFS)", 20.0 * p.log10())
    }
}

pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `shape (frames, channels), 48000 Hz, i16, 5.885 s, peak 0.708 (-3.0 dBFS)`.
pub fn describe_audio(a: &AudioBuffer) -> String {
    format!(
        "shape ({}, {}), {} Hz, {}, {:.3} s, {}",
        a.frames(),
        a.channels,
        a.sample_rate,
        a.samples.format().name(),
        a.duration_s(),
        fmt_peak(peak(a))
    )
}

/// The input, two lines.
pub fn describe_input(input: &InputFile) -> String {
    let a = &input.audio;
    format!(
        "input    {}{}\n         {:.3} s, {} Hz, {}, {}, {} frames, {}\n",
        input.path.display(),
        if input.bundled { " (bundled sample)" } else { "" },
        a.duration_s(),
        a.sample_rate,
        plural(a.channels as usize, "channel"),
        a.samples.format().name(),
        a.frames(),
        fmt_peak(peak(a))
    )
}

/// The input as JSON.
pub fn input_json(input: &InputFile) -> Value {
    let a = &input.audio;
    json!({
        "path": input.path.display().to_string(),
        "bundled_sample": input.bundled,
        "sample_rate": a.sample_rate,
        "channels": a.channels,
        "format": a.samples.format().name(),
        "frames": a.frames(),
        "duration_s": a.duration_s(),
        "peak": peak(a),
    })
}

/// The smallest and largest feature value (0, 0 when there are none).
fn value_range(f: &Features) -> (f32, f32) {
    if f.values.is_empty() {
        return (0.0, 0.0);
    }
    f.values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Number of speech frames and the fraction of frames that are speech.
fn speech_stats(v: &VadResult) -> (usize, f64) {
    let speech = v.frames.iter().filter(|&&f| f).count();
    let fraction = if v.frames.is_empty() { 0.0 } else { speech as f64 / v.frames.len() as f64 };
    (speech, fraction)
}

/// Lines `start – end s (duration)`, numbered from 1, at most [`MAX_LISTED`] unless `all`.
fn list_spans(out: &mut String, pad: &str, spans: impl ExactSizeIterator<Item = (f64, f64)>, what: &str, all: bool) {
    let total = spans.len();
    let shown = if all { total } else { total.min(MAX_LISTED) };
    for (i, (s, e)) in spans.take(shown).enumerate() {
        let _ = writeln!(out, "{pad}  {:>2}. {s:>7.2} – {e:>7.2} s  ({:.2} s)", i + 1, e - s);
    }
    if shown < total {
        let n = total - shown;
        let _ = writeln!(out, "{pad}  … {n} more {what}{} (--all lists every one)", if n == 1 { "" } else { "s" });
    }
}

/// One output, as lines indented by `indent` spaces, starting with `name: `; segment and clip
/// lists are cut at [`MAX_LISTED`] lines unless `all`.
pub fn describe_payload(out: &mut String, name: &str, p: &Payload, indent: usize, all: bool) {
    let pad = " ".repeat(indent);
    match p {
        Payload::Audio(a) => {
            let _ = writeln!(out, "{pad}{name}: audio, {}", describe_audio(a));
        }
        Payload::Vad(v) => {
            let (speech, fraction) = speech_stats(v);
            let _ = writeln!(
                out,
                "{pad}{name}: VAD result, {}, speech in {:.1}% of {} frames of {} ms ({speech} frames)",
                plural(v.segments.len(), "speech segment"),
                fraction * 100.0,
                v.frames.len(),
                v.frame_duration_ms
            );
            list_spans(out, &pad, v.segments.iter().copied(), "segment", all);
            let _ = writeln!(out, "{pad}  audio: {}", describe_audio(&v.audio));
        }
        Payload::Clips(clips) => {
            // fold from +0.0: an f64 `sum` of nothing is -0.0.
            let total = clips.iter().fold(0.0, |acc, c| acc + c.audio.duration_s());
            let shape = match clips.first() {
                Some(c) => format!(
                    ", {} Hz, {}, {}",
                    c.audio.sample_rate,
                    plural(c.audio.channels as usize, "channel"),
                    c.audio.samples.format().name()
                ),
                None => String::new(),
            };
            let _ = writeln!(out, "{pad}{name}: {}, {total:.2} s in all{shape}", plural(clips.len(), "clip"));
            list_spans(out, &pad, clips.iter().map(|c| (c.start_s(), c.end_s())), "clip", all);
        }
        Payload::Features(f) => {
            let (lo, hi) = value_range(f);
            let _ = writeln!(
                out,
                "{pad}{name}: features, {} x {} bins at {} frames/s ({:.2} s), values {lo:.3} to {hi:.3}",
                plural(f.frames(), "frame"),
                f.bins,
                f.frame_rate,
                f.frames() as f64 / f.frame_rate
            );
        }
        Payload::Json(j) => {
            let mut text = j.to_string();
            if text.chars().count() > MAX_INLINE_JSON {
                text = text.chars().take(MAX_INLINE_JSON).collect::<String>() + " …";
            }
            let _ = writeln!(out, "{pad}{name}: json {text}");
        }
        Payload::Map(m) => {
            let keys: Vec<&str> = m.keys().map(String::as_str).collect();
            let _ = writeln!(out, "{pad}{name}: map of {} ({})", plural(m.len(), "entry").replace("entrys", "entries"), keys.join(", "));
            for (k, v) in m {
                describe_payload(out, k, v, indent + 2, all);
            }
        }
    }
}

fn audio_fields(a: &AudioBuffer) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("shape".into(), json!([a.frames(), a.channels]));
    m.insert("channels".into(), json!(a.channels));
    m.insert("sample_rate".into(), json!(a.sample_rate));
    m.insert("format".into(), json!(a.samples.format().name()));
    m.insert("duration_s".into(), json!(a.duration_s()));
    m.insert("peak".into(), json!(peak(a)));
    m
}

/// A payload's kind as the `--json` document and `report.json` name it.
pub fn kind_name(p: &Payload) -> &'static str {
    match p {
        Payload::Audio(_) => "audio",
        Payload::Vad(_) => "vad",
        Payload::Clips(_) => "clips",
        Payload::Features(_) => "features",
        Payload::Json(_) => "json",
        Payload::Map(_) => "map",
    }
}

/// One output as JSON: `kind` plus what describes it (see docs/cli.md).
pub fn payload_json(p: &Payload) -> Value {
    match p {
        Payload::Audio(a) => {
            let mut m = audio_fields(a);
            m.insert("kind".into(), json!("audio"));
            m.insert("frames".into(), json!(a.frames()));
            Value::Object(m)
        }
        Payload::Vad(v) => {
            let (speech, fraction) = speech_stats(v);
            // Audio fields describe the audio the result carries; `frames` counts VAD frames.
            let mut m = audio_fields(&v.audio);
            m.insert("kind".into(), json!("vad"));
            m.insert("segments".into(), crate::data::segments_json(&v.segments));
            m.insert("frames".into(), json!(v.frames.len()));
            m.insert("frames_speech".into(), json!(speech));
            m.insert("frame_duration_ms".into(), json!(v.frame_duration_ms));
            m.insert("speech_fraction".into(), json!(fraction));
            Value::Object(m)
        }
        Payload::Clips(clips) => {
            let list: Vec<Value> = clips.iter().map(clip_json).collect();
            let first = clips.first().map(|c| &c.audio);
            json!({
                "kind": "clips",
                "count": clips.len(),
                "duration_s": clips.iter().fold(0.0, |acc, c| acc + c.audio.duration_s()),
                "sample_rate": first.map(|a| a.sample_rate),
                "channels": first.map(|a| a.channels),
                "format": first.map(|a| a.samples.format().name()),
                "clips": list,
            })
        }
        Payload::Features(f) => {
            let (lo, hi) = value_range(f);
            json!({
                "kind": "features",
                "shape": [f.frames(), f.bins],
                "frames": f.frames(),
                "bins": f.bins,
                "frame_rate": f.frame_rate,
                "duration_s": f.frames() as f64 / f.frame_rate,
                "min": lo,
                "max": hi,
            })
        }
        Payload::Json(j) => json!({"kind": "json", "value": j}),
        Payload::Map(entries) => {
            let e: serde_json::Map<String, Value> = entries.iter().map(|(k, v)| (k.clone(), payload_json(v))).collect();
            json!({"kind": "map", "entries": e})
        }
    }
}

/// Where one clip lies in its recording.
pub fn clip_json(c: &Clip) -> Value {
    json!({
        "start_s": c.start_s(),
        "end_s": c.end_s(),
        "duration_s": c.audio.duration_s(),
        "start_frame": c.start_frame,
        "frames": c.audio.frames(),
    })
}

/// The first audio among the outputs (a VAD result's audio counts, maps are searched in key
/// order), with the name of the output it came from.
pub fn first_audio(outputs: &[(String, Payload)]) -> Option<(String, &AudioBuffer)> {
    fn find(name: String, p: &Payload) -> Option<(String, &AudioBuffer)> {
        match p {
            Payload::Map(m) => m.iter().find_map(|(k, v)| find(format!("{name}.{k}"), v)),
            other => other.audio().map(|a| (name, a)),
        }
    }
    outputs.iter().find_map(|(id, p)| find(id.clone(), p))
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn count(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_u64).map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

fn node_list(metrics: &Value) -> &[Value] {
    metrics.get("node_metrics").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// A node's total time in a run, or "did not run".
fn node_time(n: Option<&Value>) -> String {
    match n {
        Some(n) if n.get("execution_count").and_then(Value::as_u64).unwrap_or(0) > 0 => fmt_us(num(n, "total_duration_us")),
        _ => "did not run".into(),
    }
}

fn node_names(n: &Value) -> [String; 2] {
    ["node_id", "node_type"].map(|k| n.get(k).and_then(Value::as_str).unwrap_or("?").to_string())
}

/// Time per node for a single run, plus the end-to-end latency.
pub fn timing_table(metrics: &Value) -> String {
    let mut t = Table::new(&["node", "type", "time"]).right_from(2);
    for n in node_list(metrics) {
        let [id, ty] = node_names(n);
        t.row(vec![id, ty, node_time(Some(n))]);
    }
    t.row(vec!["(end to end)".into(), String::new(), fmt_us(num(metrics, "total_duration_us"))]);
    t.render()
}

/// Time per node for a first run and a warm one, side by side, plus the end-to-end latencies.
pub fn timing_table_pair(first: &Value, warm: &Value) -> String {
    let mut t = Table::new(&["node", "type", "first run", "warm run"]).right_from(2);
    let warm_nodes = node_list(warm);
    for (i, n) in node_list(first).iter().enumerate() {
        let [id, ty] = node_names(n);
        t.row(vec![id, ty, node_time(Some(n)), node_time(warm_nodes.get(i))]);
    }
    let end_to_end = |m: &Value| fmt_us(num(m, "total_duration_us"));
    t.row(vec!["(end to end)".into(), String::new(), end_to_end(first), end_to_end(warm)]);
    t.render()
}

/// Per-node counts and latency percentiles in µs (`p999` adds the 99.9th percentile and the mean),
/// with an end-to-end row.
pub fn percentile_table(metrics: &Value, p999: bool) -> String {
    let mut headers = vec!["node", "type", "count", "errors"];
    if p999 {
        headers.push("mean µs");
    }
    headers.extend(["p50 µs", "p90 µs", "p99 µs"]);
    if p999 {
        headers.push("p99.9 µs");
    }
    headers.push("max µs");
    let mut t = Table::new(&headers).right_from(2);
    let row = |id: String, ty: String, v: &Value, prefix: &str, count_key: &str, errors_key: &str, avg_key: &str, max_key: &str| {
        let mut cells = vec![id, ty, count(v, count_key), count(v, errors_key)];
        if p999 {
            cells.push(fmt_us_plain(num(v, avg_key)));
        }
        for q in ["p50", "p90", "p99"] {
            cells.push(fmt_us_plain(num(v, &format!("{prefix}{q}_us"))));
        }
        if p999 {
            cells.push(fmt_us_plain(num(v, &format!("{prefix}p999_us"))));
        }
        cells.push(fmt_us_plain(num(v, max_key)));
        cells
    };
    let mut rows = Vec::new();
    for n in node_list(metrics) {
        rows.push(row(
            n.get("node_id").and_then(Value::as_str).unwrap_or("?").to_string(),
            n.get("node_type").and_then(Value::as_str).unwrap_or("?").to_string(),
            n,
            "",
            "execution_count",
            "error_count",
            "avg_duration_us",
            "max_duration_us",
        ));
    }
    rows.push(row(
        "(end to end)".into(),
        String::new(),
        metrics,
        "latency_",
        "total_executions",
        "failed_executions",
        "avg_duration_us",
        "max_duration_us",
    ));
    for r in rows {
        t.row(r);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_relative_to_full_scale() {
        assert_eq!(peak(&AudioBuffer { samples: Samples::I16(vec![0, -32768, 100].into()), sample_rate: 8000, channels: 1 }), 1.0);
        assert_eq!(peak(&AudioBuffer { samples: Samples::I32(vec![1 << 30].into()), sample_rate: 8000, channels: 1 }), 0.5);
        assert_eq!(peak(&AudioBuffer::mono_f32(vec![0.25, f32::NAN, -0.5], 8000)), 0.5);
        assert_eq!(peak(&AudioBuffer::mono_f32(vec![], 8000)), 0.0);
        // Every position of the lanes and the tail, with NaN and infinities around it.
        for n in [1usize, 7, 8, 9, 16, 17, 1000] {
            for at in [0, n / 2, n - 1] {
                let mut v: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.01).collect();
                v[at] = -0.75;
                if n > 2 {
                    v[(at + 1) % n] = f32::NAN;
                }
                assert_eq!(peak_f32(&v), 0.75, "n {n}, peak at {at}");
            }
        }
        assert_eq!(peak_f32(&[f32::NAN; 9]), 0.0, "all NaN: nothing to count");
        assert_eq!(peak_f32(&[0.1, f32::NEG_INFINITY, 0.2]), f32::INFINITY);
    }

    #[test]
    fn vad_results_list_segments_and_speech_fraction() {
        let v = VadResult {
            segments: vec![(0.3, 0.6), (1.2, 1.5)],
            frames: vec![false, true, true, false, true, false, false, false, false, false],
            frame_duration_ms: 30,
            audio: AudioBuffer::mono_f32(vec![0.0; 16000], 16000),
            probabilities: Vec::new(),
        };
        let p = Payload::Vad(Box::new(v));
        let mut text = String::new();
        describe_payload(&mut text, "vad", &p, 2, false);
        assert!(text.contains("2 speech segments"), "{text}");
        assert!(text.contains("speech in 30.0% of 10 frames of 30 ms"), "{text}");
        assert!(text.contains("0.30 –    0.60 s  (0.30 s)"), "{text}");
        let j = payload_json(&p);
        assert_eq!(j["kind"], "vad");
        assert_eq!(j["frames"], 10);
        assert_eq!(j["frames_speech"], 3);
        assert_eq!(j["segments"], json!([[0.3, 0.6], [1.2, 1.5]]));
        assert_eq!(j["sample_rate"], 16000);
        assert_eq!(j["duration_s"], 1.0);
    }

    #[test]
    fn first_audio_looks_into_vad_results_and_maps() {
        let a = AudioBuffer::mono_f32(vec![0.5], 8000);
        let mut m = std::collections::BTreeMap::new();
        m.insert("x".to_string(), Payload::Json(json!(1)));
        m.insert("y".to_string(), Payload::Audio(a.clone()));
        let outputs = vec![("j".to_string(), Payload::Json(json!(null))), ("m".to_string(), Payload::Map(m))];
        let (name, found) = first_audio(&outputs).expect("audio in the map");
        assert_eq!(name, "m.y");
        assert_eq!(found, &a);
    }
}
