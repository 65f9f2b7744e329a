//! Audio files for Python: `load`, `save`, `info` and a chunk reader over `crate::audio_io`,
//! with the GIL released while files are read, decoded, resampled, encoded and written.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::{PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyValueError};
use pyo3::prelude::*;

use super::convert::{audio_from_py, json_to_py, payload_to_py};
use super::errors;
use crate::audio_io::{self, AudioReader, LoadOptions, OutFormat, OutSpec};
use crate::data::{Payload, SampleFormat};
use crate::error::Error;

/// File errors as Python expects them: a missing file is `FileNotFoundError`, a permission
/// problem `PermissionError`, other system errors `OSError` (each with errno and the path's
/// message); bad content is the package's `InputError`.
fn file_error(py: Python<'_>, e: Error, path: &std::path::Path) -> PyErr {
    match e {
        Error::Io { context, source } => {
            let errno = source.raw_os_error().unwrap_or(0);
            let args = (errno, format!("{context}: {source}"), path.display().to_string());
            match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(args),
                _ => PyOSError::new_err(args),
            }
        }
        other => errors::to_py(py, &other),
    }
}

fn dtype_format(dtype: Option<&str>) -> PyResult<Option<SampleFormat>> {
    match dtype {
        None => Ok(None),
        Some("float32") => Ok(Some(SampleFormat::F32)),
        Some("int16") => Ok(Some(SampleFormat::I16)),
        Some("int32") => Ok(Some(SampleFormat::I32)),
        Some(other) => Err(PyValueError::new_err(format!(
            "dtype must be \"float32\", \"int16\", \"int32\" or None (as stored), not {other:?}"
        ))),
    }
}

/// Decodes `path` and returns an `Audio` (see `remotemedia.load`).
#[pyfunction]
#[pyo3(signature = (path, rate=None, mono=false, dtype=Some("float32")))]
pub fn load_audio(py: Python<'_>, path: PathBuf, rate: Option<u32>, mono: bool, dtype: Option<&str>) -> PyResult<Py<PyAny>> {
    let options = LoadOptions { mono, rate, format: dtype_format(dtype)? };
    let audio = py.detach(|| audio_io::load(&path, options)).map_err(|e| file_error(py, e, &path))?;
    Ok(payload_to_py(py, Payload::Audio(audio))?.unbind())
}

/// Writes `audio` (an `Audio` or `(samples, rate)`) to `path` as WAV or FLAC.
#[pyfunction]
#[pyo3(signature = (path, audio, format=None, bits=None))]
pub fn save_audio(py: Python<'_>, path: PathBuf, audio: &Bound<'_, PyAny>, format: Option<&str>, bits: Option<u16>) -> PyResult<()> {
    let format = match format {
        None => None,
        Some(f) => Some(OutFormat::parse(f).ok_or_else(|| {
            PyValueError::new_err(format!("format must be \"wav\" or \"flac\" (or None: from the extension), not {f:?}"))
        })?),
    };
    let spec = OutSpec::new(format, bits).map_err(|e| match e {
        Error::Input(m) => PyValueError::new_err(m),
        other => errors::to_py(py, &other),
    })?;
    let audio = audio_from_py(audio, "save()").map_err(|m| errors::input_error(py, m))?;
    py.detach(|| audio_io::write(&path, &audio, spec)).map_err(|e| file_error(py, e, &path))
}

/// What `path` holds, as a dict (see `remotemedia.info`).
#[pyfunction]
pub fn audio_info(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    let info = py.detach(|| audio_io::info(&path)).map_err(|e| file_error(py, e, &path))?;
    Ok(json_to_py(py, &info.to_json())?.unbind())
}

/// An open file read chunk by chunk (for `Pipeline.stream_file`): constant memory whatever the
/// file's length.
#[pyclass(module = "remotemedia._native")]
pub struct NativeAudioReader {
    path: PathBuf,
    inner: Mutex<Option<AudioReader>>,
}

#[pymethods]
impl NativeAudioReader {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let reader = py.detach(|| audio_io::open(&path)).map_err(|e| file_error(py, e, &path))?;
        Ok(NativeAudioReader { path, inner: Mutex::new(Some(reader)) })
    }

    /// The file's info dict.
    fn info(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(r) => Ok(json_to_py(py, &r.info().to_json())?.unbind()),
            None => Err(PyValueError::new_err("the reader is closed")),
        }
    }

    /// The next `frames` frames as an `Audio` (fewer at the end), or None after the end.
    fn read(&self, py: Python<'_>, frames: usize) -> PyResult<Option<Py<PyAny>>> {
        let chunk = py.detach(|| {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                Some(r) => r.read_frames(frames),
                None => Ok(None),
            }
        });
        match chunk.map_err(|e| file_error(py, e, &self.path))? {
            Some(a) => Ok(Some(payload_to_py(py, Payload::Audio(a))?.unbind())),
            None => Ok(None),
        }
    }

    /// Closes the file.
    fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// A WAV or FLAC file written chunk by chunk (for `Pipeline.run_file`), renamed into place by
/// `finish`; `abort` (or dropping it unfinished) removes the temporary file.
#[pyclass(module = "remotemedia._native")]
pub struct NativeAudioWriter {
    path: PathBuf,
    inner: Mutex<Option<audio_io::AudioWriter>>,
}

#[pymethods]
impl NativeAudioWriter {
    #[new]
    #[pyo3(signature = (path, sample_rate, channels, dtype, format=None, bits=None))]
    fn new(py: Python<'_>, path: PathBuf, sample_rate: u32, channels: u16, dtype: &str, format: Option<&str>, bits: Option<u16>) -> PyResult<Self> {
        let sample_format = dtype_format(Some(dtype))?.unwrap_or(SampleFormat::F32);
        let format = format.and_then(OutFormat::parse);
        let spec = OutSpec::new(format, bits).map_err(|e| errors::to_py(py, &e))?;
        let writer = py
            .detach(|| audio_io::AudioWriter::create(&path, spec, sample_rate, channels, sample_format))
            .map_err(|e| file_error(py, e, &path))?;
        Ok(NativeAudioWriter { path, inner: Mutex::new(Some(writer)) })
    }

    /// Appends a chunk (an `Audio` or `(samples, rate)` like the first).
    fn write(&self, py: Python<'_>, audio: &Bound<'_, PyAny>) -> PyResult<()> {
        let audio = audio_from_py(audio, "write()").map_err(|m| errors::input_error(py, m))?;
        py.detach(|| match self.inner.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(w) => w.write(&audio),
            None => Err(Error::Input(format!("'{}' is already finished", self.path.display()))),
        })
        .map_err(|e| file_error(py, e, &self.path))
    }

    /// Completes the file and renames it into place.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        let writer = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        match writer {
            Some(w) => py.detach(|| w.finish()).map_err(|e| file_error(py, e, &self.path)),
            None => Ok(()),
        }
    }

    /// Drops the unfinished file.
    fn abort(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
