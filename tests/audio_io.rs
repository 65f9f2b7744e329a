//! WAV reading and writing: round trips for every sample format, 8/24-bit scaling, and the
//! error messages users see for missing, non-WAV, truncated and unsupported files.

use std::path::PathBuf;

use remotemedia::audio_io::{read_wav, write_wav};
use remotemedia::data::{AudioBuffer, Samples};
use remotemedia::Error;

/// A fresh directory under the system temp dir, unique per test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("remotemedia-audio-io-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn sine(frames: usize, channels: u16, rate: u32) -> Vec<f32> {
    let mut v = Vec::with_capacity(frames * channels as usize);
    for i in 0..frames {
        for c in 0..channels {
            let f = 440.0 * (c as f64 + 1.0);
            v.push((0.8 * (2.0 * std::f64::consts::PI * f * i as f64 / rate as f64).sin()) as f32);
        }
    }
    v
}

#[test]
fn round_trips_every_format_and_channel_count() {
    let dir = temp_dir("roundtrip");
    let f = sine(4800, 2, 48000);
    let buffers = [
        AudioBuffer::new(Samples::F32(f.clone().into()), 48000, 2).expect("buffer"),
        AudioBuffer::new(Samples::F32(vec![f32::MAX, -0.0, 1e-40, -1.0].into()), 8000, 1).expect("buffer"),
        AudioBuffer::new(Samples::I16(f.iter().map(|x| (x * 32767.0) as i16).collect()), 16000, 1).expect("buffer"),
        AudioBuffer::new(Samples::I16(vec![i16::MIN, i16::MAX, 0, -1, 1, 2].into()), 22050, 3).expect("buffer"),
        AudioBuffer::new(Samples::I32(vec![i32::MIN, i32::MAX, 0, -1, 1, 1 << 20].into()), 96000, 6).expect("buffer"),
        AudioBuffer::new(Samples::I16(vec![].into()), 44100, 2).expect("buffer"),
    ];
    for (i, audio) in buffers.iter().enumerate() {
        let path = dir.join(format!("{i}.wav"));
        write_wav(&path, audio).expect("write");
        let back = read_wav(&path).expect("read");
        assert_eq!(&back, audio, "buffer {i}");
    }
    // The header says what the docs promise: f32 → 32-bit float, i16 → 16-bit, i32 → 32-bit int.
    let spec = |i: usize| hound::WavReader::open(dir.join(format!("{i}.wav"))).expect("open").spec();
    assert_eq!((spec(0).bits_per_sample, spec(0).sample_format, spec(0).channels), (32, hound::SampleFormat::Float, 2));
    assert_eq!((spec(2).bits_per_sample, spec(2).sample_format), (16, hound::SampleFormat::Int));
    assert_eq!((spec(4).bits_per_sample, spec(4).sample_format, spec(4).channels), (32, hound::SampleFormat::Int, 6));
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_with_hound(path: &PathBuf, bits: u16, channels: u16, values: &[i32]) {
    let spec = hound::WavSpec { channels, sample_rate: 48000, bits_per_sample: bits, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).expect("create");
    for &v in values {
        w.write_sample(v).expect("write");
    }
    w.finalize().expect("finalize");
}

#[test]
fn twenty_four_bit_fills_the_i32_range() {
    let dir = temp_dir("24bit");
    let path = dir.join("a.wav");
    let values = [-8_388_608, 8_388_607, 0, 1, -1, 4_194_304];
    write_with_hound(&path, 24, 2, &values);
    let audio = read_wav(&path).expect("read");
    assert_eq!((audio.channels, audio.sample_rate), (2, 48000));
    let want: Vec<i32> = values.iter().map(|v| v * 256).collect();
    assert_eq!(audio.samples, Samples::I32(want.into()));
    // Full scale stays full scale: -2^23 reads as -1.0, 2^22 as 0.5.
    let f = audio.samples.to_f32_vec();
    assert_eq!((f[0], f[5]), (-1.0, 0.5));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eight_bit_fills_the_i16_range() {
    let dir = temp_dir("8bit");
    let path = dir.join("a.wav");
    write_with_hound(&path, 8, 1, &[-128, 127, 0, 64]);
    let audio = read_wav(&path).expect("read");
    assert_eq!(audio.samples, Samples::I16(vec![-32768, 32512, 0, 16384].into()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = std::env::temp_dir().join("remotemedia-definitely-missing-file.wav");
    let err = read_wav(&path).expect_err("missing file read");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

#[test]
fn non_wav_files_are_input_errors_naming_path_and_content() {
    let dir = temp_dir("notwav");
    let cases: [(&str, &[u8], &str); 4] = [
        ("text.wav", b"hello, this is not audio at all", "\"hello, this is n"),
        ("empty.wav", b"", "empty"),
        ("png.wav", b"\x89PNG\r\n\x1a\n0000", "\\x89PNG\\r\\n"),
        ("riff.wav", b"RIFF\x10\x00\x00\x00AVI LIST", "\"RIFF\\x10\\x00"),
    ];
    for (name, bytes, shows) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        let err = read_wav(&path).expect_err("non-WAV accepted");
        let msg = err.to_string();
        assert!(matches!(err, Error::Input(_)), "{msg}");
        assert!(msg.contains(&path.display().to_string()) && msg.contains("is not a supported audio file"), "{msg}");
        assert!(msg.contains(shows), "{msg} should show {shows}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncated_and_unsupported_files_are_named_errors() {
    let dir = temp_dir("bad");
    // Truncated: a valid file cut in the middle of its data.
    let path = dir.join("cut.wav");
    write_wav(&path, &AudioBuffer::mono_f32(vec![0.5; 1000], 16000)).expect("write");
    let bytes = std::fs::read(&path).expect("read back");
    for keep in [bytes.len() - 3, 60, 44, 30, 13] {
        std::fs::write(&path, &bytes[..keep]).expect("write cut");
        let err = read_wav(&path).expect_err("truncated accepted");
        assert!(matches!(err, Error::Input(_)) && err.to_string().contains("cut.wav"), "{keep}: {err}");
    }
    // 64-bit float: a RIFF/WAVE file with an IEEE-float fmt chunk of 64 bits per sample.
    let mut wav = Vec::new();
    let data = [0u8; 16];
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(4 + 8 + 16 + 8 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    wav.extend_from_slice(&1u16.to_le_bytes()); // channels
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&(8000u32 * 8).to_le_bytes());
    wav.extend_from_slice(&8u16.to_le_bytes()); // block align
    wav.extend_from_slice(&64u16.to_le_bytes()); // bits
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    let path = dir.join("f64.wav");
    // 64-bit float reads as f32 (rounded): 0.5 and -0.25 exactly.
    let mut f64_wav = wav.clone();
    f64_wav[44..52].copy_from_slice(&0.5f64.to_le_bytes());
    f64_wav[52..60].copy_from_slice(&(-0.25f64).to_le_bytes());
    std::fs::write(&path, &f64_wav).expect("write");
    assert_eq!(read_wav(&path).expect("f64 reads").samples, Samples::F32(vec![0.5, -0.25].into()));
    // A format tag nothing decodes is refused by number and name.
    wav[20..22].copy_from_slice(&0x1234u16.to_le_bytes());
    std::fs::write(&path, &wav).expect("write");
    let msg = read_wav(&path).expect_err("unknown tag accepted").to_string();
    assert!(msg.contains("f64.wav") && msg.contains("format tag 0x1234 (unknown), which remotemedia cannot decode"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn write_errors_name_the_path() {
    let dir = temp_dir("writeerr");
    let path = dir.join("no-such-dir").join("out.wav");
    let err = write_wav(&path, &AudioBuffer::mono_f32(vec![0.0; 4], 8000)).expect_err("wrote into a missing dir");
    assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("out.wav"), "{err}");
    let partial = AudioBuffer { samples: Samples::I16(vec![1, 2, 3].into()), sample_rate: 8000, channels: 2 };
    let err = write_wav(dir.join("p.wav"), &partial).expect_err("partial frame written");
    assert!(matches!(err, Error::Input(_)) && err.to_string().contains("p.wav"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bundled_speech_sample_reads_as_documented() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dataflows/sample_speech.wav");
    let audio = read_wav(&path).expect("bundled sample reads");
    assert_eq!((audio.sample_rate, audio.channels, audio.samples.format().name()), (48000, 1, "i16"));
    assert!((4.0..=6.2).contains(&audio.duration_s()), "{} s", audio.duration_s());
    // The pauses README.md lists are quieter than the phrases by well over 10 dB.
    let x = audio.samples.to_f32_vec();
    let rms_db = |a: f64, b: f64| {
        let s = &x[(a * 48000.0) as usize..(b * 48000.0) as usize];
        10.0 * (s.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / s.len() as f64).log10()
    };
    for (pause, phrase) in [((0.0, 0.25), (0.4, 1.5)), ((1.7, 2.2), (2.4, 3.6)), ((3.8, 4.3), (4.5, 5.5))] {
        let (quiet, loud) = (rms_db(pause.0, pause.1), rms_db(phrase.0, phrase.1));
        assert!(loud - quiet > 10.0, "pause {pause:?} {quiet:.1} dB vs phrase {phrase:?} {loud:.1} dB");
        assert!((-46.0..-34.0).contains(&quiet), "noise floor {quiet:.1} dBFS in {pause:?}");
    }
}

/// The header is parsed from the file's first 4 KB read once (`reader::PrefixReader`): chunks
/// that lie past them (a long odd-sized `LIST` before the data, padded to even) are read from
/// the file, with the same samples, and a file cut inside a chunk header past them gets the
/// same error naming the byte.
#[test]
fn header_chunks_past_the_first_read_are_found_and_checked() {
    let dir = temp_dir("long-header");
    let samples: Vec<i16> = (0..3000).map(|i| ((i * 37) % 2000 - 1000) as i16).collect();
    let mut fmt = Vec::new();
    for v in [1u16, 1] {
        fmt.extend_from_slice(&v.to_le_bytes());
    }
    fmt.extend_from_slice(&16000u32.to_le_bytes());
    fmt.extend_from_slice(&32000u32.to_le_bytes());
    fmt.extend_from_slice(&2u16.to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    let list = vec![b'x'; 10_001];
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut body = b"WAVE".to_vec();
    for (id, chunk) in [(b"fmt ", &fmt), (b"LIST", &list), (b"data", &data)] {
        body.extend_from_slice(id);
        body.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        body.extend_from_slice(chunk);
        if chunk.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&body);
    let path = dir.join("long_list.wav");
    std::fs::write(&path, &file).expect("write");
    let back = read_wav(&path).expect("read");
    assert_eq!(back, AudioBuffer::new(Samples::I16(samples.into()), 16000, 1).expect("buffer"));
    // Cut 4 bytes into the data chunk's header, which starts past the first 4 KB.
    let at = 12 + 8 + fmt.len() + 8 + list.len() + 1;
    assert!(at > 4096);
    std::fs::write(&path, &file[..at + 4]).expect("write");
    let e = read_wav(&path).expect_err("truncated").to_string();
    assert!(e.ends_with(&format!("is truncated: it ends inside a chunk header at byte {at}")), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
