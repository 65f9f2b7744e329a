//! Features as `.npy` files (NumPy's format 1.0: a magic string, a Python-literal header, then the
//! little-endian f32 values row by row): what `remotemedia batch` writes for a features output,
//! readable with `np.load` as a `(frames, bins)` float32 array.

use std::io::Write as _;
use std::path::Path;

use crate::data::Features;

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

/// The file's bytes: header padded with spaces to a multiple of 64 bytes, ending in a newline.
pub fn features_npy(f: &Features) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", f.frames(), f.bins);
    let unpadded = MAGIC.len() + 2 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + header.len() + 4 * f.values.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for x in &f.values {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Writes `f` to `path` whole or not at all: the bytes go to a temporary file next to it, which
/// is renamed over `path` once complete.
pub fn write_features(path: &Path, f: &Features) -> Result<(), String> {
    let tmp = path.with_extension("npy.partial");
    let fail = |e: std::io::Error| format!("cannot write '{}': {e}", path.display());
    let result = std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(&features_npy(f)).and_then(|_| file.sync_data()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_values_follow_row_by_row() {
        let f = Features::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 100.0).expect("features");
        let bytes = features_npy(&f);
        assert_eq!(&bytes[..8], MAGIC);
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + len]).expect("ascii");
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "{header}");
        assert!(header.ends_with('\n'));
        let values: Vec<f32> = bytes[10 + len..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        assert_eq!(values, f.values);
    }
}
