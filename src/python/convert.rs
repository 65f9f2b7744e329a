//! Conversions between Python values and payloads. numpy arrays come in with one copy (into the
//! engine's own buffer) and go out with none (the buffer is handed to numpy).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use numpy::{Element, IntoPyArray, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple, PyType};
use serde_json::Value;

use crate::data::{AudioBuffer, Clip, Features, Payload, SampleVec, Samples, VadResult};
use crate::sample_vec::Lender;
use crate::limits::{VALUE_ITEMS, VALUE_NESTING};

/// Reads `(samples, sample_rate)` (or an object with `.samples` and `.sample_rate`) into audio.
/// Errors are plain messages; the caller raises them as `InputError`.
pub fn audio_from_py(obj: &Bound<'_, PyAny>, what: &str) -> Result<AudioBuffer, String> {
    check_audio(obj, what)?.copy()
}

/// A numpy array of one of the engine's sample formats.
enum SampleArray<'py> {
    F32(Bound<'py, PyArrayDyn<f32>>),
    I16(Bound<'py, PyArrayDyn<i16>>),
    I32(Bound<'py, PyArrayDyn<i32>>),
}

/// Audio that has passed every check while still in the caller's numpy array: [`copy`] makes
/// the engine's one copy of it. Checking a whole batch first and copying it part by part lets
/// a batch refuse a bad item before anything runs and still start work before every item is
/// copied (see `NativePipeline::run_batch`).
///
/// [`copy`]: AudioView::copy
pub struct AudioView<'py> {
    array: SampleArray<'py>,
    rate: u32,
    channels: u16,
    /// What the input is called in error messages ("input", "input 'src'").
    what: Cow<'static, str>,
}

/// Checks `(samples, sample_rate)` (or an object with `.samples` and `.sample_rate`) without
/// copying the samples. Errors are plain messages; the caller raises them as `InputError`.
pub fn check_audio<'py>(obj: &Bound<'py, PyAny>, what: &str) -> Result<AudioView<'py>, String> {
    let (array, rate) = unpack_audio(obj, what)?;
    check_parts(array, rate, Cow::Owned(what.to_string()))
}

/// Most channels a [`plain_audio`] array may have: at most the package's `audio.MAX_CHANNELS`
/// (256), so that nothing the package would refuse in its own words goes the plain way. Why
/// not the same bound: that limit is the package's, not the engine's, and any bound up to it is
/// right here (a wider array takes the package's path); 8 covers 7.1 audio.
const PLAIN_MAX_CHANNELS: usize = 8;

/// `(samples, sample_rate)` as the package's `pipeline._plain_audio_tuple` accepts it unchanged
/// (a `tuple` of an `ndarray` -- not a subclass -- of float32, int16 or int32, 1-D or 2-D with
/// 1 to [`PLAIN_MAX_CHANNELS`] channels, not empty, C-contiguous, and an `int` from 1 to
/// 2**32-1), checked as a run's input; `None` for anything else, which the package converts or
/// refuses in its own words before the engine sees it (see `NativePipeline::run_plain`).
pub fn plain_audio<'py>(obj: &Bound<'py, PyAny>) -> Option<Result<AudioView<'py>, String>> {
    let t = obj.cast_exact::<PyTuple>().ok()?;
    if t.len() != 2 {
        return None;
    }
    let (array, rate) = (t.get_item(0).ok()?, t.get_item(1).ok()?);
    let r: i64 = rate.cast_exact::<PyInt>().ok()?.extract().ok()?;
    if r <= 0 || r > u32::MAX as i64 {
        return None;
    }
    // SAFETY: a type check of a live object, under the GIL.
    if unsafe { numpy::npyffi::PyArray_CheckExact(obj.py(), array.as_ptr()) } == 0 {
        return None;
    }
    let u = array.cast::<PyUntypedArray>().ok()?;
    match u.shape() {
        [n] if *n > 0 => {}
        [n, c] if *n > 0 && (1..=PLAIN_MAX_CHANNELS).contains(c) => {}
        _ => return None,
    }
    if !u.is_c_contiguous() {
        return None;
    }
    // An unaligned array takes the general checks (which copy it); every other check of
    // `check_parts` on the rate and the array's kind has been made above: only the samples' own
    // are left. Why not `check_parts` again: its second dtype lookup and rate extraction were
    // ~50 ns of a ~8 µs run on 0.01 s of audio.
    if !u.is_aligned() {
        return Some(check_parts(array, rate, Cow::Borrowed("input")));
    }
    let typed = sample_array(&array)?;
    Some(check_samples(typed, r as u32, Cow::Borrowed("input")))
}

/// The samples and the rate of `(samples, sample_rate)` or of an object with `.samples` and
/// `.sample_rate`.
fn unpack_audio<'py>(obj: &Bound<'py, PyAny>, what: &str) -> Result<(Bound<'py, PyAny>, Bound<'py, PyAny>), String> {
    Ok(if let Ok(t) = obj.cast::<PyTuple>() {
        if t.len() != 2 {
            return Err(format!("{what}: expected (samples, sample_rate), got a tuple of {} items", t.len()));
        }
        (t.get_item(0).map_err(|e| e.to_string())?, t.get_item(1).map_err(|e| e.to_string())?)
    } else if obj.hasattr("samples").unwrap_or(false) && obj.hasattr("sample_rate").unwrap_or(false) {
        (obj.getattr("samples").map_err(|e| e.to_string())?, obj.getattr("sample_rate").map_err(|e| e.to_string())?)
    } else {
        return Err(format!("{what}: expected (samples, sample_rate) or remotemedia.Audio, got {}", type_name(obj)));
    })
}

/// The checks of [`check_audio`] on the samples and the rate.
fn check_parts<'py>(array: Bound<'py, PyAny>, rate: Bound<'py, PyAny>, what: Cow<'static, str>) -> Result<AudioView<'py>, String> {
    // A bool is an int to Python (and to extract), but True is no sample rate.
    if rate.cast::<PyBool>().is_ok() {
        return Err(format!("{what}: sample_rate must be an integer, got bool"));
    }
    let rate: i64 = rate
        .extract()
        .map_err(|_| format!("{what}: sample_rate must be an integer, got {}", type_name(&rate)))?;
    if rate <= 0 || rate > u32::MAX as i64 {
        return Err(format!("{what}: sample_rate must be a positive number of Hz, got {rate}"));
    }
    // An unaligned array (a view at an odd byte offset, as np.frombuffer can give) cannot be read
    // as a slice, and np.ascontiguousarray would return it unchanged: numpy's copy is aligned.
    let array = match array.cast::<PyUntypedArray>() {
        Ok(u) if !u.is_aligned() => array.call_method0("copy").map_err(|e| format!("{what}: {e}"))?,
        _ => array,
    };
    let array = if let Some(a) = sample_array(&array) {
        a
    } else {
        // The dtype of an array of another type; the type of anything else (an Audio has a dtype too).
        let dtype = match array.cast::<PyUntypedArray>() {
            Ok(a) => a.dtype().to_string(),
            Err(_) => type_name(&array),
        };
        return Err(format!("{what}: samples must be a numpy array of float32, int16 or int32, got {dtype}"));
    };
    check_samples(array, rate as u32, what)
}

/// The checks of [`check_parts`] on the samples themselves (shape, layout, finiteness), for a
/// rate already checked.
fn check_samples<'py>(array: SampleArray<'py>, rate: u32, what: Cow<'static, str>) -> Result<AudioView<'py>, String> {
    let untyped = array.untyped();
    let shape = untyped.shape();
    if !untyped.is_c_contiguous() {
        return Err(not_contiguous(&what));
    }
    let channels = match shape {
        [_] => 1,
        [_, c] => *c,
        _ => {
            return Err(format!(
                "{what}: samples must be 1-D (mono) or 2-D (frames, channels), got a {}-D array",
                shape.len()
            ))
        }
    };
    if shape.iter().product::<usize>() == 0 {
        return Err(format!("{what}: samples are empty (shape {shape:?})"));
    }
    if channels == 0 || channels > u16::MAX as usize {
        return Err(format!("{what}: unsupported channel count {channels}"));
    }
    if let SampleArray::F32(a) = &array {
        let v = slice_of(a, &what)?;
        // Same words as the Python package's own check, so both runtimes say the same thing.
        if let Some(i) = crate::nodes::first_non_finite(v) {
            let count = v.iter().filter(|x| !x.is_finite()).count();
            return Err(format!(
                "samples contain NaN or infinity ({count} values, the first at frame {})",
                i / channels.max(1)
            ));
        }
    }
    Ok(AudioView { array, rate, channels: channels as u16, what })
}

/// `array` as one of the engine's sample formats, if it is a numpy array of one (a dtype equal
/// to float32, int16 or int32, as numpy compares them).
///
/// Why the identity test first: an array made the usual way holds numpy's one descriptor of its
/// built-in type, and comparing pointers is free, where each typed cast asks numpy whether the
/// dtypes are equivalent (a cast-safety lookup, `PyArray_GetCastInfo`): up to three such calls
/// per input, twice on the fast path of `run_sync`. Any other descriptor (byte-swapped, with
/// metadata, another name for the same type) goes through the casts as before.
fn sample_array<'py>(array: &Bound<'py, PyAny>) -> Option<SampleArray<'py>> {
    let py = array.py();
    if let Ok(u) = array.cast::<PyUntypedArray>() {
        let d = u.dtype();
        // SAFETY: `array` is a numpy array whose descriptor is that of the type it is cast to.
        unsafe {
            if d.as_ptr() == f32::get_dtype(py).as_ptr() {
                return Some(SampleArray::F32(array.cast_unchecked::<PyArrayDyn<f32>>().clone()));
            }
            if d.as_ptr() == i16::get_dtype(py).as_ptr() {
                return Some(SampleArray::I16(array.cast_unchecked::<PyArrayDyn<i16>>().clone()));
            }
            if d.as_ptr() == i32::get_dtype(py).as_ptr() {
                return Some(SampleArray::I32(array.cast_unchecked::<PyArrayDyn<i32>>().clone()));
            }
        }
    }
    if let Ok(a) = array.cast::<PyArrayDyn<f32>>() {
        Some(SampleArray::F32(a.clone()))
    } else if let Ok(a) = array.cast::<PyArrayDyn<i16>>() {
        Some(SampleArray::I16(a.clone()))
    } else if let Ok(a) = array.cast::<PyArrayDyn<i32>>() {
        Some(SampleArray::I32(a.clone()))
    } else {
        None
    }
}

/// The samples of a C-contiguous array, read under the GIL without numpy's borrow tracking.
///
/// SAFETY (why no `readonly()`): the caller holds the GIL for as long as the slice lives and
/// runs no Python code meanwhile, so nothing in Python writes the array; the engine never takes
/// a writable borrow of an input array. The tracked borrow cost ~0.1-0.2 µs per call (a lock
/// and a hash lookup in numpy's shared borrow table), twice per run (check, then copy).
fn slice_of<'a, T: numpy::Element>(a: &'a Bound<'_, PyArrayDyn<T>>, what: &str) -> Result<&'a [T], String> {
    unsafe { a.as_slice() }.map_err(|_| not_contiguous(what))
}

fn not_contiguous(what: &str) -> String {
    format!("{what}: samples must be a C-contiguous array (use np.ascontiguousarray)")
}

impl<'py> SampleArray<'py> {
    /// The array without its element type: shape, strides, length.
    fn untyped(&self) -> &Bound<'py, PyUntypedArray> {
        match self {
            SampleArray::F32(a) => a.as_untyped(),
            SampleArray::I16(a) => a.as_untyped(),
            SampleArray::I32(a) => a.as_untyped(),
        }
    }
}

impl AudioView<'_> {
    /// The engine's own copy of the samples.
    pub fn copy(&self) -> Result<AudioBuffer, String> {
        fn read<T: numpy::Element + Clone>(a: &Bound<'_, PyArrayDyn<T>>, what: &str) -> Result<Vec<T>, String> {
            Ok(slice_of(a, what)?.to_vec())
        }
        let samples = match &self.array {
            SampleArray::F32(a) => Samples::F32(read(a, &self.what)?.into()),
            SampleArray::I16(a) => Samples::I16(read(a, &self.what)?.into()),
            SampleArray::I32(a) => Samples::I32(read(a, &self.what)?.into()),
        };
        AudioBuffer::new(samples, self.rate, self.channels).map_err(|e| format!("{}: {e}", self.what))
    }

    /// The samples lent to the engine: read where they lie in the caller's array, with no copy.
    /// For calls that hold their caller until the engine is done with the input (`run_sync`,
    /// `run_batch`): the array must not be written meanwhile, which a caller blocked in the call
    /// does not do (a second Python thread writing it would race, as with numpy's own
    /// GIL-free operations). The buffer holds a reference to the array, so its memory outlives
    /// every reader, even one still running after Ctrl-C abandoned the call; dropped without
    /// the GIL, that reference is released by pyo3 the next time a thread holds the GIL. Calls
    /// that return before the engine reads the input (`run_async`, streaming pushes, whose nodes
    /// may keep samples past the call) [`copy`](Self::copy) it instead.
    ///
    /// Why: the copy was a pass over the whole input plus the page faults of a fresh buffer,
    /// ~6 % of a `LogMelNode` call on 30 s and what `run_batch`'s calling thread spent most on.
    pub fn lend(&self) -> Result<AudioBuffer, String> {
        fn lent<T: numpy::Element + Send + Sync + 'static>(a: &Bound<'_, PyArrayDyn<T>>, what: &str) -> Result<SampleVec<T>, String> {
            let slice = slice_of(a, what)?;
            let (ptr, len) = (slice.as_ptr(), slice.len());
            let lender: Lender = Arc::new(a.clone().unbind());
            // SAFETY: `ptr` is the array's contiguous buffer of `len` elements (checked above
            // under the GIL); the lender holds the array, which keeps that buffer allocated for
            // as long as any `SampleVec` made from it; the engine only reads lent samples.
            Ok(unsafe { SampleVec::lent(ptr, len, lender) })
        }
        let samples = match &self.array {
            // `check_samples` found every f32 finite: nodes need not scan them again.
            SampleArray::F32(a) => Samples::F32(lent(a, &self.what)?.checked_finite()),
            SampleArray::I16(a) => Samples::I16(lent(a, &self.what)?),
            SampleArray::I32(a) => Samples::I32(lent(a, &self.what)?),
        };
        AudioBuffer::new(samples, self.rate, self.channels).map_err(|e| format!("{}: {e}", self.what))
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Arrays of at most this many bytes are copied into numpy's own memory rather than handed
/// over (see [`vec_to_py`]): numpy keeps a cache of such small blocks.
const SMALL_ARRAY_BYTES: usize = 1024;

/// A buffer as a 1-D numpy array: a long one handed over (no copy; a second Python object, the
/// buffer's owner, becomes the array's base), a short one copied, which is cheaper than making,
/// attaching and later freeing that owner object. Either way the array is writable and the
/// caller's own.
fn vec_to_py<T: Element>(py: Python<'_>, v: Vec<T>) -> Bound<'_, numpy::PyArray1<T>> {
    if std::mem::size_of_val(v.as_slice()) <= SMALL_ARRAY_BYTES {
        numpy::PyArray1::from_slice(py, &v)
    } else {
        v.into_pyarray(py)
    }
}

/// Audio samples as a numpy array, 1-D for mono, `(frames, channels)` otherwise. No copy but
/// for short ones (see [`vec_to_py`]): the buffer is handed to numpy. Samples lent by the
/// caller (an input passed through) are copied, so an output never aliases an input array.
fn samples_to_py<'py>(py: Python<'py>, a: AudioBuffer) -> PyResult<Bound<'py, PyAny>> {
    let frames = a.frames();
    let channels = a.channels as usize;
    fn shaped<'py, T: numpy::Element + Clone>(py: Python<'py>, v: SampleVec<T>, frames: usize, channels: usize) -> PyResult<Bound<'py, PyAny>> {
        // Lent samples are copied once, straight into numpy's memory when that is where a short
        // array goes anyway (`into_vec` then `vec_to_py` would copy a short one twice).
        let arr = if v.is_lent() && std::mem::size_of_val(v.as_slice()) <= SMALL_ARRAY_BYTES {
            numpy::PyArray1::from_slice(py, &v)
        } else {
            vec_to_py(py, v.into_vec())
        };
        if channels == 1 {
            Ok(arr.into_any())
        } else {
            Ok(arr.reshape([frames, channels])?.into_any())
        }
    }
    match a.samples {
        Samples::F32(v) => shaped(py, v, frames, channels),
        Samples::I16(v) => shaped(py, v, frames, channels),
        Samples::I32(v) => shaped(py, v, frames, channels),
    }
}

/// Audio as `(array, sample_rate)`. No copy.
fn audio_to_py<'py>(py: Python<'py>, a: AudioBuffer) -> PyResult<Bound<'py, PyAny>> {
    let rate = a.sample_rate;
    let array = samples_to_py(py, a)?;
    Ok(PyTuple::new(py, [array, rate.into_pyobject(py)?.into_any()])?.into_any())
}

/// Speech segments as a list of `(start_s, end_s)` tuples.
fn segments_to_py<'py>(py: Python<'py>, segments: &[(f64, f64)]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for &(s, e) in segments {
        list.append(PyTuple::new(py, [s, e])?)?;
    }
    Ok(list)
}

/// A VAD result as a `VadResult` (a dict subclass) when the package registered it, else a dict.
fn vad_to_py<'py>(py: Python<'py>, v: VadResult, types: Option<&PackageTypes>) -> PyResult<Bound<'py, PyAny>> {
    // `VadResult.__new__` (dict's): its `__init__` would only add an empty `probabilities`
    // array (numpy's zeros, ~0.5 µs a call) that is set here anyway.
    let d = match types {
        Some(t) => {
            new_instance(t.vad_result.bind(py))?
        }
        None => PyDict::new(py).into_any(),
    };
    // Set as a dict's items (`PyDict_SetItem`), not through the generic item protocol: a
    // `VadResult` is a dict subclass that does not override `__setitem__`.
    let d = d.cast_into::<PyDict>()?;
    d.set_item(intern!(py, "segments"), segments_to_py(py, &v.segments)?)?;
    d.set_item(intern!(py, "frames"), vec_to_py(py, v.frames))?;
    d.set_item(intern!(py, "probabilities"), vec_to_py(py, v.probabilities))?;
    let audio = match types {
        Some(t) => t.audio(py, v.audio)?,
        None => audio_to_py(py, v.audio)?,
    };
    d.set_item(intern!(py, "audio"), audio)?;
    Ok(d.into_any())
}

/// Features as a `(frames, bins)` float32 array (no copy) with their frame rate: a `Features`
/// (the package's ndarray subclass) when registered, else `{"values": array, "frame_rate": r}`.
fn features_to_py<'py>(py: Python<'py>, f: Features, types: Option<&PackageTypes>) -> PyResult<Bound<'py, PyAny>> {
    let (frames, bins, rate) = (f.frames(), f.bins, f.frame_rate);
    let array = f.values.into_pyarray(py).reshape([frames, bins])?.into_any();
    match types.and_then(|t| t.features.as_ref()) {
        Some(cls) => {
            let obj = array.call_method1(intern!(py, "view"), (cls.bind(py),))?;
            obj.setattr(intern!(py, "frame_rate"), rate)?;
            Ok(obj)
        }
        None => {
            let d = PyDict::new(py);
            d.set_item(intern!(py, "values"), array)?;
            d.set_item(intern!(py, "frame_rate"), rate)?;
            Ok(d.into_any())
        }
    }
}

pub fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (_, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for x in a {
                l.append(json_to_py(py, x)?)?;
            }
            l.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// The package's own payload classes, registered by `remotemedia._runtime` when it loads this
/// module. Outputs are then built here, in one pass, as `Audio` and `VadResult` objects, instead
/// of as tuples and dicts that Python code converts again (that second pass cost ~2 µs for one
/// VAD result, a fifth of a streamed chunk's round trip).
struct PackageTypes {
    /// The `Audio` class (`__slots__ = ("_samples", "_sample_rate")`).
    audio: Py<PyAny>,
    /// The `VadResult` class (a `dict` subclass).
    vad_result: Py<PyAny>,
    /// The `Clip` class (an `Audio` subclass with one more slot, `_start_frame`).
    clip: Py<PyAny>,
    /// The `Features` class (an `ndarray` subclass with `frame_rate`).
    features: Option<Py<PyAny>>,
}

impl PackageTypes {
    /// An `Audio` wrapping engine output as `Audio._trusted` does (no checks), built without
    /// running Python code: `Audio.__new__(Audio)` and its two slots.
    fn audio<'py>(&self, py: Python<'py>, a: AudioBuffer) -> PyResult<Bound<'py, PyAny>> {
        let obj = new_instance(self.audio.bind(py))?;
        obj.setattr(intern!(py, "_sample_rate"), rate_to_py(py, a.sample_rate))?;
        obj.setattr(intern!(py, "_samples"), samples_to_py(py, a)?)?;
        Ok(obj)
    }

    /// A `Clip`, built as [`audio`](Self::audio) builds an `Audio`.
    fn clip<'py>(&self, py: Python<'py>, c: Clip) -> PyResult<Bound<'py, PyAny>> {
        let obj = new_instance(self.clip.bind(py))?;
        obj.setattr(intern!(py, "_sample_rate"), c.audio.sample_rate)?;
        obj.setattr(intern!(py, "_start_frame"), c.start_frame)?;
        obj.setattr(intern!(py, "_samples"), samples_to_py(py, c.audio)?)?;
        Ok(obj)
    }
}

/// The usual sample rates, made into Python ints once: an int above 256 is a new object each
/// time it is made (~25 ns to make and later free, for every audio output of every run).
static RATES: pyo3::sync::PyOnceLock<Vec<(u32, Py<PyInt>)>> = pyo3::sync::PyOnceLock::new();

/// `rate` as a Python int: one of [`RATES`] when it is there (ints are immutable, so sharing
/// one is safe), else a new one.
fn rate_to_py(py: Python<'_>, rate: u32) -> Bound<'_, PyInt> {
    let rates = RATES.get_or_init(py, || {
        [8000u32, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000]
            .into_iter()
            .map(|r| {
                let Ok(i) = r.into_pyobject(py);
                (r, i.unbind())
            })
            .collect()
    });
    match rates.iter().find(|(r, _)| *r == rate) {
        Some((_, i)) => i.bind(py).clone(),
        None => {
            let Ok(i) = rate.into_pyobject(py);
            i
        }
    }
}

/// `cls.__new__(cls)` for a class of the package (no `__init__`): the class's own `tp_new`
/// called with no arguments, as `type.__call__` calls it, which is what `__new__` (looked up on
/// the class, the base's `tp_new_wrapper`) ends in too. Why: the lookup, the argument tuple and
/// the wrapper's checks cost ~0.1 µs, and a VAD result builds two such objects.
fn new_instance<'py>(cls: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = cls.py();
    let Ok(ty) = cls.cast::<PyType>() else { return cls.call_method1(intern!(py, "__new__"), (cls,)) };
    // SAFETY: `ty` is a live type object under the GIL; a non-null `Py_tp_new` slot is a
    // `newfunc`, called here with an empty argument tuple and no keywords, and returns a new
    // reference or null with an exception set.
    unsafe {
        let slot = pyo3::ffi::PyType_GetSlot(ty.as_type_ptr(), pyo3::ffi::Py_tp_new);
        if slot.is_null() {
            return cls.call_method1(intern!(py, "__new__"), (cls,));
        }
        let new: pyo3::ffi::newfunc = std::mem::transmute(slot);
        let args = PyTuple::empty(py);
        Bound::from_owned_ptr_or_err(py, new(ty.as_type_ptr(), args.as_ptr(), std::ptr::null_mut()))
    }
}

static PACKAGE_TYPES: OnceLock<PackageTypes> = OnceLock::new();

/// Registers the classes outputs are built as (see [`payload_to_py`]); the first registration
/// in a process stays.
#[pyfunction]
#[pyo3(signature = (audio, vad_result, clip, features=None))]
pub fn register_payload_types(audio: Py<PyAny>, vad_result: Py<PyAny>, clip: Py<PyAny>, features: Option<Py<PyAny>>) {
    let _ = PACKAGE_TYPES.set(PackageTypes { audio, vad_result, clip, features });
}

/// A payload as a Python value: `Audio` and `VadResult` objects (and dicts of them, JSON values)
/// once the package has registered its classes; before that (a bare `_native` import) the plain
/// shapes of docs/python.md: audio as `(array, rate)`, a VAD result as a dict, clips as a list of
/// `{"start_frame": k, "audio": (array, rate)}` dicts.
pub fn payload_to_py<'py>(py: Python<'py>, p: Payload) -> PyResult<Bound<'py, PyAny>> {
    let types = PACKAGE_TYPES.get();
    match p {
        Payload::Audio(a) => match types {
            Some(t) => t.audio(py, a),
            None => audio_to_py(py, a),
        },
        Payload::Vad(v) => vad_to_py(py, *v, types),
        Payload::Clips(clips) => {
            let list = PyList::empty(py);
            for c in clips {
                match types {
                    Some(t) => list.append(t.clip(py, c)?)?,
                    None => {
                        let d = PyDict::new(py);
                        d.set_item(intern!(py, "start_frame"), c.start_frame)?;
                        d.set_item(intern!(py, "audio"), audio_to_py(py, c.audio)?)?;
                        list.append(d)?;
                    }
                }
            }
            Ok(list.into_any())
        }
        Payload::Features(f) => features_to_py(py, f, types),
        Payload::Json(v) => json_to_py(py, &v),
        Payload::Map(m) => {
            let d = PyDict::new(py);
            for (k, v) in m {
                d.set_item(k, payload_to_py(py, v)?)?;
            }
            Ok(d.into_any())
        }
    }
}

/// A value a Python node returned, as a payload: audio (an `Audio` or a `(array, rate)` tuple),
/// a non-empty list of clips, features, a VAD result, a dict (a map of payloads), or a JSON value. Errors are plain messages naming where in the
/// output the problem is; the caller raises them as `InputError` naming the node.
///
/// The rules (the pure-Python runtime applies the same ones, `remotemedia.payloads.node_output`,
/// with the same words):
/// - audio at the top or as a value of (nested) dicts, checked as run inputs are;
/// - at the same places: a non-empty list whose items all have `start_frame` and `samples` (the
///   package's `Clip`s) as clips; a 2-D float32 array with `frame_rate` (the package's
///   `Features`), or a dict of exactly `values` (such an array) and `frame_rate`, as features; a
///   dict of exactly `segments`, `frames`, `audio` (and `probabilities`), as a `VadResult` has
///   them, as a VAD result, so a Python VAD node's output feeds a `SegmentNode` as the native
///   VAD's does;
/// - dicts with string keys; lists and tuples (as lists); `None`, `bool`, integers from -2**63 to
///   2**64-1, finite floats, strings; numpy arrays and scalars (and anything else with `tolist`)
///   as the lists and numbers `tolist()` gives;
/// - refused: NaN and infinities (JSON numbers are finite), larger integers, sets (no order),
///   iterators and generators (never consumed: one could be endless), any other object, audio
///   inside a list;
/// - bounded: at most `limits::VALUE_NESTING` levels of containers, at most
///   `limits::VALUE_ITEMS` values, no container that contains itself. Without these a list nested
///   ~4,000 deep, or one containing itself, overflowed the stack (SIGSEGV).
pub fn payload_from_py(obj: &Bound<'_, PyAny>) -> Result<Payload, String> {
    Walk::default().payload(obj)
}

/// One step of the path from a node's output to the value being converted.
enum Step {
    Index(usize),
    Key(String),
}

/// The state of one conversion: where it is, what it has counted, which containers it is inside.
#[derive(Default)]
struct Walk {
    path: Vec<Step>,
    /// The containers the walk is inside, outermost first (their addresses).
    open: Vec<usize>,
    items: usize,
}

/// Whether a value is audio: an object with `samples` and `sample_rate`, or a 2-tuple whose first
/// item has a `dtype`.
fn looks_like_audio(obj: &Bound<'_, PyAny>) -> bool {
    let has = |o: &Bound<'_, PyAny>, name: &str| o.hasattr(name).unwrap_or(false);
    if has(obj, "samples") && has(obj, "sample_rate") {
        return true;
    }
    obj.cast::<PyTuple>()
        .map(|t| t.len() == 2 && t.get_item(0).map(|a| has(&a, "dtype")).unwrap_or(false))
        .unwrap_or(false)
}

/// A string as a JSON literal, shortened if long.
fn quote_key(s: &str) -> String {
    let mut shown: String = s.chars().take(60).collect();
    if shown.len() < s.len() {
        shown.push('…');
    }
    serde_json::to_string(&shown).unwrap_or_else(|_| "\"?\"".to_string())
}

impl Walk {
    /// Where the walk is: `output`, `output["scores"][3]`; long paths keep their ends.
    fn at(&self) -> String {
        let step = |s: &Step| match s {
            Step::Index(i) => format!("[{i}]"),
            Step::Key(k) => format!("[{}]", quote_key(k)),
        };
        let mut out = String::from("output");
        if self.path.len() > 10 {
            self.path[..5].iter().for_each(|s| out.push_str(&step(s)));
            out.push_str("[…]");
            self.path[self.path.len() - 4..].iter().for_each(|s| out.push_str(&step(s)));
        } else {
            self.path.iter().for_each(|s| out.push_str(&step(s)));
        }
        out
    }

    fn count(&mut self) -> Result<(), String> {
        self.items += 1;
        if self.items > VALUE_ITEMS {
            return Err(format!("{}: more than {VALUE_ITEMS} values in one output", self.at()));
        }
        Ok(())
    }

    /// Steps into a container: refused if it is one the walk is already inside, or too deep.
    fn enter(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), String> {
        let id = obj.as_ptr() as usize;
        if self.open.contains(&id) {
            return Err(format!("{}: contains itself (a reference cycle)", self.at()));
        }
        if self.open.len() >= VALUE_NESTING {
            return Err(format!("{}: nested more than {VALUE_NESTING} levels deep", self.at()));
        }
        self.open.push(id);
        Ok(())
    }

    fn leave(&mut self) {
        self.open.pop();
    }

    /// A dict key: a string (valid Unicode).
    fn key(&self, k: &Bound<'_, PyAny>) -> Result<String, String> {
        match k.cast::<PyString>() {
            Ok(s) => s.to_cow().map(|c| c.into_owned()).map_err(|_| format!("{}: a key that is not valid Unicode (a lone surrogate)", self.at())),
            Err(_) => Err(format!("{}: dict keys must be strings, got {}", self.at(), type_name(k))),
        }
    }

    /// A payload: audio, a map of payloads, or a JSON value.
    fn payload(&mut self, obj: &Bound<'_, PyAny>) -> Result<Payload, String> {
        self.count()?;
        if let Some(clips) = self.clips(obj) {
            return clips.map(Payload::Clips);
        }
        if looks_like_audio(obj) {
            return audio_from_py(obj, &self.at()).map(Payload::Audio);
        }
        if let Some(features) = self.features(obj) {
            return features.map(Payload::Features);
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            if let Some(v) = self.vad(d) {
                return v.map(|v| Payload::Vad(Box::new(v)));
            }
            self.enter(obj)?;
            let mut m = BTreeMap::new();
            for (k, v) in d.iter() {
                let key = self.key(&k)?;
                self.path.push(Step::Key(key.clone()));
                let p = self.payload(&v)?;
                self.path.pop();
                m.insert(key, p);
            }
            self.leave();
            return Ok(Payload::Map(m));
        }
        self.json(obj, true)
            .map(Payload::Json)
    }

    /// Clips: a non-empty list whose items all look like the package's `Clip`. `None` for
    /// anything else.
    fn clips(&mut self, obj: &Bound<'_, PyAny>) -> Option<Result<Vec<Clip>, String>> {
        let list = obj.cast::<PyList>().ok()?;
        let has = |o: &Bound<'_, PyAny>, name: &str| o.hasattr(name).unwrap_or(false);
        let items: Vec<_> = list.iter().collect();
        if items.is_empty() || !items.iter().all(|x| has(x, "start_frame") && has(x, "samples")) {
            return None;
        }
        Some((|| {
            let mut clips = Vec::with_capacity(items.len().min(VALUE_ITEMS));
            for (i, x) in items.iter().enumerate() {
                self.path.push(Step::Index(i));
                self.count()?;
                let start_frame: u64 = x
                    .getattr("start_frame")
                    .and_then(|v| v.extract())
                    .map_err(|_| format!("{}: start_frame must be a non-negative integer", self.at()))?;
                clips.push(Clip { start_frame, audio: audio_from_py(x, &self.at())? });
                self.path.pop();
            }
            Ok(clips)
        })())
    }

    /// Features: a 2-D float32 array with `frame_rate`, or `{"values": such an array,
    /// "frame_rate": r}`. `None` for anything else.
    fn features(&self, obj: &Bound<'_, PyAny>) -> Option<Result<Features, String>> {
        let (values, rate) = if let Ok(d) = obj.cast::<PyDict>() {
            if d.len() != 2 {
                return None;
            }
            (d.get_item("values").ok()??, d.get_item("frame_rate").ok()??)
        } else if obj.hasattr("frame_rate").unwrap_or(false) && obj.hasattr("dtype").unwrap_or(false) {
            (obj.clone(), obj.getattr("frame_rate").ok()?)
        } else {
            return None;
        };
        let array = values.cast::<PyArray2<f32>>().ok()?;
        Some((|| {
            let rate: f64 = rate
                .extract()
                .map_err(|_| format!("{}: features: frame_rate must be a number, got {}", self.at(), type_name(&rate)))?;
            let ro = array.try_readonly().map_err(|e| format!("{}: features: {e}", self.at()))?;
            let bins = ro.shape()[1];
            let values = match ro.as_slice() {
                Ok(v) => v.to_vec(),
                Err(_) => ro.as_array().iter().copied().collect(),
            };
            Features::new(values, bins, rate).map_err(|e| format!("{}: features: {e}", self.at()))
        })())
    }

    /// A VAD result: a dict of exactly `segments`, `frames`, `audio` and optionally
    /// `probabilities`. `None` for any other dict. The frame length is the audio's duration per
    /// frame, rounded to whole milliseconds (a Python `VadResult` does not carry it).
    fn vad(&mut self, d: &Bound<'_, PyDict>) -> Option<Result<VadResult, String>> {
        let get = |k: &str| d.get_item(k).ok().flatten();
        let (segments, frames, audio) = (get("segments")?, get("frames")?, get("audio")?);
        let probabilities = get("probabilities");
        if d.len() != 3 + usize::from(probabilities.is_some()) {
            return None;
        }
        Some((|| {
            self.enter(d.as_any())?;
            let segments: Vec<(f64, f64)> = match Walk::field(self, "segments", &segments)? {
                Value::Array(list) => list
                    .iter()
                    .map(|s| match s.as_array().map(Vec::as_slice) {
                        Some([a, b]) => a.as_f64().zip(b.as_f64()).ok_or(()),
                        _ => Err(()),
                    })
                    .collect::<Result<_, ()>>()
                    .map_err(|()| format!("{}: a VAD result's segments must be (start_s, end_s) pairs of numbers", self.at()))?,
                _ => return Err(format!("{}: a VAD result's segments must be a list of (start_s, end_s) pairs", self.at())),
            };
            self.path.pop();
            let frames: Vec<bool> = match Walk::field(self, "frames", &frames)? {
                Value::Array(list) => list
                    .iter()
                    .map(Value::as_bool)
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("{}: a VAD result's frames must be booleans", self.at()))?,
                _ => return Err(format!("{}: a VAD result's frames must be a list or array of booleans", self.at())),
            };
            self.path.pop();
            let probabilities: Vec<f32> = match probabilities {
                None => Vec::new(),
                Some(p) => {
                    let v = match Walk::field(self, "probabilities", &p)? {
                        Value::Array(list) => list
                            .iter()
                            .map(|x| x.as_f64().map(|x| x as f32))
                            .collect::<Option<_>>()
                            .ok_or_else(|| format!("{}: a VAD result's probabilities must be numbers", self.at()))?,
                        _ => return Err(format!("{}: a VAD result's probabilities must be a list or array of numbers", self.at())),
                    };
                    self.path.pop();
                    v
                }
            };
            self.path.push(Step::Key("audio".to_string()));
            self.count()?;
            let audio = audio_from_py(&audio, &self.at())?;
            self.path.pop();
            self.leave();
            let frame_duration_ms = if frames.is_empty() { 0 } else { (audio.duration_s() * 1000.0 / frames.len() as f64).round() as u32 };
            Ok(VadResult { segments, frames, frame_duration_ms, audio, probabilities })
        })())
    }

    /// A field of a VAD result as JSON, the walk left inside it (the caller pops the step).
    fn field(&mut self, key: &str, v: &Bound<'_, PyAny>) -> Result<Value, String> {
        self.path.push(Step::Key(key.to_string()));
        self.count()?;
        self.json(v, true)
    }

    /// A JSON value, already counted; `tolist` is followed once (its result is plain Python).
    fn json(&mut self, obj: &Bound<'_, PyAny>, tolist: bool) -> Result<Value, String> {
        if obj.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if obj.cast::<PyInt>().is_ok() {
            if let Ok(i) = obj.extract::<i64>() {
                return Ok(Value::from(i));
            }
            if let Ok(u) = obj.extract::<u64>() {
                return Ok(Value::from(u));
            }
            let bits = obj.call_method0("bit_length").and_then(|b| b.extract::<u64>()).unwrap_or(0);
            return Err(format!("{}: an integer of {bits} bits is out of range (from -2**63 to 2**64-1)", self.at()));
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            let v = f.value();
            return match serde_json::Number::from_f64(v) {
                Some(n) => Ok(Value::Number(n)),
                None => {
                    let shown = if v.is_nan() { "nan" } else if v > 0.0 { "inf" } else { "-inf" };
                    Err(format!("{}: {shown} cannot be passed between nodes (JSON numbers are finite); use None", self.at()))
                }
            };
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return s
                .to_cow()
                .map(|s| Value::String(s.into_owned()))
                .map_err(|_| format!("{}: a string that is not valid Unicode (a lone surrogate)", self.at()));
        }
        if tolist && obj.hasattr("tolist").unwrap_or(false) {
            // numpy arrays and scalars. The size first: tolist() of a huge array would allocate
            // all of it before the count could refuse it.
            let size = obj.getattr("size").and_then(|n| n.extract::<usize>()).ok();
            if size.is_some_and(|n| self.items.saturating_add(n) > VALUE_ITEMS) {
                return Err(format!("{}: more than {VALUE_ITEMS} values in one output", self.at()));
            }
            let l = obj.call_method0("tolist").map_err(|e| format!("{}: {e}", self.at()))?;
            return self.json(&l, false);
        }
        if looks_like_audio(obj) {
            return Err(format!("{}: audio inside a list cannot be passed between nodes; return a dict of named audio", self.at()));
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            self.enter(obj)?;
            let mut m = serde_json::Map::new();
            for (k, v) in d.iter() {
                let key = self.key(&k)?;
                self.path.push(Step::Key(key.clone()));
                self.count()?;
                let x = self.json(&v, true)?;
                self.path.pop();
                m.insert(key, x);
            }
            self.leave();
            return Ok(Value::Object(m));
        }
        let items = match obj.cast::<PyList>() {
            Ok(l) => Some(l.iter().collect::<Vec<_>>()),
            Err(_) => obj.cast::<PyTuple>().ok().map(|t| t.iter().collect()),
        };
        if let Some(items) = items {
            self.enter(obj)?;
            let mut a = Vec::with_capacity(items.len().min(VALUE_ITEMS));
            for (i, x) in items.iter().enumerate() {
                self.path.push(Step::Index(i));
                self.count()?;
                a.push(self.json(x, true)?);
                self.path.pop();
            }
            self.leave();
            return Ok(Value::Array(a));
        }
        let hint = if obj.cast::<PySet>().is_ok() || obj.cast::<PyFrozenSet>().is_ok() {
            "; a set has no order: return sorted(...) or a list"
        } else if obj.hasattr("__next__").unwrap_or(false) {
            "; an iterator or generator is never consumed (it could be endless): return a list"
        } else {
            ""
        };
        Err(format!(
            "{}: cannot pass a {} between nodes; return audio, a dict or JSON values (None, bool, int, float, str, list){hint}",
            self.at(),
            type_name(obj)
        ))
    }
}
