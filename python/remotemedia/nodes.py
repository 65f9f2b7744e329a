"""Nodes: the base class for custom Python nodes, their registry, and builders for the built-in nodes.

Custom nodes -- the one convention
----------------------------------
Subclass :class:`Node` and implement ``process``, plain or ``async def``:

* a node with one input (``inputs = None``, the default) is called as ``process(data)`` with the
  payload itself (an :class:`~remotemedia.audio.Audio`, a VAD result, a dict or a JSON value);
* a node with named ports (``inputs = ["audio", "segments"]``) or any number of inputs
  (``inputs = "any"``; ports are then the upstream node ids unless an edge sets ``input_key``) is
  called as ``process(**inputs)``, one keyword argument per port.

It returns an ``Audio``, a ``dict`` of named outputs (edges pick one with ``output_key``), or any
JSON value. Constructor: ``Node(node_id=None, runtime_hint=None, **params)``; ``params`` go into
the manifest, so they must be JSON values -- keep models and other objects as attributes set in
your own ``__init__``. Optional ``initialize()`` runs once before the first run, ``cleanup()`` on
``Pipeline.close()``; both may be ``async def``.

Register a class with :func:`register_node` (also a decorator) so manifests can name its type.
"""

from __future__ import annotations

import inspect
import re
import threading
from typing import Any, Dict, List, Mapping, Optional, Type, Union

import numpy as np

from . import _loop
from .payloads import VadResult


#: The port a one-input node's single input arrives on.
DEFAULT_PORT = "in"

InputsDecl = Union[None, List[str], str]


class Node:
    """Base class of every node. Subclass it and implement ``process`` (see the module docs)."""

    #: Name of the type in manifests; defaults to the class name.
    type_name: str = "Node"
    #: ``None``: one input; a list: these named ports; ``"any"``: any number of inputs.
    inputs: InputsDecl = None
    #: Output keys an edge may name as ``output_key`` (informative; Python nodes may return any keys).
    outputs: List[str] = []
    #: Carries state from one call to the next (streaming): the pipeline's retry policy then does
    #: not apply to it, since retrying a half-done call could corrupt that state; a node's own
    #: ``reliability`` entry can still ask for retries.
    stateful: bool = False
    #: The node's own retry and circuit-breaker settings for its manifest entry (any of the
    #: ``config`` fields ``retry_policy``, ``max_retries``, ``retry_base_delay_ms``,
    #: ``retry_max_delay_ms``, ``retry_jitter``, ``circuit_breaker_threshold``,
    #: ``circuit_breaker_cooldown_ms``), or None to use the pipeline's. See docs/reliability.md.
    reliability: Optional[Dict[str, Any]] = None
    #: ``False`` (the default): a VAD result arriving on an input is passed as its audio, as the
    #: built-in audio nodes take it, so ``process(audio)`` works after a VAD node. ``True``: it
    #: is passed whole (a :class:`~remotemedia.payloads.VadResult`). An edge with
    #: ``output_key="segments"`` (or ``"frames"``) hands over just that part either way.
    accepts_vad_result: bool = False

    # Class-level defaults keep the engine protocol working for subclasses whose __init__ forgets
    # to call super().__init__().
    node_id: Optional[str] = None
    runtime_hint: Optional[str] = None
    params: Dict[str, Any] = {}
    _rm_initialized = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__:
            cls.type_name = cls.__name__

    def __init__(self, node_id: Optional[str] = None, runtime_hint: Optional[str] = None, **params: Any):
        self.node_id = node_id
        self.runtime_hint = runtime_hint
        self.params = params

    def process(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement process()")

    def initialize(self) -> Any:
        """Called once before the first run. May be ``async def``."""

    def cleanup(self) -> Any:
        """Called when the pipeline is closed. May be ``async def``."""

    # ---- manifest ----

    def to_manifest(self) -> Dict[str, Any]:
        """This node as a manifest node entry (``node_id`` must be set)."""
        entry: Dict[str, Any] = {"id": self.node_id, "type": self.type_name}
        if self.params:
            entry["params"] = dict(self.params)
        if self.runtime_hint not in (None, "auto"):
            entry["runtime_hint"] = self.runtime_hint
        if self.reliability is not None:
            entry["reliability"] = dict(self.reliability)
        return entry

    def __repr__(self) -> str:
        args = [f"node_id={self.node_id!r}"] if self.node_id is not None else []
        args += [f"{k}={v!r}" for k, v in self.params.items()]
        return f"{type(self).__name__}({', '.join(args)})"

    # ---- the protocol the engines call (not for users) ----

    def _rm_args(self, inputs: Mapping[str, Any]):
        values = dict(inputs)
        if not self.accepts_vad_result:
            values = {k: v["audio"] if isinstance(v, VadResult) else v for k, v in values.items()}
        if self.inputs is None:
            if len(values) != 1:
                raise TypeError(f"{self.type_name} has one input but received {len(values)}: {sorted(values)}")
            return (next(iter(values.values())),), {}
        return (), values

    def _rm_call(self, inputs: Mapping[str, Any]) -> Any:
        """Processes one item from synchronous code (engine threads): runs ``async def process``
        to completion on this thread's long-lived event loop. Returns the node's output."""
        self._rm_initialize()
        args, kwargs = self._rm_args(inputs)
        out = self.process(*args, **kwargs)
        if inspect.isawaitable(out):
            out = _loop.run_coroutine(_as_coroutine(out))
        return out

    async def _rm_call_async(self, inputs: Mapping[str, Any]) -> Any:
        """Processes one item on the caller's event loop (the pure runtime's ``Pipeline.run``)."""
        await self._rm_initialize_async()
        args, kwargs = self._rm_args(inputs)
        out = self.process(*args, **kwargs)
        if inspect.isawaitable(out):
            out = await out
        return out

    def _rm_initialize(self) -> None:
        if self._rm_initialized:
            return
        with _init_lock:
            if not self._rm_initialized:
                out = self.initialize()
                if inspect.isawaitable(out):
                    _loop.run_coroutine(_as_coroutine(out))
                self._rm_initialized = True

    async def _rm_initialize_async(self) -> None:
        if self._rm_initialized:
            return
        out = self.initialize()
        if inspect.isawaitable(out):
            await out
        self._rm_initialized = True

    def _rm_cleanup(self) -> None:
        if not self._rm_initialized:
            return
        self._rm_initialized = False
        out = self.cleanup()
        if inspect.isawaitable(out):
            _loop.run_coroutine(_as_coroutine(out))

    @classmethod
    def _rm_type_schema(cls) -> Dict[str, Any]:
        """The node type schema the validator checks manifests against: open params and outputs."""
        if cls.inputs is None:
            inputs: Dict[str, Any] = {"kind": "one"}
        elif cls.inputs == "any":
            inputs = {"kind": "any"}
        else:
            inputs = {"kind": "named", "ports": list(cls.inputs)}
        return {
            "name": cls.type_name,
            "doc": inspect.getdoc(cls) or "",
            "params": [],
            "inputs": inputs,
            "outputs": list(cls.outputs),
            "open_params": True,
            "open_outputs": True,
            "stateful": bool(cls.stateful),
            "python_class": cls,
        }


async def _await(awaitable):
    return await awaitable


def _as_coroutine(awaitable):
    return awaitable if inspect.iscoroutine(awaitable) else _await(awaitable)


# Serialises the rare first-call initialisations; re-entrant for nodes that build other nodes.
_init_lock = threading.RLock()


# ---- registry of custom node types ----

_registry: Dict[str, Type[Node]] = {}
_registry_lock = threading.Lock()


def register_node(cls: Optional[Type[Node]] = None, *, name: Optional[str] = None):
    """Registers a :class:`Node` subclass so manifests can name it by ``type_name``.

    Use as ``register_node(MyNode)``, ``@register_node`` or ``@register_node(name="Other")``.
    Registering a name again replaces the earlier class (handy in notebooks).
    """

    def do(c: Type[Node]) -> Type[Node]:
        if not (isinstance(c, type) and issubclass(c, Node)) or issubclass(c, BuiltinNode):
            raise TypeError(f"register_node takes a subclass of remotemedia.Node, received {c!r}")
        if name is not None:
            c.type_name = name
        if c.type_name in BUILTIN_TYPES:
            raise ValueError(f"'{c.type_name}' is a built-in node type; give your class another type_name")
        _check_inputs_decl(c)
        with _registry_lock:
            _registry[c.type_name] = c
        return c

    return do(cls) if cls is not None else do


def unregister_node(type_name: str) -> None:
    with _registry_lock:
        _registry.pop(type_name, None)


def registered_nodes() -> Dict[str, Type[Node]]:
    """The registered custom node types, by type name."""
    with _registry_lock:
        return dict(_registry)


def _check_inputs_decl(cls: Type[Node]) -> None:
    decl = cls.inputs
    ok = decl is None or decl == "any" or (
        isinstance(decl, (list, tuple)) and decl and all(isinstance(p, str) and p for p in decl)
    )
    if not ok:
        raise TypeError(f"{cls.__name__}.inputs must be None, 'any' or a non-empty list of port names, found {decl!r}")


# ---- builders for the built-in (native) nodes ----


class BuiltinNode(Node):
    """A built-in node: a manifest entry for the engine's own implementation (not subclassed by users)."""

    def __init__(self, node_id: Optional[str] = None, runtime_hint: Optional[str] = None, **params: Any):
        super().__init__(node_id=node_id, runtime_hint=runtime_hint, **{k: v for k, v in params.items() if v is not None})

    def process(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.type_name} is built in; run it inside a Pipeline")


class _SchemaParams(BuiltinNode):
    """A built-in node whose params, inputs, outputs and statefulness are the engine's own
    registry's (``schema.json``, generated from the Rust params structs): the signature is read
    from there, so no param, default or port is written twice and a param added in Rust reaches
    the builder through regeneration alone. Params left out take the engine's default."""

    #: True: the params may also be given by position, in the schema's order (required ones have
    #: no default), and every param, defaults included, goes into the manifest entry.
    _positional = False

    def __init__(self, *, node_id: Optional[str] = None, runtime_hint: Optional[str] = None, **params: Any):
        super().__init__(node_id, runtime_hint, **params)

    @staticmethod
    def _types() -> Dict[str, Any]:
        from ._pure.schema import builtin_types

        return builtin_types()

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        spec = _SchemaParams._types()[cls.type_name]
        cls.inputs = None if spec.inputs == "one" else "any" if spec.inputs == "any" else list(spec.ports)
        cls.outputs = list(spec.outputs)
        cls.stateful = spec.stateful
        specs = {p.name: p for p in spec.params}
        kw = inspect.Parameter.KEYWORD_ONLY
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if cls._positional else kw
        sig = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
            + [inspect.Parameter(p.name, kind, default=inspect.Parameter.empty if p.required else p.default)
               # Required params first, as a positional signature (and nodes.pyi) must have them.
               for p in sorted(spec.params, key=lambda p: not p.required)]
            + [inspect.Parameter("node_id", kw, default=None), inspect.Parameter("runtime_hint", kw, default=None)]
        )

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if cls._positional:
                bound = sig.bind(self, *args, **kwargs)
                bound.apply_defaults()
                kwargs = dict(bound.arguments)
                del kwargs["self"]
            elif args:
                sig.bind(self, *args, **kwargs)  # raises the TypeError Python gives a keyword-only call
            _SchemaParams.__init__(self, **{k: _json_param(specs[k], v) if k in specs else v for k, v in kwargs.items()})

        __init__.__doc__ = cls.__doc__
        __init__.__signature__ = sig  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[method-assign]


def _json_param(spec: Any, v: Any) -> Any:
    """A param value as the manifest holds it, by the param's kind: numpy scalars become Python
    ones, an array for a list of numbers is read flat (a ``(n, 1)`` noise clip is mono samples),
    numbers in such a list become floats, mappings in a list of tagged objects plain dicts. What
    is not of the kind is left as it is, for validation to name."""
    if isinstance(v, np.generic):
        return v.item()
    if spec.kind != "list" or v is None or isinstance(v, (str, bytes, Mapping)):
        return v
    if isinstance(v, np.ndarray):
        v = v.reshape(-1)
    try:
        items = list(v)
    except TypeError:
        return v
    item = spec.item.kind if spec.item is not None else ""
    if item == "float":
        return [float(x) if isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_)) else x for x in items]
    if item == "tagged":
        return [dict(x) if isinstance(x, Mapping) else x for x in items]
    return [x.item() if isinstance(x, np.generic) else x for x in items]


#: The built-in builders whose params may also be given by position, in the schema's order (a
#: choice of the Python API; scripts/gen.py writes nodes.pyi's signatures from this tuple). The
#: others take keywords only.
POSITIONAL = (
    "AudioResampleNode", "VADNode", "SileroVADNode", "FormatConverterNode", "GainNode", "ChannelMixNode",
    "SegmentNode", "FilterNode", "LoudnessNode", "DenoiseNode",
)


def _builder(type_name: str) -> Type[BuiltinNode]:
    """The builder class of a built-in node type, made from the schema alone: its signature,
    ports, defaults and doc are the engine's (the doc nodes.pyi shows too), so a node type added
    in Rust reaches Python through regeneration of schema.json."""
    doc = _SchemaParams._types()[type_name].doc
    return type(type_name, (_SchemaParams,), {"__doc__": doc, "__module__": __name__, "_positional": type_name in POSITIONAL})


#: Every built-in node type's builder class, by type name (the schema's node types, in its order).
BUILTIN_TYPES: Dict[str, Type[BuiltinNode]] = {name: _builder(name) for name in _SchemaParams._types()}
globals().update(BUILTIN_TYPES)

__all__ = ["Node", "BuiltinNode", "register_node", "unregister_node", "registered_nodes", *BUILTIN_TYPES, "BUILTIN_TYPES"]


def default_id_stem(type_name: str) -> str:
    """``AudioResampleNode`` -> ``audio_resample``, ``VADNode`` -> ``vad``: the stem of generated node ids."""
    stem = type_name[:-4] if type_name.endswith("Node") and len(type_name) > 4 else type_name
    stem = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", stem)
    return stem.lower() or "node"
