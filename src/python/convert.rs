//! Conversions between Python values and payloads. numpy arrays come in with one copy (into the
//! engine's own buffer) and go out with none (the buffer is handed to numpy).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use numpy::{IntoPyArray, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::data::{AudioBuffer, Clip, Features, Payload, Samples, VadResult};

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
    what: String,
}

/// Checks `(samples, sample_rate)` (or an object with `.samples` and `.sample_rate`) without
/// copying the samples. Errors are plain messages; the caller raises them as `InputError`.
pub fn check_audio<'py>(obj: &Bound<'py, PyAny>, what: &str) -> Result<AudioView<'py>, String> {
    let (array, rate) = if let Ok(t) = obj.cast::<PyTuple>() {
        if t.len() != 2 {
            return Err(format!("{what}: expected (samples, sample_rate), got a tuple of {} items", t.len()));
        }
        (t.get_item(0).map_err(|e| e.to_string())?, t.get_item(1).map_err(|e| e.to_string())?)
    } else if obj.hasattr("samples").unwrap_or(false) && obj.hasattr("sample_rate").unwrap_or(false) {
        (obj.getattr("samples").map_err(|e| e.to_string())?, obj.getattr("sample_rate").map_err(|e| e.to_string())?)
    } else {
        return Err(format!("{what}: expected (samples, sample_rate) or remotemedia.Audio, got {}", type_name(obj)));
    };
    let rate: i64 = rate
        .extract()
        .map_err(|_| format!("{what}: sample_rate must be an integer, got {}", type_name(&rate)))?;
    if rate <= 0 || rate > u32::MAX as i64 {
        return Err(format!("{what}: sample_rate must be a positive number of Hz, got {rate}"));
    }
    let array = if let Ok(a) = array.cast::<PyArrayDyn<f32>>() {
        SampleArray::F32(a.clone())
    } else if let Ok(a) = array.cast::<PyArrayDyn<i16>>() {
        SampleArray::I16(a.clone())
    } else if let Ok(a) = array.cast::<PyArrayDyn<i32>>() {
        SampleArray::I32(a.clone())
    } else {
        let dtype = array.getattr("dtype").map(|d| d.to_string()).unwrap_or_else(|_| type_name(&array));
        return Err(format!("{what}: samples must be a numpy array of float32, int16 or int32, got {dtype}"));
    };
    let untyped = array.untyped();
    let shape = untyped.shape().to_vec();
    if !untyped.is_c_contiguous() {
        return Err(not_contiguous(what));
    }
    let channels = match shape.as_slice() {
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
        let ro = a.readonly();
        let v = ro.as_slice().map_err(|_| not_contiguous(what))?;
        // Same words as the Python package's own check, so both runtimes say the same thing.
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            let count = v.iter().filter(|x| !x.is_finite()).count();
            return Err(format!(
                "samples contain NaN or infinity ({count} values, the first at frame {})",
                i / channels.max(1)
            ));
        }
    }
    Ok(AudioView { array, rate: rate as u32, channels: channels as u16, what: what.to_string() })
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
    /// How many samples (all channels) the array holds.
    pub fn samples(&self) -> usize {
        self.array.untyped().len()
    }

    /// The engine's own copy of the samples.
    pub fn copy(&self) -> Result<AudioBuffer, String> {
        fn read<T: numpy::Element + Clone>(a: &Bound<'_, PyArrayDyn<T>>, what: &str) -> Result<Vec<T>, String> {
            let ro = a.readonly();
            Ok(ro.as_slice().map_err(|_| not_contiguous(what))?.to_vec())
        }
        let samples = match &self.array {
            SampleArray::F32(a) => Samples::F32(read(a, &self.what)?),
            SampleArray::I16(a) => Samples::I16(read(a, &self.what)?),
            SampleArray::I32(a) => Samples::I32(read(a, &self.what)?),
        };
        AudioBuffer::new(samples, self.rate, self.channels).map_err(|e| format!("{}: {e}", self.what))
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Audio samples as a numpy array, 1-D for mono, `(frames, channels)` otherwise. No copy: the
/// buffer is handed to numpy.
fn samples_to_py<'py>(py: Python<'py>, a: AudioBuffer) -> PyResult<Bound<'py, PyAny>> {
    let frames = a.frames();
    let channels = a.channels as usize;
    fn shaped<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>, frames: usize, channels: usize) -> PyResult<Bound<'py, PyAny>> {
        let arr = v.into_pyarray(py);
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
    let d = match types {
        Some(t) => t.vad_result.bind(py).call0()?,
        None => PyDict::new(py).into_any(),
    };
    d.set_item(intern!(py, "segments"), segments_to_py(py, &v.segments)?)?;
    d.set_item(intern!(py, "frames"), v.frames.into_pyarray(py))?;
    d.set_item(intern!(py, "probabilities"), v.probabilities.into_pyarray(py))?;
    let audio = match types {
        Some(t) => t.audio(py, v.audio)?,
        None => audio_to_py(py, v.audio)?,
    };
    d.set_item(intern!(py, "audio"), audio)?;
    Ok(d)
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

/// Features from Python: an object with `frame_rate` that is a 2-D float32 array (the package's
/// `Features`), or `{"values": 2-D float32 array, "frame_rate": r}`. `None` when `obj` is neither.
fn features_from_py(obj: &Bound<'_, PyAny>) -> Option<Result<Features, String>> {
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
        let rate: f64 = rate.extract().map_err(|_| format!("features: frame_rate must be a number, got {}", type_name(&rate)))?;
        let ro = array.try_readonly().map_err(|e| e.to_string())?;
        let bins = ro.shape()[1];
        let values = match ro.as_slice() {
            Ok(v) => v.to_vec(),
            Err(_) => ro.as_array().iter().copied().collect(),
        };
        Features::new(values, bins, rate).map_err(|e| format!("features: {e}"))
    })())
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
        let cls = self.audio.bind(py);
        let obj = cls.call_method1(intern!(py, "__new__"), (cls,))?;
        obj.setattr(intern!(py, "_sample_rate"), a.sample_rate)?;
        obj.setattr(intern!(py, "_samples"), samples_to_py(py, a)?)?;
        Ok(obj)
    }

    /// A `Clip`, built as [`audio`](Self::audio) builds an `Audio`.
    fn clip<'py>(&self, py: Python<'py>, c: Clip) -> PyResult<Bound<'py, PyAny>> {
        let cls = self.clip.bind(py);
        let obj = cls.call_method1(intern!(py, "__new__"), (cls,))?;
        obj.setattr(intern!(py, "_sample_rate"), c.audio.sample_rate)?;
        obj.setattr(intern!(py, "_start_frame"), c.start_frame)?;
        obj.setattr(intern!(py, "_samples"), samples_to_py(py, c.audio)?)?;
        Ok(obj)
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
        Payload::Vad(v) => vad_to_py(py, v, types),
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
/// a non-empty list of `Clip`s, a VAD result (a dict of `segments`, `frames` and `audio`), a dict
/// (a map of payloads), or anything JSON can hold.
pub fn payload_from_py(obj: &Bound<'_, PyAny>) -> Result<Payload, String> {
    if let Ok(list) = obj.cast::<PyList>() {
        let is_clip = |x: &Bound<'_, PyAny>| x.hasattr("start_frame").unwrap_or(false) && x.hasattr("samples").unwrap_or(false);
        if !list.is_empty() && list.iter().all(|x| is_clip(&x)) {
            let mut clips = Vec::with_capacity(list.len());
            for (i, x) in list.iter().enumerate() {
                let start_frame: u64 = x
                    .getattr("start_frame")
                    .and_then(|v| v.extract())
                    .map_err(|_| format!("clip {i}: start_frame must be a non-negative integer"))?;
                clips.push(Clip { start_frame, audio: audio_from_py(&x, &format!("clip {i}"))? });
            }
            return Ok(Payload::Clips(clips));
        }
    }
    let looks_like_audio = obj.hasattr("samples").unwrap_or(false) && obj.hasattr("sample_rate").unwrap_or(false);
    let audio_tuple = obj
        .cast::<PyTuple>()
        .map(|t| t.len() == 2 && t.get_item(0).map(|a| a.hasattr("dtype").unwrap_or(false)).unwrap_or(false))
        .unwrap_or(false);
    if looks_like_audio || audio_tuple {
        return audio_from_py(obj, "node output").map(Payload::Audio);
    }
    if let Some(features) = features_from_py(obj) {
        return features.map(Payload::Features);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        if let Some(v) = vad_from_py(d)? {
            return Ok(Payload::Vad(v));
        }
        let mut m = BTreeMap::new();
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| format!("output dict keys must be strings, got {}", type_name(&k)))?;
            m.insert(key, payload_from_py(&v)?);
        }
        return Ok(Payload::Map(m));
    }
    json_from_py(obj).map(Payload::Json)
}

/// A dict with exactly the keys of a VAD result (`segments`, `frames`, `audio`, and optionally
/// `probabilities`, as a Python `VadResult` has them) as a VAD result, so that a Python VAD node's
/// output feeds a `SegmentNode` as the native VAD's does. `None` for any other dict. The frame
/// length is the audio's duration per frame, rounded to whole milliseconds (a Python `VadResult`
/// does not carry it).
fn vad_from_py(d: &Bound<'_, PyDict>) -> Result<Option<VadResult>, String> {
    let probabilities = d.get_item("probabilities").ok().flatten();
    if d.len() != 3 + usize::from(probabilities.is_some()) {
        return Ok(None);
    }
    let (Ok(Some(segments)), Ok(Some(frames)), Ok(Some(audio))) = (d.get_item("segments"), d.get_item("frames"), d.get_item("audio")) else {
        return Ok(None);
    };
    let what = "VAD result";
    let probabilities: Vec<f32> = match probabilities.map(|p| json_from_py(&p)).transpose()? {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{what}: probabilities must be numbers"))?,
        Some(_) => return Err(format!("{what}: probabilities must be a list or array of numbers")),
    };
    let segments: Vec<(f64, f64)> = match json_from_py(&segments)? {
        Value::Array(list) => list
            .iter()
            .map(|s| match s.as_array().map(Vec::as_slice) {
                Some([a, b]) => a.as_f64().zip(b.as_f64()).ok_or(()),
                _ => Err(()),
            })
            .collect::<Result<_, ()>>()
            .map_err(|()| format!("{what}: segments must be (start_s, end_s) pairs of numbers"))?,
        _ => return Err(format!("{what}: segments must be a list of (start_s, end_s) pairs")),
    };
    let frames: Vec<bool> = match json_from_py(&frames)? {
        Value::Array(list) => list.iter().map(Value::as_bool).collect::<Option<_>>().ok_or_else(|| format!("{what}: frames must be booleans"))?,
        _ => return Err(format!("{what}: frames must be a list or array of booleans")),
    };
    let audio = audio_from_py(&audio, "VAD result audio")?;
    let frame_duration_ms = if frames.is_empty() { 0 } else { (audio.duration_s() * 1000.0 / frames.len() as f64).round() as u32 };
    Ok(Some(VadResult { segments, frames, frame_duration_ms, audio, probabilities }))
}

fn json_from_py(obj: &Bound<'_, PyAny>) -> Result<Value, String> {
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
        return obj.extract::<u64>().map(Value::from).map_err(|_| "integer out of range".to_string());
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(serde_json::Number::from_f64(f.value()).map(Value::Number).unwrap_or(Value::Null));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_string()));
    }
    if obj.hasattr("tolist").unwrap_or(false) {
        // numpy arrays and scalars
        let l = obj.call_method0("tolist").map_err(|e| e.to_string())?;
        return json_from_py(&l);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| "dict keys must be strings".to_string())?;
            m.insert(key, json_from_py(&v)?);
        }
        return Ok(Value::Object(m));
    }
    if let Ok(it) = obj.try_iter() {
        let mut a = Vec::new();
        for x in it {
            a.push(json_from_py(&x.map_err(|e| e.to_string())?)?);
        }
        return Ok(Value::Array(a));
    }
    Err(format!("cannot pass a {} between nodes; return audio, a dict or JSON-like values", type_name(obj)))
}
