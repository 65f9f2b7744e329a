//! The one piece of MP4 gapless information symphonia 0.6 does not apply yet: the edit list's
//! start offset (`moov/trak/edts/elst` media time), which AAC encoders (ffmpeg, Apple) set to
//! their priming delay, usually 1024 or 2112 frames. Read here from the boxes; the decoder trims
//! it from the decoded start and stops at the track's length after it, so the encoder's padding
//! at the end goes too and the decode has the length of the audio that was encoded.

use std::io::{Read, Seek, SeekFrom};

/// Box headers read at most (a damaged file cannot make this loop long).
const MAX_BOXES: usize = 4096;

struct BoxHeader {
    kind: [u8; 4],
    /// Offset of the body.
    body: u64,
    /// Offset just past the box.
    end: u64,
}

fn read_header<R: Read + Seek>(r: &mut R, at: u64, limit: u64) -> Option<BoxHeader> {
    if at + 8 > limit {
        return None;
    }
    r.seek(SeekFrom::Start(at)).ok()?;
    let mut h = [0u8; 8];
    r.read_exact(&mut h).ok()?;
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
    let kind = [h[4], h[5], h[6], h[7]];
    let (size, body) = match size32 {
        0 => (limit - at, at + 8),
        1 => {
            let mut l = [0u8; 8];
            r.read_exact(&mut l).ok()?;
            (u64::from_be_bytes(l), at + 16)
        }
        n => (n, at + 8),
    };
    let end = at.checked_add(size)?;
    if size < 8 || end > limit || body > end {
        return None;
    }
    Some(BoxHeader { kind, body, end })
}

/// The boxes directly inside `[from, to)`.
fn children<R: Read + Seek>(r: &mut R, from: u64, to: u64, count: &mut usize) -> Vec<BoxHeader> {
    let mut out = Vec::new();
    let mut at = from;
    while *count < MAX_BOXES {
        let Some(h) = read_header(r, at, to) else { break };
        *count += 1;
        at = h.end;
        out.push(h);
    }
    out
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The edit list's media start of the track with `track_id`, in the track's own timescale
/// (which, for audio, is its sample rate), when it has one and it is positive.
pub fn edit_start<R: Read + Seek>(r: &mut R, len: u64, track_id: u32) -> Option<u64> {
    let mut count = 0;
    let top = children(r, 0, len, &mut count);
    let moov = top.iter().find(|b| &b.kind == b"moov")?;
    for trak in children(r, moov.body, moov.end, &mut count).iter().filter(|b| &b.kind == b"trak") {
        let inner = children(r, trak.body, trak.end, &mut count);
        let tkhd = inner.iter().find(|b| &b.kind == b"tkhd")?;
        let mut head = [0u8; 24];
        r.seek(SeekFrom::Start(tkhd.body)).ok()?;
        r.read_exact(&mut head).ok()?;
        // tkhd: version (1 byte), flags (3), then times of 4 (v0) or 8 (v1) bytes, then the id.
        let id = if head[0] == 1 { be_u32(&head, 20)? } else { be_u32(&head, 12)? };
        if id != track_id {
            continue;
        }
        let edts = inner.iter().find(|b| &b.kind == b"edts")?;
        let elst = children(r, edts.body, edts.end, &mut count).into_iter().find(|b| &b.kind == b"elst")?;
        let n = (elst.end - elst.body).min(64) as usize;
        let mut b = vec![0u8; n];
        r.seek(SeekFrom::Start(elst.body)).ok()?;
        r.read_exact(&mut b).ok()?;
        let version = b[0];
        let entries = be_u32(&b, 4)?;
        if entries == 0 {
            return None;
        }
        // The first entry: segment duration, then media time (-1 marks an empty edit).
        let media_time: i64 = if version == 1 {
            i64::from_be_bytes(b.get(16..24)?.try_into().ok()?)
        } else {
            be_u32(&b, 12)? as i32 as i64
        };
        return (media_time > 0).then_some(media_time as u64);
    }
    None
}
