"""Runs a validated graph in numpy, one node at a time in the graph's topological order, with the
native engine's semantics: sources get the run's input, edges carry whole outputs or one
``output_key`` of them to a port, the output nodes' outputs (the manifest's ``outputs``, else the
sinks) are the run's result keyed by node id.
"""

from __future__ import annotations

import functools
import random
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from ..clock import SystemClock
from ..errors import CircuitOpenError, InputError, NodeError, RemoteMediaError, is_transient, node_error_from_exception
from ..nodes import DEFAULT_PORT, Node
from ..payloads import OutputError, VadResult, node_output, payload_arrays, payload_kind, private_copy, unshared
from .builtin import KernelNode
from .graph import Graph
from .metrics import Metrics
from .reliability import Breaker, RetrySettings

__all__ = ["Executor"]


class Executor:
    """One pipeline's pure-Python engine. ``python_nodes`` maps node id -> custom Node instance."""

    def __init__(self, graph: Graph, python_nodes: Mapping[str, Node], clock: Any = None):
        self.graph = graph
        #: Time for retry delays and breaker cooldowns (``remotemedia.clock``).
        self.clock = clock if clock is not None else SystemClock()
        self.retry = [RetrySettings.for_node(graph.config, n) for n in graph.nodes]
        self.breakers = [Breaker.for_node(graph.config, n) for n in graph.nodes]
        self._jitter = random.Random(0x5EED)
        #: Runs started so far; a run's index is its number in error contexts (the engine's epoch).
        self._runs = 0
        self.impls: List[Node] = []
        for n in graph.nodes:
            impl = python_nodes.get(n.id)
            if impl is None:
                if n.type.python_class is not None:
                    raise RemoteMediaError(f"no instance for Python node '{n.id}' ({n.type.name})")
                impl = KernelNode(n.id, n.type.name, n.params)
            self.impls.append(impl)
        self.metrics = Metrics(
            [n.id for n in graph.nodes], [n.type.name for n in graph.nodes], bool(graph.config.get("enable_metrics")),
            self.breakers,
        )

    # ---- one run ----

    def run(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
        """Runs once; ``inputs`` maps each source node id to its payload."""
        start = time.perf_counter_ns()
        run = self._next_run()
        outputs: List[Any] = [None] * len(self.graph.nodes)
        try:
            for i in self.graph.order:
                node_inputs = self._gather(i, inputs, outputs)
                outputs[i] = self.call(i, run, self.node_call(i, node_inputs))
        except BaseException:
            self._record_run(start, ok=False)
            raise
        self._record_run(start, ok=True)
        return self._result(outputs, inputs)

    async def run_async(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
        """As :meth:`run`, awaiting ``async def`` nodes on the caller's event loop."""
        start = time.perf_counter_ns()
        run = self._next_run()
        outputs: List[Any] = [None] * len(self.graph.nodes)
        try:
            for i in self.graph.order:
                node_inputs = self._gather(i, inputs, outputs)
                retries = 0
                while True:
                    self._admit(i, run, retries)
                    t0 = time.perf_counter_ns()
                    try:
                        impl = self.impls[i]
                        if isinstance(impl, KernelNode):
                            out = await impl._rm_call_async(node_inputs)
                        else:
                            out = node_output(await impl._rm_call_async(_private(node_inputs)))
                    except BaseException as e:  # noqa: BLE001
                        self._record(i, t0, ok=False)
                        delay = self._failed(i, e, run, retries)
                        retries += 1
                        # Other tasks on the loop go on while this one waits out the delay.
                        await self.clock.asleep(delay)
                        continue
                    break
                self.breakers[i].on_success()
                self._record(i, t0, ok=True, out=out)
                outputs[i] = out
        except BaseException:
            self._record_run(start, ok=False)
            raise
        self._record_run(start, ok=True)
        return self._result(outputs, inputs)

    def node_call(self, i: int, node_inputs: Mapping[str, Any]) -> Callable[[], Any]:
        """One call of node ``i`` on ``node_inputs``. A Python node gets inputs of its own (the
        engine hands each node fresh values, so modifying them in place changes nothing outside
        the node) and its output goes through the engine's conversion rules and limits
        (``payloads.node_output``), so that it is accepted, refused and passed on as the native
        engine does."""
        impl = self.impls[i]
        if isinstance(impl, KernelNode):
            return functools.partial(impl._rm_call, node_inputs)
        return lambda: node_output(impl._rm_call(_private(node_inputs)))

    # ---- retries and the circuit breaker ----

    def call(self, i: int, run: int, node_call: Callable[[], Any]) -> Any:
        """One node call for run ``run``, through the node's circuit breaker and retry policy,
        recorded in the metrics; returns its output or raises the node's error."""
        retries = 0
        while True:
            self._admit(i, run, retries)
            t0 = time.perf_counter_ns()
            try:
                out = node_call()
            except BaseException as e:  # noqa: BLE001 - every failure is reported as the node's
                self._record(i, t0, ok=False)
                delay = self._failed(i, e, run, retries)  # raises unless it is retried
                retries += 1
                self.clock.sleep(delay)
                continue
            self.breakers[i].on_success()
            self._record(i, t0, ok=True, out=out)
            return out

    def _next_run(self) -> int:
        run = self._runs
        self._runs += 1
        return run

    def _admit(self, i: int, run: int, retries: int) -> None:
        """Raises CircuitOpenError, without calling the node, while its circuit is open."""
        breaker = self.breakers[i]
        if breaker.admit(self.clock.now()):
            return
        node = self.graph.nodes[i]
        wait_ms = int(breaker.remaining_cooldown(self.clock.now()) * 1000.0)
        causes = [breaker.last_failure] if breaker.last_failure is not None else []
        message = (
            f"node '{node.id}' ({node.type.name}) failed fast (circuit open) in process: the circuit breaker is open "
            f"after {breaker.consecutive_failures} consecutive failures; the node is not called for another {wait_ms} ms"
        )
        if retries > 0:
            message += f" (after {retries} retries)"
        for c in causes:
            message += f"\n  caused by: {c}"
        raise CircuitOpenError(message, node.id, node.type.name, kind="circuit_open", run=run, retries=retries, causes=causes)

    def _failed(self, i: int, e: BaseException, run: int, retries: int) -> float:
        """Records a failed call; returns the delay before retrying it, or raises the node's error."""
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise e
        desc = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if isinstance(e, InputError) and (isinstance(self.impls[i], KernelNode) or isinstance(e, OutputError)):
            # Unusable input (or a Python node's unusable output) says nothing about the node's
            # health (as the engine: kind invalid_input).
            self.breakers[i].on_neutral()
            raise self._node_error(i, e, run, retries)
        opened = self.breakers[i].on_failure(self.clock.now(), desc)
        settings = self.retry[i]
        if is_transient(e) and not opened and settings.allows(retries):
            self.breakers[i].retries += 1
            return settings.delay(retries + 1, self._jitter.random())
        raise self._node_error(i, e, run, retries)

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

    def _node_error(self, i: int, e: BaseException, run: Optional[int] = None, retries: int = 0) -> BaseException:
        node = self.graph.nodes[i]
        if isinstance(e, (NodeError, KeyboardInterrupt, SystemExit)):
            return e
        if isinstance(e, OutputError):
            err = InputError(f"node '{node.id}' ({node.type.name}) returned an unusable output: {e}", node.id, node.type.name)
            err.__cause__ = e
            return err
        if isinstance(e, InputError) and isinstance(self.impls[i], KernelNode):
            err = InputError(f"node '{node.id}' ({node.type.name}) rejected its input in process: {e}", node.id, node.type.name)
            err.__cause__ = e
            return err
        return node_error_from_exception(e, node.id, node.type.name, retries=retries, run=run)

    def _record(self, i: int, t0: int, ok: bool, out: Any = None) -> None:
        if self.metrics.enabled:
            self.metrics.nodes[i].record(time.perf_counter_ns() - t0, ok, _sample_count(out))

    def _record_run(self, start: int, ok: bool) -> None:
        if self.metrics.enabled:
            self.metrics.pipeline.record(time.perf_counter_ns() - start, ok)

    def _result(self, outputs: List[Any], inputs: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        """The output nodes' outputs by id, none sharing memory with the run's input arrays."""
        sources = [a for v in (inputs or {}).values() for a in payload_arrays(v)]
        return {self.graph.nodes[i].id: unshared(outputs[i], sources) for i in self.graph.output_nodes()}

    def initialize(self) -> None:
        for impl in self.impls:
            impl._rm_initialize()

    def close(self) -> None:
        for impl in self.impls:
            impl._rm_cleanup()


def _private(inputs: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: private_copy(v) for k, v in inputs.items()}


def _sample_count(out: Any) -> int:
    """Samples in a node's audio output (a VAD result counts its audio), as the engine counts them."""
    audio = out.get("audio") if isinstance(out, dict) else out
    samples = getattr(audio, "samples", None)
    return int(samples.size) if samples is not None else 0
