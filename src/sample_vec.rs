//! The storage of one buffer's samples: an owned `Vec`, or memory another owner lends read-only
//! (a caller's numpy array), so that input whose format already fits is read where it lies.
//!
//! Why: `run_sync` copied every input into a `Vec` before the first node read it. For 30 s of
//! 16 kHz f32 (1.9 MB) the copy and the page faults of its fresh buffer were ~6 % of a
//! `LogMelNode` call; for the main job it is the int16 input that `FormatConverterNode` reads once
//! and never writes. A lent buffer is read in place; a node that wants to write its input in place
//! (`GainNode`) takes it with [`SampleVec::make_mut`], which copies a lent buffer once, so what a
//! node may do with its input does not change.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What keeps lent memory alive: dropped when the last buffer reading it is (on whatever thread
/// that happens).
pub type Lender = Arc<dyn Send + Sync>;

/// Samples of one element type, owned or lent; reads as a slice either way.
pub struct SampleVec<T>(Store<T>);

enum Store<T> {
    Owned(Vec<T>),
    /// `finite`: every value was found finite when the buffer was lent (f32 input from Python is
    /// checked at the boundary), so a node need not scan it again; lent buffers are read-only, so
    /// it stays true.
    Lent { ptr: *const T, len: usize, finite: bool, _lender: Lender },
}

// SAFETY: a lent buffer is only ever read (no method hands out `&mut` to it: `make_mut` copies
// it first), and its lender keeps the memory allocated while any `SampleVec` points into it; the
// owned case is a `Vec<T>`, Send and Sync when `T` is.
unsafe impl<T: Send + Sync> Send for SampleVec<T> {}
unsafe impl<T: Send + Sync> Sync for SampleVec<T> {}

impl<T> SampleVec<T> {
    /// `len` elements at `ptr`, lent for as long as `lender` lives.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised, aligned `T`s that stay allocated while `lender`
    /// lives, and that nothing writes while any `SampleVec` made from them exists.
    pub unsafe fn lent(ptr: *const T, len: usize, lender: Lender) -> SampleVec<T> {
        SampleVec(Store::Lent { ptr, len, finite: false, _lender: lender })
    }

    /// This lent buffer, marked as having been checked: every value is finite (NaN and the
    /// infinities are not). A node may then skip its own scan ([`known_finite`](Self::known_finite)).
    /// Owned buffers are not marked (a node writing one could make it untrue).
    pub fn checked_finite(mut self) -> SampleVec<T> {
        if let Store::Lent { finite, .. } = &mut self.0 {
            *finite = true;
        }
        self
    }

    /// Whether every value is known to be finite without looking (see
    /// [`checked_finite`](Self::checked_finite)); `false` means not known, not that one is not.
    pub fn known_finite(&self) -> bool {
        matches!(self.0, Store::Lent { finite: true, .. })
    }

    /// The samples as a slice.
    pub fn as_slice(&self) -> &[T] {
        match &self.0 {
            Store::Owned(v) => v,
            // SAFETY: `lent`'s contract.
            Store::Lent { ptr, len, .. } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
        }
    }

    /// Whether the samples are lent rather than owned.
    pub fn is_lent(&self) -> bool {
        matches!(self.0, Store::Lent { .. })
    }
}

impl<T: Clone> SampleVec<T> {
    /// The samples as an owned `Vec`: moved out when owned, copied when lent.
    pub fn into_vec(self) -> Vec<T> {
        match self.0 {
            Store::Owned(v) => v,
            Store::Lent { .. } => self.as_slice().to_vec(),
        }
    }

    /// The samples to write in place: a lent buffer is copied into an owned one first.
    pub fn make_mut(&mut self) -> &mut Vec<T> {
        if let Store::Lent { .. } = self.0 {
            self.0 = Store::Owned(self.as_slice().to_vec());
        }
        match &mut self.0 {
            Store::Owned(v) => v,
            Store::Lent { .. } => unreachable!("made owned above"),
        }
    }
}

impl<T> Deref for SampleVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> From<Vec<T>> for SampleVec<T> {
    fn from(v: Vec<T>) -> SampleVec<T> {
        SampleVec(Store::Owned(v))
    }
}

impl<T> FromIterator<T> for SampleVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> SampleVec<T> {
        SampleVec(Store::Owned(iter.into_iter().collect()))
    }
}

impl<'a, T> IntoIterator for &'a SampleVec<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> std::slice::Iter<'a, T> {
        self.as_slice().iter()
    }
}

impl<T> Default for SampleVec<T> {
    fn default() -> SampleVec<T> {
        SampleVec(Store::Owned(Vec::new()))
    }
}

/// A clone of a lent buffer shares the lender (no copy): the buffer is read-only either way.
impl<T: Clone> Clone for SampleVec<T> {
    fn clone(&self) -> SampleVec<T> {
        match &self.0 {
            Store::Owned(v) => SampleVec(Store::Owned(v.clone())),
            Store::Lent { ptr, len, finite, _lender } => {
                SampleVec(Store::Lent { ptr: *ptr, len: *len, finite: *finite, _lender: _lender.clone() })
            }
        }
    }
}

impl<T: PartialEq> PartialEq for SampleVec<T> {
    fn eq(&self, other: &SampleVec<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: fmt::Debug> fmt::Debug for SampleVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// The serde form is the sequence of samples, as a `Vec`'s: owned and lent buffers serialise
/// alike, and deserialise owned.
impl<T: Serialize> Serialize for SampleVec<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SampleVec<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SampleVec<T>, D::Error> {
        Vec::<T>::deserialize(d).map(SampleVec::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lent(values: Vec<f32>) -> (SampleVec<f32>, Arc<Vec<f32>>) {
        let lender = Arc::new(values);
        // SAFETY: the Arc keeps the Vec (and its buffer) alive and nothing writes it.
        let v = unsafe { SampleVec::lent(lender.as_ptr(), lender.len(), lender.clone()) };
        (v, lender)
    }

    #[test]
    fn a_lent_buffer_reads_in_place_and_keeps_its_lender_alive() {
        let (v, lender) = lent(vec![1.0, 2.0, 3.0]);
        assert!(v.is_lent());
        assert_eq!(v.as_ptr(), lender.as_ptr());
        assert_eq!(Arc::strong_count(&lender), 2);
        let copy = v.clone();
        assert_eq!(copy.as_ptr(), lender.as_ptr());
        assert_eq!(Arc::strong_count(&lender), 3);
        drop((v, copy));
        assert_eq!(Arc::strong_count(&lender), 1);
    }

    #[test]
    fn only_a_lent_buffer_marked_checked_is_known_finite() {
        let (v, _lender) = lent(vec![1.0, 2.0]);
        assert!(!v.known_finite());
        let v = v.checked_finite();
        assert!(v.known_finite() && v.clone().known_finite());
        let mut w = v.clone();
        w.make_mut()[0] = f32::NAN;
        assert!(!w.known_finite(), "a copy made to be written is not known finite");
        assert!(!SampleVec::from(vec![1.0f32]).checked_finite().known_finite());
    }

    #[test]
    fn make_mut_copies_a_lent_buffer_and_leaves_the_lender_untouched() {
        let (mut v, lender) = lent(vec![1.0, 2.0, 3.0]);
        v.make_mut()[0] = 9.0;
        assert!(!v.is_lent());
        assert_eq!(&v[..], &[9.0, 2.0, 3.0]);
        assert_eq!(&lender[..], &[1.0, 2.0, 3.0]);
        assert_eq!(Arc::strong_count(&lender), 1, "the copy no longer holds the lender");
        let mut owned = SampleVec::from(vec![1.0f32, 2.0]);
        let before = owned.as_ptr();
        owned.make_mut()[0] = 3.0;
        assert_eq!(owned.as_ptr(), before, "an owned buffer is written where it is");
        assert_eq!(&owned[..], &[3.0, 2.0]);
    }

    #[test]
    fn lent_and_owned_compare_and_serialise_alike() {
        let (v, _lender) = lent(vec![0.5, -0.25]);
        let owned = SampleVec::from(vec![0.5f32, -0.25]);
        assert_eq!(v, owned);
        assert_eq!(serde_json::to_string(&v).unwrap(), serde_json::to_string(&owned).unwrap());
        let back: SampleVec<f32> = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert!(!back.is_lent());
        assert_eq!(back, owned);
        assert_eq!(v.clone().into_vec(), vec![0.5, -0.25]);
    }
}
