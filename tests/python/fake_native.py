"""A stand-in for ``remotemedia._native`` that implements the binding API in Python on top of the
pure executor, so the tests exercise the Pipeline wrapper's native code path (JSON manifest in,
``(ndarray, rate)`` tuples out, ``run_async`` callbacks from another thread) before and
independently of the real bindings."""

import json
import queue
import threading

from remotemedia._pure.builtin import KernelNode
from remotemedia._pure.executor import Executor
from remotemedia._pure.schema import NodeTypeSpec, builtin_types
from remotemedia._pure.validate import validate
from remotemedia.audio import Audio
from remotemedia.payloads import to_native


class NativePipeline:
    def __init__(self, manifest_json, python_nodes):
        assert isinstance(manifest_json, str)
        types = dict(builtin_types())
        for node in python_nodes.values():
            if not isinstance(node, KernelNode):
                types[node.type_name] = NodeTypeSpec.from_dict(type(node)._rm_type_schema())
        self.graph = validate(json.loads(manifest_json), types)
        self.python_nodes = python_nodes
        self.executor = Executor(self.graph, {k: v for k, v in python_nodes.items() if not isinstance(v, KernelNode)})
        self.jobs = queue.Queue()
        threading.Thread(target=self._engine_thread, daemon=True).start()

    def _inputs(self, inputs):
        out = {}
        for i in self.graph.sources():
            nid = self.graph.nodes[i].id
            samples, rate = inputs[nid] if nid in inputs else inputs[""]
            out[nid] = Audio._trusted(samples, rate)
        return out

    def run(self, inputs):
        return {k: to_native(v) for k, v in self.executor.run(self._inputs(inputs)).items()}

    def run_async(self, inputs, callback):
        self.jobs.put((inputs, callback))

    def _engine_thread(self):
        while True:
            inputs, callback = self.jobs.get()
            try:
                result = self.run(inputs)
            except Exception as e:  # noqa: BLE001 - handed to the caller, as the engine does
                callback(None, e)
            else:
                callback(result, None)

    def manifest(self):
        return json.dumps({})

    def metrics_json(self):
        d = self.executor.metrics.as_dict()
        d["runtime"] = "rust"
        return json.dumps(d)

    def reset_metrics(self):
        self.executor.metrics.reset()


def noop():
    return None


def version():
    return "fake"


def node_types_json():
    return json.dumps([])
