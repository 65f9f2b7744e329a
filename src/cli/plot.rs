//! The plots the CLI draws to PNG with plotters: `remotemedia bench --plot`'s latency curves (one
//! percentile curve per node, and one for whole runs, on a log-scale latency axis) and
//! `remotemedia run --plot`'s input waveform with each features output drawn under it as an image.
//!
//! The percentile axis is the usual HdrHistogram "nines" scale, x = -log10(1 - q), so the tail
//! (p90, p99, p99.9) gets as much room as the body. Text is drawn with DejaVu Sans embedded in the
//! binary (assets/fonts), so plotting needs no system fonts.

use std::path::Path;
use std::sync::OnceLock;

use hdrhistogram::Histogram;

use crate::data::{AudioBuffer, Features};
use plotters::prelude::*;

/// DejaVu Sans 2.37 (Bitstream Vera license, see assets/fonts/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name the embedded font is registered under.
const FAMILY: &str = "sans-serif";

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded plot font cannot be read".to_string())
        })
        .clone()
}

/// The label of the series for whole runs, drawn in black.
pub const END_TO_END: &str = "end to end";

/// Highest x of the nines axis: p99.9.
const MAX_NINES: f64 = 3.0;

fn quantile_at(x: f64) -> f64 {
    1.0 - 10f64.powf(-x)
}

/// `p50`, `p90`, `p99.9`... for a position on the nines axis.
fn percentile_label(x: f64) -> String {
    let p = quantile_at(x) * 100.0;
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("p{s}")
}

/// A latency in µs for the y axis.
fn latency_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", trim(us / 1e6))
    } else if us >= 1e3 {
        format!("{} ms", trim(us / 1e3))
    } else {
        format!("{} µs", trim(us))
    }
}

/// The largest 1, 2 or 5 × 10^k at or below `x` (x > 0), a readable end for a log axis.
fn nice_below(x: f64) -> f64 {
    let decade = 10f64.powf(x.log10().floor());
    [5.0, 2.0, 1.0].iter().map(|m| m * decade).find(|&v| v <= x).unwrap_or(decade)
}

/// The smallest 1, 2 or 5 × 10^k at or above `x` (x > 0).
fn nice_above(x: f64) -> f64 {
    let decade = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * decade).find(|&v| v >= x).unwrap_or(10.0 * decade)
}

/// Line colours: distinct and readable on white (no yellow); whole runs are drawn in black.
const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Draws the percentile curves of `series` (`(label, histogram of ns)`) to a PNG file.
/// Series without samples are left out.
pub fn latency_plot(path: &Path, title: &str, series: &[(String, Histogram<u64>)]) -> Result<(), String> {
    register_font()?;
    let series: Vec<&(String, Histogram<u64>)> = series.iter().filter(|(_, h)| !h.is_empty()).collect();
    if series.is_empty() {
        return Err("nothing to plot: no latencies were recorded".into());
    }
    let steps = 300;
    let curves: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, h)| {
            let pts = (0..=steps)
                .map(|i| {
                    let x = MAX_NINES * i as f64 / steps as f64;
                    // The largest value (x = MAX_NINES) is clamped to the true maximum.
                    let ns = if i == steps { h.max() } else { h.value_at_quantile(quantile_at(x)) };
                    (x, (ns.max(1)) as f64 / 1000.0)
                })
                .collect();
            (name.as_str(), pts)
        })
        .collect();
    let lo = curves.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)).fold(f64::INFINITY, f64::min);
    let hi = curves.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)).fold(0.0f64, f64::max);
    let (y_lo, y_hi) = (nice_below(lo * 0.9), nice_above(hi * 1.1));

    let err = |e: &dyn std::fmt::Display| format!("cannot draw the plot to '{}': {e}", path.display());
    let root = BitMapBackend::new(path, (1100, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..MAX_NINES, (y_lo..y_hi).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (log scale)")
        // 0..3 on the nines axis: p0, p90, p99, p99.9.
        .x_labels(4)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| latency_label(*y))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, pts)) in curves.into_iter().enumerate() {
        let whole = name == END_TO_END;
        let color = if whole { BLACK } else { COLORS[i % COLORS.len()] };
        let style = color.stroke_width(if whole { 3 } else { 2 });
        chart
            .draw_series(LineSeries::new(pts, style))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A dark-to-bright colour scale (viridis-like): `v` in 0..=1.
fn heat(v: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] =
        [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
    let x = v.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let t = x - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// One waveform panel: min and max per pixel column, clipped to -1..1.
fn draw_wave<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    duration: f64,
    mono: &[f32],
    rate: u32,
    label: &str,
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..duration, -1f64..1f64)?;
    chart.configure_mesh().x_desc("s").y_desc(label).label_style((FAMILY, 13)).axis_desc_style((FAMILY, 14)).draw()?;
    let columns = 1000usize;
    let per = mono.len().div_ceil(columns).max(1);
    chart.draw_series(mono.chunks(per).enumerate().map(|(i, c)| {
        let t = (i * per) as f64 / rate as f64;
        let (lo, hi) = c.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
        PathElement::new(vec![(t, lo.max(-1.0) as f64), (t, hi.min(1.0) as f64)], color)
    }))?;
    Ok(())
}

/// The average power spectrum of `x` in dB (re full scale), as `(Hz, dB)` from the first bin
/// above 0 Hz: Hann frames of up to 4096 samples, at most 400 of them spread over the signal.
pub fn mean_spectrum_db(x: &[f32], rate: u32) -> Vec<(f64, f64)> {
    let n = (x.len().max(2).ilog2() as usize).clamp(4, 12);
    let n = 1usize << n;
    if x.len() < n {
        return Vec::new();
    }
    let frames = ((x.len() - n) / n + 1).min(400);
    let step = if frames > 1 { (x.len() - n) / (frames - 1) } else { 0 };
    let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let window: Vec<f64> = (0..n).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()).collect();
    let norm = window.iter().sum::<f64>().powi(2) / 4.0;
    let (mut buf, mut spec) = (fft.make_input_vec(), fft.make_output_vec());
    let mut power = vec![0.0; n / 2 + 1];
    for f in 0..frames {
        for (b, (&v, w)) in buf.iter_mut().zip(x[f * step..f * step + n].iter().zip(&window)) {
            *b = v as f64 * w;
        }
        fft.process(&mut buf, &mut spec).expect("buffers sized by the plan");
        for (p, c) in power.iter_mut().zip(&spec) {
            *p += c.norm_sqr() / norm / frames as f64;
        }
    }
    power.iter().enumerate().skip(1).map(|(k, p)| (k as f64 * rate as f64 / n as f64, 10.0 * (p + 1e-20).log10())).collect()
}

/// `remotemedia run --plot`: the input waveform on top (min and max per pixel column, channels
/// mixed); under it, for every audio output that differs from the input (a node that changed the
/// signal: a filter, normalisation, noise reduction), its waveform on the same scales and then one
/// panel of average spectra in dB, the input's against each such output's (before and after);
/// then each features output as an image on the same time axis: frames across, bins upwards,
/// values coloured from their minimum (dark) to their maximum (bright).
pub fn features_plot(
    path: &Path,
    title: &str,
    audio: &AudioBuffer,
    changed: &[(String, &AudioBuffer)],
    features: &[(String, &Features)],
) -> Result<(), String> {
    register_font()?;
    let err = |e: &dyn std::fmt::Display| format!("cannot draw the plot to '{}': {e}", path.display());
    let mono = crate::nodes::vad::to_mono(audio).map_err(|e| err(&e.message))?;
    let outs = changed
        .iter()
        .map(|(name, a)| Ok((name.as_str(), crate::nodes::vad::to_mono(a)?, a.sample_rate)))
        .collect::<Result<Vec<_>, crate::error::NodeError>>()
        .map_err(|e| err(&e.message))?;
    let duration = outs
        .iter()
        .map(|(_, m, r)| m.len() as f64 / *r as f64)
        .fold(audio.frames() as f64 / audio.sample_rate as f64, f64::max)
        .max(1e-3);
    let (width, wave_h, spec_h, feat_h) = (1100u32, 260u32, 320u32, 320u32);
    let spectra_h = if outs.is_empty() { 0 } else { spec_h };
    let height = wave_h * (1 + outs.len() as u32) + spectra_h + feat_h * features.len() as u32 + 40;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, (FAMILY, 22)).map_err(|e| err(&e))?;
    let (top, mut rest) = root.split_vertically(wave_h);
    draw_wave(&top, duration, &mono, audio.sample_rate, "input", RGBColor(31, 119, 180)).map_err(|e| err(&e))?;
    for (i, (name, m, rate)) in outs.iter().enumerate() {
        let (area, below) = rest.split_vertically(wave_h);
        rest = below;
        draw_wave(&area, duration, m, *rate, &format!("after {name}"), COLORS[(i + 1) % COLORS.len()]).map_err(|e| err(&e))?;
    }
    if !outs.is_empty() {
        let (area, below) = rest.split_vertically(spec_h);
        rest = below;
        let mut curves = vec![("input (before)".to_string(), mean_spectrum_db(&mono, audio.sample_rate), RGBColor(31, 119, 180))];
        for (i, (name, m, rate)) in outs.iter().enumerate() {
            curves.push((format!("after {name}"), mean_spectrum_db(m, *rate), COLORS[(i + 1) % COLORS.len()]));
        }
        let f_hi = curves.iter().flat_map(|c| c.1.last().map(|p| p.0)).fold(20.0, f64::max);
        let f_lo = curves.iter().flat_map(|c| c.1.first().map(|p| p.0)).fold(f_hi, f64::min).max(1.0).min(f_hi / 2.0);
        let db_hi = curves.iter().flat_map(|c| c.1.iter().map(|p| p.1)).fold(-200.0, f64::max) + 5.0;
        let db_lo = db_hi - 105.0;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d((f_lo..f_hi).log_scale(), db_lo..db_hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("Hz (average spectrum, log scale)")
            .y_desc("dB")
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .draw()
            .map_err(|e| err(&e))?;
        for (name, pts, color) in curves {
            chart
                .draw_series(LineSeries::new(pts.into_iter().map(|(f, d)| (f, d.max(db_lo))), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    for (name, f) in features {
        let (area, below) = rest.split_vertically(feat_h);
        rest = below;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..duration, 0f64..f.bins as f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(format!("s ({name}: {} frames x {} bins)", f.frames(), f.bins))
            .y_desc("bin")
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 14))
            .draw()
            .map_err(|e| err(&e))?;
        let (lo, hi) = f.values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
        let span = ((hi - lo) as f64).max(1e-12);
        let pixels = chart.plotting_area().strip_coord_spec();
        let (w, h) = pixels.dim_in_pixel();
        // Pixel columns past the features' own duration stay white.
        let cols = ((f.frames() as f64 / f.frame_rate / duration) * w as f64).round().min(w as f64) as u32;
        for x in 0..cols {
            let frame = ((x as usize * f.frames()) / cols.max(1) as usize).min(f.frames().saturating_sub(1));
            let row = f.row(frame);
            for y in 0..h {
                let bin = ((h - 1 - y) as usize * f.bins) / h as usize;
                pixels.draw_pixel((x as i32, y as i32), &heat((row[bin] - lo) as f64 / span)).map_err(|e| err(&e))?;
            }
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_axis_labels() {
        assert_eq!(percentile_label(0.0), "p0");
        assert_eq!(percentile_label(1.0), "p90");
        assert_eq!(percentile_label(2.0), "p99");
        assert_eq!(percentile_label(3.0), "p99.9");
        assert_eq!(percentile_label(2f64.log10()), "p50");
        assert_eq!(latency_label(1500.0), "1.5 ms");
        assert_eq!(latency_label(20.0), "20 µs");
        assert_eq!(nice_below(89.0), 50.0);
        assert_eq!(nice_below(1.0), 1.0);
        assert_eq!(nice_above(5382.0), 10000.0);
        assert_eq!(nice_above(148.0), 200.0);
    }

    /// A sine's average spectrum peaks at its frequency, at its power in dB (full scale).
    #[test]
    fn mean_spectrum_finds_a_sine() {
        let x: Vec<f32> = (0..16000).map(|i| (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 16000.0).sin() as f32 * 0.5).collect();
        let s = mean_spectrum_db(&x, 16000);
        let (f, db) = s.iter().copied().fold((0.0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
        assert!((f - 1000.0).abs() < 16000.0 / 4096.0, "{f}");
        // Amplitude 0.5: power 0.125 split over +/- f, -6.02 dB for a Hann-windowed bin centre.
        assert!((db - 20.0 * 0.5f64.log10()).abs() < 0.5, "{db}");
        assert!(mean_spectrum_db(&x[..8], 16000).is_empty());
    }

    #[test]
    fn features_are_drawn_under_the_waveform() {
        assert_eq!(heat(0.0), RGBColor(68, 1, 84));
        assert_eq!(heat(1.0), RGBColor(253, 231, 37));
        let dir = std::env::temp_dir().join(format!("rm_plot_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("features.png");
        let audio = AudioBuffer::mono_f32((0..16000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect(), 16000);
        let f = Features::new((0..100 * 8).map(|i| (i % 8) as f32).collect(), 8, 100.0).expect("features");
        features_plot(&path, "test", &audio, &[], &[("mel".into(), &f)]).expect("plot");
        let bytes = std::fs::read(&path).expect("png");
        assert_eq!(&bytes[1..4], b"PNG");
        // Before and after: the waveform panels and the spectra add to the image's height.
        let quieter = AudioBuffer::mono_f32((0..16000).map(|i| (i as f32 * 0.05).sin() * 0.25).collect(), 16000);
        features_plot(&path, "test", &audio, &[("f".into(), &quieter)], &[]).expect("plot");
        let bytes = std::fs::read(&path).expect("png");
        assert_eq!(&bytes[1..4], b"PNG");
        let height = u32::from_be_bytes(bytes[20..24].try_into().expect("IHDR height"));
        assert_eq!(height, 260 * 2 + 320 + 40);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
