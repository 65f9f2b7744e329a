//! silero-vad's speech-timestamp post-processing (`get_speech_timestamps_from_probs` in its
//! `utils_vad.py`, v6.2.3), fed one probability at a time so that streams get it too.
//!
//! The state machine is silero-vad's, step for step: a speech starts at the first chunk with
//! `p >= threshold`; it ends at the start of a run of chunks with `p < neg_threshold` that lasts
//! `min_silence` samples, and is kept if longer than `min_speech`; a speech longer than
//! `max_speech` is cut at the longest silence (> 98 ms) seen inside it, or where it stands.
//! The padding pass that silero-vad runs over the finished list (each speech widened by
//! `speech_pad` on both sides, or by half the gap when two are closer than twice that) is done
//! here as soon as a speech's neighbour is known, so a segment is reported once nothing later
//! can change it: when the next speech closes, or when the next one cannot start within
//! `2 * speech_pad` of it. A stream thus gives exactly the whole buffer's segments.
//! `python/remotemedia/_pure/silero.py` (`Timestamper`) is the numpy twin.

/// get_speech_timestamps' fixed `min_silence_at_max_speech`, in ms.
const MIN_SILENCE_AT_MAX_SPEECH_MS: f64 = 98.0;

/// The post-processing params, in silero-vad's units.
#[derive(Clone, Debug, PartialEq)]
pub struct TimestampConfig {
    pub sample_rate: u32,
    /// Samples per chunk (512 at 16 kHz, 256 at 8 kHz).
    pub window: usize,
    pub threshold: f64,
    pub neg_threshold: f64,
    pub min_speech_duration_ms: u32,
    pub min_silence_duration_ms: u32,
    pub speech_pad_ms: u32,
    /// `None`: no limit.
    pub max_speech_duration_s: Option<f64>,
}

/// A speech segment in samples, `[start, end)`.
pub type Span = (u64, u64);

/// The streaming post-processor.
pub struct Timestamper {
    threshold: f64,
    neg_threshold: f64,
    window: i64,
    min_speech: f64,
    min_silence: f64,
    min_silence_at_max: f64,
    max_speech: f64,
    pad: i64,
    /// The stream's length once known: padding never reaches past it.
    length: Option<i64>,
    /// Chunks seen.
    n: i64,
    /// The open speech's start ("triggered" in silero-vad).
    start: Option<i64>,
    temp_end: i64,
    prev_end: i64,
    next_start: i64,
    possible_ends: Vec<(i64, i64)>,
    /// A closed speech whose end padding waits for the next one: (padded start, raw end).
    held: Option<(i64, i64)>,
}

impl Timestamper {
    pub fn new(c: &TimestampConfig) -> Timestamper {
        let rate = c.sample_rate as f64;
        let pad = c.sample_rate as i64 * c.speech_pad_ms as i64 / 1000;
        Timestamper {
            threshold: c.threshold,
            neg_threshold: c.neg_threshold,
            window: c.window as i64,
            min_speech: rate * c.min_speech_duration_ms as f64 / 1000.0,
            min_silence: rate * c.min_silence_duration_ms as f64 / 1000.0,
            min_silence_at_max: rate * MIN_SILENCE_AT_MAX_SPEECH_MS / 1000.0,
            max_speech: rate * c.max_speech_duration_s.unwrap_or(f64::INFINITY) - c.window as f64 - 2.0 * pad as f64,
            pad,
            length: None,
            n: 0,
            start: None,
            temp_end: 0,
            prev_end: 0,
            next_start: 0,
            possible_ends: Vec::new(),
            held: None,
        }
    }

    /// The stream's length in samples: call before pushing the last (zero-padded) chunk's
    /// probability, which may reach past it.
    pub fn set_length(&mut self, length: u64) {
        self.length = Some(length as i64);
    }

    /// One chunk's probability; appends the segments that became final to `out`.
    pub fn push(&mut self, p: f32, out: &mut Vec<Span>) {
        self.step(p as f64, out);
        self.n += 1;
        // Nothing that starts at or after `earliest` can pull the held speech's end in.
        let earliest = self.start.unwrap_or(self.n * self.window);
        if let Some((s, e)) = self.held {
            if earliest - e >= 2 * self.pad {
                out.push((s as u64, self.pad_end(e) as u64));
                self.held = None;
            }
        }
    }

    /// Every segment still to come starts at or after this sample.
    pub fn horizon(&self) -> u64 {
        if let Some((s, _)) = self.held {
            return s as u64;
        }
        let earliest = self.start.unwrap_or(self.n * self.window);
        (earliest - self.pad).max(0) as u64
    }

    /// The end of the stream (`length` samples): the open and held speeches close.
    pub fn finish(&mut self, length: u64, out: &mut Vec<Span>) {
        let length = length as i64;
        self.length = Some(length);
        if let Some(start) = self.start.take() {
            if (length - start) as f64 > self.min_speech {
                self.close(start, length, out);
            }
        }
        if let Some((s, e)) = self.held.take() {
            out.push((s as u64, self.pad_end(e) as u64));
        }
    }

    // silero-vad clamps only the last speech to the audio's length; one followed by another
    // never reaches it, so clamping every one is the same.
    fn pad_end(&self, end: i64) -> i64 {
        let e = end + self.pad;
        self.length.map_or(e, |l| e.min(l))
    }

    /// A speech closes: it becomes the held one, and the one held before is final.
    fn close(&mut self, start: i64, end: i64, out: &mut Vec<Span>) {
        let padded_start = match self.held {
            None => (start - self.pad).max(0),
            Some((hs, he)) => {
                let silence = start - he;
                if silence < 2 * self.pad {
                    out.push((hs as u64, (he + silence / 2) as u64));
                    (start - silence / 2).max(0)
                } else {
                    out.push((hs as u64, self.pad_end(he) as u64));
                    (start - self.pad).max(0)
                }
            }
        };
        self.held = Some((padded_start, end));
    }

    fn clear_candidates(&mut self) {
        self.prev_end = 0;
        self.next_start = 0;
        self.temp_end = 0;
        self.possible_ends.clear();
    }

    /// silero-vad's loop body for chunk `self.n`.
    fn step(&mut self, p: f64, out: &mut Vec<Span>) {
        let cur = self.window * self.n;
        if p >= self.threshold && self.temp_end != 0 {
            let sil = cur - self.temp_end;
            if sil as f64 > self.min_silence_at_max {
                self.possible_ends.push((self.temp_end, sil));
            }
            self.temp_end = 0;
            if self.next_start < self.prev_end {
                self.next_start = cur;
            }
        }
        let Some(start) = self.start else {
            if p >= self.threshold {
                self.start = Some(cur);
            }
            return;
        };
        if (cur - start) as f64 > self.max_speech {
            // The longest candidate silence, the first of equals (Python's max).
            let best = self.possible_ends.iter().copied().reduce(|a, b| if b.1 > a.1 { b } else { a });
            if let Some((prev_end, dur)) = best {
                self.prev_end = prev_end;
                self.close(start, prev_end, out);
                self.next_start = prev_end + dur;
                self.start = (self.next_start < self.prev_end + cur).then_some(self.next_start);
                self.clear_candidates();
            } else {
                self.close(start, cur, out);
                self.start = None;
                self.clear_candidates();
                return;
            }
        }
        let Some(start) = self.start else { return };
        if p < self.neg_threshold {
            if self.temp_end == 0 {
                self.temp_end = cur;
            }
            if ((cur - self.temp_end) as f64) < self.min_silence {
                return;
            }
            if (self.temp_end - start) as f64 > self.min_speech {
                self.close(start, self.temp_end, out);
            }
            self.start = None;
            self.clear_candidates();
        }
    }
}

/// Segments for a whole buffer of `length` samples and its chunks' probabilities.
pub fn speech_timestamps(probs: &[f32], length: u64, config: &TimestampConfig) -> Vec<Span> {
    let mut t = Timestamper::new(config);
    t.set_length(length);
    let mut out = Vec::new();
    for &p in probs {
        t.push(p, &mut out);
    }
    t.finish(length, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TimestampConfig {
        TimestampConfig {
            sample_rate: 16000,
            window: 512,
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_duration_ms: 250,
            min_silence_duration_ms: 100,
            speech_pad_ms: 30,
            max_speech_duration_s: None,
        }
    }

    /// Hand-worked case: speech in chunks 10..30 (a long enough speech), silence after.
    /// Start 10*512 - 480 padding; the silence starts at chunk 30, so the end is 30*512 + 480.
    #[test]
    fn one_speech_is_padded_on_both_sides() {
        let mut probs = vec![0.1f32; 60];
        probs[10..30].iter_mut().for_each(|p| *p = 0.9);
        let got = speech_timestamps(&probs, 60 * 512, &config());
        assert_eq!(got, vec![(10 * 512 - 480, 30 * 512 + 480)]);
    }

    #[test]
    fn short_bursts_are_dropped_and_a_speech_at_the_end_runs_to_the_length() {
        let mut probs = vec![0.1f32; 40];
        probs[5..7].iter_mut().for_each(|p| *p = 0.9); // 64 ms < 250 ms
        probs[30..].iter_mut().for_each(|p| *p = 0.9);
        let got = speech_timestamps(&probs, 40 * 512 - 100, &config());
        assert_eq!(got, vec![(30 * 512 - 480, 40 * 512 - 100)]);
    }
}
