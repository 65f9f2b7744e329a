"""``Pipeline``: build a pipeline from a manifest or from nodes, and run it on the native engine or,
where that is unavailable, on the pure-Python runtime with the same results.

Data in: ``(samples, sample_rate)``, an :class:`~remotemedia.audio.Audio`, or a dict of those keyed
by source node id (a single value goes to every source node). Data out: a dict keyed by the ids of
the output nodes -- those the manifest's ``outputs`` lists (``Pipeline(..., outputs=[...])``), else
the sink nodes (nodes with no outgoing edge): :class:`Audio`, :class:`VadResult`, lists of
:class:`Clip`, dicts or JSON values.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from . import _runtime
from ._completion import native_call
from .audio import ACCEPTED_DTYPES, MAX_CHANNELS, MAX_RATE, Audio, to_audio
from .errors import InputError, ManifestError, RemoteMediaError, node_error_from_exception
from .limits import MANIFEST_NESTING, WORKERS
from .nodes import BuiltinNode, Node, default_id_stem, registered_nodes
from .session import Session
from ._pure.schema import NodeTypeSpec, builtin_types
from ._pure.validate import validate
from ._pure.tree import manifest_source, parse_json, parse_yaml, read_file

__all__ = ["Pipeline"]

NodeRef = Union[Node, str]
RunInput = Union[Audio, Tuple[Any, Any], Mapping[str, Any]]


class Pipeline:
    """A pipeline of nodes. Build it from a manifest (:meth:`from_yaml`, :meth:`from_json`,
    :meth:`from_dict`) or from nodes::

        Pipeline([AudioResampleNode(16000), VADNode()])          # connected in order
        p = Pipeline(); p.connect(a, b, output_key="audio")      # or edge by edge

    ``outputs``: the nodes (or ids) whose outputs a run returns, in that order; by default the
    sinks. A node listed there may have downstream nodes too: ``outputs=[vad, my_node]`` returns
    the VAD result and what ``my_node`` made of it.

    ``runtime_hint``: ``"auto"`` (native engine if importable, else Python after one warning),
    ``"rust"`` (native or :class:`RuntimeUnavailableError`) or ``"python"``.

    Every constructor takes the manifest's config fields as keyword arguments (``enable_metrics``,
    ``workers``, ``max_retries``, ``retry_policy``...; see docs/manifest.md); they override the
    manifest's ``config`` and are validated with it::

        p = Pipeline.from_yaml("dataflows/speech_vad.yaml", enable_metrics=True)
    """

    def __init__(
        self,
        nodes: Optional[Iterable[Union[Node, Dict[str, Any]]]] = None,
        edges: Optional[Iterable[Any]] = None,
        *,
        name: Optional[str] = None,
        enable_metrics: bool = False,
        runtime_hint: str = "auto",
        workers: int = 1,
        config: Optional[Dict[str, Any]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        outputs: Optional[Iterable[NodeRef]] = None,
        **config_fields: Any,
    ):
        top: Dict[str, Any] = {"version": "1.0"}
        if name is not None:
            top["name"] = name
        if metadata is not None:
            top["metadata"] = metadata
        top["config"] = {"enable_metrics": enable_metrics, "workers": workers, **(config or {}), **config_fields}
        self._setup(top, runtime_hint)
        nodes = list(nodes or [])
        for n in nodes:
            self.add(n)
        if outputs is not None:
            self._outputs = [self._ref(o) for o in outputs]
        if edges is None:
            for a, b in zip(self._entries, self._entries[1:]):
                self.connect(_entry_id(a), _entry_id(b))
        else:
            for e in edges:
                self._add_edge(e)
        if nodes:
            self._compile()

    def _setup(self, top: Dict[str, Any], runtime_hint: str) -> None:
        self._top = top
        self._entries: List[Union[Node, Dict[str, Any]]] = []
        self._edges: List[Dict[str, Any]] = []
        self._runtime = _runtime.select_runtime(runtime_hint)
        self._engine: Any = None
        #: The engine's ``run_plain`` while it is compiled (``run_sync``'s fast path), else None.
        self._run_plain: Any = None
        self._batch_engines: Dict[int, Any] = {}
        #: The compiled pipeline: the pure runtime's Graph, or the engine's CheckedManifest.
        self._graph: Any = None
        #: The Python objects the native engine calls, by node id (Python nodes, and the numpy
        #: kernels of built-in nodes with ``runtime_hint: python``).
        self._callbacks: Dict[str, Node] = {}
        self._python_nodes: Dict[str, Node] = {}
        self._sources: List[str] = []
        self._clock: Any = None
        #: The declared outputs (node ids) or None (the sinks); written into the manifest.
        self._outputs: Optional[List[str]] = None

    # ---- construction from manifests ----

    @classmethod
    def from_dict(cls, manifest: Dict[str, Any], *, runtime_hint: str = "auto", **config: Any) -> "Pipeline":
        """A pipeline from a manifest tree (as ``json.load`` would give). Raises ManifestError.
        Keyword arguments are config fields; they override the manifest's ``config``."""
        manifest = _override_config(manifest, config)
        # Every problem at once, before anything is built: by the engine itself where it will run
        # the pipeline (then nothing in Python reads or checks the manifest), else by the pure validator.
        checked = _check_native(manifest, []) if _native_checks(runtime_hint) else None
        if checked is None:
            validate(manifest, _types([]))
        return cls._from_tree(copy.deepcopy(manifest), checked, runtime_hint)

    @classmethod
    def _from_tree(cls, top: Dict[str, Any], checked: Any, runtime_hint: str) -> "Pipeline":
        """A pipeline from a validated manifest tree (taken over, not copied) and, on the native
        engine, its :class:`_native.CheckedManifest`."""
        self = cls.__new__(cls)
        self._had_edges = "edges" in top
        self._setup(top, runtime_hint)
        self._entries = list(top.pop("nodes"))
        self._edges = list(top.pop("edges", None) or [])
        declared = top.pop("outputs", None)
        self._outputs = list(declared) if declared is not None else None
        self._compile(checked)
        return self

    @classmethod
    def from_json(cls, path_or_text: Union[str, "os.PathLike[str]"], *, runtime_hint: str = "auto",
                  **config: Any) -> "Pipeline":
        """A pipeline from a JSON manifest: a file path, or the JSON text itself (starting with ``{``).
        Keyword arguments are config fields; they override the manifest's ``config``."""
        return cls._read(path_or_text, False, runtime_hint, config)

    @classmethod
    def from_yaml(cls, path_or_text: Union[str, "os.PathLike[str]"], *, runtime_hint: str = "auto",
                  **config: Any) -> "Pipeline":
        """A pipeline from a YAML manifest file (or YAML text containing a newline).
        Keyword arguments are config fields; they override the manifest's ``config``."""
        return cls._read(path_or_text, True, runtime_hint, config)

    @classmethod
    def _read(cls, path_or_text: Any, yaml: bool, runtime_hint: str, config: Dict[str, Any]) -> "Pipeline":
        """``from_json`` / ``from_yaml``. Where the engine will run the pipeline it alone reads the
        file or text, lays ``config`` over the manifest's and validates it, in one call; config
        values JSON cannot hold go the way of :meth:`from_dict`, whose validator names them."""
        text, path = manifest_source(path_or_text, yaml)
        if not _native_checks(runtime_hint):
            text = text if text is not None else read_file(path)
            return cls.from_dict(parse_yaml(text) if yaml else parse_json(text), runtime_hint=runtime_hint, **config)
        native = _runtime.native_module()
        if not _plain_json(config):
            return cls.from_dict(native.parse_manifest(text, yaml, path), runtime_hint=runtime_hint, **config)
        overrides = json.dumps(config, default=_json_default) if config else None
        checked = native.read_manifest(text, yaml, path, overrides, _python_types([]))
        return cls._from_tree(checked.tree(), checked, runtime_hint)

    # ---- building ----

    def add(self, node: Union[Node, Dict[str, Any]]) -> Union[Node, Dict[str, Any]]:
        """Adds a node (a Node, or a manifest node dict) without connecting it; returns it.
        A Node without ``node_id`` gets one made from its type (``gain``, ``gain_2``...)."""
        if isinstance(node, Node):
            if any(e is node for e in self._entries):
                return node
            if node.node_id is None:
                node.node_id = self._fresh_id(node.type_name)
        elif not isinstance(node, dict):
            raise TypeError(f"add() takes a Node or a manifest node dict, received {type(node).__name__}")
        self._entries.append(node)
        self._dirty()
        return node

    def connect(self, src: NodeRef, dst: NodeRef, output_key: Optional[str] = None,
                input_key: Optional[str] = None) -> "Pipeline":
        """Adds an edge ``src -> dst`` (nodes or ids); nodes not yet added are added. Returns self."""
        edge: Dict[str, Any] = {"from": self._ref(src), "to": self._ref(dst)}
        if output_key is not None:
            edge["output_key"] = output_key
        if input_key is not None:
            edge["input_key"] = input_key
        self._edges.append(edge)
        self._dirty()
        return self

    def declare_outputs(self, *nodes: NodeRef) -> "Pipeline":
        """Sets the nodes (or ids) whose outputs a run returns, in this order (the manifest's
        ``outputs``); with none given, the sinks again. Returns self."""
        self._outputs = [self._ref(n) for n in nodes] if nodes else None
        self._dirty()
        return self

    def _add_edge(self, e: Any) -> None:
        if isinstance(e, dict):
            self._edges.append(dict(e))
            self._dirty()
        elif isinstance(e, (tuple, list)) and len(e) == 2:
            self.connect(e[0], e[1])
        else:
            raise TypeError(f"an edge is a dict with from/to or a (from, to) pair, received {e!r}")

    def _ref(self, ref: NodeRef) -> str:
        if isinstance(ref, Node):
            self.add(ref)
            return ref.node_id  # type: ignore[return-value]
        return ref

    def _fresh_id(self, type_name: str) -> str:
        used = {_entry_id(e) for e in self._entries}
        stem = default_id_stem(type_name)
        if stem not in used:
            return stem
        n = 2
        while f"{stem}_{n}" in used:
            n += 1
        return f"{stem}_{n}"

    def _dirty(self) -> None:
        self._graph = None
        self._engine = None
        self._run_plain = None
        self._batch_engines: Dict[int, Any] = {}

    @property
    def manifest(self) -> Dict[str, Any]:
        """The pipeline as a manifest tree; ``Pipeline.from_dict(p.manifest)`` builds the same pipeline."""
        out = copy.deepcopy(self._top)
        out["nodes"] = [e.to_manifest() if isinstance(e, Node) else copy.deepcopy(e) for e in self._entries]
        if self._edges or getattr(self, "_had_edges", True):
            out["edges"] = copy.deepcopy(self._edges)
        if self._outputs is not None:
            out["outputs"] = list(self._outputs)
        return out

    # ---- compilation ----

    def _compile(self, checked: Any = None) -> None:
        """Validates the pipeline and builds its engine. ``checked``: the engine's
        ``CheckedManifest`` of this manifest where the constructor has it already; the engine
        installs it as it is, so a manifest is read and validated once."""
        instances = {e.node_id: e for e in self._entries if isinstance(e, Node) and not isinstance(e, BuiltinNode)}
        if self._runtime == "rust":
            classes = _python_types(instances.values())
            if checked is None:
                checked = _check_native(self.manifest, instances.values())
            valid = checked.validated()
            nodes = valid["nodes"]
            builtin = builtin_types()
            self._python_nodes = self._instances(
                [(n["id"], None if n["type"] in builtin else classes.get(n["type"]), n["type"], n["params"]) for n in nodes],
                instances,
            )
            targets = {e["to"] for e in valid["edges"]}
            self._sources = [n["id"] for n in nodes if n["id"] not in targets]
            from ._pure.builtin import KernelNode

            self._callbacks = dict(self._python_nodes)
            for n in nodes:
                if n["runtime_hint"] == "python" and n["type"] in builtin:
                    self._callbacks[n["id"]] = KernelNode(n["id"], n["type"], n["params"])
            self._engine = _runtime.native_module().NativePipeline(checked, self._callbacks, self._clock)
            self._run_plain = self._engine.run_plain
            self._graph = checked
            return
        graph = validate(self.manifest, _types(instances.values()))
        self._python_nodes = self._instances([(n.id, n.type.python_class, n.type.name, n.params) for n in graph.nodes], instances)
        self._sources = [graph.nodes[i].id for i in graph.sources()]
        from ._pure.executor import Executor

        self._engine = Executor(graph, self._python_nodes, self._clock)
        self._graph = graph

    def _instances(self, nodes: List[Tuple[str, Any, str, Dict[str, Any]]], given: Dict[str, Node]) -> Dict[str, Node]:
        """The Python node objects by id, for ``(id, class or None, type name, params)`` of each
        validated node: the instance given to the pipeline, the one it built before, or a new one."""
        python_nodes: Dict[str, Node] = {}
        for node_id, cls, type_name, params in nodes:
            if cls is None:
                continue
            node = given.get(node_id)
            if node is None:
                node = self._python_nodes.get(node_id)
            if node is None or type(node) is not cls:
                try:
                    node = cls(node_id=node_id, **params)
                except Exception as e:
                    raise node_error_from_exception(e, node_id, type_name, "construction") from None
            python_nodes[node_id] = node
        return python_nodes

    def set_clock(self, clock: Any) -> None:
        """Measures retry delays and circuit-breaker cooldowns on ``clock`` (see
        :mod:`remotemedia.clock`; a :class:`~remotemedia.clock.FakeClock` in tests) instead of the
        system's monotonic clock; None restores that. Takes effect from the next run (the pipeline
        is compiled again, which resets its breakers and metrics)."""
        self._clock = clock
        if self._graph is not None:
            self._dirty()
            self._compile()

    def _ensure(self) -> None:
        if self._graph is None:
            self._compile()

    # ---- running ----

    def _inputs(self, data: RunInput) -> Dict[str, Audio]:
        if isinstance(data, Mapping):
            unknown = [k for k in data if k not in self._sources]
            if unknown:
                raise InputError(
                    f"input for {', '.join(repr(k) for k in unknown)}, which is not a source node; "
                    f"this pipeline's source nodes are: {', '.join(self._sources)}"
                )
            missing = [s for s in self._sources if s not in data]
            if missing:
                raise InputError(
                    f"no input for source node {', '.join(repr(m) for m in missing)}; "
                    f"pass a dict with an entry for each of: {', '.join(self._sources)}"
                )
            return {k: to_audio(v) for k, v in data.items()}
        if isinstance(data, (Audio, tuple, np.ndarray)):
            audio = to_audio(data)
            return {s: audio for s in self._sources}
        raise InputError(
            "run() takes (samples, sample_rate), an Audio, or a dict of them keyed by source node id; "
            f"received {type(data).__name__}"
        )

    def _native_payload(self, data: RunInput) -> Dict[str, Tuple[np.ndarray, int]]:
        """``data`` as the native module takes it. The common call, ``(samples, rate)`` already in
        a form the engine takes, goes as it is: the engine checks it (finiteness included, in the
        same words) as it takes the input in. Anything else is converted and checked here."""
        if _plain_audio_tuple(data):
            return {"": data}
        inputs = self._inputs(data)
        if isinstance(data, Mapping):
            return {k: (a.samples, a.sample_rate) for k, a in inputs.items()}
        a = next(iter(inputs.values()))
        return {"": (a.samples, a.sample_rate)}

    def stream(self, chunks: Any = None) -> "Session":
        """Opens a streaming session (see :class:`~remotemedia.session.Session`): ``push`` chunks,
        get the outputs each completed, ``close`` to flush. With ``chunks`` (an iterable or async
        iterable), iterating the session pushes each chunk and yields its outputs, then the flush."""
        return Session(self, chunks)

    def run_sync(self, data: RunInput) -> Dict[str, Any]:
        """Runs the pipeline once on ``data`` and returns the output nodes' outputs by node id."""
        # The common call first: a compiled native pipeline and ``(samples, rate)`` that needs
        # nothing from the Python side (the engine tests what ``_plain_audio_tuple`` tests, and
        # answers None for anything else, which then takes the general path below). Why: the
        # wrapper's own checks and calls were ~0.6 µs of a ~10 µs run on 0.01 s of audio.
        plain = self._run_plain
        if plain is not None:
            out = plain(data)
            if out is not None:
                return out
        self._ensure()
        if self._runtime == "rust":
            return self._engine.run(self._native_payload(data))
        return self._engine.run(self._inputs(data))

    def stream_file(self, path: Union[str, "os.PathLike[str]"], *, chunk_ms: int = 1000) -> "Session":
        """A streaming session fed from an audio file, decoded ``chunk_ms`` at a time as the session
        is iterated: ``for outputs in pipeline.stream_file("talk.flac"): ...`` yields each chunk's
        outputs, then the flush. Memory stays constant whatever the file's length (see
        :mod:`remotemedia.files` for the formats)."""
        from . import files

        self._ensure()
        return self.stream(files.chunks(path, self._runtime, chunk_ms))

    def run_file(self, path: Union[str, "os.PathLike[str]"], output: Any = None, *, format: Optional[str] = None,
                 bits: Optional[int] = None, chunk_ms: int = 1000) -> Dict[str, Any]:
        """Runs the pipeline over an audio file of any length, streamed ``chunk_ms`` at a time, and
        returns the sink nodes' outputs combined over the file: audio concatenated, VAD results'
        segments and frames concatenated, other values the last one. ``output`` (a path, or a dict
        of sink id -> path) writes audio as it comes instead of keeping it -- a path takes the first
        audio output (or a VAD result's audio), like ``remotemedia run --output`` -- and the result
        then holds the path in its place; ``format`` / ``bits`` as for :func:`remotemedia.save`."""
        from . import files

        return files.run_file(self, path, output, format=format, bits=bits, chunk_ms=chunk_ms)

    async def run(self, data: RunInput) -> Dict[str, Any]:
        """As :meth:`run_sync`, without blocking the event loop on the native engine.

        On the pure runtime the nodes run on this event loop (``async def`` nodes are awaited here)."""
        self._ensure()
        if self._runtime == "python":
            return await self._engine.run_async(self._inputs(data))
        payload = self._native_payload(data)
        return await native_call(lambda callback: self._engine.run_async(payload, callback))

    # ---- batches ----

    def run_batch(self, items: Iterable[RunInput], workers: Optional[int] = None) -> List[Any]:
        """Runs every item (each what :meth:`run_sync` takes) and returns one entry per item, in
        input order: the item's outputs dict, or the exception it met (a :class:`NodeError`, or
        an :class:`InputError` when a node rejected its input). A failing item does not stop the
        others, and nothing is raised for it.

        On the native engine every item is checked first; then parts of about 8 s of audio (W/2
        times that on W > 2 workers), each one epoch, are spread over ``workers`` timely workers
        (default: the pipeline's ``workers``; another count uses a second installation of the
        same pipeline, kept for reuse, whose metrics are its own), each item read in place from
        its array by the worker that runs it (no copy: do not write the arrays from another
        thread while the batch runs). The pure-Python runtime runs the items one after another
        (``workers`` is checked, then ignored).

        Raises :class:`InputError` before running anything if an item is not audio (naming it),
        and :class:`ManifestError` if ``workers`` is not an integer from 1 to the workers limit.
        """
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= WORKERS):
            # The same class and words as config.workers out of range (ManifestError is a ValueError).
            raise ManifestError([("run_batch(workers=)", f"an integer from 1 to {WORKERS}", repr(workers))])
        self._ensure()
        try:
            items = list(items)
        except TypeError:
            raise InputError(f"run_batch takes an iterable of items (each what run_sync takes), received {type(items).__name__}") from None
        if self._runtime == "python":
            prepared = [self._batch_item(i, data, self._inputs) for i, data in enumerate(items)]
            results: List[Any] = []
            for inputs in prepared:
                try:
                    results.append(self._engine.run(inputs))
                except RemoteMediaError as e:
                    results.append(e)
            return results
        # The engine checks plain (samples, rate) tuples itself, in the same words (and the
        # item's index), and calls back here only for other items: a loop over every item here
        # would be a serial part of the batch that the workers wait for.
        return self._batch_engine(workers).run_batch(items, self._native_batch_item)

    def _native_batch_item(self, i: int, data: RunInput) -> Dict[str, Tuple[np.ndarray, int]]:
        return self._batch_item(i, data, self._native_payload)

    def _batch_item(self, i: int, data: RunInput, convert: Any) -> Any:
        try:
            return convert(data)
        except InputError as e:
            raise InputError(f"run_batch item {i}: {e}") from None

    async def arun_batch(self, items: Iterable[RunInput], workers: Optional[int] = None) -> List[Any]:
        """As :meth:`run_batch`, without blocking the event loop (the batch runs on a thread)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.run_batch, list(items), workers)

    def _batch_engine(self, workers: Optional[int]) -> Any:
        configured = int((self._top.get("config") or {}).get("workers", 1) or 1)
        if workers is None or workers == configured:
            return self._engine
        engine = self._batch_engines.get(workers)
        if engine is None:
            engine = _runtime.native_module().NativePipeline(self._graph, self._callbacks, self._clock, workers)
            self._batch_engines[workers] = engine
        return engine

    # ---- metrics, lifecycle ----

    def get_metrics(self, format: str = "dict") -> Any:
        """What the pipeline measured (docs/metrics.md): the pipeline document with counts, end-to-end
        latency percentiles in microseconds, peak memory and a ``node_metrics`` list (one entry per
        node, manifest order). Collected when ``enable_metrics`` is set; the same fields on both
        runtimes.

        ``format``: ``"dict"`` (default), ``"json"`` (the document as JSON text) or ``"prometheus"``
        (Prometheus text exposition format 0.0.4, see :mod:`remotemedia.prometheus`).
        """
        if format not in ("dict", "json", "prometheus"):
            raise InputError(f'get_metrics: format must be "dict", "json" or "prometheus", got {format!r}')
        self._ensure()
        if self._runtime == "rust":
            text = self._engine.metrics_json()
            if format == "json":
                return text
            doc = json.loads(text)
        else:
            doc = self._engine.metrics.as_dict()
            if format == "json":
                return json.dumps(doc)
        if format == "prometheus":
            from .prometheus import to_prometheus

            return to_prometheus(doc)
        return doc

    def get_metrics_json(self) -> str:
        """The metrics document as JSON text (``get_metrics(format="json")``)."""
        return self.get_metrics(format="json")

    def reset_metrics(self) -> None:
        self._ensure()
        if self._runtime == "rust":
            self._engine.reset_metrics()
        else:
            self._engine.metrics.reset()

    @property
    def runtime(self) -> str:
        """``"rust"`` (native engine) or ``"python"`` (pure-Python runtime)."""
        return self._runtime

    @property
    def node_ids(self) -> List[str]:
        return [_entry_id(e) for e in self._entries]

    @property
    def source_ids(self) -> List[str]:
        """The nodes that receive the run's input."""
        self._ensure()
        return list(self._sources)

    def close(self) -> None:
        """Calls ``cleanup()`` on the Python nodes and releases the engine."""
        for node in self._python_nodes.values():
            node._rm_cleanup()
        self._dirty()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Pipeline":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        name = self._top.get("name")
        label = f" {name!r}" if name else ""
        return f"<Pipeline{label} {len(self._entries)} nodes, {len(self._edges)} edges, runtime={self._runtime}>"


def _plain_audio_tuple(data: Any) -> bool:
    """``(samples, rate)`` that needs no conversion or message from the Python side's checks."""
    if type(data) is not tuple or len(data) != 2:
        return False
    samples, rate = data
    return (
        type(samples) is np.ndarray
        and samples.dtype in ACCEPTED_DTYPES
        and (samples.ndim == 1 or (samples.ndim == 2 and 0 < samples.shape[1] <= MAX_CHANNELS))
        and samples.size > 0
        and samples.flags.c_contiguous
        and type(rate) is int
        and 0 < rate <= MAX_RATE
    )


def _entry_id(e: Union[Node, Dict[str, Any]]) -> Any:
    return e.node_id if isinstance(e, Node) else e.get("id")


def _types(instances: Iterable[Node]) -> Dict[str, NodeTypeSpec]:
    """Node types a manifest may use, for the pure validator: built-ins and :func:`_python_types`."""
    types = dict(builtin_types())
    for name, cls in _python_types(instances).items():
        types[name] = NodeTypeSpec.from_dict(cls._rm_type_schema())
    return types


def _python_types(instances: Iterable[Node]) -> Dict[str, type]:
    """The Python node classes a manifest may name, by type name (what :func:`_types` adds to
    the built-ins): the registered ones, and the classes of Node instances given to this pipeline."""
    types: Dict[str, type] = dict(registered_nodes())
    for node in instances:
        types[node.type_name] = type(node)
    return types


def _native_checks(runtime_hint: str) -> bool:
    """Whether the native engine will run a pipeline with this hint (then it alone reads and
    validates the manifest); a hint that cannot be honoured raises later, in ``_setup``."""
    if not _runtime.is_rust_runtime_available():
        return False
    try:
        return _runtime.select_runtime(runtime_hint) == "rust"
    except RemoteMediaError:
        return False


def _check_native(manifest: Any, instances: Iterable[Node]) -> Any:
    """Validates ``manifest`` in the engine (``ManifestError`` with every problem); returns the
    engine's ``CheckedManifest``, which ``NativePipeline`` installs as it is. A Python value JSON
    cannot hold (an array, NaN, an object...) never reaches the engine: the pure validator names it."""
    instances = list(instances)
    if not _plain_json(manifest):
        validate(manifest, _types(instances))  # raises ManifestError naming the value
    text = json.dumps(manifest, default=_json_default)
    return _runtime.native_module().check_manifest(text, _python_types(instances))


def _plain_json(v: Any, depth: int = 0) -> bool:
    """Whether ``json.dumps`` writes ``v`` as the engine reads it back: str keys, finite floats,
    integers within 64 bits, strings without lone surrogates (numpy scalars and tuples as numbers
    and lists), nested no deeper than the manifest limit."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, bool):
        return True
    if isinstance(v, int):
        return -(2**63) <= v < 2**64
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, str):
        return v.isascii() or not any(0xD800 <= ord(c) <= 0xDFFF for c in v)
    if depth >= MANIFEST_NESTING:
        return False
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain_json(k) for k in v) and all(_plain_json(x, depth + 1) for x in v.values())
    return isinstance(v, (list, tuple)) and all(_plain_json(x, depth + 1) for x in v)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    raise TypeError(f"{type(v).__name__} is not a JSON value")


def _override_config(manifest: Any, fields: Dict[str, Any]) -> Any:
    """The manifest with ``fields`` laid over its ``config`` (the caller's tree is not modified).
    A ``config`` that is not a mapping is left as it is, for the validator to name."""
    if not fields or not isinstance(manifest, dict):
        return manifest
    config = manifest.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        return manifest
    return {**manifest, "config": {**config, **fields}}
