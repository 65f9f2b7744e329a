//! FLAC encoding through `flacenc` (pure Rust, Apache-2.0), frame by frame so a stream of any
//! length is written in constant memory: blocks of 4096 frames are encoded as they fill, and the
//! STREAMINFO block (total frames, MD5 of the samples, block and frame sizes) is written again
//! once the stream ends.

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, StreamInfo};
use flacenc::config;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Context, Fill, FrameBuf};

/// FLAC allows at most 8 channels.
pub const MAX_CHANNELS: u16 = 8;
/// The largest rate STREAMINFO can hold (20 bits).
pub const MAX_RATE: u32 = 655_350;

/// An encoder of one stream: blocks are encoded as they fill.
pub struct FlacEncoder {
    config: Verified<config::Encoder>,
    /// The same settings without prediction (verbatim subframes), for the blocks where flacenc's
    /// predictors go wrong.
    fallback: Verified<config::Encoder>,
    info: StreamInfo,
    frame_buf: FrameBuf,
    context: Context,
    block: usize,
    channels: usize,
    /// Interleaved samples not yet making a whole block.
    pending: Vec<i32>,
    frame_number: usize,
    bits: u16,
}

fn verify_error(e: impl std::fmt::Display) -> String {
    format!("the FLAC encoder refused its settings: {e}")
}

impl FlacEncoder {
    /// An encoder for `channels` × `bits`-bit samples at `sample_rate`.
    pub fn new(sample_rate: u32, channels: u16, bits: u16) -> Result<FlacEncoder, String> {
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(format!("FLAC holds 1 to {MAX_CHANNELS} channels, not {channels}; write WAV instead"));
        }
        if !(1..=MAX_RATE).contains(&sample_rate) {
            return Err(format!("FLAC holds rates up to {MAX_RATE} Hz, not {sample_rate}; write WAV instead"));
        }
        let mut cfg = config::Encoder::default();
        // The engine already runs one file per worker; the encoder's own threads would compete.
        cfg.multithread = false;
        let block = cfg.block_size;
        let mut plain = cfg.clone();
        plain.subframe_coding.use_lpc = false;
        plain.subframe_coding.use_fixed = false;
        let config = cfg.into_verified().map_err(|(_, e)| verify_error(e))?;
        let fallback = plain.into_verified().map_err(|(_, e)| verify_error(e))?;
        let info = StreamInfo::new(sample_rate as usize, channels as usize, bits as usize).map_err(verify_error)?;
        let frame_buf = FrameBuf::with_size(channels as usize, block).map_err(verify_error)?;
        Ok(FlacEncoder {
            config,
            fallback,
            info,
            frame_buf,
            context: Context::new(bits as usize, channels as usize),
            block,
            channels: channels as usize,
            pending: Vec::with_capacity(block * channels as usize),
            frame_number: 0,
            bits,
        })
    }

    /// Bits per sample of the stream.
    pub fn bits(&self) -> u16 {
        self.bits
    }

    /// `fLaC` and the STREAMINFO block as they stand (written first, and again at the end).
    pub fn header(&self) -> Vec<u8> {
        let mut sink = ByteSink::new();
        // STREAMINFO is the last (only) metadata block: flag 0x80, type 0, 34 bytes.
        let _ = self.info.write(&mut sink);
        let mut out = Vec::with_capacity(42);
        out.extend_from_slice(b"fLaC");
        out.extend_from_slice(&[0x80, 0, 0, 34]);
        out.extend_from_slice(sink.as_slice());
        out
    }

    /// Adds interleaved samples (already in the stream's bit range); appends every completed
    /// frame's bytes to `out`.
    pub fn push(&mut self, samples: &[i32], out: &mut Vec<u8>) -> Result<(), String> {
        let whole = self.block * self.channels;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (whole - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == whole {
                self.encode_pending(out)?;
            }
        }
        Ok(())
    }

    fn encode_pending(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut target = (&mut self.frame_buf, &mut self.context);
        target.fill_interleaved(&self.pending).map_err(|e| format!("FLAC encoding failed: {e}"))?;
        let fail = |e: &dyn std::fmt::Display| format!("FLAC encoding failed: {e}");
        let encode = |config: &Verified<config::Encoder>| -> Result<_, String> {
            let frame = flacenc::encode_fixed_size_frame(config, &self.frame_buf, self.frame_number, &self.info).map_err(|e| fail(&e))?;
            let mut sink = ByteSink::new();
            frame.write(&mut sink).map_err(|e| fail(&e))?;
            Ok((frame, sink))
        };
        let (mut frame, mut sink) = encode(&self.config)?;
        // flacenc 0.5.1 misjudges the residual of some blocks of 24-bit audio (4 of the first 40
        // blocks of a sine in pink noise resampled to 16 kHz): its fixed and LPC predictors both
        // write ~33 MB for 4096 frames, counted as such by flacenc itself, so a 10-minute file
        // became 2 GB that symphonia refused (STREAMINFO's 24-bit frame size overflowed). A frame
        // larger than its samples stored plainly is encoded again verbatim, as the reference
        // encoder falls back to verbatim subframes.
        let plain = self.pending.len() * self.bits as usize / 8 + 64;
        if sink.as_slice().len() > plain {
            (frame, sink) = encode(&self.fallback)?;
        }
        self.info.update_frame_info(&frame);
        out.extend_from_slice(sink.as_slice());
        self.frame_number += 1;
        self.pending.clear();
        Ok(())
    }

    /// Encodes what is left and returns the final `fLaC` + STREAMINFO bytes, to be written over
    /// the ones at the start of the file.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<Vec<u8>, String> {
        self.encode_pending(out)?;
        self.info.set_md5_digest(&self.context.md5_digest());
        self.info.set_total_samples(self.context.total_samples());
        // A fixed-block stream states its block size as both minimum and maximum (the last, shorter
        // block does not count), as the reference encoder does.
        let _ = self.info.set_block_sizes(self.block, self.block);
        if self.frame_number == 0 {
            let _ = self.info.set_frame_sizes(0, 0);
        }
        Ok(self.header())
    }
}
