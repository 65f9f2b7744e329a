//! `remotemedia._native.NativePipeline`: a manifest validated and installed on the shared worker
//! pool, run from Python with the GIL released while the engine works.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use serde_json::Value;

use crate::error::Error;
use crate::graph::Graph;
use crate::manifest;
use crate::nodes::Registry;
use crate::data::Payload;
use crate::python::convert::{check_audio, payload_to_py, plain_audio, AudioView};
use crate::python::errors;
use crate::python::manifest::{python_node_type, CheckedManifest};
use crate::python::pynode::PyNode;
use crate::python::clock::PyClock;
use crate::runtime::batch::{self, BatchDriver, BatchItem, BatchOptions, Event, Inbox};
use crate::runtime::{Clock, Factories, ItemInput, ItemResult, Pipeline, RealClock, Reply, RunInput, RunOutput, Session, WorkerPool};

/// Validates a manifest (JSON or YAML text) and returns its canonical JSON, or raises
/// `remotemedia.errors.ManifestError` listing every problem.
#[pyfunction]
#[pyo3(signature = (manifest_text, python_nodes=None))]
pub fn validate_manifest(py: Python<'_>, manifest_text: &str, python_nodes: Option<&Bound<'_, PyDict>>) -> PyResult<String> {
    let (graph, _) = build_graph(py, manifest_text, python_nodes)?;
    Ok(manifest::to_manifest(&graph).to_string())
}

/// The node ids of the manifest's nodes with their type names.
fn node_types_in(tree: &Value) -> Vec<(String, String)> {
    tree.get("nodes")
        .and_then(Value::as_array)
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| Some((n.get("id")?.as_str()?.to_string(), n.get("type")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Validates `text` against the built-in types plus the Python nodes' types; every node that has a
/// Python instance is built as a call of that instance.
fn build_graph(py: Python<'_>, text: &str, python_nodes: Option<&Bound<'_, PyDict>>) -> PyResult<(Graph, Factories)> {
    let tree = manifest::parse_str(text).map_err(|e| errors::manifest_error(py, &e))?;
    let mut registry = Registry::builtin();
    if let Some(nodes) = python_nodes {
        let types = node_types_in(&tree);
        for (k, obj) in nodes.iter() {
            let id: String = k.extract()?;
            if let Some((_, ty)) = types.iter().find(|(i, _)| *i == id) {
                if registry.get(ty).is_none() {
                    registry.register(python_node_type(ty.clone(), &obj));
                }
            }
        }
    }
    let graph = manifest::validate(&tree, &registry).map_err(|e| errors::manifest_error(py, &e))?;
    let factories = factories_for(py, &graph, &registry, python_nodes)?;
    Ok((graph, factories))
}

/// The node factories of a validated graph: the registry's, and for every node that has a Python
/// instance, a call of that instance.
fn factories_for(py: Python<'_>, graph: &Graph, registry: &Registry, python_nodes: Option<&Bound<'_, PyDict>>) -> PyResult<Factories> {
    let mut factories = Factories::resolve(graph, registry).map_err(|e| errors::to_py(py, &e))?;
    if let Some(nodes) = python_nodes {
        for (k, obj) in nodes.iter() {
            let id: String = k.extract()?;
            if let Some(n) = graph.node_index(&id) {
                let obj = Arc::new(obj.unbind());
                factories.set(n, Arc::new(move |_| Ok(Box::new(PyNode { obj: Arc::clone(&obj) }))));
            }
        }
    }
    Ok(factories)
}

/// A run's input, checked but still in the caller's arrays: `{"": audio}` for every source, or
/// one audio per named source.
enum InputView<'py> {
    All(AudioView<'py>),
    Named(Vec<(String, AudioView<'py>)>),
}

impl InputView<'_> {
    /// The engine's one copy of the input.
    fn copy(&self) -> Result<RunInput, String> {
        Ok(match self {
            InputView::All(a) => RunInput::All(Payload::Audio(a.copy()?)),
            InputView::Named(v) => RunInput::Named(
                v.iter().map(|(k, a)| Ok((k.clone(), Payload::Audio(a.copy()?)))).collect::<Result<_, String>>()?,
            ),
        })
    }
}

impl InputView<'_> {
    /// The input lent to the engine, no copy (see [`AudioView::lend`]): for calls that hold their
    /// caller until the engine is done with it.
    fn lend(&self) -> Result<RunInput, String> {
        Ok(match self {
            InputView::All(a) => RunInput::All(Payload::Audio(a.lend()?)),
            InputView::Named(v) => RunInput::Named(
                v.iter().map(|(k, a)| Ok((k.clone(), Payload::Audio(a.lend()?)))).collect::<Result<_, String>>()?,
            ),
        })
    }
}

/// Checks `{source_id: (samples, rate)}`, or `{"": (samples, rate)}` for every source.
fn check_input<'py>(py: Python<'py>, inputs: &Bound<'py, PyDict>) -> PyResult<InputView<'py>> {
    if inputs.len() == 1 {
        if let Some(v) = inputs.get_item(pyo3::intern!(py, ""))? {
            return check_audio(&v, "input").map(InputView::All).map_err(|m| errors::input_error(py, m));
        }
    }
    let mut named = Vec::with_capacity(inputs.len());
    for (k, v) in inputs.iter() {
        let key: String = k.extract()?;
        let a = check_audio(&v, &format!("input '{key}'")).map_err(|m| errors::input_error(py, m))?;
        named.push((key, a));
    }
    Ok(InputView::Named(named))
}

/// `{source_id: (samples, rate)}`, or `{"": (samples, rate)}` for every source, copied in.
fn run_input(py: Python<'_>, inputs: &Bound<'_, PyDict>) -> PyResult<RunInput> {
    check_input(py, inputs)?.copy().map_err(|m| errors::input_error(py, m))
}

fn outputs_to_py<'py>(py: Python<'py>, out: RunOutput) -> PyResult<Bound<'py, PyDict>> {
    outputs_keyed(py, out, &[])
}

/// As [`outputs_to_py`], keyed by `keys`' string object for an output id found there (made
/// once per pipeline, its hash cached) instead of a new string per run. Why: making, hashing
/// and later freeing the key was ~50 ns of a ~8 µs run on 0.01 s of audio.
fn outputs_keyed<'py>(py: Python<'py>, out: RunOutput, keys: &[(String, Py<PyString>)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (id, p) in out.outputs {
        let value = payload_to_py(py, p)?;
        match keys.iter().find(|(k, _)| *k == id) {
            Some((_, key)) => d.set_item(key.bind(py), value)?,
            None => d.set_item(id, value)?,
        }
    }
    Ok(d)
}

/// One batch item's result as `Pipeline.run_batch` returns it: its outputs dict (keyed as
/// [`outputs_keyed`] keys them), or the exception it met.
fn item_to_py<'py>(py: Python<'py>, r: ItemResult, keys: &[(String, Py<PyString>)]) -> PyResult<Bound<'py, PyAny>> {
    match r {
        Ok(out) => Ok(outputs_keyed(py, out, keys)?.into_any()),
        Err(e) => Ok(errors::node_error(py, &e).into_value(py).into_bound(py).into_any()),
    }
}

/// A finished asynchronous run, handed from a worker to the completion thread.
struct Completion {
    callback: Py<PyAny>,
    result: Result<Vec<ItemResult>, Error>,
}

impl Completion {
    fn deliver(self) {
        Python::attach(|py| {
            let (value, error) = match self.result {
                Ok(mut items) => match items.pop() {
                    Some(Ok(out)) => match outputs_to_py(py, out) {
                        Ok(d) => (d.into_any(), py.None().into_bound(py)),
                        Err(e) => (py.None().into_bound(py), e.into_value(py).into_bound(py).into_any()),
                    },
                    Some(Err(e)) => (py.None().into_bound(py), errors::node_error(py, &e).into_value(py).into_bound(py).into_any()),
                    None => (py.None().into_bound(py), errors::to_py(py, &Error::Engine("no result".into())).into_value(py).into_bound(py).into_any()),
                },
                Err(e) => (py.None().into_bound(py), errors::to_py(py, &e).into_value(py).into_bound(py).into_any()),
            };
            if let Err(e) = self.callback.bind(py).call1((value, error)) {
                e.write_unraisable(py, Some(self.callback.bind(py)));
            }
        });
    }
}

/// Completed asynchronous runs are delivered to Python from one tokio-driven thread, so engine
/// workers never wait for the GIL and no thread is started per call.
fn completions() -> &'static tokio::sync::mpsc::UnboundedSender<Completion> {
    static TX: OnceLock<tokio::sync::mpsc::UnboundedSender<Completion>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Completion>();
        let spawned = std::thread::Builder::new().name("remotemedia-completions".into()).spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else { return };
            rt.block_on(async move {
                while let Some(c) = rx.recv().await {
                    c.deliver();
                }
            });
        });
        if spawned.is_err() {
            eprintln!("remotemedia: cannot start the completion thread; async runs will not complete");
        }
        tx
    })
}

#[pyclass(frozen, module = "remotemedia._native")]
pub struct NativePipeline {
    inner: Pipeline,
    manifest: String,
    /// The output nodes' ids as interned Python strings, the keys of every run's outputs.
    keys: Vec<(String, Py<PyString>)>,
}

#[pymethods]
impl NativePipeline {
    /// `manifest`: a [`CheckedManifest`] (installed as it is) or manifest text (JSON or YAML,
    /// read and validated here); `python_nodes`: the Python objects that run nodes, by id;
    /// `workers`: another worker count than the manifest's config says (`run_batch(workers=)`).
    #[new]
    #[pyo3(signature = (manifest, python_nodes=None, clock=None, workers=None))]
    fn new(
        py: Python<'_>,
        manifest: &Bound<'_, PyAny>,
        python_nodes: Option<&Bound<'_, PyDict>>,
        clock: Option<&Bound<'_, PyAny>>,
        workers: Option<usize>,
    ) -> PyResult<NativePipeline> {
        let (mut graph, factories) = match manifest.cast::<CheckedManifest>() {
            Ok(checked) => {
                let checked = checked.get();
                let graph = checked.graph.clone();
                let factories = factories_for(py, &graph, &checked.registry, python_nodes)?;
                (graph, factories)
            }
            Err(_) => build_graph(py, &manifest.extract::<String>()?, python_nodes)?,
        };
        if let Some(n) = workers {
            graph.config.workers = n;
        }
        let manifest = manifest::to_manifest(&graph).to_string();
        let keys = graph.output_nodes().into_iter().map(|n| {
            let id = graph.nodes[n].id.clone();
            let key = PyString::intern(py, &id).unbind();
            (id, key)
        }).collect();
        let workers = graph.config.workers;
        let clock: Arc<dyn Clock> = match clock {
            Some(c) if !c.is_none() => Arc::new(PyClock::new(c)?),
            _ => Arc::new(RealClock::new()),
        };
        // Python nodes are constructed on the workers, which take the GIL: release it meanwhile.
        let inner = py
            .detach(|| WorkerPool::shared(workers).and_then(|pool| pool.install_factories(graph, factories, clock)))
            .map_err(|e| errors::to_py(py, &e))?;
        Ok(NativePipeline { inner, manifest, keys })
    }

    /// Runs one input; blocks the calling thread (not the interpreter) until the outputs are ready.
    ///
    /// An input of at most [`INLINE_MAX_SAMPLES`] runs on this thread where the engine allows
    /// (`Pipeline::run_here`: no metrics, no Python node), with the GIL held for one of at most
    /// [`HOLD_GIL_SAMPLES`] (as a short streaming push is: a few µs of work, less than handing
    /// the GIL over) and released for a longer one; a retry delay is slept with the GIL released,
    /// and Ctrl-C then gives the run up. Why: the hop to worker 0 and back (queueing, waking the
    /// worker, its reply, unparking the caller) cost ~6-10 µs per call on 2 cores, 1.8-2.9x the
    /// main job's kernels at 0.01-0.1 s of audio.
    ///
    /// Otherwise it runs on the workers and looks at signals every [`batch::POLL`] while it waits:
    /// Ctrl-C raises `KeyboardInterrupt` at once and cancels the run (a node already running
    /// finishes; the outputs are dropped).
    fn run<'py>(&self, py: Python<'py>, inputs: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyDict>> {
        let input = check_input(py, inputs)?.lend().map_err(|m| errors::input_error(py, m))?;
        self.run_checked(py, input)
    }

    /// `Pipeline.run_sync`'s common call: `run({"": data})` for `data` that is `(samples, rate)`
    /// as the package passes it on unchanged (see `convert::plain_audio`), with the same outputs,
    /// errors and signals; `None`, having done nothing, for anything else (the package converts
    /// or refuses it in its own words, then calls `run`). Why: the package's own checks and the
    /// dict around the input cost ~0.6 µs a call, 6 % of a run on 0.01 s of audio.
    fn run_plain<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(view) = plain_audio(data) else { return Ok(None) };
        let audio = view.and_then(|v| v.lend()).map_err(|m| errors::input_error(py, m))?;
        self.run_checked(py, RunInput::All(Payload::Audio(audio))).map(Some)
    }

    /// Runs a list of items (each what `Pipeline.run_sync` takes) spread over the workers;
    /// returns, per item in input order, its outputs dict or the exception it met.
    ///
    /// Every item is checked before anything runs (a bad one raises `InputError` naming it):
    /// `(samples, rate)` that `run_plain` would take is checked here; anything else is first
    /// passed to `convert(index, item)`, which returns the `{source: (samples, rate)}` dict that
    /// `run` takes (or raises, naming the item). Why here and not in a Python loop before the
    /// call: that loop ran ~0.75 µs an item with every worker waiting for it (1.5 ms of a
    /// 2,048-item batch, a serial part that does not shrink as workers are added), and the
    /// `(outputs, error)` tuples it then unpacked another ~0.15 µs an item.
    ///
    /// The engine's batch scheduler then runs them (runtime/batch.rs), each read in place from
    /// its array (lent, not copied: see `AudioView::lend`), a bounded window in flight, each
    /// result built into Python objects here as it comes, in order, while the workers run the
    /// later items. Ctrl-C stops handing items over, cancels those in flight (nodes already
    /// running finish) and raises `KeyboardInterrupt` within [`batch::POLL`]; the pipeline stays
    /// usable.
    fn run_batch<'py>(&self, py: Python<'py>, items: &Bound<'py, PyList>, convert: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let mut checked = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let input = match plain_audio(&item) {
                Some(view) => view.map(InputView::All).map_err(|m| errors::input_error(py, m)),
                // `convert` raises in its own words, which already name the item.
                None => check_input(py, convert.call1((i, &item))?.cast::<PyDict>()?),
            };
            checked.push(input.map_err(|e| errors::input_error(py, format!("run_batch item {i}: {}", e.value(py))))?);
        }
        let mut driver = PyBatch { py, items: &checked, keys: &self.keys, out: PyList::empty(py), error: None };
        let ran = batch::run(&self.inner, &mut driver, Arc::new(|_, r| r), &BatchOptions::default());
        if let Some(e) = driver.error {
            return Err(e);
        }
        ran.map_err(|e| errors::to_py(py, &e))?;
        Ok(driver.out)
    }

    /// Starts a run and returns at once; `callback(outputs, error)` is called when it completes.
    fn run_async(&self, py: Python<'_>, inputs: &Bound<'_, PyDict>, callback: Py<PyAny>) -> PyResult<()> {
        let input = run_input(py, inputs)?;
        self.inner.submit(vec![input], completion_reply(callback)).map_err(|e| errors::to_py(py, &e))
    }

    /// Opens a streaming session on this pipeline.
    fn stream(&self) -> NativeSession {
        // The first push builds the session's node states (~100-300 µs): it releases the GIL.
        NativeSession { inner: Mutex::new(self.inner.session()), last_ns: AtomicU64::new(u64::MAX) }
    }

    /// The canonical manifest (JSON text).
    fn manifest(&self) -> String {
        self.manifest.clone()
    }

    /// The metrics document as JSON text. The workers copy their own records (the GIL is
    /// released meanwhile: a Python node on a worker may need it to finish its step).
    fn metrics_json(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.inner.metrics_json()).map(|v| v.to_string()).map_err(|e| errors::to_py(py, &e))
    }

    fn reset_metrics(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.reset_stats()).map_err(|e| errors::to_py(py, &e))
    }

    #[getter]
    fn workers(&self) -> usize {
        self.inner.workers()
    }
}

impl NativePipeline {
    /// `run` after its input has been checked and copied in (see `run`).
    fn run_checked<'py>(&self, py: Python<'py>, mut input: RunInput) -> PyResult<Bound<'py, PyDict>> {
        let samples = input_samples(&input);
        if samples <= INLINE_MAX_SAMPLES {
            let mut interrupted: Option<PyErr> = None;
            let ran = if samples <= HOLD_GIL_SAMPLES {
                self.inner.run_here(input, &mut |d| {
                    py.detach(|| std::thread::sleep(d));
                    py.check_signals().map_err(|e| interrupted = Some(e)).is_ok()
                })
            } else {
                py.detach(|| {
                    self.inner.run_here(input, &mut |d| {
                        std::thread::sleep(d);
                        Python::attach(|py| py.check_signals()).map_err(|e| interrupted = Some(e)).is_ok()
                    })
                })
            };
            if let Some(e) = interrupted {
                return Err(e);
            }
            match ran {
                Ok(result) => return outputs_keyed(py, result.map_err(|e| errors::to_py(py, &e))?, &self.keys),
                Err(back) => input = back,
            }
        }
        let mut pending = self.inner.start(input).map_err(|e| errors::to_py(py, &e))?;
        loop {
            match py.detach(|| pending.wait_for(batch::POLL)) {
                Ok(Some(out)) => return outputs_keyed(py, out, &self.keys),
                Ok(None) => py.check_signals()?,
                Err(e) => return Err(errors::to_py(py, &e)),
            }
        }
    }
}

/// `run_batch`'s side of the batch scheduler: hands each checked item over (lent: the worker
/// that runs it reads the caller's array), builds each result into Python objects, releases the GIL while waiting, and
/// turns Ctrl-C into a cancellation.
struct PyBatch<'py, 'a> {
    py: Python<'py>,
    items: &'a [InputView<'py>],
    /// The pipeline's output ids as Python strings (see [`outputs_keyed`]).
    keys: &'a [(String, Py<PyString>)],
    out: Bound<'py, PyList>,
    /// The first error to raise once the batch has stopped (a signal, a conversion, a lost item).
    error: Option<PyErr>,
}

impl BatchDriver<ItemResult> for PyBatch<'_, '_> {
    fn next_item(&mut self, index: usize) -> Option<ItemInput> {
        if self.error.is_some() {
            return None;
        }
        match self.items.get(index)?.lend() {
            Ok(input) => Some(ItemInput::Ready(input)),
            Err(m) => {
                self.error = Some(errors::input_error(self.py, format!("run_batch item {index}: {m}")));
                None
            }
        }
    }

    fn deliver(&mut self, _index: usize, item: BatchItem<ItemResult>) {
        let py = self.py;
        let appended = match item {
            BatchItem::Done(r) => item_to_py(py, r, self.keys).and_then(|v| self.out.append(v)),
            BatchItem::Lost(m) => Err(errors::to_py(py, &Error::Engine(m))),
            // Only items never handed over are cancelled; the error raised says why.
            BatchItem::Cancelled => Ok(()),
        };
        if let Err(e) = appended {
            self.error.get_or_insert(e);
        }
    }

    fn cancelled_from(&mut self, _from: usize) {}

    fn wait(&mut self, inbox: &mut Inbox<ItemResult>, timeout: Duration) -> Option<Event<ItemResult>> {
        // Events already taken need no wait, so no GIL hand-back either.
        if let Some(e) = inbox.take_local() {
            return Some(e);
        }
        self.py.detach(|| inbox.recv(timeout))
    }

    /// A signal raises at once: the items in flight are cancelled (nodes already running finish).
    fn abandon_on_cancel(&self) -> bool {
        true
    }

    fn should_cancel(&mut self) -> bool {
        match self.py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                self.error.get_or_insert(e);
                true
            }
        }
    }
}

/// A streaming session: `push` one chunk, get the outputs it completed; `close` flushes.
/// Calls on one session are serialised (its chunks must stay in order).
#[pyclass(frozen, module = "remotemedia._native")]
pub struct NativeSession {
    inner: Mutex<Session>,
    /// How long the last push's engine work took, in ns: whether the next keeps the GIL.
    last_ns: AtomicU64,
}

/// A push whose engine work took less than this keeps the GIL while it runs (see `push`).
const HOLD_GIL_UNDER: Duration = Duration::from_micros(50);
/// ... and whose chunk has at most this many samples: a longer chunk releases it whatever the last
/// push took (0.34 s of 48 kHz audio costs ~40 µs through resample + VAD, a heavier graph more).
const HOLD_GIL_SAMPLES: u64 = 16_384;

/// A run of at most this many input samples (all sources together) may run on the calling
/// thread (see `NativePipeline::run`): ~22 s of 48 kHz mono, a few ms through the main job and
/// some tens through a heavy graph, so Ctrl-C still answers about as fast as the 50 ms poll of a
/// run on the workers. Longer ones go to the workers, where the wait looks at signals.
const INLINE_MAX_SAMPLES: u64 = 1 << 20;

/// The samples a run's input carries, all sources together.
fn input_samples(input: &RunInput) -> u64 {
    match input {
        RunInput::All(p) => crate::runtime::lanes::weight(Some(p)),
        RunInput::Named(m) => m.values().map(|p| crate::runtime::lanes::weight(Some(p))).sum(),
    }
}

impl NativeSession {
    fn lock(&self) -> std::sync::MutexGuard<'_, Session> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, started: Instant) {
        self.last_ns.store(started.elapsed().as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }
}

/// Hands a finished chunk's result to the completion thread, which calls `callback`.
fn completion_reply(callback: Py<PyAny>) -> Reply {
    let tx = completions();
    Box::new(move |result| {
        let _ = tx.send(Completion { callback, result });
    })
}

#[pymethods]
impl NativeSession {
    /// Pushes one chunk and blocks (the thread, not the interpreter) for the outputs it completed.
    ///
    /// A short chunk of a session running on this thread (the last push's engine work took
    /// under [`HOLD_GIL_UNDER`]; a 20 ms chunk through resample + VAD takes ~2.5 µs) runs with
    /// the GIL held, released only to sleep out a retry delay. Why: releasing it around such a
    /// chunk made two Python threads pushing at once slower than one (0.58x): each push gave the
    /// GIL away and took it back while the other thread held it, and each hand-over is a futex
    /// wake-up of a sleeping thread (tens of µs on these VMs) against a few µs of work. Held,
    /// threads take turns every interpreter switch interval (5 ms). Longer chunks release it,
    /// so their work runs in parallel with other Python threads.
    fn push<'py>(&self, py: Python<'py>, inputs: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyDict>> {
        let mut input = run_input(py, inputs)?;
        if Duration::from_nanos(self.last_ns.load(Ordering::Relaxed)) < HOLD_GIL_UNDER && input_samples(&input) <= HOLD_GIL_SAMPLES {
            // Another thread inside this session (it releases the GIL) is not waited for here.
            if let Ok(session) = self.inner.try_lock() {
                let started = Instant::now();
                match session.push_here(input, &mut |d| py.detach(|| std::thread::sleep(d))) {
                    Ok(out) => {
                        self.note(started);
                        return outputs_to_py(py, out.map_err(|e| errors::to_py(py, &e))?);
                    }
                    Err(back) => input = back,
                }
            }
        }
        // Timed inside: taking the GIL back can wait a whole switch interval (5 ms) behind
        // another thread, which says nothing about this session's work.
        let out = py
            .detach(|| {
                let session = self.lock();
                let started = Instant::now();
                let out = session.push(input);
                self.note(started);
                out
            })
            .map_err(|e| errors::to_py(py, &e))?;
        outputs_to_py(py, out)
    }

    /// Queues one chunk and returns at once; `callback(outputs, error)` follows. Chunks queued
    /// this way are processed in call order.
    fn push_async(&self, py: Python<'_>, inputs: &Bound<'_, PyDict>, callback: Py<PyAny>) -> PyResult<()> {
        let input = run_input(py, inputs)?;
        let session = self.lock();
        session.submit_push(input, completion_reply(callback)).map_err(|e| errors::to_py(py, &e))
    }

    /// Ends the session and blocks for what the nodes still held.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = py.detach(|| self.lock().close()).map_err(|e| errors::to_py(py, &e))?;
        outputs_to_py(py, out)
    }

    /// Queues the session's end; `callback(outputs, error)` follows.
    fn close_async(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        self.lock().submit_close(completion_reply(callback)).map_err(|e| errors::to_py(py, &e))
    }

    #[getter]
    fn closed(&self) -> bool {
        self.lock().is_closed()
    }

    #[getter]
    fn id(&self) -> u64 {
        self.lock().id()
    }
}
