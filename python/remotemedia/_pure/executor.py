"""Runs a validated graph in numpy, one node at a time in the graph's topological order, with the
native engine's semantics: sources get the run's input, edges carry whole outputs or one
``output_key`` of them to a port, sinks' outputs are the run's result keyed by node id.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping

from ..errors import InputError, NodeError, RemoteMediaError, node_error_from_exception
from ..nodes import DEFAULT_PORT, Node
from ..payloads import VadResult, payload_kind
from .builtin import KernelNode
from .graph import Graph
from .metrics import Metrics

__all__ = ["Executor"]


class Executor:
    """One pipeline's pure-Python engine. ``python_nodes`` maps node id -> custom Node instance."""

    def __init__(self, graph: Graph, python_nodes: Mapping[str, Node]):
        self.graph = graph
        self.impls: List[Node] = []
        for n in graph.nodes:
            impl = python_nodes.get(n.id)
            if impl is None:
                if n.type.python_class is not None:
                    raise RemoteMediaError(f"no instance for Python node '{n.id}' ({n.type.name})")
                impl = KernelNode(n.id, n.type.name, n.params)
            self.impls.append(impl)
        self.metrics = Metrics(
            [n.id for n in graph.nodes], [n.type.name for n in graph.nodes], bool(graph.config.get("enable_metrics"))
        )

    # ---- one run ----

    def run(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
        """Runs once; ``inputs`` maps each source node id to its payload."""
        start = time.perf_counter_ns()
        outputs: List[Any] = [None] * len(self.graph.nodes)
        try:
            for i in self.graph.order:
                node_inputs = self._gather(i, inputs, outputs)
                t0 = time.perf_counter_ns()
                try:
                    out = self.impls[i]._rm_call(node_inputs)
                except BaseException as e:  # noqa: BLE001 - every failure is reported as the node's
                    self._record(i, t0, ok=False)
                    raise self._node_error(i, e)
                self._record(i, t0, ok=True, out=out)
                outputs[i] = out
        except BaseException:
            self._record_run(start, ok=False)
            raise
        self._record_run(start, ok=True)
        return self._result(outputs)

    async def run_async(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
        """As :meth:`run`, awaiting ``async def`` nodes on the caller's event loop."""
        start = time.perf_counter_ns()
        outputs: List[Any] = [None] * len(self.graph.nodes)
        try:
            for i in self.graph.order:
                node_inputs = self._gather(i, inputs, outputs)
                t0 = time.perf_counter_ns()
                try:
                    out = await self.impls[i]._rm_call_async(node_inputs)
                except BaseException as e:  # noqa: BLE001
                    self._record(i, t0, ok=False)
                    raise self._node_error(i, e)
                self._record(i, t0, ok=True, out=out)
                outputs[i] = out
        except BaseException:
            self._record_run(start, ok=False)
            raise
        self._record_run(start, ok=True)
        return self._result(outputs)

    # ---- helpers ----

    def _gather(self, i: int, inputs: Mapping[str, Any], outputs: List[Any]) -> Dict[str, Any]:
        node = self.graph.nodes[i]
        if not node.inputs:
            return {DEFAULT_PORT: inputs[node.id]}
        gathered: Dict[str, Any] = {}
        for ei in node.inputs:
            e = self.graph.edges[ei]
            value = outputs[e.src]
            if e.output_key is not None:
                value = self._project(e.src, value, e.output_key)
            gathered[e.port] = value
        return gathered

    def _project(self, src: int, value: Any, key: str) -> Any:
        node = self.graph.nodes[src]
        if isinstance(value, VadResult) and key in ("segments", "frames"):
            # The engine hands these on as JSON values (Payload::output): lists, not tuples/arrays.
            if key == "segments":
                return [[float(s), float(e)] for s, e in value["segments"]]
            return [bool(f) for f in value["frames"]]
        if isinstance(value, dict) and key in value:
            return value[key]
        keys = f" (its keys: {', '.join(map(str, value))})" if isinstance(value, dict) and not isinstance(value, VadResult) else ""
        raise NodeError(
            f"node '{node.id}' ({node.type.name}) produced {payload_kind(value)} with no output '{key}'{keys}",
            node.id,
            node.type.name,
        )

    def _node_error(self, i: int, e: BaseException) -> BaseException:
        node = self.graph.nodes[i]
        if isinstance(e, (NodeError, KeyboardInterrupt, SystemExit)):
            return e
        if isinstance(e, InputError) and isinstance(self.impls[i], KernelNode):
            err = InputError(f"node '{node.id}' ({node.type.name}) rejected its input in process: {e}", node.id, node.type.name)
            err.__cause__ = e
            return err
        return node_error_from_exception(e, node.id, node.type.name)

    def _record(self, i: int, t0: int, ok: bool, out: Any = None) -> None:
        if self.metrics.enabled:
            self.metrics.nodes[i].record(time.perf_counter_ns() - t0, ok, _sample_count(out))

    def _record_run(self, start: int, ok: bool) -> None:
        if self.metrics.enabled:
            self.metrics.pipeline.record(time.perf_counter_ns() - start, ok)

    def _result(self, outputs: List[Any]) -> Dict[str, Any]:
        return {self.graph.nodes[i].id: outputs[i] for i in self.graph.sinks()}

    def initialize(self) -> None:
        for impl in self.impls:
            impl._rm_initialize()

    def close(self) -> None:
        for impl in self.impls:
            impl._rm_cleanup()


def _sample_count(out: Any) -> int:
    """Samples in a node's audio output (a VAD result counts its audio), as the engine counts them."""
    audio = out.get("audio") if isinstance(out, dict) else out
    samples = getattr(audio, "samples", None)
    return int(samples.size) if samples is not None else 0
